//! What the hardening tests (`tools_garbage`, `tools_hostile`) share: starting `pgm-spray`
//! against a session, reading its counts, and the crash and memory checks.

use std::time::Duration;

use netns_tests::lan::{Lan, GROUP};
use netns_tests::proc::Proc;
use netns_tests::tools::{Encap, Finished};

/// Starts `pgm-spray` on `host` against the session of host `source` on `port`, spraying at
/// the receivers `receivers` for at most `limit`, with `extra` arguments (`--kinds` …).
pub(crate) fn spawn_spray(
    lan: &Lan,
    host: usize,
    source: usize,
    receivers: &[usize],
    (encap, port): (Encap, u16),
    limit: Duration,
    extra: &[&str],
) -> Proc {
    let rx: Vec<String> = receivers
        .iter()
        .map(|&h| lan.host(h).addr().to_string())
        .collect();
    let mut args: Vec<String> = vec![
        "--session".into(),
        if encap == Encap::Udp { "udp" } else { "raw" }.into(),
        "--group".into(),
        GROUP.to_string(),
        "--port".into(),
        port.to_string(),
        "--local".into(),
        lan.host(host).addr().to_string(),
        "--source".into(),
        lan.host(source).addr().to_string(),
        "--receivers".into(),
        rx.join(","),
        "--duration".into(),
        limit.as_secs_f64().to_string(),
        "--seed".into(),
        u64::from(std::process::id()).to_string(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let mut p = lan
        .host(host)
        .spawn(env!("CARGO_BIN_EXE_pgm-spray"), &args)
        .expect("spawning pgm-spray");
    p.wait_ready(Duration::from_secs(10))
        .expect("pgm-spray ready");
    p
}

/// Packets the sprayer sent of the kinds whose names start with `prefix`.
pub(crate) fn sent_kind(spray: &Finished, prefix: &str) -> u64 {
    spray
        .json
        .get("sent")
        .and_then(|m| m.as_object())
        .map_or(0, |m| {
            m.iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .filter_map(|(_, v)| v.as_u64())
                .sum()
        })
}

/// [`Finished::crash_problems`], and a peak RSS above `max_rss_kib`.
pub(crate) fn crash_problems(p: &Finished, max_rss_kib: u64) -> Vec<String> {
    let mut v = p.crash_problems();
    if p.peak_rss_kib > max_rss_kib {
        v.push(format!(
            "{} peaked at {} KiB RSS (bound {max_rss_kib} KiB)",
            p.name, p.peak_rss_kib
        ));
    }
    v
}
