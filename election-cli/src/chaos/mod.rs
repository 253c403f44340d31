//! `election chaos`: a seeded campaign of real faults against a real cluster on this machine,
//! and a verdict from the logserver's log.
//!
//! The campaign either starts a logserver (in this process) and one node process per line of
//! the cluster file, like `election demo`, and reuses its clean-up (the nodes die with this
//! process through `PR_SET_PDEATHSIG`; the scratch directory is removed by the demo's watcher),
//! or, with `--logserver`, attaches to a cluster already running on this machine: each node's
//! process is found from its address ([`procfs`]), and a node the campaign stops is started
//! again as it was started, detached, so the cluster outlives the campaign as it was found.
//! Then each step of the [`schedule`] applies one fault through the processes (SIGKILL,
//! SIGSTOP, SIGTERM) or the logserver's blocks, holds it, heals it (restart with the same
//! command line and state dir, SIGCONT, unblock) and waits for the cluster to settle before the
//! next. A pause is also ended by a watchdog process ([`detached`]) if the campaign dies during
//! it. Every action is logged with its time. At the end [`verdict`] reads the log of status
//! reports and judges it.

pub mod detached;
pub mod procfs;
pub mod remote;
pub mod schedule;
pub mod verdict;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser as _;
use election_core::invariant::{Settlement, settlement};
use election_core::report::BlockedLink;
use election_core::{
    Algorithm, ClusterConfig, Config, NodeId, Properties, Protocol, State, Status, Time, Timing,
    with_protocol,
};
use election_net::{NodeArgs, Supervisor};
use logserver::{LogEntry, NodeView, ServeArgs, Server};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Serialize;

use self::detached::Watchdog;
use self::procfs::Launch;
use self::remote::Remote;
use self::schedule::{Fault, Step};
use crate::demo;

/// How often the campaign's nodes report, and so how soon a block reaches them.
const REPORT_MS: u64 = 100;
/// How long a stopping node gets to leave before it is killed.
const GRACE: Duration = Duration::from_secs(3);

/// Options of `election chaos`.
#[derive(clap::Args, Debug)]
pub struct ChaosArgs {
    /// The algorithm the nodes run.
    pub algorithm: Algorithm,
    /// How many node processes to start on 127.0.0.1 (2 to 64), from --base-port on.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(2..=64), conflicts_with = "config")]
    pub nodes: u16,
    /// The cluster file to start instead (one ip:port per line, every address on this host);
    /// default: --nodes loopback addresses. With --logserver: the running cluster's file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Attach to a cluster already running on this machine that reports to the logserver at
    /// this host:port (on this machine too: its clock times the log), instead of starting one.
    /// Each node's process is found from its --config address; a node the campaign stops is
    /// started again with the same command line, directory and environment, detached, so the
    /// cluster is left running. Timing is read from the nodes' command lines.
    #[arg(long, value_name = "HOST:PORT", requires = "config")]
    pub logserver: Option<String>,
    /// The logserver's admin token, for changing blocks on a logserver bound to a non-loopback
    /// address (default: none; also read from ELECTION_ADMIN_TOKEN).
    #[arg(
        long,
        env = "ELECTION_ADMIN_TOKEN",
        hide_env_values = true,
        requires = "logserver"
    )]
    pub admin_token: Option<String>,
    /// How many faults the campaign applies (each is held, healed and waited out).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub events: u64,
    /// Draw only these kinds of fault (comma-separated; default: every kind that applies).
    #[arg(long, value_name = "KINDS", value_delimiter = ',')]
    pub faults: Vec<schedule::FaultKind>,
    /// Hold every fault this long, in milliseconds (default: two to four timeouts, drawn from
    /// the seed).
    #[arg(long, value_name = "MS")]
    pub hold_ms: Option<u64>,
    /// The seed the schedule is drawn from; the same seed gives the same schedule.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Longest the campaign may run; steps not started by then are skipped (and counted).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// The results folder: schedule.json, events.json, log.jsonl, summary.json and
    /// spacetime.html (created if missing; files in it are replaced).
    #[arg(long, value_name = "DIR", default_value = "chaos-results")]
    pub out: PathBuf,
    /// The logserver's port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0, conflicts_with = "logserver")]
    pub port: u16,
    /// The first node's UDP port with --nodes; node i listens on 127.0.0.1:(base-port + i).
    #[arg(long, default_value_t = 9100)]
    pub base_port: u16,
    /// Period of the nodes' polls and heartbeats, in milliseconds.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 100,
        conflicts_with = "logserver"
    )]
    pub heartbeat_ms: u64,
    /// How long a node waits for an answer before declaring a peer failed, in milliseconds.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 500,
        conflicts_with = "logserver"
    )]
    pub timeout_ms: u64,
    /// A breach counts only if the conflicting states were held together for longer than this
    /// (milliseconds, on the nodes' clocks mapped onto the logserver's): it absorbs the error of
    /// that mapping and of the report delays.
    #[arg(long, value_name = "MS", default_value_t = 50)]
    pub slack_ms: u64,
    /// Print the summary as JSON instead of sentences.
    #[arg(long)]
    pub json: bool,
}

/// What the campaign logged, in order.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// Logserver clock (this machine's), ms since the Unix epoch.
    pub at_ms: u64,
    /// The step (0-based) it belongs to; `None` before the first.
    pub step: Option<usize>,
    /// What happened.
    #[serde(flatten)]
    pub what: What,
    /// In words, with addresses.
    pub text: String,
}

/// The kinds of [`Event`].
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum What {
    /// A step's fault begins.
    Fault {
        /// The fault as scheduled.
        fault: Fault,
        /// Whether it leaves the synchronous model.
        leaves_model: bool,
    },
    /// A step's fault is healed.
    Heal,
    /// A node process was killed or left (it is not live from here).
    Down {
        /// Its line.
        node: usize,
    },
    /// A node process was started (again), or found running when the campaign attached.
    Up {
        /// Its line.
        node: usize,
        /// Its pid.
        pid: u32,
    },
    /// The blocked links were replaced.
    Blocks {
        /// How many links are blocked now.
        links: usize,
    },
    /// The cluster settled (as the driver saw it on the node table).
    Settled,
    /// The cluster did not settle within the wait.
    NotSettled,
}

/// Runs the campaign and prints the summary. Exit code 1 on an unexpected violation.
pub async fn run(args: ChaosArgs) -> anyhow::Result<ExitCode> {
    let addrs = match &args.config {
        Some(path) => read_config(path)?,
        None => demo::free_node_addrs(args.base_port, args.nodes)?,
    };
    let found = match &args.logserver {
        Some(_) => Some(find_nodes(&args, &addrs)?),
        None => None,
    };
    let timing = match &found {
        Some((_, timing)) => *timing,
        None => {
            let timing = Timing {
                heartbeat: args.heartbeat_ms * 1000,
                timeout: args.timeout_ms * 1000,
            };
            timing
                .validate(args.algorithm.name())
                .context("--heartbeat-ms / --timeout-ms")?;
            timing
        }
    };
    let (properties, bound) = with_protocol!(args.algorithm, P => {
        let config = Config::new(timing);
        (P::properties(&config), P::liveness_bound(&config, addrs.len()))
    });
    // The scratch directory of a cluster started here; none when attached.
    let mut scratch = None;
    let mut cluster = match (found, &args.logserver) {
        (Some((launches, _)), Some(logserver)) => {
            Cluster::attach(&args, logserver, &addrs, launches, properties).await?
        }
        _ => {
            if args.config.is_some() {
                check_local(&addrs)?;
            }
            let dir = tempfile::Builder::new()
                .prefix("election-chaos-")
                .tempdir()
                .context("cannot create the campaign's scratch directory")?;
            let watcher = demo::watch_scratch(dir.path())?;
            let cluster = Cluster::start(&args, &addrs, dir.path(), properties).await?;
            scratch = Some((dir, watcher));
            cluster
        }
    };
    let steps = schedule::schedule(&schedule::Plan {
        seed: args.seed,
        n: addrs.len(),
        events: usize::try_from(args.events).unwrap_or(usize::MAX),
        properties: &properties,
        timeout_ms: timing.timeout / 1000,
        kinds: &args.faults,
        hold_ms: args.hold_ms,
    });
    let result = campaign(&args, &mut cluster, &steps, bound, timing).await;
    cluster.stop().await;
    drop(scratch);
    result
}

/// Writes the schedule, runs it (until its end, the --duration or a stop signal) and judges it.
async fn campaign(
    args: &ChaosArgs,
    cluster: &mut Cluster,
    steps: &[Step],
    bound: Time,
    timing: Timing,
) -> anyhow::Result<ExitCode> {
    if steps.is_empty() {
        bail!(
            "--faults: none of the kinds asked for applies to {} with {} nodes",
            args.algorithm,
            cluster.addrs.len()
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the results folder {}", args.out.display()))?;
    write_json(&args.out.join("schedule.json"), &steps)?;
    let stop = election_net::stop_signal()?;
    let campaign = Campaign {
        steps,
        bound,
        deadline: tokio::time::Instant::now() + args.duration,
        heartbeat: Duration::from_micros(timing.heartbeat),
    };
    let ran = tokio::select! {
        done = campaign.run(cluster) => done?,
        () = stop => bail!("interrupted: no verdict"),
    };
    let summary = judge(args, cluster, bound, steps, ran).await?;
    Ok(summary.exit_code())
}

/// The schedule and the bounds the driver keeps.
struct Campaign<'a> {
    steps: &'a [Step],
    /// The algorithm's liveness bound, µs.
    bound: Time,
    deadline: tokio::time::Instant,
    heartbeat: Duration,
}

impl Campaign<'_> {
    /// Runs the steps; returns how many ran.
    async fn run(&self, cluster: &mut Cluster) -> anyhow::Result<usize> {
        let wait = Duration::from_micros(self.bound) + Duration::from_secs(2);
        cluster.settle(None, wait).await?;
        for (i, step) in self.steps.iter().enumerate() {
            if tokio::time::Instant::now() >= self.deadline {
                return Ok(i);
            }
            cluster.apply(i, step).await?;
            cluster.settle(Some(i), wait).await?;
            // A calm moment after the settle: the verdict judges validity on it.
            tokio::time::sleep(self.heartbeat * 3).await;
        }
        Ok(self.steps.len())
    }
}

/// The logserver the campaign reads and blocks through.
enum Logserver {
    /// Started by the campaign, in this process.
    Own(Server),
    /// Found running (`--logserver`).
    Remote(Remote),
}

impl Logserver {
    async fn nodes(&self) -> anyhow::Result<Vec<NodeView>> {
        match self {
            Logserver::Own(server) => Ok(server.nodes()),
            Logserver::Remote(remote) => remote.nodes().await,
        }
    }

    async fn set_blocks(&self, links: Vec<BlockedLink>) -> anyhow::Result<()> {
        match self {
            Logserver::Own(server) => server
                .set_blocks(links)
                .await
                .map(drop)
                .map_err(|e| anyhow::anyhow!("cannot set the blocked links: {e}")),
            Logserver::Remote(remote) => remote.set_blocks(&links).await,
        }
    }

    async fn entries_since(&self, from_ms: u64) -> anyhow::Result<Vec<LogEntry>> {
        match self {
            Logserver::Own(server) => Ok(server.entries_since(from_ms)),
            Logserver::Remote(remote) => remote.entries_since(from_ms).await,
        }
    }

    /// The space-time picture from `from_ms` on.
    async fn spacetime(&self, from_ms: u64) -> anyhow::Result<String> {
        match self {
            Logserver::Own(server) => {
                Ok(election_view::render_spacetime(&server.run_since(from_ms)))
            }
            Logserver::Remote(remote) => {
                remote
                    .timeline(now_ms().saturating_sub(from_ms).div_ceil(1000))
                    .await
            }
        }
    }
}

/// How the campaign starts a node (again).
enum Starter {
    /// A child of the supervisor, with its command line (it dies with the campaign).
    Own {
        supervisor: Supervisor,
        command_lines: Vec<Vec<String>>,
    },
    /// Detached, as the process found at attach was started.
    Found(Vec<Launch>),
}

/// The running cluster and the campaign's log.
struct Cluster {
    addrs: Vec<SocketAddr>,
    starter: Starter,
    /// Each node's process, as (pid, start time), while it runs.
    pids: Vec<Option<(u32, u64)>>,
    /// The paused nodes and the watchdogs that would continue them without the campaign.
    paused: BTreeMap<usize, Watchdog>,
    /// Whether the campaign's blocks may be in place.
    blocked: bool,
    /// The node being stopped (signalled, its exit not yet seen).
    stopping: Option<usize>,
    logserver: Logserver,
    properties: Properties,
    events: Vec<Event>,
    started_ms: u64,
}

impl Cluster {
    fn new(
        addrs: &[SocketAddr],
        starter: Starter,
        logserver: Logserver,
        properties: Properties,
    ) -> Cluster {
        Cluster {
            addrs: addrs.to_vec(),
            starter,
            pids: vec![None; addrs.len()],
            paused: BTreeMap::new(),
            blocked: false,
            stopping: None,
            logserver,
            properties,
            events: Vec::new(),
            started_ms: now_ms(),
        }
    }

    /// Starts a logserver and one node per address.
    async fn start(
        args: &ChaosArgs,
        addrs: &[SocketAddr],
        scratch: &Path,
        properties: Properties,
    ) -> anyhow::Result<Cluster> {
        let server = Server::start(ServeArgs::new(args.port, scratch.join("logserver-data")))
            .await
            .with_context(|| format!("cannot start the logserver on port {}", args.port))?;
        // Status only: message records would add load to the very timing the campaign measures.
        let options = demo::local_node_options(
            addrs,
            scratch,
            server.local_addr(),
            (args.heartbeat_ms, args.timeout_ms, REPORT_MS),
            &format!("chaos-{}", std::process::id()),
            false,
        )?;
        let command_lines = addrs
            .iter()
            .map(|&addr| {
                NodeArgs {
                    algorithm: args.algorithm.name().to_string(),
                    addr,
                    join: None,
                    options: options.clone(),
                }
                .to_args()
            })
            .collect();
        let starter = Starter::Own {
            supervisor: demo::node_supervisor()?,
            command_lines,
        };
        let mut cluster = Cluster::new(addrs, starter, Logserver::Own(server), properties);
        for node in 0..addrs.len() {
            cluster.spawn(None, node)?;
        }
        Ok(cluster)
    }

    /// Attaches to the nodes `found` running on this machine and reporting to `logserver`.
    async fn attach(
        args: &ChaosArgs,
        logserver: &str,
        addrs: &[SocketAddr],
        found: Vec<(u32, Launch)>,
        properties: Properties,
    ) -> anyhow::Result<Cluster> {
        let remote = Remote::connect(logserver, args.admin_token.clone())
            .await
            .with_context(|| format!("cannot reach the logserver at {logserver}"))?;
        let blocks = remote.blocks().await?;
        if !blocks.is_empty() {
            bail!(
                "the logserver at {logserver} has {} blocked links: reset them (status page or \
                 DELETE /api/blocks) before a campaign, which replaces them",
                blocks.len()
            );
        }
        let (pids, launches): (Vec<u32>, Vec<Launch>) = found.into_iter().unzip();
        let starter = Starter::Found(launches);
        let mut cluster = Cluster::new(addrs, starter, Logserver::Remote(remote), properties);
        for (node, pid) in pids.into_iter().enumerate() {
            cluster.up(None, node, pid, "found running");
        }
        Ok(cluster)
    }

    fn log(&mut self, step: Option<usize>, what: What, text: String) {
        if !matches!(
            what,
            What::Up { .. } | What::Down { .. } | What::Blocks { .. }
        ) {
            eprintln!("[chaos] {text}");
        }
        self.events.push(Event {
            at_ms: now_ms(),
            step,
            what,
            text,
        });
    }

    /// Notes that `node` runs as `pid`.
    fn up(&mut self, step: Option<usize>, node: usize, pid: u32, how: &str) {
        self.pids[node] = procfs::start_time(pid).map(|started| (pid, started));
        let addr = self.addrs[node];
        self.log(
            step,
            What::Up { node, pid },
            format!("{addr} {how} (pid {pid})"),
        );
    }

    fn spawn(&mut self, step: Option<usize>, node: usize) -> anyhow::Result<()> {
        let addr = self.addrs[node];
        let pid = match &mut self.starter {
            Starter::Own {
                supervisor,
                command_lines,
            } => supervisor.spawn(&addr.to_string(), &command_lines[node])?,
            Starter::Found(launches) => detached::launch(&launches[node])
                .with_context(|| format!("cannot start {addr} again"))?,
        };
        self.up(step, node, pid, "started");
        Ok(())
    }

    /// The node's pid, if it still runs (never a recycled pid).
    fn pid(&self, node: usize) -> Option<u32> {
        self.pids[node]
            .filter(|&(pid, started)| !procfs::gone(pid, started))
            .map(|(pid, _)| pid)
    }

    fn signal(&self, node: usize, signal: Signal) {
        if let Some(pid) = self.pid(node) {
            let _ = kill(Pid::from_raw(pid as i32), signal);
        }
    }

    /// Whether the node's process is gone within `wait`.
    async fn exited(&self, node: usize, wait: Duration) -> bool {
        tokio::time::timeout(wait, async {
            while self.pid(node).is_some() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .is_ok()
    }

    /// Signals a node to stop and waits (bounded) until its process is gone, then SIGKILLs it.
    async fn stop_node(&mut self, step: usize, node: usize, signal: Signal) {
        // Noted before the signal: a campaign interrupted during the wait (a leave takes up to
        // a second) finishes the stop in `stop` and so knows to start the node again.
        self.stopping = Some(node);
        self.signal(node, signal);
        self.finish_stop(node).await;
        let addr = self.addrs[node];
        self.log(
            Some(step),
            What::Down { node },
            format!("{addr} is down ({signal})"),
        );
    }

    /// Waits (at most [`GRACE`]) until the signalled node's process is gone, SIGKILLs it if it
    /// is not, and notes it down.
    async fn finish_stop(&mut self, node: usize) {
        if !self.exited(node, GRACE).await {
            self.signal(node, Signal::SIGKILL);
            // Gone before it may be started again on the same port.
            self.exited(node, GRACE).await;
        }
        self.pids[node] = None;
        self.stopping = None;
    }

    async fn set_blocks(&mut self, step: usize, links: Vec<BlockedLink>) -> anyhow::Result<()> {
        let n = links.len();
        self.blocked = true;
        self.logserver.set_blocks(links).await?;
        self.log(
            Some(step),
            What::Blocks { links: n },
            format!("{n} links blocked"),
        );
        Ok(())
    }

    fn link(&self, from: usize, to: usize) -> BlockedLink {
        BlockedLink {
            from: self.addrs[from].to_string(),
            to: self.addrs[to].to_string(),
        }
    }

    /// Both directions between every node of `side` and every node outside it.
    fn cut(&self, side: &[usize]) -> Vec<BlockedLink> {
        let mut links = Vec::new();
        for a in side {
            for b in (0..self.addrs.len()).filter(|b| !side.contains(b)) {
                links.push(self.link(*a, b));
                links.push(self.link(b, *a));
            }
        }
        links
    }

    /// The node leading now, as the node table shows it.
    async fn leader(&self) -> anyhow::Result<Option<usize>> {
        let views = self.logserver.nodes().await?;
        Ok(views
            .iter()
            .filter(|v| v.reachable)
            .filter(|v| {
                v.node.report.state == State::Normal
                    && v.node.report.coordinator.as_deref() == Some(v.node.addr())
            })
            .find_map(|v| {
                self.addrs
                    .iter()
                    .position(|a| a.to_string() == v.node.addr())
            }))
    }

    /// Applies, holds and heals one step.
    async fn apply(&mut self, i: usize, step: &Step) -> anyhow::Result<()> {
        let hold = Duration::from_millis(step.hold_ms);
        let mut fault = step.fault.clone();
        if fault == Fault::IsolateLeader {
            // Resolved now: who leads depends on the run, not the seed.
            let target = self.leader().await?.unwrap_or(self.addrs.len() - 1);
            fault = Fault::SplitMinority { side: vec![target] };
        }
        let text = match &step.fault {
            Fault::IsolateLeader => format!("isolate the leader {}", describe(self, &fault)),
            _ => describe(self, &fault),
        };
        self.log(
            Some(i),
            What::Fault {
                fault: step.fault.clone(),
                leaves_model: step.fault.leaves_synchronous_model(),
            },
            format!("step {i}: {text} for {} ms", step.hold_ms),
        );
        match &fault {
            Fault::Kill { node } => self.stop_node(i, *node, Signal::SIGKILL).await,
            Fault::Leave { node } => self.stop_node(i, *node, Signal::SIGTERM).await,
            Fault::Pause { node } => {
                if let Some(pid) = self.pid(*node) {
                    // The watchdog first: from the SIGSTOP on, a SIGCONT is certain.
                    let watchdog = Watchdog::start(pid, hold)?;
                    self.paused.insert(*node, watchdog);
                    self.signal(*node, Signal::SIGSTOP);
                }
            }
            Fault::BlockOneWay { from, to } => {
                let links = vec![self.link(*from, *to)];
                self.set_blocks(i, links).await?;
            }
            Fault::BlockTwoWay { a, b } => {
                let links = vec![self.link(*a, *b), self.link(*b, *a)];
                self.set_blocks(i, links).await?;
            }
            Fault::SplitMinority { side } | Fault::SplitHalves { side } => {
                let links = self.cut(side);
                self.set_blocks(i, links).await?;
            }
            Fault::Flap { .. } | Fault::IsolateLeader => {}
        }
        if let Fault::Flap { a, b, flips } = &fault {
            let each = hold / (*flips).max(1);
            for flip in 0..*flips {
                let links = match flip % 2 {
                    0 => vec![self.link(*a, *b), self.link(*b, *a)],
                    _ => Vec::new(),
                };
                self.set_blocks(i, links).await?;
                tokio::time::sleep(each).await;
            }
        } else {
            tokio::time::sleep(hold).await;
        }
        self.log(Some(i), What::Heal, format!("step {i}: heal"));
        match &fault {
            Fault::Kill { node } | Fault::Leave { node } => self.spawn(Some(i), *node)?,
            Fault::Pause { node } => self.resume(*node),
            _ => self.set_blocks(i, Vec::new()).await?,
        }
        Ok(())
    }

    /// Continues a paused node, and stops its watchdog.
    fn resume(&mut self, node: usize) {
        self.signal(node, Signal::SIGCONT);
        self.paused.remove(&node);
    }

    /// Waits until every node is Normal behind one leader (on the node table), at most `wait`.
    async fn settle(&mut self, step: Option<usize>, wait: Duration) -> anyhow::Result<()> {
        let start = tokio::time::Instant::now();
        loop {
            if self.agreed().await? {
                let ms = start.elapsed().as_millis();
                self.log(step, What::Settled, format!("settled after {ms} ms"));
                return Ok(());
            }
            if start.elapsed() >= wait {
                let ms = wait.as_millis();
                self.log(
                    step,
                    What::NotSettled,
                    format!("not settled within {ms} ms"),
                );
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the node table shows every node live, Normal and behind one leader (the
    /// settlement check of `election_core::invariant`, as the verdict uses it).
    async fn agreed(&self) -> anyhow::Result<bool> {
        let views = self.logserver.nodes().await?;
        let live: Vec<(NodeId, Status)> = (0..self.addrs.len())
            .map(|i| {
                let addr = self.addrs[i].to_string();
                let status = views
                    .iter()
                    .find(|v| v.node.addr() == addr && v.reachable)
                    .map_or(Status::down(), |v| status_of(&self.addrs, v));
                (NodeId(i as u32), status)
            })
            .collect();
        Ok(matches!(
            settlement(&self.properties, self.addrs.len(), &live),
            Settlement::Settled { .. } | Settlement::NotHighest { .. }
        ))
    }

    /// Ends the campaign, also when a stop signal cut a step short. Paused nodes are continued
    /// first, and a node interrupted while stopping is waited out. A cluster started here is
    /// stopped with its logserver; an attached one is left running as it was found: unblocked,
    /// and every node the campaign stopped started again.
    async fn stop(mut self) {
        for node in self.paused.keys().copied().collect::<Vec<_>>() {
            self.resume(node);
        }
        if let Some(node) = self.stopping {
            self.finish_stop(node).await;
        }
        match (self.starter, self.logserver) {
            (Starter::Own { mut supervisor, .. }, Logserver::Own(server)) => {
                supervisor.shutdown(GRACE).await;
                if let Err(e) = server.shutdown().await {
                    eprintln!("[chaos] logserver shutdown: {e}");
                }
            }
            (starter, logserver) => {
                if self.blocked
                    && let Err(e) = logserver.set_blocks(Vec::new()).await
                {
                    eprintln!("[chaos] cannot clear the blocks: {e:#}");
                }
                if let Starter::Found(launches) = starter {
                    for (node, launch) in launches.iter().enumerate() {
                        if self.pids[node].is_none()
                            && let Err(e) = detached::launch(launch)
                        {
                            eprintln!("[chaos] cannot start {} again: {e:#}", self.addrs[node]);
                        }
                    }
                }
            }
        }
    }
}

/// Finds the process of each node of the cluster file running on this machine (the owner of
/// its UDP socket), checks that it is an `election node` of the campaign's algorithm, and
/// returns how to start each again and the nodes' common timing.
fn find_nodes(
    args: &ChaosArgs,
    addrs: &[SocketAddr],
) -> anyhow::Result<(Vec<(u32, Launch)>, Timing)> {
    let config = args.config.as_deref().unwrap_or(Path::new(""));
    let mut found = Vec::new();
    let mut timing: Option<(Timing, SocketAddr)> = None;
    for (line, &addr) in addrs.iter().enumerate() {
        let at = || format!("{addr} (line {} of {})", line + 1, config.display());
        let pid = procfs::udp_owner(addr)?.with_context(|| {
            format!(
                "{}: no process of this user has that UDP socket open (is the node running on \
                 this machine?)",
                at()
            )
        })?;
        let mut launch = procfs::launch_of(pid).with_context(at)?;
        let node = node_args(&launch.argv).with_context(|| {
            format!(
                "{}: its process (pid {pid}) is not an `election node`",
                at()
            )
        })?;
        if node.algorithm != args.algorithm.name() || node.addr != addr {
            bail!(
                "{}: its process (pid {pid}) runs {} on {}, not {} on {addr}",
                at(),
                node.algorithm,
                node.addr,
                args.algorithm
            );
        }
        let t = node.options.timing().with_context(at)?;
        match timing {
            Some((first, other)) if first != t => {
                bail!(
                    "{}: its heartbeat/timeout differ from those of {other}",
                    at()
                )
            }
            Some(_) => {}
            None => timing = Some((t, addr)),
        }
        // A node the demo started dies with the demo; started again here, it must not.
        launch
            .env
            .retain(|(k, _)| k.as_os_str() != demo::PARENT_ENV);
        found.push((pid, launch));
    }
    let (timing, _) = timing.with_context(|| format!("{}: no nodes", config.display()))?;
    Ok((found, timing))
}

/// Parses the command line of an `election node` process.
fn node_args(argv: &[std::ffi::OsString]) -> anyhow::Result<NodeArgs> {
    let words: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match words.get(1).map(String::as_str) {
        // `node` stands where the parser expects the program's name.
        Some("node") => NodeArgs::try_parse_from(&words[1..])
            .map_err(|e| anyhow::anyhow!("{}", e.to_string().trim())),
        _ => bail!("its command line is `{}`", words.join(" ")),
    }
}

/// The addresses of a cluster file, naming the file in any error.
fn read_config(path: &Path) -> anyhow::Result<Vec<SocketAddr>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the cluster file {}", path.display()))?;
    let config =
        ClusterConfig::parse(&text).with_context(|| format!("cluster file {}", path.display()))?;
    Ok(config.addrs().to_vec())
}

/// A node's reported status with addresses numbered by their line.
fn status_of(addrs: &[SocketAddr], view: &NodeView) -> Status {
    view.node.report.status(|a| id_of(addrs, a))
}

/// The id of an address: its line in the cluster file (an address outside it gets an id above
/// every line, so it never passes for a member).
pub(crate) fn id_of(addrs: &[SocketAddr], addr: &str) -> NodeId {
    let line = addrs.iter().position(|a| a.to_string() == addr);
    NodeId(line.unwrap_or(addrs.len() + 1) as u32)
}

/// The fault in words, with addresses.
fn describe(c: &Cluster, fault: &Fault) -> String {
    let a = |n: &usize| c.addrs[*n].to_string();
    let list = |side: &[usize]| side.iter().map(a).collect::<Vec<_>>().join(", ");
    match fault {
        Fault::Kill { node } => format!("SIGKILL {}", a(node)),
        Fault::Pause { node } => format!("SIGSTOP {}", a(node)),
        Fault::Leave { node } => format!("{} leaves (SIGTERM)", a(node)),
        Fault::BlockOneWay { from, to } => format!("block {} -> {}", a(from), a(to)),
        Fault::BlockTwoWay { a: x, b: y } => format!("block {} <-> {}", a(x), a(y)),
        Fault::SplitMinority { side } => format!("cut off [{}]", list(side)),
        Fault::SplitHalves { side } => format!("split halves: [{}] | rest", list(side)),
        Fault::IsolateLeader => "isolate the leader".to_string(),
        Fault::Flap { a: x, b: y, flips } => {
            format!("flap {} <-> {} ({flips} changes)", a(x), a(y))
        }
    }
}

/// Judges the log, writes the results folder and prints the summary.
async fn judge(
    args: &ChaosArgs,
    cluster: &Cluster,
    bound: Time,
    steps: &[Step],
    ran: usize,
) -> anyhow::Result<verdict::Summary> {
    let mut entries = cluster.logserver.entries_since(cluster.started_ms).await?;
    // A logserver found running may log other clusters too.
    entries.retain(|e| cluster.addrs.iter().any(|a| a.to_string() == e.report.addr));
    let input = verdict::Input {
        algorithm: args.algorithm,
        properties: cluster.properties,
        addrs: &cluster.addrs,
        entries: &entries,
        events: &cluster.events,
        slack: args.slack_ms * 1000,
        bound,
        seed: args.seed,
        scheduled: steps.len(),
        ran,
    };
    let summary = verdict::judge(&input);
    let out = &args.out;
    write_json(&out.join("events.json"), &cluster.events)?;
    let mut log = String::new();
    for e in &entries {
        log.push_str(&serde_json::to_string(e)?);
        log.push('\n');
    }
    write(&out.join("log.jsonl"), &log)?;
    write_json(&out.join("summary.json"), &summary)?;
    let picture = cluster.logserver.spacetime(cluster.started_ms).await?;
    write(&out.join("spacetime.html"), &picture)?;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print!("{}", summary.text());
        println!("results in {}", out.display());
    }
    Ok(summary)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    write(path, &serde_json::to_string_pretty(value)?)
}

/// This machine's clock in ms since the Unix epoch: the logserver's clock too (it runs here).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Refuses a cluster file with addresses that are not free on this machine.
fn check_local(addrs: &[SocketAddr]) -> anyhow::Result<()> {
    for a in addrs {
        if std::net::UdpSocket::bind(a).is_err() {
            bail!("{a} is not free on this machine: chaos starts every node here");
        }
    }
    Ok(())
}
