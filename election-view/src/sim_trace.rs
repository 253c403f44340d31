//! Reads the simulator's JSON Lines trace into a [`Run`].
//!
//! The format (written by `election sim run --trace`): line 1 is the run's spec
//! `{version, algorithm, nodes, seed, timing, plan}`; every further line is
//! `{"t": µs, "ev": …, …}` with `ev` one of `start`, `send`, `duplicate`, `deliver`, `drop`,
//! `timer`, `persist`, `status`, `fault`, `calm`, `settled`, `violation`, `end`. The reader checks
//! what a picture relies on — times never go backwards, nodes exist, sends are numbered in order
//! and every delivery names an earlier send — and reports the first problem with its line and
//! field. Unknown fields are ignored, so newer simulators stay readable.
//!
//! The reader also accepts lines written through the vocabulary — an [`crate::Event`] serialized
//! with serde (`crash`, `recover`, `join`, `leave`, `mark` lines, groups as text) — so the
//! simulator can switch to writing [`crate::Event`]s without breaking its readers.

use std::io::{BufRead, Read};
use std::path::Path;

use election_core::State;
use serde_json::{Map, Value};

use crate::run::{
    EventKind, Limit, MarkKind, MsgId, NodeIx, NodeStatus, Run, RunBuilder, Time, Violation,
};

/// Bounds on what the reader accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    /// Events kept (see [`Limit`]).
    pub limit: Limit,
    /// Longest line accepted, in bytes.
    pub max_line_bytes: usize,
    /// Most nodes a run may have (at boot plus joins).
    pub max_nodes: usize,
}

impl Default for ReadOptions {
    /// The default [`Limit`], lines up to 1 MiB, up to 100,000 nodes.
    fn default() -> Self {
        ReadOptions {
            limit: Limit::default(),
            max_line_bytes: 1 << 20,
            max_nodes: 100_000,
        }
    }
}

/// A trace that cannot be read: where, and what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened.
    #[error("cannot open trace {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A problem inside a file.
    #[error("trace {path} {source}")]
    InFile {
        /// The file.
        path: String,
        /// The problem.
        source: Box<ReadError>,
    },
    /// Reading failed.
    #[error("line {line}: cannot read: {source}")]
    Io {
        /// The line being read (1-based).
        line: usize,
        /// Why.
        source: std::io::Error,
    },
    /// The input has no header line.
    #[error("line 1: the trace is empty (no header line)")]
    Empty,
    /// A line is not a JSON object.
    #[error("line {line}: not a JSON object: {message}")]
    Syntax {
        /// The line (1-based).
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// A field is missing or has an unusable value.
    #[error("line {line}: field `{field}`: {problem}")]
    Field {
        /// The line (1-based).
        line: usize,
        /// The field, with its path (`status.state`).
        field: String,
        /// What is wrong.
        problem: String,
    },
}

impl ReadError {
    /// The line the problem is on, if it is inside the input.
    pub fn line(&self) -> Option<usize> {
        match self {
            ReadError::Open { .. } => None,
            ReadError::InFile { source, .. } => source.line(),
            ReadError::Empty => Some(1),
            ReadError::Io { line, .. }
            | ReadError::Syntax { line, .. }
            | ReadError::Field { line, .. } => Some(*line),
        }
    }
}

/// Reads the trace file at `path`; errors name the file.
pub fn read_sim_trace_file(path: &Path, options: &ReadOptions) -> Result<Run, ReadError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| ReadError::Open {
        path: shown.clone(),
        source,
    })?;
    read_sim_trace(std::io::BufReader::new(file), options).map_err(|e| ReadError::InFile {
        path: shown,
        source: Box::new(e),
    })
}

/// Reads a simulator trace. Memory stays within `options`: at most `limit.max_events` events
/// and one line are held at a time.
pub fn read_sim_trace(mut input: impl BufRead, options: &ReadOptions) -> Result<Run, ReadError> {
    let mut buf = Vec::new();
    let mut line = 0;
    let mut reader: Option<Reader> = None;
    loop {
        line += 1;
        buf.clear();
        let limit = options.max_line_bytes as u64 + 1;
        let n = input
            .by_ref()
            .take(limit)
            .read_until(b'\n', &mut buf)
            .map_err(|source| ReadError::Io { line, source })?;
        if n == 0 {
            break;
        }
        if buf.len() > options.max_line_bytes && buf.last() != Some(&b'\n') {
            return Err(ReadError::Syntax {
                line,
                message: format!("longer than {} bytes", options.max_line_bytes),
            });
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: Value = serde_json::from_slice(&buf).map_err(|e| ReadError::Syntax {
            line,
            message: e.to_string(),
        })?;
        let Value::Object(object) = value else {
            return Err(ReadError::Syntax {
                line,
                message: "expected an object {...}".into(),
            });
        };
        let fields = Fields { line, object };
        match reader.as_mut() {
            None => reader = Some(Reader::header(&fields, options)?),
            Some(r) => r.event(&fields)?,
        }
    }
    Ok(reader.ok_or(ReadError::Empty)?.finish())
}

/// One parsed line and its number, with typed field access that names the field on error.
struct Fields {
    line: usize,
    object: Map<String, Value>,
}

impl Fields {
    fn error(&self, field: &str, problem: impl Into<String>) -> ReadError {
        ReadError::Field {
            line: self.line,
            field: field.to_string(),
            problem: problem.into(),
        }
    }

    fn get<'a>(&'a self, path: &str) -> Option<&'a Value> {
        let mut parts = path.split('.');
        let mut value = self.object.get(parts.next()?)?;
        for part in parts {
            value = value.get(part)?;
        }
        Some(value)
    }

    fn value(&self, path: &str) -> Result<&Value, ReadError> {
        self.get(path)
            .ok_or_else(|| self.error(path, "missing".to_string()))
    }

    fn u64(&self, path: &str) -> Result<u64, ReadError> {
        let v = self.value(path)?;
        v.as_u64().ok_or_else(|| {
            self.error(
                path,
                format!("expected an unsigned integer, found {}", shown(v)),
            )
        })
    }

    fn opt_u64(&self, path: &str) -> Result<Option<u64>, ReadError> {
        match self.get(path) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.u64(path).map(Some),
        }
    }

    fn str(&self, path: &str) -> Result<&str, ReadError> {
        let v = self.value(path)?;
        v.as_str()
            .ok_or_else(|| self.error(path, format!("expected a string, found {}", shown(v))))
    }
}

/// A value as shown in an error: its JSON, cut short.
fn shown(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// Reading state after the header.
struct Reader {
    builder: RunBuilder,
    max_nodes: usize,
    last_t: Time,
    /// Sends so far: the simulator numbers messages `0, 1, 2, …` in send order.
    sent: MsgId,
}

impl Reader {
    fn header(f: &Fields, options: &ReadOptions) -> Result<Reader, ReadError> {
        if f.get("ev").is_some() {
            return Err(f.error(
                "ev",
                "line 1 must be the run's spec {version, algorithm, nodes, seed, timing, plan}, \
                 not an event",
            ));
        }
        let algorithm = f.str("algorithm")?;
        let nodes = f.u64("nodes")?;
        if nodes as usize > options.max_nodes {
            return Err(f.error(
                "nodes",
                format!(
                    "{nodes} nodes, more than the {} accepted",
                    options.max_nodes
                ),
            ));
        }
        let seed = f.u64("seed")?;
        let version = f.str("version")?;
        let heartbeat = f.u64("timing.heartbeat")?;
        let timeout = f.u64("timing.timeout")?;
        let title = format!("{algorithm} · {nodes} nodes · seed {seed}");
        let mut builder = RunBuilder::new(title, algorithm).limit(options.limit);
        for i in 0..nodes {
            builder.node(&format!("n{i}"));
        }
        builder.detail("seed", seed.to_string());
        builder.detail(
            "timing",
            format!(
                "heartbeat {} · timeout {}",
                duration(heartbeat),
                duration(timeout)
            ),
        );
        if let Some(network) = f.get("plan.network") {
            builder.detail("network", network_label(network));
        }
        if let Some(Value::Array(faults)) = f.get("plan.faults") {
            builder.detail("faults", faults.len().to_string());
        }
        builder.detail("simulator", version.to_string());
        Ok(Reader {
            builder,
            max_nodes: options.max_nodes,
            last_t: 0,
            sent: 0,
        })
    }

    fn node(&self, f: &Fields, path: &str) -> Result<NodeIx, ReadError> {
        let ix = f.u64(path)?;
        let nodes = self.builder.nodes();
        if ix as usize >= nodes {
            return Err(f.error(
                path,
                format!("node {ix} does not exist (the run has {nodes} nodes so far)"),
            ));
        }
        Ok(ix as NodeIx)
    }

    fn opt_node(&self, f: &Fields, path: &str) -> Result<Option<NodeIx>, ReadError> {
        match f.get(path) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.node(f, path).map(Some),
        }
    }

    /// The `id` of a delivery, drop or duplicate: an earlier send's.
    fn sent_id(&self, f: &Fields) -> Result<MsgId, ReadError> {
        let id = f.u64("id")?;
        if id >= self.sent {
            return Err(f.error(
                "id",
                format!("message {id} was never sent ({} sends so far)", self.sent),
            ));
        }
        Ok(id)
    }

    fn event(&mut self, f: &Fields) -> Result<(), ReadError> {
        let t = f.u64("t")?;
        if t < self.last_t {
            return Err(f.error(
                "t",
                format!("time goes backwards ({t}us after {}us)", self.last_t),
            ));
        }
        self.last_t = t;
        let ev = f.str("ev")?;
        let kind = match ev {
            "start" => EventKind::Start {
                node: self.node(f, "node")?,
            },
            // The vocabulary's own lifecycle and mark events, for a simulator that writes
            // through it.
            "crash" => EventKind::Crash {
                node: self.node(f, "node")?,
            },
            "recover" => EventKind::Recover {
                node: self.node(f, "node")?,
            },
            "leave" => EventKind::Leave {
                node: self.node(f, "node")?,
            },
            "join" => {
                let node = f.u64("node")?;
                let next = self.builder.nodes() as u64;
                if node != next {
                    return Err(f.error(
                        "node",
                        format!("a joining node gets the next id, {next}, not {node}"),
                    ));
                }
                self.join(f)?
            }
            "mark" => {
                let value = Value::Object(f.object.clone());
                let event: crate::run::Event = serde_json::from_value(value)
                    .map_err(|e| f.error("mark", format!("not a mark: {e}")))?;
                event.kind
            }
            "send" => {
                let id = f.u64("id")?;
                if id != self.sent {
                    return Err(f.error(
                        "id",
                        format!("message {id} sent out of order (expected {})", self.sent),
                    ));
                }
                self.sent += 1;
                EventKind::Send {
                    id,
                    from: self.node(f, "from")?,
                    to: self.node(f, "to")?,
                    kind: f.str("kind")?.to_string(),
                    content: f.get("msg").cloned(),
                }
            }
            "duplicate" => EventKind::Duplicate {
                id: self.sent_id(f)?,
                from: self.node(f, "from")?,
                to: self.node(f, "to")?,
                kind: f.str("kind")?.to_string(),
            },
            "deliver" => EventKind::Deliver {
                id: self.sent_id(f)?,
                from: self.node(f, "from")?,
                to: self.node(f, "to")?,
                kind: f.str("kind")?.to_string(),
            },
            "drop" => EventKind::Drop {
                id: self.sent_id(f)?,
                from: self.node(f, "from")?,
                to: self.node(f, "to")?,
                kind: f.str("kind")?.to_string(),
                reason: f.str("reason")?.to_string(),
            },
            "timer" => EventKind::Timer {
                node: self.node(f, "node")?,
                kind: f.str("kind")?.to_string(),
                content: f.get("timer").cloned(),
            },
            "persist" => {
                let node = self.node(f, "node")?;
                let bytes = f.u64("bytes")?;
                EventKind::Mark {
                    mark: MarkKind::Note,
                    label: format!("persist {bytes} B"),
                    nodes: vec![node],
                    sides: Vec::new(),
                    cut: Vec::new(),
                }
            }
            "status" => EventKind::Status {
                node: self.node(f, "node")?,
                status: self.status(f)?,
            },
            "fault" => self.fault(f)?,
            "calm" => EventKind::Mark {
                mark: MarkKind::Calm,
                label: "calm: links healed, no loss; liveness checked next".into(),
                nodes: Vec::new(),
                sides: Vec::new(),
                cut: Vec::new(),
            },
            "settled" => {
                let leader = self.opt_node(f, "leader")?;
                let label = match leader {
                    Some(l) => format!("settled: leader {}", self.name(l)),
                    None => "settled: no live node".to_string(),
                };
                EventKind::Mark {
                    mark: MarkKind::Settled,
                    label,
                    nodes: leader.into_iter().collect(),
                    sides: Vec::new(),
                    cut: Vec::new(),
                }
            }
            "violation" => {
                let mut nodes = Vec::new();
                let list = f.value("violation.nodes")?;
                let Some(items) = list.as_array() else {
                    return Err(f.error(
                        "violation.nodes",
                        format!("expected a list of nodes, found {}", shown(list)),
                    ));
                };
                for (i, item) in items.iter().enumerate() {
                    let path = format!("violation.nodes[{i}]");
                    let ix = item
                        .as_u64()
                        .filter(|&ix| (ix as usize) < self.builder.nodes());
                    let ix = ix.ok_or_else(|| {
                        f.error(&path, format!("not a node of the run: {}", shown(item)))
                    })?;
                    nodes.push(ix as NodeIx);
                }
                let violation = Violation {
                    time: f.u64("violation.time")?,
                    invariant: f.str("violation.invariant")?.to_string(),
                    nodes,
                    detail: f.str("violation.detail")?.to_string(),
                };
                self.builder
                    .violation(violation)
                    .map_err(|e| f.error("violation.nodes", e.to_string()))?;
                return Ok(());
            }
            "end" => {
                self.builder.end(t);
                return Ok(());
            }
            other => {
                return Err(f.error(
                    "ev",
                    format!(
                        "unknown event {other:?} (expected start, send, duplicate, deliver, \
                         drop, timer, persist, status, fault, calm, settled, violation, end, \
                         or the vocabulary's crash, recover, join, leave, mark)"
                    ),
                ));
            }
        };
        self.builder
            .push(t, kind)
            .map_err(|e| f.error("node", e.to_string()))
    }

    fn name(&self, ix: NodeIx) -> String {
        format!("n{ix}")
    }

    fn status(&self, f: &Fields) -> Result<NodeStatus, ReadError> {
        let state = match f.str("status.state")? {
            "Down" => State::Down,
            "Election" => State::Election,
            "Reorganization" => State::Reorganization,
            "Normal" => State::Normal,
            other => {
                return Err(f.error(
                    "status.state",
                    format!(
                        "unknown state {other:?} (expected Down, Election, Reorganization or \
                         Normal)"
                    ),
                ));
            }
        };
        let group = match f.get("status.group") {
            None | Some(Value::Null) => None,
            // Written through the vocabulary: already text.
            Some(Value::String(g)) => Some(g.clone()),
            Some(_) => {
                let origin = self.node(f, "status.group.origin")?;
                let counter = f.u64("status.group.counter")?;
                Some(format!("{}#{counter}", self.name(origin)))
            }
        };
        Ok(NodeStatus {
            state,
            coordinator: self.opt_node(f, "status.coordinator")?,
            group,
            incarnation: f.opt_u64("status.incarnation")?,
            term: f.opt_u64("status.term")?,
            phase: f.str("status.phase")?.to_string(),
        })
    }

    fn fault(&mut self, f: &Fields) -> Result<EventKind, ReadError> {
        let mark = |mark, label: String, nodes: Vec<NodeIx>, cut| EventKind::Mark {
            mark,
            label,
            nodes,
            sides: Vec::new(),
            cut,
        };
        Ok(match f.str("fault.fault")? {
            "crash" => EventKind::Crash {
                node: self.node(f, "fault.node")?,
            },
            "recover" => EventKind::Recover {
                node: self.node(f, "fault.node")?,
            },
            "leave" => EventKind::Leave {
                node: self.node(f, "fault.node")?,
            },
            "join" => self.join(f)?,
            "partition" => {
                let groups = f.value("fault.groups")?;
                let mut sides: Vec<Vec<NodeIx>> = Vec::new();
                let bad = || {
                    f.error(
                        "fault.groups",
                        format!("expected lists of nodes, found {}", shown(groups)),
                    )
                };
                for group in groups.as_array().ok_or_else(bad)? {
                    let mut side = Vec::new();
                    for n in group.as_array().ok_or_else(bad)? {
                        let ix = n
                            .as_u64()
                            .filter(|&ix| (ix as usize) < self.builder.nodes())
                            .ok_or_else(bad)?;
                        side.push(ix as NodeIx);
                    }
                    sides.push(side);
                }
                // Name the nodes of small partitions; count them in large ones.
                let listed: usize = sides.iter().map(Vec::len).sum();
                let text: Vec<String> = sides
                    .iter()
                    .map(|s| {
                        if listed > 32 {
                            return format!("{} nodes", s.len());
                        }
                        let names: Vec<String> = s.iter().map(|&x| self.name(x)).collect();
                        format!("{{{}}}", names.join(" "))
                    })
                    .collect();
                EventKind::Mark {
                    mark: MarkKind::Partition,
                    label: format!("partition {}", text.join(" | ")),
                    nodes: Vec::new(),
                    sides,
                    cut: Vec::new(),
                }
            }
            "block" => {
                let from = self.node(f, "fault.from")?;
                let to = self.node(f, "fault.to")?;
                let one_way = f.get("fault.one_way").and_then(Value::as_bool) == Some(true);
                let mut cut = vec![[from, to]];
                let arrow = if one_way {
                    "→"
                } else {
                    cut.push([to, from]);
                    "↔"
                };
                let label = format!("block {}{arrow}{}", self.name(from), self.name(to));
                mark(MarkKind::Block, label, vec![from, to], cut)
            }
            "heal" => mark(MarkKind::Heal, "heal".into(), Vec::new(), Vec::new()),
            "network" => {
                let network = f.value("fault.network")?;
                let label = format!("network: {}", network_label(network));
                mark(MarkKind::Network, label, Vec::new(), Vec::new())
            }
            "link" => {
                let from = self.node(f, "fault.from")?;
                let to = self.node(f, "fault.to")?;
                let network = f.value("fault.network")?;
                let label = format!(
                    "link {}→{}: {}",
                    self.name(from),
                    self.name(to),
                    network_label(network)
                );
                mark(MarkKind::Link, label, vec![from, to], Vec::new())
            }
            "drift" => {
                let node = self.node(f, "fault.node")?;
                let rate = f.value("fault.rate")?;
                let rate = rate.as_f64().ok_or_else(|| {
                    f.error(
                        "fault.rate",
                        format!("expected a number, found {}", shown(rate)),
                    )
                })?;
                let label = format!("drift {} {:+.1} %", self.name(node), rate * 100.0);
                mark(MarkKind::Drift, label, vec![node], Vec::new())
            }
            other => {
                return Err(f.error(
                    "fault.fault",
                    format!(
                        "unknown fault {other:?} (expected crash, recover, join, leave, \
                         partition, block, heal, network, link or drift)"
                    ),
                ));
            }
        })
    }

    /// A join: the new node gets the next lane (the simulator numbers nodes in the order they
    /// first boot; their ids come from the membership layer).
    fn join(&mut self, f: &Fields) -> Result<EventKind, ReadError> {
        let id = self.builder.nodes();
        if id >= self.max_nodes {
            return Err(f.error(
                "node",
                format!("a join beyond the {} nodes accepted", self.max_nodes),
            ));
        }
        Ok(EventKind::Join {
            node: self.builder.node(&format!("n{id}")),
        })
    }

    fn finish(self) -> Run {
        self.builder.finish()
    }
}

/// A duration for people: µs below 1 ms, ms below 10 s, s above.
pub(crate) fn duration(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 10_000_000 {
        let ms = us as f64 / 1_000.0;
        let text = format!("{ms:.3}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        format!("{text} ms")
    } else {
        format!("{:.2} s", us as f64 / 1e6)
    }
}

/// A plan network `{min_latency_us, max_latency_us, loss, duplicate}` as one short line; fields
/// it lacks are left out.
fn network_label(network: &Value) -> String {
    let us = |k: &str| network.get(k).and_then(Value::as_u64);
    let p = |k: &str| network.get(k).and_then(Value::as_f64);
    let mut parts = Vec::new();
    match (us("min_latency_us"), us("max_latency_us")) {
        (Some(a), Some(b)) => parts.push(format!("{}–{}", duration(a), duration(b))),
        (None, Some(b)) => parts.push(format!("≤ {}", duration(b))),
        _ => {}
    }
    if let Some(loss) = p("loss").filter(|&l| l > 0.0) {
        parts.push(format!("loss {:.1} %", loss * 100.0));
    }
    if let Some(dup) = p("duplicate").filter(|&d| d > 0.0) {
        parts.push(format!("dup {:.1} %", dup * 100.0));
    }
    if parts.is_empty() {
        "default".into()
    } else {
        parts.join(", ")
    }
}
