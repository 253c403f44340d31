//! MongoDB through the official driver: collections `nodes` (upserted by `addr`), `log`
//! (appended, indexed by `seq`, `server_time_ms` and `addr`), `blocks` (one document per link),
//! `meta` (the reserved sequence numbers) and `quarantine` (documents MongoDB refused).
//!
//! A batch is applied step by step, each step idempotent, so the writer can retry it after an
//! outage: the reservation first (so a crash in the middle never lets a number be handed out
//! twice), then the log, the nodes and the blocks.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use election_core::report::BlockedLink;
use mongodb::bson::{Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, IndexModel};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{BoxFuture, Retention, Snapshot, Store, StoreError, WriteBatch, Written};
use crate::model::{LogEntry, NodeDoc};

/// Fail a write quickly when MongoDB is away; the writer retries with back-off.
const SERVER_TIMEOUT: Duration = Duration::from_secs(2);
/// MongoDB's error code for a duplicate key.
const DUPLICATE_KEY: i32 = 11000;
/// The `meta` document holding the next sequence number.
const NEXT_SEQ: &str = "next_seq";

/// The MongoDB store; the driver's client pools connections and reconnects on its own.
pub(crate) struct MongoStore {
    client: Client,
    nodes: Collection<NodeDoc>,
    log: Collection<LogEntry>,
    blocks: Collection<BlockedLink>,
    meta: Collection<Document>,
    quarantine: Collection<Document>,
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
            meta: db.collection("meta"),
            quarantine: db.collection("quarantine"),
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
                doc! {"addr": 1, "server_time_ms": 1},
                IndexOptions::default(),
            ))
            .await?;
        store
            .blocks
            .create_index(index(doc! {"from": 1, "to": 1}, unique()))
            .await?;
        store
            .quarantine
            .create_index(index(doc! {"kind": 1, "key": 1}, unique()))
            .await?;
        tracing::info!(database = %db_name, "connected to MongoDB");
        Ok(store)
    }

    async fn load_all(&self, log_tail: usize) -> Result<Snapshot, StoreError> {
        let tail = i64::try_from(log_tail).unwrap_or(i64::MAX);
        let mut log_tail = all(self
            .log
            .find(doc! {})
            .projection(no_id())
            .sort(doc! {"seq": -1})
            .limit(tail)
            .await?)
        .await?;
        log_tail.reverse();
        let reserved = self
            .meta
            .find_one(doc! {"_id": NEXT_SEQ})
            .await?
            .and_then(|d| d.get_i64("value").ok())
            .map_or(0, |v| u64::try_from(v).unwrap_or(0));
        Ok(Snapshot {
            nodes: all(self
                .nodes
                .find(doc! {})
                .projection(no_id())
                .sort(doc! {"addr": 1})
                .await?)
            .await?,
            blocks: all(self.blocks.find(doc! {}).projection(no_id()).await?).await?,
            next_seq: log_tail.last().map_or(0, |e| e.seq + 1).max(reserved),
            log_tail,
        })
    }

    async fn write_batch(&self, b: &WriteBatch) -> Result<Written, StoreError> {
        let mut written = Written::default();
        self.meta
            .update_one(
                doc! {"_id": NEXT_SEQ},
                doc! {"$max": {"value": int(b.next_seq)}},
            )
            .upsert(true)
            .await?;
        written.quarantined_log = self.append(&b.log).await?;
        if b.forget {
            self.nodes.delete_many(doc! {}).await?;
        }
        if !b.evict.is_empty() {
            self.nodes
                .delete_many(doc! {"addr": {"$in": &b.evict}})
                .await?;
        }
        for n in &b.nodes {
            let upsert = self
                .nodes
                .replace_one(doc! {"addr": n.addr()}, n)
                .upsert(true)
                .await;
            if let Err(e) = upsert {
                let reason = refused(&e).ok_or(e)?;
                self.set_aside("node", n.addr(), &reason, n).await?;
                written.quarantined_nodes.push(n.addr().to_string());
            }
        }
        if let Some(links) = &b.blocks {
            self.blocks.delete_many(doc! {}).await?;
            if !links.is_empty() {
                self.blocks.insert_many(links).await?;
            }
        }
        Ok(written)
    }

    /// Inserts log entries; returns the sequence numbers of those MongoDB refused, which are in
    /// the quarantine now. Entries already there (a retry after a partial insert) are skipped.
    async fn append(&self, entries: &[LogEntry]) -> Result<Vec<u64>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let refusals: Vec<(usize, String)> =
            match self.log.insert_many(entries).ordered(false).await {
                Ok(_) => return Ok(Vec::new()),
                Err(e) => match e.kind.as_ref() {
                    ErrorKind::InsertMany(m) if m.write_concern_error.is_none() => m
                        .write_errors
                        .iter()
                        .flatten()
                        .map(|w| (w.index, format!("code {}: {}", w.code, w.message)))
                        .collect(),
                    // One document cannot even be encoded: try them one by one.
                    ErrorKind::BsonSerialization(_) => {
                        let mut refusals = Vec::new();
                        for (i, entry) in entries.iter().enumerate() {
                            if let Err(e) = self.log.insert_one(entry).await {
                                refusals.push((i, refused(&e).ok_or(e)?));
                            }
                        }
                        refusals
                    }
                    _ => return Err(e.into()),
                },
            };
        // A duplicate `seq` is this batch written before; any other refusal is the document's.
        let dup_seqs: Vec<i64> = refusals
            .iter()
            .filter(|(_, why)| why.starts_with(&format!("code {DUPLICATE_KEY}:")))
            .map(|(i, _)| int(entries[*i].seq))
            .collect();
        let present: BTreeSet<u64> = if dup_seqs.is_empty() {
            BTreeSet::new()
        } else {
            let filter = doc! {"seq": {"$in": dup_seqs}};
            let mut cursor = self
                .log
                .clone_with_type::<Document>()
                .find(filter)
                .projection(doc! {"seq": 1})
                .await?;
            let mut present = BTreeSet::new();
            while cursor.advance().await? {
                if let Ok(seq) = cursor.current().get_i64("seq") {
                    present.insert(u64::try_from(seq).unwrap_or(0));
                }
            }
            present
        };
        let mut quarantined = Vec::new();
        for (i, reason) in refusals {
            let entry = &entries[i];
            if !present.contains(&entry.seq) {
                self.set_aside("log", &entry.seq.to_string(), &reason, entry)
                    .await?;
                quarantined.push(entry.seq);
            }
        }
        Ok(quarantined)
    }

    /// Puts a document MongoDB refused into the quarantine, as JSON text (which always
    /// encodes), with the reason. Keyed by kind and key, so a retry does not duplicate it.
    async fn set_aside(
        &self,
        kind: &str,
        key: &str,
        reason: &str,
        document: &impl Serialize,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(document)?;
        tracing::warn!(kind, key, reason, "MongoDB refused a document; quarantined");
        self.quarantine
            .replace_one(
                doc! {"kind": kind, "key": key},
                doc! {"kind": kind, "key": key, "reason": reason, "json": json},
            )
            .upsert(true)
            .await?;
        Ok(())
    }

    async fn prune_log(&self, rule: Retention) -> Result<u64, StoreError> {
        let first = self
            .log
            .find_one(doc! {})
            .projection(no_id())
            .sort(doc! {"seq": 1})
            .await?;
        let Some(first) = first else { return Ok(0) };
        let limit = first.seq.saturating_add(rule.max_delete);
        let young = self
            .log
            .find_one(
                doc! {"server_time_ms": {"$gte": int(rule.before_ms)}, "seq": {"$lt": int(limit)}},
            )
            .projection(no_id())
            .sort(doc! {"seq": 1})
            .await?;
        let by_age = young.map_or(limit, |e| e.seq);
        let cut = by_age.max(rule.below_seq).min(limit);
        if cut <= first.seq {
            return Ok(0);
        }
        let deleted = self
            .log
            .delete_many(doc! {"seq": {"$lt": int(cut)}})
            .await?;
        Ok(deleted.deleted_count)
    }
}

/// Why MongoDB refused this document, if the error is about the document (it cannot be encoded,
/// or the server rejected it) rather than about reaching the server.
fn refused(e: &mongodb::error::Error) -> Option<String> {
    match e.kind.as_ref() {
        ErrorKind::BsonSerialization(s) => Some(format!("cannot encode: {s}")),
        ErrorKind::Write(WriteFailure::WriteError(w)) => {
            Some(format!("code {}: {}", w.code, w.message))
        }
        _ => None,
    }
}

/// A `u64` the checks keep within `i64`, as BSON's integer.
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Reads documents without MongoDB's `_id`, which the logserver's types do not carry.
fn no_id() -> Document {
    doc! {"_id": 0}
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

    fn write(&self, batch: Arc<WriteBatch>) -> BoxFuture<'_, Result<Written, StoreError>> {
        Box::pin(async move { self.write_batch(&batch).await })
    }

    fn prune(&self, rule: Retention) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.prune_log(rule))
    }

    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        let client = self.client.clone();
        Box::pin(async move {
            client.shutdown().await;
            Ok(())
        })
    }
}
