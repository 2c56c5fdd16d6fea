//! Replays the seed corpora (`fuzz/corpus/TARGET/`) and crash regressions
//! (`fuzz/regressions/TARGET/`, if any) of the `pubsub_frames`, `pubsub_decoder` and
//! `pubsub_filter` fuzz targets through the targets' own checks (`fuzz/src/TARGET.rs`, included
//! by path), so CI runs them on stable Rust without cargo-fuzz.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

#[path = "../../fuzz/src/input.rs"]
mod input;
#[path = "../../fuzz/src/pubsub_decoder.rs"]
mod pubsub_decoder;
#[path = "../../fuzz/src/pubsub_filter.rs"]
mod pubsub_filter;
#[path = "../../fuzz/src/pubsub_frames.rs"]
mod pubsub_frames;

#[path = "../../pgm/tests/support/corpus.rs"]
mod corpus;

#[test]
fn replay_pubsub_frames() {
    corpus::replay_seeds("pubsub_frames", pubsub_frames::check);
    corpus::replay_regressions("pubsub_frames", pubsub_frames::check);
}

#[test]
fn replay_pubsub_decoder() {
    corpus::replay_seeds("pubsub_decoder", pubsub_decoder::check);
    corpus::replay_regressions("pubsub_decoder", pubsub_decoder::check);
}

#[test]
fn replay_pubsub_filter() {
    corpus::replay_seeds("pubsub_filter", pubsub_filter::check);
    corpus::replay_regressions("pubsub_filter", pubsub_filter::check);
}
