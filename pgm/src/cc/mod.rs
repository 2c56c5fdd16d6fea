//! Congestion control: PGMCC (draft-ietf-rmt-bb-pgmcc-03), on the wire as OpenPGM 5.3.128
//! lays it out (OPT_PGMCC_DATA, OPT_PGMCC_FEEDBACK, ACK), without its traps
//! (docs/congestion.md).
//!
//! - [`window`]: the token window W/T (PGMCC draft §2.2).
//! - `acks`: what an ACK's RX_MAX and bitmap acknowledge, and the losses they show.
//! - [`election`]: the throughput equation and the switch rule (§2.3, §2.4).
//! - `source`: the source's controller: ACKer, window, timeouts.
//! - `receiver`: a receiver's side: loss rate, timestamp echo, ACK bitmap.
//!
//! Sans-IO like the engine: time comes in as [`crate::time::Instant`] arguments.

pub(crate) mod acks;
pub mod election;
pub(crate) mod receiver;
pub(crate) mod source;
pub mod window;

pub use source::PgmccStats;

use crate::time::Instant;

/// PGMCC draft §2.1.3: timestamps in milliseconds (OpenPGM: ms since an arbitrary epoch,
/// here the engine clock's), wrapping at 32 bits.
pub(crate) fn tstamp(now: Instant) -> u32 {
    (now.as_micros() / 1000) as u32
}
