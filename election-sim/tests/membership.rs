//! The simulator drives `election-core`'s membership layer: racing joins through different
//! members get distinct ids above every member their admitters knew — shown to catch the rule
//! the layer replaced — and random plans with joins and leaves keep every declared invariant.

use std::collections::BTreeSet;

use election_core::bully::Bully;
use election_core::membership::SLOTS;
use election_core::{Algorithm, NodeId, Protocol};
use election_sim::{Fault, Network, Plan, RandomFaults, Sim, Spec, TimedFault, cli::simulate};

/// Nodes at boot.
const NODES: u32 = 5;

fn join(at_us: u64, via: u32) -> TimedFault {
    TimedFault {
        at_us,
        fault: Fault::Join { via: Some(via) },
    }
}

/// Four joins at one instant through four different members (two of them racing through the
/// same admitter's neighbours), then a second wave: one through a joined node (no admitter: it
/// redirects) and one through a config node.
fn racing(network: Network) -> Plan {
    Plan {
        network,
        faults: vec![
            join(300_000, 0),
            join(300_000, 1),
            join(300_000, 3),
            join(300_000, 4),
            join(600_000, 5),
            join(600_000, 2),
        ],
    }
}

/// The invariant: the ids every node holds are distinct; every joiner's id is above every
/// config id, and — with `waves`, on a loss-free network, where its admitter heard of the first
/// wave long before — a second-wave joiner's above every first-wave one. Returns what was wrong.
fn ids_distinct_and_above<P: Protocol>(sim: &Sim<P>, waves: bool) -> Result<(), String> {
    let ids: Vec<(u32, NodeId)> = (0..sim.nodes())
        .filter_map(|n| Some((n, sim.id_of(n)?)))
        .collect();
    let distinct: BTreeSet<NodeId> = ids.iter().map(|(_, id)| *id).collect();
    if distinct.len() != ids.len() {
        return Err(format!("two nodes share an id: {ids:?}"));
    }
    let of = |n: u32| ids.iter().find(|(m, _)| *m == n).map(|(_, id)| *id);
    let config_max = (0..NODES).filter_map(of).max();
    let first_wave: Vec<NodeId> = (NODES..NODES + 4).filter_map(of).collect();
    for (n, id) in ids.iter().filter(|(n, _)| *n >= NODES) {
        if Some(*id) <= config_max || id.0 < SLOTS {
            return Err(format!(
                "joiner {n} got {id}, not above the config ids: {ids:?}"
            ));
        }
        if waves && *n >= NODES + 4 && first_wave.iter().any(|f| f >= id) {
            return Err(format!(
                "joiner {n} got {id}, not above the first wave: {ids:?}"
            ));
        }
    }
    Ok(())
}

fn racing_run<P: Protocol>(
    seed: u64,
    network: Network,
    broken: bool,
) -> (Result<(), String>, Sim<P>) {
    let spec = Spec::new(P::NAME, NODES, seed, racing(network));
    let mut sim = Sim::<P>::new(spec, None).expect("valid plan");
    if broken {
        sim.use_highest_plus_one_ids();
    }
    let end = sim.end_time();
    let _ = sim.run_until(end);
    let waves = network.loss == 0.0;
    (ids_distinct_and_above(&sim, waves), sim)
}

#[test]
fn racing_joins_through_different_members_get_distinct_ids_above_everyone() {
    for seed in 0..150 {
        let (ids, sim) = racing_run::<Bully>(seed, Network::default(), false);
        ids.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        // On a loss-free network every join succeeds and every table converges.
        for n in NODES..NODES + 6 {
            assert!(
                sim.id_of(n).is_some(),
                "seed {seed}: node {n} was not welcomed"
            );
        }
        let tables: BTreeSet<Vec<(NodeId, u32)>> = (0..sim.nodes())
            .filter_map(|n| Some(sim.view(n)?.entries()))
            .collect();
        assert_eq!(tables.len(), 1, "seed {seed}: tables differ: {tables:?}");
        assert_eq!(tables.first().map(Vec::len), Some(11), "seed {seed}");
        let out = sim.finish();
        assert_eq!(out.violation, None, "seed {seed}");
        assert_eq!(out.stats.joins, 6, "seed {seed}");
    }
}

#[test]
fn racing_joins_keep_distinct_ids_when_messages_are_lost() {
    let lossy = Network {
        min_latency_us: 1_000,
        max_latency_us: 30_000,
        loss: 0.3,
        duplicate: 0.1,
    };
    let mut welcomed = 0;
    for seed in 0..150 {
        let (ids, sim) = racing_run::<Bully>(seed, lossy, false);
        ids.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        welcomed += (NODES..sim.nodes())
            .filter(|&n| sim.id_of(n).is_some())
            .count();
        assert_eq!(sim.finish().violation, None, "seed {seed}");
    }
    // Not vacuous: joins got through the loss (retries), most of them.
    assert!(welcomed > 150 * 6 / 2, "only {welcomed} joins got through");
}

/// The rule the layer replaced, one above the highest id the admitter knows, is caught: racing
/// joiners through different admitters get the same id.
#[test]
fn the_racing_join_check_catches_the_highest_plus_one_rule() {
    let mut caught = 0;
    for seed in 0..20 {
        let (ids, _) = racing_run::<Bully>(seed, Network::default(), true);
        if let Err(e) = ids {
            assert!(e.contains("share an id"), "seed {seed}: {e}");
            caught += 1;
        }
    }
    assert_eq!(caught, 20, "every racing run hands out one id twice");
}

/// Node 5 joins through admitter 1 while admitter 0 is cut off, crashes, and comes back
/// through admitter 0 (a restart with another `--join`), which has not heard of it. Returns the
/// ids held for node 5's address, by holder, and the id node 5 holds itself.
fn rejoin_through_another_admitter(seed: u64) -> (Vec<(u32, NodeId)>, Option<NodeId>) {
    let at = |at_us: u64, fault: Fault| TimedFault { at_us, fault };
    let plan = Plan {
        network: Network::default(),
        faults: vec![
            join(300_000, 1),
            at(
                300_000,
                Fault::Partition {
                    groups: vec![vec![0], vec![1, 2, 3, 4, 5]],
                },
            ),
            at(400_000, Fault::Crash { node: 5 }),
            at(450_000, Fault::Heal),
            at(450_000, Fault::Recover { node: 5 }),
        ],
    };
    let mut sim =
        Sim::<Bully>::new(Spec::new(Bully::NAME, NODES, seed, plan), None).expect("valid plan");
    let _ = sim.run_until(350_000);
    sim.rejoin_through(5, 0);
    let end = sim.end_time();
    let _ = sim.run_until(end);
    let held = (0..sim.nodes())
        .filter_map(|n| {
            let view = sim.view(n)?;
            Some((n, view.id_of(&5)?))
        })
        .collect();
    (held, sim.id_of(5))
}

/// Invariant: a process that re-joins through an admitter that has not heard of it keeps the
/// one id its first welcome gave it — its own claim wins over a fresh assignment — so every
/// table holds it under that id, and it holds that id itself.
#[test]
fn a_rejoin_through_another_admitter_keeps_the_first_id() {
    for seed in 0..20 {
        let (held, own) = rejoin_through_another_admitter(seed);
        let first = NodeId(SLOTS + 1);
        assert_eq!(
            own,
            Some(first),
            "seed {seed}: node 5 holds {own:?}; tables: {held:?}"
        );
        assert_eq!(
            held.len(),
            6,
            "seed {seed}: not every table holds node 5: {held:?}"
        );
        assert!(
            held.iter().all(|(_, id)| *id == first),
            "seed {seed}: node 5 has two ids: {held:?}"
        );
    }
}

fn supports_membership(algorithm: Algorithm) -> bool {
    election_core::with_protocol!(algorithm, P => {
        P::properties(&election_core::ConfigOf::<P>::new(election_sim::DEFAULT_TIMING)).membership
    })
}

/// Invariant: for every algorithm that declares `membership`, random plans with joins and
/// leaves (the full fault mix), and synchronous ones (which have none: they are outside the
/// model), raise no violation of what it declares; and joins do happen (the sweep is not
/// vacuous).
#[test]
fn random_plans_with_joins_and_leaves_keep_every_invariant() {
    let random = RandomFaults {
        swarm: false,
        ..RandomFaults::default()
    };
    let algorithms: Vec<Algorithm> = Algorithm::ALL
        .iter()
        .copied()
        .filter(|&a| supports_membership(a))
        .collect();
    assert!(algorithms.len() >= 4, "{algorithms:?}");
    for algorithm in algorithms {
        let (mut joins, mut leaves) = (0, 0);
        for seed in 0..60 {
            let delay = election_core::with_protocol!(algorithm, P => {
                P::max_delay(&election_core::ConfigOf::<P>::new(election_sim::DEFAULT_TIMING))
            });
            let plans = [
                random.generate(seed, NODES),
                random.generate_synchronous(seed, NODES, election_sim::DEFAULT_TIMING, delay),
            ];
            for (family, plan) in plans.into_iter().enumerate() {
                leaves += plan
                    .faults
                    .iter()
                    .filter(|f| matches!(f.fault, Fault::Leave { .. }))
                    .count();
                let spec = Spec::new(algorithm.name(), NODES, seed, plan);
                let out = simulate(spec, None).expect("generated plans are valid");
                assert_eq!(
                    out.violation, None,
                    "{algorithm} seed {seed} family {family}"
                );
                joins += out.stats.joins;
            }
        }
        assert!(
            joins > 30 && leaves > 30,
            "{algorithm}: {joins} joins, {leaves} leaves"
        );
    }
}

/// A join is outside Garcia-Molina's model (a fixed set of processes): a run inside it until
/// then leaves it at the join, so no synchronous-model check claims the convergence time.
#[test]
fn a_join_leaves_the_synchronous_model() {
    let plan = Plan {
        network: Network::default(),
        faults: vec![TimedFault {
            at_us: 500_000,
            fault: Fault::Join { via: None },
        }],
    };
    let calm = simulate(Spec::new("bully", NODES, 1, Plan::calm()), None).unwrap();
    assert_eq!(calm.stats.left_model_at, None, "a calm run stays inside");
    let out = simulate(Spec::new("bully", NODES, 1, plan), None).unwrap();
    assert_eq!(out.stats.left_model_at, Some(500_000));
    assert_eq!(out.violation, None);
    assert_eq!(out.stats.joins, 1);
}
