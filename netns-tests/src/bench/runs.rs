//! The workloads of the benchmark, each a bounded run of real processes on the LAN: host 1
//! sends, hosts 2 and 3 receive.

use std::cell::Cell;
use std::io;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::search::Probe;
use super::{Config, LatencyResult, LossRun, SlowResult, System};
use crate::lan::{Host, Lan, GROUP};
use crate::now;
use crate::peer::{openpgm_peer, PeerArgs};
use crate::proc::Proc;
use crate::tools::{
    complete_problems, peak_rss_kib, stop, tools_dir, wait_all, wait_joined, Encap, Finished,
};
use crate::zmq::{
    expected_topics, topic_problems, topics, zmq_python, PubOpts, SubOpts, ZmqPubOpts, ZmqSubOpts,
};

/// The sending host.
pub const TX: usize = 0;
/// The receiving hosts.
pub const RX: [usize; 2] = [1, 2];
/// The second group (the return direction of the ping-pong).
pub const GROUP2: std::net::Ipv4Addr = std::net::Ipv4Addr::new(239, 192, 1, 2);

/// IPv4 (20) + PGM header (16) + ODATA header (8): what our rate limiter and OpenPGM's count
/// on top of each payload.
pub const RAW_OVERHEAD: usize = 44;
/// [`RAW_OVERHEAD`] + UDP (8).
pub const UDP_OVERHEAD: usize = 52;

/// NAK back-off, repeat and RDATA intervals of every OpenPGM run, ms (libzmq's timing).
pub const OPENPGM_NAK_IVLS_MS: (u32, u32, u32) = (50, 200, 200);

/// Paths of everything the benchmark runs.
#[derive(Debug, Clone)]
pub struct Bins {
    /// Our tools' directory (`pgm-send`, `pgm-recv`, `pgm-pub`, `pgm-sub`, `pgm-ping`,
    /// `udp-perf`).
    pub tools: PathBuf,
    /// The OpenPGM peer, when it could be built.
    pub openpgm: Result<PathBuf, String>,
    /// Python with pyzmq (libzmq with PGM), when found.
    pub python: Result<PathBuf, String>,
}

impl Bins {
    /// Builds / finds everything.
    pub fn locate() -> io::Result<Bins> {
        let tools = tools_dir()?;
        for b in ["udp-perf", "pgm-ping", "pgm-pub", "pgm-sub"] {
            if !tools.join(b).is_file() {
                return Err(io::Error::other(format!(
                    "{} missing after building the tools crate",
                    tools.join(b).display()
                )));
            }
        }
        Ok(Bins {
            tools,
            openpgm: openpgm_peer().map_err(|e| e.to_string()),
            python: zmq_python().map_err(|e| e.to_string()),
        })
    }

    fn tool(&self, name: &str) -> PathBuf {
        self.tools.join(name)
    }
}

/// Runs workloads on one LAN.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The LAN (3 hosts).
    pub lan: &'a Lan,
    /// The configuration.
    pub cfg: &'a Config,
    /// Binaries.
    pub bins: Bins,
    port: Cell<u16>,
}

#[allow(clippy::needless_pass_by_value)] // call sites read better without `&`
fn s<T: ToString>(v: T) -> String {
    v.to_string()
}

/// A non-negative float as an integer (rates, counts): truncated, 0 for NaN or negatives.
#[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
fn u(x: f64) -> u64 {
    if x.is_finite() && x > 0.0 {
        x as u64
    } else {
        0
    }
}

fn f64_of(j: &Value, key: &str) -> f64 {
    j.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

fn u64_of(j: &Value, key: &str) -> u64 {
    j.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// The fraction of `count` a receiver got, duplicates excluded.
fn fraction(r: &Finished, count: u64) -> f64 {
    if count == 0 {
        return 1.0;
    }
    let got = u64_of(&r.json, "received").saturating_sub(u64_of(&r.json, "duplicates"));
    (got as f64 / count as f64).min(1.0)
}

fn first_problem(name: &str, problems: &[String]) -> Option<String> {
    problems.first().map(|p| format!("{name}: {p}"))
}

/// Waits for `marker` on stderr (READY) and, for sockets that join, for the group join.
fn ready(p: &mut Proc, host: &Host, encap: Option<Encap>, port: u16) -> io::Result<()> {
    p.wait_for_stderr("READY", Duration::from_secs(15))?;
    if let Some(e) = encap {
        wait_joined(p, host, e, port, Duration::from_secs(10))?;
    }
    Ok(())
}

impl<'a> Ctx<'a> {
    /// A context for `lan` (≥ 3 hosts).
    pub fn new(lan: &'a Lan, cfg: &'a Config, bins: Bins) -> Ctx<'a> {
        Ctx {
            lan,
            cfg,
            bins,
            port: Cell::new(7600),
        }
    }

    /// A fresh port (and the next one, free too) for each run, so no session of an earlier
    /// run can interfere.
    fn next_port(&self) -> u16 {
        let p = self.port.get();
        self.port
            .set(if p > 60_000 { 7600 } else { p.wrapping_add(2) });
        p
    }

    fn host(&self, i: usize) -> &Host {
        self.lan.host(i)
    }

    fn ep(&self, scheme: &str, host: usize, group: std::net::Ipv4Addr, port: u16) -> String {
        format!("{scheme}://{};{group}:{port}", self.host(host).addr())
    }

    /// Messages in a probe at `rate`.
    pub fn probe_count(&self, rate: f64) -> u64 {
        u(rate * self.cfg.probe_secs).clamp(self.cfg.min_count, self.cfg.max_count)
    }

    /// One probe of `sys` with `size`-byte messages: `count` messages at `rate` msgs/s
    /// (`None`: unlimited), to both receivers.
    pub fn probe(&self, sys: System, size: usize, rate: Option<f64>, count: u64) -> Probe {
        self.probe_with(sys, size, rate, count, false)
    }

    /// [`Ctx::probe`] with the timing of the loss runs (longer idle timeouts and linger,
    /// OpenPGM's big window) when `lossy`; the caller sets the loss.
    pub fn probe_with(
        &self,
        sys: System,
        size: usize,
        rate: Option<f64>,
        count: u64,
        lossy: bool,
    ) -> Probe {
        let t0 = now();
        let r = if super::interrupted() {
            Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"))
        } else {
            self.run(sys, size, rate, count, lossy.then_some(()))
        };
        let mut p = match r {
            Ok(run) => run.probe,
            Err(e) => Probe {
                note: format!("harness error: {e}"),
                ..Probe::default()
            },
        };
        p.requested = rate;
        p.count = count;
        eprintln!(
            "[bench] {}{:<10} {size:>5} B  ask {:>9}  offered {:>9.0}  delivered {:>9.0}  {:>4}  \
             {count} msgs in {:.1} s {}",
            if lossy { "lossy " } else { "" },
            sys.label(),
            rate.map_or("unlimited".to_owned(), |r| format!("{r:.0}")),
            p.offered,
            p.delivered,
            if p.ok { "ok" } else { "FAIL" },
            t0.elapsed().as_secs_f64(),
            p.note
        );
        p
    }

    /// Sets random ingress loss on the receivers (`permille[i]` on receiver `i`).
    pub fn set_loss(&self, permille: [u32; 2]) -> io::Result<()> {
        for (i, &h) in RX.iter().enumerate() {
            self.lan.set_loss(h, permille[i], 0)?;
        }
        Ok(())
    }

    /// One run under loss: `loss_permille[i]` random ingress loss on receiver `i`.
    pub fn loss_run(
        &self,
        sys: System,
        size: usize,
        rate: f64,
        count: u64,
        loss_permille: [u32; 2],
    ) -> io::Result<LossRun> {
        for (i, &h) in RX.iter().enumerate() {
            self.lan.set_loss(h, loss_permille[i], 0)?;
        }
        let r = self.run(sys, size, Some(rate), count, Some(()));
        // Read the drop counters before the rules (and their counters) are replaced.
        let dropped: Vec<u64> = RX
            .iter()
            .map(|&h| self.lan.dropped(h).map_or(0, |d| d.0))
            .collect();
        for &h in &RX {
            self.lan.set_loss(h, 0, 0)?;
        }
        let run = r?;
        let lr = LossRun {
            delivered_frac: run.fractions.iter().copied().fold(1.0, f64::min),
            tail_ms: run.tail_ns.map(|t| t as f64 / 1e6),
            send_s: run.send_s,
            ok: run.probe.ok,
            note: run.probe.note.clone(),
            dropped,
        };
        eprintln!(
            "[bench] loss {:<10} {size:>5} B at {rate:.0}/s: delivered {:.4} %, tail {} ms, \
             send {:.2} s {}",
            sys.label(),
            lr.delivered_frac * 100.0,
            lr.tail_ms.map_or("?".to_owned(), |t| format!("{t:.1}")),
            lr.send_s,
            lr.note
        );
        Ok(lr)
    }

    #[allow(clippy::too_many_lines)]
    fn run(
        &self,
        sys: System,
        size: usize,
        rate: Option<f64>,
        count: u64,
        lossy: Option<()>,
    ) -> io::Result<Run> {
        let port = self.next_port();
        let cfg = self.cfg;
        let send_s = rate.map_or(count as f64 / 100_000.0, |r| count as f64 / r.max(1.0));
        let lossy = lossy.is_some();
        // Receivers give up after this long without data; OpenPGM repairs take seconds.
        let idle = match (sys, lossy) {
            (System::OpenPgm, true) => cfg.slow_repair_idle_s,
            (System::OpenPgm | System::Zmq, false) => cfg.idle_s * 2.0,
            (_, true) => cfg.idle_s * 3.0,
            _ => cfg.idle_s,
        };
        let deadline_s = 10.0 + 3.0 * send_s + idle * 2.0;
        let mut rx = Vec::new();
        let start = now();
        let expected = expected_topics(&topics(1), count, &[""]);
        for &h in &RX {
            let host = self.host(h);
            let mut p = match sys {
                System::Udp | System::UdpGso => {
                    let ep = self.ep("udp", h, GROUP, port);
                    host.spawn(
                        self.bins.tool("udp-perf"),
                        &[
                            "recv".to_owned(),
                            "--count".to_owned(),
                            s(count),
                            "--timeout".to_owned(),
                            s(idle),
                            "--max-secs".to_owned(),
                            s(deadline_s),
                            ep,
                        ],
                    )?
                }
                System::OursRaw | System::OursEpgm => {
                    let scheme = if sys == System::OursRaw {
                        "pgm"
                    } else {
                        "epgm"
                    };
                    host.spawn(
                        self.bins.tool("pgm-recv"),
                        &[
                            "--verify".to_owned(),
                            "--quiet".to_owned(),
                            "--count".to_owned(),
                            s(count),
                            "--timeout".to_owned(),
                            s(idle),
                            self.ep(scheme, h, GROUP, port),
                        ],
                    )?
                }
                System::PubSub => {
                    let mut o = SubOpts::new(count, &[""]);
                    o.timeout_s = idle;
                    o.extra.push("--quiet".to_owned());
                    host.spawn(
                        self.bins.tool("pgm-sub"),
                        &o.args(&self.ep("epgm", h, GROUP, port)),
                    )?
                }
                System::OpenPgm => {
                    let bin = self.bins.openpgm.clone().map_err(io::Error::other)?;
                    let a = self.openpgm_args(h, port, size, count, 0, idle, lossy);
                    host.spawn(bin, &a.to_args(false))?
                }
                System::Zmq => {
                    let py = self.bins.python.clone().map_err(io::Error::other)?;
                    let mut o = ZmqSubOpts::new(count, &[""]);
                    o.timeout_s = idle;
                    o.rate_kbit = zmq_kbit(rate, size);
                    host.spawn(py, &o.args(&self.ep("epgm", h, GROUP, port)))?
                }
            };
            let wait = match sys {
                System::Udp | System::UdpGso | System::OpenPgm | System::Zmq => {
                    let encap = if sys == System::OpenPgm {
                        Encap::Raw
                    } else {
                        Encap::Udp
                    };
                    ready(&mut p, host, Some(encap), port)
                }
                System::OursRaw => wait_joined(&mut p, host, Encap::Raw, port, secs(10.0)),
                System::OursEpgm | System::PubSub => {
                    wait_joined(&mut p, host, Encap::Udp, port, secs(10.0))
                }
            };
            wait?;
            rx.push(p);
        }
        let tx = self.host(TX);
        let linger = if lossy {
            cfg.loss_linger_s
        } else {
            cfg.linger_s
        };
        let sender = match sys {
            System::Udp | System::UdpGso => {
                let mut a = vec![
                    "send".to_owned(),
                    "--count".to_owned(),
                    s(count),
                    "--size".to_owned(),
                    s(size),
                    "--pps".to_owned(),
                    s(rate.map_or(0, |r| u(r.round()))),
                    "--max-secs".to_owned(),
                    s(deadline_s),
                    self.ep("udp", TX, GROUP, port),
                ];
                if sys == System::UdpGso {
                    a.insert(1, "--gso".to_owned());
                }
                tx.spawn(self.bins.tool("udp-perf"), &a)?
            }
            System::OursRaw | System::OursEpgm => {
                let (scheme, ovh) = if sys == System::OursRaw {
                    ("pgm", RAW_OVERHEAD)
                } else {
                    ("epgm", UDP_OVERHEAD)
                };
                tx.spawn(
                    self.bins.tool("pgm-send"),
                    &[
                        "--quiet".to_owned(),
                        "--count".to_owned(),
                        s(count),
                        "--size".to_owned(),
                        s(size),
                        "--rate".to_owned(),
                        s(rate.map_or(0, |r| u(r * (size + ovh) as f64 * 8.0))),
                        "--linger".to_owned(),
                        s(linger),
                        self.ep(scheme, TX, GROUP, port),
                    ],
                )?
            }
            System::PubSub => {
                let bits = rate.map_or(0, |r| u(r * (size + 8) as f64 * 8.0 * 1.05));
                let mut o = PubOpts::new(count, &topics(1), &s(size), &s(bits));
                o.linger_s = linger;
                o.extra.push("--quiet".to_owned());
                tx.spawn(
                    self.bins.tool("pgm-pub"),
                    &o.args(&self.ep("epgm", TX, GROUP, port)),
                )?
            }
            System::OpenPgm => {
                let bin = self.bins.openpgm.clone().map_err(io::Error::other)?;
                let bytes = rate.map_or(0, |r| u(r * (size + RAW_OVERHEAD) as f64));
                let a = self.openpgm_args(TX, port, size, count, bytes, deadline_s, lossy);
                tx.spawn(bin, &a.to_args(true))?
            }
            System::Zmq => {
                let py = self.bins.python.clone().map_err(io::Error::other)?;
                let mut o = ZmqPubOpts::new(count, &topics(1), (size, size));
                o.rate_kbit = zmq_kbit(rate, size);
                o.linger_s = deadline_s;
                tx.spawn(py, &o.args(&self.ep("epgm", TX, GROUP, port)))?
            }
        };
        let sampler = RssSampler::start(sender.id());
        let deadline = start + secs(deadline_s);
        let receivers = wait_all(rx, deadline);
        let sender = match sys {
            // These stay open until told: SIGTERM once the receivers are done.
            System::OpenPgm | System::Zmq => {
                if sys == System::OpenPgm && !lossy {
                    // Let a last NAK be answered before the FIN.
                    thread::sleep(Duration::from_millis(50));
                }
                stop(sender, secs(5.0))
            }
            _ => wait_all(vec![sender], deadline.max(now() + secs(linger + 3.0)))
                .pop()
                .ok_or_else(|| io::Error::other("no sender"))?,
        };
        let sender_peak = sampler.finish();
        Ok(Self::evaluate(
            sys,
            count,
            &sender,
            &receivers,
            sender_peak,
            &expected,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn openpgm_args(
        &self,
        host: usize,
        port: u16,
        size: usize,
        count: u64,
        rate_bytes: u64,
        timeout_s: f64,
        lossy: bool,
    ) -> PeerArgs {
        let mut a = PeerArgs::new(format!("{};{GROUP}", self.host(host).addr()));
        a.port = port;
        a.count = count;
        a.size = size;
        a.rate = rate_bytes;
        a.timeout_s = timeout_s;
        // Lingers until the harness sends SIGTERM.
        a.linger_s = timeout_s.max(30.0);
        a.window_sqns = if lossy {
            // A big window: everything stays repairable.
            u32::try_from(count + 1000).unwrap_or(u32::MAX).max(10_000)
        } else {
            65_536
        };
        a.nak_ivls_ms = OPENPGM_NAK_IVLS_MS;
        a.extra.push("--quiet".to_owned());
        a
    }

    fn evaluate(
        sys: System,
        count: u64,
        sender: &Finished,
        receivers: &[Finished],
        sender_peak: u64,
        expected: &std::collections::BTreeMap<String, u64>,
    ) -> Run {
        let mut note = None;
        if sys != System::Zmq && sender.json.is_null() {
            note = Some(format!("{}: no JSON summary", sender.name));
        }
        let mut fractions = Vec::new();
        for r in receivers {
            fractions.push(fraction(r, count));
            let problems = match sys {
                System::Udp | System::UdpGso => {
                    let mut p = Vec::new();
                    if u64_of(&r.json, "received") < count {
                        p.push(format!(
                            "received {} of {count}",
                            u64_of(&r.json, "received")
                        ));
                    }
                    p
                }
                System::PubSub | System::Zmq => topic_problems(r, expected),
                _ => complete_problems(r, count),
            };
            if note.is_none() {
                note = first_problem(&r.name, &problems);
            }
        }
        let frac = fractions.iter().copied().fold(1.0, f64::min);
        let offered = match sys {
            System::Udp | System::UdpGso => f64_of(&sender.json, "pps"),
            // libzmq's publisher does not time its sends: the slower subscriber's rate.
            System::Zmq => receivers
                .iter()
                .map(|r| f64_of(&r.json, "msgs_per_s"))
                .fold(f64::INFINITY, f64::min),
            _ => f64_of(&sender.json, "msgs_per_s"),
        };
        let offered = if offered.is_finite() { offered } else { 0.0 };
        let send_s = f64_of(&sender.json, "elapsed_s");
        let last_rx = receivers
            .iter()
            .map(|r| u64_of(&r.json, "last_mono_ns"))
            .max()
            .unwrap_or(0);
        let last_tx = u64_of(&sender.json, "last_mono_ns");
        let tail_ns = if last_rx > 0 && last_tx > 0 {
            Some(last_rx.saturating_sub(last_tx))
        } else if sys == System::OpenPgm {
            // The peer prints no timestamps: (first to last delivery) − (first to last send),
            // which assumes the first message arrived at once.
            let rx = receivers
                .iter()
                .map(|r| f64_of(&r.json, "elapsed_s"))
                .fold(0.0, f64::max);
            Some(u((rx - send_s) * 1e9))
        } else {
            None
        };
        Run {
            probe: Probe {
                requested: None,
                offered,
                delivered: offered * frac,
                count,
                ok: note.is_none(),
                note: note.unwrap_or_default(),
                sender_rss_kib: rss_of(sender).max(sender_peak),
                receiver_rss_kib: receivers.iter().map(rss_of).max().unwrap_or(0),
            },
            fractions,
            tail_ns,
            send_s,
        }
    }

    /// A ping-pong of `count` round trips between host 1 (pinger) and host 2 (reflector).
    /// `busy_poll`: pgm-ping's `--busy-poll` (which PGM sockets' IO threads spin), `None` for
    /// its default.
    pub fn ping(
        &self,
        udp: bool,
        spin: bool,
        busy_poll: Option<&str>,
        count: u64,
    ) -> io::Result<LatencyResult> {
        let port = self.next_port();
        let scheme = if udp { "udp" } else { "pgm" };
        let mut flags: Vec<String> = vec!["--quiet".to_owned()];
        if udp {
            flags.push("--udp".to_owned());
        }
        if spin {
            flags.push("--spin".to_owned());
        }
        if let Some(b) = busy_poll {
            flags.extend(["--busy-poll".to_owned(), b.to_owned()]);
        }
        let limit = self.cfg.ping_max_secs;
        let mut refl_args = flags.clone();
        refl_args.extend([
            "--reflect".to_owned(),
            "--timeout".to_owned(),
            "5".to_owned(),
            "--max-secs".to_owned(),
            s(limit),
            self.ep(scheme, RX[0], GROUP, port),
            self.ep(scheme, RX[0], GROUP2, port + 1),
        ]);
        let mut refl = self
            .host(RX[0])
            .spawn(self.bins.tool("pgm-ping"), &refl_args)?;
        refl.wait_for_stderr("READY", secs(15.0))?;
        let mut ping_args = flags;
        ping_args.extend([
            "--count".to_owned(),
            s(count),
            "--warmup".to_owned(),
            s(self.cfg.ping_warmup),
            "--size".to_owned(),
            "64".to_owned(),
            "--max-secs".to_owned(),
            s(limit),
            self.ep(scheme, TX, GROUP, port),
            self.ep(scheme, TX, GROUP2, port + 1),
        ]);
        let pinger = self
            .host(TX)
            .spawn(self.bins.tool("pgm-ping"), &ping_args)?;
        let deadline = now() + secs(limit + 10.0);
        let p = wait_all(vec![pinger], deadline)
            .pop()
            .ok_or_else(|| io::Error::other("no pinger"))?;
        let r = wait_all(vec![refl], now() + secs(8.0))
            .pop()
            .ok_or_else(|| io::Error::other("no reflector"))?;
        if p.json.is_null() {
            return Err(io::Error::other(format!(
                "pgm-ping failed:\n{}\n{}",
                p.describe(),
                r.describe()
            )));
        }
        let sys = if udp { System::Udp } else { System::OursRaw };
        let res = latency_of(&p.json, sys, spin);
        eprintln!(
            "[bench] ping {:<4} {:<8} busy-poll {:<4} p50 {} µs p99 {} µs max {} µs ({} lost)",
            if udp { "udp" } else { "pgm" },
            if spin { "spin" } else { "blocking" },
            res.busy_poll,
            res.p50,
            res.p99,
            res.max,
            res.lost
        );
        Ok(res)
    }

    /// The same ping-pong with OpenPGM: `openpgm_peer ping` on host 1, `openpgm_peer reflect`
    /// on host 2, raw PGM, two sessions (one each way), 64 B; blocking (ppoll on its
    /// descriptors with OpenPGM's timer) or `spin` (`pgm_recvfrom(MSG_DONTWAIT)` in a loop).
    /// OpenPGM's NAK timing as in the other OpenPGM runs.
    pub fn openpgm_ping(&self, spin: bool, count: u64) -> io::Result<LatencyResult> {
        let bin = self.bins.openpgm.clone().map_err(io::Error::other)?;
        let port = self.next_port();
        let limit = self.cfg.ping_max_secs;
        // Both roles: --network/--port carry the pings, --network2/--port2 the answers.
        let args = |role: &str, host: usize| -> Vec<String> {
            let addr = self.host(host).addr();
            let (bo, rpt, rdata) = OPENPGM_NAK_IVLS_MS;
            let mut a = vec![
                role.to_owned(),
                "--network".to_owned(),
                format!("{addr};{GROUP}"),
                "--port".to_owned(),
                s(port),
                "--network2".to_owned(),
                format!("{addr};{GROUP2}"),
                "--port2".to_owned(),
                s(port + 1),
                "--max-secs".to_owned(),
                s(limit),
                "--nak-ivls".to_owned(),
                format!("{bo},{rpt},{rdata}"),
                "--quiet".to_owned(),
            ];
            if spin {
                a.push("--spin".to_owned());
            }
            a
        };
        let mut refl_args = args("reflect", RX[0]);
        refl_args.extend(["--timeout".to_owned(), "5".to_owned()]);
        let mut refl = self.host(RX[0]).spawn(&bin, &refl_args)?;
        // READY comes after both its sockets joined and connected.
        refl.wait_for_stderr("READY", secs(15.0))?;
        let mut ping_args = args("ping", TX);
        ping_args.extend([
            "--count".to_owned(),
            s(count),
            "--warmup".to_owned(),
            s(self.cfg.ping_warmup),
            "--size".to_owned(),
            "64".to_owned(),
        ]);
        let pinger = self.host(TX).spawn(&bin, &ping_args)?;
        let p = wait_all(vec![pinger], now() + secs(limit + 10.0))
            .pop()
            .ok_or_else(|| io::Error::other("no pinger"))?;
        let r = wait_all(vec![refl], now() + secs(8.0))
            .pop()
            .ok_or_else(|| io::Error::other("no reflector"))?;
        if p.json.is_null() || !p.out.status.success() {
            return Err(io::Error::other(format!(
                "openpgm_peer ping failed:\n{}\n{}",
                p.describe(),
                r.describe()
            )));
        }
        let res = latency_of(&p.json, System::OpenPgm, spin);
        eprintln!(
            "[bench] ping openpgm {:<8} p50 {} µs p99 {} µs max {} µs ({} lost)",
            if spin { "spin" } else { "blocking" },
            res.p50,
            res.p99,
            res.max,
            res.lost
        );
        Ok(res)
    }

    /// The slow receiver: host 2 runs `pgm-recv` printing to a pipe nobody reads (its
    /// application thread blocks on the first full pipe, the IO thread keeps receiving into
    /// the socket's receive queue), host 3 a normal verifying receiver; the sender offers
    /// `count` × 1400 B at `rate`. Host 2's VmHWM is sampled throughout.
    #[allow(clippy::too_many_lines)]
    pub fn slow_receiver(&self, count: u64, rate: f64) -> io::Result<SlowResult> {
        const SIZE: usize = 1400;
        let port = self.next_port();
        let window = self.cfg.slow_window_bytes;
        let send_s = count as f64 / rate;
        let h_slow = self.host(RX[0]);
        let mut cmd = h_slow.command(
            self.bins.tool("pgm-recv"),
            &[
                "--quiet".to_owned(),
                "--timeout".to_owned(),
                s(send_s + 20.0),
                "--window".to_owned(),
                format!("{window}B"),
                self.ep("pgm", RX[0], GROUP, port),
            ],
        );
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let slow = KillOnDrop(cmd.spawn()?);
        let pid = slow.0.id();
        // Wait for the join by polling (no READY line on this path).
        let t0 = now();
        while !is_joined_raw(h_slow) {
            if t0.elapsed() > secs(10.0) {
                return Err(io::Error::other("slow receiver did not join"));
            }
            thread::sleep(Duration::from_millis(25));
        }
        thread::sleep(Duration::from_millis(100));
        let mut fast = self.host(RX[1]).spawn(
            self.bins.tool("pgm-recv"),
            &[
                "--verify".to_owned(),
                "--quiet".to_owned(),
                "--count".to_owned(),
                s(count),
                "--timeout".to_owned(),
                s(self.cfg.idle_s * 3.0),
                self.ep("pgm", RX[1], GROUP, port),
            ],
        )?;
        wait_joined(&mut fast, self.host(RX[1]), Encap::Raw, port, secs(10.0))?;
        let bits = u(rate * (SIZE + RAW_OVERHEAD) as f64 * 8.0);
        let sender = self.host(TX).spawn(
            self.bins.tool("pgm-send"),
            &[
                "--quiet".to_owned(),
                "--count".to_owned(),
                s(count),
                "--size".to_owned(),
                s(SIZE),
                "--rate".to_owned(),
                s(bits),
                "--linger".to_owned(),
                s(self.cfg.linger_s.max(1.0)),
                self.ep("pgm", TX, GROUP, port),
            ],
        )?;
        let start = now();
        let mut peak = 0;
        let mut samples = Vec::new();
        // Sample until the sender is done, plus a second for the queue to settle.
        let mut procs = vec![sender, fast];
        let mut done_at: Option<Instant> = None;
        loop {
            if let Some(r) = peak_rss_kib(pid) {
                peak = peak.max(r);
            }
            if samples.len() < 10_000 {
                samples.push(peak);
            }
            let all_done = procs
                .iter_mut()
                .all(|p| p.try_wait().ok().flatten().is_some());
            if all_done && done_at.is_none() {
                done_at = Some(now());
            }
            if done_at.is_some_and(|d| d.elapsed() > secs(1.0))
                || start.elapsed() > secs(send_s * 3.0 + 20.0)
            {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let fins = wait_all(std::mem::take(&mut procs), now() + secs(5.0));
        drop(slow);
        let fast_ok = fins
            .get(1)
            .is_some_and(|f| complete_problems(f, count).is_empty());
        let res = SlowResult {
            count,
            size: SIZE,
            rate: fins.first().map_or(0.0, |f| f64_of(&f.json, "msgs_per_s")),
            window_bytes: window,
            recv_queue_bytes: pgm::socket::SocketOptions::default().recv_queue,
            peak_kib: peak,
            fast_ok,
            fast_rss_kib: fins.get(1).map_or(0, |f| f.peak_rss_kib),
        };
        eprintln!(
            "[bench] slow receiver: peak RSS {} KiB (window {} B, receive queue {} B), fast \
             receiver complete: {fast_ok}",
            res.peak_kib, res.window_bytes, res.recv_queue_bytes
        );
        Ok(res)
    }
}

/// A latency run from the pinger's JSON line (`pgm-ping` and `openpgm_peer ping` print the
/// same keys).
fn latency_of(j: &Value, system: System, spin: bool) -> LatencyResult {
    LatencyResult {
        system,
        spin,
        busy_poll: j
            .get("busy_poll")
            .and_then(Value::as_str)
            .unwrap_or("off")
            .to_owned(),
        count: u64_of(j, "received"),
        lost: u64_of(j, "lost"),
        p50: f64_of(j, "p50_us"),
        p90: f64_of(j, "p90_us"),
        p99: f64_of(j, "p99_us"),
        p999: f64_of(j, "p999_us"),
        max: f64_of(j, "max_us"),
        min: f64_of(j, "min_us"),
    }
}

/// Peak RSS of a finished process: the harness's VmHWM samples, or what it reported itself
/// (`max_rss_kb`, getrusage).
fn rss_of(f: &Finished) -> u64 {
    f.peak_rss_kib.max(u64_of(&f.json, "max_rss_kb"))
}

/// Samples a process's VmHWM every 10 ms on a thread until [`RssSampler::finish`].
struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<u64>>,
}

impl RssSampler {
    fn start(pid: Option<u32>) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = pid.map(|pid| {
            thread::spawn(move || {
                let mut peak = 0;
                while !flag.load(Ordering::Relaxed) {
                    match peak_rss_kib(pid) {
                        Some(r) => peak = peak.max(r),
                        None => break,
                    }
                    thread::sleep(Duration::from_millis(10));
                }
                peak
            })
        });
        RssSampler { stop, handle }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().and_then(|h| h.join().ok()).unwrap_or(0)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn is_joined_raw(h: &Host) -> bool {
    let igmp = h.run("cat", &["/proc/net/igmp"]).unwrap_or_default();
    let o = GROUP.octets();
    let hex = format!("{:02X}{:02X}{:02X}{:02X}", o[3], o[2], o[1], o[0]);
    igmp.contains(&hex)
        && h.run("cat", &["/proc/net/raw"]).is_ok_and(|t| {
            t.lines().skip(1).any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|a| a.ends_with(":0071"))
            })
        })
}

/// A child that is killed and reaped when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// ZMQ_RATE (kbit/s) for `rate` msgs/s of `size` bytes, with room for framing and headers;
/// 1 Gbit/s when unlimited.
fn zmq_kbit(rate: Option<f64>, size: usize) -> u64 {
    rate.map_or(1_000_000, |r| {
        u(r * (size + 8) as f64 * 8.0 * 1.1 / 1000.0).max(1000)
    })
}

/// What one run left: the probe summary, each receiver's delivered fraction, the repair tail
/// and the sender's first-to-last send time.
#[derive(Debug, Clone)]
struct Run {
    probe: Probe,
    fractions: Vec<f64>,
    tail_ns: Option<u64>,
    send_s: f64,
}
