//! Encoder → (lossy, late-joined) APDU stream → decoder, against an exact model.
//!
//! The model: a message is delivered iff it passes the filter and every APDU holding any of its
//! bytes was delivered. That is what libzmq's join rule gives: after a loss (or on a late join)
//! the decoder waits for an APDU with an offset, and an APDU in which a message starts always
//! has one, pointing at or before that message. A gap event is expected once per loss run, in
//! stream order.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::time::Duration;

use bytes::Bytes;
use pgm::{
    time::Instant,
    wire::{Gsi, Tsi},
};
use proptest::prelude::*;
use pubsub::{
    decoder::{Decoder, DecoderConfig, RecvEvent},
    encoder::{Encoder, EncoderConfig},
    frame::encode_message,
};

const TSI: Tsi = Tsi::new(Gsi([1, 2, 3, 4, 5, 6]), 7);

type Msg = Vec<Vec<u8>>;

#[derive(Debug, PartialEq)]
enum Ev {
    Msg(Msg),
    Gap(u32),
}

/// Encodes `msgs` (all pushed at once, then flushed) and returns the APDUs together with, for
/// each message, the index of the first and last APDU holding its bytes.
fn encode(
    max_payload: usize,
    msgs: &[Msg],
    flush_after: &[bool],
) -> (Vec<Bytes>, Vec<(usize, usize)>) {
    let mut e = Encoder::new(EncoderConfig {
        max_payload,
        linger: Duration::from_secs(1),
    })
    .unwrap();
    let mut apdus = Vec::new();
    let mut spans = Vec::new();
    // Track stream positions to find which APDUs hold each message.
    let mut stream_pos = 0usize;
    let mut cuts = Vec::new(); // stream position at which each APDU ends
    let mut ranges = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        e.push(Instant::ZERO, m).unwrap();
        if flush_after[i % flush_after.len()] {
            e.flush();
        }
        let mut enc = Vec::new();
        encode_message(m, &mut enc);
        ranges.push((stream_pos, stream_pos + enc.len()));
        stream_pos += enc.len();
    }
    e.flush();
    let mut end = 0;
    while let Some(a) = e.poll_apdu() {
        end += a.len() - 2;
        cuts.push(end);
        apdus.push(a);
    }
    assert_eq!(end, stream_pos);
    for (start, stop) in ranges {
        let first = cuts.iter().position(|&c| c > start).unwrap();
        let last = cuts.iter().position(|&c| c >= stop).unwrap();
        spans.push((first, last));
    }
    (apdus, spans)
}

fn matches(prefixes: &[Vec<u8>], m: &Msg) -> bool {
    prefixes.iter().any(|p| m[0].starts_with(p))
}

/// Feeds APDUs `join..` except the `lost` ones (reported as loss runs) and collects events.
fn run(
    apdus: &[Bytes],
    lost: &[bool],
    join: usize,
    prefixes: &[Vec<u8>],
    max_message_size: usize,
) -> (Vec<Ev>, Decoder) {
    let mut d = Decoder::new(DecoderConfig { max_message_size });
    for p in prefixes {
        d.filter_mut().subscribe(p);
    }
    let mut out = Vec::new();
    let mut run_len = 0u32;
    for (i, a) in apdus.iter().enumerate().skip(join) {
        if lost[i] {
            run_len += 1;
            continue;
        }
        if run_len > 0 {
            d.handle_loss(TSI, run_len);
            run_len = 0;
        }
        d.handle_data(TSI, a);
        while let Some(ev) = d.poll_event() {
            out.push(match ev {
                RecvEvent::Message(m) => {
                    assert_eq!(m.tsi, TSI);
                    Ev::Msg(m.frames.iter().map(|f| f.to_vec()).collect())
                }
                RecvEvent::Gap { lost, .. } => Ev::Gap(lost),
                _ => unreachable!(),
            });
        }
    }
    if run_len > 0 {
        d.handle_loss(TSI, run_len);
        if let Some(RecvEvent::Gap { lost, .. }) = d.poll_event() {
            out.push(Ev::Gap(lost));
        }
    }
    (out, d)
}

/// The events the model predicts.
fn expected(
    msgs: &[Msg],
    spans: &[(usize, usize)],
    n_apdus: usize,
    lost: &[bool],
    join: usize,
    prefixes: &[Vec<u8>],
) -> Vec<Ev> {
    let mut out = Vec::new();
    let mut run_len = 0u32;
    for j in join..n_apdus {
        if lost[j] {
            run_len += 1;
            continue;
        }
        if run_len > 0 {
            out.push(Ev::Gap(run_len));
            run_len = 0;
        }
        for (m, &(first, last)) in msgs.iter().zip(spans) {
            if last == j
                && first >= join
                && (first..=last).all(|k| !lost[k])
                && matches(prefixes, m)
            {
                out.push(Ev::Msg(m.clone()));
            }
        }
    }
    if run_len > 0 {
        out.push(Ev::Gap(run_len));
    }
    out
}

fn topic() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c')], 0..4),
        1 => proptest::collection::vec(any::<u8>(), 0..300),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => proptest::collection::vec(any::<u8>(), 0..64),
        2 => proptest::collection::vec(any::<u8>(), 240..270),
        1 => proptest::collection::vec(any::<u8>(), 0..4000),
    ]
}

fn message() -> impl Strategy<Value = Msg> {
    (topic(), proptest::collection::vec(body(), 0..3)).prop_map(|(t, mut b)| {
        b.insert(0, t);
        b
    })
}

fn payload_size() -> impl Strategy<Value = usize> {
    prop_oneof![3..16usize, 16..200usize, 200..1500usize]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn lossless_round_trip(
        max_payload in payload_size(),
        msgs in proptest::collection::vec(message(), 0..40),
        flush_after in proptest::collection::vec(any::<bool>(), 1..8),
    ) {
        let (apdus, _) = encode(max_payload, &msgs, &flush_after);
        let lost = vec![false; apdus.len()];
        let (got, d) = run(&apdus, &lost, 0, &[vec![]], usize::MAX);
        let want: Vec<Ev> = msgs.into_iter().map(Ev::Msg).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(d.stats().decode_errors, 0);
    }

    #[test]
    fn random_loss_late_join_and_filter_match_the_model(
        max_payload in payload_size(),
        msgs in proptest::collection::vec(message(), 1..40),
        flush_after in proptest::collection::vec(any::<bool>(), 1..8),
        loss_rate in 0.0..0.5f64,
        loss_seed in proptest::collection::vec(0.0..1.0f64, 1..64),
        join_pct in 0..100usize,
        prefixes in proptest::collection::vec(topic(), 0..4),
    ) {
        let (apdus, spans) = encode(max_payload, &msgs, &flush_after);
        let lost: Vec<bool> = (0..apdus.len())
            .map(|i| loss_seed[(i * 7 + i / loss_seed.len()) % loss_seed.len()] < loss_rate)
            .collect();
        let join = apdus.len() * join_pct / 100;
        let (got, d) = run(&apdus, &lost, join, &prefixes, usize::MAX);
        let want = expected(&msgs, &spans, apdus.len(), &lost, join, &prefixes);
        prop_assert_eq!(got, want);
        prop_assert_eq!(d.stats().decode_errors, 0);
    }

    #[test]
    fn size_limit_drops_only_big_messages(
        max_payload in payload_size(),
        msgs in proptest::collection::vec(message(), 1..30),
        limit in 0..2000usize,
    ) {
        let (apdus, spans) = encode(max_payload, &msgs, &[false]);
        let lost = vec![false; apdus.len()];
        let (got, _) = run(&apdus, &lost, 0, &[vec![]], limit);
        // A message over the limit unjoins the stream: the messages sharing its APDUs after it
        // are lost too, and decoding resumes at the next APDU with an offset. So: every
        // delivered message is within the limit, exact, in order, and every message whose
        // APDUs hold no oversize byte is delivered.
        let size = |m: &Msg| m.iter().map(Vec::len).sum::<usize>();
        let mut next = 0;
        for ev in &got {
            let Ev::Msg(m) = ev else { panic!("gap without loss") };
            let at = next + msgs[next..].iter().position(|x| x == m).expect("delivered in order");
            prop_assert!(size(m) <= limit);
            next = at + 1;
        }
        let bad_apdus: Vec<(usize, usize)> = msgs
            .iter()
            .zip(&spans)
            .filter(|(m, _)| size(m) > limit)
            .map(|(_, &s)| s)
            .collect();
        for (m, &(first, last)) in msgs.iter().zip(&spans) {
            let clean = bad_apdus.iter().all(|&(bf, bl)| last < bf || first > bl);
            if clean {
                prop_assert!(got.contains(&Ev::Msg(m.clone())), "clean message dropped");
            }
        }
    }

    #[test]
    fn hostile_apdus_never_panic(
        apdus in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..40),
        losses in proptest::collection::vec(any::<bool>(), 40),
    ) {
        let mut d = Decoder::new(DecoderConfig { max_message_size: 1 << 20 });
        d.filter_mut().subscribe(b"");
        d.filter_mut().subscribe([0u8]);
        for (i, a) in apdus.into_iter().enumerate() {
            if losses[i] {
                d.handle_loss(TSI, 1);
            }
            d.handle_data(TSI, &Bytes::from(a));
            while let Some(ev) = d.poll_event() {
                if let RecvEvent::Message(m) = ev {
                    prop_assert!(!m.frames.is_empty());
                    prop_assert!(m.frames.iter().map(Bytes::len).sum::<usize>() <= 1 << 20);
                }
            }
        }
    }
}

#[test]
fn hostile_hand_picked() {
    let mut d = Decoder::new(DecoderConfig::default());
    d.filter_mut().subscribe(b"");
    let cases: &[&[u8]] = &[
        b"",
        b"\x00",
        b"\x00\x00",
        b"\xff\xfe",
        b"\x00\x05\x01",
        b"\x00\x00\x00",
        b"\x00\x00\x00\x00",
        b"\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
        b"\x00\x00\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        b"\x00\x00\xff\x80\x00\x00\x00\x00\x00\x00\x00\x00",
        b"\x00\x00\xff\x00\x00\x00\x00\x01\x00\x00\x01\x01xyz",
    ];
    for c in cases {
        // Unjoin before each case so its offset is looked at.
        d.handle_loss(TSI, 1);
        d.handle_data(TSI, &Bytes::from_static(c));
        d.handle_data(TSI, &Bytes::from_static(b"\xff\xff\x02"));
    }
    // Joined stretches may legitimately decode the filler bytes as frames; nothing panics.
    while let Some(ev) = d.poll_event() {
        if let RecvEvent::Message(m) = ev {
            assert!(!m.frames.is_empty());
        }
    }
    assert!(d.stats().decode_errors >= 4);
    assert!(d.stats().bad_offsets >= 2);
    // After all that, a clean message start decodes.
    d.handle_loss(TSI, 1);
    d.handle_data(TSI, &Bytes::from_static(b"\x00\x00\x02\x00k"));
    assert_eq!(d.poll_event(), Some(RecvEvent::Gap { tsi: TSI, lost: 1 }));
    assert!(
        matches!(d.poll_event(), Some(RecvEvent::Message(m)) if m.frames[..] == [Bytes::from_static(b"k")])
    );
}
