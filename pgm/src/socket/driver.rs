//! The IO thread: one mio loop that owns an engine and a transport.

use std::{
    collections::VecDeque,
    io,
    net::IpAddr,
    os::fd::RawFd,
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use bytes::Bytes;
use mio::{unix::SourceFd, Events, Interest, Poll, Token, Waker};

use super::{Clock, IoStats, RecvEvent, RecvStats, SendStats};
use crate::{
    event::Event, receiver::Receiver, source::Source, time::Instant, transport::Transport,
    SendError as EngineSendError, Transmit,
};

const WAKER: Token = Token(usize::MAX);
/// Packets read per loop turn before timers and sends get a look in.
const READ_BUDGET: usize = 1024;
/// Packets sent per loop turn before reads get a look in.
const SEND_BUDGET: usize = 2048;
/// Largest datagram: the receive buffer size.
const MAX_DATAGRAM: usize = 65_536;
/// While a send waits for socket space, look again at least this often.
const BLOCKED_RETRY: Duration = Duration::from_millis(1);
/// Queue accounting charge per event on top of its data, so empty events are bounded too.
pub(crate) const EVENT_OVERHEAD: usize = 64;

/// What the application and the IO thread share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// Signalled when the IO thread took data, delivered events, or stopped.
    pub(crate) cond: Condvar,
    waker: Waker,
}

/// Everything behind [`Shared::state`].
#[derive(Debug, Default)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent flags of a hand-off, not a state machine"
)]
pub(crate) struct State {
    /// Sender: messages queued by the application.
    pub(crate) tx: VecDeque<Bytes>,
    /// Sender: bytes in `tx`.
    pub(crate) tx_bytes: usize,
    /// Sender: bytes the engine holds that are not on the wire yet.
    pub(crate) engine_queued: usize,
    /// Receiver: events for the application.
    pub(crate) rx: VecDeque<RecvEvent>,
    /// Receiver: bytes in `rx` (data plus [`EVENT_OVERHEAD`] per event).
    pub(crate) rx_bytes: usize,
    /// Receiver: the IO thread stopped reading because `rx` is full.
    pub(crate) rx_paused: bool,
    /// The application asked to close.
    pub(crate) close_requested: bool,
    /// A wake-up is already on its way to the IO thread.
    wake_pending: bool,
    /// Application threads blocked on `cond`.
    pub(crate) waiters: usize,
    /// The IO thread has stopped.
    pub(crate) done: bool,
    /// Why it stopped, if on an error.
    pub(crate) failure: Option<String>,
    pub(crate) send_stats: SendStats,
    pub(crate) recv_stats: RecvStats,
}

impl Shared {
    pub(crate) fn new(waker: Waker) -> Self {
        Shared {
            state: Mutex::new(State::default()),
            cond: Condvar::new(),
            waker,
        }
    }

    /// The state; a panic elsewhere never makes it unusable (it holds plain data).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Blocks on the condition variable, counted in `waiters` so the IO thread only signals
    /// when someone listens.
    pub(crate) fn wait<'a>(
        &self,
        mut st: MutexGuard<'a, State>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, State> {
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

    /// Wakes the IO thread unless a wake-up is already pending.
    pub(crate) fn wake_io(&self, st: &mut State) {
        if !st.wake_pending {
            st.wake_pending = true;
            // A failed wake (the loop is gone) shows up as `done`.
            let _ = self.waker.wake();
        }
    }
}

/// The engine side of the driver: the verbs both engines share, plus the exchange with the
/// application.
pub(crate) trait Engine: Send + 'static {
    fn handle_packet(&mut self, now: Instant, src: IpAddr, dst: IpAddr, pkt: &[u8]);
    fn handle_timeout(&mut self, now: Instant);
    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit>;
    fn poll_timeout(&self) -> Option<Instant>;
    /// Takes what the application queued; true when something was taken (wake senders).
    fn take_input(&mut self, now: Instant, st: &mut State, io: &mut IoStats) -> bool;
    /// Hands results to the application; true when something was delivered.
    fn give_output(&mut self, st: &mut State, io: &IoStats, last_err: Option<&String>) -> bool;
    /// The application closed the socket.
    fn start_close(&mut self, now: Instant);
    /// True once everything owed after `close` is on the wire.
    fn is_idle(&self) -> bool;
    /// Whether the loop must linger after close (a sender answers NAKs), or stop at once.
    fn lingers(&self) -> bool;
}

impl Engine for Source {
    fn handle_packet(&mut self, now: Instant, src: IpAddr, dst: IpAddr, pkt: &[u8]) {
        Source::handle_packet(self, now, src, dst, pkt);
    }
    fn handle_timeout(&mut self, now: Instant) {
        Source::handle_timeout(self, now);
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        Source::poll_transmit(self, now, buf)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Source::poll_timeout(self)
    }
    fn take_input(&mut self, now: Instant, st: &mut State, io: &mut IoStats) -> bool {
        let mut took = false;
        while let Some(msg) = st.tx.front() {
            let len = msg.len();
            match self.send_bytes(now, msg.clone()) {
                Err(EngineSendError::WouldBlock) => break,
                Ok(()) => {}
                // Checked before queueing; should the engine still refuse, count and drop it.
                Err(_) => io.send_errors += 1,
            }
            st.tx.pop_front();
            st.tx_bytes -= len;
            took = true;
        }
        // Published now, so `flush` never sees an empty queue before the engine's is counted.
        st.engine_queued = self.queued_bytes();
        took
    }
    fn give_output(&mut self, st: &mut State, io: &IoStats, last_err: Option<&String>) -> bool {
        let queued = self.queued_bytes();
        let drained = queued == 0 && st.engine_queued != 0;
        st.engine_queued = queued;
        st.send_stats.engine = self.stats();
        st.send_stats.io = *io;
        st.send_stats.last_send_error = last_err.cloned();
        drained
    }
    fn start_close(&mut self, now: Instant) {
        self.close(now);
    }
    fn is_idle(&self) -> bool {
        Source::is_idle(self)
    }
    fn lingers(&self) -> bool {
        true
    }
}

impl Engine for Receiver {
    fn handle_packet(&mut self, now: Instant, src: IpAddr, dst: IpAddr, pkt: &[u8]) {
        Receiver::handle_packet(self, now, src, dst, pkt);
    }
    fn handle_timeout(&mut self, now: Instant) {
        Receiver::handle_timeout(self, now);
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        Receiver::poll_transmit(self, now, buf)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Receiver::poll_timeout(self)
    }
    fn take_input(&mut self, _now: Instant, _st: &mut State, _io: &mut IoStats) -> bool {
        false
    }
    fn give_output(&mut self, st: &mut State, io: &IoStats, last_err: Option<&String>) -> bool {
        let mut gave = false;
        while let Some(ev) = self.poll_event() {
            let ev = match ev {
                Event::Data { tsi, apdu } => RecvEvent::Data { tsi, data: apdu },
                Event::Loss { tsi, first, count } => RecvEvent::Loss { tsi, count, first },
                Event::PeerJoined { tsi } => RecvEvent::PeerJoined { tsi },
                Event::PeerExpired { tsi } => RecvEvent::PeerExpired { tsi },
            };
            st.rx_bytes += event_size(&ev);
            st.rx.push_back(ev);
            gave = true;
        }
        st.recv_stats.engine = self.stats();
        st.recv_stats.io = *io;
        st.recv_stats.last_send_error = last_err.cloned();
        gave
    }
    fn start_close(&mut self, _now: Instant) {}
    fn is_idle(&self) -> bool {
        true
    }
    fn lingers(&self) -> bool {
        false
    }
}

/// Bytes an event counts against the receive queue.
pub(crate) fn event_size(ev: &RecvEvent) -> usize {
    EVENT_OVERHEAD
        + match ev {
            RecvEvent::Data { data, .. } => data.len(),
            _ => 0,
        }
}

/// The IO thread's state.
pub(crate) struct Driver<E: Engine> {
    engine: E,
    transport: Box<dyn Transport>,
    shared: Arc<Shared>,
    poll: Poll,
    clock: Clock,
    linger: Duration,
    recv_queue: usize,
    rx_buf: Vec<u8>,
    tx_buf: Vec<u8>,
    /// The packet in `tx_buf` could not be sent (socket buffer full): its destination.
    pending: Option<IpAddr>,
    /// A socket may hold unread packets (mio is edge-triggered: read until WouldBlock).
    readable: bool,
    /// `rx` is full: reading waits for the application.
    rx_paused: bool,
    closing: bool,
    linger_until: Option<Instant>,
    /// Packets sent in this turn's flush.
    sent_this_turn: usize,
    io: IoStats,
    last_send_error: Option<String>,
}

impl<E: Engine> Driver<E> {
    /// Sets up the poll and registers the transport's descriptors. Returns the driver (to be
    /// moved onto its thread) and the state shared with the application.
    pub(crate) fn new(
        engine: E,
        transport: Box<dyn Transport>,
        clock: Clock,
        linger: Duration,
        recv_queue: usize,
    ) -> io::Result<(Self, Arc<Shared>)> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        for (i, fd) in transport.fds().into_iter().enumerate() {
            let fd: RawFd = fd;
            poll.registry().register(
                &mut SourceFd(&fd),
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )?;
        }
        let shared = Arc::new(Shared::new(waker));
        let driver = Driver {
            engine,
            transport,
            shared: Arc::clone(&shared),
            poll,
            clock,
            linger,
            recv_queue,
            rx_buf: vec![0; MAX_DATAGRAM],
            tx_buf: Vec::with_capacity(MAX_DATAGRAM),
            pending: None,
            readable: true,
            rx_paused: false,
            closing: false,
            linger_until: None,
            sent_this_turn: 0,
            io: IoStats::default(),
            last_send_error: None,
        };
        Ok((driver, shared))
    }

    /// Runs the loop until close (and linger) or an error, then tells the application.
    pub(crate) fn run(mut self) {
        let result = self.run_loop();
        let now = self.clock.now();
        self.flush(now);
        let mut st = self.shared.lock();
        self.io.transport = self.transport.stats();
        self.engine
            .give_output(&mut st, &self.io, self.last_send_error.as_ref());
        st.done = true;
        if let Err(e) = result {
            st.failure = Some(e.to_string());
        }
        drop(st);
        self.shared.cond.notify_all();
    }

    fn run_loop(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(64);
        loop {
            let now = self.clock.now();
            self.io.loop_turns += 1;
            if self.exchange_in(now) {
                return Ok(());
            }
            if self.readable && !self.rx_paused {
                self.read(now)?;
            }
            self.engine.handle_timeout(now);
            self.flush(now);
            self.exchange_out();
            if self.closing && self.linger_until.is_none() && self.engine.is_idle() {
                self.linger_until = Some(now + self.linger);
            }
            if self.linger_until.is_some_and(|t| t <= now) {
                return Ok(());
            }
            let timeout = self.timeout(now);
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for ev in &events {
                if ev.token() != WAKER && (ev.is_readable() || ev.is_error()) {
                    self.readable = true;
                }
            }
        }
    }

    /// Takes the application's sends and close request. True when the loop must stop now.
    fn exchange_in(&mut self, now: Instant) -> bool {
        let shared = Arc::clone(&self.shared);
        let mut st = shared.lock();
        st.wake_pending = false;
        self.rx_paused = st.rx_paused;
        let took = self.engine.take_input(now, &mut st, &mut self.io);
        let close = st.close_requested && st.tx.is_empty() && !self.closing;
        if took && st.waiters > 0 {
            shared.cond.notify_all();
        }
        drop(st);
        if close {
            self.closing = true;
            if !self.engine.lingers() {
                return true;
            }
            self.engine.start_close(now);
        }
        false
    }

    /// Publishes events and counters; signals waiting application threads.
    fn exchange_out(&mut self) {
        self.io.transport = self.transport.stats();
        let shared = Arc::clone(&self.shared);
        let mut st = shared.lock();
        let gave = self
            .engine
            .give_output(&mut st, &self.io, self.last_send_error.as_ref());
        if st.rx_bytes >= self.recv_queue {
            st.rx_paused = true;
            self.rx_paused = true;
        }
        if gave && st.waiters > 0 {
            shared.cond.notify_all();
        }
    }

    /// Drains the transport (up to the budget) into the engine.
    fn read(&mut self, now: Instant) -> io::Result<()> {
        for _ in 0..READ_BUDGET {
            match self.transport.recv(&mut self.rx_buf) {
                Ok(Some(d)) => {
                    let pkt = &self.rx_buf[d.pgm.clone()];
                    self.io.packets_received += 1;
                    self.io.bytes_received += pkt.len() as u64;
                    self.engine.handle_packet(now, d.src, d.dst, pkt);
                }
                Ok(None) => {
                    self.readable = false;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // ICMP errors from earlier sends surface here; they are not fatal.
                    self.io.recv_errors += 1;
                    if self.io.recv_errors > 1_000_000 {
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends what the engine has for the wire, until it has nothing or the socket is full.
    fn flush(&mut self, now: Instant) {
        self.sent_this_turn = 0;
        if let Some(dst) = self.pending {
            if !self.send_pending(dst) {
                return;
            }
        }
        for _ in 0..SEND_BUDGET {
            let Some(t) = self.engine.poll_transmit(now, &mut self.tx_buf) else {
                break;
            };
            self.tx_buf.truncate(t.len);
            if !self.send_pending(t.dst) {
                break;
            }
        }
        if let Err(e) = self.transport.flush() {
            self.io.send_errors += 1;
            self.last_send_error = Some(e.to_string());
        }
    }

    /// Sends the packet in `tx_buf`; false when the socket is full (it stays pending).
    fn send_pending(&mut self, dst: IpAddr) -> bool {
        match self.transport.send_to(dst, &self.tx_buf) {
            Ok(()) => {
                self.sent_this_turn += 1;
                self.io.packets_sent += 1;
                self.io.bytes_sent += self.tx_buf.len() as u64;
                self.pending = None;
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) || e.raw_os_error() == Some(libc::ENOBUFS) =>
            {
                self.io.send_would_block += 1;
                self.pending = Some(dst);
                false
            }
            Err(e) => {
                // Unreachable networks and the like: the packet is lost, PGM repairs it.
                self.io.send_errors += 1;
                self.last_send_error = Some(format!("send to {dst}: {e}"));
                self.pending = None;
                true
            }
        }
    }

    /// How long the loop may sleep.
    fn timeout(&self, now: Instant) -> Option<Duration> {
        if self.readable && !self.rx_paused {
            // The read budget ran out with packets left.
            return Some(Duration::ZERO);
        }
        if self.pending.is_some() {
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
}
