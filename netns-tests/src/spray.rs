//! A garbage sprayer for hardening tests (`pgm-spray` binary): run on a third host of a
//! [`crate::lan::Lan`], it learns a PGM session by listening to the group and then sends, at a
//! fixed rate per kind, packets no receiver or source should be disturbed by.
//!
//! Kinds ([`Kind`]):
//!
//! - `random`: random bytes (0..1400) — raw IP protocol 113 and UDP, to the group and unicast to
//!   every receiver.
//! - `truncated`: a valid ODATA/SPM/NAK of the session's TSI cut short (checksum of the whole
//!   packet), both encapsulations.
//! - `badsum`: ODATA of the session's TSI for sqns just ahead of the source (so accepting one
//!   would poison the window) with random payload and a wrong or absent (0) checksum.
//! - `badopts`: packets with a valid checksum and a broken option chain or length field: bad
//!   OPT_LENGTH, zero/overlong option lengths, a missing end bit, a short OPT_FRAGMENT, more
//!   than 16 options, an empty or misaligned OPT_NAK_LIST, a TSDU length that disagrees with the packet. Each one is checked to
//!   be rejected by `pgm::wire::PacketRepr::parse_verified` before it is sent (packets our own
//!   parser accepts are counted in `skipped_parseable` instead), so a receiver is only asked to
//!   reject what is malformed on the wire, never valid-looking forged data.
//! - `nak`: forged NAKs to the source (unicast, and multicast copies), sweeping every sqn from 0
//!   to just past the source's lead with OPT_NAK_LIST (63 sqns per NAK), plus NAKs far outside
//!   the window, NAKs naming a wrong source NLA or group, NAKs with another GSI, and SPMRs.
//! - `spm-foreign`: SPMs with random huge trail/lead, each from a new random TSI.
//! - `spm-foreign-jumps`: SPMs of one fixed foreign TSI whose lead jumps by up to 2^31 each time
//!   (a receiver may legitimately NAK and report loss for that TSI).
//! - `spm-own-huge`: SPMs with the session's own TSI, newer SPM sqns and trail/lead 2^30 ahead.
//!
//! Kinds that attack the protocol state (docs/reliability.md), each sent to the group:
//!
//! - `flood`: one ODATA from a fresh random TSI each (peer-table lockout).
//! - `gap`: fresh TSIs that open 65 000-sqn gaps, in turn: ODATA x then x + 65 535; ODATA then
//!   an SPM whose lead is 65 530 ahead; two in order (a confirmed session) then x + 65 000.
//! - `nak-window`: unicast NAKs to the source for the 63 sqns just behind its lead (a NAK storm
//!   anyone who sees one packet can send).
//! - `ncf-pin`: ten TSIs that confirm themselves, never send sqn 2, and keep sending data and
//!   an NCF for sqn 2 (memory pinned by NCFs).
//! - `own-leaps`: single packets of the session's own TSI, in turn: an SPM with the SPM sqn
//!   2^31 − 1 ahead naming the NLA ::1; an ODATA 2^30 ahead of the lead; an SPM with trail =
//!   lead = lead + 3 000.
//! - `parity`: parity RDATA of the session's own TSI for the next sqn (garbage as FEC parity).
//! - `parity-nak`: parity NAKs (RFC 3208 §11.3.1) to the source for one packet of the whole
//!   transmission group behind its lead, once its SPMs advertised OPT_PARITY_PRM (what a FEC
//!   receiver sends; it makes an on-demand source confirm with a parity NCF and send parity).
//!
//! NAKs and SPMRs that receivers send to the sprayer (for its forged sessions: it is their IP
//! source and their SPMs' NLA) are counted as `heard_naks` and `heard_spmrs`.
//!
//! And a one-shot: `--own-jump AT_SQN:JUMP` sends 3 SPMs with the session's TSI (newer SPM sqn,
//! genuine path NLA) advertising trail = lead = the source's lead + JUMP once the source's lead
//! reached AT_SQN: indistinguishable from the real source skipping JUMP sqns.
//!
//! The session's encapsulation (`--session raw|udp`) selects how it is sniffed and how forged
//! NAKs/SPMs are sent; `random`, `truncated`, `badsum` and `badopts` go out both ways.
//! On SIGTERM/SIGINT or after `--duration` the sprayer prints one JSON line with its counts.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4, UdpSocket};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pgm::wire::{
    checksum, Body, Data, Gsi, Nak, NakList, Options, PacketRepr, PacketType, SeqNo, Spm, Tsi,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::now;

/// IP protocol number of PGM.
pub const IPPROTO_PGM: i32 = 113;

/// What to spray.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Random bytes.
    Random,
    /// Valid packets cut short.
    Truncated,
    /// ODATA with wrong or absent checksums.
    BadChecksum,
    /// Valid checksum, broken options or lengths.
    BadOptions,
    /// Forged NAKs (and SPMRs) to the source.
    Nak,
    /// SPMs from fresh random TSIs with huge trail/lead.
    SpmForeign,
    /// SPMs from one foreign TSI with leads jumping by up to 2^31.
    SpmForeignJumps,
    /// SPMs with the session's own TSI, trail/lead 2^30 ahead.
    SpmOwnHuge,
    /// One ODATA per fresh TSI.
    Flood,
    /// Fresh TSIs that open 65 000-sqn gaps.
    Gap,
    /// NAKs for 63 sqns just behind the lead.
    NakWindow,
    /// Ten self-confirmed TSIs with a missing sqn kept "confirmed" by NCFs.
    NcfPin,
    /// Single far-reaching packets of the session's own TSI.
    OwnLeaps,
    /// Parity RDATA of the session's own TSI.
    Parity,
    /// Parity NAKs to the source for the last whole group.
    ParityNak,
}

impl Kind {
    /// All kinds, in CLI spelling.
    pub const ALL: [(&'static str, Kind); 15] = [
        ("random", Kind::Random),
        ("truncated", Kind::Truncated),
        ("badsum", Kind::BadChecksum),
        ("badopts", Kind::BadOptions),
        ("nak", Kind::Nak),
        ("spm-foreign", Kind::SpmForeign),
        ("spm-foreign-jumps", Kind::SpmForeignJumps),
        ("spm-own-huge", Kind::SpmOwnHuge),
        ("flood", Kind::Flood),
        ("gap", Kind::Gap),
        ("nak-window", Kind::NakWindow),
        ("ncf-pin", Kind::NcfPin),
        ("own-leaps", Kind::OwnLeaps),
        ("parity", Kind::Parity),
        ("parity-nak", Kind::ParityNak),
    ];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        Kind::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("?", |(n, _)| n)
    }

    /// True for kinds that need the session's TSI first.
    fn needs_session(self) -> bool {
        !matches!(
            self,
            Kind::Random
                | Kind::SpmForeign
                | Kind::SpmForeignJumps
                | Kind::Flood
                | Kind::Gap
                | Kind::NcfPin
        )
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Kind, String> {
        Kind::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, k)| *k)
            .ok_or_else(|| format!("unknown kind {s:?}"))
    }
}

/// Configuration of one spray run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The session's encapsulation: true for UDP (EPGM), false for raw protocol 113.
    pub session_udp: bool,
    /// Multicast group.
    pub group: Ipv4Addr,
    /// PGM data-destination port (and UDP port).
    pub port: u16,
    /// This host's address (multicast interface).
    pub local: Ipv4Addr,
    /// The source's address (only its packets are learned from).
    pub source: Ipv4Addr,
    /// Receivers' addresses (unicast targets).
    pub receivers: Vec<Ipv4Addr>,
    /// Kinds to spray.
    pub kinds: Vec<Kind>,
    /// Packets per second, per kind.
    pub pps: u32,
    /// Stop after this long.
    pub duration: Duration,
    /// PRNG seed.
    pub seed: u64,
    /// One-shot own-TSI SPM jump: (lead to wait for, jump).
    pub own_jump: Option<(u32, u32)>,
}

/// What the session looks like from the sniffed packets.
#[derive(Debug, Clone, Copy)]
struct Session {
    tsi: Tsi,
    lead: u32,
    trail: u32,
    spm_sqn: u32,
    seen_data: bool,
    /// Transmission group size from OPT_PARITY_PRM, once an SPM advertised one.
    tgs: Option<u32>,
}

/// xorshift64*: deterministic, dependency-free randomness for the garbage.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A random u32.
    pub fn u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Makes SIGTERM and SIGINT end the spray loop (which then prints its summary).
pub fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
}

struct Sockets {
    raw: Socket,
    udp: UdpSocket,
}

fn open_sockets(cfg: &Config) -> io::Result<Sockets> {
    let raw = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_PGM)))?;
    raw.set_multicast_if_v4(&cfg.local)?;
    raw.set_multicast_loop_v4(false)?;
    raw.set_multicast_ttl_v4(1)?;
    raw.join_multicast_v4(&cfg.group, &cfg.local)?;
    raw.set_nonblocking(true)?;
    raw.set_recv_buffer_size(4 << 20)?;

    let udp = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    udp.set_reuse_address(true)?;
    udp.set_reuse_port(true)?;
    udp.bind(&SockAddr::from(SocketAddrV4::new(
        Ipv4Addr::UNSPECIFIED,
        cfg.port,
    )))?;
    udp.set_multicast_if_v4(&cfg.local)?;
    udp.set_multicast_loop_v4(false)?;
    udp.set_multicast_ttl_v4(1)?;
    udp.join_multicast_v4(&cfg.group, &cfg.local)?;
    udp.set_nonblocking(true)?;
    udp.set_recv_buffer_size(4 << 20)?;
    Ok(Sockets {
        raw,
        udp: udp.into(),
    })
}

/// The sprayer's state.
pub struct Sprayer {
    cfg: Config,
    /// `None` only for [`Sprayer::offline`] (packet crafting without sending).
    socks: Option<Sockets>,
    rng: Rng,
    session: Option<Session>,
    /// Packets sent per kind.
    sent: BTreeMap<&'static str, u64>,
    sniffed: u64,
    skipped_parseable: u64,
    send_errors: u64,
    nak_cursor: u32,
    foreign_jump: (Tsi, u32, u32),
    own_jump_done: bool,
    /// Turn of the `gap` and `own-leaps` patterns.
    turn: usize,
    /// `ncf-pin` sessions and the next sqn of each (0: not started).
    pinned: Vec<(Tsi, u32)>,
    heard_naks: u64,
    heard_spmrs: u64,
}

impl Sprayer {
    /// Opens the sockets (needs CAP_NET_RAW) and joins the group.
    pub fn new(cfg: Config) -> io::Result<Sprayer> {
        let socks = open_sockets(&cfg)?;
        Ok(Sprayer::with_sockets(cfg, Some(socks)))
    }

    /// A sprayer without sockets: crafts packets, sends nothing (for unit tests).
    pub fn offline(cfg: Config) -> Sprayer {
        Sprayer::with_sockets(cfg, None)
    }

    fn with_sockets(cfg: Config, socks: Option<Sockets>) -> Sprayer {
        let mut rng = Rng::new(cfg.seed);
        let foreign = Tsi::new(Gsi(random_gsi(&mut rng)), rng.u32() as u16 | 1);
        Sprayer {
            cfg,
            socks,
            rng,
            session: None,
            sent: BTreeMap::new(),
            sniffed: 0,
            skipped_parseable: 0,
            send_errors: 0,
            nak_cursor: 0,
            foreign_jump: (foreign, 0, 0x1000),
            own_jump_done: false,
            turn: 0,
            pinned: Vec::new(),
            heard_naks: 0,
            heard_spmrs: 0,
        }
    }

    /// Sprays until the duration is over or a signal arrives; returns the summary.
    pub fn run(&mut self) -> serde_json::Value {
        let start = now();
        let deadline = start + self.cfg.duration;
        let kinds = self.cfg.kinds.clone();
        let interval = Duration::from_secs_f64(1.0 / f64::from(self.cfg.pps.max(1)));
        let mut next: Vec<Instant> = kinds.iter().map(|_| start).collect();
        while !STOP.load(Ordering::Relaxed) && now() < deadline {
            self.sniff();
            self.maybe_own_jump();
            let t = now();
            for (i, &kind) in kinds.iter().enumerate() {
                if t < next[i] {
                    continue;
                }
                // Do not catch up after a stall: keep the rate.
                next[i] = (next[i] + interval).max(t);
                if kind.needs_session() && self.session.is_none() {
                    continue;
                }
                self.spray(kind);
            }
            let soonest = next.iter().min().copied().unwrap_or(deadline);
            let wait = soonest
                .saturating_duration_since(now())
                .min(Duration::from_millis(2));
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        }
        self.summary()
    }

    fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "sent": self.sent,
            "total": self.sent.values().sum::<u64>(),
            "sniffed": self.sniffed,
            "session": self.session.map(|s| s.tsi.to_string()),
            "lead": self.session.map(|s| s.lead),
            "skipped_parseable": self.skipped_parseable,
            "send_errors": self.send_errors,
            "own_jump_done": self.own_jump_done,
            "heard_naks": self.heard_naks,
            "heard_spmrs": self.heard_spmrs,
        })
    }

    /// Learns the session (TSI, lead, trail, SPM sqn) from the source's downstream packets.
    fn sniff(&mut self) {
        let Some(socks) = self.socks.as_ref() else {
            return;
        };
        let mut buf = vec![0u8; 65536];
        let mut learned = Vec::new();
        for _ in 0..512 {
            let (src, n) = if self.cfg.session_udp {
                match socks.udp.recv_from(&mut buf) {
                    Ok((n, std::net::SocketAddr::V4(a))) => (*a.ip(), n),
                    Ok(_) => continue,
                    Err(_) => break,
                }
            } else {
                match (&socks.raw).read(&mut buf) {
                    Ok(n) if n >= 20 => {
                        let src = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
                        let ihl = usize::from(buf[0] & 0x0f) * 4;
                        if ihl > n {
                            continue;
                        }
                        buf.copy_within(ihl..n, 0);
                        (src, n - ihl)
                    }
                    Ok(_) => continue,
                    Err(_) => break,
                }
            };
            if src == self.cfg.source || self.cfg.receivers.contains(&src) {
                learned.push((src, buf[..n].to_vec()));
            }
        }
        for (src, pkt) in learned {
            if src == self.cfg.source {
                self.learn(&pkt);
            } else {
                self.heard(&pkt);
            }
        }
    }

    /// Counts what a receiver sent the sprayer's forged sessions: NAKs (unicast to it) and
    /// SPMRs (unicast, and the multicast copy).
    fn heard(&mut self, pkt: &[u8]) {
        let Ok(p) = PacketRepr::parse_verified(pkt) else {
            return;
        };
        if self.session.is_some_and(|s| s.tsi == p.tsi()) {
            return;
        }
        match p.body {
            Body::Nak(_) => self.heard_naks += 1,
            Body::Spmr => self.heard_spmrs += 1,
            _ => {}
        }
    }

    fn learn(&mut self, pkt: &[u8]) {
        let Ok(p) = PacketRepr::parse_verified(pkt) else {
            return;
        };
        if p.packet_type().is_upstream() || p.dport != self.cfg.port {
            return;
        }
        self.sniffed += 1;
        let tsi = p.tsi();
        let s = self.session.get_or_insert(Session {
            tsi,
            lead: 0,
            trail: 0,
            spm_sqn: 0,
            seen_data: false,
            tgs: None,
        });
        if s.tsi != tsi {
            // A new session of the source (restart): follow it.
            *s = Session {
                tsi,
                lead: 0,
                trail: 0,
                spm_sqn: 0,
                seen_data: false,
                tgs: None,
            };
        }
        let newer = |a: u32, b: u32| a != b && a.wrapping_sub(b) < 0x8000_0000;
        match p.body {
            Body::Odata(d) | Body::Rdata(d) => {
                if !s.seen_data || newer(d.sqn.0, s.lead) {
                    s.lead = d.sqn.0;
                }
                s.trail = d.trail.0;
                s.seen_data = true;
            }
            Body::Spm(spm) => {
                if newer(spm.spm_sqn.0, s.spm_sqn) {
                    s.spm_sqn = spm.spm_sqn.0;
                }
                if spm.lead.0 != u32::MAX && (!s.seen_data || newer(spm.lead.0, s.lead)) {
                    s.lead = spm.lead.0;
                    s.seen_data = true;
                }
                s.trail = spm.trail.0;
                if let Some(prm) = p.options.parity_prm {
                    s.tgs = Some(prm.tgs).filter(|k| k.is_power_of_two() && (2..=128).contains(k));
                }
            }
            _ => {}
        }
    }

    fn maybe_own_jump(&mut self) {
        let (Some((at, jump)), Some(s)) = (self.cfg.own_jump, self.session) else {
            return;
        };
        if self.own_jump_done || !s.seen_data || s.lead < at {
            return;
        }
        self.own_jump_done = true;
        let lead = s.lead.wrapping_add(jump);
        for i in 0..3u32 {
            let pkt = self.spm(
                s.tsi,
                s.spm_sqn.wrapping_add(1000 + i),
                lead,
                lead,
                self.cfg.source,
            );
            self.send_session(&pkt, self.cfg.group, "own-jump");
        }
        eprintln!(
            "pgm-spray: own-TSI SPM jump: lead {} -> trail = lead = {lead}",
            s.lead
        );
    }

    fn count(&mut self, what: &'static str) {
        *self.sent.entry(what).or_insert(0) += 1;
    }

    fn send_raw(&mut self, pkt: &[u8], dst: Ipv4Addr) -> bool {
        let addr = SockAddr::from(SocketAddrV4::new(dst, 0));
        let Some(socks) = self.socks.as_ref() else {
            return false;
        };
        if socks.raw.send_to(pkt, &addr).is_err() {
            self.send_errors += 1;
            return false;
        }
        true
    }

    fn send_udp(&mut self, pkt: &[u8], dst: Ipv4Addr) -> bool {
        let Some(socks) = self.socks.as_ref() else {
            return false;
        };
        if socks
            .udp
            .send_to(pkt, SocketAddrV4::new(dst, self.cfg.port))
            .is_err()
        {
            self.send_errors += 1;
            return false;
        }
        true
    }

    /// Sends in the session's encapsulation.
    fn send_session(&mut self, pkt: &[u8], dst: Ipv4Addr, what: &'static str) {
        let ok = if self.cfg.session_udp {
            self.send_udp(pkt, dst)
        } else {
            self.send_raw(pkt, dst)
        };
        if ok {
            self.count(what);
        }
    }

    /// Sends garbage both ways, to the group or one receiver.
    fn send_both(&mut self, pkt: &[u8], what: &'static str) {
        let n = self.cfg.receivers.len();
        let i = self.rng.below(n + 1);
        let dst = if i == n {
            self.cfg.group
        } else {
            self.cfg.receivers[i]
        };
        let a = self.send_raw(pkt, dst);
        let b = self.send_udp(pkt, dst);
        if a || b {
            self.count(what);
        }
    }

    fn spray(&mut self, kind: Kind) {
        match kind {
            Kind::Random => {
                let len = self.rng.below(1400);
                let mut pkt = self.rng.bytes(len);
                // Half of them look like PGM headers of the session port, to get past a dport
                // filter into the parser.
                if pkt.len() >= 16 && self.rng.below(2) == 0 {
                    pkt[2..4].copy_from_slice(&self.cfg.port.to_be_bytes());
                    pkt[4] = [0x00, 0x04, 0x05, 0x0a][self.rng.below(4)];
                }
                self.send_both(&pkt, "random");
            }
            Kind::Truncated => {
                let full = self.valid_packet();
                let cut = self.rng.below(full.len());
                self.send_both(&full[..cut], "truncated");
            }
            Kind::BadChecksum => {
                let pkt = self.bad_checksum();
                self.send_both(&pkt, "badsum");
            }
            Kind::BadOptions => {
                let variant = self.rng.below(BAD_OPTION_VARIANTS);
                let pkt = self.bad_options(variant);
                if PacketRepr::parse_verified(&pkt).is_ok() {
                    self.skipped_parseable += 1;
                    return;
                }
                self.send_both(&pkt, BAD_OPTION_NAMES[variant]);
            }
            Kind::Nak => self.forged_nak(),
            Kind::SpmForeign => {
                let tsi = Tsi::new(Gsi(random_gsi(&mut self.rng)), self.rng.u32() as u16);
                let lead = self.rng.u32();
                let trail = lead.wrapping_sub(self.rng.u32() >> 1);
                let spm_sqn = self.rng.u32();
                let pkt = self.spm(tsi, spm_sqn, trail, lead, self.cfg.local);
                self.send_session(&pkt, self.cfg.group, "spm-foreign");
            }
            Kind::SpmForeignJumps => {
                let (tsi, spm_sqn, lead) = self.foreign_jump;
                let lead = lead.wrapping_add(self.rng.u32() >> 1);
                let trail = lead.wrapping_sub(1 << 30);
                self.foreign_jump = (tsi, spm_sqn.wrapping_add(1), lead);
                let pkt = self.spm(tsi, spm_sqn, trail, lead, self.cfg.local);
                self.send_session(&pkt, self.cfg.group, "spm-foreign-jumps");
            }
            Kind::SpmOwnHuge => {
                let Some(s) = self.session else { return };
                let lead = s.lead.wrapping_add((1 << 30) + (self.rng.u32() >> 4));
                let trail = lead.wrapping_sub(self.rng.u32() >> 8);
                let spm_sqn = s.spm_sqn.wrapping_add(1 + self.rng.u32() % 1000);
                let pkt = self.spm(s.tsi, spm_sqn, trail, lead, self.cfg.source);
                self.send_session(&pkt, self.cfg.group, "spm-own-huge");
            }
            Kind::Flood => {
                let tsi = self.fresh_tsi();
                let sqn = self.rng.u32();
                let pkt = self.odata(tsi, sqn, sqn, 100);
                self.send_session(&pkt, self.cfg.group, "flood");
            }
            Kind::Gap => self.gap(),
            Kind::NakWindow => {
                let Some(s) = self.session else { return };
                let first = s.lead.wrapping_sub(62);
                let list: Vec<SeqNo> = (1..=62).map(|i| SeqNo(first.wrapping_add(i))).collect();
                let pkt = self.nak(s.tsi, first, self.cfg.source, self.cfg.group, &list);
                self.send_session(&pkt, self.cfg.source, "nak-window");
            }
            Kind::NcfPin => self.ncf_pin(),
            Kind::OwnLeaps => self.own_leap(),
            Kind::Parity => {
                let Some(s) = self.session else { return };
                let payload = self.rng.bytes(200);
                let pkt = PacketRepr {
                    sport: s.tsi.sport,
                    dport: self.cfg.port,
                    gsi: s.tsi.gsi,
                    parity: true,
                    var_pktlen: false,
                    body: Body::Rdata(Data {
                        sqn: SeqNo(s.lead.wrapping_add(1)),
                        trail: SeqNo(s.trail),
                    }),
                    options: Options::default(),
                    payload: &payload,
                }
                .to_vec();
                self.send_session(&pkt, self.cfg.group, "parity");
            }
            Kind::ParityNak => {
                let Some((s, k)) = self.session.and_then(|s| Some((s, s.tgs?))) else {
                    return;
                };
                // The last group the source has sent whole; `tg | (count − 1)` with count 1.
                let tg = (s.lead.wrapping_add(1) & !(k - 1)).wrapping_sub(k);
                let mut pkt = self.nak(s.tsi, tg, self.cfg.source, self.cfg.group, &[]);
                pkt = PacketRepr::parse(&pkt)
                    .map(|p| PacketRepr { parity: true, ..p }.to_vec())
                    .unwrap_or(pkt);
                self.send_session(&pkt, self.cfg.source, "parity-nak");
            }
        }
    }

    fn fresh_tsi(&mut self) -> Tsi {
        Tsi::new(Gsi(random_gsi(&mut self.rng)), self.rng.u32() as u16 | 1)
    }

    /// An ODATA of `tsi` with `len` random bytes.
    fn odata(&mut self, tsi: Tsi, sqn: u32, trail: u32, len: usize) -> Vec<u8> {
        let payload = self.rng.bytes(len);
        PacketRepr {
            sport: tsi.sport,
            dport: self.cfg.port,
            gsi: tsi.gsi,
            parity: false,
            var_pktlen: false,
            body: Body::Odata(Data {
                sqn: SeqNo(sqn),
                trail: SeqNo(trail),
            }),
            options: Options::default(),
            payload: &payload,
        }
        .to_vec()
    }

    /// One `gap` pattern (see the module docs), from a fresh TSI.
    fn gap(&mut self) {
        let tsi = self.fresh_tsi();
        let x = self.rng.u32() >> 1;
        let pkts = match self.turn % 3 {
            0 => vec![
                self.odata(tsi, x, x, 100),
                self.odata(tsi, x.wrapping_add(65_535), x, 100),
            ],
            1 => vec![
                self.odata(tsi, x, x, 100),
                self.spm(tsi, 1, x, x.wrapping_add(65_530), self.cfg.local),
            ],
            _ => vec![
                self.odata(tsi, x, x, 100),
                self.odata(tsi, x.wrapping_add(1), x, 100),
                self.odata(tsi, x.wrapping_add(65_000), x, 100),
            ],
        };
        self.turn += 1;
        for p in pkts {
            self.send_session(&p, self.cfg.group, "gap");
        }
    }

    /// One round of `ncf-pin`: each of ten sessions sends its next sqn (0 and 1 first, then
    /// from 3 on) and an NCF for the sqn 2 it never sends.
    fn ncf_pin(&mut self) {
        if self.pinned.is_empty() {
            self.pinned = (0..10).map(|_| (self.fresh_tsi(), 0)).collect();
        }
        for k in 0..self.pinned.len() {
            let (tsi, next) = self.pinned[k];
            let sqn = if next == 2 { 3 } else { next };
            let data = self.odata(tsi, sqn, 0, 1000);
            self.send_session(&data, self.cfg.group, "ncf-pin");
            self.pinned[k].1 = sqn + 1;
            if sqn >= 3 {
                let ncf = PacketRepr {
                    sport: tsi.sport,
                    dport: self.cfg.port,
                    gsi: tsi.gsi,
                    parity: false,
                    var_pktlen: false,
                    body: Body::Ncf(Nak {
                        sqn: SeqNo(2),
                        src_nla: IpAddr::V4(self.cfg.local),
                        grp_nla: IpAddr::V4(self.cfg.group),
                    }),
                    options: Options::default(),
                    payload: &[],
                }
                .to_vec();
                self.send_session(&ncf, self.cfg.group, "ncf-pin");
            }
        }
    }

    /// One `own-leaps` packet (see the module docs), in turn.
    fn own_leap(&mut self) {
        let Some(s) = self.session else { return };
        let pkt = match self.turn % 3 {
            0 => self.spm(
                s.tsi,
                s.spm_sqn.wrapping_add(0x7fff_ffff),
                s.trail,
                s.lead,
                std::net::Ipv6Addr::LOCALHOST,
            ),
            1 => self.odata(s.tsi, s.lead.wrapping_add(1 << 30), s.trail, 200),
            _ => {
                let lead = s.lead.wrapping_add(3000);
                self.spm(
                    s.tsi,
                    s.spm_sqn.wrapping_add(1),
                    lead,
                    lead,
                    self.cfg.source,
                )
            }
        };
        self.turn += 1;
        self.send_session(&pkt, self.cfg.group, "own-leaps");
    }

    fn session_or_random(&mut self) -> Session {
        self.session.unwrap_or_else(|| Session {
            tsi: Tsi::new(Gsi(random_gsi(&mut self.rng)), 4242),
            lead: 0,
            trail: 0,
            spm_sqn: 0,
            seen_data: false,
            tgs: None,
        })
    }

    /// An ODATA of the session for a sqn just ahead of its lead, with a random payload.
    fn ahead_odata(&mut self) -> Vec<u8> {
        let s = self.session_or_random();
        let sqn = s.lead.wrapping_add(1 + self.rng.u32() % 64);
        let len = 12 + self.rng.below(300);
        let payload = self.rng.bytes(len);
        PacketRepr {
            sport: s.tsi.sport,
            dport: self.cfg.port,
            gsi: s.tsi.gsi,
            parity: false,
            var_pktlen: false,
            body: Body::Odata(Data {
                sqn: SeqNo(sqn),
                trail: SeqNo(s.trail),
            }),
            options: Options::default(),
            payload: &payload,
        }
        .to_vec()
    }

    /// A valid ODATA, SPM or NAK of the session (to be truncated).
    fn valid_packet(&mut self) -> Vec<u8> {
        let s = self.session_or_random();
        match self.rng.below(3) {
            0 => self.ahead_odata(),
            1 => self.spm(
                s.tsi,
                s.spm_sqn.wrapping_add(1),
                s.trail,
                s.lead,
                self.cfg.source,
            ),
            _ => self.nak(s.tsi, s.lead, self.cfg.source, self.cfg.group, &[]),
        }
    }

    fn bad_checksum(&mut self) -> Vec<u8> {
        let mut pkt = self.ahead_odata();
        if self.rng.below(4) == 0 {
            // Absent checksum: not allowed on data packets.
            pkt[6..8].copy_from_slice(&[0, 0]);
        } else {
            let good = u16::from_be_bytes([pkt[6], pkt[7]]);
            let mut bad = good ^ (1 + (self.rng.u32() as u16 % 0xfffe));
            if bad == 0 {
                bad = good ^ 0x8000;
            }
            pkt[6..8].copy_from_slice(&bad.to_be_bytes());
        }
        pkt
    }

    fn spm(
        &self,
        tsi: Tsi,
        spm_sqn: u32,
        trail: u32,
        lead: u32,
        path: impl Into<IpAddr>,
    ) -> Vec<u8> {
        PacketRepr {
            sport: tsi.sport,
            dport: self.cfg.port,
            gsi: tsi.gsi,
            parity: false,
            var_pktlen: false,
            body: Body::Spm(Spm {
                spm_sqn: SeqNo(spm_sqn),
                trail: SeqNo(trail),
                lead: SeqNo(lead),
                path: path.into(),
            }),
            options: Options::default(),
            payload: &[],
        }
        .to_vec()
    }

    fn nak(&self, tsi: Tsi, sqn: u32, src: Ipv4Addr, grp: Ipv4Addr, list: &[SeqNo]) -> Vec<u8> {
        let mut options = Options::default();
        if !list.is_empty() {
            options.nak_list = Some(NakList::from_slice(list));
        }
        PacketRepr {
            sport: self.cfg.port,
            dport: tsi.sport,
            gsi: tsi.gsi,
            parity: false,
            var_pktlen: false,
            body: Body::Nak(Nak {
                sqn: SeqNo(sqn),
                src_nla: IpAddr::V4(src),
                grp_nla: IpAddr::V4(grp),
            }),
            options,
            payload: &[],
        }
        .to_vec()
    }

    /// One forged NAK (or SPMR): mostly the sweep over every sqn, sometimes an odd one.
    fn forged_nak(&mut self) {
        let Some(s) = self.session else { return };
        let (src, grp) = (self.cfg.source, self.cfg.group);
        let pkt = match self.rng.below(10) {
            // NAK far outside the window (ahead by ~2^31, and behind the trail).
            0 => self.nak(s.tsi, s.lead.wrapping_add(0x7fff_fff0), src, grp, &[]),
            1 => self.nak(s.tsi, s.trail.wrapping_sub(1000), src, grp, &[]),
            // Wrong source NLA / group: a source must ignore them.
            2 => self.nak(s.tsi, s.lead, self.cfg.local, grp, &[]),
            3 => self.nak(s.tsi, s.lead, src, Ipv4Addr::new(239, 1, 2, 3), &[]),
            // Another GSI for the source's port.
            4 => {
                let other = Tsi::new(Gsi(random_gsi(&mut self.rng)), s.tsi.sport);
                self.nak(other, s.lead, src, grp, &[])
            }
            // SPMR.
            5 => PacketRepr {
                sport: self.cfg.port,
                dport: s.tsi.sport,
                gsi: s.tsi.gsi,
                parity: false,
                var_pktlen: false,
                body: Body::Spmr,
                options: Options::default(),
                payload: &[],
            }
            .to_vec(),
            // The sweep: every sqn from 0 to a little past the lead, 63 per NAK.
            _ => {
                if self.nak_cursor > s.lead.saturating_add(64) {
                    self.nak_cursor = 0;
                }
                let first = self.nak_cursor;
                let list: Vec<SeqNo> = (1..=62).map(|i| SeqNo(first.wrapping_add(i))).collect();
                self.nak_cursor = first.wrapping_add(63);
                self.nak(s.tsi, first, src, grp, &list)
            }
        };
        self.send_session(&pkt, src, "nak");
        if self.rng.below(8) == 0 {
            // Multicast copy: receivers see "another receiver's" NAK.
            self.send_session(&pkt, grp, "nak-multicast");
        }
    }

    /// Variant `v` of a packet with a valid checksum and broken lengths (see
    /// [`BAD_OPTION_NAMES`]).
    fn bad_options(&mut self, v: usize) -> Vec<u8> {
        let s = self.session_or_random();
        let sqn = s.lead.wrapping_add(1 + self.rng.u32() % 64);
        let len = 12 + self.rng.below(200);
        let payload = self.rng.bytes(len);
        let mut opts: Vec<u8> = Vec::new();
        let mut ty = PacketType::Odata;
        let mut tsdu_delta: i16 = 0;
        match v {
            // OPT_LENGTH whose own length byte is not 4.
            0 => opts.extend_from_slice(&[0x00, 0x03, 0x00, 0x08, 0x8e, 0x04, 0x00, 0x00]),
            // OPT_LENGTH total shorter than OPT_LENGTH itself.
            1 => opts.extend_from_slice(&[0x00, 0x04, 0x00, 0x02, 0x8e, 0x04, 0x00, 0x00]),
            // OPT_LENGTH total far beyond the packet.
            2 => opts.extend_from_slice(&[0x00, 0x04, 0xff, 0xf0, 0x8e, 0x04, 0x00, 0x00]),
            // An option of length 0 (an endless loop for a naive walker), no end bit.
            3 => opts.extend_from_slice(&[0x00, 0x04, 0x00, 0x08, 0x0e, 0x00, 0x00, 0x00]),
            // An option whose length runs past the end of the packet.
            4 => opts.extend_from_slice(&[0x00, 0x04, 0x00, 0x08, 0x8e, 0xff, 0x00, 0x00]),
            // No end bit on the last option; the chain runs into the payload.
            5 => opts.extend_from_slice(&[0x00, 0x04, 0x00, 0x08, 0x0e, 0x04, 0x00, 0x00]),
            // OPT_FRAGMENT with length 4 instead of 16.
            6 => opts.extend_from_slice(&[0x00, 0x04, 0x00, 0x08, 0x81, 0x04, 0x00, 0x00]),
            // OPT_LENGTH total disagreeing with the options present (says 24, has 20).
            7 => {
                opts.extend_from_slice(&[0x00, 0x04, 0x00, 0x18, 0x81, 0x10, 0x00, 0x00]);
                opts.extend_from_slice(&sqn.to_be_bytes());
                opts.extend_from_slice(&0u32.to_be_bytes());
                opts.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            }
            // 20 options (RFC 3208 allows 16).
            8 => {
                opts.extend_from_slice(&[0x00, 0x04, 0x00, 4 + 20 * 4]);
                for i in 0..20 {
                    opts.extend_from_slice(&[if i == 19 { 0x8e } else { 0x0e }, 4, 0, 0]);
                }
            }
            // TSDU length one more / one less than the bytes present, no options.
            9 => tsdu_delta = 1,
            10 => tsdu_delta = -1,
            // NAK with an empty OPT_NAK_LIST (it must hold 1 to 62 sqns).
            11 => {
                ty = PacketType::Nak;
                opts.extend_from_slice(&[0x00, 0x04, 0x00, 0x08, 0x82, 0x04, 0x00, 0x00]);
            }
            // NAK with an OPT_NAK_LIST whose length is not 4 + 4n.
            _ => {
                ty = PacketType::Nak;
                opts.extend_from_slice(&[0x00, 0x04, 0x00, 0x0e, 0x82, 0x0a, 0x00, 0x00]);
                opts.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
            }
        }
        let mut pkt = Vec::with_capacity(64 + opts.len() + payload.len());
        let upstream = ty == PacketType::Nak;
        let (sport, dport) = if upstream {
            (self.cfg.port, s.tsi.sport)
        } else {
            (s.tsi.sport, self.cfg.port)
        };
        pkt.extend_from_slice(&sport.to_be_bytes());
        pkt.extend_from_slice(&dport.to_be_bytes());
        pkt.push(u8::from(ty));
        pkt.push(u8::from(!opts.is_empty())); // OPT_PRESENT
        pkt.extend_from_slice(&[0, 0]);
        pkt.extend_from_slice(&s.tsi.gsi.0);
        let body_payload: &[u8] = if upstream { &[] } else { &payload };
        let tsdu = (body_payload.len() as u16).saturating_add_signed(tsdu_delta);
        pkt.extend_from_slice(&tsdu.to_be_bytes());
        if upstream {
            pkt.extend_from_slice(&s.lead.to_be_bytes());
            pkt.extend_from_slice(&[0, 1, 0, 0]);
            pkt.extend_from_slice(&self.cfg.source.octets());
            pkt.extend_from_slice(&[0, 1, 0, 0]);
            pkt.extend_from_slice(&self.cfg.group.octets());
        } else {
            pkt.extend_from_slice(&sqn.to_be_bytes());
            pkt.extend_from_slice(&s.trail.to_be_bytes());
        }
        pkt.extend_from_slice(&opts);
        pkt.extend_from_slice(body_payload);
        checksum::fill(&mut pkt);
        pkt
    }
}

/// Number of `Sprayer::bad_options` variants.
pub const BAD_OPTION_VARIANTS: usize = 13;

/// Names of the `Sprayer::bad_options` variants, as counted in the summary.
pub const BAD_OPTION_NAMES: [&str; BAD_OPTION_VARIANTS] = [
    "badopts-optlen-len",
    "badopts-optlen-short",
    "badopts-optlen-long",
    "badopts-zero-len",
    "badopts-past-end",
    "badopts-no-end",
    "badopts-short-fragment",
    "badopts-total-mismatch",
    "badopts-20-options",
    "badopts-tsdu-plus1",
    "badopts-tsdu-minus1",
    "badopts-nak-list-empty",
    "badopts-nak-list-len",
];

fn random_gsi(rng: &mut Rng) -> [u8; 6] {
    let b = rng.bytes(6);
    [b[0], b[1], b[2], b[3], b[4], b[5]]
}

/// Parses the `pgm-spray` command line.
pub fn parse_args(args: &[String]) -> Result<Config, String> {
    let mut cfg = Config {
        session_udp: false,
        group: crate::lan::GROUP,
        port: 7500,
        local: Ipv4Addr::UNSPECIFIED,
        source: Ipv4Addr::UNSPECIFIED,
        receivers: Vec::new(),
        kinds: Vec::new(),
        pps: 100,
        duration: Duration::from_secs(100),
        seed: u64::from(std::process::id()),
        own_jump: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        let ip = |s: String| s.parse::<Ipv4Addr>().map_err(|e| format!("{s}: {e}"));
        match a.as_str() {
            "--session" => {
                cfg.session_udp = match val()?.as_str() {
                    "udp" | "epgm" => true,
                    "raw" | "pgm" => false,
                    o => return Err(format!("--session raw|udp, not {o}")),
                }
            }
            "--group" => cfg.group = ip(val()?)?,
            "--port" => cfg.port = val()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--local" => cfg.local = ip(val()?)?,
            "--source" => cfg.source = ip(val()?)?,
            "--receivers" => {
                cfg.receivers = val()?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| ip(s.to_owned()))
                    .collect::<Result<_, _>>()?;
            }
            "--kinds" => {
                cfg.kinds = val()?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
            }
            "--pps" => cfg.pps = val()?.parse().map_err(|e| format!("--pps: {e}"))?,
            "--duration" => {
                cfg.duration = Duration::from_secs_f64(
                    val()?.parse().map_err(|e| format!("--duration: {e}"))?,
                );
            }
            "--seed" => cfg.seed = val()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--own-jump" => {
                let v = val()?;
                let (at, jump) = v.split_once(':').ok_or("--own-jump AT_SQN:JUMP")?;
                cfg.own_jump = Some((
                    at.parse().map_err(|e| format!("--own-jump: {e}"))?,
                    jump.parse().map_err(|e| format!("--own-jump: {e}"))?,
                ));
            }
            o => return Err(format!("unknown argument {o}")),
        }
    }
    if cfg.local.is_unspecified() || cfg.source.is_unspecified() {
        return Err("--local and --source are required".to_owned());
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        parse_args(
            &[
                "--local", "10.1.1.3", "--source", "10.1.1.1", "--kinds", "badopts",
            ]
            .map(String::from),
        )
        .expect("args")
    }

    /// Every bad-options variant is rejected by our own parser (so the sprayer never has to
    /// skip one), and a valid ODATA of the same session parses.
    #[test]
    fn bad_option_variants_are_rejected_by_the_wire_parser() {
        let mut s = Sprayer::offline(cfg());
        for (v, name) in BAD_OPTION_NAMES.iter().enumerate() {
            for _ in 0..50 {
                let p = s.bad_options(v);
                assert!(
                    PacketRepr::parse_verified(&p).is_err(),
                    "variant {name} parses: {p:02x?}"
                );
            }
        }
        let ok = s.ahead_odata();
        assert!(PacketRepr::parse_verified(&ok).is_ok());
        let bad = s.bad_checksum();
        assert!(PacketRepr::parse_verified(&bad).is_err());
    }
}
