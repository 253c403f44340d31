//! The scenario files shipped in `election-sim/scenarios/` and the example in the crate README
//! are real plans: they parse, and every algorithm holds every invariant on them (and ends with
//! one leader within its bound) for a few seeds.

use std::path::{Path, PathBuf};

use election_core::{Algorithm, Protocol};
use election_sim::cli::simulate;
use election_sim::{Plan, Spec};

const NODES: u32 = 5;

fn scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the scenarios directory")
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenario in {}", dir.display());
    files
}

/// Every shipped scenario runs clean under every algorithm.
#[test]
fn shipped_scenarios_hold_every_invariant() {
    for path in scenarios() {
        let plan = Plan::load(&path, NODES).unwrap_or_else(|e| panic!("{e}"));
        for algorithm in Algorithm::ALL {
            let membership = election_core::with_protocol!(*algorithm, P => {
                P::properties(&election_core::ConfigOf::<P>::new(election_sim::DEFAULT_TIMING))
                    .membership
            });
            if !membership && plan.first_membership_change().is_some() {
                // The simulator refuses the plan (see `sim::SimError::Membership`).
                continue;
            }
            for seed in 0..4 {
                let spec = Spec::new(algorithm.name(), NODES, seed, plan.clone());
                let outcome = simulate(spec, None).unwrap();
                assert!(
                    outcome.violation.is_none(),
                    "{} with {algorithm}, seed {seed}: {:?}\nreproduce: election sim run \
                     --algorithm {algorithm} --nodes {NODES} --seed {seed} --plan {}",
                    path.display(),
                    outcome.violation,
                    path.display()
                );
            }
        }
    }
}

/// The TOML example of the crate README's "Scenario files" section is a valid plan.
#[test]
fn the_readme_example_plan_parses() {
    let readme = include_str!("../README.md");
    let section = readme
        .split("## Scenario files")
        .nth(1)
        .expect("the Scenario files section");
    let example = section
        .split("```toml")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a toml block in that section");
    let path = std::env::temp_dir().join(format!("readme-plan-{}.toml", std::process::id()));
    std::fs::write(&path, example).unwrap();
    let loaded = Plan::load(&path, NODES);
    std::fs::remove_file(&path).unwrap();
    let plan = loaded.unwrap_or_else(|e| panic!("the README example is not a valid plan: {e}"));
    assert_eq!(
        plan.faults.len(),
        8,
        "every documented fault kind is in the example"
    );
}
