//! Invariant checkers: the safety properties checked at every status change and the liveness
//! property checked once the network has been calm long enough. Which ones apply, and under which
//! model, is what the protocol declares in its [`Properties`] — never its name.
//!
//! When each invariant is checked:
//! - [`Invariant::Agreement`] (Garcia-Molina's Assertion 1): at every status change, live nodes
//!   in `Reorganization` or `Normal` within one [`Scope`] follow one coordinator. For
//!   [`Scope::Everyone`] (groupless algorithms: Bully, the ring) only while the run is inside
//!   the algorithm's [`Model`]: for the synchronous model, as long as no fault outside it
//!   (loss, duplication, a partition or blocked link, a delay above `max_delay`, drift above
//!   [`Model::SYNCHRONOUS_DRIFT`]) has happened — the paper guarantees nothing after one, and the
//!   state it leaves behind is not repaired by the calm. For [`Scope::Group`] and [`Scope::Term`]
//!   in every run: group ids and terms are never reused, so no timing assumption is needed. A
//!   node in `Reorganization`/`Normal` without the group id or term its scope needs is itself a
//!   violation (a protocol cannot opt out of its declared check by reporting nothing).
//! - [`Invariant::UniqueLeader`] (Stoller) and [`Invariant::ElectionSafety`] (Raft): at every
//!   status change, for the whole run: no two live nodes are `Normal` leaders of the same group
//!   id (respectively term), where the protocol declares it.
//! - [`Invariant::Liveness`] and [`Invariant::Validity`]: once, at the check time
//!   (`calm + settle`, see [`crate::sim`]). Every live node is `Normal`, all follow one live
//!   coordinator that considers itself the leader, with one group id; where the protocol declares
//!   [`Properties::highest_wins`], that coordinator is the highest live node.
//! - [`Invariant::Stability`]: at every status change after the check time. The network is calm
//!   (no partition, loss or delay beyond `max_delay`), so no live node may leave the agreed state.

use std::collections::BTreeMap;
use std::fmt;

use election_core::{GroupId, NodeId, Properties, Scope, State, Status, Time};
use serde::{Deserialize, Serialize};

/// The properties the simulator checks.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Invariant {
    /// Two nodes in one scope follow different coordinators (Garcia-Molina's Assertion 1).
    Agreement,
    /// Two nodes are Normal leaders of one election / group (Stoller's safety).
    UniqueLeader,
    /// Two nodes are leaders in the same term (Raft's Election Safety).
    ElectionSafety,
    /// The cluster did not settle on one leader in time.
    Liveness,
    /// The settled leader is not the highest-priority live node (where declared).
    Validity,
    /// A node left the settled state although the network stayed calm.
    Stability,
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Invariant::Agreement => "agreement",
            Invariant::UniqueLeader => "unique-leader",
            Invariant::ElectionSafety => "election-safety",
            Invariant::Liveness => "liveness",
            Invariant::Validity => "validity",
            Invariant::Stability => "stability",
        })
    }
}

/// A broken invariant: when, which nodes, which property, and the seed that reproduces it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

/// What a status belongs to under a scope: everyone, its group, or its term.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Key {
    All,
    Group(GroupId),
    Term(u64),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::All => f.write_str("the cluster"),
            Key::Group(g) => write!(f, "group {g}"),
            Key::Term(t) => write!(f, "term {t}"),
        }
    }
}

/// The key of `s` under `scope`, or `None` when the status lacks what the scope needs.
fn key(scope: Scope, s: &Status) -> Option<Key> {
    match scope {
        Scope::Everyone => Some(Key::All),
        Scope::Group => s.group.map(Key::Group),
        Scope::Term => s.term.map(Key::Term),
    }
}

fn in_reorganization_or_normal(s: &Status) -> bool {
    matches!(s.state, State::Reorganization | State::Normal)
}

/// Which invariant a status change broke, the other node involved (if any), and what was seen.
pub(crate) type Broken = (Invariant, Option<NodeId>, String);

/// Incremental safety state: which coordinators the nodes of each scope follow and which leader
/// each scope has right now. Updating it costs O(log keys) per status change, so checking every
/// step stays cheap.
pub(crate) struct Safety {
    properties: Properties,
    /// Per key: coordinator → number of live nodes in Reorganization/Normal following it.
    coordinators: BTreeMap<Key, BTreeMap<NodeId, u32>>,
    /// Per key of the unique-leader scope: the Normal leader.
    leaders: BTreeMap<Key, NodeId>,
}

impl Safety {
    /// Checks what `properties` declare.
    pub(crate) fn new(properties: Properties) -> Self {
        Safety {
            properties,
            coordinators: BTreeMap::new(),
            leaders: BTreeMap::new(),
        }
    }

    fn following(&self, s: &Status) -> Option<(Key, NodeId)> {
        let scope = self.properties.agreement?;
        match (in_reorganization_or_normal(s), s.coordinator) {
            (true, Some(c)) => key(scope, s).map(|k| (k, c)),
            _ => None,
        }
    }

    fn leading(&self, id: NodeId, s: &Status) -> Option<Key> {
        let scope = self.properties.unique_leader?;
        s.is_leader(id).then(|| key(scope, s)).flatten()
    }

    /// Whether a check of `scope` applies now: per group or term always, for everyone only
    /// inside the model (`inside`).
    fn applies(scope: Scope, inside: bool) -> bool {
        scope != Scope::Everyone || inside
    }

    /// Records that `id` went from `old` to `new` (a crash or leave is a change to `Down`).
    /// `inside_model` says whether the run is still inside the protocol's model, which checks over
    /// [`Scope::Everyone`] need.
    /// Returns the broken invariant, if any.
    pub(crate) fn change(
        &mut self,
        id: NodeId,
        old: &Status,
        new: &Status,
        inside_model: bool,
    ) -> Option<Broken> {
        if let Some(k) = self.leading(id, old) {
            if self.leaders.get(&k) == Some(&id) {
                self.leaders.remove(&k);
            }
        }
        if let Some((k, c)) = self.following(old) {
            if let Some(coords) = self.coordinators.get_mut(&k) {
                if let Some(count) = coords.get_mut(&c) {
                    *count -= 1;
                    if *count == 0 {
                        coords.remove(&c);
                    }
                }
                if coords.is_empty() {
                    self.coordinators.remove(&k);
                }
            }
        }
        let mut broken = None;
        let agreement = self.properties.agreement;
        if let Some(scope) =
            agreement.filter(|&scope| in_reorganization_or_normal(new) && key(scope, new).is_none())
        {
            broken = Some((
                Invariant::Agreement,
                None,
                format!(
                    "{} declares agreement per {scope:?} but is {} without one",
                    describe(id, new),
                    new.state
                ),
            ));
        }
        if let Some(scope) = self.properties.unique_leader {
            if new.is_leader(id) && key(scope, new).is_none() {
                broken.get_or_insert((
                    unique_invariant(scope),
                    None,
                    format!("{id} leads without the {scope:?} id its unique-leader check needs"),
                ));
            }
        }
        if let Some(k) = self.leading(id, new) {
            let scope = self.properties.unique_leader.expect("leading");
            match self.leaders.get(&k) {
                Some(&other) if other != id && Self::applies(scope, inside_model) => {
                    broken.get_or_insert((
                        unique_invariant(scope),
                        Some(other),
                        format!("both {id} and {other} are Normal leaders of {k}"),
                    ));
                }
                Some(_) => {}
                None => {
                    self.leaders.insert(k, id);
                }
            }
        }
        if let Some((k, c)) = self.following(new) {
            let coords = self.coordinators.entry(k).or_default();
            *coords.entry(c).or_default() += 1;
            if Self::applies(agreement.expect("following"), inside_model) {
                if let Some(&other) = coords.keys().find(|&&o| o != c) {
                    broken.get_or_insert((
                        Invariant::Agreement,
                        Some(other),
                        format!("{id} follows {c} in {k}, another node follows {other}"),
                    ));
                }
            }
        }
        broken
    }

    /// Whether nodes of `s`'s agreement scope are involved in a violation with `s`: for listing
    /// the nodes of a violation.
    pub(crate) fn same_scope(&self, a: &Status, b: &Status) -> bool {
        let scope = self.properties.agreement.unwrap_or(Scope::Everyone);
        key(scope, a) == key(scope, b)
    }
}

fn unique_invariant(scope: Scope) -> Invariant {
    match scope {
        Scope::Term => Invariant::ElectionSafety,
        Scope::Everyone | Scope::Group => Invariant::UniqueLeader,
    }
}

#[cfg(test)]
mod tests {
    use election_core::Model;

    use super::*;

    fn props(agreement: Option<Scope>, unique_leader: Option<Scope>) -> Properties {
        Properties {
            model: Model::Synchronous,
            agreement,
            unique_leader,
            highest_wins: false,
            quorum: false,
            membership: true,
        }
    }

    fn normal(coordinator: u32, group: Option<(u32, u64)>, term: Option<u64>) -> Status {
        Status {
            state: State::Normal,
            coordinator: Some(NodeId(coordinator)),
            group: group.map(|(origin, counter)| GroupId {
                origin: NodeId(origin),
                counter,
            }),
            term,
            ..Status::down()
        }
    }

    const DOWN: Status = Status::down();

    #[test]
    fn everyone_must_agree_inside_the_model_only() {
        for inside in [true, false] {
            let mut s = Safety::new(props(Some(Scope::Everyone), None));
            assert_eq!(
                s.change(NodeId(0), &DOWN, &normal(2, None, None), inside),
                None
            );
            let broken = s.change(NodeId(1), &DOWN, &normal(1, None, None), inside);
            assert_eq!(
                broken.map(|b| (b.0, b.1)),
                inside.then_some((Invariant::Agreement, Some(NodeId(2))))
            );
        }
        // Crashing the dissenter clears it: agreement again.
        let mut s = Safety::new(props(Some(Scope::Everyone), None));
        s.change(NodeId(0), &DOWN, &normal(2, None, None), true);
        s.change(NodeId(1), &DOWN, &normal(1, None, None), false);
        s.change(NodeId(1), &normal(1, None, None), &DOWN, true);
        assert_eq!(
            s.change(NodeId(3), &DOWN, &normal(2, None, None), true),
            None
        );
    }

    #[test]
    fn groups_and_terms_must_agree_in_every_run_and_ids_cannot_be_left_out() {
        let mut s = Safety::new(props(Some(Scope::Group), Some(Scope::Group)));
        assert_eq!(
            s.change(NodeId(0), &DOWN, &normal(2, Some((2, 1)), None), false),
            None
        );
        assert_eq!(
            s.change(NodeId(1), &DOWN, &normal(3, Some((3, 1)), None), false),
            None
        );
        let b = s
            .change(NodeId(4), &DOWN, &normal(3, Some((2, 1)), None), false)
            .unwrap();
        assert_eq!((b.0, b.1), (Invariant::Agreement, Some(NodeId(2))));
        let b = s
            .change(NodeId(5), &DOWN, &normal(5, None, None), false)
            .unwrap();
        assert_eq!((b.0, b.1), (Invariant::Agreement, None), "{}", b.2);

        let mut s = Safety::new(props(Some(Scope::Term), Some(Scope::Term)));
        assert_eq!(
            s.change(NodeId(1), &DOWN, &normal(1, None, Some(4)), false),
            None
        );
        let b = s
            .change(NodeId(2), &DOWN, &normal(2, None, Some(4)), false)
            .unwrap();
        assert_eq!((b.0, b.1), (Invariant::ElectionSafety, Some(NodeId(1))));
        assert_eq!(
            s.change(NodeId(3), &DOWN, &normal(3, None, Some(5)), false),
            None
        );
    }

    #[test]
    fn one_leader_for_everyone_inside_the_model() {
        let mut s = Safety::new(props(None, Some(Scope::Everyone)));
        assert_eq!(
            s.change(NodeId(1), &DOWN, &normal(1, None, None), true),
            None
        );
        assert_eq!(
            s.change(NodeId(0), &DOWN, &normal(1, None, None), true),
            None,
            "a follower"
        );
        let b = s
            .change(NodeId(2), &DOWN, &normal(2, None, None), true)
            .unwrap();
        assert_eq!((b.0, b.1), (Invariant::UniqueLeader, Some(NodeId(1))));
        let mut s = Safety::new(props(None, Some(Scope::Everyone)));
        s.change(NodeId(1), &DOWN, &normal(1, None, None), false);
        assert_eq!(
            s.change(NodeId(2), &DOWN, &normal(2, None, None), false),
            None
        );
    }
}
