//! The engine, fault model and checkers, exercised with small protocols defined in `common`.

mod common;

use common::{BrokenBeacon, CorrectBeacon, SelfCrowning};
use election_core::Protocol;
use election_sim::{Fault, Invariant, Network, Plan, RandomFaults, Sim, Spec, TimedFault};

fn run<P: Protocol>(spec: Spec) -> election_sim::Outcome {
    Sim::<P>::new(spec, None).unwrap().run()
}

fn traced<P: Protocol>(spec: Spec) -> (Vec<u8>, u64) {
    let (bytes, out) = election_sim::folder::trace_in_memory::<P>(spec).unwrap();
    (bytes, out.trace.unwrap().unwrap())
}

fn at(at_us: u64, fault: Fault) -> TimedFault {
    TimedFault { at_us, fault }
}

#[test]
fn calm_cluster_settles_on_the_highest_node() {
    let out = run::<CorrectBeacon>(Spec::new("beacon", 5, 1, Plan::calm()));
    assert_eq!(out.violation, None);
    assert_eq!(out.stats.leader, Some(4));
    assert!(out.stats.time_to_stable.is_some());
    assert!(out.stats.sent["Alive"] > 0);
    assert_eq!(out.stats.lost + out.stats.blocked + out.stats.duplicated, 0);
}

#[test]
fn crash_partition_join_and_leave_settle_after_the_calm() {
    let plan = Plan {
        network: Network::default(),
        faults: vec![
            at(200_000, Fault::Crash { node: 4 }),
            at(250_000, Fault::Join { via: Some(1) }),
            at(
                300_000,
                Fault::Partition {
                    groups: vec![vec![0, 1], vec![2, 3]],
                },
            ),
            at(400_000, Fault::Join { via: None }),
            at(500_000, Fault::Leave { node: 0 }),
            at(600_000, Fault::Drift { node: 1, rate: 0.2 }),
        ],
    };
    let out = run::<CorrectBeacon>(Spec::new("beacon", 5, 7, plan));
    assert_eq!(out.violation, None);
    // Node 5 joined; node 4 is still down, so 5 is the highest live node.
    assert_eq!(out.stats.leader, Some(5));
    // Node 6 asked to join while isolated by the partition: every request was dropped, and it
    // gave up before the heal.
    assert_eq!(out.stats.joins_failed, 1);
    assert!(
        out.stats.blocked > 0,
        "the partition dropped nothing: {:?}",
        out.stats
    );
    assert_eq!(out.stats.calm_at, 600_000);
}

#[test]
fn same_seed_gives_a_byte_identical_trace() {
    let plan = RandomFaults::default().generate(99, 6);
    let spec = Spec::new("beacon", 6, 99, plan);
    let (a, ha) = traced::<CorrectBeacon>(spec.clone());
    let (b, hb) = traced::<CorrectBeacon>(spec.clone());
    assert_eq!(ha, hb);
    assert!(a == b, "traces differ");
    let other = Spec { seed: 100, ..spec };
    let (_, hc) = traced::<CorrectBeacon>(other);
    assert_ne!(ha, hc, "a different seed should draw different delays");
    let text = String::from_utf8(a).unwrap();
    let header: Spec = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(header.seed, 99);
    for ev in [
        "\"ev\":\"send\"",
        "\"ev\":\"deliver\"",
        "\"ev\":\"timer\"",
        "\"ev\":\"status\"",
        "\"ev\":\"fault\"",
        "\"ev\":\"calm\"",
        "\"ev\":\"settled\"",
    ] {
        assert!(text.contains(ev), "trace lacks {ev}");
    }
}

#[test]
fn a_correct_protocol_survives_random_fault_storms() {
    for seed in 0..150 {
        let plan = RandomFaults::default().generate(seed, 5);
        let out = run::<CorrectBeacon>(Spec::new("beacon", 5, seed, plan));
        assert_eq!(out.violation, None, "seed {seed}");
    }
}

#[test]
fn self_crowning_nodes_break_unique_leader_at_once() {
    let out = run::<SelfCrowning>(Spec::new("self-crowning", 3, 5, Plan::calm()));
    let v = out
        .violation
        .expect("two self-crowned leaders of one election must be caught");
    eprintln!("caught: {v}");
    assert_eq!(v.invariant, Invariant::UniqueLeader);
    assert_eq!(v.seed, 5);
    assert_eq!(v.time, 0);
    assert!(v.to_string().contains("seed 5"));
}

#[test]
fn a_protocol_that_never_forgets_a_dead_leader_is_caught() {
    let plan = Plan {
        network: Network::default(),
        faults: vec![at(300_000, Fault::Crash { node: 3 })],
    };
    let out = run::<BrokenBeacon>(Spec::new("beacon-never-forgets", 4, 11, plan.clone()));
    let v = out
        .violation
        .expect("followers of a dead leader must fail liveness");
    eprintln!("caught: {v}");
    assert_eq!(v.invariant, Invariant::Liveness);
    // The correct variant passes the same plan.
    assert_eq!(
        run::<CorrectBeacon>(Spec::new("beacon", 4, 11, plan)).violation,
        None
    );
}

#[test]
fn lossy_network_loses_and_duplicates() {
    let plan = Plan {
        network: Network {
            min_latency_us: 1_000,
            max_latency_us: 30_000,
            loss: 0.3,
            duplicate: 0.2,
        },
        faults: vec![at(1_000_000, Fault::Heal)],
    };
    let out = run::<CorrectBeacon>(Spec::new("beacon", 4, 3, plan));
    assert_eq!(out.violation, None);
    let s = &out.stats;
    let sent = s.messages();
    assert!(s.lost > sent / 10 && s.duplicated > 0, "{s:?}");
}

#[test]
fn a_link_network_applies_to_that_direction_only() {
    let lossy = Network {
        min_latency_us: 1_000,
        max_latency_us: 1_000,
        loss: 1.0,
        duplicate: 0.0,
    };
    let plan = Plan {
        network: Network::default(),
        faults: vec![
            at(
                0,
                Fault::Link {
                    from: 0,
                    to: 1,
                    network: lossy,
                },
            ),
            at(1_000_000, Fault::Heal),
        ],
    };
    let spec = Spec::new("beacon", 2, 4, plan);
    let (bytes, _) = traced::<CorrectBeacon>(spec);
    let text = String::from_utf8(bytes).unwrap();
    let lost = |from: u32, to: u32| {
        text.lines()
            .filter(|l| l.contains("\"reason\":\"lost\""))
            .filter(|l| l.contains(&format!("\"from\":{from},\"to\":{to},")))
            .count()
    };
    assert!(
        lost(0, 1) > 10,
        "0 -> 1 should lose everything until the calm"
    );
    assert_eq!(lost(1, 0), 0, "1 -> 0 keeps the default network");
}
