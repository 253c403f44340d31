//! Simulator scale and memory: large elections run to a stable leader, the 10,000-node Bully
//! worst case, and resident memory per idle node.
//!
//! `cargo bench -p election-benches --bench sim_scale` runs every scenario at its default size;
//! `-- ring=20000 bully` picks scenarios (and sizes). Each prints one line for BENCHMARKS.md.
//!
//! Memory: resident set size (`/proc/self/statm`) once the cluster first settled, minus before
//! the simulator was built, divided by the node count. It covers everything the run keeps: node
//! slots, protocol state, timers and the event queue (including capacity a boot storm left).
//! Virtual time advances in steps of one second, so "settled by" is rounded up to a second.

use std::time::Instant;

use election_core::{ConfigOf, MILLIS, Protocol, State, Time, Timing};
use election_sim::{DEFAULT_TIMING, Fault, Plan, Sim, Spec, TimedFault};

const SECOND: Time = 1_000 * MILLIS;

#[global_allocator]
static GLOBAL: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// Heap bytes allocated and not yet freed.
fn heap_bytes() -> u64 {
    // Reallocations are counted in these two already (growth and shrinkage).
    let s = GLOBAL.stats();
    s.bytes_allocated.saturating_sub(s.bytes_deallocated) as u64
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm has a resident field");
    pages * 4096
}

/// Heartbeat of the scale runs: long, so that periodic checks do not swamp the election's own
/// messages (a ring lap of 100,000 nodes takes minutes of virtual time).
const HEARTBEAT: Time = 10_000 * MILLIS;

/// Whether every live node is `Normal` behind one live leader.
fn settled<P: Protocol>(sim: &Sim<P>, n: u32) -> bool {
    let mut leader = None;
    for id in 0..n {
        let s = sim.status(id);
        if s.state == State::Down {
            continue;
        }
        if s.state != State::Normal
            || s.coordinator.is_none()
            || (leader.is_some() && s.coordinator != leader)
        {
            return false;
        }
        leader = s.coordinator;
    }
    leader.is_some_and(|l| sim.status(l.0).is_leader(l))
}

/// Boots `n` nodes at once and runs until every live node follows one leader (polled once per
/// virtual second). `restart`: once settled, crash the leader `n-1` and at the same instant restart
/// node `k`, so that `k` starts the next election; run until settled again and count from the
/// crash.
fn scenario<P: Protocol>(label: &str, n: u32, restart: Option<u32>) {
    let timing = Timing {
        heartbeat: HEARTBEAT,
        timeout: DEFAULT_TIMING.timeout,
    };
    let bound = P::liveness_bound(&ConfigOf::<P>::new(timing), n as usize);
    let faults = restart.map_or(Vec::new(), |k| {
        [
            Fault::Crash { node: n - 1 },
            Fault::Crash { node: k },
            Fault::Recover { node: k },
        ]
        .into_iter()
        .map(|fault| TimedFault {
            at_us: bound,
            fault,
        })
        .collect()
    });
    let spec = Spec {
        timing,
        ..Spec::new(
            P::NAME,
            n,
            1,
            Plan {
                faults,
                ..Plan::calm()
            },
        )
    };
    let before = rss_bytes();
    let heap_before = heap_bytes();
    let started = Instant::now();
    let mut sim = Sim::<P>::new(spec, None).expect("valid spec");
    // What the nodes cost before any event: slots, protocol state, the queue's fixed wheel.
    let built = heap_bytes().saturating_sub(heap_before) / u64::from(n);
    let mut t = 0;
    let mut phases = Vec::new();
    let mut memory = Vec::new();
    let mut events_before = 0;
    for phase in 0..if restart.is_some() { 2 } else { 1 } {
        if phase == 1 {
            // Jump to the crash and restart.
            sim.run_until(bound).expect("no violation");
            t = bound;
            events_before = sim.stats().events;
        }
        loop {
            t += SECOND;
            if let Err(v) = sim.run_until(t) {
                println!("{label}: n={n} VIOLATION {v}");
                return;
            }
            if settled(&sim, n) {
                break;
            }
            if t > bound + 10 * SECOND {
                println!("{label}: n={n} NOT SETTLED within the liveness bound {bound} us");
                return;
            }
        }
        phases.push((t, sim.stats().events - events_before));
        memory.push((
            rss_bytes().saturating_sub(before) / u64::from(n),
            heap_bytes().saturating_sub(heap_before) / u64::from(n),
            sim.queue_len(),
        ));
    }
    let wall = started.elapsed();
    let events = sim.stats().events;
    let out = sim.finish();
    let s = &out.stats;
    let shown: Vec<String> = phases
        .iter()
        .map(|(t, e)| format!("settled by t={:.0}s after {e} events", *t as f64 / 1e6))
        .collect();
    println!(
        "{label}: n={n} | {} | wall {:.2}s, {events} events, {:.2} M events/s | {} messages ({}){} | live heap per node when built {built} B; after each settle (RSS B, live heap B, events queued): {:?}",
        shown.join("; "),
        wall.as_secs_f64(),
        events as f64 / wall.as_secs_f64() / 1e6,
        s.messages(),
        s.sent
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        match (restart, s.messages_to_stable) {
            (Some(_), Some(m)) => format!(", {m} from the crash to the last status change"),
            _ => String::new(),
        },
        memory,
    );
}

fn main() {
    // Arguments: scenario names to run, optionally with a size (`ring=1000`); none runs all at
    // their default sizes. Cargo's `--bench` flag is ignored.
    let picked: Vec<(String, Option<u32>)> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(|a| match a.split_once('=') {
            Some((name, n)) => {
                let n = n.parse().unwrap_or_else(|_| {
                    eprintln!("error: {a:?}: expected NAME=NODES with a node count after '='");
                    std::process::exit(2)
                });
                (name.to_string(), Some(n))
            }
            None => (a, None),
        })
        .collect();
    let size = |name: &str, default: u32| -> Option<u32> {
        if picked.is_empty() {
            return Some(default);
        }
        picked
            .iter()
            .find(|(p, _)| p == name)
            .map(|(_, n)| n.unwrap_or(default))
    };
    if let Some(n) = size("ring", 100_000) {
        scenario::<election_core::ring::Ring>("ring boot", n, None);
    }
    if let Some(n) = size("invitation", 4_096) {
        scenario::<election_core::invitation::Invitation>("invitation boot", n, None);
    }
    if let Some(n) = size("async-bully", 2_000) {
        scenario::<election_core::async_bully::AsyncBully>("async-bully boot", n, None);
    }
    if let Some(n) = size("bully", 10_000) {
        scenario::<election_core::bully::Bully>(
            "bully worst case (n0 restarts as the leader crashes)",
            n,
            Some(0),
        );
    }
}
