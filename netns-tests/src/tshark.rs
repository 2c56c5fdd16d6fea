//! PGM packet-type summaries of pcap files, using tshark's PGM dissector.
//!
//! tshark 4.0 does not dissect packets of exactly 16 bytes (a bare PGM header, i.e. SPMR), so
//! packets to/from the PGM port that tshark leaves undissected are classified from their first
//! bytes (the type is byte 4 of the PGM header).

use std::collections::BTreeMap;
use std::fmt::Write as _;
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

/// The verdict of [`check_capture`] on one pcap.
#[derive(Debug, Default, Clone)]
pub struct CaptureReport {
    /// PGM packets dissected by tshark (ICMP quotes excluded).
    pub dissected: usize,
    /// Header-only packets tshark 4.0 leaves undissected (SPMRs), not counted as problems.
    pub spmr_undissected: usize,
    /// Packets by type as in [`pgm_type_counts`] (dissected ones only).
    pub types: BTreeMap<String, usize>,
    /// Frames whose PGM checksum tshark found bad (or could not verify).
    pub bad_checksum: Vec<String>,
    /// Frames tshark marked malformed.
    pub malformed: Vec<String>,
    /// Frames with expert info of severity warning or error.
    pub expert: Vec<String>,
    /// PGM-port/protocol frames tshark did not dissect as PGM (other than SPMRs).
    pub undissected: Vec<String>,
    /// ICMP errors quoting PGM (e.g. port unreachable), excluded from the checks above.
    pub icmp: usize,
}

impl CaptureReport {
    /// True when no packet had a bad checksum, was malformed, carried warning/error expert
    /// info or was left undissected (SPMRs excepted).
    pub fn is_clean(&self) -> bool {
        self.bad_checksum.is_empty()
            && self.malformed.is_empty()
            && self.expert.is_empty()
            && self.undissected.is_empty()
    }

    /// A multi-line summary listing up to 10 frames of each problem.
    pub fn describe(&self) -> String {
        let list = |v: &[String]| {
            let mut s = v
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n      ");
            if v.len() > 10 {
                let _ = write!(s, "\n      … {} more", v.len() - 10);
            }
            s
        };
        format!(
            "{} PGM packets dissected, {} undissected SPMRs, {} ICMP quotes; types {:?}\n  \
             bad checksum: {}\n      {}\n  malformed: {}\n      {}\n  expert warn/error: {}\n      {}\n  \
             undissected: {}\n      {}",
            self.dissected,
            self.spmr_undissected,
            self.icmp,
            self.types,
            self.bad_checksum.len(),
            list(&self.bad_checksum),
            self.malformed.len(),
            list(&self.malformed),
            self.expert.len(),
            list(&self.expert),
            self.undissected.len(),
            list(&self.undissected),
        )
    }
}

/// Expert severity values (`_ws.expert.severity`): warning and error.
const PI_WARN: u64 = 0x0060_0000;

fn severity_value(s: &str) -> u64 {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).unwrap_or(0);
    }
    if let Ok(v) = s.parse() {
        return v;
    }
    match s.to_ascii_lowercase().as_str() {
        "error" => 0x0080_0000,
        "warning" | "warn" => PI_WARN,
        _ => 0,
    }
}

/// Checks every PGM packet of `pcap` (raw IP protocol 113, and UDP `port` dissected as PGM):
/// the PGM checksum must verify (`pgm.hdr.cksum.status` Good, no `pgm.bad_checksum`), nothing
/// may be malformed or carry expert info of severity warning/error, and every packet must be
/// dissected as PGM, except header-only SPMRs (tshark 4.0 does not dissect them).
pub fn check_capture(pcap: &Path, port: u16) -> Result<CaptureReport, String> {
    let mut rep = CaptureReport {
        types: pgm_type_counts(pcap, port)?
            .into_iter()
            .filter(|(k, _)| !k.contains("not dissected"))
            .collect(),
        ..CaptureReport::default()
    };
    let rows = tshark(
        pcap,
        port,
        "pgm && !icmp",
        &[
            "frame.number",
            "pgm.hdr.type",
            "pgm.hdr.cksum.status",
            "pgm.bad_checksum",
            "_ws.malformed",
            "_ws.expert.severity",
            "_ws.expert.message",
        ],
    )?;
    for f in rows {
        let get = |i: usize| f.get(i).map_or("", String::as_str);
        rep.dissected += 1;
        let frame = get(0);
        let ty = parse_hex_u8(get(1)).map_or_else(|| get(1).to_owned(), type_name);
        // The PGM dissector of tshark 4.0 adds the checksum byte under the status field name
        // too; the real status (1 = good) is the last value.
        let status = get(2).rsplit(',').next().unwrap_or("");
        if status.trim() != "1" || !get(3).is_empty() {
            rep.bad_checksum
                .push(format!("frame {frame} {ty}: checksum status {:?}", get(2)));
        }
        if !get(4).is_empty() {
            rep.malformed
                .push(format!("frame {frame} {ty}: malformed ({})", get(6)));
        }
        let severities: Vec<u64> = get(5)
            .split(',')
            .filter(|s| !s.is_empty())
            .map(severity_value)
            .collect();
        if severities.iter().any(|&s| s >= PI_WARN) {
            rep.expert
                .push(format!("frame {frame} {ty}: {} [{}]", get(6), get(5)));
        }
    }
    rep.icmp = tshark(
        pcap,
        port,
        &format!("icmp && (ip.proto == 113 || udp.port == {port})"),
        &["frame.number"],
    )?
    .len();
    let raw_filter = format!("!pgm && !icmp && (ip.proto == 113 || udp.port == {port})");
    for f in tshark(
        pcap,
        port,
        &raw_filter,
        &["frame.number", "data.data", "data.len"],
    )? {
        let hex = f.get(1).map_or("", String::as_str);
        let is_spmr = hex.len() == 32 && hex.get(8..10).and_then(parse_hex_u8) == Some(0x0c);
        if is_spmr {
            rep.spmr_undissected += 1;
        } else {
            rep.undissected.push(format!(
                "frame {}: {} bytes not dissected as PGM: {}",
                f.first().map_or("", String::as_str),
                f.get(2).map_or("", String::as_str),
                hex.get(..64).unwrap_or(hex)
            ));
        }
    }
    Ok(rep)
}

/// tshark checks of a run's capture `c` of PGM on `port` (stopped here; deleted when `run_ok`
/// and everything passed): nothing malformed or warned about, ODATA present, and RDATA too
/// when the run was `lossy`.
pub fn capture_problems(
    c: &mut crate::lan::Capture,
    name: &str,
    port: u16,
    lossy: bool,
    run_ok: bool,
) -> Vec<String> {
    checked_capture(c, name, port, lossy, run_ok, false)
}

/// [`capture_problems`], and `pgm-dump --json` must see the same packets as tshark: as many
/// of each type, every checksum good, nothing malformed or unsupported.
pub fn capture_and_dump_problems(
    c: &mut crate::lan::Capture,
    name: &str,
    port: u16,
    lossy: bool,
    run_ok: bool,
) -> Vec<String> {
    checked_capture(c, name, port, lossy, run_ok, true)
}

fn checked_capture(
    c: &mut crate::lan::Capture,
    name: &str,
    port: u16,
    lossy: bool,
    run_ok: bool,
    dump: bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    let stats = c.stop().unwrap_or_else(|e| e.to_string());
    match check_capture(c.path(), port) {
        Ok(rep) => {
            eprintln!(
                "{name}: capture {}: {}\n  {stats}",
                c.path().display(),
                rep.describe()
            );
            if !rep.is_clean() {
                problems.push(format!(
                    "capture {}: {}",
                    c.path().display(),
                    rep.describe()
                ));
            }
            if rep.types.get("ODATA").copied().unwrap_or(0) == 0 {
                problems.push("capture holds no ODATA".to_owned());
            }
            if lossy && rep.types.get("RDATA").copied().unwrap_or(0) == 0 {
                problems.push("capture holds no RDATA".to_owned());
            }
            if dump {
                problems.extend(dump_problems(c.path(), port, &rep.types));
            }
        }
        Err(e) => problems.push(format!("tshark: {e}")),
    }
    if run_ok && problems.is_empty() {
        let _ = std::fs::remove_file(c.path());
    }
    problems
}

/// Where `pgm-dump --json` disagrees with tshark's type counts `types` on `pcap`.
fn dump_problems(pcap: &Path, port: u16, types: &BTreeMap<String, usize>) -> Vec<String> {
    let out = crate::tools::tools_dir().and_then(|d| {
        Command::new(d.join("pgm-dump"))
            .arg("--pcap")
            .arg(pcap)
            .args(["--udp-port", &port.to_string(), "--json"])
            .output()
    });
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            return vec![format!(
                "pgm-dump failed: {}",
                String::from_utf8_lossy(&o.stderr)
            )]
        }
        Err(e) => return vec![format!("running pgm-dump: {e}")],
    };
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            problems.push(format!("pgm-dump printed a line that is not JSON: {line}"));
            continue;
        };
        let ty = v["type"].as_str().unwrap_or("?").to_owned();
        if matches!(ty.as_str(), "MALFORMED" | "UNSUPPORTED") || v["checksum_ok"] == false {
            problems.push(format!("pgm-dump: {line}"));
        }
        *counts.entry(ty).or_insert(0) += 1;
    }
    // tshark's plain type names (its map also has "ODATA (raw)", "NAK+OPT_NAK_LIST", ...).
    let plain: BTreeMap<String, usize> = types
        .iter()
        .filter(|(k, _)| !k.contains(['+', '(', ' ']))
        .map(|(k, &n)| (k.clone(), n))
        .collect();
    if counts != plain {
        problems.push(format!("pgm-dump counted {counts:?}, tshark {plain:?}"));
    }
    problems
}

/// Parity packets (OPT_PARITY in the header's options) in a capture, by type, and whether each
/// passed the checksum: `("NCF", true) => 12`, `("RDATA", false) => 9`, ...
pub fn parity_counts(pcap: &Path, port: u16) -> Result<BTreeMap<(String, bool), usize>, String> {
    let mut counts = BTreeMap::new();
    for f in tshark(
        pcap,
        port,
        "pgm && pgm.hdr.opts.parity == 1",
        &["pgm.hdr.type", "pgm.hdr.cksum.status"],
    )? {
        let get = |i: usize| f.get(i).map_or("", String::as_str);
        let ty = parse_hex_u8(get(0)).map_or_else(|| get(0).to_owned(), type_name);
        let good = get(1).rsplit(',').next().unwrap_or("").trim() == "1";
        *counts.entry((ty, good)).or_insert(0) += 1;
    }
    Ok(counts)
}
