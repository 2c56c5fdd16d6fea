//! The engine loop: one [`Core`] (engine, transport, buffers) that the socket's IO thread and
//! the application's own threads take turns driving.
//!
//! # Who drives
//!
//! The core sits behind a mutex. Whoever holds it runs a *turn*: take queued application data,
//! drain the sockets (`recvmmsg`), run due timers, send what the engine emits (`sendmmsg`),
//! and publish events. Nobody holds it while sleeping.
//!
//! - The **IO thread** runs a turn whenever a socket is ready, a timer is due or the
//!   application left work for it, and sleeps in `epoll_wait` in between.
//! - An **application thread** runs turns itself when it can, so a message does not have to
//!   cross threads on its way: `SendSocket::send` sends inline when the core is free (the IO
//!   thread is asleep), and `RecvSocket::recv` with nothing queued drains the sockets itself,
//!   then waits for them itself (`poll(2)`, see [`AppPoll`]). While an application thread
//!   keeps receiving, the receiver's IO thread stands by: it takes the sockets out of its
//!   epoll set and only looks every few milliseconds whether the application is still there
//!   ([`IoLoop::standby`]). So one thread wakes per batch of packets, as with a plain UDP
//!   socket.
//!
//! # Hand-off when the other side drives
//!
//! Application threads and the IO thread share [`State`] behind a second mutex, taken once per
//! *batch*:
//!
//! - **Sends.** `SendSocket::send` appends to `State::tx`; the driver swaps the whole queue
//!   out (O(1) under the lock). The IO thread is woken (an eventfd write) only when it is
//!   parked in `epoll_wait` ([`State::io_parked`]), the core was busy, and no wake-up is on its
//!   way yet; or when an application turn left a deadline earlier than the one the IO thread
//!   sleeps until.
//! - **Receives.** Events are collected without the lock and appended to `State::rx` in one
//!   go; `RecvSocket` swaps the whole queue into a local one and serves events from there.
//! - **Waking the application.** Only when an application thread waits (condition variable
//!   for senders, an eventfd in the receiver's epoll instance) and something it may wait for
//!   happened.
//!
//! Two sequence counters let either side see "nothing new" without the lock: `in_seq` (bumped
//! by the application for anything the driver must look at) and `out_seq` (bumped by the
//! driver whenever it published something an application thread may wait for).
//!
//! # The IO thread's alarm
//!
//! The IO thread sleeps until a timerfd in its epoll set fires (`Shared::alarm`), not for an
//! `epoll_wait` timeout, so an application thread that ran a turn can move that wake-up
//! without waking anyone: earlier when it left an earlier deadline, later when the IO thread
//! was about to wake for something the application's turn has just handled (every ODATA
//! pushes the SPM heartbeat back, every receive call proves the application is still there).
//! While the application drives, the IO thread then sleeps through (one `timerfd_settime` per
//! [`REARM_SLACK`] instead of a thread wake-up per heartbeat interval, which on a busy
//! machine preempts the very thread that drives).
//!
//! # Busy-poll
//!
//! With [`SocketOptions::busy_poll`](super::SocketOptions::busy_poll) application threads never
//! block: a waiting `recv` runs non-blocking turns (one `recvmmsg` each) back to back, and
//! `send`/`flush` spin on `out_seq`. A receiver's IO thread then leaves the sockets to the
//! spinning application and only runs a turn every [`BUSY_POLL_TICK`] (so timers and a
//! distracted application still get served). That takes every thread wake-up out of a
//! message's path, at the price of a core per spinning application thread; on a machine
//! without spare cores it makes latency worse, not better.

use std::{
    collections::VecDeque,
    io, mem,
    os::fd::{AsRawFd, RawFd},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Condvar, Mutex, MutexGuard, PoisonError,
    },
    time::Duration,
};

use bytes::Bytes;
use mio::{unix::SourceFd, Events, Interest, Poll, Token, Waker};

use super::{Clock, IoStats, RecvStats, SendStats};
use crate::{
    event::Event,
    node::Node,
    receiver::Receiver,
    source::SendError as EngineSendError,
    source::Source,
    sys::{
        self,
        event::{EventFd, TimerFd},
    },
    time::{sooner, Instant},
    transport::{Outgoing, RecvBatch, Transport, BATCH, MAX_DATAGRAM},
};

const WAKER: Token = Token(usize::MAX);
const ALARM: Token = Token(usize::MAX - 1);
/// Packets read per turn before timers and sends get a look in.
const READ_BUDGET: usize = 1024;
/// Packets sent per turn before reads get a look in.
const SEND_BUDGET: usize = 2048;
/// While a send waits for socket space, look again at least this often.
const BLOCKED_RETRY: Duration = Duration::from_millis(1);
/// A busy-polling receiver's IO thread runs a turn at least this often.
pub(crate) const BUSY_POLL_TICK: Duration = Duration::from_millis(10);
/// While an application thread keeps receiving, a receiver's IO thread leaves the sockets to
/// it and only looks every this long whether it is still there.
const STANDBY_TICK: Duration = Duration::from_millis(2);
/// An application turn pushes the parked IO thread's alarm later only when it would ring
/// within this long (so a stream of sends costs one `timerfd_settime` per heartbeat
/// interval, not one per message).
const REARM_SLACK: Duration = Duration::from_micros(250);
/// Counters are copied out for `stats()` at most this often while busy.
const STATS_EVERY: Duration = Duration::from_millis(1);
/// Queue accounting charge per event on top of its data, so empty events are bounded too.
pub(crate) const EVENT_OVERHEAD: usize = 64;

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
    fn new(fds: &[RawFd]) -> io::Result<Self> {
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

/// What the application and the driver share (besides the core).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// Signalled when the driver took data, delivered events, or stopped (waiting senders).
    pub(crate) cond: Condvar,
    waker: Waker,
    /// When the parked IO thread wakes by itself (see the module docs).
    alarm: TimerFd,
    /// Receivers: how waiting application threads block.
    pub(crate) app_poll: Option<AppPoll>,
    /// Bumped (under the lock) by the application for anything the driver must look at:
    /// queued data, close, a paused receive queue that has room again.
    in_seq: AtomicU64,
    /// Bumped (under the lock) by the driver whenever it published something an application
    /// thread may wait for: data taken, events, having stopped.
    out_seq: AtomicU64,
    /// Bumped by every receive call: while it moves, an application thread is receiving and
    /// the IO thread stands by (see [`IoLoop::standby`]).
    app_calls: AtomicU64,
    /// See the module docs.
    pub(crate) busy_poll: bool,
    /// [`SocketOptions::spin_before_sleep`](super::SocketOptions::spin_before_sleep).
    pub(crate) spin_before_sleep: Duration,
}

/// Everything behind [`Shared::state`].
#[derive(Debug, Default)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent flags of a hand-off, not a state machine"
)]
pub(crate) struct State {
    /// Sender: messages queued by the application, not yet taken by the driver.
    pub(crate) tx: VecDeque<Bytes>,
    /// Sender: bytes queued and not yet accepted by the engine (in `tx` and in the core).
    pub(crate) tx_bytes: usize,
    /// Sender: messages queued and not yet accepted by the engine.
    pub(crate) tx_count: usize,
    /// Sender: bytes the engine holds that are not on the wire yet.
    pub(crate) engine_queued: usize,
    /// Receiver: events for the application.
    pub(crate) rx: VecDeque<Event>,
    /// Receiver: bytes in `rx` (data plus [`EVENT_OVERHEAD`] per event).
    pub(crate) rx_queued_bytes: usize,
    /// Receiver: bytes held for the application: `rx_queued_bytes` plus the batch an
    /// application thread took and has not finished (what the receive-queue limit counts).
    pub(crate) rx_bytes: usize,
    /// Receiver: reading stopped because `rx_bytes` reached the limit.
    pub(crate) rx_paused: bool,
    /// The application asked to close.
    pub(crate) close_requested: bool,
    /// A wake-up is already on its way to the IO thread.
    wake_pending: bool,
    /// The IO thread is (about to be) blocked in `epoll_wait`: new work needs a wake-up.
    pub(crate) io_parked: bool,
    /// When the parked IO thread's alarm rings (`None`: never).
    io_deadline: Option<Instant>,
    /// The longest the IO thread sleeps, whatever the engine's deadlines (see
    /// [`Who::Io`]).
    io_max_sleep: Option<Duration>,
    /// Application threads blocked on `cond`.
    pub(crate) waiters: usize,
    /// Application threads blocked in [`AppPoll::wait`].
    pub(crate) app_polling: usize,
    /// The IO thread has stopped.
    pub(crate) done: bool,
    /// Why it stopped, if on an error.
    pub(crate) failure: Option<String>,
    pub(crate) send_stats: SendStats,
    pub(crate) recv_stats: RecvStats,
}

impl Shared {
    /// The state; a panic elsewhere never makes it unusable (it holds plain data).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
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
        mut st: MutexGuard<'a, State>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, State> {
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
    pub(crate) fn wake_io(&self, st: &mut State) {
        if st.io_parked && !st.wake_pending {
            st.wake_pending = true;
            // A failed wake (the loop is gone) shows up as `done`.
            let _ = self.waker.wake();
        }
    }

    /// Sets the parked IO thread's alarm to ring `after` from `now` (`None`: never). False
    /// when the timer could not be set (the caller then must not rely on it).
    fn set_alarm(&self, st: &mut State, now: Instant, after: Option<Duration>) -> bool {
        st.io_deadline = after.map(|t| now + t);
        self.alarm.set(after).is_ok()
    }

    /// Wakes whoever waits for the driver's publications.
    fn notify_app(&self, st: &State) {
        if st.waiters > 0 {
            self.cond.notify_all();
        }
        if st.app_polling > 0 {
            if let Some(p) = &self.app_poll {
                p.wake();
            }
        }
    }
}

/// The engine side of the driver: the verbs both engines share, plus the exchange with the
/// application.
pub(crate) trait Engine: Node + Send + 'static {
    /// Takes messages from the front of `q` until the engine pushes back; returns how many
    /// messages and bytes it took (refused ones count as taken: they are dropped).
    fn take_input(&mut self, now: Instant, q: &mut VecDeque<Bytes>, io: &mut IoStats) -> Taken;
    /// Bytes accepted and not on the wire yet.
    fn queued_bytes(&self) -> usize;
    /// Moves the engine's events to `out`; returns their queue charge.
    fn take_events(&mut self, out: &mut VecDeque<Event>) -> usize;
    /// Copies the counters into the shared state.
    fn publish_stats(&self, st: &mut State, io: &IoStats, last_err: Option<&String>);
    /// The application closed the socket.
    fn start_close(&mut self, now: Instant);
    /// True once everything owed after `close` is on the wire.
    fn is_flushed(&self) -> bool;
    /// Whether the loop must linger after close (a sender answers NAKs), or stop at once.
    fn lingers(&self) -> bool;
    /// A receiver: application threads wait for its sockets in their own epoll instance.
    fn app_polls(&self) -> bool;
}

/// What [`Engine::take_input`] took.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Taken {
    pub(crate) count: usize,
    pub(crate) bytes: usize,
}

impl Engine for Source {
    fn take_input(&mut self, now: Instant, q: &mut VecDeque<Bytes>, io: &mut IoStats) -> Taken {
        let mut taken = Taken::default();
        while let Some(msg) = q.front() {
            let len = msg.len();
            match self.send_bytes(now, msg.clone()) {
                Err(EngineSendError::WouldBlock) => break,
                Ok(()) => {}
                // Checked before queueing; should the engine still refuse, count and drop it.
                Err(_) => io.send_errors += 1,
            }
            q.pop_front();
            taken.count += 1;
            taken.bytes += len;
        }
        taken
    }
    fn queued_bytes(&self) -> usize {
        Source::queued_bytes(self)
    }
    fn take_events(&mut self, _out: &mut VecDeque<Event>) -> usize {
        0
    }
    fn publish_stats(&self, st: &mut State, io: &IoStats, last_err: Option<&String>) {
        st.send_stats.engine = self.stats();
        st.send_stats.io = *io;
        if st.send_stats.last_send_error.as_ref() != last_err {
            st.send_stats.last_send_error = last_err.cloned();
        }
    }
    fn start_close(&mut self, now: Instant) {
        self.close(now);
    }
    fn is_flushed(&self) -> bool {
        Source::is_flushed(self)
    }
    fn lingers(&self) -> bool {
        true
    }
    fn app_polls(&self) -> bool {
        false
    }
}

impl Engine for Receiver {
    fn take_input(&mut self, _now: Instant, _q: &mut VecDeque<Bytes>, _io: &mut IoStats) -> Taken {
        Taken::default()
    }
    fn queued_bytes(&self) -> usize {
        0
    }
    fn take_events(&mut self, out: &mut VecDeque<Event>) -> usize {
        let mut bytes = 0;
        while let Some(ev) = self.poll_event() {
            bytes += event_size(&ev);
            out.push_back(ev);
        }
        bytes
    }
    fn publish_stats(&self, st: &mut State, io: &IoStats, last_err: Option<&String>) {
        st.recv_stats.engine = self.stats();
        st.recv_stats.io = *io;
        if st.recv_stats.last_send_error.as_ref() != last_err {
            st.recv_stats.last_send_error = last_err.cloned();
        }
    }
    fn start_close(&mut self, _now: Instant) {}
    fn is_flushed(&self) -> bool {
        true
    }
    fn lingers(&self) -> bool {
        false
    }
    fn app_polls(&self) -> bool {
        true
    }
}

/// Bytes an event counts against the receive queue.
pub(crate) fn event_size(ev: &Event) -> usize {
    EVENT_OVERHEAD
        + match ev {
            Event::Data { apdu, .. } => apdu.len(),
            _ => 0,
        }
}

/// Packets the engine wrote, waiting for one `send_batch`: `pkts[sent..filled]` are unsent.
#[derive(Debug)]
struct TxBatch {
    pkts: Vec<Outgoing>,
    filled: usize,
    sent: usize,
}

impl TxBatch {
    fn new() -> Self {
        TxBatch {
            pkts: (0..BATCH)
                .map(|_| Outgoing {
                    buf: Vec::with_capacity(2048),
                    ..Outgoing::default()
                })
                .collect(),
            filled: 0,
            sent: 0,
        }
    }

    fn unsent(&self) -> bool {
        self.sent < self.filled
    }
}

/// Who runs a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Who {
    /// The socket's IO thread: may park, for at most `max_sleep` (a receiver that stands by or
    /// busy-polls looks now and then whatever the engine's deadlines).
    Io { max_sleep: Option<Duration> },
    /// An application thread: never parks the IO thread, but wakes it when it left work or an
    /// earlier deadline behind.
    App,
}

/// What a turn decided.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Turn {
    /// The loop must stop (closed, linger over).
    pub(crate) stop: bool,
    /// How long the driver may sleep before the next turn (`None`: until something happens).
    /// For the IO thread: the `epoll_wait` timeout, `None` when its alarm is set.
    pub(crate) timeout: Option<Duration>,
}

/// The engine, the transport and everything a turn needs.
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent flags of the loop, not a state machine"
)]
pub(crate) struct Core<E: Engine> {
    engine: E,
    transport: Box<dyn Transport>,
    clock: Clock,
    linger: Duration,
    recv_queue: usize,
    busy_poll: bool,
    rx_batch: RecvBatch,
    tx_batch: TxBatch,
    /// Sender: messages taken from the application, not yet accepted by the engine.
    tx_local: VecDeque<Bytes>,
    /// Sender: accepted by the engine since the last publication.
    taken: Taken,
    /// Receiver: events for the application, collected outside the state lock.
    rx_local: VecDeque<Event>,
    rx_local_bytes: usize,
    /// `in_seq` at the last exchange: equal means the application queued nothing since.
    in_seen: u64,
    /// The application asked to close (seen at an exchange).
    close_requested: bool,
    /// A socket may hold unread packets (edge-triggered readiness: read until drained).
    readable: bool,
    /// `rx` is full: reading waits for the application.
    rx_paused: bool,
    closing: bool,
    linger_until: Option<Instant>,
    /// Packets sent in this turn.
    sent_this_turn: usize,
    /// Packets taken from the engine in this turn (against [`SEND_BUDGET`]).
    polled: usize,
    /// The send budget ran out with more to send.
    more_to_send: bool,
    /// Packet counters at the last publication (publish again only when they moved).
    published_at: (u64, u64),
    /// When the counters were last copied out (they are copied at most every
    /// [`STATS_EVERY`], when the IO thread parks, and on request).
    stats_at: Option<Instant>,
    /// Turns since the last publication (busy-poll publishes now and then regardless).
    idle_turns: u64,
    io: IoStats,
    last_send_error: Option<String>,
}

impl<E: Engine> std::fmt::Debug for Core<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("io", &self.io)
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}

impl<E: Engine> Core<E> {
    /// Runs one turn (see the module docs). `readable`: a readiness event said a socket has
    /// packets.
    pub(crate) fn turn(&mut self, shared: &Shared, who: Who, readable: bool) -> Turn {
        let now = self.clock.now();
        self.io.loop_turns += 1;
        if matches!(who, Who::Io { .. }) {
            self.io.io_turns += 1;
        }
        if readable || (self.busy_poll && self.engine.app_polls()) {
            // Busy-poll: no readiness events for the receive sockets; try them every turn.
            self.readable = true;
        }
        if self.exchange_in(shared, now, who) {
            return Turn {
                stop: true,
                timeout: None,
            };
        }
        if self.readable && !self.rx_paused {
            self.read(now);
        }
        if self.engine.poll_timeout().is_some_and(|t| t <= now) {
            self.engine.handle_timeout(now);
        }
        self.pump(now);
        if self.closing && self.linger_until.is_none() && self.engine.is_flushed() {
            self.linger_until = Some(now + self.linger);
        }
        if self.linger_until.is_some_and(|t| t <= now) {
            return Turn {
                stop: true,
                timeout: None,
            };
        }
        let timeout = self.timeout(now);
        let timeout = self.exchange_out(shared, now, timeout, who);
        Turn {
            stop: false,
            timeout,
        }
    }

    /// Takes the application's sends and requests, if it queued any since the last look.
    /// True when the loop must stop now.
    fn exchange_in(&mut self, shared: &Shared, now: Instant, who: Who) -> bool {
        let seq = shared.in_seq.load(Ordering::Acquire);
        // The IO thread always looks after a park, to clear the flag (a timer or a packet may
        // have woken it); otherwise an unchanged `in_seq` means there is nothing to take.
        let io = matches!(who, Who::Io { .. });
        if seq != self.in_seen || io {
            let mut st = shared.lock();
            self.in_seen = shared.in_seq.load(Ordering::Acquire);
            if io {
                st.io_parked = false;
                st.wake_pending = false;
            }
            self.rx_paused = st.rx_paused;
            self.close_requested |= st.close_requested;
            if !st.tx.is_empty() {
                if self.tx_local.is_empty() {
                    mem::swap(&mut self.tx_local, &mut st.tx);
                } else {
                    self.tx_local.append(&mut st.tx);
                }
            }
        }
        // Once close is asked for, `send` refuses new data: what is left is in `tx_local`.
        if self.close_requested && self.tx_local.is_empty() && !self.closing {
            self.closing = true;
            if !self.engine.lingers() {
                return true;
            }
            self.engine.start_close(now);
        }
        false
    }

    /// Publishes events, taken data and counters; signals waiting application threads. For
    /// the IO thread, decides whether it may park; for an application thread, wakes the IO
    /// thread if the turn left it something to do sooner than it planned. Returns the
    /// timeout to use.
    fn exchange_out(
        &mut self,
        shared: &Shared,
        now: Instant,
        timeout: Option<Duration>,
        who: Who,
    ) -> Option<Duration> {
        let park = matches!(who, Who::Io { .. }) && timeout != Some(Duration::ZERO);
        let moved = (self.io.packets_received, self.io.packets_sent);
        let busy = !self.rx_local.is_empty() || self.taken.count > 0 || moved != self.published_at;
        self.idle_turns += 1;
        if !park && !busy && self.idle_turns < 1024 {
            return timeout;
        }
        self.idle_turns = 0;
        let mut st = shared.lock();
        let queued_before = st.engine_queued;
        let mut notify = self.publish(&mut st);
        let stale = self
            .stats_at
            .is_none_or(|t| now.saturating_duration_since(t) >= STATS_EVERY);
        if park || stale {
            self.stats_at = Some(now);
            self.publish_stats(&mut st);
        }
        notify |= st.engine_queued == 0 && queued_before != 0;
        if st.rx_bytes >= self.recv_queue && !st.rx_paused {
            st.rx_paused = true;
            self.rx_paused = true;
        }
        let mut timeout = timeout;
        match who {
            Who::Io { max_sleep } if park => {
                if shared.in_seq.load(Ordering::Acquire) == self.in_seen {
                    st.io_parked = true;
                    st.io_max_sleep = max_sleep;
                    let sleep = sooner(timeout, max_sleep);
                    // With the alarm set, `epoll_wait` waits without a timeout.
                    timeout = if shared.set_alarm(&mut st, now, sleep) {
                        None
                    } else {
                        sleep
                    };
                } else {
                    // The application queued something since this turn began: no sleeping.
                    timeout = Some(Duration::ZERO);
                }
            }
            Who::App if st.io_parked => {
                // Work left for now (a full socket, the budget): wake the IO thread.
                if timeout == Some(Duration::ZERO) || self.tx_batch.unsent() {
                    st.io_deadline = Some(now);
                    shared.wake_io(&mut st);
                } else {
                    // Move its alarm: earlier for a deadline before the one it sleeps until,
                    // later when it would ring soon for what this turn just did.
                    let sleep = sooner(timeout, st.io_max_sleep);
                    let target = sleep.map(|t| now + t);
                    let earlier = target.is_some_and(|t| st.io_deadline.is_none_or(|p| t < p));
                    let later = st
                        .io_deadline
                        .is_some_and(|p| p <= now + REARM_SLACK && target.is_none_or(|t| t > p));
                    if (earlier || later) && !shared.set_alarm(&mut st, now, sleep) {
                        st.io_deadline = Some(now);
                        shared.wake_io(&mut st);
                    }
                }
            }
            Who::Io { .. } | Who::App => {}
        }
        if notify {
            shared.out_seq.fetch_add(1, Ordering::Release);
            shared.notify_app(&st);
        }
        timeout
    }

    /// Moves taken-data accounting, events and counters into `st`; true when it moved
    /// anything an application thread may wait for.
    fn publish(&mut self, st: &mut State) -> bool {
        let taken = mem::take(&mut self.taken);
        st.tx_count -= taken.count.min(st.tx_count);
        st.tx_bytes -= taken.bytes.min(st.tx_bytes);
        st.engine_queued = self.engine.queued_bytes();
        let gave = !self.rx_local.is_empty();
        if gave {
            if st.rx.is_empty() {
                mem::swap(&mut st.rx, &mut self.rx_local);
            } else {
                st.rx.append(&mut self.rx_local);
            }
            st.rx_queued_bytes += self.rx_local_bytes;
            st.rx_bytes += self.rx_local_bytes;
            self.rx_local_bytes = 0;
        }
        self.published_at = (self.io.packets_received, self.io.packets_sent);
        gave || taken.count > 0
    }

    /// Copies the counters into `st`.
    fn publish_stats(&mut self, st: &mut State) {
        self.io.transport = self.transport.stats();
        self.engine
            .publish_stats(st, &self.io, self.last_send_error.as_ref());
    }

    /// Copies fresh counters into the shared state (for `stats()`).
    pub(crate) fn refresh_stats(&mut self, shared: &Shared) {
        let mut st = shared.lock();
        self.publish_stats(&mut st);
    }

    /// Drains the transport (up to the budget) into the engine.
    fn read(&mut self, now: Instant) {
        let mut budget = READ_BUDGET;
        while budget > 0 {
            self.rx_batch.clear();
            self.io.recv_calls += 1;
            match self.transport.recv_batch(&mut self.rx_batch) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    // ICMP errors from earlier sends surface here; they are not fatal.
                    self.io.recv_errors += 1;
                    budget -= 1;
                    continue;
                }
            }
            for (d, pkt) in self.rx_batch.iter() {
                self.io.packets_received += 1;
                self.io.bytes_received += pkt.len() as u64;
                self.engine.handle_packet(now, d.src, d.dst, pkt);
            }
            budget = budget.saturating_sub(self.rx_batch.used_slots().max(1));
            if self.rx_batch.is_drained() {
                self.readable = false;
                break;
            }
        }
        self.rx_local_bytes += self.engine.take_events(&mut self.rx_local);
    }

    /// Feeds queued application data to the engine and sends what it emits, until both are
    /// done, the socket is full or the budget ran out.
    fn pump(&mut self, now: Instant) {
        self.sent_this_turn = 0;
        self.more_to_send = false;
        self.polled = 0;
        loop {
            if !self.tx_local.is_empty() {
                let t = self
                    .engine
                    .take_input(now, &mut self.tx_local, &mut self.io);
                self.taken.count += t.count;
                self.taken.bytes += t.bytes;
            }
            let before = self.sent_this_turn;
            self.flush(now);
            let progressed = self.sent_this_turn > before;
            if self.tx_local.is_empty()
                || self.tx_batch.unsent()
                || self.more_to_send
                || !progressed
            {
                break;
            }
        }
        self.rx_local_bytes += self.engine.take_events(&mut self.rx_local);
    }

    /// Sends what the engine has for the wire, in batches, until it has nothing, the socket
    /// is full or the budget ran out.
    fn flush(&mut self, now: Instant) {
        loop {
            let b = &mut self.tx_batch;
            // Fill the batch straight from the engine.
            while b.filled < BATCH {
                if self.polled >= SEND_BUDGET {
                    self.more_to_send = true;
                    break;
                }
                let slot = &mut b.pkts[b.filled];
                let Some(t) = self.engine.poll_transmit(now, &mut slot.buf) else {
                    break;
                };
                slot.buf.truncate(t.len);
                slot.dst = t.dst;
                slot.ttl = t.ttl;
                b.filled += 1;
                self.polled += 1;
            }
            if !b.unsent() {
                break;
            }
            self.io.send_calls += 1;
            match self.transport.send_batch(&b.pkts[b.sent..b.filled]) {
                Ok(0) => {
                    // Nothing taken without an error: treat it as a full socket.
                    self.io.send_would_block += 1;
                    break;
                }
                Ok(n) => {
                    for p in &b.pkts[b.sent..b.sent + n] {
                        self.io.bytes_sent += p.buf.len() as u64;
                    }
                    self.io.packets_sent += n as u64;
                    self.sent_this_turn += n;
                    b.sent += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(libc::ENOBUFS) =>
                {
                    self.io.send_would_block += 1;
                    break;
                }
                Err(e) => {
                    // Unreachable networks and the like: the packet is lost, PGM repairs it.
                    let dst = b.pkts[b.sent].dst;
                    self.io.send_errors += 1;
                    self.last_send_error = Some(format!("send to {dst}: {e}"));
                    b.sent += 1;
                }
            }
            if !b.unsent() {
                b.sent = 0;
                b.filled = 0;
            }
            if self.more_to_send && !self.tx_batch.unsent() {
                break;
            }
        }
    }

    /// Packets are waiting for socket space.
    fn send_blocked(&self) -> bool {
        self.tx_batch.unsent()
    }

    /// How long the driver may sleep.
    fn timeout(&self, now: Instant) -> Option<Duration> {
        if (self.readable && !self.rx_paused) || self.more_to_send {
            // The read or send budget ran out with packets left.
            return Some(Duration::ZERO);
        }
        if self.tx_batch.unsent() {
            // Waiting for a writable edge; the engine's own deadlines are "now".
            return Some(BLOCKED_RETRY);
        }
        let mut at = self.engine.poll_timeout();
        if let Some(l) = self.linger_until {
            at = Some(at.map_or(l, |t| t.min(l)));
        }
        let wait = at.map(|t| t.saturating_duration_since(now));
        if wait == Some(Duration::ZERO) && self.sent_this_turn == 0 {
            // Due now, yet timers ran and nothing could be sent: something the engine reports
            // as due is held back (a rate bucket). Sleep a tick rather than spin.
            return Some(BLOCKED_RETRY);
        }
        wait
    }

    /// After the loop: sends what it can, publishes everything and marks the socket done.
    fn finish(&mut self, shared: &Shared, result: io::Result<()>) {
        let now = self.clock.now();
        self.polled = 0;
        self.flush(now);
        self.rx_local_bytes += self.engine.take_events(&mut self.rx_local);
        let mut st = shared.lock();
        self.publish(&mut st);
        self.publish_stats(&mut st);
        st.done = true;
        if let Err(e) = result {
            st.failure = Some(e.to_string());
        }
        shared.out_seq.fetch_add(1, Ordering::Release);
        shared.cond.notify_all();
        if let Some(p) = &shared.app_poll {
            p.wake();
        }
    }
}

/// What [`new`] returns: the IO loop, the core and the shared state.
pub(crate) type Parts<E> = (IoLoop<E>, Arc<Mutex<Core<E>>>, Arc<Shared>);

/// Sets up the core, the IO thread's poll and (for receivers) the application's poll.
/// Returns the IO loop (to be moved onto its thread), the core and the shared state.
pub(crate) fn new<E: Engine>(
    engine: E,
    transport: Box<dyn Transport>,
    clock: Clock,
    linger: Duration,
    recv_queue: usize,
    busy_poll: bool,
    spin_before_sleep: Duration,
) -> io::Result<Parts<E>> {
    let fds = transport.fds();
    let app_polls = engine.app_polls();
    let app_poll = if app_polls {
        Some(AppPoll::new(&fds)?)
    } else {
        None
    };
    let poll = Poll::new()?;
    let waker = Waker::new(poll.registry(), WAKER)?;
    let alarm = TimerFd::new()?;
    poll.registry()
        .register(&mut SourceFd(&alarm.as_raw_fd()), ALARM, Interest::READABLE)?;
    // Readability only: a UDP socket signals writability for every packet it frees, which
    // would wake the IO thread once per packet sent. A send that finds the socket full is
    // retried every BLOCKED_RETRY instead (a sender also asks for writability while blocked,
    // see `IoLoop::want_writable`). A busy-polling receiver's IO thread does not watch the
    // sockets at all: the spinning application reads them.
    if !(app_polls && busy_poll) {
        for (i, fd) in fds.iter().enumerate() {
            poll.registry()
                .register(&mut SourceFd(fd), Token(i), Interest::READABLE)?;
        }
    }
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        cond: Condvar::new(),
        waker,
        alarm,
        app_poll,
        in_seq: AtomicU64::new(0),
        out_seq: AtomicU64::new(0),
        app_calls: AtomicU64::new(0),
        busy_poll,
        spin_before_sleep,
    });
    let core = Arc::new(Mutex::new(Core {
        engine,
        transport,
        clock,
        linger,
        recv_queue,
        busy_poll,
        rx_batch: RecvBatch::new(BATCH, MAX_DATAGRAM),
        tx_batch: TxBatch::new(),
        tx_local: VecDeque::new(),
        taken: Taken::default(),
        rx_local: VecDeque::new(),
        rx_local_bytes: 0,
        in_seen: 0,
        close_requested: false,
        readable: true,
        rx_paused: false,
        closing: false,
        linger_until: None,
        sent_this_turn: 0,
        polled: 0,
        more_to_send: false,
        published_at: (u64::MAX, u64::MAX),
        stats_at: None,
        idle_turns: 0,
        io: IoStats::default(),
        last_send_error: None,
    }));
    let io_loop = IoLoop {
        core: Arc::clone(&core),
        shared: Arc::clone(&shared),
        poll,
        busy_poll: busy_poll && app_polls,
        app_polls,
        watching: app_polls && !busy_poll,
        app_calls_seen: 0,
        fds,
        writable: false,
    };
    Ok((io_loop, core, shared))
}

/// The IO thread: turns when woken, `epoll_wait` in between.
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent flags of the loop, not a state machine"
)]
pub(crate) struct IoLoop<E: Engine> {
    core: Arc<Mutex<Core<E>>>,
    shared: Arc<Shared>,
    poll: Poll,
    /// A busy-polling receiver: the application reads; this loop only ticks.
    busy_poll: bool,
    /// A receiver: application threads read the sockets too.
    app_polls: bool,
    /// A receiver's sockets are in this loop's epoll set (else it stands by, see
    /// [`IoLoop::standby`]).
    watching: bool,
    /// `Shared::app_calls` when last looked at.
    app_calls_seen: u64,
    /// The transport's descriptors.
    fds: Vec<RawFd>,
    /// Writability is asked for (a send is blocked on a full socket).
    writable: bool,
}

impl<E: Engine> IoLoop<E> {
    /// Runs the loop until close (and linger) or an error, then tells the application.
    pub(crate) fn run(mut self) {
        let result = self.run_loop();
        lock(&self.core).finish(&self.shared, result);
    }

    fn run_loop(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(64);
        let mut readable = true;
        loop {
            // Standing by, this loop hears of no packets: it looks for itself.
            let stood_by = self.app_polls && !self.watching;
            if self.app_polls && !self.busy_poll {
                self.standby()?;
            }
            let max_sleep = if self.busy_poll {
                Some(BUSY_POLL_TICK)
            } else if self.app_polls && !self.watching {
                Some(STANDBY_TICK)
            } else {
                None
            };
            let (turn, blocked) = {
                let mut core = lock(&self.core);
                let turn = core.turn(&self.shared, Who::Io { max_sleep }, readable || stood_by);
                (turn, core.send_blocked())
            };
            if turn.stop {
                return Ok(());
            }
            self.want_writable(blocked)?;
            readable = false;
            // Polled even with a zero timeout: that is how a busy loop learns of readable
            // sockets (NAKs for a sender that is streaming).
            if let Err(e) = self.poll.poll(&mut events, turn.timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for ev in &events {
                if ev.token() != WAKER && ev.token() != ALARM && (ev.is_readable() || ev.is_error())
                {
                    readable = true;
                }
            }
        }
    }

    /// A receiver's IO thread leaves the sockets alone while an application thread receives
    /// (it was in a receive call since the last look, or waits in one now): the application
    /// then drains them itself, and a packet arriving while it is between two calls does not
    /// wake this thread for nothing. Once the application has stayed away for a
    /// [`STANDBY_TICK`], this thread watches the sockets again, so NAKs and SPMs are handled
    /// within a few milliseconds whatever the application does.
    fn standby(&mut self) -> io::Result<()> {
        let calls = self.shared.app_calls.load(Ordering::Relaxed);
        let active = calls != self.app_calls_seen || self.shared.lock().app_polling > 0;
        self.app_calls_seen = calls;
        if active != self.watching {
            return Ok(());
        }
        self.watching = !active;
        for (i, fd) in self.fds.iter().enumerate() {
            if self.watching {
                self.poll
                    .registry()
                    .register(&mut SourceFd(fd), Token(i), Interest::READABLE)?;
            } else {
                self.poll.registry().deregister(&mut SourceFd(fd))?;
            }
        }
        Ok(())
    }

    /// Asks for writability of a sender's sockets only while a send is blocked.
    fn want_writable(&mut self, blocked: bool) -> io::Result<()> {
        if blocked == self.writable || self.fds.is_empty() || self.app_polls {
            return Ok(());
        }
        self.writable = blocked;
        let interest = if blocked {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        for (i, fd) in self.fds.iter().enumerate() {
            self.poll
                .registry()
                .reregister(&mut SourceFd(fd), Token(i), interest)?;
        }
        Ok(())
    }
}
