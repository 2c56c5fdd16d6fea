//! What application threads and the driver share: [`State`] behind a mutex (taken once per
//! batch), the sequence counters that let either side see "nothing new" without it, and the
//! ways each side wakes the other (see the [module docs](super)).

use std::{
    io,
    os::fd::{AsRawFd, RawFd},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Condvar, Mutex, MutexGuard, PoisonError,
    },
    time::Duration,
};

use mio::Waker;

use super::{
    super::Clock,
    readiness::{AppReady, Readiness, ReadyFd},
};
use crate::{
    sys::{
        self,
        event::{EventFd, TimerFd},
    },
    time::Instant,
};

/// Locks a mutex that only ever holds plain data (a panic elsewhere leaves it usable).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How application threads wait for a receiver's sockets: `poll(2)` on the sockets and an
/// eventfd the driver writes to when it published something while an application thread
/// waits.
///
/// `poll(2)` rather than an epoll instance on purpose: it hooks the thread onto the sockets'
/// wait queues only for as long as it waits. A socket with a permanent epoll registration
/// makes every arriving packet run the wake-up path (wait-queue lock, epoll callback) in the
/// sender's softirq even while the receiver is busy and nobody sleeps; with `poll(2)` a busy
/// receiver costs the sender nothing, like a plain UDP socket read with a blocking
/// `recvmmsg`.
#[derive(Debug)]
pub(crate) struct AppPoll {
    /// The sockets, then the eventfd last.
    fds: Vec<RawFd>,
    event: EventFd,
}

impl AppPoll {
    pub(super) fn new(fds: &[RawFd]) -> io::Result<Self> {
        let event = EventFd::new()?;
        let mut fds = fds.to_vec();
        fds.push(event.as_raw_fd());
        Ok(AppPoll { fds, event })
    }

    /// Waits up to `timeout` (`None`: forever); true when a socket became readable.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> io::Result<bool> {
        let ready = sys::event::poll_readable(&self.fds, timeout)?;
        let event_bit = 1 << (self.fds.len() - 1);
        if ready & event_bit != 0 {
            // Level-triggered: reset the counter, or every later wait returns at once.
            self.event.drain();
        }
        Ok(ready & !event_bit != 0)
    }

    /// Wakes the application threads waiting in [`AppPoll::wait`].
    fn wake(&self) {
        self.event.signal();
    }
}

/// What the application and the driver share (besides the core). `Q` is the role's half of
/// the hand-off ([`Role::Queue`](super::Role::Queue)).
#[derive(Debug)]
pub(crate) struct Shared<Q> {
    state: Mutex<State<Q>>,
    /// Signalled when the driver took data, delivered events, or stopped (waiting senders).
    cond: Condvar,
    waker: Waker,
    /// When the parked IO thread wakes by itself (see the module docs).
    alarm: TimerFd,
    /// Receivers: how waiting application threads block.
    pub(crate) app_poll: Option<AppPoll>,
    /// The descriptor the application's own event loop polls (see [`super::readiness`]).
    pub(crate) ready_fd: ReadyFd,
    /// The application asked for `ready_fd` (read without the lock; set once, under it).
    ready_used: AtomicBool,
    /// The application's own event loop watches the sockets too (see
    /// [`Shared::app_watches_sockets`]).
    app_reactor: AtomicBool,
    /// Bumped (under the lock) by the application for anything the driver must look at:
    /// queued data, close, a paused receive queue that has room again.
    pub(super) in_seq: AtomicU64,
    /// Bumped (under the lock) by the driver whenever it published something an application
    /// thread may wait for: data taken, events, having stopped.
    out_seq: AtomicU64,
    /// Bumped by every receive call: while it moves, an application thread is receiving and
    /// the IO thread stands by (see [`IoLoop::standby`](super::IoLoop)).
    pub(super) app_calls: AtomicU64,
    /// See the module docs.
    pub(crate) busy_poll: bool,
    /// [`SocketOptions::spin_before_sleep`](super::super::SocketOptions::spin_before_sleep).
    pub(crate) spin_before_sleep: Duration,
}

/// Everything behind [`Shared`]'s lock: the role's queue and the hand-off's flags.
#[derive(Debug, Default)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent flags of a hand-off, not a state machine"
)]
pub(crate) struct State<Q> {
    /// The role's half: messages for the engine, or events for the application.
    pub(crate) queue: Q,
    /// The application asked to close.
    pub(crate) close_requested: bool,
    /// A wake-up is already on its way to the IO thread.
    wake_pending: bool,
    /// The IO thread is (about to be) blocked in `epoll_wait`: new work needs a wake-up.
    pub(super) io_parked: bool,
    /// When the parked IO thread's alarm rings (`None`: never).
    pub(super) io_deadline: Option<Instant>,
    /// The longest the IO thread sleeps, whatever the engine's deadlines (see
    /// [`Who::Io`](super::Who::Io)).
    pub(super) io_max_sleep: Option<Duration>,
    /// Application threads blocked on the condition variable.
    waiters: usize,
    /// Application threads blocked in [`AppPoll::wait`].
    pub(crate) app_polling: usize,
    /// The IO thread has stopped.
    pub(crate) done: bool,
    /// Why it stopped, if on an error.
    pub(crate) failure: Option<String>,
    /// What `Shared::ready_fd` shows.
    pub(crate) readiness: Readiness,
}

impl<Q> State<Q> {
    /// The IO thread is awake and looking: clears the parked flags.
    pub(super) fn io_awake(&mut self) {
        self.io_parked = false;
        self.wake_pending = false;
    }
}

impl<Q: Default> Shared<Q> {
    pub(super) fn new(
        waker: Waker,
        alarm: TimerFd,
        app_poll: Option<AppPoll>,
        ready_fd: ReadyFd,
        busy_poll: bool,
        spin_before_sleep: Duration,
    ) -> Self {
        Shared {
            state: Mutex::new(State::default()),
            cond: Condvar::new(),
            waker,
            alarm,
            app_poll,
            ready_fd,
            ready_used: AtomicBool::new(false),
            app_reactor: AtomicBool::new(false),
            in_seq: AtomicU64::new(0),
            out_seq: AtomicU64::new(0),
            app_calls: AtomicU64::new(0),
            busy_poll,
            spin_before_sleep,
        }
    }
}

impl<Q> Shared<Q> {
    /// The state; a panic elsewhere never makes it unusable (it holds plain data).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State<Q>> {
        lock(&self.state)
    }

    /// The driver's publication counter (see the module docs).
    pub(crate) fn out_seq(&self) -> u64 {
        self.out_seq.load(Ordering::Acquire)
    }

    /// Blocks on the condition variable, counted in `waiters` so the driver only signals
    /// when someone listens. With busy-poll it spins (lock released) until the driver
    /// publishes something or the timeout passes instead.
    pub(crate) fn wait<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<Q>>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, State<Q>> {
        if self.busy_poll {
            let seen = self.out_seq.load(Ordering::Acquire);
            drop(st);
            let clock = Clock::new();
            while self.out_seq.load(Ordering::Acquire) == seen
                && timeout.is_none_or(|t| clock.elapsed() < t)
            {
                std::hint::spin_loop();
            }
            return self.lock();
        }
        st.waiters += 1;
        let mut st = match timeout {
            None => self.cond.wait(st).unwrap_or_else(PoisonError::into_inner),
            Some(t) => {
                self.cond
                    .wait_timeout(st, t)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
        };
        st.waiters -= 1;
        st
    }

    /// Records that an application thread is receiving.
    pub(crate) fn note_app_call(&self) {
        self.app_calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Records that the application left something for the driver.
    pub(crate) fn bump_in(&self) {
        self.in_seq.fetch_add(1, Ordering::Release);
    }

    /// Wakes the IO thread if it is parked and no wake-up is on its way.
    pub(crate) fn wake_io(&self, st: &mut State<Q>) {
        if st.io_parked && !st.wake_pending {
            st.wake_pending = true;
            // A failed wake (the loop is gone) shows up as `done`.
            let _ = self.waker.wake();
        }
    }

    /// Sets the parked IO thread's alarm to ring `after` from `now` (`None`: never). False
    /// when the timer could not be set (the caller then must not rely on it).
    pub(super) fn set_alarm(
        &self,
        st: &mut State<Q>,
        now: Instant,
        after: Option<Duration>,
    ) -> bool {
        st.io_deadline = after.map(|t| now + t);
        self.alarm.set(after).is_ok()
    }

    /// The application polls [`Shared::ready_fd`]: it must be kept up to date.
    pub(crate) fn ready_used(&self) -> bool {
        self.ready_used.load(Ordering::Acquire)
    }

    /// Whether a receiver's IO thread may stand by while the application receives: yes
    /// unless the application sleeps in an event loop that watches only `ready_fd` (then
    /// nobody else would read the sockets).
    pub(crate) fn standby_allowed(&self) -> bool {
        !self.ready_used() || self.app_watches_sockets()
    }

    /// The application's event loop watches the sockets as well as `ready_fd`, and its
    /// non-blocking receives drain them (waiting for a turn another thread is running).
    pub(crate) fn app_watches_sockets(&self) -> bool {
        self.app_reactor.load(Ordering::Acquire)
    }

    /// See [`Shared::app_watches_sockets`].
    pub(crate) fn set_app_watches_sockets(&self) {
        self.app_reactor.store(true, Ordering::Release);
    }

    /// The sockets (without the application's eventfd), for an event loop of the application.
    pub(crate) fn socket_fds(&self) -> Vec<RawFd> {
        self.app_poll
            .as_ref()
            .map(|p| p.fds[..p.fds.len() - 1].to_vec())
            .unwrap_or_default()
    }
}

impl<Q: AppReady> Shared<Q> {
    /// Starts keeping [`Shared::ready_fd`] up to date; `app_holds`: the application holds
    /// events of its own (a receiver's taken batch).
    pub(crate) fn activate_ready(&self, st: &mut State<Q>, app_holds: bool) {
        let ready = app_holds || st.done || st.queue.app_ready();
        st.readiness.activate(&self.ready_fd, ready);
        self.ready_used.store(true, Ordering::Release);
    }

    /// The application side's view of readiness (it knows the whole truth: nothing held
    /// locally beyond what the caller says).
    pub(crate) fn settle_ready(&self, st: &mut State<Q>, app_holds: bool) {
        let ready = app_holds || st.done || st.queue.app_ready();
        st.readiness.update(&self.ready_fd, ready);
    }

    /// Tells waiting application threads that the driver published something.
    pub(super) fn publish(&self, st: &mut State<Q>) {
        // The driver only ever makes the application's next call succeed (events queued,
        // room freed); the application side lowers readiness when it finds nothing.
        if st.queue.app_ready() {
            st.readiness.update(&self.ready_fd, true);
        }
        self.out_seq.fetch_add(1, Ordering::Release);
        if st.waiters > 0 {
            self.cond.notify_all();
        }
        if st.app_polling > 0 {
            if let Some(p) = &self.app_poll {
                p.wake();
            }
        }
    }

    /// Marks the driver stopped (`failure`: why, if on an error) and wakes every waiter.
    pub(super) fn finish(&self, mut st: MutexGuard<'_, State<Q>>, failure: Option<String>) {
        st.done = true;
        st.failure = failure;
        st.readiness.update(&self.ready_fd, true);
        self.out_seq.fetch_add(1, Ordering::Release);
        self.cond.notify_all();
        if let Some(p) = &self.app_poll {
            p.wake();
        }
    }
}
