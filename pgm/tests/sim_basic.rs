//! Simulator scenarios: delivery without and with loss.

mod support;

use std::time::Duration;

use pgm::sim::LinkConfig;
use support::{size_of, Lan};

#[test]
fn lossless_delivery_with_fragments() {
    let mut lan = Lan::new(1, 3, |c| c.rate = Some(10_000_000), |_| {});
    let sizes = |i| size_of(i, 20 * 1024);
    let mut sent = Vec::new();
    lan.send_all(500, &sizes, &mut sent);
    lan.finish(500, &sizes, Duration::from_secs(5));
    for c in &lan.checkers {
        assert_eq!(c.next, 500, "{:?}", c.errors);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.loss_sqns, 0);
    }
}

#[test]
fn repairs_ten_percent_loss_few_receivers() {
    let mut lan = Lan::new(2, 5, |c| c.rate = Some(10_000_000), |_| {});
    let link = LinkConfig {
        loss: 0.1,
        delay: Duration::from_micros(100),
        ..LinkConfig::default()
    };
    lan.receiver_links(&link, &link);
    let sizes = |i| size_of(i, 20 * 1024);
    let mut sent = Vec::new();
    lan.send_all(2000, &sizes, &mut sent);
    lan.finish(2000, &sizes, Duration::from_secs(10));
    for c in &lan.checkers {
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!((c.next, c.loss_sqns), (2000, 0));
    }
    // One source: each receiver's only peer accounts for all of its repair traffic.
    for &id in &lan.rx {
        let r = lan.sim.node::<pgm::Receiver>(id);
        let total = r.stats();
        let peers: Vec<_> = r.all_peer_stats().collect();
        let [(_, p)] = peers.as_slice() else {
            panic!("one peer: {peers:?}");
        };
        assert!(p.naks_sent > 0 && p.repaired > 0, "{p:?}");
        assert_eq!(p.state, pgm::PeerState::Active);
        assert_eq!(p.naks_sent, total.naks_sent);
        assert_eq!(p.nak_sqns_sent, total.nak_sqns_sent);
        assert_eq!(p.naks_suppressed, total.naks_suppressed);
        assert_eq!(p.ncf_received, total.ncf_received);
        assert_eq!(p.rdata_received, total.rdata_received);
        assert_eq!(p.odata_received, total.odata_received);
        assert_eq!(p.repaired, total.repaired);
        assert_eq!(p.apdus_delivered, total.apdus_delivered);
        assert_eq!(p.window_bytes, total.window_bytes);
    }
}

#[derive(Default)]
struct LateChecker {
    first: Option<u64>,
    count: u64,
    losses: u32,
    expired: bool,
}

impl LateChecker {
    fn drain(&mut self, r: &mut pgm::Receiver) {
        use pgm::Event;
        while let Some(ev) = r.poll_event() {
            match ev {
                Event::Data { apdu, .. } => {
                    let i = u64::from_be_bytes(apdu[..8].try_into().expect("8 bytes"));
                    let f = *self.first.get_or_insert(i);
                    assert_eq!(i, f + self.count, "in order without gaps");
                    assert_eq!(&apdu[..], &support::apdu(i, 300)[..]);
                    self.count += 1;
                }
                Event::Loss { .. } => self.losses += 1,
                Event::PeerExpired { .. } => self.expired = true,
                _ => {}
            }
        }
    }
}

#[test]
fn late_joiner_starts_cleanly_and_fin_ends_the_session() {
    use pgm::{Receiver, Source};
    let mut lan = Lan::new(9, 2, |c| c.rate = Some(1_000_000), |_| {});
    let (early, late) = (lan.rx[0], lan.rx[1]);
    lan.sim.leave(late, support::GROUP);
    let mut early_check = LateChecker::default();
    let mut late_check = LateChecker::default();
    let mut step = |lan: &mut Lan, d: Duration| {
        lan.sim.run_for(d).expect("sim");
        early_check.drain(lan.sim.node_mut::<Receiver>(early));
        late_check.drain(lan.sim.node_mut::<Receiver>(late));
    };
    for i in 0..400u64 {
        if i == 150 {
            lan.sim.join(late, support::GROUP);
        }
        let data = support::apdu(i, 300);
        lan.sim
            .with_node_mut(lan.src, |s: &mut Source, now| s.send(now, &data))
            .expect("send");
        step(&mut lan, Duration::from_millis(2));
    }
    lan.sim
        .with_node_mut(lan.src, |s: &mut Source, now| s.close(now));
    step(&mut lan, Duration::from_secs(4));
    assert_eq!(
        (early_check.first, early_check.count, early_check.losses),
        (Some(0), 400, 0)
    );
    let first = late_check.first.expect("the late receiver got data");
    assert!((150..160).contains(&first), "joined at {first}");
    assert_eq!((first + late_check.count, late_check.losses), (400, 0));
    assert!(
        early_check.expired && late_check.expired,
        "the FIN ended the session"
    );
    assert_eq!(lan.sim.node::<Receiver>(late).peers().count(), 0);
}
