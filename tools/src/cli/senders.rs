//! Accounting per sender (TSI) for the verifying receivers (`pgm-recv --verify`,
//! `pgm-sub --verify`).
//!
//! PGM has no authentication, so a receiver may hear sessions nobody it cares about sent:
//! forged ones, or garbage that parses. A sender counts as *verified* once one of its messages
//! passed the test-message check; the summaries report verified senders' counts (what the
//! exit status is decided on) and everything else apart, under `others`.

use pgm::wire::Tsi;

/// Senders tracked one by one; beyond that, unverified ones are counted together (and
/// `pgm-recv --verify` checks no further senders' order).
pub const MAX_SENDERS: usize = 65_536;

/// Counts of one sender, or of a group of them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SenderCounts {
    /// Messages delivered.
    pub messages: u64,
    /// Messages that passed the check.
    pub valid: u64,
    /// Messages that did not.
    pub corrupt: u64,
    /// Sequence numbers (packets) the transport reported lost.
    pub unrecoverable: u64,
    /// Loss notices.
    pub loss_events: u64,
}

impl SenderCounts {
    fn add(&mut self, o: &SenderCounts) {
        self.messages += o.messages;
        self.valid += o.valid;
        self.corrupt += o.corrupt;
        self.unrecoverable += o.unrecoverable;
        self.loss_events += o.loss_events;
    }

    /// The `others` object of a summary.
    pub fn to_json(&self, senders: usize) -> serde_json::Value {
        serde_json::json!({
            "senders": senders,
            "messages": self.messages,
            "corrupt": self.corrupt,
            "unrecoverable": self.unrecoverable,
        })
    }
}

/// Per-sender counts, and the messages of verified senders as they come in.
#[derive(Debug, Default, Clone)]
pub struct Senders {
    map: foldhash::HashMap<Tsi, SenderCounts>,
    /// Senders past [`MAX_SENDERS`] (none of them verified).
    overflow: SenderCounts,
    overflowed: usize,
    /// Messages of verified senders so far (what `--count` counts).
    pub verified_messages: u64,
}

impl Senders {
    fn entry(&mut self, tsi: Tsi) -> &mut SenderCounts {
        if self.map.len() >= MAX_SENDERS && !self.map.contains_key(&tsi) {
            self.overflowed += 1;
            return &mut self.overflow;
        }
        self.map.entry(tsi).or_default()
    }

    /// A message from `tsi`; `valid` when it passed the check.
    pub fn message(&mut self, tsi: Tsi, valid: bool) {
        let c = self.entry(tsi);
        let was_verified = c.valid > 0;
        c.messages += 1;
        if valid {
            c.valid += 1;
        } else {
            c.corrupt += 1;
        }
        let messages = c.messages;
        if was_verified {
            self.verified_messages += 1;
        } else if valid {
            // Its earlier messages count now that it is verified.
            self.verified_messages += messages;
        }
    }

    /// `tsi` lost `count` sequence numbers.
    pub fn loss(&mut self, tsi: Tsi, count: u32) {
        let c = self.entry(tsi);
        c.unrecoverable += u64::from(count);
        c.loss_events += 1;
    }

    /// Whether `tsi` is verified.
    pub fn is_verified(&self, tsi: Tsi) -> bool {
        self.map.get(&tsi).is_some_and(|c| c.valid > 0)
    }

    /// The verified senders' counts together, and how many they are.
    pub fn verified(&self) -> (SenderCounts, usize) {
        self.sum(true)
    }

    /// The other senders' counts together, and how many they are.
    pub fn others(&self) -> (SenderCounts, usize) {
        let (mut c, n) = self.sum(false);
        c.add(&self.overflow);
        (c, n + self.overflowed)
    }

    fn sum(&self, verified: bool) -> (SenderCounts, usize) {
        let mut total = SenderCounts::default();
        let mut n = 0;
        for c in self.map.values().filter(|c| (c.valid > 0) == verified) {
            total.add(c);
            n += 1;
        }
        (total, n)
    }
}

#[cfg(test)]
mod tests {
    use pgm::wire::Gsi;

    use super::*;

    fn tsi(n: u16) -> Tsi {
        Tsi::new(Gsi([9, 9, 9, 9, 9, 9]), n)
    }

    #[test]
    fn a_sender_is_verified_by_its_first_valid_message() {
        let mut s = Senders::default();
        s.message(tsi(1), false);
        s.loss(tsi(1), 5);
        assert_eq!(s.verified_messages, 0);
        s.message(tsi(1), true);
        assert_eq!(s.verified_messages, 2);
        s.message(tsi(2), false);
        s.loss(tsi(2), 1 << 31);
        let (v, nv) = s.verified();
        let (o, no) = s.others();
        assert_eq!((nv, v.messages, v.corrupt, v.unrecoverable), (1, 2, 1, 5));
        assert_eq!((no, o.messages, o.unrecoverable), (1, 1, 1 << 31));
        assert!(s.is_verified(tsi(1)) && !s.is_verified(tsi(2)));
    }
}
