//! Smoke test of `election demo` as a newcomer runs it: a leader appears on /api/nodes, killing
//! the leader's process (by the pid the API shows) brings a new leader, and Ctrl-C stops the demo
//! with no node process left behind.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use election_tests::{NodeView, agreed_leader, election_bin, nodes_of};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::time::Instant;

const NODES: u16 = 5;

/// A free TCP port for the logserver and a base port with `NODES` consecutive free UDP ports.
fn free_ports() -> (u16, u16) {
    let http = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Spread concurrent test runs apart; probe until a free run of ports is found.
    let start = 20_000 + (std::process::id() % 2_000) as u16 * 10;
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

fn alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_elects_survives_a_killed_leader_and_stops_cleanly() {
    let (http_port, base) = free_ports();
    let logserver = SocketAddr::from((Ipv4Addr::LOCALHOST, http_port));
    let addrs: Vec<SocketAddr> = (0..NODES)
        .map(|i| SocketAddr::from((Ipv4Addr::LOCALHOST, base + i)))
        .collect();
    let mut demo = Command::new(election_bin())
        .args(["demo", "--nodes", &NODES.to_string()])
        .args([
            "--port",
            &http_port.to_string(),
            "--base-port",
            &base.to_string(),
        ])
        .args(["--heartbeat-ms", "50", "--timeout-ms", "250"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start election demo");

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

    kill(Pid::from_raw(demo.id() as i32), Signal::SIGINT).unwrap();
    let status = wait_for("the demo to exit", Duration::from_secs(20), async || {
        demo.try_wait().unwrap()
    })
    .await;
    assert!(status.success(), "demo exited with {status}");
    let left: Vec<u32> = pids.into_iter().filter(|&p| alive(p)).collect();
    assert!(left.is_empty(), "node processes left behind: {left:?}");
    assert!(
        TcpStream::connect(logserver).is_err(),
        "the logserver still listens"
    );
}
