//! Checksum and parse throughput.
//!
//! `cargo bench -p pgm --bench checksum` reports GB/s (criterion `Throughput::Bytes`) for the
//! one's-complement sum over a full 1400-byte and a small 64-byte payload, for the whole-packet
//! `checksum::compute`, and for `PacketRepr::parse_verified` of an ODATA and a NAK-with-list.
#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

use std::{hint::black_box, net::Ipv4Addr};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pgm::wire::{checksum, Body, Data, Gsi, Nak, NakList, Options, PacketRepr, SeqNo};

fn bytes(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i.wrapping_mul(131) ^ (i >> 3)) as u8)
        .collect()
}

fn sum(c: &mut Criterion) {
    let mut g = c.benchmark_group("ones_complement_sum");
    for n in [1400usize, 64] {
        let data = bytes(n);
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_function(format!("{n}B"), |b| {
            b.iter(|| checksum::ones_complement_sum(black_box(&data)));
        });
    }
    g.finish();

    let mut g = c.benchmark_group("checksum_compute");
    for n in [1400usize, 64] {
        // A whole packet: 24-byte ODATA header + body, then the payload.
        let packet = bytes(24 + n);
        g.throughput(Throughput::Bytes(packet.len() as u64));
        g.bench_function(format!("{n}B_payload"), |b| {
            b.iter(|| checksum::compute(black_box(&packet)));
        });
    }
    g.finish();
}

fn parse(c: &mut Criterion) {
    let payload = bytes(1400);
    let odata = PacketRepr {
        sport: 1000,
        dport: 7500,
        gsi: Gsi([1, 2, 3, 4, 5, 6]),
        parity: false,
        var_pktlen: false,
        body: Body::Odata(Data {
            sqn: SeqNo(42),
            trail: SeqNo(1),
        }),
        options: Options::default(),
        payload: &payload,
    }
    .to_vec();
    let list: Vec<SeqNo> = (43..73).map(SeqNo).collect();
    let nak = PacketRepr {
        sport: 7500,
        dport: 1000,
        gsi: Gsi([1, 2, 3, 4, 5, 6]),
        parity: false,
        var_pktlen: false,
        body: Body::Nak(Nak {
            sqn: SeqNo(42),
            src_nla: Ipv4Addr::new(192, 168, 1, 10).into(),
            grp_nla: Ipv4Addr::new(239, 192, 1, 1).into(),
        }),
        options: Options {
            nak_list: Some(NakList::from_slice(&list)),
            ..Options::default()
        },
        payload: &[],
    }
    .to_vec();

    let mut g = c.benchmark_group("parse_verified");
    for (name, pkt) in [("odata_1400B", &odata), ("nak_list_30", &nak)] {
        g.throughput(Throughput::Bytes(pkt.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| PacketRepr::parse_verified(black_box(pkt)).map(|p| p.payload.len()));
        });
    }
    g.finish();
    let mut g = c.benchmark_group("parse");
    for (name, pkt) in [("odata_1400B", &odata), ("nak_list_30", &nak)] {
        g.throughput(Throughput::Bytes(pkt.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| PacketRepr::parse(black_box(pkt)).map(|p| p.payload.len()));
        });
    }
    g.finish();
}

criterion_group!(benches, sum, parse);
criterion_main!(benches);
