//! Fuzz endpoint strings (`pgm::socket::{EndpointSpec, Endpoint}`, udp-perf's `UdpEndpoint`):
//! canonical display round trip, errors that quote the input, resolution consistent with the
//! syntax. The checks are in `src/endpoint.rs`, shared with the replay test
//! `tools/tests/fuzz_corpus.rs`.
//!
//! Run from `fuzz/` (a scratch directory first keeps new inputs out of the checked-in corpus):
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none endpoint /tmp/x corpus/endpoint`
#![no_main]

#[path = "../src/endpoint.rs"]
mod endpoint;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    endpoint::check(data);
});
