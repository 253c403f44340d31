//! The process runner: start the nodes of this host as child processes, label their output,
//! report deaths, and stop them all cleanly.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use election_core::ClusterConfig;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

use crate::{Error, NodeArgs, RunArgs};

/// How long children get between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// A child that exited.
#[derive(Debug)]
pub struct Exit {
    /// The label it was started with.
    pub label: String,
    /// Its process id.
    pub pid: u32,
    /// How it ended.
    pub status: std::io::Result<ExitStatus>,
}

/// Starts and supervises child processes of one program, each with a label (a node address)
/// that prefixes every line it prints.
///
/// Children are killed if the supervisor is dropped while they run; [`Supervisor::shutdown`] stops
/// them gracefully instead.
pub struct Supervisor {
    program: PathBuf,
    env: Vec<(String, String)>,
    running: BTreeMap<u32, String>,
    exits_tx: mpsc::UnboundedSender<Exit>,
    exits: mpsc::UnboundedReceiver<Exit>,
}

impl Supervisor {
    /// A supervisor of `program` (for nodes: the `election` binary).
    pub fn new(program: PathBuf) -> Self {
        let (exits_tx, exits) = mpsc::unbounded_channel();
        Supervisor {
            program,
            env: Vec::new(),
            running: BTreeMap::new(),
            exits_tx,
            exits,
        }
    }

    /// A supervisor that re-executes the current program.
    pub fn current_exe() -> Result<Self, Error> {
        let program = std::env::current_exe().map_err(|source| Error::Io {
            what: "cannot find the current executable",
            source,
        })?;
        Ok(Supervisor::new(program))
    }

    /// Sets an environment variable for every child started from now on.
    pub fn env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Starts `program args…`; returns the child's pid.
    pub fn spawn(&mut self, label: &str, args: &[String]) -> Result<u32, Error> {
        let mut child = tokio::process::Command::new(&self.program)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| Error::Spawn {
                program: self.program.clone(),
                source,
            })?;
        let pid = child.id().unwrap_or_default();
        if let Some(out) = child.stdout.take() {
            tokio::spawn(relay(label.to_string(), out, false));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(relay(label.to_string(), err, true));
        }
        let exits = self.exits_tx.clone();
        let label = label.to_string();
        self.running.insert(pid, label.clone());
        tokio::spawn(async move {
            let status = child.wait().await;
            let _ = exits.send(Exit { label, pid, status });
        });
        Ok(pid)
    }

    /// The running children as (label, pid).
    pub fn children(&self) -> Vec<(String, u32)> {
        self.running
            .iter()
            .map(|(pid, label)| (label.clone(), *pid))
            .collect()
    }

    /// Waits for the next child to exit; `None` when none is running.
    pub async fn wait_any(&mut self) -> Option<Exit> {
        if self.running.is_empty() {
            return None;
        }
        let exit = self.exits.recv().await?;
        self.running.remove(&exit.pid);
        Some(exit)
    }

    /// Sends SIGTERM to every child, waits up to `grace` for them to exit, then SIGKILLs the rest
    /// and waits for them. Returns every exit seen.
    pub async fn shutdown(&mut self, grace: Duration) -> Vec<Exit> {
        let mut exits = Vec::new();
        // Forget children already reaped, so a recycled pid is never signalled.
        while let Ok(exit) = self.exits.try_recv() {
            self.running.remove(&exit.pid);
            exits.push(exit);
        }
        self.signal_all(Signal::SIGTERM);
        let deadline = tokio::time::Instant::now() + grace;
        while !self.running.is_empty() {
            match tokio::time::timeout_at(deadline, self.wait_any()).await {
                Ok(Some(exit)) => exits.push(exit),
                Ok(None) => break,
                Err(_) => {
                    self.signal_all(Signal::SIGKILL);
                    while let Some(exit) = self.wait_any().await {
                        exits.push(exit);
                    }
                }
            }
        }
        exits
    }

    fn signal_all(&self, signal: Signal) {
        for (pid, label) in &self.running {
            if let Err(e) = kill(Pid::from_raw(*pid as i32), signal) {
                tracing::debug!(%label, pid, error = %e, "cannot signal child");
            }
        }
    }
}

/// Copies a child's output line by line, prefixed with its label.
async fn relay(label: String, stream: impl AsyncRead + Unpin, to_stderr: bool) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if to_stderr {
            eprintln!("[{label}] {line}");
        } else {
            println!("[{label}] {line}");
        }
    }
}

/// The addresses of `config` whose IP belongs to this host (a UDP socket can bind to it).
pub fn local_nodes(config: &ClusterConfig) -> Vec<SocketAddr> {
    config
        .addrs()
        .iter()
        .copied()
        .filter(|a| UdpSocket::bind(SocketAddr::new(a.ip(), 0)).is_ok())
        .collect()
}

/// `election run`: starts one `election node` per config line of this host and supervises them
/// until SIGINT/SIGTERM (then stops them: SIGTERM, and SIGKILL after a grace period) or until all
/// of them have exited.
pub async fn run_processes(args: RunArgs) -> Result<(), Error> {
    let config = args.options.cluster()?;
    args.options.timing()?;
    // A bad key file is reported once, before any child starts.
    args.options.keyring()?;
    let local = local_nodes(&config);
    if local.is_empty() {
        return Err(Error::NoLocalNodes {
            path: args.options.config.clone(),
        });
    }
    let stop = crate::stop_signal()?;
    tokio::pin!(stop);

    let mut supervisor = Supervisor::current_exe()?;
    for addr in &local {
        let node = NodeArgs {
            algorithm: args.algorithm.clone(),
            addr: *addr,
            join: None,
            options: args.options.clone(),
        };
        let pid = supervisor.spawn(&addr.to_string(), &node.to_args())?;
        tracing::info!(%addr, pid, "node started");
    }
    let mut failed = 0;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            exit = supervisor.wait_any() => match exit {
                Some(Exit { label, pid, status }) => {
                    let ok = matches!(&status, Ok(s) if s.success());
                    if !ok {
                        failed += 1;
                    }
                    tracing::warn!(node = %label, pid, ?status, "node exited");
                }
                None if failed > 0 => return Err(Error::ChildrenFailed { failed }),
                None => return Ok(()),
            },
        }
    }
    tracing::info!("stopping nodes");
    for exit in supervisor.shutdown(GRACE).await {
        tracing::info!(node = %exit.label, pid = exit.pid, status = ?exit.status, "node stopped");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn sh(script: &str) -> Vec<String> {
        vec!["-c".to_string(), script.to_string()]
    }

    #[tokio::test]
    async fn reports_exits_and_escalates_to_sigkill() {
        let mut supervisor = Supervisor::new(PathBuf::from("/bin/sh"));
        let quitter = supervisor.spawn("quitter", &sh("exit 3")).unwrap();
        let polite = supervisor.spawn("polite", &sh("exec sleep 30")).unwrap();
        // An ignored signal stays ignored across exec, so this child survives SIGTERM once it has
        // created the marker file.
        let marker = std::env::temp_dir().join(format!("election-runner-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        let script = format!("trap '' TERM; : > '{}'; exec sleep 30", marker.display());
        let stubborn = supervisor.spawn("stubborn", &sh(&script)).unwrap();
        assert_eq!(supervisor.children().len(), 3);

        let exit = supervisor.wait_any().await.unwrap();
        assert_eq!((exit.label.as_str(), exit.pid), ("quitter", quitter));
        assert_eq!(exit.status.unwrap().code(), Some(3));

        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !marker.exists() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the stubborn child never got ready"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let started = tokio::time::Instant::now();
        let exits = supervisor.shutdown(Duration::from_millis(300)).await;
        assert!(started.elapsed() < Duration::from_secs(10));
        let signal_of = |pid| {
            let exit = exits.iter().find(|e| e.pid == pid).unwrap();
            exit.status.as_ref().unwrap().signal()
        };
        assert_eq!(signal_of(polite), Some(Signal::SIGTERM as i32));
        assert_eq!(signal_of(stubborn), Some(Signal::SIGKILL as i32));
        assert!(supervisor.children().is_empty());
        assert!(supervisor.wait_any().await.is_none());
        std::fs::remove_file(&marker).unwrap();
    }

    #[test]
    fn only_this_hosts_addresses_are_local() {
        let config =
            ClusterConfig::parse("127.0.0.1:9000\n192.0.2.1:9000\n127.0.0.1:9001\n").unwrap();
        let local: Vec<String> = local_nodes(&config).iter().map(|a| a.to_string()).collect();
        assert_eq!(local, ["127.0.0.1:9000", "127.0.0.1:9001"]);
    }
}
