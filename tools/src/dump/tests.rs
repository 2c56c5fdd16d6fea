//! Tests of the whole path, from frames built by [`crate::frames`] to output lines.

use std::{
    fs::File,
    io::{self, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    time::Duration,
};

use clap::Parser;
use pcap_file::{pcapng::blocks::interface_description::InterfaceDescriptionOption, DataLink};
use pgm::wire::{
    checksum::Verdict, Body, Data, Fragment, Gsi, Nak, NakList, Options, PacketRepr, SeqNo, Spm,
};
use serde_json::{json, Value};

use super::{
    decode::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_PGM, IPPROTO_UDP},
    decode_frame, dump, dump_with,
    pcap::write_pcap,
    read_records, records_from_pcap_reader, run, Args, DumpError, Encap, Filter, Gso, Output,
    Printer, Record, What, DEFAULT_UDP_PORT,
};
use crate::frames::{self, Ext6};

const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const GRP: Ipv4Addr = Ipv4Addr::new(239, 192, 1, 1);

fn spm() -> Vec<u8> {
    spm_via(SRC.into())
}

/// An SPM with `path` as its path NLA.
fn spm_via(path: IpAddr) -> Vec<u8> {
    PacketRepr {
        sport: 1000,
        dport: 7500,
        gsi: Gsi([1, 2, 3, 4, 5, 6]),
        parity: false,
        var_pktlen: false,
        body: Body::Spm(Spm {
            spm_sqn: SeqNo(7),
            trail: SeqNo(1),
            lead: SeqNo(9),
            path,
        }),
        options: Options {
            fin: true,
            ..Options::default()
        },
        payload: &[],
    }
    .to_vec()
}

fn fragment() -> Vec<u8> {
    PacketRepr {
        sport: 1000,
        dport: 7500,
        gsi: Gsi([0xb7, 0xc6, 0xd1, 0xbc, 0x03, 0x8a]),
        parity: false,
        var_pktlen: false,
        body: Body::Odata(Data {
            sqn: SeqNo(3),
            trail: SeqNo(0),
        }),
        options: Options {
            fragment: Some(Fragment {
                first_sqn: SeqNo(2),
                offset: 100,
                apdu_len: 300,
            }),
            ..Options::default()
        },
        payload: &[0x42; 100],
    }
    .to_vec()
}

fn nak() -> Vec<u8> {
    PacketRepr {
        sport: 7500,
        dport: 1000,
        gsi: Gsi([1, 2, 3, 4, 5, 6]),
        parity: false,
        var_pktlen: false,
        body: Body::Nak(Nak {
            sqn: SeqNo(5),
            src_nla: SRC.into(),
            grp_nla: GRP.into(),
        }),
        options: Options {
            nak_list: Some(NakList::from_slice(&[SeqNo(6), SeqNo(8)])),
            ..Options::default()
        },
        payload: &[],
    }
    .to_vec()
}

/// The one record of a frame that is not a GSO super-packet.
fn odata(sqn: u32, len: usize) -> Vec<u8> {
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
        payload: &vec![sqn as u8; len],
    }
    .to_vec()
}

/// A UDP GSO super-packet as a capture on the sending host shows it: one datagram to port
/// 3055 holding `pgms` back to back.
fn gso_eth(pgms: &[Vec<u8>]) -> Vec<u8> {
    frames::ethernet(
        ETHERTYPE_IPV4,
        &frames::udp4(SRC, GRP, 40000, 3055, &pgms.concat()),
    )
}

fn decode(link: DataLink, frame: &[u8], ports: &[u16]) -> Option<Record> {
    let mut recs = decode_frame(link, 1, 1.5, frame, ports);
    assert!(recs.len() <= 1, "{recs:?}");
    recs.pop()
}

fn raw_eth(pgm: &[u8]) -> Vec<u8> {
    frames::ethernet(ETHERTYPE_IPV4, &frames::ipv4(SRC, GRP, IPPROTO_PGM, pgm))
}

#[test]
fn ethernet_raw_pgm_json_has_every_key() {
    let rec = decode(DataLink::ETHERNET, &raw_eth(&spm()), &[3055]).unwrap();
    let j = rec.to_json();
    assert_eq!(j["type"], "SPM");
    assert_eq!(j["encap"], "raw");
    assert_eq!(j["src"], "10.0.0.1");
    assert_eq!(j["dst"], "239.192.1.1");
    assert_eq!(j["sport"], 1000);
    assert_eq!(j["dport"], 7500);
    assert_eq!(j["gsi"], "010203040506");
    assert_eq!(j["tsdu_len"], 0);
    assert_eq!(j["checksum_ok"], true);
    assert_eq!(j["sqn"], 7);
    assert_eq!(j["trail"], 1);
    assert_eq!(j["lead"], 9);
    assert_eq!(j["nla"], "10.0.0.1");
    assert_eq!(j["options"], json!(["OPT_LENGTH", "OPT_FIN"]));
    assert_eq!(j["fin"], true);
    assert_eq!(j["time"], 1.5);
    assert_eq!(j["frame"], 1);
    let t = rec.to_text();
    assert!(
        t.starts_with("1.500000 10.0.0.1.1000 > 239.192.1.1.7500 PGM SPM 1000>7500"),
        "{t}"
    );
    assert!(t.contains("FIN"), "{t}");
}

#[test]
fn udp_encapsulated_fragment_and_nak() {
    let ip = frames::udp4(SRC, GRP, 40000, 5555, &fragment());
    let rec = decode(
        DataLink::ETHERNET,
        &frames::ethernet(ETHERTYPE_IPV4, &ip),
        &[5555],
    )
    .unwrap();
    let j = rec.to_json();
    assert_eq!(j["type"], "ODATA");
    assert_eq!(j["encap"], "udp");
    assert_eq!(j["udp_sport"], 40000);
    assert_eq!(j["udp_dport"], 5555);
    assert_eq!(j["gsi"], "b7c6d1bc038a");
    assert_eq!(j["tsdu_len"], 100);
    assert_eq!(
        j["fragment"],
        json!({"first_sqn": 2, "offset": 100, "apdu_len": 300})
    );
    assert!(rec
        .to_text()
        .contains("10.0.0.1.40000 > 239.192.1.1.5555 UDP PGM ODATA"));
    // Not on a listed port: skipped.
    assert!(decode(
        DataLink::ETHERNET,
        &frames::ethernet(ETHERTYPE_IPV4, &ip),
        &[3055]
    )
    .is_none());
    // The source port matches too.
    let ip = frames::udp4(SRC, GRP, 3055, 40000, &nak());
    let j = decode(DataLink::RAW, &ip, &[3055]).unwrap().to_json();
    assert_eq!(j["type"], "NAK");
    assert_eq!(j["sqn"], 5);
    assert_eq!(j["nak_list"], json!([6, 8]));
    assert_eq!(j["nla"], "10.0.0.1");
    assert_eq!(j["group"], "239.192.1.1");
}

#[test]
fn every_link_type() {
    let ip = frames::ipv4(SRC, GRP, IPPROTO_PGM, &spm());
    for (link, frame) in [
        (DataLink::ETHERNET, frames::ethernet(ETHERTYPE_IPV4, &ip)),
        (
            DataLink::ETHERNET,
            frames::ethernet_vlan(5, ETHERTYPE_IPV4, &ip),
        ),
        (DataLink::LINUX_SLL, frames::sll(ETHERTYPE_IPV4, &ip)),
        (DataLink::LINUX_SLL2, frames::sll2(ETHERTYPE_IPV4, &ip)),
        (DataLink::RAW, ip.clone()),
        (DataLink::IPV4, ip.clone()),
    ] {
        let rec = decode(link, &frame, &[]).unwrap_or_else(|| panic!("{link:?}"));
        assert_eq!(rec.to_json()["type"], "SPM", "{link:?}");
    }
    assert!(decode(DataLink::PPP, &ip, &[]).is_none());
}

const SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const GRP6: Ipv6Addr = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0, 0x101);
/// A Hop-by-Hop and a 16-byte Destination Options header, as the IPv6 tests put them.
const HBH_DST: [Ext6; 2] = [
    Ext6::Opts { kind: 0, units: 0 },
    Ext6::Opts { kind: 60, units: 1 },
];

/// An SPM whose path NLA is IPv6 (AFI 2).
fn spm6() -> Vec<u8> {
    spm_via(SRC6.into())
}

fn raw6_eth(exts: &[Ext6], pgm: &[u8]) -> Vec<u8> {
    frames::ethernet(
        ETHERTYPE_IPV6,
        &frames::ipv6_ext(SRC6, GRP6, exts, IPPROTO_PGM, pgm),
    )
}

#[test]
fn ipv6_raw_pgm_decodes_like_ipv4() {
    let rec = decode(DataLink::ETHERNET, &raw6_eth(&[], &spm6()), &[]).unwrap();
    assert_eq!((rec.src, rec.dst), (IpAddr::V6(SRC6), IpAddr::V6(GRP6)));
    assert_eq!(
        rec.what,
        What::Pgm {
            encap: Encap::Raw,
            data: spm6()
        }
    );
    assert_eq!(rec.checksum(), Some(Verdict::Good));
    let j = rec.to_json();
    assert_eq!(j["type"], "SPM");
    assert_eq!(j["encap"], "raw");
    assert_eq!(j["src"], "2001:db8::1");
    assert_eq!(j["dst"], "ff0e::101");
    assert_eq!(
        (j["sport"].clone(), j["dport"].clone()),
        (json!(1000), json!(7500))
    );
    assert_eq!(j["gsi"], "010203040506");
    assert_eq!(j["sqn"], 7);
    assert_eq!(j["nla"], "2001:db8::1");
    assert_eq!(j["checksum_ok"], true);
    // tcpdump's notation: the port after a dot, IPv6 too.
    let t = rec.to_text();
    assert!(
        t.starts_with("1.500000 2001:db8::1.1000 > ff0e::101.7500 PGM SPM 1000>7500"),
        "{t}"
    );
    // An ODATA, in every link type that carries IPv6.
    let ip = frames::ipv6(SRC6, GRP6, IPPROTO_PGM, &odata(42, 10));
    for (link, frame) in [
        (DataLink::ETHERNET, frames::ethernet(ETHERTYPE_IPV6, &ip)),
        (
            DataLink::ETHERNET,
            frames::ethernet_vlan(5, ETHERTYPE_IPV6, &ip),
        ),
        (DataLink::LINUX_SLL, frames::sll(ETHERTYPE_IPV6, &ip)),
        (DataLink::LINUX_SLL2, frames::sll2(ETHERTYPE_IPV6, &ip)),
        (DataLink::RAW, ip.clone()),
        (DataLink::IPV6, ip.clone()),
    ] {
        let rec = decode(link, &frame, &[]).unwrap_or_else(|| panic!("{link:?}"));
        let j = rec.to_json();
        assert_eq!(
            (j["type"].clone(), j["sqn"].clone()),
            (json!("ODATA"), json!(42)),
            "{link:?}"
        );
        assert_eq!(j["tsdu_len"], 10);
        assert_eq!(j["checksum_ok"], true);
        assert_eq!(rec.src, IpAddr::V6(SRC6));
    }
    // Other IPv6 traffic is skipped.
    assert!(decode(
        DataLink::RAW,
        &frames::ipv6(SRC6, GRP6, 58, &[0; 8]),
        &[3055]
    )
    .is_none());
}

#[test]
fn ipv6_extension_headers_are_skipped() {
    let pkt = odata(3, 20);
    let want = What::Pgm {
        encap: Encap::Raw,
        data: pkt.clone(),
    };
    let routing = Ext6::Opts { kind: 43, units: 2 };
    let atomic = Ext6::Fragment {
        offset: 0,
        more: false,
    };
    for exts in [
        &HBH_DST[..],
        &[HBH_DST[0], routing, atomic, HBH_DST[1]],
        &[HBH_DST[1], HBH_DST[1], HBH_DST[1]],
    ] {
        let rec = decode(DataLink::ETHERNET, &raw6_eth(exts, &pkt), &[]).unwrap();
        assert_eq!(rec.what, want, "{exts:?}");
        assert_eq!(rec.to_json()["checksum_ok"], true);
    }
    // Extension headers that run past the payload length.
    let mut ip = frames::ipv6_ext(SRC6, GRP6, &HBH_DST, IPPROTO_PGM, &pkt);
    ip[4..6].copy_from_slice(&16u16.to_be_bytes());
    let rec = decode(DataLink::RAW, &ip, &[]).unwrap();
    let j = rec.to_json();
    assert_eq!(j["type"], "MALFORMED");
    assert!(
        j["reason"].as_str().unwrap().contains("bad IPv6 header"),
        "{j}"
    );
    // A chain cut by the capture before the last Next Header: not known to be PGM, skipped;
    // once that is captured, a truncated PGM packet.
    let ip = frames::ipv6_ext(SRC6, GRP6, &HBH_DST, IPPROTO_PGM, &pkt);
    assert!(decode(DataLink::RAW, &ip[..49], &[]).is_none());
    let rec = decode(DataLink::RAW, &ip[..50], &[]).unwrap();
    assert!(matches!(rec.what, What::Malformed { .. }), "{rec:?}");
}

#[test]
fn epgm_over_udp_ipv6() {
    let ip = frames::udp6(SRC6, GRP6, &[], 40000, 5555, &fragment());
    let rec = decode(
        DataLink::ETHERNET,
        &frames::ethernet(ETHERTYPE_IPV6, &ip),
        &[5555],
    )
    .unwrap();
    assert_eq!(rec.src, IpAddr::V6(SRC6));
    let j = rec.to_json();
    assert_eq!(j["type"], "ODATA");
    assert_eq!(j["encap"], "udp");
    assert_eq!(
        (j["udp_sport"].clone(), j["udp_dport"].clone()),
        (json!(40000), json!(5555))
    );
    assert_eq!(j["dst"], "ff0e::101");
    assert_eq!(j["checksum_ok"], true);
    assert_eq!(
        j["fragment"],
        json!({"first_sqn": 2, "offset": 100, "apdu_len": 300})
    );
    assert!(rec
        .to_text()
        .contains("2001:db8::1.40000 > ff0e::101.5555 UDP PGM ODATA"));
    // Not on a listed port: skipped, like IPv4.
    assert!(decode(
        DataLink::ETHERNET,
        &frames::ethernet(ETHERTYPE_IPV6, &ip),
        &[3055]
    )
    .is_none());
    // The source port matches too, behind extension headers.
    let ip = frames::udp6(SRC6, GRP6, &HBH_DST, 3055, 40000, &nak());
    let j = decode(DataLink::RAW, &ip, &[3055]).unwrap().to_json();
    assert_eq!(
        (j["type"].clone(), j["nak_list"].clone()),
        (json!("NAK"), json!([6, 8]))
    );
    // A GSO super-packet is split as over IPv4.
    let pkts = [odata(10, 100), odata(11, 100), odata(12, 40)];
    let ip = frames::udp6(SRC6, GRP6, &[], 40000, 3055, &pkts.concat());
    let recs = decode_frame(DataLink::RAW, 1, 0.0, &ip, &[3055]);
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[2].gso, Some(Gso { index: 3, of: 3 }));
    assert_eq!(recs[2].to_json()["sqn"], 12);
    // A UDP length past the datagram.
    let mut ip = frames::udp6(SRC6, GRP6, &[], 1, 3055, &spm());
    ip[44..46].copy_from_slice(&999u16.to_be_bytes());
    let j = decode(DataLink::RAW, &ip, &[3055]).unwrap().to_json();
    assert_eq!(j["type"], "MALFORMED");
    assert!(
        j["reason"].as_str().unwrap().contains("bad UDP length 999"),
        "{j}"
    );
}

#[test]
fn ipv6_bad_checksum_and_truncation_are_reported_like_ipv4() {
    let mut bad = spm6();
    bad[20] ^= 1;
    let rec = decode(DataLink::ETHERNET, &raw6_eth(&HBH_DST, &bad), &[]).unwrap();
    assert_eq!(rec.checksum(), Some(Verdict::Bad));
    assert_eq!(rec.to_json()["checksum_ok"], false);
    assert!(rec.to_text().ends_with("[bad cksum]"));
    // Cut short by the capture (snaplen): MALFORMED with the same reason as over IPv4.
    let reason = |rec: Record| match rec.what {
        What::Malformed { reason, .. } => reason,
        other => panic!("{other:?}"),
    };
    let v4 = raw_eth(&fragment());
    let v6 = raw6_eth(&[], &fragment());
    let cut4 = reason(decode(DataLink::ETHERNET, &v4[..80], &[]).unwrap());
    let cut6 = reason(decode(DataLink::ETHERNET, &v6[..80 + 20], &[]).unwrap());
    assert_eq!(
        cut4,
        format!(
            "packet truncated by the capture: 66 of {} IP bytes captured",
            v4.len() - 14
        )
    );
    assert_eq!(
        cut6,
        format!(
            "packet truncated by the capture: 86 of {} IP bytes captured",
            v6.len() - 14
        )
    );
    let udp = frames::ethernet(
        ETHERTYPE_IPV6,
        &frames::udp6(SRC6, GRP6, &HBH_DST, 1, 3055, &fragment()),
    );
    let rec = decode(DataLink::ETHERNET, &udp[..120], &[3055]).unwrap();
    assert_eq!(rec.to_json()["type"], "MALFORMED");
    assert!(reason(rec).starts_with("datagram truncated by the capture"));
    // Every prefix of the frames: no panic.
    for frame in [v6, udp] {
        for n in 0..frame.len() {
            for r in decode_frame(DataLink::ETHERNET, 1, 0.0, &frame[..n], &[3055]) {
                let _ = (r.to_text(), r.to_json());
            }
        }
    }
}

#[test]
fn ipv6_fragments_are_noted_like_ipv4_fragments() {
    let note6 = What::Unsupported("IPv6 fragment (not reassembled)");
    let frag = |offset, more| Ext6::Fragment { offset, more };
    // The first fragment of raw PGM or of UDP on a PGM port, and a later fragment of raw PGM.
    for (exts, proto, want) in [
        (vec![frag(0, true)], IPPROTO_PGM, Some(&note6)),
        (
            vec![HBH_DST[0], frag(0, true), HBH_DST[1]],
            IPPROTO_PGM,
            Some(&note6),
        ),
        (vec![frag(185, true)], IPPROTO_PGM, Some(&note6)),
        (vec![frag(185, false)], IPPROTO_PGM, Some(&note6)),
        (vec![frag(0, true)], IPPROTO_UDP, Some(&note6)),
        // A later UDP fragment has no ports to match.
        (vec![frag(185, false)], IPPROTO_UDP, None),
    ] {
        let payload = if proto == IPPROTO_UDP {
            frames::udp6(SRC6, GRP6, &[], 40000, 3055, &odata(1, 100))[40..].to_vec()
        } else {
            odata(1, 100)
        };
        let ip = frames::ipv6_ext(SRC6, GRP6, &exts, proto, &payload);
        let rec = decode(DataLink::RAW, &ip, &[3055]);
        assert_eq!(rec.as_ref().map(|r| &r.what), want, "{exts:?} {proto}");
        if let Some(rec) = rec {
            assert!(!rec.is_pgm());
            assert_eq!(rec.to_json()["type"], "UNSUPPORTED");
            assert!(rec
                .to_text()
                .ends_with("2001:db8::1 > ff0e::101 unsupported: IPv6 fragment (not reassembled)"));
        }
    }
    // The first UDP fragment on another port is not PGM's.
    let ip = frames::udp6(SRC6, GRP6, &[frag(0, true)], 40000, 9, &odata(1, 100));
    assert!(decode(DataLink::RAW, &ip, &[3055]).is_none());
    // The same over IPv4 (MF, then an offset).
    for flags in [0x2000u16, 0x0017] {
        let mut ip = frames::ipv4(SRC, GRP, IPPROTO_PGM, &odata(1, 100));
        ip[6..8].copy_from_slice(&flags.to_be_bytes());
        let rec = decode(DataLink::RAW, &ip, &[]).unwrap();
        assert_eq!(
            rec.what,
            What::Unsupported("IPv4 fragment (not reassembled)")
        );
    }
}

/// A NAK from a receiver with IPv6 NLAs.
fn nak6() -> Vec<u8> {
    PacketRepr {
        sport: 7500,
        dport: 1000,
        gsi: Gsi([1, 2, 3, 4, 5, 6]),
        parity: false,
        var_pktlen: false,
        body: Body::Nak(Nak {
            sqn: SeqNo(5),
            src_nla: SRC6.into(),
            grp_nla: GRP6.into(),
        }),
        options: Options::default(),
        payload: &[],
    }
    .to_vec()
}

#[test]
fn ipv6_in_a_json_dump_and_through_the_group_filter() {
    let first_fragment = [Ext6::Fragment {
        offset: 0,
        more: true,
    }];
    let path = write_capture(
        "v6.pcap",
        &[
            raw6_eth(&[], &spm6()),
            raw_eth(&spm()),
            frames::ethernet(
                ETHERTYPE_IPV6,
                &frames::ipv6_ext(Ipv6Addr::LOCALHOST, SRC6, &HBH_DST, IPPROTO_PGM, &nak6()),
            ),
            frames::ethernet(
                ETHERTYPE_IPV6,
                &frames::udp6(SRC6, GRP6, &[], 40000, 3055, &odata(8, 5)),
            ),
            raw6_eth(&first_fragment, &spm6()),
        ],
    );
    let p = path.to_str().unwrap();
    let args = Args::try_parse_from(["pgm-dump", "--pcap", p, "--json", "--group", "2001:db8::1"]);
    let mut out = Vec::new();
    let s = run(&args.unwrap(), &mut out).unwrap();
    assert_eq!((s.frames, s.pgm, s.unsupported, s.filtered), (5, 3, 1, 1));
    let lines: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<Value> = lines
        .iter()
        .map(|l| json!([l["frame"], l["type"], l["src"], l["dst"]]))
        .collect();
    assert_eq!(
        got,
        [
            json!([1, "SPM", "2001:db8::1", "ff0e::101"]),
            json!([3, "NAK", "::1", "2001:db8::1"]),
            json!([4, "ODATA", "2001:db8::1", "ff0e::101"]),
            json!([5, "UNSUPPORTED", "2001:db8::1", "ff0e::101"]),
        ]
    );
    assert_eq!(lines[0]["nla"], "2001:db8::1");
    assert_eq!(lines[1]["nla"], "2001:db8::1");
    assert_eq!(lines[1]["group"], "ff0e::101");
    assert_eq!(lines[2]["encap"], "udp");
    assert!(lines[..3].iter().all(|l| l["checksum_ok"] == true));
    // --port matches an IPv6 packet by its ports, and never a fragment note.
    let opts = Output {
        udp_ports: vec![3055],
        filter: Filter {
            group: Some(GRP6.into()),
            port: Some(7500),
        },
        ..Output::default()
    };
    let mut out = Vec::new();
    let s = dump_with(&path, &opts, &mut out).unwrap();
    assert_eq!((s.pgm, s.unsupported), (2, 0));
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with("1.000000 2001:db8::1.1000 > ff0e::101.7500 PGM SPM"),
        "{text}"
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn non_pgm_is_skipped() {
    let tcp = frames::ipv4(SRC, GRP, 6, &[0; 20]);
    assert!(decode(
        DataLink::ETHERNET,
        &frames::ethernet(ETHERTYPE_IPV4, &tcp),
        &[3055]
    )
    .is_none());
    let arp = frames::ethernet(0x0806, &[0; 28]);
    assert!(decode(DataLink::ETHERNET, &arp, &[3055]).is_none());
    for n in 0..40 {
        let _ = decode(DataLink::ETHERNET, &arp[..n.min(arp.len())], &[3055]);
        let _ = decode(DataLink::LINUX_SLL2, &arp[..n.min(arp.len())], &[3055]);
    }
}

#[test]
fn malformed_pgm_is_reported_and_padding_is_ignored() {
    // Ethernet padding after a short PGM packet (SPMR, 16 bytes) is not part of it.
    let spmr = PacketRepr {
        sport: 7500,
        dport: 1000,
        gsi: Gsi([1, 2, 3, 4, 5, 6]),
        parity: false,
        var_pktlen: false,
        body: Body::Spmr,
        options: Options::default(),
        payload: &[],
    }
    .to_vec();
    let frame = raw_eth(&spmr);
    assert_eq!(frame.len(), 60);
    let j = decode(DataLink::ETHERNET, &frame, &[]).unwrap().to_json();
    assert_eq!(j["type"], "SPMR");
    assert_eq!(j["checksum_ok"], true);
    // A truncated NAK: MALFORMED with the reason, src and dst.
    let mut bad = nak();
    bad.truncate(30);
    let rec = decode(DataLink::ETHERNET, &raw_eth(&bad), &[]).unwrap();
    assert!(rec.is_pgm());
    let j = rec.to_json();
    assert_eq!(j["type"], "MALFORMED");
    assert!(j["reason"].as_str().unwrap().contains("truncated"), "{j}");
    assert_eq!(j["src"], "10.0.0.1");
    assert!(rec.to_text().contains("PGM MALFORMED"));
    // A bad checksum is not malformed, just flagged.
    let mut b = spm();
    b[20] ^= 1;
    let rec = decode(DataLink::ETHERNET, &raw_eth(&b), &[]).unwrap();
    assert_eq!(rec.to_json()["checksum_ok"], false);
    assert!(rec.to_text().ends_with("[bad cksum]"));
    // The capture cut the packet short (snaplen).
    let frame = raw_eth(&fragment());
    let rec = decode(DataLink::ETHERNET, &frame[..80], &[]).unwrap();
    assert!(matches!(rec.what, What::Malformed { .. }), "{rec:?}");
    assert_eq!(rec.to_json()["type"], "MALFORMED");
    // A UDP length past the datagram.
    let mut ip = frames::udp4(SRC, GRP, 1, 3055, &spm());
    ip[24..26].copy_from_slice(&999u16.to_be_bytes());
    let rec = decode(DataLink::RAW, &ip, &[3055]).unwrap();
    assert!(rec.to_json()["reason"]
        .as_str()
        .unwrap()
        .contains("UDP length"));
}

#[test]
fn gso_super_packet_is_split_into_its_pgm_packets() {
    let pkts = [odata(10, 100), odata(11, 100), odata(12, 40)];
    let recs = decode_frame(DataLink::ETHERNET, 4, 2.0, &gso_eth(&pkts), &[3055]);
    assert_eq!(recs.len(), 3, "{recs:?}");
    for (i, (rec, pkt)) in recs.iter().zip(&pkts).enumerate() {
        assert_eq!(
            rec.gso,
            Some(Gso {
                index: i + 1,
                of: 3
            })
        );
        assert_eq!(
            rec.what,
            What::Pgm {
                encap: Encap::Udp {
                    sport: 40000,
                    dport: 3055
                },
                data: pkt.clone()
            }
        );
        assert_eq!((rec.frame, rec.time), (4, 2.0));
        let j = rec.to_json();
        assert_eq!(j["type"], "ODATA");
        assert_eq!(j["sqn"], 10 + i);
        assert_eq!(j["checksum_ok"], true);
        assert_eq!(j["gso"], json!({"index": i + 1, "of": 3}));
        let t = rec.to_text();
        assert!(t.contains("UDP PGM ODATA"), "{t}");
        assert!(t.ends_with(&format!("[gso {}/3]", i + 1)), "{t}");
    }
    // Each packet keeps its own checksum verdict.
    let mut bad = pkts.clone();
    bad[1][30] ^= 1;
    let recs = decode_frame(DataLink::ETHERNET, 1, 0.0, &gso_eth(&bad), &[3055]);
    let ok: Vec<Value> = recs
        .iter()
        .map(|r| r.to_json()["checksum_ok"].clone())
        .collect();
    assert_eq!(ok, [true, false, true]);
    assert!(recs[1].to_text().ends_with("[bad cksum] [gso 2/3]"));
    // All of one length, and just one segment: no note, nothing split.
    let recs = decode_frame(DataLink::ETHERNET, 1, 0.0, &gso_eth(&pkts[..2]), &[3055]);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[1].gso, Some(Gso { index: 2, of: 2 }));
    let one = decode(DataLink::ETHERNET, &gso_eth(&pkts[..1]), &[3055]).unwrap();
    assert_eq!(one.gso, None);
    assert!(one.to_json().get("gso").is_none());
}

#[test]
fn gso_split_that_does_not_work_out_is_malformed() {
    let (a, b, short) = (odata(1, 100), odata(2, 100), odata(3, 40));
    let malformed = |pgms: &[Vec<u8>], tail: &[u8]| {
        let mut payload = pgms.concat();
        payload.extend_from_slice(tail);
        let frame = frames::ethernet(
            ETHERTYPE_IPV4,
            &frames::udp4(SRC, GRP, 40000, 3055, &payload),
        );
        let rec = decode(DataLink::ETHERNET, &frame, &[3055]).unwrap();
        assert_eq!(rec.gso, None);
        assert_eq!(rec.to_json()["type"], "MALFORMED", "{pgms:?} {tail:?}");
        assert!(rec.to_text().contains("PGM MALFORMED: TSDU length"));
    };
    // Trailing garbage, a truncated last packet, a short packet before a long one, a
    // packet of another length in the middle, a shorter last packet whose header says more.
    malformed(&[a.clone(), b.clone()], &[0xde, 0xad, 0xbe, 0xef]);
    malformed(&[a.clone(), b.clone()], &[0; 40]);
    malformed(&[a.clone(), b[..60].to_vec()], &[]);
    malformed(&[short.clone(), a.clone()], &[]);
    malformed(&[a.clone(), short.clone(), b.clone()], &[]);
    let mut lying = short.clone();
    lying[14..16].copy_from_slice(&50u16.to_be_bytes());
    malformed(&[a.clone(), lying], &[]);
    // Raw PGM is never GSO: packets back to back in one IP packet stay one malformed packet.
    let rec = decode(DataLink::ETHERNET, &raw_eth(&[a, b].concat()), &[]).unwrap();
    assert_eq!(rec.to_json()["type"], "MALFORMED");
    assert_eq!(rec.gso, None);
}

#[test]
fn count_and_filter_apply_to_each_packet_of_a_gso_datagram() {
    let pkts = [odata(10, 100), odata(11, 100), odata(12, 40)];
    let frame = gso_eth(&pkts);
    let mut opts = Output {
        udp_ports: vec![3055],
        json: true,
        count: Some(2),
        ..Output::default()
    };
    let mut out = Vec::new();
    let mut p = Printer::new(&opts, &mut out);
    p.frame(DataLink::ETHERNET, 1.0, &frame).unwrap();
    assert!(p.done());
    let s = p.finish().unwrap();
    assert_eq!((s.frames, s.pgm, s.malformed), (1, 2, 0));
    let sqns: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["sqn"].clone())
        .collect();
    assert_eq!(sqns, [json!(10), json!(11)]);
    // --port matches each packet by its own ports (here all share them).
    opts.count = None;
    opts.filter.port = Some(1000);
    let mut out = Vec::new();
    let mut p = Printer::new(&opts, &mut out);
    p.frame(DataLink::ETHERNET, 1.0, &frame).unwrap();
    assert_eq!(p.finish().unwrap().pgm, 3);
    opts.filter.port = Some(1);
    let mut out = Vec::new();
    let mut p = Printer::new(&opts, &mut out);
    p.frame(DataLink::ETHERNET, 1.0, &frame).unwrap();
    let s = p.finish().unwrap();
    assert_eq!((s.pgm, s.filtered), (0, 3));
}

#[test]
fn garbage_frames_never_panic() {
    let gso = gso_eth(&[odata(10, 20), odata(11, 20), odata(12, 6)]);
    assert_eq!(
        decode_frame(DataLink::ETHERNET, 1, 0.0, &gso, &[3055]).len(),
        3
    );
    let gso6 = frames::ethernet(
        ETHERTYPE_IPV6,
        &frames::udp6(
            SRC6,
            GRP6,
            &HBH_DST,
            1,
            3055,
            &[odata(1, 20), odata(2, 6)].concat(),
        ),
    );
    let seeds = [
        raw_eth(&spm()),
        raw_eth(&nak()),
        raw_eth(&fragment()),
        gso,
        raw6_eth(&HBH_DST, &spm6()),
        raw6_eth(
            &[Ext6::Fragment {
                offset: 0,
                more: false,
            }],
            &nak(),
        ),
        gso6,
    ];
    for seed in &seeds {
        for i in 0..seed.len() {
            for v in [0u8, 0xff, 0x45, 0x60, 0x71, 0x11, 0x2c, 0x3c] {
                let mut f = seed.clone();
                f[i] = v;
                for link in [DataLink::ETHERNET, DataLink::RAW, DataLink::LINUX_SLL] {
                    for r in decode_frame(link, 1, 0.0, &f, &[3055]) {
                        let _ = r.to_json();
                        let _ = r.to_text();
                    }
                }
            }
            for r in decode_frame(DataLink::ETHERNET, 1, 0.0, &seed[..i], &[3055]) {
                let _ = r.to_text();
            }
        }
    }
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("pgm-dump-{}-{name}", std::process::id()))
}

fn write_capture(name: &str, frames: &[Vec<u8>]) -> PathBuf {
    let path = temp(name);
    let f: Vec<(Duration, Vec<u8>)> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| (Duration::from_micros(1_000_000 + i as u64), f.clone()))
        .collect();
    write_pcap(File::create(&path).unwrap(), DataLink::ETHERNET, &f).unwrap();
    path
}

#[test]
fn dump_a_pcap_with_count_and_json() {
    let arp = frames::ethernet(0x0806, &[0; 28]);
    let path = write_capture(
        "count.pcap",
        &[raw_eth(&spm()), arp, raw_eth(&nak()), raw_eth(&fragment())],
    );
    let mut out = Vec::new();
    let s = dump(&path, &[3055], true, None, &mut out).unwrap();
    assert_eq!((s.frames, s.pgm, s.malformed), (4, 3, 0));
    let lines: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["type"], "NAK");
    assert_eq!(lines[1]["frame"], 3);
    assert_eq!(lines[0]["time"], 1.0);
    let mut out = Vec::new();
    let s = dump(&path, &[3055], false, Some(2), &mut out).unwrap();
    assert_eq!(s.pgm, 2);
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), 2);
    let mut out = Vec::new();
    assert_eq!(
        dump(&path, &[3055], false, Some(0), &mut out).unwrap().pgm,
        0
    );
    assert!(out.is_empty());
    let recs = read_records(&path, &[3055]).unwrap();
    assert_eq!(recs.len(), 3);
    let same = records_from_pcap_reader(File::open(&path).unwrap(), &[3055]).unwrap();
    assert_eq!(recs, same);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn errors_are_clear() {
    let args = Args::try_parse_from(["pgm-dump", "--iface", "pgm-nosuch0"]).unwrap();
    let e = run(&args, &mut Vec::new()).unwrap_err();
    assert!(matches!(e, DumpError::NoSuchInterface { .. }), "{e:?}");
    assert!(e.to_string().contains("no interface pgm-nosuch0"), "{e}");
    let e = DumpError::NotPermitted {
        iface: "eth0".into(),
        err: io::Error::from(io::ErrorKind::PermissionDenied),
    };
    assert!(e
        .to_string()
        .contains("live capture needs root or CAP_NET_RAW"));

    let missing = temp("missing.pcap");
    let e = dump(&missing, &[3055], false, None, &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("cannot read"), "{e}");

    let junk = temp("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file at all").unwrap();
    let e = dump(&junk, &[3055], false, None, &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("not a readable pcap"), "{e}");
    std::fs::write(&junk, b"ab").unwrap();
    assert!(dump(&junk, &[3055], false, None, &mut Vec::new()).is_err());

    // A capture cut off inside a record: the packets before it are dumped, then an error.
    let path = write_capture("cut.pcap", &[raw_eth(&spm()), raw_eth(&nak())]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 10);
    std::fs::write(&junk, &bytes).unwrap();
    let mut out = Vec::new();
    assert!(dump(&junk, &[3055], false, None, &mut out).is_err());
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), 1);
    std::fs::remove_file(&junk).unwrap();
    std::fs::remove_file(&path).unwrap();

    // An unsupported link type.
    let path = temp("ppp.pcap");
    write_pcap(File::create(&path).unwrap(), DataLink::PPP, &[]).unwrap();
    let e = dump(&path, &[3055], false, None, &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("link type"), "{e}");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn args_defaults_and_repeats() {
    let a = Args::try_parse_from(["pgm-dump", "--pcap", "x.pcap"]).unwrap();
    assert_eq!(a.udp_ports, [DEFAULT_UDP_PORT]);
    assert!(!a.json);
    let a = Args::try_parse_from([
        "pgm-dump",
        "--pcap",
        "x",
        "--udp-port",
        "7500",
        "--udp-port",
        "5555",
        "--json",
        "--count",
        "3",
    ])
    .unwrap();
    assert_eq!(a.udp_ports, [7500, 5555]);
    assert_eq!(a.count, Some(3));
    assert!(Args::try_parse_from(["pgm-dump"]).is_err());
    assert!(Args::try_parse_from(["pgm-dump", "--pcap", "x", "--iface", "eth0"]).is_err());
    let a = Args::try_parse_from([
        "pgm-dump",
        "--iface",
        "lo",
        "--group",
        "239.192.1.1",
        "--port",
        "7500",
        "--duration",
        "1.5",
    ])
    .unwrap();
    assert_eq!(a.duration, Some(Duration::from_millis(1500)));
    assert_eq!(
        a.filter(),
        Filter {
            group: Some(GRP.into()),
            port: Some(7500)
        }
    );
    assert!(a.output().flush_each);
    // --duration is for live capture; it must be a duration.
    assert!(Args::try_parse_from(["pgm-dump", "--pcap", "x", "--duration", "1"]).is_err());
    assert!(Args::try_parse_from(["pgm-dump", "--iface", "lo", "--duration", "-1"]).is_err());
    assert!(Args::try_parse_from(["pgm-dump", "--iface", "lo", "--duration", "x"]).is_err());
    assert!(Args::try_parse_from(["pgm-dump", "--iface", "lo", "--group", "x"]).is_err());
}

#[test]
fn filter_by_group_and_port() {
    let other = Ipv4Addr::new(10, 0, 0, 9);
    let raw = decode(DataLink::ETHERNET, &raw_eth(&spm()), &[]).unwrap();
    let udp = decode(
        DataLink::RAW,
        &frames::udp4(SRC, other, 40000, 5555, &nak()),
        &[5555],
    )
    .unwrap();
    let f = |group: Option<Ipv4Addr>, port| Filter {
        group: group.map(IpAddr::V4),
        port,
    };
    assert!(Filter::default().matches(&raw));
    // The group matches the destination or the source.
    assert!(f(Some(GRP), None).matches(&raw));
    assert!(f(Some(SRC), None).matches(&raw));
    assert!(!f(Some(other), None).matches(&raw));
    assert!(f(Some(other), None).matches(&udp));
    // The port: PGM sport or dport, or the UDP ports.
    assert!(f(None, Some(1000)).matches(&raw));
    assert!(f(None, Some(7500)).matches(&raw));
    assert!(!f(None, Some(5555)).matches(&raw));
    assert!(f(None, Some(5555)).matches(&udp));
    assert!(f(None, Some(40000)).matches(&udp));
    assert!(f(None, Some(7500)).matches(&udp));
    assert!(!f(None, Some(3055)).matches(&udp));
    assert!(f(Some(SRC), Some(7500)).matches(&udp));
    assert!(!f(Some(GRP), Some(7500)).matches(&udp));
    // A broken carrier matches by UDP ports only; fragment notes never match a port.
    let mut ip = frames::udp4(SRC, GRP, 1, 3055, &spm());
    ip[24..26].copy_from_slice(&999u16.to_be_bytes());
    let bad = decode(DataLink::RAW, &ip, &[3055]).unwrap();
    assert!(f(None, Some(3055)).matches(&bad));
    assert!(!f(None, Some(1000)).matches(&bad));
    let mut ip = frames::ipv4(SRC, GRP, IPPROTO_PGM, &spm());
    ip[6] = 0x20;
    let note = decode(DataLink::RAW, &ip, &[]).unwrap();
    assert!(!f(None, Some(1000)).matches(&note));
    assert!(Filter::default().matches(&note));
    // IPv6 addresses and packets.
    let v6 = decode(
        DataLink::RAW,
        &frames::ipv6(SRC6, GRP6, IPPROTO_PGM, &spm()),
        &[],
    )
    .unwrap();
    assert!(f(None, Some(1000)).matches(&v6));
    assert!(Filter {
        group: Some(GRP6.into()),
        port: None
    }
    .matches(&v6));
    assert!(!f(Some(SRC), None).matches(&v6));
}

#[test]
fn dump_with_a_filter() {
    let to_other = frames::ethernet(
        ETHERTYPE_IPV4,
        &frames::ipv4(SRC, Ipv4Addr::new(239, 9, 9, 9), IPPROTO_PGM, &spm()),
    );
    let path = write_capture(
        "filter.pcap",
        &[to_other.clone(), raw_eth(&spm()), to_other, raw_eth(&nak())],
    );
    let opts = Output {
        udp_ports: vec![3055],
        json: true,
        count: Some(1),
        filter: Filter {
            group: Some(GRP.into()),
            port: Some(7500),
        },
        flush_each: true,
    };
    let mut out = Vec::new();
    let s = dump_with(&path, &opts, &mut out).unwrap();
    assert_eq!((s.frames, s.pgm, s.filtered), (2, 1, 1));
    let j: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        (j["frame"].clone(), j["type"].clone()),
        (json!(2), json!("SPM"))
    );
    let opts = Output {
        count: None,
        ..opts
    };
    let mut out = Vec::new();
    let s = dump_with(&path, &opts, &mut out).unwrap();
    assert_eq!((s.frames, s.pgm, s.filtered), (4, 2, 2));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_closed_output_ends_the_dump_quietly() {
    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
    }
    let opts = Output::default();
    let mut closed = Closed;
    let mut p = Printer::new(&opts, &mut closed);
    p.frame(DataLink::ETHERNET, 0.0, &raw_eth(&spm())).unwrap();
    assert!(p.done());
    assert_eq!(p.finish().unwrap().pgm, 1);
}

#[test]
fn pcapng_timestamps_use_if_tsresol() {
    use pcap_file::pcapng::{
        blocks::{
            enhanced_packet::EnhancedPacketBlock, interface_description::InterfaceDescriptionBlock,
        },
        PcapNgWriter,
    };
    let path = temp("ng.pcapng");
    let mut w = PcapNgWriter::new(File::create(&path).unwrap()).unwrap();
    let mut idb = InterfaceDescriptionBlock::new(DataLink::ETHERNET, 65535);
    idb.options.push(InterfaceDescriptionOption::IfTsResol(9));
    w.write_pcapng_block(idb).unwrap();
    let frame = raw_eth(&spm());
    // pcap-file stores the raw units as "nanoseconds": 2.5 s in ns units.
    w.write_pcapng_block(EnhancedPacketBlock {
        interface_id: 0,
        timestamp: Duration::from_millis(2500),
        original_len: frame.len() as u32,
        data: frame.clone().into(),
        options: vec![],
    })
    .unwrap();
    drop(w);
    let recs = read_records(&path, &[]).unwrap();
    assert_eq!(recs.len(), 1);
    assert!((recs[0].time - 2.5).abs() < 1e-9, "{}", recs[0].time);
    std::fs::remove_file(&path).unwrap();
}
