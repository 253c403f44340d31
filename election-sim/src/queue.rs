//! The event queue: earliest time first, ties in insertion order.
//!
//! Profiling showed a heap's pop dominating large runs (cache misses sifting a heap of
//! 60 k–380 k events), so near events bypass the heap:
//! - a **timing wheel** of 2¹⁶ one-µs buckets holds every event due in `[cur, cur + 2¹⁶ µs)`,
//!   where `cur` is the time of the latest event popped. A bucket holds the events of exactly
//!   one time, as a FIFO list linked through the payload slab; pushes only ever append, so a
//!   bucket is already in sequence order and popping its head needs no comparison. A two-level
//!   bitmap of non-empty buckets finds the next one in a few word reads;
//! - an **overflow heap** (4-ary, 16-byte keys (time, sequence << 32 | slot), bottom-up sift)
//!   holds the rest: events 65.5 ms or more ahead (the plan's faults, the run's phase markers,
//!   timers set that far ahead) and events pushed for a time already passed (the simulator never
//!   does, the queue allows it).
//!
//! Why the order is exactly (time, sequence): heap events are either before `cur` or at least a
//! wheel span after it, wheel events are within the span, so the two never tie and the heap's
//! minimum is the global one exactly when it is before `cur` or the wheel is empty. When `cur`
//! advances, the heap events that enter the span move into their buckets at once, in (time,
//! sequence) order, before any later push can reach those times directly; those buckets are
//! empty then (their times were outside the span until now), so each stays in push order.
//!
//! After a burst (a Bully boot storm queues n²/2 messages at once) the queue gives its memory
//! back: once it holds less than a third of the slab's capacity, it compacts the slab and
//! shrinks the vectors to one and a half times what they hold. A compaction costs O(capacity)
//! and follows at least a sixth of the capacity in pops since the last one (or since the
//! doubling that made the capacity), so O(1) amortised; an idle cluster's queue holds at most
//! three times its events (a quarter was four times: half the 10,000-node Bully's memory after
//! its storm). The wheel itself is a fixed 520 KiB.

use election_core::Time;

/// A heap key: virtual time (high 64 bits), then sequence number (32 bits) and slab slot (low 32
/// bits). One `u128` compares in two instructions, a tuple in a branch per field.
type Key = u128;

const ARITY: usize = 4;

/// Capacity below which the queue never bothers to compact.
const COMPACT_ABOVE: usize = 1 << 12;

/// The slot bits of a key.
const SLOT_MASK: u128 = 0xffff_ffff;

/// Buckets of the wheel, one per µs: the wheel spans 65.5 ms, more than any message delay of the
/// random plans (≤ 40 ms) and the default timings (20 ms timeout, 50 ms heartbeat).
const WHEEL: usize = 1 << 16;
const SPAN: Time = WHEEL as Time;
const BUCKET_MASK: Time = SPAN - 1;
/// Words of the bucket bitmap, and of its summary (bit `w` set iff word `w` is non-zero).
const WORDS: usize = WHEEL / 64;
const SUMMARY: usize = WORDS / 64;

/// End of a list / empty bucket.
const NIL: u32 = u32::MAX;

fn key(time: Time, seq: u32, slot: u32) -> Key {
    u128::from(time) << 64 | u128::from(seq) << 32 | u128::from(slot)
}

fn key_time(key: Key) -> Time {
    (key >> 64) as Time
}

fn key_slot(key: Key) -> u32 {
    (key & SLOT_MASK) as u32
}

struct Entry<A> {
    action: Option<A>,
    /// Next event of the same bucket (wheel events only).
    next: u32,
}

/// A bucket's list: first and last slab slot, `NIL` when empty.
#[derive(Clone, Copy)]
struct Bucket {
    first: u32,
    last: u32,
}

const EMPTY: Bucket = Bucket {
    first: NIL,
    last: NIL,
};

pub(crate) struct Queue<A> {
    /// Bucket `t & BUCKET_MASK` lists the events due at `t`, for `t` in `[cur, cur + SPAN)`.
    buckets: Vec<Bucket>,
    /// Bit `b` set iff bucket `b` is non-empty.
    occupied: Vec<u64>,
    /// Bit `w` set iff `occupied[w]` is non-zero.
    summary: [u64; SUMMARY],
    /// The time of the latest event popped (0 before the first): the wheel's start.
    cur: Time,
    /// Events in the wheel.
    wheel_len: usize,
    /// The overflow: a 4-ary min-heap, the children of `i` are `4i + 1 ..= 4i + 4`.
    heap: Vec<Key>,
    slab: Vec<Entry<A>>,
    free: Vec<u32>,
    seq: u32,
}

impl<A> Queue<A> {
    pub(crate) fn new() -> Self {
        Queue {
            buckets: vec![EMPTY; WHEEL],
            occupied: vec![0; WORDS],
            summary: [0; SUMMARY],
            cur: 0,
            wheel_len: 0,
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
        let entry = Entry {
            action: Some(action),
            next: NIL,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = entry;
                slot
            }
            None => {
                self.slab.push(entry);
                u32::try_from(self.slab.len() - 1).expect("fewer than 2^32 queued events")
            }
        };
        if self.in_wheel(time) {
            self.link(time, slot);
        } else {
            self.heap.push(key(time, self.seq, slot));
            self.sift_up(self.heap.len() - 1);
        }
    }

    /// Time of the earliest event.
    pub(crate) fn peek_time(&self) -> Option<Time> {
        match self.heap.first() {
            Some(&k) if key_time(k) < self.cur || self.wheel_len == 0 => Some(key_time(k)),
            _ if self.wheel_len > 0 => Some(self.bucket_time(self.next_bucket())),
            _ => None,
        }
    }

    /// Takes the earliest event.
    pub(crate) fn pop(&mut self) -> Option<(Time, A)> {
        let (time, slot) = match self.heap.first() {
            Some(&k) if key_time(k) < self.cur || self.wheel_len == 0 => {
                self.heap_pop();
                (key_time(k), key_slot(k))
            }
            None if self.wheel_len == 0 => return None,
            _ => {
                let b = self.next_bucket();
                (self.bucket_time(b), self.unlink_first(b))
            }
        };
        if time > self.cur {
            // `time` was the minimum, so no event is before it: the wheel can start there.
            self.cur = time;
            self.migrate();
        }
        self.free.push(slot);
        let action = self.slab[slot as usize]
            .action
            .take()
            .expect("a queued slot holds its event");
        if self.slab.capacity() > COMPACT_ABOVE && self.len() * 3 < self.slab.capacity() {
            self.compact();
        }
        Some((time, action))
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len() + self.wheel_len
    }

    fn in_wheel(&self, time: Time) -> bool {
        time >= self.cur && time - self.cur < SPAN
    }

    /// The time bucket `b` stands for.
    fn bucket_time(&self, b: usize) -> Time {
        self.cur + ((b as Time).wrapping_sub(self.cur) & BUCKET_MASK)
    }

    /// Moves the heap events that are now within the wheel's span into their buckets.
    fn migrate(&mut self) {
        while let Some(&k) = self.heap.first() {
            let time = key_time(k);
            if !self.in_wheel(time) {
                debug_assert!(time >= self.cur, "no heap event before the wheel's start");
                break;
            }
            self.heap_pop();
            self.link(time, key_slot(k));
        }
    }

    /// Appends `slot` to the bucket of `time` (which is within the span).
    fn link(&mut self, time: Time, slot: u32) {
        let b = (time & BUCKET_MASK) as usize;
        let bucket = &mut self.buckets[b];
        if bucket.first == NIL {
            bucket.first = slot;
            self.occupied[b / 64] |= 1 << (b % 64);
            self.summary[b / 4096] |= 1 << (b / 64 % 64);
        } else {
            self.slab[bucket.last as usize].next = slot;
        }
        bucket.last = slot;
        self.wheel_len += 1;
    }

    /// Removes and returns the first slot of non-empty bucket `b`.
    fn unlink_first(&mut self, b: usize) -> u32 {
        let bucket = &mut self.buckets[b];
        let slot = bucket.first;
        let next = self.slab[slot as usize].next;
        bucket.first = next;
        if next == NIL {
            bucket.last = NIL;
            let word = &mut self.occupied[b / 64];
            *word &= !(1 << (b % 64));
            if *word == 0 {
                self.summary[b / 4096] &= !(1 << (b / 64 % 64));
            }
        }
        self.wheel_len -= 1;
        slot
    }

    /// The first non-empty bucket at or after `cur`'s, cyclically. The wheel must not be empty.
    fn next_bucket(&self) -> usize {
        let from = (self.cur & BUCKET_MASK) as usize;
        let w = from / 64;
        let bits = self.occupied[w] & (u64::MAX << (from % 64));
        if bits != 0 {
            return w * 64 + bits.trailing_zeros() as usize;
        }
        // The next non-zero word after `w`, cyclically; `w` itself last (for its bits below
        // `from`, which are the span's latest times).
        let start = (w + 1) % WORDS;
        let s = start / 64;
        let mut bits = self.summary[s] & (u64::MAX << (start % 64));
        let mut s_at = s;
        let mut i = 0;
        while bits == 0 {
            i += 1;
            assert!(i <= SUMMARY, "next_bucket on an empty wheel");
            s_at = (s + i) % SUMMARY;
            bits = self.summary[s_at];
        }
        let word = s_at * 64 + bits.trailing_zeros() as usize;
        word * 64 + self.occupied[word].trailing_zeros() as usize
    }

    /// Moves the queued payloads into a dense slab and releases spare capacity. Rewriting a key's
    /// slot bits keeps the heap valid: sequence numbers are unique, so the slot bits never decide
    /// an order.
    fn compact(&mut self) {
        fn take<A>(old: &mut [Entry<A>], slot: u32, slab: &mut Vec<Entry<A>>) -> u32 {
            slab.push(Entry {
                action: old[slot as usize].action.take(),
                next: NIL,
            });
            (slab.len() - 1) as u32
        }
        let mut old = std::mem::take(&mut self.slab);
        let mut slab = Vec::with_capacity(self.len() * 3 / 2);
        for key in &mut self.heap {
            let new = take(&mut old, key_slot(*key), &mut slab);
            *key = (*key & !SLOT_MASK) | u128::from(new);
        }
        for bucket in &mut self.buckets {
            let mut slot = bucket.first;
            let mut prev = NIL;
            while slot != NIL {
                let new = take(&mut old, slot, &mut slab);
                match prev {
                    NIL => bucket.first = new,
                    _ => slab[prev as usize].next = new,
                }
                prev = new;
                slot = old[slot as usize].next;
            }
            bucket.last = prev;
        }
        self.slab = slab;
        self.free = Vec::new();
        self.heap.shrink_to(self.heap.len() * 3 / 2);
    }

    /// Bytes held by the queue's vectors (capacity, not just length).
    #[cfg(test)]
    fn reserved_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
            + self.occupied.capacity() * std::mem::size_of::<u64>()
            + self.heap.capacity() * std::mem::size_of::<Key>()
            + self.slab.capacity() * std::mem::size_of::<Entry<A>>()
            + self.free.capacity() * std::mem::size_of::<u32>()
    }

    /// Takes the heap's root.
    fn heap_pop(&mut self) {
        let last = self.heap.pop().expect("heap not empty");
        if !self.heap.is_empty() {
            self.heap[0] = last;
            self.sift_down(0);
        }
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
        // Big enough that the fixed wheel is small beside the burst.
        let n = 64 * COMPACT_ABOVE as u64;
        for i in 0..n {
            // Reverse times, so the survivors sit at scattered slots.
            q.push(n - i, i);
        }
        let full = q.reserved_bytes();
        for i in 0..n - 100 {
            assert_eq!(q.pop(), Some((i + 1, n - 1 - i)));
            if q.len() == 20_000 {
                // At most three times what it holds (with four, as before, 65,535 here).
                assert!(q.slab.capacity() <= 3 * q.len(), "{}", q.slab.capacity());
            }
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

    fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    /// Invariant: an event queued beyond the wheel's span (so in the overflow heap) still pops
    /// before one pushed later for the same time, after the wheel has reached that time.
    #[test]
    fn a_far_event_keeps_its_place_among_ties_pushed_once_it_is_near() {
        let mut q = Queue::new();
        let far = 3 * SPAN;
        q.push(far, 'a');
        q.push(far, 'b');
        q.push(0, 'x');
        q.push(2 * SPAN + 10, 'y');
        assert_eq!(q.heap.len(), 3, "the far events wait in the overflow heap");
        assert_eq!(q.pop(), Some((0, 'x')));
        assert_eq!(q.pop(), Some((2 * SPAN + 10, 'y')));
        // `far` is now within the span: a push for it goes straight to its bucket.
        q.push(far, 'c');
        q.push(far - 1, 'd');
        assert_eq!(
            q.heap.len(),
            0,
            "the heap events within the span moved to the wheel"
        );
        let order: Vec<(Time, char)> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            vec![(far - 1, 'd'), (far, 'a'), (far, 'b'), (far, 'c')]
        );
    }

    /// Invariant: events far apart (seconds, like heartbeats, and up to `Time::MAX`), at the
    /// span's edges and in the past pop in (time, push order).
    #[test]
    fn far_future_and_past_events_pop_in_order() {
        let mut q = Queue::new();
        let times = [
            10_000_000,
            SPAN - 1,
            SPAN,
            SPAN + 1,
            Time::MAX,
            0,
            10_000_000,
            SPAN,
            2 * SPAN - 1,
            Time::MAX,
            5,
        ];
        let mut reference = std::collections::BTreeSet::new();
        for (i, &t) in times.iter().enumerate() {
            q.push(t, i);
            reference.insert((t, i));
        }
        assert_eq!(q.len(), times.len());
        // Pop past `SPAN`, then push before it (into the past) and around it.
        for _ in 0..4 {
            assert_eq!(q.pop(), reference.pop_first());
        }
        for (i, t) in [(100, 3), (101, SPAN), (102, SPAN + 2), (103, 2 * SPAN)] {
            q.push(t, i);
            reference.insert((t, i));
        }
        while let Some(expected) = reference.pop_first() {
            assert_eq!(q.peek_time(), Some(expected.0));
            assert_eq!(q.pop(), Some(expected));
            assert_eq!(q.len(), reference.len());
        }
        assert_eq!(q.pop(), None);
        assert_eq!(q.peek_time(), None);
    }

    /// Invariant: with the simulator's profile (pushes at now + a delay: zero, a few ms, around
    /// the span, seconds) plus some pushes into the past, pops match a sorted reference.
    #[test]
    fn matches_a_sorted_reference_with_simulator_like_delays() {
        let mut rand = xorshift(0x2545_f491_4f6c_dd1d);
        let mut q = Queue::new();
        let mut reference = std::collections::BTreeSet::new();
        let mut order = 0u64;
        let mut now: Time = 0;
        for step in 0..200_000 {
            // Bursts of pushes, then drains, so the queue swells and empties.
            let push = if step % 20_000 < 12_000 {
                rand() % 4 != 0
            } else {
                rand() % 4 == 0
            };
            if push {
                let r = rand();
                let t = match r % 16 {
                    0 => now,
                    1 => now + SPAN - 2 + r / 16 % 5,
                    2 => now + 10_000_000 + r / 16 % 3,
                    3 => now.saturating_sub(r / 16 % 100),
                    _ => now + 1_000 + r / 16 % 4_001,
                };
                order += 1;
                q.push(t, order);
                reference.insert((t, order));
            } else {
                let expected = reference.pop_first();
                assert_eq!(q.peek_time(), expected.map(|e| e.0));
                assert_eq!(q.pop(), expected);
                if let Some((t, _)) = expected {
                    now = now.max(t);
                }
            }
            assert_eq!(q.len(), reference.len());
        }
        while let Some(expected) = reference.pop_first() {
            assert_eq!(q.pop(), Some(expected));
        }
        assert_eq!(q.pop(), None);
    }

    /// Invariant: compaction keeps the wheel's lists (many events per bucket) and the heap in
    /// order, and a burst's memory goes back.
    #[test]
    fn compaction_keeps_bucket_lists_in_order() {
        let mut rand = xorshift(99);
        let mut q = Queue::new();
        let mut reference = std::collections::BTreeSet::new();
        for i in 0..300_000u64 {
            let t = match i % 5 {
                0 => 3 * SPAN + rand() % 1_000,
                _ => 1_000 + rand() % 4_000,
            };
            q.push(t, i);
            reference.insert((t, i));
        }
        let full = q.reserved_bytes();
        for _ in 0..290_000 {
            assert_eq!(q.pop(), reference.pop_first());
        }
        assert!(
            q.reserved_bytes() * 3 < full,
            "{} of {full} bytes still held",
            q.reserved_bytes()
        );
        for i in 0..1_000u64 {
            let t = q.cur + rand() % (2 * SPAN);
            q.push(t, 1_000_000 + i);
            reference.insert((t, 1_000_000 + i));
        }
        while let Some(expected) = reference.pop_first() {
            assert_eq!(q.pop(), Some(expected));
        }
        assert_eq!(q.pop(), None);
    }
}
