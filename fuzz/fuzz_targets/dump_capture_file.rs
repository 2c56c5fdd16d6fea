//! Fuzz pgm-dump on a whole pcap/pcapng file (`tools::dump::dump_reader`): output lines,
//! truncation, `--count`, and agreement with the other pcap reader. The checks are in
//! `src/dump_capture_file.rs`, shared with the replay test `tools/tests/fuzz_corpus.rs`.
//!
//! Run from `fuzz/` (a scratch directory first keeps new inputs out of the checked-in corpus):
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none dump_capture_file /tmp/x corpus/dump_capture_file`
#![no_main]

#[path = "../src/dump_capture_file.rs"]
mod dump_capture_file;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dump_capture_file::check(data);
});
