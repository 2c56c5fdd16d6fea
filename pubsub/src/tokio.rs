//! [`AsyncPublisher`] and [`AsyncSubscriber`] for tokio (feature `tokio`).
//!
//! They are the blocking [`Publisher`] and [`Subscriber`] driven through their transports'
//! readiness descriptors and tokio's reactor: decoding and filtering still run inside the
//! receive call on the task's thread, a send that finds the transport's queue full waits as
//! an `.await`, and no thread is added (docs/async.md). Every future is cancel-safe: dropped
//! before it completes, a `recv` has taken nothing and a `send` has sent nothing.

use std::{io, os::fd::AsRawFd, sync::Arc};

use pgm::socket::{
    tokio::{register, ReadyFd, RecvReadiness},
    RecvMonitor, SendMonitor,
};
use tokio::io::{unix::AsyncFd, Interest};

use crate::{
    ConnectError, Options, Publisher, PublisherStats, RecvError, RecvEvent, SendError, Subscriber,
    SubscriberStats, Tsi,
};

fn open_error(e: io::Error) -> ConnectError {
    ConnectError::Open(pgm::socket::OpenError::from(e))
}

/// A [`Subscriber`] for tokio: `recv().await`.
#[derive(Debug)]
pub struct AsyncSubscriber {
    // Declared first: deregistered before the subscriber closes the descriptors.
    ready: RecvReadiness,
    sub: Subscriber,
}

impl AsyncSubscriber {
    /// Opens a subscriber (see [`Subscriber::connect`]). Must be called inside a tokio runtime
    /// with IO enabled.
    pub fn connect(endpoint: &str, options: &Options) -> Result<Self, ConnectError> {
        Self::new(Subscriber::connect(endpoint, options)?).map_err(open_error)
    }

    /// Wraps an open subscriber.
    pub fn new(sub: Subscriber) -> io::Result<Self> {
        // SAFETY: `ready` is declared before `sub`, and `into_inner` drops it first.
        let ready = unsafe { RecvReadiness::new(sub.as_raw_fd(), &sub.socket_fds()) }?;
        Ok(AsyncSubscriber { ready, sub })
    }

    /// Adds a subscription (see [`Subscriber::subscribe`]).
    pub fn subscribe(&mut self, prefix: impl AsRef<[u8]>) {
        self.sub.subscribe(prefix);
    }

    /// Drops one reference to a subscription (see [`Subscriber::unsubscribe`]).
    pub fn unsubscribe(&mut self, prefix: impl AsRef<[u8]>) -> bool {
        self.sub.unsubscribe(prefix)
    }

    /// The next message or gap, waiting as long as it takes. Cancel-safe.
    pub async fn recv(&mut self) -> Result<RecvEvent, RecvError> {
        let sub = &mut self.sub;
        self.ready
            .until(|| match sub.try_recv() {
                Err(RecvError::Empty) => None,
                r => Some(r),
            })
            .await
            .map_err(|e| RecvError::Failed(e.to_string()))?
    }

    /// The next message or gap if one is ready, else [`RecvError::Empty`].
    pub fn try_recv(&mut self) -> Result<RecvEvent, RecvError> {
        self.sub.try_recv()
    }

    /// Counters.
    pub fn stats(&self) -> SubscriberStats {
        self.sub.stats()
    }

    /// See [`Subscriber::monitor`].
    pub fn monitor(&self) -> RecvMonitor {
        self.sub.monitor()
    }

    /// Stops the transport (queued data is dropped).
    pub fn close(&mut self) {
        self.sub.close();
    }

    /// The blocking subscriber back.
    pub fn into_inner(self) -> Subscriber {
        let AsyncSubscriber { ready, sub } = self;
        drop(ready);
        sub
    }
}

/// A [`Publisher`] for tokio: `send(topic, payload).await` waits while the transport's queue
/// is full.
///
/// Dropping it closes it like [`Publisher::close`], which blocks the runtime's thread while
/// the transport lingers: prefer [`AsyncPublisher::close`].
#[derive(Debug)]
pub struct AsyncPublisher {
    // Declared first: deregistered before the publisher closes the descriptor.
    ready: AsyncFd<ReadyFd>,
    publisher: Arc<Publisher>,
}

impl AsyncPublisher {
    /// Opens a publisher (see [`Publisher::connect`]). Must be called inside a tokio runtime
    /// with IO enabled.
    pub fn connect(endpoint: &str, options: &Options) -> Result<Self, ConnectError> {
        Self::new(Publisher::connect(endpoint, options)?).map_err(open_error)
    }

    /// Wraps an open publisher.
    pub fn new(publisher: Publisher) -> io::Result<Self> {
        // SAFETY: `ready` is declared before `publisher`: it drops first.
        let ready = unsafe { register(publisher.as_raw_fd(), Interest::WRITABLE) }?;
        Ok(AsyncPublisher {
            ready,
            publisher: Arc::new(publisher),
        })
    }

    /// Our session identifier.
    pub fn tsi(&self) -> Tsi {
        self.publisher.tsi()
    }

    /// The APDU size in use.
    pub fn max_payload(&self) -> usize {
        self.publisher.max_payload()
    }

    /// Sends a two-frame message: `topic`, then `payload`, waiting while the transport's
    /// queue is full. Cancel-safe.
    pub async fn send(&self, topic: &[u8], payload: &[u8]) -> Result<(), SendError> {
        self.send_multipart(&[topic, payload]).await
    }

    /// Sends a message of one or more frames (the first is the topic), waiting while the
    /// transport's queue is full. Cancel-safe.
    pub async fn send_multipart<B: AsRef<[u8]>>(&self, frames: &[B]) -> Result<(), SendError> {
        match self.publisher.try_send_multipart(frames) {
            Err(SendError::WouldBlock) => {}
            r => return r,
        }
        loop {
            let mut guard = self
                .ready
                .writable()
                .await
                .map_err(|e| SendError::Failed(e.to_string()))?;
            match self.publisher.try_send_multipart(frames) {
                Err(SendError::WouldBlock) => guard.clear_ready(),
                r => return r,
            }
        }
    }

    /// Like [`Publisher::try_send`]: never waits.
    pub fn try_send(&self, topic: &[u8], payload: &[u8]) -> Result<(), SendError> {
        self.publisher.try_send(topic, payload)
    }

    /// Sends the open batch and waits until everything sent so far is on the wire (on a
    /// blocking-pool thread: it waits on the transport's IO thread).
    pub async fn flush(&self) -> Result<(), SendError> {
        let p = Arc::clone(&self.publisher);
        tokio::task::spawn_blocking(move || p.flush())
            .await
            .map_err(|e| SendError::Failed(e.to_string()))?
    }

    /// Sends the open batch and closes the transport (it lingers for NAKs, then sends FIN),
    /// on a blocking-pool thread. Calling it again does nothing; the counters stay readable.
    pub async fn close(&self) -> Result<(), SendError> {
        let p = Arc::clone(&self.publisher);
        tokio::task::spawn_blocking(move || p.close())
            .await
            .map_err(|e| SendError::Failed(e.to_string()))?
    }

    /// Counters.
    pub fn stats(&self) -> PublisherStats {
        self.publisher.stats()
    }

    /// See [`Publisher::monitor`].
    pub fn monitor(&self) -> SendMonitor {
        self.publisher.monitor()
    }
}
