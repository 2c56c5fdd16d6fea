//! `pgm-top` as a user runs it: `--once --json --read` on the OpenPGM capture fixture, the
//! help text, the errors, and `--once --json --iface lo` while this test sends crafted EPGM
//! packets to 127.0.0.1 (needs root or CAP_NET_RAW: without it that test prints a loud
//! SKIPPED and passes, unless `CI` is set, where it fails). Every run is bounded by a kill
//! after [`LIMIT`].

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]
#![allow(
    clippy::disallowed_methods,
    reason = "the test drives real processes: it reads the clock to bound them"
)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{Ipv4Addr, UdpSocket},
    path::PathBuf,
    process::{Command, Output, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use pgm::wire::{Body, Data, Gsi, Nak, NakList, Options, PacketRepr, SeqNo};
use serde_json::Value;

const PGM_TOP: &str = env!("CARGO_BIN_EXE_pgm-top");
/// The most any run here may take before it is killed.
const LIMIT: Duration = Duration::from_secs(30);
const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pgm/tests/fixtures/openpgm.pcap")
}

/// Runs `pgm-top args` to completion (killed after [`LIMIT`]), stdin closed.
fn run(args: &[&str]) -> Output {
    let mut child = Command::new(PGM_TOP)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("pgm-top {args:?} ran past {LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn once_json_reads_the_fixture() {
    let f = fixture();
    let out = run(&[
        "--once",
        "--json",
        "--read",
        f.to_str().unwrap(),
        "--udp-port",
        "7500",
        "--sort",
        "tsi",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["counters"]["frames"], 341, "{doc:#}");
    assert_eq!(doc["counters"]["malformed"], 0, "{doc:#}");
    let sessions = doc["sessions"].as_array().unwrap();
    // OpenPGM's sender ran once over raw PGM and once over UDP (two TSIs).
    assert_eq!(sessions.len(), 2, "{doc:#}");
    let tsis: Vec<&str> = sessions
        .iter()
        .map(|s| s["tsi"].as_str().unwrap())
        .collect();
    // In numeric (byte) order, not as strings.
    let key = |t: &&str| -> Vec<u32> { t.split('.').map(|n| n.parse().unwrap()).collect() };
    let mut sorted = tsis.clone();
    sorted.sort_by_key(key);
    assert_eq!(tsis, sorted, "--sort tsi");
    for s in sessions {
        assert_eq!(s["source"], "10.99.1.1", "{s}");
        assert_eq!(s["group"], "239.192.1.1", "{s}");
        assert_eq!(s["odata"], 120, "{s}");
        assert!(s["rdata"].as_u64().unwrap() >= 10, "{s}");
        assert!(s["naks"].as_u64().unwrap() >= 10, "{s}");
        assert_eq!(s["ncfs"], s["naks"], "{s}");
        assert_eq!(s["nakers"], 1, "{s}");
        assert_eq!(s["lost"], 0, "{s}");
    }
    // The text report of the same capture has a row per session.
    let out = run(&[
        "--once",
        "--read",
        f.to_str().unwrap(),
        "--udp-port",
        "7500",
    ]);
    assert!(out.status.success());
    let report = text(&out.stdout);
    assert!(report.starts_with("TSI"), "{report}");
    for t in tsis {
        assert!(report.contains(t), "{report}");
    }
}

#[test]
fn help_says_how_to_use_it() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for want in [
        "--iface",
        "--read",
        "--group",
        "--port",
        "--udp-port",
        "--interval",
        "--sort",
        "--once",
        "--json",
        "--max-sessions",
        "CAP_NET_RAW",
        "Ctrl-C) quits",
        "Examples:",
    ] {
        assert!(help.contains(want), "--help lacks {want}:\n{help}");
    }
}

#[test]
fn errors_are_clear() {
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("--iface IFACE") && err.contains("--read FILE"),
        "{err}"
    );

    let out = run(&["--once", "--read", "/nonexistent/capture.pcap"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("cannot read /nonexistent/capture.pcap"));

    let out = run(&["--once", "--iface", "pgm-no-such-if0"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("no interface pgm-no-such-if0") && err.contains("lo"),
        "{err}"
    );

    // The live view wants a terminal; stdout is a pipe here.
    let f = fixture();
    let out = run(&["--read", f.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--once"),
        "{}",
        text(&out.stderr)
    );

    if !can_capture() {
        let out = run(&["--once", "--iface", "lo"]);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(err.contains("root") && err.contains("CAP_NET_RAW"), "{err}");
    }
}

/// True if this process may open packet sockets (CAP_NET_RAW in the effective set).
fn can_capture() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 13) != 0)
}

/// Says so loudly on the process's stderr (past libtest's capture); fails instead under CI.
fn skip(test: &str, why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {why}, and CI is set: this test must run in CI"
    );
    let stars = "*".repeat(78);
    let msg = format!("\n{stars}\n*** SKIPPED: {test}: {why}\n{stars}\n\n");
    let _ = std::io::stderr().write_all(msg.as_bytes());
}

fn pgm(body: Body, options: &Options, payload: &[u8], sport: u16, dport: u16) -> Vec<u8> {
    PacketRepr {
        sport,
        dport,
        gsi: Gsi([0xde, 0xad, 0xbe, 0xef, 0, 7]),
        parity: false,
        var_pktlen: false,
        body,
        options: *options,
        payload,
    }
    .to_vec()
}

/// Sends session `sport` to 127.0.0.1:`port` over EPGM: ODATA 0..=49 of 100 bytes without 10
/// and 20; RDATA 10; two NAKs (one listing 20 too) from another socket, one receiver.
fn send_session(port: u16, sport: u16) {
    let sender = UdpSocket::bind((LO, 0)).unwrap();
    let naker = UdpSocket::bind((LO, 0)).unwrap();
    for sqn in (0..50u32).filter(|s| *s != 10 && *s != 20) {
        let body = Body::Odata(Data {
            sqn: SeqNo(sqn),
            trail: SeqNo(0),
        });
        let pkt = pgm(body, &Options::default(), &[0x42; 100], sport, port);
        sender.send_to(&pkt, (LO, port)).unwrap();
    }
    let nak = |sqn, list: &[SeqNo]| {
        let options = Options {
            nak_list: (!list.is_empty()).then(|| NakList::from_slice(list)),
            ..Options::default()
        };
        let body = Body::Nak(Nak {
            sqn: SeqNo(sqn),
            src_nla: LO.into(),
            grp_nla: LO.into(),
        });
        pgm(body, &options, &[], port, sport)
    };
    naker.send_to(&nak(10, &[SeqNo(20)]), (LO, port)).unwrap();
    naker.send_to(&nak(10, &[]), (LO, port)).unwrap();
    let body = Body::Rdata(Data {
        sqn: SeqNo(10),
        trail: SeqNo(0),
    });
    let rdata = pgm(body, &Options::default(), &[0x42; 100], sport, port);
    sender.send_to(&rdata, (LO, port)).unwrap();
}

#[test]
fn once_json_live_on_lo() {
    if !can_capture() {
        skip(
            "once_json_live_on_lo",
            "needs root or CAP_NET_RAW to capture on lo",
        );
        return;
    }
    // The sink picks the port (and keeps the kernel from answering with ICMP).
    let sink = UdpSocket::bind((LO, 0)).unwrap();
    let port = sink.local_addr().unwrap().port();
    let sport = 4321;
    let p = port.to_string();
    let mut child = Command::new(PGM_TOP)
        .args([
            "--once",
            "--json",
            "--iface",
            "lo",
            "--port",
            &p,
            "--interval",
            "3",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, ready) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    let stderr = thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains("capturing on lo") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    if ready.recv_timeout(LIMIT).is_err() {
        let _ = child.kill();
        panic!(
            "pgm-top never started capturing: {}",
            stderr.join().unwrap()
        );
    }
    send_session(port, sport);

    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("pgm-top ran past {LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let err = stderr.join().unwrap();
    assert!(status.success(), "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(doc["iface"], "lo");
    let sessions = doc["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{doc:#}");
    let s = &sessions[0];
    assert_eq!(s["tsi"], format!("222.173.190.239.0.7.{sport}"), "{s}");
    assert_eq!(s["encap"], "udp", "{s}");
    assert_eq!(s["source"], "127.0.0.1", "{s}");
    // Each packet once, although lo shows every frame twice.
    assert_eq!(s["odata"], 48, "{s}");
    assert_eq!(s["odata_bytes"], 4800, "{s}");
    assert_eq!(s["rdata"], 1, "{s}");
    assert_eq!(
        (&s["naks"], &s["nak_sqns"], &s["nakers"]),
        (&2.into(), &3.into(), &1.into()),
        "{s}"
    );
    assert_eq!(
        (&s["gaps"], &s["repaired"], &s["lost"]),
        (&2.into(), &1.into(), &1.into()),
        "{s}"
    );
    assert_eq!(s["lead_sqn"], 49, "{s}");
    assert!(doc["counters"]["malformed"] == 0, "{doc:#}");
}
