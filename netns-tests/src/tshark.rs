//! PGM packet-type summaries of pcap files, using tshark's PGM dissector.
//!
//! tshark 4.0 does not dissect packets of exactly 16 bytes (a bare PGM header, i.e. SPMR), so
//! packets to/from the PGM port that tshark leaves undissected are classified from their first
//! bytes (the type is byte 4 of the PGM header).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Name of a PGM packet type byte.
pub fn type_name(ty: u8) -> String {
    match ty {
        0x00 => "SPM".into(),
        0x01 => "POLL".into(),
        0x02 => "POLR".into(),
        0x04 => "ODATA".into(),
        0x05 => "RDATA".into(),
        0x08 => "NAK".into(),
        0x09 => "NNAK".into(),
        0x0a => "NCF".into(),
        0x0c => "SPMR".into(),
        0x0d => "ACK".into(),
        other => format!("type 0x{other:02x}"),
    }
}

fn tshark(
    pcap: &Path,
    port: u16,
    filter: &str,
    fields: &[&str],
) -> Result<Vec<Vec<String>>, String> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(pcap).args([
        "-d",
        &format!("udp.port=={port},pgm"),
        "-Y",
        filter,
        "-T",
        "fields",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().map_err(|e| format!("running tshark: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "tshark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect())
}

fn parse_hex_u8(s: &str) -> Option<u8> {
    u8::from_str_radix(s.trim_start_matches("0x"), 16).ok()
}

/// Counts PGM packets in `pcap` (raw IP protocol 113, and UDP on `port`) by type, with keys
/// such as `"ODATA"`, `"ODATA (udp)"`, `"ODATA+OPT_FRAGMENT"`, `"NAK+OPT_NAK_LIST"`,
/// `"SPM+OPT_FIN"` and `"SPMR"`.
pub fn pgm_type_counts(pcap: &Path, port: u16) -> Result<BTreeMap<String, usize>, String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut add = |key: String| *counts.entry(key).or_insert(0) += 1;

    let dissected = tshark(
        pcap,
        port,
        "pgm",
        &[
            "pgm.hdr.type",
            "udp.dstport",
            "pgm.opts.fragment.first_sqn",
            "pgm.opts.nak.list",
        ],
    )?;
    for f in dissected {
        let get = |i: usize| f.get(i).map_or("", String::as_str);
        let Some(ty) = parse_hex_u8(get(0)) else {
            continue;
        };
        let name = type_name(ty);
        let encap = if get(1).is_empty() { "raw" } else { "udp" };
        add(name.clone());
        add(format!("{name} ({encap})"));
        if !get(2).is_empty() {
            add(format!("{name}+OPT_FRAGMENT"));
        }
        if !get(3).is_empty() {
            add(format!("{name}+OPT_NAK_LIST"));
        }
    }

    // OPT_LENGTH (00 04 0008) followed by OPT_FIN|OPT_END (8e 04 ..), as OpenPGM sends it.
    let fins = tshark(
        pcap,
        port,
        "pgm.hdr.type == 0x00 && frame contains 00:04:00:08:8e:04",
        &["udp.dstport"],
    )?;
    for f in fins {
        let encap = if f.first().is_some_and(|s| !s.is_empty()) {
            "udp"
        } else {
            "raw"
        };
        add("SPM+OPT_FIN".into());
        add(format!("SPM+OPT_FIN ({encap})"));
    }

    let raw_filter = format!("!pgm && (ip.proto == 113 || udp.port == {port})");
    for f in tshark(pcap, port, &raw_filter, &["data.data", "udp.dstport"])? {
        let hex = f.first().map_or("", String::as_str);
        let Some(ty) = hex.get(8..10).and_then(parse_hex_u8) else {
            continue;
        };
        let name = type_name(ty);
        let encap = if f.get(1).is_some_and(|s| !s.is_empty()) {
            "udp"
        } else {
            "raw"
        };
        add(name.clone());
        add(format!("{name} ({encap})"));
        add(format!("{name} [not dissected by tshark]"));
    }
    Ok(counts)
}
