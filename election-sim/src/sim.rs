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
//! Membership is a control plane, like the report's PUT: a join or leave updates the one shared
//! [`Members`] table at once and every live node receives the `Membership` input at that instant,
//! before the joining node boots. A joined node gets the id one above the largest ever used.
//! A node that joins while a partition is active belongs to no side (it is isolated) until heal.

use std::collections::{BTreeMap, BTreeSet};

use election_core::{
    Command, ConfigOf, Context, Input, InputOf, Kind, Members, Membership, Model, Node, NodeId,
    OutOf, Properties, Protocol, State, Status, Time,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::check::{Invariant, Safety, Violation, describe};
use crate::plan::{Fault, Network, PlanError};
use crate::queue::Queue;
use crate::stats::RunStats;
use crate::trace::{Ev, Line, Spec, TraceSink};

const NETWORK_STREAM: u64 = 2;
const PROTOCOL_STREAM: u64 = 3;
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

enum Action<M> {
    Deliver {
        /// The message's number in send order (the trace pairs sends and deliveries by it).
        id: u64,
        from: u32,
        to: u32,
        msg: M,
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
}

impl<P: Protocol> Slot<P> {
    fn new() -> Self {
        Slot {
            node: None,
            timers: Vec::new(),
            last_generation: 0,
            drift: 0.0,
            persisted: None,
        }
    }
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
    members: Members,
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
                .find(|(_, f)| matches!(f.fault, Fault::Join | Fault::Leave { .. }));
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
            .filter(|f| f.fault == Fault::Join)
            .count();
        let n = spec.nodes as usize + joins;
        let calm_at = plan.last_fault();
        let bound = P::liveness_bound(&config, n) as f64 * (1.0 + plan.max_stretch());
        let check_at = calm_at + plan.max_latency() + bound.ceil() as Time;
        let end_at = check_at + 3 * spec.timing.heartbeat + 2 * spec.timing.timeout;
        let max_delay = P::max_delay(&config);
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
            sim.boot(id);
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

    /// The shared membership table.
    pub fn members(&self) -> &Members {
        &self.members
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
    fn emit<'a>(&mut self, ev: impl FnOnce() -> Ev<'a, P::Msg, P::Timer>) {
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

    fn deliver(&mut self, id: u64, from: u32, to: u32, msg: P::Msg) {
        let live = self
            .slots
            .get(to as usize)
            .is_some_and(|s| s.node.is_some());
        if !live {
            self.stats.to_down += 1;
            self.emit(|| Ev::Drop {
                id,
                from,
                to,
                kind: msg.kind(),
                reason: "down",
            });
        } else if self.is_blocked(from, to) {
            self.stats.blocked += 1;
            self.emit(|| Ev::Drop {
                id,
                from,
                to,
                kind: msg.kind(),
                reason: "blocked",
            });
        } else {
            self.stats.delivered += 1;
            self.emit(|| Ev::Deliver {
                id,
                from,
                to,
                kind: msg.kind(),
            });
            self.input(
                to,
                Input::Message {
                    from: NodeId(from),
                    msg,
                },
            );
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
            Fault::Crash { .. }
            | Fault::Recover { .. }
            | Fault::Join
            | Fault::Leave { .. }
            | Fault::Heal => true,
        };
        if !inside && self.stats.left_model_at.is_none() {
            self.stats.left_model_at = Some(self.now);
        }
        match fault {
            Fault::Crash { node } => self.stop(node),
            Fault::Recover { node } => {
                if self.members.contains(NodeId(node)) && self.slots[node as usize].node.is_none() {
                    self.boot(node);
                }
            }
            Fault::Join => {
                let id = self.slots.len() as u32;
                self.slots.push(Slot::new());
                self.members.insert(NodeId(id));
                self.notify(Membership::Joined(NodeId(id)), id);
                self.boot(id);
            }
            Fault::Leave { node } => {
                if self.members.remove(NodeId(node)) {
                    self.stop(node);
                    self.slots[node as usize].persisted = None;
                    self.notify(Membership::Left(NodeId(node)), node);
                }
            }
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

    fn notify(&mut self, change: Membership, except: u32) {
        for id in 0..self.slots.len() as u32 {
            if id != except && self.slots[id as usize].node.is_some() {
                self.input(id, Input::Membership(change));
            }
        }
    }

    fn boot(&mut self, id: u32) {
        let slot = &mut self.slots[id as usize];
        slot.node = Some(Node::new(P::new(&self.config)));
        let persisted = slot.persisted.as_deref().map(<[u8]>::to_vec);
        self.emit(|| Ev::Start { node: id });
        self.input(id, Input::Start { persisted });
    }

    /// Crash (or the stop half of a leave): state and timers go, persisted bytes stay.
    fn stop(&mut self, id: u32) {
        let slot = &mut self.slots[id as usize];
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
        let mut cx = Context {
            id: NodeId(id),
            now: self.now,
            members: &self.members,
            rng: &mut self.proto_rng,
        };
        let changed = node.handle(&mut cx, input, &mut self.out);
        let mut out = std::mem::take(&mut self.out);
        for command in out.drain() {
            match command {
                Command::Send { to, msg } => self.post(id, to.0, msg),
                Command::Broadcast { msg } => {
                    for i in 0..self.members.len() {
                        let to = self.members.all()[i].0;
                        if to != id {
                            self.post(id, to, msg.clone());
                        }
                    }
                }
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
        let after = if slot.drift == 0.0 {
            after
        } else {
            (after as f64 * (1.0 + slot.drift)).round() as Time
        };
        self.push(
            self.now + after,
            Action::Timer {
                node: id,
                idx: idx as u32,
                generation,
            },
        );
    }

    fn post(&mut self, from: u32, to: u32, msg: P::Msg) {
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
        self.emit(|| Ev::Status {
            node: id,
            status: new,
        });
        let me = NodeId(id);
        let applies =
            self.properties.model == Model::Asynchronous || self.stats.left_model_at.is_none();
        if let Some((invariant, other, detail)) = self.safety.change(me, old, new, applies) {
            let mut nodes = vec![me];
            nodes.extend(other.filter(|&o| o != me));
            let seen: Vec<String> = (0..self.slots.len() as u32)
                .map(|i| (NodeId(i), self.status(i)))
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
        self.emit(|| Ev::Violation { violation: &v });
        self.violation = Some(v);
    }

    fn check_liveness(&mut self) {
        let live: Vec<(NodeId, Status)> = (0..self.slots.len() as u32)
            .filter(|&i| self.slots[i as usize].node.is_some())
            .map(|i| (NodeId(i), self.status(i)))
            .collect();
        if self.properties.quorum && live.len() * 2 <= self.members.len() {
            self.stats.no_quorum = true;
            self.phase = Phase::NoQuorum;
            return;
        }
        let Some(&(_, first)) = live.first() else {
            self.settle(None, None);
            return;
        };
        let leader = first.coordinator;
        let odd: Vec<&(NodeId, Status)> = live
            .iter()
            .filter(|(_, s)| {
                s.state != State::Normal || s.coordinator != leader || s.group != first.group
            })
            .collect();
        let leader_ok = leader.is_some_and(|l| self.status(l.0).is_leader(l));
        if !odd.is_empty() || !leader_ok {
            let shown: Vec<String> = live.iter().take(12).map(|(i, s)| describe(*i, s)).collect();
            let mut nodes: Vec<NodeId> = odd.iter().take(8).map(|(i, _)| *i).collect();
            nodes.extend(leader.filter(|_| !leader_ok));
            let n = live.len();
            self.violate(
                Invariant::Liveness,
                nodes,
                format!(
                    "{} of {n} live nodes not Normal behind one live leader ({}) {}us after the calm; nodes: {}",
                    odd.len(),
                    leader.map_or("none".into(), |l| l.to_string()),
                    self.now - self.stats.calm_at,
                    shown.join("; ")
                ),
            );
            return;
        }
        let highest = live.last().map(|(i, _)| *i);
        if self.properties.highest_wins && leader != highest {
            self.violate(
                Invariant::Validity,
                leader.into_iter().chain(highest).collect(),
                format!(
                    "settled leader {} is not the highest live node {}",
                    leader.map_or("none".into(), |l| l.to_string()),
                    highest.map_or("none".into(), |h| h.to_string())
                ),
            );
            return;
        }
        self.settle(leader, first.group);
    }

    fn settle(&mut self, leader: Option<NodeId>, group: Option<election_core::GroupId>) {
        self.stats.time_to_stable = Some(self.last_change.saturating_sub(self.stats.calm_at));
        self.stats.messages_to_stable =
            Some(self.sent_at_change.saturating_sub(self.sent_before_calm));
        self.stats.leader = leader.map(|l| l.0);
        self.emit(|| Ev::Settled {
            leader: leader.map(|l| l.0),
        });
        self.phase = Phase::Settled { leader, group };
    }
}

/// Whether `network` keeps Garcia-Molina's synchronous assumptions for an algorithm that
/// tolerates `max_delay`: nothing lost or duplicated, nothing slower than `max_delay`.
pub(crate) fn synchronous(network: &Network, max_delay: Time) -> bool {
    network.loss == 0.0 && network.duplicate == 0.0 && network.max_latency_us <= max_delay
}
