//! The Markdown report (`BENCHMARKS.md`), the JSON dump of every probe, and the machine
//! description.

use std::fmt::Write as _;
use std::io;
use std::process::Command;

use serde_json::{json, Value};

use super::scale::ScaleResult;
use super::search::Probe;
use super::{lan_label, Bench, Config, LatencyResult, LossResult, Results, System};
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

/// The Markdown report of every LAN of `bench`.
pub fn markdown(cfg: &Config, bench: &Bench) -> String {
    let mut m = String::new();
    header(&mut m, cfg, bench);
    summary(&mut m, cfg, bench);
    targets_table(&mut m, bench);
    scale_details(&mut m, cfg, bench);
    write_details(&mut m, cfg, bench);
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
            "a bridge and veths on the kernel's defaults, as a user builds one: no device \
             limits GSO, so UDP GSO runs reach the receiving hosts whole and their UDP stacks \
             cut them into datagrams in software, once per receiver."
        }
        Segmentation::Host => {
            "UDP GSO runs are cut into datagrams at the sender's `eth0` (`gso_max_segs 1`), \
             as a NIC without segmentation offload does."
        }
    }
}

/// `name LAN` for detail tables.
fn lan_cell(res: &Results) -> String {
    lan_label(res.lan).to_owned()
}

/// Title, smoke notice, where and how it was measured, each LAN and its load.
fn header(m: &mut String, cfg: &Config, bench: &Bench) {
    let _ = writeln!(m, "# Benchmarks\n");
    if cfg.smoke {
        let _ = writeln!(
            m,
            "> **Smoke run**: tiny counts that check the harness only; the numbers mean nothing.\n"
        );
    }
    let _ = writeln!(
        m,
        "Measured {} on {} — one run of `{}` (wall time {:.1} min), as root, on LANs of network \
         namespaces built by the harness: host 1 sends, hosts 2 and 3 receive, one Linux bridge \
         (veth, `mcast_snooping 0`). {} Every rate is measured in this same run. Plot: \
         [{}]({}).\n",
        date(),
        machine(),
        cfg.command,
        bench.wall_s / 60.0,
        if bench.lans.len() > 1 {
            "Each LAN is built, measured and torn down before the next; the summary tables \
             give one column per LAN for each figure."
        } else {
            "One LAN:"
        },
        cfg.plot_name,
        cfg.plot_name
    );
    for res in &bench.lans {
        let parts = if res.parts.len() == super::PARTS.len() {
            "all parts".to_owned()
        } else {
            format!("parts {}", res.parts.join(", "))
        };
        let _ = writeln!(
            m,
            "- **{} LAN** (`--lan {}`): {} Measured: {parts} ({:.1} min). Load average \
             (1/5/15 min) at the start: {}; at the end: {}.{}",
            lan_label(res.lan),
            lan_label(res.lan),
            lan_text(res.lan),
            res.wall_s / 60.0,
            res.load.0,
            res.load.1,
            if res.foreign_netns.is_empty() {
                String::new()
            } else {
                format!(
                    " **Other network namespaces existed during the run** ({}): other work \
                     shared the 2 CPUs, so rates may be low.",
                    res.foreign_netns.join(", ")
                )
            }
        );
    }
    if bench.on(Segmentation::Plain).is_some() && bench.lans.len() > 1 && cfg.only.is_empty() {
        let _ = writeln!(
            m,
            "\nThe plain LAN runs the rate parts only ({}): loss, latency, memory, IPv6 and \
             scale are measured on the switch LAN, which keeps the run at about twice one \
             LAN's time (`--lan plain` alone runs every part there).",
            super::PLAIN_DEFAULT_PARTS.join(", ")
        );
    }
    let _ = writeln!(m);
}

/// A summary table with one column per LAN for each figure. Columns of a LAN that has no
/// figure in the table are left out, and so are rows without any figure.
struct LanTable<'a> {
    /// The LANs, in the run's order.
    lans: Vec<&'a Results>,
    /// Head of the first column.
    first: &'static str,
    /// The figures of each row, in column order.
    figures: Vec<&'static str>,
    /// Label and, for each LAN, the figures' cells.
    rows: Vec<(String, Vec<Vec<String>>)>,
}

impl<'a> LanTable<'a> {
    fn new(bench: &'a Bench, first: &'static str, figures: &[&'static str]) -> LanTable<'a> {
        LanTable {
            lans: bench.lans.iter().collect(),
            first,
            figures: figures.to_vec(),
            rows: Vec::new(),
        }
    }

    /// A row: `cells(res)` gives one LAN's figures.
    fn row(&mut self, label: String, cells: impl Fn(&Results) -> Vec<String>) {
        let per_lan = self.lans.iter().map(|r| cells(r)).collect();
        self.rows.push((label, per_lan));
    }

    fn write(&self, m: &mut String) {
        let measured = |cells: &[String]| cells.iter().any(|c| c != "—" && !c.is_empty());
        let lans: Vec<usize> = (0..self.lans.len())
            .filter(|&i| self.rows.iter().any(|(_, c)| measured(&c[i])))
            .collect();
        if lans.is_empty() {
            return;
        }
        let mut head = vec![self.first.to_owned()];
        for f in &self.figures {
            for &i in &lans {
                head.push(if self.lans.len() > 1 {
                    format!("{f} ({})", lan_label(self.lans[i].lan))
                } else {
                    (*f).to_owned()
                });
            }
        }
        row(m, &head);
        row(m, &vec!["---".to_owned(); head.len()]);
        for (label, cells) in &self.rows {
            if !lans.iter().any(|&i| measured(&cells[i])) {
                continue;
            }
            let mut line = vec![label.clone()];
            for f in 0..self.figures.len() {
                for &i in &lans {
                    line.push(cells[i].get(f).cloned().unwrap_or_else(dash));
                }
            }
            row(m, &line);
        }
        let _ = writeln!(m);
    }
}

/// The summary tables: rates against the UDP limit, against OpenPGM and libzmq, repair under
/// loss, latency; one column per LAN for each figure.
fn summary(m: &mut String, cfg: &Config, bench: &Bench) {
    let _ = writeln!(m, "## Summary\n");
    let _ = writeln!(
        m,
        "Highest rate delivered gap-free to both receivers (msg/s; plain UDP: datagrams/s), and \
         ours against the UDP limit sent the same way on the same LAN: raw PGM against \
         `sendmmsg` without GSO (raw sockets have no GSO), EPGM and pub/sub against UDP GSO \
         (as EPGM sends runs of packets).\n"
    );
    let mut t = LanTable::new(bench, "workload", &["UDP limit", "ours", "ours/limit"]);
    summary_limit_rows(&mut t);
    t.write(m);
    let mut t = LanTable::new(
        bench,
        "workload",
        &["OpenPGM / libzmq", "ours", "ours/them"],
    );
    summary_peer_rows(&mut t);
    t.write(m);
    let mut t = LanTable::new(bench, "under loss", &["OpenPGM", "ours", "ours/OpenPGM"]);
    summary_loss_rows(&mut t, cfg);
    t.write(m);
    let mut t = LanTable::new(
        bench,
        "round trip",
        &["UDP", "OpenPGM", "ours", "ours/UDP", "ours/OpenPGM"],
    );
    summary_latency_rows(&mut t);
    t.write(m);
}

/// `p`'s peak RSS, sender / receiver, MiB.
fn rss_cell(p: Option<&Probe>) -> String {
    p.map_or_else(dash, |p| {
        format!("{} / {}", mib(p.sender_rss_kib), mib(p.receiver_rss_kib))
    })
}

/// Summary rows against the UDP limit: the limit itself (with and without GSO, and the
/// blast), one message per packet, pub/sub, peak RSS.
fn summary_limit_rows(t: &mut LanTable<'_>) {
    for size in SIZES {
        for (sys, how) in [
            (System::Udp, "sendmmsg, no GSO"),
            (System::UdpGso, "with GSO"),
        ] {
            t.row(format!("plain UDP {size} B, {how}"), |res| {
                vec![opt_rate(res.rate(sys, size)), dash(), dash()]
            });
        }
        t.row(
            format!("plain UDP {size} B blast (unpaced): sent / delivered to the worse receiver"),
            |res| {
                let cell = res
                    .blasts
                    .iter()
                    .find(|(s, _)| *s == size)
                    .map_or_else(dash, |(_, p)| {
                        format!("{} / {}", rate(p.offered), rate(p.delivered))
                    });
                vec![cell, dash(), dash()]
            },
        );
    }
    for size in SIZES {
        for (sys, name) in [(System::OursRaw, "raw PGM"), (System::OursEpgm, "EPGM")] {
            t.row(format!("1 msg/packet {size} B, {name}"), |res| {
                let (limit, udp) = limit_of(res, sys, size);
                let ours = res.rate(sys, size);
                let fallback = sys == System::OursEpgm && limit == System::Udp && udp.is_some();
                vec![
                    format!(
                        "{}{}",
                        opt_rate(udp),
                        if fallback { " (no GSO)" } else { "" }
                    ),
                    opt_rate(ours),
                    ratio(ours, udp),
                ]
            });
        }
    }
    t.row(
        "pub/sub 64 B, batched, EPGM, 2 subscribers (limit: 64 B datagrams/s)".to_owned(),
        |res| {
            let (_, udp) = limit_of(res, System::PubSub, 64);
            let ps = res.rate(System::PubSub, 64);
            vec![opt_rate(udp), opt_rate(ps), ratio(ps, udp)]
        },
    );
    t.row(
        "peak RSS sender / receiver, MiB (1400 B raw, best probe)".to_owned(),
        |res| {
            let best = |sys| res.search(sys, 1400).and_then(|s| s.outcome.best());
            vec![
                rss_cell(best(System::Udp)),
                rss_cell(best(System::OursRaw)),
                dash(),
            ]
        },
    );
}

/// Summary rows against OpenPGM (raw PGM) and libzmq (pub/sub).
fn summary_peer_rows(t: &mut LanTable<'_>) {
    for size in SIZES {
        for (sys, name) in [
            (System::OursRaw, "raw PGM"),
            (System::OursEpgm, "EPGM (OpenPGM: raw)"),
        ] {
            t.row(format!("1 msg/packet {size} B, {name}"), |res| {
                let (o, p) = (res.rate(sys, size), res.rate(System::OpenPgm, size));
                vec![opt_rate(p), opt_rate(o), ratio(o, p)]
            });
        }
    }
    t.row(
        "pub/sub 64 B, batched, 2 subscribers (libzmq epgm)".to_owned(),
        |res| {
            let (o, z) = (res.rate(System::PubSub, 64), res.rate(System::Zmq, 64));
            vec![opt_rate(z), opt_rate(o), ratio(o, z)]
        },
    );
    t.row(
        "peak RSS sender / receiver, MiB (1400 B raw, best probe)".to_owned(),
        |res| {
            let best = |sys| res.search(sys, 1400).and_then(|s| s.outcome.best());
            vec![
                rss_cell(best(System::OpenPgm)),
                rss_cell(best(System::OursRaw)),
                dash(),
            ]
        },
    );
}

/// Summary rows of the loss runs: rate under loss, delivery, repair tail.
fn summary_loss_rows(t: &mut LanTable<'_>, cfg: &Config) {
    for size in SIZES {
        t.row(
            format!("1 %/5 % loss, {size} B: max rate delivered completely, msg/s (of clean)"),
            |res| {
                let cell = |l: Option<&LossResult>| {
                    l.map_or_else(dash, |l| {
                        format!(
                            "{} ({} of clean)",
                            opt_rate(l.max_rate()),
                            ratio(l.max_rate(), Some(l.clean_rate))
                        )
                    })
                };
                let (o, p) = (
                    res.loss(System::OursRaw, size),
                    res.loss(System::OpenPgm, size),
                );
                vec![
                    cell(p),
                    cell(o),
                    ratio(
                        o.and_then(LossResult::max_rate),
                        p.and_then(LossResult::max_rate),
                    ),
                ]
            },
        );
        t.row(
            format!(
                "1 %/5 % loss, {size} B, {} msgs at ½ clean max: delivered (worst run)",
                cfg.loss_count
            ),
            |res| {
                let runs = |l: Option<&LossResult>| {
                    l.map_or_else(dash, |l| {
                        format!(
                            "{:.3} % ({}/{} complete)",
                            l.delivered() * 100.0,
                            l.runs.iter().filter(|r| r.ok).count(),
                            l.runs.len()
                        )
                    })
                };
                vec![
                    runs(res.loss(System::OpenPgm, size)),
                    runs(res.loss(System::OursRaw, size)),
                    dash(),
                ]
            },
        );
        t.row(
            format!(
                "1 %/5 % loss, {size} B: repair tail p50 / max of {} runs, ms",
                cfg.loss_runs
            ),
            |res| {
                let tail = |l: Option<&LossResult>| {
                    l.map_or_else(dash, |l| {
                        format!("{} / {}", ms(l.tail_p50()), ms(l.tail_max()))
                    })
                };
                let (o, p) = (
                    res.loss(System::OursRaw, size),
                    res.loss(System::OpenPgm, size),
                );
                vec![
                    tail(p),
                    tail(o),
                    ratio(
                        o.and_then(LossResult::tail_p50),
                        p.and_then(LossResult::tail_p50),
                    ),
                ]
            },
        );
    }
}

/// Summary rows of the ping-pongs, blocking and spinning.
fn summary_latency_rows(t: &mut LanTable<'_>) {
    for spin in [false, true] {
        t.row(
            format!(
                "64 B, {}: p50 / p99 µs",
                if spin { "--spin" } else { "blocking" }
            ),
            |res| {
                let u = res.latency(System::Udp, spin);
                let o = res.latency(System::OursRaw, spin);
                let p = res.latency(System::OpenPgm, spin);
                let cell = |l: Option<&LatencyResult>| {
                    l.map_or_else(dash, |l| format!("{:.1} / {:.1}", l.p50, l.p99))
                };
                let ratios = |b: Option<&LatencyResult>| {
                    if o.is_none() || b.is_none() {
                        return dash();
                    }
                    format!(
                        "{} / {}",
                        ratio(o.map(|l| l.p50), b.map(|l| l.p50)),
                        ratio(o.map(|l| l.p99), b.map(|l| l.p99))
                    )
                };
                vec![cell(u), cell(p), cell(o), ratios(u), ratios(p)]
            },
        );
    }
}

/// The targets, each with its verdict, one column pair per LAN.
fn targets_table(m: &mut String, bench: &Bench) {
    let _ = writeln!(m, "## Targets (from the issue; ratios from this run)\n");
    let per_lan: Vec<Vec<Target>> = bench.lans.iter().map(targets).collect();
    let mut whats: Vec<String> = Vec::new();
    for t in per_lan.iter().flatten() {
        if !whats.contains(&t.what) {
            whats.push(t.what.clone());
        }
    }
    let mut t = LanTable::new(bench, "target", &["measured", "verdict"]);
    for what in whats {
        let cells: Vec<Vec<String>> = per_lan
            .iter()
            .map(|ts| {
                ts.iter().find(|t| t.what == what).map_or_else(
                    || vec![dash(), dash()],
                    |t| {
                        if t.holds.is_none() && t.measured == "—" {
                            vec![dash(), dash()]
                        } else {
                            vec![t.measured.clone(), verdict(t.holds).to_owned()]
                        }
                    },
                )
            })
            .collect();
        t.rows.push((what, cells));
    }
    t.write(m);
}

/// The scale part: one table per LAN that ran it.
fn scale_details(m: &mut String, cfg: &Config, bench: &Bench) {
    let lans: Vec<&Results> = bench.lans.iter().filter(|r| !r.scale.is_empty()).collect();
    if lans.is_empty() {
        return;
    }
    let _ = writeln!(
        m,
        "## Scale\n\nHow the source's cost grows with the work: ours, EPGM, 64 B, one message \
         per packet. Gap-free rate = rate search as for the other rates (at most {} probes); \
         source CPU = CPU time (user + system, all threads) of the sending `pgm-send` \
         processes from their first send until the last message was on the wire (`cpu_s` of \
         their JSON), summed, per message, at the best gap-free probe. **Receivers**: one \
         sender to n receivers, each n on a LAN of its own with 1 + n hosts (the bridge floods \
         every port). **Publishers**: n `pgm-send` processes on host 1 (one TSI each, each \
         sending 1/n of the messages at 1/n of the rate) on one group to 2 receivers; the rate \
         is the aggregate (all messages / first send of any → last send of any). The \
         publishers share host 1's address and UDP port, so a receiver's unicast NAKs reach \
         one of them only: the rate found is the rate without loss. The row with 1 sender and 2 \
         receivers is one search, shown in both series.\n",
        cfg.scale_probes
    );
    for res in lans {
        if bench.lans.len() > 1 {
            let _ = writeln!(m, "### {} LAN\n", lan_label(res.lan));
        }
        row(
            m,
            &[
                "series".into(),
                "senders → receivers".into(),
                "max gap-free (msg/s)".into(),
                "source CPU per msg (µs)".into(),
                "rate vs first row".into(),
                "CPU/msg vs first row".into(),
                "probes: asked → offered (ok / FAIL)".into(),
            ],
        );
        row(m, &vec!["---".to_owned(); 7]);
        let mut by_receivers: Vec<&ScaleResult> =
            res.scale.iter().filter(|s| s.senders == 1).collect();
        by_receivers.sort_by_key(|s| s.receivers);
        let mut by_senders: Vec<&ScaleResult> =
            res.scale.iter().filter(|s| s.receivers == 2).collect();
        by_senders.sort_by_key(|s| s.senders);
        for (series, points) in [("receivers", by_receivers), ("publishers", by_senders)] {
            let first = points.first().copied();
            for s in points {
                let cpu = s.cpu_us_per_msg();
                row(
                    m,
                    &[
                        series.into(),
                        format!("{} → {}", s.senders, s.receivers),
                        opt_rate(s.rate()),
                        cpu.map_or_else(dash, |c| format!("{c:.2}")),
                        ratio(s.rate(), first.and_then(ScaleResult::rate)),
                        ratio(cpu, first.and_then(ScaleResult::cpu_us_per_msg)),
                        probes_cell(&s.outcome.probes),
                    ],
                );
            }
        }
        let _ = writeln!(m);
    }
}

/// The sections after the summary: every probe, loss, latency and memory details, how each
/// workload is run, what could not be measured.
fn write_details(m: &mut String, cfg: &Config, bench: &Bench) {
    ipv6_details(m, bench);
    rate_searches(m, cfg, bench);
    loss_details(m, cfg, bench);
    latency_details(m, cfg, bench);
    memory_details(m, bench);
    slow_receiver_details(m, bench);
    footer(m, bench);
}

/// Ours over IPv6 against IPv4, from the same run (part `ipv6`).
fn ipv6_details(m: &mut String, bench: &Bench) {
    let lans: Vec<&Results> = bench
        .lans
        .iter()
        .filter(|r| r.searches.iter().any(|s| s.system == System::OursRawV6))
        .collect();
    if lans.is_empty() {
        return;
    }
    let _ = writeln!(
        m,
        "## IPv6 vs IPv4\n\nOurs, one message per packet, max gap-free rate to 2 receivers \
         (msg/s), IPv4 and IPv6 searched in the same run on the same LAN (unique-local \
         addresses, group `ff18::7067:1`). The IPv6 header is 20 bytes longer, so a 1400 B \
         message takes 20 more bytes on the wire.\n"
    );
    row(
        m,
        &[
            "LAN".into(),
            "transport".into(),
            "size".into(),
            "IPv4".into(),
            "IPv6".into(),
            "IPv6/IPv4".into(),
        ],
    );
    row(m, &vec!["---".to_owned(); 6]);
    for res in lans {
        for (v4, v6, name) in [
            (System::OursRaw, System::OursRawV6, "raw PGM"),
            (System::OursEpgm, System::OursEpgmV6, "EPGM"),
        ] {
            for size in SIZES {
                let (a, b) = (res.rate(v4, size), res.rate(v6, size));
                row(
                    m,
                    &[
                        lan_cell(res),
                        name.into(),
                        format!("{size} B"),
                        opt_rate(a),
                        opt_rate(b),
                        ratio(b, a),
                    ],
                );
            }
        }
    }
    let _ = writeln!(m);
}

/// Every probe of every rate search, and why the failed ones failed.
fn rate_searches(m: &mut String, cfg: &Config, bench: &Bench) {
    let _ = writeln!(
        m,
        "## Rate searches\n\nEach probe sends N messages at one rate (N ≈ {:.1} s of traffic, \
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
            "LAN".into(),
            "system".into(),
            "size".into(),
            "best gap-free (msg/s)".into(),
            "probes: asked → offered (ok / FAIL)".into(),
        ],
    );
    row(m, &vec!["---".to_owned(); 5]);
    for res in &bench.lans {
        for s in &res.searches {
            row(
                m,
                &[
                    lan_cell(res),
                    s.system.name().into(),
                    format!("{} B", s.size),
                    opt_rate(Some(s.outcome.rate()).filter(|r| *r > 0.0)),
                    probes_cell(&s.outcome.probes),
                ],
            );
        }
    }
    let mut fails: Vec<String> = Vec::new();
    for res in &bench.lans {
        for s in &res.searches {
            for p in s
                .outcome
                .probes
                .iter()
                .filter(|p| !p.ok && !p.note.is_empty())
            {
                fails.push(format!(
                    "- {} LAN, {} {} B at {}: {}",
                    lan_label(res.lan),
                    s.system.label(),
                    s.size,
                    p.requested.map_or("max".to_owned(), rate),
                    p.note.lines().next().unwrap_or_default()
                ));
            }
        }
        for s in &res.scale {
            for p in s
                .outcome
                .probes
                .iter()
                .filter(|p| !p.ok && !p.note.is_empty())
            {
                fails.push(format!(
                    "- {} LAN, scale {} → {} at {}: {}",
                    lan_label(res.lan),
                    s.senders,
                    s.receivers,
                    p.requested.map_or("max".to_owned(), rate),
                    p.note.lines().next().unwrap_or_default()
                ));
            }
        }
    }
    if !fails.is_empty() {
        let _ = writeln!(m, "\nWhy probes failed (first problem each):\n");
        for f in fails {
            let _ = writeln!(m, "{f}");
        }
    }
    let _ = writeln!(m);
}

/// The loss configurations: searches under loss and the runs at half the clean maximum.
fn loss_details(m: &mut String, cfg: &Config, bench: &Bench) {
    if bench.lans.iter().all(|r| r.loss.is_empty()) {
        return;
    }
    let _ = writeln!(
        m,
        "## Repair under loss\n\nnftables drops each arriving PGM packet at random, 1 % on \
         receiver 1 and 5 % on receiver 2 (independently). First a rate search under this \
         loss from half the clean maximum up to it (probes as above, at most {}): the \
         throughput under loss. Then {} runs of {} messages at half the clean maximum. Tail = \
         last delivery at either receiver − the sender's last original send (ours: \
         CLOCK_MONOTONIC stamps in the JSON summaries; OpenPGM: (first→last delivery) − \
         (first→last send), which assumes the first message arrived without loss). Goodput = \
         delivered / (send time + tail). OpenPGM: window = all messages, NAK \
         back-off/repeat/RDATA 50/200/200 ms (libzmq's timing). Ours: `--nak-profile lan`, \
         default window.\n",
        cfg.loss_search_probes, cfg.loss_runs, cfg.loss_count
    );
    row(
        m,
        &[
            "LAN".into(),
            "system".into(),
            "size".into(),
            "clean max".into(),
            "search under loss: asked → offered".into(),
            "asked".into(),
            "run: delivered %, tail ms, send s, drops r1/r2".into(),
        ],
    );
    row(m, &vec!["---".to_owned(); 7]);
    for res in &bench.lans {
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
                    lan_cell(res),
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
    let _ = writeln!(m);
}

/// Every latency run.
fn latency_details(m: &mut String, cfg: &Config, bench: &Bench) {
    if bench
        .lans
        .iter()
        .all(|r| r.latency.is_empty() && r.openpgm_latency.is_empty())
    {
        return;
    }
    let _ = writeln!(
        m,
        "## Latency\n\n`pgm-ping` between host 1 (pinger) and host 2 (reflector), 64 B, {} \
         recorded round trips after {} warm-up ones; two sessions (groups), one each way. UDP = \
         the same ping-pong over plain UDP multicast sockets (`pgm-ping --udp`). Blocking = \
         the receiving thread sleeps in the kernel; --spin = it polls without sleeping. \
         HdrHistogram, µs. OpenPGM = the same ping-pong between `openpgm_peer ping` and \
         `openpgm_peer reflect` (libpgm 5.3.128, raw PGM, a RECV_ONLY and a SEND_ONLY socket \
         per process, NAK back-off/repeat/RDATA 50/200/200 ms): blocking = ppoll on both \
         sockets' descriptors with OpenPGM's timer as the timeout, as its examples do; --spin = \
         `pgm_recvfrom(MSG_DONTWAIT)` in a loop (OpenPGM has no IO thread, so its send socket \
         is serviced from the same loop); exact percentiles of the sorted round trips.\n",
        cfg.ping_count, cfg.ping_warmup
    );
    row(
        m,
        &[
            "LAN".into(),
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
    row(m, &vec!["---".to_owned(); 10]);
    for res in &bench.lans {
        for l in res.latency.iter().chain(&res.openpgm_latency) {
            row(
                m,
                &[
                    lan_cell(res),
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
    let _ = writeln!(m);
}

/// Peak RSS of the best probe of each search.
fn memory_details(m: &mut String, bench: &Bench) {
    let _ = writeln!(
        m,
        "## Memory\n\nPeak RSS (VmHWM from /proc/PID/status, sampled every 20 ms while the \
         process runs) of the best probe of each search, MiB, sender / worse receiver:\n"
    );
    row(
        m,
        &[
            "LAN".into(),
            "system".into(),
            "64 B".into(),
            "1400 B".into(),
        ],
    );
    row(m, &vec!["---".to_owned(); 4]);
    for res in &bench.lans {
        for sys in [
            System::Udp,
            System::UdpGso,
            System::OpenPgm,
            System::OursRaw,
            System::OursEpgm,
            System::PubSub,
            System::Zmq,
        ] {
            let cell = |size| rss_cell(res.search(sys, size).and_then(|s| s.outcome.best()));
            if res.searches.iter().any(|s| s.system == sys) {
                row(m, &[lan_cell(res), sys.name().into(), cell(64), cell(1400)]);
            }
        }
    }
}

/// The slow receiver against its bound.
fn slow_receiver_details(m: &mut String, bench: &Bench) {
    for res in &bench.lans {
        let Some(s) = &res.slow else {
            continue;
        };
        let base = res
            .search(System::OursRaw, 1400)
            .and_then(|s| s.outcome.best())
            .map_or(s.fast_rss_kib, |p| p.receiver_rss_kib.max(s.fast_rss_kib));
        let bound = s.bound_kib(base);
        let offered = s.count * s.size as u64;
        let _ = writeln!(
            m,
            "\n### Slow receiver\n\n{} LAN. Receiver 1 runs `pgm-recv --window {} B` printing \
             into a pipe that nobody reads: its application thread blocks on the full pipe at \
             once, its IO thread keeps receiving. The sender offers {} × {} B = {:.0} MiB at {} \
             msg/s. **Bound** = receive queue (`SocketOptions::recv_queue` = {:.0} MiB: data \
             held for the application before the IO thread stops reading and the kernel drops) \
             + receive window ({:.0} MiB) + a normal receiver's peak RSS ({:.1} MiB) = \
             **{:.1} MiB**. Measured peak RSS of the slow receiver: **{:.1} MiB** — the bound \
             {}. Receiver 2 (normal speed) meanwhile got everything: {}.",
            lan_label(res.lan),
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
fn footer(m: &mut String, bench: &Bench) {
    let _ = writeln!(
        m,
        "\n{}\n## How each workload is run\n\n\
         - **UDP limit**: `udp-perf send --pps R` (sendmmsg bursts of ≤ 32, paced by the clock) \
         → 2 × `udp-perf recv` (recvmmsg, counts sequence numbers); ok = no datagram lost. \
         Blast = unpaced sender. **With GSO**: `udp-perf send --gso`, each burst one UDP GSO \
         send (as EPGM sends): the limit the EPGM and pub/sub rows are held against. Both are \
         measured on each LAN.\n\
         - **OpenPGM**: `netns-tests/peers/openpgm_peer.c` (libpgm 5.3.128), raw PGM, \
         PGM_TXW_MAX_RTE = R × (size + 44) B/s, window 65536 sqns; its receiver checks order \
         and CRCs.\n\
         - **ours**: `pgm-send --count N --size B --rate R×(size+44 or 52)×8` → 2 × `pgm-recv \
         --verify --count N`; ok = complete, gap-free, nothing unrecoverable.\n\
         - **pub/sub**: `pgm-pub --count N --size 64 --topic a0` → 2 × `pgm-sub --verify \
         --subscribe ''` over EPGM; libzmq: `netns-tests/peers/zmq_peer.py` PUB → 2 × SUB over \
         epgm (ZMQ_RATE from R; its rate is the slower subscriber's, as the Python publisher \
         does not time its sends).\n\
         - **Scale**: `pgm-send` (EPGM, 64 B) → n × `pgm-recv --verify`, or n × `pgm-send` → \
         2 × `pgm-recv --verify` (each expecting every sender's messages); see its section.\n\
         - **Loss**, **latency**, **memory**: as described in their sections.\n",
        include_str!("changes.md")
    );
    let errors = bench.all_errors();
    if !errors.is_empty() {
        let _ = writeln!(m, "\n## Not measured / errors\n");
        for e in &errors {
            let _ = writeln!(m, "- {}", e.lines().next().unwrap_or_default());
        }
    }
}

fn probe_json(p: &Probe) -> Value {
    json!({
        "requested": p.requested, "offered": p.offered, "delivered": p.delivered,
        "count": p.count, "ok": p.ok, "note": p.note,
        "sender_rss_kib": p.sender_rss_kib, "receiver_rss_kib": p.receiver_rss_kib,
        "sender_cpu_s": p.sender_cpu_s,
    })
}

/// Everything measured, as JSON: each LAN's run (parts, load, targets, errors) under `lans`,
/// and every measurement in the flat lists, each tagged with its `lan`.
pub fn to_json(cfg: &Config, bench: &Bench) -> Value {
    let mut searches = Vec::new();
    let mut blasts = Vec::new();
    let mut loss = Vec::new();
    let mut latency = Vec::new();
    let mut slow = Vec::new();
    let mut scale = Vec::new();
    let mut lans = Vec::new();
    for res in &bench.lans {
        let lan = lan_label(res.lan);
        lans.push(json!({
            "lan": lan, "parts": res.parts, "wall_s": res.wall_s,
            "loadavg": [res.load.0, res.load.1], "foreign_netns": res.foreign_netns,
            "targets": targets(res).iter().map(|t| json!({
                "what": t.what, "measured": t.measured, "holds": t.holds,
            })).collect::<Vec<_>>(),
            "errors": res.errors,
        }));
        searches.extend(res.searches.iter().map(|s| {
            json!({
                "lan": lan, "system": s.system.label(), "size": s.size, "best": s.outcome.rate(),
                "probes": s.outcome.probes.iter().map(probe_json).collect::<Vec<_>>(),
            })
        }));
        blasts.extend(res.blasts.iter().map(|(size, p)| {
            json!({
                "lan": lan, "size": size, "probe": probe_json(p),
            })
        }));
        loss.extend(res.loss.iter().map(|l| {
            json!({
                "lan": lan, "system": l.system.label(), "size": l.size, "clean_rate": l.clean_rate,
                "rate": l.rate, "count": l.count, "tail_p50_ms": l.tail_p50(),
                "max_rate": l.max_rate(),
                "search": l.search.probes.iter().map(probe_json).collect::<Vec<_>>(),
                "tail_max_ms": l.tail_max(), "goodput": l.goodput(),
                "runs": l.runs.iter().map(|r| json!({
                    "delivered_frac": r.delivered_frac, "tail_ms": r.tail_ms, "send_s": r.send_s,
                    "ok": r.ok, "note": r.note, "dropped": r.dropped,
                })).collect::<Vec<_>>(),
            })
        }));
        latency.extend(res.latency.iter().chain(&res.openpgm_latency).map(|l| {
            json!({
                "lan": lan, "system": l.system.label(), "spin": l.spin,
                "busy_poll": l.busy_poll.as_str(), "count": l.count, "lost": l.lost,
                "min_us": l.min, "p50_us": l.p50, "p90_us": l.p90, "p99_us": l.p99,
                "p999_us": l.p999, "max_us": l.max,
            })
        }));
        slow.extend(res.slow.as_ref().map(|s| {
            json!({
                "lan": lan, "count": s.count, "size": s.size, "rate": s.rate,
                "window_bytes": s.window_bytes, "recv_queue_bytes": s.recv_queue_bytes,
                "peak_kib": s.peak_kib, "fast_ok": s.fast_ok, "fast_rss_kib": s.fast_rss_kib,
            })
        }));
        scale.extend(res.scale.iter().map(|s| {
            json!({
                "lan": lan, "senders": s.senders, "receivers": s.receivers, "best": s.rate(),
                "cpu_us_per_msg": s.cpu_us_per_msg(),
                "probes": s.outcome.probes.iter().map(probe_json).collect::<Vec<_>>(),
            })
        }));
    }
    json!({
        "date": date(),
        "machine": machine(),
        "command": cfg.command,
        "smoke": cfg.smoke,
        "wall_s": bench.wall_s,
        "lans": lans,
        "searches": searches,
        "blasts": blasts,
        "loss": loss,
        "latency": latency,
        "slow_receiver": slow,
        "scale": scale,
        "errors": bench.errors,
    })
}

/// Writes the report, the plot and the JSON into `cfg.out_dir` (the JSON as
/// `bench-results.json`).
pub fn write_all(cfg: &Config, bench: &Bench) -> io::Result<()> {
    let md = cfg.out_dir.join(&cfg.report_name);
    // The sections other harnesses own stay as they are (see `report_md`).
    let existing = std::fs::read_to_string(&md).unwrap_or_default();
    let mut doc = markdown(cfg, bench);
    for heading in crate::report_md::FOREIGN_SECTIONS {
        if let Some(section) = section_of(&existing, heading) {
            doc = splice_section(&doc, heading, &section);
        }
    }
    std::fs::write(&md, doc)?;
    super::plot::draw(bench, &cfg.out_dir.join(&cfg.plot_name))?;
    let json_path = cfg.json_path();
    if let Some(dir) = json_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&to_json(cfg, bench)).map_err(io::Error::other)?,
    )?;
    eprintln!(
        "[bench] wrote {}, {} and {}",
        md.display(),
        cfg.out_dir.join(&cfg.plot_name).display(),
        json_path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::search::SearchOutcome;
    use crate::bench::SearchResult;

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
            row_of("plain UDP 64 B, with GSO")[1..3],
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
}
