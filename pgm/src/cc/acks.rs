//! What the ACKer's ACKs acknowledge (PGMCC draft §2.1.2, §2.2): RX_MAX and a 32-bit bitmap,
//! bit 0 = RX_MAX, bit i = RX_MAX − i, 1 = received. ACKs are not cumulative and may be
//! lost or reordered, so the source keeps the same 32 sqns' state and counts only what is
//! new in each ACK.

use crate::wire::SeqNo;

/// What one ACK changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AckUpdate {
    /// Sqns acknowledged for the first time.
    pub(crate) new: u32,
    /// A sqn not acknowledged is followed by at least 3 that are (§2.2: like TCP's 3 dupacks),
    /// and it was not counted as lost before.
    pub(crate) loss: bool,
}

/// The 32 sqns up to the highest RX_MAX of the current ACKer.
#[derive(Debug, Clone)]
pub(crate) struct AckTracker {
    lead: SeqNo,
    /// Bit i: `lead − i` acknowledged.
    acked: u32,
    /// Bit i: `lead − i` settled: acknowledged, or counted as lost once.
    judged: u32,
}

/// Later sqns acknowledged that make a hole a loss (§2.2).
const DUPACKS: u32 = 3;

impl AckTracker {
    /// Starts from an ACKer's first ACK: everything it reports up to RX_MAX is history and
    /// counts for nothing (neither new ACKs nor losses).
    pub(crate) fn new(rx_max: SeqNo) -> Self {
        AckTracker {
            lead: rx_max,
            acked: u32::MAX,
            judged: u32::MAX,
        }
    }

    /// Merges an ACK. `None` when it is older than the 32 sqns tracked (reordered, stale).
    pub(crate) fn update(&mut self, rx_max: SeqNo, bitmap: u32) -> Option<AckUpdate> {
        let d = rx_max.diff(self.lead);
        let incoming = if d > 0 {
            let d = d.unsigned_abs();
            self.acked = shl(self.acked, d);
            self.judged = shl(self.judged, d);
            self.lead = rx_max;
            bitmap
        } else {
            let back = d.unsigned_abs();
            if back >= u32::BITS {
                return None;
            }
            bitmap >> back
        };
        let fresh = incoming & !self.acked;
        self.acked |= incoming;
        self.judged |= fresh;
        let mut loss = false;
        for i in DUPACKS..u32::BITS {
            let bit = 1u32 << i;
            let later = (self.acked & (bit - 1)).count_ones();
            if self.judged & bit == 0 && later >= DUPACKS {
                self.judged |= bit;
                loss = true;
            }
        }
        Some(AckUpdate {
            new: fresh.count_ones(),
            loss,
        })
    }

    /// The highest RX_MAX seen.
    pub(crate) fn lead(&self) -> SeqNo {
        self.lead
    }
}

fn shl(bits: u32, n: u32) -> u32 {
    bits.checked_shl(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_new_acks_once() {
        let mut t = AckTracker::new(SeqNo(10));
        let u = t.update(SeqNo(12), 0b111).unwrap();
        assert_eq!(
            u,
            AckUpdate {
                new: 2,
                loss: false
            }
        );
        // A duplicate (or reordered older) ACK acknowledges nothing new.
        assert_eq!(t.update(SeqNo(11), 0b11).unwrap().new, 0);
        assert_eq!(t.update(SeqNo(12), 0b111).unwrap().new, 0);
        assert_eq!(t.lead(), SeqNo(12));
    }

    #[test]
    fn hole_followed_by_three_is_one_loss() {
        let mut t = AckTracker::new(SeqNo(0));
        // 1 acked, 2 missing, then 3, 4 ...
        assert!(!t.update(SeqNo(1), 0b11).unwrap().loss);
        assert!(!t.update(SeqNo(3), 0b1101).unwrap().loss);
        assert!(!t.update(SeqNo(4), 0b1_1011).unwrap().loss);
        let u = t.update(SeqNo(5), 0b11_0111).unwrap();
        assert_eq!(u, AckUpdate { new: 1, loss: true });
        // The same hole is not a loss twice; its repair counts as acknowledged.
        assert!(!t.update(SeqNo(6), 0b110_1111).unwrap().loss);
        assert_eq!(t.update(SeqNo(6), 0b111_1111).unwrap().new, 1);
    }

    #[test]
    fn jumps_and_stale_acks() {
        let mut t = AckTracker::new(SeqNo(u32::MAX - 1));
        // Across the sqn wrap, a jump beyond the bitmap: only what the bitmap says counts.
        let u = t.update(SeqNo(100), u32::MAX).unwrap();
        assert_eq!(u.new, 32);
        assert!(t.update(SeqNo(60), u32::MAX).is_none());
    }
}
