//! The documents the logserver keeps (the same in every store) and the checks that turn a node's
//! report into them.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use election_core::Algorithm;
use election_core::State;
use election_core::report::{BlockedLink, NodeReport, ReportEvent};
use serde::{Deserialize, Serialize};

/// A node's current state: the latest report it sent, and when it arrived.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct NodeDoc {
    /// The node's `ip:port`.
    pub addr: String,
    /// The algorithm it runs.
    pub algorithm: String,
    /// Garcia-Molina state.
    pub state: State,
    /// The coordinator it follows.
    pub coordinator: Option<String>,
    /// Group or election id.
    pub group: Option<String>,
    /// Incarnation number, where the algorithm has one.
    pub incarnation: Option<u64>,
    /// The algorithm's own sub-state name.
    pub phase: String,
    /// The node's process id.
    pub pid: u32,
    /// How often the node promised to report.
    pub heartbeat_ms: u64,
    /// The node's clock at its last report (µs since it started).
    pub node_time_us: u64,
    /// Server time of the last report, in ms since the Unix epoch.
    pub last_seen: u64,
    /// Why the last report was sent.
    pub last_event: ReportEvent,
}

/// Silent for more than this many heartbeat periods means unreachable.
const SILENT_PERIODS: u64 = 3;

impl NodeDoc {
    /// Whether the node reported recently enough (within three heartbeats of `now_ms`) and has
    /// not left.
    pub fn reachable(&self, now_ms: u64) -> bool {
        self.last_event != ReportEvent::Left
            && now_ms.saturating_sub(self.last_seen)
                <= self.heartbeat_ms.saturating_mul(SILENT_PERIODS)
    }
}

/// A node as `GET /api/nodes` shows it: its document plus whether it is reachable now.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct NodeView {
    /// The stored state.
    #[serde(flatten)]
    pub node: NodeDoc,
    /// False when the node has been silent for more than three heartbeats or has left.
    pub reachable: bool,
}

/// One entry of the activity log: a report as it arrived, numbered in arrival order.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LogEntry {
    /// Position in the log, from 0, never reused.
    pub seq: u64,
    /// Server time of arrival, in ms since the Unix epoch.
    pub server_time_ms: u64,
    /// The reporting node's `ip:port`.
    pub node: String,
    /// The algorithm it runs.
    pub algorithm: String,
    /// Why the report was sent.
    pub event: ReportEvent,
    /// Garcia-Molina state.
    pub state: State,
    /// The coordinator it follows.
    pub coordinator: Option<String>,
    /// Group or election id.
    pub group: Option<String>,
    /// Incarnation number, where the algorithm has one.
    pub incarnation: Option<u64>,
    /// The algorithm's own sub-state name.
    pub phase: String,
    /// The node's clock when it sent the report (µs since it started).
    pub node_time_us: u64,
    /// The node's process id.
    pub pid: u32,
}

impl LogEntry {
    /// The log entry for a checked report.
    pub(crate) fn new(seq: u64, server_time_ms: u64, r: &NodeReport) -> LogEntry {
        LogEntry {
            seq,
            server_time_ms,
            node: r.addr.clone(),
            algorithm: r.algorithm.clone(),
            event: r.event,
            state: r.state,
            coordinator: r.coordinator.clone(),
            group: r.group.clone(),
            incarnation: r.incarnation,
            phase: r.phase.clone(),
            node_time_us: r.node_time_us,
            pid: r.pid,
        }
    }

    /// The node document this entry leaves behind.
    pub(crate) fn node_doc(&self, heartbeat_ms: u64) -> NodeDoc {
        NodeDoc {
            addr: self.node.clone(),
            algorithm: self.algorithm.clone(),
            state: self.state,
            coordinator: self.coordinator.clone(),
            group: self.group.clone(),
            incarnation: self.incarnation,
            phase: self.phase.clone(),
            pid: self.pid,
            heartbeat_ms,
            node_time_us: self.node_time_us,
            last_seen: self.server_time_ms,
            last_event: self.event,
        }
    }
}

/// Server time in ms since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Longest accepted group id and phase name; anything longer is not from a real node.
const MAX_TEXT: usize = 128;
/// Longest accepted heartbeat period (one hour).
const MAX_HEARTBEAT_MS: u64 = 3_600_000;

/// Checks an `ip:port` and returns it in canonical form, so one node has one key.
pub(crate) fn parse_addr(what: &str, text: &str) -> Result<String, String> {
    text.parse::<SocketAddr>()
        .map(|a| a.to_string())
        .map_err(|_| format!("{what}: invalid address {text:?} (expected ip:port)"))
}

fn check_text(what: &str, text: &str) -> Result<(), String> {
    if text.len() > MAX_TEXT {
        return Err(format!("{what}: longer than {MAX_TEXT} bytes"));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("{what}: contains control characters"));
    }
    Ok(())
}

/// Checks a report and canonicalizes its addresses; the error names the offending field.
pub(crate) fn check_report(at: usize, mut r: NodeReport) -> Result<NodeReport, String> {
    let field = |name: &str| format!("reports[{at}].{name}");
    r.addr = parse_addr(&field("addr"), &r.addr)?;
    if let Some(c) = &r.coordinator {
        r.coordinator = Some(parse_addr(&field("coordinator"), c)?);
    }
    r.algorithm
        .parse::<Algorithm>()
        .map_err(|e| format!("{}: {e}", field("algorithm")))?;
    if let Some(g) = &r.group {
        check_text(&field("group"), g)?;
    }
    check_text(&field("phase"), &r.phase)?;
    if !(1..=MAX_HEARTBEAT_MS).contains(&r.heartbeat_ms) {
        return Err(format!(
            "{}: {} is out of range 1..={MAX_HEARTBEAT_MS}",
            field("heartbeat_ms"),
            r.heartbeat_ms
        ));
    }
    Ok(r)
}

/// Checks blocked links and canonicalizes their addresses; a node cannot block itself.
pub(crate) fn check_links(links: Vec<BlockedLink>) -> Result<Vec<BlockedLink>, String> {
    links
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let from = parse_addr(&format!("[{i}].from"), &l.from)?;
            let to = parse_addr(&format!("[{i}].to"), &l.to)?;
            if from == to {
                return Err(format!("[{i}]: a node cannot block itself ({from})"));
            }
            Ok(BlockedLink { from, to })
        })
        .collect()
}
