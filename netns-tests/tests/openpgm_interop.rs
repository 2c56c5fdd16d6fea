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

use std::time::Duration;

use netns_tests::lan::Lan;
use netns_tests::peer::{openpgm_peer, PeerArgs};
use netns_tests::tools::{
    capture_path, complete_problems, serial, spawn_recv, spawn_send, stop, tools_dir, wait_all,
    wait_joined, Encap, Finished, Iface, RecvOpts, SendOpts,
};
use netns_tests::tshark::check_capture;
use netns_tests::{have_program, now, require_root};

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

/// Starts a bridge capture if tshark is there to check it.
fn start_capture(lan: &Lan, name: &str) -> Option<netns_tests::lan::Capture> {
    if !have_program("tshark") {
        eprintln!("{name}: tshark not installed, capture checks skipped");
        return None;
    }
    let path = capture_path(name).expect("capture dir");
    Some(
        lan.capture(&path, &format!("ip proto 113 or udp port {PORT}"))
            .expect("starting tcpdump"),
    )
}

/// tshark checks of a finished run's capture; returns problems (empty when clean).
fn capture_problems(cap: Option<netns_tests::lan::Capture>, name: &str) -> Vec<String> {
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
    if !require_root(name) {
        return;
    }
    let _serial = serial();
    tools_dir().expect("building pgm-send/pgm-recv");
    let peer = openpgm_peer().expect("building the OpenPGM peer");
    let lan = Lan::new(2).expect("building the LAN");
    lan.set_loss(1, LOSS_PERMILLE, 0).expect("setting loss");
    let cap = start_capture(&lan, name);
    let start = now();

    let mut rx = spawn_recv(
        lan.host(1),
        encap,
        Iface::Addr,
        PORT,
        &RecvOpts::new(Some(shape.count), 10.0),
    )
    .expect("spawning pgm-recv");
    wait_joined(&mut rx, lan.host(1), encap, PORT, Duration::from_secs(10)).expect("pgm-recv");
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

    let rx = wait_all(vec![rx], start + LIMIT)
        .pop()
        .expect("one receiver");
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
    assert!(
        problems.is_empty(),
        "{name}:\n  {}\n  {}\n  {}",
        problems.join("\n  "),
        tx.describe(),
        rx.describe()
    );
}

/// Our `pgm-send` on host 1 → OpenPGM receiver on host 2 (5 % ingress loss).
fn ours_to_openpgm(name: &str, encap: Encap, shape: &Shape) {
    if !require_root(name) {
        return;
    }
    let _serial = serial();
    tools_dir().expect("building pgm-send/pgm-recv");
    let peer = openpgm_peer().expect("building the OpenPGM peer");
    let lan = Lan::new(2).expect("building the LAN");
    lan.set_loss(1, LOSS_PERMILLE, 0).expect("setting loss");
    let cap = start_capture(&lan, name);
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

    let rx = wait_all(vec![rx], start + LIMIT)
        .pop()
        .expect("one receiver");
    let elapsed = start.elapsed();
    let tx = wait_all(vec![tx], now() + Duration::from_secs(10))
        .pop()
        .expect("one sender");
    let (dropped, _) = lan.dropped(1).expect("drop counters");
    report(name, elapsed, dropped, &tx, &rx);

    // The peer's JSON has no naks_sent/parse counters; the rest is the same contract.
    let mut problems = complete_problems(&rx, shape.count);
    if let Some(sig) = tx.crash_signal() {
        problems.push(format!("pgm-send crashed with signal {sig}"));
    }
    if !tx.out.status.success() || tx.timed_out {
        problems.push(format!(
            "pgm-send exit {} (timed out: {})",
            tx.out.status, tx.timed_out
        ));
    }
    if tx.get("sent") != Some(shape.count) {
        problems.push(format!("pgm-send sent {:?}", tx.get("sent")));
    }
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
    assert!(
        problems.is_empty(),
        "{name}:\n  {}\n  {}\n  {}",
        problems.join("\n  "),
        tx.describe(),
        rx.describe()
    );
}

fn report(name: &str, elapsed: Duration, dropped: u64, tx: &Finished, rx: &Finished) {
    eprintln!(
        "{name}: {:.2} s, receiver ingress drops {dropped}\n  sender:   {}\n  receiver: {}",
        elapsed.as_secs_f64(),
        tx.json,
        rx.json
    );
}

#[test]
fn openpgm_to_ours_raw_small() {
    openpgm_to_ours("openpgm_to_ours_raw_small", Encap::Raw, &SMALL);
}

#[test]
fn openpgm_to_ours_epgm_small() {
    openpgm_to_ours("openpgm_to_ours_epgm_small", Encap::Udp, &SMALL);
}

#[test]
fn openpgm_to_ours_raw_fragmented() {
    openpgm_to_ours("openpgm_to_ours_raw_fragmented", Encap::Raw, &FRAGMENTED);
}

#[test]
fn openpgm_to_ours_epgm_fragmented() {
    openpgm_to_ours("openpgm_to_ours_epgm_fragmented", Encap::Udp, &FRAGMENTED);
}

#[test]
fn ours_to_openpgm_raw_small() {
    ours_to_openpgm("ours_to_openpgm_raw_small", Encap::Raw, &SMALL);
}

#[test]
fn ours_to_openpgm_epgm_small() {
    ours_to_openpgm("ours_to_openpgm_epgm_small", Encap::Udp, &SMALL);
}

#[test]
fn ours_to_openpgm_raw_fragmented() {
    ours_to_openpgm("ours_to_openpgm_raw_fragmented", Encap::Raw, &FRAGMENTED);
}

#[test]
fn ours_to_openpgm_epgm_fragmented() {
    ours_to_openpgm("ours_to_openpgm_epgm_fragmented", Encap::Udp, &FRAGMENTED);
}
