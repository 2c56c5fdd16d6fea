//! The start of a session: a receiver that was listening before the source began gets the
//! first packets repaired like any others, whatever of the start it lost.

mod support;

use std::time::Duration;

use pgm::{
    config::NakTiming,
    sim::Dir,
    wire::{Body, PacketRepr},
    Receiver,
};
use support::{apdu, Lan};

/// Sends `count` APDUs of 64 B, one every 16 µs (62 500/s) from the first moment (as
/// `pgm-send` does: its SPMs and first data leave together), with `drop` deciding which
/// packets the receiver's ingress loses; returns the receiver's checker and stats.
fn start(
    seed: u64,
    count: u64,
    drop: impl FnMut(&[u8]) -> bool + 'static,
) -> (support::Checker, pgm::receiver::ReceiverStats) {
    let mut lan = Lan::new(seed, 1, |_| {}, |c| c.nak = NakTiming::LAN);
    lan.sim.set_filter(lan.rx[0], Dir::Ingress, drop);
    let sizes = |_| 64;
    for i in 0..count {
        let data = apdu(i, 64);
        lan.sim
            .with_node_mut(lan.src, |s: &mut pgm::Source, now| s.send(now, &data))
            .expect("send");
        lan.sim.run_for(Duration::from_micros(16)).expect("sim");
        if i % 8 == 0 {
            lan.drain(&sizes);
        }
    }
    lan.finish(count, &sizes, Duration::from_secs(5));
    let stats = lan.sim.node::<Receiver>(lan.rx[0]).stats();
    (lan.checkers.remove(0), stats)
}

fn odata_sqn(p: &[u8]) -> Option<u32> {
    match PacketRepr::parse(p).ok()?.body {
        Body::Odata(d) => Some(d.sqn.0),
        _ => None,
    }
}

#[test]
fn a_lost_first_odata_is_repaired() {
    let (c, st) = start(1, 5000, |p| odata_sqn(p) == Some(0));
    println!("{st:?}");
    assert_eq!((c.next, c.loss_sqns), (5000, 0), "{:?}", c.loss_events);
}

/// xorshift drop of `percent` % of every packet type.
fn drop_any(percent: u64, seed: u64) -> impl FnMut(&[u8]) -> bool + 'static {
    let mut state = seed | 1;
    move |_: &[u8]| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % 100 < percent
    }
}

#[test]
fn five_percent_loss_of_everything_from_the_first_packet() {
    let mut bad = Vec::new();
    for seed in 1..=300 {
        let (c, st) = start(seed, 2000, drop_any(5, seed * 7919));
        if c.next != 2000 || c.loss_sqns != 0 {
            bad.push(format!(
                "seed {seed}: next {} lost {:?} {st:?}",
                c.next, c.loss_events
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
