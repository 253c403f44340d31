//! When the simulator checks the invariants (defined once, in [`election_core::invariant`]):
//! the safety properties checked at every status change and the liveness
//! property checked once the network has been calm long enough. Which ones apply, and under which
//! model, is what the protocol declares in its [`Properties`](election_core::Properties) — never its name.
//!
//! When each invariant is checked:
//! - [`Invariant::Agreement`] (Garcia-Molina's Assertion 1): at every status change, live nodes
//!   in `Reorganization` or `Normal` within one [`Scope`](election_core::Scope) follow one coordinator. For
//!   [`Scope::Everyone`] (groupless algorithms: Bully, the ring) only while the run is inside
//!   the algorithm's [`Model`](election_core::Model): for the synchronous model, as long as no fault outside it
//!   (loss, duplication, a partition or blocked link, a delay above `max_delay`, drift above
//!   [`Model::SYNCHRONOUS_DRIFT`](election_core::Model::SYNCHRONOUS_DRIFT)) has happened — the paper guarantees nothing after one, and the
//!   state it leaves behind is not repaired by the calm. For [`Scope::Group`] and [`Scope::Term`]
//!   in every run: group ids and terms are never reused, so no timing assumption is needed. A
//!   node in `Reorganization`/`Normal` without the group id or term its scope needs is itself a
//!   violation (a protocol cannot opt out of its declared check by reporting nothing).
//! - [`Invariant::UniqueLeader`] (Stoller) and [`Invariant::ElectionSafety`] (Raft): at every
//!   status change, for the whole run: no two live nodes are `Normal` leaders of the same group
//!   id (respectively term), where the protocol declares it.
//! - [`Invariant::Liveness`] and [`Invariant::Validity`]: once, at the check time
//!   (`calm + settle`, see [`crate::sim`]). Every live node is `Normal`, all follow one live
//!   coordinator that considers itself the leader, with one group id; where the protocol declares
//!   [`Properties::highest_wins`](election_core::Properties::highest_wins), that coordinator is the highest live node.
//! - [`Invariant::Stability`]: at every status change after the check time. The network is calm
//!   (no partition, loss or delay beyond `max_delay`), so no live node may leave the agreed state.

use std::fmt;

pub use election_core::invariant::{Invariant, Safety, describe};
use election_core::{NodeId, Time};
use serde::{Deserialize, Serialize};

/// A broken invariant: when, which nodes, which property, and the seed that reproduces it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// The run's seed.
    pub seed: u64,
    /// Virtual time of the violation, microseconds.
    pub time: Time,
    /// The property.
    pub invariant: Invariant,
    /// The nodes involved.
    pub nodes: Vec<NodeId>,
    /// What was seen.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes: Vec<String> = self.nodes.iter().map(ToString::to_string).collect();
        write!(
            f,
            "seed {}: {} violated at t={}us by [{}]: {}",
            self.seed,
            self.invariant,
            self.time,
            nodes.join(", "),
            self.detail
        )
    }
}
