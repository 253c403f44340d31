//! A pure heartbeat/timeout failure detector.
//!
//! Stoller's asynchronous Bully is written over an abstract failure detector: a module that, at any
//! time, *suspects* some processes of having crashed and may later *trust* them again. This is the
//! usual implementation of one: remember when each watched peer was last heard from, and suspect it
//! once it has been silent for longer than a fixed window. It reads no clock — every call takes the
//! current [`Time`] — and sends nothing: the protocol using it decides what counts as "hearing"
//! (a heartbeat reply, any message) and when to look at the verdicts (typically on a periodic
//! timer).
//!
//! Only watched peers have an entry, so the memory is proportional to what the protocol is
//! currently waiting on, not to the cluster size. The entries are a sorted vector, not a map: a
//! protocol watches one or two peers, and a B-tree's first leaf alone costs 232 bytes a node
//! (measured with heaptrack in the 100,000-node scale run).

use crate::protocol::{NodeId, Reclock, Time};

/// Suspects watched peers that have been silent for longer than a window.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Detector {
    window: Time,
    /// When each watched peer was last heard from, sorted by peer; `None` for a peer already
    /// known to be silent (suspected until heard from).
    last_heard: Vec<(NodeId, Option<Time>)>,
}

impl Detector {
    /// A detector that suspects a peer after `window` microseconds of silence.
    pub fn new(window: Time) -> Self {
        Detector {
            window,
            last_heard: Vec::new(),
        }
    }

    /// Where `peer`'s entry is, or where it would go.
    fn find(&self, peer: NodeId) -> Result<usize, usize> {
        self.last_heard.binary_search_by_key(&peer, |&(p, _)| p)
    }

    fn last(&self, peer: NodeId) -> Option<Option<Time>> {
        self.find(peer).ok().map(|k| self.last_heard[k].1)
    }

    /// Starts watching `peer`. A peer not watched before gets a grace period: it counts as heard at
    /// `now`, so it is suspected only if it then stays silent for a whole window. Watching a peer
    /// that is already watched keeps its history (a suspect stays suspected).
    pub fn watch(&mut self, peer: NodeId, now: Time) {
        if let Err(k) = self.find(peer) {
            self.last_heard.insert(k, (peer, Some(now)));
        }
    }

    /// Watches `peer` as already suspected: the protocol learned by other means (a heartbeat
    /// that stopped) that it is silent. It is trusted again once heard from.
    pub fn suspect(&mut self, peer: NodeId) {
        match self.find(peer) {
            Ok(k) => self.last_heard[k].1 = None,
            Err(k) => self.last_heard.insert(k, (peer, None)),
        }
    }

    /// Stops watching `peer` and forgets its history.
    pub fn unwatch(&mut self, peer: NodeId) {
        if let Ok(k) = self.find(peer) {
            self.last_heard.remove(k);
        }
    }

    /// Keeps watching only the peers for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(NodeId) -> bool) {
        self.last_heard.retain(|&(peer, _)| keep(peer));
    }

    /// Records a sign of life from `peer` at `now`; a suspected peer is trusted again. Returns
    /// true if `peer` was suspected just before. Peers that are not watched are ignored (and
    /// false is returned), so the detector's memory stays bounded by the watch list.
    pub fn heard(&mut self, peer: NodeId, now: Time) -> bool {
        let window = self.window;
        match self.find(peer).ok().map(|k| &mut self.last_heard[k].1) {
            Some(last) => {
                let was_suspected = last.is_none_or(|t| now.saturating_sub(t) > window);
                *last = Some(last.map_or(now, |t| t.max(now)));
                was_suspected
            }
            None => false,
        }
    }

    /// Moves the last-heard times to another clock reading (for the explorer, see
    /// [`crate::Explorable`]): only "silent for more than the window" is ever asked, so ages
    /// beyond the window are all one.
    pub fn reclock(&mut self, clock: Reclock) {
        for last in self.last_heard.iter_mut().filter_map(|(_, t)| t.as_mut()) {
            *last = clock.past(*last, self.window.saturating_add(1));
        }
    }

    /// Whether `peer` is watched and has been silent for longer than the window at `now`.
    pub fn is_suspected(&self, peer: NodeId, now: Time) -> bool {
        self.last(peer)
            .is_some_and(|last| last.is_none_or(|t| now.saturating_sub(t) > self.window))
    }

    /// Whether `peer` is being watched.
    pub fn is_watched(&self, peer: NodeId) -> bool {
        self.find(peer).is_ok()
    }

    /// The watched peers, lowest id first.
    pub fn watched(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.last_heard.iter().map(|&(p, _)| p)
    }

    /// The watched peers suspected at `now`, lowest id first.
    pub fn suspects(&self, now: Time) -> impl Iterator<Item = NodeId> + '_ {
        self.watched().filter(move |&p| self.is_suspected(p, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Time = 100;

    #[test]
    fn a_watched_peer_is_suspected_only_after_a_full_window_of_silence() {
        let mut d = Detector::new(W);
        d.watch(NodeId(1), 1_000);
        assert!(
            !d.is_suspected(NodeId(1), 1_000 + W),
            "silence of exactly the window is allowed"
        );
        assert!(d.is_suspected(NodeId(1), 1_000 + W + 1));
        assert_eq!(
            d.suspects(1_000 + W + 1).collect::<Vec<_>>(),
            vec![NodeId(1)]
        );
    }

    #[test]
    fn a_peer_known_to_be_silent_is_suspected_until_heard() {
        let mut d = Detector::new(W);
        d.watch(NodeId(3), 10);
        d.suspect(NodeId(3));
        assert!(d.is_suspected(NodeId(3), 10), "at once, no window to wait");
        d.watch(NodeId(3), 20);
        assert!(
            d.is_suspected(NodeId(3), 20),
            "watching again keeps the verdict"
        );
        assert!(d.heard(NodeId(3), 30));
        assert!(!d.is_suspected(NodeId(3), 30 + W));
    }

    #[test]
    fn hearing_from_a_suspect_trusts_it_again() {
        let mut d = Detector::new(W);
        d.watch(NodeId(2), 0);
        assert!(d.is_suspected(NodeId(2), 500));
        assert!(
            d.heard(NodeId(2), 500),
            "it was suspected before this message"
        );
        assert!(!d.is_suspected(NodeId(2), 500));
        assert!(
            !d.heard(NodeId(2), 550),
            "it was trusted before this message"
        );
        assert!(!d.is_suspected(NodeId(2), 550 + W));
        assert!(d.is_suspected(NodeId(2), 551 + W));
    }

    #[test]
    fn rewatching_keeps_history_and_unwatching_forgets_it() {
        let mut d = Detector::new(W);
        d.watch(NodeId(3), 0);
        d.watch(NodeId(3), 1_000);
        assert!(
            d.is_suspected(NodeId(3), 1_000),
            "watch must not reset a known peer's silence"
        );
        d.unwatch(NodeId(3));
        assert!(
            !d.is_suspected(NodeId(3), 1_000),
            "an unwatched peer is never suspected"
        );
        d.watch(NodeId(3), 1_000);
        assert!(
            !d.is_suspected(NodeId(3), 1_000 + W),
            "a fresh watch has a grace period"
        );
    }

    #[test]
    fn unwatched_peers_are_ignored_and_retain_prunes() {
        let mut d = Detector::new(W);
        assert!(!d.heard(NodeId(9), 10));
        assert!(!d.is_watched(NodeId(9)));
        for p in 0..5 {
            d.watch(NodeId(p), 0);
        }
        d.heard(NodeId(4), 300);
        d.retain(|p| p.0 % 2 == 0);
        assert_eq!(
            d.watched().collect::<Vec<_>>(),
            vec![NodeId(0), NodeId(2), NodeId(4)]
        );
        assert_eq!(
            d.suspects(300).collect::<Vec<_>>(),
            vec![NodeId(0), NodeId(2)]
        );
    }

    #[test]
    fn an_old_message_does_not_move_the_last_heard_time_backwards() {
        let mut d = Detector::new(W);
        d.watch(NodeId(1), 0);
        d.heard(NodeId(1), 400);
        d.heard(NodeId(1), 200);
        assert!(!d.is_suspected(NodeId(1), 400 + W));
    }
}
