//! Slow consumers (docs/slow-consumers.md): one pgm-pub, a fast pgm-sub and a pgm-sub that
//! reads 10× slower than the feed (`--read-delay-us`), on the loopback interface of the root
//! namespace (no root needed; `IP_MULTICAST_IF` is 127.0.0.1, nothing leaves the host). Per
//! policy: the fast one verifies everything at the feed's rate; the slow one gets what its
//! policy promises, with exact accounting, and its buffer and memory stay within the bound.
//!
//! Port window 24000..25900 (this file only). The tests take turns (one lock): each runs three
//! processes on a machine that may have two cores.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::{
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex, PoisonError,
    },
    thread,
    time::Duration,
};

use common::{json, Proc};
use pgm::socket::Clock;

const PUB: &str = env!("CARGO_BIN_EXE_pgm-pub");
const SUB: &str = env!("CARGO_BIN_EXE_pgm-sub");

/// The feed: messages, per second, payload bytes, topics.
const COUNT: u64 = 30_000;
const RATE_MSGS: u64 = 10_000;
const SIZE: usize = 500;
const TOPICS: usize = 20;
/// The slow subscriber's pause per message: about a tenth of the feed's rate.
const READ_DELAY_US: u64 = 10 * 1_000_000 / RATE_MSGS;
/// The slow subscriber's bound.
const BOUND_MSGS: u64 = 2_000;
const BOUND_BYTES: u64 = 1 << 20;

static TURN: Mutex<()> = Mutex::new(());

fn endpoint(tag: u16) -> String {
    let pid = std::process::id();
    let port = 24_000 + (pid % 1_900) as u16 + tag;
    format!(
        "epgm://127.0.0.1;239.192.{}.{}:{port}",
        60 + tag,
        pid % 250 + 1
    )
}

fn topics() -> Vec<String> {
    (0..TOPICS).map(|i| format!("t{i:02}")).collect()
}

/// A verifying pgm-sub of everything with `extra` arguments; waits until it listens.
fn sub(ep: &str, name: &str, extra: &[&str]) -> Proc {
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["--verify", "--subscribe", "", ep]);
    Proc::spawn_listening(name, Command::new(SUB).args(&args))
}

/// Runs pgm-pub for the feed (round-robin over the topics, rate-limited).
fn publish(ep: &str) {
    // Bits per second for RATE_MSGS messages of SIZE plus framing and headers.
    let rate = (RATE_MSGS * (SIZE as u64 + 40) * 8).to_string();
    let mut args = vec![
        "--count".to_owned(),
        COUNT.to_string(),
        "--size".to_owned(),
        SIZE.to_string(),
        "--rate".to_owned(),
        rate,
        "--linger".to_owned(),
        "1".to_owned(),
    ];
    for t in topics() {
        args.extend(["--topic".to_owned(), t]);
    }
    args.push(ep.to_owned());
    let p = Proc::spawn("pgm-pub", Command::new(PUB).args(&args));
    let (status, out, err) = p.finish();
    assert!(status.success(), "pgm-pub failed: {status}\n{err}");
    assert_eq!(json(&out)["sent"], COUNT, "{out}");
}

/// The peak resident set of process `pid` in bytes (`VmHWM`); 0 once it has exited.
fn vm_hwm(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    kb * 1024
}

/// Samples the peak RSS of `pids` every 50 ms while `f` runs; returns the largest seen each.
fn sampling_hwm<const N: usize>(pids: [u32; N], f: impl FnOnce()) -> [u64; N] {
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut max = [0; N];
            while !done.load(Ordering::Relaxed) {
                for (m, &pid) in max.iter_mut().zip(&pids) {
                    *m = (*m).max(vm_hwm(pid));
                }
                thread::sleep(Duration::from_millis(50));
            }
            max
        });
        f();
        done.store(true, Ordering::Relaxed);
        sampler.join().unwrap()
    })
}

/// The summary of a finished pgm-sub that must have exited 0.
fn summary(p: Proc) -> serde_json::Value {
    let name = p.name.clone();
    let (status, out, err) = p.finish();
    assert!(status.success(), "{name} failed: {status}\n{out}\n{err}");
    json(&out)
}

/// The fast subscriber: everything, gap-free, at about the feed's rate.
fn check_fast(v: &serde_json::Value) {
    assert_eq!(v["received"], COUNT, "fast: {v}");
    for k in [
        "gaps",
        "duplicates",
        "corrupt",
        "unrecoverable",
        "policy_dropped",
    ] {
        assert_eq!(v[k], 0, "fast: {k}: {v}");
    }
    let rate = v["msgs_per_s"].as_f64().unwrap();
    assert!(
        rate > RATE_MSGS as f64 * 0.7,
        "fast: not at the feed's rate: {v}"
    );
}

/// Runs the feed with a fast subscriber and a slow one under `policy`; returns both
/// summaries and the slow one's and the fast one's peak RSS.
fn run(tag: u16, policy: &[&str]) -> (serde_json::Value, serde_json::Value, u64, u64) {
    let ep = endpoint(tag);
    let fast = sub(
        &ep,
        "fast",
        &["--count", &COUNT.to_string(), "--timeout", "10"],
    );
    let delay = READ_DELAY_US.to_string();
    let mut slow_args = vec!["--read-delay-us", &delay, "--timeout", "2"];
    slow_args.extend_from_slice(policy);
    let slow = sub(&ep, "slow", &slow_args);
    // Sampled until the feed is over: the slow one's buffer is at its fullest then.
    let [fast_hwm, slow_hwm] = sampling_hwm([fast.pid(), slow.pid()], || publish(&ep));
    (summary(fast), summary(slow), fast_hwm, slow_hwm)
}

/// The slow subscriber really was about 10× slower than the feed.
fn check_slow_rate(v: &serde_json::Value) {
    let rate = v["msgs_per_s"].as_f64().unwrap();
    assert!(rate < RATE_MSGS as f64 / 4.0, "slow: not slow: {v}");
}

/// Its buffer stayed within the bound, and so did its memory: a peak RSS no more than the
/// bound (plus slack for allocator and thread stacks) above the fast subscriber's, where
/// holding the whole feed would take about 20 MB.
fn check_memory(v: &serde_json::Value, fast_hwm: u64, slow_hwm: u64) {
    assert!(v["held_max"].as_u64().unwrap() <= BOUND_MSGS, "{v}");
    assert!(v["held_max_bytes"].as_u64().unwrap() <= BOUND_BYTES, "{v}");
    let slack = 6 << 20;
    assert!(
        slow_hwm <= fast_hwm + BOUND_BYTES + slack,
        "slow subscriber's peak RSS {slow_hwm} vs the fast one's {fast_hwm}: {v}"
    );
    eprintln!("peak RSS: fast {fast_hwm} B, slow {slow_hwm} B; {v}");
}

/// drop-oldest: the slow one gets the newest messages; every skip in its per-topic
/// sequences was announced, and announced drops + delivered = published, exactly.
#[test]
fn drop_oldest_accounts_for_every_message() {
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let bound = [BOUND_MSGS.to_string(), format!("{BOUND_BYTES}B")];
    let (fast, slow, fast_hwm, slow_hwm) = run(
        0,
        &[
            "--slow-consumer",
            "drop-oldest",
            "--recv-bound",
            &bound[0],
            "--recv-bound",
            &bound[1],
        ],
    );
    check_fast(&fast);
    for k in [
        "gaps",
        "duplicates",
        "corrupt",
        "unrecoverable",
        "conflated",
    ] {
        assert_eq!(slow[k], 0, "slow: {k}: {slow}");
    }
    let (received, dropped) = (
        slow["received"].as_u64().unwrap(),
        slow["policy_dropped"].as_u64().unwrap(),
    );
    assert!(dropped > COUNT / 2, "slow: it kept up? {slow}");
    assert_eq!(received + dropped, COUNT, "slow: accounting: {slow}");
    // The last messages published are the ones held at the end: delivered.
    let per_topic = COUNT / TOPICS as u64;
    for (t, last) in slow["last_seq"].as_object().unwrap() {
        assert_eq!(last.as_u64(), Some(per_topic - 1), "{t}: {slow}");
    }
    check_slow_rate(&slow);
    check_memory(&slow, fast_hwm, slow_hwm);
}

/// conflate: per topic the slow one's sequence goes up and ends at the last message
/// published; delivered + conflated = published (20 topics: none evicted).
#[test]
fn conflate_delivers_the_last_of_every_topic() {
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let bound = BOUND_MSGS.to_string();
    let (fast, slow, fast_hwm, slow_hwm) =
        run(1, &["--slow-consumer", "conflate", "--recv-bound", &bound]);
    check_fast(&fast);
    for k in [
        "gaps",
        "duplicates",
        "corrupt",
        "unrecoverable",
        "policy_dropped",
    ] {
        assert_eq!(slow[k], 0, "slow: {k}: {slow}");
    }
    let (received, conflated) = (
        slow["received"].as_u64().unwrap(),
        slow["conflated"].as_u64().unwrap(),
    );
    assert!(conflated > COUNT / 2, "slow: it kept up? {slow}");
    assert_eq!(received + conflated, COUNT, "slow: accounting: {slow}");
    let last = slow["last_seq"].as_object().unwrap();
    assert_eq!(last.len(), TOPICS, "{slow}");
    let per_topic = COUNT / TOPICS as u64;
    for (t, n) in last {
        assert_eq!(n.as_u64(), Some(per_topic - 1), "{t}: {slow}");
    }
    // One message per topic at most is held.
    assert!(
        slow["held_max"].as_u64().unwrap() <= TOPICS as u64,
        "{slow}"
    );
    check_slow_rate(&slow);
    check_memory(&slow, fast_hwm, slow_hwm);
}

/// block (the default): the slow one back-pressures its own transport only: it gets its
/// first messages in order and gap-free at its own pace, while the fast one gets everything
/// at the feed's rate.
#[test]
fn block_keeps_the_fast_subscriber_at_full_rate() {
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let ep = endpoint(2);
    let fast = sub(
        &ep,
        "fast",
        &["--count", &COUNT.to_string(), "--timeout", "10"],
    );
    let delay = READ_DELAY_US.to_string();
    let slow = sub(
        &ep,
        "slow",
        &[
            "--read-delay-us",
            &delay,
            "--count",
            "2000",
            "--timeout",
            "10",
        ],
    );
    let clock = Clock::new();
    let publisher = thread::spawn({
        let ep = ep.clone();
        move || publish(&ep)
    });
    check_fast(&summary(fast));
    let slow = summary(slow);
    publisher.join().unwrap();
    assert_eq!(slow["received"], 2000, "{slow}");
    for k in ["gaps", "duplicates", "corrupt", "unrecoverable"] {
        assert_eq!(slow[k], 0, "slow: {k}: {slow}");
    }
    check_slow_rate(&slow);
    assert!(clock.elapsed() < Duration::from_secs(20));
}
