//! Logserver: reports ingested per second over loopback HTTP with the embedded store, `/status`
//! render time with 1,000 nodes, and (when `MONGODB_URI` is set) ingest and drain with MongoDB.
//!
//! `cargo bench -p election-benches --bench logserver`
//!
//! Ingest posts batches of 1,000 reports on one keep-alive connection. A 503 (store queue full)
//! is retried after 5 ms, as a node would, so the figure is the sustained rate including the
//! store writes, not just the rate of filling memory.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
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
        phase: "Norm".to_string(),
        node_time_us: t,
        heartbeat_ms: 60_000,
        pid: 1234,
        drops: Default::default(),
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

fn ingest_embedded(c: &mut Criterion, rt: &Runtime, client: &HttpClient) {
    let dir = data_dir("ingest");
    let server = rt.block_on(Server::start(ServeArgs::new(0, &dir))).unwrap();
    let url = format!("http://{}/api/reports", server.local_addr());
    let body = batch_body(100);
    let mut group = c.benchmark_group("logserver");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("ingest_embedded_batch_1000", |b| {
        b.iter(|| rt.block_on(post(client, &url, &body)));
    });
    group.finish();
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

/// With MongoDB: how fast reports are accepted (memory only), and how long until all of them
/// are written (a clean shutdown waits for the queue to drain).
fn mongodb(rt: &Runtime, client: &HttpClient) {
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
    let server = rt.block_on(Server::start(args)).unwrap();
    let url = format!("http://{}/api/reports", server.local_addr());
    let body = batch_body(100);
    let batches = 50;
    let start = Instant::now();
    for _ in 0..batches {
        rt.block_on(post(client, &url, &body));
    }
    let accepted = start.elapsed();
    rt.block_on(server.shutdown()).unwrap();
    let written = start.elapsed();
    let n = (batches * BATCH) as f64;
    println!(
        "logserver/mongodb ({hosts}): {n} reports in batches of {BATCH}: accepted in {:.0} ms \
         ({:.0}/s), all written after {:.0} ms ({:.0}/s written)",
        accepted.as_secs_f64() * 1e3,
        n / accepted.as_secs_f64(),
        written.as_secs_f64() * 1e3,
        n / written.as_secs_f64()
    );
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
    let mut c = Criterion::default().configure_from_args();
    ingest_embedded(&mut c, &rt, &client);
    status_page(&mut c, &rt, &client);
    mongodb(&rt, &client);
    c.final_summary();
}
