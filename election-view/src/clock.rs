//! Vector clocks of a run, computed from its send/deliver pairs (Fidge/Mattern): every
//! node-local event ticks its node's own entry; a delivery first merges the clock its message was
//! sent with. Drops and duplicates happen in the network and stamp nothing; a lost message simply
//! has no receive.

use std::collections::BTreeMap;

use crate::run::{EventKind, MsgId, NodeIx, Run};

/// A vector clock: node → number of its events so far that happened before (or are) this one.
/// Nodes with no such event are absent, never 0.
pub type VectorClock = BTreeMap<NodeIx, u64>;

/// The clock of one node-local event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Index of the event in [`Run::events`].
    pub event: usize,
    /// The node it happened on.
    pub node: NodeIx,
    /// Its clock.
    pub clock: VectorClock,
}

/// The nodes on which an event is local: the sender of a send, the receiver of a delivery, the
/// node of a lifecycle, timer or status event, each node a mark names. Network-only events
/// (drops, duplicates) and marks on the whole cluster are local to no node.
pub fn local_nodes(kind: &EventKind) -> Vec<NodeIx> {
    match kind {
        EventKind::Start { node }
        | EventKind::Crash { node }
        | EventKind::Recover { node }
        | EventKind::Join { node }
        | EventKind::Leave { node }
        | EventKind::Timer { node, .. }
        | EventKind::Status { node, .. } => vec![*node],
        EventKind::Send { from, .. } => vec![*from],
        EventKind::Deliver { to, .. } => vec![*to],
        EventKind::Duplicate { .. } | EventKind::Drop { .. } => Vec::new(),
        EventKind::Mark { nodes, .. } => nodes.clone(),
    }
}

/// The clock of every node-local event of `run`, in event order (an event local to several
/// nodes is stamped once per node, in the order [`local_nodes`] lists them). A delivery whose send
/// is not in the run (left out by a bound) only ticks.
pub fn vector_clocks(run: &Run) -> Vec<Stamp> {
    let mut stamps = Vec::new();
    each_stamp(run, |event, node, clock| {
        stamps.push(Stamp {
            event,
            node,
            clock: clock.clone(),
        })
    });
    stamps
}

/// Calls `f(event index, node, clock)` for every node-local event, as [`vector_clocks`] lists
/// them, without keeping the clocks (an exporter writes each one as it comes).
pub(crate) fn each_stamp(run: &Run, mut f: impl FnMut(usize, NodeIx, &VectorClock)) {
    let mut now: BTreeMap<NodeIx, VectorClock> = BTreeMap::new();
    let mut sent: BTreeMap<MsgId, VectorClock> = BTreeMap::new();
    for (i, event) in run.events.iter().enumerate() {
        for node in local_nodes(&event.kind) {
            let clock = now.entry(node).or_default();
            if let EventKind::Deliver { id, .. } = &event.kind {
                if let Some(at_send) = sent.get(id) {
                    for (&n, &c) in at_send {
                        let mine = clock.entry(n).or_default();
                        *mine = (*mine).max(c);
                    }
                }
            }
            *clock.entry(node).or_default() += 1;
            if let EventKind::Send { id, .. } = &event.kind {
                sent.insert(*id, clock.clone());
            }
            f(i, node, clock);
        }
    }
}

/// Whether `a` happened before or is `b`: every entry of `a` is at most `b`'s.
pub fn dominated_by(a: &VectorClock, b: &VectorClock) -> bool {
    a.iter()
        .all(|(n, &c)| b.get(n).is_some_and(|&theirs| theirs >= c))
}
