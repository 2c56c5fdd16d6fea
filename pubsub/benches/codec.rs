//! Framing and filtering hot paths: 64-byte messages through encoder and decoder (single core,
//! no IO), and topic matching against 1000 prefixes.

#![allow(missing_docs, reason = "criterion_group! generates undocumented items")]

use std::{hint::black_box, time::Duration};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pgm::{
    time::Instant,
    wire::{Gsi, Tsi},
};
use pubsub::{Decoder, DecoderConfig, Encoder, EncoderConfig, Filter, RecvEvent};

const TSI: Tsi = Tsi::new(Gsi([1, 2, 3, 4, 5, 6]), 4000);
const N: usize = 10_000;

/// Topic `md.NNNN` (7 bytes) for instrument `i`.
fn topic(i: usize) -> [u8; 7] {
    let mut t = *b"md.0000";
    let mut n = i;
    for b in t[3..].iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
    t
}

/// 64 bytes of frame bodies: a 7-byte topic and a 57-byte payload.
fn messages() -> Vec<[Vec<u8>; 2]> {
    (0..N)
        .map(|i| [topic(i % 2000).to_vec(), vec![i as u8; 57]])
        .collect()
}

fn encoder() -> Encoder {
    Encoder::new(EncoderConfig {
        max_payload: 1428,
        linger: Duration::from_millis(1),
    })
    .expect("valid config")
}

fn encode(msgs: &[[Vec<u8>; 2]]) -> Vec<Bytes> {
    let mut e = encoder();
    for m in msgs {
        e.push(Instant::ZERO, m).expect("non-empty");
    }
    e.flush();
    std::iter::from_fn(|| e.poll_apdu()).collect()
}

fn decode(d: &mut Decoder, apdus: &[Bytes]) -> usize {
    let mut n = 0;
    for a in apdus {
        d.handle_data(TSI, a);
        while let Some(ev) = d.poll_event() {
            if let RecvEvent::Message(m) = ev {
                n += m.frames.len();
            }
        }
    }
    n
}

fn subscribed(prefixes: impl IntoIterator<Item = Vec<u8>>) -> Decoder {
    let mut d = Decoder::new(DecoderConfig::default());
    for p in prefixes {
        d.filter_mut().subscribe(p);
    }
    d
}

fn codec(c: &mut Criterion) {
    let msgs = messages();
    let apdus = encode(&msgs);
    let mut g = c.benchmark_group("codec_64B");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("encode", |b| b.iter(|| black_box(encode(&msgs))));
    // One decoder across iterations: the APDUs end on a message boundary, so feeding them
    // again continues the stream cleanly (and the setup stays out of the timing).
    let mut d = subscribed([vec![]]);
    g.bench_function("decode_all", |b| {
        b.iter(|| black_box(decode(&mut d, &apdus)));
    });
    let mut d = subscribed([vec![]]);
    g.bench_function("encode_decode", |b| {
        b.iter(|| black_box(decode(&mut d, &encode(&msgs))));
    });
    assert_eq!(d.stats().decode_errors, 0);
    // 1000 of the 2000 instruments subscribed: half the messages are skipped.
    let mut d = subscribed((0..2000).step_by(2).map(|i| topic(i).to_vec()));
    g.bench_function("decode_1000_prefixes", |b| {
        b.iter(|| black_box(decode(&mut d, &apdus)));
    });
    assert_eq!(d.stats().decode_errors, 0);
    g.finish();
}

fn filter(c: &mut Criterion) {
    let mut f = Filter::new();
    for i in (0..2000).step_by(2) {
        f.subscribe(topic(i));
    }
    assert_eq!(f.len(), 1000);
    // Half hit, half miss; topics longer than the prefixes, as with `md.NNNN.trade`.
    let topics: Vec<Vec<u8>> = (0..1000)
        .map(|i| {
            let mut t = topic((i * 7) % 2000).to_vec();
            t.extend_from_slice(b".trade");
            t
        })
        .collect();
    let mut g = c.benchmark_group("filter_1000_prefixes");
    g.throughput(Throughput::Elements(topics.len() as u64));
    g.bench_function("trie", |b| {
        b.iter(|| topics.iter().filter(|t| f.matches(black_box(t))).count());
    });
    let list: Vec<Vec<u8>> = f.subscriptions().map(|(p, _)| p.to_vec()).collect();
    g.bench_function("linear_scan_baseline", |b| {
        b.iter(|| {
            topics
                .iter()
                .filter(|t| list.iter().any(|p| black_box(t).starts_with(p)))
                .count()
        });
    });
    g.finish();
}

criterion_group!(benches, codec, filter);
criterion_main!(benches);
