//! FEC in the simulator (docs/fec.md), seeded (the seed is printed on failure):
//!
//! - a pro-active source is harmless for receivers that drop parity (selective repair);
//! - pro-active parity rebuilds low loss without NAKs;
//! - on-demand parity against selective repair with 50 and 1 000 receivers, each losing 5 %
//!   of ODATA on its own link: repair packets per lost packet (issue 15's headline);
//! - parity that never arrives falls back to selective repair.

mod support;

use std::{cell::Cell, rc::Rc, time::Duration};

use pgm::{
    sim::{Dir, LinkConfig, TapKind},
    wire::{Body, PacketRepr},
    FecConfig, Receiver, Source,
};
use support::{drop_odata, size_of, Lan};

#[test]
fn proactive_source_with_receivers_that_drop_parity() {
    let mut lan = Lan::new(
        15,
        10,
        |c| {
            c.rate = Some(20_000_000);
            c.fec = Some(FecConfig::proactive(8, 2).unwrap_or_else(|e| panic!("{e}")));
        },
        |_| {},
    );
    let link = LinkConfig {
        loss: 0.05,
        delay: Duration::from_micros(100),
        ..LinkConfig::default()
    };
    lan.receiver_links(&link, &link);
    let sizes = |i| size_of(i, 1000).max(1);
    let n = 4_000;
    let mut sent = Vec::new();
    lan.send_all(n, &sizes, &mut sent);
    lan.finish(n, &sizes, Duration::from_secs(30));
    let src = lan.sim.node::<Source>(lan.src).stats();
    for (k, c) in lan.checkers.iter().enumerate() {
        assert!(c.errors.is_empty(), "receiver {k}: {:?}", c.errors);
        assert_eq!((c.next, c.loss_sqns), (n, 0), "receiver {k}");
        let rx = lan.sim.node::<Receiver>(lan.rx[k]).stats();
        assert!(rx.parity_dropped > 0, "receiver {k} saw no parity");
    }
    assert_eq!(src.odata_sent, n);
    assert_eq!(src.parity_sent, n / 8 * 2, "two parity per full group");
    assert_eq!(src.parity_skipped, 0);
    println!(
        "odata {} parity {} rdata {} naks {}",
        src.odata_sent, src.parity_sent, src.rdata_sent, src.naks_received
    );
}

/// Receivers that decode (`ReceiverConfig::fec`), 1 % independent loss on each receiver link,
/// k = 8 with 2 pro-active parity packets: every APDU arrives, most losses are rebuilt from
/// parity (`fec_recovered`), and far fewer sqns are NAKed than were lost.
#[test]
fn proactive_parity_repairs_low_loss_without_naks() {
    let mut lan = Lan::new(
        16,
        10,
        |c| {
            c.rate = Some(20_000_000);
            c.fec = Some(FecConfig::proactive(8, 2).unwrap_or_else(|e| panic!("{e}")));
        },
        |c| c.fec = true,
    );
    let link = LinkConfig {
        loss: 0.01,
        delay: Duration::from_micros(100),
        ..LinkConfig::default()
    };
    lan.receiver_links(&link, &link);
    let sizes = |i| size_of(i, 1000).max(1);
    let n = 4_000;
    let mut sent = Vec::new();
    lan.send_all(n, &sizes, &mut sent);
    lan.finish(n, &sizes, Duration::from_secs(30));
    let src = lan.sim.node::<Source>(lan.src).stats();
    let mut recovered = 0;
    for (k, c) in lan.checkers.iter().enumerate() {
        assert!(c.errors.is_empty(), "receiver {k}: {:?}", c.errors);
        assert_eq!((c.next, c.loss_sqns), (n, 0), "receiver {k}");
        let rx = lan.sim.node::<Receiver>(lan.rx[k]).stats();
        assert!(rx.parity_received > 0, "receiver {k} kept no parity");
        recovered += rx.fec_recovered;
    }
    // ~1 % of 4 000 ODATA lost at each of 10 receivers: ~400 losses.
    println!(
        "recovered by parity {recovered}, NAKed sqns at the source {}, rdata {}",
        src.nak_sqns_received, src.rdata_sent
    );
    assert!(recovered > 200, "parity rebuilt only {recovered} packets");
    assert!(
        src.nak_sqns_received < recovered / 2,
        "{} sqns NAKed with {recovered} rebuilt",
        src.nak_sqns_received
    );
}

/// Fragmented APDUs (up to 5 000 B: groups mix single packets and fragments) are rebuilt with
/// their OPT_FRAGMENTs (RFC 3208 §11.2): pro-active parity (k = 8, h = 2) and on-demand parity
/// (k = 8) each repair 2 % loss at 10 receivers mostly from parity, every APDU intact.
#[test]
fn fragmented_apdus_are_rebuilt_from_parity() {
    for (seed, fec) in [
        (41, FecConfig::proactive(8, 2)),
        (42, FecConfig::on_demand(8)),
    ] {
        let fec = fec.unwrap_or_else(|e| panic!("{e}"));
        let mut lan = Lan::new(
            seed,
            10,
            |c| {
                c.rate = Some(20_000_000);
                c.fec = Some(fec);
            },
            |c| c.fec = true,
        );
        let link = LinkConfig {
            loss: 0.02,
            delay: Duration::from_micros(100),
            ..LinkConfig::default()
        };
        lan.receiver_links(&link, &link);
        let sizes = |i| size_of(i, 5000).max(1);
        let n = 2_000;
        let mut sent = Vec::new();
        lan.send_all(n, &sizes, &mut sent);
        lan.finish(n, &sizes, Duration::from_secs(30));
        let src = lan.sim.node::<Source>(lan.src).stats();
        let mut recovered = 0;
        for (k, c) in lan.checkers.iter().enumerate() {
            assert!(
                c.errors.is_empty(),
                "seed {seed}, receiver {k}: {:?}",
                c.errors
            );
            assert_eq!((c.next, c.loss_sqns), (n, 0), "seed {seed}, receiver {k}");
            recovered += lan.sim.node::<Receiver>(lan.rx[k]).stats().fec_recovered;
        }
        println!(
            "{fec:?}: {} ODATA, rebuilt {recovered}, NAKed sqns {}, RDATA {}, parity {} + {} on demand",
            src.odata_sent,
            src.nak_sqns_received,
            src.rdata_sent,
            src.parity_sent,
            src.on_demand_parity_sent
        );
        assert!(
            src.odata_sent > n + n / 2,
            "few fragments: {}",
            src.odata_sent
        );
        assert_eq!(src.parity_skipped, 0, "seed {seed}");
        assert!(
            recovered > 300,
            "seed {seed}: parity rebuilt only {recovered}"
        );
        assert!(
            src.rdata_sent < recovered / 4,
            "seed {seed}: {} RDATA with {recovered} rebuilt",
            src.rdata_sent
        );
    }
}

/// A bursty stream (bursts of 5 APDUs every 20 ms: every group of 16 sits partial through
/// several pauses) to 20 receivers, each losing 5 % of ODATA: the losses of partial groups are
/// asked for with parity NAKs once the group has not filled for NAK_RPT_IVL + NAK_BO_IVL, and
/// answered with parity of the prefix sent so far (OPT_CURR_TGSIZE): nearly everything is
/// rebuilt from parity, hardly any RDATA, every APDU intact.
#[test]
fn partial_groups_are_repaired_with_prefix_parity() {
    let mut lan = Lan::new(
        43,
        20,
        |c| {
            c.rate = Some(20_000_000);
            c.fec = Some(FecConfig::on_demand(16).unwrap_or_else(|e| panic!("{e}")));
        },
        |c| c.fec = true,
    );
    for (k, &r) in lan.rx.clone().iter().enumerate() {
        let seed = lan.guard.seed() ^ (k as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        lan.sim.set_filter(r, Dir::Ingress, drop_odata(5, seed));
    }
    let lost = Rc::new(Cell::new(0u64));
    {
        let lost = lost.clone();
        lan.sim.set_tap(move |ev| {
            if let (TapKind::Dropped(_), Ok(r)) = (ev.kind, PacketRepr::parse(ev.bytes)) {
                if matches!(r.body, Body::Odata(_)) {
                    lost.set(lost.get() + 1);
                }
            }
        });
    }
    let sizes = |_| 200;
    let n = 1_000u64;
    for i in 0..n {
        let data = support::apdu(i, 200);
        lan.sim
            .with_node_mut(lan.src, |s: &mut Source, now| s.send(now, &data))
            .expect("paced far below the send buffer");
        let pause = if i % 5 == 4 { 20_000 } else { 50 };
        lan.sim.run_for(Duration::from_micros(pause)).expect("sim");
        lan.drain(&sizes);
    }
    lan.finish(n, &sizes, Duration::from_secs(10));
    let src = lan.sim.node::<Source>(lan.src).stats();
    let mut rebuilt = 0;
    for (k, c) in lan.checkers.iter().enumerate() {
        assert!(c.errors.is_empty(), "receiver {k}: {:?}", c.errors);
        assert_eq!((c.next, c.loss_sqns), (n, 0), "receiver {k}");
        rebuilt += lan.sim.node::<Receiver>(lan.rx[k]).stats().fec_recovered;
    }
    println!(
        "bursty: {} lost, {rebuilt} rebuilt, {} parity on demand, {} RDATA, {} parity NAKs",
        lost.get(),
        src.on_demand_parity_sent,
        src.rdata_sent,
        src.parity_naks_received
    );
    assert!(
        rebuilt * 10 >= lost.get() * 9,
        "only {rebuilt} of {} rebuilt from parity",
        lost.get()
    );
    assert!(src.rdata_sent * 10 < lost.get(), "{} RDATA", src.rdata_sent);
}

/// What one repair run cost.
struct RepairCost {
    /// ODATA packets lost, summed over receivers.
    lost: u64,
    /// Repair packets the source sent: RDATA plus on-demand parity.
    repairs: u64,
    /// NAK packets that reached the source.
    naks: u64,
    /// Packets rebuilt from parity, summed over receivers.
    rebuilt: u64,
}

/// `receivers` receivers, each losing 5 % of ODATA on its own link, `n` APDUs of 200 B at
/// 10 000/s; with `on_demand`, FEC groups of 16 with parity on demand only. Every receiver
/// must get everything.
fn repair_run(seed: u64, receivers: usize, n: u64, on_demand: bool) -> RepairCost {
    let mut lan = Lan::new(
        seed,
        receivers,
        |c| {
            c.rate = Some(20_000_000);
            if on_demand {
                c.fec = Some(FecConfig::on_demand(16).unwrap_or_else(|e| panic!("{e}")));
            }
        },
        |c| c.fec = on_demand,
    );
    let link = LinkConfig {
        delay: Duration::from_micros(25),
        jitter: Duration::from_micros(10),
        ..LinkConfig::default()
    };
    lan.receiver_links(&link, &link);
    lan.drain_every = Duration::from_micros(200);
    for (k, &r) in lan.rx.clone().iter().enumerate() {
        let seed = lan.guard.seed() ^ (k as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        lan.sim.set_filter(r, Dir::Ingress, drop_odata(5, seed));
    }
    let lost = Rc::new(Cell::new(0u64));
    let naks = Rc::new(Cell::new(0u64));
    {
        let (lost, naks) = (lost.clone(), naks.clone());
        let src_addr = lan.sim.addr(lan.src);
        lan.sim.set_tap(move |ev| {
            let Ok(r) = PacketRepr::parse(ev.bytes) else {
                return;
            };
            match (ev.kind, r.body) {
                (TapKind::Dropped(_), Body::Odata(_)) => lost.set(lost.get() + 1),
                (TapKind::Delivered, Body::Nak(_)) if ev.dst == src_addr => {
                    naks.set(naks.get() + 1);
                }
                _ => {}
            }
        });
    }
    let sizes = |_| 200;
    lan.send_paced(n, 200);
    lan.finish(n, &sizes, Duration::from_secs(10));
    let mut rebuilt = 0;
    for (k, c) in lan.checkers.iter().enumerate() {
        assert!(c.errors.is_empty(), "receiver {k}: {:?}", c.errors);
        assert_eq!((c.next, c.loss_sqns), (n, 0), "receiver {k}");
        rebuilt += lan.sim.node::<Receiver>(lan.rx[k]).stats().fec_recovered;
    }
    let src = lan.sim.node::<Source>(lan.src).stats();
    if on_demand {
        assert!(src.parity_naks_received > 0 && src.on_demand_parity_sent > 0);
        assert_eq!(src.parity_sent, 0, "on demand only: no pro-active parity");
    }
    RepairCost {
        lost: lost.get(),
        repairs: src.rdata_sent + src.on_demand_parity_sent,
        naks: naks.get(),
        rebuilt,
    }
}

/// Runs selective repair and on-demand parity on the same scenario (`seed`), prints both and
/// returns (selective, parity) repair packets per lost packet.
fn compare(seed: u64, receivers: usize, n: u64) -> (f64, f64) {
    let selective = repair_run(seed, receivers, n, false);
    let parity = repair_run(seed, receivers, n, true);
    let per = |c: &RepairCost| c.repairs as f64 / c.lost.max(1) as f64;
    println!(
        "{receivers} receivers, 5 % independent ODATA loss each, {n} APDUs: selective {} repairs \
         for {} lost ({:.4}/lost, {} NAKs); on-demand parity (k = 16) {} repairs for {} lost \
         ({:.4}/lost, {} NAKs, {} rebuilt)",
        selective.repairs,
        selective.lost,
        per(&selective),
        selective.naks,
        parity.repairs,
        parity.lost,
        per(&parity),
        parity.naks,
        parity.rebuilt
    );
    assert!(
        parity.rebuilt > parity.lost / 2,
        "most losses rebuilt from parity"
    );
    (per(&selective), per(&parity))
}

/// Issue 15's headline: with many receivers each losing different packets, one on-demand
/// parity packet repairs different losses at different receivers, so the repair traffic per
/// lost packet falls well below selective repair's (which sends each sqn that anyone lost).
#[test]
fn on_demand_parity_repairs_many_receivers_with_fewer_packets() {
    let (selective, parity) = compare(31, 50, 4_000);
    assert!(
        parity * 2.0 < selective,
        "on-demand parity should at least halve the repairs per lost packet"
    );
}

/// The same with a thousand receivers: selective repair now sends nearly every sqn (someone
/// lost it), while parity only grows with the worst receiver's losses per group.
#[test]
fn on_demand_parity_with_a_thousand_receivers() {
    let (selective, parity) = compare(32, 1000, 2_000);
    assert!(parity * 2.0 < selective);
}

/// Parity that never arrives (every parity packet dropped on the receivers' links): after
/// its parity NAK rounds each missing sqn falls back to selective NAKs, and everything is
/// still delivered.
#[test]
fn lost_parity_falls_back_to_selective_repair() {
    let mut lan = Lan::new(
        33,
        10,
        |c| {
            c.rate = Some(20_000_000);
            c.fec = Some(FecConfig::on_demand(8).unwrap_or_else(|e| panic!("{e}")));
        },
        |c| c.fec = true,
    );
    let link = LinkConfig {
        delay: Duration::from_micros(25),
        ..LinkConfig::default()
    };
    lan.receiver_links(&link, &link);
    for (k, &r) in lan.rx.clone().iter().enumerate() {
        let mut odata = drop_odata(5, lan.guard.seed() ^ (k as u64 + 1));
        lan.sim.set_filter(r, Dir::Ingress, move |p: &[u8]| {
            PacketRepr::parse(p).is_ok_and(|r| r.parity && matches!(r.body, Body::Rdata(_)))
                || odata(p)
        });
    }
    let sizes = |i| size_of(i, 1000).max(1);
    let n = 2_000;
    let mut sent = Vec::new();
    lan.send_all(n, &sizes, &mut sent);
    lan.finish(n, &sizes, Duration::from_secs(30));
    for (k, c) in lan.checkers.iter().enumerate() {
        assert!(c.errors.is_empty(), "receiver {k}: {:?}", c.errors);
        assert_eq!((c.next, c.loss_sqns), (n, 0), "receiver {k}");
        assert_eq!(lan.sim.node::<Receiver>(lan.rx[k]).stats().fec_recovered, 0);
    }
    let src = lan.sim.node::<Source>(lan.src).stats();
    assert!(src.parity_naks_received > 0 && src.on_demand_parity_sent > 0);
    assert!(src.rdata_sent > 0, "selective repair took over");
}

/// Issue 15's pro-active figures: h = 1 and 2 parity packets per group of 8, 1 % and 2 %
/// independent ODATA loss on each of 10 receivers, 4 000 APDUs of 200 B at 10 000/s: the
/// share of lost packets rebuilt from parity (no NAK needed), the NAKed sqns, the repair
/// latency (send → delivery of a lost packet) p50/p99, and the bandwidth parity costs.
#[test]
fn proactive_parity_figures() {
    let mut rows = Vec::new();
    for (h, loss) in [(1u8, 1u64), (2, 1), (1, 2), (2, 2)] {
        let seed = 40 + u64::from(h) * 10 + loss;
        let mut lan = Lan::new(
            seed,
            10,
            |c| {
                c.rate = Some(20_000_000);
                c.fec = Some(FecConfig::proactive(8, h).unwrap_or_else(|e| panic!("{e}")));
            },
            |c| c.fec = true,
        );
        let link = LinkConfig {
            delay: Duration::from_micros(25),
            ..LinkConfig::default()
        };
        lan.receiver_links(&link, &link);
        lan.drain_every = Duration::from_micros(100);
        let index: std::collections::HashMap<_, _> =
            lan.rx.iter().enumerate().map(|(k, &r)| (r, k)).collect();
        let lost_by: Rc<std::cell::RefCell<Vec<(usize, u32)>>> = Rc::default();
        for (k, &r) in lan.rx.clone().iter().enumerate() {
            let seed = lan.guard.seed() ^ (k as u64 + 7).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            lan.sim.set_filter(r, Dir::Ingress, drop_odata(loss, seed));
        }
        {
            let lost_by = lost_by.clone();
            lan.sim.set_tap(move |ev| {
                if let (TapKind::Dropped(_), Some(to)) = (ev.kind, ev.to_node) {
                    if let Ok(r) = PacketRepr::parse(ev.bytes) {
                        if let (Body::Odata(d), false) = (r.body, r.parity) {
                            lost_by.borrow_mut().push((index[&to], d.sqn.0));
                        }
                    }
                }
            });
        }
        let n = 4_000;
        let sent_at: Vec<_> = {
            let mut t = Vec::new();
            lan.sim.run_for(Duration::from_millis(5)).expect("sim");
            for i in 0..n {
                let data = support::apdu(i, 200);
                lan.sim
                    .with_node_mut(lan.src, |s: &mut Source, now| s.send(now, &data))
                    .expect("paced");
                t.push(lan.sim.now());
                lan.sim.run_for(Duration::from_micros(100)).expect("sim");
                lan.drain(&|_| 200);
            }
            t
        };
        lan.finish(n, &|_| 200, Duration::from_secs(10));
        let (mut rebuilt, mut naked) = (0, 0);
        for (k, c) in lan.checkers.iter().enumerate() {
            assert_eq!((c.next, c.loss_sqns), (n, 0), "receiver {k}");
            let st = lan.sim.node::<Receiver>(lan.rx[k]).stats();
            rebuilt += st.fec_recovered;
            naked += st.nak_sqns_sent;
        }
        let mut lat: Vec<Duration> = lost_by
            .borrow()
            .iter()
            .map(|&(k, sqn)| {
                lan.checkers[k].arrivals[sqn as usize]
                    .saturating_duration_since(sent_at[sqn as usize])
            })
            .collect();
        lat.sort();
        let lost = lat.len() as u64;
        let pct = |per_mille: usize| lat[(lat.len() - 1) * per_mille / 1000];
        let src = lan.sim.node::<Source>(lan.src).stats();
        let overhead = src.parity_bytes as f64 / src.odata_bytes as f64;
        rows.push(format!(
            "h = {h}, {loss} % loss: {lost} lost, {:.0} % rebuilt from parity, {naked} sqns \
             NAKed, repair latency p50 {:?} p99 {:?}, parity {:.1} % of ODATA bytes",
            100.0 * rebuilt.min(lost) as f64 / lost.max(1) as f64,
            pct(500),
            pct(990),
            100.0 * overhead
        ));
        assert!(rebuilt > 0 && overhead > 0.0);
    }
    for r in rows {
        println!("{r}");
    }
}
