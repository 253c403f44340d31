//! `spacetime.html` and `report.html` in a real headless Chromium, driven over WebDriver
//! (see `election_tests::browser`). Without chromedriver the tests say so loudly and return.
//!
//! Screenshots go to `target/view-screenshots/`; with `ELECTION_UPDATE_DOCS=1` also to `docs/`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use election_sim::{Fault, Network, Plan, RandomFaults, Spec, TimedFault};
use election_tests::TempDir;
use election_tests::browser::{Browser, chromedriver, save_screenshot, skipped};
use election_tests::traces::{UsurpingInvitation, run_of, trace_of};
use election_view::{
    AlgorithmRuns, CompareData, EventKind, Measures, NodeIx, NodeStatus, ReadOptions, Run, SeedRow,
    agreed_leader, read_sim_trace, render_compare, render_spacetime,
};
use serde_json::{Value, json};

const READY: &str = "return window.spacetime && window.spacetime.ready";
const WAIT: Duration = Duration::from_secs(30);

fn at(at_us: u64, fault: Fault) -> TimedFault {
    TimedFault { at_us, fault }
}

/// Bully on five nodes over a slightly lossy, duplicating network: the boot election, the
/// leader's crash at 300 ms and the re-election, its recovery at 900 ms and the bully back.
fn bully_crash() -> Run {
    let plan = Plan {
        network: Network {
            min_latency_us: 1_000,
            max_latency_us: 4_000,
            loss: 0.02,
            duplicate: 0.02,
        },
        faults: vec![
            at(300_000, Fault::Crash { node: 4 }),
            at(900_000, Fault::Recover { node: 4 }),
        ],
    };
    run_of(Spec::new("bully", 5, 3, plan)).0
}

/// Invitation on five nodes: split into {n0 n1 n2} and {n3 n4} at 300 ms, healed at 700 ms; each
/// side elects its own coordinator, and the groups merge after the heal.
fn invitation_partition() -> Run {
    let plan = Plan {
        network: Network::default(),
        faults: vec![
            at(
                300_000,
                Fault::Partition {
                    groups: vec![vec![0, 1, 2], vec![3, 4]],
                },
            ),
            at(700_000, Fault::Heal),
        ],
    };
    run_of(Spec::new("invitation", 5, 2, plan)).0
}

/// Where screenshots go: `target/view-screenshots/`, and `docs/` when asked for.
/// Writes `html` to `dir/name` and opens it from `file://`.
async fn open(browser: &Browser, dir: &Path, name: &str, html: &str) -> Duration {
    let path = dir.join(name);
    std::fs::write(&path, html).unwrap();
    let started = Instant::now();
    browser.goto(&format!("file://{}", path.display())).await;
    browser.wait_for("the page to draw", READY, WAIT).await;
    started.elapsed()
}

/// The page drew without a script error, a console error or any network request.
async fn assert_clean(browser: &Browser) {
    assert_eq!(browser.run("return window.pageErrors").await, json!([]));
    let severe: Vec<Value> = browser
        .console()
        .await
        .into_iter()
        .filter(|m| m["level"] == "SEVERE")
        .collect();
    assert!(severe.is_empty(), "console errors: {severe:?}");
    let fetched = browser
        .run("return performance.getEntriesByType('resource').map(e => e.name)")
        .await;
    assert_eq!(fetched, json!([]), "the page fetched something");
}

/// Every arrow of the run: `(send time, arrival or drop time, from, to, kind)`, from the events
/// (a delivery whose send is not in the run starts at the run's start).
fn arrows(run: &Run) -> Vec<(f64, f64, NodeIx, NodeIx, String)> {
    let mut sent = BTreeMap::new();
    let mut out = Vec::new();
    for e in &run.events {
        match &e.kind {
            EventKind::Send { id, .. } => {
                sent.insert(*id, e.t);
            }
            EventKind::Deliver { id, from, to, kind }
            | EventKind::Drop {
                id, from, to, kind, ..
            } => {
                let t0 = sent.get(id).copied().unwrap_or(run.start());
                out.push((t0 as f64, e.t as f64, *from, *to, kind.clone()));
            }
            _ => {}
        }
    }
    out
}

/// Arrows overlapping the window `[t0, t1]` that pass `keep`.
fn expected_arrows(
    run: &Run,
    (t0, t1): (f64, f64),
    keep: impl Fn(NodeIx, NodeIx, &str) -> bool,
) -> usize {
    arrows(run)
        .iter()
        .filter(|(s, e, from, to, kind)| *s <= t1 && *e >= t0 && keep(*from, *to, kind))
        .count()
}

async fn drawn_window(browser: &Browser) -> (f64, f64) {
    let w = browser.run("return window.spacetime.window()").await;
    (w[0].as_f64().unwrap(), w[1].as_f64().unwrap())
}

async fn drawn_arrows(browser: &Browser, css: &str) -> usize {
    let script = "return document.querySelectorAll(arguments[0]).length";
    browser
        .run_with(script, json!([css]))
        .await
        .as_u64()
        .unwrap() as usize
}

/// Each node's status at `t` and the agreed leader, from the run's events.
fn cluster_at(run: &Run, t: u64) -> (Vec<Option<NodeStatus>>, Option<NodeIx>) {
    let mut status: Vec<Option<NodeStatus>> = vec![None; run.header.nodes.len()];
    for e in run.events.iter().take_while(|e| e.t <= t) {
        if let EventKind::Status { node, status: s } = &e.kind {
            status[*node as usize] = Some(s.clone());
        }
    }
    let refs: Vec<Option<&NodeStatus>> = status.iter().map(Option::as_ref).collect();
    let leader = agreed_leader(&refs);
    (status, leader)
}

/// Clicks the time slider at `fraction` of its width and returns the time it shows.
async fn slide(browser: &Browser, fraction: f64) -> u64 {
    let r = browser
        .run("const r = document.getElementById('slider').getBoundingClientRect(); return [r.left, r.top, r.width, r.height]")
        .await;
    let (left, top, width, height) = (
        r[0].as_f64().unwrap(),
        r[1].as_f64().unwrap(),
        r[2].as_f64().unwrap(),
        r[3].as_f64().unwrap(),
    );
    browser
        .click_at(left + 8.0 + (width - 16.0) * fraction, top + height / 2.0)
        .await;
    let v = browser
        .run("return Number(document.getElementById('slider').value)")
        .await;
    v.as_u64().unwrap()
}

/// The cluster panel shows exactly the run's state at `t`.
async fn assert_cluster_shown(browser: &Browser, run: &Run, t: u64) {
    let (status, leader) = cluster_at(run, t);
    for (i, s) in status.iter().enumerate() {
        let shown = browser
            .text(&format!("#states tr[data-node=\"{i}\"] td.state"))
            .await;
        let want = s.as_ref().map_or("—".to_string(), |s| s.state.to_string());
        assert_eq!(shown, want, "node {i} at {t}us");
        let dot = browser
            .run_with(
                "return document.querySelector('#graph .gnode[data-node=\"' + arguments[0] + '\"]').dataset.state",
                json!([i]),
            )
            .await;
        let want = s
            .as_ref()
            .map_or("none".to_string(), |s| s.state.to_string());
        assert_eq!(dot, json!(want), "graph node {i} at {t}us");
    }
    let shown = browser
        .run("return document.getElementById('agreement').dataset.leader")
        .await;
    let want = leader.map_or(String::new(), |l| l.to_string());
    assert_eq!(shown, json!(want), "agreed leader at {t}us");
}

#[tokio::test]
async fn the_spacetime_diagram_draws_filters_and_slides_in_chromium() {
    let Some(exe) = chromedriver() else {
        skipped("chromedriver not installed (apt-get install chromium chromium-driver)");
        return;
    };
    let dir = TempDir::new("view-browser");
    let browser = Browser::start(&exe, &dir.path().join("profile"), (1400, 1000)).await;
    let run = bully_crash();
    open(&browser, dir.path(), "bully.html", &render_spacetime(&run)).await;
    assert_clean(&browser).await;
    assert_eq!(
        browser
            .run("return document.querySelectorAll('.lane-name').length")
            .await,
        json!(5)
    );

    // The drawn arrows are the deliveries and drops of the drawn window, at the initial view and
    // in a window typed in by hand (around the crash).
    let window = drawn_window(&browser).await;
    let all = |_: NodeIx, _: NodeIx, _: &str| true;
    let want = expected_arrows(&run, window, all);
    assert!(want > 20, "a busy window: {want}");
    assert_eq!(drawn_arrows(&browser, "#diagram .msg").await, want);
    browser.type_into("#from", "290").await;
    browser.type_into("#to", "360").await;
    browser.click("#show").await;
    let window = drawn_window(&browser).await;
    assert!(
        (window.0 - 290_000.0).abs() < 2_000.0 && (window.1 - 360_000.0).abs() < 2_000.0,
        "{window:?}"
    );
    let want = expected_arrows(&run, window, all);
    assert!(want > 10, "the re-election is busy: {want}");
    assert_eq!(drawn_arrows(&browser, "#diagram .msg").await, want);
    assert_eq!(
        browser.run("return window.spacetime.arrowsDrawn()").await,
        json!(want)
    );
    // The crash is marked.
    let crash_drawn = browser
        .run("return [...document.querySelectorAll('#diagram text')].some(t => t.textContent === 'crash')")
        .await;
    assert_eq!(crash_drawn, json!(true));

    // Hovering an arrow shows its message in full.
    let pick = browser
        .run(
            "const svg = document.getElementById('diagram').getBoundingClientRect();
             const segs = [...document.querySelectorAll('#diagram .msg')].map(p => {
               const n = p.getAttribute('d').match(/-?[0-9.]+/g).map(Number);
               return { p, xa: n[0], ya: n[1], xb: n[2], yb: n[3] };
             });
             const dist = (x, y, s) => {
               const dx = s.xb - s.xa, dy = s.yb - s.ya, l = dx * dx + dy * dy;
               const u = l ? Math.max(0, Math.min(1, ((x - s.xa) * dx + (y - s.ya) * dy) / l)) : 0;
               return Math.hypot(x - s.xa - u * dx, y - s.ya - u * dy);
             };
             for (const s of segs) {
               const x = (s.xa + s.xb) / 2, y = (s.ya + s.yb) / 2;
               if (Math.hypot(s.xb - s.xa, s.yb - s.ya) < 40 || y < 10 || y > svg.height - 10) continue;
               if (segs.every(o => o === s || dist(x, y, o) > 8)) {
                 return [svg.left + x, svg.top + y, Number(s.p.dataset.id)];
               }
             }
             return null;",
        )
        .await;
    assert!(!pick.is_null(), "no arrow stands alone in the window");
    let id = pick[2].as_u64().unwrap();
    browser
        .move_to(pick[0].as_f64().unwrap(), pick[1].as_f64().unwrap())
        .await;
    browser
        .wait_for(
            "the tooltip",
            "return !document.getElementById('tip').hidden",
            WAIT,
        )
        .await;
    let tip = browser.text("#tip").await;
    let (kind, content) = run
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Send {
                id: i,
                kind,
                content,
                ..
            } if *i == id => Some((kind.clone(), content.clone().unwrap())),
            _ => None,
        })
        .expect("the hovered message was sent");
    assert!(tip.contains(&format!("#{id} {kind}")), "{tip}");
    assert!(tip.contains(&content.to_string()), "{tip} lacks {content}");
    assert_eq!(
        browser
            .run("return document.getElementById('tip').dataset.id")
            .await,
        json!(id.to_string())
    );

    // The slider shows the cluster at its instant: n4 leads before the crash, n3 after the
    // re-election.
    let end = run.end() as f64;
    let before = slide(&browser, 250_000.0 / end).await;
    assert!((200_000..300_000).contains(&before), "{before}");
    assert_cluster_shown(&browser, &run, before).await;
    assert_eq!(cluster_at(&run, before).1, Some(4));
    let after = slide(&browser, 800_000.0 / end).await;
    assert!((700_000..900_000).contains(&after), "{after}");
    assert_cluster_shown(&browser, &run, after).await;
    assert_eq!(cluster_at(&run, after).1, Some(3));
    assert_eq!(
        browser.text("#states tr[data-node=\"4\"] td.state").await,
        "Down"
    );

    // Filters: without n0 its lane and arrows go; without a message type its arrows go.
    browser.click("#node-filter input[data-node=\"0\"]").await;
    let window = drawn_window(&browser).await;
    assert_eq!(
        browser
            .run("return document.querySelectorAll('.lane-name').length")
            .await,
        json!(4)
    );
    assert_eq!(
        drawn_arrows(&browser, "#diagram .msg[data-from=\"0\"]").await,
        0
    );
    assert_eq!(
        drawn_arrows(&browser, "#diagram .msg[data-to=\"0\"]").await,
        0
    );
    let want = expected_arrows(&run, window, |f, t, _| f != 0 && t != 0);
    assert!(want > 0);
    assert_eq!(drawn_arrows(&browser, "#diagram .msg").await, want);
    let kind = browser
        .run("return document.querySelector('#diagram .msg').dataset.kind")
        .await;
    let kind = kind.as_str().unwrap().to_string();
    let checkbox = browser
        .run_with(
            "const l = [...document.querySelectorAll('#kind-filter label')].find(l => l.textContent === arguments[0]);
             return l.querySelector('input').dataset.kind",
            json!([kind]),
        )
        .await;
    browser
        .click(&format!(
            "#kind-filter input[data-kind=\"{}\"]",
            checkbox.as_str().unwrap()
        ))
        .await;
    let window = drawn_window(&browser).await;
    let css = format!("#diagram .msg[data-kind=\"{kind}\"]");
    assert_eq!(drawn_arrows(&browser, &css).await, 0, "{kind} is hidden");
    let want = expected_arrows(&run, window, |f, t, k| f != 0 && t != 0 && k != kind);
    assert_eq!(drawn_arrows(&browser, "#diagram .msg").await, want);
    browser.click("#node-filter input[data-node=\"0\"]").await;
    browser
        .click(&format!(
            "#kind-filter input[data-kind=\"{}\"]",
            checkbox.as_str().unwrap()
        ))
        .await;
    assert_eq!(
        browser
            .run("return document.querySelectorAll('.lane-name').length")
            .await,
        json!(5)
    );
    // Clicking a node's name highlights its messages and dims the others.
    browser.click(".lane-name[data-node=\"2\"]").await;
    let window = drawn_window(&browser).await;
    let bright = drawn_arrows(&browser, "#diagram .msg:not(.dim)").await;
    assert_eq!(
        bright,
        expected_arrows(&run, window, |f, t, _| f == 2 || t == 2)
    );
    assert!(bright > 0 && bright < drawn_arrows(&browser, "#diagram .msg").await);
    browser.click(".lane-name[data-node=\"2\"]").await;
    assert_eq!(drawn_arrows(&browser, "#diagram .msg.dim").await, 0);
    assert_clean(&browser).await;

    // The picture for the README: the crash and the re-election, cursor after it.
    browser.type_into("#from", "288").await;
    browser.type_into("#to", "372").await;
    browser.click("#show").await;
    browser.run("window.spacetime.setTime(366000)").await;
    browser.move_to(5.0, 5.0).await;
    save_screenshot(&browser.screenshot().await, "spacetime-bully.png");

    // Invitation: the partition tints the two sides, each elects, they merge after the heal.
    let run = invitation_partition();
    open(
        &browser,
        dir.path(),
        "invitation.html",
        &render_spacetime(&run),
    )
    .await;
    assert_clean(&browser).await;
    let (status, leader) = cluster_at(&run, 650_000);
    assert_eq!(leader, None, "two sides, two leaders");
    let leaders: Vec<usize> = (0..5)
        .filter(|&i| status[i].as_ref().is_some_and(|s| s.is_leader(i as u32)))
        .collect();
    assert_eq!(leaders.len(), 2, "{status:?}");
    browser.run("window.spacetime.setTime(650000)").await;
    assert_cluster_shown(&browser, &run, 650_000).await;
    assert!(
        cluster_at(&run, run.end()).1.is_some(),
        "merged after the heal"
    );
    browser
        .run("window.spacetime.setWindow(280000, 800000)")
        .await;
    let window = drawn_window(&browser).await;
    let want = expected_arrows(&run, window, all);
    let drawn = drawn_arrows(&browser, "#diagram .msg").await;
    let dense = browser
        .run("return !document.getElementById('density-note').hidden")
        .await;
    if dense == json!(true) {
        assert_eq!(drawn, 0);
    } else {
        assert_eq!(drawn, want);
    }
    browser.run("window.spacetime.setTime(650000)").await;
    browser.move_to(5.0, 5.0).await;
    save_screenshot(&browser.screenshot().await, "spacetime-invitation.png");
    browser.close().await;
}

#[tokio::test]
async fn a_violation_is_highlighted_and_opened_at() {
    let Some(exe) = chromedriver() else {
        skipped("chromedriver not installed (apt-get install chromium chromium-driver)");
        return;
    };
    let dir = TempDir::new("view-violation");
    let browser = Browser::start(&exe, &dir.path().join("profile"), (1400, 1000)).await;
    let (bytes, outcome) =
        trace_of::<UsurpingInvitation>(Spec::new("invitation", 5, 1, Plan::calm()));
    let violation = outcome.violation.expect("caught");
    let run = read_sim_trace(bytes.as_slice(), &ReadOptions::default()).unwrap();
    open(
        &browser,
        dir.path(),
        "violation.html",
        &render_spacetime(&run),
    )
    .await;
    assert_clean(&browser).await;
    let banner = browser.text("#violation").await;
    assert!(
        banner.contains(&violation.invariant.to_string()),
        "{banner}"
    );
    assert!(banner.contains(&violation.detail), "{banner}");
    // The page opens at the violation: its bar is inside the view, the slider on it.
    let bar = browser
        .run(
            "const b = document.getElementById('violation-bar'); if (!b) return null;
             const r = b.getBoundingClientRect(), s = document.getElementById('scroll').getBoundingClientRect();
             return r.top >= s.top && r.bottom <= s.bottom",
        )
        .await;
    assert_eq!(bar, json!(true), "the violation is in view");
    assert_eq!(
        browser
            .run("return Number(document.getElementById('slider').value)")
            .await,
        json!(violation.time)
    );
    assert_cluster_shown(&browser, &run, violation.time).await;
    let bad = browser
        .run("return [...document.querySelectorAll('.lane-name.bad')].map(e => e.textContent)")
        .await;
    let mut involved: Vec<u32> = violation.nodes.iter().map(|n| n.0).collect();
    involved.sort_unstable();
    let names: Vec<String> = involved.iter().map(|n| format!("n{n}")).collect();
    assert_eq!(bad, json!(names));
    browser.move_to(5.0, 5.0).await;
    save_screenshot(&browser.screenshot().await, "spacetime-violation.png");
    browser.close().await;
}

#[tokio::test]
async fn a_run_of_ten_thousand_events_renders() {
    let Some(exe) = chromedriver() else {
        skipped("chromedriver not installed (apt-get install chromium chromium-driver)");
        return;
    };
    let dir = TempDir::new("view-big");
    let browser = Browser::start(&exe, &dir.path().join("profile"), (1400, 1000)).await;
    let nodes = 16;
    let faults = RandomFaults {
        window_us: 5_000_000,
        ..RandomFaults::default()
    };
    let plan = faults.generate(5, nodes);
    let (run, _) = run_of(Spec::new("bully", nodes, 5, plan));
    assert!(
        run.events.len() >= 10_000,
        "only {} events",
        run.events.len()
    );
    let html = render_spacetime(&run);
    let took = open(&browser, dir.path(), "big.html", &html).await;
    let ready_ms = browser.run("return window.spacetime.readyMs").await;
    eprintln!(
        "view timing: {} events, {} nodes, {} KiB page: ready {ready_ms} ms after navigation, \
         {took:?} from navigation to the test seeing it",
        run.events.len(),
        nodes,
        html.len() / 1024
    );
    assert_clean(&browser).await;
    assert_eq!(
        browser
            .run("return document.querySelectorAll('.lane-name').length")
            .await,
        // One lane per node the run ever had: the 16 it booted with and any that joined.
        json!(run.header.nodes.len()),
    );
    assert!(run.header.nodes.len() >= nodes as usize);
    let window = drawn_window(&browser).await;
    let want = expected_arrows(&run, window, |_, _, _| true);
    assert_eq!(drawn_arrows(&browser, "#diagram .msg").await, want);
    save_screenshot(&browser.screenshot().await, "spacetime-16-nodes.png");
    // The whole run at once is too dense for arrows: density instead, with the count.
    let started = Instant::now();
    browser.click("#fit").await;
    let redraw = started.elapsed();
    let window = drawn_window(&browser).await;
    let want = expected_arrows(&run, window, |_, _, _| true);
    assert_eq!(drawn_arrows(&browser, "#diagram .msg").await, 0);
    let note = browser.text("#density-note").await;
    let count = note.split(' ').next().unwrap().replace(',', "");
    assert_eq!(count, want.to_string(), "{note}");
    eprintln!("view timing: the whole run as density redrew in {redraw:?} (one WebDriver click)");
    // Drawing time inside the page, for the report: the whole run, then a 20 ms window.
    let draw_ms = browser
        .run(
            "const s = window.spacetime, t = performance.now(); s.setWindow(0, 1e9);
             const whole = performance.now() - t, u = performance.now();
             s.setWindow(1000000, 1020000); return [whole, performance.now() - u, s.arrowsDrawn()]",
        )
        .await;
    eprintln!(
        "view timing: in-page draw of the whole run {} ms, of a 20 ms window {} ms ({} arrows)",
        draw_ms[0], draw_ms[1], draw_ms[2]
    );
    assert_clean(&browser).await;
    browser.close().await;
}

#[tokio::test]
async fn the_comparison_report_renders() {
    let Some(exe) = chromedriver() else {
        skipped("chromedriver not installed (apt-get install chromium chromium-driver)");
        return;
    };
    let mut data = CompareData {
        title: "5 nodes · 12 seeds · random faults".into(),
        details: vec![
            ("nodes".into(), "5".into()),
            ("seeds".into(), "0–11".into()),
            ("faults".into(), "8 random per run within 3 s".into()),
        ],
        algorithms: Vec::new(),
    };
    for algorithm in ["bully", "invitation", "async-bully", "ring"] {
        let mut runs = Vec::new();
        for seed in 0..12 {
            let plan = RandomFaults::default().generate(seed, 5);
            let (run, outcome) = run_of(Spec::new(algorithm, 5, seed, plan));
            let violation = outcome.violation.map(|v| v.to_string());
            runs.push(SeedRow::new(
                seed,
                &Measures::of(&run),
                outcome.stats.time_to_stable,
                violation,
            ));
        }
        data.algorithms.push(AlgorithmRuns {
            algorithm: algorithm.into(),
            runs,
        });
    }
    let dir = TempDir::new("view-report");
    let browser = Browser::start(&exe, &dir.path().join("profile"), (1240, 1500)).await;
    let path = dir.path().join("report.html");
    std::fs::write(&path, render_compare(&data)).unwrap();
    browser.goto(&format!("file://{}", path.display())).await;
    assert_clean(&browser).await;
    assert_eq!(
        browser
            .run("return document.querySelectorAll('#summary tbody tr').length")
            .await,
        json!(4)
    );
    assert_eq!(
        browser
            .run("return document.querySelectorAll('path.cdf').length")
            .await,
        json!(4)
    );
    let kinds: usize = data
        .algorithms
        .iter()
        .map(|a| {
            let mut k: Vec<&String> = a.runs.iter().flat_map(|r| r.messages.keys()).collect();
            k.sort();
            k.dedup();
            k.len()
        })
        .sum();
    assert_eq!(
        browser
            .run("return document.querySelectorAll('rect.seg').length")
            .await,
        json!(kinds)
    );
    // Every chart has a size on the page.
    let sizes = browser
        .run("return [...document.querySelectorAll('section svg')].map(s => { const r = s.getBoundingClientRect(); return r.width > 400 && r.height > 12; })")
        .await;
    assert!(
        sizes.as_array().unwrap().iter().all(|v| v == true),
        "{sizes}"
    );
    save_screenshot(&browser.screenshot().await, "compare-report.png");
    browser.close().await;
}

#[tokio::test]
async fn real_runs_without_messages_and_empty_runs_render() {
    let Some(exe) = chromedriver() else {
        skipped("chromedriver not installed (apt-get install chromium chromium-driver)");
        return;
    };
    use election_core::State;
    use election_view::{MarkKind, RunBuilder};
    // What the logserver's log gives: status reports of ip:port nodes, a blocked link, a leave.
    let mut b = RunBuilder::new("real cluster", "bully");
    let addrs = ["127.0.0.1:9000", "127.0.0.1:9001", "127.0.0.1:9002"];
    let ids: Vec<NodeIx> = addrs.iter().map(|a| b.node(a)).collect();
    let status = |state: State, coordinator: Option<NodeIx>| NodeStatus {
        state,
        coordinator,
        group: None,
        incarnation: None,
        term: None,
        phase: state.to_string(),
    };
    for (i, &n) in ids.iter().enumerate() {
        let t = 1_000 * i as u64;
        b.push(t, EventKind::Start { node: n }).unwrap();
        b.push(
            t,
            EventKind::Status {
                node: n,
                status: status(State::Election, None),
            },
        )
        .unwrap();
    }
    for &n in &ids {
        b.push(
            40_000,
            EventKind::Status {
                node: n,
                status: status(State::Normal, Some(2)),
            },
        )
        .unwrap();
    }
    b.push(
        90_000,
        EventKind::Mark {
            mark: MarkKind::Block,
            label: "block :9000↔:9002".into(),
            nodes: vec![0, 2],
            sides: Vec::new(),
            cut: vec![[0, 2], [2, 0]],
        },
    )
    .unwrap();
    b.push(120_000, EventKind::Leave { node: 2 }).unwrap();
    b.push(
        120_000,
        EventKind::Status {
            node: 2,
            status: status(State::Down, None),
        },
    )
    .unwrap();
    b.end(150_000);
    let run = b.finish();

    let dir = TempDir::new("view-real");
    let browser = Browser::start(&exe, &dir.path().join("profile"), (1200, 800)).await;
    open(&browser, dir.path(), "real.html", &render_spacetime(&run)).await;
    assert_clean(&browser).await;
    let names = browser
        .run("return [...document.querySelectorAll('.lane-name')].map(e => e.textContent)")
        .await;
    assert_eq!(
        names,
        json!([":9000", ":9001", ":9002"]),
        "a shared ip is left out"
    );
    for t in [20_000, 60_000, 130_000] {
        browser
            .run_with("window.spacetime.setTime(arguments[0])", json!([t]))
            .await;
        assert_cluster_shown(&browser, &run, t).await;
    }
    // The cut link shows in the cluster graph while it lasts.
    browser.run("window.spacetime.setTime(100000)").await;
    let cut = browser
        .run("return document.querySelectorAll('#graph line.cut').length")
        .await;
    assert_eq!(cut, json!(1));
    browser.run("window.spacetime.setTime(80000)").await;
    let cut = browser
        .run("return document.querySelectorAll('#graph line.cut').length")
        .await;
    assert_eq!(cut, json!(0), "not yet blocked");

    open(
        &browser,
        dir.path(),
        "empty.html",
        &render_spacetime(&Run::default()),
    )
    .await;
    assert_clean(&browser).await;
    browser.close().await;
}
