//! Runs the examples on the loopback: the pub/sub pair (`pubsub/examples`) and the sans-IO
//! engine over the application's own sockets (`pgm/examples/bring_your_own_io.rs`).
//!
//! `cargo test` builds every example before it runs tests; run alone (`--test examples`),
//! this test builds the ones it needs.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Command, Stdio},
    sync::Mutex,
};

/// Examples build one at a time (a nested cargo per test would fight over the lock).
static BUILD: Mutex<()> = Mutex::new(());

/// The path of example `name` of package `package`, built if `cargo test` did not.
fn example(package: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/examples-HASH → target/<profile>/examples/NAME
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join("examples").join(name);
    let _guard = BUILD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !path.is_file() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", package, "--example", name]);
        if dir.ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build");
        assert!(status.success(), "cargo build --example {name}: {status}");
    }
    path
}

#[test]
fn the_subscriber_example_gets_what_the_publisher_example_sends() {
    subscriber_example_gets_the_publishers_quotes("subscriber", 211);
}

#[test]
fn the_tokio_subscriber_example_gets_what_the_publisher_example_sends() {
    subscriber_example_gets_the_publishers_quotes("tokio_subscriber", 212);
}

/// Runs subscriber example `name` for md.AAPL, then the publisher example.
fn subscriber_example_gets_the_publishers_quotes(name: &str, group: u8) {
    // A group and port of this test only (tests of other crates use 239.192.0.0/16 too).
    let pid = std::process::id();
    let endpoint = format!(
        "epgm://lo;239.192.{group}.{}:{}",
        pid % 200 + 1,
        24_000 + pid % 1_900
    );
    let mut sub = Command::new(example("pubsub", name))
        .args([&endpoint, "md.AAPL", "500"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the subscriber");
    let mut lines = BufReader::new(sub.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a first line").expect("utf-8");
    assert_eq!(first, "subscribed");

    let publisher = Command::new(example("pubsub", "publisher"))
        .args([&endpoint, "1000"])
        .output()
        .expect("running the publisher");
    assert!(publisher.status.success(), "{publisher:?}");

    let lines: Vec<String> = lines.map(|l| l.expect("utf-8")).collect();
    let status = sub.wait().expect("subscriber exit");
    assert!(status.success(), "subscriber: {status}");
    assert_eq!(lines.last().map(String::as_str), Some("received 500"));
    // Every AAPL quote (the even numbers) in order, and nothing else.
    for (k, line) in lines[..500].iter().enumerate() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields[1], "md.AAPL", "{line}");
        assert_eq!(fields[2], (2 * k).to_string(), "{line}");
    }
}

#[test]
fn the_sans_io_engine_runs_over_the_applications_own_sockets() {
    let out = Command::new(example("pgm", "bring_your_own_io"))
        .arg("20000")
        .output()
        .expect("running bring_your_own_io");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("delivered 20000 of 20000 in order, 0 lost"),
        "{stdout}"
    );
}
