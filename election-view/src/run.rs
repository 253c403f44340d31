//! The vocabulary: a [`Run`] is a [`Header`] and a time-ordered list of [`Event`]s, all owned and
//! serde-serializable, with nodes named by index into [`Header::nodes`].
//!
//! Simulated runs come from [`crate::read_sim_trace`]; any other source (the logserver's log,
//! a real node's reports) builds a run from plain values with a [`RunBuilder`], which names nodes,
//! checks every index and bounds the number of events kept.

use std::collections::{BTreeMap, VecDeque};

use election_core::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Time, in microseconds since the run began (virtual in the simulator, the logserver's arrival
/// time for real runs).
pub type Time = u64;

/// A node: its index in [`Header::nodes`].
pub type NodeIx = u32;

/// A message's number, unique in the run. Deliveries, drops and duplicates name their send by it;
/// the copies of a duplicated message share it.
pub type MsgId = u64;

/// One recorded run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// What ran, and how it ended.
    pub header: Header,
    /// What happened, in time order (ties keep the order they were recorded in).
    pub events: Vec<Event>,
}

/// The unit of every [`Time`] in a run. There is one; it is written out so that a serialized
/// run says what its numbers mean.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeUnit {
    /// Microseconds.
    #[default]
    #[serde(rename = "us")]
    Micros,
}

/// What ran: the title shown on pictures, the algorithm, the nodes, and the broken invariant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Shown at the top of pictures, e.g. `bully · 5 nodes · seed 3`.
    pub title: String,
    /// The algorithm's name (`bully`, `invitation`, …).
    pub algorithm: String,
    /// Node names, indexed by [`NodeIx`]: `n0`, `n1`, … for simulated runs, `ip:port` for real
    /// ones. Nodes that join later are listed too.
    pub nodes: Vec<String>,
    /// The unit of every time in the run.
    pub time_unit: TimeUnit,
    /// When the run ended, if known (otherwise at its last event).
    pub end: Option<Time>,
    /// Facts shown next to the title, in order (seed, timing, network, version, …).
    pub details: Vec<(String, String)>,
    /// The first invariant the run broke, if any.
    pub violation: Option<Violation>,
    /// Status of nodes as of the first kept event, for nodes whose earlier status events were
    /// left out by a bound (see [`Limit`]).
    pub initial: Vec<(NodeIx, NodeStatus)>,
    /// Events left out by a bound (see [`Limit`]); 0 when the run is complete.
    pub omitted: u64,
}

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// When it was detected.
    pub time: Time,
    /// The invariant's name, e.g. `group-agreement`.
    pub invariant: String,
    /// The nodes involved.
    pub nodes: Vec<NodeIx>,
    /// What was seen.
    pub detail: String,
}

/// What a node reports about itself (an owned form of [`election_core::Status`], with the
/// coordinator as a node index and the group as its display text).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Garcia-Molina state.
    pub state: State,
    /// The node it follows (itself when it leads).
    pub coordinator: Option<NodeIx>,
    /// Group or election id as text (`n4#2` simulated, `ip:port#2` real).
    pub group: Option<String>,
    /// Incarnation number, for algorithms that count restarts.
    pub incarnation: Option<u64>,
    /// Election epoch (Raft's term), for algorithms that number elections.
    pub term: Option<u64>,
    /// The algorithm's own name for its sub-state.
    pub phase: String,
}

impl NodeStatus {
    /// The status of a simulated node, whose node ids are indices.
    pub fn simulated(status: &election_core::Status) -> Self {
        NodeStatus {
            state: status.state,
            coordinator: status.coordinator.map(|c| c.0),
            group: status.group.map(|g| g.to_string()),
            incarnation: status.incarnation,
            term: status.term,
            phase: status.phase.to_string(),
        }
    }

    /// Whether the node is `Normal` and its own coordinator.
    pub fn is_leader(&self, me: NodeIx) -> bool {
        self.state == State::Normal && self.coordinator == Some(me)
    }
}

/// One event and its time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When.
    pub t: Time,
    /// What.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What can happen in a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "kebab-case")]
pub enum EventKind {
    /// A node boots (first boot, after a recovery, or after joining).
    Start {
        /// Which node.
        node: NodeIx,
    },
    /// A node crashes: it stops without telling anyone.
    Crash {
        /// Which node.
        node: NodeIx,
    },
    /// A crashed node is brought back (it boots if it was down and still a member).
    Recover {
        /// Which node.
        node: NodeIx,
    },
    /// A new node joins the cluster.
    Join {
        /// The new node.
        node: NodeIx,
    },
    /// A node leaves the cluster gracefully.
    Leave {
        /// Which node.
        node: NodeIx,
    },
    /// A node sends a message.
    Send {
        /// The message's number.
        id: MsgId,
        /// Sender.
        from: NodeIx,
        /// Receiver.
        to: NodeIx,
        /// The message's type, e.g. `AreYouThere`.
        kind: String,
        /// The message itself, if recorded (`msg` in JSON, as in the simulator's traces).
        #[serde(rename = "msg")]
        content: Option<Value>,
    },
    /// The network makes a second copy of message `id`; both copies are delivered or dropped on
    /// their own.
    Duplicate {
        /// The message's number.
        id: MsgId,
        /// Sender.
        from: NodeIx,
        /// Receiver.
        to: NodeIx,
        /// The message's type.
        kind: String,
    },
    /// A copy of message `id` arrives at its receiver.
    Deliver {
        /// The message's number.
        id: MsgId,
        /// Sender.
        from: NodeIx,
        /// Receiver.
        to: NodeIx,
        /// The message's type.
        kind: String,
    },
    /// A copy of message `id` never arrives.
    Drop {
        /// The message's number.
        id: MsgId,
        /// Sender.
        from: NodeIx,
        /// Receiver.
        to: NodeIx,
        /// The message's type.
        kind: String,
        /// Why: `lost` (by the network), `blocked` (a partition or cut link), `down` (the
        /// receiver is not running), or another word from a real node.
        reason: String,
    },
    /// A node's timer fires.
    Timer {
        /// Which node.
        node: NodeIx,
        /// The timer's name, e.g. `Heartbeat`.
        kind: String,
        /// The timer value, if recorded (`timer` in JSON, as in the simulator's traces).
        #[serde(rename = "timer")]
        content: Option<Value>,
    },
    /// A node's status changes.
    Status {
        /// Which node.
        node: NodeIx,
        /// Its new status.
        status: NodeStatus,
    },
    /// Anything else worth a mark across the lanes of `nodes` (or all lanes when empty):
    /// partitions, cut links, heals, network changes, clock drift, the calm, the settled leader,
    /// a persisted state.
    Mark {
        /// What kind of mark.
        mark: MarkKind,
        /// The text shown on it, e.g. `partition {n0 n1} | {n2 n3}`.
        label: String,
        /// The nodes it concerns; empty for the whole cluster.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        nodes: Vec<NodeIx>,
        /// For [`MarkKind::Partition`]: the sides. Only nodes of one side can talk; a node on
        /// no side is cut off from everyone.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sides: Vec<Vec<NodeIx>>,
        /// For [`MarkKind::Block`]: the directed links (`[from, to]`) it cuts.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cut: Vec<[NodeIx; 2]>,
    },
}

/// Kinds of [`EventKind::Mark`]. Pictures treat `Partition`, `Block`, `Heal` and `Calm` as
/// connectivity changes: a partition replaces the previous partition, blocks add up, a heal or
/// the calm restores every link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MarkKind {
    /// Only nodes on the same side can talk.
    Partition,
    /// Single links are cut.
    Block,
    /// Every partition and cut link is removed.
    Heal,
    /// The network's latency, loss or duplication changes.
    Network,
    /// One link's latency, loss or duplication changes.
    Link,
    /// A node's clock runs fast or slow.
    Drift,
    /// The simulator calms the network (heals, no loss) and starts the liveness check.
    Calm,
    /// The cluster settled on its stable leader.
    Settled,
    /// A note on one node (e.g. a persisted state).
    Note,
}

impl EventKind {
    /// Every node the event names, for range checks and per-node views.
    pub fn nodes(&self) -> Vec<NodeIx> {
        match self {
            EventKind::Start { node }
            | EventKind::Crash { node }
            | EventKind::Recover { node }
            | EventKind::Join { node }
            | EventKind::Leave { node }
            | EventKind::Timer { node, .. } => vec![*node],
            EventKind::Status { node, status } => {
                let mut v = vec![*node];
                v.extend(status.coordinator);
                v
            }
            EventKind::Send { from, to, .. }
            | EventKind::Duplicate { from, to, .. }
            | EventKind::Deliver { from, to, .. }
            | EventKind::Drop { from, to, .. } => vec![*from, *to],
            EventKind::Mark {
                nodes, sides, cut, ..
            } => nodes
                .iter()
                .chain(sides.iter().flatten())
                .chain(cut.iter().flatten())
                .copied()
                .collect(),
        }
    }
}

impl Run {
    /// When the run ended: [`Header::end`], else its last event or violation.
    pub fn end(&self) -> Time {
        let last = self.events.last().map_or(0, |e| e.t);
        let violation = self.header.violation.as_ref().map_or(0, |v| v.time);
        self.header.end.unwrap_or(0).max(last).max(violation)
    }

    /// When the first kept event happened (0 for an empty run).
    pub fn start(&self) -> Time {
        self.events.first().map_or(0, |e| e.t)
    }

    /// The name of node `ix`, or `?ix` if it has none.
    pub fn node_name(&self, ix: NodeIx) -> String {
        self.header
            .nodes
            .get(ix as usize)
            .cloned()
            .unwrap_or_else(|| format!("?{ix}"))
    }
}

/// Which events a bounded run keeps once it holds [`Limit::max_events`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Keep {
    /// The first ones (the boot, the first election): later events are counted, not kept.
    #[default]
    First,
    /// The last ones (what led to a violation): earlier events are dropped, and each node's last
    /// dropped status becomes its [`Header::initial`] status.
    Last,
}

/// A bound on the events of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Most events kept.
    pub max_events: usize,
    /// Which ones.
    pub keep: Keep,
}

impl Default for Limit {
    /// 200,000 events, the first ones: about 40 MB in memory and an 8 MB picture.
    fn default() -> Self {
        Limit {
            max_events: 200_000,
            keep: Keep::First,
        }
    }
}

/// An event naming a node the run does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event at t={t}us names node {node}, but the run has {nodes} nodes")]
pub struct UnknownNode {
    /// The event's time.
    pub t: Time,
    /// The index it named.
    pub node: NodeIx,
    /// How many nodes the run has.
    pub nodes: usize,
}

/// Builds a [`Run`] from plain values: names nodes, checks that events name known nodes, keeps
/// events in time order and within a [`Limit`].
///
/// ```
/// use election_view::{EventKind, NodeStatus, RunBuilder};
/// use election_core::State;
///
/// let mut b = RunBuilder::new("three real nodes", "bully");
/// let a = b.node("127.0.0.1:9000");
/// let c = b.node("127.0.0.1:9002");
/// b.push(0, EventKind::Start { node: a })?;
/// let status = NodeStatus {
///     state: State::Normal,
///     coordinator: Some(c),
///     group: None,
///     incarnation: None,
///     term: None,
///     phase: "Normal".into(),
/// };
/// b.push(1_500, EventKind::Status { node: a, status })?;
/// let run = b.finish();
/// assert_eq!(run.header.nodes.len(), 2);
/// assert_eq!(run.events.len(), 2);
/// # Ok::<(), election_view::UnknownNode>(())
/// ```
#[derive(Debug)]
pub struct RunBuilder {
    header: Header,
    events: VecDeque<Event>,
    names: BTreeMap<String, NodeIx>,
    limit: Limit,
    initial: BTreeMap<NodeIx, NodeStatus>,
}

impl RunBuilder {
    /// An empty run of `algorithm` titled `title`, bounded by the default [`Limit`].
    pub fn new(title: impl Into<String>, algorithm: impl Into<String>) -> Self {
        RunBuilder {
            header: Header {
                title: title.into(),
                algorithm: algorithm.into(),
                ..Header::default()
            },
            events: VecDeque::new(),
            names: BTreeMap::new(),
            limit: Limit::default(),
            initial: BTreeMap::new(),
        }
    }

    /// Bounds the run by `limit` instead of the default.
    pub fn limit(mut self, limit: Limit) -> Self {
        self.limit = limit;
        self
    }

    /// The index of the node named `name`, adding it if it is new.
    pub fn node(&mut self, name: &str) -> NodeIx {
        if let Some(&ix) = self.names.get(name) {
            return ix;
        }
        let ix = self.header.nodes.len() as NodeIx;
        self.header.nodes.push(name.to_string());
        self.names.insert(name.to_string(), ix);
        ix
    }

    /// How many nodes are named so far.
    pub fn nodes(&self) -> usize {
        self.header.nodes.len()
    }

    /// Adds a fact shown next to the title.
    pub fn detail(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.header.details.push((key.into(), value.into()));
    }

    /// Records when the run ended.
    pub fn end(&mut self, t: Time) {
        self.header.end = Some(t);
    }

    /// Records the broken invariant.
    pub fn violation(&mut self, violation: Violation) -> Result<(), UnknownNode> {
        for &node in &violation.nodes {
            self.check(violation.time, node)?;
        }
        self.header.violation = Some(violation);
        Ok(())
    }

    fn check(&self, t: Time, node: NodeIx) -> Result<(), UnknownNode> {
        let nodes = self.header.nodes.len();
        if (node as usize) < nodes {
            Ok(())
        } else {
            Err(UnknownNode { t, node, nodes })
        }
    }

    /// Adds an event. Events may come slightly out of order (they are placed by time, after
    /// events of the same time). Past the limit, [`Keep::First`] counts the event instead of
    /// keeping it and [`Keep::Last`] drops the oldest.
    pub fn push(&mut self, t: Time, kind: EventKind) -> Result<(), UnknownNode> {
        for node in kind.nodes() {
            self.check(t, node)?;
        }
        if self.limit.max_events == 0 {
            self.header.omitted += 1;
            return Ok(());
        }
        if self.events.len() >= self.limit.max_events {
            self.header.omitted += 1;
            match self.limit.keep {
                Keep::First => return Ok(()),
                Keep::Last => {
                    if let Some(Event {
                        kind: EventKind::Status { node, status },
                        ..
                    }) = self.events.pop_front()
                    {
                        self.initial.insert(node, status);
                    }
                }
            }
        }
        let at = self.events.partition_point(|e| e.t <= t);
        self.events.insert(at, Event { t, kind });
        Ok(())
    }

    /// The run.
    pub fn finish(mut self) -> Run {
        self.header.initial = self.initial.into_iter().collect();
        Run {
            header: self.header,
            events: self.events.into(),
        }
    }
}
