//! Interoperability with OpenPGM 5.3.128 (the C peer `peers/openpgm_peer.c`) on a 2-host
//! namespace LAN with 5 % random ingress loss on the receiver, raw PGM and EPGM, small
//! (2 000 × 200 B) and fragmented (100 × 20 KiB, 15 TPDUs each) messages, both ways:
//!
//! - `openpgm_to_ours_*`: OpenPGM sender → our `pgm-recv --verify`. Complete, verified delivery,
//!   and our receiver's `naks_sent` > 0 with RDATA on the wire: our NAKs were answered by
//!   OpenPGM (it ignores NAKs whose NLAs do not match, interop-notes §1.5).
//! - `ours_to_openpgm_*`: our `pgm-send` → OpenPGM receiver. Complete, verified delivery, and
//!   our sender's `naks_received` > 0 and `rdata_sent` > 0: OpenPGM's NAKs were answered by us.
//!
//! Every run is captured on the bridge and checked with tshark: every PGM packet (OpenPGM's and
//! ours) has a good checksum, nothing is malformed or carries expert warnings/errors (SPMRs,
//! which tshark 4.0 leaves undissected, excepted), and NAK and RDATA packets are present.
//!
//! OpenPGM sender rates (bytes/s): 2 MB/s for 200 B messages; 1 MB/s for 20 KiB APDUs, because
//! OpenPGM's non-blocking `pgm_send_skbv` needs the whole APDU in its token bucket, which holds
//! 1 ms of rate above MTU × 1000 B/s (see `peers/openpgm_peer.c`).
//!
//! Needs root (namespaces, raw sockets, nftables) and `libpgm-dev`; prints SKIPPED and passes
//! without root.

use std::path::PathBuf;
use std::sync::MutexGuard;
use std::time::Duration;

use netns_tests::lan::{Capture, Lan};
use netns_tests::peer::{openpgm_peer, PeerArgs};
use netns_tests::tools::{
    assert_no_problems, begin_test, capture_for_tshark, complete_problems, spawn_recv_joined,
    spawn_send, stop, wait_one, Encap, Finished, Iface, RecvOpts, SendOpts,
};
use netns_tests::tshark::check_capture;
use netns_tests::{named_tests, now};

const PORT: u16 = 7700;
const LOSS_PERMILLE: u32 = 50;
const LIMIT: Duration = Duration::from_secs(45);

struct Shape {
    count: u64,
    size: usize,
    /// OpenPGM sender rate, bytes/s.
    openpgm_rate: u64,
    /// Our sender's rate, bits/s.
    our_rate: &'static str,
}

const SMALL: Shape = Shape {
    count: 2000,
    size: 200,
    openpgm_rate: 2_000_000,
    our_rate: "8M",
};
const FRAGMENTED: Shape = Shape {
    count: 100,
    size: 20 * 1024,
    openpgm_rate: 1_000_000,
    our_rate: "16M",
};

/// What both directions start with: root, the machine to themselves, our tools and the OpenPGM
/// peer built, a 2-host LAN with loss on host 2, and a bridge capture if tshark is there to
/// check it.
fn setup(name: &str) -> Option<(MutexGuard<'static, ()>, PathBuf, Lan, Option<Capture>)> {
    let serial = begin_test(name)?;
    let peer = openpgm_peer().expect("building the OpenPGM peer");
    let lan = Lan::new(2).expect("building the LAN");
    lan.set_loss(1, LOSS_PERMILLE, 0).expect("setting loss");
    let cap = capture_for_tshark(&lan, name, &format!("ip proto 113 or udp port {PORT}"));
    Some((serial, peer, lan, cap))
}

/// tshark checks of a finished run's capture; returns problems (empty when clean).
fn capture_problems(cap: Option<Capture>, name: &str) -> Vec<String> {
    let Some(mut cap) = cap else {
        return Vec::new();
    };
    let stats = cap.stop().unwrap_or_else(|e| e.to_string());
    let mut problems = Vec::new();
    match check_capture(cap.path(), PORT) {
        Ok(rep) => {
            eprintln!("{name}: capture: {}\n  {stats}", rep.describe());
            if !rep.is_clean() {
                problems.push(format!(
                    "capture {}: {}",
                    cap.path().display(),
                    rep.describe()
                ));
            }
            for ty in ["ODATA", "NAK", "NCF", "RDATA", "SPM"] {
                if rep.types.get(ty).copied().unwrap_or(0) == 0 {
                    problems.push(format!("capture {}: no {ty} packets", cap.path().display()));
                }
            }
            if problems.is_empty() {
                let _ = std::fs::remove_file(cap.path());
            }
        }
        Err(e) => problems.push(format!("tshark: {e}")),
    }
    problems
}

fn peer_args(lan: &Lan, host: usize, encap: Encap, shape: &Shape) -> PeerArgs {
    let mut a = PeerArgs::new(lan.host(host).pgm_network());
    a.port = PORT;
    a.udp = encap == Encap::Udp;
    a.count = shape.count;
    a.size = shape.size;
    a.rate = shape.openpgm_rate;
    a.timeout_s = 15.0;
    a
}

/// OpenPGM sender on host 1 → our `pgm-recv --verify` on host 2 (5 % ingress loss).
fn openpgm_to_ours(name: &str, encap: Encap, shape: &Shape) {
    let Some((_serial, peer, lan, cap)) = setup(name) else {
        return;
    };
    let start = now();

    let rx = spawn_recv_joined(
        lan.host(1),
        encap,
        Iface::Addr,
        PORT,
        &RecvOpts::new(Some(shape.count), 10.0),
    )
    .expect("starting pgm-recv");
    let mut args = peer_args(&lan, 0, encap, shape);
    // Linger until stopped (after our receiver finished), never past the limit.
    args.linger_s = LIMIT.as_secs_f64();
    args.timeout_s = LIMIT.as_secs_f64();
    let mut tx = lan
        .host(0)
        .spawn(&peer, &args.to_args(true))
        .expect("spawning the OpenPGM sender");
    tx.wait_ready(Duration::from_secs(10))
        .expect("OpenPGM sender ready");

    let rx = wait_one(rx, start + LIMIT);
    let elapsed = start.elapsed();
    let tx = stop(tx, Duration::from_secs(5));
    let (dropped, _) = lan.dropped(1).expect("drop counters");
    report(name, elapsed, dropped, &tx, &rx);

    let mut problems = complete_problems(&rx, shape.count);
    if rx.u("naks_sent") == 0 {
        problems.push("our receiver sent no NAKs".to_owned());
    }
    if tx.get("sent") != Some(shape.count) {
        problems.push(format!("OpenPGM sender sent {:?}", tx.get("sent")));
    }
    if dropped == 0 {
        problems.push("the loss rule dropped nothing".to_owned());
    }
    problems.extend(capture_problems(cap, name));
    assert_no_problems(name, &problems, &[&tx, &rx]);
}

/// Our `pgm-send` on host 1 → OpenPGM receiver on host 2 (5 % ingress loss).
fn ours_to_openpgm(name: &str, encap: Encap, shape: &Shape) {
    let Some((_serial, peer, lan, cap)) = setup(name) else {
        return;
    };
    let start = now();

    let args = peer_args(&lan, 1, encap, shape);
    let mut rx = lan
        .host(1)
        .spawn(&peer, &args.to_args(false))
        .expect("spawning the OpenPGM receiver");
    rx.wait_ready(Duration::from_secs(10))
        .expect("OpenPGM receiver ready");
    let mut send = SendOpts::new(shape.count, shape.size, shape.our_rate);
    send.linger_s = 3.0;
    let tx = spawn_send(lan.host(0), encap, Iface::Addr, PORT, &send).expect("spawning pgm-send");

    let rx = wait_one(rx, start + LIMIT);
    let elapsed = start.elapsed();
    let tx = wait_one(tx, now() + Duration::from_secs(10));
    let (dropped, _) = lan.dropped(1).expect("drop counters");
    report(name, elapsed, dropped, &tx, &rx);

    // The peer's JSON has no naks_sent/parse counters; the rest is the same contract.
    let mut problems = complete_problems(&rx, shape.count);
    problems.extend(tx.crash_problems());
    problems.extend(tx.sent_problem("pgm-send", shape.count));
    if tx.u("naks_received") == 0 || tx.u("rdata_sent") == 0 {
        problems.push(format!(
            "pgm-send: naks_received {} rdata_sent {}: OpenPGM's NAKs were not answered",
            tx.u("naks_received"),
            tx.u("rdata_sent")
        ));
    }
    if dropped == 0 {
        problems.push("the loss rule dropped nothing".to_owned());
    }
    problems.extend(capture_problems(cap, name));
    assert_no_problems(name, &problems, &[&tx, &rx]);
}

fn report(name: &str, elapsed: Duration, dropped: u64, tx: &Finished, rx: &Finished) {
    eprintln!(
        "{name}: {:.2} s, receiver ingress drops {dropped}\n  sender:   {}\n  receiver: {}",
        elapsed.as_secs_f64(),
        tx.json,
        rx.json
    );
}

named_tests! {
    openpgm_to_ours_raw_small => openpgm_to_ours(Encap::Raw, &SMALL);
    openpgm_to_ours_epgm_small => openpgm_to_ours(Encap::Udp, &SMALL);
    openpgm_to_ours_raw_fragmented => openpgm_to_ours(Encap::Raw, &FRAGMENTED);
    openpgm_to_ours_epgm_fragmented => openpgm_to_ours(Encap::Udp, &FRAGMENTED);
    ours_to_openpgm_raw_small => ours_to_openpgm(Encap::Raw, &SMALL);
    ours_to_openpgm_epgm_small => ours_to_openpgm(Encap::Udp, &SMALL);
    ours_to_openpgm_raw_fragmented => ours_to_openpgm(Encap::Raw, &FRAGMENTED);
    ours_to_openpgm_epgm_fragmented => ours_to_openpgm(Encap::Udp, &FRAGMENTED);
}
