//! A hand-driven cluster for tests, examples and classrooms: deliver one message, fire one timer,
//! crash, recover, cut a link, and look at every node's status in between; and [`Mutant`], the
//! broken variants of a protocol that the checkers' tests must catch.
//!
//! The network here is ideal but controllable: messages wait in one FIFO queue until delivered, and
//! [`Cluster::run_for`] delivers every message before letting the clock advance to the next timer,
//! so messages are always faster than timeouts (Garcia-Molina's synchronous assumption). For
//! latency, loss, drift and random fault storms use the simulator crate.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::protocol::{
    Command, ConfigError, ConfigOf, Context, Explorable, Input, InputOf, Kind, Members, Membership,
    Node, NodeId, OutOf, Properties, Protocol, Reclock, Time, validated,
};
use crate::status::{State, Status};

/// A message on its way.
#[derive(Clone, Debug, PartialEq)]
pub struct InFlight<M> {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The message.
    pub msg: M,
}

/// Deliveries and timer firings allowed in one call before the harness declares a livelock.
const STEP_LIMIT: usize = 1_000_000;

/// A small cluster of `P` nodes driven step by step.
pub struct Cluster<P: Protocol> {
    config: ConfigOf<P>,
    members: Members,
    nodes: BTreeMap<NodeId, Node<P>>,
    persisted: BTreeMap<NodeId, Vec<u8>>,
    timers: BTreeMap<(NodeId, P::Timer), Time>,
    in_flight: VecDeque<InFlight<P::Msg>>,
    blocked: BTreeSet<(NodeId, NodeId)>,
    now: Time,
    rng: ChaCha8Rng,
    sent: BTreeMap<&'static str, usize>,
    out: OutOf<P>,
}

impl<P: Protocol> Cluster<P> {
    /// A cluster whose members are `n0 … n(n-1)`, none of them started yet.
    pub fn new(config: ConfigOf<P>, n: u32) -> Result<Self, ConfigError> {
        Ok(Cluster {
            config: validated::<P>(config)?,
            members: Members::first(n),
            nodes: BTreeMap::new(),
            persisted: BTreeMap::new(),
            timers: BTreeMap::new(),
            in_flight: VecDeque::new(),
            blocked: BTreeSet::new(),
            now: 0,
            rng: ChaCha8Rng::seed_from_u64(0),
            sent: BTreeMap::new(),
            out: OutOf::<P>::new(),
        })
    }

    /// Starts every member that is not running, lowest id first.
    pub fn start_all(&mut self) {
        for id in self.members.all().to_vec() {
            if !self.nodes.contains_key(&id) {
                self.start(id.0);
            }
        }
    }

    /// Boots node `id` with a fresh state machine and whatever it persisted before. Starting a
    /// running node restarts it.
    pub fn start(&mut self, id: u32) {
        let id = NodeId(id);
        self.crash(id.0);
        self.nodes.insert(id, Node::new(P::new(&self.config)));
        let persisted = self.persisted.get(&id).cloned();
        self.input(id, Input::Start { persisted });
    }

    /// Recovers a crashed node (same as [`start`](Self::start)).
    pub fn recover(&mut self, id: u32) {
        self.start(id);
    }

    /// Crashes node `id`: its state machine and timers are dropped; what it persisted survives.
    pub fn crash(&mut self, id: u32) {
        let id = NodeId(id);
        self.nodes.remove(&id);
        self.timers.retain(|(owner, _), _| *owner != id);
    }

    /// A new member `id` joins: every running member learns it, then it boots.
    pub fn join(&mut self, id: u32) {
        let new = NodeId(id);
        self.members.insert(new);
        self.notify_all(Membership::Joined(new), new);
        self.start(id);
    }

    /// Member `id` leaves gracefully: it stops, and every running member learns it at once.
    pub fn leave(&mut self, id: u32) {
        let gone = NodeId(id);
        self.crash(id);
        self.members.remove(gone);
        self.persisted.remove(&gone);
        self.notify_all(Membership::Left(gone), gone);
    }

    fn notify_all(&mut self, change: Membership, except: NodeId) {
        let ids: Vec<NodeId> = self
            .nodes
            .keys()
            .copied()
            .filter(|&n| n != except)
            .collect();
        for id in ids {
            self.input(id, Input::Membership(change));
        }
    }

    /// Cuts every link between nodes of different groups; a member listed in no group is cut off
    /// from everyone.
    pub fn partition(&mut self, groups: &[&[u32]]) {
        let group_of = |id: NodeId| groups.iter().position(|g| g.contains(&id.0));
        let all = self.members.all().to_vec();
        for &a in &all {
            for &b in &all {
                if a != b && (group_of(a).is_none() || group_of(a) != group_of(b)) {
                    self.blocked.insert((a, b));
                }
            }
        }
    }

    /// Cuts the link between `a` and `b` in both directions.
    pub fn cut(&mut self, a: u32, b: u32) {
        self.cut_one_way(a, b);
        self.cut_one_way(b, a);
    }

    /// Drops messages from `from` to `to` only.
    pub fn cut_one_way(&mut self, from: u32, to: u32) {
        self.blocked.insert((NodeId(from), NodeId(to)));
    }

    /// Cuts the members in `side` off from every other member (links inside `side` and inside
    /// the rest stay up): the two-sided [`partition`](Self::partition) most scenarios want.
    pub fn split_off(&mut self, side: &[u32]) {
        let rest: Vec<u32> = self
            .members
            .all()
            .iter()
            .map(|id| id.0)
            .filter(|id| !side.contains(id))
            .collect();
        self.partition(&[side, &rest]);
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Puts `msg` "from" `from` to `to` at the back of the queue, as a forged or replayed
    /// datagram would arrive (on real nodes the authenticated envelope stops those; the protocols
    /// must still not be stuck by one).
    pub fn inject(&mut self, from: u32, to: u32, msg: P::Msg) {
        self.in_flight.push_back(InFlight {
            from: NodeId(from),
            to: NodeId(to),
            msg,
        });
    }

    /// Delivers (or drops, if the receiver is down or the link is cut) the oldest message in
    /// flight. Returns it, or `None` if nothing was in flight.
    pub fn deliver_next(&mut self) -> Option<InFlight<P::Msg>> {
        let m = self.in_flight.pop_front()?;
        if self.nodes.contains_key(&m.to) && !self.blocked.contains(&(m.from, m.to)) {
            let input = Input::Message {
                from: m.from,
                msg: m.msg.clone(),
            };
            self.input(m.to, input);
        }
        Some(m)
    }

    /// Delivers messages until none is in flight; returns how many were taken off the queue.
    ///
    /// # Panics
    /// If the nodes keep messaging each other without end (a livelock).
    pub fn deliver_all(&mut self) -> usize {
        let mut n = 0;
        while self.deliver_next().is_some() {
            n += 1;
            assert!(
                n < STEP_LIMIT,
                "livelock: {n} deliveries without quiescence"
            );
        }
        n
    }

    /// Fires `timer` on node `id` now, ahead of its deadline. Returns false (and does nothing)
    /// if that timer is not set.
    pub fn fire(&mut self, id: u32, timer: P::Timer) -> bool {
        let key = (NodeId(id), timer);
        if self.timers.remove(&key).is_none() {
            return false;
        }
        self.input(key.0, Input::Timer(key.1));
        true
    }

    /// Advances the clock to the earliest timer deadline and fires that timer (ties: lowest node,
    /// then smallest timer). Returns what fired.
    pub fn fire_next(&mut self) -> Option<(NodeId, P::Timer)> {
        let (key, deadline) = self.next_timer()?;
        self.now = self.now.max(deadline);
        self.timers.remove(&key);
        self.input(key.0, Input::Timer(key.1.clone()));
        Some(key)
    }

    fn next_timer(&self) -> Option<((NodeId, P::Timer), Time)> {
        self.timers
            .iter()
            .min_by_key(|(key, deadline)| (**deadline, (*key).clone()))
            .map(|(k, d)| (k.clone(), *d))
    }

    /// Runs the cluster for `duration` microseconds of virtual time: all messages are delivered
    /// before each timer fires, and the clock ends at `now + duration`.
    pub fn run_for(&mut self, duration: Time) {
        let end = self.now + duration;
        for _ in 0..STEP_LIMIT {
            self.deliver_all();
            match self.next_timer() {
                Some((_, deadline)) if deadline <= end => {
                    self.fire_next();
                }
                _ => {
                    self.now = end;
                    return;
                }
            }
        }
        panic!("livelock: {STEP_LIMIT} timer firings within {duration}us");
    }

    /// The protocol's liveness bound for the current membership: how long after the last fault
    /// every live node must be Normal under one leader.
    pub fn liveness_bound(&self) -> Time {
        P::liveness_bound(&self.config, self.members.len())
    }

    /// Runs for [`liveness_bound`](Self::liveness_bound) and returns the one leader everyone
    /// follows then, or what [`check_one_leader`](Self::check_one_leader) found wrong.
    pub fn settle(&mut self) -> Result<u32, String> {
        self.run_for(self.liveness_bound());
        self.check_one_leader()
    }

    /// Delivers every message, then fires timers one at a time (delivering every message after
    /// each) until `pred` holds; returns how many timers fired. Fails, describing the nodes, when
    /// `pred` does not hold within `within` of virtual time or no timer is left. Single-stepping
    /// shows the order of events a scenario test wants to count; pass
    /// [`liveness_bound`](Self::liveness_bound) or a tighter limit the scenario promises.
    pub fn step_until(
        &mut self,
        within: Time,
        pred: impl Fn(&Self) -> bool,
    ) -> Result<usize, String> {
        let deadline = self.now + within;
        let mut fired = 0;
        self.deliver_all();
        while !pred(self) {
            if self.now > deadline {
                return Err(format!(
                    "not reached within {within}us: {}",
                    self.describe(&self.live())
                ));
            }
            if self.fire_next().is_none() {
                return Err(format!("no timer left: {}", self.describe(&self.live())));
            }
            fired += 1;
            self.deliver_all();
        }
        Ok(fired)
    }

    fn input(&mut self, id: NodeId, input: InputOf<P>) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        let mut cx = Context {
            id,
            now: self.now,
            members: &self.members,
            rng: &mut self.rng,
        };
        node.handle(&mut cx, input, &mut self.out);
        let commands: Vec<_> = self.out.drain().collect();
        for command in commands {
            match command {
                Command::Send { to, msg } => self.post(id, to, msg),
                Command::Broadcast { msg } => {
                    for to in self.members.all().to_vec() {
                        if to != id {
                            self.post(id, to, msg.clone());
                        }
                    }
                }
                Command::SetTimer { timer, after } => {
                    self.timers.insert((id, timer), self.now + after);
                }
                Command::CancelTimer(timer) => {
                    self.timers.remove(&(id, timer));
                }
                Command::Persist(bytes) => {
                    self.persisted.insert(id, bytes);
                }
            }
        }
    }

    fn post(&mut self, from: NodeId, to: NodeId, msg: P::Msg) {
        *self.sent.entry(msg.kind()).or_default() += 1;
        self.in_flight.push_back(InFlight { from, to, msg });
    }

    /// The current virtual time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// The membership table.
    pub fn members(&self) -> &Members {
        &self.members
    }

    /// Messages waiting to be delivered, oldest first.
    pub fn in_flight(&self) -> &VecDeque<InFlight<P::Msg>> {
        &self.in_flight
    }

    /// Whether `timer` is set on node `id`.
    pub fn timer_set(&self, id: u32, timer: &P::Timer) -> bool {
        self.deadline(id, timer).is_some()
    }

    /// When `timer` on node `id` is due, if it is set.
    pub fn deadline(&self, id: u32, timer: &P::Timer) -> Option<Time> {
        self.timers.get(&(NodeId(id), timer.clone())).copied()
    }

    /// The running node `id`, if it is up.
    pub fn node(&self, id: u32) -> Option<&Node<P>> {
        self.nodes.get(&NodeId(id))
    }

    /// Node `id`'s status (`Down` when it is not running).
    pub fn status(&self, id: u32) -> Status {
        self.node(id).map_or(Status::down(), |n| *n.status())
    }

    /// Ids of the running nodes.
    pub fn live(&self) -> Vec<u32> {
        self.nodes.keys().map(|id| id.0).collect()
    }

    /// Messages of type `kind` sent since the start or the last [`reset_counts`](Self::reset_counts)
    /// (a broadcast counts once per receiver).
    pub fn sent(&self, kind: &str) -> usize {
        self.sent.get(kind).copied().unwrap_or(0)
    }

    /// Messages of every type sent, by type.
    pub fn sent_by_kind(&self) -> &BTreeMap<&'static str, usize> {
        &self.sent
    }

    /// Zeroes the message counters.
    pub fn reset_counts(&mut self) {
        self.sent.clear();
    }

    /// Checks that every running node is `Normal` and follows one coordinator, which is running
    /// and considers itself the leader. Returns that leader.
    pub fn check_one_leader(&self) -> Result<u32, String> {
        self.check_group(&self.live())
    }

    /// Checks that the nodes `ids` are all running, `Normal`, and follow one coordinator among
    /// them that considers itself the leader; returns it.
    pub fn check_group(&self, ids: &[u32]) -> Result<u32, String> {
        let statuses: Vec<(u32, Status)> = ids.iter().map(|&id| (id, self.status(id))).collect();
        if let Some((id, s)) = statuses.iter().find(|(_, s)| s.state != State::Normal) {
            return Err(format!(
                "n{id} is {} ({}), not Normal; all: {}",
                s.state,
                s.phase,
                self.describe(ids)
            ));
        }
        let leader = statuses
            .first()
            .and_then(|(_, s)| s.coordinator)
            .ok_or("no nodes")?;
        if statuses
            .iter()
            .any(|(_, s)| s.coordinator != Some(leader) || s.group != statuses[0].1.group)
        {
            return Err(format!("nodes disagree: {}", self.describe(ids)));
        }
        if !ids.contains(&leader.0) || !self.status(leader.0).is_leader(leader) {
            return Err(format!(
                "coordinator {leader} is not a leader among them: {}",
                self.describe(ids)
            ));
        }
        Ok(leader.0)
    }

    /// One line per node: id, state, phase, coordinator, group.
    pub fn describe(&self, ids: &[u32]) -> String {
        ids.iter()
            .map(|&id| {
                let s = self.status(id);
                let coord = s.coordinator.map_or("-".into(), |c| c.to_string());
                let group = s.group.map_or("-".into(), |g| g.to_string());
                format!("n{id}:{}/{} coord={coord} group={group}", s.state, s.phase)
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A change made to protocol `P` to build a broken variant, the kind a checker must catch: what
/// it claims ([`properties`](Mutation::properties)) or what it reports ([`status`](Mutation::status)).
pub trait Mutation<P: Protocol>: 'static {
    /// What the variant declares, given what `P` declares (by default the same).
    fn properties(declared: Properties) -> Properties {
        declared
    }

    /// What node `me` reports, given what `P` would report (by default the same).
    fn status(_me: NodeId, status: Status) -> Status {
        status
    }

    /// Whether the variant loses what it persisted: it boots as if it had never written
    /// anything, like a version that forgets to call `persist` (by default false).
    const AMNESIA: bool = false;
}

/// Protocol `P` changed by mutation `M`: same name, options, messages and timers, the inner
/// protocol's commands passed on unchanged.
pub struct Mutant<P, M> {
    inner: P,
    me: NodeId,
    mutation: std::marker::PhantomData<fn() -> M>,
}

// By hand: a derive would ask `M` (a marker) to be `Clone` and `Hash` too.
impl<P: Clone, M> Clone for Mutant<P, M> {
    fn clone(&self) -> Self {
        Mutant {
            inner: self.inner.clone(),
            me: self.me,
            mutation: std::marker::PhantomData,
        }
    }
}

impl<P: std::hash::Hash, M> std::hash::Hash for Mutant<P, M> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        (&self.inner, self.me).hash(h);
    }
}

/// A variant is explored like the protocol it changes.
impl<P: Explorable, M: Mutation<P>> Explorable for Mutant<P, M> {
    fn reclock(&mut self, clock: Reclock) {
        self.inner.reclock(clock);
    }

    fn epoch(&self) -> u64 {
        self.inner.epoch()
    }
}

impl<P: Protocol, M: Mutation<P>> Protocol for Mutant<P, M> {
    const NAME: &'static str = P::NAME;
    type Options = P::Options;
    type Msg = P::Msg;
    type Timer = P::Timer;

    fn new(config: &ConfigOf<P>) -> Self {
        Mutant {
            inner: P::new(config),
            me: NodeId(0),
            mutation: std::marker::PhantomData,
        }
    }

    fn properties(config: &ConfigOf<P>) -> Properties {
        M::properties(P::properties(config))
    }

    fn max_delay(config: &ConfigOf<P>) -> Time {
        P::max_delay(config)
    }

    fn liveness_bound(config: &ConfigOf<P>, n: usize) -> Time {
        P::liveness_bound(config, n)
    }

    fn on_start(&mut self, cx: &mut Context<'_>, persisted: Option<&[u8]>, out: &mut OutOf<P>) {
        self.me = cx.id;
        self.inner
            .on_start(cx, persisted.filter(|_| !M::AMNESIA), out);
    }

    fn on_message(&mut self, cx: &mut Context<'_>, from: NodeId, msg: P::Msg, out: &mut OutOf<P>) {
        self.inner.on_message(cx, from, msg, out);
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, timer: P::Timer, out: &mut OutOf<P>) {
        self.inner.on_timer(cx, timer, out);
    }

    fn on_membership(&mut self, cx: &mut Context<'_>, change: Membership, out: &mut OutOf<P>) {
        self.inner.on_membership(cx, change, out);
    }

    fn status(&self) -> Status {
        M::status(self.me, self.inner.status())
    }
}
