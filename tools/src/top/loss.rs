//! The loss estimate of a session as seen from the capture point: sequence numbers that ODATA
//! skipped over and that neither RDATA nor a late ODATA has brought since.
//!
//! Precisely: the highest ODATA sqn seen is the lead (serial-number order, RFC 1982, so the
//! 32-bit wrap is handled). An ODATA more than one past the lead marks every sqn in between
//! *missing* (counted in `gaps`). An RDATA or late ODATA for a missing sqn clears it (counted
//! in `repaired`). A sqn still missing when it falls [`SPAN`] sqns behind the lead is counted
//! `expired` (given up on) and forgotten. `lost` = `expired` + the sqns still missing. The
//! first ODATA of a session starts the count (nothing before it is missing), and a jump of
//! more than [`SPAN`] sqns (a restarted or forged source, a capture that missed a long
//! stretch) restarts it and is counted in `resets` instead of as loss.
//!
//! This is loss *upstream of the capture point*: a capture on the sender's link sees every
//! ODATA, and the loss that receivers suffer behind it shows as NAKs instead.

use pgm::wire::SeqNo;

/// How many sqns behind the lead a missing sqn is remembered (bits in the bitmap).
pub const SPAN: u32 = 4096;
const WORDS: usize = (SPAN / 64) as usize;

/// Gap accounting of one session's ODATA sequence (see the module docs).
#[derive(Debug, Clone)]
pub struct GapTracker {
    lead: Option<SeqNo>,
    /// Bit `sqn % SPAN` set: `sqn` (within SPAN of the lead) is missing.
    missing: Box<[u64; WORDS]>,
    outstanding: u64,
    gaps: u64,
    repaired: u64,
    expired: u64,
    resets: u64,
}

impl Default for GapTracker {
    fn default() -> Self {
        GapTracker {
            lead: None,
            missing: Box::new([0; WORDS]),
            outstanding: 0,
            gaps: 0,
            repaired: 0,
            expired: 0,
            resets: 0,
        }
    }
}

/// The counters of a [`GapTracker`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loss {
    /// Highest ODATA sqn seen.
    pub lead: Option<SeqNo>,
    /// Sqns skipped by ODATA.
    pub gaps: u64,
    /// Of those, seen since in RDATA or a late ODATA.
    pub repaired: u64,
    /// Skipped and not seen since: still missing plus given up on.
    pub lost: u64,
    /// Jumps of more than [`SPAN`] sqns that restarted the count.
    pub resets: u64,
}

impl GapTracker {
    fn bit(sqn: SeqNo) -> (usize, u64) {
        let i = sqn.0 % SPAN;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    fn set(&mut self, sqn: SeqNo) {
        let (w, b) = Self::bit(sqn);
        if self.missing[w] & b == 0 {
            self.missing[w] |= b;
            self.outstanding += 1;
        }
    }

    /// Clears `sqn`'s bit; true if it was set.
    fn clear(&mut self, sqn: SeqNo) -> bool {
        let (w, b) = Self::bit(sqn);
        let was = self.missing[w] & b != 0;
        if was {
            self.missing[w] &= !b;
            self.outstanding -= 1;
        }
        was
    }

    /// Forgets everything missing, counting it as expired.
    fn expire_all(&mut self) {
        self.expired += self.outstanding;
        self.outstanding = 0;
        self.missing.fill(0);
    }

    /// An ODATA with sequence number `sqn`.
    pub fn odata(&mut self, sqn: SeqNo) {
        let Some(lead) = self.lead else {
            self.lead = Some(sqn);
            return;
        };
        let ahead = sqn.diff(lead);
        if ahead <= 0 {
            self.fill(sqn);
            return;
        }
        let ahead = ahead.unsigned_abs();
        if ahead > SPAN {
            self.expire_all();
            self.resets += 1;
            self.lead = Some(sqn);
            return;
        }
        // Sqns falling out of the window [sqn - SPAN + 1, sqn]: lead - SPAN + 1 ..= sqn - SPAN.
        for k in 1..=ahead {
            let leaving = lead.sub(SPAN).add(k);
            if self.clear(leaving) {
                self.expired += 1;
            }
        }
        for k in 1..ahead {
            self.set(lead.add(k));
        }
        self.gaps += u64::from(ahead - 1);
        self.lead = Some(sqn);
    }

    /// An RDATA with sequence number `sqn`.
    pub fn rdata(&mut self, sqn: SeqNo) {
        self.fill(sqn);
    }

    /// `sqn` seen again: a repair if it was missing.
    fn fill(&mut self, sqn: SeqNo) {
        let Some(lead) = self.lead else {
            return;
        };
        let behind = lead.diff(sqn);
        if behind > 0 && behind.unsigned_abs() < SPAN && self.clear(sqn) {
            self.repaired += 1;
        }
    }

    /// The counters now.
    pub fn loss(&self) -> Loss {
        Loss {
            lead: self.lead,
            gaps: self.gaps,
            repaired: self.repaired,
            lost: self.expired + self.outstanding,
            resets: self.resets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(t: &mut GapTracker, odata: &[u32]) {
        for &s in odata {
            t.odata(SeqNo(s));
        }
    }

    #[test]
    fn gaps_then_repairs() {
        let mut t = GapTracker::default();
        feed(&mut t, &[10, 11, 12, 15, 16]);
        assert_eq!(
            t.loss(),
            Loss {
                lead: Some(SeqNo(16)),
                gaps: 2,
                repaired: 0,
                lost: 2,
                resets: 0
            }
        );
        t.rdata(SeqNo(13));
        t.rdata(SeqNo(13)); // a second repair of the same sqn is not counted twice
        t.rdata(SeqNo(11)); // never missing
        let l = t.loss();
        assert_eq!((l.gaps, l.repaired, l.lost), (2, 1, 1));
        t.odata(SeqNo(14)); // a late ODATA fills too
        let l = t.loss();
        assert_eq!((l.gaps, l.repaired, l.lost), (2, 2, 0));
    }

    #[test]
    fn wraps_around_the_sequence_space() {
        let mut t = GapTracker::default();
        feed(&mut t, &[u32::MAX - 1, 1]);
        // Skipped u32::MAX and 0.
        let l = t.loss();
        assert_eq!((l.lead, l.gaps, l.lost), (Some(SeqNo(1)), 2, 2));
        t.rdata(SeqNo(0));
        assert_eq!(t.loss().lost, 1);
        t.rdata(SeqNo(u32::MAX));
        assert_eq!(t.loss().lost, 0);
    }

    #[test]
    fn missing_sqns_expire_after_the_span() {
        let mut t = GapTracker::default();
        feed(&mut t, &[0, 2]); // 1 missing
        for s in 3..=SPAN + 1 {
            t.odata(SeqNo(s));
        }
        // 1 is now SPAN behind the lead: expired, and a late repair no longer counts.
        t.rdata(SeqNo(1));
        let l = t.loss();
        assert_eq!((l.gaps, l.repaired, l.lost), (1, 0, 1));
    }

    #[test]
    fn a_huge_jump_is_a_reset_not_loss() {
        let mut t = GapTracker::default();
        feed(&mut t, &[0, 1, 3]);
        t.odata(SeqNo(3 + SPAN + 1));
        let l = t.loss();
        assert_eq!((l.gaps, l.lost, l.resets), (1, 1, 1));
        // A forged sqn half the space away does not count 2^31 losses either.
        t.odata(SeqNo(0x8000_0000));
        assert_eq!(t.loss().gaps, 1);
        // Backwards by any amount is at most a (non-)repair.
        t.odata(SeqNo(5));
        assert_eq!(t.loss().gaps, 1);
    }

    #[test]
    fn a_full_span_gap_is_bounded_work_and_exact() {
        let mut t = GapTracker::default();
        feed(&mut t, &[100, 100 + SPAN]);
        let l = t.loss();
        assert_eq!(
            (l.gaps, l.lost, l.resets),
            (u64::from(SPAN - 1), u64::from(SPAN - 1), 0)
        );
        for s in 101..100 + SPAN {
            t.rdata(SeqNo(s));
        }
        assert_eq!(t.loss().lost, 0);
    }
}
