//! Reporting to the logserver, in a task of its own so the election loop never waits for HTTP.
//!
//! The node hands reports over a bounded channel without waiting (a full channel drops the
//! report and counts it). The task batches them, posts `POST /api/reports`, retries failures with
//! exponential backoff while keeping a bounded queue (oldest dropped first), sends a heartbeat
//! when nothing else was posted for a period, and publishes the blocked links from every answer.
//! When the logserver cannot be reached or refuses the reports, it warns once, then at most once
//! a minute while that lasts, and says when reports get through again.
//!
//! With `--report-messages` the node also hands over each protocol message it sends or
//! receives, over a channel of its own (so messages never crowd out status reports). The task
//! keeps at most [`MESSAGE_BUFFER`] of them (the oldest go first when it is full, and every
//! record lost on the way, here or on a full channel, is counted in `messages_dropped`) and
//! attaches at most [`MESSAGES_PER_REPORT`] to the report it posts next — a status change or the
//! periodic heartbeat — so messages are batched and rate-limited with the status reports.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use election_core::report::{
    BlockedLink, MessageReport, NodeReport, ReportBatch, ReportEvent, ReportReply,
};
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::Error;

/// Reports kept while the logserver is unreachable.
const QUEUE_LIMIT: usize = 1024;
/// Reports per request.
const BATCH_LIMIT: usize = 256;
/// Message records kept for the next reports.
pub const MESSAGE_BUFFER: usize = 4096;
/// Message records one report carries at most (the logserver accepts no more).
pub const MESSAGES_PER_REPORT: usize = election_core::report::MAX_MESSAGES_PER_REPORT;
/// Limit on one HTTP exchange, so a hung logserver cannot stall reporting forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest accepted answer body.
const REPLY_LIMIT: usize = 1 << 20;
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// While reporting keeps failing, at most one warning per this period.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The node's side of the reporter.
pub struct Reporter {
    tx: mpsc::Sender<NodeReport>,
    messages: mpsc::Sender<MessageReport>,
    task: JoinHandle<()>,
    dropped: u64,
    /// Message records lost (full channel or full buffer), shared with the task.
    lost: Arc<AtomicU64>,
}

/// The `http://host:port/api/reports` URI of `--logserver host:port`.
pub fn reports_uri(logserver: &str) -> Result<hyper::Uri, Error> {
    let bad = |problem: String| Error::Flag {
        flag: "--logserver",
        problem,
    };
    if logserver.contains('/') {
        return Err(bad(format!("expected host:port, got {logserver:?}")));
    }
    let uri: hyper::Uri = format!("http://{logserver}/api/reports")
        .parse()
        .map_err(|e| bad(format!("{logserver:?} is not host:port ({e})")))?;
    if uri.port_u16().is_none() {
        return Err(bad(format!("{logserver:?} has no port")));
    }
    Ok(uri)
}

impl Reporter {
    /// Starts the reporting task. `token` (from `--report-token`) goes with every request as
    /// `Authorization: Bearer TOKEN`; `now_us` reads the node's clock (for heartbeat reports);
    /// the blocked links of every answer go to `blocked`.
    pub fn spawn(
        uri: hyper::Uri,
        token: Option<String>,
        every: Duration,
        now_us: impl Fn() -> u64 + Send + 'static,
        blocked: watch::Sender<Vec<BlockedLink>>,
    ) -> Reporter {
        let (tx, rx) = mpsc::channel(QUEUE_LIMIT);
        let (messages, messages_rx) = mpsc::channel(MESSAGE_BUFFER);
        let lost = Arc::new(AtomicU64::new(0));
        let target = Target { uri, token };
        let inbox = Inbox {
            reports: rx,
            messages: messages_rx,
            lost: lost.clone(),
        };
        let task = tokio::spawn(run(inbox, target, every, now_us, blocked));
        Reporter {
            tx,
            messages,
            task,
            dropped: 0,
            lost,
        }
    }

    /// Queues a message record without waiting; a full channel loses it (counted).
    pub fn message(&mut self, message: MessageReport) {
        if self.messages.try_send(message).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues a report without waiting.
    pub fn send(&mut self, report: NodeReport) {
        if self.tx.try_send(report).is_err() {
            self.dropped += 1;
        }
    }

    /// Stops accepting reports and gives the task up to `grace` to deliver what is queued.
    pub async fn finish(self, grace: Duration) {
        if self.dropped > 0 {
            tracing::debug!(dropped = self.dropped, "reports dropped on a full queue");
        }
        drop(self.tx);
        drop(self.messages);
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// Where reports go, and the token they carry.
struct Target {
    uri: hyper::Uri,
    token: Option<String>,
}

/// Warns when reporting fails: at the first failure, then at most every [`WARN_EVERY`].
#[derive(Default)]
struct Complaints {
    last: Option<Instant>,
    failures: u64,
}

impl Complaints {
    /// Counts a failure at `now`; returns whether it warned.
    fn failed(&mut self, now: Instant, uri: &hyper::Uri, failure: &Failure, queued: usize) -> bool {
        self.failures += 1;
        if self.last.is_some_and(|at| now < at + WARN_EVERY) {
            return false;
        }
        self.last = Some(now);
        let failures = self.failures;
        match failure {
            Failure::Rejected(problem) => tracing::warn!(%uri, %problem, failures,
                "the logserver refuses this node's reports (they are dropped)"),
            Failure::Unavailable(problem) => tracing::warn!(%uri, %problem, failures, queued,
                "cannot reach the logserver; reports are queued and retried"),
        }
        true
    }

    fn succeeded(&mut self, uri: &hyper::Uri) {
        if self.last.take().is_some() {
            tracing::info!(%uri, failures = self.failures, "reports reach the logserver again");
        }
        self.failures = 0;
    }
}

/// What the task receives from the node.
struct Inbox {
    reports: mpsc::Receiver<NodeReport>,
    messages: mpsc::Receiver<MessageReport>,
    lost: Arc<AtomicU64>,
}

/// Message records waiting for a report; the oldest go first when it is full.
#[derive(Default)]
struct Messages {
    items: VecDeque<MessageReport>,
}

impl Messages {
    fn push(&mut self, message: MessageReport, lost: &AtomicU64) {
        if self.items.len() == MESSAGE_BUFFER {
            self.items.pop_front();
            lost.fetch_add(1, Ordering::Relaxed);
        }
        self.items.push_back(message);
    }

    /// Moves the oldest records (at most [`MESSAGES_PER_REPORT`]) onto `report`, unless it
    /// carries some already (a retried report keeps its own).
    fn attach(&mut self, report: &mut NodeReport, lost: &AtomicU64) {
        if report.messages.is_empty() {
            let n = self.items.len().min(MESSAGES_PER_REPORT);
            report.messages = self.items.drain(..n).collect();
        }
        report.messages_dropped = lost.load(Ordering::Relaxed);
    }
}

async fn run(
    inbox: Inbox,
    target: Target,
    every: Duration,
    now_us: impl Fn() -> u64,
    blocked: watch::Sender<Vec<BlockedLink>>,
) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let Inbox {
        reports: mut rx,
        messages: mut messages_rx,
        lost,
    } = inbox;
    let mut messages = Messages::default();
    let mut messages_open = true;
    let mut pending = Queue::default();
    let mut complaints = Complaints::default();
    let mut last: Option<NodeReport> = None;
    let mut backoff = Duration::ZERO;
    let mut retry_at = Instant::now();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let mut open = true;
        tokio::select! {
            report = rx.recv() => match report {
                Some(report) => {
                    last = Some(report.clone());
                    pending.push(report);
                }
                None => open = false,
            },
            message = messages_rx.recv(), if messages_open => match message {
                Some(message) => messages.push(message, &lost),
                None => messages_open = false,
            },
            _ = tick.tick() => {
                if let (true, Some(last)) = (pending.items.is_empty(), &last) {
                    pending.push(NodeReport {
                        event: ReportEvent::Heartbeat,
                        node_time_us: now_us(),
                        messages: Vec::new(),
                        ..last.clone()
                    });
                }
            }
        }
        while let Ok(report) = rx.try_recv() {
            last = Some(report.clone());
            pending.push(report);
        }
        if pending.items.is_empty() || (open && Instant::now() < retry_at) {
            if open {
                continue;
            }
            return;
        }
        while let Ok(message) = messages_rx.try_recv() {
            messages.push(message, &lost);
        }
        let n = pending.items.len().min(BATCH_LIMIT);
        messages.attach(&mut pending.items[n - 1], &lost);
        let batch = ReportBatch {
            reports: pending.items.range(..n).cloned().collect(),
        };
        let uri = &target.uri;
        match post(&client, &target, &batch).await {
            Ok(reply) => {
                pending.items.drain(..n);
                backoff = Duration::ZERO;
                complaints.succeeded(uri);
                blocked.send_if_modified(|links| {
                    let changed = *links != reply.blocked;
                    *links = reply.blocked;
                    changed
                });
            }
            Err(failure @ Failure::Rejected(_)) => {
                // The logserver will refuse these reports however often they are sent; keeping
                // them would block every later report behind them.
                pending.items.drain(..n);
                let _ = complaints.failed(Instant::now(), uri, &failure, pending.items.len());
            }
            Err(failure @ Failure::Unavailable(_)) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(100), MAX_BACKOFF);
                retry_at = Instant::now() + backoff;
                let _ = complaints.failed(Instant::now(), uri, &failure, pending.items.len());
                tracing::debug!(%uri, ?failure, ?backoff, queued = pending.items.len(),
                    dropped = pending.dropped,
                    "report failed, will retry");
            }
        }
        if !open {
            // The node is leaving: one last attempt was made; don't linger.
            return;
        }
    }
}

/// Reports waiting to be posted; the oldest go first when it is full.
#[derive(Default)]
struct Queue {
    items: VecDeque<NodeReport>,
    dropped: u64,
}

impl Queue {
    fn push(&mut self, report: NodeReport) {
        if self.items.len() == QUEUE_LIMIT {
            self.items.pop_front();
            self.dropped += 1;
        }
        self.items.push_back(report);
    }
}

/// Why a batch was not taken.
#[derive(Debug)]
enum Failure {
    /// The logserver answered that the batch itself is invalid (a 4xx other than 408/429):
    /// sending it again cannot help.
    Rejected(String),
    /// Not reachable, timed out, overloaded or broken: worth retrying later.
    Unavailable(String),
}

async fn post(
    client: &Client<HttpConnector, Full<Bytes>>,
    target: &Target,
    batch: &ReportBatch,
) -> Result<ReportReply, Failure> {
    let unavailable = |e: &dyn std::fmt::Display| Failure::Unavailable(e.to_string());
    let body = serde_json::to_vec(batch).map_err(|e| Failure::Rejected(e.to_string()))?;
    let mut request = Request::post(target.uri.clone()).header(CONTENT_TYPE, "application/json");
    if let Some(token) = &target.token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| Failure::Rejected(e.to_string()))?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| unavailable(&e))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), REPLY_LIMIT)
            .collect()
            .await
            .map_err(|e| unavailable(&e))?
            .to_bytes();
        if !status.is_success() {
            let problem = format!("HTTP {status}: {}", String::from_utf8_lossy(&body));
            let retryable = !status.is_client_error()
                || status == hyper::StatusCode::REQUEST_TIMEOUT
                || status == hyper::StatusCode::TOO_MANY_REQUESTS;
            return Err(if retryable {
                Failure::Unavailable(problem)
            } else {
                Failure::Rejected(problem)
            });
        }
        serde_json::from_slice(&body).map_err(|e| unavailable(&format!("bad reply: {e}")))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| Failure::Unavailable("timed out".to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeLogserver;
    use election_core::State;
    use tokio::net::TcpListener;

    fn report(event: ReportEvent) -> NodeReport {
        NodeReport {
            addr: "127.0.0.1:9000".into(),
            algorithm: "bully".into(),
            event,
            state: State::Normal,
            coordinator: Some("127.0.0.1:9000".into()),
            group: None,
            incarnation: None,
            term: None,
            phase: "Normal".into(),
            node_time_us: 1,
            heartbeat_ms: 50,
            pid: 42,
            drops: Default::default(),
            messages: Vec::new(),
            messages_dropped: 0,
        }
    }

    #[tokio::test]
    async fn reports_heartbeats_blocks_and_retries_after_the_server_appears() {
        // Reserve a port, then leave it closed so the first posts fail.
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let uri = reports_uri(&format!("127.0.0.1:{port}")).unwrap();
        let (blocked_tx, mut blocked_rx) = watch::channel(Vec::new());
        let mut reporter = Reporter::spawn(
            uri,
            Some("t0ken".into()),
            Duration::from_millis(30),
            || 99,
            blocked_tx,
        );
        reporter.send(report(ReportEvent::Started));
        reporter.send(report(ReportEvent::Status));
        tokio::time::sleep(Duration::from_millis(150)).await;

        let server = FakeLogserver::default();
        let link = BlockedLink {
            from: "127.0.0.1:1".into(),
            to: "127.0.0.1:2".into(),
        };
        server.blocked.lock().unwrap().push(link.clone());
        server.serve(TcpListener::bind(("127.0.0.1", port)).await.unwrap());
        let seen_event = |event| {
            move |s: &FakeLogserver| s.seen.lock().unwrap().iter().any(|r| r.event == event)
        };
        server
            .wait_for("a heartbeat", seen_event(ReportEvent::Heartbeat))
            .await;
        {
            let seen = server.seen.lock().unwrap();
            assert_eq!(
                seen[0].event,
                ReportEvent::Started,
                "queued reports kept their order"
            );
            assert_eq!(seen[1].event, ReportEvent::Status);
            let beat = seen
                .iter()
                .find(|r| r.event == ReportEvent::Heartbeat)
                .unwrap();
            assert_eq!(
                beat.node_time_us, 99,
                "heartbeats carry the current node time"
            );
        }
        blocked_rx
            .wait_for(|links| *links == [link.clone()])
            .await
            .unwrap();
        assert!(
            server
                .auth
                .lock()
                .unwrap()
                .iter()
                .all(|a| a == "Bearer t0ken"),
            "every request carries the report token"
        );

        reporter.send(report(ReportEvent::Left));
        reporter.finish(Duration::from_secs(5)).await;
        server
            .wait_for("the left report", seen_event(ReportEvent::Left))
            .await;
    }

    #[tokio::test]
    async fn a_batch_the_logserver_rejects_is_dropped_not_retried() {
        let (server, addr) = FakeLogserver::start().await;
        *server.reject.lock().unwrap() = 1;
        let uri = reports_uri(&addr.to_string()).unwrap();
        let (blocked_tx, _blocked_rx) = watch::channel(Vec::new());
        let mut reporter = Reporter::spawn(uri, None, Duration::from_millis(20), || 7, blocked_tx);
        reporter.send(report(ReportEvent::Started));
        server
            .wait_for("the rejection", |s| *s.reject.lock().unwrap() == 0)
            .await;
        reporter.send(report(ReportEvent::Status));
        server
            .wait_for("the status report", |s| {
                s.seen
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|r| r.event == ReportEvent::Status)
            })
            .await;
        let seen = server.seen.lock().unwrap();
        assert!(
            seen.iter().all(|r| r.event != ReportEvent::Started),
            "the rejected report was sent again: {seen:?}"
        );
    }

    #[test]
    fn failures_warn_once_then_every_minute_until_reports_get_through() {
        let uri = reports_uri("127.0.0.1:1").unwrap();
        let down = Failure::Unavailable("connection refused".into());
        let refused = Failure::Rejected("HTTP 401".into());
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mut c = Complaints::default();
        assert!(c.failed(at(0), &uri, &down, 1), "the first failure warns");
        assert!(!c.failed(at(30), &uri, &down, 2), "quiet within the minute");
        assert!(!c.failed(at(59), &uri, &refused, 2), "whatever the failure");
        assert!(
            c.failed(at(61), &uri, &refused, 2),
            "warns again after a minute"
        );
        assert!(!c.failed(at(62), &uri, &down, 2));
        c.succeeded(&uri);
        assert!(
            c.failed(at(63), &uri, &down, 1),
            "a new episode warns at once"
        );
    }

    #[test]
    fn logserver_flag_is_checked() {
        assert_eq!(
            reports_uri("localhost:4711").unwrap().to_string(),
            "http://localhost:4711/api/reports"
        );
        for bad in ["localhost", "http://x:1", "a b:1", ""] {
            let err = reports_uri(bad).unwrap_err().to_string();
            assert!(err.starts_with("--logserver"), "{bad:?}: {err}");
        }
    }
}
