//! The IO thread: a turn whenever a socket is ready, a timer is due or the application left
//! work, `epoll_wait` in between (see the [module docs](super)).

use std::{
    io,
    os::fd::RawFd,
    sync::{atomic::Ordering, Arc, Mutex},
    time::Duration,
};

use mio::{unix::SourceFd, Events, Interest, Poll, Token};

use super::{
    handoff::{lock, Shared},
    role::{AppWait, Role},
    turn::{Core, Who},
};

/// The waker's token (the application left work).
pub(super) const WAKER: Token = Token(usize::MAX);
/// The alarm's token (a deadline passed).
pub(super) const ALARM: Token = Token(usize::MAX - 1);
/// A busy-polling receiver's IO thread runs a turn at least this often.
const BUSY_POLL_TICK: Duration = Duration::from_millis(10);
/// While an application thread keeps receiving, a receiver's IO thread leaves the sockets to
/// it and only looks every this long whether it is still there.
const STANDBY_TICK: Duration = Duration::from_millis(2);

/// How the IO thread treats the sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Watch {
    /// Always in the epoll set (senders).
    Always,
    /// In the epoll set only while no application thread receives (receivers; see
    /// [`IoLoop::standby`]).
    WhileAppAway,
    /// Never: a busy-polling application reads them; this loop only ticks.
    Never,
}

impl Watch {
    pub(super) fn new(app_wait: AppWait, busy_poll: bool) -> Self {
        match (app_wait, busy_poll) {
            (AppWait::Condvar, _) => Watch::Always,
            (AppWait::Sockets, false) => Watch::WhileAppAway,
            (AppWait::Sockets, true) => Watch::Never,
        }
    }
}

/// The IO thread's loop.
pub(crate) struct IoLoop<R: Role> {
    pub(super) core: Arc<Mutex<Core<R>>>,
    pub(super) shared: Arc<Shared<R::Queue>>,
    pub(super) poll: Poll,
    pub(super) watch: Watch,
    /// The sockets are in the epoll set now.
    pub(super) watching: bool,
    /// `Shared::app_calls` when last looked at.
    pub(super) app_calls_seen: u64,
    /// The transport's descriptors.
    pub(super) fds: Vec<RawFd>,
    /// Writability is asked for (a send is blocked on a full socket).
    pub(super) writable: bool,
}

impl<R: Role> IoLoop<R> {
    /// Runs the loop until close (and linger) or an error, then tells the application.
    pub(crate) fn run(mut self) {
        let result = self.run_loop();
        lock(&self.core).finish(&self.shared, result);
    }

    fn run_loop(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(64);
        let mut readable = true;
        loop {
            // Not watching, this loop heard of no packets: it looks for itself.
            let look = !self.watching;
            if self.watch == Watch::WhileAppAway {
                self.standby()?;
            }
            let max_sleep = match self.watch {
                Watch::Never => Some(BUSY_POLL_TICK),
                Watch::WhileAppAway if !self.watching => Some(STANDBY_TICK),
                Watch::Always | Watch::WhileAppAway => None,
            };
            let (turn, blocked) = {
                let mut core = lock(&self.core);
                let turn = core.turn(&self.shared, Who::Io { max_sleep }, readable || look);
                (turn, core.send_blocked())
            };
            if turn.stop {
                return Ok(());
            }
            self.want_writable(blocked)?;
            readable = false;
            // Polled even with a zero timeout: that is how a busy loop learns of readable
            // sockets (NAKs for a sender that is streaming).
            if let Err(e) = self.poll.poll(&mut events, turn.timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for ev in &events {
                if ev.token() != WAKER && ev.token() != ALARM && (ev.is_readable() || ev.is_error())
                {
                    readable = true;
                }
            }
        }
    }

    /// A receiver's IO thread leaves the sockets alone while an application thread receives
    /// (it was in a receive call since the last look, or waits in one now): the application
    /// then drains them itself, and a packet arriving while it is between two calls does not
    /// wake this thread for nothing. Once the application has stayed away for a
    /// [`STANDBY_TICK`], this thread watches the sockets again, so NAKs and SPMs are handled
    /// within a few milliseconds whatever the application does. Once the application polls
    /// the socket's readiness descriptor (and not the sockets too), this thread always
    /// watches: the application waits for it.
    fn standby(&mut self) -> io::Result<()> {
        let calls = self.shared.app_calls.load(Ordering::Relaxed);
        // An application that polls only the readiness descriptor waits for this thread to read.
        let active = self.shared.standby_allowed()
            && (calls != self.app_calls_seen || self.shared.lock().app_polling > 0);
        self.app_calls_seen = calls;
        if active != self.watching {
            return Ok(());
        }
        self.watching = !active;
        for (i, fd) in self.fds.iter().enumerate() {
            if self.watching {
                self.poll
                    .registry()
                    .register(&mut SourceFd(fd), Token(i), Interest::READABLE)?;
            } else {
                self.poll.registry().deregister(&mut SourceFd(fd))?;
            }
        }
        Ok(())
    }

    /// Asks for writability of a sender's sockets only while a send is blocked.
    fn want_writable(&mut self, blocked: bool) -> io::Result<()> {
        if blocked == self.writable || self.fds.is_empty() || self.watch != Watch::Always {
            return Ok(());
        }
        self.writable = blocked;
        let interest = if blocked {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        for (i, fd) in self.fds.iter().enumerate() {
            self.poll
                .registry()
                .reregister(&mut SourceFd(fd), Token(i), interest)?;
        }
        Ok(())
    }
}
