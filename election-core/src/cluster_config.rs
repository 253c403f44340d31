//! Parsing of the `server_config` file: one `ip:port` per line, priority by line position.
//!
//! This module parses text only; reading the file is the caller's business, so the error names the
//! line and leaves the file name to the caller.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::protocol::{Members, NodeId};

/// The nodes of a cluster in priority order: the first address has id 0, the last line the
/// highest priority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    addrs: Vec<SocketAddr>,
}

/// What is wrong with a `server_config` text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClusterConfigError {
    /// No address in the whole text.
    #[error("no node addresses (expected one ip:port per line)")]
    Empty,
    /// One line could not be accepted.
    #[error("line {line}: {problem} in {text:?}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// The line as written (comment stripped, trimmed).
        text: String,
        /// What is wrong.
        problem: LineProblem,
    },
}

/// The ways one line of `server_config` can be wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineProblem {
    /// No `:port` after the address.
    MissingPort,
    /// The address part is not an IPv4 or bracketed IPv6 literal.
    BadAddress(String),
    /// An IPv6 address without brackets (`::1:9000` is ambiguous).
    UnbracketedIpv6,
    /// The port is not a number in 1..=65535.
    BadPort(String),
    /// The address already appeared on an earlier line.
    Duplicate {
        /// The earlier line.
        first_line: usize,
    },
}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineProblem::MissingPort => f.write_str("missing :port"),
            LineProblem::BadAddress(a) => write!(f, "bad IP address {a:?}"),
            LineProblem::UnbracketedIpv6 => {
                f.write_str("IPv6 address must be in brackets, as in [::1]:9000")
            }
            LineProblem::BadPort(p) => write!(f, "bad port {p:?} (expected 1-65535)"),
            LineProblem::Duplicate { first_line } => {
                write!(f, "duplicate address (first on line {first_line})")
            }
        }
    }
}

impl ClusterConfig {
    /// Parses `server_config` text. Blank lines and `#` comments (whole-line or trailing) are
    /// ignored.
    pub fn parse(text: &str) -> Result<Self, ClusterConfigError> {
        let mut addrs = Vec::new();
        let mut lines = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let body = raw.split('#').next().unwrap_or("").trim();
            if body.is_empty() {
                continue;
            }
            let fail = |problem| ClusterConfigError::Line {
                line,
                text: body.to_string(),
                problem,
            };
            let addr = parse_addr(body).map_err(fail)?;
            if let Some(at) = addrs.iter().position(|a| *a == addr) {
                return Err(fail(LineProblem::Duplicate {
                    first_line: lines[at],
                }));
            }
            addrs.push(addr);
            lines.push(line);
        }
        if addrs.is_empty() {
            return Err(ClusterConfigError::Empty);
        }
        Ok(ClusterConfig { addrs })
    }

    /// A config from addresses already in priority order (lowest first).
    pub fn from_addrs(addrs: Vec<SocketAddr>) -> Self {
        ClusterConfig { addrs }
    }

    /// All addresses, id 0 first.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The address of `id`.
    pub fn addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.addrs.get(id.0 as usize).copied()
    }

    /// The id of `addr`.
    pub fn id_of(&self, addr: SocketAddr) -> Option<NodeId> {
        self.addrs
            .iter()
            .position(|a| *a == addr)
            .map(|i| NodeId(i as u32))
    }

    /// The membership table of this cluster.
    pub fn members(&self) -> Members {
        Members::first(self.addrs.len() as u32)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// Always false: a parsed config has at least one node.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }
}

/// Parses one `ip:port` (IPv4, or IPv6 in brackets).
pub fn parse_addr(text: &str) -> Result<SocketAddr, LineProblem> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| LineProblem::BadAddress(text.to_string()))?;
        let port = after.strip_prefix(':').ok_or(LineProblem::MissingPort)?;
        let ip: Ipv6Addr = host
            .parse()
            .map_err(|_| LineProblem::BadAddress(host.to_string()))?;
        (IpAddr::V6(ip), port)
    } else {
        let (host, port) = text.rsplit_once(':').ok_or(LineProblem::MissingPort)?;
        if host.contains(':') {
            return Err(LineProblem::UnbracketedIpv6);
        }
        let ip: Ipv4Addr = host
            .parse()
            .map_err(|_| LineProblem::BadAddress(host.to_string()))?;
        (IpAddr::V4(ip), port)
    };
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(SocketAddr::new(host, p)),
        _ => Err(LineProblem::BadPort(port.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_of(text: &str) -> ClusterConfigError {
        ClusterConfig::parse(text).unwrap_err()
    }

    #[test]
    fn priority_is_line_position_last_highest() {
        let c =
            ClusterConfig::parse("# five nodes\n127.0.0.1:9000\n\n[::1]:9001  # v6\n10.0.0.7:80\n")
                .unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c.addr(NodeId(0)).unwrap().to_string(), "127.0.0.1:9000");
        assert_eq!(c.addr(NodeId(1)).unwrap().to_string(), "[::1]:9001");
        assert_eq!(c.id_of("10.0.0.7:80".parse().unwrap()), Some(NodeId(2)));
        assert_eq!(c.members().highest(), Some(NodeId(2)));
    }

    #[test]
    fn errors_name_the_line_and_problem() {
        assert_eq!(err_of(""), ClusterConfigError::Empty);
        assert_eq!(err_of("# only a comment\n\n"), ClusterConfigError::Empty);
        let e = err_of("127.0.0.1:9000\n127.0.0.1:9001\n127.0.0.1:9000\n");
        assert_eq!(
            e.to_string(),
            "line 3: duplicate address (first on line 1) in \"127.0.0.1:9000\""
        );
        assert!(matches!(
            err_of("1.2.3.4:9\n\n300.1.1.1:9"),
            ClusterConfigError::Line {
                line: 3,
                problem: LineProblem::BadAddress(_),
                ..
            }
        ));
        assert!(matches!(
            err_of("1.2.3.4:99999"),
            ClusterConfigError::Line {
                line: 1,
                problem: LineProblem::BadPort(_),
                ..
            }
        ));
        assert!(matches!(
            err_of("1.2.3.4:0"),
            ClusterConfigError::Line {
                problem: LineProblem::BadPort(_),
                ..
            }
        ));
        assert!(matches!(
            err_of("1.2.3.4"),
            ClusterConfigError::Line {
                problem: LineProblem::MissingPort,
                ..
            }
        ));
        assert!(matches!(
            err_of("::1:9000"),
            ClusterConfigError::Line {
                problem: LineProblem::UnbracketedIpv6,
                ..
            }
        ));
        assert!(matches!(
            err_of("[::1:9000"),
            ClusterConfigError::Line {
                problem: LineProblem::BadAddress(_),
                ..
            }
        ));
        assert!(matches!(
            err_of("host.example:9000"),
            ClusterConfigError::Line {
                problem: LineProblem::BadAddress(_),
                ..
            }
        ));
    }

    #[test]
    fn the_sample_file_parses() {
        let c = ClusterConfig::parse(include_str!("../../server_config")).unwrap();
        assert_eq!(c.len(), 5);
        assert_eq!(c.addr(NodeId(4)).unwrap().to_string(), "127.0.0.1:9004");
    }
}
