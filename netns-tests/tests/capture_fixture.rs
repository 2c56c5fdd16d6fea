//! Checks the OpenPGM reference capture `pgm/tests/fixtures/openpgm.pcap` (recorded with
//! `cargo run -p netns-tests --bin capture-openpgm`): small, and holding every packet type and
//! option the Rust implementation's decoder tests rely on, for raw PGM and UDP encapsulation.
//!
//! Needs tshark (not root); prints SKIPPED and passes without it.

use std::path::Path;

use netns_tests::deps::{require, Need};
use netns_tests::tshark::pgm_type_counts;

#[test]
fn openpgm_fixture_has_all_packet_types() {
    let pcap = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pgm/tests/fixtures/openpgm.pcap");
    let size = std::fs::metadata(&pcap)
        .expect("the fixture pgm/tests/fixtures/openpgm.pcap exists")
        .len();
    assert!(
        size < 300 * 1024,
        "fixture is {size} bytes, should stay below 300 KB"
    );
    if !require("openpgm_fixture_has_all_packet_types", &[Need::Tshark]) {
        return;
    }
    let counts = pgm_type_counts(&pcap, 7500).expect("tshark summary");
    eprintln!("{counts:#?}");
    for key in [
        "SPM (raw)",
        "SPM (udp)",
        "ODATA (raw)",
        "ODATA (udp)",
        "RDATA (raw)",
        "RDATA (udp)",
        "NAK (raw)",
        "NAK (udp)",
        "NCF (raw)",
        "NCF (udp)",
        "SPMR (raw)",
        "SPMR (udp)",
        "ODATA+OPT_FRAGMENT",
        "NAK+OPT_NAK_LIST",
        "NCF+OPT_NAK_LIST",
        "SPM+OPT_FIN (raw)",
        "SPM+OPT_FIN (udp)",
    ] {
        assert!(
            counts.get(key).copied().unwrap_or(0) > 0,
            "no {key} in the fixture: {counts:#?}"
        );
    }
}

/// The capture check of the end-to-end tests (`tshark::check_capture`) passes OpenPGM's own
/// packets: good checksums, nothing malformed, SPMRs recognised although tshark 4.0 does not
/// dissect them.
#[test]
fn openpgm_fixture_passes_the_capture_check() {
    if !require("openpgm_fixture_passes_the_capture_check", &[Need::Tshark]) {
        return;
    }
    let pcap = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pgm/tests/fixtures/openpgm.pcap");
    let rep = netns_tests::tshark::check_capture(&pcap, 7500).expect("tshark");
    eprintln!("{}", rep.describe());
    assert!(rep.is_clean(), "{}", rep.describe());
    assert!(rep.dissected > 100, "{}", rep.describe());
    assert!(rep.spmr_undissected > 0, "{}", rep.describe());
}
