//! Byte-exact checks against the libzmq 4.3.4 ODATA captured in docs/wire-compatibility.md §1.
//!
//! The notes print the three packets with their repetitive bodies elided (`42…`, `4848…`,
//! `<491 B>`). The frames are fully determined by what is printed: sqn 0 carries `hello`,
//! `topic`+`payload` (MORE on `topic`), a 300-byte frame of 0x42 (size 0x12d), then the start
//! of a message whose long header and 1083 bytes of 0x48 fill the packet; sqn 1 is 1426 more
//! bytes of it (offset 0xFFFF); sqn 2 ends it with 491 bytes (3000 in all, offset 0x01eb) and
//! carries `tail`. [`captured_packets_verify`] proves the reconstruction: with these payloads
//! the captured headers' checksums (d3d5, 0e93, 1e89) verify.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use bytes::Bytes;
use pgm::{
    time::Instant,
    wire::{Body, Gsi, PacketRepr, SeqNo, Tsi},
};
use pubsub::{
    decoder::{Decoder, DecoderConfig, RecvEvent},
    encoder::{Encoder, EncoderConfig},
};

const TSI: Tsi = Tsi::new(Gsi([0xb7, 0xc6, 0xd1, 0xbc, 0x03, 0x8a]), 0xf3c5);

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(char::is_ascii_hexdigit).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The messages libzmq sent, frame by frame.
fn messages() -> Vec<Vec<Vec<u8>>> {
    vec![
        vec![b"hello".to_vec()],
        vec![b"topic".to_vec(), b"payload".to_vec()],
        vec![vec![0x42; 300]],
        vec![vec![0x48; 3000]],
        vec![b"tail".to_vec()],
    ]
}

/// The three ODATA payloads (TSDUs), as captured.
fn payloads() -> [Vec<u8>; 3] {
    let mut p0 =
        hex("0000 06 00 68656c6c6f 06 01 746f706963 08 00 7061796c6f6164 ff 000000000000012d 00");
    p0.extend_from_slice(&[0x42; 300]);
    p0.extend_from_slice(&hex("ff 0000000000000bb9 00"));
    p0.resize(0x594, 0x48);
    let mut p1 = hex("ffff");
    p1.resize(0x594, 0x48);
    let mut p2 = hex("01eb");
    p2.resize(2 + 491, 0x48);
    p2.extend_from_slice(&hex("05 00 7461696c"));
    assert_eq!(p2.len(), 0x1f3);
    [p0, p1, p2]
}

/// The whole PGM packets: captured header and ODATA body, then the payload.
fn packets() -> Vec<Vec<u8>> {
    let hdrs = [
        "f3c5 15b3 04 00 d3d5 b7c6d1bc038a 0594 | 00000000 00000000",
        "f3c5 15b3 04 00 0e93 b7c6d1bc038a 0594 | 00000001 00000000",
        "f3c5 15b3 04 00 1e89 b7c6d1bc038a 01f3 | 00000002 00000000",
    ];
    hdrs.iter()
        .zip(payloads())
        .map(|(h, p)| {
            let mut v = hex(h);
            v.extend_from_slice(&p);
            v
        })
        .collect()
}

fn decode_all(d: &mut Decoder) -> Vec<RecvEvent> {
    std::iter::from_fn(|| d.poll_event()).collect()
}

fn frames_of(events: &[RecvEvent]) -> Vec<Vec<Vec<u8>>> {
    events
        .iter()
        .filter_map(|e| match e {
            RecvEvent::Message(m) => {
                assert_eq!(m.tsi, TSI);
                Some(m.frames.iter().map(|f| f.to_vec()).collect())
            }
            _ => None,
        })
        .collect()
}

fn subscriber(prefixes: &[&[u8]]) -> Decoder {
    let mut d = Decoder::new(DecoderConfig::default());
    for p in prefixes {
        d.filter_mut().subscribe(p);
    }
    d
}

#[test]
fn captured_packets_verify() {
    for (i, pkt) in packets().iter().enumerate() {
        let repr = PacketRepr::parse_verified(pkt).expect("checksum and lengths verify");
        assert_eq!(repr.tsi(), TSI);
        let Body::Odata(data) = repr.body else {
            panic!("not ODATA")
        };
        assert_eq!(data.sqn, SeqNo(i as u32));
        assert_eq!(repr.payload, &payloads()[i][..]);
    }
}

#[test]
fn encoder_reproduces_libzmq_payloads() {
    let mut e = Encoder::new(EncoderConfig {
        max_payload: 1428,
        linger: std::time::Duration::from_millis(1),
    })
    .unwrap();
    for m in messages() {
        e.push(Instant::ZERO, &m).unwrap();
    }
    e.flush();
    let got: Vec<Bytes> = std::iter::from_fn(|| e.poll_apdu()).collect();
    let want = payloads();
    assert_eq!(got.len(), 3);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(&g[..], &w[..]);
    }
}

#[test]
fn decoder_reads_libzmq_stream() {
    let mut d = subscriber(&[b""]);
    for p in payloads() {
        d.handle_data(TSI, &Bytes::from(p));
    }
    assert_eq!(frames_of(&decode_all(&mut d)), messages());
    let s = d.stats();
    assert_eq!((s.received, s.joins, s.decode_errors), (5, 1, 0));
}

#[test]
fn late_join_at_sqn_1_skips_to_offset_of_sqn_2() {
    let mut d = subscriber(&[b""]);
    let [_, p1, p2] = payloads();
    d.handle_data(TSI, &Bytes::from(p1));
    assert!(!d.is_joined(&TSI));
    d.handle_data(TSI, &Bytes::from(p2));
    assert_eq!(frames_of(&decode_all(&mut d)), [[b"tail".to_vec()]]);
    assert_eq!(d.stats().skipped_unjoined, 1);
}

#[test]
fn loss_of_sqn_1_drops_the_3000_byte_message_only() {
    let mut d = subscriber(&[b""]);
    let [p0, _, p2] = payloads();
    d.handle_data(TSI, &Bytes::from(p0));
    d.handle_loss(TSI, 1);
    d.handle_data(TSI, &Bytes::from(p2));
    let ev = decode_all(&mut d);
    assert_eq!(ev[3], RecvEvent::Gap { tsi: TSI, lost: 1 });
    let want: Vec<_> = messages()
        .into_iter()
        .filter(|m| m[0].len() != 3000)
        .collect();
    assert_eq!(frames_of(&ev), want);
}

#[test]
fn filter_on_captured_stream() {
    let mut d = subscriber(&[b"top", b"ta"]);
    for p in payloads() {
        d.handle_data(TSI, &Bytes::from(p));
    }
    assert_eq!(
        frames_of(&decode_all(&mut d)),
        [
            vec![b"topic".to_vec(), b"payload".to_vec()],
            vec![b"tail".to_vec()]
        ]
    );
    assert_eq!(d.stats().filtered_out, 3);
}
