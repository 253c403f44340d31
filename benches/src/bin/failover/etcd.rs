//! An etcd cluster on loopback for the failover comparison: `n` member processes with data dirs
//! in a temp dir, watched through each member's `POST /v3/maintenance/status` (the gRPC
//! gateway), which answers `header.member_id` and the `leader` the member follows (0 while it
//! has none) without waiting for a quorum.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use election_tests::{Speed, TempDir, free_udp_addrs};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

/// How long one status request may take before the member counts as not answering.
const STATUS_TIMEOUT: Duration = Duration::from_secs(1);

/// The `etcd` binary found on `PATH` (or at `path` if it names a file) and its version line.
pub fn find(path: &Path) -> Result<(PathBuf, String), String> {
    let bin = if path.components().count() > 1 {
        path.to_path_buf()
    } else {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join(path))
            .find(|candidate| candidate.is_file())
            .ok_or_else(|| {
                format!(
                    "no `{}` on PATH; install it (`apt-get install -y etcd-server`) or name it \
                     with --etcd PATH",
                    path.display()
                )
            })?
    };
    let out = Command::new(&bin)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {} --version: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("etcd Version:"))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| {
            format!(
                "{} --version printed no `etcd Version:` line",
                bin.display()
            )
        })?;
    Ok((bin, version))
}

/// One member's answer: its own id and the leader it follows (0: none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// `header.member_id`.
    pub member: u64,
    /// `leader`.
    pub leader: u64,
}

struct Member {
    client_url: String,
    child: Option<Child>,
    log: PathBuf,
}

/// A running etcd cluster, killed when dropped.
pub struct Etcd {
    members: Vec<Member>,
    http: Client<HttpConnector, Full<Bytes>>,
    _dir: TempDir,
}

impl Etcd {
    /// Starts `n` members of a new cluster at this heartbeat and election timeout; etcd's other
    /// settings stay at their defaults.
    pub fn start(bin: &Path, n: usize, speed: Speed) -> Etcd {
        let dir = TempDir::new("etcd");
        let ports = free_udp_addrs(2 * n);
        let (peers, clients) = ports.split_at(n);
        let name = |i: usize| format!("m{i}");
        let initial: Vec<String> = peers
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}=http://{p}", name(i)))
            .collect();
        let initial = initial.join(",");
        let token = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let members = (0..n)
            .map(|i| {
                let log = dir.path().join(format!("{}.log", name(i)));
                let out = std::fs::File::create(&log).unwrap();
                let peer_url = format!("http://{}", peers[i]);
                let client_url = format!("http://{}", clients[i]);
                let child = Command::new(bin)
                    .arg(format!("--name={}", name(i)))
                    .arg(format!("--data-dir={}", dir.path().join(name(i)).display()))
                    .arg(format!("--listen-peer-urls={peer_url}"))
                    .arg(format!("--initial-advertise-peer-urls={peer_url}"))
                    .arg(format!("--listen-client-urls={client_url}"))
                    .arg(format!("--advertise-client-urls={client_url}"))
                    .arg(format!("--initial-cluster={initial}"))
                    .arg("--initial-cluster-state=new")
                    .arg(format!("--initial-cluster-token={token}"))
                    .arg(format!("--heartbeat-interval={}", speed.heartbeat_ms))
                    .arg(format!("--election-timeout={}", speed.timeout_ms))
                    .arg("--logger=zap")
                    .stdin(Stdio::null())
                    .stdout(out.try_clone().unwrap())
                    .stderr(out)
                    .spawn()
                    .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
                Member {
                    client_url,
                    child: Some(child),
                    log,
                }
            })
            .collect();
        Etcd {
            members,
            http: Client::builder(TokioExecutor::new()).build_http(),
            _dir: dir,
        }
    }

    /// Member indices, `0..n`.
    pub fn all(&self) -> Vec<usize> {
        (0..self.members.len()).collect()
    }

    /// Member `i`'s status, `None` if it does not answer (not up yet, or killed).
    pub async fn status(&self, i: usize) -> Option<Status> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!(
                "{}/v3/maintenance/status",
                self.members[i].client_url
            ))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let response = tokio::time::timeout(STATUS_TIMEOUT, self.http.request(request))
            .await
            .ok()?
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        let body = response.into_body().collect().await.ok()?.to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).ok()?;
        // The gateway writes uint64 fields as decimal strings and leaves out zero values.
        let number = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.parse().ok(),
            serde_json::Value::Null => Some(0),
            other => other.as_u64(),
        };
        Some(Status {
            member: number(&json["header"]["member_id"])?,
            leader: number(&json["leader"])?,
        })
    }

    /// Every member of `among` asked in turn.
    pub async fn statuses(&self, among: &[usize]) -> Vec<Option<Status>> {
        let mut all = Vec::with_capacity(among.len());
        for &i in among {
            all.push(self.status(i).await);
        }
        all
    }

    /// Polls every 5 ms until every member of `among` follows one leader that is itself one of
    /// `among`; returns that leader's index. Panics after `within` with the members' log tails.
    pub async fn wait_for_leader(&self, among: &[usize], within: Duration) -> usize {
        let start = Instant::now();
        loop {
            let statuses = self.statuses(among).await;
            if let Some(leader) = agreed(&statuses) {
                let found = among
                    .iter()
                    .zip(&statuses)
                    .find(|(_, s)| s.is_some_and(|s| s.member == leader));
                if let Some((&i, _)) = found {
                    return i;
                }
            }
            if start.elapsed() > within {
                panic!(
                    "etcd: no agreed leader within {within:?}; statuses: {statuses:?}\n{}",
                    self.log_tails(10)
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// SIGKILLs member `i` and reaps it.
    pub fn kill(&mut self, i: usize) {
        let mut child = self.members[i].child.take().expect("a running member");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn log_tails(&self, lines: usize) -> String {
        let mut text = String::new();
        for m in &self.members {
            let log = std::fs::read_to_string(&m.log).unwrap_or_default();
            let all: Vec<&str> = log.lines().collect();
            text.push_str(&format!("--- {}\n", m.log.display()));
            for line in &all[all.len().saturating_sub(lines)..] {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }
}

/// The leader every status names, if all answered and name the same nonzero one.
pub fn agreed(statuses: &[Option<Status>]) -> Option<u64> {
    let mut leader = None;
    for s in statuses {
        let s = (*s)?;
        if s.leader == 0 || *leader.get_or_insert(s.leader) != s.leader {
            return None;
        }
    }
    leader
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for child in self.members.iter_mut().filter_map(|m| m.child.as_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
