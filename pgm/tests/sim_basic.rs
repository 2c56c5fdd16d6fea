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
}
