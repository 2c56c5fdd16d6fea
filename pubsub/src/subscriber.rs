//! [`Subscriber`]: a [`Decoder`] over a transport [`RecvSocket`].
//!
//! Decoding and filtering run on the application's thread, inside `recv`: the transport hands
//! over whole APDUs as [`bytes::Bytes`], the decoder slices messages out of them without copying
//! and skips the ones the filter rejects. With a buffering [`SlowConsumer`](crate::SlowConsumer) policy they run
//! on a drain thread instead, and `recv` takes from its bounded buffer (`drain.rs`,
//! docs/slow-consumers.md).

use std::{
    os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd},
    sync::Arc,
    time::Duration,
};

use epgm::Url;
use pgm::socket::{self, Clock, RecvMonitor, RecvSocket, RecvStats, Role};

use crate::{
    decoder::{Decoder, DecoderConfig, DecoderStats, RecvEvent},
    drain::{Drain, FilterOp},
    options::{ConnectError, Options},
    slow_consumer::{PolicyBuffer, PolicyStats},
};

pub use pgm::socket::RecvError;

/// Counters of a [`Subscriber`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriberStats {
    /// Framing and filtering: received, filtered_out, gaps, decode errors…
    pub decoder: DecoderStats,
    /// The transport (engine and IO).
    pub transport: RecvStats,
    /// The slow-consumer policy's buffer (all zero with [`SlowConsumer::Block`](crate::SlowConsumer::Block)).
    pub policy: PolicyStats,
}

/// How long a receive may wait.
#[derive(Clone, Copy)]
enum Wait {
    Forever,
    /// This long from the first time the receive has to wait.
    For(Duration),
    /// Until this much time after the clock's epoch.
    Until(Duration),
    No,
}

/// Receives messages from every publisher on an endpoint, filtered by topic prefix, like a
/// libzmq SUB.
///
/// A new subscriber delivers nothing until [`Subscriber::subscribe`] is called (the empty
/// prefix subscribes to everything). Subscriptions stay local: nothing is sent upstream.
#[derive(Debug)]
pub struct Subscriber {
    sock: Arc<RecvSocket>,
    /// With a drain, only its filter is used: a copy of the drain's, for `unsubscribe`'s answer.
    dec: Decoder,
    clock: Clock,
    /// Set for the buffering slow-consumer policies.
    drain: Option<Drain>,
}

impl Subscriber {
    /// Opens a subscriber on `endpoint`: `pgm://IFACE;GROUP:PORT` (raw IP, needs CAP_NET_RAW)
    /// or `epgm://IFACE;GROUP:PORT` (UDP).
    pub fn connect(endpoint: &str, options: &Options) -> Result<Self, ConnectError> {
        options.check_unsharded()?;
        let url = Url::parse(endpoint).map_err(socket::OpenError::from)?;
        let transport_options = options.subscriber_transport();
        let transport = epgm::open_transport(&url, &transport_options, Role::Receiver)?;
        let sock = Arc::new(RecvSocket::open(
            &url.endpoint,
            &transport_options.socket,
            transport,
        )?);
        let config = DecoderConfig {
            max_message_size: options.max_message_size,
        };
        let decoder = || Decoder::new(config).with_join(options.join);
        let drain = match PolicyBuffer::new(options.slow_consumer) {
            None => None,
            Some(buf) => Some(
                Drain::spawn(Arc::clone(&sock), decoder(), buf).map_err(socket::OpenError::from)?,
            ),
        };
        Ok(Subscriber {
            sock,
            dec: decoder(),
            clock: Clock::new(),
            drain,
        })
    }

    /// Same as [`Subscriber::connect`]: for PGM, libzmq treats `bind` as `connect`.
    pub fn bind(endpoint: &str, options: &Options) -> Result<Self, ConnectError> {
        Self::connect(endpoint, options)
    }

    /// Adds a subscription: messages whose first frame starts with `prefix` are delivered.
    /// Subscribing twice needs two unsubscribes. Applies from the next message start.
    pub fn subscribe(&mut self, prefix: impl AsRef<[u8]>) {
        if let Some(d) = &self.drain {
            d.filter(FilterOp::Subscribe(prefix.as_ref().to_vec()));
        }
        self.dec.filter_mut().subscribe(prefix);
    }

    /// Drops one reference to a subscription; false when it was not subscribed.
    pub fn unsubscribe(&mut self, prefix: impl AsRef<[u8]>) -> bool {
        let was = self.dec.filter_mut().unsubscribe(prefix.as_ref());
        if let (true, Some(d)) = (was, &self.drain) {
            d.filter(FilterOp::Unsubscribe(prefix.as_ref().to_vec()));
        }
        was
    }

    /// The next message or gap, waiting as long as it takes.
    pub fn recv(&mut self) -> Result<RecvEvent, RecvError> {
        self.next(Wait::Forever)
    }

    /// The next message or gap, or [`RecvError::Timeout`] after `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<RecvEvent, RecvError> {
        self.next(Wait::For(timeout))
    }

    /// The next message or gap if one is ready, else [`RecvError::Empty`].
    pub fn try_recv(&mut self) -> Result<RecvEvent, RecvError> {
        self.next(Wait::No)
    }

    fn next(&mut self, mut wait: Wait) -> Result<RecvEvent, RecvError> {
        if let Some(d) = &self.drain {
            return match wait {
                Wait::Forever => d.recv(None),
                Wait::For(t) => d.recv(Some(t)),
                Wait::Until(_) | Wait::No => d.recv(Some(Duration::ZERO)).map_err(|e| match e {
                    RecvError::Timeout => RecvError::Empty,
                    e => e,
                }),
            };
        }
        loop {
            if let Some(ev) = self.dec.poll_event() {
                return Ok(ev);
            }
            let ev = match wait {
                Wait::Forever => self.sock.recv()?,
                Wait::No => self.sock.try_recv()?,
                // Most calls find data queued: the clock is read only once one has to wait.
                Wait::For(timeout) => match self.sock.try_recv() {
                    Err(RecvError::Empty) => {
                        wait = Wait::Until(self.clock.elapsed() + timeout);
                        continue;
                    }
                    r => r?,
                },
                Wait::Until(deadline) => {
                    let left = deadline.saturating_sub(self.clock.elapsed());
                    if left.is_zero() {
                        return Err(RecvError::Timeout);
                    }
                    self.sock.recv_timeout(left)?
                }
            };
            feed(&mut self.dec, ev);
        }
    }

    /// Counters.
    pub fn stats(&self) -> SubscriberStats {
        let (decoder, policy) = match &self.drain {
            Some(d) => d.stats(),
            None => (self.dec.stats(), PolicyStats::default()),
        };
        SubscriberStats {
            decoder,
            transport: self.sock.stats(),
            policy,
        }
    }

    /// A handle that reads the transport's counters and per-publisher snapshot from another
    /// thread (a metrics exporter); the decoder's stay with [`Subscriber::stats`].
    pub fn monitor(&self) -> RecvMonitor {
        self.sock.monitor()
    }

    /// The transport's sockets, for an event loop that watches them as well as the
    /// readiness descriptor (see [`RecvSocket::socket_fds`]). None with a buffering
    /// [`SlowConsumer`](crate::SlowConsumer) policy: its drain thread reads them.
    pub fn socket_fds(&self) -> Vec<RawFd> {
        if self.drain.is_some() {
            return Vec::new();
        }
        self.sock.socket_fds()
    }

    /// Stops the transport. Queued data is dropped. Calling it again does nothing.
    pub fn close(&mut self) {
        self.sock.close();
        if let Some(d) = &mut self.drain {
            d.close();
        }
    }
}

/// The transport's readiness descriptor: readable while the transport has events queued,
/// level-triggered (see [`RecvSocket`]'s `AsFd`). Messages already decoded are not counted:
/// after a wake-up, call [`Subscriber::try_recv`] until [`RecvError::Empty`]. With a
/// buffering [`SlowConsumer`](crate::SlowConsumer) policy: readable while the policy buffer holds something.
impl AsFd for Subscriber {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.drain {
            Some(d) => d.ready_fd(),
            None => self.sock.as_fd(),
        }
    }
}

impl AsRawFd for Subscriber {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

/// Hands one transport event to the decoder.
pub(crate) fn feed(dec: &mut Decoder, ev: pgm::Event) {
    match ev {
        pgm::Event::Data { tsi, apdu } => dec.handle_data(tsi, &apdu),
        pgm::Event::Loss { tsi, count, .. } => dec.handle_loss(tsi, count),
        pgm::Event::PeerExpired { tsi } => dec.handle_peer_gone(tsi),
        pgm::Event::CaughtUp { tsi } => dec.handle_caught_up(tsi),
        // A new peer starts unjoined on its first data; nothing to do before that.
        _ => {}
    }
}
