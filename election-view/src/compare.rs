//! The comparison report of `election sim compare`: per algorithm, side by side, over many seeds —
//! time to a stable leader (a CDF), unavailability (time without an agreed leader, box plots),
//! messages by type (stacked bars), elections started and leader changes — as one self-contained
//! `report.html` (hand-written SVG, no script needed), and the per-seed rows as CSV.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::html::{escape, page_start};
use crate::metrics::Measures;
use crate::run::Time;

/// Everything the report shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CompareData {
    /// Shown at the top, e.g. `5 nodes · 100 seeds · random faults`.
    pub title: String,
    /// Facts shown under the title, in order (nodes, seeds, faults, timing, version, …).
    pub details: Vec<(String, String)>,
    /// One entry per algorithm, in the order shown.
    pub algorithms: Vec<AlgorithmRuns>,
}

/// The runs of one algorithm.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlgorithmRuns {
    /// The algorithm's name.
    pub algorithm: String,
    /// One row per seed.
    pub runs: Vec<SeedRow>,
}

/// What the report's summary table says of one algorithm's runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlgorithmSummary {
    /// Runs (seeds).
    pub runs: usize,
    /// Runs that ended with a stable leader.
    pub settled: usize,
    /// Time to a stable leader over the settled runs: median, p90, max.
    pub stable_us: Option<[Time; 3]>,
    /// Median time without an agreed leader.
    pub unavailable_median_us: Option<Time>,
    /// Time without an agreed leader over all runs' time, in percent.
    pub unavailable_percent: f64,
    /// Mean messages per run.
    pub messages_mean: f64,
    /// Mean elections started per run.
    pub elections_mean: f64,
    /// Mean leader changes per run.
    pub leader_changes_mean: f64,
    /// Runs that broke an invariant.
    pub violations: usize,
}

impl AlgorithmRuns {
    /// The summary of these runs.
    pub fn summary(&self) -> AlgorithmSummary {
        let times = sorted(self.runs.iter().filter_map(|r| r.time_to_stable_us));
        let unavailable = sorted(self.runs.iter().map(|r| r.unavailable_us));
        let total: u64 = self.runs.iter().map(|r| r.duration_us).sum();
        let down: u64 = self.runs.iter().map(|r| r.unavailable_us).sum();
        AlgorithmSummary {
            runs: self.runs.len(),
            settled: times.len(),
            stable_us: times
                .last()
                .map(|&max| [pct(&times, 0.5).unwrap(), pct(&times, 0.9).unwrap(), max]),
            unavailable_median_us: pct(&unavailable, 0.5),
            unavailable_percent: if total == 0 {
                0.0
            } else {
                100.0 * down as f64 / total as f64
            },
            messages_mean: mean(self.runs.iter().map(SeedRow::total_messages)),
            elections_mean: mean(self.runs.iter().map(|r| r.elections_started)),
            leader_changes_mean: mean(self.runs.iter().map(|r| r.leader_changes)),
            violations: self.runs.iter().filter(|r| r.violation.is_some()).count(),
        }
    }
}

/// One run (one seed) of one algorithm.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeedRow {
    /// The seed.
    pub seed: u64,
    /// From the calm (the last fault) to the stable leader; `None` if it did not settle.
    pub time_to_stable_us: Option<Time>,
    /// Time without an agreed leader (see [`crate::agreed_leader`]).
    pub unavailable_us: Time,
    /// Length of the run.
    pub duration_us: Time,
    /// Messages sent, by type.
    pub messages: BTreeMap<String, u64>,
    /// Transitions into `Election`.
    pub elections_started: u64,
    /// Changes of the agreed leader.
    pub leader_changes: u64,
    /// The broken invariant, if any, as one line.
    pub violation: Option<String>,
}

impl SeedRow {
    /// The row of a run measured by [`Measures::of`], with what only the simulator knows.
    pub fn new(
        seed: u64,
        measures: &Measures,
        time_to_stable_us: Option<Time>,
        violation: Option<String>,
    ) -> SeedRow {
        SeedRow {
            seed,
            time_to_stable_us,
            unavailable_us: measures.unavailable_us,
            duration_us: measures.duration_us,
            messages: measures.messages.clone(),
            elections_started: measures.elections_started,
            leader_changes: measures.leader_changes,
            violation,
        }
    }

    /// Messages of all types.
    pub fn total_messages(&self) -> u64 {
        self.messages.values().sum()
    }
}

/// Writes one CSV row per seed and algorithm: `algorithm, seed, time_to_stable_us (empty if it
/// did not settle), unavailable_us, duration_us, messages, elections_started, leader_changes,
/// violation`, then one `msg_<Type>` column per message type of any algorithm (alphabetical).
pub fn write_csv(data: &CompareData, out: impl Write) -> std::io::Result<()> {
    let mut kinds: Vec<&str> = data
        .algorithms
        .iter()
        .flat_map(|a| {
            a.runs
                .iter()
                .flat_map(|r| r.messages.keys().map(String::as_str))
        })
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mut w = csv::Writer::from_writer(out);
    let mut header: Vec<String> = [
        "algorithm",
        "seed",
        "time_to_stable_us",
        "unavailable_us",
        "duration_us",
        "messages",
        "elections_started",
        "leader_changes",
        "violation",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    header.extend(kinds.iter().map(|k| format!("msg_{k}")));
    w.write_record(&header)?;
    for a in &data.algorithms {
        for r in &a.runs {
            let mut record = vec![
                a.algorithm.clone(),
                r.seed.to_string(),
                r.time_to_stable_us.map_or(String::new(), |t| t.to_string()),
                r.unavailable_us.to_string(),
                r.duration_us.to_string(),
                r.total_messages().to_string(),
                r.elections_started.to_string(),
                r.leader_changes.to_string(),
                r.violation.clone().unwrap_or_default(),
            ];
            record.extend(
                kinds
                    .iter()
                    .map(|k| r.messages.get(*k).copied().unwrap_or(0).to_string()),
            );
            w.write_record(&record)?;
        }
    }
    w.flush()
}

const ALGORITHM_COLOR: [&str; 6] = [
    "#1f6fb4", "#d6452f", "#1a9c8c", "#8e5bc4", "#c27c0e", "#d43f8d",
];
const KIND_COLOR: [&str; 12] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#2f5f8a", "#a05d16",
];

const STYLE: &str = r##"
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1d2530; margin: 0; background: #f6f7f9; }
main { max-width: 1180px; margin: 0 auto; padding: 18px 22px 40px; }
h1 { font-size: 21px; margin: 0 0 6px; }
h2 { font-size: 15px; margin: 0 0 2px; }
p.what { margin: 0 0 10px; color: #667085; font-size: 13px; }
.chips { display: flex; flex-wrap: wrap; gap: 5px; margin-bottom: 14px; }
.chip { background: #fff; border: 1px solid #d8dde5; border-radius: 10px; padding: 0 9px; color: #667085; font-size: 12px; }
.chip b { color: #1d2530; font-weight: 600; }
section { background: #fff; border: 1px solid #e3e7ed; border-radius: 8px; padding: 14px 16px; margin-bottom: 14px; }
.row { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; }
.row section { margin-bottom: 0; }
table { border-collapse: collapse; width: 100%; font-size: 13px; font-variant-numeric: tabular-nums; }
th { text-align: right; font-weight: 500; color: #667085; border-bottom: 1px solid #d8dde5; padding: 3px 8px; }
td { text-align: right; padding: 3px 8px; border-bottom: 1px solid #f0f2f5; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
td.bad { color: #b42318; font-weight: 600; }
.alg { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
svg { display: block; width: 100%; height: auto; }
svg text { font-family: inherit; }
.tick { font-size: 11px; fill: #667085; }
.axis-title { font-size: 11px; fill: #475467; }
.gridline { stroke: #eef0f3; }
.label { font-size: 12px; fill: #1d2530; }
.value { font-size: 11px; fill: #475467; }
.legend { display: flex; flex-wrap: wrap; gap: 2px 12px; font-size: 12px; color: #475467; margin: 2px 0 10px 11.8%; }
.legend b { font-weight: 600; color: #1d2530; }
.sw { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
details summary { cursor: pointer; font-weight: 600; }
details table { margin-top: 8px; }
"##;

/// Sorted copy of `values`.
fn sorted(values: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let mut v: Vec<u64> = values.into_iter().collect();
    v.sort_unstable();
    v
}

/// Nearest-rank percentile of sorted `v` (`None` if empty).
fn pct(v: &[u64], q: f64) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

fn mean(v: impl IntoIterator<Item = u64>) -> f64 {
    let (sum, n) = v
        .into_iter()
        .fold((0.0, 0usize), |(s, n), x| (s + x as f64, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// A duration for the report: µs below 1 ms, ms with one decimal below 10 s, s above.
/// A duration in µs as people read it: `740 µs`, `212.4 ms`, `12.50 s`.
pub fn human_time(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 10_000_000 {
        format!("{:.1} ms", us as f64 / 1_000.0)
    } else {
        format!("{:.2} s", us as f64 / 1e6)
    }
}

/// An axis tick: whole milliseconds or seconds.
fn ms(us: f64) -> String {
    if us >= 10e6 {
        format!("{} s", num((us / 1e5).round() / 10.0))
    } else {
        format!("{} ms", num((us / 100.0).round() / 10.0))
    }
}

/// Round tick positions covering `0..=max`.
fn ticks(max: f64) -> (f64, Vec<f64>) {
    let max = if max > 0.0 { max } else { 1.0 };
    let raw = max / 5.0;
    let p = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p);
    let top = (max / step).ceil() * step;
    let n = (top / step).round() as usize;
    (top, (0..=n).map(|i| i as f64 * step).collect())
}

/// A number for people: integers plainly, others with one decimal.
fn num(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.1}")
    }
}

/// Draws a horizontal value axis with grid lines at `x0..x1`, from `y0` down to `y1`.
fn value_axis(
    out: &mut String,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
    top: f64,
    ticks: &[f64],
    label: impl Fn(f64) -> String,
    title: &str,
) {
    for &t in ticks {
        let x = x0 + (x1 - x0) * t / top;
        let _ = write!(
            out,
            r##"<line class="gridline" x1="{x:.1}" x2="{x:.1}" y1="{y0}" y2="{y1}"/><text class="tick" x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            y1 + 14.0,
            escape(&label(t))
        );
    }
    let _ = write!(
        out,
        r##"<text class="axis-title" x="{:.1}" y="{}" text-anchor="middle">{}</text>"##,
        (x0 + x1) / 2.0,
        y1 + 30.0,
        escape(title)
    );
}

fn cdf_chart(data: &CompareData) -> String {
    let (w, h, x0, x1, y0, y1) = (1100.0, 300.0, 60.0, 1080.0, 12.0, 250.0);
    let all: Vec<u64> = data
        .algorithms
        .iter()
        .flat_map(|a| a.runs.iter().filter_map(|r| r.time_to_stable_us))
        .collect();
    let (top, xt) = ticks(all.iter().copied().max().unwrap_or(1) as f64);
    let mut out = format!(
        r##"<svg viewBox="0 0 {w} {h}" role="img" aria-label="time to a stable leader, CDF">"##
    );
    for i in 0..=4 {
        let f = i as f64 / 4.0;
        let y = y1 - (y1 - y0) * f;
        let _ = write!(
            out,
            r##"<line class="gridline" x1="{x0}" x2="{x1}" y1="{y:.1}" y2="{y:.1}"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{}%</text>"##,
            x0 - 6.0,
            y + 4.0,
            (f * 100.0) as u32
        );
    }
    value_axis(
        &mut out,
        (x0, x1),
        (y0, y1),
        top,
        &xt,
        ms,
        "time from the last fault to a stable leader",
    );
    let x = |t: f64| x0 + (x1 - x0) * t / top;
    let y = |f: f64| y1 - (y1 - y0) * f;
    for (i, a) in data.algorithms.iter().enumerate() {
        let color = ALGORITHM_COLOR[i % ALGORITHM_COLOR.len()];
        let n = a.runs.len().max(1) as f64;
        let times = sorted(a.runs.iter().filter_map(|r| r.time_to_stable_us));
        // A step function: the fraction of all runs (settled or not) stable by time t.
        let mut d = format!("M{:.1} {:.1}", x(0.0), y(0.0));
        for (j, &t) in times.iter().enumerate() {
            let _ = write!(d, "H{:.1}V{:.1}", x(t as f64), y((j + 1) as f64 / n));
        }
        let _ = write!(d, "H{x1:.1}");
        let unsettled = a.runs.len() - times.len();
        let _ = write!(
            out,
            r##"<path class="cdf" data-algorithm="{}" d="{d}" fill="none" stroke="{color}" stroke-width="2.2"><title>{}: {} of {} runs settled; median {}</title></path>"##,
            escape(&a.algorithm),
            escape(&a.algorithm),
            times.len(),
            a.runs.len(),
            pct(&times, 0.5).map_or("—".into(), human_time),
        );
        if unsettled > 0 {
            let _ = write!(
                out,
                r##"<text class="value" x="{:.1}" y="{:.1}" text-anchor="end" fill="{color}">{} did not settle</text>"##,
                x1 - 4.0,
                y(times.len() as f64 / n) - 4.0,
                unsettled
            );
        }
    }
    out.push_str("</svg>");
    out
}

fn box_chart(data: &CompareData) -> String {
    let rows = data.algorithms.len().max(1) as f64;
    let (x0, x1, row_h) = (130.0, 530.0, 34.0);
    let h = 16.0 + rows * row_h + 40.0;
    let values: Vec<Vec<u64>> = data
        .algorithms
        .iter()
        .map(|a| sorted(a.runs.iter().map(|r| r.unavailable_us)))
        .collect();
    let max = values.iter().flatten().copied().max().unwrap_or(1) as f64;
    let (top, xt) = ticks(max);
    let mut out =
        format!(r##"<svg viewBox="0 0 560 {h}" role="img" aria-label="unavailability">"##);
    let y_axis = 16.0 + rows * row_h;
    value_axis(
        &mut out,
        (x0, x1),
        (8.0, y_axis),
        top,
        &xt,
        ms,
        "time without an agreed leader, per run",
    );
    let x = |v: u64| x0 + (x1 - x0) * v as f64 / top;
    for (i, (a, v)) in data.algorithms.iter().zip(&values).enumerate() {
        let color = ALGORITHM_COLOR[i % ALGORITHM_COLOR.len()];
        let yc = 16.0 + i as f64 * row_h + row_h / 2.0;
        let _ = write!(
            out,
            r##"<text class="label" x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            x0 - 10.0,
            yc + 4.0,
            escape(&a.algorithm)
        );
        let (Some(lo), Some(q1), Some(med), Some(q3), Some(hi)) = (
            v.first().copied(),
            pct(v, 0.25),
            pct(v, 0.5),
            pct(v, 0.75),
            v.last().copied(),
        ) else {
            continue;
        };
        let _ = write!(
            out,
            r##"<g class="box" data-algorithm="{}"><title>{}: min {}, quartiles {} / {} / {}, max {}</title><line x1="{:.1}" x2="{:.1}" y1="{yc:.1}" y2="{yc:.1}" stroke="{color}" stroke-width="1.5"/><rect x="{:.1}" y="{:.1}" width="{:.1}" height="16" fill="{color}" fill-opacity="0.25" stroke="{color}" stroke-width="1.5"/><line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="3"/></g>"##,
            escape(&a.algorithm),
            escape(&a.algorithm),
            human_time(lo),
            human_time(q1),
            human_time(med),
            human_time(q3),
            human_time(hi),
            x(lo),
            x(hi),
            x(q1),
            yc - 8.0,
            (x(q3) - x(q1)).max(1.0),
            x(med),
            x(med),
            yc - 8.0,
            yc + 8.0
        );
        let _ = write!(
            out,
            r##"<text class="value" x="{:.1}" y="{:.1}">{}</text>"##,
            x(hi) + 6.0,
            yc + 4.0,
            human_time(med)
        );
    }
    out.push_str("</svg>");
    out
}

fn messages_chart(data: &CompareData) -> String {
    // One row per algorithm: its label, its stacked bar on the shared scale, and its legend (in
    // HTML, so that long type names wrap instead of overprinting); the axis below them all.
    let (w, x0, x1) = (1100.0, 130.0, 1020.0);
    let means: Vec<Vec<(String, f64)>> = data
        .algorithms
        .iter()
        .map(|a| {
            let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
            for r in &a.runs {
                for (k, v) in &r.messages {
                    *kinds.entry(k).or_default() += v;
                }
            }
            let n = a.runs.len().max(1) as f64;
            kinds
                .into_iter()
                .map(|(k, v)| (k.to_string(), v as f64 / n))
                .collect()
        })
        .collect();
    let max = means
        .iter()
        .map(|m| m.iter().map(|(_, v)| v).sum::<f64>())
        .fold(0.0, f64::max);
    let (top, xt) = ticks(max);
    let mut out = String::new();
    for (a, kinds) in data.algorithms.iter().zip(&means) {
        let _ = write!(
            out,
            r##"<svg viewBox="0 0 {w} 26" role="img" aria-label="{}"><text class="label" x="{}" y="17" text-anchor="end">{}</text>"##,
            escape(&a.algorithm),
            x0 - 10.0,
            escape(&a.algorithm)
        );
        let mut at = x0;
        for (j, (kind, v)) in kinds.iter().enumerate() {
            let wdt = (x1 - x0) * v / top;
            let color = KIND_COLOR[j % KIND_COLOR.len()];
            let _ = write!(
                out,
                r##"<rect class="seg" data-algorithm="{}" data-kind="{}" x="{at:.1}" y="2" width="{wdt:.1}" height="22" fill="{color}" stroke="#fff" stroke-width="0.8"><title>{}: {} — {} per run</title></rect>"##,
                escape(&a.algorithm),
                escape(kind),
                escape(&a.algorithm),
                escape(kind),
                num((v * 10.0).round() / 10.0)
            );
            if wdt > 34.0 {
                let _ = write!(
                    out,
                    r##"<text class="value" x="{:.1}" y="17" text-anchor="middle" style="fill:#fff">{}</text>"##,
                    at + wdt / 2.0,
                    num(v.round())
                );
            }
            at += wdt;
        }
        let total: f64 = kinds.iter().map(|(_, v)| v).sum();
        let _ = write!(
            out,
            r##"<text class="value" x="{:.1}" y="17">{}</text></svg><div class="legend">"##,
            at + 6.0,
            num(total.round())
        );
        for (j, (kind, v)) in kinds.iter().enumerate() {
            let _ = write!(
                out,
                r##"<span><span class="sw" style="background:{}"></span>{} <b>{}</b></span>"##,
                KIND_COLOR[j % KIND_COLOR.len()],
                escape(kind),
                num((v * 10.0).round() / 10.0)
            );
        }
        out.push_str("</div>");
    }
    let _ = write!(
        out,
        r##"<svg viewBox="0 0 {w} 40" role="img" aria-label="scale">"##
    );
    value_axis(
        &mut out,
        (x0, x1),
        (0.0, 4.0),
        top,
        &xt,
        num,
        "messages per run (mean), by type",
    );
    out.push_str("</svg>");
    out
}

/// Mean per run of `value`, as bars with a p90 tick.
fn bars_chart(data: &CompareData, what: &str, value: impl Fn(&SeedRow) -> u64) -> String {
    let (x0, x1, row_h) = (130.0, 520.0, 30.0);
    let rows = data.algorithms.len().max(1) as f64;
    let h = 10.0 + rows * row_h + 40.0;
    let stats: Vec<(f64, u64)> = data
        .algorithms
        .iter()
        .map(|a| {
            let v = sorted(a.runs.iter().map(&value));
            (mean(v.iter().copied()), pct(&v, 0.9).unwrap_or(0))
        })
        .collect();
    let max = stats
        .iter()
        .map(|&(m, p)| m.max(p as f64))
        .fold(0.0, f64::max);
    let (top, xt) = ticks(max);
    let mut out = format!(
        r##"<svg viewBox="0 0 560 {h}" role="img" aria-label="{}">"##,
        escape(what)
    );
    let y_axis = 10.0 + rows * row_h;
    value_axis(
        &mut out,
        (x0, x1),
        (4.0, y_axis),
        top,
        &xt,
        num,
        &format!("{what} per run: mean (bar), 90th percentile (tick)"),
    );
    let x = |v: f64| x0 + (x1 - x0) * v / top;
    for (i, (a, &(m, p90))) in data.algorithms.iter().zip(&stats).enumerate() {
        let color = ALGORITHM_COLOR[i % ALGORITHM_COLOR.len()];
        let y = 10.0 + i as f64 * row_h;
        let _ = write!(
            out,
            r##"<text class="label" x="{}" y="{:.1}" text-anchor="end">{}</text><rect class="bar" data-algorithm="{}" x="{x0}" y="{y:.1}" width="{:.1}" height="18" fill="{color}" fill-opacity="0.8"><title>{}: mean {}, p90 {}</title></rect><line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#1d2530" stroke-width="2"/><text class="value" x="{:.1}" y="{:.1}">{}</text>"##,
            x0 - 10.0,
            y + 13.0,
            escape(&a.algorithm),
            escape(&a.algorithm),
            (x(m) - x0).max(0.5),
            escape(&a.algorithm),
            num((m * 10.0).round() / 10.0),
            p90,
            x(p90 as f64),
            x(p90 as f64),
            y - 2.0,
            y + 20.0,
            x(m.max(p90 as f64)) + 6.0,
            y + 13.0,
            num((m * 10.0).round() / 10.0)
        );
    }
    out.push_str("</svg>");
    out
}

fn summary_table(data: &CompareData) -> String {
    let mut out = String::from(
        "<table id=\"summary\"><thead><tr><th>algorithm</th><th>runs</th><th>settled</th>\
         <th>stable leader median</th><th>p90</th><th>max</th><th>unavailable median</th>\
         <th>share of run</th><th>messages / run</th><th>elections / run</th>\
         <th>leader changes / run</th><th>violations</th></tr></thead><tbody>",
    );
    for (i, a) in data.algorithms.iter().enumerate() {
        let color = ALGORITHM_COLOR[i % ALGORITHM_COLOR.len()];
        let s = a.summary();
        let d = |v: Option<u64>| v.map_or("—".to_string(), human_time);
        let stable = |i: usize| d(s.stable_us.map(|t| t[i]));
        let _ = write!(
            out,
            "<tr data-algorithm=\"{}\"><td><span class=\"alg\" style=\"background:{color}\"></span>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1} %</td>\
             <td>{:.1}</td><td>{:.1}</td><td>{:.2}</td><td{}>{}</td></tr>",
            escape(&a.algorithm),
            escape(&a.algorithm),
            s.runs,
            s.settled,
            stable(0),
            stable(1),
            stable(2),
            d(s.unavailable_median_us),
            s.unavailable_percent,
            s.messages_mean,
            s.elections_mean,
            s.leader_changes_mean,
            if s.violations > 0 {
                " class=\"bad\""
            } else {
                ""
            },
            s.violations,
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn seeds_table(data: &CompareData) -> String {
    let mut out = String::from(
        "<details><summary>Every run</summary><table id=\"runs\"><thead><tr><th>algorithm</th>\
         <th>seed</th><th>stable leader after</th><th>unavailable</th><th>duration</th>\
         <th>messages</th><th>elections</th><th>leader changes</th><th>violation</th></tr>\
         </thead><tbody>",
    );
    for a in &data.algorithms {
        for r in &a.runs {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td{}>{}</td></tr>",
                escape(&a.algorithm),
                r.seed,
                r.time_to_stable_us
                    .map_or("did not settle".into(), human_time),
                human_time(r.unavailable_us),
                human_time(r.duration_us),
                r.total_messages(),
                r.elections_started,
                r.leader_changes,
                if r.violation.is_some() {
                    " class=\"bad\""
                } else {
                    ""
                },
                escape(r.violation.as_deref().unwrap_or("")),
            );
        }
    }
    out.push_str("</tbody></table></details>");
    out
}

/// The comparison as a self-contained `report.html`.
pub fn render_compare(data: &CompareData) -> String {
    let title = if data.title.is_empty() {
        "Algorithm comparison".to_string()
    } else {
        data.title.clone()
    };
    let mut page = page_start(&title, STYLE);
    let chips: String = data
        .details
        .iter()
        .map(|(k, v)| {
            format!(
                "<span class=\"chip\">{} <b>{}</b></span>",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let legend: String = data
        .algorithms
        .iter()
        .enumerate()
        .map(|(i, a)| {
            format!(
                "<span><span class=\"sw\" style=\"background:{}\"></span>{}</span>",
                ALGORITHM_COLOR[i % ALGORITHM_COLOR.len()],
                escape(&a.algorithm)
            )
        })
        .collect();
    let _ = write!(
        page,
        "<body>\n<div id=\"page-error\" hidden></div>\n<main>\n<h1>{}</h1>\n<div class=\"chips\">{chips}</div>\n\
         <section><h2>Summary</h2><p class=\"what\">Per algorithm over all seeds. A stable leader is \
         the leader the cluster keeps from the last fault on; unavailable means no agreed leader \
         (every live node Normal behind one live leader).</p>{}</section>\n\
         <section><h2>Time to a stable leader</h2><p class=\"what\">Share of runs with a stable \
         leader by that time after the last fault (runs that never settled keep the curve below \
         100 %).</p><div class=\"legend\" style=\"margin-left:5.5%\">{legend}</div>{}</section>\n\
         <div class=\"row\"><section><h2>Unavailability</h2><p class=\"what\">Box: quartiles and \
         median; whiskers: min to max.</p>{}</section>\n<section><h2>Leader changes</h2>\
         <p class=\"what\">How often the agreed leader moved to another node.</p>{}</section></div>\n\
         <section style=\"margin-top:14px\"><h2>Messages by type</h2><p class=\"what\">Mean \
         messages sent per run; every copy of a broadcast counts.</p>{}</section>\n\
         <div class=\"row\"><section><h2>Elections started</h2><p class=\"what\">Transitions of any \
         node into Election.</p>{}</section>\n<section>{}</section></div>\n</main>\n</body>\n</html>\n",
        escape(&title),
        summary_table(data),
        cdf_chart(data),
        box_chart(data),
        bars_chart(data, "leader changes", |r| r.leader_changes),
        messages_chart(data),
        bars_chart(data, "elections started", |r| r.elections_started),
        seeds_table(data),
    );
    page
}
