//! Repair latency on a LAN: 0.2 ms links, 1 % loss everywhere, the LAN NAK defaults.

mod support;

use std::{cell::RefCell, collections::HashMap, rc::Rc, time::Duration};

use pgm::{
    sim::{LinkConfig, NodeId, TapKind},
    time::Instant,
    wire::{Body, PacketRepr},
};
use support::Lan;

#[test]
fn p99_repair_latency_under_ten_ms_with_lan_defaults() {
    let receivers = 20;
    let mut lan = Lan::new(8, receivers, |c| c.rate = Some(4_000_000), |_| {});
    let link = LinkConfig {
        loss: 0.01,
        delay: Duration::from_micros(200),
        ..LinkConfig::default()
    };
    lan.receiver_links(&link, &link);
    for c in &mut lan.checkers {
        c.skip_on_loss = true;
    }
    lan.drain_every = Duration::from_micros(100);
    // ODATA send times by sqn, and which receiver lost which ODATA.
    let sent: Rc<RefCell<HashMap<u32, Instant>>> = Rc::default();
    let lost: Rc<RefCell<Vec<(NodeId, u32)>>> = Rc::default();
    {
        let (sent, lost) = (sent.clone(), lost.clone());
        let src = lan.src;
        lan.sim.set_tap(move |ev| {
            let Ok(r) = PacketRepr::parse(ev.bytes) else {
                return;
            };
            let Body::Odata(d) = r.body else { return };
            match ev.kind {
                TapKind::Sent if ev.from == src => {
                    sent.borrow_mut().insert(d.sqn.0, ev.time);
                }
                TapKind::Dropped(_) => {
                    if let Some(to) = ev.to_node {
                        lost.borrow_mut().push((to, d.sqn.0));
                    }
                }
                _ => {}
            }
        });
    }
    let n = 20_000;
    let sizes = |_| 500;
    let mut sent_at = Vec::new();
    lan.send_all(n, &sizes, &mut sent_at);
    lan.finish(n, &sizes, Duration::from_secs(5));
    let mut lat: Vec<Duration> = Vec::new();
    for &(node, sqn) in lost.borrow().iter() {
        let k = lan.rx.iter().position(|&r| r == node).expect("receiver");
        let c = &lan.checkers[k];
        assert_eq!((c.next, c.loss_sqns), (n, 0), "receiver {k}");
        let arrived = c.arrivals[sqn as usize];
        lat.push(arrived - sent.borrow()[&sqn]);
    }
    lat.sort();
    let pct = |per_mille: usize| lat[(lat.len() - 1) * per_mille / 1000];
    println!(
        "{} repairs: p50 {:?} p90 {:?} p99 {:?} max {:?} (send → delivery of the repair)",
        lat.len(),
        pct(500),
        pct(900),
        pct(990),
        lat[lat.len() - 1]
    );
    assert!(lat.len() > 1000);
    assert!(pct(990) < Duration::from_millis(10), "p99 {:?}", pct(990));
}
