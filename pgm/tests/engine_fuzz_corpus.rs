//! Replays the `receiver` fuzz target's seed corpus (`fuzz/corpus/receiver/`) and its crash
//! regressions (`fuzz/regressions/receiver/`, if any) through the target's own operation
//! interpreter and assertions (`fuzz/src/engine_ops.rs`, included by path), so CI checks them on
//! stable Rust without cargo-fuzz or nightly.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

#[path = "../../fuzz/src/engine_ops.rs"]
mod engine_ops;

#[path = "support/corpus.rs"]
mod corpus;

use std::fs;

use corpus::{files, fuzz_dir};

#[test]
fn replay_seed_corpus() {
    let dir = fuzz_dir().join("corpus/receiver");
    let seeds = files(&dir);
    assert!(!seeds.is_empty(), "no seed corpus in {}", dir.display());
    assert!(seeds.len() < 50, "keep the checked-in seed corpus small");
    let (mut apdus, mut naks, mut rdata, mut lost) = (0, 0, 0, 0);
    for path in seeds {
        let data = fs::read(&path).unwrap();
        assert!(data.len() <= 4096, "{}: keep seeds small", path.display());
        eprintln!("replaying {}", path.display());
        let (rx, tx) = engine_ops::run(&data);
        apdus += rx.apdus_delivered;
        naks += rx.naks_sent;
        rdata += tx.rdata_sent;
        lost += rx.lost_sqns;
    }
    // The corpus reaches past the parser: data is delivered, lost, NAKed and repaired.
    assert!(
        apdus > 0 && naks > 0 && rdata > 0 && lost > 0,
        "apdus {apdus} naks {naks} rdata {rdata} lost {lost}"
    );
}

#[test]
fn replay_regressions() {
    for path in files(&fuzz_dir().join("regressions/receiver")) {
        let data = fs::read(&path).unwrap();
        eprintln!("replaying {}", path.display());
        let _ = engine_ops::run(&data);
    }
}
