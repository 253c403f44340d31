//! The invariants every checker shares, defined once: the simulator checks them at every
//! simulated status change, the chaos verdict on the status reports of a real cluster, and the
//! logserver live on the reports as they arrive. Which ones apply, and under which model, is
//! what the protocol declares in its [`Properties`] — never its name.
//!
//! - [`Invariant::Agreement`] (Garcia-Molina's Assertion 1): live nodes in `Reorganization` or
//!   `Normal` within one [`Scope`] follow one coordinator. Over [`Scope::Everyone`] (groupless
//!   algorithms: Bully, the ring) it holds only inside the algorithm's
//!   [`Model`](crate::protocol::Model); per group or term in every run, since group ids and
//!   terms are never reused. A node in
//!   `Reorganization`/`Normal` without the group id or term its scope needs is itself a
//!   violation (a protocol cannot opt out of its declared check by reporting nothing).
//! - [`Invariant::UniqueLeader`] (Stoller) and [`Invariant::ElectionSafety`] (Raft): no two live
//!   nodes are `Normal` leaders of the same group id (respectively term), where declared.
//! - [`Invariant::Liveness`] and [`Invariant::Validity`] ([`settlement`]): every live node is
//!   `Normal`, all follow one live coordinator that considers itself the leader, with one group
//!   id; where the protocol declares [`Properties::highest_wins`], that coordinator is the
//!   highest live node.
//!
//! [`Safety`] checks a status change incrementally (O(log keys), for the simulator's every
//! step); [`Safety::snapshot`] checks a set of statuses through the same code; [`Watch`] finds
//! the breaches in statuses reported over time by real nodes, whose clocks and reports are only
//! approximately aligned, so it counts a breach only if it lasted longer than a stated slack.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::protocol::{NodeId, Properties, Scope, Time};
use crate::status::{GroupId, State, Status};

/// The properties the checkers check (the simulator, the chaos verdict, the logserver monitor).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
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

/// Which invariant a status change broke, the other node involved (if any: the other leader,
/// or the other coordinator followed), and what was seen.
pub type Broken = (Invariant, Option<NodeId>, String);

/// Incremental safety state: which coordinators the nodes of each scope follow and which leader
/// each scope has right now. Updating it costs O(log keys) per status change, so checking every
/// step stays cheap.
pub struct Safety {
    properties: Properties,
    /// Per key: coordinator → number of live nodes in Reorganization/Normal following it,
    /// sorted by coordinator. A vector: a scope has one coordinator unless it is broken, and a
    /// map per scope (one per node while an Invitation cluster boots) cost 104 bytes a node.
    coordinators: BTreeMap<Key, Vec<(NodeId, u32)>>,
    /// Per key of the unique-leader scope: the Normal leader.
    leaders: BTreeMap<Key, NodeId>,
}

impl Safety {
    /// Checks what `properties` declare.
    pub fn new(properties: Properties) -> Self {
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
    pub fn change(
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
                if let Ok(at) = coords.binary_search_by_key(&c, |&(o, _)| o) {
                    coords[at].1 -= 1;
                    if coords[at].1 == 0 {
                        coords.remove(at);
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
            match coords.binary_search_by_key(&c, |&(o, _)| o) {
                Ok(at) => coords[at].1 += 1,
                Err(at) => coords.insert(at, (c, 1)),
            }
            if Self::applies(agreement.expect("following"), inside_model) {
                if let Some(&(other, _)) = coords.iter().find(|&&(o, _)| o != c) {
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
    pub fn same_scope(&self, a: &Status, b: &Status) -> bool {
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

impl Safety {
    /// The first invariant `statuses` (one per node, nodes in any order) break together, every
    /// declared check applied (the caller decides whether the run was inside the model), with
    /// the node whose status completed the breach. The same code as [`Safety::change`]: the
    /// statuses are added one by one to an empty cluster.
    pub fn snapshot<'a>(
        properties: Properties,
        statuses: impl IntoIterator<Item = (NodeId, &'a Status)>,
    ) -> Option<(NodeId, Broken)> {
        let mut safety = Safety::new(properties);
        let down = Status::down();
        statuses
            .into_iter()
            .find_map(|(id, s)| safety.change(id, &down, s, true).map(|b| (id, b)))
    }
}

/// Whether live nodes have settled: the liveness and validity check, shared by the simulator
/// (once, after the calm) and the chaos verdict (after every heal).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Settlement {
    /// Every live node is `Normal` behind one live leader that leads itself, with one group id;
    /// `None` when no node is live.
    Settled {
        /// The leader.
        leader: Option<NodeId>,
        /// The group (or election) id they share.
        group: Option<GroupId>,
    },
    /// The protocol needs a live majority of the members (Raft) and there is none: no leader is
    /// expected.
    NoQuorum,
    /// Some live nodes are not `Normal` behind one live leader.
    Unsettled {
        /// The nodes that differ from the lowest live node's view.
        odd: Vec<NodeId>,
        /// The leader the lowest live node follows.
        leader: Option<NodeId>,
        /// Whether that leader is live and leads itself.
        leader_ok: bool,
    },
    /// All agree, but on a leader that is not the highest live node although the protocol
    /// declares [`Properties::highest_wins`].
    NotHighest {
        /// The agreed leader.
        leader: Option<NodeId>,
        /// The highest live node.
        highest: Option<NodeId>,
    },
}

/// The settlement of the live nodes `live` (sorted by id) of a cluster of `members` members.
pub fn settlement(
    properties: &Properties,
    members: usize,
    live: &[(NodeId, Status)],
) -> Settlement {
    if properties.quorum && live.len() * 2 <= members {
        return Settlement::NoQuorum;
    }
    let Some(&(_, first)) = live.first() else {
        return Settlement::Settled {
            leader: None,
            group: None,
        };
    };
    let leader = first.coordinator;
    let odd: Vec<NodeId> = live
        .iter()
        .filter(|(_, s)| {
            s.state != State::Normal || s.coordinator != leader || s.group != first.group
        })
        .map(|(i, _)| *i)
        .collect();
    let leader_ok = leader.is_some_and(|l| live.iter().any(|(i, s)| *i == l && s.is_leader(l)));
    if !odd.is_empty() || !leader_ok {
        return Settlement::Unsettled {
            odd,
            leader,
            leader_ok,
        };
    }
    let highest = live.last().map(|(i, _)| *i);
    if properties.highest_wins && leader != highest {
        return Settlement::NotHighest { leader, highest };
    }
    Settlement::Settled {
        leader,
        group: first.group,
    }
}

/// A breach of a safety invariant seen by a [`Watch`]: from when (and until when) the reported
/// statuses broke it together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Episode {
    /// The invariant.
    pub invariant: Invariant,
    /// The nodes involved: the node whose status completed the breach, then for two leaders
    /// the other leader, for a split the coordinator it follows and the other one followed.
    pub nodes: Vec<NodeId>,
    /// What was seen, in [`describe`]'s words.
    pub detail: String,
    /// When the breach began, on the watch's time line.
    pub from: Time,
    /// When it ended; `None` while it lasts.
    pub until: Option<Time>,
}

impl Episode {
    /// The breach in a few words, naming nodes with `name`: "two leaders: A and B".
    pub fn headline(&self, name: impl Fn(NodeId) -> String) -> String {
        let names: Vec<String> = self.nodes.iter().map(|&n| name(n)).collect();
        match (self.invariant, names.as_slice()) {
            (Invariant::UniqueLeader | Invariant::ElectionSafety, [a, b]) => {
                format!("two leaders: {a} and {b}")
            }
            (Invariant::Agreement, [a, c, o]) => {
                format!("two coordinators: {a} follows {c}, another node follows {o}")
            }
            (Invariant::Agreement, [a, o]) => {
                format!("two coordinators: {a} follows none, another node follows {o}")
            }
            (invariant, [a, ..]) => format!("{invariant} broken by {a}: {}", self.detail),
            (invariant, []) => format!("{invariant} broken: {}", self.detail),
        }
    }
}

/// One node as a [`Watch`] knows it.
#[derive(Debug)]
struct Track {
    /// Its status at the watch's evaluated time.
    current: Status,
    /// Status changes after the evaluated time, in time order.
    pending: VecDeque<(Time, Status)>,
    /// Up to when its status is known.
    known_until: Time,
}

/// Finds breaches of the safety invariants in statuses reported over time by real nodes.
///
/// Each node's reports arrive in order, with times on one common time line (the caller maps the
/// nodes' own clocks onto it, see [`ClockMap`]). Those times are only accurate to within the
/// mapping's error, and a node's change is reported a little after it happened, so a breach
/// counts only if the statuses that break the invariant were held together for longer than
/// `slack`: then, with each node's time off by less than half the slack, the conflicting states
/// really did overlap. The watch evaluates the time line up to its frontier, the earliest time
/// up to which every node still up has reported (a node that is down or silent does not hold it
/// back: the caller reports it `Down`), so the result does not depend on which report arrives
/// first. Everything is checked as if inside the model; whether a breach was expected (the run
/// had left the model) is the caller's judgement, which knows the faults.
#[derive(Debug)]
pub struct Watch {
    properties: Properties,
    slack: Time,
    tracks: BTreeMap<NodeId, Track>,
    /// Evaluated up to here.
    at: Time,
    /// The breach in progress, and whether it has already been confirmed (returned).
    open: Option<(Episode, bool)>,
}

/// Most status changes a watch holds waiting for the frontier; beyond it the watch evaluates
/// up to the oldest waiting change, so memory stays bounded when a node lags.
const MAX_PENDING: usize = 10_000;

impl Watch {
    /// A watch checking what `properties` declare, counting breaches longer than `slack`.
    pub fn new(properties: Properties, slack: Time) -> Self {
        Watch {
            properties,
            slack,
            tracks: BTreeMap::new(),
            at: 0,
            open: None,
        }
    }

    /// Node `node` held `status` at time `at` (and since its last report, if that said the
    /// same). `Down` says it crashed, left or went silent: it holds the frontier no longer. A
    /// time before the node's previous report is taken as that time (reports of one node are in
    /// order; only the mapping of its clock may have moved).
    pub fn observe(&mut self, node: NodeId, at: Time, status: Status) {
        let floor = self.at;
        let track = self.tracks.entry(node).or_insert_with(|| Track {
            current: Status::down(),
            pending: VecDeque::new(),
            known_until: floor,
        });
        let at = at.max(track.known_until).max(floor);
        track.known_until = at;
        let last = track.pending.back().map_or(&track.current, |(_, s)| s);
        if !same(last, &status) {
            track.pending.push_back((at, status));
        }
    }

    /// The earliest time up to which every node still up has reported.
    fn frontier(&self) -> Time {
        self.tracks
            .values()
            .filter(|t| {
                let last = t.pending.back().map_or(&t.current, |(_, s)| s);
                last.state != State::Down
            })
            .map(|t| t.known_until)
            .min()
            .unwrap_or(Time::MAX)
    }

    /// Evaluates the time line up to the frontier, or up to `until` when given (the caller
    /// knows every report up to there, e.g. at the end of a run). Returns the breaches confirmed
    /// (lasting longer than the slack; `until` still `None`) and those that ended (`until`
    /// set; an ended breach that was confirmed before comes back once more with its end).
    pub fn advance(&mut self, until: Option<Time>) -> Vec<Episode> {
        let mut limit = until.unwrap_or_else(|| self.frontier());
        let waiting: usize = self.tracks.values().map(|t| t.pending.len()).sum();
        if waiting > MAX_PENDING {
            let oldest = self.tracks.values().filter_map(|t| t.pending.front());
            limit = limit.max(oldest.map(|(t, _)| *t).min().unwrap_or(limit));
        }
        let mut out = Vec::new();
        loop {
            let next = self
                .tracks
                .values()
                .filter_map(|t| t.pending.front().map(|(at, _)| *at))
                .filter(|&at| at <= limit)
                .min();
            let Some(at) = next else { break };
            for track in self.tracks.values_mut() {
                while track.pending.front().is_some_and(|(t, _)| *t == at) {
                    if let Some((_, s)) = track.pending.pop_front() {
                        track.current = s;
                    }
                }
            }
            self.at = at;
            self.evaluate(at, &mut out);
        }
        if limit != Time::MAX {
            self.at = self.at.max(limit);
        }
        if let Some((episode, confirmed)) = &mut self.open {
            if !*confirmed && self.at.saturating_sub(episode.from) > self.slack {
                *confirmed = true;
                out.push(episode.clone());
            }
        }
        out
    }

    /// Checks the statuses held at `at` and opens or closes the breach.
    fn evaluate(&mut self, at: Time, out: &mut Vec<Episode>) {
        let live = self
            .tracks
            .iter()
            .filter(|(_, t)| t.current.state != State::Down)
            .map(|(id, t)| (*id, &t.current));
        let broken = Safety::snapshot(self.properties, live);
        let same_breach = matches!((&self.open, &broken),
            (Some((e, _)), Some((_, (inv, _, _)))) if e.invariant == *inv);
        if same_breach {
            return;
        }
        if let Some((mut episode, confirmed)) = self.open.take() {
            if confirmed || at - episode.from > self.slack {
                episode.until = Some(at);
                out.push(episode);
            }
        }
        let coordinator_of = |id: NodeId| self.tracks.get(&id).and_then(|t| t.current.coordinator);
        self.open = broken.map(|(me, (invariant, other, detail))| {
            let mut nodes = vec![me];
            if invariant == Invariant::Agreement && other.is_some() {
                nodes.extend(coordinator_of(me));
            }
            nodes.extend(other.filter(|&o| o != me));
            let episode = Episode {
                invariant,
                nodes,
                detail,
                from: at,
                until: None,
            };
            (episode, false)
        });
    }

    /// The confirmed breach in progress, if any.
    pub fn breach(&self) -> Option<&Episode> {
        self.open.as_ref().filter(|(_, c)| *c).map(|(e, _)| e)
    }

    /// The time evaluated so far.
    pub fn evaluated(&self) -> Time {
        self.at
    }
}

/// Whether two statuses are the same for the checkers (the sub-state name aside).
fn same(a: &Status, b: &Status) -> bool {
    a.state == b.state && a.coordinator == b.coordinator && a.group == b.group && a.term == b.term
}

/// Maps the clocks of real node processes onto the receiver's: a node stamps each report with
/// its own monotonic time, the receiver notes its arrival; the smallest difference seen for one
/// process (arrival minus stamp) is its clock's offset plus the fastest report's delay, so a
/// mapped time is late by at most that delay — on one host, a millisecond or two.
#[derive(Debug, Default)]
pub struct ClockMap {
    /// Per process (its address and pid): the smallest difference seen.
    offsets: BTreeMap<(String, u32), i128>,
}

impl ClockMap {
    /// Most processes remembered; the oldest keys are dropped beyond it.
    const MAX: usize = 65_536;

    /// The receiver's time of a report stamped `node_time` by process `pid` at `addr` that
    /// arrived at `arrival` (both microseconds).
    pub fn map(&mut self, addr: &str, pid: u32, node_time: Time, arrival: Time) -> Time {
        let diff = i128::from(arrival) - i128::from(node_time);
        let key = (addr.to_string(), pid);
        if self.offsets.len() >= Self::MAX && !self.offsets.contains_key(&key) {
            self.offsets.pop_first();
        }
        let offset = self.offsets.entry(key).or_insert(diff);
        *offset = (*offset).min(diff);
        u64::try_from(i128::from(node_time) + *offset).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Model;

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

    fn follower(coordinator: u32) -> Status {
        normal(coordinator, None, None)
    }

    /// Bully's declaration: agreement among everyone.
    fn bully() -> Properties {
        props(Some(Scope::Everyone), None)
    }

    #[test]
    fn a_watch_counts_a_split_only_when_it_outlasts_the_slack() {
        for (heal_at, counted) in [(140, false), (180, true)] {
            let mut w = Watch::new(bully(), 50);
            w.observe(NodeId(1), 0, follower(2));
            w.observe(NodeId(2), 0, follower(2));
            w.observe(NodeId(3), 100, follower(3));
            w.observe(NodeId(3), heal_at, follower(2));
            for n in [1, 2] {
                w.observe(NodeId(n), 1000, follower(2));
            }
            let found = w.advance(None);
            assert_eq!(!found.is_empty(), counted, "{found:?}");
            if counted {
                let e = &found[0];
                // Known to have ended within the same evaluation: returned once, with its end.
                assert_eq!(found.len(), 1, "{found:?}");
                assert_eq!(
                    (e.invariant, e.from, e.until),
                    (Invariant::Agreement, 100, Some(heal_at))
                );
                assert_eq!(e.nodes, [NodeId(3), NodeId(3), NodeId(2)]);
                let name = |n: NodeId| format!("10.0.0.{}", n.0);
                assert_eq!(
                    e.headline(name),
                    "two coordinators: 10.0.0.3 follows 10.0.0.3, another node follows 10.0.0.2"
                );
                assert!(w.advance(Some(2000)).is_empty());
            }
        }
    }

    #[test]
    fn a_watch_waits_for_every_node_still_up_and_reports_ends() {
        let mut w = Watch::new(props(None, Some(Scope::Term)), 10);
        w.observe(NodeId(1), 0, normal(1, None, Some(4)));
        w.observe(NodeId(2), 0, normal(2, None, Some(4)));
        w.observe(NodeId(1), 100, normal(1, None, Some(4)));
        assert!(w.advance(None).is_empty(), "node 2 is only known up to 0");
        assert!(w.breach().is_none());
        w.observe(NodeId(2), 100, normal(2, None, Some(4)));
        let found = w.advance(None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].invariant, Invariant::ElectionSafety);
        assert!(w.breach().is_some());
        // Node 2 crashes: a node that is down holds the frontier no longer.
        w.observe(NodeId(2), 150, DOWN);
        w.observe(NodeId(1), 400, normal(1, None, Some(4)));
        let ended = w.advance(None);
        assert_eq!(ended.len(), 1);
        assert_eq!((ended[0].from, ended[0].until), (0, Some(150)));
        assert!(w.breach().is_none());
        assert_eq!(w.evaluated(), 400);
    }

    /// A broken variant the watch must catch: two leaders of one group (an Invitation that
    /// forgot to merge), however their reports interleave.
    #[test]
    fn a_watch_catches_two_leaders_of_one_group() {
        let mut w = Watch::new(props(Some(Scope::Group), Some(Scope::Group)), 5);
        let g = Some((1, 7));
        w.observe(NodeId(2), 30, normal(2, g, None));
        w.observe(NodeId(1), 10, normal(1, g, None));
        let found = w.advance(Some(100));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].invariant, Invariant::UniqueLeader);
        assert_eq!(found[0].from, 30);
    }

    #[test]
    fn settlement_names_the_odd_nodes_quorum_and_validity() {
        let p = Properties {
            highest_wins: true,
            ..bully()
        };
        let live = [(NodeId(0), follower(2)), (NodeId(2), follower(2))];
        assert_eq!(
            settlement(&p, 3, &live),
            Settlement::Settled {
                leader: Some(NodeId(2)),
                group: None
            }
        );
        let live = [
            (NodeId(0), follower(1)),
            (NodeId(1), follower(1)),
            (NodeId(2), DOWN),
        ];
        assert!(
            matches!(settlement(&p, 3, &live), Settlement::Unsettled { ref odd, .. } if odd == &[NodeId(2)])
        );
        let live = [
            (NodeId(0), follower(1)),
            (NodeId(1), follower(1)),
            (NodeId(2), follower(1)),
        ];
        assert_eq!(
            settlement(&p, 3, &live),
            Settlement::NotHighest {
                leader: Some(NodeId(1)),
                highest: Some(NodeId(2))
            }
        );
        let live = [(NodeId(0), follower(3))];
        assert!(matches!(
            settlement(&p, 3, &live),
            Settlement::Unsettled {
                leader_ok: false,
                ..
            }
        ));
        let raft = Properties { quorum: true, ..p };
        assert_eq!(
            settlement(&raft, 3, &[(NodeId(0), follower(0))]),
            Settlement::NoQuorum
        );
    }

    #[test]
    fn the_clock_map_keeps_the_fastest_report_per_process() {
        let mut m = ClockMap::default();
        assert_eq!(m.map("a", 1, 1_000, 50_300), 50_300);
        // A faster report moves the offset down; later times map with it.
        assert_eq!(m.map("a", 1, 2_000, 51_100), 51_100);
        assert_eq!(m.map("a", 1, 3_000, 60_000), 52_100);
        // A restarted process (new pid) has a clock of its own.
        assert_eq!(m.map("a", 2, 10, 70_000), 70_000);
    }
}
