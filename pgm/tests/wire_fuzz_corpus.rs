//! Replays the fuzz seed corpus (`fuzz/corpus/parse_packet/`) and every crash regression
//! (`fuzz/regressions/`, if present) through the fuzz target's own invariants, so CI checks them
//! on stable Rust without cargo-fuzz or nightly.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

#[path = "wire_common.rs"]
mod common;
#[path = "../../fuzz/src/invariants.rs"]
mod invariants;

#[path = "support/corpus.rs"]
mod corpus;

use std::fs;

use corpus::{files, fuzz_dir};

#[test]
fn replay_seed_corpus() {
    let dir = fuzz_dir().join("corpus/parse_packet");
    let seeds = files(&dir);
    assert!(!seeds.is_empty(), "no seed corpus in {}", dir.display());
    assert!(seeds.len() < 100, "keep the checked-in seed corpus small");
    for path in seeds {
        let data = fs::read(&path).unwrap();
        eprintln!("replaying {}", path.display());
        invariants::check(&data);
    }
}

#[test]
fn replay_regressions() {
    for path in files(&fuzz_dir().join("regressions")) {
        let data = fs::read(&path).unwrap();
        eprintln!("replaying {}", path.display());
        invariants::check(&data);
    }
}

#[test]
fn seed_corpus_holds_every_fixture() {
    let dir = fuzz_dir().join("corpus/parse_packet");
    for (name, bytes) in common::all() {
        let path = dir.join(name);
        let on_disk = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(on_disk, bytes, "{name} differs from the fixture");
    }
}
