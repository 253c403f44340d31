//! What the campaign reads about processes from `/proc` (Linux): who owns a UDP socket, a
//! process's command line, directory, environment and output files (to start it again as it
//! was started), and its start time (so a recycled pid is never taken for the process).

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::ffi::OsStringExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

/// A process as it can be started again.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Launch {
    /// The executable (`/proc/PID/exe`; a replaced binary's path is run anew).
    pub program: PathBuf,
    /// `argv`, with `argv[0]` as the process saw it.
    pub argv: Vec<OsString>,
    /// Its working directory (relative paths in `argv`, such as a state dir, resolve there).
    pub cwd: PathBuf,
    /// Its whole environment.
    pub env: Vec<(OsString, OsString)>,
    /// The regular file its stdout went to, reopened for appending; otherwise /dev/null.
    pub stdout: Option<PathBuf>,
    /// The same for stderr.
    pub stderr: Option<PathBuf>,
}

/// The pid of the process that owns the UDP socket bound to `addr` (or to the unspecified
/// address on its port), among the processes this user may inspect.
pub fn udp_owner(addr: SocketAddr) -> anyhow::Result<Option<u32>> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let text = match std::fs::read_to_string(table) {
            Ok(text) => text,
            // No IPv6 on this machine.
            Err(_) if table.ends_with('6') => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {table}")),
        };
        inodes.extend(
            text.lines()
                .skip(1)
                .filter_map(udp_line)
                .filter(|(local, _)| {
                    *local == addr || (local.port() == addr.port() && local.ip().is_unspecified())
                })
                .map(|(_, inode)| inode),
        );
    }
    if inodes.is_empty() {
        return Ok(None);
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for pid in pids()? {
        // Processes of other users cannot be read: skipped.
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path())
                && wanted.iter().any(|w| target.as_os_str() == w.as_str())
            {
                return Ok(Some(pid));
            }
        }
    }
    Ok(None)
}

/// One line of `/proc/net/udp(6)`: the local address and the socket's inode.
fn udp_line(line: &str) -> Option<(SocketAddr, u64)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (ip, port) = fields.get(1)?.split_once(':')?;
    let inode: u64 = fields.get(9)?.parse().ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    // The address is printed as 32-bit words in the kernel's byte order.
    let mut bytes = Vec::new();
    for k in (0..ip.len()).step_by(8) {
        let word = u32::from_str_radix(ip.get(k..k + 8)?, 16).ok()?;
        bytes.extend(word.to_ne_bytes());
    }
    let ip = match bytes.len() {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => return None,
    };
    (inode != 0).then_some((SocketAddr::new(ip, port), inode))
}

fn pids() -> anyhow::Result<Vec<u32>> {
    let dir = std::fs::read_dir("/proc").context("cannot read /proc")?;
    Ok(dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect())
}

/// Fields of `/proc/PID/stat` after the command name (which may hold spaces and parentheses).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// The process's start time (clock ticks since boot), which tells it from a later process
/// with the same pid; `None` when there is no such process.
pub fn start_time(pid: u32) -> Option<u64> {
    // Field 22 of stat; the fields after the name start at field 3.
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// Whether the process started at `started` is gone (exited, perhaps not yet reaped by its
/// parent: a zombie holds no socket).
pub fn gone(pid: u32, started: u64) -> bool {
    match stat_fields(pid) {
        None => true,
        Some(f) => f.first().is_some_and(|s| s == "Z") || start_time(pid) != Some(started),
    }
}

/// The process as it can be started again.
pub fn launch_of(pid: u32) -> anyhow::Result<Launch> {
    let dir = PathBuf::from(format!("/proc/{pid}"));
    let read = |name: &str| {
        std::fs::read(dir.join(name))
            .with_context(|| format!("cannot read /proc/{pid}/{name} (is it this user's?)"))
    };
    let link = |name: &str| {
        std::fs::read_link(dir.join(name))
            .with_context(|| format!("cannot read /proc/{pid}/{name} (is it this user's?)"))
    };
    let argv: Vec<OsString> = split_nul(&read("cmdline")?);
    if argv.is_empty() {
        bail!("process {pid} has no command line");
    }
    let env = split_nul(&read("environ")?)
        .into_iter()
        .filter_map(|var| {
            let bytes = var.into_vec();
            let eq = bytes.iter().position(|&b| b == b'=')?;
            Some((
                OsString::from_vec(bytes[..eq].to_vec()),
                OsString::from_vec(bytes[eq + 1..].to_vec()),
            ))
        })
        .collect();
    let output = |fd: &str| {
        link(fd)
            .ok()
            .filter(|p| p.is_absolute() && p.is_file())
            .filter(|p| !p.as_os_str().as_encoded_bytes().ends_with(b" (deleted)"))
    };
    Ok(Launch {
        program: undeleted(&link("exe")?),
        argv,
        cwd: link("cwd")?,
        env,
        stdout: output("fd/1"),
        stderr: output("fd/2"),
    })
}

/// The path of a replaced executable, without the kernel's " (deleted)" mark.
fn undeleted(exe: &Path) -> PathBuf {
    let bytes = exe.as_os_str().as_encoded_bytes();
    match bytes.strip_suffix(b" (deleted)") {
        Some(stripped) => PathBuf::from(OsString::from_vec(stripped.to_vec())),
        None => exe.to_path_buf(),
    }
}

fn split_nul(bytes: &[u8]) -> Vec<OsString> {
    bytes
        .split(|&b| b == 0)
        .filter(|part| !part.is_empty())
        .map(|part| OsString::from_vec(part.to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_udp_table_lines() {
        let v4 = "  12: 0100007F:2328 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 4242 2 0000000000000000 0";
        assert_eq!(
            udp_line(v4),
            Some(("127.0.0.1:9000".parse().unwrap(), 4242))
        );
        let v6 = "  3: 00000000000000000000000001000000:2329 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 77 2 0000000000000000 0";
        assert_eq!(udp_line(v6), Some(("[::1]:9001".parse().unwrap(), 77)));
        assert_eq!(udp_line("garbage"), None);
    }

    /// This test's own socket is found, and its own process described.
    #[test]
    fn finds_the_owner_of_a_socket_and_its_command_line() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        assert_eq!(udp_owner(addr).unwrap(), Some(std::process::id()));
        drop(socket);
        assert_eq!(udp_owner(addr).unwrap(), None);
        let me = launch_of(std::process::id()).unwrap();
        assert_eq!(me.program, std::env::current_exe().unwrap());
        assert_eq!(me.cwd, std::env::current_dir().unwrap());
        assert_eq!(me.argv.len(), std::env::args_os().count());
        let started = start_time(std::process::id()).unwrap();
        assert!(!gone(std::process::id(), started));
        assert!(gone(std::process::id(), started + 1));
    }
}
