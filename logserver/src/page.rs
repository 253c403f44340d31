//! The `/status` page: the node table (kept live by a small script, `/status.js`, polling
//! `/api/nodes`) and the "Block Connections" form, which also works as a plain form without
//! JavaScript. Script and style are served by this server, so the page's Content-Security-Policy
//! allows nothing from anywhere else and no inline code.

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

use crate::http::{ApiError, AppState, body};
use crate::model::{NodeDoc, now_ms, parse_addr};

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
    Html(render(&nodes, &blocks, now_ms(), &forms))
}

/// The form fields every form carries.
struct Forms<'a> {
    /// The form token (field `csrf`).
    csrf: &'a str,
    /// Whether to ask for the admin token (field `token`).
    admin_token: bool,
}

/// The fields of a form post: `pair` values, and the form and admin tokens.
#[derive(Default)]
struct FormPost {
    pairs: Vec<String>,
    csrf: Option<String>,
    token: Option<String>,
}

impl FormPost {
    /// Parses the body, refusing unknown fields (and `pair` where `pairs` is false).
    fn parse(form: &[u8], pairs: bool) -> Result<FormPost, ApiError> {
        let mut post = FormPost::default();
        for (key, value) in form_urlencoded::parse(form) {
            match &*key {
                "pair" if pairs => post.pairs.push(value.into_owned()),
                "csrf" => post.csrf = Some(value.into_owned()),
                "token" => post.token = Some(value.into_owned()),
                other => {
                    let expected = if pairs {
                        "pair, csrf or token"
                    } else {
                        "csrf or token"
                    };
                    return Err(ApiError::bad_request(format!(
                        "unknown form field {other:?} (expected {expected})"
                    )));
                }
            }
        }
        Ok(post)
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
) -> Result<Redirect, ApiError> {
    let form = FormPost::parse(&body(raw)?, true)?;
    form.check(&s, &headers)?;
    let mut ticked = BTreeSet::new();
    for value in &form.pairs {
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
) -> Result<Redirect, ApiError> {
    FormPost::parse(&body(raw)?, false)?.check(&s, &headers)?;
    s.hub.set_blocks(Vec::new()).await?;
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

/// Escapes text for HTML content and quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS UTC`, as the page's script formats it too.
fn format_ms(ms: u64) -> String {
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

/// `/status.css`.
const STYLE: &str = "body{font-family:sans-serif;margin:1.5em}\
table{border-collapse:collapse}th,td{border:1px solid #bbb;padding:.25em .6em;text-align:left}\
th{background:#eee}tr.unreachable td{color:#999;background:#fafafa}\
ul.pairs{columns:3;list-style:none;padding:0}#live{color:#666}";

/// `/status.js`: polls `/api/nodes` each second and rebuilds the table rows with `textContent`, so node text
/// is never parsed as HTML. The columns match `render`.
const SCRIPT: &str = r#"(function () {
  const body = document.getElementById('nodes');
  const live = document.getElementById('live');
  const changed = document.getElementById('changed');
  const fmt = (ms) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
  function row(n) {
    const tr = document.createElement('tr');
    tr.dataset.addr = n.addr;
    if (!n.reachable) tr.className = 'unreachable';
    const status = n.phase && n.phase !== n.state ? n.state + ' (' + n.phase + ')' : n.state;
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
  let last = '';
  async function poll() {
    try {
      const r = await fetch('/api/nodes', { cache: 'no-store' });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      const text = await r.text();
      const nodes = JSON.parse(text);
      // Rebuild only on change, so a user's text selection survives quiet periods.
      if (text !== last) body.replaceChildren(...nodes.map(row));
      last = text;
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
    now: u64,
    forms: &Forms<'_>,
) -> String {
    let mut h = String::with_capacity(4096 + nodes.len() * 400);
    let addrs: Vec<&str> = nodes.iter().map(NodeDoc::addr).collect();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>election status</title><link rel=\"stylesheet\" href=\"/status.css\"></head><body>\
         <h1>Election status</h1><p><a href=\"/status\">refresh</a> · \
         <span id=\"live\">not live (JavaScript is off): use refresh</span></p>\
         <table><thead><tr><th>addr</th><th>coordinator</th><th>groupid</th><th>status</th>\
         <th>date</th><th>algorithm</th><th>incarnation</th><th>pid</th><th>reachable</th>\
         <th>last event</th><th>drops</th></tr></thead><tbody id=\"nodes\" data-addrs=\"{}\">",
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
            status_text(n),
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
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<b a="1">&'"#),
            "&lt;b a=&quot;1&quot;&gt;&amp;&#39;"
        );
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
