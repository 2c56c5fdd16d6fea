//! The invariants every input must satisfy, shared by the `parse_packet` fuzz target and the
//! corpus replay test (`pgm/tests/wire_fuzz_corpus.rs`, which includes this file by path), so CI
//! checks the corpus with exactly the fuzzer's assertions on stable Rust.
//!
//! For any bytes: `parse`, `parse_verified`, `Options::parse`, `checksum::verify` and `Display`
//! never panic; whatever `parse_verified` accepts, `parse` accepts identically; whatever `parse`
//! accepts re-emits to a packet that `parse_verified` accepts and that parses back to the same
//! value (options this crate does not know excepted: they are skipped, not re-emitted), and
//! emission is canonical (emitting that again gives the same bytes).

use pgm::wire::{checksum, options::UnknownOptions, Options, PacketRepr};

/// Runs every check on `data`; panics (a fuzz finding) when an invariant breaks.
pub(crate) fn check(data: &[u8]) {
    let _ = checksum::verify(data);
    let _ = checksum::compute(data);
    let parsed = PacketRepr::parse(data);
    let verified = PacketRepr::parse_verified(data);
    if let Ok(v) = &verified {
        assert_eq!(
            parsed.as_ref().ok(),
            Some(v),
            "parse_verified accepted what parse did not"
        );
    }
    if let Err(e) = &parsed {
        let _ = e.to_string();
    }
    if let Ok(p) = parsed {
        let _ = p.to_string();
        let _ = format!("{p:?}");
        let _ = p.tsi();
        let _ = p.options.names();
        let bytes = p.to_vec();
        assert_eq!(
            bytes.len(),
            p.buffer_len(),
            "buffer_len disagrees with emit"
        );
        let q = PacketRepr::parse_verified(&bytes)
            .unwrap_or_else(|e| panic!("re-emitted packet rejected: {e}\n{p:?}"));
        let mut expect = p;
        expect.options.unknown = UnknownOptions::default();
        assert_eq!(q, expect, "re-parse differs");
        assert_eq!(q.to_vec(), bytes, "emission is not canonical");
    }
    // The option walker on its own, from every plausible start (after the header and a body).
    for start in [16usize, 24, 28, 36, 40, 60] {
        if let Some(rest) = data.get(start..) {
            if let Ok((_, used)) = Options::parse(rest) {
                assert!(used <= rest.len(), "options claim more bytes than exist");
            }
        }
    }
}
