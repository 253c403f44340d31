//! Property tests: every algorithm of `election-core` over random fault plans.
//!
//! The invariant checked for each generated (seed, plan): the simulator reports no violation.
//! That is, at every status change no two nodes are Normal leaders of one election and no two
//! members of one group follow different coordinators; once the network has been calm for the
//! algorithm's liveness bound (plus the slack described in `election_sim::sim`), every live
//! node is Normal behind one live leader (the highest live node for Bully and asynchronous
//! Bully), and that stays so until the end of the run.
//!
//! Plans mix crashes, recoveries, partitions and heals, one-way and two-way blocks, lossy
//! (up to 30 %), duplicating and slow networks, clock drift, joins and leaves. Proptest shrinks
//! a failing plan to a minimal one; the failure message holds the seed, the plan, and the
//! command that reproduces the run.
//!
//! `ELECTION_PROPTEST_CASES` sets the number of cases per algorithm (default 256).

use election_core::{Algorithm, Protocol};
use election_sim::{Fault, Network, Plan, Sim, Spec, TimedFault};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// Nodes at boot.
const NODES: u32 = 5;

fn cases() -> u32 {
    std::env::var("ELECTION_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn config() -> Config {
    Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..Config::default()
    }
}

fn network() -> impl Strategy<Value = Network> {
    (1_000u64..40_000, 0.0..=0.3f64, 0.0..=0.1f64).prop_map(|(max, loss, duplicate)| Network {
        min_latency_us: 1_000,
        max_latency_us: max,
        loss,
        duplicate,
    })
}

/// A fault whose node numbers are still raw; [`plan`] maps them onto existing nodes.
fn raw_fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        3 => any::<u32>().prop_map(|node| Fault::Crash { node }),
        3 => any::<u32>().prop_map(|node| Fault::Recover { node }),
        2 => any::<u32>().prop_map(|mask| Fault::Partition { groups: vec![vec![mask]] }),
        1 => (any::<u32>(), any::<u32>(), any::<bool>())
            .prop_map(|(from, to, one_way)| Fault::Block { from, to, one_way }),
        2 => Just(Fault::Heal),
        1 => network().prop_map(|network| Fault::Network { network }),
        1 => (any::<u32>(), -0.1..=0.1f64).prop_map(|(node, rate)| Fault::Drift { node, rate }),
        1 => Just(Fault::Join),
        1 => any::<u32>().prop_map(|node| Fault::Leave { node }),
    ]
}

/// A valid plan: raw node numbers are taken modulo the nodes existing at that time, a
/// partition's mask splits the nodes into two sides, and a block between a node and itself
/// becomes a heal.
fn plan() -> impl Strategy<Value = Plan> {
    (
        network(),
        proptest::collection::vec((0u64..600_000, raw_fault()), 0..8),
    )
        .prop_map(|(network, raw)| {
            let mut existing = NODES;
            let mut at_us = 0;
            let mut faults = Vec::new();
            for (gap, fault) in raw {
                at_us += gap;
                let fault = match fault {
                    Fault::Crash { node } => Fault::Crash {
                        node: node % existing,
                    },
                    Fault::Recover { node } => Fault::Recover {
                        node: node % existing,
                    },
                    Fault::Leave { node } => Fault::Leave {
                        node: node % existing,
                    },
                    Fault::Drift { node, rate } => Fault::Drift {
                        node: node % existing,
                        rate,
                    },
                    Fault::Partition { groups } => {
                        let mask = groups[0][0];
                        let (a, b) = (0..existing).partition(|n| mask >> (n % 32) & 1 == 1);
                        Fault::Partition { groups: vec![a, b] }
                    }
                    Fault::Block { from, to, one_way } if from % existing != to % existing => {
                        Fault::Block {
                            from: from % existing,
                            to: to % existing,
                            one_way,
                        }
                    }
                    Fault::Block { .. } => Fault::Heal,
                    Fault::Join => {
                        existing += 1;
                        Fault::Join
                    }
                    other => other,
                };
                faults.push(TimedFault { at_us, fault });
            }
            Plan { network, faults }
        })
}

/// Runs one case; on a violation writes the plan next to the target dir and fails with the seed,
/// the violation and the command that reproduces it.
fn holds<P: Protocol>(algorithm: Algorithm, seed: u64, plan: Plan) -> Result<(), TestCaseError> {
    let spec = Spec::new(algorithm.name(), NODES, seed, plan.clone());
    let out = Sim::<P>::new(spec, None)
        .expect("generated plans are valid")
        .run();
    if let Some(v) = out.violation {
        let path = std::env::temp_dir().join(format!("election-sim-{algorithm}-seed-{seed}.json"));
        let json = serde_json::to_string_pretty(&plan).expect("plans serialize");
        let saved = std::fs::write(&path, &json).is_ok();
        return Err(TestCaseError::fail(format!(
            "{v}\nplan: {json}\nreproduce: election sim run --algorithm {algorithm} --nodes {NODES} --seed {seed} --plan {}{}",
            path.display(),
            if saved {
                ""
            } else {
                " (could not write the plan file; save the plan above there)"
            }
        )));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn bully_is_safe_and_live(seed in any::<u64>(), plan in plan()) {
        holds::<election_core::bully::Bully>(Algorithm::Bully, seed, plan)?;
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn async_bully_is_safe_and_live(seed in any::<u64>(), plan in plan()) {
        holds::<election_core::async_bully::AsyncBully>(Algorithm::AsyncBully, seed, plan)?;
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn invitation_is_safe_and_live(seed in any::<u64>(), plan in plan()) {
        holds::<election_core::invitation::Invitation>(Algorithm::Invitation, seed, plan)?;
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ring_is_safe_and_live(seed in any::<u64>(), plan in plan()) {
        holds::<election_core::ring::Ring>(Algorithm::Ring, seed, plan)?;
    }
}
