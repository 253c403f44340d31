//! ShiViz input (<https://distributedclocks.github.io/shiviz/>).
//!
//! ShiViz parses a log with a regular expression that has `event`, `host` and `clock` groups; its
//! default, `(?<event>.*)\n(?<host>\S*) (?<clock>{.*})`, reads each event as a description line
//! followed by `HOST {"HOST":n,…}`. When a log file is opened with "Choose File", ShiViz takes
//! its first line as the regular expression and its second as the multiple-executions delimiter
//! (empty: one execution), so the file starts with those two lines and loads unchanged. Pasted
//! into the text box instead, the two lines match nothing and are skipped.
//!
//! ShiViz requires each host's own clock entry to count its events 1, 2, 3, … and every other
//! entry to name a host of the log with a count it reached; [`crate::vector_clocks`] gives
//! exactly that. Descriptions never start with `WORD {` (which the default expression would
//! mistake for a host line) and never span lines. A violation becomes one last event on each node
//! it names.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::clock::{VectorClock, each_stamp};
use crate::run::{EventKind, MsgId, NodeIx, Run};

/// ShiViz's default log-parsing regular expression, as its first line.
pub const SHIVIZ_REGEX: &str = r"(?<event>.*)\n(?<host>\S*) (?<clock>{.*})";

/// The run as a ShiViz log: the regular expression, an empty delimiter line, then two lines per
/// node-local event.
pub fn render_shiviz(run: &Run) -> String {
    let mut out = String::with_capacity(run.events.len() * 96 + 128);
    out.push_str(SHIVIZ_REGEX);
    out.push_str("\n\n");
    let fates = fates(run);
    let mut last: BTreeMap<NodeIx, VectorClock> = BTreeMap::new();
    each_stamp(run, |event, node, clock| {
        let e = &run.events[event];
        let text = describe(run, &e.kind, node, &fates);
        line(&mut out, e.t, &text, &run.node_name(node), clock, run);
        if run.header.violation.is_some() {
            last.insert(node, clock.clone());
        }
    });
    // The violation ends each node it names (the simulator stops at it, so nothing follows).
    if let Some(v) = &run.header.violation {
        for &node in &v.nodes {
            let clock = last.entry(node).or_default();
            *clock.entry(node).or_default() += 1;
            let text = format!("VIOLATION {}: {}", v.invariant, v.detail);
            line(&mut out, v.time, &text, &run.node_name(node), clock, run);
        }
    }
    out
}

/// One event: its description (time first), then the host line.
fn line(out: &mut String, t: u64, text: &str, host: &str, clock: &VectorClock, run: &Run) {
    let text = text.replace(['\n', '\r'], " ");
    let _ = writeln!(
        out,
        "{} {text}",
        crate::sim_trace::duration(t).replace(' ', "")
    );
    out.push_str(host);
    out.push_str(" {");
    for (i, (n, c)) in clock.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(&run.node_name(*n)).expect("a string serializes"));
        let _ = write!(out, ":{c}");
    }
    out.push_str("}\n");
}

/// What became of each message: its drops' reasons, by id (a send's line says if it was lost).
fn fates(run: &Run) -> BTreeMap<MsgId, Vec<String>> {
    let mut fates: BTreeMap<MsgId, Vec<String>> = BTreeMap::new();
    for e in &run.events {
        match &e.kind {
            EventKind::Drop { id, reason, .. } => {
                fates.entry(*id).or_default().push(reason.clone())
            }
            EventKind::Duplicate { id, .. } => {
                fates.entry(*id).or_default().push("duplicated".into())
            }
            _ => {}
        }
    }
    fates
}

fn describe(
    run: &Run,
    kind: &EventKind,
    node: NodeIx,
    fates: &BTreeMap<MsgId, Vec<String>>,
) -> String {
    let name = |n: NodeIx| run.node_name(n);
    match kind {
        EventKind::Start { .. } => "start".into(),
        EventKind::Crash { .. } => "crash".into(),
        EventKind::Recover { .. } => "recover".into(),
        EventKind::Join { .. } => "join".into(),
        EventKind::Leave { .. } => "leave".into(),
        EventKind::Send {
            id,
            to,
            kind,
            content,
            ..
        } => {
            let mut text = format!("send #{id} {kind} to {}", name(*to));
            if let Some(f) = fates.get(id) {
                let _ = write!(text, " ({})", f.join(", "));
            }
            if let Some(c) = content {
                let _ = write!(text, ": {c}");
            }
            text
        }
        EventKind::Deliver { id, from, kind, .. } => {
            format!("receive #{id} {kind} from {}", name(*from))
        }
        EventKind::Timer { kind, content, .. } => match content {
            Some(c) => format!("timer {kind}: {c}"),
            None => format!("timer {kind}"),
        },
        EventKind::Status { status, .. } => {
            let mut text = format!("status {} phase={}", status.state, status.phase);
            if let Some(c) = status.coordinator {
                let _ = write!(text, " coordinator={}", name(c));
            }
            if let Some(g) = &status.group {
                let _ = write!(text, " group={g}");
            }
            if let Some(t) = status.term {
                let _ = write!(text, " term={t}");
            }
            if let Some(i) = status.incarnation {
                let _ = write!(text, " incarnation={i}");
            }
            if status.is_leader(node) {
                text.push_str(" (leader)");
            }
            text
        }
        EventKind::Mark { label, .. } => format!("mark {label}"),
        EventKind::Duplicate { .. } | EventKind::Drop { .. } => {
            unreachable!("network events are local to no node")
        }
    }
}

/// One event of a ShiViz log, as [`check_shiviz`] read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShivizEvent {
    /// The description line.
    pub text: String,
    /// The host.
    pub host: String,
    /// Its vector clock, by host name.
    pub clock: BTreeMap<String, u64>,
}

/// Checks a log in this module's layout against the rules ShiViz enforces before drawing, and
/// returns its events: the default expression on line 1 and an empty delimiter on line 2; then
/// pairs of a description (which must not look like a host line) and `HOST {clock}`; each clock a
/// JSON object of positive counts that includes its own host; each host's own count going
/// 1, 2, 3, … and its clock never going back; every host named in a clock having at least that
/// many events. For tests of every exporter (simulator, logserver).
pub fn check_shiviz(text: &str) -> Result<Vec<ShivizEvent>, String> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, l)) if l == SHIVIZ_REGEX => {}
        other => {
            return Err(format!(
                "line 1 is not ShiViz's default expression: {other:?}"
            ));
        }
    }
    match lines.next() {
        Some((_, "")) => {}
        other => return Err(format!("line 2 is not an empty delimiter line: {other:?}")),
    }
    let host_line = |l: &str| -> Option<(String, String)> {
        let (host, clock) = l.split_once(' ')?;
        (!host.chars().any(char::is_whitespace) && clock.starts_with('{') && clock.ends_with('}'))
            .then(|| (host.to_string(), clock.to_string()))
    };
    let mut events = Vec::new();
    let mut last: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    while let Some((n, description)) = lines.next() {
        if host_line(description).is_some() {
            return Err(format!(
                "line {n}: a description that reads as a host line: {description}"
            ));
        }
        let Some((m, host)) = lines.next() else {
            return Err(format!("line {n}: a description without its host line"));
        };
        let (host, clock) =
            host_line(host).ok_or(format!("line {m}: not `HOST {{clock}}`: {host}"))?;
        let clock: BTreeMap<String, u64> = serde_json::from_str(&clock)
            .map_err(|e| format!("line {m}: the clock is not an object of counts: {e}"))?;
        if clock.values().any(|&c| c == 0) {
            return Err(format!(
                "line {m}: a zero count (ShiViz wants only counts from 1)"
            ));
        }
        let own = clock.get(&host).copied().unwrap_or(0);
        let before = last.get(&host);
        let expected = before.and_then(|c| c.get(&host)).copied().unwrap_or(0) + 1;
        if own != expected {
            return Err(format!(
                "line {m}: {host}'s own count is {own}, expected {expected}"
            ));
        }
        if let Some(before) = before {
            if let Some((h, c)) = before
                .iter()
                .find(|(h, c)| clock.get(*h).is_none_or(|x| x < c))
            {
                return Err(format!(
                    "line {m}: {host}'s clock went back on {h} (was {c})"
                ));
            }
        }
        last.insert(host.clone(), clock.clone());
        events.push(ShivizEvent {
            text: description.to_string(),
            host,
            clock,
        });
    }
    for e in &events {
        for (h, &c) in &e.clock {
            let reached = last.get(h).and_then(|l| l.get(h)).copied().unwrap_or(0);
            if c > reached {
                return Err(format!(
                    "{}'s clock names {h}:{c}, but {h} has {reached} events",
                    e.host
                ));
            }
        }
    }
    Ok(events)
}
