//! From captured bytes to [`Record`]s: the link layer, IPv4 or IPv6, UDP, and the split of UDP
//! GSO super-packets; the PGM packet itself is parsed by `pgm::wire`.
//!
//! Link types: Ethernet (1, up to two VLAN tags), Linux cooked SLL (113) or SLL2 (276), raw IP
//! (101, 228, 229). IPv6 extension headers (Hop-by-Hop, Routing, Fragment, Destination Options)
//! are skipped. PGM is recognised as IP protocol 113 ("raw") or as UDP to or from one of the UDP
//! ports given ("udp"; the UDP payload is exactly the PGM packet, docs/wire-compatibility.md
//! §8). PGM's checksum has no pseudo-header (RFC 3208 §8), so it is verified alike over both.
//! IP fragments of PGM are noted "unsupported", not reassembled. Other packets are skipped
//! silently; malformed PGM packets become records too.
//!
//! A capture taken on a host that sends with UDP GSO (`UDP_SEGMENT`; our EPGM sender does) can
//! hold the unsegmented "super-packet": one UDP datagram whose payload is several complete PGM
//! packets back to back, all of one length but the last, which may be shorter (on the wire each
//! is its own datagram). When a UDP payload is longer than the PGM packet at its start declares
//! ([`Packet::packet_len`]) and the whole payload splits into complete packets of that length,
//! each is reported as its own packet, numbered in [`Record::gso`]; otherwise the payload is one
//! (malformed) packet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pcap_file::DataLink;
use pgm::wire::{checksum::Verdict, Packet, PacketRepr};

/// IP protocol number of PGM (RFC 3208 §8).
pub const IPPROTO_PGM: u8 = 113;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// Ethertype of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// Ethertype of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

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
    /// Something that looks like PGM but that this tool does not decode (IP fragments).
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

// IPv6 extension headers walked to find the upper layer (RFC 8200 §4).
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_DEST_OPTS: u8 = 60;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Where an IP packet stands in fragmentation (RFC 791 §3.1, RFC 8200 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frag {
    /// Not a fragment (or an IPv6 atomic fragment, RFC 6946: offset 0, no more fragments).
    Whole,
    /// The first fragment: the upper-layer header is there, not all of its payload.
    First,
    /// A later fragment: no upper-layer header at all.
    Later,
}

impl Frag {
    fn of(offset: u16, more: bool) -> Frag {
        match (offset, more) {
            (0, false) => Frag::Whole,
            (0, true) => Frag::First,
            _ => Frag::Later,
        }
    }
}

/// Why an IP packet's payload cannot be had.
enum Cut {
    /// The IP header contradicts itself (the reason says how).
    BadHeader(String),
    /// The capture holds `captured` of the packet's `total` bytes (snaplen).
    Truncated { captured: usize, total: usize },
}

/// The upper layer of an IP packet, IPv4 or IPv6 alike: what [`carried`] decodes.
struct Upper<'a> {
    src: IpAddr,
    dst: IpAddr,
    /// IPv4 protocol or IPv6 Next Header of the upper layer.
    proto: u8,
    /// The captured bytes from the upper-layer header on (maybe past the IP length: padding).
    captured: &'a [u8],
    /// The upper layer cut to the IP length.
    payload: Result<&'a [u8], Cut>,
    frag: Frag,
    /// The note for a fragment.
    frag_note: &'static str,
}

impl Upper<'_> {
    /// The payload, or why `needed_by` (the PGM packet, the UDP datagram) cannot be had.
    fn payload(&self, needed_by: &str) -> Result<&[u8], String> {
        match &self.payload {
            Ok(p) => Ok(p),
            Err(Cut::BadHeader(reason)) => Err(reason.clone()),
            Err(Cut::Truncated { captured, total }) => Err(format!(
                "{needed_by} truncated by the capture: {captured} of {total} IP bytes captured"
            )),
        }
    }
}

fn decode_ipv4(ip: &[u8], udp_ports: &[u16]) -> Option<(IpAddr, IpAddr, What)> {
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    // Ethernet padding is cut off by the IP total length.
    let payload = if ihl < 20 || total < ihl {
        Err(Cut::BadHeader(format!(
            "bad IPv4 header (IHL {ihl}, total length {total})"
        )))
    } else {
        ip.get(ihl..total).ok_or(Cut::Truncated {
            captured: ip.len(),
            total,
        })
    };
    carried(
        &Upper {
            src: IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])),
            dst: IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])),
            proto: ip[9],
            captured: ip.get(ihl.max(20)..).unwrap_or_default(),
            payload,
            frag: Frag::of(frag & 0x1fff, frag & 0x2000 != 0),
            frag_note: "IPv4 fragment (not reassembled)",
        },
        udp_ports,
    )
}

fn decode_ipv6(ip: &[u8], udp_ports: &[u16]) -> Option<(IpAddr, IpAddr, What)> {
    let addr = |at: usize| -> Option<IpAddr> {
        let a: [u8; 16] = ip.get(at..at + 16)?.try_into().ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(a)))
    };
    if ip.first()? >> 4 != 6 {
        return None;
    }
    let (src, dst) = (addr(8)?, addr(24)?);
    let plen = be16(ip, 4)?;
    let (proto, at, frag) = ipv6_upper(ip)?;
    // The payload length counts the extension headers (RFC 8200 §3); it ends Ethernet padding.
    let total = 40 + usize::from(plen);
    let payload = if at > total {
        Err(Cut::BadHeader(format!(
            "bad IPv6 header (payload length {plen}, extension headers up to byte {at})"
        )))
    } else {
        ip.get(at..total).ok_or(Cut::Truncated {
            captured: ip.len(),
            total,
        })
    };
    carried(
        &Upper {
            src,
            dst,
            proto,
            captured: ip.get(at..).unwrap_or_default(),
            payload,
            frag,
            frag_note: "IPv6 fragment (not reassembled)",
        },
        udp_ports,
    )
}

/// Walks an IPv6 packet's extension headers (RFC 8200 §4): the upper layer's Next Header
/// value, its offset from the IPv6 header and the fragment state. A later fragment stops at
/// its Fragment header (what follows is not a header). `None` when the capture cuts the chain.
fn ipv6_upper(ip: &[u8]) -> Option<(u8, usize, Frag)> {
    let mut next = *ip.get(6)?;
    let mut at = 40;
    let mut frag = Frag::Whole;
    loop {
        match next {
            // RFC 8200 §4.3, §4.4, §4.6: the length byte counts 8 octets past the first 8.
            IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS => {
                let len = usize::from(*ip.get(at + 1)?);
                next = *ip.get(at)?;
                at += (len + 1) * 8;
            }
            // RFC 8200 §4.5: 8 octets; offset in 8-octet units, M flag in the low bit.
            IPV6_FRAGMENT => {
                let off_m = be16(ip, at + 2)?;
                next = *ip.get(at)?;
                at += 8;
                match Frag::of(off_m >> 3, off_m & 1 != 0) {
                    Frag::Later => return Some((next, at, Frag::Later)),
                    Frag::First => frag = Frag::First,
                    Frag::Whole => {}
                }
            }
            _ => return Some((next, at, frag)),
        }
    }
}

/// Decodes the upper layer of an IP packet: raw PGM, or UDP to or from one of `udp_ports`.
/// A fragment of either is noted, as its PGM packet cannot be read whole; a later UDP
/// fragment has no ports to match, so it is skipped.
fn carried(up: &Upper<'_>, udp_ports: &[u16]) -> Option<(IpAddr, IpAddr, What)> {
    let what = match up.proto {
        IPPROTO_PGM if up.frag != Frag::Whole => What::Unsupported(up.frag_note),
        IPPROTO_PGM => match up.payload("packet") {
            Ok(p) => What::Pgm {
                encap: Encap::Raw,
                data: p.to_vec(),
            },
            Err(reason) => What::Malformed {
                encap: Encap::Raw,
                reason,
            },
        },
        IPPROTO_UDP => udp(up, udp_ports)?,
        _ => return None,
    };
    Some((up.src, up.dst, what))
}

/// The PGM packet in a UDP datagram: its payload, bounded by the UDP length.
fn udp(up: &Upper<'_>, udp_ports: &[u16]) -> Option<What> {
    if up.frag == Frag::Later {
        return None;
    }
    let header = up.captured.get(..8)?;
    let (sport, dport) = (be16(header, 0)?, be16(header, 2)?);
    if !udp_ports.contains(&sport) && !udp_ports.contains(&dport) {
        return None;
    }
    let encap = Encap::Udp { sport, dport };
    if up.frag == Frag::First {
        return Some(What::Unsupported(up.frag_note));
    }
    let malformed = |reason| Some(What::Malformed { encap, reason });
    let p = match up.payload("datagram") {
        Ok(p) => p,
        Err(reason) => return malformed(reason),
    };
    let ulen = usize::from(be16(header, 4)?);
    // None for a UDP length under 8 or past the datagram.
    match p.get(8..ulen) {
        Some(data) => Some(What::Pgm {
            encap,
            data: data.to_vec(),
        }),
        _ => malformed(format!(
            "bad UDP length {ulen} ({} bytes after the IP header)",
            p.len()
        )),
    }
}
