//! The drain of a subscriber with a buffering [`SlowConsumer`] policy: a thread that keeps
//! reading the transport at the feed's rate, decodes and filters, and pushes into the
//! [`PolicyBuffer`]; the application's receive calls take from that buffer.
//!
//! The thread receives through the transport's ordinary `recv`, so it runs the transport's
//! turns itself and the transport's IO thread stands by, as for any receiving thread: one
//! thread reads the sockets either way. It decodes and compacts a batch of transport events
//! outside the lock, then pushes them at most [`PUSH_CHUNK`] per hold of the lock; the
//! application takes one event per hold. The
//! readiness descriptor is one end of a socket pair that holds one byte while there is
//! something to take (or the drain has ended).

use std::{
    io::{Read, Write},
    os::{fd::AsFd, unix::net::UnixStream},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Condvar, Mutex, MutexGuard, PoisonError,
    },
    thread::JoinHandle,
    time::Duration,
};

use pgm::socket::{Clock, RecvError, RecvSocket};

use crate::{
    decoder::{Decoder, DecoderStats, RecvEvent},
    slow_consumer::{Held, PolicyBuffer, PolicyStats},
    subscriber::feed,
};

/// A subscription change for the drain's decoder.
#[derive(Debug)]
pub(crate) enum FilterOp {
    Subscribe(Vec<u8>),
    Unsubscribe(Vec<u8>),
}

/// Behind the lock.
#[derive(Debug)]
struct State {
    buf: PolicyBuffer,
    /// Subscription changes the drain has not applied yet.
    filter_ops: Vec<FilterOp>,
    /// The decoder's counters as of the drain's last batch.
    decoder: DecoderStats,
    /// Why the drain stopped (the transport closed or failed).
    end: Option<RecvError>,
    /// Application threads waiting on the condition variable.
    waiting: usize,
    /// The readiness byte is in the pair.
    signalled: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    cond: Condvar,
    /// `State::filter_ops` is not empty (read by the drain without the lock).
    filter_changed: AtomicBool,
    /// The writing end of the readiness pair.
    ready_tx: UnixStream,
}

/// Most events the drain pushes under one hold of the lock, so that an application thread
/// waiting for it never waits for a whole batch of the transport's.
const PUSH_CHUNK: usize = 64;

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Makes the readiness descriptor match the state: readable while there is something to
    /// take. A full or empty pair (`WouldBlock`) is already what is wanted.
    fn settle_ready(&self, st: &mut State, ready_rx: Option<&UnixStream>) {
        let want = !st.buf.is_empty() || st.end.is_some();
        if want && !st.signalled {
            let _ = (&self.ready_tx).write(&[1]);
            st.signalled = true;
        } else if !want && st.signalled {
            if let Some(mut rx) = ready_rx {
                let _ = rx.read(&mut [0; 8]);
                st.signalled = false;
            }
        }
    }
}

/// The application's handle on the drain thread.
#[derive(Debug)]
pub(crate) struct Drain {
    shared: Arc<Shared>,
    sock: Arc<RecvSocket>,
    thread: Option<JoinHandle<()>>,
    ready_rx: UnixStream,
    clock: Clock,
}

impl Drain {
    /// Starts draining `sock` through `dec` into `buf`.
    pub(crate) fn spawn(
        sock: Arc<RecvSocket>,
        dec: Decoder,
        buf: PolicyBuffer,
    ) -> std::io::Result<Self> {
        let (ready_tx, ready_rx) = UnixStream::pair()?;
        ready_tx.set_nonblocking(true)?;
        ready_rx.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buf,
                filter_ops: Vec::new(),
                decoder: dec.stats(),
                end: None,
                waiting: 0,
                signalled: false,
            }),
            cond: Condvar::new(),
            filter_changed: AtomicBool::new(false),
            ready_tx,
        });
        let thread = std::thread::Builder::new()
            .name("pubsub-drain".into())
            .spawn({
                let (shared, sock) = (Arc::clone(&shared), Arc::clone(&sock));
                move || run(&sock, dec, &shared)
            })?;
        Ok(Drain {
            shared,
            sock,
            thread: Some(thread),
            ready_rx,
            clock: Clock::new(),
        })
    }

    /// Queues a subscription change; the drain applies it before its next batch.
    pub(crate) fn filter(&self, op: FilterOp) {
        lock(&self.shared.state).filter_ops.push(op);
        self.shared.filter_changed.store(true, Ordering::Release);
    }

    /// The next event: `timeout` `None` waits as long as it takes, zero does not wait.
    pub(crate) fn recv(&self, timeout: Option<Duration>) -> Result<RecvEvent, RecvError> {
        let sh = &*self.shared;
        let mut st = lock(&sh.state);
        let deadline = timeout.map(|t| self.clock.elapsed() + t);
        loop {
            if let Some(ev) = st.buf.pop() {
                sh.settle_ready(&mut st, Some(&self.ready_rx));
                return Ok(ev);
            }
            if let Some(e) = &st.end {
                return Err(e.clone());
            }
            st.waiting += 1;
            st = match deadline {
                None => sh.cond.wait(st).unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let left = d.saturating_sub(self.clock.elapsed());
                    if left.is_zero() {
                        st.waiting -= 1;
                        return Err(RecvError::Timeout);
                    }
                    sh.cond
                        .wait_timeout(st, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
            st.waiting -= 1;
        }
    }

    /// The decoder's counters (as of the drain's last batch) and the policy's.
    pub(crate) fn stats(&self) -> (DecoderStats, PolicyStats) {
        let st = lock(&self.shared.state);
        (st.decoder, st.buf.stats())
    }

    /// Stops the transport and the drain; what was held is dropped.
    pub(crate) fn close(&mut self) {
        self.sock.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut st = lock(&self.shared.state);
        st.buf.clear();
        st.end = Some(RecvError::Closed);
    }

    /// The readiness descriptor (see the module docs).
    pub(crate) fn ready_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.ready_rx.as_fd()
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        self.close();
    }
}

/// The drain thread: batches of transport events → decoder → policy buffer, until the
/// transport closes or fails.
fn run(sock: &RecvSocket, mut dec: Decoder, sh: &Shared) {
    let mut batch = Vec::new();
    let mut out = Vec::new();
    loop {
        match sock.recv() {
            Ok(ev) => batch.push(ev),
            Err(e) => {
                let mut st = lock(&sh.state);
                st.end = Some(e);
                sh.settle_ready(&mut st, None);
                sh.cond.notify_all();
                return;
            }
        }
        // Whatever else is queued; an error shows again at the next `recv`.
        let _ = sock.try_recv_many(&mut batch);
        if sh.filter_changed.swap(false, Ordering::AcqRel) {
            let ops = std::mem::take(&mut lock(&sh.state).filter_ops);
            for op in ops {
                match op {
                    FilterOp::Subscribe(p) => {
                        dec.filter_mut().subscribe(p);
                    }
                    FilterOp::Unsubscribe(p) => {
                        dec.filter_mut().unsubscribe(p);
                    }
                }
            }
        }
        // Decoded and compacted outside the lock.
        for ev in batch.drain(..) {
            feed(&mut dec, ev);
            out.extend(std::iter::from_fn(|| dec.poll_event()).map(Held::from));
        }
        let mut held = out.drain(..).peekable();
        while held.peek().is_some() {
            let mut st = lock(&sh.state);
            for h in held.by_ref().take(PUSH_CHUNK) {
                st.buf.push(h);
            }
            st.decoder = dec.stats();
            sh.settle_ready(&mut st, None);
            if st.waiting > 0 {
                sh.cond.notify_all();
            }
        }
    }
}
