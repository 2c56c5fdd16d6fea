//! Fuzz the IPv4 header a raw PGM socket hands back (`pgm::transport::raw::parse_ipv4`) against a
//! model and built packets. The checks are in `src/raw_ipv4.rs`, shared with the replay test
//! `pgm/tests/raw_ipv4_fuzz_corpus.rs`.
//!
//! Run from `fuzz/` (a scratch directory first keeps new inputs out of the checked-in corpus):
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none raw_ipv4 /tmp/x corpus/raw_ipv4`
#![no_main]

#[path = "../src/raw_ipv4.rs"]
mod raw_ipv4;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    raw_ipv4::check(data);
});
