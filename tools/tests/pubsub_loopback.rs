//! pgm-pub → pgm-sub over EPGM on the loopback interface of the root namespace (no root
//! needed). Every endpoint is `epgm://127.0.0.1;239.192.x.y:PORT` with a random group and port
//! per test: IP_MULTICAST_IF is 127.0.0.1 and loop is on, so nothing leaves through a real
//! interface. Every child process is killed when its guard drops, and every wait is bounded.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::{collections::BTreeMap, process::Command};

use common::{
    assert_received_whole, endpoint, fails, interrupt_sender, json, run_with_stdin,
    sub_topics_exact, Proc,
};
use pgm::socket::Clock;

const PUB: &str = env!("CARGO_BIN_EXE_pgm-pub");
const SUB: &str = env!("CARGO_BIN_EXE_pgm-sub");

/// A verifying subscriber of `prefixes` that expects `count` messages; waits until it listens.
fn sub_verify(ep: &str, prefixes: &[&str], count: u64) -> Proc {
    sub_verify_with(ep, prefixes, count, &[])
}

/// [`sub_verify`] with `extra` arguments.
fn sub_verify_with(ep: &str, prefixes: &[&str], count: u64, extra: &[&str]) -> Proc {
    let mut args: Vec<String> = extra.iter().map(|&a| a.to_owned()).collect();
    args.extend([
        "--verify".to_owned(),
        "--count".to_owned(),
        count.to_string(),
        "--timeout".to_owned(),
        "10".to_owned(),
    ]);
    for p in prefixes {
        args.extend(["--subscribe".to_owned(), (*p).to_owned()]);
    }
    args.push(ep.to_owned());
    Proc::spawn_listening(
        &format!("pgm-sub {prefixes:?}"),
        Command::new(SUB).args(&args),
    )
}

/// `pgm-pub --count count` round-robin over `topics`, `size` bytes per payload.
fn publish(ep: &str, topics: &[String], count: u64, size: &str, rate: &str) -> serde_json::Value {
    publish_with(ep, topics, count, size, rate, &[])
}

/// [`publish`] with `extra` arguments.
fn publish_with(
    ep: &str,
    topics: &[String],
    count: u64,
    size: &str,
    rate: &str,
    extra: &[&str],
) -> serde_json::Value {
    let mut args: Vec<String> = extra.iter().map(|&a| a.to_owned()).collect();
    args.extend([
        "--count".to_owned(),
        count.to_string(),
        "--size".to_owned(),
        size.to_owned(),
        "--rate".to_owned(),
        rate.to_owned(),
        "--linger".to_owned(),
        "1".to_owned(),
    ]);
    for t in topics {
        args.extend(["--topic".to_owned(), t.clone()]);
    }
    args.push(ep.to_owned());
    let p = Proc::spawn("pgm-pub", Command::new(PUB).args(&args));
    let (status, out, err) = p.finish();
    assert!(status.success(), "pgm-pub failed: {status}\n{err}");
    let s = json(&out);
    assert_eq!(s["sent"], count, "{out}");
    s
}

/// The per-topic counts a subscriber of `prefixes` must report when `count` messages go
/// round-robin over `topics`.
fn expected(topics: &[String], count: u64, prefixes: &[&str]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for i in 0..count {
        let t = &topics[(i % topics.len() as u64) as usize];
        if prefixes.iter().any(|p| t.starts_with(p)) {
            *m.entry(t.clone()).or_default() += 1;
        }
    }
    m
}

/// Checks a subscriber's summary: exactly the expected topics and counts, gap-free.
fn check_sub(p: Proc, want: &BTreeMap<String, u64>, total: u64) {
    let name = p.name.clone();
    let (v, out) = sub_topics_exact(p, want);
    let n: u64 = want.values().sum();
    assert_eq!(v["received"], n, "{name}: {out}");
    for k in [
        "gaps",
        "duplicates",
        "corrupt",
        "unrecoverable",
        "gap_events",
    ] {
        assert_eq!(v[k], 0, "{name}: {k}: {out}");
    }
    assert_eq!(v["senders"], 1, "{name}: {out}");
    // Everything else went past the filter (the subscriber may stop before the last ones).
    let filtered = v["filtered_out"].as_u64().unwrap();
    assert!(filtered <= total - n, "{name}: {out}");
}

fn topics(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{}{:02}", if i < n / 2 { 'a' } else { 'b' }, i % (n / 2)))
        .collect()
}

/// 50 000 small messages over 20 topics (a00..a09, b00..b09): one subscriber takes "a", the
/// other "b0" plus a05 and a06 (the latter twice), which overlap with the first.
#[test]
fn fifty_thousand_messages_over_twenty_topics_reach_two_prefix_subscribers() {
    let ep = endpoint();
    let topics = topics(20);
    let count = 50_000;
    let p1: &[&str] = &["a"];
    let p2: &[&str] = &["b0", "a05", "a06", "a05"];
    let (w1, w2) = (expected(&topics, count, p1), expected(&topics, count, p2));
    assert_eq!((w1.len(), w2.len()), (10, 12));
    let s1 = sub_verify(&ep, p1, w1.values().sum());
    let s2 = sub_verify(&ep, p2, w2.values().sum());
    let started = Clock::new();
    let s = publish(&ep, &topics, count, "12-300", "200M");
    assert!(s["apdus"].as_u64().unwrap() < count / 4, "batched: {s}");
    check_sub(s1, &w1, count);
    check_sub(s2, &w2, count);
    eprintln!(
        "50 000 messages in {:.2} s",
        started.elapsed().as_secs_f64()
    );
}

/// Messages of 12 B to 100 KiB (most span APDUs) over 5 topics, two subscribers.
/// Issue 12: a tokio subscriber (`pgm-sub --tokio`: `AsyncSubscriber::recv().await`, with
/// its idle timeouts cancelling pending receives) verifies 1 000 000 messages from `pgm-pub`
/// exactly, as the blocking one does.
#[test]
fn a_tokio_subscriber_verifies_a_million_messages() {
    let ep = endpoint();
    let topics = topics(4);
    let count = 1_000_000;
    let all: &[&str] = &[""];
    let sub = sub_verify_with(&ep, all, count, &["--tokio"]);
    publish(&ep, &topics, count, "64", "300M");
    check_sub(sub, &expected(&topics, count, all), count);
}

/// Issue 12: a tokio publisher (`pgm-pub --tokio`: `AsyncPublisher::send().await`, waiting
/// for queue room under a rate limit) feeds a blocking `pgm-sub --verify`.
#[test]
fn a_tokio_publisher_feeds_pgm_sub() {
    let ep = endpoint();
    let topics = topics(4);
    let count = 100_000;
    let all: &[&str] = &[""];
    let sub = sub_verify(&ep, all, count);
    let s = publish_with(&ep, &topics, count, "12-2000", "200M", &["--tokio"]);
    assert!(s["apdus"].as_u64().unwrap() > 1000, "{s}");
    check_sub(sub, &expected(&topics, count, all), count);
}

#[test]
fn large_messages_spanning_apdus_are_reassembled() {
    let ep = endpoint();
    let topics: Vec<String> = ["md.A", "md.B", "md.C", "ref.A", "ref.B"]
        .map(String::from)
        .to_vec();
    let count = 600;
    let p1: &[&str] = &["md."];
    let p2: &[&str] = &["ref.B", "md.C"];
    let (w1, w2) = (expected(&topics, count, p1), expected(&topics, count, p2));
    let s1 = sub_verify(&ep, p1, w1.values().sum());
    let s2 = sub_verify(&ep, p2, w2.values().sum());
    let s = publish(&ep, &topics, count, "12-100KiB", "400M");
    assert!(s["apdus"].as_u64().unwrap() > count, "spanning: {s}");
    check_sub(s1, &w1, count);
    check_sub(s2, &w2, count);
}

#[test]
fn stdin_lines_are_published_and_printed_filtered() {
    let ep = endpoint();
    let sub = Proc::spawn_listening(
        "pgm-sub",
        Command::new(SUB).args([
            "--count",
            "3",
            "--timeout",
            "10",
            "--subscribe",
            "md.",
            "--subscribe",
            "x",
            &ep,
        ]),
    );
    let (status, out, err) = run_with_stdin(
        "pgm-pub",
        Command::new(PUB).args(["--linger", "0.5", &ep]),
        "md.AAPL bid 189.20\nother dropped\nmd.MSFT ask wörld\r\nx\n",
    );
    assert!(status.success(), "{err}");
    assert_eq!(json(&out)["sent"], 4, "{out}");
    let (status, out, err) = sub.finish();
    assert!(status.success(), "{err}");
    assert_eq!(out, "md.AAPL bid 189.20\nmd.MSFT ask wörld\nx \n");
}

#[test]
fn no_subscription_delivers_nothing_and_says_so() {
    let ep = endpoint();
    let sub = Proc::spawn_listening(
        "pgm-sub",
        Command::new(SUB).args(["--verify", "--count", "1", "--timeout", "1.5", &ep]),
    );
    publish(&ep, &["t".to_owned()], 100, "20", "10M");
    let (status, out, err) = sub.finish();
    assert_eq!(status.code(), Some(1), "{out}\n{err}");
    let v = json(&out);
    assert_eq!(v["received"], 0, "{out}");
    assert_eq!(v["filtered_out"], 100, "{out}");
    assert!(err.contains("nothing will be delivered"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            PUB,
            &["--count", "1", "--size", "11", "epgm://lo;239.1.1.1:5000"],
            "at least 12 bytes",
        ),
        (
            PUB,
            &["--topic", "a", "epgm://lo;239.1.1.1:5000"],
            "--count",
        ),
        (
            PUB,
            &["--size", "9-3", "epgm://lo;239.1.1.1:5000"],
            "MIN is larger",
        ),
        (
            PUB,
            &["--max-payload", "2", "epgm://lo;239.1.1.1:5000"],
            "max_payload",
        ),
        (
            SUB,
            &["--timeout=-1", "epgm://lo;239.1.1.1:5000"],
            "--timeout",
        ),
        (SUB, &["udp://lo;239.1.1.1:5"], "unknown scheme"),
    ];
    for (bin, args, needle) in cases {
        let (code, err) = fails(bin, args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err:?}");
    }
}

/// SIGTERM (as a service manager sends it) ends an open-ended `pgm-sub --verify` with its
/// summary: the per-topic counts of what arrived, gap-free, exit status 0.
#[test]
fn sigterm_ends_a_verifying_subscriber_with_its_summary() {
    let ep = endpoint();
    let sub = Proc::spawn_listening(
        "pgm-sub",
        Command::new(SUB).args(["--verify", "--subscribe", "", "--timeout", "0", &ep]),
    );
    let topics = topics(4);
    publish(&ep, &topics, 400, "64", "10M");
    sub.signal(libc::SIGTERM);
    let (status, out, err) = sub.finish();
    assert!(status.success(), "{status}\n{err}");
    let v = json(&out);
    assert_eq!(v["received"], 400, "{out}\n{err}");
    assert_eq!(
        v["topics"].as_object().map(serde_json::Map::len),
        Some(4),
        "{out}"
    );
    for k in ["gaps", "corrupt", "unrecoverable"] {
        assert_eq!(v[k], 0, "{k}: {out}");
    }
    assert!(
        err.contains("pgm-sub: interrupted after 400 messages"),
        "{err}"
    );
}

/// SIGTERM on `pgm-pub --count` stops the publishing; the publisher still closes (FIN, linger)
/// and reports, and the subscriber gets exactly what was sent, gap-free. Exit status 1:
/// `--count` was not reached.
#[test]
fn sigterm_stops_a_publisher_which_still_closes_and_reports() {
    let ep = endpoint();
    let sub = Proc::spawn_listening(
        "pgm-sub",
        Command::new(SUB).args(["--verify", "--subscribe", "", "--timeout", "3", &ep]),
    );
    let publisher = Proc::spawn(
        "pgm-pub",
        Command::new(PUB).args([
            "--count",
            "100000000",
            "--msg-rate",
            "20000",
            "--topic",
            "a",
            "--topic",
            "b",
            "--linger",
            "1",
            &ep,
        ]),
    );
    let sent = interrupt_sender(publisher, libc::SIGTERM);
    assert_received_whole(sub, sent);
}
