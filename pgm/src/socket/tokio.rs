//! Async sockets for tokio (feature `tokio`): [`AsyncRecvSocket`] and [`AsyncSendSocket`].
//!
//! They wrap the blocking sockets and wait through tokio's reactor: no thread of their own,
//! and no extra thread hop per message. A receive first takes what is queued, draining the
//! sockets itself as [`RecvSocket::try_recv`] does; only when nothing is there does the task
//! wait, on the transport's sockets and the readiness descriptor (events the IO thread
//! queued: timers, or packets it read) together ([`RecvReadiness`]). While the task keeps
//! receiving, the IO thread stands by, as for a blocking receiver. A send queues the message
//! when the send queue has room, else the task waits on the sender's readiness descriptor
//! until it has: backpressure is an `.await`, not a blocked thread.
//!
//! Every future here is cancel-safe: dropped before it completes, it has taken nothing
//! (`recv`) or queued nothing (`send`).

use std::{
    future::poll_fn,
    io,
    os::fd::{AsRawFd, RawFd},
    sync::Arc,
    task::Poll,
};

use bytes::Bytes;
use tokio::io::{
    unix::{AsyncFd, AsyncFdReadyGuard},
    Interest,
};

use super::{RecvError, RecvSocket, RecvStats, SendError, SendSocket, SendStats};
use crate::event::Event;

/// A socket's readiness descriptor as tokio registers it (the socket owns the eventfd and
/// outlives the registration: the wrappers drop it first).
#[derive(Debug)]
pub struct ReadyFd(RawFd);

impl AsRawFd for ReadyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Registers a socket's readiness descriptor (`as_raw_fd()` of a [`SendSocket`] or
/// [`RecvSocket`], or of what wraps one) for `interest` with the current tokio runtime's
/// reactor; a clear error outside a runtime (where tokio would panic). For crates that wrap
/// the sockets the way this module does (the `pubsub` crate).
///
/// # Safety
///
/// The socket that owns `fd` must outlive the returned `AsyncFd` (declare the `AsyncFd`
/// field before the socket's, so that it drops first).
pub unsafe fn register(fd: RawFd, interest: Interest) -> io::Result<AsyncFd<ReadyFd>> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(io::Error::other(
            "an async socket must be created inside a tokio runtime (with IO enabled)",
        ));
    }
    // SAFETY: upheld by the caller: `fd` stays open for the registration's lifetime.
    unsafe { AsyncFd::register_with_interest(ReadyFd(fd), interest) }.map_err(io::Error::from)
}

/// What a receiver waits on in tokio's reactor: its readiness descriptor and the transport's
/// sockets (see [`RecvSocket::socket_fds`]). For crates that wrap a receiver the way this
/// module does (the `pubsub` crate's `AsyncSubscriber`).
#[derive(Debug)]
pub struct RecvReadiness {
    fds: Vec<AsyncFd<ReadyFd>>,
}

impl RecvReadiness {
    /// Registers a receiver's readiness descriptor (`as_raw_fd()`) and its sockets
    /// (`socket_fds()`) with the current runtime's reactor.
    ///
    /// # Safety
    ///
    /// The receiver that owns the descriptors must outlive the returned value (declare it
    /// before the receiver's field, so that it drops first).
    pub unsafe fn new(ready_fd: RawFd, socket_fds: &[RawFd]) -> io::Result<Self> {
        let fds = std::iter::once(ready_fd)
            .chain(socket_fds.iter().copied())
            // SAFETY: upheld by the caller.
            .map(|fd| unsafe { register(fd, Interest::READABLE) })
            .collect::<io::Result<_>>()?;
        Ok(RecvReadiness { fds })
    }

    /// Calls `try_op` (a non-blocking receive: `None` when nothing is ready) until it yields,
    /// waiting for readiness in between. Cancel-safe as far as `try_op` is: it is only ever
    /// called synchronously.
    pub async fn until<T>(&self, mut try_op: impl FnMut() -> Option<T>) -> io::Result<T> {
        if let Some(t) = try_op() {
            return Ok(t);
        }
        loop {
            let ready = self.any_readable().await?;
            if let Some(t) = try_op() {
                return Ok(t);
            }
            // Nothing after all: forget what woke us. Cleared only where no newer readiness
            // arrived since (tokio compares its readiness tick), so no wake-up is lost.
            for mut g in ready {
                g.clear_ready();
            }
        }
    }

    /// Waits until some descriptor is readable; the guards of all that are.
    async fn any_readable(&self) -> io::Result<Vec<AsyncFdReadyGuard<'_, ReadyFd>>> {
        poll_fn(|cx| {
            let mut ready = Vec::new();
            for fd in &self.fds {
                match fd.poll_read_ready(cx) {
                    Poll::Ready(Ok(g)) => ready.push(g),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            if ready.is_empty() {
                Poll::Pending
            } else {
                Poll::Ready(Ok(ready))
            }
        })
        .await
    }
}

/// A [`RecvSocket`] for tokio: `recv().await`.
#[derive(Debug)]
pub struct AsyncRecvSocket {
    // Declared first: deregistered before the socket closes the descriptors.
    ready: RecvReadiness,
    sock: RecvSocket,
}

impl AsyncRecvSocket {
    /// Wraps an open receiver. Must be called inside a tokio runtime with IO enabled.
    pub fn new(sock: RecvSocket) -> io::Result<Self> {
        // SAFETY: `ready` is declared before `sock`, and `into_inner` drops it first.
        let ready = unsafe { RecvReadiness::new(sock.as_raw_fd(), &sock.socket_fds()) }?;
        Ok(AsyncRecvSocket { ready, sock })
    }

    /// The next event, waiting as long as it takes. Cancel-safe.
    pub async fn recv(&self) -> Result<Event, RecvError> {
        self.ready
            .until(|| match self.sock.try_recv() {
                Err(RecvError::Empty) => None,
                r => Some(r),
            })
            .await
            .map_err(failed_recv)?
    }

    /// Appends every event that is ready to `out`, waiting until there is at least one;
    /// returns how many. Cancel-safe.
    pub async fn recv_many(&self, out: &mut Vec<Event>) -> Result<usize, RecvError> {
        self.ready
            .until(|| match self.sock.try_recv_many(out) {
                Ok(0) => None,
                r => Some(r),
            })
            .await
            .map_err(failed_recv)?
    }

    /// The next event if one is ready, else [`RecvError::Empty`] (no waiting).
    pub fn try_recv(&self) -> Result<Event, RecvError> {
        self.sock.try_recv()
    }

    /// Counters (see [`RecvSocket::stats`]).
    pub fn stats(&self) -> RecvStats {
        self.sock.stats()
    }

    /// The blocking socket underneath (its monitor, endpoint…).
    pub fn get_ref(&self) -> &RecvSocket {
        &self.sock
    }

    /// The blocking socket back.
    pub fn into_inner(self) -> RecvSocket {
        let AsyncRecvSocket { ready, sock } = self;
        drop(ready);
        sock
    }
}

/// A [`SendSocket`] for tokio: `send(msg).await` waits for room in the send queue.
///
/// Dropping it closes the socket like [`SendSocket::close`], which blocks the runtime's
/// thread for up to the linger time: prefer [`AsyncSendSocket::close`].
#[derive(Debug)]
pub struct AsyncSendSocket {
    // Declared first: deregistered before the socket closes the descriptor.
    ready: AsyncFd<ReadyFd>,
    sock: Arc<SendSocket>,
}

impl AsyncSendSocket {
    /// Wraps an open sender. Must be called inside a tokio runtime with IO enabled.
    pub fn new(sock: SendSocket) -> io::Result<Self> {
        // SAFETY: `ready` is declared before `sock`: it drops first.
        let ready = unsafe { register(sock.as_raw_fd(), Interest::WRITABLE) }?;
        Ok(AsyncSendSocket {
            ready,
            sock: Arc::new(sock),
        })
    }

    /// Queues one message (copied), waiting while the send queue is full. Cancel-safe: a
    /// dropped future queued nothing.
    pub async fn send(&self, msg: &[u8]) -> Result<(), SendError> {
        self.send_bytes(Bytes::copy_from_slice(msg)).await
    }

    /// Like [`AsyncSendSocket::send`], without a copy.
    pub async fn send_bytes(&self, msg: Bytes) -> Result<(), SendError> {
        match self.sock.try_send_bytes(msg.clone()) {
            Err(SendError::WouldBlock) => {}
            r => return r,
        }
        loop {
            let mut guard = self.ready.writable().await.map_err(failed_send)?;
            match self.sock.try_send_bytes(msg.clone()) {
                Err(SendError::WouldBlock) => guard.clear_ready(),
                r => return r,
            }
        }
    }

    /// Queues one message if the send queue has room, else [`SendError::WouldBlock`].
    pub fn try_send(&self, msg: &[u8]) -> Result<(), SendError> {
        self.sock.try_send(msg)
    }

    /// Waits until every queued message has been transmitted once (on a blocking-pool thread:
    /// this is rare and waits on the IO thread's progress).
    pub async fn flush(&self) -> Result<(), SendError> {
        let sock = Arc::clone(&self.sock);
        tokio::task::spawn_blocking(move || sock.flush())
            .await
            .map_err(failed_send)?
    }

    /// Sends what is queued, FIN, lingers for NAKs and stops (see [`SendSocket::close`]), on
    /// a blocking-pool thread. Calling it again does nothing; the counters stay readable.
    pub async fn close(&self) -> Result<(), SendError> {
        let sock = Arc::clone(&self.sock);
        tokio::task::spawn_blocking(move || sock.close())
            .await
            .map_err(failed_send)?
    }

    /// Counters (see [`SendSocket::stats`]).
    pub fn stats(&self) -> SendStats {
        self.sock.stats()
    }

    /// The blocking socket underneath (its TSI, monitor, sizes…).
    pub fn get_ref(&self) -> &SendSocket {
        &self.sock
    }
}

fn failed_recv(e: impl std::fmt::Display) -> RecvError {
    RecvError::Failed(e.to_string())
}

fn failed_send(e: impl std::fmt::Display) -> SendError {
    SendError::Failed(e.to_string())
}
