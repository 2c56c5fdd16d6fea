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
    wire::{Body, Data, Gsi, Options, PacketRepr, SeqNo, Spm, Tsi},
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

/// A downstream packet of session `tsi` (ODATA, or an SPM), as its source would send it.
fn downstream(tsi: Tsi, body: Body, payload: &[u8]) -> Vec<u8> {
    PacketRepr {
        sport: tsi.sport,
        dport: 7500,
        gsi: tsi.gsi,
        parity: false,
        var_pktlen: false,
        body,
        options: Options::default(),
        payload,
    }
    .to_vec()
}

/// A receiver that has heard one SPM and one ODATA from each of `idle` sessions (so each has a
/// window and an expiry timer, and no SPMR pending), plus an SPM from the busy session [`TSI`].
fn receiver_with_peers(idle: u16, now: Instant) -> Receiver {
    let mut r = Receiver::new(ReceiverConfig::new(7500));
    let spm = |tsi: Tsi| {
        let body = Body::Spm(Spm {
            spm_sqn: SeqNo(0),
            trail: SeqNo(0),
            lead: SeqNo(0),
            path: SRC,
        });
        downstream(tsi, body, &[])
    };
    for k in 0..idle {
        let tsi = Tsi {
            gsi: Gsi([9, 9, 9, 9, (k >> 8) as u8, k as u8]),
            sport: 5000 + k,
        };
        r.handle_packet(now, SRC, GROUP, &spm(tsi));
        let data = Body::Odata(Data {
            sqn: SeqNo(1),
            trail: SeqNo(1),
        });
        r.handle_packet(now, SRC, GROUP, &downstream(tsi, data, &[7; 64]));
    }
    r.handle_packet(now, SRC, GROUP, &spm(TSI));
    while r.poll_event().is_some() {}
    r
}

/// One busy session among many idle ones: the per-packet cost of `handle_packet` plus the
/// driver's `poll_timeout` calls (before and after the turn, as `socket/driver.rs` does).
fn bench_many_peers(c: &mut Criterion) {
    let mut g = c.benchmark_group("receiver busy peer among idle");
    let packets: Vec<Vec<u8>> = (1..=1000u32)
        .map(|sqn| {
            let body = Body::Odata(Data {
                sqn: SeqNo(sqn),
                trail: SeqNo(1),
            });
            downstream(TSI, body, &[7; 64])
        })
        .collect();
    for idle in [0u16, 500] {
        g.throughput(Throughput::Elements(packets.len() as u64));
        g.bench_function(format!("{idle} idle peers"), |b| {
            let start = Instant::from_millis(1);
            b.iter_batched(
                || receiver_with_peers(idle, start),
                |mut r| {
                    let mut now = start;
                    let mut buf = Vec::new();
                    for p in &packets {
                        now += Duration::from_micros(10);
                        r.handle_packet(now, SRC, GROUP, p);
                        if r.poll_timeout().is_some_and(|t| t <= now) {
                            r.handle_timeout(now);
                        }
                        while r.poll_transmit(now, &mut buf).is_some() {}
                        while let Some(ev) = r.poll_event() {
                            black_box(ev);
                        }
                        black_box(r.poll_timeout());
                    }
                    r
                },
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

criterion_group!(benches, bench_source, bench_receiver, bench_many_peers);
criterion_main!(benches);
