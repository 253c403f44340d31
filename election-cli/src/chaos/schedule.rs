//! The fault schedule of a chaos campaign: a pure function of the seed, the cluster size and
//! what the protocol declares, so a campaign is repeated by repeating its seed. Each step is one
//! fault held for a while and then healed; the driver waits for the cluster to settle before
//! the next step.

use election_core::Properties;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// One fault, on nodes named by their line in the cluster file (0 = lowest priority).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// SIGKILL the node; the heal starts it again with the same command line and state dir.
    Kill {
        /// The node.
        node: usize,
    },
    /// SIGSTOP the node; the heal sends SIGCONT.
    Pause {
        /// The node.
        node: usize,
    },
    /// SIGTERM the node (it leaves gracefully); the heal starts it again, and it rejoins.
    Leave {
        /// The node.
        node: usize,
    },
    /// Drop datagrams from `from` to `to` only.
    BlockOneWay {
        /// The sender whose datagrams are dropped.
        from: usize,
        /// The receiver.
        to: usize,
    },
    /// Drop datagrams between `a` and `b` both ways.
    BlockTwoWay {
        /// One end.
        a: usize,
        /// The other end.
        b: usize,
    },
    /// Cut `side` (fewer than half of the nodes) off from the rest, both ways.
    SplitMinority {
        /// The minority side.
        side: Vec<usize>,
    },
    /// Cut the cluster into two halves (`side` and the rest; with an odd count the rest is
    /// the majority by one).
    SplitHalves {
        /// One half.
        side: Vec<usize>,
    },
    /// Cut whichever node leads when the fault starts off from every other node (the target
    /// is chosen at run time and logged).
    IsolateLeader,
    /// Block the link between `a` and `b` both ways and unblock it, `flips` times in turn,
    /// evenly over the hold time.
    Flap {
        /// One end.
        a: usize,
        /// The other end.
        b: usize,
        /// How many block/unblock changes.
        flips: u32,
    },
}

impl Fault {
    /// Whether the fault leaves Garcia-Molina's synchronous model: lost datagrams (every block
    /// and split) and a pause (a stopped process answers late, like a message slower than the
    /// timeouts allow). A crash, a graceful leave and a restart stay inside it.
    pub fn leaves_synchronous_model(&self) -> bool {
        !matches!(self, Fault::Kill { .. } | Fault::Leave { .. })
    }
}

/// The kinds of [`Fault`], for choosing which a campaign draws (`--faults`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum FaultKind {
    /// SIGKILL and restart.
    Kill,
    /// SIGSTOP and SIGCONT.
    Pause,
    /// Graceful leave and rejoin.
    Leave,
    /// Block one direction of a link.
    BlockOneWay,
    /// Block a link both ways.
    BlockTwoWay,
    /// Cut a minority off.
    SplitMinority,
    /// Cut the cluster in halves.
    SplitHalves,
    /// Cut the current leader off.
    IsolateLeader,
    /// Block and unblock a link in turn.
    Flap,
}

impl FaultKind {
    /// Every kind, in the order the schedule draws from.
    pub const ALL: [FaultKind; 9] = [
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Leave,
        FaultKind::BlockOneWay,
        FaultKind::BlockTwoWay,
        FaultKind::SplitMinority,
        FaultKind::SplitHalves,
        FaultKind::IsolateLeader,
        FaultKind::Flap,
    ];
}

/// One step of the campaign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The fault.
    pub fault: Fault,
    /// How long it is held before the heal, in ms.
    pub hold_ms: u64,
}

/// What a campaign is drawn from.
#[derive(Clone, Debug)]
pub struct Plan<'a> {
    /// The seed.
    pub seed: u64,
    /// Cluster size (2 or more).
    pub n: usize,
    /// How many steps.
    pub events: usize,
    /// What the protocol declares.
    pub properties: &'a Properties,
    /// The nodes' timeout, ms.
    pub timeout_ms: u64,
    /// The kinds to draw from (empty: all that apply).
    pub kinds: &'a [FaultKind],
    /// Every fault held this long, ms (`None`: two to four timeouts, drawn).
    pub hold_ms: Option<u64>,
}

/// The kinds a plan draws from: those asked for (all by default) that apply. Graceful leaves
/// only where the protocol declares its guarantees across membership changes (as the
/// simulator does); splits only with 3 nodes or more.
pub fn kinds(plan: &Plan<'_>) -> Vec<FaultKind> {
    let asked = if plan.kinds.is_empty() {
        &FaultKind::ALL[..]
    } else {
        plan.kinds
    };
    FaultKind::ALL
        .into_iter()
        .filter(|k| asked.contains(k))
        .filter(|k| *k != FaultKind::Leave || plan.properties.membership)
        .filter(|k| !matches!(k, FaultKind::SplitMinority | FaultKind::SplitHalves) || plan.n >= 3)
        .collect()
}

/// The steps of `plan`, drawn from its seed. Each fault is held two to four timeouts unless
/// the plan fixes the hold: long enough for the cluster to notice.
pub fn schedule(plan: &Plan<'_>) -> Vec<Step> {
    let n = plan.n;
    let timeout_ms = plan.timeout_ms;
    let kinds = kinds(plan);
    let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
    if kinds.is_empty() {
        return Vec::new();
    }
    (0..plan.events)
        .map(|_| {
            let kind = kinds[rng.random_range(0..kinds.len())];
            let node = rng.random_range(0..n);
            let other = (node + rng.random_range(1..n)) % n;
            let fault = match kind {
                FaultKind::Kill => Fault::Kill { node },
                FaultKind::Pause => Fault::Pause { node },
                FaultKind::Leave => Fault::Leave { node },
                FaultKind::BlockOneWay => Fault::BlockOneWay {
                    from: node,
                    to: other,
                },
                FaultKind::BlockTwoWay => Fault::BlockTwoWay { a: node, b: other },
                FaultKind::SplitMinority => Fault::SplitMinority {
                    side: pick(&mut rng, n, minority(n)),
                },
                FaultKind::SplitHalves => Fault::SplitHalves {
                    side: pick(&mut rng, n, n / 2),
                },
                FaultKind::IsolateLeader => Fault::IsolateLeader,
                FaultKind::Flap => Fault::Flap {
                    a: node,
                    b: other,
                    flips: 4 + 2 * rng.random_range(0..3),
                },
            };
            let drawn = timeout_ms * 2 + rng.random_range(0..=timeout_ms * 2);
            Step {
                fault,
                hold_ms: plan.hold_ms.unwrap_or(drawn),
            }
        })
        .collect()
}

/// The size of the minority side: the largest set that is still fewer than half.
fn minority(n: usize) -> usize {
    (n - 1) / 2
}

/// `k` distinct nodes of `0..n`, sorted.
fn pick(rng: &mut ChaCha8Rng, n: usize, k: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = rng.random_range(i..n);
        all.swap(i, j);
    }
    let mut side = all[..k].to_vec();
    side.sort_unstable();
    side
}

#[cfg(test)]
mod tests {
    use election_core::{Algorithm, Protocol, Timing, with_protocol};

    use super::*;

    fn properties(algorithm: Algorithm) -> Properties {
        let timing = Timing {
            heartbeat: 100_000,
            timeout: 500_000,
        };
        with_protocol!(algorithm, P => P::properties(&election_core::Config::new(timing)))
    }

    fn plan<'a>(seed: u64, properties: &'a Properties, kinds: &'a [FaultKind]) -> Plan<'a> {
        Plan {
            seed,
            n: 5,
            events: 300,
            properties,
            timeout_ms: 500,
            kinds,
            hold_ms: None,
        }
    }

    #[test]
    fn the_schedule_is_a_function_of_the_seed_and_names_real_nodes() {
        let p = properties(Algorithm::Bully);
        let a = schedule(&plan(7, &p, &[]));
        assert_eq!(a, schedule(&plan(7, &p, &[])));
        assert_ne!(a, schedule(&plan(8, &p, &[])));
        for step in &a {
            assert!((1000..=2000).contains(&step.hold_ms), "{step:?}");
            match &step.fault {
                Fault::SplitMinority { side } => assert_eq!(side.len(), 2),
                Fault::SplitHalves { side } => assert_eq!(side.len(), 2),
                Fault::BlockOneWay { from: a, to: b }
                | Fault::BlockTwoWay { a, b }
                | Fault::Flap { a, b, .. } => assert!(a != b && *a < 5 && *b < 5),
                _ => {}
            }
        }
        // Every kind of fault turns up in a long campaign.
        let kinds: std::collections::BTreeSet<String> = a
            .iter()
            .map(|s| serde_json::to_value(&s.fault).unwrap()["kind"].to_string())
            .collect();
        assert_eq!(kinds.len(), 9);
    }

    #[test]
    fn no_leaves_where_the_guarantees_do_not_cover_membership_changes() {
        let raft = properties(Algorithm::Raft);
        assert!(!raft.membership);
        let steps = schedule(&plan(1, &raft, &[]));
        assert!(
            steps
                .iter()
                .all(|s| !matches!(s.fault, Fault::Leave { .. }))
        );
        // Asking for leaves only leaves nothing to draw.
        assert!(schedule(&plan(1, &raft, &[FaultKind::Leave])).is_empty());
        let only = schedule(&Plan {
            hold_ms: Some(4000),
            ..plan(1, &raft, &[FaultKind::SplitHalves])
        });
        assert!(
            only.iter()
                .all(|s| matches!(s.fault, Fault::SplitHalves { .. }) && s.hold_ms == 4000)
        );
    }
}
