//! The JSON documents real nodes send to the logserver and what it answers. Both sides use these
//! types, so the wire format is defined once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::protocol::NodeId;
use crate::status::{GroupId, State, Status};

/// Why a node sent a report.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportEvent {
    /// The process started.
    Started,
    /// The node's status changed.
    Status,
    /// Periodic liveness report; the status is unchanged.
    Heartbeat,
    /// The node left gracefully.
    Left,
}

/// One node's report: its status at `node_time_us` on its own clock.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeReport {
    /// The reporting node's `ip:port`.
    pub addr: String,
    /// The algorithm it runs (`bully`, `invitation`, `async-bully`, `ring`).
    pub algorithm: String,
    /// Why this report was sent.
    pub event: ReportEvent,
    /// Garcia-Molina state.
    pub state: State,
    /// The coordinator's `ip:port`, if the node has one.
    pub coordinator: Option<String>,
    /// Group or election id as `ip:port#counter`.
    pub group: Option<String>,
    /// Incarnation number, where the algorithm has one.
    pub incarnation: Option<u64>,
    /// The election epoch (Raft's term), where the algorithm has one; may be left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    /// The algorithm's own sub-state name.
    pub phase: String,
    /// Microseconds since the node process started (its monotonic clock).
    pub node_time_us: u64,
    /// How often this node sends heartbeats, so the logserver can tell when it went silent.
    pub heartbeat_ms: u64,
    /// The node's process id, so a user can kill it from a shell.
    pub pid: u32,
    /// Datagrams this node dropped since it started, by reason (`"bad-mac"`, `"replay"`, …);
    /// empty or left out when none were dropped.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub drops: BTreeMap<String, u64>,
    /// Protocol messages sent and received since the previous report (`--report-messages`),
    /// oldest first; left out when none (the default: nodes report status only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<MessageReport>,
    /// Message records this node dropped unreported since it started (its buffer was full:
    /// the oldest go first); left out when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub messages_dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Message records one report may carry; the logserver refuses more.
pub const MAX_MESSAGES_PER_REPORT: usize = 256;

/// Which way a reported message went.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The reporting node sent it to `peer`.
    Send,
    /// The reporting node received it from `peer`.
    Receive,
}

/// One protocol message as a node saw it. The sender's `(incarnation, number)` names the
/// message at both ends (the wire's per-sender stamp), so the logserver pairs a send with its
/// receive by (sender, receiver, incarnation, number).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageReport {
    /// Sent or received.
    pub dir: Direction,
    /// The message's type, e.g. `AreYouThere`.
    pub kind: String,
    /// The other end's `ip:port`.
    pub peer: String,
    /// The sender's incarnation when it sent the message.
    pub incarnation: u64,
    /// The sender's message number within that incarnation.
    pub number: u64,
    /// When it was sent or received, on the reporting node's clock (as `node_time_us`).
    pub node_time_us: u64,
}

impl NodeReport {
    /// The status this report states, for the invariant checkers: addresses become ids through
    /// `id_of` (the coordinator, the group's origin in `ip:port#counter`). A group id of another
    /// shape is taken as no group id, which the checkers of a per-group scope flag. A node that
    /// left is `Down`.
    pub fn status(&self, mut id_of: impl FnMut(&str) -> NodeId) -> Status {
        if self.event == ReportEvent::Left {
            return Status::down();
        }
        let group = self.group.as_deref().and_then(|g| {
            let (origin, counter) = g.rsplit_once('#')?;
            Some(GroupId {
                origin: id_of(origin),
                counter: counter.parse().ok()?,
            })
        });
        Status {
            state: self.state,
            coordinator: self.coordinator.as_deref().map(&mut id_of),
            group,
            incarnation: self.incarnation,
            term: self.term,
            phase: "reported",
        }
    }
}

/// A batch of reports in one request (`POST /api/reports`).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportBatch {
    /// Reports in the order the node produced them.
    pub reports: Vec<NodeReport>,
}

/// A one-way blocked link: datagrams from `from` to `to` are dropped. Blocking a pair both ways
/// takes two links.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockedLink {
    /// The sender's `ip:port`.
    pub from: String,
    /// The receiver's `ip:port`.
    pub to: String,
}

/// The logserver's answer to a report batch: how many it took, and the links currently blocked,
/// which is how blocks reach the nodes without a proxy.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ReportReply {
    /// Number of reports stored.
    pub accepted: usize,
    /// Every blocked link, in order.
    pub blocked: Vec<BlockedLink>,
}
