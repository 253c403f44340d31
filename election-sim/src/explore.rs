//! Exhaustive exploration of small clusters: every reachable global state of a protocol from a
//! fresh boot, under a budget of faults, with the simulator's invariants evaluated in every
//! state and liveness decided on the whole state graph.
//!
//! # The state and its choices
//!
//! A global state is every node's protocol state (or down, with what it persisted), its armed
//! timers, its clock, the messages in flight, the partition, and the faults left in the budget.
//! From a state, every enabled choice is a branch: a node that has not booted boots; any message
//! in flight is delivered (to a node that is down or behind the partition it is dropped); a
//! timer fires; and, while the [`Budget`] allows, a live node crashes, a crashed node recovers
//! (with what it persisted), the nodes split into two sides, a message is lost or duplicated,
//! a new node joins or a member leaves. A partition heals at any time.
//!
//! # Membership changes
//!
//! For the protocols that declare [`Properties::membership`], `--joins` and `--leaves` add the
//! membership layer's outcomes as choices: a join admits the next free id above every node (as
//! the real layer does: a joiner gets the highest id), boots it with the whole current table, and
//! queues the change at every other live member; a leave stops a live member for good (it
//! persists nothing) and queues its departure at the others. Each node learns its queued
//! changes one at a time, in order, each as a step of its own that interleaves with everything
//! else — so every run in which some nodes know of a change and others do not yet is explored,
//! messages from a joiner may reach a node before it learned of the joiner (the protocols drop
//! those), and a leaver's messages still in flight may reach a node that learned of its leave.
//! What the layer's own gossip does (retries, tables exchanged) is abstracted away: it is tested
//! on its own (`election-core/src/membership.rs`) and in the simulator. A node that recovers
//! boots with the current table (a restarted real node greets first and learns it before it
//! starts). Learning is a fair step, like a delivery.
//!
//! # Timing, per model
//!
//! - **Asynchronous** ([`Model::Asynchronous`]: Invitation, asynchronous Bully, Raft). Each node
//!   has its own clock and timers fire in their order on it, but any node's next timer may fire
//!   whatever is in flight and whatever the other nodes' clocks read: messages are delayed
//!   without bound and clocks are unrelated. A message is delivered at its receiver's clock.
//! - **Synchronous** ([`Model::Synchronous`]: Bully, the ring). One clock for all (no drift).
//!   A message sent at `t` must arrive by `t + max_delay` (the protocol's
//!   [`Protocol::max_delay`]), so the next timer (at `d`) may fire only when no message in
//!   flight is due before `d`: messages are faster than the timeouts waiting for them, and
//!   deliveries still interleave arbitrarily with each other and with timers of the same instant
//!   (that is how one Halt overtakes another).
//!
//! In both, a message is delivered at the instant of the latest event (the latest timer) rather
//! than at every instant in between: every explored run is a run of the model, so a violation
//! found is real; runs whose deliveries fall strictly between two timer instants are represented
//! by the delivery at the earlier one, which the protocol tells apart only by the clock reading it
//! records (a last-heard time, a halt time).
//!
//! # Time abstraction
//!
//! Clocks only grow, so without abstraction no state would ever repeat. After each step the
//! explorer moves every clock to a fixed reading ([`BASE`]) and every time the state holds by
//! the same amount: timer deadlines and message due times in the explorer, the protocol's own
//! times through [`Explorable::reclock`] (which clamps ages beyond the longest span the protocol
//! compares them with). The protocols read time only as differences from `now`, so the moved
//! state behaves exactly like the original from then on: the abstraction merges only states with
//! identical futures, and is sound and complete for every property checked. Counterexamples are
//! re-run without it (see [`replay`]): a protocol whose `reclock` is wrong fails that replay.
//!
//! # Random draws
//!
//! Every input gives the protocol a fresh RNG seeded from the `seed`, the node and its boot count
//! (so each life of a node draws its own values): the explorer branches over orderings and
//! faults, not over random values (a timeout drawn at random is the same draw on every path; a
//! different `--seed` explores other draws).
//!
//! # Properties
//!
//! - **Safety** — exactly the simulator's ([`crate::check`]), per the protocol's declared
//!   [`Properties`]: Assertion 1 within its scope (for [`Scope::Everyone`] only while no loss,
//!   duplication, partition, join or leave has happened in a synchronous-model protocol: the
//!   simulator's rule, as Garcia-Molina's processes are a fixed set), one leader per
//!   election / term. Evaluated in every state; the first violation found is at the smallest
//!   depth (breadth-first search), and its path is the shortest counterexample.
//! - **Liveness** — on the graph of every reachable state with only the fault-free steps
//!   (deliveries, timers, boots, heals): no further fault happens. The settled condition is
//!   every live node `Normal` behind one live leader, in one group (vacuous without a live
//!   majority for a [`Properties::quorum`] protocol). A state with no step at all that is not
//!   settled is a violation in both models; beyond that:
//!   - *synchronous model*: settling must be inevitable under weak fairness — a message in
//!     flight is eventually delivered, a node's next timer eventually fires, a node eventually
//!     boots, a partition eventually heals. A violation is a strongly connected set of unsettled
//!     states in which every step enabled throughout is also taken inside it (a fair cycle that
//!     never settles).
//!   - *asynchronous model*: settling must stay possible — from every state some path leads to
//!     a settled state. These papers promise convergence only once the network is calm (answers
//!     arrive before timeouts): a scheduler that keeps firing timeouts ahead of the answers can
//!     keep any of them electing forever (the impossibility they sidestep with timing), so such
//!     cycles are not violations. Every calm schedule is among the paths explored, so a state
//!     from which no path settles is a real violation.
//! - **Validity** (where [`Properties::highest_wins`]): in every bottom strongly connected
//!   component (where a run ends up once nothing else happens), the settled states are led by
//!   the highest live node.
//!
//! # Threads
//!
//! The search runs level by level ([`Explorer::jobs`] threads, `--jobs`): the states of one depth
//! are expanded in parallel (each successor built, fingerprinted, and, unless already visited,
//! judged for safety, settling and the epoch bound), then merged into the visited set and the
//! state graph on one thread in the order a serial breadth-first search meets them. State
//! numbers, parent links, edges, cuts and the first violation are the serial ones, so the
//! report and every counterexample are the same for any number of threads.
//!
//! Nodes are not symmetric (the id is the priority), so there is no symmetry reduction; the
//! network is canonicalised (messages in flight as a sorted multiset).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};
use std::time::Instant;

use election_core::{
    Command, ConfigOf, Context, Explorable, Input, InputOf, Kind, Members, Membership, Model, Node,
    NodeId, Out, Properties, Protocol, Reclock, State, Status, Time,
};
use foldhash::fast::FixedState;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::check::{Invariant, Safety, Violation, describe};
use crate::plan::Fault;
use crate::trace::{Ev, Fnv, Line, Spec, TraceSink};

/// The clock reading every state is moved to after each step (2⁴⁰ µs, about 12.7 days: far from
/// zero, so that no protocol arithmetic saturates).
pub const BASE: Time = 1 << 40;

/// How many faults of each kind a path may contain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Budget {
    /// Crashes of a live node.
    pub crashes: u8,
    /// Recoveries of a crashed node.
    pub recoveries: u8,
    /// Splits of the nodes into two sides (each heals at any time).
    pub partitions: u8,
    /// Messages lost in flight.
    pub losses: u8,
    /// Messages duplicated in flight.
    pub duplicates: u8,
    /// New nodes admitted (protocols with [`Properties::membership`] only).
    pub joins: u8,
    /// Graceful leaves of a member (likewise).
    pub leaves: u8,
}

/// Where the search stops short of the whole state space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Distinct states kept at most.
    pub max_states: usize,
    /// Steps from the boot at most (`None`: no bound).
    pub max_depth: Option<u32>,
    /// The search's estimated memory (visited fingerprints, the state graph, the queue) at most,
    /// in bytes.
    pub max_memory: u64,
    /// States in which a live node's [`Explorable::epoch`] exceeds this are checked for safety
    /// but not expanded.
    pub max_epoch: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_states: 20_000_000,
            max_depth: None,
            max_memory: 4 << 30,
            max_epoch: 1,
        }
    }
}

/// One step of a path, as a counterexample's trace header records it (messages and timers by
/// their serialized form, so a path reads without the explorer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Step {
    /// A node boots for the first time.
    Start {
        /// Which node.
        node: u32,
    },
    /// The earliest due copy of this message is delivered.
    Deliver {
        /// Sender.
        from: u32,
        /// Receiver.
        to: u32,
        /// The message.
        msg: serde_json::Value,
    },
    /// This timer of the node fires.
    Fire {
        /// Which node.
        node: u32,
        /// The timer.
        timer: serde_json::Value,
    },
    /// A live node crashes.
    Crash {
        /// Which node.
        node: u32,
    },
    /// A crashed node recovers.
    Recover {
        /// Which node.
        node: u32,
    },
    /// The nodes split into `side` and the others.
    Split {
        /// One side (node 0's).
        side: Vec<u32>,
    },
    /// The partition heals.
    Heal,
    /// A message in flight is lost.
    Lose {
        /// Sender.
        from: u32,
        /// Receiver.
        to: u32,
        /// The message.
        msg: serde_json::Value,
    },
    /// A message in flight is duplicated.
    Duplicate {
        /// Sender.
        from: u32,
        /// Receiver.
        to: u32,
        /// The message.
        msg: serde_json::Value,
    },
    /// A new node joins with this id.
    Join {
        /// The joiner.
        node: u32,
    },
    /// A live member leaves.
    Leave {
        /// The leaver.
        node: u32,
    },
    /// A live node learns the next membership change queued for it.
    Learn {
        /// Which node.
        node: u32,
    },
}

/// What a counterexample's trace header holds besides the [`Spec`]: the budget it was found
/// under, its path, and where the path's cycle starts for a liveness counterexample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Explored {
    /// The fault budget of the search.
    pub budget: Budget,
    /// The search's [`Explorer::max_in_flight`].
    pub max_in_flight: usize,
    /// The broken property.
    pub invariant: Invariant,
    /// The steps from a fresh boot.
    pub path: Vec<Step>,
    /// For a liveness counterexample: the path from this step on is a cycle (it returns to the
    /// state before this step, up to the time abstraction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle_from: Option<usize>,
}

/// A violation the search found, with its path.
#[derive(Clone, Debug, PartialEq)]
pub struct Counterexample {
    /// The broken property, with the nodes and what was seen.
    pub violation: Violation,
    /// The path, ready for a trace header.
    pub explored: Explored,
}

/// What a search found and how far it got.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Distinct states visited.
    pub states: u64,
    /// Steps taken (edges of the state graph, faults included).
    pub transitions: u64,
    /// The largest number of steps from the boot to a visited state.
    pub depth: u32,
    /// Why the search did not visit every reachable state (a limit, or the first violation),
    /// if it did not: see [`Report::complete`].
    pub cut: Option<String>,
    /// States past the epoch bound: checked for safety, not expanded. Liveness and validity are
    /// then decided on the states within the bound (a violation found there is real; paths
    /// beyond the bound are not judged).
    pub past_epoch: u64,
    /// Whether liveness and validity were decided (only on a complete search without a safety
    /// violation).
    pub liveness_checked: bool,
    /// The largest estimated memory of the search, bytes.
    pub memory_estimate: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// The violation found, if any (safety first; liveness only on a complete search).
    #[serde(skip)]
    pub counterexample: Option<Counterexample>,
}

impl Report {
    /// Whether every reachable state was visited (no limit cut the search).
    pub fn complete(&self) -> bool {
        self.cut.is_none()
    }
}

/// The peak resident memory of this process in MiB, from `/proc/self/status` (Linux only): what
/// a search's figures report beside the estimate.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// A progress report, about every 65,536 states.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Distinct states so far.
    pub states: u64,
    /// Depth of the state being expanded.
    pub depth: u32,
    /// States waiting to be expanded.
    pub queue: usize,
    /// Seconds since the start.
    pub seconds: f64,
}

/// One choice, as the search keys it: messages and timers by a hash of their value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Action {
    Start(u32),
    Deliver { from: u32, to: u32, msg: u64 },
    Fire { node: u32, timer: u64 },
    Crash(u32),
    Recover(u32),
    Split(u32),
    Heal,
    Lose { from: u32, to: u32, msg: u64 },
    Duplicate { from: u32, to: u32, msg: u64 },
    Join(u32),
    Leave(u32),
    Learn(u32),
}

impl Action {
    /// Faults are the steps the budget pays for; liveness assumes none happens any more.
    fn is_fault(&self) -> bool {
        matches!(
            self,
            Action::Crash(_)
                | Action::Recover(_)
                | Action::Split(_)
                | Action::Lose { .. }
                | Action::Duplicate { .. }
                | Action::Join(_)
                | Action::Leave(_)
        )
    }
}

/// A stable 64-bit hash of a value (FNV-1a over what its `Hash` writes).
fn stable_hash(value: &impl Hash) -> u64 {
    let mut h = Fnv::default();
    value.hash(&mut h);
    h.finish()
}

/// A 128-bit fingerprint, so that distinct states of a search of billions do not collide in
/// practice: two 64-bit hashes with fixed, different seeds (deterministic on every run).
fn fingerprint(value: &impl Hash) -> u128 {
    let a = FixedState::with_seed(0x5eed_0001).hash_one(value);
    let b = FixedState::with_seed(0x5eed_0002).hash_one(value);
    (u128::from(a) << 64) | u128::from(b)
}

/// The visited set: fingerprint → state number.
type Visited = HashMap<u128, u32, FixedState>;

/// A message in flight.
#[derive(Clone, Debug)]
struct Flight<M> {
    from: u32,
    to: u32,
    msg: M,
    /// `stable_hash(msg)`.
    hash: u64,
    /// When it must have arrived (synchronous model; 0 otherwise).
    due: Time,
    /// Its number in the trace (0 while exploring: not part of the state).
    id: u64,
}

impl<M> Hash for Flight<M> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        (self.from, self.to, self.hash, self.due).hash(h);
    }
}

/// One node of a global state.
#[derive(Clone, Debug, Hash)]
struct Slot<P: Explorable> {
    /// `None` while down (or not booted yet).
    node: Option<Node<P>>,
    /// Boots so far (0: not booted yet); each life draws its own random values.
    boots: u8,
    persisted: Option<Vec<u8>>,
    /// Armed timers and their deadlines, in timer order.
    timers: Vec<(P::Timer, Time)>,
    clock: Time,
    /// The members this node knows of (its `Context::members`).
    view: Members,
    /// Membership changes this node has yet to learn, oldest first.
    pending: Vec<Membership>,
}

/// A global state.
#[derive(Clone, Debug, Hash)]
struct World<P: Explorable> {
    /// The initial nodes, then a slot per join the budget allows.
    slots: Vec<Slot<P>>,
    /// The members as the membership layer has them: who has joined and not left.
    members: Members,
    flights: Vec<Flight<P::Msg>>,
    budget: Budget,
    /// The side of node 0 while partitioned (a bit per node).
    cut: Option<u32>,
    /// No fault outside the protocol's model has happened.
    inside: bool,
}

impl<P: Explorable> World<P> {
    fn boot(nodes: u32, budget: Budget) -> Self {
        let members = Members::first(nodes);
        World {
            slots: (0..nodes + u32::from(budget.joins))
                .map(|_| Slot {
                    node: None,
                    boots: 0,
                    persisted: None,
                    timers: Vec::new(),
                    clock: BASE,
                    view: members.clone(),
                    pending: Vec::new(),
                })
                .collect(),
            members,
            flights: Vec::new(),
            budget,
            cut: None,
            inside: true,
        }
    }

    fn live_slots(&self) -> impl Iterator<Item = &Slot<P>> {
        self.slots.iter().filter(|s| s.node.is_some())
    }

    fn live(&self) -> impl Iterator<Item = (u32, &Node<P>)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.node.as_ref().map(|n| (i as u32, n)))
    }

    fn blocked(&self, from: u32, to: u32) -> bool {
        self.cut
            .is_some_and(|side| (side >> from & 1) != (side >> to & 1))
    }

    /// A rough size, for the memory cap: the explorer's own parts and the protocol's inline size
    /// (its heap, such as sets of node ids, is not counted).
    fn size(&self) -> u64 {
        let slots: usize = self
            .slots
            .iter()
            .map(|s| {
                std::mem::size_of::<Slot<P>>()
                    + s.timers.len() * std::mem::size_of::<(P::Timer, Time)>()
                    + s.persisted.as_ref().map_or(0, Vec::len)
            })
            .sum();
        (std::mem::size_of::<Self>()
            + slots
            + self.flights.len() * std::mem::size_of::<Flight<P::Msg>>()) as u64
    }
}

/// States of one level expanded in parallel before their successors are merged: enough to keep
/// every thread busy, few enough to bound the successors held at once.
const CHUNK: usize = 2048;

/// A state's successors, from [`Explorer::expand`].
struct Expansion<P: Explorable> {
    /// The expanded state's [`World::size`], for the queue's share of the memory estimate.
    size: u64,
    /// In action order.
    successors: Vec<Successor<P>>,
}

/// One step from an expanded state.
struct Successor<P: Explorable> {
    action: Action,
    /// The fingerprint of the state it leads to.
    fp: u128,
    /// That state, unless it was visited before its level.
    new: Option<Box<New<P>>>,
}

/// A successor not visited before its level, with what is decided about it in parallel.
struct New<P: Explorable> {
    world: World<P>,
    /// [`Explorer::verdict`].
    verdict: (bool, bool),
    /// The safety property it breaks (checked only where a status changed in the step).
    broken: Option<(Invariant, Vec<NodeId>, String)>,
    /// Past the epoch bound: not expanded.
    past: bool,
}

/// A trace event of protocol `P`.
type EvOf<'a, P> = Ev<'a, <P as Protocol>::Msg, <P as Protocol>::Timer>;

/// Trace output of a re-run path.
struct Tracer {
    sink: TraceSink,
    sent: u64,
    t: Time,
}

/// The explorer of protocol `P` under one configuration.
pub struct Explorer<P: Explorable> {
    config: ConfigOf<P>,
    properties: Properties,
    /// `max_delay` in the synchronous model; `None` in the asynchronous one.
    due: Option<Time>,
    /// The nodes at boot (ids `0..nodes`); joiners take the ids above.
    nodes: u32,
    budget: Budget,
    seed: u64,
    max_in_flight: usize,
    /// The threads [`Explorer::run`] expands states on.
    pool: rayon::ThreadPool,
}

/// The default of [`Explorer::max_in_flight`].
pub const MAX_IN_FLIGHT: usize = 2;

impl<P: Explorable> Explorer<P> {
    /// An explorer of `nodes` nodes (at most 32) under `budget`; `seed` picks the protocols'
    /// random draws.
    pub fn new(config: ConfigOf<P>, nodes: u32, budget: Budget, seed: u64) -> Result<Self, String> {
        if !(1..=32).contains(&(nodes + u32::from(budget.joins))) {
            return Err(format!(
                "--nodes {nodes} with --joins {}: the explorer takes 1 to 32 nodes in all",
                budget.joins
            ));
        }
        let properties = P::properties(&config);
        if !properties.membership && budget.joins + budget.leaves > 0 {
            return Err(format!(
                "--joins/--leaves: {} does not support membership changes",
                P::NAME
            ));
        }
        let due = (properties.model == Model::Synchronous).then(|| P::max_delay(&config));
        Ok(Explorer {
            config,
            properties,
            due,
            nodes,
            budget,
            seed,
            max_in_flight: MAX_IN_FLIGHT,
            pool: Self::threads(1)?,
        })
    }

    /// Every slot: the nodes at boot and one per join in the budget.
    fn universe(&self) -> u32 {
        self.nodes + u32::from(self.budget.joins)
    }

    /// Expands states on `jobs` threads (default 1). The report is the same for any number,
    /// timing aside (see [`Explorer::run`]).
    pub fn jobs(mut self, jobs: usize) -> Result<Self, String> {
        self.pool = Self::threads(jobs)?;
        Ok(self)
    }

    fn threads(jobs: usize) -> Result<rayon::ThreadPool, String> {
        rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.max(1))
            .build()
            .map_err(|e| format!("cannot start {jobs} worker threads: {e}"))
    }

    /// Asynchronous model: no timer fires while `k` messages are in flight (they are delivered,
    /// lost or duplicated first). Periodic timers would otherwise fill the network without
    /// bound; every explored run is still a run of the model. Default [`MAX_IN_FLIGHT`].
    pub fn max_in_flight(mut self, k: usize) -> Self {
        self.max_in_flight = k.max(1);
        self
    }

    /// Searches every state reachable from a fresh boot, breadth first, within `limits`;
    /// `progress` is called about every 65,536 states.
    ///
    /// Level by level: the states of one depth are expanded in chunks on the [`Explorer::jobs`]
    /// threads, and each chunk's successors are merged into the visited set and the state graph
    /// serially, in the order a single-threaded search meets them. So the numbering, the parent
    /// links, the edges, the cuts and the first violation do not depend on the number of
    /// threads: the report is the same for any, timing aside.
    pub fn run(&self, limits: &Limits, mut progress: impl FnMut(&Progress)) -> Report {
        let started = Instant::now();
        let mut graph = Graph::default();
        let mut visited = Visited::with_hasher(FixedState::with_seed(0));
        let mut queue_bytes = 0u64;
        let mut report = Report {
            states: 0,
            transitions: 0,
            depth: 0,
            cut: None,
            past_epoch: 0,
            liveness_checked: false,
            memory_estimate: 0,
            seconds: 0.0,
            counterexample: None,
        };
        let init = World::boot(self.nodes, self.budget);
        visited.insert(fingerprint(&init), 0);
        graph.add(None, 0, self.verdict(&init));
        queue_bytes += init.size();
        let mut level: Vec<(u32, World<P>)> = vec![(0, init)];
        let mut found = None;
        'search: while let Some(&(first, _)) = level.first() {
            let depth = graph.depth[first as usize];
            report.depth = depth;
            let expand = limits.max_depth.is_none_or(|d| depth < d);
            let mut next_level = Vec::new();
            let mut rest = std::mem::take(&mut level).into_iter();
            while rest.len() > 0 {
                let chunk: Vec<(u32, World<P>)> = rest.by_ref().take(CHUNK).collect();
                let expansions: Vec<(u32, Expansion<P>)> = self.pool.install(|| {
                    chunk
                        .into_par_iter()
                        .map(|(index, world)| {
                            (
                                index,
                                self.expand(world, expand, &visited, limits.max_epoch),
                            )
                        })
                        .collect()
                });
                for (index, expansion) in expansions {
                    queue_bytes -= expansion.size;
                    if graph.len() % 65_536 == 0 {
                        progress(&Progress {
                            states: graph.len() as u64,
                            depth,
                            queue: rest.len() + next_level.len(),
                            seconds: started.elapsed().as_secs_f64(),
                        });
                    }
                    graph.open(index);
                    if !expand {
                        report.cut = Some(format!("the depth bound of {depth} steps was reached"));
                        continue;
                    }
                    for Successor { action, fp, new } in expansion.successors {
                        report.transitions += 1;
                        // A state new before this level may have been met earlier in it.
                        let target = match visited.get(&fp) {
                            Some(&t) => t,
                            None => {
                                let Some(new) = new else {
                                    unreachable!("visited only grows: it lacked this state before")
                                };
                                if graph.len() >= limits.max_states {
                                    report.cut = Some(format!(
                                        "the cap of {} states was reached (raise --max-states)",
                                        limits.max_states
                                    ));
                                    break 'search;
                                }
                                let memory =
                                    graph.bytes() + visited.len() as u64 * 48 + queue_bytes;
                                report.memory_estimate = report.memory_estimate.max(memory);
                                if memory > limits.max_memory {
                                    report.cut = Some(format!(
                                        "the memory cap of {} MiB was reached after {} states \
                                         (raise --max-memory-mb, or lower the fault budget)",
                                        limits.max_memory >> 20,
                                        graph.len()
                                    ));
                                    break 'search;
                                }
                                let t = graph.len() as u32;
                                visited.insert(fp, t);
                                graph.add(Some((index, action)), depth + 1, new.verdict);
                                if let Some(broken) = new.broken {
                                    found = Some((t, broken));
                                    break 'search;
                                }
                                if new.past {
                                    graph.beyond(t);
                                    report.past_epoch += 1;
                                } else {
                                    queue_bytes += new.world.size();
                                    next_level.push((t, new.world));
                                }
                                t
                            }
                        };
                        if !action.is_fault() {
                            graph.edge(target, action);
                        }
                    }
                }
            }
            level = next_level;
        }
        graph.close();
        report.states = graph.len() as u64;
        if let Some((state, (invariant, nodes, detail))) = found {
            report.cut = Some("the search stops at the first violation".into());
            let path = graph.path_to(state);
            report.counterexample =
                Some(self.counterexample(invariant, nodes, detail, &path, None));
        } else if report.complete() {
            report.liveness_checked = true;
            report.counterexample = self.liveness(&graph);
        }
        report.memory_estimate = report
            .memory_estimate
            .max(graph.bytes() + visited.len() as u64 * 48);
        report.seconds = started.elapsed().as_secs_f64();
        report
    }

    /// The successors of `world` in action order (none unless `expand`), each with its
    /// fingerprint and, unless `visited` already holds it, the state and what the merge needs:
    /// the part of the search that runs in parallel.
    fn expand(
        &self,
        world: World<P>,
        expand: bool,
        visited: &Visited,
        max_epoch: u64,
    ) -> Expansion<P> {
        let size = world.size();
        let actions = if expand {
            self.actions(&world)
        } else {
            Vec::new()
        };
        let successors = actions
            .into_iter()
            .map(|action| {
                let mut next = world.clone();
                self.apply(&mut next, action, &mut None);
                self.canonical(&mut next, true);
                let fp = fingerprint(&next);
                if visited.contains_key(&fp) {
                    return Successor {
                        action,
                        fp,
                        new: None,
                    };
                }
                // Safety depends on the statuses and the model flag only.
                let same = next.inside == world.inside
                    && next.slots.iter().zip(&world.slots).all(|(a, b)| {
                        a.node.as_ref().map(Node::status) == b.node.as_ref().map(Node::status)
                    });
                let past = next.live().any(|(_, n)| n.protocol().epoch() > max_epoch);
                let new = New {
                    verdict: self.verdict(&next),
                    broken: (!same).then(|| self.safety(&next)).flatten(),
                    past,
                    world: next,
                };
                Successor {
                    action,
                    fp,
                    new: Some(Box::new(new)),
                }
            })
            .collect();
        Expansion { size, successors }
    }

    /// The choices enabled in `w`, in a fixed order.
    fn actions(&self, w: &World<P>) -> Vec<Action> {
        let mut actions = Vec::new();
        let unbooted = w
            .slots
            .iter()
            .take(self.nodes as usize)
            .any(|s| s.boots == 0);
        for (i, slot) in w.slots.iter().enumerate().take(self.nodes as usize) {
            if slot.boots == 0 {
                actions.push(Action::Start(i as u32));
            }
        }
        for (i, slot) in w.slots.iter().enumerate() {
            if slot.node.is_some() && !slot.pending.is_empty() {
                actions.push(Action::Learn(i as u32));
            }
        }
        let mut deliveries: Vec<(u32, u32, u64)> =
            w.flights.iter().map(|f| (f.from, f.to, f.hash)).collect();
        deliveries.dedup();
        for &(from, to, msg) in &deliveries {
            actions.push(Action::Deliver { from, to, msg });
        }
        let next = |s: &Slot<P>| s.timers.iter().map(|t| t.1).min();
        // Which deadline may fire on each live node: one clock — the earliest deadline of all,
        // unless a message is due before it (and only once every node booted at the start);
        // a clock per node — each node's next one, unless the network is full.
        let global = match self.due {
            Some(_) if unbooted => Some(None),
            Some(_) => {
                let earliest = w.live_slots().filter_map(next).min();
                let due = w.flights.iter().map(|f| f.due).min().unwrap_or(Time::MAX);
                Some(earliest.filter(|&d| d <= due))
            }
            None if w.flights.len() >= self.max_in_flight => Some(None),
            None => None,
        };
        for (i, s) in w.slots.iter().enumerate().filter(|(_, s)| s.node.is_some()) {
            let Some(d) = global.unwrap_or_else(|| next(s)) else {
                continue;
            };
            for (timer, _) in s.timers.iter().filter(|t| t.1 == d) {
                actions.push(Action::Fire {
                    node: i as u32,
                    timer: stable_hash(timer),
                });
            }
        }
        if w.cut.is_some() {
            actions.push(Action::Heal);
        }
        let b = w.budget;
        for (i, slot) in w.slots.iter().enumerate() {
            if b.crashes > 0 && slot.node.is_some() {
                actions.push(Action::Crash(i as u32));
            }
            let member = w.members.contains(NodeId(i as u32));
            if b.recoveries > 0 && slot.boots > 0 && slot.node.is_none() && member {
                actions.push(Action::Recover(i as u32));
            }
            if b.leaves > 0 && slot.node.is_some() && member && w.members.len() > 1 {
                actions.push(Action::Leave(i as u32));
            }
        }
        // The next free id joins, admitted by a live member.
        let joiner = w
            .slots
            .iter()
            .skip(self.nodes as usize)
            .position(|s| s.boots == 0);
        if let Some(k) = joiner.filter(|_| b.joins > 0 && w.live().next().is_some()) {
            actions.push(Action::Join(self.nodes + k as u32));
        }
        let universe = self.universe();
        if b.partitions > 0 && w.cut.is_none() && universe > 1 {
            // Node 0's side names the split: each bipartition once.
            let all = if universe == 32 {
                u32::MAX
            } else {
                (1u32 << universe) - 1
            };
            for side in (1..all).filter(|s| s & 1 == 1) {
                actions.push(Action::Split(side));
            }
        }
        for &(from, to, msg) in &deliveries {
            if b.losses > 0 {
                actions.push(Action::Lose { from, to, msg });
            }
            if b.duplicates > 0 {
                actions.push(Action::Duplicate { from, to, msg });
            }
        }
        actions
    }

    /// The flight a delivery, loss or duplication of (`from`, `to`, `msg`) takes: the earliest
    /// due of identical copies (taking a later one first is never less constrained).
    fn flight(w: &World<P>, from: u32, to: u32, msg: u64) -> Option<usize> {
        w.flights
            .iter()
            .position(|f| (f.from, f.to, f.hash) == (from, to, msg))
    }

    /// Carries out `action` on `w`, tracing it if `tracer` is given.
    fn apply(&self, w: &mut World<P>, action: Action, tracer: &mut Option<Tracer>) {
        match action {
            Action::Start(i) => self.boot(w, i, tracer),
            Action::Deliver { from, to, msg } => {
                let Some(k) = Self::flight(w, from, to, msg) else {
                    return;
                };
                let f = w.flights.remove(k);
                let reason = if w.slots[to as usize].node.is_none() {
                    Some("down")
                } else if w.blocked(from, to) {
                    Some("blocked")
                } else {
                    None
                };
                let now = w.slots[to as usize].clock;
                self.emit(tracer, now, || match reason {
                    Some(reason) => Ev::Drop {
                        id: f.id,
                        from,
                        to,
                        kind: f.msg.kind(),
                        reason,
                    },
                    None => Ev::Deliver {
                        id: f.id,
                        from,
                        to,
                        kind: f.msg.kind(),
                    },
                });
                if reason.is_none() {
                    self.input(
                        w,
                        to,
                        Input::Message {
                            from: NodeId(from),
                            msg: f.msg,
                        },
                        tracer,
                    );
                }
            }
            Action::Fire { node, timer } => {
                let slot = &mut w.slots[node as usize];
                let Some(k) = slot.timers.iter().position(|t| stable_hash(&t.0) == timer) else {
                    return;
                };
                let (timer, at) = slot.timers.remove(k);
                if self.due.is_some() {
                    for s in &mut w.slots {
                        s.clock = s.clock.max(at);
                    }
                } else {
                    w.slots[node as usize].clock = w.slots[node as usize].clock.max(at);
                }
                self.emit(tracer, at, || Ev::Timer {
                    node,
                    kind: timer.kind(),
                    timer: &timer,
                });
                self.input(w, node, Input::Timer(timer), tracer);
            }
            Action::Crash(i) => {
                w.budget.crashes -= 1;
                let now = w.slots[i as usize].clock;
                let fault = Fault::Crash { node: i };
                self.emit(tracer, now, || Ev::Fault { fault: &fault });
                let slot = &mut w.slots[i as usize];
                slot.node = None;
                slot.timers.clear();
                slot.pending.clear();
                let down = Status::down();
                self.emit(tracer, now, || Ev::Status {
                    node: i,
                    status: &down,
                });
            }
            Action::Recover(i) => {
                w.budget.recoveries -= 1;
                let now = w.slots[i as usize].clock;
                let fault = Fault::Recover { node: i };
                self.emit(tracer, now, || Ev::Fault { fault: &fault });
                self.boot(w, i, tracer);
            }
            Action::Split(side) => {
                w.budget.partitions -= 1;
                w.cut = Some(side);
                self.left_model(w);
                let (a, b): (Vec<u32>, Vec<u32>) =
                    (0..self.universe()).partition(|i| side >> i & 1 == 1);
                let fault = Fault::Partition { groups: vec![a, b] };
                self.emit(tracer, now_of(w), || Ev::Fault { fault: &fault });
            }
            Action::Heal => {
                w.cut = None;
                self.emit(tracer, now_of(w), || Ev::Fault {
                    fault: &Fault::Heal,
                });
            }
            Action::Lose { from, to, msg } => {
                w.budget.losses -= 1;
                self.left_model(w);
                if let Some(k) = Self::flight(w, from, to, msg) {
                    let f = w.flights.remove(k);
                    self.emit(tracer, now_of(w), || Ev::Drop {
                        id: f.id,
                        from,
                        to,
                        kind: f.msg.kind(),
                        reason: "lost",
                    });
                }
            }
            Action::Join(j) => {
                w.budget.joins -= 1;
                // As in the simulator (`Fault::Join`): Garcia-Molina's processes are a fixed set
                // every process knows; while the others learn of the joiner one by one, a node
                // that has not may drop the joiner's Halt and keep its old leader. Outside the
                // synchronous model; settling (liveness) is still judged.
                self.left_model(w);
                w.members.insert(NodeId(j));
                self.tell_others(w, j, Membership::Joined(NodeId(j)));
                let fault = Fault::Join { via: None };
                self.emit(tracer, now_of(w), || Ev::Fault { fault: &fault });
                self.boot(w, j, tracer);
            }
            Action::Leave(i) => {
                w.budget.leaves -= 1;
                // Outside the synchronous model for the same reason as a join.
                self.left_model(w);
                w.members.remove(NodeId(i));
                self.tell_others(w, i, Membership::Left(NodeId(i)));
                let now = w.slots[i as usize].clock;
                let fault = Fault::Leave { node: i };
                self.emit(tracer, now, || Ev::Fault { fault: &fault });
                let slot = &mut w.slots[i as usize];
                slot.node = None;
                slot.timers.clear();
                slot.pending.clear();
                slot.persisted = None;
                let down = Status::down();
                self.emit(tracer, now, || Ev::Status {
                    node: i,
                    status: &down,
                });
            }
            Action::Learn(i) => {
                let slot = &mut w.slots[i as usize];
                if slot.pending.is_empty() {
                    return;
                }
                let change = slot.pending.remove(0);
                match change {
                    Membership::Joined(id) => slot.view.insert(id),
                    Membership::Left(id) => slot.view.remove(id),
                };
                self.input(w, i, Input::Membership(change), tracer);
            }
            Action::Duplicate { from, to, msg } => {
                w.budget.duplicates -= 1;
                self.left_model(w);
                if let Some(k) = Self::flight(w, from, to, msg) {
                    let copy = w.flights[k].clone();
                    self.emit(tracer, now_of(w), || Ev::Duplicate {
                        id: copy.id,
                        from,
                        to,
                        kind: copy.msg.kind(),
                    });
                    w.flights.push(copy);
                }
            }
        }
    }

    /// Traces `ev` at `at` if tracing; `ev` is not even built otherwise.
    fn emit<'a>(&self, tracer: &mut Option<Tracer>, at: Time, ev: impl FnOnce() -> EvOf<'a, P>) {
        if let Some(t) = tracer.as_mut() {
            emit_to(t, at, ev());
        }
    }

    fn left_model(&self, w: &mut World<P>) {
        if self.properties.model == Model::Synchronous {
            w.inside = false;
        }
    }

    /// Queues `change` (about node `about`) at every other live member.
    fn tell_others(&self, w: &mut World<P>, about: u32, change: Membership) {
        for (k, slot) in w.slots.iter_mut().enumerate() {
            if k as u32 != about && slot.node.is_some() {
                slot.pending.push(change);
            }
        }
    }

    /// Boots node `i` with what it persisted and the current member table.
    fn boot(&self, w: &mut World<P>, i: u32, tracer: &mut Option<Tracer>) {
        let slot = &mut w.slots[i as usize];
        slot.view = w.members.clone();
        slot.pending.clear();
        slot.node = Some(Node::new(P::new(&self.config)));
        slot.boots = slot.boots.saturating_add(1);
        let persisted = slot.persisted.clone();
        self.emit(tracer, slot.clock, || Ev::Start { node: i });
        self.input(w, i, Input::Start { persisted }, tracer);
    }

    /// Feeds one input to node `i` and carries out its commands.
    fn input(&self, w: &mut World<P>, i: u32, input: InputOf<P>, tracer: &mut Option<Tracer>) {
        let Slot {
            node,
            view,
            clock,
            boots,
            ..
        } = &mut w.slots[i as usize];
        let Some(node) = node.as_mut() else {
            return;
        };
        let now = *clock;
        let mut rng = ChaCha8Rng::seed_from_u64(
            self.seed ^ (u64::from(i) << 8 | u64::from(*boots)).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        );
        let mut cx = Context {
            id: NodeId(i),
            now,
            members: view,
            rng: &mut rng,
        };
        let mut out = Out::new();
        let changed = node.handle(&mut cx, input, &mut out);
        let known: Vec<u32> = view.all().iter().map(|id| id.0).collect();
        for command in out.drain() {
            match command {
                Command::Send { to, msg } => self.send(w, i, to.0, msg, tracer),
                Command::Broadcast { msg } => {
                    for &to in known.iter().filter(|&&to| to != i) {
                        self.send(w, i, to, msg.clone(), tracer);
                    }
                }
                Command::SetTimer { timer, after } => {
                    let timers = &mut w.slots[i as usize].timers;
                    let at = now.saturating_add(after);
                    match timers.binary_search_by(|t| t.0.cmp(&timer)) {
                        Ok(k) => timers[k].1 = at,
                        Err(k) => timers.insert(k, (timer, at)),
                    }
                }
                Command::CancelTimer(timer) => {
                    let timers = &mut w.slots[i as usize].timers;
                    if let Ok(k) = timers.binary_search_by(|t| t.0.cmp(&timer)) {
                        timers.remove(k);
                    }
                }
                Command::Persist(bytes) => {
                    self.emit(tracer, now, || Ev::Persist {
                        node: i,
                        bytes: bytes.len(),
                    });
                    w.slots[i as usize].persisted = Some(bytes);
                }
            }
        }
        if let Some(status) = changed {
            self.emit(tracer, now, || Ev::Status {
                node: i,
                status: &status,
            });
        }
    }

    fn send(&self, w: &mut World<P>, from: u32, to: u32, msg: P::Msg, tracer: &mut Option<Tracer>) {
        if to >= self.universe() {
            return;
        }
        let now = w.slots[from as usize].clock;
        let id = tracer.as_mut().map_or(0, |t| {
            t.sent += 1;
            t.sent - 1
        });
        self.emit(tracer, now, || Ev::Send {
            id,
            from,
            to,
            kind: msg.kind(),
            msg: &msg,
        });
        if w.blocked(from, to) {
            self.emit(tracer, now, || Ev::Drop {
                id,
                from,
                to,
                kind: msg.kind(),
                reason: "blocked",
            });
            return;
        }
        w.flights.push(Flight {
            from,
            to,
            hash: stable_hash(&msg),
            msg,
            due: self.due.map_or(0, |d| now.saturating_add(d)),
            id,
        });
    }

    /// Sorts the messages in flight, and with `rebase` moves every clock to [`BASE`].
    fn canonical(&self, w: &mut World<P>, rebase: bool) {
        w.flights.sort_by_key(|f| (f.from, f.to, f.hash, f.due));
        if !rebase {
            return;
        }
        let global = self.due.is_some().then(|| now_of(w));
        for slot in &mut w.slots {
            let from = global.unwrap_or(slot.clock);
            let clock = Reclock { from, to: BASE };
            if let Some(node) = slot.node.as_mut() {
                node.protocol_mut().reclock(clock);
            }
            for t in &mut slot.timers {
                t.1 = clock.future(t.1);
            }
            slot.clock = BASE;
        }
        if let Some(from) = global {
            let clock = Reclock { from, to: BASE };
            for f in &mut w.flights {
                f.due = clock.future(f.due);
            }
        }
    }

    /// The safety property `w` breaks, if any: the simulator's checker over every live status.
    fn safety(&self, w: &World<P>) -> Option<(Invariant, Vec<NodeId>, String)> {
        let mut safety = Safety::new(self.properties);
        let inside = self.properties.model == Model::Asynchronous || w.inside;
        let down = Status::down();
        for (i, node) in w.live() {
            if let Some((invariant, other, detail)) =
                safety.change(NodeId(i), &down, node.status(), inside)
            {
                let nodes = std::iter::once(NodeId(i)).chain(other).collect();
                return Some((invariant, nodes, detail));
            }
        }
        None
    }

    /// Whether `w` is settled, and whether it keeps validity: a settled state is led by the
    /// highest live node where the protocol declares [`Properties::highest_wins`].
    fn verdict(&self, w: &World<P>) -> (bool, bool) {
        let settled = self.settled(w);
        let valid = !settled || !self.properties.highest_wins || {
            let (leader, highest) = Self::leader_and_highest(w);
            leader == highest
        };
        (settled, valid)
    }

    /// Whether every live node is `Normal` behind one live leader in one group (vacuously
    /// without a live majority for a quorum protocol): what liveness must make inevitable.
    fn settled(&self, w: &World<P>) -> bool {
        let live: Vec<(u32, &Status)> = w.live().map(|(i, n)| (i, n.status())).collect();
        if self.properties.quorum && live.len() * 2 <= w.members.len() {
            return true;
        }
        let Some(&(_, first)) = live.first() else {
            return true;
        };
        let leader = first.coordinator;
        let leads =
            leader.is_some_and(|l| live.iter().any(|&(i, s)| NodeId(i) == l && s.is_leader(l)));
        leads
            && live.iter().all(|(_, s)| {
                s.state == State::Normal && s.coordinator == leader && s.group == first.group
            })
    }

    /// The leader of a settled state, and the highest live node.
    fn leader_and_highest(w: &World<P>) -> (Option<NodeId>, Option<NodeId>) {
        let leader = w.live().next().and_then(|(_, n)| n.status().coordinator);
        (leader, w.live().last().map(|(i, _)| NodeId(i)))
    }

    /// Decides liveness and validity on the complete state graph.
    fn liveness(&self, graph: &Graph) -> Option<Counterexample> {
        // A state with no fault-free step that is not settled.
        let within = |s: u32| !graph.past[s as usize];
        if let Some(s) = (0..graph.len() as u32)
            .filter(|&s| within(s) && !graph.settled[s as usize] && graph.out(s).is_empty())
            .min_by_key(|&s| graph.depth[s as usize])
        {
            return Some(self.stuck_at(graph, s, "stuck: no step is possible, not settled"));
        }
        if self.due.is_some() {
            if let Some(found) = self.fair_cycle(graph, within) {
                return Some(found);
            }
        } else if let Some(s) = graph.trapped(within) {
            let what = "no sequence of steps leads from here to one leader";
            return Some(self.stuck_at(graph, s, what));
        }
        // Validity where runs end up: the bottom components of the fault-free graph.
        let invalid = graph
            .components(within)
            .into_iter()
            .filter(|c| graph.bottom(c))
            .flatten()
            .filter(|&s| !graph.valid[s as usize])
            .min_by_key(|&s| graph.depth[s as usize])?;
        let path = graph.path_to(invalid);
        let w = self.replay_actions(&path);
        let (leader, highest) = Self::leader_and_highest(&w);
        let name = |n: Option<NodeId>| n.map_or("none".into(), |n| n.to_string());
        Some(self.counterexample(
            Invariant::Validity,
            leader.into_iter().chain(highest).collect(),
            format!(
                "runs end with leader {} though {} is the highest live node",
                name(leader),
                name(highest)
            ),
            &path,
            None,
        ))
    }

    /// A liveness counterexample ending in state `s`: `what` and the statuses there.
    fn stuck_at(&self, graph: &Graph, s: u32, what: &str) -> Counterexample {
        let path = graph.path_to(s);
        let w = self.replay_actions(&path);
        let detail = format!("{what} ({})", self.describe(&w));
        self.counterexample(Invariant::Liveness, Vec::new(), detail, &path, None)
    }

    /// Synchronous model: a weakly fair cycle among unsettled states within the bound.
    fn fair_cycle(&self, graph: &Graph, within: impl Fn(u32) -> bool) -> Option<Counterexample> {
        let unsettled = |s: u32| within(s) && !graph.settled[s as usize];
        let mut best: Option<(u32, Vec<u32>)> = None;
        for component in graph.components(unsettled) {
            if !graph.cyclic(&component) || !graph.fair(&component) {
                continue;
            }
            let entry = *component
                .iter()
                .min_by_key(|&&s| graph.depth[s as usize])
                .expect("components are not empty");
            if best
                .as_ref()
                .is_none_or(|(e, _)| graph.depth[entry as usize] < graph.depth[*e as usize])
            {
                best = Some((entry, component));
            }
        }
        let (entry, component) = best?;
        let mut path = graph.path_to(entry);
        let cycle_from = path.len();
        path.extend(graph.cycle(entry, &component));
        let w = self.replay_actions(&path[..cycle_from]);
        Some(self.counterexample(
            Invariant::Liveness,
            Vec::new(),
            format!(
                "a fair cycle of {} unsettled states never reaches one leader ({})",
                component.len(),
                self.describe(&w)
            ),
            &path,
            Some(cycle_from),
        ))
    }

    /// The world at the end of `path` from a fresh boot (re-based, as the search saw it).
    fn replay_actions(&self, path: &[Action]) -> World<P> {
        let mut w = World::boot(self.nodes, self.budget);
        for &a in path {
            self.apply(&mut w, a, &mut None);
            self.canonical(&mut w, true);
        }
        w
    }

    fn describe(&self, w: &World<P>) -> String {
        let shown: Vec<String> = w
            .live()
            .map(|(i, n)| describe(NodeId(i), n.status()))
            .collect();
        if shown.is_empty() {
            "no node is live".into()
        } else {
            shown.join("; ")
        }
    }

    /// The counterexample of `path`, with its steps in serialized form.
    fn counterexample(
        &self,
        invariant: Invariant,
        nodes: Vec<NodeId>,
        detail: String,
        path: &[Action],
        cycle_from: Option<usize>,
    ) -> Counterexample {
        let mut w = World::boot(self.nodes, self.budget);
        let mut steps = Vec::with_capacity(path.len());
        for &a in path {
            steps.push(self.step_of(&w, a));
            self.apply(&mut w, a, &mut None);
            self.canonical(&mut w, true);
        }
        Counterexample {
            violation: Violation {
                seed: self.seed,
                time: 0,
                invariant,
                nodes,
                detail,
            },
            explored: Explored {
                budget: self.budget,
                max_in_flight: self.max_in_flight,
                invariant,
                path: steps,
                cycle_from,
            },
        }
    }

    fn step_of(&self, w: &World<P>, a: Action) -> Step {
        let msg = |from: u32, to: u32, hash: u64| {
            Self::flight(w, from, to, hash)
                .map(|k| serde_json::to_value(&w.flights[k].msg).expect("messages serialize"))
                .unwrap_or_default()
        };
        match a {
            Action::Start(node) => Step::Start { node },
            Action::Deliver { from, to, msg: h } => Step::Deliver {
                from,
                to,
                msg: msg(from, to, h),
            },
            Action::Fire { node, timer } => Step::Fire {
                node,
                timer: w.slots[node as usize]
                    .timers
                    .iter()
                    .find(|t| stable_hash(&t.0) == timer)
                    .map(|t| serde_json::to_value(&t.0).expect("timers serialize"))
                    .unwrap_or_default(),
            },
            Action::Crash(node) => Step::Crash { node },
            Action::Recover(node) => Step::Recover { node },
            Action::Split(side) => Step::Split {
                side: (0..self.universe())
                    .filter(|i| side >> i & 1 == 1)
                    .collect(),
            },
            Action::Heal => Step::Heal,
            Action::Lose { from, to, msg: h } => Step::Lose {
                from,
                to,
                msg: msg(from, to, h),
            },
            Action::Duplicate { from, to, msg: h } => Step::Duplicate {
                from,
                to,
                msg: msg(from, to, h),
            },
            Action::Join(node) => Step::Join { node },
            Action::Leave(node) => Step::Leave { node },
            Action::Learn(node) => Step::Learn { node },
        }
    }

    /// The action `step` names in `w`, or why it names none.
    fn action_of(&self, w: &World<P>, step: &Step) -> Result<Action, String> {
        let flight = |from: u32, to: u32, msg: &serde_json::Value| {
            w.flights
                .iter()
                .find(|f| {
                    (f.from, f.to) == (from, to)
                        && serde_json::to_value(&f.msg).ok().as_ref() == Some(msg)
                })
                .map(|f| f.hash)
                .ok_or_else(|| format!("no message {msg} from {from} to {to} is in flight"))
        };
        let node = |n: u32| {
            if n < self.universe() {
                Ok(n)
            } else {
                Err(format!(
                    "node {n} is not one of the {} nodes",
                    self.universe()
                ))
            }
        };
        Ok(match step {
            Step::Start { node: n } => Action::Start(node(*n)?),
            Step::Deliver { from, to, msg } => Action::Deliver {
                from: *from,
                to: *to,
                msg: flight(*from, *to, msg)?,
            },
            Step::Fire { node: n, timer } => {
                let slot = &w.slots[node(*n)? as usize];
                let t = slot
                    .timers
                    .iter()
                    .find(|t| serde_json::to_value(&t.0).ok().as_ref() == Some(timer))
                    .ok_or_else(|| format!("node {n} has no timer {timer} armed"))?;
                Action::Fire {
                    node: *n,
                    timer: stable_hash(&t.0),
                }
            }
            Step::Crash { node: n } => Action::Crash(node(*n)?),
            Step::Recover { node: n } => Action::Recover(node(*n)?),
            Step::Split { side } => {
                let mut mask = 0u32;
                for &n in side {
                    mask |= 1 << node(n)?;
                }
                Action::Split(mask)
            }
            Step::Heal => Action::Heal,
            Step::Lose { from, to, msg } => Action::Lose {
                from: *from,
                to: *to,
                msg: flight(*from, *to, msg)?,
            },
            Step::Duplicate { from, to, msg } => Action::Duplicate {
                from: *from,
                to: *to,
                msg: flight(*from, *to, msg)?,
            },
            Step::Join { node: n } => Action::Join(node(*n)?),
            Step::Leave { node: n } => Action::Leave(node(*n)?),
            Step::Learn { node: n } => Action::Learn(node(*n)?),
        })
    }

    /// Re-runs a counterexample's path (in `spec`'s header) from a fresh boot *without* the time
    /// abstraction, tracing the header and every event into `sink`, checks each step was enabled and that the path ends in
    /// its violation (for a cycle: returns to the state its cycle starts from), and returns the
    /// trace hash.
    pub fn replay(&self, spec: &Spec, mut sink: TraceSink) -> Result<u64, String> {
        let explored = spec
            .explore
            .as_ref()
            .ok_or("the trace's header holds no explored path")?;
        sink.line(spec);
        let mut tracer = Some(Tracer {
            sink,
            sent: 0,
            t: 0,
        });
        let mut w = World::boot(self.nodes, explored.budget);
        let mut cycle_start = None;
        let mut broken = None;
        for (k, step) in explored.path.iter().enumerate() {
            if explored.cycle_from == Some(k) {
                cycle_start = Some(self.rebased_fingerprint(&w));
            }
            let action = self.action_of(&w, step)?;
            if !self.actions(&w).contains(&action) {
                return Err(format!("step {} ({step:?}) is not enabled there", k + 1));
            }
            self.apply(&mut w, action, &mut tracer);
            self.canonical(&mut w, false);
            broken = self.safety(&w);
            if let Some((invariant, ..)) = broken.as_ref().filter(|_| k + 1 < explored.path.len()) {
                return Err(format!(
                    "the path breaks {invariant} already at step {}",
                    k + 1
                ));
            }
        }
        let at = now_of(&w);
        let verdict = match (explored.cycle_from, broken) {
            (None, Some((invariant, nodes, detail))) if invariant == explored.invariant => {
                Ok(Violation {
                    seed: self.seed,
                    time: at.saturating_sub(BASE),
                    invariant,
                    nodes,
                    detail,
                })
            }
            (Some(_), None) if cycle_start == Some(self.rebased_fingerprint(&w)) => Ok(Violation {
                seed: self.seed,
                time: at.saturating_sub(BASE),
                invariant: explored.invariant,
                nodes: Vec::new(),
                detail: format!(
                    "the path returns to the state of step {}: a cycle without one leader",
                    explored.cycle_from.expect("matched") + 1
                ),
            }),
            (None, None)
                if explored.invariant == Invariant::Validity
                    || explored.invariant == Invariant::Liveness =>
            {
                Ok(Violation {
                    seed: self.seed,
                    time: at.saturating_sub(BASE),
                    invariant: explored.invariant,
                    nodes: Vec::new(),
                    detail: format!("the path ends where {} fails", explored.invariant),
                })
            }
            _ => Err(format!(
                "the path does not end in its {} violation with this build \
                 (is the protocol's Explorable::reclock right?)",
                explored.invariant
            )),
        };
        let mut tracer = tracer.expect("set above");
        let v = verdict?;
        emit_to(&mut tracer, at, EvOf::<P>::Violation { violation: &v });
        emit_to(&mut tracer, at, EvOf::<P>::End);
        tracer
            .sink
            .finish()
            .map_err(|e| format!("writing the trace failed: {e}"))
    }

    fn rebased_fingerprint(&self, w: &World<P>) -> u128 {
        let mut copy = w.clone();
        self.canonical(&mut copy, true);
        fingerprint(&copy)
    }
}

/// The explorer's clock for marks across nodes: the latest node clock.
fn now_of<P: Explorable>(w: &World<P>) -> Time {
    w.slots.iter().map(|s| s.clock).max().unwrap_or(BASE)
}

/// Writes one trace line at the explorer time `at` (shown from 0; never going backwards, since
/// the asynchronous model's node clocks are unrelated).
fn emit_to<M: Serialize, T: Serialize>(tracer: &mut Tracer, at: Time, ev: Ev<'_, M, T>) {
    tracer.t = tracer.t.max(at.saturating_sub(BASE));
    tracer.sink.line(&Line { t: tracer.t, ev });
}

/// The state graph: for each state its parent step (for paths), depth, whether it is settled,
/// and its fault-free steps (for liveness), in compressed rows.
#[derive(Default)]
struct Graph {
    parent: Vec<Option<(u32, Action)>>,
    depth: Vec<u32>,
    settled: Vec<bool>,
    /// Not settled, or settled under the highest live node where validity is declared.
    valid: Vec<bool>,
    /// Past the epoch bound: not expanded.
    past: Vec<bool>,
    /// Row `s` of `edges` is `edges[start[s]..start[s + 1]]`.
    start: Vec<u64>,
    edges: Vec<(u32, u32)>,
    /// Action ids of `edges`.
    actions: HashMap<Action, u32>,
    named: Vec<Action>,
}

impl Graph {
    fn len(&self) -> usize {
        self.parent.len()
    }

    fn bytes(&self) -> u64 {
        (self.len() * (std::mem::size_of::<Option<(u32, Action)>>() + 4 + 3 + 8)
            + self.edges.len() * 8) as u64
    }

    fn add(&mut self, parent: Option<(u32, Action)>, depth: u32, (settled, valid): (bool, bool)) {
        self.parent.push(parent);
        self.depth.push(depth);
        self.settled.push(settled);
        self.valid.push(valid);
        self.past.push(false);
    }

    /// Marks `s` as past the epoch bound.
    fn beyond(&mut self, s: u32) {
        self.past[s as usize] = true;
    }

    /// Starts the row of `s` (states are expanded in index order).
    fn open(&mut self, s: u32) {
        while self.start.len() <= s as usize {
            self.start.push(self.edges.len() as u64);
        }
    }

    fn close(&mut self) {
        while self.start.len() <= self.len() {
            self.start.push(self.edges.len() as u64);
        }
    }

    fn edge(&mut self, to: u32, action: Action) {
        let next = self.named.len() as u32;
        let id = *self.actions.entry(action).or_insert(next);
        if id == next {
            self.named.push(action);
        }
        self.edges.push((to, id));
    }

    fn out(&self, s: u32) -> &[(u32, u32)] {
        &self.edges[self.start[s as usize] as usize..self.start[s as usize + 1] as usize]
    }

    fn path_to(&self, mut s: u32) -> Vec<Action> {
        let mut path = Vec::new();
        while let Some((p, a)) = self.parent[s as usize] {
            path.push(a);
            s = p;
        }
        path.reverse();
        path
    }

    /// The strongly connected components of the subgraph of states `keep` accepts (iterative
    /// Tarjan).
    fn components(&self, keep: impl Fn(u32) -> bool) -> Vec<Vec<u32>> {
        const NONE: u32 = u32::MAX;
        let n = self.len();
        let mut index = vec![NONE; n];
        let mut low = vec![0u32; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut found = Vec::new();
        let mut next = 0u32;
        for root in 0..n as u32 {
            if index[root as usize] != NONE || !keep(root) {
                continue;
            }
            let mut calls: Vec<(u32, usize)> = vec![(root, 0)];
            index[root as usize] = next;
            low[root as usize] = next;
            next += 1;
            stack.push(root);
            on_stack[root as usize] = true;
            while let Some(&mut (v, ref mut k)) = calls.last_mut() {
                let out = self.out(v);
                if *k < out.len() {
                    let w = out[*k].0;
                    *k += 1;
                    if !keep(w) {
                        continue;
                    }
                    if index[w as usize] == NONE {
                        index[w as usize] = next;
                        low[w as usize] = next;
                        next += 1;
                        stack.push(w);
                        on_stack[w as usize] = true;
                        calls.push((w, 0));
                    } else if on_stack[w as usize] {
                        low[v as usize] = low[v as usize].min(index[w as usize]);
                    }
                    continue;
                }
                calls.pop();
                if let Some(&(u, _)) = calls.last() {
                    low[u as usize] = low[u as usize].min(low[v as usize]);
                }
                if low[v as usize] == index[v as usize] {
                    let mut component = Vec::new();
                    loop {
                        let w = stack.pop().expect("v is on the stack");
                        on_stack[w as usize] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    component.sort_unstable();
                    found.push(component);
                }
            }
        }
        found
    }

    /// The shallowest state within the bound from which no path leads to a settled state or
    /// past the bound (where it might), if any: backward reachability over the fault-free steps.
    fn trapped(&self, within: impl Fn(u32) -> bool) -> Option<u32> {
        let n = self.len();
        let mut into: Vec<Vec<u32>> = vec![Vec::new(); n];
        for s in 0..n as u32 {
            for &(t, _) in self.out(s) {
                into[t as usize].push(s);
            }
        }
        let mut hope: Vec<bool> = (0..n as u32)
            .map(|s| self.settled[s as usize] || !within(s))
            .collect();
        let mut queue: VecDeque<u32> = (0..n as u32).filter(|&s| hope[s as usize]).collect();
        while let Some(t) = queue.pop_front() {
            for &s in &into[t as usize] {
                if !hope[s as usize] {
                    hope[s as usize] = true;
                    queue.push_back(s);
                }
            }
        }
        (0..n as u32)
            .filter(|&s| !hope[s as usize])
            .min_by_key(|&s| self.depth[s as usize])
    }

    /// Whether a sorted component holds a cycle (more than one state, or a self-loop).
    fn cyclic(&self, component: &[u32]) -> bool {
        component.len() > 1 || self.out(component[0]).iter().any(|e| e.0 == component[0])
    }

    /// Whether no step leaves a sorted component.
    fn bottom(&self, component: &[u32]) -> bool {
        component.iter().all(|&s| {
            self.out(s)
                .iter()
                .all(|e| component.binary_search(&e.0).is_ok())
        })
    }

    /// Weak fairness: every step enabled in every state of the component is taken by some step
    /// inside it. Then the cycle through all of its states and steps is fair.
    fn fair(&self, component: &[u32]) -> bool {
        let mut always: Option<Vec<u32>> = None;
        let mut inside = Vec::new();
        for &s in component {
            let mut enabled: Vec<u32> = self.out(s).iter().map(|e| e.1).collect();
            enabled.sort_unstable();
            enabled.dedup();
            always = Some(match always {
                None => enabled,
                Some(a) => a
                    .into_iter()
                    .filter(|x| enabled.binary_search(x).is_ok())
                    .collect(),
            });
            inside.extend(
                self.out(s)
                    .iter()
                    .filter(|e| component.binary_search(&e.0).is_ok())
                    .map(|e| e.1),
            );
        }
        inside.sort_unstable();
        always
            .unwrap_or_default()
            .iter()
            .all(|a| inside.binary_search(a).is_ok())
    }

    /// The steps of a shortest cycle from `entry` back to itself inside a sorted component.
    fn cycle(&self, entry: u32, component: &[u32]) -> Vec<Action> {
        let mut from: HashMap<u32, (u32, u32)> = HashMap::new();
        let mut queue = VecDeque::from([entry]);
        while let Some(s) = queue.pop_front() {
            for &(t, a) in self.out(s) {
                if component.binary_search(&t).is_err() {
                    continue;
                }
                if t == entry {
                    let mut steps = vec![self.named[a as usize]];
                    let mut at = s;
                    while at != entry {
                        let (p, pa) = from[&at];
                        steps.push(self.named[pa as usize]);
                        at = p;
                    }
                    steps.reverse();
                    return steps;
                }
                if let std::collections::hash_map::Entry::Vacant(v) = from.entry(t) {
                    v.insert((s, a));
                    queue.push_back(t);
                }
            }
        }
        Vec::new()
    }
}
