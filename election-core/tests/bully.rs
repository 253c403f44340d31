//! Scenario tests of Garcia-Molina's Bully algorithm through the hand-driven harness.

use election_core::bully::{Bully, BullyConfig, BullyOptions, Msg, Timer};
use election_core::harness::Cluster;
use election_core::{InputOf, NodeId, Protocol, State};
use proptest::prelude::*;

#[path = "support/timing.rs"]
mod timing;
use timing::TIMING;

#[path = "support/inputs.rs"]
mod inputs;

fn config(sticky: bool) -> BullyConfig {
    BullyConfig {
        timing: TIMING,
        options: BullyOptions {
            sticky,
            ..BullyOptions::default()
        },
    }
}

fn bound() -> u64 {
    Bully::liveness_bound(&config(false), 5)
}

/// A started 5-node cluster that has settled.
fn settled(sticky: bool) -> Cluster<Bully> {
    let mut c = Cluster::<Bully>::new(config(sticky), 5).unwrap();
    c.start_all();
    c.run_for(bound());
    c
}

#[test]
fn fresh_start_elects_the_highest_without_waiting() {
    let mut c = Cluster::<Bully>::new(config(false), 5).unwrap();
    c.start_all();
    // n4 has no higher node to probe, so it halts the others at once and no timer is needed.
    c.deliver_all();
    assert_eq!(c.now(), 0);
    assert_eq!(c.check_one_leader(), Ok(4), "{}", c.describe(&c.live()));
    assert_eq!(c.sent("NewCoordinator"), 4);
    assert_eq!(c.sent("Ready"), 4);
    // And it stays that way: the checks keep everyone Normal.
    c.run_for(10 * bound());
    assert_eq!(c.check_one_leader(), Ok(4));
    assert_eq!(c.sent("Halt"), 4, "no further election");
}

#[test]
fn leader_crash_elects_the_next_highest() {
    let mut c = settled(false);
    c.crash(4);
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(3), "{}", c.describe(&c.live()));
    c.crash(3);
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(2), "{}", c.describe(&c.live()));
}

/// Best case of the paper: the second-highest node is the one that notices the coordinator's
/// crash, so one election with n-2 Halts and n-2 NewCoordinator announcements settles it. The
/// coordinator's silence counts as the probe of the dead coordinator: the halting starts at once.
#[test]
fn best_case_second_highest_detects_and_sends_n_minus_2_announcements() {
    let mut c = settled(false);
    c.crash(4);
    c.reset_counts();
    assert!(c.fire(3, Timer::Silence), "n3 stops hearing n4's Checks");
    assert_eq!(c.status(3).phase, "Halting", "no probe of n4");
    c.deliver_all();
    assert_eq!(c.check_one_leader(), Ok(3), "{}", c.describe(&c.live()));
    let n = 5;
    assert_eq!(c.sent("AreYouThere"), 0, "no probe");
    assert_eq!(c.sent("Halt"), n - 2);
    assert_eq!(c.sent("NewCoordinator"), n - 2);
    assert_eq!(c.sent("Ready"), n - 2);
    assert_eq!(c.sent("IAmThere"), 0);
}

/// A `Normal` member's wait for the next Check outlasts the longest gap the synchronous model
/// allows between two Checks of a live coordinator: a heartbeat on a clock 10 % slow, plus the
/// longest delay, measured on the member's clock 10 % fast. A shorter wait would let a member
/// take a live coordinator for dead and halt the others beside it (Assertion 1).
#[test]
fn a_member_outwaits_the_slowest_next_check() {
    let mut c = settled(false);
    assert!(c.fire(4, Timer::Heartbeat), "n4 Checks its members");
    c.deliver_all();
    let heard = c.now();
    let wait = c.deadline(0, &Timer::Silence).expect("n0 times n4") - heard;
    let timing = config(false).timing;
    let drift = election_core::Model::SYNCHRONOUS_DRIFT;
    let longest_gap = timing.heartbeat as f64 / (1.0 - drift) + timing.max_delay() as f64;
    assert!(
        wait as f64 >= longest_gap * (1.0 + drift),
        "n0 waits {wait}us for a gap of up to {longest_gap}us real time"
    );
}

/// A member made Normal by Ready hears no Check until the coordinator has every ReadyAck (up
/// to a timeout) and its next heartbeat comes: its first wait for the coordinator's silence
/// covers both and a delay, or it would take a live coordinator for dead.
#[test]
fn a_member_made_normal_by_ready_outwaits_the_rest_of_the_ready_round() {
    let mut c = settled(false);
    c.crash(4);
    assert!(c.fire(3, Timer::Silence), "n3 halts the others");
    while !(c.status(0).state == State::Normal && c.status(0).coordinator == Some(NodeId(3))) {
        c.deliver_next().expect("n3's election reaches n0");
    }
    assert_eq!(
        c.status(3).state,
        State::Reorganization,
        "n3 still awaits ReadyAcks"
    );
    let round_ends = c.deadline(3, &Timer::Reply).expect("n3's Ready round");
    let silence = c.deadline(0, &Timer::Silence).expect("n0 times n3");
    let timing = config(false).timing;
    assert!(
        silence > round_ends + timing.heartbeat + timing.max_delay(),
        "n0 suspects n3 at {silence}us, before n3's round (until {round_ends}us), a \
         heartbeat and a delay"
    );
    c.deliver_all();
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(3), "{}", c.describe(&c.live()));
    assert_eq!(c.sent("Halt"), 4 + 3, "no election after n3's");
}

#[test]
fn a_recovering_higher_node_takes_over() {
    let mut c = settled(false);
    c.crash(4);
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(3));
    c.recover(4);
    c.deliver_all();
    assert_eq!(c.check_one_leader(), Ok(4), "{}", c.describe(&c.live()));
}

#[test]
fn sticky_a_recovering_higher_node_joins_the_running_leader() {
    let mut c = settled(true);
    assert_eq!(c.check_one_leader(), Ok(4), "{}", c.describe(&c.live()));
    c.crash(4);
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(3));
    c.recover(4);
    c.run_for(10 * bound());
    assert_eq!(c.check_one_leader(), Ok(3), "{}", c.describe(&c.live()));
    assert_eq!(c.status(4).coordinator, Some(NodeId(3)));
    // Only when that leader fails does the higher node take over.
    c.crash(3);
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(4), "{}", c.describe(&c.live()));
}

#[test]
fn sticky_boot_joins_a_leader_whose_check_overtakes_its_answer() {
    let mut c = settled(true);
    c.crash(4);
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(3));
    c.reset_counts();
    c.recover(4);
    // n3's periodic Check goes out before n4's probe is answered, so n4 hears AreYouNormal
    // from n3 before n3's IAmThere.
    assert!(c.fire(3, Timer::Heartbeat));
    c.deliver_all();
    assert_eq!(c.check_one_leader(), Ok(3), "{}", c.describe(&c.live()));
    assert_eq!(
        c.sent("Halt"),
        0,
        "the higher node must not force an election"
    );
}

#[test]
fn a_recovering_lower_node_is_brought_back_in() {
    let mut c = settled(false);
    c.crash(1);
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(4));
    c.recover(1);
    assert_eq!(c.status(1).state, State::Election);
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(4), "{}", c.describe(&c.live()));
    assert_eq!(c.live(), vec![0, 1, 2, 3, 4]);
}

#[test]
fn a_joining_higher_node_takes_over_unless_sticky() {
    let mut c = settled(false);
    c.join(5);
    c.deliver_all();
    assert_eq!(c.check_one_leader(), Ok(5), "{}", c.describe(&c.live()));

    let mut c = settled(true);
    c.join(5);
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(4), "{}", c.describe(&c.live()));
    assert_eq!(c.status(5).coordinator, Some(NodeId(4)));
}

#[test]
fn a_lower_node_that_leaves_and_joins_again_is_included() {
    let mut c = settled(false);
    c.leave(0);
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(4));
    c.join(0);
    assert_eq!(c.status(0).state, State::Election);
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(4), "{}", c.describe(&c.live()));
    assert_eq!(c.live(), vec![0, 1, 2, 3, 4]);
}

#[test]
fn the_leader_leaving_triggers_an_election_without_a_timeout() {
    let mut c = settled(false);
    let before = c.now();
    c.leave(4);
    // No timer fires: the members learn of the leave and elect at once.
    c.deliver_all();
    assert_eq!(c.now(), before);
    assert_eq!(c.check_one_leader(), Ok(3), "{}", c.describe(&c.live()));
    assert!(!c.members().contains(NodeId(4)));

    // A crash, by contrast, is only noticed when a poll times out.
    let mut c = settled(false);
    c.crash(4);
    c.deliver_all();
    assert_eq!(c.status(3).coordinator, Some(NodeId(4)));
}

#[test]
fn a_member_leaving_does_not_disturb_the_leader() {
    let mut c = settled(false);
    c.reset_counts();
    c.leave(2);
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(4));
    assert_eq!(c.sent("Halt"), 0);
}

#[test]
fn each_side_of_a_partition_elects_its_highest_and_the_highest_wins_after_healing() {
    let mut c = settled(false);
    timing::split_two_three(&mut c);
    c.heal();
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(4), "{}", c.describe(&c.live()));
}

/// Every message a Bully node can receive.
const ALL_MSGS: [Msg; 10] = [
    Msg::AreYouThere,
    Msg::IAmThere { leader: false },
    Msg::IAmThere { leader: true },
    Msg::AreYouNormal,
    Msg::NotNormal,
    Msg::Halt,
    Msg::HaltAck,
    Msg::NewCoordinator,
    Msg::NewCoordinatorAck,
    Msg::Ready,
];

/// An arbitrary Bully input to node n2 of a 5-node view.
fn any_input() -> impl Strategy<Value = InputOf<Bully>> {
    inputs::any_input::<Bully>(
        (0..ALL_MSGS.len()).prop_map(|m| ALL_MSGS[m]),
        prop_oneof![
            Just(Timer::Heartbeat),
            Just(Timer::Reply),
            Just(Timer::Wait)
        ],
    )
}

/// A fault or a stretch of steps for the cluster property test.
#[derive(Clone, Debug)]
enum Action {
    Crash(u32),
    Recover(u32),
    Steps(usize),
}

fn any_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0u32..5).prop_map(Action::Crash),
        (0u32..5).prop_map(Action::Recover),
        (1usize..60).prop_map(Action::Steps),
    ]
}

/// Garcia-Molina's Assertion 1: any two nodes in Normal or Reorganization agree on the coordinator.
fn assertion_1(c: &Cluster<Bully>) -> Result<(), String> {
    let mut coordinators = c
        .live()
        .into_iter()
        .map(|id| c.status(id))
        .filter(|s| matches!(s.state, State::Normal | State::Reorganization))
        .map(|s| s.coordinator);
    match coordinators.next() {
        Some(first) if coordinators.any(|other| other != first) => Err(c.describe(&c.live())),
        _ => Ok(()),
    }
}

proptest! {
    /// Invariant: any sequence of messages (stale, duplicated, from anyone), timers and leaves
    /// is handled without a panic, and a node that reports Normal or Reorganization names a
    /// coordinator from its membership view.
    #[test]
    fn any_input_sequence_is_handled(
        sticky: bool,
        inputs in proptest::collection::vec(any_input(), 0..200),
    ) {
        inputs::feed::<Bully>(&config(sticky), None, inputs, |_, s, members| {
            if matches!(s.state, State::Normal | State::Reorganization) {
                let me = inputs::ME;
                prop_assert!(s.coordinator.is_some_and(|c| c == me || members.contains(c)), "{s:?}");
            }
            Ok(())
        })?;
    }

    /// Invariants under crashes and recoveries with prompt delivery (the paper's synchronous
    /// system): Assertion 1 holds after every single delivery or timer, and once the faults stop
    /// the highest live node is the one leader within the liveness bound (without `sticky`).
    #[test]
    fn crashes_and_recoveries_keep_assertion_1_and_end_with_the_highest(
        actions in proptest::collection::vec(any_action(), 1..30),
    ) {
        let mut c = Cluster::<Bully>::new(config(false), 5).unwrap();
        c.start_all();
        for action in actions {
            match action {
                Action::Crash(id) => c.crash(id),
                Action::Recover(id) => c.recover(id),
                Action::Steps(k) => {
                    for _ in 0..k {
                        if c.deliver_next().is_none() {
                            c.fire_next();
                        }
                        prop_assert_eq!(assertion_1(&c), Ok(()));
                    }
                }
            }
            prop_assert_eq!(assertion_1(&c), Ok(()));
        }
        c.run_for(bound());
        if let Some(&highest) = c.live().last() {
            prop_assert_eq!(c.check_one_leader(), Ok(highest));
        }
    }
}
