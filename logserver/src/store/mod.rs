//! Where the logserver's documents live: one trait, an embedded redb store and MongoDB.

mod embedded;
mod mongo;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use election_core::report::BlockedLink;

use crate::ServeArgs;
use crate::hub::WriteBatch;
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
    /// The sequence number the next log entry gets.
    pub next_seq: u64,
}

/// The documents of a logserver: nodes by address, the append-only log, the blocked links.
pub(crate) trait Store: Send + Sync {
    /// Reads everything needed to resume, with at most `log_tail` log entries.
    fn load(&self, log_tail: usize) -> BoxFuture<'_, Result<Snapshot, StoreError>>;
    /// Applies a batch; may be retried after a failure, so it must be idempotent.
    fn write(&self, batch: Arc<WriteBatch>) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Releases the store.
    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// Opens the store the arguments ask for.
pub(crate) async fn open(args: &ServeArgs) -> Result<Box<dyn Store>, StoreError> {
    Ok(match &args.mongodb {
        Some(uri) => Box::new(mongo::MongoStore::connect(uri).await?),
        None => Box::new(embedded::EmbeddedStore::open(&args.data_dir).await?),
    })
}
