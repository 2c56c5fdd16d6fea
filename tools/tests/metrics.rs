//! `--metrics` on the loopback: scrapes during a lossy transfer (counters never go down, one
//! series per sender TSI), a final scrape that agrees with the tools' JSON summaries, and HTTP
//! clients that stall, trickle or send garbage without stopping scrapes or the transfer.
//!
//! "Final" is made testable by `--metrics-linger`: a tool keeps serving for that long after it
//! printed its summary, with `pgm_app_finished 1` once every number is final (the socket is
//! closed by then, so its counters cannot move). The test reads the summary from stdout while
//! the tool lingers, then scrapes until it sees `pgm_app_finished 1` and compares.
//!
//! Loss comes from `--simulated-loss` (received packets dropped at random before the engine):
//! no root or nftables needed. Every endpoint is `epgm://127.0.0.1;239.192.x.y:PORT`; every
//! process is killed when its guard drops; every wait is bounded.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    process::Command,
    sync::mpsc::Receiver,
    thread,
    time::Duration,
};

use common::{endpoint, fails, Proc};
use pgm::socket::Clock;

const SEND: &str = env!("CARGO_BIN_EXE_pgm-send");
const RECV: &str = env!("CARGO_BIN_EXE_pgm-recv");
const PUB: &str = env!("CARGO_BIN_EXE_pgm-pub");
const SUB: &str = env!("CARGO_BIN_EXE_pgm-sub");

/// One scrape: series (name with labels) → value.
type Scrape = HashMap<String, f64>;

/// `GET path` on `addr`: status and body (bounded by timeouts).
fn http(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {out:?}"));
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

fn scrape(addr: SocketAddr) -> Scrape {
    let (status, body) = http(addr, "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(status, 200, "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, v) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), v.parse().unwrap())
        })
        .collect()
}

/// The value of the one series named `name` (any labels), a whole number; panics unless
/// there is exactly one.
fn value(s: &Scrape, name: &str) -> u64 {
    let hits: Vec<f64> = series(s, name).into_iter().map(|(_, v)| v).collect();
    assert_eq!(hits.len(), 1, "one series {name}: {hits:?}");
    let v = hits[0];
    assert!(v >= 0.0 && v.fract() == 0.0, "{name} = {v} is not a count");
    #[expect(clippy::cast_sign_loss, reason = "checked non-negative")]
    let n = v as u64;
    n
}

/// Every series named `name`, with its labels.
fn series(s: &Scrape, name: &str) -> Vec<(String, f64)> {
    s.iter()
        .filter(|(k, _)| k.split('{').next() == Some(name))
        .map(|(k, &v)| (k.clone(), v))
        .collect()
}

/// The address a tool printed for `--metrics :0`.
fn metrics_addr(p: &mut Proc) -> SocketAddr {
    let line = p.wait_for_stderr("metrics on http://");
    let rest = line.split("http://").nth(1).unwrap();
    rest.trim_end_matches("/metrics").parse().unwrap()
}

/// Scrapes until `pgm_app_finished` is 1 (bounded), and returns that scrape.
fn final_scrape(addr: SocketAddr) -> Scrape {
    let clock = Clock::new();
    loop {
        let s = scrape(addr);
        if value(&s, "pgm_app_finished") == 1 {
            return s;
        }
        assert!(clock.elapsed() < Duration::from_secs(20), "never finished");
        thread::sleep(Duration::from_millis(50));
    }
}

/// The JSON summary line a tool prints on stdout (bounded wait).
fn summary(lines: &Receiver<String>) -> serde_json::Value {
    let line = lines
        .recv_timeout(common::STEP_LIMIT)
        .expect("a JSON summary line");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// Counters (`*_total`) of `later` are at least those of `earlier`, series by series.
fn assert_counters_grow(earlier: &Scrape, later: &Scrape) {
    for (k, &v) in earlier {
        if k.split('{').next().is_some_and(|n| n.ends_with("_total")) {
            if let Some(&w) = later.get(k) {
                assert!(w >= v, "{k} went down: {v} → {w}");
            }
        }
    }
}

fn num(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// `pgm-recv --verify --count count` with 5 % simulated loss and metrics (`extra` first),
/// listening; its metrics address and stdout lines.
fn lossy_receiver(ep: &str, count: u64, extra: &[&str]) -> (Proc, SocketAddr, Receiver<String>) {
    let count = count.to_string();
    let mut args = extra.to_vec();
    args.extend([
        "--verify",
        "--count",
        &count,
        "--timeout",
        "20",
        "--simulated-loss",
        "5",
        "--metrics",
        ":0",
        "--metrics-linger",
        "30",
        ep,
    ]);
    let mut recv = Proc::spawn("pgm-recv", Command::new(RECV).args(&args));
    let addr = metrics_addr(&mut recv);
    recv.wait_for_stderr("listening on");
    let lines = recv.stdout_lines();
    (recv, addr, lines)
}

/// `pgm-send --count count --size 200 --rate rate` with metrics (`extra` first); its metrics
/// address.
fn metered_sender(ep: &str, count: u64, rate: &str, extra: &[&str]) -> (Proc, SocketAddr) {
    let count = count.to_string();
    let mut args = extra.to_vec();
    args.extend([
        "--count",
        &count,
        "--size",
        "200",
        "--rate",
        rate,
        "--linger",
        "1",
        "--metrics",
        "127.0.0.1:0",
        "--metrics-linger",
        "30",
        ep,
    ]);
    let mut send = Proc::spawn("pgm-send", Command::new(SEND).args(&args));
    let addr = metrics_addr(&mut send);
    (send, addr)
}

#[test]
fn lossy_transfer_scrapes_agree_with_the_summaries() {
    const COUNT: u64 = 30_000;
    let ep = endpoint();
    let (recv, raddr, rlines) = lossy_receiver(&ep, COUNT, &[]);
    let (mut send, saddr) = metered_sender(&ep, COUNT, "30M", &[]);
    let slines = send.stdout_lines();
    let (r_prev, s_prev) = scrape_during_run(raddr, saddr);

    // The end: the summaries, then the final scrapes, which must agree with them.
    let rj = summary(&rlines);
    let sj = summary(&slines);
    let r = final_scrape(raddr);
    let s = final_scrape(saddr);
    assert_counters_grow(&r_prev, &r);
    assert_counters_grow(&s_prev, &s);
    check_receiver(&r, &rj, COUNT);
    check_sender(&s, &sj, COUNT);
    // The labels every series carries.
    let any = r.keys().next().unwrap();
    assert!(any.contains("role=\"receiver\"") && any.contains(&format!("endpoint=\"{ep}\"")));
    assert!(s.keys().all(|k| k.contains("role=\"sender\"")));
    drop((recv, send));
}

/// Scrapes both tools every 100 ms until the receiver is done: counters only grow, and the
/// receiver shows its sender's series. Returns the last scrapes.
fn scrape_during_run(raddr: SocketAddr, saddr: SocketAddr) -> (Scrape, Scrape) {
    let (mut r_prev, mut s_prev) = (scrape(raddr), scrape(saddr));
    let mut scrapes = 0;
    let mut tsi_seen = None;
    let clock = Clock::new();
    while value(&r_prev, "pgm_app_finished") == 0 {
        assert!(clock.elapsed() < common::STEP_LIMIT, "the run did not end");
        thread::sleep(Duration::from_millis(100));
        let (r, s) = (scrape(raddr), scrape(saddr));
        assert_counters_grow(&r_prev, &r);
        assert_counters_grow(&s_prev, &s);
        if let Some((k, _)) = series(&r, "pgm_peer_packets_total").first() {
            tsi_seen = Some(k.clone());
        }
        (r_prev, s_prev) = (r, s);
        scrapes += 1;
    }
    assert!(scrapes >= 3, "only {scrapes} scrapes during the run");
    let tsi_series = tsi_seen.expect("a pgm_peer_* series during the run");
    assert!(tsi_series.contains("tsi=\""), "{tsi_series}");
    (r_prev, s_prev)
}

/// A receiver's final scrape against its `--verify` summary, after a lossy run of `count`
/// messages from one sender.
fn check_receiver(r: &Scrape, rj: &serde_json::Value, count: u64) {
    assert_eq!(rj["received"], count, "{rj}");
    assert_eq!(rj["unrecoverable"], 0, "{rj}");
    assert_eq!(value(r, "pgm_app_messages_total"), num(&rj["received"]));
    assert_eq!(
        value(r, "pgm_receiver_naks_sent_total"),
        num(&rj["naks_sent"])
    );
    assert_eq!(
        value(r, "pgm_receiver_lost_sqns_total"),
        num(&rj["unrecoverable"])
    );
    assert_eq!(
        value(r, "pgm_receiver_parse_errors_total"),
        num(&rj["parse_errors"])
    );
    assert_eq!(
        value(r, "pgm_receiver_checksum_errors_total"),
        num(&rj["checksum_errors"])
    );
    assert!(
        value(r, "pgm_transport_simulated_loss_total") > 0,
        "loss was simulated"
    );
    assert!(
        value(r, "pgm_receiver_repaired_total") > 0,
        "losses were repaired"
    );
    // One sender: its series hold everything the receiver did.
    assert_eq!(series(r, "pgm_peer_naks_sent_total").len(), 1);
    assert_eq!(value(r, "pgm_peer_naks_sent_total"), num(&rj["naks_sent"]));
    assert_eq!(value(r, "pgm_peer_apdus_delivered_total"), count);
    assert_eq!(
        value(r, "pgm_peer_repaired_total"),
        value(r, "pgm_receiver_repaired_total")
    );
    assert_eq!(
        value(r, "pgm_peer_ncf_received_total"),
        value(r, "pgm_receiver_ncf_received_total")
    );
}

/// A sender's final scrape against its summary, after a lossy run of `count` messages.
fn check_sender(s: &Scrape, sj: &serde_json::Value, count: u64) {
    assert_eq!(value(s, "pgm_app_messages_total"), num(&sj["sent"]));
    assert_eq!(value(s, "pgm_app_bytes_total"), num(&sj["bytes"]));
    assert_eq!(
        value(s, "pgm_source_naks_received_total"),
        num(&sj["naks_received"])
    );
    assert_eq!(value(s, "pgm_source_ncf_sent_total"), num(&sj["ncf_sent"]));
    assert_eq!(
        value(s, "pgm_source_rdata_packets_total"),
        num(&sj["rdata_sent"])
    );
    assert!(value(s, "pgm_source_rdata_packets_total") > 0, "{sj}");
    assert_eq!(value(s, "pgm_source_odata_packets_total"), count);
}

/// Clients that connect and say nothing, trickle a byte at a time, or send garbage, while a
/// transfer runs: scrapes keep being answered promptly and the transfer is complete.
#[test]
fn stalled_and_malformed_clients_stop_neither_scrapes_nor_the_transfer() {
    const COUNT: u64 = 20_000;
    let ep = endpoint();
    let mut recv = Proc::spawn(
        "pgm-recv",
        Command::new(RECV).args([
            "--verify",
            "--count",
            &COUNT.to_string(),
            "--timeout",
            "20",
            "--metrics",
            ":0",
            "--metrics-linger",
            "3",
            &ep,
        ]),
    );
    let addr = metrics_addr(&mut recv);
    recv.wait_for_stderr("listening on");
    // Silent clients (fewer than the server's bound: they must not starve the others).
    let silent: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // A client that sends one byte every 200 ms, for longer than the request deadline.
    let trickle = thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        for b in b"GET /metrics HTTP/1.1\r\n\r\n" {
            if s.write_all(&[*b]).is_err() {
                return true;
            }
            thread::sleep(Duration::from_millis(200));
        }
        // The server hung up before the request was complete.
        let mut buf = [0u8; 64];
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        !matches!(s.read(&mut buf), Ok(n) if n > 0 && buf.starts_with(b"HTTP/1.1 200"))
    });
    let (status, _) = http(addr, "\x16\x03\x01\x02\x00garbage\r\n\r\n");
    assert_eq!(status, 400);
    let (status, _) = http(addr, "GET /other HTTP/1.1\r\n\r\n");
    assert_eq!(status, 404);
    let (status, _) = http(addr, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(status, 405);

    let send = Proc::spawn(
        "pgm-send",
        Command::new(SEND).args([
            "--count",
            &COUNT.to_string(),
            "--size",
            "200",
            "--rate",
            "30M",
            "--linger",
            "1",
            &ep,
        ]),
    );
    let clock = Clock::new();
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let t = clock.elapsed();
        let s = scrape(addr);
        slowest = slowest.max(clock.elapsed().saturating_sub(t));
        value(&s, "pgm_app_finished");
        thread::sleep(Duration::from_millis(100));
    }
    assert!(
        slowest < Duration::from_secs(1),
        "a scrape took {slowest:?}"
    );
    assert!(trickle.join().unwrap(), "the trickling client was cut off");
    let (status, _, err) = send.finish();
    assert!(status.success(), "{err}");
    let (status, out, err) = recv.finish();
    assert!(status.success(), "{out}\n{err}");
    let v = common::json(&out);
    assert_eq!(v["received"], COUNT, "{out}");
    assert_eq!(v["gaps"], 0, "{out}");
    drop(silent);
}

#[test]
fn pub_and_sub_serve_metrics_that_agree_with_their_summaries() {
    const COUNT: u64 = 5_000;
    let ep = endpoint();
    let mut sub = Proc::spawn(
        "pgm-sub",
        Command::new(SUB).args([
            "--subscribe",
            "",
            "--verify",
            "--count",
            &COUNT.to_string(),
            "--timeout",
            "20",
            "--simulated-loss",
            "3",
            "--metrics",
            ":0",
            "--metrics-linger",
            "30",
            &ep,
        ]),
    );
    let raddr = metrics_addr(&mut sub);
    sub.wait_for_stderr("listening on");
    let rlines = sub.stdout_lines();
    let mut publ = Proc::spawn(
        "pgm-pub",
        Command::new(PUB).args([
            "--count",
            &COUNT.to_string(),
            "--rate",
            "20M",
            "--linger",
            "1",
            "--metrics",
            ":0",
            "--metrics-linger",
            "30",
            &ep,
        ]),
    );
    let saddr = metrics_addr(&mut publ);
    let slines = publ.stdout_lines();
    let rj = summary(&rlines);
    let sj = summary(&slines);
    let r = final_scrape(raddr);
    let s = final_scrape(saddr);
    assert_eq!(rj["received"], COUNT, "{rj}");
    assert_eq!(value(&r, "pgm_app_messages_total"), num(&rj["received"]));
    assert_eq!(
        value(&r, "pgm_receiver_naks_sent_total"),
        num(&rj["naks_sent"])
    );
    assert_eq!(
        value(&r, "pgm_receiver_repaired_total"),
        num(&rj["repaired"])
    );
    assert_eq!(series(&r, "pgm_peer_packets_total").len(), 1);
    assert_eq!(value(&s, "pgm_app_messages_total"), num(&sj["sent"]));
    assert_eq!(
        value(&s, "pgm_source_naks_received_total"),
        num(&sj["naks_received"])
    );
    assert_eq!(
        value(&s, "pgm_source_rdata_packets_total"),
        num(&sj["rdata_sent"])
    );
    assert!(s.keys().all(|k| k.contains("tool=\"pgm-pub\"")));
    drop((sub, publ));
}

#[test]
fn bad_metrics_addresses_are_usage_errors() {
    for (bin, addr) in [
        (SEND, "localhost:9100"),
        (RECV, "1.2.3.4"),
        (PUB, ":99999"),
        (SUB, "[::1]"),
    ] {
        let (code, err) = fails(
            bin,
            &["--metrics", addr, "epgm://127.0.0.1;239.192.1.1:7500"],
        );
        assert_eq!(code, Some(2), "{bin} --metrics {addr}: {err}");
        assert!(err.contains("--metrics"), "{err}");
        assert!(err.contains("bad"), "{err}");
    }
}

/// FEC from the tools (issue 15): `pgm-send --fec 16` (parity on demand only) to
/// `pgm-recv --fec-receive` with 5 % simulated receive loss: everything verified, the lost
/// packets rebuilt from parity the receiver asked for with parity NAKs, and the counters in
/// the scrapes of both ends.
#[test]
fn on_demand_fec_from_the_tools() {
    const COUNT: u64 = 20_000;
    let ep = endpoint();
    let (recv, raddr, rlines) = lossy_receiver(&ep, COUNT, &["--fec-receive"]);
    let (send, saddr) = metered_sender(&ep, COUNT, "20M", &["--fec", "16"]);
    let rj = summary(&rlines);
    assert_eq!(rj["received"], COUNT, "{rj}");
    assert_eq!(rj["unrecoverable"], 0, "{rj}");
    let r = final_scrape(raddr);
    let s = final_scrape(saddr);
    let rebuilt = value(&r, "pgm_receiver_fec_recovered_total");
    let lost = value(&r, "pgm_transport_simulated_loss_total");
    assert!(value(&r, "pgm_receiver_parity_naks_sent_total") > 0);
    assert!(value(&s, "pgm_source_parity_naks_received_total") > 0);
    assert!(value(&s, "pgm_source_on_demand_parity_sent_total") > 0);
    assert_eq!(
        value(&s, "pgm_source_parity_sent_total"),
        0,
        "on demand only"
    );
    // Most of what was lost came back from parity (the rest, e.g. in a group still open
    // when its NAK was due, through selective repair).
    assert!(rebuilt * 2 > lost, "{rebuilt} rebuilt of {lost} lost");
    drop((recv, send));
}
