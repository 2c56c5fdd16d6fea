//! Runs our command-line tools (`pgm-send`, `pgm-recv`, `pgm-top` from the `tools` crate) on a
//! [`Lan`].
//!
//! The binaries are built once per test process (`cargo build --release -p tools --bins`,
//! guarded by a [`OnceLock`]) and taken from `<target dir>/release/`.
//!
//! CLI contract used here (see the tools crate):
//!
//! - `pgm-send [--count N --size BYTES] [--rate BITS] [--tpdu B] [--window SQNS]
//!   [--linger SECS] [--nak-profile lan|openpgm] [--hops N] [--loop] ENDPOINT`, ending with one
//!   JSON line `{"sent","bytes","elapsed_s","msgs_per_s","naks_received","ncf_sent",
//!   "rdata_sent"}`;
//! - `pgm-recv [--count N] [--timeout SECS] [--verify] ENDPOINT`, ending with one JSON line
//!   `{"received","gaps","duplicates","corrupt","unrecoverable","elapsed_s","msgs_per_s",
//!   "naks_sent","first_seq","last_seq","parse_errors","checksum_errors"}` and exiting non-zero
//!   on gaps, corruption, unrecoverable loss or fewer than `--count` messages;
//! - ENDPOINT is `pgm://IFACE;GROUP:PORT` (raw IP protocol 113) or `epgm://IFACE;GROUP:PORT`
//!   (UDP port = PORT), IFACE an interface name or an IPv4 address.
//!
//! The argument vectors come from option builders: [`SendOpts`], [`RecvOpts`], and for the
//! benchmark's other tools [`UdpSendOpts`] / [`UdpRecvOpts`] (`udp-perf send|recv`) and
//! [`PingOpts`] (`pgm-ping`).

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::lan::{Capture, Host, Lan, GROUP, GROUP6};
use crate::proc::{Output, Proc};
use crate::{
    deps::{require, Need},
    now,
};

/// How PGM is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encap {
    /// Raw IP protocol 113 (`pgm://`).
    Raw,
    /// UDP encapsulation (`epgm://`), UDP port = PGM port.
    Udp,
}

impl Encap {
    /// `"raw"` or `"epgm"`, for test labels.
    pub fn label(self) -> &'static str {
        match self {
            Encap::Raw => "raw",
            Encap::Udp => "epgm",
        }
    }

    /// The endpoint scheme.
    pub fn scheme(self) -> &'static str {
        match self {
            Encap::Raw => "pgm",
            Encap::Udp => "epgm",
        }
    }
}

/// How the interface is named in an endpoint, and which family the session uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iface {
    /// By the host's IPv4 address (`10.x.y.z`), IPv4 group.
    Addr,
    /// By interface name (`eth0`), IPv4 group.
    Name,
    /// By the host's IPv6 address (`fdA:B::N`, [`crate::lan::Lan::enable_ipv6`]), IPv6 group
    /// [`GROUP6`] in brackets.
    Addr6,
    /// By interface name, IPv6 group in the bare form libzmq takes (`eth0;ff18::7067:1:PORT`).
    Name6,
}

impl Iface {
    /// The host's address of the session's family.
    pub fn host_addr(self, host: &Host) -> std::net::IpAddr {
        match self {
            Iface::Addr | Iface::Name => host.addr().into(),
            Iface::Addr6 | Iface::Name6 => host.addr6().into(),
        }
    }
}

/// The endpoint of `host` for the test group: `pgm://IFACE;GROUP:PORT` or `epgm://…`.
pub fn endpoint(host: &Host, encap: Encap, iface: Iface, port: u16) -> String {
    let (ifc, group) = match iface {
        Iface::Addr => (host.addr().to_string(), GROUP.to_string()),
        Iface::Name => (host.ifname().to_owned(), GROUP.to_string()),
        Iface::Addr6 => (host.addr6().to_string(), format!("[{GROUP6}]")),
        Iface::Name6 => (host.ifname().to_owned(), GROUP6.to_string()),
    };
    format!("{}://{ifc};{group}:{port}", encap.scheme())
}

static BUILD: OnceLock<Result<PathBuf, String>> = OnceLock::new();
static SERIAL: Mutex<()> = Mutex::new(());

/// Serialises the tests of one test binary: each end-to-end run wants the machine (2 cores)
/// to itself, or timings and loss repair become a lottery.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The start of a test of our tools: `None` (after a loud SKIPPED notice, see
/// [`require`]) unless the machine has what a LAN test needs ([`Need::LAN`]); otherwise takes the machine ([`serial`]) and
/// builds the tools ([`tools_dir`]). The guard is to be held for the whole test:
///
/// ```no_run
/// let Some(_serial) = netns_tests::tools::begin_test("my_test") else {
///     return;
/// };
/// ```
pub fn begin_test(test: &str) -> Option<MutexGuard<'static, ()>> {
    if !require(test, Need::LAN) {
        return None;
    }
    let guard = serial();
    tools_dir().expect("building pgm-send/pgm-recv");
    Some(guard)
}

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn build_tools() -> Result<PathBuf, String> {
    // The cargo running the tests (runtime), the one that built them, or cargo from PATH.
    let cargo = std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(Into::into))
        .unwrap_or_else(|| "cargo".into());
    let started = now();
    let out = Command::new(&cargo)
        .current_dir(workspace_dir())
        .args(["build", "--release", "-p", "tools", "--bins"])
        .output()
        .map_err(|e| format!("running {} build: {e}", Path::new(&cargo).display()))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build --release -p tools --bins failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let dir = crate::peer::target_dir().join("release");
    for bin in ["pgm-send", "pgm-recv", "pgm-top"] {
        if !dir.join(bin).is_file() {
            return Err(format!(
                "{} missing after building the tools crate",
                dir.join(bin).display()
            ));
        }
    }
    eprintln!(
        "netns-tests: tools built in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(dir)
}

/// The directory holding `pgm-send` and `pgm-recv`, building them on first use.
pub fn tools_dir() -> io::Result<PathBuf> {
    BUILD
        .get_or_init(build_tools)
        .clone()
        .map_err(io::Error::other)
}

/// Path of `pgm-send`.
pub fn pgm_send() -> io::Result<PathBuf> {
    Ok(tools_dir()?.join("pgm-send"))
}

/// Path of `pgm-recv`.
pub fn pgm_recv() -> io::Result<PathBuf> {
    Ok(tools_dir()?.join("pgm-recv"))
}

/// Path of `pgm-top`.
pub fn pgm_top() -> io::Result<PathBuf> {
    Ok(tools_dir()?.join("pgm-top"))
}

/// Options of one `pgm-send` run.
#[derive(Debug, Clone)]
pub struct SendOpts {
    /// Test messages to send (`--count`).
    pub count: u64,
    /// Bytes per message (`--size`).
    pub size: usize,
    /// `--rate` (bits/s, k/M/G suffix), `None` for the tool's default.
    pub rate: Option<String>,
    /// `--window` in sqns.
    pub window: Option<u32>,
    /// `--linger` seconds.
    pub linger_s: f64,
    /// `--nak-profile`.
    pub nak_profile: Option<&'static str>,
    /// `--quiet`.
    pub quiet: bool,
    /// Further raw arguments.
    pub extra: Vec<String>,
}

impl SendOpts {
    /// `count` messages of `size` bytes at `rate`, 2 s linger.
    pub fn new(count: u64, size: usize, rate: &str) -> SendOpts {
        SendOpts {
            count,
            size,
            rate: Some(rate.to_owned()),
            window: None,
            linger_s: 2.0,
            nak_profile: None,
            quiet: false,
            extra: Vec::new(),
        }
    }

    /// The argument vector (endpoint last).
    pub fn args(&self, endpoint: &str) -> Vec<String> {
        let mut a = vec![
            "--count".to_owned(),
            self.count.to_string(),
            "--size".to_owned(),
            self.size.to_string(),
            "--linger".to_owned(),
            self.linger_s.to_string(),
        ];
        if let Some(r) = &self.rate {
            a.extend(["--rate".to_owned(), r.clone()]);
        }
        if let Some(w) = self.window {
            a.extend(["--window".to_owned(), w.to_string()]);
        }
        if let Some(p) = self.nak_profile {
            a.extend(["--nak-profile".to_owned(), p.to_owned()]);
        }
        if self.quiet {
            a.push("--quiet".to_owned());
        }
        a.extend(self.extra.iter().cloned());
        a.push(endpoint.to_owned());
        a
    }
}

/// Options of one `pgm-recv` run (`--verify` unless told otherwise).
#[derive(Debug, Clone)]
pub struct RecvOpts {
    /// `--verify`: check every message (on by default).
    pub verify: bool,
    /// `--count`: exit after this many messages (and fail with fewer).
    pub count: Option<u64>,
    /// `--timeout`: exit after this long without data.
    pub timeout_s: f64,
    /// `--window` (sqns, or a size such as `16777216B`), `None` for the tool's default.
    pub window: Option<String>,
    /// `--quiet`.
    pub quiet: bool,
    /// Further raw arguments.
    pub extra: Vec<String>,
}

impl RecvOpts {
    /// `--verify --count count --timeout timeout_s`.
    pub fn new(count: Option<u64>, timeout_s: f64) -> RecvOpts {
        RecvOpts {
            verify: true,
            count,
            timeout_s,
            window: None,
            quiet: false,
            extra: Vec::new(),
        }
    }

    /// The argument vector (endpoint last).
    pub fn args(&self, endpoint: &str) -> Vec<String> {
        let mut a = Vec::new();
        if self.verify {
            a.push("--verify".to_owned());
        }
        a.extend(["--timeout".to_owned(), self.timeout_s.to_string()]);
        if let Some(c) = self.count {
            a.extend(["--count".to_owned(), c.to_string()]);
        }
        if let Some(w) = &self.window {
            a.extend(["--window".to_owned(), w.clone()]);
        }
        if self.quiet {
            a.push("--quiet".to_owned());
        }
        a.extend(self.extra.iter().cloned());
        a.push(endpoint.to_owned());
        a
    }
}

/// Options of one `udp-perf send` run: numbered datagrams to a group, paced by the clock.
#[derive(Debug, Clone)]
pub struct UdpSendOpts {
    /// `--gso`: each burst is one UDP GSO send.
    pub gso: bool,
    /// `--count`: datagrams.
    pub count: u64,
    /// `--size`: payload bytes.
    pub size: usize,
    /// `--pps`: datagrams per second, 0 for unpaced.
    pub pps: u64,
    /// `--max-secs`: the sender stops after this long in any case.
    pub max_secs: f64,
}

impl UdpSendOpts {
    /// The argument vector (`send` first, endpoint last).
    pub fn args(&self, endpoint: &str) -> Vec<String> {
        let mut a = vec!["send".to_owned()];
        if self.gso {
            a.push("--gso".to_owned());
        }
        a.extend([
            "--count".to_owned(),
            self.count.to_string(),
            "--size".to_owned(),
            self.size.to_string(),
            "--pps".to_owned(),
            self.pps.to_string(),
            "--max-secs".to_owned(),
            self.max_secs.to_string(),
            endpoint.to_owned(),
        ]);
        a
    }
}

/// Options of one `udp-perf recv` run: counts the numbered datagrams of a group.
#[derive(Debug, Clone)]
pub struct UdpRecvOpts {
    /// `--count`: datagrams expected.
    pub count: u64,
    /// `--timeout`: exit after this long without data.
    pub timeout_s: f64,
    /// `--max-secs`: the receiver stops after this long in any case.
    pub max_secs: f64,
    /// `--gro`: read with UDP_GRO.
    pub gro: bool,
}

impl UdpRecvOpts {
    /// The argument vector (`recv` first, endpoint last).
    pub fn args(&self, endpoint: &str) -> Vec<String> {
        [
            "recv".to_owned(),
            "--count".to_owned(),
            self.count.to_string(),
            "--timeout".to_owned(),
            self.timeout_s.to_string(),
            "--max-secs".to_owned(),
            self.max_secs.to_string(),
        ]
        .into_iter()
        .chain(self.gro.then(|| "--gro".to_owned()))
        .chain([endpoint.to_owned()])
        .collect()
    }
}

/// The role of one `pgm-ping` process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PingRole {
    /// `--reflect`: answers every ping; stops after `timeout_s` without one (`--timeout`).
    Reflect {
        /// `--timeout`, s.
        timeout_s: f64,
    },
    /// The pinger: `count` recorded round trips of `size`-byte messages after `warmup`.
    Ping {
        /// `--count`.
        count: u64,
        /// `--warmup`.
        warmup: u64,
        /// `--size`, bytes.
        size: usize,
    },
}

/// Options of one `pgm-ping` run (pings on the first endpoint, answers on the second).
#[derive(Debug, Clone)]
pub struct PingOpts {
    /// `--quiet`.
    pub quiet: bool,
    /// `--udp`: plain UDP multicast sockets instead of PGM.
    pub udp: bool,
    /// `--spin`: busy-poll instead of sleeping in the kernel.
    pub spin: bool,
    /// `--busy-poll` (`off`, `recv`, `send`, `both`), `None` for the tool's default.
    pub busy_poll: Option<String>,
    /// Pinger or reflector.
    pub role: PingRole,
    /// `--max-secs`: the process stops after this long in any case.
    pub max_secs: f64,
}

impl PingOpts {
    /// The argument vector (the two endpoints last).
    pub fn args(&self, first: &str, second: &str) -> Vec<String> {
        let mut a = Vec::new();
        if self.quiet {
            a.push("--quiet".to_owned());
        }
        if self.udp {
            a.push("--udp".to_owned());
        }
        if self.spin {
            a.push("--spin".to_owned());
        }
        if let Some(b) = &self.busy_poll {
            a.extend(["--busy-poll".to_owned(), b.clone()]);
        }
        match self.role {
            PingRole::Reflect { timeout_s } => a.extend([
                "--reflect".to_owned(),
                "--timeout".to_owned(),
                timeout_s.to_string(),
            ]),
            PingRole::Ping {
                count,
                warmup,
                size,
            } => a.extend([
                "--count".to_owned(),
                count.to_string(),
                "--warmup".to_owned(),
                warmup.to_string(),
                "--size".to_owned(),
                size.to_string(),
            ]),
        }
        a.extend([
            "--max-secs".to_owned(),
            self.max_secs.to_string(),
            first.to_owned(),
            second.to_owned(),
        ]);
        a
    }
}

/// Spawns `pgm-send` on `host`.
pub fn spawn_send(
    host: &Host,
    encap: Encap,
    iface: Iface,
    port: u16,
    opts: &SendOpts,
) -> io::Result<Proc> {
    host.spawn(pgm_send()?, &opts.args(&endpoint(host, encap, iface, port)))
}

/// Spawns `pgm-recv --verify` on `host` (does not wait for it to join the group; see
/// [`wait_joined`]).
pub fn spawn_recv(
    host: &Host,
    encap: Encap,
    iface: Iface,
    port: u16,
    opts: &RecvOpts,
) -> io::Result<Proc> {
    host.spawn(pgm_recv()?, &opts.args(&endpoint(host, encap, iface, port)))
}

/// How long a receiver may take to open its socket and join the group.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Spawns `program args` on `host`, a receiver of `encap` on `port`, and waits until it has
/// joined the group ([`wait_joined`], 10 s at most).
pub fn spawn_joined<S: AsRef<OsStr>>(
    host: &Host,
    program: impl AsRef<OsStr>,
    args: &[S],
    encap: Encap,
    port: u16,
) -> io::Result<Proc> {
    let mut p = host.spawn(program, args)?;
    wait_joined(&mut p, host, encap, port, JOIN_TIMEOUT)?;
    Ok(p)
}

/// Spawns `pgm-recv --verify` on `host` and waits until it has joined the group
/// ([`wait_joined`], 10 s at most).
pub fn spawn_recv_joined(
    host: &Host,
    encap: Encap,
    iface: Iface,
    port: u16,
    opts: &RecvOpts,
) -> io::Result<Proc> {
    let args = opts.args(&endpoint(host, encap, iface, port));
    spawn_joined(host, pgm_recv()?, &args, encap, port)
}

/// `GROUP` as it appears in `/proc/net/igmp` (little-endian hex).
fn group_igmp_hex() -> String {
    let o = GROUP.octets();
    format!("{:02X}{:02X}{:02X}{:02X}", o[3], o[2], o[1], o[0])
}

/// `GROUP6` as it appears in `/proc/net/igmp6` (32 hex digits, in order).
fn group_igmp6_hex() -> String {
    GROUP6.octets().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// True when a socket in `host`'s namespace listens for `encap`/`port` and the test group
/// (IPv4 or IPv6) is joined.
fn is_joined(host: &Host, encap: Encap, port: u16) -> bool {
    let joined = |file: &str, hex: &str| host.run("cat", &[file]).is_ok_and(|t| t.contains(hex));
    let listening = |file: &str| {
        // Raw sockets show the protocol (113) where UDP sockets show the port.
        let suffix = match encap {
            Encap::Raw => ":0071".to_owned(),
            Encap::Udp => format!(":{port:04X}"),
        };
        host.run("cat", &[file]).is_ok_and(|t| {
            t.lines().skip(1).any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|local| local.ends_with(&suffix))
            })
        })
    };
    let (v4, v6) = match encap {
        Encap::Raw => ("/proc/net/raw", "/proc/net/raw6"),
        Encap::Udp => ("/proc/net/udp", "/proc/net/udp6"),
    };
    (joined("/proc/net/igmp", &group_igmp_hex()) && listening(v4))
        || (joined("/proc/net/igmp6", &group_igmp6_hex()) && listening(v6))
}

/// Waits until `proc` (a receiver on `host`) has its socket open and the group joined, then a
/// little longer. Fails if the process exits or `timeout` passes.
pub fn wait_joined(
    proc: &mut Proc,
    host: &Host,
    encap: Encap,
    port: u16,
    timeout: Duration,
) -> io::Result<()> {
    let deadline = now() + timeout;
    loop {
        if let Some(st) = proc.try_wait()? {
            return Err(io::Error::other(format!(
                "{} exited ({st}) before joining the group; stderr:\n{}",
                proc.name(),
                proc.stderr_text()
            )));
        }
        if is_joined(host, encap, port) {
            thread::sleep(Duration::from_millis(100));
            return Ok(());
        }
        if now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{} did not join {GROUP} / open its socket within {timeout:?}; stderr:\n{}",
                    proc.name(),
                    proc.stderr_text()
                ),
            ));
        }
        thread::sleep(Duration::from_millis(25));
    }
}

/// The peak resident set (VmHWM, KiB) of a running process, if readable.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// What a process left behind, with how it ended.
#[derive(Debug, Clone)]
pub struct Finished {
    /// `"pgm-recv on h2"` etc.
    pub name: String,
    /// Its output.
    pub out: Output,
    /// Killed by the harness because it overran its deadline.
    pub timed_out: bool,
    /// Largest VmHWM seen while it ran (KiB; 0 if never read).
    pub peak_rss_kib: u64,
    /// The last JSON line of stdout (`Null` if none).
    pub json: Value,
}

impl Finished {
    /// A JSON field as u64 (`None` when missing or not a number).
    pub fn get(&self, key: &str) -> Option<u64> {
        self.json.get(key).and_then(Value::as_u64)
    }

    /// A JSON field as u64, 0 when missing.
    pub fn u(&self, key: &str) -> u64 {
        self.get(key).unwrap_or(0)
    }

    /// The signal that ended the process, other than the harness's own SIGKILL on timeout.
    pub fn crash_signal(&self) -> Option<i32> {
        match self.out.status.signal() {
            Some(libc::SIGKILL) if self.timed_out => None,
            s => s,
        }
    }

    /// True when the process exited by itself (any exit code), not by a signal or timeout.
    pub fn exited_normally(&self) -> bool {
        !self.timed_out && self.out.status.code().is_some()
    }

    /// Exit status.
    pub fn status(&self) -> ExitStatus {
        self.out.status
    }

    /// Problems that show this process did not end well by itself: a crash, the harness's
    /// kill at its deadline, no JSON summary. Each names the process.
    pub fn crash_problems(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(sig) = self.crash_signal() {
            v.push(format!("{} crashed with signal {sig}", self.name));
        }
        if self.timed_out {
            v.push(format!("{} did not finish in time", self.name));
        }
        if self.json.is_null() {
            v.push(format!("{} printed no JSON summary", self.name));
        }
        v
    }

    /// A problem when this sender did not report `count` messages sent or did not exit 0:
    /// `"{label}: sent …, exit …"`.
    pub fn sent_problem(&self, label: &str, count: u64) -> Option<String> {
        (self.get("sent") != Some(count) || !self.out.status.success()).then(|| {
            format!(
                "{label}: sent {:?}, exit {}",
                self.get("sent"),
                self.out.status
            )
        })
    }

    /// Name, status, JSON and the stderr tail, for assertion messages.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} ({}{}): {}",
            self.name,
            self.out.status,
            if self.timed_out {
                ", killed after its deadline"
            } else {
                ""
            },
            self.json
        );
        let tail: Vec<&str> = self.out.stderr.lines().collect();
        if !tail.is_empty() {
            let _ = write!(
                s,
                "\n    stderr: {}",
                tail[tail.len().saturating_sub(12)..].join("\n            ")
            );
        }
        s
    }
}

/// [`Finished::describe`] of each process, indented, one per line: for assertion messages.
pub fn describe_all(procs: &[&Finished]) -> String {
    procs.iter().fold(String::new(), |mut s, f| {
        let _ = writeln!(s, "  {}", f.describe().replace('\n', "\n  "));
        s
    })
}

/// Fails test `name` unless `problems` is empty, listing them and describing `procs`.
pub fn assert_no_problems(name: &str, problems: &[String], procs: &[&Finished]) {
    assert!(
        problems.is_empty(),
        "{name}: {} problem(s):\n  {}\n{}",
        problems.len(),
        problems.join("\n  "),
        describe_all(procs)
    );
}

/// Waits for all `procs` to exit by themselves until `deadline`; the ones still running then
/// are killed (and marked `timed_out`). Samples each process's VmHWM while waiting.
pub fn wait_all(procs: Vec<Proc>, deadline: Instant) -> Vec<Finished> {
    /// A process, its peak RSS so far, and its output once finished (with "timed out").
    type Waiting = (Proc, u64, Option<(Output, bool)>);
    let mut procs: Vec<Waiting> = procs.into_iter().map(|p| (p, 0, None)).collect();
    loop {
        let mut running = false;
        for (p, rss, done) in &mut procs {
            if done.is_some() {
                continue;
            }
            if let Some(pid) = p.id() {
                if let Some(r) = peak_rss_kib(pid) {
                    *rss = (*rss).max(r);
                }
            }
            match p.try_wait() {
                Ok(Some(_)) => *done = Some((finish(p), false)),
                Ok(None) if now() >= deadline => {
                    p.kill();
                    *done = Some((finish(p), true));
                }
                Ok(None) => running = true,
                Err(e) => {
                    eprintln!("netns-tests: waiting for {}: {e}", p.name());
                    p.kill();
                    *done = Some((finish(p), true));
                }
            }
        }
        if !running {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    procs
        .into_iter()
        .map(|(p, rss, done)| {
            let (out, timed_out) = done.unwrap_or_else(|| unreachable!("all finished"));
            let json = out.json().unwrap_or(Value::Null);
            Finished {
                name: p.name().to_owned(),
                out,
                timed_out,
                peak_rss_kib: rss,
                json,
            }
        })
        .collect()
}

/// The output of an exited (or killed) process.
fn finish(p: &mut Proc) -> Output {
    match p.wait_timeout(Duration::from_secs(2)) {
        Ok(o) => o,
        Err(_) => p
            .wait_timeout(Duration::from_secs(2))
            .unwrap_or_else(|e| Output {
                status: ExitStatus::from_raw(libc::SIGKILL),
                stdout: p.stdout_text(),
                stderr: format!("{}\n(harness: {e})", p.stderr_text()),
            }),
    }
}

/// [`wait_all`] for one process.
pub fn wait_one(p: Proc, deadline: Instant) -> Finished {
    wait_all(vec![p], deadline)
        .pop()
        .unwrap_or_else(|| unreachable!("one process in, one out"))
}

/// Stops a lingering process with SIGTERM (then SIGKILL after `grace`) and returns how it ended.
pub fn stop(mut p: Proc, grace: Duration) -> Finished {
    p.signal(libc::SIGTERM);
    wait_one(p, now() + grace)
}

/// Problems with a verified receiver that should have got messages `0..count` completely.
pub fn complete_problems(r: &Finished, count: u64) -> Vec<String> {
    let mut p = Vec::new();
    if r.json.is_null() {
        p.push("no JSON summary".to_owned());
    }
    if let Some(sig) = r.crash_signal() {
        p.push(format!("crashed with signal {sig}"));
    }
    if r.timed_out {
        p.push("did not finish in time".to_owned());
    } else if !r.out.status.success() {
        p.push(format!("exit status {}", r.out.status));
    }
    for (key, want) in [
        ("received", count),
        ("gaps", 0),
        ("corrupt", 0),
        ("unrecoverable", 0),
        ("first_seq", 0),
        ("last_seq", count.saturating_sub(1)),
    ] {
        match r.get(key) {
            Some(v) if v == want => {}
            v => p.push(format!("{key} = {v:?}, want {want}")),
        }
    }
    p
}

/// One sender and its receivers on a LAN (`pgm-send` and verified `pgm-recv`s, or the
/// PUB/SUB equivalents).
#[derive(Debug)]
pub struct ToolsRun {
    /// The sender (exits by itself after `--linger`).
    pub sender: Finished,
    /// The receivers, in the order of the hosts given.
    pub receivers: Vec<Finished>,
    /// From starting the sender until the last receiver exited.
    pub elapsed: Duration,
}

impl ToolsRun {
    /// The sender, then the receivers.
    pub fn all(&self) -> Vec<&Finished> {
        std::iter::once(&self.sender)
            .chain(&self.receivers)
            .collect()
    }

    /// Everything, for assertion messages.
    pub fn describe(&self) -> String {
        describe_all(&self.all())
    }
}

/// The end of a run whose `sender` was just started: waits for the `receivers` until
/// `deadline`, then for the sender (which lingers to answer NAKs) until `deadline` but at
/// least `grace` longer. `elapsed` counts from now until the receivers finished.
pub fn finish_run(
    sender: Proc,
    receivers: Vec<Proc>,
    deadline: Instant,
    grace: Duration,
) -> ToolsRun {
    let sent_at = now();
    let receivers = wait_all(receivers, deadline);
    let elapsed = sent_at.elapsed();
    let sender = wait_one(sender, deadline.max(now() + grace));
    ToolsRun {
        sender,
        receivers,
        elapsed,
    }
}

/// A run of our tools: `pgm-recv --verify` on each host of `rx`, then `pgm-send` on `tx` once
/// they joined; waits for the receivers, then for the sender (which lingers `opts.linger_s`).
/// Everything is killed at `limit` after the start.
#[expect(
    clippy::too_many_arguments,
    reason = "each part of a run is needed; the suites that call it keep this signature"
)]
pub fn run_tools(
    lan: &Lan,
    tx: usize,
    rx: &[usize],
    encap: Encap,
    port: u16,
    send: &SendOpts,
    recv: &RecvOpts,
    limit: Duration,
) -> io::Result<ToolsRun> {
    run_tools_with(lan, tx, rx, (encap, Iface::Addr), port, send, recv, limit)
}

/// [`run_tools`] with endpoints naming the interface as `iface` says (and so of its family).
#[expect(
    clippy::too_many_arguments,
    reason = "run_tools with the interface form; the same parts"
)]
pub fn run_tools_with(
    lan: &Lan,
    tx: usize,
    rx: &[usize],
    (encap, iface): (Encap, Iface),
    port: u16,
    send: &SendOpts,
    recv: &RecvOpts,
    limit: Duration,
) -> io::Result<ToolsRun> {
    let start = now();
    let mut receivers = Vec::new();
    for &h in rx {
        receivers.push(spawn_recv_joined(lan.host(h), encap, iface, port, recv)?);
    }
    let sender = spawn_send(lan.host(tx), encap, iface, port, send)?;
    Ok(finish_run(
        sender,
        receivers,
        start + limit,
        Duration::from_secs(1),
    ))
}

/// A unique path for a capture of this run: `<target>/netns-captures/NAME-PID.pcap`.
pub fn capture_path(name: &str) -> io::Result<PathBuf> {
    let dir = crate::peer::target_dir().join("netns-captures");
    std::fs::create_dir_all(&dir)?;
    Ok(dir.join(format!("{name}-{}.pcap", std::process::id())))
}

/// Starts a bridge capture (pcap `filter`, at [`capture_path`]) for test `name` when tshark is
/// installed to check it; otherwise says so and returns `None`.
pub fn capture_for_tshark(lan: &Lan, name: &str, filter: &str) -> Option<Capture> {
    if !require(&format!("{name}'s capture checks"), &[Need::Tshark]) {
        return None;
    }
    let path = capture_path(name).expect("capture dir");
    Some(lan.capture(&path, filter).expect("starting tcpdump"))
}
