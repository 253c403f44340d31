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
//!   reached it lately — see the departures): [`Msg::AreYouCoordinator`] to every node; those that
//!   are coordinators answer. If any did, the node waits a time that grows with the number of
//!   higher-priority coordinators found ([`InvitationConfig::merge_step`] each; the highest waits
//!   not at all), so that the higher coordinator usually invites first, then calls Merge.
//! - **Merge**: `s = Election`, a fresh group `g = (i, Counter + 1)`, [`Msg::Invitation`] to the
//!   coordinators found and to the node's own old members, [`Msg::Accept`]s collected into `Up` for
//!   [`InvitationConfig::accept_window`], then `s = Reorganization`, [`Msg::Ready`] to `Up`,
//!   `s = Normal`.
//! - **Invitation** (the receiver, only when `Normal`): a coordinator forwards the invitation to
//!   its own members; then `s = Election, c = j, g = gn`, Accept to the new coordinator,
//!   `s = Reorganization`.
//! - **Ready**: `s = Normal` if `c` and `g` match.
//! - **Timeout** (a member, every heartbeat): [`Msg::AreYouThere`] with the group id to its
//!   coordinator, which says yes only if it still coordinates that group and counts the asker in
//!   `Up`. A "no", or no answer within the timeout, calls Recovery.
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
//! - Accept has no answer of its own: the paper's "if Accept is not answered, Recovery" is left to
//!   the member's periodic AreYouThere, which the coordinator answers "no" to anyone not in `Up`.
//!   While a coordinator still collects Accepts, an AreYouThere about the new group counts as an
//!   Accept: only a node that accepted asks about that group, and its question may overtake its
//!   Accept on a reordering network (without this, a member whose heartbeat falls just after its
//!   Accept was expelled on every merge).
//! - A member that does not acknowledge Ready ([`Msg::ReadyAck`]) is dropped from `Up` instead of
//!   sending the whole group into Recovery: with lossy links and large groups one lost message
//!   would otherwise dissolve the group on almost every merge. The dropped member learns it from
//!   its next AreYouThere and recovers; the next merge takes it back.
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
//!      number of members above the node in its view: zero for the top of the table, else one
//!      heartbeat plus one timeout per further rank, capped at `H/T` ranks (at most `2H`). The
//!      top checks at once; the heartbeat lets a higher coordinator that was already running make
//!      its periodic Check first; the timeout steps order the next ones if the top is down. The
//!      ordering is a cost measure only: nodes whose first Checks overlap (drifting clocks,
//!      members that noticed a dead coordinator at different heartbeats) cost `n` each, and
//!      safety never depends on it.
//!   2. A node that receives AreYouCoordinator from a higher-priority node skips its own Checks
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
//! heartbeat costs two messages per member (AreYouThere and its reply) and `n - 1` AreYouCoordinator
//! per coordinator that is not kept quiet plus one answer per other coordinator: `3(n - 1)` once
//! merged. A cold boot of `n` nodes booting together, with the top of the table up, costs exactly
//! `6(n - 1)` messages to a stable leader: the top's Check (`n - 1` AreYouCoordinator, `n - 1`
//! IAmCoordinator) and its one merge (`n - 1` each of Invitation, Accept, Ready, ReadyAck); no
//! other node Checks, since each hears the top before its own first Check. When the leader
//! crashes, its members recover and the next node's Check silences the rest the same way (about
//! `9n` in the simulator's complexity table). After a partition heals, each coordinator that
//! Checks before hearing a higher one costs `n`, so `k` groups cost about `k·n` once, then
//! `3(n - 1)` per heartbeat.

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
}

type Out = crate::protocol::Out<Msg, Timer>;

/// Invitation's wire messages: the paper's remote calls and their answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, Hash)]
pub enum Msg {
    /// Check: "are you a coordinator?"
    AreYouCoordinator,
    /// The "yes" answer to AreYouCoordinator ("no" is not sent).
    IAmCoordinator,
    /// A member's Timeout check: "are you still my coordinator in this group?"
    AreYouThere {
        /// The asker's group.
        group: GroupId,
    },
    /// The answer to AreYouThere.
    AreYouThereReply {
        /// The group asked about.
        group: GroupId,
        /// Whether the sender coordinates `group` and counts the asker as a member.
        member: bool,
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
            Msg::AreYouThere { .. } => "AreYouThere",
            Msg::AreYouThereReply { .. } => "AreYouThereReply",
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
    /// Periodic: a coordinator checks for other coordinators, a member checks its coordinator.
    Heartbeat,
    /// The node's outstanding request round is over (answers overdue, or the window closed).
    Reply,
    /// The priority-scaled wait before a merge is over.
    MergeWait,
}

impl Kind for Timer {
    fn kind(&self) -> &'static str {
        match self {
            Timer::Heartbeat => "Heartbeat",
            Timer::Reply => "Reply",
            Timer::MergeWait => "MergeWait",
        }
    }
}

/// The request round a node is waiting on, if any.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Step {
    /// Nothing outstanding.
    Idle,
    /// A member's AreYouThere to its coordinator.
    Polling,
    /// A coordinator's AreYouCoordinator; `found` are those that answered.
    Checking {
        /// Coordinators found so far.
        found: BTreeSet<NodeId>,
    },
    /// Waiting (by priority) before merging with `found`.
    MergeWait {
        /// Coordinators to invite.
        found: BTreeSet<NodeId>,
    },
    /// Invitations sent; collecting Accepts into `up`.
    Accepting,
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
    /// ([`InvitationConfig::first_check_delay`]).
    fn recovery(&mut self, cx: &Context<'_>, out: &mut Out) {
        self.stop_round(out);
        self.group = Some(self.new_group(cx.id, out));
        self.up.clear();
        self.state = State::Normal;
        let rank = cx.members.higher_than(cx.id).len();
        out.set_timer(Timer::Heartbeat, self.config.first_check_delay(rank));
    }

    /// The paper's Merge: invite the coordinators found and our own members into a new group.
    fn merge(&mut self, me: NodeId, found: BTreeSet<NodeId>, out: &mut Out) {
        let group = self.new_group(me, out);
        self.state = State::Election;
        self.group = Some(group);
        // The old members, as in the paper: `Up` is not pruned between merges, so it may still
        // name nodes that have since left for another group; they refuse an invitation that
        // does not come from their own coordinator.
        let old_members = std::mem::take(&mut self.up);
        for &j in found.union(&old_members) {
            out.send(j, Msg::Invitation { group });
        }
        self.await_replies(Step::Accepting, self.config.accept_window(), out);
    }

    /// Ends a merge once every member of `Up` acknowledged Ready (or the round timed out).
    fn finish_if_ready(&mut self, out: &mut Out) {
        if matches!(&self.step, Step::Readying { pending } if pending.is_empty()) {
            self.state = State::Normal;
            self.stop_round(out);
        }
    }

    fn on_heartbeat(&mut self, cx: &Context<'_>, out: &mut Out) {
        out.set_timer(Timer::Heartbeat, self.config.timing.heartbeat);
        if self.step != Step::Idle {
            return;
        }
        let Some(group) = self.group else { return };
        if group.origin == cx.id {
            if self.state == State::Normal && cx.now >= self.quiet_until {
                out.broadcast(Msg::AreYouCoordinator);
                let check = Step::Checking {
                    found: BTreeSet::new(),
                };
                self.await_replies(check, self.config.timing.timeout, out);
            }
        } else {
            out.send(group.origin, Msg::AreYouThere { group });
            self.await_replies(Step::Polling, self.config.timing.timeout, out);
        }
    }

    fn on_reply_timeout(&mut self, cx: &Context<'_>, out: &mut Out) {
        match std::mem::replace(&mut self.step, Step::Idle) {
            Step::Idle | Step::MergeWait { .. } => {}
            Step::Polling => self.recovery(cx, out),
            Step::Checking { found } if found.is_empty() => {}
            Step::Checking { found } => {
                let higher = found.iter().filter(|&&j| j > cx.id).count() as Time;
                if higher == 0 {
                    self.merge(cx.id, found, out);
                } else {
                    self.step = Step::MergeWait { found };
                    out.set_timer(Timer::MergeWait, higher * self.config.merge_step());
                }
            }
            Step::Accepting => {
                self.state = State::Reorganization;
                let Some(group) = self.group else { return };
                for &j in &self.up {
                    out.send(j, Msg::Ready { group });
                }
                let pending = self.up.clone();
                self.await_replies(Step::Readying { pending }, self.config.timing.timeout, out);
                self.finish_if_ready(out);
            }
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
        if was_coordinator {
            for &j in &self.up {
                out.send(j, Msg::Invitation { group });
            }
        }
        self.up.clear();
        self.group = Some(group);
        out.send(group.origin, Msg::Accept { group });
        self.state = State::Reorganization;
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

    /// `2·(H + T) + 4·(3H + W + 7T)` for heartbeat `H`, timeout `T` and quiet window
    /// `W = 3H/2 + T` ([`InvitationConfig::quiet_window`]): `20H + 34T`, independent of `n`
    /// (every round sends in parallel).
    ///
    /// Every request is answered within `T`. Within `H + T` of the last fault every member whose
    /// coordinator is gone, or does not count it in `Up`, has polled and recovered; a member can
    /// lose its group later only through a merge that passed it by, which recovers it within
    /// another `H + T` (hence `2(H + T)`). A merge *round* of the highest-priority coordinator `A`
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
        2 * (h + t) + 4 * (3 * h + w + 7 * t)
    }

    /// The complexity table's scenarios, counted exactly as the simulator counts them (every
    /// message until the last status change):
    /// - boot: only the top Checks (`n - 1` AreYouCoordinator, `n - 1` answers), then one merge
    ///   (Invitation, Accept, Ready, ReadyAck to each of the `n - 1` others);
    /// - best (n−2 restarts as the leader crashes): the `n - 2` members poll the dead leader and
    ///   recover as singletons, `n - 2` Checks (`n - 1` asked, `n - 2` answer) and merges them;
    /// - worst (node 0 restarts): as best, but node 0's first Check comes before `n - 2`'s (another
    ///   `n - 1` asked, `n - 2` answers), and one member's poll during the merge is answered.
    fn message_bounds(n: u64) -> MessageBounds {
        let n1 = n.saturating_sub(1);
        let n2 = n.saturating_sub(2);
        MessageBounds {
            boot: Some(Bound::exact("2(n-1) check+answers + 4(n-1) merge", 6 * n1)),
            best: Some(Bound::exact(
                "(n-2) polls + (n-1)+(n-2) check + 4(n-2) merge",
                n2 + n1 + n2 + 4 * n2,
            )),
            worst: Some(Bound::exact(
                "(n-2)+2 polls/reply + 2(n-1)+2(n-2) checks + 4(n-2) merge",
                n2 + 2 + 2 * n1 + 2 * n2 + 4 * n2,
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
        match msg {
            Msg::AreYouCoordinator => {
                // This comes from a Normal coordinator's Check. One above us has found us (we
                // answer below if we coordinate) and will invite us: our own Check would only
                // repeat its broadcast.
                if from > cx.id {
                    self.quiet_until = cx.now.saturating_add(self.config.quiet_window());
                }
                if self.state == State::Normal && self.is_coordinator(cx.id) {
                    out.send(from, Msg::IAmCoordinator);
                }
            }
            Msg::IAmCoordinator => {
                if let Step::Checking { found } = &mut self.step {
                    found.insert(from);
                }
            }
            Msg::AreYouThere { group } => {
                let ours = self.group == Some(group) && self.is_coordinator(cx.id);
                // A node asks about a group only after accepting it, and on a reordering network
                // the question may overtake its Accept: while Accepts are still welcome, it
                // counts as one.
                if ours && self.step == Step::Accepting {
                    self.up.insert(from);
                }
                let member = ours && self.up.contains(&from);
                out.send(from, Msg::AreYouThereReply { group, member });
            }
            Msg::AreYouThereReply { group, member } => {
                if self.step == Step::Polling && self.group == Some(group) {
                    if member {
                        self.stop_round(out);
                    } else {
                        self.recovery(cx, out);
                    }
                }
            }
            Msg::Invitation { group } => self.on_invitation(cx, from, group, out),
            Msg::Accept { group } => {
                if self.step == Step::Accepting && self.group == Some(group) {
                    self.up.insert(from);
                }
            }
            Msg::Ready { group } => {
                let ours = self.group == Some(group) && group.origin == from;
                if ours && matches!(self.state, State::Reorganization | State::Normal) {
                    self.state = State::Normal;
                    out.send(from, Msg::ReadyAck { group });
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
        match &mut self.step {
            Step::Checking { found } | Step::MergeWait { found } => {
                found.remove(&gone);
            }
            Step::Readying { pending } => {
                pending.remove(&gone);
                self.finish_if_ready(out);
            }
            Step::Idle | Step::Polling | Step::Accepting => {}
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
