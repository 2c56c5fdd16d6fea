//! Session lifecycle with our tools on a namespace LAN, raw PGM and EPGM (endpoints name the
//! interface, `eth0`, instead of its address, to cover that form of the CLI):
//!
//! - `late_receiver_*`: a receiver started after about a third of 30 000 messages joins
//!   cleanly: it delivers a contiguous run `first_seq..=N-1` (received = N - first_seq, no
//!   gaps, nothing corrupt or unrecoverable), while an early receiver gets all N. Both have 1 %
//!   ingress loss, so repair after the join is exercised.
//! - `sender_restart_*`: a sender is SIGKILLed mid-run and restarted (a new session: new TSI,
//!   sequence from 0). A receiver running throughout checks each TSI on its own: it must
//!   deliver the first session from 0 without gaps up to the kill and then the whole second
//!   session (0..N-1): `first_seq` 0, `last_seq` N-1, `received` > N, no gaps, duplicates,
//!   corruption or unrecoverable loss.
//! - `link_cut_*`: with `--window 500`, a receiver's link is cut (nftables drop of 100 % both
//!   ways) for 0.7 s, ≈ 5 000 messages: far more than the window. It must report
//!   `unrecoverable` > 0 (and exit non-zero, per the contract) but keep delivering afterwards
//!   (`last_seq` = N-1), while an uncut receiver gets everything.
//!
//! Needs root; prints SKIPPED and passes otherwise.

use std::thread;
use std::time::Duration;

use netns_tests::lan::{Lan, Loss};
use netns_tests::proc::Proc;
use netns_tests::tools::{
    assert_no_problems, begin_test, complete_problems, spawn_recv, spawn_recv_joined, spawn_send,
    wait_all, wait_one, Encap, Iface, RecvOpts, SendOpts,
};
use netns_tests::{named_tests, now};

const PORT: u16 = 7800;
const LIMIT: Duration = Duration::from_secs(50);

/// Starts `pgm-recv --verify` (`opts`) on host `h` and waits until it has joined the group;
/// `what` names it in the panic if that fails.
fn start_recv(lan: &Lan, h: usize, encap: Encap, opts: &RecvOpts, what: &str) -> Proc {
    spawn_recv_joined(lan.host(h), encap, Iface::Name, PORT, opts)
        .unwrap_or_else(|e| panic!("starting {what}: {e}"))
}

// ---- (a) late join ------------------------------------------------------------------------

/// 30 000 × 200 B at 20 Mbit/s: ≈ 3 s of data; the late receiver starts after 1 s.
const LATE_N: u64 = 30_000;
const LATE_RATE: &str = "20M";
const LATE_START: Duration = Duration::from_secs(1);

fn late_receiver(name: &str, encap: Encap) {
    let Some(_serial) = begin_test(name) else {
        return;
    };
    let lan = Lan::new(3).expect("building the LAN");
    lan.set_loss(1, 10, 0).expect("loss");
    lan.set_loss(2, 10, 0).expect("loss");
    let start = now();

    let early = start_recv(
        &lan,
        1,
        encap,
        &RecvOpts::new(Some(LATE_N), 5.0),
        "the early receiver",
    );
    let send = SendOpts::new(LATE_N, 200, LATE_RATE);
    let tx = spawn_send(lan.host(0), encap, Iface::Name, PORT, &send).expect("spawning pgm-send");
    thread::sleep(LATE_START);
    let late = spawn_recv(
        lan.host(2),
        encap,
        Iface::Name,
        PORT,
        &RecvOpts::new(None, 3.0),
    )
    .expect("spawning the late receiver");

    let mut rx = wait_all(vec![early, late], start + LIMIT);
    let tx = wait_one(tx, now() + Duration::from_secs(10));
    let late = rx.pop().expect("late");
    let early = rx.pop().expect("early");
    eprintln!(
        "{name}: {:.2} s\n  sender: {}\n  early:  {}\n  late:   {}",
        start.elapsed().as_secs_f64(),
        tx.json,
        early.json,
        late.json
    );

    let mut problems: Vec<String> = complete_problems(&early, LATE_N)
        .into_iter()
        .map(|p| format!("early receiver: {p}"))
        .collect();
    problems.extend(tx.crash_problems());
    problems.extend(late.crash_problems());
    let first = late.u("first_seq");
    let want_received = LATE_N.saturating_sub(first);
    for (key, got, want) in [
        ("last_seq", late.get("last_seq"), Some(LATE_N - 1)),
        ("received", late.get("received"), Some(want_received)),
        ("gaps", late.get("gaps"), Some(0)),
        ("corrupt", late.get("corrupt"), Some(0)),
        ("unrecoverable", late.get("unrecoverable"), Some(0)),
    ] {
        if got != want {
            problems.push(format!("late receiver: {key} = {got:?}, want {want:?}"));
        }
    }
    if !late.out.status.success() {
        problems.push(format!("late receiver exit {}", late.out.status));
    }
    if first == 0 {
        // Joining at the trail (recovering the source's whole window) is allowed; say so.
        eprintln!("{name}: the late receiver recovered the session from sqn 0");
    }
    assert_no_problems(name, &problems, &[&tx, &early, &late]);
}

named_tests! {
    late_receiver_raw => late_receiver(Encap::Raw);
    late_receiver_epgm => late_receiver(Encap::Udp);
}

// ---- (b) sender killed and restarted ------------------------------------------------------

/// The first sender would send for a long time; it is killed after `KILL_AFTER`.
const FIRST_N: u64 = 1_000_000;
const SECOND_N: u64 = 10_000;
const RESTART_RATE: &str = "20M";
const KILL_AFTER: Duration = Duration::from_millis(1500);

fn sender_restart(name: &str, encap: Encap) {
    let Some(_serial) = begin_test(name) else {
        return;
    };
    let lan = Lan::new(2).expect("building the LAN");
    let start = now();

    let rx = start_recv(&lan, 1, encap, &RecvOpts::new(None, 4.0), "pgm-recv");
    let mut first = spawn_send(
        lan.host(0),
        encap,
        Iface::Name,
        PORT,
        &SendOpts::new(FIRST_N, 200, RESTART_RATE),
    )
    .expect("spawning the first pgm-send");
    thread::sleep(KILL_AFTER);
    assert!(
        first.try_wait().expect("first sender state").is_none(),
        "{name}: the first sender ended before it was killed: {}",
        first.stderr_text()
    );
    first.kill();
    drop(first);
    thread::sleep(Duration::from_millis(300));
    let second = spawn_send(
        lan.host(0),
        encap,
        Iface::Name,
        PORT,
        &SendOpts::new(SECOND_N, 200, RESTART_RATE),
    )
    .expect("spawning the second pgm-send");

    let tx = wait_one(second, start + LIMIT);
    let rx = wait_one(rx, now() + Duration::from_secs(15));
    eprintln!(
        "{name}: {:.2} s\n  second sender: {}\n  receiver:      {}",
        start.elapsed().as_secs_f64(),
        tx.json,
        rx.json
    );

    let mut problems = tx.crash_problems();
    problems.extend(rx.crash_problems());
    problems.extend(tx.sent_problem("second sender", SECOND_N));
    for (key, want) in [
        ("first_seq", 0),
        ("last_seq", SECOND_N - 1),
        ("gaps", 0),
        ("duplicates", 0),
        ("corrupt", 0),
        ("unrecoverable", 0),
    ] {
        if rx.get(key) != Some(want) {
            problems.push(format!("receiver: {key} = {:?}, want {want}", rx.get(key)));
        }
    }
    // Both sessions delivered: all of the second plus a non-empty prefix of the first.
    if rx.u("received") <= SECOND_N {
        problems.push(format!(
            "receiver: received {} — want the {SECOND_N} of the second session plus the first \
             session's messages up to the kill",
            rx.u("received")
        ));
    }
    if !rx.out.status.success() {
        problems.push(format!("receiver exit {}", rx.out.status));
    }
    assert_no_problems(name, &problems, &[&tx, &rx]);
}

named_tests! {
    sender_restart_raw => sender_restart(Encap::Raw);
    sender_restart_epgm => sender_restart(Encap::Udp);
}

// ---- (c) link cut longer than the window --------------------------------------------------

/// 20 000 × 200 B at 16 Mbit/s ≈ 8 000 messages/s, ≈ 2.5 s; window 500 sqns (≈ 60 ms).
const CUT_N: u64 = 20_000;
const CUT_RATE: &str = "16M";
const CUT_WINDOW: u32 = 500;
const CUT_AT: Duration = Duration::from_millis(800);
const CUT_FOR: Duration = Duration::from_millis(700);

fn link_cut(name: &str, encap: Encap) {
    let Some(_serial) = begin_test(name) else {
        return;
    };
    let lan = Lan::new(3).expect("building the LAN");
    let start = now();

    let cut = start_recv(
        &lan,
        1,
        encap,
        &RecvOpts::new(None, 3.0),
        "the cut receiver",
    );
    let whole = start_recv(
        &lan,
        2,
        encap,
        &RecvOpts::new(Some(CUT_N), 5.0),
        "the uncut receiver",
    );
    let mut send = SendOpts::new(CUT_N, 200, CUT_RATE);
    send.window = Some(CUT_WINDOW);
    let tx = spawn_send(lan.host(0), encap, Iface::Name, PORT, &send).expect("spawning pgm-send");

    thread::sleep(CUT_AT);
    let all = Loss::Random(1000);
    lan.set_loss_pattern(1, all, all).expect("cutting the link");
    thread::sleep(CUT_FOR);
    // Read the counters first: replacing the rules resets them.
    let (dropped_in, dropped_out) = lan.dropped(1).unwrap_or((0, 0));
    lan.set_loss(1, 0, 0).expect("restoring the link");

    let mut rx = wait_all(vec![cut, whole], start + LIMIT);
    let tx = wait_one(tx, now() + Duration::from_secs(10));
    let whole = rx.pop().expect("uncut");
    let cut = rx.pop().expect("cut");
    eprintln!(
        "{name}: {:.2} s, cut dropped {dropped_in} in / {dropped_out} out\n  sender: {}\n  \
         cut:    {}\n  uncut:  {}",
        start.elapsed().as_secs_f64(),
        tx.json,
        cut.json,
        whole.json
    );

    let mut problems: Vec<String> = complete_problems(&whole, CUT_N)
        .into_iter()
        .map(|p| format!("uncut receiver: {p}"))
        .collect();
    problems.extend(tx.crash_problems());
    problems.extend(cut.crash_problems());
    if dropped_in < u64::from(CUT_WINDOW) * 2 {
        problems.push(format!(
            "the cut dropped only {dropped_in} packets: the run ended too early to test this"
        ));
    }
    if cut.u("unrecoverable") == 0 {
        problems.push("cut receiver: unrecoverable = 0 after a cut longer than the window".into());
    }
    if cut.get("last_seq") != Some(CUT_N - 1) {
        problems.push(format!(
            "cut receiver: last_seq = {:?}, want {} (it must keep receiving after the cut)",
            cut.get("last_seq"),
            CUT_N - 1
        ));
    }
    if cut.u("corrupt") != 0 {
        problems.push(format!("cut receiver: corrupt = {}", cut.u("corrupt")));
    }
    let received = cut.u("received");
    if !(CUT_N / 2..CUT_N).contains(&received) {
        problems.push(format!(
            "cut receiver: received {received}, want fewer than {CUT_N} but at least {}",
            CUT_N / 2
        ));
    }
    if cut.out.status.success() {
        problems.push("cut receiver exited 0 despite unrecoverable loss".into());
    }
    assert_no_problems(name, &problems, &[&tx, &cut, &whole]);
}

named_tests! {
    link_cut_raw => link_cut(Encap::Raw);
    link_cut_epgm => link_cut(Encap::Udp);
}
