//! The `election sim …` command line (mounted by the `election` binary; also the standalone
//! `election-sim` binary of this crate).

use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use election_core::{Algorithm, AlgorithmConfig, MILLIS, Protocol, Time, Timing};
use serde::Serialize;

use crate::plan::{Fault, Plan, RandomFaults, TimedFault};
use crate::sim::{Outcome, Sim, SimError};
use crate::stats::{RunStats, Summary};
use crate::trace::{DEFAULT_TIMING, Spec, TraceSink, read_trace};

/// Simulate elections in virtual time.
#[derive(Debug, clap::Subcommand)]
pub enum SimCommand {
    /// Simulate one run and print its statistics and the first violated invariant, if any.
    /// Exits 1 on a violation, 2 on bad input.
    Run(RunArgs),
    /// Simulate many seeds with random faults and stop at the first violation, printing the
    /// seed and the command that reproduces it. Exits 1 on a violation.
    Check(CheckArgs),
    /// Re-run a trace from its header and compare the trace hashes. Exits 1 on a mismatch.
    Replay(ReplayArgs),
    /// Print the message-complexity table (n = 4 … 1,024) of every algorithm next to theory.
    Complexity(ComplexityArgs),
}

/// The cluster and the random fault plan.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Algorithm: bully, invitation, async-bully, ring or raft.
    #[arg(long)]
    pub algorithm: Algorithm,
    /// Nodes at boot (ids 0..N; a higher id has a higher priority).
    #[arg(long, default_value_t = 5)]
    pub nodes: u32,
    /// Heartbeat / coordinator-check period, milliseconds.
    #[arg(long, default_value_t = DEFAULT_TIMING.heartbeat / MILLIS)]
    pub heartbeat_ms: u64,
    /// Reply timeout, milliseconds (each algorithm derives the one-way delay it tolerates from it).
    #[arg(long, default_value_t = DEFAULT_TIMING.timeout / MILLIS)]
    pub timeout_ms: u64,
    /// Random faults drawn from the seed (0 for a fault-free run). Ignored with --plan.
    #[arg(long, default_value_t = RandomFaults::default().faults)]
    pub faults: u32,
    /// Random faults happen within the first WINDOW_MS milliseconds.
    #[arg(long, default_value_t = RandomFaults::default().window_us / MILLIS)]
    pub window_ms: u64,
    /// Largest message-loss probability of a random network.
    #[arg(long, default_value_t = RandomFaults::default().max_loss)]
    pub max_loss: f64,
    /// Largest duplication probability of a random network.
    #[arg(long, default_value_t = RandomFaults::default().max_duplicate)]
    pub max_duplicate: f64,
    /// Largest one-way delay of a random network, milliseconds (may exceed the timeout).
    #[arg(long, default_value_t = RandomFaults::default().max_latency_us / MILLIS)]
    pub max_latency_ms: u64,
    /// Largest clock drift rate (0.1: timers up to 10 % longer or shorter).
    #[arg(long, default_value_t = RandomFaults::default().max_drift)]
    pub max_drift: f64,
    /// Generate no joins or leaves.
    #[arg(long)]
    pub no_membership: bool,
}

impl ClusterArgs {
    fn timing(&self) -> Timing {
        Timing {
            heartbeat: self.heartbeat_ms * MILLIS,
            timeout: self.timeout_ms * MILLIS,
        }
    }

    /// The random-plan intensities these flags describe.
    pub fn random_faults(&self) -> RandomFaults {
        RandomFaults {
            faults: self.faults,
            window_us: self.window_ms * MILLIS,
            max_loss: self.max_loss,
            max_duplicate: self.max_duplicate,
            max_latency_us: self.max_latency_ms * MILLIS,
            max_drift: self.max_drift,
            membership: !self.no_membership,
        }
    }

    fn spec(&self, seed: u64, plan: Plan) -> Spec {
        Spec {
            timing: self.timing(),
            ..Spec::new(self.algorithm.name(), self.nodes, seed, plan)
        }
    }

    /// The flags of this cluster, defaults left out, as `run` and `check` accept them.
    fn flags(&self) -> String {
        let d = RandomFaults::default();
        let mut s = format!("--algorithm {} --nodes {}", self.algorithm, self.nodes);
        let mut add = |on: bool, flag: String| {
            if on {
                s.push(' ');
                s.push_str(&flag);
            }
        };
        add(
            self.timing() != DEFAULT_TIMING,
            format!(
                "--heartbeat-ms {} --timeout-ms {}",
                self.heartbeat_ms, self.timeout_ms
            ),
        );
        add(self.faults != d.faults, format!("--faults {}", self.faults));
        add(
            self.window_ms * MILLIS != d.window_us,
            format!("--window-ms {}", self.window_ms),
        );
        add(
            self.max_loss != d.max_loss,
            format!("--max-loss {}", self.max_loss),
        );
        add(
            self.max_duplicate != d.max_duplicate,
            format!("--max-duplicate {}", self.max_duplicate),
        );
        add(
            self.max_latency_ms * MILLIS != d.max_latency_us,
            format!("--max-latency-ms {}", self.max_latency_ms),
        );
        add(
            self.max_drift != d.max_drift,
            format!("--max-drift {}", self.max_drift),
        );
        add(self.no_membership, "--no-membership".into());
        s
    }

    fn validate(&self) -> Result<(), String> {
        let probability = |name: &str, p: f64| {
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err(format!("--{name} {p} is not a probability in 0..=1"))
            }
        };
        probability("max-loss", self.max_loss)?;
        probability("max-duplicate", self.max_duplicate)?;
        if !(0.0..=0.5).contains(&self.max_drift) {
            return Err(format!("--max-drift {} is outside 0..=0.5", self.max_drift));
        }
        if self.nodes == 0 {
            return Err("--nodes must be at least 1".into());
        }
        Ok(())
    }
}

/// Arguments of `run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub cluster: ClusterArgs,
    /// Master seed of every random draw (plan, delays, losses, protocol randomness).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Scenario file (TOML, or JSON if it ends in .json) instead of a random plan.
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// Write a JSON Lines trace of every event here.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub cluster: ClusterArgs,
    /// Number of seeds to run.
    #[arg(long, default_value_t = 1000)]
    pub seeds: u64,
    /// First seed; seeds FIRST_SEED..FIRST_SEED+SEEDS are run.
    #[arg(long, default_value_t = 0)]
    pub first_seed: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// A trace written by `run --trace`.
    pub trace: PathBuf,
}

/// Arguments of `complexity`.
#[derive(Debug, Clone, clap::Args)]
pub struct ComplexityArgs {
    /// Largest cluster size (sizes are powers of two from 4).
    #[arg(long, default_value_t = 1024)]
    pub max_nodes: u32,
    /// Seeds averaged per cell.
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Only this algorithm (default: all of them).
    #[arg(long)]
    pub algorithm: Option<Algorithm>,
}

/// Runs a spec with the protocol its `algorithm` names.
pub fn simulate(spec: Spec, trace: Option<TraceSink>) -> Result<Outcome, String> {
    let algorithm = spec.algorithm().map_err(|e| e.to_string())?;
    election_core::with_protocol!(algorithm, P => simulate_with::<P>(spec, trace))
        .map_err(|e| e.to_string())
}

fn simulate_with<P: Protocol>(spec: Spec, trace: Option<TraceSink>) -> Result<Outcome, SimError> {
    Ok(Sim::<P>::new(spec, trace)?.run())
}

/// Executes a `sim` subcommand.
pub fn run(cmd: SimCommand) -> ExitCode {
    let result = match cmd {
        SimCommand::Run(args) => run_one(&args),
        SimCommand::Check(args) => check(&args),
        SimCommand::Replay(args) => replay(&args),
        SimCommand::Complexity(args) => complexity(&args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

#[derive(Serialize)]
struct RunReport<'a> {
    algorithm: &'a str,
    nodes: u32,
    seed: u64,
    stats: &'a RunStats,
    violation: &'a Option<crate::check::Violation>,
    trace_hash: Option<String>,
}

fn run_one(args: &RunArgs) -> Result<ExitCode, String> {
    let c = &args.cluster;
    c.validate()?;
    let plan = match &args.plan {
        Some(path) => Plan::load(path, c.nodes).map_err(|e| e.to_string())?,
        None => c.random_faults().generate(args.seed, c.nodes),
    };
    let spec = c.spec(args.seed, plan);
    let trace = match &args.trace {
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(|e| format!("cannot create trace file {}: {e}", path.display()))?;
            Some(TraceSink::new(Box::new(BufWriter::new(file))))
        }
        None => None,
    };
    let out = simulate(spec, trace)?;
    let trace_hash = match out.trace {
        Some(Ok(h)) => Some(format!("{h:016x}")),
        Some(Err(e)) => return Err(format!("writing the trace failed: {e}")),
        None => None,
    };
    if args.json {
        let report = RunReport {
            algorithm: c.algorithm.name(),
            nodes: c.nodes,
            seed: args.seed,
            stats: &out.stats,
            violation: &out.violation,
            trace_hash,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        );
    } else {
        print_stats(&out.stats);
        if let Some(h) = trace_hash {
            println!("trace hash      {h}");
        }
        match &out.violation {
            Some(v) => println!("VIOLATION       {v}"),
            None => println!("ok              all invariants held"),
        }
    }
    Ok(if out.violation.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_stats(s: &RunStats) {
    let fmt_opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    println!("messages        {} ({})", s.messages(), kinds(&s.sent));
    println!(
        "network         delivered {}, lost {}, blocked {}, to down nodes {}, duplicated {}",
        s.delivered, s.lost, s.blocked, s.to_down, s.duplicated
    );
    println!(
        "elections       {} started, {} status changes",
        s.elections_started, s.status_changes
    );
    println!("calm at         {}us", s.calm_at);
    println!(
        "stable leader   {} after {}us and {} messages past the calm",
        fmt_opt(s.leader.map(u64::from)),
        fmt_opt(s.time_to_stable),
        fmt_opt(s.messages_to_stable)
    );
    println!(
        "events          {} (mean queue {:.1})",
        s.events, s.mean_queue
    );
}

fn kinds(sent: &std::collections::BTreeMap<&'static str, u64>) -> String {
    sent.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check(args: &CheckArgs) -> Result<ExitCode, String> {
    let c = &args.cluster;
    c.validate()?;
    let random = c.random_faults();
    let mut runs = Vec::with_capacity(args.seeds as usize);
    let mut progress = Progress::new(args.seeds);
    for i in 0..args.seeds {
        let seed = args.first_seed + i;
        let spec = c.spec(seed, random.generate(seed, c.nodes));
        let out = simulate(spec, None)?;
        if let Some(v) = out.violation {
            progress.clear();
            eprintln!("FAILED after {i} passing seeds: {v}");
            eprintln!("reproduce: election sim run {} --seed {seed}", c.flags());
            eprintln!(
                "trace it:  election sim run {} --seed {seed} --trace seed-{seed}.jsonl",
                c.flags()
            );
            return Ok(ExitCode::from(1));
        }
        runs.push(out.stats);
        progress.tick(i + 1);
    }
    progress.clear();
    let summary = Summary::of(&runs);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).expect("summary serializes")
        );
    } else {
        let t = summary.time_to_stable;
        let m = summary.messages;
        println!(
            "ok: {} seeds ({}..{}) of {} with {} nodes, all invariants held",
            summary.runs,
            args.first_seed,
            args.first_seed + args.seeds,
            c.algorithm,
            c.nodes
        );
        println!(
            "messages        {} ({})",
            summary.sent.values().sum::<u64>(),
            kinds(&summary.sent)
        );
        println!(
            "per run         median {}, p99 {}, max {}",
            m.median, m.p99, m.max
        );
        println!("elections       {} started", summary.elections_started);
        println!(
            "time to stable  median {}us, p99 {}us, max {}us (from the last fault)",
            t.median, t.p99, t.max
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A one-line progress bar on stderr, redrawn at most once per percent.
struct Progress {
    total: u64,
    shown: u64,
    live: bool,
}

impl Progress {
    fn new(total: u64) -> Self {
        Progress {
            total,
            shown: u64::MAX,
            live: std::io::stderr().is_terminal(),
        }
    }

    fn tick(&mut self, done: u64) {
        let percent = done * 100 / self.total.max(1);
        if percent == self.shown {
            return;
        }
        self.shown = percent;
        let filled = (percent / 5) as usize;
        let bar = format!(
            "[{}{}] {done}/{} seeds",
            "#".repeat(filled),
            ".".repeat(20 - filled),
            self.total
        );
        let mut err = std::io::stderr();
        if self.live {
            let _ = write!(err, "\r{bar}");
        } else if percent % 10 == 0 {
            let _ = writeln!(err, "{bar}");
        }
        let _ = err.flush();
    }

    fn clear(&self) {
        if self.live {
            eprint!("\r{}\r", " ".repeat(50));
        }
    }
}

fn replay(args: &ReplayArgs) -> Result<ExitCode, String> {
    let (spec, recorded) = read_trace(&args.trace)?;
    if spec.version != env!("CARGO_PKG_VERSION") {
        eprintln!(
            "warning: trace written by election-sim {}, replaying with {}",
            spec.version,
            env!("CARGO_PKG_VERSION")
        );
    }
    let out = simulate(spec, Some(TraceSink::new(Box::new(std::io::sink()))))?;
    let replayed = match out.trace {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(format!("replay trace failed: {e}")),
        None => return Err("the replay wrote no trace".into()),
    };
    println!("recorded hash {recorded:016x}");
    println!("replayed hash {replayed:016x}");
    if recorded == replayed {
        println!("identical");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("MISMATCH: the run is not reproduced by this build");
        Ok(ExitCode::from(1))
    }
}

/// Heartbeat of the complexity runs: long enough that no periodic check fires during an
/// election, so the counts are the election's own messages.
const COMPLEXITY_HEARTBEAT: Time = 10_000 * MILLIS;

/// The timing of the complexity runs.
const COMPLEXITY_TIMING: Timing = Timing {
    heartbeat: COMPLEXITY_HEARTBEAT,
    timeout: DEFAULT_TIMING.timeout,
};

fn complexity(args: &ComplexityArgs) -> Result<ExitCode, String> {
    let algorithms: Vec<Algorithm> = args.algorithm.map_or(Algorithm::ALL.to_vec(), |a| vec![a]);
    println!(
        "Messages until the last status change (mean of {} seeds).",
        args.seeds
    );
    println!(
        "boot: all n nodes start at once. best / worst: the leader n-1 crashes and at the same instant"
    );
    println!(
        "node n-2 (best) or node 0 (worst) restarts, so it starts the election; messages are counted"
    );
    println!(
        "from the crash. Heartbeat {}s, so no periodic check interferes.\n",
        COMPLEXITY_HEARTBEAT / 1_000_000
    );
    for algorithm in algorithms {
        println!("### {algorithm}\n");
        println!("| n | boot | best | worst | theory: best (or average) | theory: worst |");
        println!("|---:|---:|---:|---:|---:|---:|");
        let mut n = 4;
        while n <= args.max_nodes {
            let bound = election_core::with_protocol!(algorithm, P => {
                <P as Protocol>::Config::from_timing(COMPLEXITY_TIMING).liveness_bound(n as usize)
            });
            if bound > Timing::MAX_PERIOD {
                // Every run simulates its whole liveness bound; Raft's grows steeply with n.
                println!("| {n} | - | - | - | liveness bound above a day: not simulated | |");
                n *= 2;
                continue;
            }
            let mut cells = Vec::new();
            for scenario in [
                Scenario::Boot,
                Scenario::Restart(n - 2),
                Scenario::Restart(0),
            ] {
                let mut total = 0;
                for seed in 0..args.seeds {
                    total += election_core::with_protocol!(algorithm, P => complexity_run::<P>(n, seed, scenario))?;
                }
                cells.push(total / args.seeds.max(1));
            }
            let (best, worst) = theory(algorithm, u64::from(n));
            println!(
                "| {n} | {} | {} | {} | {best} | {worst} |",
                cells[0], cells[1], cells[2]
            );
            n *= 2;
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

fn theory(algorithm: Algorithm, n: u64) -> (String, String) {
    match algorithm {
        // The textbook's best case sends one Coordinator message to each of the n-2 lower live
        // nodes; Garcia-Molina's version sends Halt, NewCoordinator and Ready, each answered.
        Algorithm::Bully => (
            format!(
                "n-2 = {} (paper's 3 calls + answers: {})",
                n - 2,
                6 * (n - 2)
            ),
            format!("n²/2 = {}", n * n / 2),
        ),
        Algorithm::Ring => {
            let harmonic: f64 = (1..=n).map(|k| 1.0 / k as f64).sum();
            (
                format!("avg n·H(n) = {:.0}", n as f64 * harmonic),
                format!("n(n+1)/2 = {}", n * (n + 1) / 2),
            )
        }
        Algorithm::Invitation | Algorithm::AsyncBully => ("-".into(), "O(n²)".into()),
        // One uncontested election with PreVote (the default): PreVote, RequestVote and the
        // first heartbeat, each to the n-1 others and answered. Split votes repeat rounds
        // without bound (each fails with a probability below 1).
        Algorithm::Raft => (
            format!("6(n-1) = {}", 6 * (n - 1)),
            "unbounded (split votes)".into(),
        ),
    }
}

#[derive(Clone, Copy)]
enum Scenario {
    Boot,
    Restart(u32),
}

fn complexity_run<P: Protocol>(n: u32, seed: u64, scenario: Scenario) -> Result<u64, String> {
    let timing = COMPLEXITY_TIMING;
    let settled = P::Config::from_timing(timing).liveness_bound(n as usize);
    let calm = crate::plan::Network {
        min_latency_us: 1_000,
        max_latency_us: 5_000,
        loss: 0.0,
        duplicate: 0.0,
    };
    let faults = match scenario {
        Scenario::Boot => Vec::new(),
        Scenario::Restart(k) => [
            Fault::Crash { node: n - 1 },
            Fault::Crash { node: k },
            Fault::Recover { node: k },
        ]
        .into_iter()
        .map(|fault| TimedFault {
            at_us: settled,
            fault,
        })
        .collect(),
    };
    let spec = Spec {
        timing,
        ..Spec::new(
            P::NAME,
            n,
            seed,
            Plan {
                network: calm,
                faults,
            },
        )
    };
    let out = Sim::<P>::new(spec, None).map_err(|e| e.to_string())?.run();
    if let Some(v) = out.violation {
        return Err(format!(
            "complexity run of {} with {n} nodes failed: {v}",
            P::NAME
        ));
    }
    Ok(out.stats.messages_to_stable.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: SimCommand,
    }

    #[test]
    fn flag_defaults_match_the_library_defaults() {
        let cli = Cli::try_parse_from(["sim", "run", "--algorithm", "ring"]).unwrap();
        let SimCommand::Run(args) = cli.cmd else {
            panic!("parsed another subcommand")
        };
        assert_eq!(args.cluster.random_faults(), RandomFaults::default());
        assert_eq!(args.cluster.timing(), DEFAULT_TIMING);
        assert_eq!(args.cluster.flags(), "--algorithm ring --nodes 5");
    }

    #[test]
    fn changed_flags_appear_in_the_reproduce_command() {
        let cli = Cli::try_parse_from([
            "sim",
            "check",
            "--algorithm",
            "bully",
            "--nodes",
            "7",
            "--max-loss",
            "0.2",
            "--no-membership",
        ])
        .unwrap();
        let SimCommand::Check(args) = cli.cmd else {
            panic!("parsed another subcommand")
        };
        assert_eq!(
            args.cluster.flags(),
            "--algorithm bully --nodes 7 --max-loss 0.2 --no-membership"
        );
    }

    #[test]
    fn bad_flags_are_named() {
        let err = Cli::try_parse_from(["sim", "run", "--algorithm", "paxos"])
            .err()
            .unwrap();
        assert!(err.to_string().contains("paxos"), "{err}");
        let cli =
            Cli::try_parse_from(["sim", "run", "--algorithm", "ring", "--max-loss", "2"]).unwrap();
        let SimCommand::Run(args) = cli.cmd else {
            panic!("parsed another subcommand")
        };
        assert!(args.cluster.validate().unwrap_err().contains("--max-loss"));
    }
}
