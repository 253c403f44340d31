//! HTTP limits with a real `election logserver` process under `ulimit -n 1024` (a common CI
//! default): 1,100 idle connections (more than it may have file descriptors) neither exhaust
//! its descriptors nor stop it answering; a half-sent request is cut off by the header timeout.

mod logserver_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use logserver_common::{Http, LogserverProcess, free_port, metrics, report, sample, temp_dir};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::Signal;
use serde_json::json;

const IDLE: usize = 1_100;
const FD_LIMIT: u32 = 1_024;

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eleven_hundred_idle_connections_then_a_normal_request_is_answered() {
    // This test's own end of the connections needs more than 1,024 descriptors: raise the
    // limit (root, as in CI, may also raise the hard limit).
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let want = hard.max(4096);
    if setrlimit(Resource::RLIMIT_NOFILE, want, want).is_err() {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    }
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    assert!(
        soft >= IDLE as u64 + 200,
        "this test needs an open-file limit of at least {} (ulimit -Hn is {hard})",
        IDLE + 200
    );
    let dir = temp_dir("limits");
    let port = free_port();
    let server =
        LogserverProcess::start(&dir, port, &["--idle-timeout", "8s"], Some(FD_LIMIT)).await;
    let pid = server.pid();

    let connecting = Instant::now();
    let mut idle = Vec::with_capacity(IDLE);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..IDLE {
        // Past the cap the server may close a connection at once; it is still one more tried.
        if let Ok(c) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            idle.push(c);
        }
    }
    // A slowloris: half a request head on one connection.
    let mut slow = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    slow.write_all(b"POST /api/reports HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds = open_fds(pid);
    eprintln!(
        "{} connected in {:?}; server has {fds} descriptors",
        idle.len(),
        connecting.elapsed()
    );
    assert!(fds < FD_LIMIT as usize, "{fds} descriptors open");

    // A node's report gets through while the idle connections are still held open here (the
    // server times them out; until then a request may be told 503 and retries, as nodes do).
    let http = Http::to(&format!("http://127.0.0.1:{port}"));
    let body = json!({ "reports": [report("127.0.0.1:9000", "127.0.0.1:9000", 1)] }).to_string();
    let json = [("content-type", "application/json")];
    let started = Instant::now();
    let mut answers = Vec::new();
    loop {
        let answer = http
            .try_send(Method::POST, "/api/reports", &body, &json)
            .await;
        let done = matches!(answer, Ok((StatusCode::OK, _, _)));
        answers.push(answer.map(|(status, _, _)| status));
        if done {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no 200 within 30 s: {answers:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(open_fds(pid) < FD_LIMIT as usize);
    assert!(
        answers.iter().all(|a| matches!(
            a,
            Ok(StatusCode::OK | StatusCode::SERVICE_UNAVAILABLE) | Err(_)
        )),
        "{answers:?}"
    );
    // The half-sent request was cut off by the header timeout.
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    // Closed (perhaps with a 408, perhaps reset), not left waiting until our read timeout.
    let cut = slow.read_to_end(&mut rest);
    let timed_out = cut.as_ref().is_err_and(|e| {
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )
    });
    assert!(!timed_out, "the slow request was not closed: {cut:?}");
    let m = metrics(&http).await;
    assert!(sample(&m, "logserver_connections_refused_total", &[]) > 0.0);
    let nodes = http.get_json("/api/nodes").await;
    assert_eq!(nodes.as_array().unwrap().len(), 1);
    drop(idle);
    let status = server.stop(Signal::SIGTERM, Duration::from_secs(20)).await;
    assert!(status.success(), "{status}");
}
