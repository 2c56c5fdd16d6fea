//! The async-vs-blocking subscriber benchmark behind `pgm-async-bench` (`scripts/bench-async`):
//! on a LAN of three namespaces (host 1 publishes, hosts 2 and 3 subscribe; GSO runs cut at
//! the bridge ports, like the pub/sub part of `scripts/bench`), `pgm-pub --count N --size 64`
//! to two `pgm-sub --verify --subscribe ''`, either both blocking or both `--tokio`
//! (`pubsub::tokio::AsyncSubscriber`).
//!
//! Two measurements, each repeated `rounds` times with the modes alternating so that the
//! shared machine's drift hits both alike:
//!
//! - **throughput**: the highest offered rate on a ladder at which both subscribers verify
//!   everything gap-free (climbing until the first failure);
//! - **CPU per message** at a fixed offered rate both modes sustain: the subscriber's `cpu_s`
//!   (all its threads, from its JSON summary) over the messages it delivered.
//!
//! The report is the `## Async vs blocking subscriber` section of `BENCHMARKS.md`, spliced in
//! (the rest of the file is left alone), and a JSON file with every run.
//!
//! Safety: traffic only flows inside the namespaces of the [`Lan`] built here (removed on exit
//! and on panic); every process is killed when its handle drops; every run is bounded in
//! messages and time.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use crate::bench::interrupted;
use crate::bench::report::date;
use crate::lan::{Lan, Segmentation};
use crate::now;
use crate::report_md::{commit, splice_section};
use crate::tools::{endpoint, spawn_joined, tools_dir, wait_all, Encap, Finished, Iface};

/// The heading of the section this module owns in `BENCHMARKS.md`.
pub const HEADING: &str = crate::report_md::ASYNC_HEADING;

/// Payload bytes per message (the pub/sub benchmark's small-message size).
const SIZE: usize = 64;
/// The UDP port of every run (each run has its own LAN traffic; runs are sequential).
const PORT: u16 = 7650;

/// How a subscriber receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `pgm-sub`: blocking calls.
    Blocking,
    /// `pgm-sub --tokio`: `AsyncSubscriber::recv().await` on a current-thread runtime.
    Tokio,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Blocking => "blocking",
            Mode::Tokio => "tokio",
        }
    }
}

/// Knobs of one benchmark run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Messages per run.
    pub count: u64,
    /// Rounds of each measurement per mode.
    pub rounds: usize,
    /// The throughput ladder: offered rates in msg/s, ascending.
    pub ladder: Vec<u64>,
    /// The offered rate of the CPU measurement, msg/s.
    pub cpu_load: u64,
    /// Where `BENCHMARKS.md` (the section is spliced in) and the JSON go.
    pub out_dir: PathBuf,
    /// How the run was started (for the report).
    pub command: String,
}

impl Config {
    /// The recorded run: 1 000 000 messages per probe, 3 rounds, a ladder from 1 to 4 M msg/s
    /// in steps of 0.5 M, CPU at 1 M msg/s.
    pub fn full(out_dir: PathBuf) -> Config {
        Config {
            count: 1_000_000,
            rounds: 3,
            ladder: (2..=8).map(|k| k * 500_000).collect(),
            cpu_load: 1_000_000,
            out_dir,
            command: String::new(),
        }
    }

    /// The harness check: 100 000 messages, one round, a two-step ladder.
    pub fn smoke(out_dir: PathBuf) -> Config {
        Config {
            count: 100_000,
            rounds: 1,
            ladder: vec![500_000, 1_000_000],
            cpu_load: 500_000,
            out_dir,
            command: String::new(),
        }
    }
}

/// One subscriber's result in one run.
#[derive(Debug, Clone)]
pub struct SubResult {
    /// Messages delivered.
    pub received: u64,
    /// Delivered msg/s (first to last message).
    pub msgs_per_s: f64,
    /// CPU seconds the subscriber used (all threads).
    pub cpu_s: f64,
    /// Everything delivered, verified, gap-free.
    pub complete: bool,
}

impl SubResult {
    fn of(f: &Finished, count: u64) -> SubResult {
        let num = |k: &str| f.json.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        let received = f.u("received");
        let clean = ["gaps", "duplicates", "corrupt", "unrecoverable"]
            .iter()
            .all(|k| f.get(k) == Some(0));
        SubResult {
            received,
            msgs_per_s: num("msgs_per_s"),
            cpu_s: num("cpu_s"),
            complete: clean && received == count && f.exited_normally(),
        }
    }

    /// CPU nanoseconds per delivered message.
    pub fn cpu_ns_per_msg(&self) -> f64 {
        if self.received == 0 {
            return f64::NAN;
        }
        self.cpu_s * 1e9 / self.received as f64
    }
}

/// What a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A step of the throughput ladder.
    Ladder,
    /// The CPU-per-message measurement.
    Cpu,
}

/// One run: a load, a mode, and its two subscribers.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// What it measures.
    pub kind: Kind,
    /// The round.
    pub round: usize,
    /// Offered msg/s.
    pub load: u64,
    /// How the subscribers received.
    pub mode: Mode,
    /// Hosts 2 and 3.
    pub subs: Vec<SubResult>,
    /// The publisher's own msg/s (first send until the last APDU was on the wire).
    pub pub_msgs_per_s: f64,
}

impl RunResult {
    /// Both subscribers verified everything.
    pub fn complete(&self) -> bool {
        self.subs.iter().all(|s| s.complete)
    }
}

/// Runs the benchmark and writes the report; returns every run.
pub fn run(cfg: &Config) -> io::Result<Vec<RunResult>> {
    let lan = Lan::with_segmentation(3, Segmentation::Switch)?;
    let dir = tools_dir()?;
    let started = now();
    let mut runs = Vec::new();
    for round in 0..cfg.rounds {
        // Blocking first in even rounds, tokio first in odd ones.
        let order = if round % 2 == 0 {
            [Mode::Blocking, Mode::Tokio]
        } else {
            [Mode::Tokio, Mode::Blocking]
        };
        for mode in order {
            for &load in &cfg.ladder {
                let r = probe(&lan, &dir, cfg, Kind::Ladder, round, load, mode)?;
                let ok = r.complete();
                runs.push(r);
                if !ok {
                    break;
                }
            }
        }
        for mode in order {
            runs.push(probe(
                &lan,
                &dir,
                cfg,
                Kind::Cpu,
                round,
                cfg.cpu_load,
                mode,
            )?);
        }
    }
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    write_report(cfg, &runs, minutes)?;
    Ok(runs)
}

/// One run, logged.
fn probe(
    lan: &Lan,
    dir: &std::path::Path,
    cfg: &Config,
    kind: Kind,
    round: usize,
    load: u64,
    mode: Mode,
) -> io::Result<RunResult> {
    if interrupted() {
        return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
    }
    let r = run_once(lan, dir, cfg.count, load, mode, kind, round)?;
    eprintln!(
        "pgm-async-bench: round {round} {kind:?} {load} msg/s {:>8}: {}",
        mode.label(),
        r.subs
            .iter()
            .map(|s| format!(
                "{:.0} msg/s {:.0} ns/msg{}",
                s.msgs_per_s,
                s.cpu_ns_per_msg(),
                if s.complete { "" } else { " INCOMPLETE" }
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(r)
}

/// One run: two subscribers in `mode` joined, then the publisher; waits for all three.
fn run_once(
    lan: &Lan,
    dir: &std::path::Path,
    count: u64,
    load: u64,
    mode: Mode,
    kind: Kind,
    round: usize,
) -> io::Result<RunResult> {
    let mut subs = Vec::new();
    for h in [1, 2] {
        let host = lan.host(h);
        let mut args: Vec<String> = [
            "--verify",
            "--quiet",
            "--subscribe",
            "",
            "--timeout",
            "10",
            "--count",
        ]
        .iter()
        .map(|&a| a.to_owned())
        .collect();
        args.push(count.to_string());
        if mode == Mode::Tokio {
            args.push("--tokio".to_owned());
        }
        args.push(endpoint(host, Encap::Udp, Iface::Addr, PORT));
        subs.push(spawn_joined(
            host,
            dir.join("pgm-sub"),
            &args,
            Encap::Udp,
            PORT,
        )?);
    }
    let host = lan.host(0);
    // The wire rate for `load` messages/s: 64 B plus framing, 5 % headroom (as `scripts/bench`).
    let bits = load * (SIZE as u64 + 8) * 8 * 105 / 100;
    let publisher = host.spawn(
        dir.join("pgm-pub"),
        &[
            "--quiet".to_owned(),
            "--count".to_owned(),
            count.to_string(),
            "--size".to_owned(),
            SIZE.to_string(),
            "--rate".to_owned(),
            bits.to_string(),
            "--linger".to_owned(),
            "1".to_owned(),
            endpoint(host, Encap::Udp, Iface::Addr, PORT),
        ],
    )?;
    let mut procs = vec![publisher];
    procs.extend(subs);
    let done = wait_all(procs, now() + Duration::from_mins(2));
    let pub_msgs_per_s = done[0]
        .json
        .get("msgs_per_s")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    Ok(RunResult {
        kind,
        round,
        load,
        mode,
        subs: done[1..].iter().map(|f| SubResult::of(f, count)).collect(),
        pub_msgs_per_s,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        f64::midpoint(v[n / 2 - 1], v[n / 2])
    }
}

/// Per round of `mode`: the highest ladder step delivered gap-free (offered msg/s, 0 when
/// even the first step failed) and the lower of its two subscribers' delivered msg/s.
fn ladder_maxima(runs: &[RunResult], rounds: usize, mode: Mode) -> Vec<(u64, f64)> {
    (0..rounds)
        .map(|round| {
            runs.iter()
                .filter(|r| r.kind == Kind::Ladder && r.mode == mode && r.round == round)
                .filter(|r| r.complete())
                .max_by_key(|r| r.load)
                .map_or((0, 0.0), |r| {
                    let delivered = r.subs.iter().map(|s| s.msgs_per_s).fold(f64::MAX, f64::min);
                    (r.load, delivered)
                })
        })
        .collect()
}

/// Median CPU ns/msg, median delivered msg/s, complete subscriber runs and subscriber runs of
/// the CPU measurement in `mode`.
fn cpu_summary(runs: &[RunResult], mode: Mode) -> (f64, f64, usize, usize) {
    let subs: Vec<&SubResult> = runs
        .iter()
        .filter(|r| r.kind == Kind::Cpu && r.mode == mode)
        .flat_map(|r| &r.subs)
        .collect();
    (
        median(subs.iter().map(|s| s.cpu_ns_per_msg()).collect()),
        median(subs.iter().map(|s| s.msgs_per_s).collect()),
        subs.iter().filter(|s| s.complete).count(),
        subs.len(),
    )
}

fn mmsgs(r: f64) -> String {
    format!("{:.2} M", r / 1e6)
}

/// The Markdown section.
pub fn section(cfg: &Config, runs: &[RunResult], minutes: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{HEADING}\n");
    let _ = writeln!(
        s,
        "Measured {} with `{}` at commit {} ({minutes:.1} min). `pgm-pub --size {SIZE}` on \
         host 1 to two `pgm-sub --verify --subscribe ''` on hosts 2 and 3 of the namespace LAN \
         (GSO runs cut at the bridge ports), the subscribers either blocking or `--tokio` \
         (`pubsub::tokio::AsyncSubscriber`: `recv().await` on a current-thread runtime, its \
         idle timer cancelling pending receives). {} rounds, the modes alternating; {} \
         messages per run. Throughput: the ladder offers {}–{} msg/s (steps of {}) until a \
         step fails; the highest step at which both subscribers verified everything gap-free, \
         and what they delivered there (the slower of the two; when the top step passes, the \
         publisher's own speed is the limit). CPU per message: the \
         subscriber process's CPU time (all threads, user + system) over the messages it \
         delivered, at {} msg/s offered. Harness: `netns-tests/src/async_bench.rs`; every \
         run: [BENCHMARKS-async.json](BENCHMARKS-async.json).\n",
        date(),
        cfg.command,
        commit(),
        cfg.rounds,
        cfg.count,
        cfg.ladder.first().copied().unwrap_or(0),
        cfg.ladder.last().copied().unwrap_or(0),
        cfg.ladder.windows(2).next().map_or(0, |w| w[1] - w[0]),
        cfg.cpu_load,
    );
    let _ = writeln!(
        s,
        "| subscriber | highest gap-free step offered, per round | delivered there, per round | median delivered | CPU ns/msg (median) at {} | delivered at {} | complete |",
        mmsgs(cfg.cpu_load as f64),
        mmsgs(cfg.cpu_load as f64)
    );
    let _ = writeln!(s, "|---|---|---|---:|---:|---:|---:|");
    let mut medians = Vec::new();
    for mode in [Mode::Blocking, Mode::Tokio] {
        let maxima = ladder_maxima(runs, cfg.rounds, mode);
        let med = median(maxima.iter().map(|&(_, d)| d).collect());
        let (cpu, rate, ok, n) = cpu_summary(runs, mode);
        medians.push((med, cpu));
        let list =
            |f: &dyn Fn(&(u64, f64)) -> String| maxima.iter().map(f).collect::<Vec<_>>().join(", ");
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {cpu:.0} | {} | {ok}/{n} |",
            mode.label(),
            list(&|&(o, _)| mmsgs(o as f64)),
            list(&|&(_, d)| mmsgs(d)),
            mmsgs(med),
            mmsgs(rate),
        );
    }
    let (bt, bc) = medians[0];
    let (tt, tc) = medians[1];
    let met = tt * 1.2 >= bt && tc <= bc * 1.2;
    let _ = writeln!(
        s,
        "\nTokio ÷ blocking: gap-free throughput {:.2}×, CPU per message {:.2}×. Target (issue \
         12: async within 1.2× of blocking in both): **{}**.",
        tt / bt,
        tc / bc,
        if met { "met" } else { "missed" }
    );
    s
}

fn write_report(cfg: &Config, runs: &[RunResult], minutes: f64) -> io::Result<()> {
    std::fs::create_dir_all(&cfg.out_dir)?;
    let md = cfg.out_dir.join("BENCHMARKS.md");
    let existing = std::fs::read_to_string(&md).unwrap_or_default();
    std::fs::write(
        &md,
        splice_section(&existing, HEADING, &section(cfg, runs, minutes)),
    )?;
    let all: Vec<Value> = runs
        .iter()
        .map(|r| {
            json!({
                "kind": format!("{:?}", r.kind),
                "round": r.round,
                "load_msgs_per_s": r.load,
                "mode": r.mode.label(),
                "publisher_msgs_per_s": r.pub_msgs_per_s,
                "subscribers": r.subs.iter().map(|s| json!({
                    "received": s.received,
                    "msgs_per_s": s.msgs_per_s,
                    "cpu_s": s.cpu_s,
                    "complete": s.complete,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    std::fs::write(
        cfg.out_dir.join("BENCHMARKS-async.json"),
        serde_json::to_string_pretty(&json!({ "count": cfg.count, "size": SIZE, "runs": all }))?,
    )?;
    eprintln!("pgm-async-bench: wrote {}", md.display());
    Ok(())
}
