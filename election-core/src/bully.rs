//! Garcia-Molina's Bully algorithm (H. Garcia-Molina, "Elections in a Distributed Computing
//! System", IEEE Trans. Computers C-31(1), 1982, section 4).
//!
//! # The paper, and where to find it here
//!
//! Each node `i` keeps the paper's variables: `S(i).s` is the reported [`Status::state`]
//! (`Down`, `Election`, `Reorganization`, `Normal`), `S(i).c` the coordinator, `S(i).h` the node
//! that halted `i` (`halted_by`), and `S(i).Up` the nodes a coordinator included in its group
//! (`up`). `S(i).d`, the task description handed out in `Ready`, has no counterpart: nothing here
//! runs a task.
//!
//! The paper's procedures map onto the handlers:
//! - **Check** (the coordinator, periodically): [`Msg::AreYouNormal`] to every member; a member
//!   that is not `Normal` under this coordinator answers [`Msg::NotNormal`] and the coordinator
//!   calls Election, which (re)includes it. This is how a recovered lower node gets back in.
//! - **Timeout** (a member): the paper's member asks its coordinator [`Msg::AreYouThere`]
//!   periodically; here the coordinator's Check, which reaches every member every heartbeat, is
//!   what the member times: no Check for [`BullyConfig::coordinator_silence`] calls Election
//!   ([`Timer::Silence`]; see the departures). A node left in `Election` or `Reorganization`
//!   longer than [`BullyConfig::election_wait`] calls Election too.
//! - **Election**: [`Msg::AreYouThere`] to every higher node; if one answers, the node returns and
//!   waits to be halted. Otherwise it sets `s = Election, h = i`, sends [`Msg::Halt`] to every lower
//!   node and puts those that answer in `Up`, then `c = i, s = Reorganization`,
//!   [`Msg::NewCoordinator`] to `Up`, then [`Msg::Ready`] to `Up`, then `s = Normal`. A missing
//!   answer to NewCoordinator or Ready calls Election again, as in the paper.
//! - **Halt / NewCoordinator / Ready** (the receivers): `s = Election, h = j`; then
//!   `c = j, s = Reorganization` if `h = j`; then `s = Normal` if `c = j` and `s = Reorganization`.
//! - **Recovery**: a booting node calls Election, so a recovering or newly joined higher-priority
//!   node takes over.
//!
//! # What is guaranteed, and under which model
//!
//! Garcia-Molina's synchronous model ([`Model::Synchronous`]): every message arrives within
//! [`Protocol::max_delay`] (two fifths of the timeout; messages on different links may overtake
//! each other), nothing is lost, duplicated or cut off by a partition, nodes fail only by
//! crashing and may recover, join and leave, and clocks drift by at most
//! [`Model::SYNCHRONOUS_DRIFT`]. Inside it:
//! - **Assertion 1** holds at every instant: any two live nodes in `Reorganization` or `Normal`
//!   have the same coordinator. A node enters `Reorganization` only under the node whose Halt it
//!   obeyed last, a coordinator announces itself only after every live lower node answered its
//!   Halt (so none is still in an older group), and a stale Halt cannot pull a node back into an
//!   older election (next section). The simulator checks this at every status change of every
//!   run that stays inside the model (`election sim check --synchronous`).
//! - **Assertion 2** / liveness: after the last fault, within [`Bully::liveness_bound`], every
//!   live node is `Normal` under one coordinator, the highest live node (unless `sticky`).
//!
//! Outside the model — a lost or late message, a partition — nothing is promised: each side of a
//! partition elects its own coordinator, and once the network is calm again the highest live
//! node takes over within the liveness bound.
//!
//! # Why a node refuses some Halts
//!
//! The paper's coordinator halts the lower nodes one call at a time, in descending order, and
//! every call completes before the next begins. This crate's first version sent all Halts at once
//! and obeyed a Halt from any higher node, which breaks Assertion 1 inside the model: node 3
//! starts halting 0–2 while node 4 is down; 4 recovers two milliseconds later and halts everyone; 3's Halt to 0 is on a
//! slow link and arrives after 4's, so 0 obeys 3 last, accepts 3's NewCoordinator and sits in
//! `Reorganization` under 3 while 1, 2 and 4 are in `Reorganization` under 4
//! (`election-sim/tests/regressions.rs` replays it; `-o halts=any-higher` keeps that rule to show
//! the race). The descending, one-at-a-time calls prevent it because 4 halts 3 before anyone below
//! it, so 3 stops before its later calls. Here the same effect comes from a rule instead of
//! sequential calls (which would make every election `n` round trips long): a node that obeyed a
//! Halt from `h` refuses, for [`BullyConfig::halt_authority`] (one timeout), any Halt from a
//! node lower than `h`. Such a Halt was sent before `h`'s own Halt reached its sender, which
//! therefore stops, and it arrives within two delays of `h`'s; a Halt from a lower node after
//! that comes from a new election, which the lower node holds only after `h` failed to answer
//! it, so it is obeyed as in the paper. The refused sender's round times out on the refusing
//! node and goes on without it, and is itself halted by `h` within a delay.

//! # Departures from the paper, and why
//! - The paper's remote procedure calls are asynchronous messages here: each request has an
//!   answer message and the caller's "no answer" is the [`Timer::Reply`] timeout.
//! - AreYouNormal is answered only when the answer is "no" ([`Msg::NotNormal`]): the coordinator
//!   acts only on a "no", and a silent "yes" halves its Check traffic in large clusters. "Normal"
//!   also means "following the asker", so a node loyal to another coordinator makes the asker
//!   call an election that settles which of the two leads.
//! - A node shows `Election` as soon as it starts probing higher nodes (the paper changes `S(i).s`
//!   only when it begins to halt others), so the status page tells a searching node from a
//!   settled one.
//! - Halts go to all lower nodes at once and a node refuses a Halt from below the node that just
//!   halted it (the rule above), instead of the paper's descending one-at-a-time calls.
//! - A Halt from a *lower* node is refused (and makes the receiver call its own election): in the
//!   paper it cannot happen, but with lost messages it would let a lower node depose a live higher
//!   one for good.
//! - The `sticky` option (not in the paper; the peer-to-peer report's behaviour): a booting node
//!   first asks every node AreYouThere and, if a `Normal` coordinator answers — even a lower one —
//!   joins it directly as a `Normal` member; it calls an election only when that leader fails.
//! - Members do not poll: the coordinator's Check (AreYouNormal to every member, every
//!   heartbeat) is their heartbeat, and a `Normal` member that has heard none for
//!   [`BullyConfig::coordinator_silence`] (`5/4 (H + max_delay)`; after a Ready,
//!   [`BullyConfig::first_silence`], which also covers the rest of the Ready round) takes the
//!   coordinator for dead. In the synchronous model that silence proves the crash as surely as
//!   an unanswered poll: a live coordinator that is `Normal` Checks every heartbeat, and one in
//!   `Reorganization` is `Normal` within a timeout of its Ready. It is noticed sooner (about
//!   `H/2 + max_delay` after the crash on average, against `H/2 + T` for a poll) and a member
//!   costs no message per heartbeat. A coordinator that stops Checking because it is holding an
//!   election again is in `Election` itself, so a member that suspects it then cannot break
//!   Assertion 1; the coordinator's Halts sort them out as after any crash.
//! - The member that noticed the silence does not ask the coordinator again in the election
//!   that follows: in the synchronous model it is down. When the coordinator was the only higher
//!   node, the member halts the others at once, one timeout sooner than the paper (whose Election
//!   probes every higher node, the silent coordinator included). A coordinator that recovered
//!   meanwhile halts everyone itself, as after any probe that found it down. (Issue 15 measured
//!   both savings against etcd's failover; BENCHMARKS.md.)
//! - Membership: when the coordinator (or the node that halted us) leaves gracefully, an election
//!   starts at once instead of after a timeout; a leaving member is dropped from `Up` and from any
//!   round that awaits its answer.
//!
//! # Cost
//! Members keep O(1) state; only a coordinator holding an election keeps `Up`. In normal operation
//! a heartbeat costs `n - 1` messages, the coordinator's AreYouNormal. An election costs
//! `n - 2` Halts, NewCoordinators and Readys (and their answers)
//! in the best case, when the second-highest node notices the crash first; in the worst case every
//! member notices and probes every higher node, `O(n²)` AreYouThere, as in the paper.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::protocol::{
    Bound, Config, Context, Explorable, Kind, Membership, MessageBounds, Model, NodeId, Options,
    Properties, Protocol, Reclock, Scope, Time,
};
use crate::status::{State, Status};

/// Bully's options.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize, Hash)]
#[serde(deny_unknown_fields, default)]
pub struct BullyOptions {
    /// Join a running `Normal` coordinator on boot instead of taking over (see the module docs).
    pub sticky: bool,
    /// Which Halts a node obeys.
    pub halts: HaltRule,
}

/// Which Halts a node obeys (see "Why a node refuses some Halts" in the module docs).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum HaltRule {
    /// A Halt from a higher node, unless the node was already halted in this election by an even
    /// higher one: the effect of the paper's descending calls. The default.
    #[default]
    Authority,
    /// A Halt from any higher node: this crate's first version, which breaks Assertion 1 when
    /// two coordinators' Halts race. Kept to show the race (`-o halts=any-higher`); the
    /// simulator's synchronous mode finds it within a few hundred seeds.
    AnyHigher,
}

impl Options for BullyOptions {
    const HELP: &'static str = "sticky=true|false  a booting node follows a running leader instead of taking over (default false); \
         halts=authority|any-higher  any-higher is the broken first rule, kept to show the Halt race (default authority)";
}

/// Bully's configuration: the common timing (heartbeat: the coordinator's Check period, which
/// its members also time it by; timeout: a round trip) and [`BullyOptions`].
pub type BullyConfig = Config<BullyOptions>;

impl BullyConfig {
    /// How long a node waits in `Election` (to be halted, or for NewCoordinator) or in
    /// `Reorganization` (for Ready) before it calls an election itself: the paper's Timeout for a
    /// node that is not `Normal`.
    ///
    /// It must outlast what the node waits for. A node that lost its probe waits for the highest
    /// live node to notice the failure ([`coordinator_silence`](Self::coordinator_silence)) and
    /// to probe (a timeout) before the Halt comes; a halted node waits one halting round for
    /// NewCoordinator; a node in Reorganization waits one announcing round for Ready. One more
    /// timeout covers delivery.
    pub fn election_wait(&self) -> Time {
        self.coordinator_silence() + 3 * self.timing.timeout
    }

    /// How long a `Normal` member waits for its coordinator's next Check before it takes the
    /// coordinator for dead: `5/4 (H + max_delay)`. A live `Normal` coordinator broadcasts its
    /// Check every heartbeat, and each arrives within [`Timing::max_delay`], so two arrive at
    /// most `H + max_delay` apart; the quarter more covers a coordinator's clock running slow
    /// and the member's running fast by [`Model::SYNCHRONOUS_DRIFT`] (10 %) each. In the
    /// synchronous model this silence is as sure a sign of a crash as an unanswered poll.
    ///
    /// [`Timing::max_delay`]: crate::protocol::Timing::max_delay
    pub fn coordinator_silence(&self) -> Time {
        (self.timing.heartbeat + self.timing.max_delay()) * 5 / 4
    }

    /// The first such wait, from the coordinator's Ready: its Ready round may take up to a
    /// timeout more before it is `Normal` and Checks again, so a quarter more than `T` on top.
    pub fn first_silence(&self) -> Time {
        self.coordinator_silence() + self.timing.timeout * 5 / 4
    }

    /// How long a node, once halted by `h`, refuses Halts from nodes lower than `h`: one timeout.
    ///
    /// A lower node `j` whose Halt races `h`'s sent it before `h`'s own Halt reached `j` (after
    /// that `j` stops), and `h` sends all its Halts at once, so `j`'s arrives within two one-way
    /// delays (`2 · max_delay`, 0.8 timeouts) of `h`'s, however the links order them: a clock
    /// 10 % fast still measures the timeout as more. A Halt from `j` later than that was sent by
    /// a new election of `j`, which `j` holds only after `h` failed to answer its probe — so `h`
    /// is gone and the Halt is obeyed, as in the paper.
    pub fn halt_authority(&self) -> Time {
        self.timing.timeout
    }
}

type Out = crate::protocol::Out<Msg, Timer>;

/// Bully's wire messages: the paper's remote calls and their answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, Hash)]
pub enum Msg {
    /// "Are you there?": an Election probing a higher node (or a sticky boot looking for a
    /// leader).
    AreYouThere,
    /// The answer to AreYouThere.
    IAmThere {
        /// Whether the answering node coordinates (`Normal`, or in `Reorganization` collecting
        /// the last answers to Ready).
        leader: bool,
    },
    /// The coordinator's Check: "are you `Normal` under me?" Also its members' heartbeat.
    AreYouNormal,
    /// The "no" answer to AreYouNormal ("yes" is not sent).
    NotNormal,
    /// Stop what you are doing: the sender is about to become coordinator.
    Halt,
    /// The answer to Halt.
    HaltAck,
    /// The sender is your new coordinator.
    NewCoordinator,
    /// The answer to NewCoordinator.
    NewCoordinatorAck,
    /// Reorganization is over: resume normal operation.
    Ready,
    /// The answer to Ready.
    ReadyAck,
}

impl Kind for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::AreYouThere => "AreYouThere",
            Msg::IAmThere { .. } => "IAmThere",
            Msg::AreYouNormal => "AreYouNormal",
            Msg::NotNormal => "NotNormal",
            Msg::Halt => "Halt",
            Msg::HaltAck => "HaltAck",
            Msg::NewCoordinator => "NewCoordinator",
            Msg::NewCoordinatorAck => "NewCoordinatorAck",
            Msg::Ready => "Ready",
            Msg::ReadyAck => "ReadyAck",
        }
    }
}

/// Bully's timers.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize, Hash)]
pub enum Timer {
    /// Periodic: a coordinator checks its members.
    Heartbeat,
    /// A `Normal` member has not heard its coordinator's Check for
    /// [`BullyConfig::coordinator_silence`].
    Silence,
    /// The answer to the node's outstanding request round is overdue.
    Reply,
    /// The node has waited [`BullyConfig::election_wait`] outside `Normal`.
    Wait,
}

impl Kind for Timer {
    fn kind(&self) -> &'static str {
        match self {
            Timer::Heartbeat => "Heartbeat",
            Timer::Silence => "Silence",
            Timer::Reply => "Reply",
            Timer::Wait => "Wait",
        }
    }
}

/// The request round a node is waiting on, if any.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Step {
    /// No request outstanding.
    Idle,
    /// Election's AreYouThere to the higher nodes (to every node when `join_leader`: a sticky boot).
    Probing {
        /// Join a `Normal` coordinator that answers (sticky boot).
        join_leader: bool,
        /// A higher node answered.
        higher_alive: bool,
    },
    /// Halt sent to the lower nodes; those that answer are collected in `up`.
    Halting,
    /// NewCoordinator sent to `up`; `pending` have not answered yet.
    Announcing {
        /// Members of `up` still to answer.
        pending: BTreeSet<NodeId>,
    },
    /// Ready sent to `up`; `pending` have not answered yet.
    Readying {
        /// Members of `up` still to answer.
        pending: BTreeSet<NodeId>,
    },
}

/// One node running Garcia-Molina's Bully algorithm (see the [module docs](self)).
#[derive(Debug, Clone, Hash)]
pub struct Bully {
    config: BullyConfig,
    /// `S(i).s`.
    state: State,
    /// `S(i).c`.
    coordinator: Option<NodeId>,
    /// `S(i).h`.
    halted_by: Option<NodeId>,
    /// When this node last obeyed a Halt (its clock), for [`BullyConfig::halt_authority`].
    halted_at: Time,
    /// `S(i).Up`: only a coordinator holding an election fills it.
    up: BTreeSet<NodeId>,
    step: Step,
}

impl Bully {
    fn is_leader(&self, me: NodeId) -> bool {
        self.state == State::Normal && self.coordinator == Some(me)
    }

    /// Whether this node coordinates a group, also while it still collects ReadyAcks (its first
    /// members are `Normal` and polling by then).
    fn coordinates(&self, me: NodeId) -> bool {
        matches!(self.state, State::Normal | State::Reorganization) && self.coordinator == Some(me)
    }

    /// Starts a request round and its answer deadline.
    fn await_replies(&mut self, step: Step, out: &mut Out) {
        self.step = step;
        out.set_timer(Timer::Reply, self.config.timing.timeout);
    }

    /// Ends the outstanding round, if any.
    fn stop_round(&mut self, out: &mut Out) {
        if self.step != Step::Idle {
            self.step = Step::Idle;
            out.cancel_timer(Timer::Reply);
        }
    }

    /// Waits in `Election`/`Reorganization` for someone else to move us on.
    fn wait(&mut self, out: &mut Out) {
        self.stop_round(out);
        out.set_timer(Timer::Wait, self.config.election_wait());
    }

    /// The paper's Election: probe every higher node, or halt the lower ones if there is none.
    fn election(&mut self, cx: &Context<'_>, out: &mut Out) {
        self.election_without(cx, None, out);
    }

    /// Election, not asking `silent` again: a higher node whose failure this node has just
    /// established (its coordinator, silent for [`BullyConfig::coordinator_silence`]).
    fn election_without(&mut self, cx: &Context<'_>, silent: Option<NodeId>, out: &mut Out) {
        self.state = State::Election;
        self.halted_by = None;
        self.up.clear();
        out.cancel_timer(Timer::Wait);
        out.cancel_timer(Timer::Silence);
        let mut higher = cx
            .members
            .higher_than(cx.id)
            .iter()
            .filter(|&&j| Some(j) != silent)
            .peekable();
        if higher.peek().is_none() {
            return self.halt_lower(cx, out);
        }
        for &j in higher {
            out.send(j, Msg::AreYouThere);
        }
        let probe = Step::Probing {
            join_leader: false,
            higher_alive: false,
        };
        self.await_replies(probe, out);
    }

    /// No higher node answered: `s = Election, h = i`, Halt every lower node.
    fn halt_lower(&mut self, cx: &Context<'_>, out: &mut Out) {
        self.state = State::Election;
        self.halted_by = Some(cx.id);
        self.up.clear();
        for &j in cx.members.lower_than(cx.id) {
            out.send(j, Msg::Halt);
        }
        self.await_replies(Step::Halting, out);
        self.advance(cx, out);
    }

    /// `c = i, s = Reorganization`, NewCoordinator to `Up`.
    fn announce(&mut self, cx: &Context<'_>, out: &mut Out) {
        self.coordinator = Some(cx.id);
        self.state = State::Reorganization;
        for &j in &self.up {
            out.send(j, Msg::NewCoordinator);
        }
        let pending = self.up.clone();
        self.await_replies(Step::Announcing { pending }, out);
    }

    /// Ready to `Up`.
    fn ready(&mut self, out: &mut Out) {
        for &j in &self.up {
            out.send(j, Msg::Ready);
        }
        let pending = self.up.clone();
        self.await_replies(Step::Readying { pending }, out);
    }

    /// Moves the coordinator's election on once every awaited answer is in.
    fn advance(&mut self, cx: &Context<'_>, out: &mut Out) {
        match &self.step {
            Step::Halting if self.up.len() == cx.members.lower_than(cx.id).len() => {
                self.announce(cx, out);
                self.advance(cx, out);
            }
            Step::Announcing { pending } if pending.is_empty() => {
                self.ready(out);
                self.advance(cx, out);
            }
            Step::Readying { pending } if pending.is_empty() => {
                self.state = State::Normal;
                self.up.clear();
                self.stop_round(out);
            }
            _ => {}
        }
    }

    /// Someone else is coordinating (or about to): stop our round and wait for it.
    fn lose(&mut self, out: &mut Out) {
        self.state = State::Election;
        self.halted_by = None;
        self.up.clear();
        self.wait(out);
    }

    fn on_reply_timeout(&mut self, cx: &Context<'_>, out: &mut Out) {
        match std::mem::replace(&mut self.step, Step::Idle) {
            Step::Idle => {}
            Step::Probing { higher_alive, .. } => {
                if higher_alive {
                    self.lose(out);
                } else {
                    self.halt_lower(cx, out);
                }
            }
            Step::Halting => {
                self.announce(cx, out);
                self.advance(cx, out);
            }
            // A member of Up stopped answering: the paper calls Election again.
            Step::Announcing { .. } | Step::Readying { .. } => self.election(cx, out),
        }
    }

    fn on_heartbeat(&mut self, cx: &Context<'_>, out: &mut Out) {
        out.set_timer(Timer::Heartbeat, self.config.timing.heartbeat);
        if self.is_leader(cx.id) && self.step == Step::Idle {
            out.broadcast(Msg::AreYouNormal);
        }
    }

    /// The paper's Timeout for a `Normal` member, here its coordinator's silence: an election
    /// that does not ask the silent coordinator again.
    fn on_silence(&mut self, cx: &Context<'_>, out: &mut Out) {
        if self.state == State::Normal && self.coordinator != Some(cx.id) {
            self.election_without(cx, self.coordinator, out);
        }
    }

    /// Whether this is a sticky boot still probing for a leader to join.
    fn looking_for_leader(&self) -> bool {
        matches!(
            self.step,
            Step::Probing {
                join_leader: true,
                ..
            }
        )
    }

    fn on_i_am_there(&mut self, cx: &Context<'_>, from: NodeId, leader: bool, out: &mut Out) {
        match self.step {
            Step::Probing { join_leader, .. } if join_leader && leader => {
                self.state = State::Normal;
                self.coordinator = Some(from);
                self.halted_by = None;
                self.stop_round(out);
                // It may still be collecting ReadyAcks before it Checks again.
                out.set_timer(Timer::Silence, self.config.first_silence());
            }
            Step::Probing { join_leader, .. } if from > cx.id => {
                if join_leader {
                    self.step = Step::Probing {
                        join_leader,
                        higher_alive: true,
                    };
                } else {
                    self.lose(out);
                }
            }
            _ => {}
        }
    }

    /// Whether a Halt from `from` is obeyed: only from a higher node, and — within
    /// [`BullyConfig::halt_authority`] of obeying a Halt — not from one lower than the node that
    /// sent it (`S(i).h`, kept from the Halt until Ready; cleared by Ready and by starting an
    /// election).
    fn obeys_halt(&self, cx: &Context<'_>, from: NodeId) -> bool {
        let authority = self
            .halted_by
            .filter(|_| cx.now.saturating_sub(self.halted_at) < self.config.halt_authority());
        from > cx.id
            && match self.config.options.halts {
                HaltRule::Authority => authority.is_none_or(|h| from >= h),
                HaltRule::AnyHigher => true,
            }
    }

    fn on_halt(&mut self, cx: &Context<'_>, from: NodeId, out: &mut Out) {
        if self.obeys_halt(cx, from) {
            self.state = State::Election;
            self.halted_by = Some(from);
            self.halted_at = cx.now;
            self.up.clear();
            out.cancel_timer(Timer::Silence);
            self.wait(out);
            out.send(from, Msg::HaltAck);
        } else if from < cx.id && !matches!(self.step, Step::Probing { .. } | Step::Halting) {
            // A lower node thinks we are gone; we are not, and we outrank it.
            self.election(cx, out);
        }
        // A Halt from between us and our halter is stale: that node began halting before it
        // heard from the higher one, which will halt it too. Its round times out on us.
    }

    fn on_new_coordinator(&mut self, from: NodeId, out: &mut Out) {
        let fresh = self.state == State::Election && self.halted_by == Some(from);
        let repeat = self.state == State::Reorganization && self.coordinator == Some(from);
        if fresh {
            self.coordinator = Some(from);
            self.state = State::Reorganization;
            self.wait(out);
        }
        if fresh || repeat {
            out.send(from, Msg::NewCoordinatorAck);
        }
    }

    fn on_ready(&mut self, from: NodeId, out: &mut Out) {
        if self.coordinator != Some(from) {
            return;
        }
        match self.state {
            State::Reorganization => {
                self.state = State::Normal;
                self.halted_by = None;
                out.cancel_timer(Timer::Wait);
            }
            State::Normal => {}
            State::Down | State::Election => return,
        }
        out.send(from, Msg::ReadyAck);
        out.set_timer(Timer::Silence, self.config.first_silence());
    }

    /// Records `from`'s answer in the current Announcing/Readying round.
    fn acknowledged(&mut self, cx: &Context<'_>, from: NodeId, announcing: bool, out: &mut Out) {
        match &mut self.step {
            Step::Announcing { pending } if announcing => pending.remove(&from),
            Step::Readying { pending } if !announcing => pending.remove(&from),
            _ => return,
        };
        self.advance(cx, out);
    }
}

/// `halted_at` is compared only as "less than [`BullyConfig::halt_authority`] ago".
impl Explorable for Bully {
    fn reclock(&mut self, clock: Reclock) {
        self.halted_at = clock.past(self.halted_at, self.config.halt_authority());
    }
}

impl Protocol for Bully {
    const NAME: &'static str = "bully";
    type Options = BullyOptions;
    type Msg = Msg;
    type Timer = Timer;

    fn new(config: &BullyConfig) -> Self {
        Bully {
            config: *config,
            state: State::Down,
            coordinator: None,
            halted_by: None,
            halted_at: 0,
            up: BTreeSet::new(),
            step: Step::Idle,
        }
    }

    /// Garcia-Molina's synchronous model; Assertion 1 over every live node; the highest live node
    /// wins, unless `sticky` lets a booting higher node follow a lower leader.
    fn properties(config: &BullyConfig) -> Properties {
        Properties {
            model: Model::Synchronous,
            agreement: Some(Scope::Everyone),
            unique_leader: None,
            highest_wins: !config.options.sticky,
            quorum: false,
            membership: true,
        }
    }

    /// `5/2·heartbeat + 16·timeout`, independent of `n` (all rounds send in parallel).
    ///
    /// Let `h` be the highest live node of a component, `H` the heartbeat, `T` the timeout; every
    /// request is answered within `T`; `S` = [`BullyConfig::coordinator_silence`] =
    /// `5/4 H + T/2`.
    /// 1. `h` starts an election within `5/2 H + 4T` of the last fault: as a member it stops
    ///    hearing its (higher, hence dead) coordinator within `S + 5/4 T` (the first wait after a
    ///    Ready); left in `Election`/`Reorganization` its wait (`S + 3T`) runs out; as a
    ///    coordinator its Check (`H`) draws a NotNormal (`T`) from any node not following it; an
    ///    election it is running ends within `4T`. With `sticky`, `h` may follow a lower leader
    ///    `c`: any disturbance makes `c` call an election (`H + T`) and stop Checking, so `h`'s
    ///    silence (`S`) starts `h`'s election — `9/4 H + 3/2 T`.
    /// 2. `h`'s election takes at most `4T` (probe, halt, announce, ready, each at most `T`). Every
    ///    live node obeys `h`'s Halt (`h` is higher) and answers — except one that obeyed a
    ///    higher node's Halt less than [`BullyConfig::halt_authority`] (`T`) before; that node is
    ///    dead (`h` is the highest live one), so this can only happen within `T` of the last
    ///    fault and costs one attempt. An attempt fails otherwise only if a lower node `g` halts
    ///    some member after `h` did, so that the member ignores `h`'s NewCoordinator. `g` can
    ///    send Halts only if its probe went unanswered, which after the last fault means the probe
    ///    began before it; such Halts are sent within `T` and arrive within `1.4T`, and `g`, once
    ///    halted by `h`, sends no more. So at most two of `h`'s attempts fail, and the third
    ///    (`3 · 4T`) succeeds: every live node is then `Normal` under `h`.
    fn liveness_bound(config: &BullyConfig, _n: usize) -> Time {
        5 * config.timing.heartbeat / 2 + 16 * config.timing.timeout
    }

    /// The complexity table's scenarios, counted exactly as the simulator counts them (every
    /// message, answers included, until the last status change):
    /// - boot: every node probes every higher one and is answered (`n(n-1)`), then the top halts,
    ///   announces to and readies the `n - 1` others, each call answered (`6(n-1)`);
    /// - best (n−2 restarts as the leader crashes): its probe of the dead leader, then halt,
    ///   announce and ready the `n - 2` below it, answered — the paper's three calls; the
    ///   textbook's one-message Coordinator variant would send `n - 2`;
    /// - worst (node 0 restarts): its probe round (`n - 1`, answered by the `n - 2` live), then
    ///   the members miss the dead leader's Check and each that does before `n - 2`'s Halt
    ///   reaches it probes every higher live node — at most `(n-2)(n-3)` probes and answers when
    ///   all do at once: the paper's O(n²) worst case, which textbooks quote as about `n²/2`
    ///   *election messages* without the answers; the silent leader is not asked — then `n - 2`
    ///   halts the others (`6(n-2)`). At most, since the members' silence timers run from
    ///   Checks that arrived with different delays.
    fn message_bounds(n: u64) -> MessageBounds {
        let m = n.saturating_sub(2);
        MessageBounds {
            boot: Some(Bound::exact(
                "n(n-1) probes+answers + 6(n-1) halt/announce/ready+answers",
                n * n.saturating_sub(1) + 6 * n.saturating_sub(1),
            )),
            best: Some(Bound::exact(
                "1 probe + 6(n-2) halt/announce/ready+answers",
                1 + 6 * m,
            )),
            worst: Some(Bound::at_most(
                "(n-1)+(n-2) probe, (n-2)(n-3) probes+answers, 6(n-2)",
                n.saturating_sub(1) + m + m * m.saturating_sub(1) + 6 * m,
            )),
        }
    }

    /// The paper's Recovery: call Election (or, when sticky, look for a leader to join first).
    fn on_start(&mut self, cx: &mut Context<'_>, _persisted: Option<&[u8]>, out: &mut Out) {
        out.set_timer(Timer::Heartbeat, self.config.timing.heartbeat);
        if self.config.options.sticky && cx.members.len() > 1 {
            self.state = State::Election;
            out.broadcast(Msg::AreYouThere);
            let probe = Step::Probing {
                join_leader: true,
                higher_alive: false,
            };
            self.await_replies(probe, out);
        } else {
            self.election(cx, out);
        }
    }

    fn on_message(&mut self, cx: &mut Context<'_>, from: NodeId, msg: Msg, out: &mut Out) {
        // A node that left (or never joined) has no say, whatever is still in flight from it.
        if from == cx.id || !cx.members.contains(from) {
            return;
        }
        match msg {
            Msg::AreYouThere => out.send(
                from,
                Msg::IAmThere {
                    leader: self.coordinates(cx.id),
                },
            ),
            Msg::IAmThere { leader } => self.on_i_am_there(cx, from, leader, out),
            Msg::AreYouNormal if self.looking_for_leader() => {
                // A sticky boot looking for a leader: the coordinator's Check can overtake its
                // answer to our probe, and a NotNormal would make it call the election that
                // sticky exists to avoid. Its Check says as much as its answer would.
                self.on_i_am_there(cx, from, true, out);
            }
            Msg::AreYouNormal => {
                if self.state == State::Normal && self.coordinator == Some(from) {
                    out.set_timer(Timer::Silence, self.config.coordinator_silence());
                } else {
                    out.send(from, Msg::NotNormal);
                }
            }
            Msg::NotNormal => {
                if self.is_leader(cx.id) {
                    self.election(cx, out);
                }
            }
            Msg::Halt => self.on_halt(cx, from, out),
            Msg::HaltAck => {
                if self.step == Step::Halting && from < cx.id && cx.members.contains(from) {
                    self.up.insert(from);
                    self.advance(cx, out);
                }
            }
            Msg::NewCoordinator => self.on_new_coordinator(from, out),
            Msg::NewCoordinatorAck => self.acknowledged(cx, from, true, out),
            Msg::Ready => self.on_ready(from, out),
            Msg::ReadyAck => self.acknowledged(cx, from, false, out),
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, timer: Timer, out: &mut Out) {
        match timer {
            Timer::Heartbeat => self.on_heartbeat(cx, out),
            Timer::Silence => self.on_silence(cx, out),
            Timer::Reply => self.on_reply_timeout(cx, out),
            Timer::Wait => {
                if self.state != State::Normal && self.step == Step::Idle {
                    self.election(cx, out);
                }
            }
        }
    }

    fn on_membership(&mut self, cx: &mut Context<'_>, change: Membership, out: &mut Out) {
        // A joiner boots and runs its own Recovery; there is nothing to do for it here.
        let Membership::Left(gone) = change else {
            return;
        };
        let following = match self.state {
            State::Normal | State::Reorganization => self.coordinator,
            State::Election => self.halted_by,
            State::Down => None,
        };
        if following == Some(gone) && gone != cx.id {
            return self.election(cx, out);
        }
        self.up.remove(&gone);
        if let Step::Announcing { pending } | Step::Readying { pending } = &mut self.step {
            pending.remove(&gone);
        }
        self.advance(cx, out);
    }

    fn status(&self) -> Status {
        let phase = match (&self.step, self.state) {
            (_, State::Normal) => "Normal",
            (Step::Probing { .. }, _) => "Probing",
            (Step::Halting, _) => "Halting",
            (Step::Announcing { .. }, _) => "Announcing",
            (Step::Readying { .. }, _) => "Readying",
            (_, State::Election) if self.halted_by.is_some() => "Halted",
            (_, State::Election) => "AwaitingHalt",
            (_, State::Reorganization) => "AwaitingReady",
            (_, State::Down) => "Down",
        };
        Status {
            state: self.state,
            coordinator: match self.state {
                State::Normal | State::Reorganization => self.coordinator,
                State::Down | State::Election => None,
            },
            group: None,
            incarnation: None,
            term: None,
            phase,
        }
    }
}
