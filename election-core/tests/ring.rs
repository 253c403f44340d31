//! Scenario and property tests of the Chang–Roberts ring through the hand-driven harness.

use election_core::ring::{Ring, Timer};
use election_core::{Node, Protocol, Time, validated};
use proptest::prelude::*;

#[path = "support/timing.rs"]
mod timing;
use timing::{HEARTBEAT, booted_at_once, cluster, config, settled, split_two_three};

#[test]
fn fresh_start_elects_the_highest_with_exact_message_counts() {
    let c = booted_at_once::<Ring>(5);
    // Every node initiates; each candidacy but the highest dies at the next (higher) node, the
    // highest goes round once: n + (n - 1). The announcement stops before the winner: n - 1.
    assert_eq!(c.sent("Election"), 9);
    assert_eq!(c.sent("Coordinator"), 4);
    assert_eq!(c.sent("Ack"), 13, "one ack per hop");
    assert_eq!(c.sent_by_kind().len(), 3, "{:?}", c.sent_by_kind());
    assert_eq!(c.status(4).phase, "Leader");
    assert_eq!(c.status(0).phase, "Follower");
}

#[test]
fn one_initiator_reaching_the_live_leader_costs_d_hops_and_one_announcement_lap() {
    for n in [3u32, 5, 8] {
        for initiator in 0..n - 1 {
            let mut c = cluster::<Ring>(n);
            c.start_all();
            c.deliver_all();
            c.reset_counts();
            // A restarting node initiates alone; everyone else is a non-participant. Each hop
            // replaces the candidate by the higher receiver until the leader, which already
            // leads: it announces instead of running the election again.
            c.recover(initiator);
            c.deliver_all();
            assert_eq!(c.check_one_leader(), Ok(n - 1));
            let distance = (n - 1 - initiator) as usize;
            assert_eq!(c.sent("Election"), distance, "n={n} initiator={initiator}");
            assert_eq!(
                c.sent("Coordinator"),
                n as usize - 1,
                "n={n} initiator={initiator}"
            );
        }
    }
}

#[test]
fn leader_crash_is_detected_by_its_silence_and_the_dead_node_is_skipped() {
    let mut c = settled::<Ring>(5);
    let crashed_at = c.now();
    c.crash(4);
    c.reset_counts();
    c.step_until(c.liveness_bound(), |c| c.check_one_leader() == Ok(3))
        .unwrap();
    // Every follower heard 4's last Alive at once, so their silences run out at one instant:
    // 0's fires first and its candidacy makes 1, 2 and 3 participants before theirs do. 3, the
    // dead node's predecessor, has already sent its candidacy to 4; when its own silence runs
    // out it passes it on to 0 without waiting for the missing Ack. Hops: 0→1→2→3, 3→4 (not
    // acked), 3→0→1→2→3; the announcement skips 4, known silent: 3→0→1→2.
    assert_eq!(c.sent("Election"), 8);
    assert_eq!(c.sent("Coordinator"), 3);
    assert_eq!(c.sent("Ack"), 10);
    let config = config::<Ring>();
    assert!(
        c.now() - crashed_at <= config.leader_silence(),
        "no hop timeout was waited out: took {} µs, silence {} µs",
        c.now() - crashed_at,
        config.leader_silence()
    );
    assert_eq!(c.settle(), Ok(3));
}

#[test]
fn a_recovering_higher_node_leads_after_it_boots() {
    let mut c = cluster::<Ring>(5);
    c.start_all();
    c.crash(4);
    assert_eq!(c.settle(), Ok(3));
    let t = c.now();
    c.reset_counts();
    c.recover(4);
    c.deliver_all();
    assert_eq!(c.now(), t);
    assert_eq!(c.check_one_leader(), Ok(4));
    assert_eq!(
        c.sent("Election"),
        5,
        "the highest's candidacy goes round once"
    );
    assert_eq!(c.sent("Coordinator"), 4);
    assert_eq!(c.settle(), Ok(4));
}

#[test]
fn a_higher_joiner_becomes_leader_by_the_election_it_starts_on_boot() {
    let mut c = cluster::<Ring>(5);
    c.start_all();
    c.settle().unwrap();
    let t = c.now();
    c.reset_counts();
    c.join(5);
    c.deliver_all();
    assert_eq!(c.now(), t);
    assert_eq!(c.check_one_leader(), Ok(5));
    assert_eq!(c.sent("Election"), 6);
    assert_eq!(c.sent("Coordinator"), 5);
}

#[test]
fn graceful_leave_of_the_leader_starts_an_election_at_once() {
    let mut c = cluster::<Ring>(5);
    c.start_all();
    c.settle().unwrap();
    let t = c.now();
    c.reset_counts();
    c.leave(4);
    c.deliver_all();
    assert_eq!(c.now(), t, "no timeout may be needed");
    assert_eq!(c.check_one_leader(), Ok(3));
    // All four remaining nodes initiate at once: 4 + 3 Election hops, 3 announcements.
    assert_eq!(c.sent("Election"), 7);
    assert_eq!(c.sent("Coordinator"), 3);
    for id in c.live() {
        assert!(
            !c.timer_set(id, &Timer::HopTimeout),
            "n{id} waits for an ack"
        );
    }
}

#[test]
fn after_a_graceful_leave_the_next_node_is_the_one_after_it() {
    let mut c = cluster::<Ring>(5);
    c.start_all();
    c.settle().unwrap();
    c.leave(2);
    let t = c.now();
    c.reset_counts();
    c.recover(0);
    c.deliver_all();
    assert_eq!(c.now(), t);
    assert_eq!(c.check_one_leader(), Ok(4));
    // Ring 0→1→3→4 (no timeout at 1: it sends to 3 directly), the leader 4 announces.
    assert_eq!(c.sent("Election"), 3);
    assert_eq!(c.sent("Coordinator"), 3);
}

#[test]
fn a_hop_waiting_on_a_node_that_leaves_goes_on_at_once() {
    let mut c = cluster::<Ring>(5);
    c.start_all();
    c.settle().unwrap();
    c.crash(4);
    c.recover(3);
    c.deliver_all();
    assert!(
        c.timer_set(3, &Timer::HopTimeout),
        "3's hop to the dead 4 is pending"
    );
    let t = c.now();
    c.leave(4);
    c.deliver_all();
    assert_eq!(c.now(), t);
    assert_eq!(c.check_one_leader(), Ok(3));
}

#[test]
fn partition_sides_elect_their_own_and_the_higher_leader_unites_the_ring() {
    let mut c = settled::<Ring>(5);
    split_two_three(&mut c);
    c.heal();
    // The next announcement lap of 4 converts the other side.
    c.run_for(config::<Ring>().announce_every(5) + config::<Ring>().lap(5));
    assert_eq!(c.check_one_leader(), Ok(4));
    assert_eq!(c.settle(), Ok(4));
}

#[test]
fn a_restarted_leaders_laps_pass_nodes_that_saw_higher_laps_before() {
    let mut c = settled::<Ring>(5);
    c.run_for(3 * config::<Ring>().announce_every(5));
    // Leader 4 restarts; node 0 misses its election and first announcement and still follows
    // the old incarnation's (higher) lap numbers.
    c.cut_one_way(4, 0);
    c.recover(4);
    c.deliver_all();
    assert!(c.fire(4, Timer::HopTimeout), "election hop to 0 not acked");
    c.deliver_all();
    // The announcement skips 0, found silent in this election, and the mark ends with it.
    assert!(
        !c.fire(4, Timer::HopTimeout),
        "announcement sent to the node found silent"
    );
    assert_eq!(c.check_one_leader(), Ok(4));
    c.heal();
    c.reset_counts();
    assert!(c.fire(4, Timer::Announce));
    c.deliver_all();
    assert_eq!(
        c.sent("Coordinator"),
        4,
        "the new lap goes round the whole ring"
    );
}

#[test]
fn a_lone_node_leads_itself() {
    let c = booted_at_once::<Ring>(1);
    assert_eq!(c.sent_by_kind().values().sum::<usize>(), 0);
}

#[test]
fn two_thousand_node_ring_elects_with_linear_messages_and_constant_state() {
    let n = 2_000u32;
    let c = booted_at_once::<Ring>(n);
    assert_eq!(c.sent("Election"), 2 * n as usize - 1);
    assert_eq!(c.sent("Coordinator"), n as usize - 1);
    // The ring state has no heap parts (no per-peer data), so this is all a node holds.
    let size = std::mem::size_of::<Node<Ring>>();
    assert!(size <= 256, "a ring node takes {size} bytes");
    // On a large ring the leader re-announces once per lap, not every `announce`.
    assert_eq!(
        config::<Ring>().announce_every(n as usize),
        config::<Ring>().lap(n as usize)
    );
    assert_eq!(
        config::<Ring>().announce_every(5),
        10 * config::<Ring>().timing.heartbeat
    );
}

#[test]
fn invalid_configuration_is_rejected_with_the_field_named() {
    let pairs = [("announce_heartbeats".to_string(), "0".to_string())];
    let bad = config::<Ring>().with_options(Ring::NAME, &pairs).unwrap();
    let e = validated::<Ring>(bad).unwrap_err();
    assert_eq!(e.field, "announce_heartbeats");
    assert!(e.to_string().contains("ring"), "{e}");
}

#[test]
fn liveness_bound_grows_with_the_ring() {
    let c = config::<Ring>();
    assert!(Ring::liveness_bound(&c, 1_000) > Ring::liveness_bound(&c, 10));
    assert!(Ring::liveness_bound(&c, 100) >= 10 * c.lap(100));
}

#[path = "support/faults.rs"]
mod faults;
use faults::Mix;

fn fault(n: u32) -> impl Strategy<Value = faults::Fault<Timer>> {
    faults::fault(
        n,
        Mix {
            one_way: false,
            fire: None,
            longest_run: 5 * HEARTBEAT,
            most_deliveries: 30,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Invariant (liveness): whatever crashes, recoveries, partitions and interleavings came
    /// before, within `liveness_bound` after the last fault every live node is Normal and follows
    /// one leader — the highest live node, since every election after the faults elects the
    /// highest candidate.
    #[test]
    fn one_leader_within_the_bound_after_any_faults(
        faults in proptest::collection::vec(fault(5), 0..30)
    ) {
        let mut c = cluster::<Ring>(5);
        prop_assert_eq!(
            faults::highest_leads_after(&mut c, faults, Time::MAX, |_| Ok(())),
            Ok(())
        );
    }
}
