//! The verdict of a chaos campaign, from the logserver's log of status reports and the
//! campaign's own event log — the invariants of `election_core::invariant`, as the simulator
//! checks them, on a real run:
//!
//! - Safety ([`Watch`]): each report's time on its node's clock is mapped onto the logserver's
//!   ([`ClockMap`]); a killed or departed node is down from the moment the campaign stopped it.
//!   A breach counts only if the conflicting states were held together for longer than the
//!   slack.
//! - Liveness after each heal: the time from the heal until every live node (every node the
//!   campaign has not stopped) is `Normal` behind one live leader ([`settlement`]), within the
//!   algorithm's `liveness_bound`. Validity, where declared: the leader the cluster rests on
//!   before the next fault is the highest live node.
//!
//! Expected violations. An invariant over [`Scope::Everyone`] holds only inside the protocol's
//! [`Model`]; for the synchronous model (Bully, the ring) a block, a split, a flapping link or a
//! pause leaves it (lost datagrams; a stopped process answers later than any timeout allows).
//! The run counts as outside the model from such a fault until the cluster next settles after
//! its heal: a breach that begins in that window, and a missed liveness bound or a wrong leader
//! after such a heal, is reported as expected. Everything else — any breach of a per-group or
//! per-term invariant, any failure after a crash, a leave or a restart — is unexpected.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;

use election_core::invariant::{ClockMap, Episode, Invariant, Settlement, Watch, settlement};
use election_core::{Algorithm, Model, NodeId, Properties, Scope, Status, Time};
use logserver::LogEntry;
use serde::Serialize;

use super::{Event, What, id_of};

/// What the verdict reads.
pub struct Input<'a> {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// What it declares.
    pub properties: Properties,
    /// The nodes, by line.
    pub addrs: &'a [SocketAddr],
    /// The logserver's log of the campaign, in log order.
    pub entries: &'a [LogEntry],
    /// The campaign's events, in order.
    pub events: &'a [Event],
    /// The slack, µs.
    pub slack: Time,
    /// The liveness bound, µs.
    pub bound: Time,
    /// The schedule's seed.
    pub seed: u64,
    /// Steps scheduled.
    pub scheduled: usize,
    /// Steps run.
    pub ran: usize,
}

/// A violation found.
#[derive(Clone, Debug, Serialize)]
pub struct Found {
    /// The invariant.
    pub invariant: Invariant,
    /// In a few words, with addresses.
    pub headline: String,
    /// Since the campaign started, ms.
    pub from_ms: f64,
    /// When it ended, since the campaign started, ms (`None`: still at the end).
    pub until_ms: Option<f64>,
    /// The step during which it began.
    pub step: Option<usize>,
    /// Whether the protocol's model allows it (see the module doc).
    pub expected: bool,
    /// Why it is (un)expected.
    pub why: String,
}

/// Median, 90th percentile and maximum, ms.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Spread {
    /// How many values.
    pub count: usize,
    /// Median.
    pub median_ms: f64,
    /// 90th percentile (nearest rank).
    pub p90_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Spread {
        values.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let i = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
            values[i - 1]
        };
        match values.last() {
            None => Spread::default(),
            Some(&max) => Spread {
                count: values.len(),
                median_ms: rank(0.5),
                p90_ms: rank(0.9),
                max_ms: max,
            },
        }
    }
}

/// `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Its model.
    pub model: Model,
    /// The seed of the schedule.
    pub seed: u64,
    /// Cluster size.
    pub nodes: usize,
    /// Steps scheduled and run.
    pub events_scheduled: usize,
    /// Steps run (fewer when --duration ran out).
    pub events_run: usize,
    /// Heals measured.
    pub heals: usize,
    /// Status reports read.
    pub reports: usize,
    /// The slack, ms.
    pub slack_ms: f64,
    /// The algorithm's liveness bound, ms.
    pub liveness_bound_ms: f64,
    /// From the first heal to every live node Normal behind one leader.
    pub reconvergence: Spread,
    /// Time without one leader for every live node, from the first fault to the end, ms.
    pub unavailable_ms: f64,
    /// The same as a fraction of that time.
    pub unavailable_fraction: f64,
    /// Campaign length from the first fault, ms.
    pub campaign_ms: f64,
    /// Violations the model allows.
    pub expected: usize,
    /// Violations it does not: the campaign fails.
    pub unexpected: usize,
    /// Every violation.
    pub violations: Vec<Found>,
}

impl Summary {
    /// 1 when a violation was unexpected.
    pub fn exit_code(&self) -> std::process::ExitCode {
        if self.unexpected == 0 {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        }
    }

    /// The summary in sentences.
    pub fn text(&self) -> String {
        let mut t = String::new();
        let r = &self.reconvergence;
        let _ = writeln!(
            t,
            "chaos {} ({:?} model), {} nodes, seed {}: {} of {} events run, {} heals, {} reports",
            self.algorithm,
            self.model,
            self.nodes,
            self.seed,
            self.events_run,
            self.events_scheduled,
            self.heals,
            self.reports
        );
        let _ = writeln!(
            t,
            "  reconvergence after a heal: median {:.0} ms, p90 {:.0} ms, max {:.0} ms (bound {:.0} ms)",
            r.median_ms, r.p90_ms, r.max_ms, self.liveness_bound_ms
        );
        let _ = writeln!(
            t,
            "  unavailable (no single leader): {:.0} ms of {:.0} ms ({:.1} %)",
            self.unavailable_ms,
            self.campaign_ms,
            self.unavailable_fraction * 100.0
        );
        let _ = writeln!(
            t,
            "  violations: {} unexpected, {} expected (slack {:.0} ms)",
            self.unexpected, self.expected, self.slack_ms
        );
        for v in &self.violations {
            let tag = if v.expected { "expected" } else { "UNEXPECTED" };
            let _ = writeln!(
                t,
                "    {tag} {} at +{:.0} ms (step {}): {} — {}",
                v.invariant,
                v.from_ms,
                v.step.map_or("-".into(), |s| s.to_string()),
                v.headline,
                v.why
            );
        }
        t
    }
}

/// Whether a settlement means one leader for every live node.
fn agreed(s: &Settlement) -> bool {
    matches!(
        s,
        Settlement::Settled { .. } | Settlement::NotHighest { .. }
    )
}

/// Judges a campaign.
pub fn judge(input: &Input<'_>) -> Summary {
    let p = &input.properties;
    let n = input.addrs.len();
    let us = |ms: u64| ms * 1000;
    // Everything that changes a node, on the logserver's clock: its reports (mapped from its
    // own clock) and the campaign's stops and starts.
    enum Item<'a> {
        Report(&'a LogEntry),
        Campaign(&'a Event),
    }
    let mut items: Vec<(u64, Item<'_>)> = input
        .entries
        .iter()
        .map(|e| (e.server_time_ms, Item::Report(e)))
        .chain(input.events.iter().map(|e| (e.at_ms, Item::Campaign(e))))
        .collect();
    items.sort_by_key(|(at, _)| *at);
    let start = input.events.first().map_or(0, |e| us(e.at_ms));
    let mut clocks = ClockMap::default();
    let mut watch = Watch::new(*p, input.slack);
    let mut episodes: BTreeMap<(Time, Invariant), Episode> = BTreeMap::new();
    // Per node: status changes (time, status) and liveness changes, for the settlement sweep.
    let mut changes: Vec<(Time, usize, Option<Status>, Option<bool>)> = Vec::new();
    let mut last_at = vec![0; n];
    for (_, item) in &items {
        match item {
            Item::Report(e) => {
                let r = &e.report;
                let node = id_of(input.addrs, &r.addr);
                let Some(ix) = usize::try_from(node.0).ok().filter(|&i| i < n) else {
                    continue;
                };
                let at = clocks
                    .map(&r.addr, r.pid, r.node_time_us, us(e.server_time_ms))
                    .max(last_at[ix]);
                last_at[ix] = at;
                let status = r.status(|a| id_of(input.addrs, a));
                watch.observe(node, at, status);
                changes.push((at, ix, Some(status), None));
            }
            Item::Campaign(ev) => {
                let at = us(ev.at_ms);
                match ev.what {
                    What::Down { node } => {
                        last_at[node] = last_at[node].max(at);
                        watch.observe(NodeId(node as u32), at, Status::down());
                        changes.push((at, node, Some(Status::down()), Some(false)));
                    }
                    What::Up { node, .. } => changes.push((at, node, None, Some(true))),
                    _ => {}
                }
            }
        }
        for e in watch.advance(None) {
            episodes.insert((e.from, e.invariant), e);
        }
    }
    let end = items
        .last()
        .map_or(start, |(at, _)| us(*at))
        .max(last_at.iter().copied().max().unwrap_or(0));
    for e in watch.advance(Some(end)) {
        episodes.insert((e.from, e.invariant), e);
    }

    // The settlement over time.
    changes.sort_by_key(|c| c.0);
    let mut statuses = vec![Status::down(); n];
    let mut live = BTreeSet::new();
    let mut timeline: Vec<(Time, Settlement)> = Vec::new();
    let mut i = 0;
    while i < changes.len() {
        let at = changes[i].0;
        while i < changes.len() && changes[i].0 == at {
            let (_, node, status, up) = changes[i];
            if let Some(s) = status {
                statuses[node] = s;
            }
            match up {
                Some(true) => {
                    live.insert(node);
                }
                Some(false) => {
                    live.remove(&node);
                }
                None => {}
            }
            i += 1;
        }
        let nodes: Vec<(NodeId, Status)> = live
            .iter()
            .map(|&ix| (NodeId(ix as u32), statuses[ix]))
            .collect();
        let s = settlement(p, n, &nodes);
        if timeline.last().is_none_or(|(_, last)| *last != s) {
            timeline.push((at, s));
        }
    }
    let settlement_at = |t: Time| -> Option<&Settlement> {
        let i = timeline.partition_point(|(at, _)| *at <= t);
        i.checked_sub(1).map(|i| &timeline[i].1)
    };
    // The first time at or after `t` from which every live node agrees for longer than the
    // slack (a moment of agreement shorter than that is not trusted).
    let agreed_from = |t: Time| -> Option<Time> {
        let first = timeline
            .partition_point(|(at, _)| *at <= t)
            .saturating_sub(1);
        (first..timeline.len()).find_map(|k| {
            let (at, s) = &timeline[k];
            let until = timeline.get(k + 1).map_or(Time::MAX, |(next, _)| *next);
            (agreed(s) && until.saturating_sub((*at).max(t)) > input.slack).then_some((*at).max(t))
        })
    };

    // Steps: fault time, heal time, and the next fault's time.
    let mut faults: Vec<(usize, Time, bool)> = Vec::new();
    let mut heals: Vec<(usize, Time)> = Vec::new();
    for ev in input.events {
        match (&ev.what, ev.step) {
            (What::Fault { leaves_model, .. }, Some(s)) => {
                faults.push((s, us(ev.at_ms), *leaves_model))
            }
            (What::Heal, Some(s)) => heals.push((s, us(ev.at_ms))),
            _ => {}
        }
    }
    let fault_at = |step: usize| faults.iter().find(|f| f.0 == step).map(|f| f.1);
    let synchronous = p.model == Model::Synchronous;
    // Outside the model: from a model-leaving fault until the cluster agrees after its heal.
    let outside: Vec<(Time, Time)> = faults
        .iter()
        .filter(|(_, _, leaves)| synchronous && *leaves)
        .map(|&(step, at, _)| {
            let healed = heals.iter().find(|h| h.0 == step).map_or(end, |h| h.1);
            (at, agreed_from(healed).unwrap_or(end))
        })
        .collect();
    let in_outside = |t: Time| outside.iter().any(|&(a, b)| a <= t && t <= b);
    let step_at = |t: Time| faults.iter().rev().find(|f| f.1 <= t).map(|f| f.0);
    let ms = |t: Time| t.saturating_sub(start) as f64 / 1000.0;
    let name = |id: NodeId| {
        input
            .addrs
            .get(id.0 as usize)
            .map_or_else(|| id.to_string(), ToString::to_string)
    };

    let mut found: Vec<Found> = Vec::new();
    for e in episodes.values() {
        let scope = match e.invariant {
            Invariant::Agreement => p.agreement,
            _ => p.unique_leader,
        };
        let model_bound = scope == Some(Scope::Everyone);
        let expected = model_bound && synchronous && in_outside(e.from);
        let why = if expected {
            "began outside the synchronous model (lost datagrams or a paused node), before the cluster settled again"
        } else if model_bound && synchronous {
            "inside the synchronous model: the algorithm guarantees this"
        } else {
            "holds in every run (group ids and terms are never reused)"
        };
        found.push(Found {
            invariant: e.invariant,
            headline: e.headline(name),
            from_ms: ms(e.from),
            until_ms: e.until.map(ms),
            step: step_at(e.from),
            expected,
            why: why.to_string(),
        });
    }
    let mut reconvergence = Vec::new();
    for &(step, healed) in &heals {
        let next = fault_at(step + 1).unwrap_or(end);
        let leaves = faults.iter().any(|f| f.0 == step && f.2);
        let expected = synchronous && leaves;
        let why = if expected {
            "after a fault outside the synchronous model, whose bound assumes a run that never left it"
        } else {
            "the algorithm's liveness bound holds after this fault"
        };
        match agreed_from(healed).filter(|&t| t <= next) {
            Some(t) => {
                let took = t - healed;
                reconvergence.push(took as f64 / 1000.0);
                if took > input.bound {
                    found.push(Found {
                        invariant: Invariant::Liveness,
                        headline: format!(
                            "one leader only {:.0} ms after the heal (bound {:.0} ms)",
                            took as f64 / 1000.0,
                            input.bound as f64 / 1000.0
                        ),
                        from_ms: ms(healed),
                        until_ms: Some(ms(t)),
                        step: Some(step),
                        expected,
                        why: why.to_string(),
                    });
                }
            }
            None if matches!(settlement_at(next), Some(Settlement::NoQuorum)) => {}
            None => found.push(Found {
                invariant: Invariant::Liveness,
                headline: format!(
                    "no single leader within {:.0} ms of the heal",
                    (next - healed) as f64 / 1000.0
                ),
                from_ms: ms(healed),
                until_ms: None,
                step: Some(step),
                expected,
                why: why.to_string(),
            }),
        }
        if let Some(Settlement::NotHighest { leader, highest }) =
            settlement_at(next.saturating_sub(1))
        {
            let leader = leader.map_or("none".into(), name);
            let highest = highest.map_or("none".into(), name);
            found.push(Found {
                invariant: Invariant::Validity,
                headline: format!("settled on {leader}, not the highest live node {highest}"),
                from_ms: ms(healed),
                until_ms: None,
                step: Some(step),
                expected,
                why: why.to_string(),
            });
        }
    }
    found.sort_by(|a, b| a.from_ms.total_cmp(&b.from_ms));

    // Unavailability from the first fault on.
    let first_fault = faults.first().map_or(end, |f| f.1);
    let mut unavailable = 0;
    for (k, (at, s)) in timeline.iter().enumerate() {
        let until = timeline.get(k + 1).map_or(end, |(next, _)| *next).min(end);
        let from = (*at).max(first_fault);
        if !agreed(s) && until > from {
            unavailable += until - from;
        }
    }
    let campaign = end.saturating_sub(first_fault);
    let expected = found.iter().filter(|f| f.expected).count();
    Summary {
        algorithm: input.algorithm,
        model: p.model,
        seed: input.seed,
        nodes: n,
        events_scheduled: input.scheduled,
        events_run: input.ran,
        heals: heals.len(),
        reports: input.entries.len(),
        slack_ms: input.slack as f64 / 1000.0,
        liveness_bound_ms: input.bound as f64 / 1000.0,
        reconvergence: Spread::of(reconvergence),
        unavailable_ms: unavailable as f64 / 1000.0,
        unavailable_fraction: if campaign == 0 {
            0.0
        } else {
            unavailable as f64 / campaign as f64
        },
        campaign_ms: campaign as f64 / 1000.0,
        expected,
        unexpected: found.len() - expected,
        violations: found,
    }
}
