//! Garcia-Molina's Invitation algorithm (H. Garcia-Molina, "Elections in a Distributed Computing
//! System", IEEE Trans. Computers C-31(1), 1982, section 5): elections in a system where messages
//! may be lost and the network may partition, so that "the" coordinator becomes "a coordinator per
//! group".
//!
//! # The paper, and where to find it here
//!
//! Each node keeps the paper's variables: `S(i).s` (`Election`, `Reorganization`, `Normal`;
//! `Down` before boot), `S(i).c` the coordinator, `S(i).g` the group number, a [`GroupId`]
//! `(origin, counter)` that only its origin creates, `S(i).Up` the members a coordinator
//! knows, and the node's `Counter`. `S(i).d`, the task handed out with Ready, has no counterpart.
//!
//! The paper's procedures map onto the handlers:
//! - **Check** (a `Normal` coordinator, every heartbeat, unless a higher coordinator's Check
//!   reached it lately — see the departures): [`Msg::AreYouCoordinator`] to every node it does
//!   not count in `Up` (its members get the heartbeat's [`Msg::Alive`], marked as a Check);
//!   everyone answers, [`Msg::IAmCoordinator`] or [`Msg::NotCoordinator`]. Once all have (or at
//!   the timeout), if any coordinator was found, the node waits a time that grows with the
//!   number of higher-priority coordinators found ([`InvitationConfig::merge_step`] each; the
//!   highest waits not at all), so that the higher coordinator usually invites first, then
//!   calls Merge.
//! - **Merge**: `s = Election`, a fresh group `g = (i, Counter + 1)`, [`Msg::Invitation`] to the
//!   coordinators found and to the node's own old members, [`Msg::Accept`]s collected into `Up`
//!   until every invited node and every member they forwarded to has accepted, or for at most
//!   [`InvitationConfig::accept_window`], then `s = Reorganization`, [`Msg::Ready`] to `Up`,
//!   `s = Normal`.
//! - **Invitation** (the receiver, only when `Normal`): a coordinator forwards the invitation to
//!   its own members; then `s = Election, c = j, g = gn`, Accept to the new coordinator,
//!   `s = Reorganization`.
//! - **Ready**: `s = Normal` if `c` and `g` match.
//! - **Timeout** (a member): the paper's member asks its coordinator AreYouThere every period
//!   and recovers on a "no" or no answer. Here the coordinator pushes instead: [`Msg::Alive`]
//!   with the group id, every heartbeat, to each member it counts in `Up`; a member that hears
//!   none for [`InvitationConfig::silence`], or gets a Check from its own coordinator (which
//!   checks only nodes it does not count), calls Recovery.
//! - **Recovery** (also on boot): a singleton group with a fresh group id, `s = Normal`; its
//!   first Check waits by priority ([`InvitationConfig::first_check_delay`]).
//!
//! Assertion 1 of the invitation paper (any two nodes in `Normal` or `Reorganization` with the same
//! group number have the same coordinator) holds by construction: a node takes `c` and `g`
//! together from one invitation, and the group id names its coordinator (`g.origin == c`). The
//! paper's liveness assertion (with no failures, all nodes end up in one group) is what
//! [`Invitation::liveness_bound`] quantifies, per connected component.
//!
//! # Departures from the paper, and why
//! - Remote procedure calls are asynchronous messages; "no answer" is the [`Timer::Reply`] timeout.
//! - AreYouCoordinator is answered only by coordinators ([`Msg::IAmCoordinator`]): silence and
//!   "no" mean the same to the caller, and silence halves the Check traffic.
//! - **The coordinator's heartbeat replaces the members' polls** (failure detection as in the
//!   ring and Bully here): [`Msg::Alive`] to every member counted in `Up`, each heartbeat, in
//!   whatever step the coordinator is (merging, kept quiet), and a member that hears none for
//!   `silence = 5/4 (heartbeat + max_delay)` recovers — as surely as after an unanswered
//!   AreYouThere (the model is asynchronous: safety never rests on either), about half a timeout
//!   sooner, and for `n - 1` messages a heartbeat instead of `2(n - 1)` polls and answers. Being
//!   dropped from `Up` stops the Alives, which is the paper's "no"; a node that gets an Alive for
//!   a group it is not in answers [`Msg::NotMember`] and the coordinator stops counting it (so
//!   `Up` is pruned, where the paper's is not). Accept has no answer of its own: the paper's "if
//!   Accept is not answered, Recovery" is the [`InvitationConfig::first_silence`] a member waits
//!   after accepting.
//! - **Rounds end when everyone has answered**, not at their timeout: a Check once every node
//!   asked has said yes or no (a node found silent is not waited for), the accept window once
//!   every invited node and every member it forwarded the invitation to (its Accept says how
//!   many) has accepted. The timeouts remain the bounds, for answers that never come. A member
//!   whose coordinator is the node the checker found silent will recover from the same silence
//!   in a moment: it says "no" with whom it follows, the checker keeps waiting for it, and it
//!   sends the checker IAmCoordinator as it recovers. Without this the first survivor to notice
//!   a dead leader merged only the nodes that had noticed too, and the rest a heartbeat later.
//! - A member that does not acknowledge Ready ([`Msg::ReadyAck`]) is dropped from `Up` instead of
//!   sending the whole group into Recovery: with lossy links and large groups one lost message
//!   would otherwise dissolve the group on almost every merge. The dropped member hears no more
//!   Alives and recovers; the next merge takes it back.
//! - The group counter is persisted ([`crate::Command::Persist`]) so that a restarted node never
//!   reuses a group id (unreadable persisted bytes: see [`Invitation::on_start`]).
//! - **The wait before merging is `rank × merge_step`**, `rank` being the number of
//!   higher-priority coordinators the Check found ([`InvitationConfig::merge_step`]). The paper
//!   waits a time proportional to the *priority gap* to the highest coordinator found; with
//!   priorities as line positions that gap can be the whole cluster size even when only one
//!   coordinator outranks the node, so the paper's wait grows with `n` where this one grows with
//!   the number of competing coordinators, and `merge_step` (a heartbeat and two timeouts) is
//!   what a higher coordinator needs to Check and invite first.
//! - An invitation is accepted only from the node's own coordinator (forwarding, or its
//!   coordinator merging) or, by a coordinator, from anyone; that is exactly the paper's message
//!   flow, and it keeps a stale invitation from pulling a single member out of its group.
//! - Membership: a joiner starts as a singleton group and is merged like any other; when the
//!   coordinator leaves gracefully its members call Recovery at once.
//! - **Checks are scheduled by priority, and lower coordinators keep quiet** (the paper scales
//!   only the wait *before merging* by priority, and has every coordinator Check every period,
//!   which makes a cold boot of `n` singleton groups cost `2n²` messages per heartbeat). Here the
//!   paper's idea that the highest coordinator acts first is applied to the Check as well:
//!   1. After Recovery (and boot) the first Check waits
//!      [`first_check_delay`](InvitationConfig::first_check_delay)`(rank)`, `rank` being the
//!      number of members above the node in its view (not counting a coordinator it just found
//!      silent, so that a dead leader's highest member checks at once): zero for the top, else one
//!      heartbeat plus one timeout per further rank, capped at `H/T` ranks (at most `2H`). The
//!      top checks at once; the heartbeat lets a higher coordinator that was already running make
//!      its periodic Check first; the timeout steps order the next ones if the top is down. The
//!      ordering is a cost measure only: nodes whose first Checks overlap (drifting clocks,
//!      members that noticed a dead coordinator at different heartbeats) cost `n` each, and
//!      safety never depends on it.
//!   2. A node that receives a Check from a higher-priority node skips its own Checks
//!      for [`quiet_window`](InvitationConfig::quiet_window) (`3H/2 + T`, more than the
//!      higher coordinator's period on a clock 20 % slow): that coordinator found it and will
//!      invite it. It still answers, so it is found.
//!   3. A coordinator that hears nobody above it — the highest of its component, or a group cut
//!      off by a partition — checks every heartbeat as before, so partitions still heal; the
//!      coordinators below it that hear it stay quiet.
//!
//!   So in the common case only the highest live coordinator Checks. The price: a node that
//!   recovers waits up to `2H` before its first Check, and a node silenced by a higher one that
//!   then stopped coordinating (crashed, or merged into another group) waits up to the quiet
//!   window; [`Invitation::liveness_bound`] counts both. If the top `H/T` nodes of the table
//!   are all down, the rest share the capped delay and Check together (`n²` once, as before).
//!
//! # Cost
//! Members keep O(1) state; a coordinator keeps `Up` and the coordinators its Check found. Each
//! heartbeat costs an Alive per member and, per coordinator that is not kept quiet, an
//! AreYouCoordinator and its answer per node outside its group: `n - 1` once merged (the paper's
//! polls cost `3(n - 1)`). A cold boot of `n` nodes booting together, with the top of the table
//! up, costs exactly `6(n - 1)` messages to a stable leader: the top's Check (`n - 1`
//! AreYouCoordinator, `n - 1` IAmCoordinator) and its one merge (`n - 1` each of Invitation,
//! Accept, Ready, ReadyAck); no other node Checks, since each hears the top before its own first Check. When the leader
//! crashes, its members' silences run out and the highest survivor's Check and merge cost
//! about `6n` (at most `7n`: see [`Invitation::message_bounds`]). After a partition heals, each
//! coordinator that Checks before hearing a higher one costs `2n`, so `k` groups cost about
//! `2k·n` once, then `n - 1` per heartbeat.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::protocol::{
    Bound, Config, Context, Explorable, Kind, Membership, MessageBounds, Model, NodeId, Options,
    Properties, Protocol, Reclock, Scope, Time,
};
use crate::status::{GroupId, State, Status};

/// Invitation's options: none beyond the timing.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize, Hash)]
#[serde(deny_unknown_fields)]
pub struct InvitationOptions {}

impl Options for InvitationOptions {
    const HELP: &'static str = "(Invitation has no options)";
}

/// Invitation's configuration: the common timing and [`InvitationOptions`].
pub type InvitationConfig = Config<InvitationOptions>;

impl InvitationConfig {
    /// How long a merging coordinator collects Accepts: an invitation travels to a coordinator,
    /// is forwarded to its members, and their Accept comes back — three one-way delays, 1.5
    /// timeouts; two timeouts leave a margin.
    pub fn accept_window(&self) -> Time {
        2 * self.timing.timeout
    }

    /// The extra wait before merging per higher-priority coordinator found. It exceeds the time a
    /// higher coordinator may need to run its own Check after ours (a heartbeat) and to have its
    /// invitation delivered (within a timeout), so without faults the highest coordinator invites
    /// the others before they invite anyone.
    pub fn merge_step(&self) -> Time {
        self.timing.heartbeat + 2 * self.timing.timeout
    }

    /// How long after forming a singleton group (boot or Recovery) a node runs its first Check,
    /// by `rank`, the number of members above it in its view: the top of the table at once, every
    /// other node after a heartbeat plus one timeout per rank below the second, capped at
    /// `H / T` steps (so at most `2H`). The top's AreYouCoordinator arrives (within
    /// [`max_delay`](Protocol::max_delay), under a timeout) before anyone else checks, and
    /// the heartbeat lets an older higher coordinator's periodic Check come first; either
    /// silences the lower node ([`Self::quiet_window`]).
    pub fn first_check_delay(&self, rank: usize) -> Time {
        if rank == 0 {
            return 0;
        }
        let steps = (rank as Time - 1).min(self.timing.heartbeat / self.timing.timeout);
        self.timing.heartbeat + steps * self.timing.timeout
    }

    /// How long a coordinator skips its own Check after an AreYouCoordinator from a
    /// higher-priority coordinator: that one's Checks come every heartbeat (up to 1.2 heartbeats
    /// of real time on a clock 20 % slow, plus delay jitter) and will find and invite it.
    pub fn quiet_window(&self) -> Time {
        self.timing.heartbeat * 3 / 2 + self.timing.timeout
    }

    /// How long a member goes without its coordinator's [`Msg::Alive`] before it takes the
    /// group as gone and recovers: `5/4 (heartbeat + max_delay)`. The coordinator sends one every
    /// heartbeat, so between two of them pass at most a heartbeat on a clock 10 % slow plus the
    /// delay jitter, under this silence on a clock 10 % fast (the ring's leader silence).
    pub fn silence(&self) -> Time {
        (self.timing.heartbeat + self.timing.max_delay()) * 5 / 4
    }

    /// The first silence after a member accepts: its Accept must reach the coordinator (a
    /// delay) before that one counts it and sends it Alives — one `max_delay` more than
    /// [`Self::silence`].
    pub fn first_silence(&self) -> Time {
        self.silence() + self.timing.max_delay()
    }
}

type Out = crate::protocol::Out<Msg, Timer>;

/// Invitation's wire messages: the paper's remote calls and their answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, Hash)]
pub enum Msg {
    /// Check, to every node the coordinator does not count in `Up`: "are you a coordinator?"
    AreYouCoordinator,
    /// The "yes" answer to a Check.
    IAmCoordinator,
    /// The "no" answer to AreYouCoordinator: it lets the Check end once everyone answered.
    NotCoordinator {
        /// The answerer's coordinator. If that is the node the checker found silent, the
        /// answerer's silence is running out too: the checker waits for the IAmCoordinator the
        /// answerer sends it when it recovers.
        follows: NodeId,
    },
    /// The coordinator of `group`, every heartbeat, to each member it counts in `Up`: it still
    /// coordinates `group` and counts the receiver (the push that replaces the paper's
    /// AreYouThere polls; see the departures).
    Alive {
        /// The sender's group.
        group: GroupId,
        /// This heartbeat is also the sender's Check: a receiver that is not in `group` treats
        /// it as AreYouCoordinator.
        check: bool,
    },
    /// The answer of a node that got an Alive for a group it is not in: the sender stops
    /// counting it.
    NotMember {
        /// The group of the Alive.
        group: GroupId,
    },
    /// Join group `group`, coordinated by `group.origin` (sent by it, or forwarded by the
    /// receiver's coordinator).
    Invitation {
        /// The new group.
        group: GroupId,
    },
    /// The sender joins `group` (to its coordinator).
    Accept {
        /// The group accepted.
        group: GroupId,
        /// To how many of its own members the sender (a coordinator) forwarded the invitation:
        /// their Accepts are still to come.
        forwarded: u32,
    },
    /// The merge of `group` is over: resume normal operation.
    Ready {
        /// The group.
        group: GroupId,
    },
    /// The answer to Ready.
    ReadyAck {
        /// The group.
        group: GroupId,
    },
}

impl Kind for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::AreYouCoordinator => "AreYouCoordinator",
            Msg::IAmCoordinator => "IAmCoordinator",
            Msg::NotCoordinator { .. } => "NotCoordinator",
            Msg::Alive { .. } => "Alive",
            Msg::NotMember { .. } => "NotMember",
            Msg::Invitation { .. } => "Invitation",
            Msg::Accept { .. } => "Accept",
            Msg::Ready { .. } => "Ready",
            Msg::ReadyAck { .. } => "ReadyAck",
        }
    }
}

/// Invitation's timers.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize, Hash)]
pub enum Timer {
    /// Periodic, a coordinator's: Alive to its members, and its Check.
    Heartbeat,
    /// The node's outstanding request round is over (answers overdue, or the window closed).
    Reply,
    /// The priority-scaled wait before a merge is over.
    MergeWait,
    /// A member heard no Alive from its coordinator for [`InvitationConfig::silence`].
    Silence,
}

impl Kind for Timer {
    fn kind(&self) -> &'static str {
        match self {
            Timer::Heartbeat => "Heartbeat",
            Timer::Reply => "Reply",
            Timer::MergeWait => "MergeWait",
            Timer::Silence => "Silence",
        }
    }
}

/// The request round a node is waiting on, if any.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Step {
    /// Nothing outstanding.
    Idle,
    /// A coordinator's Check; `found` are those that answered yes.
    Checking {
        /// Coordinators found so far.
        found: BTreeSet<NodeId>,
        /// Asked nodes yet to answer (all but a node found silent): the Check ends early once
        /// none is left.
        awaiting: BTreeSet<NodeId>,
    },
    /// Waiting (by priority) before merging with `found`.
    MergeWait {
        /// Coordinators to invite.
        found: BTreeSet<NodeId>,
    },
    /// Invitations sent; collecting Accepts into `up`.
    Accepting {
        /// Directly invited nodes that have not accepted.
        awaiting: BTreeSet<NodeId>,
        /// Accepts announced (forwarded invitations) and not yet received; the window closes
        /// early once this and `awaiting` are spent.
        owed: i64,
    },
    /// Ready sent to `up`; `pending` have not answered.
    Readying {
        /// Members of `up` still to answer.
        pending: BTreeSet<NodeId>,
    },
}

/// One node running Garcia-Molina's Invitation algorithm (see the [module docs](self)).
#[derive(Debug, Clone, Hash)]
pub struct Invitation {
    config: InvitationConfig,
    /// `S(i).s`.
    state: State,
    /// `S(i).g`; its origin is `S(i).c`, the coordinator.
    group: Option<GroupId>,
    /// The last group counter this node used (persisted).
    counter: u64,
    /// `S(i).Up`: only a coordinator fills it.
    up: BTreeSet<NodeId>,
    step: Step,
    /// Until when this node skips its own Check: a higher-priority coordinator's AreYouCoordinator
    /// arrived recently, and that coordinator will invite it.
    quiet_until: Time,
    /// The coordinator whose silence made this node recover, until it is heard from again:
    /// its Checks neither wait for that node's answer nor rank below it.
    silent: Option<NodeId>,
    /// The last checker this node, a member, answered "no": it is told when this node recovers.
    told_no: Option<NodeId>,
}

impl Invitation {
    /// The paper's `S(i).c`.
    fn coordinator(&self) -> Option<NodeId> {
        self.group.map(|g| g.origin)
    }

    fn is_coordinator(&self, me: NodeId) -> bool {
        self.coordinator() == Some(me)
    }

    /// The members this node coordinates (empty unless it is a coordinator).
    pub fn up(&self) -> &BTreeSet<NodeId> {
        &self.up
    }

    /// A fresh group id of this node, with the counter persisted first.
    fn new_group(&mut self, me: NodeId, out: &mut Out) -> GroupId {
        self.counter += 1;
        out.persist(self.counter.to_le_bytes().to_vec());
        GroupId {
            origin: me,
            counter: self.counter,
        }
    }

    fn await_replies(&mut self, step: Step, after: Time, out: &mut Out) {
        self.step = step;
        out.set_timer(Timer::Reply, after);
    }

    /// Ends the outstanding round or merge wait, if any.
    fn stop_round(&mut self, out: &mut Out) {
        match self.step {
            Step::Idle => return,
            Step::MergeWait { .. } => out.cancel_timer(Timer::MergeWait),
            _ => out.cancel_timer(Timer::Reply),
        }
        self.step = Step::Idle;
    }

    /// The paper's Recovery: a singleton group led by this node, whose first Check waits by rank
    /// ([`InvitationConfig::first_check_delay`]; a coordinator found silent does not count).
    fn recovery(&mut self, cx: &Context<'_>, out: &mut Out) {
        if let Some(checker) = self.told_no.take() {
            out.send(checker, Msg::IAmCoordinator);
        }
        self.stop_round(out);
        out.cancel_timer(Timer::Silence);
        self.group = Some(self.new_group(cx.id, out));
        self.up.clear();
        self.state = State::Normal;
        let above = cx.members.higher_than(cx.id);
        let rank = above.len() - usize::from(self.silent.is_some_and(|s| above.contains(&s)));
        out.set_timer(Timer::Heartbeat, self.config.first_check_delay(rank));
    }

    /// A member heard its coordinator: the silence starts over.
    fn heard_coordinator(&mut self, after: Time, out: &mut Out) {
        out.set_timer(Timer::Silence, after);
    }

    /// The paper's Merge: invite the coordinators found and our own members into a new group.
    fn merge(&mut self, me: NodeId, found: BTreeSet<NodeId>, out: &mut Out) {
        let group = self.new_group(me, out);
        self.state = State::Election;
        self.group = Some(group);
        // The old members, as in the paper: `Up` may still name nodes that have since left for
        // another group; they refuse an invitation that does not come from their own
        // coordinator (and keep the window open to its end).
        let old_members = std::mem::take(&mut self.up);
        let awaiting: BTreeSet<NodeId> = found.union(&old_members).copied().collect();
        for &j in &awaiting {
            out.send(j, Msg::Invitation { group });
        }
        let accepting = Step::Accepting { awaiting, owed: 0 };
        self.await_replies(accepting, self.config.accept_window(), out);
    }

    /// The Check is over (everyone answered, or the timeout): merge with the coordinators found,
    /// at once if none outranks this node, else after the priority-scaled wait.
    fn end_check(&mut self, me: NodeId, found: BTreeSet<NodeId>, out: &mut Out) {
        self.step = Step::Idle;
        if found.is_empty() {
            return;
        }
        let higher = found.iter().filter(|&&j| j > me).count() as Time;
        if higher == 0 {
            self.merge(me, found, out);
        } else {
            self.step = Step::MergeWait { found };
            out.set_timer(Timer::MergeWait, higher * self.config.merge_step());
        }
    }

    /// The accept window is over (everyone invited answered, or the timeout): Ready to `Up`.
    fn end_accepts(&mut self, out: &mut Out) {
        let Some(group) = self.group else { return };
        self.state = State::Reorganization;
        for &j in &self.up {
            out.send(j, Msg::Ready { group });
        }
        let pending = self.up.clone();
        self.await_replies(Step::Readying { pending }, self.config.timing.timeout, out);
        self.finish_if_ready(out);
    }

    /// Ends a merge once every member of `Up` acknowledged Ready (or the round timed out).
    fn finish_if_ready(&mut self, out: &mut Out) {
        if matches!(&self.step, Step::Readying { pending } if pending.is_empty()) {
            self.state = State::Normal;
            self.stop_round(out);
        }
    }

    /// A coordinator's heartbeat: Alive to every member it counts, and — when `Normal`, idle and
    /// not kept quiet — its Check of everyone else.
    fn on_heartbeat(&mut self, cx: &Context<'_>, out: &mut Out) {
        out.set_timer(Timer::Heartbeat, self.config.timing.heartbeat);
        let Some(group) = self.group else { return };
        if group.origin != cx.id {
            return;
        }
        let check =
            self.state == State::Normal && self.step == Step::Idle && cx.now >= self.quiet_until;
        for &j in &self.up {
            out.send(j, Msg::Alive { group, check });
        }
        if !check {
            return;
        }
        let mut awaiting = BTreeSet::new();
        for &j in cx.members.all() {
            if j != cx.id && !self.up.contains(&j) {
                out.send(j, Msg::AreYouCoordinator);
                if Some(j) != self.silent {
                    awaiting.insert(j);
                }
            }
        }
        if awaiting.is_empty() {
            return;
        }
        let found = BTreeSet::new();
        self.await_replies(
            Step::Checking { found, awaiting },
            self.config.timing.timeout,
            out,
        );
    }

    /// An answer to this node's Check from `from`: yes, or no and whom it follows.
    fn on_check_answer(&mut self, me: NodeId, from: NodeId, no: Option<NodeId>, out: &mut Out) {
        let Step::Checking { found, awaiting } = &mut self.step else {
            return;
        };
        match no {
            None => {
                found.insert(from);
            }
            // It will recover from the same silence, and say so.
            Some(follows) if Some(follows) == self.silent => return,
            Some(_) => {}
        }
        awaiting.remove(&from);
        if awaiting.is_empty() {
            let found = std::mem::take(found);
            out.cancel_timer(Timer::Reply);
            self.end_check(me, found, out);
        }
    }

    /// A Check from `from` (AreYouCoordinator, or an Alive for a group this node is not in).
    fn on_check(&mut self, cx: &Context<'_>, from: NodeId, out: &mut Out) {
        // Our own coordinator checks only nodes it does not count in its group: it has dropped
        // us, restarted, or moved on to another group without us (the paper's "no").
        if self.coordinator() == Some(from) {
            self.recovery(cx, out);
        }
        // One above us has found us (we answer if we coordinate) and will invite us: our own
        // Check would only repeat its broadcast.
        if from > cx.id {
            self.quiet_until = cx.now.saturating_add(self.config.quiet_window());
        }
        match self.coordinator() {
            Some(c) if c == cx.id && self.state == State::Normal => {
                out.send(from, Msg::IAmCoordinator)
            }
            coordinator => {
                let follows = coordinator.unwrap_or(cx.id);
                if follows != cx.id {
                    self.told_no = Some(from);
                }
                out.send(from, Msg::NotCoordinator { follows });
            }
        }
    }

    fn on_reply_timeout(&mut self, cx: &Context<'_>, out: &mut Out) {
        match std::mem::replace(&mut self.step, Step::Idle) {
            Step::Idle | Step::MergeWait { .. } => {}
            Step::Checking { found, .. } => self.end_check(cx.id, found, out),
            Step::Accepting { .. } => self.end_accepts(out),
            Step::Readying { pending } => {
                // Members that did not acknowledge are dropped (see the module docs).
                for j in &pending {
                    self.up.remove(j);
                }
                self.state = State::Normal;
            }
        }
    }

    fn on_invitation(&mut self, cx: &Context<'_>, from: NodeId, group: GroupId, out: &mut Out) {
        let was_coordinator = self.is_coordinator(cx.id);
        let acceptable = self.state == State::Normal
            && self.group != Some(group)
            && group.origin != cx.id
            && (was_coordinator || self.coordinator() == Some(from));
        if !acceptable {
            return;
        }
        self.stop_round(out);
        let mut forwarded = 0;
        if was_coordinator {
            out.cancel_timer(Timer::Heartbeat);
            for &j in self.up.iter().filter(|&&j| j != group.origin) {
                out.send(j, Msg::Invitation { group });
                forwarded += 1;
            }
        }
        self.up.clear();
        self.group = Some(group);
        out.send(group.origin, Msg::Accept { group, forwarded });
        self.state = State::Reorganization;
        self.heard_coordinator(self.config.first_silence(), out);
    }

    /// An Accept of this node's forming group from `from`, which forwarded the invitation to
    /// `forwarded` members of its own.
    fn on_accept(&mut self, from: NodeId, group: GroupId, forwarded: u32, out: &mut Out) {
        let Step::Accepting { awaiting, owed } = &mut self.step else {
            return;
        };
        if self.group != Some(group) {
            return;
        }
        if awaiting.remove(&from) {
            *owed += i64::from(forwarded);
            self.up.insert(from);
        } else if self.up.insert(from) {
            *owed -= 1;
        }
        if awaiting.is_empty() && *owed <= 0 {
            self.end_accepts(out);
        }
    }
}

/// `quiet_until` is a deadline compared with `now`.
impl Explorable for Invitation {
    fn reclock(&mut self, clock: Reclock) {
        self.quiet_until = clock.future(self.quiet_until);
    }

    fn epoch(&self) -> u64 {
        self.counter
    }
}

impl Protocol for Invitation {
    const NAME: &'static str = "invitation";
    type Options = InvitationOptions;
    type Msg = Msg;
    type Timer = Timer;

    fn new(config: &InvitationConfig) -> Self {
        Invitation {
            config: *config,
            state: State::Down,
            group: None,
            counter: 0,
            up: BTreeSet::new(),
            step: Step::Idle,
            quiet_until: 0,
            silent: None,
            told_no: None,
        }
    }

    /// Asynchronous model: Assertion 1 within each group, whose id is never reused, in any run;
    /// no validity claim (a merge may be led by a lower coordinator that invited first).
    fn properties(_config: &InvitationConfig) -> Properties {
        Properties {
            model: Model::Asynchronous,
            agreement: Some(Scope::Group),
            unique_leader: Some(Scope::Group),
            highest_wins: false,
            quorum: false,
            membership: true,
        }
    }

    /// `2·F + 4·(3H + W + 7T)` for heartbeat `H`, timeout `T`, quiet window `W = 3H/2 + T`
    /// ([`InvitationConfig::quiet_window`]) and first silence `F`
    /// ([`InvitationConfig::first_silence`]), independent of `n` (every round sends in
    /// parallel).
    ///
    /// Every request is answered within `T`. Within `F` of the last fault every member whose
    /// coordinator is gone, or does not count it in `Up`, has missed its Alives and recovered; a
    /// member can lose its group later only through a merge that passed it by, which recovers it
    /// within another `F` (hence `2F`). A merge *round* of the highest-priority coordinator `A`
    /// of a component that is not kept quiet takes at most `3H + W + 7T`: `A` may be finishing a
    /// merge (`3T`: accept window and Ready); its next Check comes within `2H` (a heartbeat, or
    /// [`InvitationConfig::first_check_delay`] after a Recovery) plus `W` if an AreYouCoordinator
    /// from a higher node that has since stopped coordinating (crashed, or merged into another
    /// group) silenced it; the Check takes `T`, it waits zero (no higher coordinator) and its
    /// merge takes `2T + T`; `H` more covers a heartbeat skipped while busy. A coordinator kept
    /// quiet by a live higher coordinator is found and invited by that one's Check, so quiet
    /// nodes do not stall a round. Every coordinator that is `Normal` when `A`'s invitation
    /// arrives joins `A`'s group with all its members. A lower coordinator `B` can escape a round
    /// only by merging at the same time; it does so only when it saw no higher coordinator (`A`
    /// was busy) or after waiting `merge_step` per higher coordinator, which usually outlasts
    /// `A`'s next Check and invitation. So each round leaves only coordinators whose merges began
    /// before `A`'s, whose groups `A` absorbs in the next round; four rounds cover a merge begun
    /// before the last fault, the groups it raced, the recoveries it caused, and the final merge.
    fn liveness_bound(config: &InvitationConfig, _n: usize) -> Time {
        let (h, t, w) = (
            config.timing.heartbeat,
            config.timing.timeout,
            config.quiet_window(),
        );
        2 * config.first_silence() + 4 * (3 * h + w + 7 * t)
    }

    /// The complexity table's scenarios, counted as the simulator counts them (every message
    /// until the last status change):
    /// - boot: only the top Checks (`n - 1` AreYouCoordinator, `n - 1` answers), then one merge
    ///   (Invitation, Accept, Ready, ReadyAck to each of the `n - 1` others);
    /// - best (`n - 2` restarts as the leader crashes): the `n - 2` members' silences run out and
    ///   they recover as singletons before the restarted `n - 2` runs its first Check (a
    ///   heartbeat after its boot): `n - 1` asked, `n - 2` answer, and one merge of `n - 2`;
    /// - worst (node 0 restarts): the highest member, `n - 2`, checks the moment its silence runs
    ///   out, when the other members' silences may not have (their last Alive arrived a little
    ///   later): each of those says "no" first and "yes" when it recovers — at most `n - 2` more
    ///   answers, hence a bound, not a count.
    fn message_bounds(n: u64) -> MessageBounds {
        let n1 = n.saturating_sub(1);
        let n2 = n.saturating_sub(2);
        MessageBounds {
            boot: Some(Bound::exact("2(n-1) check+answers + 4(n-1) merge", 6 * n1)),
            best: Some(Bound::exact(
                "(n-1)+(n-2) check + 4(n-2) merge",
                n1 + n2 + 4 * n2,
            )),
            worst: Some(Bound::at_most(
                "(n-1)+2(n-2) check + 4(n-2) merge",
                n1 + 2 * n2 + 4 * n2,
            )),
        }
    }

    /// Boot is the paper's Recovery, continuing the persisted group counter (0 on the first
    /// boot). Persisted bytes that are not the 8 this protocol writes cannot tell the last
    /// counter, and restarting at 0 would reuse group ids this node already handed out: a random
    /// counter from `2⁶³ … 2⁶³ + 2⁶²` is taken instead (as the asynchronous Bully does with its
    /// incarnation), which makes a repeated group id unlikely, not impossible, and leaves room to
    /// count on.
    fn on_start(&mut self, cx: &mut Context<'_>, persisted: Option<&[u8]>, out: &mut Out) {
        self.counter = match persisted.map(<[u8; 8]>::try_from) {
            None => 0,
            Some(Ok(bytes)) => u64::from_le_bytes(bytes),
            Some(Err(_)) => (cx.rng.next_u64() >> 2) | 1 << 63,
        };
        self.recovery(cx, out);
    }

    fn on_message(&mut self, cx: &mut Context<'_>, from: NodeId, msg: Msg, out: &mut Out) {
        // A node that left (or never joined) has no say, whatever is still in flight from it.
        if from == cx.id || !cx.members.contains(from) {
            return;
        }
        if self.silent == Some(from) {
            self.silent = None;
        }
        match msg {
            Msg::AreYouCoordinator => self.on_check(cx, from, out),
            Msg::IAmCoordinator => self.on_check_answer(cx.id, from, None, out),
            Msg::NotCoordinator { follows } => {
                self.on_check_answer(cx.id, from, Some(follows), out)
            }
            Msg::Alive { group, check } => {
                if self.group == Some(group) && group.origin == from {
                    // Our coordinator lives: a checker we told "no" hears no more from us.
                    self.told_no = None;
                    self.heard_coordinator(self.config.silence(), out);
                } else {
                    out.send(from, Msg::NotMember { group });
                    if check {
                        self.on_check(cx, from, out);
                    }
                }
            }
            Msg::NotMember { group } => {
                if self.group == Some(group) && self.is_coordinator(cx.id) {
                    self.up.remove(&from);
                }
            }
            Msg::Invitation { group } => self.on_invitation(cx, from, group, out),
            Msg::Accept { group, forwarded } => self.on_accept(from, group, forwarded, out),
            Msg::Ready { group } => {
                let ours = self.group == Some(group) && group.origin == from;
                if ours && matches!(self.state, State::Reorganization | State::Normal) {
                    self.state = State::Normal;
                    out.send(from, Msg::ReadyAck { group });
                    self.heard_coordinator(self.config.silence(), out);
                }
            }
            Msg::ReadyAck { group } => {
                if let Step::Readying { pending } = &mut self.step
                    && self.group == Some(group)
                {
                    pending.remove(&from);
                    self.finish_if_ready(out);
                }
            }
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, timer: Timer, out: &mut Out) {
        match timer {
            Timer::Heartbeat => self.on_heartbeat(cx, out),
            Timer::Reply => self.on_reply_timeout(cx, out),
            Timer::MergeWait => {
                if let Step::MergeWait { found } = &mut self.step {
                    let found = std::mem::take(found);
                    self.merge(cx.id, found, out);
                }
            }
            Timer::Silence => {
                self.silent = self.coordinator();
                self.recovery(cx, out);
            }
        }
    }

    fn on_membership(&mut self, cx: &mut Context<'_>, change: Membership, out: &mut Out) {
        // A joiner boots as a singleton group and is merged by the next Check that finds it.
        let Membership::Left(gone) = change else {
            return;
        };
        if gone != cx.id && self.coordinator() == Some(gone) {
            return self.recovery(cx, out);
        }
        self.up.remove(&gone);
        if self.silent == Some(gone) {
            self.silent = None;
        }
        match &mut self.step {
            Step::Checking { found, awaiting } => {
                found.remove(&gone);
                if awaiting.remove(&gone) && awaiting.is_empty() {
                    let found = std::mem::take(found);
                    out.cancel_timer(Timer::Reply);
                    self.end_check(cx.id, found, out);
                }
            }
            Step::MergeWait { found } => {
                found.remove(&gone);
            }
            Step::Accepting { awaiting, owed } => {
                if awaiting.remove(&gone) && awaiting.is_empty() && *owed <= 0 {
                    self.end_accepts(out);
                }
            }
            Step::Readying { pending } => {
                pending.remove(&gone);
                self.finish_if_ready(out);
            }
            Step::Idle => {}
        }
    }

    fn status(&self) -> Status {
        Status {
            state: self.state,
            coordinator: self.coordinator(),
            group: self.group,
            incarnation: None,
            term: None,
            phase: match self.state {
                State::Down => "Down",
                State::Election => "Merging",
                State::Reorganization => "Reorganization",
                State::Normal => "Normal",
            },
        }
    }
}
