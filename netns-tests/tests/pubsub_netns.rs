//! Our `pgm-pub` → 3 × `pgm-sub --verify` on a 4-host namespace LAN (host 1 publishes, hosts
//! 2-4 subscribe), raw PGM and EPGM: 200 000 messages round-robin over 50 topics (`a0`..`e9`),
//! payloads of 12-200 bytes, with 5 % random ingress loss on every subscriber host.
//!
//! The subscribers take different, overlapping prefix sets (`a`+`b`; `b5`+`c`+`a0`;
//! `e`+`d1`+`a0`+`a`). Each must report exactly its topics with exactly the per-topic counts the
//! round-robin gives, no gaps/duplicates/corruption/unrecoverable loss, and must have NAKed (so
//! repair, not luck, made delivery complete); the publisher must have answered with RDATA.
//!
//! One run takes about 5-8 s. Needs root (namespaces, raw sockets, nftables); prints SKIPPED
//! and passes otherwise.

use std::fmt::Write as _;
use std::time::Duration;

use netns_tests::lan::Lan;
use netns_tests::tools::{endpoint, serial, wait_all, wait_joined, Encap, Iface};
use netns_tests::zmq::{
    expected_topics, pgm_pub, pgm_sub, topic_problems, topics, PubOpts, SubOpts,
};
use netns_tests::{now, require_root};

const PORT: u16 = 7800;
const LIMIT: Duration = Duration::from_secs(50);
const COUNT: u64 = 200_000;
const LOSS_PERMILLE: u32 = 50;
/// The prefix sets of the subscribers on hosts 2, 3 and 4.
const PREFIXES: [&[&str]; 3] = [&["a", "b"], &["b5", "c", "a0"], &["e", "d1", "a0", "a"]];

fn run(name: &str, encap: Encap) {
    if !require_root(name) {
        return;
    }
    let _serial = serial();
    let (pub_bin, sub_bin) = (
        pgm_pub().expect("building pgm-pub"),
        pgm_sub().expect("building pgm-sub"),
    );
    let lan = Lan::new(4).expect("building the LAN");
    for h in 1..=3 {
        lan.set_loss(h, LOSS_PERMILLE, 0).expect("setting loss");
    }
    let topics = topics(50);
    let wants: Vec<_> = PREFIXES
        .iter()
        .map(|p| expected_topics(&topics, COUNT, p))
        .collect();
    assert_eq!(
        wants
            .iter()
            .map(std::collections::BTreeMap::len)
            .collect::<Vec<_>>(),
        [20, 12, 21]
    );

    let start = now();
    let mut subs = Vec::new();
    for (i, (prefixes, want)) in PREFIXES.iter().zip(&wants).enumerate() {
        let host = lan.host(i + 1);
        let opts = SubOpts::new(want.values().sum(), prefixes);
        let mut p = host
            .spawn(
                &sub_bin,
                &opts.args(&endpoint(host, encap, Iface::Addr, PORT)),
            )
            .expect("spawning pgm-sub");
        wait_joined(&mut p, host, encap, PORT, Duration::from_secs(10)).expect("pgm-sub joining");
        subs.push(p);
    }
    let host = lan.host(0);
    let opts = PubOpts::new(COUNT, &topics, "12-200", "50M");
    let publisher = host
        .spawn(
            &pub_bin,
            &opts.args(&endpoint(host, encap, Iface::Addr, PORT)),
        )
        .expect("spawning pgm-pub");
    let sent_at = now();
    let subs = wait_all(subs, start + LIMIT);
    let elapsed = sent_at.elapsed();
    let publisher = wait_all(
        vec![publisher],
        (start + LIMIT).max(now() + Duration::from_secs(3)),
    )
    .pop()
    .expect("one process in, one out");
    let drops: Vec<u64> = (1..=3).map(|h| lan.dropped(h).map_or(0, |d| d.0)).collect();
    let mut report = format!("  {}\n", publisher.describe());
    for s in &subs {
        let _ = writeln!(report, "  {}", s.describe());
    }
    eprintln!(
        "{name}: {:.2} s, ingress drops {drops:?}\n{report}",
        elapsed.as_secs_f64()
    );

    let mut problems = Vec::new();
    for (s, want) in subs.iter().zip(&wants) {
        for p in topic_problems(s, want) {
            problems.push(format!("{}: {p}", s.name));
        }
        if s.u("naks_sent") == 0 {
            problems.push(format!("{}: sent no NAKs despite loss", s.name));
        }
        if s.u("filtered_out") == 0 {
            problems.push(format!("{}: filtered nothing", s.name));
        }
    }
    if !publisher.out.status.success() || publisher.timed_out {
        problems.push(format!(
            "publisher exit {} (timed out: {})",
            publisher.out.status, publisher.timed_out
        ));
    }
    if publisher.get("sent") != Some(COUNT) {
        problems.push(format!("publisher sent {:?}", publisher.get("sent")));
    }
    if publisher.u("naks_received") == 0 || publisher.u("rdata_sent") == 0 {
        problems.push("publisher: no NAKs received or no RDATA sent despite loss".to_owned());
    }
    if drops.contains(&0) {
        problems.push(format!("a loss rule dropped nothing: {drops:?}"));
    }
    assert!(
        problems.is_empty(),
        "{name}: {} problem(s):\n  {}\n{report}",
        problems.len(),
        problems.join("\n  ")
    );
}

#[test]
fn pubsub_epgm_200k_msgs_50_topics_3_subs_loss_5pct() {
    run(
        "pubsub_epgm_200k_msgs_50_topics_3_subs_loss_5pct",
        Encap::Udp,
    );
}

#[test]
fn pubsub_raw_pgm_200k_msgs_50_topics_3_subs_loss_5pct() {
    run(
        "pubsub_raw_pgm_200k_msgs_50_topics_3_subs_loss_5pct",
        Encap::Raw,
    );
}
