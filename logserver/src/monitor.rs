//! The live invariant monitor: the checkers of `election_core::invariant`, evaluated on the
//! reports as they are committed, so the status page can say when a guarantee breaks ("two
//! leaders: 127.0.0.1:9003 and 127.0.0.1:9004 since 12:03:04.120"), `/api/violations` keeps
//! the history and `/metrics` counts them.
//!
//! Each algorithm's nodes get a [`Watch`] of their own, checking what the protocol declares
//! (with the timing the reports imply and default options: the safety properties do not depend
//! on the options). A report's time on its node's clock is mapped onto this server's
//! ([`ClockMap`]); a node that left or has been silent for three report periods is down from
//! then. A breach counts once the conflicting states were held together for longer than
//! [`SLACK_US`]. Unknown algorithms (a user's own) are not checked: their properties are not
//! known here.
//!
//! Expected or not: a breach of an invariant over every node (Bully, the ring) lies outside the
//! synchronous model if links were blocked when it began or within [`AFTER_BLOCKS_MS`] before
//! (the monitor cannot see pauses; `election chaos` judges with the whole event log).

use std::collections::{BTreeMap, VecDeque};

use election_core::invariant::{ClockMap, Episode, Invariant, Watch};
use election_core::report::ReportEvent;
use election_core::{Algorithm, Config, Model, NodeId, Protocol, Scope, Status, Timing};
use serde::Serialize;

use crate::model::{LogEntry, SILENT_PERIODS};

/// A breach counts when it lasted longer than this (µs): the error of mapping the nodes'
/// clocks (the fastest report's delay, a millisecond or two here) plus the report delays.
pub(crate) const SLACK_US: u64 = 50_000;
/// Blocks cleared this recently still explain a breach of a synchronous algorithm.
pub(crate) const AFTER_BLOCKS_MS: u64 = 10_000;
/// Violations kept for `/api/violations`.
const HISTORY: usize = 256;
/// Most addresses numbered; beyond it new addresses are not checked.
const MAX_IDS: usize = 65_536;

/// One violation as `/api/violations` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct ViolationRecord {
    /// The algorithm of the nodes.
    pub algorithm: String,
    /// The invariant.
    pub invariant: Invariant,
    /// In a few words: "two leaders: A and B".
    pub headline: String,
    /// The nodes involved.
    pub nodes: Vec<String>,
    /// When it began, server time in ms since the Unix epoch.
    pub since_ms: u64,
    /// When it ended; `None` while it lasts.
    pub until_ms: Option<u64>,
    /// Whether the protocol's model allows it (links were blocked).
    pub expected: bool,
}

/// What the monitor knows of one algorithm's nodes.
struct Checked {
    watch: Watch,
    /// Whether breaches over every node are model-bound (synchronous model).
    model_bound: [bool; 2],
}

/// The live monitor.
#[derive(Default)]
pub(crate) struct Monitor {
    ids: BTreeMap<String, NodeId>,
    names: Vec<String>,
    clocks: ClockMap,
    checked: BTreeMap<String, Checked>,
    /// Per node: its algorithm, last report (mapped µs) and report period (ms), while up.
    up: BTreeMap<NodeId, (String, u64, u64)>,
    history: VecDeque<ViolationRecord>,
    /// When blocks were last in force (server ms), if ever.
    blocked_at: Option<u64>,
}

impl Monitor {
    fn id(&mut self, addr: &str) -> NodeId {
        if let Some(&id) = self.ids.get(addr) {
            return id;
        }
        let id = NodeId(u32::try_from(self.names.len()).unwrap_or(u32::MAX));
        if self.names.len() < MAX_IDS {
            self.ids.insert(addr.to_string(), id);
            self.names.push(addr.to_string());
        }
        id
    }

    /// Notes whether links are blocked now (`now_ms`).
    pub fn blocks(&mut self, blocked: bool, now_ms: u64) {
        if blocked {
            self.blocked_at = Some(now_ms);
        }
    }

    /// Takes a committed report; returns the invariants newly found broken.
    pub fn report(&mut self, e: &LogEntry) -> Vec<Invariant> {
        let r = &e.report;
        let Ok(algorithm) = r.algorithm.parse::<Algorithm>() else {
            return Vec::new();
        };
        let node = self.id(&r.addr);
        let status = {
            let mut id = |a: &str| self.id(a);
            r.status(&mut id)
        };
        let at = self
            .clocks
            .map(&r.addr, r.pid, r.node_time_us, e.server_time_ms * 1000);
        let checked = self.checked.entry(r.algorithm.clone()).or_insert_with(|| {
            let timing = Timing {
                heartbeat: r.heartbeat_ms * 1000,
                timeout: r.heartbeat_ms * 4000,
            };
            let p =
                election_core::with_protocol!(algorithm, P => P::properties(&Config::new(timing)));
            let sync = p.model == Model::Synchronous;
            Checked {
                watch: Watch::new(p, SLACK_US),
                model_bound: [
                    sync && p.agreement == Some(Scope::Everyone),
                    sync && p.unique_leader == Some(Scope::Everyone),
                ],
            }
        });
        checked.watch.observe(node, at, status);
        if r.event == ReportEvent::Left {
            self.up.remove(&node);
        } else {
            self.up
                .insert(node, (r.algorithm.clone(), at, r.heartbeat_ms));
        }
        self.advance(&r.algorithm.clone())
    }

    /// Marks nodes silent for three report periods as down (at that moment) at server time
    /// `now_ms`; returns the invariants newly found broken.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Invariant> {
        let now = now_ms * 1000;
        let silent: Vec<(NodeId, String, u64)> = self
            .up
            .iter()
            .filter_map(|(&id, (alg, last, hb))| {
                let at = last + hb * 1000 * SILENT_PERIODS;
                (at < now).then(|| (id, alg.clone(), at))
            })
            .collect();
        let mut found = Vec::new();
        for (id, alg, at) in silent {
            self.up.remove(&id);
            if let Some(c) = self.checked.get_mut(&alg) {
                c.watch.observe(id, at, Status::down());
            }
            found.extend(self.advance(&alg));
        }
        found
    }

    fn advance(&mut self, algorithm: &str) -> Vec<Invariant> {
        let Some(c) = self.checked.get_mut(algorithm) else {
            return Vec::new();
        };
        let episodes = c.watch.advance(None);
        let bound = c.model_bound;
        let mut new = Vec::new();
        for e in episodes {
            let since_ms = e.from / 1000;
            let until_ms = e.until.map(|u| u / 1000);
            let known = self.history.iter_mut().find(|v| {
                v.algorithm == algorithm && v.since_ms == since_ms && v.invariant == e.invariant
            });
            if let Some(v) = known {
                v.until_ms = until_ms;
                continue;
            }
            let model_bound = match e.invariant {
                Invariant::Agreement => bound[0],
                _ => bound[1],
            };
            let expected = model_bound
                && self
                    .blocked_at
                    .is_some_and(|b| b + AFTER_BLOCKS_MS >= since_ms);
            let record = self.record(algorithm, &e, expected);
            if self.history.len() == HISTORY {
                self.history.pop_front();
            }
            self.history.push_back(record);
            new.push(e.invariant);
        }
        new
    }

    fn record(&self, algorithm: &str, e: &Episode, expected: bool) -> ViolationRecord {
        let name = |id: NodeId| {
            self.names
                .get(id.0 as usize)
                .cloned()
                .unwrap_or_else(|| id.to_string())
        };
        ViolationRecord {
            algorithm: algorithm.to_string(),
            invariant: e.invariant,
            headline: e.headline(name),
            nodes: e.nodes.iter().map(|&n| name(n)).collect(),
            since_ms: e.from / 1000,
            until_ms: e.until.map(|u| u / 1000),
            expected,
        }
    }

    /// Every violation kept, oldest first.
    pub fn history(&self) -> Vec<ViolationRecord> {
        self.history.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use election_core::State;
    use election_core::report::NodeReport;

    use super::*;

    fn entry(addr: &str, at_ms: u64, coordinator: &str, term: u64) -> LogEntry {
        LogEntry {
            seq: 0,
            server_time_ms: at_ms,
            report: NodeReport {
                addr: addr.into(),
                algorithm: "raft".into(),
                event: ReportEvent::Status,
                state: State::Normal,
                coordinator: Some(coordinator.into()),
                group: None,
                incarnation: None,
                term: Some(term),
                phase: "Leader".into(),
                node_time_us: at_ms * 1000,
                heartbeat_ms: 100,
                pid: 1,
                drops: BTreeMap::new(),
                messages: Vec::new(),
                messages_dropped: 0,
            },
        }
    }

    /// A broken variant the monitor must catch: two Raft leaders of one term.
    #[test]
    fn two_leaders_of_one_term_are_found_and_their_end_recorded() {
        let (a, b) = ("127.0.0.1:9003", "127.0.0.1:9004");
        let mut m = Monitor::default();
        assert!(m.report(&entry(a, 1_000, a, 3)).is_empty());
        assert!(m.report(&entry(b, 1_000, b, 3)).is_empty());
        assert!(
            m.report(&entry(a, 1_040, a, 3)).is_empty(),
            "within the slack"
        );
        m.report(&entry(b, 1_100, b, 3));
        let found = m.report(&entry(a, 1_100, a, 3));
        assert_eq!(found, [Invariant::ElectionSafety]);
        let v = &m.history()[0];
        assert_eq!(v.headline, format!("two leaders: {b} and {a}"));
        assert_eq!((v.since_ms, v.until_ms, v.expected), (1_000, None, false));
        // b goes silent: down three periods after its last report, and the breach ends there.
        m.report(&entry(a, 2_000, a, 3));
        assert!(m.tick(2_000).is_empty());
        assert_eq!(m.history()[0].until_ms, Some(1_400));
        // Another term is no breach.
        m.report(&entry(b, 2_100, b, 4));
        m.report(&entry(a, 2_300, a, 3));
        m.report(&entry(b, 2_300, b, 4));
        assert_eq!(m.history().len(), 1);
    }
}
