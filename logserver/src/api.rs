//! The JSON API, `/healthz` and `/metrics`.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::routing::post;
use election_core::report::{BlockedLink, ReportBatch, ReportReply};
use serde::Deserialize;

use crate::http::{ApiError, AppState, json_body};
use crate::metrics::Refusal;
use crate::model::{NodeView, check_links, check_report, now_ms, parse_addr};

/// Log entries returned when the query names no limit, and the most it may ask for.
const LOG_DEFAULT_LIMIT: usize = 1_000;
const LOG_MAX_LIMIT: usize = 10_000;

/// The API's routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/reports", post(post_reports))
        .route("/api/nodes", get(get_nodes).delete(delete_nodes))
        .route("/api/log", get(get_log))
        .route(
            "/api/blocks",
            get(get_blocks).put(put_blocks).delete(delete_blocks),
        )
        .route("/api/violations", get(get_violations))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
}

async fn post_reports(
    State(s): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<ReportReply>, ApiError> {
    let refuse = |why: Refusal, e: ApiError| {
        s.hub.metrics.refused(why, 1);
        e
    };
    s.access
        .check_reporter(&headers)
        .map_err(|e| refuse(Refusal::Unauthorized, e))?;
    let batch: ReportBatch = json_body(&headers, raw).map_err(|e| refuse(Refusal::Invalid, e))?;
    let n = batch.reports.len();
    let reports = batch
        .reports
        .into_iter()
        .enumerate()
        .map(|(i, r)| check_report(i, r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            s.hub.metrics.refused(Refusal::Invalid, n);
            ApiError::bad_request(e)
        })?;
    let blocked = s.hub.ingest(reports).await?;
    Ok(Json(ReportReply {
        accepted: n,
        blocked,
    }))
}

async fn get_nodes(State(s): State<AppState>) -> Json<Vec<NodeView>> {
    Json(s.hub.views())
}

async fn delete_nodes(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    s.access.check_admin(&headers, None)?;
    s.hub.forget_nodes().await?;
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
) -> Result<Response, ApiError> {
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
    let body = s.hub.log_json(node.as_deref(), q.since, limit);
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// `GET /api/violations`: the invariant breaches found in the reports, oldest first (the
/// last 256), each with `until_ms: null` while it lasts.
async fn get_violations(State(s): State<AppState>) -> Json<Vec<crate::monitor::ViolationRecord>> {
    Json(s.hub.violations())
}

async fn get_blocks(State(s): State<AppState>) -> Json<Vec<BlockedLink>> {
    Json(s.hub.blocks())
}

async fn put_blocks(
    State(s): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Vec<BlockedLink>>, ApiError> {
    s.access.check_admin(&headers, None)?;
    let links = check_links(json_body(&headers, raw)?).map_err(ApiError::bad_request)?;
    Ok(Json(s.hub.set_blocks(links).await?))
}

async fn delete_blocks(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<BlockedLink>>, ApiError> {
    s.access.check_admin(&headers, None)?;
    Ok(Json(s.hub.set_blocks(Vec::new()).await?))
}

/// `GET /healthz`: 200 while the last store operation succeeded, 503 while it fails.
async fn healthz(State(s): State<AppState>) -> Response {
    let h = s.hub.health();
    let status = if h.failing.is_none() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if h.failing.is_none() { "ok" } else { "failing" },
        "store": s.store,
        "store_error": h.failing,
        "queue_depth": h.queue_depth,
        "nodes": h.nodes,
    });
    (status, Json(body)).into_response()
}

/// `GET /metrics` in the Prometheus text format.
async fn metrics(State(s): State<AppState>) -> Response {
    let text = s.hub.metrics.render(&s.hub.nodes(), now_ms());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
