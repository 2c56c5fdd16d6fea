//! Our `pgm-send` → 3 × `pgm-recv --verify` on a 4-host namespace LAN (host 1 sends, hosts 2-4
//! receive), for raw PGM and EPGM, 50 000 × 200 B and 2 000 × 20 KiB (fragmented: 15 TPDUs per
//! message), with independent random ingress loss of 0 %, 1 %, 5 % or 10 % on each receiver:
//! 16 tests. Every receiver must report every message (first_seq 0, last_seq N-1), zero
//! gaps/corrupt/unrecoverable, and exit 0; the sender must send all N. With loss, every receiver
//! must have sent NAKs and the sender RDATA (so repair, not luck, made delivery complete).
//!
//! Two runs (raw 20 KiB at 5 %, EPGM 200 B at 5 %) also capture the bridge and check every PGM
//! packet with tshark: good checksum, nothing malformed, no expert warning/error.
//!
//! The tests of this file run one at a time (a 2-core machine); each run takes about 5-9 s.
//! Needs root (namespaces, raw sockets, nftables); prints SKIPPED and passes otherwise.

use std::time::Duration;

use netns_tests::lan::Lan;
use netns_tests::named_tests;
use netns_tests::tools::{
    assert_no_problems, begin_test, capture_for_tshark, complete_problems, run_tools, Encap,
    RecvOpts, SendOpts,
};
use netns_tests::tshark::capture_problems;

const PORT: u16 = 7600;
const LIMIT: Duration = Duration::from_secs(50);

/// Small messages: 50 000 × 200 B (≈ 12 MB on the wire) at 50 Mbit/s: ≈ 2 s.
const SMALL: (u64, usize, &str) = (50_000, 200, "50M");
/// Fragmented messages: 2 000 × 20 KiB (≈ 43 MB on the wire) at 150 Mbit/s: ≈ 2.3 s.
const LARGE: (u64, usize, &str) = (2_000, 20 * 1024, "150M");

fn matrix(name: &str, encap: Encap, large: bool, loss_permille: u32, capture: bool) {
    let Some(_serial) = begin_test(name) else {
        return;
    };
    let (count, size, rate) = if large { LARGE } else { SMALL };
    let lan = Lan::new(4).expect("building the LAN");
    for h in 1..=3 {
        lan.set_loss(h, loss_permille, 0).expect("setting loss");
    }
    let mut cap = if capture {
        capture_for_tshark(&lan, name, &format!("ip proto 113 or udp port {PORT}"))
    } else {
        None
    };

    let send = SendOpts::new(count, size, rate);
    let recv = RecvOpts::new(Some(count), 5.0);
    let run = run_tools(&lan, 0, &[1, 2, 3], encap, PORT, &send, &recv, LIMIT)
        .expect("running pgm-send / pgm-recv");
    let drops: Vec<u64> = (1..=3).map(|h| lan.dropped(h).map_or(0, |d| d.0)).collect();
    eprintln!(
        "{name}: {:.2} s, ingress drops {drops:?}\n{}",
        run.elapsed.as_secs_f64(),
        run.describe()
    );

    let mut problems = Vec::new();
    for r in &run.receivers {
        for p in complete_problems(r, count) {
            problems.push(format!("{}: {p}", r.name));
        }
        if loss_permille > 0 && r.u("naks_sent") == 0 {
            problems.push(format!("{}: sent no NAKs despite loss", r.name));
        }
    }
    let s = &run.sender;
    problems.extend(s.crash_problems());
    problems.extend(s.sent_problem("sender", count));
    if loss_permille > 0 {
        if s.u("naks_received") == 0 || s.u("rdata_sent") == 0 {
            problems.push(format!(
                "sender: naks_received {} rdata_sent {} despite loss",
                s.u("naks_received"),
                s.u("rdata_sent")
            ));
        }
        if drops.contains(&0) {
            problems.push(format!("a loss rule dropped nothing: {drops:?}"));
        }
    }
    if let Some(c) = cap.as_mut() {
        problems.extend(capture_problems(
            c,
            name,
            PORT,
            loss_permille > 0,
            problems.is_empty(),
        ));
    }
    assert_no_problems(name, &problems, &run.all());
}

named_tests! {
    raw_200b_loss_0pct => matrix(Encap::Raw, false, 0, false);
    raw_200b_loss_1pct => matrix(Encap::Raw, false, 10, false);
    raw_200b_loss_5pct => matrix(Encap::Raw, false, 50, false);
    raw_200b_loss_10pct => matrix(Encap::Raw, false, 100, false);
    raw_20kib_loss_0pct => matrix(Encap::Raw, true, 0, false);
    raw_20kib_loss_1pct => matrix(Encap::Raw, true, 10, false);
    raw_20kib_loss_5pct_captured => matrix(Encap::Raw, true, 50, true);
    raw_20kib_loss_10pct => matrix(Encap::Raw, true, 100, false);
    epgm_200b_loss_0pct => matrix(Encap::Udp, false, 0, false);
    epgm_200b_loss_1pct => matrix(Encap::Udp, false, 10, false);
    epgm_200b_loss_5pct_captured => matrix(Encap::Udp, false, 50, true);
    epgm_200b_loss_10pct => matrix(Encap::Udp, false, 100, false);
    epgm_20kib_loss_0pct => matrix(Encap::Udp, true, 0, false);
    epgm_20kib_loss_1pct => matrix(Encap::Udp, true, 10, false);
    epgm_20kib_loss_5pct => matrix(Encap::Udp, true, 50, false);
    epgm_20kib_loss_10pct => matrix(Encap::Udp, true, 100, false);
}
