//! Small protocols for testing the engine independently of the real algorithms.
#![allow(dead_code)]

use std::collections::BTreeMap;

use election_core::{
    Config, Context, GroupId, Kind, Membership, Model, NoOptions, NodeId, Out, Properties,
    Protocol, Scope, State, Status, Time,
};
use serde::{Deserialize, Serialize};

/// Configuration of the test protocols: the common timing, no options.
pub type BeaconConfig = Config<NoOptions>;

type BeaconOut = Out<BeaconMsg, BeaconTimer>;

/// The beacon's one-way delay bound: half the timeout.
fn beacon_max_delay(cfg: &BeaconConfig) -> Time {
    cfg.timing.timeout / 2
}

/// A dead leader is forgotten `EXPIRY` heartbeats after its last beacon, noticed at the next
/// tick, and the news travels one delay.
fn beacon_liveness_bound(cfg: &BeaconConfig) -> Time {
    (EXPIRY + 2) * cfg.timing.heartbeat + beacon_max_delay(cfg)
}

const EXPIRY: u64 = 3;

/// Every node broadcasts `Alive` each heartbeat and follows the highest node heard from within
/// the last `EXPIRY` heartbeats (itself included). Correct under the simulator's calm network.
/// With `forgetful == false` a broken variant that never forgets a dead peer.
#[derive(Debug)]
pub struct Beacon {
    cfg: BeaconConfig,
    seen: BTreeMap<NodeId, Time>,
    leader: Option<NodeId>,
    me: NodeId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BeaconMsg {
    Alive,
}

impl Kind for BeaconMsg {
    fn kind(&self) -> &'static str {
        "Alive"
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum BeaconTimer {
    Tick,
}

impl Kind for BeaconTimer {
    fn kind(&self) -> &'static str {
        "Tick"
    }
}

/// Behaviour switch shared by the correct and the broken beacon.
pub trait Forget: Send + 'static {
    const NAME: &'static str;
    const FORGETS: bool;
}

pub struct Correct;
impl Forget for Correct {
    const NAME: &'static str = "beacon";
    const FORGETS: bool = true;
}

pub struct NeverForgets;
impl Forget for NeverForgets {
    const NAME: &'static str = "beacon-never-forgets";
    const FORGETS: bool = false;
}

pub struct BeaconP<F: Forget>(pub Beacon, std::marker::PhantomData<F>);

pub type CorrectBeacon = BeaconP<Correct>;
pub type BrokenBeacon = BeaconP<NeverForgets>;

impl<F: Forget> Protocol for BeaconP<F> {
    const NAME: &'static str = F::NAME;
    type Options = NoOptions;
    type Msg = BeaconMsg;
    type Timer = BeaconTimer;

    fn new(cfg: &BeaconConfig) -> Self {
        BeaconP(
            Beacon {
                cfg: *cfg,
                seen: BTreeMap::new(),
                leader: None,
                me: NodeId(0),
            },
            std::marker::PhantomData,
        )
    }

    /// Claims liveness and validity only: nodes follow the highest they heard from, so they
    /// disagree while news of a crash spreads.
    fn properties(_cfg: &BeaconConfig) -> Properties {
        Properties {
            model: Model::Asynchronous,
            agreement: None,
            unique_leader: None,
            highest_wins: true,
            quorum: false,
            membership: true,
        }
    }

    fn max_delay(cfg: &BeaconConfig) -> Time {
        beacon_max_delay(cfg)
    }

    fn liveness_bound(cfg: &BeaconConfig, _n: usize) -> Time {
        beacon_liveness_bound(cfg)
    }

    fn on_start(&mut self, cx: &mut Context<'_>, _p: Option<&[u8]>, out: &mut BeaconOut) {
        self.0.me = cx.id;
        out.broadcast(BeaconMsg::Alive);
        out.set_timer(BeaconTimer::Tick, self.0.cfg.timing.heartbeat);
    }

    fn on_message(
        &mut self,
        cx: &mut Context<'_>,
        from: NodeId,
        _m: BeaconMsg,
        _out: &mut BeaconOut,
    ) {
        self.0.seen.insert(from, cx.now);
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, _t: BeaconTimer, out: &mut BeaconOut) {
        let b = &mut self.0;
        if F::FORGETS {
            let horizon = cx.now.saturating_sub(EXPIRY * b.cfg.timing.heartbeat);
            b.seen.retain(|_, &mut t| t >= horizon);
        }
        b.leader = Some(
            b.seen
                .keys()
                .next_back()
                .copied()
                .unwrap_or(cx.id)
                .max(cx.id),
        );
        out.broadcast(BeaconMsg::Alive);
        out.set_timer(BeaconTimer::Tick, b.cfg.timing.heartbeat);
    }

    fn on_membership(&mut self, _cx: &mut Context<'_>, change: Membership, _out: &mut BeaconOut) {
        if let Membership::Left(id) = change {
            self.0.seen.remove(&id);
        }
    }

    fn status(&self) -> Status {
        match self.0.leader {
            None => Status {
                state: State::Election,
                coordinator: None,
                group: None,
                incarnation: None,
                term: None,
                phase: "Election",
            },
            Some(l) => Status {
                state: State::Normal,
                coordinator: Some(l),
                group: None,
                incarnation: None,
                term: None,
                phase: "Normal",
            },
        }
    }
}

/// A broken algorithm: every node crowns itself leader of election `n0#0` without asking anyone.
pub struct SelfCrowning(Option<NodeId>);

impl Protocol for SelfCrowning {
    const NAME: &'static str = "self-crowning";
    type Options = NoOptions;
    type Msg = BeaconMsg;
    type Timer = BeaconTimer;

    fn new(_cfg: &BeaconConfig) -> Self {
        SelfCrowning(None)
    }

    /// Claims what the asynchronous Bully claims, which it breaks at once.
    fn properties(_cfg: &BeaconConfig) -> Properties {
        Properties {
            model: Model::Asynchronous,
            agreement: Some(Scope::Group),
            unique_leader: Some(Scope::Group),
            highest_wins: true,
            quorum: false,
            membership: true,
        }
    }

    fn max_delay(cfg: &BeaconConfig) -> Time {
        beacon_max_delay(cfg)
    }

    fn liveness_bound(cfg: &BeaconConfig, _n: usize) -> Time {
        beacon_liveness_bound(cfg)
    }
    fn on_start(&mut self, cx: &mut Context<'_>, _p: Option<&[u8]>, _out: &mut BeaconOut) {
        self.0 = Some(cx.id);
    }
    fn on_message(
        &mut self,
        _cx: &mut Context<'_>,
        _f: NodeId,
        _m: BeaconMsg,
        _out: &mut BeaconOut,
    ) {
    }
    fn on_timer(&mut self, _cx: &mut Context<'_>, _t: BeaconTimer, _out: &mut BeaconOut) {}
    fn on_membership(&mut self, _cx: &mut Context<'_>, _c: Membership, _out: &mut BeaconOut) {}
    fn status(&self) -> Status {
        Status {
            state: if self.0.is_some() {
                State::Normal
            } else {
                State::Down
            },
            coordinator: self.0,
            group: Some(GroupId {
                origin: NodeId(0),
                counter: 0,
            }),
            incarnation: None,
            term: None,
            phase: "Normal",
        }
    }
}
