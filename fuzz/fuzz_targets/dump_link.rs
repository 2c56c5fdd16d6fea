//! Fuzz pgm-dump's frame decoding (link layer, IP, UDP, UDP GSO splitting:
//! `tools::dump::decode_frame`) and printing. The checks are in `src/dump_link.rs`, shared with the
//! replay test `tools/tests/fuzz_corpus.rs`.
//!
//! Run from `fuzz/` (a scratch directory first keeps new inputs out of the checked-in corpus):
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none dump_link /tmp/x corpus/dump_link`
#![no_main]

#[path = "../src/dump_link.rs"]
mod dump_link;
#[path = "../src/input.rs"]
mod input;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dump_link::check(data);
});
