//! Headless Chromium for page tests, driven over the W3C WebDriver protocol by `chromedriver`
//! (Debian packages `chromium` and `chromium-driver`), with a tiny hand-written client over hyper.
//!
//! ```no_run
//! # async fn demo() {
//! use election_tests::browser::{Browser, chromedriver, skipped};
//! let Some(exe) = chromedriver() else {
//!     skipped("chromedriver not installed (apt-get install chromium chromium-driver)");
//!     return;
//! };
//! let profile = election_tests::TempDir::new("chrome");
//! let browser = Browser::start(&exe, profile.path(), (1200, 800)).await;
//! browser.goto("file:///tmp/page.html").await;
//! assert_eq!(browser.run("return document.title").await, "page");
//! browser.close().await;
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// The W3C name of the element-id member in WebDriver replies.
pub const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `$CHROMEDRIVER`, or `chromedriver` on the `PATH`.
pub fn chromedriver() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMEDRIVER") {
        return Some(PathBuf::from(p));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("chromedriver"))
        .find(|p| p.is_file())
}

/// Says loudly that a test did not run. Written to stderr directly, because the test harness
/// swallows `eprintln!` output of passing tests.
pub fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: {why} ***\n");
}

/// Keeps a screenshot: in `target/view-screenshots/NAME` always, and in `docs/NAME` (the ones
/// the README shows) when `ELECTION_UPDATE_DOCS` is set.
pub fn save_screenshot(png: &[u8], name: &str) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name} is not a PNG");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("target/view-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
    if std::env::var_os("ELECTION_UPDATE_DOCS").is_some() {
        std::fs::write(root.join("docs").join(name), png).unwrap();
    }
}

/// A chromedriver process and one browser session; the process is killed when dropped.
pub struct Browser {
    driver: Child,
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    session: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts `chromedriver` (the file at `exe`) on a free port and opens a headless Chromium
    /// with a fresh profile in `profile` and a window of `size` (width, height) CSS pixels.
    pub async fn start(exe: &Path, profile: &Path, size: (u32, u32)) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(exe)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
        let mut browser = Browser {
            driver,
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut options = json!({ "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-quic", "--hide-scrollbars",
            format!("--window-size={},{}", size.0, size.1),
            format!("--user-data-dir={}", profile.display()),
        ]});
        if Path::new("/usr/bin/chromium").exists() {
            options["binary"] = json!("/usr/bin/chromium");
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "goog:loggingPrefs": { "browser": "ALL" },
        }}});
        let value = browser.call(Method::POST, "/session", caps).await;
        browser.session = value["sessionId"].as_str().unwrap().to_string();
        browser
    }

    async fn call(&self, method: Method, path: &str, body: Value) -> Value {
        let body = if method == Method::GET || method == Method::DELETE {
            String::new()
        } else {
            body.to_string()
        };
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let response = tokio::time::timeout(Duration::from_secs(60), self.client.request(request))
            .await
            .unwrap_or_else(|_| panic!("WebDriver {path}: timed out"))
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"));
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            status.is_success(),
            "WebDriver {path}: HTTP {status}: {text}"
        );
        serde_json::from_str::<Value>(&text).unwrap()["value"].take()
    }

    /// A command of this session: `method /session/{id}{path}`.
    pub async fn cmd(&self, method: Method, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.call(method, &path, body).await
    }

    /// Opens `url` and waits for its load event.
    pub async fn goto(&self, url: &str) {
        self.cmd(Method::POST, "/url", json!({ "url": url })).await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
    pub async fn run_with(&self, script: &str, args: Value) -> Value {
        let body = json!({ "script": script, "args": args });
        self.cmd(Method::POST, "/execute/sync", body).await
    }

    /// Runs `script` without arguments.
    pub async fn run(&self, script: &str) -> Value {
        self.run_with(script, json!([])).await
    }

    /// Polls `script` every 50 ms until it returns something truthy, and returns that; panics
    /// with `what` after `within`.
    pub async fn wait_for(&self, what: &str, script: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let v = self.run(script).await;
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            if truthy {
                return v;
            }
            assert!(Instant::now() < deadline, "waited {within:?} for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The element id of the first element matching `css`; panics if there is none.
    pub async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                Method::POST,
                "/element",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    /// The text of the element `css` (read in one script call, so that a redraw between finding
    /// and reading cannot make it stale); empty when absent.
    pub async fn text(&self, css: &str) -> String {
        let script =
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : ''";
        let v = self.run_with(script, json!([css])).await;
        v.as_str().unwrap().to_string()
    }

    /// Clicks the element `css`.
    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.cmd(Method::POST, &format!("/element/{id}/click"), json!({}))
            .await;
    }

    /// Replaces the value of the input `css` by typing `text` into it.
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.cmd(Method::POST, &format!("/element/{id}/clear"), json!({}))
            .await;
        self.cmd(
            Method::POST,
            &format!("/element/{id}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    /// Moves the mouse to viewport point (`x`, `y`), as a user would (mouse events fire).
    pub async fn move_to(&self, x: f64, y: f64) {
        let actions = json!({ "actions": [{
            "type": "pointer", "id": "mouse", "parameters": { "pointerType": "mouse" },
            "actions": [{ "type": "pointerMove", "duration": 0, "origin": "viewport",
                          "x": x.round() as i64, "y": y.round() as i64 }],
        }]});
        self.cmd(Method::POST, "/actions", actions).await;
    }

    /// Clicks at viewport point (`x`, `y`).
    pub async fn click_at(&self, x: f64, y: f64) {
        let actions = json!({ "actions": [{
            "type": "pointer", "id": "mouse", "parameters": { "pointerType": "mouse" },
            "actions": [
                { "type": "pointerMove", "duration": 0, "origin": "viewport",
                  "x": x.round() as i64, "y": y.round() as i64 },
                { "type": "pointerDown", "button": 0 },
                { "type": "pointerUp", "button": 0 },
            ],
        }]});
        self.cmd(Method::POST, "/actions", actions).await;
    }

    /// The browser console's messages (`{level, message, …}`) since the last call.
    pub async fn console(&self) -> Vec<Value> {
        let v = self
            .cmd(Method::POST, "/se/log", json!({ "type": "browser" }))
            .await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let v = self.cmd(Method::GET, "/screenshot", json!({})).await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .expect("WebDriver sends screenshots in base64")
    }

    /// Resizes the window to `width` × `height` pixels.
    pub async fn resize(&self, width: u32, height: u32) {
        let rect = json!({ "width": width, "height": height });
        self.cmd(Method::POST, "/window/rect", rect).await;
    }

    /// Ends the session.
    pub async fn close(self) {
        self.cmd(Method::DELETE, "", json!({})).await;
    }
}
