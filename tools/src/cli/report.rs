//! The tools' reports: one JSON line of ordered keys at the end, a progress line on stderr every
//! second, and the clocks and counters the benchmark harness reads from them.

use std::time::Duration;

use pgm::{socket::Clock, sys::process};

/// The summary keys every sending tool (`pgm-send`, `pgm-pub`) reports, in order: `sent`,
/// `bytes`, `elapsed_s`, `msgs_per_s`, then `[naks_received, ncf_sent, rdata_sent]`.
pub fn sender_fields(
    sent: u64,
    bytes: u64,
    elapsed_s: f64,
    [naks_received, ncf_sent, rdata_sent]: [u64; 3],
) -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("sent", sent.into()),
        ("bytes", bytes.into()),
        ("elapsed_s", round3(elapsed_s).into()),
        ("msgs_per_s", msgs_per_s(sent, elapsed_s).into()),
        ("naks_received", naks_received.into()),
        ("ncf_sent", ncf_sent.into()),
        ("rdata_sent", rdata_sent.into()),
    ]
}

/// One JSON object on one line, keys in the given order (serde_json's `Map` would sort them).
pub fn json_line(fields: &[(&str, serde_json::Value)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", serde_json::Value::from(*k)))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// Rounds to milliseconds for reports.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The `msgs_per_s` of every tool's report: `count` messages over `elapsed_s` seconds, rounded
/// to a whole number (0 when no time passed).
pub fn msgs_per_s(count: u64, elapsed_s: f64) -> f64 {
    if elapsed_s > 0.0 {
        (count as f64 / elapsed_s).round()
    } else {
        0.0
    }
}

/// A once-a-second progress line on stderr.
#[derive(Debug)]
pub struct Progress {
    clock: Clock,
    next: Duration,
    last_msgs: u64,
    last_bytes: u64,
    enabled: bool,
}

impl Progress {
    /// Starts the first second now.
    pub fn new(clock: Clock, enabled: bool) -> Self {
        Progress {
            next: clock.elapsed() + Duration::from_secs(1),
            clock,
            last_msgs: 0,
            last_bytes: 0,
            enabled,
        }
    }

    /// Time until the next line is due.
    pub fn until_next(&self) -> Duration {
        self.next.saturating_sub(self.clock.elapsed())
    }

    /// Prints a line if a second has passed: `tool: N msgs/s, X Mbit/s, <extra>`.
    pub fn tick(&mut self, tool: &str, msgs: u64, bytes: u64, extra: impl FnOnce() -> String) {
        let now = self.clock.elapsed();
        if now < self.next {
            return;
        }
        // The last line was due one second before `next`.
        let secs = (now + Duration::from_secs(1))
            .saturating_sub(self.next)
            .as_secs_f64();
        self.next = now + Duration::from_secs(1);
        if self.enabled {
            let m = (msgs - self.last_msgs) as f64 / secs;
            let mbit = (bytes - self.last_bytes) as f64 * 8.0 / secs / 1e6;
            eprintln!(
                "{tool}: {m:.0} msgs/s, {mbit:.1} Mbit/s, {msgs} total, {}",
                extra()
            );
        }
        self.last_msgs = msgs;
        self.last_bytes = bytes;
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock in every network namespace of the machine,
/// so the benchmark harness can compare timestamps of different processes.
pub fn mono_ns() -> u64 {
    process::monotonic_ns()
}

/// Peak resident set of this process in KiB (`getrusage` `ru_maxrss`).
pub fn max_rss_kb() -> u64 {
    process::max_rss_kib()
}

/// CPU seconds this process has used so far, all threads, user plus system.
pub fn cpu_s() -> f64 {
    process::cpu_seconds()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_and_rss() {
        let a = mono_ns();
        let b = mono_ns();
        assert!(b >= a && a > 0);
        assert!(max_rss_kb() > 0);
        assert!(cpu_s() > 0.0);
    }
}
