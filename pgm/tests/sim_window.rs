//! A receiver cut off for longer than the transmit window: exact loss reports, then delivery
//! resumes; memory stays within the configured window.

mod support;

use std::time::Duration;

use pgm::{sim::Dir, time::Instant, Receiver, Source};
use support::Lan;

#[test]
fn cut_off_longer_than_the_window_reports_exact_loss_then_resumes() {
    // 200 one-packet APDUs a second for 10 s; the window holds 500 (2.5 s); the link is down
    // 3 s → 4 s, so about 200 APDUs become unrecoverable.
    let mut lan = Lan::new(
        5,
        2,
        |c| {
            c.txw_sqns = 500;
            c.rate = Some(1_000_000);
        },
        |c| c.rxw_max_bytes = 64 * 1024,
    );
    let cut = lan.rx[0];
    lan.sim.link_down(
        cut,
        Dir::Ingress,
        Instant::from_millis(3000)..Instant::from_millis(7000),
    );
    let sizes = |_| 100;
    for c in &mut lan.checkers {
        c.skip_on_loss = true;
    }
    let n = 2000u64;
    for i in 0..n {
        let data = support::apdu(i, 100);
        lan.sim
            .with_node_mut(lan.src, |s: &mut Source, now| s.send(now, &data))
            .expect("send");
        lan.sim.run_for(Duration::from_millis(5)).expect("sim");
        lan.drain(&sizes);
        let st = lan.sim.node::<Receiver>(cut).stats();
        assert!(
            st.window_bytes <= 64 * 1024,
            "window {} bytes",
            st.window_bytes
        );
    }
    lan.sim.run_for(Duration::from_secs(1)).expect("sim");
    lan.drain(&sizes);
    let ok = &lan.checkers[1];
    assert_eq!(
        (ok.next, ok.loss_sqns),
        (n, 0),
        "the receiver with a good link"
    );
    let c = &lan.checkers[0];
    println!("lost {} sqns in {:?}", c.loss_sqns, c.loss_events);
    assert!(c.loss_sqns > 100, "data fell out of the window");
    // Each loss report skips exactly the APDUs it names: every later APDU lines up.
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(c.next, n);
    let recv = lan.sim.node::<Receiver>(cut).stats();
    assert_eq!(recv.lost_sqns + recv.apdus_delivered, n, "{recv:?}");
    assert!(recv.missing_now == 0 && recv.window_bytes == 0, "{recv:?}");
}
