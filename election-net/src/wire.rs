//! The datagram format: a small binary header followed by a JSON payload.
//!
//! ```text
//! magic "ELEC" | version u8 | kind u8 (0 protocol, 1 control)
//! | cluster id | algorithm | sender ip:port | receiver ip:port   (each: length u8, UTF-8 bytes)
//! | payload (JSON of the algorithm's message, or of a Control message)
//! ```
//!
//! The header is checked before the payload is parsed, so a datagram of another cluster or
//! algorithm is counted as such rather than as malformed.

use std::fmt;
use std::net::SocketAddr;

use election_core::NodeId;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// The first four bytes of every datagram.
pub const MAGIC: [u8; 4] = *b"ELEC";
/// The envelope version this build speaks.
pub const VERSION: u8 = 1;
/// The largest datagram sent or accepted, in bytes.
pub const MAX_DATAGRAM: usize = 8 * 1024;

const KIND_PROTOCOL: u8 = 0;
const KIND_CONTROL: u8 = 1;

/// Membership traffic handled by the shell itself, not by the algorithm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// The sender asks to join the cluster (sent to any member).
    Join,
    /// The answer to [`Control::Join`]: every member with its id, the joiner included.
    Welcome {
        /// All members, lowest id first.
        members: Vec<(NodeId, SocketAddr)>,
    },
    /// A node is a member (a joiner announced by the member it asked, or a booting node
    /// announcing itself).
    Joined {
        /// Its id.
        id: NodeId,
        /// Its address.
        addr: SocketAddr,
    },
    /// The sender leaves the cluster gracefully.
    Left,
}

/// What a datagram carries.
#[derive(Clone, Debug, PartialEq)]
pub enum Body<M> {
    /// A message of the election algorithm.
    Protocol(M),
    /// A membership message.
    Control(Control),
}

/// Who a datagram is from and for, and which cluster and algorithm it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// The cluster id (`--cluster-id`).
    pub cluster: &'a str,
    /// The algorithm name.
    pub algorithm: &'a str,
    /// The sender's address.
    pub from: SocketAddr,
    /// The receiver's address.
    pub to: SocketAddr,
}

/// Why a received datagram was dropped.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum DropReason {
    /// Not a datagram of this format, or its payload does not parse.
    Malformed,
    /// Another envelope version.
    Version,
    /// Another cluster id.
    Cluster,
    /// Another algorithm.
    Algorithm,
    /// Addressed to another node.
    Receiver,
    /// From an address that is not a member.
    UnknownSender,
    /// On a link the logserver marks blocked.
    Blocked,
}

impl DropReason {
    /// Every reason, for counters.
    pub const ALL: [DropReason; 7] = [
        DropReason::Malformed,
        DropReason::Version,
        DropReason::Cluster,
        DropReason::Algorithm,
        DropReason::Receiver,
        DropReason::UnknownSender,
        DropReason::Blocked,
    ];
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropReason::Malformed => "malformed",
            DropReason::Version => "wrong version",
            DropReason::Cluster => "wrong cluster",
            DropReason::Algorithm => "wrong algorithm",
            DropReason::Receiver => "wrong receiver",
            DropReason::UnknownSender => "unknown sender",
            DropReason::Blocked => "blocked link",
        })
    }
}

/// A message that cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// It does not fit one datagram.
    #[error("message of {0} bytes exceeds the datagram limit of {MAX_DATAGRAM} bytes")]
    TooLarge(usize),
    /// It has no JSON form (such as a map with non-string keys).
    #[error("message cannot be encoded: {0}")]
    Json(#[from] serde_json::Error),
}

/// Writes one datagram into `buf` (cleared first).
pub fn encode<M: Serialize>(
    header: &Header<'_>,
    body: &Body<M>,
    buf: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    buf.clear();
    buf.extend_from_slice(&MAGIC);
    buf.push(VERSION);
    buf.push(match body {
        Body::Protocol(_) => KIND_PROTOCOL,
        Body::Control(_) => KIND_CONTROL,
    });
    put_str(buf, header.cluster);
    put_str(buf, header.algorithm);
    put_str(buf, &header.from.to_string());
    put_str(buf, &header.to.to_string());
    match body {
        Body::Protocol(m) => serde_json::to_writer(&mut *buf, m)?,
        Body::Control(c) => serde_json::to_writer(&mut *buf, c)?,
    }
    if buf.len() > MAX_DATAGRAM {
        return Err(EncodeError::TooLarge(buf.len()));
    }
    Ok(())
}

/// Cluster id names are capped so that the header length fits a byte; longer ones are cut.
fn put_str(buf: &mut Vec<u8>, s: &str) {
    let mut end = s.len().min(u8::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    buf.push(end as u8);
    buf.extend_from_slice(&s.as_bytes()[..end]);
}

/// Reads one datagram meant for `expect.to` in `expect`'s cluster and algorithm; the sender is
/// returned as written in the header.
pub fn decode<M: DeserializeOwned>(
    datagram: &[u8],
    expect: &Header<'_>,
) -> Result<(SocketAddr, Body<M>), DropReason> {
    let mut r = Reader(datagram);
    if r.take(4)? != MAGIC {
        return Err(DropReason::Malformed);
    }
    if r.take(1)?[0] != VERSION {
        return Err(DropReason::Version);
    }
    let kind = r.take(1)?[0];
    let cluster = r.string()?;
    let algorithm = r.string()?;
    let from: SocketAddr = r.string()?.parse().map_err(|_| DropReason::Malformed)?;
    let to: SocketAddr = r.string()?.parse().map_err(|_| DropReason::Malformed)?;
    if cluster != expect.cluster {
        return Err(DropReason::Cluster);
    }
    if algorithm != expect.algorithm {
        return Err(DropReason::Algorithm);
    }
    if to != expect.to {
        return Err(DropReason::Receiver);
    }
    let body = match kind {
        KIND_PROTOCOL => {
            Body::Protocol(serde_json::from_slice(r.0).map_err(|_| DropReason::Malformed)?)
        }
        KIND_CONTROL => {
            Body::Control(serde_json::from_slice(r.0).map_err(|_| DropReason::Malformed)?)
        }
        _ => return Err(DropReason::Malformed),
    };
    Ok((from, body))
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DropReason> {
        if self.0.len() < n {
            return Err(DropReason::Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn string(&mut self) -> Result<&'a str, DropReason> {
        let len = self.take(1)?[0] as usize;
        std::str::from_utf8(self.take(len)?).map_err(|_| DropReason::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    enum Msg {
        Ping(u64),
    }

    fn header<'a>(from: &str, to: &str) -> Header<'a> {
        Header {
            cluster: "c1",
            algorithm: "bully",
            from: from.parse().unwrap(),
            to: to.parse().unwrap(),
        }
    }

    fn encoded(h: &Header<'_>, body: &Body<Msg>) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(h, body, &mut buf).unwrap();
        buf
    }

    #[test]
    fn round_trip_protocol_and_control() {
        let h = header("127.0.0.1:9000", "[::1]:9001");
        let expect = header("10.0.0.1:1", "[::1]:9001");
        let (from, body) =
            decode::<Msg>(&encoded(&h, &Body::Protocol(Msg::Ping(7))), &expect).unwrap();
        assert_eq!(from, h.from);
        assert_eq!(body, Body::Protocol(Msg::Ping(7)));
        let welcome = Control::Welcome {
            members: vec![(NodeId(0), h.from), (NodeId(1), h.to)],
        };
        let (_, body) =
            decode::<Msg>(&encoded(&h, &Body::Control(welcome.clone())), &expect).unwrap();
        assert_eq!(body, Body::Control(welcome));
    }

    #[test]
    fn wrong_header_fields_are_named() {
        let h = header("127.0.0.1:9000", "127.0.0.1:9001");
        let good = encoded(&h, &Body::Protocol(Msg::Ping(1)));
        let other_cluster = Header {
            cluster: "c2",
            ..h.clone()
        };
        assert_eq!(
            decode::<Msg>(&good, &other_cluster).unwrap_err(),
            DropReason::Cluster
        );
        let other_alg = Header {
            algorithm: "ring",
            ..h.clone()
        };
        assert_eq!(
            decode::<Msg>(&good, &other_alg).unwrap_err(),
            DropReason::Algorithm
        );
        let other_to = header("127.0.0.1:9000", "127.0.0.1:9002");
        assert_eq!(
            decode::<Msg>(&good, &other_to).unwrap_err(),
            DropReason::Receiver
        );
        let mut old = good.clone();
        old[4] = VERSION + 1;
        assert_eq!(decode::<Msg>(&old, &h).unwrap_err(), DropReason::Version);
    }

    #[test]
    fn garbage_is_malformed_never_a_panic() {
        let h = header("127.0.0.1:9000", "127.0.0.1:9001");
        let good = encoded(&h, &Body::Protocol(Msg::Ping(1)));
        // Every truncation, and every single-byte corruption of the header, is rejected or
        // decodes to something; none panics.
        for n in 0..good.len() {
            assert!(
                decode::<Msg>(&good[..n], &h).is_err(),
                "prefix of {n} bytes accepted"
            );
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xff;
            let _ = decode::<Msg>(&bad, &h);
        }
        assert_eq!(
            decode::<Msg>(b"hello world", &h).unwrap_err(),
            DropReason::Malformed
        );
        let mut wrong_payload = good[..good.len() - 3].to_vec();
        wrong_payload.extend_from_slice(b"{\"Pong\":1}");
        assert_eq!(
            decode::<Msg>(&wrong_payload, &h).unwrap_err(),
            DropReason::Malformed
        );
    }

    #[test]
    fn oversized_messages_are_refused() {
        let h = header("127.0.0.1:9000", "127.0.0.1:9001");
        let members = (0..1000)
            .map(|i| (NodeId(i), "127.0.0.1:9000".parse().unwrap()))
            .collect();
        let mut buf = Vec::new();
        let err = encode::<Msg>(&h, &Body::Control(Control::Welcome { members }), &mut buf);
        assert!(matches!(err, Err(EncodeError::TooLarge(n)) if n > MAX_DATAGRAM));
    }
}
