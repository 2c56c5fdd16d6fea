//! pgm-send → pgm-recv over EPGM on the loopback interface of the root namespace (no root
//! needed). Every endpoint is `epgm://127.0.0.1;239.192.x.y:PORT` with a random group and port
//! per test: IP_MULTICAST_IF is 127.0.0.1 and loop is on, so nothing leaves through a real
//! interface. Every child process is killed when its guard drops, and every wait is bounded.

mod common;

use std::process::Command;

use common::{
    assert_received_whole, endpoint, fails, interrupt_sender, json, run_with_stdin, Proc,
};

const SEND: &str = env!("CARGO_BIN_EXE_pgm-send");
const RECV: &str = env!("CARGO_BIN_EXE_pgm-recv");

fn recv_verify(ep: &str, count: u64) -> Proc {
    Proc::spawn_listening(
        "pgm-recv",
        Command::new(RECV).args([
            "--verify",
            "--count",
            &count.to_string(),
            "--timeout",
            "10",
            ep,
        ]),
    )
}

/// Two verifying receivers, one sender of `count` test messages of `size` bytes.
fn transfer(count: u64, size: usize, rate: &str) {
    transfer_with(count, size, rate, &[]);
}

/// [`transfer`] with more `pgm-send` arguments.
fn transfer_with(count: u64, size: usize, rate: &str, extra: &[&str]) {
    let ep = endpoint();
    let receivers = [recv_verify(&ep, count), recv_verify(&ep, count)];
    let sender = Proc::spawn(
        "pgm-send",
        Command::new(SEND)
            .args([
                "--count",
                &count.to_string(),
                "--size",
                &size.to_string(),
                "--rate",
                rate,
                "--linger",
                "1",
            ])
            .args(extra)
            .arg(&ep),
    );
    let (status, out, err) = sender.finish();
    assert!(status.success(), "pgm-send failed: {status}\n{err}");
    let s = json(&out);
    assert_eq!(s["sent"], count, "{out}");
    assert_eq!(s["bytes"], count * size as u64, "{out}");
    for r in receivers {
        let (status, out, err) = r.finish();
        let v = json(&out);
        assert!(status.success(), "pgm-recv failed: {status}\n{out}\n{err}");
        assert_eq!(v["received"], count, "{out}");
        assert_eq!(v["gaps"], 0, "{out}");
        assert_eq!(v["duplicates"], 0, "{out}");
        assert_eq!(v["corrupt"], 0, "{out}");
        assert_eq!(v["unrecoverable"], 0, "{out}");
        assert_eq!(v["first_seq"], 0, "{out}");
        assert_eq!(v["last_seq"], count - 1, "{out}");
        assert_eq!(v["senders"], 1, "{out}");
    }
}

#[test]
fn small_messages_reach_two_receivers_complete() {
    transfer(20_000, 200, "200M");
}

#[test]
fn fragmented_messages_reach_two_receivers_complete() {
    transfer(200, 20 * 1024, "200M");
}

#[test]
fn unlimited_rate_small_messages_are_complete() {
    // Unpaced: the sender is the bottleneck for small messages, and any kernel drop at the
    // receivers must be repaired.
    transfer(20_000, 200, "unlimited");
}

#[test]
fn without_gso_the_transfer_is_the_same() {
    transfer_with(20_000, 200, "unlimited", &["--no-gso"]);
}

#[test]
fn stdin_lines_are_printed_by_the_receiver() {
    let ep = endpoint();
    let r = Proc::spawn_listening(
        "pgm-recv",
        Command::new(RECV).args(["--count", "3", "--timeout", "10", &ep]),
    );
    let (status, out, err) = run_with_stdin(
        "pgm-send",
        Command::new(SEND).args(["--linger", "0.5", &ep]),
        "hello\nwörld\r\n\nlast line\n",
    );
    assert!(status.success(), "{err}");
    assert_eq!(json(&out)["sent"], 4);
    let (status, out, err) = r.finish();
    assert!(status.success(), "{err}");
    assert_eq!(out, "hello\nwörld\n\n");
}

#[test]
fn a_restarted_sender_is_a_new_session_not_duplicates() {
    let ep = endpoint();
    let r = recv_verify(&ep, 2000);
    for _ in 0..2 {
        let s = Proc::spawn(
            "pgm-send",
            Command::new(SEND).args(["--count", "1000", "--size", "100", "--linger", "0.2", &ep]),
        );
        let (status, _, err) = s.finish();
        assert!(status.success(), "{err}");
    }
    let (status, out, err) = r.finish();
    assert!(status.success(), "{out}\n{err}");
    let v = json(&out);
    assert_eq!(v["received"], 2000, "{out}");
    assert_eq!(v["duplicates"], 0, "{out}");
    assert_eq!(v["gaps"], 0, "{out}");
    assert_eq!(v["senders"], 2, "{out}");
}

#[test]
fn receiver_times_out_short_with_status_1() {
    let ep = endpoint();
    let r = Proc::spawn(
        "pgm-recv",
        Command::new(RECV).args(["--verify", "--count", "5", "--timeout", "0.3", &ep]),
    );
    let (status, out, _) = r.finish();
    assert_eq!(status.code(), Some(1));
    assert_eq!(json(&out)["received"], 0);
}

#[test]
fn usage_errors_exit_2_and_name_the_problem() {
    let cases: &[(&str, &[&str], &str)] = &[
        (SEND, &["udp://lo;239.1.1.1:5"], "unknown scheme"),
        (RECV, &["epgm://lo:239.1.1.1:5"], "missing ';'"),
        (SEND, &["epgm://lo;239.1.1.1:99999"], "bad port"),
        (RECV, &["epgm://lo;10.1.1.1:5000"], "not a multicast group"),
        (
            SEND,
            &["epgm://nosuchif0;239.1.1.1:5000"],
            "unknown interface",
        ),
        (SEND, &["--bogus", "epgm://lo;239.1.1.1:5000"], "--bogus"),
        (
            RECV,
            &["--window", "7 parsecs", "epgm://lo;239.1.1.1:5000"],
            "bad window",
        ),
        (
            SEND,
            &["--rate", "fast", "epgm://lo;239.1.1.1:5000"],
            "bad rate",
        ),
        (
            SEND,
            &["--count", "1", "--size", "11", "epgm://lo;239.1.1.1:5000"],
            "at least 12 bytes",
        ),
        (SEND, &[], "ENDPOINT"),
    ];
    for (bin, args, needle) in cases {
        let (code, err) = fails(bin, args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err:?}");
    }
}

/// Raw PGM without CAP_NET_RAW: as root, drop the capability with setpriv; otherwise run as is.
#[test]
fn raw_pgm_without_privilege_says_so() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    let ep = endpoint().replacen("epgm://", "pgm://", 1);
    let (code, err) = if root {
        if Command::new("setpriv").arg("--version").output().is_err() {
            eprintln!("setpriv not installed; skipping");
            return;
        }
        fails(
            "setpriv",
            &[
                "--bounding-set",
                "-net_raw",
                "--inh-caps",
                "-net_raw",
                SEND,
                "--linger",
                "0",
                &ep,
            ],
        )
    } else {
        fails(SEND, &["--linger", "0", &ep])
    };
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("raw PGM needs root or CAP_NET_RAW; use epgm:// instead"),
        "{err}"
    );
}

/// Ctrl-C (SIGINT) and SIGTERM end an open-ended `pgm-recv --verify` (`--timeout 0`) with its
/// summary: what arrived counted and checked, exit status 0. With `--count` not reached, the
/// run is short: status 1, and stderr says it was interrupted, not timed out.
#[test]
fn ctrl_c_and_sigterm_end_a_verifying_receiver_with_its_summary() {
    for (sig, count) in [
        (libc::SIGINT, None),
        (libc::SIGTERM, None),
        (libc::SIGINT, Some(900)),
    ] {
        let ep = endpoint();
        let mut args = vec!["--verify", "--timeout", "0"];
        let count_arg = count.map(|c: u64| c.to_string());
        if let Some(c) = &count_arg {
            args.extend(["--count", c]);
        }
        args.push(&ep);
        let rx = Proc::spawn_listening("pgm-recv", Command::new(RECV).args(&args));
        let sender = Proc::spawn(
            "pgm-send",
            Command::new(SEND).args(["--count", "500", "--linger", "1", &ep]),
        );
        let (status, out, err) = sender.finish();
        assert!(status.success(), "pgm-send failed: {status}\n{out}\n{err}");
        rx.signal(sig);
        let (status, out, err) = rx.finish();
        let v = json(&out);
        assert_eq!(v["received"], 500, "signal {sig}: {out}\n{err}");
        for k in ["gaps", "corrupt", "unrecoverable"] {
            assert_eq!(v[k], 0, "signal {sig}: {k}: {out}");
        }
        match count {
            None => {
                assert!(status.success(), "signal {sig}: {status}\n{err}");
                assert!(
                    err.contains("pgm-recv: interrupted after 500 messages"),
                    "{err}"
                );
            }
            Some(c) => {
                assert_eq!(status.code(), Some(1), "signal {sig}: {err}");
                let line = format!("pgm-recv: interrupted with 500 of {c} messages");
                assert!(err.contains(&line), "{err}");
            }
        }
    }
}

/// Ctrl-C on `pgm-send --count` stops the sending, and the closing still happens: what was
/// sent reaches the receiver whole (FIN, linger for repairs), the JSON line says how much, and
/// the exit status is 1 because `--count` was not reached.
#[test]
fn ctrl_c_stops_a_sender_which_still_closes_and_reports() {
    let ep = endpoint();
    let rx = Proc::spawn_listening(
        "pgm-recv",
        Command::new(RECV).args(["--verify", "--timeout", "3", &ep]),
    );
    let sender = Proc::spawn(
        "pgm-send",
        Command::new(SEND).args([
            "--count",
            "100000000",
            "--size",
            "64",
            "--rate",
            "20M",
            "--linger",
            "1",
            &ep,
        ]),
    );
    let sent = interrupt_sender(sender, libc::SIGINT);
    assert_received_whole(rx, sent);
}
