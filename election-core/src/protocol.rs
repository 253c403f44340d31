//! The sans-IO contract between an election algorithm and the driver that runs it.
//!
//! An algorithm is a [`Protocol`]: a state machine that takes one input at a time (start, a wire
//! message, a timer, a membership change) and appends [`Command`]s to an [`Out`]. It never reads a
//! clock, touches a socket or draws OS randomness: time, the membership view and an RNG arrive in
//! the [`Context`]. Drivers (the hand-driven [`crate::harness`], the simulator, the UDP shell)
//! execute the commands in order.

use std::fmt::{self, Debug};
use std::hash::Hash;

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
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
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
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
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
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
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

/// An algorithm's own options, beside the common [`Timing`]: a plain serde struct, so that drivers
/// can fill it from `-o name=value` flags ([`Config::with_options`]) or a file without knowing
/// the algorithm, and unknown names are refused with the name in the error.
pub trait Options:
    Clone + Debug + Default + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// One line per option for `--help`: `name=value  what it does (default)`.
    const HELP: &'static str;

    /// Checks the options against the timing they run with. By default everything is accepted.
    fn validate(&self, _timing: &Timing) -> Result<(), (&'static str, String)> {
        Ok(())
    }
}

/// The options of an algorithm that has none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoOptions {}

impl Options for NoOptions {
    const HELP: &'static str = "(this algorithm has no options)";
}

/// A protocol's configuration: the common [`Timing`] plus the algorithm's typed [`Options`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct Config<O> {
    /// Heartbeat and timeout, from which every timeout of the algorithm derives.
    pub timing: Timing,
    /// The algorithm's own options.
    pub options: O,
}

/// The configuration type of protocol `P`.
pub type ConfigOf<P> = Config<<P as Protocol>::Options>;

impl<O: Options> Config<O> {
    /// `timing` with the algorithm's default options.
    pub fn new(timing: Timing) -> Self {
        Config {
            timing,
            options: O::default(),
        }
    }

    /// Replaces the options by the `name=value` pairs given (values that read as a boolean or a
    /// number are taken as such, anything else as a string); options not named keep their
    /// defaults. An unknown name or a value of the wrong type is an error naming it.
    pub fn with_options(
        mut self,
        algorithm: &'static str,
        pairs: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let mut map = match serde_json::to_value(&self.options) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        for (name, value) in pairs {
            let parsed = match value.as_str() {
                "true" => serde_json::Value::Bool(true),
                "false" => serde_json::Value::Bool(false),
                v => v
                    .parse::<u64>()
                    .map(serde_json::Value::from)
                    .or_else(|_| v.parse::<f64>().map(serde_json::Value::from))
                    .unwrap_or_else(|_| serde_json::Value::String(v.to_string())),
            };
            map.insert(name.clone(), parsed);
        }
        self.options =
            serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| ConfigError {
                algorithm,
                field: "options",
                problem: format!("{e} (options of {algorithm}: {})", O::HELP),
            })?;
        Ok(self)
    }

    /// Checks the timing ([`Timing::validate`]) and the options ([`Options::validate`]).
    pub fn validate(&self, algorithm: &'static str) -> Result<(), ConfigError> {
        self.timing.validate(algorithm)?;
        self.options
            .validate(&self.timing)
            .map_err(|(field, problem)| ConfigError {
                algorithm,
                field,
                problem,
            })
    }
}

/// The system model under which an algorithm states its guarantees. The simulator checks a
/// model-bound property only while the run so far has stayed inside the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    /// Garcia-Molina's synchronous system: every message arrives within the algorithm's
    /// `max_delay` (reordering between messages allowed), nothing is lost or duplicated, the
    /// network never partitions, nodes fail only by crashing (and may recover, join and leave),
    /// and clocks drift by at most [`Model::SYNCHRONOUS_DRIFT`].
    Synchronous,
    /// Messages may be lost, duplicated, delayed without bound and reordered; the network may
    /// partition; nodes crash and recover. Safety holds always; liveness once the network is calm.
    Asynchronous,
}

impl Model {
    /// The largest clock-rate error the synchronous model allows: a timer may run this much
    /// faster or slower. The common `max_delay` (two fifths of the timeout) keeps a round trip
    /// shorter than a reply timer running this fast, with a margin.
    pub const SYNCHRONOUS_DRIFT: f64 = 0.1;
}

/// Which nodes must agree on their coordinator (Garcia-Molina's Assertion 1: "any two nodes in
/// Reorganization or Normal have the same coordinator"), and which leaders must be unique.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// All live nodes: there are no groups (Bully, the ring). Holds only inside the model.
    Everyone,
    /// Nodes that report the same [`crate::GroupId`] (Invitation's group, Stoller's election):
    /// ids are never reused, so this holds in any run.
    Group,
    /// Nodes that report the same [`crate::Status::term`] (Raft): holds in any run.
    Term,
}

/// What an algorithm guarantees, declared by the protocol for its configuration, so that the
/// simulator, the explorer and the chaos checker check exactly that — never inferred from names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Properties {
    /// The model the guarantees are stated in.
    pub model: Model,
    /// Assertion 1: nodes in `Reorganization` or `Normal` within this scope have one
    /// coordinator, at every instant the run is inside [`Properties::model`] (for
    /// [`Scope::Group`] and [`Scope::Term`], in every run). `None` if not claimed.
    pub agreement: Option<Scope>,
    /// At most one `Normal` leader per scope at every instant (Stoller's "one leader per
    /// election", Raft's Election Safety); `None` when [`Properties::agreement`] already implies
    /// it or the algorithm does not claim it.
    pub unique_leader: Option<Scope>,
    /// Validity: once stable, the leader is the highest-priority live node.
    pub highest_wins: bool,
    /// Liveness needs a live, connected majority of the members (Raft): with fewer, no leader is
    /// elected and none is expected. Otherwise every connected component elects its own.
    pub quorum: bool,
    /// The guarantees hold across joins and leaves. Without it the simulator generates no
    /// membership changes for the protocol and refuses plans that make them.
    pub membership: bool,
}

/// A theoretical message count for one scenario of the complexity table, with what it counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Bound {
    /// The formula and what it counts, e.g. `"6(n-2): Halt, NewCoordinator, Ready + answers"`.
    pub what: String,
    /// Its value for the table's `n`.
    pub value: u64,
    /// How the scenario's count relates to `value`: a bound rather than the count where it
    /// depends on timing the scenario does not fix (e.g. delay jitter).
    pub relation: Relation,
}

/// How a measured count relates to a [`Bound`]'s value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relation {
    /// Always exactly the value.
    Exact,
    /// Never below it.
    AtLeast,
    /// Never above it.
    AtMost,
}

impl Bound {
    /// A count the scenario always meets exactly.
    pub fn exact(what: &str, value: u64) -> Self {
        Self::new(what, value, Relation::Exact)
    }

    /// A lower bound on the scenario's count.
    pub fn at_least(what: &str, value: u64) -> Self {
        Self::new(what, value, Relation::AtLeast)
    }

    /// An upper bound on the scenario's count.
    pub fn at_most(what: &str, value: u64) -> Self {
        Self::new(what, value, Relation::AtMost)
    }

    fn new(what: &str, value: u64, relation: Relation) -> Self {
        Bound {
            what: what.to_string(),
            value,
            relation,
        }
    }

    /// Whether `measured` meets the bound.
    pub fn holds(&self, measured: u64) -> bool {
        match self.relation {
            Relation::Exact => measured == self.value,
            Relation::AtLeast => measured >= self.value,
            Relation::AtMost => measured <= self.value,
        }
    }

    /// The bound as the complexity table shows it: `v`, `≥ v` or `≤ v`.
    pub fn shown(&self) -> String {
        match self.relation {
            Relation::Exact => self.value.to_string(),
            Relation::AtLeast => format!("≥ {}", self.value),
            Relation::AtMost => format!("≤ {}", self.value),
        }
    }
}

/// The theory column of the complexity table for the three measured scenarios (see
/// `election sim complexity`): all nodes boot at once; the leader crashes and the second-highest
/// node (best) or the lowest node (worst) starts the election. `None` where no bound is claimed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MessageBounds {
    /// All nodes boot at once.
    pub boot: Option<Bound>,
    /// The second-highest node starts the election after the leader's crash.
    pub best: Option<Bound>,
    /// The lowest node starts the election after the leader's crash.
    pub worst: Option<Bound>,
}

/// A leader-election algorithm as a pure state machine, with the properties it guarantees.
///
/// Handlers cannot fail: a stale or unexpected message is ignored. The driver must call
/// [`on_start`](Protocol::on_start) once before anything else, and executes the commands of each
/// handler in the order they were issued (so a [`Command::Persist`] issued before a send is on
/// disk before the message leaves).
pub trait Protocol: Sized + Send + 'static {
    /// The algorithm's name on the command line, in traces and in reports (`"bully"`).
    const NAME: &'static str;
    /// The algorithm's own options ([`NoOptions`] if it has none).
    type Options: Options;
    /// The wire messages of this algorithm.
    type Msg: Clone + Debug + PartialEq + Serialize + DeserializeOwned + Kind + Send + 'static;
    /// Named timers; setting a timer that is already set replaces it.
    type Timer: Clone + Debug + Ord + Serialize + Kind + Send + 'static;

    /// A fresh state machine (a booting or recovering node) for a configuration that passed
    /// [`Config::validate`].
    fn new(config: &ConfigOf<Self>) -> Self;

    /// What this configuration guarantees.
    fn properties(config: &ConfigOf<Self>) -> Properties;

    /// The largest one-way message delay the timeouts are built for. A network slower than this
    /// leaves the synchronous model, and the liveness bound no longer applies. By default
    /// [`Timing::max_delay`].
    fn max_delay(config: &ConfigOf<Self>) -> Time {
        config.timing.max_delay()
    }

    /// Time after the last fault within which, with every message delivered within
    /// [`max_delay`](Self::max_delay), every live node of an `n`-member cluster is `Normal` and
    /// each connected component follows one coordinator.
    fn liveness_bound(config: &ConfigOf<Self>, n: usize) -> Time;

    /// The theory column of the complexity table for `n` nodes (none by default).
    fn message_bounds(_n: u64) -> MessageBounds {
        MessageBounds::default()
    }

    /// The node boots; `persisted` is the last [`Command::Persist`] payload this node issued before
    /// it crashed, if any.
    fn on_start(
        &mut self,
        cx: &mut Context<'_>,
        persisted: Option<&[u8]>,
        out: &mut Out<Self::Msg, Self::Timer>,
    );

    /// A message from `from` arrived.
    fn on_message(
        &mut self,
        cx: &mut Context<'_>,
        from: NodeId,
        msg: Self::Msg,
        out: &mut Out<Self::Msg, Self::Timer>,
    );

    /// A timer set earlier fired.
    fn on_timer(
        &mut self,
        cx: &mut Context<'_>,
        timer: Self::Timer,
        out: &mut Out<Self::Msg, Self::Timer>,
    );

    /// The membership view changed (the table in `cx.members` is already updated).
    fn on_membership(
        &mut self,
        cx: &mut Context<'_>,
        change: Membership,
        out: &mut Out<Self::Msg, Self::Timer>,
    );

    /// What the status page shows for this node.
    fn status(&self) -> Status;
}

/// A move of a node's clock reading, from `from` to `to`, that the explorer applies to a state so
/// that two states differing only in *when* they happened are recognised as one (see
/// [`Explorable::reclock`]). The two helpers keep what a protocol can observe of a time it holds:
/// how long ago an instant was (up to the longest span it compares with), how far a deadline is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reclock {
    /// The clock reading the state was built at.
    pub from: Time,
    /// The clock reading it is moved to.
    pub to: Time,
}

impl Reclock {
    /// A past instant `t` the protocol only compares as `now - t` against spans of at most
    /// `horizon`: moved so that its age is kept, an age beyond `horizon` clamped to `horizon`.
    /// Sound because every such comparison (`age < span` or `age > span - 1` with
    /// `span <= horizon`) gives the same answer for any age of at least `horizon`, and ages only
    /// grow.
    pub fn past(&self, t: Time, horizon: Time) -> Time {
        let age = self.from.saturating_sub(t).min(horizon);
        self.to.saturating_sub(age)
    }

    /// A deadline `t` the protocol compares `now` against: moved so that the time left is kept;
    /// one already passed becomes `to` (passed, like every earlier one).
    pub fn future(&self, t: Time) -> Time {
        self.to.saturating_add(t.saturating_sub(self.from))
    }
}

/// What the exhaustive explorer (`election sim explore`) needs of a protocol beyond
/// [`Protocol`]: states it can copy and fingerprint, and a way to move the clock readings a state
/// holds.
///
/// The explorer re-bases every node's clock after each step, so that a heartbeat that fires
/// and changes nothing leads back to the state it left instead of to a new one an interval
/// later. For that, a protocol that keeps times in its state (last heard, halted at, quiet
/// until) moves them with [`Reclock::past`] / [`Reclock::future`]; one that keeps none
/// implements [`reclock`](Explorable::reclock) as a no-op. Getting it wrong cannot produce a
/// false alarm silently: the explorer's counterexamples are re-run by `sim replay` without
/// re-basing, and a protocol whose decisions depend on absolute times fails that replay.
///
/// A protocol whose counters grow forever (Raft's terms, a ring's announcement laps, election
/// counters under an asynchronous network that suspects anyone at any time) has an infinite state
/// space; it reports the counter as its [`epoch`](Explorable::epoch), and the explorer stops
/// expanding states past a bound (`--max-epoch`), as TLA+ models bound Raft's terms.
pub trait Explorable: Protocol<Msg: Hash, Timer: Hash> + Clone + Hash {
    /// Moves every time the state holds from a clock reading `clock.from` to `clock.to`.
    fn reclock(&mut self, clock: Reclock);

    /// The counter this node only grows (a term, an election or group counter, a lap): 0 for a
    /// protocol without one.
    fn epoch(&self) -> u64 {
        0
    }
}

/// The checked configuration of protocol `P`: [`Config::validate`] with the protocol's name.
pub fn validated<P: Protocol>(config: ConfigOf<P>) -> Result<ConfigOf<P>, ConfigError> {
    config.validate(P::NAME)?;
    Ok(config)
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
}

impl<M, T> Command<M, T> {
    /// The same command with its message and timer types converted, for a protocol that wraps
    /// another one's messages or timers in its own.
    pub fn map<M2, T2>(
        self,
        msg: impl FnOnce(M) -> M2,
        timer: impl FnOnce(T) -> T2,
    ) -> Command<M2, T2> {
        match self {
            Command::Send { to, msg: m } => Command::Send { to, msg: msg(m) },
            Command::Broadcast { msg: m } => Command::Broadcast { msg: msg(m) },
            Command::SetTimer { timer: t, after } => Command::SetTimer {
                timer: timer(t),
                after,
            },
            Command::CancelTimer(t) => Command::CancelTimer(timer(t)),
            Command::Persist(bytes) => Command::Persist(bytes),
        }
    }
}

/// The commands a protocol issued for one input, in order.
pub struct Out<M, T> {
    commands: Vec<Command<M, T>>,
}

/// The command list of protocol `P`.
pub type OutOf<P> = Out<<P as Protocol>::Msg, <P as Protocol>::Timer>;

impl<M, T> Default for Out<M, T> {
    fn default() -> Self {
        Out {
            commands: Vec::new(),
        }
    }
}

impl<M: Debug, T: Debug> Debug for Out<M, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.commands).finish()
    }
}

impl<M, T> Out<M, T> {
    /// An empty command list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Send `msg` to `to`.
    pub fn send(&mut self, to: NodeId, msg: M) {
        self.commands.push(Command::Send { to, msg });
    }

    /// Send `msg` to every other member.
    pub fn broadcast(&mut self, msg: M) {
        self.commands.push(Command::Broadcast { msg });
    }

    /// Set (or replace) `timer` to fire after `after` microseconds.
    pub fn set_timer(&mut self, timer: T, after: Time) {
        self.commands.push(Command::SetTimer { timer, after });
    }

    /// Cancel `timer`.
    pub fn cancel_timer(&mut self, timer: T) {
        self.commands.push(Command::CancelTimer(timer));
    }

    /// Persist `bytes` across crashes.
    pub fn persist(&mut self, bytes: Vec<u8>) {
        self.commands.push(Command::Persist(bytes));
    }

    /// Appends one command (e.g. one of another `Out`'s, passed on selectively).
    pub fn push(&mut self, command: Command<M, T>) {
        self.commands.push(command);
    }

    /// Appends an inner protocol's commands, converting its messages and timers, and leaves
    /// `inner` empty: how a wrapper protocol passes on what the protocol it wraps asked for.
    pub fn append<M2, T2>(
        &mut self,
        inner: &mut Out<M2, T2>,
        msg: impl Fn(M2) -> M,
        timer: impl Fn(T2) -> T,
    ) {
        self.commands
            .extend(inner.commands.drain(..).map(|c| c.map(&msg, &timer)));
    }

    /// The commands issued so far.
    pub fn commands(&self) -> &[Command<M, T>] {
        &self.commands
    }

    /// Takes the commands out, leaving the list empty (and its allocation in place).
    pub fn drain(&mut self) -> std::vec::Drain<'_, Command<M, T>> {
        self.commands.drain(..)
    }

    /// Whether no command was issued.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }
}

/// One input to a node.
#[derive(Clone, Debug)]
pub enum Input<M, T> {
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
        msg: M,
    },
    /// A timer fired.
    Timer(T),
    /// The membership view changed.
    Membership(Membership),
}

/// The input type of protocol `P`.
pub type InputOf<P> = Input<<P as Protocol>::Msg, <P as Protocol>::Timer>;

/// A protocol plus the status it last reported: the one entry point every driver uses, so that
/// status changes are detected in exactly one place.
#[derive(Clone, Debug, Hash)]
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

    /// Feeds one input and appends the resulting commands to `out`. Returns the new status if
    /// it differs from the status before the input.
    pub fn handle(
        &mut self,
        cx: &mut Context<'_>,
        input: InputOf<P>,
        out: &mut OutOf<P>,
    ) -> Option<Status> {
        match input {
            Input::Start { persisted } => self.protocol.on_start(cx, persisted.as_deref(), out),
            Input::Message { from, msg } => self.protocol.on_message(cx, from, msg, out),
            Input::Timer(timer) => self.protocol.on_timer(cx, timer, out),
            Input::Membership(change) => self.protocol.on_membership(cx, change, out),
        }
        let status = self.protocol.status();
        (status != self.status).then(|| {
            self.status = status;
            status
        })
    }

    /// The status as of the last input.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The wrapped protocol, for inspection in tests.
    pub fn protocol(&self) -> &P {
        &self.protocol
    }

    /// The wrapped protocol, for a driver that moves its clock readings ([`Explorable`]).
    pub fn protocol_mut(&mut self) -> &mut P {
        &mut self.protocol
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Algorithm;
    use crate::bully::{Bully, BullyConfig};

    const TIMING: Timing = Timing {
        heartbeat: 100 * MILLIS,
        timeout: 40 * MILLIS,
    };

    #[test]
    fn every_algorithm_refuses_bad_timing_naming_the_field() {
        for &algorithm in Algorithm::ALL {
            crate::with_protocol!(algorithm, P => {
                let bad = |timing| validated::<P>(ConfigOf::<P>::new(timing)).unwrap_err();
                let e = bad(Timing { heartbeat: 0, ..TIMING });
                assert_eq!((e.algorithm, e.field), (P::NAME, "heartbeat"), "{e}");
                let e = bad(Timing { timeout: 1, ..TIMING });
                assert_eq!(e.field, "timeout", "{e}");
                let e = bad(Timing { heartbeat: u64::MAX, ..TIMING });
                assert!(e.problem.contains("one day"), "{e}");
                assert!(validated::<P>(ConfigOf::<P>::new(TIMING)).is_ok());
            })
        }
    }

    #[test]
    fn options_are_set_by_name_and_unknown_ones_are_named() {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let sticky = BullyConfig::new(TIMING)
            .with_options(Bully::NAME, &pairs(&[("sticky", "true")]))
            .unwrap();
        assert!(sticky.options.sticky);
        assert!(!Bully::properties(&sticky).highest_wins);
        let e = BullyConfig::new(TIMING)
            .with_options(Bully::NAME, &pairs(&[("stiky", "true")]))
            .unwrap_err();
        assert!(
            e.problem.contains("stiky") && e.problem.contains("sticky=true"),
            "{e}"
        );
        let e = BullyConfig::new(TIMING)
            .with_options(Bully::NAME, &pairs(&[("sticky", "yes")]))
            .unwrap_err();
        assert!(e.problem.contains("boolean"), "{e}");
    }
}
