//! Records the OpenPGM reference capture (`pgm/tests/fixtures/openpgm.pcap`).
//!
//! ```text
//! sudo -E cargo run -p netns-tests --bin capture-openpgm -- OUT.pcap
//! ```
//!
//! On a 2-host namespace LAN, an OpenPGM sender (host 1) sends to an OpenPGM receiver (host 2)
//! twice: raw PGM (IP protocol 113), then UDP-encapsulated on port 7500 (dport 7500 too). Each
//! run is captured with tcpdump on the bridge and contains:
//!
//! - SPM: 3 at connect, heartbeats after data, an SPM answering the SPMR, 3 FIN SPMs (OPT_FIN)
//!   from `pgm_close(sock, TRUE)`;
//! - SPMR: the receiver starts after the connect SPMs and uses a 20 ms SPMR expiry, so its first
//!   ODATA comes from an unknown source;
//! - ODATA, with every 10th message a 4000-byte APDU in 3 fragments (OPT_FRAGMENT);
//! - NAK / NCF / RDATA: ~10 % ingress loss on the receiver, switched on once the source is known
//!   (random in the raw run, bursts of 2 in the UDP run, so NAKs carry OPT_NAK_LIST).
//!
//! The filter keeps only PGM and UDP port 7500, so the file stays small. When tshark is
//! installed, the PGM packet types found are printed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use netns_tests::lan::{Lan, Loss};
use netns_tests::peer::{openpgm_peer, target_dir, PeerArgs};
use netns_tests::proc::last_json_line;
use netns_tests::tshark::pgm_type_counts;
use netns_tests::{have_program, is_root, now};

const PORT: u16 = 7500;
const COUNT: u64 = 100;
const START_DELAY_MS: u32 = 1000;

fn run_phase(peer: &Path, lan: &Lan, udp: bool) -> Result<(), String> {
    let label = if udp { "udp" } else { "raw" };
    lan.set_loss(1, 0, 0).map_err(|e| e.to_string())?;
    let mut args = PeerArgs::new(lan.host(0).pgm_network());
    args.udp = udp;
    args.port = PORT;
    args.count = COUNT;
    args.size = 200;
    args.timeout_s = 20.0;
    args.linger_s = 20.0;
    args.spmr_ms = 20;
    args.start_delay_ms = START_DELAY_MS;
    args.extra = [
        "--big-every",
        "10",
        "--big-size",
        "4000",
        "--interval-us",
        "8000",
    ]
    .map(String::from)
    .to_vec();

    let mut sender = lan
        .host(0)
        .spawn(peer, &args.to_args(true))
        .map_err(|e| e.to_string())?;
    sender
        .wait_ready(Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let data_start = now() + Duration::from_millis(u64::from(START_DELAY_MS));
    // The receiver joins after the connect SPMs, so the first thing it sees is ODATA.
    thread::sleep(Duration::from_millis(300));
    let mut rx_args = args.clone();
    rx_args.network = lan.host(1).pgm_network();
    let mut receiver = lan
        .host(1)
        .spawn(peer, &rx_args.to_args(false))
        .map_err(|e| e.to_string())?;
    receiver
        .wait_ready(Duration::from_secs(10))
        .map_err(|e| e.to_string())?;

    // Loss starts once the SPMR/SPM exchange is over (repair needs the source's NLA).
    thread::sleep(data_start.saturating_duration_since(now()) + Duration::from_millis(150));
    let loss = if udp {
        Loss::Burst { every: 20, len: 2 }
    } else {
        Loss::Random(100)
    };
    lan.set_loss_pattern(1, loss, Loss::None)
        .map_err(|e| e.to_string())?;

    let rx = receiver
        .wait_timeout(Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    let (dropped, _) = lan.dropped(1).map_err(|e| e.to_string())?;
    lan.set_loss(1, 0, 0).map_err(|e| e.to_string())?;
    // Heartbeat SPMs follow the last data; then SIGTERM makes the sender pgm_close(sock, TRUE).
    thread::sleep(Duration::from_millis(600));
    let tx = sender
        .terminate(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    eprintln!("{label}: receiver dropped {dropped} packets by rule");
    eprintln!(
        "{label}: sender   {}",
        last_json_line(&tx.stdout).unwrap_or_default()
    );
    eprintln!(
        "{label}: receiver {}",
        last_json_line(&rx.stdout).unwrap_or_default()
    );
    if !rx.status.success() || !tx.status.success() {
        return Err(format!(
            "{label}: peers failed (sender {}, receiver {})\nreceiver stderr:\n{}",
            tx.status, rx.status, rx.stderr
        ));
    }
    Ok(())
}

fn main() -> ExitCode {
    let out = std::env::args_os().nth(1).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../pgm/tests/fixtures/openpgm.pcap"),
        PathBuf::from,
    );
    if !is_root() {
        eprintln!("capture-openpgm: needs root (network namespaces, raw sockets); try sudo -E");
        return ExitCode::FAILURE;
    }
    let result = (|| -> Result<(), String> {
        let peer = openpgm_peer().map_err(|e| e.to_string())?;
        let lan = Lan::new(2).map_err(|e| e.to_string())?;
        let tmp = target_dir()
            .join("netns-peers")
            .join(format!("capture-{}.pcap", std::process::id()));
        let mut cap = lan
            .capture(&tmp, &format!("ip proto 113 or udp port {PORT}"))
            .map_err(|e| e.to_string())?;
        run_phase(&peer, &lan, false)?;
        run_phase(&peer, &lan, true)?;
        let summary = cap.stop().map_err(|e| e.to_string())?;
        eprintln!(
            "tcpdump: {}",
            summary
                .lines()
                .filter(|l| l.contains("packets"))
                .collect::<Vec<_>>()
                .join("; ")
        );
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        std::fs::copy(&tmp, &out).map_err(|e| format!("copying to {}: {e}", out.display()))?;
        let _ = std::fs::remove_file(&tmp);
        let size = std::fs::metadata(&out).map_or(0, |m| m.len());
        println!("wrote {} ({size} bytes)", out.display());
        if have_program("tshark") {
            for (k, v) in pgm_type_counts(&out, PORT)? {
                println!("{v:6}  {k}");
            }
        }
        Ok(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("capture-openpgm: {e}");
            ExitCode::FAILURE
        }
    }
}
