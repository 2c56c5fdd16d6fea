//! Fuzz the topic-prefix filter (`pubsub::Filter`) against a model (prefixes with reference counts)
//! under subscribe/unsubscribe/match programs. The checks are in `src/pubsub_filter.rs`, shared
//! with the replay test `pubsub/tests/fuzz_corpus.rs`.
//!
//! Run from `fuzz/` (a scratch directory first keeps new inputs out of the checked-in corpus):
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none pubsub_filter /tmp/x corpus/pubsub_filter`
#![no_main]

#[path = "../src/input.rs"]
mod input;
#[path = "../src/pubsub_filter.rs"]
mod pubsub_filter;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pubsub_filter::check(data);
});
