//! The counters behind `GET /metrics`, in the Prometheus text format. One registry per server,
//! so several servers in one process (the tests) keep their own figures.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::model::NodeDoc;

/// Why a report batch was refused: the `reason` label of `logserver_reports_refused_total`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Refusal {
    /// Bad JSON, a bad field, a wrong content type or too large.
    Invalid,
    /// Missing or wrong reporter token.
    Unauthorized,
    /// The store queue is full.
    QueueFull,
    /// The node table is full and the report is from a new node.
    NodeTableFull,
    /// Not committed within the acknowledgement timeout (store failing).
    NotAcknowledged,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Refusal::Invalid => "invalid",
            Refusal::Unauthorized => "unauthorized",
            Refusal::QueueFull => "queue_full",
            Refusal::NodeTableFull => "node_table_full",
            Refusal::NotAcknowledged => "not_acknowledged",
        }
    }
}

/// Every figure the logserver exports.
pub(crate) struct Metrics {
    registry: Registry,
    accepted: IntCounter,
    refused: IntCounterVec,
    /// Reports waiting for the store.
    pub queue_depth: IntGauge,
    /// Time of each store write (one group commit).
    pub write_seconds: Histogram,
    /// Store writes that failed (and were retried).
    pub write_failures: IntCounter,
    quarantined: IntCounterVec,
    /// Log entries deleted by retention.
    pub pruned: IntCounter,
    /// Nodes forgotten after `--forget-after` of silence.
    pub evicted: IntCounter,
    nodes_known: IntGauge,
    nodes_reachable: IntGauge,
    /// Open HTTP connections.
    pub connections_open: IntGauge,
    /// Connections refused at the cap.
    pub connections_refused: IntCounter,
    violations: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric name");
            registry.register(Box::new(c.clone())).expect("unique");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric name");
            registry.register(Box::new(g.clone())).expect("unique");
            g
        };
        let vec = |name: &str, help: &str, label: &str| {
            let v = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid name");
            registry.register(Box::new(v.clone())).expect("unique");
            v
        };
        let buckets = vec![
            0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
        ];
        let write_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "logserver_store_write_seconds",
                "Duration of one store write (a group commit of many requests)",
            )
            .buckets(buckets),
        )
        .expect("valid histogram");
        registry
            .register(Box::new(write_seconds.clone()))
            .expect("unique");
        Metrics {
            accepted: counter(
                "logserver_reports_accepted_total",
                "Reports committed to the store and acknowledged",
            ),
            refused: vec(
                "logserver_reports_refused_total",
                "Reports refused, by reason",
                "reason",
            ),
            queue_depth: gauge("logserver_queue_depth", "Reports waiting for the store"),
            write_seconds,
            write_failures: counter(
                "logserver_store_write_failures_total",
                "Store writes that failed and were retried",
            ),
            quarantined: vec(
                "logserver_quarantined_total",
                "Documents the store refused, set aside in its quarantine, by kind (log, node)",
                "kind",
            ),
            pruned: counter(
                "logserver_log_pruned_total",
                "Log entries deleted by retention (--retain, --retain-entries)",
            ),
            evicted: counter(
                "logserver_nodes_evicted_total",
                "Nodes forgotten after --forget-after of silence",
            ),
            nodes_known: gauge("logserver_nodes_known", "Nodes in the node table"),
            nodes_reachable: gauge(
                "logserver_nodes_reachable",
                "Nodes that reported within three heartbeats and have not left",
            ),
            connections_open: gauge("logserver_connections_open", "Open HTTP connections"),
            connections_refused: counter(
                "logserver_connections_refused_total",
                "Connections refused because --max-connections were open",
            ),
            violations: {
                let v = IntCounterVec::new(
                    Opts::new(
                        "logserver_invariant_violations_total",
                        "Invariant breaches the live monitor found in the reports (see /api/violations), by invariant and whether the model allows them",
                    ),
                    &["invariant", "expected"],
                )
                .expect("valid name");
                registry.register(Box::new(v.clone())).expect("unique");
                v
            },
            registry,
        }
    }

    /// Counts a breach of `invariant` the monitor found.
    pub fn violation(&self, invariant: &str, expected: bool) {
        let expected = if expected { "true" } else { "false" };
        self.violations
            .with_label_values(&[invariant, expected])
            .inc();
    }

    /// Counts `n` reports acknowledged.
    pub fn accepted(&self, n: usize) {
        self.accepted.inc_by(n as u64);
    }

    /// Counts `n` reports refused for `why`.
    pub fn refused(&self, why: Refusal, n: usize) {
        self.refused
            .with_label_values(&[why.label()])
            .inc_by(n as u64);
    }

    /// Counts documents set aside, of `kind` (`log` or `node`).
    pub fn quarantined(&self, kind: &str, n: usize) {
        if n > 0 {
            self.quarantined.with_label_values(&[kind]).inc_by(n as u64);
        }
    }

    /// The text exposition: the registry, plus the node gauges and every node's reported drop
    /// counters, read from `nodes` now.
    pub fn render(&self, nodes: &[NodeDoc], now_ms: u64) -> String {
        self.nodes_known.set(nodes.len() as i64);
        self.nodes_reachable
            .set(nodes.iter().filter(|n| n.reachable(now_ms)).count() as i64);
        // Built per scrape, so a forgotten node's series disappears with it.
        let drops = IntCounterVec::new(
            Opts::new(
                "election_node_dropped_datagrams_total",
                "Datagrams each node dropped since it started, by reason, as it last reported",
            ),
            &["node", "reason"],
        )
        .expect("valid metric name");
        for n in nodes {
            for (reason, count) in &n.report.drops {
                drops
                    .with_label_values(&[n.addr(), reason.as_str()])
                    .inc_by(*count);
            }
        }
        let mut families = self.registry.gather();
        if nodes.iter().any(|n| !n.report.drops.is_empty()) {
            families.extend(prometheus::core::Collector::collect(&drops));
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&families, &mut out)
            .expect("text encoding into memory");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}
