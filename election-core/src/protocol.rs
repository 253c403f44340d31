//! The sans-IO contract between an election algorithm and the driver that runs it.
//!
//! An algorithm is a [`Protocol`]: a state machine that takes one input at a time (start, a wire
//! message, a timer, a membership change) and appends [`Command`]s to an [`Out`]. It never reads a
//! clock, touches a socket or draws OS randomness: time, the membership view and an RNG arrive in
//! the [`Context`]. Drivers (the hand-driven [`crate::harness`], the simulator, the UDP shell)
//! execute the commands in order.

use std::fmt::{self, Debug};

use rand::Rng;
use serde::{Serialize, de::DeserializeOwned};

use crate::status::Status;

/// Time in microseconds: virtual in the simulator, monotonic since process start on real nodes.
pub type Time = u64;

/// Microseconds in a millisecond, for readable configuration arithmetic.
pub const MILLIS: Time = 1_000;

/// A node's identity, which is also its priority: a larger id wins an election.
///
/// In a `server_config` file the id is the line position (0 for the first address), so the last
/// line has the highest priority. A node that joins later gets a fresh, larger id unless told
/// otherwise.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A node's view of the cluster membership: every known member, itself included, in priority order.
///
/// Drivers own this table and update it before delivering a [`Membership`] change, so that a
/// simulator can share one table among all nodes instead of keeping a copy per node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Members {
    sorted: Vec<NodeId>,
}

impl Members {
    /// A table holding the given ids (duplicates are merged).
    pub fn new(ids: impl IntoIterator<Item = NodeId>) -> Self {
        let mut sorted: Vec<NodeId> = ids.into_iter().collect();
        sorted.sort_unstable();
        sorted.dedup();
        Members { sorted }
    }

    /// Ids `0..n`, the table of an `n`-line `server_config`.
    pub fn first(n: u32) -> Self {
        Members {
            sorted: (0..n).map(NodeId).collect(),
        }
    }

    /// Adds a member; returns false if it was already known.
    pub fn insert(&mut self, id: NodeId) -> bool {
        match self.sorted.binary_search(&id) {
            Ok(_) => false,
            Err(at) => {
                self.sorted.insert(at, id);
                true
            }
        }
    }

    /// Removes a member; returns false if it was not known.
    pub fn remove(&mut self, id: NodeId) -> bool {
        match self.sorted.binary_search(&id) {
            Ok(at) => {
                self.sorted.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether `id` is a member.
    pub fn contains(&self, id: NodeId) -> bool {
        self.sorted.binary_search(&id).is_ok()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// All members, lowest priority first.
    pub fn all(&self) -> &[NodeId] {
        &self.sorted
    }

    /// Members with a higher priority than `id`, lowest first.
    pub fn higher_than(&self, id: NodeId) -> &[NodeId] {
        let at = self.sorted.partition_point(|&m| m <= id);
        &self.sorted[at..]
    }

    /// Members with a lower priority than `id`, lowest first.
    pub fn lower_than(&self, id: NodeId) -> &[NodeId] {
        let at = self.sorted.partition_point(|&m| m < id);
        &self.sorted[..at]
    }

    /// The highest-priority member.
    pub fn highest(&self) -> Option<NodeId> {
        self.sorted.last().copied()
    }

    /// The next member after `id` in priority order, wrapping from the highest to the lowest
    /// (the ring successor). `id` itself need not be a member. `None` only for an empty table.
    pub fn next_after(&self, id: NodeId) -> Option<NodeId> {
        self.higher_than(id)
            .first()
            .or_else(|| self.sorted.first())
            .copied()
    }
}

/// A membership change delivered to every member after the driver updated its [`Members`] table.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub enum Membership {
    /// A node joined the cluster (the peer-to-peer report's PUT of a new address).
    Joined(NodeId),
    /// A node left gracefully; unlike a crash, the others learn it at once.
    Left(NodeId),
}

/// What the driver lends a protocol for one input: who it is, when it is, who else exists, and
/// where to draw randomness from.
pub struct Context<'a> {
    /// The node being driven.
    pub id: NodeId,
    /// The current time on this node's clock.
    pub now: Time,
    /// The node's membership view (including itself).
    pub members: &'a Members,
    /// Randomness injected by the driver (seeded in the simulator).
    pub rng: &'a mut dyn Rng,
}

/// A short, stable name of a message or timer variant, for traces and per-type statistics.
pub trait Kind {
    /// The variant's name, e.g. `"AreYouThere"`.
    fn kind(&self) -> &'static str;
}

/// Error in an algorithm's configuration, found when the algorithm is constructed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {algorithm} configuration: {field} {problem}")]
pub struct ConfigError {
    /// The algorithm whose configuration was rejected.
    pub algorithm: &'static str,
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// The two knobs every algorithm's timeouts derive from, so that drivers (the simulator, the
/// `--heartbeat-ms` / `--timeout-ms` flags of a real node) can configure any algorithm alike.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct Timing {
    /// Period of polls / heartbeats / coordinator checks.
    pub heartbeat: Time,
    /// How long to wait for an answer before declaring the peer failed. It bounds a round trip, so
    /// the one-way delay the algorithm tolerates is half of it.
    pub timeout: Time,
}

impl Timing {
    /// The largest heartbeat or timeout accepted (one day), so that bound arithmetic cannot
    /// overflow.
    pub const MAX_PERIOD: Time = 86_400_000_000;

    /// Checks the knobs every algorithm shares: both positive, at most [`Self::MAX_PERIOD`], and
    /// a timeout large enough that the tolerated delay is not zero.
    pub fn validate(&self, algorithm: &'static str) -> Result<(), ConfigError> {
        let error = |field, problem: String| ConfigError {
            algorithm,
            field,
            problem,
        };
        for (field, value) in [("heartbeat", self.heartbeat), ("timeout", self.timeout)] {
            if value == 0 {
                return Err(error(field, "must be positive".into()));
            }
            if value > Self::MAX_PERIOD {
                return Err(error(
                    field,
                    format!("is {value}us, more than one day ({}us)", Self::MAX_PERIOD),
                ));
            }
        }
        if self.timeout < 5 {
            return Err(error(
                "timeout",
                format!(
                    "is {}us, below 5us (the tolerated delay, 2/5 of it, would be 0)",
                    self.timeout
                ),
            ));
        }
        Ok(())
    }

    /// The one-way delay these timeouts tolerate: two fifths of the timeout, so that a round trip
    /// of two such delays still fits a reply timer that runs up to 20 % fast (a drifting clock).
    pub fn max_delay(&self) -> Time {
        self.timeout * 2 / 5
    }
}

/// The timing configuration of an algorithm.
pub trait AlgorithmConfig: Clone + Debug + Send + Sync + 'static {
    /// The algorithm's name, for configuration errors (equal to its [`Protocol::NAME`]).
    const ALGORITHM: &'static str;

    /// The configuration derived from the common [`Timing`] knobs (algorithm options such as
    /// Bully's `sticky` take their defaults).
    fn from_timing(timing: Timing) -> Self;

    /// The common knobs of this configuration.
    fn timing(&self) -> Timing;

    /// Checks the timeouts against each other (for example, a reply timeout must exceed the
    /// round-trip time the algorithm assumes). By default the common checks of
    /// [`Timing::validate`]; an algorithm with more options checks them too.
    fn validate(&self) -> Result<(), ConfigError> {
        self.timing().validate(Self::ALGORITHM)
    }

    /// The largest one-way message delay the timeouts are built for. A driver whose network is
    /// slower than this breaks the algorithm's timing assumption (Garcia-Molina's "synchronous"
    /// system), and the liveness bound no longer applies. By default [`Timing::max_delay`].
    fn max_delay(&self) -> Time {
        self.timing().max_delay()
    }

    /// Time after the last fault within which, with every message delivered within
    /// [`max_delay`](Self::max_delay), every live node of an `n`-member cluster is `Normal` and each
    /// connected component follows one coordinator.
    fn liveness_bound(&self, n: usize) -> Time;
}

/// A leader-election algorithm as a pure state machine.
///
/// Handlers cannot fail: a stale or unexpected message is ignored. The driver must call
/// [`on_start`](Protocol::on_start) once before anything else.
pub trait Protocol: Sized + Send + 'static {
    /// The algorithm's name on the command line, in traces and in reports (`"bully"`).
    const NAME: &'static str;
    /// Timeouts and options.
    type Config: AlgorithmConfig;
    /// The wire messages of this algorithm.
    type Msg: Clone + Debug + PartialEq + Serialize + DeserializeOwned + Kind + Send + 'static;
    /// Named timers; setting a timer that is already set replaces it.
    type Timer: Clone + Debug + Ord + Serialize + Kind + Send + 'static;

    /// A fresh state machine (a booting or recovering node).
    fn new(config: Self::Config) -> Result<Self, ConfigError>;

    /// The node boots; `persisted` is the last [`Command::Persist`] payload this node issued before
    /// it crashed, if any.
    fn on_start(&mut self, cx: &mut Context<'_>, persisted: Option<&[u8]>, out: &mut Out<Self>);

    /// A message from `from` arrived.
    fn on_message(
        &mut self,
        cx: &mut Context<'_>,
        from: NodeId,
        msg: Self::Msg,
        out: &mut Out<Self>,
    );

    /// A timer set earlier fired.
    fn on_timer(&mut self, cx: &mut Context<'_>, timer: Self::Timer, out: &mut Out<Self>);

    /// The membership view changed (the table in `cx.members` is already updated).
    fn on_membership(&mut self, cx: &mut Context<'_>, change: Membership, out: &mut Out<Self>);

    /// What the status page shows for this node.
    fn status(&self) -> Status;
}

/// One effect a protocol asks its driver to carry out.
#[derive(Clone, Debug, PartialEq)]
pub enum Command<M, T> {
    /// Send `msg` to one node.
    Send {
        /// The receiver.
        to: NodeId,
        /// The message.
        msg: M,
    },
    /// Send `msg` to every other member in the sender's view.
    Broadcast {
        /// The message.
        msg: M,
    },
    /// Fire `timer` after `after` microseconds, replacing the same timer if it is set.
    SetTimer {
        /// Which timer.
        timer: T,
        /// Delay from now, in microseconds of the node's clock.
        after: Time,
    },
    /// Forget `timer` if it is set.
    CancelTimer(T),
    /// Keep these bytes across a crash; they come back in [`Protocol::on_start`].
    Persist(Vec<u8>),
    /// The node's [`Status`] changed to this (emitted by [`Node`], never by protocols).
    StatusChanged(Status),
}

/// The commands a protocol issued for one input, in order.
pub struct Out<P: Protocol> {
    commands: Vec<Command<P::Msg, P::Timer>>,
}

impl<P: Protocol> Default for Out<P> {
    fn default() -> Self {
        Out {
            commands: Vec::new(),
        }
    }
}

impl<P: Protocol> Debug for Out<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.commands).finish()
    }
}

impl<P: Protocol> Out<P> {
    /// An empty command list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Send `msg` to `to`.
    pub fn send(&mut self, to: NodeId, msg: P::Msg) {
        self.commands.push(Command::Send { to, msg });
    }

    /// Send `msg` to every other member.
    pub fn broadcast(&mut self, msg: P::Msg) {
        self.commands.push(Command::Broadcast { msg });
    }

    /// Set (or replace) `timer` to fire after `after` microseconds.
    pub fn set_timer(&mut self, timer: P::Timer, after: Time) {
        self.commands.push(Command::SetTimer { timer, after });
    }

    /// Cancel `timer`.
    pub fn cancel_timer(&mut self, timer: P::Timer) {
        self.commands.push(Command::CancelTimer(timer));
    }

    /// Persist `bytes` across crashes.
    pub fn persist(&mut self, bytes: Vec<u8>) {
        self.commands.push(Command::Persist(bytes));
    }

    /// The commands issued so far.
    pub fn commands(&self) -> &[Command<P::Msg, P::Timer>] {
        &self.commands
    }

    /// Takes the commands out, leaving the list empty (and its allocation in place).
    pub fn drain(&mut self) -> std::vec::Drain<'_, Command<P::Msg, P::Timer>> {
        self.commands.drain(..)
    }

    /// Whether no command was issued.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }
}

/// One input to a node.
#[derive(Clone, Debug)]
pub enum Input<P: Protocol> {
    /// Boot (or recover with what was persisted).
    Start {
        /// The last persisted payload, if any.
        persisted: Option<Vec<u8>>,
    },
    /// A wire message.
    Message {
        /// The sender.
        from: NodeId,
        /// The message.
        msg: P::Msg,
    },
    /// A timer fired.
    Timer(P::Timer),
    /// The membership view changed.
    Membership(Membership),
}

/// A protocol plus the status it last reported: the one entry point every driver uses, so that
/// [`Command::StatusChanged`] is emitted in exactly one place.
#[derive(Debug)]
pub struct Node<P: Protocol> {
    protocol: P,
    status: Status,
}

impl<P: Protocol> Node<P> {
    /// Wraps a fresh protocol instance; its status is `Down` until it is started.
    pub fn new(protocol: P) -> Self {
        Node {
            protocol,
            status: Status::down(),
        }
    }

    /// Feeds one input and appends the resulting commands to `out`, followed by
    /// [`Command::StatusChanged`] if the status differs from before.
    pub fn handle(&mut self, cx: &mut Context<'_>, input: Input<P>, out: &mut Out<P>) {
        match input {
            Input::Start { persisted } => self.protocol.on_start(cx, persisted.as_deref(), out),
            Input::Message { from, msg } => self.protocol.on_message(cx, from, msg, out),
            Input::Timer(timer) => self.protocol.on_timer(cx, timer, out),
            Input::Membership(change) => self.protocol.on_membership(cx, change, out),
        }
        let status = self.protocol.status();
        if status != self.status {
            self.status = status;
            out.commands.push(Command::StatusChanged(status));
        }
    }

    /// The status as of the last input.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The wrapped protocol, for inspection in tests.
    pub fn protocol(&self) -> &P {
        &self.protocol
    }
}
