//! **Highest heard**: a small leader election written the way a user of this toolkit writes
//! one — only against `election-core`'s public API — to show what an algorithm gets for free:
//! the hand-driven harness, the simulator with its fault injection and checkers, exhaustive
//! sweeps, and real UDP nodes on the logserver's status page.
//!
//! Every node broadcasts `Alive` every heartbeat and follows the highest node it heard from
//! within the last `expiry` heartbeats (itself included). No elections, no rounds: a crashed
//! leader is forgotten when its `Alive`s stop, a higher node that joins or recovers is followed
//! as soon as it is heard.
//!
//! What it guarantees — and what it does not, which is the interesting part: once the network
//! is calm, within `(expiry + 1)` heartbeats plus a delay, every live node follows the highest
//! live node (liveness and validity). But nodes learn of a crash at different moments, so two
//! nodes can follow different leaders for a while: it does **not** keep Garcia-Molina's
//! Assertion 1, and it declares so. (Claim it, and `sim check` finds the instant it breaks.)

use std::collections::BTreeMap;

use election_core::{
    Config, Context, Explorable, Kind, Membership, Model, NodeId, Options, Out, Properties,
    Protocol, Reclock, State, Status, Time, Timing,
};
use serde::{Deserialize, Serialize};

/// The protocol's options: how many heartbeats of silence make a node forget a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HighestHeardOptions {
    /// Heartbeats of silence after which a peer is forgotten.
    pub expiry: u64,
}

impl Default for HighestHeardOptions {
    fn default() -> Self {
        HighestHeardOptions { expiry: 3 }
    }
}

impl Options for HighestHeardOptions {
    const HELP: &'static str =
        "expiry=N  heartbeats of silence before a peer is forgotten (default 3)";

    fn validate(&self, _timing: &Timing) -> Result<(), (&'static str, String)> {
        if self.expiry == 0 {
            return Err(("expiry", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// Its configuration: the common timing plus [`HighestHeardOptions`].
pub type HighestHeardConfig = Config<HighestHeardOptions>;

/// The one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Msg {
    /// "I am alive", every heartbeat.
    Alive,
}

impl Kind for Msg {
    fn kind(&self) -> &'static str {
        "Alive"
    }
}

/// The one timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Timer {
    /// Time to say `Alive` and look at who is still heard.
    Heartbeat,
}

impl Kind for Timer {
    fn kind(&self) -> &'static str {
        "Heartbeat"
    }
}

/// One node.
#[derive(Clone, Debug, Hash)]
pub struct HighestHeard {
    config: HighestHeardConfig,
    me: NodeId,
    /// When each peer was last heard from.
    heard: BTreeMap<NodeId, Time>,
    leader: Option<NodeId>,
}

impl HighestHeard {
    /// How long a peer stays heard without a new `Alive`.
    fn expiry(&self) -> Time {
        self.config
            .timing
            .heartbeat
            .saturating_mul(self.config.options.expiry)
    }

    /// Forgets peers silent for `expiry` heartbeats (and members that left), then follows the
    /// highest of those left and itself.
    fn elect(&mut self, cx: &Context<'_>) {
        let expiry = self.expiry();
        let now = cx.now;
        self.heard
            .retain(|&p, &mut at| cx.members.contains(p) && now.saturating_sub(at) <= expiry);
        self.leader = self.heard.keys().copied().chain([self.me]).max();
    }
}

/// For `election sim explore`: the last-heard times are only compared as "at most `expiry`
/// heartbeats ago", so older ones are all alike.
impl Explorable for HighestHeard {
    fn reclock(&mut self, clock: Reclock) {
        let horizon = self.expiry().saturating_add(1);
        for at in self.heard.values_mut() {
            *at = clock.past(*at, horizon);
        }
    }
}

impl Protocol for HighestHeard {
    const NAME: &'static str = "highest-heard";
    type Options = HighestHeardOptions;
    type Msg = Msg;
    type Timer = Timer;

    fn new(config: &HighestHeardConfig) -> Self {
        HighestHeard {
            config: *config,
            me: NodeId(0),
            heard: BTreeMap::new(),
            leader: None,
        }
    }

    /// Asynchronous model; no Assertion 1 (see the crate docs); validity: the highest live node
    /// wins once the network is calm.
    fn properties(_config: &HighestHeardConfig) -> Properties {
        Properties {
            model: Model::Asynchronous,
            agreement: None,
            unique_leader: None,
            highest_wins: true,
            quorum: false,
            membership: true,
        }
    }

    /// A dead node's last `Alive` is at most `max_delay` old when it arrives; it is forgotten
    /// `expiry` heartbeats later, at the next heartbeat after that; a live node's `Alive`
    /// reaches everyone within a heartbeat and a delay. So `(expiry + 2)` heartbeats and a delay.
    fn liveness_bound(config: &HighestHeardConfig, _n: usize) -> Time {
        let h = config.timing.heartbeat;
        h.saturating_mul(config.options.expiry + 2)
            .saturating_add(Self::max_delay(config))
    }

    fn on_start(
        &mut self,
        cx: &mut Context<'_>,
        _persisted: Option<&[u8]>,
        out: &mut Out<Msg, Timer>,
    ) {
        self.me = cx.id;
        self.on_timer(cx, Timer::Heartbeat, out);
    }

    fn on_message(
        &mut self,
        cx: &mut Context<'_>,
        from: NodeId,
        _msg: Msg,
        _out: &mut Out<Msg, Timer>,
    ) {
        if from != self.me && cx.members.contains(from) {
            self.heard.insert(from, cx.now);
            self.elect(cx);
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, _timer: Timer, out: &mut Out<Msg, Timer>) {
        out.broadcast(Msg::Alive);
        out.set_timer(Timer::Heartbeat, self.config.timing.heartbeat);
        self.elect(cx);
    }

    fn on_membership(
        &mut self,
        cx: &mut Context<'_>,
        _change: Membership,
        _out: &mut Out<Msg, Timer>,
    ) {
        self.elect(cx);
    }

    fn status(&self) -> Status {
        match self.leader {
            None => Status::down(),
            Some(leader) => Status {
                state: State::Normal,
                coordinator: Some(leader),
                phase: if leader == self.me {
                    "Leading"
                } else {
                    "Following"
                },
                ..Status::down()
            },
        }
    }
}
