//! Real-node benchmark: failover time after SIGKILL of the leader, and the resident memory and
//! idle CPU of node processes. Build in release first:
//!
//! ```text
//! cargo build --release -p election --bin election -p election-benches --bin failover
//! target/release/failover                  # keyed nodes over UDP, as deployed
//! target/release/failover --keyless        # the same without a key: the security overhead
//! target/release/failover --transport tcp
//! ```
//!
//! Failover time runs from the SIGKILL until every survivor's latest report on the logserver
//! (polled every 5 ms) shows `Normal` under one common new leader, so it includes the report
//! path; each trial uses a fresh cluster.

use std::time::Duration;

use clap::Parser;
use election_core::Algorithm;
use election_tests::{Cluster, Logserver, Security, Speed, TransportKind};
use tokio::time::Instant;

/// Failover time, memory and idle CPU of real `election node` processes on loopback.
#[derive(Parser, Debug)]
struct Args {
    /// Trials per algorithm.
    #[arg(long, default_value_t = 10)]
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
}

/// Clock ticks per second of the utime/stime fields of /proc/<pid>/stat (USER_HZ, 100 on Linux).
const USER_HZ: f64 = 100.0;
const STARTUP: Duration = Duration::from_secs(30);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
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
        "Failover, {} nodes, heartbeat {} ms, timeout {} ms, {} trials, {:?} over {}:\n",
        args.nodes,
        fast.heartbeat_ms,
        fast.timeout_ms,
        args.trials,
        setup.security,
        setup.transport
    );
    println!("| algorithm | median | max | min | liveness bound |");
    println!("|---|---|---|---|---|");
    for &algorithm in &algorithms {
        let mut times = Vec::new();
        for _ in 0..args.trials {
            times.push(failover_once(algorithm, fast, args.nodes, setup).await);
        }
        times.sort();
        let n = times.len();
        let median = (times[(n - 1) / 2] + times[n / 2]) / 2;
        println!(
            "| {algorithm} | {} | {} | {} | {} |",
            ms(median),
            ms(times[n - 1]),
            ms(times[0]),
            ms(fast.bound(algorithm, args.nodes))
        );
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

/// Starts a cluster, lets it settle, SIGKILLs the leader and times the survivors' agreement.
async fn failover_once(algorithm: Algorithm, speed: Speed, n: usize, setup: Setup) -> Duration {
    let logserver = Logserver::start().await;
    let mut cluster = setup.cluster(algorithm, n, &logserver, speed);
    let addrs = cluster.addrs.clone();
    cluster.wait_for_leader(&logserver, &addrs, STARTUP).await;
    // A leader that is still agreed after a few heartbeats is a settled one.
    tokio::time::sleep(Duration::from_millis(10 * speed.heartbeat_ms)).await;
    let (leader, _) = cluster.wait_for_leader(&logserver, &addrs, STARTUP).await;
    let killed_at = Instant::now();
    cluster.kill(leader);
    let survivors: Vec<_> = addrs.iter().copied().filter(|a| *a != leader).collect();
    cluster
        .wait_for_leader(&logserver, &survivors, STARTUP)
        .await;
    let took = killed_at.elapsed();
    drop(cluster);
    logserver.shutdown().await;
    took
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
