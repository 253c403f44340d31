//! Property tests: every registered algorithm of `election-core` over random fault plans.
//!
//! The invariant checked for each generated (algorithm, seed, plan): the simulator reports no
//! violation of what the algorithm declares (`Protocol::properties`). That is, at every status
//! change Assertion 1 within its scope (per group or term in every run; over all live nodes as
//! long as the run is inside the synchronous model) and one leader per election / term / at a
//! time where declared; once the network has been calm for the algorithm's liveness bound (plus
//! the slack described in `election_sim::sim`), every live node is Normal behind one live leader
//! (the highest live node where declared), and that stays so until the end of the run.
//!
//! Two plan families: the full mix — crashes, recoveries, partitions and heals, one-way and
//! two-way blocks, lossy (up to 30 %), duplicating and slow networks, clock drift, joins and
//! leaves — and plans inside Garcia-Molina's synchronous model — crashes, recoveries, drift
//! within 10 %, and links pinned at any delay up to the tolerated one, so that
//! messages race — where every model-bound check applies throughout. Proptest shrinks a failing
//! plan to a minimal one; the failure message holds the seed, the plan, and the command that
//! reproduces the run.
//!
//! `ELECTION_PROPTEST_CASES` sets the number of cases per algorithm and family (default 256).

use election_core::{Algorithm, Model, Protocol, Time};
use election_sim::{DEFAULT_TIMING, Fault, Network, Plan, Spec, TimedFault, cli::simulate};
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
        cases: cases() * Algorithm::ALL.len() as u32,
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
        1 => any::<Option<u32>>().prop_map(|via| Fault::Join { via }),
        1 => any::<u32>().prop_map(|node| Fault::Leave { node }),
    ]
}

/// The one-way delay `algorithm` tolerates at the default timing.
fn tolerated_delay(algorithm: Algorithm) -> Time {
    election_core::with_protocol!(algorithm, P => {
        P::max_delay(&election_core::ConfigOf::<P>::new(DEFAULT_TIMING))
    })
}

/// A fault inside the synchronous model for an algorithm tolerating `delay`, node numbers
/// still raw.
fn raw_synchronous_fault(delay: Time) -> impl Strategy<Value = Fault> {
    let pinned = |latency| Network {
        min_latency_us: latency,
        max_latency_us: latency,
        loss: 0.0,
        duplicate: 0.0,
    };
    let drift = Model::SYNCHRONOUS_DRIFT;
    prop_oneof![
        3 => any::<u32>().prop_map(|node| Fault::Crash { node }),
        3 => any::<u32>().prop_map(|node| Fault::Recover { node }),
        2 => (any::<u32>(), any::<u32>(), 0..=delay)
            .prop_map(move |(from, to, d)| Fault::Link { from, to, network: pinned(d) }),
        1 => (any::<u32>(), -drift..=drift).prop_map(|(node, rate)| Fault::Drift { node, rate }),
        // No joins or leaves: they are outside the model (see `Sim::apply`).
    ]
}

fn synchronous_plan(delay: Time) -> impl Strategy<Value = Plan> {
    let network = (0..=delay).prop_map(move |min| Network {
        min_latency_us: min,
        max_latency_us: delay,
        loss: 0.0,
        duplicate: 0.0,
    });
    plan_of(network, raw_synchronous_fault(delay))
}

/// An algorithm and a plan inside the synchronous model for it.
fn synchronous_case() -> impl Strategy<Value = (Algorithm, Plan)> {
    algorithm().prop_flat_map(|a| (Just(a), synchronous_plan(tolerated_delay(a))))
}

fn plan() -> impl Strategy<Value = Plan> {
    plan_of(network(), raw_fault())
}

/// A valid plan: raw node numbers are taken modulo the nodes existing at that time, a
/// partition's mask splits the nodes into two sides, and a block or link between a node and
/// itself becomes a heal.
fn plan_of(
    network: impl Strategy<Value = Network>,
    fault: impl Strategy<Value = Fault>,
) -> impl Strategy<Value = Plan> {
    (
        network,
        proptest::collection::vec((0u64..600_000, fault), 0..8),
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
                    Fault::Link { from, to, network } if from % existing != to % existing => {
                        Fault::Link {
                            from: from % existing,
                            to: to % existing,
                            network,
                        }
                    }
                    Fault::Link { .. } => Fault::Heal,
                    Fault::Join { via } => {
                        let via = via.map(|v| v % existing);
                        existing += 1;
                        Fault::Join { via }
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
fn holds(
    algorithm: Algorithm,
    seed: u64,
    plan: Plan,
    synchronous: bool,
) -> Result<(), TestCaseError> {
    let plan = without_membership_changes_unless_supported(algorithm, plan);
    let spec = Spec::new(algorithm.name(), NODES, seed, plan.clone());
    let out = simulate(spec, None).expect("generated plans are valid");
    if synchronous {
        prop_assert_eq!(
            out.stats.left_model_at,
            None,
            "a synchronous plan left the model"
        );
    }
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

/// The plan, with joins and leaves turned into heals (and faults naming nodes only a join would
/// have created dropped) for a protocol whose properties exclude membership changes.
fn without_membership_changes_unless_supported(algorithm: Algorithm, mut plan: Plan) -> Plan {
    let supported = election_core::with_protocol!(algorithm, P => {
        P::properties(&election_core::ConfigOf::<P>::new(DEFAULT_TIMING)).membership
    });
    if !supported {
        plan.faults.retain_mut(|f| {
            if matches!(f.fault, Fault::Join { .. } | Fault::Leave { .. }) {
                f.fault = Fault::Heal;
            }
            plan_names_only(&f.fault, NODES)
        });
    }
    plan
}

/// Whether every node `fault` names is one of the first `nodes`.
fn plan_names_only(fault: &Fault, nodes: u32) -> bool {
    Plan {
        network: Network::default(),
        faults: vec![TimedFault {
            at_us: 0,
            fault: fault.clone(),
        }],
    }
    .validate(nodes)
    .is_ok()
}

fn algorithm() -> impl Strategy<Value = Algorithm> {
    proptest::sample::select(Algorithm::ALL)
}

proptest! {
    #![proptest_config(config())]

    /// Every algorithm keeps what it declares under the full fault mix.
    #[test]
    fn every_algorithm_is_safe_and_live(algorithm in algorithm(), seed in any::<u64>(), plan in plan()) {
        holds(algorithm, seed, plan, false)?;
    }

    /// Inside the synchronous model every algorithm keeps what it declares at every instant,
    /// Assertion 1 of Bully among it.
    #[test]
    fn every_algorithm_is_safe_and_live_inside_the_synchronous_model(
        (algorithm, plan) in synchronous_case(),
        seed in any::<u64>(),
    ) {
        holds(algorithm, seed, plan, true)?;
    }
}
