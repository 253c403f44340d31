//! `election run` starts exactly the config lines of this host, prefixes their output, and stops
//! them all on SIGTERM.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use election_tests::{
    FAST, Logserver, TempDir, agreed_leader, election_bin, free_udp_addrs, keygen,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_starts_local_lines_only_and_stops_them() {
    let logserver = Logserver::start().await;
    let dir = TempDir::new("runner");
    let local = free_udp_addrs(3);
    // 192.0.2.0/24 is reserved for documentation: never an address of this host.
    let remote: SocketAddr = "192.0.2.1:9000".parse().unwrap();
    let config = dir.path().join("server_config");
    std::fs::write(
        &config,
        format!("{}\n{remote}\n{}\n{}\n", local[0], local[1], local[2]),
    )
    .unwrap();
    // The config is not all loopback: nodes refuse to start without a key.
    let key = dir.path().join("cluster.key");
    keygen(&key);
    let out_path = dir.path().join("runner.out");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut runner = Command::new(election_bin())
        .args(["run", "bully", "--config"])
        .arg(&config)
        .arg(format!("--logserver={}", logserver.addr()))
        .arg(format!("--state-dir={}", dir.path().display()))
        .arg(format!("--key-file={}", key.display()))
        .args(FAST.flags())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let views = loop {
        let views = logserver.nodes().await;
        if agreed_leader(&views, &local) == Some(local[2]) {
            break views;
        }
        assert!(
            Instant::now() < deadline,
            "no leader among the local nodes: {views:#?}\n{}",
            std::fs::read_to_string(&out_path).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        !views.iter().any(|v| v.addr == remote.to_string()),
        "the other host's line was started here"
    );
    let pids: Vec<u32> = views.iter().map(|v| v.pid).collect();
    assert_eq!(pids.len(), 3);

    kill(Pid::from_raw(runner.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = runner.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the runner ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "runner exited with {status}");
    for pid in pids {
        // Signal 0 probes for existence: every child must be gone (and reaped by the runner).
        assert!(
            kill(Pid::from_raw(pid as i32), None).is_err(),
            "node process {pid} outlived the runner"
        );
    }
    let output = std::fs::read_to_string(&out_path).unwrap();
    for addr in &local {
        assert!(
            output.contains(&format!("[{addr}] ")),
            "no output prefixed with {addr}:\n{output}"
        );
    }
    logserver.shutdown().await;
}
