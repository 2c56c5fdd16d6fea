//! The application side: [`SendSocket`] and [`RecvSocket`].

use std::{
    sync::Arc,
    thread::{self, JoinHandle},
    time::Duration,
};

use bytes::Bytes;

use super::{
    driver::{event_size, Driver, Shared},
    Clock, Endpoint, OpenError, RecvError, RecvEvent, RecvStats, Role, SendError, SendStats,
    SocketOptions,
};
use crate::{receiver::Receiver, source::Source, transport::Transport, wire::Tsi};

/// Starts the IO thread for `engine` over `transport`.
fn spawn<E: super::driver::Engine>(
    name: &str,
    engine: E,
    transport: Box<dyn Transport>,
    clock: Clock,
    opts: &SocketOptions,
) -> Result<(Arc<Shared>, JoinHandle<()>), OpenError> {
    let (driver, shared) = Driver::new(engine, transport, clock, opts.linger, opts.recv_queue)?;
    let thread = thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || driver.run())?;
    Ok((shared, thread))
}

/// A PGM sender. Messages go out in order, as ODATA (fragmented when larger than one TPDU);
/// a background thread answers NAKs from the transmit window.
///
/// Dropping it closes it like [`SendSocket::close`], which blocks for up to the linger time.
#[derive(Debug)]
pub struct SendSocket {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    endpoint: Endpoint,
    tsi: Tsi,
    queue_limit: usize,
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
        let (max_tsdu, max_fragment) = (cfg.mtu.max_tsdu(), cfg.mtu.max_fragment_tsdu());
        let max_apdu = cfg.max_apdu.min(usize::from(u16::MAX));
        let max_fragments = cfg.txw_sqns as usize;
        let (shared, thread) = spawn(
            "pgm-send-io",
            Source::new(cfg),
            transport,
            Clock::new(),
            opts,
        )?;
        Ok(SendSocket {
            shared,
            thread: Some(thread),
            endpoint: endpoint.clone(),
            tsi,
            queue_limit: opts.send_queue,
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
    /// accepts; interop-notes §4.5).
    pub fn max_unfragmented(&self) -> usize {
        self.max_tsdu
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
    /// network holds data back).
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

    fn push(&self, msg: Bytes, block: bool) -> Result<(), SendError> {
        self.check_len(msg.len())?;
        let mut st = self.shared.lock();
        loop {
            if let Some(f) = &st.failure {
                return Err(SendError::Failed(f.clone()));
            }
            if st.done || st.close_requested {
                return Err(SendError::Closed);
            }
            if st.tx.is_empty() || st.tx_bytes + msg.len() <= self.queue_limit {
                st.tx_bytes += msg.len();
                st.tx.push_back(msg);
                self.shared.wake_io(&mut st);
                return Ok(());
            }
            if !block {
                return Err(SendError::WouldBlock);
            }
            st = self.shared.wait(st, None);
        }
    }

    /// Blocks until every queued message has been transmitted once (ODATA on the wire).
    pub fn flush(&self) -> Result<(), SendError> {
        let mut st = self.shared.lock();
        loop {
            if let Some(f) = &st.failure {
                return Err(SendError::Failed(f.clone()));
            }
            if st.tx.is_empty() && st.engine_queued == 0 {
                return Ok(());
            }
            if st.done {
                return Err(SendError::Closed);
            }
            self.shared.wake_io(&mut st);
            st = self.shared.wait(st, None);
        }
    }

    /// Sends what is queued, then 3 SPMs with OPT_FIN, keeps answering NAKs for the linger
    /// time, and stops the IO thread. Calling it again does nothing.
    pub fn close(&mut self) -> Result<(), SendError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        {
            let mut st = self.shared.lock();
            st.close_requested = true;
            self.shared.wake_io(&mut st);
        }
        let _ = thread.join();
        match &self.shared.lock().failure {
            Some(f) => Err(SendError::Failed(f.clone())),
            None => Ok(()),
        }
    }

    /// Counters (a snapshot, refreshed by the IO thread on every loop turn).
    pub fn stats(&self) -> SendStats {
        self.shared.lock().send_stats.clone()
    }
}

impl Drop for SendSocket {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// A PGM receiver: data from every sender (TSI) on the endpoint, in order per sender, with
/// losses reported as [`RecvEvent::Loss`].
#[derive(Debug)]
pub struct RecvSocket {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
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
        let cfg = opts.receiver_config(endpoint)?;
        let clock = Clock::new();
        let (shared, thread) = spawn("pgm-recv-io", Receiver::new(cfg), transport, clock, opts)?;
        Ok(RecvSocket {
            shared,
            thread: Some(thread),
            endpoint: endpoint.clone(),
            recv_queue: opts.recv_queue,
            clock,
        })
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The next event, waiting as long as it takes.
    pub fn recv(&self) -> Result<RecvEvent, RecvError> {
        self.next(None)
    }

    /// The next event, or [`RecvError::Timeout`] after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<RecvEvent, RecvError> {
        self.next(Some(timeout))
    }

    /// The next event if one is queued, else [`RecvError::Empty`].
    pub fn try_recv(&self) -> Result<RecvEvent, RecvError> {
        self.next(Some(Duration::ZERO)).map_err(|e| match e {
            RecvError::Timeout => RecvError::Empty,
            e => e,
        })
    }

    fn next(&self, timeout: Option<Duration>) -> Result<RecvEvent, RecvError> {
        let deadline = timeout.map(|t| self.clock.elapsed() + t);
        let mut st = self.shared.lock();
        loop {
            if let Some(ev) = st.rx.pop_front() {
                st.rx_bytes -= event_size(&ev);
                if st.rx_paused && st.rx_bytes <= self.recv_queue / 2 {
                    st.rx_paused = false;
                    self.shared.wake_io(&mut st);
                }
                return Ok(ev);
            }
            if let Some(f) = &st.failure {
                return Err(RecvError::Failed(f.clone()));
            }
            if st.done {
                return Err(RecvError::Closed);
            }
            let wait = match deadline {
                None => None,
                Some(d) => {
                    let now = self.clock.elapsed();
                    if now >= d {
                        return Err(RecvError::Timeout);
                    }
                    Some(d.saturating_sub(now))
                }
            };
            st = self.shared.wait(st, wait);
        }
    }

    /// Stops the IO thread. Queued events are dropped. Calling it again does nothing.
    pub fn close(&mut self) {
        if let Some(thread) = self.thread.take() {
            {
                let mut st = self.shared.lock();
                st.close_requested = true;
                self.shared.wake_io(&mut st);
            }
            let _ = thread.join();
        }
    }

    /// Counters (a snapshot, refreshed by the IO thread on every loop turn).
    pub fn stats(&self) -> RecvStats {
        self.shared.lock().recv_stats.clone()
    }
}

impl Drop for RecvSocket {
    fn drop(&mut self) {
        self.close();
    }
}

/// A sender or a receiver, as opened from [`SocketOptions::role`].
#[derive(Debug)]
pub enum Socket {
    /// A sender.
    Sender(SendSocket),
    /// A receiver.
    Receiver(RecvSocket),
}

impl Socket {
    /// Opens a sender or a receiver (by `opts.role`) over an opened transport.
    pub fn open(
        endpoint: &Endpoint,
        opts: &SocketOptions,
        transport: Box<dyn Transport>,
    ) -> Result<Self, OpenError> {
        Ok(match opts.role {
            Role::Sender => Socket::Sender(SendSocket::open(endpoint, opts, transport)?),
            Role::Receiver => Socket::Receiver(RecvSocket::open(endpoint, opts, transport)?),
        })
    }
}
