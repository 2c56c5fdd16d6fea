//! Token-bucket rate limiter (RFC 3208 §6.4 leaves the policy to the source; OpenPGM charges IP
//! header + TPDU per packet, docs/wire-compatibility.md §9).

use std::time::Duration;

use crate::time::Instant;

/// Tokens are kept in byte·µs/s units (bytes × 10^6) so refill is exact integer arithmetic.
const SCALE: i128 = 1_000_000;

/// Once the bucket has run dry, sending resumes when it holds this long's worth of tokens
/// (at most half its depth), not at the first token.
const RESUME_US: i128 = 200;

/// A token bucket over bytes.
///
/// Tokens may go negative ("debt") when a packet that must not wait is charged; later packets
/// then wait until the debt is paid, so the long-run rate still holds.
///
/// A bucket that ran dry lets packets go again only once it holds `RESUME_US` (200 µs) worth of
/// tokens (at most half its depth): a paced stream then leaves in runs of several packets every
/// few hundred microseconds instead of one packet per refill, which a driver sends with one
/// syscall (one GSO send for EPGM) and one thread wake-up. The long-run rate is the same; a
/// held packet waits at most that long more. (50 µs made 1400 B EPGM at 300 k packets/s
/// wake the sending thread 20 000 times a second and reach only 185 k; 200 µs reaches 247 k.)
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u64,
    depth: i128,
    tokens: i128,
    /// Tokens at which a dry bucket lets packets go again.
    resume: i128,
    /// The bucket ran dry and has not refilled to `resume` yet.
    dry: bool,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket refilling at `rate` bytes/s up to `burst` bytes.
    pub fn new(rate: u64, burst: usize, now: Instant) -> Self {
        let depth = (burst as i128).max(1) * SCALE;
        let rate = rate.max(1);
        TokenBucket {
            rate,
            depth,
            tokens: depth,
            resume: (i128::from(rate) * RESUME_US).min(depth / 2).max(1),
            dry: false,
            last: now,
        }
    }

    /// The refill rate, bytes/s.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Refills at the old rate up to `now`, then at `rate` (the depth stays).
    pub fn set_rate(&mut self, now: Instant, rate: u64) {
        self.refill(now);
        self.rate = rate.max(1);
        self.resume = (i128::from(self.rate) * RESUME_US)
            .min(self.depth / 2)
            .max(1);
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
        if self.dry && self.tokens >= self.resume {
            self.dry = false;
        }
        if self.dry || self.tokens <= 0 {
            self.dry = true;
            return false;
        }
        true
    }

    /// Charges `bytes`, possibly into debt.
    pub fn charge(&mut self, now: Instant, bytes: usize) {
        self.refill(now);
        self.tokens -= bytes as i128 * SCALE;
    }

    /// Whole tokens (units) available now.
    pub fn available(&mut self, now: Instant) -> u64 {
        self.refill(now);
        u64::try_from(self.tokens / SCALE).unwrap_or(0)
    }

    /// When the bucket will hold `units` whole tokens (a past instant if it does already).
    pub fn ready_for(&self, units: u64) -> Instant {
        let need = i128::from(units) * SCALE - self.tokens;
        if need <= 0 {
            return self.last;
        }
        let us = need.unsigned_abs().div_ceil(u128::from(self.rate));
        self.last + Duration::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
    }

    /// Takes up to `want` whole tokens (one per unit counted: sqns, packets) and returns how
    /// many it took; never goes into debt.
    pub fn take(&mut self, now: Instant, want: u64) -> u64 {
        self.refill(now);
        let have = u64::try_from(self.tokens / SCALE).unwrap_or(0);
        let got = want.min(have);
        self.tokens -= i128::from(got) * SCALE;
        got
    }

    /// When the bucket will next allow a packet (a past instant if it does already).
    pub fn ready_at(&self) -> Instant {
        let target = if self.dry || self.tokens <= 0 {
            self.resume
        } else {
            return self.last;
        };
        if self.tokens >= target {
            return self.last;
        }
        let need = (target - self.tokens).unsigned_abs();
        let us = need.div_ceil(u128::from(self.rate));
        self.last + Duration::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
    }
}

/// Measures a byte stream's rate over fixed intervals and holds the highest recent one: what
/// the stream was able to sustain lately, not its momentary pause.
#[derive(Debug, Clone)]
pub struct PeakRate {
    interval: Duration,
    hold: Duration,
    start: Option<Instant>,
    bytes: u64,
    peak: u64,
    peak_at: Instant,
}

impl PeakRate {
    /// Rates measured over `interval`, a peak held for `hold` unless a higher one comes.
    pub fn new(interval: Duration, hold: Duration) -> Self {
        PeakRate {
            interval,
            hold,
            start: None,
            bytes: 0,
            peak: 0,
            peak_at: Instant::ZERO,
        }
    }

    /// Counts `bytes` sent at `now`; returns the new peak (bytes/s) when an interval that
    /// ended changed it.
    pub fn add(&mut self, now: Instant, bytes: usize) -> Option<u64> {
        let start = *self.start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        let mut changed = None;
        if elapsed >= self.interval {
            let rate = u128::from(self.bytes) * 1_000_000 / elapsed.as_micros().max(1);
            let rate = u64::try_from(rate).unwrap_or(u64::MAX);
            if rate >= self.peak || now.saturating_duration_since(self.peak_at) >= self.hold {
                if rate != self.peak {
                    changed = Some(rate);
                }
                self.peak = rate;
                self.peak_at = now;
            }
            self.start = Some(now);
            self.bytes = 0;
        }
        self.bytes += bytes as u64;
        changed
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
    fn a_dry_bucket_resumes_with_a_run() {
        // 100 MB/s: 200 µs of tokens = 20 000 bytes, so a dry bucket lets ~15 packets of 1400
        // go at once, every ~200 µs, instead of one every 14 µs.
        let mut b = TokenBucket::new(100_000_000, 64 * 1024, Instant::ZERO);
        let mut now = Instant::ZERO;
        let mut runs = Vec::new();
        let mut run = 0;
        while now < Instant::from_micros(100_000) {
            if b.can_send(now) {
                b.charge(now, 1400);
                run += 1;
            } else {
                if run > 0 {
                    runs.push(run);
                    run = 0;
                }
                let next = b.ready_at();
                assert!(next > now, "ready_at must move time on");
                now = next;
            }
        }
        let steady = &runs[1..];
        assert!(steady.iter().all(|&r| (14..=16).contains(&r)), "{steady:?}");
        let sent: usize = runs.iter().sum::<usize>() * 1400;
        // 10 MB in 100 ms, plus the first burst (64 KiB).
        assert!((10_000_000..=10_080_000).contains(&sent), "{sent}");
    }

    #[test]
    fn take_never_goes_into_debt() {
        let mut b = TokenBucket::new(1000, 100, Instant::ZERO);
        assert_eq!(b.take(Instant::ZERO, 30), 30);
        assert_eq!(b.take(Instant::ZERO, 500), 70);
        assert_eq!(b.take(Instant::ZERO, 1), 0);
        assert_eq!(b.take(Instant::from_millis(10), 500), 10);
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

    #[test]
    fn peak_rate_holds_the_best_recent_interval() {
        let ms = |m: u64| Instant::from_micros(m * 1000);
        let mut p = PeakRate::new(Duration::from_millis(100), Duration::from_secs(1));
        // 1 000 bytes per ms for 300 ms: 1 MB/s.
        let mut peaks = Vec::new();
        for t in 0..300 {
            peaks.extend(p.add(ms(t), 1000));
        }
        assert_eq!(peaks, [1_000_000]);
        // A slower stretch (100 bytes per ms) does not lower the peak within the hold...
        for t in 300..1000 {
            assert_eq!(p.add(ms(t), 100), None, "at {t} ms");
        }
        // ...but does once the peak is older than it.
        let later: Vec<u64> = (1000..1400).filter_map(|t| p.add(ms(t), 100)).collect();
        assert_eq!(later, [100_000]);
    }

    #[test]
    fn set_rate_refills_at_the_old_rate_first() {
        let mut b = TokenBucket::new(1_000_000, 10_000, Instant::ZERO);
        b.charge(Instant::ZERO, 10_000);
        // 5 ms at 1 MB/s = 5 000 bytes, then 5 ms at 2 MB/s = 10 000 (capped at the depth).
        b.set_rate(Instant::from_micros(5_000), 2_000_000);
        assert_eq!(b.available(Instant::from_micros(5_000)), 5_000);
        assert_eq!(b.available(Instant::from_micros(7_000)), 9_000);
        assert_eq!(b.rate(), 2_000_000);
    }
}
