//! Late join with history (docs/late-join.md) with the tools, on the loopback interface of the
//! root namespace (no root needed; `IP_MULTICAST_IF` is 127.0.0.1, nothing leaves the host):
//! a `pgm-pub --history 5s` feed of 4 s, a live `pgm-sub --verify`, and a second one that
//! joins 2 s in with `--late-join history` (every message from the start, in order) or
//! `--late-join current` (the newest message per topic, then a gap-free continuation).
//!
//! Port window 4000..5900 (this file only). The tests take turns (one lock).

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::{
    process::Command,
    sync::{Mutex, PoisonError},
    thread,
    time::Duration,
};

use common::{json, Proc};

const PUB: &str = env!("CARGO_BIN_EXE_pgm-pub");
const SUB: &str = env!("CARGO_BIN_EXE_pgm-sub");

/// The feed: 8000 messages of 64 bytes at 2000/s over 4 topics.
const COUNT: u64 = 8_000;
const RATE_MSGS: u64 = 2_000;
const SIZE: u64 = 64;
const TOPICS: u64 = 4;

static TURN: Mutex<()> = Mutex::new(());

fn endpoint(tag: u16) -> String {
    let pid = std::process::id();
    let port = 4_000 + (pid % 1_900) as u16 + tag;
    format!(
        "epgm://127.0.0.1;239.192.{}.{}:{port}",
        80 + tag,
        pid % 250 + 1
    )
}

/// A verifying pgm-sub of everything with `extra` arguments; waits until it listens.
fn sub(ep: &str, name: &str, extra: &[&str]) -> Proc {
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["--verify", "--subscribe", "", ep]);
    Proc::spawn_listening(name, Command::new(SUB).args(&args))
}

/// Starts pgm-pub with a 5 s history.
fn publish(ep: &str) -> Proc {
    // Paced at 2000 messages/s; the rate limit (10 Mbit/s, 5× the feed) leaves the repairs
    // their share.
    let pace = RATE_MSGS.to_string();
    let mut args = vec![
        "--msg-rate".to_owned(),
        pace,
        "--count".to_owned(),
        COUNT.to_string(),
        "--size".to_owned(),
        SIZE.to_string(),
        "--rate".to_owned(),
        "10M".to_owned(),
        "--history".to_owned(),
        "5s".to_owned(),
        "--linger".to_owned(),
        "3".to_owned(),
    ];
    for t in 0..TOPICS {
        args.extend(["--topic".to_owned(), format!("t{t}")]);
    }
    args.push(ep.to_owned());
    Proc::spawn("pgm-pub", Command::new(PUB).args(&args))
}

fn summary(p: Proc) -> serde_json::Value {
    let name = p.name.clone();
    let (status, out, err) = p.finish();
    assert!(status.success(), "{name} failed: {status}\n{out}\n{err}");
    json(&out)
}

/// Runs the feed with a live subscriber and one that joins 2 s in with `--late-join mode`;
/// returns the live and the late summaries.
fn run(tag: u16, mode: &str, late_extra: &[&str]) -> (serde_json::Value, serde_json::Value) {
    let ep = endpoint(tag);
    let count = COUNT.to_string();
    let live = sub(&ep, "live", &["--count", &count, "--timeout", "10"]);
    let publisher = publish(&ep);
    thread::sleep(Duration::from_secs(2));
    let mut args = vec!["--late-join", mode, "--timeout", "3"];
    args.extend_from_slice(late_extra);
    let late = sub(&ep, "late", &args);
    let p = summary(publisher);
    assert_eq!(p["sent"], COUNT, "{p}");
    (summary(live), summary(late))
}

fn check_live(v: &serde_json::Value) {
    assert_eq!(v["received"], COUNT, "live: {v}");
    for k in ["gaps", "duplicates", "corrupt", "unrecoverable"] {
        assert_eq!(v[k], 0, "live: {k}: {v}");
    }
}

#[test]
fn a_history_join_gets_every_message_from_the_start() {
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let count = COUNT.to_string();
    let (live, late) = run(0, "history", &["--count", &count]);
    check_live(&live);
    eprintln!("late (history): {late}");
    assert_eq!(late["received"], COUNT, "late: {late}");
    // --late-join history makes --verify require every topic from sequence 0.
    for k in ["gaps", "duplicates", "corrupt", "unrecoverable"] {
        assert_eq!(late[k], 0, "late: {k}: {late}");
    }
    assert_eq!(late["caught_up"], 1, "{late}");
    for t in 0..TOPICS {
        assert_eq!(late["first_seq"][format!("t{t}")], 0, "{late}");
    }
}

#[test]
fn a_current_state_join_gets_the_last_values_then_everything() {
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let (live, late) = run(1, "current", &[]);
    check_live(&live);
    eprintln!("late (current): {late}");
    for k in ["gaps", "duplicates", "corrupt", "unrecoverable"] {
        assert_eq!(late[k], 0, "late: {k}: {late}");
    }
    assert_eq!(late["caught_up"], 1, "{late}");
    let per_topic = COUNT / TOPICS;
    // Round-robin publishing: at any cut, the newest values of the topics are consecutive
    // messages, so their sequence numbers differ by at most one.
    let firsts: Vec<u64> = (0..TOPICS)
        .map(|t| late["first_seq"][format!("t{t}")].as_u64().unwrap())
        .collect();
    let (lo, hi) = (firsts.iter().min().unwrap(), firsts.iter().max().unwrap());
    assert!(hi - lo <= 1, "not one cut's newest values: {firsts:?}");
    for t in 0..TOPICS {
        let topic = format!("t{t}");
        // Joined 2 s into the feed: the topic's first message is its newest value then
        // (about half-way), and every one after it came, in order.
        let first = late["first_seq"][&topic].as_u64().unwrap();
        assert!(
            (per_topic / 4..per_topic * 3 / 4).contains(&first),
            "{topic} starts at {first}: {late}"
        );
        assert_eq!(
            late["topics"][&topic].as_u64().unwrap(),
            per_topic - first,
            "{topic}: {late}"
        );
    }
}
