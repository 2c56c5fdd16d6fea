//! FEC in the simulator (docs/fec.md). The receiver does not decode parity yet, so what is
//! checked here is that a pro-active FEC source is harmless and complete for receivers: 10
//! receivers with 5 % independent loss get every APDU once, in order, byte-exact, through
//! selective repair, while each counts the parity it drops; and the source spent `h/k` of its
//! ODATA on parity. Seeded; the seed is printed on failure (`support::SeedGuard`).

mod support;

use std::time::Duration;

use pgm::{sim::LinkConfig, FecConfig, Receiver, Source};
use support::{size_of, Lan};

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
    // Single-TPDU APDUs (fragmented groups get no parity).
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
