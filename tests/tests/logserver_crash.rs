//! The durability contract with real `election logserver` processes: SIGKILL during ingest
//! loses no acknowledged report and hands no served sequence number to another report, as seen
//! by writers and by a reader polling `since=` throughout; SIGTERM under load is a clean stop
//! that loses nothing acknowledged either.

mod logserver_common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::{Method, StatusCode};
use logserver_common::{Http, LogserverProcess, free_port, report, temp_dir};
use nix::sys::signal::Signal;
use serde_json::{Value, json};

/// Concurrent writers; each posts batches of [`BATCH`] reports with unique `node_time_us`.
const WRITERS: usize = 6;
const BATCH: u64 = 20;

/// What the clients saw while the servers came and went.
#[derive(Default)]
struct Seen {
    /// `node_time_us` of every acknowledged report.
    acked: Mutex<BTreeSet<u64>>,
    /// `seq` → `node_time_us` of every entry the reader was served.
    served: Mutex<BTreeMap<u64, u64>>,
    /// Problems the reader found as they happened.
    violations: Mutex<Vec<String>>,
}

fn entries(text: &str) -> Vec<(u64, u64)> {
    let log: Value = serde_json::from_str(text).unwrap();
    log.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["node_time_us"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Posts batches until `stop`, recording what was acknowledged.
async fn writer(
    http: Http,
    id: usize,
    next: Arc<AtomicU64>,
    seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
) {
    let json = [("content-type", "application/json")];
    while !stop.load(Ordering::Relaxed) {
        let first = next.fetch_add(BATCH, Ordering::Relaxed);
        let reports: Vec<_> = (first..first + BATCH)
            .map(|t| {
                report(
                    &format!("127.0.0.1:{}", 20_000 + id * 10 + (t % 10) as usize),
                    "127.0.0.1:1",
                    t,
                )
            })
            .collect();
        let body = json!({ "reports": reports }).to_string();
        match http
            .try_send(Method::POST, "/api/reports", &body, &json)
            .await
        {
            Ok((StatusCode::OK, _, _)) => seen.acked.lock().unwrap().extend(first..first + BATCH),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Polls `since=` until `stop`, checking that what it is served only ever grows in order.
async fn reader(http: Http, seen: Arc<Seen>, stop: Arc<AtomicBool>) {
    let mut cursor: Option<u64> = None;
    while !stop.load(Ordering::Relaxed) {
        let path = match cursor {
            Some(c) => format!("/api/log?since={c}&limit=10000"),
            None => "/api/log?limit=10000".to_string(),
        };
        let Ok((StatusCode::OK, _, text)) = http.try_send(Method::GET, &path, "", &[]).await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        for (seq, marker) in entries(&text) {
            if cursor.is_some_and(|c| seq <= c) {
                seen.violations
                    .lock()
                    .unwrap()
                    .push(format!("seq {seq} served after {cursor:?}"));
            }
            cursor = Some(seq);
            seen.served.lock().unwrap().insert(seq, marker);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The whole log as `seq` → `node_time_us`, read by paging with `since=`.
async fn whole_log(http: &Http) -> BTreeMap<u64, u64> {
    let mut all = BTreeMap::new();
    let mut cursor: Option<u64> = None;
    loop {
        let path = match cursor {
            Some(c) => format!("/api/log?since={c}&limit=10000"),
            None => "/api/log?limit=10000".to_string(),
        };
        let (status, _, text) = http.send_full(Method::GET, &path, "", &[]).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let page = entries(&text);
        let Some(&(last, _)) = page.last() else {
            return all;
        };
        for (seq, marker) in page {
            assert!(all.insert(seq, marker).is_none(), "seq {seq} twice");
        }
        cursor = Some(last);
    }
}

/// Runs writers and a reader against servers on `port`, started and stopped by `rounds`.
async fn under_load(port: u16, rounds: impl AsyncFnOnce()) -> Arc<Seen> {
    let http = Http::to(&format!("http://127.0.0.1:{port}"));
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(1));
    let mut tasks = Vec::new();
    for id in 0..WRITERS {
        tasks.push(tokio::spawn(writer(
            http.clone(),
            id,
            next.clone(),
            seen.clone(),
            stop.clone(),
        )));
    }
    tasks.push(tokio::spawn(reader(
        http.clone(),
        seen.clone(),
        stop.clone(),
    )));
    rounds().await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    seen
}

/// Checks the final log against what the clients saw.
fn check(seen: &Seen, log: &BTreeMap<u64, u64>, at_least: usize) {
    assert!(
        seen.violations.lock().unwrap().is_empty(),
        "{:?}",
        seen.violations.lock().unwrap()
    );
    let acked = seen.acked.lock().unwrap();
    assert!(
        acked.len() >= at_least,
        "only {} reports acknowledged",
        acked.len()
    );
    let stored: BTreeSet<u64> = log.values().copied().collect();
    assert_eq!(stored.len(), log.len(), "a report stored twice");
    let lost: Vec<&u64> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged reports lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    let served = seen.served.lock().unwrap();
    let reused: Vec<String> = served
        .iter()
        .filter(|(seq, marker)| log.get(seq) != Some(marker))
        .map(|(seq, marker)| format!("seq {seq}: served {marker}, now {:?}", log.get(seq)))
        .collect();
    assert!(
        reused.is_empty(),
        "{} served seqs changed: {:?}",
        reused.len(),
        &reused[..reused.len().min(5)]
    );
    assert!(
        served.len() >= at_least / 2,
        "the reader saw only {} entries",
        served.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_ingest_loses_nothing_acknowledged_and_reuses_no_seq() {
    let dir = temp_dir("sigkill");
    let port = free_port();
    let seen = under_load(port, async || {
        for _ in 0..3 {
            let server = LogserverProcess::start(&dir, port, &[], None).await;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let status = server.stop(Signal::SIGKILL, Duration::from_secs(10)).await;
            assert!(!status.success());
        }
    })
    .await;
    let server = LogserverProcess::start(&dir, port, &[], None).await;
    let log = whole_log(&Http::to(&format!("http://127.0.0.1:{port}"))).await;
    check(&seen, &log, 500);
    let status = server.stop(Signal::SIGTERM, Duration::from_secs(20)).await;
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_stops_cleanly_and_loses_nothing_acknowledged() {
    let dir = temp_dir("sigterm");
    let port = free_port();
    let seen = under_load(port, async || {
        let server = LogserverProcess::start(&dir, port, &[], None).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let status = server.stop(Signal::SIGTERM, Duration::from_secs(20)).await;
        assert!(status.success(), "SIGTERM is a clean stop: {status}");
        let log = std::fs::read_to_string(dir.join("logserver.log")).unwrap();
        assert!(log.contains("SIGTERM"), "{log}");
        assert!(log.contains("logserver stopped"), "{log}");
    })
    .await;
    let server = LogserverProcess::start(&dir, port, &[], None).await;
    let log = whole_log(&Http::to(&format!("http://127.0.0.1:{port}"))).await;
    check(&seen, &log, 200);
    server.stop(Signal::SIGTERM, Duration::from_secs(20)).await;
}
