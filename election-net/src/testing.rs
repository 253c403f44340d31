//! A stand-in logserver for unit tests: it records reports and answers with a settable list of
//! blocked links.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use election_core::report::{BlockedLink, NodeReport, ReportBatch, ReportReply};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::time::Instant;

/// Reports seen and blocks to hand out, shared with the serving task.
#[derive(Clone, Default)]
pub struct FakeLogserver {
    pub seen: Arc<Mutex<Vec<NodeReport>>>,
    pub blocked: Arc<Mutex<Vec<BlockedLink>>>,
    /// How many of the next batches to refuse with 400 Bad Request, unrecorded.
    pub reject: Arc<Mutex<usize>>,
    /// The `Authorization` header of every request (empty when absent).
    pub auth: Arc<Mutex<Vec<String>>>,
}

impl FakeLogserver {
    /// Serves on `listener` in a background task.
    pub fn serve(&self, listener: TcpListener) {
        let state = self.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        async move {
                            assert_eq!(req.uri().path(), "/api/reports");
                            let auth = req
                                .headers()
                                .get(hyper::header::AUTHORIZATION)
                                .map(|v| v.to_str().unwrap().to_string());
                            state.auth.lock().unwrap().push(auth.unwrap_or_default());
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let refuse = {
                                let mut reject = state.reject.lock().unwrap();
                                let refuse = *reject > 0;
                                *reject = reject.saturating_sub(1);
                                refuse
                            };
                            if refuse {
                                let mut refused = Response::new(Full::new(Bytes::from(
                                    r#"{"error":"reports[0].coordinator: invalid address"}"#,
                                )));
                                *refused.status_mut() = hyper::StatusCode::BAD_REQUEST;
                                return Ok(refused);
                            }
                            let batch: ReportBatch = serde_json::from_slice(&body).unwrap();
                            let accepted = batch.reports.len();
                            state.seen.lock().unwrap().extend(batch.reports);
                            let blocked = state.blocked.lock().unwrap().clone();
                            let reply = ReportReply { accepted, blocked };
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(
                                serde_json::to_vec(&reply).unwrap(),
                            ))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    }

    /// Starts on a free loopback port.
    pub async fn start() -> (FakeLogserver, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = FakeLogserver::default();
        server.serve(listener);
        (server, addr)
    }

    /// The last report of `addr`.
    pub fn latest(&self, addr: SocketAddr) -> Option<NodeReport> {
        let addr = addr.to_string();
        self.seen
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|r| r.addr == addr)
            .cloned()
    }

    /// Waits until `what` holds for the reports, panicking with `goal` after 20 s.
    pub async fn wait_for(&self, goal: &str, what: impl Fn(&FakeLogserver) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !what(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {goal}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
