//! Event descriptors the socket driver sleeps on: an eventfd (wake-ups from other threads), a
//! timerfd (the IO thread's alarm) and `poll(2)` (application threads waiting for sockets).

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    time::Duration,
};

/// Most descriptors one [`poll_readable`] call watches: the width of its bit mask.
pub const MAX_POLL_FDS: usize = 32;

/// An eventfd: a counter another thread bumps to wake whoever polls it.
#[derive(Debug)]
pub struct EventFd(OwnedFd);

impl EventFd {
    /// A non-blocking eventfd at zero.
    pub fn new() -> io::Result<Self> {
        // SAFETY: a plain syscall; the returned descriptor is owned right away.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Makes the descriptor readable (a full counter still is).
    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64; a full counter (EAGAIN) still wakes.
        let _ = unsafe { libc::write(self.0.as_raw_fd(), (&raw const one).cast(), 8) };
    }

    /// Fills the counter from zero to its maximum, so the descriptor stops being writable
    /// (and is readable) until the next [`EventFd::drain`].
    pub fn fill(&self) {
        let max: u64 = u64::MAX - 1;
        // SAFETY: writes 8 bytes from a live u64; from a zero counter this cannot block.
        let _ = unsafe { libc::write(self.0.as_raw_fd(), (&raw const max).cast(), 8) };
    }

    /// Resets the counter, so the descriptor is not readable until the next signal (and
    /// writable again after a [`EventFd::fill`]).
    pub fn drain(&self) {
        let mut count = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live buffer.
        let _ = unsafe { libc::read(self.0.as_raw_fd(), count.as_mut_ptr().cast(), 8) };
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// A timerfd on the monotonic clock: readable once it rings.
#[derive(Debug)]
pub struct TimerFd(OwnedFd);

impl TimerFd {
    /// A disarmed, non-blocking timer.
    pub fn new() -> io::Result<Self> {
        // SAFETY: a plain syscall; the returned descriptor is owned right away.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_CLOEXEC | libc::TFD_NONBLOCK,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(TimerFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Rings once, `after` from now (`None`: never). Re-arming also clears an earlier ring.
    pub fn set(&self, after: Option<Duration>) -> io::Result<()> {
        // A zero `it_value` disarms, so "now" is a nanosecond.
        let d = after.map_or(Duration::ZERO, |d| d.max(Duration::from_nanos(1)));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_nsec: libc::c_long::from(d.subsec_nanos()),
            },
        };
        // SAFETY: `spec` is a live itimerspec; the old value is not asked for.
        let r = unsafe {
            libc::timerfd_settime(self.0.as_raw_fd(), 0, &raw const spec, std::ptr::null_mut())
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl AsRawFd for TimerFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Waits up to `timeout` (`None`: forever) until one of `fds` (at most [`MAX_POLL_FDS`]) is
/// readable; returns a bit mask of those that are (bit `i` for `fds[i]`), 0 on timeout or a
/// signal.
///
/// `poll(2)` hooks the thread onto the descriptors' wait queues only while it waits, unlike
/// an epoll registration that makes every arriving packet run the wake-up path.
pub fn poll_readable(fds: &[RawFd], timeout: Option<Duration>) -> io::Result<u32> {
    assert!(fds.len() <= MAX_POLL_FDS, "poll_readable: too many fds");
    let ms = timeout.map_or(-1, |t| {
        // Round up, so a wait never ends just before its deadline.
        i32::try_from(t.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
    });
    let mut pfds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; MAX_POLL_FDS];
    for (p, &fd) in pfds.iter_mut().zip(fds) {
        *p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
    }
    // SAFETY: `pfds` is a live array holding at least `fds.len()` entries.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(0)
        } else {
            Err(e)
        };
    }
    Ok(pfds[..fds.len()]
        .iter()
        .enumerate()
        .filter(|(_, p)| p.revents != 0)
        .fold(0, |mask, (i, _)| mask | 1 << i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventfd_wakes_poll_until_drained() {
        let e = EventFd::new().unwrap();
        let fds = [e.as_raw_fd()];
        assert_eq!(poll_readable(&fds, Some(Duration::ZERO)).unwrap(), 0);
        e.signal();
        e.signal();
        assert_eq!(poll_readable(&fds, Some(Duration::ZERO)).unwrap(), 1);
        e.drain();
        assert_eq!(poll_readable(&fds, Some(Duration::ZERO)).unwrap(), 0);
    }

    fn writable(fd: RawFd) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        let n = unsafe { libc::poll(&raw mut p, 1, 0) };
        n == 1 && p.revents & libc::POLLOUT != 0
    }

    #[test]
    fn a_filled_eventfd_is_not_writable_until_drained() {
        let e = EventFd::new().unwrap();
        assert!(writable(e.as_raw_fd()));
        e.fill();
        assert!(!writable(e.as_raw_fd()));
        e.drain();
        assert!(writable(e.as_raw_fd()));
        assert_eq!(
            poll_readable(&[e.as_raw_fd()], Some(Duration::ZERO)).unwrap(),
            0
        );
    }

    #[test]
    fn timer_rings_once_and_can_be_disarmed() {
        let t = TimerFd::new().unwrap();
        let fds = [t.as_raw_fd()];
        t.set(Some(Duration::from_millis(5))).unwrap();
        assert_eq!(poll_readable(&fds, Some(Duration::ZERO)).unwrap(), 0);
        assert_eq!(
            poll_readable(&fds, Some(Duration::from_secs(2))).unwrap(),
            1
        );
        t.set(None).unwrap();
        assert_eq!(
            poll_readable(&fds, Some(Duration::from_millis(10))).unwrap(),
            0
        );
    }
}
