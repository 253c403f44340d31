//! Runs, in one process and one run, stateright's breadth-first checker on our model of the
//! Chang–Roberts ring ([`ring`]) and `election sim explore --algorithm ring` on the same
//! cluster sizes and fault budgets, and prints one Markdown table row per search.
//!
//! ```sh
//! cargo run --release -- [--nodes 3,4] [--max-epoch 1] [--threads 1,2] [--election PATH]
//! ```
//!
//! `--election` defaults to the workspace's `target/release/election`.

mod ring;

use std::process::Command;
use std::time::Instant;

use stateright::{Checker, Model};

use ring::RingModel;

/// One search's figures.
struct Row {
    system: &'static str,
    model: &'static str,
    n: u8,
    faults: &'static str,
    threads: usize,
    /// Successors generated, repeats included (stateright's `state_count`; the explorer's
    /// transitions).
    generated: u64,
    unique: u64,
    depth: u64,
    seconds: f64,
    result: String,
}

impl Row {
    fn print(&self) {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.3} | {:.0} | {} |",
            self.system,
            self.model,
            self.n,
            self.faults,
            self.threads,
            self.generated,
            self.unique,
            self.depth,
            self.seconds,
            self.unique as f64 / self.seconds.max(1e-9),
            self.result
        );
    }
}

struct Args {
    nodes: Vec<u8>,
    max_epoch: u8,
    threads: Vec<usize>,
    election: String,
}

fn list<T: std::str::FromStr>(s: &str) -> Vec<T> {
    s.split(',')
        .map(|x| x.parse().unwrap_or_else(|_| panic!("bad list item {x:?}")))
        .collect()
}

fn args() -> Args {
    let mut a = Args {
        nodes: vec![3, 4],
        max_epoch: 1,
        threads: vec![1, 2],
        election: concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/release/election").into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--nodes" => a.nodes = list(&value),
            "--max-epoch" => a.max_epoch = value.parse().expect("--max-epoch N"),
            "--threads" => a.threads = list(&value),
            "--election" => a.election = value,
            _ => panic!("unknown flag {flag}"),
        }
    }
    a
}

fn stateright(model: RingModel, faults: &'static str, threads: usize) -> Row {
    let n = model.n;
    let start = Instant::now();
    let checker = model.checker().threads(threads).spawn_bfs().join();
    let seconds = start.elapsed().as_secs_f64();
    let result = match checker.discovery("at most one leader") {
        Some(path) => format!("VIOLATION after {} steps", path.into_actions().len()),
        None => "complete, no violation".into(),
    };
    Row {
        system: "stateright 0.31 BFS",
        model: "our stateright model of the ring",
        n,
        faults,
        threads,
        generated: checker.state_count() as u64,
        unique: checker.unique_state_count() as u64,
        depth: checker.max_depth() as u64,
        seconds,
        result,
    }
}

fn ours(a: &Args, n: u8, budget: &[&str], faults: &'static str, jobs: usize) -> Row {
    let out = Command::new(&a.election)
        .args(["sim", "explore", "--algorithm", "ring", "--json"])
        // The timing the stateright model has built in.
        .args(["--heartbeat-ms", "50", "--timeout-ms", "20"])
        .args(["--nodes", &n.to_string()])
        .args(["--max-epoch", &a.max_epoch.to_string()])
        .args(["--jobs", &jobs.to_string()])
        .args(budget)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", a.election));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "explorer output is not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let num = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("no {k} in {r}"));
    let result = match (&r["violation"], r["complete"].as_bool()) {
        (v, _) if !v.is_null() => format!("VIOLATION {v}"),
        (_, Some(true)) => "complete, no violation".into(),
        _ => format!("incomplete: {}", r["cut"]),
    };
    Row {
        system: "election sim explore",
        model: "election-core's Ring, synchronous model",
        n,
        faults,
        threads: jobs,
        generated: num("transitions"),
        unique: num("states"),
        depth: num("depth"),
        seconds: r["seconds"].as_f64().expect("seconds"),
        result,
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default()
}

fn main() {
    let a = args();
    println!("load average at start: {}", loadavg().trim());
    println!(
        "| system | model | n | faults | threads | generated | unique states | depth | s | unique states/s | result |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let budgets: [(&str, u8, u8, &[&str]); 2] = [
        ("none", 0, 0, &[]),
        (
            "1 crash, 1 recovery",
            1,
            1,
            &["--crashes", "1", "--recoveries", "1"],
        ),
    ];
    let mut disagree = Vec::new();
    for (faults, crashes, recoveries, flags) in budgets {
        for &n in &a.nodes {
            let model = RingModel {
                n,
                crashes,
                recoveries,
                max_epoch: a.max_epoch,
            };
            let mut rows = Vec::new();
            for &t in &a.threads {
                rows.push(stateright(model.clone(), faults, t));
                rows.last().unwrap().print();
            }
            for &t in &a.threads {
                rows.push(ours(&a, n, flags, faults, t));
                rows.last().unwrap().print();
            }
            // The model is meant to be the explorer's state space, state for state.
            if rows.iter().any(|r| r.unique != rows[0].unique) {
                disagree.push(format!("n = {n}, faults {faults}"));
            }
        }
    }
    println!("load average at end: {}", loadavg().trim());
    if !disagree.is_empty() {
        eprintln!("unique state counts differ: {}", disagree.join("; "));
        std::process::exit(1);
    }
    println!("unique state counts agree in every case");
}
