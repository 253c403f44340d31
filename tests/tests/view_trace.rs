//! The view vocabulary against the current simulator: every trace it writes reads back, and the
//! figures the view derives (messages, elections, arrows, vector clocks) agree with the
//! simulator's own statistics.

use election_sim::{Invariant, Plan, RandomFaults, Spec};
use election_tests::traces::{UsurpingInvitation, run_of, trace_of};
use election_view::{
    EventKind, Measures, ReadOptions, check_shiviz, dominated_by, read_sim_trace, render_shiviz,
    vector_clocks,
};

const ALGORITHMS: [&str; 4] = ["bully", "invitation", "async-bully", "ring"];

#[test]
fn every_simulated_run_reads_back_and_agrees_with_the_simulators_statistics() {
    for algorithm in ALGORITHMS {
        for seed in 0..12 {
            let nodes = 3 + (seed % 4) as u32;
            let plan = RandomFaults::default().generate(seed, nodes);
            let (run, outcome) = run_of(Spec::new(algorithm, nodes, seed, plan));
            let at = format!("{algorithm} seed {seed}");
            assert_eq!(outcome.violation, None, "{at}");
            let stats = &outcome.stats;
            let m = Measures::of(&run);
            let sent: std::collections::BTreeMap<String, u64> = stats
                .sent
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect();
            assert_eq!(m.messages, sent, "{at}");
            assert_eq!(m.elections_started, stats.elections_started, "{at}");
            let count =
                |f: fn(&EventKind) -> bool| run.events.iter().filter(|e| f(&e.kind)).count() as u64;
            assert_eq!(
                count(|k| matches!(k, EventKind::Deliver { .. })),
                stats.delivered
            );
            assert_eq!(
                count(|k| matches!(k, EventKind::Drop { .. })),
                stats.lost + stats.blocked + stats.to_down + stats.not_member,
                "{at}"
            );
            assert_eq!(
                count(|k| matches!(k, EventKind::Duplicate { .. })),
                stats.duplicated
            );
            assert_eq!(
                count(|k| matches!(k, EventKind::Timer { .. })),
                stats.timers
            );
            assert_eq!(
                count(|k| matches!(k, EventKind::Status { .. })),
                stats.status_changes
            );
            // A settled run ends with the leader the simulator settled on, agreed by all.
            assert_eq!(m.final_leader, stats.leader, "{at}");
            // Vector clocks: a receive follows its send.
            let stamps = vector_clocks(&run);
            let mut at_send = std::collections::BTreeMap::new();
            for s in &stamps {
                match &run.events[s.event].kind {
                    EventKind::Send { id, .. } => {
                        at_send.insert(*id, s.clock.clone());
                    }
                    EventKind::Deliver { id, .. } => {
                        assert!(dominated_by(&at_send[id], &s.clock), "{at}: message {id}");
                    }
                    _ => {}
                }
            }
            check_shiviz(&render_shiviz(&run)).unwrap_or_else(|e| panic!("{at}: {e}"));
        }
    }
}

#[test]
fn a_violation_in_the_trace_is_the_runs_violation() {
    let spec = Spec::new("invitation", 5, 1, Plan::calm());
    let (bytes, outcome) = trace_of::<UsurpingInvitation>(spec);
    let violation = outcome.violation.expect("the usurper is caught");
    assert!(matches!(
        violation.invariant,
        Invariant::UniqueLeader | Invariant::Agreement
    ));
    let run = read_sim_trace(bytes.as_slice(), &ReadOptions::default()).unwrap();
    let v = run
        .header
        .violation
        .clone()
        .expect("the header holds the violation");
    assert_eq!(v.time, violation.time);
    assert_eq!(v.invariant, violation.invariant.to_string());
    let nodes: Vec<u32> = violation.nodes.iter().map(|n| n.0).collect();
    assert_eq!(v.nodes, nodes);
    assert_eq!(v.detail, violation.detail);
    assert!(v.nodes.contains(&1), "the usurper is named: {v:?}");
    // The run stops there.
    assert!(run.events.iter().all(|e| e.t <= v.time));
    let events = check_shiviz(&render_shiviz(&run)).unwrap();
    assert!(events.last().unwrap().text.contains("VIOLATION"));
}
