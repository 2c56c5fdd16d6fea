//! The engine loop: one [`Core`] (engine, transport, buffers) that the socket's IO thread and
//! the application's own threads take turns driving.
//!
//! The parts, one file each: [`role`] (what differs between a sender and a receiver),
//! [`handoff`] (what application threads and the driver share, and how they wake each
//! other), [`turn`] (one turn of the [`Core`]) and [`io_loop`] (the IO thread).
//!
//! # Who drives
//!
//! The core sits behind a mutex. Whoever holds it runs a *turn*: take queued application data,
//! drain the sockets (`recvmmsg`), run due timers, send what the engine emits (`sendmmsg`),
//! and publish events. Nobody holds it while sleeping.
//!
//! - The **IO thread** runs a turn whenever a socket is ready, a timer is due or the
//!   application left work for it, and sleeps in `epoll_wait` in between.
//! - An **application thread** runs turns itself when it can, so a message does not have to
//!   cross threads on its way: `SendSocket::send` sends inline when the core is free (the IO
//!   thread is asleep), and `RecvSocket::recv` with nothing queued drains the sockets itself,
//!   then waits for them itself (`poll(2)`, see [`AppPoll`](handoff::AppPoll)). While an application thread
//!   keeps receiving, the receiver's IO thread stands by: it takes the sockets out of its
//!   epoll set and only looks every few milliseconds whether the application is still there
//!   (`IoLoop::standby`). So one thread wakes per batch of packets, as with a plain UDP
//!   socket.
//!
//! # Hand-off when the other side drives
//!
//! Application threads and the IO thread share [`State`](handoff::State) behind a second mutex, taken once per
//! *batch*:
//!
//! - **Sends.** `SendSocket::send` appends to `State::tx`; the driver swaps the whole queue
//!   out (O(1) under the lock). The IO thread is woken (an eventfd write) only when it is
//!   parked in `epoll_wait` (`State::io_parked`), the core was busy, and no wake-up is on its
//!   way yet; or when an application turn left a deadline earlier than the one the IO thread
//!   sleeps until.
//! - **Receives.** Events are collected without the lock and appended to `State::rx` in one
//!   go; `RecvSocket` swaps the whole queue into a local one and serves events from there.
//! - **Waking the application.** Only when an application thread waits (condition variable
//!   for senders, an eventfd in the receiver's epoll instance) and something it may wait for
//!   happened.
//!
//! Two sequence counters let either side see "nothing new" without the lock: `in_seq` (bumped
//! by the application for anything the driver must look at) and `out_seq` (bumped by the
//! driver whenever it published something an application thread may wait for).
//!
//! # The IO thread's alarm
//!
//! The IO thread sleeps until a timerfd in its epoll set fires (`Shared::alarm`), not for an
//! `epoll_wait` timeout, so an application thread that ran a turn can move that wake-up
//! without waking anyone: earlier when it left an earlier deadline, later when the IO thread
//! was about to wake for something the application's turn has just handled (every ODATA
//! pushes the SPM heartbeat back, every receive call proves the application is still there).
//! While the application drives, the IO thread then sleeps through (one `timerfd_settime` per
//! `REARM_SLACK` instead of a thread wake-up per heartbeat interval, which on a busy
//! machine preempts the very thread that drives).
//!
//! # Busy-poll
//!
//! With [`SocketOptions::busy_poll`](super::SocketOptions::busy_poll) application threads never
//! block: a waiting `recv` runs non-blocking turns (one `recvmmsg` each) back to back, and
//! `send`/`flush` spin on `out_seq`. A receiver's IO thread then leaves the sockets to the
//! spinning application and only runs a turn every `BUSY_POLL_TICK` (so timers and a
//! distracted application still get served). That takes every thread wake-up out of a
//! message's path, at the price of a core per spinning application thread; on a machine
//! without spare cores it makes latency worse, not better.

mod handoff;
mod io_loop;
mod readiness;
mod role;
mod turn;

#[cfg(test)]
mod tests;

use std::{
    io,
    os::fd::AsRawFd,
    sync::{Arc, Mutex},
};

use mio::{unix::SourceFd, Interest, Poll, Token, Waker};

pub(crate) use handoff::{lock, Shared, State};
pub(crate) use io_loop::IoLoop;
pub(crate) use role::{fill_peers, RecvQueue, Role, SendQueue};
pub(crate) use turn::{Core, Turn, Who};

use super::{Clock, DriverOptions};
use crate::{sys::event::TimerFd, transport::Transport};
use handoff::AppPoll;
use io_loop::{Watch, ALARM, WAKER};
use readiness::{Direction, ReadyFd};
use role::AppWait;

/// What [`new`] returns: the IO loop, the core and the shared state.
pub(crate) type Parts<R> = (
    IoLoop<R>,
    Arc<Mutex<Core<R>>>,
    Arc<Shared<<R as Role>::Queue>>,
);

/// Sets up the core, the IO thread's poll and (for receivers) the application's poll.
/// Returns the IO loop (to be moved onto its thread), the core and the shared state.
pub(crate) fn new<R: Role>(
    engine: R,
    transport: Box<dyn Transport>,
    clock: Clock,
    opts: &DriverOptions,
) -> io::Result<Parts<R>> {
    let fds = transport.fds();
    let (app_poll, ready_fd) = match R::APP_WAIT {
        AppWait::Sockets => (Some(AppPoll::new(&fds)?), ReadyFd::new(Direction::In)?),
        AppWait::Condvar => (None, ReadyFd::new(Direction::Out)?),
    };
    let watch = Watch::new(R::APP_WAIT, opts.busy_poll);
    let poll = Poll::new()?;
    let waker = Waker::new(poll.registry(), WAKER)?;
    let alarm = TimerFd::new()?;
    poll.registry()
        .register(&mut SourceFd(&alarm.as_raw_fd()), ALARM, Interest::READABLE)?;
    // Readability only: a UDP socket signals writability for every packet it frees, which
    // would wake the IO thread once per packet sent. A send that finds the socket full is
    // retried every BLOCKED_RETRY instead (a sender also asks for writability while blocked,
    // see `IoLoop::want_writable`). A busy-polling receiver's IO thread does not watch the
    // sockets at all: the spinning application reads them.
    let watching = watch != Watch::Never;
    if watching {
        for (i, fd) in fds.iter().enumerate() {
            poll.registry()
                .register(&mut SourceFd(fd), Token(i), Interest::READABLE)?;
        }
    }
    let shared = Arc::new(Shared::new(
        waker,
        alarm,
        app_poll,
        ready_fd,
        opts.busy_poll,
        opts.spin_before_sleep,
    ));
    let core = Arc::new(Mutex::new(Core::new(
        engine,
        R::local(opts),
        transport,
        clock,
        opts.linger,
        watch == Watch::Never,
    )));
    let io_loop = IoLoop {
        core: Arc::clone(&core),
        shared: Arc::clone(&shared),
        poll,
        watch,
        watching,
        app_calls_seen: 0,
        fds,
        writable: false,
    };
    Ok((io_loop, core, shared))
}
