//! Scenario tests of Garcia-Molina's Invitation algorithm through the hand-driven harness.

use election_core::harness::Cluster;
use election_core::invitation::{Invitation, Msg, Timer};
use election_core::{
    Context, GroupId, Input, InputOf, Members, Node, NodeId, Out, Protocol, State,
};
use proptest::prelude::*;

#[path = "support/timing.rs"]
mod timing;
use timing::{TIMING, cluster, config};

#[path = "support/inputs.rs"]
mod inputs;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn bound() -> u64 {
    Invitation::liveness_bound(&config::<Invitation>(), 5)
}

/// A started 5-node cluster that has settled into one group.
fn settled() -> Cluster<Invitation> {
    let mut c = cluster::<Invitation>(5);
    c.start_all();
    c.run_for(bound());
    c
}

fn group_of(c: &Cluster<Invitation>, id: u32) -> GroupId {
    c.status(id).group.expect("a running node has a group")
}

#[test]
fn fresh_start_ends_in_one_group_led_by_the_highest() {
    let mut c = cluster::<Invitation>(5);
    c.start_all();
    // Every node boots as its own singleton group.
    for id in 0..5 {
        assert_eq!(c.status(id).coordinator, Some(NodeId(id)));
        assert_eq!(c.status(id).state, State::Normal);
    }
    assert!(c.check_one_leader().is_err());
    // n4, the top of the table, checks at boot; the others would check only a heartbeat later,
    // but hear n4's AreYouCoordinator first and stay quiet. n4 found four coordinators and, being
    // the highest, did not wait: it invited exactly those four, and the lower ones never merged.
    c.run_for(3 * TIMING.timeout);
    assert_eq!(c.check_one_leader(), Ok(4), "{}", c.describe(&c.live()));
    for kind in [
        "AreYouCoordinator",
        "IAmCoordinator",
        "Invitation",
        "Accept",
        "Ready",
    ] {
        assert_eq!(c.sent(kind), 4, "{kind}: {:?}", c.sent_by_kind());
    }
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(4), "{}", c.describe(&c.live()));
    assert_eq!(group_of(&c, 0).origin, NodeId(4));
    assert_eq!(c.sent("Invitation"), 4);
    assert_eq!(c.sent("Accept"), 4);
    assert_eq!(c.sent("Ready"), 4);
    assert_eq!(c.sent("IAmCoordinator"), 4, "nobody else ever coordinated");
    assert_eq!(c.node(4).unwrap().protocol().up().len(), 4);
    // And it stays so.
    let group = group_of(&c, 2);
    c.run_for(10 * bound());
    assert_eq!(c.check_one_leader(), Ok(4));
    assert_eq!(group_of(&c, 2), group);
}

/// Cold boot costs O(n): only the top of the table checks (n - 1 AreYouCoordinator, n - 1
/// answers), and its one merge costs n - 1 each of Invitation, Accept, Ready and ReadyAck — 6(n - 1)
/// messages, where every node checking for itself cost 2n².
#[test]
fn a_cold_boot_costs_six_messages_per_node() {
    for n in [50u32, 200] {
        let mut c = cluster::<Invitation>(n);
        c.start_all();
        c.run_for(3 * TIMING.timeout);
        assert_eq!(c.check_one_leader(), Ok(n - 1), "n = {n}");
        let m = n as usize - 1;
        for kind in [
            "AreYouCoordinator",
            "IAmCoordinator",
            "Invitation",
            "Accept",
            "Ready",
            "ReadyAck",
        ] {
            assert_eq!(c.sent(kind), m, "{kind} with n = {n}");
        }
        // Every Accept came in at once, so the window closed before the leader's first heartbeat
        // (at H, inside the 3T run): that one is its Check of a merged group, an Alive to each
        // member and nothing else.
        assert_eq!(c.sent("Alive"), m);
        let total: usize = c.sent_by_kind().values().sum();
        assert_eq!(total, 7 * m, "n = {n}: {:?}", c.sent_by_kind());

        // From then on a heartbeat costs n - 1: the leader's Alives, which no member answers
        // (the paper's polls cost 3(n - 1)).
        c.run_for(2 * TIMING.heartbeat);
        c.reset_counts();
        c.run_for(TIMING.heartbeat);
        assert_eq!(c.sent("Alive"), m);
        let total: usize = c.sent_by_kind().values().sum();
        assert_eq!(total, m, "n = {n}: {:?}", c.sent_by_kind());
        assert_eq!(c.check_one_leader(), Ok(n - 1), "n = {n}");
    }
}

/// With the top of the table down, the next one checks a heartbeat after boot, and the others,
/// scheduled one timeout per rank later, hear it first and stay quiet.
#[test]
fn without_the_top_node_the_next_checks_first_and_the_rest_stay_quiet() {
    let mut c = cluster::<Invitation>(5);
    for id in 0..4 {
        c.start(id);
    }
    let config = config::<Invitation>();
    assert_eq!(config.first_check_delay(0), 0);
    assert_eq!(config.first_check_delay(1), TIMING.heartbeat);
    assert_eq!(
        config.first_check_delay(2),
        TIMING.heartbeat + TIMING.timeout
    );
    // Capped at H / T = 2 steps past the heartbeat.
    assert_eq!(
        config.first_check_delay(1000),
        TIMING.heartbeat + 2 * TIMING.timeout
    );
    c.run_for(TIMING.heartbeat - 1);
    assert_eq!(
        c.sent_by_kind().values().sum::<usize>(),
        0,
        "nobody checks early"
    );
    c.run_for(1 + 3 * TIMING.timeout);
    assert_eq!(c.check_one_leader(), Ok(3), "{}", c.describe(&c.live()));
    // n3's Check asks the down n4 too and waits out its timeout for it; its next one (at 2H),
    // of the merged group, asks only n4 and sends its three members an Alive.
    assert_eq!(c.sent("AreYouCoordinator"), 4 + 1, "{:?}", c.sent_by_kind());
    for kind in ["IAmCoordinator", "Invitation", "Accept", "Ready", "Alive"] {
        assert_eq!(c.sent(kind), 3, "{kind}: {:?}", c.sent_by_kind());
    }
}

/// A coordinator that hears a higher one's AreYouCoordinator skips its own Check for a while
/// (the higher one will invite it), but still answers; without news from above it checks again.
#[test]
fn a_coordinator_that_hears_a_higher_check_stays_quiet() {
    let mut c = cluster::<Invitation>(3);
    c.start_all();
    c.partition(&[&[0], &[1, 2]]);
    c.run_for(bound());
    assert_eq!(c.check_group(&[0]), Ok(0));
    // n2 checks n0's side as well (its member n1 gets an Alive), but the partition drops it:
    // n0 checks both every heartbeat.
    c.reset_counts();
    c.run_for(TIMING.heartbeat);
    assert_eq!(c.sent("AreYouCoordinator"), 1 + 2, "{:?}", c.sent_by_kind());
    // Let only n2's Check through to n0: n0 answers, and skips its own next Check.
    c.heal();
    c.cut_one_way(0, 2);
    // Within the first heartbeat n0 may check before n2's Check reaches it (the phases depend
    // on the bound run above); from the next one on it is quiet.
    c.run_for(TIMING.heartbeat);
    c.reset_counts();
    c.run_for(TIMING.heartbeat);
    assert_eq!(
        c.sent("IAmCoordinator"),
        1,
        "n0 answers: {:?}",
        c.sent_by_kind()
    );
    assert_eq!(
        c.sent("AreYouCoordinator"),
        1,
        "only n2 checks: {:?}",
        c.sent_by_kind()
    );
    // Once n0's answers get through, n2 invites it.
    c.heal();
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(2), "{}", c.describe(&c.live()));
}

#[test]
fn the_leader_crashes_and_the_next_one_wins() {
    let mut c = settled();
    c.crash(4);
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(3), "{}", c.describe(&c.live()));
    assert_eq!(c.live(), vec![0, 1, 2, 3]);
}

#[test]
fn a_recovering_higher_node_takes_over_and_gets_a_fresh_group_id() {
    let mut c = settled();
    let before = group_of(&c, 4);
    c.crash(4);
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(3));
    c.recover(4);
    // The persisted counter goes on: the recovered node never reuses a group id.
    let singleton = group_of(&c, 4);
    assert_eq!(singleton.origin, NodeId(4));
    assert!(
        singleton.counter > before.counter,
        "{singleton} after {before}"
    );
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(4), "{}", c.describe(&c.live()));
}

#[test]
fn a_partition_gives_one_group_per_side_and_healing_merges_them() {
    let mut c = settled();
    timing::split_two_three(&mut c);
    assert_ne!(group_of(&c, 0), group_of(&c, 2));

    c.heal();
    c.reset_counts();
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(4), "{}", c.describe(&c.live()));
    // n4's first Alives after the heal reach n0 and n1, which it still counted: they answer
    // that they are no longer its members, and n4 stops counting them. Its next Check finds n1
    // and invites it and its members n2, n3; n1 forwards the invitation to its member n0; four
    // nodes accepted.
    assert_eq!(c.sent("NotMember"), 2, "{:?}", c.sent_by_kind());
    assert_eq!(c.sent("Invitation"), 4);
    assert_eq!(c.sent("Accept"), 4);
    assert_eq!(c.sent("Ready"), 4);
}

#[test]
fn a_three_way_partition_heals_into_one_group() {
    let mut c = settled();
    c.partition(&[&[0], &[1, 3], &[2, 4]]);
    c.run_for(bound());
    assert_eq!(c.check_group(&[0]), Ok(0));
    assert_eq!(c.check_group(&[1, 3]), Ok(3), "{}", c.describe(&c.live()));
    assert_eq!(c.check_group(&[2, 4]), Ok(4));
    c.heal();
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(4), "{}", c.describe(&c.live()));
}

#[test]
fn a_joining_node_starts_alone_and_is_merged() {
    let mut c = settled();
    c.join(5);
    assert_eq!(c.status(5).coordinator, Some(NodeId(5)));
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(5), "{}", c.describe(&c.live()));
    assert_eq!(c.live().len(), 6);
}

#[test]
fn the_leader_leaving_triggers_recovery_without_a_timeout() {
    let mut c = settled();
    let before = c.now();
    c.leave(4);
    // No timer fired and no time passed: every member already formed its own group.
    c.deliver_all();
    assert_eq!(c.now(), before);
    for id in 0..4 {
        let s = c.status(id);
        assert_eq!((s.state, s.coordinator), (State::Normal, Some(NodeId(id))));
    }
    c.run_for(bound());
    assert_eq!(c.check_one_leader(), Ok(3), "{}", c.describe(&c.live()));

    // A crash, by contrast, is only noticed when the coordinator's Alives stop.
    let mut c = settled();
    c.crash(4);
    c.deliver_all();
    assert_eq!(c.status(2).coordinator, Some(NodeId(4)));
    assert!(c.fire(2, Timer::Silence));
    assert_eq!(c.status(2).coordinator, Some(NodeId(2)));
}

/// A restarted coordinator checks at once, and its Check tells its old members that it no longer
/// counts them (the paper's "no" to AreYouThere): they recover on the spot, answer "yes" as
/// singletons, and are merged into its new group, all without a timer.
#[test]
fn a_member_the_coordinator_forgot_is_told_by_its_check_and_recovers() {
    let mut c = settled();
    let before = group_of(&c, 0);
    c.crash(4);
    c.recover(4);
    c.reset_counts();
    let restarted = c.now();
    assert!(
        c.fire(4, Timer::Heartbeat),
        "the top of the table checks at once"
    );
    c.deliver_all();
    assert_eq!(c.now(), restarted);
    assert_eq!(c.sent("AreYouCoordinator"), 4, "{:?}", c.sent_by_kind());
    assert_eq!(c.sent("IAmCoordinator"), 4, "{:?}", c.sent_by_kind());
    assert_eq!(c.check_one_leader(), Ok(4), "{}", c.describe(&c.live()));
    let after = group_of(&c, 0);
    assert!(
        after.origin == NodeId(4) && after != before,
        "{after} after {before}"
    );
}

/// When the leader crashes, the members' silences run out within moments of each other. The
/// first to notice, the highest survivor, ranks itself first (the silent leader does not count)
/// and checks at once; the others, still following the dead leader, say "no", and the checker
/// waits for them, because each tells it "yes" as it recovers. The Check then ends without a
/// timeout, and so does the merge's window (everyone invited accepted): the whole failover is
/// the silence plus message delays.
#[test]
fn a_failover_waits_for_the_silence_and_no_timeout() {
    let mut c = settled();
    c.crash(4);
    let crashed = c.now();
    c.deliver_all();
    assert!(c.fire(3, Timer::Silence), "n3 was watching n4");
    assert_eq!(
        c.deadline(3, &Timer::Heartbeat),
        Some(crashed),
        "n3 ranks first"
    );
    assert!(c.fire(3, Timer::Heartbeat));
    c.deliver_all();
    assert!(c.timer_set(3, &Timer::Reply), "n3 waits for n0..n2");
    for id in [2, 1, 0] {
        assert!(c.fire(id, Timer::Silence), "n{id} was watching n4");
    }
    c.deliver_all();
    assert_eq!(c.now(), crashed, "no timer past the silences fired");
    assert_eq!(c.check_one_leader(), Ok(3), "{}", c.describe(&c.live()));
    assert!(!c.timer_set(3, &Timer::Reply), "{}", c.describe(&c.live()));
    let up: Vec<_> = c.node(3).unwrap().protocol().up().iter().copied().collect();
    assert_eq!(up, [NodeId(0), NodeId(1), NodeId(2)]);
}

/// The accept window closes once every invited node and every member they forwarded the
/// invitation to accepted (a coordinator's Accept says how many it forwarded), and not before.
#[test]
fn the_accept_window_closes_when_every_announced_accept_is_in() {
    for lost in [false, true] {
        let mut c = cluster::<Invitation>(3);
        c.partition(&[&[0, 1], &[2]]);
        c.start_all();
        c.run_for(bound());
        assert_eq!(c.check_group(&[0, 1]), Ok(1), "{}", c.describe(&c.live()));
        c.heal();
        if c.timer_set(2, &Timer::Reply) {
            assert!(
                c.fire(2, Timer::Reply),
                "n2's Check of the cut-off side lapses"
            );
        }
        if lost {
            // n0's "no" and its Accept never reach n2.
            c.cut_one_way(0, 2);
        }
        let start = c.now();
        assert!(c.fire(2, Timer::Heartbeat));
        c.deliver_all();
        if lost {
            assert!(
                c.fire(2, Timer::Reply),
                "n2's Check waits its timeout for n0"
            );
            c.deliver_all();
            assert_eq!(
                c.status(0).coordinator,
                Some(NodeId(2)),
                "n0 accepted via n1"
            );
            assert_eq!(
                c.status(2).state,
                State::Election,
                "n2 still waits for n0's Accept"
            );
            assert!(c.fire(2, Timer::Reply), "the window closes at its timeout");
            c.deliver_all();
        }
        assert_eq!(c.now(), start);
        let up: Vec<_> = c.node(2).unwrap().protocol().up().iter().copied().collect();
        let expected: &[NodeId] = if lost {
            &[NodeId(1)]
        } else {
            &[NodeId(0), NodeId(1)]
        };
        assert_eq!(up, expected, "{}", c.describe(&c.live()));
        assert_eq!(c.status(2).state, State::Normal);
        assert!(!c.timer_set(2, &Timer::Reply), "{}", c.describe(&c.live()));
    }
}

fn group(origin: u32, counter: u64) -> GroupId {
    GroupId {
        origin: NodeId(origin),
        counter,
    }
}

/// An arbitrary Invitation input to node n2 of a 5-node view, about a few groups.
fn any_input() -> impl Strategy<Value = InputOf<Invitation>> {
    let any_group = (0u32..5, 0u64..4).prop_map(|(o, n)| group(o, n));
    let any_msg = prop_oneof![
        Just(Msg::AreYouCoordinator),
        Just(Msg::IAmCoordinator),
        (0u32..5).prop_map(|id| Msg::NotCoordinator {
            follows: NodeId(id)
        }),
        (any_group.clone(), any::<bool>()).prop_map(|(group, check)| Msg::Alive { group, check }),
        any_group.clone().prop_map(|group| Msg::NotMember { group }),
        any_group
            .clone()
            .prop_map(|group| Msg::Invitation { group }),
        (any_group.clone(), 0u32..3)
            .prop_map(|(group, forwarded)| Msg::Accept { group, forwarded }),
        any_group.clone().prop_map(|group| Msg::Ready { group }),
        any_group.prop_map(|group| Msg::ReadyAck { group }),
    ];
    inputs::any_input::<Invitation>(
        any_msg,
        prop_oneof![
            Just(Timer::Heartbeat),
            Just(Timer::Reply),
            Just(Timer::MergeWait),
            Just(Timer::Silence)
        ],
    )
}

/// A fault or a stretch of steps for the cluster property test.
#[derive(Clone, Debug)]
enum Action {
    Crash(u32),
    Recover(u32),
    Split(u32),
    Heal,
    Steps(usize),
}

fn any_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0u32..5).prop_map(Action::Crash),
        (0u32..5).prop_map(Action::Recover),
        (1u32..5).prop_map(Action::Split),
        Just(Action::Heal),
        (1usize..80).prop_map(Action::Steps),
    ]
}

/// Garcia-Molina's Assertion 1 for Invitation: nodes in Normal or Reorganization with the same
/// group id have the same coordinator.
fn assertion_1(c: &Cluster<Invitation>) -> Result<(), String> {
    let settled: Vec<_> = c
        .live()
        .into_iter()
        .map(|id| c.status(id))
        .filter(|s| matches!(s.state, State::Normal | State::Reorganization))
        .collect();
    for a in &settled {
        for b in &settled {
            if a.group == b.group && a.coordinator != b.coordinator {
                return Err(c.describe(&c.live()));
            }
        }
    }
    Ok(())
}

proptest! {
    /// Invariant: any sequence of messages (stale, duplicated, from anyone, about any group),
    /// timers and leaves is handled without a panic, and a node always names a group whose
    /// origin is its coordinator.
    #[test]
    fn any_input_sequence_is_handled(inputs in proptest::collection::vec(any_input(), 0..200)) {
        let persisted = Some(3u64.to_le_bytes().to_vec());
        inputs::feed::<Invitation>(&config::<Invitation>(), persisted, inputs, |input, s, _| {
            if input.is_none() {
                prop_assert_eq!(s.group, Some(group(2, 4)), "the persisted counter goes on");
            }
            prop_assert_eq!(s.coordinator, s.group.map(|g| g.origin), "{:?}", s);
            Ok(())
        })?;
    }

    /// Invariants under crashes, recoveries and partitions with prompt delivery: Assertion 1
    /// holds after every single delivery or timer, and once every fault is repaired all nodes
    /// form one group within the liveness bound.
    #[test]
    fn faults_keep_assertion_1_and_end_in_one_group(
        actions in proptest::collection::vec(any_action(), 1..30),
    ) {
        let mut c = cluster::<Invitation>(5);
        c.start_all();
        for action in actions {
            match action {
                Action::Crash(id) => c.crash(id),
                Action::Recover(id) => c.recover(id),
                Action::Split(at) => {
                    let (low, high): (Vec<u32>, Vec<u32>) = (0..5).partition(|&id| id < at);
                    c.partition(&[&low, &high]);
                }
                Action::Heal => c.heal(),
                Action::Steps(k) => {
                    for _ in 0..k {
                        if c.deliver_next().is_none() {
                            c.fire_next();
                        }
                        prop_assert_eq!(assertion_1(&c), Ok(()));
                    }
                }
            }
        }
        c.heal();
        c.run_for(bound());
        if !c.live().is_empty() {
            prop_assert!(c.check_one_leader().is_ok(), "{}", c.describe(&c.live()));
        }
    }
}

/// Unreadable persisted bytes must not restart the group counter at 0, which would hand out
/// group ids this node already used: the counter continues from a random point far above any
/// counter a node reaches by counting.
#[test]
fn unreadable_persisted_state_does_not_reuse_group_ids() {
    let members = Members::first(3);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut counters = Vec::new();
    for bytes in [vec![1, 2, 3], vec![0; 9], Vec::new()] {
        let mut node = Node::new(Invitation::new(&config::<Invitation>()));
        let mut out = Out::new();
        let mut cx = Context {
            id: NodeId(1),
            now: 0,
            members: &members,
            rng: &mut rng,
        };
        node.handle(
            &mut cx,
            Input::Start {
                persisted: Some(bytes),
            },
            &mut out,
        );
        let counter = node.status().group.unwrap().counter;
        assert!(counter > 1 << 63, "counter {counter} restarted low");
        counters.push(counter);
    }
    counters.dedup();
    assert_eq!(
        counters.len(),
        3,
        "each unreadable boot draws its own counter"
    );
}
