//! Builders for captured frames (Ethernet, Linux cooked SLL/SLL2, IPv4, IPv6, UDP) around a PGM
//! packet: what the `pgm-dump` tests and the Wireshark cross-check use to make captures without
//! a network (written with [`crate::dump::pcap::write_pcap`]). The protocol numbers are the
//! decoder's.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::dump::decode::{ETHERTYPE_IPV4, IPPROTO_UDP};

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

/// A UDP datagram over IPv4 with its checksum (pseudo-header included) filled in.
pub fn udp4(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).unwrap_or(u16::MAX);
    let mut u = Vec::with_capacity(usize::from(len));
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, IPPROTO_UDP]);
    pseudo.extend_from_slice(&len.to_be_bytes());
    let c = match internet_checksum(&[&pseudo, &u]) {
        0 => 0xffff,
        c => c,
    };
    u[6..8].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, IPPROTO_UDP, &u)
}

/// An IPv6 packet (no extension headers, hop limit 64).
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&len.to_be_bytes());
    v.push(next_header);
    v.push(64);
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    v.extend_from_slice(payload);
    v
}

/// The Ethernet multicast MAC of an IPv4 group (RFC 1112), or a fixed unicast MAC otherwise.
fn mac_for(dst: Option<Ipv4Addr>) -> [u8; 6] {
    match dst {
        Some(a) if a.is_multicast() => {
            let o = a.octets();
            [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
        }
        _ => [0x02, 0, 0, 0, 0, 0x02],
    }
}

/// An Ethernet II frame carrying `payload` with `ethertype`, padded to the 60-byte minimum as a
/// NIC would (decoders must trim by the IP length).
pub fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let dst = if ethertype == ETHERTYPE_IPV4 && payload.len() >= 20 {
        mac_for(Some(Ipv4Addr::new(
            payload[16],
            payload[17],
            payload[18],
            payload[19],
        )))
    } else {
        mac_for(None)
    };
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
}
