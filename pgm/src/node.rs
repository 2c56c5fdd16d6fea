//! The sans-IO contract: what every protocol endpoint offers its driver.
//!
//! [`crate::Source`] and [`crate::Receiver`] implement [`Node`]; the socket driver
//! (`crate::socket`) and the simulator (`crate::sim`) both drive nothing else. Packets and
//! time go in through `handle_*`, packets come out of `poll_transmit`, and `poll_timeout`
//! says when to call again (the quinn-proto shape).

use std::net::IpAddr;

use crate::{time::Instant, Receiver, Source, Transmit};

/// A sans-IO endpoint: what a driver (the socket driver, the simulator) drives; implemented by
/// [`crate::Source`] and [`crate::Receiver`].
pub trait Node {
    /// A packet arrived from `src` (sender's IP) addressed to `dst` (a multicast group or this node's IP).
    fn handle_packet(&mut self, now: Instant, src: IpAddr, dst: IpAddr, packet: &[u8]);
    /// The deadline last returned by [`Node::poll_timeout`] has passed.
    fn handle_timeout(&mut self, now: Instant);
    /// Writes the next packet into `buf` (the node clears it first) and says where it goes.
    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit>;
    /// When the node next wants [`Node::handle_timeout`] called, if ever.
    fn poll_timeout(&self) -> Option<Instant>;
}

impl<N: Node + ?Sized> Node for Box<N> {
    fn handle_packet(&mut self, now: Instant, src: IpAddr, dst: IpAddr, packet: &[u8]) {
        (**self).handle_packet(now, src, dst, packet);
    }
    fn handle_timeout(&mut self, now: Instant) {
        (**self).handle_timeout(now);
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        (**self).poll_transmit(now, buf)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        (**self).poll_timeout()
    }
}

impl Node for Source {
    fn handle_packet(&mut self, now: Instant, src: IpAddr, dst: IpAddr, packet: &[u8]) {
        Source::handle_packet(self, now, src, dst, packet);
    }
    fn handle_timeout(&mut self, now: Instant) {
        Source::handle_timeout(self, now);
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        Source::poll_transmit(self, now, buf)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Source::poll_timeout(self)
    }
}

impl Node for Receiver {
    fn handle_packet(&mut self, now: Instant, src: IpAddr, dst: IpAddr, packet: &[u8]) {
        Receiver::handle_packet(self, now, src, dst, packet);
    }
    fn handle_timeout(&mut self, now: Instant) {
        Receiver::handle_timeout(self, now);
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        Receiver::poll_transmit(self, now, buf)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Receiver::poll_timeout(self)
    }
}
