//! The receive window of one peer (RFC 3208 §6): sqns from the trail to the lead, each held,
//! missing (with its NAK state) or lost; in-order delivery with APDU reassembly.

use std::collections::{BTreeSet, VecDeque};

use bytes::{Bytes, BytesMut};

use crate::{
    config::SLOT_COST,
    time::Instant,
    wire::{Fragment, SeqNo},
};

/// Where a missing sqn is in the NAK state machine (RFC 3208 §6.3 diagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting NAK_RB_IVL before sending a NAK.
    BackOff,
    /// NAK sent; waiting NAK_RPT_IVL for an NCF.
    WaitNcf,
    /// Confirmed (or suppressed); waiting NAK_RDATA_IVL for the data.
    WaitData,
}

/// NAK state of one missing sqn.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Missing {
    pub(crate) phase: Phase,
    pub(crate) deadline: Instant,
    /// When the loss was detected: recovery ends at `since + max_recovery` whatever happens.
    pub(crate) since: Instant,
    /// NAKs sent for it so far (the repeat waits double with each).
    pub(crate) rounds: u32,
    /// Its parity NAK was held once for the count-biased back-off ([`super::Receiver`]).
    pub(crate) biased: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum Slot {
    Missing(Missing),
    Data {
        payload: Bytes,
        fragment: Option<Fragment>,
    },
    Lost,
}

/// What delivery produced, in order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Delivered {
    Apdu(Bytes),
    Lost {
        first: SeqNo,
        count: u32,
    },
    /// A late joiner delivered the history it caught up on (pushed by the receiver).
    CaughtUp,
}

/// Most fragments one APDU may have: bounds the reassembly walk whatever the network sends.
/// (Our source splits 65535 bytes into 46 fragments at MTU 1500; 256 allows MTUs down to ~300.)
pub(crate) const MAX_FRAGMENTS: u32 = 256;

/// The receive window. Invariant: `slots[i]` is sqn `trail + i`; `timers` holds exactly the
/// `(deadline, sqn)` of every `Slot::Missing`.
#[derive(Debug)]
pub(crate) struct Window {
    pub(crate) trail: SeqNo,
    pub(crate) slots: VecDeque<Slot>,
    /// Payload bytes held.
    pub(crate) bytes: usize,
    pub(crate) timers: BTreeSet<(Instant, u32)>,
    /// Sqn the window started at: fragments of APDUs begun before it are dropped silently (we
    /// joined in the middle), not reported as loss.
    pub(crate) joined_at: SeqNo,
    /// Pending loss range not yet reported.
    loss: Option<(SeqNo, u32)>,
    /// The highest sqn that arrived as data: how far data (not just an SPM) shows the session
    /// has come.
    pub(crate) data_lead: Option<SeqNo>,
    /// Sqns delivered as (parts of) APDUs since the window started.
    pub(crate) delivered_sqns: u64,
}

/// Outcome of inserting a data packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Insert {
    /// New data (`repaired`: it filled a gap).
    New { repaired: bool },
    /// Already held or already given up on.
    Duplicate,
    /// Before the trail.
    TooOld,
}

impl Window {
    /// An empty window whose next expected sqn is `trail`.
    pub(crate) fn new(trail: SeqNo) -> Self {
        Window {
            trail,
            slots: VecDeque::new(),
            bytes: 0,
            timers: BTreeSet::new(),
            joined_at: trail,
            loss: None,
            data_lead: None,
            delivered_sqns: 0,
        }
    }

    /// Memory held: payload bytes plus [`SLOT_COST`] per tracked sqn.
    pub(crate) fn footprint(&self) -> usize {
        self.bytes + self.slots.len() * SLOT_COST
    }

    /// Whether `sqn` lies more than `span` sqns beyond the lead, or before the trail.
    pub(crate) fn is_far(&self, sqn: SeqNo, span: u32) -> bool {
        // Unsigned distances: serial differences are ambiguous at exactly 2^31.
        let ahead = u64::from(sqn.distance_from(self.trail));
        let behind = u64::from(self.trail.distance_from(sqn));
        let span = u64::from(span);
        ahead > self.slots.len() as u64 + span && behind > span
    }

    /// Data sqns at the front of the window, in order (held for delivery): 0, 1 or 2 (only
    /// whether there are two matters).
    pub(crate) fn leading_data(&self) -> u64 {
        self.slots
            .iter()
            .take(2)
            .take_while(|s| matches!(s, Slot::Data { .. }))
            .count() as u64
    }

    /// Gives back the slot memory of a window that shrank a lot (a trimmed gap, a jump), so
    /// what a session once spanned does not stay allocated.
    fn compact(&mut self) {
        if self.slots.capacity() > 2 * self.slots.len() + 1024 {
            self.slots.shrink_to(self.slots.len() * 2);
        }
    }

    /// Records that data for `sqn` arrived.
    pub(crate) fn saw_data(&mut self, sqn: SeqNo) {
        if self.data_lead.is_none_or(|l| sqn.diff(l) > 0) {
            self.data_lead = Some(sqn);
        }
    }

    /// The last sqn known (trail − 1 when empty).
    pub(crate) fn lead(&self) -> SeqNo {
        self.trail.add(self.slots.len() as u32).sub(1)
    }

    fn index(&self, sqn: SeqNo) -> Option<usize> {
        let d = sqn.diff(self.trail);
        usize::try_from(d).ok().filter(|&i| i < self.slots.len())
    }

    pub(crate) fn missing_mut(&mut self, sqn: SeqNo) -> Option<&mut Missing> {
        let i = self.index(sqn)?;
        match &mut self.slots[i] {
            Slot::Missing(m) => Some(m),
            _ => None,
        }
    }

    /// Moves the NAK deadline of missing `sqn`, keeping `timers` in step.
    pub(crate) fn reschedule(&mut self, sqn: SeqNo, phase: Phase, deadline: Instant) {
        let Some(i) = self.index(sqn) else { return };
        if let Slot::Missing(m) = &mut self.slots[i] {
            self.timers.remove(&(m.deadline, sqn.0));
            m.phase = phase;
            m.deadline = deadline;
            self.timers.insert((deadline, sqn.0));
        }
    }

    /// Appends missing slots up to and including `lead`, detected `now`, all backing off until
    /// `deadline`. The caller has bounded `lead - trail` by the window size.
    pub(crate) fn extend_missing(&mut self, lead: SeqNo, now: Instant, deadline: Instant) {
        while self.lead().diff(lead) < 0 {
            let sqn = self.lead().next();
            self.slots.push_back(Slot::Missing(Missing {
                phase: Phase::BackOff,
                deadline,
                since: now,
                rounds: 0,
                biased: false,
            }));
            self.timers.insert((deadline, sqn.0));
        }
    }

    /// Prepends missing slots back to `trail` (detected `now`, backing off until `deadline`):
    /// a confirmed session that joins at the trail its source advertises.
    pub(crate) fn extend_back(&mut self, trail: SeqNo, now: Instant, deadline: Instant) {
        while trail.diff(self.trail) < 0 {
            self.trail = self.trail.sub(1);
            self.slots.push_front(Slot::Missing(Missing {
                phase: Phase::BackOff,
                deadline,
                since: now,
                rounds: 0,
                biased: false,
            }));
            self.timers.insert((deadline, self.trail.0));
        }
        if self.joined_at.diff(self.trail) > 0 {
            self.joined_at = self.trail;
        }
    }

    /// Drops missing slots at the end of the window beyond `lead` and beyond any data: sqns
    /// only an SPM announced, which a later SPM of the same source no longer does.
    pub(crate) fn retract(&mut self, lead: SeqNo) {
        let keep = self
            .data_lead
            .map_or(lead, |d| if d.diff(lead) > 0 { d } else { lead });
        while self.lead().diff(keep) > 0 {
            let sqn = self.lead();
            match self.slots.back() {
                Some(Slot::Missing(m)) => {
                    self.timers.remove(&(m.deadline, sqn.0));
                    self.slots.pop_back();
                }
                _ => break,
            }
        }
    }

    /// The first missing sqn's detection time: the oldest loss still in recovery (losses are
    /// detected in sqn order, bar a few the session's join prepends).
    pub(crate) fn oldest_missing(&self) -> Option<Instant> {
        if self.timers.is_empty() {
            return None;
        }
        // Delivery stops at the first missing sqn, so it is within one APDU of the front.
        self.slots.iter().find_map(|s| match s {
            Slot::Missing(m) => Some(m.since),
            _ => None,
        })
    }

    /// Gives up on missing sqns from the front whose recovery started at or before `cutoff`;
    /// returns how many.
    pub(crate) fn expire_recovery(&mut self, cutoff: Instant) -> u64 {
        let mut n = 0;
        for i in 0..self.slots.len() {
            if let Slot::Missing(m) = &self.slots[i] {
                if m.since > cutoff {
                    break;
                }
                self.timers
                    .remove(&(m.deadline, self.trail.add(i as u32).0));
                self.slots[i] = Slot::Lost;
                n += 1;
            }
        }
        n
    }

    /// Stores data for `sqn`, which is within the window bounds (the caller extended it).
    pub(crate) fn insert(
        &mut self,
        sqn: SeqNo,
        payload: Bytes,
        fragment: Option<Fragment>,
    ) -> Insert {
        if sqn.diff(self.trail) < 0 {
            return Insert::TooOld;
        }
        let Some(i) = self.index(sqn) else {
            return Insert::TooOld;
        };
        match &self.slots[i] {
            Slot::Missing(m) => {
                self.timers.remove(&(m.deadline, sqn.0));
                let repaired = true;
                self.bytes += payload.len();
                self.slots[i] = Slot::Data { payload, fragment };
                Insert::New { repaired }
            }
            Slot::Data { .. } | Slot::Lost => Insert::Duplicate,
        }
    }

    /// Whether `sqn`, before the trail, was in this window (delivered or given up on): at
    /// most `span` behind the trail and not before the window started.
    pub(crate) fn passed(&self, sqn: SeqNo, span: u32) -> bool {
        let behind = self.trail.diff(sqn);
        behind > 0 && behind.unsigned_abs() <= span && sqn.diff(self.joined_at) >= 0
    }

    /// Appends data for `sqn == lead + 1`.
    pub(crate) fn push(&mut self, payload: Bytes, fragment: Option<Fragment>) {
        self.bytes += payload.len();
        self.slots.push_back(Slot::Data { payload, fragment });
    }

    /// Gives up on missing `sqn`.
    pub(crate) fn mark_lost(&mut self, sqn: SeqNo) {
        let Some(i) = self.index(sqn) else { return };
        if let Slot::Missing(m) = &self.slots[i] {
            self.timers.remove(&(m.deadline, sqn.0));
            self.slots[i] = Slot::Lost;
        }
    }

    /// RFC 3208 §6.3: "if the trailing edge of the window moves beyond the sequence number,
    /// data recovery for that sequence number terminates". Missing sqns before `src_trail` are
    /// lost.
    pub(crate) fn source_trail(&mut self, src_trail: SeqNo) {
        let end = self
            .slots
            .len()
            .min(usize::try_from(src_trail.diff(self.trail)).unwrap_or(0));
        for i in 0..end {
            if let Slot::Missing(m) = &self.slots[i] {
                let sqn = self.trail.add(i as u32);
                self.timers.remove(&(m.deadline, sqn.0));
                self.slots[i] = Slot::Lost;
            }
        }
    }

    /// Gives up on the whole window (the session expired): delivers what can be delivered and
    /// reports everything else — missing sqns and fragments of APDUs that will never complete —
    /// as lost.
    pub(crate) fn abandon(&mut self, out: &mut Vec<Delivered>) {
        for (_, raw) in std::mem::take(&mut self.timers) {
            let sqn = SeqNo(raw);
            if let Some(i) = self.index(sqn) {
                self.slots[i] = Slot::Lost;
            }
        }
        self.deliver_runs(out);
        let rest = self.slots.len() as u32;
        if rest > 0 {
            self.note_loss_range(self.trail, rest, out);
            self.slots.clear();
            self.bytes = 0;
            self.trail = self.trail.add(rest);
        }
        self.flush_loss(out);
        self.compact();
    }

    /// Gives up the oldest sqns while `too_big` holds (or the window is empty), reporting
    /// what goes as loss in runs, not one event per sqn; returns how many went.
    pub(crate) fn shed(
        &mut self,
        out: &mut Vec<Delivered>,
        mut too_big: impl FnMut(&Window) -> bool,
    ) -> u64 {
        let mut n = 0;
        while !self.slots.is_empty() && too_big(self) {
            self.evict_front(out);
            self.deliver_runs(out);
            n += 1;
        }
        self.flush_loss(out);
        self.compact();
        n
    }

    /// Drops the oldest undelivered unit as lost (the window is over its bounds).
    fn evict_front(&mut self, out: &mut Vec<Delivered>) {
        match self.slots.front() {
            Some(Slot::Missing(_)) => self.mark_lost(self.trail),
            Some(Slot::Data { .. }) => {
                // An APDU waiting for later fragments: give it up, fragment by fragment.
                if let Some(Slot::Data { payload, .. }) = self.slots.pop_front() {
                    self.bytes -= payload.len();
                }
                self.note_loss(self.trail, out);
                self.trail = self.trail.next();
            }
            Some(Slot::Lost) | None => {}
        }
    }

    /// Skips the window forward to `new_trail` (beyond everything held), reporting the skipped
    /// sqns as lost. Used when data arrives further ahead than the window can span.
    pub(crate) fn jump(&mut self, new_trail: SeqNo, out: &mut Vec<Delivered>) {
        while self.trail.diff(new_trail) < 0 && !self.slots.is_empty() {
            self.evict_front(out);
            if let Some(Slot::Lost) = self.slots.front() {
                self.slots.pop_front();
                self.note_loss(self.trail, out);
                self.trail = self.trail.next();
            }
            self.deliver_runs(out);
        }
        if self.trail.diff(new_trail) < 0 {
            let n = new_trail.distance_from(self.trail);
            self.note_loss_range(self.trail, n, out);
            self.trail = new_trail;
        }
        self.flush_loss(out);
        self.compact();
    }

    fn note_loss(&mut self, sqn: SeqNo, out: &mut Vec<Delivered>) {
        self.note_loss_range(sqn, 1, out);
    }

    /// Adds lost sqns to the pending loss report, merging contiguous runs.
    fn note_loss_range(&mut self, first: SeqNo, count: u32, out: &mut Vec<Delivered>) {
        match &mut self.loss {
            Some((f, c)) if f.add(*c) == first => *c += count,
            _ => {
                self.flush_loss(out);
                self.loss = Some((first, count));
            }
        }
    }

    fn flush_loss(&mut self, out: &mut Vec<Delivered>) {
        if let Some((first, count)) = self.loss.take() {
            out.push(Delivered::Lost { first, count });
        }
    }

    /// Delivers everything deliverable from the trail on, in order: whole APDUs, and runs of
    /// lost sqns. Stops at the first missing sqn or incomplete APDU.
    pub(crate) fn deliver(&mut self, out: &mut Vec<Delivered>) {
        self.deliver_runs(out);
        self.flush_loss(out);
        self.compact();
    }

    /// [`Window::deliver`] without reporting the loss run it may end on, so that a caller
    /// giving up on many sqns reports them as one run.
    fn deliver_runs(&mut self, out: &mut Vec<Delivered>) {
        loop {
            match self.slots.front() {
                None | Some(Slot::Missing(_)) => break,
                Some(Slot::Lost) => {
                    self.slots.pop_front();
                    self.note_loss(self.trail, out);
                    self.trail = self.trail.next();
                }
                Some(Slot::Data { fragment: None, .. }) => {
                    self.flush_loss(out);
                    if let Some(Slot::Data { payload, .. }) = self.slots.pop_front() {
                        self.bytes -= payload.len();
                        self.trail = self.trail.next();
                        self.delivered_sqns += 1;
                        out.push(Delivered::Apdu(payload));
                    }
                }
                Some(Slot::Data {
                    fragment: Some(f), ..
                }) => {
                    let f = *f;
                    match self.assemble(f) {
                        Assembly::Incomplete => break,
                        Assembly::Complete(n, apdu) => {
                            self.flush_loss(out);
                            self.pop_n(n);
                            self.delivered_sqns += u64::from(n);
                            out.push(Delivered::Apdu(apdu));
                        }
                        Assembly::Broken(n) => {
                            // Fragments of an APDU begun before we joined are not a loss.
                            let joined_late = f.first_sqn.diff(self.joined_at) < 0;
                            let first = self.trail;
                            self.pop_n(n);
                            if !joined_late {
                                self.note_loss_range(first, n, out);
                            }
                        }
                    }
                }
            }
        }
    }

    fn pop_n(&mut self, n: u32) {
        for _ in 0..n {
            if let Some(s) = self.slots.pop_front() {
                if let Slot::Data { payload, .. } = s {
                    self.bytes -= payload.len();
                }
                self.trail = self.trail.next();
            }
        }
    }

    /// Tries to reassemble the APDU whose fragment is at the trail (docs/wire-compatibility.md checks:
    /// the same first sqn and APDU length on every fragment, sizes adding up exactly, at most
    /// [`MAX_FRAGMENTS`]). Order comes from the sqns: OpenPGM 5.3 sends offsets that run on
    /// across APDUs, so the offset field is not used for placement (as OpenPGM's `rxw.c`).
    fn assemble(&self, head: Fragment) -> Assembly {
        if head.first_sqn != self.trail {
            // The APDU started before the trail: its start is gone. Drop up to the next start.
            let n = self
                .slots
                .iter()
                .take_while(|s| matches!(s, Slot::Data { fragment: Some(f), .. } if f.first_sqn == head.first_sqn))
                .count()
                .max(1);
            return Assembly::Broken(n as u32);
        }
        let mut have: u64 = 0;
        let total = u64::from(head.apdu_len);
        for (i, slot) in self.slots.iter().enumerate() {
            if i as u32 >= MAX_FRAGMENTS {
                return Assembly::Broken(i as u32);
            }
            match slot {
                Slot::Missing(_) => return Assembly::Incomplete,
                Slot::Lost => return Assembly::Broken(i as u32 + 1),
                Slot::Data { payload, fragment } => {
                    let Some(f) = fragment else {
                        return Assembly::Broken(i.max(1) as u32);
                    };
                    if f.first_sqn != head.first_sqn || f.apdu_len != head.apdu_len {
                        return Assembly::Broken(i.max(1) as u32);
                    }
                    have += payload.len() as u64;
                    if have == total {
                        let n = i + 1;
                        let mut apdu = BytesMut::with_capacity(total as usize);
                        for s in self.slots.iter().take(n) {
                            if let Slot::Data { payload, .. } = s {
                                apdu.extend_from_slice(payload);
                            }
                        }
                        return Assembly::Complete(n as u32, apdu.freeze());
                    }
                    if have > total {
                        return Assembly::Broken(i as u32 + 1);
                    }
                }
            }
        }
        Assembly::Incomplete
    }

    /// Earliest NAK deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.first().map(|&(t, _)| t)
    }

    /// Missing sqns.
    pub(crate) fn missing_count(&self) -> usize {
        self.timers.len()
    }
}

enum Assembly {
    Incomplete,
    Complete(u32, Bytes),
    /// The first `n` slots cannot form an APDU.
    Broken(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(first: u32, offset: u32, len: u32) -> Option<Fragment> {
        let f = Fragment {
            first_sqn: SeqNo(first),
            offset,
            apdu_len: len,
        };
        Some(f).filter(|f| f.apdu_len > 0)
    }

    #[test]
    fn delivers_in_order_and_reports_loss_runs() {
        let mut w = Window::new(SeqNo(10));
        let t = Instant::ZERO;
        w.push(Bytes::from_static(b"a"), None);
        w.extend_missing(SeqNo(12), t, t);
        w.push(Bytes::from_static(b"d"), None);
        let mut out = Vec::new();
        w.deliver(&mut out);
        assert_eq!(out, vec![Delivered::Apdu(Bytes::from_static(b"a"))]);
        assert_eq!(
            w.insert(SeqNo(11), Bytes::from_static(b"b"), None),
            Insert::New { repaired: true }
        );
        w.mark_lost(SeqNo(12));
        out.clear();
        w.deliver(&mut out);
        assert_eq!(
            out,
            vec![
                Delivered::Apdu(Bytes::from_static(b"b")),
                Delivered::Lost {
                    first: SeqNo(12),
                    count: 1
                },
                Delivered::Apdu(Bytes::from_static(b"d")),
            ]
        );
        assert!(w.timers.is_empty());
        assert_eq!(w.bytes, 0);
    }

    #[test]
    fn reassembles_and_rejects_inconsistent_fragments() {
        let mut w = Window::new(SeqNo(0));
        w.push(Bytes::from_static(b"he"), frag(0, 0, 5));
        w.push(Bytes::from_static(b"llo"), frag(0, 2, 5));
        // Inconsistent APDU length on the second fragment of the next APDU.
        w.push(Bytes::from_static(b"xy"), frag(2, 0, 4));
        w.push(Bytes::from_static(b"zw"), frag(2, 2, 5));
        let mut out = Vec::new();
        w.deliver(&mut out);
        assert_eq!(out[0], Delivered::Apdu(Bytes::from_static(b"hello")));
        // Both fragments of the broken APDU are lost, reported as one run.
        assert_eq!(
            out[1],
            Delivered::Lost {
                first: SeqNo(2),
                count: 2
            }
        );
    }

    #[test]
    fn jump_reports_exact_loss() {
        let mut w = Window::new(SeqNo(0));
        let t = Instant::ZERO;
        w.push(Bytes::from_static(b"a"), None);
        w.extend_missing(SeqNo(4), t, t);
        let mut out = Vec::new();
        w.deliver(&mut out);
        out.clear();
        w.jump(SeqNo(100), &mut out);
        assert_eq!(
            out,
            vec![Delivered::Lost {
                first: SeqNo(1),
                count: 99
            }]
        );
        assert_eq!(w.trail, SeqNo(100));
        assert!(w.slots.is_empty() && w.timers.is_empty());
    }

    #[test]
    fn abandon_reports_incomplete_apdus_as_lost() {
        let mut w = Window::new(SeqNo(7));
        w.push(Bytes::from_static(b"ab"), frag(7, 0, 10));
        w.push(Bytes::from_static(b"cd"), frag(7, 2, 10));
        let mut out = Vec::new();
        w.deliver(&mut out);
        assert!(out.is_empty(), "waiting for the rest of the APDU");
        w.abandon(&mut out);
        assert_eq!(
            out,
            vec![Delivered::Lost {
                first: SeqNo(7),
                count: 2
            }]
        );
        assert_eq!((w.bytes, w.slots.len(), w.trail), (0, 0, SeqNo(9)));
    }
}
