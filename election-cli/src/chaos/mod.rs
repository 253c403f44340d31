//! `election chaos`: a seeded campaign of real faults against a real cluster on this machine,
//! and a verdict from the logserver's log.
//!
//! The campaign starts a logserver (in this process) and one node process per line of the
//! cluster file, like `election demo`, and reuses its clean-up: the nodes die with this process
//! (`PR_SET_PDEATHSIG`) and the scratch directory is removed by the demo's watcher. Then each
//! step of the [`schedule`] applies one fault through the processes (SIGKILL, SIGSTOP, SIGTERM)
//! or the logserver's blocks, holds it, heals it (restart with the same command line and state
//! dir, SIGCONT, unblock) and waits for the cluster to settle before the next. Every action is
//! logged with its time. At the end [`verdict`] reads the log of status reports and judges it.

pub mod schedule;
pub mod verdict;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use election_core::invariant::{Settlement, settlement};
use election_core::report::BlockedLink;
use election_core::{
    Algorithm, ClusterConfig, Config, NodeId, Properties, Protocol, State, Status, Time, Timing,
    with_protocol,
};
use election_net::{NodeArgs, Supervisor};
use logserver::{NodeView, ServeArgs, Server};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Serialize;

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
    /// default: --nodes loopback addresses.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
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
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// The first node's UDP port with --nodes; node i listens on 127.0.0.1:(base-port + i).
    #[arg(long, default_value_t = 9100)]
    pub base_port: u16,
    /// Period of the nodes' polls and heartbeats, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub heartbeat_ms: u64,
    /// How long a node waits for an answer before declaring a peer failed, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 500)]
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
    /// A node process was started (again).
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
    let timing = Timing {
        heartbeat: args.heartbeat_ms * 1000,
        timeout: args.timeout_ms * 1000,
    };
    timing
        .validate(args.algorithm.name())
        .context("--heartbeat-ms / --timeout-ms")?;
    let addrs = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the cluster file {}", path.display()))?;
            let config = ClusterConfig::parse(&text)
                .with_context(|| format!("cluster file {}", path.display()))?;
            check_local(config.addrs())?;
            config.addrs().to_vec()
        }
        None => demo::free_node_addrs(args.base_port, args.nodes)?,
    };
    let (properties, bound) = with_protocol!(args.algorithm, P => {
        let config = Config::new(timing);
        (P::properties(&config), P::liveness_bound(&config, addrs.len()))
    });
    let steps = schedule::schedule(&schedule::Plan {
        seed: args.seed,
        n: addrs.len(),
        events: usize::try_from(args.events).unwrap_or(usize::MAX),
        properties: &properties,
        timeout_ms: args.timeout_ms,
        kinds: &args.faults,
        hold_ms: args.hold_ms,
    });
    if steps.is_empty() {
        bail!(
            "--faults: none of the kinds asked for applies to {} with {} nodes",
            args.algorithm,
            addrs.len()
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the results folder {}", args.out.display()))?;
    write_json(&args.out.join("schedule.json"), &steps)?;

    let scratch = tempfile::Builder::new()
        .prefix("election-chaos-")
        .tempdir()
        .context("cannot create the campaign's scratch directory")?;
    let _watcher = demo::watch_scratch(scratch.path())?;
    let mut cluster = Cluster::start(&args, &addrs, properties, scratch.path()).await?;
    let stop = election_net::stop_signal()?;
    let campaign = Campaign {
        steps: &steps,
        bound,
        deadline: tokio::time::Instant::now() + args.duration,
        heartbeat: Duration::from_millis(args.heartbeat_ms),
    };
    let done = tokio::select! {
        done = campaign.run(&mut cluster) => Some(done),
        () = stop => None,
    };
    let result = match done {
        None => Err(anyhow::anyhow!(
            "interrupted: the cluster was stopped, no verdict"
        )),
        Some(Err(e)) => Err(e),
        Some(Ok(ran)) => {
            let judged = judge(&args, &cluster, properties, bound, &steps, ran);
            judged.map(|summary| summary.exit_code())
        }
    };
    cluster.stop().await;
    result
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
        cluster.settle(None, wait).await;
        for (i, step) in self.steps.iter().enumerate() {
            if tokio::time::Instant::now() >= self.deadline {
                return Ok(i);
            }
            cluster.apply(i, step).await?;
            cluster.settle(Some(i), wait).await;
            // A calm moment after the settle: the verdict judges validity on it.
            tokio::time::sleep(self.heartbeat * 3).await;
        }
        Ok(self.steps.len())
    }
}

/// The running cluster and the campaign's log.
struct Cluster {
    addrs: Vec<SocketAddr>,
    command_lines: Vec<Vec<String>>,
    supervisor: Supervisor,
    pids: Vec<Option<u32>>,
    paused: BTreeSet<usize>,
    server: Server,
    properties: Properties,
    events: Vec<Event>,
    started_ms: u64,
}

impl Cluster {
    async fn start(
        args: &ChaosArgs,
        addrs: &[SocketAddr],
        properties: Properties,
        scratch: &Path,
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
        let supervisor = demo::node_supervisor()?;
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
        let mut cluster = Cluster {
            addrs: addrs.to_vec(),
            command_lines,
            supervisor,
            pids: vec![None; addrs.len()],
            paused: BTreeSet::new(),
            server,
            properties,
            events: Vec::new(),
            started_ms: now_ms(),
        };
        for node in 0..addrs.len() {
            cluster.spawn(None, node)?;
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

    fn spawn(&mut self, step: Option<usize>, node: usize) -> anyhow::Result<()> {
        let addr = self.addrs[node];
        let pid = self
            .supervisor
            .spawn(&addr.to_string(), &self.command_lines[node])?;
        self.pids[node] = Some(pid);
        self.log(
            step,
            What::Up { node, pid },
            format!("{addr} started (pid {pid})"),
        );
        Ok(())
    }

    fn signal(&self, node: usize, signal: Signal) {
        if let Some(pid) = self.pids[node] {
            let _ = kill(Pid::from_raw(pid as i32), signal);
        }
    }

    /// Signals a node to stop and waits (bounded) for the process to be reaped, so the
    /// supervisor never signals a recycled pid.
    async fn stop_node(&mut self, step: usize, node: usize, signal: Signal) {
        let Some(pid) = self.pids[node].take() else {
            return;
        };
        let _ = kill(Pid::from_raw(pid as i32), signal);
        let reaped = tokio::time::timeout(GRACE, async {
            while let Some(exit) = self.supervisor.wait_any().await {
                if exit.pid == pid {
                    break;
                }
            }
        })
        .await;
        if reaped.is_err() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        let addr = self.addrs[node];
        self.log(
            Some(step),
            What::Down { node },
            format!("{addr} is down ({signal})"),
        );
    }

    async fn set_blocks(&mut self, step: usize, links: Vec<BlockedLink>) -> anyhow::Result<()> {
        let n = links.len();
        self.server
            .set_blocks(links)
            .await
            .map_err(|e| anyhow::anyhow!("cannot set the blocked links: {e}"))?;
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
    fn leader(&self) -> Option<usize> {
        let views = self.server.nodes();
        views
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
            })
    }

    /// Applies, holds and heals one step.
    async fn apply(&mut self, i: usize, step: &Step) -> anyhow::Result<()> {
        let hold = Duration::from_millis(step.hold_ms);
        let mut fault = step.fault.clone();
        if fault == Fault::IsolateLeader {
            // Resolved now: who leads depends on the run, not the seed.
            let target = self.leader().unwrap_or(self.addrs.len() - 1);
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
                self.signal(*node, Signal::SIGSTOP);
                self.paused.insert(*node);
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
            Fault::Pause { node } => {
                self.signal(*node, Signal::SIGCONT);
                self.paused.remove(node);
            }
            _ => self.set_blocks(i, Vec::new()).await?,
        }
        Ok(())
    }

    /// Waits until every node is Normal behind one leader (on the node table), at most `wait`.
    async fn settle(&mut self, step: Option<usize>, wait: Duration) {
        let start = tokio::time::Instant::now();
        loop {
            if self.agreed() {
                let ms = start.elapsed().as_millis();
                self.log(step, What::Settled, format!("settled after {ms} ms"));
                return;
            }
            if start.elapsed() >= wait {
                let ms = wait.as_millis();
                self.log(
                    step,
                    What::NotSettled,
                    format!("not settled within {ms} ms"),
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the node table shows every node live, Normal and behind one leader (the
    /// settlement check of `election_core::invariant`, as the verdict uses it).
    fn agreed(&self) -> bool {
        let views = self.server.nodes();
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
        matches!(
            settlement(&self.properties, self.addrs.len(), &live),
            Settlement::Settled { .. } | Settlement::NotHighest { .. }
        )
    }

    /// Stops everything: paused nodes are continued first, so they can leave.
    async fn stop(mut self) {
        for node in std::mem::take(&mut self.paused) {
            self.signal(node, Signal::SIGCONT);
        }
        self.supervisor.shutdown(GRACE).await;
        if let Err(e) = self.server.shutdown().await {
            eprintln!("[chaos] logserver shutdown: {e}");
        }
    }
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
fn judge(
    args: &ChaosArgs,
    cluster: &Cluster,
    properties: Properties,
    bound: Time,
    steps: &[Step],
    ran: usize,
) -> anyhow::Result<verdict::Summary> {
    let entries = cluster.server.entries_since(cluster.started_ms);
    let input = verdict::Input {
        algorithm: args.algorithm,
        properties,
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
    let run = cluster.server.run_since(cluster.started_ms);
    write(
        &out.join("spacetime.html"),
        &election_view::render_spacetime(&run),
    )?;
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
