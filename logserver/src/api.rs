//! The HTTP routes: the JSON API, and the shared pieces (errors, access checks) the page uses.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use election_core::report::{BlockedLink, ReportBatch, ReportReply};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::hub::Hub;
use crate::model::{LogEntry, NodeView, check_links, check_report, parse_addr};
use crate::page;

/// Largest request body accepted (a batch of about 4,000 reports).
const BODY_LIMIT: usize = 1024 * 1024;
/// Log entries returned when the query names no limit, and the most it may ask for.
const LOG_DEFAULT_LIMIT: usize = 1_000;
const LOG_MAX_LIMIT: usize = 10_000;

/// Who may change blocks and forget nodes.
pub(crate) struct Access {
    /// True when bound to a non-loopback address.
    pub token_required: bool,
    /// The admin token, if one was configured.
    pub token: Option<String>,
}

impl Access {
    /// Allows the change if no token is needed or the header or form field carries it.
    pub fn check(&self, headers: &HeaderMap, form_token: Option<&str>) -> Result<(), ApiError> {
        if !self.token_required {
            return Ok(());
        }
        let Some(token) = &self.token else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "changes are disabled: the logserver is bound to a non-loopback address and was \
                 started without --admin-token (or ELECTION_ADMIN_TOKEN)",
            ));
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if bearer.or(form_token).is_some_and(|t| same(t, token)) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing or wrong admin token: send `Authorization: Bearer TOKEN` (or fill in \
                 the page's token field)",
            ))
        }
    }
}

/// Compares without stopping at the first difference, so timing does not leak the token.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0, |d, (x, y)| d | (x ^ y)) == 0
}

/// What every handler sees.
#[derive(Clone)]
pub(crate) struct AppState {
    pub hub: Arc<Hub>,
    pub access: Arc<Access>,
}

/// A refused request: its status and a message naming what was wrong, sent as
/// `{"error": "..."}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The request body, or the reason it could not be read (e.g. too large).
pub(crate) fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| ApiError::new(r.status(), r.body_text()))
}

fn parse_json<T: DeserializeOwned>(raw: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    serde_json::from_slice(&body(raw)?)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// All routes of the logserver.
pub(crate) fn router(hub: Arc<Hub>, access: Access) -> Router {
    let state = AppState {
        hub,
        access: Arc::new(access),
    };
    Router::new()
        .route("/", get(|| async { Redirect::to("/status") }))
        .route("/status", get(page::status))
        .route("/status/blocks", post(page::submit_blocks))
        .route("/status/reset", post(page::reset_blocks))
        .route("/api/reports", post(post_reports))
        .route("/api/nodes", get(get_nodes).delete(delete_nodes))
        .route("/api/log", get(get_log))
        .route(
            "/api/blocks",
            get(get_blocks).put(put_blocks).delete(delete_blocks),
        )
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such page or endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this method is not allowed here (see the API documentation)",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

async fn post_reports(
    State(s): State<AppState>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<ReportReply>, ApiError> {
    let batch: ReportBatch = parse_json(raw)?;
    let reports = batch
        .reports
        .into_iter()
        .enumerate()
        .map(|(i, r)| check_report(i, r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::bad_request)?;
    let accepted = reports.len();
    let blocked = s.hub.ingest(reports).map_err(|full| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "store queue full ({} reports waiting for the store): retry later",
                full.waiting
            ),
        )
    })?;
    Ok(Json(ReportReply { accepted, blocked }))
}

async fn get_nodes(State(s): State<AppState>) -> Json<Vec<NodeView>> {
    Json(s.hub.views())
}

async fn delete_nodes(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    s.access.check(&headers, None)?;
    s.hub.forget_nodes();
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/log` parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    node: Option<String>,
    since: Option<u64>,
    limit: Option<usize>,
}

async fn get_log(
    State(s): State<AppState>,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> Result<Json<Vec<LogEntry>>, ApiError> {
    let Query(q) = query.map_err(|r| ApiError::new(r.status(), r.body_text()))?;
    let node = q
        .node
        .map(|n| parse_addr("node", &n))
        .transpose()
        .map_err(ApiError::bad_request)?;
    let limit = q.limit.unwrap_or(LOG_DEFAULT_LIMIT);
    if limit > LOG_MAX_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit: {limit} is more than {LOG_MAX_LIMIT}"
        )));
    }
    Ok(Json(s.hub.log(node.as_deref(), q.since, limit)))
}

async fn get_blocks(State(s): State<AppState>) -> Json<Vec<BlockedLink>> {
    Json(s.hub.blocks())
}

async fn put_blocks(
    State(s): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Vec<BlockedLink>>, ApiError> {
    s.access.check(&headers, None)?;
    let links = check_links(parse_json(raw)?).map_err(ApiError::bad_request)?;
    Ok(Json(s.hub.set_blocks(links)))
}

async fn delete_blocks(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<BlockedLink>>, ApiError> {
    s.access.check(&headers, None)?;
    Ok(Json(s.hub.set_blocks(Vec::new())))
}
