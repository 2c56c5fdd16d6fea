//! RFC 3208 §13.6: a receiver that got data before any SPM asks for one with an SPMR — first
//! multicast to the group with a TTL of 1 (to suppress other receivers' SPMRs on the subnet
//! only), then unicast to the source.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use pgm::{
    time::Instant,
    wire::{Gsi, PacketType, Tsi},
    Receiver, ReceiverConfig, Source, SourceConfig,
};

const GROUP: IpAddr = IpAddr::V4(Ipv4Addr::new(239, 192, 0, 1));
const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

#[test]
fn spmr_goes_to_the_group_with_ttl_1_then_unicast() {
    let tsi = Tsi {
        gsi: Gsi([1, 2, 3, 4, 5, 6]),
        sport: 4000,
    };
    let mut src = Source::new(SourceConfig::new(tsi, 7500, GROUP, SRC));
    let mut rx = Receiver::new(ReceiverConfig::new(7500));
    let t0 = Instant::from_micros(1);
    src.send(t0, b"hello").unwrap();
    let mut buf = Vec::new();
    // Only the ODATA reaches the receiver: it has not heard an SPM.
    while let Some(t) = src.poll_transmit(t0, &mut buf) {
        let p = pgm::wire::Packet::new_checked(&buf[..t.len]).unwrap();
        assert_eq!(t.ttl, None, "a source's packets keep the socket's TTL");
        if p.packet_type() == PacketType::Odata {
            rx.handle_packet(t0, SRC, GROUP, &buf[..t.len]);
        }
    }
    let mut out = Vec::new();
    let mut now = t0;
    while now < t0 + Duration::from_secs(1) && out.len() < 2 {
        now = rx
            .poll_timeout()
            .unwrap_or(now + Duration::from_millis(1))
            .max(now);
        rx.handle_timeout(now);
        while let Some(t) = rx.poll_transmit(now, &mut buf) {
            let p = pgm::wire::Packet::new_checked(&buf[..t.len]).unwrap();
            out.push((p.packet_type(), t.dst, t.ttl));
        }
    }
    assert_eq!(
        out,
        [
            (PacketType::Spmr, GROUP, Some(1)),
            (PacketType::Spmr, SRC, None),
        ]
    );
}
