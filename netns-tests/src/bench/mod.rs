//! The benchmark harness behind `pgm-bench` (`scripts/bench`): one run measures on two LANs
//! of three namespaces each (host 1 sends, hosts 2 and 3 receive, one bridge), built,
//! measured and torn down one after the other ([`Config::lans`]): the **switch** LAN, whose
//! bridge ports cut UDP GSO runs into datagrams as a NIC with segmentation offload does, and
//! the **plain** LAN, where no device limits GSO and the receiving hosts cut them in software
//! (see [`Segmentation`]). The plain LAN runs the rate parts only unless `--only` says
//! otherwise ([`PLAIN_DEFAULT_PARTS`]). Each LAN's [`Results`] say which LAN they are from.
//! The parts:
//!
//! - the **limit**: plain UDP multicast (`udp-perf`, sendmmsg/recvmmsg, numbered datagrams)
//!   in packets/s for 64 B and 1400 B: the highest rate both receivers get without loss, and
//!   the raw blast rate of the sender;
//! - **one message per packet**, 64 B and 1400 B, OpenPGM (our libpgm peer, raw PGM) and ours
//!   (raw PGM and EPGM): the highest rate delivered gap-free to both receivers;
//! - **pub/sub batching**, 64 B: `pgm-pub` → 2 × `pgm-sub`, and libzmq over epgm;
//! - **repair under loss**: 100 000 messages at half the clean maximum, 1 % random loss on one
//!   receiver and 5 % on the other: delivery, repair tail (last send → last delivery) and
//!   goodput, 3 runs, OpenPGM vs ours;
//! - **latency**: `pgm-ping` round trips vs plain UDP ping-pong and OpenPGM's (our libpgm
//!   peer's `ping`/`reflect`), blocking and busy-polling;
//! - **memory**: peak RSS (VmHWM) of senders and receivers, and the bound of a slow receiver;
//! - **scale** ([`scale`]): gap-free rate and source CPU per message of EPGM 64 B with 1, 2,
//!   4 and 8 receivers (a LAN of 1 + n hosts each) and with 1, 4 and 16 publishers on one
//!   group to 2 receivers.
//!
//! Rates are searched ([`mod@search`]): every probe is a bounded run of N messages at one rate;
//! success means both receivers verified everything (in order, intact, nothing
//! unrecoverable). The results go to a Markdown report and an SVG plot ([`report`],
//! [`plot`]) and a JSON file with every probe.
//!
//! Safety: traffic only flows inside the namespaces of the [`Lan`] built here (removed on
//! exit and on panic); every process is killed when its handle drops; every run is bounded in
//! messages and time.

pub mod launch;
pub mod plot;
pub mod report;
pub mod runs;
pub mod scale;
pub mod search;

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use self::runs::{Bins, Ctx};
use self::scale::ScaleResult;
use self::search::{search, Probe, SearchOutcome, SearchParams};
use crate::lan::{Lan, Segmentation};
use crate::now;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Makes SIGINT and SIGTERM stop the benchmark at the next run boundary (runs are bounded),
/// so the LAN is torn down and every child killed on the way out.
pub fn install_signal_handlers() {
    let handler: extern "C" fn(libc::c_int) = on_signal;
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(sig, handler as libc::sighandler_t);
        }
    }
}

/// True once SIGINT or SIGTERM arrived (after [`install_signal_handlers`]).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

fn check_interrupted() -> io::Result<()> {
    if interrupted() {
        return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
    }
    Ok(())
}

/// The parts the plain LAN runs in a run over both LANs without `--only`: the rate searches
/// (limit, one message per packet, pub/sub). Loss, latency, memory, IPv6 and scale run on the
/// switch LAN only, which keeps a full run at about twice the time of one LAN.
pub const PLAIN_DEFAULT_PARTS: [&str; 3] = ["limit", "pgm", "pubsub"];

/// Every part, in the order they run.
pub const PARTS: [&str; 8] = [
    "limit", "pgm", "ipv6", "pubsub", "loss", "latency", "memory", "scale",
];

/// Short name of a LAN (`--lan`): `switch`, `plain` or `host`.
pub fn lan_label(seg: Segmentation) -> &'static str {
    match seg {
        Segmentation::Switch => "switch",
        Segmentation::Plain => "plain",
        Segmentation::Host => "host",
    }
}

/// Random ingress loss of the loss runs: 1 % on receiver 1, 5 % on receiver 2 (per mille).
pub const LOSS_PERMILLE: [u32; 2] = [10, 50];

/// A system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum System {
    /// Plain UDP multicast (`udp-perf`).
    #[default]
    Udp,
    /// Plain UDP multicast sent with UDP GSO (`udp-perf --gso`): the limit for EPGM, which
    /// sends runs of packets that way.
    UdpGso,
    /// OpenPGM 5.3 (our libpgm peer), raw PGM.
    OpenPgm,
    /// libzmq 4.3 PUB/SUB over epgm (python3-zmq).
    Zmq,
    /// Our `pgm-send` / `pgm-recv`, raw PGM.
    OursRaw,
    /// Our `pgm-send` / `pgm-recv`, EPGM.
    OursEpgm,
    /// Our `pgm-pub` / `pgm-sub` over EPGM (batching).
    PubSub,
    /// Our `pgm-send` / `pgm-recv`, raw PGM over IPv6.
    OursRawV6,
    /// Our `pgm-send` / `pgm-recv`, EPGM over UDP/IPv6.
    OursEpgmV6,
}

impl System {
    /// Short label.
    pub fn label(self) -> &'static str {
        match self {
            System::Udp => "udp",
            System::UdpGso => "udp-gso",
            System::OpenPgm => "openpgm",
            System::Zmq => "libzmq",
            System::OursRaw => "ours-pgm",
            System::OursEpgm => "ours-epgm",
            System::PubSub => "ours-pubsub",
            System::OursRawV6 => "ours-pgm-ipv6",
            System::OursEpgmV6 => "ours-epgm-ipv6",
        }
    }

    /// Descriptive name for reports.
    pub fn name(self) -> &'static str {
        match self {
            System::Udp => "plain UDP (udp-perf)",
            System::UdpGso => "plain UDP with GSO (udp-perf --gso, receivers --gro)",
            System::OpenPgm => "OpenPGM 5.3 raw PGM",
            System::Zmq => "libzmq 4.3 PUB/SUB epgm",
            System::OursRaw => "ours, raw PGM",
            System::OursEpgm => "ours, EPGM",
            System::PubSub => "ours, pgm-pub/pgm-sub EPGM",
            System::OursRawV6 => "ours, raw PGM over IPv6",
            System::OursEpgmV6 => "ours, EPGM over IPv6",
        }
    }
}

/// Knobs of one benchmark run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The short harness check (tiny counts, no thresholds).
    pub smoke: bool,
    /// Where the report, plot and JSON go.
    pub out_dir: PathBuf,
    /// Report file name in `out_dir`.
    pub report_name: String,
    /// Plot file name in `out_dir`.
    pub plot_name: String,
    /// The command line, for the report.
    pub command: String,
    /// Where the JSON with every probe goes (default: `out_dir/bench-results.json`).
    pub json: Option<PathBuf>,
    /// Target length of one probe's traffic, seconds.
    pub probe_secs: f64,
    /// Fewest / most messages in a probe.
    pub min_count: u64,
    /// See `min_count`.
    pub max_count: u64,
    /// Most probes per rate search.
    pub max_probes: usize,
    /// Stop bisecting at this ratio.
    pub tolerance: f64,
    /// Start of the one-message-per-packet searches, msgs/s.
    pub start_rate: f64,
    /// Start of the pub/sub searches, msgs/s.
    pub start_rate_batched: f64,
    /// Messages of the UDP blast.
    pub blast_count: u64,
    /// Receivers' idle timeout on clean probes, s.
    pub idle_s: f64,
    /// OpenPGM receivers' idle timeout under loss (its repairs take seconds), s.
    pub slow_repair_idle_s: f64,
    /// Our senders' linger on clean probes, s.
    pub linger_s: f64,
    /// Our senders' linger under loss, s.
    pub loss_linger_s: f64,
    /// Messages per loss run.
    pub loss_count: u64,
    /// Runs per loss configuration.
    pub loss_runs: usize,
    /// Message sizes of the loss runs.
    pub loss_sizes: Vec<usize>,
    /// Most probes of each rate search under loss.
    pub loss_search_probes: usize,
    /// Round trips per latency run.
    pub ping_count: u64,
    /// Unrecorded round trips first.
    pub ping_warmup: u64,
    /// Longest a ping run may take, s.
    pub ping_max_secs: f64,
    /// Only these parts (see [`PARTS`]); all if empty (on the plain LAN of a run over both
    /// LANs: [`PLAIN_DEFAULT_PARTS`]).
    pub only: Vec<String>,
    /// The LANs measured, one after the other: where each cuts UDP GSO runs into datagrams.
    pub lans: Vec<Segmentation>,
    /// The LAN being measured (set by [`Config::for_lan`]).
    pub lan: Segmentation,
    /// Receiver counts of the scale part (one sender).
    pub scale_receivers: Vec<usize>,
    /// Publisher counts of the scale part (two receivers).
    pub scale_publishers: Vec<usize>,
    /// Most probes per rate search of the scale part.
    pub scale_probes: usize,
    /// Messages (1400 B) of the slow-receiver run.
    pub slow_count: u64,
    /// Offered rate of the slow-receiver run, msgs/s.
    pub slow_rate: f64,
    /// Receive window of the slow receiver, bytes.
    pub slow_window_bytes: usize,
}

impl Config {
    /// The full benchmark: both LANs (about 12–25 minutes on the 2-core VM, twice one LAN's).
    pub fn full(out_dir: PathBuf) -> Config {
        Config {
            smoke: false,
            out_dir,
            report_name: "BENCHMARKS.md".to_owned(),
            plot_name: "BENCHMARKS-rate.svg".to_owned(),
            command: String::new(),
            json: None,
            probe_secs: 1.5,
            min_count: 20_000,
            max_count: 5_000_000,
            max_probes: 9,
            tolerance: 1.1,
            start_rate: 25_000.0,
            start_rate_batched: 250_000.0,
            blast_count: 500_000,
            idle_s: 1.0,
            slow_repair_idle_s: 15.0,
            linger_s: 0.5,
            loss_linger_s: 3.0,
            loss_count: 100_000,
            loss_runs: 3,
            loss_sizes: vec![64, 1400],
            loss_search_probes: 3,
            ping_count: 20_000,
            ping_warmup: 500,
            ping_max_secs: 20.0,
            only: Vec::new(),
            lans: vec![Segmentation::Switch, Segmentation::Plain],
            lan: Segmentation::Switch,
            scale_receivers: vec![1, 2, 4, 8],
            scale_publishers: vec![1, 4, 16],
            scale_probes: 6,
            slow_count: 150_000,
            slow_rate: 50_000.0,
            slow_window_bytes: 16 << 20,
        }
    }

    /// The smoke run: every part once with tiny counts, both LANs (about 1–2 minutes).
    pub fn smoke(out_dir: PathBuf) -> Config {
        Config {
            smoke: true,
            probe_secs: 0.05,
            min_count: 500,
            max_count: 3000,
            max_probes: 2,
            start_rate: 20_000.0,
            start_rate_batched: 50_000.0,
            blast_count: 3000,
            idle_s: 0.5,
            slow_repair_idle_s: 5.0,
            linger_s: 0.3,
            loss_linger_s: 1.0,
            loss_count: 2000,
            loss_runs: 1,
            loss_sizes: vec![64],
            loss_search_probes: 1,
            ping_count: 200,
            ping_warmup: 20,
            ping_max_secs: 10.0,
            slow_count: 3000,
            slow_rate: 10_000.0,
            slow_window_bytes: 1 << 20,
            scale_probes: 2,
            ..Config::full(out_dir)
        }
    }

    /// Whether `part` is to run.
    pub fn wants(&self, part: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| p == part)
    }

    /// The configuration of the run on `lan`: the plain LAN of a run over both LANs runs
    /// [`PLAIN_DEFAULT_PARTS`] unless `--only` chose the parts.
    #[must_use]
    pub fn for_lan(&self, lan: Segmentation) -> Config {
        let mut c = self.clone();
        c.lan = lan;
        if lan == Segmentation::Plain && self.lans.len() > 1 && self.only.is_empty() {
            c.only = PLAIN_DEFAULT_PARTS.map(str::to_owned).to_vec();
        }
        c
    }

    /// The parts this configuration runs, in order.
    pub fn parts(&self) -> Vec<&'static str> {
        PARTS.into_iter().filter(|p| self.wants(p)).collect()
    }

    /// Where the JSON with every probe goes.
    pub fn json_path(&self) -> PathBuf {
        self.json
            .clone()
            .unwrap_or_else(|| self.out_dir.join("bench-results.json"))
    }

    fn params(&self, start: f64) -> SearchParams {
        SearchParams {
            start,
            cap: 20_000_000.0,
            floor: 1_000.0,
            factor: 2.0,
            tolerance: self.tolerance,
            max_probes: self.max_probes,
            saturation: 0.8,
        }
    }
}

/// One rate search.
#[derive(Debug, Clone)]
pub struct SearchResult {
    /// The system.
    pub system: System,
    /// Message (or datagram payload) size.
    pub size: usize,
    /// The probes.
    pub outcome: SearchOutcome,
}

/// One run under loss.
#[derive(Debug, Clone, Default)]
pub struct LossRun {
    /// The worse receiver's delivered fraction.
    pub delivered_frac: f64,
    /// Last send → last delivery, ms.
    pub tail_ms: Option<f64>,
    /// First → last send, s.
    pub send_s: f64,
    /// Complete at both receivers.
    pub ok: bool,
    /// First problem.
    pub note: String,
    /// Packets the loss rules dropped at each receiver.
    pub dropped: Vec<u64>,
    /// When not `ok`: each receiver's JSON summary and the end of its stderr, to tell why.
    pub receivers: Vec<serde_json::Value>,
}

/// The runs of one loss configuration.
#[derive(Debug, Clone)]
pub struct LossResult {
    /// The system.
    pub system: System,
    /// Message size.
    pub size: usize,
    /// The clean maximum it was measured against, msgs/s.
    pub clean_rate: f64,
    /// Requested rate (half the clean maximum), msgs/s.
    pub rate: f64,
    /// Messages per run.
    pub count: u64,
    /// The runs.
    pub runs: Vec<LossRun>,
    /// The rate search under the same loss (from half the clean maximum up to it).
    pub search: SearchOutcome,
}

impl LossResult {
    /// Tails of the runs, sorted (ms).
    pub fn tails(&self) -> Vec<f64> {
        let mut t: Vec<f64> = self.runs.iter().filter_map(|r| r.tail_ms).collect();
        t.sort_by(f64::total_cmp);
        t
    }

    /// Median tail, ms.
    pub fn tail_p50(&self) -> Option<f64> {
        let t = self.tails();
        (!t.is_empty()).then(|| t[(t.len() - 1) / 2])
    }

    /// Largest tail, ms.
    pub fn tail_max(&self) -> Option<f64> {
        self.tails().last().copied()
    }

    /// Smallest delivered fraction over the runs.
    pub fn delivered(&self) -> f64 {
        self.runs
            .iter()
            .map(|r| r.delivered_frac)
            .fold(f64::NAN, f64::min)
    }

    /// The highest rate delivered completely under loss, if any probe succeeded.
    pub fn max_rate(&self) -> Option<f64> {
        Some(self.search.rate()).filter(|r| *r > 0.0)
    }

    /// Median goodput: messages / (send time + tail), msgs/s.
    pub fn goodput(&self) -> Option<f64> {
        let mut g: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|r| {
                let t = r.send_s + r.tail_ms? / 1e3;
                (t > 0.0).then(|| self.count as f64 * r.delivered_frac / t)
            })
            .collect();
        g.sort_by(f64::total_cmp);
        (!g.is_empty()).then(|| g[(g.len() - 1) / 2])
    }
}

/// One latency run.
#[derive(Debug, Clone, Default)]
pub struct LatencyResult {
    /// Udp, OursRaw or OpenPgm.
    pub system: System,
    /// Busy-polling.
    pub spin: bool,
    /// Which PGM sockets busy-polled (`off`, `recv`, `send`, `both`; OpenPGM: `off`, it has
    /// no IO thread).
    pub busy_poll: String,
    /// Round trips recorded.
    pub count: u64,
    /// Pings without an answer.
    pub lost: u64,
    /// Smallest round trip, µs.
    pub min: f64,
    /// Median, µs.
    pub p50: f64,
    /// 90th percentile, µs.
    pub p90: f64,
    /// 99th, µs.
    pub p99: f64,
    /// 99.9th, µs.
    pub p999: f64,
    /// Largest, µs.
    pub max: f64,
}

/// The slow-receiver run.
#[derive(Debug, Clone, Default)]
pub struct SlowResult {
    /// Messages offered.
    pub count: u64,
    /// Their size.
    pub size: usize,
    /// Rate the sender achieved, msgs/s.
    pub rate: f64,
    /// The slow receiver's `--window`, bytes.
    pub window_bytes: usize,
    /// Its socket's receive queue limit (`SocketOptions::recv_queue`), bytes.
    pub recv_queue_bytes: usize,
    /// Its peak RSS, KiB.
    pub peak_kib: u64,
    /// The other receiver got everything.
    pub fast_ok: bool,
    /// The other receiver's peak RSS, KiB.
    pub fast_rss_kib: u64,
}

impl SlowResult {
    /// The bound: the receive queue plus the window plus `baseline_kib` (a normal receiver's
    /// peak RSS), KiB.
    pub fn bound_kib(&self, baseline_kib: u64) -> u64 {
        ((self.recv_queue_bytes + self.window_bytes) / 1024) as u64 + baseline_kib
    }
}

/// Everything one run measured on one LAN.
#[derive(Debug, Clone, Default)]
pub struct Results {
    /// The LAN.
    pub lan: Segmentation,
    /// The parts run on it.
    pub parts: Vec<&'static str>,
    /// Rate searches.
    pub searches: Vec<SearchResult>,
    /// UDP blasts (unpaced sender), by size.
    pub blasts: Vec<(usize, Probe)>,
    /// Loss runs.
    pub loss: Vec<LossResult>,
    /// Latency runs of `pgm-ping`: plain UDP and ours.
    pub latency: Vec<LatencyResult>,
    /// Latency runs of OpenPGM (`openpgm_peer ping`), raw PGM, blocking and `--spin`; apart
    /// from `latency` because they come from another tool.
    pub openpgm_latency: Vec<LatencyResult>,
    /// The slow receiver.
    pub slow: Option<SlowResult>,
    /// The scale part's searches.
    pub scale: Vec<ScaleResult>,
    /// Parts that could not run, with why.
    pub errors: Vec<String>,
    /// Wall time of the run on this LAN, s.
    pub wall_s: f64,
    /// `/proc/loadavg` at the start and the end (other work on the machine skews results).
    pub load: (String, String),
    /// Network namespaces of others that existed during the run.
    pub foreign_netns: Vec<String>,
}

impl Results {
    /// The search of `system` at `size`.
    pub fn search(&self, system: System, size: usize) -> Option<&SearchResult> {
        self.searches
            .iter()
            .find(|s| s.system == system && s.size == size)
    }

    /// Its best rate, if any probe succeeded.
    pub fn rate(&self, system: System, size: usize) -> Option<f64> {
        self.search(system, size)
            .map(|s| s.outcome.rate())
            .filter(|r| *r > 0.0)
    }

    /// The loss result of `system` at `size`.
    pub fn loss(&self, system: System, size: usize) -> Option<&LossResult> {
        self.loss
            .iter()
            .find(|l| l.system == system && l.size == size)
    }

    /// The latency run (with the tool's default busy-poll for `spin`).
    pub fn latency(&self, system: System, spin: bool) -> Option<&LatencyResult> {
        if system == System::OpenPgm {
            return self.openpgm_latency.iter().find(|l| l.spin == spin);
        }
        self.latency.iter().find(|l| {
            l.system == system
                && l.spin == spin
                && (system == System::Udp || l.busy_poll == if spin { "both" } else { "off" })
        })
    }
}

/// Everything one `pgm-bench` run measured: one [`Results`] per LAN, in the order measured.
#[derive(Debug, Clone, Default)]
pub struct Bench {
    /// Each LAN's results.
    pub lans: Vec<Results>,
    /// What could not run on any LAN (a missing peer), with why.
    pub errors: Vec<String>,
    /// Wall time of the whole run, s.
    pub wall_s: f64,
}

impl Bench {
    /// The results measured on `lan`, if it was.
    pub fn on(&self, lan: Segmentation) -> Option<&Results> {
        self.lans.iter().find(|r| r.lan == lan)
    }

    /// Every error: the run's, then each LAN's, tagged with its LAN.
    pub fn all_errors(&self) -> Vec<String> {
        let tagged = self.lans.iter().flat_map(|r| {
            r.errors
                .iter()
                .map(move |e| format!("{} LAN: {e}", lan_label(r.lan)))
        });
        self.errors.iter().cloned().chain(tagged).collect()
    }
}

/// Runs the benchmark on each LAN of `cfg.lans` in turn (each built fresh and torn down
/// before the next) and writes the report, plot and JSON into `cfg.out_dir`. Fails only when
/// the binaries or the first LAN cannot be set up; a workload that fails is recorded in
/// [`Results::errors`], a later LAN that cannot be built in [`Bench::errors`].
pub fn run(cfg: &Config) -> io::Result<Bench> {
    let started = now();
    std::fs::create_dir_all(&cfg.out_dir)?;
    let bins = Bins::locate()?;
    let mut bench = Bench::default();
    for e in [&bins.openpgm, &bins.python]
        .into_iter()
        .filter_map(|r| r.as_ref().err())
    {
        bench.errors.push(e.clone());
    }
    for &seg in &cfg.lans {
        if interrupted() {
            break;
        }
        match run_lan(&cfg.for_lan(seg), &bins) {
            Ok(res) => bench.lans.push(res),
            Err(e) if bench.lans.is_empty() => return Err(e),
            Err(e) => bench
                .errors
                .push(format!("{} LAN not measured: {e}", lan_label(seg))),
        }
    }
    bench.wall_s = started.elapsed().as_secs_f64();
    report::write_all(cfg, &bench)?;
    Ok(bench)
}

/// The parts `cfg` wants on a fresh LAN of three hosts segmenting as `cfg.lan` says, then
/// the scale part's receiver counts on LANs of their own.
fn run_lan(cfg: &Config, bins: &Bins) -> io::Result<Results> {
    let started = now();
    let load_start = loadavg();
    eprintln!(
        "[bench] {} LAN: {}",
        lan_label(cfg.lan),
        cfg.parts().join(", ")
    );
    let mut res = Results {
        lan: cfg.lan,
        parts: cfg.parts(),
        ..Results::default()
    };
    let parts = {
        let mut lan = Lan::with_segmentation(3, cfg.lan)?;
        if cfg.wants("ipv6") {
            lan.enable_ipv6()?;
        }
        let ctx = Ctx::new(&lan, cfg, bins.clone());
        let sizes = [64usize, 1400];
        let parts = bench_parts(&ctx, cfg, &mut res, &sizes);
        res.foreign_netns = foreign_netns(&lan);
        parts
    };
    // Receiver counts other than 2 need LANs of their own (the bridge floods every port).
    let parts = parts.and_then(|()| scale::receivers_part(cfg, bins, &mut res));
    res.load = (load_start, loadavg());
    res.wall_s = started.elapsed().as_secs_f64();
    if let Err(e) = parts {
        res.errors.push(format!("stopped early: {e}"));
    }
    Ok(res)
}

/// A rate search of `sys` at `size`; see [`capped`].
fn capped_search(
    ctx: &Ctx<'_>,
    cfg: &Config,
    sys: System,
    size: usize,
    start: f64,
) -> SearchOutcome {
    capped(ctx, &cfg.params(start), |rate, count| {
        ctx.probe(sys, size, Some(rate), count)
    })
}

/// A rate search with `params`, `probe(rate, count)` running one probe. A probe never holds
/// more than `probe_secs` of traffic at twice the best rate achieved so far, so asking a
/// saturated sender for 4× its speed does not take 4× the time.
fn capped(
    ctx: &Ctx<'_>,
    params: &SearchParams,
    probe: impl Fn(f64, u64) -> Probe,
) -> SearchOutcome {
    let best = std::cell::Cell::new(0.0f64);
    search(params, |rate| {
        let b = best.get();
        let basis = if b > 0.0 { rate.min(2.0 * b) } else { rate };
        let p = probe(rate, ctx.probe_count(basis));
        if p.ok {
            best.set(b.max(p.offered));
        }
        p
    })
}

/// The first three fields of `/proc/loadavg`.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Network namespaces that are not this LAN's.
fn foreign_netns(lan: &Lan) -> Vec<String> {
    std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .filter(|n| !n.starts_with(lan.id()))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Every part of the benchmark that `cfg` wants, in order; stops at the first interruption.
fn bench_parts(ctx: &Ctx<'_>, cfg: &Config, res: &mut Results, sizes: &[usize]) -> io::Result<()> {
    rate_parts(ctx, cfg, res, sizes)?;
    pubsub_part(ctx, cfg, res)?;
    loss_part(ctx, cfg, res)?;
    latency_part(ctx, cfg, res)?;
    openpgm_latency_part(ctx, cfg, res)?;
    memory_part(ctx, cfg, res)?;
    scale::publishers_part(ctx, cfg, res)
}

/// Parts `limit` (plain UDP, with and without GSO, and its unpaced blast) and `pgm` (one
/// message per packet: OpenPGM, ours over raw PGM and EPGM), at each size.
fn rate_parts(ctx: &Ctx<'_>, cfg: &Config, res: &mut Results, sizes: &[usize]) -> io::Result<()> {
    for &size in sizes {
        for sys in [
            System::Udp,
            System::UdpGso,
            System::OpenPgm,
            System::OursRaw,
            System::OursEpgm,
        ] {
            let part = if matches!(sys, System::Udp | System::UdpGso) {
                "limit"
            } else {
                "pgm"
            };
            if !cfg.wants(part) || (sys == System::OpenPgm && ctx.bins.openpgm.is_err()) {
                continue;
            }
            check_interrupted()?;
            let outcome = capped_search(ctx, cfg, sys, size, cfg.start_rate);
            res.searches.push(SearchResult {
                system: sys,
                size,
                outcome,
            });
        }
        if cfg.wants("limit") {
            let blast = ctx.probe(System::Udp, size, None, cfg.blast_count);
            res.blasts.push((size, blast));
        }
    }
    // Part `ipv6`: ours over IPv6, after the IPv4 searches of the same run.
    if cfg.wants("ipv6") {
        for &size in sizes {
            for sys in [System::OursRawV6, System::OursEpgmV6] {
                check_interrupted()?;
                let outcome = capped_search(ctx, cfg, sys, size, cfg.start_rate);
                res.searches.push(SearchResult {
                    system: sys,
                    size,
                    outcome,
                });
            }
        }
    }
    Ok(())
}

/// Part `pubsub`: batching, 64 B, ours and libzmq.
fn pubsub_part(ctx: &Ctx<'_>, cfg: &Config, res: &mut Results) -> io::Result<()> {
    for sys in [System::PubSub, System::Zmq] {
        if !cfg.wants("pubsub") || (sys == System::Zmq && ctx.bins.python.is_err()) {
            continue;
        }
        let start = if sys == System::Zmq {
            cfg.start_rate_batched / 5.0
        } else {
            cfg.start_rate_batched
        };
        check_interrupted()?;
        let outcome = capped_search(ctx, cfg, sys, 64, start);
        res.searches.push(SearchResult {
            system: sys,
            size: 64,
            outcome,
        });
    }
    Ok(())
}

/// Part `loss`: repair under loss, 1 % on one receiver and 5 % on the other, at half the
/// clean maximum; OpenPGM and ours over raw PGM at each loss size.
fn loss_part(ctx: &Ctx<'_>, cfg: &Config, res: &mut Results) -> io::Result<()> {
    for &size in cfg.loss_sizes.iter().filter(|_| cfg.wants("loss")) {
        for sys in [System::OpenPgm, System::OursRaw] {
            let Some(clean) = res.rate(sys, size) else {
                if sys != System::OpenPgm || ctx.bins.openpgm.is_ok() {
                    res.errors.push(format!(
                        "loss runs of {} at {size} B skipped: no clean rate",
                        sys.label()
                    ));
                }
                continue;
            };
            let lr = loss_result(ctx, cfg, res, sys, size, clean)?;
            res.loss.push(lr);
        }
    }
    Ok(())
}

/// The loss configuration of `sys` at `size`, whose clean maximum is `clean` msgs/s: the
/// highest rate under loss (searched from half the clean maximum up to it), then
/// `cfg.loss_runs` runs at half the clean maximum (failed runs go to `res.errors`).
fn loss_result(
    ctx: &Ctx<'_>,
    cfg: &Config,
    res: &mut Results,
    sys: System,
    size: usize,
    clean: f64,
) -> io::Result<LossResult> {
    let rate = clean / 2.0;
    check_interrupted()?;
    ctx.set_loss(LOSS_PERMILLE)?;
    let params = SearchParams {
        start: rate,
        cap: clean,
        floor: clean / 8.0,
        factor: std::f64::consts::SQRT_2,
        tolerance: 1.2,
        max_probes: cfg.loss_search_probes,
        saturation: 0.8,
    };
    let search_out = search(&params, |r| {
        ctx.probe_with(sys, size, Some(r), ctx.probe_count(r), true)
    });
    ctx.set_loss([0, 0])?;
    let mut lr = LossResult {
        system: sys,
        size,
        clean_rate: clean,
        rate,
        count: cfg.loss_count,
        runs: Vec::new(),
        search: search_out,
    };
    for _ in 0..cfg.loss_runs {
        check_interrupted()?;
        match ctx.loss_run(sys, size, rate, cfg.loss_count, LOSS_PERMILLE) {
            Ok(r) => lr.runs.push(r),
            Err(e) => res.errors.push(format!("loss run {}: {e}", sys.label())),
        }
    }
    Ok(lr)
}

/// Part `latency`: `pgm-ping` over plain UDP and PGM, blocking and spinning.
fn latency_part(ctx: &Ctx<'_>, cfg: &Config, res: &mut Results) -> io::Result<()> {
    for (udp, spin, busy) in [
        (true, false, None),
        (true, true, None),
        (false, false, None),
        (false, true, None),
        // Only the application thread spins; the IO threads sleep in the kernel.
        (false, true, Some("off")),
    ] {
        if !cfg.wants("latency") {
            break;
        }
        // The application-only spin is a diagnostic: on 2 cores the spinning application
        // starves its own IO thread and pings time out, which says nothing about the harness.
        if cfg.smoke && busy.is_some() {
            continue;
        }
        check_interrupted()?;
        match ctx.ping(udp, spin, busy, cfg.ping_count) {
            Ok(l) => res.latency.push(l),
            Err(e) => res.errors.push(format!(
                "ping ({}, {}): {e}",
                if udp { "udp" } else { "pgm" },
                if spin { "spin" } else { "blocking" }
            )),
        }
    }
    Ok(())
}

/// Part `latency`, OpenPGM (our libpgm peer): the same ping-pong over raw PGM, blocking and
/// spinning.
fn openpgm_latency_part(ctx: &Ctx<'_>, cfg: &Config, res: &mut Results) -> io::Result<()> {
    for spin in [false, true] {
        if !cfg.wants("latency") || ctx.bins.openpgm.is_err() {
            break;
        }
        check_interrupted()?;
        match ctx.openpgm_ping(spin, cfg.ping_count) {
            Ok(l) => res.openpgm_latency.push(l),
            Err(e) => res.errors.push(format!(
                "ping (openpgm, {}): {e}",
                if spin { "spin" } else { "blocking" }
            )),
        }
    }
    Ok(())
}

/// Part `memory`: the slow receiver's memory bound.
fn memory_part(ctx: &Ctx<'_>, cfg: &Config, res: &mut Results) -> io::Result<()> {
    check_interrupted()?;
    if cfg.wants("memory") {
        match ctx.slow_receiver(cfg.slow_count, cfg.slow_rate) {
            Ok(s) => res.slow = Some(s),
            Err(e) => res.errors.push(format!("slow receiver: {e}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_lan_of_a_run_over_both_runs_the_rate_parts_unless_told() {
        let both = Config::full(PathBuf::from("/tmp"));
        assert_eq!(both.lans, [Segmentation::Switch, Segmentation::Plain]);
        assert_eq!(both.for_lan(Segmentation::Switch).parts(), PARTS);
        let plain = both.for_lan(Segmentation::Plain);
        assert_eq!(plain.lan, Segmentation::Plain);
        assert_eq!(plain.parts(), PLAIN_DEFAULT_PARTS);
        assert!(!plain.wants("scale") && !plain.wants("loss"));
        // --only applies to both LANs.
        let only = Config {
            only: vec!["scale".into()],
            ..both.clone()
        };
        assert_eq!(only.for_lan(Segmentation::Plain).parts(), ["scale"]);
        // --lan plain alone: every part.
        let alone = Config {
            lans: vec![Segmentation::Plain],
            ..both
        };
        assert_eq!(alone.for_lan(Segmentation::Plain).parts(), PARTS);
    }
}
