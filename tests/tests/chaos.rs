//! `election chaos` against real clusters: a short campaign per algorithm ends with a verdict
//! (no unexpected violation, every heal measured) and a complete results folder; a Bully cluster
//! cut in halves must report the split, as expected outside its synchronous model; the same
//! split of an Invitation cluster breaks nothing (its groups are its model).

use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::process::Command;

use election_core::Algorithm;
use election_tests::{TempDir, election_bin};
use serde_json::Value;

/// A base port with `n` consecutive free UDP ports, spread by `salt` per test.
fn base_port(salt: u16, n: u16) -> u16 {
    let start = 30_000 + (std::process::id() % 500) as u16 * 40 + salt * 10;
    (start..60_000)
        .step_by(usize::from(n))
        .find(|&base| (0..n).all(|i| UdpSocket::bind((Ipv4Addr::LOCALHOST, base + i)).is_ok()))
        .expect("a run of free UDP ports")
}

/// Runs a campaign; returns the exit code and the summary.
fn chaos(algorithm: &str, salt: u16, out: &Path, extra: &[&str]) -> (i32, Value) {
    let nodes = 4;
    let base = base_port(salt, nodes).to_string();
    let run = Command::new(election_bin())
        .args([
            "chaos",
            algorithm,
            "--nodes",
            "4",
            "--json",
            "--base-port",
            &base,
        ])
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("election chaos runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}): stdout {stdout}\nstderr {}",
            String::from_utf8_lossy(&run.stderr)
        )
    });
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(saved, summary, "summary.json is the printed summary");
    (run.status.code().unwrap_or(-1), summary)
}

#[test]
fn a_short_campaign_per_algorithm_gives_a_verdict_and_a_results_folder() {
    let dir = TempDir::new("chaos-each");
    for (i, algorithm) in Algorithm::ALL.iter().enumerate() {
        let out = dir.path().join(algorithm.name());
        let (code, s) = chaos(
            algorithm.name(),
            i as u16,
            &out,
            &["--events", "4", "--seed", "11"],
        );
        let unexpected: Vec<&Value> = s["violations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["expected"] == false)
            .collect();
        assert_eq!(code, 0, "{algorithm}: {unexpected:#?}");
        assert_eq!(s["unexpected"], 0, "{algorithm}");
        assert_eq!(s["events_run"], 4, "{algorithm}");
        assert_eq!(s["heals"], 4, "{algorithm}");
        assert_eq!(
            s["reconvergence"]["count"], 4,
            "{algorithm}: every heal reconverged"
        );
        assert!(s["reports"].as_u64().unwrap() > 20, "{algorithm}: {s}");
        let schedule: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("schedule.json")).unwrap())
                .unwrap();
        assert_eq!(schedule.as_array().unwrap().len(), 4);
        let events: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("events.json")).unwrap())
                .unwrap();
        let kinds: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds.iter().filter(|k| **k == "fault").count(), 4);
        assert_eq!(kinds.iter().filter(|k| **k == "heal").count(), 4);
        let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
        assert_eq!(log.lines().count() as u64, s["reports"].as_u64().unwrap());
        let html = std::fs::read_to_string(out.join("spacetime.html")).unwrap();
        assert!(html.contains("127.0.0.1:"), "the picture names the nodes");
    }
    // The schedule is a function of the seed.
    let again = dir.path().join("again");
    let first = std::fs::read_to_string(dir.path().join("bully/schedule.json")).unwrap();
    let (code, _) = chaos(
        "bully",
        7,
        &again,
        &["--events", "4", "--seed", "11", "--duration", "1ms"],
    );
    assert_eq!(code, 0);
    assert_eq!(
        std::fs::read_to_string(again.join("schedule.json")).unwrap(),
        first
    );
}

#[test]
fn bully_cut_in_halves_reports_the_expected_split_and_invitation_none() {
    let dir = TempDir::new("chaos-split");
    let split = [
        "--events",
        "1",
        "--faults",
        "split-halves",
        "--hold-ms",
        "5000",
    ];
    let (code, s) = chaos("bully", 8, &dir.path().join("bully"), &split);
    assert_eq!(code, 0, "an expected split does not fail the campaign: {s}");
    let violations = s["violations"].as_array().unwrap();
    let agreement = violations
        .iter()
        .find(|v| v["invariant"] == "agreement")
        .unwrap_or_else(|| panic!("no split reported: {s}"));
    assert_eq!(agreement["expected"], true, "{agreement}");
    assert!(
        agreement["headline"]
            .as_str()
            .unwrap()
            .starts_with("two coordinators: "),
        "{agreement}"
    );
    assert_eq!(s["unexpected"], 0);

    let (code, s) = chaos("invitation", 9, &dir.path().join("invitation"), &split);
    assert_eq!(code, 0, "{s}");
    assert_eq!(s["violations"], Value::Array(Vec::new()), "{s}");
}
