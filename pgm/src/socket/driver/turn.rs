//! One turn of the driver: take the application's work, read the sockets, run due timers,
//! send what the engine emits, publish (see the [module docs](super)). Whoever holds the
//! [`Core`] runs it: the IO thread or an application thread.

use std::{io, sync::atomic::Ordering, time::Duration};

use super::{
    handoff::Shared,
    role::{Closing, Role},
};
use crate::{
    socket::{Clock, IoStats},
    time::{sooner, Instant},
    transport::{Outgoing, RecvBatch, Transport, BATCH, MAX_DATAGRAM},
};

/// Packets read per turn before timers and sends get a look in.
const READ_BUDGET: usize = 1024;
/// Packets sent per turn before reads get a look in.
const SEND_BUDGET: usize = 2048;
/// While a send waits for socket space, look again at least this often.
pub(super) const BLOCKED_RETRY: Duration = Duration::from_millis(1);
/// An application turn pushes the parked IO thread's alarm later only when it would ring
/// within this long (so a stream of sends costs one `timerfd_settime` per heartbeat
/// interval, not one per message).
const REARM_SLACK: Duration = Duration::from_micros(250);
/// Counters are copied out for `stats()` at most this often while busy.
const STATS_EVERY: Duration = Duration::from_millis(1);
/// Turns without news after which counters are published anyway (busy-poll turns often).
const QUIET_TURNS: u64 = 1024;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Turn {
    /// The loop must stop (closed, linger over).
    pub(crate) stop: bool,
    /// How long the driver may sleep before the next turn (`None`: until something happens).
    /// For the IO thread: the `epoll_wait` timeout, `None` when its alarm is set.
    pub(crate) timeout: Option<Duration>,
}

impl Turn {
    const STOP: Turn = Turn {
        stop: true,
        timeout: None,
    };
}

/// Where a socket is in closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    Open,
    /// The engine closed; waiting for it to flush.
    Flushing,
    /// Flushed; stops at this time.
    Lingering(Instant),
}

/// The engine, the transport and everything a turn needs.
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent flags of the loop, not a state machine"
)]
pub(crate) struct Core<R: Role> {
    engine: R,
    local: R::Local,
    transport: Box<dyn Transport>,
    clock: Clock,
    linger: Duration,
    /// Try the sockets every turn (a busy-polling receiver gets no readiness events).
    poll_every_turn: bool,
    rx_batch: RecvBatch,
    tx_batch: TxBatch,
    /// `in_seq` at the last exchange: equal means the application queued nothing since.
    in_seen: u64,
    /// The application asked to close (seen at an exchange).
    close_requested: bool,
    close: Close,
    /// A socket may hold unread packets (edge-triggered readiness: read until drained).
    readable: bool,
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

impl<R: Role> std::fmt::Debug for Core<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("io", &self.io)
            .field("close", &self.close)
            .finish_non_exhaustive()
    }
}

impl<R: Role> Core<R> {
    pub(super) fn new(
        engine: R,
        local: R::Local,
        transport: Box<dyn Transport>,
        clock: Clock,
        linger: Duration,
        poll_every_turn: bool,
    ) -> Self {
        Core {
            engine,
            local,
            transport,
            clock,
            linger,
            poll_every_turn,
            rx_batch: RecvBatch::new(BATCH, MAX_DATAGRAM),
            tx_batch: TxBatch::new(),
            in_seen: 0,
            close_requested: false,
            close: Close::Open,
            readable: true,
            sent_this_turn: 0,
            polled: 0,
            more_to_send: false,
            published_at: (u64::MAX, u64::MAX),
            stats_at: None,
            idle_turns: 0,
            io: IoStats::default(),
            last_send_error: None,
        }
    }

    /// Runs one turn (see the module docs). `readable`: a readiness event said a socket has
    /// packets.
    pub(crate) fn turn(&mut self, shared: &Shared<R::Queue>, who: Who, readable: bool) -> Turn {
        let now = self.clock.now();
        self.io.loop_turns += 1;
        if matches!(who, Who::Io { .. }) {
            self.io.io_turns += 1;
        }
        if readable || self.poll_every_turn {
            self.readable = true;
        }
        if self.exchange_in(shared, now, who) {
            return Turn::STOP;
        }
        if self.readable && !R::reading_paused(&self.local) {
            self.read(now);
        }
        if self.engine.poll_timeout().is_some_and(|t| t <= now) {
            self.engine.handle_timeout(now);
        }
        self.pump(now);
        if self.close == Close::Flushing && self.engine.is_flushed() {
            self.close = Close::Lingering(now + self.linger);
        }
        if matches!(self.close, Close::Lingering(t) if t <= now) {
            return Turn::STOP;
        }
        let timeout = self.timeout(now);
        let timeout = self.exchange_out(shared, now, timeout, who);
        Turn {
            stop: false,
            timeout,
        }
    }

    /// Takes the application's work and requests, if it left any since the last look. True
    /// when the loop must stop now.
    fn exchange_in(&mut self, shared: &Shared<R::Queue>, now: Instant, who: Who) -> bool {
        let seq = shared.in_seq.load(Ordering::Acquire);
        // The IO thread always looks after a park, to clear the flag (a timer or a packet may
        // have woken it); otherwise an unchanged `in_seq` means there is nothing to take.
        let io = matches!(who, Who::Io { .. });
        if seq != self.in_seen || io {
            let mut st = shared.lock();
            self.in_seen = shared.in_seq.load(Ordering::Acquire);
            if io {
                st.io_awake();
            }
            self.close_requested |= st.close_requested;
            R::take_from_app(&mut st.queue, &mut self.local);
        }
        // Once close is asked for, the application queues nothing new: what is left is local.
        if self.close_requested && self.close == Close::Open && !R::holds_input(&self.local) {
            match self.engine.close(now) {
                Closing::Stop => return true,
                Closing::Linger => self.close = Close::Flushing,
            }
        }
        false
    }

    /// Publishes the role's news and counters; signals waiting application threads. For the
    /// IO thread, decides whether it may park; for an application thread, wakes the IO thread
    /// if the turn left it something to do sooner than it planned. Returns the timeout to use.
    fn exchange_out(
        &mut self,
        shared: &Shared<R::Queue>,
        now: Instant,
        timeout: Option<Duration>,
        who: Who,
    ) -> Option<Duration> {
        let park = matches!(who, Who::Io { .. }) && timeout != Some(Duration::ZERO);
        let moved = (self.io.packets_received, self.io.packets_sent);
        let busy = R::has_news(&self.local) || moved != self.published_at;
        self.idle_turns += 1;
        if !park && !busy && self.idle_turns < QUIET_TURNS {
            return timeout;
        }
        self.idle_turns = 0;
        let mut st = shared.lock();
        let notify = self.engine.give_to_app(&mut self.local, &mut st.queue);
        self.published_at = moved;
        let stale = self
            .stats_at
            .is_none_or(|t| now.saturating_duration_since(t) >= STATS_EVERY);
        if park || stale {
            self.stats_at = Some(now);
            self.publish_stats(&mut st.queue);
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
            shared.publish(&mut st);
        }
        timeout
    }

    /// Copies the counters into `queue`.
    fn publish_stats(&mut self, queue: &mut R::Queue) {
        self.io.transport = self.transport.stats();
        self.engine
            .publish_stats(queue, &self.io, self.last_send_error.as_ref());
    }

    /// The engine (read-only: for snapshots taken while the core is free).
    pub(crate) fn engine(&self) -> &R {
        &self.engine
    }

    /// Copies fresh counters into the shared state (for `stats()`).
    pub(crate) fn refresh_stats(&mut self, shared: &Shared<R::Queue>) {
        let mut st = shared.lock();
        self.publish_stats(&mut st.queue);
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
    }

    /// Feeds the application's work to the engine and sends what it emits, until both are
    /// done, the socket is full or the budget ran out; then collects the engine's news.
    fn pump(&mut self, now: Instant) {
        self.sent_this_turn = 0;
        self.more_to_send = false;
        self.polled = 0;
        loop {
            self.engine.exchange(now, &mut self.local, &mut self.io);
            let before = self.sent_this_turn;
            self.flush(now);
            let progressed = self.sent_this_turn > before;
            if !R::holds_input(&self.local)
                || self.tx_batch.unsent()
                || self.more_to_send
                || !progressed
            {
                break;
            }
        }
        self.engine.exchange(now, &mut self.local, &mut self.io);
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
    pub(super) fn send_blocked(&self) -> bool {
        self.tx_batch.unsent()
    }

    /// How long the driver may sleep.
    fn timeout(&self, now: Instant) -> Option<Duration> {
        if (self.readable && !R::reading_paused(&self.local)) || self.more_to_send {
            // The read or send budget ran out with packets left.
            return Some(Duration::ZERO);
        }
        if self.tx_batch.unsent() {
            // Waiting for a writable edge; the engine's own deadlines are "now".
            return Some(BLOCKED_RETRY);
        }
        let mut at = self.engine.poll_timeout();
        if let Close::Lingering(l) = self.close {
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
    pub(super) fn finish(&mut self, shared: &Shared<R::Queue>, result: io::Result<()>) {
        let now = self.clock.now();
        self.polled = 0;
        self.flush(now);
        self.engine.exchange(now, &mut self.local, &mut self.io);
        let mut st = shared.lock();
        self.engine.give_to_app(&mut self.local, &mut st.queue);
        self.publish_stats(&mut st.queue);
        shared.finish(st, result.err().map(|e| e.to_string()));
    }
}
