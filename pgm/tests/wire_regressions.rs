//! Named regressions for the bug classes that hit PGM parsers before (MS05-019/MS06-052 option
//! loops, OpenPGM/Wireshark/tcpdump over-reads, integer underflows, type confusion) and for the
//! limits RFC 3208 puts on options. Every malformed input must give `Err`, never a panic, a hang
//! or an over-read.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

#[path = "wire_common.rs"]
mod common;

use common::hex;
use pgm::wire::{
    checksum, flags,
    options::{MAX_NAK_LIST, MAX_OPTIONS},
    Body, Error, Options, PacketRepr, PacketType,
};

/// A packet from raw parts: header (GSI 010203040506, ports 1000 → 7500), `body`, `opts`,
/// `payload`; TSDU length `tsdu` (the payload length if `None`); checksum filled in.
fn raw(t: u8, bits: u8, body: &[u8], opts: &[u8], payload: &[u8], tsdu: Option<u16>) -> Vec<u8> {
    let mut v = hex("03e8 1d4c");
    v.push(t);
    v.push(bits);
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
    let tsdu = tsdu.unwrap_or(payload.len() as u16);
    v.extend_from_slice(&tsdu.to_be_bytes());
    v.extend_from_slice(body);
    v.extend_from_slice(opts);
    v.extend_from_slice(payload);
    checksum::fill(&mut v);
    v
}

const ODATA: u8 = 0x04;
const SPM: u8 = 0x00;
const NAK: u8 = 0x08;

fn odata_body(sqn: u32) -> Vec<u8> {
    let mut b = sqn.to_be_bytes().to_vec();
    b.extend_from_slice(&[0, 0, 0, 0]);
    b
}

fn spm_body() -> Vec<u8> {
    hex("00000001 00000000 00000005 0001 0000 0a000001")
}

fn nak_body() -> Vec<u8> {
    hex("00000005 0001 0000 0a000001 0001 0000 efc00101")
}

/// OPT_LENGTH with the right total, then `tlvs`.
fn block(tlvs: &[u8]) -> Vec<u8> {
    let mut v = vec![0x00, 0x04];
    v.extend_from_slice(&((4 + tlvs.len()) as u16).to_be_bytes());
    v.extend_from_slice(tlvs);
    v
}

/// Parses `bytes` every way a receiver or a dump tool might, checking nothing panics, and
/// returns `parse`'s result.
fn parse_all(bytes: &[u8]) -> Result<PacketRepr<'_>, Error> {
    let v = PacketRepr::parse_verified(bytes);
    let p = PacketRepr::parse(bytes);
    if let Ok(v) = v {
        assert_eq!(Ok(v), p);
    }
    if let Ok(p) = &p {
        let _ = p.to_string();
    }
    if bytes.len() >= 24 {
        let _ = Options::parse(&bytes[24..]);
    }
    p
}

#[test]
fn regression_ms_pgm_option_length_zero_infinite_loop() {
    // MS05-019 / MS06-052: an option of length 0 made the Windows PGM option walk spin forever.
    // Every length below the 4-byte option header is rejected, wherever the option sits.
    for len in 0..4u8 {
        let tlv = [0x8e, len, 0, 0];
        let b = raw(
            ODATA,
            flags::OPT_PRESENT,
            &odata_body(1),
            &block(&tlv),
            b"x",
            None,
        );
        assert_eq!(
            parse_all(&b),
            Err(Error::BadOption("option length below 4")),
            "len {len}"
        );
        // After a valid option too.
        let mut tlvs = hex("0d 04 00 00");
        tlvs.extend_from_slice(&tlv);
        let b = raw(
            ODATA,
            flags::OPT_PRESENT,
            &odata_body(1),
            &block(&tlvs),
            b"x",
            None,
        );
        assert!(parse_all(&b).is_err(), "len {len} second");
        assert!(Options::parse(&block(&tlvs)).is_err());
    }
    // The walk always advances: a maximal OPT_LENGTH total filled with 4-byte options stops at
    // the 16-option limit instead of walking 16k options.
    let tlvs: Vec<u8> = std::iter::repeat_n([0x20u8, 4, 0, 0], 16_000)
        .flatten()
        .collect();
    assert_eq!(
        Options::parse(&block(&tlvs)),
        Err(Error::BadOption("more than 16 options"))
    );
}

#[test]
fn regression_fragment_option_bounds() {
    let frag = |first: u32, off: u32, len: u32| {
        let mut t = hex("81 10 00 00");
        t.extend_from_slice(&first.to_be_bytes());
        t.extend_from_slice(&off.to_be_bytes());
        t.extend_from_slice(&len.to_be_bytes());
        block(&t)
    };
    let pkt = |sqn: u32, opts: &[u8], payload: &[u8]| {
        raw(
            ODATA,
            flags::OPT_PRESENT,
            &odata_body(sqn),
            opts,
            payload,
            None,
        )
    };
    // Sane: first fragment and a later one.
    assert!(parse_all(&pkt(5, &frag(5, 0, 20), &[1; 10])).is_ok());
    assert!(parse_all(&pkt(6, &frag(5, 10, 20), &[1; 10])).is_ok());
    // APDU length above 65535 (OpenPGM PGM_MAX_APDU), even by one.
    for apdu in [65_536, 0x00ff_ffff, u32::MAX] {
        assert_eq!(
            parse_all(&pkt(5, &frag(5, 0, apdu), &[1; 10])),
            Err(Error::BadFragment("APDU length above 65535")),
            "{apdu}"
        );
    }
    // A fragment longer than its whole APDU (the bound OpenPGM's receive window enforces).
    for (len, apdu) in [(10usize, 9u32), (11, 10), (1400, 0)] {
        assert_eq!(
            parse_all(&pkt(5, &frag(5, 0, apdu), &vec![1; len])),
            Err(Error::BadFragment("fragment longer than its APDU")),
            "len {len} apdu {apdu}"
        );
    }
    // offset + length beyond the APDU is NOT an error, and offsets near u32::MAX do not
    // overflow anything: OpenPGM 5.3 sends a running offset across APDUs (captured:
    // `common::openpgm_fragment_running_offset`, offset 5436 in a 4000-byte APDU) and
    // receivers ignore the field, so the parser accepts it and reassembly must not use it.
    for (off, apdu) in [(11, 20), (20, 20), (65_535, 65_535), (u32::MAX, 65_535)] {
        assert!(
            parse_all(&pkt(6, &frag(5, off, apdu), &[1; 10])).is_ok(),
            "off {off} apdu {apdu}"
        );
    }
    assert!(parse_all(&common::openpgm_fragment_running_offset()).is_ok());
    // first_sqn after this packet's sqn (serially), including across the wrap.
    for (sqn, first) in [(5, 6), (5, 0x8000_0004), (u32::MAX, 0)] {
        assert_eq!(
            parse_all(&pkt(sqn, &frag(first, 10, 20), &[1; 10])),
            Err(Error::BadFragment("first sqn after this packet's sqn")),
            "sqn {sqn} first {first}"
        );
    }
    // Wrap the other way is fine: sqn 1 is after first_sqn 0xffffffff.
    assert!(parse_all(&pkt(1, &frag(u32::MAX, 10, 20), &[1; 10])).is_ok());
    // An empty fragment.
    assert_eq!(
        parse_all(&pkt(5, &frag(5, 0, 20), &[])),
        Err(Error::BadFragment("empty fragment"))
    );
    // Wrong OPT_FRAGMENT lengths.
    for l in [4u8, 12, 15, 17, 20] {
        let mut t = vec![0x81, l, 0, 0];
        t.resize(usize::from(l), 0);
        assert!(parse_all(&pkt(5, &block(&t), &[1; 10])).is_err(), "len {l}");
    }
    // A parity packet's OPT_FRAGMENT is parity, not a position: accepted on ODATA.
    let b = raw(
        ODATA,
        flags::OPT_PRESENT | flags::OPT_PARITY,
        &odata_body(5),
        &frag(9, 0x1234, 0xff),
        &[1; 10],
        None,
    );
    assert!(parse_all(&b).unwrap().parity);
}

#[test]
fn regression_integer_underflow_lengths() {
    // OPT_LENGTH totals below 4 (the classic `total - 4` underflow) and below 8 (no room for
    // even one option).
    for total in 0..8u16 {
        let mut opts = vec![0x00, 0x04];
        opts.extend_from_slice(&total.to_be_bytes());
        opts.extend_from_slice(&hex("8e 04 00 00"));
        let b = raw(SPM, flags::OPT_PRESENT, &spm_body(), &opts, &[], None);
        assert!(parse_all(&b).is_err(), "total {total}");
        assert!(Options::parse(&opts).is_err(), "total {total}");
    }
    // TSDU length larger than what follows, by one and by a lot.
    for tsdu in [11u16, 12, 1000, u16::MAX] {
        let b = raw(ODATA, 0, &odata_body(1), &[], &[0; 10], Some(tsdu));
        assert_eq!(
            parse_all(&b),
            Err(Error::TsduLength {
                declared: tsdu,
                actual: 10
            })
        );
    }
    // … and smaller (trailing bytes are malformed too, as in OpenPGM).
    let b = raw(ODATA, 0, &odata_body(1), &[], &[0; 10], Some(9));
    assert!(matches!(parse_all(&b), Err(Error::TsduLength { .. })));
    // Options eat into the TSDU: the TSDU length counts only what follows the options.
    let opts = block(&hex("8d 04 00 00"));
    let b = raw(
        ODATA,
        flags::OPT_PRESENT,
        &odata_body(1),
        &opts,
        &[0; 10],
        Some(18),
    );
    assert!(matches!(parse_all(&b), Err(Error::TsduLength { .. })));
    // An option whose length runs past the end of the OPT_LENGTH block but not the packet.
    let mut opts = hex("00 04 0008 | 8e 0c 00 00");
    opts.extend_from_slice(&[0; 8]);
    assert_eq!(
        Options::parse(&opts),
        Err(Error::BadOption("option runs past OPT_LENGTH total"))
    );
    let b = raw(SPM, flags::OPT_PRESENT, &spm_body(), &opts, &[], Some(8));
    assert!(parse_all(&b).is_err());
    // NLAs cut short.
    for cut in 1..8 {
        let body = &nak_body()[..20 - cut];
        assert!(parse_all(&raw(NAK, 0, body, &[], &[], None)).is_err());
    }
}

#[test]
fn regression_type_confusion() {
    // A NAK body after an ODATA header is ODATA sqn/trail + payload, never a NAK.
    let nakish = nak_body();
    let b = raw(ODATA, 0, &nakish[..8], &[], &nakish[8..], None);
    let p = parse_all(&b).unwrap();
    assert_eq!(p.packet_type(), PacketType::Odata);
    assert_eq!(p.payload, &nakish[8..]);
    // An ODATA-sized body after a NAK header is a truncated NAK.
    let b = raw(NAK, 0, &odata_body(1), &[], &[], None);
    assert!(parse_all(&b).is_err());
    // SPMR has no body: NAK-body bytes after it are not read as one (TSDU length is 0).
    let b = raw(0x0c, 0, &nakish, &[], &[], None);
    assert!(matches!(parse_all(&b), Err(Error::TsduLength { .. })));
    // Every NAK-like type reads the NAK body; no other type does.
    for t in [0x08u8, 0x09, 0x0a] {
        let b = raw(t, 0, &nakish, &[], &[], None);
        let p = parse_all(&b).unwrap();
        assert!(matches!(
            p.body,
            Body::Nak(_) | Body::Nnak(_) | Body::Ncf(_)
        ));
    }
    // OPT_NAK_LIST on ODATA, RDATA, SPM, SPMR, POLR, ACK: rejected.
    let list = block(&hex("82 08 00 00 00000002"));
    for (t, body) in [
        (ODATA, odata_body(1)),
        (0x05, odata_body(1)),
        (SPM, spm_body()),
        (0x0c, vec![]),
        (0x02, hex("00000001 0000 0000")),
        (0x0d, hex("00000001 00000000")),
    ] {
        let b = raw(t, flags::OPT_PRESENT, &body, &list, &[], None);
        assert_eq!(
            parse_all(&b),
            Err(Error::BadNakList("on a packet that is not NAK/NNAK/NCF")),
            "type {t:#x}"
        );
    }
    // OPT_FRAGMENT on SPM, NAK, NCF, SPMR: rejected — also with the parity bit set.
    let frag = block(&hex("81 10 00 00 00000001 00000000 00000010"));
    for (t, body) in [
        (SPM, spm_body()),
        (NAK, nakish.clone()),
        (0x0a, nakish.clone()),
        (0x0c, vec![]),
    ] {
        for bits in [flags::OPT_PRESENT, flags::OPT_PRESENT | flags::OPT_PARITY] {
            let b = raw(t, bits, &body, &frag, &[], None);
            assert_eq!(
                parse_all(&b),
                Err(Error::BadFragment("on a packet that is not ODATA/RDATA")),
                "type {t:#x} bits {bits:#x}"
            );
        }
    }
    // OPT_LENGTH posing as a later option.
    let opts = block(&hex("80 04 0008"));
    assert_eq!(
        Options::parse(&opts),
        Err(Error::BadOption("OPT_LENGTH after the first option"))
    );
}

#[test]
fn regression_tcpdump_option_length_overread() {
    // CVE-2017-13019 (tcpdump pgm_print): option lengths trusted past the captured packet.
    // An option whose length runs past the end of the packet.
    for claimed in [8u8, 16, 64, 255] {
        let mut opts = vec![0x00, 0x04];
        opts.extend_from_slice(&(4 + u16::from(claimed)).to_be_bytes());
        opts.extend_from_slice(&[0x8e, claimed, 0, 0]);
        let b = raw(SPM, flags::OPT_PRESENT, &spm_body(), &opts, &[], None);
        assert!(parse_all(&b).is_err(), "claimed {claimed}");
        assert!(Options::parse(&opts).is_err());
    }
    // OPT_LENGTH total past the packet end.
    let mut opts = hex("00 04 ffff 8e 04 00 00");
    let b = raw(SPM, flags::OPT_PRESENT, &spm_body(), &opts, &[], None);
    assert_eq!(parse_all(&b), Err(Error::Truncated("options")));
    // Variable-length options (NLA inside) whose NLA runs past the option.
    for tlv in [
        hex("87 0c 00 00 0002 0000 0a000001"), // REDIRECT claims IPv6, has 4 bytes
        hex("92 10 00 00 00000001 0002 0000 0a000001"), // PGMCC_DATA, IPv6 AFI
        hex("93 10 00 00 00000001 0002 0000 0a000001"), // PGMCC_FEEDBACK, IPv6 AFI
        hex("90 18 00 00 00000001 0000 0000 0000 0000 0002 0000 0a000001"), // CR
        hex("8c 0c 00 00 0a000001 00000000"),  // PATH_NLA of neither 8 nor 20
    ] {
        assert!(Options::parse(&block(&tlv)).is_err(), "{tlv:02x?}");
    }
    // NLAs with an unknown AFI.
    assert_eq!(
        Options::parse(&block(&hex("87 0c 00 00 0003 0000 0a000001"))),
        Err(Error::BadAfi(3))
    );
    let mut body = nak_body();
    body[5] = 9;
    assert_eq!(
        parse_all(&raw(NAK, 0, &body, &[], &[], None)),
        Err(Error::BadAfi(9))
    );
    // Cut the options short at every length.
    opts = block(&hex("0d 04 00 00 81 10 00 00 00000001 00000000 00000010"));
    for len in 0..opts.len() {
        assert!(Options::parse(&opts[..len]).is_err(), "len {len}");
    }
}

#[test]
fn nak_list_longer_than_62_entries() {
    // 63 sqns need 4 + 252 = 256 bytes, which the u8 option length cannot say: it wraps to 0.
    let mut tlv = vec![0x82, 0x00, 0, 0];
    for i in 0..63u32 {
        tlv.extend_from_slice(&i.to_be_bytes());
    }
    let b = raw(
        NAK,
        flags::OPT_PRESENT,
        &nak_body(),
        &block(&tlv),
        &[],
        None,
    );
    assert!(parse_all(&b).is_err());
    // 62 is the most, and fits (length 252).
    let mut tlv = vec![0x82, 252, 0, 0];
    for i in 0..MAX_NAK_LIST as u32 {
        tlv.extend_from_slice(&i.to_be_bytes());
    }
    let b = raw(
        NAK,
        flags::OPT_PRESENT,
        &nak_body(),
        &block(&tlv),
        &[],
        None,
    );
    assert_eq!(parse_all(&b).unwrap().options.nak_list.unwrap().len(), 62);
    // Two lists of 62 (124 sqns) in one packet: rejected as a duplicate option.
    let mut tlvs = tlv.clone();
    tlvs[0] = 0x02;
    tlvs.extend_from_slice(&tlv);
    let b = raw(
        NAK,
        flags::OPT_PRESENT,
        &nak_body(),
        &block(&tlvs),
        &[],
        None,
    );
    assert_eq!(parse_all(&b), Err(Error::BadOption("duplicate option")));
    // Lengths 253..255 are not 4 + 4n.
    for l in 253..=255u8 {
        let mut t = vec![0x82, l, 0, 0];
        t.resize(usize::from(l), 0);
        assert!(Options::parse(&block(&t)).is_err());
    }
}

#[test]
fn nak_list_not_multiple_of_four() {
    for l in [5u8, 6, 7, 9, 10, 11, 13] {
        let mut t = vec![0x82, l, 0, 0];
        t.resize(usize::from(l), 0);
        assert_eq!(
            Options::parse(&block(&t)),
            Err(Error::BadNakList("length is not 4 + 4n")),
            "len {l}"
        );
        let b = raw(NAK, flags::OPT_PRESENT, &nak_body(), &block(&t), &[], None);
        assert!(parse_all(&b).is_err());
    }
    assert_eq!(
        Options::parse(&block(&hex("82 04 00 00"))),
        Err(Error::BadNakList("empty"))
    );
}

#[test]
fn more_than_sixteen_options() {
    let opt = |n: usize| -> Vec<u8> {
        let mut t: Vec<u8> = std::iter::repeat_n([0x20u8, 4, 0, 0], n)
            .flatten()
            .collect();
        let last = t.len() - 4;
        t[last] |= 0x80;
        block(&t)
    };
    let (o, _) = Options::parse(&opt(MAX_OPTIONS)).unwrap();
    assert_eq!(o.unknown.as_slice().len(), MAX_OPTIONS);
    assert_eq!(
        Options::parse(&opt(MAX_OPTIONS + 1)),
        Err(Error::BadOption("more than 16 options"))
    );
    let b = raw(SPM, flags::OPT_PRESENT, &spm_body(), &opt(17), &[], None);
    assert!(parse_all(&b).is_err());
}

#[test]
fn missing_opt_end() {
    // The block ends without any option carrying OPT_END.
    let b = block(&hex("0d 04 00 00 0e 04 00 00"));
    assert_eq!(
        Options::parse(&b),
        Err(Error::BadOption("no option carries OPT_END"))
    );
    let p = raw(SPM, flags::OPT_PRESENT, &spm_body(), &b, &[], None);
    assert!(parse_all(&p).is_err());
    // OPT_END before the block's end: the rest of the block is not silently ignored.
    let b = block(&hex("8d 04 00 00 0e 04 00 00"));
    assert_eq!(
        Options::parse(&b),
        Err(Error::BadOption(
            "bytes after OPT_END inside OPT_LENGTH total"
        ))
    );
}

#[test]
fn first_option_must_be_opt_length_of_length_4() {
    for opts in [
        hex("8e 04 00 00"),
        hex("00 05 0009 00 8e 04 00 00"),
        hex("00 03 0008 8e 04 00 00"),
        hex("80 04 0008 8e 04 00 00"),
    ] {
        assert!(Options::parse(&opts).is_err(), "{opts:02x?}");
    }
    // OPT_PRESENT set with no option bytes at all.
    let b = raw(SPM, flags::OPT_PRESENT, &spm_body(), &[], &[], None);
    assert_eq!(parse_all(&b), Err(Error::Truncated("OPT_LENGTH")));
}

#[test]
fn fixed_length_options_with_wrong_lengths() {
    for (k, good) in [
        (0x01u8, 16u8),
        (0x03, 8),
        (0x04, 12),
        (0x05, 12),
        (0x08, 8),
        (0x09, 8),
        (0x0a, 8),
        (0x0b, 4),
        (0x0d, 4),
        (0x0e, 4),
        (0x0f, 4),
        (0x11, 4),
    ] {
        for l in [good - 1, good + 1, good + 4] {
            if l < 4 {
                continue;
            }
            let mut t = vec![k | 0x80, l, 0, 0];
            t.resize(usize::from(l), 0);
            assert!(Options::parse(&block(&t)).is_err(), "kind {k:#x} len {l}");
        }
    }
}

#[test]
fn duplicate_options_are_rejected() {
    for tlv in [
        hex("0e 04 00 00"),
        hex("03 08 00 00 00000001"),
        hex("0d 04 00 00"),
    ] {
        let mut t = tlv.clone();
        t.extend_from_slice(&tlv);
        let last = tlv.len();
        t[last] |= 0x80;
        assert_eq!(
            Options::parse(&block(&t)),
            Err(Error::BadOption("duplicate option"))
        );
    }
}

#[test]
fn zero_checksum_rejected_on_data_only() {
    for (t, body, payload) in [
        (ODATA, odata_body(1), b"data".as_slice()),
        (0x05, odata_body(1), b"data".as_slice()),
    ] {
        let mut b = raw(t, 0, &body, &[], payload, None);
        b[6] = 0;
        b[7] = 0;
        assert_eq!(
            PacketRepr::parse_verified(&b),
            Err(Error::MissingChecksum),
            "{t:#x}"
        );
        // Without verification it parses.
        assert!(PacketRepr::parse(&b).is_ok());
    }
    for (t, body) in [
        (SPM, spm_body()),
        (NAK, nak_body()),
        (0x09, nak_body()),
        (0x0a, nak_body()),
        (0x0c, vec![]),
        (0x02, hex("00000001 0000 0000")),
        (0x0d, hex("00000001 00000000")),
        (0x42, hex("0102")),
    ] {
        let mut b = raw(t, 0, &body, &[], &[], None);
        b[6] = 0;
        b[7] = 0;
        assert!(PacketRepr::parse_verified(&b).is_ok(), "{t:#x}");
    }
    // The captured libzmq SPM with its checksum zeroed is accepted; a wrong one is not.
    let mut spm = common::libzmq_spm();
    spm[6] = 0;
    spm[7] = 0;
    assert!(PacketRepr::parse_verified(&spm).is_ok());
    spm[7] = 1;
    assert_eq!(PacketRepr::parse_verified(&spm), Err(Error::BadChecksum));
}

#[test]
fn short_buffers() {
    for len in 0..16 {
        let b = vec![0u8; len];
        assert_eq!(PacketRepr::parse(&b), Err(Error::Truncated("header")));
        assert_eq!(
            PacketRepr::parse_verified(&b),
            Err(Error::Truncated("header"))
        );
        assert!(pgm::wire::Packet::new_checked(&b[..]).is_err());
        assert!(Options::parse(&b).is_err());
        let _ = checksum::verify(&b);
        let _ = checksum::compute(&b);
    }
}

#[test]
fn unknown_type_emits_no_options_and_no_present_bit() {
    // An unknown type's options are opaque payload: emission must not claim OPT_PRESENT or
    // count option bytes it does not write.
    let repr = PacketRepr {
        sport: 1,
        dport: 2,
        gsi: pgm::wire::Gsi::default(),
        parity: false,
        var_pktlen: false,
        body: Body::Unknown(0x42),
        options: Options {
            fin: true,
            ..Options::default()
        },
        payload: b"opaque",
    };
    let b = repr.to_vec();
    assert_eq!(b.len(), repr.buffer_len());
    assert_eq!(b[5], 0);
    let p = PacketRepr::parse_verified(&b).unwrap();
    assert_eq!(p.payload, b"opaque");
}

#[test]
fn option_header_flag_byte_is_ignored() {
    // OpenPGM never initialises the third option-header byte (reserved|F|OPX): captured NAKs
    // carry `82 08 01 00`. Whatever it holds, a known option parses the same.
    let clean = block(&hex("82 08 00 00 00000044"));
    let (want, _) = Options::parse(&clean).unwrap();
    for b in [0x01u8, 0x02, 0x03, 0x08, 0xff] {
        let mut t = hex("82 08 00 00 00000044");
        t[2] = b;
        assert_eq!(Options::parse(&block(&t)).unwrap().0, want, "{b:#x}");
        let p = raw(
            NAK,
            flags::OPT_PRESENT | flags::OPT_NETWORK,
            &nak_body(),
            &block(&t),
            &[],
            None,
        );
        assert_eq!(parse_all(&p).unwrap().options, want);
    }
}
