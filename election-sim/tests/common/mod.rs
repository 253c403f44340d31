//! Small protocols for testing the engine independently of the real algorithms.
#![allow(dead_code)]

use std::collections::BTreeMap;

use election_core::{
    AlgorithmConfig, ConfigError, Context, GroupId, Kind, Membership, NodeId, Out, Protocol, State,
    Status, Time, Timing,
};
use serde::{Deserialize, Serialize};

/// Timing of the test protocols: the common knobs.
#[derive(Clone, Debug)]
pub struct BeaconConfig(pub Timing);

impl AlgorithmConfig for BeaconConfig {
    const ALGORITHM: &'static str = "test";
    fn from_timing(timing: Timing) -> Self {
        BeaconConfig(timing)
    }
    fn timing(&self) -> Timing {
        self.0
    }
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
    fn max_delay(&self) -> Time {
        self.0.timeout / 2
    }
    /// A dead leader is forgotten `EXPIRY` heartbeats after its last beacon, noticed at the next
    /// tick, and the news travels one delay.
    fn liveness_bound(&self, _n: usize) -> Time {
        (EXPIRY + 2) * self.0.heartbeat + self.max_delay()
    }
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
    type Config = BeaconConfig;
    type Msg = BeaconMsg;
    type Timer = BeaconTimer;

    fn new(cfg: BeaconConfig) -> Result<Self, ConfigError> {
        Ok(BeaconP(
            Beacon {
                cfg,
                seen: BTreeMap::new(),
                leader: None,
                me: NodeId(0),
            },
            std::marker::PhantomData,
        ))
    }

    fn on_start(&mut self, cx: &mut Context<'_>, _p: Option<&[u8]>, out: &mut Out<Self>) {
        self.0.me = cx.id;
        out.broadcast(BeaconMsg::Alive);
        out.set_timer(BeaconTimer::Tick, self.0.cfg.0.heartbeat);
    }

    fn on_message(
        &mut self,
        cx: &mut Context<'_>,
        from: NodeId,
        _m: BeaconMsg,
        _out: &mut Out<Self>,
    ) {
        self.0.seen.insert(from, cx.now);
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, _t: BeaconTimer, out: &mut Out<Self>) {
        let b = &mut self.0;
        if F::FORGETS {
            let horizon = cx.now.saturating_sub(EXPIRY * b.cfg.0.heartbeat);
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
        out.set_timer(BeaconTimer::Tick, b.cfg.0.heartbeat);
    }

    fn on_membership(&mut self, _cx: &mut Context<'_>, change: Membership, _out: &mut Out<Self>) {
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
    type Config = BeaconConfig;
    type Msg = BeaconMsg;
    type Timer = BeaconTimer;

    fn new(_cfg: BeaconConfig) -> Result<Self, ConfigError> {
        Ok(SelfCrowning(None))
    }
    fn on_start(&mut self, cx: &mut Context<'_>, _p: Option<&[u8]>, _out: &mut Out<Self>) {
        self.0 = Some(cx.id);
    }
    fn on_message(
        &mut self,
        _cx: &mut Context<'_>,
        _f: NodeId,
        _m: BeaconMsg,
        _out: &mut Out<Self>,
    ) {
    }
    fn on_timer(&mut self, _cx: &mut Context<'_>, _t: BeaconTimer, _out: &mut Out<Self>) {}
    fn on_membership(&mut self, _cx: &mut Context<'_>, _c: Membership, _out: &mut Out<Self>) {}
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
