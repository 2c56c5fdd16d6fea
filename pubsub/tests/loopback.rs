//! Publisher → subscriber over EPGM on the loopback interface (no privileges needed).

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::time::Duration;

use pubsub::{
    ConnectError, Message, Options, Publisher, RecvError, RecvEvent, SendError, SocketOptions,
    Subscriber,
};

/// A group and port unlikely to clash with parallel test runs; the port is below the kernel's
/// ephemeral range (32768+), so no socket bound to port 0 can be holding it.
fn endpoint(tag: u8) -> String {
    let pid = std::process::id();
    let port = 20_000 + (pid % 1_900) as u16 + u16::from(tag);
    format!(
        "epgm://127.0.0.1;239.193.{}.{}:{port}",
        (pid >> 8) as u8,
        tag
    )
}

fn opts() -> Options {
    Options::default().with_socket(SocketOptions::default().with_linger(Duration::from_millis(20)))
}

fn recv_msg(sub: &mut Subscriber) -> Message {
    match sub.recv_timeout(Duration::from_secs(5)) {
        Ok(RecvEvent::Message(m)) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn filtered_multipart_batched_and_spanning() {
    let ep = endpoint(1);
    let mut sub = Subscriber::connect(&ep, &opts()).unwrap();
    sub.subscribe(b"md.A");
    sub.subscribe(b"big");
    let publisher = Publisher::bind(&ep, &opts()).unwrap();
    assert_eq!(publisher.max_payload(), 1428);
    for i in 0..1000u32 {
        let topic: &[u8] = if i % 2 == 0 { b"md.AAPL" } else { b"md.MSFT" };
        publisher.send(topic, &i.to_be_bytes()).unwrap();
    }
    let big: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    publisher
        .send_multipart(&[&b"big"[..], b"part1", &big])
        .unwrap();
    publisher.send_multipart(&[b"md.AAPL.last"]).unwrap();
    publisher.flush().unwrap();

    for i in (0..1000u32).step_by(2) {
        let m = recv_msg(&mut sub);
        assert_eq!(m.tsi, publisher.tsi());
        assert_eq!(m.topic(), &b"md.AAPL"[..]);
        assert_eq!(m.body(), [&i.to_be_bytes()[..]]);
    }
    let m = recv_msg(&mut sub);
    assert_eq!(m.frames.len(), 3);
    assert_eq!(m.frames[1], &b"part1"[..]);
    assert_eq!(m.frames[2], big);
    assert_eq!(recv_msg(&mut sub).frames[..], [&b"md.AAPL.last"[..]]);
    assert_eq!(sub.try_recv(), Err(RecvError::Empty));

    let s = sub.stats();
    assert_eq!(s.decoder.received, 502);
    assert_eq!(s.decoder.filtered_out, 500);
    assert_eq!((s.decoder.gaps, s.decoder.decode_errors), (0, 0));
    let p = publisher.stats();
    assert_eq!(p.encoder.messages, 1002);
    // 1000 messages of 17 bytes batch into ~12 APDUs, the 100 kB one spans ~71.
    assert!(p.encoder.apdus < 100, "{:?}", p.encoder);
    assert_eq!(p.transport.engine.apdus_sent, p.encoder.apdus);
}

#[test]
fn linger_sends_a_batch_without_further_calls() {
    let ep = endpoint(2);
    let mut sub = Subscriber::connect(&ep, &opts()).unwrap();
    sub.subscribe(b"");
    let publisher =
        Publisher::connect(&ep, &opts().with_batch_linger(Duration::from_millis(20))).unwrap();
    publisher.send(b"t", b"1").unwrap();
    publisher.send(b"t", b"2").unwrap();
    // No flush: the flusher thread closes the batch after 20 ms.
    assert_eq!(recv_msg(&mut sub).frames[1], &b"1"[..]);
    assert_eq!(recv_msg(&mut sub).frames[1], &b"2"[..]);
    let e = publisher.stats().encoder;
    assert_eq!((e.apdus, e.lingered), (1, 1));
}

/// Full APDUs wait for a run (or their linger) and go to the transport together: a few full
/// ones leave only at the linger, a burst leaves in runs of several packets per `sendmmsg`.
#[test]
fn full_apdus_are_handed_over_in_runs_within_the_linger() {
    let ep = endpoint(5);
    let mut sub = Subscriber::connect(&ep, &opts()).unwrap();
    sub.subscribe(b"");
    let linger = Duration::from_millis(50);
    let publisher = Publisher::connect(&ep, &opts().with_batch_linger(linger)).unwrap();
    let clock = pgm::socket::Clock::new();
    // About three full APDUs: fewer than a run, so they wait for the first one's linger.
    let body = [7u8; 100];
    for _ in 0..40 {
        publisher.send(b"t", &body).unwrap();
    }
    assert!(publisher.stats().encoder.full >= 2);
    recv_msg(&mut sub);
    let waited = clock.elapsed();
    assert!(waited >= Duration::from_millis(48), "{waited:?}");
    for _ in 1..40 {
        recv_msg(&mut sub);
    }
    // A burst: 4000 messages = ~290 full APDUs, handed over 16 at a time.
    let before = publisher.stats().transport.io;
    for _ in 0..4000 {
        publisher.send(b"t", &body).unwrap();
    }
    publisher.flush().unwrap();
    for _ in 0..4000 {
        recv_msg(&mut sub);
    }
    let io = publisher.stats().transport.io;
    let (packets, calls) = (
        io.packets_sent - before.packets_sent,
        io.send_calls - before.send_calls,
    );
    assert!(
        packets >= 4 * calls,
        "{packets} packets in {calls} sendmmsg calls"
    );
}

#[test]
fn zero_linger_sends_each_message_as_one_apdu() {
    let ep = endpoint(3);
    let mut sub = Subscriber::connect(&ep, &opts()).unwrap();
    sub.subscribe(b"x");
    let publisher = Publisher::connect(&ep, &opts().with_batch_linger(Duration::ZERO)).unwrap();
    for i in 0..10u8 {
        publisher.try_send(b"x", &[i]).unwrap();
    }
    for i in 0..10u8 {
        assert_eq!(recv_msg(&mut sub).frames[1], &[i][..]);
    }
    assert_eq!(publisher.stats().encoder.apdus, 10);
}

#[test]
fn unsubscribe_and_timeouts() {
    let ep = endpoint(4);
    let mut sub = Subscriber::connect(&ep, &opts()).unwrap();
    sub.subscribe(b"a");
    sub.subscribe(b"a");
    assert!(sub.unsubscribe(b"a"));
    assert!(!sub.unsubscribe(b"zzz"));
    let publisher = Publisher::connect(&ep, &opts()).unwrap();
    publisher.send(b"a1", b"").unwrap();
    publisher.flush().unwrap();
    assert_eq!(recv_msg(&mut sub).frames[..], [&b"a1"[..], b""]);
    assert!(sub.unsubscribe(b"a"));
    publisher.send(b"a2", b"").unwrap();
    publisher.flush().unwrap();
    assert_eq!(
        sub.recv_timeout(Duration::from_millis(200)),
        Err(RecvError::Timeout)
    );
    assert_eq!(sub.stats().decoder.filtered_out, 1);
}

#[test]
fn errors() {
    assert!(matches!(
        Publisher::connect("tcp://127.0.0.1:5555", &opts()),
        Err(ConnectError::Open(_))
    ));
    assert!(matches!(
        Subscriber::connect("epgm://127.0.0.1;10.0.0.1:5555", &opts()),
        Err(ConnectError::Open(_))
    ));
    assert!(matches!(
        Publisher::connect(&endpoint(5), &opts().with_max_payload(1449)),
        Err(ConnectError::MaxPayload { limit: 1448, .. })
    ));
    let publisher = Publisher::connect(&endpoint(6), &opts()).unwrap();
    assert_eq!(
        publisher.send_multipart::<&[u8]>(&[]),
        Err(SendError::EmptyMessage)
    );
    assert_eq!(
        publisher.try_send_multipart::<&[u8]>(&[]),
        Err(SendError::EmptyMessage)
    );
    publisher.close().unwrap();
    publisher.close().unwrap();
}
