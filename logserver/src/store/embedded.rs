//! The embedded default store: one redb file holding JSON documents, nothing to install. Every
//! write is one redb transaction, committed durably (fsync) before it returns. After an I/O
//! error (a full disk) redb refuses every later transaction until the file is opened again, so
//! the store then reopens it, and the writer's retry can succeed once the disk has room.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::Deserialize;

use super::{BoxFuture, Retention, Snapshot, Store, StoreError, WriteBatch, Written};

/// Node documents by address.
const NODES: TableDefinition<&str, &[u8]> = TableDefinition::new("nodes");
/// Log entries by sequence number.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Blocked links by `from to`.
const BLOCKS: TableDefinition<&str, &[u8]> = TableDefinition::new("blocks");
/// Counters that must survive everything else: `next_seq`.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const NEXT_SEQ: &str = "next_seq";
/// redb's page cache; its default grows to a large share of memory.
const CACHE_BYTES: usize = 64 << 20;

/// The redb store; its calls block, so they run on tokio's blocking threads.
pub(crate) struct EmbeddedStore {
    path: PathBuf,
    /// `None` between a failed reopen and the next try.
    db: Mutex<Option<Arc<Database>>>,
}

fn open_file(path: &Path) -> Result<Database, StoreError> {
    let db = Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create(path)?;
    // Create the tables so that the first read finds them.
    let tx = db.begin_write()?;
    tx.open_table(NODES)?;
    tx.open_table(LOG)?;
    tx.open_table(BLOCKS)?;
    tx.open_table(META)?;
    tx.commit()?;
    Ok(db)
}

impl EmbeddedStore {
    /// Opens (or creates) `dir/logserver.redb`.
    pub async fn open(dir: &Path) -> Result<EmbeddedStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("logserver.redb");
        let file = path.clone();
        let db = tokio::task::spawn_blocking(move || open_file(&file)).await??;
        Ok(EmbeddedStore {
            path,
            db: Mutex::new(Some(Arc::new(db))),
        })
    }

    /// Runs `op` on a blocking thread; after redb's "previous I/O error" closes the file (the
    /// writer is the only user by then, so this drops the last handle), and the next call opens
    /// it again.
    async fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let slot = self.db.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let db = match slot {
            Some(db) => db,
            None => {
                let path = self.path.clone();
                let db = Arc::new(tokio::task::spawn_blocking(move || open_file(&path)).await??);
                tracing::info!(path = %self.path.display(), "embedded store reopened");
                *self.db.lock().unwrap_or_else(|p| p.into_inner()) = Some(db.clone());
                db
            }
        };
        let result = tokio::task::spawn_blocking(move || op(&db)).await?;
        if let Err(StoreError::Embedded(redb::Error::PreviousIo)) = &result {
            *self.db.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        result
    }
}

fn load(db: &Database, log_tail: usize) -> Result<Snapshot, StoreError> {
    let tx = db.begin_read()?;
    let mut s = Snapshot::default();
    for row in tx.open_table(NODES)?.iter()? {
        let (_, v) = row?;
        s.nodes.push(serde_json::from_slice(v.value())?);
    }
    for row in tx.open_table(BLOCKS)?.iter()? {
        let (_, v) = row?;
        s.blocks.push(serde_json::from_slice(v.value())?);
    }
    let log = tx.open_table(LOG)?;
    for row in log.iter()?.rev().take(log_tail) {
        let (_, v) = row?;
        s.log_tail.push(serde_json::from_slice(v.value())?);
    }
    s.log_tail.reverse();
    let after_log = log.last()?.map_or(0, |(k, _)| k.value() + 1);
    let reserved = tx.open_table(META)?.get(NEXT_SEQ)?.map_or(0, |v| v.value());
    s.next_seq = after_log.max(reserved);
    Ok(s)
}

/// Every document the checks let through fits redb (JSON text), so nothing is ever quarantined
/// here.
fn write(db: &Database, b: &WriteBatch) -> Result<Written, StoreError> {
    let tx = db.begin_write()?;
    {
        tx.open_table(META)?.insert(NEXT_SEQ, b.next_seq)?;
        let mut log = tx.open_table(LOG)?;
        for (e, json) in b.log.iter().zip(&b.log_json) {
            log.insert(e.seq, json.as_bytes())?;
        }
        let mut nodes = tx.open_table(NODES)?;
        if b.forget {
            nodes.retain(|_, _| false)?;
        }
        for addr in &b.evict {
            nodes.remove(addr.as_str())?;
        }
        for n in &b.nodes {
            nodes.insert(n.addr(), serde_json::to_vec(n)?.as_slice())?;
        }
        if let Some(links) = &b.blocks {
            let mut blocks = tx.open_table(BLOCKS)?;
            blocks.retain(|_, _| false)?;
            for l in links {
                let key = format!("{} {}", l.from, l.to);
                blocks.insert(key.as_str(), serde_json::to_vec(l)?.as_slice())?;
            }
        }
    }
    tx.commit()?;
    Ok(Written::default())
}

/// The one field pruning reads from a stored entry.
#[derive(Deserialize)]
struct Arrival {
    server_time_ms: u64,
}

fn prune(db: &Database, rule: Retention) -> Result<u64, StoreError> {
    let tx = db.begin_write()?;
    let removed = {
        let mut log = tx.open_table(LOG)?;
        let Some(first) = log.first()?.map(|(k, _)| k.value()) else {
            return Ok(0);
        };
        let limit = first.saturating_add(rule.max_delete);
        // Entries arrive in seq order, so the old ones are a prefix: binary-search its end.
        let (mut lo, mut hi) = (first, limit);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let next = log.range(mid..)?.next().transpose()?;
            match next {
                Some((k, v)) if k.value() < hi => {
                    let arrival: Arrival = serde_json::from_slice(v.value())?;
                    if arrival.server_time_ms < rule.before_ms {
                        lo = k.value() + 1;
                    } else {
                        hi = mid;
                    }
                }
                _ => hi = mid,
            }
        }
        let cut = lo.max(rule.below_seq).min(limit);
        if cut <= first {
            return Ok(0);
        }
        let before = log.len()?;
        log.retain_in(..cut, |_, _| false)?;
        before - log.len()?
    };
    tx.commit()?;
    Ok(removed)
}

impl Store for EmbeddedStore {
    fn load(&self, log_tail: usize) -> BoxFuture<'_, Result<Snapshot, StoreError>> {
        Box::pin(self.run(move |db| load(db, log_tail)))
    }

    fn write(&self, batch: Arc<WriteBatch>) -> BoxFuture<'_, Result<Written, StoreError>> {
        Box::pin(self.run(move |db| write(db, &batch)))
    }

    fn prune(&self, rule: Retention) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.run(move |db| prune(db, rule)))
    }

    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        // Every write was committed durably; the file closes when the last handle drops.
        Box::pin(async { Ok(()) })
    }
}
