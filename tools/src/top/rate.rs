//! Event and byte rates over a sliding time window, in fixed memory whatever the traffic.
//!
//! The window is cut into [`BUCKETS`] buckets of `window / BUCKETS` seconds. The rate at time
//! `now` counts the buckets wholly inside `(now - window, now]` fully and the bucket straddling
//! the window's start in proportion to its overlap (events are taken as spread evenly inside a
//! bucket), so a steady stream reads its true rate and a stopped one falls to zero within one
//! window. Times are seconds (any epoch); an event older than the window only counts in the
//! totals kept elsewhere. A rate is read at or after the latest event added (a capture's
//! "now"), not in the past.

/// Buckets per window.
pub const BUCKETS: usize = 10;
/// Ring slots: the window's buckets plus the one straddling its start.
const SLOTS: usize = BUCKETS + 1;
/// [`BUCKETS`] and [`SLOTS`] as bucket-index arithmetic wants them.
const BUCKETS_I64: i64 = 10;
const SLOTS_I64: i64 = BUCKETS_I64 + 1;
const _: () = assert!(BUCKETS == 10 && SLOTS == 11);

/// One bucket: its index (`floor(time / width)`), events and bytes in it.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    index: i64,
    events: u64,
    bytes: u64,
}

/// Events and bytes per second over a sliding window (see the module docs).
#[derive(Debug, Clone)]
pub struct RateWindow {
    width: f64,
    slots: [Slot; SLOTS],
}

/// A rate read at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rate {
    /// Events per second.
    pub events: f64,
    /// Bytes per second.
    pub bytes: f64,
}

impl RateWindow {
    /// A window of `window_secs` seconds (clamped to at least a millisecond).
    pub fn new(window_secs: f64) -> RateWindow {
        let window = if window_secs.is_finite() {
            window_secs.max(1e-3)
        } else {
            1.0
        };
        RateWindow {
            width: window / BUCKETS as f64,
            // Index i64::MIN marks an empty slot: no real bucket has it.
            slots: [Slot {
                index: i64::MIN,
                ..Slot::default()
            }; SLOTS],
        }
    }

    /// The window length in seconds.
    pub fn window(&self) -> f64 {
        self.width * BUCKETS as f64
    }

    fn index(&self, time: f64) -> i64 {
        // `as` saturates: absurd timestamps land in the first or last bucket, never panic.
        (time / self.width).floor() as i64
    }

    fn slot(index: i64) -> usize {
        index.rem_euclid(SLOTS_I64) as usize
    }

    /// Counts `events` events of `bytes` bytes in all at `time`.
    pub fn add(&mut self, time: f64, events: u64, bytes: u64) {
        let index = self.index(time);
        let slot = &mut self.slots[Self::slot(index)];
        if slot.index != index {
            if slot.index > index {
                // Older than the window that slot now serves: out of the window already.
                return;
            }
            *slot = Slot {
                index,
                events: 0,
                bytes: 0,
            };
        }
        slot.events = slot.events.saturating_add(events);
        slot.bytes = slot.bytes.saturating_add(bytes);
    }

    /// The rates over the window ending at `now`.
    pub fn rate(&self, now: f64) -> Rate {
        let current = self.index(now);
        let start = current.saturating_sub(BUCKETS_I64);
        // The fraction of the straddling bucket (index `start`) still inside the window.
        let into_current = (now / self.width - current as f64).clamp(0.0, 1.0);
        let mut events = 0.0;
        let mut bytes = 0.0;
        for slot in &self.slots {
            if slot.index < start || slot.index > current {
                continue;
            }
            let weight = if slot.index == start {
                1.0 - into_current
            } else {
                1.0
            };
            events += weight * slot.events as f64;
            bytes += weight * slot.bytes as f64;
        }
        let window = self.window();
        Rate {
            events: events / window,
            bytes: bytes / window,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-6 * b.abs().max(1.0)
    }

    #[test]
    fn steady_stream_reads_its_rate() {
        let mut w = RateWindow::new(1.0);
        // 1000 events/s of 100 bytes for 3 s, starting at an arbitrary epoch time.
        let t0 = 1_700_000_000.0;
        for i in 0..3000 {
            let now = t0 + f64::from(i) / 1000.0;
            w.add(now, 1, 100);
            if i >= 1000 && i % 250 == 0 {
                let r = w.rate(now);
                assert!((r.events - 1000.0).abs() < 2.0, "{r:?} at {now}");
                assert!((r.bytes - 100_000.0).abs() < 200.0, "{r:?}");
            }
        }
    }

    #[test]
    fn stopped_stream_falls_to_zero_within_a_window() {
        let mut w = RateWindow::new(2.0);
        for i in 0..100 {
            w.add(10.0 + f64::from(i) / 100.0, 1, 1);
        }
        assert!(w.rate(11.0).events > 0.0);
        assert!(close(w.rate(13.01).events, 0.0));
        assert_eq!(w.rate(1000.0), Rate::default());
    }

    #[test]
    fn partial_bucket_at_the_start_is_weighted() {
        let mut w = RateWindow::new(1.0);
        // 10 events in bucket [0.0, 0.1).
        w.add(0.05, 10, 0);
        // At 1.0 the window is (0.0, 1.0]: bucket 0 is the straddling one, fully inside.
        assert!(close(w.rate(1.0).events, 10.0));
        // At 1.05 half of it is left.
        assert!(close(w.rate(1.05).events, 5.0), "{:?}", w.rate(1.05));
        assert!(close(w.rate(1.1).events, 0.0));
    }

    #[test]
    fn old_and_absurd_times_do_not_panic_or_count() {
        let mut w = RateWindow::new(1.0);
        w.add(100.0, 5, 5);
        w.add(50.0, 7, 7); // far in the past: dropped
        assert!(close(w.rate(100.5).events, 5.0));
        for t in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1e300, 1e300] {
            w.add(t, 1, 1);
            let _ = w.rate(t);
        }
        let w = RateWindow::new(f64::NAN);
        assert!(close(w.window(), 1.0));
    }
}
