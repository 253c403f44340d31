//! The real cluster as the simulator's pictures see it: the recent log (status reports) and the
//! block changes become an `election-view` [`Run`], drawn by the same renderer as a simulated
//! run (`/timeline`), exported to ShiViz (`/api/shiviz`), and told as recent events on the
//! status page (`/api/events`: "127.0.0.1:9003 leads 4/4 after 212 ms").
//!
//! Nodes report status changes and heartbeats, so the picture holds status bands, starts,
//! leaves, block changes and silences: a node that sent nothing for three of its heartbeats is
//! drawn as crashed at that instant (it is unreachable: killed, paused or cut off from the
//! logserver), and as recovered when it reports again. Nodes started with `--report-messages`
//! also report their protocol sends and receives; a send and the receive of the same message
//! (sender, receiver, the sender's incarnation and message number) become a send and a deliver
//! event, an arrow. A node's message times are on its own clock: each is placed at its report's
//! arrival minus how long before the report it happened, and a receive never before its send.

use std::collections::BTreeSet;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State as Axum};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use election_core::State;
use election_core::report::{BlockedLink, ReportEvent};
use election_view::{
    EventKind, MarkKind, NodeIx, NodeStatus, Run, RunBuilder, Time, agreed_leader, human_time,
    render_shiviz, render_spacetime,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::http::{ApiError, AppState};
use crate::model::{LogEntry, SILENT_PERIODS, now_ms};

/// The blocked links in force from `at_ms` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BlockChange {
    /// Server time, ms since the Unix epoch.
    pub at_ms: u64,
    /// The whole set, sorted.
    pub links: Vec<BlockedLink>,
}

/// One line of the status page's recent events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct RecentEvent {
    /// Server time, ms since the Unix epoch.
    pub at_ms: u64,
    /// `status`, `leader`, `no-leader`, `start`, `silent`, `left` or `blocks`.
    pub kind: &'static str,
    /// What happened, in words.
    pub text: String,
}

/// The run of `entries` (in log order) and `blocks` (in time order; the first may predate the
/// window and gives the links in force at its start) from `from_ms` to `now_ms`.
pub(crate) fn run_of(
    entries: &[LogEntry],
    blocks: &[BlockChange],
    from_ms: u64,
    now_ms: u64,
) -> Run {
    let algorithm = entries
        .last()
        .map_or("unknown", |e| e.report.algorithm.as_str());
    let mut b = RunBuilder::new(format!("{algorithm} · live cluster"), algorithm);
    b.detail("from", crate::page::format_ms(from_ms));
    let with_messages = entries.iter().any(|e| !e.report.messages.is_empty());
    b.detail(
        "source",
        if with_messages {
            "logserver reports (status changes and messages)"
        } else {
            "logserver reports (status changes, no messages)"
        },
    );
    let us = |ms: u64| -> Time { ms.saturating_sub(from_ms) * 1000 };
    // Per node: its last status pushed, last report time, heartbeat, whether silent.
    struct Seen {
        status: Option<NodeStatus>,
        last_ms: u64,
        heartbeat_ms: u64,
        silent: bool,
    }
    let mut seen: Vec<Seen> = Vec::new();
    let mut clock = from_ms;
    let mut pending_blocks = blocks.iter().peekable();
    let mut links_now: BTreeSet<BlockedLink> = BTreeSet::new();
    // Silences due before `until`, in time order of detection.
    fn silences(seen: &mut [Seen], until: u64) -> Vec<(u64, NodeIx)> {
        let mut due: Vec<(u64, NodeIx)> = seen
            .iter_mut()
            .enumerate()
            .filter(|(_, s)| {
                !s.silent && s.status.as_ref().is_some_and(|st| st.state != State::Down)
            })
            .filter_map(|(i, s)| {
                let at = s.last_ms + s.heartbeat_ms.saturating_mul(SILENT_PERIODS);
                (at < until).then(|| {
                    s.silent = true;
                    (at, i as NodeIx)
                })
            })
            .collect();
        due.sort();
        due
    }
    let mut step_to = |b: &mut RunBuilder,
                       seen: &mut Vec<Seen>,
                       links_now: &mut BTreeSet<BlockedLink>,
                       clock: &mut u64,
                       until: u64| {
        let mut marks: Vec<(u64, Option<&BlockChange>, Option<NodeIx>)> = Vec::new();
        while let Some(c) = pending_blocks.next_if(|c| c.at_ms <= until) {
            marks.push((c.at_ms.max(from_ms), Some(c), None));
        }
        for (at, ix) in silences(seen, until) {
            marks.push((at, None, Some(ix)));
        }
        marks.sort_by_key(|m| m.0);
        for (at, change, silent) in marks {
            let at = at.max(*clock);
            *clock = at;
            if let Some(c) = change {
                block_marks(b, us(at), links_now, c);
            }
            if let Some(ix) = silent {
                push(b, us(at), EventKind::Crash { node: ix });
                let down = down_status(seen[ix as usize].status.as_ref());
                seen[ix as usize].status = Some(down.clone());
                push(
                    b,
                    us(at),
                    EventKind::Status {
                        node: ix,
                        status: down,
                    },
                );
            }
        }
    };
    for e in entries {
        let r = &e.report;
        let at = e.server_time_ms.max(clock);
        step_to(&mut b, &mut seen, &mut links_now, &mut clock, at);
        clock = at;
        let t = us(at);
        let ix = b.node(&r.addr);
        let status = NodeStatus {
            state: r.state,
            coordinator: r.coordinator.as_deref().map(|c| b.node(c)),
            group: r.group.clone(),
            incarnation: r.incarnation,
            term: r.term,
            phase: r.phase.clone(),
        };
        if seen.len() < b.nodes() {
            // Nodes named as a coordinator before they report are not seen yet.
            seen.resize_with(b.nodes(), || Seen {
                status: None,
                last_ms: 0,
                heartbeat_ms: 0,
                silent: false,
            });
        }
        let s = &mut seen[ix as usize];
        let was_silent = std::mem::replace(&mut s.silent, false);
        s.last_ms = at;
        s.heartbeat_ms = r.heartbeat_ms;
        match r.event {
            ReportEvent::Started => push(&mut b, t, EventKind::Start { node: ix }),
            _ if was_silent => push(&mut b, t, EventKind::Recover { node: ix }),
            _ => {}
        }
        if r.event == ReportEvent::Left {
            push(&mut b, t, EventKind::Leave { node: ix });
            let down = down_status(Some(&status));
            s.status = Some(down.clone());
            s.silent = true;
            push(
                &mut b,
                t,
                EventKind::Status {
                    node: ix,
                    status: down,
                },
            );
        } else if s.status.as_ref() != Some(&status) {
            s.status = Some(status.clone());
            push(&mut b, t, EventKind::Status { node: ix, status });
        }
    }
    let end = now_ms.max(clock);
    step_to(&mut b, &mut seen, &mut links_now, &mut clock, end);
    b.end(us(end.max(clock)));
    let arrows = message_events(&mut b, entries, from_ms);
    let mut run = b.finish();
    if !arrows.is_empty() {
        run.events.extend(arrows);
        // Stable: status events and a send before its deliver keep their order at a tie.
        run.events.sort_by_key(|e| e.t);
    }
    run
}

/// Arrows drawn at most; the most recent are kept.
const MAX_ARROWS: usize = 20_000;

/// The send and deliver events of the messages `entries` report, paired by (sender, receiver,
/// the sender's incarnation, its message number); a receive whose send is not in the window has
/// no arrow to draw and is left out.
fn message_events(
    b: &mut RunBuilder,
    entries: &[LogEntry],
    from_ms: u64,
) -> Vec<election_view::Event> {
    use election_core::report::Direction;
    use std::collections::BTreeMap;
    type Key = (String, String, u64, u64);
    // The time of a record in µs since `from_ms`: its report's arrival less how much earlier
    // (on the node's clock) it happened.
    let at = |e: &LogEntry, node_time_us: u64| -> Time {
        let arrival = e.server_time_ms.saturating_sub(from_ms) * 1000;
        arrival.saturating_sub(e.report.node_time_us.saturating_sub(node_time_us))
    };
    let mut sends: BTreeMap<Key, (Time, String)> = BTreeMap::new();
    let mut receives: BTreeMap<Key, Time> = BTreeMap::new();
    for e in entries {
        for m in &e.report.messages {
            let t = at(e, m.node_time_us);
            match m.dir {
                Direction::Send => {
                    let key = (
                        e.report.addr.clone(),
                        m.peer.clone(),
                        m.incarnation,
                        m.number,
                    );
                    sends.insert(key, (t, m.kind.clone()));
                }
                Direction::Receive => {
                    let key = (
                        m.peer.clone(),
                        e.report.addr.clone(),
                        m.incarnation,
                        m.number,
                    );
                    receives.entry(key).or_insert(t);
                }
            }
        }
    }
    let mut sent: Vec<(Time, Key, String)> = sends
        .into_iter()
        .map(|(k, (t, kind))| (t, k, kind))
        .collect();
    sent.sort();
    let skip = sent.len().saturating_sub(MAX_ARROWS);
    let mut events = Vec::new();
    for (id, (t, key, kind)) in sent.into_iter().skip(skip).enumerate() {
        let (from, to) = (b.node(&key.0), b.node(&key.1));
        let id = id as u64;
        let delivered = receives.get(&key).map(|&r| r.max(t));
        events.push(election_view::Event {
            t,
            kind: EventKind::Send {
                id,
                from,
                to,
                kind: kind.clone(),
                content: None,
            },
        });
        if let Some(r) = delivered {
            events.push(election_view::Event {
                t: r,
                kind: EventKind::Deliver { id, from, to, kind },
            });
        }
    }
    events
}

/// Adds an event; every node index comes from `RunBuilder::node`, so it cannot be refused.
fn push(b: &mut RunBuilder, t: Time, kind: EventKind) {
    b.push(t, kind).expect("nodes are named before use");
}

/// A node's status once it is down: its last one with the state `Down`.
fn down_status(last: Option<&NodeStatus>) -> NodeStatus {
    NodeStatus {
        state: State::Down,
        coordinator: None,
        group: None,
        incarnation: last.and_then(|s| s.incarnation),
        term: last.and_then(|s| s.term),
        phase: "unreachable".into(),
    }
}

/// Marks for a change of the blocked links: a heal when links were removed, then the cut of
/// every link in force (pictures add cuts up until a heal).
fn block_marks(b: &mut RunBuilder, t: Time, now: &mut BTreeSet<BlockedLink>, change: &BlockChange) {
    let new: BTreeSet<BlockedLink> = change.links.iter().cloned().collect();
    if new == *now {
        return;
    }
    if !now.is_subset(&new) {
        push(
            b,
            t,
            EventKind::Mark {
                mark: MarkKind::Heal,
                label: "blocks lifted".into(),
                nodes: Vec::new(),
                sides: Vec::new(),
                cut: Vec::new(),
            },
        );
    }
    if !new.is_empty() {
        let cut: Vec<[NodeIx; 2]> = new
            .iter()
            .map(|l| [b.node(&l.from), b.node(&l.to)])
            .collect();
        let mut nodes: Vec<NodeIx> = cut.iter().flatten().copied().collect();
        nodes.sort_unstable();
        nodes.dedup();
        push(
            b,
            t,
            EventKind::Mark {
                mark: MarkKind::Block,
                label: format!("{} links blocked", new.len()),
                nodes,
                sides: Vec::new(),
                cut,
            },
        );
    }
    *now = new;
}

/// The last `limit` events of `run` in words: status changes, starts, silences, leaves, block
/// changes, and when the cluster agrees on a leader ("A leads 4/4 after 212 ms", the time since
/// it last had an agreed leader) or stops agreeing. `from_ms` is the run's time 0.
pub(crate) fn recent_events(run: &Run, from_ms: u64, limit: usize) -> Vec<RecentEvent> {
    let n = run.header.nodes.len();
    let mut status: Vec<Option<NodeStatus>> = vec![None; n];
    let mut out: Vec<RecentEvent> = Vec::new();
    let mut leader: Option<NodeIx> = None;
    // Since when the cluster has had no agreed leader, if it was seen without one.
    let mut lost_at: Option<Time> = None;
    let name = |ix: NodeIx| run.node_name(ix);
    let at_ms = |t: Time| from_ms + t / 1000;
    let mut events = run.events.iter().peekable();
    while let Some(e) = events.next() {
        let said = match &e.kind {
            EventKind::Start { node } => Some(("start", format!("{} started", name(*node)))),
            EventKind::Crash { node } => Some((
                "silent",
                format!(
                    "{} unreachable (no report for {SILENT_PERIODS} heartbeats)",
                    name(*node)
                ),
            )),
            EventKind::Leave { node } => Some(("left", format!("{} left", name(*node)))),
            EventKind::Mark { label, .. } => Some(("blocks", label.clone())),
            EventKind::Status { node, status: s } => {
                let was = status[*node as usize].replace(s.clone());
                (s.state != State::Down && was.as_ref().map(|w| w.state) != Some(s.state)).then(
                    || {
                        let mut text = format!("{} {}", name(*node), s.state);
                        if let Some(c) = s.coordinator {
                            text.push_str(&format!(" under {}", name(c)));
                        }
                        if !s.phase.is_empty() && s.phase != s.state.to_string() {
                            text.push_str(&format!(" ({})", s.phase));
                        }
                        ("status", text)
                    },
                )
            }
            _ => None,
        };
        if let Some((kind, text)) = said {
            out.push(RecentEvent {
                at_ms: at_ms(e.t),
                kind,
                text,
            });
        }
        if events.peek().is_some_and(|next| next.t == e.t) {
            continue;
        }
        let now: Vec<Option<&NodeStatus>> = status.iter().map(Option::as_ref).collect();
        let agreed = agreed_leader(&now);
        if agreed.is_none() && lost_at.is_none() {
            lost_at = Some(e.t);
        }
        if agreed == leader {
            continue;
        }
        match agreed {
            Some(c) => {
                let live = now
                    .iter()
                    .flatten()
                    .filter(|s| s.state != State::Down)
                    .count();
                let following = now
                    .iter()
                    .flatten()
                    .filter(|s| s.state == State::Normal && s.coordinator == Some(c))
                    .count();
                let after = lost_at
                    .take()
                    .map_or(String::new(), |t| format!(" after {}", human_time(e.t - t)));
                out.push(RecentEvent {
                    at_ms: at_ms(e.t),
                    kind: "leader",
                    text: format!("{} leads {following}/{live}{after}", name(c)),
                });
            }
            None => {
                lost_at = Some(e.t);
                out.push(RecentEvent {
                    at_ms: at_ms(e.t),
                    kind: "no-leader",
                    text: format!(
                        "no agreed leader (was {})",
                        leader.map_or("none".into(), name)
                    ),
                });
            }
        }
        leader = agreed;
    }
    let skip = out.len().saturating_sub(limit);
    out.drain(..skip);
    out
}

/// Log entries drawn at most (the most recent of the window).
const MAX_ENTRIES: usize = 20_000;
/// The longest window, in seconds.
const MAX_SECONDS: u64 = 3_600;
/// Recent events listed.
const RECENT: usize = 50;

/// The routes of the pictures.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/timeline", get(timeline))
        .route("/api/shiviz", get(shiviz))
        .route("/api/events", get(events))
}

/// `?seconds=N` (the window, default per route, at most an hour) and, for ShiViz, `since=SEQ`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Window {
    seconds: Option<u64>,
    since: Option<u64>,
}

impl Window {
    fn parse(
        query: Result<Query<Window>, QueryRejection>,
        default_s: u64,
    ) -> Result<Window, ApiError> {
        let Query(w) = query.map_err(|r| ApiError::new(r.status(), r.body_text()))?;
        match w.seconds {
            Some(0) => Err(ApiError::bad_request("seconds: must be at least 1")),
            Some(s) if s > MAX_SECONDS => Err(ApiError::bad_request(format!(
                "seconds: {s} is more than {MAX_SECONDS}"
            ))),
            _ => Ok(Window {
                seconds: Some(w.seconds.unwrap_or(default_s)),
                since: w.since,
            }),
        }
    }

    /// The window's run and its start, in ms since the epoch.
    fn run(&self, s: &AppState) -> (Run, u64) {
        let now = now_ms();
        let from = now.saturating_sub(self.seconds.unwrap_or(60) * 1000);
        let entries = s.hub.entries_from(from, self.since, MAX_ENTRIES);
        // The picture starts at the first report drawn, so its times read from 0.
        let from = entries.first().map_or(from, |e| e.server_time_ms.max(from));
        (
            run_of(&entries, &s.hub.block_changes(from), from, now),
            from,
        )
    }
}

/// `GET /timeline?seconds=N`: the last N seconds (default 60) as a space-time diagram.
async fn timeline(
    Axum(s): Axum<AppState>,
    query: Result<Query<Window>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (run, _) = Window::parse(query, 60)?.run(&s);
    let page = render_spacetime(&run);
    let csp = inline_csp(&page);
    let mut response = Html(page).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&csp).expect("a CSP of hashes is a valid header"),
    );
    Ok(response)
}

/// `GET /api/shiviz?seconds=N&since=SEQ`: the window (default 60 s; entries after log seq
/// SEQ) in ShiViz's default input format.
async fn shiviz(
    Axum(s): Axum<AppState>,
    query: Result<Query<Window>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (run, _) = Window::parse(query, 60)?.run(&s);
    let mut response = render_shiviz(&run).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}

/// `GET /api/events?seconds=N`: the last 50 events of the window (default 600 s), oldest first.
async fn events(
    Axum(s): Axum<AppState>,
    query: Result<Query<Window>, QueryRejection>,
) -> Result<Json<Vec<RecentEvent>>, ApiError> {
    let (run, from) = Window::parse(query, 600)?.run(&s);
    Ok(Json(recent_events(&run, from, RECENT)))
}

/// A Content-Security-Policy for a self-contained page: its own inline `<script>` blocks (those
/// without attributes: data blocks are not run) by SHA-256 hash, nothing else runs. Styles may
/// be inline: the renderer positions lanes and labels with `style` attributes, which no hash can
/// allow, and every text it writes into them is escaped.
fn inline_csp(page: &str) -> String {
    let hashes = |open: &str, close: &str| -> String {
        page.split(open)
            .skip(1)
            .filter_map(|rest| rest.split_once(close).map(|(body, _)| body))
            .map(|body| {
                format!(
                    " 'sha256-{}'",
                    BASE64.encode(Sha256::digest(body.as_bytes()))
                )
            })
            .collect()
    };
    format!(
        "default-src 'none'; script-src{}; style-src 'unsafe-inline'; img-src 'self' data:; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        hashes("<script>", "</script>")
    )
}

/// The recent events of the last ten minutes, for the status page.
pub(crate) fn recent(s: &AppState) -> Vec<RecentEvent> {
    let (run, from) = Window {
        seconds: Some(600),
        since: None,
    }
    .run(s);
    recent_events(&run, from, RECENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "127.0.0.1:9000";
    const B: &str = "127.0.0.1:9001";
    const C: &str = "127.0.0.1:9002";
    /// The window's start, ms since the epoch.
    const T0: u64 = 1_700_000_000_000;

    fn entry(
        seq: u64,
        ms: u64,
        addr: &str,
        event: ReportEvent,
        state: State,
        leader: Option<&str>,
    ) -> LogEntry {
        LogEntry {
            seq,
            server_time_ms: T0 + ms,
            report: election_core::report::NodeReport {
                addr: addr.into(),
                algorithm: "bully".into(),
                event,
                state,
                coordinator: leader.map(str::to_string),
                group: None,
                incarnation: None,
                term: None,
                phase: String::new(),
                node_time_us: ms * 1000,
                heartbeat_ms: 100,
                pid: 1,
                drops: Default::default(),
                messages: Vec::new(),
                messages_dropped: 0,
            },
        }
    }

    /// Three nodes elect C; C goes silent (killed); A and B elect B. Heartbeats in between.
    fn failover() -> Vec<LogEntry> {
        use ReportEvent::*;
        let mut log = Vec::new();
        let mut add = |ms, addr, event, state, leader| {
            log.push(entry(log.len() as u64, ms, addr, event, state, leader));
        };
        for n in [A, B, C] {
            add(0, n, Started, State::Election, None);
        }
        for n in [A, B, C] {
            add(100, n, Status, State::Normal, Some(C));
        }
        for ms in [200, 300, 400] {
            add(ms, A, Heartbeat, State::Normal, Some(C));
            add(ms, B, Heartbeat, State::Normal, Some(C));
        }
        add(420, A, Status, State::Election, None);
        add(420, B, Status, State::Election, None);
        add(450, B, Status, State::Normal, Some(B));
        add(460, A, Status, State::Normal, Some(B));
        log
    }

    #[test]
    fn a_silent_node_is_drawn_crashed_and_the_events_tell_the_failover() {
        // At 600 ms A and B (last reports at 460 and 450 ms) are not silent for 300 ms yet.
        let run = run_of(&failover(), &[], T0, T0 + 600);
        assert_eq!(run.header.nodes, [A, B, C]);
        let crashes: Vec<(Time, NodeIx)> = run
            .events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::Crash { node } => Some((e.t, node)),
                _ => None,
            })
            .collect();
        // C's last report came at 100 ms; three heartbeats (300 ms) of silence later it is down.
        assert_eq!(crashes, [(400_000, 2)]);
        let texts: Vec<String> = recent_events(&run, T0, 50)
            .into_iter()
            .filter(|e| matches!(e.kind, "leader" | "no-leader" | "silent"))
            .map(|e| format!("{} {}", e.at_ms - T0, e.text))
            .collect();
        assert_eq!(
            texts,
            [
                format!("100 {C} leads 3/3 after 100.0 ms"),
                format!("400 {C} unreachable (no report for 3 heartbeats)"),
                format!("400 no agreed leader (was {C})"),
                format!("460 {B} leads 2/2 after 60.0 ms"),
            ]
        );
        // Heartbeats repeat the status: no status event for them.
        let statuses = run
            .events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Status { .. }))
            .count();
        assert_eq!(statuses, 3 + 3 + 1 + 2 + 2);
    }

    #[test]
    fn the_last_events_are_kept() {
        let run = run_of(&failover(), &[], T0, T0 + 1000);
        let all = recent_events(&run, T0, 1000);
        let last = recent_events(&run, T0, 3);
        assert_eq!(last, all[all.len() - 3..]);
    }

    #[test]
    fn block_changes_become_marks_and_a_node_that_reports_again_recovers() {
        let link = |from: &str, to: &str| BlockedLink {
            from: from.into(),
            to: to.into(),
        };
        let blocks = [
            BlockChange {
                at_ms: T0,
                links: vec![],
            },
            BlockChange {
                at_ms: T0 + 150,
                links: vec![link(A, B), link(B, A)],
            },
            BlockChange {
                at_ms: T0 + 250,
                links: vec![link(A, B)],
            },
        ];
        let mut log = failover();
        log.push(entry(
            99,
            900,
            C,
            ReportEvent::Heartbeat,
            State::Normal,
            Some(C),
        ));
        let run = run_of(&log, &blocks, T0, T0 + 1000);
        let marks: Vec<(Time, MarkKind, usize)> = run
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Mark { mark, cut, .. } => Some((e.t, *mark, cut.len())),
                _ => None,
            })
            .collect();
        assert_eq!(
            marks,
            [
                (150_000, MarkKind::Block, 2),
                (250_000, MarkKind::Heal, 0),
                (250_000, MarkKind::Block, 1)
            ]
        );
        assert!(
            run.events
                .iter()
                .any(|e| e.t == 900_000 && e.kind == EventKind::Recover { node: 2 })
        );
    }

    #[test]
    fn the_csp_names_the_inline_scripts_by_hash_only() {
        let page = "<style>\na{}</style><script>\nrun()</script>\
                    <script id=\"d\" type=\"application/json\">{}</script>";
        let csp = inline_csp(page);
        let hash = |body: &str| BASE64.encode(Sha256::digest(body.as_bytes()));
        assert!(
            csp.contains(&format!("script-src 'sha256-{}';", hash("\nrun()"))),
            "{csp}"
        );
        let scripts = csp.split(';').find(|d| d.contains("script-src")).unwrap();
        assert_eq!(
            scripts.matches("'sha256-").count(),
            1,
            "the data block is not a script"
        );
        assert!(!scripts.contains("unsafe"), "{csp}");
    }
}
