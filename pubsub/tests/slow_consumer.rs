//! Slow-consumer policies of a [`Subscriber`] over EPGM on the loopback interface (no
//! privileges needed): the drain keeps reading while the application does not, and the
//! application then finds what its policy promises. Port window 6000..7900 (this file only).

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::time::Duration;

use pgm::socket::Clock;
use pubsub::{
    tokio::AsyncSubscriber, Bound, Options, Publisher, RecvError, RecvEvent, SlowConsumer,
    SocketOptions, Subscriber,
};

fn endpoint(tag: u8) -> String {
    let pid = std::process::id();
    let port = 6_000 + (pid % 1_900) as u16 + u16::from(tag);
    format!(
        "epgm://127.0.0.1;239.194.{}.{}:{port}",
        (pid >> 8) as u8,
        tag
    )
}

fn opts(policy: SlowConsumer) -> Options {
    Options::default()
        .with_socket(SocketOptions::default().with_linger(Duration::from_millis(20)))
        .with_slow_consumer(policy)
}

fn bound(messages: usize) -> Bound {
    Bound {
        messages,
        bytes: 1 << 20,
    }
}

/// Waits (at most 5 s) until the drain has decoded `n` messages, without receiving any.
fn wait_decoded(sub: &Subscriber, n: u64) {
    let clock = Clock::new();
    while sub.stats().decoder.received < n {
        assert!(
            clock.elapsed() < Duration::from_secs(5),
            "{:?}",
            sub.stats()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn body(ev: RecvEvent) -> u32 {
    match ev {
        RecvEvent::Message(m) => u32::from_be_bytes(m.body()[0].as_ref().try_into().unwrap()),
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn drop_oldest_drains_while_the_application_sleeps() {
    let ep = endpoint(1);
    let mut sub = Subscriber::connect(&ep, &opts(SlowConsumer::DropOldest(bound(100)))).unwrap();
    assert!(sub.socket_fds().is_empty());
    sub.subscribe(b"a");
    let publisher = Publisher::bind(&ep, &opts(SlowConsumer::Block)).unwrap();
    for i in 0..1000u32 {
        publisher.send(b"a", &i.to_be_bytes()).unwrap();
        publisher.send(b"b", &i.to_be_bytes()).unwrap();
    }
    publisher.flush().unwrap();
    wait_decoded(&sub, 1000);
    assert_eq!(
        sub.recv().unwrap(),
        RecvEvent::Dropped {
            tsi: Some(publisher.tsi()),
            messages: 900
        }
    );
    for i in 900..1000 {
        assert_eq!(body(sub.recv().unwrap()), i);
    }
    assert_eq!(sub.try_recv(), Err(RecvError::Empty));
    assert_eq!(
        sub.recv_timeout(Duration::from_millis(20)),
        Err(RecvError::Timeout)
    );
    let s = sub.stats();
    assert_eq!((s.policy.dropped, s.policy.drop_events), (900, 1));
    assert_eq!((s.policy.max_held, s.policy.held), (100, 0));
    assert_eq!(s.decoder.filtered_out, 1000);
    // Subscriptions reach the drain: "b" from now on, "a" no more.
    sub.subscribe(b"b");
    assert!(sub.unsubscribe(b"a"));
    assert!(!sub.unsubscribe(b"a"));
    publisher.send(b"a", &7u32.to_be_bytes()).unwrap();
    publisher.send(b"b", &8u32.to_be_bytes()).unwrap();
    publisher.flush().unwrap();
    assert_eq!(body(sub.recv_timeout(Duration::from_secs(5)).unwrap()), 8);
    sub.close();
    assert_eq!(sub.try_recv(), Err(RecvError::Closed));
}

#[test]
fn conflate_over_tokio_keeps_the_last_per_topic() {
    let ep = endpoint(2);
    let mut sub = Subscriber::connect(&ep, &opts(SlowConsumer::Conflate(bound(10)))).unwrap();
    sub.subscribe(b"");
    let publisher = Publisher::bind(&ep, &opts(SlowConsumer::Block)).unwrap();
    for i in 0..500u32 {
        let topic: &[u8] = if i % 2 == 0 { b"x" } else { b"y" };
        publisher.send(topic, &i.to_be_bytes()).unwrap();
    }
    publisher.flush().unwrap();
    wait_decoded(&sub, 500);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut sub = {
        let _in = rt.enter();
        AsyncSubscriber::new(sub).unwrap()
    };
    rt.block_on(async {
        assert_eq!(body(sub.recv().await.unwrap()), 498);
        assert_eq!(body(sub.recv().await.unwrap()), 499);
        // The readiness descriptor went quiet: a wait times out.
        let more = tokio::time::timeout(Duration::from_millis(50), sub.recv()).await;
        assert!(more.is_err(), "{more:?}");
    });
    let s = sub.stats();
    assert_eq!((s.policy.conflated, s.policy.dropped), (498, 0));
}
