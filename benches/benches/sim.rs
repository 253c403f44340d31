//! Simulator throughput: Bully with 1,000 nodes under a random fault plan, next to a bare
//! `BinaryHeap` loop doing the same queue work, in the same run.
//!
//! `cargo bench -p election-benches --bench sim`
//!
//! The bare loop replays the simulation's queue profile: for every event the simulator
//! processed, it pops one key and pushes as many keys as that event scheduled, so both loops
//! see the same queue sizes (a Bully boot storm makes the queue swell to hundreds of thousands of
//! events, and a heap's cost depends on its size). Keys are (time, sequence) pairs with
//! xorshift delays — the queue alone, without any simulation. Criterion reports both
//! throughputs (events/s); the last line prints their ratio (target ≥ 0.5), measured again with
//! interleaved best-of-five timings.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use election_core::bully::Bully;
use election_sim::{RandomFaults, Sim, Spec};

const NODES: u32 = 1_000;
const SEED: u64 = 7;

fn sim() -> Sim<Bully> {
    let spec = Spec::new(
        "bully",
        NODES,
        SEED,
        RandomFaults::default().generate(SEED, NODES),
    );
    Sim::new(spec, None).expect("valid spec")
}

fn simulate() -> election_sim::Outcome {
    sim().run()
}

/// The queue length right after boot, and the pushes of every processed event, in order.
fn queue_profile() -> (usize, Vec<u32>) {
    let mut s = sim();
    let end = s.end_time();
    let boot = s.queue_len();
    let mut before = boot;
    let mut profile = Vec::new();
    while s.step(end) {
        let after = s.queue_len();
        profile.push((after + 1 - before) as u32);
        before = after;
    }
    (boot, profile)
}

/// The bare loop: one pop and `pushes` pushes per event of the profile.
fn bare_heap(boot: usize, profile: &[u32]) -> u64 {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut delay = || {
        // xorshift64: as cheap as a random source gets, so the loop is the heap alone.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % 10_000
    };
    let mut heap = BinaryHeap::new();
    let mut seq = 0u64;
    for _ in 0..boot {
        seq += 1;
        heap.push(Reverse((delay(), seq)));
    }
    for &pushes in profile {
        let Some(Reverse((t, _))) = heap.pop() else {
            break;
        };
        for _ in 0..pushes {
            seq += 1;
            heap.push(Reverse((t + delay(), seq)));
        }
    }
    seq
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .min()
        .expect("runs > 0")
}

fn main() {
    let probe = simulate();
    assert!(
        probe.violation.is_none(),
        "benchmark run broke an invariant: {:?}",
        probe.violation
    );
    let events = probe.stats.events;
    let (boot, profile) = queue_profile();
    let profile = &profile[..];
    assert_eq!(
        profile.len() as u64,
        events,
        "the profile covers every event"
    );

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    let mut group = c.benchmark_group("sim");
    group.throughput(Throughput::Elements(events));
    group.bench_function("bully-1000-random-faults", |b| b.iter(simulate));
    group.bench_function("binary-heap-bare-same-queue-profile", |b| {
        b.iter(|| bare_heap(boot, profile))
    });
    group.finish();
    c.final_summary();

    let mut sim_time = Duration::MAX;
    let mut bare_time = Duration::MAX;
    for _ in 0..5 {
        sim_time = sim_time.min(best_of(1, simulate));
        bare_time = bare_time.min(best_of(1, || bare_heap(boot, profile)));
    }
    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    println!(
        "sim: {events} events (mean queue {:.0}): simulator {:.2} M events/s, bare heap {:.2} M events/s, ratio {:.2} (target >= 0.5)",
        probe.stats.mean_queue,
        rate(sim_time) / 1e6,
        rate(bare_time) / 1e6,
        bare_time.as_secs_f64() / sim_time.as_secs_f64()
    );
}
