//! Fuzz the sans-IO engine: the input is a program of operations (crafted and raw packets, time
//! advances, timeouts, transmit/event drains, links between the engines, `send` and `close`) run
//! against a `Receiver` and a `Source` with small windows, asserting the memory bounds after
//! every step and that `poll_transmit` drains end (see `src/engine_ops.rs`, shared with the
//! replay test `pgm/tests/engine_fuzz_corpus.rs`).
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run receiver -- -max_total_time=600` from `fuzz/`
//! (seeds in `corpus/receiver/`; a crash goes to `regressions/receiver/`, minimised with
//! `cargo fuzz tmin receiver ARTIFACT`).
#![no_main]

#[path = "../src/engine_ops.rs"]
mod engine_ops;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = engine_ops::run(data);
});
