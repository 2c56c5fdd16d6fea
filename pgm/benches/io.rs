//! IO hot paths: batched (`sendmmsg`/`recvmmsg`) against one-syscall-per-packet UDP on the
//! loopback interface, and what receiving into pooled `Bytes` would save over copying each
//! payload (the engine copies today; see `Receiver::handle_packet`).
//!
//! Every socket is a unicast UDP socket on 127.0.0.1 with a kernel-chosen port, so the bench
//! never leaves the host.

#![allow(missing_docs, reason = "criterion_group! generates undocumented items")]

use std::{
    hint::black_box,
    net::{IpAddr, Ipv4Addr, UdpSocket},
    os::fd::AsRawFd,
};

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pgm::sys::mmsg::{MmsgReceiver, MmsgSender, Outgoing, BATCH};

/// A connected-by-address pair on loopback: `tx` sends to `rx`'s port.
fn pair() -> (UdpSocket, UdpSocket, u16) {
    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind rx");
    rx.set_nonblocking(true).expect("nonblocking");
    let port = rx.local_addr().expect("addr").port();
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind tx");
    (tx, rx, port)
}

/// Receives everything queued on `rx` one datagram per syscall; returns the count.
fn drain_one_by_one(rx: &UdpSocket, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while rx.recv_from(buf).is_ok() {
        n += 1;
    }
    n
}

fn bench_udp(c: &mut Criterion) {
    let mut g = c.benchmark_group("udp loopback, 64 packets");
    for size in [64usize, 1400] {
        g.throughput(Throughput::Elements(BATCH as u64));
        let pkts: Vec<Outgoing> = (0..BATCH)
            .map(|_| Outgoing {
                dst: IpAddr::V4(Ipv4Addr::LOCALHOST),
                buf: vec![7; size],
                ttl: None,
            })
            .collect();

        let (tx, rx, port) = pair();
        let mut buf = vec![0u8; 65_536];
        g.bench_function(format!("{size} B: sendto + recvfrom per packet"), |b| {
            b.iter(|| {
                for p in &pkts {
                    tx.send_to(&p.buf, ("127.0.0.1", port)).expect("send");
                }
                black_box(drain_one_by_one(&rx, &mut buf))
            });
        });

        let (tx, rx, port) = pair();
        let mut sender = MmsgSender::new();
        let mut receiver = MmsgReceiver::new(false);
        let mut slots = vec![0u8; BATCH * 2048];
        g.bench_function(format!("{size} B: one sendmmsg + one recvmmsg"), |b| {
            b.iter(|| {
                let sent = sender.send(tx.as_raw_fd(), &pkts, port).expect("sendmmsg");
                let got = receiver
                    .recv(rx.as_raw_fd(), &mut slots, 2048, BATCH)
                    .map_or(0, <[_]>::len);
                black_box((sent, got))
            });
        });
    }
    g.finish();
}

/// What `Receiver::handle_packet_bytes` (receiving into a shared buffer and slicing the payload
/// out) would save per data packet over `Bytes::copy_from_slice` (an allocation and a copy).
fn bench_payload(c: &mut Criterion) {
    let mut g = c.benchmark_group("payload per data packet");
    for size in [64usize, 1400] {
        g.throughput(Throughput::Elements(BATCH as u64));
        let datagram = vec![5u8; size + 24];
        // Both variants copy each datagram once more, standing in for the kernel's copy into
        // the receive buffer.
        g.bench_function(format!("{size} B: copy_from_slice (today)"), |b| {
            let mut slots = vec![0u8; BATCH * 2048];
            b.iter(|| {
                let v: Vec<Bytes> = (0..BATCH)
                    .map(|i| {
                        let slot = &mut slots[i * 2048..i * 2048 + size + 24];
                        slot.copy_from_slice(black_box(&datagram));
                        Bytes::copy_from_slice(&slot[24..])
                    })
                    .collect();
                black_box(v)
            });
        });
        g.bench_function(format!("{size} B: slice of a pooled BytesMut"), |b| {
            let mut pool = BytesMut::with_capacity(1 << 20);
            b.iter(|| {
                if pool.capacity() < BATCH * (size + 24) {
                    pool = BytesMut::with_capacity(1 << 20);
                }
                // The kernel writes the datagrams back to back into the pool (recvmmsg), then
                // each payload is a refcounted slice of the frozen chunk.
                for _ in 0..BATCH {
                    pool.extend_from_slice(&datagram);
                }
                let chunk = pool.split().freeze();
                let v: Vec<Bytes> = (0..BATCH)
                    .map(|i| {
                        let at = i * (size + 24);
                        chunk.slice(at + 24..at + size + 24)
                    })
                    .collect();
                black_box(v)
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench_udp, bench_payload);
criterion_main!(benches);
