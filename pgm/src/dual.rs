//! A/B sessions (docs/dual-path.md): one session (one TSI, one sequence of sqns) sent on two
//! paths, each its own multicast group. Receivers joined to both merge them by sqn in the
//! ordinary receive window: the copy that arrives second is a duplicate, counted and never
//! delivered, and only what both paths lost is NAKed (once the NAK back-off covers the skew
//! between the paths). The source accepts NAKs naming either group
//! ([`SourceConfig::second_group`](crate::SourceConfig::second_group)).
//!
//! What goes on the second path is decided here, with no IO: the socket driver's
//! `transport::DualPath` and the simulator scenarios both use [`second_path_copy`].

use std::net::IpAddr;

use crate::wire::{Body, Packet, PacketRepr, PacketType};

/// Writes into `out` (cleared first) the second path's copy of `pkt`, a packet the source
/// sent to `first_group`: the same bytes, except that an NCF names `second_group` (an NCF
/// names the group it confirms for, and receivers ignore one naming another group, as
/// OpenPGM does).
pub fn second_path_copy(pkt: &[u8], first_group: IpAddr, second_group: IpAddr, out: &mut Vec<u8>) {
    out.clear();
    let is_ncf = Packet::new_checked(pkt).is_ok_and(|p| p.packet_type() == PacketType::Ncf);
    if is_ncf {
        if let Ok(mut repr) = PacketRepr::parse(pkt) {
            if let Body::Ncf(ncf) = &mut repr.body {
                if ncf.grp_nla == first_group {
                    ncf.grp_nla = second_group;
                    repr.emit(out);
                    return;
                }
            }
        }
    }
    out.extend_from_slice(pkt);
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::wire::{Gsi, Nak, Options, SeqNo};

    #[test]
    fn ncf_copies_name_the_second_group_and_the_rest_is_copied() {
        let (a, b) = (
            IpAddr::V4(Ipv4Addr::new(239, 1, 1, 1)),
            IpAddr::V4(Ipv4Addr::new(239, 1, 1, 2)),
        );
        let ncf = PacketRepr {
            sport: 1000,
            dport: 7500,
            gsi: Gsi([1, 2, 3, 4, 5, 6]),
            parity: false,
            var_pktlen: false,
            body: Body::Ncf(Nak {
                sqn: SeqNo(42),
                src_nla: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                grp_nla: a,
            }),
            options: Options::default(),
            payload: &[],
        }
        .to_vec();
        let mut out = vec![9; 3];
        second_path_copy(&ncf, a, b, &mut out);
        let copy = PacketRepr::parse_verified(&out).unwrap();
        let Body::Ncf(n) = copy.body else {
            panic!("not an NCF: {copy:?}")
        };
        assert_eq!((n.sqn, n.grp_nla), (SeqNo(42), b));
        // An NCF for another group, and anything that is not an NCF, is copied as it is.
        second_path_copy(&ncf, b, a, &mut out);
        assert_eq!(out, ncf);
        second_path_copy(b"not a packet", a, b, &mut out);
        assert_eq!(out, b"not a packet");
    }
}
