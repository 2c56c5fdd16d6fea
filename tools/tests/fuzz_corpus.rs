//! Replays the seed corpora (`fuzz/corpus/TARGET/`) and crash regressions
//! (`fuzz/regressions/TARGET/`, if any) of the `dump_link`, `dump_capture_file` and `endpoint`
//! fuzz targets through the targets' own checks (`fuzz/src/TARGET.rs`, included by path), so CI
//! runs them on stable Rust without cargo-fuzz.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

#[path = "../../fuzz/src/dump_capture_file.rs"]
mod dump_capture_file;
#[path = "../../fuzz/src/dump_link.rs"]
mod dump_link;
#[path = "../../fuzz/src/endpoint.rs"]
mod endpoint;
#[path = "../../fuzz/src/input.rs"]
mod input;

#[path = "../../pgm/tests/support/corpus.rs"]
mod corpus;

#[test]
fn replay_dump_link() {
    corpus::replay_seeds("dump_link", dump_link::check);
    corpus::replay_regressions("dump_link", dump_link::check);
}

#[test]
fn replay_dump_capture_file() {
    corpus::replay_seeds("dump_capture_file", dump_capture_file::check);
    corpus::replay_regressions("dump_capture_file", dump_capture_file::check);
}

#[test]
fn replay_endpoint() {
    corpus::replay_seeds("endpoint", endpoint::check);
    corpus::replay_regressions("endpoint", endpoint::check);
}
