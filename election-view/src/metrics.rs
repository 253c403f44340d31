//! What a run shows about leadership: how long the cluster had no agreed leader, how often the
//! leader changed, how many elections started, how many messages of each type were sent. The
//! same numbers for a simulated run and for a real one, so `sim compare` and the logserver agree.

use std::collections::BTreeMap;

use election_core::State;
use serde::{Deserialize, Serialize};

use crate::run::{EventKind, NodeIx, NodeStatus, Run, Time};

/// Leadership figures of one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Measures {
    /// From the first event to the end.
    pub duration_us: Time,
    /// Time without an agreed leader (see [`agreed_leader`]).
    pub unavailable_us: Time,
    /// How often an agreed leader was established that differs from the previous one (the first
    /// leader is not a change).
    pub leader_changes: u64,
    /// Transitions into `Election` (a node booting into `Election` counts, as in the simulator's
    /// statistics).
    pub elections_started: u64,
    /// Messages sent, by type (each copy of a broadcast counts).
    pub messages: BTreeMap<String, u64>,
    /// The agreed leader at the end, if any.
    pub final_leader: Option<NodeIx>,
}

/// The leader the cluster agrees on, given each node's status (`None`: never started): every
/// node that is not `Down` is `Normal`, with one coordinator and group, and that coordinator is
/// itself such a node leading. `None` with no live node, or during any disagreement — two sides of
/// a partition with a leader each have no agreed leader.
pub fn agreed_leader(statuses: &[Option<&NodeStatus>]) -> Option<NodeIx> {
    let mut live = statuses
        .iter()
        .flatten()
        .filter(|s| s.state != State::Down)
        .peekable();
    let first = *live.peek()?;
    let leader = first.coordinator?;
    let agree = live.all(|s| {
        s.state == State::Normal && s.coordinator == Some(leader) && s.group == first.group
    });
    let leads = statuses
        .get(leader as usize)
        .copied()
        .flatten()
        .is_some_and(|s| s.is_leader(leader));
    (agree && leads).then_some(leader)
}

impl Measures {
    /// Measures `run`, from its first event to [`Run::end`]. Statuses are evaluated after all
    /// events of one instant, so changes within an instant cost no availability.
    pub fn of(run: &Run) -> Measures {
        let mut m = Measures::default();
        let n = run.header.nodes.len();
        let mut status: Vec<Option<NodeStatus>> = vec![None; n];
        for (ix, s) in &run.header.initial {
            if let Some(slot) = status.get_mut(*ix as usize) {
                *slot = Some(s.clone());
            }
        }
        let start = run.start();
        let end = run.end();
        m.duration_us = end - start;
        let mut leader: Option<NodeIx> = None;
        let mut last_leader: Option<NodeIx> = None;
        let mut since = start;
        let mut events = run.events.iter().peekable();
        while let Some(e) = events.next() {
            match &e.kind {
                EventKind::Send { kind, .. } => *m.messages.entry(kind.clone()).or_default() += 1,
                EventKind::Status { node, status: new } => {
                    if let Some(slot) = status.get_mut(*node as usize) {
                        let was = slot.as_ref().map_or(State::Down, |s| s.state);
                        if new.state == State::Election && was != State::Election {
                            m.elections_started += 1;
                        }
                        *slot = Some(new.clone());
                    }
                }
                _ => {}
            }
            if events.peek().is_some_and(|next| next.t == e.t) {
                continue;
            }
            let now: Vec<Option<&NodeStatus>> = status.iter().map(Option::as_ref).collect();
            let agreed = agreed_leader(&now);
            if agreed != leader {
                if leader.is_none() {
                    m.unavailable_us += e.t - since;
                }
                if let Some(new) = agreed {
                    if last_leader.is_some_and(|old| old != new) {
                        m.leader_changes += 1;
                    }
                    last_leader = Some(new);
                }
                leader = agreed;
                since = e.t;
            }
        }
        if leader.is_none() {
            m.unavailable_us += end.saturating_sub(since);
        }
        m.final_leader = leader;
        m
    }
}
