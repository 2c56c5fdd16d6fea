//! The Markdown report (`BENCHMARKS.md`), the JSON dump of every probe, and the machine
//! description.

use std::fmt::Write as _;
use std::io;
use std::process::Command;

use serde_json::{json, Value};

use super::search::Probe;
use super::{Config, Results, System};
use crate::lan::Segmentation;
use crate::report_md::{section_of, splice_section};

const SIZES: [usize; 2] = [64, 1400];

/// Machine description: CPUs, model, kernel, memory.
pub fn machine() -> String {
    let nproc = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown", str::trim)
        .to_owned();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    format!(
        "{nproc} CPUs ({model}), Linux {kernel}, {:.0} GiB RAM",
        mem_kib as f64 / 1_048_576.0
    )
}

/// Today (UTC), `YYYY-MM-DD HH:MM UTC`.
pub fn date() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// A rate: `227 k`, `3.12 M`.
pub fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0} k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn opt_rate(v: Option<f64>) -> String {
    v.map_or("—".to_owned(), rate)
}

/// `a / b` as `0.93×`, or `—`.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "—".to_owned(),
    }
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "**holds**",
        Some(false) => "**misses**",
        None => "not measured",
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or("—".to_owned(), |v| format!("{v:.0}"))
}

fn mib(kib: u64) -> String {
    if kib == 0 {
        "—".to_owned()
    } else {
        format!("{:.1}", kib as f64 / 1024.0)
    }
}

/// A search's probes as one cell: `asked→offered ok|FAIL, …`.
fn probes_cell(probes: &[Probe]) -> String {
    probes
        .iter()
        .map(|p| {
            format!(
                "{}→{} {}",
                p.requested.map_or("max".to_owned(), rate),
                rate(p.offered),
                if p.ok { "ok" } else { "FAIL" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn row(out: &mut String, cells: &[String]) {
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

/// One target: what, the measured value, whether it holds.
#[derive(Debug, Clone)]
pub struct Target {
    /// The target as stated.
    pub what: String,
    /// What was measured.
    pub measured: String,
    /// Holds / misses / not measured.
    pub holds: Option<bool>,
}

/// The plain-UDP limit `sys` is held against, and its rate at `size`: UDP sent the same way
/// (EPGM sends runs of packets with GSO, raw PGM cannot), falling back to plain `sendmmsg`.
fn limit_of(res: &Results, sys: System, size: usize) -> (System, Option<f64>) {
    if matches!(sys, System::OursEpgm | System::PubSub) {
        if let Some(r) = res.rate(System::UdpGso, size) {
            return (System::UdpGso, Some(r));
        }
    }
    (System::Udp, res.rate(System::Udp, size))
}

/// The targets against `res`.
pub fn targets(res: &Results) -> Vec<Target> {
    let mut t = Vec::new();
    for size in SIZES {
        let opg = res.rate(System::OpenPgm, size);
        for sys in [System::OursRaw, System::OursEpgm] {
            let (limit, udp) = limit_of(res, sys, size);
            let ours = res.rate(sys, size);
            let r_udp = ours.zip(udp).map(|(o, u)| o / u);
            let r_opg = ours.zip(opg).map(|(o, p)| o / p);
            t.push(Target {
                what: format!(
                    "1 msg/packet {size} B, {} gap-free to 2 receivers ≥ 0.9 × UDP and ≥ 2 × OpenPGM",
                    sys.label()
                ),
                measured: format!(
                    "{} msg/s = {} {}, {} OpenPGM",
                    opt_rate(ours),
                    ratio(ours, udp),
                    limit.name(),
                    ratio(ours, opg)
                ),
                holds: r_udp.zip(r_opg).map(|(a, b)| a >= 0.9 && b >= 2.0),
            });
        }
    }
    let ps = res.rate(System::PubSub, 64);
    t.push(Target {
        what: "pub/sub 64 B ≥ 3 M msg/s".to_owned(),
        measured: format!("{} msg/s", opt_rate(ps)),
        holds: ps.map(|r| r >= 3e6),
    });
    for size in SIZES {
        let Some(l) = res.loss(System::OursRaw, size) else {
            continue;
        };
        let g = l.max_rate();
        t.push(Target {
            what: format!("under 1 %/5 % loss, {size} B: throughput ≥ 50 % of the clean rate"),
            measured: format!(
                "max complete rate under loss {} msg/s = {} of clean {}",
                opt_rate(g),
                ratio(g, Some(l.clean_rate)),
                rate(l.clean_rate)
            ),
            holds: Some(g.is_some_and(|g| g >= 0.5 * l.clean_rate)),
        });
        let full = l.runs.iter().all(|r| r.ok) && !l.runs.is_empty();
        t.push(Target {
            what: format!("under 1 %/5 % loss, {size} B: 100 % delivered, tail ≤ 250 ms"),
            measured: format!(
                "{:.3} % delivered (worst run), tail p50 {} ms, max {} ms",
                l.delivered() * 100.0,
                ms(l.tail_p50()),
                ms(l.tail_max())
            ),
            holds: l.tail_max().map(|m| full && m <= 250.0),
        });
    }
    for spin in [false, true] {
        let u = res.latency(System::Udp, spin);
        let o = res.latency(System::OursRaw, spin);
        let mode = if spin { "--spin" } else { "blocking" };
        t.push(Target {
            what: format!("latency p50/p99 ≤ 1.2 × plain UDP, {mode}"),
            measured: match (u, o) {
                (Some(u), Some(o)) => format!(
                    "p50 {:.1} vs {:.1} µs ({}), p99 {:.1} vs {:.1} µs ({})",
                    o.p50,
                    u.p50,
                    ratio(Some(o.p50), Some(u.p50)),
                    o.p99,
                    u.p99,
                    ratio(Some(o.p99), Some(u.p99))
                ),
                _ => "—".to_owned(),
            },
            holds: u
                .zip(o)
                .map(|(u, o)| o.p50 <= 1.2 * u.p50 && o.p99 <= 1.2 * u.p99),
        });
    }
    t
}

/// The Markdown report.
pub fn markdown(cfg: &Config, res: &Results) -> String {
    let mut m = String::new();
    header(&mut m, cfg, res);
    summary(&mut m, cfg, res);
    targets_table(&mut m, res);
    write_details(&mut m, cfg, res);
    m
}

fn dash() -> String {
    "—".to_owned()
}

/// Where the LAN cuts UDP GSO runs (`--lan`).
fn lan_text(lan: Segmentation) -> &'static str {
    match lan {
        Segmentation::Switch => {
            "UDP GSO runs cross the sender's veth whole and are cut into datagrams at the \
             bridge ports (`gso_max_segs 1`), as a NIC with UDP segmentation offload cuts them: \
             receivers, and their loss rules, see single datagrams."
        }
        Segmentation::Plain => {
            "Plain LAN (`--lan plain`): no device limits GSO, so UDP GSO runs reach the \
             receiving hosts whole and their UDP stacks cut them into datagrams in software."
        }
        Segmentation::Host => {
            "UDP GSO runs are cut into datagrams at the sender's `eth0` (`gso_max_segs 1`), \
             as a NIC without segmentation offload does."
        }
    }
}

/// Title, smoke notice, where and how it was measured, the load.
fn header(m: &mut String, cfg: &Config, res: &Results) {
    let _ = writeln!(m, "# Benchmarks\n");
    if cfg.smoke {
        let _ = writeln!(
            m,
            "> **Smoke run**: tiny counts that check the harness only; the numbers mean nothing.\n"
        );
    }
    let _ = writeln!(
        m,
        "Measured {} on {} — one run of `{}` (wall time {:.1} min), as root, on a LAN of network \
         namespaces built by the harness: host 1 sends, hosts 2 and 3 receive, one Linux bridge \
         (veth, `mcast_snooping 0`). {} Every rate is measured in this same run. Plot: \
         [{}]({}).\n",
        date(),
        machine(),
        cfg.command,
        res.wall_s / 60.0,
        lan_text(cfg.lan),
        cfg.plot_name,
        cfg.plot_name
    );
    let _ = writeln!(
        m,
        "Load average (1/5/15 min) at the start: {}; at the end: {}.{}\n",
        res.load.0,
        res.load.1,
        if res.foreign_netns.is_empty() {
            String::new()
        } else {
            format!(
                " **Other network namespaces existed during the run** ({}): other work shared \
                 the 2 CPUs, so rates may be low.",
                res.foreign_netns.join(", ")
            )
        }
    );
}

/// The summary table: ours against the limit, OpenPGM and libzmq, one workload a row.
fn summary(m: &mut String, cfg: &Config, res: &Results) {
    let _ = writeln!(m, "## Summary\n");
    row(
        m,
        &[
            "workload".into(),
            "UDP limit".into(),
            "OpenPGM".into(),
            "libzmq".into(),
            "ours".into(),
            "ours/limit".into(),
            "ours/OpenPGM".into(),
        ],
    );
    row(m, &vec!["---".to_owned(); 7]);
    summary_rate_rows(m, res);
    summary_loss_rows(m, cfg, res);
    summary_latency_rows(m, res);
    let rss = |sys: System| -> String {
        res.search(sys, 1400)
            .and_then(|s| s.outcome.best())
            .map_or("—".to_owned(), |p: &Probe| {
                format!("{} / {}", mib(p.sender_rss_kib), mib(p.receiver_rss_kib))
            })
    };
    row(
        m,
        &[
            "peak RSS sender / receiver, MiB (1400 B, best probe)".into(),
            rss(System::Udp),
            rss(System::OpenPgm),
            dash(),
            rss(System::OursRaw),
            dash(),
            dash(),
        ],
    );
}

/// Summary rows of the rate searches: one message per packet, the UDP blasts, pub/sub.
fn summary_rate_rows(m: &mut String, res: &Results) {
    for size in SIZES {
        let opg = res.rate(System::OpenPgm, size);
        for sys in [System::OursRaw, System::OursEpgm] {
            let (limit, udp) = limit_of(res, sys, size);
            let ours = res.rate(sys, size);
            row(
                m,
                &[
                    format!(
                        "1 msg/packet {size} B, {}: max gap-free rate to 2 receivers, msg/s{}",
                        if sys == System::OursRaw {
                            "raw PGM"
                        } else {
                            "EPGM (OpenPGM: raw)"
                        },
                        if limit == System::UdpGso {
                            " (limit: UDP with GSO)"
                        } else {
                            ""
                        }
                    ),
                    opt_rate(udp),
                    opt_rate(opg),
                    dash(),
                    opt_rate(ours),
                    ratio(ours, udp),
                    ratio(ours, opg),
                ],
            );
        }
    }
    for (size, p) in &res.blasts {
        row(
            m,
            &[
                format!("plain UDP blast {size} B (unpaced sender; delivered to the worse receiver), pkt/s"),
                format!("{} sent, {} delivered", rate(p.offered), rate(p.delivered)),
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
            ],
        );
    }
    let (limit, udp64) = limit_of(res, System::PubSub, 64);
    let ps = res.rate(System::PubSub, 64);
    row(
        m,
        &[
            format!(
                "pub/sub 64 B, batched, epgm, 2 subscribers: max gap-free rate, msg/s (limit: {} 64 B pkt/s)",
                if limit == System::UdpGso { "UDP with GSO" } else { "UDP" }
            ),
            opt_rate(udp64),
            dash(),
            opt_rate(res.rate(System::Zmq, 64)),
            opt_rate(ps),
            ratio(ps, udp64),
            format!("{} libzmq", ratio(ps, res.rate(System::Zmq, 64))),
        ],
    );
}

/// Summary rows of the loss runs: rate under loss, delivery, repair tail.
fn summary_loss_rows(m: &mut String, cfg: &Config, res: &Results) {
    for size in SIZES {
        let o = res.loss(System::OursRaw, size);
        let p = res.loss(System::OpenPgm, size);
        if o.is_none() && p.is_none() {
            continue;
        }
        let cell = |l: Option<&super::LossResult>| {
            l.map_or("—".to_owned(), |l| {
                format!(
                    "{} ({} of clean)",
                    opt_rate(l.max_rate()),
                    ratio(l.max_rate(), Some(l.clean_rate))
                )
            })
        };
        row(
            m,
            &[
                format!("1 %/5 % loss, {size} B: max rate delivered completely, msg/s (of clean)"),
                dash(),
                cell(p),
                dash(),
                cell(o),
                dash(),
                ratio(
                    o.and_then(super::LossResult::max_rate),
                    p.and_then(super::LossResult::max_rate),
                ),
            ],
        );
        let runs = |l: Option<&super::LossResult>| {
            l.map_or("—".to_owned(), |l| {
                format!(
                    "{:.3} % ({}/{} complete)",
                    l.delivered() * 100.0,
                    l.runs.iter().filter(|r| r.ok).count(),
                    l.runs.len()
                )
            })
        };
        row(
            m,
            &[
                format!(
                    "1 %/5 % loss, {size} B, {} msgs at ½ clean max: delivered (worst run)",
                    cfg.loss_count
                ),
                dash(),
                runs(p),
                dash(),
                runs(o),
                dash(),
                dash(),
            ],
        );
        let tail = |l: Option<&super::LossResult>| {
            l.map_or("—".to_owned(), |l| {
                format!("{} / {}", ms(l.tail_p50()), ms(l.tail_max()))
            })
        };
        row(
            m,
            &[
                format!(
                    "1 %/5 % loss, {size} B: repair tail p50 / max of {} runs, ms",
                    cfg.loss_runs
                ),
                dash(),
                tail(p),
                dash(),
                tail(o),
                dash(),
                ratio(
                    o.and_then(super::LossResult::tail_p50),
                    p.and_then(super::LossResult::tail_p50),
                ),
            ],
        );
    }
}

/// Summary rows of the ping-pongs, blocking and spinning.
fn summary_latency_rows(m: &mut String, res: &Results) {
    for spin in [false, true] {
        let u = res.latency(System::Udp, spin);
        let o = res.latency(System::OursRaw, spin);
        let p = res.latency(System::OpenPgm, spin);
        let cell = |l: Option<&super::LatencyResult>| {
            l.map_or("—".to_owned(), |l| format!("{:.1} / {:.1}", l.p50, l.p99))
        };
        row(
            m,
            &[
                format!(
                    "round trip 64 B, {}: p50 / p99 µs",
                    if spin { "--spin" } else { "blocking" }
                ),
                cell(u),
                p.map_or("not measured".to_owned(), |l| cell(Some(l))),
                dash(),
                cell(o),
                format!(
                    "{} / {}",
                    ratio(o.map(|l| l.p50), u.map(|l| l.p50)),
                    ratio(o.map(|l| l.p99), u.map(|l| l.p99))
                ),
                if p.is_some() {
                    format!(
                        "{} / {}",
                        ratio(o.map(|l| l.p50), p.map(|l| l.p50)),
                        ratio(o.map(|l| l.p99), p.map(|l| l.p99))
                    )
                } else {
                    dash()
                },
            ],
        );
    }
}

/// The targets, each with its verdict.
fn targets_table(m: &mut String, res: &Results) {
    let _ = writeln!(m, "\n## Targets (from the issue; ratios from this run)\n");
    row(m, &["target".into(), "measured".into(), "verdict".into()]);
    row(m, &vec!["---".to_owned(); 3]);
    for t in targets(res) {
        row(m, &[t.what, t.measured, verdict(t.holds).to_owned()]);
    }
}

/// The sections after the summary: every probe, loss, latency and memory details, how each
/// workload is run, what could not be measured.
fn write_details(m: &mut String, cfg: &Config, res: &Results) {
    ipv6_details(m, res);
    rate_searches(m, cfg, res);
    loss_details(m, cfg, res);
    latency_details(m, cfg, res);
    memory_details(m, res);
    slow_receiver_details(m, res);
    footer(m, res);
}

/// Ours over IPv6 against IPv4, from the same run (part `ipv6`).
fn ipv6_details(m: &mut String, res: &Results) {
    if !res.searches.iter().any(|s| s.system == System::OursRawV6) {
        return;
    }
    let _ = writeln!(
        m,
        "\n## IPv6 vs IPv4\n\nOurs, one message per packet, max gap-free rate to 2 receivers \
         (msg/s), IPv4 and IPv6 searched in the same run on the same LAN (unique-local \
         addresses, group `ff18::7067:1`). The IPv6 header is 20 bytes longer, so a 1400 B \
         message takes 20 more bytes on the wire.\n"
    );
    row(
        m,
        &[
            "transport".into(),
            "size".into(),
            "IPv4".into(),
            "IPv6".into(),
            "IPv6/IPv4".into(),
        ],
    );
    row(m, &vec!["---".to_owned(); 5]);
    for (v4, v6, name) in [
        (System::OursRaw, System::OursRawV6, "raw PGM"),
        (System::OursEpgm, System::OursEpgmV6, "EPGM"),
    ] {
        for size in [64, 1400] {
            let (a, b) = (res.rate(v4, size), res.rate(v6, size));
            let ratio = match (a, b) {
                (Some(a), Some(b)) if a > 0.0 => format!("{:.2}×", b / a),
                _ => dash(),
            };
            let cell = |r: Option<f64>| r.map_or_else(dash, rate);
            row(
                m,
                &[name.into(), format!("{size} B"), cell(a), cell(b), ratio],
            );
        }
    }
}

/// Every probe of every rate search, and why the failed ones failed.
fn rate_searches(m: &mut String, cfg: &Config, res: &Results) {
    let _ = writeln!(
        m,
        "\n## Rate searches\n\nEach probe sends N messages at one rate (N ≈ {:.1} s of traffic, \
         {}–{} messages); ok = both receivers verified every message in order and intact, \
         nothing unrecoverable. Search: ×2 steps up from a start rate until a probe fails (or \
         the sender cannot reach the asked rate), then geometric bisection to within {:.0} %, \
         at most {} probes. \"offered\" is the rate the sender achieved.\n",
        cfg.probe_secs,
        cfg.min_count,
        cfg.max_count,
        (cfg.tolerance - 1.0) * 100.0,
        cfg.max_probes
    );
    row(
        m,
        &[
            "system".into(),
            "size".into(),
            "best gap-free (msg/s)".into(),
            "probes: asked → offered (ok / FAIL)".into(),
        ],
    );
    row(m, &vec!["---".to_owned(); 4]);
    for s in &res.searches {
        row(
            m,
            &[
                s.system.name().into(),
                format!("{} B", s.size),
                opt_rate(Some(s.outcome.rate()).filter(|r| *r > 0.0)),
                probes_cell(&s.outcome.probes),
            ],
        );
    }
    let fails: Vec<String> = res
        .searches
        .iter()
        .flat_map(|s| {
            s.outcome
                .probes
                .iter()
                .filter(|p| !p.ok && !p.note.is_empty())
                .map(move |p| {
                    format!(
                        "- {} {} B at {}: {}",
                        s.system.label(),
                        s.size,
                        p.requested.map_or("max".to_owned(), rate),
                        p.note.lines().next().unwrap_or_default()
                    )
                })
        })
        .collect();
    if !fails.is_empty() {
        let _ = writeln!(m, "\nWhy probes failed (first problem each):\n");
        for f in fails {
            let _ = writeln!(m, "{f}");
        }
    }
}

/// The loss configurations: searches under loss and the runs at half the clean maximum.
fn loss_details(m: &mut String, cfg: &Config, res: &Results) {
    if !res.loss.is_empty() {
        let _ = writeln!(
            m,
            "\n## Repair under loss\n\nnftables drops each arriving PGM packet at random, 1 % \
             on receiver 1 and 5 % on receiver 2 (independently). First a rate search under \
             this loss from half the clean maximum up to it (probes as above, at most {}): the \
             throughput under loss. Then {} runs of {} messages at half the clean maximum. Tail = last delivery at either receiver − the \
             sender's last original send (ours: CLOCK_MONOTONIC stamps in the JSON summaries; \
             OpenPGM: (first→last delivery) − (first→last send), which assumes the first \
             message arrived without loss). Goodput = delivered / (send time + tail). OpenPGM: \
             window = all messages, NAK back-off/repeat/RDATA 50/200/200 ms (libzmq's \
             timing). Ours: `--nak-profile lan`, default window.\n",
            cfg.loss_search_probes,
            cfg.loss_runs,
            cfg.loss_count
        );
        row(
            m,
            &[
                "system".into(),
                "size".into(),
                "clean max".into(),
                "search under loss: asked → offered".into(),
                "asked".into(),
                "run: delivered %, tail ms, send s, drops r1/r2".into(),
            ],
        );
        row(m, &vec!["---".to_owned(); 6]);
        for l in &res.loss {
            let runs: Vec<String> = l
                .runs
                .iter()
                .map(|r| {
                    format!(
                        "{:.3} %, {} ms, {:.2} s, {}{}",
                        r.delivered_frac * 100.0,
                        ms(r.tail_ms),
                        r.send_s,
                        r.dropped
                            .iter()
                            .map(u64::to_string)
                            .collect::<Vec<_>>()
                            .join("/"),
                        if r.ok { "" } else { " (incomplete)" }
                    )
                })
                .collect();
            row(
                m,
                &[
                    l.system.name().into(),
                    format!("{} B", l.size),
                    rate(l.clean_rate),
                    probes_cell(&l.search.probes),
                    rate(l.rate),
                    runs.join("; "),
                ],
            );
        }
    }
}

/// Every latency run.
fn latency_details(m: &mut String, cfg: &Config, res: &Results) {
    if !res.latency.is_empty() || !res.openpgm_latency.is_empty() {
        let _ = writeln!(
            m,
            "\n## Latency\n\n`pgm-ping` between host 1 (pinger) and host 2 (reflector), 64 B, \
             {} recorded round trips after {} warm-up ones; two sessions (groups), one each way. \
             UDP = the same ping-pong over plain UDP multicast sockets (`pgm-ping --udp`). \
             Blocking = the receiving thread sleeps in the kernel; --spin = it polls without \
             sleeping. HdrHistogram, µs. OpenPGM = the same ping-pong between `openpgm_peer \
             ping` and `openpgm_peer reflect` (libpgm 5.3.128, raw PGM, a RECV_ONLY and a \
             SEND_ONLY socket per process, NAK back-off/repeat/RDATA 50/200/200 ms): blocking \
             = ppoll on both sockets' descriptors with OpenPGM's timer as the timeout, as its \
             examples do; --spin = `pgm_recvfrom(MSG_DONTWAIT)` in a loop (OpenPGM has no IO \
             thread, so its send socket is serviced from the same loop); exact percentiles of \
             the sorted round trips.\n",
            cfg.ping_count, cfg.ping_warmup
        );
        row(
            m,
            &[
                "system".into(),
                "mode".into(),
                "min".into(),
                "p50".into(),
                "p90".into(),
                "p99".into(),
                "p99.9".into(),
                "max".into(),
                "lost".into(),
            ],
        );
        row(m, &vec!["---".to_owned(); 9]);
        for l in res.latency.iter().chain(&res.openpgm_latency) {
            row(
                m,
                &[
                    l.system.name().into(),
                    match (l.spin, l.system, l.busy_poll.as_str()) {
                        (false, _, _) => "blocking".into(),
                        (true, System::Udp, _) => "--spin".into(),
                        (true, System::OpenPgm, _) => {
                            "--spin (pgm_recvfrom MSG_DONTWAIT loop, no IO thread)".into()
                        }
                        (true, _, "both") => "--spin (socket busy-poll on both sockets)".into(),
                        (true, _, "off") => {
                            "--spin --busy-poll off (only the application polls)".into()
                        }
                        (true, _, b) => format!("--spin --busy-poll {b}"),
                    },
                    format!("{:.1}", l.min),
                    format!("{:.1}", l.p50),
                    format!("{:.1}", l.p90),
                    format!("{:.1}", l.p99),
                    format!("{:.1}", l.p999),
                    format!("{:.1}", l.max),
                    l.lost.to_string(),
                ],
            );
        }
    }
}

/// Peak RSS of the best probe of each search.
fn memory_details(m: &mut String, res: &Results) {
    let _ = writeln!(
        m,
        "\n## Memory\n\nPeak RSS (VmHWM from /proc/PID/status, sampled every 20 ms while the \
         process runs) of the best probe of each search, MiB, sender / worse receiver:\n"
    );
    row(m, &["system".into(), "64 B".into(), "1400 B".into()]);
    row(m, &vec!["---".to_owned(); 3]);
    for sys in [
        System::Udp,
        System::UdpGso,
        System::OpenPgm,
        System::OursRaw,
        System::OursEpgm,
        System::PubSub,
        System::Zmq,
    ] {
        let cell = |size| {
            res.search(sys, size)
                .and_then(|s| s.outcome.best())
                .map_or("—".to_owned(), |p| {
                    format!("{} / {}", mib(p.sender_rss_kib), mib(p.receiver_rss_kib))
                })
        };
        if res.searches.iter().any(|s| s.system == sys) {
            row(m, &[sys.name().into(), cell(64), cell(1400)]);
        }
    }
}

/// The slow receiver against its bound.
fn slow_receiver_details(m: &mut String, res: &Results) {
    if let Some(s) = &res.slow {
        let base = res
            .search(System::OursRaw, 1400)
            .and_then(|s| s.outcome.best())
            .map_or(s.fast_rss_kib, |p| p.receiver_rss_kib.max(s.fast_rss_kib));
        let bound = s.bound_kib(base);
        let offered = s.count * s.size as u64;
        let _ = writeln!(
            m,
            "\n### Slow receiver\n\nReceiver 1 runs `pgm-recv --window {} B` printing into a \
             pipe that nobody reads: its application thread blocks on the full pipe at once, \
             its IO thread keeps receiving. The sender offers {} × {} B = {:.0} MiB at {} msg/s. \
             **Bound** = receive queue (`SocketOptions::recv_queue` = {:.0} MiB: data held for \
             the application before the IO thread stops reading and the kernel drops) + receive \
             window ({:.0} MiB) + a normal receiver's peak RSS ({:.1} MiB) = **{:.1} MiB**. \
             Measured peak RSS of the slow receiver: **{:.1} MiB** — the bound {}. Receiver 2 \
             (normal speed) meanwhile got everything: {}.",
            s.window_bytes,
            s.count,
            s.size,
            offered as f64 / 1_048_576.0,
            rate(s.rate),
            s.recv_queue_bytes as f64 / 1_048_576.0,
            s.window_bytes as f64 / 1_048_576.0,
            base as f64 / 1024.0,
            bound as f64 / 1024.0,
            s.peak_kib as f64 / 1024.0,
            if s.peak_kib <= bound {
                "holds"
            } else {
                "does NOT hold"
            },
            if s.fast_ok { "yes" } else { "NO" }
        );
    }
}

/// What each change bought, how each workload is run, and the errors.
fn footer(m: &mut String, res: &Results) {
    let _ = writeln!(
        m,
        "\n{}\n## How each workload is run\n\n\
         - **UDP limit**: `udp-perf send --pps R` (sendmmsg bursts of ≤ 32, paced by the clock) \
         → 2 × `udp-perf recv` (recvmmsg, counts sequence numbers); ok = no datagram lost. \
         Blast = unpaced sender. **With GSO**: `udp-perf send --gso`, each burst one UDP GSO \
         send (as EPGM sends): the limit the EPGM and pub/sub rows are held against.\n\
         - **OpenPGM**: `netns-tests/peers/openpgm_peer.c` (libpgm 5.3.128), raw PGM, \
         PGM_TXW_MAX_RTE = R × (size + 44) B/s, window 65536 sqns; its receiver checks order \
         and CRCs.\n\
         - **ours**: `pgm-send --count N --size B --rate R×(size+44 or 52)×8` → 2 × `pgm-recv \
         --verify --count N`; ok = complete, gap-free, nothing unrecoverable.\n\
         - **pub/sub**: `pgm-pub --count N --size 64 --topic a0` → 2 × `pgm-sub --verify \
         --subscribe ''` over EPGM; libzmq: `netns-tests/peers/zmq_peer.py` PUB → 2 × SUB over \
         epgm (ZMQ_RATE from R; its rate is the slower subscriber's, as the Python publisher \
         does not time its sends).\n\
         - **Loss**, **latency**, **memory**: as described in their sections.\n",
        include_str!("changes.md")
    );
    if !res.errors.is_empty() {
        let _ = writeln!(m, "\n## Not measured / errors\n");
        for e in &res.errors {
            let _ = writeln!(m, "- {}", e.lines().next().unwrap_or_default());
        }
    }
}

fn probe_json(p: &Probe) -> Value {
    json!({
        "requested": p.requested, "offered": p.offered, "delivered": p.delivered,
        "count": p.count, "ok": p.ok, "note": p.note,
        "sender_rss_kib": p.sender_rss_kib, "receiver_rss_kib": p.receiver_rss_kib,
    })
}

/// Everything measured, as JSON.
pub fn to_json(cfg: &Config, res: &Results) -> Value {
    json!({
        "date": date(),
        "machine": machine(),
        "command": cfg.command,
        "smoke": cfg.smoke,
        "lan": format!("{:?}", cfg.lan).to_lowercase(),
        "wall_s": res.wall_s,
        "loadavg": [res.load.0, res.load.1],
        "foreign_netns": res.foreign_netns,
        "searches": res.searches.iter().map(|s| json!({
            "system": s.system.label(), "size": s.size, "best": s.outcome.rate(),
            "probes": s.outcome.probes.iter().map(probe_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "blasts": res.blasts.iter().map(|(size, p)| json!({"size": size, "probe": probe_json(p)}))
            .collect::<Vec<_>>(),
        "loss": res.loss.iter().map(|l| json!({
            "system": l.system.label(), "size": l.size, "clean_rate": l.clean_rate,
            "rate": l.rate, "count": l.count, "tail_p50_ms": l.tail_p50(),
            "max_rate": l.max_rate(),
            "search": l.search.probes.iter().map(probe_json).collect::<Vec<_>>(),
            "tail_max_ms": l.tail_max(), "goodput": l.goodput(),
            "runs": l.runs.iter().map(|r| json!({
                "delivered_frac": r.delivered_frac, "tail_ms": r.tail_ms, "send_s": r.send_s,
                "ok": r.ok, "note": r.note, "dropped": r.dropped,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "latency": res.latency.iter().chain(&res.openpgm_latency).map(|l| json!({
            "system": l.system.label(), "spin": l.spin, "busy_poll": l.busy_poll.as_str(),
            "count": l.count, "lost": l.lost, "min_us": l.min, "p50_us": l.p50,
            "p90_us": l.p90, "p99_us": l.p99, "p999_us": l.p999, "max_us": l.max,
        })).collect::<Vec<_>>(),
        "slow_receiver": res.slow.as_ref().map(|s| json!({
            "count": s.count, "size": s.size, "rate": s.rate, "window_bytes": s.window_bytes,
            "recv_queue_bytes": s.recv_queue_bytes, "peak_kib": s.peak_kib,
            "fast_ok": s.fast_ok, "fast_rss_kib": s.fast_rss_kib,
        })),
        "targets": targets(res).iter().map(|t| json!({
            "what": t.what, "measured": t.measured, "holds": t.holds,
        })).collect::<Vec<_>>(),
        "errors": res.errors,
    })
}

/// Writes the report, the plot and the JSON into `cfg.out_dir` (the JSON as
/// `bench-results.json`).
pub fn write_all(cfg: &Config, res: &Results) -> io::Result<()> {
    let md = cfg.out_dir.join(&cfg.report_name);
    // The sections other harnesses own stay as they are (see `report_md`).
    let existing = std::fs::read_to_string(&md).unwrap_or_default();
    let mut doc = markdown(cfg, res);
    for heading in crate::report_md::FOREIGN_SECTIONS {
        if let Some(section) = section_of(&existing, heading) {
            doc = splice_section(&doc, heading, &section);
        }
    }
    std::fs::write(&md, doc)?;
    super::plot::draw(res, &cfg.out_dir.join(&cfg.plot_name))?;
    let json_path = cfg.json_path();
    if let Some(dir) = json_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&to_json(cfg, res)).map_err(io::Error::other)?,
    )?;
    eprintln!(
        "[bench] wrote {}, {} and {}",
        md.display(),
        cfg.out_dir.join(&cfg.plot_name).display(),
        json_path.display()
    );
    Ok(())
}
