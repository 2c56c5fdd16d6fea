//! The Markdown report (`BENCHMARKS.md`), the JSON dump of every probe (`json`), and the
//! machine description. The summary tables and the targets are in `summary`: one column per
//! LAN for each figure.

mod json;
mod summary;

use std::fmt::Write as _;
use std::io;
use std::process::Command;

pub use self::json::to_json;
pub use self::summary::{targets, Target};
use super::scale::ScaleResult;
use super::search::Probe;
use super::{lan_label, Bench, Config, Results, System};
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

/// `p`'s peak RSS, sender / receiver, MiB.
fn rss_cell(p: Option<&Probe>) -> String {
    p.map_or_else(dash, |p| {
        format!("{} / {}", mib(p.sender_rss_kib), mib(p.receiver_rss_kib))
    })
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

/// The Markdown report of every LAN of `bench`.
pub fn markdown(cfg: &Config, bench: &Bench) -> String {
    let mut m = String::new();
    header(&mut m, cfg, bench);
    summary::summary(&mut m, cfg, bench);
    summary::targets_table(&mut m, bench);
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
             limits GSO, so UDP GSO runs reach the receiving hosts whole: a socket with \
             UDP_GRO (EPGM's, `udp-perf --gro`) reads a run as one datagram and cuts it in user \
             space, any other socket has its UDP stack cut it into datagrams in software."
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
        include_str!("../changes.md")
    );
    let errors = bench.all_errors();
    if !errors.is_empty() {
        let _ = writeln!(m, "\n## Not measured / errors\n");
        for e in &errors {
            let _ = writeln!(m, "- {}", e.lines().next().unwrap_or_default());
        }
    }
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
mod tests;
