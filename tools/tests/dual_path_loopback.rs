//! `pgm-send --second-path` → `pgm-recv --second-path` over EPGM on the loopback interface
//! (no root; IP_MULTICAST_IF 127.0.0.1): both paths on lo, 5 % simulated loss on each path of
//! the receiver, drawn independently. Every message arrives once; the second copies are
//! counted as duplicates, never delivered; NAKs only for what both paths lost. Ports: this
//! file's window is 2900..3800 (epgm/tests/dual_path.rs has 2000..2900).

mod common;

use std::process::Command;

use common::{json, Proc};

const SEND: &str = env!("CARGO_BIN_EXE_pgm-send");
const RECV: &str = env!("CARGO_BIN_EXE_pgm-recv");

#[test]
fn two_paths_with_independent_loss_deliver_once() {
    const N: u64 = 5000;
    let pid = std::process::id();
    let port = 2_900 + (pid % 890) as u16;
    let hi = (pid >> 8) as u8;
    let ep = format!("epgm://127.0.0.1;239.196.{hi}.1:{port}");
    let second = format!("127.0.0.1;239.196.{hi}.2:{port}");
    let recv = Proc::spawn_listening(
        "pgm-recv",
        Command::new(RECV).args([
            "--verify",
            "--count",
            &N.to_string(),
            "--timeout",
            "10",
            "--simulated-loss",
            "5",
            "--second-path",
            &second,
            &ep,
        ]),
    );
    let send = Proc::spawn(
        "pgm-send",
        Command::new(SEND).args([
            "--count",
            &N.to_string(),
            "--size",
            "200",
            "--rate",
            "10M",
            "--linger",
            "1",
            "--second-path",
            &second,
            &ep,
        ]),
    );
    let (status, out, err) = send.finish();
    assert!(status.success(), "pgm-send failed: {status}\n{err}");
    let s = json(&out);
    assert!(s["second_path_sent"].as_u64().unwrap_or(0) >= N, "{out}");
    assert_eq!(s["second_path_dropped"], 0, "{out}");
    let (status, out, err) = recv.finish();
    assert!(status.success(), "pgm-recv failed: {status}\n{out}\n{err}");
    let r = json(&out);
    eprintln!("pgm-recv: {out}");
    assert_eq!(r["received"], N, "{out}");
    assert_eq!(
        (r["gaps"].as_u64(), r["duplicates"].as_u64()),
        (Some(0), Some(0))
    );
    let count = |k: &str| r[k].as_u64().unwrap_or(0);
    // Most messages come twice: the second copy is discarded.
    assert!(count("duplicates_discarded") >= N * 8 / 10, "{out}");
    assert!(count("second_path_received") >= N * 8 / 10, "{out}");
    assert!(count("first_path_received") >= N * 8 / 10, "{out}");
    // Both paths lose about 0.25 % (12 of 5000); one path would NAK about 250.
    assert!(count("nak_sqns_sent") <= 60, "{out}");
}
