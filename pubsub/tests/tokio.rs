//! The tokio publisher and subscriber (`pubsub::tokio`) on the loopback.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::time::Duration;

use pubsub::{
    tokio::{AsyncPublisher, AsyncSubscriber},
    Options, RecvEvent, SocketOptions,
};

fn endpoint(tag: u8) -> String {
    let pid = std::process::id();
    let port = 22_000 + (pid % 1_900) as u16 + u16::from(tag);
    format!(
        "epgm://127.0.0.1;239.196.{}.{}:{port}",
        (pid >> 8) as u8,
        tag
    )
}

fn opts(rate: Option<u64>, send_queue: usize) -> Options {
    let mut so = SocketOptions::default()
        .with_linger(Duration::from_millis(20))
        .with_rate(rate);
    so.driver.send_queue = send_queue;
    Options::default().with_socket(so)
}

/// 100 000 messages on two topics through a small, rate-limited send queue (the publisher
/// awaits room again and again); the subscriber of one topic gets exactly its half, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_publisher_to_async_subscriber_exactly() {
    const N: u32 = 100_000;
    let ep = endpoint(1);
    let mut sub = AsyncSubscriber::connect(&ep, &opts(None, 1 << 20)).unwrap();
    sub.subscribe("md.A");
    let publisher = AsyncPublisher::connect(&ep, &opts(Some(50_000_000), 32 << 10)).unwrap();
    let sender = tokio::spawn(async move {
        for i in 0..N {
            let topic: &[u8] = if i % 2 == 0 { b"md.A" } else { b"md.B" };
            publisher.send(topic, &i.to_be_bytes()).await.unwrap();
        }
        publisher.flush().await.unwrap();
        let stats = publisher.stats();
        publisher.close().await.unwrap();
        stats
    });
    let mut next = 0u32;
    let mut ticks = 0u32;
    let mut tick = tokio::time::interval(Duration::from_micros(300));
    let deadline = tokio::time::Instant::now() + Duration::from_mins(1);
    while next < N {
        assert!(tokio::time::Instant::now() < deadline, "stalled at {next}");
        // A pending receive cancelled by the tick must not lose what it was about to take.
        let ev = tokio::select! {
            ev = sub.recv() => ev.unwrap(),
            _ = tick.tick() => { ticks += 1; continue; }
        };
        match ev {
            RecvEvent::Message(m) => {
                assert_eq!(m.topic(), &b"md.A"[..]);
                assert_eq!(m.frames[1], &next.to_be_bytes()[..]);
                next += 2;
            }
            RecvEvent::Gap { .. } => panic!("gap on the loopback"),
            _ => {}
        }
    }
    let p = sender.await.unwrap();
    assert_eq!(p.encoder.messages, u64::from(N));
    assert!(ticks > 10, "the cancellation race never ran: {ticks}");
    let s = sub.stats();
    assert_eq!(s.decoder.received, u64::from(N / 2));
    assert_eq!(s.decoder.gaps, 0);
}

#[test]
fn outside_a_runtime_is_a_clear_error() {
    let e = AsyncSubscriber::connect(&endpoint(2), &Options::default()).unwrap_err();
    assert!(e.to_string().contains("tokio runtime"), "{e}");
}
