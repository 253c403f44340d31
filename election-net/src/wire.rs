//! The datagram format: a binary header, a JSON payload, and a MAC over all of it.
//!
//! ```text
//! magic "ELEC" | version u8 (2) | key id u32 (0: unkeyed) | kind u8 (0 protocol, 1 control)
//! | incarnation u64 | sequence u64                                      (integers big-endian)
//! | cluster id | algorithm | sender ip:port | receiver ip:port   (each: length u8, UTF-8 bytes)
//! | payload (JSON of the algorithm's message, or of a membership Control message)
//! | tag: HMAC-SHA256 of every byte before it, 32 bytes            (absent when key id is 0)
//! ```
//!
//! [`open`] reads only the magic, the version and the key id before it verifies the tag (in
//! constant time, with the keyring's key of that id); nothing else is parsed from a datagram
//! that fails. Then it checks the header against the receiver's cluster, algorithm and address,
//! and hands back the sender, the [`Stamp`] (for the replay window) and the payload, which
//! [`Opened::body`] parses last.

use std::fmt;
use std::net::SocketAddr;

use serde::{Serialize, de::DeserializeOwned};

use crate::keys::{Key, Keyring};

/// The first four bytes of every datagram.
pub const MAGIC: [u8; 4] = *b"ELEC";
/// The envelope version this build speaks.
pub const VERSION: u8 = 2;
/// The largest datagram sent or accepted, in bytes: room for the welcome of a 1,024-member
/// table even of the longest IPv6 addresses, under the 65,507-byte UDP payload limit.
pub const MAX_DATAGRAM: usize = 65_000;
/// Bytes of the MAC.
pub const TAG_LEN: usize = 32;

const KIND_PROTOCOL: u8 = 0;
const KIND_CONTROL: u8 = 1;
/// Bytes before the key id is known: magic, version.
const PREFIX: usize = 5;

/// Membership traffic, handled by the membership layer rather than the algorithm.
pub type Control = election_core::membership::Control<SocketAddr>;

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

/// The sender's run and the datagram's place in it: receivers drop what they saw before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp {
    /// Grows with every start of the sender's process.
    pub incarnation: u64,
    /// Grows with every datagram the sender sends in this incarnation.
    pub sequence: u64,
}

/// Why a received datagram was dropped. The names are the drop counters' keys in reports.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum DropReason {
    /// Not a datagram of this format, or its payload does not parse.
    Malformed,
    /// Larger than [`MAX_DATAGRAM`].
    Oversized,
    /// Another envelope version.
    Version,
    /// No MAC, and this node has a key.
    Unsigned,
    /// A key id this node's keyring does not hold (or a MAC and this node has no key).
    UnknownKey,
    /// The MAC does not verify.
    BadMac,
    /// Another cluster id.
    Cluster,
    /// Another algorithm.
    Algorithm,
    /// Addressed to another node.
    Receiver,
    /// The UDP source address is not the sender written in the (authenticated) header.
    WrongSource,
    /// Seen before, or older than the sender's replay window.
    Replay,
    /// A protocol message from an address that is not a member.
    UnknownSender,
    /// On a link the logserver marks blocked.
    Blocked,
}

impl DropReason {
    /// The stable kebab-case name used in reports and on the status page.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::Oversized => "oversized",
            DropReason::Version => "wrong-version",
            DropReason::Unsigned => "unsigned",
            DropReason::UnknownKey => "unknown-key",
            DropReason::BadMac => "bad-mac",
            DropReason::Cluster => "wrong-cluster",
            DropReason::Algorithm => "wrong-algorithm",
            DropReason::Receiver => "wrong-receiver",
            DropReason::WrongSource => "wrong-source",
            DropReason::Replay => "replay",
            DropReason::UnknownSender => "unknown-sender",
            DropReason::Blocked => "blocked",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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

/// Writes one datagram into `buf` (cleared first), signed with `key` when there is one.
pub fn encode<M: Serialize>(
    header: &Header<'_>,
    stamp: Stamp,
    body: &Body<M>,
    key: Option<&Key>,
    buf: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    buf.clear();
    buf.extend_from_slice(&MAGIC);
    buf.push(VERSION);
    buf.extend_from_slice(&key.map_or(0, Key::id).to_be_bytes());
    buf.push(match body {
        Body::Protocol(_) => KIND_PROTOCOL,
        Body::Control(_) => KIND_CONTROL,
    });
    buf.extend_from_slice(&stamp.incarnation.to_be_bytes());
    buf.extend_from_slice(&stamp.sequence.to_be_bytes());
    put_str(buf, header.cluster);
    put_str(buf, header.algorithm);
    put_str(buf, &header.from.to_string());
    put_str(buf, &header.to.to_string());
    match body {
        Body::Protocol(m) => serde_json::to_writer(&mut *buf, m)?,
        Body::Control(c) => serde_json::to_writer(&mut *buf, c)?,
    }
    if let Some(key) = key {
        let tag = key.tag(buf);
        buf.extend_from_slice(&tag);
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

/// An authenticated datagram whose header matched, its payload not parsed yet.
#[derive(Debug)]
pub struct Opened<'a> {
    /// The sender written in the header.
    pub from: SocketAddr,
    /// Its stamp.
    pub stamp: Stamp,
    kind: u8,
    payload: &'a [u8],
}

impl Opened<'_> {
    /// Parses the payload.
    pub fn body<M: DeserializeOwned>(&self) -> Result<Body<M>, DropReason> {
        let malformed = |_| DropReason::Malformed;
        match self.kind {
            KIND_PROTOCOL => serde_json::from_slice(self.payload)
                .map(Body::Protocol)
                .map_err(malformed),
            _ => serde_json::from_slice(self.payload)
                .map(Body::Control)
                .map_err(malformed),
        }
    }
}

/// Verifies one datagram with `keys` (or, without a keyring, accepts only unkeyed ones) and
/// checks that it is meant for `expect.to` in `expect`'s cluster and algorithm.
pub fn open<'a>(
    datagram: &'a [u8],
    expect: &Header<'_>,
    keys: Option<&Keyring>,
) -> Result<Opened<'a>, DropReason> {
    if datagram.len() > MAX_DATAGRAM {
        return Err(DropReason::Oversized);
    }
    let mut r = Reader(datagram);
    if r.take(4)? != MAGIC {
        return Err(DropReason::Malformed);
    }
    if r.take(1)?[0] != VERSION {
        return Err(DropReason::Version);
    }
    let key_id = r.u32()?;
    let signed = match (key_id, keys) {
        (0, None) => datagram,
        (0, Some(_)) => return Err(DropReason::Unsigned),
        (_, None) => return Err(DropReason::UnknownKey),
        (id, Some(ring)) => {
            let key = ring.find(id).ok_or(DropReason::UnknownKey)?;
            let Some(split) = datagram
                .len()
                .checked_sub(TAG_LEN)
                .filter(|n| *n >= PREFIX + 4)
            else {
                return Err(DropReason::Malformed);
            };
            let (signed, tag) = datagram.split_at(split);
            if !key.verify(signed, tag) {
                return Err(DropReason::BadMac);
            }
            signed
        }
    };
    let mut r = Reader(&signed[PREFIX + 4..]);
    let kind = r.take(1)?[0];
    if kind != KIND_PROTOCOL && kind != KIND_CONTROL {
        return Err(DropReason::Malformed);
    }
    let stamp = Stamp {
        incarnation: r.u64()?,
        sequence: r.u64()?,
    };
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
    Ok(Opened {
        from,
        stamp,
        kind,
        payload: r.0,
    })
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

    fn u32(&mut self) -> Result<u32, DropReason> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, DropReason> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn string(&mut self) -> Result<&'a str, DropReason> {
        let len = self.take(1)?[0] as usize;
        std::str::from_utf8(self.take(len)?).map_err(|_| DropReason::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use election_core::NodeId;
    use serde::Deserialize;

    use super::*;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    enum Msg {
        Ping(u64),
    }

    const STAMP: Stamp = Stamp {
        incarnation: 7,
        sequence: 42,
    };

    fn header<'a>(from: &str, to: &str) -> Header<'a> {
        Header {
            cluster: "c1",
            algorithm: "bully",
            from: from.parse().unwrap(),
            to: to.parse().unwrap(),
        }
    }

    fn ring(id: u32, byte: u8) -> Keyring {
        Keyring::new(vec![Key::new(id, &[byte; 32])]).unwrap()
    }

    fn encoded(h: &Header<'_>, body: &Body<Msg>, key: Option<&Key>) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(h, STAMP, body, key, &mut buf).unwrap();
        buf
    }

    fn opened(d: &[u8], h: &Header<'_>, keys: Option<&Keyring>) -> Result<Body<Msg>, DropReason> {
        open(d, h, keys)?.body()
    }

    #[test]
    fn round_trip_keyed_and_unkeyed() {
        let h = header("127.0.0.1:9000", "[::1]:9001");
        let keys = ring(5, 1);
        let body = Body::Protocol(Msg::Ping(7));
        let signed = encoded(&h, &body, Some(keys.primary()));
        assert_eq!(opened(&signed, &h, Some(&keys)).unwrap(), body);
        let o = open(&signed, &h, Some(&keys)).unwrap();
        assert_eq!((o.from, o.stamp), (h.from, STAMP));
        let welcome = Body::Control(Control::Welcome {
            members: vec![(NodeId(0), h.from), (NodeId(1), h.to)],
        });
        let plain = encoded(&h, &welcome, None);
        assert_eq!(opened(&plain, &h, None).unwrap(), welcome);
        assert_eq!(signed.len(), encoded(&h, &body, None).len() + TAG_LEN);
    }

    #[test]
    fn keys_decide_before_anything_else() {
        let h = header("127.0.0.1:9000", "127.0.0.1:9001");
        let keys = ring(5, 1);
        let body = Body::Protocol(Msg::Ping(1));
        let signed = encoded(&h, &body, Some(keys.primary()));
        let plain = encoded(&h, &body, None);
        assert_eq!(opened(&plain, &h, Some(&keys)), Err(DropReason::Unsigned));
        assert_eq!(opened(&signed, &h, None), Err(DropReason::UnknownKey));
        assert_eq!(
            opened(&signed, &h, Some(&ring(6, 1))),
            Err(DropReason::UnknownKey)
        );
        assert_eq!(
            opened(&signed, &h, Some(&ring(5, 2))),
            Err(DropReason::BadMac)
        );
        // Even a datagram for another cluster fails on its MAC first when the key is wrong.
        let other = Header {
            cluster: "c2",
            ..h.clone()
        };
        assert_eq!(
            opened(&signed, &other, Some(&ring(5, 2))),
            Err(DropReason::BadMac)
        );
        // Every flipped bit after the key id breaks the MAC.
        for i in PREFIX + 4..signed.len() {
            let mut bad = signed.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                opened(&bad, &h, Some(&keys)),
                Err(DropReason::BadMac),
                "byte {i}"
            );
        }
        // A keyring of two accepts either key.
        let both = Keyring::new(vec![Key::new(6, &[2; 32]), Key::new(5, &[1; 32])]).unwrap();
        assert_eq!(opened(&signed, &h, Some(&both)).unwrap(), body);
    }

    #[test]
    fn wrong_header_fields_are_named() {
        let h = header("127.0.0.1:9000", "127.0.0.1:9001");
        let keys = ring(5, 1);
        let good = encoded(&h, &Body::Protocol(Msg::Ping(1)), Some(keys.primary()));
        let other_cluster = Header {
            cluster: "c2",
            ..h.clone()
        };
        assert_eq!(
            opened(&good, &other_cluster, Some(&keys)),
            Err(DropReason::Cluster)
        );
        let other_alg = Header {
            algorithm: "ring",
            ..h.clone()
        };
        assert_eq!(
            opened(&good, &other_alg, Some(&keys)),
            Err(DropReason::Algorithm)
        );
        let other_to = header("127.0.0.1:9000", "127.0.0.1:9002");
        assert_eq!(
            opened(&good, &other_to, Some(&keys)),
            Err(DropReason::Receiver)
        );
        let mut old = good.clone();
        old[4] = 1;
        assert_eq!(opened(&old, &h, Some(&keys)), Err(DropReason::Version));
    }

    #[test]
    fn garbage_is_malformed_never_a_panic() {
        let h = header("127.0.0.1:9000", "127.0.0.1:9001");
        let good = encoded(&h, &Body::Protocol(Msg::Ping(1)), None);
        for n in 0..good.len() {
            assert!(
                opened(&good[..n], &h, None).is_err(),
                "prefix of {n} bytes accepted"
            );
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xff;
            let _ = opened(&bad, &h, None);
        }
        assert_eq!(opened(b"hello world", &h, None), Err(DropReason::Malformed));
        let keys = ring(5, 1);
        let mut short = good[..PREFIX].to_vec();
        short.extend_from_slice(&5u32.to_be_bytes());
        short.extend_from_slice(&[0; 20]);
        assert_eq!(opened(&short, &h, Some(&keys)), Err(DropReason::Malformed));
        assert_eq!(
            opened(&vec![0; MAX_DATAGRAM + 1], &h, None),
            Err(DropReason::Oversized)
        );
    }

    #[test]
    fn a_full_table_fits_and_a_larger_one_is_refused() {
        let h = header("127.0.0.1:9000", "127.0.0.1:9001");
        let keys = ring(5, 1);
        let v6: SocketAddr = "[2001:db8:1234:5678:9abc:def0:1234:5678]:65535"
            .parse()
            .unwrap();
        let table = |n: u32| Control::Welcome {
            members: (0..n).map(|i| (NodeId(u32::MAX - i), v6)).collect(),
        };
        let mut buf = Vec::new();
        encode::<Msg>(
            &h,
            STAMP,
            &Body::Control(table(1024)),
            Some(keys.primary()),
            &mut buf,
        )
        .unwrap();
        let err = encode::<Msg>(&h, STAMP, &Body::Control(table(4000)), None, &mut buf);
        assert!(matches!(err, Err(EncodeError::TooLarge(n)) if n > MAX_DATAGRAM));
    }
}
