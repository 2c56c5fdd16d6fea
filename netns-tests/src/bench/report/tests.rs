//! The report's rendering, from synthetic results.

use super::*;
use crate::bench::search::SearchOutcome;
use crate::bench::{LatencyResult, SearchResult};

fn probe(rate: f64, ok: bool, count: u64, cpu_s: f64) -> Probe {
    Probe {
        requested: Some(rate),
        offered: rate,
        delivered: if ok { rate } else { rate / 2.0 },
        count,
        ok,
        note: if ok {
            String::new()
        } else {
            "gaps = Some(3), want 0".into()
        },
        sender_rss_kib: 2048,
        receiver_rss_kib: 4096,
        sender_cpu_s: cpu_s,
    }
}

fn search(system: System, size: usize, best: f64) -> SearchResult {
    SearchResult {
        system,
        size,
        outcome: SearchOutcome {
            probes: vec![
                probe(best, true, 1000, 0.0),
                probe(best * 2.0, false, 1000, 0.0),
            ],
        },
    }
}

/// A LAN with the limit, ours and pub/sub at 64 B: ours = `ours` × the limit.
fn lan(seg: Segmentation, udp: f64, gso: f64, ours: f64) -> Results {
    Results {
        lan: seg,
        parts: vec!["limit", "pgm", "pubsub"],
        searches: vec![
            search(System::Udp, 64, udp),
            search(System::UdpGso, 64, gso),
            search(System::OursRaw, 64, udp * ours),
            search(System::OursEpgm, 64, gso * ours),
            search(System::PubSub, 64, gso * 2.0),
        ],
        load: ("0.10 0.20 0.30".into(), "1.00 1.00 1.00".into()),
        ..Results::default()
    }
}

fn both() -> Bench {
    let mut switch = lan(Segmentation::Switch, 100_000.0, 1_000_000.0, 0.5);
    switch.parts = crate::bench::PARTS.to_vec();
    switch.latency = vec![
        LatencyResult {
            system: System::Udp,
            p50: 40.0,
            p99: 80.0,
            ..LatencyResult::default()
        },
        LatencyResult {
            system: System::OursRaw,
            busy_poll: "off".into(),
            p50: 44.0,
            p99: 100.0,
            ..LatencyResult::default()
        },
    ];
    let point = |receivers, senders, best: f64, cpu_s| ScaleResult {
        receivers,
        senders,
        outcome: SearchOutcome {
            probes: vec![probe(best, true, 10_000, cpu_s)],
        },
    };
    switch.scale = vec![
        point(2, 1, 400_000.0, 0.02),
        point(2, 4, 600_000.0, 0.03),
        point(1, 1, 500_000.0, 0.01),
        point(8, 1, 100_000.0, 0.08),
    ];
    let mut plain = lan(Segmentation::Plain, 90_000.0, 300_000.0, 0.8);
    plain.errors.push("zmq: something".into());
    Bench {
        lans: vec![switch, plain],
        errors: Vec::new(),
        wall_s: 600.0,
    }
}

fn cfg() -> Config {
    let mut c = Config::smoke(std::env::temp_dir());
    c.command = "scripts/bench".into();
    c
}

/// The table that starts at the line holding `head`, up to the first blank line.
fn table<'a>(md: &'a str, head: &str) -> Vec<&'a str> {
    md.lines()
        .skip_while(|l| !(l.starts_with('|') && l.contains(head)))
        .take_while(|l| l.starts_with('|'))
        .collect()
}

fn cells(line: &str) -> Vec<&str> {
    line.trim_matches('|').split(" | ").map(str::trim).collect()
}

#[test]
fn the_summary_has_one_column_per_lan_for_each_figure() {
    let md = markdown(&cfg(), &both());
    let t = table(&md, "ours/limit (switch)");
    assert_eq!(
        cells(t[0]),
        [
            "workload",
            "UDP limit (switch)",
            "UDP limit (plain)",
            "ours (switch)",
            "ours (plain)",
            "ours/limit (switch)",
            "ours/limit (plain)"
        ],
        "{md}"
    );
    // The limit measured both ways on each LAN.
    let row_of = |label: &str| {
        let line = t.iter().find(|l| l.contains(label));
        cells(line.unwrap_or_else(|| panic!("no row {label}:\n{md}")))
    };
    assert_eq!(row_of("plain UDP 64 B, sendmmsg")[1..3], ["100 k", "90 k"]);
    assert_eq!(
        row_of("plain UDP 64 B, with GSO and GRO")[1..3],
        ["1.00 M", "300 k"]
    );
    // Ours against the limit of its own method and LAN.
    let raw = row_of("1 msg/packet 64 B, raw PGM");
    assert_eq!(
        raw[1..],
        ["100 k", "90 k", "50 k", "72 k", "0.50×", "0.80×"]
    );
    let epgm = row_of("1 msg/packet 64 B, EPGM");
    assert_eq!(
        epgm[1..],
        ["1.00 M", "300 k", "500 k", "240 k", "0.50×", "0.80×"]
    );
    let ps = row_of("pub/sub 64 B");
    assert_eq!(ps[3..], ["2.00 M", "600 k", "2.00×", "2.00×"]);
    // Nothing measured at 1400 B: no such rows.
    assert!(!t.iter().any(|l| l.contains("1400 B,")), "{md}");
}

#[test]
fn a_table_leaves_out_the_lans_that_did_not_measure_it() {
    let md = markdown(&cfg(), &both());
    let t = table(&md, "| round trip |");
    assert_eq!(
        cells(t[0]),
        [
            "round trip",
            "UDP (switch)",
            "OpenPGM (switch)",
            "ours (switch)",
            "ours/UDP (switch)",
            "ours/OpenPGM (switch)"
        ],
        "{md}"
    );
    assert_eq!(t.len(), 3, "blocking only (no --spin runs): {t:?}");
    assert_eq!(cells(t[2])[4], "1.10× / 1.25×");
    // No loss runs on either LAN: no loss table.
    assert!(!md.contains("| under loss |"), "{md}");
    // The details say which LAN.
    let searches = table(&md, "| LAN | system |");
    assert!(searches
        .iter()
        .any(|l| l.starts_with("| plain | plain UDP with GSO")));
    assert!(
        md.contains("- switch LAN, ours-pgm 64 B at 100 k: gaps"),
        "{md}"
    );
    assert!(md.contains("- plain LAN: zmq: something"), "{md}");
    assert!(md.contains("- **plain LAN** (`--lan plain`)"), "{md}");
    assert!(md.contains("Measured: parts limit, pgm, pubsub"), "{md}");
}

#[test]
fn targets_get_a_measured_and_verdict_column_per_lan() {
    let md = markdown(&cfg(), &both());
    let t = table(&md, "| target |");
    assert_eq!(
        cells(t[0]),
        [
            "target",
            "measured (switch)",
            "measured (plain)",
            "verdict (switch)",
            "verdict (plain)"
        ]
    );
    let ps = t.iter().find(|l| l.contains("pub/sub 64 B ≥ 3 M")).unwrap();
    assert_eq!(
        cells(ps)[1..],
        ["2.00 M msg/s", "600 k msg/s", "**misses**", "**misses**"]
    );
    let lat = t.iter().find(|l| l.contains("blocking")).unwrap();
    assert_eq!(cells(lat)[2], "—", "no latency on the plain LAN: {lat}");
}

#[test]
fn the_scale_table_shows_rate_and_cpu_per_message_against_the_first_row() {
    let md = markdown(&cfg(), &both());
    assert!(md.contains("## Scale"), "{md}");
    assert!(md.contains("### switch LAN"), "{md}");
    let t = table(&md, "| series |");
    let rows: Vec<Vec<&str>> = t[2..].iter().map(|l| cells(l)).collect();
    let heads: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[1])).collect();
    assert_eq!(
        heads,
        [
            ("receivers", "1 → 1"),
            ("receivers", "1 → 2"),
            ("receivers", "1 → 8"),
            ("publishers", "1 → 2"),
            ("publishers", "4 → 2"),
        ]
    );
    // 0.01 s over 10 000 messages = 1 µs; 8 receivers: 8 µs, 8× the first row.
    assert_eq!(rows[0][2..6], ["500 k", "1.00", "1.00×", "1.00×"]);
    assert_eq!(rows[2][2..6], ["100 k", "8.00", "0.20×", "8.00×"]);
    assert_eq!(rows[4][2..6], ["600 k", "3.00", "1.50×", "1.50×"]);
}

#[test]
fn one_lan_gets_plain_column_heads() {
    let mut b = both();
    b.lans.truncate(1);
    let md = markdown(&cfg(), &b);
    let t = table(&md, "| workload | UDP limit |");
    assert_eq!(cells(t[0]), ["workload", "UDP limit", "ours", "ours/limit"]);
    assert!(!md.contains("### switch LAN"), "{md}");
}

#[test]
fn the_json_tags_every_measurement_with_its_lan() {
    let v = to_json(&cfg(), &both());
    let lans: Vec<&str> = v["lans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["lan"].as_str().unwrap())
        .collect();
    assert_eq!(lans, ["switch", "plain"]);
    assert_eq!(v["lans"][1]["parts"][2], "pubsub");
    let searches = v["searches"].as_array().unwrap();
    assert_eq!(searches.len(), 10);
    assert_eq!(searches[0]["lan"], "switch");
    assert_eq!(searches[9]["lan"], "plain");
    assert_eq!(searches[0]["probes"].as_array().unwrap().len(), 2);
    let scale = v["scale"].as_array().unwrap();
    assert_eq!(scale.len(), 4);
    assert_eq!(scale[0]["lan"], "switch");
    assert!((scale[0]["cpu_us_per_msg"].as_f64().unwrap() - 2.0).abs() < 1e-9);
    assert_eq!(v["latency"][0]["lan"], "switch");
}
