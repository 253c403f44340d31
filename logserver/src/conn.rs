//! Accepting connections within bounds: at most `max` open at once (beyond that a short-lived
//! answer of 503, and beyond a few of those the connection is closed at once, so refusing never
//! holds file descriptors for long), hyper's header-read timeout (which also bounds how long a
//! keep-alive connection may sit idle between requests), and a graceful stop that lets open
//! requests finish.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::hub::Hub;

/// Connections being answered "too many connections" at once; more are closed unanswered.
const REFUSING_MAX: usize = 32;
/// How long a refused connection may take to send its request head.
const REFUSE_READ_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause after a failed accept (e.g. out of file descriptors) before the next.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// How long a stop waits for open requests to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// The connection bounds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnLimits {
    /// Most connections open at once.
    pub max: usize,
    /// Longest wait for a request head, also between requests on a kept-alive connection.
    pub idle: Duration,
}

fn too_many(max: usize) -> Response<Body> {
    let body = serde_json::json!({
        "error": format!("too many connections ({max} open, --max-connections): retry later")
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Serves `app` on `listener` until `stop` turns true, then stops accepting and lets open
/// requests finish (for at most [`DRAIN_TIMEOUT`]).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    hub: Arc<Hub>,
    mut stop: watch::Receiver<bool>,
) {
    let open = Arc::new(Semaphore::new(limits.max));
    let refusing = Arc::new(Semaphore::new(REFUSING_MAX));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.idle)
        .keep_alive(true);
    let mut refuse = http1::Builder::new();
    refuse
        .timer(TokioTimer::new())
        .header_read_timeout(REFUSE_READ_TIMEOUT)
        .keep_alive(false);
    let service = TowerToHyperService::new(app);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let io = TokioIo::new(stream);
        if let Ok(permit) = open.clone().try_acquire_owned() {
            let conn = graceful.watch(http.serve_connection(io, service.clone()));
            let hub = hub.clone();
            hub.metrics.connections_open.inc();
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                hub.metrics.connections_open.dec();
                drop(permit);
            });
            continue;
        }
        hub.metrics.connections_refused.inc();
        let Ok(permit) = refusing.clone().try_acquire_owned() else {
            continue; // dropped: closed at once
        };
        let max = limits.max;
        let answer = service_fn(move |_| async move { Ok::<_, Infallible>(too_many(max)) });
        let conn = refuse.serve_connection(io, answer);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("open requests did not finish in time; closing their connections");
    }
}
