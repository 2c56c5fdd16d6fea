//! A source's on-demand parity accounting (RFC 3208 §11.4): which parity indices a group has
//! used, and how many parity packets it has been sent within the current elimination
//! interval, so that parity NAKs from many receivers for the same group buy only as many
//! parity packets as the worst of them asked for — one parity packet repairs *different*
//! losses at *different* receivers.
//!
//! Bounded: one small entry per group that was asked for, at most [`MAX_GROUPS`] (the oldest
//! makes room), and each interval at most as many packets per group as it has distinct
//! on-demand indices (k minus the pro-active ones).

use std::{collections::VecDeque, time::Duration};

use crate::{time::Instant, wire::SeqNo};

/// Groups tracked at once (a parity NAK for an older one just starts a fresh entry).
pub const MAX_GROUPS: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct GroupState {
    tg: SeqNo,
    /// The next parity index to use (indices cycle through `first..k`).
    next: u8,
    /// When the current elimination interval began.
    since: Instant,
    /// Parity packets granted in it.
    sent: u8,
}

/// On-demand parity state of one source.
#[derive(Debug)]
pub struct OnDemand {
    k: u8,
    /// The first index on-demand parity uses: pro-active parity owns `0..first` (RFC: on-demand
    /// parity must use new indices). When pro-active parity takes all k, indices are reused.
    first: u8,
    groups: VecDeque<GroupState>,
}

impl OnDemand {
    /// Groups of `k`, pro-active parity using indices `0..proactive`.
    pub fn new(k: u8, proactive: u8) -> Self {
        OnDemand {
            k,
            first: if proactive < k { proactive } else { 0 },
            groups: VecDeque::new(),
        }
    }

    /// A parity NAK for group `tg` asks for `count` packets (1..=k) at `now`: the parity
    /// indices to send (empty when the packets sent within `elimination` already cover it).
    pub fn request(
        &mut self,
        now: Instant,
        elimination: Duration,
        tg: SeqNo,
        count: u8,
    ) -> Vec<u8> {
        let count = count.clamp(1, self.k);
        let (k, first) = (self.k, self.first);
        let i = if let Some(i) = self.groups.iter().position(|g| g.tg == tg) {
            i
        } else {
            if self.groups.len() >= MAX_GROUPS {
                self.groups.pop_front();
            }
            self.groups.push_back(GroupState {
                tg,
                next: first,
                since: now,
                sent: 0,
            });
            self.groups.len() - 1
        };
        let g = &mut self.groups[i];
        if now.saturating_duration_since(g.since) >= elimination {
            g.since = now;
            g.sent = 0;
        }
        // Distinct indices per interval: a repeated index repairs nothing new.
        let distinct = k - first;
        let need = count
            .saturating_sub(g.sent)
            .min(distinct.saturating_sub(g.sent));
        let mut out = Vec::with_capacity(usize::from(need));
        for _ in 0..need {
            out.push(g.next);
            g.next = if g.next + 1 >= k { first } else { g.next + 1 };
        }
        g.sent += need;
        out
    }

    /// Forgets groups that start before `trail` (they left the transmit window).
    pub fn forget_before(&mut self, trail: SeqNo) {
        self.groups.retain(|g| g.tg.diff(trail) >= 0);
    }

    /// Groups tracked now.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// No group tracked.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ELIM: Duration = Duration::from_millis(1);

    fn at(us: u64) -> Instant {
        Instant::ZERO + Duration::from_micros(us)
    }

    #[test]
    fn naks_for_one_group_buy_only_the_largest_count_per_interval() {
        let mut od = OnDemand::new(8, 2);
        let tg = SeqNo(16);
        // Three receivers lost 1, 3 and 2 packets of the same group.
        assert_eq!(od.request(at(0), ELIM, tg, 1), [2]);
        assert_eq!(od.request(at(10), ELIM, tg, 3), [3, 4]);
        assert!(od.request(at(20), ELIM, tg, 2).is_empty());
        // After the interval, a repeat gets fresh indices.
        assert_eq!(od.request(at(2_000), ELIM, tg, 2), [5, 6]);
        // Indices cycle through 2..8, skipping the pro-active ones.
        assert_eq!(od.request(at(4_000), ELIM, tg, 3), [7, 2, 3]);
        // Never more per interval than the 6 distinct on-demand indices.
        assert_eq!(od.request(at(6_000), ELIM, tg, 200), [4, 5, 6, 7, 2, 3]);
        assert!(od.request(at(6_001), ELIM, tg, 8).is_empty());
        // Another group has its own state.
        assert_eq!(od.request(at(6_002), ELIM, SeqNo(24), 1), [2]);
        assert_eq!(od.len(), 2);
        od.forget_before(SeqNo(24));
        assert_eq!(od.len(), 1);
    }

    #[test]
    fn all_indices_proactive_reuses_them_and_state_is_bounded() {
        let mut od = OnDemand::new(4, 4);
        assert_eq!(od.request(at(0), ELIM, SeqNo(0), 2), [0, 1]);
        for g in 0..(MAX_GROUPS as u32 + 10) {
            od.request(at(0), ELIM, SeqNo(g * 4), 1);
        }
        assert_eq!(od.len(), MAX_GROUPS);
    }
}
