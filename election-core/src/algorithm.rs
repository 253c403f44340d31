//! The algorithms by name, for drivers that choose one at run time.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the election algorithms in this crate.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// Garcia-Molina's Bully ([`crate::bully`]).
    Bully,
    /// Garcia-Molina's Invitation ([`crate::invitation`]).
    Invitation,
    /// Stoller's asynchronous Bully ([`crate::async_bully`]).
    AsyncBully,
    /// Chang–Roberts ring with next-alive-node forwarding ([`crate::ring`]).
    Ring,
    /// Raft's leader election with PreVote and CheckQuorum ([`crate::raft`]).
    Raft,
}

impl Algorithm {
    /// All algorithms, in a fixed order.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Bully,
        Algorithm::Invitation,
        Algorithm::AsyncBully,
        Algorithm::Ring,
        Algorithm::Raft,
    ];

    /// The command-line name (`bully`, `invitation`, `async-bully`, `ring`, `raft`), equal to the
    /// protocol's [`crate::Protocol::NAME`].
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Bully => "bully",
            Algorithm::Invitation => "invitation",
            Algorithm::AsyncBully => "async-bully",
            Algorithm::Ring => "ring",
            Algorithm::Raft => "raft",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown algorithm name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown algorithm {0:?} (expected bully, invitation, async-bully, ring or raft)")]
pub struct UnknownAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| UnknownAlgorithm(s.to_string()))
    }
}

/// Evaluates `$body` with the type name `$P` bound to the [`crate::Protocol`] type of the
/// [`Algorithm`] value `$alg`, so a generic driver can be instantiated from a run-time choice.
///
/// ```
/// use election_core::{Algorithm, Protocol, with_protocol};
///
/// let algorithm: Algorithm = "async-bully".parse().unwrap();
/// assert_eq!(with_protocol!(algorithm, P => P::NAME), algorithm.name());
/// ```
#[macro_export]
macro_rules! with_protocol {
    ($alg:expr, $P:ident => $body:expr) => {
        match $alg {
            $crate::Algorithm::Bully => {
                type $P = $crate::bully::Bully;
                $body
            }
            $crate::Algorithm::Invitation => {
                type $P = $crate::invitation::Invitation;
                $body
            }
            $crate::Algorithm::AsyncBully => {
                type $P = $crate::async_bully::AsyncBully;
                $body
            }
            $crate::Algorithm::Ring => {
                type $P = $crate::ring::Ring;
                $body
            }
            $crate::Algorithm::Raft => {
                type $P = $crate::raft::Raft;
                $body
            }
        }
    };
}
