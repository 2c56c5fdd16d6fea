//! Facts about this process the tools report: the monotonic clock shared by every process
//! of the machine, and the peak resident set.

use std::mem::MaybeUninit;

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock in every process and network namespace of
/// the machine, so a benchmark harness can compare timestamps of different processes.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts);
    }
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// This process's `getrusage(RUSAGE_SELF)`, if readable.
fn rusage() -> Option<libc::rusage> {
    let mut ru = MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the rusage struct it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    // SAFETY: zero-initialised and filled by a successful getrusage.
    (rc == 0).then(|| unsafe { ru.assume_init() })
}

/// Peak resident set of this process in KiB (`getrusage` `ru_maxrss`), 0 if unreadable.
pub fn max_rss_kib() -> u64 {
    rusage().map_or(0, |ru| u64::try_from(ru.ru_maxrss).unwrap_or(0))
}

/// CPU time this process (all its threads) has used, user plus system, in seconds (0 if
/// unreadable).
pub fn cpu_seconds() -> f64 {
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    rusage().map_or(0.0, |ru| secs(ru.ru_utime) + secs(ru.ru_stime))
}
