//! Statistics of one run and summaries over many seeds.

use std::collections::BTreeMap;

use election_core::Time;
use serde::{Deserialize, Serialize};

/// Counters of one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunStats {
    /// Messages sent, by message type (a broadcast counts once per receiver).
    pub sent: BTreeMap<&'static str, u64>,
    /// Messages handed to a live receiver.
    pub delivered: u64,
    /// Messages lost by the network.
    pub lost: u64,
    /// Messages dropped by a partition or blocked link.
    pub blocked: u64,
    /// Messages that arrived at a node that was down.
    pub to_down: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Protocol messages not carried because the two nodes' member tables disagree: sent to an
    /// id the sender's table does not hold, or from an address the receiver's does not.
    pub not_member: u64,
    /// Membership control messages (or entries of them) the receiving table rejected.
    pub control_rejected: u64,
    /// Welcomes joining nodes received (a rejoin after a crash counts again).
    pub joins: u64,
    /// Joins given up: refused, or unanswered after every request.
    pub joins_failed: u64,
    /// Timers that fired.
    pub timers: u64,
    /// Transitions into the `Election` state.
    pub elections_started: u64,
    /// Status changes of all nodes.
    pub status_changes: u64,
    /// Events taken off the queue.
    pub events: u64,
    /// Mean queue length seen by those events.
    pub mean_queue: f64,
    /// When the network calmed (the last fault), microseconds.
    pub calm_at: Time,
    /// When the run left Garcia-Molina's synchronous model (a loss, duplication, partition,
    /// blocked link, delay above the algorithm's `max_delay` or drift above the model's), if it
    /// did: checks bound to that model (Assertion 1 of groupless algorithms) stop there.
    pub left_model_at: Option<Time>,
    /// Time from the calm to the last status change before the liveness check: how long the
    /// cluster took to settle on its stable leader. `None` if it did not settle.
    pub time_to_stable: Option<Time>,
    /// Messages sent from the calm (inclusive: the boot's messages for a plan without faults, a
    /// recovering node's first messages when it recovers at the last fault) to that last status
    /// change. `None` if it did not settle.
    pub messages_to_stable: Option<u64>,
    /// The node it settled on as leader, numbered as the plan and the trace number nodes (boot
    /// order; a joined node's protocol id is the one its admitter assigned).
    pub leader: Option<u32>,
    /// At the liveness check fewer than a majority of the members were live, and the protocol
    /// needs a majority to elect (so no leader was expected).
    pub no_quorum: bool,
}

impl RunStats {
    /// Total messages sent.
    pub fn messages(&self) -> u64 {
        self.sent.values().sum()
    }
}

/// Distribution summary of a sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Sample size.
    pub count: usize,
    /// Median.
    pub median: u64,
    /// 99th percentile (nearest rank).
    pub p99: u64,
    /// Largest value.
    pub max: u64,
}

impl Percentiles {
    /// Summarises a sample given as value → count.
    pub fn of_counts(counts: &BTreeMap<u64, u64>) -> Self {
        let count: u64 = counts.values().sum();
        if count == 0 {
            return Percentiles::default();
        }
        let rank = |q: f64| {
            let r = ((q * count as f64).ceil() as u64).clamp(1, count);
            let mut seen = 0;
            for (&v, &c) in counts {
                seen += c;
                if seen >= r {
                    return v;
                }
            }
            unreachable!("the ranks add up to the count")
        };
        Percentiles {
            count: count as usize,
            median: rank(0.5),
            p99: rank(0.99),
            max: *counts.keys().next_back().expect("not empty"),
        }
    }

    /// Summarises `values` (sorted in place).
    pub fn of(values: &mut [u64]) -> Self {
        if values.is_empty() {
            return Percentiles::default();
        }
        values.sort_unstable();
        let rank =
            |q: f64| values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
        Percentiles {
            count: values.len(),
            median: rank(0.5),
            p99: rank(0.99),
            max: values[values.len() - 1],
        }
    }
}

/// Statistics over many runs. The distributions are kept in full (value → count), so that the
/// summaries of disjoint sweeps merge into exactly the summary of their union.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Runs summarised.
    pub runs: usize,
    /// Messages sent over all runs, by type.
    pub sent: BTreeMap<String, u64>,
    /// Elections started over all runs.
    pub elections_started: u64,
    /// Time from calm to stable leader, microseconds, over the runs that settled.
    pub time_to_stable: Percentiles,
    /// Messages per run.
    pub messages: Percentiles,
    /// Time to a stable leader, µs → number of runs.
    pub time_to_stable_counts: BTreeMap<u64, u64>,
    /// Messages per run → number of runs.
    pub messages_counts: BTreeMap<u64, u64>,
}

impl Summary {
    /// Summarises the runs.
    pub fn of<'a>(runs: impl IntoIterator<Item = &'a RunStats>) -> Self {
        let mut s = Summary::default();
        for r in runs {
            s.runs += 1;
            for (k, v) in &r.sent {
                *s.sent.entry(k.to_string()).or_default() += v;
            }
            s.elections_started += r.elections_started;
            if let Some(t) = r.time_to_stable {
                *s.time_to_stable_counts.entry(t).or_default() += 1;
            }
            *s.messages_counts.entry(r.messages()).or_default() += 1;
        }
        s.derive_percentiles();
        s
    }

    /// The summary of the union of disjoint sweeps.
    pub fn merge<'a>(parts: impl IntoIterator<Item = &'a Summary>) -> Self {
        let mut s = Summary::default();
        for p in parts {
            s.runs += p.runs;
            for (k, v) in &p.sent {
                *s.sent.entry(k.clone()).or_default() += v;
            }
            s.elections_started += p.elections_started;
            for (&t, &c) in &p.time_to_stable_counts {
                *s.time_to_stable_counts.entry(t).or_default() += c;
            }
            for (&m, &c) in &p.messages_counts {
                *s.messages_counts.entry(m).or_default() += c;
            }
        }
        s.derive_percentiles();
        s
    }

    fn derive_percentiles(&mut self) {
        self.time_to_stable = Percentiles::of_counts(&self.time_to_stable_counts);
        self.messages = Percentiles::of_counts(&self.messages_counts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        let p = Percentiles::of(&mut v);
        assert_eq!((p.count, p.median, p.p99, p.max), (100, 50, 99, 100));
        let p = Percentiles::of(&mut [7]);
        assert_eq!((p.median, p.p99, p.max), (7, 7, 7));
        assert_eq!(Percentiles::of(&mut []).count, 0);
        let counts: BTreeMap<u64, u64> = (1..=100).map(|v| (v, 1)).collect();
        assert_eq!(Percentiles::of_counts(&counts), p_of_1_to_100());
    }

    fn p_of_1_to_100() -> Percentiles {
        let mut v: Vec<u64> = (1..=100).collect();
        Percentiles::of(&mut v)
    }

    #[test]
    fn merged_summaries_equal_the_summary_of_all_runs() {
        let run = |t: u64, m: u64| RunStats {
            sent: [("Halt", m)].into_iter().collect(),
            elections_started: 1,
            time_to_stable: Some(t),
            ..RunStats::default()
        };
        let runs: Vec<RunStats> = (0..50).map(|i| run(i * 7 % 13, i % 5)).collect();
        let (a, b) = runs.split_at(17);
        let merged = Summary::merge([&Summary::of(a), &Summary::of(b)]);
        assert_eq!(merged, Summary::of(&runs));
    }
}
