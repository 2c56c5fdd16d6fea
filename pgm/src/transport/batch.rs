//! Reusable packet batches: what moves between the driver and a transport in one
//! `sendmmsg`/`recvmmsg` call.
//!
//! Both sides are allocated once per socket and reused for every call, so the hot path never
//! allocates: the engine writes each packet straight into an [`Outgoing`] buffer, and the
//! kernel writes each received datagram straight into a [`RecvBatch`] slot
//! ([`Outgoing`](crate::sys::mmsg::Outgoing) is the send side).

use super::Datagram;

/// The largest datagram a [`RecvBatch`] slot holds by default: any UDP payload or IPv4 packet
/// fits, so a sender with a larger TPDU than ours is never cut short.
pub const MAX_DATAGRAM: usize = 65_536;

/// Most datagrams one UDP_GRO read may hold: the kernel's own limit on a coalesced run
/// (UDP_MAX_SEGMENTS, 128 since Linux 6.9; 64 before).
pub const MAX_GRO_SEGMENTS: usize = 128;

/// Received datagrams in fixed-size slots of one buffer, filled by
/// [`Transport::recv_batch`](super::Transport::recv_batch).
///
/// A transport receives into [`RecvBatch::spare_mut`] (the slots not used yet, back to back,
/// [`RecvBatch::slot_len`] bytes each), then, slot by slot and in order, either
/// [`RecvBatch::push`]es the datagram it found there or [`RecvBatch::skip`]s the slot (a packet
/// for another session, a truncated one).
#[derive(Debug)]
pub struct RecvBatch {
    /// `slots * slot_len` bytes. Allocated zeroed, so pages the kernel never writes to are
    /// never touched (a 64 B packet per 64 KiB slot costs one page, not the slot).
    buf: Vec<u8>,
    slot_len: usize,
    slots: usize,
    /// Slots consumed so far (pushed or skipped).
    used: usize,
    /// Accepted datagrams; their `pgm` ranges index `buf`.
    datagrams: Vec<Datagram>,
    /// Every socket of the transport was found empty during the last call.
    drained: bool,
}

impl RecvBatch {
    /// A batch of `slots` slots (at least 1) of `slot_len` bytes (at least 1).
    pub fn new(slots: usize, slot_len: usize) -> Self {
        let slots = slots.max(1);
        let slot_len = slot_len.max(1);
        RecvBatch {
            buf: vec![0; slots * slot_len],
            slot_len,
            slots,
            used: 0,
            datagrams: Vec::with_capacity(slots),
            drained: false,
        }
    }

    /// Empties the batch for the next call.
    pub fn clear(&mut self) {
        self.used = 0;
        self.datagrams.clear();
        self.drained = false;
    }

    /// Datagrams accepted.
    pub fn len(&self) -> usize {
        self.datagrams.len()
    }

    /// True when no datagram was accepted.
    pub fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }

    /// Slots in all.
    pub fn capacity(&self) -> usize {
        self.slots
    }

    /// Bytes per slot: the largest datagram this batch takes whole.
    pub fn slot_len(&self) -> usize {
        self.slot_len
    }

    /// Slots not consumed yet.
    pub fn spare_slots(&self) -> usize {
        self.slots - self.used
    }

    /// Slots consumed (pushed or skipped).
    pub fn used_slots(&self) -> usize {
        self.used
    }

    /// The spare slots, back to back: slot `j` is `[j * slot_len, (j + 1) * slot_len)`.
    pub fn spare_mut(&mut self) -> &mut [u8] {
        let start = self.used * self.slot_len;
        &mut self.buf[start..]
    }

    /// Accepts the datagram in the next spare slot; `d.pgm` is relative to that slot and is
    /// clamped to it.
    ///
    /// # Panics
    /// When no slot is spare.
    pub fn push(&mut self, d: Datagram) {
        assert!(self.used < self.slots, "RecvBatch::push on a full batch");
        let Datagram { src, dst, pgm } = d;
        let base = self.used * self.slot_len;
        let end = pgm.end.min(self.slot_len);
        let start = pgm.start.min(end);
        self.datagrams.push(Datagram {
            src,
            dst,
            pgm: base + start..base + end,
        });
        self.used += 1;
    }

    /// Accepts the datagrams of a UDP_GRO run in the next spare slot: `d.pgm` (relative to
    /// the slot, clamped to it) cut into `segment`-byte datagrams, the last possibly shorter.
    /// A run of more than [`MAX_GRO_SEGMENTS`] (more than the kernel coalesces) is not
    /// believed: the slot is skipped and `false` returned, so one slot never holds more than
    /// that many datagrams.
    ///
    /// # Panics
    /// When no slot is spare.
    pub fn push_segments(&mut self, d: Datagram, segment: usize) -> bool {
        assert!(
            self.used < self.slots,
            "RecvBatch::push_segments on a full batch"
        );
        let Datagram { src, dst, pgm } = d;
        let base = self.used * self.slot_len;
        let end = base + pgm.end.min(self.slot_len);
        let mut at = base + pgm.start.min(pgm.end.min(self.slot_len));
        let segment = segment.max(1);
        if (end - at).div_ceil(segment) > MAX_GRO_SEGMENTS {
            self.used += 1;
            return false;
        }
        while at < end {
            let next = (at + segment).min(end);
            self.datagrams.push(Datagram {
                src,
                dst,
                pgm: at..next,
            });
            at = next;
        }
        self.used += 1;
        true
    }

    /// Consumes `n` spare slots without accepting what is in them.
    pub fn skip(&mut self, n: usize) {
        self.used = (self.used + n).min(self.slots);
    }

    /// Marks that every socket was found empty (would block) during this call.
    pub fn set_drained(&mut self) {
        self.drained = true;
    }

    /// Takes the drained mark off again (for a wrapper that reads several transports into one
    /// batch: it is drained only when all of them are).
    pub fn reset_drained(&mut self) {
        self.drained = false;
    }

    /// True when the transport found every socket empty: read again only after the next
    /// readiness event.
    pub fn is_drained(&self) -> bool {
        self.drained
    }

    /// The `i`th datagram and its PGM bytes.
    pub fn get(&self, i: usize) -> Option<(&Datagram, &[u8])> {
        let d = self.datagrams.get(i)?;
        Some((d, &self.buf[d.pgm.clone()]))
    }

    /// The datagrams and their PGM bytes, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (&Datagram, &[u8])> + '_ {
        self.datagrams
            .iter()
            .map(move |d| (d, &self.buf[d.pgm.clone()]))
    }

    /// Keeps only the datagrams `keep` says yes to (used by wrappers such as
    /// [`Lossy`](super::Lossy)).
    pub fn retain(&mut self, mut keep: impl FnMut(&Datagram, &[u8]) -> bool) {
        let buf = &self.buf;
        self.datagrams.retain(|d| keep(d, &buf[d.pgm.clone()]));
    }

    /// The byte range of the `i`th datagram in the buffer (for tests).
    #[cfg(test)]
    fn range(&self, i: usize) -> std::ops::Range<usize> {
        self.datagrams[i].pgm.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::{
        net::{IpAddr, Ipv4Addr},
        ops::Range,
    };

    use super::*;

    fn dgram(pgm: Range<usize>) -> Datagram {
        Datagram {
            src: IpAddr::V4(Ipv4Addr::LOCALHOST),
            dst: IpAddr::V4(Ipv4Addr::new(239, 1, 1, 1)),
            pgm,
        }
    }

    #[test]
    fn slots_are_filled_in_order_and_skips_leave_gaps() {
        let mut b = RecvBatch::new(4, 100);
        assert_eq!(b.spare_mut().len(), 400);
        b.spare_mut()[..3].copy_from_slice(b"abc");
        b.spare_mut()[100..102].copy_from_slice(b"zz");
        b.spare_mut()[200..204].copy_from_slice(b"wxyz");
        b.push(dgram(0..3));
        b.skip(1);
        // The spare region now starts at the third slot.
        assert_eq!(&b.spare_mut()[..4], b"wxyz");
        b.push(dgram(1..4));
        assert_eq!(b.len(), 2);
        assert_eq!(b.spare_slots(), 1);
        let got: Vec<&[u8]> = b.iter().map(|(_, p)| p).collect();
        assert_eq!(got, [&b"abc"[..], &b"xyz"[..]]);
        assert_eq!(b.range(1), 201..204);
        b.retain(|_, p| p != b"abc");
        assert_eq!(b.get(0).map(|(_, p)| p), Some(&b"xyz"[..]));
        b.clear();
        assert!(b.is_empty() && !b.is_drained() && b.spare_slots() == 4);
    }

    #[test]
    fn ranges_are_clamped_to_the_slot() {
        let mut b = RecvBatch::new(2, 10);
        b.push(dgram(4..50));
        assert_eq!(b.range(0), 4..10);
        b.push(dgram(70..80));
        assert_eq!(b.range(1), 20..20);
        b.skip(5);
        assert_eq!(b.spare_slots(), 0);
    }

    #[test]
    fn a_gro_run_is_cut_into_its_segments_within_one_slot() {
        let mut b = RecvBatch::new(3, 100);
        assert!(b.push_segments(dgram(0..10), 4));
        b.push(dgram(0..1));
        // Clamped to the slot like `push`; a zero segment size is taken as 1.
        assert!(b.push_segments(dgram(98..300), 0));
        let got: Vec<_> = (0..b.len()).map(|i| b.range(i)).collect();
        assert_eq!(got, [0..4, 4..8, 8..10, 100..101, 298..299, 299..300]);
        assert_eq!(b.spare_slots(), 0);
    }

    #[test]
    fn a_gro_run_of_more_segments_than_the_kernel_makes_is_skipped() {
        let mut b = RecvBatch::new(2, MAX_DATAGRAM);
        // 129 one-byte datagrams claimed: refused, the slot consumed, nothing accepted.
        assert!(!b.push_segments(dgram(0..MAX_GRO_SEGMENTS + 1), 1));
        assert_eq!((b.len(), b.spare_slots()), (0, 1));
        assert!(b.push_segments(dgram(0..MAX_GRO_SEGMENTS), 1));
        assert_eq!((b.len(), b.spare_slots()), (MAX_GRO_SEGMENTS, 0));
    }
}
