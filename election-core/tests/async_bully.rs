//! Scenario and property tests of Stoller's asynchronous Bully through the hand-driven harness.

use std::collections::BTreeSet;

use election_core::async_bully::{AsyncBully, Stage, Timer};
use election_core::harness::Cluster;
use election_core::{GroupId, NodeId, Protocol, State};
use proptest::prelude::*;

#[path = "support/timing.rs"]
mod timing;
use timing::{
    HEARTBEAT, TIMEOUT, TIMING, booted_at_once, cluster, config, settled, split_two_three,
};

#[test]
fn fresh_start_elects_the_highest_with_one_halt_ack_and_ldr_per_lower_node() {
    // The highest has no one to wait for: stage 2 at once, no timer needed.
    let c = booted_at_once::<AsyncBully>(5);
    assert_eq!(c.sent("Halt"), 4);
    assert_eq!(c.sent("Ack"), 4);
    assert_eq!(c.sent("Ldr"), 4);
    assert_eq!(
        c.sent_by_kind().values().sum::<usize>(),
        12,
        "{:?}",
        c.sent_by_kind()
    );
    let s = c.status(2);
    assert_eq!((s.state, s.phase), (State::Normal, "Norm"));
    assert_eq!(
        s.group,
        Some(GroupId {
            origin: NodeId(4),
            counter: 0
        })
    );
    assert_eq!(c.node(4).unwrap().protocol().acks().len(), 4);
}

#[test]
fn leader_crash_second_highest_halts_the_n_minus_2_others() {
    let mut c = settled::<AsyncBully>(5);
    c.crash(4);
    c.reset_counts();
    c.step_until(c.liveness_bound(), |c| c.status(3).is_leader(NodeId(3)))
        .unwrap();
    // Stage 2 of node 3 halts 2, 1, 0 and tells each of them it leads.
    assert_eq!(c.sent("Halt"), 3);
    assert_eq!(c.sent("Ack"), 3);
    assert_eq!(c.sent("Ldr"), 3);
    assert_eq!(c.check_one_leader(), Ok(3));
    assert_eq!(c.settle(), Ok(3));
}

/// A follower suspects its leader exactly `leader_silence` after the last `Ldr` heartbeat it
/// heard: no sooner (a live leader's heartbeats are never that far apart) and no later (a timer,
/// not the next tick, notices).
#[test]
fn detection_takes_a_silent_window_not_less() {
    let mut c = cluster::<AsyncBully>(3);
    c.start_all();
    assert_eq!(c.settle(), Ok(2));
    // Crash the leader right after its Ldr heartbeat reached node 1.
    while c.fire_next() != Some((NodeId(2), Timer::Tick)) {}
    c.deliver_all();
    let crashed_at = c.now();
    c.crash(2);
    c.step_until(c.liveness_bound(), |c| {
        c.status(1).coordinator != Some(NodeId(2))
    })
    .unwrap();
    let waited = c.now() - crashed_at;
    let window = config::<AsyncBully>().leader_silence();
    assert_eq!(
        waited, window,
        "suspected after {waited}us, window {window}us"
    );
    assert!(
        window > HEARTBEAT + TIMING.max_delay(),
        "the window covers a heartbeat and a delay"
    );
}

#[test]
fn a_recovering_higher_node_takes_over_with_a_new_incarnation() {
    let mut c = cluster::<AsyncBully>(5);
    c.start_all();
    c.settle().unwrap();
    let first = c.status(4).group.unwrap();
    c.crash(4);
    assert_eq!(c.settle(), Ok(3));
    c.recover(4);
    c.deliver_all();
    // No timer needed: the highest node halts everyone as soon as it boots.
    assert_eq!(c.check_one_leader(), Ok(4));
    let s = c.status(4);
    assert_eq!(s.incarnation, Some(1));
    let second = s.group.unwrap();
    assert_eq!(second.origin, NodeId(4));
    assert_ne!(second, first);
    assert_eq!(c.status(0).group, Some(second));
}

#[test]
fn incarnation_survives_restarts_and_election_ids_never_repeat() {
    let mut c = cluster::<AsyncBully>(3);
    let mut seen = BTreeSet::new();
    for boot in 0..4u64 {
        if boot == 0 {
            c.start_all();
        } else {
            c.crash(1);
            c.recover(1);
        }
        assert_eq!(c.status(1).incarnation, Some(boot));
        // Each boot runs elections on node 1 (Elec1 until node 2 halts it); record its ids.
        assert!(
            seen.insert(c.status(1).group.unwrap()),
            "election id repeated at boot {boot}"
        );
        c.settle().unwrap();
        // Force another election of node 1 in this incarnation: its leader leaves the picture.
        c.partition(&[&[0, 1], &[2]]);
        c.step_until(c.liveness_bound(), |c| c.status(1).is_leader(NodeId(1)))
            .unwrap();
        let own = c.status(1).group.unwrap();
        assert_eq!(own.origin, NodeId(1));
        assert!(
            seen.insert(own),
            "election id {own} repeated at boot {boot}"
        );
        c.heal();
        assert_eq!(c.settle(), Ok(2));
    }
}

#[test]
fn partition_gives_one_leader_per_side_and_the_highest_absorbs_after_healing() {
    let mut c = settled::<AsyncBully>(5);
    split_two_three(&mut c);
    let low = c.status(0).group.unwrap();
    assert_eq!(low.origin, NodeId(1));
    assert_ne!(low, c.status(2).group.unwrap());
    c.heal();
    // The higher leader's next round of Ldr reaches the other side: one tick, no new election.
    let high = c.status(4).group;
    c.run_for(HEARTBEAT + 1);
    assert_eq!(c.check_one_leader(), Ok(4));
    assert_eq!(c.status(1).group, high);
    assert_eq!(c.settle(), Ok(4));
}

#[test]
fn a_higher_joiner_takes_over_without_waiting_for_a_timeout() {
    let mut c = cluster::<AsyncBully>(5);
    c.start_all();
    c.settle().unwrap();
    let t = c.now();
    c.join(5);
    c.deliver_all();
    assert_eq!(c.now(), t);
    assert_eq!(c.check_one_leader(), Ok(5));
    assert_eq!(c.settle(), Ok(5));
}

#[test]
fn a_lower_joiner_is_absorbed_by_the_leaders_normq() {
    let mut c = Cluster::<AsyncBully>::new(config::<AsyncBully>(), 0).unwrap();
    for id in [3, 5, 8] {
        c.join(id);
    }
    assert_eq!(c.settle(), Ok(8));
    c.reset_counts();
    c.join(1);
    c.deliver_all();
    assert_eq!(c.status(1).phase, "Elec1", "it waits for the higher ones");
    c.run_for(HEARTBEAT);
    assert_eq!(c.sent("NormQ"), 1);
    assert_eq!(c.sent("NotNorm"), 1);
    assert_eq!(c.check_one_leader(), Ok(8));
}

#[test]
fn graceful_leave_of_the_leader_starts_an_election_at_once() {
    let mut c = cluster::<AsyncBully>(5);
    c.start_all();
    c.settle().unwrap();
    let t = c.now();
    c.leave(4);
    c.deliver_all();
    assert_eq!(c.now(), t, "no timer may be needed");
    assert_eq!(c.check_one_leader(), Ok(3));
    assert!(!c.timer_set(3, &Timer::AckTimeout));
    assert_eq!(c.settle(), Ok(3));
}

#[test]
fn stage_two_skips_a_crashed_process_after_one_ack_timeout() {
    let mut c = cluster::<AsyncBully>(5);
    c.start_all();
    c.settle().unwrap();
    c.crash(2);
    c.crash(4);
    c.step_until(c.liveness_bound(), |c| {
        matches!(c.node(3).unwrap().protocol().stage(), Stage::Elec2 { .. })
    })
    .unwrap();
    let t = c.now();
    c.step_until(c.liveness_bound(), |c| c.status(3).is_leader(NodeId(3)))
        .unwrap();
    assert_eq!(c.now() - t, TIMEOUT, "one AckTimeout for node 2");
    assert_eq!(c.check_one_leader(), Ok(3));
    assert_eq!(
        c.node(3)
            .unwrap()
            .protocol()
            .acks()
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        vec![NodeId(0), NodeId(1)]
    );
}

/// A follower that still trusts the crashed leader refuses the first detector's Halt, and the
/// halter moves on at once (no AckTimeout); the refusers join at the new leader's `NormQ` once
/// their own silence timers fire.
#[test]
fn refused_halts_are_skipped_at_once() {
    let mut c = settled::<AsyncBully>(5);
    c.crash(4);
    // Node 3 notices the silence first; the others still follow 4.
    assert!(c.fire(3, Timer::LeaderSilent));
    let t = c.now();
    c.reset_counts();
    c.deliver_all();
    assert_eq!(c.now(), t, "no timer was needed");
    assert_eq!(c.sent("Refuse"), 3);
    assert_eq!(c.sent("Ack"), 0);
    assert!(c.status(3).is_leader(NodeId(3)));
    c.step_until(
        config::<AsyncBully>().leader_silence() + 2 * HEARTBEAT,
        |c| c.check_one_leader() == Ok(3),
    )
    .unwrap();
}

#[test]
fn lost_acks_and_ldrs_are_repaired() {
    let mut c = cluster::<AsyncBully>(4);
    c.start_all();
    // Drop everything node 1 says: its Ack is lost, so node 3 skips it.
    c.cut_one_way(1, 3);
    c.run_for(c.liveness_bound());
    assert!(!c.node(3).unwrap().protocol().acks().contains(&NodeId(1)));
    c.heal();
    assert_eq!(c.settle(), Ok(3));
    assert!(c.node(3).unwrap().protocol().acks().contains(&NodeId(1)));
}

#[test]
fn corrupt_persisted_bytes_do_not_panic() {
    use election_core::{Context, Input, Members, Node, Out};
    use rand::SeedableRng;
    let members = Members::first(2);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut cx = Context {
        id: NodeId(1),
        now: 0,
        members: &members,
        rng: &mut rng,
    };
    let mut node = Node::new(AsyncBully::new(&config::<AsyncBully>()));
    let mut out = Out::new();
    node.handle(
        &mut cx,
        Input::Start {
            persisted: Some(vec![1, 2, 3]),
        },
        &mut out,
    );
    assert!(node.status().incarnation.unwrap() >= 1 << 31);
}

#[path = "support/faults.rs"]
mod faults;
use faults::Mix;

fn fault(n: u32) -> impl Strategy<Value = faults::Fault<Timer>> {
    faults::fault(
        n,
        Mix {
            one_way: true,
            fire: None,
            longest_run: 3 * HEARTBEAT,
            most_deliveries: 20,
        },
    )
}

/// Stoller's safety and Garcia-Molina's Assertion 1 at one instant: no two processes lead the same
/// election, and all processes waiting or Normal in one election follow its origin.
fn check_safety(c: &Cluster<AsyncBully>) -> Result<(), String> {
    let mut leaders = BTreeSet::new();
    for id in c.live() {
        let s = c.status(id);
        if s.is_leader(NodeId(id)) && !leaders.insert(s.group) {
            return Err(format!(
                "two Normal leaders of {:?}: {}",
                s.group,
                c.describe(&c.live())
            ));
        }
        if matches!(s.state, State::Normal | State::Reorganization)
            && s.coordinator != s.group.map(|g| g.origin)
        {
            return Err(format!(
                "n{id} follows someone other than its election's origin: {}",
                c.describe(&c.live())
            ));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Invariants: (1) safety at every step under crashes, recoveries, partitions, one-way cuts
    /// and arbitrary interleavings; (2) liveness and validity: within `liveness_bound` of the last
    /// fault, every live node is Normal and follows the highest live node.
    #[test]
    fn safe_always_and_the_highest_live_node_leads_within_the_bound(
        faults in proptest::collection::vec(fault(5), 0..40)
    ) {
        let mut c = cluster::<AsyncBully>(5);
        prop_assert_eq!(
            faults::highest_leads_after(&mut c, faults, HEARTBEAT / 4, check_safety),
            Ok(())
        );
    }
}

/// One forged `Halt` "from" the leader must not hold a follower out of `Normal` while the
/// leader lives: with a counter far beyond anything the leader produced (2⁶⁴−1) it is refused
/// and the follower rejoins through a new election at once; with a plausible counter (an
/// election nobody leads) the follower gives up waiting after `wait_for_ldr` and rejoins.
#[test]
fn a_single_forged_halt_cannot_keep_a_follower_out_of_normal() {
    use election_core::async_bully::Msg;
    for far_ahead in [true, false] {
        let mut c = cluster::<AsyncBully>(4);
        c.start_all();
        assert_eq!(c.settle(), Ok(3));
        let real = c.status(0).group.unwrap();
        let forged = GroupId {
            origin: NodeId(3),
            counter: if far_ahead {
                u64::MAX
            } else {
                real.counter + 1
            },
        };
        c.inject(3, 0, Msg::Halt(forged));
        c.deliver_all();
        let wait = config::<AsyncBully>().wait_for_ldr(4);
        // Back in the leader's real election within the wait, a heartbeat and a round trip.
        c.run_for(wait + HEARTBEAT + TIMEOUT);
        assert_eq!(
            c.check_one_leader(),
            Ok(3),
            "far ahead {far_ahead}, counter {:?}: {}",
            forged.counter,
            c.describe(&c.live())
        );
        assert_eq!(
            c.status(0).group,
            Some(real),
            "rejoined the leader's election"
        );
    }
}
