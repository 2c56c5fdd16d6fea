//! Hostile and unlucky traffic in the simulator (docs/reliability.md): each scenario forges
//! packets from a third node during a verified stream, and checks that the real stream is
//! complete and exact, that what the forged packets bought is bounded (NAKs per forged packet,
//! memory, the source's throughput), and that no loss is reported for sessions that never
//! existed.

mod support;

use std::{
    cell::{Cell, RefCell},
    collections::VecDeque,
    net::{IpAddr, Ipv4Addr},
    rc::Rc,
    time::Duration,
};

use pgm::{
    sim::{Dir, LinkConfig, Node, NodeId, TapKind},
    time::Instant,
    wire::{Body, Data, Gsi, Nak, NakList, Options, PacketRepr, SeqNo, Spm, Tsi},
    FecConfig, Receiver, Source, SourceConfig, Transmit,
};
use support::{apdu, downstream, rx_addr, Lan, DPORT, GROUP, SRC_ADDR, TSI};

const FORGER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 9, 9));

/// A node that sends whatever the test queues, as fast as it is queued.
#[derive(Default)]
struct Forger {
    queue: VecDeque<(IpAddr, Vec<u8>)>,
}

impl Node for Forger {
    fn handle_packet(&mut self, _: Instant, _: IpAddr, _: IpAddr, _: &[u8]) {}
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_transmit(&mut self, _: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        let (dst, p) = self.queue.pop_front()?;
        buf.clear();
        buf.extend_from_slice(&p);
        Some(Transmit::new(dst, buf.len()))
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}

fn forged_tsi(k: u32) -> Tsi {
    let b = k.to_be_bytes();
    Tsi {
        gsi: Gsi([0xf0, 0x0d, b[0], b[1], b[2], b[3]]),
        sport: 30_000 + (k % 20_000) as u16,
    }
}

fn odata(tsi: Tsi, sqn: u32, trail: u32) -> Vec<u8> {
    let body = Body::Odata(Data {
        sqn: SeqNo(sqn),
        trail: SeqNo(trail),
    });
    downstream(tsi, body, &Options::default(), &[0xee; 100])
}

fn spm(tsi: Tsi, spm_sqn: u32, trail: u32, lead: u32, path: IpAddr) -> Vec<u8> {
    let body = Body::Spm(Spm {
        spm_sqn: SeqNo(spm_sqn),
        trail: SeqNo(trail),
        lead: SeqNo(lead),
        path,
    });
    downstream(tsi, body, &Options::default(), &[])
}

fn ncf(tsi: Tsi, sqn: u32) -> Vec<u8> {
    let body = Body::Ncf(Nak {
        sqn: SeqNo(sqn),
        src_nla: FORGER,
        grp_nla: GROUP,
    });
    downstream(tsi, body, &Options::default(), &[])
}

/// A NAK for the real session asking for `sqns` (up to 63), as any receiver would send it.
fn nak(sqns: &[u32]) -> Vec<u8> {
    nak_of(sqns, false)
}

/// A parity NAK (RFC 3208 §11.4) for the real session: each entry is `tg | (count − 1)`.
fn parity_nak(entries: &[u32]) -> Vec<u8> {
    nak_of(entries, true)
}

fn nak_of(sqns: &[u32], parity: bool) -> Vec<u8> {
    let list: Vec<SeqNo> = sqns[1..].iter().map(|&s| SeqNo(s)).collect();
    PacketRepr {
        sport: DPORT,
        dport: TSI.sport,
        gsi: TSI.gsi,
        parity,
        var_pktlen: false,
        body: Body::Nak(Nak {
            sqn: SeqNo(sqns[0]),
            src_nla: SRC_ADDR,
            grp_nla: GROUP,
        }),
        options: Options {
            nak_list: (!list.is_empty()).then(|| NakList::from_slice(&list)),
            ..Options::default()
        },
        payload: &[],
    }
    .to_vec()
}

/// A LAN with a forger node, and counters of the NAKs the receivers send to other sessions
/// than the real one.
struct Hostile {
    lan: Lan,
    forger: NodeId,
    /// NAK and SPMR packets receivers sent for forged sessions.
    forged_naks: Rc<Cell<u64>>,
    /// Packets the forger sent.
    forged: u64,
}

impl Hostile {
    fn new(
        seed: u64,
        receivers: usize,
        src_cfg: impl FnOnce(&mut pgm::SourceConfig),
        rx_cfg: impl Fn(&mut pgm::ReceiverConfig),
    ) -> Hostile {
        let mut lan = Lan::new(seed, receivers, src_cfg, rx_cfg);
        let forger = lan.sim.add_node(FORGER, Forger::default());
        let forged_naks = Rc::new(Cell::new(0));
        let rx: Vec<IpAddr> = (0..receivers).map(rx_addr).collect();
        let count = forged_naks.clone();
        lan.sim.set_tap(move |ev| {
            if ev.kind != TapKind::Sent || !rx.contains(&ev.src) {
                return;
            }
            if let Ok(p) = PacketRepr::parse(ev.bytes) {
                if matches!(p.body, Body::Nak(_) | Body::Spmr) && p.tsi() != TSI {
                    count.set(count.get() + 1);
                }
            }
        });
        Hostile {
            lan,
            forger,
            forged_naks,
            forged: 0,
        }
    }

    /// Sends forged packets now.
    fn forge(&mut self, packets: impl IntoIterator<Item = (IpAddr, Vec<u8>)>) {
        let before = self.forged;
        let mut n = 0;
        self.lan
            .sim
            .with_node_mut(self.forger, |f: &mut Forger, _| {
                for p in packets {
                    f.queue.push_back(p);
                    n += 1;
                }
            });
        self.forged = before + n;
    }

    /// Sends APDUs `0..n` of 200 bytes, one every `every`, calling `hook(i, self)` before each.
    fn stream(&mut self, n: u64, every: Duration, mut hook: impl FnMut(u64, &mut Hostile)) {
        let sizes = |_| 200;
        for i in 0..n {
            hook(i, self);
            let data = apdu(i, 200);
            self.lan
                .sim
                .with_node_mut(self.lan.src, |s: &mut Source, now| s.send(now, &data))
                .expect("the paced stream never fills the send buffer");
            self.lan.sim.run_for(every).expect("sim");
            if i % 16 == 0 {
                self.lan.drain(&sizes);
            }
        }
        self.lan.finish(n, &sizes, Duration::from_mins(1));
    }

    /// Every receiver got the real stream `0..n`, complete and exact.
    fn assert_complete(&self, n: u64) {
        for (k, c) in self.lan.checkers.iter().enumerate() {
            assert!(c.errors.is_empty(), "receiver {k}: {:?}", c.errors);
            assert_eq!((c.next, c.loss_sqns), (n, 0), "receiver {k}");
        }
    }

    /// No receiver reported loss for a forged session (none of them was ever confirmed).
    fn assert_no_forged_loss(&self) {
        for (k, c) in self.lan.checkers.iter().enumerate() {
            assert_eq!(
                c.other_losses, 0,
                "receiver {k} reported loss for forged sessions"
            );
            let st = self.rx_stats(k);
            assert_eq!(st.lost_sqns, 0, "receiver {k}: {st:?}");
        }
    }

    fn rx_stats(&self, k: usize) -> pgm::ReceiverStats {
        self.lan.sim.node::<Receiver>(self.lan.rx[k]).stats()
    }

    /// NAKs for forged sessions per forged packet stay at most `max`.
    fn assert_naks_per_forged_packet(&self, max: f64) {
        let per = self.forged_naks.get() as f64 / self.forged.max(1) as f64;
        println!(
            "{} forged packets bought {} NAKs and SPMRs ({per:.2} each)",
            self.forged,
            self.forged_naks.get()
        );
        assert!(per <= max, "{per:.2} NAKs per forged packet");
    }
}

fn lossy_receivers(lan: &mut Lan) {
    let link = LinkConfig {
        loss: 0.02,
        delay: Duration::from_micros(100),
        ..LinkConfig::default()
    };
    lan.receiver_links(&link, &link);
}

/// Item 1: thousands of one-packet sessions from distinct TSIs, before and during the run,
/// cannot keep a real sender out of a full peer table.
#[test]
fn a_flood_of_sessions_cannot_lock_out_a_sender() {
    let mut h = Hostile::new(
        11,
        2,
        |c| c.rate = Some(10_000_000),
        |c| c.limits.max_peers = 64,
    );
    // The table is full of forged sessions before the real one starts.
    let flood: Vec<_> = (0..2000)
        .map(|k| (GROUP, odata(forged_tsi(k), 7, 7)))
        .collect();
    h.forge(flood);
    h.lan.sim.run_for(Duration::from_millis(50)).expect("sim");
    let mut k = 2000;
    h.stream(5000, Duration::from_micros(200), |i, h| {
        if i % 10 == 0 {
            // Keep flooding: 5 new sessions every 2 ms.
            let more: Vec<_> = (k..k + 5)
                .map(|t| (GROUP, spm(forged_tsi(t), 1, 5, 9, FORGER)))
                .collect();
            k += 5;
            h.forge(more);
        }
    });
    h.assert_complete(5000);
    h.assert_no_forged_loss();
    let st = h.rx_stats(0);
    println!("{st:?}");
    assert!(st.peers <= 64 && st.peers_evicted > 2000, "{st:?}");
    h.assert_naks_per_forged_packet(10.0);
}

/// Item 2: two packets of an unknown session that open a 65 534-sqn gap, or an SPM whose lead
/// is just inside the leap limit, buy a few NAKs, not one per sqn; sessions that confirm
/// themselves and then open huge gaps are held to the memory budget.
#[test]
fn a_forged_gap_buys_a_few_naks() {
    const BUDGET: usize = 32 << 20;
    let mut h = Hostile::new(
        12,
        2,
        |c| c.rate = Some(10_000_000),
        |c| c.limits.max_total_bytes = BUDGET,
    );
    lossy_receivers(&mut h.lan);
    let mut k = 0;
    h.stream(4000, Duration::from_micros(250), |i, h| {
        if i % 100 == 50 {
            let (leaping, spm_led, confirmed) =
                (forged_tsi(k), forged_tsi(k + 1), forged_tsi(k + 2));
            k += 3;
            h.forge([
                // ODATA x, then x + 65 535.
                (GROUP, odata(leaping, 1000, 1000)),
                (GROUP, odata(leaping, 1000 + 65_535, 1000)),
                // Data, then an SPM whose lead is just inside the receive window.
                (GROUP, odata(spm_led, 5, 5)),
                (GROUP, spm(spm_led, 1, 5, 5 + 65_530, FORGER)),
                // A session that confirms itself (two in order), then opens a 65 000 gap.
                (GROUP, odata(confirmed, 100, 100)),
                (GROUP, odata(confirmed, 101, 100)),
                (GROUP, odata(confirmed, 65_100, 100)),
            ]);
        }
    });
    h.assert_complete(4000);
    h.assert_naks_per_forged_packet(10.0);
    let st = h.rx_stats(0);
    println!("{st:?}");
    assert!(
        st.data_leaps_ignored > 0 && st.spm_leaps_ignored > 0,
        "{st:?}"
    );
    // The 65 000-sqn gaps were never opened: a gap must be paid for by the session's traffic.
    assert!(
        st.footprint <= BUDGET as u64 / 8 && st.missing_now < 1000,
        "{st:?}"
    );
}

/// Item 3: a storm of forged NAKs (63 in-window sqns each) leaves the source at least half its
/// clean rate, never more than one NCF per queued sqn, and a real receiver's repairs (2 % loss)
/// still get through.
#[test]
fn a_nak_storm_leaves_the_source_its_rate() {
    fn storm_naks(h: &Hostile) -> Vec<(IpAddr, Vec<u8>)> {
        // 10 NAKs a millisecond, each for 63 sqns the source holds.
        let lead = h.lan.sim.node::<Source>(h.lan.src).txw_lead().0;
        (0..10)
            .map(|k| {
                let first = lead.saturating_sub(63 * (k + 1));
                let sqns: Vec<u32> = (first..first + 63).collect();
                (SRC_ADDR, nak(&sqns))
            })
            .collect()
    }
    fn run(storm: bool) -> (u64, pgm::SourceStats, u64) {
        let mut h = Hostile::new(13, 1, |c| c.rate = Some(5_000_000), |_| {});
        lossy_receivers(&mut h.lan);
        // The application keeps the send buffer full for 2 s.
        let sizes = |_| 200;
        let end = Instant::from_millis(2000);
        let mut i = 0u64;
        let ncf_sqns = Rc::new(Cell::new(0u64));
        let count = ncf_sqns.clone();
        h.lan.sim.set_tap(move |ev| {
            if ev.kind == TapKind::Sent && ev.src == SRC_ADDR {
                if let Ok(p) = PacketRepr::parse(ev.bytes) {
                    if matches!(p.body, Body::Ncf(_)) {
                        let list = p.options.nak_list.map_or(0, |l| l.as_slice().len());
                        count.set(count.get() + 1 + list as u64);
                    }
                }
            }
        });
        while h.lan.sim.now() < end {
            loop {
                let data = apdu(i, 200);
                let r = h
                    .lan
                    .sim
                    .with_node_mut(h.lan.src, |s: &mut Source, now| s.send(now, &data));
                if r.is_err() {
                    break;
                }
                i += 1;
            }
            if storm {
                h.forge(storm_naks(&h));
            }
            h.lan.sim.run_for(Duration::from_millis(1)).expect("sim");
            h.lan.drain(&sizes);
        }
        let odata = h.lan.sim.node::<Source>(h.lan.src).stats().odata_sent;
        // The storm goes on while the receiver finishes its repairs.
        let deadline = h.lan.sim.now() + Duration::from_secs(2);
        while h.lan.checkers[0].next < i && h.lan.sim.now() < deadline {
            if storm {
                h.forge(storm_naks(&h));
            }
            h.lan.sim.run_for(Duration::from_millis(1)).expect("sim");
            h.lan.drain(&sizes);
        }
        h.assert_complete(i);
        let st = h.lan.sim.node::<Source>(h.lan.src).stats();
        (odata, st, ncf_sqns.get())
    }
    let (clean, _, _) = run(false);
    let (stormy, st, ncf_sqns) = run(true);
    let ratio = stormy as f64 / clean as f64;
    println!("ODATA clean {clean}, under the storm {stormy} ({ratio:.2}); {st:?}");
    assert!(
        ratio >= 0.55,
        "the storm took the source down to {ratio:.2} of its rate"
    );
    // At most one NCF per queued sqn: every sqn confirmed was sent as RDATA once, or is
    // still queued.
    assert!(
        ncf_sqns <= st.rdata_sent + st.repairs_queued,
        "{ncf_sqns} sqns confirmed for {} RDATA and {} queued",
        st.rdata_sent,
        st.repairs_queued
    );
    assert!(
        st.nak_sqns_eliminated > 0 && st.nak_sqns_over_budget > 0,
        "{st:?}"
    );
}

/// Item 3: a storm's backlog cannot hold back a sqn a real receiver needs. The storm asked
/// for it first (it sits deep in the storm's repair queue); the receiver's NAK queues it in
/// the receiver's own turn, so it goes out next, and only once.
#[test]
fn a_storm_backlog_does_not_delay_a_real_repair() {
    const SENT: u32 = 2000;
    const NEEDED: u32 = 1900;
    let mut src = Source::new(SourceConfig::new(TSI, DPORT, GROUP, SRC_ADDR));
    let mut now = Instant::from_millis(0);
    let mut buf = Vec::new();
    let mut wire = Vec::new();
    let mut run = |src: &mut Source, now: &mut Instant, limit: usize| {
        wire.clear();
        while wire.len() < limit && *now < Instant::from_millis(10_000) {
            match src.poll_transmit(*now, &mut buf) {
                Some(_) => wire.push(PacketRepr::parse(&buf).expect("own packet").body),
                None if src.stats().repairs_queued == 0 && !wire.is_empty() => break,
                None => *now += Duration::from_millis(1),
            }
        }
        wire.clone()
    };
    for i in 0..SENT {
        let data = apdu(u64::from(i), 200);
        if src.send(now, &data).is_err() {
            run(&mut src, &mut now, usize::MAX);
            src.send(now, &data).expect("send after a flush");
        }
    }
    run(&mut src, &mut now, usize::MAX);
    // The storm asks for every sqn, oldest first; then the receiver for one near the end.
    for first in (0..SENT).step_by(63) {
        let sqns: Vec<u32> = (first..(first + 63).min(SENT)).collect();
        src.handle_packet(now, FORGER, SRC_ADDR, &nak(&sqns));
    }
    src.handle_packet(now, rx_addr(0), SRC_ADDR, &nak(&[NEEDED]));
    let rdata = |b: &[Body]| -> Vec<u32> {
        b.iter()
            .filter_map(|b| match b {
                Body::Rdata(d) => Some(d.sqn.0),
                _ => None,
            })
            .collect()
    };
    // NCFs for everything asked, then RDATA: the needed sqn within the first two.
    let first = rdata(&run(&mut src, &mut now, 40));
    assert!(
        first.iter().take(2).any(|&s| s == NEEDED),
        "RDATA order {first:?}"
    );
    let rest = rdata(&run(&mut src, &mut now, usize::MAX));
    let all: Vec<u32> = first.into_iter().chain(rest).collect();
    assert_eq!(all.len(), SENT as usize, "each sqn repaired once");
    assert_eq!(all.iter().filter(|&&s| s == NEEDED).count(), 1);
    let st = src.stats();
    assert_eq!((st.repairs_queued, st.rdata_sent), (0, u64::from(SENT)));
}

/// A source with the per-NAKer budget `burst` sqns at `rate` sqns/s (`fec` on demand with
/// groups of that size), that has sent APDUs `0..sent` (20 B each), all at time 0.
fn sent_source(burst: u32, rate: u32, fec: Option<u8>, sent: u64) -> Source {
    let mut cfg = SourceConfig::new(TSI, DPORT, GROUP, SRC_ADDR);
    cfg.fec = fec.map(|k| FecConfig::on_demand(k).unwrap_or_else(|e| panic!("{e}")));
    cfg.repair.per_naker_burst = burst;
    cfg.repair.per_naker_rate = rate;
    let mut src = Source::new(cfg);
    let mut buf = Vec::new();
    for i in 0..sent {
        src.send(Instant::from_millis(0), &apdu(i, 20))
            .expect("send");
        while src
            .poll_transmit(Instant::from_millis(0), &mut buf)
            .is_some()
        {}
    }
    src
}

/// Item 3: one NAKer has at most `per_naker_burst` sqns waiting for RDATA, however many it
/// asks for (a sqn may wait in several NAKers' queues, so each queue needs its own bound);
/// another NAKer still gets in.
#[test]
fn a_nakers_repair_queue_is_bounded() {
    let mut src = sent_source(500, 1_000_000, None, 2000);
    let now = Instant::from_millis(0);
    for round in 0..3 {
        for first in (0..2000u32).step_by(63) {
            let sqns: Vec<u32> = (first..(first + 63).min(2000)).collect();
            src.handle_packet(
                now + Duration::from_millis(round),
                FORGER,
                SRC_ADDR,
                &nak(&sqns),
            );
        }
    }
    let st = src.stats();
    assert_eq!(st.repairs_queued, 500, "{st:?}");
    // Each round: 1 500 refused; in the later rounds the 500 queued ones are repeats.
    assert_eq!(
        (st.nak_sqns_over_budget, st.nak_sqns_eliminated),
        (3 * 1500, 2 * 500),
        "{st:?}"
    );
    src.handle_packet(now, rx_addr(0), SRC_ADDR, &nak(&[1999]));
    assert_eq!(src.stats().repairs_queued, 501);
}

/// Asking again for sqns already queued for RDATA (a receiver whose repairs wait behind a
/// backlog repeats its NAKs) costs a NAKer none of its budget: it still gets its new losses
/// repaired. Sqns refused for want of budget are not queued at all.
#[test]
fn repeated_naks_for_queued_repairs_cost_no_budget() {
    let mut src = sent_source(100, 1, None, 200);
    let now = Instant::from_millis(0);
    let first: Vec<u32> = (0..60).collect();
    for _ in 0..20 {
        src.handle_packet(now, rx_addr(0), SRC_ADDR, &nak(&first));
    }
    let st = src.stats();
    assert_eq!(
        (st.repairs_queued, st.nak_sqns_over_budget),
        (60, 0),
        "{st:?}"
    );
    assert_eq!(st.nak_sqns_eliminated, 19 * 60, "{st:?}");
    // 40 tokens are left of the burst of 100: 40 of the next 60 new sqns get in.
    let next: Vec<u32> = (100..160).collect();
    src.handle_packet(now, rx_addr(0), SRC_ADDR, &nak(&next));
    let st = src.stats();
    assert_eq!(
        (st.repairs_queued, st.nak_sqns_over_budget),
        (100, 20),
        "{st:?}"
    );
}

/// Parity NAKs (FEC on demand, docs/fec.md) are repair requests too: one NAKer has at most
/// `per_naker_burst` parity packets waiting, however many groups and packets it asks for;
/// another NAKer still gets in, and goes out at its own turn.
#[test]
fn a_nakers_parity_queue_is_bounded() {
    const K: u32 = 16;
    let mut src = sent_source(500, 1_000_000, Some(K as u8), 2048);
    let now = Instant::from_millis(0);
    let mut buf = Vec::new();
    // Every group, all K packets each, three times (a new elimination interval each round).
    let groups: Vec<u32> = (0..2048 / K).map(|g| g * K + (K - 1)).collect();
    for round in 0..3 {
        for chunk in groups.chunks(63) {
            src.handle_packet(
                now + Duration::from_secs(round),
                FORGER,
                SRC_ADDR,
                &parity_nak(chunk),
            );
        }
    }
    let st = src.stats();
    assert_eq!(st.parity_queued, 500, "{st:?}");
    assert!(st.nak_sqns_over_budget >= 3 * 2048 - 500, "{st:?}");
    // A real receiver's request for one packet of the last group is served within two turns.
    let later = now + Duration::from_secs(5);
    src.handle_packet(later, rx_addr(0), SRC_ADDR, &parity_nak(&[2048 - K]));
    assert_eq!(src.stats().parity_queued, 501);
    let mut groups_sent = Vec::new();
    while groups_sent.len() < 4 {
        let t = src
            .poll_transmit(later, &mut buf)
            .expect("repairs are owed");
        let p = PacketRepr::parse(&buf[..t.len]).expect("own packet");
        if let (true, Body::Rdata(d)) = (p.parity, p.body) {
            groups_sent.push(d.sqn.0 & !(K - 1));
        }
    }
    assert!(
        groups_sent[..2].contains(&(2048 - K)),
        "parity order {groups_sent:?}"
    );
}

/// A storm of forged parity NAKs (63 groups × all their packets, 10 a millisecond) against an
/// on-demand source leaves it at least half its clean rate, and a real receiver that rebuilds
/// its 2 % loss from parity still gets everything.
#[test]
fn a_parity_nak_storm_leaves_the_source_its_rate() {
    const K: u32 = 16;
    fn storm(h: &Hostile) -> Vec<(IpAddr, Vec<u8>)> {
        let lead = h.lan.sim.node::<Source>(h.lan.src).txw_lead().0;
        let last = (lead + 1) / K * K;
        (0..10)
            .map(|n| {
                let entries: Vec<u32> = (1..=63u32)
                    .map(|g| last.saturating_sub(K * (g + 63 * n)) | (K - 1))
                    .collect();
                (SRC_ADDR, parity_nak(&entries))
            })
            .collect()
    }
    fn run(storm_on: bool) -> (u64, pgm::SourceStats) {
        let mut h = Hostile::new(
            21,
            1,
            |c| {
                c.rate = Some(5_000_000);
                c.fec = Some(FecConfig::on_demand(K as u8).unwrap_or_else(|e| panic!("{e}")));
            },
            |c| c.fec = true,
        );
        lossy_receivers(&mut h.lan);
        let sizes = |_| 200;
        let end = Instant::from_millis(2000);
        let mut i = 0u64;
        while h.lan.sim.now() < end {
            while h
                .lan
                .sim
                .with_node_mut(h.lan.src, |s: &mut Source, now| s.send(now, &apdu(i, 200)))
                .is_ok()
            {
                i += 1;
            }
            if storm_on {
                h.forge(storm(&h));
            }
            h.lan.sim.run_for(Duration::from_millis(1)).expect("sim");
            h.lan.drain(&sizes);
        }
        let odata = h.lan.sim.node::<Source>(h.lan.src).stats().odata_sent;
        let deadline = h.lan.sim.now() + Duration::from_secs(2);
        while h.lan.checkers[0].next < i && h.lan.sim.now() < deadline {
            if storm_on {
                h.forge(storm(&h));
            }
            h.lan.sim.run_for(Duration::from_millis(1)).expect("sim");
            h.lan.drain(&sizes);
        }
        h.assert_complete(i);
        (odata, h.lan.sim.node::<Source>(h.lan.src).stats())
    }
    let (clean, _) = run(false);
    let (stormy, st) = run(true);
    let ratio = stormy as f64 / clean as f64;
    println!("ODATA clean {clean}, under the parity NAK storm {stormy} ({ratio:.2}); {st:?}");
    assert!(
        ratio >= 0.55,
        "the storm took the source down to {ratio:.2} of its rate"
    );
    let burst = u64::from(pgm::RepairBudget::default().per_naker_burst);
    assert!(st.parity_queued <= 2 * burst, "{st:?}");
    assert!(
        st.parity_naks_received > 10_000 && st.nak_sqns_over_budget > 0,
        "{st:?}"
    );
}

/// Item 4: a receiver cut off for 1 s, 3 s and 10 s of a 10 000 msg/s stream with a 64 Ki-sqn
/// window loses nothing the source still holds.
#[test]
fn stalls_lose_only_what_left_the_window() {
    for stall_s in [1u64, 3, 10] {
        let mut h = Hostile::new(14 + stall_s, 2, |c| c.rate = Some(12_500_000), |_| {});
        let cut = h.lan.rx[0];
        let from = Instant::from_millis(500);
        h.lan
            .sim
            .link_down(cut, Dir::Ingress, from..from + Duration::from_secs(stall_s));
        for c in &mut h.lan.checkers {
            c.skip_on_loss = true;
        }
        let n = (stall_s + 4) * 10_000;
        h.stream(n, Duration::from_micros(100), |_, _| {});
        let stalled = stall_s * 10_000;
        let held = u64::from(h.lan.sim.node::<Source>(h.lan.src).config().txw_sqns);
        let lost = h.lan.checkers[0].loss_sqns;
        let out_of_window = stalled.saturating_sub(held);
        println!(
            "stall {stall_s} s: {stalled} sqns missed, {out_of_window} left the window, {lost} lost; {:?}",
            h.rx_stats(0)
        );
        assert!(
            h.lan.checkers[0].errors.is_empty(),
            "{:?}",
            h.lan.checkers[0].errors
        );
        assert_eq!(h.lan.checkers[0].next, n);
        // Repairs race the window's trail (10 000 sqns/s): what falls off while the first NAK
        // round is under way is lost too.
        assert!(
            lost <= out_of_window + out_of_window / 10,
            "stall {stall_s} s: {lost} lost, only {out_of_window} left the window"
        );
        assert_eq!(
            (h.lan.checkers[1].next, h.lan.checkers[1].loss_sqns),
            (n, 0)
        );
    }
}

/// Item 5: forged NCFs keeping a head sqn "confirmed" pin memory only until `max_recovery`;
/// ten forged sessions filling their windows stay within the global memory budget, and the
/// real stream is complete.
#[test]
fn memory_stays_within_the_budget() {
    const BUDGET: usize = 4 << 20;
    let mut h = Hostile::new(
        15,
        1,
        |c| c.rate = Some(10_000_000),
        |c| {
            c.limits.max_total_bytes = BUDGET;
            c.nak.max_recovery = Duration::from_secs(2);
        },
    );
    let mut next = [0u32; 10];
    let peak = Rc::new(RefCell::new(0u64));
    h.stream(20_000, Duration::from_micros(250), |i, h| {
        let mut pkts = Vec::new();
        for (k, n) in next.iter_mut().enumerate() {
            let t = forged_tsi(500 + k as u32);
            if *n == 0 {
                // Confirm, then skip sqn 2 for good.
                pkts.push((GROUP, odata(t, 0, 0)));
                pkts.push((GROUP, odata(t, 1, 0)));
                *n = 3;
            }
            for _ in 0..4 {
                pkts.push((GROUP, odata(t, *n, 0)));
                *n += 1;
            }
            if i % 4 == 0 {
                pkts.push((GROUP, ncf(t, 2)));
            }
        }
        h.forge(pkts);
        let fp = h.rx_stats(0).footprint;
        let mut p = peak.borrow_mut();
        *p = (*p).max(fp);
    });
    h.assert_complete(20_000);
    let st = h.rx_stats(0);
    println!("peak footprint {} (budget {BUDGET}); {st:?}", peak.borrow());
    assert!(*peak.borrow() <= BUDGET as u64);
    assert!(st.memory_trimmed > 0 || st.recovery_expired > 0, "{st:?}");
}

/// Item 6: one SPM that leaps the SPM sqn and names another NLA, one ODATA far ahead with the
/// real TSI, and one SPM with trail = lead = lead + 3 000 do not disturb the real stream.
#[test]
fn single_forged_packets_of_the_real_session_do_little() {
    let mut h = Hostile::new(16, 2, |c| c.rate = Some(10_000_000), |_| {});
    lossy_receivers(&mut h.lan);
    let nowhere: IpAddr = "10.9.9.9".parse().unwrap();
    h.stream(6000, Duration::from_micros(250), |i, h| {
        let lead = h.lan.sim.node::<Source>(h.lan.src).txw_lead().0;
        match i {
            1000 => h.forge([(GROUP, spm(TSI, 0x7fff_fff0, lead, lead, nowhere))]),
            2000 => h.forge([(GROUP, odata(TSI, lead.wrapping_add(1 << 30), lead))]),
            3000 => h.forge([(
                GROUP,
                spm(TSI, 0x7fff_fff8, lead + 3000, lead + 3000, SRC_ADDR),
            )]),
            _ => {}
        }
    });
    h.assert_complete(6000);
    let st = h.rx_stats(0);
    println!("{st:?}");
    assert!(st.data_leaps_ignored >= 1, "{st:?}");
    let src = h.lan.sim.node::<Source>(h.lan.src).stats();
    assert!(
        src.naks_received > 0,
        "NAKs still reach the real source: {src:?}"
    );
}

/// Item 7: forged sessions with SPM trail/lead jumps and gaps report no loss, and the real
/// stream is complete.
#[test]
fn forged_sessions_report_no_loss() {
    let mut h = Hostile::new(17, 2, |c| c.rate = Some(10_000_000), |_| {});
    let mut k = 0;
    h.stream(4000, Duration::from_micros(250), |i, h| {
        if i % 20 == 0 {
            let t = forged_tsi(900 + k % 7);
            let base = k.wrapping_mul(0x9e37_79b9);
            k += 1;
            h.forge([
                (GROUP, spm(t, k, base, base.wrapping_add(1 << 30), FORGER)),
                (GROUP, odata(t, base, base)),
                (
                    GROUP,
                    odata(t, base.wrapping_add(40), base.wrapping_add(30)),
                ),
                (
                    GROUP,
                    spm(t, k + 1, base.wrapping_add(1 << 31), base, FORGER),
                ),
            ]);
        }
    });
    // Long enough for every recovery deadline and session expiry.
    h.lan.sim.run_for(Duration::from_secs(400)).expect("sim");
    h.lan.drain(&|_| 200);
    h.assert_complete(4000);
    h.assert_no_forged_loss();
    let st = h.rx_stats(0);
    println!("{st:?}");
    assert_eq!(st.lost_sqns, 0, "{st:?}");
    h.assert_naks_per_forged_packet(10.0);
}

/// Item 8: parity packets are counted and dropped, never delivered as data.
#[test]
fn parity_is_never_data() {
    let mut h = Hostile::new(18, 1, |c| c.rate = Some(10_000_000), |_| {});
    h.stream(2000, Duration::from_micros(250), |i, h| {
        if i % 100 == 7 {
            let lead = h.lan.sim.node::<Source>(h.lan.src).txw_lead().0;
            let p = PacketRepr {
                sport: TSI.sport,
                dport: DPORT,
                gsi: TSI.gsi,
                parity: true,
                var_pktlen: false,
                body: Body::Rdata(Data {
                    sqn: SeqNo(lead + 1),
                    trail: SeqNo(0),
                }),
                options: Options::default(),
                payload: &[0x55; 200],
            };
            h.forge([(GROUP, p.to_vec())]);
        }
    });
    h.assert_complete(2000);
    assert_eq!(h.rx_stats(0).parity_dropped, 20);
}

/// Item 5: NCFs forged once a millisecond keep a missing head sqn waiting only until
/// `max_recovery`: then it is given up and the data behind it delivered.
#[test]
fn ncfs_cannot_pin_a_sqn_forever() {
    let mut h = Hostile::new(
        19,
        1,
        |c| c.rate = Some(10_000_000),
        |c| c.nak.max_recovery = Duration::from_secs(2),
    );
    let t = forged_tsi(77);
    h.forge([(GROUP, odata(t, 0, 0)), (GROUP, odata(t, 1, 0))]);
    let mut next = 3;
    let mut held_at_1s = 0;
    h.stream(20_000, Duration::from_micros(250), |i, h| {
        // Four packets a millisecond after the missing sqn 2, and an NCF for it.
        if i % 4 == 0 {
            h.forge([(GROUP, odata(t, next, 0)), (GROUP, ncf(t, 2))]);
            next += 1;
        }
        if i == 4000 {
            held_at_1s = h
                .lan
                .sim
                .node::<Receiver>(h.lan.rx[0])
                .peer_stats(t)
                .map_or(0, |p| p.window_sqns);
        }
    });
    h.assert_complete(20_000);
    let st = h.rx_stats(0);
    let peer = h.lan.sim.node::<Receiver>(h.lan.rx[0]).peer_stats(t);
    println!("held after 1 s: {held_at_1s} sqns; at the end {peer:?}; {st:?}");
    assert!(held_at_1s > 900, "the head sqn held the data behind it");
    assert_eq!(st.recovery_expired, 1, "{st:?}");
    assert!(
        peer.as_ref()
            .is_some_and(|p| p.window_sqns < 10 && p.lost_sqns == 1),
        "{peer:?}"
    );
}
