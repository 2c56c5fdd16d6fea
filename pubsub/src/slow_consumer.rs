//! Slow-consumer policies: what a subscriber does when the application reads slower than the
//! feed (docs/slow-consumers.md).
//!
//! [`SlowConsumer::Block`] is the transport's own back-pressure: the receive queue fills, the
//! IO thread stops reading, the kernel drops, and NAK repair follows. The two other policies
//! keep the transport drained (a thread of the subscriber reads and decodes at the feed's
//! rate, see `drain.rs`) and hold decoded messages in a [`PolicyBuffer`] bounded in
//! messages and bytes:
//!
//! - [`SlowConsumer::DropOldest`]: a new message that does not fit evicts the oldest ones.
//! - [`SlowConsumer::Conflate`]: a new message replaces the one still held of the same
//!   publisher and topic (the topic's place in the queue is kept); a new topic that does not
//!   fit evicts the oldest held topic.
//!
//! Evicted messages are announced by [`RecvEvent::Dropped`] (per publisher, before anything
//! newer is delivered), distinct from the transport's [`RecvEvent::Gap`]. The buffer is pure:
//! no thread, no clock.

use std::collections::{HashMap, VecDeque};

use bytes::{Bytes, BytesMut};
use pgm::wire::Tsi;

use crate::decoder::{Message, RecvEvent};

/// Default [`Bound::messages`].
pub const DEFAULT_BOUND_MESSAGES: usize = 10_000;
/// Default [`Bound::bytes`]: 16 MiB.
pub const DEFAULT_BOUND_BYTES: usize = 16 << 20;
/// Charge of every held entry on top of its frames (the entry, its frame list's slots, the
/// allocation's header), so empty messages and notices are bounded too.
pub const ENTRY_OVERHEAD: usize = 64;
/// Most publishers with drop notices pending at once; the drops of any further ones are
/// announced together as [`RecvEvent::Dropped`] with `tsi: None`.
pub const MAX_DROP_NOTICES: usize = 1024;

/// How much a [`PolicyBuffer`] holds: whichever limit is reached first applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// Most entries (messages, and loss or end notices of the transport); with
    /// [`SlowConsumer::Conflate`] also the most topics held. At least 1 (0 counts as 1).
    pub messages: usize,
    /// Most bytes: frame bytes plus [`ENTRY_OVERHEAD`] and the frame list per entry. A message
    /// larger than this alone is dropped on arrival.
    pub bytes: usize,
}

impl Default for Bound {
    fn default() -> Self {
        Bound {
            messages: DEFAULT_BOUND_MESSAGES,
            bytes: DEFAULT_BOUND_BYTES,
        }
    }
}

/// What a subscriber does when its application reads slower than the feed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlowConsumer {
    /// The transport's back-pressure: reading stops, the kernel drops, NAKs repair (or the
    /// data is lost for good once the sender's window has moved on).
    #[default]
    Block,
    /// Keep the newest messages; evict the oldest held ones, announced by
    /// [`RecvEvent::Dropped`].
    DropOldest(Bound),
    /// Keep only the newest message per publisher and topic; count the replaced ones
    /// ([`PolicyStats::conflated`]).
    Conflate(Bound),
}

impl SlowConsumer {
    /// The bound, for the policies that buffer.
    pub fn bound(&self) -> Option<Bound> {
        match *self {
            SlowConsumer::Block => None,
            SlowConsumer::DropOldest(b) | SlowConsumer::Conflate(b) => Some(b),
        }
    }
}

/// Counters of a [`PolicyBuffer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PolicyStats {
    /// Messages evicted (or too large to hold), each announced by a [`RecvEvent::Dropped`].
    pub dropped: u64,
    /// Messages replaced by a newer one of the same publisher and topic (conflate).
    pub conflated: u64,
    /// [`RecvEvent::Dropped`] events handed out.
    pub drop_events: u64,
    /// Transport loss or end notices evicted and folded into a drop notice.
    pub folded_notices: u64,
    /// Entries held now.
    pub held: u64,
    /// Bytes held now (as counted against [`Bound::bytes`]).
    pub held_bytes: u64,
    /// The most entries ever held.
    pub max_held: u64,
    /// The most bytes ever held.
    pub max_held_bytes: u64,
}

/// Which buffering policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    DropOldest,
    Conflate,
}

/// One held entry.
#[derive(Debug)]
enum Entry {
    /// A message and its charge.
    Message(Message, usize),
    /// A transport notice: [`RecvEvent::Gap`] or [`RecvEvent::PublisherGone`].
    Notice(RecvEvent),
}

/// A decoder event made ready for a [`PolicyBuffer`]: a message compacted (see `compact`),
/// which its filler does before it takes the buffer's lock.
#[derive(Debug)]
pub struct Held(Entry);

impl From<RecvEvent> for Held {
    fn from(ev: RecvEvent) -> Self {
        Held(match ev {
            RecvEvent::Message(m) => {
                let (m, size) = compact(m);
                Entry::Message(m, size)
            }
            ev => Entry::Notice(ev),
        })
    }
}

/// What was evicted from one publisher since the application last read.
#[derive(Debug, Default, Clone, Copy)]
struct Evicted {
    /// Messages.
    messages: u64,
    /// Sequence numbers of evicted [`RecvEvent::Gap`]s.
    lost: u32,
    /// An evicted [`RecvEvent::PublisherGone`].
    gone: bool,
    /// An evicted [`RecvEvent::CaughtUp`].
    caught_up: bool,
}

/// A bounded queue of decoded messages under a [`SlowConsumer`] policy (see the
/// [module docs](self)). `push` never refuses: it evicts.
#[derive(Debug)]
pub struct PolicyBuffer {
    mode: Mode,
    bound: Bound,
    entries: VecDeque<Entry>,
    /// The id of `entries[0]`; ids go up by one per entry pushed.
    head: u64,
    /// Conflate: the id of the entry holding each publisher's topic.
    latest: HashMap<(Tsi, Bytes), u64>,
    /// Evictions not yet announced, per publisher, in order of the first one.
    evicted: Vec<(Tsi, Evicted)>,
    /// Index of each publisher in `evicted`.
    evicted_at: HashMap<Tsi, usize>,
    /// Messages evicted from publishers beyond [`MAX_DROP_NOTICES`].
    evicted_others: u64,
    /// Announcements ready to hand out, ahead of `entries`.
    ready: VecDeque<RecvEvent>,
    stats: PolicyStats,
}

impl PolicyBuffer {
    /// A buffer for `policy`; `None` for [`SlowConsumer::Block`], which buffers nothing.
    pub fn new(policy: SlowConsumer) -> Option<Self> {
        Some(match policy {
            SlowConsumer::Block => return None,
            SlowConsumer::DropOldest(b) => Self::with_mode(Mode::DropOldest, b),
            SlowConsumer::Conflate(b) => Self::with_mode(Mode::Conflate, b),
        })
    }

    /// A conflating buffer (the snapshot of a current-state join, docs/late-join.md).
    pub(crate) fn conflating(bound: Bound) -> Self {
        Self::with_mode(Mode::Conflate, bound)
    }

    fn with_mode(mode: Mode, bound: Bound) -> Self {
        PolicyBuffer {
            mode,
            bound: Bound {
                messages: bound.messages.max(1),
                bytes: bound.bytes,
            },
            entries: VecDeque::new(),
            head: 0,
            latest: HashMap::new(),
            evicted: Vec::new(),
            evicted_at: HashMap::new(),
            evicted_others: 0,
            ready: VecDeque::new(),
            stats: PolicyStats::default(),
        }
    }

    /// Nothing to hand out.
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty()
            && self.entries.is_empty()
            && self.evicted.is_empty()
            && self.evicted_others == 0
    }

    /// Counters.
    pub fn stats(&self) -> PolicyStats {
        self.stats
    }

    /// Takes one event from the decoder, evicting per the policy to stay within the bound.
    pub fn push(&mut self, ev: impl Into<Held>) {
        match ev.into().0 {
            Entry::Message(m, size) => self.push_message(m, size),
            e @ Entry::Notice(_) => self.push_entry(e, ENTRY_OVERHEAD),
        }
        self.stats.max_held = self.stats.max_held.max(self.entries.len() as u64);
        self.stats.max_held_bytes = self.stats.max_held_bytes.max(self.stats.held_bytes);
        self.stats.held = self.entries.len() as u64;
    }

    fn push_message(&mut self, m: Message, size: usize) {
        if size > self.bound.bytes {
            self.note_dropped(m.tsi);
            return;
        }
        if self.mode == Mode::Conflate {
            let key = (m.tsi, m.topic().clone());
            if let Some(&id) = self.latest.get(&key) {
                let slot = &mut self.entries[(id - self.head) as usize];
                let Entry::Message(old, old_size) =
                    std::mem::replace(slot, Entry::Message(m, size))
                else {
                    unreachable!("`latest` points at messages only");
                };
                self.stats.held_bytes = self.stats.held_bytes - old_size as u64 + size as u64;
                self.stats.conflated += 1;
                // Re-keyed with the new topic bytes, so the old message's buffer is freed.
                drop(old);
                self.latest.remove(&key);
                self.latest.insert(key, id);
                while self.stats.held_bytes > self.bound.bytes as u64 {
                    self.evict_oldest();
                }
                return;
            }
            self.make_room(size);
            self.latest
                .insert(key, self.head + self.entries.len() as u64);
            self.entries.push_back(Entry::Message(m, size));
            self.stats.held_bytes += size as u64;
            return;
        }
        self.push_entry(Entry::Message(m, size), size);
    }

    fn push_entry(&mut self, e: Entry, size: usize) {
        self.make_room(size);
        self.entries.push_back(e);
        self.stats.held_bytes += size as u64;
    }

    /// Evicts the oldest entries until one more of `size` bytes fits.
    fn make_room(&mut self, size: usize) {
        while !self.entries.is_empty()
            && (self.entries.len() >= self.bound.messages
                || self.stats.held_bytes + size as u64 > self.bound.bytes as u64)
        {
            self.evict_oldest();
        }
    }

    fn evict_oldest(&mut self) {
        let Some(e) = self.pop_entry() else {
            return;
        };
        match e {
            Entry::Message(m, _) => self.note_dropped(m.tsi),
            Entry::Notice(ev) => {
                self.stats.folded_notices += 1;
                match ev {
                    RecvEvent::Gap { tsi, lost } => {
                        if let Some(n) = self.evicted_for(tsi) {
                            n.lost = n.lost.saturating_add(lost);
                        }
                    }
                    RecvEvent::PublisherGone { tsi } => {
                        if let Some(n) = self.evicted_for(tsi) {
                            n.gone = true;
                        }
                    }
                    RecvEvent::CaughtUp { tsi } => {
                        if let Some(n) = self.evicted_for(tsi) {
                            n.caught_up = true;
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn note_dropped(&mut self, tsi: Tsi) {
        self.stats.dropped += 1;
        match self.evicted_for(tsi) {
            Some(n) => n.messages += 1,
            None => self.evicted_others += 1,
        }
    }

    /// `tsi`'s pending evictions; `None` when [`MAX_DROP_NOTICES`] others are pending.
    fn evicted_for(&mut self, tsi: Tsi) -> Option<&mut Evicted> {
        let i = match self.evicted_at.get(&tsi) {
            Some(&i) => i,
            None if self.evicted.len() < MAX_DROP_NOTICES => {
                self.evicted.push((tsi, Evicted::default()));
                self.evicted_at.insert(tsi, self.evicted.len() - 1);
                self.evicted.len() - 1
            }
            None => return None,
        };
        Some(&mut self.evicted[i].1)
    }

    /// Removes the oldest entry (and its conflation key).
    fn pop_entry(&mut self) -> Option<Entry> {
        let e = self.entries.pop_front()?;
        let size = match &e {
            Entry::Message(m, size) => {
                if self.mode == Mode::Conflate {
                    self.latest.remove(&(m.tsi, m.topic().clone()));
                }
                *size
            }
            Entry::Notice(_) => ENTRY_OVERHEAD,
        };
        self.head += 1;
        self.stats.held_bytes -= size as u64;
        self.stats.held = self.entries.len() as u64;
        Some(e)
    }

    /// The next event for the application: announcements of evictions first (they are older
    /// than anything still held), then the held entries in order.
    pub fn pop(&mut self) -> Option<RecvEvent> {
        if let Some(ev) = self.ready.pop_front() {
            return Some(ev);
        }
        if !self.evicted.is_empty() || self.evicted_others > 0 {
            self.announce();
            return self.ready.pop_front();
        }
        Some(match self.pop_entry()? {
            Entry::Message(m, _) => RecvEvent::Message(m),
            Entry::Notice(ev) => ev,
        })
    }

    /// Turns pending evictions into events: per publisher its loss, its drops, its end.
    fn announce(&mut self) {
        self.evicted_at.clear();
        for (tsi, n) in self.evicted.drain(..) {
            if n.lost > 0 {
                self.ready.push_back(RecvEvent::Gap { tsi, lost: n.lost });
            }
            if n.messages > 0 {
                self.stats.drop_events += 1;
                self.ready.push_back(RecvEvent::Dropped {
                    tsi: Some(tsi),
                    messages: n.messages,
                });
            }
            if n.caught_up {
                self.ready.push_back(RecvEvent::CaughtUp { tsi });
            }
            if n.gone {
                self.ready.push_back(RecvEvent::PublisherGone { tsi });
            }
        }
        let others = std::mem::take(&mut self.evicted_others);
        if others > 0 {
            self.stats.drop_events += 1;
            self.ready.push_back(RecvEvent::Dropped {
                tsi: None,
                messages: others,
            });
        }
    }

    /// Drops everything held and pending (the subscriber closed).
    pub fn clear(&mut self) {
        while self.pop_entry().is_some() {}
        self.evicted.clear();
        self.evicted_at.clear();
        self.evicted_others = 0;
        self.ready.clear();
    }
}

/// Copies `m`'s frames into one allocation of their size, so that a held message does not
/// keep the (larger) APDU buffers it was sliced from alive; returns it and its charge.
fn compact(mut m: Message) -> (Message, usize) {
    let len: usize = m.frames.iter().map(Bytes::len).sum();
    let mut buf = BytesMut::with_capacity(len);
    for f in &m.frames {
        buf.extend_from_slice(f);
    }
    let all = buf.freeze();
    let mut at = 0;
    for f in &mut m.frames {
        let n = f.len();
        *f = all.slice(at..at + n);
        at += n;
    }
    let size = len + ENTRY_OVERHEAD + m.frames.capacity() * std::mem::size_of::<Bytes>();
    (m, size)
}

#[cfg(test)]
mod tests {
    use pgm::wire::Gsi;

    use super::*;

    fn tsi(n: u16) -> Tsi {
        Tsi::new(Gsi([9, 9, 9, 9, 9, 9]), n)
    }

    fn msg(t: Tsi, topic: &str, body: &str) -> RecvEvent {
        RecvEvent::Message(Message {
            tsi: t,
            frames: [
                Bytes::copy_from_slice(topic.as_bytes()),
                Bytes::copy_from_slice(body.as_bytes()),
            ]
            .into(),
        })
    }

    fn bound(messages: usize) -> Bound {
        Bound {
            messages,
            bytes: 1 << 20,
        }
    }

    fn drain(b: &mut PolicyBuffer) -> Vec<RecvEvent> {
        std::iter::from_fn(|| b.pop()).collect()
    }

    fn body(ev: &RecvEvent) -> &[u8] {
        match ev {
            RecvEvent::Message(m) => &m.frames[1],
            _ => panic!("not a message: {ev:?}"),
        }
    }

    #[test]
    fn block_buffers_nothing() {
        assert!(PolicyBuffer::new(SlowConsumer::Block).is_none());
    }

    #[test]
    fn drop_oldest_keeps_the_newest_and_announces_the_rest_first() {
        let mut b = PolicyBuffer::new(SlowConsumer::DropOldest(bound(3))).unwrap();
        for i in 0..10 {
            b.push(msg(tsi(1), "a", &i.to_string()));
        }
        let out = drain(&mut b);
        assert_eq!(
            out[0],
            RecvEvent::Dropped {
                tsi: Some(tsi(1)),
                messages: 7
            }
        );
        let bodies: Vec<&[u8]> = out[1..].iter().map(body).collect();
        assert_eq!(bodies, [b"7", b"8", b"9"]);
        let s = b.stats();
        assert_eq!((s.dropped, s.drop_events, s.max_held, s.held), (7, 1, 3, 0));
        assert!(b.is_empty());
    }

    #[test]
    fn drops_after_a_read_are_announced_before_the_next_message() {
        let mut b = PolicyBuffer::new(SlowConsumer::DropOldest(bound(2))).unwrap();
        b.push(msg(tsi(1), "a", "0"));
        b.push(msg(tsi(2), "a", "0"));
        assert_eq!(body(&b.pop().unwrap()), b"0");
        // Held: tsi 2's 0. Three more evict it and tsi 1's 1.
        for i in 1..4 {
            b.push(msg(tsi(1), "a", &i.to_string()));
        }
        let out = drain(&mut b);
        assert_eq!(
            out[..2],
            [
                RecvEvent::Dropped {
                    tsi: Some(tsi(2)),
                    messages: 1
                },
                RecvEvent::Dropped {
                    tsi: Some(tsi(1)),
                    messages: 1
                },
            ]
        );
        assert_eq!((body(&out[2]), body(&out[3])), (&b"2"[..], &b"3"[..]));
    }

    #[test]
    fn the_byte_bound_holds_and_an_oversize_message_is_dropped() {
        let one = 1 + 100 + ENTRY_OVERHEAD + 2 * std::mem::size_of::<Bytes>();
        let mut b = PolicyBuffer::new(SlowConsumer::DropOldest(Bound {
            messages: 1000,
            bytes: 3 * one,
        }))
        .unwrap();
        let big = "x".repeat(100);
        for _ in 0..10 {
            b.push(msg(tsi(1), "a", &big));
            assert!(b.stats().held_bytes <= 3 * one as u64);
        }
        assert_eq!(b.stats().held, 3);
        b.push(msg(tsi(1), "a", &"y".repeat(4 * one)));
        let s = b.stats();
        assert_eq!(
            (s.dropped, s.held, s.max_held_bytes),
            (8, 3, 3 * one as u64)
        );
    }

    #[test]
    fn held_messages_do_not_pin_their_apdu() {
        let apdu = Bytes::from(vec![7u8; 1400]);
        let mut b = PolicyBuffer::new(SlowConsumer::DropOldest(bound(10))).unwrap();
        b.push(RecvEvent::Message(Message {
            tsi: tsi(1),
            frames: [apdu.slice(0..1), apdu.slice(1..5)].into(),
        }));
        let RecvEvent::Message(m) = b.pop().unwrap() else {
            panic!()
        };
        assert_eq!(
            (m.topic().as_ref(), m.body()[0].as_ref()),
            (&[7][..], &[7; 4][..])
        );
        // Only our handle of the APDU is left: the held copy did not keep it.
        assert!(apdu.is_unique());
    }

    #[test]
    fn conflate_keeps_the_newest_per_topic_in_first_arrival_order() {
        let mut b = PolicyBuffer::new(SlowConsumer::Conflate(bound(10))).unwrap();
        for i in 0..5 {
            b.push(msg(tsi(1), "a", &format!("a{i}")));
            b.push(msg(tsi(1), "b", &format!("b{i}")));
        }
        // Another publisher's topic "a" is its own stream.
        b.push(msg(tsi(2), "a", "other"));
        let out = drain(&mut b);
        let bodies: Vec<&[u8]> = out.iter().map(body).collect();
        assert_eq!(bodies, [&b"a4"[..], b"b4", b"other"]);
        let s = b.stats();
        assert_eq!((s.conflated, s.dropped, s.max_held), (8, 0, 3));
        // A topic delivered is held again from scratch.
        b.push(msg(tsi(1), "a", "a5"));
        assert_eq!(body(&b.pop().unwrap()), b"a5");
    }

    #[test]
    fn conflate_bounds_the_topics_and_evicts_the_oldest() {
        let mut b = PolicyBuffer::new(SlowConsumer::Conflate(bound(4))).unwrap();
        for t in 0..100 {
            b.push(msg(tsi(1), &format!("t{t}"), "x"));
            assert!(b.stats().held <= 4);
        }
        assert!(b.latest.len() <= 4);
        let out = drain(&mut b);
        assert_eq!(
            out[0],
            RecvEvent::Dropped {
                tsi: Some(tsi(1)),
                messages: 96
            }
        );
        let topics: Vec<&[u8]> = out[1..]
            .iter()
            .map(|e| match e {
                RecvEvent::Message(m) => m.topic().as_ref(),
                _ => panic!(),
            })
            .collect();
        assert_eq!(topics, [&b"t96"[..], b"t97", b"t98", b"t99"]);
        assert!(b.latest.is_empty());
    }

    #[test]
    fn evicted_transport_notices_are_folded_per_publisher() {
        let mut b = PolicyBuffer::new(SlowConsumer::DropOldest(bound(2))).unwrap();
        b.push(msg(tsi(1), "a", "0"));
        b.push(RecvEvent::Gap {
            tsi: tsi(1),
            lost: 5,
        });
        b.push(RecvEvent::PublisherGone { tsi: tsi(1) });
        b.push(msg(tsi(2), "a", "0"));
        b.push(msg(tsi(2), "a", "1"));
        let out = drain(&mut b);
        assert_eq!(
            out[..3],
            [
                RecvEvent::Gap {
                    tsi: tsi(1),
                    lost: 5
                },
                RecvEvent::Dropped {
                    tsi: Some(tsi(1)),
                    messages: 1
                },
                RecvEvent::PublisherGone { tsi: tsi(1) },
            ]
        );
        assert_eq!(out.len(), 5);
        assert_eq!(b.stats().folded_notices, 2);
    }

    #[test]
    fn notices_are_bounded_beyond_max_publishers() {
        let mut b = PolicyBuffer::new(SlowConsumer::DropOldest(bound(1))).unwrap();
        let n = MAX_DROP_NOTICES as u16 + 10;
        for i in 0..=n {
            b.push(msg(tsi(i), "a", "x"));
        }
        assert_eq!(b.evicted.len(), MAX_DROP_NOTICES);
        let out = drain(&mut b);
        let dropped: u64 = out
            .iter()
            .filter_map(|e| match e {
                RecvEvent::Dropped { messages, .. } => Some(*messages),
                _ => None,
            })
            .sum();
        assert_eq!(dropped, u64::from(n));
        assert!(out.contains(&RecvEvent::Dropped {
            tsi: None,
            messages: 10
        }));
        assert_eq!(out.len(), MAX_DROP_NOTICES + 2);
    }

    #[test]
    fn accounting_is_exact_under_random_pushes_and_pops() {
        // Delivered + announced drops + conflated = pushed, for both policies.
        for policy in [
            SlowConsumer::DropOldest(bound(7)),
            SlowConsumer::Conflate(bound(7)),
        ] {
            let mut b = PolicyBuffer::new(policy).unwrap();
            let (mut pushed, mut delivered, mut announced) = (0u64, 0u64, 0u64);
            let mut x = 12345u32;
            for _ in 0..20_000 {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if x.is_multiple_of(3) {
                    match b.pop() {
                        Some(RecvEvent::Message(_)) => delivered += 1,
                        Some(RecvEvent::Dropped { messages, .. }) => announced += messages,
                        _ => {}
                    }
                } else {
                    let t = format!("t{}", (x >> 8) % 13);
                    b.push(msg(tsi((x >> 16) as u16 % 3), &t, "x"));
                    pushed += 1;
                    assert!(b.stats().held <= 7);
                }
            }
            for e in drain(&mut b) {
                match e {
                    RecvEvent::Message(_) => delivered += 1,
                    RecvEvent::Dropped { messages, .. } => announced += messages,
                    _ => {}
                }
            }
            let s = b.stats();
            assert_eq!(announced, s.dropped);
            assert_eq!(delivered + s.dropped + s.conflated, pushed, "{policy:?}");
        }
    }
}
