//! The one place that reads the OS clock.

use std::time::Duration;

use crate::time::Instant;

/// Reads the monotonic OS clock. Everything else in the workspace gets time from here.
#[expect(
    clippy::disallowed_methods,
    reason = "the IO driver owns the clock; the engine only ever sees pgm::time::Instant"
)]
fn os_now() -> std::time::Instant {
    std::time::Instant::now()
}

/// A monotonic clock mapped onto the engine's [`Instant`]: microseconds since the clock was
/// created. Tools use it too, for elapsed times and progress lines.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: std::time::Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        Clock { epoch: os_now() }
    }

    /// Time since the epoch.
    pub fn elapsed(&self) -> Duration {
        os_now().saturating_duration_since(self.epoch)
    }

    /// Now, as the engine counts time.
    pub fn now(&self) -> Instant {
        Instant::from_micros(u64::try_from(self.elapsed().as_micros()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_monotonic() {
        let c = Clock::new();
        let a = c.now();
        std::thread::sleep(Duration::from_millis(2));
        let b = c.now();
        assert!(b - a >= Duration::from_millis(2));
        assert!(c.elapsed() >= Duration::from_millis(2));
    }
}
