//! A stateright model of this project's Chang–Roberts ring (`election-core/src/ring.rs`),
//! written for the checker comparison in BENCHMARKS.md.
//!
//! The node logic follows `Ring`'s handlers: candidacies tagged with the candidate's life and
//! round, only improving candidates forwarded, a leader answering a smaller candidacy with an
//! announcement, one acknowledged hop pending per node and skipped past a silent receiver,
//! the leader's `Alive` heartbeat timed by its followers, the silent leader skipped by the
//! candidacy its silence starts and by the election's announcement. Every node is a member throughout (the explorer explores
//! no joins or leaves), so a node's next node is simply the next id, up or down.
//!
//! Time is modelled as the explorer's synchronous model does it (`election-sim/src/explore.rs`,
//! "Timing, per model"), rewritten here: one clock for all; a timer is armed for the duration
//! `Ring` asks for at the explorer's default timing (heartbeat 50 ms, timeout 20 ms, counted in
//! half milliseconds so the leader's silence, 72.5 ms, is whole); a message sent now is due
//! within `max_delay` (8 ms); no timer fires before every node has booted once;
//! then only the earliest deadline may fire, and only if no message in flight is due before it;
//! a delivery takes the copy of a message due first and does not move the clock. Every state is
//! re-based to `now = 0` (deadlines and due times relative to now), as the explorer re-bases its
//! clocks, so states with the same future merge. What the explorer gets from running
//! election-core's code (every handler, the node wrapper, the status the checker reads) is
//! hand-written here.
//!
//! States in which a live node's epoch (`lap + round`, as `Ring::epoch`) exceeds the bound are
//! checked but not expanded, like the explorer's `--max-epoch`.

use stateright::{Model, Property};

/// A node id, also its priority.
type Id = u8;

/// A hop of the ring: `Ring`'s `Hop`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hop {
    /// A candidacy, tagged with its candidate's life and its number in that life.
    Election {
        /// The candidate.
        candidate: Id,
        /// The candidate's boot count (the explorer draws a number at each boot instead).
        life: u8,
        /// The candidacy's number in that life.
        round: u8,
    },
    /// A leader's announcement lap.
    Coordinator {
        /// The leader.
        leader: Id,
        /// Its announcement number.
        lap: u8,
    },
}

impl Hop {
    /// News about a higher node first; for one node an announcement over a candidacy.
    fn rank(&self) -> (Id, u16) {
        match *self {
            Hop::Election { candidate, .. } => (candidate, 0),
            Hop::Coordinator { leader, lap } => (leader, u16::from(lap) + 1),
        }
    }
}

/// A message: `Ring`'s `Msg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Msg {
    /// A hop.
    Hop(Hop),
    /// Its acknowledgement.
    Ack(Hop),
    /// The leader's heartbeat.
    Alive,
}

/// A message in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Envelope {
    from: Id,
    to: Id,
    msg: Msg,
    /// By when it must have arrived, ms from now.
    due: Ms,
}

/// Time in half milliseconds, relative to the current instant (every state is re-based to
/// `now = 0`).
type Ms = u16;

/// The explorer's default timing, in half milliseconds: heartbeat 50 ms, reply timeout 20 ms, a
/// message delay of at most `timeout * 2 / 5` (`Timing::max_delay`), and the followers' wait for
/// the leader's next `Alive`, `5/4 (heartbeat + max_delay)` (`RingConfig::leader_silence`).
const HEARTBEAT: Ms = 100;
const TIMEOUT: Ms = 40;
const MAX_DELAY: Ms = TIMEOUT * 2 / 5;
const SILENCE: Ms = (HEARTBEAT + MAX_DELAY) * 5 / 4;

/// A timer, as an index into [`Node::timers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// The pending hop was not acknowledged.
    HopTimeout,
    /// The leader's next `Alive`.
    Heartbeat,
    /// The watched leader fell silent.
    Silence,
    /// No announcement since this node became participant.
    ElectionTimeout,
    /// The leader's next announcement lap.
    Announce,
}

const TIMERS: [Timer; 5] = [
    Timer::HopTimeout,
    Timer::Heartbeat,
    Timer::Silence,
    Timer::ElectionTimeout,
    Timer::Announce,
];

/// A live node's state: `Ring`'s fields, and its armed timers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    best: Option<Id>,
    coordinator: Option<Id>,
    lap: u8,
    pending: Option<(Id, Hop)>,
    life: u8,
    round: u8,
    /// The leader whose `Alive`s this node times.
    watching: Option<Id>,
    /// The node found silent in this election.
    silent: Option<Id>,
    /// Each timer's deadline, if armed.
    timers: [Option<Ms>; 5],
}

/// One node slot.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// Not booted yet.
    Unbooted,
    /// Crashed after `boots` boots (the ring persists nothing).
    Down {
        /// Boots so far.
        boots: u8,
    },
    /// Running.
    Up(Node),
}

/// A global state: the nodes, the messages in flight (a sorted multiset), the faults left.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct World {
    slots: Vec<Slot>,
    net: Vec<Envelope>,
    crashes: u8,
    recoveries: u8,
}

/// A choice from a state, as the explorer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A node boots for the first time.
    Start(Id),
    /// The copy of this message (sender, receiver) due first is delivered (dropped if its
    /// receiver is down).
    Deliver(Id, Id, Msg),
    /// A timer fires.
    Fire(Id, Timer),
    /// A live node crashes.
    Crash(Id),
    /// A crashed node boots again.
    Recover(Id),
}

/// The model: `n` nodes, a fault budget, the epoch bound.
#[derive(Clone, Debug)]
pub struct RingModel {
    /// Nodes.
    pub n: u8,
    /// Crashes allowed on a path.
    pub crashes: u8,
    /// Recoveries allowed on a path.
    pub recoveries: u8,
    /// States with a live node's `lap + round` above this are not expanded.
    pub max_epoch: u8,
}

/// What a handler does to one node, with the network beside it.
struct Cx<'a> {
    n: u8,
    me: Id,
    node: &'a mut Node,
    out: &'a mut Vec<Envelope>,
}

impl Cx<'_> {
    fn next_after(&self, id: Id) -> Id {
        (id + 1) % self.n
    }

    /// `Ring`'s durations: a lap is `n` timeouts, the election timeout three laps and a
    /// timeout, the announcement period ten heartbeats (at least a lap).
    fn arm(&mut self, t: Timer) {
        let lap = Ms::from(self.n) * TIMEOUT;
        self.node.timers[t as usize] = Some(match t {
            Timer::HopTimeout => TIMEOUT,
            Timer::Heartbeat => HEARTBEAT,
            Timer::Silence => SILENCE,
            Timer::ElectionTimeout => 3 * lap + TIMEOUT,
            Timer::Announce => (10 * HEARTBEAT).max(lap),
        });
    }

    fn cancel(&mut self, t: Timer) {
        self.node.timers[t as usize] = None;
    }

    fn send(&mut self, to: Id, msg: Msg) {
        self.out.push(Envelope {
            from: self.me,
            to,
            msg,
            due: MAX_DELAY,
        });
    }

    fn is_participant(&self) -> bool {
        self.node.best.is_some()
    }

    fn is_leader(&self) -> bool {
        is_leader(self.me, self.node)
    }

    fn is_follower(&self) -> bool {
        !self.is_participant() && self.node.coordinator.is_some_and(|c| c != self.me)
    }

    /// Announcements skip the node found silent; candidacies do not.
    fn send_hop(&mut self, hop: Hop) {
        let skip = self
            .node
            .silent
            .filter(|_| matches!(hop, Hop::Coordinator { .. }));
        let to = self.next_node(skip);
        self.send_hop_to(to, hop);
    }

    fn next_node(&self, skip: Option<Id>) -> Id {
        let next = self.next_after(self.me);
        if Some(next) == skip {
            self.next_after(next)
        } else {
            next
        }
    }

    fn watch(&mut self, leader: Id) {
        self.node.watching = Some(leader);
        self.arm(Timer::Silence);
    }

    fn heard_of(&mut self, node: Id) {
        if self.node.silent == Some(node) {
            self.node.silent = None;
        }
    }

    fn on_silence(&mut self) {
        let Some(leader) = self.node.watching.take() else {
            return;
        };
        self.node.silent = Some(leader);
        if self.is_follower() {
            self.become_participant();
            self.stand(Some(leader));
        } else if self.node.pending.is_some_and(|(to, _)| to == leader) {
            self.cancel(Timer::HopTimeout);
            self.on_hop_timeout();
        }
    }

    fn send_hop_to(&mut self, to: Id, hop: Hop) {
        if to == self.me {
            if matches!(hop, Hop::Election { .. }) {
                self.become_leader();
            }
            return;
        }
        if matches!(hop, Hop::Coordinator { leader, .. } if leader == to) {
            return;
        }
        self.send(to, Msg::Hop(hop));
        if self
            .node
            .pending
            .is_none_or(|(_, p)| hop.rank() >= p.rank())
        {
            self.node.pending = Some((to, hop));
            self.arm(Timer::HopTimeout);
        }
    }

    fn start_election(&mut self) {
        self.become_participant();
        self.stand(None);
    }

    fn stand(&mut self, skip: Option<Id>) {
        self.node.round = self.node.round.saturating_add(1);
        self.node.best = Some(self.me);
        let hop = Hop::Election {
            candidate: self.me,
            life: self.node.life,
            round: self.node.round,
        };
        let to = self.next_node(skip);
        self.send_hop_to(to, hop);
    }

    fn forward_candidate(&mut self, hop: Hop) {
        if let Hop::Election { candidate, .. } = hop {
            self.node.best = Some(candidate);
        }
        self.send_hop(hop);
    }

    fn become_participant(&mut self) {
        if self.is_leader() {
            self.cancel(Timer::Announce);
            self.cancel(Timer::Heartbeat);
        }
        self.node.coordinator = None;
        self.arm(Timer::ElectionTimeout);
    }

    fn become_leader(&mut self) {
        self.node.best = None;
        self.node.coordinator = Some(self.me);
        self.node.watching = None;
        self.cancel(Timer::Silence);
        self.cancel(Timer::ElectionTimeout);
        self.arm(Timer::Heartbeat);
        self.announce();
        self.node.silent = None;
    }

    fn announce(&mut self) {
        self.node.lap = self.node.lap.saturating_add(1);
        self.arm(Timer::Announce);
        let hop = Hop::Coordinator {
            leader: self.me,
            lap: self.node.lap,
        };
        self.send_hop(hop);
    }

    fn on_election(&mut self, hop: Hop) {
        let Hop::Election {
            candidate,
            life,
            round,
        } = hop
        else {
            return;
        };
        self.heard_of(candidate);
        if candidate == self.me {
            // Only this life's latest candidacy coming back wins.
            if self.node.best == Some(self.me) && (life, round) == (self.node.life, self.node.round)
            {
                self.become_leader();
            }
            return;
        }
        let better = candidate.max(self.me);
        match self.node.best {
            Some(best) if better <= best => {}
            Some(_) if better == candidate => self.forward_candidate(hop),
            Some(_) => self.stand(None),
            None if self.is_leader() && candidate < self.me => self.announce(),
            None => {
                self.become_participant();
                if better == candidate {
                    self.forward_candidate(hop);
                } else {
                    self.stand(None);
                }
            }
        }
    }

    fn on_coordinator(&mut self, leader: Id, lap: u8) {
        if leader == self.me {
            return;
        }
        self.heard_of(leader);
        let adopt = match self.node.coordinator {
            _ if self.is_participant() => leader > self.me,
            Some(current) if current == leader => lap != self.node.lap,
            Some(current) => leader > current,
            None => true,
        };
        if !adopt {
            return;
        }
        if self.is_leader() {
            self.cancel(Timer::Announce);
            self.cancel(Timer::Heartbeat);
        }
        self.node.best = None;
        self.node.coordinator = Some(leader);
        self.node.lap = lap;
        self.cancel(Timer::ElectionTimeout);
        self.watch(leader);
        self.send_hop(Hop::Coordinator { leader, lap });
        self.node.silent = None;
    }

    fn on_hop_timeout(&mut self) {
        let Some((silent, hop)) = self.node.pending.take() else {
            return;
        };
        if self.is_participant() {
            self.node.silent = Some(silent);
        }
        if matches!(hop, Hop::Election { candidate, .. } if candidate == silent) {
            return;
        }
        let next = self.next_after(silent);
        self.send_hop_to(next, hop);
    }

    fn on_message(&mut self, from: Id, msg: Msg) {
        self.heard_of(from);
        match msg {
            Msg::Hop(hop) => {
                self.send(from, Msg::Ack(hop));
                match hop {
                    Hop::Election { .. } => self.on_election(hop),
                    Hop::Coordinator { leader, lap } => self.on_coordinator(leader, lap),
                }
            }
            Msg::Ack(hop) => {
                if self.node.pending == Some((from, hop)) {
                    self.node.pending = None;
                    self.cancel(Timer::HopTimeout);
                }
            }
            Msg::Alive => {
                if self.node.watching == Some(from) {
                    self.watch(from);
                }
            }
        }
    }

    fn on_timer(&mut self, timer: Timer) {
        self.cancel(timer);
        match timer {
            Timer::HopTimeout => self.on_hop_timeout(),
            Timer::Heartbeat => {
                if self.is_leader() {
                    let me = self.me;
                    for to in (0..self.n).filter(|&to| to != me) {
                        self.send(to, Msg::Alive);
                    }
                    self.arm(Timer::Heartbeat);
                }
            }
            Timer::Silence => self.on_silence(),
            Timer::ElectionTimeout => {
                if self.is_participant() {
                    self.start_election();
                }
            }
            Timer::Announce => {
                if self.is_leader() {
                    self.announce();
                }
            }
        }
    }
}

fn is_leader(me: Id, node: &Node) -> bool {
    node.best.is_none() && node.coordinator == Some(me)
}

impl World {
    fn up(&self) -> impl Iterator<Item = (Id, &Node)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| match s {
            Slot::Up(node) => Some((i as Id, node)),
            _ => None,
        })
    }

    /// The deadline that may fire now, if any: the earliest of every live node's timers,
    /// unless a message in flight is due before it.
    fn next_deadline(&self) -> Option<Ms> {
        let earliest = self.up().flat_map(|(_, n)| n.timers).flatten().min()?;
        let due = self.net.iter().map(|e| e.due).min().unwrap_or(Ms::MAX);
        (earliest <= due).then_some(earliest)
    }

    /// Moves the clock on by `d`: every deadline and due time comes `d` nearer.
    fn advance(&mut self, d: Ms) {
        for slot in &mut self.slots {
            if let Slot::Up(node) = slot {
                for t in node.timers.iter_mut().flatten() {
                    *t -= d;
                }
            }
        }
        for e in &mut self.net {
            e.due = e.due.saturating_sub(d);
        }
    }

    /// Runs `f` on live node `i` and puts what it sent in flight.
    fn with_node(&mut self, n: u8, i: Id, f: impl FnOnce(&mut Cx<'_>)) {
        let Slot::Up(node) = &mut self.slots[i as usize] else {
            return;
        };
        let mut out = Vec::new();
        f(&mut Cx {
            n,
            me: i,
            node,
            out: &mut out,
        });
        self.net.extend(out);
        self.net.sort_unstable();
    }

    fn boot(&mut self, n: u8, i: Id, boots: u8) {
        self.slots[i as usize] = Slot::Up(Node {
            best: None,
            coordinator: None,
            lap: 0,
            pending: None,
            life: boots + 1,
            round: 0,
            watching: None,
            silent: None,
            timers: [None; 5],
        });
        self.with_node(n, i, |cx| cx.start_election());
    }
}

impl Model for RingModel {
    type State = World;
    type Action = Action;

    fn init_states(&self) -> Vec<World> {
        vec![World {
            slots: vec![Slot::Unbooted; self.n as usize],
            net: Vec::new(),
            crashes: self.crashes,
            recoveries: self.recoveries,
        }]
    }

    fn actions(&self, w: &World, actions: &mut Vec<Action>) {
        // Past the epoch bound: checked, not expanded.
        if w.up()
            .any(|(_, n)| u16::from(n.lap) + u16::from(n.round) > u16::from(self.max_epoch))
        {
            return;
        }
        let mut unbooted = false;
        for (i, s) in w.slots.iter().enumerate() {
            if *s == Slot::Unbooted {
                unbooted = true;
                actions.push(Action::Start(i as Id));
            }
        }
        // One delivery per distinct message; it takes the copy due first.
        let mut last = None;
        for e in &w.net {
            let key = (e.from, e.to, e.msg);
            if last != Some(key) {
                actions.push(Action::Deliver(e.from, e.to, e.msg));
                last = Some(key);
            }
        }
        // One clock: no timer before every node has booted, then the earliest deadline only.
        if let Some(d) = w.next_deadline().filter(|_| !unbooted) {
            for (i, node) in w.up() {
                for t in TIMERS {
                    if node.timers[t as usize] == Some(d) {
                        actions.push(Action::Fire(i, t));
                    }
                }
            }
        }
        for (i, s) in w.slots.iter().enumerate() {
            match s {
                Slot::Up(_) if w.crashes > 0 => actions.push(Action::Crash(i as Id)),
                Slot::Down { .. } if w.recoveries > 0 => actions.push(Action::Recover(i as Id)),
                _ => {}
            }
        }
    }

    fn next_state(&self, w: &World, action: Action) -> Option<World> {
        let mut w = w.clone();
        let n = self.n;
        match action {
            Action::Start(i) => w.boot(n, i, 0),
            Action::Deliver(from, to, msg) => {
                // Sorted by due time within one message: the first match is due first.
                let k = w
                    .net
                    .iter()
                    .position(|e| (e.from, e.to, e.msg) == (from, to, msg))?;
                w.net.remove(k);
                w.with_node(n, to, |cx| cx.on_message(from, msg));
            }
            Action::Fire(i, t) => {
                let Slot::Up(node) = &w.slots[i as usize] else {
                    return None;
                };
                let d = node.timers[t as usize]?;
                w.advance(d);
                w.with_node(n, i, |cx| cx.on_timer(t));
            }
            Action::Crash(i) => {
                let Slot::Up(node) = &w.slots[i as usize] else {
                    return None;
                };
                w.slots[i as usize] = Slot::Down { boots: node.life };
                w.crashes -= 1;
            }
            Action::Recover(i) => {
                let Slot::Down { boots } = w.slots[i as usize] else {
                    return None;
                };
                w.recoveries -= 1;
                w.boot(n, i, boots);
            }
        }
        Some(w)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![Property::always("at most one leader", |_, w: &World| {
            w.up().filter(|&(i, n)| is_leader(i, n)).count() <= 1
        })]
    }
}
