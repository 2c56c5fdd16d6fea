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

use std::time::Duration;

use netns_tests::lan::Lan;
use netns_tests::tools::{assert_no_problems, begin_test, finish_run, Encap};
use netns_tests::zmq::{
    expected_topics, pgm_pub, pgm_sub, spawn_pub, spawn_sub_joined, topic_problems, topics,
    PubOpts, SubOpts,
};
use netns_tests::{named_tests, now};

const PORT: u16 = 7800;
const LIMIT: Duration = Duration::from_secs(50);
const COUNT: u64 = 200_000;
const LOSS_PERMILLE: u32 = 50;
/// The prefix sets of the subscribers on hosts 2, 3 and 4.
const PREFIXES: [&[&str]; 3] = [&["a", "b"], &["b5", "c", "a0"], &["e", "d1", "a0", "a"]];

fn run(name: &str, encap: Encap) {
    let Some(_serial) = begin_test(name) else {
        return;
    };
    pgm_pub().expect("building pgm-pub");
    pgm_sub().expect("building pgm-sub");
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
        let opts = SubOpts::new(want.values().sum(), prefixes);
        subs.push(spawn_sub_joined(lan.host(i + 1), encap, PORT, &opts).expect("starting pgm-sub"));
    }
    let opts = PubOpts::new(COUNT, &topics, "12-200", "50M");
    let publisher = spawn_pub(lan.host(0), encap, PORT, &opts).expect("spawning pgm-pub");
    let done = finish_run(publisher, subs, start + LIMIT, Duration::from_secs(3));
    let drops: Vec<u64> = (1..=3).map(|h| lan.dropped(h).map_or(0, |d| d.0)).collect();
    eprintln!(
        "{name}: {:.2} s, ingress drops {drops:?}\n{}",
        done.elapsed.as_secs_f64(),
        done.describe()
    );
    let (publisher, subs) = (&done.sender, &done.receivers);

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
    problems.extend(publisher.crash_problems());
    problems.extend(publisher.sent_problem("publisher", COUNT));
    if publisher.u("naks_received") == 0 || publisher.u("rdata_sent") == 0 {
        problems.push("publisher: no NAKs received or no RDATA sent despite loss".to_owned());
    }
    if drops.contains(&0) {
        problems.push(format!("a loss rule dropped nothing: {drops:?}"));
    }
    assert_no_problems(name, &problems, &done.all());
}

named_tests! {
    pubsub_epgm_200k_msgs_50_topics_3_subs_loss_5pct => run(Encap::Udp);
    pubsub_raw_pgm_200k_msgs_50_topics_3_subs_loss_5pct => run(Encap::Raw);
}
