//! Topic → group sharding over EPGM on the loopback interface (no privileges needed): a
//! sharded publisher on three groups, a sharded subscriber that joins and leaves groups as its
//! subscriptions change (checked in the kernel's membership list too), and a plain subscriber
//! on one shard group (what a libzmq SUB connected to that group sees).

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::{collections::BTreeMap, net::IpAddr, time::Duration};

use pgm::socket::Clock;
use pubsub::{
    ConnectError, Options, RecvError, RecvEvent, Shard, ShardedPublisher, ShardedSubscriber,
    SocketOptions, Subscriber,
};

/// This file's port window: 12000..12900 (below the kernel's ephemeral range, apart from the
/// other test files'); three groups 239.194.X.{1,2,3} unlikely to clash with parallel runs.
fn groups(tag: u8) -> (String, [IpAddr; 3]) {
    let pid = std::process::id();
    let port = 12_000 + (pid % 900) as u16 + u16::from(tag);
    let x = (pid >> 8) as u8;
    let g = |n: u8| IpAddr::from([239, 194, x, 10 * tag + n]);
    (
        format!("epgm://127.0.0.1;{}:{port}", g(1)),
        [g(1), g(2), g(3)],
    )
}

fn opts(g: &[IpAddr; 3]) -> Options {
    Options::default()
        .with_socket(SocketOptions::default().with_linger(Duration::from_millis(20)))
        .with_shards(vec![Shard::new("a", g[1]), Shard::new("b", g[2])])
}

/// True when the loopback interface is a member of `group` (/proc/net/igmp lists groups as
/// little-endian hex).
fn kernel_joined(group: IpAddr) -> bool {
    let IpAddr::V4(g) = group else {
        unreachable!("IPv4 groups only")
    };
    let o = g.octets();
    let hex = format!("{:02X}{:02X}{:02X}{:02X}", o[3], o[2], o[1], o[0]);
    std::fs::read_to_string("/proc/net/igmp").is_ok_and(|t| t.contains(&hex))
}

/// Waits (at most 3 s) until the kernel's membership of `group` is `want`.
fn wait_kernel(group: IpAddr, want: bool) {
    let clock = Clock::new();
    while kernel_joined(group) != want {
        assert!(
            clock.elapsed() < Duration::from_secs(3),
            "{group}: kernel membership is not {want}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Receives until `n` messages arrived (5 s at most); topic → count.
fn take(sub: &mut ShardedSubscriber, n: usize) -> BTreeMap<Vec<u8>, u32> {
    let mut got = BTreeMap::new();
    for _ in 0..n {
        match sub.recv_timeout(Duration::from_secs(5)) {
            Ok(RecvEvent::Message(m)) => *got.entry(m.topic().to_vec()).or_default() += 1,
            other => panic!("expected a message, got {other:?} after {got:?}"),
        }
    }
    got
}

fn publish_round(p: &ShardedPublisher, per_topic: u32) {
    for i in 0..per_topic {
        for t in [&b"a1"[..], b"b1", b"c1"] {
            p.send(t, &i.to_be_bytes()).unwrap();
        }
    }
    p.flush().unwrap();
}

#[test]
fn a_subscriber_joins_and_leaves_groups_as_its_subscriptions_change() {
    let (ep, g) = groups(1);
    let publisher = ShardedPublisher::connect(&ep, &opts(&g)).unwrap();
    assert_eq!(publisher.map().groups(), g);
    let mut sub = ShardedSubscriber::connect(&ep, &opts(&g)).unwrap();
    assert!(sub.joined_groups().is_empty());

    // "a" lives on g[1] alone.
    sub.subscribe("a").unwrap();
    assert_eq!(sub.joined_groups(), [g[1]]);
    wait_kernel(g[1], true);
    assert!(!kernel_joined(g[0]) && !kernel_joined(g[2]));
    publish_round(&publisher, 100);
    assert_eq!(take(&mut sub, 100), BTreeMap::from([(b"a1".to_vec(), 100)]));
    assert_eq!(
        sub.recv_timeout(Duration::from_millis(200)),
        Err(RecvError::Timeout)
    );

    // Everything: every group; messages of all three arrive, each in order.
    sub.subscribe("").unwrap();
    assert_eq!(sub.joined_groups(), g);
    wait_kernel(g[0], true);
    wait_kernel(g[2], true);
    publish_round(&publisher, 100);
    let mut next: BTreeMap<Vec<u8>, u32> = BTreeMap::new();
    for _ in 0..300 {
        let Ok(RecvEvent::Message(m)) = sub.recv_timeout(Duration::from_secs(5)) else {
            panic!("expected a message");
        };
        let seq = u32::from_be_bytes(m.body()[0][..].try_into().unwrap());
        let n = next.entry(m.topic().to_vec()).or_default();
        assert_eq!(seq, *n, "{:?}", m.topic());
        *n += 1;
    }
    assert_eq!(next.values().copied().collect::<Vec<_>>(), [100, 100, 100]);
    let per_group: Vec<u64> = sub
        .shard_stats()
        .iter()
        .map(|s| s.stats.decoder.received)
        .collect();
    assert_eq!(per_group, [100, 200, 100]);

    // Dropping "" leaves the groups only it needed; a second reference keeps a prefix.
    sub.subscribe("a").unwrap();
    assert!(sub.unsubscribe(""));
    assert_eq!(sub.joined_groups(), [g[1]]);
    wait_kernel(g[0], false);
    wait_kernel(g[2], false);
    assert!(sub.unsubscribe("a"));
    assert_eq!(sub.joined_groups(), [g[1]]);
    assert!(sub.unsubscribe("a"));
    assert!(sub.joined_groups().is_empty());
    wait_kernel(g[1], false);
    assert!(!sub.unsubscribe("a"));
    assert_eq!(sub.try_recv(), Err(RecvError::Empty));

    let sent: Vec<u64> = publisher
        .shard_stats()
        .iter()
        .map(|s| s.stats.encoder.messages)
        .collect();
    assert_eq!(sent, [200, 200, 200]);
    publisher.close().unwrap();
}

#[test]
fn a_plain_subscriber_on_one_shard_group_reads_that_shard() {
    let (ep, g) = groups(2);
    let publisher = ShardedPublisher::connect(&ep, &opts(&g)).unwrap();
    // The b shard's group, as a libzmq SUB would connect to it: nothing of a or c.
    let shard_ep = ep.replace(&g[0].to_string(), &g[2].to_string());
    let plain = Options::default();
    let mut sub = Subscriber::connect(&shard_ep, &plain).unwrap();
    sub.subscribe("");
    publish_round(&publisher, 50);
    for i in 0..50u32 {
        match sub.recv_timeout(Duration::from_secs(5)) {
            Ok(RecvEvent::Message(m)) => {
                assert_eq!(m.topic(), &b"b1"[..]);
                assert_eq!(m.body(), [&i.to_be_bytes()[..]]);
            }
            other => panic!("expected a message, got {other:?}"),
        }
    }
    assert_eq!(
        sub.recv_timeout(Duration::from_millis(200)),
        Err(RecvError::Timeout)
    );
    publisher.close().unwrap();
}

#[test]
fn shards_are_checked_at_connect() {
    let (ep, g) = groups(3);
    let dup = Options::default().with_shards(vec![Shard::new("a", g[1]), Shard::new("a", g[2])]);
    let e = ShardedPublisher::connect(&ep, &dup).unwrap_err();
    assert!(matches!(e, ConnectError::Shard(_)), "{e}");
    let v6 = Options::default().with_shards(vec![Shard::new("a", "ff18::1".parse().unwrap())]);
    let e = ShardedSubscriber::connect(&ep, &v6).unwrap_err();
    assert!(e.to_string().contains("other IP family"), "{e}");
    // A one-group publisher or subscriber does not ignore shards silently.
    let e = pubsub::Publisher::connect(&ep, &opts(&g)).unwrap_err();
    assert!(matches!(e, ConnectError::Sharded), "{e}");
    assert!(matches!(
        Subscriber::connect(&ep, &opts(&g)),
        Err(ConnectError::Sharded)
    ));
    // The drop-oldest and conflate buffers drain one session: refused, not ignored.
    let slow =
        opts(&g).with_slow_consumer(pubsub::SlowConsumer::Conflate(pubsub::Bound::default()));
    assert!(matches!(
        ShardedSubscriber::connect(&ep, &slow),
        Err(ConnectError::ShardedSlowConsumer)
    ));
}

#[test]
fn a_subscriber_discovers_the_announced_map() {
    let (ep, g) = groups(4);
    let announcing = opts(&g).with_announce_shards(Duration::from_millis(50));
    let publisher = ShardedPublisher::connect(&ep, &announcing).unwrap();
    // No --shard on this side: the map comes from the endpoint's group.
    let plain = Options::default();
    let mut sub = ShardedSubscriber::discover(&ep, &plain, Duration::from_secs(3)).unwrap();
    assert_eq!(sub.map(), publisher.map());
    sub.subscribe("b").unwrap();
    assert_eq!(sub.joined_groups(), [g[2]]);
    // Everything: the announcements keep coming on the endpoint's group but are never
    // delivered.
    sub.subscribe("").unwrap();
    wait_kernel(g[0], true);
    publish_round(&publisher, 20);
    let got = take(&mut sub, 60);
    assert_eq!(
        got.values().copied().collect::<Vec<_>>(),
        [20, 20, 20],
        "{got:?}"
    );
    assert_eq!(
        sub.recv_timeout(Duration::from_millis(300)),
        Err(RecvError::Timeout)
    );
    assert!(
        sub.shard_stats()[0].stats.decoder.received >= 2,
        "announcements arrived"
    );
    publisher.close().unwrap();

    // Without an announcement, discovery gives up with a clear error.
    let (ep, g) = groups(5);
    let silent = ShardedPublisher::connect(&ep, &opts(&g)).unwrap();
    let e = ShardedSubscriber::discover(&ep, &plain, Duration::from_millis(300)).unwrap_err();
    assert!(e.to_string().contains("no shard map announced"), "{e}");
    silent.close().unwrap();
}
