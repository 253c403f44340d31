//! The `/status` page in a real headless Chromium (see `election_tests::browser`): the table
//! updates live, the pair checkboxes block, the picture of the cluster isolates and heals a node
//! with a click, "split into sides" partitions, and a refused form answers a readable page.
//! Without chromedriver the test says so loudly and returns.

mod logserver_common;

use std::time::Duration;

use election_core::State;
use election_tests::TempDir;
use election_tests::browser::{Browser, chromedriver, save_screenshot, skipped};
use logserver_common::{Http, metrics, report, sample, start, temp_dir};
use serde_json::{Value, json};

const NODES: [&str; 4] = [
    "127.0.0.1:9000",
    "127.0.0.1:9001",
    "127.0.0.1:9002",
    "127.0.0.1:9003",
];
const WAIT: Duration = Duration::from_secs(15);

/// Waits until the blocks API answers `want`.
async fn wait_blocks(api: &Http, want: &Value) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let have = api.get_json("/api/blocks").await;
        if have == *want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "blocks {have}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `css`'s text equals `want`.
async fn wait_text(browser: &Browser, css: &str, want: &str) {
    let script = format!(
        "const e = document.querySelector({}); return e && e.textContent === {}",
        json!(css),
        json!(want)
    );
    browser
        .wait_for(&format!("{css} = {want:?}"), &script, WAIT)
        .await;
}

/// Both directions between `a` and every one of `others`, sorted as the API sorts them.
fn cut(pairs: &[(&str, &str)]) -> Value {
    let mut links: Vec<(String, String)> = pairs
        .iter()
        .flat_map(|(a, b)| {
            [
                (a.to_string(), b.to_string()),
                (b.to_string(), a.to_string()),
            ]
        })
        .collect();
    links.sort();
    json!(
        links
            .iter()
            .map(|(f, t)| json!({ "from": f, "to": t }))
            .collect::<Vec<_>>()
    )
}

#[tokio::test]
async fn the_status_page_draws_isolates_splits_and_updates_live_in_chromium() {
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

    let profile = TempDir::new("status-chrome");
    let browser = Browser::start(&exe, profile.path(), (1280, 1000)).await;
    browser
        .goto(&format!("http://{}/status", server.local_addr()))
        .await;

    // The table, one row per node; the picture, one circle per node, the leader starred.
    let rows = browser
        .run("return document.querySelectorAll('#nodes tr').length")
        .await;
    assert_eq!(rows, json!(NODES.len()));
    let row = |addr: &str, col: u32| format!("tr[data-addr=\"{addr}\"] td:nth-child({col})");
    assert_eq!(browser.text(&row(NODES[0], 1)).await, NODES[0]);
    assert_eq!(browser.text(&row(NODES[0], 2)).await, leader);
    assert_eq!(browser.text(&row(NODES[0], 4)).await, "Normal");
    assert_eq!(
        browser
            .run("return document.querySelectorAll('#graph .node').length")
            .await,
        json!(NODES.len())
    );
    assert_eq!(
        browser
            .run("return document.querySelector('#graph .node.leader').dataset.addr")
            .await,
        json!(leader)
    );

    // Tick the pair 9000-9001 and submit: the blocks API has both directions.
    let pair = format!("input[name=pair][value=\"{},{}\"]", NODES[0], NODES[1]);
    browser.click(&pair).await;
    browser
        .click("form[action=\"/status/blocks\"] button")
        .await;
    wait_blocks(&api, &cut(&[(NODES[0], NODES[1])])).await;
    // Back on the page, the pair shows as blocked, and the picture draws the cut.
    wait_text(&browser, "h2", "Recent events").await;
    let checked = browser
        .run(&format!("return document.querySelector('{pair}').checked"))
        .await;
    assert_eq!(checked, json!(true));
    browser
        .wait_for(
            "the cut drawn",
            "return document.querySelectorAll('#graph line.two-way').length === 1",
            WAIT,
        )
        .await;
    browser.click("form[action=\"/status/reset\"] button").await;
    wait_blocks(&api, &json!([])).await;

    // A click on the leader in the picture isolates it; a second click heals it.
    let leader_node = format!("#graph .node[data-addr=\"{leader}\"] circle");
    wait_text(&browser, "h2", "Recent events").await;
    browser.click(&leader_node).await;
    let isolated = cut(&[(leader, NODES[0]), (leader, NODES[1]), (leader, NODES[2])]);
    wait_blocks(&api, &isolated).await;
    wait_text(&browser, "h2", "Recent events").await;
    browser
        .wait_for(
            "three cuts drawn",
            "return document.querySelectorAll('#graph line.two-way').length === 3",
            WAIT,
        )
        .await;
    browser.click(&leader_node).await;
    wait_blocks(&api, &json!([])).await;

    // Split 9000, 9001 | 9002, 9003 with the side pickers.
    wait_text(&browser, "h2", "Recent events").await;
    for (i, side) in ["a", "a", "b", "b"].iter().enumerate() {
        browser
            .run_with(
                "const s = [...document.querySelectorAll('#split select')][arguments[0]];
                 s.value = arguments[1]; return s.value",
                json!([i, format!("{}={side}", NODES[i])]),
            )
            .await;
    }
    browser.click("#split button").await;
    let split = cut(&[
        (NODES[0], NODES[2]),
        (NODES[0], NODES[3]),
        (NODES[1], NODES[2]),
        (NODES[1], NODES[3]),
    ]);
    wait_blocks(&api, &split).await;

    // A status change appears without a reload: a marker set on this page survives; the
    // recent events tell the election.
    wait_text(&browser, "h2", "Recent events").await;
    browser.run("window.stillHere = 42").await;
    let mut change = node(NODES[1], NODES[1], 6);
    change.state = State::Election;
    change.phase = "Election".to_string();
    change.coordinator = None;
    change.group = None;
    change.drops = [("bad-mac".to_string(), 2), ("blocked".to_string(), 17)].into();
    api.post_reports(&[change]).await;
    wait_text(&browser, &row(NODES[1], 4), "Election").await;
    // The script writes the drop counters like the server-rendered page.
    wait_text(&browser, &row(NODES[1], 11), "bad-mac 2, blocked 17").await;
    assert_eq!(browser.text(&row(NODES[1], 2)).await, "");
    browser
        .wait_for(
            "the event listed",
            &format!(
                "return [...document.querySelectorAll('#events li')].some(li => \
                 li.textContent.includes('{} Election'))",
                NODES[1]
            ),
            WAIT,
        )
        .await;
    assert_eq!(browser.run("return window.stillHere").await, json!(42));
    save_screenshot(&browser.screenshot().await, "status-page.png");

    // A new node gets a row at once, and a note that the forms need a refresh.
    let newcomer = "127.0.0.1:9004";
    let hidden = "return document.getElementById('changed').hidden";
    assert_eq!(browser.run(hidden).await, json!(true));
    api.post_reports(&[node(newcomer, leader, 7)]).await;
    wait_text(&browser, &row(newcomer, 1), newcomer).await;
    assert_eq!(browser.run(hidden).await, json!(false));
    assert_eq!(browser.run("return window.stillHere").await, json!(42));

    // Two coordinators at once among Bully nodes, held for longer than the monitor's slack:
    // the banner says so live, with its start, as expected (the split is in force); the
    // history and the counter have it too. Fresh pids and node clocks that run with real time,
    // so the monitor maps them onto the server's.
    let hidden = "return document.getElementById('violation').hidden";
    assert_eq!(browser.run(hidden).await, json!(true));
    let start = std::time::Instant::now();
    let everyone = [NODES[0], NODES[1], NODES[2], NODES[3], newcomer];
    for _ in 0..5 {
        let now_us = start.elapsed().as_micros() as u64 + 1_000_000;
        let split: Vec<_> = everyone
            .iter()
            .map(|&a| {
                let follows = if a == NODES[0] || a == NODES[2] {
                    NODES[2]
                } else {
                    leader
                };
                let mut r = node(a, follows, now_us);
                r.pid = 4343;
                r
            })
            .collect();
        api.post_reports(&split).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser
        .wait_for(
            "the violation banner",
            "const b = document.getElementById('violation'); return !b.hidden && \
             b.textContent.startsWith('two coordinators: ') && b.textContent.includes(' since ')",
            WAIT,
        )
        .await;
    let banner = browser.text("#violation").await;
    assert!(
        banner.contains("(expected: outside the synchronous model"),
        "{banner}"
    );
    let violations = api.get_json("/api/violations").await;
    assert_eq!(violations.as_array().unwrap().len(), 1, "{violations}");
    assert_eq!(violations[0]["invariant"], "agreement");
    assert_eq!(violations[0]["expected"], true);
    assert_eq!(violations[0]["until_ms"], Value::Null);
    let scrape = metrics(&api).await;
    let labels = [("invariant", "agreement"), ("expected", "true")];
    assert_eq!(
        sample(&scrape, "logserver_invariant_violations_total", &labels),
        1.0
    );
    save_screenshot(&browser.screenshot().await, "status-violation.png");

    // A refused form answers a page that says why, with a way back.
    browser
        .run("document.querySelectorAll('#split select').forEach(s => s.selectedIndex = 0)")
        .await;
    browser.click("#split button").await;
    wait_text(&browser, "h1", "Not done").await;
    assert!(browser.text("#error").await.contains("two different sides"));
    browser.click("a[href=\"/status\"]").await;
    wait_text(&browser, "h1", "Election status").await;

    // The timeline of the same cluster opens and draws its lanes without an error (the page's
    // inline code runs under its own hash-only Content-Security-Policy).
    browser.click("a[href=\"/timeline\"]").await;
    browser
        .wait_for(
            "the timeline drawn",
            "return window.spacetime && document.querySelectorAll('.lane-name').length",
            WAIT,
        )
        .await;
    assert_eq!(
        browser
            .run("return document.querySelectorAll('.lane-name').length")
            .await,
        json!(NODES.len() + 1)
    );
    assert_eq!(browser.run("return window.pageErrors").await, json!([]));
    // No script error and nothing the policy blocked (the refused form's 400 and the favicon's
    // 404 are network entries, expected).
    let console = browser.console().await;
    assert!(
        console
            .iter()
            .all(|m| m["level"] != "SEVERE" || m["source"] == "network"),
        "console errors: {console:?}"
    );
    save_screenshot(&browser.screenshot().await, "timeline-live.png");
    browser.close().await;
    server.shutdown().await.unwrap();
}
