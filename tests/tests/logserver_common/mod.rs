//! Helpers shared by the logserver test files: a small HTTP client, temporary directories and
//! report builders.

#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use election_core::State;
use election_core::report::{NodeReport, ReportEvent};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use logserver::{ServeArgs, Server};

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "logserver-test-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A logserver on a free loopback port with an embedded store in `dir`.
pub async fn start(dir: &std::path::Path) -> Server {
    Server::start(ServeArgs::new(0, dir)).await.unwrap()
}

/// A plain HTTP/1.1 client that returns status and body text.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Http {
    pub fn new(server: &Server) -> Http {
        Http::to(&format!("http://{}", server.local_addr()))
    }

    pub fn to(base: &str) -> Http {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: base.to_string(),
        }
    }

    /// Sends a request with optional body and headers; returns status, headers and body text.
    pub async fn send_full(
        &self,
        method: Method,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, hyper::HeaderMap, String) {
        self.try_send(method, path, body, headers)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Like [`Http::send_full`], but a failed or slow (over 5 s) exchange is an error, not a
    /// panic, for tests that expect the server to be away at times.
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, hyper::HeaderMap, String), String> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let exchange = async {
            let res = self
                .client
                .request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
                .await
                .map_err(|e| e.to_string())?;
            let status = res.status();
            let headers = res.headers().clone();
            let bytes = res
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok((status, headers, String::from_utf8(bytes.to_vec()).unwrap()))
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), exchange)
            .await
            .map_err(|_| "timed out".to_string())?
    }

    /// Sends a JSON body (`Content-Type: application/json`); returns status and body text.
    pub async fn send(&self, method: Method, path: &str, body: &str) -> (StatusCode, String) {
        let json = [("content-type", "application/json")];
        let (status, _, text) = self.send_full(method, path, body, &json).await;
        (status, text)
    }

    /// Posts a form as the status page's browser would, with its form token (field `csrf`)
    /// read from a fresh `/status`, followed by `fields`.
    pub async fn post_form(&self, path: &str, fields: &str) -> (StatusCode, hyper::HeaderMap) {
        let token = self.form_token().await;
        let body = if fields.is_empty() {
            format!("csrf={token}")
        } else {
            format!("csrf={token}&{fields}")
        };
        let form = [("content-type", "application/x-www-form-urlencoded")];
        let (status, headers, _) = self.send_full(Method::POST, path, &body, &form).await;
        (status, headers)
    }

    /// The form token the status page carries.
    pub async fn form_token(&self) -> String {
        let (_, page) = self.send(Method::GET, "/status", "").await;
        let (_, rest) = page
            .split_once("name=\"csrf\" value=\"")
            .expect("the page carries a form token");
        rest.split('"').next().unwrap().to_string()
    }

    /// GET that must succeed; returns the body as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let (status, text) = self.send(Method::GET, path, "").await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// Posts reports as one batch; the reply must be 200.
    pub async fn post_reports(&self, reports: &[NodeReport]) -> serde_json::Value {
        let body = serde_json::json!({ "reports": reports }).to_string();
        let (status, text) = self.send(Method::POST, "/api/reports", &body).await;
        assert_eq!(status, StatusCode::OK, "POST /api/reports: {text}");
        serde_json::from_str(&text).unwrap()
    }
}

/// A `Normal` status report from `addr` following `coordinator`.
pub fn report(addr: &str, coordinator: &str, node_time_us: u64) -> NodeReport {
    NodeReport {
        addr: addr.to_string(),
        algorithm: "bully".to_string(),
        event: ReportEvent::Status,
        state: State::Normal,
        coordinator: Some(coordinator.to_string()),
        group: Some(format!("{coordinator}#1")),
        incarnation: Some(1),
        term: None,
        phase: "Normal".to_string(),
        node_time_us,
        heartbeat_ms: 1_000,
        pid: 4242,
        drops: Default::default(),
        messages: Vec::new(),
        messages_dropped: 0,
    }
}

/// The value of `field` in every element of a JSON array.
pub fn column<'a>(array: &'a serde_json::Value, field: &str) -> Vec<&'a serde_json::Value> {
    array
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|e| &e[field])
        .collect()
}

/// `/metrics`, parsed by an independent Prometheus text-format parser.
pub async fn metrics(http: &Http) -> prometheus_parse::Scrape {
    let (status, headers, text) = http.send_full(Method::GET, "/metrics", "", &[]).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{headers:?}"
    );
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("/metrics does not parse: {e}\n{text}"))
}

/// The value of the sample `name` whose labels include all of `labels`.
pub fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)));
    match found.map(|s| &s.value) {
        Some(prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v)) => *v,
        Some(prometheus_parse::Value::Untyped(v)) => *v,
        other => panic!("no sample {name} {labels:?}: {other:?}"),
    }
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An `election logserver` process, SIGKILLed if dropped while running.
pub struct LogserverProcess {
    child: std::process::Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl LogserverProcess {
    /// Starts `election logserver --port PORT --data-dir DIR EXTRA…` and waits until it listens.
    /// With `fd_limit`, the process runs under `ulimit -n` of that many file descriptors.
    pub async fn start(dir: &Path, port: u16, extra: &[&str], fd_limit: Option<u32>) -> Self {
        let bin = election_tests::election_bin();
        let mut args: Vec<String> = vec!["logserver".into(), "--port".into(), port.to_string()];
        args.push("--data-dir".into());
        args.push(dir.join("data").display().to_string());
        args.extend(extra.iter().map(|a| a.to_string()));
        let mut command = match fd_limit {
            Some(n) => {
                let mut c = std::process::Command::new("bash");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(&bin)
                    .args(&args);
                c
            }
            None => {
                let mut c = std::process::Command::new(&bin);
                c.args(&args);
                c
            }
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("logserver.log"))
            .unwrap();
        let child = command
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let server = LogserverProcess { child, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the logserver did not start; see {}",
                dir.join("logserver.log").display()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        server
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` and waits for the exit; panics after `within`.
    pub async fn stop(
        mut self,
        signal: nix::sys::signal::Signal,
        within: std::time::Duration,
    ) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).unwrap();
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the logserver ignored {signal} for {within:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

impl Drop for LogserverProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
