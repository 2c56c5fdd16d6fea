//! What differs between a sender's and a receiver's driver: the [`Role`] an engine plays, and
//! its half of the hand-off with the application.
//!
//! A sender's application hands messages *to* the engine ([`SendQueue`]); a receiver's engine
//! hands events *to* the application ([`RecvQueue`]). Everything else (reading, timers,
//! sending, parking) is the same turn for both.

use std::{collections::VecDeque, fmt::Debug};

use bytes::Bytes;

use super::{
    super::{DriverOptions, IoStats, RecvStats, SendStats},
    readiness::AppReady,
};
use crate::{
    event::Event,
    node::Node,
    receiver::{PeerStats, Receiver},
    source::{SendError, Source},
    time::Instant,
    wire::Tsi,
};

/// Queue accounting charge per event on top of its data, so empty events are bounded too.
pub(crate) const EVENT_OVERHEAD: usize = 64;

/// How application threads wait for the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppWait {
    /// On the condition variable, until the driver publishes (senders wait for queue room).
    Condvar,
    /// On the sockets themselves, reading them when they become readable (receivers; see
    /// [`AppPoll`](super::handoff::AppPoll)).
    Sockets,
}

/// What the application side of the driver does after close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closing {
    /// Keep running until [`Role::is_flushed`], then for the linger time (a sender answers
    /// NAKs for data it just sent).
    Linger,
    /// Stop at once.
    Stop,
}

/// An engine as the driver runs it: the [`Node`] verbs plus its exchange with the application.
pub(crate) trait Role: Node + Send + 'static {
    /// The role's half of the shared state (behind the state lock).
    type Queue: Debug + Default + Send + AppReady;
    /// The driver's working copy of it, kept outside the lock between exchanges.
    type Local: Send;
    /// How application threads wait.
    const APP_WAIT: AppWait;

    /// An empty working copy.
    fn local(opts: &DriverOptions) -> Self::Local;
    /// Under the state lock: takes what the application left in `queue`.
    fn take_from_app(queue: &mut Self::Queue, local: &mut Self::Local);
    /// Moves work between the engine and `local`: a source takes queued messages, a receiver
    /// gives up its events.
    fn exchange(&mut self, now: Instant, local: &mut Self::Local, io: &mut IoStats);
    /// `local` holds messages the engine has not accepted yet (close waits for them).
    fn holds_input(local: &Self::Local) -> bool;
    /// Reading must wait: the application's receive queue is full.
    fn reading_paused(local: &Self::Local) -> bool;
    /// `local` has something to publish.
    fn has_news(local: &Self::Local) -> bool;
    /// Under the state lock: publishes `local` into `queue`. True when it published something
    /// an application thread may be waiting for.
    fn give_to_app(&self, local: &mut Self::Local, queue: &mut Self::Queue) -> bool;
    /// Copies the counters into `queue`.
    fn publish_stats(&self, queue: &mut Self::Queue, io: &IoStats, last_err: Option<&String>);
    /// The application closed the socket.
    fn close(&mut self, now: Instant) -> Closing;
    /// Everything owed after [`Role::close`] is on the wire (asked only of roles that linger).
    fn is_flushed(&self) -> bool;
}

/// A sender's hand-off: messages on their way to the engine.
#[derive(Debug, Default)]
pub(crate) struct SendQueue {
    /// Messages queued by the application, not yet taken by the driver.
    pub(crate) msgs: VecDeque<Bytes>,
    /// Bytes queued and not yet accepted by the engine (in `msgs` and in the driver).
    pub(crate) bytes: usize,
    /// Messages queued and not yet accepted by the engine.
    pub(crate) count: usize,
    /// Bytes the engine holds that are not on the wire yet.
    pub(crate) engine_queued: usize,
    pub(crate) stats: SendStats,
    /// [`DriverOptions::send_queue`]: the most bytes `msgs` holds (one message always fits).
    pub(crate) limit: usize,
    /// The size of the message a non-blocking send last refused (0: none), so the
    /// readiness descriptor turns writable when *it* fits.
    pub(crate) wanted: usize,
}

impl SendQueue {
    /// Whether a message of `len` bytes fits (one always does when the queue is empty).
    pub(crate) fn has_room(&self, len: usize) -> bool {
        self.count == 0 || self.bytes + len <= self.limit
    }
}

impl AppReady for SendQueue {
    fn app_ready(&self) -> bool {
        self.has_room(self.wanted.max(1))
    }
}

/// A sender driver's working copy.
#[derive(Debug, Default)]
pub(crate) struct SendLocal {
    /// Messages taken from the application, not yet accepted by the engine.
    msgs: VecDeque<Bytes>,
    /// Messages accepted by the engine since the last publication.
    taken: usize,
    /// Their bytes.
    taken_bytes: usize,
}

impl Role for Source {
    type Queue = SendQueue;
    type Local = SendLocal;
    const APP_WAIT: AppWait = AppWait::Condvar;

    fn local(_opts: &DriverOptions) -> SendLocal {
        SendLocal::default()
    }

    fn take_from_app(queue: &mut SendQueue, local: &mut SendLocal) {
        if local.msgs.is_empty() {
            std::mem::swap(&mut local.msgs, &mut queue.msgs);
        } else {
            local.msgs.append(&mut queue.msgs);
        }
    }

    /// Takes messages until the engine pushes back (refused ones count as taken: dropped).
    fn exchange(&mut self, now: Instant, local: &mut SendLocal, io: &mut IoStats) {
        while let Some(msg) = local.msgs.front() {
            let len = msg.len();
            match self.send_bytes(now, msg.clone()) {
                Err(SendError::WouldBlock) => break,
                Ok(()) => {}
                // Checked before queueing; should the engine still refuse, count and drop it.
                Err(_) => io.send_errors += 1,
            }
            local.msgs.pop_front();
            local.taken += 1;
            local.taken_bytes += len;
        }
    }

    fn holds_input(local: &SendLocal) -> bool {
        !local.msgs.is_empty()
    }

    fn reading_paused(_local: &SendLocal) -> bool {
        false
    }

    fn has_news(local: &SendLocal) -> bool {
        local.taken > 0
    }

    /// Room in the queue, or everything on the wire (what `send` and `flush` wait for).
    fn give_to_app(&self, local: &mut SendLocal, queue: &mut SendQueue) -> bool {
        let taken = std::mem::take(&mut local.taken);
        queue.count -= taken.min(queue.count);
        queue.bytes -= std::mem::take(&mut local.taken_bytes).min(queue.bytes);
        let before = queue.engine_queued;
        queue.engine_queued = self.queued_bytes();
        taken > 0 || (queue.engine_queued == 0 && before != 0)
    }

    fn publish_stats(&self, queue: &mut SendQueue, io: &IoStats, last_err: Option<&String>) {
        let stats = &mut queue.stats;
        stats.engine = self.stats();
        stats.io = *io;
        if stats.last_send_error.as_ref() != last_err {
            stats.last_send_error = last_err.cloned();
        }
    }

    fn close(&mut self, now: Instant) -> Closing {
        Source::close(self, now);
        Closing::Linger
    }

    fn is_flushed(&self) -> bool {
        Source::is_flushed(self)
    }
}

/// A receiver's hand-off: events on their way to the application.
#[derive(Debug, Default)]
pub(crate) struct RecvQueue {
    /// Events for the application.
    pub(crate) events: VecDeque<Event>,
    /// Bytes in `events` (data plus [`EVENT_OVERHEAD`] per event).
    pub(crate) queued_bytes: usize,
    /// Bytes held for the application: `queued_bytes` plus the batch an application thread
    /// took and has not finished (what the receive-queue limit counts).
    pub(crate) held_bytes: usize,
    /// Reading stopped because `held_bytes` reached the limit.
    pub(crate) paused: bool,
    pub(crate) stats: RecvStats,
    /// The application asks for a per-peer snapshot ([`RecvQueue::peers`]).
    pub(crate) peers_wanted: bool,
    /// The last per-peer snapshot: at most `ReceiverLimits::max_peers` entries.
    pub(crate) peers: Vec<(Tsi, PeerStats)>,
    /// Bumped each time `peers` is refreshed.
    pub(crate) peers_seq: u64,
}

impl AppReady for RecvQueue {
    fn app_ready(&self) -> bool {
        !self.events.is_empty()
    }
}

/// A receiver driver's working copy.
#[derive(Debug)]
pub(crate) struct RecvLocal {
    /// Events collected outside the state lock.
    events: VecDeque<Event>,
    /// Their charge against the receive queue.
    bytes: usize,
    /// The application's receive queue was full at the last exchange.
    paused: bool,
    /// [`DriverOptions::recv_queue`].
    limit: usize,
    /// The application asked for a per-peer snapshot: taken at the next publication.
    peers_wanted: bool,
}

impl Role for Receiver {
    type Queue = RecvQueue;
    type Local = RecvLocal;
    const APP_WAIT: AppWait = AppWait::Sockets;

    fn local(opts: &DriverOptions) -> RecvLocal {
        RecvLocal {
            events: VecDeque::new(),
            bytes: 0,
            paused: false,
            limit: opts.recv_queue,
            peers_wanted: false,
        }
    }

    fn take_from_app(queue: &mut RecvQueue, local: &mut RecvLocal) {
        local.paused = queue.paused;
        local.peers_wanted |= std::mem::take(&mut queue.peers_wanted);
    }

    fn exchange(&mut self, _now: Instant, local: &mut RecvLocal, _io: &mut IoStats) {
        while let Some(ev) = self.poll_event() {
            local.bytes += event_size(&ev);
            local.events.push_back(ev);
        }
    }

    fn holds_input(_local: &RecvLocal) -> bool {
        false
    }

    fn reading_paused(local: &RecvLocal) -> bool {
        local.paused
    }

    fn has_news(local: &RecvLocal) -> bool {
        !local.events.is_empty() || local.peers_wanted
    }

    /// New events, and a per-peer snapshot if one was asked for; pauses reading once the
    /// application holds `limit` bytes.
    fn give_to_app(&self, local: &mut RecvLocal, queue: &mut RecvQueue) -> bool {
        let peers = std::mem::take(&mut local.peers_wanted);
        if peers {
            fill_peers(self, queue);
        }
        let gave = !local.events.is_empty();
        if gave {
            if queue.events.is_empty() {
                std::mem::swap(&mut queue.events, &mut local.events);
            } else {
                queue.events.append(&mut local.events);
            }
            queue.queued_bytes += local.bytes;
            queue.held_bytes += std::mem::take(&mut local.bytes);
        }
        if queue.held_bytes >= local.limit && !queue.paused {
            queue.paused = true;
            local.paused = true;
        }
        gave || peers
    }

    fn publish_stats(&self, queue: &mut RecvQueue, io: &IoStats, last_err: Option<&String>) {
        let stats = &mut queue.stats;
        stats.engine = self.stats();
        stats.io = *io;
        if stats.last_send_error.as_ref() != last_err {
            stats.last_send_error = last_err.cloned();
        }
    }

    fn close(&mut self, _now: Instant) -> Closing {
        Closing::Stop
    }

    fn is_flushed(&self) -> bool {
        // Owes nothing after close: `close` says stop.
        true
    }
}

/// Replaces `queue`'s per-peer snapshot with the engine's sessions now (the vector is reused:
/// no allocation once it has grown to the peer table's size).
pub(crate) fn fill_peers(engine: &Receiver, queue: &mut RecvQueue) {
    queue.peers.clear();
    queue.peers.extend(engine.all_peer_stats());
    queue.peers_seq += 1;
}

/// Bytes an event counts against the receive queue.
pub(crate) fn event_size(ev: &Event) -> usize {
    EVENT_OVERHEAD
        + match ev {
            Event::Data { apdu, .. } => apdu.len(),
            _ => 0,
        }
}
