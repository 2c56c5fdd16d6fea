//! Token-bucket rate limiter (RFC 3208 §6.4 leaves the policy to the source; OpenPGM charges IP
//! header + TPDU per packet, interop-notes §3).

use std::time::Duration;

use crate::time::Instant;

/// Tokens are kept in byte·µs/s units (bytes × 10^6) so refill is exact integer arithmetic.
const SCALE: i128 = 1_000_000;

/// A token bucket over bytes.
///
/// Tokens may go negative ("debt") when a packet that must not wait is charged; later packets
/// then wait until the debt is paid, so the long-run rate still holds.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u64,
    depth: i128,
    tokens: i128,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket refilling at `rate` bytes/s up to `burst` bytes.
    pub fn new(rate: u64, burst: usize, now: Instant) -> Self {
        let depth = (burst as i128).max(1) * SCALE;
        TokenBucket {
            rate: rate.max(1),
            depth,
            tokens: depth,
            last: now,
        }
    }

    /// The refill rate, bytes/s.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    fn refill(&mut self, now: Instant) {
        let us = now.as_micros().saturating_sub(self.last.as_micros());
        if us > 0 {
            let add = i128::from(us) * i128::from(self.rate);
            self.tokens = (self.tokens + add).min(self.depth);
            self.last = now;
        }
    }

    /// True when `bytes` can be sent now (the bucket holds at least zero tokens after refill,
    /// so a packet larger than the depth still goes out once the bucket is full).
    pub fn can_send(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens > 0
    }

    /// Charges `bytes`, possibly into debt.
    pub fn charge(&mut self, now: Instant, bytes: usize) {
        self.refill(now);
        self.tokens -= bytes as i128 * SCALE;
    }

    /// When the bucket will next allow a packet (a past instant if it does already).
    pub fn ready_at(&self) -> Instant {
        if self.tokens > 0 {
            return self.last;
        }
        let need = self.tokens.unsigned_abs() + 1;
        let us = need.div_ceil(u128::from(self.rate));
        self.last + Duration::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_run_rate_holds() {
        // 1 MB/s, 1400-byte packets sent as fast as allowed for 10 s: 10 MB ± one burst.
        let mut b = TokenBucket::new(1_000_000, 4000, Instant::ZERO);
        let mut now = Instant::ZERO;
        let mut sent = 0usize;
        while now < Instant::from_micros(10_000_000) {
            if b.can_send(now) {
                b.charge(now, 1400);
                sent += 1400;
            } else {
                now = b.ready_at().max(now);
            }
        }
        assert!((10_000_000..=10_006_000).contains(&sent), "{sent}");
    }

    #[test]
    fn debt_delays_the_next_packet() {
        let mut b = TokenBucket::new(1000, 100, Instant::ZERO);
        b.charge(Instant::ZERO, 600);
        assert!(!b.can_send(Instant::ZERO));
        let at = b.ready_at();
        assert!(
            at > Instant::from_millis(499) && at <= Instant::from_millis(501),
            "{at:?}"
        );
        assert!(b.can_send(at));
    }
}
