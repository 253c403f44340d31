//! The campaign's helper processes, which must do their job even if the campaign is killed:
//! the launcher that starts an attached cluster's node again in a session of its own (so it
//! outlives the campaign, as the cluster was found), and the watchdog that continues a paused
//! node at the pause's end or as soon as the campaign is gone, whichever comes first (a
//! SIGSTOPped process would otherwise stay stopped: even the SIGTERM its parent's death sends
//! waits for a SIGCONT).
//!
//! Both are the `election` binary itself, in a role named by an environment variable and read
//! at start ([`child_role`]).

use std::io::{Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::procfs::{self, Launch};

/// Set on the launcher (its stdin carries the [`Launch`] as JSON).
const LAUNCH_ENV: &str = "ELECTION_CHAOS_LAUNCH";
/// Set on a watchdog to `PID:START_TIME:MS` (continue that process after MS milliseconds).
const RESUME_ENV: &str = "ELECTION_CHAOS_RESUME";

/// Runs the role this process was started in, if any, and returns its exit code.
pub fn child_role() -> Option<ExitCode> {
    if std::env::var_os(LAUNCH_ENV).is_some() {
        return Some(match launch_here() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        });
    }
    let spec = std::env::var(RESUME_ENV).ok()?;
    let mut parts = spec.split(':').map(str::parse::<u64>);
    let (Some(Ok(pid)), Some(Ok(started)), Some(Ok(ms))) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Some(ExitCode::FAILURE);
    };
    // The campaign holds the other end of stdin: it closes when the campaign exits, however.
    let (gone_tx, gone) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = gone_tx.send(());
    });
    let _ = gone.recv_timeout(Duration::from_millis(ms));
    let Ok(pid) = u32::try_from(pid) else {
        return Some(ExitCode::FAILURE);
    };
    if !procfs::gone(pid, started) {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGCONT);
    }
    Some(ExitCode::SUCCESS)
}

/// The launcher: a new session, the node started in it, its pid printed, and exit, so the
/// node is nobody's child here (init adopts it) and no terminal hang-up or group signal of
/// the campaign reaches it.
fn launch_here() -> anyhow::Result<()> {
    nix::unistd::setsid().context("setsid")?;
    let mut spec = String::new();
    std::io::stdin().read_to_string(&mut spec)?;
    let launch: Launch = serde_json::from_str(&spec).context("the launch spec")?;
    let output = |file: &Option<std::path::PathBuf>| -> anyhow::Result<Stdio> {
        Ok(match file {
            Some(path) => std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))?
                .into(),
            None => Stdio::null(),
        })
    };
    let Some((argv0, args)) = launch.argv.split_first() else {
        bail!("empty command line");
    };
    let child = Command::new(&launch.program)
        .arg0(argv0)
        .args(args)
        .current_dir(&launch.cwd)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(output(&launch.stdout)?)
        .stderr(output(&launch.stderr)?)
        .spawn()
        .with_context(|| format!("cannot start {}", launch.program.display()))?;
    println!("{}", child.id());
    Ok(())
}

/// Starts `launch` detached (see [`launch_here`]); returns its pid.
pub fn launch(launch: &Launch) -> anyhow::Result<u32> {
    let mut launcher = Command::new(std::env::current_exe()?)
        .env(LAUNCH_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start the launcher")?;
    let spec = serde_json::to_vec(launch)?;
    if let Some(mut stdin) = launcher.stdin.take() {
        stdin.write_all(&spec).context("the launcher's stdin")?;
    }
    let out = launcher.wait_with_output().context("the launcher")?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.trim().parse() {
        Ok(pid) if out.status.success() => Ok(pid),
        _ => bail!(
            "cannot restart {}: {}",
            launch.program.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

/// A watchdog that continues a paused process at the pause's end even if the campaign is
/// gone by then, and at once if it goes earlier. Dropping it (the pause healed) kills it, so
/// it never continues a later pause of the same node.
pub struct Watchdog(Child);

impl Watchdog {
    /// Starts a watchdog for the process `pid`, paused for `hold` from now (plus a margin, so
    /// the campaign's own SIGCONT comes first).
    pub fn start(pid: u32, hold: Duration) -> anyhow::Result<Watchdog> {
        let Some(started) = procfs::start_time(pid) else {
            bail!("process {pid} is gone");
        };
        let ms = (hold + Duration::from_secs(1)).as_millis();
        let child = Command::new(std::env::current_exe()?)
            .env(RESUME_ENV, format!("{pid}:{started}:{ms}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group: a Ctrl-C or a group kill aimed at the campaign spares it.
            .process_group(0)
            .spawn()
            .context("cannot start the pause watchdog")?;
        Ok(Watchdog(child))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
