//! The central logserver: every node reports its status here; the server keeps the ordered
//! activity log and each node's current state, serves the live `/status` page with its
//! "Block connections" form, a JSON API (documented in the repository README), `/healthz` and
//! `/metrics`, and checks the invariants on the reports as they arrive (`/api/violations`).
//!
//! "Accepted" means durable: a report is acknowledged only after the store committed it (many
//! requests share one commit). Sequence numbers are reserved in the store in the same commit,
//! so none is ever handed out twice, across crashes too. Everything is bounded: the queue, the
//! node table, the log (retention), connections, and the time a client may take.
//!
//! Modules, each using only those after it: this one (the server and router) → `api`, `page`
//! → `http` (state, errors, access checks) → `hub` (memory and the writer) → `store`,
//! `metrics`, `monitor` → `model`. `conn` accepts connections for this module.

mod api;
mod conn;
mod http;
mod hub;
mod metrics;
mod model;
mod monitor;
mod page;
mod store;
mod timeline;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::http::{Access, ApiError, AppState};
pub use model::{LogEntry, NodeDoc, NodeView};
pub use store::StoreError;

/// Largest request body accepted (a batch of about 4,000 reports).
const BODY_LIMIT: usize = 1024 * 1024;
/// Longest time one request may take in all (reading, waiting for its commit, answering).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// File descriptors kept free of connections (store, MongoDB pool, refusals, logs).
const FD_RESERVE: u64 = 160;
/// Allows nothing the page does not load from this server, and no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Command-line options of `election logserver`.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on. On any non-loopback address, changing blocks or
    /// forgetting nodes requires --admin-token; reading stays open.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// TCP port for the HTTP server (0 picks a free port).
    #[arg(long, default_value_t = 4711)]
    pub port: u16,
    /// A host name clients use for this server, accepted in the Host header of changes
    /// (repeatable; default: none, so only the bound IP — any IP on 0.0.0.0 — and, on
    /// loopback, localhost). Guards against DNS rebinding.
    #[arg(long = "public-host", value_name = "NAME")]
    pub public_hosts: Vec<String>,
    /// Store everything in MongoDB at this URI (e.g. mongodb://127.0.0.1:27017/election; the
    /// database is the URI's path, default "election") instead of the embedded store (default:
    /// embedded).
    #[arg(long, value_name = "URI")]
    pub mongodb: Option<String>,
    /// Directory of the embedded store, used when --mongodb is not given.
    #[arg(long, value_name = "DIR", default_value = "logserver-data")]
    pub data_dir: PathBuf,
    /// Secret required to change blocks or forget nodes when bound to a non-loopback address,
    /// sent as `Authorization: Bearer TOKEN` or the page's token field (default: none; also read
    /// from ELECTION_ADMIN_TOKEN).
    #[arg(long, env = "ELECTION_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Secret nodes must send (`election node --report-token`) to post reports (default: none,
    /// anyone may report; also read from ELECTION_REPORT_TOKEN).
    #[arg(long, env = "ELECTION_REPORT_TOKEN", hide_env_values = true)]
    pub report_token: Option<String>,
    /// Reports waiting for the store at most. When full, new reports get 503 until the store
    /// catches up; nothing already acknowledged is affected.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub queue_limit: usize,
    /// How long a request waits for its commit before it is answered 503 (not acknowledged).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub ack_timeout: Duration,
    /// Most nodes in the node table; reports from further new nodes get 503.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_nodes: usize,
    /// A node silent this long leaves the node table (its log entries stay).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    pub forget_after: Duration,
    /// Log entries older than this are deleted, in the background.
    #[arg(long, value_name = "DURATION", default_value = "7days", value_parser = humantime::parse_duration)]
    pub retain: Duration,
    /// At most this many of the newest log entries (by sequence number) are kept.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub retain_entries: u64,
    /// Most open connections (default 4096, and always below the open-file limit, which the
    /// server raises to its hard limit at start); beyond it connections get 503.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_connections: usize,
    /// Longest wait for a request's headers, also between requests on a kept-alive connection.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// Longest time a client may take to send a request body.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub body_timeout: Duration,
}

impl ServeArgs {
    /// Defaults as on the command line, with the given port and embedded-store directory.
    pub fn new(port: u16, data_dir: impl Into<PathBuf>) -> Self {
        ServeArgs {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            public_hosts: Vec::new(),
            mongodb: None,
            data_dir: data_dir.into(),
            admin_token: None,
            report_token: None,
            queue_limit: 100_000,
            ack_timeout: Duration::from_secs(5),
            max_nodes: 4096,
            forget_after: Duration::from_secs(600),
            retain: Duration::from_secs(7 * 86_400),
            retain_entries: 1_000_000,
            max_connections: 4096,
            idle_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
        }
    }

    fn store_name(&self) -> &'static str {
        match &self.mongodb {
            Some(_) => "mongodb",
            None => "embedded",
        }
    }

    fn check(&self) -> Result<(), Error> {
        let positive = [
            ("--queue-limit", self.queue_limit as u64),
            ("--max-nodes", self.max_nodes as u64),
            ("--retain-entries", self.retain_entries),
            ("--max-connections", self.max_connections as u64),
        ];
        let durations = [
            ("--ack-timeout", self.ack_timeout),
            ("--forget-after", self.forget_after),
            ("--retain", self.retain),
            ("--idle-timeout", self.idle_timeout),
            ("--body-timeout", self.body_timeout),
        ];
        let zero = positive
            .iter()
            .find(|(_, v)| *v == 0)
            .map(|(f, _)| *f)
            .or_else(|| durations.iter().find(|(_, d)| d.is_zero()).map(|(f, _)| *f));
        match zero {
            Some(flag) => Err(Error::Flag {
                flag,
                problem: "must be more than 0".to_string(),
            }),
            None => Ok(()),
        }
    }
}

/// Why the logserver could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The store could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A flag has a value that cannot work.
    #[error("{flag}: {problem}")]
    Flag {
        /// The flag, e.g. `--queue-limit`.
        flag: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// Waiting for SIGINT or SIGTERM, or drawing a random token, failed.
    #[error("{what}: {source}")]
    Os {
        /// What was being done.
        what: &'static str,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

/// A running logserver: its address, and a way to stop it cleanly.
pub struct Server {
    local_addr: SocketAddr,
    hub: Arc<hub::Hub>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// Raises the soft open-file limit to the hard one, and returns the connection cap that
/// stays below it.
fn connection_cap(asked: usize) -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let soft = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard))
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() =>
        {
            hard
        }
        Ok((soft, _)) => soft,
        Err(_) => return asked,
    };
    let room = usize::try_from(soft.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
    let cap = asked.min(room).max(1);
    if cap < asked {
        tracing::info!(
            cap,
            open_file_limit = soft,
            "--max-connections lowered to stay below the open-file limit"
        );
    }
    cap
}

/// All routes with their limits and headers.
fn router(state: AppState, body_timeout: Duration) -> Router {
    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    Router::new()
        .merge(api::routes())
        .merge(page::routes())
        .merge(timeline::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such page or endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this method is not allowed here (see the API documentation)",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::same_site,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        // A page may bring its own, stricter-fitting policy (/timeline's inline hashes).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Not `no-referrer`: with it Chromium sends `Origin: null` on the page's own form posts.
        .layer(header(header::REFERRER_POLICY, "same-origin"))
        .with_state(state)
}

impl Server {
    /// Opens the store, loads what it holds, binds the socket and starts serving in the
    /// background.
    pub async fn start(args: ServeArgs) -> Result<Server, Error> {
        args.check()?;
        let store = store::open(args.mongodb.as_deref(), &args.data_dir).await?;
        let snapshot = store.load(hub::LOG_MEMORY).await?;
        let next_seq = snapshot.next_seq;
        let addr = SocketAddr::new(args.bind, args.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        if !args.bind.is_loopback() && args.admin_token.is_none() {
            tracing::warn!(
                %local_addr,
                "bound to a non-loopback address without --admin-token: blocks cannot be changed"
            );
        }
        let limits = hub::Limits {
            queue_limit: args.queue_limit,
            max_nodes: args.max_nodes,
            forget_after: args.forget_after,
            retain: args.retain,
            retain_entries: args.retain_entries,
            ack_timeout: args.ack_timeout,
        };
        let hub = Arc::new(hub::Hub::new(snapshot, limits));
        let access = Access {
            bind: args.bind,
            public_hosts: args.public_hosts.clone(),
            admin_token: args.admin_token.clone(),
            report_token: args.report_token.clone(),
            form_token: http::random_token().map_err(|source| Error::Os {
                what: "cannot draw the form token",
                source,
            })?,
        };
        let state = AppState {
            hub: hub.clone(),
            access: Arc::new(access),
            store: args.store_name(),
        };
        let app = router(state, args.body_timeout);
        let conn_limits = conn::ConnLimits {
            max: connection_cap(args.max_connections),
            idle: args.idle_timeout,
        };
        let (stop, stopped) = watch::channel(false);
        let (writer_stop, writer_stopped) = watch::channel(false);
        let writer = tokio::spawn(hub::run_writer(
            hub.clone(),
            store,
            next_seq,
            writer_stopped,
        ));
        let serving = hub.clone();
        let task = tokio::spawn(async move {
            conn::serve(listener, app, conn_limits, serving, stopped).await;
            // Open requests have finished (their reports are committed); now drain the rest.
            let _ = writer_stop.send(true);
            let _ = writer.await;
            tracing::info!("logserver stopped");
        });
        tracing::info!(%local_addr, store = args.store_name(), "logserver listening");
        Ok(Server {
            local_addr,
            hub,
            stop,
            task,
        })
    }

    /// The address the server listens on (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Every node as `GET /api/nodes` shows it, read in-process.
    pub fn nodes(&self) -> Vec<NodeView> {
        self.hub.views()
    }

    /// Replaces the blocked links, as `PUT /api/blocks` does, once committed; returns them
    /// sorted. For drivers running the server in-process (`election chaos`).
    pub async fn set_blocks(
        &self,
        links: Vec<election_core::report::BlockedLink>,
    ) -> Result<Vec<election_core::report::BlockedLink>, String> {
        let links = model::check_links(links)?;
        self.hub.set_blocks(links).await.map_err(|e| e.to_string())
    }

    /// The committed log entries (at most the newest 100,000 kept in memory) that arrived at
    /// `from_ms` or later, in log order.
    pub fn entries_since(&self, from_ms: u64) -> Vec<LogEntry> {
        self.hub.entries_from(from_ms, None, hub::LOG_MEMORY)
    }

    /// The run `/timeline` draws, from `from_ms` to now: the same statuses, silences and block
    /// changes, ready for `election_view::render_spacetime`.
    pub fn run_since(&self, from_ms: u64) -> election_view::Run {
        let entries = self.entries_since(from_ms);
        timeline::run_of(
            &entries,
            &self.hub.block_changes(from_ms),
            from_ms,
            model::now_ms(),
        )
    }

    /// Stops accepting connections, lets open requests finish (their reports are committed),
    /// writes whatever is still queued and closes the store.
    pub async fn shutdown(self) -> Result<(), Error> {
        let _ = self.stop.send(true);
        self.task.await.map_err(|join| Error::Os {
            what: "the server task failed",
            source: std::io::Error::other(join),
        })
    }
}

/// A future that resolves at the first SIGINT or SIGTERM; the handlers are installed before it
/// returns, so an early signal is not lost.
fn stop_signal() -> Result<impl Future<Output = &'static str>, Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let install = |kind| {
        signal(kind).map_err(|source| Error::Os {
            what: "cannot install signal handler",
            source,
        })
    };
    let mut term = install(SignalKind::terminate())?;
    let mut int = install(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

/// Runs the logserver until SIGINT (Ctrl-C) or SIGTERM, then shuts down cleanly (see
/// [`Server::shutdown`]).
pub async fn serve(args: ServeArgs) -> Result<(), Error> {
    let stop = stop_signal()?;
    let server = Server::start(args).await?;
    let signal = stop.await;
    tracing::info!(signal, "shutting down");
    server.shutdown().await
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServeArgs,
    }

    #[test]
    fn command_line_defaults_match_new() {
        let parsed = Cli::parse_from(["logserver"]).args;
        let new = ServeArgs::new(4711, "logserver-data");
        assert_eq!(format!("{parsed:?}"), format!("{new:?}"));
        let parsed = Cli::try_parse_from([
            "logserver",
            "--bind",
            "0.0.0.0",
            "--port",
            "80",
            "--forget-after",
            "90s",
            "--public-host",
            "a",
            "--public-host",
            "b",
        ])
        .unwrap()
        .args;
        assert_eq!(
            (parsed.bind.to_string(), parsed.port),
            ("0.0.0.0".into(), 80)
        );
        assert_eq!(parsed.forget_after, Duration::from_secs(90));
        assert_eq!(parsed.public_hosts, ["a", "b"]);
        assert!(Cli::try_parse_from(["logserver", "--bind", "localhost:1"]).is_err());
        assert!(Cli::try_parse_from(["logserver", "--retain", "soon"]).is_err());
    }

    #[test]
    fn zero_bounds_are_refused_by_flag() {
        let mut args = ServeArgs::new(0, "x");
        args.retain_entries = 0;
        assert!(
            args.check()
                .unwrap_err()
                .to_string()
                .starts_with("--retain-entries")
        );
        let mut args = ServeArgs::new(0, "x");
        args.idle_timeout = Duration::ZERO;
        assert!(
            args.check()
                .unwrap_err()
                .to_string()
                .starts_with("--idle-timeout")
        );
        assert!(ServeArgs::new(0, "x").check().is_ok());
    }

    #[test]
    fn help_states_every_default() {
        let help = Cli::command().render_long_help().to_string();
        for default in [
            "127.0.0.1",
            "4711",
            "logserver-data",
            "ELECTION_ADMIN_TOKEN",
            "ELECTION_REPORT_TOKEN",
            "100000",
            "[default: 5s]",
            "[default: 4096]",
            "[default: 10m]",
            "[default: 7days]",
            "[default: 1000000]",
            "[default: 10s]",
        ] {
            assert!(help.contains(default), "--help lacks {default}:\n{help}");
        }
    }
}
