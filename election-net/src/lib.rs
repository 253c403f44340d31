//! Real election nodes: the election-core state machines over UDP.
//!
//! - [`run_node`] runs one node of a built-in algorithm (`election node`), [`run_node_with`] one
//!   of any [`election_core::Protocol`] (a user's own, see [`for_protocol`]): a UDP socket or TCP
//!   connections ([`transport`]), an authenticated, replay-proof envelope ([`wire`], [`keys`],
//!   [`replay`]), timers on tokio time, the membership layer of `election_core::membership`
//!   (joins, announcements, graceful leaves), and a reporter that sends status changes,
//!   heartbeats and drop counters to the logserver and learns the blocked links from its
//!   answers.
//! - [`run_processes`] is the process runner (`election run`): it starts every node of the
//!   config file that lives on this host, using a [`Supervisor`].

mod args;
pub mod keys;
mod node;
pub mod replay;
mod reporter;
mod runner;
#[cfg(test)]
mod testing;
mod timers;
pub mod transport;
pub mod wire;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

pub use args::{NodeArgs, NodeOptions, RunArgs};
pub use node::{run_node, run_node_with};
pub use runner::{Exit, Supervisor, local_nodes, run_processes};
pub use transport::TransportKind;

/// Adapts the `node` command line ([`NodeArgs`]'s clap command) to protocol `P` for a user's own
/// binary, which then runs the parsed arguments with [`run_node_with`]: the `ALGORITHM`
/// argument accepts only `P::NAME`.
pub fn for_protocol<P: election_core::Protocol>(command: clap::Command) -> clap::Command {
    command.mut_arg("algorithm", |a| a.value_parser([P::NAME]))
}

/// A future that resolves at the first SIGINT or SIGTERM. The handlers are installed before
/// this returns, so a signal that arrives before the future is first polled is not lost.
pub fn stop_signal() -> Result<impl Future<Output = ()>, Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let install = |kind| {
        signal(kind).map_err(|source| Error::Io {
            what: "cannot install signal handler",
            source,
        })
    };
    let mut term = install(SignalKind::terminate())?;
    let mut int = install(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// Everything that can stop a node or the process runner.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The config file does not parse.
    #[error("config file {path}: {source}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line.
        source: election_core::ClusterConfigError,
    },
    /// A flag has a bad value.
    #[error("{flag}: {problem}")]
    Flag {
        /// The flag, e.g. `--timeout-ms`.
        flag: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The node's address is not a line of the config file.
    #[error("{addr} is not a line of {path}; add it there or join with --join <member ip:port>")]
    NotInConfig {
        /// The node's address.
        addr: SocketAddr,
        /// The config file.
        path: PathBuf,
    },
    /// The node's socket cannot be opened.
    #[error("cannot bind to {addr}: {source}")]
    Bind {
        /// The node's address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The join through `--join` failed.
    #[error("--join {member}: {source}")]
    Join {
        /// The member asked.
        member: SocketAddr,
        /// Why.
        source: election_core::membership::JoinError,
    },
    /// The member table cannot be built.
    #[error("{0}")]
    Members(#[from] election_core::membership::ViewError),
    /// A key file cannot be used.
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    /// No key, and the cluster is not all on loopback.
    #[error(
        "{addr} is not a loopback address and no --key-file is given: make a key with `election keygen FILE`, copy it to every node and pass --key-file FILE (or accept forged and replayed datagrams with --insecure)"
    )]
    Insecure {
        /// The first non-loopback address of the cluster.
        addr: SocketAddr,
    },
    /// The persisted state cannot be read or written.
    #[error("state file {path}: {source}")]
    State {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// No line of the config file has an IP address of this host.
    #[error("no line of {path} has an IP address of this host")]
    NoLocalNodes {
        /// The config file.
        path: PathBuf,
    },
    /// A node process cannot be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Every node process exited by itself and at least one failed.
    #[error("all node processes exited; {failed} of them failed")]
    ChildrenFailed {
        /// How many exited with a failure status.
        failed: usize,
    },
    /// Another I/O failure (socket, signals).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: io::Error,
    },
}
