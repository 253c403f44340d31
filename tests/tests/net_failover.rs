//! Real node processes on loopback, over UDP and over TCP: every algorithm elects one leader
//! among 5 nodes, and after the leader is SIGKILLed the survivors agree on a new one within the
//! algorithm's bound. (Garbage datagrams: UDP; TCP garbage is in net_attack.)

use std::net::SocketAddr;
use std::time::Duration;

use election_core::Algorithm;
use election_net::wire::{self, Body, Control, Header, MAX_DATAGRAM, Stamp};
use election_tests::{Cluster, FAST, Logserver, REPORT_SLACK, TransportKind, highest_wins};

/// Generous: 5 processes boot and settle on a loaded machine.
const STARTUP: Duration = Duration::from_secs(30);

async fn elect_then_fail_over(algorithm: Algorithm, transport: TransportKind) {
    let logserver = Logserver::start().await;
    let mut cluster = Cluster::start(
        algorithm.name(),
        5,
        logserver.addr(),
        &FAST.flags(),
        transport,
    );
    let addrs = cluster.addrs.clone();
    let (leader, _) = cluster.wait_for_leader(&logserver, &addrs, STARTUP).await;
    let views = logserver.nodes().await;
    let shown = views.iter().find(|v| v.addr == leader.to_string()).unwrap();
    assert_eq!(
        shown.pid,
        cluster.pid(leader),
        "the status page shows the leader's pid"
    );
    if highest_wins(algorithm) {
        assert_eq!(leader, addrs[4], "{algorithm}: the highest node leads");
    }

    cluster.kill(leader);
    let survivors: Vec<SocketAddr> = addrs.iter().copied().filter(|a| *a != leader).collect();
    let bound = FAST.bound(algorithm, 5);
    let (new_leader, took) = cluster
        .wait_for_leader(&logserver, &survivors, bound + REPORT_SLACK)
        .await;
    if highest_wins(algorithm) {
        assert_eq!(
            new_leader, addrs[3],
            "{algorithm}: the highest survivor leads"
        );
    }
    eprintln!(
        "{algorithm} over {transport}: failover to {new_leader} took {took:?} (bound {bound:?})"
    );
    logserver.shutdown().await;
}

election_tests::on_both_transports! {
    bully_elects_and_fails_over => |t| elect_then_fail_over(Algorithm::Bully, t);
    invitation_elects_and_fails_over => |t| elect_then_fail_over(Algorithm::Invitation, t);
    async_bully_elects_and_fails_over => |t| elect_then_fail_over(Algorithm::AsyncBully, t);
    ring_elects_and_fails_over => |t| elect_then_fail_over(Algorithm::Ring, t);
    raft_elects_and_fails_over => |t| elect_then_fail_over(Algorithm::Raft, t);
}

/// Garbage, truncated envelopes, oversized datagrams, other clusters, other algorithms and
/// strangers: a node drops them all, keeps running and keeps its leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_change_nothing() {
    let logserver = Logserver::start().await;
    let mut cluster = Cluster::start(
        "bully",
        5,
        logserver.addr(),
        &FAST.flags(),
        TransportKind::Udp,
    );
    let addrs = cluster.addrs.clone();
    let (leader, _) = cluster.wait_for_leader(&logserver, &addrs, STARTUP).await;

    let junk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let stranger = junk.local_addr().unwrap();
    let mut buf = Vec::new();
    let stamp = Stamp {
        incarnation: u64::MAX,
        sequence: 1,
    };
    for (round, target) in addrs.iter().cycle().take(2000).enumerate() {
        let header = |cluster, algorithm, from| Header {
            cluster,
            algorithm,
            from,
            to: *target,
        };
        let datagram: Vec<u8> = match round % 6 {
            0 => (0..round % 300).map(|i| (i * 31 + round) as u8).collect(),
            1 => {
                let mut big = b"ELEC\x02\x00".to_vec();
                big.resize(MAX_DATAGRAM + 500, 0xff);
                big
            }
            2 => {
                let h = header("other-cluster", "bully", addrs[4]);
                wire::encode::<()>(&h, stamp, &Body::Control(Control::Left), None, &mut buf)
                    .unwrap();
                buf.clone()
            }
            3 => {
                let h = header("election", "ring", addrs[4]);
                wire::encode::<()>(&h, stamp, &Body::Control(Control::Left), None, &mut buf)
                    .unwrap();
                buf.clone()
            }
            4 => {
                // A stranger claiming to leave, and a valid header with a payload of nonsense.
                let h = header("election", "bully", stranger);
                wire::encode::<()>(&h, stamp, &Body::Control(Control::Left), None, &mut buf)
                    .unwrap();
                buf.clone()
            }
            _ => {
                let h = header("election", "bully", addrs[4]);
                wire::encode(&h, stamp, &Body::Protocol("NotAMessage"), None, &mut buf).unwrap();
                buf.truncate(buf.len() - 2);
                buf.clone()
            }
        };
        junk.send_to(&datagram, target).unwrap();
    }
    // Let several poll rounds pass, then the same leader must still be agreed by everyone.
    tokio::time::sleep(Duration::from_millis(10 * FAST.heartbeat_ms)).await;
    for addr in &addrs {
        assert!(cluster.is_running(*addr), "{addr} died of garbage");
    }
    let (still, _) = cluster.wait_for_leader(&logserver, &addrs, STARTUP).await;
    assert_eq!(still, leader);
    logserver.shutdown().await;
}
