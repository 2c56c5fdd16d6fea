//! `pgm-dump` on a capture holding a UDP GSO super-packet (what a capture on a host sending EPGM
//! with `UDP_SEGMENT` shows: one UDP datagram, several PGM packets back to back): each PGM packet
//! is printed on its own, with its checksum checked; a payload that does not split exactly into
//! complete PGM packets stays one MALFORMED packet. Pcap files only: nothing is sent.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use pcap_file::DataLink;
use pgm::wire::{Body, Data, Gsi, Options, PacketRepr, SeqNo};
use serde_json::{json, Value};
use tools::{dump, frames};

const PGM_DUMP: &str = env!("CARGO_BIN_EXE_pgm-dump");
const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const GRP: Ipv4Addr = Ipv4Addr::new(239, 192, 1, 1);
const UDP_PORT: u16 = 7500;

/// An ODATA of `sqn` with a `len`-byte TSDU, encoded by our emitter (checksum filled in).
fn odata(sqn: u32, len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..len).map(|i| (i as u8) ^ (sqn as u8)).collect();
    PacketRepr {
        sport: 4000,
        dport: UDP_PORT,
        gsi: Gsi([0xde, 0xad, 0xbe, 0xef, 0, 1]),
        parity: false,
        var_pktlen: false,
        body: Body::Odata(Data {
            sqn: SeqNo(sqn),
            trail: SeqNo(1),
        }),
        options: Options::default(),
        payload: &payload,
    }
    .to_vec()
}

/// An Ethernet frame: one UDP datagram to the EPGM port carrying `payload`.
fn udp_frame(payload: &[u8]) -> Vec<u8> {
    frames::ethernet(
        dump::decode::ETHERTYPE_IPV4,
        &frames::udp4(SRC, GRP, 40000, UDP_PORT, payload),
    )
}

/// Writes `frames` as an Ethernet pcap in the temp directory.
fn write_pcap(name: &str, frames: &[Vec<u8>]) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("pgm-dump-gso-{}-{name}.pcap", std::process::id()));
    let timed: Vec<(Duration, Vec<u8>)> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| (Duration::from_millis(1000 + i as u64), f.clone()))
        .collect();
    dump::pcap::write_pcap(
        std::fs::File::create(&path).unwrap(),
        DataLink::ETHERNET,
        &timed,
    )
    .unwrap();
    path
}

/// Runs the `pgm-dump` binary on `pcap`: its stdout lines.
fn run_binary(pcap: &Path, json: bool) -> Vec<String> {
    let port = UDP_PORT.to_string();
    let mut args = vec!["--pcap", pcap.to_str().unwrap(), "--udp-port", &port];
    if json {
        args.push("--json");
    }
    let out = Command::new(PGM_DUMP).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "pgm-dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The library dump of `pcap` as JSON lines, and its summary.
fn dump_json(pcap: &Path) -> (dump::Summary, Vec<Value>) {
    let mut out = Vec::new();
    let s = dump::dump(pcap, &[UDP_PORT], true, None, &mut out).unwrap();
    let lines = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (s, lines)
}

#[test]
fn gso_datagram_of_three_odata_then_a_normal_packet_prints_four_packets() {
    // Two of one size, the last shorter, as the kernel's GSO cuts a run; then a plain datagram.
    let gso = [odata(100, 300), odata(101, 300), odata(102, 120)];
    assert_eq!(gso[0].len(), gso[1].len());
    assert!(gso[2].len() < gso[0].len());
    let path = write_pcap(
        "split",
        &[udp_frame(&gso.concat()), udp_frame(&odata(103, 50))],
    );

    let (s, lines) = dump_json(&path);
    assert_eq!((s.frames, s.pgm, s.malformed), (2, 4, 0), "{lines:?}");
    assert_eq!(lines.len(), 4);
    for (i, j) in lines.iter().enumerate() {
        assert_eq!(j["type"], "ODATA", "{j}");
        assert_eq!(j["sqn"], 100 + i, "{j}");
        assert_eq!(j["checksum_ok"], true, "{j}");
        assert_eq!(j["encap"], "udp", "{j}");
    }
    let frames: Vec<&Value> = lines.iter().map(|j| &j["frame"]).collect();
    assert_eq!(frames, [&json!(1), &json!(1), &json!(1), &json!(2)]);
    let tsdu: Vec<&Value> = lines.iter().map(|j| &j["tsdu_len"]).collect();
    assert_eq!(tsdu, [&json!(300), &json!(300), &json!(120), &json!(50)]);
    for (i, j) in lines[..3].iter().enumerate() {
        assert_eq!(j["gso"], json!({"index": i + 1, "of": 3}), "{j}");
    }
    assert!(lines[3].get("gso").is_none(), "{}", lines[3]);

    // The binary prints the same, as JSON and as text.
    let bin: Vec<Value> = run_binary(&path, true)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(bin, lines);
    let text = run_binary(&path, false);
    assert_eq!(text.len(), 4, "{text:?}");
    for (i, l) in text.iter().enumerate() {
        assert!(
            l.contains("10.0.0.1.40000 > 239.192.1.1.7500 UDP PGM ODATA"),
            "{l}"
        );
        assert!(!l.contains("MALFORMED") && !l.contains("cksum"), "{l}");
        if i < 3 {
            assert!(l.ends_with(&format!("[gso {}/3]", i + 1)), "{l}");
        } else {
            assert!(!l.contains("gso"), "{l}");
        }
    }
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn gso_datagram_with_trailing_garbage_is_malformed() {
    let mut payload = [odata(100, 300), odata(101, 300), odata(102, 120)].concat();
    payload.extend_from_slice(b"\xde\xad\xbe\xef garbage after the last PGM packet");
    let path = write_pcap(
        "garbage",
        &[udp_frame(&payload), udp_frame(&odata(103, 50))],
    );

    let (s, lines) = dump_json(&path);
    assert_eq!((s.frames, s.pgm, s.malformed), (2, 2, 1), "{lines:?}");
    assert_eq!(lines[0]["type"], "MALFORMED", "{}", lines[0]);
    assert!(
        lines[0]["reason"].as_str().unwrap().contains("TSDU length"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[0]["len"], payload.len());
    assert!(lines[0].get("gso").is_none());
    assert_eq!(lines[1]["type"], "ODATA");
    assert_eq!(lines[1]["sqn"], 103);

    let text = run_binary(&path, false);
    assert_eq!(text.len(), 2, "{text:?}");
    assert!(
        text[0].contains("UDP PGM MALFORMED: TSDU length"),
        "{}",
        text[0]
    );
    assert!(!text[0].contains("gso"), "{}", text[0]);
    std::fs::remove_file(&path).unwrap();
}
