//! Fuzz libzmq v1 frames (`pubsub::frame`): header parse, frame walk, canonical re-encode and round
//! trip. The checks are in `src/pubsub_frames.rs`, shared with the replay test
//! `pubsub/tests/fuzz_corpus.rs`.
//!
//! Run from `fuzz/` (a scratch directory first keeps new inputs out of the checked-in corpus):
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none pubsub_frames /tmp/x corpus/pubsub_frames`
#![no_main]

#[path = "../src/pubsub_frames.rs"]
mod pubsub_frames;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pubsub_frames::check(data);
});
