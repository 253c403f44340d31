//! `election demo`: a logserver and N node processes on loopback, with a running commentary of
//! who leads, so a newcomer sees an election, kills the leader and watches the next one win.
//!
//! Nothing outlives the demo, however it ends: the nodes ask the kernel for SIGTERM when the
//! demo dies (`PR_SET_PDEATHSIG`, set by each node at start when [`PARENT_ENV`] names its
//! parent), and the scratch directory is a `tempfile` directory, removed on every normal exit
//! and, after a SIGKILL, by a small watcher process that removes it when the demo's end of a
//! pipe closes.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use election_core::{Algorithm, State};
use election_net::{NodeArgs, NodeOptions, Supervisor};
use logserver::{NodeView, ServeArgs, Server};
use nix::sys::signal::Signal;

/// How often demo nodes report (and so how fast a block on the page reaches them).
const REPORT_MS: u64 = 250;
/// Set on the demo's nodes to the demo's pid: the node then dies with it.
pub const PARENT_ENV: &str = "ELECTION_DIE_WITH_PARENT";
/// Set on the demo's watcher to the scratch directory it removes when its stdin closes.
const CLEANUP_ENV: &str = "ELECTION_DEMO_CLEANUP";

/// Options of `election demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// The algorithm the nodes run: bully, invitation, async-bully, ring or raft.
    #[arg(long, default_value = "bully")]
    pub algorithm: Algorithm,
    /// How many node processes to start (2 to 64).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(2..=64))]
    pub nodes: u16,
    /// The logserver's port on 127.0.0.1 (the status page).
    #[arg(long, default_value_t = 4711)]
    pub port: u16,
    /// The first node's UDP port; node i listens on 127.0.0.1:(base-port + i).
    #[arg(long, default_value_t = 9000)]
    pub base_port: u16,
    /// Directory of the logserver's embedded store (default: a fresh temporary directory,
    /// removed when the demo stops).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Period of the nodes' polls and heartbeats, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 250)]
    pub heartbeat_ms: u64,
    /// How long a node waits for an answer before declaring a peer failed, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub timeout_ms: u64,
    /// Have the nodes report their protocol messages too, so the status page's timeline draws
    /// them as arrows (default: off, status changes and faults only).
    #[arg(long)]
    pub report_messages: bool,
}

/// The roles a process started by the demo may have, read from its environment before
/// anything else: a node that must die with the demo, or the scratch-directory watcher (which
/// does its work here and returns the exit code).
pub fn child_role() -> Option<ExitCode> {
    if let Some(dir) = std::env::var_os(CLEANUP_ENV) {
        // Blocks until the demo exits, however it exits: then its end of the pipe closes.
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        // The nodes are stopping at the same moment (their SIGTERM from the parent's death):
        // the last ones still write state while they leave, so remove the directory until it
        // has stayed gone for a second (at most ten seconds).
        let dir = std::path::PathBuf::from(dir);
        let (step, mut gone_for) = (std::time::Duration::from_millis(100), 0);
        for _ in 0..100 {
            let _ = std::fs::remove_dir_all(&dir);
            gone_for = if dir.exists() { 0 } else { gone_for + 1 };
            if gone_for >= 10 {
                break;
            }
            std::thread::sleep(step);
        }
        return Some(ExitCode::SUCCESS);
    }
    if let Some(parent) = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
    {
        let armed = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).is_ok();
        // The parent may have died before the request took effect.
        if !armed || nix::unistd::getppid().as_raw() != parent {
            return Some(ExitCode::FAILURE);
        }
    }
    None
}

/// Starts the watcher that removes `dir` once this process has exited, by any means. Its own
/// process group, so a Ctrl-C at the terminal leaves it to finish its job.
pub(crate) fn watch_scratch(dir: &Path) -> anyhow::Result<std::process::Child> {
    Command::new(std::env::current_exe()?)
        .env(CLEANUP_ENV, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("cannot start the scratch-directory watcher")
}

/// Runs the demo until Ctrl-C or SIGTERM, then stops every node and the logserver.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let addrs = node_addrs(&args)?;
    let scratch = tempfile::Builder::new()
        .prefix("election-demo-")
        .tempdir()
        .context("cannot create the demo's scratch directory")?;
    let _watcher = watch_scratch(scratch.path())?;
    run_in(&args, &addrs, scratch.path()).await
}

async fn run_in(args: &DemoArgs, addrs: &[SocketAddr], scratch: &Path) -> anyhow::Result<()> {
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| scratch.join("logserver-data"));
    let server = Server::start(ServeArgs::new(args.port, data_dir))
        .await
        .with_context(|| {
            format!(
                "cannot start the logserver on port {} (try --port)",
                args.port
            )
        })?;
    let logserver = server.local_addr();

    // The demo's nodes sign every datagram with a key of their own, made afresh each run.
    let options = local_node_options(
        addrs,
        scratch,
        logserver,
        (args.heartbeat_ms, args.timeout_ms, REPORT_MS),
        &format!("demo-{}", std::process::id()),
        args.report_messages,
    )?;
    options.timing().context("node timing")?;
    let mut nodes = node_supervisor()?;
    let mut pids = BTreeMap::new();
    let mut command_lines = BTreeMap::new();
    for &addr in addrs {
        let node = NodeArgs {
            algorithm: args.algorithm.name().to_string(),
            addr,
            join: None,
            options: options.clone(),
        };
        let pid = nodes.spawn(&addr.to_string(), &node.to_args())?;
        pids.insert(addr.to_string(), pid);
        command_lines.insert(addr.to_string(), node.to_args());
    }
    print_banner(args, logserver, &pids, &options.config);

    let watched = watch(&server, &mut nodes, &command_lines).await;
    println!(
        "\nstopping {} nodes and the logserver…",
        nodes.children().len()
    );
    nodes.shutdown(Duration::from_secs(3)).await;
    server.shutdown().await.context("logserver shutdown")?;
    println!("demo stopped");
    watched
}

/// The options of the nodes of a keyed cluster on this machine (the demo's, a chaos campaign's):
/// writes the `server_config` of `addrs` and a fresh key into `scratch`; the nodes report to
/// `logserver` every `report_ms` and keep their state in `scratch/state` (the periods are the
/// heartbeat, timeout and report period, in ms).
pub(crate) fn local_node_options(
    addrs: &[SocketAddr],
    scratch: &Path,
    logserver: SocketAddr,
    (heartbeat_ms, timeout_ms, report_ms): (u64, u64, u64),
    cluster_id: &str,
    report_messages: bool,
) -> anyhow::Result<NodeOptions> {
    let config = scratch.join("server_config");
    let lines: String = addrs.iter().map(|a| format!("{a}\n")).collect();
    std::fs::write(&config, lines).with_context(|| format!("cannot write {}", config.display()))?;
    let key = scratch.join("cluster.key");
    election_net::keys::generate(&key)
        .with_context(|| format!("cannot make the cluster's key {}", key.display()))?;
    Ok(NodeOptions {
        key_files: vec![key],
        insecure: false,
        max_members: 1024,
        announce_ms: 1000,
        transport: election_net::TransportKind::Udp,
        config,
        logserver: Some(logserver.to_string()),
        report_token: None,
        heartbeat_ms,
        timeout_ms,
        report_ms,
        algorithm_options: Vec::new(),
        cluster_id: cluster_id.to_string(),
        state_dir: Some(scratch.join("state")),
        report_messages,
    })
}

/// The supervisor of a local cluster's node processes: they die with this process, and log only
/// warnings (the status page shows their state; an explicit RUST_LOG still wins).
pub(crate) fn node_supervisor() -> anyhow::Result<Supervisor> {
    let mut nodes = Supervisor::current_exe()?;
    if std::env::var_os("RUST_LOG").is_none() {
        nodes.env("RUST_LOG", "warn");
    }
    nodes.env(PARENT_ENV, &std::process::id().to_string());
    Ok(nodes)
}

/// The nodes' addresses, after checking that their ports are free so a clash is reported up
/// front rather than as a node dying.
fn node_addrs(args: &DemoArgs) -> anyhow::Result<Vec<SocketAddr>> {
    if TcpListener::bind((Ipv4Addr::LOCALHOST, args.port)).is_err() {
        bail!(
            "port {} is in use: is another logserver or demo running? (try --port)",
            args.port
        );
    }
    free_node_addrs(args.base_port, args.nodes)
}

/// `nodes` loopback addresses from `base_port` on, each checked to be free.
pub(crate) fn free_node_addrs(base_port: u16, nodes: u16) -> anyhow::Result<Vec<SocketAddr>> {
    let last = u32::from(base_port) + u32::from(nodes) - 1;
    if last > u32::from(u16::MAX) {
        bail!("--base-port {base_port} leaves no room for {nodes} nodes");
    }
    (0..nodes)
        .map(|i| {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, base_port + i));
            UdpSocket::bind(addr)
                .map(|_| addr)
                .map_err(|e| anyhow::anyhow!("UDP port {addr} is not free ({e}); try --base-port"))
        })
        .collect()
}

fn print_banner(
    args: &DemoArgs,
    logserver: SocketAddr,
    pids: &BTreeMap<String, u32>,
    config: &Path,
) {
    println!(
        "election demo: {} {} nodes on loopback\n",
        args.nodes, args.algorithm
    );
    println!("  status page   http://{logserver}/status");
    println!("  JSON API      http://{logserver}/api/nodes");
    println!("  server_config {}\n", config.display());
    println!("  {:<22} pid", "node (priority: lowest first)");
    for (addr, pid) in pids {
        println!("  {addr:<22} {pid}");
    }
    println!(
        "\nTry:\n  - kill the leader with the pid printed below (kill -9 PID) and watch the re-election\n  \
         - on the status page, tick pairs under \"Block connections\" and submit to partition the nodes\n    \
         (with invitation or async-bully each side forms its own group; reset heals it)\n  \
         - type `restart` (or `r`) and Enter to start the dead nodes again, `restart ADDR` for one\n  \
         - press Ctrl-C here to stop everything\n"
    );
}

/// Prints who leads whenever it changes and which node died, and restarts dead nodes when
/// asked on stdin, until Ctrl-C or SIGTERM.
async fn watch(
    server: &Server,
    nodes: &mut Supervisor,
    command_lines: &BTreeMap<String, Vec<String>>,
) -> anyhow::Result<()> {
    let stop = election_net::stop_signal()?;
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last = String::new();
    let mut typed = typed_lines();
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            Some(exit) = nodes.wait_any() => {
                let how = exit.status.map_or_else(|e| e.to_string(), |s| s.to_string());
                println!("node {} (pid {}) exited: {how}", exit.label, exit.pid);
                println!("  type `restart {}` (or `r`) and Enter to start it again", exit.label);
            }
            Some(line) = typed.recv() => restart(nodes, command_lines, &line),
            _ = tick.tick() => {
                let summary = leadership(&server.nodes());
                if summary != last {
                    println!("{summary}");
                    last = summary;
                }
            }
        }
    }
}

/// The lines typed on stdin. Read on a thread of its own, not tokio's blocking pool, whose
/// shutdown would wait for a read that may never return.
fn typed_lines() -> tokio::sync::mpsc::Receiver<String> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Handles a typed command: `restart [ADDR]` (or `r [ADDR]`) starts the named dead node, or
/// every dead node, again as a child of the demo.
fn restart(nodes: &mut Supervisor, command_lines: &BTreeMap<String, Vec<String>>, line: &str) {
    let mut words = line.split_whitespace();
    match words.next() {
        None => return,
        Some("r" | "restart") => {}
        Some(other) => {
            println!(
                "unknown command {other:?}: type `restart [ADDR]` (or `r`), or Ctrl-C to stop"
            );
            return;
        }
    }
    let running: Vec<String> = nodes
        .children()
        .into_iter()
        .map(|(label, _)| label)
        .collect();
    let wanted: Vec<&String> = match words.next() {
        Some(addr) => match command_lines.get_key_value(addr) {
            Some((label, _)) => vec![label],
            None => {
                println!(
                    "no node {addr} in this demo (nodes: {})",
                    join_keys(command_lines)
                );
                return;
            }
        },
        None => command_lines.keys().collect(),
    };
    let dead: Vec<&String> = wanted
        .into_iter()
        .filter(|a| !running.contains(a))
        .collect();
    if dead.is_empty() {
        println!("no dead node to restart");
    }
    for addr in dead {
        match nodes.spawn(addr, &command_lines[addr]) {
            Ok(pid) => println!("node {addr} restarted (pid {pid})"),
            Err(e) => println!("cannot restart {addr}: {e}"),
        }
    }
}

fn join_keys(map: &BTreeMap<String, Vec<String>>) -> String {
    map.keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line saying who leads whom among the reachable nodes.
fn leadership(nodes: &[NodeView]) -> String {
    let live: Vec<&NodeView> = nodes.iter().filter(|n| n.reachable).collect();
    let mut leaders: Vec<String> = live
        .iter()
        .filter(|n| {
            n.node.report.state == State::Normal
                && n.node.report.coordinator.as_deref() == Some(n.node.addr())
        })
        .map(|leader| {
            let followers = live
                .iter()
                .filter(|n| {
                    n.node.report.coordinator == leader.node.report.coordinator
                        && n.node.report.state == State::Normal
                })
                .count();
            format!(
                "{} leads {followers}/{} (pid {}: kill -9 {})",
                leader.node.addr(),
                live.len(),
                leader.node.report.pid,
                leader.node.report.pid
            )
        })
        .collect();
    if leaders.is_empty() {
        leaders.push(format!(
            "no leader yet among {} reachable nodes (election in progress)",
            live.len()
        ));
    }
    leaders.join("; ")
}
