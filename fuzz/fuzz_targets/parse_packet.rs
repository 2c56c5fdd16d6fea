//! Fuzz the PGM packet parser: `parse`, `parse_verified`, the option walker and `Display` on
//! arbitrary bytes, and emit → re-parse of whatever parses (see `src/invariants.rs`).
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run parse_packet -- -max_total_time=60` from `fuzz/`.
//! Built with `--cfg fuzzing`, `checksum::verify` accepts any non-zero checksum, so the fuzzer
//! gets past `parse_verified`'s checksum check.
#![no_main]

#[path = "../src/invariants.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    invariants::check(data);
});
