//! The summary tables of the report and the targets: one column per LAN for each
//! figure ([`LanTable`]).

use std::fmt::Write as _;

use super::{dash, ms, opt_rate, rate, ratio, row, rss_cell, verdict, SIZES};
use crate::bench::{lan_label, Bench, Config, LatencyResult, LossResult, Results, System};

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
pub(super) fn summary(m: &mut String, cfg: &Config, bench: &Bench) {
    let _ = writeln!(m, "## Summary\n");
    let _ = writeln!(
        m,
        "Highest rate delivered gap-free to both receivers (msg/s; plain UDP: datagrams/s), and \
         ours against the UDP limit sent the same way on the same LAN: raw PGM against \
         `sendmmsg` without GSO (raw sockets have no GSO), EPGM and pub/sub against UDP GSO \
         with GRO at the receivers (as EPGM sends and reads runs of packets).\n"
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

/// Summary rows against the UDP limit: the limit itself (with and without GSO, and the
/// blast), one message per packet, pub/sub, peak RSS.
fn summary_limit_rows(t: &mut LanTable<'_>) {
    for size in SIZES {
        for (sys, how) in [
            (System::Udp, "sendmmsg, no GSO"),
            (System::UdpGso, "with GSO and GRO"),
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
pub(super) fn targets_table(m: &mut String, bench: &Bench) {
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
