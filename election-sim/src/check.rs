//! Invariant checkers: the safety properties checked at every status change and the liveness
//! property checked once the network has been calm long enough.
//!
//! When each invariant is checked:
//! - [`Invariant::UniqueLeader`] (Stoller): at every status change, for the whole run. No two live
//!   nodes are `Normal` leaders of the same group / election id. Nodes without a group id are not
//!   covered (Bully and Ring report none; their leaders are checked by the stable-phase checks).
//! - [`Invariant::GroupAgreement`] (Garcia-Molina Assertion 1): at every status change, for the
//!   whole run. Two live nodes in `Reorganization` or `Normal` with the same group id have the
//!   same coordinator. Group ids are unique per creator and counter, so no timing assumption is
//!   needed.
//! - [`Invariant::Liveness`] and [`Invariant::Validity`]: once, at the check time
//!   (`calm + settle`, see [`crate::sim`]). Every live node is `Normal`, all follow one live
//!   coordinator that considers itself the leader, with one group id; for Bully and asynchronous
//!   Bully that coordinator is the highest live node.
//! - [`Invariant::Stability`]: at every status change after the check time. The synchronous
//!   assumptions hold (no partition, loss or delay beyond `max_delay`), so Garcia-Molina's Bully
//!   agreement ("any two Normal nodes agree") must hold; we check the stronger fact that no live
//!   node leaves the agreed state at all.

use std::collections::BTreeMap;
use std::fmt;

use election_core::{GroupId, NodeId, State, Status, Time};
use serde::Serialize;

/// The properties the simulator checks.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Invariant {
    /// Two nodes are Normal leaders of one election / group (Stoller's safety).
    UniqueLeader,
    /// Two nodes in one group follow different coordinators (Garcia-Molina Assertion 1).
    GroupAgreement,
    /// The cluster did not settle on one leader in time.
    Liveness,
    /// The settled leader is not the highest-priority live node (Bully, asynchronous Bully).
    Validity,
    /// A node left the settled state although the network stayed calm.
    Stability,
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Invariant::UniqueLeader => "unique-leader",
            Invariant::GroupAgreement => "group-agreement",
            Invariant::Liveness => "liveness",
            Invariant::Validity => "validity",
            Invariant::Stability => "stability",
        })
    }
}

/// A broken invariant: when, which nodes, which property, and the seed that reproduces it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Violation {
    /// The run's seed.
    pub seed: u64,
    /// Virtual time of the violation, microseconds.
    pub time: Time,
    /// The property.
    pub invariant: Invariant,
    /// The nodes involved.
    pub nodes: Vec<NodeId>,
    /// What was seen.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes: Vec<String> = self.nodes.iter().map(ToString::to_string).collect();
        write!(
            f,
            "seed {}: {} violated at t={}us by [{}]: {}",
            self.seed,
            self.invariant,
            self.time,
            nodes.join(", "),
            self.detail
        )
    }
}

/// One line describing a node's status, for violation details.
pub fn describe(id: NodeId, s: &Status) -> String {
    let coord = s.coordinator.map_or("-".into(), |c| c.to_string());
    let group = s.group.map_or("-".into(), |g| g.to_string());
    format!("{id}:{}/{} coord={coord} group={group}", s.state, s.phase)
}

/// Incremental safety state: which leaders and which coordinators each group id has right now.
/// Updating it costs O(log groups) per status change, so checking every step stays cheap.
#[derive(Default)]
pub(crate) struct Safety {
    leaders: BTreeMap<GroupId, NodeId>,
    coordinators: BTreeMap<GroupId, BTreeMap<NodeId, u32>>,
}

fn in_group(s: &Status) -> Option<(GroupId, NodeId)> {
    match (s.state, s.group, s.coordinator) {
        (State::Reorganization | State::Normal, Some(g), Some(c)) => Some((g, c)),
        _ => None,
    }
}

/// Which invariant a status change broke, with the other node involved.
pub(crate) type Broken = (Invariant, NodeId, String);

impl Safety {
    /// Records that `id` went from `old` to `new` (a crash or leave is a change to `Down`).
    /// Returns the broken invariant, if any, naming the other node.
    pub(crate) fn change(&mut self, id: NodeId, old: &Status, new: &Status) -> Option<Broken> {
        if let Some(g) = old.group.filter(|_| old.is_leader(id)) {
            if self.leaders.get(&g) == Some(&id) {
                self.leaders.remove(&g);
            }
        }
        if let Some((g, c)) = in_group(old) {
            if let Some(coords) = self.coordinators.get_mut(&g) {
                if let Some(count) = coords.get_mut(&c) {
                    *count -= 1;
                    if *count == 0 {
                        coords.remove(&c);
                    }
                }
                if coords.is_empty() {
                    self.coordinators.remove(&g);
                }
            }
        }
        let mut broken = None;
        if let Some(g) = new.group.filter(|_| new.is_leader(id)) {
            match self.leaders.get(&g) {
                Some(&other) if other != id => {
                    broken = Some((
                        Invariant::UniqueLeader,
                        other,
                        format!("both {id} and {other} are Normal leaders of {g}"),
                    ));
                }
                _ => {
                    self.leaders.insert(g, id);
                }
            }
        }
        if let Some((g, c)) = in_group(new) {
            let coords = self.coordinators.entry(g).or_default();
            *coords.entry(c).or_default() += 1;
            let other = coords.keys().find(|&&o| o != c).copied();
            if let (None, Some(other)) = (&broken, other) {
                broken = Some((
                    Invariant::GroupAgreement,
                    other,
                    format!("{id} follows {c} in group {g}, another member follows {other}"),
                ));
            }
        }
        broken
    }
}
