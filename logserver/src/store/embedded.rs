//! The embedded default store: one redb file holding JSON documents, nothing to install.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{BoxFuture, Snapshot, Store, StoreError};
use crate::hub::WriteBatch;

/// Node documents by address.
const NODES: TableDefinition<&str, &[u8]> = TableDefinition::new("nodes");
/// Log entries by sequence number.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Blocked links by `from to`.
const BLOCKS: TableDefinition<&str, &[u8]> = TableDefinition::new("blocks");

/// The redb store; its calls block, so they run on tokio's blocking threads.
pub(crate) struct EmbeddedStore {
    db: Arc<Database>,
}

impl EmbeddedStore {
    /// Opens (or creates) `dir/logserver.redb`.
    pub async fn open(dir: &Path) -> Result<EmbeddedStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("logserver.redb");
        let db = tokio::task::spawn_blocking(move || -> Result<Database, StoreError> {
            let db = Database::create(path)?;
            // Create the tables so that the first read finds them.
            let tx = db.begin_write()?;
            tx.open_table(NODES)?;
            tx.open_table(LOG)?;
            tx.open_table(BLOCKS)?;
            tx.commit()?;
            Ok(db)
        })
        .await??;
        Ok(EmbeddedStore { db: Arc::new(db) })
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
    if let Some((k, _)) = log.last()? {
        s.next_seq = k.value() + 1;
    }
    Ok(s)
}

fn write(db: &Database, b: &WriteBatch) -> Result<(), StoreError> {
    let tx = db.begin_write()?;
    {
        let mut nodes = tx.open_table(NODES)?;
        if b.forget {
            nodes.retain(|_, _| false)?;
        }
        if let Some(links) = &b.blocks {
            let mut blocks = tx.open_table(BLOCKS)?;
            blocks.retain(|_, _| false)?;
            for l in links {
                let key = format!("{} {}", l.from, l.to);
                blocks.insert(key.as_str(), serde_json::to_vec(l)?.as_slice())?;
            }
        }
        for n in &b.nodes {
            nodes.insert(n.addr.as_str(), serde_json::to_vec(n)?.as_slice())?;
        }
        let mut log = tx.open_table(LOG)?;
        let mut value = Vec::new();
        for e in &b.log {
            value.clear();
            serde_json::to_writer(&mut value, e.as_ref())?;
            log.insert(e.seq, value.as_slice())?;
        }
    }
    tx.commit()?;
    Ok(())
}

impl Store for EmbeddedStore {
    fn load(&self, log_tail: usize) -> BoxFuture<'_, Result<Snapshot, StoreError>> {
        let db = self.db.clone();
        Box::pin(async move { tokio::task::spawn_blocking(move || load(&db, log_tail)).await? })
    }

    fn write(&self, batch: Arc<WriteBatch>) -> BoxFuture<'_, Result<(), StoreError>> {
        let db = self.db.clone();
        Box::pin(async move { tokio::task::spawn_blocking(move || write(&db, &batch)).await? })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        // redb commits durably on every write; the file closes when the last handle drops.
        Box::pin(async { Ok(()) })
    }
}
