//! The benchmark harness in `--smoke` mode: every workload once with tiny counts, checking the
//! harness (probes run, results parsed, report and plot written), not the numbers. Needs root;
//! skips loudly otherwise. Writes into a temporary directory, never the workspace's
//! `BENCHMARKS.md`.

use netns_tests::{
    bench::{run, Config, System},
    deps::{require, Need},
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
    let res = run(&cfg).expect("benchmark harness");
    assert!(res.errors.is_empty(), "parts failed: {:#?}", res.errors);

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
    ] {
        assert!(md.contains(part), "report lacks {part:?}:\n{md}");
    }
    let svg = std::fs::read_to_string(dir.join(&cfg.plot_name)).expect("plot written");
    assert!(svg.contains("<svg"), "not an SVG");
    let json = std::fs::read_to_string(cfg.json_path()).expect("JSON written");
    let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(v["searches"].as_array().map(Vec::len), Some(systems.len()));
    let _ = std::fs::remove_dir_all(&dir);
}
