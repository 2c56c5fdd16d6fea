//! What the receiving tools (`pgm-recv`, `pgm-sub`) share: the idle timeout, the wait for the
//! next event, and the main that prints the summary and maps the exit codes.

use std::{
    io::{self, Write},
    process::ExitCode,
    time::Duration,
};

use pgm::socket::Clock;

use super::{
    error::{report_error, ToolError},
    interrupt,
    report::Progress,
};

/// Idle timeout when `--count` or `--verify` is given and `--timeout` is not.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The idle timeout of a receiving tool from its `--timeout` (`None`: wait forever): `0` is
/// forever; without one, [`DEFAULT_TIMEOUT`] when the run is `bounded` (`--count` or
/// `--verify` given), else forever.
pub fn idle_timeout(timeout: Option<f64>, bounded: bool) -> Result<Option<Duration>, ToolError> {
    match timeout {
        Some(0.0) => Ok(None),
        Some(t) if t > 0.0 && t < 1e9 => Ok(Some(Duration::from_secs_f64(t))),
        Some(t) => Err(ToolError::Usage(format!("--timeout {t} is not a duration"))),
        None if bounded => Ok(Some(DEFAULT_TIMEOUT)),
        None => Ok(None),
    }
}

/// When a receiving tool's messages came, on its run's clock: the first and the last delivery,
/// and since when nothing has arrived. Deliveries after the first are timed when the receive
/// loop next finds the queue empty or stops ([`Activity::settle`]), microseconds later: one
/// clock read per batch of messages rather than per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    /// When the first message was delivered.
    pub first: Option<Duration>,
    /// When the last message was delivered (the start while none was).
    pub last: Duration,
    /// When the current idle spell began (the last data or the start).
    pub idle_since: Duration,
    /// Messages were delivered since the last [`Activity::settle`].
    pending: bool,
    /// The longest pause in delivery: from the moment the queue was found empty after a
    /// delivery to the next delivery (timed at [`Activity::resumed`]).
    pub max_gap: Duration,
}

impl Activity {
    /// Nothing delivered yet; idle since `now`.
    pub fn new(now: Duration) -> Self {
        Activity {
            first: None,
            last: now,
            idle_since: now,
            pending: false,
            max_gap: Duration::ZERO,
        }
    }

    /// An event arrived at `now` after the loop had found the queue empty and waited: the
    /// pause since the last delivery counts towards [`Activity::max_gap`].
    pub fn resumed(&mut self, now: Duration) {
        if self.first.is_some() {
            self.max_gap = self.max_gap.max(now.saturating_sub(self.last));
        }
    }

    /// A message was delivered: the first one is timed now, later ones at the next settle.
    pub fn delivered(&mut self, clock: &Clock) {
        if self.first.is_none() {
            let now = clock.elapsed();
            self.first = Some(now);
            self.last = now;
            self.idle_since = now;
        } else {
            self.pending = true;
        }
    }

    /// The loop found the queue empty, or stops, at `now`: deliveries since the last settle
    /// happened just before.
    pub fn settle(&mut self, now: Duration) {
        if self.pending {
            self.pending = false;
            self.last = now;
            self.idle_since = now;
        }
    }

    /// Seconds from the first to the last delivery (0 without any).
    pub fn elapsed_s(&self) -> f64 {
        self.first
            .map_or(0.0, |f| self.last.saturating_sub(f).as_secs_f64())
    }
}

/// How long a receiving tool may block waiting for the next event, `waited` after the last
/// data: until its `idle` limit or its next progress line, whichever comes first. `None` once
/// the idle limit is reached (the run ends).
pub fn next_wait(
    idle: Option<Duration>,
    waited: Duration,
    progress: &Progress,
) -> Option<Duration> {
    match idle {
        Some(limit) if waited >= limit => None,
        Some(limit) => Some(limit.saturating_sub(waited).min(progress.until_next())),
        None => Some(progress.until_next()),
    }
}

/// How a receiving tool's run ended, as far as its main is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEnd {
    /// The JSON summary line to print on stdout (`--verify`), if any.
    pub json: Option<String>,
    /// Messages delivered.
    pub received: u64,
    /// `--count` was given and not reached.
    pub short: bool,
    /// The exit status.
    pub exit_code: u8,
}

/// The main of a receiving tool (`pgm-recv`, `pgm-sub`): installs the Ctrl-C/SIGTERM handlers
/// ([`interrupt`](super::interrupt)), runs `run` on a buffered stdout, prints the JSON summary
/// it returns, says on stderr (unless `quiet`) when it was interrupted or fewer than `count`
/// messages arrived, and maps errors to exit codes.
pub fn receiver_main(
    tool: &str,
    quiet: bool,
    count: Option<u64>,
    run: impl FnOnce(&mut dyn Write) -> Result<RunEnd, ToolError>,
) -> ExitCode {
    if let Err(e) = interrupt::install() {
        eprintln!("{tool}: cannot handle Ctrl-C ({e}): it ends the run without a summary");
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    match run(&mut out) {
        Ok(end) => {
            if let Some(json) = end.json {
                if writeln!(out, "{json}").is_err() {
                    return ExitCode::FAILURE;
                }
            }
            if out.flush().is_err() {
                return ExitCode::FAILURE;
            }
            if !quiet {
                let interrupted = interrupt::requested();
                let why = if interrupted {
                    "interrupted"
                } else {
                    "timed out"
                };
                match count {
                    Some(count) if end.short => {
                        eprintln!("{tool}: {why} with {} of {count} messages", end.received);
                    }
                    _ if interrupted => {
                        eprintln!("{tool}: interrupted after {} messages", end.received);
                    }
                    _ => {}
                }
            }
            ExitCode::from(end.exit_code)
        }
        Err(e) => {
            let _ = out.flush();
            report_error(tool, &e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_pause_runs_from_the_last_delivery_to_the_next() {
        let ms = Duration::from_millis;
        let mut a = Activity::new(ms(0));
        // Nothing delivered yet: waiting for the first message is no pause.
        a.resumed(ms(500));
        assert_eq!(a.max_gap, Duration::ZERO);
        a.first = Some(ms(500));
        a.last = ms(500);
        a.pending = true;
        a.settle(ms(510));
        a.resumed(ms(530));
        a.pending = true;
        a.settle(ms(531));
        a.resumed(ms(532));
        assert_eq!(a.max_gap, ms(20));
    }
}
