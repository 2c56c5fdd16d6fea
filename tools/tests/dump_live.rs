//! `pgm-dump --iface lo`: live capture in the root namespace while this test sends crafted PGM
//! packets in UDP to 127.0.0.1 (and ::1) on a port picked by the OS, checked line by line (JSON
//! and text) against what the pcap path prints for the same packets. Needs root or
//! CAP_NET_RAW: without it the capture tests print a loud SKIPPED and pass. Every capture is
//! bounded by `--duration` and by a kill after [`LIMIT`].

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]
#![allow(
    clippy::disallowed_methods,
    reason = "the test drives a real capture: it reads the clock to bound it"
)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{Ipv4Addr, Ipv6Addr, UdpSocket},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use pcap_file::DataLink;
use pgm::wire::{Body, Data, Gsi, Nak, NakList, Options, PacketRepr, SeqNo, Spm};
use serde_json::Value;
use tools::{dump, frames};

const PGM_DUMP: &str = env!("CARGO_BIN_EXE_pgm-dump");
/// The most any capture here may take before it is killed.
const LIMIT: Duration = Duration::from_secs(30);
const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// True if this process may open packet sockets (CAP_NET_RAW in the effective set).
fn can_capture() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 13) != 0)
}

/// Says so loudly, straight to the process's stderr so that libtest's capture does not hide it.
fn skip(test: &str) {
    let stars = "*".repeat(78);
    let msg = format!(
        "\n{stars}\n*** SKIPPED: {test} needs root (or CAP_NET_RAW) to capture on lo\n{stars}\n\n"
    );
    // Under CI (which runs as root) a skip would hide a broken set-up: fail instead.
    assert!(
        std::env::var_os("CI").is_none_or(|v| v.is_empty()),
        "CI is set: {msg}"
    );
    let _ = std::io::stderr().write_all(msg.as_bytes());
}

fn pgm(body: Body, options: &Options, payload: &[u8], sport: u16, dport: u16) -> Vec<u8> {
    PacketRepr {
        sport,
        dport,
        gsi: Gsi([0xde, 0xad, 0xbe, 0xef, 0, 1]),
        parity: false,
        var_pktlen: false,
        body,
        options: *options,
        payload,
    }
    .to_vec()
}

/// An SPM, an ODATA, a NAK with a list and a truncated ODATA (malformed).
fn packets() -> Vec<Vec<u8>> {
    let spm = pgm(
        Body::Spm(Spm {
            spm_sqn: SeqNo(41),
            trail: SeqNo(10),
            lead: SeqNo(12),
            path: LO.into(),
        }),
        &Options::default(),
        &[],
        4000,
        7500,
    );
    let odata = pgm(
        Body::Odata(Data {
            sqn: SeqNo(12),
            trail: SeqNo(10),
        }),
        &Options::default(),
        b"hello, live capture",
        4000,
        7500,
    );
    let nak = pgm(
        Body::Nak(Nak {
            sqn: SeqNo(11),
            src_nla: LO.into(),
            grp_nla: LO.into(),
        }),
        &Options {
            nak_list: Some(NakList::from_slice(&[SeqNo(13), SeqNo(15)])),
            ..Options::default()
        },
        &[],
        7500,
        4000,
    );
    let mut truncated = odata.clone();
    truncated.truncate(20);
    vec![spm, odata, nak, truncated]
}

/// A `pgm-dump` child; its stderr is collected in a thread and "listening" reported.
struct Capture {
    child: Child,
    ready: mpsc::Receiver<()>,
    stderr: thread::JoinHandle<String>,
}

impl Capture {
    fn start(args: &[String]) -> Capture {
        let mut child = Command::new(PGM_DUMP)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, ready) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(err).lines() {
                let line = line.unwrap_or_default();
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        Capture {
            child,
            ready,
            stderr,
        }
    }

    /// Waits for the socket to be open; panics (after killing the child) if it never is.
    fn wait_ready(&mut self) {
        if self.ready.recv_timeout(LIMIT).is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!("pgm-dump never started listening");
        }
    }

    /// Waits for the child to exit (killing it after [`LIMIT`]): (success, stdout, stderr).
    fn finish(mut self) -> (bool, String, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > LIMIT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("pgm-dump ran past {LIMIT:?}");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let err = self.stderr.join().unwrap();
        (status.success(), out, err)
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

/// What the pcap path prints for `pgm` sent from `sport` to `dport` on 127.0.0.1 (the same
/// decode function, fed a frame built as `lo` frames it).
fn pcap_json(pgm: &[u8], sport: u16, dport: u16) -> Value {
    let ip = frames::udp4(LO, LO, sport, dport, pgm);
    let frame = frames::ethernet(dump::decode::ETHERTYPE_IPV4, &ip);
    let recs = dump::decode_frame(DataLink::ETHERNET, 1, 0.0, &frame, &[dport]);
    assert_eq!(recs.len(), 1, "{recs:?}");
    recs[0].to_json()
}

#[test]
fn live_capture_on_lo_prints_the_packets_sent() {
    if !can_capture() {
        skip("live_capture_on_lo_prints_the_packets_sent");
        return;
    }
    // The receiving socket picks the port (and keeps the kernel from answering with ICMP).
    let sink = UdpSocket::bind((LO, 0)).unwrap();
    let port = sink.local_addr().unwrap().port();
    let other = UdpSocket::bind((LO, 0)).unwrap();
    let other_port = other.local_addr().unwrap().port();
    let sender = UdpSocket::bind((LO, 0)).unwrap();
    let sport = sender.local_addr().unwrap().port();
    let pkts = packets();
    let p = port.to_string();
    let o = other_port.to_string();
    let n = pkts.len().to_string();
    let mut cap = Capture::start(&args(&[
        "--iface",
        "lo",
        "--json",
        "--udp-port",
        &p,
        "--udp-port",
        &o,
        "--port",
        &p,
        "--group",
        "127.0.0.1",
        "--count",
        &n,
        "--duration",
        "20",
    ]));
    cap.wait_ready();
    for (i, pkt) in pkts.iter().enumerate() {
        // A PGM packet to the other port first: --port must leave it out.
        sender.send_to(&pkts[0], (LO, other_port)).unwrap();
        sender.send_to(pkt, (LO, port)).unwrap();
        if i == 1 {
            // The same datagram twice is printed twice (only lo's echo copy is dropped).
            sender.send_to(pkt, (LO, port)).unwrap();
        }
    }
    let (ok, out, err) = cap.finish();
    assert!(ok, "pgm-dump failed: {err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), pkts.len(), "{out}\n{err}");
    let expect = [&pkts[0], &pkts[1], &pkts[1], &pkts[2]];
    for (got, pkt) in lines.iter().zip(expect) {
        let mut want = pcap_json(pkt, sport, port);
        for key in ["time", "frame"] {
            want[key] = got[key].clone();
        }
        assert_eq!(got, &want);
        assert_eq!(got["src"], "127.0.0.1");
        assert_eq!(got["udp_dport"], port);
        assert!(got["time"].as_f64().unwrap() > 1.6e9, "{got}");
    }
    assert_eq!(lines[0]["type"], "SPM");
    assert_eq!(lines[0]["sqn"], 41);
    assert_eq!(lines[1]["type"], "ODATA");
    assert_eq!(lines[1]["tsdu_len"], 19);
    assert_eq!(lines[1]["checksum_ok"], true);
    assert_eq!(lines[3]["type"], "NAK");
    assert_eq!(lines[3]["nak_list"], serde_json::json!([13, 15]));
    assert!(
        err.contains(&format!("{} PGM packets printed", pkts.len())),
        "{err}"
    );
    drop((sink, other));
}

#[test]
fn live_capture_on_lo_decodes_ipv6() {
    if !can_capture() {
        skip("live_capture_on_lo_decodes_ipv6");
        return;
    }
    let lo6 = Ipv6Addr::LOCALHOST;
    let Ok(sink) = UdpSocket::bind((lo6, 0)) else {
        eprintln!("SKIPPED: live_capture_on_lo_decodes_ipv6: no ::1 on lo");
        return;
    };
    let port = sink.local_addr().unwrap().port();
    let sender = UdpSocket::bind((lo6, 0)).unwrap();
    let sport = sender.local_addr().unwrap().port();
    let pkts = packets();
    let p = port.to_string();
    let mut cap = Capture::start(&args(&[
        "--iface",
        "lo",
        "--json",
        "--udp-port",
        &p,
        "--group",
        "::1",
        "--count",
        "2",
        "--duration",
        "20",
    ]));
    cap.wait_ready();
    sender.send_to(&pkts[0], (lo6, port)).unwrap();
    sender.send_to(&pkts[1], (lo6, port)).unwrap();
    let (ok, out, err) = cap.finish();
    assert!(ok, "pgm-dump failed: {err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 2, "{out}\n{err}");
    for (got, pkt) in lines.iter().zip(&pkts) {
        // What the pcap path prints for the same datagram, as `lo` frames it.
        let ip = frames::udp6(lo6, lo6, &[], sport, port, pkt);
        let frame = frames::ethernet(dump::decode::ETHERTYPE_IPV6, &ip);
        let recs = dump::decode_frame(DataLink::ETHERNET, 1, 0.0, &frame, &[port]);
        let mut want = recs[0].to_json();
        for key in ["time", "frame"] {
            want[key] = got[key].clone();
        }
        assert_eq!(got, &want);
        assert_eq!(
            (got["src"].as_str(), got["dst"].as_str()),
            (Some("::1"), Some("::1"))
        );
    }
    assert_eq!(
        (lines[0]["type"].as_str(), lines[1]["type"].as_str()),
        (Some("SPM"), Some("ODATA"))
    );
    drop(sink);
}

#[test]
fn live_capture_text_and_malformed_then_duration_ends_it() {
    if !can_capture() {
        skip("live_capture_text_and_malformed_then_duration_ends_it");
        return;
    }
    let sink = UdpSocket::bind((LO, 0)).unwrap();
    let port = sink.local_addr().unwrap().port();
    let sender = UdpSocket::bind((LO, 0)).unwrap();
    let sport = sender.local_addr().unwrap().port();
    let pkts = packets();
    let p = port.to_string();
    // No --count: the capture runs until --duration.
    let mut cap = Capture::start(&args(&[
        "--iface",
        "lo",
        "--udp-port",
        &p,
        "--port",
        &p,
        "--duration",
        "2",
    ]));
    cap.wait_ready();
    let start = Instant::now();
    sender.send_to(&pkts[0], (LO, port)).unwrap();
    sender.send_to(&pkts[3], (LO, port)).unwrap();
    let (ok, out, err) = cap.finish();
    let took = start.elapsed();
    assert!(ok, "pgm-dump failed: {err}");
    assert!(took < Duration::from_secs(5), "--duration 2 took {took:?}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}\n{err}");
    let head = format!("127.0.0.1.{sport} > 127.0.0.1.{port} UDP PGM");
    assert!(lines[0].contains(&format!("{head} SPM")), "{}", lines[0]);
    assert!(
        lines[1].contains(&format!("{head} MALFORMED")),
        "{}",
        lines[1]
    );
    // The text is the pcap path's, timestamp aside.
    let ip = frames::udp4(LO, LO, sport, port, &pkts[0]);
    let rec = dump::decode_frame(
        DataLink::ETHERNET,
        1,
        0.0,
        &frames::ethernet(dump::decode::ETHERTYPE_IPV4, &ip),
        &[port],
    )
    .pop()
    .unwrap();
    let want = rec.to_text();
    let strip = |l: &str| l.split_once(' ').map(|(_, rest)| rest.to_owned()).unwrap();
    assert_eq!(strip(lines[0]), strip(&want));
    drop(sink);
}

#[test]
fn live_capture_errors_are_clear() {
    // No such interface: needs no privilege.
    let out = Command::new(PGM_DUMP)
        .args(["--iface", "pgm-nosuch0", "--duration", "1"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no interface pgm-nosuch0"), "{err}");
    assert!(err.contains("lo"), "{err}");

    // Not permitted: as an unprivileged user (only root can switch to one).
    if !can_capture() {
        skip("live_capture_errors_are_clear (not-permitted case)");
        return;
    }
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            PGM_DUMP,
            "--iface",
            "lo",
            "--duration",
            "1",
        ])
        .env("RUST_BACKTRACE", "0")
        .output();
    let Ok(out) = out else {
        eprintln!("setpriv not found: not-permitted case not checked");
        return;
    };
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("live capture needs root or CAP_NET_RAW"),
        "{err}"
    );
}
