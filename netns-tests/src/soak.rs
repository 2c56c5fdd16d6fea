//! The soak test behind `pgm-soak` (`scripts/soak --minutes N`; not part of CI): one publisher
//! and three subscribers on a LAN of four namespaces for N minutes, with churn on both sides,
//! checking exact delivery and that no process grows.
//!
//! # Set-up
//!
//! Host 1 runs `pgm-pub`, hosts 2–4 run `pgm-sub --verify` over EPGM (one bridge, see
//! [`Lan`]):
//!
//! | role | host | prefixes | lifetime |
//! | --- | --- | --- | --- |
//! | publisher | h1 | — | killed (SIGKILL) and restarted every `pub_period` (60 s) |
//! | steady subscriber | h3 | `''` (all) | the whole run |
//! | lossy subscriber | h2 | `a`, `b5` | the whole run; 5 % random ingress loss (nftables, [`Lan::set_loss`]) |
//! | churn subscriber | h4 | `b`, `a0` | a new process every `churn_period` (30 s), see below |
//!
//! **Sessions.** Publisher incarnation `k` is one session (one TSI: our GSI holds the PID and
//! the source port is random, so every restart is a new TSI; the harness checks that they
//! differ). It publishes `--count C` numbered test messages round-robin over 20 topics named
//! `{a0..b9}.s{k:03}` (sizes 12–200 B, rate-limited so that sending takes about 65 % of the
//! period), then lingers answering NAKs until the harness kills it with **SIGKILL** at the end
//! of its period: no FIN, the subscribers must find out by themselves (peer expiry) and free
//! the session. Because topics carry the session number, `pgm-sub`'s per-topic counts are
//! per-session counts.
//!
//! A session is **complete** when the publisher's host was quiet (under 200 packets/s on its
//! `eth0`, i.e. SPMs only, sampled each second) for at least the last 2 s before the kill:
//! everything was sent and repaired. A session still sending at the kill is **cut** (it should
//! not happen; the report says so).
//!
//! **Churn.** The churn subscriber's cycles are aligned with the publisher: cycle `j` starts at
//! `j × churn_period`, the new `pgm-sub` joins 1 s later (so in even cycles it joins a session
//! already under way) and leaves in one of two ways, alternating:
//!
//! - even cycles, **drain**: `pgm-sub --timeout 2`; 4 s before the cycle ends the harness cuts
//!   the host off (100 % ingress loss), the subscriber times out and prints its summary, which
//!   is verified; the link is restored at the cycle's end;
//! - odd cycles, **kill**: `pgm-sub --timeout 0` (never idles out), SIGKILLed at the cycle's
//!   end. `pgm-sub` prints its summary only when it ends by itself, so a killed incarnation is
//!   checked only for having run until the kill, without a panic.
//!
//! # What is checked
//!
//! For every subscriber incarnation that printed a summary (the two whole-run subscribers and
//! the drain incarnations), from its JSON: `gaps`, `duplicates`, `corrupt`, `unrecoverable`
//! and `decode_errors` are 0 (`pgm-sub --verify` checks every (TSI, topic) sequence: +1 per
//! message, CRC intact; a stream first heard mid-way starts where it is heard), `others` (the
//! sessions none of whose messages passed the check, which `pgm-sub` sums apart and does not
//! fail on) holds no messages and no losses, `received` is the sum of the per-topic counts,
//! and no topic outside its prefixes arrived. Then per
//! session, with the counts of that session's topics:
//!
//! - **complete session, subscriber present throughout** (the whole-run subscribers): the
//!   per-topic counts equal exactly what `C` messages round-robin give its prefixes. With no
//!   gaps and no duplicates inside each topic, that is messages 0..n of every topic: exact
//!   per-topic delivery.
//! - **otherwise** (a drain incarnation joins late and leaves early; any subscriber in a cut
//!   session): the per-topic counts must be those of one contiguous stretch `i..j` of the
//!   publisher's round-robin sequence ([`check::contiguous_run`]). With no gaps inside each
//!   topic this is "one unbroken run": nothing missing in the middle, nothing corrupt.
//!
//! `pgm-sub`'s summary does not break `gaps`/`unrecoverable` down per TSI; its loss notices
//! on stderr (`pgm-sub: TSI: N packets lost`) do, and are attributed to sessions by the TSI
//! each `pgm-pub` announces. Losses are accepted only when every notice names a cut session
//! (a publisher killed while sending cannot answer the last NAKs); otherwise they fail the run.
//!
//! Publishers must run until their kill (exiting earlier is a failure) and announce distinct
//! TSIs; whole-run subscribers must run to the end and then finish by themselves (`--count` is
//! the sum over all sessions); every process that ends other than by the harness's kill must
//! exit with status 0 (1 is accepted from a whole-run subscriber when a session was cut: it
//! then falls short of `--count`).
//!
//! # Memory
//!
//! A sampler thread reads `VmRSS` from `/proc/PID/status` of every running `pgm-pub` /
//! `pgm-sub` once per second (PIDs are global, so this works across namespaces; the process
//! name is checked so a recycled PID is never sampled). Per role it reports the largest RSS
//! and least-squares slopes, KiB/min:
//!
//! - whole-run subscribers: the slope of every sample after the warm-up (30 s), and the slope
//!   from [`Config::steady_from`] (6 min) on, when at least two minutes of the run are left
//!   after it. The receivers keep a silent session until their peer expiry (5 min), so for the
//!   first minutes every killed publisher leaves state behind and RSS may rise by design; from
//!   then on sessions are freed as fast as they come and RSS must not grow. The verdict uses
//!   the steady-state slope where there is one, the post-warm-up slope otherwise;
//! - restarted roles (publisher, churn subscriber; each process lives ≤ 60 s): the slope of
//!   the per-incarnation peak RSS against the incarnation's start time. (A slope over the
//!   pooled samples of a saw-tooth says nothing: a ramp of height A repeated n times has a
//!   least-squares slope of A/(period × n²).)
//!
//! The verdict is **flat** when that slope is below [`Config::flat_kib_per_min`] (16 KiB/min,
//! about 1 MiB an hour). The smoke run reports it without enforcing it (two minutes cannot
//! tell).
//!
//! # Output
//!
//! A `## Soak` section in `BENCHMARKS.md` (replaced if present, appended otherwise; the rest
//! of the file is left alone), a plot of every RSS sample (`BENCHMARKS-soak.svg`) and a JSON
//! file with the configuration, every session and subscriber incarnation with its checks, the
//! RSS statistics and every sample (`BENCHMARKS-soak.json`), both next to the report.
//! `--smoke` shortens every period (publisher 20 s, churn 10 s) and writes into a temporary
//! directory.
//!
//! # Safety
//!
//! Traffic only flows inside the [`Lan`]'s namespaces (named `pgmt-PID-K-*`, removed on exit,
//! on panic and — through the [`crate::bench`] signal handlers, which end the main loop — on
//! SIGINT/SIGTERM; `scripts/soak` removes them after a hard kill). Every process is killed when
//! its handle drops; every loop and wait has a deadline.

pub mod check;
pub mod plot;
pub mod report;

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

use self::check::{
    announced_tsi, by_session, check_session, last_progress_total, loss_notices, notable_lines,
    session_topic, slope, subscribed, Presence, SessionVerdict,
};
use crate::bench::interrupted;
use crate::lan::Lan;
use crate::now;
use crate::proc::Proc;
use crate::tools::{endpoint, spawn_joined, wait_one, Encap, Iface};
use crate::zmq::{expected_topics, pgm_pub, pgm_sub, spawn_pub, topic_counts, topics, PubOpts};

/// The roles of the run, one per host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// `pgm-pub` on host 1, restarted every publisher period.
    Publisher,
    /// `pgm-sub` on host 2 with 5 % ingress loss, the whole run.
    LossySub,
    /// `pgm-sub` on host 3, the whole run.
    SteadySub,
    /// `pgm-sub` on host 4, a new process every churn period.
    ChurnSub,
}

impl Role {
    /// Every role, in report order.
    pub const ALL: [Role; 4] = [
        Role::Publisher,
        Role::LossySub,
        Role::SteadySub,
        Role::ChurnSub,
    ];

    /// Short label (JSON keys).
    pub fn label(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::LossySub => "lossy-sub",
            Role::SteadySub => "steady-sub",
            Role::ChurnSub => "churn-sub",
        }
    }

    /// Zero-based host index on the LAN.
    pub fn host(self) -> usize {
        match self {
            Role::Publisher => 0,
            Role::LossySub => 1,
            Role::SteadySub => 2,
            Role::ChurnSub => 3,
        }
    }

    /// The subscription prefixes (none for the publisher).
    pub fn prefixes(self) -> &'static [&'static str] {
        match self {
            Role::Publisher => &[],
            Role::LossySub => &["a", "b5"],
            Role::SteadySub => &[""],
            Role::ChurnSub => &["b", "a0"],
        }
    }

    /// The program (as `/proc/PID/status` names it).
    pub fn program(self) -> &'static str {
        match self {
            Role::Publisher => "pgm-pub",
            _ => "pgm-sub",
        }
    }

    /// True for the roles whose process lives the whole run.
    pub fn whole_run(self) -> bool {
        matches!(self, Role::LossySub | Role::SteadySub)
    }
}

/// Knobs of one soak run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Length of the run (a whole number of publisher periods), s.
    pub run_secs: u64,
    /// The short harness check.
    pub smoke: bool,
    /// A publisher incarnation lives this long, then is killed, s.
    pub pub_period: u64,
    /// A churn cycle (one churn subscriber incarnation and its absence), s.
    pub churn_period: u64,
    /// The churn subscriber joins this long after its cycle starts, s.
    pub churn_join_delay: f64,
    /// Drain incarnations: `--timeout` of the subscriber, s.
    pub drain_idle: f64,
    /// Drain incarnations: the host is cut off this long before the cycle ends, s.
    pub drain_lead: f64,
    /// `--timeout` of the whole-run subscribers (above the publisher's quiet phase), s.
    pub sub_idle: f64,
    /// The publisher's `--rate`, bits/s.
    pub rate_bits: u64,
    /// Messages per session (`--count` of each publisher).
    pub count: u64,
    /// Topics per session.
    pub topics: usize,
    /// `--size` of the publisher.
    pub size: String,
    /// Ingress loss of the lossy subscriber, per mille.
    pub loss_permille: u32,
    /// Samples before this are left out of the slopes, s.
    pub warmup: f64,
    /// The flat verdict's bound on the RSS slope, KiB/min.
    pub flat_kib_per_min: f64,
    /// Whole-run roles: the steady state starts here (the receivers' peer expiry, 300 s, plus
    /// one publisher period: from then on dead sessions are freed as fast as they come), s.
    pub steady_from: f64,
    /// Whether a growing RSS fails the run (not in the smoke run: too short to tell).
    pub enforce_rss: bool,
    /// The publisher's host counts as quiet under this many packets/s.
    pub quiet_pps: f64,
    /// A session is complete when its publisher was quiet this long before the kill, s.
    pub quiet_before_kill: f64,
    /// The PGM port.
    pub port: u16,
    /// Where the report (`BENCHMARKS.md` with its `## Soak` section) goes.
    pub out_dir: PathBuf,
    /// Report file name in `out_dir`.
    pub report_name: String,
    /// Where the JSON goes (default: `out_dir/BENCHMARKS-soak.json`).
    pub json: Option<PathBuf>,
    /// Plot file name in `out_dir`.
    pub plot_name: String,
    /// The command line, for the report.
    pub command: String,
}

/// Wire bits per published message at the soak's sizes (12–200 B payloads, 7-byte topics, full
/// APDUs), measured, with 5 % for the repairs the lossy subscriber asks for.
const BITS_PER_MSG: f64 = 750.0;

/// Fraction of the publisher period spent sending.
const SEND_FRACTION: f64 = 0.65;

impl Config {
    /// The soak of `minutes` minutes: 60 s publisher period, 30 s churn.
    pub fn full(minutes: u64, out_dir: PathBuf) -> Config {
        let mut c = Config {
            run_secs: minutes.max(1) * 60,
            smoke: false,
            pub_period: 60,
            churn_period: 30,
            churn_join_delay: 1.0,
            drain_idle: 2.0,
            drain_lead: 4.0,
            sub_idle: 40.0,
            rate_bits: 10_000_000,
            count: 0,
            topics: 20,
            size: "12-200".to_owned(),
            loss_permille: 50,
            warmup: 30.0,
            flat_kib_per_min: 16.0,
            steady_from: 360.0,
            enforce_rss: true,
            quiet_pps: 200.0,
            quiet_before_kill: 2.0,
            port: 7900,
            out_dir,
            report_name: "BENCHMARKS.md".to_owned(),
            json: None,
            plot_name: "BENCHMARKS-soak.svg".to_owned(),
            command: String::new(),
        };
        c.count = c.derived_count();
        c
    }

    /// The harness check: `minutes` (2 by default) with a 20 s publisher period and 10 s churn.
    pub fn smoke(minutes: u64, out_dir: PathBuf) -> Config {
        let mut c = Config {
            smoke: true,
            pub_period: 20,
            churn_period: 10,
            drain_idle: 1.5,
            drain_lead: 3.0,
            sub_idle: 20.0,
            warmup: 10.0,
            steady_from: 320.0,
            enforce_rss: false,
            ..Config::full(minutes, out_dir)
        };
        c.count = c.derived_count();
        c
    }

    /// Messages per session so that sending takes about 65 % of the period.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a positive count of a few million"
    )]
    pub fn derived_count(&self) -> u64 {
        (self.rate_bits as f64 / BITS_PER_MSG * self.pub_period as f64 * SEND_FRACTION) as u64
    }

    /// Publisher incarnations in the run.
    pub fn sessions(&self) -> usize {
        (self.run_secs / self.pub_period).max(1) as usize
    }

    /// Churn cycles in the run.
    pub fn churn_cycles(&self) -> usize {
        (self.sessions() as u64 * self.pub_period / self.churn_period) as usize
    }

    /// Where the JSON goes.
    pub fn json_path(&self) -> PathBuf {
        self.json
            .clone()
            .unwrap_or_else(|| self.out_dir.join("BENCHMARKS-soak.json"))
    }

    /// The base topics (`a0`..), round-robin order.
    pub fn base_topics(&self) -> Vec<String> {
        topics(self.topics)
    }
}

/// How a churn incarnation leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    /// A whole-run subscriber: ends by itself after the last session (`--count`).
    Stays,
    /// Cut off from the network, then ends by its idle timeout and prints its summary.
    Drain,
    /// SIGKILL.
    Kill,
}

impl Leave {
    /// Label for the report.
    pub fn label(self) -> &'static str {
        match self {
            Leave::Stays => "stays",
            Leave::Drain => "drain",
            Leave::Kill => "kill",
        }
    }
}

/// One publisher incarnation.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// Its number (topics `….s{index:03}`).
    pub index: usize,
    /// The TSI it announced.
    pub tsi: Option<String>,
    /// Its PID.
    pub pid: Option<u32>,
    /// Started, s since the run's start.
    pub start_s: f64,
    /// Killed (or found dead), s.
    pub end_s: f64,
    /// The last sample in which its host still sent data (over `quiet_pps`), s.
    pub data_end_s: Option<f64>,
    /// Everything sent before the kill.
    pub complete: bool,
    /// The last `N total` of its progress lines (messages handed to the socket).
    pub last_progress_total: Option<u64>,
    /// How it ended, when it was not the harness's SIGKILL.
    pub problems: Vec<String>,
}

/// One subscriber incarnation.
#[derive(Debug, Clone)]
pub struct SubRun {
    /// Its role.
    pub role: Role,
    /// Incarnation number within the role.
    pub incarnation: usize,
    /// How it leaves.
    pub leave: Leave,
    /// Its PID.
    pub pid: Option<u32>,
    /// Joined (socket open, group joined), s.
    pub start_s: f64,
    /// Exited or killed, s.
    pub end_s: f64,
    /// Drain: when its host was cut off, s.
    pub cut_s: Option<f64>,
    /// Exit status as text.
    pub status: String,
    /// Ended by the harness's SIGKILL (as scheduled or at a deadline).
    pub killed: bool,
    /// Its JSON summary (`Null` when none).
    pub json: Value,
    /// Loss notices from its stderr: (TSI, sequence numbers lost).
    pub loss_notices: Vec<(String, u64)>,
    /// Its stderr lines other than progress lines (start-up, loss notices, errors), each with
    /// about the seconds since it started (see [`check::notable_lines`]).
    pub notable_stderr: Vec<String>,
    /// The last `N total` of its progress lines.
    pub last_progress_total: Option<u64>,
    /// Per-session verdicts (filled in by [`evaluate`]).
    pub sessions: Vec<SessionVerdict>,
    /// Everything wrong with it.
    pub problems: Vec<String>,
    /// Things accepted but worth saying (losses in cut sessions).
    pub notes: Vec<String>,
    /// Last lines of stderr, when something is wrong.
    pub stderr_tail: String,
}

/// RSS samples of one process.
#[derive(Debug, Clone)]
pub struct ProcSamples {
    /// Its role.
    pub role: Role,
    /// Incarnation within the role.
    pub incarnation: usize,
    /// PID.
    pub pid: u32,
    /// (s since the run's start, VmRSS KiB).
    pub samples: Vec<(f64, u64)>,
}

/// RSS statistics of one role.
#[derive(Debug, Clone, Default)]
pub struct RoleRss {
    /// Processes of this role.
    pub processes: usize,
    /// Samples taken.
    pub samples: usize,
    /// Largest VmRSS seen, KiB.
    pub max_kib: u64,
    /// Mean VmRSS in the first minute after the warm-up and in the last minute, KiB.
    pub first_last_kib: Option<(f64, f64)>,
    /// Whole-run roles: the slope of the samples after the warm-up; restarted roles: the
    /// slope of the per-incarnation peaks; KiB/min (see the module docs).
    pub slope_kib_per_min: Option<f64>,
    /// Whole-run roles: the slope of the samples from [`Config::steady_from`] on, when at
    /// least two minutes of the run are left after it, KiB/min.
    pub steady_slope: Option<f64>,
    /// The verdict's slope (below the bound): the steady-state one where there is one.
    pub flat: bool,
}

/// Everything a run recorded and concluded.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Publisher incarnations.
    pub sessions: Vec<Session>,
    /// Subscriber incarnations (whole-run ones first).
    pub subs: Vec<SubRun>,
    /// Every process's samples.
    pub procs: Vec<ProcSamples>,
    /// (s, tx packets of the publisher host's `eth0`).
    pub pub_tx: Vec<(f64, u64)>,
    /// RSS statistics per role.
    pub rss: BTreeMap<Role, RoleRss>,
    /// Packets the lossy subscriber's loss rule dropped.
    pub lossy_drops: u64,
    /// Problems that fail the run.
    pub problems: Vec<String>,
    /// Stopped by SIGINT/SIGTERM.
    pub interrupted: bool,
    /// Stopped early by an error (a publisher that could not be started).
    pub aborted: Option<String>,
    /// Wall time, s.
    pub wall_s: f64,
    /// `/proc/loadavg` at the start and at the end.
    pub load: (String, String),
    /// When it started (UTC).
    pub date: String,
}

impl Outcome {
    /// Delivery and memory both fine.
    pub fn passed(&self) -> bool {
        !self.interrupted && self.aborted.is_none() && self.problems.is_empty()
    }
}

/// A process the sampler watches.
#[derive(Debug)]
struct Tracked {
    role: Role,
    incarnation: usize,
    pid: u32,
    alive: bool,
    samples: Vec<(f64, u64)>,
}

#[derive(Debug, Default)]
struct Registry {
    procs: Vec<Tracked>,
    pub_tx: Vec<(f64, u64)>,
}

/// The once-a-second RSS sampler (a thread; stopped and joined on drop).
struct Sampler {
    registry: Arc<Mutex<Registry>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn lock(r: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    r.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `(Name, VmRSS KiB)` from `/proc/PID/status`.
fn proc_rss(pid: u32) -> Option<(String, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
    };
    let name = field("Name:")?.to_owned();
    let rss = field("VmRSS:")?.split_whitespace().next()?.parse().ok()?;
    Some((name, rss))
}

/// Transmitted packets of `eth0` in the network namespace of `pid`.
fn eth0_tx_packets(pid: u32) -> Option<u64> {
    let dev = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    let line = dev.lines().find(|l| l.trim_start().starts_with("eth0:"))?;
    // eth0: rx bytes packets errs drop fifo frame compressed multicast | tx bytes packets …
    line.split_once(':')?
        .1
        .split_whitespace()
        .nth(9)?
        .parse()
        .ok()
}

impl Sampler {
    fn start(t0: Instant, every: Duration) -> Sampler {
        let registry = Arc::new(Mutex::new(Registry::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (reg, st) = (Arc::clone(&registry), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            let mut next = now();
            while !st.load(Ordering::SeqCst) {
                let t = t0.elapsed().as_secs_f64();
                {
                    let mut r = lock(&reg);
                    let mut pub_pid = None;
                    for p in r.procs.iter_mut().filter(|p| p.alive) {
                        match proc_rss(p.pid) {
                            Some((name, kib)) if name == p.role.program() => {
                                p.samples.push((t, kib));
                                if p.role == Role::Publisher {
                                    pub_pid = Some(p.pid);
                                }
                            }
                            _ => {}
                        }
                    }
                    if let Some(tx) = pub_pid.and_then(eth0_tx_packets) {
                        r.pub_tx.push((t, tx));
                    }
                }
                next += every;
                while now() < next && !st.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(20).min(next - now()));
                }
            }
        });
        Sampler {
            registry,
            stop,
            thread: Some(thread),
        }
    }

    fn track(&self, role: Role, incarnation: usize, pid: Option<u32>) {
        if let Some(pid) = pid {
            lock(&self.registry).procs.push(Tracked {
                role,
                incarnation,
                pid,
                alive: true,
                samples: Vec::new(),
            });
        }
    }

    /// Stops sampling `pid` (before it is killed or reaped, so a recycled PID is never read).
    fn untrack(&self, pid: Option<u32>) {
        let mut r = lock(&self.registry);
        for p in r.procs.iter_mut().filter(|p| Some(p.pid) == pid) {
            p.alive = false;
        }
    }

    fn finish(mut self) -> (Vec<ProcSamples>, Vec<(f64, u64)>) {
        self.halt();
        let mut r = lock(&self.registry);
        let procs = r
            .procs
            .drain(..)
            .map(|p| ProcSamples {
                role: p.role,
                incarnation: p.incarnation,
                pid: p.pid,
                samples: p.samples,
            })
            .collect();
        (procs, std::mem::take(&mut r.pub_tx))
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A running publisher incarnation.
struct LivePub {
    session: Session,
    proc: Proc,
}

/// A running churn incarnation.
struct LiveChurn {
    run: SubRun,
    proc: Proc,
    /// When its cycle ends, s since the run's start.
    cycle_end: f64,
}

/// The run in progress. Times are seconds since `t0` (the start of the run); the schedule
/// (publisher periods, churn cycles) starts at `sched0`, once the whole-run subscribers have
/// joined.
struct Soak<'a> {
    cfg: &'a Config,
    lan: &'a Lan,
    t0: Instant,
    sched0: f64,
    base: Vec<String>,
    sampler: Sampler,
    sessions: Vec<Session>,
    churn_runs: Vec<SubRun>,
    problems: Vec<String>,
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Soak<'_> {
    fn t(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// Time `secs` after the schedule's start, on the run's clock.
    fn at(&self, secs: u64) -> f64 {
        self.sched0 + secs as f64
    }

    fn start_pub(&mut self, k: usize) -> io::Result<LivePub> {
        let topics: Vec<String> = self.base.iter().map(|b| session_topic(b, k)).collect();
        let mut opts = PubOpts::new(
            self.cfg.count,
            &topics,
            &self.cfg.size,
            &self.cfg.rate_bits.to_string(),
        );
        // Alive (answering NAKs) until the harness kills it.
        opts.linger_s = (self.cfg.pub_period * 2 + 30) as f64;
        let host = self.lan.host(Role::Publisher.host());
        let proc = spawn_pub(host, Encap::Udp, self.cfg.port, &opts)?;
        self.sampler.track(Role::Publisher, k, proc.id());
        Ok(LivePub {
            session: Session {
                index: k,
                pid: proc.id(),
                start_s: self.t(),
                ..Session::default()
            },
            proc,
        })
    }

    /// SIGKILLs a publisher (noting whether it was still running) and records its session.
    fn stop_pub(&mut self, mut live: LivePub) {
        let s = &mut live.session;
        let exited = live.proc.try_wait().ok().flatten();
        self.sampler.untrack(s.pid);
        live.proc.signal(libc::SIGKILL);
        let f = wait_one(live.proc, now() + Duration::from_secs(5));
        s.end_s = self.t();
        if let Some(st) = exited {
            s.problems.push(format!(
                "publisher {} exited by itself ({st}) before its kill; stderr:\n{}",
                s.index,
                tail(&f.out.stderr, 8)
            ));
        }
        s.tsi = announced_tsi(&f.out.stderr);
        if s.tsi.is_none() {
            s.problems
                .push(format!("publisher {} announced no TSI", s.index));
        }
        s.last_progress_total = last_progress_total(&f.out.stderr);
        if f.out.stderr.contains("panicked") {
            s.problems.push(format!(
                "publisher {} panicked:\n{}",
                s.index,
                tail(&f.out.stderr, 8)
            ));
        }
        self.sessions.push(live.session);
    }

    /// `pgm-sub --verify` arguments of `role`.
    fn sub_args(&self, role: Role, timeout: f64, count: Option<u64>) -> Vec<String> {
        let host = self.lan.host(role.host());
        let mut a = vec![
            "--verify".to_owned(),
            "--timeout".to_owned(),
            timeout.to_string(),
        ];
        if let Some(c) = count {
            a.extend(["--count".to_owned(), c.to_string()]);
        }
        for p in role.prefixes() {
            a.extend(["--subscribe".to_owned(), (*p).to_owned()]);
        }
        a.push(endpoint(host, Encap::Udp, Iface::Addr, self.cfg.port));
        a
    }

    /// Starts `pgm-sub` for `role`, waits until it joined, and starts sampling it.
    fn start_sub(
        &mut self,
        role: Role,
        incarnation: usize,
        leave: Leave,
        timeout: f64,
        count: Option<u64>,
    ) -> io::Result<(SubRun, Proc)> {
        let args = self.sub_args(role, timeout, count);
        let host = self.lan.host(role.host());
        let proc = spawn_joined(host, pgm_sub()?, &args, Encap::Udp, self.cfg.port)?;
        self.sampler.track(role, incarnation, proc.id());
        let run = SubRun {
            role,
            incarnation,
            leave,
            pid: proc.id(),
            start_s: self.t(),
            end_s: 0.0,
            cut_s: None,
            status: String::new(),
            killed: false,
            json: Value::Null,
            loss_notices: Vec::new(),
            notable_stderr: Vec::new(),
            last_progress_total: None,
            sessions: Vec::new(),
            problems: Vec::new(),
            notes: Vec::new(),
            stderr_tail: String::new(),
        };
        Ok((run, proc))
    }

    /// Ends a subscriber: SIGKILL first when `kill`, else waits until `deadline` (then kills);
    /// records how it ended and what it printed.
    fn end_sub(&self, run: &mut SubRun, mut proc: Proc, kill: bool, deadline: Instant) {
        self.sampler.untrack(run.pid);
        if kill {
            run.killed = proc.try_wait().ok().flatten().is_none();
            proc.signal(libc::SIGKILL);
        }
        let f = wait_one(proc, deadline.max(now() + Duration::from_secs(2)));
        run.end_s = self.t();
        run.killed |= f.timed_out;
        run.status = f.out.status.to_string();
        run.json.clone_from(&f.json);
        run.loss_notices = loss_notices(&f.out.stderr);
        run.notable_stderr = notable_lines(&f.out.stderr, 100);
        run.last_progress_total = last_progress_total(&f.out.stderr);
        if f.out.stderr.contains("panicked") {
            run.problems.push("panicked".to_owned());
        }
        run.stderr_tail = tail(&f.out.stderr, 10);
    }

    fn start_churn(&mut self, cycle: usize) -> io::Result<LiveChurn> {
        let leave = if cycle.is_multiple_of(2) {
            Leave::Drain
        } else {
            Leave::Kill
        };
        let timeout = match leave {
            Leave::Drain => self.cfg.drain_idle,
            Leave::Kill | Leave::Stays => 0.0,
        };
        let (run, proc) = self.start_sub(Role::ChurnSub, cycle, leave, timeout, None)?;
        Ok(LiveChurn {
            run,
            proc,
            cycle_end: self.at((cycle + 1) as u64 * self.cfg.churn_period),
        })
    }

    /// Cuts the churn host off (`true`) or reconnects it.
    fn cut_churn_host(&mut self, cut: bool) {
        let permille = if cut { 1000 } else { 0 };
        if let Err(e) = self.lan.set_loss(Role::ChurnSub.host(), permille, 0) {
            self.problems
                .push(format!("setting the churn host's loss to {permille}‰: {e}"));
        }
    }

    /// Drain: cut the host off `drain_lead` before the cycle ends, collect the subscriber when it
    /// has timed out (or kill it at the cycle's end). Kill: SIGKILL at the cycle's end.
    fn tick_churn(&mut self, mut c: LiveChurn, t: f64) -> Option<LiveChurn> {
        let exited = c.proc.try_wait().ok().flatten().is_some();
        if c.run.leave == Leave::Drain
            && c.run.cut_s.is_none()
            && !exited
            && t >= c.cycle_end - self.cfg.drain_lead
        {
            self.cut_churn_host(true);
            c.run.cut_s = Some(self.t());
        }
        if !exited && t < c.cycle_end {
            return Some(c);
        }
        match (c.run.leave, exited) {
            (Leave::Drain, false) => c.run.problems.push(format!(
                "still running {:.1} s after its host was cut off (--timeout {})",
                t - c.run.cut_s.unwrap_or(t),
                self.cfg.drain_idle
            )),
            (Leave::Kill, true) => c
                .run
                .problems
                .push("ended by itself before its kill".to_owned()),
            _ => {}
        }
        self.end_sub(&mut c.run, c.proc, !exited, now());
        if c.run.cut_s.is_some() {
            self.cut_churn_host(false);
        }
        self.churn_runs.push(c.run);
        None
    }

    /// The main loop: publisher restarts and churn on schedule until the run's end, while the
    /// whole-run subscribers (`steady`) keep running. `Ok(false)` when interrupted.
    fn drive(&mut self, steady: &mut [(SubRun, Option<Proc>)]) -> io::Result<bool> {
        let cfg = self.cfg;
        let n_sessions = cfg.sessions();
        let n_cycles = cfg.churn_cycles();
        let run_end = self.at(n_sessions as u64 * cfg.pub_period);
        let mut next_session = 0usize;
        let mut live_pub: Option<LivePub> = None;
        let mut next_cycle = 0usize;
        let mut churn: Option<LiveChurn> = None;
        let result = loop {
            if interrupted() {
                break Ok(false);
            }
            let t = self.t();
            // Publisher: kill the old incarnation and start the next on the period boundary.
            if next_session <= n_sessions && t >= self.at(next_session as u64 * cfg.pub_period) {
                if let Some(p) = live_pub.take() {
                    self.stop_pub(p);
                }
                if next_session < n_sessions {
                    match self.start_pub(next_session) {
                        Ok(p) => live_pub = Some(p),
                        Err(e) => break Err(e),
                    }
                    eprintln!(
                        "[soak] {:6.1} s: session {}/{n_sessions} started",
                        t - self.sched0,
                        next_session + 1
                    );
                }
                next_session += 1;
            }
            // Churn subscriber.
            churn = churn.and_then(|c| self.tick_churn(c, t));
            // A cycle whose join time passed long ago (a slow join or drain) is skipped.
            while churn.is_none()
                && next_cycle < n_cycles
                && t >= self.at((next_cycle as u64 + 1) * cfg.churn_period) - 2.0
            {
                self.problems.push(format!(
                    "churn cycle {next_cycle} skipped (started too late)"
                ));
                next_cycle += 1;
            }
            if churn.is_none()
                && next_cycle < n_cycles
                && t >= self.at(next_cycle as u64 * cfg.churn_period) + cfg.churn_join_delay
            {
                match self.start_churn(next_cycle) {
                    Ok(c) => churn = Some(c),
                    Err(e) => self
                        .problems
                        .push(format!("churn cycle {next_cycle}: could not start: {e}")),
                }
                next_cycle += 1;
            }
            // Whole-run subscribers must still be there until the last session; they end by
            // themselves (--count) once it has sent everything.
            for (run, proc) in steady.iter_mut() {
                let exited = proc
                    .as_mut()
                    .is_some_and(|p| p.try_wait().ok().flatten().is_some());
                if !exited {
                    continue;
                }
                if next_session < n_sessions {
                    run.problems.push(format!(
                        "exited {:.1} s into the run, before the last session",
                        t - self.sched0
                    ));
                }
                if let Some(p) = proc.take() {
                    self.end_sub(run, p, false, now());
                }
            }
            if next_session > n_sessions && churn.is_none() && t >= run_end {
                break Ok(true);
            }
            thread::sleep(Duration::from_millis(50));
        };
        if let Some(p) = live_pub.take() {
            self.stop_pub(p);
        }
        if let Some(mut c) = churn.take() {
            self.end_sub(&mut c.run, c.proc, true, now());
            self.churn_runs.push(c.run);
        }
        result
    }
}

/// Runs the soak on a fresh LAN and writes the report and the JSON. Fails only when the LAN,
/// the tools or the first processes cannot be set up, or the report cannot be written; what
/// goes wrong during the run is in [`Outcome::problems`].
pub fn run(cfg: &Config) -> io::Result<Outcome> {
    let started = now();
    let date = crate::bench::report::date();
    let load_start = crate::bench::loadavg();
    pgm_pub()?;
    pgm_sub()?;
    let lan = Lan::new(4)?;
    lan.set_loss(Role::LossySub.host(), cfg.loss_permille, 0)?;
    let t0 = now();
    let mut soak = Soak {
        cfg,
        lan: &lan,
        t0,
        sched0: 0.0,
        base: cfg.base_topics(),
        sampler: Sampler::start(t0, Duration::from_secs(1)),
        sessions: Vec::new(),
        churn_runs: Vec::new(),
        problems: Vec::new(),
    };
    // The whole-run subscribers: --count is everything they will be sent.
    let mut steady: Vec<(SubRun, Option<Proc>)> = Vec::new();
    for role in [Role::LossySub, Role::SteadySub] {
        let per_session: u64 = expected_topics(&soak.base, cfg.count, role.prefixes())
            .values()
            .sum();
        let count = per_session * cfg.sessions() as u64;
        let (run, proc) = soak.start_sub(role, 0, Leave::Stays, cfg.sub_idle, Some(count))?;
        steady.push((run, Some(proc)));
    }
    soak.sched0 = soak.t();
    let finished = soak.drive(&mut steady);
    // They end by themselves once they have every message, else by their idle timeout.
    let deadline = now() + Duration::from_secs_f64(cfg.sub_idle + 15.0);
    let mut subs = Vec::new();
    for (mut run, proc) in steady {
        if let Some(p) = proc {
            let kill = !matches!(finished, Ok(true));
            soak.end_sub(&mut run, p, kill, deadline);
        }
        subs.push(run);
    }
    let Soak {
        sampler,
        sessions,
        churn_runs,
        problems,
        sched0,
        ..
    } = soak;
    subs.extend(churn_runs);
    let (mut procs, mut pub_tx) = sampler.finish();
    let lossy_drops = lan.dropped(Role::LossySub.host()).map_or(0, |d| d.0);
    drop(lan);
    // Report every time on the schedule's clock (the whole-run subscribers' first samples are
    // slightly negative).
    let mut sessions = sessions;
    for s in &mut sessions {
        s.start_s -= sched0;
        s.end_s -= sched0;
    }
    for r in &mut subs {
        r.start_s -= sched0;
        r.end_s -= sched0;
        r.cut_s = r.cut_s.map(|c| c - sched0);
    }
    for p in &mut procs {
        for s in &mut p.samples {
            s.0 -= sched0;
        }
    }
    for s in &mut pub_tx {
        s.0 -= sched0;
    }
    mark_complete(cfg, &mut sessions, &pub_tx);
    let mut out = Outcome {
        sessions,
        subs,
        procs,
        pub_tx,
        lossy_drops,
        date,
        ..Outcome::default()
    };
    match finished {
        Ok(done) => out.interrupted = !done,
        Err(e) => out.aborted = Some(e.to_string()),
    }
    evaluate(cfg, &mut out);
    out.problems.splice(0..0, problems);
    out.wall_s = started.elapsed().as_secs_f64();
    out.load = (load_start, crate::bench::loadavg());
    report::write_all(cfg, &out)?;
    Ok(out)
}

/// Sets each session's `data_end_s` and `complete` from the publisher host's packet counts.
pub fn mark_complete(cfg: &Config, sessions: &mut [Session], pub_tx: &[(f64, u64)]) {
    for s in sessions {
        let busy: Vec<f64> = pub_tx
            .windows(2)
            .filter(|w| w[0].0 >= s.start_s && w[1].0 <= s.end_s)
            .filter(|w| {
                let dt = w[1].0 - w[0].0;
                dt > 0.0 && w[1].1.saturating_sub(w[0].1) as f64 / dt > cfg.quiet_pps
            })
            .map(|w| w[1].0)
            .collect();
        s.data_end_s = busy.last().copied();
        // The last sample of the session must be quiet too (the kill came after a quiet
        // stretch of at least quiet_before_kill).
        let last_sample = pub_tx
            .iter()
            .rev()
            .find(|x| x.0 <= s.end_s && x.0 >= s.start_s)
            .map(|x| x.0);
        s.complete = match (s.data_end_s, last_sample) {
            (Some(d), Some(l)) => l - d >= cfg.quiet_before_kill - 0.05,
            _ => false,
        };
    }
}

/// The per-session and global checks of every subscriber incarnation, the publishers'
/// problems and the RSS statistics; fills `out.problems`.
pub fn evaluate(cfg: &Config, out: &mut Outcome) {
    let base = cfg.base_topics();
    let tsi_session: BTreeMap<String, usize> = out
        .sessions
        .iter()
        .filter_map(|s| Some((s.tsi.clone()?, s.index)))
        .collect();
    let mut problems = Vec::new();
    // Publishers.
    let mut seen = BTreeMap::new();
    for s in &out.sessions {
        problems.extend(s.problems.iter().cloned());
        if let Some(tsi) = &s.tsi {
            if let Some(other) = seen.insert(tsi.clone(), s.index) {
                problems.push(format!(
                    "sessions {other} and {} have the same TSI {tsi}",
                    s.index
                ));
            }
        }
        if !s.complete {
            problems.push(format!(
                "session {} was cut: its publisher was still sending at the kill (data until \
                 {:?} s, killed at {:.1} s); lower the rate or lengthen the period",
                s.index, s.data_end_s, s.end_s
            ));
        }
    }
    let cut: Vec<usize> = out
        .sessions
        .iter()
        .filter(|s| !s.complete)
        .map(|s| s.index)
        .collect();
    for r in &mut out.subs {
        check_sub(cfg, &base, &out.sessions, &tsi_session, &cut, r);
        for p in &r.problems {
            problems.push(format!(
                "{} #{} ({}): {p}",
                r.role.label(),
                r.incarnation,
                r.leave.label()
            ));
        }
    }
    out.rss = rss_stats(cfg, &out.procs);
    for (role, s) in &out.rss {
        if !s.flat && cfg.enforce_rss {
            problems.push(format!(
                "{}: RSS grows: slope {:.1} KiB/min, steady state {:?} (bound {})",
                role.label(),
                s.slope_kib_per_min.unwrap_or(f64::NAN),
                s.steady_slope.map(|v| (v * 10.0).round() / 10.0),
                cfg.flat_kib_per_min
            ));
        }
    }
    if out.interrupted {
        problems.push("interrupted".to_owned());
    }
    if let Some(e) = &out.aborted {
        problems.push(format!("stopped early: {e}"));
    }
    out.problems = problems;
}

/// The summary's error counters of `r` must be 0; losses are accepted only when every loss
/// notice names a cut session (see the module docs).
fn check_counters(r: &mut SubRun, tsi_session: &BTreeMap<String, usize>, cut: &[usize]) {
    let outside_cut: Vec<String> = r
        .loss_notices
        .iter()
        .filter(|(tsi, _)| !tsi_session.get(tsi).is_some_and(|k| cut.contains(k)))
        .map(|(tsi, lost)| {
            format!(
                "{lost} lost from {tsi} (session {:?})",
                tsi_session.get(tsi)
            )
        })
        .collect();
    // Every loss notice names a session killed while sending.
    let losses_excused = outside_cut.is_empty() && !r.loss_notices.is_empty();
    let get = |k: &str| r.json.get(k).and_then(Value::as_u64);
    for key in ["gaps", "unrecoverable"] {
        match get(key) {
            Some(0) => {}
            Some(n) if losses_excused => {
                r.notes.push(format!(
                    "{key} = {n}, all from publishers killed while sending (loss notices {:?})",
                    r.loss_notices
                ));
            }
            v => r.problems.push(format!(
                "{key} = {v:?}, want 0; loss notices: {}",
                if outside_cut.is_empty() {
                    "none".to_owned()
                } else {
                    outside_cut.join(", ")
                }
            )),
        }
    }
    for key in ["duplicates", "corrupt", "decode_errors"] {
        match get(key) {
            Some(0) => {}
            v => r.problems.push(format!("{key} = {v:?}, want 0")),
        }
    }
    // Sessions none of whose messages passed the check are summed apart under "others" (and
    // do not fail pgm-sub's own verdict); in the soak only our publishers send, so there must
    // be no such messages, and their losses count like the others.
    let others = r.json.get("others").cloned().unwrap_or(Value::Null);
    let other = |k: &str| others.get(k).and_then(Value::as_u64).unwrap_or(0);
    if other("messages") != 0 || other("corrupt") != 0 {
        r.problems.push(format!(
            "messages of sessions that never passed the check: others = {others}"
        ));
    }
    if other("unrecoverable") != 0 && !losses_excused {
        r.problems.push(format!(
            "losses of sessions that never passed the check: others = {others}"
        ));
    }
}

fn check_sub(
    cfg: &Config,
    base: &[String],
    sessions: &[Session],
    tsi_session: &BTreeMap<String, usize>,
    cut: &[usize],
    r: &mut SubRun,
) {
    let prefixes = r.role.prefixes();
    let subs = subscribed(base, prefixes);
    if r.json.is_null() {
        match r.leave {
            Leave::Kill if r.killed => {}
            Leave::Kill => r
                .problems
                .push(format!("not running at its kill ({})", r.status)),
            _ => r.problems.push(format!(
                "no JSON summary ({}); stderr:\n{}",
                r.status, r.stderr_tail
            )),
        }
        return;
    }
    // How it ended.
    let any_cut = !cut.is_empty();
    let exit_ok = r.status == "exit status: 0"
        || (r.leave == Leave::Stays && any_cut && r.status == "exit status: 1");
    if r.killed && r.leave != Leave::Kill {
        r.problems.push(format!(
            "killed by the harness at a deadline ({})",
            r.status
        ));
    } else if !exit_ok {
        r.problems.push(format!("ended with {}", r.status));
    }
    check_counters(r, tsi_session, cut);
    let counts = topic_counts(&r.json);
    let total: u64 = counts.values().sum();
    let received = r.json.get("received").and_then(Value::as_u64);
    if received != Some(total) {
        r.problems.push(format!(
            "received = {received:?} but the topics add up to {total}"
        ));
    }
    let (per_session, strays) = by_session(&counts);
    if !strays.is_empty() {
        r.problems.push(format!("topics of no session: {strays:?}"));
    }
    for s in sessions {
        let overlaps = s.start_s < r.end_s && s.end_s > r.start_s;
        let got = per_session.get(&s.index).cloned().unwrap_or_default();
        if !overlaps && got.is_empty() {
            continue;
        }
        if !overlaps {
            r.problems.push(format!(
                "got messages of session {} it was not there for",
                s.index
            ));
            continue;
        }
        let presence = if r.leave == Leave::Stays {
            Presence::Full
        } else {
            Presence::Partial
        };
        let v = check_session(
            s.index, presence, s.complete, &got, base, cfg.count, prefixes, &subs,
        );
        if !v.ok {
            r.problems.push(format!("session {}: {}", s.index, v.note));
        }
        r.sessions.push(v);
    }
    for k in per_session.keys() {
        if !sessions.iter().any(|s| s.index == *k) {
            r.problems
                .push(format!("messages of an unknown session {k}"));
        }
    }
}

/// RSS statistics per role (see the module docs).
pub fn rss_stats(cfg: &Config, procs: &[ProcSamples]) -> BTreeMap<Role, RoleRss> {
    let mut out = BTreeMap::new();
    let end = procs
        .iter()
        .flat_map(|p| p.samples.iter().map(|s| s.0))
        .fold(0.0, f64::max);
    for role in Role::ALL {
        let ps: Vec<&ProcSamples> = procs.iter().filter(|p| p.role == role).collect();
        let mut st = RoleRss {
            processes: ps.len(),
            samples: ps.iter().map(|p| p.samples.len()).sum(),
            max_kib: ps
                .iter()
                .flat_map(|p| p.samples.iter().map(|s| s.1))
                .max()
                .unwrap_or(0),
            ..RoleRss::default()
        };
        let pts = |from: f64| -> Vec<(f64, f64)> {
            ps.iter()
                .flat_map(|p| p.samples.iter())
                .filter(|s| s.0 >= from)
                .map(|s| (s.0 / 60.0, s.1 as f64))
                .collect()
        };
        if role.whole_run() {
            let after = pts(cfg.warmup);
            st.slope_kib_per_min = slope(&after);
            if end - cfg.steady_from >= 120.0 {
                st.steady_slope = slope(&pts(cfg.steady_from));
            }
            let mean = |lo: f64, hi: f64| {
                let v: Vec<f64> = after
                    .iter()
                    .filter(|p| p.0 * 60.0 >= lo && p.0 * 60.0 < hi)
                    .map(|p| p.1)
                    .collect();
                (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
            };
            st.first_last_kib =
                mean(cfg.warmup, cfg.warmup + 60.0).zip(mean(end - 60.0, end + 1.0));
        } else {
            // One point per incarnation that started after the warm-up: (start, peak).
            let peaks: Vec<(f64, f64)> = ps
                .iter()
                .filter_map(|p| {
                    let start = p.samples.first()?.0;
                    let peak = p.samples.iter().map(|s| s.1).max()?;
                    (start >= cfg.warmup - 1.0).then_some((start / 60.0, peak as f64))
                })
                .collect();
            st.slope_kib_per_min = slope(&peaks);
        }
        st.flat = st
            .steady_slope
            .or(st.slope_kib_per_min)
            .is_some_and(|s| s < cfg.flat_kib_per_min);
        out.insert(role, st);
    }
    out
}
