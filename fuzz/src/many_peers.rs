//! The operation interpreter behind the `receiver_many_peers` fuzz target, shared with the
//! corpus replay test (`pgm/tests/many_peers_fuzz_corpus.rs`, which includes this file by path),
//! so CI replays the corpus and the crash regressions with exactly the fuzzer's assertions on
//! stable Rust. It reads its operands with `crate::input::Input`.
//!
//! One `Receiver` with full-size windows (the defaults: 65 536 sqns, 32 MiB) and many peers,
//! its limits scaled so that a fuzz input reaches them: `max_peers` 16, 256 or 1 024,
//! `max_total_bytes` 1, 16 or 64 MiB, NAK timing LAN or OpenPGM, either join policy
//! (`AdvertisedTrail` in one configuration of four). The first 4 bytes pick the configuration,
//! then each step reads an opcode and its operands (a missing byte reads as 0, so every input is
//! a valid program):
//!
//! - packets of up to 4 096 TSIs, each with its own sqn stream (in order, small gaps, repeats,
//!   gaps of up to 2^31, around the u32 wrap): ODATA/RDATA with payloads of up to 60 000 bytes
//!   (one repeated byte), OPT_FRAGMENT (consistent or not), OPT_FIN; SPMs with any
//!   spm_sqn/trail/lead and an IPv4 or IPv6 NLA, FIN SPMs; NCFs and other receivers' multicast
//!   NAKs (with NAK lists), NNAKs, SPMRs; parity packets; IPv4 and IPv6 groups;
//! - the same packets with bytes overwritten; sprays of one packet from each of up to 64 TSIs,
//!   streams of up to 128 in-order (optionally lossy) ODATA of one TSI, leaps (1 to 3 packets
//!   at a far position);
//! - time advances (µs to minutes, or to `poll_timeout`), `handle_timeout` (with or without
//!   draining `poll_transmit` after it), `poll_transmit` drains. Events are drained after
//!   every call (an application that keeps up). Data payloads of 5 bytes or more name their
//!   sqn, so the order of delivery can be checked.
//!
//! Checked after every `handle_packet`/`handle_timeout` call:
//!
//! - **work**: the missing sqns of the packet's session grow by at most what the engine lets
//!   one packet buy: its *reach* (the session's NAK credit after hearing the packet × 63), or
//!   the 256 sqns one SPM may reveal, plus 1 024 when the packet completed a leap (3 packets
//!   within 1 024 sqns of each other); only that session can grow;
//! - **CPU time**: each call takes under [`CALL_CPU_LIMIT`] of this thread's CPU time.
//!
//! After every step: `Receiver::check_invariants`; peers ≤ `max_peers`; footprint ≤
//! `max_total_bytes`; window bytes ≤ footprint; missing sqns × `SLOT_COST` ≤ footprint; a
//! `poll_transmit` drain ends after at most `out_queue` packets, all well-formed NAKs (to a
//! session that paid for them: NAK packets to a session ≤ `nak_credit_per_packet` × packets it
//! sent; over all sessions ≤ `nak_burst` + `nak_rate` × elapsed) or SPMRs (≤ 2 per session
//! created); after `handle_timeout` and a full drain, `poll_timeout` is in the future (a driver
//! would spin otherwise); events are consistent (`PeerJoined` before any `Data` or `Loss` of a
//! session, `PeerExpired` only after it, APDUs ≤ `max_apdu` and delivered in sqn order, each
//! once, but for one step back to where a followed leap went); and the heap this thread holds
//! for the receiver (counted by a global allocator, see [`heap_live`]) stays within
//! `3 × max_total_bytes` plus fixed per-peer and out-queue allowances.
//!
//! At the end, 400 s of silence with `handle_timeout` driven like a driver (woken at
//! `poll_timeout`, at most once a millisecond) expires every peer: no peers, footprint 0, nothing
//! missing, every joined session reported expired, the heap back to a few MiB.
//!
//! Its first findings (an overflow at a sqn exactly 2^31 past the window, windows reaching
//! back over delivered data with `JoinPolicy::AdvertisedTrail`, slot capacity and leap data
//! outside the footprint, a `Loss` before its session's `PeerJoined`) are fixed; their
//! reproducers are replayed under `fuzz/regressions/receiver_many_peers/`.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use pgm::{
    config::SLOT_COST,
    time::Instant,
    wire::{
        checksum, options::ParityPrm, Body, Data, Fragment, Gsi, Nak, NakList, Options, PacketRepr,
        SeqNo, Spm, Tsi,
    },
    Event, JoinPolicy, NakTiming, PeerStats, Receiver, ReceiverConfig, ReceiverStats,
};

use crate::input::Input;

/// Most steps interpreted (bounds one run whatever the input length).
const MAX_STEPS: usize = 2000;
/// Most missing sqns the run may create in total, and most packets it may feed (its work):
/// interpretation stops beyond either.
const MAX_GROWTH: u64 = 2_000_000;
const MAX_PACKETS: u64 = 4096;
/// TSIs packets are crafted for.
const TSIS: usize = 4096;
/// Largest payload crafted (the TSDU length is 16 bits).
const MAX_PAYLOAD: usize = 60_000;
/// Sqns one SPM may reveal beyond the data seen (`MAX_SPM_REVEAL` in the engine).
const SPM_REVEAL: u64 = 256;
/// Sqns a NAK covers: its header sqn and OPT_NAK_LIST.
const NAK_SQNS: u64 = 63;
/// How far apart the packets of a followed leap may be (`LEAP_NEAR` in the engine).
const LEAP_NEAR: u64 = 1024;
/// CPU time one `handle_packet` call may take. Generous: the most a packet can do (jump a
/// full window, open a 65 535-sqn gap, trim as much from other windows) takes about 20 ms in a
/// fuzz build, and loaded machines add spikes of 2–3×; a path worse than linear takes seconds.
pub(crate) const CALL_CPU_LIMIT: Duration = Duration::from_millis(200);
/// CPU time `handle_timeout` may take besides [`CALL_CPU_LIMIT`], per sqn tracked before the
/// call: its work is linear in what it gives up (every session expiring at once, every missing
/// sqn reaching `max_recovery` at once: about 0.15 µs per sqn in a fuzz build).
const TIMEOUT_CPU_PER_SQN: Duration = Duration::from_nanos(500);
/// Heap the receiver may hold besides `3 × max_total_bytes`: scratch buffers (the event queue
/// and the delivery list grow to one call's output) and the maps of sessions.
const HEAP_SLACK: usize = 8 << 20;
/// Heap per tracked peer besides its window's accounted footprint.
const HEAP_PER_PEER: usize = 16 << 10;
/// Heap per packet waiting in the out-queue.
const HEAP_PER_OUT: usize = 1 << 10;

const DPORT: u16 = 7500;
const GROUP4: IpAddr = IpAddr::V4(Ipv4Addr::new(239, 1, 1, 1));
const GROUP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xff3e, 0, 0, 0, 0, 0, 0x8000, 1));
const SRC4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const SRC6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
const RCV4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9));

/// What a run reached (the replay test checks that the seeds reach deep enough).
#[derive(Debug, Clone, Default)]
pub(crate) struct Summary {
    /// The receiver's counters before the final silence.
    pub(crate) stats: ReceiverStats,
    /// Most peers tracked at once.
    pub(crate) max_peers: u64,
    /// Largest footprint seen.
    pub(crate) max_footprint: u64,
    /// Largest heap the receiver held (bytes).
    pub(crate) max_heap: usize,
    /// Largest growth of one session's missing sqns in one call.
    pub(crate) max_growth: u64,
    /// NAK packets drained.
    pub(crate) naks: u64,
    /// Whether `max_peers` was reached.
    pub(crate) peers_full: bool,
    /// Wake-ups of the final silence.
    pub(crate) wakeups: u64,
    /// Most CPU time one call took.
    pub(crate) max_call: Duration,
}

thread_local! {
    /// Heap bytes allocated minus freed by this thread (see [`Counting`]).
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = LIVE.try_with(|l| l.set(l.get() + delta));
}

/// A global allocator that counts the bytes each thread holds, so a run can measure what the
/// receiver really holds (the interpreter is single-threaded; the test harness runs each test
/// on its own thread).
pub(crate) struct Counting;

#[allow(
    clippy::cast_possible_wrap,
    reason = "allocation sizes are below isize::MAX"
)]
// SAFETY: every method forwards to `System` with the caller's arguments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap bytes this thread holds now (allocated minus freed since it started).
pub(crate) fn heap_live() -> isize {
    LIVE.try_with(Cell::get).unwrap_or(0)
}

/// This thread's CPU time.
fn cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill in.
    let rc =
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, std::ptr::addr_of_mut!(ts)) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// The TSI of session `k`.
fn tsi(k: usize) -> Tsi {
    Tsi {
        gsi: Gsi([0x6d, 0x70, (k >> 8) as u8, k as u8, 0x50, 0x47]),
        sport: 1000 + (k % 7) as u16,
    }
}

/// A crafted session's sqn streams.
#[derive(Debug, Clone, Copy, Default)]
struct Session {
    /// The next sqn in order.
    next: u32,
    /// The next SPM sqn.
    spm_sqn: u32,
}

/// What the receiver was sent and did for one TSI (crafted, or made by overwriting bytes).
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    /// Downstream packets fed to the receiver (each can pay for NAKs).
    sent: u64,
    /// NAK packets the receiver sent.
    naks: u64,
    /// `PeerJoined` seen and no `PeerExpired` since.
    joined: bool,
    /// The sqn the last APDU delivered named (see [`payload`]): APDUs come in sqn order.
    delivered: Option<SeqNo>,
    /// This call followed a leap: delivery may step back once (to the new position).
    leapt: bool,
}

/// The receiver, the crafted sessions and the clock.
struct World {
    rx: Receiver,
    now: Instant,
    start: Instant,
    base: u32,
    sessions: Vec<Session>,
    counters: BTreeMap<Tsi, Counters>,
    /// The session the last operation used (operands may refer to it).
    last: usize,
    buf: Vec<u8>,
    /// Payload bytes of crafted data (one repeated byte).
    pattern: Vec<u8>,
    /// Heap held before the receiver existed.
    heap_base: isize,
    /// Missing sqns created so far (the run's work).
    growth: u64,
    /// Packets fed so far.
    packets: u64,
    /// `(missing_now, leaps_followed, footprint)` after the last call.
    totals: (u64, u64, u64),
    naks: u64,
    spmrs: u64,
    summary: Summary,
}

fn receiver_config(inp: &mut Input<'_>) -> ReceiverConfig {
    let mut c = ReceiverConfig::new(DPORT);
    let b = inp.u8();
    c.limits.max_peers = [16, 256, 1024][usize::from(b % 3)];
    c.nak = if b & 0x20 == 0 {
        NakTiming::LAN
    } else {
        NakTiming::OPENPGM
    };
    c.join = if b & 0xc0 == 0xc0 {
        JoinPolicy::AdvertisedTrail
    } else {
        JoinPolicy::FirstSeen
    };
    let b = inp.u8();
    c.limits.max_total_bytes = [1 << 20, 16 << 20, 64 << 20][usize::from(b % 3)];
    c.limits.probation_sqns = [1024, 1024, 64, 8][usize::from(b >> 2) % 4];
    c.limits.nak_credit_per_packet = [4, 4, 1, 8][usize::from(b >> 4) % 4];
    c.limits.out_queue = [4096, 4096, 64, 8][usize::from(b >> 6) % 4];
    let b = inp.u8();
    c.peer_expiry = Duration::from_secs([300, 300, 60, 5][usize::from(b % 4)]);
    c.rng_seed = u64::from(b >> 2);
    c.fec = b & 0x80 == 0;
    c
}

/// Runs the program `data`; panics (a fuzz finding) when an invariant breaks.
pub(crate) fn run(data: &[u8]) -> Summary {
    let mut inp = Input::new(data);
    let cfg = receiver_config(&mut inp);
    let base = match inp.u8() % 4 {
        0 => 0,
        1 => 0xffff_ff00,
        2 => 0x7fff_ff00,
        _ => inp.u32(),
    };
    let session = Session {
        next: base,
        ..Session::default()
    };
    let sessions = vec![session; TSIS];
    let pattern = vec![0xa5; MAX_PAYLOAD];
    let buf = Vec::with_capacity(1 << 16);
    // What the interpreter holds from here on is small (the counters of the TSIs used).
    let heap_base = heap_live();
    let mut w = World {
        rx: Receiver::new(cfg),
        now: Instant::from_millis(1),
        start: Instant::from_millis(1),
        base,
        sessions,
        counters: BTreeMap::new(),
        last: 0,
        buf,
        pattern,
        heap_base,
        growth: 0,
        packets: 0,
        totals: (0, 0, 0),
        naks: 0,
        spmrs: 0,
        summary: Summary::default(),
    };
    w.check();
    let mut steps = 0;
    while !inp.is_empty() && steps < MAX_STEPS && w.growth < MAX_GROWTH && w.packets < MAX_PACKETS {
        steps += 1;
        w.step(&mut inp);
        w.check();
    }
    w.summary.stats = w.rx.stats();
    w.settle();
    w.summary.naks = w.naks;
    w.summary
}

impl World {
    fn step(&mut self, inp: &mut Input<'_>) {
        match inp.u8() % 20 {
            0..=3 => {
                let k = self.pick_session(inp);
                let (src, dst, pkt) = self.data_packet(inp, k, false);
                self.feed(src, dst, &pkt);
            }
            4 => {
                let k = self.pick_session(inp);
                let (dst, pkt) = self.spm_packet(inp, k);
                self.feed(SRC4, dst, &pkt);
            }
            5 => {
                let k = self.pick_session(inp);
                let pkt = self.ncf_packet(inp, k);
                self.feed(SRC4, GROUP4, &pkt);
            }
            6 => {
                let k = self.pick_session(inp);
                let (dst, pkt) = self.nak_packet(inp, k);
                self.feed(OTHER, dst, &pkt);
            }
            7 => {
                let k = self.pick_session(inp);
                let dst = inp.pick(&[GROUP4, GROUP6, SRC4]);
                let pkt = upstream(k, Body::Spmr, &Options::default()).to_vec();
                self.feed(OTHER, dst, &pkt);
            }
            8 => self.mutated(inp),
            9 | 10 => self.spray(inp),
            11 | 12 => self.stream(inp),
            13 => self.leap(inp),
            14 => {
                self.now += match inp.u8() % 5 {
                    0 => Duration::from_micros(u64::from(inp.u8())),
                    1 => Duration::from_micros(u64::from(inp.u16()) * 10),
                    2 => Duration::from_millis(u64::from(inp.u16())),
                    3 => Duration::from_secs(u64::from(inp.u8())),
                    _ => Duration::from_secs(60 * u64::from(inp.u8() % 8)),
                };
            }
            15 => {
                if let Some(t) = self.rx.poll_timeout() {
                    self.now = self.now.max(t);
                }
            }
            16 | 17 => self.timeout_and_drain(),
            18 => self.timeout(),
            _ => self.drain_transmits(),
        }
    }

    /// A session index: the last one, one of the first 256, any, or the next one.
    fn pick_session(&mut self, inp: &mut Input<'_>) -> usize {
        let k = match inp.u8() % 4 {
            0 => self.last,
            1 => usize::from(inp.u8()),
            2 => usize::from(inp.u16()) % TSIS,
            _ => (self.last + 1) % TSIS,
        };
        self.last = k;
        k
    }

    /// A sqn of session `k`: mostly its stream (in order, gaps of any size, repeats).
    fn sqn(&mut self, inp: &mut Input<'_>, k: usize) -> u32 {
        let s = self.sessions[k].next;
        let sqn = match inp.u8() % 12 {
            0..=4 => s,
            5 => s.wrapping_add(u32::from(inp.u8() % 16)),
            6 => s.wrapping_sub(1 + u32::from(inp.u8() % 32)),
            7 => s.wrapping_add(u32::from(inp.u16())),
            8 => s.wrapping_add(inp.u32() & 0x7fff_ffff),
            9 => s.wrapping_add(u32::from(inp.u8()) * 63),
            10 => self
                .base
                .wrapping_add_signed(i32::from(i8::from_le_bytes([inp.u8()]))),
            _ => inp.u32(),
        };
        if sqn.wrapping_sub(s) < 0x8000_0000 {
            self.sessions[k].next = sqn.wrapping_add(1);
        }
        sqn
    }

    /// An ODATA or RDATA packet of session `k`: source, destination, bytes.
    /// Its payload names its sqn unless `mutate` (bytes of it will be overwritten).
    fn data_packet(
        &mut self,
        inp: &mut Input<'_>,
        k: usize,
        mutate: bool,
    ) -> (IpAddr, IpAddr, Vec<u8>) {
        let kind = inp.u8();
        let sqn = self.sqn(inp, k);
        let trail = match inp.u8() % 5 {
            0 => sqn,
            1 => sqn.wrapping_sub(u32::from(inp.u8())),
            2 => sqn.wrapping_sub(u32::from(inp.u16())),
            3 => self.base,
            _ => inp.u32(),
        };
        let len = payload_len(inp);
        let fragment = match inp.u8() % 6 {
            0..=2 => None,
            3 | 4 => {
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
        let options = Options {
            fragment,
            fin: kind & 0xf0 == 0xf0,
            ..Options::default()
        };
        let d = Data {
            sqn: SeqNo(sqn),
            trail: SeqNo(trail),
        };
        let body = if kind & 1 == 1 {
            Body::Rdata(d)
        } else {
            Body::Odata(d)
        };
        let parity = kind & 0x0e == 0x0e;
        let (src, dst) = match (kind >> 4) % 8 {
            0..=4 => (SRC4, GROUP4),
            5 => (SRC6, GROUP6),
            6 => (SRC4, RCV4),
            _ => (OTHER, GROUP4),
        };
        let repr = PacketRepr {
            sport: tsi(k).sport,
            dport: DPORT,
            gsi: tsi(k).gsi,
            parity,
            var_pktlen: false,
            body,
            options,
            payload: &payload(&self.pattern, (!mutate).then_some(sqn), len),
        };
        (src, dst, repr.to_vec())
    }

    /// An SPM of session `k` (SPM sqns mostly in order, any window edges, IPv4 or IPv6 NLA,
    /// maybe OPT_FIN): destination, bytes.
    fn spm_packet(&mut self, inp: &mut Input<'_>, k: usize) -> (IpAddr, Vec<u8>) {
        let last = self.sessions[k].spm_sqn;
        let spm_sqn = match inp.u8() % 4 {
            0 => last.wrapping_sub(u32::from(inp.u8() % 3)),
            1 => inp.u32(),
            _ => last,
        };
        self.sessions[k].spm_sqn = spm_sqn.wrapping_add(1);
        let (trail, lead) = match inp.u8() % 6 {
            // No window information (RFC 3208 §8.1).
            0 => (0, 0x8000_0000),
            1 => (inp.u32(), inp.u32()),
            2 => {
                let lead = self.sessions[k].next.wrapping_sub(1);
                (lead.wrapping_sub(u32::from(inp.u16())), lead)
            }
            _ => {
                let lead = self.sqn(inp, k);
                (lead.wrapping_sub(u32::from(inp.u16())), lead)
            }
        };
        // OPT_PARITY_PRM (RFC 3208 §11): any group size, pro-active and/or on demand, so that
        // parity decoding and parity NAKs are exercised too.
        let parity_prm = match inp.u8() % 4 {
            0 => None,
            1 => Some(inp.u32()),
            _ => Some(1 << (1 + inp.u8() % 7)),
        }
        .map(|tgs| {
            let b = inp.u8();
            ParityPrm {
                proactive: b & 1 == 1,
                on_demand: b & 2 == 2,
                tgs,
            }
        });
        let options = Options {
            fin: inp.u8() < 24,
            parity_prm,
            ..Options::default()
        };
        let body = Body::Spm(Spm {
            spm_sqn: SeqNo(spm_sqn),
            trail: SeqNo(trail),
            lead: SeqNo(lead),
            path: inp.pick(&[SRC4, SRC4, SRC6, OTHER]),
        });
        let dst = inp.pick(&[GROUP4, GROUP4, GROUP6, RCV4]);
        (dst, downstream(k, body, &options, &[]))
    }

    /// A sqn list around `first` (or anywhere), for NAKs and NCFs.
    fn list(inp: &mut Input<'_>, first: u32) -> Option<NakList> {
        let n = usize::from(inp.u8() % 64);
        if n == 0 {
            return None;
        }
        let spread = u32::from(inp.u8() % 4) + 1;
        let v: Vec<SeqNo> = (0..n)
            .map(|i| match inp.u8() % 8 {
                7 => SeqNo(inp.u32()),
                _ => SeqNo(first.wrapping_add(1 + i as u32 * spread)),
            })
            .collect();
        Some(NakList::from_slice(&v))
    }

    /// An NCF of session `k` (for our group or another).
    fn ncf_packet(&mut self, inp: &mut Input<'_>, k: usize) -> Vec<u8> {
        let sqn = self.sqn_behind(inp, k);
        let options = Options {
            nak_list: Self::list(inp, sqn),
            ..Options::default()
        };
        let body = Body::Ncf(Nak {
            sqn: SeqNo(sqn),
            src_nla: SRC4,
            grp_nla: inp.pick(&[GROUP4, GROUP4, GROUP6, OTHER]),
        });
        let t = tsi(k);
        PacketRepr {
            sport: t.sport,
            dport: DPORT,
            gsi: t.gsi,
            // Sometimes a parity NCF (RFC 3208 §11.3.2), confirming parity NAKs.
            parity: inp.u8() < 32,
            var_pktlen: false,
            body,
            options,
            payload: &[],
        }
        .to_vec()
    }

    /// Another receiver's NAK for session `k` (multicast, so ours hears it; sometimes unicast,
    /// an NNAK or parity): destination, bytes.
    fn nak_packet(&mut self, inp: &mut Input<'_>, k: usize) -> (IpAddr, Vec<u8>) {
        let sqn = self.sqn_behind(inp, k);
        let options = Options {
            nak_list: Self::list(inp, sqn),
            ..Options::default()
        };
        let n = Nak {
            sqn: SeqNo(sqn),
            src_nla: inp.pick(&[SRC4, SRC4, SRC6, OTHER]),
            grp_nla: inp.pick(&[GROUP4, GROUP4, GROUP6, OTHER]),
        };
        let b = inp.u8();
        let body = if b < 16 { Body::Nnak(n) } else { Body::Nak(n) };
        let pkt = PacketRepr {
            parity: b & 0x0f == 0x0f,
            ..upstream(k, body, &options)
        }
        .to_vec();
        (inp.pick(&[GROUP4, GROUP4, GROUP6, SRC4]), pkt)
    }

    /// A sqn at or a little behind session `k`'s stream (where its gaps are), or anywhere.
    fn sqn_behind(&mut self, inp: &mut Input<'_>, k: usize) -> u32 {
        let s = self.sessions[k].next;
        match inp.u8() % 4 {
            0 => s.wrapping_sub(1 + u32::from(inp.u8())),
            1 => s.wrapping_sub(1 + u32::from(inp.u16())),
            2 => self.sqn(inp, k),
            _ => inp.u32(),
        }
    }

    /// A crafted packet with bytes overwritten, its checksum filled in or zeroed.
    fn mutated(&mut self, inp: &mut Input<'_>) {
        let k = self.pick_session(inp);
        let (src, dst, mut pkt) = match inp.u8() % 3 {
            0 => self.data_packet(inp, k, true),
            1 => {
                let (dst, p) = self.spm_packet(inp, k);
                (SRC4, dst, p)
            }
            _ => (SRC4, GROUP4, self.ncf_packet(inp, k)),
        };
        for _ in 0..=inp.u8() % 4 {
            if !pkt.is_empty() {
                // In the header, body and options: the payload names a sqn.
                let i = usize::from(inp.u16()) % pkt.len().min(48);
                pkt[i] = inp.u8();
            }
        }
        if inp.bool() {
            checksum::fill(&mut pkt);
        } else if let Some(f) = pkt.get_mut(6..8) {
            f.copy_from_slice(&[0, 0]);
        }
        self.feed(src, dst, &pkt);
    }

    /// One packet (ODATA in order, or an SPM) from each of up to 64 sessions: many peers fast.
    fn spray(&mut self, inp: &mut Input<'_>) {
        let n = 1 + usize::from(inp.u8() % 64);
        let first = usize::from(inp.u16()) % TSIS;
        let stride = 1 + usize::from(inp.u8() % 16);
        let kind = inp.u8();
        let len = usize::from(inp.u8()) * usize::from(kind >> 4);
        for i in 0..n {
            let k = (first + i * stride) % TSIS;
            self.last = k;
            let s = &mut self.sessions[k];
            let sqn = s.next;
            if kind % 4 == 3 {
                let spm_sqn = s.spm_sqn;
                s.spm_sqn = s.spm_sqn.wrapping_add(1);
                let body = Body::Spm(Spm {
                    spm_sqn: SeqNo(spm_sqn),
                    trail: SeqNo(sqn),
                    lead: SeqNo(sqn.wrapping_sub(1)),
                    path: SRC4,
                });
                let pkt = downstream(k, body, &Options::default(), &[]);
                self.feed(SRC4, GROUP4, &pkt);
            } else {
                s.next = sqn.wrapping_add(1 + u32::from(kind % 4 == 2));
                let body = Body::Odata(Data {
                    sqn: SeqNo(sqn),
                    trail: SeqNo(sqn),
                });
                let data = payload(&self.pattern, Some(sqn), len);
                let pkt = downstream(k, body, &Options::default(), &data);
                self.feed(SRC4, GROUP4, &pkt);
            }
        }
    }

    /// Up to 128 in-order ODATA of one session (those the loss mask hits are skipped): builds
    /// NAK credit, confirms sessions, fills windows.
    fn stream(&mut self, inp: &mut Input<'_>) {
        let k = self.pick_session(inp);
        let n = 1 + usize::from(inp.u8() % 128);
        let len = inp.pick(&[0, 8, 200, 1400, 9000]);
        let loss = match inp.u8() % 4 {
            0 => inp.u32(),
            _ => 0,
        };
        let trail_lag = match inp.u8() % 3 {
            0 => 0,
            1 => u32::from(inp.u16()),
            _ => u32::MAX,
        };
        for i in 0..n {
            let sqn = self.sessions[k].next;
            self.sessions[k].next = sqn.wrapping_add(1);
            if loss & (1 << (i % 32)) != 0 {
                continue;
            }
            // The trail lags the stream, or stays where the run started.
            let trail = if trail_lag == u32::MAX {
                self.base
            } else {
                sqn.wrapping_sub(trail_lag)
            };
            let body = Body::Odata(Data {
                sqn: SeqNo(sqn),
                trail: SeqNo(trail),
            });
            let data = payload(&self.pattern, Some(sqn), len);
            let pkt = downstream(k, body, &Options::default(), &data);
            self.feed(SRC4, GROUP4, &pkt);
        }
    }

    /// One to three ODATA of one session at a far position, within a few sqns of each other
    /// (three make a leap the window follows; fewer are held aside).
    fn leap(&mut self, inp: &mut Input<'_>) {
        let k = self.pick_session(inp);
        let n = 1 + u32::from(inp.u8() % 3);
        let far = match inp.u8() % 3 {
            0 => u32::from(inp.u16()) << 4,
            1 => inp.u32() & 0x7fff_ffff,
            _ => inp.u32(),
        };
        let at = self.sessions[k].next.wrapping_add(far);
        let step = 1 + u32::from(inp.u8() % 8);
        let len = usize::from(inp.u8()) * 235;
        for i in 0..n {
            let sqn = at.wrapping_add(i * step);
            let body = Body::Odata(Data {
                sqn: SeqNo(sqn),
                trail: SeqNo(at.wrapping_sub(u32::from(inp.u8()))),
            });
            let data = payload(&self.pattern, Some(sqn), len);
            let pkt = downstream(k, body, &Options::default(), &data);
            self.feed(SRC4, GROUP4, &pkt);
        }
        self.sessions[k].next = at.wrapping_add((n - 1) * step + 1);
    }

    /// `handle_packet`, with the per-call bounds: the work (growth of the missing sqns of the
    /// session the packet names, the only one that can grow; none for an upstream packet) and
    /// the CPU time.
    fn feed(&mut self, src: IpAddr, dst: IpAddr, pkt: &[u8]) {
        // The session the packet names (overwritten bytes may have changed it, or the type).
        let named = PacketRepr::parse(pkt)
            .ok()
            .map(|p| (p.tsi(), !p.packet_type().is_upstream()));
        let t = named.map(|(t, _)| t);
        let pays = named.is_some_and(|(_, down)| down);
        if let (Some(t), true) = (t, pays) {
            self.counters.entry(t).or_default().sent += 1;
        }
        let before = t.and_then(|t| self.rx.peer_stats(t));
        self.packets += 1;
        // The counters after the previous call (a timeout only lowers the missing count).
        let (missing_before, leaps_before, _) = self.totals;
        let cpu = cpu_now();
        self.rx.handle_packet(self.now, src, dst, pkt);
        let took = cpu_now().saturating_sub(cpu);
        let after = t.and_then(|t| self.rx.peer_stats(t));
        let total_after = self.rx.stats();
        self.totals = (
            total_after.missing_now,
            total_after.leaps_followed,
            total_after.footprint,
        );
        let leapt = total_after.leaps_followed > leaps_before;
        if let (Some(t), true) = (t, leapt) {
            self.counters.entry(t).or_default().leapt = true;
        }
        self.drain_events();
        if let (Some(t), true) = (t, leapt) {
            // The delivery that stepped back to the new position used the allowance; if none
            // did (the new position delivered nothing that names its sqn yet, or it is more
            // than 2^31 ahead), the order starts afresh at the next APDU.
            let s = self.counters.entry(t).or_default();
            if s.leapt {
                s.delivered = None;
            }
            s.leapt = false;
        }
        let missing = |s: &Option<PeerStats>| s.as_ref().map_or(0, |s| s.missing_now);
        let growth = missing(&after).saturating_sub(missing(&before));
        self.growth += growth;
        self.summary.max_growth = self.summary.max_growth.max(growth);
        assert!(
            total_after.missing_now <= missing_before + growth,
            "a packet of {t:?} grew the missing sqns of other sessions: {missing_before} → \
             {total_after:?}"
        );
        let c = self.rx.config();
        let l = c.limits;
        // What a downstream packet may buy: its session's reach once the packet has paid for
        // its NAKs, or what one SPM may reveal; a completed leap adds the gaps among its 3
        // packets. An upstream packet (another receiver's NAK, an SPMR) buys nothing.
        let credit = before
            .as_ref()
            .map_or(0, |s| s.nak_credit)
            .saturating_add(l.nak_credit_per_packet)
            .min(l.nak_credit_max);
        let confirmed_now = !before.as_ref().is_some_and(|s| s.confirmed)
            && after.as_ref().is_some_and(|s| s.confirmed);
        let mut allowed = 0;
        if pays {
            allowed = (u64::from(credit) * NAK_SQNS).max(SPM_REVEAL) + 1;
            if leapt {
                allowed += LEAP_NEAR;
            }
        }
        assert!(
            growth <= allowed,
            "one packet of {t:?} opened {growth} missing sqns; it may buy {allowed} (NAK credit \
             {credit} after it, downstream: {pays}, leap followed: {leapt}, confirmed by it: \
             {confirmed_now}, join {:?}); before {before:?}, after {after:?}",
            c.join,
        );
        self.summary.max_call = self.summary.max_call.max(took);
        assert!(
            took < CALL_CPU_LIMIT,
            "handle_packet took {took:?} of CPU time (limit {CALL_CPU_LIMIT:?}) for a {}-byte \
             packet of {t:?}; {total_after:?}",
            pkt.len(),
        );
    }

    /// `handle_timeout`, within the CPU time limit (which grows with the sqns tracked).
    fn timeout(&mut self) {
        let sqns = self.totals.2 / SLOT_COST as u64;
        let limit = CALL_CPU_LIMIT + TIMEOUT_CPU_PER_SQN * u32::try_from(sqns).unwrap_or(u32::MAX);
        let cpu = cpu_now();
        self.rx.handle_timeout(self.now);
        let took = cpu_now().saturating_sub(cpu);
        self.drain_events();
        let r = self.rx.stats();
        self.totals = (r.missing_now, r.leaps_followed, r.footprint);
        self.summary.max_call = self.summary.max_call.max(took);
        assert!(
            took < limit,
            "handle_timeout took {took:?} of CPU time (limit {limit:?} with {sqns} sqns \
             tracked); {r:?}"
        );
    }

    /// `handle_timeout` and a full drain, as a driver does: then the next timeout is in the
    /// future, or the driver would spin.
    fn timeout_and_drain(&mut self) {
        self.timeout();
        self.drain_transmits();
        let t = self.rx.poll_timeout();
        assert!(
            t.is_none_or(|t| t > self.now),
            "Receiver::poll_timeout() = {t:?} at {:?} after handle_timeout and a full drain: a \
             driver would spin; {:?}",
            self.now,
            self.rx.stats()
        );
    }

    /// Drains `poll_transmit`: it ends within the out-queue bound, and every packet is a NAK a
    /// session paid for (within the global NAK rate) or an SPMR.
    fn drain_transmits(&mut self) {
        let l = self.rx.config().limits;
        let mut n = 0;
        let mut created = None;
        while let Some(t) = self.rx.poll_transmit(self.now, &mut self.buf) {
            n += 1;
            assert!(
                n <= l.out_queue.max(2),
                "poll_transmit handed out more than out_queue = {} packets in one drain",
                l.out_queue
            );
            assert_eq!(t.len, self.buf.len(), "Transmit::len");
            let p = PacketRepr::parse_verified(&self.buf).expect("the receiver sent a bad packet");
            assert_eq!(p.sport, DPORT, "upstream packets come from our port");
            let tsi = p.tsi();
            match p.body {
                Body::Nak(nak) => {
                    assert!(
                        t.dst == nak.src_nla,
                        "NAK sent to {} names {}",
                        t.dst,
                        nak.src_nla
                    );
                    let s = self.counters.entry(tsi).or_default();
                    s.naks += 1;
                    self.naks += 1;
                    assert!(
                        s.naks <= s.sent * u64::from(l.nak_credit_per_packet),
                        "{tsi} was sent {} NAKs for the {} packets it sent (credit {} per \
                         packet)",
                        s.naks,
                        s.sent,
                        l.nak_credit_per_packet
                    );
                    let secs = (self.now - self.start).as_secs() + 1;
                    let cap = u64::from(l.nak_burst) + u64::from(l.nak_rate) * secs;
                    assert!(
                        self.naks <= cap,
                        "{} NAK packets in {secs} s (nak_rate {}, nak_burst {})",
                        self.naks,
                        l.nak_rate,
                        l.nak_burst
                    );
                }
                Body::Spmr => {
                    self.spmrs += 1;
                    let created = *created.get_or_insert_with(|| self.rx.stats().peers_created);
                    assert!(
                        self.spmrs <= 2 * created,
                        "{} SPMRs for {created} sessions created",
                        self.spmrs
                    );
                }
                ref b => panic!("the receiver sent {b:?}"),
            }
        }
    }

    /// Drains the events: `PeerJoined` before a session's data and losses, `PeerExpired`
    /// after it.
    fn drain_events(&mut self) {
        let max_apdu = self.rx.config().max_apdu;
        while let Some(ev) = self.rx.poll_event() {
            match ev {
                Event::Data { tsi, apdu } => {
                    let s = self.counters.entry(tsi).or_default();
                    assert!(s.joined, "Data of {tsi} before PeerJoined");
                    assert!(apdu.len() <= max_apdu, "APDU of {} bytes", apdu.len());
                    if let Some(m) = marked_sqn(&apdu) {
                        match s.delivered {
                            Some(last) if m.diff(last) <= 0 && s.leapt => s.leapt = false,
                            Some(last) if m.diff(last) <= 0 => panic!(
                                "{tsi} delivered the APDU of sqn {} after that of sqn {} (in \
                                 order, once)",
                                m.0, last.0
                            ),
                            _ => {}
                        }
                        s.delivered = Some(m);
                    }
                }
                Event::Loss { tsi, count, .. } => {
                    let s = self.counters.entry(tsi).or_default();
                    assert!(count > 0, "Loss of 0 sqns");
                    assert!(
                        s.joined,
                        "Loss of {count} sqns of {tsi} before its PeerJoined (a session that \
                         delivered nothing yet)"
                    );
                }
                Event::PeerJoined { tsi } => {
                    let s = self.counters.entry(tsi).or_default();
                    assert!(!s.joined, "{tsi} joined twice");
                    s.joined = true;
                    s.delivered = None;
                }
                Event::PeerExpired { tsi } => {
                    let s = self.counters.entry(tsi).or_default();
                    assert!(s.joined, "{tsi} expired without PeerJoined");
                    s.joined = false;
                }
                _ => {}
            }
        }
    }

    /// The global bounds, after every step.
    fn check(&mut self) {
        self.drain_events();
        self.rx.check_invariants();
        let r = self.rx.stats();
        let c = self.rx.config();
        let l = c.limits;
        assert!(r.peers <= l.max_peers as u64, "peers: {r:?}");
        assert!(
            r.footprint <= l.max_total_bytes as u64,
            "footprint over max_total_bytes {}: {r:?}",
            l.max_total_bytes
        );
        assert!(r.window_bytes <= r.footprint, "window bytes: {r:?}");
        assert!(
            r.missing_now * SLOT_COST as u64 <= r.footprint,
            "missing sqns not accounted: {r:?}"
        );
        assert!(r.peers_on_probation <= r.peers, "{r:?}");
        let heap = usize::try_from(heap_live() - self.heap_base).unwrap_or(0);
        let allowed = 3 * l.max_total_bytes
            + HEAP_SLACK
            + r.peers as usize * HEAP_PER_PEER
            + l.out_queue * HEAP_PER_OUT;
        assert!(
            heap <= allowed,
            "the receiver holds {heap} bytes of heap (allowed {allowed}: 3 × max_total_bytes \
             {} + {HEAP_SLACK} + {HEAP_PER_PEER} per peer + {HEAP_PER_OUT} per out-queue \
             packet); {r:?}",
            l.max_total_bytes
        );
        let s = &mut self.summary;
        s.max_peers = s.max_peers.max(r.peers);
        s.max_footprint = s.max_footprint.max(r.footprint);
        s.max_heap = s.max_heap.max(heap);
        s.peers_full |= r.peers == l.max_peers as u64;
    }

    /// 400 s without packets, driven like a real driver: woken at `poll_timeout` (at most once
    /// a millisecond), every transmit drained. Then every peer has expired.
    fn settle(&mut self) {
        let end = self.now + Duration::from_secs(400);
        loop {
            self.summary.wakeups += 1;
            self.timeout_and_drain();
            self.check();
            if self.now >= end {
                break;
            }
            let t = self.rx.poll_timeout().unwrap_or(end);
            self.now = t.max(self.now + Duration::from_millis(1)).min(end);
        }
        let r = self.rx.stats();
        assert_eq!(
            (r.peers, r.footprint, r.missing_now, r.window_bytes),
            (0, 0, 0, 0),
            "receiver not empty after 400 s of silence: {r:?}"
        );
        if let Some((t, _)) = self.counters.iter().find(|(_, s)| s.joined) {
            panic!("{t} joined and never expired");
        }
        let heap = heap_live() - self.heap_base;
        assert!(
            heap <= isize::try_from(HEAP_SLACK).unwrap_or(isize::MAX),
            "the receiver still holds {heap} bytes of heap without peers"
        );
    }
}

/// The first byte of a payload that names its packet's sqn in the next 4 (little-endian), so
/// the order of delivery can be checked.
const MARK: u8 = 0x4d;

/// A payload of `len` bytes (one repeated byte), naming `sqn` when given and there is room.
fn payload(pattern: &[u8], sqn: Option<u32>, len: usize) -> Vec<u8> {
    let mut v = pattern[..len].to_vec();
    if let (Some(sqn), Some(head)) = (sqn, v.get_mut(..5)) {
        head[0] = MARK;
        head[1..].copy_from_slice(&sqn.to_le_bytes());
    }
    v
}

/// The sqn an APDU's payload names (see [`payload`]).
fn marked_sqn(apdu: &[u8]) -> Option<SeqNo> {
    match apdu {
        [MARK, a, b, c, d, ..] => Some(SeqNo(u32::from_le_bytes([*a, *b, *c, *d]))),
        _ => None,
    }
}

/// A payload length: empty, small, up to an Ethernet MTU, up to a jumbo frame, or larger.
fn payload_len(inp: &mut Input<'_>) -> usize {
    match inp.u8() % 8 {
        0 => 0,
        1 | 2 => usize::from(inp.u8()),
        3 | 4 => usize::from(inp.u16()) % 1501,
        5 | 6 => usize::from(inp.u16()) % 9001,
        _ => usize::from(inp.u16()) % (MAX_PAYLOAD + 1),
    }
}

/// A downstream packet of session `k`.
fn downstream(k: usize, body: Body, options: &Options, payload: &[u8]) -> Vec<u8> {
    let t = tsi(k);
    PacketRepr {
        sport: t.sport,
        dport: DPORT,
        gsi: t.gsi,
        parity: false,
        var_pktlen: false,
        body,
        options: *options,
        payload,
    }
    .to_vec()
}

/// An upstream packet (NAK, NNAK, SPMR) for session `k`.
fn upstream(k: usize, body: Body, options: &Options) -> PacketRepr<'static> {
    let t = tsi(k);
    PacketRepr {
        sport: DPORT,
        dport: t.sport,
        gsi: t.gsi,
        parity: false,
        var_pktlen: false,
        body,
        options: *options,
        payload: &[],
    }
}
