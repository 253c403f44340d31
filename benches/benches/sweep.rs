//! `sim check` on every core against one core, in the same run: the same 4,000 seeds of Bully
//! with random faults (swarm), first with one worker thread, then with every core, and the
//! verdicts compared (they must be equal). Prints the wall times and their ratio.
//!
//! `cargo bench -p election-benches --bench sweep [-- SEEDS]`

use std::time::Instant;

use election_core::Protocol;
use election_core::bully::Bully;
use election_sim::sweep::{Seeds, sweep};
use election_sim::{RandomFaults, Spec, cli::simulate_with};

fn main() {
    let seeds: u64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or(4_000, |a| a.parse().expect("SEEDS is a number"));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let range = Seeds {
        first_seed: 0,
        seeds,
        shard: None,
    };
    let random = RandomFaults::default();
    let run = |seed: u64| {
        let spec = Spec::new(Bully::NAME, 5, seed, random.generate(seed, 5));
        simulate_with::<Bully>(spec, None).map_err(|e| e.to_string())
    };
    let mut verdicts = Vec::new();
    let mut walls = Vec::new();
    for jobs in [1, cores] {
        let started = Instant::now();
        let (passed, verdict, _) = sweep(range, jobs, false, run, |seed, v| {
            panic!("seed {seed} failed: {v}")
        })
        .expect("the sweep runs");
        let wall = started.elapsed().as_secs_f64();
        println!(
            "jobs {jobs}: {passed} seeds in {wall:.2} s ({:.0} seeds/s)",
            seeds as f64 / wall
        );
        verdicts.push(verdict.expect("passes"));
        walls.push(wall);
    }
    assert_eq!(verdicts[0], verdicts[1], "the parallel summary differs");
    println!(
        "ratio {:.2} ({cores} cores vs 1; the summaries are equal)",
        walls[1] / walls[0]
    );
}
