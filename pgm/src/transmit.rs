//! What the engine asks its driver to send.

use std::net::IpAddr;

/// One packet to send, produced by `poll_transmit`.
///
/// The packet bytes are in the buffer the caller passed to `poll_transmit` (which the engine clears
/// first); `len` repeats their length for convenience.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a Transmit describes a packet that must be sent"]
pub struct Transmit {
    /// The multicast group, or the unicast NLA of a source (NAK, SPMR).
    pub dst: IpAddr,
    /// Length of the packet in the caller's buffer.
    pub len: usize,
}
