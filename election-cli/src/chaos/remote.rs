//! A logserver the campaign attaches to, over its HTTP API: the node table (`/api/nodes`), the
//! blocks (`/api/blocks`, with the admin token when the server needs one), the log
//! (`/api/log`, paged by sequence number) and the space-time picture (`/timeline`).

use std::time::Duration;

use anyhow::{Context as _, bail};
use election_core::report::BlockedLink;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use logserver::{LogEntry, NodeView};
use serde::de::DeserializeOwned;

/// Longest a request may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read (a page of 10,000 log entries is a few MB).
const BODY_LIMIT: usize = 64 << 20;
/// Log entries asked for per request: the API's most.
const PAGE: usize = 10_000;

/// A logserver reached over HTTP.
pub struct Remote {
    /// `host:port`.
    addr: String,
    token: Option<String>,
    client: Client<HttpConnector, Full<Bytes>>,
    /// The last log entry before the campaign: its log is read from the next one on.
    before: Option<u64>,
}

impl Remote {
    /// Connects to the logserver at `addr` (`host:port`, or `http://host:port`) and notes where
    /// its log ends now.
    pub async fn connect(addr: &str, token: Option<String>) -> anyhow::Result<Remote> {
        let addr = addr
            .strip_prefix("http://")
            .unwrap_or(addr)
            .trim_end_matches('/')
            .to_string();
        if format!("http://{addr}/").parse::<hyper::Uri>().is_err() || !addr.contains(':') {
            bail!("--logserver {addr:?}: expected host:port (e.g. 127.0.0.1:4711)");
        }
        let mut remote = Remote {
            addr,
            token,
            client: Client::builder(TokioExecutor::new()).build_http(),
            before: None,
        };
        remote.before = remote.last_seq().await?;
        Ok(remote)
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Bytes> {
        let uri = format!("http://{}{path}", self.addr);
        let mut request = Request::builder().method(method.clone()).uri(&uri);
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            let body = Limited::new(response.into_body(), BODY_LIMIT)
                .collect()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .to_bytes();
            if !status.is_success() {
                bail!("HTTP {status}: {}", String::from_utf8_lossy(&body).trim());
            }
            Ok(body)
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {TIMEOUT:?}")))
            .with_context(|| format!("the logserver at {}: {method} {path}", self.addr))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let body = self.request(Method::GET, path, None).await?;
        serde_json::from_slice(&body).with_context(|| {
            format!(
                "the logserver at {}: GET {path}: not the expected JSON",
                self.addr
            )
        })
    }

    /// The node table.
    pub async fn nodes(&self) -> anyhow::Result<Vec<NodeView>> {
        self.get("/api/nodes").await
    }

    /// The blocked links.
    pub async fn blocks(&self) -> anyhow::Result<Vec<BlockedLink>> {
        self.get("/api/blocks").await
    }

    /// Replaces the blocked links.
    pub async fn set_blocks(&self, links: &[BlockedLink]) -> anyhow::Result<()> {
        let body = serde_json::to_vec(links)?;
        self.request(Method::PUT, "/api/blocks", Some(body))
            .await
            .context("(a logserver on a non-loopback address needs --admin-token or ELECTION_ADMIN_TOKEN)")?;
        Ok(())
    }

    /// Pages through the log after entry `since`; returns the entries kept by `keep`, and the
    /// last sequence number seen.
    async fn pages(
        &self,
        mut since: Option<u64>,
        mut keep: impl FnMut(LogEntry),
    ) -> anyhow::Result<Option<u64>> {
        loop {
            let path = match since {
                Some(s) => format!("/api/log?since={s}&limit={PAGE}"),
                None => format!("/api/log?limit={PAGE}"),
            };
            let page: Vec<LogEntry> = self.get(&path).await?;
            let full = page.len() == PAGE;
            for e in page {
                since = Some(e.seq);
                keep(e);
            }
            if !full {
                return Ok(since);
            }
        }
    }

    async fn last_seq(&self) -> anyhow::Result<Option<u64>> {
        self.pages(None, |_| {}).await
    }

    /// The log entries written since [`Remote::connect`] that arrived at `from_ms` or later.
    pub async fn entries_since(&self, from_ms: u64) -> anyhow::Result<Vec<LogEntry>> {
        let mut entries = Vec::new();
        self.pages(self.before, |e| {
            if e.server_time_ms >= from_ms {
                entries.push(e);
            }
        })
        .await?;
        Ok(entries)
    }

    /// The logserver's space-time picture of the last `seconds` (at most an hour).
    pub async fn timeline(&self, seconds: u64) -> anyhow::Result<String> {
        let path = format!("/timeline?seconds={}", seconds.clamp(1, 3600));
        let body = self.request(Method::GET, &path, None).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}
