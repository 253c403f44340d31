//! The logserver's JSON API, status page and embedded store, over real HTTP.

mod logserver_common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use election_core::State;
use election_core::report::ReportEvent;
use hyper::{Method, StatusCode};
use logserver::{ServeArgs, Server};
use logserver_common::{Http, column, metrics, report, sample, start, temp_dir};
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
    assert_eq!(a["event"], "heartbeat");
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
    assert_eq!(column(&log, "addr"), [B, A, A]);
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

/// A refused form answers an HTML page (for the browser that posted it) naming the problem.
async fn refused_form(http: &Http, path: &str, body: &str, code: u16, needle: &str) {
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let (status, headers, text) = http.send_full(Method::POST, path, body, &form).await;
    assert_eq!(status.as_u16(), code, "{path} {body:.80}: {text}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{path}: {text}"
    );
    let message = text
        .split("<p id=\"error\">")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_else(|| panic!("no error paragraph: {text}"));
    assert!(
        message.contains(needle),
        "{message:?} should mention {needle:?}"
    );
    assert!(text.contains("<a href=\"/status\">"), "a way back: {text}");
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
    bad_algo.algorithm = "Paxos!".to_string();
    let body = json!({ "reports": [bad_algo] }).to_string();
    refused(
        &http,
        Method::POST,
        "/api/reports",
        &body,
        400,
        "reports[0].algorithm",
    )
    .await;
    let mut huge_time = report(B, B, 1);
    huge_time.node_time_us = u64::MAX;
    let body = json!({ "reports": [huge_time] }).to_string();
    refused(
        &http,
        Method::POST,
        "/api/reports",
        &body,
        400,
        "reports[0].node_time_us",
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
    let token = http.form_token().await;
    refused_form(
        &http,
        "/status/blocks",
        &format!("csrf={token}&pair=1.2.3.4:5"),
        400,
        "comma",
    )
    .await;
    refused_form(&http, "/status/blocks", "x=1", 400, "unknown form field").await;
    refused_form(
        &http,
        "/status/blocks",
        "pair=127.0.0.1:1%2C127.0.0.1:2",
        403,
        "form token",
    )
    .await;
    for (body, needle) in [
        ("node=127.0.0.1:9000&action=explode", "neither"),
        ("action=isolate", "missing form field &quot;node&quot;"),
        ("node=nowhere&action=isolate", "node"),
    ] {
        refused_form(
            &http,
            "/status/isolate",
            &format!("csrf={token}&{body}"),
            400,
            needle,
        )
        .await;
    }
    for (body, needle) in [
        ("side=127.0.0.1:9000%3Da", "two different sides"),
        (
            "side=127.0.0.1:9000%3Dz&side=127.0.0.1:9001%3Da",
            "not a, b, c",
        ),
        ("side=127.0.0.1:9000", "ADDR=SIDE"),
    ] {
        refused_form(
            &http,
            "/status/split",
            &format!("csrf={token}&{body}"),
            400,
            needle,
        )
        .await;
    }
    for query in ["seconds=0", "seconds=100000", "colour=1"] {
        for path in ["/timeline", "/api/events", "/api/shiviz"] {
            let (status, _) = http.send(Method::GET, &format!("{path}?{query}"), "").await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}?{query}");
        }
    }

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
        .send_full(
            Method::POST,
            "/api/reports",
            &body.to_string(),
            &[("content-type", "application/json")],
        )
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

    let (status, headers) = http
        .post_form("/status/blocks", &format!("pair={A}%2C{B}"))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/status");
    let expected = json!([{ "from": A, "to": B }, { "from": B, "to": A }, { "from": C, "to": A }]);
    assert_eq!(http.get_json("/api/blocks").await, expected);

    let (status, _) = http.post_form("/status/reset", "").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(http.get_json("/api/blocks").await, json!([]));
    server.shutdown().await.unwrap();
}

/// Isolate and heal one node, and split the cluster into sides, through the page's plain forms.
#[tokio::test]
async fn isolate_heal_and_split_set_the_blocks() {
    let dir = temp_dir("isolate");
    let server = start(&dir).await;
    let http = Http::new(&server);
    http.post_reports(&[report(A, C, 1), report(B, C, 1), report(C, C, 1)])
        .await;
    let one_way = json!([{ "from": C, "to": B }]);
    http.send(Method::PUT, "/api/blocks", &one_way.to_string())
        .await;
    let (status, headers) = http
        .post_form("/status/isolate", &format!("node={A}&action=isolate"))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/status");
    let isolated = json!([
        { "from": A, "to": B }, { "from": A, "to": C },
        { "from": B, "to": A }, { "from": C, "to": A }, { "from": C, "to": B },
    ]);
    assert_eq!(http.get_json("/api/blocks").await, isolated);
    http.post_form("/status/isolate", &format!("node={A}&action=heal"))
        .await;
    assert_eq!(
        http.get_json("/api/blocks").await,
        one_way,
        "the other block stays"
    );
    // A and B on different sides, C on none: only A-B is cut, and the old block is replaced.
    let (status, _) = http
        .post_form(
            "/status/split",
            &format!("side={A}%3Da&side={B}%3Db&side={C}%3D"),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        http.get_json("/api/blocks").await,
        json!([{ "from": A, "to": B }, { "from": B, "to": A }])
    );
    // The picture draws it: one dashed two-way line, no arrow.
    let (_, svg) = http.send(Method::GET, "/status/graph.svg", "").await;
    assert_eq!(svg.matches("class=\"block two-way\"").count(), 1, "{svg}");
    assert_eq!(svg.matches("class=\"block one-way\"").count(), 0, "{svg}");
    assert_eq!(svg.matches("class=\"node").count(), 3);
    assert_eq!(svg.matches("class=\"node leader\"").count(), 1, "C leads");
    server.shutdown().await.unwrap();
}

/// The real cluster as a picture: `/timeline` (the simulator's renderer, its inline code allowed
/// by hash only), `/api/shiviz` (vector clocks that check) and `/api/events` (who leads).
#[tokio::test]
async fn the_timeline_the_events_and_shiviz_show_the_real_cluster() {
    let dir = temp_dir("timeline");
    let server = start(&dir).await;
    let http = Http::new(&server);
    let mut boot = Vec::new();
    for n in [A, B, C] {
        let mut r = report(n, C, 1);
        r.event = ReportEvent::Started;
        r.state = State::Election;
        r.coordinator = None;
        r.group = None;
        boot.push(r);
    }
    http.post_reports(&boot).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    http.post_reports(&[report(A, C, 2), report(B, C, 2), report(C, C, 2)])
        .await;

    let events = http.get_json("/api/events").await;
    let texts: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with(&format!("{C} leads 3/3 after "))),
        "{texts:?}"
    );
    assert_eq!(events.as_array().unwrap().last().unwrap()["kind"], "leader");
    let (_, page) = http.send(Method::GET, "/status", "").await;
    assert!(
        page.contains(&format!("{C} leads 3/3 after ")),
        "the page lists it"
    );

    let (status, headers, page) = http.send_full(Method::GET, "/timeline", "", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let csp = headers["content-security-policy"].to_str().unwrap();
    let scripts = csp.split(';').find(|d| d.contains("script-src")).unwrap();
    assert!(
        scripts.contains("'sha256-") && !scripts.contains("unsafe"),
        "{csp}"
    );
    assert!(page.contains("id=\"run-data\""), "a spacetime page");
    for n in [A, B, C] {
        assert!(page.contains(n), "{n} has a lane");
    }
    let (status, shiviz) = http.send(Method::GET, "/api/shiviz", "").await;
    assert_eq!(status, StatusCode::OK);
    let parsed = election_view::check_shiviz(&shiviz).unwrap_or_else(|e| panic!("{e}\n{shiviz}"));
    assert!(
        parsed.len() >= 6,
        "starts and statuses of three nodes: {shiviz}"
    );
    server.shutdown().await.unwrap();
}

/// Message reports become arrows: a send reported by A and its receive reported by B (in the
/// other order, as batches from different nodes may arrive) pair up by sender, receiver,
/// incarnation and number, and the receive's vector clock in `/api/shiviz` dominates the send's;
/// a bad record is refused with a 400 naming the field.
#[tokio::test]
async fn message_reports_pair_into_arrows_with_consistent_vector_clocks() {
    use election_core::report::{Direction, MessageReport};
    let dir = temp_dir("messages");
    let server = start(&dir).await;
    let http = Http::new(&server);
    let record = |dir, peer: &str, number, node_time_us| MessageReport {
        dir,
        kind: "AreYouThere".to_string(),
        peer: peer.to_string(),
        incarnation: 7,
        number,
        node_time_us,
    };
    let mut received = report(B, B, 50_000);
    received.messages = vec![record(Direction::Receive, A, 3, 40_000)];
    http.post_reports(&[received]).await;
    let mut sent = report(A, B, 50_000);
    sent.messages = vec![
        record(Direction::Send, B, 3, 30_000),
        // Never received: a send without an arrow head.
        record(Direction::Send, C, 4, 31_000),
    ];
    http.post_reports(&[sent]).await;

    let (status, shiviz) = http.send(Method::GET, "/api/shiviz", "").await;
    assert_eq!(status, StatusCode::OK);
    let events = election_view::check_shiviz(&shiviz).unwrap_or_else(|e| panic!("{e}\n{shiviz}"));
    let find = |host: &str, text: &str| {
        events
            .iter()
            .find(|e| e.host == host && e.text.contains(text))
            .unwrap_or_else(|| panic!("no {text:?} at {host}: {shiviz}"))
    };
    let send = find(A, &format!("AreYouThere to {B}"));
    let receive = find(B, &format!("AreYouThere from {A}"));
    assert!(
        send.clock
            .iter()
            .all(|(h, c)| receive.clock.get(h).is_some_and(|r| r >= c)),
        "{send:?} then {receive:?}"
    );
    assert!(receive.clock[A] >= send.clock[A] && receive.clock[B] > 0);
    assert_eq!(
        events
            .iter()
            .filter(|e| e.text.contains("receive #"))
            .count(),
        1,
        "one paired receive: {shiviz}"
    );
    let (_, page) = http.send(Method::GET, "/timeline", "").await;
    assert!(
        page.contains("status changes and messages"),
        "the timeline says so"
    );

    let mut bad = report(A, B, 60_000);
    bad.messages = vec![record(Direction::Send, "nowhere", 5, 59_000)];
    let body = json!({ "reports": [bad] }).to_string();
    let (status, text) = http.send(Method::POST, "/api/reports", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("reports[0].messages[0].peer"), "{text}");
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
    let csrf = http.form_token().await;
    refused_form(
        &http,
        "/status/reset",
        &format!("csrf={csrf}&token=wrong"),
        401,
        "admin token",
    )
    .await;
    let wrong = [
        ("authorization", "Bearer s3cre"),
        ("content-type", "application/json"),
    ];
    let (status, _, _) = http
        .send_full(Method::PUT, "/api/blocks", &links, &wrong)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let right = [
        ("authorization", "Bearer s3cret"),
        ("content-type", "application/json"),
    ];
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
    let (status, _) = http.post_form("/status/reset", "token=s3cret").await;
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
    assert!(err.to_string().starts_with("--queue-limit"), "{err}");
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

#[tokio::test]
async fn any_algorithm_name_and_drop_counters_reach_the_api_the_page_and_metrics() {
    let dir = temp_dir("drops");
    let server = start(&dir).await;
    let http = Http::new(&server);
    let mut raft = report(A, A, 1);
    raft.algorithm = "raft".to_string();
    raft.drops = [("bad-mac".to_string(), 3), ("replay".to_string(), 1)].into();
    let mut mine = report(B, A, 1);
    mine.algorithm = "my_own-algo2".to_string();
    http.post_reports(&[raft, mine]).await;
    let mut newer = report(A, A, 2);
    newer.algorithm = "raft".to_string();
    newer.drops = [("bad-mac".to_string(), 5)].into();
    http.post_reports(&[newer]).await;
    let bad = json!({ "reports": [{ "addr": C }] }).to_string();
    let (status, _) = http.send(Method::POST, "/api/reports", &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let nodes = http.get_json("/api/nodes").await;
    assert_eq!(column(&nodes, "algorithm"), ["raft", "my_own-algo2"]);
    assert_eq!(
        nodes[0]["drops"],
        json!({ "bad-mac": 5 }),
        "the latest counters"
    );
    let page = http.send(Method::GET, "/status", "").await.1;
    assert!(page.contains("<td>bad-mac 5</td>"), "compact drops cell");
    assert!(page.contains("<td>my_own-algo2</td>"));

    let m = metrics(&http).await;
    let drops = "election_node_dropped_datagrams_total";
    assert_eq!(
        sample(&m, drops, &[("node", A), ("reason", "bad-mac")]),
        5.0
    );
    assert!(
        !m.samples
            .iter()
            .any(|s| s.metric == drops && s.labels.get("reason") == Some("replay")),
        "only the latest report's counters"
    );
    assert_eq!(sample(&m, "logserver_reports_accepted_total", &[]), 3.0);
    assert_eq!(
        sample(
            &m,
            "logserver_reports_refused_total",
            &[("reason", "invalid")]
        ),
        1.0
    );
    assert_eq!(sample(&m, "logserver_nodes_known", &[]), 2.0);
    assert_eq!(sample(&m, "logserver_nodes_reachable", &[]), 2.0);
    assert_eq!(sample(&m, "logserver_queue_depth", &[]), 0.0);
    assert!(sample(&m, "logserver_store_write_seconds_count", &[]) >= 2.0);
    assert_eq!(sample(&m, "logserver_store_write_failures_total", &[]), 0.0);

    let health = http.get_json("/healthz").await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["store"], "embedded");
    assert_eq!(health["queue_depth"], 0);
    assert_eq!(health["nodes"], 2);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn changes_need_this_host_this_origin_json_and_the_form_token() {
    let dir = temp_dir("csrf");
    let mut args = ServeArgs::new(0, &dir);
    args.public_hosts = vec!["logs.test".to_string()];
    let server = Server::start(args).await.unwrap();
    let http = Http::new(&server);
    http.post_reports(&[report(A, B, 1), report(B, B, 1)]).await;
    let pair = format!("pair={A}%2C{B}");
    let csrf = http.form_token().await;
    let form = |extra: &'static [(&'static str, &'static str)]| {
        let mut h = vec![("content-type", "application/x-www-form-urlencoded")];
        h.extend_from_slice(extra);
        h
    };

    // A cross-origin form post (even one that somehow knew the token) changes nothing.
    let evil = form(&[("origin", "http://evil.example")]);
    let body = format!("csrf={csrf}&{pair}");
    let (status, _, text) = http
        .send_full(Method::POST, "/status/blocks", &body, &evil)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("cross-origin"), "{text}");
    // What a forged form can actually send: no token.
    let (status, _, text) = http
        .send_full(Method::POST, "/status/blocks", &pair, &form(&[]))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("form token"), "{text}");
    // DNS rebinding: the attacker's name in Host.
    let rebound = form(&[("host", "evil.example:4711")]);
    let (status, _, text) = http
        .send_full(Method::POST, "/status/blocks", &body, &rebound)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("Host"), "{text}");
    let foreign = [
        ("content-type", "application/json"),
        ("host", "evil.example"),
    ];
    let batch = json!({ "reports": [report(C, C, 1)] }).to_string();
    let (status, _, _) = http
        .send_full(Method::POST, "/api/reports", &batch, &foreign)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let links = json!([{ "from": A, "to": C }]).to_string();
    let (status, _, _) = http
        .send_full(Method::PUT, "/api/blocks", &links, &foreign)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A text/plain post (which a browser may send cross-site without asking) is refused.
    let plain = [("content-type", "text/plain")];
    let (status, _, text) = http
        .send_full(Method::POST, "/api/reports", &batch, &plain)
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{text}");
    assert!(text.contains("application/json"), "{text}");
    assert_eq!(
        http.get_json("/api/blocks").await,
        json!([]),
        "no change got through"
    );
    assert_eq!(column(&http.get_json("/api/nodes").await, "addr"), [A, B]);

    // The same requests from this site, and a --public-host name, work.
    let same = format!("http://{}", server.local_addr());
    let own = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("origin", same.as_str()),
    ];
    let (status, _, _) = http
        .send_full(Method::POST, "/status/blocks", &body, &own)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        http.get_json("/api/blocks").await.as_array().unwrap().len(),
        2
    );
    let named = [("content-type", "application/json"), ("host", "logs.test")];
    let (status, _, text) = http
        .send_full(Method::POST, "/api/reports", &batch, &named)
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");

    // Every answer carries the browser protections.
    for path in ["/status", "/api/nodes", "/nope", "/status.js"] {
        let (_, headers, _) = http.send_full(Method::GET, path, "", &[]).await;
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
    }
    let page = http.send(Method::GET, "/status", "").await.1;
    assert!(
        !page.contains("<script>") && !page.contains("<style>"),
        "no inline code"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn reports_need_the_reporter_token_when_one_is_set() {
    let dir = temp_dir("reporter");
    let mut args = ServeArgs::new(0, &dir);
    args.report_token = Some("n0des".to_string());
    let server = Server::start(args).await.unwrap();
    let http = Http::new(&server);
    let batch = json!({ "reports": [report(A, A, 1)] }).to_string();
    refused(
        &http,
        Method::POST,
        "/api/reports",
        &batch,
        401,
        "reporter token",
    )
    .await;
    let wrong = [
        ("content-type", "application/json"),
        ("authorization", "Bearer n0de"),
    ];
    let (status, _, _) = http
        .send_full(Method::POST, "/api/reports", &batch, &wrong)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(http.get_json("/api/nodes").await, json!([]));
    let right = [
        ("content-type", "application/json"),
        ("authorization", "Bearer n0des"),
    ];
    let (status, _, text) = http
        .send_full(Method::POST, "/api/reports", &batch, &right)
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let m = metrics(&http).await;
    assert_eq!(
        sample(
            &m,
            "logserver_reports_refused_total",
            &[("reason", "unauthorized")]
        ),
        2.0
    );
    server.shutdown().await.unwrap();
}

async fn wait_until(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "no {what} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_node_table_is_capped_and_silent_nodes_are_forgotten() {
    let dir = temp_dir("evict");
    let mut args = ServeArgs::new(0, &dir);
    args.max_nodes = 2;
    args.forget_after = Duration::from_secs(1);
    let server = Server::start(args).await.unwrap();
    let http = Http::new(&server);
    http.post_reports(&[report(A, A, 1), report(B, A, 1)]).await;
    let batch = json!({ "reports": [report(A, A, 2), report(C, A, 1)] }).to_string();
    refused(
        &http,
        Method::POST,
        "/api/reports",
        &batch,
        503,
        "node table full",
    )
    .await;
    http.post_reports(&[report(A, A, 3)]).await; // known nodes still report
    assert_eq!(column(&http.get_json("/api/nodes").await, "addr"), [A, B]);

    wait_until("eviction", Duration::from_secs(10), async || {
        http.get_json("/api/nodes").await == json!([])
    })
    .await;
    let m = metrics(&http).await;
    assert_eq!(sample(&m, "logserver_nodes_evicted_total", &[]), 2.0);
    assert_eq!(
        sample(
            &m,
            "logserver_reports_refused_total",
            &[("reason", "node_table_full")]
        ),
        2.0
    );
    // Room again; the log kept the forgotten nodes' history.
    http.post_reports(&[report(C, C, 1)]).await;
    assert_eq!(column(&http.get_json("/api/nodes").await, "addr"), [C]);
    assert_eq!(http.get_json("/api/log").await.as_array().unwrap().len(), 4);
    server.shutdown().await.unwrap();
    // Eviction is durable.
    let server = start(&dir).await;
    let http = Http::new(&server);
    assert_eq!(column(&http.get_json("/api/nodes").await, "addr"), [C]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn old_log_entries_are_pruned_and_their_numbers_never_come_back() {
    let dir = temp_dir("retain");
    let mut args = ServeArgs::new(0, &dir);
    args.retain_entries = 5;
    let server = Server::start(args).await.unwrap();
    let http = Http::new(&server);
    for t in 0..20 {
        http.post_reports(&[report(A, A, t)]).await;
    }
    wait_until(
        "pruning to 5 entries",
        Duration::from_secs(10),
        async || http.get_json("/api/log").await.as_array().unwrap().len() == 5,
    )
    .await;
    assert_eq!(
        column(&http.get_json("/api/log").await, "seq"),
        [15, 16, 17, 18, 19]
    );
    let m = metrics(&http).await;
    assert_eq!(sample(&m, "logserver_log_pruned_total", &[]), 15.0);
    server.shutdown().await.unwrap();

    // By age: everything goes.
    let mut args = ServeArgs::new(0, &dir);
    args.retain = Duration::from_millis(300);
    let server = Server::start(args).await.unwrap();
    let http = Http::new(&server);
    wait_until("pruning by age", Duration::from_secs(10), async || {
        http.get_json("/api/log").await == json!([])
    })
    .await;
    server.shutdown().await.unwrap();

    // The store is empty, yet numbering goes on: seqs are reserved, not derived from the log.
    let server = start(&dir).await;
    let http = Http::new(&server);
    assert_eq!(http.get_json("/api/log").await, json!([]));
    http.post_reports(&[report(B, B, 1)]).await;
    assert_eq!(column(&http.get_json("/api/log").await, "seq"), [20]);
    server.shutdown().await.unwrap();
}
