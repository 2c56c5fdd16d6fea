//! Hostile and unlucky traffic against our tools on the namespace LAN (docs/reliability.md),
//! each attack during a verified run: `pgm-send` of 20 000 × 200 B at 20 Mbit/s on host 1, two
//! `pgm-recv --verify --count 20000 --memory 32MiB` on hosts 2 and 3 (1 % ingress loss each,
//! so repair runs amid the attack), `pgm-spray` on host 4.
//!
//! Every attack run must show:
//! - the real stream complete at both receivers: exact counts, no gaps, nothing corrupt or
//!   unrecoverable, exit status 0;
//! - no loss reported for any forged session (`others.unrecoverable` = 0), except for `ncf-pin`,
//!   whose sessions confirm themselves (two sqns in order) and then really lose a sqn;
//! - the sender at ≥ 50 % of its clean rate (a clean run of the same shape, measured first in
//!   the same test binary);
//! - receivers' peak RSS under [`MAX_RSS_KIB`] (the 32 MiB memory budget plus the receive
//!   queue's share and the process itself);
//! - at most 10 NAKs and SPMRs sent per forged packet (counted by the sprayer, which is the IP
//!   source and the SPM NLA of every session it forges).
//!
//! Attacks (`pgm-spray --kinds`): `flood` (a fresh TSI per packet: the peer table), `gap`
//! (sessions that open 65 000-sqn gaps), `nak-window` (NAKs for the 63 sqns behind the lead,
//! thousands a second), `ncf-pin` (confirmed sessions whose missing sqn is kept "confirmed" by
//! NCFs while their windows fill), `own-leaps` (single SPMs/ODATA of the real session that leap
//! its SPM sqn, name another NLA, leap its lead or advance its trail), forged sessions with SPM
//! trail/lead jumps (`spm-foreign`, `spm-foreign-jumps`), and `parity` (parity RDATA of the
//! real session).
//!
//! Stalls: a receiver stopped (SIGSTOP) for 1 s, 3 s and 10 s of a 10 000 msg/s stream with a
//! 64 Ki-sqn window loses nothing the source still holds.
//!
//! Needs root; prints SKIPPED and passes otherwise.

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use netns_tests::lan::Lan;
use netns_tests::tools::{
    assert_no_problems, begin_test, complete_problems, spawn_recv_joined, spawn_send, stop,
    wait_all, wait_one, Encap, Finished, Iface, RecvOpts, SendOpts,
};
use netns_tests::{named_tests, now};
use support::{crash_problems, sent_kind, spawn_spray};

const PORT: u16 = 7950;
const LIMIT: Duration = Duration::from_mins(1);
/// 20 000 × 200 B at 20 Mbit/s: ≈ 2.5 s of data.
const N: u64 = 20_000;
const RATE: &str = "20M";
/// The receivers' memory budget (`--memory`).
const MEMORY: &str = "32MiB";
/// Receivers' peak RSS bound: the 32 MiB budget, the share of the receive queue a verifying
/// receiver keeps filled, and the process (≈ 10 MiB).
const MAX_RSS_KIB: u64 = 96 * 1024;
/// NAKs and SPMRs per forged packet.
const MAX_NAKS_PER_FORGED: f64 = 10.0;

/// Starts the sender of every run: `pgm-send` of N messages on host 1.
fn start_send(lan: &Lan, encap: Encap) -> netns_tests::proc::Proc {
    spawn_send(
        lan.host(0),
        encap,
        Iface::Addr,
        PORT,
        &SendOpts::new(N, 200, RATE),
    )
    .expect("spawning pgm-send")
}

/// Starts the two verifying receivers (hosts 2 and 3, 1 % loss each), plus `extra` arguments.
fn start_receivers(lan: &Lan, encap: Encap, extra: &[&str]) -> Vec<netns_tests::proc::Proc> {
    let mut opts = RecvOpts::new(Some(N), 10.0);
    opts.extra = ["--memory", MEMORY]
        .iter()
        .chain(extra)
        .map(|s| (*s).to_owned())
        .collect();
    [1, 2]
        .into_iter()
        .map(|h| {
            lan.set_loss(h, 10, 0).expect("loss");
            spawn_recv_joined(lan.host(h), encap, Iface::Addr, PORT, &opts)
                .expect("starting pgm-recv")
        })
        .collect()
}

/// The sender's clean rate (msgs/s) for `encap`, measured once per test binary.
fn clean_rate(encap: Encap) -> f64 {
    static RAW: OnceLock<f64> = OnceLock::new();
    static UDP: OnceLock<f64> = OnceLock::new();
    let cell = if encap == Encap::Raw { &RAW } else { &UDP };
    *cell.get_or_init(|| {
        let lan = Lan::new(3).expect("building the LAN");
        let start = now();
        let rx = start_receivers(&lan, encap, &[]);
        let tx = start_send(&lan, encap);
        let rx = wait_all(rx, start + LIMIT);
        let tx = wait_one(tx, now() + Duration::from_secs(10));
        let mut problems: Vec<String> = rx.iter().flat_map(|r| complete_problems(r, N)).collect();
        problems.extend(tx.sent_problem("sender", N));
        let all: Vec<&Finished> = rx.iter().chain([&tx]).collect();
        assert_no_problems("clean run", &problems, &all);
        let rate = tx.json["msgs_per_s"].as_f64().unwrap_or(0.0);
        eprintln!("clean run ({}): sender {rate} msgs/s", encap.label());
        rate
    })
}

/// One attack during a verified run: `kinds` at `pps` each, receivers with `rx_extra`.
/// `confirmed_forgeries`: the attack's sessions confirm themselves (two sqns in order), so a
/// receiver may report their loss (under `others`).
fn attack(
    name: &str,
    encap: Encap,
    kinds: &str,
    pps: u32,
    rx_extra: &[&str],
    confirmed_forgeries: bool,
) {
    let Some(_serial) = begin_test(name) else {
        return;
    };
    let clean = clean_rate(encap);
    let lan = Lan::new(4).expect("building the LAN");
    let start = now();
    let receivers = start_receivers(&lan, encap, rx_extra);
    let pps = pps.to_string();
    let spray = spawn_spray(
        &lan,
        3,
        0,
        &[1, 2],
        (encap, PORT),
        LIMIT,
        &["--kinds", kinds, "--pps", &pps],
    );
    let tx = start_send(&lan, encap);
    let rx = wait_all(receivers, start + LIMIT);
    let tx = wait_one(tx, now() + Duration::from_secs(10));
    let spray = stop(spray, Duration::from_secs(5));
    eprintln!(
        "{name}: {:.2} s\n  sender: {} (clean rate {clean} msgs/s)\n  spray:  {}",
        start.elapsed().as_secs_f64(),
        tx.json,
        spray.json
    );
    for r in &rx {
        eprintln!("  {}: {} (peak RSS {} KiB)", r.name, r.json, r.peak_rss_kib);
    }

    let mut problems = Vec::new();
    for r in &rx {
        let label = |p: String| format!("{}: {p}", r.name);
        problems.extend(complete_problems(r, N).into_iter().map(label));
        problems.extend(crash_problems(r, MAX_RSS_KIB));
        let forged_loss = r.json["others"]["unrecoverable"].as_u64();
        if forged_loss != Some(0) && !confirmed_forgeries {
            problems.push(format!(
                "{}: loss reported for forged sessions: {forged_loss:?}",
                r.name
            ));
        }
    }
    problems.extend(tx.crash_problems());
    problems.extend(tx.sent_problem("sender", N));
    let rate = tx.json["msgs_per_s"].as_f64().unwrap_or(0.0);
    if rate < 0.5 * clean {
        problems.push(format!(
            "sender at {rate} msgs/s, under half its clean {clean}"
        ));
    }
    let forged: u64 = kinds.split(',').map(|k| sent_kind(&spray, k)).sum();
    if forged == 0 {
        problems.push(format!("pgm-spray sent no {kinds} packets"));
    }
    let bought = spray.u("heard_naks") + spray.u("heard_spmrs");
    let per = bought as f64 / forged.max(1) as f64;
    eprintln!("  {forged} forged packets bought {bought} NAKs and SPMRs ({per:.2} each)");
    if per > MAX_NAKS_PER_FORGED {
        problems.push(format!("{per:.2} NAKs and SPMRs per forged packet"));
    }
    let all: Vec<&Finished> = rx.iter().chain([&tx, &spray]).collect();
    assert_no_problems(name, &problems, &all);
}

const PIN: &[&str] = &["--max-recovery", "3"];

named_tests! {
    peer_flood_raw => attack(Encap::Raw, "flood,spm-foreign", 2000, &[], false);
    peer_flood_epgm => attack(Encap::Udp, "flood,spm-foreign", 2000, &[], false);
    forged_gaps_raw => attack(Encap::Raw, "gap", 300, &[], false);
    forged_gaps_epgm => attack(Encap::Udp, "gap", 300, &[], false);
    nak_storm_raw => attack(Encap::Raw, "nak-window", 5000, &[], false);
    nak_storm_epgm => attack(Encap::Udp, "nak-window", 5000, &[], false);
    ncf_pin_raw => attack(Encap::Raw, "ncf-pin", 400, PIN, true);
    ncf_pin_epgm => attack(Encap::Udp, "ncf-pin", 400, PIN, true);
    own_session_leaps_raw => attack(Encap::Raw, "own-leaps", 20, &[], false);
    own_session_leaps_epgm => attack(Encap::Udp, "own-leaps", 20, &[], false);
    forged_jumps_raw => attack(Encap::Raw, "spm-foreign,spm-foreign-jumps,flood", 300, &[], false);
    forged_jumps_epgm => attack(Encap::Udp, "spm-foreign,spm-foreign-jumps,flood", 300, &[], false);
    parity_raw => attack(Encap::Raw, "parity", 300, &[], false);
    parity_epgm => attack(Encap::Udp, "parity", 300, &[], false);
}

/// Messages per second of the stall runs.
const STALL_RATE: u64 = 10_000;
/// The transmit and receive window of the stall runs, in sqns.
const STALL_WINDOW: u64 = 65_536;

/// A receiver stopped for `stall_s` seconds of a 10 000 msg/s stream loses nothing the source
/// still holds; the other receiver gets everything.
fn stall(name: &str, encap: Encap, stall_s: u64) {
    let Some(_serial) = begin_test(name) else {
        return;
    };
    let n = (stall_s + 4) * STALL_RATE;
    let lan = Lan::new(3).expect("building the LAN");
    let start = now();
    let mut opts = RecvOpts::new(Some(n), 20.0);
    opts.extra = vec!["--window".into(), STALL_WINDOW.to_string()];
    let mut rx: Vec<_> = [1, 2]
        .into_iter()
        .map(|h| spawn_recv_joined(lan.host(h), encap, Iface::Addr, PORT, &opts).expect("pgm-recv"))
        .collect();
    let mut send = SendOpts::new(n, 200, "200M");
    send.window = Some(STALL_WINDOW as u32);
    send.extra = vec!["--msg-rate".into(), STALL_RATE.to_string()];
    let tx = spawn_send(lan.host(0), encap, Iface::Addr, PORT, &send).expect("pgm-send");
    std::thread::sleep(Duration::from_secs(1));
    rx[0].signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_secs(stall_s));
    rx[0].signal(libc::SIGCONT);
    let rx = wait_all(rx, start + LIMIT + Duration::from_secs(stall_s));
    let tx = wait_one(tx, now() + Duration::from_secs(10));
    eprintln!(
        "{name}: {:.2} s\n  sender: {}",
        start.elapsed().as_secs_f64(),
        tx.json
    );
    for r in &rx {
        eprintln!("  {}: {} (peak RSS {} KiB)", r.name, r.json, r.peak_rss_kib);
    }
    let mut problems: Vec<String> = complete_problems(&rx[1], n)
        .into_iter()
        .map(|p| format!("running receiver: {p}"))
        .collect();
    problems.extend(tx.sent_problem("sender", n));
    // What the source no longer held when the receiver came back (its kernel buffer held the
    // first few thousand packets of the stall, so this is an upper bound).
    let out_of_window = (stall_s * STALL_RATE).saturating_sub(STALL_WINDOW);
    let stalled = &rx[0];
    if out_of_window == 0 {
        problems.extend(
            complete_problems(stalled, n)
                .into_iter()
                .map(|p| format!("stalled receiver: {p}")),
        );
    } else {
        let lost = stalled.u("unrecoverable");
        if lost > out_of_window + out_of_window / 20 {
            problems.push(format!(
                "stalled receiver lost {lost}, only {out_of_window} left the window"
            ));
        }
        if stalled.get("last_seq") != Some(n - 1) || stalled.u("corrupt") != 0 {
            problems.push(format!("stalled receiver: {}", stalled.json));
        }
    }
    let all: Vec<&Finished> = rx.iter().chain([&tx]).collect();
    assert_no_problems(name, &problems, &all);
}

named_tests! {
    stall_1s_epgm => stall(Encap::Udp, 1);
    stall_3s_epgm => stall(Encap::Udp, 3);
    stall_3s_raw => stall(Encap::Raw, 3);
    stall_10s_epgm => stall(Encap::Udp, 10);
}
