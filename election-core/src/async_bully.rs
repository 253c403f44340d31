//! Stoller's asynchronous Bully: the Bully algorithm rewritten over a failure detector.
//!
//! Source: S. D. Stoller, "Leader Election in Distributed Systems with Crash Failures" (Indiana
//! University TR 481, 1997) and "Leader Election in Asynchronous Distributed Systems" (IEEE Trans.
//! Computers 49(3), 2000); the Erlang `gen_leader` behaviour implements the same algorithm.
//!
//! # The paper's variables and procedures, as found here
//! | Stoller            | here                                                             |
//! |--------------------|------------------------------------------------------------------|
//! | `status`           | [`Stage`]: `Elec1`, `Elec2`, `Wait`, `Norm`                      |
//! | `elid`             | `elid`, a [`GroupId`] `(i, incarn·2³² + nextel)`                 |
//! | `ldr`              | the `ldr` of `Stage::Wait` / `Stage::Norm`                       |
//! | `acks`, `pendack`  | `acks`, the `pendack` of `Stage::Elec2`                          |
//! | `incarn`, `nextel` | `incarnation` (persisted, +1 per boot), `nextel`                 |
//! | `startStage1`      | `start_stage1`                                                   |
//! | `startStage2`, `continStage2` | `start_stage2`, `contin_stage2`                       |
//! | `halting(t, j)`    | `halting`                                                        |
//! | FD suspects `j`    | [`Detector`] verdicts, read on every `Tick`                      |
//!
//! Messages: `Halt(t)` (stage 2 halts a lower-priority process), `Ack(t)`, `Ldr(t)` (the winner
//! tells its group it is Normal), `NormQ(t)` (the leader asks a process outside its group whether
//! it is Normal), `NotNorm(t)`; plus the failure detector's own `Ping` / `Pong`.
//!
//! # The algorithm
//! A process (re)starts an election with `startStage1`: a fresh election id, state `Elec1`, and it
//! waits until the failure detector suspects every higher-priority process. Then `Elec2`: it sends
//! `Halt(elid)` to the lower-priority processes one at a time, highest first, waiting for each
//! `Ack` or for the next one to be suspected; a halted process enters `Wait` with the halter as
//! `ldr`. When the list is exhausted the process is `Norm` and leader of its election and sends
//! `Ldr(elid)` to every process that acknowledged; those enter `Norm`. A process in `Wait` or
//! `Norm` that suspects its leader starts a new election. Periodically the leader sends
//! `NormQ(elid)` to the processes outside its group; one that is not Normal halts into the
//! leader's election and answers `NotNorm`, and the leader sends it `Ldr`.
//!
//! Safety — no two processes consider themselves Normal leaders of the same election — holds by
//! construction: only the origin of an election id leads it, and ids never repeat because the
//! incarnation number is persisted and bumped on every boot. Every message carries an election
//! id whose origin must be its sender, so all members of one election follow its origin.
//!
//! # Where this departs from the paper, and why
//! * **Time-outs instead of an oracle.** The failure detector is [`Detector`] over `Ping`/`Pong`
//!   (in `Elec1` and `Wait`, window [`AsyncBullyConfig::suspect_after`]) and, for a `Normal`
//!   follower, a timer reset by every message of its leader, whose `Ldr` comes every heartbeat
//!   ([`AsyncBullyConfig::leader_silence`], shorter since nothing waits for an answer: a
//!   leader's crash is noticed `5/4 (H + max_delay)` after its last heartbeat, not at a later tick).
//! * **One higher process watched at a time.** `Elec1` waits until every higher process is
//!   suspected, as in the paper, but watches them one at a time, the lowest first, moving on
//!   when one is suspected (a process already known to be silent, such as the leader whose
//!   heartbeat stopped, costs nothing). So a process keeps O(1) detector state and sends one
//!   ping per heartbeat whatever the cluster size — a 100,000-process boot no longer sends n²/2
//!   pings per heartbeat — at the price of one window per higher process that died unnoticed
//!   (the liveness bound counts `n - 1` of them). The wait for
//!   `pendack`'s `Ack` is a plain `AckTimeout` of one round trip: a process that does not answer
//!   in time is skipped, as if suspected, and the leader's `NormQ` picks it up later.
//! * **Refused halts are answered.** A process that does not obey a `Halt(t)` (it still follows
//!   a higher leader, typically one whose crash the halter noticed a moment sooner) answers
//!   `Refuse(t)`, and the halter skips it at once, as its `AckTimeout` would one timeout later.
//!   Without it, a failover waited a whole timeout in about half the trials (measured against
//!   etcd, issue 15); the refusing process joins at the leader's next `NormQ` once it notices
//!   the crash itself. Skipping early is what an early `AckTimeout` does, which the asynchronous
//!   model allows anyway, so safety is untouched.
//! * **Message loss.** The paper assumes reliable channels. Here the leader repeats `Ldr` to its
//!   group on every tick (which doubles as its heartbeat), and `NormQ` to everyone else, so a lost
//!   `Ack`, `Ldr` or `NotNorm` only delays a process. A process that gets `Ldr(t)` without being
//!   in election `t` (it restarted, or followed another leader meanwhile) answers it as a
//!   `NormQ(t)`, so the leader need not track who left its group.
//! * **Who may halt whom.** A process accepts `Halt`, `NormQ` and `Ldr` of an election it is not
//!   in only from a process of higher priority than its current authority (its leader in
//!   `Wait`/`Norm`, itself in `Elec1`/`Elec2`), or from its own leader for a newer election. This
//!   keeps a process from ever following a lower-priority one, which is what makes the highest
//!   live process the stable leader.
//! * **No endless `Wait`.** A process in `Wait` that gets no `Ldr` of its election within
//!   [`AsyncBullyConfig::wait_for_ldr`] starts a new election (in the paper only a suspected
//!   leader ends `Wait`). Without it one stray `Halt` into an election its sender does not lead
//!   — a datagram replayed from an older run, a forgery — held the process in `Wait` for as long
//!   as that sender lived and answered pings. A newer election of its own leader more than
//!   [`MAX_ELECTION_JUMP`] ahead is refused outright and answered by a new election, through
//!   which the leader's next `Ldr`/`NormQ` pulls the process back.
//! * **Partitions.** Each side elects its own leader (its own election id). After healing, the
//!   higher leader's periodic `Ldr`/`NormQ` reach the lower side; a `Norm` process whose leader
//!   is lower than the sender halts into the sender's election (the paper only halts `Elec1` and
//!   `Wait` processes on `NormQ`), so the higher group absorbs the other within one tick.
//! * **Membership.** `Joined(p)`: an `Elec1` process starts watching a higher joiner; a higher
//!   joiner takes over by its own election when it boots. `Left(p)`: forgotten at once; if `p` was
//!   the leader a new election starts immediately, if it was `pendack` stage 2 moves on.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::detector::Detector;
use crate::protocol::{
    Bound, Config, Context, Explorable, Kind, Membership, MessageBounds, Model, NodeId, Options,
    Properties, Protocol, Reclock, Scope, Time,
};
use crate::status::{GroupId, State, Status};

/// The asynchronous Bully's options: none beyond the timing.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize, Hash)]
#[serde(deny_unknown_fields)]
pub struct AsyncBullyOptions {}

impl Options for AsyncBullyOptions {
    const HELP: &'static str = "(the asynchronous Bully has no options)";
}

/// The asynchronous Bully's configuration: the common timing and [`AsyncBullyOptions`].
pub type AsyncBullyConfig = Config<AsyncBullyOptions>;

impl AsyncBullyConfig {
    /// How long a halted process waits in `Wait` for its leader's `Ldr` before it starts a new
    /// election, in a cluster of `n`: the leader's stage 2 halts the processes below it one at a
    /// time, each answering or skipped within a timeout, then sends `Ldr` (and repeats it every
    /// heartbeat); one more heartbeat and timeout cover a lost `Ldr` and delivery. A live leader
    /// whose `Ldr` never comes (a halt into an election nobody leads) is thus no reason to wait
    /// for ever.
    pub fn wait_for_ldr(&self, n: usize) -> Time {
        (n as Time)
            .saturating_mul(self.timing.timeout)
            .saturating_add(self.timing.heartbeat)
            .saturating_add(self.timing.timeout)
    }

    /// Silence after which the failure detector suspects a process it pings (a higher process
    /// in `Elec1`, the leader in `Wait`): pings go out every heartbeat and each answer returns
    /// within a round trip (`timeout`), so answers from a live process are at most `H + T`
    /// apart; a quarter more covers clocks that run 10 % fast or slow.
    pub fn suspect_after(&self) -> Time {
        self.timing
            .heartbeat
            .saturating_add(self.timing.timeout)
            .saturating_mul(5)
            / 4
    }

    /// Silence after which a `Normal` follower suspects its leader: the leader's `Ldr` comes
    /// every heartbeat and, when the network behaves, travels at most the tolerated delay
    /// ([`Timing::max_delay`], two fifths of a timeout), so from a live leader two arrive at most
    /// `H + max_delay` apart; a quarter more covers drifting clocks. Shorter than
    /// [`suspect_after`](Self::suspect_after) because nothing waits for an answer: this is what
    /// makes a leader's crash noticed soon after. A slower network only costs a needless
    /// election (the asynchronous model's safety does not rest on it).
    ///
    /// [`Timing::max_delay`]: crate::protocol::Timing::max_delay
    pub fn leader_silence(&self) -> Time {
        self.timing
            .heartbeat
            .saturating_add(self.timing.max_delay())
            .saturating_mul(5)
            / 4
    }
}

type Out = crate::protocol::Out<Msg, Timer>;

/// The messages of the asynchronous Bully. Each carries the election id `t` it is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum Msg {
    /// Stage 2: the sender, leading election `t`, tells a lower-priority process to stop.
    Halt(GroupId),
    /// The answer to `Halt(t)`: the sender is now waiting in election `t`.
    Ack(GroupId),
    /// The other answer to `Halt(t)`: the sender does not join `t` (it follows a higher leader),
    /// so the halter moves on at once instead of waiting out its `AckTimeout`.
    Refuse(GroupId),
    /// The leader of `t` tells a group member to be Normal (repeated every tick as a heartbeat).
    Ldr(GroupId),
    /// The leader of `t` asks a process outside its group whether it is Normal.
    NormQ(GroupId),
    /// The answer to `NormQ(t)` (or to an unexpected `Ldr(t)`): not Normal, now waiting in `t`.
    NotNorm(GroupId),
    /// Failure detector: are you alive?
    Ping,
    /// Failure detector: yes.
    Pong,
}

impl Kind for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::Halt(_) => "Halt",
            Msg::Ack(_) => "Ack",
            Msg::Refuse(_) => "Refuse",
            Msg::Ldr(_) => "Ldr",
            Msg::NormQ(_) => "NormQ",
            Msg::NotNorm(_) => "NotNorm",
            Msg::Ping => "Ping",
            Msg::Pong => "Pong",
        }
    }
}

/// The timers of the asynchronous Bully.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
pub enum Timer {
    /// Every heartbeat: ping watched processes, read the detector's verdicts, and (as leader)
    /// send `Ldr` / `NormQ`.
    Tick,
    /// Stage 2 gave up waiting for `pendack`'s `Ack`.
    AckTimeout,
    /// A process in `Wait` got no `Ldr` of its election within
    /// [`AsyncBullyConfig::wait_for_ldr`]: it starts a new election.
    WaitTimeout,
    /// A `Normal` follower heard nothing from its leader for
    /// [`AsyncBullyConfig::leader_silence`]: it suspects the leader and starts an election.
    LeaderSilent,
}

impl Kind for Timer {
    fn kind(&self) -> &'static str {
        match self {
            Timer::Tick => "Tick",
            Timer::AckTimeout => "AckTimeout",
            Timer::WaitTimeout => "WaitTimeout",
            Timer::LeaderSilent => "LeaderSilent",
        }
    }
}

/// Stoller's `status`, with the variables that only matter in one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Not started yet.
    Down,
    /// Waiting until every higher-priority process is suspected.
    Elec1,
    /// Halting lower-priority processes one at a time; `pendack` is the one being halted (the
    /// process itself before the first `Halt`).
    Elec2 {
        /// The process whose `Ack` is awaited.
        pendack: NodeId,
    },
    /// Halted by `ldr`, waiting for its `Ldr`.
    Wait {
        /// The process that halted this one.
        ldr: NodeId,
    },
    /// Normal, following `ldr` (itself when leader).
    Norm {
        /// The leader.
        ldr: NodeId,
    },
}

/// One process of Stoller's asynchronous Bully.
#[derive(Debug, Clone, Hash)]
pub struct AsyncBully {
    config: AsyncBullyConfig,
    me: NodeId,
    incarnation: u64,
    nextel: u64,
    elid: GroupId,
    stage: Stage,
    acks: BTreeSet<NodeId>,
    /// In `Elec1`: the higher process watched now. Stoller waits until *every* higher process
    /// is suspected; they are watched one at a time, lowest first, so that a process keeps O(1)
    /// state and sends one ping per heartbeat whatever the cluster size.
    candidate: Option<NodeId>,
    detector: Detector,
}

/// `nextel` lives in the low 32 bits of an election id's counter, the incarnation above it.
const NEXTEL_BITS: u32 = 32;

/// How far ahead of the election a process follows a newer election of the same leader may be:
/// 256 incarnations (each restart of the leader adds one; `nextel` stays below one). A counter
/// further ahead — such as a forged `Halt` numbered 2⁶⁴−1, which would otherwise hold the process
/// in `Wait` for an election nobody leads while its real leader lives — is refused. A leader
/// that lost its persisted incarnation and drew a random one also jumps further; its followers
/// then rejoin it through a new election instead of directly.
pub const MAX_ELECTION_JUMP: u64 = 256 << NEXTEL_BITS;

impl AsyncBully {
    /// Stoller's state (for tests and traces).
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The processes that acknowledged this process's election (its group when it leads).
    pub fn acks(&self) -> &BTreeSet<NodeId> {
        &self.acks
    }

    /// A fresh election id `(me, incarnation, nextel)`. If `nextel` would spill into the
    /// incarnation bits, a new incarnation is taken (and persisted) instead of restarting.
    fn new_elid(&mut self, out: &mut Out) -> GroupId {
        if self.nextel >> NEXTEL_BITS != 0 {
            self.incarnation += 1;
            self.nextel = 0;
            out.persist(self.incarnation.to_le_bytes().to_vec());
        }
        let counter = (self.incarnation << NEXTEL_BITS) | self.nextel;
        self.nextel += 1;
        GroupId {
            origin: self.me,
            counter,
        }
    }

    /// Whom this process defers to: its leader once halted, itself while electing.
    fn authority(&self) -> NodeId {
        match self.stage {
            Stage::Wait { ldr } | Stage::Norm { ldr } => ldr,
            _ => self.me,
        }
    }

    /// Whether `j` may pull this process into `j`'s election `t`: a process of higher priority
    /// than its authority may, and so may its own leader for a newer election — unless that
    /// election is implausibly far ahead ([`MAX_ELECTION_JUMP`]).
    fn accepts(&self, j: NodeId, t: GroupId) -> bool {
        let authority = self.authority();
        j > authority
            || (j == authority
                && j != self.me
                && t.counter > self.elid.counter
                && t.counter - self.elid.counter <= MAX_ELECTION_JUMP)
    }

    /// Whether `t` is an election of this process's own leader implausibly far ahead of the one
    /// it follows: refused by [`accepts`](Self::accepts), and answered by a new election of this
    /// process, which the leader's next `Ldr` or `NormQ` pulls into its real election.
    fn implausible(&self, j: NodeId, t: GroupId) -> bool {
        j == self.authority()
            && j != self.me
            && t.counter > self.elid.counter
            && t.counter - self.elid.counter > MAX_ELECTION_JUMP
    }

    /// `startStage1`: a new election; wait for every higher-priority process to be suspected.
    /// `silent` is a higher process already known to be silent (the leader whose heartbeat
    /// stopped), which is not waited for again.
    fn start_stage1(&mut self, cx: &mut Context<'_>, silent: Option<NodeId>, out: &mut Out) {
        self.elid = self.new_elid(out);
        self.stage = Stage::Elec1;
        self.acks.clear();
        out.cancel_timer(Timer::LeaderSilent);
        let me = self.me;
        // Keep what the detector knows about higher processes (a suspect stays suspected).
        self.detector.retain(|p| p > me && cx.members.contains(p));
        if let Some(p) = silent.filter(|&p| p > me) {
            self.detector.suspect(p);
        }
        self.candidate = cx.members.higher_than(me).first().copied();
        if let Some(c) = self.candidate {
            self.detector.watch(c, cx.now);
        }
        self.check_elec1(cx, out);
    }

    /// Moves `Elec1` past suspected candidates, lowest first, and enters `Elec2` once every
    /// higher process is suspected. A suspected candidate stays watched (and suspected) so a
    /// later election does not wait for it again; a live one keeps this process in `Elec1`
    /// until someone halts it or the candidate falls silent.
    fn check_elec1(&mut self, cx: &mut Context<'_>, out: &mut Out) {
        if self.stage != Stage::Elec1 {
            return;
        }
        while let Some(c) = self.candidate {
            if cx.members.contains(c) && !self.detector.is_suspected(c, cx.now) {
                return;
            }
            self.candidate = cx.members.higher_than(c).first().copied();
            if let Some(next) = self.candidate {
                self.detector.watch(next, cx.now);
            }
        }
        self.start_stage2(cx, out);
    }

    /// `startStage2`.
    fn start_stage2(&mut self, cx: &mut Context<'_>, out: &mut Out) {
        self.stage = Stage::Elec2 { pendack: self.me };
        self.acks.clear();
        self.candidate = None;
        self.detector.retain(|_| false);
        self.contin_stage2(cx, out);
    }

    /// `continStage2`: halt the next lower-priority process, or become the leader.
    fn contin_stage2(&mut self, cx: &mut Context<'_>, out: &mut Out) {
        let Stage::Elec2 { pendack } = self.stage else {
            return;
        };
        match cx.members.lower_than(pendack).last() {
            Some(&next) => {
                self.stage = Stage::Elec2 { pendack: next };
                out.send(next, Msg::Halt(self.elid));
                out.set_timer(Timer::AckTimeout, self.config.timing.timeout);
            }
            None => {
                self.stage = Stage::Norm { ldr: self.me };
                out.cancel_timer(Timer::AckTimeout);
                for &j in &self.acks {
                    out.send(j, Msg::Ldr(self.elid));
                }
            }
        }
    }

    /// `halting(t, j)`: join `j`'s election `t` and wait for its `Ldr`.
    fn halting(&mut self, cx: &mut Context<'_>, t: GroupId, j: NodeId, out: &mut Out) {
        if matches!(self.stage, Stage::Elec2 { .. }) {
            out.cancel_timer(Timer::AckTimeout);
        }
        self.elid = t;
        self.stage = Stage::Wait { ldr: j };
        self.acks.clear();
        self.candidate = None;
        out.cancel_timer(Timer::LeaderSilent);
        self.detector.retain(|p| p == j);
        self.detector.watch(j, cx.now);
        out.set_timer(
            Timer::WaitTimeout,
            self.config.wait_for_ldr(cx.members.len()),
        );
    }

    /// Whether this process is already waiting in, or Normal in, election `t`.
    fn in_election(&self, t: GroupId) -> bool {
        matches!(self.stage, Stage::Wait { .. } | Stage::Norm { .. }) && self.elid == t
    }

    fn on_tick(&mut self, cx: &mut Context<'_>, out: &mut Out) {
        out.set_timer(Timer::Tick, self.config.timing.heartbeat);
        match self.stage {
            Stage::Down | Stage::Elec2 { .. } => {}
            Stage::Elec1 => {
                self.check_elec1(cx, out);
                if let (Stage::Elec1, Some(c)) = (self.stage, self.candidate) {
                    out.send(c, Msg::Ping);
                }
            }
            Stage::Norm { ldr } if ldr == self.me => {
                // Stoller's "periodically" of the leader: `Ldr` to the group (also its heartbeat
                // and the repair of a lost `Ldr`), `NormQ` to the lower processes outside it.
                for &j in cx.members.lower_than(self.me) {
                    let msg = if self.acks.contains(&j) {
                        Msg::Ldr(self.elid)
                    } else {
                        Msg::NormQ(self.elid)
                    };
                    out.send(j, msg);
                }
            }
            // A follower hears its leader's `Ldr` every heartbeat (see `LeaderSilent`).
            Stage::Norm { .. } => {}
            Stage::Wait { ldr } => {
                if self.detector.is_suspected(ldr, cx.now) {
                    self.start_stage1(cx, Some(ldr), out);
                } else {
                    // A leader still in stage 2 sends no `Ldr` heartbeats yet.
                    out.send(ldr, Msg::Ping);
                }
            }
        }
    }
}

/// Only the failure detector holds times.
impl Explorable for AsyncBully {
    fn reclock(&mut self, clock: Reclock) {
        self.detector.reclock(clock);
    }

    fn epoch(&self) -> u64 {
        self.incarnation.saturating_add(self.nextel)
    }
}

impl Protocol for AsyncBully {
    const NAME: &'static str = "async-bully";
    type Options = AsyncBullyOptions;
    type Msg = Msg;
    type Timer = Timer;

    fn new(config: &AsyncBullyConfig) -> Self {
        AsyncBully {
            config: *config,
            me: NodeId(0),
            incarnation: 0,
            nextel: 0,
            elid: GroupId {
                origin: NodeId(0),
                counter: 0,
            },
            stage: Stage::Down,
            acks: BTreeSet::new(),
            candidate: None,
            detector: Detector::new(config.suspect_after()),
        }
    }

    /// Asynchronous model (over a failure detector): Stoller's "no two Normal leaders of one
    /// election" and Assertion 1 within each election id, in any run; once stable, the highest
    /// live process leads.
    fn properties(_config: &AsyncBullyConfig) -> Properties {
        Properties {
            model: Model::Asynchronous,
            agreement: Some(Scope::Group),
            unique_leader: Some(Scope::Group),
            highest_wins: true,
            quorum: false,
            membership: true,
        }
    }

    /// Half the timeout: stage 2's wait for an `Ack` is a plain round trip (no drift margin;
    /// the detector's `suspect_after` carries its own).
    fn max_delay(config: &AsyncBullyConfig) -> Time {
        config.timing.timeout / 2
    }

    /// After the last fault (F), with every message delivered within `timeout / 2`; `detect` =
    /// `suspect_after + heartbeat` (a pinged process is suspected at the first tick after a
    /// whole silent window):
    /// 1. by F + timeout/2 the last message from before F has arrived; a process that follows a
    ///    leader outside its component suspects it within `leader_silence` (a `Normal` follower's
    ///    timer) or `detect` (a process in `Wait` pinging it);
    /// 2. the highest process h of the component is then in `Elec1` (or already past it) and
    ///    watches its higher processes one at a time, each suspected within `detect`: at most
    ///    `(n - 1)·detect`;
    /// 3. stage 2 halts the `n - 1` lower processes one by one, each answering or being skipped
    ///    within `timeout`;
    /// 4. a process stage 2 skipped, or one that still follows a lower leader, hears h's `NormQ`
    ///    or `Ldr` within a tick and is Normal in h's election after `NormQ → NotNorm → Ldr`,
    ///    three one-way delays (1.5 `timeout`, rounded up to 2).
    fn liveness_bound(config: &AsyncBullyConfig, n: usize) -> Time {
        let detect = config
            .suspect_after()
            .saturating_add(config.timing.heartbeat);
        let others = (n as u64).saturating_sub(1);
        (config.timing.timeout / 2)
            .saturating_add(detect.max(config.leader_silence()))
            .saturating_add(others.saturating_mul(detect))
            .saturating_add(others.saturating_mul(config.timing.timeout))
            .saturating_add(config.timing.heartbeat)
            .saturating_add(config.timing.timeout.saturating_mul(2))
    }

    /// The complexity table's scenarios, counted exactly as the simulator counts them (every
    /// message until the last status change; heartbeat `H` ≫ timeout `T`):
    /// - boot: the top halts the `n - 1` others one at a time (Halt, Ack) and sends Ldr;
    /// - best (n−2 restarts as the leader crashes): n−2 does not know the leader is dead and
    ///   watches it for a whole `suspect_after` (one ping); meanwhile the others notice the
    ///   leader's silence, each watches its next higher process (one ping and pong each at the
    ///   next tick); then n−2 halts the `n - 2` below it;
    /// - worst (node 0 restarts): the others notice the leader's silence (`leader_silence`, well
    ///   before node 0's first ping tick) and n−2, which knows the leader is silent, halts the
    ///   `n - 2` below it at once: the cheapest row now, since the failure detector watches one
    ///   process at a time. At least: a follower whose silence timer fires after n−2's Halt
    ///   arrived (their timers differ by the delays of the leader's last `Ldr`) refuses it
    ///   (it still follows the old leader) and is taken in by the next tick's `NormQ` instead.
    fn message_bounds(n: u64) -> MessageBounds {
        let n1 = n.saturating_sub(1);
        let n2 = n.saturating_sub(2);
        MessageBounds {
            boot: Some(Bound::exact("3(n-1) Halt, Ack, Ldr", 3 * n1)),
            best: Some(Bound::exact(
                "1 ping + (n-2) pings+pongs + 3(n-2) Halt, Ack, Ldr",
                1 + 2 * n2 + 3 * n2,
            )),
            worst: Some(Bound::at_least("3(n-2) Halt, Ack, Ldr", 3 * n2)),
        }
    }

    /// Boots with the incarnation after the persisted one (0 on the first boot) and persists it
    /// before doing anything else, then starts an election. A payload that is not the 8 bytes this
    /// protocol writes cannot tell the last incarnation; a random one from the upper half of the
    /// 32-bit range is taken then, which makes a repeated election id unlikely, not impossible.
    fn on_start(&mut self, cx: &mut Context<'_>, persisted: Option<&[u8]>, out: &mut Out) {
        self.me = cx.id;
        self.incarnation = match persisted.map(<[u8; 8]>::try_from) {
            None => 0,
            Some(Ok(bytes)) => u64::from_le_bytes(bytes).wrapping_add(1),
            Some(Err(_)) => u64::from(cx.rng.next_u32() | 0x8000_0000),
        };
        self.nextel = 0;
        out.persist(self.incarnation.to_le_bytes().to_vec());
        out.set_timer(Timer::Tick, self.config.timing.heartbeat);
        self.start_stage1(cx, None, out);
    }

    fn on_message(&mut self, cx: &mut Context<'_>, from: NodeId, msg: Msg, out: &mut Out) {
        if self.stage == Stage::Down || !cx.members.contains(from) || from == self.me {
            return;
        }
        self.detector.heard(from, cx.now);
        if self.stage == (Stage::Norm { ldr: from }) {
            out.set_timer(Timer::LeaderSilent, self.config.leader_silence());
        }
        match msg {
            Msg::Ping => out.send(from, Msg::Pong),
            Msg::Pong => {}
            // Only the origin of an election speaks for it.
            Msg::Halt(t) | Msg::Ldr(t) | Msg::NormQ(t) if t.origin != from => {}
            Msg::Halt(t) | Msg::Ldr(t) | Msg::NormQ(t) if self.implausible(from, t) => {
                self.start_stage1(cx, None, out);
            }
            Msg::Halt(t) => {
                if self.in_election(t) {
                    out.send(from, Msg::Ack(t));
                } else if self.accepts(from, t) {
                    self.halting(cx, t, from, out);
                    out.send(from, Msg::Ack(t));
                } else {
                    out.send(from, Msg::Refuse(t));
                }
            }
            Msg::Ldr(t) => {
                if self.stage == (Stage::Wait { ldr: from }) && self.elid == t {
                    self.stage = Stage::Norm { ldr: from };
                    out.cancel_timer(Timer::WaitTimeout);
                    out.set_timer(Timer::LeaderSilent, self.config.leader_silence());
                    // From now on the leader's heartbeat, not pings, tells it is alive.
                    self.detector.retain(|_| false);
                } else if !self.in_election(t) && self.accepts(from, t) {
                    // A leader that counts this process in its group, which it is not (it
                    // restarted, or followed another leader): answer as to `NormQ`.
                    self.halting(cx, t, from, out);
                    out.send(from, Msg::NotNorm(t));
                }
            }
            Msg::NormQ(t) => {
                if self.stage == (Stage::Wait { ldr: from }) && self.elid == t {
                    out.send(from, Msg::NotNorm(t));
                } else if !self.in_election(t) && self.accepts(from, t) {
                    self.halting(cx, t, from, out);
                    out.send(from, Msg::NotNorm(t));
                }
            }
            Msg::Ack(t) => {
                if self.stage == (Stage::Elec2 { pendack: from }) && self.elid == t {
                    self.acks.insert(from);
                    self.contin_stage2(cx, out);
                }
            }
            // What the AckTimeout would conclude, one timeout sooner.
            Msg::Refuse(t) => {
                if self.stage == (Stage::Elec2 { pendack: from }) && self.elid == t {
                    self.contin_stage2(cx, out);
                }
            }
            Msg::NotNorm(t) => {
                if self.stage == (Stage::Norm { ldr: self.me }) && self.elid == t {
                    self.acks.insert(from);
                    out.send(from, Msg::Ldr(t));
                }
            }
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, timer: Timer, out: &mut Out) {
        match timer {
            Timer::Tick => self.on_tick(cx, out),
            // The failure detector's verdict on `pendack`: skip it.
            Timer::AckTimeout => self.contin_stage2(cx, out),
            Timer::WaitTimeout => {
                if matches!(self.stage, Stage::Wait { .. }) {
                    self.start_stage1(cx, None, out);
                }
            }
            Timer::LeaderSilent => {
                if let Stage::Norm { ldr } = self.stage {
                    if ldr != self.me {
                        self.start_stage1(cx, Some(ldr), out);
                    }
                }
            }
        }
    }

    fn on_membership(&mut self, cx: &mut Context<'_>, change: Membership, out: &mut Out) {
        match change {
            // A joiner is the highest process: an `Elec1` process reaches it in turn, and a
            // leader's next `NormQ` finds it.
            Membership::Joined(_) => {}
            Membership::Left(p) => {
                self.detector.unwatch(p);
                self.acks.remove(&p);
                match self.stage {
                    Stage::Wait { ldr } | Stage::Norm { ldr } if ldr == p => {
                        self.start_stage1(cx, None, out)
                    }
                    Stage::Elec2 { pendack } if pendack == p => self.contin_stage2(cx, out),
                    Stage::Elec1 => self.check_elec1(cx, out),
                    _ => {}
                }
            }
        }
    }

    fn status(&self) -> Status {
        let (state, coordinator, phase) = match self.stage {
            Stage::Down => return Status::down(),
            Stage::Elec1 => (State::Election, None, "Elec1"),
            Stage::Elec2 { .. } => (State::Election, None, "Elec2"),
            Stage::Wait { ldr } => (State::Reorganization, Some(ldr), "Wait"),
            Stage::Norm { ldr } => (State::Normal, Some(ldr), "Norm"),
        };
        Status {
            state,
            coordinator,
            group: Some(self.elid),
            incarnation: Some(self.incarnation),
            term: None,
            phase,
        }
    }
}
