//! Where the logserver's documents live: one trait, an embedded redb store and MongoDB, and the
//! batch the writer hands them.

mod embedded;
mod mongo;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use election_core::report::BlockedLink;

use crate::model::{LogEntry, NodeDoc};

/// A boxed future, so the store can be chosen at run time.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The embedded store's directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The embedded store (redb) failed.
    #[error("embedded store: {0}")]
    Embedded(#[from] redb::Error),
    /// MongoDB failed or is unreachable.
    #[error("MongoDB: {0}")]
    Mongo(#[from] mongodb::error::Error),
    /// A stored document could not be read back.
    #[error("stored document is damaged: {0}")]
    Document(#[from] serde_json::Error),
    /// A blocking store task died.
    #[error("store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// redb reports each step's failure with its own type; all of them are embedded-store errors.
macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Embedded(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// What a store holds at start-up.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub nodes: Vec<NodeDoc>,
    pub blocks: Vec<BlockedLink>,
    /// The newest log entries, oldest first.
    pub log_tail: Vec<LogEntry>,
    /// The sequence number the next log entry gets: past every number ever handed out, also
    /// those of entries since pruned.
    pub next_seq: u64,
}

/// One atomic step of the store (for MongoDB: one step applied in this order, each part
/// idempotent so the step can be retried): reserve sequence numbers up to `next_seq`, append the
/// log entries, forget all nodes, delete `evict`, upsert `nodes`, replace the blocks.
#[derive(Clone, Debug, Default)]
pub(crate) struct WriteBatch {
    /// Every sequence number below this one has been handed out.
    pub next_seq: u64,
    /// New log entries, in `seq` order.
    pub log: Vec<LogEntry>,
    /// The JSON text of each entry of `log`, encoded once for the embedded store and the
    /// in-memory log.
    pub log_json: Vec<Box<str>>,
    /// Delete every node document first.
    pub forget: bool,
    /// Node documents to delete (silent for longer than `--forget-after`).
    pub evict: Vec<String>,
    /// Node documents to insert or replace.
    pub nodes: Vec<NodeDoc>,
    /// The new set of blocked links, if it changed.
    pub blocks: Option<Vec<BlockedLink>>,
}

impl WriteBatch {
    /// Whether the batch changes nothing but (perhaps) the reservation.
    pub fn is_empty(&self) -> bool {
        self.log.is_empty()
            && !self.forget
            && self.evict.is_empty()
            && self.nodes.is_empty()
            && self.blocks.is_none()
    }
}

/// What a successful write set aside: documents the store refused, now in its quarantine
/// (table or collection) instead of the log or the node table.
#[derive(Debug, Default)]
pub(crate) struct Written {
    /// Sequence numbers of log entries set aside.
    pub quarantined_log: Vec<u64>,
    /// Addresses of node documents set aside.
    pub quarantined_nodes: Vec<String>,
}

/// Which old log entries to delete.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retention {
    /// Entries that arrived before this server time (ms since the epoch) go.
    pub before_ms: u64,
    /// Entries with a sequence number below this go.
    pub below_seq: u64,
    /// At most this many entries go in one call, so one pruning step stays short.
    pub max_delete: u64,
}

/// The documents of a logserver: nodes by address, the append-only log, the blocked links.
pub(crate) trait Store: Send + Sync {
    /// Reads everything needed to resume, with at most `log_tail` log entries.
    fn load(&self, log_tail: usize) -> BoxFuture<'_, Result<Snapshot, StoreError>>;
    /// Applies a batch. An error means "maybe partly applied, try again": the writer then
    /// retries the same batch, so a store must make a retry harmless. A document the store
    /// cannot hold is quarantined, not an error.
    fn write(&self, batch: Arc<WriteBatch>) -> BoxFuture<'_, Result<Written, StoreError>>;
    /// Deletes old log entries; returns how many went.
    fn prune(&self, rule: Retention) -> BoxFuture<'_, Result<u64, StoreError>>;
    /// Releases the store.
    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// Opens MongoDB at `mongodb` if given, else the embedded store in `data_dir`.
pub(crate) async fn open(
    mongodb: Option<&str>,
    data_dir: &Path,
) -> Result<Box<dyn Store>, StoreError> {
    Ok(match mongodb {
        Some(uri) => Box::new(mongo::MongoStore::connect(uri).await?),
        None => Box::new(embedded::EmbeddedStore::open(data_dir).await?),
    })
}
