//! MongoDB through the official driver: collections `nodes` (upserted by `addr`), `log`
//! (appended, indexed by `seq`, `server_time_ms` and `node`) and `blocks` (one document per link).

use std::sync::Arc;
use std::time::Duration;

use election_core::report::BlockedLink;
use mongodb::bson::doc;
use mongodb::error::ErrorKind;
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, IndexModel};
use serde::de::DeserializeOwned;

use super::{BoxFuture, Snapshot, Store, StoreError};
use crate::hub::WriteBatch;
use crate::model::{LogEntry, NodeDoc};

/// Fail a write quickly when MongoDB is away; the writer retries with back-off.
const SERVER_TIMEOUT: Duration = Duration::from_secs(2);
/// MongoDB's error code for a duplicate key.
const DUPLICATE_KEY: i32 = 11000;

/// The MongoDB store; the driver's client pools connections and reconnects on its own.
pub(crate) struct MongoStore {
    client: Client,
    nodes: Collection<NodeDoc>,
    log: Collection<LogEntry>,
    blocks: Collection<BlockedLink>,
}

impl MongoStore {
    /// Connects and creates the indexes (the URI's database, default `election`).
    pub async fn connect(uri: &str) -> Result<MongoStore, StoreError> {
        let mut options = ClientOptions::parse(uri).await?;
        options.server_selection_timeout = Some(SERVER_TIMEOUT);
        options.connect_timeout = Some(SERVER_TIMEOUT);
        options.app_name = Some("election-logserver".to_string());
        let db_name = options
            .default_database
            .clone()
            .unwrap_or_else(|| "election".to_string());
        let client = Client::with_options(options)?;
        let db = client.database(&db_name);
        let store = MongoStore {
            nodes: db.collection("nodes"),
            log: db.collection("log"),
            blocks: db.collection("blocks"),
            client,
        };
        let unique = || IndexOptions::builder().unique(true).build();
        let index = |keys, options| IndexModel::builder().keys(keys).options(options).build();
        store
            .nodes
            .create_index(index(doc! {"addr": 1}, unique()))
            .await?;
        store
            .log
            .create_index(index(doc! {"seq": 1}, unique()))
            .await?;
        store
            .log
            .create_index(index(doc! {"server_time_ms": 1}, IndexOptions::default()))
            .await?;
        store
            .log
            .create_index(index(
                doc! {"node": 1, "server_time_ms": 1},
                IndexOptions::default(),
            ))
            .await?;
        store
            .blocks
            .create_index(index(doc! {"from": 1, "to": 1}, unique()))
            .await?;
        tracing::info!(database = %db_name, "connected to MongoDB");
        Ok(store)
    }

    async fn load_all(&self, log_tail: usize) -> Result<Snapshot, StoreError> {
        let tail = i64::try_from(log_tail).unwrap_or(i64::MAX);
        let mut log_tail = all(self
            .log
            .find(doc! {})
            .sort(doc! {"seq": -1})
            .limit(tail)
            .await?)
        .await?;
        log_tail.reverse();
        Ok(Snapshot {
            nodes: all(self
                .nodes
                .find(doc! {})
                .projection(no_id())
                .sort(doc! {"addr": 1})
                .await?)
            .await?,
            blocks: all(self.blocks.find(doc! {}).projection(no_id()).await?).await?,
            next_seq: log_tail.last().map_or(0, |e| e.seq + 1),
            log_tail,
        })
    }

    async fn write_batch(&self, b: &WriteBatch) -> Result<(), StoreError> {
        if b.forget {
            self.nodes.delete_many(doc! {}).await?;
        }
        if let Some(links) = &b.blocks {
            self.blocks.delete_many(doc! {}).await?;
            if !links.is_empty() {
                self.blocks.insert_many(links).await?;
            }
        }
        for n in &b.nodes {
            self.nodes
                .replace_one(doc! {"addr": &n.addr}, n)
                .upsert(true)
                .await?;
        }
        if !b.log.is_empty() {
            // A retry after a partial insert meets the entries already written (unique `seq`).
            match self
                .log
                .insert_many(b.log.iter().map(|e| e.as_ref()))
                .ordered(false)
                .await
            {
                Ok(_) => {}
                Err(e) if only_duplicates(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// Reads documents without MongoDB's `_id`, which the logserver's types do not carry.
fn no_id() -> mongodb::bson::Document {
    doc! {"_id": 0}
}

/// Whether an unordered insert failed only because some documents were already there.
fn only_duplicates(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::InsertMany(m) => {
            m.write_concern_error.is_none()
                && m.write_errors
                    .as_ref()
                    .is_some_and(|w| w.iter().all(|w| w.code == DUPLICATE_KEY))
        }
        _ => false,
    }
}

async fn all<T: DeserializeOwned + Send + Sync>(
    mut cursor: mongodb::Cursor<T>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    while cursor.advance().await? {
        out.push(cursor.deserialize_current()?);
    }
    Ok(out)
}

impl Store for MongoStore {
    fn load(&self, log_tail: usize) -> BoxFuture<'_, Result<Snapshot, StoreError>> {
        Box::pin(self.load_all(log_tail))
    }

    fn write(&self, batch: Arc<WriteBatch>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { self.write_batch(&batch).await })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        let client = self.client.clone();
        Box::pin(async move {
            client.shutdown().await;
            Ok(())
        })
    }
}
