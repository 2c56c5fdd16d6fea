//! `pgm-dump`: print the PGM packets of a capture file or of a live interface (`--iface`, see
//! [`crate::live`]), one per line, as text or JSON.
//!
//! Both inputs go through one path: every frame is decoded by [`decode_frame`], filtered
//! (`--group`, `--port`) and printed by a [`Printer`].
//!
//! Input is a classic pcap or a pcapng file (told apart by its magic number) with link type
//! Ethernet (1), Linux cooked SLL (113) or SLL2 (276), or raw IP (101, 228). IPv4 only: an IPv6
//! packet that looks like PGM gets a per-packet "unsupported" note. PGM is recognised as IP
//! protocol 113 ("raw") or as UDP to or from one of the `--udp-port`s ("udp"; the UDP payload is
//! exactly the PGM packet, docs/wire-compatibility.md §8). Other packets are skipped silently; malformed PGM
//! packets are reported and the dump goes on.
//!
//! A capture taken on a host that sends with UDP GSO (`UDP_SEGMENT`; our EPGM sender does) can
//! hold the unsegmented "super-packet": one UDP datagram whose payload is several complete PGM
//! packets back to back, all of one length but the last, which may be shorter (on the wire each
//! is its own datagram). When a UDP payload is longer than the PGM packet at its start declares
//! ([`Packet::packet_len`]) and the whole payload splits into complete packets of that length,
//! each is reported as its own packet, numbered in [`Record::gso`]; otherwise the payload is one
//! (malformed) packet, as before.

use std::{
    fs::File,
    io::{self, BufRead, BufReader, Read, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    time::Duration,
};

use clap::Parser;
use pcap_file::{
    pcap::PcapReader,
    pcapng::{blocks::interface_description::InterfaceDescriptionOption, Block, PcapNgReader},
    DataLink,
};
use pgm::wire::{
    checksum::{self, Verdict},
    Body, Packet, PacketRepr,
};
use serde_json::{json, Map, Value};

use crate::frames::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_PGM, IPPROTO_UDP};

/// The UDP encapsulation port assumed when none is given (OpenPGM's `udp_encap_ucast_port`).
pub const DEFAULT_UDP_PORT: u16 = 3055;

/// Command line of `pgm-dump`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "pgm-dump",
    version,
    about = "Print the PGM/EPGM packets of a capture, like tcpdump",
    long_about = "Print the PGM packets (raw IP protocol 113, and UDP-encapsulated EPGM on the \
                  --udp-port ports) of a pcap or pcapng capture, or captured live on an \
                  interface (needs root or CAP_NET_RAW), one line per packet, or one JSON \
                  object per packet with --json. IPv4 only.\n\n\
                  A UDP GSO super-packet (a capture on a host sending with UDP_SEGMENT, e.g. on \
                  lo: one UDP datagram holding several PGM packets of one length back to back, \
                  the last possibly shorter) is split and each PGM packet printed on its own, \
                  marked \"[gso I/N]\" in text and \"gso\": {\"index\": I, \"of\": N} in \
                  JSON (I counts from 1). A payload that does not split exactly into complete \
                  PGM packets is reported as one MALFORMED packet."
)]
pub struct Args {
    /// Read packets from this pcap or pcapng file (e.g. from `tcpdump -w FILE`).
    #[arg(long, value_name = "FILE", required_unless_present = "iface")]
    pub pcap: Option<PathBuf>,
    /// Capture live on this interface (e.g. `eth0`, `lo`; needs root or CAP_NET_RAW).
    #[arg(long, value_name = "IFACE", conflicts_with = "pcap")]
    pub iface: Option<String>,
    /// UDP port carrying encapsulated PGM (repeatable; matches source or destination port).
    #[arg(long = "udp-port", value_name = "PORT", default_values_t = [DEFAULT_UDP_PORT])]
    pub udp_ports: Vec<u16>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many PGM packets printed (malformed ones included).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Only packets to or from this IP address (the group, or a host's unicast address).
    #[arg(long, value_name = "ADDR")]
    pub group: Option<IpAddr>,
    /// Only packets with this PGM source or destination port, or UDP port.
    #[arg(long, value_name = "P")]
    pub port: Option<u16>,
    /// Live capture: stop after this many seconds (fractions allowed).
    #[arg(long, value_name = "SECS", conflicts_with = "pcap", value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

impl Args {
    /// The `--group`/`--port` filter.
    pub fn filter(&self) -> Filter {
        Filter {
            group: self.group,
            port: self.port,
        }
    }
}

/// `--duration`: non-negative seconds, fractions allowed.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|e| format!("not a number of seconds: {e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("not a duration: {e}"))
}

/// Why a dump could not run or finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DumpError {
    /// `--iface` names no interface of this host.
    #[error("no interface {name} (interfaces here: {available})")]
    NoSuchInterface {
        /// The name given.
        name: String,
        /// The interfaces that exist, comma-separated.
        available: String,
    },
    /// Opening the packet socket was refused.
    #[error("cannot capture on {iface}: live capture needs root or CAP_NET_RAW ({err})")]
    NotPermitted {
        /// The interface.
        iface: String,
        /// The OS error.
        err: io::Error,
    },
    /// The interface's link layer is not one `pgm-dump` decodes.
    #[error("cannot capture on {iface}: link type {arphrd} (ARPHRD_*) is not supported")]
    InterfaceLinkType {
        /// The interface.
        iface: String,
        /// Its `ARPHRD_*` type (`/sys/class/net/IFACE/type`).
        arphrd: u16,
    },
    /// Live capture failed (opening the interface or reading from it).
    #[error("capture on {iface} failed: {err}")]
    Capture {
        /// The interface.
        iface: String,
        /// The OS error.
        err: io::Error,
    },
    /// Neither `--pcap` nor `--iface`.
    #[error("no input: give --pcap FILE or --iface IFACE")]
    NoInput,
    /// The capture file cannot be opened or read.
    #[error("cannot read {path}: {err}")]
    Io {
        /// The capture file.
        path: PathBuf,
        /// The OS error.
        err: io::Error,
    },
    /// The file is not a capture this tool reads, or is damaged.
    #[error("{path}: not a readable pcap/pcapng capture: {reason}")]
    Format {
        /// The capture file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The capture's link layer is not one `pgm-dump` decodes.
    #[error(
        "{path}: link type {linktype:?} is not supported (use Ethernet, Linux cooked SLL/SLL2 \
         or raw IPv4 captures, e.g. `tcpdump -i eth0 -w FILE`)"
    )]
    LinkType {
        /// The capture file.
        path: PathBuf,
        /// Its link type.
        linktype: DataLink,
    },
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(io::Error),
}

/// How the PGM packet was carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encap {
    /// IP protocol 113.
    Raw,
    /// In a UDP datagram with these ports.
    Udp {
        /// UDP source port.
        sport: u16,
        /// UDP destination port.
        dport: u16,
    },
}

impl Encap {
    /// `"raw"` or `"udp"`.
    pub fn name(self) -> &'static str {
        match self {
            Encap::Raw => "raw",
            Encap::Udp { .. } => "udp",
        }
    }
}

/// What a frame turned out to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// A PGM packet (parsed lazily by [`Record::parse`]; it may still be malformed).
    Pgm {
        /// How it was carried.
        encap: Encap,
        /// The PGM packet: the IP payload (raw) or the UDP payload.
        data: Vec<u8>,
    },
    /// A PGM packet whose carrier is already broken (truncated capture, bad UDP length).
    Malformed {
        /// How it was carried.
        encap: Encap,
        /// Why it cannot be decoded.
        reason: String,
    },
    /// Something that looks like PGM but that this tool does not decode (IPv6, IP fragments).
    Unsupported(&'static str),
}

/// Where a PGM packet sat in a UDP GSO super-packet (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gso {
    /// Position of the packet in the datagram, from 1.
    pub index: usize,
    /// Number of PGM packets in the datagram.
    pub of: usize,
}

/// One reported frame, or one PGM packet of a UDP GSO super-packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1-based frame number in the capture (as Wireshark numbers them).
    pub frame: u64,
    /// Capture timestamp, seconds since the epoch.
    pub time: f64,
    /// IP source.
    pub src: IpAddr,
    /// IP destination.
    pub dst: IpAddr,
    /// What it holds.
    pub what: What,
    /// Set when the frame's UDP payload was a GSO super-packet split into PGM packets (all of
    /// them [`What::Pgm`], sharing frame number, time and addresses).
    pub gso: Option<Gso>,
}

impl Record {
    /// The PGM packet parsed (structure only), `None` unless [`What::Pgm`].
    pub fn parse(&self) -> Option<Result<PacketRepr<'_>, pgm::wire::Error>> {
        match &self.what {
            What::Pgm { data, .. } => Some(PacketRepr::parse(data)),
            _ => None,
        }
    }

    /// True for a PGM packet, malformed or not (what `--count` counts).
    pub fn is_pgm(&self) -> bool {
        matches!(self.what, What::Pgm { .. } | What::Malformed { .. })
    }

    /// The checksum verdict of a PGM packet with at least a header.
    pub fn checksum(&self) -> Option<Verdict> {
        match &self.what {
            What::Pgm { data, .. } => Packet::new_checked(&data[..])
                .ok()
                .map(|p| p.verify_checksum()),
            _ => None,
        }
    }

    /// The `--json` object.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("frame".into(), json!(self.frame));
        m.insert("time".into(), json!(self.time));
        m.insert("src".into(), json!(self.src.to_string()));
        m.insert("dst".into(), json!(self.dst.to_string()));
        match &self.what {
            What::Unsupported(reason) => {
                m.insert("type".into(), json!("UNSUPPORTED"));
                m.insert("reason".into(), json!(reason));
            }
            What::Malformed { encap, reason } => {
                insert_encap(&mut m, *encap);
                m.insert("type".into(), json!("MALFORMED"));
                m.insert("reason".into(), json!(reason));
            }
            What::Pgm { encap, data } => {
                insert_encap(&mut m, *encap);
                match PacketRepr::parse(data) {
                    Err(e) => {
                        m.insert("type".into(), json!("MALFORMED"));
                        m.insert("reason".into(), json!(e.to_string()));
                        m.insert("len".into(), json!(data.len()));
                    }
                    Ok(p) => pgm_json(&mut m, &p, data),
                }
            }
        }
        if let Some(g) = self.gso {
            m.insert("gso".into(), json!({"index": g.index, "of": g.of}));
        }
        Value::Object(m)
    }

    /// The text line: `TIME SRC.PORT > DST.PORT PGM …`, ending in `[gso I/N]` for a packet of
    /// a GSO super-packet.
    pub fn to_text(&self) -> String {
        let line = self.text_line();
        match self.gso {
            Some(g) => format!("{line} [gso {}/{}]", g.index, g.of),
            None => line,
        }
    }

    /// [`Record::to_text`] without the GSO note.
    fn text_line(&self) -> String {
        let t = format!("{:.6}", self.time);
        match &self.what {
            What::Unsupported(reason) => {
                format!("{t} {} > {} unsupported: {reason}", self.src, self.dst)
            }
            What::Malformed { encap, reason } => {
                format!(
                    "{t} {} PGM MALFORMED: {reason}",
                    self.endpoints(*encap, None)
                )
            }
            What::Pgm { encap, data } => match PacketRepr::parse(data) {
                Err(e) => format!(
                    "{t} {} PGM MALFORMED: {e} ({} bytes)",
                    self.endpoints(*encap, Packet::new_checked(&data[..]).ok()),
                    data.len()
                ),
                Ok(p) => {
                    let ck = match checksum::verify(data) {
                        Verdict::Good => "",
                        Verdict::Bad => " [bad cksum]",
                        Verdict::Absent => " [no cksum]",
                    };
                    let h = Packet::new_checked(&data[..]).ok();
                    format!("{t} {} PGM {p}{ck}", self.endpoints(*encap, h))
                }
            },
        }
    }

    /// `SRC.PORT > DST.PORT` (PGM ports for raw, UDP ports plus "UDP" for EPGM).
    fn endpoints(&self, encap: Encap, header: Option<Packet<&[u8]>>) -> String {
        match (encap, header) {
            (Encap::Udp { sport, dport }, _) => {
                format!("{}.{sport} > {}.{dport} UDP", self.src, self.dst)
            }
            (Encap::Raw, Some(h)) => {
                format!("{}.{} > {}.{}", self.src, h.sport(), self.dst, h.dport())
            }
            (Encap::Raw, None) => format!("{} > {}", self.src, self.dst),
        }
    }
}

fn insert_encap(m: &mut Map<String, Value>, encap: Encap) {
    m.insert("encap".into(), json!(encap.name()));
    if let Encap::Udp { sport, dport } = encap {
        m.insert("udp_sport".into(), json!(sport));
        m.insert("udp_dport".into(), json!(dport));
    }
}

/// The fields of a parsed PGM packet.
fn pgm_json(m: &mut Map<String, Value>, p: &PacketRepr<'_>, data: &[u8]) {
    let t = p.packet_type();
    m.insert("type".into(), json!(t.name()));
    if let Body::Unknown(b) = p.body {
        m.insert("type_byte".into(), json!(b));
    }
    m.insert("sport".into(), json!(p.sport));
    m.insert("dport".into(), json!(p.dport));
    m.insert("gsi".into(), json!(p.gsi.to_hex()));
    let tsdu = Packet::new_checked(data).map_or(0, |h| h.tsdu_length());
    m.insert("tsdu_len".into(), json!(tsdu));
    let verdict = checksum::verify(data);
    m.insert("checksum_ok".into(), json!(verdict == Verdict::Good));
    if verdict == Verdict::Absent {
        m.insert("checksum_absent".into(), json!(true));
    }
    match p.body {
        Body::Spm(s) => {
            m.insert("sqn".into(), json!(s.spm_sqn.0));
            m.insert("trail".into(), json!(s.trail.0));
            m.insert("lead".into(), json!(s.lead.0));
            m.insert("nla".into(), json!(s.path.to_string()));
        }
        Body::Poll(x) => {
            m.insert("sqn".into(), json!(x.sqn.0));
            m.insert("round".into(), json!(x.round));
            m.insert("nla".into(), json!(x.path.to_string()));
        }
        Body::Polr(x) => {
            m.insert("sqn".into(), json!(x.sqn.0));
            m.insert("round".into(), json!(x.round));
        }
        Body::Odata(d) | Body::Rdata(d) => {
            m.insert("sqn".into(), json!(d.sqn.0));
            m.insert("trail".into(), json!(d.trail.0));
        }
        Body::Nak(n) | Body::Nnak(n) | Body::Ncf(n) => {
            m.insert("sqn".into(), json!(n.sqn.0));
            m.insert("nla".into(), json!(n.src_nla.to_string()));
            m.insert("group".into(), json!(n.grp_nla.to_string()));
        }
        Body::Ack(a) => {
            m.insert("rx_max".into(), json!(a.rx_max.0));
            m.insert("bitmap".into(), json!(a.bitmap));
        }
        Body::Spmr | Body::Unknown(_) => {}
    }
    if !matches!(p.body, Body::Unknown(_)) {
        let o = &p.options;
        m.insert("options".into(), json!(o.names()));
        if let Some(l) = o.nak_list {
            let sqns: Vec<u32> = l.as_slice().iter().map(|s| s.0).collect();
            m.insert("nak_list".into(), json!(sqns));
        }
        if let Some(f) = o.fragment {
            m.insert(
                "fragment".into(),
                json!({"first_sqn": f.first_sqn.0, "offset": f.offset, "apdu_len": f.apdu_len}),
            );
        }
        m.insert("fin".into(), json!(o.fin));
    }
}

/// Network-layer protocol found under the link layer.
enum Net<'a> {
    V4(&'a [u8]),
    V6(&'a [u8]),
    Other,
}

/// Strips the link layer.
fn link(linktype: DataLink, frame: &[u8]) -> Net<'_> {
    fn by_ethertype(et: u16, rest: &[u8]) -> Net<'_> {
        match et {
            ETHERTYPE_IPV4 => Net::V4(rest),
            ETHERTYPE_IPV6 => Net::V6(rest),
            _ => Net::Other,
        }
    }
    fn be16(b: &[u8], at: usize) -> Option<u16> {
        Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
    }
    match linktype {
        DataLink::ETHERNET => {
            let mut at = 12;
            // Up to two VLAN tags (802.1Q, 802.1ad, and the old 0x9100 QinQ).
            for _ in 0..3 {
                match be16(frame, at) {
                    Some(0x8100 | 0x88a8 | 0x9100) => at += 4,
                    Some(et) => return by_ethertype(et, frame.get(at + 2..).unwrap_or(&[])),
                    None => return Net::Other,
                }
            }
            Net::Other
        }
        DataLink::LINUX_SLL => match be16(frame, 14) {
            Some(et) => by_ethertype(et, &frame[16..]),
            None => Net::Other,
        },
        DataLink::LINUX_SLL2 => match (be16(frame, 0), frame.get(20..)) {
            (Some(et), Some(rest)) => by_ethertype(et, rest),
            _ => Net::Other,
        },
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => match frame.first().map(|b| b >> 4) {
            Some(4) => Net::V4(frame),
            Some(6) => Net::V6(frame),
            _ => Net::Other,
        },
        _ => Net::Other,
    }
}

/// True for the link types [`decode_frame`] understands.
pub fn supported_link(linktype: DataLink) -> bool {
    matches!(
        linktype,
        DataLink::ETHERNET
            | DataLink::LINUX_SLL
            | DataLink::LINUX_SLL2
            | DataLink::RAW
            | DataLink::IPV4
            | DataLink::IPV6
    )
}

/// Decodes one captured frame into the records to report: none for anything that is not (and
/// does not look like) PGM, one per PGM packet of a UDP GSO super-packet (see the module docs),
/// otherwise one.
pub fn decode_frame(
    linktype: DataLink,
    frame_no: u64,
    time: f64,
    frame: &[u8],
    udp_ports: &[u16],
) -> Vec<Record> {
    let decoded = match link(linktype, frame) {
        Net::V4(ip) => decode_ipv4(ip, udp_ports),
        Net::V6(ip) => decode_ipv6(ip, udp_ports),
        Net::Other => None,
    };
    let Some((src, dst, what)) = decoded else {
        return Vec::new();
    };
    let record = |what, gso| Record {
        frame: frame_no,
        time,
        src,
        dst,
        what,
        gso,
    };
    if let What::Pgm {
        encap: encap @ Encap::Udp { .. },
        data,
    } = &what
    {
        if let Some(size) = gso_segment_size(data) {
            let of = data.len().div_ceil(size);
            return data
                .chunks(size)
                .enumerate()
                .map(|(i, seg)| {
                    let what = What::Pgm {
                        encap: *encap,
                        data: seg.to_vec(),
                    };
                    record(what, Some(Gso { index: i + 1, of }))
                })
                .collect();
        }
    }
    vec![record(what, None)]
}

/// The segment size of a UDP GSO super-packet: `Some` when `data` is longer than the PGM packet
/// at its start declares ([`Packet::packet_len`]) and all of it splits into complete PGM
/// packets of that length, the last possibly shorter (each one's declared length exactly its
/// share). `None` for a single packet and for anything that does not split exactly.
fn gso_segment_size(data: &[u8]) -> Option<usize> {
    let declared_len = |b: &[u8]| Packet::new_checked(b).ok()?.packet_len();
    let size = declared_len(data)?;
    if size == 0 || size >= data.len() {
        return None;
    }
    data.chunks(size)
        .all(|seg| declared_len(seg) == Some(seg.len()))
        .then_some(size)
}

fn decode_ipv4(ip: &[u8], udp_ports: &[u16]) -> Option<(IpAddr, IpAddr, What)> {
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    let proto = ip[9];
    let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
    let more_fragments = frag & 0x2000 != 0;
    let offset = frag & 0x1fff;
    let malformed = |encap, reason: String| Some((src, dst, What::Malformed { encap, reason }));
    // The captured bytes of the IP payload (Ethernet padding cut off by the IP total length).
    let payload = |needed_by: &str| -> Result<&[u8], String> {
        if ihl < 20 || total < ihl {
            return Err(format!("bad IPv4 header (IHL {ihl}, total length {total})"));
        }
        match ip.get(ihl..total) {
            Some(p) => Ok(p),
            None => Err(format!(
                "{needed_by} truncated by the capture: {} of {} IP bytes captured",
                ip.len(),
                total
            )),
        }
    };
    match proto {
        IPPROTO_PGM => {
            if more_fragments || offset != 0 {
                return Some((
                    src,
                    dst,
                    What::Unsupported("IPv4 fragment (not reassembled)"),
                ));
            }
            match payload("packet") {
                Ok(p) => Some((
                    src,
                    dst,
                    What::Pgm {
                        encap: Encap::Raw,
                        data: p.to_vec(),
                    },
                )),
                Err(reason) => malformed(Encap::Raw, reason),
            }
        }
        IPPROTO_UDP => {
            if offset != 0 {
                return None;
            }
            let udp = ip.get(ihl.max(20)..)?;
            if udp.len() < 8 {
                return None;
            }
            let sport = u16::from_be_bytes([udp[0], udp[1]]);
            let dport = u16::from_be_bytes([udp[2], udp[3]]);
            if !udp_ports.contains(&sport) && !udp_ports.contains(&dport) {
                return None;
            }
            let encap = Encap::Udp { sport, dport };
            if more_fragments {
                return Some((
                    src,
                    dst,
                    What::Unsupported("IPv4 fragment (not reassembled)"),
                ));
            }
            let p = match payload("datagram") {
                Ok(p) => p,
                Err(reason) => return malformed(encap, reason),
            };
            let ulen = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
            if ulen < 8 || ulen > p.len() {
                return malformed(
                    encap,
                    format!(
                        "bad UDP length {ulen} ({} bytes after the IP header)",
                        p.len()
                    ),
                );
            }
            Some((
                src,
                dst,
                What::Pgm {
                    encap,
                    data: p[8..ulen].to_vec(),
                },
            ))
        }
        _ => None,
    }
}

fn decode_ipv6(ip: &[u8], udp_ports: &[u16]) -> Option<(IpAddr, IpAddr, What)> {
    if ip.len() < 40 || ip[0] >> 4 != 6 {
        return None;
    }
    let addr = |at: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&ip[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(a))
    };
    let looks_like_pgm = match ip[6] {
        IPPROTO_PGM => true,
        IPPROTO_UDP => ip.get(40..44).is_some_and(|u| {
            let sport = u16::from_be_bytes([u[0], u[1]]);
            let dport = u16::from_be_bytes([u[2], u[3]]);
            udp_ports.contains(&sport) || udp_ports.contains(&dport)
        }),
        _ => false,
    };
    looks_like_pgm.then(|| {
        (
            addr(8),
            addr(24),
            What::Unsupported("IPv6 is not supported yet"),
        )
    })
}

/// Counts of what a dump saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Frames read from the capture.
    pub frames: u64,
    /// PGM packets reported (malformed ones included).
    pub pgm: u64,
    /// Of which malformed.
    pub malformed: u64,
    /// Unsupported-packet notes.
    pub unsupported: u64,
    /// PGM packets and notes left out by `--group`/`--port`.
    pub filtered: u64,
}

/// `--group`/`--port`: which packets to print. The default passes everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter {
    /// The IP source or destination must be this address.
    pub group: Option<IpAddr>,
    /// The PGM source or destination port, or the UDP source or destination port, must be this.
    pub port: Option<u16>,
}

impl Filter {
    /// True if `rec` passes. A packet whose PGM header is unreadable matches `--port` only by
    /// its UDP ports.
    pub fn matches(&self, rec: &Record) -> bool {
        if let Some(g) = self.group {
            if rec.src != g && rec.dst != g {
                return false;
            }
        }
        let Some(port) = self.port else {
            return true;
        };
        let (encap, data) = match &rec.what {
            What::Pgm { encap, data } => (*encap, Some(data)),
            What::Malformed { encap, .. } => (*encap, None),
            What::Unsupported(_) => return false,
        };
        if let Encap::Udp { sport, dport } = encap {
            if sport == port || dport == port {
                return true;
            }
        }
        data.and_then(|d| Packet::new_checked(&d[..]).ok())
            .is_some_and(|h| h.sport() == port || h.dport() == port)
    }
}

/// What to print and when to stop, for a pcap file and a live capture alike.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// UDP ports carrying encapsulated PGM.
    pub udp_ports: Vec<u16>,
    /// JSON lines instead of text.
    pub json: bool,
    /// Stop after this many PGM packets printed.
    pub count: Option<u64>,
    /// Which packets to print.
    pub filter: Filter,
    /// Flush after every line (live capture: lines appear as packets arrive).
    pub flush_each: bool,
}

impl Output {
    /// The output options of `args`.
    pub fn from_args(args: &Args) -> Self {
        Output {
            udp_ports: args.udp_ports.clone(),
            json: args.json,
            count: args.count,
            filter: args.filter(),
            flush_each: args.iface.is_some(),
        }
    }
}

/// The one path from a captured frame to an output line: [`decode_frame`], the [`Filter`], the
/// text or JSON line, `--count`. Used by [`dump`] and by [`crate::live::capture`].
pub struct Printer<'a> {
    opts: &'a Output,
    out: &'a mut dyn Write,
    summary: Summary,
    /// The reader of the output went away (e.g. `| head`): stop quietly.
    closed: bool,
}

impl<'a> Printer<'a> {
    /// A printer writing to `out`.
    pub fn new(opts: &'a Output, out: &'a mut dyn Write) -> Self {
        Printer {
            opts,
            out,
            summary: Summary::default(),
            closed: false,
        }
    }

    /// True once `--count` packets are printed or the output is closed: read no more frames.
    pub fn done(&self) -> bool {
        self.closed || matches!(self.opts.count, Some(c) if self.summary.pgm >= c)
    }

    /// Counts so far.
    pub fn summary(&self) -> Summary {
        self.summary
    }

    /// Decodes, filters and prints one captured frame (`linktype` framing, `time` in seconds
    /// since the epoch). Frames are numbered from 1 in the order they are given. A UDP GSO
    /// super-packet prints one line per PGM packet (`--count` may stop inside it).
    pub fn frame(&mut self, linktype: DataLink, time: f64, frame: &[u8]) -> Result<(), DumpError> {
        if self.done() {
            return Ok(());
        }
        self.summary.frames += 1;
        let records = decode_frame(
            linktype,
            self.summary.frames,
            time,
            frame,
            &self.opts.udp_ports,
        );
        for rec in &records {
            if self.done() {
                break;
            }
            self.record(rec)?;
        }
        Ok(())
    }

    /// Filters, counts and prints one record.
    fn record(&mut self, rec: &Record) -> Result<(), DumpError> {
        let s = &mut self.summary;
        if !self.opts.filter.matches(rec) {
            s.filtered += 1;
            return Ok(());
        }
        if rec.is_pgm() {
            s.pgm += 1;
            let bad = match rec.parse() {
                Some(r) => r.is_err(),
                None => true,
            };
            s.malformed += u64::from(bad);
        } else {
            s.unsupported += 1;
        }
        let line = if self.opts.json {
            rec.to_json().to_string()
        } else {
            rec.to_text()
        };
        let res = writeln!(self.out, "{line}").and_then(|()| {
            if self.opts.flush_each {
                self.out.flush()
            } else {
                Ok(())
            }
        });
        self.output_result(res)
    }

    /// Flushes the output and returns the counts.
    pub fn finish(mut self) -> Result<Summary, DumpError> {
        let res = self.out.flush();
        self.output_result(res)?;
        Ok(self.summary)
    }

    /// A closed pipe ends the dump quietly; other write errors are errors.
    fn output_result(&mut self, res: io::Result<()>) -> Result<(), DumpError> {
        match res {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other.map_err(DumpError::Output),
        }
    }
}

/// A frame as read from the capture.
struct Captured<'a> {
    linktype: DataLink,
    time: f64,
    data: &'a [u8],
}

/// Reads the capture at `path` and hands every frame to `f` until it returns false.
fn for_each_frame(
    path: &Path,
    on_frame: impl FnMut(Captured<'_>) -> Result<bool, DumpError>,
) -> Result<(), DumpError> {
    let file = File::open(path).map_err(|err| DumpError::Io {
        path: path.to_path_buf(),
        err,
    })?;
    for_each_frame_in(path, file, on_frame)
}

/// [`for_each_frame`] on a capture read from `reader` (`path` names it in errors).
fn for_each_frame_in(
    path: &Path,
    reader: impl Read,
    mut on_frame: impl FnMut(Captured<'_>) -> Result<bool, DumpError>,
) -> Result<(), DumpError> {
    let io_err = |err| DumpError::Io {
        path: path.to_path_buf(),
        err,
    };
    let format = |reason: String| DumpError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let mut r = BufReader::new(reader);
    let magic = r.fill_buf().map_err(io_err)?;
    if magic.len() < 4 {
        return Err(format("file too short for a capture header".into()));
    }
    let head = [magic[0], magic[1], magic[2], magic[3]];
    let pcap_magics = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
    ];
    if head != [0x0a, 0x0d, 0x0d, 0x0a] && !pcap_magics.contains(&head) {
        return Err(format(format!(
            "unknown magic number {:#010x} (expected pcap or pcapng)",
            u32::from_be_bytes(head)
        )));
    }
    if head == [0x0a, 0x0d, 0x0d, 0x0a] {
        let mut ng = PcapNgReader::new(r).map_err(|e| format(e.to_string()))?;
        // (link type, timestamp units per second, timestamp offset) of each interface of the
        // current section.
        let mut ifaces: Vec<(DataLink, f64, u64)> = Vec::new();
        let mut n = 0u64;
        while let Some(block) = ng.next_block() {
            let block = block.map_err(|e| format(format!("after frame {n}: {e}")))?;
            let (iface, raw_ts, data) = match &block {
                Block::SectionHeader(_) => {
                    ifaces.clear();
                    continue;
                }
                Block::InterfaceDescription(idb) => {
                    let (resol, offset) = ts_params(&idb.options);
                    ifaces.push((idb.linktype, resol, offset));
                    continue;
                }
                Block::EnhancedPacket(p) => (p.interface_id, p.timestamp.as_nanos(), &p.data),
                Block::SimplePacket(p) => (0, 0, &p.data),
                Block::Packet(p) => (u32::from(p.interface_id), u128::from(p.timestamp), &p.data),
                _ => continue,
            };
            n += 1;
            let &(linktype, resol, offset) = ifaces
                .get(iface as usize)
                .ok_or_else(|| format(format!("frame {n} names unknown interface {iface}")))?;
            if !supported_link(linktype) {
                return Err(DumpError::LinkType {
                    path: path.to_path_buf(),
                    linktype,
                });
            }
            // pcap-file hands back the raw timestamp units as "nanoseconds"; scale them by the
            // interface's if_tsresol (default: microseconds).
            #[allow(clippy::cast_precision_loss, reason = "timestamps as float seconds")]
            let time = raw_ts as f64 / resol + offset as f64;
            if !on_frame(Captured {
                linktype,
                time,
                data,
            })? {
                break;
            }
        }
    } else {
        let mut pr = PcapReader::new(r).map_err(|e| format(e.to_string()))?;
        let linktype = pr.header().datalink;
        if !supported_link(linktype) {
            return Err(DumpError::LinkType {
                path: path.to_path_buf(),
                linktype,
            });
        }
        let mut n = 0u64;
        while let Some(pkt) = pr.next_packet() {
            let pkt = pkt.map_err(|e| format(format!("after frame {n}: {e}")))?;
            n += 1;
            let go = on_frame(Captured {
                linktype,
                time: pkt.timestamp.as_secs_f64(),
                data: &pkt.data,
            })?;
            if !go {
                break;
            }
        }
    }
    Ok(())
}

/// Units per second and offset (seconds) of a pcapng interface's timestamps.
fn ts_params(options: &[InterfaceDescriptionOption<'_>]) -> (f64, u64) {
    let mut resol = 1e6;
    let mut offset = 0;
    for o in options {
        match o {
            InterfaceDescriptionOption::IfTsResol(r) => {
                let exp = i32::from(r & 0x7f);
                resol = if r & 0x80 == 0 {
                    10f64.powi(exp)
                } else {
                    2f64.powi(exp)
                };
            }
            InterfaceDescriptionOption::IfTsOffset(s) => offset = *s,
            _ => {}
        }
    }
    (resol, offset)
}

/// Every record of the capture at `path` (PGM, malformed PGM, unsupported notes; one per PGM
/// packet of a UDP GSO super-packet).
pub fn read_records(path: &Path, udp_ports: &[u16]) -> Result<Vec<Record>, DumpError> {
    let mut out = Vec::new();
    let mut n = 0;
    for_each_frame(path, |c| {
        n += 1;
        out.extend(decode_frame(c.linktype, n, c.time, c.data, udp_ports));
        Ok(true)
    })?;
    Ok(out)
}

/// Dumps the capture at `path` to `out` as text or JSON lines; stops after `count` PGM packets.
///
/// A closed output (e.g. piped into `head`) ends the dump quietly.
pub fn dump(
    path: &Path,
    udp_ports: &[u16],
    json: bool,
    count: Option<u64>,
    out: &mut dyn Write,
) -> Result<Summary, DumpError> {
    let opts = Output {
        udp_ports: udp_ports.to_vec(),
        json,
        count,
        ..Output::default()
    };
    dump_with(path, &opts, out)
}

/// Dumps the capture at `path` to `out` with the output options `opts` (filter included).
pub fn dump_with(path: &Path, opts: &Output, out: &mut dyn Write) -> Result<Summary, DumpError> {
    let mut p = Printer::new(opts, out);
    if !p.done() {
        for_each_frame(path, |c| {
            p.frame(c.linktype, c.time, c.data)?;
            Ok(!p.done())
        })?;
    }
    p.finish()
}

/// [`dump_with`] on a pcap or pcapng capture read from `reader` (`path` names it in errors):
/// the whole path from capture bytes to output lines, which the `dump_capture_file` fuzz target
/// drives with bytes in memory. Lines already written stay written when an error ends the dump.
pub fn dump_reader(
    path: &Path,
    reader: impl Read,
    opts: &Output,
    out: &mut dyn Write,
) -> Result<Summary, DumpError> {
    let mut p = Printer::new(opts, out);
    if !p.done() {
        for_each_frame_in(path, reader, |c| {
            p.frame(c.linktype, c.time, c.data)?;
            Ok(!p.done())
        })?;
    }
    p.finish()
}

/// Runs `pgm-dump` with parsed `args`, writing to `out`.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<Summary, DumpError> {
    run_with(args, out, &mut |_| {})
}

/// [`run`], calling `on_ready(interface)` once a live capture is listening (the binary says so
/// on stderr, like tcpdump; a test waits for it before sending).
pub fn run_with(
    args: &Args,
    out: &mut dyn Write,
    on_ready: &mut dyn FnMut(&str),
) -> Result<Summary, DumpError> {
    let opts = Output::from_args(args);
    if let Some(iface) = &args.iface {
        return crate::live::capture(iface, args.duration, &opts, out, on_ready);
    }
    let path = args.pcap.as_deref().ok_or(DumpError::NoInput)?;
    dump_with(path, &opts, out)
}

/// Decodes a classic pcap from any reader (e.g. bytes in memory) into records, like
/// [`read_records`] does for a file.
pub fn records_from_pcap_reader<R: Read>(
    reader: R,
    udp_ports: &[u16],
) -> Result<Vec<Record>, pcap_file::PcapError> {
    let mut pr = PcapReader::new(reader)?;
    let linktype = pr.header().datalink;
    let mut out = Vec::new();
    let mut n = 0;
    while let Some(pkt) = pr.next_packet() {
        let pkt = pkt?;
        n += 1;
        out.extend(decode_frame(
            linktype,
            n,
            pkt.timestamp.as_secs_f64(),
            &pkt.data,
            udp_ports,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::{net::Ipv6Addr, time::Duration};

    use pgm::wire::{Data, Fragment, Gsi, Nak, NakList, Options, SeqNo, Spm};

    use super::*;
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
        let (a, b): (Ipv6Addr, Ipv6Addr) =
            ("2001:db8::1".parse().unwrap(), "ff0e::1".parse().unwrap());
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
        frames::write_pcap(File::create(&path).unwrap(), DataLink::ETHERNET, &f).unwrap();
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
        frames::write_pcap(File::create(&path).unwrap(), DataLink::PPP, &[]).unwrap();
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
        assert!(Output::from_args(&a).flush_each);
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
        let (a, b): (Ipv6Addr, Ipv6Addr) =
            ("2001:db8::1".parse().unwrap(), "ff0e::1".parse().unwrap());
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
                enhanced_packet::EnhancedPacketBlock,
                interface_description::InterfaceDescriptionBlock,
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
}
