//! Real-node benchmark: failover time after SIGKILL of the leader, and the resident memory and
//! idle CPU of node processes. Build in release first:
//!
//! ```text
//! cargo build --release -p election --bin election -p election-benches --bin failover
//! target/release/failover                  # keyed nodes over UDP, as deployed
//! target/release/failover --keyless        # the same without a key: the security overhead
//! target/release/failover --transport tcp
//! target/release/failover --against-etcd   # and a 5-member etcd cluster in the same run
//! ```
//!
//! Failover time runs from the SIGKILL until every survivor's latest report on the logserver
//! (polled every 5 ms) shows `Normal` under one common new leader, so it includes the report
//! path; each trial uses a fresh cluster, and the kill falls at a random phase of the heartbeat
//! (a random 0..heartbeat wait after the cluster settled, drawn from `--seed`). The phases come
//! from the logserver's log afterwards, on the nodes' own clocks (see [`Phases`]).
//!
//! With `--against-etcd` every trial round also starts a fresh etcd cluster of as many members
//! at the same heartbeat and election timeout, kills its leader the same way and polls every
//! survivor's status endpoint every 5 ms until they all follow one new leader.

mod etcd;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use election_core::report::ReportEvent;
use election_core::{Algorithm, State};
use election_tests::{Cluster, Logserver, Security, Speed, TransportKind};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use logserver::LogEntry;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

/// Failover time, memory and idle CPU of real `election node` processes on loopback.
#[derive(Parser, Debug)]
struct Args {
    /// Trials per algorithm (and for etcd).
    #[arg(long, default_value_t = 50)]
    trials: usize,
    /// Algorithms to measure (repeatable; default: all of them).
    #[arg(long)]
    algorithm: Vec<Algorithm>,
    /// Nodes per cluster.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Node heartbeat for the failover trials, in ms.
    #[arg(long, default_value_t = 20)]
    heartbeat_ms: u64,
    /// Node failure timeout for the failover trials, in ms.
    #[arg(long, default_value_t = 100)]
    timeout_ms: u64,
    /// Seed of the random kill phases.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How long to watch an idle cluster for CPU use, in seconds.
    #[arg(long, default_value_t = 5)]
    idle_secs: u64,
    /// Run the nodes without a cluster key, to measure what the MAC and replay checks cost
    /// (default: off, the nodes are keyed as deployed).
    #[arg(long)]
    keyless: bool,
    /// The nodes' transport: udp or tcp (default: udp).
    #[arg(long, value_enum, default_value_t = TransportKind::Udp)]
    transport: TransportKind,
    /// Also measure an etcd cluster of as many members at the same heartbeat and election
    /// timeout (`--heartbeat-interval`, `--election-timeout`), in the same run.
    #[arg(long)]
    against_etcd: bool,
    /// The etcd binary: a name looked up on PATH, or a path.
    #[arg(long, default_value = "etcd")]
    etcd: PathBuf,
}

/// Clock ticks per second of the utime/stime fields of /proc/<pid>/stat (USER_HZ, 100 on Linux).
const USER_HZ: f64 = 100.0;
const STARTUP: Duration = Duration::from_secs(30);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let etcd_bin = if args.against_etcd {
        match etcd::find(&args.etcd) {
            Ok(found) => Some(found),
            Err(e) => {
                eprintln!("--against-etcd: {e}");
                std::process::exit(2);
            }
        }
    } else {
        None
    };
    let algorithms = if args.algorithm.is_empty() {
        Algorithm::ALL.to_vec()
    } else {
        args.algorithm.clone()
    };
    let fast = Speed {
        heartbeat_ms: args.heartbeat_ms,
        timeout_ms: args.timeout_ms,
    };
    let setup = Setup {
        security: if args.keyless {
            Security::Keyless
        } else {
            Security::Keyed
        },
        transport: args.transport,
    };
    println!(
        "Failover, {} nodes, heartbeat {} ms, timeout {} ms, {} trials, seed {}, {:?} over {}{}:\n",
        args.nodes,
        fast.heartbeat_ms,
        fast.timeout_ms,
        args.trials,
        args.seed,
        setup.security,
        setup.transport,
        match &etcd_bin {
            Some((bin, version)) => format!(", against etcd {version} ({})", bin.display()),
            None => String::new(),
        }
    );
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut ours: Vec<Vec<Trial>> = vec![Vec::new(); algorithms.len()];
    let mut theirs: Vec<EtcdTrial> = Vec::new();
    // Rounds of one trial per system, so load from elsewhere on the machine falls on all alike.
    for round in 0..args.trials {
        for (i, &algorithm) in algorithms.iter().enumerate() {
            let t = failover_once(algorithm, fast, args.nodes, setup, &mut rng).await;
            ours[i].push(t);
        }
        if let Some((bin, _)) = &etcd_bin {
            theirs.push(etcd_failover_once(bin, fast, args.nodes, &mut rng).await);
        }
        eprintln!("round {}/{} done", round + 1, args.trials);
    }

    let etcd = (!theirs.is_empty()).then(|| Summary::of(theirs.iter().map(|t| t.total).collect()));
    let etcd_median = etcd.as_ref().map(|s| s.median);
    println!("Total, kill to agreement as observed (median / p90 / max / min):\n");
    println!("| system | median | p90 | max | min | median ÷ etcd | liveness bound |");
    println!("|---|---|---|---|---|---|---|");
    let row = |system: &str, s: Summary, bound: &str| {
        println!(
            "| {system} | {} | {} | {} | {} | {} | {bound} |",
            ms(s.median),
            ms(s.p90),
            ms(s.max),
            ms(s.min),
            ratio(s.median, etcd_median)
        );
    };
    for (&algorithm, trials) in algorithms.iter().zip(&ours) {
        let s = Summary::of(trials.iter().map(|t| t.total).collect());
        row(algorithm.name(), s, &ms(fast.bound(algorithm, args.nodes)));
    }
    if let Some(s) = etcd {
        row("etcd", s, "none");
    }
    println!(
        "\nPhases, on the nodes' clocks (median / p90 / max; the phases' medians need not add up):\n"
    );
    println!(
        "| system | detection | election | announcement | kill to last Normal | observed total − that |"
    );
    println!("|---|---|---|---|---|---|");
    for (&algorithm, trials) in algorithms.iter().zip(&ours) {
        let phase = |f: fn(&Trial) -> Duration| Summary::of(trials.iter().map(f).collect());
        println!(
            "| {algorithm} | {} | {} | {} | {} | {} |",
            phase(|t| t.phases.detection),
            phase(|t| t.phases.election),
            phase(|t| t.phases.announcement),
            phase(|t| t.phases.settled()),
            phase(|t| t.total.saturating_sub(t.phases.settled())),
        );
    }
    if !theirs.is_empty() {
        let detection = Summary::of(theirs.iter().map(|t| t.detection).collect());
        println!("| etcd (polled, not node clocks) | {detection} | — | — | — | — |");
    }

    // Defaults of `election node` (heartbeat 250 ms, timeout 1 s) and the failover timing.
    let default = Speed {
        heartbeat_ms: 250,
        timeout_ms: 1000,
    };
    println!(
        "\nOne node process, idle cluster of {} nodes, CPU over {} s (max over the nodes):\n",
        args.nodes, args.idle_secs
    );
    println!("| algorithm | heartbeat / timeout | VmRSS max | CPU max | CPU mean |");
    println!("|---|---|---|---|---|");
    for &algorithm in &algorithms {
        for speed in [default, fast] {
            let r = idle_resources(algorithm, speed, args.nodes, args.idle_secs, setup).await;
            println!(
                "| {algorithm} | {} / {} ms | {:.1} MiB | {:.2} % | {:.2} % |",
                speed.heartbeat_ms,
                speed.timeout_ms,
                r.max_rss_kib as f64 / 1024.0,
                r.max_cpu,
                r.mean_cpu
            );
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn ratio(d: Duration, etcd: Option<Duration>) -> String {
    etcd.map_or("—".to_string(), |e| {
        format!("{:.2}×", d.as_secs_f64() / e.as_secs_f64())
    })
}

/// Median (of the middle two for an even count), 90th percentile (nearest rank), max and min.
struct Summary {
    median: Duration,
    p90: Duration,
    max: Duration,
    min: Duration,
}

impl Summary {
    fn of(mut times: Vec<Duration>) -> Summary {
        times.sort();
        let n = times.len();
        Summary {
            median: (times[(n - 1) / 2] + times[n / 2]) / 2,
            p90: times[(n * 9).div_ceil(10) - 1],
            max: times[n - 1],
            min: times[0],
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} / {} / {}",
            ms(self.median),
            ms(self.p90),
            ms(self.max)
        )
    }
}

/// Keys and transport of the measured nodes.
#[derive(Clone, Copy)]
struct Setup {
    security: Security,
    transport: TransportKind,
}

impl Setup {
    fn cluster(
        self,
        algorithm: Algorithm,
        n: usize,
        logserver: &Logserver,
        speed: Speed,
    ) -> Cluster {
        Cluster::start_with(
            algorithm.name(),
            n,
            logserver.addr(),
            &speed.flags(),
            self.transport,
            self.security,
        )
    }
}

/// A random wait of 0..heartbeat, so the kill falls at any phase of the leader's heartbeat.
fn random_phase(rng: &mut ChaCha8Rng, speed: Speed) -> Duration {
    Duration::from_micros(rng.random_range(0..speed.heartbeat_ms * 1000))
}

/// One failover of this project's nodes.
#[derive(Clone)]
struct Trial {
    /// Kill until the logserver showed every survivor `Normal` under one new leader.
    total: Duration,
    phases: Phases,
}

/// A failover's phases, from the logserver's log after the trial: every report carries the
/// node's status and the time on its monotonic clock, which is mapped to wall-clock time as the
/// least `server arrival − node time` over the node's reports (arrival times are whole ms, so a
/// mapped time may be off by about a millisecond either way). The phases count status-change
/// reports only.
#[derive(Clone, Copy)]
struct Phases {
    /// Kill until the first survivor stopped being `Normal` under the killed leader.
    detection: Duration,
    /// From there until the first survivor named the new leader.
    election: Duration,
    /// From there until the last survivor was `Normal` under it for good.
    announcement: Duration,
}

impl Phases {
    /// Kill until the last survivor was `Normal` under the new leader.
    fn settled(&self) -> Duration {
        self.detection + self.election + self.announcement
    }

    /// The phases in `log` of a kill of `old` at `killed_us` (µs since the Unix epoch), after
    /// which `survivors` agreed on `new`.
    fn from_log(
        log: &[LogEntry],
        killed_us: u64,
        old: SocketAddr,
        new: SocketAddr,
        survivors: &[SocketAddr],
    ) -> Phases {
        let (old, new) = (old.to_string(), new.to_string());
        let under = |e: &LogEntry, leader: &str| {
            e.report.state == State::Normal && e.report.coordinator.as_deref() == Some(leader)
        };
        let mut detected = u64::MAX;
        let mut elected = u64::MAX;
        let mut announced = 0;
        for addr in survivors {
            let addr = addr.to_string();
            // In log order, which is the order the node's reporter queued them in.
            let mine: Vec<&LogEntry> = log.iter().filter(|e| e.report.addr == addr).collect();
            let started_us = mine
                .iter()
                .map(|e| (e.server_time_ms * 1000).saturating_sub(e.report.node_time_us))
                .min()
                .unwrap_or_else(|| panic!("{addr} sent no report"));
            let at = |e: &LogEntry| started_us + e.report.node_time_us;
            // Status changes only: a periodic report repeats the last status the reporter had,
            // stamped when it was sent, so it can be stamped after a change still in its queue.
            let after: Vec<&LogEntry> = mine
                .into_iter()
                .filter(|e| e.report.event != ReportEvent::Heartbeat && at(e) >= killed_us)
                .collect();
            if let Some(e) = after.iter().find(|e| !under(e, &old)) {
                detected = detected.min(at(e));
            }
            if let Some(e) = after
                .iter()
                .find(|e| e.report.coordinator.as_deref() == Some(new.as_str()))
            {
                elected = elected.min(at(e));
            }
            // The first report of the final run of `Normal` under the new leader.
            let stays = after
                .iter()
                .rposition(|e| !under(e, &new))
                .map_or(0, |last_other| last_other + 1);
            let first = after
                .get(stays)
                .unwrap_or_else(|| panic!("{addr} never reported Normal under {new}"));
            announced = announced.max(at(first));
        }
        assert!(
            detected <= elected && elected <= announced,
            "phases out of order: detected {detected}, elected {elected}, announced {announced} µs"
        );
        let us = Duration::from_micros;
        Phases {
            detection: us(detected - killed_us),
            election: us(elected - detected),
            announcement: us(announced - elected),
        }
    }
}

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_micros() as u64
}

/// Every entry of the logserver's `GET /api/log`, page by page.
async fn read_log(logserver: SocketAddr) -> Vec<LogEntry> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut log: Vec<LogEntry> = Vec::new();
    loop {
        let since = log
            .last()
            .map_or(String::new(), |e| format!("&since={}", e.seq));
        let uri = format!("http://{logserver}/api/log?limit=10000{since}");
        let response = client
            .get(uri.parse().unwrap())
            .await
            .expect("GET /api/log");
        assert!(
            response.status().is_success(),
            "GET /api/log: {}",
            response.status()
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let page: Vec<LogEntry> = serde_json::from_slice(&body).expect("a /api/log answer");
        if page.is_empty() {
            return log;
        }
        log.extend(page);
    }
}

/// Starts a cluster, lets it settle, SIGKILLs the leader at a random heartbeat phase and times
/// the survivors' agreement.
async fn failover_once(
    algorithm: Algorithm,
    speed: Speed,
    n: usize,
    setup: Setup,
    rng: &mut ChaCha8Rng,
) -> Trial {
    let logserver = Logserver::start().await;
    let mut cluster = setup.cluster(algorithm, n, &logserver, speed);
    let addrs = cluster.addrs.clone();
    cluster.wait_for_leader(&logserver, &addrs, STARTUP).await;
    // A leader that is still agreed after a few heartbeats is a settled one.
    tokio::time::sleep(Duration::from_millis(10 * speed.heartbeat_ms)).await;
    let (leader, _) = cluster.wait_for_leader(&logserver, &addrs, STARTUP).await;
    tokio::time::sleep(random_phase(rng, speed)).await;
    let killed_at = Instant::now();
    let killed_us = unix_us();
    cluster.kill(leader);
    let survivors: Vec<_> = addrs.iter().copied().filter(|a| *a != leader).collect();
    let (new, _) = cluster
        .wait_for_leader(&logserver, &survivors, STARTUP)
        .await;
    let total = killed_at.elapsed();
    let log = read_log(logserver.addr()).await;
    drop(cluster);
    logserver.shutdown().await;
    Trial {
        total,
        phases: Phases::from_log(&log, killed_us, leader, new, &survivors),
    }
}

/// One failover of etcd.
struct EtcdTrial {
    /// Kill until every survivor's status named one new leader.
    total: Duration,
    /// Kill until a survivor's status first named another leader than the killed one (0, none,
    /// while it campaigns or waits for the winner).
    detection: Duration,
}

/// [`failover_once`] for an etcd cluster: settled, leader SIGKILLed at a random heartbeat
/// phase, every survivor's status polled every 5 ms.
async fn etcd_failover_once(
    bin: &std::path::Path,
    speed: Speed,
    n: usize,
    rng: &mut ChaCha8Rng,
) -> EtcdTrial {
    let mut cluster = etcd::Etcd::start(bin, n, speed);
    let all = cluster.all();
    cluster.wait_for_leader(&all, STARTUP).await;
    tokio::time::sleep(Duration::from_millis(10 * speed.heartbeat_ms)).await;
    let leader = cluster.wait_for_leader(&all, STARTUP).await;
    let old = cluster
        .status(leader)
        .await
        .expect("the leader answers")
        .member;
    tokio::time::sleep(random_phase(rng, speed)).await;
    let killed_at = Instant::now();
    cluster.kill(leader);
    let survivors: Vec<usize> = all.into_iter().filter(|i| *i != leader).collect();
    let mut detection = None;
    loop {
        let statuses = cluster.statuses(&survivors).await;
        let now = killed_at.elapsed();
        if detection.is_none() && statuses.iter().flatten().any(|s| s.leader != old) {
            detection = Some(now);
        }
        if etcd::agreed(&statuses).is_some_and(|l| l != old) {
            return EtcdTrial {
                total: now,
                detection: detection.unwrap_or(now),
            };
        }
        assert!(
            now < STARTUP,
            "etcd: no new leader {STARTUP:?} after the kill: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

struct Resources {
    max_rss_kib: u64,
    max_cpu: f64,
    mean_cpu: f64,
}

/// VmRSS and CPU share of every node of a settled, idle cluster.
async fn idle_resources(
    algorithm: Algorithm,
    speed: Speed,
    n: usize,
    secs: u64,
    setup: Setup,
) -> Resources {
    let logserver = Logserver::start().await;
    let cluster = setup.cluster(algorithm, n, &logserver, speed);
    let addrs = cluster.addrs.clone();
    cluster.wait_for_leader(&logserver, &addrs, STARTUP).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pids: Vec<u32> = addrs.iter().map(|a| cluster.pid(*a)).collect();
    let before: Vec<u64> = pids.iter().map(|p| cpu_ticks(*p)).collect();
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let elapsed = start.elapsed().as_secs_f64();
    let shares: Vec<f64> = pids
        .iter()
        .zip(&before)
        .map(|(p, b)| (cpu_ticks(*p) - b) as f64 / USER_HZ / elapsed * 100.0)
        .collect();
    let max_rss_kib = pids.iter().map(|p| rss_kib(*p)).max().unwrap_or(0);
    drop(cluster);
    logserver.shutdown().await;
    Resources {
        max_rss_kib,
        max_cpu: shares.iter().copied().fold(0.0, f64::max),
        mean_cpu: shares.iter().sum::<f64>() / shares.len() as f64,
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    // The command name may contain spaces; fields after it start with the state (field 3).
    let rest = &stat[stat.rfind(')').expect("a (comm) field") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields[11].parse().expect("utime");
    let stime: u64 = fields[12].parse().expect("stime");
    utime + stime
}

#[cfg(test)]
mod tests {
    use super::*;
    use election_core::report::NodeReport;

    const OLD: &str = "127.0.0.1:5";
    const NEW: &str = "127.0.0.1:4";
    const KILL_US: u64 = 1_000_000_000;

    /// A report of `addr` stamped `node_us` on a clock started at `KILL_US - 500_000` µs, which
    /// arrived `delay_us` later.
    fn entry(
        seq: u64,
        addr: &str,
        event: ReportEvent,
        state: State,
        leader: &str,
        node_us: u64,
        delay_us: u64,
    ) -> LogEntry {
        LogEntry {
            seq,
            server_time_ms: (KILL_US - 500_000 + node_us + delay_us) / 1000,
            report: NodeReport {
                addr: addr.to_string(),
                algorithm: "bully".to_string(),
                event,
                state,
                coordinator: Some(leader.to_string()),
                group: None,
                incarnation: None,
                term: None,
                phase: String::new(),
                node_time_us: node_us,
                heartbeat_ms: 20,
                pid: 1,
                drops: Default::default(),
                messages: Vec::new(),
                messages_dropped: 0,
            },
        }
    }

    #[test]
    fn phases_follow_status_changes_and_skip_stale_periodic_reports() {
        use ReportEvent::{Heartbeat, Status};
        use State::{Election, Normal};
        let (a, b) = ("127.0.0.1:3", NEW);
        let log = vec![
            // Before the kill (node time 500 ms): settled under the old leader; the periodic
            // report with no delay pins the clock mapping.
            entry(0, a, Heartbeat, Normal, OLD, 400_000, 0),
            entry(1, b, Heartbeat, Normal, OLD, 400_000, 0),
            // a detects at kill + 100 ms, b starts its election at kill + 105 ms.
            entry(2, a, Status, Election, OLD, 600_000, 2_000),
            entry(3, b, Status, Election, OLD, 605_000, 2_000),
            // b names itself at kill + 110 ms and is Normal at kill + 112 ms.
            entry(4, b, Status, Normal, NEW, 612_000, 2_000),
            // A periodic report of a, queued after its last change but stamped later than the
            // change still in its queue, repeats the stale Election status.
            entry(5, a, Heartbeat, Election, OLD, 620_000, 2_000),
            // a follows b at kill + 115 ms.
            entry(6, a, Status, Normal, NEW, 615_000, 7_000),
        ];
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        let p = Phases::from_log(&log, KILL_US, addr(OLD), addr(NEW), &[addr(a), addr(b)]);
        let ms = Duration::from_millis;
        assert_eq!(p.detection, ms(100));
        assert_eq!(p.election, ms(12));
        assert_eq!(p.announcement, ms(3));
        assert_eq!(p.settled(), ms(115));
    }

    #[test]
    fn etcd_agreement_needs_every_member_on_one_nonzero_leader() {
        let s = |member, leader| Some(etcd::Status { member, leader });
        assert_eq!(etcd::agreed(&[s(1, 2), s(2, 2)]), Some(2));
        assert_eq!(etcd::agreed(&[s(1, 2), s(2, 3)]), None);
        assert_eq!(etcd::agreed(&[s(1, 0), s(2, 0)]), None);
        assert_eq!(etcd::agreed(&[s(1, 2), None]), None);
    }
}
