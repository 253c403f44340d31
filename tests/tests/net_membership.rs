//! Membership with real processes, over UDP and over TCP: a crashed higher node that restarts takes over (Bully, not
//! when sticky); a sixth node joins with --join; a graceful leave of the leader starts an
//! election at once.

use std::net::SocketAddr;
use std::time::Duration;

use election_core::Algorithm;
use election_tests::{
    Cluster, FAST, Logserver, REPORT_SLACK, Speed, TransportKind, agreed_leader, cut,
    free_udp_addrs, highest_wins,
};

const STARTUP: Duration = Duration::from_secs(30);

async fn restart_highest(sticky: bool, transport: TransportKind) {
    let logserver = Logserver::start().await;
    let mut flags = FAST.flags();
    if sticky {
        flags.push("--option=sticky=true".to_string());
    }
    let mut cluster = Cluster::start("bully", 5, logserver.addr(), &flags, transport);
    let addrs = cluster.addrs.clone();
    let bound = FAST.bound(Algorithm::Bully, 5) + REPORT_SLACK;
    let (first, _) = cluster.wait_for_leader(&logserver, &addrs, STARTUP).await;
    // A sticky node that boots after a lower one already leads follows it, so with staggered
    // process starts a sticky cluster's first leader may be any node.
    if !sticky {
        assert_eq!(first, addrs[4]);
    }
    // The highest node goes away (leader or not) and comes back.
    cluster.kill(addrs[4]);
    let (interim, _) = cluster
        .wait_for_leader(&logserver, &addrs[..4], bound)
        .await;
    if !sticky {
        assert_eq!(interim, addrs[3]);
    }
    cluster.spawn(addrs[4], &[]);
    let expected = if sticky { interim } else { addrs[4] };
    let (leader, _) = cluster.wait_for_leader(&logserver, &addrs, bound).await;
    assert_eq!(
        leader,
        expected,
        "sticky = {sticky}; logs:\n{}",
        cluster.log_tails(30)
    );
    // And it stays that way for a while.
    let settle = tokio::time::Instant::now() + Duration::from_millis(20 * FAST.heartbeat_ms);
    while tokio::time::Instant::now() < settle {
        let views = logserver.nodes().await;
        if let Some(now) = agreed_leader(&views, &addrs) {
            assert_eq!(now, expected, "sticky = {sticky}: leadership moved");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    logserver.shutdown().await;
}

/// Slow failure detection, so an election that starts at once is told apart from one started
/// by a timeout.
const SLOW: Speed = Speed {
    heartbeat_ms: 100,
    timeout_ms: 1500,
};

async fn join_then_leader_leaves(algorithm: Algorithm, transport: TransportKind) {
    let logserver = Logserver::start().await;
    let mut cluster = Cluster::start(
        algorithm.name(),
        5,
        logserver.addr(),
        &SLOW.flags(),
        transport,
    );
    let mut addrs = cluster.addrs.clone();
    let bound = SLOW.bound(algorithm, 6) + REPORT_SLACK;
    cluster.wait_for_leader(&logserver, &addrs, STARTUP).await;

    let joiner = free_udp_addrs(1)[0];
    cluster.spawn(joiner, &[format!("--join={}", addrs[0])]);
    addrs.push(joiner);
    let (leader, _) = cluster.wait_for_leader(&logserver, &addrs, bound).await;
    if highest_wins(algorithm) {
        assert_eq!(
            leader, joiner,
            "{algorithm}: the joiner has the highest priority"
        );
    }

    // Timed from the SIGTERM: the leaver announces Left before it exits.
    let left_at = tokio::time::Instant::now();
    cluster.terminate(leader).await;
    let rest: Vec<SocketAddr> = addrs.iter().copied().filter(|a| *a != leader).collect();
    let (next, _) = cluster.wait_for_leader(&logserver, &rest, bound).await;
    let took = left_at.elapsed();
    eprintln!("{algorithm}: {leader} left, {next} leads after {took:?}");
    let views = logserver.nodes().await;
    let gone = views.iter().find(|v| v.addr == leader.to_string()).unwrap();
    assert_eq!(
        gone.state,
        election_core::State::Down,
        "the leaver reported Down"
    );
    if algorithm != Algorithm::Invitation {
        // A crash would go unnoticed for at least a timeout; a leave is announced.
        assert!(
            took < Duration::from_millis(SLOW.timeout_ms),
            "{algorithm}: election after a leave took {took:?}"
        );
    }
    logserver.shutdown().await;
}

/// The asynchronous Bully persists its incarnation in --state-dir: a restarted node comes back
/// with a larger one.
async fn restart_takes_a_new_incarnation(transport: TransportKind) {
    let logserver = Logserver::start().await;
    let mut cluster = Cluster::start("async-bully", 3, logserver.addr(), &FAST.flags(), transport);
    let addrs = cluster.addrs.clone();
    let bound = FAST.bound(Algorithm::AsyncBully, 3) + REPORT_SLACK;
    cluster.wait_for_leader(&logserver, &addrs, STARTUP).await;
    let incarnation_of = |views: &[election_tests::NodeView], pid: u32| {
        views
            .iter()
            .find(|v| v.addr == addrs[0].to_string() && v.pid == pid)
            .and_then(|v| v.incarnation)
    };
    let first_pid = cluster.pid(addrs[0]);
    let (first, _) = cluster
        .wait_for(&logserver, "an incarnation", bound, |views| {
            incarnation_of(views, first_pid)
        })
        .await;
    cluster.kill(addrs[0]);
    let pid = cluster.spawn(addrs[0], &[]);
    let (second, _) = cluster
        .wait_for(
            &logserver,
            "the restarted node's incarnation",
            bound,
            |views| incarnation_of(views, pid),
        )
        .await;
    assert!(
        second > first,
        "incarnation {first} then {second} after a restart"
    );
    cluster.wait_for_leader(&logserver, &addrs, bound).await;
    logserver.shutdown().await;
}

/// Two nodes join at the same instant through different members: they get different ids, both
/// above every member's, and every table agrees (each node logs every member it learns).
async fn race_two_joins(transport: TransportKind) {
    let logserver = Logserver::start().await;
    let mut cluster = Cluster::start("bully", 5, logserver.addr(), &FAST.flags(), transport);
    let mut addrs = cluster.addrs.clone();
    cluster.wait_for_leader(&logserver, &addrs, STARTUP).await;
    let joiners = free_udp_addrs(2);
    cluster.spawn(joiners[0], &[format!("--join={}", addrs[0])]);
    cluster.spawn(joiners[1], &[format!("--join={}", addrs[3])]);
    addrs.extend(&joiners);
    let bound = FAST.bound(Algorithm::Bully, 7) + REPORT_SLACK;
    let (leader, _) = cluster
        .wait_for_leader(&logserver, &addrs, bound + STARTUP)
        .await;
    assert!(joiners.contains(&leader), "a joiner outranks every member");
    // Every (id, address) any node learned or was given.
    let mut owner = std::collections::BTreeMap::new();
    for addr in &addrs {
        for line in cluster.log(*addr).lines() {
            let field = |name: &str| {
                let rest = line.split(&format!(" {name}=")).nth(1)?;
                Some(rest.split_whitespace().next()?.to_string())
            };
            let learned = if line.contains("member joined") {
                field("id").zip(field("addr").map(|a| a.replace("Some(", "").replace(')', "")))
            } else if line.contains(" joined ") {
                field("id").map(|id| (id, addr.to_string()))
            } else {
                None
            };
            if let Some((id, at)) = learned {
                let held = owner.entry(id.clone()).or_insert_with(|| at.clone());
                assert_eq!(*held, at, "id {id} given to {held} and {at}");
            }
        }
    }
    let ids: Vec<&String> = owner
        .iter()
        .filter(|(_, a)| joiners.iter().any(|j| j.to_string() == **a))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids.len(), 2, "both joiners' ids were seen: {owner:?}");
    logserver.shutdown().await;
}

/// Once welcomed, a joiner announces itself through the membership layer: a member its admitter
/// cannot reach learns of it at once, not at the next periodic re-announcement (put off here
/// past the end of the test).
async fn joiner_announces_itself(transport: TransportKind) {
    let logserver = Logserver::start().await;
    let mut flags = FAST.flags();
    flags.push("--announce-ms=600000".to_string());
    let mut cluster = Cluster::start("bully", 5, logserver.addr(), &flags, transport);
    let addrs = cluster.addrs.clone();
    cluster.wait_for_leader(&logserver, &addrs, STARTUP).await;
    logserver.set_blocks(&cut(&addrs[..1], &addrs[2..3])).await;
    // The nodes learn the blocked links with their next report (every 100 ms).
    tokio::time::sleep(REPORT_SLACK).await;
    let joiner = free_udp_addrs(1)[0];
    cluster.spawn(joiner, &[format!("--join={}", addrs[0])]);
    let deadline = tokio::time::Instant::now() + FAST.bound(Algorithm::Bully, 6) + REPORT_SLACK;
    let learned = |log: String| {
        log.lines()
            .any(|l| l.contains("member joined") && l.contains(&joiner.to_string()))
    };
    while !learned(cluster.log(addrs[2])) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "n2, cut off from the admitter, never learned the joiner:\n{}",
            cluster.log_tails(20)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    logserver.shutdown().await;
}

election_tests::on_both_transports! {
    racing_joins_get_distinct_ids => race_two_joins;
    a_joiner_announces_itself_to_members_its_admitter_cannot_reach => joiner_announces_itself;
    bully_restarted_higher_node_takes_over => |t| restart_highest(false, t);
    sticky_bully_keeps_its_leader_when_a_higher_node_returns => |t| restart_highest(true, t);
    bully_join_and_leave => |t| join_then_leader_leaves(Algorithm::Bully, t);
    invitation_join_and_leave => |t| join_then_leader_leaves(Algorithm::Invitation, t);
    async_bully_join_and_leave => |t| join_then_leader_leaves(Algorithm::AsyncBully, t);
    ring_join_and_leave => |t| join_then_leader_leaves(Algorithm::Ring, t);
    async_bully_restart_takes_a_new_incarnation => restart_takes_a_new_incarnation;
}
