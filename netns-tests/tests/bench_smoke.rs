//! The benchmark harness in `--smoke` mode: every workload once with tiny counts on both LANs
//! (the plain one runs the rate parts), checking the harness (probes run, results parsed,
//! report and plot written), not the numbers. Needs root;
//! skips loudly otherwise. Writes into a temporary directory, never the workspace's
//! `BENCHMARKS.md`.

use netns_tests::{
    bench::{run, Config, Results, System, PLAIN_DEFAULT_PARTS},
    deps::{require, Need},
    lan::Segmentation,
};

#[test]
fn bench_smoke_exercises_every_part() {
    if !require(
        "bench_smoke_exercises_every_part",
        &[Need::Root, Need::Lan, Need::OpenPgm, Need::Zmq],
    ) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("pgm-bench-smoke-test-{}", std::process::id()));
    let mut cfg = Config::smoke(dir.clone());
    cfg.command = "cargo test -p netns-tests --test bench_smoke".to_owned();
    let bench = run(&cfg).expect("benchmark harness");
    assert!(
        bench.all_errors().is_empty(),
        "parts failed: {:#?}",
        bench.all_errors()
    );
    let res = bench.on(Segmentation::Switch).expect("switch LAN measured");
    let plain = bench.on(Segmentation::Plain).expect("plain LAN measured");
    assert_eq!(plain.parts, PLAIN_DEFAULT_PARTS);

    let systems = [
        (System::Udp, 64),
        (System::UdpGso, 64),
        (System::OpenPgm, 64),
        (System::OursRaw, 64),
        (System::OursEpgm, 64),
        (System::Udp, 1400),
        (System::UdpGso, 1400),
        (System::OpenPgm, 1400),
        (System::OursRaw, 1400),
        (System::OursEpgm, 1400),
        (System::PubSub, 64),
        (System::Zmq, 64),
        (System::OursRawV6, 64),
        (System::OursEpgmV6, 64),
        (System::OursRawV6, 1400),
        (System::OursEpgmV6, 1400),
    ];
    for (sys, size) in systems {
        let s = res
            .search(sys, size)
            .unwrap_or_else(|| panic!("no search of {sys:?} {size} B"));
        assert!(!s.outcome.probes.is_empty());
        for p in &s.outcome.probes {
            assert!(
                !p.note.contains("harness error"),
                "{sys:?} {size} B: {}",
                p.note
            );
            assert!(p.offered > 0.0, "{sys:?} {size} B: nothing offered: {p:?}");
            assert!(p.count > 0);
        }
        assert!(
            s.outcome.probes.iter().any(|p| p.receiver_rss_kib > 0),
            "{sys:?} {size} B: no receiver RSS sampled"
        );
    }
    check_plain_and_scale(plain, res, &systems);
    assert_eq!(res.blasts.len(), 2);
    assert!(res.blasts.iter().all(|(_, p)| p.offered > 0.0));
    assert_eq!(res.loss.len(), 2, "{:#?}", res.loss);
    for l in &res.loss {
        assert_eq!(l.runs.len(), 1);
        assert_eq!(l.search.probes.len(), 1, "{l:?}");
        assert!(l.tail_p50().is_some(), "{l:?}");
        assert!(l.delivered() > 0.0, "{l:?}");
    }
    assert_eq!(res.latency.len(), 4, "UDP and PGM, blocking and spin");
    assert_eq!(res.openpgm_latency.len(), 2, "OpenPGM, blocking and spin");
    for l in &res.latency {
        assert!(l.count > 0 && l.p50 > 0.0 && l.max >= l.p99, "{l:?}");
    }
    let slow = res.slow.as_ref().expect("slow-receiver run");
    assert!(slow.peak_kib > 0);

    let md = std::fs::read_to_string(dir.join(&cfg.report_name)).expect("report written");
    for part in [
        "## Summary",
        "## Targets",
        "## Latency",
        "## IPv6 vs IPv4",
        "Slow receiver",
        "Smoke run",
        "## Scale",
        "ours (switch)",
        "ours (plain)",
    ] {
        assert!(md.contains(part), "report lacks {part:?}:\n{md}");
    }
    let svg = std::fs::read_to_string(dir.join(&cfg.plot_name)).expect("plot written");
    assert!(svg.contains("<svg"), "not an SVG");
    let json = std::fs::read_to_string(cfg.json_path()).expect("JSON written");
    let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(
        v["searches"].as_array().map(Vec::len),
        Some(systems.len() + systems.len() - 4)
    );
    assert_eq!(v["scale"].as_array().map(Vec::len), Some(6));
    assert_eq!(v["searches"][0]["lan"], "switch");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The plain LAN ran the rate parts only; the switch LAN's scale part every point.
fn check_plain_and_scale(plain: &Results, res: &Results, systems: &[(System, usize)]) {
    for (sys, size) in systems
        .iter()
        .filter(|(s, _)| !matches!(s, System::OursRawV6 | System::OursEpgmV6))
    {
        assert!(
            plain.search(*sys, *size).is_some(),
            "plain LAN: no {sys:?} {size} B"
        );
    }
    assert!(plain.loss.is_empty() && plain.latency.is_empty() && plain.scale.is_empty());
    assert_eq!(plain.blasts.len(), 2);
    // Scale: 1, 2, 4, 8 receivers and 4, 16 publishers (1 → 2 is shared).
    assert_eq!(res.scale.len(), 6, "{:#?}", res.scale);
    for s in &res.scale {
        assert!(!s.outcome.probes.is_empty());
        for p in &s.outcome.probes {
            assert!(!p.note.contains("harness error"), "{s:?}");
            assert!(p.offered > 0.0 && p.sender_cpu_s > 0.0, "{s:?}");
        }
    }
}
