//! The descriptor a socket exposes to the application's own event loop (`AsFd`): an eventfd
//! that mirrors, level-triggered, whether the next call would find something to do.
//!
//! - A receiver's is **readable** while events are queued for the application (or the socket
//!   stopped, so that the next call reports why).
//! - A sender's is **writable** while the next message fits in the send queue (or the socket
//!   stopped). An eventfd is writable until its counter is full, so "not writable" is a full
//!   counter; a sender's descriptor is therefore readable exactly when it is not writable,
//!   and its readability means nothing.
//!
//! The descriptor is kept up to date only once the application asked for it
//! ([`Readiness::activate`]): sockets used through blocking calls pay nothing. Changes happen
//! under the state lock, and the eventfd is written only on a transition, so a stream of
//! events costs two syscalls per batch the application takes, not per event.

use std::{io, os::fd::AsRawFd};

use crate::sys::event::EventFd;

/// Which readiness the descriptor mirrors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Readable while there is something to receive.
    In,
    /// Writable while there is room to send.
    Out,
}

/// The eventfd and what it shows (behind the state lock; the descriptor itself is shared).
#[derive(Debug)]
pub(crate) struct ReadyFd {
    fd: EventFd,
    dir: Direction,
}

impl ReadyFd {
    pub(super) fn new(dir: Direction) -> io::Result<Self> {
        Ok(ReadyFd {
            fd: EventFd::new()?,
            dir,
        })
    }

    /// Shows `ready` on the descriptor.
    fn show(&self, ready: bool) {
        match (self.dir, ready) {
            (Direction::In, true) => self.fd.signal(),
            (Direction::Out, false) => self.fd.fill(),
            (Direction::In, false) | (Direction::Out, true) => self.fd.drain(),
        }
    }
}

impl AsRawFd for ReadyFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// What the descriptor shows now (part of the state behind the lock).
#[derive(Debug, Default)]
pub(crate) struct Readiness {
    /// The application asked for the descriptor: keep it up to date.
    active: bool,
    /// What it shows (a fresh eventfd shows "not readable" and "writable").
    shown: bool,
}

impl Readiness {
    /// Starts mirroring `ready` on `fd` (a no-op once active).
    pub(crate) fn activate(&mut self, fd: &ReadyFd, ready: bool) {
        if !self.active {
            self.active = true;
            self.shown = fd.dir == Direction::Out;
            self.update(fd, ready);
        }
    }

    /// Shows `ready` on `fd` if it is active and shows something else.
    pub(crate) fn update(&mut self, fd: &ReadyFd, ready: bool) {
        if self.active && self.shown != ready {
            self.shown = ready;
            fd.show(ready);
        }
    }
}

/// A role's queue says whether the application's next call would find something to do.
pub(crate) trait AppReady {
    /// A receiver has events queued; a sender has room for its next message.
    fn app_ready(&self) -> bool;
}
