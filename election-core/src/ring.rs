//! Chang–Roberts ring election over the peer-to-peer report's "next node".
//!
//! Sources: E. Chang and R. Roberts, "An improved algorithm for decentralized extrema-finding in
//! circular configurations of processes" (CACM 22(5), 1979), and the peer-to-peer report in
//! `seeds/001_*.txt`: every node points at its *next node*, the next alive node of higher
//! priority, wrapping from the highest to the lowest
//! ([`Members::next_after`](crate::protocol::Members::next_after)); nodes join by announcing a
//! new address to all (a PUT) and leave gracefully.
//!
//! # Chang–Roberts, as found here
//! * Nodes are *participants* or *non-participants*; a participant here remembers `best`, the
//!   highest candidate it has forwarded in the current election.
//! * An initiator marks itself participant and sends `Election(me)` to its next node.
//! * On `Election(c)`: if `c > me`, forward `Election(c)` and become participant; if `c < me`
//!   and not participant, forward `Election(me)` instead and become participant; if `c < me` and
//!   participant, swallow it; if `c == me`, the message went round the whole ring: this node has
//!   the highest id and wins.
//! * The winner sends `Coordinator(me)` once around the ring; every node notes the coordinator,
//!   becomes non-participant and forwards it, except to the winner itself. With one initiator on
//!   a ring of `n` live nodes the election takes `n + d` `Election` messages (`d` = hops from the
//!   initiator to the highest node) and the announcement exactly `n - 1`; with all `n`
//!   initiating at once (a fresh start), `2n - 1` and `n - 1`.
//!
//! # What is guaranteed
//!
//! Inside the synchronous model (every hop delivered and acknowledged within the timeout,
//! nothing lost, no partition; crashes, recoveries, joins and leaves allowed): **at most one live
//! node is the leader at any instant** — the election that makes a node leader passed every live
//! node, and a higher live node swallows a lower candidacy, so two leaders cannot coexist — and,
//! after the last fault, within [`Ring::liveness_bound`], every live node follows the **highest
//! live node**. That is what Chang and Roberts prove (one winner, the maximum) carried over to
//! failures, and what the simulator checks.
//!
//! Garcia-Molina's Assertion 1 (any two nodes in `Normal` follow the same coordinator) is *not*
//! claimed: Chang–Roberts has no halting phase, so a member keeps following its old leader until
//! that leader's silence runs out or the election lap reaches it, and the leader's periodic
//! announcement lap can still be travelling when that leader has become a participant — a
//! participant that adopts it follows a leader that no longer leads while the new one does. The
//! simulator's synchronous mode finds such instants within a few dozen seeds.
//!
//! # Where this departs from the paper, and why
//! * **A leader answers a smaller candidate with an announcement.** Chang–Roberts' leader would
//!   forward itself and win again after a lap; here it sends a new `Coordinator` lap at once. A
//!   stale or repeated `Election` thus costs one lap instead of a new election, and cannot push
//!   the leader back into an election again and again.
//! * **Only improving candidates are forwarded.** A participant forwards `Election(c)` only if
//!   `c` beats the best candidate it already forwarded (the paper forwards every `c > me`). The
//!   highest candidate still passes everywhere, fewer messages travel, and a duplicated message
//!   is swallowed at the next node instead of making another lap.
//! * **Dead nodes.** Chang and Roberts assume a live ring. Here each `Election` / `Coordinator`
//!   hop is acknowledged (`Ack`); without an ack within `timeout` the sender passes the message
//!   to the node after the silent one. Only one hop is remembered, so the state stays O(1): the
//!   one about the highest node (a later hop about a lower node is sent once, unguarded). A node that
//!   finds the silent node is the very candidate of the `Election` it carries drops that
//!   candidacy (it can never come back round). If every other node is silent, the sender is
//!   alone and leads.
//! * **Earlier candidacies.** A candidacy names its candidate's *life* (a number drawn at each
//!   boot) and its number in that life. A node whose earlier candidacy is still travelling —
//!   one that skipped a node that was down at the time — would otherwise take that candidacy's
//!   return for its latest one's and lead beside the higher node that led meanwhile, breaking
//!   the one-leader claim inside the synchronous model. `election sim explore --algorithm ring
//!   --nodes 3 --crashes 1 --recoveries 1` found both runs (15 and 17 steps, one across a
//!   restart, one within a life) before this rule.
//! * **Failure detection.** The report's members poll their coordinator; here the leader sends
//!   `Alive` to every member each `heartbeat` while it leads, and a follower that hears none for
//!   [`RingConfig::leader_silence`] (`5/4 (heartbeat + max_delay)`) starts an election. In the
//!   synchronous model that silence proves the leader crashed (or stopped leading) as surely as an
//!   unanswered poll, it is noticed about `timeout / 2` sooner, and every follower notices it
//!   within the same few milliseconds (they heard the same last `Alive`), so the dead leader's
//!   predecessor on the ring knows before the first candidacy reaches it.
//! * **Known-silent nodes are skipped — by announcements, and by the candidacy that the
//!   silence starts.** A follower whose leader falls silent sends its own candidacy past that
//!   leader at once, and a participant whose hop is still waiting on the leader it followed
//!   passes the hop on as soon as that leader's silence runs out, not a `timeout` after the hop:
//!   the silence is the missing `Ack`. A node also remembers the one node it found silent in the
//!   current election (that leader, or a hop's receiver by its missing `Ack`), and its
//!   announcements skip it, saving the winner's lap another `timeout`. The mark is dropped as
//!   soon as the node is heard from or named by a hop, on a membership change about it, and
//!   when this node has passed the election's announcement on, so a node that recovered is
//!   reached by the next announcement lap at the latest. *Later candidacies do not skip it*: a
//!   silent leader may have recovered since, as a participant, and a higher candidacy that
//!   skipped it would leave it unaware of the higher node, free to win with a stale hop
//!   timeout beside that node once it leads (`election sim explore --algorithm ring --nodes 4
//!   --max-epoch 2` finds such a run in 18 steps when they do; an announcement cannot make a
//!   leader, so skipping a live node there costs it a lap at most).
//! * **Stalled elections.** Crashes can swallow the winning candidacy (or leave a dead node as
//!   some participants' `best`). A participant that sees no `Coordinator` within three laps
//!   (`election_timeout`) initiates again, which resets its `best`. A participant accepts a
//!   `Coordinator` only from a node higher than itself: a lower one cannot have won an election
//!   this node's own candidacy took part in.
//! * **Partitions.** Each side of a partition skips the other side's nodes and elects its own
//!   leader. The leader re-sends `Coordinator(me, lap)` around the ring every `announce` period
//!   (at least a lap); a node that follows a lower leader adopts the higher one, so after healing
//!   the higher leader's next lap unites the ring. A node forwards an announcement of its own
//!   leader only if its `lap` differs from the last one it saw, so a duplicated message stops at
//!   the next node instead of making another lap (an out-of-date lap may travel once more; a
//!   restarted leader counts its laps from 1 again).
//! * **Membership.** The next node is always computed from the current membership table, so a
//!   join or leave changes it at once (nothing per peer is stored). A joiner starts an election on
//!   boot, so a higher joiner becomes leader. `Left(coordinator)` starts an election at once;
//!   `Left` of the node a hop is waiting on re-sends that hop to the new next node at once; a
//!   participant restarts its candidacy when any node leaves, since the one that left may have
//!   carried the winning candidacy.

use serde::{Deserialize, Serialize};

use crate::protocol::{
    Bound, Config, Context, Explorable, Kind, Membership, MessageBounds, Model, NodeId, Options,
    Properties, Protocol, Reclock, Scope, Time, Timing,
};
use crate::status::{State, Status};

/// The ring's options.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, Hash)]
#[serde(deny_unknown_fields, default)]
pub struct RingOptions {
    /// Shortest period of the leader's `Coordinator` re-announcement lap, in heartbeats (on a
    /// large ring the period is one [`lap`](RingConfig::lap), so laps do not pile up).
    pub announce_heartbeats: u64,
}

impl Default for RingOptions {
    fn default() -> Self {
        RingOptions {
            announce_heartbeats: 10,
        }
    }
}

impl Options for RingOptions {
    const HELP: &'static str = "announce_heartbeats=N  the leader re-announces itself around the ring every N heartbeats (default 10)";

    fn validate(&self, _timing: &Timing) -> Result<(), (&'static str, String)> {
        if self.announce_heartbeats == 0 {
            return Err(("announce_heartbeats", "must be positive".into()));
        }
        Ok(())
    }
}

/// The ring's configuration: the common timing and [`RingOptions`].
pub type RingConfig = Config<RingOptions>;

impl RingConfig {
    /// Upper bound on one lap of a message around a ring of `n` members: each position costs at
    /// most one `timeout` (a live node's hop is delivered within `timeout / 2`, a silent one is
    /// skipped after `timeout`).
    pub fn lap(&self, n: usize) -> Time {
        (n as u64).saturating_mul(self.timing.timeout)
    }

    /// Period of the leader's re-announcement on a ring of `n` members.
    pub fn announce_every(&self, n: usize) -> Time {
        self.timing
            .heartbeat
            .saturating_mul(self.options.announce_heartbeats)
            .max(self.lap(n))
    }

    /// How long a follower waits for its leader's next `Alive` before it takes the leader for
    /// dead: `5/4 (heartbeat + max_delay)`. A live leader sends `Alive` every heartbeat and each
    /// arrives within [`Timing::max_delay`], so two arrive at most `heartbeat + max_delay` apart
    /// (and the first within that of adopting the leader, which led before it announced itself);
    /// the quarter more covers the leader's clock running slow and the follower's running fast by
    /// [`Model::SYNCHRONOUS_DRIFT`](crate::protocol::Model::SYNCHRONOUS_DRIFT) each.
    ///
    /// [`Timing::max_delay`]: crate::protocol::Timing::max_delay
    pub fn leader_silence(&self) -> Time {
        (self.timing.heartbeat + self.timing.max_delay()) * 5 / 4
    }

    /// How long a participant waits for a `Coordinator` before initiating again: its `Election`
    /// reaches the highest node within a lap, that node's candidacy comes back within another,
    /// and the announcement reaches everyone within a third.
    pub fn election_timeout(&self, n: usize) -> Time {
        self.lap(n)
            .saturating_mul(3)
            .saturating_add(self.timing.timeout)
    }
}

/// A message that travels the ring hop by hop, each hop acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum Hop {
    /// Chang–Roberts' election message with the best candidate so far.
    Election {
        /// The candidate.
        candidate: NodeId,
        /// The candidate's life (drawn at each boot) and its candidacy's number in that life,
        /// so that an earlier candidacy coming back is not taken for the current one (see the
        /// module docs).
        life: u64,
        /// See `life`.
        round: u64,
    },
    /// The winner's announcement.
    Coordinator {
        /// The new coordinator.
        leader: NodeId,
        /// The leader's announcement number, so a node can drop a duplicate of one it forwarded.
        lap: u64,
    },
}

type Out = crate::protocol::Out<Msg, Timer>;

/// The messages of the ring election.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum Msg {
    /// A hop of an `Election` or `Coordinator` message.
    Hop(Hop),
    /// The receiver of a hop confirms it, so the sender need not skip it.
    Ack(Hop),
    /// The leader's heartbeat to every member, sent while it leads.
    Alive,
}

impl Kind for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::Hop(Hop::Election { .. }) => "Election",
            Msg::Hop(Hop::Coordinator { .. }) => "Coordinator",
            Msg::Ack(_) => "Ack",
            Msg::Alive => "Alive",
        }
    }
}

/// The timers of the ring election.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
pub enum Timer {
    /// The pending hop was not acknowledged: skip its receiver.
    HopTimeout,
    /// Time for the leader's next `Alive`.
    Heartbeat,
    /// The watched leader's `Alive`s stopped for [`RingConfig::leader_silence`].
    Silence,
    /// No `Coordinator` arrived since this node became participant.
    ElectionTimeout,
    /// Time for the leader's next announcement lap.
    Announce,
}

impl Kind for Timer {
    fn kind(&self) -> &'static str {
        match self {
            Timer::HopTimeout => "HopTimeout",
            Timer::Heartbeat => "Heartbeat",
            Timer::Silence => "Silence",
            Timer::ElectionTimeout => "ElectionTimeout",
            Timer::Announce => "Announce",
        }
    }
}

/// A hop sent and not yet acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Pending {
    to: NodeId,
    hop: Hop,
}

impl Hop {
    /// Orders hops by what they are worth re-sending: news about a higher node first (a lower
    /// candidate cannot beat a higher candidate or leader), and for one node an announcement over
    /// a candidacy, a later lap over an earlier one.
    fn rank(&self) -> (NodeId, u64) {
        match *self {
            Hop::Election { candidate, .. } => (candidate, 0),
            Hop::Coordinator { leader, lap } => (leader, lap.saturating_add(1)),
        }
    }

    /// Whether this hop should take the pending slot from `older`.
    fn supersedes(&self, older: &Hop) -> bool {
        self.rank() >= older.rank()
    }
}

/// One node of the ring. Its state is a handful of words, whatever the ring size: no per-peer
/// data, and the next node is derived from the driver's membership table.
#[derive(Debug, Clone, Hash)]
pub struct Ring {
    config: RingConfig,
    me: NodeId,
    started: bool,
    /// Chang–Roberts' participant mark: the highest candidate forwarded in the current election.
    best: Option<NodeId>,
    coordinator: Option<NodeId>,
    lap: u64,
    pending: Option<Pending>,
    /// Drawn at boot: tells this life's candidacies from an earlier life's.
    life: u64,
    /// This life's candidacies so far: tells the latest from an earlier one.
    round: u64,
    /// The leader whose `Alive`s this node times ([`Timer::Silence`] is armed): its coordinator,
    /// or the one it followed before an election made it a participant.
    watching: Option<NodeId>,
    /// The node this node last found silent, skipped by its hops (see the module docs).
    silent: Option<NodeId>,
}

impl Ring {
    /// Whether this node is a Chang–Roberts participant (an election is under way for it).
    pub fn is_participant(&self) -> bool {
        self.best.is_some()
    }

    fn is_leader(&self) -> bool {
        !self.is_participant() && self.coordinator == Some(self.me)
    }

    fn is_follower(&self) -> bool {
        !self.is_participant() && self.coordinator.is_some_and(|c| c != self.me)
    }

    /// Sends `hop` to the next node and waits for its ack; an announcement skips the node found
    /// silent in this election, a candidacy does not (see the module docs). A node keeps at most
    /// one hop pending, the one worth re-sending past a silent node (see `Hop::supersedes`).
    fn send_hop(&mut self, cx: &mut Context<'_>, hop: Hop, out: &mut Out) {
        let skip = self
            .silent
            .filter(|_| matches!(hop, Hop::Coordinator { .. }));
        let to = self.next_node(cx, skip);
        self.send_hop_to(cx, to, hop, out);
    }

    /// The next node on the ring, past `skip` if that is the next one.
    fn next_node(&self, cx: &Context<'_>, skip: Option<NodeId>) -> NodeId {
        let next = cx.members.next_after(self.me).unwrap_or(self.me);
        if Some(next) == skip {
            cx.members.next_after(next).unwrap_or(self.me)
        } else {
            next
        }
    }

    /// Starts timing `leader`'s `Alive`s.
    fn watch(&mut self, leader: NodeId, out: &mut Out) {
        self.watching = Some(leader);
        out.set_timer(Timer::Silence, self.config.leader_silence());
    }

    fn stop_watching(&mut self, out: &mut Out) {
        self.watching = None;
        out.cancel_timer(Timer::Silence);
    }

    /// The watched leader has been silent for [`RingConfig::leader_silence`].
    fn on_silence(&mut self, cx: &mut Context<'_>, out: &mut Out) {
        let Some(leader) = self.watching.take() else {
            return;
        };
        self.silent = Some(leader);
        if self.is_follower() {
            self.become_participant(cx, out);
            self.stand(cx, Some(leader), out);
        } else if self.pending.is_some_and(|p| p.to == leader) {
            // A hop of this election waits on the same leader: it will not answer.
            out.cancel_timer(Timer::HopTimeout);
            self.on_hop_timeout(cx, out);
        }
    }

    fn send_hop_to(&mut self, cx: &mut Context<'_>, to: NodeId, hop: Hop, out: &mut Out) {
        if to == self.me {
            // Everyone else is gone or silent: an election is won outright, an announcement done.
            if matches!(hop, Hop::Election { .. }) {
                self.become_leader(cx, out);
            }
            return;
        }
        if matches!(hop, Hop::Coordinator { leader, .. } if leader == to) {
            return;
        }
        out.send(to, Msg::Hop(hop));
        if self.pending.is_none_or(|p| hop.supersedes(&p.hop)) {
            self.pending = Some(Pending { to, hop });
            out.set_timer(Timer::HopTimeout, self.config.timing.timeout);
        }
    }

    /// Initiates an election (again, if already participant).
    fn start_election(&mut self, cx: &mut Context<'_>, out: &mut Out) {
        self.become_participant(cx, out);
        self.stand(cx, None, out);
    }

    /// Sends a new candidacy of this node, past `skip` (the leader whose silence this node
    /// has just established) if that is the next node.
    fn stand(&mut self, cx: &mut Context<'_>, skip: Option<NodeId>, out: &mut Out) {
        self.round += 1;
        self.best = Some(self.me);
        let hop = Hop::Election {
            candidate: self.me,
            life: self.life,
            round: self.round,
        };
        let to = self.next_node(cx, skip);
        self.send_hop_to(cx, to, hop, out);
    }

    /// Passes on an `Election` hop, this node's own or a better one it received.
    fn forward_candidate(&mut self, cx: &mut Context<'_>, hop: Hop, out: &mut Out) {
        if let Hop::Election { candidate, .. } = hop {
            self.best = Some(candidate);
        }
        self.send_hop(cx, hop, out);
    }

    /// Becomes a participant. A follower keeps timing its leader's `Alive`s (see
    /// [`Ring::on_silence`]).
    fn become_participant(&mut self, cx: &mut Context<'_>, out: &mut Out) {
        if self.is_leader() {
            out.cancel_timer(Timer::Announce);
            out.cancel_timer(Timer::Heartbeat);
        }
        self.coordinator = None;
        out.set_timer(
            Timer::ElectionTimeout,
            self.config.election_timeout(cx.members.len()),
        );
    }

    fn become_leader(&mut self, cx: &mut Context<'_>, out: &mut Out) {
        self.best = None;
        self.coordinator = Some(self.me);
        self.stop_watching(out);
        out.cancel_timer(Timer::ElectionTimeout);
        out.set_timer(Timer::Heartbeat, self.config.timing.heartbeat);
        self.announce(cx, out);
        // This election is over here: a node found silent in it is tried again from now on.
        self.silent = None;
    }

    /// Sends the next announcement lap and schedules the one after.
    fn announce(&mut self, cx: &mut Context<'_>, out: &mut Out) {
        self.lap += 1;
        out.set_timer(
            Timer::Announce,
            self.config.announce_every(cx.members.len()),
        );
        let hop = Hop::Coordinator {
            leader: self.me,
            lap: self.lap,
        };
        self.send_hop(cx, hop, out);
    }

    fn on_election(&mut self, cx: &mut Context<'_>, hop: Hop, out: &mut Out) {
        let Hop::Election {
            candidate,
            life,
            round,
        } = hop
        else {
            return;
        };
        if !cx.members.contains(candidate) {
            return;
        }
        self.heard_of(candidate);
        if candidate == self.me {
            // Round the whole ring, never beaten: this node is the highest — if this is its
            // latest candidacy, not an earlier one (of this life or before a restart) that
            // skipped a node that was down then.
            if self.best == Some(self.me) && (life, round) == (self.life, self.round) {
                self.become_leader(cx, out);
            }
            return;
        }
        let better = candidate.max(self.me);
        match self.best {
            Some(best) if better <= best => {}
            Some(_) if better == candidate => self.forward_candidate(cx, hop, out),
            Some(_) => self.stand(cx, None, out),
            // The leader would win this election: announce the outcome instead of re-running it.
            None if self.is_leader() && candidate < self.me => self.announce(cx, out),
            None => {
                self.become_participant(cx, out);
                if better == candidate {
                    self.forward_candidate(cx, hop, out);
                } else {
                    self.stand(cx, None, out);
                }
            }
        }
    }

    fn on_coordinator(&mut self, cx: &mut Context<'_>, leader: NodeId, lap: u64, out: &mut Out) {
        if !cx.members.contains(leader) || leader == self.me {
            return;
        }
        self.heard_of(leader);
        let adopt = match self.coordinator {
            // The winner of an election this node takes part in is at least this node.
            _ if self.is_participant() => leader > self.me,
            // Not `>`: a leader that restarted numbers its laps from 1 again.
            Some(current) if current == leader => lap != self.lap,
            Some(current) => leader > current,
            None => true,
        };
        if !adopt {
            return;
        }
        if self.is_leader() {
            out.cancel_timer(Timer::Announce);
            out.cancel_timer(Timer::Heartbeat);
        }
        self.best = None;
        self.coordinator = Some(leader);
        self.lap = lap;
        out.cancel_timer(Timer::ElectionTimeout);
        self.watch(leader, out);
        self.send_hop(cx, Hop::Coordinator { leader, lap }, out);
        // This election is over here (see `become_leader`).
        self.silent = None;
    }

    /// `node` is alive, or was when a hop naming it left: stop skipping it.
    fn heard_of(&mut self, node: NodeId) {
        if self.silent == Some(node) {
            self.silent = None;
        }
    }

    fn on_hop_timeout(&mut self, cx: &mut Context<'_>, out: &mut Out) {
        let Some(Pending { to: silent, hop }) = self.pending.take() else {
            return;
        };
        if self.is_participant() {
            self.silent = Some(silent);
        }
        if matches!(hop, Hop::Election { candidate, .. } if candidate == silent) {
            // The candidate itself is silent: its candidacy can never complete.
            return;
        }
        let next = cx.members.next_after(silent).unwrap_or(self.me);
        self.send_hop_to(cx, next, hop, out);
    }
}

/// The ring holds no times: its waits are all timers, which the driver owns.
impl Explorable for Ring {
    fn reclock(&mut self, _clock: Reclock) {}

    fn epoch(&self) -> u64 {
        self.lap.saturating_add(self.round)
    }
}

impl Protocol for Ring {
    const NAME: &'static str = "ring";
    type Options = RingOptions;
    type Msg = Msg;
    type Timer = Timer;

    fn new(config: &RingConfig) -> Self {
        Ring {
            config: *config,
            me: NodeId(0),
            started: false,
            best: None,
            coordinator: None,
            lap: 0,
            pending: None,
            life: 0,
            round: 0,
            watching: None,
            silent: None,
        }
    }

    /// The synchronous model (a hop's `Ack` is awaited for one timeout). Chang and Roberts
    /// guarantee that an election elects exactly one process, the maximum: so at most one live
    /// node is the leader at any instant inside the model, and the stable leader is the highest.
    /// Not Garcia-Molina's Assertion 1 (see "What is guaranteed" in the module docs): a member
    /// keeps following its old leader until that leader's silence runs out or the election lap
    /// reaches it, and a participant adopts an announcement lap still travelling from a leader
    /// that has since become a participant itself.
    fn properties(_config: &RingConfig) -> Properties {
        Properties {
            model: Model::Synchronous,
            agreement: None,
            unique_leader: Some(Scope::Everyone),
            highest_wins: true,
            quorum: false,
            membership: true,
        }
    }

    /// After the last fault F, with every message delivered within `timeout / 2` and `L` = one
    /// [`lap`](RingConfig::lap), `E` = [`election_timeout`](RingConfig::election_timeout), `h`
    /// the highest live node:
    /// 1. messages sent before F arrive by F + `timeout/2`; a candidacy of a node that is dead
    ///    (or cut off) is dropped when it reaches that node, within a lap, and no node forwards
    ///    it afterwards;
    /// 2. a participant whose `best` is such a candidate, or that forwarded a copy of `h`'s
    ///    candidacy lost before F, initiates again within `E` of its last (re)initiation, which
    ///    clears that `best`: by F + `timeout/2` + L + E no `best` can block `h`'s candidacy;
    /// 3. `h` is then a participant that re-initiates within another `E` (its own candidacy was
    ///    lost), or a member that notices its leader gone within `S` =
    ///    [`leader_silence`](RingConfig::leader_silence) of the crash and initiates, or the leader:
    ///    its next announcement (within `announce_every`) passes every node within a lap, and a
    ///    stale `Election` arriving after it costs one more election of `h`; a node skipped as
    ///    silent after it recovered is reached by that announcement too (the skip ends with the
    ///    election that set it);
    /// 4. `h`'s candidacy goes round within a lap and its announcement within another.
    ///
    /// Summed generously: `announce_every + S + timeout + 4·L + 2·E`.
    fn liveness_bound(config: &RingConfig, n: usize) -> Time {
        config
            .announce_every(n)
            .saturating_add(config.leader_silence())
            .saturating_add(config.timing.timeout)
            .saturating_add(config.lap(n).saturating_mul(4))
            .saturating_add(config.election_timeout(n).saturating_mul(2))
    }

    /// The complexity table's scenarios, counted exactly as the simulator counts them (every
    /// hop and its `Ack`, until the last status change). On this sorted next-node ring every
    /// arrangement is Chang–Roberts' *best* one (ids increase along the ring), so their
    /// `n(n+1)/2` worst case cannot occur:
    /// - boot (all initiate): `2n - 1` Election hops, `n - 1` Coordinator hops, each acked;
    /// - best (n−2 initiates, n−1 dead): one lap of its candidacy past the dead node (`n`
    ///   hops, `n - 1` acked; the hop to the dead node times out) and one of its announcement,
    ///   which skips the node found silent (`n - 2` hops, each acked);
    /// - worst (0 initiates, n−1 dead): `0`'s candidacy, taken over by each higher node, reaches
    ///   `n - 2` (`n - 2` hops), then `n - 2`'s goes round (`n` hops, one to the dead node), and
    ///   the announcement lap past the dead node: `2n - 2` + `n - 2` hops, `3n - 5` acks.
    fn message_bounds(n: u64) -> MessageBounds {
        let n1 = n.saturating_sub(1);
        let n2 = n.saturating_sub(2);
        MessageBounds {
            boot: Some(Bound::exact(
                "(2n-1) Election + (n-1) Coordinator hops, each acked",
                2 * ((2 * n).saturating_sub(1) + n1),
            )),
            best: Some(Bound::exact(
                "n + (n-2) hops, (n-1) + (n-2) acks",
                n + n2 + n1 + n2,
            )),
            worst: Some(Bound::exact(
                "(2n-2) + (n-2) hops, (3n-5) acks",
                (2 * n).saturating_sub(2) + n2 + (3 * n).saturating_sub(5),
            )),
        }
    }

    /// A booting node initiates an election, so a higher joiner or recovering node takes over.
    fn on_start(&mut self, cx: &mut Context<'_>, _persisted: Option<&[u8]>, out: &mut Out) {
        self.me = cx.id;
        self.started = true;
        self.life = cx.rng.next_u64();
        self.start_election(cx, out);
    }

    fn on_message(&mut self, cx: &mut Context<'_>, from: NodeId, msg: Msg, out: &mut Out) {
        if !self.started || !cx.members.contains(from) {
            return;
        }
        self.heard_of(from);
        match msg {
            Msg::Hop(hop) => {
                out.send(from, Msg::Ack(hop));
                match hop {
                    Hop::Election { .. } => self.on_election(cx, hop, out),
                    Hop::Coordinator { leader, lap } => self.on_coordinator(cx, leader, lap, out),
                }
            }
            Msg::Ack(hop) => {
                if self.pending == Some(Pending { to: from, hop }) {
                    self.pending = None;
                    out.cancel_timer(Timer::HopTimeout);
                }
            }
            Msg::Alive => {
                if self.watching == Some(from) {
                    self.watch(from, out);
                }
            }
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, timer: Timer, out: &mut Out) {
        match timer {
            Timer::HopTimeout => self.on_hop_timeout(cx, out),
            Timer::Heartbeat => {
                if self.is_leader() {
                    out.broadcast(Msg::Alive);
                    out.set_timer(Timer::Heartbeat, self.config.timing.heartbeat);
                }
            }
            Timer::Silence => self.on_silence(cx, out),
            Timer::ElectionTimeout => {
                if self.is_participant() {
                    self.start_election(cx, out);
                }
            }
            Timer::Announce => {
                if self.is_leader() {
                    self.announce(cx, out);
                }
            }
        }
    }

    fn on_membership(&mut self, cx: &mut Context<'_>, change: Membership, out: &mut Out) {
        // A join needs nothing here: the next node comes from the updated table, and the joiner
        // starts its own election.
        let (Membership::Joined(node) | Membership::Left(node)) = change;
        self.heard_of(node);
        let Membership::Left(gone) = change else {
            return;
        };
        if self.watching == Some(gone) {
            self.stop_watching(out);
        }
        if self.coordinator == Some(gone) || self.is_participant() {
            self.start_election(cx, out);
        }
        if let Some(Pending { hop, .. }) = self.pending.filter(|p| p.to == gone) {
            self.pending = None;
            out.cancel_timer(Timer::HopTimeout);
            self.send_hop(cx, hop, out);
        }
    }

    fn status(&self) -> Status {
        if !self.started {
            return Status::down();
        }
        let (state, phase) = if self.is_participant() {
            (State::Election, "Participant")
        } else if self.is_leader() {
            (State::Normal, "Leader")
        } else {
            (State::Normal, "Follower")
        };
        Status {
            state,
            coordinator: self.coordinator,
            group: None,
            incarnation: None,
            term: None,
            phase,
        }
    }
}
