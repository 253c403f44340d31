//! The in-memory truth (node table, recent log, blocks) and the queue of changes waiting for the
//! store, with the background task that writes them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use election_core::report::{BlockedLink, NodeReport};
use tokio::sync::{Notify, watch};

use crate::model::{LogEntry, NodeDoc, NodeView, now_ms};
use crate::store::{Snapshot, Store};

/// Log entries kept in memory (and loaded at start) to answer `GET /api/log`.
pub(crate) const LOG_MEMORY: usize = 100_000;
/// Most log entries written to the store in one batch.
const WRITE_BATCH: usize = 10_000;
/// How long a shutdown keeps retrying a failing store before giving up on the queue.
const FLUSH_GIVE_UP: Duration = Duration::from_secs(10);

/// Changes accepted but not yet in the store, applied in this order: forget all nodes, replace
/// blocks, upsert nodes, append log entries.
#[derive(Default)]
struct Pending {
    forget: bool,
    blocks: Option<Vec<BlockedLink>>,
    /// Nodes whose current document must be upserted.
    dirty: BTreeSet<String>,
    log: VecDeque<Arc<LogEntry>>,
}

/// One write to the store; see [`Pending`] for the order of its parts.
#[derive(Debug)]
pub(crate) struct WriteBatch {
    pub forget: bool,
    pub blocks: Option<Vec<BlockedLink>>,
    pub nodes: Vec<NodeDoc>,
    /// Shared with the in-memory log, so queueing and batching copy no strings.
    pub log: Vec<Arc<LogEntry>>,
}

impl WriteBatch {
    fn is_empty(&self) -> bool {
        !self.forget && self.blocks.is_none() && self.nodes.is_empty() && self.log.is_empty()
    }
}

struct Inner {
    nodes: BTreeMap<String, NodeDoc>,
    log: VecDeque<Arc<LogEntry>>,
    next_seq: u64,
    blocks: BTreeSet<BlockedLink>,
    pending: Pending,
    /// Set while the queue is full, so the warning is logged once per episode.
    full_warned: bool,
}

/// Shared state of a running logserver.
pub(crate) struct Hub {
    inner: Mutex<Inner>,
    wake: Notify,
    queue_limit: usize,
}

/// Why a report batch was refused.
pub(crate) struct QueueFull {
    pub waiting: usize,
}

impl Hub {
    pub fn new(s: Snapshot, queue_limit: usize) -> Hub {
        Hub {
            inner: Mutex::new(Inner {
                nodes: s.nodes.into_iter().map(|n| (n.addr.clone(), n)).collect(),
                log: s.log_tail.into_iter().map(Arc::new).collect(),
                next_seq: s.next_seq,
                blocks: s.blocks.into_iter().collect(),
                pending: Pending::default(),
                full_warned: false,
            }),
            wake: Notify::new(),
            queue_limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every update is a few field
        // assignments), so keep serving rather than poisoning the whole server.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records checked reports; all or nothing. Returns the blocked links for the reply.
    pub fn ingest(&self, reports: Vec<NodeReport>) -> Result<Vec<BlockedLink>, QueueFull> {
        let now = now_ms();
        let mut g = self.lock();
        let inner = &mut *g;
        let waiting = inner.pending.log.len();
        if waiting + reports.len() > self.queue_limit {
            if !inner.full_warned {
                inner.full_warned = true;
                tracing::warn!(
                    waiting,
                    "store queue full: refusing reports until it drains"
                );
            }
            return Err(QueueFull { waiting });
        }
        for r in &reports {
            let entry = Arc::new(LogEntry::new(inner.next_seq, now, r));
            inner.next_seq += 1;
            inner
                .nodes
                .insert(r.addr.clone(), entry.node_doc(r.heartbeat_ms));
            inner.pending.dirty.insert(r.addr.clone());
            if inner.log.len() == LOG_MEMORY {
                inner.log.pop_front();
            }
            inner.log.push_back(entry.clone());
            inner.pending.log.push_back(entry);
        }
        let blocked = inner.blocks.iter().cloned().collect();
        drop(g);
        self.wake.notify_one();
        Ok(blocked)
    }

    /// All nodes, sorted by address.
    pub fn nodes(&self) -> Vec<NodeDoc> {
        self.lock().nodes.values().cloned().collect()
    }

    /// All nodes with whether each is reachable now, sorted by address.
    pub fn views(&self) -> Vec<NodeView> {
        let now = now_ms();
        self.nodes()
            .into_iter()
            .map(|node| NodeView {
                reachable: node.reachable(now),
                node,
            })
            .collect()
    }

    /// Forgets every node (the log keeps their history).
    pub fn forget_nodes(&self) {
        let mut g = self.lock();
        g.nodes.clear();
        g.pending.dirty.clear();
        g.pending.forget = true;
        drop(g);
        self.wake.notify_one();
    }

    /// Log entries with `seq > since` (all when `None`), of one node if given, at most `limit`.
    pub fn log(&self, node: Option<&str>, since: Option<u64>, limit: usize) -> Vec<LogEntry> {
        let g = self.lock();
        // Sorted by seq (a store that lost entries may leave gaps, so no index arithmetic).
        let start = since.map_or(0, |s| g.log.partition_point(|e| e.seq <= s));
        g.log
            .iter()
            .skip(start)
            .filter(|e| node.is_none_or(|n| e.node == n))
            .take(limit)
            .map(|e| LogEntry::clone(e))
            .collect()
    }

    /// The blocked links, sorted.
    pub fn blocks(&self) -> Vec<BlockedLink> {
        self.lock().blocks.iter().cloned().collect()
    }

    /// Replaces the whole set of blocked links and returns it sorted.
    pub fn set_blocks(&self, links: Vec<BlockedLink>) -> Vec<BlockedLink> {
        let mut g = self.lock();
        g.blocks = links.into_iter().collect();
        let all: Vec<BlockedLink> = g.blocks.iter().cloned().collect();
        g.pending.blocks = Some(all.clone());
        drop(g);
        self.wake.notify_one();
        tracing::info!(links = all.len(), "blocked links replaced");
        all
    }

    /// Takes the next batch for the store; the log entries stay queued until [`Hub::written`].
    fn take_batch(&self) -> WriteBatch {
        let mut g = self.lock();
        let inner = &mut *g;
        let dirty = std::mem::take(&mut inner.pending.dirty);
        WriteBatch {
            forget: std::mem::take(&mut inner.pending.forget),
            blocks: inner.pending.blocks.take(),
            nodes: dirty
                .iter()
                .filter_map(|a| inner.nodes.get(a).cloned())
                .collect(),
            log: inner
                .pending
                .log
                .iter()
                .take(WRITE_BATCH)
                .cloned()
                .collect(),
        }
    }

    /// The batch is in the store: drop its log entries from the queue.
    fn written(&self, batch: &WriteBatch) {
        if let Some(last) = batch.log.last() {
            let mut g = self.lock();
            while g.pending.log.front().is_some_and(|e| e.seq <= last.seq) {
                g.pending.log.pop_front();
            }
            if g.pending.log.len() < self.queue_limit / 2 {
                g.full_warned = false;
            }
        }
    }

    /// The batch failed: queue its parts again unless newer changes replaced them.
    fn retry(&self, batch: &WriteBatch) {
        let mut g = self.lock();
        let inner = &mut *g;
        inner.pending.forget |= batch.forget;
        if inner.pending.blocks.is_none() {
            inner.pending.blocks.clone_from(&batch.blocks);
        }
        for n in &batch.nodes {
            if inner.nodes.contains_key(&n.addr) {
                inner.pending.dirty.insert(n.addr.clone());
            }
        }
    }

    fn queued(&self) -> usize {
        self.lock().pending.log.len()
    }
}

/// Writes queued changes to the store until a stop is requested (or the server handle is gone)
/// and the queue is empty, or the store has kept failing for [`FLUSH_GIVE_UP`] after the stop.
pub(crate) async fn run_writer(
    hub: Arc<Hub>,
    store: Box<dyn Store>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut stopping = false;
    let mut failing_since_stop: Option<tokio::time::Instant> = None;
    loop {
        stopping |= *stop.borrow();
        let batch = hub.take_batch();
        if batch.is_empty() {
            if stopping {
                break;
            }
            tokio::select! {
                () = hub.wake.notified() => {}
                changed = stop.changed() => stopping |= changed.is_err(),
            }
            continue;
        }
        let batch = Arc::new(batch);
        match store.write(batch.clone()).await {
            Ok(()) => {
                hub.written(&batch);
                backoff = Duration::from_millis(100);
                failing_since_stop = None;
            }
            Err(e) => {
                let queued = hub.queued();
                tracing::warn!(error = %e, queued, "store write failed; will retry");
                hub.retry(&batch);
                if stopping {
                    let since = *failing_since_stop.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() >= FLUSH_GIVE_UP {
                        tracing::error!(
                            lost = queued,
                            "store unavailable at shutdown: giving up on queued reports"
                        );
                        break;
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    tracing::debug!("store writer done; closing the store");
    if let Err(e) = store.close().await {
        tracing::warn!(error = %e, "closing the store failed");
    }
}
