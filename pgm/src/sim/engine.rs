//! The protocol engine's endpoints as simulator nodes.

use std::net::IpAddr;

use super::Node;
use crate::{time::Instant, Receiver, Source, Transmit};

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
