//! The checks behind the `dump_link` fuzz target: `pgm-dump`'s decoding of one captured frame
//! (link layer, IPv4/IPv6, UDP, UDP GSO super-packet splitting: `tools::dump::decode_frame`) and
//! everything it prints, shared with the corpus replay test (`tools/tests/fuzz_corpus.rs`,
//! which includes this file by path).
//!
//! The first byte picks the link type (the six `pgm-dump` reads and one it does not), the
//! second whether the rest is the frame itself or the recipe of a frame built around PGM
//! packets with `tools::frames`.
//!
//! - Any frame: every record carries the frame number, time and addresses given; its PGM bytes
//!   (or, for a GSO super-packet, all of its packets back to back) are a contiguous run of the
//!   frame, never more than was captured. GSO records are numbered 1..=n of n, UDP-carried, each
//!   exactly as long as its PGM header declares, all of one length but a shorter last. For raw
//!   IPv4 frames the PGM bytes are those `pgm::transport::raw::parse_ipv4` finds; for raw IPv6
//!   frames they end where the IPv6 payload length says. `Record::parse` is `PacketRepr::parse`
//!   of the bytes; text and JSON render; the `--group` filter of the record's own address
//!   passes it; a `Printer` prints one line per record and counts them.
//! - A built frame (raw IP or UDP to a `--udp-port`, over IPv4 or IPv6 with up to four
//!   extension headers, in any of the link types, optionally a VLAN tag, one packet or a GSO run
//!   of 2..=8) decodes to exactly the packets put in, with their addresses and ports.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pcap_file::DataLink;
use pgm::{
    transport::raw::parse_ipv4,
    wire::{Body, Data, Gsi, Options, Packet, PacketRepr, SeqNo},
};
use tools::{
    dump::{
        decode::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_PGM},
        decode_frame, Encap, Filter, Gso, Output, Printer, Record, What,
    },
    frames::{self, Ext6},
};

use crate::input::Input;

const LINKS: [DataLink; 7] = [
    DataLink::ETHERNET,
    DataLink::LINUX_SLL,
    DataLink::LINUX_SLL2,
    DataLink::RAW,
    DataLink::IPV4,
    DataLink::IPV6,
    DataLink::NULL,
];

const UDP_PORT: u16 = 3055;
const FRAME_NO: u64 = 7;
const TIME: f64 = 1_700_000_000.25;

const HOP_BY_HOP: Ext6 = Ext6::Opts { kind: 0, units: 0 };
/// The IPv6 extension header chains a built frame may carry.
const EXT_CHAINS: [&[Ext6]; 4] = [
    &[],
    &[HOP_BY_HOP],
    &[HOP_BY_HOP, Ext6::Opts { kind: 60, units: 1 }],
    &[
        HOP_BY_HOP,
        Ext6::Opts { kind: 43, units: 2 },
        Ext6::Fragment {
            offset: 0,
            more: false,
        },
        Ext6::Opts { kind: 60, units: 0 },
    ],
];

/// Runs every check on `data`; panics (a fuzz finding) when one fails.
pub(crate) fn check(data: &[u8]) {
    let mut inp = Input::new(data);
    let link = inp.pick(&LINKS);
    let ports: &[u16] = inp.pick(&[&[UDP_PORT][..], &[UDP_PORT, 7500], &[]]);
    // One input in four is a recipe.
    if inp.pick(&[true, false, false, false]) {
        built(link, &mut inp);
    } else {
        let frame = inp.rest();
        let records = decode_frame(link, FRAME_NO, TIME, frame, ports);
        check_records(link, frame, &records, ports);
    }
}

/// Where `needle` sits in `hay`, if anywhere.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn check_records(link: DataLink, frame: &[u8], records: &[Record], ports: &[u16]) {
    let gso = records.iter().filter(|r| r.gso.is_some()).count();
    assert!(
        gso == 0 || gso == records.len(),
        "GSO records mixed with others"
    );
    if records.len() > 1 {
        assert_eq!(
            gso,
            records.len(),
            "several records only for a GSO super-packet"
        );
    }
    let mut gso_bytes = Vec::new();
    for (i, r) in records.iter().enumerate() {
        assert_eq!((r.frame, r.time), (FRAME_NO, TIME));
        assert_eq!((r.src, r.dst), (records[0].src, records[0].dst));
        match &r.what {
            What::Pgm { data, encap } => {
                assert_eq!(r.parse(), Some(PacketRepr::parse(data)));
                if let Encap::Udp { sport, dport } = encap {
                    assert!(ports.contains(sport) || ports.contains(dport), "{r:?}");
                }
                if let Some(Gso { index, of }) = r.gso {
                    assert_eq!((index, of), (i + 1, records.len()), "GSO numbering");
                    assert!(matches!(encap, Encap::Udp { .. }), "GSO over raw IP");
                    let declared = Packet::new_checked(&data[..])
                        .ok()
                        .and_then(|p| p.packet_len());
                    assert_eq!(declared, Some(data.len()), "GSO packet length");
                    let first = match &records[0].what {
                        What::Pgm { data, .. } => data.len(),
                        _ => unreachable!(),
                    };
                    assert!(
                        data.len() == first || (index == of && data.len() < first),
                        "GSO packets of one length but a shorter last"
                    );
                    gso_bytes.extend_from_slice(data);
                } else {
                    assert!(
                        find(frame, data).is_some(),
                        "PGM bytes that are not in the frame"
                    );
                    if matches!(encap, Encap::Raw) {
                        check_raw_ip(link, frame, r, data);
                    }
                }
            }
            What::Malformed { reason, .. } => assert!(!reason.is_empty()),
            What::Unsupported(_) => assert!(r.gso.is_none(), "an unsupported GSO packet"),
        }
        let _ = r.checksum();
        let json = r.to_json();
        for key in ["frame", "time", "src", "dst", "type"] {
            assert!(json.get(key).is_some(), "JSON without {key}: {json}");
        }
        let text = r.to_text();
        assert!(text.starts_with(&format!("{TIME:.6} ")), "{text}");
        let own = Filter {
            group: Some(r.src),
            port: None,
        };
        assert!(own.matches(r), "--group of the record's own source");
    }
    if gso > 0 {
        assert!(gso >= 2, "a GSO split into one packet");
        assert!(
            find(frame, &gso_bytes).is_some(),
            "GSO packets not in the frame"
        );
    }
    for json in [false, true] {
        let opts = Output {
            udp_ports: ports.to_vec(),
            json,
            ..Output::default()
        };
        let mut out = Vec::new();
        let mut p = Printer::new(&opts, &mut out);
        p.frame(link, TIME, frame).unwrap();
        let s = p.finish().unwrap();
        assert_eq!(s.frames, 1);
        assert_eq!(s.pgm + s.unsupported, records.len() as u64, "{s:?}");
        assert!(s.malformed <= s.pgm);
        let lines = String::from_utf8(out)
            .expect("UTF-8 output")
            .lines()
            .count();
        assert_eq!(lines, records.len(), "one line per record");
    }
}

/// The PGM bytes of a raw IP frame, from its IP header: for IPv4 those `parse_ipv4` finds, for
/// IPv6 the end of the payload the header declares.
fn check_raw_ip(link: DataLink, frame: &[u8], r: &Record, data: &[u8]) {
    if !matches!(link, DataLink::RAW | DataLink::IPV4 | DataLink::IPV6) {
        return;
    }
    if r.src.is_ipv4() {
        let d = parse_ipv4(frame).expect("pgm-dump read an IPv4 header pgm did not");
        assert_eq!(&frame[d.pgm], data, "raw PGM bytes differ from pgm's");
        assert_eq!((d.src, d.dst), (r.src, r.dst));
    } else {
        assert_eq!(frame[0] >> 4, 6, "an IPv6 record from another IP version");
        let end = 40 + usize::from(u16::from_be_bytes([frame[4], frame[5]]));
        assert!(
            frame.get(..end).is_some_and(|ip| ip.ends_with(data)),
            "raw PGM bytes that do not end the IPv6 payload"
        );
    }
}

/// An ODATA packet with `len` payload bytes.
fn odata(sqn: u32, len: usize, fill: u8) -> Vec<u8> {
    PacketRepr {
        sport: 1000,
        dport: 7500,
        gsi: Gsi([1, 2, 3, 4, 5, 6]),
        parity: false,
        var_pktlen: false,
        body: Body::Odata(Data {
            sqn: SeqNo(sqn),
            trail: SeqNo(0),
        }),
        options: Options::default(),
        payload: &vec![fill; len],
    }
    .to_vec()
}

fn built(link: DataLink, inp: &mut Input<'_>) {
    let src = Ipv4Addr::new(10, 0, 0, inp.u8());
    let dst = Ipv4Addr::new(239, 192, inp.u8(), 1);
    let udp = inp.bool();
    let n = if udp {
        1 + usize::from(inp.u8() % 8)
    } else {
        1
    };
    let size = usize::from(inp.u16() % 1500);
    let last = size.saturating_sub(usize::from(inp.u8()));
    let pgms: Vec<Vec<u8>> = (0..n)
        .map(|i| odata(i as u32, if i + 1 == n { last } else { size }, inp.u8()))
        .collect();
    let sport = inp.u16();
    let vlan = (link == DataLink::ETHERNET && inp.bool()).then(|| inp.u16());
    // Read last: an input that ends before (every seed from before IPv6) stays IPv4.
    let v6 = inp.bool();
    let exts = inp.pick(&EXT_CHAINS);
    let payload = if udp { pgms.concat() } else { pgms[0].clone() };
    let (src, dst, ethertype, ip) = if v6 {
        let s = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(src.octets()[3]));
        let d = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0x192, u16::from(dst.octets()[2]));
        let ip = if udp {
            frames::udp6(s, d, exts, sport, UDP_PORT, &payload)
        } else {
            frames::ipv6_ext(s, d, exts, IPPROTO_PGM, &payload)
        };
        (IpAddr::V6(s), IpAddr::V6(d), ETHERTYPE_IPV6, ip)
    } else {
        let ip = if udp {
            frames::udp4(src, dst, sport, UDP_PORT, &payload)
        } else {
            frames::ipv4(src, dst, IPPROTO_PGM, &payload)
        };
        (IpAddr::V4(src), IpAddr::V4(dst), ETHERTYPE_IPV4, ip)
    };
    let frame = match (link, vlan) {
        (DataLink::ETHERNET, Some(vid)) => frames::ethernet_vlan(vid, ethertype, &ip),
        (DataLink::ETHERNET, None) => frames::ethernet(ethertype, &ip),
        (DataLink::LINUX_SLL, _) => frames::sll(ethertype, &ip),
        (DataLink::LINUX_SLL2, _) => frames::sll2(ethertype, &ip),
        _ => ip,
    };
    let records = decode_frame(link, FRAME_NO, TIME, &frame, &[UDP_PORT]);
    check_records(link, &frame, &records, &[UDP_PORT]);
    if link == DataLink::NULL {
        assert!(records.is_empty(), "a link type pgm-dump does not read");
        return;
    }
    // (Raw IP link types are read by the version nibble: either family decodes in any of them.)
    // Several packets are a GSO run: split back into exactly those packets.
    let want: Vec<&[u8]> = pgms.iter().map(Vec::as_slice).collect();
    assert_eq!(
        records.len(),
        want.len(),
        "records of {n} packets of {size}/{last} bytes"
    );
    for (r, p) in records.iter().zip(&want) {
        assert_eq!((r.src, r.dst), (src, dst));
        let What::Pgm { encap, data } = &r.what else {
            panic!("built packet decoded as {r:?}");
        };
        assert_eq!(data, p, "PGM bytes");
        if udp {
            assert_eq!(
                *encap,
                Encap::Udp {
                    sport,
                    dport: UDP_PORT
                }
            );
        } else {
            assert_eq!(*encap, Encap::Raw);
        }
        assert_eq!(r.gso.is_some(), n > 1);
    }
}
