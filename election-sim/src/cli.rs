//! The `election sim …` command line (mounted by the `election` binary; also the standalone
//! `election-sim` binary of this crate).
//!
//! Every command is generic over the protocol: [`run`] picks a built-in algorithm by name from
//! the registry, and [`run_for`] / [`main_for`] run a user's own [`Protocol`] through exactly the
//! same commands (see `examples/` at the repository root).

use std::io::{BufWriter, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::TypedValueParser;
use election_core::{Algorithm, ConfigOf, Explorable, MILLIS, Protocol, Time, Timing};
use serde::Serialize;

use crate::explore::{Budget, Explorer, Limits};
use crate::plan::{Fault, Plan, RandomFaults, TimedFault};
use crate::sim::{Outcome, Sim, SimError};
use crate::stats::RunStats;
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
    /// Draw an existing trace: write its results folder (spacetime.html, shiviz.log,
    /// summary.json, the trace) next to it or into --out.
    Render(RenderArgs),
    /// Print the message-complexity table (n = 4 … 1,024) of every algorithm next to theory.
    Complexity(ComplexityArgs),
    /// List the built-in algorithms: name, what each guarantees and under which model, options.
    Algorithms(AlgorithmsArgs),
    /// Combine the `check --shard K/N --json` reports of a sweep's shards into the report of the
    /// whole sweep (printed as JSON). Exits 1 if a shard failed.
    Merge(MergeArgs),
    /// Run every algorithm under the same plan and seeds and write a comparison report
    /// (report.html, runs.csv, data.json) into --out. Exits 1 if a run broke an invariant.
    Compare(crate::compare::CompareArgs),
    /// Check a small cluster exhaustively: every interleaving of messages and timers and every
    /// fault within a budget, from a fresh boot; safety in every state, liveness and validity on
    /// the whole state graph. A violation writes its shortest counterexample as a replayable
    /// trace with pictures. Exits 1 on a violation, 2 on bad input.
    Explore(ExploreArgs),
}

/// The registry's algorithms as a `--algorithm` value: clap lists them with their help and
/// suggests the nearest on a typo.
pub(crate) fn builtin_algorithm() -> impl TypedValueParser<Value = String> {
    clap::builder::EnumValueParser::<Algorithm>::new().map(|a| a.name().to_string())
}

/// A `NAME=VALUE` algorithm option.
fn option_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not NAME=VALUE")),
    }
}

/// The cluster and the random fault plan.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// The algorithm to simulate.
    #[arg(long, value_parser = builtin_algorithm())]
    pub algorithm: String,
    /// An algorithm option NAME=VALUE (repeatable; e.g. `-o sticky=true` for bully). Default:
    /// the algorithm's defaults.
    #[arg(short = 'o', long = "option", value_name = "NAME=VALUE", value_parser = option_pair)]
    pub options: Vec<(String, String)>,
    /// Nodes at boot (ids 0..N; a higher id has a higher priority).
    #[arg(long, default_value_t = 5)]
    pub nodes: u32,
    /// Heartbeat / coordinator-check period, milliseconds.
    #[arg(long, default_value_t = DEFAULT_TIMING.heartbeat / MILLIS)]
    pub heartbeat_ms: u64,
    /// Reply timeout, milliseconds (each algorithm derives the one-way delay it tolerates from it).
    #[arg(long, default_value_t = DEFAULT_TIMING.timeout / MILLIS)]
    pub timeout_ms: u64,
    /// Draw only faults inside Garcia-Molina's synchronous model: crashes, quick recoveries,
    /// small drift, and delays up to the algorithm's tolerated one-way delay
    /// with slow and fast links so that messages race; no loss, duplication or partition
    /// (default: off, the full fault mix).
    #[arg(long)]
    pub synchronous: bool,
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
    /// Draw every fault kind in every plan instead of swarm testing (default: swarm — each seed
    /// enables its own subset of the fault kinds, printed with a failing seed, so that rare
    /// combinations are not drowned by the full mix).
    #[arg(long)]
    pub no_swarm: bool,
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
            swarm: !self.no_swarm,
        }
    }

    /// The random plan of `seed` for protocol `P` (a synchronous one with `--synchronous`):
    /// without joins and leaves if `P` does not keep its guarantees across them.
    fn plan<P: Protocol>(&self, config: &ConfigOf<P>, seed: u64) -> Plan {
        let random = self.random_faults().respecting(&P::properties(config));
        if self.synchronous {
            random.generate_synchronous(seed, self.nodes, config.timing, P::max_delay(config))
        } else {
            random.generate(seed, self.nodes)
        }
    }

    fn spec(&self, seed: u64, plan: Plan) -> Spec {
        Spec {
            timing: self.timing(),
            options: self.options.iter().cloned().collect(),
            ..Spec::new(&self.algorithm, self.nodes, seed, plan)
        }
    }

    /// The configuration these flags give protocol `P`.
    fn config<P: Protocol>(&self) -> Result<ConfigOf<P>, String> {
        self.spec(0, Plan::calm())
            .config::<P>()
            .map_err(|e| e.to_string())
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
        for (name, value) in &self.options {
            add(true, format!("-o {name}={value}"));
        }
        add(
            self.timing() != DEFAULT_TIMING,
            format!(
                "--heartbeat-ms {} --timeout-ms {}",
                self.heartbeat_ms, self.timeout_ms
            ),
        );
        add(self.synchronous, "--synchronous".into());
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
        add(self.no_swarm, "--no-swarm".into());
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
    #[arg(long, conflicts_with = "out")]
    pub trace: Option<PathBuf>,
    /// Write the results folder here: trace.jsonl, summary.json, spacetime.html (open it in a
    /// browser) and shiviz.log.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
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
    /// Run only this share K/N of the seeds: those s with s mod N = K (for spreading a sweep
    /// over machines; `sim merge` combines the shards' --json reports). Default: all.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::sweep::Shard>,
    /// Worker threads (default: every core). The verdict is the same for any number: the
    /// lowest failing seed, or the summary of all seeds.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Print the report as JSON: the summary, or the lowest failing seed with its violation,
    /// its fault kinds, the command that reproduces it and its results folder.
    #[arg(long)]
    pub json: bool,
    /// Where the lowest failing seed's results folder goes: DIR/ALGORITHM-seed-SEED, with its
    /// trace, summary and pictures.
    #[arg(long, value_name = "DIR", default_value = "sim-failures")]
    pub out: PathBuf,
}

/// Arguments of `explore`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExploreArgs {
    /// The algorithm to check.
    #[arg(long, value_parser = builtin_algorithm())]
    pub algorithm: String,
    /// An algorithm option NAME=VALUE (repeatable). Default: the algorithm's defaults.
    #[arg(short = 'o', long = "option", value_name = "NAME=VALUE", value_parser = option_pair)]
    pub options: Vec<(String, String)>,
    /// Nodes (ids 0..N; a higher id has a higher priority). 3 or 4 finish in seconds to minutes.
    #[arg(long, default_value_t = 3)]
    pub nodes: u32,
    /// Heartbeat / coordinator-check period, milliseconds.
    #[arg(long, default_value_t = DEFAULT_TIMING.heartbeat / MILLIS)]
    pub heartbeat_ms: u64,
    /// Reply timeout, milliseconds.
    #[arg(long, default_value_t = DEFAULT_TIMING.timeout / MILLIS)]
    pub timeout_ms: u64,
    /// Crashes of a live node a path may contain.
    #[arg(long, default_value_t = 0)]
    pub crashes: u8,
    /// Recoveries of a crashed node (with what it persisted) a path may contain.
    #[arg(long, default_value_t = 0)]
    pub recoveries: u8,
    /// Splits of the nodes into two sides a path may contain (each heals at any time).
    #[arg(long, default_value_t = 0)]
    pub partitions: u8,
    /// Messages a path may lose in flight.
    #[arg(long, default_value_t = 0)]
    pub losses: u8,
    /// Messages a path may duplicate in flight.
    #[arg(long, default_value_t = 0)]
    pub duplicates: u8,
    /// New nodes a path may admit, each with the next id above all (algorithms that support
    /// membership changes).
    #[arg(long, default_value_t = 0)]
    pub joins: u8,
    /// Graceful leaves of a member a path may contain (likewise).
    #[arg(long, default_value_t = 0)]
    pub leaves: u8,
    /// Stop after this many distinct states (the result is then incomplete).
    #[arg(long, default_value_t = crate::explore::Limits::default().max_states)]
    pub max_states: usize,
    /// Expand no state deeper than this many steps (default: no bound).
    #[arg(long)]
    pub max_depth: Option<u32>,
    /// Stop when the search's estimated memory exceeds this many MiB.
    #[arg(long, default_value_t = crate::explore::Limits::default().max_memory >> 20)]
    pub max_memory_mb: u64,
    /// Do not expand states in which a node's epoch (Raft's term, a group or election counter,
    /// a ring lap) exceeds this: it bounds protocols whose counters grow forever.
    #[arg(long, default_value_t = crate::explore::Limits::default().max_epoch)]
    pub max_epoch: u64,
    /// Asynchronous model: no timer fires while this many messages are in flight (they are
    /// delivered, lost or duplicated first), which keeps periodic timers from filling the
    /// network without bound.
    #[arg(long, default_value_t = crate::explore::MAX_IN_FLIGHT)]
    pub max_in_flight: usize,
    /// Seed of the protocols' random draws (the explorer branches over orderings and faults,
    /// not over random values).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads expanding states (default: every core). The report is the same for any
    /// number, timing aside: the same states, transitions, depth and counterexample.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Print the result as one JSON object (states, transitions, depth, complete, violation).
    #[arg(long)]
    pub json: bool,
    /// Where a counterexample's results folder goes: DIR/ALGORITHM-explore-nN, with its trace
    /// (`sim replay` re-runs it), summary and pictures.
    #[arg(long, value_name = "DIR", default_value = "sim-failures")]
    pub out: PathBuf,
}

/// Arguments of `merge`.
#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// The `check --shard K/N --json` reports of every shard of one sweep.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
}

/// Arguments of `replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// A trace written by `run --trace` (or `trace.jsonl` of a results folder).
    pub trace: PathBuf,
}

/// Arguments of `render`.
#[derive(Debug, Clone, clap::Args)]
pub struct RenderArgs {
    /// A trace written by `run --trace` (or `trace.jsonl` of a results folder).
    pub trace: PathBuf,
    /// The results folder to write (default: the trace's own folder).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Arguments of `algorithms`.
#[derive(Debug, Clone, clap::Args)]
pub struct AlgorithmsArgs {
    /// Print only the names, one per line (for scripts).
    #[arg(long)]
    pub names: bool,
    /// Print the list as JSON: name, help, options and declared properties (at the default
    /// options and the simulator's default timing).
    #[arg(long, conflicts_with = "names")]
    pub json: bool,
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
    /// Only this algorithm (default: every built-in one).
    #[arg(long, value_parser = builtin_algorithm())]
    pub algorithm: Option<String>,
}

/// Runs a spec with the built-in protocol its `algorithm` names.
pub fn simulate(spec: Spec, trace: Option<TraceSink>) -> Result<Outcome, String> {
    let algorithm = spec.algorithm().map_err(|e| e.to_string())?;
    election_core::with_protocol!(algorithm, P => simulate_with::<P>(spec, trace))
        .map_err(|e| e.to_string())
}

/// Runs a spec with protocol `P`.
pub fn simulate_with<P: Protocol>(
    spec: Spec,
    trace: Option<TraceSink>,
) -> Result<Outcome, SimError> {
    Ok(Sim::<P>::new(spec, trace)?.run())
}

/// Executes a `sim` subcommand with the built-in algorithm it names.
pub fn run(cmd: SimCommand) -> ExitCode {
    let algorithm = match &cmd {
        SimCommand::Run(a) => Some(a.cluster.algorithm.clone()),
        SimCommand::Check(a) => Some(a.cluster.algorithm.clone()),
        SimCommand::Explore(a) => Some(a.algorithm.clone()),
        SimCommand::Replay(ReplayArgs { trace }) | SimCommand::Render(RenderArgs { trace, .. }) => {
            match read_trace(trace) {
                Ok((spec, _)) => Some(spec.algorithm),
                Err(message) => return fail(message),
            }
        }
        SimCommand::Complexity(_)
        | SimCommand::Algorithms(_)
        | SimCommand::Merge(_)
        | SimCommand::Compare(_) => None,
    };
    let result = match algorithm {
        None => match cmd {
            SimCommand::Complexity(args) => complexity(&args),
            SimCommand::Algorithms(args) => algorithms(&args),
            SimCommand::Merge(args) => merge(&args),
            SimCommand::Compare(args) => crate::compare::compare(&args),
            _ => unreachable!("every other command names its algorithm"),
        },
        Some(name) => match name.parse::<Algorithm>() {
            Ok(a) => return election_core::with_protocol!(a, P => run_for::<P>(cmd)),
            Err(e) => Err(e.to_string()),
        },
    };
    finish(result)
}

/// Executes a `sim` subcommand (`run`, `check`, `explore`, `replay`, `render`; `complexity`
/// covers the built-in algorithms only) with protocol `P`, for a user's own binary. The
/// command's algorithm name must be `P::NAME`.
pub fn run_for<P: Explorable>(cmd: SimCommand) -> ExitCode {
    let named = |name: &str| {
        if name == P::NAME {
            Ok(())
        } else {
            Err(format!("this command runs {}, not {name}", P::NAME))
        }
    };
    let result = match cmd {
        SimCommand::Run(args) => named(&args.cluster.algorithm).and_then(|()| run_one::<P>(&args)),
        SimCommand::Check(args) => named(&args.cluster.algorithm).and_then(|()| check::<P>(&args)),
        SimCommand::Explore(args) => named(&args.algorithm).and_then(|()| explore::<P>(&args)),
        SimCommand::Replay(args) => replay::<P>(&args),
        SimCommand::Render(args) => render::<P>(&args),
        SimCommand::Complexity(args) => complexity(&args),
        SimCommand::Algorithms(args) => algorithms(&args),
        SimCommand::Merge(args) => merge(&args),
        SimCommand::Compare(args) => crate::compare::compare(&args),
    };
    finish(result)
}

/// Adapts the `sim` command line (`SimCommand`'s clap command) to protocol `P` for a user's own
/// binary: every subcommand's `--algorithm` accepts only `P::NAME` and defaults to it.
pub fn for_protocol<P: Protocol>(mut command: clap::Command) -> clap::Command {
    let takes_algorithm: Vec<String> = command
        .get_subcommands()
        .filter(|s| s.get_arguments().any(|a| a.get_id() == "algorithm"))
        .map(|s| s.get_name().to_string())
        .collect();
    for name in takes_algorithm {
        command = command.mut_subcommand(name, |s| {
            s.mut_arg("algorithm", |a| {
                a.value_parser([P::NAME])
                    .default_value(P::NAME)
                    .required(false)
            })
        });
    }
    command
}

/// The `sim` command line of a user's own binary for protocol `P`: parses the process arguments
/// (`run`, `check`, `replay`, … with `--algorithm` defaulting to, and accepting only,
/// `P::NAME`) and runs them.
pub fn main_for<P: Explorable>() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};

    /// A user's simulator.
    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        command: SimCommand,
    }
    let matches = for_protocol::<P>(Cli::command().name(P::NAME)).get_matches();
    match Cli::from_arg_matches(&matches) {
        Ok(cli) => run_for::<P>(cli.command),
        Err(e) => e.exit(),
    }
}

fn fail(message: String) -> ExitCode {
    finish(Err(message))
}

fn finish(result: Result<ExitCode, String>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run_one<P: Protocol>(args: &RunArgs) -> Result<ExitCode, String> {
    let c = &args.cluster;
    c.validate()?;
    let config = c.config::<P>()?;
    let plan = match &args.plan {
        Some(path) => Plan::load(path, c.nodes).map_err(|e| e.to_string())?,
        None => c.plan::<P>(&config, args.seed),
    };
    let spec = c.spec(args.seed, plan);
    let out = match (&args.out, &args.trace) {
        (Some(dir), _) => crate::folder::write_run::<P>(dir, spec.clone())?,
        (None, Some(path)) => {
            let file = std::fs::File::create(path)
                .map_err(|e| format!("cannot create trace file {}: {e}", path.display()))?;
            let sink = TraceSink::new(Box::new(BufWriter::new(file)));
            simulate_with::<P>(spec.clone(), Some(sink)).map_err(|e| e.to_string())?
        }
        (None, None) => simulate_with::<P>(spec.clone(), None).map_err(|e| e.to_string())?,
    };
    let hash = match out.trace {
        Some(_) => Some(crate::folder::trace_hash(&out)?),
        None => None,
    };
    let report = crate::folder::RunReport::new(&spec, &out, hash);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        );
    } else {
        print_stats(&out.stats);
        if let Some(h) = &report.trace_hash {
            println!("trace hash      {h}");
        }
        match &out.violation {
            Some(v) => println!("VIOLATION       {v}"),
            None => println!("ok              all invariants held"),
        }
        if let Some(dir) = &args.out {
            println!(
                "results         {} (open {})",
                dir.display(),
                dir.join(crate::folder::SPACETIME).display()
            );
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
    println!(
        "messages        {} ({})",
        s.messages(),
        kinds(s.sent.iter().map(|(k, v)| (*k, *v)))
    );
    println!(
        "network         delivered {}, lost {}, blocked {}, to down nodes {}, duplicated {}",
        s.delivered, s.lost, s.blocked, s.to_down, s.duplicated
    );
    println!(
        "elections       {} started, {} status changes",
        s.elections_started, s.status_changes
    );
    match s.left_model_at {
        None => println!("model           synchronous throughout"),
        Some(t) => println!("model           left the synchronous model at {t}us"),
    }
    println!("calm at         {}us", s.calm_at);
    if s.no_quorum {
        println!("quorum          fewer than a majority live at the check: no leader expected");
    }
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

fn kinds<'a>(sent: impl IntoIterator<Item = (&'a str, u64)>) -> String {
    sent.into_iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--jobs`, or every core.
fn jobs_or_all_cores(jobs: Option<usize>) -> usize {
    jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    })
}

fn check<P: Protocol>(args: &CheckArgs) -> Result<ExitCode, String> {
    let c = &args.cluster;
    c.validate()?;
    let config = c.config::<P>()?;
    let range = crate::sweep::Seeds {
        first_seed: args.first_seed,
        seeds: args.seeds,
        shard: args.shard,
    };
    let jobs = jobs_or_all_cores(args.jobs);
    let random = c.random_faults().respecting(&P::properties(&config));
    let (passed, verdict, wall_s) = crate::sweep::sweep(
        range,
        jobs,
        std::io::stderr().is_terminal(),
        |seed| {
            simulate_with::<P>(c.spec(seed, c.plan::<P>(&config, seed)), None)
                .map_err(|e| e.to_string())
        },
        |seed, violation| crate::sweep::Failure {
            seed,
            violation,
            fault_kinds: if c.synchronous {
                random.synchronous_kinds(seed)
            } else {
                random.kinds(seed)
            }
            .iter()
            .map(|k| k.name().to_string())
            .collect(),
            reproduce: format!("election sim run {} --seed {seed}", c.flags()),
            folder: None,
        },
    )?;
    let ran = range.len();
    let (summary, failure) = match verdict {
        Ok(summary) => (Some(summary), None),
        Err(mut failure) => {
            let dir = args.out.join(format!("{}-seed-{}", P::NAME, failure.seed));
            let seed = failure.seed;
            crate::folder::write_run::<P>(&dir, c.spec(seed, c.plan::<P>(&config, seed)))?;
            failure.folder = Some(dir);
            (None, Some(failure))
        }
    };
    let report = crate::sweep::Report {
        algorithm: P::NAME.to_string(),
        nodes: c.nodes,
        flags: c.flags(),
        range,
        passed,
        summary,
        failure,
        wall_s,
        seeds_per_s: if wall_s > 0.0 {
            ran as f64 / wall_s
        } else {
            0.0
        },
    };
    print_report(&report, args.json);
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Prints a sweep's report: as JSON on stdout, or readably (a failure on stderr).
fn print_report(report: &crate::sweep::Report, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).expect("the report serializes")
        );
        return;
    }
    let shard = report
        .range
        .shard
        .map_or(String::new(), |s| format!(", shard {s}"));
    if let Some(f) = &report.failure {
        eprintln!(
            "FAILED after {} passing seeds: {}",
            report.passed, f.violation
        );
        eprintln!(
            "fault kinds of seed {}: {}",
            f.seed,
            f.fault_kinds.join(", ")
        );
        eprintln!("reproduce: {}", f.reproduce);
        if let Some(dir) = &f.folder {
            eprintln!(
                "results:   {} (open {})",
                dir.display(),
                dir.join(crate::folder::SPACETIME).display()
            );
        }
        return;
    }
    let Some(summary) = &report.summary else {
        return;
    };
    let t = summary.time_to_stable;
    let m = summary.messages;
    let (first, end) = (
        report.range.first_seed,
        report.range.first_seed + report.range.seeds,
    );
    println!(
        "ok: {} seeds ({first}..{end}{shard}) of {} with {} nodes, all invariants held",
        summary.runs, report.algorithm, report.nodes
    );
    println!(
        "messages        {} ({})",
        summary.sent.values().sum::<u64>(),
        kinds(summary.sent.iter().map(|(k, v)| (k.as_str(), *v)))
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
    println!(
        "speed           {:.0} seeds/s ({:.1} s)",
        report.seeds_per_s, report.wall_s
    );
}

fn merge(args: &MergeArgs) -> Result<ExitCode, String> {
    let reports = args
        .reports
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read report {}: {e}", path.display()))?;
            serde_json::from_str::<crate::sweep::Report>(&text).map_err(|e| {
                format!(
                    "report {} is not a `sim check --json` report: {e}",
                    path.display()
                )
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let whole = crate::sweep::merge(reports)?;
    print_report(&whole, true);
    Ok(if whole.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn render<P: Explorable>(args: &RenderArgs) -> Result<ExitCode, String> {
    for path in crate::folder::render::<P>(&args.trace, args.out.as_deref())? {
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn replay<P: Explorable>(args: &ReplayArgs) -> Result<ExitCode, String> {
    let (spec, recorded) = read_trace(&args.trace)?;
    if spec.algorithm != P::NAME {
        return Err(format!(
            "trace {} is of {}, not {}",
            args.trace.display(),
            spec.algorithm,
            P::NAME
        ));
    }
    if spec.version != env!("CARGO_PKG_VERSION") {
        eprintln!(
            "warning: trace written by election-sim {}, replaying with {}",
            spec.version,
            env!("CARGO_PKG_VERSION")
        );
    }
    let sink = TraceSink::new(Box::new(std::io::sink()));
    let replayed = match &spec.explore {
        Some(explored) => {
            let explorer = Explorer::<P>::new(
                spec.config::<P>().map_err(|e| e.to_string())?,
                spec.nodes,
                explored.budget,
                spec.seed,
            )?
            .max_in_flight(explored.max_in_flight);
            explorer.replay(&spec, sink)?
        }
        None => {
            let out = simulate_with::<P>(spec, Some(sink)).map_err(|e| e.to_string())?;
            crate::folder::trace_hash(&out)?
        }
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

/// What `explore --json` prints and a counterexample's `summary.json` holds.
#[derive(Serialize)]
struct ExploreReport<'a> {
    algorithm: &'a str,
    nodes: u32,
    model: election_core::Model,
    budget: Budget,
    #[serde(flatten)]
    search: &'a crate::explore::Report,
    /// Every reachable state was visited.
    complete: bool,
    states_per_second: f64,
    /// Peak resident memory of this process (Linux), MiB.
    peak_rss_mb: Option<f64>,
    violation: Option<ExploreViolation>,
}

#[derive(Serialize)]
struct ExploreViolation {
    invariant: crate::check::Invariant,
    detail: String,
    nodes: Vec<election_core::NodeId>,
    path_length: usize,
    /// Where the path's cycle starts (liveness).
    cycle_from: Option<usize>,
    trace: PathBuf,
}

fn explore<P: Explorable>(args: &ExploreArgs) -> Result<ExitCode, String> {
    let spec = Spec {
        timing: Timing {
            heartbeat: args.heartbeat_ms * MILLIS,
            timeout: args.timeout_ms * MILLIS,
        },
        options: args.options.iter().cloned().collect(),
        ..Spec::new(&args.algorithm, args.nodes, args.seed, Plan::calm())
    };
    let config = spec.config::<P>().map_err(|e| e.to_string())?;
    let budget = Budget {
        crashes: args.crashes,
        recoveries: args.recoveries,
        partitions: args.partitions,
        losses: args.losses,
        duplicates: args.duplicates,
        joins: args.joins,
        leaves: args.leaves,
    };
    let model = P::properties(&config).model;
    let explorer = Explorer::<P>::new(config, args.nodes, budget, args.seed)?
        .max_in_flight(args.max_in_flight)
        .jobs(jobs_or_all_cores(args.jobs))?;
    let limits = Limits {
        max_states: args.max_states,
        max_depth: args.max_depth,
        max_memory: args.max_memory_mb << 20,
        max_epoch: args.max_epoch,
    };
    let bar = if !args.json && std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::hidden()
    };
    let report = explorer.run(&limits, |p| {
        bar.set_message(format!(
            "{} states ({:.0}/s), depth {}, queue {}",
            p.states,
            p.states as f64 / p.seconds.max(1e-9),
            p.depth,
            p.queue
        ));
        bar.tick();
    });
    bar.finish_and_clear();
    let violation = match &report.counterexample {
        None => None,
        Some(found) => {
            let dir = args
                .out
                .join(format!("{}-explore-n{}", P::NAME, args.nodes));
            crate::folder::create(&dir)?;
            let path = dir.join(crate::folder::TRACE);
            let file = std::fs::File::create(&path)
                .map_err(|e| crate::folder::cannot("create", &path, e))?;
            let header = Spec {
                explore: Some(found.explored.clone()),
                ..spec.clone()
            };
            explorer.replay(&header, TraceSink::new(Box::new(BufWriter::new(file))))?;
            crate::folder::write_pictures(&dir, &path)?;
            Some(ExploreViolation {
                invariant: found.violation.invariant,
                detail: found.violation.detail.clone(),
                nodes: found.violation.nodes.clone(),
                path_length: found.explored.path.len(),
                cycle_from: found.explored.cycle_from,
                trace: path,
            })
        }
    };
    let out = ExploreReport {
        algorithm: P::NAME,
        nodes: args.nodes,
        model,
        budget,
        search: &report,
        states_per_second: report.states as f64 / report.seconds.max(1e-9),
        complete: report.complete(),
        peak_rss_mb: crate::explore::peak_rss_mb(),
        violation,
    };
    if let Some(v) = &out.violation {
        let dir = v.trace.parent().expect("the trace is in its folder");
        crate::folder::write_summary(dir, &out)?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&out).expect("the report serializes")
        );
    } else {
        print_explore(&out);
    }
    Ok(if out.violation.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_explore(r: &ExploreReport) {
    let s = r.search;
    println!(
        "{} n={} ({:?} model), budget {:?}",
        r.algorithm, r.nodes, r.model, r.budget
    );
    println!(
        "{} states, {} transitions, depth {}, {:.1} s ({:.0} states/s), ~{} MiB{}",
        s.states,
        s.transitions,
        s.depth,
        s.seconds,
        r.states_per_second,
        s.memory_estimate >> 20,
        r.peak_rss_mb
            .map_or(String::new(), |m| format!(", peak RSS {m:.0} MiB"))
    );
    match &s.cut {
        Some(why) if r.violation.is_some() => println!("{why}"),
        Some(why) => println!("INCOMPLETE: {why}; liveness not decided"),
        None if s.past_epoch > 0 => println!(
            "complete within the epoch bound: {} states past it were checked for safety, not expanded",
            s.past_epoch
        ),
        None => println!("complete: every reachable state visited"),
    }
    match &r.violation {
        Some(v) => {
            println!(
                "VIOLATION of {}: {} (path of {} steps{})",
                v.invariant,
                v.detail,
                v.path_length,
                v.cycle_from
                    .map_or(String::new(), |c| format!(", cycling from step {}", c + 1))
            );
            println!(
                "counterexample: {} (re-run it: election sim replay {})",
                v.trace.display(),
                v.trace.display()
            );
        }
        None if s.liveness_checked => {
            println!("no violation: safety in every state, liveness and validity on the graph")
        }
        None => println!("no safety violation in the states visited"),
    }
}

/// One algorithm as `algorithms --json` lists it.
#[derive(Serialize)]
struct AlgorithmInfo {
    name: &'static str,
    help: &'static str,
    options: &'static str,
    properties: election_core::Properties,
}

fn algorithms(args: &AlgorithmsArgs) -> Result<ExitCode, String> {
    let infos: Vec<AlgorithmInfo> = Algorithm::ALL
        .iter()
        .map(|&a| AlgorithmInfo {
            name: a.name(),
            help: a.help(),
            options: a.options_help(),
            properties: election_core::with_protocol!(a, P => P::properties(&ConfigOf::<P>::new(DEFAULT_TIMING))),
        })
        .collect();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&infos).expect("the list serializes")
        );
    } else if args.names {
        for info in &infos {
            println!("{}", info.name);
        }
    } else {
        for info in &infos {
            let p = info.properties;
            println!("{}\n  {}", info.name, info.help);
            println!(
                "  model: {:?}; Assertion 1: {}; one leader per: {}; highest wins: {}",
                p.model,
                p.agreement
                    .map_or("not claimed".to_string(), |s| format!("{s:?}")),
                p.unique_leader
                    .map_or("not claimed".to_string(), |s| format!("{s:?}")),
                if p.highest_wins { "yes" } else { "no" }
            );
            println!("  options: {}", info.options);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Heartbeat of the complexity runs: long enough that no periodic check fires during an
/// election, so the counts are the election's own messages.
const COMPLEXITY_HEARTBEAT: Time = 10_000 * MILLIS;

fn complexity(args: &ComplexityArgs) -> Result<ExitCode, String> {
    let algorithms: Vec<Algorithm> = match &args.algorithm {
        Some(name) => vec![
            name.parse()
                .map_err(|e: election_core::UnknownAlgorithm| e.to_string())?,
        ],
        None => Algorithm::ALL.to_vec(),
    };
    println!(
        "Messages until the last status change (mean of {} seeds), every message counted,",
        args.seeds
    );
    println!("answers and acknowledgements included.");
    println!(
        "boot: all n nodes start at once. best / worst: the leader n-1 crashes and at the same instant"
    );
    println!(
        "node n-2 (best) or node 0 (worst) restarts, so it starts the election; messages are counted"
    );
    println!(
        "from the crash. Heartbeat {}s, so no periodic check interferes. Theory: the count the",
        COMPLEXITY_HEARTBEAT / 1_000_000
    );
    println!("algorithm's module derives for the same scenario, with what it counts.\n");
    for &algorithm in &algorithms {
        println!("### {algorithm}\n");
        let bounds =
            |n: u32| election_core::with_protocol!(algorithm, P => P::message_bounds(u64::from(n)));
        let what = bounds(4);
        for (name, b) in [
            ("boot", &what.boot),
            ("best", &what.best),
            ("worst", &what.worst),
        ] {
            println!(
                "- theory, {name}: {}",
                b.as_ref().map_or("none claimed", |b| b.what.as_str())
            );
        }
        println!();
        println!("| n | boot | theory | best | theory | worst | theory |");
        println!("|---:|---:|---:|---:|---:|---:|---:|");
        let mut n = 4;
        while n <= args.max_nodes {
            let bound = election_core::with_protocol!(algorithm, P => P::liveness_bound(&ConfigOf::<P>::new(complexity_timing()), n as usize));
            if bound > Timing::MAX_PERIOD {
                // Each run simulates the whole bound; a bound beyond a day (Raft's grows fast
                // with n) is no use here.
                println!("| {n} | - | - | - | - | - | - |");
                n *= 2;
                continue;
            }
            let measured = complexity_row(algorithm, n, args.seeds)?;
            let theory = bounds(n);
            let show = |b: Option<election_core::Bound>| b.map_or("-".to_string(), |b| b.shown());
            println!(
                "| {n} | {} | {} | {} | {} | {} | {} |",
                measured[0],
                show(theory.boot),
                measured[1],
                show(theory.best),
                measured[2],
                show(theory.worst)
            );
            n *= 2;
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

/// The measured cells of one row of the complexity table: boot, best and worst, each the mean
/// over `seeds` seeds.
pub fn complexity_row(algorithm: Algorithm, n: u32, seeds: u64) -> Result<[u64; 3], String> {
    let mut cells = [0; 3];
    for (cell, scenario) in cells.iter_mut().zip([
        Scenario::Boot,
        Scenario::Restart(n - 2),
        Scenario::Restart(0),
    ]) {
        let mut total = 0;
        for seed in 0..seeds {
            total += election_core::with_protocol!(algorithm, P => complexity_run::<P>(n, seed, scenario))?;
        }
        *cell = total / seeds.max(1);
    }
    Ok(cells)
}

/// The timing of the complexity runs: [`COMPLEXITY_HEARTBEAT`] and the default timeout.
fn complexity_timing() -> Timing {
    Timing {
        heartbeat: COMPLEXITY_HEARTBEAT,
        timeout: DEFAULT_TIMING.timeout,
    }
}

/// A scenario of the complexity table.
#[derive(Clone, Copy)]
pub enum Scenario {
    /// All nodes boot at once.
    Boot,
    /// The leader `n - 1` crashes and node `k` restarts at the same instant.
    Restart(u32),
}

/// The messages of one complexity-table cell: `n` nodes of `P`, one seed, one scenario.
pub fn complexity_run<P: Protocol>(n: u32, seed: u64, scenario: Scenario) -> Result<u64, String> {
    let timing = complexity_timing();
    // The crash comes once the boot has settled, half a heartbeat after a tick of the nodes
    // that booted at 0, so that every seed sees the same heartbeat phase (the counts are then
    // exact, not averages over phases).
    let bound = P::liveness_bound(&ConfigOf::<P>::new(timing), n as usize);
    let settled = bound.div_ceil(timing.heartbeat) * timing.heartbeat + timing.heartbeat / 2;
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
            "-o",
            "sticky=true",
            "--nodes",
            "7",
            "--synchronous",
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
            "--algorithm bully --nodes 7 -o sticky=true --synchronous --max-loss 0.2 --no-membership"
        );
    }

    #[test]
    fn bad_flags_are_named() {
        let err = Cli::try_parse_from(["sim", "run", "--algorithm", "paxos"])
            .err()
            .unwrap();
        assert!(err.to_string().contains("paxos"), "{err}");
        let err = Cli::try_parse_from(["sim", "run", "--algorithm", "bullly"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("bully"), "a typo gets a suggestion: {err}");
        let cli =
            Cli::try_parse_from(["sim", "run", "--algorithm", "ring", "--max-loss", "2"]).unwrap();
        let SimCommand::Run(args) = cli.cmd else {
            panic!("parsed another subcommand")
        };
        assert!(args.cluster.validate().unwrap_err().contains("--max-loss"));
        let cli =
            Cli::try_parse_from(["sim", "run", "--algorithm", "ring", "-o", "laps=3"]).unwrap();
        let SimCommand::Run(args) = cli.cmd else {
            panic!("parsed another subcommand")
        };
        let err = args
            .cluster
            .config::<election_core::ring::Ring>()
            .unwrap_err();
        assert!(err.contains("laps"), "{err}");
    }
}
