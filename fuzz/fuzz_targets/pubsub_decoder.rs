//! Fuzz the subscriber's APDU stream decoder (`pubsub::decoder`): encoder round trips at any
//! chunking, hostile APDUs under a memory bound, one APDU against the same stream cut up. The
//! checks are in `src/pubsub_decoder.rs`, shared with the replay test
//! `pubsub/tests/fuzz_corpus.rs`.
//!
//! Run from `fuzz/` (a scratch directory first keeps new inputs out of the checked-in corpus):
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none pubsub_decoder /tmp/x corpus/pubsub_decoder`
#![no_main]

#[path = "../src/input.rs"]
mod input;
#[path = "../src/pubsub_decoder.rs"]
mod pubsub_decoder;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pubsub_decoder::check(data);
});
