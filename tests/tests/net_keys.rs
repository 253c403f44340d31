//! Keyring rotation without downtime, with real processes over UDP and TCP: install a second
//! key, switch the signing key, remove the old one — each step a SIGHUP — while the cluster keeps
//! its leader; afterwards a joiner with only the new key gets in and one with only the old key
//! is refused.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use election_core::Algorithm;
use election_tests::{
    Cluster, FAST, Logserver, REPORT_SLACK, TransportKind, agreed_leader, free_udp_addrs, keygen,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const STARTUP: Duration = Duration::from_secs(30);

/// The key line of a file written by `election keygen`.
fn key_line(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .find(|l| l.starts_with("election-key-v1"))
        .unwrap()
        .to_string()
}

fn write_ring(path: &Path, lines: &[&str]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Every node logs the keyring it loaded on SIGHUP; waits until each did `times` times.
async fn reloaded(cluster: &Cluster, addrs: &[SocketAddr], times: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for addr in addrs {
        while cluster.log(*addr).matches("keyring reloaded").count() < times {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{addr} did not reload its keys"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn rotate(transport: TransportKind) {
    let logserver = Logserver::start().await;
    let mut cluster = Cluster::start("bully", 3, logserver.addr(), &FAST.flags(), transport);
    let addrs = cluster.addrs.clone();
    let (leader, _) = cluster.wait_for_leader(&logserver, &addrs, STARTUP).await;
    let ring = cluster.key.clone().unwrap();
    let old = key_line(&ring);
    let fresh = cluster.dir().join("fresh.key");
    keygen(&fresh);
    let new = key_line(&fresh);

    for (step, lines) in [[&old, &new].as_slice(), &[&new, &old], &[&new]]
        .iter()
        .enumerate()
    {
        let lines: Vec<&str> = lines.iter().map(|l| l.as_str()).collect();
        write_ring(&ring, &lines);
        for addr in &addrs {
            kill(Pid::from_raw(cluster.pid(*addr) as i32), Signal::SIGHUP).unwrap();
        }
        reloaded(&cluster, &addrs, step + 1).await;
        // A few heartbeats under the new ring: the leader stays agreed throughout.
        let settle = tokio::time::Instant::now() + Duration::from_millis(10 * FAST.heartbeat_ms);
        while tokio::time::Instant::now() < settle {
            let views = logserver.nodes().await;
            if let Some(now) = agreed_leader(&views, &addrs) {
                assert_eq!(now, leader, "step {step}: the leader changed");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (still, _) = cluster
            .wait_for_leader(&logserver, &addrs, REPORT_SLACK * 3)
            .await;
        assert_eq!(still, leader, "step {step}");
    }

    // Only the new key is accepted now.
    let old_key = cluster.dir().join("old.key");
    write_ring(&old_key, &[&old]);
    let stale = free_udp_addrs(1)[0];
    let mut child = cluster.spawn_outsider(
        stale,
        &[
            format!("--join={}", addrs[0]),
            "--timeout-ms=100".to_string(),
            format!("--transport={transport}"),
            format!("--key-file={}", old_key.display()),
        ],
    );
    let joiner = free_udp_addrs(1)[0];
    cluster.spawn(joiner, &[format!("--join={}", addrs[0])]);
    let mut everyone = addrs.clone();
    everyone.push(joiner);
    let bound = FAST.bound(Algorithm::Bully, 4) + REPORT_SLACK;
    let (leader, _) = cluster
        .wait_for_leader(&logserver, &everyone, bound + STARTUP)
        .await;
    assert_eq!(leader, joiner, "the joiner with the new key leads");
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "a joiner with a removed key must be refused"
    );
    assert!(
        cluster.log(stale).contains("no welcome"),
        "{}",
        cluster.log(stale)
    );
    logserver.shutdown().await;
}

election_tests::on_both_transports! {
    keys_rotate_without_downtime => rotate;
}
