//! Replays the `receiver_many_peers` fuzz target's seed corpus
//! (`fuzz/corpus/receiver_many_peers/`) and its crash regressions
//! (`fuzz/regressions/receiver_many_peers/`, if any) through the target's own interpreter and
//! assertions (`fuzz/src/many_peers.rs`, included by path, with its counting allocator), so CI
//! checks them on stable Rust without cargo-fuzz or nightly.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

#[path = "../../fuzz/src/input.rs"]
mod input;
#[path = "../../fuzz/src/many_peers.rs"]
mod many_peers;

#[path = "support/corpus.rs"]
mod corpus;

use std::cell::RefCell;

#[test]
fn replay_seed_corpus() {
    let all = RefCell::new(Vec::new());
    corpus::replay_seeds("receiver_many_peers", |data| {
        let s = many_peers::run(data);
        eprintln!(
            "  peers {} (full {}), footprint {}, heap {}, largest gap {}, naks {}, trimmed {}, \
             leaps {}, loss events {}, apdus {}, evicted {}",
            s.max_peers,
            s.peers_full,
            s.max_footprint,
            s.max_heap,
            s.max_growth,
            s.naks,
            s.stats.memory_trimmed,
            s.stats.leaps_followed,
            s.stats.loss_events,
            s.stats.apdus_delivered,
            s.stats.peers_evicted
        );
        all.borrow_mut().push(s);
    });
    let all = all.into_inner();
    let any = |f: &dyn Fn(&many_peers::Summary) -> bool| all.iter().any(f);
    // The seeds reach what the target is about: a full peer table, the memory budget, big
    // gaps, leaps, NAKs, loss and delivery.
    assert!(
        any(&|s| s.peers_full && s.max_peers >= 256),
        "no seed fills a large peer table"
    );
    assert!(
        any(&|s| s.stats.memory_trimmed > 0),
        "no seed reaches the memory budget"
    );
    assert!(any(&|s| s.max_growth > 10_000), "no seed opens a big gap");
    assert!(
        any(&|s| s.stats.leaps_followed > 0),
        "no seed follows a leap"
    );
    assert!(any(&|s| s.naks > 0), "no seed makes the receiver NAK");
    assert!(any(&|s| s.stats.loss_events > 0), "no seed reports loss");
    assert!(
        any(&|s| s.stats.apdus_delivered > 0),
        "no seed delivers data"
    );
    assert!(any(&|s| s.stats.peers_evicted > 0), "no seed evicts a peer");
}

#[test]
fn replay_regressions() {
    corpus::replay_regressions("receiver_many_peers", |data| {
        let _ = many_peers::run(data);
    });
}
