//! What a node reports about itself: Garcia-Molina's state, its coordinator and group.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::protocol::NodeId;

/// Garcia-Molina's node states, shared by all algorithms for display. Algorithms with finer states
/// (Stoller's Elec1 / Elec2 / Wait / Norm) map onto these and keep their own name in
/// [`Status::phase`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum State {
    /// Not running (crashed, not started, or left).
    Down,
    /// Looking for a coordinator.
    Election,
    /// A coordinator is chosen and the group is being set up.
    Reorganization,
    /// Following (or being) the coordinator.
    Normal,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Down => "Down",
            State::Election => "Election",
            State::Reorganization => "Reorganization",
            State::Normal => "Normal",
        })
    }
}

/// A unique id for a group (Invitation) or an election (asynchronous Bully): the node that created
/// it and that node's counter.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct GroupId {
    /// The node that created the group or started the election.
    pub origin: NodeId,
    /// A counter that the origin never reuses (across restarts too, where the algorithm
    /// persists it).
    pub counter: u64,
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.origin, self.counter)
    }
}

/// A node's externally visible state: what the status page and the invariant checkers read.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
pub struct Status {
    /// Garcia-Molina state.
    pub state: State,
    /// The node this one follows (itself when it is the leader).
    pub coordinator: Option<NodeId>,
    /// Group id (Invitation) or election id (asynchronous Bully).
    pub group: Option<GroupId>,
    /// Incarnation number, for algorithms that count restarts (asynchronous Bully).
    pub incarnation: Option<u64>,
    /// The election epoch, for algorithms that number their elections with a shared counter
    /// (Raft's term); `None` otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    /// The algorithm's own name for its sub-state (e.g. Stoller's `Elec2`).
    pub phase: &'static str,
}

impl Status {
    /// The status of a node that is not running.
    pub const fn down() -> Self {
        Status {
            state: State::Down,
            coordinator: None,
            group: None,
            incarnation: None,
            term: None,
            phase: "Down",
        }
    }

    /// Whether this node is `Normal` and its own coordinator.
    pub fn is_leader(&self, me: NodeId) -> bool {
        self.state == State::Normal && self.coordinator == Some(me)
    }
}
