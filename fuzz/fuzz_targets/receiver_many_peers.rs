//! Fuzz the receiver engine with many peers and full-size windows: packets of up to 4 096 TSIs
//! with gaps of any size, time jumps and timeouts, asserting the global memory bounds (also
//! measured as heap), the work and CPU time one call may take, the out-queue, the NAK credit,
//! event order, and that 400 s of silence expires every peer (see `src/many_peers.rs`, shared
//! with the replay test `pgm/tests/many_peers_fuzz_corpus.rs`).
//!
//! Run from `fuzz/` (a scratch directory first keeps new inputs out of the checked-in corpus):
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none receiver_many_peers /tmp/mp
//! corpus/receiver_many_peers -- -max_total_time=600 -timeout=10`
#![no_main]

#[path = "../src/input.rs"]
mod input;
#[path = "../src/many_peers.rs"]
mod many_peers;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = many_peers::run(data);
});
