//! Builders for captured frames (Ethernet, Linux cooked SLL/SLL2, IPv4, IPv6, UDP) around a PGM
//! packet: what the `pgm-dump` tests and the Wireshark cross-check use to make captures without
//! a network (written with [`crate::dump::pcap::write_pcap`]). The protocol numbers are the
//! decoder's.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::dump::decode::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_UDP};

/// RFC 1071 checksum of `data` (folded, complemented).
fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in *part {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(hi) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet (20-byte header, TTL 64, DF clear, header checksum filled in).
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).unwrap_or(u16::MAX);
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&[0, 1, 0, 0, 64, proto, 0, 0]);
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    let c = internet_checksum(&[&v]);
    v[10..12].copy_from_slice(&c.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// A UDP header and `payload`, the checksum over the pseudo-header of `src` and `dst` (the
/// octets of IPv4 or IPv6 addresses). RFC 768's layout, whose sum is RFC 8200 §8.1's too: the
/// 16-bit words are the same, in another order.
fn udp(src: &[u8], dst: &[u8], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).unwrap_or(u16::MAX);
    let mut u = Vec::with_capacity(usize::from(len));
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let mut pseudo = [src, dst].concat();
    pseudo.extend_from_slice(&[0, IPPROTO_UDP]);
    pseudo.extend_from_slice(&len.to_be_bytes());
    let c = match internet_checksum(&[&pseudo, &u]) {
        0 => 0xffff,
        c => c,
    };
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

/// A UDP datagram over IPv4 with its checksum (pseudo-header included) filled in.
pub fn udp4(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let u = udp(&src.octets(), &dst.octets(), sport, dport, payload);
    ipv4(src, dst, IPPROTO_UDP, &u)
}

/// An IPv6 packet (no extension headers, hop limit 64).
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, payload: &[u8]) -> Vec<u8> {
    ipv6_ext(src, dst, &[], next_header, payload)
}

/// An IPv6 extension header for [`ipv6_ext`] (RFC 8200 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ext6 {
    /// Hop-by-Hop Options (0), Routing (43) or Destination Options (60) of `8 * (units + 1)`
    /// bytes: one PadN option (options headers), or routing type 253 (RFC 4727, experimental)
    /// with no segments left. `units` at most 31 (one PadN).
    Opts {
        /// Next Header value of this header.
        kind: u8,
        /// The length byte.
        units: u8,
    },
    /// Fragment (44): offset in 8-byte units, M flag.
    Fragment {
        /// Fragment offset (13 bits).
        offset: u16,
        /// More fragments follow.
        more: bool,
    },
}

impl Ext6 {
    fn kind(self) -> u8 {
        match self {
            Ext6::Opts { kind, .. } => kind,
            Ext6::Fragment { .. } => 44,
        }
    }

    fn bytes(self, next: u8) -> Vec<u8> {
        match self {
            Ext6::Opts { kind: 43, units } => {
                let mut h = vec![next, units, 253, 0];
                h.resize(8 * (usize::from(units) + 1), 0);
                h
            }
            Ext6::Opts { units, .. } => {
                let units = units.min(31);
                let mut h = vec![next, units, 1, 8 * units + 4];
                h.resize(8 * (usize::from(units) + 1), 0);
                h
            }
            Ext6::Fragment { offset, more } => {
                let off_m = (offset << 3) | u16::from(more);
                let mut h = vec![next, 0];
                h.extend_from_slice(&off_m.to_be_bytes());
                // Identification 1.
                h.extend_from_slice(&[0, 0, 0, 1]);
                h
            }
        }
    }
}

/// An IPv6 packet with `exts` in order between its header and `payload` (hop limit 64).
pub fn ipv6_ext(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    exts: &[Ext6],
    next_header: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut chain = Vec::new();
    for (i, e) in exts.iter().enumerate() {
        let next = exts.get(i + 1).map_or(next_header, |n| n.kind());
        chain.extend_from_slice(&e.bytes(next));
    }
    chain.extend_from_slice(payload);
    let len = u16::try_from(chain.len()).unwrap_or(u16::MAX);
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&len.to_be_bytes());
    v.push(exts.first().map_or(next_header, |e| e.kind()));
    v.push(64);
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    v.extend_from_slice(&chain);
    v
}

/// A UDP datagram over IPv6, after `exts`, with its checksum filled in (RFC 8200 §8.1).
pub fn udp6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    exts: &[Ext6],
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let u = udp(&src.octets(), &dst.octets(), sport, dport, payload);
    ipv6_ext(src, dst, exts, IPPROTO_UDP, &u)
}

/// The destination MAC of an Ethernet frame carrying `ip`: the multicast MAC of an IPv4 group
/// (RFC 1112 §6.4) or of an IPv6 group (RFC 2464 §7), or a fixed unicast MAC otherwise.
fn mac_for(ethertype: u16, ip: &[u8]) -> [u8; 6] {
    match (ethertype, ip.get(16..20), ip.get(24..40)) {
        (ETHERTYPE_IPV4, Some(&[a, b, c, d]), _) if Ipv4Addr::new(a, b, c, d).is_multicast() => {
            [0x01, 0x00, 0x5e, b & 0x7f, c, d]
        }
        (ETHERTYPE_IPV6, _, Some(&[0xff, .., a, b, c, d])) => [0x33, 0x33, a, b, c, d],
        _ => [0x02, 0, 0, 0, 0, 0x02],
    }
}

/// An Ethernet II frame carrying `payload` with `ethertype`, padded to the 60-byte minimum as a
/// NIC would (decoders must trim by the IP length).
pub fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let dst = mac_for(ethertype, payload);
    let mut v = dst.to_vec();
    v.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(payload);
    if v.len() < 60 {
        v.resize(60, 0);
    }
    v
}

/// An Ethernet frame with one 802.1Q VLAN tag.
pub fn ethernet_vlan(vid: u16, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![
        0x01, 0x00, 0x5e, 0, 0, 1, 0x02, 0, 0, 0, 0, 0x01, 0x81, 0x00,
    ];
    v.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// A Linux cooked capture (SLL, link type 113) frame: 16-byte header, protocol last.
pub fn sll(protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    v.extend_from_slice(&protocol.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// A Linux cooked capture v2 (SLL2, link type 276) frame: 20-byte header, protocol first.
pub fn sll2(protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = protocol.to_be_bytes().to_vec();
    v.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
    v.extend_from_slice(payload);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::decode::IPPROTO_PGM;

    #[test]
    fn ipv4_header_checksum_verifies() {
        let p = ipv4(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(239, 1, 1, 1),
            IPPROTO_PGM,
            &[1, 2, 3],
        );
        assert_eq!(internet_checksum(&[&p[..20]]), 0);
        assert_eq!(p.len(), 23);
    }

    #[test]
    fn udp_checksum_verifies() {
        let (s, d) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let p = udp4(s, d, 1, 2, b"abc");
        let u = &p[20..];
        let mut pseudo = s.octets().to_vec();
        pseudo.extend_from_slice(&d.octets());
        pseudo.extend_from_slice(&[0, 17, 0, 11]);
        assert_eq!(internet_checksum(&[&pseudo, u]), 0);
    }

    #[test]
    fn ethernet_pads_short_frames() {
        assert_eq!(ethernet(ETHERTYPE_IPV4, &[0; 20]).len(), 60);
        let e = ethernet(
            ETHERTYPE_IPV4,
            &ipv4(
                Ipv4Addr::new(10, 0, 0, 1),
                Ipv4Addr::new(239, 192, 1, 1),
                IPPROTO_PGM,
                &[],
            ),
        );
        assert_eq!(&e[..6], [0x01, 0x00, 0x5e, 0x40, 0x01, 0x01]);
    }

    #[test]
    fn udp6_checksum_verifies_over_the_rfc_8200_pseudo_header() {
        let (s, d): (Ipv6Addr, Ipv6Addr) =
            ("2001:db8::1".parse().unwrap(), "ff0e::1".parse().unwrap());
        let p = udp6(s, d, &[Ext6::Opts { kind: 0, units: 0 }], 1, 2, b"abc");
        assert_eq!((p[6], p[40]), (0, IPPROTO_UDP));
        let u = &p[48..];
        let mut pseudo = [s.octets(), d.octets()].concat();
        pseudo.extend_from_slice(&[0, 0, 0, 11, 0, 0, 0, 17]);
        assert_eq!(internet_checksum(&[&pseudo, u]), 0);
    }

    #[test]
    fn ipv6_extension_headers_chain() {
        let (s, d) = (Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST);
        let exts = [
            Ext6::Opts { kind: 0, units: 1 },
            Ext6::Opts { kind: 43, units: 0 },
            Ext6::Fragment {
                offset: 0,
                more: true,
            },
            Ext6::Opts { kind: 60, units: 0 },
        ];
        let p = ipv6_ext(s, d, &exts, IPPROTO_PGM, &[9; 3]);
        assert_eq!(p.len(), 40 + 16 + 8 + 8 + 8 + 3);
        assert_eq!(&p[4..7], [0, 43, 0]);
        assert_eq!(&p[40..44], [43, 1, 1, 12]);
        assert_eq!(&p[56..60], [44, 0, 253, 0]);
        assert_eq!(&p[64..68], [60, 0, 0, 1]);
        assert_eq!(&p[72..76], [IPPROTO_PGM, 0, 1, 4]);
        assert_eq!(&p[80..], [9; 3]);
    }

    #[test]
    fn ethernet_maps_ipv6_groups() {
        let d: Ipv6Addr = "ff0e::1:2345:6789".parse().unwrap();
        let e = ethernet(ETHERTYPE_IPV6, &ipv6(Ipv6Addr::LOCALHOST, d, 59, &[]));
        assert_eq!(&e[..6], [0x33, 0x33, 0x23, 0x45, 0x67, 0x89]);
        let e = ethernet(ETHERTYPE_IPV6, &ipv6(d, Ipv6Addr::LOCALHOST, 59, &[]));
        assert_eq!(e[0] & 1, 0);
    }
}
