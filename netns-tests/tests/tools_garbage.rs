//! Hardening: garbage and forged packets during verified runs of our tools. A sprayer
//! (`pgm-spray`, `netns_tests::spray`) on a third namespace host listens to the group to learn
//! the session (TSI, lead, trail, SPM sqn) and sprays, raw (IP protocol 113) and UDP, to the
//! group and unicast to the receivers and the sender.
//!
//! What a hardened receiver/sender can survive, and what these tests therefore demand:
//!
//! - `garbage_*` — everything that is *detectably* invalid or cannot change the session's
//!   data: random bytes; truncated packets; ODATA of the session's TSI for sqns just ahead of
//!   the source with a wrong or absent checksum; packets with a valid checksum but a broken
//!   option chain or length field (each rejected by our own `pgm::wire` parser before it is
//!   sent); forged NAKs to the sender sweeping every sqn from 0 to past its lead (plus NAKs out
//!   of the window, with a wrong NLA, group or GSI, and SPMRs); SPMs with huge trail/lead, each
//!   from a fresh foreign TSI (each is seen once, so it announces nothing a receiver could
//!   miss). Demanded: complete delivery at every receiver (0..N-1, no gaps, corruption or
//!   unrecoverable loss, exit 0), `parse_errors` > 0 and `checksum_errors` > 0 in every
//!   receiver's JSON, no crash, a sender that sent everything and counted the forged NAKs,
//!   and peak RSS below 256 MiB. The bridge capture must show tshark finding the bad checksums
//!   (proves the capture check of the other tests is not vacuous).
//!
//! - `forged_spm_own_tsi_jump_raw` — SPMs carrying the sender's own TSI and path NLA, a newer
//!   SPM sqn, and trail = lead = real lead + 2 000, sent once a third into the run. PGM has no
//!   authentication: this is indistinguishable from the source skipping 2 000 sqns, so a
//!   receiver may legitimately give those up. Demanded: no crash; nothing corrupt; delivery
//!   continues to the end (`last_seq` = N-1); anything missing is *reported* (unrecoverable or
//!   gaps > 0, never silent), and at most the forged jump plus a margin is missing.
//!
//! - `forged_spm_huge_epgm` — SPMs of the sender's own TSI placing the session 2^30 ahead, and
//!   SPMs of one foreign TSI whose lead jumps by up to 2^31 each time. A receiver that believes
//!   the first kind can lose everything after it (the real data is then behind its trail), so
//!   delivery cannot be demanded. Demanded: no crash, a normal exit on its own `--timeout` with
//!   a JSON summary, nothing corrupt, some messages received, peak RSS below 256 MiB (huge
//!   leads must not size any buffer), and a sender that is unaffected.
//!
//! Needs root; prints SKIPPED and passes otherwise.

use std::time::Duration;

mod support;

use netns_tests::lan::{Capture, Lan};
use netns_tests::proc::Proc;
use netns_tests::tools::{
    assert_no_problems, begin_test, capture_for_tshark, complete_problems, spawn_recv_joined,
    spawn_send, stop, wait_all, wait_one, Encap, Finished, Iface, RecvOpts, SendOpts,
};
use netns_tests::tshark::check_capture;
use netns_tests::{named_tests, now};
use support::sent_kind;

const PORT: u16 = 7900;
const LIMIT: Duration = Duration::from_secs(50);
/// 20 000 × 200 B at 16 Mbit/s: ≈ 2.5 s of data.
const N: u64 = 20_000;
const RATE: &str = "16M";
const MAX_RSS_KIB: u64 = 256 * 1024;

/// Starts `pgm-spray` on `host` against the session of host `source`.
fn spawn_spray(
    lan: &Lan,
    host: usize,
    source: usize,
    receivers: &[usize],
    encap: Encap,
    extra: &[&str],
) -> Proc {
    support::spawn_spray(lan, host, source, receivers, (encap, PORT), LIMIT, extra)
}

/// Crashes, and a peak RSS above [`MAX_RSS_KIB`].
fn crash_problems(p: &Finished) -> Vec<String> {
    support::crash_problems(p, MAX_RSS_KIB)
}

/// Starts `pgm-recv --verify` (`opts`) on host `h` and waits until it has joined the group.
fn start_recv(lan: &Lan, h: usize, encap: Encap, opts: &RecvOpts) -> Proc {
    spawn_recv_joined(lan.host(h), encap, Iface::Addr, PORT, opts).expect("starting pgm-recv")
}

/// Starts the sender of every run: `pgm-send` of N messages on host 1.
fn start_send(lan: &Lan, encap: Encap) -> Proc {
    spawn_send(
        lan.host(0),
        encap,
        Iface::Addr,
        PORT,
        &SendOpts::new(N, 200, RATE),
    )
    .expect("spawning pgm-send")
}

fn garbage(name: &str, encap: Encap) {
    let Some(_serial) = begin_test(name) else {
        return;
    };
    // h1 sends, h2 and h3 receive (1 % ingress loss, so repair runs amid the garbage), h4 sprays.
    let lan = Lan::new(4).expect("building the LAN");
    lan.set_loss(1, 10, 0).expect("loss");
    lan.set_loss(2, 10, 0).expect("loss");
    let mut cap = capture_for_tshark(&lan, name, "ip proto 113 or udp");
    let start = now();
    let receivers: Vec<Proc> = [1, 2]
        .into_iter()
        .map(|h| start_recv(&lan, h, encap, &RecvOpts::new(Some(N), 5.0)))
        .collect();
    let spray = spawn_spray(
        &lan,
        3,
        0,
        &[1, 2],
        encap,
        &[
            "--kinds",
            "random,truncated,badsum,badopts,nak,spm-foreign",
            "--pps",
            "150",
        ],
    );
    let tx = start_send(&lan, encap);

    let rx = wait_all(receivers, start + LIMIT);
    let tx = wait_one(tx, now() + Duration::from_secs(10));
    let spray = stop(spray, Duration::from_secs(5));
    eprintln!(
        "{name}: {:.2} s\n  sender: {} (peak RSS {} KiB)\n  spray:  {}",
        start.elapsed().as_secs_f64(),
        tx.json,
        tx.peak_rss_kib,
        spray.json
    );
    for r in &rx {
        eprintln!("  {}: {} (peak RSS {} KiB)", r.name, r.json, r.peak_rss_kib);
    }

    let mut problems: Vec<String> = rx.iter().flat_map(garbage_receiver_problems).collect();
    problems.extend(crash_problems(&tx));
    problems.extend(tx.sent_problem("sender", N));
    let forged_naks = sent_kind(&spray, "nak");
    if tx.u("naks_received") == 0 {
        problems.push(format!(
            "sender: naks_received = 0 although {forged_naks} forged NAKs were sent"
        ));
    }
    problems.extend(spray_problems(&spray));
    if let Some(c) = cap.as_mut() {
        problems.extend(garbage_capture_problems(c, name));
        if problems.is_empty() {
            let _ = std::fs::remove_file(c.path());
        }
    }
    let mut all: Vec<&Finished> = vec![&tx, &spray];
    all.extend(rx.iter());
    assert_no_problems(name, &problems, &all);
}

/// A receiver of a garbage run: complete delivery, no crash, and rejects counted.
fn garbage_receiver_problems(r: &Finished) -> Vec<String> {
    let mut problems: Vec<String> = complete_problems(r, N)
        .into_iter()
        .map(|p| format!("{}: {p}", r.name))
        .collect();
    problems.extend(crash_problems(r));
    for key in ["parse_errors", "checksum_errors"] {
        match r.get(key) {
            Some(v) if v > 0 => {}
            v => problems.push(format!("{}: {key} = {v:?}, want > 0", r.name)),
        }
    }
    problems
}

/// The spray itself must have happened, against the right session.
fn spray_problems(spray: &Finished) -> Vec<String> {
    let mut problems = Vec::new();
    if !matches!(spray.json.get("session"), Some(v) if !v.is_null()) {
        problems.push("pgm-spray never learned the session".into());
    }
    for kind in [
        "random",
        "truncated",
        "badsum",
        "badopts",
        "nak",
        "spm-foreign",
    ] {
        if sent_kind(spray, kind) == 0 {
            problems.push(format!("pgm-spray sent no {kind} packets"));
        }
    }
    if spray.u("skipped_parseable") > 0 {
        problems.push(format!(
            "pgm-spray built {} 'bad options' packets our parser accepts",
            spray.u("skipped_parseable")
        ));
    }
    problems
}

/// The capture of a garbage run must show tshark flagging the garbage (the capture check of
/// the other tests would catch such packets).
fn garbage_capture_problems(c: &mut Capture, name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let _ = c.stop();
    match check_capture(c.path(), PORT) {
        Ok(rep) => {
            eprintln!("{name}: capture: {}", rep.describe());
            if rep.bad_checksum.is_empty() {
                problems.push("tshark found no bad checksum in a capture of badsum spray".into());
            }
            if rep.malformed.is_empty() && rep.expert.is_empty() && rep.undissected.is_empty() {
                problems.push("tshark found nothing malformed in a capture of garbage".into());
            }
        }
        Err(e) => problems.push(format!("tshark: {e}")),
    }
    problems
}

named_tests! {
    garbage_raw => garbage(Encap::Raw);
    garbage_epgm => garbage(Encap::Udp);
}

/// Runs sender (h1) → one receiver (h2, `--timeout 4`, no `--count`) with a sprayer on h3.
fn forged_run(name: &str, encap: Encap, spray_args: &[&str]) -> (Finished, Finished, Finished) {
    let lan = Lan::new(3).expect("building the LAN");
    let start = now();
    let rx = start_recv(&lan, 1, encap, &RecvOpts::new(None, 4.0));
    let spray = spawn_spray(&lan, 2, 0, &[1], encap, spray_args);
    let tx = start_send(&lan, encap);
    let rx = wait_one(rx, start + LIMIT);
    let tx = wait_one(tx, now() + Duration::from_secs(10));
    let spray = stop(spray, Duration::from_secs(5));
    eprintln!(
        "{name}: {:.2} s\n  sender:   {}\n  receiver: {} (peak RSS {} KiB)\n  spray:    {}",
        start.elapsed().as_secs_f64(),
        tx.json,
        rx.describe(),
        rx.peak_rss_kib,
        spray.json
    );
    (tx, rx, spray)
}

/// The forged SPM jump of `forged_spm_own_tsi_jump_raw`, in sqns.
const JUMP: u64 = 2000;

#[test]
fn forged_spm_own_tsi_jump_raw() {
    let name = "forged_spm_own_tsi_jump_raw";
    let Some(_serial) = begin_test(name) else {
        return;
    };
    let jump = format!("{}:{JUMP}", N / 3);
    let (tx, rx, spray) = forged_run(name, Encap::Raw, &["--kinds", "", "--own-jump", &jump]);

    let mut problems = crash_problems(&rx);
    problems.extend(crash_problems(&tx));
    if !rx.exited_normally() {
        problems.push("receiver did not exit by itself".into());
    }
    if spray.json.get("own_jump_done") != Some(&serde_json::Value::Bool(true)) {
        problems.push("pgm-spray never sent the forged SPMs".into());
    }
    if rx.u("corrupt") != 0 {
        problems.push(format!("receiver: corrupt = {}", rx.u("corrupt")));
    }
    if rx.get("last_seq") != Some(N - 1) {
        problems.push(format!(
            "receiver: last_seq = {:?}, want {} (delivery must go on after the forged jump)",
            rx.get("last_seq"),
            N - 1
        ));
    }
    let received = rx.u("received");
    if received < N {
        if rx.u("unrecoverable") == 0 && rx.u("gaps") == 0 {
            problems.push(format!(
                "receiver: received {received} of {N} but reported no loss (silent loss)"
            ));
        }
        if received + JUMP + 500 < N {
            problems.push(format!(
                "receiver: received {received}: more than the forged jump ({JUMP}) + 500 lost"
            ));
        }
    }
    problems.extend(tx.sent_problem("sender", N));
    assert_no_problems(name, &problems, &[&tx, &rx, &spray]);
}

#[test]
fn forged_spm_huge_epgm() {
    let name = "forged_spm_huge_epgm";
    let Some(_serial) = begin_test(name) else {
        return;
    };
    let (tx, rx, spray) = forged_run(
        name,
        Encap::Udp,
        // The spray stops after 4 s (the data takes ≈ 2.5 s), so the receiver can reach its
        // idle timeout afterwards.
        &[
            "--kinds",
            "spm-own-huge,spm-foreign-jumps",
            "--pps",
            "50",
            "--duration",
            "4",
        ],
    );

    let mut problems = crash_problems(&rx);
    problems.extend(crash_problems(&tx));
    if !rx.exited_normally() {
        problems.push("receiver did not exit by itself".into());
    }
    if rx.u("corrupt") != 0 {
        problems.push(format!("receiver: corrupt = {}", rx.u("corrupt")));
    }
    if rx.u("received") == 0 {
        problems.push("receiver: received nothing".into());
    }
    for kind in ["spm-own-huge", "spm-foreign-jumps"] {
        if sent_kind(&spray, kind) == 0 {
            problems.push(format!("pgm-spray sent no {kind} packets"));
        }
    }
    problems.extend(tx.sent_problem("sender", N));
    assert_no_problems(name, &problems, &[&tx, &rx, &spray]);
}
