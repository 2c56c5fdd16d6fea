//! Reed-Solomon throughput (`pgm::fec`).
//!
//! `cargo bench -p pgm --bench fec` reports bytes of *data* per second (criterion
//! `Throughput::Bytes` = k × 1400) for encoding h parity packets of a group of k 1400-byte
//! TSDUs, and for decoding a group that lost h data packets from its h parity packets.
#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]
#![allow(clippy::unwrap_used, reason = "bench code")]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pgm::fec::{decode_group, encode_parity, ParityRef, ReedSolomon};

const TSDU: usize = 1400;

fn group(k: usize) -> Vec<Vec<u8>> {
    (0..k)
        .map(|p| {
            (0..TSDU)
                .map(|i| (i.wrapping_mul(131) ^ p.wrapping_mul(7)) as u8)
                .collect()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    for (k, h) in [(16usize, 4usize), (64, 8), (128, 8)] {
        let rs = ReedSolomon::new(k).unwrap();
        let data = group(k);
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut g = c.benchmark_group(format!("fec_k{k}_h{h}"));
        g.throughput(Throughput::Bytes((k * TSDU) as u64));
        g.bench_function("encode", |b| {
            b.iter(|| {
                for i in 0..h {
                    black_box(encode_parity(&rs, black_box(&refs), i).unwrap());
                }
            });
        });
        let parity: Vec<_> = (0..h)
            .map(|i| encode_parity(&rs, &refs, i).unwrap())
            .collect();
        let received: Vec<Option<&[u8]>> = (0..k).map(|i| (i >= h).then_some(refs[i])).collect();
        let prefs: Vec<ParityRef<'_>> = parity
            .iter()
            .enumerate()
            .map(|(i, p)| ParityRef {
                index: i,
                bytes: &p.bytes,
                var_pktlen: p.var_pktlen,
            })
            .collect();
        g.bench_function("decode", |b| {
            b.iter(|| black_box(decode_group(&rs, black_box(&received), &prefs).unwrap()));
        });
        g.finish();
    }
    c.bench_function("fec_new_k128", |b| {
        b.iter(|| ReedSolomon::new(black_box(128)).unwrap());
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
