//! [`Publisher`]: an [`Encoder`] over a transport [`SendSocket`].
//!
//! # Who drives the linger
//!
//! A batch must leave within the linger even if the application never calls again, and the
//! transport's IO thread has no hook for it, so each publisher runs a small **flusher thread**.
//! It sleeps on a condition variable until the open APDU's deadline, closes the batch and hands
//! it to the transport. The costs:
//!
//! - one mostly-sleeping thread per publisher;
//! - one uncontended mutex lock per send (the encoder is shared with the flusher);
//! - at most one condition-variable signal per batch, and only when the flusher is asleep
//!   without a timer (the application side checks a flag first, so steady sending causes no
//!   extra syscalls);
//! - at most one timed wake-up of the flusher per linger period (~2000/s at 500 µs) while
//!   messages keep arriving, none when idle. Under load APDUs fill up before the deadline and the
//!   flusher finds nothing to do.
//!
//! With a zero linger the flusher only retries APDUs a non-blocking send could not hand over.
//!
//! # Handing APDUs over in runs
//!
//! Full APDUs are held until 16 (`RUN_APDUS`) are ready or the oldest one's linger (counted from
//! when it opened) is over, then handed to the transport in one call, which sends them in one
//! `sendmmsg` (one UDP GSO send for EPGM): under load the kernel's cost per packet is what
//! limits a publisher, and a run costs little more than one packet. No message waits longer
//! than the linger for it; with a zero linger every APDU goes at once.
//!
//! APDUs reach the transport in encoder order: every hand-over happens under the same lock.

use std::{
    collections::VecDeque,
    os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd},
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    thread::{self, JoinHandle},
    time::Duration,
};

use bytes::Bytes;
use epgm::Url;
use pgm::{
    socket::{self, Clock, Role, SendMonitor, SendSocket, SendStats},
    time::Instant,
    wire::Tsi,
};

use crate::{
    encoder::{EncodeError, Encoder, EncoderConfig, EncoderStats},
    options::{ConnectError, Options},
};

/// How soon the flusher retries APDUs the transport's queue refused.
const RETRY: Duration = Duration::from_millis(1);

/// Full APDUs handed to the transport per call under load (see the module docs).
const RUN_APDUS: usize = 16;

/// Sends between two clock readings while an APDU stays open (see [`Inner::now`]).
const CLOCK_EVERY: u32 = 16;

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// A message needs at least one frame (the topic).
    #[error("a message needs at least one frame")]
    EmptyMessage,
    /// The transport's queue is full (non-blocking sends only); the message was not taken.
    #[error("send queue full")]
    WouldBlock,
    /// The publisher is closed.
    #[error("publisher is closed")]
    Closed,
    /// The transport failed.
    #[error("transport failed: {0}")]
    Failed(String),
}

impl From<EncodeError> for SendError {
    fn from(e: EncodeError) -> Self {
        match e {
            EncodeError::EmptyMessage => SendError::EmptyMessage,
        }
    }
}

impl From<socket::SendError> for SendError {
    fn from(e: socket::SendError) -> Self {
        match e {
            socket::SendError::WouldBlock => SendError::WouldBlock,
            socket::SendError::Closed => SendError::Closed,
            socket::SendError::Failed(f) => SendError::Failed(f),
            // APDUs never exceed one packet; should the transport disagree, it is a failure.
            other => SendError::Failed(other.to_string()),
        }
    }
}

/// Counters of a [`Publisher`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublisherStats {
    /// Framing and batching.
    pub encoder: EncoderStats,
    /// The transport (engine and IO).
    pub transport: SendStats,
}

/// What the application threads and the flusher share.
#[derive(Debug)]
struct Inner {
    sock: SendSocket,
    clock: Clock,
    state: Mutex<State>,
    /// Wakes the flusher.
    cond: Condvar,
}

#[derive(Debug)]
struct State {
    enc: Encoder,
    /// The flusher is blocked on `cond`.
    flusher_waiting: bool,
    /// ...until this instant (`None`: until signalled).
    flusher_until: Option<Instant>,
    /// Stop the flusher.
    stop: bool,
    /// The transport failed; every later send reports it.
    failure: Option<SendError>,
    /// APDUs on their way to the transport (kept to reuse its allocation).
    out: VecDeque<Bytes>,
    /// The last clock reading of a send, and sends since (see [`Inner::now`]).
    now: Instant,
    sends_since_clock: u32,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The time for a send: read afresh when the push opens an APDU (its deadline counts from
    /// then) and every [`CLOCK_EVERY`] sends, else the last reading. A stale reading only
    /// makes deadlines earlier; the flusher reads the clock itself. Saves a clock read on
    /// most small messages.
    fn now(&self, st: &mut State) -> Instant {
        st.sends_since_clock += 1;
        if st.enc.open_len() == 0 || st.sends_since_clock >= CLOCK_EVERY {
            st.sends_since_clock = 0;
            st.now = self.clock.now();
        }
        st.now
    }

    /// Hands every ready APDU to the transport in one call, waiting for queue space.
    fn drain_blocking(&self, st: &mut State) -> Result<(), SendError> {
        st.enc.take_ready_into(&mut st.out);
        if st.out.is_empty() {
            return Ok(());
        }
        // On an error the socket is closed or failed: what it did not take is moot.
        let r = self.sock.send_many(st.out.drain(..));
        r.map_err(|e| Self::fail(st, e))
    }

    /// Hands ready APDUs to the transport while its queue takes them; false when some are
    /// left.
    fn drain_nonblocking(&self, st: &mut State) -> Result<bool, SendError> {
        st.enc.take_ready_into(&mut st.out);
        while !st.out.is_empty() {
            match self.sock.try_send_many(&mut st.out) {
                Ok(_) => {}
                Err(e) => {
                    st.enc.unpoll_all(&mut st.out);
                    return match e {
                        socket::SendError::WouldBlock => Ok(false),
                        e => Err(Self::fail(st, e)),
                    };
                }
            }
        }
        Ok(true)
    }

    /// Whether the ready APDUs go now: a run is complete or the oldest one's linger is over.
    fn hand_over(st: &State, now: Instant) -> bool {
        st.enc.ready_len() >= RUN_APDUS || st.enc.ready_due(now)
    }

    fn fail(st: &mut State, e: socket::SendError) -> SendError {
        let e = SendError::from(e);
        if e != SendError::WouldBlock {
            st.failure = Some(e.clone());
        }
        e
    }

    /// Wakes the flusher if it sleeps past what it now has to do.
    fn arm(&self, st: &State, now: Instant) {
        if !st.flusher_waiting {
            // It is running and will look at the state before it sleeps again.
            return;
        }
        let due = if st.enc.ready_due(now) {
            Some(now + RETRY)
        } else {
            st.enc.poll_timeout()
        };
        if let Some(due) = due {
            if st.flusher_until.is_none_or(|u| due < u) {
                self.cond.notify_one();
            }
        }
    }

    /// The flusher thread.
    fn run_flusher(&self) {
        let mut st = self.lock();
        loop {
            if st.stop {
                return;
            }
            let now = self.clock.now();
            st.enc.handle_timeout(now);
            let backlog = st.failure.is_none()
                && Inner::hand_over(&st, now)
                && !self.drain_nonblocking(&mut st).unwrap_or(true);
            let until = if backlog {
                Some(now + RETRY)
            } else if st.failure.is_none() {
                st.enc.poll_timeout()
            } else {
                None
            };
            st.flusher_waiting = true;
            st.flusher_until = until;
            st = match until {
                None => self.cond.wait(st).unwrap_or_else(PoisonError::into_inner),
                Some(u) => {
                    self.cond
                        .wait_timeout(st, u - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
            st.flusher_waiting = false;
        }
    }
}

/// Publishes multi-frame messages to an endpoint, batched and framed like a libzmq PUB.
///
/// Every method takes `&self`: one publisher may be shared between threads (messages from one
/// `send` call stay contiguous). Subscriptions never reach a publisher: it sends everything,
/// and subscribers filter (docs/wire-compatibility.md §12). Dropping it closes it like
/// [`Publisher::close`].
#[derive(Debug)]
pub struct Publisher {
    inner: Arc<Inner>,
    /// Taken by the first close.
    flusher: Mutex<Option<JoinHandle<()>>>,
}

impl Publisher {
    /// Opens a publisher on `endpoint`: `pgm://IFACE;GROUP:PORT` (raw IP, needs CAP_NET_RAW) or
    /// `epgm://IFACE;GROUP:PORT` (UDP).
    pub fn connect(endpoint: &str, options: &Options) -> Result<Self, ConnectError> {
        options.check_unsharded()?;
        let url = Url::parse(endpoint).map_err(socket::OpenError::from)?;
        let transport = epgm::open_transport(&url, &options.transport, Role::Sender)?;
        let max_payload = options.payload_for(transport.ip_overhead())?;
        let enc = Encoder::new(EncoderConfig {
            max_payload,
            linger: options.batch_linger,
        })
        .map_err(|_| ConnectError::MaxPayload {
            max_payload,
            limit: crate::encoder::MAX_PAYLOAD,
        })?;
        let sock = SendSocket::open(&url.endpoint, &options.transport.socket, transport)?;
        let inner = Arc::new(Inner {
            sock,
            clock: Clock::new(),
            state: Mutex::new(State {
                enc,
                flusher_waiting: false,
                flusher_until: None,
                stop: false,
                failure: None,
                out: VecDeque::with_capacity(RUN_APDUS),
                now: Instant::ZERO,
                sends_since_clock: 0,
            }),
            cond: Condvar::new(),
        });
        let flusher = {
            let inner = Arc::clone(&inner);
            thread::Builder::new()
                .name("pubsub-flusher".into())
                .spawn(move || inner.run_flusher())
                .map_err(socket::OpenError::from)?
        };
        Ok(Publisher {
            inner,
            flusher: Mutex::new(Some(flusher)),
        })
    }

    /// Same as [`Publisher::connect`]: for PGM, libzmq treats `bind` as `connect`.
    pub fn bind(endpoint: &str, options: &Options) -> Result<Self, ConnectError> {
        Self::connect(endpoint, options)
    }

    /// Our session identifier (what subscribers see as [`crate::Message::tsi`]).
    pub fn tsi(&self) -> Tsi {
        self.inner.sock.tsi()
    }

    /// The APDU size in use.
    pub fn max_payload(&self) -> usize {
        self.inner.lock().enc.config().max_payload
    }

    /// Sends a two-frame message: `topic`, then `payload`. Blocks while the transport's queue
    /// is full.
    pub fn send(&self, topic: &[u8], payload: &[u8]) -> Result<(), SendError> {
        self.send_multipart(&[topic, payload])
    }

    /// Sends a message of one or more frames; the first is the topic subscribers filter on.
    /// Blocks while the transport's queue is full.
    pub fn send_multipart<B: AsRef<[u8]>>(&self, frames: &[B]) -> Result<(), SendError> {
        let inner = &self.inner;
        let mut st = inner.lock();
        if let Some(f) = &st.failure {
            return Err(f.clone());
        }
        let now = inner.now(&mut st);
        st.enc.push(now, frames)?;
        if Inner::hand_over(&st, now) {
            inner.drain_blocking(&mut st)?;
        }
        inner.arm(&st, now);
        Ok(())
    }

    /// Like [`Publisher::send`], but fails with [`SendError::WouldBlock`] instead of waiting.
    pub fn try_send(&self, topic: &[u8], payload: &[u8]) -> Result<(), SendError> {
        self.try_send_multipart(&[topic, payload])
    }

    /// Like [`Publisher::send_multipart`], but never waits: when APDUs of earlier messages
    /// are still waiting for the transport's queue, the message is refused with
    /// [`SendError::WouldBlock`]. A taken message whose APDUs the queue cannot hold yet is
    /// kept and handed over by the flusher or the next call.
    pub fn try_send_multipart<B: AsRef<[u8]>>(&self, frames: &[B]) -> Result<(), SendError> {
        if frames.is_empty() {
            return Err(SendError::EmptyMessage);
        }
        let inner = &self.inner;
        let mut st = inner.lock();
        if let Some(f) = &st.failure {
            return Err(f.clone());
        }
        let now = inner.now(&mut st);
        if st.enc.ready_due(now) && !inner.drain_nonblocking(&mut st)? {
            return Err(SendError::WouldBlock);
        }
        st.enc.push(now, frames)?;
        if Inner::hand_over(&st, now) {
            inner.drain_nonblocking(&mut st)?;
        }
        inner.arm(&st, now);
        Ok(())
    }

    /// Sends the open batch now and waits until everything sent so far is on the wire.
    pub fn flush(&self) -> Result<(), SendError> {
        {
            let mut st = self.inner.lock();
            if let Some(f) = &st.failure {
                return Err(f.clone());
            }
            st.enc.flush();
            self.inner.drain_blocking(&mut st)?;
        }
        self.inner.sock.flush().map_err(SendError::from)
    }

    /// Counters.
    pub fn stats(&self) -> PublisherStats {
        PublisherStats {
            encoder: self.inner.lock().enc.stats(),
            transport: self.inner.sock.stats(),
        }
    }

    /// A handle that reads the transport's counters from another thread (a metrics
    /// exporter); the encoder's stay with [`Publisher::stats`].
    pub fn monitor(&self) -> SendMonitor {
        self.inner.sock.monitor()
    }

    /// Sends the open batch, stops the flusher, and closes the transport (which keeps
    /// answering NAKs for its linger time, then sends FIN). Calling it again (or while
    /// another thread is closing) does nothing.
    pub fn close(&self) -> Result<(), SendError> {
        let flusher = self
            .flusher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(flusher) = flusher else {
            return Ok(());
        };
        let sent = {
            let mut st = self.inner.lock();
            st.stop = true;
            self.inner.cond.notify_one();
            st.enc.flush();
            if st.failure.is_none() {
                self.inner.drain_blocking(&mut st)
            } else {
                Ok(())
            }
        };
        let _ = flusher.join();
        sent.and(self.inner.sock.close().map_err(SendError::from))
    }
}

/// The transport's readiness descriptor: writable while its send queue has room for the next
/// APDU, level-triggered (see [`SendSocket`]'s `AsFd`). After [`SendError::WouldBlock`] from
/// [`Publisher::try_send`], wait for writability, then try again.
impl AsFd for Publisher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.sock.as_fd()
    }
}

impl AsRawFd for Publisher {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.sock.as_raw_fd()
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
