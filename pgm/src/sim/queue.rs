//! The simulator's event queue: a min-heap on (time, insertion order).

use std::{cmp::Ordering, collections::BinaryHeap};

use crate::time::Instant;

/// Pending events, popped earliest first.
///
/// Events due at the same instant pop in the order they were pushed. That keeps runs
/// deterministic (the heap alone is not stable) and causal: with a zero-delay link, a packet sent
/// before another is also delivered before it.
pub(super) struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    /// Tie-breaker for equal times; strictly increasing over the queue's life.
    next_seq: u64,
}

struct Entry<E> {
    at: Instant,
    seq: u64,
    event: E,
}

impl<E> EventQueue<E> {
    pub(super) fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }

    /// Schedules `event` at `at`.
    pub(super) fn push(&mut self, at: Instant, event: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { at, seq, event });
    }

    /// The earliest event without removing it.
    pub(super) fn peek(&self) -> Option<(Instant, &E)> {
        self.heap.peek().map(|e| (e.at, &e.event))
    }

    /// Removes and returns the earliest event.
    pub(super) fn pop(&mut self) -> Option<(Instant, E)> {
        self.heap.pop().map(|e| (e.at, e.event))
    }
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<E> Eq for Entry<E> {}

impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Entry<E> {
    /// Reversed, because `BinaryHeap` is a max-heap and we want the earliest entry on top.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_insertion_order() {
        let mut q = EventQueue::new();
        q.push(Instant::from_micros(5), 'a');
        q.push(Instant::from_micros(1), 'b');
        q.push(Instant::from_micros(5), 'c');
        q.push(Instant::from_micros(1), 'd');
        assert_eq!(q.peek(), Some((Instant::from_micros(1), &'b')));
        let order: Vec<char> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, ['b', 'd', 'a', 'c']);
    }
}
