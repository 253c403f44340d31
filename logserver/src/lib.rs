//! The central logserver: every node reports its status here; the server keeps the ordered
//! activity log and each node's current state, serves the live `/status` page with its
//! "Block connections" form, and a JSON API (documented in the repository README).
//!
//! Requests only touch memory: reports update the in-memory node table and log and join a
//! bounded queue that a background task writes to the store (embedded redb by default, MongoDB
//! with `--mongodb`). A slow or absent database therefore never slows down ingest; when the queue
//! is full, new reports are refused with 503 instead of dropping anything already accepted.

mod api;
mod hub;
mod model;
mod page;
mod store;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use model::{LogEntry, NodeDoc, NodeView};
pub use store::StoreError;

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
    /// Reports held in memory waiting for the store. When full, new reports get 503 until the
    /// store catches up; nothing already accepted is dropped.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub queue_limit: usize,
}

impl ServeArgs {
    /// Defaults as on the command line, with the given port and embedded-store directory.
    pub fn new(port: u16, data_dir: impl Into<PathBuf>) -> Self {
        ServeArgs {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            mongodb: None,
            data_dir: data_dir.into(),
            admin_token: None,
            queue_limit: 100_000,
        }
    }

    fn store_name(&self) -> String {
        match &self.mongodb {
            Some(_) => "mongodb".to_string(),
            None => format!("embedded ({})", self.data_dir.display()),
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
    /// `--queue-limit 0` would refuse every report.
    #[error("--queue-limit must be at least 1")]
    QueueLimit,
    /// The HTTP server failed while running.
    #[error("HTTP server: {0}")]
    Serve(std::io::Error),
    /// Waiting for Ctrl-C failed.
    #[error("cannot wait for Ctrl-C: {0}")]
    Signal(std::io::Error),
}

/// A running logserver: its address, and a way to stop it cleanly.
pub struct Server {
    local_addr: SocketAddr,
    hub: Arc<hub::Hub>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), Error>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Opens the store, loads what it holds, binds the socket and starts serving in the
    /// background.
    pub async fn start(args: ServeArgs) -> Result<Server, Error> {
        if args.queue_limit == 0 {
            return Err(Error::QueueLimit);
        }
        let store = store::open(&args).await?;
        let snapshot = store.load(hub::LOG_MEMORY).await?;
        let addr = SocketAddr::new(args.bind, args.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        let token_required = !args.bind.is_loopback();
        if token_required && args.admin_token.is_none() {
            tracing::warn!(
                %local_addr,
                "bound to a non-loopback address without --admin-token: blocks cannot be changed"
            );
        }
        let hub = Arc::new(hub::Hub::new(snapshot, args.queue_limit));
        let access = api::Access {
            token_required,
            token: args.admin_token.clone(),
        };
        let app = api::router(hub.clone(), access);
        let (stop, stopped) = watch::channel(false);
        let writer = tokio::spawn(hub::run_writer(hub.clone(), store, stopped.clone()));
        let task = tokio::spawn(async move {
            let mut stopped = stopped;
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // Either a stop request or the handle being dropped ends serving.
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await;
            // The writer drains the queue once the HTTP side no longer accepts reports.
            let _ = writer.await;
            tracing::info!("logserver stopped");
            served.map_err(Error::Serve)
        });
        tracing::info!(%local_addr, store = %args.store_name(), "logserver listening");
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

    /// Stops accepting connections, finishes open requests, writes every queued report to the
    /// store and closes it.
    pub async fn shutdown(self) -> Result<(), Error> {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(result) => result,
            Err(join) => Err(Error::Serve(std::io::Error::other(join))),
        }
    }
}

/// Runs the logserver until Ctrl-C, then shuts down cleanly (see [`Server::shutdown`]).
pub async fn serve(args: ServeArgs) -> Result<(), Error> {
    let server = Server::start(args).await?;
    tokio::signal::ctrl_c().await.map_err(Error::Signal)?;
    tracing::info!("Ctrl-C: shutting down");
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
        let parsed = Cli::try_parse_from(["logserver", "--bind", "0.0.0.0", "--port", "80"])
            .unwrap()
            .args;
        assert_eq!(
            (parsed.bind.to_string(), parsed.port),
            ("0.0.0.0".into(), 80)
        );
        assert!(Cli::try_parse_from(["logserver", "--bind", "localhost:1"]).is_err());
    }

    #[test]
    fn help_states_every_default() {
        let help = Cli::command().render_long_help().to_string();
        for default in [
            "127.0.0.1",
            "4711",
            "logserver-data",
            "ELECTION_ADMIN_TOKEN",
            "100000",
        ] {
            assert!(help.contains(default), "--help lacks {default}:\n{help}");
        }
    }
}
