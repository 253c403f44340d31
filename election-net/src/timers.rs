//! The protocol's named timers on the tokio clock.

use std::collections::BTreeMap;

use tokio::time::Instant;

/// A set of named deadlines: setting a timer replaces it, cancelling removes it. A node holds a
/// handful of timers, so finding the earliest is a scan.
#[derive(Debug)]
pub struct Timers<T: Ord> {
    deadlines: BTreeMap<T, Instant>,
}

impl<T: Ord + Clone> Timers<T> {
    /// No timers set.
    pub fn new() -> Self {
        Timers {
            deadlines: BTreeMap::new(),
        }
    }

    /// Sets (or replaces) `timer` to fire at `at`.
    pub fn set(&mut self, timer: T, at: Instant) {
        self.deadlines.insert(timer, at);
    }

    /// Forgets `timer`.
    pub fn cancel(&mut self, timer: &T) {
        self.deadlines.remove(timer);
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.values().min().copied()
    }

    /// Removes and returns the timer with the earliest deadline if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        let (timer, _) = self
            .deadlines
            .iter()
            .filter(|(_, at)| **at <= now)
            .min_by_key(|(_, at)| **at)?;
        let timer = timer.clone();
        self.deadlines.remove(&timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn set_replaces_cancel_removes_and_due_timers_pop_in_order() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut timers = Timers::new();
        timers.set("a", t0 + ms(30));
        timers.set("b", t0 + ms(10));
        timers.set("c", t0 + ms(20));
        timers.set("a", t0 + ms(5)); // replaces the 30 ms deadline
        timers.cancel(&"c");
        assert_eq!(timers.next_deadline(), Some(t0 + ms(5)));
        assert_eq!(timers.pop_due(t0 + ms(1)), None);
        assert_eq!(timers.pop_due(t0 + ms(40)), Some("a"));
        assert_eq!(timers.pop_due(t0 + ms(40)), Some("b"));
        assert_eq!(timers.pop_due(t0 + ms(40)), None);
        assert_eq!(timers.next_deadline(), None);
    }
}
