//! `spacetime.html`: one self-contained page (inline SVG drawn by a small inline script, inline
//! CSS, the run as embedded JSON; no network, works from `file://`).
//!
//! One lane per node, time flowing down. Status bands are coloured by Garcia-Molina state and
//! labelled with the coordinator, group and term; every delivery or drop is an arrow from its send
//! (drops end in a cross, duplicated messages are dashed); timers are ticks; crashes, recoveries,
//! joins and leaves are glyphs on their lane; partitions tint the lanes by side until the heal;
//! other marks cross the lanes they concern; the violation is a red bar the page opens at.
//!
//! The script draws only the visible time window, from the embedded data (binary search by time),
//! and shows message density instead of arrows when a window holds too many of them; a strip on
//! the right shows the density of the whole run and where the window is. A time slider shows the
//! cluster at one instant: who follows whom, the partition sides, messages in flight.
//!
//! The page exposes `window.spacetime` for tests: `ready`, `readyMs` (milliseconds from navigation
//! to the first drawing), `window()` (the drawn `[t0, t1]`, µs), `setWindow(t0, t1)`, `setTime(t)`,
//! `arrowsDrawn()`; script errors are shown on the page and kept in `window.pageErrors`.

use std::collections::BTreeMap;

use election_core::State;
use serde::Serialize;

use crate::html::{escape, page_start, script_json};
use crate::run::{EventKind, MarkKind, MsgId, NodeIx, Run, Time, Violation};

const SCRIPT: &str = include_str!("spacetime.js");
const STYLE: &str = include_str!("spacetime.css");

/// Strings of the page, interned: the data refers to them by index.
#[derive(Default)]
struct Strings {
    list: Vec<String>,
    index: BTreeMap<String, u32>,
}

impl Strings {
    fn of(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.list.len() as u32;
        self.list.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

/// Flags of an arrow.
const DUPLICATED: u8 = 1;
const SEND_NOT_IN_RUN: u8 = 2;

/// `[send time, arrival or drop time, from, to, kind, message id, drop reason or null, flags,
/// content]`; strings are indices into `strings`.
type Arrow = (
    Time,
    Time,
    NodeIx,
    NodeIx,
    u32,
    MsgId,
    Option<u32>,
    u8,
    Option<u32>,
);
/// `[time, state, coordinator, group, incarnation, term, phase]`.
type StatusRow = (
    Time,
    u8,
    Option<NodeIx>,
    Option<u32>,
    Option<u64>,
    Option<u64>,
    u32,
);

/// `[time, kind, label, nodes, sides, cut]`.
type MarkRow<'a> = (
    Time,
    &'static str,
    &'a str,
    &'a [NodeIx],
    &'a [Vec<NodeIx>],
    &'a [[NodeIx; 2]],
);

/// What the script draws from.
#[derive(Serialize)]
struct Model<'a> {
    title: &'a str,
    algorithm: &'a str,
    nodes: &'a [String],
    start: Time,
    end: Time,
    details: &'a [(String, String)],
    omitted: u64,
    violation: Option<&'a Violation>,
    strings: Vec<String>,
    /// Message kinds in order of first send (their colour index), as string indices.
    kinds: Vec<u32>,
    /// Sorted by send time.
    arrows: Vec<Arrow>,
    /// Sends that neither arrived nor were dropped before the run ended:
    /// `[time, from, to, kind, id, content]`.
    unsent: Vec<(Time, NodeIx, NodeIx, u32, MsgId, Option<u32>)>,
    /// `[time, node, kind, content]`.
    timers: Vec<(Time, NodeIx, u32, Option<u32>)>,
    /// Per node, its status changes in time order.
    status: Vec<Vec<StatusRow>>,
    /// `[time, node, what]`, what ∈ start, crash, recover, join, leave.
    life: Vec<(Time, NodeIx, &'static str)>,
    /// Marks in time order.
    marks: Vec<MarkRow<'a>>,
}

fn state_index(state: State) -> u8 {
    match state {
        State::Down => 0,
        State::Election => 1,
        State::Reorganization => 2,
        State::Normal => 3,
    }
}

fn mark_name(kind: MarkKind) -> &'static str {
    match kind {
        MarkKind::Partition => "partition",
        MarkKind::Block => "block",
        MarkKind::Heal => "heal",
        MarkKind::Network => "network",
        MarkKind::Link => "link",
        MarkKind::Drift => "drift",
        MarkKind::Calm => "calm",
        MarkKind::Settled => "settled",
        MarkKind::Note => "note",
    }
}

/// A send waiting for its deliveries and drops.
struct Sent {
    t: Time,
    kind: u32,
    content: Option<u32>,
    flags: u8,
    arrows: u32,
}

fn model(run: &Run) -> Model<'_> {
    let mut strings = Strings::default();
    let mut kinds: Vec<u32> = Vec::new();
    let mut kind_of = |strings: &mut Strings, k: &str| {
        let i = strings.of(k);
        if !kinds.contains(&i) {
            kinds.push(i);
        }
        i
    };
    let n = run.header.nodes.len();
    let mut status: Vec<Vec<StatusRow>> = vec![Vec::new(); n];
    let row = |strings: &mut Strings, t: Time, s: &crate::run::NodeStatus| -> StatusRow {
        (
            t,
            state_index(s.state),
            s.coordinator,
            s.group.as_deref().map(|g| strings.of(g)),
            s.incarnation,
            s.term,
            strings.of(&s.phase),
        )
    };
    let start = run.start();
    for (node, s) in &run.header.initial {
        if let Some(list) = status.get_mut(*node as usize) {
            list.push(row(&mut strings, start, s));
        }
    }
    let mut sent: BTreeMap<MsgId, Sent> = BTreeMap::new();
    let mut arrows = Vec::new();
    let mut timers = Vec::new();
    let mut life = Vec::new();
    let mut marks = Vec::new();
    for e in &run.events {
        match &e.kind {
            EventKind::Start { node } => life.push((e.t, *node, "start")),
            EventKind::Crash { node } => life.push((e.t, *node, "crash")),
            EventKind::Recover { node } => life.push((e.t, *node, "recover")),
            EventKind::Join { node } => life.push((e.t, *node, "join")),
            EventKind::Leave { node } => life.push((e.t, *node, "leave")),
            EventKind::Send {
                id, kind, content, ..
            } => {
                let kind = kind_of(&mut strings, kind);
                let content = content.as_ref().map(|c| strings.of(&c.to_string()));
                sent.insert(
                    *id,
                    Sent {
                        t: e.t,
                        kind,
                        content,
                        flags: 0,
                        arrows: 0,
                    },
                );
            }
            EventKind::Duplicate { id, .. } => {
                if let Some(s) = sent.get_mut(id) {
                    s.flags |= DUPLICATED;
                }
            }
            EventKind::Deliver { id, from, to, kind }
            | EventKind::Drop {
                id, from, to, kind, ..
            } => {
                let reason = match &e.kind {
                    EventKind::Drop { reason, .. } => Some(strings.of(reason)),
                    _ => None,
                };
                let arrow = match sent.get_mut(id) {
                    Some(s) => {
                        s.arrows += 1;
                        (
                            s.t, e.t, *from, *to, s.kind, *id, reason, s.flags, s.content,
                        )
                    }
                    None => {
                        let kind = kind_of(&mut strings, kind);
                        (
                            start,
                            e.t,
                            *from,
                            *to,
                            kind,
                            *id,
                            reason,
                            SEND_NOT_IN_RUN,
                            None,
                        )
                    }
                };
                arrows.push(arrow);
            }
            EventKind::Timer {
                node,
                kind,
                content,
            } => {
                let kind = strings.of(kind);
                let content = content.as_ref().map(|c| strings.of(&c.to_string()));
                timers.push((e.t, *node, kind, content));
            }
            EventKind::Status { node, status: s } => {
                let r = row(&mut strings, e.t, s);
                if let Some(list) = status.get_mut(*node as usize) {
                    list.push(r);
                }
            }
            EventKind::Mark {
                mark,
                label,
                nodes,
                sides,
                cut,
            } => marks.push((
                e.t,
                mark_name(*mark),
                label.as_str(),
                nodes.as_slice(),
                sides.as_slice(),
                cut.as_slice(),
            )),
        }
    }
    // Arrows were collected by arrival; the script searches them by send time.
    arrows.sort_by_key(|a| a.0);
    let mut unsent: Vec<_> = Vec::new();
    for e in &run.events {
        if let EventKind::Send { id, from, to, .. } = &e.kind {
            if let Some(s) = sent.get(id).filter(|s| s.arrows == 0) {
                unsent.push((s.t, *from, *to, s.kind, *id, s.content));
            }
        }
    }
    Model {
        title: &run.header.title,
        algorithm: &run.header.algorithm,
        nodes: &run.header.nodes,
        start,
        end: run.end(),
        details: &run.header.details,
        omitted: run.header.omitted,
        violation: run.header.violation.as_ref(),
        strings: strings.list,
        kinds,
        arrows,
        unsent,
        timers,
        status,
        life,
        marks,
    }
}

/// The run as a self-contained spacetime diagram (`spacetime.html`).
pub fn render_spacetime(run: &Run) -> String {
    let title = if run.header.title.is_empty() {
        "election run".to_string()
    } else {
        run.header.title.clone()
    };
    let mut page = page_start(&format!("{title} — spacetime"), STYLE);
    page.push_str(&format!(
        "<body>\n<div id=\"page-error\" hidden></div>\n<header>\n<h1>{}</h1>\n\
         <div id=\"details\"></div>\n<div id=\"violation\" hidden></div>\n</header>\n",
        escape(&title)
    ));
    page.push_str(SKELETON);
    page.push_str("<script id=\"run-data\" type=\"application/json\">");
    page.push_str(&script_json(&model(run)));
    page.push_str("</script>\n<script>\n");
    page.push_str(SCRIPT);
    page.push_str("</script>\n</body>\n</html>\n");
    page
}

/// The page's fixed parts; the script fills them.
const SKELETON: &str = r#"<nav id="toolbar">
<span class="group"><span class="caption">Zoom</span>
<button id="zoom-out" title="Zoom out (−)">−</button><button id="zoom-in" title="Zoom in (+)">+</button><button id="fit" title="Show the whole run">Fit</button>
<label>from <input id="from" type="number" step="any" size="7"></label>
<label>to <input id="to" type="number" step="any" size="7"> ms</label>
<button id="show">Show</button></span>
<span class="group" id="node-filter"><span class="caption">Nodes</span></span>
<span class="group" id="kind-filter"><span class="caption">Messages</span></span>
<span class="group"><span class="caption">Show</span>
<label><input id="show-timers" type="checkbox" checked> timers</label>
<label><input id="show-labels" type="checkbox" checked> labels</label></span>
</nav>
<main>
<div id="lanes-head"></div>
<div id="scroll"><div id="spacer"></div><svg id="diagram" xmlns="http://www.w3.org/2000/svg"></svg></div>
<div id="density-note" hidden></div>
<svg id="overview" xmlns="http://www.w3.org/2000/svg"><title>Whole run: message density; click to go there</title></svg>
<aside id="cluster">
<h2>Cluster at <span id="at"></span></h2>
<svg id="graph" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 280 250"></svg>
<div id="agreement"></div>
<table id="states"><thead><tr><th>node</th><th>state</th><th>follows</th><th>group</th><th>phase</th></tr></thead><tbody></tbody></table>
<div id="legend"></div>
</aside>
</main>
<footer>
<input id="slider" type="range" min="0" max="1" step="1" value="0" aria-label="time">
<span id="slider-time"></span>
<span class="hint">←/→ step through changes · click a node name to highlight it · Ctrl+wheel zooms</span>
</footer>
<div id="tip" hidden></div>
"#;
