//! The event queue: earliest time first, ties in insertion order.
//!
//! Profiling showed the heap's pop dominating large runs, so the queue is tuned for it:
//! - the heap holds only 16-byte keys — (time, sequence number << 32 | slot) — while payloads
//!   wait in a slab, so sifting touches half the memory that sifting whole events would;
//! - the heap is 4-ary: half as many levels as a binary heap, and the four children of a node
//!   share one or two cache lines.
//!
//! After a burst (a Bully boot storm queues n²/2 messages at once) the queue gives its memory
//! back: once it holds less than an eighth of its capacity, it compacts the slab and shrinks
//! both vectors. That costs O(len) after at least 7·len pops, so O(1) amortised.

use election_core::Time;

/// A key: virtual time (high 64 bits), then sequence number (32 bits) and slab slot (low 32
/// bits). One `u128` compares in two instructions, a tuple in a branch per field.
type Key = u128;

const ARITY: usize = 4;

/// Capacity below which the queue never bothers to compact.
const COMPACT_ABOVE: usize = 1 << 16;

/// The slot bits of a key.
const SLOT_MASK: u128 = 0xffff_ffff;

fn key(time: Time, seq: u32, slot: u32) -> Key {
    u128::from(time) << 64 | u128::from(seq) << 32 | u128::from(slot)
}

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
        self.heap.push(key(time, self.seq, slot));
        self.sift_up(self.heap.len() - 1);
    }

    /// Time of the earliest event.
    pub(crate) fn peek_time(&self) -> Option<Time> {
        self.heap.first().map(|&k| (k >> 64) as Time)
    }

    /// Takes the earliest event.
    pub(crate) fn pop(&mut self) -> Option<(Time, A)> {
        let last = self.heap.pop()?;
        let first = match self.heap.is_empty() {
            true => last,
            false => {
                let first = std::mem::replace(&mut self.heap[0], last);
                self.sift_down(0);
                first
            }
        };
        let time = (first >> 64) as Time;
        let slot = (first & SLOT_MASK) as u32;
        self.free.push(slot);
        let action = self.slab[slot as usize]
            .take()
            .expect("a queued slot holds its event");
        if self.heap.capacity() > COMPACT_ABOVE && self.heap.len() * 8 < self.heap.capacity() {
            self.compact();
        }
        Some((time, action))
    }

    /// Moves the queued payloads into a dense slab and releases spare capacity. Rewriting a key's
    /// slot bits keeps the heap valid: sequence numbers are unique, so the slot bits never decide
    /// an order.
    fn compact(&mut self) {
        let mut slab = Vec::with_capacity(self.heap.len() * 2);
        for key in &mut self.heap {
            let old = (*key & SLOT_MASK) as usize;
            *key = (*key & !SLOT_MASK) | slab.len() as u128;
            slab.push(self.slab[old].take());
        }
        self.slab = slab;
        self.free = Vec::new();
        self.heap.shrink_to(self.heap.len() * 2);
    }

    /// Bytes held by the queue's vectors (capacity, not just length).
    #[cfg(test)]
    fn reserved_bytes(&self) -> usize {
        self.heap.capacity() * std::mem::size_of::<Key>()
            + self.slab.capacity() * std::mem::size_of::<Option<A>>()
            + self.free.capacity() * std::mem::size_of::<u32>()
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

    /// Bottom-up: the key at `i` (the former last element) is usually among the largest, so
    /// move the smallest child up all the way to a leaf without comparing against it, then sift
    /// it up from there — one comparison per level fewer.
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
            self.heap[i] = self.heap[min];
            i = min;
        }
        self.heap[i] = key;
        self.sift_up(i);
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

    /// Invariant: after a burst drains, memory is released and the order is unchanged.
    #[test]
    fn compaction_after_a_burst_keeps_order_and_frees_memory() {
        let mut q = Queue::new();
        let n = 4 * COMPACT_ABOVE as u64;
        for i in 0..n {
            // Reverse times, so the survivors sit at scattered slots.
            q.push(n - i, i);
        }
        let full = q.reserved_bytes();
        for i in 0..n - 100 {
            assert_eq!(q.pop(), Some((i + 1, n - 1 - i)));
        }
        assert!(
            q.reserved_bytes() * 3 < full,
            "{} of {full} bytes still held",
            q.reserved_bytes()
        );
        q.push(n - 50, u64::MAX);
        let rest: Vec<(Time, u64)> = std::iter::from_fn(|| q.pop()).collect();
        let mut expected: Vec<(Time, u64)> = (n - 99..=n).map(|t| (t, n - t)).collect();
        expected.insert(50, (n - 50, u64::MAX));
        assert_eq!(rest, expected);
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
