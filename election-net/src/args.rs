//! Command-line arguments of `election node` and `election run`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::{Args, Parser};
use election_core::{Algorithm, ClusterConfig, MILLIS, Timing};

use crate::Error;
use crate::keys::Keyring;
use crate::transport::TransportKind;

/// Options shared by a single node and the process runner (which passes them on to every node).
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct NodeOptions {
    /// The cluster file: one ip:port per line, priority by line position (last line highest).
    #[arg(long, value_name = "FILE", default_value = "server_config")]
    pub config: PathBuf,
    /// The logserver's host:port to report to; without it the node reports nowhere (and no
    /// links are ever blocked).
    #[arg(long, value_name = "HOST:PORT")]
    pub logserver: Option<String>,
    /// Secret the logserver requires with reports (its --report-token), sent as
    /// `Authorization: Bearer TOKEN` (default: none; also read from ELECTION_REPORT_TOKEN).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "ELECTION_REPORT_TOKEN",
        hide_env_values = true
    )]
    pub report_token: Option<String>,
    /// Period of the algorithm's polls and heartbeats, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 250)]
    pub heartbeat_ms: u64,
    /// How long to wait for an answer before declaring a peer failed, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub timeout_ms: u64,
    /// How often to report to the logserver (and learn the blocked links), in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 300)]
    pub report_ms: u64,
    /// An algorithm option NAME=VALUE, repeatable (e.g. `-o sticky=true` for bully: a leader is
    /// not deposed by a higher node that comes back). Default: the algorithm's defaults; `--help`
    /// of `election sim run` lists each algorithm's options.
    #[arg(short = 'o', long = "option", value_name = "NAME=VALUE", value_parser = option_pair)]
    pub algorithm_options: Vec<(String, String)>,
    /// A name shared by the nodes of one cluster; datagrams of other clusters are dropped.
    #[arg(long, value_name = "NAME", default_value = "election")]
    pub cluster_id: String,
    /// Where to keep state that must survive a crash (such as the asynchronous Bully's
    /// incarnation). Default: an `election-state` directory under the system temp dir.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// A cluster key file (from `election keygen`); repeat it to hold several keys while
    /// rotating. Every datagram is signed with the first key and any key verifies. SIGHUP
    /// re-reads the files. Default: none, which only --insecure or an all-loopback cluster
    /// allows.
    #[arg(long = "key-file", value_name = "FILE")]
    pub key_files: Vec<PathBuf>,
    /// Run without a key although the cluster has non-loopback addresses: anyone on the network
    /// can then forge, replay and join (default: off, such a node refuses to start).
    #[arg(long)]
    pub insecure: bool,
    /// The largest membership table; joins beyond it are refused (default: 1024).
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_members: usize,
    /// How often a node re-announces its member table to one random member, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub announce_ms: u64,
    /// Also report every protocol message sent and received (kind, peer, the sender's message
    /// number) to the logserver, batched and rate-limited with the status reports, so its
    /// /timeline draws arrows and /api/shiviz has send and receive events (default: off, status
    /// changes and faults only).
    #[arg(long)]
    pub report_messages: bool,
    /// How envelopes travel: udp (datagrams; loss and reordering possible) or tcp (one
    /// length-framed connection per peer and direction: reliable and FIFO) (default: udp).
    #[arg(long, value_enum, default_value_t = TransportKind::Udp)]
    pub transport: TransportKind,
}

impl NodeOptions {
    /// The flags that reproduce these options on a child's command line.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--config".to_string(),
            self.config.display().to_string(),
            format!("--heartbeat-ms={}", self.heartbeat_ms),
            format!("--timeout-ms={}", self.timeout_ms),
            format!("--report-ms={}", self.report_ms),
            format!("--cluster-id={}", self.cluster_id),
        ];
        if let Some(logserver) = &self.logserver {
            args.push(format!("--logserver={logserver}"));
        }
        if let Some(token) = &self.report_token {
            args.push(format!("--report-token={token}"));
        }
        for (name, value) in &self.algorithm_options {
            args.push(format!("--option={name}={value}"));
        }
        if let Some(dir) = &self.state_dir {
            args.push("--state-dir".to_string());
            args.push(dir.display().to_string());
        }
        for file in &self.key_files {
            args.push("--key-file".to_string());
            args.push(file.display().to_string());
        }
        if self.insecure {
            args.push("--insecure".to_string());
        }
        if self.report_messages {
            args.push("--report-messages".to_string());
        }
        args.push(format!("--max-members={}", self.max_members));
        args.push(format!("--announce-ms={}", self.announce_ms));
        args.push(format!("--transport={}", self.transport));
        args
    }

    /// The keyring of `--key-file`; `None` without one.
    pub fn keyring(&self) -> Result<Option<Keyring>, Error> {
        if self.key_files.is_empty() {
            return Ok(None);
        }
        Ok(Some(Keyring::load(&self.key_files)?))
    }

    /// Reads and parses `--config`, naming the file in any error.
    pub fn cluster(&self) -> Result<ClusterConfig, Error> {
        let path = &self.config;
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadConfig {
            path: path.clone(),
            source,
        })?;
        ClusterConfig::parse(&text).map_err(|source| Error::Config {
            path: path.clone(),
            source,
        })
    }

    /// The algorithm timing, checked for zero values.
    pub fn timing(&self) -> Result<Timing, Error> {
        for (flag, value) in [
            ("--heartbeat-ms", self.heartbeat_ms),
            ("--timeout-ms", self.timeout_ms),
            ("--report-ms", self.report_ms),
            ("--announce-ms", self.announce_ms),
            ("--max-members", self.max_members as u64),
        ] {
            if value == 0 {
                return Err(Error::Flag {
                    flag,
                    problem: "must be at least 1".to_string(),
                });
            }
        }
        Ok(Timing {
            heartbeat: self.heartbeat_ms.saturating_mul(MILLIS),
            timeout: self.timeout_ms.saturating_mul(MILLIS),
        })
    }

    /// The report period.
    pub fn report_every(&self) -> Duration {
        Duration::from_millis(self.report_ms)
    }
}

/// A `NAME=VALUE` algorithm option.
fn option_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not NAME=VALUE")),
    }
}

/// The registry's algorithms as a positional value: clap lists them with their help and suggests
/// the nearest on a typo. A user's own binary replaces the accepted names (see
/// [`crate::run_node_with`]).
fn builtin_algorithm() -> impl TypedValueParser<Value = String> {
    clap::builder::EnumValueParser::<Algorithm>::new().map(|a| a.name().to_string())
}

/// `election node`: run one election node over UDP.
#[derive(Parser, Clone, Debug, PartialEq, Eq)]
pub struct NodeArgs {
    /// The algorithm.
    #[arg(value_parser = builtin_algorithm())]
    pub algorithm: String,
    /// This node's ip:port; it must be a line of --config unless --join is given.
    pub addr: SocketAddr,
    /// Join a running cluster through this member instead of reading --config; the new node
    /// gets the highest priority.
    #[arg(long, value_name = "IP:PORT")]
    pub join: Option<SocketAddr>,
    /// Options shared with `election run`.
    #[command(flatten)]
    pub options: NodeOptions,
}

impl NodeArgs {
    /// The command line (after the program name) that runs this node.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "node".to_string(),
            self.algorithm.to_string(),
            self.addr.to_string(),
        ];
        if let Some(member) = self.join {
            args.push(format!("--join={member}"));
        }
        args.extend(self.options.to_args());
        args
    }
}

/// `election run`: start every node of the config file that lives on this host.
#[derive(Parser, Clone, Debug, PartialEq, Eq)]
pub struct RunArgs {
    /// The algorithm.
    #[arg(value_parser = builtin_algorithm())]
    pub algorithm: String,
    /// Options passed on to every node.
    #[command(flatten)]
    pub options: NodeOptions,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_args_round_trip_through_to_args() {
        let args = NodeArgs::try_parse_from([
            "node",
            "async-bully",
            "127.0.0.1:9000",
            "--join",
            "127.0.0.1:9001",
            "--logserver",
            "localhost:4711",
            "-o",
            "sticky=true",
            "--heartbeat-ms",
            "20",
            "--state-dir",
            "/tmp/x",
            "--key-file=/k1",
            "--key-file=/k2",
            "--insecure",
            "--max-members=7",
            "--transport=tcp",
        ])
        .unwrap();
        assert_eq!(args.options.heartbeat_ms, 20);
        assert_eq!(args.options.timeout_ms, 1000);
        assert_eq!(args.options.key_files.len(), 2);
        let again = NodeArgs::try_parse_from(args.to_args()).unwrap();
        assert_eq!(again, args);
    }

    #[test]
    fn bad_flags_are_rejected() {
        assert!(NodeArgs::try_parse_from(["node", "paxos", "127.0.0.1:9000"]).is_err());
        assert!(NodeArgs::try_parse_from(["node", "bully", "localhost"]).is_err());
        let zero =
            NodeArgs::try_parse_from(["node", "bully", "127.0.0.1:1", "--timeout-ms=0"]).unwrap();
        let err = zero.options.timing().unwrap_err().to_string();
        assert!(err.contains("--timeout-ms"), "{err}");
    }
}
