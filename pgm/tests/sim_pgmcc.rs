//! PGMCC (docs/congestion.md) in the simulator: the source follows the slowest receiver's
//! bottleneck, switches ACKer when a slower one joins and back when it leaves, starts at once,
//! and stays bounded under forged ACKs, feedback and ACKer designations.

mod support;

use std::{cell::RefCell, net::IpAddr, rc::Rc, time::Duration};

use pgm::{
    sim::{Dir, DropReason, LinkConfig, NodeId, TapKind},
    source::SendError,
    time::Instant,
    wire::{
        options::{PgmccData, PgmccFeedback},
        Ack, Body, Data, Gsi, Nak, Options, PacketRepr, SeqNo, Tsi,
    },
    Congestion, PgmccConfig, Receiver, ReceiverConfig, Source, SourceConfig,
};
use support::{rx_addr, Lan, DPORT, GROUP, SRC_ADDR, TSI};

const APDU: usize = 1000;
/// 10 Mbit/s.
const BOTTLENECK: u64 = 1_250_000;
/// ODATA of one APDU on the simulated wire (PGM bytes: the sim counts what nodes send).
const ODATA_BYTES: usize = APDU + 24 + 20;
/// A source cap far above every bottleneck: 100 Mbit/s.
const CAP: u64 = 12_500_000;

/// What the tap saw, per 100 ms slot where it matters.
#[derive(Default)]
struct Tap {
    /// ODATA the source sent.
    odata_sent: u64,
    /// Time of the first ODATA sent.
    first_odata: Option<Instant>,
    /// ODATA tail-dropped on the way to each node (by node index).
    odata_dropped: Vec<u64>,
    /// Bytes from the source delivered to each node, per 100 ms slot.
    delivered: Vec<Vec<u64>>,
}

impl Tap {
    /// Bytes/s delivered to node `n` over `from..to`.
    fn rate(&self, n: usize, from: Instant, to: Instant) -> f64 {
        let (a, b) = (
            (from.as_micros() / 100_000) as usize,
            (to.as_micros() / 100_000) as usize,
        );
        let v = &self.delivered[n];
        let sum: u64 = v.iter().take(b).skip(a).sum();
        sum as f64 / ((b - a) as f64 / 10.0)
    }

    /// The end of the first 100 ms slot in which node `n` got at least `share` of `rate`
    /// bytes/s: how long the session took to converge.
    fn converged(&self, n: usize, rate: u64, share: f64) -> Option<Duration> {
        let slot = share * rate as f64 / 10.0;
        let i = self.delivered[n].iter().position(|&b| b as f64 >= slot)?;
        Some(Duration::from_millis(100 * (i as u64 + 1)))
    }
}

#[expect(
    clippy::cast_sign_loss,
    clippy::cast_possible_truncation,
    reason = "test times are small and positive"
)]
fn secs(s: f64) -> Instant {
    Instant::from_millis((s * 1000.0) as u64)
}

fn pgmcc() -> Congestion {
    Congestion::Pgmcc(PgmccConfig::default())
}

/// `receivers` receivers on 1 ms links, PGMCC on or off, the source capped at 100 Mbit/s.
fn lan(seed: u64, receivers: usize, congestion: Congestion) -> (Lan, Rc<RefCell<Tap>>) {
    let mut lan = Lan::new(
        seed,
        receivers,
        |c| {
            c.rate = Some(CAP);
            c.congestion = congestion;
        },
        |c| c.congestion = congestion,
    );
    let link = LinkConfig {
        delay: Duration::from_millis(1),
        ..LinkConfig::default()
    };
    lan.receiver_links(&link, &link);
    let nodes = receivers + 1;
    let tap = Rc::new(RefCell::new(Tap {
        odata_dropped: vec![0; nodes],
        delivered: vec![Vec::new(); nodes],
        ..Tap::default()
    }));
    let t = tap.clone();
    let src = lan.src;
    lan.sim.set_tap(move |ev| {
        if ev.from != src {
            return;
        }
        let odata = PacketRepr::parse(ev.bytes).is_ok_and(|r| matches!(r.body, Body::Odata(_)));
        let mut t = t.borrow_mut();
        match (ev.kind, ev.to_node) {
            (TapKind::Sent, _) if odata => {
                t.odata_sent += 1;
                t.first_odata.get_or_insert(ev.time);
            }
            (TapKind::Dropped(DropReason::Queue), Some(n)) if odata => {
                t.odata_dropped[n.index()] += 1;
            }
            (TapKind::Delivered, Some(n)) => {
                let slot = (ev.time.as_micros() / 100_000) as usize;
                let v = &mut t.delivered[n.index()];
                if v.len() <= slot {
                    v.resize(slot + 1, 0);
                }
                v[slot] += ev.bytes.len() as u64;
            }
            _ => {}
        }
    });
    (lan, tap)
}

/// A `rate` bytes/s link with a 50-packet tail-drop queue and 2 ms of delay.
fn bottleneck(rate: u64) -> LinkConfig {
    LinkConfig {
        rate: Some(rate),
        queue_limit: Some(50 * ODATA_BYTES),
        delay: Duration::from_millis(2),
        ..LinkConfig::default()
    }
}

/// Keeps the source's send queue full until `until`, draining receivers every millisecond
/// and calling `each` after each millisecond. Returns the APDUs sent.
fn saturate(lan: &mut Lan, from: u64, until: Instant, mut each: impl FnMut(&mut Lan)) -> u64 {
    let sizes = |_| APDU;
    let src = lan.src;
    let mut i = from;
    while lan.sim.now() < until {
        loop {
            let data = support::apdu(i, APDU);
            match lan
                .sim
                .with_node_mut(src, |s: &mut Source, now| s.send(now, &data))
            {
                Ok(()) => i += 1,
                Err(SendError::WouldBlock) => break,
                Err(e) => panic!("send {i}: {e}"),
            }
        }
        lan.sim.run_for(Duration::from_millis(1)).expect("sim");
        lan.drain(&sizes);
        each(lan);
    }
    i
}

fn acker(lan: &Lan) -> Option<IpAddr> {
    lan.sim.node::<Source>(lan.src).stats().pgmcc.acker
}

#[test]
fn follows_the_bottleneck_without_loss() {
    let (mut lan, tap) = lan(0x9cc1, 3, pgmcc());
    let slow = lan.rx[2];
    lan.sim
        .set_links(slow, LinkConfig::default(), bottleneck(BOTTLENECK));
    lan.sim.link_mut(slow, Dir::Egress).delay = Duration::from_millis(2);
    lan.sim.run_for(Duration::from_millis(5)).expect("sim");
    let end = secs(8.0);
    let count = saturate(&mut lan, 0, end, |_| {});
    lan.finish(count, &|_| APDU, Duration::from_secs(5));

    let t = tap.borrow();
    let rate = t.rate(slow.index(), secs(2.0), end);
    let loss = t.odata_dropped[slow.index()] as f64 / t.odata_sent as f64;
    let s = lan.sim.node::<Source>(lan.src).stats();
    let converged = t.converged(slow.index(), BOTTLENECK, 0.9);
    println!("PGMCC at a 10 Mbit/s bottleneck: 90 % of it reached within {converged:?}");
    assert!(converged.is_some_and(|c| c <= Duration::from_secs(1)));
    println!(
        "PGMCC at a 10 Mbit/s bottleneck: {:.1} Mbit/s delivered (2..8 s) = {:.1} % of it; \
         {} of {} ODATA tail-dropped ({:.3} %); window {}, RTT {:?}, ACKer {:?}, {} switches, \
         {} ACKs ({} ignored), {} loss events, {} timeouts",
        rate * 8e-6,
        100.0 * rate / BOTTLENECK as f64,
        t.odata_dropped[slow.index()],
        t.odata_sent,
        100.0 * loss,
        s.pgmcc.window,
        s.pgmcc.rtt,
        s.pgmcc.acker,
        s.pgmcc.acker_switches,
        s.pgmcc.acks_received,
        s.pgmcc.acks_ignored,
        s.pgmcc.loss_events,
        s.pgmcc.timeouts,
    );
    assert!(rate >= 0.8 * BOTTLENECK as f64, "converged to {rate} B/s");
    assert!(loss < 0.01, "bottlenecked receiver lost {loss} of ODATA");
    assert_eq!(
        s.pgmcc.acker,
        Some(rx_addr(2)),
        "the bottlenecked receiver is ACKer"
    );
    for (k, c) in lan.checkers.iter().enumerate() {
        assert_eq!(c.next, count, "receiver {k} got everything");
        assert_eq!(c.loss_sqns, 0, "receiver {k}: no unrecoverable loss");
        assert!(c.errors.is_empty(), "receiver {k}: {:?}", c.errors);
    }
}

#[test]
fn without_pgmcc_the_bottleneck_drops() {
    let (mut lan, tap) = lan(0x9cc2, 3, Congestion::None);
    let slow = lan.rx[2];
    lan.sim
        .set_links(slow, LinkConfig::default(), bottleneck(BOTTLENECK));
    lan.sim.run_for(Duration::from_millis(5)).expect("sim");
    saturate(&mut lan, 0, secs(1.0), |_| {});
    let t = tap.borrow();
    let loss = t.odata_dropped[slow.index()] as f64 / t.odata_sent as f64;
    println!(
        "no congestion control, 100 Mbit/s cap, 10 Mbit/s bottleneck: {} of {} ODATA \
         tail-dropped ({:.1} %)",
        t.odata_dropped[slow.index()],
        t.odata_sent,
        100.0 * loss
    );
    assert!(loss > 0.5, "expected heavy loss without PGMCC, got {loss}");
}

#[test]
fn no_startup_stall() {
    let (mut lan, tap) = lan(0x9cc3, 3, pgmcc());
    lan.sim.run_for(Duration::from_millis(5)).expect("sim");
    let start = lan.sim.now();
    let end = start + Duration::from_millis(100);
    saturate(&mut lan, 0, end, |_| {});
    let t = tap.borrow();
    let first = t.first_odata.expect("ODATA sent");
    let got = lan.checkers[0].next;
    println!(
        "first ODATA {:?} after the first send; {got} APDUs delivered in the first 100 ms",
        first.saturating_duration_since(start)
    );
    assert!(first.saturating_duration_since(start) < Duration::from_millis(2));
    // Congestion avoidance from IW = 4 on 1 ms links, paced as a TCP flow with a 15 ms round
    // trip (the pace floor): 4 + 5 + 6 + … ≈ 47 packets in 100 ms, not a stall.
    assert!(got >= 40, "only {got} APDUs in the first 100 ms");
    assert!(acker(&lan).is_some(), "an ACKer was elected");
}

#[test]
fn slower_receiver_becomes_acker_and_leaves() {
    let (mut lan, tap) = lan(0x9cc4, 4, pgmcc());
    let (mid, slow) = (lan.rx[2], lan.rx[3]);
    lan.sim
        .set_links(mid, LinkConfig::default(), bottleneck(BOTTLENECK));
    lan.sim.link_mut(mid, Dir::Egress).delay = Duration::from_millis(2);
    lan.sim
        .set_links(slow, LinkConfig::default(), bottleneck(BOTTLENECK / 2));
    lan.sim.link_mut(slow, Dir::Egress).delay = Duration::from_millis(2);
    let (join, leave, end) = (3.0, 7.0, 11.0);
    let at = secs;
    for dir in [Dir::Ingress, Dir::Egress] {
        lan.sim.link_down(slow, dir, Instant::ZERO..at(join));
        lan.sim.link_down(slow, dir, at(leave)..at(1000.0));
    }
    lan.sim.run_for(Duration::from_millis(5)).expect("sim");
    let (mut elected, mut reelected) = (None, None);
    let slow_addr = rx_addr(3);
    let count = saturate(&mut lan, 0, at(end), |lan| {
        let now = lan.sim.now();
        let a = acker(lan);
        if elected.is_none() && now >= at(join) && a == Some(slow_addr) {
            elected = Some(now);
        }
        if reelected.is_none() && now >= at(leave) && a.is_some() && a != Some(slow_addr) {
            reelected = Some(now);
        }
    });
    // The slow receiver's checker saw the stream from the middle: only the others finish.
    lan.checkers.truncate(3);
    lan.finish(count, &|_| APDU, Duration::from_secs(10));

    let t = tap.borrow();
    let before = t.rate(mid.index(), at(1.5), at(join));
    let during = t.rate(mid.index(), at(join + 1.5), at(leave));
    let after = t.rate(mid.index(), at(leave + 2.0), at(end));
    let s = lan.sim.node::<Source>(lan.src).stats();
    println!(
        "switch to the 5 Mbit/s receiver {:?} after it joined, back {:?} after it left; \
         delivered to the 10 Mbit/s receiver: {:.1} Mbit/s before, {:.1} during, {:.1} after; \
         {} switches, {} timeouts",
        elected.map(|t| t.saturating_duration_since(at(join))),
        reelected.map(|t| t.saturating_duration_since(at(leave))),
        before * 8e-6,
        during * 8e-6,
        after * 8e-6,
        s.pgmcc.acker_switches,
        s.pgmcc.timeouts,
    );
    let elected = elected.expect("the slow receiver became ACKer");
    assert!(elected.saturating_duration_since(at(join)) < Duration::from_millis(500));
    assert!(
        during <= 0.6 * BOTTLENECK as f64,
        "rate followed the slow receiver: {during}"
    );
    let reelected = reelected.expect("a new ACKer after the slow one left");
    assert!(reelected.saturating_duration_since(at(leave)) < Duration::from_secs(1));
    assert!(after >= 0.8 * BOTTLENECK as f64, "rate recovered: {after}");
    for (k, c) in lan.checkers.iter().enumerate() {
        assert_eq!(c.next, count, "receiver {k} got everything");
        assert_eq!(c.loss_sqns, 0, "receiver {k}: no unrecoverable loss");
    }
}

/// An ACK (or, `nak`, a NAK) for our session from `from`, carrying `fb`.
fn upstream(tsi: Tsi, body: Body, fb: Option<PgmccFeedback>) -> Vec<u8> {
    PacketRepr {
        sport: DPORT,
        dport: tsi.sport,
        gsi: tsi.gsi,
        parity: false,
        var_pktlen: false,
        body,
        options: Options {
            pgmcc_feedback: fb,
            ..Options::default()
        },
        payload: &[],
    }
    .to_vec()
}

/// ODATA (RDATA when `repair`) of `tsi` with sqn `sqn` (trail 0) and OPT_PGMCC_DATA naming
/// `acker` with `tstamp`.
fn naming_acker(
    tsi: Tsi,
    repair: bool,
    sqn: u32,
    tstamp: u32,
    acker: IpAddr,
    payload: &[u8],
) -> Vec<u8> {
    let data = Data {
        sqn: SeqNo(sqn),
        trail: SeqNo(0),
    };
    let body = if repair {
        Body::Rdata(data)
    } else {
        Body::Odata(data)
    };
    let options = Options {
        pgmcc_data: Some(PgmccData { tstamp, acker }),
        ..Options::default()
    };
    support::downstream(tsi, body, &options, payload)
}

/// xorshift64: forged fields, reproducible from the printed seed.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// A forged ACK or NAK (drawn from `r`) for a source whose last ODATA is `lead`: the sender
/// to claim, the packet, and whether the source must ignore it.
fn forge(r: u64, lead: SeqNo, now: Instant) -> (IpAddr, Vec<u8>, bool) {
    let (acker, other) = (rx_addr(0), rx_addr(1));
    let ts = (now.as_micros() / 1000) as u32;
    let fb = |nla, loss| PgmccFeedback {
        tstamp: ts,
        loss_rate: loss,
        nla,
    };
    let ack = |rx_max, bitmap| Body::Ack(Ack { rx_max, bitmap });
    match r % 7 {
        // The ACKer (or who claims its address) acknowledging everything: the window
        // opens, never past its cap.
        0 => (
            acker,
            upstream(TSI, ack(lead, u32::MAX), Some(fb(acker, 0))),
            false,
        ),
        1 => {
            let tsi = Tsi {
                gsi: Gsi([9; 6]),
                sport: TSI.sport,
            };
            (
                acker,
                upstream(tsi, ack(lead, u32::MAX), Some(fb(acker, 0))),
                true,
            )
        }
        2 => {
            let beyond = lead.add(1 + (r >> 8) as u32 % 1_000_000);
            (
                acker,
                upstream(TSI, ack(beyond, u32::MAX), Some(fb(acker, 0))),
                true,
            )
        }
        // Feedback naming someone else than its sender, or no feedback at all.
        3 => (
            other,
            upstream(TSI, ack(lead, u32::MAX), Some(fb(acker, 0))),
            true,
        ),
        4 => (acker, upstream(TSI, ack(lead, u32::MAX), None), true),
        // Forged reports: random timestamps and loss rates, in ACKs and NAKs.
        5 => {
            let f = PgmccFeedback {
                tstamp: (r >> 16) as u32,
                loss_rate: (r >> 48) as u16,
                nla: other,
            };
            (
                other,
                upstream(TSI, ack(lead, (r >> 3) as u32), Some(f)),
                false,
            )
        }
        _ => {
            let nak = Body::Nak(Nak {
                sqn: lead,
                src_nla: SRC_ADDR,
                grp_nla: GROUP,
            });
            let f = PgmccFeedback {
                tstamp: (r >> 16) as u32,
                loss_rate: (r >> 48) as u16,
                nla: other,
            };
            (other, upstream(TSI, nak, Some(f)), false)
        }
    }
}

#[test]
fn forged_acks_and_feedback_stay_bounded() {
    let guard = pgm::sim::SeedGuard::from_env(0x9cc5);
    let mut rng = guard.seed() | 1;
    let cap = 64;
    let mut cfg = SourceConfig::new(TSI, DPORT, GROUP, SRC_ADDR);
    cfg.congestion = Congestion::Pgmcc(PgmccConfig {
        max_window: cap,
        ..PgmccConfig::default()
    });
    let mut src = Source::new(cfg);
    let mut buf = Vec::new();
    let mut lead = None;
    for round in 0..20_000u64 {
        let now = Instant::from_micros(round * 100);
        let _ = src.send(now, &[7; 100]);
        while src.poll_transmit(now, &mut buf).is_some() {
            if let Ok(Body::Odata(d)) = PacketRepr::parse(&buf).map(|r| r.body) {
                lead = Some(d.sqn);
            }
        }
        let Some(lead) = lead else { continue };
        let r = next(&mut rng);
        let dropped = |s: &pgm::SourceStats| s.pgmcc.acks_ignored + s.ignored;
        let before = src.stats();
        let (from, pkt, must_be_ignored) = forge(r, lead, now);
        src.handle_packet(now, from, SRC_ADDR, &pkt);
        let after = src.stats();
        let window = after.pgmcc.window;
        assert!(window <= u64::from(cap), "window {window} past its cap");
        if must_be_ignored {
            // Another session's ACK is not ours at all; ours that fail validation are
            // counted as ignored. Neither moves the window.
            assert_eq!(dropped(&after), dropped(&before) + 1, "round {round}");
            assert_eq!(window, before.pgmcc.window, "round {round}");
        }
    }
    let s = src.stats().pgmcc;
    println!(
        "forged ACKs: {} received, {} ignored; window {} (cap {cap}); {} ACKer switches",
        s.acks_received, s.acks_ignored, s.window, s.acker_switches
    );
    assert!(s.acks_ignored > s.acks_received / 3);
}

#[test]
fn forged_acker_designation_is_budgeted() {
    let me = rx_addr(0);
    let (rate, burst) = (1000, 50);
    let mut cfg = ReceiverConfig::new(DPORT);
    cfg.congestion = Congestion::Pgmcc(PgmccConfig {
        ack_rate: rate,
        ack_burst: burst,
        ..PgmccConfig::default()
    });
    cfg.nla = Some(me);
    let mut rx = Receiver::new(cfg);
    let forged = Tsi {
        gsi: Gsi([6; 6]),
        sport: 999,
    };
    let forger: IpAddr = "10.9.9.9".parse().unwrap();
    let mut buf = Vec::new();
    let mut acks = 0u64;
    // One second of forged ODATA, 100 000 packets, each naming us ACKer.
    for i in 0..100_000u32 {
        let now = Instant::from_micros(u64::from(i) * 10);
        let odata = naming_acker(forged, false, i, i, me, b"forged");
        rx.handle_packet(now, forger, GROUP, &odata);
        rx.handle_timeout(now);
        while rx.poll_transmit(now, &mut buf).is_some() {
            if PacketRepr::parse(&buf).is_ok_and(|r| matches!(r.body, Body::Ack(_))) {
                acks += 1;
            }
        }
        while rx.poll_event().is_some() {}
    }
    let s = rx.stats();
    println!(
        "forged ACKer designation: {acks} ACKs sent for 100000 ODATA in 1 s ({} over budget)",
        s.pgmcc_acks_over_budget
    );
    assert_eq!(acks, s.pgmcc_acks_sent);
    assert!(acks <= u64::from(burst + rate) + 1, "{acks} ACKs");
    assert!(s.pgmcc_acks_over_budget > 90_000);
}

/// The ACKer ACKs repairs too, judged by the ACKer the latest ODATA named: OpenPGM's RDATA
/// repeats the original ODATA's option, whose ACKer may be stale either way.
#[test]
fn acker_of_the_latest_odata_acks_repairs() {
    let me = rx_addr(0);
    let other: IpAddr = "10.9.9.8".parse().unwrap();
    let unspecified: IpAddr = "0.0.0.0".parse().unwrap();
    let mut cfg = ReceiverConfig::new(DPORT);
    cfg.congestion = pgmcc();
    cfg.nla = Some(me);
    let mut rx = Receiver::new(cfg);
    let tsi = Tsi {
        gsi: Gsi([7; 6]),
        sport: 1000,
    };
    let source: IpAddr = "10.9.9.1".parse().unwrap();
    let mut buf = Vec::new();
    let mut t = 0u64;
    // Feeds one data packet (ODATA, or RDATA when `repair`) naming `acker`; returns the ACKs.
    let mut feed = |sqn: u32, repair: bool, acker: IpAddr| -> usize {
        t += 1_000;
        let now = Instant::from_micros(t);
        let packet = naming_acker(tsi, repair, sqn, sqn, acker, b"data");
        rx.handle_packet(now, source, GROUP, &packet);
        let mut acks = 0;
        while rx.poll_transmit(now, &mut buf).is_some() {
            if PacketRepr::parse(&buf).is_ok_and(|r| matches!(r.body, Body::Ack(_))) {
                acks += 1;
            }
        }
        while rx.poll_event().is_some() {}
        acks
    };
    assert_eq!(feed(0, false, me), 1, "ODATA naming us");
    assert_eq!(feed(2, false, me), 1, "ODATA naming us, sqn 1 missing");
    // The repair of sqn 1 repeats an option from before we were ACKer.
    assert_eq!(feed(1, true, unspecified), 1, "RDATA while we are ACKer");
    assert_eq!(feed(4, false, other), 0, "ODATA naming another receiver");
    assert_eq!(feed(3, true, me), 0, "RDATA with a stale option naming us");
}

/// The first ACKer on a fast path (docs/congestion.md): a receiver 0.05 ms away answers the
/// election long before one behind a 10 Mbit/s bottleneck and 5 ms of delay. Pacing keeps its
/// window from flooding the slow path until the slow receiver's loss report takes over.
#[test]
fn a_fast_first_acker_does_not_flood_the_slow_path() {
    let (mut lan, tap) = lan(0x9cc7, 2, pgmcc());
    let (fast, slow) = (lan.rx[0], lan.rx[1]);
    let lan_link = LinkConfig {
        delay: Duration::from_micros(50),
        ..LinkConfig::default()
    };
    lan.sim.set_links(fast, lan_link.clone(), lan_link);
    let mut path = bottleneck(BOTTLENECK);
    path.delay = Duration::from_millis(5);
    lan.sim.set_links(slow, LinkConfig::default(), path);
    lan.sim.link_mut(slow, Dir::Egress).delay = Duration::from_millis(5);
    let end = secs(4.0);
    slow_path_kept_clear(&mut lan, &tap, slow, end, "fast first ACKer");
}

/// Saturates the source until `end`, then checks that the receiver behind the slow path
/// (`rx_addr(1)`) ended up ACKer, under 1 % of the ODATA was tail-dropped on its path, and
/// every receiver got everything.
fn slow_path_kept_clear(
    lan: &mut Lan,
    tap: &Rc<RefCell<Tap>>,
    slow: NodeId,
    end: Instant,
    label: &str,
) {
    let count = saturate(lan, 0, end, |_| {});
    lan.finish(count, &|_| APDU, Duration::from_secs(5));
    let t = tap.borrow();
    let dropped = t.odata_dropped[slow.index()];
    let s = lan.sim.node::<Source>(lan.src).stats();
    println!(
        "{label}: {dropped} of {} ODATA tail-dropped at the slow path; ACKer {:?}, \
         {} switches, {} timeouts",
        t.odata_sent, s.pgmcc.acker, s.pgmcc.acker_switches, s.pgmcc.timeouts
    );
    assert_eq!(
        s.pgmcc.acker,
        Some(rx_addr(1)),
        "{label}: the slow receiver is ACKer"
    );
    assert!(
        (dropped as f64) < 0.01 * t.odata_sent as f64,
        "{label}: {dropped} of {} dropped",
        t.odata_sent
    );
    for (k, c) in lan.checkers.iter().enumerate() {
        assert_eq!(c.next, count, "{label}: receiver {k} got everything");
        assert_eq!(
            c.loss_sqns, 0,
            "{label}: receiver {k}: no unrecoverable loss"
        );
    }
}

/// A fast ACKer's ACKs keep coming while a worse receiver's NAKs report loss and a longer
/// round trip: the worse one takes over at its first report.
#[test]
fn a_lossy_receivers_nak_takes_over_from_a_fast_acker() {
    let mut cfg = SourceConfig::new(TSI, DPORT, GROUP, SRC_ADDR);
    cfg.congestion = pgmcc();
    let mut src = Source::new(cfg);
    let (fast, slow) = (rx_addr(0), rx_addr(1));
    let mut buf = Vec::new();
    let mut lead = None;
    for ms in 0..300u64 {
        let now = Instant::from_millis(ms);
        let _ = src.send(now, &[7; 100]);
        while src.poll_transmit(now, &mut buf).is_some() {
            if let Ok(Body::Odata(d)) = PacketRepr::parse(&buf).map(|r| r.body) {
                lead = Some(d.sqn);
            }
        }
        let Some(lead) = lead else { continue };
        let ts = ms as u32;
        let fb = |nla, tstamp, loss_rate| {
            Some(PgmccFeedback {
                tstamp,
                loss_rate,
                nla,
            })
        };
        let ack = Body::Ack(Ack {
            rx_max: lead,
            bitmap: u32::MAX,
        });
        src.handle_packet(now, fast, SRC_ADDR, &upstream(TSI, ack, fb(fast, ts, 0)));
        if ms >= 150 {
            let nak = Body::Nak(Nak {
                sqn: lead.sub(20),
                src_nla: SRC_ADDR,
                grp_nla: GROUP,
            });
            let fb = fb(slow, ts.saturating_sub(40), 2851);
            src.handle_packet(now, slow, SRC_ADDR, &upstream(TSI, nak, fb));
        }
        let acker = src.stats().pgmcc.acker;
        if ms == 149 {
            assert_eq!(acker, Some(fast), "the fast receiver is ACKer first");
        }
        if ms == 151 {
            assert_eq!(acker, Some(slow), "the lossy receiver took over");
        }
    }
}

/// Repairs take tokens but, unlike ODATA, used not to start the ACK timeout: after the ACKer
/// had acknowledged everything (no timeout running) a worse receiver's NAK took over and its
/// repairs spent the window, and nothing reopened it. The new ACKer is named in ODATA only,
/// so it never ACKed: the session stalled (seen on the namespace LAN). Now the timeout runs
/// for repairs too and, when it expires, reopens the window.
#[test]
fn repairs_that_spend_the_window_do_not_stall_the_session() {
    let mut cfg = SourceConfig::new(TSI, DPORT, GROUP, SRC_ADDR);
    cfg.congestion = pgmcc();
    let mut src = Source::new(cfg);
    let (fast, slow) = (rx_addr(0), rx_addr(1));
    let mut buf = Vec::new();
    let fb = |nla, tstamp, loss_rate| {
        Some(PgmccFeedback {
            tstamp,
            loss_rate,
            nla,
        })
    };
    let mut lead = SeqNo(0);
    let mut odata_after_switch = 0;
    for ms in 0..1_000u64 {
        let now = Instant::from_millis(ms);
        let _ = src.send(now, &[7; 100]);
        while src.poll_transmit(now, &mut buf).is_some() {
            if let Ok(Body::Odata(d)) = PacketRepr::parse(&buf).map(|r| r.body) {
                lead = d.sqn;
                if ms > 100 {
                    odata_after_switch += 1;
                }
            }
        }
        let ts = ms as u32;
        if ms <= 100 {
            // The fast ACKer acknowledges everything sent: nothing in flight, no timeout.
            let ack = Body::Ack(Ack {
                rx_max: lead,
                bitmap: u32::MAX,
            });
            src.handle_packet(now, fast, SRC_ADDR, &upstream(TSI, ack, fb(fast, ts, 0)));
        }
        if ms == 100 {
            // The slow receiver's NAK for many sqns: it takes over, its repairs spend T.
            let list: Vec<SeqNo> = (1..=60).map(|i| lead.sub(i)).collect();
            let nak = PacketRepr {
                sport: DPORT,
                dport: TSI.sport,
                gsi: TSI.gsi,
                parity: false,
                var_pktlen: false,
                body: Body::Nak(Nak {
                    sqn: lead,
                    src_nla: SRC_ADDR,
                    grp_nla: GROUP,
                }),
                options: Options {
                    pgmcc_feedback: fb(slow, ts.saturating_sub(40), 20_000),
                    nak_list: Some(pgm::wire::options::NakList::from_slice(&list)),
                    ..Options::default()
                },
                payload: &[],
            }
            .to_vec();
            src.handle_packet(now, slow, SRC_ADDR, &nak);
            assert_eq!(
                src.stats().pgmcc.acker,
                Some(slow),
                "the slow receiver took over"
            );
        }
        // After the switch nobody ACKs: the slow receiver has not yet seen ODATA naming it.
    }
    let s = src.stats();
    println!(
        "after the switch: {odata_after_switch} ODATA, {} RDATA, {} timeouts",
        s.rdata_sent, s.pgmcc.timeouts
    );
    assert!(s.rdata_sent > 4, "the repairs went");
    assert!(s.pgmcc.timeouts >= 1, "the ACK timeout ran");
    assert!(
        odata_after_switch > 0,
        "the session stalled after the switch"
    );
}

/// The namespace LAN of netns-tests/tests/pgmcc_netns.rs in the simulator: every link 50 µs,
/// one receiver behind 20 Mbit/s with a 50-packet tail-drop queue. Whoever reports first is
/// ACKer; when it is the fast receiver, its sub-millisecond ACKs see nothing of the slow
/// path's queue, and the slow receiver's first loss report comes a full queue (~20 ms) after
/// the first drop. Paced at one window per floor, the window opens by one packet per floor,
/// and the overshoot in that delay stays under 1 % of what is sent: 18–19 of ~4 030 (at two
/// windows per 10 ms, twice the rate and twice the growth, it was 62 of 4 983, 1.2 %, and
/// ~100 on the LAN).
#[test]
fn a_fast_first_acker_on_a_lan_overshoots_little() {
    const LAN_BOTTLENECK: u64 = 2_500_000;
    for seed in 0..6u64 {
        let (mut lan, tap) = lan(0x9cc8_0000 + seed, 2, pgmcc());
        let (fast, slow) = (lan.rx[0], lan.rx[1]);
        let hop = LinkConfig {
            delay: Duration::from_micros(50),
            ..LinkConfig::default()
        };
        lan.sim.set_links(fast, hop.clone(), hop.clone());
        let mut path = bottleneck(LAN_BOTTLENECK);
        path.delay = Duration::from_micros(50);
        lan.sim.set_links(slow, hop, path);
        let end = secs(2.0);
        slow_path_kept_clear(&mut lan, &tap, slow, end, &format!("seed {seed}"));
    }
}

/// A receiver reports once to every PGMCC session, also when the data already names another
/// ACKer: on the namespace LAN the receiver behind the bottleneck otherwise sent its first
/// unicast packet to the source only with its first NAK, when the ARP reply it needed was
/// tail-dropped in the congested queue towards it; its NAKs then waited a second for the ARP
/// retry, and the source flooded it meanwhile (docs/congestion.md, "the first ACKer").
#[test]
fn a_receiver_reports_once_whoever_is_acker() {
    let me = rx_addr(0);
    let other: IpAddr = "10.9.9.8".parse().unwrap();
    let mut cfg = ReceiverConfig::new(DPORT);
    cfg.congestion = pgmcc();
    cfg.nla = Some(me);
    let mut rx = Receiver::new(cfg);
    let tsi = Tsi {
        gsi: Gsi([5; 6]),
        sport: 1000,
    };
    let source: IpAddr = "10.9.9.1".parse().unwrap();
    let mut buf = Vec::new();
    let mut reports = Vec::new();
    for i in 0..200u32 {
        let now = Instant::from_micros(u64::from(i) * 100);
        let packet = naming_acker(tsi, false, i, i / 10, other, b"data");
        rx.handle_packet(now, source, GROUP, &packet);
        rx.handle_timeout(now);
        while let Some(t) = rx.poll_transmit(now, &mut buf) {
            if let Ok(PacketRepr {
                body: Body::Ack(_),
                options,
                ..
            }) = PacketRepr::parse(&buf)
            {
                reports.push((now, t.dst, options.pgmcc_feedback.map(|f| f.nla)));
            }
        }
        while rx.poll_event().is_some() {}
    }
    println!("reports: {reports:?}");
    assert_eq!(reports.len(), 1, "one report: {reports:?}");
    let (at, dst, nla) = reports[0];
    assert_eq!((dst, nla), (source, Some(me)));
    let bo = PgmccConfig::default().election_bo_ivl;
    assert!(
        at <= Instant::ZERO + bo + Duration::from_micros(100),
        "{at:?}"
    );
}
