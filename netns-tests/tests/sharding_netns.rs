//! Topic → group sharding (issue 17 §1, docs/sharding.md) on a namespace LAN whose bridge does
//! IGMPv3 snooping with a querier: the switch, not the subscriber, filters.
//!
//! Host 1 runs `pgm-pub` with 8 shards (`s0`..`s7`, each its own group; 4 topics each, equal
//! message sizes, round-robin). Host 2 runs `pgm-sub --subscribe s3` with the same `--shard`
//! flags, host 3 `pgm-sub --subscribe ''`: both verify their topics exactly. Host 2 joins one
//! group, host 3 all nine (the endpoint's too), so on host 2's link (the `rx_bytes` counter of
//! its `eth0`, read before the publisher starts and after it has ended) arrive at most 1/8 of
//! the bytes on host 3's, plus the SPMs of host 2's one session (about 1/8 of those that reach
//! host 3, so this allowance is slack) and a little for IGMP queries. Without snooping both
//! links would carry everything: the ratio is what shows the bridge filtered.
//!
//! With libzmq (`python3-zmq`), host 4 runs a libzmq SUB connected to the `s5` shard's group
//! alone: it must get exactly `s5`'s topics (each group's wire is a plain publisher's).
//!
//! The byte ratio goes to BENCHMARKS.md ("## Topic→group sharding", kept by hand and by
//! `scripts/bench`'s FOREIGN_SECTIONS). Needs root; prints SKIPPED and passes otherwise.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use netns_tests::deps::{require, Need};
use netns_tests::lan::{Host, Lan, GROUP};
use netns_tests::proc::Proc;
use netns_tests::tools::{
    assert_no_problems, begin_test, endpoint, finish_run, Encap, Finished, Iface,
};
use netns_tests::zmq::{
    pgm_pub, pgm_sub, topic_problems, zmq_python, PubOpts, SubOpts, ZmqSubOpts,
};
use netns_tests::{named_tests, now};

const PORT: u16 = 7640;
const SHARDS: usize = 8;
const TOPICS_PER_SHARD: usize = 4;
/// Messages: a multiple of the 32 topics, so every shard gets the same bytes.
const COUNT: u64 = 64_000;
/// Payload bytes of every message.
const SIZE: u64 = 200;
/// The shard that host 2 subscribes to, and the one the libzmq SUB connects to.
const MINE: usize = 3;
const ZMQ_SHARD: usize = 5;
const LIMIT: Duration = Duration::from_secs(50);
/// The most an EPGM or PGM SPM takes on the link (Ethernet, IP, UDP, PGM header, SPM body
/// and options).
const SPM_FRAME: u64 = 120;
/// Room for the IGMP queries of the bridge's querier and a host's own reports.
const IGMP_SLACK: u64 = 2048;

/// The group of shard `k`: 239.192.2.(k+1) (the endpoint's is `GROUP`, 239.192.1.1).
fn shard_group(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(239, 192, 2, k as u8 + 1)
}

fn shard_flags() -> Vec<String> {
    (0..SHARDS)
        .flat_map(|k| ["--shard".to_owned(), format!("s{k}={}", shard_group(k))])
        .collect()
}

/// `s0.0`..`s0.3`, `s1.0`, …: four topics per shard.
fn topics() -> Vec<String> {
    (0..SHARDS)
        .flat_map(|k| (0..TOPICS_PER_SHARD).map(move |j| format!("s{k}.{j}")))
        .collect()
}

/// Per topic, what a subscriber of the topics starting with `prefix` gets.
fn wanted(prefix: &str) -> BTreeMap<String, u64> {
    let t = topics();
    let per_topic = COUNT / t.len() as u64;
    t.into_iter()
        .filter(|t| t.starts_with(prefix))
        .map(|t| (t, per_topic))
        .collect()
}

/// The bytes `host`'s `eth0` has received so far.
fn rx_bytes(host: &Host) -> u64 {
    let text = host
        .run("cat", &["/sys/class/net/eth0/statistics/rx_bytes"])
        .expect("reading rx_bytes");
    text.trim().parse().expect("rx_bytes is a number")
}

/// True when `host` is a member of every group in `groups` (/proc/net/igmp lists them as
/// little-endian hex).
fn has_joined(host: &Host, groups: &[Ipv4Addr]) -> bool {
    let Ok(list) = host.run("cat", &["/proc/net/igmp"]) else {
        return false;
    };
    groups.iter().all(|g| {
        let o = g.octets();
        list.contains(&format!("{:02X}{:02X}{:02X}{:02X}", o[3], o[2], o[1], o[0]))
    })
}

/// Spawns `program args` on `host` and waits (10 s at most) until `groups` are joined there,
/// then a little longer for the reports to reach the bridge.
fn spawn_joined(host: &Host, program: &Path, args: &[String], groups: &[Ipv4Addr]) -> Proc {
    let mut p = host.spawn(program, args).expect("spawning a subscriber");
    let deadline = now() + Duration::from_secs(10);
    while !has_joined(host, groups) {
        if let Some(st) = p.try_wait().expect("try_wait") {
            panic!(
                "{} exited ({st}) before joining:\n{}",
                p.name(),
                p.stderr_text()
            );
        }
        assert!(
            now() < deadline,
            "{} did not join {groups:?}:\n{}",
            p.name(),
            p.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    std::thread::sleep(Duration::from_millis(300));
    p
}

/// Every group: the shards' and the endpoint's.
fn all_groups() -> Vec<Ipv4Addr> {
    let mut g: Vec<Ipv4Addr> = (0..SHARDS).map(shard_group).collect();
    g.push(GROUP);
    g
}

/// Starts the subscribers, each once it has joined: `pgm-sub` of `s3` on host 2, of
/// everything on host 3, and with `zmq` the libzmq SUB of the `s5` group on host 4.
fn start_subscribers(lan: &Lan, encap: Encap, zmq: bool) -> Vec<Proc> {
    let pgm_sub = pgm_sub().expect("building pgm-sub");
    let sub_args = |host: &Host, prefix: &str, count: u64| {
        let mut opts = SubOpts::new(count, &[prefix]);
        opts.timeout_s = 10.0;
        opts.extra = shard_flags();
        opts.args(&endpoint(host, encap, Iface::Addr, PORT))
    };
    let (h2, h3) = (lan.host(1), lan.host(2));
    let mine = sub_args(h2, &format!("s{MINE}"), COUNT / SHARDS as u64);
    let mut subs = vec![
        spawn_joined(h2, &pgm_sub, &mine, &[shard_group(MINE)]),
        spawn_joined(h3, &pgm_sub, &sub_args(h3, "", COUNT), &all_groups()),
    ];
    if zmq {
        let python = zmq_python().expect("libzmq with PGM");
        let host = lan.host(3);
        let ep = format!("epgm://{};{}:{PORT}", host.addr(), shard_group(ZMQ_SHARD));
        let zopts = ZmqSubOpts::new(COUNT / SHARDS as u64, &[""]);
        let mut p = host
            .spawn(&python, &zopts.args(&ep))
            .expect("spawning a libzmq SUB");
        p.wait_ready(Duration::from_secs(10))
            .expect("libzmq SUB ready");
        let deadline = now() + Duration::from_secs(10);
        while !has_joined(host, &[shard_group(ZMQ_SHARD)]) {
            assert!(now() < deadline, "libzmq SUB did not join");
            std::thread::sleep(Duration::from_millis(25));
        }
        // Until the bridge has its report, the group does not reach this port.
        std::thread::sleep(Duration::from_millis(300));
        subs.push(p);
    }
    subs
}

fn run(name: &str, encap: Encap) {
    let Some(_serial) = begin_test(name) else {
        return;
    };
    let zmq = encap == Encap::Udp && require(name, &[Need::Zmq]);
    let pgm_pub = pgm_pub().expect("building pgm-pub");
    let lan = Lan::new(4).expect("building the LAN");
    lan.set_igmp_snooping(true)
        .expect("IGMP snooping on the bridge");
    // The bridge floods until its querier's first response interval (1 s) is over.
    std::thread::sleep(Duration::from_millis(2500));

    let start = now();
    let subs = start_subscribers(&lan, encap, zmq);
    let before = [rx_bytes(lan.host(1)), rx_bytes(lan.host(2))];
    let mut opts = PubOpts::new(COUNT, &topics(), &SIZE.to_string(), "20M");
    opts.linger_s = 1.0;
    opts.extra = shard_flags();
    let host = lan.host(0);
    let publisher = host
        .spawn(
            &pgm_pub,
            &opts.args(&endpoint(host, encap, Iface::Addr, PORT)),
        )
        .expect("spawning pgm-pub");
    let done = finish_run(publisher, subs, start + LIMIT, Duration::from_secs(5));
    // The publisher has ended (its last SPMs and FINs are counted too).
    let after = [rx_bytes(lan.host(1)), rx_bytes(lan.host(2))];
    let (publisher, subs) = (&done.sender, &done.receivers);

    let mut problems = Vec::new();
    problems.extend(publisher.crash_problems());
    problems.extend(publisher.sent_problem("pgm-pub", COUNT));
    let wants = [
        wanted(&format!("s{MINE}")),
        wanted(""),
        wanted(&format!("s{ZMQ_SHARD}")),
    ];
    for (s, want) in subs.iter().zip(&wants) {
        for p in topic_problems(s, want) {
            problems.push(format!("{}: {p}", s.name));
        }
    }
    problems.extend(joined_problems(&subs[0], &[shard_group(MINE)]));
    problems.extend(joined_problems(&subs[1], &all_groups()));
    let link = [after[0] - before[0], after[1] - before[1]];
    problems.extend(byte_problems(name, publisher, link));
    eprintln!("{}", done.describe());
    assert_no_problems(name, &problems, &done.all());
}

/// Problems with the link bytes `[mine, all]` of the two `pgm-sub`s: the `s3` subscriber's
/// must be at most 1/8 of the other's plus its session's SPMs, and hold its shard's data.
fn byte_problems(name: &str, publisher: &Finished, [mine, all]: [u64; 2]) -> Vec<String> {
    let spms = publisher.json["shards"]
        .as_array()
        .and_then(|s| {
            s.iter()
                .find(|e| e["group"] == shard_group(MINE).to_string())
        })
        .and_then(|e| e["spm_sent"].as_u64());
    let Some(spms) = spms else {
        return vec![format!("pgm-pub: no spm_sent for shard {MINE}")];
    };
    let allowance = spms * SPM_FRAME + IGMP_SLACK;
    eprintln!(
        "{name}: link bytes: subscriber of s{MINE} {mine} B, of everything {all} B: ratio \
         {:.4} (1/{SHARDS} = {:.4}); allowance {allowance} B ({spms} SPMs of its session)",
        mine as f64 / all as f64,
        1.0 / SHARDS as f64,
    );
    let mut problems = Vec::new();
    if mine > all / SHARDS as u64 + allowance {
        problems.push(format!(
            "the s{MINE} subscriber's link carried {mine} B, more than 1/{SHARDS} of the \
             everything subscriber's {all} B plus {allowance} B: the bridge did not filter"
        ));
    }
    // Its own shard's frames (topic and payload) are on its link, in full.
    let data = COUNT / SHARDS as u64 * (SIZE + 4);
    if mine < data {
        problems.push(format!(
            "the s{MINE} subscriber's link carried {mine} B, less than its shard's {data} B"
        ));
    }
    problems
}

/// Problems when subscriber `s`'s shard entries do not name exactly `groups`.
fn joined_problems(s: &Finished, groups: &[Ipv4Addr]) -> Vec<String> {
    let mut got: Vec<String> = s.json["shards"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["group"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut want: Vec<String> = groups.iter().map(ToString::to_string).collect();
    got.sort();
    want.sort();
    if got == want {
        Vec::new()
    } else {
        vec![format!("{}: joined {got:?}, want {want:?}", s.name)]
    }
}

named_tests! {
    sharding_epgm_8_shards_igmp_snooping => run(Encap::Udp);
    sharding_raw_pgm_8_shards_igmp_snooping => run(Encap::Raw);
}
