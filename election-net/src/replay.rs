//! Replay protection: per sender, the highest [`Stamp`] seen and a sliding window of the
//! sequence numbers just below it (RFC 4303 §3.4.3, with a 128-bit window).
//!
//! A datagram is accepted once: a newer incarnation resets the window (the sender restarted), an
//! older incarnation is refused, and within one incarnation a sequence number is accepted if it
//! is above the highest seen, or inside the window and not seen yet. The guard must be asked
//! only after the MAC verified, so a forgery cannot move a window.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::wire::Stamp;

/// Sequence numbers below the highest that are still accepted once (late, reordered datagrams).
pub const WINDOW: u64 = 128;

#[derive(Clone, Copy, Debug)]
struct Window {
    top: Stamp,
    /// Bit `i` set: sequence `top.sequence - i` was seen.
    seen: u128,
    /// When this sender was last accepted, for eviction.
    last: u64,
}

/// Replay windows of every sender heard from, at most `cap` of them.
#[derive(Debug)]
pub struct ReplayGuard {
    windows: BTreeMap<SocketAddr, Window>,
    cap: usize,
}

/// Why a stamp is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replayed {
    /// From an earlier incarnation of the sender.
    OldIncarnation,
    /// Below the window.
    TooOld,
    /// Seen already.
    Duplicate,
}

impl ReplayGuard {
    /// A guard that tracks at most `cap` senders.
    pub fn new(cap: usize) -> Self {
        ReplayGuard {
            windows: BTreeMap::new(),
            cap: cap.max(1),
        }
    }

    /// Accepts `stamp` from `from` at time `now` (any monotonic unit) if it was not seen, and
    /// records it. When the table is full, a new sender evicts the one accepted longest ago among
    /// those `keep` says need not be kept (members must be kept: their windows guard the
    /// protocol); if every sender must be kept, the new one is refused as `TooOld`.
    pub fn check(
        &mut self,
        from: SocketAddr,
        stamp: Stamp,
        now: u64,
        keep: impl Fn(&SocketAddr) -> bool,
    ) -> Result<(), Replayed> {
        if let Some(w) = self.windows.get_mut(&from) {
            accept(w, stamp)?;
            w.last = now;
            return Ok(());
        }
        if self.windows.len() >= self.cap {
            let evict = self
                .windows
                .iter()
                .filter(|(a, _)| !keep(a))
                .min_by_key(|(_, w)| w.last)
                .map(|(a, _)| *a)
                .ok_or(Replayed::TooOld)?;
            self.windows.remove(&evict);
        }
        self.windows.insert(
            from,
            Window {
                top: stamp,
                seen: 1,
                last: now,
            },
        );
        Ok(())
    }

    /// Senders tracked.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.windows.len()
    }
}

fn accept(w: &mut Window, stamp: Stamp) -> Result<(), Replayed> {
    if stamp.incarnation < w.top.incarnation {
        return Err(Replayed::OldIncarnation);
    }
    if stamp.incarnation > w.top.incarnation {
        w.top = stamp;
        w.seen = 1;
        return Ok(());
    }
    let (seq, top) = (stamp.sequence, w.top.sequence);
    if seq > top {
        let shift = seq - top;
        w.seen = if shift >= WINDOW {
            1
        } else {
            w.seen << shift | 1
        };
        w.top = stamp;
        return Ok(());
    }
    let age = top - seq;
    if age >= WINDOW {
        return Err(Replayed::TooOld);
    }
    let bit = 1u128 << age;
    if w.seen & bit != 0 {
        return Err(Replayed::Duplicate);
    }
    w.seen |= bit;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(incarnation: u64, sequence: u64) -> Stamp {
        Stamp {
            incarnation,
            sequence,
        }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn each_stamp_is_accepted_once_in_any_order_within_the_window() {
        let mut g = ReplayGuard::new(8);
        let a = addr(1);
        let keep = |_: &SocketAddr| true;
        assert_eq!(g.check(a, s(1, 10), 0, keep), Ok(()));
        assert_eq!(g.check(a, s(1, 10), 0, keep), Err(Replayed::Duplicate));
        assert_eq!(g.check(a, s(1, 12), 0, keep), Ok(()));
        assert_eq!(g.check(a, s(1, 11), 0, keep), Ok(()), "late but new");
        assert_eq!(g.check(a, s(1, 11), 0, keep), Err(Replayed::Duplicate));
        assert_eq!(g.check(a, s(1, 12 + WINDOW), 0, keep), Ok(()));
        assert_eq!(g.check(a, s(1, 12), 0, keep), Err(Replayed::TooOld));
        assert_eq!(
            g.check(a, s(1, 13), 0, keep),
            Ok(()),
            "inside the window, unseen"
        );
        // A restart (new incarnation) starts afresh at sequence 0; the old run is dead.
        assert_eq!(g.check(a, s(2, 0), 0, keep), Ok(()));
        assert_eq!(
            g.check(a, s(1, 10_000), 0, keep),
            Err(Replayed::OldIncarnation)
        );
        assert_eq!(g.check(a, s(2, 0), 0, keep), Err(Replayed::Duplicate));
        // Other senders have their own windows.
        assert_eq!(g.check(addr(2), s(1, 10), 0, keep), Ok(()));
    }

    /// A shuffled stream of distinct stamps, each sent twice: exactly one copy of each is taken
    /// as long as reordering stays within the window. A guard that forgot the bitmap (the broken
    /// variant: accept anything at or below the top once the top moved) would take duplicates.
    #[test]
    fn duplicates_in_a_reordered_stream_are_all_caught() {
        let mut g = ReplayGuard::new(8);
        let a = addr(1);
        let mut order: Vec<u64> = Vec::new();
        for block in 0..50u64 {
            // Blocks of 16 sent in reverse, each datagram twice.
            for i in (0..16).rev() {
                order.push(block * 16 + i);
                order.push(block * 16 + i);
            }
        }
        let taken = order
            .iter()
            .filter(|&&q| g.check(a, s(1, q), 0, |_| true).is_ok())
            .count();
        assert_eq!(taken, 800);
    }

    #[test]
    fn a_full_guard_evicts_the_stalest_sender_it_need_not_keep() {
        let mut g = ReplayGuard::new(2);
        g.check(addr(1), s(1, 1), 10, |_| false).unwrap();
        g.check(addr(2), s(1, 1), 20, |_| false).unwrap();
        g.check(addr(3), s(1, 1), 30, |a| *a == addr(2)).unwrap();
        assert_eq!(g.len(), 2);
        // addr(1) was evicted, so its window is new again; addr(2) was kept.
        assert_eq!(
            g.check(addr(2), s(1, 1), 40, |_| true),
            Err(Replayed::Duplicate)
        );
        assert_eq!(
            g.check(addr(4), s(1, 1), 50, |_| true),
            Err(Replayed::TooOld),
            "all kept: the newcomer is refused"
        );
    }
}
