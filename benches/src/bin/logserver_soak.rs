//! Logserver soak: an `election logserver` process (embedded store) receives a heartbeat report
//! from each of `--nodes` simulated nodes every `--every-ms`, each node on its own keep-alive
//! connection as a real node would, for `--minutes`. Every `--sample-secs` it prints the server's
//! resident memory (VmRSS) and the request latency of that window; at the end a summary, after
//! a SIGTERM that must stop the server cleanly.
//!
//! `cargo build --release --bin election -p election-benches --bin logserver_soak &&
//!  target/release/logserver_soak` (defaults: 1,000 nodes, 300 ms, 10 minutes, samples every
//! 10 s; the target is RSS ≤ 256 MiB throughout).

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use election_core::State;
use election_core::report::{NodeReport, ReportEvent};
use election_tests::{TempDir, election_bin};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[derive(Parser)]
struct Args {
    /// Simulated nodes, one connection each.
    #[arg(long, default_value_t = 1_000)]
    nodes: u16,
    /// Report period of every node, in milliseconds.
    #[arg(long, default_value_t = 300)]
    every_ms: u64,
    /// Length of the soak, in minutes.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Sampling period of RSS and latency, in seconds.
    #[arg(long, default_value_t = 10)]
    sample_secs: u64,
}

fn report(node: u16, t: u64, every_ms: u64) -> NodeReport {
    let leader = "127.0.0.1:30999".to_string();
    NodeReport {
        addr: format!("127.0.0.1:{}", 30_000 + u32::from(node)),
        algorithm: "bully".to_string(),
        event: ReportEvent::Heartbeat,
        state: State::Normal,
        coordinator: Some(leader.clone()),
        group: Some(format!("{leader}#3")),
        incarnation: None,
        term: None,
        phase: "Normal".to_string(),
        node_time_us: t,
        heartbeat_ms: every_ms,
        pid: 10_000 + u32::from(node),
        drops: [("blocked".to_string(), t / 1000)].into(),
        messages: Vec::new(),
        messages_dropped: 0,
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    raise_fd_limit();
    let dir = TempDir::new("soak");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(election_bin())
        .args(["logserver", "--port", &port.to_string(), "--data-dir"])
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("start election logserver");
    let pid = server.id();
    let url: hyper::Uri = format!("http://127.0.0.1:{port}/api/reports")
        .parse()
        .unwrap();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "soak: {} nodes every {} ms for {} min, logserver pid {pid}, RSS at start {:.1} MiB",
        args.nodes,
        args.every_ms,
        args.minutes,
        rss_kib(pid) as f64 / 1024.0
    );
    let latencies = Arc::new(Mutex::new(Vec::<u32>::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs_f64(args.minutes * 60.0);
    let mut tasks = Vec::new();
    for node in 0..args.nodes {
        let (url, latencies, errors, ok) =
            (url.clone(), latencies.clone(), errors.clone(), ok.clone());
        let every = Duration::from_millis(args.every_ms);
        let every_ms = args.every_ms;
        let share = f64::from(node) / f64::from(args.nodes);
        tasks.push(tokio::spawn(async move {
            let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(1)
                .build_http();
            // Spread the nodes over the period, as real ones drift apart.
            tokio::time::sleep(every.mul_f64(share)).await;
            let mut tick = tokio::time::interval(every);
            let mut t = 0u64;
            while Instant::now() < end {
                tick.tick().await;
                t += every_ms * 1000;
                let body = serde_json::json!({ "reports": [report(node, t, every_ms)] });
                let req = Request::post(url.clone())
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body.to_string())))
                    .unwrap();
                let sent = Instant::now();
                let answer = tokio::time::timeout(Duration::from_secs(2), async {
                    let res = client.request(req).await.ok()?;
                    let status = res.status();
                    res.into_body().collect().await.ok()?;
                    Some(status)
                })
                .await;
                let micros = sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                if let Ok(Some(StatusCode::OK)) = answer {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                latencies.lock().unwrap().push(micros);
            }
        }));
    }
    let start = Instant::now();
    let mut all: Vec<u32> = Vec::new();
    let mut max_rss = 0;
    println!("   t (s)   RSS (MiB)   reports ok   errors   p50 (ms)   p99 (ms)   max (ms)");
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(args.sample_secs)).await;
        let mut window = std::mem::take(&mut *latencies.lock().unwrap());
        window.sort_unstable();
        let rss = rss_kib(pid);
        max_rss = max_rss.max(rss);
        println!(
            "{:>8.0} {:>11.1} {:>12} {:>8} {:>10.1} {:>10.1} {:>10.1}",
            start.elapsed().as_secs_f64(),
            rss as f64 / 1024.0,
            ok.load(Ordering::Relaxed),
            errors.load(Ordering::Relaxed),
            percentile(&window, 0.5),
            percentile(&window, 0.99),
            window.last().map_or(0.0, |m| f64::from(*m) / 1000.0)
        );
        all.extend(window);
    }
    for t in tasks {
        let _ = t.await;
    }
    all.extend(std::mem::take(&mut *latencies.lock().unwrap()));
    all.sort_unstable();
    kill(Pid::from_raw(pid as i32), Signal::SIGTERM).unwrap();
    let stopping = Instant::now();
    let status = server.wait().unwrap();
    println!(
        "summary: {} reports acknowledged, {} errors, latency p50 {:.1} ms p99 {:.1} ms max {:.1} \
         ms, max RSS {:.1} MiB (target ≤ 256), SIGTERM stop in {:.0} ms ({status})",
        ok.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.last().map_or(0.0, |m| f64::from(*m) / 1000.0),
        max_rss as f64 / 1024.0,
        stopping.elapsed().as_secs_f64() * 1e3,
    );
    assert!(status.success(), "the logserver did not stop cleanly");
}
