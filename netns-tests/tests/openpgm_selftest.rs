//! Proves the harness and the OpenPGM peer: OpenPGM sender → OpenPGM receiver on a 2-host LAN,
//! raw PGM and UDP encapsulation, 5 % random ingress loss on the receiver, complete verified
//! delivery (no gaps, no corruption, no unrecoverable loss).
//!
//! Needs root (namespaces, raw sockets, nftables); prints SKIPPED and passes otherwise.

use std::time::Duration;

use netns_tests::deps::{require, Need};
use netns_tests::lan::Lan;
use netns_tests::pair::run_openpgm_pair;
use netns_tests::peer::{openpgm_peer, PeerArgs};

const LIMIT: Duration = Duration::from_secs(40);

fn selftest(name: &str, udp: bool, count: u64, size: usize, rate: u64) {
    if !require(name, &[Need::Root, Need::Lan, Need::OpenPgm]) {
        return;
    }
    let peer = openpgm_peer().expect("building the OpenPGM peer");
    let lan = Lan::new(2).expect("building the LAN");
    lan.set_loss(1, 50, 0)
        .expect("setting 5% ingress loss on the receiver");

    let mut args = PeerArgs::new("");
    args.udp = udp;
    args.count = count;
    args.size = size;
    args.rate = rate;
    args.timeout_s = 15.0;
    let run = run_openpgm_pair(&peer, &lan, 0, 1, &args, LIMIT).expect("running the pair");
    let (dropped, _) = lan.dropped(1).expect("reading drop counters");
    eprintln!(
        "{name}: {:.2} s, receiver dropped {dropped} packets by rule\n  sender:   {}\n  receiver: {}",
        run.elapsed.as_secs_f64(),
        run.sender_json,
        run.receiver_json
    );
    assert!(
        run.complete(count),
        "{name}: incomplete delivery\n{}",
        run.describe()
    );
    assert_eq!(run.rx("first_seq"), 0, "{}", run.describe());
    assert_eq!(run.rx("last_seq"), count - 1, "{}", run.describe());
    assert_eq!(run.tx("sent"), count, "{}", run.describe());
    assert!(
        dropped > 0,
        "{name}: the loss rule dropped nothing, so no repair was exercised"
    );
    assert!(run.elapsed < LIMIT, "{name}: took {:?}", run.elapsed);
}

// Rates: 2 MB/s makes OpenPGM refill its token bucket per millisecond (smooth pacing); 20 KiB
// APDUs need the per-second bucket (rate < 1.5 MB/s), because a non-blocking pgm_send_skbv
// needs the whole APDU in the bucket at once.

#[test]
fn openpgm_raw_small_messages_with_5pct_loss() {
    selftest(
        "openpgm_raw_small_messages_with_5pct_loss",
        false,
        2000,
        200,
        2_000_000,
    );
}

#[test]
fn openpgm_udp_small_messages_with_5pct_loss() {
    selftest(
        "openpgm_udp_small_messages_with_5pct_loss",
        true,
        2000,
        200,
        2_000_000,
    );
}

#[test]
fn openpgm_raw_fragmented_20k_with_5pct_loss() {
    selftest(
        "openpgm_raw_fragmented_20k_with_5pct_loss",
        false,
        50,
        20 * 1024,
        1_000_000,
    );
}

#[test]
fn openpgm_udp_fragmented_20k_with_5pct_loss() {
    selftest(
        "openpgm_udp_fragmented_20k_with_5pct_loss",
        true,
        50,
        20 * 1024,
        1_000_000,
    );
}

/// The LAN itself: addresses, teardown on drop, and that loss rules can be set and cleared.
#[test]
fn lan_builds_and_tears_down() {
    if !require("lan_builds_and_tears_down", Need::LAN) {
        return;
    }
    let lan = Lan::new(3).expect("building the LAN");
    let names: Vec<String> = lan.hosts().iter().map(|h| h.ns().to_owned()).collect();
    let a = lan.host(0).addr();
    let c = lan.host(2).addr();
    assert_eq!(a.octets()[..3], c.octets()[..3]);
    assert_ne!(a, c);
    // Unicast across the bridge works (ping is not always installed: use the peer's absence of
    // need and just check the route table and link state instead).
    let routes = lan.host(1).run("ip", &["route"]).expect("ip route");
    assert!(routes.contains("224.0.0.0/4 dev eth0"), "{routes}");
    lan.set_loss(2, 100, 100).expect("set loss");
    lan.set_loss(2, 0, 0).expect("clear loss");
    assert_eq!(lan.dropped(2).expect("counters"), (0, 0));
    lan.set_rate(0, 10_000_000).expect("tbf");
    lan.clear_rate(0).expect("tbf off");
    let bridge = lan.bridge_ns().to_owned();
    drop(lan);
    let list = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let list = String::from_utf8_lossy(&list.stdout);
    for ns in names.iter().chain(std::iter::once(&bridge)) {
        assert!(
            !list
                .lines()
                .any(|l| l.split_whitespace().next() == Some(ns)),
            "{ns} left behind"
        );
    }
}
