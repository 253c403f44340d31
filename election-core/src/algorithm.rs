//! The registry: every algorithm of this crate, listed once. The [`Algorithm`] enum, its names,
//! parsing (with `clap`'s value listing and typo suggestions when the `clap` feature is on) and
//! the run-time dispatch [`with_protocol!`](crate::with_protocol) are generated from the list in
//! `__algorithms!`, so adding an algorithm is one module plus one line there.
//!
//! A user's own protocol does not need to be registered: every driver (the harness, the
//! simulator, the real-node shell) is generic over [`crate::Protocol`]; the registry only serves
//! drivers that pick an algorithm by name at run time.

use std::fmt;
use std::str::FromStr;

use crate::protocol::Protocol;

/// The one list of built-in algorithms: `Variant => protocol type : help text;` per line. It hands
/// the list to the macro named first, with the tokens in braces passed through.
#[doc(hidden)]
#[macro_export]
macro_rules! __algorithms {
    ($m:ident { $($extra:tt)* }) => {
        $crate::$m! { { $($extra)* }
            Bully => $crate::bully::Bully
                : "Garcia-Molina's Bully (1982): the highest live node wins; synchronous model";
            Invitation => $crate::invitation::Invitation
                : "Garcia-Molina's Invitation (1982): groups that merge; survives partitions";
            AsyncBully => $crate::async_bully::AsyncBully
                : "Stoller's asynchronous Bully (1997): Bully over a failure detector";
            Ring => $crate::ring::Ring
                : "Chang-Roberts ring with next-alive-node forwarding (1979)";
            Raft => $crate::raft::Raft
                : "Raft's leader election (Ongaro & Ousterhout 2014): terms, votes, PreVote, CheckQuorum";
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __define_algorithm {
    ({} $($variant:ident => $ty:ty : $help:literal;)*) => {
        /// One of the built-in election algorithms (see each module for its paper).
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
        pub enum Algorithm {
            $(#[doc = $help] $variant,)*
        }

        impl Algorithm {
            /// Every built-in algorithm, in registry order.
            pub const ALL: &'static [Algorithm] = &[$(Algorithm::$variant),*];

            /// The command-line name, the protocol's [`Protocol::NAME`] (`bully`, …).
            pub fn name(self) -> &'static str {
                match self {
                    $(Algorithm::$variant => <$ty as Protocol>::NAME,)*
                }
            }

            /// One line about the algorithm, for `--help`.
            pub fn help(self) -> &'static str {
                match self {
                    $(Algorithm::$variant => $help,)*
                }
            }

            /// The options of the algorithm, one line each, for `--help`.
            pub fn options_help(self) -> &'static str {
                match self {
                    $(Algorithm::$variant =>
                        <<$ty as Protocol>::Options as $crate::protocol::Options>::HELP,)*
                }
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __dispatch {
    ({ ($alg:expr) $P:ident ($body:expr) } $($variant:ident => $ty:ty : $help:literal;)*) => {
        match $alg {
            $($crate::Algorithm::$variant => {
                type $P = $ty;
                $body
            })*
        }
    };
}

crate::__algorithms!(__define_algorithm {});

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
        $crate::__algorithms!(__dispatch { ($alg) $P ($body) })
    };
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown algorithm name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown algorithm {0:?} (expected one of: {names})", names = Algorithm::names())]
pub struct UnknownAlgorithm(pub String);

impl Algorithm {
    /// Every name, comma-separated, for messages.
    pub fn names() -> String {
        let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
        names.join(", ")
    }
}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .iter()
            .copied()
            .find(|a| a.name() == s)
            .ok_or_else(|| UnknownAlgorithm(s.to_string()))
    }
}

impl serde::Serialize for Algorithm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Algorithm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "clap")]
impl clap::ValueEnum for Algorithm {
    fn value_variants<'a>() -> &'a [Self] {
        Algorithm::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.help()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_dispatch_reaches_the_named_protocol() {
        for &a in Algorithm::ALL {
            assert_eq!(a.name().parse::<Algorithm>(), Ok(a));
            assert_eq!(crate::with_protocol!(a, P => P::NAME), a.name());
        }
        let err = "paxos".parse::<Algorithm>().unwrap_err().to_string();
        assert!(err.contains("paxos") && err.contains("bully"), "{err}");
    }
}
