//! One OpenPGM sender and one OpenPGM receiver on a [`Lan`]: the common shape of the tests.

use std::io;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::lan::Lan;
use crate::peer::PeerArgs;
use crate::proc::Output;

/// What one sender → receiver run produced.
#[derive(Debug)]
pub struct PairRun {
    /// The sender's output (stopped with SIGTERM once the receiver finished).
    pub sender: Output,
    /// The receiver's output.
    pub receiver: Output,
    /// The sender's JSON summary line.
    pub sender_json: Value,
    /// The receiver's JSON summary line.
    pub receiver_json: Value,
    /// Wall time from starting the sender to the receiver's exit.
    pub elapsed: Duration,
}

impl PairRun {
    /// A receiver JSON field as u64 (0 when missing).
    pub fn rx(&self, key: &str) -> u64 {
        self.receiver_json
            .get(key)
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    /// A sender JSON field as u64 (0 when missing).
    pub fn tx(&self, key: &str) -> u64 {
        self.sender_json
            .get(key)
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    /// True when the receiver got `count` messages without gaps, corruption or resets, and
    /// both peers exited successfully.
    pub fn complete(&self, count: u64) -> bool {
        self.receiver.status.success()
            && self.sender.status.success()
            && self.rx("received") == count
            && self.rx("gaps") == 0
            && self.rx("corrupt") == 0
            && self.rx("unrecoverable") == 0
    }

    /// A multi-line description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "sender ({}): {}\nreceiver ({}): {}\n--- sender stderr ---\n{}\n--- receiver stderr ---\n{}",
            self.sender.status,
            self.sender_json,
            self.receiver.status,
            self.receiver_json,
            tail(&self.sender.stderr, 20),
            tail(&self.receiver.stderr, 40)
        )
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("Warn: Interface"))
        .collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs the OpenPGM peer as receiver on host `rx` and as sender on host `tx`.
///
/// `args.network` is ignored: each side gets its own host address. The receiver starts first
/// and must be ready before the sender starts; the run is bounded by `limit` (both processes
/// are killed after it). After the receiver exits, the sender (lingering to answer NAKs) is
/// stopped with SIGTERM, which makes it print its summary and close with FIN SPMs.
pub fn run_openpgm_pair(
    peer: &Path,
    lan: &Lan,
    tx: usize,
    rx: usize,
    args: &PeerArgs,
    limit: Duration,
) -> io::Result<PairRun> {
    let start = crate::now();
    let mut rx_args = args.clone();
    rx_args.network = lan.host(rx).pgm_network();
    let mut tx_args = args.clone();
    tx_args.network = lan.host(tx).pgm_network();
    // The sender lingers until stopped, but never past the limit.
    tx_args.linger_s = limit.as_secs_f64();
    tx_args.timeout_s = limit.as_secs_f64();

    let mut receiver = lan.host(rx).spawn(peer, &rx_args.to_args(false))?;
    receiver.wait_ready(Duration::from_secs(10))?;
    let mut sender = lan.host(tx).spawn(peer, &tx_args.to_args(true))?;
    sender.wait_ready(Duration::from_secs(10))?;

    let left = limit.saturating_sub(start.elapsed());
    let receiver_out = receiver.wait_timeout(left)?;
    let elapsed = start.elapsed();
    // A short grace period lets the last NCFs/RDATA for other receivers (none here) go out.
    let sender_out = sender.terminate(Duration::from_secs(5))?;
    let sender_json = sender_out.json().unwrap_or(Value::Null);
    let receiver_json = receiver_out.json().unwrap_or(Value::Null);
    Ok(PairRun {
        sender: sender_out,
        receiver: receiver_out,
        sender_json,
        receiver_json,
        elapsed,
    })
}
