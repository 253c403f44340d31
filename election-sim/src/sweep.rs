//! Sweeps over many seeds: on every core (`--jobs`), split across machines (`--shard K/N`), and
//! merged back (`sim merge`), always with the verdict of a serial run over the same seeds.
//!
//! - Seeds run in chunks; within a chunk they run in parallel and their results are kept in seed
//!   order, so the reported failure is the *lowest* failing seed, as a serial sweep stops at, and
//!   the summary of a passing sweep is built from the runs in seed order.
//! - A shard `K/N` runs the seeds `s` of the range with `s mod N = K`. Its report holds the
//!   summary's full distributions (value → count), so merging the shards' reports gives exactly
//!   the report of the unsharded sweep (only the timing fields `wall_s` and `seeds_per_s`
//!   differ): the lowest failing seed over all shards, or the merged summary.

use std::fmt;
use std::str::FromStr;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::check::Violation;
use crate::sim::Outcome;
use crate::stats::{RunStats, Summary};

/// `K/N`: this machine's share of a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Shard {
    /// Which share, `0..of`.
    pub index: u64,
    /// How many shares.
    pub of: u64,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.of)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not K/N with 0 <= K < N (e.g. 0/4)");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, of): (u64, u64) =
            (k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        if of == 0 || index >= of {
            return Err(bad());
        }
        Ok(Shard { index, of })
    }
}

impl Serialize for Shard {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Shard {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The seeds of a sweep: `first..first + count`, or one shard of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seeds {
    /// The first seed of the whole sweep.
    pub first_seed: u64,
    /// Seeds in the whole sweep.
    pub seeds: u64,
    /// This machine's share, or `None` for the whole sweep.
    pub shard: Option<Shard>,
}

impl Seeds {
    /// The seeds this sweep runs, in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (self.first_seed..self.first_seed.saturating_add(self.seeds))
            .filter(|s| self.shard.is_none_or(|sh| s % sh.of == sh.index))
    }

    /// How many seeds this sweep runs.
    pub fn len(&self) -> u64 {
        self.iter().count() as u64
    }

    /// Whether it runs none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The lowest failing seed of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// What it broke.
    pub violation: Violation,
    /// The fault kinds its plan could draw (swarm testing), for the report.
    pub fault_kinds: Vec<String>,
    /// The command that reproduces it.
    pub reproduce: String,
    /// Its results folder (trace, summary, pictures), once written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<std::path::PathBuf>,
}

/// What a sweep found: the summary of the seeds it ran, or the lowest failing seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The algorithm.
    pub algorithm: String,
    /// Nodes at boot.
    pub nodes: u32,
    /// The cluster flags of the sweep (the same on every shard).
    pub flags: String,
    /// Which seeds.
    #[serde(flatten)]
    pub range: Seeds,
    /// Seeds that passed: all of them, or those below the failing seed.
    pub passed: u64,
    /// The summary of a passing sweep (with mergeable distributions).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub summary: Option<Summary>,
    /// The lowest failing seed.
    #[serde(flatten, skip_serializing_if = "Option::is_none", default)]
    pub failure: Option<Failure>,
    /// Wall-clock seconds the sweep took (not compared by a merge).
    pub wall_s: f64,
    /// Seeds per wall-clock second (not compared by a merge).
    pub seeds_per_s: f64,
}

impl Report {
    /// Whether the sweep passed.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// Runs `run` for every seed of `range` on `jobs` threads and reports the serial verdict: the
/// lowest failing seed (then `on_failure` describes it) or the summary of all runs. `progress`
/// shows a bar with rate and ETA on a terminal.
pub fn sweep(
    range: Seeds,
    jobs: usize,
    progress: bool,
    run: impl Fn(u64) -> Result<Outcome, String> + Sync,
    on_failure: impl FnOnce(u64, Violation) -> Failure,
) -> Result<(u64, Result<Summary, Failure>, f64), String> {
    let started = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| format!("cannot start {jobs} worker threads: {e}"))?;
    let seeds: Vec<u64> = range.iter().collect();
    let bar = if progress {
        ProgressBar::new(seeds.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} seeds  {per_sec}  ETA {eta}")
            .expect("a valid template"),
    );
    // Chunks big enough to keep every thread busy, small enough to stop soon after a failure.
    let chunk = jobs.max(1) * 256;
    let mut runs: Vec<RunStats> = Vec::with_capacity(seeds.len());
    for batch in seeds.chunks(chunk) {
        let outcomes: Vec<Result<Outcome, String>> =
            pool.install(|| batch.par_iter().map(|&seed| run(seed)).collect());
        for (&seed, outcome) in batch.iter().zip(outcomes) {
            let outcome = outcome?;
            if let Some(v) = outcome.violation {
                bar.finish_and_clear();
                let wall = started.elapsed().as_secs_f64();
                return Ok((runs.len() as u64, Err(on_failure(seed, v)), wall));
            }
            runs.push(outcome.stats);
        }
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    Ok((runs.len() as u64, Ok(Summary::of(&runs)), wall))
}

/// Combines the reports of the shards of one sweep into the report of the whole sweep.
pub fn merge(mut reports: Vec<Report>) -> Result<Report, String> {
    let first = reports.first().ok_or("no reports to merge")?.clone();
    let of = first
        .range
        .shard
        .ok_or("the first report is of a whole sweep, not of a shard")?
        .of;
    reports.sort_by_key(|r| r.range.shard);
    for (i, r) in reports.iter().enumerate() {
        let same = r.algorithm == first.algorithm
            && r.nodes == first.nodes
            && r.flags == first.flags
            && r.range.first_seed == first.range.first_seed
            && r.range.seeds == first.range.seeds;
        if !same {
            return Err(format!(
                "shard {} is of another sweep ({} {}, seeds {}+{}) than shard {} ({} {}, seeds {}+{})",
                r.range.shard.map_or("-".into(), |s| s.to_string()),
                r.algorithm,
                r.flags,
                r.range.first_seed,
                r.range.seeds,
                first.range.shard.map_or("-".into(), |s| s.to_string()),
                first.algorithm,
                first.flags,
                first.range.first_seed,
                first.range.seeds
            ));
        }
        let want = Shard {
            index: i as u64,
            of,
        };
        if r.range.shard != Some(want) {
            return Err(format!(
                "expected shard {want} of {of}, found {} (each shard 0/{of} … {}/{of} exactly once)",
                r.range
                    .shard
                    .map_or("a whole sweep".into(), |s| s.to_string()),
                of - 1
            ));
        }
    }
    if reports.len() as u64 != of {
        return Err(format!("{} of {of} shards given", reports.len()));
    }
    let range = Seeds {
        shard: None,
        ..first.range
    };
    let wall_s = reports.iter().map(|r| r.wall_s).fold(0.0, f64::max);
    let seeds_per_s = if wall_s > 0.0 {
        range.seeds as f64 / wall_s
    } else {
        0.0
    };
    let lowest = reports
        .iter()
        .filter_map(|r| r.failure.clone())
        .min_by_key(|f| f.seed);
    let (passed, summary, failure) = match lowest {
        Some(f) => (f.seed - range.first_seed, None, Some(f)),
        None => {
            let summaries: Vec<&Summary> = reports
                .iter()
                .map(|r| {
                    r.summary
                        .as_ref()
                        .ok_or("a passing shard without a summary")
                })
                .collect::<Result<_, _>>()?;
            (range.seeds, Some(Summary::merge(summaries)), None)
        }
    };
    Ok(Report {
        range,
        passed,
        summary,
        failure,
        wall_s,
        seeds_per_s,
        ..first
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_the_seeds_exactly() {
        let whole = Seeds {
            first_seed: 10,
            seeds: 25,
            shard: None,
        };
        let mut all: Vec<u64> = (0..4)
            .flat_map(|index| {
                Seeds {
                    shard: Some(Shard { index, of: 4 }),
                    ..whole
                }
                .iter()
                .collect::<Vec<_>>()
            })
            .collect();
        all.sort_unstable();
        assert_eq!(all, whole.iter().collect::<Vec<_>>());
        assert_eq!("3/4".parse::<Shard>(), Ok(Shard { index: 3, of: 4 }));
        for bad in ["4/4", "1", "a/b", "0/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
