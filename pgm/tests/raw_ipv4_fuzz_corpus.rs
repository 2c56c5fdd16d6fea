//! Replays the `raw_ipv4` fuzz target's seed corpus (`fuzz/corpus/raw_ipv4/`) and its crash
//! regressions (`fuzz/regressions/raw_ipv4/`, if any) through the target's own checks
//! (`fuzz/src/raw_ipv4.rs`, included by path), so CI runs them on stable Rust.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

#[path = "../../fuzz/src/raw_ipv4.rs"]
mod raw_ipv4;

#[path = "support/corpus.rs"]
mod corpus;

#[test]
fn replay_seed_corpus() {
    corpus::replay_seeds("raw_ipv4", raw_ipv4::check);
}

#[test]
fn replay_regressions() {
    corpus::replay_regressions("raw_ipv4", raw_ipv4::check);
}
