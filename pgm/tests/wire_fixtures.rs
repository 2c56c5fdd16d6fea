//! Byte fixtures for every packet type: captured libzmq/OpenPGM packets (docs/wire-compatibility.md §1) and
//! hand-written ones with options. Each one parses to the expected fields, verifies, re-emits to
//! identical bytes, and fails to parse at every truncation.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

#[path = "wire_common.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pgm::wire::{
    checksum::{self, Verdict},
    options::{CrFlags, ParityPrm, PgmccData, PgmccFeedback},
    Body, Data, Error, Fragment, Gsi, Nak, Packet, PacketRepr, PacketType, SeqNo, Spm, Tsi,
    HEADER_LEN,
};

const LIBZMQ_GSI: Gsi = Gsi([0xb7, 0xc6, 0xd1, 0xbc, 0x03, 0x8a]);
const GSI: Gsi = Gsi([0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f]);

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
}

/// The checks every fixture must pass; returns the parsed packet.
fn check(bytes: &[u8]) -> PacketRepr<'_> {
    assert_eq!(checksum::verify(bytes), Verdict::Good, "checksum");
    let p = PacketRepr::parse_verified(bytes).expect("parse_verified");
    assert_eq!(PacketRepr::parse(bytes).unwrap(), p);
    assert_eq!(p.buffer_len(), bytes.len(), "buffer_len");
    assert_eq!(p.to_vec(), bytes, "re-emit differs");
    let mut appended = vec![0xee; 3];
    p.emit(&mut appended);
    assert_eq!(&appended[3..], bytes, "emit after existing bytes");
    assert!(!p.to_string().is_empty());
    // The header view agrees with the Repr.
    let h = Packet::new_checked(bytes).unwrap();
    assert_eq!(h.sport(), p.sport);
    assert_eq!(h.dport(), p.dport);
    assert_eq!(h.gsi(), p.gsi);
    assert_eq!(h.packet_type(), p.packet_type());
    assert_eq!(h.tsi(), p.tsi());
    assert_eq!(h.body().len(), bytes.len() - HEADER_LEN);
    assert_eq!(h.verify_checksum(), Verdict::Good);
    check_truncations(bytes, p.packet_type());
    check_corruption(bytes);
    p
}

/// Every strict prefix is rejected (unknown types excepted above the header: their body is
/// opaque, so only the checksum can tell).
fn check_truncations(bytes: &[u8], t: PacketType) {
    for len in 0..bytes.len() {
        let short = &bytes[..len];
        if len >= HEADER_LEN && matches!(t, PacketType::Unknown(_)) {
            let p = PacketRepr::parse(short).unwrap();
            assert_eq!(p.payload.len(), len - HEADER_LEN);
        } else {
            assert!(PacketRepr::parse(short).is_err(), "prefix {len} parsed");
        }
        assert!(
            PacketRepr::parse_verified(short).is_err(),
            "prefix {len} verified"
        );
        let _ = checksum::verify(short);
    }
}

/// Flipping a bit outside the checksum field is caught by the checksum (sampled every 7 bytes).
fn check_corruption(bytes: &[u8]) {
    for i in (0..bytes.len()).step_by(7).filter(|i| !(6..8).contains(i)) {
        let mut b = bytes.to_vec();
        b[i] ^= 0x10;
        assert_eq!(
            PacketRepr::parse_verified(&b),
            Err(Error::BadChecksum),
            "bit flip at {i}"
        );
    }
}

#[test]
fn every_fixture_verifies_and_round_trips() {
    for (name, bytes) in common::all() {
        assert_eq!(checksum::verify(&bytes), Verdict::Good, "{name}");
        let p = PacketRepr::parse_verified(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(p.to_vec(), bytes, "{name}");
    }
}

// ---- Captured libzmq / OpenPGM packets ----------------------------------------------------

#[test]
fn captured_libzmq_spm() {
    let b = common::libzmq_spm();
    let p = check(&b);
    assert_eq!((p.sport, p.dport, p.gsi), (0xf3c5, 0x15b3, LIBZMQ_GSI));
    assert_eq!(p.tsi(), Tsi::new(LIBZMQ_GSI, 0xf3c5));
    assert_eq!(
        p.body,
        Body::Spm(Spm {
            spm_sqn: SeqNo(0),
            trail: SeqNo(0),
            lead: SeqNo(0xffff_ffff),
            path: v4(127, 0, 0, 1),
        })
    );
    assert!(p.options.is_empty() && p.payload.is_empty());
    assert_eq!(Packet::new_checked(&b[..]).unwrap().checksum(), 0xea76);
}

#[test]
fn captured_libzmq_spm_fin() {
    let b = common::libzmq_spm_fin();
    let p = check(&b);
    let Body::Spm(s) = p.body else {
        panic!("not an SPM")
    };
    assert_eq!((s.spm_sqn, s.trail, s.lead), (SeqNo(9), SeqNo(0), SeqNo(2)));
    assert!(p.options.fin);
    assert_eq!(p.options.names(), ["OPT_LENGTH", "OPT_FIN"]);
    // FIN is not network-significant: OpenPGM sends options byte 0x01.
    assert_eq!(b[5], 0x01);
    assert!(p.to_string().contains("FIN"));
}

#[test]
fn captured_libzmq_odata() {
    let b0 = common::libzmq_odata_0();
    let p = check(&b0);
    assert_eq!(
        p.body,
        Body::Odata(Data {
            sqn: SeqNo(0),
            trail: SeqNo(0)
        })
    );
    assert_eq!(p.payload.len(), 0x594);
    assert_eq!(&p.payload[..9], b"\x00\x00\x06\x00hello");
    assert!(p.options.is_empty());

    let b1 = common::libzmq_odata_1();
    let p = check(&b1);
    assert_eq!(p.packet_type(), PacketType::Odata);
    assert_eq!(&p.payload[..2], [0xff, 0xff]);

    let b2 = common::libzmq_odata_2();
    let p = check(&b2);
    assert_eq!(
        p.body,
        Body::Odata(Data {
            sqn: SeqNo(2),
            trail: SeqNo(0)
        })
    );
    assert_eq!(p.payload.len(), 0x1f3);
    assert!(p.payload.ends_with(b"\x05\x00tail"));
}

#[test]
fn rdata_is_odata_with_type_rewritten_and_checksum_refilled() {
    // OpenPGM's send_rdata: the stored ODATA skb, type 0x05, new checksum.
    let mut b = common::libzmq_odata_1();
    let mut h = Packet::new_checked(&mut b[..]).unwrap();
    h.set_packet_type(PacketType::Rdata);
    assert_eq!(h.verify_checksum(), Verdict::Bad);
    h.fill_checksum();
    assert_eq!(h.verify_checksum(), Verdict::Good);
    let p = check(&b);
    assert_eq!(
        p.body,
        Body::Rdata(Data {
            sqn: SeqNo(1),
            trail: SeqNo(0)
        })
    );
    assert_eq!(p.payload, &common::libzmq_odata_1()[24..]);
}

#[test]
fn captured_libzmq_nak_and_ncf() {
    let nak = common::libzmq_nak();
    let p = check(&nak);
    let want = Nak {
        sqn: SeqNo(1),
        src_nla: v4(127, 0, 0, 1),
        grp_nla: v4(239, 192, 1, 1),
    };
    assert_eq!(p.body, Body::Nak(want));
    // Upstream: the source's port is the dport.
    assert_eq!(p.tsi(), Tsi::new(LIBZMQ_GSI, 0xf5f4));
    let ncf = common::libzmq_ncf();
    let q = check(&ncf);
    assert_eq!(q.body, Body::Ncf(want));
    assert_eq!(q.tsi(), p.tsi());
}

#[test]
fn captured_openpgm_spmr() {
    let b = common::openpgm_spmr();
    let p = check(&b);
    assert_eq!(p.body, Body::Spmr);
    assert_eq!(p.gsi, Gsi([1, 2, 3, 4, 5, 6]));
    assert_eq!(p.tsi(), Tsi::new(p.gsi, 0x4242));
    assert_eq!(p.buffer_len(), HEADER_LEN);
}

#[test]
fn captured_openpgm_fragment() {
    let b = common::openpgm_odata_fragment();
    let p = check(&b);
    assert_eq!(
        p.options.fragment,
        Some(Fragment {
            first_sqn: SeqNo(1),
            offset: 0,
            apdu_len: 3000
        })
    );
    assert_eq!(p.options.names(), ["OPT_LENGTH", "OPT_FRAGMENT"]);
    assert_eq!(p.payload.len(), 1428);
    assert_eq!(b[5], 0x01, "fragment options byte is OPT_PRESENT only");
}

#[test]
fn captured_openpgm_fragment_with_running_offset() {
    // OpenPGM's offset runs on across APDUs; it must parse (receivers ignore the field).
    let b = common::openpgm_fragment_running_offset();
    let p = check(&b);
    let f = p.options.fragment.unwrap();
    assert_eq!(
        (f.first_sqn, f.offset, f.apdu_len),
        (SeqNo(0x15), 5436, 4000)
    );
    assert_eq!(
        p.body,
        Body::Odata(Data {
            sqn: SeqNo(0x16),
            trail: SeqNo(0)
        })
    );
}

// ---- Synthetic packets with options --------------------------------------------------------

#[test]
fn spm_with_parity_crqst_fin() {
    let b = common::spm_parity_crqst_fin();
    let p = check(&b);
    assert_eq!(
        p.body,
        Body::Spm(Spm {
            spm_sqn: SeqNo(5),
            trail: SeqNo(10),
            lead: SeqNo(20),
            path: v4(192, 168, 1, 10)
        })
    );
    assert_eq!(
        p.options.parity_prm,
        Some(ParityPrm {
            proactive: false,
            on_demand: true,
            tgs: 16
        })
    );
    assert_eq!(
        p.options.crqst,
        Some(CrFlags {
            ne_wl: false,
            ne_wp: false,
            rx_wp: true
        })
    );
    assert!(p.options.fin);
    assert!(p.options.is_network_significant());
    assert_eq!(b[5], 0x03);
}

#[test]
fn spm_ipv6_path() {
    let b = common::spm_ipv6();
    let p = check(&b);
    let Body::Spm(s) = p.body else { panic!() };
    assert_eq!(s.path, v6("2001:db8::1"));
    assert_eq!(s.lead, SeqNo(u32::MAX));
}

#[test]
fn poll_v4_and_v6() {
    let b = common::poll();
    let p = check(&b);
    let Body::Poll(x) = p.body else { panic!() };
    assert_eq!((x.sqn, x.round, x.s_type), (SeqNo(7), 2, 0));
    assert_eq!(x.path, v4(10, 0, 0, 1));
    assert_eq!(x.bo_ivl_us, 250_000);
    assert_eq!(x.rand, [0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(x.mask, 0xff00_ff00);
    assert_eq!(p.tsi().sport, 1000);

    let b = common::poll_ipv6();
    let p = check(&b);
    let Body::Poll(x) = p.body else { panic!() };
    assert_eq!((x.sqn, x.round, x.s_type), (SeqNo(8), 0, 1));
    assert_eq!(x.path, v6("2001:db8::1"));
}

#[test]
fn polr() {
    let b = common::polr();
    let p = check(&b);
    let Body::Polr(x) = p.body else { panic!() };
    assert_eq!((x.sqn, x.round), (SeqNo(7), 2));
    assert_eq!(p.tsi(), Tsi::new(GSI, 1000), "POLR is upstream");
}

#[test]
fn odata_with_join_syn_pgmcc_data() {
    let b = common::odata_join_syn_pgmcc();
    let p = check(&b);
    assert_eq!(
        p.body,
        Body::Odata(Data {
            sqn: SeqNo(100),
            trail: SeqNo(90)
        })
    );
    assert_eq!(p.payload, b"hello, world");
    assert_eq!(p.options.join, Some(SeqNo(95)));
    assert!(p.options.syn);
    assert_eq!(
        p.options.pgmcc_data,
        Some(PgmccData {
            tstamp: 123_456,
            acker: v4(10, 0, 0, 2)
        })
    );
    assert_eq!(
        p.options.names(),
        ["OPT_LENGTH", "OPT_JOIN", "OPT_SYN", "OPT_PGMCC_DATA"]
    );
    assert!(!p.options.is_network_significant());
}

#[test]
fn fragmented_odata_and_rdata() {
    let b = common::odata_fragment_middle();
    let p = check(&b);
    assert_eq!(
        p.options.fragment,
        Some(Fragment {
            first_sqn: SeqNo(1),
            offset: 1428,
            apdu_len: 3000
        })
    );
    assert_eq!(p.payload, common::middle_fragment_payload());

    let b = common::rdata_fragment_last();
    let p = check(&b);
    assert_eq!(
        p.body,
        Body::Rdata(Data {
            sqn: SeqNo(3),
            trail: SeqNo(1)
        })
    );
    let f = p.options.fragment.unwrap();
    assert_eq!(f.offset as usize + p.payload.len(), f.apdu_len as usize);
}

#[test]
fn nak_nnak_ncf_with_nak_list() {
    for (b, t) in [
        (common::nak_list(), PacketType::Nak),
        (common::ncf_list(), PacketType::Ncf),
    ] {
        let p = check(&b);
        assert_eq!(p.packet_type(), t);
        let (Body::Nak(n) | Body::Ncf(n)) = p.body else {
            panic!()
        };
        assert_eq!(n.sqn, SeqNo(10));
        assert_eq!(n.src_nla, v4(192, 168, 1, 10));
        assert_eq!(n.grp_nla, v4(239, 192, 1, 1));
        assert_eq!(
            p.options.nak_list.unwrap().as_slice(),
            [SeqNo(11), SeqNo(12), SeqNo(15)]
        );
        assert_eq!(b[5], 0x03, "NAK list is network-significant");
        assert!(p.to_string().contains("list[11,12,15]"));
    }
    let b = common::nnak_list();
    let p = check(&b);
    assert_eq!(p.packet_type(), PacketType::Nnak);
    assert_eq!(p.options.nak_list.unwrap().as_slice(), [SeqNo(13)]);
}

#[test]
fn nak_ipv6_nlas() {
    let b = common::nak_ipv6();
    let p = check(&b);
    assert_eq!(
        p.body,
        Body::Nak(Nak {
            sqn: SeqNo(0x8000_0000),
            src_nla: v6("2001:db8::1"),
            grp_nla: v6("ff0e::101"),
        })
    );
}

#[test]
fn spmr() {
    let b = common::spmr();
    let p = check(&b);
    assert_eq!(p.body, Body::Spmr);
    assert_eq!(p.tsi(), Tsi::new(GSI, 1000));
}

#[test]
fn ack_with_pgmcc_feedback() {
    let b = common::ack_pgmcc_feedback();
    let p = check(&b);
    let Body::Ack(a) = p.body else { panic!() };
    assert_eq!((a.rx_max, a.bitmap), (SeqNo(200), 0xffff_fffe));
    assert_eq!(
        p.options.pgmcc_feedback,
        Some(PgmccFeedback {
            tstamp: 123_456,
            loss_rate: 0x1234,
            nla: v4(10, 0, 0, 3)
        })
    );
    assert_eq!(p.tsi(), Tsi::new(GSI, 1000), "ACK is upstream");
}

#[test]
fn unknown_type_keeps_its_body() {
    let b = common::unknown_type();
    let p = check(&b);
    assert_eq!(p.body, Body::Unknown(0x0f));
    assert_eq!(p.packet_type(), PacketType::Unknown(0x0f));
    assert_eq!(p.payload, &b[HEADER_LEN..]);
    assert!(p.options.is_empty());
    assert!(p.to_string().starts_with("UNKNOWN"));
}

#[test]
fn packet_type_byte_round_trips() {
    for b in 0..=255u8 {
        let t = PacketType::from(b);
        assert_eq!(u8::from(t), b);
        assert!(!t.name().is_empty());
    }
}
