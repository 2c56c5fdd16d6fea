//! The checks behind the `pubsub_decoder` fuzz target (the subscriber's APDU stream decoder,
//! `pubsub::decoder`, fed by `pubsub::encoder`), shared with the corpus replay test
//! (`pubsub/tests/fuzz_corpus.rs`, which includes this file by path).
//!
//! The first byte picks one of three programs:
//!
//! - **Round trip**: messages built from the input (topics over a small alphabet, bodies of up
//!   to 5 000 bytes, 1–4 frames) go through an `Encoder` (fuzz-chosen `max_payload`, linger,
//!   flushes and clock) and, separately, through a hand-made cutting of the same v1 stream into
//!   APDUs at fuzz-chosen points with the offsets computed independently. Every APDU of the
//!   encoder is 3..=max_payload bytes and its offset is exactly the first message start in it.
//!   Both decoders deliver exactly the messages whose topic the subscriptions match, in order
//!   (when every such message fits `max_message_size`; otherwise an in-order subsequence, each
//!   within the limit), and hold nothing at the end.
//! - **Hostile APDUs**: raw or repeated-pattern APDUs from the input for three publishers,
//!   interleaved with loss and peer-gone notices, subscription changes and event drains. Every
//!   delivered message has a topic frame, fits the size limit and (with the subscriptions
//!   unchanged) matches them; the counters agree with what was fed and drained.
//! - **Split stream**: raw stream bytes decoded as one APDU, and cut into APDUs at fuzz-chosen
//!   points (the first with offset 0, the rest with no offset), give the same messages and the
//!   same counts of deliveries, filtered messages and decode errors.
//!
//! In every program, after every APDU, the decoder's buffered bytes stay within
//! `max(max_message_size, longest prefix) + 9` per publisher, whatever the length fields say,
//! and it holds at most `MAX_FRAMES` frames per publisher, whatever runs of empty frames
//! arrive.

use std::time::Duration;

use bytes::Bytes;
use pgm::{
    time::Instant,
    wire::{Gsi, Tsi},
};
use pubsub::{
    decoder::{Decoder, DecoderConfig, RecvEvent, MAX_FRAMES},
    encoder::{Encoder, EncoderConfig, MIN_PAYLOAD, NO_OFFSET, OFFSET_LEN},
    frame::encode_message,
};

use crate::input::Input;

/// Most steps (messages, APDUs) one program runs.
const MAX_STEPS: usize = 400;
/// Most stream bytes a round trip encodes (one APDU may still take it past this).
const MAX_STREAM: usize = 1 << 13;
/// Most APDU bytes a hostile program feeds: enough to reach `MAX_FRAMES` empty frames.
const MAX_FED: usize = 1 << 18;

type Msg = Vec<Vec<u8>>;

fn tsi(k: u8) -> Tsi {
    Tsi::new(Gsi([0xb7, 0xc6, 0xd1, 0xbc, 0x03, k]), 0xf3c5)
}

/// Runs the program `data`; panics (a fuzz finding) when an invariant breaks.
pub(crate) fn check(data: &[u8]) {
    let mut inp = Input::new(data);
    match inp.u8() % 3 {
        0 => round_trip(&mut inp),
        1 => hostile(&mut inp),
        _ => split_stream(&mut inp),
    }
}

/// A topic or prefix over a four-letter alphabet (so they overlap), sometimes raw bytes.
fn topic(inp: &mut Input<'_>) -> Vec<u8> {
    let b = inp.u8();
    if b & 0xe0 == 0xe0 {
        inp.blob(300).to_vec()
    } else {
        (0..b % 5)
            .map(|_| inp.pick(&[b'a', b'b', b'c', 0]))
            .collect()
    }
}

/// A fuzz-chosen size limit and subscriptions (the empty prefix when none).
fn config(inp: &mut Input<'_>) -> (usize, Vec<Vec<u8>>) {
    let limit = inp.pick(&[usize::MAX, 0, 1, 5, 16, 300, 4096, 70_000]);
    let n = inp.u8() % 4;
    let prefixes = if n == 0 {
        vec![Vec::new()]
    } else {
        (0..n).map(|_| topic(inp)).collect()
    };
    (limit, prefixes)
}

fn decoder(limit: usize, prefixes: &[Vec<u8>]) -> Decoder {
    let mut d = Decoder::new(DecoderConfig {
        max_message_size: limit,
    });
    for p in prefixes {
        d.filter_mut().subscribe(p);
    }
    d
}

fn longest(prefixes: &[Vec<u8>]) -> usize {
    prefixes.iter().map(Vec::len).max().unwrap_or(0)
}

fn matches(prefixes: &[Vec<u8>], topic: &[u8]) -> bool {
    prefixes.iter().any(|p| topic.starts_with(p))
}

fn size(m: &Msg) -> usize {
    m.iter().map(Vec::len).sum()
}

/// The memory bound: nothing a stream holds for a message in progress exceeds the size limit
/// (or, while the filter is still undecided, the longest prefix) plus a cut header.
fn check_bounds(d: &Decoder, limit: usize, longest_prefix: usize) {
    let per_peer = limit.max(longest_prefix).saturating_add(9);
    assert!(
        d.buffered_bytes() <= per_peer.saturating_mul(d.peers()),
        "decoder holds {} bytes for {} peers (limit {limit}, longest prefix {longest_prefix})",
        d.buffered_bytes(),
        d.peers()
    );
    assert!(
        d.buffered_frames() <= MAX_FRAMES * d.peers(),
        "decoder holds {} frames for {} peers",
        d.buffered_frames(),
        d.peers()
    );
}

/// Drains the decoder's messages (gaps are returned as `None`; the end of a publisher is not
/// a message and is left out).
fn drain(d: &mut Decoder) -> Vec<Option<Msg>> {
    std::iter::from_fn(|| d.poll_event())
        .filter_map(|e| match e {
            RecvEvent::Message(m) => {
                assert!(!m.frames.is_empty(), "a message without a topic frame");
                Some(Some(m.frames.iter().map(|f| f.to_vec()).collect()))
            }
            RecvEvent::Gap { .. } => Some(None),
            RecvEvent::PublisherGone { .. } => None,
            _ => unreachable!("unknown event"),
        })
        .collect()
}

/// A message from the input: a topic and 0–3 more frames of up to 5 000 bytes.
fn message(inp: &mut Input<'_>) -> Msg {
    let mut m = vec![topic(inp)];
    for _ in 0..inp.u8() % 4 {
        let len = match inp.u8() % 4 {
            0 => usize::from(inp.u8() % 8),
            1 => usize::from(inp.u8()),
            2 => 250 + usize::from(inp.u8() % 10),
            _ => usize::from(inp.u16()) % 5000,
        };
        let seed = inp.u8();
        m.push((0..len).map(|i| seed.wrapping_add(i as u8)).collect());
    }
    m
}

/// One decoder under test with what it delivered.
struct Under {
    d: Decoder,
    got: Vec<Option<Msg>>,
    limit: usize,
    longest: usize,
}

impl Under {
    fn new(limit: usize, prefixes: &[Vec<u8>]) -> Self {
        Under {
            d: decoder(limit, prefixes),
            got: Vec::new(),
            limit,
            longest: longest(prefixes),
        }
    }

    fn feed(&mut self, apdu: &Bytes) {
        self.d.handle_data(tsi(1), apdu);
        check_bounds(&self.d, self.limit, self.longest);
        self.got.extend(drain(&mut self.d));
    }

    /// After the whole stream: exactly `want` (or, with an oversize message among them, an
    /// in-order subsequence within the limit), and nothing held.
    fn verify(&self, name: &str, want: &[Option<Msg>]) {
        let d = &self.d;
        assert_eq!(
            d.buffered_bytes(),
            0,
            "{name}: bytes held after the last message"
        );
        assert_eq!(
            d.buffered_frames(),
            0,
            "{name}: frames held after the last message"
        );
        if want.iter().flatten().all(|m| size(m) <= self.limit) {
            assert_eq!(self.got, want, "{name}: delivered messages");
            assert_eq!(d.stats().decode_errors, 0, "{name}: decode errors");
            return;
        }
        // An oversize message unjoins the stream and takes neighbours with it.
        let mut rest = want.iter();
        for m in &self.got {
            let m = m.as_ref().expect("no gap without loss");
            assert!(
                size(m) <= self.limit,
                "{name}: message over the limit delivered"
            );
            assert!(
                rest.any(|w| w.as_ref() == Some(m)),
                "{name}: message not in order or not sent: {m:?}"
            );
        }
    }
}

fn round_trip(inp: &mut Input<'_>) {
    let max_payload = inp.pick(&[
        MIN_PAYLOAD,
        4,
        5,
        9,
        12,
        17,
        64,
        255,
        256,
        1428,
        9000,
        65535,
    ]);
    let linger = inp.pick(&[0, 500, 1_000_000]);
    let (limit, prefixes) = config(inp);
    let mut by_enc = Under::new(limit, &prefixes);
    let mut by_hand = Under::new(limit, &prefixes);
    // How the stream is cut by hand later: APDU sizes from a generator seeded here.
    let mut cutter = Cutter {
        style: inp.u8() % 4,
        state: inp.u32() | 1,
    };
    let mut enc = Encoder::new(EncoderConfig {
        max_payload,
        linger: Duration::from_micros(linger),
    })
    .unwrap();
    let mut now = Instant::from_millis(1);
    let mut msgs: Vec<Msg> = Vec::new();
    let mut starts = Vec::new();
    let mut stream = Vec::new();
    // Stream position where the encoder's APDUs so far end.
    let mut enc_end = 0;
    let mut steps = 0;
    loop {
        let more = !inp.is_empty() && steps < MAX_STEPS && stream.len() < MAX_STREAM;
        steps += 1;
        match inp.u8() % 8 {
            _ if !more => enc.flush(),
            0..=4 => {
                let m = message(inp);
                starts.push(stream.len());
                encode_message(&m, &mut stream);
                enc.push(now, &m).unwrap();
                msgs.push(m);
            }
            5 => enc.flush(),
            6 => {
                now += Duration::from_micros(u64::from(inp.u16()) * 10);
                enc.handle_timeout(now);
            }
            _ => {}
        }
        while let Some(a) = enc.poll_apdu() {
            enc_end = check_apdu(&a, max_payload, &starts, &stream, enc_end);
            by_enc.feed(&a);
        }
        if !more {
            break;
        }
    }
    assert_eq!(
        enc_end,
        stream.len(),
        "the encoder's APDUs carry the whole stream"
    );

    // The same stream cut by hand.
    let mut pos = 0;
    while pos < stream.len() {
        let end = (pos + cutter.next()).min(stream.len());
        let offset = starts
            .iter()
            .find(|&&s| s >= pos && s < end)
            .map_or(NO_OFFSET, |&s| (s - pos) as u16);
        let mut a = offset.to_be_bytes().to_vec();
        a.extend_from_slice(&stream[pos..end]);
        by_hand.feed(&Bytes::from(a));
        pos = end;
    }

    let want: Vec<Option<Msg>> = msgs
        .into_iter()
        .filter(|m| matches(&prefixes, &m[0]))
        .map(Some)
        .collect();
    by_enc.verify("encoder", &want);
    by_hand.verify("hand cut", &want);
}

/// APDU sizes for the hand-made cutting: 1–4 bytes, up to 256, up to 64 KiB, or a mix.
struct Cutter {
    style: u8,
    state: u32,
}

impl Cutter {
    fn next(&mut self) -> usize {
        // xorshift32
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.state = x;
        let style = if self.style == 3 {
            x as u8 % 3
        } else {
            self.style
        };
        1 + match style {
            0 => x as usize % 4,
            1 => x as usize % 256,
            _ => x as usize % 65_535,
        }
    }
}

/// Checks one encoder APDU against the stream; returns the stream position where it ends.
fn check_apdu(a: &[u8], max_payload: usize, starts: &[usize], stream: &[u8], base: usize) -> usize {
    assert!(
        a.len() >= MIN_PAYLOAD && a.len() <= max_payload,
        "APDU of {} bytes (max_payload {max_payload})",
        a.len()
    );
    let end = base + a.len() - OFFSET_LEN;
    assert_eq!(
        &a[OFFSET_LEN..],
        &stream[base..end],
        "APDU bytes are the stream"
    );
    let offset = u16::from_be_bytes([a[0], a[1]]);
    let first = starts
        .iter()
        .find(|&&s| s >= base && s < end)
        .map_or(NO_OFFSET, |&s| (s - base) as u16);
    assert_eq!(offset, first, "offset of the first message start");
    end
}

fn hostile(inp: &mut Input<'_>) {
    let (limit, mut prefixes) = config(inp);
    let mut d = decoder(limit, &prefixes);
    let mut longest = longest(&prefixes);
    let mut filter_changed = false;
    let (mut apdus, mut gaps, mut lost, mut delivered) = (0u64, 0u64, 0u64, 0u64);
    let mut fed = 0;
    let mut steps = 0;
    while !inp.is_empty() && steps < MAX_STEPS && fed < MAX_FED {
        steps += 1;
        let t = tsi(inp.u8() % 3);
        match inp.u8() % 10 {
            0..=3 => {
                let a = Bytes::copy_from_slice(inp.blob(255));
                d.handle_data(t, &a);
                fed += a.len();
                apdus += 1;
            }
            4 | 5 => {
                // Offset (0, none, or any), then a pattern repeated to up to 64 KiB.
                let offset = match inp.u8() % 3 {
                    0 => 0,
                    1 => NO_OFFSET,
                    _ => inp.u16(),
                };
                let pattern = inp.blob(16);
                let len = usize::from(inp.u16());
                let mut a = offset.to_be_bytes().to_vec();
                if !pattern.is_empty() {
                    a.extend(pattern.iter().cycle().take(len));
                }
                fed += a.len();
                d.handle_data(t, &Bytes::from(a));
                apdus += 1;
            }
            6 => {
                let n = inp.u32();
                d.handle_loss(t, n);
                gaps += 1;
                lost += u64::from(n);
            }
            7 => d.handle_peer_gone(t),
            8 => {
                let p = topic(inp);
                if inp.bool() {
                    d.filter_mut().subscribe(&p);
                    longest = longest.max(p.len());
                    prefixes.push(p);
                } else {
                    d.filter_mut().unsubscribe(&p);
                }
                filter_changed = true;
            }
            _ => {
                for m in drain(&mut d).into_iter().flatten() {
                    delivered += 1;
                    assert!(size(&m) <= limit, "message over the limit delivered");
                    if !filter_changed {
                        assert!(matches(&prefixes, &m[0]), "unsubscribed topic {:?}", m[0]);
                    }
                }
            }
        }
        check_bounds(&d, limit, longest);
    }
    let pending = d.pending() as u64;
    let s = d.stats();
    assert_eq!(s.apdus, apdus, "apdus");
    assert_eq!((s.gaps, s.lost_sqns), (gaps, lost), "gaps");
    assert!(
        s.received >= delivered && s.received <= delivered + pending,
        "received {} delivered {delivered} pending {pending}",
        s.received
    );
}

fn split_stream(inp: &mut Input<'_>) {
    let (limit, prefixes) = config(inp);
    let longest = longest(&prefixes);
    let ncuts = usize::from(inp.u8() % 16);
    let mut cuts: Vec<usize> = (0..ncuts).map(|_| usize::from(inp.u16())).collect();
    let stream = inp.rest();
    for c in &mut cuts {
        *c %= stream.len() + 1;
    }
    cuts.sort_unstable();
    cuts.push(stream.len());
    let t = tsi(0);

    let mut whole = decoder(limit, &prefixes);
    let mut a = vec![0, 0];
    a.extend_from_slice(stream);
    whole.handle_data(t, &Bytes::from(a));
    check_bounds(&whole, limit, longest);

    let mut split = decoder(limit, &prefixes);
    let mut pos = 0;
    for (i, &c) in cuts.iter().enumerate() {
        let mut a = if i == 0 { vec![0, 0] } else { vec![0xff, 0xff] };
        a.extend_from_slice(&stream[pos..c]);
        split.handle_data(t, &Bytes::from(a));
        check_bounds(&split, limit, longest);
        pos = c;
    }
    let (w, s) = (drain(&mut whole), drain(&mut split));
    assert_eq!(w, s, "one APDU and the same stream cut at {cuts:?}");
    for m in w.iter().flatten() {
        assert!(size(m) <= limit, "message over the limit delivered");
        assert!(matches(&prefixes, &m[0]), "unsubscribed topic {:?}", m[0]);
    }
    let (ws, ss) = (whole.stats(), split.stats());
    assert_eq!(
        (ws.received, ws.filtered_out, ws.decode_errors),
        (ss.received, ss.filtered_out, ss.decode_errors),
        "counters of one APDU and of the cut stream"
    );
    // What is held for an unfinished message is the same whichever way it arrived.
    assert_eq!(whole.buffered_bytes(), split.buffered_bytes(), "bytes held");
}
