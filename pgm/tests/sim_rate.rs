//! Rate control: the token bucket holds the wire rate, RDATA stays under its cap, and a NAK
//! storm neither breaks the rate nor starves ODATA.

mod support;

use std::{cell::RefCell, net::IpAddr, rc::Rc, time::Duration};

use pgm::{
    sim::{Dir, LinkConfig, Node, TapKind},
    source::SendError,
    time::Instant,
    wire::{Body, Nak, NakList, Options, PacketRepr, SeqNo},
    Source, Transmit,
};
use support::{Lan, DPORT, GROUP, SRC_ADDR, TSI};

const RATE: u64 = 1_000_000;
const RDATA_CAP: u64 = 250_000;
const IP_OVERHEAD: usize = 28;

/// Wire bytes the source put on the network, by packet type, per 100 ms bucket.
#[derive(Default)]
struct Meter {
    total: Vec<u64>,
    odata: Vec<u64>,
    repair: Vec<u64>,
}

impl Meter {
    fn add(&mut self, t: Instant, p: &[u8]) {
        let slot = (t.as_micros() / 100_000) as usize;
        for v in [&mut self.total, &mut self.odata, &mut self.repair] {
            if v.len() <= slot {
                v.resize(slot + 1, 0);
            }
        }
        let wire = (p.len() + IP_OVERHEAD) as u64;
        self.total[slot] += wire;
        match PacketRepr::parse(p).map(|r| r.body) {
            Ok(Body::Odata(_)) => self.odata[slot] += wire,
            Ok(Body::Rdata(_) | Body::Ncf(_)) => self.repair[slot] += wire,
            _ => {}
        }
    }

    /// Bytes/s over 100 ms slots `from..to`.
    fn rate(v: &[u64], from: usize, to: usize) -> f64 {
        v[from..to].iter().sum::<u64>() as f64 / ((to - from) as f64 / 10.0)
    }
}

fn metered_lan(seed: u64, receivers: usize) -> (Lan, Rc<RefCell<Meter>>) {
    let mut lan = Lan::new(
        seed,
        receivers,
        |c| {
            c.rate = Some(RATE);
            c.repair.rate = Some(RDATA_CAP);
            c.rate_burst = 3000;
            c.send_buffer = 64 * 1024;
        },
        |_| {},
    );
    let meter = Rc::new(RefCell::new(Meter::default()));
    let m = meter.clone();
    let src = lan.src;
    lan.sim.set_tap(move |ev| {
        if ev.kind == TapKind::Sent && ev.from == src {
            m.borrow_mut().add(ev.time, ev.bytes);
        }
    });
    (lan, meter)
}

/// Keeps the source's send queue full until `until`.
fn saturate(lan: &mut Lan, until: Instant) {
    let src = lan.src;
    let mut i = 0u64;
    while lan.sim.now() < until {
        let data = support::apdu(i, 1000);
        match lan
            .sim
            .with_node_mut(src, |s: &mut Source, now| s.send(now, &data))
        {
            Ok(()) => i += 1,
            Err(SendError::WouldBlock) => {
                lan.sim.run_for(Duration::from_millis(10)).expect("sim");
                lan.drain(&|_| 1000);
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn wire_rate_holds_within_two_percent_and_rdata_stays_capped() {
    let (mut lan, meter) = metered_lan(6, 3);
    // Loss on one receiver keeps repairs flowing.
    lan.sim.link_mut(lan.rx[0], Dir::Ingress).loss = 0.2;
    saturate(&mut lan, Instant::from_millis(11_000));
    let m = meter.borrow();
    let total = Meter::rate(&m.total, 10, 110);
    let repair = Meter::rate(&m.repair, 10, 110);
    println!("over 10 s: {total:.0} B/s on the wire (rate {RATE}), repairs {repair:.0} B/s (cap {RDATA_CAP})");
    assert!((total - RATE as f64).abs() <= RATE as f64 * 0.02, "{total}");
    // The cap holds over every 1 s window (slots of 100 ms, one burst of slack).
    for w in m.repair[10..110].windows(10) {
        let bytes: u64 = w.iter().sum();
        assert!(
            bytes <= RDATA_CAP + 3000 + 1500,
            "repair bytes in 1 s: {bytes}"
        );
    }
    assert!(repair > 0.0);
}

/// A hostile receiver sends NAKs for every sqn in the window at ten times the data packet rate.
struct NakStorm {
    next: Instant,
    sqn: u32,
    interval: Duration,
}

impl Node for NakStorm {
    fn handle_packet(&mut self, _: Instant, _: IpAddr, _: IpAddr, _: &[u8]) {}
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        if now < self.next {
            return None;
        }
        self.next = now + self.interval;
        emit_nak63(self.sqn, buf);
        // Sweep the sqns the source has sent so far (about 1000 per second).
        self.sqn = (self.sqn + 63) % ((now.as_micros() / 1000) as u32 + 64);
        Some(Transmit::new(SRC_ADDR, buf.len()))
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next)
    }
}

#[test]
fn nak_storm_neither_breaks_the_rate_nor_starves_odata() {
    let (mut lan, meter) = metered_lan(7, 1);
    // ~1000 ODATA/s at 1 MB/s; the storm sends 10 000 NAKs/s, each for 63 sqns.
    let storm = NakStorm {
        next: Instant::from_millis(500),
        sqn: 0,
        interval: Duration::from_micros(100),
    };
    lan.sim.add_node("10.0.9.9".parse().expect("addr"), storm);
    lan.receiver_links(&LinkConfig::default(), &LinkConfig::default());
    saturate(&mut lan, Instant::from_millis(11_000));
    let m = meter.borrow();
    let total = Meter::rate(&m.total, 10, 110);
    let odata = Meter::rate(&m.odata, 10, 110);
    let repair = Meter::rate(&m.repair, 10, 110);
    let st = lan.sim.node::<Source>(lan.src).stats();
    println!(
        "storm: {total:.0} B/s total, {odata:.0} ODATA, {repair:.0} repairs; NAKs {} ({} sqns), eliminated {}",
        st.naks_received, st.nak_sqns_received, st.nak_sqns_eliminated
    );
    assert!(st.naks_received > 50_000, "the storm reached the source");
    assert!(total <= RATE as f64 * 1.02, "rate exceeded: {total}");
    assert!(odata >= RATE as f64 / 2.0, "ODATA starved: {odata}");
    assert_eq!(lan.checkers[0].errors, Vec::<String>::new());
}

/// Writes into `buf` (cleared first) a NAK for the 63 sqns from `first`, from the source's
/// receivers' side.
fn emit_nak63(first: u32, buf: &mut Vec<u8>) {
    let list: Vec<SeqNo> = (1..=62).map(|k| SeqNo(first).add(k)).collect();
    buf.clear();
    PacketRepr {
        sport: DPORT,
        dport: TSI.sport,
        gsi: TSI.gsi,
        parity: false,
        var_pktlen: false,
        body: Body::Nak(Nak {
            sqn: SeqNo(first),
            src_nla: SRC_ADDR,
            grp_nla: GROUP,
        }),
        options: Options {
            nak_list: Some(NakList::from_slice(&list)),
            ..Options::default()
        },
        payload: &[],
    }
    .emit(buf);
}

/// RDATA bytes/s an unpaced source gives a burst of NAKs for 6 300 sqns after 300 ms of
/// 1 400 B ODATA at `pps` packets/s (`cap`: a fixed repair cap).
fn unpaced_repair_rate(pps: u64, cap: Option<u64>) -> f64 {
    let mut cfg = pgm::SourceConfig::new(TSI, DPORT, GROUP, SRC_ADDR);
    cfg.repair.rate = cap;
    cfg.repair.per_naker_burst = 10_000;
    cfg.repair.per_naker_rate = 1_000_000;
    let mut src = Source::new(cfg);
    let mut buf = Vec::new();
    let gap = Duration::from_micros(1_000_000 / pps);
    let mut now = Instant::from_millis(0);
    for i in 0..pps * 3 / 10 {
        src.send(now, &support::apdu(i, 1400)).expect("send");
        while src.poll_transmit(now, &mut buf).is_some() {}
        now += gap;
    }
    let before = src.stats();
    let trail = src.txw_trail().0;
    let mut nak = Vec::new();
    for k in 0..100 {
        emit_nak63(trail + 63 * k, &mut nak);
        src.handle_packet(now, "10.0.0.2".parse().expect("addr"), GROUP, &nak);
    }
    let end = now + Duration::from_millis(20);
    while now < end {
        while src.poll_transmit(now, &mut buf).is_some() {}
        let next = src.poll_timeout().unwrap_or(end);
        now = next.max(now + Duration::from_micros(10)).min(end);
    }
    let st = src.stats();
    (st.rdata_bytes - before.rdata_bytes) as f64 / 0.02
}

/// An unpaced source's repair cap follows its own ODATA rate (a share of what it sent lately,
/// at least `RepairBudget::UNPACED_RATE`), so repairs keep up with a fast sender's losses;
/// a fixed cap stays fixed.
#[test]
fn an_unpaced_sources_repair_cap_follows_its_odata_rate() {
    let floor = pgm::config::RepairBudget::UNPACED_RATE as f64;
    // 200 000 packets/s of ~1 450 wire bytes: ~290 MB/s; 0.4 of it is ~116 MB/s.
    let fast = unpaced_repair_rate(200_000, None);
    let fixed = unpaced_repair_rate(200_000, Some(pgm::config::RepairBudget::UNPACED_RATE));
    // 2 000 packets/s: ~2.9 MB/s; the floor applies.
    let slow = unpaced_repair_rate(2_000, None);
    println!("RDATA B/s: fast {fast:.0}, fixed {fixed:.0}, slow {slow:.0}; floor {floor:.0}");
    assert!(fast > 5.0 * floor && fast < 130e6, "{fast}");
    assert!(fixed < 1.5 * floor, "{fixed}");
    assert!(slow < 1.5 * floor, "{slow}");
}

/// A driver that wakes late (here: once a millisecond) still gets a fast rate out: the bucket
/// holds at least 2 ms of the rate. With a fixed 64 KiB, 1.5 Gbit/s filled it in 350 µs and
/// such a driver sent a third of the rate.
#[test]
fn a_late_driver_still_gets_a_fast_rate_out() {
    let rate: u64 = 187_500_000; // 1.5 Gbit/s
    let mut cfg = pgm::SourceConfig::new(TSI, DPORT, GROUP, SRC_ADDR);
    cfg.rate = Some(rate);
    cfg.send_buffer = 64 << 20;
    let mut src = Source::new(cfg);
    let apdu = vec![7u8; 1400];
    let mut buf = Vec::new();
    let mut wire = 0u64;
    let mut now = Instant::ZERO;
    // 100 ms of wake-ups a millisecond apart, the queue never empty.
    for _ in 0..100 {
        while src.queued_bytes() < 4 << 20 {
            src.send(now, &apdu).expect("room");
        }
        while let Some(t) = src.poll_transmit(now, &mut buf) {
            wire += (t.len + IP_OVERHEAD) as u64;
        }
        now += Duration::from_millis(1);
    }
    let got = wire as f64 / 0.1;
    println!("late driver: {got:.0} B/s of {rate}");
    assert!(
        got > 0.95 * rate as f64 && got < 1.05 * rate as f64,
        "{got:.0} B/s of {rate}"
    );
}
