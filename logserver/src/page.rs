//! The `/status` page: a picture of the cluster (nodes on a ring, the leader starred, groups
//! coloured, blocked links drawn, unreachable nodes crossed out; click a node to isolate or heal
//! it), the node table, the recent events, "split into sides" and the pair checkboxes — kept live
//! by a small script, `/status.js`, polling `/api/nodes`, `/api/blocks` and `/api/events` each
//! second (polling rather than SSE: one request a second per open page is nothing next to the
//! nodes' reports, and it needs no long-lived connection that would count against
//! `--max-connections`). Every control is a plain form that also works without JavaScript, and a
//! refused form answers an HTML page saying what was wrong. Script and style are served by this
//! server, so the page's Content-Security-Policy allows nothing from anywhere else and no inline
//! code.

use std::collections::BTreeSet;
use std::fmt::Write;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use election_core::report::BlockedLink;
use std::collections::BTreeMap;

use election_view::escape;

use crate::http::{ApiError, AppState, body};
use crate::hub::Refused;
use crate::model::{NodeDoc, now_ms, parse_addr};
use crate::monitor::ViolationRecord;
use crate::timeline::RecentEvent;

/// Above this many nodes the page lists no pair checkboxes (there would be n²/2 of them);
/// blocks are then set through `PUT /api/blocks`.
const MAX_PAIR_NODES: usize = 40;

/// The page's routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/status") }))
        .route("/status", get(status))
        .route("/status.js", get(|| asset("text/javascript", SCRIPT)))
        .route("/status.css", get(|| asset("text/css", STYLE)))
        .route("/status/blocks", post(submit_blocks))
        .route("/status/reset", post(reset_blocks))
        .route("/status/graph.svg", get(graph))
        .route("/status/isolate", post(isolate))
        .route("/status/split", post(split))
}

/// A refused form: the same status as the API's answer, as an HTML page naming what was wrong.
struct FormError(ApiError);

impl From<ApiError> for FormError {
    fn from(e: ApiError) -> FormError {
        FormError(e)
    }
}

impl From<Refused> for FormError {
    fn from(why: Refused) -> FormError {
        FormError(why.into())
    }
}

impl IntoResponse for FormError {
    fn into_response(self) -> Response {
        let page = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>not done — election status</title><link rel=\"stylesheet\" href=\"/status.css\">\
             </head><body><h1>Not done</h1><p id=\"error\">{}</p>\
             <p><a href=\"/status\">back to the status page</a></p></body></html>",
            escape(self.0.message())
        );
        (self.0.status(), Html(page)).into_response()
    }
}

async fn asset(content_type: &'static str, text: &'static str) -> Response {
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `GET /status`.
async fn status(State(s): State<AppState>) -> Html<String> {
    let nodes = s.hub.nodes();
    let blocks: BTreeSet<BlockedLink> = s.hub.blocks().into_iter().collect();
    let forms = Forms {
        csrf: &s.access.form_token,
        admin_token: s.access.token_required(),
    };
    let events = crate::timeline::recent(&s);
    let violations = s.hub.violations();
    let banner = ongoing(&violations).map(banner_text);
    Html(render(
        &nodes,
        &blocks,
        &events,
        banner.as_deref(),
        now_ms(),
        &forms,
    ))
}

/// `GET /status/graph.svg`: the picture of the cluster (the page's script reloads it).
async fn graph(State(s): State<AppState>) -> Response {
    let blocks: BTreeSet<BlockedLink> = s.hub.blocks().into_iter().collect();
    let mut response = graph_svg(&s.hub.nodes(), &blocks, now_ms()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    response
}

/// Colours of groups in the picture, in order of first appearance (by address).
const GROUP_COLORS: [&str; 8] = [
    "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#bcbd22",
];

/// The cluster on a ring: one circle per node (in address order, clockwise from the top),
/// coloured by group (its group id, or whom it follows), the leader starred, unreachable nodes
/// grey and crossed out, two-way blocks as dashed red lines and one-way blocks as red arrows.
fn graph_svg(nodes: &[NodeDoc], blocks: &BTreeSet<BlockedLink>, now: u64) -> String {
    let (w, h) = (460.0_f64, 340.0_f64);
    let (cx, cy) = (w / 2.0, h / 2.0);
    let n = nodes.len().max(1) as f64;
    let radius = 125.0;
    let r = (330.0 / n).clamp(5.0, 20.0);
    let at: BTreeMap<&str, (f64, f64)> = nodes
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let a = std::f64::consts::TAU * i as f64 / n - std::f64::consts::FRAC_PI_2;
            (d.addr(), (cx + radius * a.cos(), cy + radius * a.sin()))
        })
        .collect();
    let mut groups: BTreeMap<String, &str> = BTreeMap::new();
    let mut g = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"graph\" viewBox=\"0 0 {w} {h}\" \
         width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"the cluster\">\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
         markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">\
         <path d=\"M0,0L10,5L0,10z\" fill=\"#d62728\"/></marker></defs>"
    );
    for l in blocks {
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (at.get(l.from.as_str()), at.get(l.to.as_str()))
        else {
            continue;
        };
        let back = reverse(l);
        if blocks.contains(&back) {
            if l.from < l.to {
                let _ = write!(
                    g,
                    "<line class=\"block two-way\" data-from=\"{}\" data-to=\"{}\" x1=\"{x1:.1}\" \
                     y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"#d62728\" \
                     stroke-width=\"2\" stroke-dasharray=\"6 4\"/>",
                    escape(&l.from),
                    escape(&l.to)
                );
            }
        } else {
            // Stop the arrow at the receiver's rim.
            let (dx, dy) = (x2 - x1, y2 - y1);
            let len = (dx * dx + dy * dy).sqrt().max(1.0);
            let (ex, ey) = (x2 - dx / len * (r + 2.0), y2 - dy / len * (r + 2.0));
            let _ = write!(
                g,
                "<line class=\"block one-way\" data-from=\"{}\" data-to=\"{}\" x1=\"{x1:.1}\" \
                 y1=\"{y1:.1}\" x2=\"{ex:.1}\" y2=\"{ey:.1}\" stroke=\"#d62728\" \
                 stroke-width=\"2\" marker-end=\"url(#arrow)\"/>",
                escape(&l.from),
                escape(&l.to)
            );
        }
    }
    for d in nodes {
        let rep = &d.report;
        let (x, y) = at[d.addr()];
        let reachable = d.reachable(now);
        let key = rep.group.clone().or_else(|| rep.coordinator.clone());
        let color = match (&key, reachable) {
            (Some(k), true) => {
                let next = GROUP_COLORS[groups.len() % GROUP_COLORS.len()];
                *groups.entry(k.clone()).or_insert(next)
            }
            // Electing: in no group yet.
            (None, true) => "#f5b041",
            (_, false) => "#c8c8c8",
        };
        let leader = reachable
            && rep.state == election_core::State::Normal
            && rep.coordinator.as_deref() == Some(d.addr());
        let blocked = blocks
            .iter()
            .any(|l| l.from == d.addr() || l.to == d.addr());
        let label = d.addr().rsplit_once(':').map_or(d.addr(), |(_, p)| p);
        let state = if reachable {
            status_text(d)
        } else {
            format!("unreachable (last: {})", status_text(d))
        };
        let _ = write!(
            g,
            "<g class=\"node{}{}\" data-addr=\"{}\" data-blocked=\"{}\"><title>{} — {}{}</title>\
             <circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r:.1}\" fill=\"{color}\" stroke=\"{}\" \
             stroke-width=\"{}\"/>",
            if leader { " leader" } else { "" },
            if reachable { "" } else { " unreachable" },
            escape(d.addr()),
            blocked,
            escape(d.addr()),
            escape(&state),
            rep.coordinator
                .as_deref()
                .map_or(String::new(), |c| format!(", follows {}", escape(c))),
            if leader { "#b8860b" } else { "#333" },
            if leader { 4 } else { 1 },
        );
        if !reachable {
            let k = r * 0.6;
            let _ = write!(
                g,
                "<path d=\"M{:.1},{:.1}L{:.1},{:.1}M{:.1},{:.1}L{:.1},{:.1}\" stroke=\"#555\" \
                 stroke-width=\"2\"/>",
                x - k,
                y - k,
                x + k,
                y + k,
                x - k,
                y + k,
                x + k,
                y - k
            );
        }
        // Labels outside the ring, the leader's with a star.
        let (lx, ly) = (
            cx + (x - cx) * (1.0 + (r + 14.0) / radius),
            cy + (y - cy) * (1.0 + (r + 14.0) / radius),
        );
        let _ = write!(
            g,
            "<text x=\"{lx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\">{}{}</text></g>",
            ly + 4.0,
            if leader { "★ " } else { "" },
            escape(label)
        );
    }
    g.push_str("</svg>");
    g
}

/// The form fields every form carries.
struct Forms<'a> {
    /// The form token (field `csrf`).
    csrf: &'a str,
    /// Whether to ask for the admin token (field `token`).
    admin_token: bool,
}

/// The fields of a form post: the form's own fields (`pair`, `side`, `node`, `action`; repeated
/// ones in order), and the form and admin tokens.
#[derive(Default)]
struct FormPost {
    fields: Vec<(String, String)>,
    csrf: Option<String>,
    token: Option<String>,
}

impl FormPost {
    /// Parses the body, refusing fields other than `allowed`, `csrf` and `token`.
    fn parse(form: &[u8], allowed: &[&str]) -> Result<FormPost, ApiError> {
        let mut post = FormPost::default();
        for (key, value) in form_urlencoded::parse(form) {
            match &*key {
                "csrf" => post.csrf = Some(value.into_owned()),
                "token" => post.token = Some(value.into_owned()),
                k if allowed.contains(&k) => {
                    post.fields.push((key.into_owned(), value.into_owned()))
                }
                other => {
                    let mut expected: Vec<&str> = allowed.to_vec();
                    expected.extend(["csrf", "token"]);
                    return Err(ApiError::bad_request(format!(
                        "unknown form field {other:?} (expected {})",
                        expected.join(", ")
                    )));
                }
            }
        }
        Ok(post)
    }

    /// The values of field `name`, in order.
    fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.fields
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The one value of field `name`.
    fn one(&self, name: &str) -> Result<&str, ApiError> {
        let mut values = self.all(name);
        match (values.next(), values.next()) {
            (Some(v), None) => Ok(v),
            (None, _) => Err(ApiError::bad_request(format!(
                "missing form field {name:?}"
            ))),
            (Some(_), Some(_)) => Err(ApiError::bad_request(format!(
                "form field {name:?} given more than once"
            ))),
        }
    }

    /// The form token and the admin token (where needed) are right.
    fn check(&self, s: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
        s.access.check_form(self.csrf.as_deref())?;
        s.access.check_admin(headers, self.token.as_deref())
    }
}

/// `POST /status/blocks`: the ticked pairs become two-way blocks; pairs that were blocked both
/// ways and are no longer ticked are unblocked; one-way blocks (set through the API) stay.
async fn submit_blocks(
    State(s): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Redirect, FormError> {
    let form = FormPost::parse(&body(raw)?, &["pair"])?;
    form.check(&s, &headers)?;
    let mut ticked = BTreeSet::new();
    for value in form.all("pair") {
        let (a, b) = parse_pair(value).map_err(ApiError::bad_request)?;
        ticked.insert(BlockedLink {
            from: a.clone(),
            to: b.clone(),
        });
        ticked.insert(BlockedLink { from: b, to: a });
    }
    let current: BTreeSet<BlockedLink> = s.hub.blocks().into_iter().collect();
    let one_way = current
        .iter()
        .filter(|l| !current.contains(&reverse(l)))
        .cloned();
    s.hub
        .set_blocks(ticked.into_iter().chain(one_way).collect())
        .await?;
    Ok(Redirect::to("/status"))
}

/// `POST /status/reset`: unblocks everything.
async fn reset_blocks(
    State(s): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Redirect, FormError> {
    FormPost::parse(&body(raw)?, &[])?.check(&s, &headers)?;
    s.hub.set_blocks(Vec::new()).await?;
    Ok(Redirect::to("/status"))
}

/// `POST /status/isolate` (`node=ADDR`, `action=isolate|heal`): `isolate` blocks every link
/// between the node and every other known node, both ways, keeping the other blocks; `heal`
/// lifts every block to or from it.
async fn isolate(
    State(s): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Redirect, FormError> {
    let form = FormPost::parse(&body(raw)?, &["node", "action"])?;
    form.check(&s, &headers)?;
    let node = parse_addr("node", form.one("node")?).map_err(ApiError::bad_request)?;
    let mut links: BTreeSet<BlockedLink> = s
        .hub
        .blocks()
        .into_iter()
        .filter(|l| l.from != node && l.to != node)
        .collect();
    match form.one("action")? {
        "isolate" => {
            for other in s
                .hub
                .nodes()
                .iter()
                .map(NodeDoc::addr)
                .filter(|a| *a != node)
            {
                links.insert(BlockedLink {
                    from: node.clone(),
                    to: other.to_string(),
                });
                links.insert(BlockedLink {
                    from: other.to_string(),
                    to: node.clone(),
                });
            }
        }
        "heal" => {}
        other => {
            return Err(ApiError::bad_request(format!(
                "action: {other:?} is neither \"isolate\" nor \"heal\""
            ))
            .into());
        }
    }
    s.hub.set_blocks(links.into_iter().collect()).await?;
    Ok(Redirect::to("/status"))
}

/// `POST /status/split` (`side=ADDR=a|b|c|` per node): replaces every block with the two-way
/// blocks between nodes on different sides; nodes on no side keep every link.
async fn split(
    State(s): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Redirect, FormError> {
    let form = FormPost::parse(&body(raw)?, &["side"])?;
    form.check(&s, &headers)?;
    let mut side_of: BTreeMap<String, String> = BTreeMap::new();
    for value in form.all("side") {
        let (addr, side) = value
            .rsplit_once('=')
            .ok_or_else(|| ApiError::bad_request(format!("side: {value:?} is not ADDR=SIDE")))?;
        let addr = parse_addr("side", addr).map_err(ApiError::bad_request)?;
        if !matches!(side, "" | "a" | "b" | "c") {
            return Err(ApiError::bad_request(format!(
                "side: {side:?} for {addr} is not a, b, c or empty"
            ))
            .into());
        }
        if !side.is_empty() && side_of.insert(addr.clone(), side.to_string()).is_some() {
            return Err(ApiError::bad_request(format!("side: {addr} is given twice")).into());
        }
    }
    let distinct: BTreeSet<&String> = side_of.values().collect();
    if distinct.len() < 2 {
        return Err(ApiError::bad_request(
            "side: put nodes on at least two different sides (or use reset to heal)",
        )
        .into());
    }
    let mut links = Vec::new();
    for (a, sa) in &side_of {
        for (b, sb) in &side_of {
            if sa != sb {
                links.push(BlockedLink {
                    from: a.clone(),
                    to: b.clone(),
                });
            }
        }
    }
    s.hub.set_blocks(links).await?;
    Ok(Redirect::to("/status"))
}

fn reverse(l: &BlockedLink) -> BlockedLink {
    BlockedLink {
        from: l.to.clone(),
        to: l.from.clone(),
    }
}

/// A checkbox value `a,b`.
fn parse_pair(value: &str) -> Result<(String, String), String> {
    let (a, b) = value
        .split_once(',')
        .ok_or_else(|| format!("pair: {value:?} is not two addresses separated by a comma"))?;
    let (a, b) = (parse_addr("pair", a)?, parse_addr("pair", b)?);
    if a == b {
        return Err(format!("pair: a node cannot block itself ({a})"));
    }
    Ok((a, b))
}

/// `YYYY-MM-DD HH:MM:SS UTC`, as the page's script formats it too.
pub(crate) fn format_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian, 400-year eras).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The status cell: the Garcia-Molina state, with the algorithm's own name when it differs.
fn status_text(n: &NodeDoc) -> String {
    let r = &n.report;
    let state = r.state.to_string();
    if r.phase.is_empty() || r.phase == state {
        state
    } else {
        format!("{state} ({})", r.phase)
    }
}

/// The drops cell: `reason count` pairs, as the page's script writes them too.
fn drops_text(n: &NodeDoc) -> String {
    let pairs: Vec<String> = n
        .report
        .drops
        .iter()
        .map(|(reason, count)| format!("{reason} {count}"))
        .collect();
    pairs.join(", ")
}

/// The recent events as list items, newest first.
fn events_html(events: &[RecentEvent]) -> String {
    let mut out = String::new();
    for e in events.iter().rev() {
        let _ = write!(
            out,
            "<li class=\"{}\"><time>{}</time> {}</li>",
            e.kind,
            format_time_ms(e.at_ms),
            escape(&e.text)
        );
    }
    out
}

/// `HH:MM:SS.mmm` UTC, as the page's script formats it too.
fn format_time_ms(ms: u64) -> String {
    let day = ms % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        day / 3_600_000,
        day / 60_000 % 60,
        day / 1000 % 60,
        day % 1000
    )
}

/// The newest breach still in progress.
fn ongoing(violations: &[ViolationRecord]) -> Option<&ViolationRecord> {
    violations.iter().rev().find(|v| v.until_ms.is_none())
}

/// The banner's sentence, as the page's script writes it too.
fn banner_text(v: &ViolationRecord) -> String {
    let expected = if v.expected {
        " (expected: outside the synchronous model, links were blocked)"
    } else {
        ""
    };
    format!(
        "{} since {}{expected}",
        v.headline,
        format_time_ms(v.since_ms)
    )
}

/// `/status.css`.
const STYLE: &str = "body{font-family:sans-serif;margin:1.5em}\
table{border-collapse:collapse}th,td{border:1px solid #bbb;padding:.25em .6em;text-align:left}\
th{background:#eee}tr.unreachable td{color:#999;background:#fafafa}\
ul.pairs,ul.sides{columns:3;list-style:none;padding:0}#live{color:#666}\
#top{display:flex;gap:2em;flex-wrap:wrap;align-items:flex-start}#picture{max-width:470px}\
.legend{color:#555;font-size:.85em}#graph .node{cursor:pointer}\
#graph .node:hover circle{stroke-width:3}#recent{flex:1;min-width:20em}\
#events{max-height:340px;overflow:auto;font-size:.9em;list-style:none;padding-left:0}\
#events time{color:#666;font-variant-numeric:tabular-nums}#events li.leader{font-weight:600}\
#events li.no-leader,#events li.silent{color:#b54708}\
ul#node-actions{columns:2;list-style:none;padding:0}#error{color:#b42318;font-weight:600}\
#violation{background:#b42318;color:#fff;padding:.5em .8em;font-weight:600}\
#violation.expected{background:#b54708}";

/// `/status.js`: polls `/api/nodes` and `/api/events` each second and rebuilds the table rows
/// and the events with `textContent`, so node text is never parsed as HTML (the columns match
/// `render`); reloads the picture from `/status/graph.svg` (this server's own escaped markup)
/// when anything changed; a click on a node submits its isolate or heal form.
const SCRIPT: &str = r#"(function () {
  const body = document.getElementById('nodes');
  const live = document.getElementById('live');
  const changed = document.getElementById('changed');
  const fmt = (ms) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
  function row(n) {
    const tr = document.createElement('tr');
    tr.dataset.addr = n.addr;
    if (!n.reachable) tr.className = 'unreachable';
    let status = n.phase && n.phase !== n.state ? n.state + ' (' + n.phase + ')' : n.state;
    if (!n.reachable) status = 'unreachable (last: ' + status + ')';
    const group = n.group ?? (n.term != null ? 'term ' + n.term : '');
    const cells = [n.addr, n.coordinator ?? '', group, status, fmt(n.last_seen),
      n.algorithm, n.incarnation ?? '', n.pid, n.reachable ? 'yes' : 'no', n.event,
      Object.entries(n.drops ?? {}).map(([reason, count]) => reason + ' ' + count).join(', ')];
    for (const v of cells) {
      const td = document.createElement('td');
      td.textContent = String(v);
      tr.appendChild(td);
    }
    return tr;
  }
  const holder = document.getElementById('graph-holder');
  const eventList = document.getElementById('events');
  const banner = document.getElementById('violation');
  const two = (v, n) => String(v).padStart(n, '0');
  const clock = (ms) => { const d = new Date(ms); return two(d.getUTCHours(), 2) + ':' +
    two(d.getUTCMinutes(), 2) + ':' + two(d.getUTCSeconds(), 2) + '.' + two(d.getUTCMilliseconds(), 3); };
  function eventItem(e) {
    const li = document.createElement('li');
    li.className = e.kind;
    const t = document.createElement('time');
    t.textContent = clock(e.at_ms);
    li.append(t, ' ' + e.text);
    return li;
  }
  // A click on a node of the picture submits that node's isolate form, or its heal form if
  // any of its links is blocked already.
  holder.addEventListener('click', (ev) => {
    const g = ev.target.closest('.node');
    if (!g) return;
    const form = document.querySelector('#node-actions form[data-node="' + CSS.escape(g.dataset.addr) + '"]');
    if (!form) return;
    const action = g.dataset.blocked === 'true' ? 'heal' : 'isolate';
    form.requestSubmit(form.querySelector('button[value="' + action + '"]'));
  });
  // The newest breach in progress, in the words of the server's `banner_text`.
  function showViolation(list) {
    const v = list.filter((x) => x.until_ms === null).pop();
    banner.hidden = !v;
    if (!v) return;
    banner.className = v.expected ? 'expected' : '';
    banner.textContent = v.headline + ' since ' + clock(v.since_ms) +
      (v.expected ? ' (expected: outside the synchronous model, links were blocked)' : '');
  }
  let last = '', lastBlocks = '', lastEvents = '';
  async function text(url) {
    const r = await fetch(url, { cache: 'no-store' });
    if (!r.ok) throw new Error(url + ': HTTP ' + r.status);
    return r.text();
  }
  async function poll() {
    try {
      const [text_, blocks, events, violations] = await Promise.all(
        [text('/api/nodes'), text('/api/blocks'), text('/api/events'), text('/api/violations')]);
      showViolation(JSON.parse(violations));
      const nodes = JSON.parse(text_);
      // Rebuild only on change, so a user's text selection survives quiet periods.
      if (text_ !== last) body.replaceChildren(...nodes.map(row));
      if (text_ !== last || blocks !== lastBlocks) holder.innerHTML = await text('/status/graph.svg');
      if (events !== lastEvents) eventList.replaceChildren(...JSON.parse(events).reverse().map(eventItem));
      last = text_;
      lastBlocks = blocks;
      lastEvents = events;
      changed.hidden = nodes.map((n) => n.addr).join(' ') === body.dataset.addrs;
      live.textContent = 'live, updated ' + new Date().toLocaleTimeString();
    } catch (e) {
      live.textContent = 'connection lost (' + e.message + '), retrying';
    }
    setTimeout(poll, 1000);
  }
  setTimeout(poll, 1000);
})();
"#;

/// The whole page.
fn render(
    nodes: &[NodeDoc],
    blocks: &BTreeSet<BlockedLink>,
    events: &[RecentEvent],
    banner: Option<&str>,
    now: u64,
    forms: &Forms<'_>,
) -> String {
    let mut h = String::with_capacity(8192 + nodes.len() * 1200);
    let addrs: Vec<&str> = nodes.iter().map(NodeDoc::addr).collect();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>election status</title><link rel=\"stylesheet\" href=\"/status.css\"></head><body>\
         <h1>Election status</h1><p id=\"violation\" role=\"alert\"{}>{}</p>\
         <p><a href=\"/status\">refresh</a> · \
         <a href=\"/timeline\">timeline of the last minute</a> · \
         <span id=\"live\">not live (JavaScript is off): use refresh</span></p>\
         <div id=\"top\"><section id=\"picture\"><div id=\"graph-holder\">{}</div>\
         <p class=\"legend\">★ leader (gold ring) · colour: group (whom it follows), orange: in no \
         group (electing) · \
         dashed red: blocked both ways · red arrow: blocked one way · grey ✕: unreachable · \
         click a node to isolate it, click it again to heal it</p></section>\
         <section id=\"recent\"><h2>Recent events</h2><ol id=\"events\">{}</ol></section></div>\
         <table><thead><tr><th>addr</th><th>coordinator</th><th>groupid</th><th>status</th>\
         <th>date</th><th>algorithm</th><th>incarnation</th><th>pid</th><th>reachable</th>\
         <th>last event</th><th>drops</th></tr></thead><tbody id=\"nodes\" data-addrs=\"{}\">",
        if banner.is_some() { "" } else { " hidden" },
        escape(banner.unwrap_or_default()),
        graph_svg(nodes, blocks, now),
        events_html(events),
        escape(&addrs.join(" "))
    );
    for n in nodes {
        let reachable = n.reachable(now);
        let r = &n.report;
        let cells = [
            r.addr.clone(),
            r.coordinator.clone().unwrap_or_default(),
            r.group
                .clone()
                .or_else(|| r.term.map(|t| format!("term {t}")))
                .unwrap_or_default(),
            if reachable {
                status_text(n)
            } else {
                format!("unreachable (last: {})", status_text(n))
            },
            format_ms(n.last_seen),
            r.algorithm.clone(),
            r.incarnation.map(|i| i.to_string()).unwrap_or_default(),
            r.pid.to_string(),
            if reachable { "yes" } else { "no" }.to_string(),
            serde_json::to_value(r.event)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            drops_text(n),
        ];
        let class = if reachable {
            ""
        } else {
            " class=\"unreachable\""
        };
        let _ = write!(h, "<tr data-addr=\"{}\"{class}>", escape(n.addr()));
        for c in &cells {
            let _ = write!(h, "<td>{}</td>", escape(c));
        }
        h.push_str("</tr>");
    }
    h.push_str(
        "</tbody></table><h2>Block Connections</h2><p id=\"changed\" hidden>The set of nodes \
         changed: <a href=\"/status\">refresh</a> to update the pairs below.</p>",
    );
    let mut token = format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(forms.csrf)
    );
    if forms.admin_token {
        token.push_str("<label>admin token <input type=\"password\" name=\"token\"></label> ");
    }
    h.push_str("<h3>Isolate or heal one node</h3><ul id=\"node-actions\">");
    for a in &addrs {
        let _ = write!(
            h,
            "<li><form method=\"post\" action=\"/status/isolate\" data-node=\"{a}\">\
             <input type=\"hidden\" name=\"node\" value=\"{a}\">{token}{a} \
             <button type=\"submit\" name=\"action\" value=\"isolate\">isolate</button> \
             <button type=\"submit\" name=\"action\" value=\"heal\">heal</button></form></li>",
            a = escape(a)
        );
    }
    h.push_str(
        "</ul><h3>Split into sides</h3><p>Put nodes on two or three sides: every link between \
         different sides is blocked both ways (this replaces all blocks); nodes on no side keep \
         every link.</p><form method=\"post\" action=\"/status/split\" id=\"split\">\
         <ul class=\"sides\">",
    );
    for a in &addrs {
        let _ = write!(
            h,
            "<li><label>{a} <select name=\"side\">\
             <option value=\"{a}=\">no side</option><option value=\"{a}=a\">side A</option>\
             <option value=\"{a}=b\">side B</option><option value=\"{a}=c\">side C</option>\
             </select></label></li>",
            a = escape(a)
        );
    }
    let _ = write!(
        h,
        "</ul>{token}<button type=\"submit\">split</button></form><h3>Pairs</h3>"
    );
    let mut shown = BTreeSet::new();
    h.push_str("<form method=\"post\" action=\"/status/blocks\">");
    if nodes.len() > MAX_PAIR_NODES {
        let _ = write!(
            h,
            "<p>{} nodes are too many for one checkbox per pair (at most {MAX_PAIR_NODES}): \
             set blocks with <code>PUT /api/blocks</code>.</p>",
            nodes.len()
        );
    } else {
        h.push_str("<ul class=\"pairs\">");
        for (i, a) in addrs.iter().enumerate() {
            for b in &addrs[i + 1..] {
                let there = BlockedLink {
                    from: a.to_string(),
                    to: b.to_string(),
                };
                let back = reverse(&there);
                let both = blocks.contains(&there) && blocks.contains(&back);
                if both {
                    shown.insert(there);
                    shown.insert(back);
                }
                let _ = write!(
                    h,
                    "<li><label><input type=\"checkbox\" name=\"pair\" value=\"{a},{b}\"{}> \
                     {a} ↔ {b}</label></li>",
                    if both { " checked" } else { "" },
                    a = escape(a),
                    b = escape(b),
                );
            }
        }
        let _ = write!(h, "</ul>{token}<button type=\"submit\">submit</button>");
    }
    let _ = write!(
        h,
        "</form><form method=\"post\" action=\"/status/reset\">{token}\
         <button type=\"submit\">reset</button></form>"
    );
    let others: Vec<&BlockedLink> = blocks.iter().filter(|l| !shown.contains(*l)).collect();
    if !others.is_empty() {
        h.push_str("<h3>Other blocked links (one-way or not listed above)</h3><ul id=\"one-way\">");
        for l in others {
            let _ = write!(h, "<li>{} → {}</li>", escape(&l.from), escape(&l.to));
        }
        h.push_str("</ul>");
    }
    h.push_str("<script src=\"/status.js\"></script></body></html>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format_like_the_script() {
        assert_eq!(format_ms(0), "1970-01-01 00:00:00 UTC");
        // 2024-02-29 12:34:56.789 UTC, a leap day.
        assert_eq!(format_ms(1_709_210_096_789), "2024-02-29 12:34:56 UTC");
        assert_eq!(format_ms(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn pairs_need_two_distinct_addresses() {
        assert!(parse_pair("127.0.0.1:1,127.0.0.1:2").is_ok());
        assert!(parse_pair("127.0.0.1:1").unwrap_err().contains("comma"));
        assert!(
            parse_pair("127.0.0.1:1,127.0.0.1:1")
                .unwrap_err()
                .contains("itself")
        );
        assert!(
            parse_pair("x,127.0.0.1:1")
                .unwrap_err()
                .contains("invalid address")
        );
    }
}
