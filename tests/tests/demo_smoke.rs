//! Smoke test of `election demo` as a newcomer runs it: a leader appears on /api/nodes, killing
//! the leader's process (by the pid the API shows) brings a new leader, typing `restart` brings
//! the dead node back as the demo's child, and Ctrl-C stops the demo with no node process and no
//! scratch directory left behind. And `kill -9` of the demo leaves nothing behind either.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use election_tests::{NodeView, TempDir, agreed_leader, election_bin, nodes_of};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::time::Instant;

const NODES: u16 = 5;

/// A free TCP port for the logserver and a base port with `NODES` consecutive free UDP ports;
/// each test of this file passes its own `salt`, so two running at once look in different places.
fn free_ports(salt: u16) -> (u16, u16) {
    let http = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Spread concurrent test runs apart; probe until a free run of ports is found.
    let start = 20_000 + (std::process::id() % 1_000) as u16 * 20 + salt * 10;
    let base = (start..60_000)
        .step_by(usize::from(NODES))
        .find(|&base| {
            let sockets: Vec<_> = (0..NODES)
                .map(|i| UdpSocket::bind((Ipv4Addr::LOCALHOST, base + i)))
                .collect();
            sockets.iter().all(Result::is_ok)
        })
        .expect("a run of free UDP ports");
    (http, base)
}

async fn wait_for<T>(
    what: &str,
    deadline: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn leader_pid(views: &[NodeView], leader: SocketAddr) -> u32 {
    views
        .iter()
        .find(|v| v.addr == leader.to_string())
        .expect("the leader's row")
        .pid
}

/// Whether `pid` runs (a zombie waiting for a reaper does not).
fn alive(pid: u32) -> bool {
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    });
    kill(Pid::from_raw(pid as i32), None).is_ok() && !zombie
}

/// The parent pid of `pid`, from `/proc/PID/stat` (the field after the parenthesised name).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Processes whose environment has `TMPDIR=dir`: the demo gives its own to everything it
/// starts, so these are the demo's descendants.
fn started_with(dir: &Path) -> Vec<u32> {
    let needle = format!("TMPDIR={}", dir.display());
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == needle.as_bytes()))
        })
        .collect()
}

/// A demo process, SIGKILLed if the test fails while it runs.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `election demo` with its own TMPDIR (where its scratch directory goes), stdin piped.
fn start_demo(http_port: u16, base: u16, tmp: &Path) -> Demo {
    let child = Command::new(election_bin())
        .args(["demo", "--nodes", &NODES.to_string()])
        .args([
            "--port",
            &http_port.to_string(),
            "--base-port",
            &base.to_string(),
        ])
        .args(["--heartbeat-ms", "50", "--timeout-ms", "250"])
        .env("TMPDIR", tmp)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start election demo");
    Demo(child)
}

/// Waits until nothing the demo started runs and its scratch directory is gone.
async fn nothing_left(tmp: &Path) {
    wait_for(
        "no process and no scratch dir",
        Duration::from_secs(20),
        async || {
            let left = started_with(tmp);
            let files: Vec<_> = std::fs::read_dir(tmp).unwrap().collect();
            (left.is_empty() && files.is_empty()).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_elects_survives_a_killed_leader_and_stops_cleanly() {
    let (http_port, base) = free_ports(0);
    let logserver = SocketAddr::from((Ipv4Addr::LOCALHOST, http_port));
    let addrs: Vec<SocketAddr> = (0..NODES)
        .map(|i| SocketAddr::from((Ipv4Addr::LOCALHOST, base + i)))
        .collect();
    let tmp = TempDir::new("demo");
    let mut guard = start_demo(http_port, base, tmp.path());
    let demo = &mut guard.0;

    wait_for("the logserver", Duration::from_secs(20), async || {
        TcpStream::connect(logserver).ok()
    })
    .await;
    let (leader, views) = wait_for("a first leader", Duration::from_secs(30), async || {
        let views = nodes_of(logserver).await;
        agreed_leader(&views, &addrs).map(|l| (l, views))
    })
    .await;
    let pids: Vec<u32> = addrs.iter().map(|&a| leader_pid(&views, a)).collect();
    assert!(pids.iter().all(|&p| alive(p)), "every node runs: {pids:?}");

    kill(
        Pid::from_raw(leader_pid(&views, leader) as i32),
        Signal::SIGKILL,
    )
    .unwrap();
    let survivors: Vec<SocketAddr> = addrs.iter().copied().filter(|&a| a != leader).collect();
    let next = wait_for("a new leader", Duration::from_secs(30), async || {
        agreed_leader(&nodes_of(logserver).await, &survivors)
    })
    .await;
    assert_ne!(next, leader);

    // The demo restarts the dead node itself, so it stays the demo's child.
    let old = leader_pid(&views, leader);
    writeln!(demo.stdin.as_mut().unwrap(), "restart {leader}").unwrap();
    let back = wait_for("the restarted node", Duration::from_secs(30), async || {
        let views = nodes_of(logserver).await;
        let pid = leader_pid(&views, leader);
        (pid != old && alive(pid)).then_some(pid)
    })
    .await;
    assert_eq!(
        parent_of(back),
        Some(demo.id()),
        "the restarted node is the demo's child"
    );

    kill(Pid::from_raw(demo.id() as i32), Signal::SIGINT).unwrap();
    let status = wait_for("the demo to exit", Duration::from_secs(20), async || {
        demo.try_wait().unwrap()
    })
    .await;
    assert!(status.success(), "demo exited with {status}");
    let left: Vec<u32> = pids
        .into_iter()
        .chain([back])
        .filter(|&p| alive(p))
        .collect();
    assert!(left.is_empty(), "node processes left behind: {left:?}");
    assert!(
        TcpStream::connect(logserver).is_err(),
        "the logserver still listens"
    );
    nothing_left(tmp.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_demo_leaves_no_process_and_no_scratch_dir() {
    let (http_port, base) = free_ports(1);
    let logserver = SocketAddr::from((Ipv4Addr::LOCALHOST, http_port));
    let addrs: Vec<SocketAddr> = (0..NODES)
        .map(|i| SocketAddr::from((Ipv4Addr::LOCALHOST, base + i)))
        .collect();
    let tmp = TempDir::new("demo-kill");
    let mut guard = start_demo(http_port, base, tmp.path());
    wait_for("the logserver", Duration::from_secs(20), async || {
        TcpStream::connect(logserver).ok()
    })
    .await;
    let views = wait_for("a first leader", Duration::from_secs(30), async || {
        let views = nodes_of(logserver).await;
        agreed_leader(&views, &addrs).map(|_| views)
    })
    .await;
    let pids: Vec<u32> = addrs.iter().map(|&a| leader_pid(&views, a)).collect();
    assert!(
        started_with(tmp.path()).len() > NODES as usize,
        "nodes and the watcher run"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "one scratch dir"
    );

    guard.0.kill().unwrap();
    guard.0.wait().unwrap();
    nothing_left(tmp.path()).await;
    assert!(pids.iter().all(|&p| !alive(p)), "{pids:?}");
}
