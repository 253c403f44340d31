//! `election chaos` against real clusters: a short campaign per algorithm ends with a verdict
//! (no unexpected violation, every heal measured) and a complete results folder; a Bully cluster
//! cut in halves must report the split, as expected outside its synchronous model; the same
//! split of an Invitation cluster breaks nothing (its groups are its model). Attached to a
//! cluster a user started (`election logserver`, `election run`), a campaign leaves every node
//! running; a node paused when the campaign is SIGKILLed is continued, and a cluster the
//! campaign started goes with it. A campaign stopped by SIGINT or SIGTERM in the middle of a
//! fault heals it first: no block is left in place and no node down.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use election_core::Algorithm;
use election_tests::{TempDir, agreed_leader, election_bin, free_udp_addrs, nodes_of};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

/// A base port with `n` consecutive free UDP ports, spread by `salt` per test.
fn base_port(salt: u16, n: u16) -> u16 {
    let start = 30_000 + (std::process::id() % 500) as u16 * 40 + salt * 10;
    (start..60_000)
        .step_by(usize::from(n))
        .find(|&base| (0..n).all(|i| UdpSocket::bind((Ipv4Addr::LOCALHOST, base + i)).is_ok()))
        .expect("a run of free UDP ports")
}

/// Runs a campaign; returns the exit code and the summary.
fn chaos(algorithm: &str, salt: u16, out: &Path, extra: &[&str]) -> (i32, Value) {
    let nodes = 4;
    let base = base_port(salt, nodes).to_string();
    let run = Command::new(election_bin())
        .args([
            "chaos",
            algorithm,
            "--nodes",
            "4",
            "--json",
            "--base-port",
            &base,
        ])
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("election chaos runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}): stdout {stdout}\nstderr {}",
            String::from_utf8_lossy(&run.stderr)
        )
    });
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(saved, summary, "summary.json is the printed summary");
    (run.status.code().unwrap_or(-1), summary)
}

#[test]
fn a_short_campaign_per_algorithm_gives_a_verdict_and_a_results_folder() {
    let dir = TempDir::new("chaos-each");
    for (i, algorithm) in Algorithm::ALL.iter().enumerate() {
        let out = dir.path().join(algorithm.name());
        let (code, s) = chaos(
            algorithm.name(),
            i as u16,
            &out,
            &["--events", "4", "--seed", "11"],
        );
        let unexpected: Vec<&Value> = s["violations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["expected"] == false)
            .collect();
        assert_eq!(code, 0, "{algorithm}: {unexpected:#?}");
        assert_eq!(s["unexpected"], 0, "{algorithm}");
        assert_eq!(s["events_run"], 4, "{algorithm}");
        assert_eq!(s["heals"], 4, "{algorithm}");
        assert_eq!(
            s["reconvergence"]["count"], 4,
            "{algorithm}: every heal reconverged"
        );
        assert!(s["reports"].as_u64().unwrap() > 20, "{algorithm}: {s}");
        let schedule: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("schedule.json")).unwrap())
                .unwrap();
        assert_eq!(schedule.as_array().unwrap().len(), 4);
        let kinds = event_kinds(&out);
        assert_eq!(kinds.iter().filter(|k| *k == "fault").count(), 4);
        assert_eq!(kinds.iter().filter(|k| *k == "heal").count(), 4);
        let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
        assert_eq!(log.lines().count() as u64, s["reports"].as_u64().unwrap());
        let html = std::fs::read_to_string(out.join("spacetime.html")).unwrap();
        assert!(html.contains("127.0.0.1:"), "the picture names the nodes");
    }
    // The schedule is a function of the seed.
    let again = dir.path().join("again");
    let first = std::fs::read_to_string(dir.path().join("bully/schedule.json")).unwrap();
    let (code, _) = chaos(
        "bully",
        7,
        &again,
        &["--events", "4", "--seed", "11", "--duration", "1ms"],
    );
    assert_eq!(code, 0);
    assert_eq!(
        std::fs::read_to_string(again.join("schedule.json")).unwrap(),
        first
    );
}

#[test]
fn bully_cut_in_halves_reports_the_expected_split_and_invitation_none() {
    let dir = TempDir::new("chaos-split");
    let split = [
        "--events",
        "1",
        "--faults",
        "split-halves",
        "--hold-ms",
        "5000",
    ];
    let (code, s) = chaos("bully", 8, &dir.path().join("bully"), &split);
    assert_eq!(code, 0, "an expected split does not fail the campaign: {s}");
    let violations = s["violations"].as_array().unwrap();
    let agreement = violations
        .iter()
        .find(|v| v["invariant"] == "agreement")
        .unwrap_or_else(|| panic!("no split reported: {s}"));
    assert_eq!(agreement["expected"], true, "{agreement}");
    assert!(
        agreement["headline"]
            .as_str()
            .unwrap()
            .starts_with("two coordinators: "),
        "{agreement}"
    );
    assert_eq!(s["unexpected"], 0);

    let (code, s) = chaos("invitation", 9, &dir.path().join("invitation"), &split);
    assert_eq!(code, 0, "{s}");
    assert_eq!(s["violations"], Value::Array(Vec::new()), "{s}");
}

/// The state letter of `/proc/PID/stat` (R, S, T, Z…), `None` once the process is gone.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Whether the process still exists (a zombie does not count).
fn alive(pid: u32) -> bool {
    proc_state(pid).is_some_and(|s| s != 'Z')
}

/// Waits (at most `within`) until `done` holds.
fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

/// Reads the campaign's stderr until it says it paused a node.
fn wait_for_pause(stderr: ChildStderr) {
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("the campaign's stderr");
        if line.contains("SIGSTOP") {
            return;
        }
    }
    panic!("the campaign ended without pausing a node");
}

/// The one process of `pids` that gets stopped (the campaign logs the pause just before it
/// sends SIGSTOP).
fn stopped(pids: &[u32]) -> Vec<u32> {
    let stopped = || -> Vec<u32> {
        pids.iter()
            .copied()
            .filter(|&p| proc_state(p) == Some('T'))
            .collect()
    };
    assert!(
        eventually(Duration::from_secs(3), || stopped().len() == 1),
        "not one node stopped: {:?}",
        pids.iter().map(|&p| (p, proc_state(p))).collect::<Vec<_>>()
    );
    stopped()
}

/// The children of `parent` whose command line is an `election node`.
fn node_children(parent: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1));
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(&parent.to_string()) && cmdline.split(|&b| b == 0).nth(1) == Some(b"node") {
            pids.push(pid);
        }
    }
    pids
}

/// A cluster started the way a user would: a logserver and `election run` in a directory of
/// their own, with relative paths (so a restart must keep the working directory).
struct UserCluster {
    dir: TempDir,
    logserver: Child,
    logserver_addr: SocketAddr,
    run: Child,
    addrs: Vec<SocketAddr>,
}

impl UserCluster {
    fn start(algorithm: &str) -> UserCluster {
        let dir = TempDir::new("chaos-attach");
        let ports = free_udp_addrs(4);
        let (logserver_addr, addrs) = (ports[0], ports[1..].to_vec());
        let lines: String = addrs.iter().map(|a| format!("{a}\n")).collect();
        std::fs::write(dir.path().join("server_config"), lines).unwrap();
        let user = |args: &[&str]| {
            let mut command = Command::new(election_bin());
            command
                .args(args)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            command
        };
        assert!(user(&["keygen", "cluster.key"]).status().unwrap().success());
        let port = logserver_addr.port().to_string();
        let logserver = user(&["logserver", "--port", &port, "--data-dir", "logs"])
            .spawn()
            .unwrap();
        let report_to = logserver_addr.to_string();
        let run = user(&[
            "run",
            algorithm,
            "--config",
            "server_config",
            "--key-file",
            "cluster.key",
            "--logserver",
            &report_to,
            "--heartbeat-ms",
            "100",
            "--timeout-ms",
            "500",
            "--report-ms",
            "100",
            "--state-dir",
            "state",
        ])
        .spawn()
        .unwrap();
        assert!(
            eventually(Duration::from_secs(10), || std::net::TcpStream::connect(
                logserver_addr
            )
            .is_ok()),
            "the logserver never listened"
        );
        UserCluster {
            dir,
            logserver,
            logserver_addr,
            run,
            addrs,
        }
    }

    /// Whether the logserver shows every node behind one leader.
    fn agreed(&self) -> bool {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let views = runtime.block_on(nodes_of(self.logserver_addr));
        agreed_leader(&views, &self.addrs).is_some()
    }

    /// `election chaos ALG --logserver … --config …` with `extra` flags, not waited for.
    fn chaos(&self, algorithm: &str, out: &str, extra: &[&str]) -> Command {
        let mut command = Command::new(election_bin());
        command
            .args(["chaos", algorithm, "--json", "--out", out])
            .arg("--logserver")
            .arg(self.logserver_addr.to_string())
            .arg("--config")
            .arg(self.dir.path().join("server_config"))
            .args(extra)
            .current_dir(self.dir.path());
        command
    }

    /// The pid of each node's process now: the owner of its UDP port, from the log's newest
    /// report (which carries the pid).
    fn pids(&self) -> Vec<u32> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let views = runtime.block_on(nodes_of(self.logserver_addr));
        self.addrs
            .iter()
            .map(|a| {
                views
                    .iter()
                    .find(|v| v.addr == a.to_string())
                    .unwrap_or_else(|| panic!("{a} is not in the node table"))
                    .pid
            })
            .collect()
    }
}

impl Drop for UserCluster {
    fn drop(&mut self) {
        // Nodes the campaign started again are nobody's children: stopped by pid.
        for pid in self.pids_quietly() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGCONT);
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        let _ = kill(Pid::from_raw(self.run.id() as i32), Signal::SIGTERM);
        let _ = self.run.wait();
        let _ = self.logserver.kill();
        let _ = self.logserver.wait();
    }
}

impl UserCluster {
    fn pids_quietly(&self) -> Vec<u32> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.pids())).unwrap_or_default()
    }
}

#[test]
fn attached_to_a_running_cluster_a_campaign_leaves_it_running_even_when_killed_in_a_pause() {
    let cluster = UserCluster::start("bully");
    assert!(
        eventually(Duration::from_secs(15), || cluster.agreed()),
        "the user's cluster never elected a leader"
    );
    let before = cluster.pids();

    let run = cluster
        .chaos(
            "bully",
            "out",
            &[
                "--events",
                "3",
                "--faults",
                "kill,leave,pause",
                "--seed",
                "2",
            ],
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let s: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}): {stdout}\nstderr {}",
            String::from_utf8_lossy(&run.stderr)
        )
    });
    assert_eq!(run.status.code(), Some(0), "{s}");
    assert_eq!(s["unexpected"], 0, "{s}");
    assert_eq!(
        (s["events_run"].clone(), s["heals"].clone()),
        (3.into(), 3.into()),
        "{s}"
    );
    assert_eq!(
        s["reconvergence"]["count"], 3,
        "every heal reconverged: {s}"
    );
    // The window only: a log of the campaign's own seconds, every node in it.
    let log = std::fs::read_to_string(cluster.dir.path().join("out/log.jsonl")).unwrap();
    assert_eq!(log.lines().count() as u64, s["reports"].as_u64().unwrap());
    let kinds = event_kinds(&cluster.dir.path().join("out"));
    // The three found running, and at least one started again (seed 2 kills or removes one).
    assert!(
        kinds.iter().filter(|k| *k == "up").count() > 3,
        "no node was restarted: {kinds:?}"
    );

    // Left running: every node agrees again, each in a live process; a restarted one is
    // detached (adopted away from the campaign) and kept the user's working directory.
    assert!(eventually(Duration::from_secs(10), || cluster.agreed()));
    let after = cluster.pids();
    for (addr, pid) in cluster.addrs.iter().zip(&after) {
        assert!(alive(*pid), "{addr} (pid {pid}) is not running");
        assert!(UdpSocket::bind(addr).is_err(), "{addr} is not bound");
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
        assert_eq!(cwd, cluster.dir.path(), "{addr}");
    }
    assert_ne!(before, after, "some node runs in a new process");

    // SIGKILL the campaign in the middle of a long pause: the paused node is continued.
    let mut chaos = cluster
        .chaos(
            "bully",
            "out-pause",
            &["--events", "1", "--faults", "pause", "--hold-ms", "20000"],
        )
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_pause(chaos.stderr.take().unwrap());
    let paused = stopped(&after);
    chaos.kill().unwrap();
    chaos.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(3), || matches!(
            proc_state(paused[0]),
            Some('R' | 'S')
        )),
        "the paused node was left in state {:?}",
        proc_state(paused[0])
    );
}

#[test]
fn a_campaign_killed_during_a_pause_leaves_no_node_behind() {
    let base = base_port(20, 3).to_string();
    let mut chaos = Command::new(election_bin())
        .args(["chaos", "bully", "--nodes", "3", "--base-port", &base])
        .args(["--events", "1", "--faults", "pause", "--hold-ms", "20000"])
        .arg("--out")
        .arg(TempDir::new("chaos-killed").path().join("out"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_pause(chaos.stderr.take().unwrap());
    let nodes = node_children(chaos.id());
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    stopped(&nodes);
    chaos.kill().unwrap();
    chaos.wait().unwrap();
    // Their parent gone, the nodes leave (PR_SET_PDEATHSIG), the paused one too once the
    // watchdog continues it: none is left stopped or running as an orphan.
    assert!(
        eventually(Duration::from_secs(8), || nodes.iter().all(|&p| !alive(p))),
        "left behind: {:?}",
        nodes
            .iter()
            .map(|&p| (p, proc_state(p)))
            .collect::<Vec<_>>()
    );
}

/// The campaign's stderr lines as they come (a reader thread keeps the pipe drained, so the
/// campaign never writes into a closed pipe).
fn stderr_lines(stderr: ChildStderr) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits (at most 30 s) for a line containing `needle`.
fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("the campaign never said {needle:?}");
}

#[test]
fn attached_a_campaign_stopped_by_a_signal_mid_fault_heals_before_it_exits() {
    let cluster = UserCluster::start("bully");
    assert!(
        eventually(Duration::from_secs(15), || cluster.agreed()),
        "the user's cluster never elected a leader"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let blocks = || runtime.block_on(election_tests::blocks_of(cluster.logserver_addr));
    let interrupted = |faults: &str, says: &str, signal: Signal, before_signal: &dyn Fn()| {
        let mut chaos = cluster
            .chaos(
                "bully",
                &format!("out-{faults}"),
                &["--events", "1", "--faults", faults, "--hold-ms", "20000"],
            )
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let lines = stderr_lines(chaos.stderr.take().unwrap());
        wait_for_line(&lines, says);
        before_signal();
        kill(Pid::from_raw(chaos.id() as i32), signal).unwrap();
        let status = chaos.wait().unwrap();
        // Cut short: no verdict, so not a success.
        assert!(!status.success(), "{faults}: {status}");
    };

    // SIGINT in the middle of a block: the campaign lifts it before it exits.
    interrupted("block-two-way", "block", Signal::SIGINT, &|| {
        assert!(
            eventually(Duration::from_secs(3), || !blocks().is_empty()),
            "the campaign never blocked the link"
        );
    });
    assert_eq!(blocks(), Vec::new(), "blocks left in place");

    // SIGTERM while a node is still leaving: the campaign waits it out and starts it again.
    interrupted("leave", "leaves (SIGTERM)", Signal::SIGTERM, &|| {});
    for addr in &cluster.addrs {
        assert!(
            eventually(Duration::from_secs(5), || UdpSocket::bind(addr).is_err()),
            "{addr} was left down"
        );
    }
    assert!(
        eventually(Duration::from_secs(10), || cluster.agreed()),
        "the cluster did not agree again"
    );
}

/// The kinds of the driver's log entries in a results folder's `events.json`, in order.
fn event_kinds(out: &std::path::Path) -> Vec<String> {
    let events: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("events.json")).unwrap()).unwrap();
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}
