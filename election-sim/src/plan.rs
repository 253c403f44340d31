//! Fault plans: the network the simulated cluster runs on and the timed faults it suffers.
//!
//! A plan comes from a scenario file (TOML or JSON, see the crate README) or is generated from
//! the seed by [`RandomFaults::generate`]. Either way the simulator receives a concrete, validated
//! [`Plan`], and the trace header records it, so a run is reproducible from the header alone.

use std::path::Path;

use election_core::{Model, Time, Timing};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How messages travel while faults are active (after the last fault the simulator calms the
/// network, see [`crate::sim`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    /// Smallest one-way delay, microseconds.
    pub min_latency_us: Time,
    /// Largest one-way delay, microseconds. Each message draws its delay uniformly from
    /// `min_latency_us..=max_latency_us`, so messages on one link overtake each other
    /// (reordering) whenever the range is wider than the gap between two sends.
    pub max_latency_us: Time,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice (each copy draws its own delay).
    pub duplicate: f64,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            min_latency_us: 1_000,
            max_latency_us: 5_000,
            loss: 0.0,
            duplicate: 0.0,
        }
    }
}

impl Network {
    fn validate(&self, at: &str) -> Result<(), PlanError> {
        if self.min_latency_us > self.max_latency_us {
            return Err(PlanError::field(
                at,
                "min_latency_us",
                format!(
                    "{} is larger than max_latency_us {}",
                    self.min_latency_us, self.max_latency_us
                ),
            ));
        }
        for (name, p) in [("loss", self.loss), ("duplicate", self.duplicate)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(PlanError::field(
                    at,
                    name,
                    format!("{p} is not a probability in 0..=1"),
                ));
            }
        }
        Ok(())
    }
}

/// One fault (or repair) the plan applies at a point in time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Fault {
    /// The node stops; its state and timers are lost, what it persisted is kept.
    Crash {
        /// Which node.
        node: u32,
    },
    /// A crashed node boots with a fresh state machine and what it persisted.
    Recover {
        /// Which node.
        node: u32,
    },
    /// A new node (numbered after every node so far) boots and asks to join through member
    /// `via` — or, without `via`, through a live member drawn from the seed. Its id comes from
    /// the membership layer of `election-core`: the admitter's next id in its slot, above every
    /// id it knows. `fault = "join"` alone is the old form and still reads.
    Join {
        /// The member asked first (a non-admitter redirects to the admitters).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        via: Option<u32>,
    },
    /// The node tells every member it leaves (a `left` control message), then stops for good.
    /// A node that is down cannot say so: it just never comes back.
    Leave {
        /// Which node.
        node: u32,
    },
    /// Only nodes of the same group can talk; a node listed in no group is isolated. Replaces
    /// any earlier partition (single blocked links stay).
    Partition {
        /// The groups of node ids.
        groups: Vec<Vec<u32>>,
    },
    /// Messages from `from` to `to` are dropped (and from `to` to `from` too unless `one_way`).
    Block {
        /// Sender side of the cut.
        from: u32,
        /// Receiver side of the cut.
        to: u32,
        /// Cut only the direction `from` → `to`.
        #[serde(default)]
        one_way: bool,
    },
    /// Removes the partition and every blocked link.
    Heal,
    /// From now on messages travel on this network (links with their own network excepted).
    Network {
        /// The latency, loss and duplication of every link from now on.
        network: Network,
    },
    /// From now on messages from `from` to `to` travel on their own network (one direction;
    /// the calm at the end of the plan removes it).
    Link {
        /// Sender.
        from: u32,
        /// Receiver.
        to: u32,
        /// That link's latency, loss and duplication.
        network: Network,
    },
    /// The node's clock runs at a different rate: every timer it sets lasts `1 + rate` times as
    /// long (`rate` in -0.5..=0.5; negative shrinks).
    Drift {
        /// Which node.
        node: u32,
        /// Relative stretch of the node's timers.
        rate: f64,
    },
}

impl Fault {
    /// The fault's name as written in scenario files.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Crash { .. } => "crash",
            Fault::Recover { .. } => "recover",
            Fault::Join { .. } => "join",
            Fault::Leave { .. } => "leave",
            Fault::Partition { .. } => "partition",
            Fault::Block { .. } => "block",
            Fault::Heal => "heal",
            Fault::Network { .. } => "network",
            Fault::Link { .. } => "link",
            Fault::Drift { .. } => "drift",
        }
    }

    /// Every node id the fault names.
    fn nodes(&self) -> Vec<(&'static str, u32)> {
        match self {
            Fault::Crash { node } | Fault::Recover { node } | Fault::Leave { node } => {
                vec![("node", *node)]
            }
            Fault::Drift { node, .. } => vec![("node", *node)],
            Fault::Block { from, to, .. } | Fault::Link { from, to, .. } => {
                vec![("from", *from), ("to", *to)]
            }
            Fault::Partition { groups } => {
                groups.iter().flatten().map(|&n| ("groups", n)).collect()
            }
            Fault::Join { via } => via.iter().map(|&n| ("via", n)).collect(),
            Fault::Heal | Fault::Network { .. } => Vec::new(),
        }
    }
}

/// A fault and when it happens. (Unknown keys are rejected by [`Fault`]; serde cannot also deny
/// them here because of the flattening.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimedFault {
    /// Virtual time of the fault, microseconds since the cluster booted.
    pub at_us: Time,
    /// What happens.
    #[serde(flatten)]
    pub fault: Fault,
}

/// The network a run starts on and the faults it suffers, in time order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Plan {
    /// The network from boot until a [`Fault::Network`] fault changes it.
    pub network: Network,
    /// The faults, sorted by `at_us` (ties keep file order).
    pub faults: Vec<TimedFault>,
}

/// A scenario file or plan that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The file could not be read.
    #[error("cannot read plan file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML/JSON for a plan.
    #[error("plan file {path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message (it names the line and the field).
        message: String,
    },
    /// A field has a value the simulator cannot use.
    #[error("plan {at}.{field}: {problem}")]
    Field {
        /// Where in the plan, e.g. `faults[3]`.
        at: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
}

impl PlanError {
    fn field(at: &str, field: &'static str, problem: String) -> Self {
        PlanError::Field {
            at: at.to_string(),
            field,
            problem,
        }
    }
}

impl Plan {
    /// A plan without faults on the default network.
    pub fn calm() -> Self {
        Plan::default()
    }

    /// Reads a scenario file: JSON if the name ends in `.json`, TOML otherwise. The plan is
    /// validated for a cluster that boots with `nodes` nodes.
    pub fn load(path: &Path, nodes: u32) -> Result<Plan, PlanError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PlanError::Read {
            path: shown.clone(),
            source,
        })?;
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let plan: Plan = if is_json {
            serde_json::from_str(&text).map_err(|e| PlanError::Syntax {
                path: shown.clone(),
                message: e.to_string(),
            })?
        } else {
            toml::from_str(&text).map_err(|e| PlanError::Syntax {
                path: shown.clone(),
                message: e.to_string(),
            })?
        };
        plan.validate(nodes).map_err(|e| match e {
            PlanError::Field { at, field, problem } => PlanError::Syntax {
                path: shown,
                message: format!("{at}.{field}: {problem}"),
            },
            other => other,
        })?;
        Ok(plan)
    }

    /// Checks probabilities, latency ranges, drift rates, time order and node ids (a node must
    /// exist: be one of the first `nodes` or created by an earlier `join`).
    pub fn validate(&self, nodes: u32) -> Result<(), PlanError> {
        self.network.validate("network")?;
        let mut existing = nodes;
        let mut last = 0;
        for (i, f) in self.faults.iter().enumerate() {
            let at = format!("faults[{i}]");
            if f.at_us < last {
                return Err(PlanError::field(
                    &at,
                    "at_us",
                    format!(
                        "{} is earlier than the fault before it ({last}); faults must be in time order",
                        f.at_us
                    ),
                ));
            }
            last = f.at_us;
            for (field, node) in f.fault.nodes() {
                if node >= existing {
                    return Err(PlanError::field(
                        &at,
                        field,
                        format!("node {node} does not exist at that time (ids 0..{existing})"),
                    ));
                }
            }
            match &f.fault {
                Fault::Join { .. } => existing += 1,
                Fault::Network { network: net } | Fault::Link { network: net, .. } => {
                    net.validate(&format!("{at}.network"))?
                }
                Fault::Drift { rate, .. } if !(-0.5..=0.5).contains(rate) => {
                    return Err(PlanError::field(
                        &at,
                        "rate",
                        format!("{rate} is outside -0.5..=0.5"),
                    ));
                }
                Fault::Block { from, to, .. } if from == to => {
                    return Err(PlanError::field(
                        &at,
                        "to",
                        format!("a node cannot block itself ({from})"),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// When the last fault happens (0 for a calm plan): from then on the simulator calms the
    /// network and the liveness clock starts.
    pub fn last_fault(&self) -> Time {
        self.faults.last().map_or(0, |f| f.at_us)
    }

    /// The first join or leave of the plan, with its index.
    pub fn first_membership_change(&self) -> Option<(usize, &TimedFault)> {
        self.faults
            .iter()
            .enumerate()
            .find(|(_, f)| matches!(f.fault, Fault::Join { .. } | Fault::Leave { .. }))
    }

    /// The largest one-way delay any network of the plan allows.
    pub fn max_latency(&self) -> Time {
        self.faults
            .iter()
            .filter_map(|f| match &f.fault {
                Fault::Network { network: net } | Fault::Link { network: net, .. } => {
                    Some(net.max_latency_us)
                }
                _ => None,
            })
            .fold(self.network.max_latency_us, Time::max)
    }

    /// The largest timer stretch any drift of the plan sets (0 without slow clocks).
    pub fn max_stretch(&self) -> f64 {
        self.faults
            .iter()
            .filter_map(|f| match f.fault {
                Fault::Drift { rate, .. } => Some(rate),
                _ => None,
            })
            .fold(0.0, f64::max)
    }
}

/// A kind of fault a random plan may draw. With swarm testing each seed enables its own subset,
/// so that rare combinations are not drowned by the full mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Crashes (with quick recoveries in synchronous plans).
    Crash,
    /// Recoveries.
    Recover,
    /// Partitions into two sides.
    Partition,
    /// Blocked links, one-way or both ways.
    Block,
    /// A new network for every link from some point on.
    Network,
    /// A link's own network.
    Link,
    /// Clock drift.
    Drift,
    /// Joins.
    Join,
    /// Graceful leaves.
    Leave,
    /// Message loss in generated networks.
    Loss,
    /// Message duplication in generated networks.
    Duplication,
}

impl FaultKind {
    /// Every kind, in order.
    pub const ALL: [FaultKind; 11] = [
        FaultKind::Crash,
        FaultKind::Recover,
        FaultKind::Partition,
        FaultKind::Block,
        FaultKind::Network,
        FaultKind::Link,
        FaultKind::Drift,
        FaultKind::Join,
        FaultKind::Leave,
        FaultKind::Loss,
        FaultKind::Duplication,
    ];

    /// The kinds a synchronous plan can draw (the others leave the model).
    /// Inside Garcia-Molina's synchronous model: its processes are a fixed set, so joins and
    /// leaves are not among them (see `Sim::apply`).
    const SYNCHRONOUS: [FaultKind; 3] = [FaultKind::Crash, FaultKind::Recover, FaultKind::Drift];

    /// The kind's name, as `--json` and the failure report print it.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Crash => "crash",
            FaultKind::Recover => "recover",
            FaultKind::Partition => "partition",
            FaultKind::Block => "block",
            FaultKind::Network => "network",
            FaultKind::Link => "link",
            FaultKind::Drift => "drift",
            FaultKind::Join => "join",
            FaultKind::Leave => "leave",
            FaultKind::Loss => "loss",
            FaultKind::Duplication => "duplication",
        }
    }
}

/// How wild a randomly generated plan is. Every field has a default; `faults = 0` gives a calm
/// run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomFaults {
    /// Number of fault events.
    pub faults: u32,
    /// Faults happen at random times in `0..window_us`.
    pub window_us: Time,
    /// Largest message-loss probability of a generated network.
    pub max_loss: f64,
    /// Largest duplication probability of a generated network.
    pub max_duplicate: f64,
    /// Largest one-way delay of a generated network (may exceed the algorithm's `max_delay`).
    pub max_latency_us: Time,
    /// Largest absolute clock drift rate.
    pub max_drift: f64,
    /// Whether joins and leaves are generated.
    pub membership: bool,
    /// Swarm testing: each seed draws which fault kinds its plan may use (each kind with
    /// probability 1/2, see [`RandomFaults::kinds`]); off, every kind is always possible.
    pub swarm: bool,
}

impl Default for RandomFaults {
    fn default() -> Self {
        RandomFaults {
            faults: 8,
            window_us: 3_000_000,
            max_loss: 0.3,
            max_duplicate: 0.1,
            max_latency_us: 40_000,
            max_drift: 0.1,
            membership: true,
            swarm: true,
        }
    }
}

/// RNG stream of the swarm's choice of fault kinds (separate, so a plan's faults are drawn the
/// same way whatever the kinds).
const SWARM_STREAM: u64 = 4;

/// RNG stream of plan generation (the network and the protocols use others, so a plan does not
/// shift their draws).
const PLAN_STREAM: u64 = 1;

impl RandomFaults {
    /// These intensities for a protocol with `properties`: no joins or leaves if its guarantees
    /// do not hold across them.
    pub fn respecting(mut self, properties: &election_core::Properties) -> Self {
        self.membership &= properties.membership;
        self
    }

    /// The fault kinds `seed`'s plan may draw from `candidates`: all of them (joins and leaves
    /// only with `membership`), or with `swarm` each with probability 1/2.
    fn kinds_among(&self, seed: u64, candidates: &[FaultKind]) -> Vec<FaultKind> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(SWARM_STREAM);
        candidates
            .iter()
            .copied()
            .filter(|k| self.membership || !matches!(k, FaultKind::Join | FaultKind::Leave))
            .filter(|_| !self.swarm || rng.random_bool(0.5))
            .collect()
    }

    /// The fault kinds `seed`'s random plan may draw (what a failure report prints with the
    /// seed).
    pub fn kinds(&self, seed: u64) -> Vec<FaultKind> {
        self.kinds_among(seed, &FaultKind::ALL)
    }

    /// The fault kinds `seed`'s synchronous plan may draw.
    pub fn synchronous_kinds(&self, seed: u64) -> Vec<FaultKind> {
        self.kinds_among(seed, &FaultKind::SYNCHRONOUS)
    }

    /// A plan for a cluster booting with `nodes` nodes, a pure function of `seed` and `self`.
    pub fn generate(&self, seed: u64, nodes: u32) -> Plan {
        let kinds = self.kinds(seed);
        let mut weighted: Vec<FaultKind> = Vec::new();
        for &k in &kinds {
            let weight = match k {
                FaultKind::Crash | FaultKind::Recover => 2,
                FaultKind::Loss | FaultKind::Duplication => 0,
                _ => 1,
            };
            weighted.extend(std::iter::repeat_n(k, weight));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(PLAN_STREAM);
        let mut times: Vec<Time> = (0..self.faults)
            .map(|_| rng.random_range(0..self.window_us.max(1)))
            .collect();
        times.sort_unstable();
        let mut existing = nodes.max(1);
        let mut members = existing;
        let mut faults = Vec::with_capacity(times.len());
        for at_us in times {
            let node = rng.random_range(0..existing);
            let other = rng.random_range(0..existing);
            // A heal is always possible, as often as any one kind.
            let pick = rng.random_range(0..=weighted.len());
            let fault = match weighted.get(pick) {
                Some(FaultKind::Crash) => Fault::Crash { node },
                Some(FaultKind::Recover) => Fault::Recover { node },
                Some(FaultKind::Partition) => {
                    let cut = rng.random_range(0..=existing);
                    let (low, high): (Vec<u32>, Vec<u32>) = (0..existing).partition(|n| {
                        // A random split, not just by id, so either side may hold the top node.
                        (n ^ cut).count_ones() % 2 == 0
                    });
                    Fault::Partition {
                        groups: vec![low, high],
                    }
                }
                Some(FaultKind::Block) if node != other => Fault::Block {
                    from: node,
                    to: other,
                    one_way: rng.random_bool(0.5),
                },
                Some(FaultKind::Link) if node != other => Fault::Link {
                    from: node,
                    to: other,
                    network: self.network(&mut rng, &kinds),
                },
                Some(FaultKind::Network) => Fault::Network {
                    network: self.network(&mut rng, &kinds),
                },
                Some(FaultKind::Drift) if self.max_drift > 0.0 => Fault::Drift {
                    node,
                    rate: rng.random_range(-self.max_drift..=self.max_drift),
                },
                Some(FaultKind::Join) => {
                    existing += 1;
                    members += 1;
                    Fault::Join { via: None }
                }
                Some(FaultKind::Leave) if members > 1 => {
                    members -= 1;
                    Fault::Leave { node }
                }
                _ => Fault::Heal,
            };
            faults.push(TimedFault { at_us, fault });
        }
        Plan {
            network: if self.faults == 0 {
                Network::default()
            } else {
                self.network(&mut rng, &kinds)
            },
            faults,
        }
    }

    /// A plan inside Garcia-Molina's synchronous model for an algorithm whose timeouts tolerate
    /// one-way delays up to `max_delay` — a pure function of `seed`, `nodes` and `self`.
    ///
    /// No loss, duplication, partition or blocked link. The base network delays messages
    /// uniformly in `0..=max_delay`; a third of the links are pinned at `max_delay` (slow) and a
    /// third at `0..=max_delay/8` (fast), so that messages on different links race — one node's
    /// Halt overtaking another's. The faults (`self.faults` of them, in the window) are
    /// crashes (half of them of the highest node), recoveries (half of them quick: while the
    /// others are still noticing the crash and electing, when races are likeliest),
    /// and clock drift within [`Model::SYNCHRONOUS_DRIFT`]; no joins or leaves, which are
    /// outside the model.
    /// `max_loss`, `max_duplicate` and `max_latency_us` are not used.
    pub fn generate_synchronous(
        &self,
        seed: u64,
        nodes: u32,
        timing: Timing,
        max_delay: Time,
    ) -> Plan {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(PLAN_STREAM);
        let network = Network {
            min_latency_us: 0,
            max_latency_us: max_delay,
            loss: 0.0,
            duplicate: 0.0,
        };
        let pinned = |latency| Network {
            min_latency_us: latency,
            max_latency_us: latency,
            ..network
        };
        let n = nodes.max(1);
        let mut faults = Vec::new();
        // Every link is pinned slow (at `max_delay`), pinned fast (within an eighth of it) or left
        // to the base network, a third each, so that messages sent at once over different links
        // arrive in every order.
        for from in 0..n {
            for to in (0..n).filter(|&to| to != from) {
                let network = match rng.random_range(0..3) {
                    0 => pinned(max_delay),
                    1 => pinned(rng.random_range(0..=max_delay / 8)),
                    _ => continue,
                };
                faults.push(TimedFault {
                    at_us: 0,
                    fault: Fault::Link { from, to, network },
                });
            }
        }
        let mut times: Vec<Time> = (0..self.faults)
            .map(|_| rng.random_range(0..self.window_us.max(1)))
            .collect();
        times.sort_unstable();
        let drift = self.max_drift.clamp(0.0, Model::SYNCHRONOUS_DRIFT);
        let kinds = self.synchronous_kinds(seed);
        let mut weighted: Vec<FaultKind> = Vec::new();
        for &k in &kinds {
            let weight = if matches!(k, FaultKind::Crash | FaultKind::Recover) {
                2
            } else {
                1
            };
            weighted.extend(std::iter::repeat_n(k, weight));
        }
        let mut existing = n;
        let mut members = n;
        let mut timed = Vec::new();
        for at_us in times {
            let node = rng.random_range(0..existing);
            let Some(&kind) = weighted.get(rng.random_range(0..weighted.len().max(1))) else {
                continue;
            };
            let fault = match kind {
                FaultKind::Crash => {
                    // Half the crashes hit the highest node, the usual leader: its crash starts
                    // an election.
                    let node = if rng.random_bool(0.5) {
                        existing - 1
                    } else {
                        node
                    };
                    timed.push(TimedFault {
                        at_us,
                        fault: Fault::Crash { node },
                    });
                    if !rng.random_bool(0.5) {
                        continue;
                    }
                    // A quick recovery: the node comes back while its crash is still news —
                    // half of them around the moment the others' polls time out and they begin
                    // electing (a timeout after the crash, plus up to a poll period), when two
                    // coordinators' rounds race.
                    let (t, h) = (timing.timeout, timing.heartbeat);
                    let back = at_us
                        + if rng.random_bool(0.5) {
                            rng.random_range(t..=t.saturating_add(h).saturating_add(max_delay))
                        } else {
                            rng.random_range(0..=h.saturating_add(3 * t))
                        };
                    timed.push(TimedFault {
                        at_us: back,
                        fault: Fault::Recover { node },
                    });
                    continue;
                }
                FaultKind::Drift if drift > 0.0 => Fault::Drift {
                    node,
                    rate: rng.random_range(-drift..=drift),
                },
                FaultKind::Join => {
                    existing += 1;
                    members += 1;
                    Fault::Join { via: None }
                }
                FaultKind::Leave if members > 1 => {
                    members -= 1;
                    Fault::Leave { node }
                }
                _ => Fault::Recover { node },
            };
            timed.push(TimedFault { at_us, fault });
        }
        // A stable sort: a quick recovery stays after the crash it belongs to, and ids stay
        // valid (a node is named only after the join that created it).
        timed.sort_by_key(|f| f.at_us);
        faults.extend(timed);
        Plan { network, faults }
    }

    /// A random network: delays up to `max_latency_us`, loss and duplication where `kinds`
    /// allow them.
    fn network(&self, rng: &mut ChaCha8Rng, kinds: &[FaultKind]) -> Network {
        let max =
            rng.random_range(Network::default().min_latency_us..=self.max_latency_us.max(1_000));
        let mut probability = |kind, max: f64| {
            let p = rng.random_range(0.0..=max.clamp(0.0, 1.0));
            if kinds.contains(&kind) { p } else { 0.0 }
        };
        Network {
            min_latency_us: Network::default().min_latency_us.min(max),
            max_latency_us: max,
            loss: probability(FaultKind::Loss, self.max_loss),
            duplicate: probability(FaultKind::Duplication, self.max_duplicate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_plans_are_valid_and_seeded() {
        let r = RandomFaults::default();
        for seed in 0..200 {
            let plan = r.generate(seed, 5);
            plan.validate(5)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            assert_eq!(plan, r.generate(seed, 5), "seed {seed}");
        }
        assert_ne!(r.generate(1, 5), r.generate(2, 5));
    }

    #[test]
    fn toml_plan_round_trips_and_bad_fields_are_named() {
        let text = r#"
            [network]
            max_latency_us = 9000
            loss = 0.1

            [[faults]]
            at_us = 1000
            fault = "crash"
            node = 4

            [[faults]]
            at_us = 2000
            fault = "partition"
            groups = [[0, 1], [2, 3]]
        "#;
        let plan: Plan = toml::from_str(text).unwrap();
        plan.validate(5).unwrap();
        assert_eq!(plan.faults[0].fault, Fault::Crash { node: 4 });
        assert_eq!(plan.network.max_latency_us, 9000);

        let err = plan.validate(4).unwrap_err().to_string();
        assert!(
            err.contains("faults[0].node") && err.contains("node 4"),
            "{err}"
        );

        let bad = toml::from_str::<Plan>("[[faults]]\nat_us = 1\nfault = \"crash\"\nnod = 1\n");
        let err = bad.unwrap_err().to_string();
        assert!(err.contains("nod"), "{err}");

        let loss: Plan = toml::from_str("[network]\nloss = 1.5\n").unwrap();
        let err = loss.validate(3).unwrap_err().to_string();
        assert!(err.contains("network.loss"), "{err}");
    }

    #[test]
    fn joins_read_with_and_without_a_contact_and_the_contact_must_exist() {
        let text = "[[faults]]\nat_us = 1\nfault = \"join\"\n\n[[faults]]\nat_us = 2\nfault = \"join\"\nvia = 5\n";
        let plan: Plan = toml::from_str(text).unwrap();
        assert_eq!(plan.faults[0].fault, Fault::Join { via: None });
        assert_eq!(plan.faults[1].fault, Fault::Join { via: Some(5) });
        plan.validate(5).unwrap(); // node 5 is the first join's
        let err = plan.validate(4).unwrap_err().to_string();
        assert!(err.contains("faults[1].via"), "{err}");
        // The old form is written back as it was.
        let json = serde_json::to_string(&plan.faults[0]).unwrap();
        assert_eq!(json, r#"{"at_us":1,"fault":"join"}"#);
    }

    #[test]
    fn faults_out_of_order_are_rejected() {
        let plan = Plan {
            network: Network::default(),
            faults: vec![
                TimedFault {
                    at_us: 5,
                    fault: Fault::Heal,
                },
                TimedFault {
                    at_us: 4,
                    fault: Fault::Heal,
                },
            ],
        };
        let err = plan.validate(3).unwrap_err().to_string();
        assert!(err.contains("faults[1].at_us"), "{err}");
    }
}
