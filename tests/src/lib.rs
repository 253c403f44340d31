//! Shared helpers for the end-to-end tests: free ports, the `election` binary, an in-process
//! logserver, clusters of real node processes, and polling `/api/nodes` with deadlines; headless
//! Chromium over WebDriver in [`browser`]; simulated runs traced into memory in [`traces`].

pub mod browser;
pub mod traces;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use election_core::State;
use election_core::report::BlockedLink;
pub use election_net::TransportKind;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Deserialize;
use tokio::time::Instant;

/// The `election` binary: `$ELECTION_BIN`, or `election` in the running program's target dir
/// (`target/debug` for `cargo test`, `target/release` for `--release` and for the benchmark
/// binaries, which sit next to it).
pub fn election_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("ELECTION_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the running program's path");
    // Test executables live in <target>/<profile>/deps/, binaries in <target>/<profile>/.
    let dir = exe.parent().expect("the program's directory");
    let candidates = [dir.join("election"), dir.join("../election")];
    match candidates.iter().find(|c| c.exists()) {
        Some(bin) => bin.clone(),
        None => panic!(
            "the election binary is missing at {}; build it first with `cargo build --bin \
             election` (add --release for release runs) or point ELECTION_BIN at it",
            candidates[1].display()
        ),
    }
}

/// `n` distinct ports on 127.0.0.1 free for UDP and TCP alike (all bound at once, then
/// released).
pub fn free_udp_addrs(n: usize) -> Vec<SocketAddr> {
    let mut sockets = Vec::new();
    while sockets.len() < n {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a free UDP port");
        let addr = udp.local_addr().unwrap();
        // Keep it only if the same TCP port is free too (either transport may use it).
        if let Ok(tcp) = std::net::TcpListener::bind(addr) {
            sockets.push((udp, tcp));
        }
    }
    sockets
        .iter()
        .map(|(s, _)| s.local_addr().unwrap())
        .collect()
}

/// Defines each test once per transport, in modules `udp` and `tcp`: `name => body;` where
/// `body` is a function of the [`TransportKind`] returning a future.
#[macro_export]
macro_rules! on_both_transports {
    ($($name:ident => $body:expr;)*) => {
        mod udp {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    ($body)(election_net::TransportKind::Udp).await;
                }
            )*
        }
        mod tcp {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    ($body)(election_net::TransportKind::Tcp).await;
                }
            )*
        }
    };
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<tmp>/election-tests-<pid>-<n>-<label>`.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("election-tests-{}-{n}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temp dir");
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A logserver running inside the test process with an embedded store in a temp dir.
pub struct Logserver {
    server: Option<logserver::Server>,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Logserver {
    /// Starts on a free loopback port.
    pub async fn start() -> Logserver {
        let dir = TempDir::new("logserver");
        let server = logserver::Server::start(logserver::ServeArgs::new(0, dir.path()))
            .await
            .expect("start the logserver");
        let addr = server.local_addr();
        Logserver {
            server: Some(server),
            addr,
            _dir: dir,
        }
    }

    /// Its `ip:port`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `GET /api/nodes`.
    pub async fn nodes(&self) -> Vec<NodeView> {
        nodes_of(self.addr).await
    }

    /// `GET path` as text; panics unless it succeeds.
    pub async fn get(&self, path: &str) -> String {
        let body = http(self.addr, Method::GET, path, None).await;
        String::from_utf8_lossy(&body).into_owned()
    }

    /// `PUT /api/blocks`: replaces the set of blocked links.
    pub async fn set_blocks(&self, links: &[BlockedLink]) {
        let body = serde_json::to_vec(links).unwrap();
        http(self.addr, Method::PUT, "/api/blocks", Some(body)).await;
    }

    /// Stops the server.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("logserver shutdown");
        }
    }
}

/// `GET /api/nodes` of the logserver at `addr`.
pub async fn nodes_of(addr: SocketAddr) -> Vec<NodeView> {
    let body = http(addr, Method::GET, "/api/nodes", None).await;
    serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "bad /api/nodes answer ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    })
}

/// `GET /api/blocks` of the logserver at `addr`: the links it blocks now.
pub async fn blocks_of(addr: SocketAddr) -> Vec<BlockedLink> {
    let body = http(addr, Method::GET, "/api/blocks", None).await;
    serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "bad /api/blocks answer ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    })
}

/// Both directions of every link between `a` and `b`.
pub fn cut(a: &[SocketAddr], b: &[SocketAddr]) -> Vec<BlockedLink> {
    let mut links = Vec::new();
    for x in a {
        for y in b {
            for (from, to) in [(x, y), (y, x)] {
                links.push(BlockedLink {
                    from: from.to_string(),
                    to: to.to_string(),
                });
            }
        }
    }
    links
}

async fn http(addr: SocketAddr, method: Method, path: &str, body: Option<Vec<u8>>) -> Bytes {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::builder()
        .method(method.clone())
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: timed out"))
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert!(
        status.is_success(),
        "{method} {path}: HTTP {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    bytes
}

/// The fields of a `/api/nodes` entry the tests look at.
#[derive(Clone, Debug, Deserialize)]
pub struct NodeView {
    /// `ip:port`.
    pub addr: String,
    /// Garcia-Molina state.
    pub state: State,
    /// The coordinator it follows.
    pub coordinator: Option<String>,
    /// Group or election id.
    pub group: Option<String>,
    /// Incarnation number, where the algorithm has one.
    pub incarnation: Option<u64>,
    /// Its process id.
    pub pid: u32,
}

/// The coordinator every node of `among` follows while `Normal`, if they all agree on one of
/// themselves.
pub fn agreed_leader(views: &[NodeView], among: &[SocketAddr]) -> Option<SocketAddr> {
    let mut leader: Option<&str> = None;
    for addr in among {
        let addr = addr.to_string();
        let view = views.iter().find(|v| v.addr == addr)?;
        let coordinator = view.coordinator.as_deref()?;
        if view.state != State::Normal || *leader.get_or_insert(coordinator) != coordinator {
            return None;
        }
    }
    let leader: SocketAddr = leader?.parse().ok()?;
    among.contains(&leader).then_some(leader)
}

/// Whether a stable leader of `algorithm` (default options) must be the highest-priority live
/// node: the validity property the protocol declares.
pub fn highest_wins(algorithm: election_core::Algorithm) -> bool {
    election_core::with_protocol!(algorithm, P => {
        let timing = election_core::Timing { heartbeat: 1, timeout: 5 };
        <P as election_core::Protocol>::properties(&election_core::ConfigOf::<P>::new(timing))
            .highest_wins
    })
}

/// Whether a test cluster signs its datagrams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// A fresh key (`election keygen`) in the cluster's temp dir, passed with `--key-file`.
    Keyed,
    /// No key (loopback tolerates it with a warning).
    Keyless,
}

/// Writes a new key to `path` with `election keygen`; panics with its output if that fails.
pub fn keygen(path: &Path) {
    let out = Command::new(election_bin())
        .arg("keygen")
        .arg(path)
        .output()
        .expect("run election keygen");
    assert!(
        out.status.success(),
        "election keygen {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A set of `election node` processes of one cluster, killed when dropped.
pub struct Cluster {
    /// The algorithm name.
    pub algorithm: String,
    /// The addresses of the config file, in priority order.
    pub addrs: Vec<SocketAddr>,
    /// Flags given to every node (timing, logserver, config, state dir).
    pub flags: Vec<String>,
    /// The cluster's key file (`None` for a keyless cluster).
    pub key: Option<PathBuf>,
    /// How its nodes talk.
    pub transport: TransportKind,
    children: BTreeMap<SocketAddr, Child>,
    dir: TempDir,
}

impl Cluster {
    /// Writes a config of `n` free loopback addresses and starts every node with
    /// `--logserver logserver`, a fresh cluster key, `--transport transport`, plus `extra` flags.
    pub fn start(
        algorithm: &str,
        n: usize,
        logserver: SocketAddr,
        extra: &[String],
        transport: TransportKind,
    ) -> Cluster {
        Cluster::start_with(algorithm, n, logserver, extra, transport, Security::Keyed)
    }

    /// [`Cluster::start`] with or without a key.
    pub fn start_with(
        algorithm: &str,
        n: usize,
        logserver: SocketAddr,
        extra: &[String],
        transport: TransportKind,
        security: Security,
    ) -> Cluster {
        let dir = TempDir::new(algorithm);
        let addrs = free_udp_addrs(n);
        let config = dir.path().join("server_config");
        let text: String = addrs.iter().map(|a| format!("{a}\n")).collect();
        std::fs::write(&config, text).unwrap();
        let mut flags = vec![
            format!("--config={}", config.display()),
            format!("--logserver={logserver}"),
            format!("--state-dir={}", dir.path().join("state").display()),
            format!("--transport={transport}"),
        ];
        let key = (security == Security::Keyed).then(|| {
            let key = dir.path().join("cluster.key");
            keygen(&key);
            flags.push(format!("--key-file={}", key.display()));
            key
        });
        flags.extend_from_slice(extra);
        let mut cluster = Cluster {
            algorithm: algorithm.to_string(),
            addrs: addrs.clone(),
            flags,
            key,
            transport,
            children: BTreeMap::new(),
            dir,
        };
        for addr in addrs {
            cluster.spawn(addr, &[]);
        }
        cluster
    }

    /// Starts (or restarts) the node at `addr` with the cluster's flags plus `extra`; its output
    /// goes to a log file in the cluster's temp dir.
    pub fn spawn(&mut self, addr: SocketAddr, extra: &[String]) -> u32 {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(addr))
            .unwrap();
        let child = Command::new(election_bin())
            .args(["node", &self.algorithm, &addr.to_string()])
            .args(&self.flags)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", election_bin().display()));
        let pid = child.id();
        if let Some(mut old) = self.children.insert(addr, child) {
            let _ = old.kill();
            let _ = old.wait();
        }
        pid
    }

    /// Starts a node with `args` after `node ALGORITHM ADDR` and none of the cluster's flags (an
    /// outsider), its output to a log file; returns the child for the caller to wait on.
    pub fn spawn_outsider(&self, addr: SocketAddr, args: &[String]) -> Child {
        let log = std::fs::File::create(self.log_path(addr)).unwrap();
        Command::new(election_bin())
            .args(["node", &self.algorithm, &addr.to_string()])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", election_bin().display()))
    }

    /// The cluster's temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the node at `addr` logged.
    pub fn log(&self, addr: SocketAddr) -> String {
        std::fs::read_to_string(self.log_path(addr)).unwrap_or_default()
    }

    /// The node's latest drop counters by reason, from its log (a node logs them, as it reports
    /// them, whenever they changed within a report period).
    pub fn drops(&self, addr: SocketAddr) -> BTreeMap<String, u64> {
        let log = self.log(addr);
        let Some(line) = log.lines().rev().find(|l| l.contains("dropped datagrams")) else {
            return BTreeMap::new();
        };
        let field = line.split("drops=").nth(1).unwrap_or("");
        let field = field.split_whitespace().next().unwrap_or("");
        field
            .split(',')
            .filter_map(|pair| {
                let (reason, n) = pair.split_once(':')?;
                Some((reason.to_string(), n.parse().ok()?))
            })
            .collect()
    }

    fn log_path(&self, addr: SocketAddr) -> PathBuf {
        self.dir.path().join(format!("node-{}.log", addr.port()))
    }

    /// The process id of the node at `addr`.
    pub fn pid(&self, addr: SocketAddr) -> u32 {
        self.children[&addr].id()
    }

    /// SIGKILLs the node at `addr` (a crash) and reaps it.
    pub fn kill(&mut self, addr: SocketAddr) {
        let mut child = self.children.remove(&addr).expect("a running node");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERMs the node at `addr` (a graceful leave) and waits for it to exit; panics unless it
    /// exits with status 0 within 10 s.
    pub async fn terminate(&mut self, addr: SocketAddr) {
        let mut child = self.children.remove(&addr).expect("a running node");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "{addr} exited with {status} after SIGTERM"
                );
                return;
            }
            assert!(Instant::now() < deadline, "{addr} ignored SIGTERM");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Whether the node at `addr` is still running.
    pub fn is_running(&mut self, addr: SocketAddr) -> bool {
        self.children
            .get_mut(&addr)
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// The last lines of every node's log, for failure messages.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut text = String::new();
        for addr in &self.addrs {
            let log = std::fs::read_to_string(self.log_path(*addr)).unwrap_or_default();
            let all: Vec<&str> = log.lines().collect();
            text.push_str(&format!("--- {addr}\n"));
            for line in &all[all.len().saturating_sub(lines)..] {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }

    /// Polls `/api/nodes` every 5 ms until `check` returns `Some`, and returns it with the time
    /// it took; panics after `within` with the last views and the nodes' logs.
    pub async fn wait_for<T>(
        &self,
        logserver: &Logserver,
        goal: &str,
        within: Duration,
        check: impl Fn(&[NodeView]) -> Option<T>,
    ) -> (T, Duration) {
        let start = Instant::now();
        loop {
            let views = logserver.nodes().await;
            if let Some(found) = check(&views) {
                return (found, start.elapsed());
            }
            if start.elapsed() > within {
                panic!(
                    "{}: no {goal} within {within:?}; nodes: {views:#?}\n{}",
                    self.algorithm,
                    self.log_tails(15)
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until all of `among` agree on one leader among themselves.
    pub async fn wait_for_leader(
        &self,
        logserver: &Logserver,
        among: &[SocketAddr],
        within: Duration,
    ) -> (SocketAddr, Duration) {
        self.wait_for(logserver, "agreed leader", within, |views| {
            agreed_leader(views, among)
        })
        .await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Node timing for a test: the `--heartbeat-ms` and `--timeout-ms` flags.
#[derive(Clone, Copy, Debug)]
pub struct Speed {
    /// `--heartbeat-ms`.
    pub heartbeat_ms: u64,
    /// `--timeout-ms`.
    pub timeout_ms: u64,
}

/// Fast enough for a quick suite, slow enough for a loaded 2-core machine.
pub const FAST: Speed = Speed {
    heartbeat_ms: 40,
    timeout_ms: 200,
};

/// Time for a status change to show on `/api/nodes`: the report (sent at once, but the process
/// may wait for a busy core), and one poll.
pub const REPORT_SLACK: Duration = Duration::from_secs(1);

impl Speed {
    /// The node flags: this timing, and reports every 100 ms.
    pub fn flags(&self) -> Vec<String> {
        vec![
            format!("--heartbeat-ms={}", self.heartbeat_ms),
            format!("--timeout-ms={}", self.timeout_ms),
            "--report-ms=100".to_string(),
        ]
    }

    /// The algorithm's liveness bound for `n` nodes at this timing, from its configuration.
    pub fn bound(&self, algorithm: election_core::Algorithm, n: usize) -> Duration {
        use election_core::{ConfigOf, MILLIS, Protocol, Timing};
        let timing = Timing {
            heartbeat: self.heartbeat_ms * MILLIS,
            timeout: self.timeout_ms * MILLIS,
        };
        let micros = election_core::with_protocol!(algorithm, P => {
            P::liveness_bound(&ConfigOf::<P>::new(timing), n)
        });
        Duration::from_micros(micros)
    }
}
