//! Wireshark cross-check: packets built by our encoder must dissect cleanly in tshark (right type,
//! sqn, GSI, NAK list and fragment fields, checksum good, no malformed or expert warning/error
//! flags), and `pgm-dump` must agree with tshark packet by packet on captures, including the
//! real OpenPGM capture `pgm/tests/fixtures/openpgm.pcap` when it exists.
//!
//! The generated capture carries PGM over IPv4 and IPv6 (raw and in UDP, some behind IPv6
//! extension headers).
//!
//! tshark fields used (Wireshark 4.0): `frame.number`, `ip.src`, `ip.dst`, `ipv6.src`,
//! `ipv6.dst`, `pgm.hdr.type`, `pgm.hdr.gsi`, `pgm.hdr.tsdulen`, `pgm.hdr.cksum.status`
//! (1 = good), `pgm.spm.sqn` (SPM, and also the ODATA/RDATA data sqn: Wireshark reuses the SPM
//! field), `pgm.spm.trail`, `pgm.spm.lead`, `pgm.nak.sqn` (NAK/NNAK/NCF), `pgm.poll.sqn`,
//! `pgm.polr.sqn`, `pgm.ack.maxsqn`, `pgm.opts.nak.list`,
//! `pgm.opts.fragment.{first_sqn,fragment_offset,total_length}`, `_ws.expert.severity`,
//! `_ws.expert.message`, `_ws.malformed`. Wireshark 4.0 has no SPMR dissector (type 0x0c is not
//! in its type table), so SPMRs and unknown types are not dissected as PGM there; the checks
//! accept that and say so.
//!
//! Without tshark every test prints a loud SKIPPED line and passes.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::{
    fmt::Write as _,
    fs::File,
    io::BufWriter,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use pcap_file::DataLink;
use pgm::wire::{
    options::{CrFlags, NakBoIvl, NakBoRng, ParityPrm, PgmccData, PgmccFeedback, Rst},
    Ack, Body, Data, Fragment, Gsi, Nak, NakList, Options, PacketRepr, Poll, Polr, SeqNo, Spm,
};
use serde_json::Value;
use tools::{
    dump::{self, What},
    frames::{self, Ext6},
};

/// PGM ports (GSI 0a0b0c0d0e0f): the source's data-source port and the data-destination port.
const SRC_PORT: u16 = 40_001;
const DST_PORT: u16 = 7500;
const GSI: Gsi = Gsi([0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f]);
const SOURCE: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const RECEIVER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 20);
const GROUP: Ipv4Addr = Ipv4Addr::new(239, 192, 1, 1);
/// UDP encapsulation ports used in the generated capture.
const UDP_PORTS: [u16; 2] = [3055, 5555];
/// Wireshark expert severities (epan/proto.h): PI_WARN and PI_ERROR.
const PI_WARN: u64 = 0x0060_0000;

fn tshark_missing() -> bool {
    let ok = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!();
        eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        eprintln!(
            "!!!  SKIPPED: tshark not installed — Wireshark cross-check NOT run          !!!"
        );
        eprintln!(
            "!!!  (apt-get install tshark)                                               !!!"
        );
        eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        eprintln!();
        // Under CI (which installs tshark) a skip would hide a broken set-up: fail instead.
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()),
            "CI is set and tshark is missing (apt-get install tshark)"
        );
    }
    !ok
}

fn temp_pcap(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("pgm-tshark-{}-{name}.pcap", std::process::id()))
}

// ---- The generated capture ----------------------------------------------------------------

/// How a generated packet is carried.
#[derive(Clone, Copy)]
enum Carry {
    Raw,
    Udp(u16),
}

/// One generated packet: its bytes, IP endpoints (IPv4 or IPv6), the IPv6 extension headers in
/// front of it, and its carrier.
struct Gen {
    name: &'static str,
    bytes: Vec<u8>,
    src: IpAddr,
    dst: IpAddr,
    exts: &'static [Ext6],
    carry: Carry,
}

fn repr<'a>(body: Body, options: &Options, payload: &'a [u8]) -> PacketRepr<'a> {
    let options = *options;
    let upstream = body.packet_type().is_upstream();
    let (sport, dport) = if upstream {
        (DST_PORT, SRC_PORT)
    } else {
        (SRC_PORT, DST_PORT)
    };
    PacketRepr {
        sport,
        dport,
        gsi: GSI,
        parity: false,
        var_pktlen: false,
        body,
        options,
        payload,
    }
}

fn nak(sqn: u32) -> Nak {
    Nak {
        sqn: SeqNo(sqn),
        src_nla: SOURCE.into(),
        grp_nla: GROUP.into(),
    }
}

/// Every packet type, with the options each carries in practice, through our encoder.
#[allow(clippy::too_many_lines, reason = "one entry per packet type")]
fn generated() -> Vec<Gen> {
    let apdu: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let list = NakList::from_slice(&[SeqNo(11), SeqNo(12), SeqNo(15), SeqNo(0x8000_0000)]);
    let v6: IpAddr = "2001:db8::10".parse::<Ipv6Addr>().unwrap().into();
    let mut out = Vec::new();
    let mut push = |name, r: PacketRepr<'_>, carry| {
        let upstream = r.packet_type().is_upstream();
        let (src, dst) = if upstream {
            (RECEIVER, SOURCE)
        } else {
            (SOURCE, GROUP)
        };
        out.push(Gen {
            name,
            bytes: r.to_vec(),
            src: src.into(),
            dst: dst.into(),
            exts: &[],
            carry,
        });
    };
    let spm = |sqn, lead| {
        Body::Spm(Spm {
            spm_sqn: SeqNo(sqn),
            trail: SeqNo(0),
            lead: SeqNo(lead),
            path: SOURCE.into(),
        })
    };
    push(
        "spm",
        repr(spm(0, u32::MAX), &Options::default(), &[]),
        Carry::Raw,
    );
    push(
        "spm_parity_crqst",
        repr(
            spm(1, 9),
            &Options {
                parity_prm: Some(ParityPrm {
                    proactive: true,
                    on_demand: false,
                    tgs: 8,
                }),
                crqst: Some(CrFlags {
                    ne_wl: false,
                    ne_wp: false,
                    rx_wp: true,
                }),
                ..Options::default()
            },
            &[],
        ),
        Carry::Udp(3055),
    );
    push(
        "spm_fin",
        repr(
            spm(2, 9),
            &Options {
                fin: true,
                ..Options::default()
            },
            &[],
        ),
        Carry::Raw,
    );
    push(
        "spm_ipv6_path",
        repr(
            Body::Spm(Spm {
                spm_sqn: SeqNo(3),
                trail: SeqNo(0),
                lead: SeqNo(9),
                path: v6,
            }),
            &Options::default(),
            &[],
        ),
        Carry::Udp(5555),
    );
    push(
        "poll",
        repr(
            Body::Poll(Poll {
                sqn: SeqNo(4),
                round: 1,
                s_type: 0,
                path: SOURCE.into(),
                bo_ivl_us: 100_000,
                rand: [1, 2, 3, 4],
                mask: 0xff,
            }),
            &Options::default(),
            &[],
        ),
        Carry::Raw,
    );
    push(
        "polr",
        repr(
            Body::Polr(Polr {
                sqn: SeqNo(4),
                round: 1,
            }),
            &Options::default(),
            &[],
        ),
        Carry::Udp(3055),
    );
    let data = |sqn| {
        Body::Odata(Data {
            sqn: SeqNo(sqn),
            trail: SeqNo(0),
        })
    };
    push(
        "odata",
        repr(data(0), &Options::default(), b"hello, PGM"),
        Carry::Raw,
    );
    push(
        "odata_udp",
        repr(data(1), &Options::default(), &apdu[..1400]),
        Carry::Udp(3055),
    );
    push(
        "odata_join_syn_pgmcc",
        repr(
            data(2),
            &Options {
                join: Some(SeqNo(1)),
                syn: true,
                pgmcc_data: Some(PgmccData {
                    tstamp: 1000,
                    acker: RECEIVER.into(),
                }),
                ..Options::default()
            },
            b"with options",
        ),
        Carry::Raw,
    );
    // A 3000-byte APDU in three fragments at sqn 3..5, as OpenPGM's send_apdu does.
    for (i, (off, len)) in [(0usize, 1400usize), (1400, 1400), (2800, 200)]
        .into_iter()
        .enumerate()
    {
        let o = Options {
            fragment: Some(Fragment {
                first_sqn: SeqNo(3),
                offset: off as u32,
                apdu_len: 3000,
            }),
            ..Options::default()
        };
        let name = ["odata_frag_0", "odata_frag_1", "odata_frag_2"][i];
        let carry = if i == 1 { Carry::Udp(5555) } else { Carry::Raw };
        push(
            name,
            repr(data(3 + i as u32), &o, &apdu[off..off + len]),
            carry,
        );
    }
    push(
        "rdata",
        repr(
            Body::Rdata(Data {
                sqn: SeqNo(1),
                trail: SeqNo(0),
            }),
            &Options::default(),
            &apdu[..1400],
        ),
        Carry::Raw,
    );
    push(
        "rdata_frag",
        repr(
            Body::Rdata(Data {
                sqn: SeqNo(4),
                trail: SeqNo(1),
            }),
            &Options {
                fragment: Some(Fragment {
                    first_sqn: SeqNo(3),
                    offset: 1400,
                    apdu_len: 3000,
                }),
                ..Options::default()
            },
            &apdu[1400..2800],
        ),
        Carry::Udp(3055),
    );
    // A parity RDATA of a group holding fragments: OPT_FRAGMENT with OP_ENCODED (RFC 3208
    // §11.2), OPT_VAR_PKTLEN.
    let encoded = [0x80, 1, 2, 3, 4, 0, 0, 5, 0x78, 0, 0, 0x0b, 0xb8];
    push(
        "parity_rdata_encoded_fragment",
        PacketRepr {
            parity: true,
            var_pktlen: true,
            ..repr(
                Body::Rdata(Data {
                    sqn: SeqNo(8),
                    trail: SeqNo(0),
                }),
                &Options {
                    fragment_encoded: Some(encoded),
                    ..Options::default()
                },
                &apdu[..1402],
            )
        },
        Carry::Udp(3055),
    );
    push(
        "nak",
        repr(Body::Nak(nak(10)), &Options::default(), &[]),
        Carry::Raw,
    );
    let with_list = Options {
        nak_list: Some(list),
        ..Options::default()
    };
    push(
        "nak_list",
        repr(Body::Nak(nak(10)), &with_list, &[]),
        Carry::Udp(3055),
    );
    push(
        "nak_ipv6",
        repr(
            Body::Nak(Nak {
                sqn: SeqNo(7),
                src_nla: v6,
                grp_nla: "ff0e::101".parse::<Ipv6Addr>().unwrap().into(),
            }),
            &Options::default(),
            &[],
        ),
        Carry::Raw,
    );
    push(
        "nnak_list",
        repr(Body::Nnak(nak(10)), &with_list, &[]),
        Carry::Raw,
    );
    push(
        "ncf_list",
        repr(Body::Ncf(nak(10)), &with_list, &[]),
        Carry::Udp(5555),
    );
    push(
        "nak_backoff",
        repr(
            Body::Nak(nak(20)),
            &Options {
                nak_bo_ivl: Some(NakBoIvl {
                    ivl_us: 50_000,
                    sqn: SeqNo(4),
                }),
                nak_bo_rng: Some(NakBoRng {
                    max_us: 100_000,
                    min_us: 1000,
                }),
                ..Options::default()
            },
            &[],
        ),
        Carry::Raw,
    );
    push(
        "odata_rst",
        repr(
            data(6),
            &Options {
                rst: Some(Rst {
                    no_naks: true,
                    code: 1,
                }),
                ..Options::default()
            },
            b"reset",
        ),
        Carry::Raw,
    );
    push(
        "ack_pgmcc_feedback",
        repr(
            Body::Ack(Ack {
                rx_max: SeqNo(5),
                bitmap: 0xffff_fffe,
            }),
            &Options {
                pgmcc_feedback: Some(PgmccFeedback {
                    tstamp: 1000,
                    loss_rate: 0x0100,
                    nla: RECEIVER.into(),
                }),
                ..Options::default()
            },
            &[],
        ),
        Carry::Udp(3055),
    );
    push(
        "spmr",
        repr(Body::Spmr, &Options::default(), &[]),
        Carry::Raw,
    );
    push(
        "spmr_udp",
        repr(Body::Spmr, &Options::default(), &[]),
        Carry::Udp(3055),
    );
    push(
        "unknown_type",
        repr(Body::Unknown(0x0f), &Options::default(), b"opaque"),
        Carry::Raw,
    );
    over_ipv6(&mut out);
    out
}

/// Hop-by-Hop and Destination Options headers, as some of the IPv6 packets carry them.
const HBH_DST: [Ext6; 2] = [
    Ext6::Opts { kind: 0, units: 0 },
    Ext6::Opts { kind: 60, units: 1 },
];

/// Appends copies of some generated packets carried over IPv6 (raw and UDP, with and without
/// extension headers), the IPv4 endpoints mapped to IPv6 ones.
fn over_ipv6(gens: &mut Vec<Gen>) {
    let v6 = |a: IpAddr| -> IpAddr {
        let a = match a {
            IpAddr::V4(a) if a == GROUP => "ff0e::101",
            IpAddr::V4(a) if a == SOURCE => "2001:db8::10",
            _ => "2001:db8::20",
        };
        a.parse::<Ipv6Addr>().unwrap().into()
    };
    for (name, of, exts, carry) in [
        (
            "spm_ipv6_path_over_ipv6",
            "spm_ipv6_path",
            &HBH_DST[..],
            Carry::Raw,
        ),
        ("odata_over_ipv6", "odata", &[][..], Carry::Raw),
        (
            "odata_udp_over_ipv6",
            "odata_udp",
            &HBH_DST[..],
            Carry::Udp(3055),
        ),
        (
            "odata_frag_1_over_ipv6",
            "odata_frag_1",
            &[][..],
            Carry::Udp(5555),
        ),
        ("nak_ipv6_over_ipv6", "nak_ipv6", &HBH_DST[..], Carry::Raw),
    ] {
        let g = gens.iter().find(|g| g.name == of).unwrap();
        let g = Gen {
            name,
            bytes: g.bytes.clone(),
            src: v6(g.src),
            dst: v6(g.dst),
            exts,
            carry,
        };
        gens.push(g);
    }
}

/// Wraps each generated packet in Ethernet + IPv4 or IPv6 (+ UDP) and writes the pcap.
fn write_capture(path: &Path, gens: &[Gen]) {
    use dump::decode::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_PGM};
    let frames: Vec<(Duration, Vec<u8>)> = gens
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let sport = 40_000 + i as u16;
            let (ethertype, ip) = match (g.src, g.dst, g.carry) {
                (IpAddr::V4(s), IpAddr::V4(d), Carry::Raw) => {
                    (ETHERTYPE_IPV4, frames::ipv4(s, d, IPPROTO_PGM, &g.bytes))
                }
                (IpAddr::V4(s), IpAddr::V4(d), Carry::Udp(port)) => {
                    (ETHERTYPE_IPV4, frames::udp4(s, d, sport, port, &g.bytes))
                }
                (IpAddr::V6(s), IpAddr::V6(d), Carry::Raw) => (
                    ETHERTYPE_IPV6,
                    frames::ipv6_ext(s, d, g.exts, IPPROTO_PGM, &g.bytes),
                ),
                (IpAddr::V6(s), IpAddr::V6(d), Carry::Udp(port)) => (
                    ETHERTYPE_IPV6,
                    frames::udp6(s, d, g.exts, sport, port, &g.bytes),
                ),
                _ => panic!("{}: endpoints of two families", g.name),
            };
            let t = Duration::from_millis(1_700_000_000_000 + i as u64 * 10);
            (t, frames::ethernet(ethertype, &ip))
        })
        .collect();
    let f = BufWriter::new(File::create(path).unwrap());
    dump::pcap::write_pcap(f, DataLink::ETHERNET, &frames).unwrap();
}

// ---- tshark -----------------------------------------------------------------------------

/// What tshark made of one frame.
#[derive(Debug, Default)]
struct Dissected {
    frame: u64,
    /// IP source and destination (`ip.src`/`ip.dst`, or `ipv6.src`/`ipv6.dst`).
    src: Option<String>,
    dst: Option<String>,
    /// Present when tshark dissected the frame as PGM.
    pgm: Option<PgmFields>,
    /// Expert infos (severity, message) anywhere in the frame.
    expert: Vec<(u64, String)>,
    malformed: bool,
}

#[derive(Debug, Default)]
struct PgmFields {
    ty: u8,
    gsi: String,
    tsdu: Option<u64>,
    cksum_good: bool,
    /// The type's sequence number field (see the module docs).
    sqn: Option<u64>,
    trail: Option<u64>,
    lead: Option<u64>,
    /// The raw `pgm.opts.nak.list` value ("30:78:…").
    nak_list: Option<String>,
    fragment: Option<(u64, u64, u64)>,
}

fn num(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Every value under `key` anywhere in `v` (arrays from `--no-duplicate-keys` flattened).
fn find_all<'a>(v: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == key {
                    match x {
                        Value::Array(a) => out.extend(a.iter()),
                        other => out.push(other),
                    }
                }
                find_all(x, key, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| find_all(x, key, out)),
        _ => {}
    }
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    find_all(v, key, &mut out);
    out.into_iter()
        .filter_map(|x| x.as_str().map(str::to_owned))
        .collect()
}

fn first_num(v: &Value, key: &str) -> Option<u64> {
    strings(v, key).first().and_then(|s| num(s))
}

/// Checks tshark's `pgm.opts.nak.list` against our list. The field is FT_BYTES; Wireshark 4.0
/// fills it with the *text* "0xb 0xc 0xf …" cut to 4 bytes per sqn (its `nakbuf` is added with
/// the option's byte length), so only a prefix of the text can be compared. A Wireshark that
/// puts the raw big-endian sqns there is accepted too.
fn nak_list_matches(field: &str, ours: &[u64]) -> bool {
    let bytes: Vec<u8> = field
        .split(':')
        .filter_map(|h| u8::from_str_radix(h, 16).ok())
        .collect();
    let text = ours.iter().fold(String::new(), |mut t, s| {
        let _ = write!(t, "0x{s:x} ");
        t
    });
    match std::str::from_utf8(&bytes) {
        Ok(t) if t.starts_with("0x") => !t.is_empty() && text.starts_with(t),
        _ => {
            let raw: Vec<u64> = bytes
                .chunks_exact(4)
                .map(|c| u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect();
            raw == ours
        }
    }
}

fn run_tshark(pcap: &Path, udp_ports: &[u16]) -> Vec<Dissected> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(pcap);
    for p in udp_ports {
        cmd.arg("-d").arg(format!("udp.port=={p},pgm"));
    }
    cmd.args(["-T", "json", "--no-duplicate-keys"]);
    let out = cmd.output().expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Value = serde_json::from_slice(&out.stdout).expect("tshark JSON");
    let mut result = Vec::new();
    for pkt in all.as_array().expect("array of packets") {
        let layers = &pkt["_source"]["layers"];
        let addr = |v4: &str, v6: &str| {
            let ip = layers
                .get("ip")
                .and_then(|l| strings(l, v4).first().cloned());
            ip.or_else(|| {
                layers
                    .get("ipv6")
                    .and_then(|l| strings(l, v6).first().cloned())
            })
        };
        let mut dissected = Dissected {
            frame: first_num(&layers["frame"], "frame.number").expect("frame.number"),
            src: addr("ip.src", "ipv6.src"),
            dst: addr("ip.dst", "ipv6.dst"),
            ..Dissected::default()
        };
        let sev = strings(layers, "_ws.expert.severity");
        let msg = strings(layers, "_ws.expert.message");
        for (n, severity) in sev.iter().enumerate() {
            let message = msg.get(n).cloned().unwrap_or_default();
            dissected.expert.push((num(severity).unwrap_or(0), message));
        }
        dissected.malformed = layers.get("_ws.malformed").is_some();
        if let Some(pgm) = layers.get("pgm") {
            let p = pgm;
            let ty = first_num(p, "pgm.hdr.type").expect("pgm.hdr.type") as u8;
            let sqn_key = match ty {
                0x00 | 0x04 | 0x05 => "pgm.spm.sqn",
                0x08..=0x0a => "pgm.nak.sqn",
                0x01 => "pgm.poll.sqn",
                0x02 => "pgm.polr.sqn",
                0x0d => "pgm.ack.maxsqn",
                _ => "",
            };
            let frag = (
                first_num(p, "pgm.opts.fragment.first_sqn"),
                first_num(p, "pgm.opts.fragment.fragment_offset"),
                first_num(p, "pgm.opts.fragment.total_length"),
            );
            dissected.pgm = Some(PgmFields {
                ty,
                gsi: strings(p, "pgm.hdr.gsi")
                    .first()
                    .map(|g| g.replace(':', ""))
                    .unwrap_or_default(),
                tsdu: first_num(p, "pgm.hdr.tsdulen"),
                // The last status value: Wireshark 4.0 also lists a byte of the field itself.
                cksum_good: strings(p, "pgm.hdr.cksum.status")
                    .last()
                    .is_some_and(|s| s == "1"),
                sqn: first_num(p, sqn_key),
                trail: first_num(p, "pgm.spm.trail"),
                lead: first_num(p, "pgm.spm.lead"),
                nak_list: strings(p, "pgm.opts.nak.list").first().cloned(),
                fragment: match frag {
                    (Some(a), Some(b), Some(c)) => Some((a, b, c)),
                    _ => None,
                },
            });
        }
        result.push(dissected);
    }
    result
}

// ---- The checks -------------------------------------------------------------------------

/// The number our JSON puts in the field tshark calls the packet's sqn.
fn our_sqn(j: &Value) -> Option<u64> {
    j.get("sqn")
        .or_else(|| j.get("rx_max"))
        .and_then(Value::as_u64)
}

/// Types Wireshark 4.0 does not dissect (it has no SPMR entry).
fn wireshark_lacks(ty: &str) -> bool {
    matches!(ty, "SPMR" | "UNKNOWN")
}

/// How many packets a comparison covered.
#[derive(Debug, Default)]
struct Agreement {
    compared: usize,
    not_dissected_by_wireshark: usize,
    malformed: usize,
    unsupported: usize,
}

/// Runs our dump logic and tshark on `pcap` and compares IP addresses, type, sqn, GSI and
/// checksum verdict per packet; every frame tshark dissects as PGM must be one `pgm-dump` reports.
fn pgm_dump_agrees_with_tshark(pcap: &Path, udp_ports: &[u16]) -> Agreement {
    let ours = dump::read_records(pcap, udp_ports).expect("pgm-dump reads the capture");
    let theirs = run_tshark(pcap, udp_ports);
    let mut a = Agreement::default();
    for rec in &ours {
        let j = rec.to_json();
        let t = theirs
            .iter()
            .find(|d| d.frame == rec.frame)
            .unwrap_or_else(|| panic!("tshark has no frame {}", rec.frame));
        let ty = j["type"].as_str().unwrap_or_default();
        match &rec.what {
            What::Unsupported(_) => {
                a.unsupported += 1;
                continue;
            }
            What::Malformed { .. } => {
                a.malformed += 1;
                continue;
            }
            What::Pgm { .. } if ty == "MALFORMED" => {
                a.malformed += 1;
                continue;
            }
            What::Pgm { .. } => {}
        }
        let Some(p) = &t.pgm else {
            assert!(
                wireshark_lacks(ty),
                "frame {}: pgm-dump says {ty}, tshark did not dissect PGM",
                rec.frame
            );
            a.not_dissected_by_wireshark += 1;
            continue;
        };
        let ctx = format!("frame {} ({j})", rec.frame);
        assert_eq!(j["src"].as_str(), t.src.as_deref(), "{ctx}: src");
        assert_eq!(j["dst"].as_str(), t.dst.as_deref(), "{ctx}: dst");
        let our_ty = rec.parse().unwrap().unwrap().packet_type();
        assert_eq!(u8::from(our_ty), p.ty, "{ctx}: type");
        assert_eq!(j["gsi"].as_str(), Some(p.gsi.as_str()), "{ctx}: gsi");
        assert_eq!(our_sqn(&j), p.sqn, "{ctx}: sqn");
        assert_eq!(
            j["checksum_ok"].as_bool(),
            Some(p.cksum_good),
            "{ctx}: checksum"
        );
        a.compared += 1;
    }
    for d in theirs.iter().filter(|d| d.pgm.is_some()) {
        assert!(
            ours.iter().any(|r| r.frame == d.frame && r.is_pgm()),
            "tshark dissected frame {} as PGM, pgm-dump did not report it",
            d.frame
        );
    }
    eprintln!("{}: {a:?}", pcap.display());
    a
}

#[test]
fn tshark_dissects_every_packet_type_we_emit() {
    if tshark_missing() {
        return;
    }
    let gens = generated();
    let path = temp_pcap("types");
    write_capture(&path, &gens);
    let dissected = run_tshark(&path, &UDP_PORTS);
    assert_eq!(dissected.len(), gens.len());
    let mut not_dissected = Vec::new();
    for (g, d) in gens.iter().zip(&dissected) {
        let ctx = format!("{} (frame {}, {})", g.name, d.frame, path.display());
        let ours = PacketRepr::parse_verified(&g.bytes).unwrap();
        let bad: Vec<_> = d.expert.iter().filter(|(s, _)| *s >= PI_WARN).collect();
        assert!(bad.is_empty(), "{ctx}: expert infos {bad:?}");
        assert!(!d.malformed, "{ctx}: tshark says malformed");
        let Some(p) = &d.pgm else {
            assert!(
                wireshark_lacks(ours.packet_type().name()),
                "{ctx}: not dissected as PGM"
            );
            not_dissected.push(g.name);
            continue;
        };
        assert_eq!(p.ty, u8::from(ours.packet_type()), "{ctx}: type");
        assert_eq!(p.gsi, ours.gsi.to_hex(), "{ctx}: gsi");
        assert!(p.cksum_good, "{ctx}: checksum");
        assert_eq!(p.tsdu, Some(ours.payload.len() as u64), "{ctx}: tsdu");
        let (sqn, trail, lead) = match ours.body {
            Body::Spm(s) => (Some(s.spm_sqn.0), Some(s.trail.0), Some(s.lead.0)),
            Body::Odata(x) | Body::Rdata(x) => (Some(x.sqn.0), Some(x.trail.0), None),
            Body::Nak(n) | Body::Nnak(n) | Body::Ncf(n) => (Some(n.sqn.0), None, None),
            Body::Poll(x) => (Some(x.sqn.0), None, None),
            Body::Polr(x) => (Some(x.sqn.0), None, None),
            Body::Ack(x) => (Some(x.rx_max.0), None, None),
            Body::Spmr | Body::Unknown(_) => (None, None, None),
        };
        assert_eq!(p.sqn, sqn.map(u64::from), "{ctx}: sqn");
        assert_eq!(p.trail, trail.map(u64::from), "{ctx}: trail");
        assert_eq!(p.lead, lead.map(u64::from), "{ctx}: lead");
        let list: Vec<u64> = ours
            .options
            .nak_list
            .map(|l| l.as_slice().iter().map(|s| u64::from(s.0)).collect())
            .unwrap_or_default();
        match &p.nak_list {
            Some(field) => assert!(
                nak_list_matches(field, &list),
                "{ctx}: NAK list {field} vs {list:?}"
            ),
            None => assert!(list.is_empty(), "{ctx}: tshark shows no NAK list"),
        }
        // tshark shows an encoded OPT_FRAGMENT's bytes as the plain one's fields.
        let word = |e: &[u8; 13], i: usize| {
            u64::from(u32::from_be_bytes([e[i], e[i + 1], e[i + 2], e[i + 3]]))
        };
        let frag = ours
            .options
            .fragment
            .map(|f| {
                (
                    u64::from(f.first_sqn.0),
                    u64::from(f.offset),
                    u64::from(f.apdu_len),
                )
            })
            .or_else(|| {
                ours.options
                    .fragment_encoded
                    .map(|e| (word(&e, 1), word(&e, 5), word(&e, 9)))
            });
        assert_eq!(p.fragment, frag, "{ctx}: fragment");
    }
    eprintln!("not dissected by this Wireshark (no dissector for the type): {not_dissected:?}");
    let a = pgm_dump_agrees_with_tshark(&path, &UDP_PORTS);
    assert_eq!(a.compared + a.not_dissected_by_wireshark, gens.len());
    let _ = std::fs::remove_file(&path);
}

#[test]
fn pgm_dump_agrees_with_tshark_on_faults() {
    if tshark_missing() {
        return;
    }
    // Bad checksum (over IPv4 and IPv6), zero checksum on ODATA and SPM, a truncated NAK, a
    // zero-length option: the checksum verdicts must agree; malformed packets are reported by
    // pgm-dump, not skipped.
    let mut gens = generated();
    gens.retain(|g| {
        matches!(
            g.name,
            "nak_list" | "odata" | "spm" | "odata_udp" | "ncf_list" | "odata_over_ipv6"
        )
    });
    gens[0].bytes[20] ^= 0x01; // spm: bad checksum
    gens[1].bytes[6..8].copy_from_slice(&[0, 0]); // odata: no checksum
    gens[2].bytes.truncate(30); // odata_udp: truncated
    gens[3].bytes[6..8].copy_from_slice(&[0, 0]); // nak_list: no checksum (control: allowed)
    gens[4].bytes[16 + 20 + 4 + 1] = 0; // ncf_list: OPT_NAK_LIST length 0
    gens[5].bytes[20] ^= 0x01; // odata_over_ipv6: bad checksum
    let path = temp_pcap("faults");
    write_capture(&path, &gens);
    let a = pgm_dump_agrees_with_tshark(&path, &UDP_PORTS);
    assert_eq!(a.compared, 4, "{a:?}");
    assert_eq!(a.malformed, 2, "{a:?}");
    let recs = dump::read_records(&path, &UDP_PORTS).unwrap();
    let ok: Vec<_> = recs
        .iter()
        .map(|r| r.to_json()["checksum_ok"].as_bool())
        .collect();
    assert_eq!(ok[..2], [Some(false), Some(false)]);
    assert_eq!(ok[5], Some(false));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn pgm_dump_agrees_with_tshark_on_openpgm_capture() {
    if tshark_missing() {
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pgm/tests/fixtures/openpgm.pcap");
    if !path.exists() {
        eprintln!(
            "SKIPPED: {} not present yet (recorded by netns-tests' capture-openpgm)",
            path.display()
        );
        return;
    }
    // capture-openpgm runs raw PGM, then UDP encapsulation on port 7500.
    let a = pgm_dump_agrees_with_tshark(&path, &[7500]);
    assert!(a.compared > 0, "{a:?}");
    assert_eq!(
        a.malformed, 0,
        "OpenPGM sent packets pgm-dump calls malformed: {a:?}"
    );
}
