//! Leader-election algorithms as pure, sans-IO state machines.
//!
//! Each algorithm (Bully, Invitation, asynchronous Bully, ring, Raft) implements [`Protocol`]: an
//! input (start, message, timer, membership change) goes in, [`Command`]s (send, broadcast, set
//! or cancel a timer, persist) come out, and the protocol declares the [`Properties`] it
//! guarantees and under which [`Model`]. The [`algorithm`] module is the registry of the built-in
//! algorithms. Nothing in this crate reads a clock, opens a socket or draws OS randomness, so the
//! same state machines run unchanged in the hand-driven [`harness`], in the deterministic simulator and
//! on real nodes over UDP.
//!
//! # Example
//!
//! Three [`bully`] nodes driven by hand: the highest priority leads, and when it crashes the next
//! one takes over as soon as a member's poll of the dead coordinator times out.
//!
//! ```
//! use election_core::bully::{Bully, BullyConfig};
//! use election_core::harness::Cluster;
//! use election_core::{MILLIS, Protocol, Timing};
//!
//! let timing = Timing { heartbeat: 100 * MILLIS, timeout: 40 * MILLIS };
//! let config = BullyConfig::new(timing);
//! let mut cluster = Cluster::<Bully>::new(config, 3)?;
//!
//! cluster.start_all();
//! cluster.run_for(Bully::liveness_bound(&config, 3));
//! assert_eq!(cluster.check_one_leader(), Ok(2));
//!
//! cluster.crash(2);
//! cluster.run_for(Bully::liveness_bound(&config, 3));
//! assert_eq!(cluster.check_one_leader(), Ok(1));
//! # Ok::<(), election_core::ConfigError>(())
//! ```

pub mod algorithm;
pub mod async_bully;
pub mod bully;
pub mod cluster_config;
pub mod detector;
pub mod harness;
pub mod invariant;
pub mod invitation;
pub mod membership;
pub mod protocol;
pub mod raft;
pub mod report;
pub mod ring;
pub mod status;

pub use algorithm::{Algorithm, UnknownAlgorithm};
pub use cluster_config::{ClusterConfig, ClusterConfigError};
pub use protocol::{
    Bound, Command, Config, ConfigError, ConfigOf, Context, Explorable, Input, InputOf, Kind,
    MILLIS, Members, Membership, MessageBounds, Model, NoOptions, Node, NodeId, Options, Out,
    OutOf, Properties, Protocol, Reclock, Relation, Scope, Time, Timing, validated,
};
pub use status::{GroupId, State, Status};
