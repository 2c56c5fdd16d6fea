//! The one place of this crate's unsafe system calls (Linux): batched datagram IO with control
//! messages ([`mmsg`]), the event descriptors the socket driver sleeps on ([`event`]), and host
//! facts and socket options std and socket2 lack ([`net`], [`process`]). The `epgm` crate and the tools
//! use them too, so the workspace has one copy of each.

pub mod event;
pub mod mmsg;
pub mod net;
pub mod process;
