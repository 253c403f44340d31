//! The logserver's JSON API, status page and embedded store, over real HTTP.

mod logserver_common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use election_core::State;
use election_core::report::ReportEvent;
use hyper::{Method, StatusCode};
use logserver::{ServeArgs, Server};
use logserver_common::{Http, column, report, start, temp_dir};
use serde_json::json;

const A: &str = "127.0.0.1:9000";
const B: &str = "127.0.0.1:9001";
const C: &str = "127.0.0.1:9002";

#[tokio::test]
async fn reports_become_nodes_and_an_ordered_log() {
    let dir = temp_dir("api");
    let server = start(&dir).await;
    let http = Http::new(&server);

    let reply = http
        .post_reports(&[report(B, B, 10), report(A, B, 20)])
        .await;
    assert_eq!(reply, json!({ "accepted": 2, "blocked": [] }));
    let mut again = report(A, B, 30);
    again.event = ReportEvent::Heartbeat;
    http.post_reports(&[again]).await;

    let nodes = http.get_json("/api/nodes").await;
    assert_eq!(column(&nodes, "addr"), [A, B], "sorted by addr");
    let a = &nodes[0];
    assert_eq!(a["coordinator"], B);
    assert_eq!(a["state"], "Normal");
    assert_eq!(a["algorithm"], "bully");
    assert_eq!(a["group"], format!("{B}#1"));
    assert_eq!(a["incarnation"], 1);
    assert_eq!(a["pid"], 4242);
    assert_eq!(a["node_time_us"], 30, "latest report wins");
    assert_eq!(a["last_event"], "heartbeat");
    assert_eq!(a["reachable"], true);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let seen = a["last_seen"].as_u64().unwrap();
    assert!(
        now.abs_diff(seen) < 10_000,
        "last_seen {seen} is server ms, now {now}"
    );

    let log = http.get_json("/api/log").await;
    assert_eq!(column(&log, "seq"), [0, 1, 2]);
    assert_eq!(column(&log, "node"), [B, A, A]);
    assert_eq!(column(&log, "node_time_us"), [10, 20, 30]);
    assert_eq!(column(&log, "event"), ["status", "status", "heartbeat"]);
    assert!(log[0]["server_time_ms"].as_u64().is_some());
    let of_a = http.get_json(&format!("/api/log?node={A}")).await;
    assert_eq!(column(&of_a, "seq"), [1, 2]);
    let since = http.get_json("/api/log?since=0&limit=1").await;
    assert_eq!(column(&since, "seq"), [1]);
    let none = http.get_json("/api/log?since=2").await;
    assert_eq!(none, json!([]));

    // Forgetting nodes empties the table and keeps the log.
    let (status, _) = http.send(Method::DELETE, "/api/nodes", "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(http.get_json("/api/nodes").await, json!([]));
    assert_eq!(http.get_json("/api/log").await.as_array().unwrap().len(), 3);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn blocks_are_set_replaced_reset_and_sent_to_reporting_nodes() {
    let dir = temp_dir("blocks");
    let server = start(&dir).await;
    let http = Http::new(&server);

    let one_way = json!([{ "from": B, "to": A }, { "from": A, "to": C }]).to_string();
    let (status, text) = http.send(Method::PUT, "/api/blocks", &one_way).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let sorted = json!([{ "from": A, "to": C }, { "from": B, "to": A }]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        sorted
    );
    assert_eq!(http.get_json("/api/blocks").await, sorted);
    let reply = http.post_reports(&[report(A, A, 1)]).await;
    assert_eq!(
        reply["blocked"], sorted,
        "nodes learn the blocks from the reply"
    );

    // PUT replaces the whole set.
    let only = json!([{ "from": C, "to": B }]);
    let (status, _) = http
        .send(Method::PUT, "/api/blocks", &only.to_string())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(http.get_json("/api/blocks").await, only);

    let (status, text) = http.send(Method::DELETE, "/api/blocks", "").await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "[]"));
    assert_eq!(http.get_json("/api/blocks").await, json!([]));
    server.shutdown().await.unwrap();
}

/// Asserts a 4xx with a JSON `error` containing `needle`.
async fn refused(http: &Http, method: Method, path: &str, body: &str, code: u16, needle: &str) {
    let (status, text) = http.send(method, path, body).await;
    assert_eq!(status.as_u16(), code, "{path} {body:.80}: {text}");
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("error body is not JSON: {text}"));
    let message = v["error"].as_str().unwrap();
    assert!(
        message.contains(needle),
        "{message:?} should mention {needle:?}"
    );
}

#[tokio::test]
async fn bad_input_gets_a_4xx_naming_the_problem_and_loses_nothing() {
    let dir = temp_dir("bad");
    let server = start(&dir).await;
    let http = Http::new(&server);
    http.post_reports(&[report(A, A, 1)]).await;

    refused(
        &http,
        Method::POST,
        "/api/reports",
        "{\"reports\": [",
        400,
        "invalid JSON",
    )
    .await;
    refused(&http, Method::POST, "/api/reports", "", 400, "invalid JSON").await;
    let mut extra = serde_json::to_value(report(B, B, 1)).unwrap();
    extra["colour"] = json!("blue");
    let body = json!({ "reports": [extra] }).to_string();
    refused(
        &http,
        Method::POST,
        "/api/reports",
        &body,
        400,
        "unknown field `colour`",
    )
    .await;
    let body = json!({ "reports": [], "more": 1 }).to_string();
    refused(
        &http,
        Method::POST,
        "/api/reports",
        &body,
        400,
        "unknown field `more`",
    )
    .await;

    let mut bad_addr = report(B, B, 1);
    bad_addr.addr = "nonsense".to_string();
    let body = json!({ "reports": [report(C, C, 1), bad_addr] }).to_string();
    refused(
        &http,
        Method::POST,
        "/api/reports",
        &body,
        400,
        "reports[1].addr",
    )
    .await;
    let mut bad_coord = report(B, B, 1);
    bad_coord.coordinator = Some("10.0.0.1".to_string());
    let body = json!({ "reports": [bad_coord] }).to_string();
    refused(
        &http,
        Method::POST,
        "/api/reports",
        &body,
        400,
        "reports[0].coordinator",
    )
    .await;
    let mut bad_algo = report(B, B, 1);
    bad_algo.algorithm = "paxos".to_string();
    let body = json!({ "reports": [bad_algo] }).to_string();
    refused(
        &http,
        Method::POST,
        "/api/reports",
        &body,
        400,
        "unknown algorithm",
    )
    .await;
    let mut bad_hb = report(B, B, 1);
    bad_hb.heartbeat_ms = 0;
    let body = json!({ "reports": [bad_hb] }).to_string();
    refused(
        &http,
        Method::POST,
        "/api/reports",
        &body,
        400,
        "heartbeat_ms",
    )
    .await;

    let huge = json!({ "reports": [], "pad": "x".repeat(2 * 1024 * 1024) }).to_string();
    refused(
        &http,
        Method::POST,
        "/api/reports",
        &huge,
        413,
        "length limit",
    )
    .await;

    refused(&http, Method::PUT, "/api/blocks", "{}", 400, "invalid JSON").await;
    let self_block = json!([{ "from": A, "to": A }]).to_string();
    refused(
        &http,
        Method::PUT,
        "/api/blocks",
        &self_block,
        400,
        "itself",
    )
    .await;
    let bad_link = json!([{ "from": A, "to": "localhost" }]).to_string();
    refused(&http, Method::PUT, "/api/blocks", &bad_link, 400, "[0].to").await;
    refused(&http, Method::GET, "/api/log?limit=-1", "", 400, "limit").await;
    refused(
        &http,
        Method::GET,
        "/api/log?limit=100000",
        "",
        400,
        "limit",
    )
    .await;
    refused(&http, Method::GET, "/api/log?node=x", "", 400, "node").await;
    refused(&http, Method::GET, "/api/log?colour=1", "", 400, "colour").await;
    refused(&http, Method::GET, "/api/nope", "", 404, "no such").await;
    refused(&http, Method::POST, "/api/nodes", "", 405, "not allowed").await;
    refused(
        &http,
        Method::POST,
        "/status/blocks",
        "pair=1.2.3.4:5",
        400,
        "comma",
    )
    .await;
    refused(
        &http,
        Method::POST,
        "/status/blocks",
        "x=1",
        400,
        "unknown form field",
    )
    .await;

    // A rejected batch stores none of its reports; the earlier report is still there.
    let nodes = http.get_json("/api/nodes").await;
    assert_eq!(column(&nodes, "addr"), [A]);
    assert_eq!(http.get_json("/api/log").await.as_array().unwrap().len(), 1);
    assert_eq!(http.get_json("/api/blocks").await, json!([]));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_full_queue_refuses_with_503_instead_of_dropping() {
    let dir = temp_dir("queue");
    let mut args = ServeArgs::new(0, &dir);
    args.queue_limit = 2;
    let server = Server::start(args).await.unwrap();
    let http = Http::new(&server);
    let body = json!({ "reports": [report(A, A, 1), report(B, A, 1), report(C, A, 1)] });
    let (status, headers, text) = http
        .send_full(Method::POST, "/api/reports", &body.to_string(), &[])
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert!(text.contains("queue full"), "{text}");
    assert_eq!(headers["retry-after"], "1");
    http.post_reports(&[report(A, A, 1), report(B, A, 1)]).await;
    assert_eq!(http.get_json("/api/log").await.as_array().unwrap().len(), 2);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_embedded_store_survives_a_restart() {
    let dir = temp_dir("restart");
    let server = start(&dir).await;
    let http = Http::new(&server);
    http.post_reports(&[report(A, B, 1), report(B, B, 2)]).await;
    let links = json!([{ "from": A, "to": B }]);
    let (status, _) = http
        .send(Method::PUT, "/api/blocks", &links.to_string())
        .await;
    assert_eq!(status, StatusCode::OK);
    let nodes_before = http.get_json("/api/nodes").await;
    let log_before = http.get_json("/api/log").await;
    server.shutdown().await.unwrap();

    let server = start(&dir).await;
    let http = Http::new(&server);
    assert_eq!(http.get_json("/api/nodes").await, nodes_before);
    assert_eq!(http.get_json("/api/log").await, log_before);
    assert_eq!(http.get_json("/api/blocks").await, links);
    // Numbering continues after the stored log.
    http.post_reports(&[report(C, B, 3)]).await;
    let log = http.get_json("/api/log?since=1").await;
    assert_eq!(column(&log, "seq"), [2]);
    server.shutdown().await.unwrap();

    // Forgetting nodes and resetting blocks is durable too.
    let server = start(&dir).await;
    let http = Http::new(&server);
    assert_eq!(
        column(&http.get_json("/api/nodes").await, "addr"),
        [A, B, C]
    );
    http.send(Method::DELETE, "/api/nodes", "").await;
    http.send(Method::DELETE, "/api/blocks", "").await;
    server.shutdown().await.unwrap();
    let server = start(&dir).await;
    let http = Http::new(&server);
    assert_eq!(http.get_json("/api/nodes").await, json!([]));
    assert_eq!(http.get_json("/api/blocks").await, json!([]));
    assert_eq!(http.get_json("/api/log").await.as_array().unwrap().len(), 3);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn silent_and_departed_nodes_are_unreachable() {
    let dir = temp_dir("silent");
    let server = start(&dir).await;
    let http = Http::new(&server);
    let mut fast = report(A, A, 1);
    fast.heartbeat_ms = 100;
    let mut slow = report(B, A, 1);
    slow.heartbeat_ms = 60_000;
    http.post_reports(&[fast.clone(), slow]).await;
    let nodes = http.get_json("/api/nodes").await;
    assert_eq!(column(&nodes, "reachable"), [true, true]);

    tokio::time::sleep(Duration::from_millis(450)).await; // > 3 heartbeats of 100 ms
    let nodes = http.get_json("/api/nodes").await;
    assert_eq!(column(&nodes, "reachable"), [false, true]);
    let page = http.send(Method::GET, "/status", "").await.1;
    assert!(page.contains(&format!("<tr data-addr=\"{A}\" class=\"unreachable\">")));

    http.post_reports(&[fast]).await;
    let mut left = report(B, A, 2);
    left.event = ReportEvent::Left;
    left.state = State::Down;
    http.post_reports(&[left]).await;
    let nodes = http.get_json("/api/nodes").await;
    assert_eq!(column(&nodes, "reachable"), [true, false]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_status_page_escapes_node_text_and_lists_pairs() {
    let dir = temp_dir("page");
    let server = start(&dir).await;
    let http = Http::new(&server);
    let mut evil = report(A, B, 1);
    evil.phase = "<script>alert('x')</script>".to_string();
    evil.group = Some("\"><img src=x>".to_string());
    http.post_reports(&[evil, report(B, B, 1), report(C, B, 1)])
        .await;
    let links = json!([{ "from": A, "to": B }, { "from": B, "to": A }, { "from": C, "to": A }]);
    http.send(Method::PUT, "/api/blocks", &links.to_string())
        .await;

    let (status, headers, page) = http.send_full(Method::GET, "/status", "", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(!page.contains("<script>alert"), "raw node text in the page");
    assert!(!page.contains("<img"), "raw node text in the page");
    assert!(page.contains("Normal (&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;)"));
    assert!(page.contains("&quot;&gt;&lt;img src=x&gt;"));
    for th in [
        "addr",
        "coordinator",
        "groupid",
        "status",
        "date",
        "algorithm",
        "incarnation",
    ] {
        assert!(page.contains(&format!("<th>{th}</th>")), "column {th}");
    }
    // Three pairs; A-B is blocked both ways, so checked; C->A is one-way, listed apart.
    assert_eq!(page.matches("name=\"pair\"").count(), 3);
    assert!(page.contains(&format!("value=\"{A},{B}\" checked>")));
    assert!(page.contains(&format!("value=\"{A},{C}\">")));
    assert!(page.contains(&format!("<li>{C} → {A}</li>")));
    assert!(page.contains("<a href=\"/status\">refresh</a>"));
    assert!(page.contains("action=\"/status/reset\""));
    assert!(
        !page.contains("name=\"token\""),
        "no token field on loopback"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_block_form_works_without_javascript() {
    let dir = temp_dir("form");
    let server = start(&dir).await;
    let http = Http::new(&server);
    http.post_reports(&[report(A, C, 1), report(B, C, 1), report(C, C, 1)])
        .await;
    // A one-way block set through the API, and a two-way pair that the form will untick.
    let links = json!([
        { "from": C, "to": A },
        { "from": B, "to": C }, { "from": C, "to": B },
    ]);
    http.send(Method::PUT, "/api/blocks", &links.to_string())
        .await;

    let form = format!("pair={A}%2C{B}");
    let (status, headers, _) = http
        .send_full(
            Method::POST,
            "/status/blocks",
            &form,
            &[("content-type", "application/x-www-form-urlencoded")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/status");
    let expected = json!([{ "from": A, "to": B }, { "from": B, "to": A }, { "from": C, "to": A }]);
    assert_eq!(http.get_json("/api/blocks").await, expected);

    let (status, _) = http.send(Method::POST, "/status/reset", "").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(http.get_json("/api/blocks").await, json!([]));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn off_loopback_changes_need_the_admin_token_and_reading_stays_open() {
    let dir = temp_dir("token");
    let mut args = ServeArgs::new(0, &dir);
    args.bind = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    args.admin_token = Some("s3cret".to_string());
    let server = Server::start(args.clone()).await.unwrap();
    let http = Http::to(&format!("http://127.0.0.1:{}", server.local_addr().port()));
    let links = json!([{ "from": A, "to": B }]).to_string();

    refused(
        &http,
        Method::PUT,
        "/api/blocks",
        &links,
        401,
        "admin token",
    )
    .await;
    refused(&http, Method::DELETE, "/api/blocks", "", 401, "admin token").await;
    refused(&http, Method::DELETE, "/api/nodes", "", 401, "admin token").await;
    refused(
        &http,
        Method::POST,
        "/status/reset",
        "token=wrong",
        401,
        "admin token",
    )
    .await;
    let wrong = [("authorization", "Bearer s3cre")];
    let (status, _, _) = http
        .send_full(Method::PUT, "/api/blocks", &links, &wrong)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let right = [("authorization", "Bearer s3cret")];
    let (status, _, _) = http
        .send_full(Method::PUT, "/api/blocks", &links, &right)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        http.get_json("/api/blocks").await,
        json!([{ "from": A, "to": B }])
    );
    // Reports, reads and the page stay open; the page asks for the token.
    http.post_reports(&[report(A, A, 1)]).await;
    let page = http.send(Method::GET, "/status", "").await.1;
    assert!(page.contains("name=\"token\""));
    let (status, _) = http
        .send(Method::POST, "/status/reset", "token=s3cret")
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(http.get_json("/api/blocks").await, json!([]));
    server.shutdown().await.unwrap();

    // Without a configured token nothing can change blocks off loopback.
    args.admin_token = None;
    let server = Server::start(args).await.unwrap();
    let http = Http::to(&format!("http://127.0.0.1:{}", server.local_addr().port()));
    refused(
        &http,
        Method::PUT,
        "/api/blocks",
        &links,
        403,
        "--admin-token",
    )
    .await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn start_reports_a_busy_port_and_a_zero_queue() {
    let dir = temp_dir("busy");
    let server = start(&dir).await;
    let mut args = ServeArgs::new(server.local_addr().port(), temp_dir("busy2"));
    let err = Server::start(args.clone()).await.unwrap_err();
    assert!(err.to_string().contains("cannot listen on"), "{err}");
    args.port = 0;
    args.queue_limit = 0;
    let err = Server::start(args).await.unwrap_err();
    assert!(err.to_string().contains("--queue-limit"), "{err}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_dropped_handle_stops_the_server_and_releases_the_store() {
    let dir = temp_dir("drop");
    let server = start(&dir).await;
    Http::new(&server).post_reports(&[report(A, A, 1)]).await;
    // While it runs, a second server cannot open the same store.
    let err = Server::start(ServeArgs::new(0, &dir)).await.unwrap_err();
    assert!(err.to_string().contains("embedded store"), "{err}");
    drop(server);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let server = loop {
        match Server::start(ServeArgs::new(0, &dir)).await {
            Ok(s) => break s,
            Err(e) => assert!(
                std::time::Instant::now() < deadline,
                "store never released: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let nodes = Http::new(&server).get_json("/api/nodes").await;
    assert_eq!(
        column(&nodes, "addr"),
        [A],
        "the queue was flushed on the way out"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn optional_report_fields_may_be_left_out() {
    let dir = temp_dir("optional");
    let server = start(&dir).await;
    let http = Http::new(&server);
    let body = json!({ "reports": [{
        "addr": A, "algorithm": "ring", "event": "started", "state": "Down", "phase": "Down",
        "node_time_us": 1, "heartbeat_ms": 500, "pid": 7,
    }]});
    let (status, text) = http
        .send(Method::POST, "/api/reports", &body.to_string())
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let nodes = http.get_json("/api/nodes").await;
    assert_eq!(nodes[0]["coordinator"], json!(null));
    assert_eq!(nodes[0]["group"], json!(null));
    assert_eq!(nodes[0]["incarnation"], json!(null));
    // A required field left out is named.
    let body = json!({ "reports": [{ "addr": A }] }).to_string();
    refused(
        &http,
        Method::POST,
        "/api/reports",
        &body,
        400,
        "missing field",
    )
    .await;
    server.shutdown().await.unwrap();
}
