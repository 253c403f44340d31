//! The `/status` page in a real headless Chromium, driven over the W3C WebDriver protocol by
//! `chromedriver` (Debian packages `chromium` and `chromium-driver`). Without chromedriver the
//! test says so loudly and returns.

mod logserver_common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use election_core::State;
use hyper::{Method, StatusCode};
use logserver_common::{Http, report, skipped, start, temp_dir};
use serde_json::{Value, json};

const NODES: [&str; 4] = [
    "127.0.0.1:9000",
    "127.0.0.1:9001",
    "127.0.0.1:9002",
    "127.0.0.1:9003",
];
/// The W3C name of the element-id member in WebDriver replies.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn chromedriver() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMEDRIVER") {
        return Some(PathBuf::from(p));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("chromedriver"))
        .find(|p| p.is_file())
}

/// A chromedriver process, killed when dropped.
struct Driver {
    child: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebDriver session: the few commands this test needs.
struct Session {
    http: Http,
    id: String,
}

impl Session {
    async fn call(http: &Http, method: Method, path: &str, body: Value) -> Value {
        let body = if method == Method::GET || method == Method::DELETE {
            String::new()
        } else {
            body.to_string()
        };
        let (status, _, text) = http
            .send_full(method, path, &body, &[("content-type", "application/json")])
            .await;
        assert_eq!(status, StatusCode::OK, "WebDriver {path}: {text}");
        serde_json::from_str::<Value>(&text).unwrap()["value"].take()
    }

    async fn new(http: Http, user_data_dir: &std::path::Path) -> Session {
        let mut options = json!({ "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-quic", "--window-size=1200,600",
            format!("--user-data-dir={}", user_data_dir.display()),
        ]});
        if std::path::Path::new("/usr/bin/chromium").exists() {
            options["binary"] = json!("/usr/bin/chromium");
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options,
        }}});
        let value = Session::call(&http, Method::POST, "/session", caps).await;
        let id = value["sessionId"].as_str().unwrap().to_string();
        Session { http, id }
    }

    async fn cmd(&self, method: Method, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.id);
        Session::call(&self.http, method, &path, body).await
    }

    async fn goto(&self, url: &str) {
        self.cmd(Method::POST, "/url", json!({ "url": url })).await;
    }

    async fn find(&self, css: &str) -> String {
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

    /// The text of the element `css` (read in one script call, so a live table update between
    /// finding and reading cannot make it stale); empty when absent.
    async fn text(&self, css: &str) -> String {
        let script =
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : ''";
        let body = json!({ "script": script, "args": [css] });
        let v = self.cmd(Method::POST, "/execute/sync", body).await;
        v.as_str().unwrap().to_string()
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.cmd(Method::POST, &format!("/element/{id}/click"), json!({}))
            .await;
    }

    async fn run(&self, script: &str) -> Value {
        self.cmd(
            Method::POST,
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
        .await
    }

    /// Waits until `css`'s text equals `want`.
    async fn wait_text(&self, css: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let have = self.text(css).await;
            if have == want {
                return;
            }
            assert!(Instant::now() < deadline, "{css}: {have:?}, want {want:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&self) -> Vec<u8> {
        let v = self.cmd(Method::GET, "/screenshot", json!({})).await;
        base64_decode(v.as_str().unwrap())
    }

    async fn close(self) {
        self.cmd(Method::DELETE, "", json!({})).await;
    }
}

/// Standard base64, as WebDriver sends screenshots.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk.iter().fold(0, |acc, c| acc << 6 | value(*c)) << (6 * (4 - chunk.len()));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[test]
fn base64_decodes_with_and_without_padding() {
    assert_eq!(base64_decode("TWFu"), b"Man");
    assert_eq!(base64_decode("TWE="), b"Ma");
    assert_eq!(base64_decode("TQ=="), b"M");
}

#[tokio::test]
async fn the_status_page_blocks_pairs_and_updates_live_in_chromium() {
    let Some(exe) = chromedriver() else {
        skipped("chromedriver not installed (apt-get install chromium chromium-driver)");
        return;
    };
    let dir = temp_dir("browser");
    let server = start(&dir).await;
    let api = Http::new(&server);
    // A bully cluster in which the last node leads.
    let leader = NODES[3];
    // Long heartbeats, so that no row turns unreachable on a slow machine.
    let node = |addr: &str, coordinator: &str, t: u64| {
        let mut r = report(addr, coordinator, t);
        r.heartbeat_ms = 600_000;
        r
    };
    let reports: Vec<_> = NODES.iter().map(|n| node(n, leader, 5)).collect();
    api.post_reports(&reports).await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _driver = Driver {
        child: Command::new(&exe)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display())),
    };
    let wd = Http::to(&format!("http://127.0.0.1:{port}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let browser = Session::new(wd, &dir.join("chrome-profile")).await;
    let page = format!("http://{}/status", server.local_addr());
    browser.goto(&page).await;

    // The table, one row per node.
    let rows = browser
        .run("return document.querySelectorAll('#nodes tr').length")
        .await;
    assert_eq!(rows, json!(NODES.len()));
    let row = |addr: &str, col: u32| format!("tr[data-addr=\"{addr}\"] td:nth-child({col})");
    assert_eq!(browser.text(&row(NODES[0], 1)).await, NODES[0]);
    assert_eq!(browser.text(&row(NODES[0], 2)).await, leader);
    assert_eq!(browser.text(&row(NODES[0], 4)).await, "Normal");

    // Tick the pair 9000-9001 and submit: the blocks API has both directions.
    let pair = format!("input[name=pair][value=\"{},{}\"]", NODES[0], NODES[1]);
    browser.click(&pair).await;
    browser
        .click("form[action=\"/status/blocks\"] button")
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let want = json!([{ "from": NODES[0], "to": NODES[1] }, { "from": NODES[1], "to": NODES[0] }]);
    while api.get_json("/api/blocks").await != want {
        assert!(
            Instant::now() < deadline,
            "the submitted block did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Back on the page, the pair shows as blocked.
    browser.wait_text("h2", "Block Connections").await;
    let checked = browser
        .run(&format!("return document.querySelector('{pair}').checked"))
        .await;
    assert_eq!(checked, json!(true));

    // A status change appears without a reload: a marker set on this page survives.
    browser.run("window.stillHere = 42").await;
    let mut change = node(NODES[1], NODES[1], 6);
    change.state = State::Election;
    change.phase = "Election".to_string();
    change.coordinator = None;
    change.group = None;
    change.drops = [("bad-mac".to_string(), 2), ("blocked".to_string(), 17)].into();
    api.post_reports(&[change]).await;
    browser.wait_text(&row(NODES[1], 4), "Election").await;
    // The script writes the drop counters like the server-rendered page.
    browser
        .wait_text(&row(NODES[1], 11), "bad-mac 2, blocked 17")
        .await;
    assert_eq!(browser.text(&row(NODES[1], 2)).await, "");
    assert_eq!(browser.run("return window.stillHere").await, json!(42));

    let png = browser.screenshot().await;
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/status-page.png");
    std::fs::write(&docs, &png).unwrap();

    // A new node gets a row at once, and a note that the pair list needs a refresh.
    let newcomer = "127.0.0.1:9004";
    let hidden = "return document.getElementById('changed').hidden";
    assert_eq!(browser.run(hidden).await, json!(true));
    api.post_reports(&[node(newcomer, leader, 7)]).await;
    browser.wait_text(&row(newcomer, 1), newcomer).await;
    assert_eq!(browser.run(hidden).await, json!(false));
    assert_eq!(browser.run("return window.stillHere").await, json!(42));

    browser.close().await;
    server.shutdown().await.unwrap();
}
