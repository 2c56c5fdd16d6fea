//! The application side: [`SendSocket`] and [`RecvSocket`].
//!
//! Both run engine turns on the calling thread when they can (see [`super::driver`]): a send
//! goes out inline when the core is free, and a receive with nothing queued drains the sockets
//! itself, then waits for them in its own epoll instance.

use std::{
    collections::VecDeque,
    os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd},
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc, Mutex, MutexGuard, TryLockError,
    },
    thread::{self, JoinHandle},
    time::Duration,
};

use bytes::Bytes;

use super::{
    driver::{self, fill_peers, lock, Core, RecvQueue, Role, SendQueue, Shared, State, Turn, Who},
    Clock, Endpoint, OpenError, PeerReport, RecvError, RecvStats, SendError, SendStats,
    SocketOptions,
};
use crate::{
    event::Event, receiver::Receiver, source::Source, time::sooner, transport::Transport, wire::Tsi,
};

/// While an application thread waits for the driver, it looks for itself at least this often
/// (a safety net: the driver signals every change a waiter cares about).
const WAIT_SLICE: Duration = Duration::from_millis(50);

/// The longest [`RecvMonitor::peers`] waits for the driver's snapshot before it falls back to
/// the last one (the driver serves it within a turn; this is a safety net).
const PEERS_WAIT: Duration = Duration::from_millis(200);

/// The core and the state shared with the IO thread, and the thread itself.
#[derive(Debug)]
struct Handle<R: Role> {
    core: Arc<Mutex<Core<R>>>,
    shared: Arc<Shared<R::Queue>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<R: Role> Handle<R> {
    /// Starts the IO thread for `engine` over `transport`.
    fn spawn(
        name: &str,
        engine: R,
        transport: Box<dyn Transport>,
        clock: Clock,
        opts: &SocketOptions,
    ) -> Result<Self, OpenError> {
        let (io_loop, core, shared) = driver::new(engine, transport, clock, &opts.driver)?;
        let thread = thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || io_loop.run())?;
        Ok(Handle {
            core,
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The core if it is free (`block`: or once it is), else `None`.
    fn try_core(&self, block: bool) -> Option<MutexGuard<'_, Core<R>>> {
        if block {
            return Some(lock(&self.core));
        }
        match self.core.try_lock() {
            Ok(c) => Some(c),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Runs a turn on this thread if the core is free (`block`: once it is); `None` when it is
    /// not (whoever holds it reads the sockets, so a receiver need not do more).
    fn drive(&self, block: bool, readable: bool) -> Option<Turn> {
        self.try_core(block)
            .map(|mut core| core.turn(&self.shared, Who::App, readable))
    }

    /// After queueing data: runs a turn if the core is free. When it is not, whoever holds it
    /// may be past the point where it looks at the queues, so the IO thread is woken if it is
    /// parked.
    fn drive_or_wake(&self) {
        if self.drive(false, false).is_none() {
            let mut st = self.shared.lock();
            self.shared.wake_io(&mut st);
        }
    }

    /// Fresh counters if the core is free, else the ones published last (at most
    /// a millisecond old while the driver is busy).
    fn refresh_stats(&self) {
        if let Some(mut core) = self.try_core(false) {
            core.refresh_stats(&self.shared);
        }
    }

    /// Asks the IO thread to stop and waits for it. Does nothing the second time.
    fn stop(&self) {
        let Some(thread) = lock(&self.thread).take() else {
            return;
        };
        {
            let mut st = self.shared.lock();
            st.close_requested = true;
            self.shared.bump_in();
            self.shared.wake_io(&mut st);
        }
        let _ = thread.join();
    }
}

/// A PGM sender. Messages go out in order, as ODATA (fragmented when larger than one TPDU);
/// a background thread answers NAKs from the transmit window.
///
/// Every method takes `&self`, so one socket can be shared between threads. Dropping it
/// closes it like [`SendSocket::close`], which blocks for up to the linger time.
#[derive(Debug)]
pub struct SendSocket {
    handle: Arc<Handle<Source>>,
    endpoint: Endpoint,
    tsi: Tsi,
    max_tsdu: usize,
    max_fragment: usize,
    max_apdu: usize,
    max_fragments: usize,
}

impl SendSocket {
    /// Starts a sender on `endpoint` over an opened `transport` (see the `epgm` crate for the
    /// constructors that open one from the endpoint's scheme).
    pub fn open(
        endpoint: &Endpoint,
        opts: &SocketOptions,
        transport: Box<dyn Transport>,
    ) -> Result<Self, OpenError> {
        let cfg = opts.source_config(endpoint, transport.local_nla(), transport.ip_overhead())?;
        let tsi = cfg.tsi;
        let (max_tsdu, max_fragment) = (cfg.max_tsdu(), cfg.max_fragment_tsdu());
        let max_apdu = cfg.max_apdu.min(usize::from(u16::MAX));
        let max_fragments = cfg.txw_sqns as usize;
        let handle = Arc::new(Handle::spawn(
            "pgm-send-io",
            Source::new(cfg),
            transport,
            Clock::new(),
            opts,
        )?);
        handle.shared.lock().queue.limit = opts.driver.send_queue;
        Ok(SendSocket {
            handle,
            endpoint: endpoint.clone(),
            tsi,
            max_tsdu,
            max_fragment,
            max_apdu,
            max_fragments,
        })
    }

    /// Our session identifier.
    pub fn tsi(&self) -> Tsi {
        self.tsi
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The largest message that goes out as one unfragmented packet (what a libzmq receiver
    /// accepts; docs/wire-compatibility.md §14).
    pub fn max_unfragmented(&self) -> usize {
        self.max_tsdu
    }

    /// The largest TSDU of one packet without OPT_FRAGMENT: the same as
    /// [`SendSocket::max_unfragmented`].
    pub fn max_tsdu(&self) -> usize {
        self.max_tsdu
    }

    /// The payload bytes of each fragment when a message is larger than
    /// [`SendSocket::max_tsdu`] (the packet then also carries OPT_FRAGMENT).
    pub fn max_fragment_tsdu(&self) -> usize {
        self.max_fragment
    }

    /// The largest message [`SendSocket::send`] accepts.
    pub fn max_message(&self) -> usize {
        let by_window = if self.max_fragments <= 1 {
            self.max_tsdu
        } else {
            self.max_tsdu
                .max(self.max_fragments.saturating_mul(self.max_fragment))
        };
        self.max_apdu.min(by_window)
    }

    fn check_len(&self, len: usize) -> Result<(), SendError> {
        let max = self.max_message();
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        Ok(())
    }

    /// Queues one message, blocking while the send queue is full (the rate limit or the
    /// network holds data back). When the socket is idle the message goes out on this thread
    /// before `send` returns.
    pub fn send(&self, msg: &[u8]) -> Result<(), SendError> {
        self.send_bytes(Bytes::copy_from_slice(msg))
    }

    /// Like [`SendSocket::send`], without a copy.
    pub fn send_bytes(&self, msg: Bytes) -> Result<(), SendError> {
        self.push(msg, true)
    }

    /// Queues one message, or fails with [`SendError::WouldBlock`] when the queue is full.
    pub fn try_send(&self, msg: &[u8]) -> Result<(), SendError> {
        self.push(Bytes::copy_from_slice(msg), false)
    }

    /// Like [`SendSocket::try_send`], without a copy. On [`SendError::WouldBlock`] the message
    /// was not taken (keep a clone of the `Bytes` to retry).
    pub fn try_send_bytes(&self, msg: Bytes) -> Result<(), SendError> {
        self.push(msg, false)
    }

    /// Queues several messages under one lock, then sends what it can on this thread: each
    /// still goes out as its own APDU, but the wire sees them in one `sendmmsg` batch. Blocks
    /// while the queue is full; on an error the messages before the failing one were queued.
    ///
    /// Small messages are cheapest carved from one larger buffer (`BytesMut::split().freeze()`):
    /// the transmit window frees them in large batches long after they were made, which misses
    /// the allocator's per-thread cache when each has an allocation of its own.
    pub fn send_many<I>(&self, msgs: I) -> Result<(), SendError>
    where
        I: IntoIterator<Item = Bytes>,
    {
        let shared = &self.handle.shared;
        let mut st = shared.lock();
        for msg in msgs {
            self.check_len(msg.len())?;
            loop {
                check_open(&st)?;
                if st.queue.has_room(msg.len()) {
                    break;
                }
                shared.bump_in();
                drop(st);
                self.handle.drive_or_wake();
                st = shared.wait(shared.lock(), Some(WAIT_SLICE));
            }
            enqueue(&mut st, msg);
        }
        shared.settle_ready(&mut st, false);
        shared.bump_in();
        drop(st);
        self.handle.drive_or_wake();
        Ok(())
    }

    /// Like [`SendSocket::send_many`] without waiting: takes messages from the front of `msgs`
    /// while the queue has room (the rest stay in `msgs`), then sends what it can on this
    /// thread. Returns how many it took; [`SendError::WouldBlock`] when it took none.
    pub fn try_send_many(&self, msgs: &mut VecDeque<Bytes>) -> Result<usize, SendError> {
        let shared = &self.handle.shared;
        let mut st = shared.lock();
        check_open(&st)?;
        let mut taken = 0;
        while let Some(msg) = msgs.front() {
            self.check_len(msg.len())?;
            if !st.queue.has_room(msg.len()) {
                break;
            }
            let Some(msg) = msgs.pop_front() else { break };
            enqueue(&mut st, msg);
            taken += 1;
        }
        st.queue.wanted = msgs.front().map_or(0, Bytes::len);
        shared.settle_ready(&mut st, false);
        if taken == 0 {
            return Err(SendError::WouldBlock);
        }
        shared.bump_in();
        drop(st);
        self.handle.drive_or_wake();
        Ok(taken)
    }

    fn push(&self, msg: Bytes, block: bool) -> Result<(), SendError> {
        self.check_len(msg.len())?;
        let shared = &self.handle.shared;
        let mut st = shared.lock();
        loop {
            check_open(&st)?;
            if st.queue.has_room(msg.len()) {
                enqueue(&mut st, msg);
                st.queue.wanted = 0;
                shared.settle_ready(&mut st, false);
                shared.bump_in();
                break;
            }
            if !block {
                st.queue.wanted = msg.len();
                shared.settle_ready(&mut st, false);
                return Err(SendError::WouldBlock);
            }
            // Make room on this thread if the core is free, else wait for whoever has it.
            drop(st);
            self.handle.drive_or_wake();
            st = shared.lock();
            if !st.queue.has_room(msg.len()) {
                st = shared.wait(st, Some(WAIT_SLICE));
            }
        }
        drop(st);
        self.handle.drive_or_wake();
        Ok(())
    }

    /// Blocks until every queued message has been transmitted once (ODATA on the wire).
    pub fn flush(&self) -> Result<(), SendError> {
        let shared = &self.handle.shared;
        loop {
            {
                let st = shared.lock();
                if let Some(f) = &st.failure {
                    return Err(SendError::Failed(f.clone()));
                }
                if st.queue.count == 0 && st.queue.engine_queued == 0 {
                    return Ok(());
                }
                if st.done {
                    return Err(SendError::Closed);
                }
            }
            self.handle.drive_or_wake();
            let st = shared.lock();
            if (st.queue.count != 0 || st.queue.engine_queued != 0) && !st.done {
                drop(shared.wait(st, Some(WAIT_SLICE)));
            }
        }
    }

    /// Sends what is queued, then 3 SPMs with OPT_FIN, keeps answering NAKs for the linger
    /// time, and stops the IO thread. Calling it again (or while another thread is closing)
    /// does nothing.
    pub fn close(&self) -> Result<(), SendError> {
        self.handle.stop();
        match &self.handle.shared.lock().failure {
            Some(f) => Err(SendError::Failed(f.clone())),
            None => Ok(()),
        }
    }

    /// Counters: a fresh snapshot, or while a turn is running on another thread the one it
    /// published last (at most about a millisecond old).
    pub fn stats(&self) -> SendStats {
        send_stats(&self.handle)
    }

    /// A handle that reads this socket's counters from another thread (a metrics exporter),
    /// for as long as it is kept, also after the socket is closed.
    pub fn monitor(&self) -> SendMonitor {
        SendMonitor {
            handle: Arc::clone(&self.handle),
        }
    }
}

/// Reads a [`SendSocket`]'s counters from any thread ([`SendSocket::monitor`]). Cloning it is
/// cheap; it never sends, and never blocks the socket's IO thread.
#[derive(Debug, Clone)]
pub struct SendMonitor {
    handle: Arc<Handle<Source>>,
}

impl SendMonitor {
    /// The same as [`SendSocket::stats`].
    pub fn stats(&self) -> SendStats {
        send_stats(&self.handle)
    }
}

fn send_stats(handle: &Handle<Source>) -> SendStats {
    handle.refresh_stats();
    let st = handle.shared.lock();
    let mut s = st.queue.stats.clone();
    s.app_queued_messages = st.queue.count as u64;
    s.app_queued_bytes = st.queue.bytes as u64;
    s
}

/// The send queue's state as a send sees it: failed, closed, or open.
fn check_open(st: &State<SendQueue>) -> Result<(), SendError> {
    if let Some(f) = &st.failure {
        return Err(SendError::Failed(f.clone()));
    }
    if st.done || st.close_requested {
        return Err(SendError::Closed);
    }
    Ok(())
}

/// Appends a message to the send queue and its accounting.
fn enqueue(st: &mut State<SendQueue>, msg: Bytes) {
    let q = &mut st.queue;
    q.bytes += msg.len();
    q.count += 1;
    q.msgs.push_back(msg);
}

/// The socket's readiness descriptor: **writable while the next message fits** in the send
/// queue (or the socket has stopped, so that the next call reports why), level-triggered. For
/// event loops (mio, epoll, glib, tokio's `AsyncFd`): wait for writability, then
/// [`SendSocket::try_send`] until [`SendError::WouldBlock`]. After a refused message the
/// descriptor stays unwritable until *that* message fits. Its readability means nothing
/// (an eventfd that cannot be written is readable).
///
/// The descriptor is kept up to date from the first call of `as_fd`/`as_raw_fd` on; a
/// socket used only through blocking calls pays nothing for it.
impl AsFd for SendSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        let shared = &self.handle.shared;
        if !shared.ready_used() {
            shared.activate_ready(&mut shared.lock(), false);
        }
        // SAFETY: the eventfd lives as long as the shared state, which `self` keeps.
        unsafe { BorrowedFd::borrow_raw(shared.ready_fd.as_raw_fd()) }
    }
}

impl AsRawFd for SendSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl Drop for SendSocket {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// The batch of events an application thread took from the driver in one go.
#[derive(Debug, Default)]
struct Local {
    events: VecDeque<Event>,
    /// The batch's charge against the receive queue, released when it is used up.
    held: usize,
    /// `Shared::out_seq` when the shared queue was last found empty: while it has not moved,
    /// there is nothing new to take (no lock needed to find out).
    seen: Option<u64>,
}

/// Whether polling before a sleep pays off. While packets stream in, spins keep finding
/// them; when traffic is sparse (or answers take much longer than the spin) they never do,
/// and after [`SpinPolicy::GIVE_UP`] fruitless spins in a row only every
/// [`SpinPolicy::PROBE`]th sleep tries again, so a quiet socket does not burn CPU.
#[derive(Debug, Default)]
struct SpinPolicy {
    /// Spins in a row that found nothing.
    misses: AtomicU32,
    /// Sleeps since spinning was given up.
    skipped: AtomicU32,
}

impl SpinPolicy {
    const GIVE_UP: u32 = 32;
    const PROBE: u32 = 64;

    fn should_spin(&self) -> bool {
        if self.misses.load(Ordering::Relaxed) < Self::GIVE_UP {
            return true;
        }
        self.skipped
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(Self::PROBE)
    }

    fn record(&self, found: bool) {
        if found {
            self.misses.store(0, Ordering::Relaxed);
        } else {
            let m = self.misses.load(Ordering::Relaxed);
            self.misses
                .store((m + 1).min(Self::GIVE_UP), Ordering::Relaxed);
        }
    }
}

/// A PGM receiver: data from every sender (TSI) on the endpoint, in order per sender, with
/// losses reported as [`Event::Loss`].
///
/// Every method takes `&self`, so one socket can be shared between threads (each event goes
/// to one of them).
#[derive(Debug)]
pub struct RecvSocket {
    handle: Arc<Handle<Receiver>>,
    local: Mutex<Local>,
    spin: SpinPolicy,
    endpoint: Endpoint,
    recv_queue: usize,
    clock: Clock,
}

impl RecvSocket {
    /// Starts a receiver on `endpoint` over an opened `transport`.
    pub fn open(
        endpoint: &Endpoint,
        opts: &SocketOptions,
        transport: Box<dyn Transport>,
    ) -> Result<Self, OpenError> {
        let mut cfg = opts.receiver_config(endpoint)?;
        // PGMCC: the address the source names its ACKer by, and the one we report.
        cfg.nla = Some(transport.local_nla());
        let clock = Clock::new();
        let handle = Arc::new(Handle::spawn(
            "pgm-recv-io",
            Receiver::new(cfg),
            transport,
            clock,
            opts,
        )?);
        Ok(RecvSocket {
            handle,
            local: Mutex::new(Local::default()),
            spin: SpinPolicy::default(),
            endpoint: endpoint.clone(),
            recv_queue: opts.driver.recv_queue,
            clock,
        })
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The next event, waiting as long as it takes.
    pub fn recv(&self) -> Result<Event, RecvError> {
        self.next(None)
    }

    /// The next event, or [`RecvError::Timeout`] after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Event, RecvError> {
        self.next(Some(timeout))
    }

    /// The next event if one is ready (after draining the sockets, when no other thread is
    /// doing so), else [`RecvError::Empty`].
    pub fn try_recv(&self) -> Result<Event, RecvError> {
        self.next(Some(Duration::ZERO)).map_err(|e| match e {
            RecvError::Timeout => RecvError::Empty,
            e => e,
        })
    }

    /// Appends every event that is ready to `out` without waiting (after draining the
    /// sockets, when no other thread is doing so); returns how many. Cheaper than one
    /// [`RecvSocket::try_recv`] per event.
    pub fn try_recv_many(&self, out: &mut Vec<Event>) -> Result<usize, RecvError> {
        self.handle.shared.note_app_call();
        let mut local = lock(&self.local);
        if local.events.is_empty() && !self.refill(&mut local)? {
            self.handle.drive(false, true);
            if !self.refill(&mut local)? {
                return Ok(0);
            }
        }
        let n = local.events.len();
        out.extend(local.events.drain(..));
        self.settle_ready();
        Ok(n)
    }

    /// Takes the shared queue into `local` if the driver published anything since the last
    /// look. True when `local` now has events. Releases the previous batch's charge.
    fn refill(&self, local: &mut Local) -> Result<bool, RecvError> {
        let shared = &self.handle.shared;
        let seq = shared.out_seq();
        if local.seen == Some(seq) && local.held == 0 {
            return Ok(false);
        }
        let mut st = shared.lock();
        let q: &mut RecvQueue = &mut st.queue;
        q.held_bytes -= local.held.min(q.held_bytes);
        local.held = 0;
        let got = !q.events.is_empty();
        if got {
            std::mem::swap(&mut q.events, &mut local.events);
            local.held = std::mem::take(&mut q.queued_bytes);
        }
        if q.paused && q.held_bytes <= self.recv_queue / 2 {
            q.paused = false;
            shared.bump_in();
            shared.wake_io(&mut st);
        }
        if got {
            return Ok(true);
        }
        if let Some(f) = &st.failure {
            return Err(RecvError::Failed(f.clone()));
        }
        if st.done {
            return Err(RecvError::Closed);
        }
        // Read under the lock: anything published later moves it.
        local.seen = Some(shared.out_seq());
        Ok(false)
    }

    /// An event from the local batch, or from the shared queue.
    fn take(&self) -> Result<Option<Event>, RecvError> {
        let mut local = lock(&self.local);
        let ev = match local.events.pop_front() {
            Some(ev) => Some(ev),
            None if self.refill(&mut local)? => local.events.pop_front(),
            None => None,
        };
        if local.events.is_empty() {
            self.settle_ready();
        }
        Ok(ev)
    }

    /// With the readiness descriptor in use and the local batch used up: shows whether the
    /// shared queue has more.
    fn settle_ready(&self) {
        let shared = &self.handle.shared;
        if shared.ready_used() {
            shared.settle_ready(&mut shared.lock(), false);
        }
    }

    fn next(&self, timeout: Option<Duration>) -> Result<Event, RecvError> {
        let shared = &self.handle.shared;
        shared.note_app_call();
        // Most calls find an event ready: no clock read for those (a busy receiver makes
        // millions of calls), nor for a non-blocking call.
        if let Some(ev) = self.take()? {
            return Ok(ev);
        }
        let nonblocking = timeout == Some(Duration::ZERO);
        let deadline = timeout
            .filter(|_| !nonblocking)
            .map(|t| self.clock.elapsed() + t);
        let mut readable = false;
        loop {
            if let Some(ev) = self.take()? {
                return Ok(ev);
            }
            // Nothing queued: drain the sockets on this thread. A non-blocking call does not
            // wait for a turn someone else is running, unless the application's event loop
            // relies on it to read what woke it (`socket_fds`).
            // A non-blocking call polls the sockets itself: while this thread keeps calling,
            // the IO thread stands by and nobody else would read them.
            let block = !nonblocking || shared.app_watches_sockets();
            let turn = self.handle.drive(block, readable || nonblocking);
            if let Some(ev) = self.take()? {
                return Ok(ev);
            }
            if nonblocking {
                return Err(RecvError::Timeout);
            }
            let now = self.clock.elapsed();
            let left = match deadline {
                Some(d) if now >= d => return Err(RecvError::Timeout),
                Some(d) => Some(d.saturating_sub(now)),
                None => None,
            };
            if shared.busy_poll {
                std::hint::spin_loop();
                readable = true;
                continue;
            }
            // Poll a little before sleeping: at high packet rates the next packet is usually
            // microseconds away, and a sleeping receiver costs a wake-up, mostly paid by the
            // sender (see `SocketOptions::spin_before_sleep`).
            let spin = left.map_or(shared.spin_before_sleep, |l| {
                l.min(shared.spin_before_sleep)
            });
            if !spin.is_zero() && self.spin.should_spin() {
                let until = now + spin;
                loop {
                    self.handle.drive(true, true);
                    if let Some(ev) = self.take()? {
                        self.spin.record(true);
                        return Ok(ev);
                    }
                    if self.clock.elapsed() >= until {
                        break;
                    }
                    std::hint::spin_loop();
                }
                self.spin.record(false);
            }
            // Wait for the sockets (or the driver's word) until the engine's next deadline.
            let wait = sooner(left, turn.and_then(|t| t.timeout));
            {
                let mut st = shared.lock();
                if !st.queue.events.is_empty() || st.done {
                    continue;
                }
                st.app_polling += 1;
            }
            let waited = match &shared.app_poll {
                Some(p) => p.wait(wait),
                None => Ok(false),
            };
            shared.lock().app_polling -= 1;
            readable = waited.map_err(|e| RecvError::Failed(e.to_string()))?;
        }
    }

    /// Stops the IO thread. Queued events are dropped. Calling it again does nothing.
    pub fn close(&self) {
        self.handle.stop();
    }

    /// The transport's sockets, for an event loop that watches them *as well as* the
    /// readiness descriptor (`as_fd`), the cheaper way to wait (docs/async.md): from this call
    /// on, the IO thread stands by while the application keeps receiving, as it does for
    /// blocking receives, and [`RecvSocket::try_recv`] drains the sockets itself, waiting for
    /// a turn another thread is running (microseconds). Wake on either kind of descriptor,
    /// then `try_recv` until [`RecvError::Empty`]. The descriptors stay valid while the socket
    /// lives.
    pub fn socket_fds(&self) -> Vec<RawFd> {
        let shared = &self.handle.shared;
        shared.set_app_watches_sockets();
        shared.socket_fds()
    }

    /// Counters: a fresh snapshot, or while a turn is running on another thread the one it
    /// published last (at most about a millisecond old).
    pub fn stats(&self) -> RecvStats {
        recv_stats(&self.handle)
    }

    /// A handle that reads this socket's counters and per-sender snapshot from another
    /// thread (a metrics exporter), for as long as it is kept, also after the socket is closed.
    pub fn monitor(&self) -> RecvMonitor {
        RecvMonitor {
            handle: Arc::clone(&self.handle),
            clock: self.clock,
        }
    }
}

/// Reads a [`RecvSocket`]'s counters from any thread ([`RecvSocket::monitor`]). Cloning it is
/// cheap; it never blocks the socket's IO thread.
#[derive(Debug, Clone)]
pub struct RecvMonitor {
    handle: Arc<Handle<Receiver>>,
    clock: Clock,
}

impl RecvMonitor {
    /// The same as [`RecvSocket::stats`].
    pub fn stats(&self) -> RecvStats {
        recv_stats(&self.handle)
    }

    /// Every sender (TSI) the receiver tracks, with its counters and window fill, in TSI
    /// order. At most `ReceiverLimits::max_peers` entries (the peer table's bound).
    ///
    /// Taken from the engine directly when no turn is running; otherwise the driver takes it
    /// at the end of its current turn (the request rides the hand-off like queued data, so
    /// the data path never waits for this thread). Should the driver not answer within
    /// 200 ms, the snapshot it took last is returned.
    pub fn peers(&self) -> Vec<PeerReport> {
        let now = self.clock.now();
        self.peer_stats()
            .into_iter()
            .map(|(tsi, stats)| PeerReport {
                tsi,
                idle: now.saturating_duration_since(stats.last_heard),
                stats,
            })
            .collect()
    }

    fn peer_stats(&self) -> Vec<(Tsi, crate::PeerStats)> {
        let h = &self.handle;
        let from_core = || {
            h.try_core(false).map(|core| {
                let mut st = h.shared.lock();
                fill_peers(core.engine(), &mut st.queue);
                st.queue.peers.clone()
            })
        };
        if let Some(p) = from_core() {
            return p;
        }
        let shared = &h.shared;
        let mut st = shared.lock();
        let seen = st.queue.peers_seq;
        st.queue.peers_wanted = true;
        shared.bump_in();
        shared.wake_io(&mut st);
        let clock = Clock::new();
        while st.queue.peers_seq == seen && !st.done && clock.elapsed() < PEERS_WAIT {
            st = shared.wait(st, Some(Duration::from_millis(5)));
            if st.queue.peers_seq == seen {
                drop(st);
                if let Some(p) = from_core() {
                    return p;
                }
                st = shared.lock();
            }
        }
        st.queue.peers.clone()
    }
}

fn recv_stats(handle: &Handle<Receiver>) -> RecvStats {
    handle.refresh_stats();
    let st = handle.shared.lock();
    let q = &st.queue;
    let mut s = q.stats.clone();
    s.app_queued_events = q.events.len() as u64;
    s.app_queued_bytes = q.held_bytes as u64;
    s.reading_paused = q.paused;
    s
}

/// The socket's readiness descriptor: **readable while events are queued** (or the socket
/// has stopped, so that the next call reports why), level-triggered: unlike libzmq's
/// edge-triggered `ZMQ_FD`, a wake-up is never lost by taking fewer events than are queued.
/// For event loops (mio, epoll, glib, tokio's `AsyncFd`): wait for readability, then
/// [`RecvSocket::try_recv`] until [`RecvError::Empty`].
///
/// From the first call of `as_fd`/`as_raw_fd` on, the socket's IO thread keeps reading the
/// sockets even while the application receives (it no longer stands by, see
/// docs/architecture.md): the descriptor turns readable when *it* has queued events. A loop
/// that also watches [`RecvSocket::socket_fds`] avoids that extra thread wake-up per batch.
/// With `DriverOptions::busy_poll` the IO thread only looks every 10 ms, so do not combine
/// the two (docs/async.md).
impl AsFd for RecvSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        let shared = &self.handle.shared;
        if !shared.ready_used() {
            let local = lock(&self.local);
            shared.activate_ready(&mut shared.lock(), !local.events.is_empty());
        }
        // SAFETY: the eventfd lives as long as the shared state, which `self` keeps.
        unsafe { BorrowedFd::borrow_raw(shared.ready_fd.as_raw_fd()) }
    }
}

impl AsRawFd for RecvSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl Drop for RecvSocket {
    fn drop(&mut self) {
        self.close();
    }
}
