//! `--report-messages` with real processes: the nodes' sends and receives reach the logserver,
//! and its ShiViz export of the live cluster pairs them into messages (arrows on /timeline).

use std::time::Duration;

use election_tests::{Cluster, FAST, Logserver, TransportKind};

/// A three-node Bully cluster reporting its messages: once it has a leader, `/api/shiviz` holds
/// receives paired with their sends, and each receive's clock has seen its send's.
async fn messages_become_arrows(transport: TransportKind) {
    let logserver = Logserver::start().await;
    let mut flags = FAST.flags();
    flags.push("--report-messages".to_string());
    let cluster = Cluster::start("bully", 3, logserver.addr(), &flags, transport);
    let addrs = cluster.addrs.clone();
    cluster
        .wait_for_leader(&logserver, &addrs, Duration::from_secs(30))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = logserver.get("/api/shiviz").await;
        let events = election_view::check_shiviz(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let receives: Vec<_> = events
            .iter()
            .filter(|e| e.text.contains(" receive #"))
            .collect();
        let sends = events.iter().filter(|e| e.text.contains(" send #")).count();
        if !receives.is_empty() && sends > 0 {
            // A receive's host counted the send: its clock names a second host.
            assert!(receives.iter().all(|r| r.clock.len() >= 2), "{text}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no paired messages in /api/shiviz:\n{text}\n{}",
            cluster.log_tails(10)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let page = logserver.get("/timeline").await;
    assert!(
        page.contains("status changes and messages"),
        "the timeline draws them"
    );
    logserver.shutdown().await;
}

election_tests::on_both_transports! {
    reported_messages_pair_into_arrows => messages_become_arrows;
}
