//! The discrete-event engine.
//!
//! A run is a pure function of its [`Spec`] (seed, algorithm, timing, plan):
//! - events wait in one queue ordered by (virtual time, sequence number), so ties break in the
//!   order the events were created ([`crate::queue`]);
//! - every random draw comes from ChaCha8 streams of the one seed (network and protocol draws
//!   on separate streams; plan generation on a third);
//! - nodes live in a vector indexed by id and every scan goes in id order.
//!
//! Phases of a run. From boot until the last fault of the plan the network is as the plan says.
//! At that time (`calm`) the simulator heals every partition and blocked link and switches to a
//! calm network: no loss, no duplication, delays within the plan's first latency range clipped
//! to the algorithm's `max_delay`. Crashed nodes stay down, drifting clocks keep drifting. The
//! liveness check runs at `calm + settle` where
//! `settle = max_latency + liveness_bound(n) * (1 + max_stretch)`: the slowest message still in
//! flight from the faulty phase arrives within `max_latency` (the largest delay of the plan), and
//! the algorithm's bound is a sum of timeouts, which a clock stretched by `1 + rate` lengthens by
//! that factor. `n` counts every node the plan ever creates. The run then continues for a tail of
//! three heartbeats and two timeouts, during which the settled state must not change.
//!
//! Membership runs through the membership layer of `election-core`
//! ([`election_core::membership`]) whenever the plan joins or removes nodes. Nodes are numbered
//! as the plan numbers them (the first `nodes` at boot, then one more per join), and that number
//! is a node's simulated address; its protocol id is what its [`View`] says: its config line for
//! the first `nodes`, the admitter's slot-partitioned assignment for a joined node. Each node
//! holds its own View; `join`, `welcome`, `refused`, `announce`, `hello` and `left` control
//! messages travel the simulated network like protocol messages (same delays, loss, partitions,
//! blocks; traced as sends and deliveries). A `join` fault boots a node with a
//! [`Joining`] toward the member the plan names (or a live member drawn from the seed); it
//! retries every `timeout`, at most [`JOIN_TRIES`] times. Once welcomed it announces its table
//! to every member ([`View::announce`]), and its protocol starts a quiet period (four times the
//! algorithm's `max_delay`) later, by when — inside the synchronous model — every live member
//! has it and it has every joiner admitted at the same time elsewhere, so nobody drops its
//! first messages and no two joiners take over unaware of each other. A booting config node says `hello` (answered with the members' tables) and,
//! after a crash, waits the same quiet period. A `leave` sends `left` to every member, then
//! stops the node for good. Each View re-announces its table every [`ANNOUNCE_HEARTBEATS`]
//! heartbeats ([`View::on_tick`]). The protocol gets a `Membership` input when its own View
//! changes, not before. Assigned ids are persisted (and survive a crash) like `Persist` bytes.
//! A protocol message between two nodes whose tables disagree (the receiver does not hold the
//! sender yet) is dropped (`not-member`): a lost message, so the run leaves the synchronous model
//! there, unless the sender has left for good. Statuses and violations in the trace name nodes by
//! their number, so the pictures keep one lane per node.
//!
//! Plans without joins and leaves keep one shared table of the first `nodes` ids: there every
//! View would equal the config for the whole run, and the shared table keeps 10,000-node runs
//! at O(n) memory and their traces free of control messages.

use std::collections::{BTreeMap, BTreeSet};

use election_core::membership::{Control, Effect, Joining, View, ViewConfig};
use election_core::{
    Command, ConfigOf, Context, Input, InputOf, Kind, Members, Membership, Model, Node, NodeId,
    OutOf, Properties, Protocol, State, Status, Time,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use election_core::invariant::{Settlement, settlement};

use crate::check::{Invariant, Safety, Violation, describe};
use crate::plan::{Fault, Network, PlanError};
use crate::queue::Queue;
use crate::stats::RunStats;
use crate::trace::{Ev, Line, Spec, TraceSink};

const NETWORK_STREAM: u64 = 2;
const PROTOCOL_STREAM: u64 = 3;
/// Membership draws (a join's contact, the re-announcements' receivers).
const MEMBERSHIP_STREAM: u64 = 5;
/// Join requests a joining node sends before it gives up, one per `timeout` (as a real node's).
pub const JOIN_TRIES: u32 = 10;
/// A node with a fresh View starts its protocol this many `max_delay`s later: inside the
/// synchronous model, by then every live member has its admitter's announcement, and two
/// joiners admitted at once by different admitters have each other (the joiner's announcement,
/// a member's answer, the second joiner's table: see [`View::announce`]).
const QUIET_DELAYS: Time = 4;
/// A View re-announces its table every this many heartbeats.
pub const ANNOUNCE_HEARTBEATS: Time = 2;
/// Announce periods the liveness check waits for the re-announcements to repair a table that
/// missed an announcement in the faulty phase: each period every other member picks this node
/// with probability about 1 − 1/e, so 20 periods leave about 2·10⁻⁹.
const GOSSIP_ROUNDS: Time = 20;
/// Partition group of a node listed in no group.
const ISOLATED: u32 = u32::MAX;

/// A run that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The algorithm rejected the timing.
    #[error(transparent)]
    Config(#[from] election_core::ConfigError),
    /// The plan is invalid.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Nothing to simulate.
    #[error("a cluster needs at least one node")]
    NoNodes,
    /// The plan changes the membership of a protocol whose guarantees do not hold across
    /// membership changes.
    #[error(
        "{algorithm} does not keep its guarantees across joins and leaves (its properties say \
         so), but the plan has a {fault} at faults[{index}]"
    )]
    Membership {
        /// The protocol.
        algorithm: &'static str,
        /// The join or leave.
        fault: &'static str,
        /// Its index in the plan.
        index: usize,
    },
}

/// What travels between simulated nodes: a protocol message or a membership control message
/// (addressed by node number). Traced as the message itself.
#[derive(Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum Wire<M> {
    Protocol(M),
    /// Boxed: a control message is rare and up to 32 bytes, a protocol message usually a few,
    /// and every queued delivery is as large as the largest.
    Control(Box<Control<u32>>),
}

impl<M: Kind> Wire<M> {
    fn kind(&self) -> &'static str {
        match self {
            Wire::Protocol(m) => m.kind(),
            Wire::Control(c) => match c.as_ref() {
                Control::Join { .. } => "join",
                Control::Welcome { .. } => "welcome",
                Control::Refused { .. } => "refused",
                Control::Announce { .. } => "announce",
                Control::Hello { .. } => "hello",
                Control::Digest { .. } => "digest",
                Control::Left => "left",
            },
        }
    }
}

enum Action<M> {
    Deliver {
        /// The message's number in send order (the trace pairs sends and deliveries by it).
        id: u64,
        from: u32,
        to: u32,
        msg: Wire<M>,
    },
    /// Start the protocol of a node whose View is ready (after the quiet period).
    Start {
        node: u32,
        life: u32,
    },
    /// A View's periodic re-announcement.
    Announce {
        node: u32,
        life: u32,
    },
    /// A joining node's next request, unless request `request` was answered meanwhile.
    JoinRetry {
        node: u32,
        life: u32,
        request: u32,
    },
    Timer {
        node: u32,
        idx: u32,
        generation: u32,
    },
    Fault(u32),
    Calm,
    Check,
    End,
}

/// A timer of one node. Setting it bumps the generation; a queued firing whose generation no
/// longer matches is stale and skipped, which makes cancel and replace O(timers per node).
struct TimerSlot<T> {
    timer: T,
    /// 0 when not armed.
    generation: u32,
}

struct Slot<P: Protocol> {
    node: Option<Node<P>>,
    timers: Vec<TimerSlot<P::Timer>>,
    /// Never reset (not even by a crash), so firings from an earlier life stay stale.
    last_generation: u32,
    drift: f64,
    persisted: Option<Box<[u8]>>,
    /// The node's member table (runs with the membership layer; `None` while down or joining).
    /// Boxed, as are `joining`'s: a slot without the layer holds two pointers, not 250 bytes
    /// (the 100,000-node scale runs).
    view: Option<Box<View<u32>>>,
    joining: Option<Box<Joining<u32>>>,
    /// Bumped at every boot and stop: queued membership actions of an earlier life are stale.
    life: u32,
    /// Join requests sent so far (a retry of an answered one is stale).
    requests: u32,
    /// The last id this node assigned as an admitter: persisted, kept across crashes.
    assigned: Option<NodeId>,
    /// The id a welcome gave this joined node: persisted, claimed when it joins again.
    claim: Option<NodeId>,
    /// Its membership table after its last change: persisted, kept across crashes.
    table: Vec<(NodeId, u32)>,
    /// The member a joined node asks (again, after a crash).
    contact: u32,
    /// Left for good.
    left: bool,
}

impl<P: Protocol> Slot<P> {
    fn new() -> Self {
        Slot {
            node: None,
            timers: Vec::new(),
            last_generation: 0,
            drift: 0.0,
            persisted: None,
            view: None,
            joining: None,
            life: 0,
            requests: 0,
            assigned: None,
            claim: None,
            table: Vec::new(),
            contact: 0,
            left: false,
        }
    }

    /// `after` on this node's clock.
    fn stretch(&self, after: Time) -> Time {
        if self.drift == 0.0 {
            after
        } else {
            (after as f64 * (1.0 + self.drift)).round() as Time
        }
    }
}

/// The membership layer's settings, for runs that change the membership.
struct Layer {
    /// The config lines: node `i` at line `i`.
    lines: Vec<u32>,
    config: ViewConfig,
    announce_every: Time,
    /// How long a node with a fresh View waits before its protocol starts.
    quiet: Time,
    rng: ChaCha8Rng,
}

enum Phase {
    Running,
    /// The check found fewer live members than a majority, for a protocol that needs one: no
    /// leader is expected, so neither liveness nor stability is checked.
    NoQuorum,
    Settled {
        leader: Option<NodeId>,
        group: Option<election_core::GroupId>,
    },
}

/// The result of a run.
#[derive(Debug)]
pub struct Outcome {
    /// Counters.
    pub stats: RunStats,
    /// The first invariant broken, if any (the run stops there).
    pub violation: Option<Violation>,
    /// Hash of the trace, if one was written (or the write error).
    pub trace: Option<std::io::Result<u64>>,
}

/// A simulated cluster running protocol `P`.
pub struct Sim<P: Protocol> {
    spec: Spec,
    config: ConfigOf<P>,
    properties: Properties,
    /// The largest delay the algorithm's timeouts tolerate (`P::max_delay`).
    max_delay: Time,
    /// Who is a member, as the checkers see it: config nodes from boot, a joined node from its
    /// welcome, until it leaves. Without the layer also the protocols' shared table.
    members: Members,
    /// The protocol id each node holds now (`None` before its welcome) and the node that holds
    /// (or held) each id: ids are never reused, so this stays a function.
    ids: Vec<Option<NodeId>>,
    owners: BTreeMap<NodeId, u32>,
    layer: Option<Layer>,
    /// See [`Sim::use_highest_plus_one_ids`].
    highest_plus_one: bool,
    slots: Vec<Slot<P>>,
    queue: Queue<Action<P::Msg>>,
    now: Time,
    network: Network,
    calm_network: Network,
    /// Partition group per node; empty when there is no partition.
    partition: Vec<u32>,
    blocked: BTreeSet<(u32, u32)>,
    /// Links with their own network, by (from, to).
    links: BTreeMap<(u32, u32), Network>,
    net_rng: ChaCha8Rng,
    proto_rng: ChaCha8Rng,
    out: OutOf<P>,
    safety: Safety,
    phase: Phase,
    stats: RunStats,
    /// Per-type send counters; a short vector beats a map on the hot path.
    sent: Vec<(&'static str, u64)>,
    queue_sum: u128,
    last_change: Time,
    /// Messages sent so far, at the last status change, and at the calm.
    sent_total: u64,
    sent_at_change: u64,
    /// Messages sent strictly before the calm (the boot's, for a plan without faults, are not:
    /// they are sent at time 0, the calm).
    sent_before_calm: u64,
    end_at: Time,
    trace: Option<TraceSink>,
    violation: Option<Violation>,
}

impl<P: Protocol> Sim<P> {
    /// A cluster of `spec.nodes` nodes, booted at time 0 (their first messages and timers are
    /// queued). If `trace` is given, the header line and the boots are written to it at once.
    pub fn new(spec: Spec, mut trace: Option<TraceSink>) -> Result<Self, SimError> {
        if spec.nodes == 0 {
            return Err(SimError::NoNodes);
        }
        spec.plan.validate(spec.nodes)?;
        let config = spec.config::<P>()?;
        if !P::properties(&config).membership {
            let changes = spec
                .plan
                .faults
                .iter()
                .enumerate()
                .find(|(_, f)| matches!(f.fault, Fault::Join { .. } | Fault::Leave { .. }));
            if let Some((index, f)) = changes {
                return Err(SimError::Membership {
                    algorithm: P::NAME,
                    fault: f.fault.name(),
                    index,
                });
            }
        }

        let plan = &spec.plan;
        let joins = plan
            .faults
            .iter()
            .filter(|f| matches!(f.fault, Fault::Join { .. }))
            .count();
        let n = spec.nodes as usize + joins;
        let calm_at = plan.last_fault();
        let max_delay = P::max_delay(&config);
        let stretch = 1.0 + plan.max_stretch();
        let layer = plan.first_membership_change().map(|_| {
            let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
            rng.set_stream(MEMBERSHIP_STREAM);
            Layer {
                lines: (0..spec.nodes).collect(),
                config: ViewConfig {
                    max_members: n,
                    // The simulated network carries no forgeries.
                    authenticated: true,
                },
                announce_every: ANNOUNCE_HEARTBEATS * spec.timing.heartbeat,
                quiet: QUIET_DELAYS * max_delay,
                rng,
            }
        });
        // After the calm the layer needs: a pending join's next request (a timeout), a request,
        // a redirect, the welcome and the announcement (four delays), the quiet period, and the
        // re-announcements that repair tables which missed an announcement before the calm.
        let membership = layer.as_ref().map_or(0, |l| {
            spec.timing.timeout
                + 4 * plan.max_latency()
                + l.quiet
                + GOSSIP_ROUNDS * l.announce_every
        });
        let bound = (P::liveness_bound(&config, n) + membership) as f64 * stretch;
        let check_at = calm_at + plan.max_latency() + bound.ceil() as Time;
        let end_at = check_at + 3 * spec.timing.heartbeat + 2 * spec.timing.timeout;
        let calm_network = Network {
            min_latency_us: plan.network.min_latency_us.min(max_delay),
            max_latency_us: plan.network.max_latency_us.min(max_delay),
            loss: 0.0,
            duplicate: 0.0,
        };

        let mut net_rng = ChaCha8Rng::seed_from_u64(spec.seed);
        net_rng.set_stream(NETWORK_STREAM);
        let mut proto_rng = ChaCha8Rng::seed_from_u64(spec.seed);
        proto_rng.set_stream(PROTOCOL_STREAM);
        if let Some(t) = trace.as_mut() {
            t.line(&spec);
        }
        let mut sim = Sim {
            properties: P::properties(&config),
            max_delay,
            members: Members::first(spec.nodes),
            ids: (0..spec.nodes).map(|i| Some(NodeId(i))).collect(),
            owners: (0..spec.nodes).map(|i| (NodeId(i), i)).collect(),
            layer,
            highest_plus_one: false,
            slots: (0..spec.nodes).map(|_| Slot::new()).collect(),
            queue: Queue::new(),
            now: 0,
            network: plan.network,
            calm_network,
            partition: Vec::new(),
            blocked: BTreeSet::new(),
            links: BTreeMap::new(),
            net_rng,
            proto_rng,
            out: OutOf::<P>::new(),
            safety: Safety::new(P::properties(&config)),
            phase: Phase::Running,
            stats: RunStats {
                calm_at,
                left_model_at: (!synchronous(&plan.network, max_delay)).then_some(0),
                ..RunStats::default()
            },
            sent: Vec::new(),
            queue_sum: 0,
            last_change: 0,
            sent_total: 0,
            sent_at_change: 0,
            sent_before_calm: 0,
            end_at,
            trace,
            violation: None,
            config,
            spec,
        };
        for i in 0..sim.spec.plan.faults.len() {
            let at = sim.spec.plan.faults[i].at_us;
            sim.push(at, Action::Fault(i as u32));
        }
        sim.push(calm_at, Action::Calm);
        sim.push(check_at, Action::Check);
        sim.push(end_at, Action::End);
        for id in 0..sim.spec.nodes {
            sim.boot(id, true);
        }
        Ok(sim)
    }

    /// Runs to the end and returns the outcome.
    pub fn run(mut self) -> Outcome {
        let _ = self.run_until(self.end_at);
        self.finish()
    }

    /// Processes every event up to time `until`; stops early at the first violation.
    pub fn run_until(&mut self, until: Time) -> Result<(), Violation> {
        while self.step(until) {}
        match &self.violation {
            Some(v) => Err(v.clone()),
            None => Ok(()),
        }
    }

    /// Processes the next event if it is due by `until` and no invariant is broken yet; returns
    /// whether it did.
    pub fn step(&mut self, until: Time) -> bool {
        if self.violation.is_some() {
            return false;
        }
        match self.queue.peek_time() {
            Some(time) if time <= until => {}
            _ => return false,
        }
        let (time, action) = self.queue.pop().expect("peeked");
        self.now = time;
        self.stats.events += 1;
        self.queue_sum += self.queue.len() as u128;
        self.dispatch(action);
        true
    }

    /// Ends the run: closes the trace and returns the outcome.
    pub fn finish(mut self) -> Outcome {
        if self.violation.is_none() {
            self.emit(|| Ev::End);
        }
        let mut stats = std::mem::take(&mut self.stats);
        stats.sent = self.sent.iter().copied().collect();
        stats.mean_queue = if stats.events == 0 {
            0.0
        } else {
            self.queue_sum as f64 / stats.events as f64
        };
        Outcome {
            stats,
            violation: self.violation,
            trace: self.trace.map(TraceSink::finish),
        }
    }

    /// When the run ends (virtual time).
    pub fn end_time(&self) -> Time {
        self.end_at
    }

    /// The current virtual time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// The members as the checkers see them (see the module docs).
    pub fn members(&self) -> &Members {
        &self.members
    }

    /// The protocol id node `node` holds (`None` before its welcome, or if it does not exist).
    pub fn id_of(&self, node: u32) -> Option<NodeId> {
        self.ids.get(node as usize).copied().flatten()
    }

    /// The node that holds (or held) protocol id `id`.
    pub fn node_of(&self, id: NodeId) -> Option<u32> {
        self.owners.get(&id).copied()
    }

    /// Node `node`'s member table (runs with joins or leaves; `None` while it is down or joining).
    pub fn view(&self, node: u32) -> Option<&View<u32>> {
        self.slots.get(node as usize)?.view.as_deref()
    }

    /// Nodes so far (booted and joined, live or not).
    pub fn nodes(&self) -> u32 {
        self.slots.len() as u32
    }

    /// For tests that must show they catch duplicate ids: from now on an admitter hands out
    /// the rule the layer replaced — one above the highest id it knows — instead of its own
    /// slot's next id (its own table keeps the real one, as a buggy driver's would).
    #[doc(hidden)]
    pub fn use_highest_plus_one_ids(&mut self) {
        self.highest_plus_one = true;
    }

    /// Makes joined node `node` ask member `via` when it next recovers, as a real node restarted
    /// with another `--join` does (plans name no contact for a recovery).
    pub fn rejoin_through(&mut self, node: u32, via: u32) {
        if let Some(slot) = self.slots.get_mut(node as usize) {
            slot.contact = via;
        }
    }

    /// Node `id`'s status (`Down` if it is not running or does not exist).
    pub fn status(&self, id: u32) -> Status {
        self.slots
            .get(id as usize)
            .and_then(|s| s.node.as_ref())
            .map_or(Status::down(), |n| *n.status())
    }

    /// The counters so far.
    pub fn stats(&self) -> &RunStats {
        &self.stats
    }

    /// Events waiting in the queue.
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    fn push(&mut self, time: Time, action: Action<P::Msg>) {
        self.queue.push(time, action);
    }

    /// Writes a trace line if tracing is on; `ev` is not even built otherwise.
    #[inline]
    fn emit<'a>(&mut self, ev: impl FnOnce() -> Ev<'a, Wire<P::Msg>, P::Timer>) {
        if let Some(t) = self.trace.as_mut() {
            t.line(&Line {
                t: self.now,
                ev: ev(),
            });
        }
    }

    fn dispatch(&mut self, action: Action<P::Msg>) {
        match action {
            Action::Deliver { id, from, to, msg } => self.deliver(id, from, to, msg),
            Action::Timer {
                node,
                idx,
                generation,
            } => {
                let slot = &mut self.slots[node as usize];
                let Some(t) = slot.timers.get_mut(idx as usize) else {
                    return;
                };
                if t.generation != generation {
                    return;
                }
                t.generation = 0;
                let timer = t.timer.clone();
                self.stats.timers += 1;
                self.emit(|| Ev::Timer {
                    node,
                    kind: timer.kind(),
                    timer: &timer,
                });
                self.input(node, Input::Timer(timer));
            }
            Action::Start { node, life } => {
                let slot = &self.slots[node as usize];
                if slot.life == life && slot.view.is_some() && slot.node.is_none() {
                    self.start(node);
                }
            }
            Action::Announce { node, life } => self.announce(node, life),
            Action::JoinRetry {
                node,
                life,
                request,
            } => {
                let slot = &self.slots[node as usize];
                if slot.life == life && slot.requests == request {
                    self.join_request(node);
                }
            }
            Action::Fault(i) => {
                let fault = self.spec.plan.faults[i as usize].fault.clone();
                self.emit(|| Ev::Fault { fault: &fault });
                self.apply(fault);
            }
            Action::Calm => {
                self.emit(|| Ev::Calm);
                self.partition.clear();
                self.blocked.clear();
                self.links.clear();
                self.network = self.calm_network;
            }
            Action::Check => self.check_liveness(),
            Action::End => {}
        }
    }

    fn deliver(&mut self, id: u64, from: u32, to: u32, msg: Wire<P::Msg>) {
        let kind = msg.kind();
        let live = self.slots.get(to as usize).is_some_and(|s| match msg {
            Wire::Protocol(_) => s.node.is_some(),
            Wire::Control(_) => s.view.is_some() || s.joining.is_some(),
        });
        let reason = if !live {
            self.stats.to_down += 1;
            Some("down")
        } else if self.is_blocked(from, to) {
            self.stats.blocked += 1;
            Some("blocked")
        } else {
            None
        };
        if let Some(reason) = reason {
            self.emit(|| Ev::Drop {
                id,
                from,
                to,
                kind,
                reason,
            });
            return;
        }
        let sender = match (&msg, &self.slots[to as usize].view) {
            (Wire::Protocol(_), Some(view)) if self.layer.is_some() => view.id_of(&from),
            _ => Some(NodeId(from)),
        };
        let Some(sender) = sender else {
            self.stats.not_member += 1;
            // A live node's message lost to a table that has not caught up is a lost message;
            // the last words of a node that left for good are not.
            if !self.slots[from as usize].left {
                self.left_model();
            }
            self.emit(|| Ev::Drop {
                id,
                from,
                to,
                kind,
                reason: "not-member",
            });
            return;
        };
        self.stats.delivered += 1;
        self.emit(|| Ev::Deliver { id, from, to, kind });
        match msg {
            Wire::Protocol(msg) => self.input(to, Input::Message { from: sender, msg }),
            Wire::Control(msg) => self.on_control(to, from, *msg),
        }
    }

    /// The run leaves the synchronous model now (if it has not yet).
    fn left_model(&mut self) {
        if self.stats.left_model_at.is_none() {
            self.stats.left_model_at = Some(self.now);
        }
    }

    fn is_blocked(&self, from: u32, to: u32) -> bool {
        if !self.partition.is_empty() {
            let side = |n: u32| self.partition.get(n as usize).copied().unwrap_or(ISOLATED);
            let (a, b) = (side(from), side(to));
            if a != b || a == ISOLATED {
                return true;
            }
        }
        !self.blocked.is_empty() && self.blocked.contains(&(from, to))
    }

    fn apply(&mut self, fault: Fault) {
        let inside = match &fault {
            Fault::Partition { .. } | Fault::Block { .. } => false,
            Fault::Network { network } | Fault::Link { network, .. } => {
                synchronous(network, self.max_delay)
            }
            Fault::Drift { rate, .. } => rate.abs() <= Model::SYNCHRONOUS_DRIFT,
            // Garcia-Molina's processes are a fixed set that every process knows. A join or a
            // leave is spread by the membership layer's messages and announcements, and until
            // every table agrees a node may lead the members it knows (a restarted admitter
            // that never heard of a joiner, say): membership changes are outside the model.
            Fault::Join { .. } | Fault::Leave { .. } => false,
            Fault::Crash { .. } | Fault::Recover { .. } | Fault::Heal => true,
        };
        if !inside {
            self.left_model();
        }
        match fault {
            Fault::Crash { node } => self.stop(node),
            Fault::Recover { node } => self.recover(node),
            Fault::Join { via } => {
                let node = self.slots.len() as u32;
                let mut slot = Slot::new();
                slot.contact = via.unwrap_or_else(|| self.any_live_member());
                self.slots.push(slot);
                self.ids.push(None);
                self.join(node);
            }
            Fault::Leave { node } => self.leave(node),
            Fault::Partition { groups } => {
                self.partition = vec![ISOLATED; self.slots.len()];
                for (g, members) in groups.iter().enumerate() {
                    for &n in members {
                        self.partition[n as usize] = g as u32;
                    }
                }
            }
            Fault::Block { from, to, one_way } => {
                self.blocked.insert((from, to));
                if !one_way {
                    self.blocked.insert((to, from));
                }
            }
            Fault::Heal => {
                self.partition.clear();
                self.blocked.clear();
            }
            Fault::Network { network } => self.network = network,
            Fault::Link { from, to, network } => {
                self.links.insert((from, to), network);
            }
            Fault::Drift { node, rate } => self.slots[node as usize].drift = rate,
        }
    }

    /// A live member (protocol running), drawn from the membership stream; node 0 if none is.
    fn any_live_member(&mut self) -> u32 {
        let live: Vec<u32> = (0..self.slots.len() as u32)
            .filter(|&i| self.slots[i as usize].view.is_some())
            .collect();
        match (&mut self.layer, live.is_empty()) {
            (Some(layer), false) => live[layer.rng.random_range(0..live.len())],
            _ => 0,
        }
    }

    fn recover(&mut self, node: u32) {
        let slot = &self.slots[node as usize];
        let down = slot.node.is_none() && slot.view.is_none() && slot.joining.is_none();
        if !down || slot.left {
            return;
        }
        if self.layer.is_none() {
            if self.members.contains(NodeId(node)) {
                self.boot(node, false);
            }
        } else if node < self.spec.nodes {
            self.boot(node, false);
        } else {
            // A joined node has no config line: it asks its contact again (which knows its
            // address, and welcomes it under the same id).
            self.join(node);
        }
    }

    fn leave(&mut self, node: u32) {
        if self.layer.is_none() {
            if self.members.remove(NodeId(node)) {
                self.stop(node);
                self.slots[node as usize].persisted = None;
                for other in 0..self.slots.len() as u32 {
                    if other != node {
                        self.input(other, Input::Membership(Membership::Left(NodeId(node))));
                    }
                }
            }
            return;
        }
        let slot = &mut self.slots[node as usize];
        if slot.left {
            return;
        }
        slot.left = true;
        if let Some(view) = &slot.view {
            let mut effects = Vec::new();
            view.leave(&mut effects);
            self.carry(node, effects);
        }
        self.stop(node);
        let slot = &mut self.slots[node as usize];
        slot.persisted = None;
        slot.assigned = None;
        slot.claim = None;
        slot.table.clear();
        if let Some(id) = self.ids[node as usize] {
            self.members.remove(id);
        }
    }

    /// Boots a config node: its View from the config (with the layer) and its protocol, at once
    /// on the first boot, after the quiet period on a recovery.
    fn boot(&mut self, id: u32, first: bool) {
        let Some(layer) = &self.layer else {
            return self.start(id);
        };
        let slot = &mut self.slots[id as usize];
        let mut view = View::from_config(&layer.lines, &id, slot.assigned, layer.config)
            .expect("every config line is a distinct node within the cap");
        view.restore(&slot.table);
        let mut effects = Vec::new();
        view.hello(&mut effects);
        slot.view = Some(Box::new(view));
        slot.life += 1;
        let life = slot.life;
        let (quiet, every) = (
            slot.stretch(layer.quiet),
            slot.stretch(layer.announce_every),
        );
        self.push(self.now + every, Action::Announce { node: id, life });
        if first {
            self.start(id);
        } else {
            self.push(self.now + quiet, Action::Start { node: id, life });
        }
        self.carry(id, effects);
    }

    /// Starts node `id`'s protocol with what it persisted.
    fn start(&mut self, id: u32) {
        let slot = &mut self.slots[id as usize];
        slot.node = Some(Node::new(P::new(&self.config)));
        let persisted = slot.persisted.as_deref().map(<[u8]>::to_vec);
        self.emit(|| Ev::Start { node: id });
        self.input(id, Input::Start { persisted });
    }

    /// Node `node` (joined, or about to) asks its contact to let it in.
    fn join(&mut self, node: u32) {
        let layer = self.layer.as_ref().expect("joins run with the layer");
        let slot = &mut self.slots[node as usize];
        slot.life += 1;
        let joining = Joining::new(node, slot.contact, JOIN_TRIES, layer.config);
        slot.joining = Some(Box::new(joining.claiming(slot.claim)));
        self.join_request(node);
    }

    /// Sends a joining node's next request and arms its retry, or gives the join up.
    fn join_request(&mut self, node: u32) {
        let timeout = self.spec.timing.timeout;
        let slot = &mut self.slots[node as usize];
        let Some(joining) = slot.joining.as_mut() else {
            return;
        };
        match joining.request() {
            Ok((to, msg)) => {
                slot.requests += 1;
                let retry = Action::JoinRetry {
                    node,
                    life: slot.life,
                    request: slot.requests,
                };
                let at = self.now + slot.stretch(timeout);
                self.push(at, retry);
                self.post(node, to, Wire::Control(Box::new(msg)));
            }
            Err(_) => {
                slot.joining = None;
                self.stats.joins_failed += 1;
            }
        }
    }

    /// A control message for node `to`: a reply to its join, or one for its View.
    fn on_control(&mut self, to: u32, from: u32, msg: Control<u32>) {
        let slot = &mut self.slots[to as usize];
        if let Some(joining) = slot.joining.as_mut() {
            let redirect = matches!(msg, Control::Refused { .. });
            match joining.on_reply(&from, msg) {
                Some(Ok(view)) => self.welcomed(to, view),
                Some(Err(_)) => {
                    slot.joining = None;
                    self.stats.joins_failed += 1;
                }
                // Ask the admitters named at once, as a real node does.
                None if redirect => self.join_request(to),
                None => {}
            }
        } else if let Some(view) = slot.view.as_mut() {
            let mut effects = Vec::new();
            view.on_control(&from, msg, &mut effects);
            self.carry(to, effects);
        }
    }

    /// A joining node got its table: it is a member under the id its admitter assigned; its
    /// protocol starts after the quiet period.
    fn welcomed(&mut self, node: u32, view: View<u32>) {
        let layer = self.layer.as_ref().expect("joins run with the layer");
        let id = view.id();
        if let Some(old) = self.ids[node as usize].replace(id) {
            self.members.remove(old);
        }
        self.owners.insert(id, node);
        self.members.insert(id);
        self.stats.joins += 1;
        let mut effects = Vec::new();
        view.announce(&mut effects);
        let slot = &mut self.slots[node as usize];
        slot.joining = None;
        slot.claim = Some(id);
        slot.view = Some(Box::new(view));
        let life = slot.life;
        let (quiet, every) = (
            slot.stretch(layer.quiet),
            slot.stretch(layer.announce_every),
        );
        self.push(self.now + quiet, Action::Start { node, life });
        self.push(self.now + every, Action::Announce { node, life });
        self.carry(node, effects);
    }

    fn announce(&mut self, node: u32, life: u32) {
        let Sim { layer, slots, .. } = self;
        let (Some(layer), slot) = (layer.as_mut(), &mut slots[node as usize]) else {
            return;
        };
        if slot.life != life {
            return;
        }
        let Some(view) = slot.view.as_mut() else {
            return;
        };
        let mut effects = Vec::new();
        view.on_tick(&mut layer.rng, &mut effects);
        let next = self.now + slot.stretch(layer.announce_every);
        self.push(next, Action::Announce { node, life });
        self.carry(node, effects);
    }

    /// Carries out a View's effects, in order.
    fn carry(&mut self, node: u32, mut effects: Vec<Effect<u32>>) {
        if self.highest_plus_one {
            self.mutate_ids(node, &mut effects);
        }
        if effects.iter().any(|e| matches!(e, Effect::Change(_))) {
            let slot = &mut self.slots[node as usize];
            if let Some(view) = &slot.view {
                slot.table = view.entries();
            }
        }
        for effect in effects {
            match effect {
                Effect::Send { to, msg } => self.post(node, to, Wire::Control(Box::new(msg))),
                Effect::Change(change) => self.input(node, Input::Membership(change)),
                Effect::PersistAssigned(id) => {
                    self.emit(|| Ev::Persist {
                        node,
                        bytes: std::mem::size_of_val(&id.0),
                    });
                    self.slots[node as usize].assigned = Some(id);
                }
                Effect::Rejected { .. } => self.stats.control_rejected += 1,
            }
        }
    }

    /// The broken id rule of [`Sim::use_highest_plus_one_ids`]: an id just assigned is
    /// replaced, in the welcome and announcements that hand it out, by one above the highest
    /// other id the admitter knows.
    fn mutate_ids(&self, node: u32, effects: &mut [Effect<u32>]) {
        let Some(assigned) = effects.iter().find_map(|e| match e {
            Effect::PersistAssigned(id) => Some(*id),
            _ => None,
        }) else {
            return;
        };
        let Some(view) = &self.slots[node as usize].view else {
            return;
        };
        let highest = view
            .members()
            .all()
            .iter()
            .filter(|&&i| i != assigned)
            .max();
        let old = NodeId(highest.map_or(0, |h| h.0 + 1));
        for effect in effects {
            if let Effect::Send {
                msg: Control::Welcome { members } | Control::Announce { members },
                ..
            } = effect
            {
                for (id, _) in members.iter_mut().filter(|(id, _)| *id == assigned) {
                    *id = old;
                }
            }
        }
    }

    /// Crash (or the stop half of a leave): state, timers, View and join go; persisted bytes
    /// and the last assigned id stay.
    fn stop(&mut self, id: u32) {
        let slot = &mut self.slots[id as usize];
        slot.life += 1;
        slot.view = None;
        slot.joining = None;
        let Some(node) = slot.node.take() else {
            return;
        };
        slot.timers.clear();
        let down = Status::down();
        self.status_changed(id, node.status(), &down);
    }

    fn input(&mut self, id: u32, input: InputOf<P>) {
        let slot = &mut self.slots[id as usize];
        let Some(node) = slot.node.as_mut() else {
            return;
        };
        let before = *node.status();
        let (me, members) = match &slot.view {
            Some(view) => (view.id(), view.members()),
            None => (NodeId(id), &self.members),
        };
        let mut cx = Context {
            id: me,
            now: self.now,
            members,
            rng: &mut self.proto_rng,
        };
        let changed = node.handle(&mut cx, input, &mut self.out);
        let mut out = std::mem::take(&mut self.out);
        for command in out.drain() {
            match command {
                Command::Send { to, msg } => match self.addr_of(id, to) {
                    Some(to) => self.post(id, to, Wire::Protocol(msg)),
                    None => self.stats.not_member += 1,
                },
                Command::Broadcast { msg } => match &self.slots[id as usize].view {
                    Some(view) => {
                        let others: Vec<u32> = view.others().copied().collect();
                        for to in others {
                            self.post(id, to, Wire::Protocol(msg.clone()));
                        }
                    }
                    None => {
                        for i in 0..self.members.len() {
                            let to = self.members.all()[i].0;
                            if to != id {
                                self.post(id, to, Wire::Protocol(msg.clone()));
                            }
                        }
                    }
                },
                Command::SetTimer { timer, after } => self.set_timer(id, timer, after),
                Command::CancelTimer(timer) => {
                    let slot = &mut self.slots[id as usize];
                    if let Some(t) = slot.timers.iter_mut().find(|t| t.timer == timer) {
                        t.generation = 0;
                    }
                }
                Command::Persist(bytes) => {
                    self.emit(|| Ev::Persist {
                        node: id,
                        bytes: bytes.len(),
                    });
                    self.slots[id as usize].persisted = Some(bytes.into_boxed_slice());
                }
            }
        }
        self.out = out;
        if let Some(status) = changed {
            self.status_changed(id, &before, &status);
        }
    }

    /// The node that node `from`'s table holds at id `to`.
    fn addr_of(&self, from: u32, to: NodeId) -> Option<u32> {
        match &self.slots[from as usize].view {
            Some(view) => view.addr_of(to).copied(),
            None => Some(to.0),
        }
    }

    fn set_timer(&mut self, id: u32, timer: P::Timer, after: Time) {
        let slot = &mut self.slots[id as usize];
        slot.last_generation += 1;
        let generation = slot.last_generation;
        let idx = match slot.timers.iter().position(|t| t.timer == timer) {
            Some(i) => {
                slot.timers[i].generation = generation;
                i
            }
            None => {
                slot.timers.push(TimerSlot { timer, generation });
                slot.timers.len() - 1
            }
        };
        let after = slot.stretch(after);
        self.push(
            self.now + after,
            Action::Timer {
                node: id,
                idx: idx as u32,
                generation,
            },
        );
    }

    fn post(&mut self, from: u32, to: u32, msg: Wire<P::Msg>) {
        let kind = msg.kind();
        let id = self.sent_total;
        self.sent_total += 1;
        if self.now < self.stats.calm_at {
            self.sent_before_calm += 1;
        }
        match self.sent.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => self.sent.push((kind, 1)),
        }
        self.emit(|| Ev::Send {
            id,
            from,
            to,
            kind,
            msg: &msg,
        });
        if self.is_blocked(from, to) {
            self.stats.blocked += 1;
            self.emit(|| Ev::Drop {
                id,
                from,
                to,
                kind,
                reason: "blocked",
            });
            return;
        }
        let net = match self.links.is_empty() {
            true => self.network,
            false => *self.links.get(&(from, to)).unwrap_or(&self.network),
        };
        if net.loss > 0.0 && self.net_rng.random_bool(net.loss) {
            self.stats.lost += 1;
            self.emit(|| Ev::Drop {
                id,
                from,
                to,
                kind,
                reason: "lost",
            });
            return;
        }
        if net.duplicate > 0.0 && self.net_rng.random_bool(net.duplicate) {
            self.stats.duplicated += 1;
            self.emit(|| Ev::Duplicate { id, from, to, kind });
            let at = self.now + self.latency(&net);
            self.push(
                at,
                Action::Deliver {
                    id,
                    from,
                    to,
                    msg: msg.clone(),
                },
            );
        }
        let at = self.now + self.latency(&net);
        self.push(at, Action::Deliver { id, from, to, msg });
    }

    fn latency(&mut self, net: &Network) -> Time {
        if net.min_latency_us == net.max_latency_us {
            net.min_latency_us
        } else {
            self.net_rng
                .random_range(net.min_latency_us..=net.max_latency_us)
        }
    }

    fn status_changed(&mut self, id: u32, old: &Status, new: &Status) {
        self.stats.status_changes += 1;
        if new.state == State::Election && old.state != State::Election {
            self.stats.elections_started += 1;
        }
        self.last_change = self.now;
        self.sent_at_change = self.sent_total;
        if self.trace.is_some() {
            let status = self.numbered(new);
            self.emit(|| Ev::Status {
                node: id,
                status: &status,
            });
        }
        let me = self.id_of(id).unwrap_or(NodeId(id));
        let applies =
            self.properties.model == Model::Asynchronous || self.stats.left_model_at.is_none();
        if let Some((invariant, other, detail)) = self.safety.change(me, old, new, applies) {
            let mut nodes = vec![me];
            nodes.extend(other.filter(|&o| o != me));
            let seen: Vec<String> = (0..self.slots.len() as u32)
                .filter_map(|i| Some((self.id_of(i)?, self.status(i))))
                .filter(|(_, s)| s.state != State::Down && self.safety.same_scope(s, new))
                .take(8)
                .map(|(i, s)| {
                    if other.is_some() && s.coordinator == other && !nodes.contains(&i) {
                        nodes.push(i);
                    }
                    describe(i, &s)
                })
                .collect();
            self.violate(
                invariant,
                nodes,
                format!("{detail}; nodes in that scope: {}", seen.join("; ")),
            );
            return;
        }
        if let Phase::Settled { leader, group } = self.phase {
            let agrees =
                new.state == State::Normal && new.coordinator == leader && new.group == group;
            if !agrees {
                let expected = leader.map_or("-".into(), |l| l.to_string());
                self.violate(
                    Invariant::Stability,
                    vec![me],
                    format!(
                        "settled on leader {expected}, then {} on a calm network",
                        describe(me, new)
                    ),
                );
            }
        }
    }

    fn violate(&mut self, invariant: Invariant, nodes: Vec<NodeId>, detail: String) {
        let v = Violation {
            seed: self.spec.seed,
            time: self.now,
            invariant,
            nodes,
            detail,
        };
        if self.trace.is_some() {
            let numbered = Violation {
                nodes: v.nodes.iter().map(|&n| self.number(n)).collect(),
                ..v.clone()
            };
            self.emit(|| Ev::Violation {
                violation: &numbered,
            });
        }
        self.violation = Some(v);
    }

    /// Id `id` as the number of the node that holds it, as the trace names nodes (an id no node
    /// ever held stays as it is).
    fn number(&self, id: NodeId) -> NodeId {
        self.node_of(id).map_or(id, NodeId)
    }

    /// `s` with the nodes it names (coordinator, group origin) numbered as the trace numbers
    /// them.
    fn numbered(&self, s: &Status) -> Status {
        let mut s = *s;
        s.coordinator = s.coordinator.map(|c| self.number(c));
        if let Some(g) = s.group.as_mut() {
            g.origin = self.number(g.origin);
        }
        s
    }

    fn check_liveness(&mut self) {
        let mut live: Vec<(NodeId, Status)> = (0..self.slots.len() as u32)
            .filter(|&i| self.slots[i as usize].node.is_some())
            .filter_map(|i| Some((self.id_of(i)?, self.status(i))))
            .collect();
        live.sort_by_key(|(id, _)| *id);
        let shown = || -> String {
            let shown: Vec<String> = live.iter().take(12).map(|(i, s)| describe(*i, s)).collect();
            shown.join("; ")
        };
        match settlement(&self.properties, self.members.len(), &live) {
            Settlement::NoQuorum => {
                self.stats.no_quorum = true;
                self.phase = Phase::NoQuorum;
            }
            Settlement::Settled { leader, group } => self.settle(leader, group),
            Settlement::Unsettled {
                odd,
                leader,
                leader_ok,
            } => {
                let detail = format!(
                    "{} of {} live nodes not Normal behind one live leader ({}) {}us after the calm; nodes: {}",
                    odd.len(),
                    live.len(),
                    leader.map_or("none".into(), |l| l.to_string()),
                    self.now - self.stats.calm_at,
                    shown()
                );
                let mut nodes: Vec<NodeId> = odd.into_iter().take(8).collect();
                nodes.extend(leader.filter(|_| !leader_ok));
                self.violate(Invariant::Liveness, nodes, detail);
            }
            Settlement::NotHighest { leader, highest } => self.violate(
                Invariant::Validity,
                leader.into_iter().chain(highest).collect(),
                format!(
                    "settled leader {} is not the highest live node {}",
                    leader.map_or("none".into(), |l| l.to_string()),
                    highest.map_or("none".into(), |h| h.to_string())
                ),
            ),
        }
    }

    fn settle(&mut self, leader: Option<NodeId>, group: Option<election_core::GroupId>) {
        self.stats.time_to_stable = Some(self.last_change.saturating_sub(self.stats.calm_at));
        self.stats.messages_to_stable =
            Some(self.sent_at_change.saturating_sub(self.sent_before_calm));
        let number = leader.map(|l| self.number(l).0);
        self.stats.leader = number;
        self.emit(|| Ev::Settled { leader: number });
        self.phase = Phase::Settled { leader, group };
    }
}

/// Whether `network` keeps Garcia-Molina's synchronous assumptions for an algorithm that
/// tolerates `max_delay`: nothing lost or duplicated, nothing slower than `max_delay`.
pub(crate) fn synchronous(network: &Network, max_delay: Time) -> bool {
    network.loss == 0.0 && network.duplicate == 0.0 && network.max_latency_us <= max_delay
}
