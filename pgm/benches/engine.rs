//! Engine hot paths: a source turning APDUs into ODATA, a receiver turning in-order ODATA into
//! `Event::Data`.

#![allow(missing_docs, reason = "criterion_group! generates undocumented items")]

use std::{
    hint::black_box,
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use pgm::{
    time::Instant,
    wire::{Gsi, Tsi},
    Event, Receiver, ReceiverConfig, Source, SourceConfig,
};

const GROUP: IpAddr = IpAddr::V4(Ipv4Addr::new(239, 1, 1, 1));
const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const TSI: Tsi = Tsi {
    gsi: Gsi([1, 2, 3, 4, 5, 6]),
    sport: 4000,
};

fn source() -> Source {
    Source::new(SourceConfig::new(TSI, 7500, GROUP, SRC))
}

/// ODATA packets for `n` APDUs of `size` bytes, as a source emits them.
fn odata(n: usize, size: usize) -> Vec<Vec<u8>> {
    let mut s = source();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let now = Instant::ZERO;
    for _ in 0..3 {
        let _ = s.poll_transmit(now, &mut buf); // the initial SPMs
    }
    let apdu = vec![7u8; size];
    for _ in 0..n {
        s.send(now, &apdu).expect("send");
        while s.poll_transmit(now, &mut buf).is_some() {
            out.push(buf.clone());
        }
    }
    out
}

fn bench_source(c: &mut Criterion) {
    let mut g = c.benchmark_group("source send+poll_transmit");
    for size in [64usize, 1400] {
        g.throughput(Throughput::Elements(1));
        let apdu = vec![7u8; size];
        let mut s = source();
        let mut buf = Vec::with_capacity(1500);
        let mut now = Instant::ZERO;
        g.bench_function(format!("{size} B APDU"), |b| {
            b.iter(|| {
                now += Duration::from_micros(1);
                s.send(now, black_box(&apdu)).expect("send");
                while s.poll_transmit(now, &mut buf).is_some() {
                    black_box(&buf);
                }
            });
        });
    }
    g.finish();
}

fn bench_receiver(c: &mut Criterion) {
    let mut g = c.benchmark_group("receiver odata->data");
    for size in [64usize, 1400] {
        let packets = odata(10_000, size);
        g.throughput(Throughput::Elements(packets.len() as u64));
        g.bench_function(format!("{size} B in order"), |b| {
            b.iter_batched(
                || Receiver::new(ReceiverConfig::new(7500)),
                |mut r| {
                    let now = Instant::from_millis(1);
                    for p in &packets {
                        r.handle_packet(now, SRC, GROUP, p);
                        while let Some(ev) = r.poll_event() {
                            if let Event::Data { apdu, .. } = ev {
                                black_box(apdu);
                            }
                        }
                    }
                    r
                },
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

criterion_group!(benches, bench_source, bench_receiver);
criterion_main!(benches);
