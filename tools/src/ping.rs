//! `pgm-ping`: round-trip latency through a reflector, over two PGM sessions (one each way) or,
//! with `--udp`, over plain UDP multicast as the baseline.
//!
//! ```text
//! reflector:  pgm-ping --reflect ENDPOINT_IN ENDPOINT_OUT          (on host B)
//! pinger:     pgm-ping --count N --size B ENDPOINT_OUT ENDPOINT_IN (on host A)
//! ```
//!
//! The pinger sends ping `i` (bytes 0..8: `i` as u64 BE; 8..16 its send time; the rest
//! zero) on its first endpoint and waits for the same bytes back on its second; the reflector
//! receives on its first endpoint and sends every message straight back on its second. Both
//! endpoints of a pair name the same group and port, each with its own host's interface, so
//! the two directions are two sessions (use different groups and ports for them).
//!
//! The first `--warmup` round trips (or those of the first 2 s, if fewer) are not recorded; a
//! ping without an answer within `--ping-timeout` counts as lost and the next one goes out (a
//! late answer is skipped).
//! Round trips go into an HdrHistogram (ns, 3 significant digits); the pinger prints one JSON
//! line `{"mode","spin","busy_poll","size","count","received","lost","min_us","mean_us",
//! "p50_us","p90_us","p99_us","p999_us","max_us","elapsed_s","max_rss_kb"}` and, when done,
//! sends a stop message (bytes 0..8 all ones) that ends the reflector. The reflector also stops
//! after `--timeout` seconds without a message (once it got one) or `--max-secs` in all, and
//! prints `{"reflected","max_rss_kb"}`. It prints `READY` on stderr once its sockets are open.
//!
//! `--spin` polls without sleeping (`try_recv` / `MSG_DONTWAIT` in a loop) instead of blocking
//! in the kernel, which takes the wake-up cost out of the round trip; with PGM it also turns on
//! the socket layer's busy-poll (`SocketOptions::busy_poll`: the IO threads spin too) on both
//! sockets, or on the ones `--busy-poll` names. Each spinning thread wants a core of its own.

use std::{io, process::ExitCode, time::Duration};

use clap::Parser;
use hdrhistogram::Histogram;
use pgm::{
    socket::{RecvError, RecvSocket, SendSocket, SocketOptions},
    Event,
};
use socket2::Socket;

use crate::cli::{json_line, max_rss_kb, mono_ns, round3, CommonArgs, UdpEndpoint};

/// Bytes 0..8 of the message that stops the reflector.
pub const STOP: u64 = u64::MAX;

/// Smallest `--size`: sequence number and timestamp.
pub const MIN_SIZE: usize = 16;

/// `pgm-ping` arguments.
#[derive(Debug, Parser)]
#[command(
    name = "pgm-ping",
    version,
    about = "Round-trip latency through a reflector over PGM/EPGM (or plain UDP with --udp)",
    after_help = "Reflector: pgm-ping --reflect ENDPOINT_IN ENDPOINT_OUT. Pinger: pgm-ping \
                  --count N --size B ENDPOINT_OUT ENDPOINT_IN. Endpoints are \
                  pgm://IFACE;GROUP:PORT or epgm://IFACE;GROUP:PORT (with --udp also udp://…, \
                  all read as plain UDP multicast). The pinger prints one JSON line with \
                  HdrHistogram percentiles in microseconds."
)]
pub struct PingArgs {
    /// Pinger: where pings go. Reflector (--reflect): where pings come from.
    pub first: String,
    /// Pinger: where answers come from. Reflector: where answers go.
    pub second: String,
    /// Run as the reflector.
    #[arg(long)]
    pub reflect: bool,
    /// Round trips to record (after the warm-up).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub count: u64,
    /// Round trips before recording starts.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub warmup: u64,
    /// Message size in bytes (at least 16).
    #[arg(long, default_value_t = 64, value_name = "BYTES")]
    pub size: usize,
    /// Plain UDP multicast sockets instead of PGM (the baseline).
    #[arg(long)]
    pub udp: bool,
    /// Busy-poll instead of blocking in the kernel.
    #[arg(long)]
    pub spin: bool,
    /// With PGM: which sockets get the socket layer's busy-poll (their IO threads spin);
    /// default `both` with --spin, `off` without.
    #[arg(long, value_enum, value_name = "SOCKETS")]
    pub busy_poll: Option<BusyPoll>,
    /// Pinger: seconds to wait for one answer before counting the ping as lost.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub ping_timeout: f64,
    /// Pinger: microseconds to pause between a round trip and the next ping.
    #[arg(long, default_value_t = 0, value_name = "US")]
    pub interval_us: u64,
    /// Reflector: stop after this many seconds without a message (once one arrived).
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub timeout: f64,
    /// Stop after this many seconds in all.
    #[arg(long, default_value_t = 120.0, value_name = "SECS")]
    pub max_secs: f64,
    /// Options shared with pgm-send/pgm-recv (PGM only).
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `--busy-poll`: which PGM sockets busy-poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BusyPoll {
    /// Neither (the IO threads sleep in the kernel).
    Off,
    /// The receiving socket only.
    Recv,
    /// The sending socket only.
    Send,
    /// Both.
    Both,
}

impl BusyPoll {
    /// What `--spin` and `--busy-poll` ask for.
    pub fn from_args(spin: bool, explicit: Option<BusyPoll>) -> BusyPoll {
        explicit.unwrap_or(if spin { BusyPoll::Both } else { BusyPoll::Off })
    }

    /// The label in the JSON summary.
    pub fn label(self) -> &'static str {
        match self {
            BusyPoll::Off => "off",
            BusyPoll::Recv => "recv",
            BusyPoll::Send => "send",
            BusyPoll::Both => "both",
        }
    }
}

/// Sets the socket layer's busy-poll option (`SocketOptions::busy_poll`) on `opts`; returns
/// whether it is on.
pub fn apply_busy_poll(opts: &mut SocketOptions, on: bool) -> bool {
    opts.driver.busy_poll = on;
    on
}

/// One direction each way: send a message, wait for one.
trait Link {
    fn send(&mut self, msg: &[u8]) -> io::Result<()>;
    /// The next message into `buf` (its length), or `None` once `deadline_ns` (`mono_ns`)
    /// passed.
    fn recv(&mut self, buf: &mut Vec<u8>, deadline_ns: u64, spin: bool) -> io::Result<bool>;
    fn close(&mut self) {}
}

struct PgmLink {
    tx: SendSocket,
    rx: RecvSocket,
}

impl Link for PgmLink {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.tx.send(msg).map_err(io::Error::other)
    }

    fn recv(&mut self, buf: &mut Vec<u8>, deadline_ns: u64, spin: bool) -> io::Result<bool> {
        loop {
            let r = if spin {
                self.rx.try_recv()
            } else {
                let left = deadline_ns.saturating_sub(mono_ns());
                if left == 0 {
                    return Ok(false);
                }
                self.rx.recv_timeout(Duration::from_nanos(left))
            };
            match r {
                Ok(Event::Data { apdu: data, .. }) => {
                    buf.clear();
                    buf.extend_from_slice(&data);
                    return Ok(true);
                }
                Ok(_) => {}
                Err(RecvError::Empty) => {
                    if mono_ns() >= deadline_ns {
                        return Ok(false);
                    }
                    std::hint::spin_loop();
                }
                Err(RecvError::Timeout) => return Ok(false),
                Err(e) => return Err(io::Error::other(e)),
            }
        }
    }

    fn close(&mut self) {
        let _ = self.tx.close();
        self.rx.close();
    }
}

struct UdpLink {
    tx: Socket,
    rx: std::net::UdpSocket,
}

impl Link for UdpLink {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.tx.send(msg).map(drop)
    }

    fn recv(&mut self, buf: &mut Vec<u8>, deadline_ns: u64, spin: bool) -> io::Result<bool> {
        buf.resize(65_536, 0);
        loop {
            let now = mono_ns();
            if now >= deadline_ns {
                return Ok(false);
            }
            self.rx.set_nonblocking(spin)?;
            if !spin {
                let left = Duration::from_nanos((deadline_ns - now).max(1_000));
                self.rx.set_read_timeout(Some(left))?;
            }
            let e = match self.rx.recv(buf) {
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(true);
                }
                Err(e) => e,
            };
            match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    if spin {
                        std::hint::spin_loop();
                    }
                }
                io::ErrorKind::Interrupted => {}
                _ => return Err(e),
            }
        }
    }
}

fn open_link(
    a: &PingArgs,
    send_to: &str,
    recv_from: &str,
) -> io::Result<(Box<dyn Link>, BusyPoll)> {
    if a.udp {
        let tx = UdpEndpoint::parse(send_to).map_err(io::Error::other)?;
        let rx = UdpEndpoint::parse(recv_from).map_err(io::Error::other)?;
        let rx = rx.receiver()?;
        return Ok((
            Box::new(UdpLink {
                tx: tx.sender(a.common.hops)?,
                rx: rx.into(),
            }),
            BusyPoll::Off,
        ));
    }
    let mut opts = a.common.transport_options();
    opts.socket = opts.socket.with_linger(Duration::from_millis(300));
    let mode = BusyPoll::from_args(a.spin, a.busy_poll);
    let (mut rx_opts, mut tx_opts) = (opts.clone(), opts);
    apply_busy_poll(
        &mut rx_opts.socket,
        matches!(mode, BusyPoll::Recv | BusyPoll::Both),
    );
    apply_busy_poll(
        &mut tx_opts.socket,
        matches!(mode, BusyPoll::Send | BusyPoll::Both),
    );
    // The receiving side first, so an answer never finds it missing.
    let rx = epgm::open_receiver(recv_from, &rx_opts).map_err(io::Error::other)?;
    let tx = epgm::open_sender(send_to, &tx_opts).map_err(io::Error::other)?;
    Ok((Box::new(PgmLink { tx, rx }), mode))
}

fn check(a: &PingArgs) -> io::Result<()> {
    if a.size < MIN_SIZE || a.size > 65_000 {
        return Err(io::Error::other(format!(
            "--size {} out of range {MIN_SIZE}..=65000",
            a.size
        )));
    }
    for (name, v) in [
        ("--ping-timeout", a.ping_timeout),
        ("--timeout", a.timeout),
        ("--max-secs", a.max_secs),
    ] {
        if !(0.001..=86_400.0).contains(&v) {
            return Err(io::Error::other(format!("{name} {v} out of range")));
        }
    }
    Ok(())
}

fn ns(secs: f64) -> u64 {
    Duration::from_secs_f64(secs.max(0.0)).as_nanos() as u64
}

fn word(buf: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(s) = buf.get(at..at + 8) {
        w.copy_from_slice(s);
    }
    u64::from_be_bytes(w)
}

/// Runs the reflector; its JSON line.
fn reflect(a: &PingArgs) -> io::Result<String> {
    let (mut link, _) = open_link(a, &a.second, &a.first)?;
    eprintln!("READY");
    let start = mono_ns();
    let mut buf = Vec::new();
    let (mut reflected, mut last) = (0u64, None::<u64>);
    loop {
        let now = mono_ns();
        let mut deadline = start + ns(a.max_secs);
        if let Some(l) = last {
            deadline = deadline.min(l + ns(a.timeout));
        }
        if now >= deadline {
            break;
        }
        if !link.recv(&mut buf, deadline.min(now + 100_000_000), a.spin)? {
            continue;
        }
        last = Some(mono_ns());
        if word(&buf, 0) == STOP {
            break;
        }
        link.send(&buf)?;
        reflected += 1;
    }
    link.close();
    Ok(json_line(&[
        ("reflected", reflected.into()),
        ("max_rss_kb", max_rss_kb().into()),
    ]))
}

/// Percentiles of a run, microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    /// Smallest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th.
    pub p99: f64,
    /// 99.9th.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

/// The percentiles of `h` (nanoseconds) in microseconds.
pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    let us = |v: u64| (v as f64 / 100.0).round() / 10.0;
    Percentiles {
        min: us(h.min()),
        mean: (h.mean() / 100.0).round() / 10.0,
        p50: us(h.value_at_quantile(0.5)),
        p90: us(h.value_at_quantile(0.9)),
        p99: us(h.value_at_quantile(0.99)),
        p999: us(h.value_at_quantile(0.999)),
        max: us(h.max()),
    }
}

/// Runs the pinger; its JSON line.
fn ping(a: &PingArgs) -> io::Result<String> {
    let (mut link, busy) = open_link(a, &a.first, &a.second)?;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 100_000_000_000, 3)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let start = mono_ns();
    let end = start + ns(a.max_secs);
    let mut msg = vec![0u8; a.size];
    let mut buf = Vec::new();
    let (mut received, mut lost) = (0u64, 0u64);
    let mut total = a.warmup + a.count;
    let mut warmup = a.warmup;
    let mut i = 0;
    // Until the first answer (the sessions are still being set up) pings are retried.
    let mut answered = false;
    while i < total {
        let t0 = mono_ns();
        if t0 >= end {
            break;
        }
        msg[..8].copy_from_slice(&i.to_be_bytes());
        msg[8..16].copy_from_slice(&t0.to_be_bytes());
        link.send(&msg)?;
        let deadline = (t0 + ns(a.ping_timeout)).min(end);
        let mut got = false;
        while link.recv(&mut buf, deadline, a.spin)? {
            if word(&buf, 0) == i && buf.len() == a.size {
                got = true;
                break;
            }
        }
        let t1 = mono_ns();
        // The warm-up ends after --warmup round trips or 2 s, whichever comes first.
        if i < warmup && t1 - start > 2_000_000_000 {
            warmup = i;
            total = warmup + a.count;
        }
        if got {
            answered = true;
            if i >= warmup {
                received += 1;
                hist.saturating_record((t1 - t0).max(1));
            }
        } else if !answered {
            continue;
        } else if i >= warmup {
            lost += 1;
        }
        i += 1;
        if a.interval_us > 0 {
            std::thread::sleep(Duration::from_micros(a.interval_us));
        }
    }
    let elapsed = (mono_ns() - start) as f64 / 1e9;
    msg[..8].copy_from_slice(&STOP.to_be_bytes());
    for _ in 0..3 {
        let _ = link.send(&msg);
    }
    link.close();
    if hist.is_empty() {
        return Err(io::Error::other(format!(
            "no answer from the reflector ({i} pings, {lost} lost)"
        )));
    }
    let p = percentiles(&hist);
    let mode = if a.udp {
        "udp"
    } else if a.first.starts_with("epgm://") {
        "epgm"
    } else {
        "pgm"
    };
    Ok(json_line(&[
        ("mode", mode.into()),
        ("spin", a.spin.into()),
        ("busy_poll", busy.label().into()),
        ("size", a.size.into()),
        ("count", a.count.into()),
        ("received", received.into()),
        ("lost", lost.into()),
        ("min_us", p.min.into()),
        ("mean_us", p.mean.into()),
        ("p50_us", p.p50.into()),
        ("p90_us", p.p90.into()),
        ("p99_us", p.p99.into()),
        ("p999_us", p.p999.into()),
        ("max_us", p.max.into()),
        ("elapsed_s", round3(elapsed).into()),
        ("max_rss_kb", max_rss_kb().into()),
    ]))
}

/// `pgm-ping`'s main.
pub fn ping_main(a: &PingArgs) -> ExitCode {
    let r = check(a).and_then(|()| if a.reflect { reflect(a) } else { ping(a) });
    match r {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pgm-ping: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_in_microseconds() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 100_000_000_000, 3).unwrap();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let p = percentiles(&h);
        assert!((p.p50 - 500.0).abs() < 1.0, "{p:?}");
        assert!((p.p99 - 990.0).abs() < 1.5, "{p:?}");
        assert!((p.max - 1000.0).abs() < 1.5, "{p:?}");
        assert!((p.min - 1.0).abs() < 0.01, "{p:?}");
    }

    #[test]
    fn words() {
        let mut b = vec![0u8; 16];
        b[..8].copy_from_slice(&7u64.to_be_bytes());
        assert_eq!(word(&b, 0), 7);
        assert_eq!(word(&b[..4], 0), 0);
    }
}
