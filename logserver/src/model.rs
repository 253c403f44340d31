//! The documents the logserver keeps (the same in every store) and the checks that turn a node's
//! report into them. The report's fields are defined once, in
//! [`election_core::report::NodeReport`]; a log entry and a node document embed it.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use election_core::report::{BlockedLink, MAX_MESSAGES_PER_REPORT, NodeReport, ReportEvent};
use serde::{Deserialize, Serialize};

/// A node's current state: the latest report it sent, and when it arrived.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct NodeDoc {
    /// The latest report, field for field.
    #[serde(flatten)]
    pub report: NodeReport,
    /// Server time of that report, in ms since the Unix epoch.
    pub last_seen: u64,
}

/// Silent for more than this many heartbeat periods means unreachable.
pub(crate) const SILENT_PERIODS: u64 = 3;

impl NodeDoc {
    /// Whether the node reported recently enough (within three heartbeats of `now_ms`) and has
    /// not left.
    pub fn reachable(&self, now_ms: u64) -> bool {
        self.report.event != ReportEvent::Left
            && now_ms.saturating_sub(self.last_seen)
                <= self.report.heartbeat_ms.saturating_mul(SILENT_PERIODS)
    }

    /// The node's `ip:port`, its key.
    pub fn addr(&self) -> &str {
        &self.report.addr
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
    /// Position in the log, from 0, never reused (also across crashes).
    pub seq: u64,
    /// Server time of arrival, in ms since the Unix epoch.
    pub server_time_ms: u64,
    /// The report, field for field.
    #[serde(flatten)]
    pub report: NodeReport,
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
/// Longest algorithm or drop-reason name.
const MAX_NAME: usize = 64;
/// Most drop reasons one report may carry.
const MAX_DROP_REASONS: usize = 32;
/// Largest integer every store can hold (BSON has signed 64-bit integers only).
const MAX_INT: u64 = i64::MAX as u64;

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

/// An algorithm name (1–64 characters of `a-z`, `0-9`, `-` and `_`; any such name is
/// accepted, so users' own algorithms report like the built-in ones), or with `words`, a
/// drop-reason name, which may also hold single inner spaces (`unknown sender`).
fn check_name(what: &str, name: &str, words: bool) -> Result<(), String> {
    let allowed = |b: u8| {
        b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || b == b'-'
            || b == b'_'
            || (words && b == b' ')
    };
    let shaped = (1..=MAX_NAME).contains(&name.len())
        && name.bytes().all(allowed)
        && !name.starts_with(' ')
        && !name.ends_with(' ')
        && !name.contains("  ");
    if shaped {
        Ok(())
    } else {
        let space = if words { ", inner spaces" } else { "" };
        Err(format!(
            "{what}: {name:?} is not a name (1-{MAX_NAME} characters of a-z, 0-9, '-', '_'{space})"
        ))
    }
}

fn check_int(what: &str, value: u64) -> Result<(), String> {
    if value > MAX_INT {
        return Err(format!(
            "{what}: {value} is larger than {MAX_INT}, the largest integer the stores hold"
        ));
    }
    Ok(())
}

/// Checks a report and canonicalizes its addresses; the error names the offending field.
/// Whatever passes can be written by every store.
pub(crate) fn check_report(at: usize, mut r: NodeReport) -> Result<NodeReport, String> {
    let field = |name: &str| format!("reports[{at}].{name}");
    r.addr = parse_addr(&field("addr"), &r.addr)?;
    if let Some(c) = &r.coordinator {
        r.coordinator = Some(parse_addr(&field("coordinator"), c)?);
    }
    check_name(&field("algorithm"), &r.algorithm, false)?;
    if let Some(g) = &r.group {
        check_text(&field("group"), g)?;
    }
    check_text(&field("phase"), &r.phase)?;
    if let Some(t) = r.term {
        check_int(&field("term"), t)?;
    }
    if let Some(i) = r.incarnation {
        check_int(&field("incarnation"), i)?;
    }
    check_int(&field("node_time_us"), r.node_time_us)?;
    if !(1..=MAX_HEARTBEAT_MS).contains(&r.heartbeat_ms) {
        return Err(format!(
            "{}: {} is out of range 1..={MAX_HEARTBEAT_MS}",
            field("heartbeat_ms"),
            r.heartbeat_ms
        ));
    }
    if r.drops.len() > MAX_DROP_REASONS {
        return Err(format!(
            "{}: {} reasons, at most {MAX_DROP_REASONS}",
            field("drops"),
            r.drops.len()
        ));
    }
    for (reason, &count) in &r.drops {
        check_name(&field("drops"), reason, true)?;
        check_int(&field(&format!("drops.{reason}")), count)?;
    }
    if r.messages.len() > MAX_MESSAGES_PER_REPORT {
        return Err(format!(
            "{}: {} records, at most {MAX_MESSAGES_PER_REPORT}",
            field("messages"),
            r.messages.len()
        ));
    }
    check_int(&field("messages_dropped"), r.messages_dropped)?;
    for (i, m) in r.messages.iter_mut().enumerate() {
        let field = |name: &str| field(&format!("messages[{i}].{name}"));
        if m.kind.is_empty() || m.kind.len() > MAX_NAME {
            return Err(format!("{}: must be 1-{MAX_NAME} bytes", field("kind")));
        }
        check_text(&field("kind"), &m.kind)?;
        m.peer = parse_addr(&field("peer"), &m.peer)?;
        check_int(&field("incarnation"), m.incarnation)?;
        check_int(&field("number"), m.number)?;
        check_int(&field("node_time_us"), m.node_time_us)?;
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

#[cfg(test)]
mod tests {
    use election_core::State;

    use super::*;

    fn report() -> NodeReport {
        NodeReport {
            addr: "127.0.0.1:9000".into(),
            algorithm: "raft".into(),
            event: ReportEvent::Status,
            state: State::Normal,
            coordinator: None,
            group: None,
            incarnation: Some(3),
            term: None,
            phase: "Leader".into(),
            node_time_us: 5,
            heartbeat_ms: 100,
            pid: 1,
            drops: [("bad-mac".to_string(), 2)].into(),
            messages: Vec::new(),
            messages_dropped: 0,
        }
    }

    #[test]
    fn documents_keep_their_flat_shape_and_round_trip() {
        let entry = LogEntry {
            seq: 7,
            server_time_ms: 9,
            report: report(),
        };
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(json["seq"], 7);
        assert_eq!(json["addr"], "127.0.0.1:9000");
        assert_eq!(json["drops"]["bad-mac"], 2);
        assert_eq!(serde_json::from_value::<LogEntry>(json).unwrap(), entry);
        let view = NodeView {
            node: NodeDoc {
                report: report(),
                last_seen: 11,
            },
            reachable: true,
        };
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["last_seen"], 11);
        assert_eq!(json["event"], "status");
        assert_eq!(serde_json::from_value::<NodeView>(json).unwrap(), view);
    }

    #[test]
    fn any_well_formed_algorithm_is_accepted_and_bad_names_are_named() {
        for name in ["raft", "my_algo-2", "bully", &"a".repeat(64)] {
            let mut r = report();
            r.algorithm = name.to_string();
            assert!(check_report(0, r).is_ok(), "{name}");
        }
        let mut r = report();
        r.drops = [
            ("unknown sender".to_string(), 1),
            ("bad-mac".to_string(), 2),
        ]
        .into();
        assert!(check_report(0, r).is_ok(), "the nodes' own reason names");
        for bad in [" x", "x ", "a  b", "A", ""] {
            let mut r = report();
            r.drops = [(bad.to_string(), 1)].into();
            assert!(check_report(0, r).is_err(), "{bad:?}");
        }
        for name in ["", "Raft", "a b", "x/y", &"a".repeat(65)] {
            let mut r = report();
            r.algorithm = name.to_string();
            let err = check_report(2, r).unwrap_err();
            assert!(err.starts_with("reports[2].algorithm: "), "{err}");
        }
    }

    #[test]
    fn integers_the_stores_cannot_hold_are_refused_by_field() {
        let mut r = report();
        r.node_time_us = u64::MAX;
        let err = check_report(0, r).unwrap_err();
        assert!(err.starts_with("reports[0].node_time_us: "), "{err}");
        let mut r = report();
        r.node_time_us = i64::MAX as u64;
        assert!(check_report(0, r).is_ok(), "i64::MAX itself fits");
        let mut r = report();
        r.incarnation = Some(1 << 63);
        assert!(check_report(0, r).unwrap_err().contains("incarnation"));
        let mut r = report();
        r.drops.insert("replay".into(), u64::MAX);
        assert!(check_report(0, r).unwrap_err().contains("drops.replay"));
        let mut r = report();
        r.drops.insert("$where".into(), 1);
        assert!(check_report(0, r).unwrap_err().contains("drops"));
    }
}
