//! `pgm-pub --shard` → `pgm-sub --shard` over EPGM on the loopback interface of the root
//! namespace (no root needed): three shard groups plus the endpoint's. IP_MULTICAST_IF is
//! 127.0.0.1 and loop is on, so nothing leaves through a real interface. Every child process is
//! killed when its guard drops, and every wait is bounded.
//!
//! This file's ports: 13000..13900 (below the kernel's ephemeral range, apart from the other
//! test files' windows).

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::{collections::BTreeMap, process::Command};

use common::{fails, json, sub_topics_exact, Proc};

const PUB: &str = env!("CARGO_BIN_EXE_pgm-pub");
const SUB: &str = env!("CARGO_BIN_EXE_pgm-sub");

/// The endpoint's group and three shard groups, 239.195.X.{1..4}, and the port.
fn groups() -> ([String; 4], u16) {
    let pid = std::process::id();
    let x = (pid >> 8) as u8;
    (
        [1, 2, 3, 4].map(|n| format!("239.195.{x}.{n}")),
        13_000 + (pid % 900) as u16,
    )
}

fn endpoint(group: &str, port: u16) -> String {
    format!("epgm://127.0.0.1;{group}:{port}")
}

/// `--shard a=G1 --shard b=G2 --shard c=G3`.
fn shard_args(g: &[String; 4]) -> Vec<String> {
    ["a", "b", "c"]
        .iter()
        .zip(&g[1..])
        .flat_map(|(p, g)| ["--shard".to_owned(), format!("{p}={g}")])
        .collect()
}

/// A verifying pgm-sub of `prefixes` expecting `count` messages, started once it listens.
fn sub(ep: &str, extra: &[String], prefixes: &[&str], count: u64) -> Proc {
    let mut args = extra.to_vec();
    args.extend(["--verify", "--count", &count.to_string(), "--timeout", "10"].map(str::to_owned));
    for p in prefixes {
        args.extend(["--subscribe".to_owned(), (*p).to_owned()]);
    }
    args.push(ep.to_owned());
    Proc::spawn_listening(
        &format!("pgm-sub {prefixes:?}"),
        Command::new(SUB).args(&args),
    )
}

/// 12 topics, three per prefix a, b, c, d (d has no shard: the endpoint's group).
fn topics() -> Vec<String> {
    ["a", "b", "c", "d"]
        .iter()
        .flat_map(|p| (0..3).map(move |i| format!("{p}{i}")))
        .collect()
}

/// What a subscriber of `prefixes` must count per topic when `count` messages go round-robin.
fn expected(topics: &[String], count: u64, prefixes: &[&str]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for i in 0..count {
        let t = &topics[(i % topics.len() as u64) as usize];
        if prefixes.iter().any(|p| t.starts_with(p)) {
            *m.entry(t.clone()).or_default() += 1;
        }
    }
    m
}

fn check(p: Proc, want: &BTreeMap<String, u64>) -> serde_json::Value {
    let name = p.name.clone();
    let (v, out) = sub_topics_exact(p, want);
    for k in ["gaps", "duplicates", "corrupt", "unrecoverable"] {
        assert_eq!(v[k], 0, "{name}: {k}: {out}");
    }
    v
}

/// The `group` entries of a `"shards"` list, and a field of each.
fn per_group(v: &serde_json::Value, field: &str) -> Vec<(String, u64)> {
    v["shards"]
        .as_array()
        .unwrap_or_else(|| panic!("no shards: {v}"))
        .iter()
        .map(|s| {
            (
                s["group"].as_str().unwrap().to_owned(),
                s[field].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn sharded_subscribers_join_only_what_they_need_and_verify_exactly() {
    let (g, port) = groups();
    let ep = endpoint(&g[0], port);
    let shards = shard_args(&g);
    let topics = topics();
    let count = 12_000;
    let (p_b, p_all, p_ad): (&[&str], &[&str], &[&str]) = (&["b"], &[""], &["a1", "d"]);
    let (w_b, w_all, w_ad) = (
        expected(&topics, count, p_b),
        expected(&topics, count, p_all),
        expected(&topics, count, p_ad),
    );
    let s_b = sub(&ep, &shards, p_b, w_b.values().sum());
    let s_all = sub(&ep, &shards, p_all, count);
    let s_ad = sub(&ep, &shards, p_ad, w_ad.values().sum());
    // A plain pgm-sub on the c shard's group (as a libzmq SUB would connect): c topics only.
    let w_c = expected(&topics, count, &["c"]);
    let s_c = sub(&endpoint(&g[3], port), &[], &[""], w_c.values().sum());

    let mut args = shards.clone();
    args.extend(
        [
            "--count",
            &count.to_string(),
            "--size",
            "12-300",
            "--rate",
            "20M",
        ]
        .map(str::to_owned),
    );
    args.extend(["--linger".to_owned(), "1".to_owned()]);
    for t in &topics {
        args.extend(["--topic".to_owned(), t.clone()]);
    }
    args.push(ep.clone());
    let (status, out, err) = Proc::spawn("pgm-pub", Command::new(PUB).args(&args)).finish();
    assert!(status.success(), "pgm-pub failed: {status}\n{err}");
    let p = json(&out);
    assert_eq!(p["sent"], count, "{out}");
    // Per group: the endpoint's (d topics) first, then a, b, c; a quarter each.
    assert_eq!(
        per_group(&p, "sent"),
        g.iter().map(|g| (g.clone(), count / 4)).collect::<Vec<_>>(),
        "{out}"
    );
    assert_eq!(p["shards"][1]["prefixes"][0], "a", "{out}");

    let v = check(s_b, &w_b);
    assert_eq!(
        per_group(&v, "received"),
        [(g[2].clone(), count / 4)],
        "{v}"
    );
    let v = check(s_all, &w_all);
    assert_eq!(
        per_group(&v, "received"),
        g.iter().map(|g| (g.clone(), count / 4)).collect::<Vec<_>>(),
        "{v}"
    );
    // "a1" and "d": the a shard's group and the endpoint's, nothing of b or c.
    let v = check(s_ad, &w_ad);
    let joined: Vec<String> = per_group(&v, "received")
        .into_iter()
        .map(|(g, _)| g)
        .collect();
    assert_eq!(joined, [g[0].clone(), g[1].clone()], "{v}");
    // a0 and a2 (the last few may still be on their way when the last d message ends it).
    let filtered = v["filtered_out"].as_u64().unwrap();
    assert!((1..=count / 6).contains(&filtered), "{v}");
    let v = check(s_c, &w_c);
    assert!(v.get("shards").is_none(), "{v}");
}

#[test]
fn bad_shard_flags_are_usage_errors() {
    let (g, port) = groups();
    let ep = endpoint(&g[0], port);
    let cases: &[(&str, &[&str], &str)] = &[
        (SUB, &["--shard", "md.A", &ep], "expected PREFIX=GROUP"),
        (PUB, &["--shard", "md.A=eth0", &ep], "not an IP address"),
        (
            PUB,
            &["--shard", "md.A=10.1.2.3", &ep],
            "not a multicast group",
        ),
        (
            SUB,
            &["--shard", "md.A=ff18::1", "--subscribe", "", &ep],
            "other IP family",
        ),
        (
            PUB,
            &[
                "--shard",
                "md.A=239.195.0.2",
                "--shard",
                "md.A=239.195.0.3",
                &ep,
            ],
            "prefix given twice",
        ),
        (PUB, &["--shard", "=239.195.0.2", &ep], "empty prefix"),
        (
            PUB,
            &["--tokio", "--shard", "a=239.195.0.2", &ep],
            "--tokio",
        ),
    ];
    for (bin, args, needle) in cases {
        let (code, err) = fails(bin, args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err:?}");
    }
}

/// `pgm-sub --discover-shards` learns the map from `pgm-pub --announce-shards`: it joins the b
/// shard's group alone and verifies what it gets. It joins about a millisecond after the
/// first announcement, by when each session has sent its first burst (about 64 KiB, before
/// the rate limit bites): those messages it misses, as any late joiner (not a gap). The b
/// shard is 1.3 MB here, so at least 80 % must arrive, a gap-free tail of each topic.
#[test]
fn a_subscriber_discovers_the_announced_map() {
    let (g, port) = groups();
    // Groups of their own, apart from the other test's.
    let g: [String; 4] = g.map(|a| a.replace("239.195.", "239.196."));
    let ep = endpoint(&g[0], port + 1);
    let topics = topics();
    let count = 48_000;
    let want = expected(&topics, count, &["b"]);
    let mut args: Vec<String> = ["--discover-shards", "5", "--verify", "--timeout", "2"]
        .map(str::to_owned)
        .to_vec();
    args.extend(["--subscribe".to_owned(), "b".to_owned(), ep.clone()]);
    let s = Proc::spawn("pgm-sub --discover-shards", Command::new(SUB).args(&args));
    // It says nothing until it has the map: give it time to listen for the first one.
    std::thread::sleep(std::time::Duration::from_millis(300));

    let mut args = shard_args(&g);
    args.extend(
        [
            "--announce-shards",
            "0.05",
            "--count",
            &count.to_string(),
            "--size",
            "100",
            "--rate",
            "10M",
            "--linger",
            "1",
        ]
        .map(str::to_owned),
    );
    for t in &topics {
        args.extend(["--topic".to_owned(), t.clone()]);
    }
    args.push(ep);
    let (status, out, err) = Proc::spawn("pgm-pub", Command::new(PUB).args(&args)).finish();
    assert!(status.success(), "pgm-pub failed: {status}\n{err}");
    assert_eq!(json(&out)["sent"], count, "{out}");

    let (status, out, err) = s.finish();
    assert!(status.success(), "pgm-sub failed: {status}\n{out}\n{err}");
    let v = json(&out);
    assert_eq!(per_group(&v, "received").len(), 1, "{v}");
    assert_eq!(v["shards"][0]["group"], g[2], "{v}");
    for (t, n) in v["topics"].as_object().unwrap() {
        let n = n.as_u64().unwrap();
        assert!(
            n <= want[t] && n * 10 >= want[t] * 8,
            "{t}: {n} of {}: {v}",
            want[t]
        );
    }
    assert_eq!(v["topics"].as_object().unwrap().len(), want.len(), "{v}");
    for k in ["gaps", "duplicates", "corrupt", "unrecoverable"] {
        assert_eq!(v[k], 0, "{k}: {v}");
    }
}
