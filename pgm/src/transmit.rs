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
    /// An IP TTL for this packet instead of the socket's (RFC 3208 §13.6: the multicast copy
    /// of an SPMR goes out with TTL 1, so it only suppresses SPMRs on the local subnet).
    pub ttl: Option<u8>,
}

impl Transmit {
    /// A packet of `len` bytes for `dst`, with the socket's TTL.
    pub fn new(dst: IpAddr, len: usize) -> Self {
        Transmit {
            dst,
            len,
            ttl: None,
        }
    }
}
