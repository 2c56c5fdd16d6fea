//! Replays the OpenPGM reference capture (`tests/fixtures/openpgm.pcap`: raw and UDP sessions,
//! loss, NAK/NCF/RDATA, fragmented APDUs, FIN) into our `Receiver`: every test message of every
//! session comes out whole, in order, CRC-correct — including OpenPGM's fragments, whose
//! OPT_FRAGMENT offsets run on across APDUs.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    path::Path,
};

use pgm::{time::Instant, Event, Receiver, ReceiverConfig};

/// (time µs, IP src, IP dst, PGM bytes) of every PGM packet in an Ethernet pcap.
fn packets(pcap: &[u8], udp_port: u16) -> Vec<(u64, IpAddr, IpAddr, Vec<u8>)> {
    let le = u32::from_le_bytes(pcap[..4].try_into().unwrap()) == 0xa1b2_c3d4;
    let u32_at = |at: usize| {
        let a: [u8; 4] = pcap[at..at + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let t = u64::from(u32_at(at)) * 1_000_000 + u64::from(u32_at(at + 4));
        let caplen = u32_at(at + 8) as usize;
        let frame = &pcap[at + 16..at + 16 + caplen];
        at += 16 + caplen;
        if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
            continue;
        }
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
        let dst = IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
        let payload = &ip[ihl..total];
        match ip[9] {
            113 => out.push((t, src, dst, payload.to_vec())),
            17 if u16::from_be_bytes([payload[2], payload[3]]) == udp_port => {
                out.push((t, src, dst, payload[8..].to_vec()));
            }
            _ => {}
        }
    }
    out
}

#[test]
fn openpgm_capture_reassembles_in_our_receiver() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openpgm.pcap");
    let Ok(pcap) = std::fs::read(&path) else {
        eprintln!(
            "SKIPPED: {} is absent (record it with netns-tests' capture-openpgm)",
            path.display()
        );
        return;
    };
    let pkts = packets(&pcap, 7500);
    let t0 = pkts.first().map_or(0, |p| p.0);
    let mut rx = Receiver::new(ReceiverConfig::new(7500));
    // Per TSI: next expected test-message sequence number, messages, fragmented ones.
    let mut sessions: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    let mut losses = 0;
    let mut buf = Vec::new();
    for (t, src, dst, p) in &pkts {
        let now = Instant::from_micros(t - t0 + 1);
        rx.handle_packet(now, *src, *dst, p);
        rx.handle_timeout(now);
        while rx.poll_transmit(now, &mut buf).is_some() {}
        while let Some(ev) = rx.poll_event() {
            match ev {
                Event::Data { tsi, apdu } => {
                    let s = sessions.entry(tsi.to_string()).or_default();
                    assert!(apdu.len() >= 12, "test message of {} bytes", apdu.len());
                    let seq = u64::from_be_bytes(apdu[..8].try_into().unwrap());
                    let crc = u32::from_be_bytes(apdu[8..12].try_into().unwrap());
                    assert_eq!(crc, crc32(&apdu[12..]), "CRC of message {seq} from {tsi}");
                    assert_eq!(seq, s.0, "in order, without gaps, from {tsi}");
                    s.0 += 1;
                    s.1 += 1;
                    s.2 += u64::from(apdu.len() > 1456);
                }
                Event::Loss { .. } => losses += 1,
                _ => {}
            }
        }
    }
    println!("sessions (next seq, messages, fragmented): {sessions:?}");
    assert_eq!(losses, 0);
    assert!(sessions.len() >= 2, "raw and UDP sessions");
    assert!(
        sessions.values().all(|s| s.1 > 0 && s.2 > 0),
        "every session delivered fragmented APDUs"
    );
}

/// CRC-32 (IEEE), bit by bit: `pgm` has no CRC dependency.
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}
