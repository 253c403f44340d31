//! Logserver: durable ingest (every report acknowledged only once committed) from 64 concurrent
//! clients over loopback HTTP with the embedded store — reports per second and request latency
//! percentiles —, `/status` render time with 1,000 nodes, and (when `MONGODB_URI` is set) the
//! same ingest with MongoDB.
//!
//! `cargo bench -p election-benches --bench logserver` (arguments: `ingest`, `page`, `mongodb`
//! pick parts; default all).
//!
//! Each client posts batches of [`CLIENT_BATCH`] reports on its own keep-alive connection, the
//! next as soon as the previous is acknowledged. A 503 would be retried after 5 ms, as a node
//! would, and counted.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::Criterion;
use election_core::State;
use election_core::report::{NodeReport, ReportEvent};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use logserver::{ServeArgs, Server};
use tokio::runtime::Runtime;

const BATCH: usize = 1_000;
const PAGE_NODES: usize = 1_000;
/// Concurrent clients of the ingest measurement.
const CLIENTS: usize = 64;
/// Reports per request in the ingest measurement (nodes send up to 256).
const CLIENT_BATCH: usize = 100;
/// Offered load of the paced ingest measurement, reports per second (the target).
const OFFERED: f64 = 50_000.0;
/// Length of one ingest measurement.
const INGEST_TIME: Duration = Duration::from_secs(10);

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn report(node: usize, t: u64) -> NodeReport {
    let leader = "127.0.0.1:10999".to_string();
    NodeReport {
        addr: format!("127.0.0.1:{}", 10_000 + node),
        algorithm: "async-bully".to_string(),
        event: ReportEvent::Heartbeat,
        state: State::Normal,
        coordinator: Some(leader.clone()),
        group: Some(format!("{leader}#{t}")),
        incarnation: Some(3),
        term: None,
        phase: "Norm".to_string(),
        node_time_us: t,
        heartbeat_ms: 60_000,
        pid: 1234,
        drops: Default::default(),
        messages: Vec::new(),
        messages_dropped: 0,
    }
}

/// A batch body of `BATCH` reports from `nodes` distinct nodes.
fn batch_body(nodes: usize) -> Bytes {
    let reports: Vec<NodeReport> = (0..BATCH).map(|i| report(i % nodes, i as u64)).collect();
    Bytes::from(serde_json::json!({ "reports": reports }).to_string())
}

fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("logserver-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn request(
    client: &HttpClient,
    method: Method,
    url: &str,
    body: Bytes,
) -> (StatusCode, Bytes) {
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap();
    let res = client.request(req).await.expect("logserver answers");
    let status = res.status();
    (status, res.into_body().collect().await.unwrap().to_bytes())
}

/// Posts one batch, retrying while the store queue is full.
async fn post(client: &HttpClient, url: &str, body: &Bytes) {
    loop {
        match request(client, Method::POST, url, body.clone()).await {
            (StatusCode::OK, _) => return,
            (StatusCode::SERVICE_UNAVAILABLE, _) => {
                tokio::time::sleep(Duration::from_millis(5)).await
            }
            (status, text) => panic!("POST /api/reports: {status} {text:?}"),
        }
    }
}

/// Throughput and latency of `CLIENTS` clients posting `CLIENT_BATCH`-report batches to `url`
/// for `time`; each client has its own connection. With `rate`, the clients together offer that
/// many reports per second (each posts on a fixed period, as nodes do); without, each posts its
/// next batch as soon as the last is acknowledged (saturation).
async fn ingest(url: &str, time: Duration, rate: Option<f64>) -> (f64, Vec<Duration>, u64) {
    let body = Bytes::from(
        serde_json::json!({
            "reports": (0..CLIENT_BATCH).map(|i| report(i % 100, i as u64)).collect::<Vec<_>>()
        })
        .to_string(),
    );
    let start = Instant::now();
    let end = start + time;
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (url, body) = (url.to_string(), body.clone());
        tasks.push(tokio::spawn(async move {
            let client: HttpClient = Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(1)
                .build_http();
            let mut latencies = Vec::new();
            let mut retries = 0u64;
            let mut pace = rate.map(|r| {
                let mut tick = tokio::time::interval(Duration::from_secs_f64(
                    (CLIENTS * CLIENT_BATCH) as f64 / r,
                ));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick
            });
            while Instant::now() < end {
                if let Some(tick) = &mut pace {
                    tick.tick().await;
                }
                let sent = Instant::now();
                loop {
                    match request(&client, Method::POST, &url, body.clone()).await {
                        (StatusCode::OK, _) => break,
                        (StatusCode::SERVICE_UNAVAILABLE, _) => {
                            retries += 1;
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        (status, text) => panic!("POST /api/reports: {status} {text:?}"),
                    }
                }
                latencies.push(sent.elapsed());
            }
            (latencies, retries)
        }));
    }
    let mut all = Vec::new();
    let mut retries = 0;
    for t in tasks {
        let (l, r) = t.await.unwrap();
        all.extend(l);
        retries += r;
    }
    let rate = (all.len() * CLIENT_BATCH) as f64 / start.elapsed().as_secs_f64();
    all.sort_unstable();
    (rate, all, retries)
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn print_ingest(what: &str, (rate, latencies, retries): &(f64, Vec<Duration>, u64)) {
    println!(
        "logserver/{what}: {CLIENTS} clients x batches of {CLIENT_BATCH}, durable \
         acknowledgements: {rate:.0} reports/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms \
         over {} requests; {retries} retried 503s",
        quantile(latencies, 0.5),
        quantile(latencies, 0.99),
        quantile(latencies, 1.0),
        latencies.len()
    );
}

/// The store's commits so far and their mean duration, from `/metrics`.
async fn commits(base: &str) -> (f64, f64) {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let (_, text) = request(
        &client,
        Method::GET,
        &format!("{base}/metrics"),
        Bytes::new(),
    )
    .await;
    let text = String::from_utf8_lossy(&text).to_string();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let count = value("logserver_store_write_seconds_count");
    (
        count,
        value("logserver_store_write_seconds_sum") / count.max(1.0),
    )
}

fn ingest_embedded(rt: &Runtime) {
    let dir = data_dir("ingest");
    let server = rt.block_on(Server::start(ServeArgs::new(0, &dir))).unwrap();
    let base = format!("http://{}", server.local_addr());
    let url = format!("{base}/api/reports");
    let result = rt.block_on(ingest(&url, INGEST_TIME, None));
    print_ingest("ingest_embedded (saturated)", &result);
    let (count, mean) = rt.block_on(commits(&base));
    println!(
        "logserver/ingest_embedded: {count} group commits, {:.1} reports each, mean commit {:.1} ms",
        (result.1.len() * CLIENT_BATCH) as f64 / count.max(1.0),
        mean * 1e3
    );
    let paced = rt.block_on(ingest(&url, INGEST_TIME, Some(OFFERED)));
    print_ingest(&format!("ingest_embedded (offered {OFFERED}/s)"), &paced);
    rt.block_on(server.shutdown()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

fn status_page(c: &mut Criterion, rt: &Runtime, client: &HttpClient) {
    let dir = data_dir("page");
    let server = rt.block_on(Server::start(ServeArgs::new(0, &dir))).unwrap();
    let base = format!("http://{}", server.local_addr());
    rt.block_on(post(
        client,
        &format!("{base}/api/reports"),
        &batch_body(PAGE_NODES),
    ));
    let page = format!("{base}/status");
    let nodes = format!("{base}/api/nodes");
    let (status, html) = rt.block_on(request(client, Method::GET, &page, Bytes::new()));
    assert_eq!(status, StatusCode::OK);
    println!(
        "logserver/status_page_1000_nodes: page size {} bytes",
        html.len()
    );
    assert_eq!(
        String::from_utf8_lossy(&html)
            .matches("<tr data-addr=")
            .count(),
        PAGE_NODES,
        "the page shows every node"
    );
    let mut group = c.benchmark_group("logserver");
    group.bench_function("status_page_1000_nodes", |b| {
        b.iter(|| black_box(rt.block_on(request(client, Method::GET, &page, Bytes::new()))));
    });
    group.bench_function("api_nodes_1000_nodes", |b| {
        b.iter(|| black_box(rt.block_on(request(client, Method::GET, &nodes, Bytes::new()))));
    });
    group.finish();
    rt.block_on(server.shutdown()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same durable ingest with MongoDB (acknowledged once MongoDB acknowledged the write).
fn mongodb(rt: &Runtime) {
    let Some(uri) = std::env::var("MONGODB_URI").ok().filter(|u| !u.is_empty()) else {
        println!("logserver/mongodb: SKIPPED: MONGODB_URI not set");
        return;
    };
    let hosts = uri
        .trim_start_matches("mongodb://")
        .split(['/', '?'])
        .next()
        .unwrap();
    let db = format!("logserver_bench_{}", std::process::id());
    let mut args = ServeArgs::new(0, data_dir("unused"));
    args.mongodb = Some(format!("mongodb://{hosts}/{db}"));
    args.ack_timeout = Duration::from_secs(30);
    let server = rt.block_on(Server::start(args)).unwrap();
    let url = format!("http://{}/api/reports", server.local_addr());
    let result = rt.block_on(ingest(&url, INGEST_TIME, None));
    print_ingest(&format!("ingest_mongodb ({hosts})"), &result);
    rt.block_on(server.shutdown()).unwrap();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client: HttpClient = {
        let _guard = rt.enter();
        Client::builder(TokioExecutor::new()).build_http()
    };
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    let mut c = Criterion::default().configure_from_args();
    if wants("ingest") {
        ingest_embedded(&rt);
    }
    if wants("page") {
        status_page(&mut c, &rt, &client);
    }
    if wants("mongodb") {
        mongodb(&rt);
    }
    c.final_summary();
}
