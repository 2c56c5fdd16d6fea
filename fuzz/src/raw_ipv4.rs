//! The checks behind the `raw_ipv4` fuzz target: the IPv4 header a raw PGM socket hands back
//! (`pgm::transport::raw::parse_ipv4`), shared with the corpus replay test
//! (`pgm/tests/raw_ipv4_fuzz_corpus.rs`, which includes this file by path).
//!
//! - On any bytes, `parse_ipv4` agrees with a model written from RFC 791: `Some` exactly for
//!   version 4 with at least 20 bytes, an IHL of at least 5 words, and a header that ends within
//!   both the total-length field and the bytes received; then the PGM range runs from the end of
//!   the header to the total length or the end of the bytes, whichever comes first (never past
//!   what exists), and the addresses are bytes 12..20. The PGM bytes then parse (or fail to)
//!   without a panic.
//! - A header built from the input (IHL 5..=15 with option bytes, total length exact, short of
//!   trailing padding, or past the bytes captured) around a payload parses back to its
//!   addresses and exactly the payload bytes that exist.

use std::net::{IpAddr, Ipv4Addr};

use pgm::{
    transport::{
        raw::{parse_ipv4, IPV4_HEADER},
        Datagram,
    },
    wire::PacketRepr,
};

/// Runs every check on `data`; panics (a fuzz finding) when one fails.
pub(crate) fn check(data: &[u8]) {
    let got = parse_ipv4(data);
    assert_eq!(got, model(data), "parse_ipv4 disagrees with the model");
    if let Some(d) = &got {
        assert!(
            d.pgm.start <= d.pgm.end && d.pgm.end <= data.len(),
            "PGM range {:?} outside {} bytes",
            d.pgm,
            data.len()
        );
        let _ = PacketRepr::parse(&data[d.pgm.clone()]);
    }
    round_trip(data);
}

fn model(p: &[u8]) -> Option<Datagram> {
    if p.len() < 20 || p[0] >> 4 != 4 {
        return None;
    }
    let header = usize::from(p[0] & 0x0f) * 4;
    let end = usize::from(u16::from_be_bytes([p[2], p[3]])).min(p.len());
    if header < 20 || header > end {
        return None;
    }
    let addr = |i: usize| IpAddr::V4(Ipv4Addr::new(p[i], p[i + 1], p[i + 2], p[i + 3]));
    Some(Datagram {
        src: addr(12),
        dst: addr(16),
        pgm: header..end,
    })
}

fn round_trip(data: &[u8]) {
    let [a, b, c, d, rest @ ..] = data else {
        return;
    };
    let words = 5 + usize::from(a % 11);
    let header_len = words * 4;
    let src = Ipv4Addr::new(10, *b, *c, 1);
    let dst = Ipv4Addr::new(239, 192, *c, *d);
    let payload = rest;
    let real = header_len + payload.len();
    // What the total-length field says: exact, shorter (trailing padding), or longer (cut).
    let total = match b % 4 {
        0 | 1 => real,
        2 => real.saturating_sub(usize::from(*d)).max(header_len),
        _ => real + usize::from(*d),
    };
    let Ok(total16) = u16::try_from(total) else {
        return;
    };
    let mut pkt = vec![0x40 | words as u8, 0];
    pkt.extend_from_slice(&total16.to_be_bytes());
    pkt.extend_from_slice(&[0, 1, 0x40, 0, 64, 113, 0, 0]);
    pkt.extend_from_slice(&src.octets());
    pkt.extend_from_slice(&dst.octets());
    pkt.resize(header_len, 1); // IP options: NOPs
    assert_eq!(pkt.len(), header_len.max(IPV4_HEADER));
    pkt.extend_from_slice(payload);
    let got = parse_ipv4(&pkt).unwrap_or_else(|| panic!("a good header was refused: {pkt:?}"));
    assert_eq!(got.src, IpAddr::V4(src));
    assert_eq!(got.dst, IpAddr::V4(dst));
    let want = &payload[..total.min(real) - header_len];
    assert_eq!(&pkt[got.pgm], want, "PGM bytes of a built packet");
}
