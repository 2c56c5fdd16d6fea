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
use pgm::wire::{Body, Data, Fragment, Gsi, Nak, NakList, Options, PacketRepr, SeqNo, Spm};
use serde_json::{json, Value};

use super::{
    decode::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_PGM, IPPROTO_UDP},
    decode_frame, dump, dump_with,
    pcap::write_pcap,
    read_records, records_from_pcap_reader, run, Args, DumpError, Encap, Filter, Gso, Output,
    Printer, Record, What, DEFAULT_UDP_PORT,
};
use crate::frames;

const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const GRP: Ipv4Addr = Ipv4Addr::new(239, 192, 1, 1);

fn spm() -> Vec<u8> {
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
            path: SRC.into(),
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

#[test]
fn ipv6_gets_an_unsupported_note() {
    let (a, b): (Ipv6Addr, Ipv6Addr) = ("2001:db8::1".parse().unwrap(), "ff0e::1".parse().unwrap());
    let v6 = frames::ipv6(a, b, IPPROTO_PGM, &spm());
    let rec = decode(
        DataLink::ETHERNET,
        &frames::ethernet(ETHERTYPE_IPV6, &v6),
        &[],
    )
    .unwrap();
    assert_eq!(rec.what, What::Unsupported("IPv6 is not supported yet"));
    assert!(!rec.is_pgm());
    let j = rec.to_json();
    assert_eq!(j["type"], "UNSUPPORTED");
    assert_eq!(j["src"], "2001:db8::1");
    assert!(rec.to_text().contains("unsupported: IPv6"));
    // UDP on a PGM port too, but not other IPv6 traffic.
    let mut udp = vec![0x9c, 0x40, 0x0b, 0xef, 0, 24, 0, 0];
    udp.extend_from_slice(&spm());
    assert!(decode(
        DataLink::RAW,
        &frames::ipv6(a, b, IPPROTO_UDP, &udp),
        &[3055]
    )
    .is_some());
    assert!(decode(DataLink::RAW, &frames::ipv6(a, b, 58, &[0; 8]), &[3055]).is_none());
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
    let seeds = [raw_eth(&spm()), raw_eth(&nak()), raw_eth(&fragment()), gso];
    for seed in &seeds {
        for i in 0..seed.len() {
            for v in [0u8, 0xff, 0x45, 0x71, 0x11] {
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
    // A broken carrier matches by UDP ports only; IPv6 notes never match a port.
    let mut ip = frames::udp4(SRC, GRP, 1, 3055, &spm());
    ip[24..26].copy_from_slice(&999u16.to_be_bytes());
    let bad = decode(DataLink::RAW, &ip, &[3055]).unwrap();
    assert!(f(None, Some(3055)).matches(&bad));
    assert!(!f(None, Some(1000)).matches(&bad));
    let (a, b): (Ipv6Addr, Ipv6Addr) = ("2001:db8::1".parse().unwrap(), "ff0e::1".parse().unwrap());
    let v6 = decode(DataLink::RAW, &frames::ipv6(a, b, IPPROTO_PGM, &spm()), &[]).unwrap();
    assert!(!f(None, Some(1000)).matches(&v6));
    assert!(Filter::default().matches(&v6));
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
