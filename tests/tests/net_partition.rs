//! Blocked links partition real nodes (over UDP and over TCP): Invitation and the asynchronous Bully form one group on
//! each side of {0,1} | {2,3,4}, and merge into one after the links are unblocked.

use std::time::Duration;

use election_core::Algorithm;
use election_tests::{Cluster, FAST, Logserver, REPORT_SLACK, TransportKind, agreed_leader, cut};

const STARTUP: Duration = Duration::from_secs(30);

async fn split_and_heal(algorithm: Algorithm, transport: TransportKind) {
    let logserver = Logserver::start().await;
    let cluster = Cluster::start(
        algorithm.name(),
        5,
        logserver.addr(),
        &FAST.flags(),
        transport,
    );
    let addrs = cluster.addrs.clone();
    let (low, high) = addrs.split_at(2);
    cluster.wait_for_leader(&logserver, &addrs, STARTUP).await;
    // Blocks reach the nodes with their next report answer (every 100 ms).
    let bound = FAST.bound(algorithm, 5) + REPORT_SLACK;

    logserver.set_blocks(&cut(low, high)).await;
    let ((left, right), took) = cluster
        .wait_for(&logserver, "two groups", bound, |views| {
            Some((agreed_leader(views, low)?, agreed_leader(views, high)?))
        })
        .await;
    eprintln!("{algorithm}: split into groups led by {left} and {right} in {took:?}");

    logserver.set_blocks(&[]).await;
    let (leader, took) = cluster.wait_for_leader(&logserver, &addrs, bound).await;
    eprintln!("{algorithm}: merged under {leader} in {took:?}");
    logserver.shutdown().await;
}

election_tests::on_both_transports! {
    invitation_splits_and_merges => |t| split_and_heal(Algorithm::Invitation, t);
    async_bully_splits_and_merges => |t| split_and_heal(Algorithm::AsyncBully, t);
}
