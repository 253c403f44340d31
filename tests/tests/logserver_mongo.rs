//! The logserver with MongoDB, against a real MongoDB-wire server (SecantusDB in CI).
//!
//! `MONGODB_URI` names a running server; `SECANTUSD` names the `secantusd-py` executable, which
//! the outage test starts and stops itself. Without them the tests say so loudly and return.

mod logserver_common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use election_tests::browser::skipped;
use hyper::{Method, StatusCode};
use logserver::{ServeArgs, Server};
use logserver_common::{Http, column, report, temp_dir};
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::ClientOptions;
use serde_json::json;

const A: &str = "127.0.0.1:9000";
const B: &str = "127.0.0.1:9001";
const C: &str = "127.0.0.1:9002";

fn env(name: &str) -> Option<String> {
    let value = std::env::var(name).ok().filter(|v| !v.is_empty());
    if value.is_none() {
        skipped(&format!("{name} not set; this MongoDB test did not run"));
    }
    value
}

/// `uri` pointed at database `db` (keeping hosts and options).
fn with_db(uri: &str, db: &str) -> String {
    let (base, query) = uri.split_once('?').map_or((uri, ""), |(b, q)| (b, q));
    let rest = base.strip_prefix("mongodb://").expect("a mongodb:// URI");
    let hosts = rest.split('/').next().unwrap();
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("mongodb://{hosts}/{db}{query}")
}

fn unique_db(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("logserver_test_{name}_{}_{nanos}", std::process::id())
}

async fn database(uri: &str) -> mongodb::Database {
    let options = ClientOptions::parse(uri).await.unwrap();
    let db = options.default_database.clone().unwrap();
    mongodb::Client::with_options(options)
        .unwrap()
        .database(&db)
}

async fn docs(db: &mongodb::Database, collection: &str, sort: Document) -> Vec<Document> {
    let mut cursor = db
        .collection::<Document>(collection)
        .find(doc! {})
        .sort(sort)
        .await
        .unwrap();
    let mut out = Vec::new();
    while cursor.advance().await.unwrap() {
        out.push(cursor.deserialize_current().unwrap());
    }
    out
}

fn mongo_args(uri: &str) -> ServeArgs {
    let mut args = ServeArgs::new(0, temp_dir("unused-embedded"));
    args.mongodb = Some(uri.to_string());
    args
}

#[tokio::test]
async fn what_the_logserver_writes_is_ordinary_mongodb_documents() {
    let Some(base) = env("MONGODB_URI") else {
        return;
    };
    let uri = with_db(&base, &unique_db("docs"));
    let server = Server::start(mongo_args(&uri)).await.unwrap();
    let http = Http::new(&server);
    http.post_reports(&[report(A, C, 1), report(B, C, 2)]).await;
    http.post_reports(&[report(C, C, 3), report(A, C, 4)]).await;
    let links = json!([{ "from": A, "to": B }, { "from": B, "to": A }]);
    let (status, _) = http
        .send(Method::PUT, "/api/blocks", &links.to_string())
        .await;
    assert_eq!(status, StatusCode::OK);
    let nodes_before = http.get_json("/api/nodes").await;
    let log_before = http.get_json("/api/log").await;
    server.shutdown().await.unwrap(); // flushes the queue

    let db = database(&uri).await;
    let nodes = docs(&db, "nodes", doc! {"addr": 1}).await;
    assert_eq!(nodes.len(), 3);
    let a = &nodes[0];
    assert_eq!(a.get_str("addr").unwrap(), A);
    assert_eq!(a.get_str("state").unwrap(), "Normal");
    assert_eq!(a.get_str("coordinator").unwrap(), C);
    assert_eq!(a.get_str("algorithm").unwrap(), "bully");
    assert_eq!(a.get_str("event").unwrap(), "status");
    assert_eq!(
        a.get("node_time_us"),
        Some(&Bson::Int64(4)),
        "upserted, latest wins"
    );
    assert!(matches!(a.get("last_seen"), Some(Bson::Int64(ms)) if *ms > 1_600_000_000_000));

    let log = docs(&db, "log", doc! {"seq": 1}).await;
    let seqs: Vec<i64> = log.iter().map(|d| d.get_i64("seq").unwrap()).collect();
    assert_eq!(seqs, [0, 1, 2, 3]);
    let nodes_in_log: Vec<&str> = log.iter().map(|d| d.get_str("addr").unwrap()).collect();
    assert_eq!(nodes_in_log, [A, B, C, A]);
    assert_eq!(log[3].get_str("event").unwrap(), "status");
    assert!(log[3].get_i64("server_time_ms").is_ok());
    let indexes = db
        .collection::<Document>("log")
        .list_index_names()
        .await
        .unwrap();
    assert!(
        indexes.iter().any(|i| i.contains("server_time_ms")),
        "{indexes:?}"
    );
    assert!(indexes.iter().any(|i| i.contains("addr")), "{indexes:?}");
    let meta = docs(&db, "meta", doc! {}).await;
    assert_eq!(
        meta[0].get_i64("value").unwrap(),
        4,
        "the next seq is reserved"
    );

    let blocks = docs(&db, "blocks", doc! {"from": 1}).await;
    let pairs: Vec<(&str, &str)> = blocks
        .iter()
        .map(|d| (d.get_str("from").unwrap(), d.get_str("to").unwrap()))
        .collect();
    assert_eq!(pairs, [(A, B), (B, A)]);

    // A new logserver on the same database resumes from it.
    let server = Server::start(mongo_args(&uri)).await.unwrap();
    let http = Http::new(&server);
    assert_eq!(http.get_json("/api/nodes").await, nodes_before);
    assert_eq!(http.get_json("/api/log").await, log_before);
    assert_eq!(http.get_json("/api/blocks").await, links);
    http.post_reports(&[report(B, C, 5)]).await;
    assert_eq!(column(&http.get_json("/api/log?since=3").await, "seq"), [4]);
    server.shutdown().await.unwrap();
    db.drop().await.unwrap();
}

/// A `secantusd-py` process that is stopped when dropped.
struct Secantus {
    exe: String,
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl Secantus {
    fn new(exe: String) -> Secantus {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Secantus {
            exe,
            port,
            dir: temp_dir("secantus"),
            child: None,
        }
    }

    async fn start(&mut self) {
        let child = Command::new(&self.exe)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--storage-path")
            .arg(self.dir.join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(self.dir.join("secantusd.log")).unwrap(),
            ))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.exe));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "secantusd did not start; see {:?}",
                self.dir
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server the way an operator would (SIGTERM), and waits for it to exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn uri(&self, db: &str) -> String {
        format!("mongodb://127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for Secantus {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn count(db: &mongodb::Database, collection: &str) -> u64 {
    db.collection::<Document>(collection)
        .count_documents(doc! {})
        .await
        .unwrap()
}

/// Posts `batch` until it is acknowledged, as a node would; panics after `within`.
async fn post_until_acknowledged(
    http: &Http,
    batch: &[election_core::report::NodeReport],
    within: Duration,
) {
    let body = json!({ "reports": batch }).to_string();
    let deadline = Instant::now() + within;
    loop {
        let (status, text) = http.send(Method::POST, "/api/reports", &body).await;
        match status {
            StatusCode::OK => return,
            StatusCode::SERVICE_UNAVAILABLE => {}
            other => panic!("unexpected {other}: {text}"),
        }
        assert!(
            Instant::now() < deadline,
            "not acknowledged within {within:?}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_mongodb_outage_acknowledges_nothing_and_loses_nothing_acknowledged() {
    let Some(exe) = env("SECANTUSD") else { return };
    let mut mongo = Secantus::new(exe);
    mongo.start().await;
    let uri = mongo.uri("outage");
    let mut args = mongo_args(&uri);
    args.ack_timeout = Duration::from_secs(1);
    let server = Server::start(args).await.unwrap();
    let http = Http::new(&server);
    let addrs = [A, B, C];
    let batch = |first: u64| -> Vec<_> {
        (first..first + 10)
            .map(|t| report(addrs[(t % 3) as usize], C, t))
            .collect()
    };
    let mut acked = Vec::new();
    for i in 0..5 {
        http.post_reports(&batch(i * 10)).await;
        acked.extend(i * 10..i * 10 + 10);
    }
    let db = database(&uri).await;
    assert_eq!(count(&db, "log").await, 50, "acknowledged means written");

    mongo.stop();
    // While MongoDB is away nothing is acknowledged: 503, and /healthz says why.
    let body = json!({ "reports": batch(50) }).to_string();
    let (status, text) = http.send(Method::POST, "/api/reports", &body).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert!(text.contains("not acknowledged"), "{text}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, text) = http.send(Method::GET, "/healthz", "").await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(text.contains("failing"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "/healthz still says {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(column(&http.get_json("/api/nodes").await, "addr").len(), 3);

    mongo.start().await;
    // Nodes retry what was not acknowledged; it gets through once MongoDB is back.
    post_until_acknowledged(&http, &batch(50), Duration::from_secs(60)).await;
    acked.extend(50..60);
    post_until_acknowledged(&http, &batch(60), Duration::from_secs(10)).await;
    acked.extend(60..70);
    assert_eq!(http.get_json("/healthz").await["status"], "ok");
    server.shutdown().await.unwrap();

    let db = database(&uri).await;
    let log = docs(&db, "log", doc! {"seq": 1}).await;
    let seqs: Vec<i64> = log.iter().map(|d| d.get_i64("seq").unwrap()).collect();
    let mut unique = seqs.clone();
    unique.dedup();
    assert_eq!(unique, seqs, "seqs are unique and in order");
    let stored: std::collections::BTreeSet<u64> = log
        .iter()
        .map(|d| d.get_i64("node_time_us").unwrap() as u64)
        .collect();
    let lost: Vec<&u64> = acked.iter().filter(|t| !stored.contains(t)).collect();
    assert!(lost.is_empty(), "acknowledged reports lost: {lost:?}");
    // The node documents carry the newest report of each node.
    let newest = docs(&db, "nodes", doc! {"node_time_us": -1}).await;
    assert_eq!(newest[0].get_i64("node_time_us").unwrap(), 69);
}

#[tokio::test]
async fn a_poison_report_is_refused_and_a_refused_document_is_quarantined_not_retried() {
    let Some(base) = env("MONGODB_URI") else {
        return;
    };
    let uri = with_db(&base, &unique_db("poison"));
    let server = Server::start(mongo_args(&uri)).await.unwrap();
    let http = Http::new(&server);
    // Valid for the API's types, not for BSON: refused up front, naming the field.
    let mut poison = report(A, A, 1);
    poison.node_time_us = u64::MAX;
    let body = json!({ "reports": [poison] }).to_string();
    let (status, text) = http.send(Method::POST, "/api/reports", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("reports[0].node_time_us"), "{text}");

    // A document MongoDB itself refuses (here: an operator's unique index) is set aside.
    let db = database(&uri).await;
    db.collection::<Document>("log")
        .create_index(
            mongodb::IndexModel::builder()
                .keys(doc! {"node_time_us": 1})
                .options(
                    mongodb::options::IndexOptions::builder()
                        .unique(true)
                        .build(),
                )
                .build(),
        )
        .await
        .unwrap();
    http.post_reports(&[report(A, A, 7)]).await;
    http.post_reports(&[report(B, A, 7)]).await; // refused by MongoDB, quarantined
    http.post_reports(&[report(C, A, 8)]).await; // the writer is not stuck behind it
    let log = docs(&db, "log", doc! {"seq": 1}).await;
    let addrs: Vec<&str> = log.iter().map(|d| d.get_str("addr").unwrap()).collect();
    assert_eq!(addrs, [A, C]);
    let quarantine = docs(&db, "quarantine", doc! {}).await;
    assert_eq!(quarantine.len(), 1, "{quarantine:?}");
    assert_eq!(quarantine[0].get_str("kind").unwrap(), "log");
    assert!(quarantine[0].get_str("json").unwrap().contains(B));
    assert!(quarantine[0].get_str("reason").unwrap().contains("11000"));
    let m = logserver_common::metrics(&http).await;
    assert_eq!(
        logserver_common::sample(&m, "logserver_quarantined_total", &[("kind", "log")]),
        1.0
    );
    assert_eq!(http.get_json("/healthz").await["status"], "ok");
    assert_eq!(
        column(&http.get_json("/api/log").await, "addr"),
        [A, C],
        "the log shows what the store holds"
    );
    server.shutdown().await.unwrap();
    db.drop().await.unwrap();
}

#[test]
fn with_db_keeps_hosts_and_options() {
    assert_eq!(with_db("mongodb://h:1", "x"), "mongodb://h:1/x");
    assert_eq!(with_db("mongodb://h:1/old?w=1", "x"), "mongodb://h:1/x?w=1");
}

#[tokio::test]
async fn an_unreachable_or_malformed_mongodb_uri_is_a_clear_start_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let err = Server::start(mongo_args(&format!("mongodb://127.0.0.1:{closed}/x")))
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("MongoDB:"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "gave up promptly"
    );
    let err = Server::start(mongo_args("postgres://nope"))
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("MongoDB:"), "{err}");
}
