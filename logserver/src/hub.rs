//! The in-memory truth (node table, recent log, blocks), the bounded queue of changes waiting
//! for the store, and the writer task.
//!
//! A change is acknowledged only once it is committed: request handlers queue their change and
//! wait; the writer takes everything queued (group commit: many requests share one store write),
//! numbers the new log entries, writes the batch — including the next free sequence number, so
//! no number is handed out twice even after a crash — and only then applies it to memory (where
//! `GET /api/log` and `/api/nodes` read) and answers the waiting handlers. A reader polling with
//! `since=` therefore only ever sees committed entries, in order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use election_core::report::{BlockedLink, NodeReport};
use tokio::sync::{Notify, oneshot, watch};
use tokio::time::Instant;

use crate::metrics::{Metrics, Refusal};
use crate::model::{LogEntry, NodeDoc, NodeView, now_ms};
use crate::monitor::{Monitor, ViolationRecord};
use crate::store::{Retention, Snapshot, Store, WriteBatch, Written};
use crate::timeline::BlockChange;

/// Log entries kept in memory (and loaded at start) to answer `GET /api/log`.
pub(crate) const LOG_MEMORY: usize = 100_000;
/// Most reports in one group commit (a single request may exceed it; it is never split).
const MAX_GROUP_REPORTS: usize = 20_000;
/// How long a shutdown keeps retrying a failing store before giving up on unacknowledged work.
const FLUSH_GIVE_UP: Duration = Duration::from_secs(10);
/// How often silent nodes are looked for.
const EVICT_EVERY: Duration = Duration::from_secs(1);
/// How often old log entries are pruned (also the store's health probe when idle).
const PRUNE_EVERY: Duration = Duration::from_secs(2);
/// Most log entries one pruning step deletes, so it never holds up ingest for long.
const PRUNE_MAX: u64 = 50_000;

/// The bounds a hub keeps (from the command line).
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    /// Most reports waiting for the store.
    pub queue_limit: usize,
    /// Most nodes in the node table.
    pub max_nodes: usize,
    /// Silence after which a node leaves the table.
    pub forget_after: Duration,
    /// Age after which log entries are deleted.
    pub retain: Duration,
    /// Most log entries kept (by sequence number).
    pub retain_entries: u64,
    /// How long a request waits for its commit before answering 503.
    pub ack_timeout: Duration,
}

/// A change to commit.
enum Change {
    Reports(Vec<NodeReport>),
    Forget,
    Blocks(Vec<BlockedLink>),
}

/// A queued change and the handler waiting for it; dropping `done` unanswered tells the
/// handler its change was not committed.
struct Job {
    change: Change,
    /// Addresses this job adds to the node table, counted against `--max-nodes` while queued.
    new_nodes: Vec<String>,
    done: oneshot::Sender<Vec<BlockedLink>>,
}

impl Job {
    fn reports(&self) -> usize {
        match &self.change {
            Change::Reports(r) => r.len(),
            Change::Forget | Change::Blocks(_) => 0,
        }
    }
}

/// Why a change was not committed.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The queue holds too many reports already.
    QueueFull { waiting: usize },
    /// The batch would add nodes beyond `--max-nodes`.
    NodeTableFull { max: usize },
    /// No commit within the acknowledgement timeout (the store is failing or slow).
    NotAcknowledged { waited: Duration },
}

impl Refused {
    /// The metrics label of this refusal.
    pub fn reason(&self) -> Refusal {
        match self {
            Refused::QueueFull { .. } => Refusal::QueueFull,
            Refused::NodeTableFull { .. } => Refusal::NodeTableFull,
            Refused::NotAcknowledged { .. } => Refusal::NotAcknowledged,
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::QueueFull { waiting } => write!(
                f,
                "store queue full ({waiting} reports waiting for the store): retry later"
            ),
            Refused::NodeTableFull { max } => write!(
                f,
                "node table full ({max} nodes, --max-nodes): reports from new nodes are refused \
                 until silent nodes are forgotten"
            ),
            Refused::NotAcknowledged { waited } => write!(
                f,
                "not acknowledged: the store did not commit within {} ms (it may still be \
                 written; retry)",
                waited.as_millis()
            ),
        }
    }
}

/// The store's state as `/healthz` shows it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Health {
    /// The last store operation failed with this error.
    pub failing: Option<String>,
    /// Reports waiting for the store.
    pub queue_depth: usize,
    /// Nodes in the table.
    pub nodes: usize,
}

/// A committed log entry as the API serves it: kept as its JSON text, a third of the memory of
/// the parsed entry, and nothing to encode per request.
struct Logged {
    seq: u64,
    server_time_ms: u64,
    addr: Box<str>,
    json: Box<str>,
}

/// A log entry's JSON text (its fields are strings, integers and names: it always encodes).
fn encode(e: &LogEntry) -> Box<str> {
    serde_json::to_string(e)
        .expect("a log entry encodes")
        .into_boxed_str()
}

impl Logged {
    fn new(e: &LogEntry, json: Box<str>) -> Logged {
        Logged {
            seq: e.seq,
            server_time_ms: e.server_time_ms,
            addr: e.report.addr.as_str().into(),
            json,
        }
    }
}

struct Inner {
    nodes: BTreeMap<String, NodeDoc>,
    log: VecDeque<Logged>,
    /// Sorted.
    blocks: Vec<BlockedLink>,
    queue: VecDeque<Job>,
    queued_reports: usize,
    /// New addresses in queued jobs, with how many jobs bring each.
    queued_new: BTreeMap<String, usize>,
    /// Set while the queue is full, so the warning is logged once per episode.
    full_warned: bool,
    failing: Option<String>,
    /// When the store operation in progress (a write or pruning) started.
    writing_since: Option<Instant>,
    /// Recent changes of `blocks`, oldest first, at most `BLOCK_HISTORY` (for the pictures;
    /// not stored: a restart starts it again from the stored blocks).
    block_history: VecDeque<BlockChange>,
    /// The blocks in force before the oldest change of `block_history`.
    blocks_before_history: Vec<BlockedLink>,
    /// The invariants checked on the committed reports.
    monitor: Monitor,
}

/// Block changes remembered for `/timeline` and the recent events.
const BLOCK_HISTORY: usize = 256;

/// Shared state of a running logserver.
pub(crate) struct Hub {
    inner: Mutex<Inner>,
    wake: Notify,
    limits: Limits,
    /// The exported figures.
    pub metrics: Metrics,
}

impl Hub {
    pub fn new(s: Snapshot, limits: Limits) -> Hub {
        let mut blocks = s.blocks;
        blocks.sort();
        blocks.dedup();
        let before = blocks.clone();
        Hub {
            inner: Mutex::new(Inner {
                nodes: s
                    .nodes
                    .into_iter()
                    .map(|n| (n.addr().to_string(), n))
                    .collect(),
                log: s
                    .log_tail
                    .iter()
                    .map(|e| Logged::new(e, encode(e)))
                    .collect(),
                blocks,
                queue: VecDeque::new(),
                queued_reports: 0,
                queued_new: BTreeMap::new(),
                full_warned: false,
                failing: None,
                writing_since: None,
                block_history: VecDeque::new(),
                blocks_before_history: before,
                monitor: Monitor::default(),
            }),
            wake: Notify::new(),
            limits,
            metrics: Metrics::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every update is a few field
        // assignments), so keep serving rather than poisoning the whole server.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a change and waits for its commit; returns the blocked links after it.
    async fn submit(&self, change: Change) -> Result<Vec<BlockedLink>, Refused> {
        let done = self.enqueue(change)?;
        match tokio::time::timeout(self.limits.ack_timeout, done).await {
            Ok(Ok(blocks)) => Ok(blocks),
            // Timed out, or the writer gave up on it: either way never acknowledged.
            _ => Err(Refused::NotAcknowledged {
                waited: self.limits.ack_timeout,
            }),
        }
    }

    fn enqueue(&self, change: Change) -> Result<oneshot::Receiver<Vec<BlockedLink>>, Refused> {
        let mut g = self.lock();
        let inner = &mut *g;
        let mut new_nodes = BTreeSet::new();
        if let Change::Reports(reports) = &change {
            let waiting = inner.queued_reports;
            if waiting + reports.len() > self.limits.queue_limit {
                if !inner.full_warned {
                    inner.full_warned = true;
                    tracing::warn!(
                        waiting,
                        "store queue full: refusing reports until it drains"
                    );
                }
                return Err(Refused::QueueFull { waiting });
            }
            for r in reports {
                if !inner.nodes.contains_key(&r.addr) && !inner.queued_new.contains_key(&r.addr) {
                    new_nodes.insert(r.addr.clone());
                }
            }
            let table = inner.nodes.len() + inner.queued_new.len();
            if !new_nodes.is_empty() && table + new_nodes.len() > self.limits.max_nodes {
                return Err(Refused::NodeTableFull {
                    max: self.limits.max_nodes,
                });
            }
            inner.queued_reports += reports.len();
            for a in &new_nodes {
                *inner.queued_new.entry(a.clone()).or_default() += 1;
            }
        }
        let (done, wait) = oneshot::channel();
        inner.queue.push_back(Job {
            change,
            new_nodes: new_nodes.into_iter().collect(),
            done,
        });
        self.metrics.queue_depth.set(inner.queued_reports as i64);
        drop(g);
        self.wake.notify_one();
        Ok(wait)
    }

    /// Records checked reports once committed (all or nothing); returns the blocked links.
    pub async fn ingest(&self, reports: Vec<NodeReport>) -> Result<Vec<BlockedLink>, Refused> {
        let n = reports.len();
        let result = self.submit(Change::Reports(reports)).await;
        match &result {
            Ok(_) => self.metrics.accepted(n),
            Err(why) => self.metrics.refused(why.reason(), n),
        }
        result
    }

    /// Forgets every node (the log keeps their history), once committed.
    pub async fn forget_nodes(&self) -> Result<(), Refused> {
        self.submit(Change::Forget).await.map(drop)
    }

    /// Replaces the whole set of blocked links, once committed; returns it sorted.
    pub async fn set_blocks(
        &self,
        mut links: Vec<BlockedLink>,
    ) -> Result<Vec<BlockedLink>, Refused> {
        links.sort();
        links.dedup();
        let n = links.len();
        let all = self.submit(Change::Blocks(links)).await?;
        tracing::info!(links = n, "blocked links replaced");
        Ok(all)
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

    /// Committed log entries with `seq > since` (all when `None`), of one node if given, at
    /// most `limit`, as a JSON array.
    pub fn log_json(&self, node: Option<&str>, since: Option<u64>, limit: usize) -> String {
        let g = self.lock();
        // Sorted by seq (quarantined entries and pruning leave gaps, so no index arithmetic).
        let start = since.map_or(0, |s| g.log.partition_point(|e| e.seq <= s));
        let mut out = String::from("[");
        for e in g
            .log
            .iter()
            .skip(start)
            .filter(|e| node.is_none_or(|n| &*e.addr == n))
            .take(limit)
        {
            if out.len() > 1 {
                out.push(',');
            }
            out.push_str(&e.json);
        }
        out.push(']');
        out
    }

    /// Committed log entries that arrived at `from_ms` or later (and have `seq > since` if
    /// given), the last `limit` of them, in log order.
    pub fn entries_from(&self, from_ms: u64, since: Option<u64>, limit: usize) -> Vec<LogEntry> {
        let g = self.lock();
        let start = since.map_or(0, |s| g.log.partition_point(|e| e.seq <= s));
        let kept: Vec<&Logged> = g
            .log
            .iter()
            .skip(start)
            .filter(|e| e.server_time_ms >= from_ms)
            .collect();
        kept[kept.len().saturating_sub(limit)..]
            .iter()
            .map(|e| serde_json::from_str(&e.json).expect("the log holds entries it encoded"))
            .collect()
    }

    /// The block changes since `from_ms`, after the set in force at `from_ms` (dated then).
    pub fn block_changes(&self, from_ms: u64) -> Vec<BlockChange> {
        let g = self.lock();
        let before = g
            .block_history
            .iter()
            .rev()
            .find(|c| c.at_ms < from_ms)
            .map_or_else(|| g.blocks_before_history.clone(), |c| c.links.clone());
        let mut out = vec![BlockChange {
            at_ms: from_ms,
            links: before,
        }];
        out.extend(
            g.block_history
                .iter()
                .filter(|c| c.at_ms >= from_ms)
                .cloned(),
        );
        out
    }

    /// Counts the newest `found` violations of the monitor's history in the metrics.
    fn count_violations(&self, monitor: &Monitor, found: usize) {
        if found == 0 {
            return;
        }
        let history = monitor.history();
        for v in &history[history.len().saturating_sub(found)..] {
            self.metrics.violation(&v.invariant.to_string(), v.expected);
        }
    }

    /// The invariant violations the monitor found, oldest first.
    pub fn violations(&self) -> Vec<ViolationRecord> {
        self.lock().monitor.history()
    }

    /// The blocked links, sorted.
    pub fn blocks(&self) -> Vec<BlockedLink> {
        self.lock().blocks.clone()
    }

    /// The store's health (failing while the last operation failed, or while a write has
    /// taken longer than the acknowledgement timeout), the queue and the table size.
    pub fn health(&self) -> Health {
        let g = self.lock();
        let stuck = g
            .writing_since
            .map(|since| since.elapsed())
            .filter(|took| *took > self.limits.ack_timeout)
            .map(|took| {
                format!(
                    "a store operation has been pending for {} ms",
                    took.as_millis()
                )
            });
        Health {
            failing: g.failing.clone().or(stuck),
            queue_depth: g.queued_reports,
            nodes: g.nodes.len(),
        }
    }

    fn set_failing(&self, failing: Option<String>) {
        self.lock().failing = failing;
    }

    fn set_writing(&self, since: Option<Instant>) {
        self.lock().writing_since = since;
    }

    /// Takes the next group of queued changes (and, if `evict`, the nodes silent for too long)
    /// as one batch, numbering its log entries from `next_seq`.
    fn take_group(&self, next_seq: &mut u64, evict: bool) -> (WriteBatch, Vec<Job>) {
        let now = now_ms();
        let mut g = self.lock();
        let inner = &mut *g;
        let mut evicted = BTreeSet::new();
        if evict {
            let blocked = !inner.blocks.is_empty();
            inner.monitor.blocks(blocked, now);
            let found = inner.monitor.tick(now);
            self.count_violations(&inner.monitor, found.len());
            let limit = u64::try_from(self.limits.forget_after.as_millis()).unwrap_or(u64::MAX);
            evicted.extend(
                inner
                    .nodes
                    .iter()
                    .filter(|(_, n)| now.saturating_sub(n.last_seen) > limit)
                    .map(|(a, _)| a.clone()),
            );
        }
        let mut batch = WriteBatch::default();
        let mut upserts: BTreeMap<String, NodeDoc> = BTreeMap::new();
        let mut jobs = Vec::new();
        let mut taken = 0;
        while let Some(front) = inner.queue.front() {
            let n = front.reports();
            if !jobs.is_empty() && taken + n > MAX_GROUP_REPORTS {
                break;
            }
            let Some(mut job) = inner.queue.pop_front() else {
                break;
            };
            inner.queued_reports -= n;
            for a in &job.new_nodes {
                if let Some(count) = inner.queued_new.get_mut(a) {
                    *count -= 1;
                    if *count == 0 {
                        inner.queued_new.remove(a);
                    }
                }
            }
            if job.done.is_closed() {
                // Its handler stopped waiting: never acknowledged, so never written.
                continue;
            }
            taken += n;
            match std::mem::replace(&mut job.change, Change::Forget) {
                Change::Reports(reports) => {
                    for report in reports {
                        evicted.remove(&report.addr);
                        upserts.insert(
                            report.addr.clone(),
                            NodeDoc {
                                report: report.clone(),
                                last_seen: now,
                            },
                        );
                        let entry = LogEntry {
                            seq: *next_seq,
                            server_time_ms: now,
                            report,
                        };
                        batch.log_json.push(encode(&entry));
                        batch.log.push(entry);
                        *next_seq += 1;
                    }
                }
                Change::Forget => {
                    batch.forget = true;
                    upserts.clear();
                    evicted.clear();
                }
                Change::Blocks(links) => batch.blocks = Some(links),
            }
            jobs.push(job);
        }
        if inner.queued_reports < self.limits.queue_limit / 2 {
            inner.full_warned = false;
        }
        self.metrics.queue_depth.set(inner.queued_reports as i64);
        batch.nodes = upserts.into_values().collect();
        batch.evict = evicted.into_iter().collect();
        batch.next_seq = *next_seq;
        (batch, jobs)
    }

    /// The batch is committed: make it visible, then acknowledge its jobs.
    fn committed(&self, batch: WriteBatch, written: Written, jobs: Vec<Job>) {
        let quarantined_log: BTreeSet<u64> = written.quarantined_log.iter().copied().collect();
        let quarantined_nodes: BTreeSet<&String> = written.quarantined_nodes.iter().collect();
        let mut g = self.lock();
        let inner = &mut *g;
        if batch.forget {
            inner.nodes.clear();
        }
        for a in &batch.evict {
            inner.nodes.remove(a);
        }
        for n in batch.nodes {
            if !quarantined_nodes.contains(&n.report.addr) {
                inner.nodes.insert(n.report.addr.clone(), n);
            }
        }
        if let Some(links) = batch.blocks {
            if inner.block_history.len() == BLOCK_HISTORY {
                if let Some(oldest) = inner.block_history.pop_front() {
                    inner.blocks_before_history = oldest.links;
                }
            }
            inner.block_history.push_back(BlockChange {
                at_ms: now_ms(),
                links: links.clone(),
            });
            inner.monitor.blocks(!links.is_empty(), now_ms());
            inner.blocks = links;
        }
        let mut found = 0;
        for (e, json) in batch.log.iter().zip(batch.log_json) {
            if quarantined_log.contains(&e.seq) {
                continue;
            }
            found += inner.monitor.report(e).len();
            if inner.log.len() == LOG_MEMORY {
                inner.log.pop_front();
            }
            inner.log.push_back(Logged::new(e, json));
        }
        inner.failing = None;
        self.count_violations(&inner.monitor, found);
        drop(g);
        if !batch.evict.is_empty() {
            self.metrics.evicted.inc_by(batch.evict.len() as u64);
            tracing::info!(nodes = ?batch.evict, "forgot silent nodes (--forget-after)");
        }
        self.metrics.quarantined("log", quarantined_log.len());
        self.metrics.quarantined("node", quarantined_nodes.len());
        self.acknowledge(jobs);
    }

    /// Answers the handlers of committed jobs with the blocked links now in force.
    fn acknowledge(&self, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let blocks = self.blocks();
        for job in jobs {
            let _ = job.done.send(blocks.clone());
        }
    }

    /// Drops pruned entries from the in-memory log too.
    fn pruned(&self, rule: Retention) {
        let mut g = self.lock();
        while g
            .log
            .front()
            .is_some_and(|e| e.server_time_ms < rule.before_ms || e.seq < rule.below_seq)
        {
            g.log.pop_front();
        }
    }

    fn retention(&self, next_seq: u64) -> Retention {
        let age = u64::try_from(self.limits.retain.as_millis()).unwrap_or(u64::MAX);
        Retention {
            before_ms: now_ms().saturating_sub(age),
            below_seq: next_seq.saturating_sub(self.limits.retain_entries),
            max_delete: PRUNE_MAX,
        }
    }
}

/// Commits queued changes in groups until a stop is requested (or the server handle is gone)
/// and the queue is empty, or the store has kept failing for [`FLUSH_GIVE_UP`] after the stop.
/// Prunes the log and forgets silent nodes on the way.
pub(crate) async fn run_writer(
    hub: Arc<Hub>,
    store: Box<dyn Store>,
    mut next_seq: u64,
    mut stop: watch::Receiver<bool>,
) {
    let mut next_evict = Instant::now();
    let mut next_prune = Instant::now();
    let mut stopping = false;
    loop {
        stopping |= *stop.borrow();
        let now = Instant::now();
        if now >= next_prune {
            next_prune = now + PRUNE_EVERY;
            prune(&hub, store.as_ref(), next_seq).await;
        }
        let evict = now >= next_evict;
        if evict {
            next_evict = now + EVICT_EVERY;
        }
        let (batch, jobs) = hub.take_group(&mut next_seq, evict);
        if batch.is_empty() {
            // Nothing to write (an empty report batch is acknowledged as it is).
            hub.acknowledge(jobs);
            if stopping && hub.lock().queue.is_empty() {
                break;
            }
            tokio::select! {
                () = hub.wake.notified() => {}
                () = tokio::time::sleep_until(next_evict.min(next_prune)) => {}
                changed = stop.changed() => stopping |= changed.is_err(),
            }
            continue;
        }
        if !commit(&hub, store.as_ref(), batch, jobs, &mut stop, &mut stopping).await {
            break;
        }
    }
    tracing::debug!("store writer done; closing the store");
    if let Err(e) = store.close().await {
        tracing::warn!(error = %e, "closing the store failed");
    }
}

/// Writes one batch, retrying with back-off while the store fails. Returns false when a
/// shutdown gave up on it (its jobs are then answered "not acknowledged").
async fn commit(
    hub: &Hub,
    store: &dyn Store,
    batch: WriteBatch,
    jobs: Vec<Job>,
    stop: &mut watch::Receiver<bool>,
    stopping: &mut bool,
) -> bool {
    let batch = Arc::new(batch);
    let mut backoff = Duration::from_millis(100);
    let mut failing_since_stop: Option<Instant> = None;
    hub.set_writing(Some(Instant::now()));
    loop {
        let started = Instant::now();
        match store.write(batch.clone()).await {
            Ok(written) => {
                hub.set_writing(None);
                hub.metrics
                    .write_seconds
                    .observe(started.elapsed().as_secs_f64());
                hub.committed(Arc::unwrap_or_clone(batch), written, jobs);
                return true;
            }
            Err(e) => {
                hub.metrics.write_failures.inc();
                tracing::warn!(error = %e, reports = batch.log.len(), "store write failed; will retry");
                hub.set_failing(Some(e.to_string()));
                *stopping |= *stop.borrow();
                if *stopping {
                    let since = *failing_since_stop.get_or_insert_with(Instant::now);
                    if since.elapsed() >= FLUSH_GIVE_UP {
                        let queued = hub.health().queue_depth;
                        tracing::error!(
                            unacknowledged = batch.log.len() + queued,
                            "store unavailable at shutdown: giving up on reports never \
                             acknowledged"
                        );
                        hub.set_writing(None);
                        return false;
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn prune(hub: &Hub, store: &dyn Store, next_seq: u64) {
    let rule = hub.retention(next_seq);
    hub.set_writing(Some(Instant::now()));
    let pruned = store.prune(rule).await;
    hub.set_writing(None);
    match pruned {
        Ok(removed) => {
            if removed > 0 {
                hub.metrics.pruned.inc_by(removed);
                tracing::debug!(removed, "pruned old log entries");
            }
            hub.pruned(rule);
            hub.set_failing(None);
        }
        Err(e) => {
            tracing::warn!(error = %e, "pruning the log failed; will retry");
            hub.set_failing(Some(e.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use election_core::State;
    use election_core::report::ReportEvent;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::store::{BoxFuture, StoreError};

    /// A store whose writes wait for a permit of `gate` and fail while `fail` is set.
    struct Fake {
        gate: Semaphore,
        fail: AtomicBool,
        written: Mutex<Vec<WriteBatch>>,
    }

    struct FakeStore(Arc<Fake>);

    impl Store for FakeStore {
        fn load(&self, _: usize) -> BoxFuture<'_, Result<Snapshot, StoreError>> {
            Box::pin(async { Ok(Snapshot::default()) })
        }

        fn write(&self, batch: Arc<WriteBatch>) -> BoxFuture<'_, Result<Written, StoreError>> {
            Box::pin(async move {
                self.0.gate.acquire().await.expect("open gate").forget();
                if self.0.fail.load(Ordering::SeqCst) {
                    return Err(StoreError::DataDir {
                        path: "fake".into(),
                        source: std::io::Error::other("disk on fire"),
                    });
                }
                self.0
                    .written
                    .lock()
                    .unwrap()
                    .push(WriteBatch::clone(&batch));
                Ok(Written::default())
            })
        }

        fn prune(&self, _: Retention) -> BoxFuture<'_, Result<u64, StoreError>> {
            Box::pin(async { Ok(0) })
        }

        fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
            Box::pin(async { Ok(()) })
        }
    }

    fn report(t: u64) -> NodeReport {
        NodeReport {
            addr: format!("127.0.0.1:{}", 9000 + t % 3),
            algorithm: "bully".into(),
            event: ReportEvent::Heartbeat,
            state: State::Normal,
            coordinator: None,
            group: None,
            incarnation: None,
            term: None,
            phase: "Normal".into(),
            node_time_us: t,
            heartbeat_ms: 1000,
            pid: 1,
            drops: BTreeMap::new(),
            messages: Vec::new(),
            messages_dropped: 0,
        }
    }

    fn hub(ack_timeout: Duration) -> (Arc<Hub>, Arc<Fake>, watch::Sender<bool>) {
        let limits = Limits {
            queue_limit: 1000,
            max_nodes: 100,
            forget_after: Duration::from_secs(600),
            retain: Duration::from_secs(600),
            retain_entries: 1000,
            ack_timeout,
        };
        let hub = Arc::new(Hub::new(Snapshot::default(), limits));
        let fake = Arc::new(Fake {
            gate: Semaphore::new(0),
            fail: AtomicBool::new(false),
            written: Mutex::new(Vec::new()),
        });
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(run_writer(
            hub.clone(),
            Box::new(FakeStore(fake.clone())),
            0,
            stopped,
        ));
        (hub, fake, stop)
    }

    fn seqs(hub: &Hub) -> Vec<u64> {
        let log: serde_json::Value = serde_json::from_str(&hub.log_json(None, None, 100)).unwrap();
        log.as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn acknowledged_and_visible_only_after_the_commit_which_requests_share() {
        let (hub, fake, _stop) = hub(Duration::from_secs(10));
        let ingests: Vec<_> = (0..10)
            .map(|t| {
                let hub = hub.clone();
                tokio::spawn(async move { hub.ingest(vec![report(t)]).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            ingests.iter().all(|i| !i.is_finished()),
            "acknowledged before the commit"
        );
        assert!(seqs(&hub).is_empty(), "visible before the commit");
        assert!(hub.views().is_empty());
        fake.gate.add_permits(100);
        for i in ingests {
            assert!(i.await.unwrap().is_ok());
        }
        assert_eq!(seqs(&hub), (0..10).collect::<Vec<_>>());
        let written = fake.written.lock().unwrap();
        assert!(
            written.len() <= 2,
            "{} commits for 10 requests",
            written.len()
        );
        assert_eq!(
            written.last().unwrap().next_seq,
            10,
            "the reservation is written"
        );
        assert_eq!(hub.views().len(), 3);
    }

    #[tokio::test]
    async fn a_failing_store_acknowledges_nothing_then_retries_without_reusing_seqs() {
        let (hub, fake, _stop) = hub(Duration::from_millis(200));
        fake.fail.store(true, Ordering::SeqCst);
        fake.gate.add_permits(1000);
        let refused = hub.ingest(vec![report(1)]).await.unwrap_err();
        assert!(
            matches!(refused, Refused::NotAcknowledged { .. }),
            "{refused:?}"
        );
        assert!(hub.health().failing.is_some());
        fake.fail.store(false, Ordering::SeqCst);
        // The writer retries the same batch (same seq) with back-off; nothing else overtakes it.
        hub.ingest(vec![report(2)]).await.unwrap();
        assert_eq!(seqs(&hub), [0, 1]);
        assert!(hub.health().failing.is_none());
        let written = fake.written.lock().unwrap();
        let times: Vec<u64> = written
            .iter()
            .flat_map(|b| b.log.iter().map(|e| e.report.node_time_us))
            .collect();
        assert_eq!(
            times,
            [1, 2],
            "the unacknowledged report may still be written, once"
        );
    }

    #[tokio::test]
    async fn a_request_that_gave_up_before_its_commit_began_is_not_written() {
        let (hub, fake, _stop) = hub(Duration::from_millis(200));
        let first = {
            let hub = hub.clone();
            tokio::spawn(async move { hub.ingest(vec![report(1)]).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await; // the writer holds report 1
        assert!(
            hub.ingest(vec![report(2)]).await.is_err(),
            "report 2 waits too long"
        );
        fake.gate.add_permits(100);
        assert!(
            first.await.unwrap().is_err(),
            "report 1 also waited too long"
        );
        hub.ingest(vec![report(3)]).await.unwrap();
        let written = fake.written.lock().unwrap();
        let times: Vec<u64> = written
            .iter()
            .flat_map(|b| b.log.iter().map(|e| e.report.node_time_us))
            .collect();
        assert_eq!(
            times,
            [1, 3],
            "report 1 was being written; report 2 was dropped"
        );
    }
}
