//! The logserver with MongoDB, against a real MongoDB-wire server (SecantusDB in CI).
//!
//! `MONGODB_URI` names a running server; `SECANTUSD` names the `secantusd-py` executable, which
//! the outage test starts and stops itself. Without them the tests say so loudly and return.

mod logserver_common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use logserver::{ServeArgs, Server};
use logserver_common::{Http, column, report, skipped, temp_dir};
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
    assert_eq!(a.get_str("last_event").unwrap(), "status");
    assert_eq!(
        a.get("node_time_us"),
        Some(&Bson::Int64(4)),
        "upserted, latest wins"
    );
    assert!(matches!(a.get("last_seen"), Some(Bson::Int64(ms)) if *ms > 1_600_000_000_000));

    let log = docs(&db, "log", doc! {"seq": 1}).await;
    let seqs: Vec<i64> = log.iter().map(|d| d.get_i64("seq").unwrap()).collect();
    assert_eq!(seqs, [0, 1, 2, 3]);
    let nodes_in_log: Vec<&str> = log.iter().map(|d| d.get_str("node").unwrap()).collect();
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
    assert!(indexes.iter().any(|i| i.contains("node")), "{indexes:?}");

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

async fn wait_for_log(db: &mongodb::Database, n: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let have = count(db, "log").await;
        if have == n {
            return;
        }
        assert!(have < n, "more log documents ({have}) than reports ({n})");
        assert!(
            Instant::now() < deadline,
            "only {have} of {n} log documents arrived"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_mongodb_stop_and_start_loses_nothing() {
    let Some(exe) = env("SECANTUSD") else { return };
    let mut mongo = Secantus::new(exe);
    mongo.start().await;
    let uri = mongo.uri("outage");
    let mut args = mongo_args(&uri);
    args.queue_limit = 120;
    let server = Server::start(args).await.unwrap();
    let http = Http::new(&server);
    let addrs = [A, B, C];
    let mut sent = 0u64;
    let batch = |first: u64| -> Vec<_> {
        (first..first + 10)
            .map(|t| report(addrs[(t % 3) as usize], C, t))
            .collect()
    };
    for _ in 0..5 {
        http.post_reports(&batch(sent)).await;
        sent += 10;
    }
    let db = database(&uri).await;
    wait_for_log(&db, sent, Duration::from_secs(30)).await;

    mongo.stop();
    // Reports keep being accepted while MongoDB is away, until the bounded queue is full.
    let refused = loop {
        let body = json!({ "reports": batch(sent) }).to_string();
        let (status, text) = http.send(Method::POST, "/api/reports", &body).await;
        match status {
            StatusCode::OK => sent += 10,
            StatusCode::SERVICE_UNAVAILABLE => break text,
            other => panic!("unexpected {other}: {text}"),
        }
        assert!(sent <= 50 + 120, "the queue limit was not enforced");
    };
    assert_eq!(sent, 50 + 120, "queue limit 120 while MongoDB is down");
    assert!(refused.contains("queue full"), "{refused}");
    assert_eq!(column(&http.get_json("/api/nodes").await, "addr").len(), 3);
    tokio::time::sleep(Duration::from_secs(3)).await; // several failed writes

    mongo.start().await;
    let db = database(&uri).await;
    wait_for_log(&db, sent, Duration::from_secs(60)).await;
    let log = docs(&db, "log", doc! {"seq": 1}).await;
    let seqs: Vec<i64> = log.iter().map(|d| d.get_i64("seq").unwrap()).collect();
    assert_eq!(seqs, (0..sent as i64).collect::<Vec<_>>());
    // The node documents carry the newest report of each node.
    let last = sent - 1;
    let newest = docs(&db, "nodes", doc! {"node_time_us": -1}).await;
    assert_eq!(newest[0].get_i64("node_time_us").unwrap(), last as i64);
    // Accepting again now that the queue drained.
    http.post_reports(&batch(sent)).await;
    server.shutdown().await.unwrap();
    assert_eq!(count(&db, "log").await, sent + 10);
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
