//! A seeded, deterministic discrete-event simulator for the `election-core` state machines.
//!
//! - [`sim::Sim`] drives any [`election_core::Protocol`] in virtual time over a faulty network
//!   (latency, loss, duplication, reordering, partitions, one-way cuts, crashes, recoveries,
//!   joins, leaves, clock drift) described by a [`plan::Plan`].
//! - [`check`] holds the invariants checked during the run (safety at every status change,
//!   liveness after the network calms).
//! - [`trace`] writes JSON Lines traces whose hash `replay` reproduces.
//! - [`stats`] counts messages, elections and time to a stable leader.
//! - [`folder`] writes results folders: the trace, its summary and its pictures.
//! - [`explore`] checks small clusters exhaustively: every interleaving and every fault within a
//!   budget, safety in every state, liveness on the whole state graph.
//! - [`cli`] is the `election sim …` command line; [`compare`] its comparison report.

pub mod check;
pub mod cli;
pub mod compare;
pub mod explore;
pub mod folder;
pub mod plan;
mod queue;
pub mod sim;
pub mod stats;
pub mod sweep;
pub mod trace;

pub use check::{Invariant, Violation};
pub use plan::{Fault, Network, Plan, PlanError, RandomFaults, TimedFault};
pub use sim::{Outcome, Sim, SimError};
pub use stats::{Percentiles, RunStats, Summary};
pub use trace::{DEFAULT_TIMING, Spec, TraceSink};
