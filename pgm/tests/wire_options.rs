//! Every option type: its exact wire layout (RFC 3208 §9, Appendices A–E; PGMCC as OpenPGM lays
//! it out), parse, emit and round trip, with IPv4 and IPv6 NLAs where the option has one.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

#[path = "wire_common.rs"]
mod common;

use std::{
    fmt::Write,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use common::hex;
use pgm::wire::{
    options::{
        self, kind, Cr, CrFlags, NakBoIvl, NakBoRng, ParityPrm, PgmccData, PgmccFeedback, Rst,
        MAX_NAK_LIST,
    },
    Body, Data, Fragment, Gsi, Nak, NakList, Options, PacketRepr, SeqNo, Spm, HEADER_LEN,
};

const A4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));

fn a6() -> IpAddr {
    IpAddr::V6("2001:db8::42".parse::<Ipv6Addr>().unwrap())
}

fn nak_body() -> Body {
    Body::Nak(Nak {
        sqn: SeqNo(1),
        src_nla: A4,
        grp_nla: IpAddr::V4(Ipv4Addr::new(239, 1, 1, 1)),
    })
}

fn spm_body() -> Body {
    Body::Spm(Spm {
        spm_sqn: SeqNo(1),
        trail: SeqNo(2),
        lead: SeqNo(3),
        path: A4,
    })
}

fn odata_body(sqn: u32) -> Body {
    Body::Odata(Data {
        sqn: SeqNo(sqn),
        trail: SeqNo(0),
    })
}

/// Emits `options` on a packet with `body` (and `payload`), checks that the option block is
/// OPT_LENGTH followed by exactly `want` (the options' TLVs, OPT_END already set on the last),
/// that the header's options byte is `bits`, and that packet and block both parse back.
fn check(body: Body, payload: &[u8], options: &Options, want: &str, bits: u8) {
    let options = *options;
    let repr = PacketRepr {
        sport: 1,
        dport: 2,
        gsi: Gsi([1, 2, 3, 4, 5, 6]),
        parity: false,
        var_pktlen: false,
        body,
        options,
        payload,
    };
    let bytes = repr.to_vec();
    assert_eq!(bytes.len(), repr.buffer_len());
    assert_eq!(bytes[5], bits, "header options byte");
    let want = hex(want);
    let start = repr.buffer_len() - payload.len() - options.buffer_len();
    let block = &bytes[start..bytes.len() - payload.len()];
    assert_eq!(block.len(), 4 + want.len(), "option block length");
    assert_eq!(&block[..2], [0x00, 0x04], "OPT_LENGTH header");
    assert_eq!(
        usize::from(u16::from_be_bytes([block[2], block[3]])),
        block.len()
    );
    assert_eq!(&block[4..], want, "option bytes");
    assert_eq!(Options::parse(block), Ok((options, block.len())));
    // Trailing bytes after the block are not the block's business.
    let mut longer = block.to_vec();
    longer.extend_from_slice(&[0xaa; 5]);
    assert_eq!(Options::parse(&longer), Ok((options, block.len())));
    let back = PacketRepr::parse_verified(&bytes).unwrap();
    assert_eq!(back, repr);
    assert_eq!(back.to_vec(), bytes);
    // Every truncation of the block fails.
    for len in 0..block.len() {
        assert!(Options::parse(&block[..len]).is_err(), "block prefix {len}");
    }
}

#[test]
fn opt_fragment() {
    let o = Options {
        fragment: Some(Fragment {
            first_sqn: SeqNo(0xffff_fffe),
            offset: 100,
            apdu_len: 65535,
        }),
        ..Options::default()
    };
    check(
        odata_body(0xffff_ffff),
        &[7; 50],
        &o,
        "81 10 00 00 fffffffe 00000064 0000ffff",
        0x01,
    );
}

#[test]
fn opt_nak_list() {
    let sqns: Vec<SeqNo> = (0..MAX_NAK_LIST as u32).map(|i| SeqNo(i * 3)).collect();
    let o = Options {
        nak_list: Some(NakList::from_slice(&sqns)),
        ..Options::default()
    };
    let mut want = String::from("82 fc 00 00");
    for s in &sqns {
        write!(want, " {:08x}", s.0).unwrap();
    }
    check(nak_body(), &[], &o, &want, 0x03);
    let one = Options {
        nak_list: Some(NakList::from_slice(&[SeqNo(9)])),
        ..Options::default()
    };
    check(nak_body(), &[], &one, "82 08 00 00 00000009", 0x03);
}

#[test]
fn nak_list_type_caps_at_62() {
    let sqns: Vec<SeqNo> = (0..100).map(SeqNo).collect();
    let mut l = NakList::from_slice(&sqns);
    assert_eq!(l.len(), MAX_NAK_LIST);
    assert!(!l.push(SeqNo(1000)));
    assert_eq!(l.as_slice(), &sqns[..MAX_NAK_LIST]);
    assert!(NakList::new().is_empty());
}

#[test]
fn empty_nak_list_is_not_emitted() {
    let o = Options {
        nak_list: Some(NakList::new()),
        ..Options::default()
    };
    assert_eq!(o.buffer_len(), 0);
    assert!(o.names().is_empty());
    assert!(!o.is_network_significant());
    let repr = PacketRepr {
        sport: 1,
        dport: 2,
        gsi: Gsi::default(),
        parity: false,
        var_pktlen: false,
        body: nak_body(),
        options: o,
        payload: &[],
    };
    let bytes = repr.to_vec();
    assert_eq!(bytes[5], 0, "no OPT_PRESENT");
    assert_eq!(bytes.len(), repr.buffer_len());
    assert!(PacketRepr::parse(&bytes).unwrap().options.is_empty());
}

#[test]
fn opt_join() {
    let o = Options {
        join: Some(SeqNo(0x0102_0304)),
        ..Options::default()
    };
    check(odata_body(1), b"x", &o, "83 08 00 00 01020304", 0x01);
}

#[test]
fn opt_nak_bo_ivl_and_rng() {
    let o = Options {
        nak_bo_ivl: Some(NakBoIvl {
            ivl_us: 50_000,
            sqn: SeqNo(7),
        }),
        nak_bo_rng: Some(NakBoRng {
            max_us: 0x0010_0000,
            min_us: 0x20,
        }),
        ..Options::default()
    };
    check(
        spm_body(),
        &[],
        &o,
        "04 0c 00 00 0000c350 00000007 | 85 0c 00 00 00100000 00000020",
        0x03,
    );
}

#[test]
fn opt_redirect_v4_v6() {
    let o = Options {
        redirect: Some(A4),
        ..Options::default()
    };
    check(
        Body::Polr(pgm::wire::Polr {
            sqn: SeqNo(1),
            round: 0,
        }),
        &[],
        &o,
        "87 0c 00 00 0001 0000 0a010203",
        0x03,
    );
    let o = Options {
        redirect: Some(a6()),
        ..Options::default()
    };
    check(
        spm_body(),
        &[],
        &o,
        "87 18 00 00 0002 0000 20010db8000000000000000000000042",
        0x03,
    );
}

#[test]
fn opt_parity_prm_grp_curr_tgsize() {
    let o = Options {
        parity_prm: Some(ParityPrm {
            proactive: true,
            on_demand: true,
            tgs: 8,
        }),
        parity_grp: Some(0xdead_beef),
        curr_tgsize: Some(5),
        ..Options::default()
    };
    check(
        odata_body(3),
        b"parity",
        &o,
        "08 08 00 03 00000008 | 0a 08 00 00 00000005 | 89 08 00 00 deadbeef",
        0x03,
    );
    let on_demand = Options {
        parity_prm: Some(ParityPrm {
            proactive: false,
            on_demand: true,
            tgs: 128,
        }),
        ..Options::default()
    };
    // RFC 3208 §11.8.1: O is 0x01 (OpenPGM would call that bit pro-active).
    check(spm_body(), &[], &on_demand, "88 08 00 01 00000080", 0x03);
}

#[test]
fn opt_nbr_unreach_and_path_nla() {
    let o = Options {
        nbr_unreach: true,
        path_nla: Some(A4),
        ..Options::default()
    };
    check(
        Body::Ncf(match nak_body() {
            Body::Nak(n) => n,
            _ => unreachable!(),
        }),
        &[],
        &o,
        "0b 04 00 00 | 8c 08 00 00 0a010203",
        0x03,
    );
    let o = Options {
        path_nla: Some(a6()),
        ..Options::default()
    };
    check(
        spm_body(),
        &[],
        &o,
        "8c 14 00 00 20010db8000000000000000000000042",
        0x03,
    );
}

#[test]
fn opt_syn_fin_rst() {
    let o = Options {
        syn: true,
        fin: true,
        rst: Some(Rst {
            no_naks: true,
            code: 0x2a,
        }),
        ..Options::default()
    };
    check(
        spm_body(),
        &[],
        &o,
        "0d 04 00 00 | 0e 04 00 00 | 8f 04 00 6a",
        0x01,
    );
    let o = Options {
        rst: Some(Rst {
            no_naks: false,
            code: 1,
        }),
        ..Options::default()
    };
    check(odata_body(9), b"r", &o, "8f 04 00 01", 0x01);
}

#[test]
fn opt_cr_and_crqst() {
    let cr = Cr {
        flags: CrFlags {
            ne_wl: true,
            ne_wp: false,
            rx_wp: true,
        },
        lead: SeqNo(77),
        ne_wl: 1,
        ne_wp: 2,
        rx_wp: 3,
        rcvr: A4,
    };
    let o = Options {
        cr: Some(cr),
        ..Options::default()
    };
    check(
        nak_body(),
        &[],
        &o,
        "90 18 00 05 0000004d 0001 0002 0003 0000 0001 0000 0a010203",
        0x03,
    );
    let o = Options {
        cr: Some(Cr { rcvr: a6(), ..cr }),
        ..Options::default()
    };
    check(
        nak_body(),
        &[],
        &o,
        "90 24 00 05 0000004d 0001 0002 0003 0000 0002 0000 20010db8000000000000000000000042",
        0x03,
    );
    let o = Options {
        crqst: Some(CrFlags {
            ne_wl: true,
            ne_wp: true,
            rx_wp: false,
        }),
        ..Options::default()
    };
    check(spm_body(), &[], &o, "91 04 00 06", 0x03);
}

#[test]
fn opt_pgmcc_data_and_feedback() {
    let o = Options {
        pgmcc_data: Some(PgmccData {
            tstamp: 0x0a0b_0c0d,
            acker: A4,
        }),
        ..Options::default()
    };
    check(
        odata_body(4),
        b"cc",
        &o,
        "92 10 00 00 0a0b0c0d 0001 0000 0a010203",
        0x01,
    );
    let o = Options {
        pgmcc_data: Some(PgmccData {
            tstamp: 1,
            acker: a6(),
        }),
        ..Options::default()
    };
    check(
        odata_body(4),
        b"cc",
        &o,
        "92 1c 00 00 00000001 0002 0000 20010db8000000000000000000000042",
        0x01,
    );
    let ack = Body::Ack(pgm::wire::Ack {
        rx_max: SeqNo(5),
        bitmap: 1,
    });
    let o = Options {
        pgmcc_feedback: Some(PgmccFeedback {
            tstamp: 9,
            loss_rate: 0xffff,
            nla: A4,
        }),
        ..Options::default()
    };
    check(
        ack,
        &[],
        &o,
        "93 10 00 00 00000009 0001 ffff 0a010203",
        0x01,
    );
    let o = Options {
        pgmcc_feedback: Some(PgmccFeedback {
            tstamp: 9,
            loss_rate: 2,
            nla: a6(),
        }),
        ..Options::default()
    };
    check(
        ack,
        &[],
        &o,
        "93 1c 00 00 00000009 0002 0002 20010db8000000000000000000000042",
        0x01,
    );
}

#[test]
fn network_significant_options_come_first() {
    // RFC 3208 §9.1: network-significant options before receiver-significant ones.
    let o = Options {
        fin: true,
        nak_bo_ivl: Some(NakBoIvl {
            ivl_us: 1,
            sqn: SeqNo(2),
        }),
        ..Options::default()
    };
    check(
        spm_body(),
        &[],
        &o,
        "04 0c 00 00 00000001 00000002 | 8e 04 00 00",
        0x03,
    );
    assert_eq!(o.names(), ["OPT_LENGTH", "OPT_NAK_BO_IVL", "OPT_FIN"]);
}

#[test]
fn unknown_and_invalid_options_are_skipped_and_remembered() {
    // OPT_LENGTH, an unknown 0x20 of length 8, OPT_INVALID (0x7f), then OPT_FIN with OPT_END.
    let block = hex("00 04 0018 | 20 08 00 00 01020304 | 7f 08 00 00 00000000 | 8e 04 00 00");
    let (o, used) = Options::parse(&block).unwrap();
    assert_eq!(used, block.len());
    assert!(o.fin);
    assert_eq!(o.unknown.as_slice(), [0x20, kind::INVALID]);
    assert_eq!(
        o.names(),
        ["OPT_LENGTH", "OPT_FIN", "OPT_UNKNOWN", "OPT_INVALID"]
    );
    // Only unknown options: names still list them.
    let block = hex("00 04 0008 | a1 04 00 00");
    let (o, _) = Options::parse(&block).unwrap();
    assert_eq!(o.names(), ["OPT_LENGTH", "OPT_UNKNOWN"]);
    assert_eq!(o.buffer_len(), 0, "unknown options are not emitted");
}

#[test]
fn option_names_cover_every_kind() {
    for k in 0..=0x7fu8 {
        let n = options::name(k);
        assert!(n.starts_with("OPT_"), "{k:#x}");
    }
    assert_eq!(options::name(kind::PGMCC_FEEDBACK), "OPT_PGMCC_FEEDBACK");
    assert_eq!(options::name(0x06), "OPT_UNKNOWN");
}

#[test]
fn every_known_option_at_once_within_sixteen() {
    // 16 options after OPT_LENGTH (the RFC's per-packet limit), mixing every layout.
    let o = Options {
        nak_bo_ivl: Some(NakBoIvl {
            ivl_us: 1,
            sqn: SeqNo(1),
        }),
        nak_bo_rng: Some(NakBoRng {
            max_us: 2,
            min_us: 1,
        }),
        redirect: Some(a6()),
        parity_prm: Some(ParityPrm {
            proactive: true,
            on_demand: false,
            tgs: 4,
        }),
        curr_tgsize: Some(3),
        nbr_unreach: true,
        path_nla: Some(A4),
        cr: Some(Cr {
            flags: CrFlags::default(),
            lead: SeqNo(1),
            ne_wl: 0,
            ne_wp: 0,
            rx_wp: 0,
            rcvr: A4,
        }),
        crqst: Some(CrFlags::default()),
        join: Some(SeqNo(3)),
        parity_grp: Some(1),
        syn: true,
        fin: true,
        rst: Some(Rst {
            no_naks: false,
            code: 3,
        }),
        pgmcc_data: Some(PgmccData {
            tstamp: 1,
            acker: A4,
        }),
        pgmcc_feedback: Some(PgmccFeedback {
            tstamp: 1,
            loss_rate: 1,
            nla: a6(),
        }),
        ..Options::default()
    };
    assert_eq!(o.names().len(), 17);
    let repr = PacketRepr {
        sport: 1,
        dport: 2,
        gsi: Gsi::default(),
        parity: false,
        var_pktlen: false,
        body: spm_body(),
        options: o,
        payload: &[],
    };
    let bytes = repr.to_vec();
    assert_eq!(PacketRepr::parse_verified(&bytes), Ok(repr));
    let start = HEADER_LEN + 20;
    assert_eq!(Options::parse(&bytes[start..]).unwrap().0, o);
}
