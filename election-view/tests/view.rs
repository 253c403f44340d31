//! The reader, the vector clocks, the ShiViz export, the bounds and the page data, on traces the
//! simulator wrote (`tests/data`, see its README) and on small hand-made inputs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use election_core::State;
use election_view::{
    AlgorithmRuns, CompareData, EventKind, Keep, Limit, MarkKind, Measures, NodeStatus, ReadError,
    ReadOptions, Run, RunBuilder, SeedRow, Violation, check_shiviz, dominated_by, read_sim_trace,
    read_sim_trace_file, render_compare, render_shiviz, render_spacetime, vector_clocks, write_csv,
};
use serde_json::Value;

const FIXTURES: [&str; 3] = [
    "bully-all-faults.jsonl",
    "invitation-all-faults.jsonl",
    "async-bully-all-faults.jsonl",
];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn read(name: &str) -> Run {
    read_sim_trace_file(&fixture(name), &ReadOptions::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The raw trace lines after the header, as JSON, straight from the file.
fn raw_lines(name: &str) -> Vec<Value> {
    std::fs::read_to_string(fixture(name))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn count(lines: &[Value], ev: &str) -> usize {
    lines.iter().filter(|l| l["ev"] == ev).count()
}

/// The JSON the page's script draws from.
fn page_data(html: &str) -> Value {
    let open = "<script id=\"run-data\" type=\"application/json\">";
    let from = html.find(open).expect("the page embeds its data") + open.len();
    let to = from + html[from..].find("</script>").unwrap();
    serde_json::from_str(&html[from..to]).expect("the embedded data is JSON")
}

#[test]
fn simulator_traces_read_completely() {
    for name in FIXTURES {
        let run = read(name);
        let lines = raw_lines(name);
        let kinds = |f: fn(&EventKind) -> bool| run.events.iter().filter(|e| f(&e.kind)).count();
        assert_eq!(
            kinds(|k| matches!(k, EventKind::Send { .. })),
            count(&lines, "send"),
            "{name}"
        );
        assert_eq!(
            kinds(|k| matches!(k, EventKind::Deliver { .. })),
            count(&lines, "deliver")
        );
        assert_eq!(
            kinds(|k| matches!(k, EventKind::Drop { .. })),
            count(&lines, "drop")
        );
        assert_eq!(
            kinds(|k| matches!(k, EventKind::Duplicate { .. })),
            count(&lines, "duplicate")
        );
        assert_eq!(
            kinds(|k| matches!(k, EventKind::Timer { .. })),
            count(&lines, "timer")
        );
        assert_eq!(
            kinds(|k| matches!(k, EventKind::Status { .. })),
            count(&lines, "status")
        );
        assert_eq!(
            kinds(|k| matches!(k, EventKind::Start { .. })),
            count(&lines, "start")
        );
        // Every fault of the plan is an event: lifecycle faults as such, the rest as marks.
        let faults = count(&lines, "fault");
        let lifecycle = kinds(|k| {
            matches!(
                k,
                EventKind::Crash { .. }
                    | EventKind::Recover { .. }
                    | EventKind::Join { .. }
                    | EventKind::Leave { .. }
            )
        });
        let fault_marks = kinds(|k| {
            matches!(
                k,
                EventKind::Mark {
                    mark: MarkKind::Partition
                        | MarkKind::Block
                        | MarkKind::Heal
                        | MarkKind::Network
                        | MarkKind::Link
                        | MarkKind::Drift,
                    ..
                }
            )
        });
        assert_eq!(lifecycle + fault_marks, faults, "{name}");
        assert_eq!(lifecycle, 4, "crash, recover, join, leave");
        // The joined node got the next id and a name.
        assert_eq!(run.header.nodes, ["n0", "n1", "n2", "n3", "n4"]);
        assert!(
            run.events
                .iter()
                .any(|e| e.kind == EventKind::Join { node: 4 })
        );
        assert_eq!(run.header.end, lines.last().unwrap()["t"].as_u64());
        assert_eq!(run.header.omitted, 0);
        assert!(run.header.title.contains("4 nodes"), "{}", run.header.title);
        // The partition keeps its sides.
        let sides = run.events.iter().find_map(|e| match &e.kind {
            EventKind::Mark {
                mark: MarkKind::Partition,
                sides,
                ..
            } => Some(sides.clone()),
            _ => None,
        });
        assert_eq!(sides, Some(vec![vec![0, 1], vec![2]]));
    }
}

#[test]
fn statuses_keep_every_field() {
    let run = read("async-bully-all-faults.jsonl");
    let lines = raw_lines("async-bully-all-faults.jsonl");
    let raw: Vec<&Value> = lines.iter().filter(|l| l["ev"] == "status").collect();
    let read: Vec<&NodeStatus> = run
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Status { status, .. } => Some(status),
            _ => None,
        })
        .collect();
    assert_eq!(raw.len(), read.len());
    for (r, s) in raw.iter().zip(read) {
        let st = &r["status"];
        assert_eq!(serde_json::to_value(s.state).unwrap(), st["state"]);
        assert_eq!(s.coordinator.map(u64::from), st["coordinator"].as_u64());
        assert_eq!(s.incarnation, st["incarnation"].as_u64());
        assert_eq!(s.phase, st["phase"].as_str().unwrap());
        let group = st["group"]
            .as_object()
            .map(|g| format!("n{}#{}", g["origin"], g["counter"]));
        assert_eq!(s.group, group);
    }
    assert!(
        read_any_incarnation(&run),
        "async Bully counts incarnations"
    );
}

fn read_any_incarnation(run: &Run) -> bool {
    run.events.iter().any(
        |e| matches!(&e.kind, EventKind::Status { status, .. } if status.incarnation.is_some()),
    )
}

#[test]
fn the_page_draws_one_arrow_per_delivery_or_drop() {
    for name in FIXTURES {
        let lines = raw_lines(name);
        let data = page_data(&render_spacetime(&read(name)));
        let arrows = data["arrows"].as_array().unwrap();
        assert_eq!(
            arrows.len(),
            count(&lines, "deliver") + count(&lines, "drop"),
            "{name}"
        );
        // Each arrow starts at its send: the send line with the same id.
        let sent: BTreeMap<u64, u64> = lines
            .iter()
            .filter(|l| l["ev"] == "send")
            .map(|l| (l["id"].as_u64().unwrap(), l["t"].as_u64().unwrap()))
            .collect();
        for a in arrows {
            let (t_send, id) = (a[0].as_u64().unwrap(), a[5].as_u64().unwrap());
            assert_eq!(sent[&id], t_send, "{name}: message {id}");
            assert!(a[1].as_u64().unwrap() >= t_send);
        }
        let duplicated = arrows
            .iter()
            .filter(|a| a[7].as_u64().unwrap() & 1 == 1)
            .count();
        assert!(duplicated >= count(&lines, "duplicate"), "{name}");
    }
}

/// The events of the ShiViz log that describe a send or a receive of message `id`.
fn message_event<'a>(
    events: &'a [election_view::ShivizEvent],
    verb: &str,
    id: u64,
) -> Vec<&'a election_view::ShivizEvent> {
    let tag = format!(" {verb} #{id} ");
    events.iter().filter(|e| e.text.contains(&tag)).collect()
}

#[test]
fn vector_clocks_order_receives_after_sends_and_count_each_host() {
    for name in FIXTURES {
        let run = read(name);
        let stamps = vector_clocks(&run);
        // Each host's own entry goes up by one per local event.
        let mut own: BTreeMap<u32, u64> = BTreeMap::new();
        for s in &stamps {
            let n = own.entry(s.node).or_default();
            *n += 1;
            assert_eq!(s.clock[&s.node], *n, "{name}: event {}", s.event);
            assert!(s.clock.values().all(|&c| c > 0));
        }
        // A delivery's clock dominates its send's and is strictly later.
        let mut sent = BTreeMap::new();
        for s in &stamps {
            match &run.events[s.event].kind {
                EventKind::Send { id, .. } => {
                    sent.insert(*id, s.clock.clone());
                }
                EventKind::Deliver { id, .. } => {
                    let at_send = &sent[id];
                    assert!(dominated_by(at_send, &s.clock), "{name}: message {id}");
                    assert_ne!(at_send, &s.clock);
                }
                _ => {}
            }
        }
        // The same, read back from the ShiViz file, checked against ShiViz's own rules.
        let log = render_shiviz(&run);
        let events = check_shiviz(&log).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(events.len(), stamps.len());
        let deliveries: Vec<u64> = run
            .events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::Deliver { id, .. } => Some(id),
                _ => None,
            })
            .collect();
        for id in deliveries {
            let send = message_event(&events, "send", id);
            assert_eq!(send.len(), 1, "{name}: one send of {id}");
            for recv in message_event(&events, "receive", id) {
                for (host, c) in &send[0].clock {
                    assert!(recv.clock[host] >= *c, "{name}: receive of {id} on {host}");
                }
            }
        }
        // Lost messages have no receive.
        for e in &run.events {
            if let EventKind::Drop { id, reason, .. } = &e.kind {
                if reason == "lost"
                    && !run
                        .events
                        .iter()
                        .any(|d| matches!(d.kind, EventKind::Deliver { id: x, .. } if x == *id))
                {
                    assert!(message_event(&events, "receive", *id).is_empty());
                }
            }
        }
    }
}

#[test]
fn the_shiviz_checker_catches_broken_logs() {
    let log = render_shiviz(&read("bully-all-faults.jsonl"));
    assert!(check_shiviz(&log).is_ok());
    let lines: Vec<&str> = log.lines().collect();
    let broken = |i: usize, f: &dyn Fn(&str) -> String| {
        let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        l[i] = f(&l[i]);
        l.join("\n")
    };
    // No regular expression line.
    assert!(check_shiviz(&lines[1..].join("\n")).is_err());
    // A host's own count skips.
    let skip = broken(5, &|l: &str| l.replace("\"n0\":2", "\"n0\":3"));
    assert!(check_shiviz(&skip).unwrap_err().contains("own count"));
    // The last clock names a count its host never reaches, or a host without events.
    let end = lines.len() - 1;
    let far = broken(end, &|l: &str| l.replace('}', ",\"n1\":100000}"));
    assert!(check_shiviz(&far).unwrap_err().contains("n1 has"));
    let stranger = broken(end, &|l: &str| l.replace('}', ",\"n9\":1}"));
    assert!(
        check_shiviz(&stranger)
            .unwrap_err()
            .contains("n9 has 0 events")
    );
    // A description that would be read as a host line.
    let fake = broken(4, &|_| "n0 {\"n0\":1}".to_string());
    assert!(check_shiviz(&fake).is_err());
    // A zero count.
    let zero = broken(5, &|l: &str| l.replace('}', ",\"n3\":0}"));
    assert!(check_shiviz(&zero).unwrap_err().contains("zero"));
}

#[test]
fn a_violation_ends_the_nodes_it_names_in_shiviz() {
    let mut b = RunBuilder::new("two", "test");
    let (a, c) = (b.node("n0"), b.node("n1"));
    b.push(0, EventKind::Start { node: a }).unwrap();
    b.push(0, EventKind::Start { node: c }).unwrap();
    b.violation(Violation {
        time: 5,
        invariant: "unique-leader".into(),
        nodes: vec![a, c],
        detail: "both lead".into(),
    })
    .unwrap();
    let log = render_shiviz(&b.finish());
    let events = check_shiviz(&log).unwrap();
    assert_eq!(events.len(), 4);
    assert!(events[2].text.contains("VIOLATION unique-leader"));
    assert_eq!(events[3].clock["n1"], 2);
}

fn header(nodes: u32) -> String {
    format!(
        r#"{{"version":"0.1.0","algorithm":"bully","nodes":{nodes},"seed":1,"timing":{{"heartbeat":50000,"timeout":20000}},"plan":{{}}}}"#
    )
}

fn parse(text: &str) -> Result<Run, ReadError> {
    read_sim_trace(text.as_bytes(), &ReadOptions::default())
}

#[test]
fn bad_traces_are_rejected_with_their_line_and_field() {
    let h = header(2);
    let send = r#"{"t":5,"ev":"send","id":0,"from":0,"to":1,"kind":"Ping","msg":"Ping"}"#;
    let cases: Vec<(String, usize, &str)> = vec![
        (String::new(), 1, "empty"),
        ("not json".into(), 1, "not a JSON object"),
        (r#"{"t":0,"ev":"start","node":0}"#.into(), 1, "`ev`"),
        (
            r#"{"version":"0.1.0","algorithm":"bully","nodes":"two"}"#.into(),
            1,
            "`nodes`",
        ),
        (
            format!("{h}\n{{\"t\":0,\"ev\":\"start\"}}"),
            2,
            "`node`: missing",
        ),
        (
            format!("{h}\n{{\"t\":0,\"ev\":\"start\",\"node\":7}}"),
            2,
            "node 7 does not exist",
        ),
        (
            format!("{h}\n{{\"t\":-1,\"ev\":\"start\",\"node\":0}}"),
            2,
            "`t`",
        ),
        (
            format!("{h}\n{send}\n{{\"t\":4,\"ev\":\"start\",\"node\":0}}"),
            3,
            "backwards",
        ),
        (
            format!("{h}\n{{\"t\":0,\"ev\":\"teleport\"}}"),
            2,
            "unknown event",
        ),
        (
            format!(
                "{h}\n{{\"t\":9,\"ev\":\"deliver\",\"id\":0,\"from\":0,\"to\":1,\"kind\":\"Ping\"}}"
            ),
            2,
            "never sent",
        ),
        (
            format!("{h}\n{}", send.replace("\"id\":0", "\"id\":3")),
            2,
            "out of order",
        ),
        (
            format!(
                "{h}\n{{\"t\":1,\"ev\":\"status\",\"node\":0,\"status\":{{\"state\":\"Sleepy\",\"coordinator\":null,\"group\":null,\"incarnation\":null,\"phase\":\"x\"}}}}"
            ),
            2,
            "`status.state`",
        ),
        (
            format!(
                "{h}\n{{\"t\":1,\"ev\":\"status\",\"node\":0,\"status\":{{\"state\":\"Normal\",\"coordinator\":9,\"group\":null,\"incarnation\":null,\"phase\":\"x\"}}}}"
            ),
            2,
            "`status.coordinator`",
        ),
        (
            format!("{h}\n{{\"t\":1,\"ev\":\"fault\",\"fault\":{{\"fault\":\"meteor\"}}}}"),
            2,
            "`fault.fault`",
        ),
        (
            format!(
                "{h}\n{{\"t\":1,\"ev\":\"fault\",\"fault\":{{\"fault\":\"partition\",\"groups\":[[0,5]]}}}}"
            ),
            2,
            "`fault.groups`",
        ),
        (
            format!(
                "{h}\n\n{{\"t\":1,\"ev\":\"violation\",\"violation\":{{\"seed\":1,\"time\":1,\"invariant\":\"x\",\"nodes\":[4],\"detail\":\"\"}}}}"
            ),
            3,
            "`violation.nodes[0]`",
        ),
    ];
    for (input, line, field) in cases {
        let err = parse(&input).expect_err(&input);
        assert_eq!(err.line(), Some(line), "{input}: {err}");
        let text = err.to_string();
        assert!(text.contains(&format!("line {line}")), "{text}");
        assert!(text.contains(field), "{text} lacks {field}");
    }
    // The file name is part of the message.
    let dir = std::env::temp_dir().join(format!("election-view-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.jsonl");
    std::fs::write(&path, format!("{h}\n{{\"t\":0}}\n")).unwrap();
    let err = read_sim_trace_file(&path, &ReadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("bad.jsonl"), "{err}");
    assert!(err.to_string().contains("line 2: field `ev`"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn long_lines_and_huge_clusters_are_refused() {
    let options = ReadOptions {
        max_line_bytes: 200,
        max_nodes: 10,
        ..ReadOptions::default()
    };
    let long = format!(
        "{}\n{{\"t\":0,\"ev\":\"start\",\"node\":0,\"pad\":\"{}\"}}\n",
        header(2),
        "x".repeat(300)
    );
    let err = read_sim_trace(long.as_bytes(), &options).unwrap_err();
    assert_eq!(err.line(), Some(2));
    assert!(err.to_string().contains("longer than 200 bytes"), "{err}");
    let err = read_sim_trace(header(11).as_bytes(), &options).unwrap_err();
    assert!(err.to_string().contains("`nodes`"), "{err}");
}

#[test]
fn limits_keep_the_first_or_the_last_events() {
    let name = "invitation-all-faults.jsonl";
    let full = read(name);
    let max = 100;
    let read_with = |keep| {
        let options = ReadOptions {
            limit: Limit {
                max_events: max,
                keep,
            },
            ..ReadOptions::default()
        };
        read_sim_trace_file(&fixture(name), &options).unwrap()
    };
    let first = read_with(Keep::First);
    assert_eq!(first.events, full.events[..max]);
    assert_eq!(first.header.omitted as usize, full.events.len() - max);
    assert!(first.header.initial.is_empty());
    // The violation and the end survive a bound.
    assert_eq!(first.header.end, full.header.end);

    let last = read_with(Keep::Last);
    let cut = full.events.len() - max;
    assert_eq!(last.events, full.events[cut..]);
    assert_eq!(last.header.omitted as usize, cut);
    // Each node's last status before the cut is its initial status.
    let mut expected = BTreeMap::new();
    for e in &full.events[..cut] {
        if let EventKind::Status { node, status } = &e.kind {
            expected.insert(*node, status.clone());
        }
    }
    assert!(!expected.is_empty());
    assert_eq!(
        last.header.initial,
        expected.into_iter().collect::<Vec<_>>()
    );
    // Deliveries whose send was cut still draw (from the window's start).
    let data = page_data(&render_spacetime(&last));
    let deliveries = last
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Deliver { .. } | EventKind::Drop { .. }))
        .count();
    assert_eq!(data["arrows"].as_array().unwrap().len(), deliveries);
}

#[test]
fn the_builder_checks_nodes_and_orders_events() {
    let mut b = RunBuilder::new("real", "bully");
    let a = b.node("10.0.0.1:4000");
    assert_eq!(b.node("10.0.0.1:4000"), a, "names are interned");
    let err = b.push(3, EventKind::Start { node: 5 }).unwrap_err();
    assert_eq!(err.node, 5);
    b.push(10, EventKind::Start { node: a }).unwrap();
    b.push(4, EventKind::Crash { node: a }).unwrap();
    b.push(10, EventKind::Leave { node: a }).unwrap();
    let run = b.finish();
    let times: Vec<u64> = run.events.iter().map(|e| e.t).collect();
    assert_eq!(times, [4, 10, 10]);
    assert_eq!(
        run.events[2].kind,
        EventKind::Leave { node: a },
        "ties keep their order"
    );
}

fn status(state: State, coordinator: Option<u32>) -> NodeStatus {
    NodeStatus {
        state,
        coordinator,
        group: None,
        incarnation: None,
        term: None,
        phase: state.to_string(),
    }
}

#[test]
fn measures_count_unavailability_and_leader_changes() {
    // Three nodes: no leader until 10; n2 leads 10..50; n2 crashes at 50, n1 leads from 70;
    // the run ends at 100.
    let mut b = RunBuilder::new("m", "test");
    for i in 0..3 {
        b.node(&format!("n{i}"));
    }
    let st =
        |b: &mut RunBuilder, t, n, s| b.push(t, EventKind::Status { node: n, status: s }).unwrap();
    for n in 0..3 {
        st(&mut b, 0, n, status(State::Election, None));
    }
    for n in 0..3 {
        st(&mut b, 10, n, status(State::Normal, Some(2)));
    }
    st(&mut b, 50, 2, status(State::Down, None));
    st(&mut b, 60, 0, status(State::Election, None));
    st(&mut b, 60, 1, status(State::Election, None));
    st(&mut b, 70, 0, status(State::Normal, Some(1)));
    st(&mut b, 70, 1, status(State::Normal, Some(1)));
    b.push(
        80,
        EventKind::Send {
            id: 0,
            from: 1,
            to: 0,
            kind: "Beat".into(),
            content: None,
        },
    )
    .unwrap();
    b.end(100);
    let m = Measures::of(&b.finish());
    assert_eq!(m.duration_us, 100);
    // 0..10 and 50..70 have no agreed leader: at 50 the survivors still follow the dead n2.
    assert_eq!(m.unavailable_us, 30);
    assert_eq!(m.leader_changes, 1);
    assert_eq!(m.elections_started, 5);
    assert_eq!(m.messages, BTreeMap::from([("Beat".to_string(), 1)]));
    assert_eq!(m.final_leader, Some(1));
}

#[test]
fn no_text_of_the_run_can_escape_the_page_data() {
    let evil = "</script><script>alert(1)</script><!--";
    let mut b = RunBuilder::new(evil, evil);
    let a = b.node(evil);
    b.push(
        0,
        EventKind::Send {
            id: 0,
            from: a,
            to: a,
            kind: evil.into(),
            content: Some(Value::String(evil.into())),
        },
    )
    .unwrap();
    b.push(
        1,
        EventKind::Deliver {
            id: 0,
            from: a,
            to: a,
            kind: evil.into(),
        },
    )
    .unwrap();
    let html = render_spacetime(&b.finish());
    // The error catcher, the data and the script: three script elements, no more.
    assert_eq!(html.matches("</script>").count(), 3);
    assert_eq!(html.matches("<script").count(), 3);
    assert!(!html.contains("<!--"));
    let data = page_data(&html);
    assert_eq!(data["nodes"][0], evil, "the text itself survives");
    let report = render_compare(&CompareData {
        title: evil.into(),
        details: vec![(evil.into(), evil.into())],
        algorithms: vec![AlgorithmRuns {
            algorithm: evil.into(),
            runs: vec![SeedRow {
                violation: Some(evil.into()),
                messages: BTreeMap::from([(evil.to_string(), 1)]),
                ..SeedRow::default()
            }],
        }],
    });
    assert_eq!(report.matches("<script").count(), 1);
    assert!(!report.contains("<!--"));
}

fn sample_compare() -> CompareData {
    let row = |seed, t: Option<u64>, kinds: &[(&str, u64)], violation: Option<&str>| SeedRow {
        seed,
        time_to_stable_us: t,
        unavailable_us: 1_000 * seed,
        duration_us: 1_000_000,
        messages: kinds.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        elections_started: seed,
        leader_changes: seed % 2,
        violation: violation.map(str::to_string),
    };
    CompareData {
        title: "4 nodes".into(),
        details: vec![("seeds".into(), "3".into())],
        algorithms: vec![
            AlgorithmRuns {
                algorithm: "bully".into(),
                runs: vec![
                    row(1, Some(80_000), &[("AreYouThere", 40), ("Halt", 6)], None),
                    row(2, Some(120_000), &[("AreYouThere", 30), ("Halt", 3)], None),
                    row(
                        3,
                        None,
                        &[("AreYouThere", 50)],
                        Some("liveness: 1, of \"n3\""),
                    ),
                ],
            },
            AlgorithmRuns {
                algorithm: "invitation".into(),
                runs: vec![
                    row(
                        1,
                        Some(200_000),
                        &[("Invite", 12), ("Accept", 9), ("Ready", 3)],
                        None,
                    ),
                    row(2, Some(150_000), &[("Invite", 10)], None),
                ],
            },
        ],
    }
}

#[test]
fn the_report_draws_every_algorithm_and_message_type() {
    let html = render_compare(&sample_compare());
    assert_eq!(html.matches("class=\"cdf\"").count(), 2);
    assert_eq!(html.matches("class=\"box\"").count(), 2);
    // One stacked segment per algorithm and message type.
    assert_eq!(html.matches("class=\"seg\"").count(), 2 + 3);
    assert!(html.contains("1 did not settle"));
    // The summary has one row per algorithm, with the violation counted.
    assert!(html.contains("<td class=\"bad\">1</td>"));
    assert!(html.contains("data-algorithm=\"invitation\""));
}

#[test]
fn the_csv_has_one_quoted_row_per_seed() {
    let data = sample_compare();
    let mut out = Vec::new();
    write_csv(&data, &mut out).unwrap();
    let mut reader = csv::Reader::from_reader(out.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "algorithm",
            "seed",
            "time_to_stable_us",
            "unavailable_us",
            "duration_us",
            "messages",
            "elections_started",
            "leader_changes",
            "violation",
            "msg_Accept",
            "msg_AreYouThere",
            "msg_Halt",
            "msg_Invite",
            "msg_Ready"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 5);
    assert_eq!(
        &rows[2][8], "liveness: 1, of \"n3\"",
        "quotes and commas survive"
    );
    assert_eq!(&rows[2][2], "", "not settled is empty");
    assert_eq!(&rows[0][5], "46");
    assert_eq!(&rows[3][9], "9");
}

#[test]
fn a_run_serializes_and_reads_back() {
    let run = read("bully-all-faults.jsonl");
    let json = serde_json::to_string(&run).unwrap();
    let back: Run = serde_json::from_str(&json).unwrap();
    assert_eq!(back, run);
    let line = serde_json::to_string(&run.events[1]).unwrap();
    assert!(line.starts_with("{\"t\":0,\"ev\":\"send\""), "{line}");
}

#[test]
fn a_trace_written_through_the_vocabulary_reads_back_the_same() {
    // What a simulator writing `Event`s would produce: its spec line, one serialized event per
    // line, its end line.
    for name in FIXTURES {
        let run = read(name);
        let text = std::fs::read_to_string(fixture(name)).unwrap();
        let mut written = text.lines().next().unwrap().to_string();
        written.push('\n');
        for e in &run.events {
            written.push_str(&serde_json::to_string(e).unwrap());
            written.push('\n');
        }
        written.push_str(&format!(
            "{{\"t\":{},\"ev\":\"end\"}}\n",
            run.header.end.unwrap()
        ));
        let back = parse(&written).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(back, run, "{name}");
        // Lines common to both forms are byte for byte the simulator's (message contents that
        // are objects may order their keys differently).
        let plain = |l: &&str| l.contains("\"ev\":\"deliver\"") || l.contains("\"msg\":\"");
        for line in written.lines().filter(plain).take(50) {
            assert!(text.contains(line), "{name}: {line}");
        }
    }
    // A join must take the next id.
    let bad = format!("{}\n{{\"t\":0,\"ev\":\"join\",\"node\":7}}", header(2));
    let err = parse(&bad).unwrap_err();
    assert!(
        err.to_string()
            .contains("line 2: field `node`: a joining node gets the next id, 2"),
        "{err}"
    );
    let bad = format!(
        "{}\n{{\"t\":0,\"ev\":\"mark\",\"mark\":\"meteor\",\"label\":\"x\"}}",
        header(2)
    );
    assert!(
        parse(&bad)
            .unwrap_err()
            .to_string()
            .contains("line 2: field `mark`")
    );
}
