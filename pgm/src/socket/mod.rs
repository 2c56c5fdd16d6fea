//! Sockets an application reaches for: a sender or a receiver on a ZeroMQ-style endpoint, with
//! a background IO thread driving the sans-IO engine.
//!
//! ```text
//!  app thread(s)                      IO thread (one per socket)
//!  SendSocket::send ──► tx queue ──►  Source::send ─► poll_transmit ─► Transport::send_to
//!  RecvSocket::recv ◄── rx queue ◄──  Receiver::poll_event ◄─ handle_packet ◄─ Transport::recv
//!            (Mutex + Condvar; a mio Waker wakes the IO thread)
//! ```
//!
//! The IO thread owns the engine and the OS sockets and runs a mio loop: it waits until the
//! engine's next deadline, a packet, or the application; drains the sockets; runs the timers;
//! moves queued application data into the engine until it pushes back; sends everything the
//! engine emits; and hands events to the application. Only this layer reads the clock
//! ([`Clock`]).
//!
//! The constructors here take a ready [`Transport`](crate::transport::Transport). The `epgm`
//! crate has the ones most applications want: `epgm::open_sender("epgm://lo;239.192.0.1:7500",
//! &opts)` opens UDP for `epgm://` and raw IP for `pgm://`.

mod api;
mod clock;
mod driver;
mod endpoint;
#[cfg(feature = "tokio")]
pub mod tokio;

use std::{net::IpAddr, time::Duration};

use rand::{rngs::OsRng, RngCore};

pub use self::{
    api::{RecvMonitor, RecvSocket, SendMonitor, SendSocket},
    clock::Clock,
    endpoint::{Endpoint, EndpointError, EndpointSpec},
};
use crate::{
    config::{
        Congestion, FecConfig, History, JoinPolicy, Mtu, NakTiming, ReceiverConfig, ReceiverLimits,
        RepairBudget, SourceConfig,
    },
    receiver::{PeerStats, ReceiverStats},
    source::SourceStats,
    transport::{TransportConfig, TransportError, TransportStats},
    wire::{Gsi, Tsi},
};

/// Whether a transport is opened for a sender or a receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// A PGM source: sends ODATA, answers NAKs with NCF and RDATA.
    #[default]
    Sender,
    /// A PGM receiver: delivers data in order, NAKs what is missing.
    Receiver,
}

/// The NAK and SPM timing.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum NakProfile {
    /// Millisecond repairs for a LAN ([`NakTiming::LAN`]) and millisecond heartbeat SPMs.
    #[default]
    Lan,
    /// OpenPGM/libzmq timing: [`NakTiming::OPENPGM`] on receivers, OpenPGM's SPM heartbeat
    /// and ambient intervals on senders ([`SourceConfig::with_openpgm_spm`]).
    OpenPgm,
    /// Explicit receiver NAK intervals (senders use the LAN SPM schedule).
    Custom(NakTiming),
}

/// What a socket's protocol engine is configured with (see [`SourceConfig`] and
/// [`ReceiverConfig`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineOptions {
    /// Sender rate limit in bits/s over everything sent, IP and UDP headers included (like
    /// OpenPGM's TXW_MAX_RTE); `None` sends as fast as the host allows.
    pub rate: Option<u64>,
    /// Largest IP datagram (OpenPGM's max TPDU / `PGM_MTU`), IP header included.
    pub tpdu: usize,
    /// Transmit/receive window in sequence numbers (TXW_SQNS / RXW_SQNS).
    pub window_sqns: Option<u32>,
    /// Transmit/receive window in payload bytes.
    pub window_bytes: Option<usize>,
    /// NAK and SPM timing.
    pub nak: NakProfile,
    /// Sender: what NAKs can make it send, in all and per NAK and NAKer (docs/reliability.md).
    pub repair: RepairBudget,
    /// Receiver: bounds on sessions, memory and NAKs, whatever the network sends
    /// (docs/reliability.md).
    pub receiver_limits: ReceiverLimits,
    /// Receiver: the longest a sqn stays in recovery before it is reported lost, instead of
    /// the NAK profile's ([`NakTiming::max_recovery`]).
    pub max_recovery: Option<Duration>,
    /// Receiver of an A/B session: how much later one path can deliver a packet than the
    /// other; a gap waits this long before its NAK back-off starts
    /// ([`ReceiverConfig::path_skew`], docs/dual-path.md). Default 0: the LAN back-off covers
    /// a skew of a few hundred µs by itself.
    pub path_skew: Duration,
    /// Receiver: where a newly seen session starts (RFC 3208 §9.4); default
    /// [`JoinPolicy::FirstSeen`], as OpenPGM.
    pub join: JoinPolicy,
    /// Receiver: a session silent this long is forgotten (its state freed, the application
    /// told); default 300 s, as OpenPGM. At least 1 s.
    pub peer_expiry: Duration,
    /// Sender: keep a history for late joiners and offer it with OPT_JOIN (docs/late-join.md):
    /// the transmit window holds what was sent within its age and/or bytes (the window's sqn
    /// bound still applies). `None` (default): the window as configured, no OPT_JOIN.
    pub history: Option<History>,
    /// Sender: a fixed GSI instead of the host/pid-derived one ([`default_gsi`]).
    pub gsi: Option<Gsi>,
    /// Sender: a fixed data-source port instead of a random one.
    pub sport: Option<u16>,
    /// Sender: FEC parity, pro-active and/or on demand (docs/fec.md); off by default, and
    /// ours-only: OpenPGM receivers must not be fed parity.
    pub fec: Option<FecConfig>,
    /// Receiver: use the parity a source advertises (decode groups, and ask for parity with
    /// parity NAKs when the source offers it on demand); off by default.
    pub fec_receive: bool,
    /// Sender and receiver: congestion control (docs/congestion.md); off by default. A
    /// PGMCC receiver names itself by its transport's local address.
    pub congestion: Congestion,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            rate: None,
            tpdu: 1500,
            window_sqns: None,
            window_bytes: None,
            nak: NakProfile::Lan,
            repair: RepairBudget::default(),
            receiver_limits: ReceiverLimits::default(),
            max_recovery: None,
            path_skew: Duration::ZERO,
            join: JoinPolicy::FirstSeen,
            history: None,
            peer_expiry: Duration::from_mins(5),
            gsi: None,
            sport: None,
            fec: None,
            fec_receive: false,
            congestion: Congestion::None,
        }
    }
}

/// The options of the multicast sockets, whatever the encapsulation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MulticastOptions {
    /// IP_MULTICAST_TTL (libzmq's default is 1).
    pub hops: u32,
    /// IP_MULTICAST_LOOP; always on when the interface is a loopback one.
    pub multicast_loop: bool,
    /// IP_TOS (OpenPGM and libzmq use 0xB8; 0 leaves the system default).
    pub tos: u32,
    /// SO_RCVBUF to ask for (the kernel caps it at `net.core.rmem_max`).
    pub rcvbuf: usize,
    /// SO_SNDBUF to ask for (capped at `net.core.wmem_max`).
    pub sndbuf: usize,
    /// Receiver: source-specific multicast, (S, G) joins for these senders' addresses
    /// instead of (*, G); packets from other sources never reach the engine. Empty (the
    /// default): any source.
    pub sources: Vec<IpAddr>,
    /// A/B sessions (docs/dual-path.md): a second path for the same session, its own group
    /// (and possibly interface; the same port). A sender sends everything for the group on
    /// both paths; a receiver joins both and merges them. `None` (the default): one path.
    pub second_path: Option<Endpoint>,
}

impl Default for MulticastOptions {
    fn default() -> Self {
        MulticastOptions {
            hops: 1,
            multicast_loop: false,
            tos: 0,
            rcvbuf: 4 << 20,
            sndbuf: 4 << 20,
            sources: Vec::new(),
            second_path: None,
        }
    }
}

/// How the socket's driver hands data between the application and the engine.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DriverOptions {
    /// How long a closed sender keeps answering NAKs after its last packet went out.
    pub linger: Duration,
    /// Bytes the application may queue ahead of the IO thread before `send` blocks.
    pub send_queue: usize,
    /// Bytes of received data held for the application before the IO thread stops reading
    /// (the kernel then drops, and the data is NAKed or lost).
    pub recv_queue: usize,
    /// Busy-poll for latency: the IO thread never sleeps in `epoll_wait` (it polls the sockets
    /// with non-blocking `recvmmsg` in a loop), and application threads waiting in `recv`,
    /// `send` or `flush` spin instead of blocking. It takes two thread wake-ups out of every
    /// message's path, and costs a full core per IO thread for as long as the socket is open,
    /// plus a core per waiting application thread: use it only with spare cores.
    pub busy_poll: bool,
    /// A blocking receive with nothing ready polls the sockets (non-blocking `recvmmsg`) for
    /// up to this long before it sleeps. At high packet rates the next packet is usually a
    /// few microseconds away, and every sleep costs a wake-up that the *sending* host pays
    /// in its softirq (about 10 µs on a VM, where it is an IPI); polling 5 µs cut the CPU per
    /// message of a sender and two receivers by about a quarter on a veth LAN. It costs at
    /// most this much CPU per sleep. Zero sleeps at once.
    pub spin_before_sleep: Duration,
}

impl Default for DriverOptions {
    fn default() -> Self {
        DriverOptions {
            linger: Duration::from_secs(2),
            send_queue: 1 << 20,
            recv_queue: 64 << 20,
            busy_poll: false,
            spin_before_sleep: Duration::from_micros(5),
        }
    }
}

/// Socket options, in three parts by the layer they configure: the protocol engine, the
/// multicast sockets, the driver. Build with [`SocketOptions::default`] and the `with_*`
/// methods, or set the fields. (Options of one encapsulation, such as EPGM's UDP GSO, belong
/// to the crate that opens it.)
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SocketOptions {
    /// The protocol engine.
    pub engine: EngineOptions,
    /// The multicast sockets.
    pub multicast: MulticastOptions,
    /// The hand-off between the application and the engine.
    pub driver: DriverOptions,
}

impl SocketOptions {
    /// Sets [`EngineOptions::rate`] (bits/s).
    #[must_use]
    pub fn with_rate(mut self, bits_per_sec: Option<u64>) -> Self {
        self.engine.rate = bits_per_sec;
        self
    }
    /// Sets [`EngineOptions::tpdu`].
    #[must_use]
    pub fn with_tpdu(mut self, tpdu: usize) -> Self {
        self.engine.tpdu = tpdu;
        self
    }
    /// Sets [`EngineOptions::window_sqns`].
    #[must_use]
    pub fn with_window_sqns(mut self, sqns: u32) -> Self {
        self.engine.window_sqns = Some(sqns);
        self
    }
    /// Sets [`EngineOptions::window_bytes`].
    #[must_use]
    pub fn with_window_bytes(mut self, bytes: usize) -> Self {
        self.engine.window_bytes = Some(bytes);
        self
    }
    /// Sets [`EngineOptions::nak`].
    #[must_use]
    pub fn with_nak(mut self, nak: NakProfile) -> Self {
        self.engine.nak = nak;
        self
    }
    /// Sets [`EngineOptions::repair`].
    #[must_use]
    pub fn with_repair(mut self, repair: RepairBudget) -> Self {
        self.engine.repair = repair;
        self
    }
    /// Sets [`EngineOptions::receiver_limits`].
    #[must_use]
    pub fn with_receiver_limits(mut self, limits: ReceiverLimits) -> Self {
        self.engine.receiver_limits = limits;
        self
    }
    /// Sets [`EngineOptions::max_recovery`].
    #[must_use]
    pub fn with_max_recovery(mut self, max: Duration) -> Self {
        self.engine.max_recovery = Some(max);
        self
    }
    /// Sets [`EngineOptions::path_skew`].
    #[must_use]
    pub fn with_path_skew(mut self, skew: Duration) -> Self {
        self.engine.path_skew = skew;
        self
    }
    /// Sets [`EngineOptions::join`].
    #[must_use]
    pub fn with_join(mut self, join: JoinPolicy) -> Self {
        self.engine.join = join;
        self
    }
    /// Sets [`EngineOptions::history`].
    #[must_use]
    pub fn with_history(mut self, history: Option<History>) -> Self {
        self.engine.history = history;
        self
    }
    /// Sets [`EngineOptions::peer_expiry`].
    #[must_use]
    pub fn with_peer_expiry(mut self, expiry: Duration) -> Self {
        self.engine.peer_expiry = expiry;
        self
    }
    /// Sets [`EngineOptions::fec`].
    #[must_use]
    pub fn with_fec(mut self, fec: Option<FecConfig>) -> Self {
        self.engine.fec = fec;
        self
    }
    /// Sets [`EngineOptions::fec_receive`].
    #[must_use]
    pub fn with_fec_receive(mut self, on: bool) -> Self {
        self.engine.fec_receive = on;
        self
    }
    /// Sets [`EngineOptions::congestion`].
    #[must_use]
    pub fn with_congestion(mut self, congestion: Congestion) -> Self {
        self.engine.congestion = congestion;
        self
    }
    /// Sets [`EngineOptions::gsi`].
    #[must_use]
    pub fn with_gsi(mut self, gsi: Gsi) -> Self {
        self.engine.gsi = Some(gsi);
        self
    }
    /// Sets [`MulticastOptions::sources`] (source-specific multicast).
    #[must_use]
    pub fn with_sources(mut self, sources: Vec<IpAddr>) -> Self {
        self.multicast.sources = sources;
        self
    }
    /// Sets [`MulticastOptions::second_path`]: an A/B session also on `path`
    /// (docs/dual-path.md).
    #[must_use]
    pub fn with_second_path(mut self, path: Endpoint) -> Self {
        self.multicast.second_path = Some(path);
        self
    }
    /// Sets [`MulticastOptions::hops`].
    #[must_use]
    pub fn with_hops(mut self, hops: u32) -> Self {
        self.multicast.hops = hops;
        self
    }
    /// Sets [`MulticastOptions::multicast_loop`].
    #[must_use]
    pub fn with_multicast_loop(mut self, on: bool) -> Self {
        self.multicast.multicast_loop = on;
        self
    }
    /// Sets [`MulticastOptions::tos`].
    #[must_use]
    pub fn with_tos(mut self, tos: u32) -> Self {
        self.multicast.tos = tos;
        self
    }
    /// Sets [`MulticastOptions::rcvbuf`] and [`MulticastOptions::sndbuf`].
    #[must_use]
    pub fn with_buffers(mut self, rcvbuf: usize, sndbuf: usize) -> Self {
        self.multicast.rcvbuf = rcvbuf;
        self.multicast.sndbuf = sndbuf;
        self
    }
    /// Sets [`DriverOptions::linger`].
    #[must_use]
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.driver.linger = linger;
        self
    }
    /// Sets [`DriverOptions::busy_poll`].
    #[must_use]
    pub fn with_busy_poll(mut self, on: bool) -> Self {
        self.driver.busy_poll = on;
        self
    }
    /// Sets [`DriverOptions::spin_before_sleep`].
    #[must_use]
    pub fn with_spin_before_sleep(mut self, spin: Duration) -> Self {
        self.driver.spin_before_sleep = spin;
        self
    }

    /// The transport settings for `endpoint` in `role`.
    pub fn transport_config(&self, endpoint: &Endpoint, role: Role) -> TransportConfig {
        let m = &self.multicast;
        TransportConfig {
            iface: endpoint.interface.clone(),
            group: endpoint.group,
            port: endpoint.port,
            join_group: role == Role::Receiver,
            receive_unicast: role == Role::Sender,
            hops: m.hops,
            multicast_loop: m.multicast_loop,
            tos: m.tos,
            rcvbuf: m.rcvbuf,
            sndbuf: m.sndbuf,
            // Source-specific joins are a receiver's; a sender joins nothing.
            sources: if role == Role::Receiver {
                m.sources.clone()
            } else {
                Vec::new()
            },
        }
    }

    /// The second path of a session on `first`, checked: of the group's address family,
    /// another group than the first path's (the paths are told apart by group), and the same
    /// port (the port is the session's data-destination port, in every packet's header: a
    /// receiver of the second path alone must be opened on it). `None` for a single-path session.
    pub fn second_path(&self, first: &Endpoint) -> Result<Option<&Endpoint>, OpenError> {
        let Some(second) = &self.multicast.second_path else {
            return Ok(None);
        };
        if second.group.is_ipv6() != first.group.is_ipv6() {
            return Err(OpenError::Option(format!(
                "second path {second}: group {} is not of the address family of the first \
                 path's group {}",
                second.group, first.group
            )));
        }
        if second.group == first.group {
            return Err(OpenError::Option(format!(
                "second path {second}: the same group as the first path {first}; give the \
                 second path its own group"
            )));
        }
        if second.port != first.port {
            return Err(OpenError::Option(format!(
                "second path {second}: port {} differs from the first path's {}; the port is \
                 the session's, the same on both paths (give the second path its own group)",
                second.port, first.port
            )));
        }
        Ok(Some(second))
    }

    /// The transport settings of the second path of a session (see
    /// [`SocketOptions::second_path`]): as the first path's, except that a sender receives
    /// nothing on it (NAKs go to the first path's NLA, which SPMs on both paths advertise).
    pub fn second_transport_config(&self, second: &Endpoint, role: Role) -> TransportConfig {
        TransportConfig {
            receive_unicast: false,
            ..self.transport_config(second, role)
        }
    }

    fn mtu(&self, ip_overhead: usize) -> Result<Mtu, OpenError> {
        let tpdu = self.engine.tpdu;
        // One byte of payload in a fragment at least; UDP/PGM lengths are 16-bit.
        let min = ip_overhead + 44 + 1;
        if tpdu < min || tpdu > usize::from(u16::MAX) {
            return Err(OpenError::Option(format!(
                "tpdu {tpdu} out of range {min}..=65535"
            )));
        }
        Ok(Mtu {
            mtu: tpdu,
            ip_overhead,
        })
    }

    /// The window in sqns, checked.
    fn window_sqns(&self) -> Result<Option<u32>, OpenError> {
        match self.engine.window_sqns {
            Some(sqns) if sqns == 0 || sqns >= 1 << 31 => {
                Err(OpenError::Option(format!("window of {sqns} sqns")))
            }
            w => Ok(w),
        }
    }

    /// The engine configuration of a sender on `endpoint`, sending from `nla`.
    pub fn source_config(
        &self,
        endpoint: &Endpoint,
        nla: IpAddr,
        ip_overhead: usize,
    ) -> Result<SourceConfig, OpenError> {
        let e = &self.engine;
        let sport = e.sport.unwrap_or_else(|| random_sport(endpoint.port));
        let tsi = Tsi::new(e.gsi.unwrap_or_else(default_gsi), sport);
        let mut cfg = SourceConfig::new(tsi, endpoint.port, endpoint.group, nla);
        cfg.second_group = self.second_path(endpoint)?.map(|p| p.group);
        if e.nak == NakProfile::OpenPgm {
            cfg = cfg.with_openpgm_spm();
        }
        cfg.mtu = self.mtu(ip_overhead)?;
        if let Some(bits) = e.rate {
            if bits < 8 * e.tpdu as u64 {
                return Err(OpenError::Option(format!(
                    "rate {bits} bit/s is below one tpdu ({} bytes) per second",
                    e.tpdu
                )));
            }
            cfg.rate = Some(bits / 8);
        }
        if let Some(sqns) = self.window_sqns()? {
            cfg.txw_sqns = sqns;
        }
        if let Some(bytes) = e.window_bytes {
            cfg.txw_max_bytes = bytes.max(e.tpdu);
        }
        if let Some(h) = e.history {
            if h.age.is_none() && h.bytes.is_none() {
                return Err(OpenError::Option(
                    "history bounded by neither age nor bytes".into(),
                ));
            }
            if let Some(age) = h.age {
                if !(Duration::from_millis(1)..=Duration::from_hours(24)).contains(&age) {
                    return Err(OpenError::Option(format!(
                        "history of {age:?} out of range 1 ms..=24 h"
                    )));
                }
            }
            if let Some(bytes) = h.bytes {
                if bytes < e.tpdu {
                    return Err(OpenError::Option(format!(
                        "history of {bytes} bytes is less than one tpdu ({})",
                        e.tpdu
                    )));
                }
                cfg.txw_max_bytes = bytes;
            }
            cfg.txw_secs = h.age;
            cfg.offer_join = true;
        }
        let r = e.repair;
        if !(0.01..=0.9).contains(&r.share) {
            return Err(OpenError::Option(format!(
                "repair share {} out of range 0.01..=0.9",
                r.share
            )));
        }
        if !(1..=63).contains(&r.per_nak) || r.per_naker_rate == 0 || r.per_naker_burst == 0 {
            return Err(OpenError::Option(format!(
                "repair bounds out of range: {} sqns per NAK (1..=63), {} sqns/s and a burst \
                 of {} per NAKer (at least 1)",
                r.per_nak, r.per_naker_rate, r.per_naker_burst
            )));
        }
        cfg.repair = r;
        cfg.fec = e.fec;
        cfg.congestion = e.congestion;
        cfg.rng_seed = OsRng.next_u64();
        Ok(cfg)
    }

    /// The engine configuration of a receiver on `endpoint`.
    pub fn receiver_config(&self, endpoint: &Endpoint) -> Result<ReceiverConfig, OpenError> {
        let e = &self.engine;
        let mut cfg = ReceiverConfig::new(endpoint.port);
        cfg.nak = match e.nak {
            NakProfile::Lan => NakTiming::LAN,
            NakProfile::OpenPgm => NakTiming::OPENPGM,
            NakProfile::Custom(t) => t,
        };
        if let Some(sqns) = self.window_sqns()? {
            cfg.rxw_sqns = sqns;
        }
        if let Some(bytes) = e.window_bytes {
            cfg.rxw_max_bytes = bytes.max(e.tpdu);
        }
        let l = e.receiver_limits;
        if l.max_peers == 0 || l.max_total_bytes < e.tpdu || l.probation_sqns == 0 {
            return Err(OpenError::Option(format!(
                "receiver limits out of range: {} peers, {} bytes of memory (at least one \
                 tpdu), {} probation sqns",
                l.max_peers, l.max_total_bytes, l.probation_sqns
            )));
        }
        cfg.limits = l;
        if let Some(max) = e.max_recovery {
            cfg.nak.max_recovery = max;
        }
        check_nak_timing(&cfg.nak)?;
        if e.path_skew > Duration::from_secs(10) {
            return Err(OpenError::Option(format!(
                "path skew {:?} out of range 0..=10 s",
                e.path_skew
            )));
        }
        cfg.path_skew = e.path_skew;
        if !(Duration::from_secs(1)..=Duration::from_hours(24)).contains(&e.peer_expiry) {
            return Err(OpenError::Option(format!(
                "peer expiry {:?} out of range 1 s..=24 h",
                e.peer_expiry
            )));
        }
        cfg.peer_expiry = e.peer_expiry;
        cfg.join = e.join;
        cfg.fec = e.fec_receive;
        cfg.congestion = e.congestion;
        // Receivers that lose the same packet must not back off in lock-step.
        cfg.rng_seed = OsRng.next_u64();
        Ok(cfg)
    }
}

/// Checks a receiver's NAK timing: every interval positive and at most a minute, the repeat
/// cap no shorter than the intervals it caps, a finite non-negative bias, a recovery deadline.
fn check_nak_timing(t: &NakTiming) -> Result<(), OpenError> {
    let minute = Duration::from_mins(1);
    let intervals = [
        ("NAK_BO_IVL", t.bo_ivl),
        ("NAK_RPT_IVL", t.rpt_ivl),
        ("NAK_RDATA_IVL", t.rdata_ivl),
        ("the repeat cap", t.max_ivl),
    ];
    for (name, ivl) in intervals {
        if ivl.is_zero() || ivl > minute {
            return Err(OpenError::Option(format!(
                "{name} {ivl:?} out of range (0, 60 s]"
            )));
        }
    }
    if t.max_ivl < t.rpt_ivl || t.max_ivl < t.rdata_ivl {
        return Err(OpenError::Option(format!(
            "the repeat cap {:?} is shorter than NAK_RPT_IVL {:?} or NAK_RDATA_IVL {:?}",
            t.max_ivl, t.rpt_ivl, t.rdata_ivl
        )));
    }
    if !t.bo_bias.is_finite() || t.bo_bias < 0.0 {
        return Err(OpenError::Option(format!(
            "NAK back-off bias {} must be finite and non-negative",
            t.bo_bias
        )));
    }
    if t.max_recovery.is_zero() {
        return Err(OpenError::Option("max recovery of 0 s".to_owned()));
    }
    Ok(())
}

/// A GSI stable for this host and process: bytes 0..4 are the FNV-1a hash of the host name,
/// bytes 4..6 the low 16 bits of the process id, so two senders on one host differ (their TSIs
/// differ anyway by the random sport). OpenPGM uses MD5(hostname)[10..16]; any stable, unique
/// scheme interoperates.
pub fn default_gsi() -> Gsi {
    let name = crate::sys::net::hostname();
    let hash = name.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let pid = std::process::id() as u16;
    let mut gsi = [0u8; 6];
    gsi[..4].copy_from_slice(&hash.to_be_bytes());
    gsi[4..].copy_from_slice(&pid.to_be_bytes());
    Gsi(gsi)
}

/// A random data-source port, never 0 and never `dport` (OpenPGM `pgm_bind3`).
pub fn random_sport(dport: u16) -> u16 {
    loop {
        let p = (OsRng.next_u32() & 0xffff) as u16;
        if p != 0 && p != dport {
            return p;
        }
    }
}

/// Why a socket could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The endpoint string is wrong.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The OS refused a socket or option.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// An option value is out of range.
    #[error("bad option: {0}")]
    Option(String),
    /// Creating the event loop or its thread failed.
    #[error("starting the IO thread: {0}")]
    Io(#[from] std::io::Error),
}

impl OpenError {
    /// True for mistakes in what the user asked for (endpoint, options, raw PGM without
    /// privilege), as opposed to OS failures; tools exit with status 2 for these.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            OpenError::Endpoint(_)
                | OpenError::Option(_)
                | OpenError::Transport(
                    TransportError::RawNeedsPrivilege
                        | TransportError::Family(..)
                        | TransportError::BadSource(_)
                        | TransportError::SourceFamily(..)
                )
        )
    }
}

/// Why a send failed. Nothing was queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The send queue is full (only from `try_send`).
    #[error("send queue full")]
    WouldBlock,
    /// The message is larger than the largest APDU.
    #[error("message of {len} bytes is larger than the maximum of {max}")]
    TooLarge {
        /// The message length.
        len: usize,
        /// The largest message this socket sends.
        max: usize,
    },
    /// The socket is closed.
    #[error("socket is closed")]
    Closed,
    /// The IO thread stopped on an error.
    #[error("IO thread failed: {0}")]
    Failed(String),
}

/// Why a receive returned no event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// Nothing is queued (only from `try_recv`).
    #[error("no event queued")]
    Empty,
    /// Nothing arrived within the timeout.
    #[error("timed out")]
    Timeout,
    /// The socket is closed.
    #[error("socket is closed")]
    Closed,
    /// The IO thread stopped on an error.
    #[error("IO thread failed: {0}")]
    Failed(String),
}

/// Counters of the IO layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IoStats {
    /// Packets handed to the transport successfully.
    pub packets_sent: u64,
    /// Bytes of those packets (PGM bytes, no IP/UDP headers).
    pub bytes_sent: u64,
    /// Sends that failed with an error other than "would block" (the packet is dropped).
    pub send_errors: u64,
    /// Sends that found the socket buffer full (retried when writable).
    pub send_would_block: u64,
    /// Packets received and handed to the engine.
    pub packets_received: u64,
    /// Bytes of those packets.
    pub bytes_received: u64,
    /// Receive calls that failed.
    pub recv_errors: u64,
    /// Turns of the event loop.
    pub loop_turns: u64,
    /// Of those, turns the IO thread ran (each one a thread wake-up; the rest ran inline on
    /// application threads).
    pub io_turns: u64,
    /// Batch send calls (`sendmmsg` for the transports here): `packets_sent / send_calls`
    /// is the batching achieved.
    pub send_calls: u64,
    /// Batch receive calls (`recvmmsg`), including the last one of each read that found the
    /// sockets empty.
    pub recv_calls: u64,
    /// Transport drop counters.
    pub transport: TransportStats,
}

/// Counters of a [`SendSocket`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendStats {
    /// The engine's counters.
    pub engine: SourceStats,
    /// The IO layer's counters.
    pub io: IoStats,
    /// The last send error, if any.
    pub last_send_error: Option<String>,
    /// Messages the application queued that the engine has not taken yet, now (the engine's
    /// own backlog is [`SourceStats::queued_packets`]).
    pub app_queued_messages: u64,
    /// Their bytes, now (against `DriverOptions::send_queue`).
    pub app_queued_bytes: u64,
}

/// Counters of a [`RecvSocket`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecvStats {
    /// The engine's counters.
    pub engine: ReceiverStats,
    /// The IO layer's counters.
    pub io: IoStats,
    /// The last send error (NAKs, SPMRs), if any.
    pub last_send_error: Option<String>,
    /// Events published to the application and not taken yet, now.
    pub app_queued_events: u64,
    /// Bytes held for the application, now (against `DriverOptions::recv_queue`; taken
    /// batches count until they are used up).
    pub app_queued_bytes: u64,
    /// Reading is paused now because the application's receive queue is full (the kernel
    /// then drops, and the data is NAKed or lost).
    pub reading_paused: bool,
}

/// One sender (TSI) as a [`RecvSocket`] sees it: see [`RecvMonitor::peers`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerReport {
    /// The session.
    pub tsi: Tsi,
    /// Its counters and window fill.
    pub stats: PeerStats,
    /// Time since a packet was last heard from it.
    pub idle: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsi_is_stable_and_sport_avoids_dport() {
        assert_eq!(default_gsi(), default_gsi());
        let pid = (std::process::id() as u16).to_be_bytes();
        assert_eq!(default_gsi().0[4..], pid);
        for _ in 0..1000 {
            let p = random_sport(7);
            assert!(p != 0 && p != 7);
        }
    }

    #[test]
    fn options_map_onto_engine_configs() {
        let e = Endpoint::parse("lo;239.192.3.4:7501").unwrap();
        let o = SocketOptions::default()
            .with_rate(Some(80_000_000))
            .with_window_sqns(500)
            .with_nak(NakProfile::OpenPgm);
        let s = o.source_config(&e, e.interface.addr, 28).unwrap();
        assert_eq!(s.rate, Some(10_000_000));
        assert_eq!(s.txw_sqns, 500);
        assert_eq!(s.mtu, Mtu::UDP_1500);
        assert_eq!(s.dport, 7501);
        assert_ne!(s.tsi.sport, 7501);
        assert_eq!(s.spm_ambient, Duration::from_secs(30));
        let r = o.receiver_config(&e).unwrap();
        assert_eq!(r.nak, NakTiming::OPENPGM);
        assert_eq!(r.rxw_sqns, 500);
        let bad = SocketOptions::default().with_tpdu(60);
        assert!(matches!(
            bad.source_config(&e, e.interface.addr, 28),
            Err(OpenError::Option(_))
        ));
        let slow = SocketOptions::default().with_rate(Some(1000));
        assert!(slow.source_config(&e, e.interface.addr, 28).is_err());
    }

    #[test]
    fn a_history_bounds_the_window_and_is_offered() {
        let e = Endpoint::parse("lo;239.192.3.4:7501").unwrap();
        let plain = SocketOptions::default()
            .source_config(&e, e.interface.addr, 28)
            .unwrap();
        assert_eq!((plain.txw_secs, plain.offer_join), (None, false));
        let h = History {
            age: Some(Duration::from_secs(5)),
            bytes: Some(16 << 20),
        };
        let s = SocketOptions::default()
            .with_history(Some(h))
            .source_config(&e, e.interface.addr, 28)
            .unwrap();
        assert_eq!(s.txw_secs, Some(Duration::from_secs(5)));
        assert_eq!((s.txw_max_bytes, s.offer_join), (16 << 20, true));
        for bad in [
            History::default(),
            History {
                age: Some(Duration::ZERO),
                bytes: None,
            },
            History {
                age: Some(Duration::from_hours(25)),
                bytes: None,
            },
            History {
                age: None,
                bytes: Some(100),
            },
        ] {
            let r = SocketOptions::default()
                .with_history(Some(bad))
                .source_config(&e, e.interface.addr, 28);
            assert!(matches!(r, Err(OpenError::Option(_))), "{bad:?}");
        }
    }

    #[test]
    fn congestion_reaches_both_engines() {
        let e = Endpoint::parse("lo;239.192.3.4:7501").unwrap();
        let cc = Congestion::Pgmcc(crate::PgmccConfig::default());
        let o = SocketOptions::default().with_congestion(cc);
        let s = o.source_config(&e, e.interface.addr, 28).unwrap();
        assert_eq!(s.congestion, cc);
        // OPT_LENGTH + OPT_PGMCC_DATA (IPv4): 20 bytes less per packet, as OpenPGM.
        assert_eq!(s.max_tsdu(), Mtu::UDP_1500.max_tsdu() - 20);
        assert_eq!(o.receiver_config(&e).unwrap().congestion, cc);
        let off = SocketOptions::default().source_config(&e, e.interface.addr, 28);
        assert_eq!(off.unwrap().congestion, Congestion::None);
    }

    #[test]
    fn receiver_settings_reach_the_engine_and_are_checked() {
        let e = Endpoint::parse("lo;239.192.3.4:7501").unwrap();
        let d = SocketOptions::default().receiver_config(&e).unwrap();
        assert_eq!(d.join, JoinPolicy::FirstSeen);
        assert_eq!(d.peer_expiry, Duration::from_mins(5));
        assert_eq!(d.nak, NakTiming::LAN);

        let timing = NakTiming {
            bo_ivl: Duration::from_millis(1),
            rpt_ivl: Duration::from_millis(3),
            rdata_ivl: Duration::from_millis(7),
            ..NakTiming::LAN
        };
        let o = SocketOptions::default()
            .with_join(JoinPolicy::AdvertisedTrail)
            .with_peer_expiry(Duration::from_secs(20))
            .with_nak(NakProfile::Custom(timing))
            .with_max_recovery(Duration::from_secs(3))
            .with_path_skew(Duration::from_millis(3));
        let r = o.receiver_config(&e).unwrap();
        assert_eq!(r.path_skew, Duration::from_millis(3));
        assert_eq!(r.join, JoinPolicy::AdvertisedTrail);
        assert_eq!(r.peer_expiry, Duration::from_secs(20));
        assert_eq!(r.nak.bo_ivl, Duration::from_millis(1));
        assert_eq!(r.nak.rdata_ivl, Duration::from_millis(7));
        assert_eq!(r.nak.max_recovery, Duration::from_secs(3));

        let bad = [
            o.clone().with_peer_expiry(Duration::from_millis(10)),
            o.clone().with_nak(NakProfile::Custom(NakTiming {
                rpt_ivl: Duration::ZERO,
                ..timing
            })),
            o.clone().with_nak(NakProfile::Custom(NakTiming {
                max_ivl: Duration::from_millis(2),
                ..timing
            })),
            o.clone().with_nak(NakProfile::Custom(NakTiming {
                bo_bias: f64::NAN,
                ..timing
            })),
            o.clone().with_max_recovery(Duration::ZERO),
            o.clone().with_path_skew(Duration::from_secs(11)),
        ];
        for b in bad {
            assert!(
                matches!(b.receiver_config(&e), Err(OpenError::Option(_))),
                "{:?}",
                b.engine
            );
        }
    }
}
