//! PUB/SUB runs on a [`Lan`](crate::lan::Lan): our `pgm-pub` / `pgm-sub` (tools crate) and the
//! libzmq peer `peers/zmq_peer.py` (Debian `python3-zmq`, libzmq 4.3.4 with PGM).
//!
//! CLI contract used here (see `tools::publish`, `tools::subscribe` and the peer's docstring):
//!
//! - `pgm-pub --count N --topic T… --size MIN-MAX --rate BITS --linger SECS ENDPOINT`: message
//!   i is `[topic i mod T][test message]`, numbered per topic from 0; ends with one JSON line
//!   `{"sent","bytes","elapsed_s","msgs_per_s","naks_received","ncf_sent","rdata_sent",
//!   "apdus","max_payload"}`.
//! - `pgm-sub --verify --count N --timeout SECS --subscribe P… ENDPOINT`: one JSON line
//!   `{"received","topics":{topic:count},"gaps","duplicates","corrupt","unrecoverable",
//!   "filtered_out",…,"naks_sent","repaired"}`, non-zero exit on gaps, corruption, loss or
//!   fewer than N.
//! - `zmq_peer.py pub|sub ENDPOINT …`: the same message format from/to libzmq (PUB prints
//!   `{"sent","bytes","topics"}` once everything is queued and stays open until SIGTERM; SUB
//!   prints `{"received","topics","gaps","duplicates","corrupt",…}`). Both print READY on
//!   stderr once connected.
//!
//! libzmq traps the tests respect (docs/wire-compatibility.md §3, §13, §14): multicast loop is off,
//! so a libzmq socket never shares a host with its peer; its TTL defaults to 1 (one bridge is
//! fine); its GSI is the same in every process, so everything is keyed by TSI; a libzmq SUB
//! aborts on fragmented, 0-byte or 1-byte ODATA ([`data_shapes`] checks our publisher's
//! packets); ZMQ_RATE (kbit/s) and ZMQ_RECOVERY_IVL size both windows.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::lan::Host;
use crate::proc::Proc;
use crate::tools::{endpoint, spawn_joined, tools_dir, Encap, Finished, Iface};

/// The libzmq peer script.
pub fn zmq_peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("peers")
        .join("zmq_peer.py")
}

pub use crate::deps::zmq_python;

/// Path of `pgm-pub` (built with the other tools).
pub fn pgm_pub() -> io::Result<PathBuf> {
    tool("pgm-pub")
}

/// Path of `pgm-sub` (built with the other tools).
pub fn pgm_sub() -> io::Result<PathBuf> {
    tool("pgm-sub")
}

fn tool(name: &str) -> io::Result<PathBuf> {
    let p = tools_dir()?.join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} missing after building the tools crate", p.display()),
        ))
    }
}

/// `n` topics in groups of ten: `a0`..`a9`, `b0`..`b9`, … (two bytes each: the smallest
/// frames of the interop runs).
pub fn topics(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let group = char::from(b'a' + u8::try_from(i / 10 % 26).unwrap_or(0));
            format!("{group}{}", i % 10)
        })
        .collect()
}

/// Options of one `pgm-pub --count` run.
#[derive(Debug, Clone)]
pub struct PubOpts {
    /// `--count`.
    pub count: u64,
    /// `--topic`s, round-robin.
    pub topics: Vec<String>,
    /// `--size` (`N` or `MIN-MAX`).
    pub size: String,
    /// `--rate` (bits/s with k/M/G).
    pub rate: String,
    /// `--linger` seconds.
    pub linger_s: f64,
    /// `--quiet`.
    pub quiet: bool,
    /// Further raw arguments.
    pub extra: Vec<String>,
}

impl PubOpts {
    /// `count` messages over `topics`, payload sizes `size`, at `rate`, 2 s linger.
    pub fn new(count: u64, topics: &[String], size: &str, rate: &str) -> PubOpts {
        PubOpts {
            count,
            topics: topics.to_vec(),
            size: size.to_owned(),
            rate: rate.to_owned(),
            linger_s: 2.0,
            quiet: false,
            extra: Vec::new(),
        }
    }

    /// The argument vector (endpoint last).
    pub fn args(&self, endpoint: &str) -> Vec<String> {
        let mut a = vec![
            "--count".to_owned(),
            self.count.to_string(),
            "--size".to_owned(),
            self.size.clone(),
            "--rate".to_owned(),
            self.rate.clone(),
            "--linger".to_owned(),
            self.linger_s.to_string(),
        ];
        for t in &self.topics {
            a.extend(["--topic".to_owned(), t.clone()]);
        }
        if self.quiet {
            a.push("--quiet".to_owned());
        }
        a.extend(self.extra.iter().cloned());
        a.push(endpoint.to_owned());
        a
    }
}

/// Options of one `pgm-sub --verify` run.
#[derive(Debug, Clone)]
pub struct SubOpts {
    /// `--count`: the messages expected.
    pub count: u64,
    /// `--subscribe` prefixes.
    pub prefixes: Vec<String>,
    /// `--timeout` (idle seconds).
    pub timeout_s: f64,
    /// `--quiet`.
    pub quiet: bool,
    /// Further raw arguments.
    pub extra: Vec<String>,
}

impl SubOpts {
    /// Expects `count` messages on `prefixes`, 5 s idle timeout.
    pub fn new(count: u64, prefixes: &[&str]) -> SubOpts {
        SubOpts {
            count,
            prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
            timeout_s: 5.0,
            quiet: false,
            extra: Vec::new(),
        }
    }

    /// The argument vector (endpoint last).
    pub fn args(&self, endpoint: &str) -> Vec<String> {
        let mut a = vec![
            "--verify".to_owned(),
            "--count".to_owned(),
            self.count.to_string(),
            "--timeout".to_owned(),
            self.timeout_s.to_string(),
        ];
        for p in &self.prefixes {
            a.extend(["--subscribe".to_owned(), p.clone()]);
        }
        if self.quiet {
            a.push("--quiet".to_owned());
        }
        a.extend(self.extra.iter().cloned());
        a.push(endpoint.to_owned());
        a
    }
}

/// Spawns `pgm-pub` on `host` (the endpoint names its address).
pub fn spawn_pub(host: &Host, encap: Encap, port: u16, opts: &PubOpts) -> io::Result<Proc> {
    spawn_pub_on(host, (encap, Iface::Addr), port, opts)
}

/// [`spawn_pub`] with the endpoint naming the interface as `iface` says (and so its family).
pub fn spawn_pub_on(
    host: &Host,
    (encap, iface): (Encap, Iface),
    port: u16,
    opts: &PubOpts,
) -> io::Result<Proc> {
    host.spawn(pgm_pub()?, &opts.args(&endpoint(host, encap, iface, port)))
}

/// Spawns `pgm-sub --verify` on `host` (the endpoint names its address) and waits until it has
/// joined the group ([`wait_joined`](crate::tools::wait_joined), 10 s at most).
pub fn spawn_sub_joined(host: &Host, encap: Encap, port: u16, opts: &SubOpts) -> io::Result<Proc> {
    spawn_sub_joined_on(host, (encap, Iface::Addr), port, opts)
}

/// [`spawn_sub_joined`] with the endpoint naming the interface as `iface` says.
pub fn spawn_sub_joined_on(
    host: &Host,
    (encap, iface): (Encap, Iface),
    port: u16,
    opts: &SubOpts,
) -> io::Result<Proc> {
    let args = opts.args(&endpoint(host, encap, iface, port));
    spawn_joined(host, pgm_sub()?, &args, encap, port)
}

/// Options of the libzmq peer in PUB mode.
#[derive(Debug, Clone)]
pub struct ZmqPubOpts {
    /// Messages.
    pub count: u64,
    /// Topics, round-robin.
    pub topics: Vec<String>,
    /// Payload sizes, spread like `pgm-pub --size MIN-MAX`.
    pub size: (usize, usize),
    /// ZMQ_RATE in kbit/s (ODATA only; with the recovery interval it sizes the window).
    pub rate_kbit: u64,
    /// ZMQ_RECOVERY_IVL in ms.
    pub recovery_ivl_ms: u64,
    /// Seconds the socket stays open after the last send unless stopped with SIGTERM.
    pub linger_s: f64,
}

impl ZmqPubOpts {
    /// `count` messages over `topics`, sizes `size`, 100 Mbit/s, 10 s recovery (a window of
    /// ≈ 83 000 packets), 30 s linger.
    pub fn new(count: u64, topics: &[String], size: (usize, usize)) -> ZmqPubOpts {
        ZmqPubOpts {
            count,
            topics: topics.to_vec(),
            size,
            rate_kbit: 100_000,
            recovery_ivl_ms: 10_000,
            linger_s: 30.0,
        }
    }

    /// `zmq_peer.py pub …` arguments (script first).
    pub fn args(&self, endpoint: &str) -> Vec<String> {
        vec![
            zmq_peer_script().display().to_string(),
            "pub".to_owned(),
            endpoint.to_owned(),
            "--count".to_owned(),
            self.count.to_string(),
            "--topics".to_owned(),
            self.topics.join(","),
            "--size".to_owned(),
            format!("{}-{}", self.size.0, self.size.1),
            "--rate".to_owned(),
            self.rate_kbit.to_string(),
            "--recovery-ivl".to_owned(),
            self.recovery_ivl_ms.to_string(),
            "--linger".to_owned(),
            self.linger_s.to_string(),
        ]
    }
}

/// Options of the libzmq peer in SUB mode.
#[derive(Debug, Clone)]
pub struct ZmqSubOpts {
    /// Messages expected.
    pub count: u64,
    /// ZMQ_SUBSCRIBE prefixes.
    pub prefixes: Vec<String>,
    /// Idle seconds before giving up.
    pub timeout_s: f64,
    /// ZMQ_RATE in kbit/s (sizes the receive window with the recovery interval).
    pub rate_kbit: u64,
    /// ZMQ_RECOVERY_IVL in ms.
    pub recovery_ivl_ms: u64,
}

impl ZmqSubOpts {
    /// Expects `count` messages on `prefixes`; 5 s idle timeout, a 100 Mbit/s × 10 s window.
    pub fn new(count: u64, prefixes: &[&str]) -> ZmqSubOpts {
        ZmqSubOpts {
            count,
            prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
            timeout_s: 5.0,
            rate_kbit: 100_000,
            recovery_ivl_ms: 10_000,
        }
    }

    /// `zmq_peer.py sub …` arguments (script first).
    pub fn args(&self, endpoint: &str) -> Vec<String> {
        let mut a = vec![
            zmq_peer_script().display().to_string(),
            "sub".to_owned(),
            endpoint.to_owned(),
            "--count".to_owned(),
            self.count.to_string(),
            "--timeout".to_owned(),
            self.timeout_s.to_string(),
            "--rate".to_owned(),
            self.rate_kbit.to_string(),
            "--recovery-ivl".to_owned(),
            self.recovery_ivl_ms.to_string(),
        ];
        for p in &self.prefixes {
            a.extend(["--subscribe".to_owned(), p.clone()]);
        }
        a
    }
}

/// The per-topic counts a subscriber of `prefixes` must see when `count` messages go
/// round-robin over `topics`.
pub fn expected_topics(topics: &[String], count: u64, prefixes: &[&str]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    if topics.is_empty() {
        return m;
    }
    let per_round = topics.len() as u64;
    for (k, t) in topics.iter().enumerate() {
        if prefixes.iter().any(|p| t.starts_with(p)) {
            let k = k as u64;
            let n = count / per_round + u64::from(k < count % per_round);
            if n > 0 {
                *m.entry(t.clone()).or_default() += n;
            }
        }
    }
    m
}

/// The `"topics"` object of a subscriber's JSON summary.
pub fn topic_counts(json: &Value) -> BTreeMap<String, u64> {
    json.get("topics")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

/// Problems with a verifying subscriber (ours or libzmq's) that should have received exactly
/// `want` (topic → count), complete and intact.
pub fn topic_problems(r: &Finished, want: &BTreeMap<String, u64>) -> Vec<String> {
    let mut p = Vec::new();
    if r.json.is_null() {
        p.push("no JSON summary".to_owned());
    }
    if let Some(sig) = r.crash_signal() {
        p.push(format!("crashed with signal {sig}"));
    }
    if r.timed_out {
        p.push("did not finish in time".to_owned());
    } else if !r.out.status.success() {
        p.push(format!("exit status {}", r.out.status));
    }
    let got = topic_counts(&r.json);
    if &got != want {
        let diff: Vec<String> = want
            .keys()
            .chain(got.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter_map(|t| {
                let (g, w) = (got.get(t).copied(), want.get(t).copied());
                (g != w).then(|| format!("{t}: got {g:?} want {w:?}"))
            })
            .collect();
        p.push(format!("topic counts differ: {}", diff.join(", ")));
    }
    let total: u64 = want.values().sum();
    for (key, want) in [
        ("received", total),
        ("gaps", 0),
        ("duplicates", 0),
        ("corrupt", 0),
    ] {
        match r.get(key) {
            Some(v) if v == want => {}
            v => p.push(format!("{key} = {v:?}, want {want}")),
        }
    }
    // Only our subscriber reports transport losses.
    if let Some(u) = r.get("unrecoverable").filter(|&u| u != 0) {
        p.push(format!("unrecoverable = {u}, want 0"));
    }
    p
}

/// The shape of the data packets (ODATA and RDATA) in a capture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DataShapes {
    /// ODATA packets.
    pub odata: u64,
    /// RDATA packets.
    pub rdata: u64,
    /// Data packets carrying OPT_FRAGMENT.
    pub fragmented: u64,
    /// Smallest TSDU length seen (`u64::MAX` when none).
    pub min_tsdu: u64,
    /// Largest TSDU length seen.
    pub max_tsdu: u64,
}

/// Counts and sizes of the ODATA/RDATA packets in `pcap` (raw PGM, or EPGM on UDP `port`),
/// with tshark.
pub fn data_shapes(pcap: &Path, port: u16) -> Result<DataShapes, String> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args([
            "-d",
            &format!("udp.port=={port},pgm"),
            "-Y",
            "pgm.hdr.type == 4 || pgm.hdr.type == 5",
            "-T",
            "fields",
            "-e",
            "pgm.hdr.type",
            "-e",
            "pgm.hdr.tsdulen",
            "-e",
            "pgm.opts.fragment.first_sqn",
        ])
        .output()
        .map_err(|e| format!("running tshark: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "tshark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut s = DataShapes {
        min_tsdu: u64::MAX,
        ..DataShapes::default()
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let ty = f.first().copied().unwrap_or_default();
        if ty == "0x05" || ty == "5" {
            s.rdata += 1;
        } else {
            s.odata += 1;
        }
        if let Some(len) = f.get(1).and_then(|l| l.parse::<u64>().ok()) {
            s.min_tsdu = s.min_tsdu.min(len);
            s.max_tsdu = s.max_tsdu.max(len);
        }
        if f.get(2).is_some_and(|x| !x.is_empty()) {
            s.fragmented += 1;
        }
    }
    Ok(s)
}

/// The sessions (GSI as tshark prints it, source port) that sent ODATA in `pcap`.
pub fn odata_sessions(pcap: &Path, port: u16) -> Result<BTreeSet<(String, u16)>, String> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args([
            "-d",
            &format!("udp.port=={port},pgm"),
            "-Y",
            "pgm.hdr.type == 4",
            "-T",
            "fields",
            "-e",
            "pgm.hdr.gsi",
            "-e",
            "pgm.hdr.sport",
        ])
        .output()
        .map_err(|e| format!("running tshark: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "tshark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (gsi, sport) = l.split_once('\t')?;
            Some((gsi.to_owned(), sport.trim().parse().ok()?))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_counts_follow_round_robin() {
        let t = topics(25);
        assert_eq!(t[0], "a0");
        assert_eq!(t[19], "b9");
        assert_eq!(t[24], "c4");
        let m = expected_topics(&t, 103, &["a", "c4", "b"]);
        // 103 = 4 rounds of 25 + 3: a0..a2 get a fifth message.
        assert_eq!(m["a0"], 5);
        assert_eq!(m["a3"], 4);
        assert_eq!(m["c4"], 4);
        assert_eq!(m.len(), 21);
        assert_eq!(m.values().sum::<u64>(), 3 * 5 + 18 * 4);
        assert!(expected_topics(&t, 10, &[]).is_empty());
        assert_eq!(expected_topics(&t, 10, &[""]).len(), 10);
    }
}
