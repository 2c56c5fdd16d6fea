//! One launcher per system under test: which programs a run starts on which host, with which
//! arguments (built by the option builders of [`crate::tools`], [`crate::zmq`] and
//! [`crate::peer`]), how a receiver shows that it listens and how a sender ends.
//!
//! - [`UdpPerf`]: plain UDP multicast, `udp-perf send` / `udp-perf recv` (optionally GSO);
//! - [`PgmTools`]: our `pgm-send` / `pgm-recv --verify`, raw PGM or EPGM;
//! - [`PubSubTools`]: our `pgm-pub` / `pgm-sub --verify` over EPGM;
//! - [`OpenPgm`]: the OpenPGM C peer (`openpgm_peer send|recv|ping|reflect`), raw PGM;
//! - [`Zmq`]: the libzmq Python peer (`zmq_peer.py pub|sub`) over epgm;
//! - [`PgmPing`]: `pgm-ping` and its reflector, over PGM or plain UDP.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::lan::{Host, GROUP};
use crate::peer::{PeerArgs, PeerPingArgs, PeerPingRole};
use crate::proc::Proc;
use crate::tools::{
    endpoint, Encap, Iface, PingOpts, PingRole, RecvOpts, SendOpts, UdpRecvOpts, UdpSendOpts,
};
use crate::zmq::{topics, PubOpts, SubOpts, ZmqPubOpts, ZmqSubOpts};

/// The second group (the return direction of the ping-pong).
pub const GROUP2: std::net::Ipv4Addr = std::net::Ipv4Addr::new(239, 192, 1, 2);

/// IPv4 (20) + PGM header (16) + ODATA header (8): what our rate limiter and OpenPGM's count
/// on top of each payload.
pub const RAW_OVERHEAD: usize = 44;
/// [`RAW_OVERHEAD`] + UDP (8).
pub const UDP_OVERHEAD: usize = 52;

/// NAK back-off, repeat and RDATA intervals of every OpenPGM run, ms (libzmq's timing).
pub const OPENPGM_NAK_IVLS_MS: (u32, u32, u32) = (50, 200, 200);

/// A non-negative float as an integer (rates, counts): truncated, 0 for NaN or negatives.
#[expect(
    clippy::cast_sign_loss,
    clippy::cast_possible_truncation,
    reason = "the value is checked finite and positive first; truncation is the intent"
)]
pub(super) fn u(x: f64) -> u64 {
    if x.is_finite() && x > 0.0 {
        x as u64
    } else {
        0
    }
}

/// A program and its argument vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Cmd {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}

impl Cmd {
    fn new(program: &Path, args: Vec<String>) -> Cmd {
        Cmd {
            program: program.to_path_buf(),
            args,
        }
    }

    /// Spawns it inside `host`'s namespace.
    pub fn spawn(&self, host: &Host) -> io::Result<Proc> {
        host.spawn(&self.program, &self.args)
    }

    /// The command that runs it inside `host`'s namespace, for callers that set up its
    /// standard streams themselves.
    pub fn command(&self, host: &Host) -> Command {
        host.command(&self.program, &self.args)
    }
}

/// What one run asks of a system: `count` messages of `size` bytes at `rate` on `port`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    /// The PGM / UDP port (the next one is free too).
    pub port: u16,
    /// Message (datagram payload) size, bytes.
    pub size: usize,
    /// Messages per second, `None` for unlimited.
    pub rate: Option<f64>,
    /// Messages.
    pub count: u64,
    /// The run is under loss.
    pub lossy: bool,
    /// Receivers give up after this long without data, s.
    pub idle_s: f64,
    /// Everything is killed this long after the start, s.
    pub deadline_s: f64,
    /// Our senders' linger after the last message, s.
    pub linger_s: f64,
}

impl Load {
    /// Our senders' `--rate` (bits/s) for `rate` msgs/s with `overhead` header bytes on top
    /// of each payload; 0 (no limit) when unlimited.
    fn bits_per_s(&self, overhead: usize) -> u64 {
        self.rate
            .map_or(0, |r| u(r * (self.size + overhead) as f64 * 8.0))
    }
}

/// How a receiver shows that it listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// READY on stderr (15 s at most), then its socket and the group join (10 s at most).
    ReadyLine(Encap),
    /// Its socket and the group join (10 s at most).
    Joined(Encap),
}

/// How a sender ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderEnd {
    /// By itself, after its linger.
    Exits,
    /// It stays open until told: SIGTERM once the receivers are done and `after` passed.
    Terminate {
        /// Pause before the SIGTERM.
        after: Duration,
    },
}

/// The processes of one run of a system: a sender on one host, receivers on others.
pub trait Launcher {
    /// The receiver on `host`.
    fn receiver(&self, host: &Host, load: &Load) -> Cmd;
    /// The sender on `host`.
    fn sender(&self, host: &Host, load: &Load) -> Cmd;
    /// How its receivers show that they listen.
    fn readiness(&self) -> Readiness;
    /// How its sender ends.
    fn sender_end(&self, load: &Load) -> SenderEnd;
}

/// `SCHEME://ADDR;GROUP:PORT` of `host`.
fn endpoint_of(scheme: &str, host: &Host, group: std::net::Ipv4Addr, port: u16) -> String {
    format!("{scheme}://{};{group}:{port}", host.addr())
}

/// Plain UDP multicast: `udp-perf send` (paced by `--pps`; with `gso`, each burst one UDP
/// GSO send) → `udp-perf recv` (with `gso`, reading with UDP_GRO as EPGM does).
#[derive(Debug, Clone)]
pub struct UdpPerf {
    /// `udp-perf`.
    pub program: PathBuf,
    /// `--gso` on the sender, `--gro` on the receivers.
    pub gso: bool,
}

impl Launcher for UdpPerf {
    fn receiver(&self, host: &Host, load: &Load) -> Cmd {
        let o = UdpRecvOpts {
            count: load.count,
            timeout_s: load.idle_s,
            max_secs: load.deadline_s,
            gro: self.gso,
        };
        let ep = endpoint_of("udp", host, GROUP, load.port);
        Cmd::new(&self.program, o.args(&ep))
    }

    fn sender(&self, host: &Host, load: &Load) -> Cmd {
        let o = UdpSendOpts {
            gso: self.gso,
            count: load.count,
            size: load.size,
            pps: load.rate.map_or(0, |r| u(r.round())),
            max_secs: load.deadline_s,
        };
        let ep = endpoint_of("udp", host, GROUP, load.port);
        Cmd::new(&self.program, o.args(&ep))
    }

    fn readiness(&self) -> Readiness {
        Readiness::ReadyLine(Encap::Udp)
    }

    fn sender_end(&self, _: &Load) -> SenderEnd {
        SenderEnd::Exits
    }
}

/// Our `pgm-send --quiet` → `pgm-recv --verify --quiet`, one message per packet.
#[derive(Debug, Clone)]
pub struct PgmTools {
    /// `pgm-send`.
    pub send: PathBuf,
    /// `pgm-recv`.
    pub recv: PathBuf,
    /// Raw PGM or EPGM.
    pub encap: Encap,
    /// How the endpoint names the interface, and so the family: IPv4 or IPv6.
    pub iface: Iface,
}

impl PgmTools {
    fn endpoint(&self, host: &Host, port: u16) -> String {
        endpoint(host, self.encap, self.iface, port)
    }

    /// A receiver that does not verify and stops after `timeout_s` without data, with a
    /// `window_bytes` receive window (the slow receiver, whose stdout nobody reads).
    pub fn unverified_receiver(
        &self,
        host: &Host,
        port: u16,
        timeout_s: f64,
        window_bytes: usize,
    ) -> Cmd {
        let mut o = RecvOpts::new(None, timeout_s);
        o.verify = false;
        o.window = Some(format!("{window_bytes}B"));
        o.quiet = true;
        Cmd::new(&self.recv, o.args(&self.endpoint(host, port)))
    }
}

impl Launcher for PgmTools {
    fn receiver(&self, host: &Host, load: &Load) -> Cmd {
        let mut o = RecvOpts::new(Some(load.count), load.idle_s);
        o.quiet = true;
        Cmd::new(&self.recv, o.args(&self.endpoint(host, load.port)))
    }

    fn sender(&self, host: &Host, load: &Load) -> Cmd {
        // The rate limit counts IP headers: 20 bytes more over IPv6.
        let overhead = match self.encap {
            Encap::Raw => RAW_OVERHEAD,
            Encap::Udp => UDP_OVERHEAD,
        } + if self.iface == Iface::Addr6 { 20 } else { 0 };
        let bits = load.bits_per_s(overhead).to_string();
        let mut o = SendOpts::new(load.count, load.size, &bits);
        o.linger_s = load.linger_s;
        o.quiet = true;
        Cmd::new(&self.send, o.args(&self.endpoint(host, load.port)))
    }

    fn readiness(&self) -> Readiness {
        Readiness::Joined(self.encap)
    }

    fn sender_end(&self, _: &Load) -> SenderEnd {
        SenderEnd::Exits
    }
}

/// Our `pgm-pub --quiet` (one topic) → `pgm-sub --verify --quiet --subscribe ''`, over EPGM.
#[derive(Debug, Clone)]
pub struct PubSubTools {
    /// `pgm-pub`.
    pub publisher: PathBuf,
    /// `pgm-sub`.
    pub subscriber: PathBuf,
}

impl Launcher for PubSubTools {
    fn receiver(&self, host: &Host, load: &Load) -> Cmd {
        let mut o = SubOpts::new(load.count, &[""]);
        o.timeout_s = load.idle_s;
        o.quiet = true;
        let ep = endpoint(host, Encap::Udp, Iface::Addr, load.port);
        Cmd::new(&self.subscriber, o.args(&ep))
    }

    fn sender(&self, host: &Host, load: &Load) -> Cmd {
        let bits = load
            .rate
            .map_or(0, |r| u(r * (load.size + 8) as f64 * 8.0 * 1.05));
        let mut o = PubOpts::new(
            load.count,
            &topics(1),
            &load.size.to_string(),
            &bits.to_string(),
        );
        o.linger_s = load.linger_s;
        o.quiet = true;
        let ep = endpoint(host, Encap::Udp, Iface::Addr, load.port);
        Cmd::new(&self.publisher, o.args(&ep))
    }

    fn readiness(&self) -> Readiness {
        Readiness::Joined(Encap::Udp)
    }

    fn sender_end(&self, _: &Load) -> SenderEnd {
        SenderEnd::Exits
    }
}

/// OpenPGM 5.3 through the C peer, raw PGM, libzmq's NAK timing ([`OPENPGM_NAK_IVLS_MS`]).
#[derive(Debug, Clone)]
pub struct OpenPgm {
    /// `openpgm_peer`.
    pub program: PathBuf,
}

impl OpenPgm {
    /// `send`/`recv` options: `rate_bytes` (0 = none), `timeout_s` (receiver: idle; sender:
    /// overall); a window of 65 536 sqns, or under loss one that keeps every message
    /// repairable.
    fn peer_args(host: &Host, load: &Load, rate_bytes: u64, timeout_s: f64) -> PeerArgs {
        let mut a = PeerArgs::new(host.pgm_network());
        a.port = load.port;
        a.count = load.count;
        a.size = load.size;
        a.rate = rate_bytes;
        a.timeout_s = timeout_s;
        // Lingers until the harness sends SIGTERM.
        a.linger_s = timeout_s.max(30.0);
        a.window_sqns = if load.lossy {
            // A big window: everything stays repairable.
            u32::try_from(load.count + 1000)
                .unwrap_or(u32::MAX)
                .max(10_000)
        } else {
            65_536
        };
        a.nak_ivls_ms = OPENPGM_NAK_IVLS_MS;
        a.quiet = true;
        a
    }

    /// `ping` (with `count` round trips of 64 B after `warmup`) or `reflect` (5 s idle
    /// timeout) on `host`: pings on `port`, answers on `port + 1`; `spin` busy-polls.
    pub fn ping_pong(
        &self,
        host: &Host,
        port: u16,
        max_secs: f64,
        spin: bool,
        role: PeerPingRole,
    ) -> Cmd {
        let addr = host.addr();
        let a = PeerPingArgs {
            role,
            network: format!("{addr};{GROUP}"),
            port,
            network2: format!("{addr};{GROUP2}"),
            port2: port + 1,
            max_secs,
            nak_ivls_ms: OPENPGM_NAK_IVLS_MS,
            quiet: true,
            spin,
        };
        Cmd::new(&self.program, a.to_args())
    }
}

impl Launcher for OpenPgm {
    fn receiver(&self, host: &Host, load: &Load) -> Cmd {
        let a = Self::peer_args(host, load, 0, load.idle_s);
        Cmd::new(&self.program, a.to_args(false))
    }

    fn sender(&self, host: &Host, load: &Load) -> Cmd {
        let bytes = load
            .rate
            .map_or(0, |r| u(r * (load.size + RAW_OVERHEAD) as f64));
        let a = Self::peer_args(host, load, bytes, load.deadline_s);
        Cmd::new(&self.program, a.to_args(true))
    }

    fn readiness(&self) -> Readiness {
        Readiness::ReadyLine(Encap::Raw)
    }

    fn sender_end(&self, load: &Load) -> SenderEnd {
        SenderEnd::Terminate {
            // Let a last NAK be answered before the FIN.
            after: if load.lossy {
                Duration::ZERO
            } else {
                Duration::from_millis(50)
            },
        }
    }
}

/// ZMQ_RATE (kbit/s) for `rate` msgs/s of `size` bytes, with room for framing and headers;
/// 1 Gbit/s when unlimited.
fn zmq_kbit(rate: Option<f64>, size: usize) -> u64 {
    rate.map_or(1_000_000, |r| {
        u(r * (size + 8) as f64 * 8.0 * 1.1 / 1000.0).max(1000)
    })
}

/// libzmq 4.3 PUB → SUB over epgm through the Python peer (one topic, subscribed to all).
#[derive(Debug, Clone)]
pub struct Zmq {
    /// Python with pyzmq.
    pub python: PathBuf,
}

impl Launcher for Zmq {
    fn receiver(&self, host: &Host, load: &Load) -> Cmd {
        let mut o = ZmqSubOpts::new(load.count, &[""]);
        o.timeout_s = load.idle_s;
        o.rate_kbit = zmq_kbit(load.rate, load.size);
        let ep = endpoint(host, Encap::Udp, Iface::Addr, load.port);
        Cmd::new(&self.python, o.args(&ep))
    }

    fn sender(&self, host: &Host, load: &Load) -> Cmd {
        let mut o = ZmqPubOpts::new(load.count, &topics(1), (load.size, load.size));
        o.rate_kbit = zmq_kbit(load.rate, load.size);
        o.linger_s = load.deadline_s;
        let ep = endpoint(host, Encap::Udp, Iface::Addr, load.port);
        Cmd::new(&self.python, o.args(&ep))
    }

    fn readiness(&self) -> Readiness {
        Readiness::ReadyLine(Encap::Udp)
    }

    fn sender_end(&self, _: &Load) -> SenderEnd {
        SenderEnd::Terminate {
            after: Duration::ZERO,
        }
    }
}

/// `pgm-ping` and `pgm-ping --reflect` (`--quiet`): pings on `port`, answers on `port + 1`
/// (the second group).
#[derive(Debug, Clone)]
pub struct PgmPing {
    /// `pgm-ping`.
    pub program: PathBuf,
    /// `--udp`: plain UDP multicast sockets instead of raw PGM.
    pub udp: bool,
    /// `--spin`.
    pub spin: bool,
    /// `--busy-poll`, `None` for the tool's default.
    pub busy_poll: Option<String>,
}

impl PgmPing {
    /// `pgm-ping` in `role` on `host`, stopping after `max_secs` in any case.
    pub fn cmd(&self, host: &Host, port: u16, max_secs: f64, role: PingRole) -> Cmd {
        let scheme = if self.udp { "udp" } else { "pgm" };
        let o = PingOpts {
            quiet: true,
            udp: self.udp,
            spin: self.spin,
            busy_poll: self.busy_poll.clone(),
            role,
            max_secs,
        };
        let args = o.args(
            &endpoint_of(scheme, host, GROUP, port),
            &endpoint_of(scheme, host, GROUP2, port + 1),
        );
        Cmd::new(&self.program, args)
    }
}
