//! `election sim compare`: every algorithm under the same fault plan and seeds, side by side —
//! `report.html` (time to a stable leader, unavailability, messages by type, elections, leader
//! changes), the per-seed rows as `runs.csv`, everything as `data.json`, and a table on stdout.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use election_core::{Algorithm, ConfigOf, MILLIS, Protocol, Timing};
use election_view::{
    AlgorithmRuns, CompareData, Measures, SeedRow, human_time, render_compare, write_csv,
};
use rayon::prelude::*;

use crate::plan::{Plan, RandomFaults};
use crate::trace::{DEFAULT_TIMING, Spec};

/// Arguments of `compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// Scenario file every algorithm runs (TOML, or JSON if it ends in .json). Default: a random
    /// plan per seed, the same for every algorithm, without joins and leaves (which not every
    /// algorithm supports).
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// Seeds per algorithm.
    #[arg(long, default_value_t = 20)]
    pub seeds: u64,
    /// First seed; seeds FIRST_SEED..FIRST_SEED+SEEDS are run.
    #[arg(long, default_value_t = 0)]
    pub first_seed: u64,
    /// Nodes at boot.
    #[arg(long, default_value_t = 5)]
    pub nodes: u32,
    /// Only these algorithms, in this order (repeatable; default: every built-in one).
    #[arg(long, value_parser = crate::cli::builtin_algorithm())]
    pub algorithm: Vec<String>,
    /// Heartbeat / coordinator-check period, milliseconds.
    #[arg(long, default_value_t = DEFAULT_TIMING.heartbeat / MILLIS)]
    pub heartbeat_ms: u64,
    /// Reply timeout, milliseconds.
    #[arg(long, default_value_t = DEFAULT_TIMING.timeout / MILLIS)]
    pub timeout_ms: u64,
    /// Where the report goes (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Worker threads (default: every core); the report is the same for any number.
    #[arg(long)]
    pub jobs: Option<usize>,
}

impl CompareArgs {
    fn timing(&self) -> Timing {
        Timing {
            heartbeat: self.heartbeat_ms * MILLIS,
            timeout: self.timeout_ms * MILLIS,
        }
    }
}

/// Runs `compare`: exits 1 if a run broke an invariant (the report shows which).
pub fn compare(args: &CompareArgs) -> Result<ExitCode, String> {
    if args.nodes == 0 || args.seeds == 0 {
        return Err("--nodes and --seeds must be at least 1".into());
    }
    let algorithms: Vec<Algorithm> = if args.algorithm.is_empty() {
        Algorithm::ALL.to_vec()
    } else {
        args.algorithm
            .iter()
            .map(|name| {
                name.parse()
                    .map_err(|e: election_core::UnknownAlgorithm| e.to_string())
            })
            .collect::<Result<_, _>>()?
    };
    let scenario = match &args.plan {
        Some(path) => Some(Plan::load(path, args.nodes).map_err(|e| e.to_string())?),
        None => None,
    };
    let random = RandomFaults {
        membership: false,
        ..RandomFaults::default()
    };
    let plan_of = |seed: u64| match &scenario {
        Some(plan) => plan.clone(),
        None => random.generate(seed, args.nodes),
    };
    let seeds: Vec<u64> = (args.first_seed..args.first_seed + args.seeds).collect();
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| format!("cannot start {jobs} worker threads: {e}"))?;

    let plan_text = match &args.plan {
        Some(path) => format!("{} (every seed)", path.display()),
        None => format!(
            "{} random faults per seed within {} ms, no joins or leaves",
            random.faults,
            random.window_us / MILLIS
        ),
    };
    let mut data = CompareData {
        title: format!(
            "{} nodes · {} seeds · {}",
            args.nodes,
            args.seeds,
            match &args.plan {
                Some(path) => path
                    .file_name()
                    .map_or(path.display().to_string(), |f| f.to_string_lossy().into()),
                None => "random faults".into(),
            }
        ),
        details: vec![
            ("nodes".into(), args.nodes.to_string()),
            (
                "seeds".into(),
                format!("{}–{}", args.first_seed, args.first_seed + args.seeds - 1),
            ),
            ("plan".into(), plan_text),
            (
                "timing".into(),
                format!(
                    "heartbeat {} ms, timeout {} ms",
                    args.heartbeat_ms, args.timeout_ms
                ),
            ),
            ("simulator".into(), env!("CARGO_PKG_VERSION").into()),
        ],
        algorithms: Vec::new(),
    };
    for &algorithm in &algorithms {
        let runs = election_core::with_protocol!(algorithm, P => {
            let config = ConfigOf::<P>::new(args.timing());
            let refuses = !P::properties(&config).membership
                && scenario.as_ref().is_some_and(|p| p.first_membership_change().is_some());
            if refuses {
                // The simulator refuses such a plan for it (see `SimError::Membership`).
                data.details.push((
                    "left out".into(),
                    format!("{}: the plan joins or leaves nodes, which its guarantees exclude", P::NAME),
                ));
                continue;
            }
            pool.install(|| {
                seeds
                    .par_iter()
                    .map(|&seed| row::<P>(args, seed, plan_of(seed)))
                    .collect::<Result<Vec<SeedRow>, String>>()
            })?
        });
        data.algorithms.push(AlgorithmRuns {
            algorithm: algorithm.name().to_string(),
            runs,
        });
    }
    write(&args.out, &data)?;
    print_table(&data);
    println!(
        "report          {} (and runs.csv, data.json)",
        args.out.join("report.html").display()
    );
    let violations: usize = data.algorithms.iter().map(|a| a.summary().violations).sum();
    Ok(if violations == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("{violations} runs broke an invariant: see the report's per-seed table");
        ExitCode::from(1)
    })
}

/// One seed of one algorithm, measured on its trace as the pictures see it.
fn row<P: Protocol>(args: &CompareArgs, seed: u64, plan: Plan) -> Result<SeedRow, String> {
    let spec = Spec {
        timing: args.timing(),
        ..Spec::new(P::NAME, args.nodes, seed, plan)
    };
    let (run, out) = crate::folder::traced::<P>(spec)?;
    Ok(SeedRow::new(
        seed,
        &Measures::of(&run),
        out.stats.time_to_stable,
        out.violation.map(|v| v.to_string()),
    ))
}

fn write(dir: &Path, data: &CompareData) -> Result<(), String> {
    use crate::folder::cannot;
    std::fs::create_dir_all(dir).map_err(|e| cannot("create", dir, e))?;
    let path = dir.join("report.html");
    std::fs::write(&path, render_compare(data)).map_err(|e| cannot("write", &path, e))?;
    let path = dir.join("runs.csv");
    let file = std::fs::File::create(&path).map_err(|e| cannot("create", &path, e))?;
    write_csv(data, std::io::BufWriter::new(file)).map_err(|e| cannot("write", &path, e))?;
    let path = dir.join("data.json");
    let json = serde_json::to_string_pretty(data).expect("the data serializes");
    std::fs::write(&path, json + "\n").map_err(|e| cannot("write", &path, e))
}

fn print_table(data: &CompareData) {
    println!("{}", data.title);
    println!(
        "{:<12} {:>8} {:>10} {:>10} {:>10} {:>12} {:>9} {:>9} {:>10}",
        "algorithm",
        "settled",
        "stable p50",
        "p90",
        "max",
        "unavailable",
        "messages",
        "elections",
        "violations"
    );
    for a in &data.algorithms {
        let s = a.summary();
        let t = |i: usize| s.stable_us.map_or("—".into(), |t| human_time(t[i]));
        println!(
            "{:<12} {:>8} {:>10} {:>10} {:>10} {:>11.1}% {:>9.0} {:>9.1} {:>10}",
            a.algorithm,
            format!("{}/{}", s.settled, s.runs),
            t(0),
            t(1),
            t(2),
            s.unavailable_percent,
            s.messages_mean,
            s.elections_mean,
            s.violations
        );
    }
}
