//! The event queue: earliest time first, ties in insertion order.
//!
//! Profiling showed the heap's pop dominating large runs, so the queue is tuned for it:
//! - the heap holds only 16-byte keys — (time, sequence number << 32 | slot) — while payloads
//!   wait in a slab, so sifting touches half the memory that sifting whole events would;
//! - the heap is 4-ary: half as many levels as a binary heap, and the four children of a node
//!   share one or two cache lines.

use election_core::Time;

/// A key: virtual time, then sequence number (high 32 bits) and slab slot (low 32 bits).
type Key = (Time, u64);

const ARITY: usize = 4;

pub(crate) struct Queue<A> {
    /// A 4-ary min-heap: the children of `i` are `4i + 1 ..= 4i + 4`.
    heap: Vec<Key>,
    slab: Vec<Option<A>>,
    free: Vec<u32>,
    seq: u32,
}

impl<A> Queue<A> {
    pub(crate) fn new() -> Self {
        Queue {
            heap: Vec::new(),
            slab: Vec::new(),
            free: Vec::new(),
            seq: 0,
        }
    }

    /// Schedules `action` at `time`, after everything already scheduled for that time.
    ///
    /// # Panics
    /// After 2³² pushes in one run (the sequence number would wrap and ties could misorder;
    /// at simulator speeds that is tens of minutes of one run).
    pub(crate) fn push(&mut self, time: Time, action: A) {
        self.seq = self
            .seq
            .checked_add(1)
            .expect("a run is limited to 2^32 events");
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(action);
                slot
            }
            None => {
                self.slab.push(Some(action));
                u32::try_from(self.slab.len() - 1).expect("fewer than 2^32 queued events")
            }
        };
        self.heap
            .push((time, u64::from(self.seq) << 32 | u64::from(slot)));
        self.sift_up(self.heap.len() - 1);
    }

    /// Time of the earliest event.
    pub(crate) fn peek_time(&self) -> Option<Time> {
        self.heap.first().map(|&(t, _)| t)
    }

    /// Takes the earliest event.
    pub(crate) fn pop(&mut self) -> Option<(Time, A)> {
        let last = self.heap.pop()?;
        let (time, key) = match self.heap.is_empty() {
            true => last,
            false => {
                let first = std::mem::replace(&mut self.heap[0], last);
                self.sift_down(0);
                first
            }
        };
        let slot = key as u32;
        self.free.push(slot);
        let action = self.slab[slot as usize]
            .take()
            .expect("a queued slot holds its event");
        Some((time, action))
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    fn sift_up(&mut self, mut i: usize) {
        let key = self.heap[i];
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if self.heap[parent] <= key {
                break;
            }
            self.heap[i] = self.heap[parent];
            i = parent;
        }
        self.heap[i] = key;
    }

    fn sift_down(&mut self, mut i: usize) {
        let key = self.heap[i];
        let len = self.heap.len();
        loop {
            let first = ARITY * i + 1;
            if first >= len {
                break;
            }
            let last = (first + ARITY).min(len);
            let mut min = first;
            for c in first + 1..last {
                if self.heap[c] < self.heap[min] {
                    min = c;
                }
            }
            if key <= self.heap[min] {
                break;
            }
            self.heap[i] = self.heap[min];
            i = min;
        }
        self.heap[i] = key;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_and_ties_in_insertion_order() {
        let mut q = Queue::new();
        for (t, a) in [(5, 'a'), (3, 'b'), (5, 'c'), (3, 'd'), (0, 'e')] {
            q.push(t, a);
        }
        // Slots are reused after a pop, yet order stays (time, insertion).
        assert_eq!(q.pop(), Some((0, 'e')));
        q.push(3, 'f');
        let order: Vec<(Time, char)> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            vec![(3, 'b'), (3, 'd'), (3, 'f'), (5, 'a'), (5, 'c')]
        );
        assert_eq!(q.len(), 0);
        assert_eq!(q.peek_time(), None);
    }

    /// Invariant: whatever the push/pop interleaving, pops come out in (time, push order).
    #[test]
    fn matches_a_sorted_reference_on_random_interleavings() {
        let mut x: u64 = 12345;
        let mut rand = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut q = Queue::new();
        let mut reference = std::collections::BTreeSet::new();
        let mut order = 0u64;
        for _ in 0..20_000 {
            if rand() % 3 != 0 {
                let t = rand() % 50;
                order += 1;
                q.push(t, order);
                reference.insert((t, order));
            } else {
                assert_eq!(q.pop(), reference.pop_first());
            }
        }
        while let Some(expected) = reference.pop_first() {
            assert_eq!(q.pop(), Some(expected));
        }
        assert_eq!(q.pop(), None);
    }
}
