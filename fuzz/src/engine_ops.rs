//! The operation interpreter behind the `receiver` fuzz target, shared with the corpus replay
//! test (`pgm/tests/engine_fuzz_corpus.rs`, which includes this file by path), so CI replays the
//! corpus and the crash regressions with exactly the fuzzer's assertions on stable Rust.
//!
//! The input is a byte program. Its first 12 bytes (16 with an explicit base sqn) pick the
//! configurations (small windows, few peers, short timers, a rate-limited source), then each
//! step reads an opcode and its operands; a missing byte reads as 0, so every input is a valid
//! program. Steps:
//!
//! - packets built with `PacketRepr` from fuzz bytes (ODATA, RDATA, SPM, NCF, NAK/NNAK, SPMR),
//!   with sqns that follow a per-session stream (in order, with gaps, repeats, big jumps, near
//!   the u32 wrap, or relative to the source's window), sent to the receiver, the source or both;
//! - the same packets with fuzz bytes flipped, and raw byte blobs (checksum filled in or zeroed,
//!   so `cfg(fuzzing)` and normal builds take the same path);
//! - time advances (µs to minutes, or to the engines' next deadline), `handle_timeout`,
//!   `poll_transmit` drains (which must end) into two links, deliveries over those links (so the
//!   receiver sees the source's real ODATA/RDATA/SPMs and the source the receiver's NAKs and
//!   SPMRs, with losses), `poll_event` drains, `send` of APDUs of up to 70 000 bytes, `close`.
//!
//! After every step the memory bounds hold: receiver peers ≤ max_peers, its memory footprint ≤
//! max_total_bytes, window bytes ≤ peers × (rxw_max_bytes + 65 535), missing sqns ≤ peers ×
//! rxw_sqns; source TXW packets ≤ txw_sqns,
//! TXW bytes ≤ max(txw_max_bytes, one TSDU) (the packet just sent is always kept), bytes queued
//! ≤ max(send_buffer, max_apdu); the receiver's timer index agrees with a walk over its peers
//! (`Receiver::check_invariants`). At the end, 400 s of silence must empty the receiver (every peer
//! expired, nothing missing or buffered) and the source's send queue.

use std::{
    collections::VecDeque,
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use pgm::{
    time::Instant,
    wire::{
        checksum, Body, Data, Fragment, Gsi, Nak, NakList, Options, PacketRepr, SeqNo, Spm, Tsi,
    },
    Event, JoinPolicy, Mtu, NakTiming, Receiver, ReceiverConfig, ReceiverStats, Source,
    SourceConfig, SourceStats,
};

/// Most steps interpreted (bounds one run whatever the input length).
const MAX_STEPS: usize = 3000;
/// `poll_transmit` calls after which a drain is declared endless.
const MAX_DRAIN: usize = 100_000;
/// Packets a link holds; older ones are dropped (the network loses them).
const LINK_CAP: usize = 1024;
/// Largest APDU `send` is tried with (more than `max_apdu`, to hit `TooLarge`).
const MAX_SEND: usize = 70_000;

const GROUP: IpAddr = IpAddr::V4(Ipv4Addr::new(239, 1, 1, 1));
/// The source's NLA (and IP address).
const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
/// The receiver's IP address.
const RCV: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
/// Some other host or group.
const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9));
const DPORT: u16 = 7500;
/// Sessions crafted packets belong to; session 0 is the source's own TSI.
const SESSIONS: usize = 4;

/// Reads operands from the fuzz input; past the end every read is 0.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// Up to `n` bytes (fewer at the end of the input).
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// One of `choices`.
    fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[usize::from(self.u8()) % choices.len()]
    }
}

/// Where a crafted packet goes.
#[derive(Debug, Clone, Copy)]
enum Target {
    Receiver,
    Source,
    Both,
}

/// The two engines, the links between them and the clock.
struct World {
    rx: Receiver,
    tx: Source,
    now: Instant,
    /// Sqns of crafted packets cluster around this.
    base: u32,
    /// Next sqn of each crafted session's stream.
    stream: [u32; SESSIONS],
    /// Next SPM sqn of each crafted session.
    spm_sqn: [u32; SESSIONS],
    /// Source → receiver (destination, packet).
    s2r: VecDeque<(IpAddr, Vec<u8>)>,
    /// Receiver → source.
    r2s: VecDeque<(IpAddr, Vec<u8>)>,
    buf: Vec<u8>,
    /// Payload bytes for crafted data and `send`.
    pattern: Vec<u8>,
}

fn tsi(k: usize) -> Tsi {
    Tsi {
        gsi: Gsi([0x5a, 1, 2, 3, 4, k as u8]),
        sport: 1000 + k as u16,
    }
}

fn receiver_config(inp: &mut Input<'_>) -> ReceiverConfig {
    let mut c = ReceiverConfig::new(DPORT);
    c.rxw_sqns = inp.pick(&[1, 2, 7, 64, 512, 4096]);
    c.rxw_max_bytes = inp.pick(&[0, 1, 1500, 10_000, 100_000, 1 << 20]);
    let b = inp.u8();
    c.limits.max_peers = 1 + usize::from(b % 3);
    c.join = if b & 0x80 == 0 {
        JoinPolicy::FirstSeen
    } else {
        JoinPolicy::AdvertisedTrail
    };
    let b = inp.u8();
    c.nak = match b % 3 {
        0 => NakTiming::LAN,
        1 => NakTiming::OPENPGM,
        _ => NakTiming {
            bo_ivl: Duration::from_micros(u64::from(b >> 2) * 100),
            bo_bias: f64::from(b >> 6),
            rpt_ivl: Duration::from_millis(3),
            rdata_ivl: Duration::from_millis(5),
            max_ivl: Duration::from_millis(u64::from(b >> 4) * 10),
            max_recovery: Duration::from_millis(50 + u64::from(b >> 2) * 100),
        },
    };
    let b = inp.u8();
    c.limits.max_total_bytes = [1 << 30, 200_000, 20_000, 1][usize::from(b % 4)];
    c.limits.probation_sqns = [1024, 1, 8, 100][usize::from(b >> 2) % 4];
    c.limits.nak_credit_per_packet = [4, 0, 1, 100][usize::from(b >> 4) % 4];
    c.limits.out_queue = [4096, 0, 3, 64][usize::from(b >> 6) % 4];
    c.peer_expiry = Duration::from_secs(inp.pick(&[1, 5, 30, 300]));
    c.fin_linger = Duration::from_millis(inp.pick(&[0, 10, 2000]));
    c.spmr_expiry = Duration::from_millis(5);
    c.rng_seed = 7;
    c
}

fn source_config(inp: &mut Input<'_>) -> SourceConfig {
    let mut c = SourceConfig::new(tsi(0), DPORT, GROUP, SRC);
    c.txw_sqns = inp.pick(&[1, 3, 16, 100, 1000]);
    c.txw_max_bytes = inp.pick(&[1, 1500, 20_000, 300_000]);
    let b = inp.u8();
    c.rate = Some([10_000, 100_000, 1_000_000, 100_000_000][usize::from(b % 4)]);
    c.repair.rate = [None, Some(5_000), Some(50_000)][usize::from(b >> 2) % 3];
    c.rate_burst = [1, 1500, 64 * 1024][usize::from(b >> 4) % 3];
    c.send_buffer = [1, 10_000, 256 * 1024][usize::from(b >> 6) % 3];
    c.mtu = inp.pick(&[
        Mtu::UDP_1500,
        Mtu::RAW_1500,
        Mtu {
            mtu: 576,
            ip_overhead: 28,
        },
        Mtu {
            mtu: 9000,
            ip_overhead: 28,
        },
    ]);
    c
}

/// Runs the program `data`; panics (a fuzz finding) when an invariant breaks. Returns the
/// engines' final counters (the replay test checks that the seeds reach deep enough).
pub(crate) fn run(data: &[u8]) -> (ReceiverStats, SourceStats) {
    let mut inp = Input { data };
    let rx_cfg = receiver_config(&mut inp);
    let tx_cfg = source_config(&mut inp);
    let base = match inp.u8() % 4 {
        0 => 0,
        1 => 0xffff_fff0,
        2 => 0x7fff_fff0,
        _ => inp.u32(),
    };
    let mut w = World {
        rx: Receiver::new(rx_cfg),
        tx: Source::new(tx_cfg),
        now: Instant::from_millis(1),
        base,
        stream: [base; SESSIONS],
        spm_sqn: [0; SESSIONS],
        s2r: VecDeque::new(),
        r2s: VecDeque::new(),
        buf: Vec::new(),
        pattern: (0..MAX_SEND).map(|i| (i % 251) as u8).collect(),
    };
    w.check();
    let mut steps = 0;
    while !inp.is_empty() && steps < MAX_STEPS {
        steps += 1;
        w.step(&mut inp);
        w.check();
    }
    w.settle();
    (w.rx.stats(), w.tx.stats())
}

impl World {
    fn step(&mut self, inp: &mut Input<'_>) {
        match inp.u8() % 16 {
            0..=4 => {
                let target = Self::target(inp);
                let (dst, pkt) = self.craft(inp);
                self.deliver(target, dst, &pkt);
            }
            5 => {
                // A crafted packet with bytes overwritten, checksum filled in again.
                let target = Self::target(inp);
                let (dst, mut pkt) = self.craft(inp);
                for _ in 0..=inp.u8() % 4 {
                    if !pkt.is_empty() {
                        let i = usize::from(inp.u16()) % pkt.len();
                        pkt[i] = inp.u8();
                    }
                }
                seal(inp, &mut pkt);
                self.deliver(target, dst, &pkt);
            }
            6 => {
                let target = Self::target(inp);
                let n = usize::from(inp.u8());
                let mut pkt = inp.bytes(n).to_vec();
                seal(inp, &mut pkt);
                let dst = inp.pick(&[GROUP, SRC, RCV]);
                self.deliver(target, dst, &pkt);
            }
            7 => {
                let d = match inp.u8() % 4 {
                    0 => Duration::from_micros(u64::from(inp.u8())),
                    1 => Duration::from_micros(u64::from(inp.u16()) * 10),
                    2 => Duration::from_millis(u64::from(inp.u16())),
                    _ => Duration::from_secs(u64::from(inp.u8())),
                };
                self.now += d;
            }
            8 => {
                // To the next deadline of either engine (never backwards).
                let t = match inp.u8() % 3 {
                    0 => self.rx.poll_timeout(),
                    1 => self.tx.poll_timeout(),
                    _ => self.rx.poll_timeout().min(self.tx.poll_timeout()),
                };
                if let Some(t) = t {
                    self.now = self.now.max(t);
                }
            }
            9 => {
                self.rx.handle_timeout(self.now);
                self.tx.handle_timeout(self.now);
            }
            10 => self.drain_transmits(),
            11 => self.drain_events(),
            12 => {
                // Over the links, dropping what the loss mask says.
                let n = 1 + usize::from(inp.u8() % 64);
                let loss = inp.u32();
                let lost = |i: usize| loss & (1 << (i % 32)) != 0;
                for i in 0..n.min(self.s2r.len()) {
                    if let Some((dst, p)) = self.s2r.pop_front() {
                        if !lost(i) {
                            self.rx.handle_packet(self.now, SRC, dst, &p);
                        }
                    }
                }
                // Upstream, NAKs and SPMRs are lost by the mask read backwards.
                for i in 0..n.min(self.r2s.len()) {
                    if let Some((dst, p)) = self.r2s.pop_front() {
                        if !lost(31 - i % 32) {
                            self.tx.handle_packet(self.now, RCV, dst, &p);
                        }
                    }
                }
            }
            13 | 14 => {
                let len = match inp.u8() % 4 {
                    0 => usize::from(inp.u8()),
                    1 => usize::from(inp.u16()) % 3000,
                    2 => usize::from(inp.u16()),
                    _ => inp.u32() as usize % (MAX_SEND + 1),
                };
                let _ = self.tx.send(self.now, &self.pattern[..len]);
            }
            _ => {
                if inp.u8() < 8 {
                    self.tx.close(self.now);
                }
            }
        }
    }

    fn target(inp: &mut Input<'_>) -> Target {
        inp.pick(&[
            Target::Receiver,
            Target::Receiver,
            Target::Source,
            Target::Both,
        ])
    }

    fn deliver(&mut self, target: Target, dst: IpAddr, pkt: &[u8]) {
        if matches!(target, Target::Receiver | Target::Both) {
            self.rx.handle_packet(self.now, SRC, dst, pkt);
        }
        if matches!(target, Target::Source | Target::Both) {
            self.tx.handle_packet(self.now, RCV, dst, pkt);
        }
    }

    /// A sqn for session `k`: mostly its stream (in order, with gaps and repeats).
    fn sqn(&mut self, inp: &mut Input<'_>, k: usize) -> u32 {
        let s = self.stream[k];
        let sqn = match inp.u8() % 10 {
            0..=3 => s.wrapping_add(u32::from(inp.u8() % 4 / 3)),
            4 => s.wrapping_add(u32::from(inp.u8() % 16)),
            5 => s.wrapping_sub(1 + u32::from(inp.u8() % 32)),
            6 => s.wrapping_add(u32::from(inp.u16())),
            7 => self
                .base
                .wrapping_add_signed(i32::from(i8::from_le_bytes([inp.u8()]))),
            8 => self.tx.txw_trail().0.wrapping_add(u32::from(inp.u8() % 64)),
            _ => inp.u32(),
        };
        if sqn.wrapping_sub(s) < 0x8000_0000 {
            self.stream[k] = sqn.wrapping_add(1);
        }
        sqn
    }

    /// A sqn list for NAKs and NCFs: around `first`, or anywhere.
    fn list(inp: &mut Input<'_>, first: u32) -> Option<NakList> {
        let n = usize::from(inp.u8() % 64);
        if n == 0 {
            return None;
        }
        let spread = u32::from(inp.u8());
        let v: Vec<SeqNo> = (0..n)
            .map(|i| match inp.u8() % 8 {
                7 => SeqNo(inp.u32()),
                _ => SeqNo(first.wrapping_add(1 + i as u32 * (spread % 4 + 1))),
            })
            .collect();
        Some(NakList::from_slice(&v[..v.len().min(62)]))
    }

    /// A structure-aware packet: destination and bytes.
    fn craft(&mut self, inp: &mut Input<'_>) -> (IpAddr, Vec<u8>) {
        let kind = inp.u8();
        let k = usize::from(inp.u8()) % SESSIONS;
        let t = tsi(k);
        let mut options = Options::default();
        let mut payload_len = 0;
        let (sport, dport, dst, body) = match kind % 8 {
            0..=2 => {
                let (body, len) = self.data(inp, k, kind % 8 == 2, &mut options);
                payload_len = len;
                (t.sport, DPORT, GROUP, body)
            }
            3 => (t.sport, DPORT, GROUP, self.spm(inp, k, &mut options)),
            4 => {
                let sqn = self.sqn(inp, k);
                options.nak_list = Self::list(inp, sqn);
                let body = Body::Ncf(Nak {
                    sqn: SeqNo(sqn),
                    src_nla: SRC,
                    grp_nla: inp.pick(&[GROUP, GROUP, GROUP, OTHER]),
                });
                (t.sport, DPORT, GROUP, body)
            }
            5 | 6 => {
                let sqn = self.sqn(inp, k);
                options.nak_list = Self::list(inp, sqn);
                let n = Nak {
                    sqn: SeqNo(sqn),
                    src_nla: inp.pick(&[SRC, SRC, SRC, OTHER]),
                    grp_nla: inp.pick(&[GROUP, GROUP, GROUP, OTHER]),
                };
                let body = if inp.u8() < 16 {
                    Body::Nnak(n)
                } else {
                    Body::Nak(n)
                };
                // Unicast to the source, or multicast (another receiver's, heard by ours).
                let dst = inp.pick(&[SRC, SRC, GROUP]);
                (DPORT, t.sport, dst, body)
            }
            _ => (DPORT, t.sport, inp.pick(&[GROUP, SRC]), Body::Spmr),
        };
        // Now and then a port that is not ours.
        let (sport, dport) = if inp.u8() == 0xee {
            (dport, sport)
        } else {
            (sport, dport)
        };
        let repr = PacketRepr {
            sport,
            dport,
            gsi: t.gsi,
            parity: false,
            var_pktlen: false,
            body,
            options,
            payload: &self.pattern[..payload_len],
        };
        (dst, repr.to_vec())
    }

    /// An ODATA (or RDATA) body of session `k` and its payload length; may set OPT_FRAGMENT
    /// and OPT_FIN.
    fn data(
        &mut self,
        inp: &mut Input<'_>,
        k: usize,
        rdata: bool,
        options: &mut Options,
    ) -> (Body, usize) {
        let sqn = self.sqn(inp, k);
        let trail = match inp.u8() % 4 {
            0 => sqn,
            1 => sqn.wrapping_sub(u32::from(inp.u8())),
            2 => sqn.wrapping_sub(u32::from(inp.u16())),
            _ => inp.u32(),
        };
        let len = match inp.u8() % 4 {
            0 => 0,
            1 => usize::from(inp.u8()),
            2 => usize::from(inp.u16()) % 1500,
            _ => usize::from(inp.u16()) % 9000,
        };
        options.fragment = match inp.u8() % 4 {
            0 | 1 => None,
            2 => {
                // Consistent: fragment `idx` of an APDU of `parts` fragments of `len`.
                let idx = u32::from(inp.u8() % 8);
                let parts = idx + 1 + u32::from(inp.u8() % 4);
                Some(Fragment {
                    first_sqn: SeqNo(sqn.wrapping_sub(idx)),
                    offset: idx * len as u32,
                    apdu_len: parts * len as u32,
                })
            }
            _ => Some(Fragment {
                first_sqn: SeqNo(sqn.wrapping_sub(u32::from(inp.u8()))),
                offset: inp.u32() % 70_000,
                apdu_len: inp.u32() % 70_001,
            }),
        };
        options.fin = inp.u8() == 0xff;
        let d = Data {
            sqn: SeqNo(sqn),
            trail: SeqNo(trail),
        };
        (
            if rdata {
                Body::Rdata(d)
            } else {
                Body::Odata(d)
            },
            len,
        )
    }

    /// An SPM body of session `k` (SPM sqns mostly in order); may set OPT_FIN.
    fn spm(&mut self, inp: &mut Input<'_>, k: usize, options: &mut Options) -> Body {
        let spm_sqn = match inp.u8() % 4 {
            0 => self.spm_sqn[k].wrapping_sub(u32::from(inp.u8() % 3)),
            3 => inp.u32(),
            _ => self.spm_sqn[k],
        };
        self.spm_sqn[k] = spm_sqn.wrapping_add(1);
        let (trail, lead) = match inp.u8() % 6 {
            // No window information (RFC 3208 §8.1).
            0 => (0, 0x8000_0000),
            1 => (inp.u32(), inp.u32()),
            _ => {
                let lead = self.sqn(inp, k);
                (lead.wrapping_sub(u32::from(inp.u16())), lead)
            }
        };
        options.fin = inp.u8() < 16;
        Body::Spm(Spm {
            spm_sqn: SeqNo(spm_sqn),
            trail: SeqNo(trail),
            lead: SeqNo(lead),
            path: inp.pick(&[SRC, SRC, SRC, OTHER]),
        })
    }

    fn drain_transmits(&mut self) {
        let mut n = 0;
        while let Some(t) = self.rx.poll_transmit(self.now, &mut self.buf) {
            n += 1;
            assert!(n < MAX_DRAIN, "Receiver::poll_transmit never ends");
            assert_eq!(t.len, self.buf.len(), "Transmit::len");
            push(&mut self.r2s, t.dst, &self.buf);
        }
        let mut n = 0;
        while let Some(t) = self.tx.poll_transmit(self.now, &mut self.buf) {
            n += 1;
            assert!(n < MAX_DRAIN, "Source::poll_transmit never ends");
            assert_eq!(t.len, self.buf.len(), "Transmit::len");
            push(&mut self.s2r, t.dst, &self.buf);
        }
    }

    fn drain_events(&mut self) {
        let max_apdu = self.rx.config().max_apdu;
        while let Some(ev) = self.rx.poll_event() {
            if let Event::Data { apdu, .. } = ev {
                assert!(apdu.len() <= max_apdu, "APDU of {} bytes", apdu.len());
            }
        }
    }

    /// The memory bounds, and the receiver's timer index (fuzz builds may lack debug assertions).
    fn check(&self) {
        self.rx.check_invariants();
        let r = self.rx.stats();
        let c = self.rx.config();
        assert!(r.peers <= c.limits.max_peers as u64, "peers: {r:?}");
        // The memory budget holds after every call, whatever the peers' own bounds.
        assert!(
            r.footprint <= c.limits.max_total_bytes as u64,
            "receiver footprint (max_total_bytes {}): {r:?}",
            c.limits.max_total_bytes
        );
        assert!(
            r.window_bytes <= r.peers * (c.rxw_max_bytes as u64 + 65_535),
            "receiver window bytes (rxw_max_bytes {}): {r:?}",
            c.rxw_max_bytes
        );
        assert!(
            r.missing_now <= r.peers * u64::from(c.rxw_sqns),
            "receiver missing sqns (rxw_sqns {}): {r:?}",
            c.rxw_sqns
        );
        let s = self.tx.stats();
        let c = self.tx.config();
        assert!(
            s.txw_packets <= u64::from(c.txw_sqns),
            "source TXW packets (txw_sqns {}): {s:?}",
            c.txw_sqns
        );
        assert!(
            s.txw_bytes <= c.txw_max_bytes.max(c.mtu.max_tsdu()) as u64,
            "source TXW bytes (txw_max_bytes {}): {s:?}",
            c.txw_max_bytes
        );
        assert!(
            self.tx.queued_bytes() <= c.send_buffer.max(c.max_apdu),
            "source queued {} bytes (send_buffer {})",
            self.tx.queued_bytes(),
            c.send_buffer
        );
    }

    /// 400 s without packets, driven like a real driver: the source woken at its
    /// `poll_timeout` (which after `handle_timeout` and a full drain must be in the future, or
    /// the driver would spin), the receiver every 2 s (its timers may run late). Then every peer
    /// has expired (peer_expiry ≤ 300 s) with nothing missing or buffered, and the source has sent
    /// everything it queued (≥ 10 kB/s for ≤ 330 kB).
    fn settle(&mut self) {
        let end = self.now + Duration::from_secs(400);
        let mut next_rx = self.now;
        let mut wakeups = 0;
        while self.now < end {
            wakeups += 1;
            assert!(
                wakeups < 1_000_000,
                "the source never stops asking to be woken"
            );
            if self.now >= next_rx {
                self.rx.handle_timeout(self.now);
                self.drain_transmits();
                let t = self.rx.poll_timeout();
                assert!(
                    t.is_none_or(|t| t > self.now),
                    "Receiver::poll_timeout() = {t:?} at {:?} after handle_timeout and a full \
                     drain: a driver would spin",
                    self.now
                );
                next_rx = self.now + Duration::from_secs(2);
            }
            self.tx.handle_timeout(self.now);
            self.drain_transmits();
            self.s2r.clear();
            self.r2s.clear();
            self.drain_events();
            self.check();
            let t = self.tx.poll_timeout();
            assert!(
                t.is_none_or(|t| t > self.now),
                "Source::poll_timeout() = {t:?} at {:?} after handle_timeout and a full drain: a \
                 driver would spin; {:?}",
                self.now,
                self.tx.stats()
            );
            self.now = t.unwrap_or(end).min(next_rx).min(end);
        }
        let r = self.rx.stats();
        assert_eq!(
            (r.peers, r.missing_now, r.window_bytes),
            (0, 0, 0),
            "receiver not empty after 400 s of silence: {r:?}"
        );
        assert_eq!(
            self.tx.queued_bytes(),
            0,
            "source still has data queued after 400 s: {:?}",
            self.tx.stats()
        );
    }
}

/// Fills in the checksum (odd byte) or zeroes it (even): both builds then agree on it.
fn seal(inp: &mut Input<'_>, pkt: &mut [u8]) {
    if inp.bool() {
        checksum::fill(pkt);
    } else if let Some(f) = pkt.get_mut(6..8) {
        f.copy_from_slice(&[0, 0]);
    }
}

fn push(link: &mut VecDeque<(IpAddr, Vec<u8>)>, dst: IpAddr, pkt: &[u8]) {
    if link.len() >= LINK_CAP {
        link.pop_front();
    }
    link.push_back((dst, pkt.to_vec()));
}
