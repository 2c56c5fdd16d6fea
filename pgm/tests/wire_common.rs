//! Byte fixtures shared by the `wire_*` tests (included with `#[path]`; also built on its own as
//! a test crate, where it checks that every fixture carries a good checksum).
//!
//! Two kinds of fixtures:
//! - **Captured**: the libzmq 4.3.4 / OpenPGM 5.3.128 packets of docs/wire-compatibility.md §1. The notes
//!   elide long payloads ("4848…"); they are rebuilt here from the libzmq v1 framing they carry
//!   (a 3000-byte 'H' message after "hello"/"topic"/"payload" and a 300-byte 'B' message), and
//!   the captured checksums confirm the reconstruction byte for byte.
//! - **Synthetic**: one packet per type with options, written by hand from RFC 3208 §8–9, with
//!   checksums computed by an independent (Python, RFC 1071) implementation.
#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

/// Hex to bytes; spaces, newlines and `|` are ignored. Panics on bad hex (test data only).
pub fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'|')
        .collect();
    assert!(digits.len().is_multiple_of(2), "odd hex length");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn with_payload(head: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = hex(head);
    v.extend_from_slice(payload);
    v
}

// ---- Captured (docs/wire-compatibility.md §1) -------------------------------------------------------

/// libzmq epgm SPM, first of the 3 sent at connect: spm_sqn 0, trail 0, lead 0xffffffff.
pub fn libzmq_spm() -> Vec<u8> {
    hex("f3c5 15b3 00 00 ea76 b7c6d1bc038a 0000 | 00000000 00000000 ffffffff 0001 0000 7f000001")
}

/// libzmq SPM with OPT_FIN, sent on close.
pub fn libzmq_spm_fin() -> Vec<u8> {
    hex(
        "f3c5 15b3 00 01 5c5a b7c6d1bc038a 0000 | 00000009 00000000 00000002 0001 0000 7f000001 \
         | 00 04 0008 | 8e 04 00 00",
    )
}

/// libzmq ODATA sqn 0: offset 0, frames "hello"(more) "topic"(more) "payload", a 300-byte
/// message, and the start of a 3000-byte one.
pub fn libzmq_odata_0() -> Vec<u8> {
    let mut p = hex("0000 0600");
    p.extend_from_slice(b"hello");
    p.extend_from_slice(&hex("0601"));
    p.extend_from_slice(b"topic");
    p.extend_from_slice(&hex("0800"));
    p.extend_from_slice(b"payload");
    p.extend_from_slice(&hex("ff 000000000000012d 00"));
    p.extend_from_slice(&[b'B'; 300]);
    p.extend_from_slice(&hex("ff 0000000000000bb9 00"));
    p.extend_from_slice(&[b'H'; 1083]);
    with_payload(
        "f3c5 15b3 04 00 d3d5 b7c6d1bc038a 0594 | 00000000 00000000",
        &p,
    )
}

/// libzmq ODATA sqn 1: entirely inside the 3000-byte message (offset 0xffff).
pub fn libzmq_odata_1() -> Vec<u8> {
    let mut p = hex("ffff");
    p.extend_from_slice(&[b'H'; 1426]);
    with_payload(
        "f3c5 15b3 04 00 0e93 b7c6d1bc038a 0594 | 00000001 00000000",
        &p,
    )
}

/// libzmq ODATA sqn 2: the end of the 3000-byte message, then the message "tail".
pub fn libzmq_odata_2() -> Vec<u8> {
    let mut p = hex("01eb");
    p.extend_from_slice(&[b'H'; 491]);
    p.extend_from_slice(&hex("0500"));
    p.extend_from_slice(b"tail");
    with_payload(
        "f3c5 15b3 04 00 1e89 b7c6d1bc038a 01f3 | 00000002 00000000",
        &p,
    )
}

/// libzmq SUB → PUB unicast NAK for sqn 1.
pub fn libzmq_nak() -> Vec<u8> {
    hex("15b3 f5f4 08 00 ef83 b7c6d1bc038a 0000 | 00000001 0001 0000 7f000001 0001 0000 efc00101")
}

/// libzmq PUB multicast NCF answering it.
pub fn libzmq_ncf() -> Vec<u8> {
    hex("f5f4 15b3 0a 00 ed83 b7c6d1bc038a 0000 | 00000001 0001 0000 7f000001 0001 0000 efc00101")
}

/// OpenPGM receiver SPMR.
pub fn openpgm_spmr() -> Vec<u8> {
    hex("1d4c 4242 0c 00 8b65 010203040506 0000")
}

/// OpenPGM first fragment of a 3000-byte APDU (`pgm_send_skbv`).
pub fn openpgm_odata_fragment() -> Vec<u8> {
    with_payload(
        "76d7 1d4c 04 01 2262 65b48019cd34 0594 | 00000001 00000000 \
         | 00 04 0014 81 10 00 00 00000001 00000000 00000bb8",
        &[b'A'; 1428],
    )
}

/// OpenPGM 5.3 middle fragment of its *second* 4000-byte APDU (sqn 0x16, first_sqn 0x15), from
/// `pgm/tests/fixtures/openpgm.pcap` frame 30: the fragment offset is a running byte count
/// across APDUs (5436), beyond `apdu_len` (4000). Payload: bytes 0x91 + 7i.
pub fn openpgm_fragment_running_offset() -> Vec<u8> {
    let payload: Vec<u8> = (0..1436u32).map(|i| (0x91 + 7 * i) as u8).collect();
    with_payload(
        "d7fd 1d4c 04 01 2c38 7f3ac5761b8d 059c | 00000016 00000000 \
         | 00 04 0014 81 10 00 00 00000015 0000153c 00000fa0",
        &payload,
    )
}

// ---- Synthetic (GSI 0a0b0c0d0e0f, source port 1000, data-destination port 7500) ---------

/// SPM, path 192.168.1.10, with OPT_PARITY_PRM (flags 0x01: on-demand by RFC 3208, pro-active
/// by OpenPGM; TGS 16), OPT_CRQST (R) and OPT_FIN.
pub fn spm_parity_crqst_fin() -> Vec<u8> {
    hex(
        "03e8 1d4c 00 03 5190 0a0b0c0d0e0f 0000 | 00000005 0000000a 00000014 0001 0000 c0a8010a \
         | 00 04 0014 | 08 08 00 01 00000010 | 11 04 00 01 | 8e 04 00 00",
    )
}

/// SPM with an IPv6 path NLA 2001:db8::1.
pub fn spm_ipv6() -> Vec<u8> {
    hex(
        "03e8 1d4c 00 00 8ce7 0a0b0c0d0e0f 0000 | 00000001 00000000 ffffffff \
         0002 0000 20010db8000000000000000000000001",
    )
}

/// POLL sqn 7 round 2, general, path 10.0.0.1, back-off 250 ms.
pub fn poll() -> Vec<u8> {
    hex(
        "03e8 1d4c 01 00 4366 0a0b0c0d0e0f 0000 | 00000007 0002 0000 0001 0000 0a000001 \
         0003d090 deadbeef ff00ff00",
    )
}

/// POLL with an IPv6 path NLA, DLR sub-type.
pub fn poll_ipv6() -> Vec<u8> {
    hex(
        "03e8 1d4c 01 00 87d8 0a0b0c0d0e0f 0000 | 00000008 0000 0001 \
         0002 0000 20010db8000000000000000000000001 00000001 01020304 00000000",
    )
}

/// POLR answering POLL 7 round 2.
pub fn polr() -> Vec<u8> {
    hex("1d4c 03e8 02 00 b89b 0a0b0c0d0e0f 0000 | 00000007 0002 0000")
}

/// ODATA sqn 100 trail 90, "hello, world", with OPT_JOIN 95, OPT_SYN, OPT_PGMCC_DATA.
pub fn odata_join_syn_pgmcc() -> Vec<u8> {
    with_payload(
        "03e8 1d4c 04 01 e6a8 0a0b0c0d0e0f 000c | 00000064 0000005a \
         | 00 04 0020 | 03 08 00 00 0000005f | 0d 04 00 00 \
         | 92 10 00 00 0001e240 0001 0000 0a000002",
        b"hello, world",
    )
}

/// The payload of [`odata_fragment_middle`].
pub fn middle_fragment_payload() -> Vec<u8> {
    (0..1428u32).map(|i| (i * 7) as u8).collect()
}

/// ODATA sqn 2, the middle fragment (offset 1428) of a 3000-byte APDU starting at sqn 1.
pub fn odata_fragment_middle() -> Vec<u8> {
    with_payload(
        "03e8 1d4c 04 01 8278 0a0b0c0d0e0f 0594 | 00000002 00000000 \
         | 00 04 0014 | 81 10 00 00 00000001 00000594 00000bb8",
        &middle_fragment_payload(),
    )
}

/// RDATA sqn 3 trail 1, the last fragment (offset 2856, 144 'Z') of the same APDU.
pub fn rdata_fragment_last() -> Vec<u8> {
    with_payload(
        "03e8 1d4c 05 01 b39c 0a0b0c0d0e0f 0090 | 00000003 00000001 \
         | 00 04 0014 | 81 10 00 00 00000001 00000b28 00000bb8",
        &[b'Z'; 144],
    )
}

/// NAK sqn 10 (src 192.168.1.10, group 239.192.1.1) with OPT_NAK_LIST [11, 12, 15].
pub fn nak_list() -> Vec<u8> {
    hex(
        "1d4c 03e8 08 03 7dd2 0a0b0c0d0e0f 0000 | 0000000a 0001 0000 c0a8010a 0001 0000 efc00101 \
         | 00 04 0014 | 82 10 00 00 0000000b 0000000c 0000000f",
    )
}

/// NAK sqn 0x80000000 with IPv6 NLAs (src 2001:db8::1, group ff0e::101).
pub fn nak_ipv6() -> Vec<u8> {
    hex("1d4c 03e8 08 00 04d6 0a0b0c0d0e0f 0000 | 80000000 \
         0002 0000 20010db8000000000000000000000001 0002 0000 ff0e0000000000000000000000000101")
}

/// NNAK sqn 10 with OPT_NAK_LIST [13].
pub fn nnak_list() -> Vec<u8> {
    hex(
        "1d4c 03e8 09 03 7cfb 0a0b0c0d0e0f 0000 | 0000000a 0001 0000 c0a8010a 0001 0000 efc00101 \
         | 00 04 000c | 82 08 00 00 0000000d",
    )
}

/// NCF echoing [`nak_list`].
pub fn ncf_list() -> Vec<u8> {
    hex(
        "03e8 1d4c 0a 03 7bd2 0a0b0c0d0e0f 0000 | 0000000a 0001 0000 c0a8010a 0001 0000 efc00101 \
         | 00 04 0014 | 82 10 00 00 0000000b 0000000c 0000000f",
    )
}

/// SPMR (header only).
pub fn spmr() -> Vec<u8> {
    hex("1d4c 03e8 0c 00 aea4 0a0b0c0d0e0f 0000")
}

/// PGMCC ACK rx_max 200 bitmap 0xfffffffe with OPT_PGMCC_FEEDBACK (tstamp 123456, loss 0x1234,
/// 10.0.0.3).
pub fn ack_pgmcc_feedback() -> Vec<u8> {
    hex(
        "1d4c 03e8 0d 01 1b3a 0a0b0c0d0e0f 0000 | 000000c8 fffffffe \
         | 00 04 0014 | 93 10 00 00 0001e240 0001 1234 0a000003",
    )
}

/// Type 0x0f, which RFC 3208 does not define, with 10 bytes after the header.
pub fn unknown_type() -> Vec<u8> {
    hex("03e8 1d4c 0f 00 9286 0a0b0c0d0e0f 0000 | 0102030405060708090a")
}

/// Every fixture, by name (the names are also the seed-corpus file names).
pub fn all() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("libzmq_spm", libzmq_spm()),
        ("libzmq_spm_fin", libzmq_spm_fin()),
        ("libzmq_odata_0", libzmq_odata_0()),
        ("libzmq_odata_1", libzmq_odata_1()),
        ("libzmq_odata_2", libzmq_odata_2()),
        ("libzmq_nak", libzmq_nak()),
        ("libzmq_ncf", libzmq_ncf()),
        ("openpgm_spmr", openpgm_spmr()),
        ("openpgm_odata_fragment", openpgm_odata_fragment()),
        (
            "openpgm_fragment_running_offset",
            openpgm_fragment_running_offset(),
        ),
        ("spm_parity_crqst_fin", spm_parity_crqst_fin()),
        ("spm_ipv6", spm_ipv6()),
        ("poll", poll()),
        ("poll_ipv6", poll_ipv6()),
        ("polr", polr()),
        ("odata_join_syn_pgmcc", odata_join_syn_pgmcc()),
        ("odata_fragment_middle", odata_fragment_middle()),
        ("rdata_fragment_last", rdata_fragment_last()),
        ("nak_list", nak_list()),
        ("nak_ipv6", nak_ipv6()),
        ("nnak_list", nnak_list()),
        ("ncf_list", ncf_list()),
        ("spmr", spmr()),
        ("ack_pgmcc_feedback", ack_pgmcc_feedback()),
        ("unknown_type", unknown_type()),
    ]
}
