//! Scenario and property tests of Raft's leader election through the hand-driven harness.
//!
//! The checked runs drive the cluster one input at a time and look after every input at two
//! invariants: *Election Safety* (at most one leader per term, over the whole run) and *one vote
//! per term* (no node grants votes to two candidates of a term, counting its vote for itself;
//! seen both in the nodes' state and in the vote messages that leave them). A deliberately
//! broken Raft that forgets its vote on a crash shows that both checks can fail.

use std::collections::BTreeMap;

use election_core::harness::{Cluster, InFlight};
use election_core::raft::{
    Msg as RaftMsg, Raft, RaftConfig, RaftOptions, Role, Term, Timer as RaftTimer,
};
use election_core::{
    Command, ConfigError, ConfigOf, Context, Input, InputOf, MILLIS, Members, Membership, Node,
    NodeId, Out, Properties, Protocol, State, Status, Time, Timing, validated,
};
use proptest::prelude::*;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const HEARTBEAT: Time = 50 * MILLIS;
const TIMEOUT: Time = 20 * MILLIS;
const TIMING: Timing = Timing {
    heartbeat: HEARTBEAT,
    timeout: TIMEOUT,
};

/// The default configuration: PreVote and CheckQuorum on.
fn config() -> RaftConfig {
    RaftConfig::new(TIMING)
}

fn with(pre_vote: bool, check_quorum: bool) -> RaftConfig {
    RaftConfig {
        timing: TIMING,
        options: RaftOptions {
            pre_vote,
            check_quorum,
        },
    }
}

/// The election timeout base `E` of the test timing (120 ms).
fn e() -> Time {
    config().election_timeout()
}

fn cluster(n: u32) -> Cluster<Raft> {
    Cluster::new(config(), n).unwrap()
}

fn raft<P: Inspect>(c: &Cluster<P>, id: u32) -> &Raft {
    c.node(id).expect("a running node").protocol().raft()
}

fn term(c: &Cluster<Raft>, id: u32) -> Term {
    raft(c, id).term()
}

/// Gives access to the Raft state inside a protocol (Raft itself, or a wrapper around it).
trait Inspect: Protocol<Msg = RaftMsg, Timer = RaftTimer> {
    fn raft(&self) -> &Raft;
}

impl Inspect for Raft {
    fn raft(&self) -> &Raft {
        self
    }
}

/// Records leaders per term and votes per (node, term); the first conflict is a violation.
#[derive(Default)]
struct Observer {
    leaders: BTreeMap<Term, u32>,
    votes: BTreeMap<(u32, Term), u32>,
    violations: Vec<String>,
}

impl Observer {
    fn vote(&mut self, voter: u32, term: Term, candidate: u32) {
        let earlier = *self.votes.entry((voter, term)).or_insert(candidate);
        if earlier != candidate {
            self.violations.push(format!(
                "n{voter} voted for n{earlier} and for n{candidate} in term {term}"
            ));
        }
    }

    /// A message left a node: a granted vote is a vote.
    fn message(&mut self, m: &InFlight<RaftMsg>) {
        if let RaftMsg::RequestVoteReply {
            term,
            granted: true,
        } = m.msg
        {
            self.vote(m.from.0, term, m.to.0);
        }
    }

    /// The nodes' state after an input: leaders of their term, and whom each voted for.
    fn state<P: Inspect>(&mut self, c: &Cluster<P>) {
        for id in c.live() {
            let r = raft(c, id);
            if let Some(v) = r.voted_for() {
                self.vote(id, r.term(), v.0);
            }
            if r.is_leader() {
                let earlier = *self.leaders.entry(r.term()).or_insert(id);
                if earlier != id {
                    self.violations.push(format!(
                        "n{earlier} and n{id} are both leaders of term {}: {}",
                        r.term(),
                        c.describe(&c.live())
                    ));
                }
            }
        }
    }

    /// The first violation seen, if any.
    fn check(&self) -> Result<(), String> {
        self.violations.first().cloned().map_or(Ok(()), Err)
    }
}

/// A cluster driven one input at a time with the observer looking after each.
struct Checked<P: Inspect> {
    c: Cluster<P>,
    obs: Observer,
}

impl<P: Inspect> Checked<P> {
    fn new(config: ConfigOf<P>, n: u32) -> Self {
        let mut checked = Checked {
            c: Cluster::new(config, n).unwrap(),
            obs: Observer::default(),
        };
        checked.c.start_all();
        checked.observe();
        checked
    }

    fn observe(&mut self) {
        self.obs.state(&self.c);
    }

    /// Delivers (or drops) up to `k` messages.
    fn deliver(&mut self, k: usize) {
        for _ in 0..k {
            let Some(m) = self.c.deliver_next() else {
                return;
            };
            self.obs.message(&m);
            self.observe();
        }
    }

    fn deliver_all(&mut self) {
        self.deliver(usize::MAX);
    }

    /// Like `Cluster::run_for`, one input at a time; may end past `duration` by one timer.
    fn run(&mut self, duration: Time) {
        let end = self.c.now() + duration;
        loop {
            self.deliver_all();
            if self.c.now() >= end || self.c.fire_next().is_none() {
                return;
            }
            self.observe();
        }
    }

    /// Fires node `id`'s election timer now, if it is set.
    fn fire_election(&mut self, id: u32) {
        if self.c.fire(id, RaftTimer::Election) {
            self.observe();
        }
    }

    fn crash(&mut self, id: u32) {
        self.c.crash(id);
    }

    fn recover(&mut self, id: u32) {
        self.c.recover(id);
        self.observe();
    }
}

#[test]
fn fresh_start_elects_exactly_one_leader_in_term_one_with_six_messages_per_follower() {
    let mut c = cluster(5);
    c.start_all();
    assert!(
        c.live()
            .iter()
            .all(|&id| c.status(id).state == State::Election)
    );
    // The first election timer to fire wins uncontested: PreVote, RequestVote and the first
    // heartbeat, each to the four others and answered.
    c.fire_next().unwrap();
    c.deliver_all();
    let fired_at = c.now();
    assert!(
        (e()..=2 * e()).contains(&fired_at),
        "first timeout after {fired_at}us"
    );
    let leader = c.check_one_leader().unwrap();
    let leaders: Vec<u32> = c
        .live()
        .into_iter()
        .filter(|&i| raft(&c, i).is_leader())
        .collect();
    assert_eq!(leaders, vec![leader]);
    for kind in [
        "PreVote",
        "PreVoteReply",
        "RequestVote",
        "RequestVoteReply",
        "AppendEntries",
        "AppendEntriesReply",
    ] {
        assert_eq!(c.sent(kind), 4, "{kind}: {:?}", c.sent_by_kind());
    }
    for id in c.live() {
        let s = c.status(id);
        assert_eq!(
            (s.term, s.coordinator, s.group),
            (Some(1), Some(NodeId(leader)), None)
        );
        let phase = if id == leader { "Leader" } else { "Follower" };
        assert_eq!(s.phase, phase);
    }
    // Stable: nobody else campaigns while heartbeats flow.
    c.reset_counts();
    assert_eq!(c.settle(), Ok(leader));
    assert_eq!(term(&c, leader), 1);
    assert_eq!(c.sent("PreVote") + c.sent("RequestVote"), 0);
}

#[test]
fn a_leader_counts_as_normal_only_once_a_majority_answered_its_heartbeat() {
    let mut c = cluster(3);
    c.start_all();
    let first = c.fire_next().unwrap().0.0;
    // Deliver until the first node leads, then hold its heartbeats' answers back.
    while !raft(&c, first).is_leader() {
        c.deliver_next().unwrap();
    }
    let s = c.status(first);
    assert_eq!(
        (s.state, s.coordinator),
        (State::Reorganization, Some(NodeId(first)))
    );
    c.deliver_all();
    assert_eq!(c.status(first).state, State::Normal);
}

#[test]
fn leader_crash_elects_a_new_leader_in_a_higher_term_after_one_timeout() {
    let mut c = cluster(5);
    c.start_all();
    let old = c.settle().unwrap();
    let old_term = term(&c, old);
    // Crash right after a heartbeat round, so the followers' timers start together.
    while c.fire_next() != Some((NodeId(old), RaftTimer::Heartbeat)) {}
    c.deliver_all();
    let crashed_at = c.now();
    c.crash(old);
    c.step_until(2 * e(), |c| c.check_one_leader().is_ok())
        .unwrap();
    let new = c.check_one_leader().unwrap();
    assert_ne!(new, old);
    assert!(term(&c, new) > old_term);
    let took = c.now() - crashed_at;
    assert!((e()..=2 * e()).contains(&took), "new leader after {took}us");
}

#[test]
fn the_majority_side_elects_and_the_minority_side_cannot() {
    let mut c = cluster(5);
    c.start_all();
    let leader = c.settle().unwrap();
    let t = term(&c, leader);
    let mut majority: Vec<u32> = vec![leader];
    majority.extend((0..5).filter(|&i| i != leader).take(2));
    let minority: Vec<u32> = (0..5).filter(|i| !majority.contains(i)).collect();
    c.partition(&[&majority, &minority]);
    c.run_for(Raft::liveness_bound(&config(), 5));
    assert_eq!(
        c.check_group(&majority),
        Ok(leader),
        "the majority keeps its leader"
    );
    for &id in &minority {
        let s = c.status(id);
        assert_eq!(s.state, State::Election, "{}", c.describe(&minority));
        assert_eq!(term(&c, id), t, "PreVote keeps the minority's term");
    }
    // Now cut the leader off with one follower: the other three elect among themselves.
    c.heal();
    c.run_for(HEARTBEAT + 1);
    assert_eq!(c.check_one_leader(), Ok(leader));
    let cut: Vec<u32> = majority[..2].to_vec();
    let rest: Vec<u32> = (0..5).filter(|i| !cut.contains(i)).collect();
    c.partition(&[&cut, &rest]);
    c.run_for(Raft::liveness_bound(&config(), 5));
    let new = c.check_group(&rest).unwrap();
    assert!(term(&c, new) > t);
    assert!(cut.iter().all(|&id| c.status(id).state == State::Election));
    c.heal();
    let healed = c.settle().unwrap();
    assert_eq!(healed, new, "the old leader's side rejoins the new leader");
}

/// Partitions follower `x` away from a settled cluster for ten election timeouts, heals, and
/// returns (the leader and term before, the leader and term after, `x`'s term while cut off).
fn rejoin(config: RaftConfig) -> ((u32, Term), (u32, Term), Term) {
    let mut c = Cluster::new(config, 5).unwrap();
    c.start_all();
    let leader = c.settle().unwrap();
    let before = (leader, term(&c, leader));
    let x = (leader + 1) % 5;
    let rest: Vec<u32> = (0..5).filter(|&i| i != x).collect();
    c.partition(&[&rest, &[x]]);
    c.run_for(10 * e());
    assert_eq!(c.check_group(&rest), Ok(leader));
    let cut_off = term(&c, x);
    c.heal();
    let leader = c.settle().unwrap();
    (before, (leader, term(&c, leader)), cut_off)
}

#[test]
fn with_pre_vote_a_rejoining_node_neither_raises_the_term_nor_deposes_the_leader() {
    let (before, after, cut_off) = rejoin(config());
    assert_eq!(
        cut_off, before.1,
        "a pre-candidate never increments its term"
    );
    assert_eq!(after, before);
}

#[test]
fn without_pre_vote_a_rejoining_node_deposes_the_leader() {
    // With CheckQuorum the others ignore its RequestVotes, but it answers the leader's heartbeat
    // with its higher term (§5.1), and the leader steps down; without, its RequestVote does it.
    for check_quorum in [true, false] {
        let (before, after, cut_off) = rejoin(with(false, check_quorum));
        assert!(
            cut_off >= before.1 + 5,
            "a candidate cut off keeps incrementing"
        );
        assert!(
            after.1 > cut_off,
            "check_quorum={check_quorum}: {before:?} -> {after:?}"
        );
    }
}

/// Cuts the settled leader off with one follower; checks that the other three elect a leader of
/// a higher term within three election timeouts, and returns whether the old one still leads.
fn leader_in_minority(config: RaftConfig) -> bool {
    let mut c = Cluster::new(config, 5).unwrap();
    c.start_all();
    let leader = c.settle().unwrap();
    let t = term(&c, leader);
    let cut = [leader, (leader + 1) % 5];
    let rest: Vec<u32> = (0..5).filter(|i| !cut.contains(i)).collect();
    c.partition(&[&cut, &rest]);
    c.run_for(3 * e());
    let new = c.check_group(&rest).unwrap();
    assert!(term(&c, new) > t);
    c.status(leader).is_leader(NodeId(leader))
}

#[test]
fn with_check_quorum_a_leader_cut_off_in_a_minority_steps_down() {
    assert!(!leader_in_minority(config()));
    assert!(
        leader_in_minority(with(true, false)),
        "without CheckQuorum the old leader goes on claiming to lead"
    );
}

#[test]
fn a_stale_leader_steps_down_on_the_first_answer_with_a_higher_term() {
    let cfg = with(true, false);
    let mut c = Cluster::new(cfg, 5).unwrap();
    c.start_all();
    let old = c.settle().unwrap();
    let rest: Vec<u32> = (0..5).filter(|&i| i != old).collect();
    c.partition(&[&rest, &[old]]);
    c.run_for(3 * e());
    let new = c.check_group(&rest).unwrap();
    assert!(
        raft(&c, old).is_leader(),
        "without CheckQuorum it does not notice"
    );
    c.heal();
    c.reset_counts();
    // Its next heartbeat is answered with the higher term: it steps down without an election.
    c.run_for(HEARTBEAT + 1);
    assert_eq!(c.check_one_leader(), Ok(new));
    assert_eq!(term(&c, old), term(&c, new));
    assert_eq!(c.sent("RequestVote") + c.sent("PreVote"), 0);
}

#[test]
fn a_leader_that_leaves_is_replaced_within_one_election_timeout() {
    let mut c = cluster(5);
    c.start_all();
    let old = c.settle().unwrap();
    let t = term(&c, old);
    let left_at = c.now();
    c.leave(old);
    c.step_until(e(), |c| c.check_one_leader().is_ok()).unwrap();
    let took = c.now() - left_at;
    assert!(
        took <= e(),
        "replaced after {took}us, a crash takes at least {}us",
        e()
    );
    let new = c.check_one_leader().unwrap();
    assert!(term(&c, new) > t);
    assert_eq!(c.settle(), Ok(new), "majority of the 4 left");
}

#[test]
fn a_joiner_learns_the_term_from_the_leader_without_an_election() {
    let mut c = cluster(5);
    c.start_all();
    let leader = c.settle().unwrap();
    let t = term(&c, leader);
    c.reset_counts();
    c.join(5);
    c.run_for(HEARTBEAT + 1);
    assert_eq!(c.check_one_leader(), Ok(leader));
    assert_eq!(term(&c, 5), t);
    assert_eq!(c.sent("PreVote") + c.sent("RequestVote"), 0);
    // Six members now: the leader needs three answers, and still has them.
    assert_eq!(c.settle(), Ok(leader));
}

#[test]
fn a_split_vote_is_settled_in_a_later_term() {
    let cfg = with(false, true);
    let mut c = Cluster::new(cfg, 4).unwrap();
    c.start_all();
    // Nodes 0 and 1 campaign at once; 2 hears only 0 first and 3 only 1: two votes each, and
    // four members need three.
    c.cut(0, 3);
    c.cut(1, 2);
    assert!(c.fire(0, RaftTimer::Election) && c.fire(1, RaftTimer::Election));
    c.deliver_all();
    assert!(
        c.live().iter().all(|&i| !raft(&c, i).is_leader()),
        "{}",
        c.describe(&c.live())
    );
    assert_eq!((term(&c, 0), term(&c, 1)), (1, 1));
    c.heal();
    let leader = c.settle().unwrap();
    assert!(term(&c, leader) >= 2);
}

/// One node driven by hand, to look at the exact commands of one input.
struct Solo {
    node: Node<Raft>,
    members: Members,
    rng: ChaCha8Rng,
}

impl Solo {
    fn boot(
        id: u32,
        n: u32,
        persisted: Option<Vec<u8>>,
    ) -> (Self, Vec<Command<RaftMsg, RaftTimer>>) {
        let mut solo = Solo {
            node: Node::new(Raft::new(&config())),
            members: Members::first(n),
            rng: ChaCha8Rng::seed_from_u64(1),
        };
        let commands = solo.input(id, Input::Start { persisted });
        (solo, commands)
    }

    fn input(&mut self, id: u32, input: InputOf<Raft>) -> Vec<Command<RaftMsg, RaftTimer>> {
        let mut cx = Context {
            id: NodeId(id),
            now: 0,
            members: &self.members,
            rng: &mut self.rng,
        };
        let mut out = Out::new();
        self.node.handle(&mut cx, input, &mut out);
        out.drain().collect()
    }

    fn receive(&mut self, id: u32, from: u32, msg: RaftMsg) -> Vec<Command<RaftMsg, RaftTimer>> {
        self.input(
            id,
            Input::Message {
                from: NodeId(from),
                msg,
            },
        )
    }
}

fn persisted(commands: &[Command<RaftMsg, RaftTimer>]) -> Option<Vec<u8>> {
    commands.iter().rev().find_map(|c| match c {
        Command::Persist(bytes) => Some(bytes.clone()),
        _ => None,
    })
}

fn vote_reply(commands: &[Command<RaftMsg, RaftTimer>]) -> Option<(usize, u32, Term, bool)> {
    commands.iter().enumerate().find_map(|(i, c)| match c {
        Command::Send {
            to,
            msg: RaftMsg::RequestVoteReply { term, granted },
        } => Some((i, to.0, *term, *granted)),
        _ => None,
    })
}

#[test]
fn a_vote_is_persisted_before_the_reply_and_survives_a_crash() {
    let (mut solo, boot) = Solo::boot(1, 3, None);
    assert!(persisted(&boot).is_none(), "nothing to persist at term 0");
    let commands = solo.receive(1, 2, RaftMsg::RequestVote { term: 7 });
    let (at, to, term, granted) = vote_reply(&commands).unwrap();
    assert_eq!((to, term, granted), (2, 7, true));
    let persist_at = commands
        .iter()
        .position(|c| matches!(c, Command::Persist(_)))
        .expect("the vote is persisted");
    assert!(persist_at < at, "persisted before the reply: {commands:?}");
    let state = persisted(&commands).unwrap();

    // Crash and recover: the same term, the same vote.
    let (mut solo, boot) = Solo::boot(1, 3, Some(state));
    assert!(
        persisted(&boot).is_none(),
        "the restored state needs no rewrite"
    );
    let r = solo.node.protocol();
    assert_eq!((r.term(), r.voted_for()), (7, Some(NodeId(2))));
    let commands = solo.receive(1, 0, RaftMsg::RequestVote { term: 7 });
    assert_eq!(
        vote_reply(&commands).map(|v| (v.1, v.2, v.3)),
        Some((0, 7, false))
    );
    // The candidate it voted for may ask again (a lost reply) and gets the same answer.
    let commands = solo.receive(1, 2, RaftMsg::RequestVote { term: 7 });
    assert_eq!(
        vote_reply(&commands).map(|v| (v.1, v.2, v.3)),
        Some((2, 7, true))
    );
    // A later term is a new vote.
    let commands = solo.receive(1, 0, RaftMsg::RequestVote { term: 8 });
    assert_eq!(
        vote_reply(&commands).map(|v| (v.1, v.2, v.3)),
        Some((0, 8, true))
    );
}

#[test]
fn a_candidate_persists_its_own_vote_before_asking_for_others() {
    let (mut solo, _) = Solo::boot(0, 3, None);
    let commands = solo.input(0, Input::Timer(RaftTimer::Election));
    let first_send = commands
        .iter()
        .position(|c| matches!(c, Command::Send { .. } | Command::Broadcast { .. }))
        .unwrap();
    // PreVote changes no term: nothing to persist yet.
    assert!(
        !commands[..first_send]
            .iter()
            .any(|c| matches!(c, Command::Persist(_)))
    );
    let commands = solo.receive(
        0,
        1,
        RaftMsg::PreVoteReply {
            term: 1,
            granted: true,
        },
    );
    let persist_at = commands
        .iter()
        .position(|c| matches!(c, Command::Persist(_)));
    let ask_at = commands.iter().position(|c| {
        matches!(
            c,
            Command::Broadcast {
                msg: RaftMsg::RequestVote { term: 1 }
            }
        )
    });
    assert!(persist_at.unwrap() < ask_at.unwrap(), "{commands:?}");
    let (solo, _) = Solo::boot(0, 3, persisted(&commands));
    let r = solo.node.protocol();
    assert_eq!((r.term(), r.voted_for()), (1, Some(NodeId(0))));
}

#[test]
fn unreadable_state_makes_a_non_voter_that_follows_but_never_votes() {
    for garbage in [vec![1, 2, 3], vec![9; 14], vec![]] {
        let (mut solo, boot) = Solo::boot(1, 3, Some(garbage.clone()));
        let state = persisted(&boot).expect("the non-voter flag is persisted at once");
        assert!(
            !boot.iter().any(|c| matches!(
                c,
                Command::SetTimer {
                    timer: RaftTimer::Election,
                    ..
                }
            )),
            "a non-voter never campaigns: {boot:?}"
        );
        assert!(!solo.node.protocol().is_voter(), "{garbage:?}");
        let commands = solo.receive(1, 2, RaftMsg::RequestVote { term: 3 });
        assert_eq!(
            vote_reply(&commands).map(|v| (v.1, v.2, v.3)),
            Some((2, 3, false))
        );
        let latest = persisted(&commands).expect("the new term is persisted");
        let commands = solo.receive(1, 2, RaftMsg::PreVote { term: 4 });
        assert!(commands.contains(&Command::Send {
            to: NodeId(2),
            msg: RaftMsg::PreVoteReply {
                term: 3,
                granted: false
            }
        }));
        solo.receive(1, 0, RaftMsg::AppendEntries { term: 3 });
        let s = *solo.node.status();
        assert_eq!(
            (s.state, s.coordinator, s.term),
            (State::Normal, Some(NodeId(0)), Some(3))
        );
        // A restart from what it wrote keeps it a non-voter (and keeps the term).
        assert_ne!(latest, state);
        let (solo, _) = Solo::boot(1, 3, Some(latest));
        assert!(!solo.node.protocol().is_voter());
        assert_eq!(solo.node.protocol().term(), 3);
    }
}

#[test]
fn invalid_configuration_is_rejected_with_the_field_named() {
    let bad = |heartbeat, timeout| {
        validated::<Raft>(RaftConfig::new(Timing { heartbeat, timeout })).unwrap_err()
    };
    assert_eq!(bad(0, 10 * MILLIS).field, "heartbeat");
    let err: ConfigError = bad(10, 20);
    assert_eq!(err.field, "timeout");
    let shown = err.to_string();
    assert!(shown.contains("raft") && shown.contains("50us"), "{shown}");
    assert!(
        validated::<Raft>(RaftConfig::new(Timing {
            heartbeat: 10,
            timeout: 30
        }))
        .is_ok()
    );
}

#[test]
fn timing_relates_heartbeat_delay_and_election_timeout_as_raft_needs() {
    let c = config();
    assert_eq!(c.election_timeout(), 2 * HEARTBEAT + TIMEOUT);
    assert_eq!(Raft::max_delay(&c), c.election_timeout() / 50);
    // Heartbeats arrive at most `heartbeat + max_delay` apart, well inside a timeout on a clock
    // 20 % fast.
    assert!((HEARTBEAT + Raft::max_delay(&c)) * 10 < c.election_timeout() * 8);
    // The documented example: five nodes, default options.
    assert!(
        (c.round_failure(5) - 0.375).abs() < 1e-9,
        "{}",
        c.round_failure(5)
    );
    assert_eq!(c.rounds(5), 15);
    // PreVote's longer campaign costs rounds; more nodes cost rounds; one node needs one.
    assert!(with(false, true).rounds(5) < c.rounds(5));
    assert!(Raft::liveness_bound(&c, 7) > Raft::liveness_bound(&c, 5));
    assert_eq!(c.rounds(1), 1);
    assert!(
        Raft::liveness_bound(&c, 30) < u64::MAX,
        "the spacing bound keeps it finite"
    );
    assert_eq!(
        Raft::liveness_bound(&c, 100_000),
        u64::MAX,
        "saturates, does not wrap"
    );
}

/// Raft with its persistence cut: on a crash it forgets its term and vote. The checkers must
/// catch it.
struct Amnesiac(Raft);

/// Passes on everything but `Persist`.
fn forget(mut inner: Out<RaftMsg, RaftTimer>, out: &mut Out<RaftMsg, RaftTimer>) {
    for command in inner.drain() {
        if !matches!(command, Command::Persist(_)) {
            out.push(command);
        }
    }
}

impl Protocol for Amnesiac {
    const NAME: &'static str = "amnesiac-raft";
    type Options = RaftOptions;
    type Msg = RaftMsg;
    type Timer = RaftTimer;

    fn new(config: &RaftConfig) -> Self {
        Amnesiac(Raft::new(config))
    }

    fn properties(config: &RaftConfig) -> Properties {
        Raft::properties(config)
    }

    fn liveness_bound(config: &RaftConfig, n: usize) -> Time {
        Raft::liveness_bound(config, n)
    }

    fn on_start(
        &mut self,
        cx: &mut Context<'_>,
        _: Option<&[u8]>,
        out: &mut Out<RaftMsg, RaftTimer>,
    ) {
        let mut inner = Out::new();
        self.0.on_start(cx, None, &mut inner);
        forget(inner, out);
    }

    fn on_message(
        &mut self,
        cx: &mut Context<'_>,
        from: NodeId,
        msg: RaftMsg,
        out: &mut Out<RaftMsg, RaftTimer>,
    ) {
        let mut inner = Out::new();
        self.0.on_message(cx, from, msg, &mut inner);
        forget(inner, out);
    }

    fn on_timer(
        &mut self,
        cx: &mut Context<'_>,
        timer: RaftTimer,
        out: &mut Out<RaftMsg, RaftTimer>,
    ) {
        let mut inner = Out::new();
        self.0.on_timer(cx, timer, &mut inner);
        forget(inner, out);
    }

    fn on_membership(
        &mut self,
        cx: &mut Context<'_>,
        change: Membership,
        out: &mut Out<RaftMsg, RaftTimer>,
    ) {
        let mut inner = Out::new();
        self.0.on_membership(cx, change, &mut inner);
        forget(inner, out);
    }

    fn status(&self) -> Status {
        self.0.status()
    }
}

impl Inspect for Amnesiac {
    fn raft(&self) -> &Raft {
        &self.0
    }
}

/// Node 0 votes for 2 in term 1 and 2 leads; 0 crashes and recovers; 1, which never heard of
/// term 1, campaigns in it and asks 0 again.
fn forgotten_vote<P: Inspect<Options = RaftOptions>>() -> Observer {
    let mut run = Checked::<P>::new(with(false, false), 3);
    run.c.cut(2, 1);
    run.fire_election(2);
    run.deliver_all();
    assert!(raft(&run.c, 2).is_leader());
    run.crash(0);
    run.recover(0);
    run.c.heal();
    run.c.partition(&[&[0, 1], &[2]]);
    run.fire_election(1);
    run.deliver_all();
    run.obs
}

#[test]
fn the_checkers_catch_a_raft_that_forgets_its_vote() {
    let obs = forgotten_vote::<Amnesiac>();
    let found = obs.violations.join("\n");
    assert!(
        found.contains("n0 voted for n2 and for n1 in term 1"),
        "{found}"
    );
    assert!(
        found.contains("n2 and n1 are both leaders of term 1"),
        "{found}"
    );
    // The same history with real Raft: 0 remembers its vote, 1 cannot win term 1.
    let obs = forgotten_vote::<Raft>();
    assert_eq!(obs.check(), Ok(()));
    assert_eq!(obs.leaders.len(), 1);
}

#[test]
fn two_membership_changes_can_elect_two_leaders_of_one_term_as_documented() {
    // What the simplified membership gives up (module docs): {0, 1} elect a leader of term 1
    // as a majority of {0, 1, 2}; two nodes join, cut off from {0, 1}; {2, 3, 4} is a majority
    // of the five and elects another leader of term 1. Raft's single-server or joint-consensus
    // changes, through the log, exist to rule this out.
    let mut run = Checked::<Raft>::new(config(), 3);
    run.c.partition(&[&[0, 1], &[2]]);
    run.run(Raft::liveness_bound(&config(), 3));
    let first = run.c.check_group(&[0, 1]).unwrap();
    assert_eq!(raft(&run.c, first).term(), 1);
    for id in [3, 4] {
        run.c.join(id);
        run.observe();
        run.c.cut(id, 0);
        run.c.cut(id, 1);
    }
    run.run(Raft::liveness_bound(&config(), 5));
    let found = run.obs.violations.join("\n");
    assert!(found.contains("are both leaders of term 1"), "{found}");
    assert!(!found.contains("voted for"), "no node voted twice: {found}");
}

#[test]
fn election_safety_and_one_vote_per_term_hold_through_a_long_randomized_run() {
    let mut rng = ChaCha8Rng::seed_from_u64(2014);
    let mut run = Checked::<Raft>::new(config(), 5);
    for _ in 0..3_000 {
        let node = rng.random_range(0..5u32);
        match rng.random_range(0..10u32) {
            0 => run.crash(node),
            1 => run.recover(node),
            2 => {
                let side: Vec<u32> = (0..5).filter(|_| rng.random_bool(0.5)).collect();
                let rest: Vec<u32> = (0..5).filter(|i| !side.contains(i)).collect();
                run.c.partition(&[&side, &rest]);
            }
            3 => run.c.cut_one_way(node, rng.random_range(0..5)),
            4 => run.c.heal(),
            5 | 6 => run.fire_election(node),
            7 => run.deliver(rng.random_range(0..10)),
            _ => run.run(rng.random_range(0..2 * e())),
        }
        assert_eq!(run.obs.check(), Ok(()));
    }
    assert!(
        run.obs.leaders.len() >= 50,
        "the run must elect many leaders to mean something: {}",
        run.obs.leaders.len()
    );
    for id in 0..5 {
        if run.c.node(id).is_none() {
            run.recover(id);
        }
    }
    run.c.heal();
    run.run(Raft::liveness_bound(&config(), 5));
    assert_eq!(run.obs.check(), Ok(()));
    run.c.check_one_leader().unwrap();
}

#[path = "support/faults.rs"]
mod faults;
use faults::{Mix, Step};

fn fault(n: u32) -> impl Strategy<Value = faults::Fault<RaftTimer>> {
    faults::fault(
        n,
        Mix {
            one_way: true,
            fire: Some(RaftTimer::Election),
            longest_run: 3 * 120 * MILLIS,
            most_deliveries: 20,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Invariants, under crashes, recoveries, partitions, one-way cuts, forced campaigns and any
    /// interleaving of deliveries, with every combination of the options: (1) at most one leader
    /// per term, ever; (2) no node votes for two candidates in one term, across its crashes;
    /// (3) once every node is up and the network healed, one leader within `liveness_bound`.
    #[test]
    fn at_most_one_leader_per_term_and_one_vote_per_node_per_term(
        faults in proptest::collection::vec(fault(5), 0..40),
        pre_vote in any::<bool>(),
        check_quorum in any::<bool>(),
    ) {
        let config = with(pre_vote, check_quorum);
        let mut run = Checked::<Raft>::new(config, 5);
        for f in faults {
            match f.apply(&mut run.c) {
                Some(Step::Run(t)) => run.run(t),
                Some(Step::Deliver(k)) => run.deliver(k),
                // What a recovery or an early timer did joins the observed history at once.
                None => run.observe(),
            }
            prop_assert_eq!(run.obs.check(), Ok(()));
        }
        for id in 0..5 {
            if run.c.node(id).is_none() {
                run.recover(id);
            }
        }
        run.c.heal();
        run.run(Raft::liveness_bound(&config, 5));
        prop_assert_eq!(run.obs.check(), Ok(()));
        prop_assert!(run.c.check_one_leader().is_ok(), "{}", run.c.describe(&run.c.live()));
    }
}

#[test]
fn role_accessors_match_the_status() {
    let mut c = cluster(3);
    c.start_all();
    let leader = c.settle().unwrap();
    for id in c.live() {
        let r = raft(&c, id);
        match r.role() {
            Role::Leader { confirmed, .. } => assert!(*confirmed && id == leader),
            Role::Follower { leader: l } => assert_eq!(*l, Some(NodeId(leader))),
            other => panic!("n{id} is {other:?}"),
        }
    }
}
