//! The workloads of the benchmark, each a bounded run of real processes on the LAN: host 1
//! sends, hosts 2 and 3 receive. Which processes a system runs, and with which arguments,
//! is its launcher's business ([`super::launch`]).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::launch::{
    u, Cmd, Launcher, Load, OpenPgm, PgmPing, PgmTools, PubSubTools, Readiness, SenderEnd, UdpPerf,
    Zmq,
};
pub use super::launch::{GROUP2, OPENPGM_NAK_IVLS_MS, RAW_OVERHEAD, UDP_OVERHEAD};
use super::search::Probe;
use super::{Config, LatencyResult, LossRun, SlowResult, System};
use crate::lan::{Host, Lan, GROUP};
use crate::now;
use crate::peer::{openpgm_peer, PeerPingRole};
use crate::proc::Proc;
use crate::tools::{
    complete_problems, peak_rss_kib, stop, tools_dir, wait_all, wait_joined, wait_one, Encap,
    Finished, Iface, PingRole,
};
use crate::zmq::{expected_topics, topic_problems, topics, zmq_python};

/// The sending host.
pub const TX: usize = 0;
/// The receiving hosts.
pub const RX: [usize; 2] = [1, 2];

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

    /// Our `pgm-send` / `pgm-recv` over `encap`, IPv4 or IPv6 as `iface` says.
    fn pgm_tools(&self, encap: Encap, iface: Iface) -> PgmTools {
        PgmTools {
            send: self.tool("pgm-send"),
            recv: self.tool("pgm-recv"),
            encap,
            iface,
        }
    }

    /// The OpenPGM peer, if it could be built.
    fn openpgm(&self) -> io::Result<OpenPgm> {
        let program = self.openpgm.clone().map_err(io::Error::other)?;
        Ok(OpenPgm { program })
    }

    /// The launcher of `sys`.
    fn launcher(&self, sys: System) -> io::Result<Box<dyn Launcher>> {
        Ok(match sys {
            System::Udp | System::UdpGso => Box::new(UdpPerf {
                program: self.tool("udp-perf"),
                gso: sys == System::UdpGso,
            }),
            System::OursRaw => Box::new(self.pgm_tools(Encap::Raw, Iface::Addr)),
            System::OursEpgm => Box::new(self.pgm_tools(Encap::Udp, Iface::Addr)),
            System::OursRawV6 => Box::new(self.pgm_tools(Encap::Raw, Iface::Addr6)),
            System::OursEpgmV6 => Box::new(self.pgm_tools(Encap::Udp, Iface::Addr6)),
            System::PubSub => Box::new(PubSubTools {
                publisher: self.tool("pgm-pub"),
                subscriber: self.tool("pgm-sub"),
            }),
            System::OpenPgm => Box::new(self.openpgm()?),
            System::Zmq => Box::new(Zmq {
                python: self.python.clone().map_err(io::Error::other)?,
            }),
        })
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

/// Waits until a receiver on `host` listens on `port`, as its launcher says it shows it.
fn ready(p: &mut Proc, host: &Host, readiness: Readiness, port: u16) -> io::Result<()> {
    match readiness {
        Readiness::ReadyLine(encap) => {
            p.wait_for_stderr("READY", Duration::from_secs(15))?;
            wait_joined(p, host, encap, port, Duration::from_secs(10))
        }
        Readiness::Joined(encap) => wait_joined(p, host, encap, port, secs(10.0)),
    }
}

/// Ends a run's `sender` as its launcher says, once the receivers are done: SIGTERM for the
/// ones that stay open, else a wait until `deadline` but at least `linger_s` + 3 s.
fn end_sender(
    sender: Proc,
    end: SenderEnd,
    deadline: Instant,
    linger_s: f64,
) -> io::Result<Finished> {
    match end {
        SenderEnd::Terminate { after } => {
            if !after.is_zero() {
                thread::sleep(after);
            }
            Ok(stop(sender, secs(5.0)))
        }
        SenderEnd::Exits => wait_all(vec![sender], deadline.max(now() + secs(linger_s + 3.0)))
            .pop()
            .ok_or_else(|| io::Error::other("no sender")),
    }
}

impl<'a> Ctx<'a> {
    /// A context for `lan` (≥ 3 hosts; the scale part's: 1 + its receivers).
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
            self.run(sys, size, rate, count, lossy)
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

    /// One probe of the scale part: `senders` × `pgm-send` on host 1, one TSI each, with
    /// `count / senders` messages at `rate / senders` msgs/s each, EPGM, 64 B, one message per
    /// packet, to a verifying `pgm-recv` on each of hosts 2..=`receivers + 1` (each expects
    /// all `count`). Offered = all messages / (first send of any sender → last send of any);
    /// the senders' CPU times are summed. `count` must be a multiple of `senders`.
    pub fn scale_probe(&self, receivers: usize, senders: usize, rate: f64, count: u64) -> Probe {
        let t0 = now();
        let r = if super::interrupted() {
            Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"))
        } else {
            self.scale_run(receivers, senders, rate, count)
        };
        let mut p = r.unwrap_or_else(|e| Probe {
            note: format!("harness error: {e}"),
            ..Probe::default()
        });
        p.requested = Some(rate);
        p.count = count;
        eprintln!(
            "[bench] scale {senders:>2} tx → {receivers} rx  ask {rate:>9.0}  offered {:>9.0}  \
             {:>4}  {count} msgs in {:.1} s, {} µs CPU/msg {}",
            p.offered,
            if p.ok { "ok" } else { "FAIL" },
            t0.elapsed().as_secs_f64(),
            p.cpu_us_per_msg()
                .map_or("?".to_owned(), |c| format!("{c:.2}")),
            p.note
        );
        p
    }

    fn scale_run(
        &self,
        receivers: usize,
        senders: usize,
        rate: f64,
        count: u64,
    ) -> io::Result<Probe> {
        let load = self.load(System::OursEpgm, SCALE_SIZE, Some(rate), count, false);
        // Receivers start one after the other, each idle until the sender starts: room for
        // the ones started after it.
        let startup_s = 0.3 * receivers as f64;
        let load = Load {
            idle_s: load.idle_s + startup_s,
            deadline_s: load.deadline_s + startup_s,
            ..load
        };
        let tools = self.bins.pgm_tools(Encap::Udp, Iface::Addr);
        let start = now();
        let rx = (1..=receivers)
            .map(|h| {
                let host = self.host(h);
                let mut p = tools.receiver(host, &load).spawn(host)?;
                ready(&mut p, host, tools.readiness(), load.port)?;
                Ok(p)
            })
            .collect::<io::Result<Vec<Proc>>>()?;
        let n = senders.max(1) as u64;
        let each = Load {
            count: count / n,
            rate: Some(rate / n as f64),
            ..load
        };
        let tx = (0..n)
            .map(|_| tools.sender(self.host(TX), &each).spawn(self.host(TX)))
            .collect::<io::Result<Vec<Proc>>>()?;
        let deadline = start + secs(load.deadline_s);
        let rx = wait_all(rx, deadline);
        let tx = wait_all(tx, deadline.max(now() + secs(load.linger_s + 3.0)));
        Ok(scale_evaluate(&tx, &rx, each.count, count))
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
        self.set_loss(loss_permille)?;
        let r = self.run(sys, size, Some(rate), count, true);
        // Read the drop counters before the rules (and their counters) are replaced.
        let dropped: Vec<u64> = RX
            .iter()
            .map(|&h| self.lan.dropped(h).map_or(0, |d| d.0))
            .collect();
        self.set_loss([0, 0])?;
        let run = r?;
        let lr = LossRun {
            delivered_frac: run.fractions.iter().copied().fold(1.0, f64::min),
            tail_ms: run.tail_ns.map(|t| t as f64 / 1e6),
            send_s: run.send_s,
            ok: run.probe.ok,
            note: run.probe.note.clone(),
            dropped,
            receivers: run.failed_receivers,
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

    /// What a run of `sys` asks (on a fresh port): receivers give up after the idle timeout
    /// (OpenPGM repairs take seconds), everything is killed after the deadline.
    fn load(&self, sys: System, size: usize, rate: Option<f64>, count: u64, lossy: bool) -> Load {
        let cfg = self.cfg;
        let send_s = rate.map_or(count as f64 / 100_000.0, |r| count as f64 / r.max(1.0));
        let idle_s = match (sys, lossy) {
            (System::OpenPgm, true) => cfg.slow_repair_idle_s,
            (System::OpenPgm | System::Zmq, false) => cfg.idle_s * 2.0,
            (_, true) => cfg.idle_s * 3.0,
            _ => cfg.idle_s,
        };
        Load {
            port: self.next_port(),
            size,
            rate,
            count,
            lossy,
            idle_s,
            deadline_s: 10.0 + 3.0 * send_s + idle_s * 2.0,
            linger_s: if lossy {
                cfg.loss_linger_s
            } else {
                cfg.linger_s
            },
        }
    }

    /// One run of `sys`: the receivers (each listening before the next starts), then the
    /// sender; the sender's peak RSS is sampled until it ended.
    fn run(
        &self,
        sys: System,
        size: usize,
        rate: Option<f64>,
        count: u64,
        lossy: bool,
    ) -> io::Result<Run> {
        let load = self.load(sys, size, rate, count, lossy);
        let launcher = self.bins.launcher(sys)?;
        let start = now();
        let rx = self.start_receivers(launcher.as_ref(), &load)?;
        let sender = launcher.sender(self.host(TX), &load).spawn(self.host(TX))?;
        let sampler = RssSampler::start(sender.id());
        let deadline = start + secs(load.deadline_s);
        let receivers = wait_all(rx, deadline);
        let sender = end_sender(sender, launcher.sender_end(&load), deadline, load.linger_s)?;
        let sender_peak = sampler.finish();
        Ok(evaluate(sys, count, &sender, &receivers, sender_peak))
    }

    /// A receiver on each of [`RX`], each listening before the next starts.
    fn start_receivers(&self, launcher: &dyn Launcher, load: &Load) -> io::Result<Vec<Proc>> {
        RX.iter()
            .map(|&h| {
                let host = self.host(h);
                let mut p = launcher.receiver(host, load).spawn(host)?;
                ready(&mut p, host, launcher.readiness(), load.port)?;
                Ok(p)
            })
            .collect()
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
        let limit = self.cfg.ping_max_secs;
        let ping = PgmPing {
            program: self.bins.tool("pgm-ping"),
            udp,
            spin,
            busy_poll: busy_poll.map(str::to_owned),
        };
        let reflector = ping.cmd(
            self.host(RX[0]),
            port,
            limit,
            PingRole::Reflect { timeout_s: 5.0 },
        );
        let role = PingRole::Ping {
            count,
            warmup: self.cfg.ping_warmup,
            size: 64,
        };
        let pinger = ping.cmd(self.host(TX), port, limit, role);
        let (p, r) = self.ping_pong(&reflector, &pinger)?;
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

    /// Runs `reflector` on host 2 until it says READY (once both its sockets joined and
    /// connected), then `pinger` on host 1; returns both once they ended (the pinger
    /// killed `ping_max_secs` + 10 s after its start, the reflector 8 s after that).
    fn ping_pong(&self, reflector: &Cmd, pinger: &Cmd) -> io::Result<(Finished, Finished)> {
        let mut refl = reflector.spawn(self.host(RX[0]))?;
        refl.wait_for_stderr("READY", secs(15.0))?;
        let pinger = pinger.spawn(self.host(TX))?;
        let p = wait_one(pinger, now() + secs(self.cfg.ping_max_secs + 10.0));
        let r = wait_one(refl, now() + secs(8.0));
        Ok((p, r))
    }

    /// The same ping-pong with OpenPGM: `openpgm_peer ping` on host 1, `openpgm_peer reflect`
    /// on host 2, raw PGM, two sessions (one each way), 64 B; blocking (ppoll on its
    /// descriptors with OpenPGM's timer) or `spin` (`pgm_recvfrom(MSG_DONTWAIT)` in a loop).
    /// OpenPGM's NAK timing as in the other OpenPGM runs.
    pub fn openpgm_ping(&self, spin: bool, count: u64) -> io::Result<LatencyResult> {
        let peer = self.bins.openpgm()?;
        let port = self.next_port();
        let limit = self.cfg.ping_max_secs;
        let reflect = PeerPingRole::Reflect { timeout_s: 5.0 };
        let reflector = peer.ping_pong(self.host(RX[0]), port, limit, spin, reflect);
        let ping = PeerPingRole::Ping {
            count,
            warmup: self.cfg.ping_warmup,
            size: 64,
        };
        let pinger = peer.ping_pong(self.host(TX), port, limit, spin, ping);
        let (p, r) = self.ping_pong(&reflector, &pinger)?;
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
    pub fn slow_receiver(&self, count: u64, rate: f64) -> io::Result<SlowResult> {
        const SIZE: usize = 1400;
        let port = self.next_port();
        let window = self.cfg.slow_window_bytes;
        let send_s = count as f64 / rate;
        let tools = self.bins.pgm_tools(Encap::Raw, Iface::Addr);
        let slow = self.start_slow(&tools, port, send_s + 20.0, window)?;
        let load = Load {
            port,
            size: SIZE,
            rate: Some(rate),
            count,
            lossy: false,
            idle_s: self.cfg.idle_s * 3.0,
            deadline_s: send_s * 3.0 + 20.0,
            linger_s: self.cfg.linger_s.max(1.0),
        };
        let fast_host = self.host(RX[1]);
        let mut fast = tools.receiver(fast_host, &load).spawn(fast_host)?;
        wait_joined(&mut fast, fast_host, Encap::Raw, port, secs(10.0))?;
        let sender = tools.sender(self.host(TX), &load).spawn(self.host(TX))?;
        let mut procs = vec![sender, fast];
        let peak = sample_peak_rss(slow.0.id(), &mut procs, load.deadline_s);
        let fins = wait_all(procs, now() + secs(5.0));
        drop(slow);
        let fast_ok = fins
            .get(1)
            .is_some_and(|f| complete_problems(f, count).is_empty());
        let res = SlowResult {
            count,
            size: SIZE,
            rate: fins.first().map_or(0.0, |f| f64_of(&f.json, "msgs_per_s")),
            window_bytes: window,
            recv_queue_bytes: pgm::socket::SocketOptions::default().driver.recv_queue,
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

    /// The slow receiver on host 2, its stdout a pipe nobody reads, once it joined the group
    /// (polled: it prints no READY line on this path).
    fn start_slow(
        &self,
        tools: &PgmTools,
        port: u16,
        timeout_s: f64,
        window_bytes: usize,
    ) -> io::Result<KillOnDrop> {
        let host = self.host(RX[0]);
        let mut cmd = tools
            .unverified_receiver(host, port, timeout_s, window_bytes)
            .command(host);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let slow = KillOnDrop(cmd.spawn()?);
        let t0 = now();
        while !is_joined_raw(host) {
            if t0.elapsed() > secs(10.0) {
                return Err(io::Error::other("slow receiver did not join"));
            }
            thread::sleep(Duration::from_millis(25));
        }
        thread::sleep(Duration::from_millis(100));
        Ok(slow)
    }
}

/// Samples the VmHWM of process `pid` every 20 ms until all `procs` exited plus a second
/// (for the queue to settle), or `limit_s` passed; returns the peak (KiB).
fn sample_peak_rss(pid: u32, procs: &mut [Proc], limit_s: f64) -> u64 {
    let start = now();
    let mut peak = 0;
    let mut done_at: Option<Instant> = None;
    loop {
        if let Some(r) = peak_rss_kib(pid) {
            peak = peak.max(r);
        }
        let all_done = procs
            .iter_mut()
            .all(|p| p.try_wait().ok().flatten().is_some());
        if all_done && done_at.is_none() {
            done_at = Some(now());
        }
        if done_at.is_some_and(|d| d.elapsed() > secs(1.0)) || start.elapsed() > secs(limit_s) {
            return peak;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Problems with one receiver of `sys` that should have got `count` messages (`expected`:
/// per topic, for the PUB/SUB systems).
fn receiver_problems(
    sys: System,
    r: &Finished,
    count: u64,
    expected: &BTreeMap<String, u64>,
) -> Vec<String> {
    match sys {
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
    }
}

/// The rate the sender of `sys` achieved, msgs/s (0 when unknown).
fn offered_rate(sys: System, sender: &Finished, receivers: &[Finished]) -> f64 {
    let offered = match sys {
        System::Udp | System::UdpGso => f64_of(&sender.json, "pps"),
        // libzmq's publisher does not time its sends: the slower subscriber's rate.
        System::Zmq => receivers
            .iter()
            .map(|r| f64_of(&r.json, "msgs_per_s"))
            .fold(f64::INFINITY, f64::min),
        _ => f64_of(&sender.json, "msgs_per_s"),
    };
    if offered.is_finite() {
        offered
    } else {
        0.0
    }
}

/// Last send → last delivery, ns, when the processes tell.
fn tail_ns(sys: System, sender: &Finished, receivers: &[Finished], send_s: f64) -> Option<u64> {
    let last_rx = receivers
        .iter()
        .map(|r| u64_of(&r.json, "last_mono_ns"))
        .max()
        .unwrap_or(0);
    let last_tx = u64_of(&sender.json, "last_mono_ns");
    if last_rx > 0 && last_tx > 0 {
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
    }
}

/// What a run of `sys` with `count` messages (one topic) left.
fn evaluate(
    sys: System,
    count: u64,
    sender: &Finished,
    receivers: &[Finished],
    sender_peak: u64,
) -> Run {
    let expected = expected_topics(&topics(1), count, &[""]);
    let mut note = None;
    if sys != System::Zmq && sender.json.is_null() {
        note = Some(format!("{}: no JSON summary", sender.name));
    }
    let mut fractions = Vec::new();
    for r in receivers {
        fractions.push(fraction(r, count));
        if note.is_none() {
            note = first_problem(&r.name, &receiver_problems(sys, r, count, &expected));
        }
    }
    let frac = fractions.iter().copied().fold(1.0, f64::min);
    let offered = offered_rate(sys, sender, receivers);
    let failed_receivers = match note {
        Some(_) => receivers.iter().map(post_mortem).collect(),
        None => Vec::new(),
    };
    let send_s = f64_of(&sender.json, "elapsed_s");
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
            sender_cpu_s: f64_of(&sender.json, "cpu_s"),
        },
        tail_ns: tail_ns(sys, sender, receivers, send_s),
        failed_receivers,
        fractions,
        send_s,
    }
}

/// A receiver's summary and the last lines of its stderr (loss notices name the sqns).
fn post_mortem(r: &Finished) -> Value {
    const LINES: usize = 20;
    let lines: Vec<&str> = r.out.stderr.lines().collect();
    let tail = &lines[lines.len().saturating_sub(LINES)..];
    serde_json::json!({
        "name": r.name, "status": r.out.status.to_string(), "timed_out": r.timed_out,
        "summary": r.json, "stderr_tail": tail,
    })
}

/// Message size of the scale part.
pub const SCALE_SIZE: usize = 64;

/// What a scale run left: `senders` each meant to send `each` messages, every receiver meant
/// to get all `count` of them.
fn scale_evaluate(senders: &[Finished], receivers: &[Finished], each: u64, count: u64) -> Probe {
    let mut problems: Vec<String> = senders
        .iter()
        .filter_map(|f| f.sent_problem(&f.name, each))
        .collect();
    for r in receivers {
        let mut p = Vec::new();
        for (key, want) in [
            ("received", count),
            ("gaps", 0),
            ("corrupt", 0),
            ("unrecoverable", 0),
            ("senders", senders.len() as u64),
        ] {
            if r.get(key) != Some(want) {
                p.push(format!("{}: {key} = {:?}, want {want}", r.name, r.get(key)));
            }
        }
        p.extend(r.crash_problems());
        if !r.timed_out && !r.out.status.success() {
            p.push(format!("{}: {}", r.name, r.out.status));
        }
        problems.extend(p);
    }
    // Each sender's span is (last send − elapsed, last send) on the shared monotonic clock.
    let last = senders
        .iter()
        .map(|f| u64_of(&f.json, "last_mono_ns") as f64 / 1e9)
        .fold(f64::NEG_INFINITY, f64::max);
    let first = senders
        .iter()
        .map(|f| u64_of(&f.json, "last_mono_ns") as f64 / 1e9 - f64_of(&f.json, "elapsed_s"))
        .fold(f64::INFINITY, f64::min);
    let sent: u64 = senders.iter().map(|f| u64_of(&f.json, "sent")).sum();
    let offered = if last > first && senders.iter().all(|f| !f.json.is_null()) {
        sent as f64 / (last - first)
    } else {
        0.0
    };
    let frac = receivers
        .iter()
        .map(|r| fraction(r, count))
        .fold(1.0, f64::min);
    Probe {
        requested: None,
        offered,
        delivered: offered * frac,
        count,
        ok: problems.is_empty(),
        note: problems.into_iter().next().unwrap_or_default(),
        sender_rss_kib: senders.iter().map(rss_of).max().unwrap_or(0),
        receiver_rss_kib: receivers.iter().map(rss_of).max().unwrap_or(0),
        sender_cpu_s: senders.iter().map(|f| f64_of(&f.json, "cpu_s")).sum(),
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

/// What one run left: the probe summary, each receiver's delivered fraction, the repair tail
/// and the sender's first-to-last send time.
#[derive(Debug, Clone)]
struct Run {
    probe: Probe,
    /// Each receiver's summary and stderr tail when the run failed (see [`LossRun::receivers`]).
    failed_receivers: Vec<Value>,
    fractions: Vec<f64>,
    tail_ns: Option<u64>,
    send_s: f64,
}
