//! The exhaustive explorer's table for BENCHMARKS.md: every built-in algorithm at n = 2, 3, 4,
//! fault-free and with one crash and one recovery, at the default bounds (`--max-epoch 1`,
//! `--max-in-flight 2`). One Markdown row per search: distinct states, transitions, depth,
//! seconds, states/s, estimated memory and peak RSS (the process's, so a row's own only where it
//! is the largest so far), whether it completed.
//!
//! `cargo run --release -p election-benches --bin explore_table -- [--max-states N]`

use clap::Parser;
use election_core::{Algorithm, ConfigOf};
use election_sim::DEFAULT_TIMING;
use election_sim::explore::{Budget, Explorer, Limits, peak_rss_mb};

/// Flags of the table run.
#[derive(Parser)]
struct Args {
    /// Cap on the states of one search (a capped search is marked incomplete).
    #[arg(long, default_value_t = 12_000_000)]
    max_states: usize,
    /// Largest cluster size.
    #[arg(long, default_value_t = 4)]
    max_nodes: u32,
}

fn main() {
    let args = Args::parse();
    let budgets = [
        ("none", Budget::default()),
        (
            "1 crash, 1 recovery",
            Budget {
                crashes: 1,
                recoveries: 1,
                ..Budget::default()
            },
        ),
    ];
    println!(
        "| algorithm | n | faults | states | transitions | depth | past epoch | s | states/s | est. MiB | peak RSS MiB | result |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let limits = Limits {
        max_states: args.max_states,
        ..Limits::default()
    };
    for (label, budget) in budgets {
        for n in 2..=args.max_nodes {
            for &algorithm in Algorithm::ALL {
                election_core::with_protocol!(algorithm, P => {
                    let explorer = Explorer::<P>::new(ConfigOf::<P>::new(DEFAULT_TIMING), n, budget, 0)
                        .expect("valid sizes");
                    let r = explorer.run(&limits, |_| {});
                    let result = match (&r.counterexample, &r.cut) {
                        (Some(c), _) => format!("violation: {}", c.violation.invariant),
                        (None, Some(_)) => "incomplete (state cap)".to_string(),
                        (None, None) => "complete, no violation".to_string(),
                    };
                    println!(
                        "| {} | {n} | {label} | {} | {} | {} | {} | {:.1} | {:.0} | {} | {} | {result} |",
                        algorithm.name(),
                        r.states,
                        r.transitions,
                        r.depth,
                        r.past_epoch,
                        r.seconds,
                        r.states as f64 / r.seconds.max(1e-9),
                        r.memory_estimate >> 20,
                        peak_rss_mb().map_or("-".into(), |m| format!("{m:.0}")),
                    );
                })
            }
        }
    }
}
