//! `udp-perf`: the plain-UDP-multicast baseline of the benchmarks: a `sendmmsg` sender and a
//! `recvmmsg` receiver of numbered datagrams, so the receiver counts what it lost.
//!
//! ```text
//! udp-perf send [--count N] [--size B] [--pps R] [--batch K] [--gso] [--max-secs S] udp://ADDR;GROUP:PORT
//! udp-perf recv [--count N] [--timeout S] [--max-secs S] [--gro] udp://ADDR;GROUP:PORT
//! ```
//!
//! Datagram `i` starts with `i` (u64 big-endian); the rest is zero. The sender paces to `--pps`
//! datagrams per second (0: as fast as `sendmmsg` goes) in bursts of at most `--batch` (with
//! `--gso` each burst is one UDP GSO send, as EPGM sends runs of packets), and
//! prints one JSON line `{"sent","bytes","elapsed_s","pps","send_errors","last_mono_ns",
//! "max_rss_kb"}`. The receiver prints `READY` on stderr once it joined the group, stops after
//! `--count` datagrams, `--timeout` seconds without one (after the first) or `--max-secs` in
//! all, and prints `{"received","lost","reordered","first_seq","last_seq","elapsed_s","pps",
//! "last_mono_ns","max_rss_kb"}`; it exits 1 when fewer than `--count` arrived. With `--gro`
//! it reads with UDP_GRO, as EPGM receivers do: a GSO run that reached the host uncut is
//! one read, cut into its datagrams here.
//!
//! The endpoint takes the syntax of the PGM tools (`udp://`, `epgm://` or `pgm://` are all
//! read as plain UDP here): IFACE an interface name or address, GROUP an IPv4 multicast group.

use std::{io, net::IpAddr, os::fd::AsRawFd, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use pgm::{
    sys::{
        mmsg::{MmsgReceiver, MmsgSender, Outgoing, GSO_MAX_SEGMENTS},
        net::set_udp_gro,
    },
    transport::MAX_DATAGRAM,
};

use crate::cli::{json_line, max_rss_kb, mono_ns, round3, UdpEndpoint};

/// `udp-perf` arguments.
#[derive(Debug, Parser)]
#[command(
    name = "udp-perf",
    version,
    about = "Plain UDP multicast baseline: sendmmsg sender / recvmmsg receiver of numbered datagrams"
)]
pub struct UdpPerfArgs {
    /// Send or receive.
    #[command(subcommand)]
    pub cmd: UdpPerfCmd,
}

/// The two roles.
#[derive(Debug, Subcommand)]
pub enum UdpPerfCmd {
    /// Send numbered datagrams.
    Send(UdpSendArgs),
    /// Receive numbered datagrams and count the lost ones.
    Recv(UdpRecvArgs),
}

/// `udp-perf send`.
#[derive(Debug, clap::Args)]
pub struct UdpSendArgs {
    /// udp://IFACE;GROUP:PORT.
    pub endpoint: String,
    /// Datagrams to send.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub count: u64,
    /// Datagram payload bytes (at least 8).
    #[arg(long, default_value_t = 64, value_name = "BYTES")]
    pub size: usize,
    /// Datagrams per second; 0 sends as fast as sendmmsg goes.
    #[arg(long, default_value_t = 0, value_name = "R")]
    pub pps: u64,
    /// Largest burst of one sendmmsg call.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub batch: u32,
    /// Stop after this many seconds whatever was sent.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub max_secs: f64,
    /// Multicast TTL.
    #[arg(long, default_value_t = 16)]
    pub hops: u32,
    /// Send each burst (at most 64 datagrams) as one UDP GSO send (`UDP_SEGMENT`): the same
    /// datagrams on the wire, the IP and UDP layers once per burst.
    #[arg(long)]
    pub gso: bool,
}

/// `udp-perf recv`.
#[derive(Debug, clap::Args)]
pub struct UdpRecvArgs {
    /// udp://IFACE;GROUP:PORT.
    pub endpoint: String,
    /// Datagrams expected; the receiver stops when all arrived.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Stop after this many seconds without a datagram (once the first arrived).
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub timeout: f64,
    /// Stop after this many seconds in all.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub max_secs: f64,
    /// Read with UDP_GRO (GSO runs that arrive uncut are read whole, as EPGM reads them).
    #[arg(long)]
    pub gro: bool,
}

/// `udp-perf`'s main.
pub fn udp_perf_main(args: &UdpPerfArgs) -> ExitCode {
    let r = match &args.cmd {
        UdpPerfCmd::Send(a) => run_send(a).map(|line| (line, true)),
        UdpPerfCmd::Recv(a) => run_recv(a),
    };
    match r {
        Ok((line, ok)) => {
            println!("{line}");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("udp-perf: error: {e}");
            ExitCode::from(2)
        }
    }
}

fn secs(limit: f64) -> io::Result<u64> {
    if !(0.0..=86_400.0).contains(&limit) {
        return Err(io::Error::other(format!("{limit} s is out of range")));
    }
    Ok(Duration::from_secs_f64(limit).as_nanos() as u64)
}

/// Datagrams due at `elapsed_ns` at `pps` (all of them when unpaced).
fn due(elapsed_ns: u64, pps: u64, count: u64) -> u64 {
    if pps == 0 {
        return count;
    }
    let d = u128::from(elapsed_ns) * u128::from(pps) / 1_000_000_000 + 1;
    u64::try_from(d).unwrap_or(u64::MAX).min(count)
}

fn run_send(a: &UdpSendArgs) -> io::Result<String> {
    if a.size < 8 || a.size > 65_000 {
        return Err(io::Error::other("--size must be 8..=65000"));
    }
    let ep = UdpEndpoint::parse(&a.endpoint).map_err(io::Error::other)?;
    let sock = ep.sender(a.hops)?;
    let max_ns = secs(a.max_secs)?;
    let batch = if a.gso {
        (a.batch as usize).min(GSO_MAX_SEGMENTS)
    } else {
        a.batch as usize
    };
    let dst = IpAddr::V4(ep.group);
    let mut outs: Vec<Outgoing> = (0..batch)
        .map(|_| Outgoing {
            dst,
            buf: vec![0u8; a.size],
            ttl: None,
        })
        .collect();
    let mut tx = MmsgSender::new();
    let (mut sent, mut errors) = (0u64, 0u64);
    let start = mono_ns();
    while sent < a.count {
        let now = mono_ns() - start;
        if now > max_ns {
            break;
        }
        let due = due(now, a.pps, a.count);
        if due <= sent {
            // Sleep until the next datagram is due (sleeps shorter than ~50 µs just yield).
            let next_ns = u128::from(sent) * 1_000_000_000 / u128::from(a.pps.max(1));
            let wait = u64::try_from(next_ns)
                .unwrap_or(u64::MAX)
                .saturating_sub(now);
            if wait > 50_000 {
                std::thread::sleep(Duration::from_nanos(wait - 20_000));
            } else {
                std::thread::yield_now();
            }
            continue;
        }
        let n = usize::try_from((due - sent).min(batch as u64)).unwrap_or(batch);
        for (k, o) in outs.iter_mut().take(n).enumerate() {
            o.buf[..8].copy_from_slice(&(sent + k as u64).to_be_bytes());
        }
        let r = if a.gso {
            tx.send_connected_gso(sock.as_raw_fd(), &outs[..n])
        } else {
            tx.send_connected(sock.as_raw_fd(), &outs[..n])
        };
        match r {
            Ok(done) => sent += done as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                // ENOBUFS and the like: the datagrams are gone; count them as sent and lost.
                errors += 1;
                sent += n as u64;
            }
        }
    }
    let last = mono_ns();
    let elapsed = (last - start) as f64 / 1e9;
    let pps = if elapsed > 0.0 {
        sent as f64 / elapsed
    } else {
        0.0
    };
    Ok(json_line(&[
        ("sent", sent.into()),
        ("bytes", (sent * a.size as u64).into()),
        ("elapsed_s", round3(elapsed).into()),
        ("pps", pps.round().into()),
        ("send_errors", errors.into()),
        ("last_mono_ns", last.into()),
        ("max_rss_kb", max_rss_kb().into()),
    ]))
}

/// What the receiver counted.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    received: u64,
    reordered: u64,
    next: u64,
    first: Option<u64>,
    last: u64,
}

fn run_recv(a: &UdpRecvArgs) -> io::Result<(String, bool)> {
    const BATCH: usize = 64;
    let ep = UdpEndpoint::parse(&a.endpoint).map_err(io::Error::other)?;
    let sock = ep.receiver()?;
    // A coalesced run takes up to 64 KiB.
    let (buf, mut rx) = if a.gro {
        set_udp_gro(sock.as_raw_fd())?;
        (MAX_DATAGRAM, MmsgReceiver::new(false).with_gro())
    } else {
        (2048, MmsgReceiver::new(false))
    };
    sock.set_read_timeout(Some(Duration::from_millis(50)))?;
    eprintln!("READY");
    let idle_ns = secs(a.timeout)?;
    let max_ns = secs(a.max_secs)?;
    let wanted = a.count.unwrap_or(u64::MAX);
    let mut bufs = vec![0u8; BATCH * buf];
    let mut c = Counts::default();
    let start = mono_ns();
    let (mut first_ns, mut last_ns) = (0u64, start);
    while c.received < wanted {
        let now = mono_ns();
        if now - start > max_ns || (c.first.is_some() && now - last_ns > idle_ns) {
            break;
        }
        let infos = match rx.recv_wait(sock.as_raw_fd(), &mut bufs, buf, BATCH) {
            Ok(i) => i,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        let t = mono_ns();
        for (b, info) in bufs.chunks(buf).zip(infos) {
            let len = info.len.min(b.len());
            let segment = info.segment.unwrap_or(len).max(1);
            for d in b[..len].chunks(segment) {
                let Some(s) = d.first_chunk::<8>() else {
                    continue;
                };
                let seq = u64::from_be_bytes(*s);
                if c.first.is_none() {
                    c.first = Some(seq);
                    first_ns = t;
                }
                c.received += 1;
                if seq < c.next {
                    c.reordered += 1;
                } else {
                    c.next = seq + 1;
                }
                c.last = c.last.max(seq);
            }
        }
        if !infos.is_empty() {
            last_ns = t;
        }
    }
    let expected = a
        .count
        .unwrap_or(if c.first.is_some() { c.last + 1 } else { 0 });
    let lost = expected.saturating_sub(c.received);
    let elapsed = last_ns.saturating_sub(first_ns) as f64 / 1e9;
    let pps = if elapsed > 0.0 {
        c.received as f64 / elapsed
    } else {
        0.0
    };
    let line = json_line(&[
        ("received", c.received.into()),
        ("lost", lost.into()),
        ("reordered", c.reordered.into()),
        ("first_seq", c.first.into()),
        ("last_seq", c.first.map(|_| c.last).into()),
        ("elapsed_s", round3(elapsed).into()),
        ("pps", pps.round().into()),
        ("last_mono_ns", last_ns.into()),
        ("max_rss_kb", max_rss_kb().into()),
    ]);
    Ok((line, a.count.is_none_or(|n| c.received >= n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_schedule() {
        assert_eq!(due(0, 0, 10), 10);
        assert_eq!(due(0, 1000, 10), 1);
        assert_eq!(due(1_000_000, 1000, 10), 2);
        assert_eq!(due(1_000_000_000, 1000, 5000), 1001);
        assert_eq!(due(u64::MAX, 1000, 7), 7);
    }
}
