//! A thousand receivers: 5 % correlated loss of ODATA on the source's link (every receiver
//! loses the same packets) plus 1 % independent loss of ODATA on each receiver's link.
//! Everything is delivered; NAK suppression (the late-biased back-off and the source's NCF)
//! keeps the sqns NAKed per lost sqn at most 1.3 and the RDATA per lost sqn at most 1.05 (a
//! sqn lost by some receiver counts once however many lost it); the repair latency is
//! reported. (Loss of repairs, NCFs and NAKs is covered by `sim_loss`.)

mod support;

use std::{
    cell::{Cell, RefCell},
    collections::{HashMap, HashSet},
    rc::Rc,
    time::Duration,
};

use pgm::{
    sim::{Dir, LinkConfig, TapKind},
    time::Instant,
    wire::{Body, PacketRepr},
    Source,
};
use support::{drop_odata, Lan};

#[test]
fn a_thousand_receivers_with_correlated_and_independent_loss() {
    let receivers = 1000;
    let mut lan = Lan::new(21, receivers, |c| c.rate = Some(10_000_000), |_| {});
    // A switched LAN: 25 ± 10 µs each way (the namespace LAN's UDP round trip is about 55 µs).
    let link = LinkConfig {
        delay: Duration::from_micros(25),
        jitter: Duration::from_micros(10),
        ..LinkConfig::default()
    };
    lan.receiver_links(&link, &link);
    lan.drain_every = Duration::from_micros(200);
    for c in &mut lan.checkers {
        c.skip_on_loss = true;
    }
    // Every receiver loses the same 5 % of ODATA on the shared link, and 1 % on its own.
    lan.sim
        .set_filter(lan.src, Dir::Egress, drop_odata(5, lan.guard.seed()));
    for (k, &r) in lan.rx.clone().iter().enumerate() {
        let seed = lan.guard.seed() ^ (k as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        lan.sim.set_filter(r, Dir::Ingress, drop_odata(1, seed));
    }
    // Distinct ODATA sqns some receiver lost, NAKed sqns reaching the source, and for latency
    // the send time of each ODATA and who lost what.
    let lost: Rc<RefCell<HashSet<u32>>> = Rc::default();
    let lost_by: Rc<RefCell<Vec<(usize, u32)>>> = Rc::default();
    let sent: Rc<RefCell<HashMap<u32, Instant>>> = Rc::default();
    let nak_sqns = Rc::new(Cell::new(0u64));
    {
        let (lost, lost_by, sent, nak_sqns) = (
            lost.clone(),
            lost_by.clone(),
            sent.clone(),
            nak_sqns.clone(),
        );
        let src = lan.src;
        let src_addr = lan.sim.addr(src);
        let index: HashMap<_, _> = lan.rx.iter().enumerate().map(|(k, &r)| (r, k)).collect();
        lan.sim.set_tap(move |ev| {
            let Ok(r) = PacketRepr::parse(ev.bytes) else {
                return;
            };
            match (ev.kind, r.body) {
                (TapKind::Sent, Body::Odata(d)) if ev.from == src => {
                    sent.borrow_mut().insert(d.sqn.0, ev.time);
                }
                (TapKind::Dropped(_), Body::Odata(d)) => {
                    lost.borrow_mut().insert(d.sqn.0);
                    match ev.to_node {
                        Some(to) => lost_by.borrow_mut().push((index[&to], d.sqn.0)),
                        // Dropped on the shared link: every receiver lost it.
                        None => lost_by
                            .borrow_mut()
                            .extend((0..index.len()).map(|k| (k, d.sqn.0))),
                    }
                }
                (TapKind::Delivered, Body::Nak(_)) if ev.dst == src_addr => {
                    let list = r.options.nak_list.map_or(0, |l| l.as_slice().len());
                    nak_sqns.set(nak_sqns.get() + 1 + list as u64);
                }
                _ => {}
            }
        });
    }
    let n = 3000;
    let sizes = |_| 200;
    // 10 000 APDUs/s, a quarter of the rate limit: the repairs (about one per APDU here) fit.
    lan.send_paced(n, 200);
    lan.finish(n, &sizes, Duration::from_secs(10));
    for (k, c) in lan.checkers.iter().enumerate() {
        assert!(c.errors.is_empty(), "receiver {k}: {:?}", c.errors);
        assert_eq!((c.next, c.loss_sqns), (n, 0), "receiver {k}");
    }
    let src = lan.sim.node::<Source>(lan.src).stats();
    let lost = lost.borrow().len() as f64;
    let naked = nak_sqns.get() as f64 / lost;
    let rdata = src.rdata_sent as f64 / lost;
    let mut lat: Vec<Duration> = lost_by
        .borrow()
        .iter()
        .map(|&(k, sqn)| lan.checkers[k].arrivals[sqn as usize] - sent.borrow()[&sqn])
        .collect();
    lat.sort();
    let pct = |per_mille: usize| lat[(lat.len() - 1) * per_mille / 1000];
    println!(
        "{receivers} receivers, {n} APDUs: {lost} sqns lost by some receiver; NAKed sqns per \
         lost sqn {naked:.2}, RDATA per lost sqn {rdata:.2}; {} repairs: p50 {:?} p99 {:?} \
         max {:?}",
        lat.len(),
        pct(500),
        pct(990),
        lat[lat.len() - 1]
    );
    assert!(naked <= 1.3, "{naked:.2} NAKed sqns per lost sqn");
    assert!(rdata <= 1.05, "{rdata:.2} RDATA per lost sqn");
}
