//! Builds and runs the OpenPGM interop peer `peers/openpgm_peer.c`.
//!
//! The peer is compiled with `cc` against Debian's `libpgm-dev` (OpenPGM 5.3.128, found with
//! `pkg-config openpgm-5.3`) into `<cargo target dir>/netns-peers/openpgm_peer`, and rebuilt
//! when the source is newer than the binary.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::SystemTime;

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// The C source of the peer.
pub fn openpgm_peer_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("peers")
        .join("openpgm_peer.c")
}

/// The cargo target directory: `CARGO_TARGET_DIR`, else the nearest ancestor of the running
/// executable that holds cargo's `CACHEDIR.TAG`, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        if dir.is_absolute() {
            return dir;
        }
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe
            .ancestors()
            .skip(1)
            .find(|d| d.join("CACHEDIR.TAG").is_file())
        {
            return dir.to_path_buf();
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Compiler and linker flags for OpenPGM from pkg-config.
fn pkg_config_openpgm() -> io::Result<Vec<String>> {
    let out = Command::new("pkg-config")
        .args(["--cflags", "--libs", "openpgm-5.3"])
        .output()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("running pkg-config: {e} (apt-get install pkg-config)"),
            )
        })?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "pkg-config openpgm-5.3 failed (apt-get install libpgm-dev): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect())
}

/// Returns the path of the compiled OpenPGM peer, building it first if needed.
pub fn openpgm_peer() -> io::Result<PathBuf> {
    let _guard = BUILD_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let src = openpgm_peer_source();
    let dir = target_dir().join("netns-peers");
    let bin = dir.join("openpgm_peer");
    let src_time =
        mtime(&src).ok_or_else(|| io::Error::other(format!("missing {}", src.display())))?;
    if mtime(&bin).is_some_and(|t| t >= src_time) {
        return Ok(bin);
    }
    std::fs::create_dir_all(&dir)?;
    // Build under a unique name and rename, so concurrent test processes never see a partial file.
    let tmp = dir.join(format!("openpgm_peer.tmp{}", std::process::id()));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let out = Command::new(&cc)
        .args([
            "-std=gnu11",
            "-O2",
            "-g",
            "-Wall",
            "-Wextra",
            "-Wno-unused-parameter",
            "-o",
        ])
        .arg(&tmp)
        .arg(&src)
        .args(pkg_config_openpgm()?)
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("running {cc}: {e}")))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(io::Error::other(format!(
            "compiling {} failed:\n{}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    std::fs::rename(&tmp, &bin)?;
    Ok(bin)
}

/// Command-line options of one OpenPGM peer run (see `peers/openpgm_peer.c`).
#[derive(Debug, Clone)]
pub struct PeerArgs {
    /// `"IFADDR;GROUP"`.
    pub network: String,
    /// PGM data-destination port (and both UDP encapsulation ports with `udp`).
    pub port: u16,
    /// UDP encapsulation (EPGM) instead of raw IP protocol 113.
    pub udp: bool,
    /// Messages to send / expect.
    pub count: u64,
    /// Message size in bytes (≥ 12). Larger than one TPDU means fragmented APDUs.
    pub size: usize,
    /// Sender rate limit (`PGM_TXW_MAX_RTE`, bytes/s); 0 = none.
    pub rate: u64,
    /// Sender: ODATA on a fixed schedule of this many messages/s (`--msg-rate`), leaving the
    /// rest of `rate` to RDATA; 0 = as fast as `rate` lets.
    pub msg_rate: u64,
    /// Sender: seconds to keep answering NAKs after the last message.
    pub linger_s: f64,
    /// Receiver: give up after this many seconds without data. Sender: overall send timeout.
    pub timeout_s: f64,
    /// TXW/RXW size in sequence numbers.
    pub window_sqns: u32,
    /// NAK back-off, repeat and RDATA intervals, ms.
    pub nak_ivls_ms: (u32, u32, u32),
    /// Receiver SPMR expiry, ms.
    pub spmr_ms: u32,
    /// Sender: pause between connect and the first ODATA, ms.
    pub start_delay_ms: u32,
    /// `--quiet`.
    pub quiet: bool,
    /// Extra raw arguments.
    pub extra: Vec<String>,
}

impl PeerArgs {
    /// Defaults: port 7500, raw PGM, 1000 × 200 B, no rate limit, 2 s linger, 10 s timeout,
    /// window 10000, NAK 50/200/200 ms, SPMR 250 ms.
    pub fn new(network: impl Into<String>) -> PeerArgs {
        PeerArgs {
            network: network.into(),
            port: 7500,
            udp: false,
            count: 1000,
            size: 200,
            rate: 0,
            msg_rate: 0,
            linger_s: 2.0,
            timeout_s: 10.0,
            window_sqns: 10_000,
            nak_ivls_ms: (50, 200, 200),
            spmr_ms: 250,
            start_delay_ms: 0,
            quiet: false,
            extra: Vec::new(),
        }
    }

    /// The argument vector for `openpgm_peer send|recv`.
    pub fn to_args(&self, send: bool) -> Vec<String> {
        let mut a: Vec<String> = vec![
            if send { "send" } else { "recv" }.into(),
            "--network".into(),
            self.network.clone(),
            "--port".into(),
            self.port.to_string(),
            "--count".into(),
            self.count.to_string(),
            "--size".into(),
            self.size.to_string(),
            "--timeout".into(),
            self.timeout_s.to_string(),
            "--txw-sqns".into(),
            self.window_sqns.to_string(),
            "--nak-ivls".into(),
            format!(
                "{},{},{}",
                self.nak_ivls_ms.0, self.nak_ivls_ms.1, self.nak_ivls_ms.2
            ),
            "--spmr-ms".into(),
            self.spmr_ms.to_string(),
        ];
        if self.udp {
            a.push("--udp".into());
        }
        if send {
            a.extend([
                "--rate".into(),
                self.rate.to_string(),
                "--linger".into(),
                self.linger_s.to_string(),
                "--start-delay-ms".into(),
                self.start_delay_ms.to_string(),
            ]);
            if self.msg_rate > 0 {
                a.extend(["--msg-rate".into(), self.msg_rate.to_string()]);
            }
        }
        if self.quiet {
            a.push("--quiet".into());
        }
        a.extend(self.extra.iter().cloned());
        a
    }
}

/// The role of one OpenPGM peer in a ping-pong.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PeerPingRole {
    /// `reflect`: answers every ping; stops after `timeout_s` without one (`--timeout`).
    Reflect {
        /// `--timeout`, s.
        timeout_s: f64,
    },
    /// `ping`: `count` recorded round trips of `size`-byte messages after `warmup`.
    Ping {
        /// `--count`.
        count: u64,
        /// `--warmup`.
        warmup: u64,
        /// `--size`, bytes.
        size: usize,
    },
}

/// Command-line options of `openpgm_peer ping|reflect` (see `peers/openpgm_peer.c`): pings
/// travel on `network`/`port`, answers on `network2`/`port2`.
#[derive(Debug, Clone)]
pub struct PeerPingArgs {
    /// Pinger or reflector.
    pub role: PeerPingRole,
    /// `"IFADDR;GROUP"` of the pings.
    pub network: String,
    /// PGM port of the pings.
    pub port: u16,
    /// `"IFADDR;GROUP2"` of the answers.
    pub network2: String,
    /// PGM port of the answers.
    pub port2: u16,
    /// `--max-secs`: the process stops after this long in any case.
    pub max_secs: f64,
    /// NAK back-off, repeat and RDATA intervals, ms.
    pub nak_ivls_ms: (u32, u32, u32),
    /// `--quiet`.
    pub quiet: bool,
    /// `--spin`: `pgm_recvfrom(MSG_DONTWAIT)` in a loop instead of blocking in ppoll.
    pub spin: bool,
}

impl PeerPingArgs {
    /// The argument vector for `openpgm_peer ping|reflect`.
    pub fn to_args(&self) -> Vec<String> {
        let (bo, rpt, rdata) = self.nak_ivls_ms;
        let mut a: Vec<String> = vec![
            match self.role {
                PeerPingRole::Reflect { .. } => "reflect",
                PeerPingRole::Ping { .. } => "ping",
            }
            .into(),
            "--network".into(),
            self.network.clone(),
            "--port".into(),
            self.port.to_string(),
            "--network2".into(),
            self.network2.clone(),
            "--port2".into(),
            self.port2.to_string(),
            "--max-secs".into(),
            self.max_secs.to_string(),
            "--nak-ivls".into(),
            format!("{bo},{rpt},{rdata}"),
        ];
        if self.quiet {
            a.push("--quiet".into());
        }
        if self.spin {
            a.push("--spin".into());
        }
        match self.role {
            PeerPingRole::Reflect { timeout_s } => {
                a.extend(["--timeout".into(), timeout_s.to_string()]);
            }
            PeerPingRole::Ping {
                count,
                warmup,
                size,
            } => a.extend([
                "--count".into(),
                count.to_string(),
                "--warmup".into(),
                warmup.to_string(),
                "--size".into(),
                size.to_string(),
            ]),
        }
        a
    }
}
