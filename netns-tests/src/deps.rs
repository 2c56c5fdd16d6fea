//! What the end-to-end tests need from the machine, checked before a test starts.
//!
//! On a developer's machine a missing need skips the test with a loud `SKIPPED` notice that
//! names the `apt-get install` line, and the test passes: `cargo test --workspace` passes on a
//! fresh machine with only Rust installed, root or not. When the environment variable `CI` is
//! set (`.ci/run` sets it after installing everything), a missing need fails the test instead,
//! so CI cannot pass by skipping.

use std::{
    fmt::Write as _,
    io::{self, Write as _},
    path::PathBuf,
    process::{Command, Stdio},
    sync::OnceLock,
};

use crate::{have_program, is_root};

/// One thing a test needs from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Root: network namespaces, raw sockets, nftables, packet capture.
    Root,
    /// The test LAN's tools: `ip` and `tc` (iproute2), `nft` (nftables), `tcpdump`.
    Lan,
    /// The OpenPGM interop peer's build: `cc`, `pkg-config` and `openpgm-5.3`.
    OpenPgm,
    /// Python 3 with libzmq built with PGM.
    Zmq,
    /// Wireshark's `tshark`.
    Tshark,
}

impl Need {
    /// Everything a test on the namespace LAN needs.
    pub const LAN: &'static [Need] = &[Need::Root, Need::Lan];

    /// What is missing, or `None`.
    fn missing(self) -> Option<String> {
        let programs = |names: &[&str]| {
            let absent: Vec<&str> = names.iter().copied().filter(|p| !have_program(p)).collect();
            (!absent.is_empty()).then(|| format!("{} not found in PATH", absent.join(", ")))
        };
        match self {
            Need::Root => (!is_root()).then(|| {
                "root (network namespaces, raw sockets, nftables); run `sudo -E cargo test`"
                    .to_owned()
            }),
            Need::Lan => programs(&["ip", "tc", "nft", "tcpdump"]),
            Need::OpenPgm => programs(&["cc", "pkg-config"]).or_else(|| {
                let found = Command::new("pkg-config")
                    .args(["--exists", "openpgm-5.3"])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                (!found).then(|| "pkg-config finds no openpgm-5.3".to_owned())
            }),
            Need::Zmq => zmq_python().err().map(|e| e.to_string()),
            Need::Tshark => programs(&["tshark"]),
        }
    }

    /// The Debian packages that provide it.
    fn packages(self) -> &'static str {
        match self {
            Need::Root => "",
            Need::Lan => "iproute2 nftables tcpdump",
            Need::OpenPgm => "libpgm-dev pkg-config gcc libc6-dev",
            Need::Zmq => "python3-zmq",
            Need::Tshark => "tshark",
        }
    }
}

static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();

fn find_python() -> Result<PathBuf, String> {
    // Debian's python3-zmq installs for /usr/bin/python3; a python3 earlier in PATH (pyenv…)
    // may lack it.
    let mut tried = Vec::new();
    for cand in ["/usr/bin/python3", "python3"] {
        let out = Command::new(cand)
            .args([
                "-c",
                "import zmq, sys; print(zmq.zmq_version()); sys.exit(0 if zmq.has('pgm') else 3)",
            ])
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let v = String::from_utf8_lossy(&o.stdout).trim().to_owned();
                eprintln!("netns-tests: libzmq {v} with pgm via {cand}");
                return Ok(PathBuf::from(cand));
            }
            Ok(o) => tried.push(format!(
                "{cand}: {}{}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or_default()
            )),
            Err(e) => tried.push(format!("{cand}: {e}")),
        }
    }
    Err(format!(
        "no python3 with pyzmq and libzmq pgm support (apt-get install python3-zmq); tried: {}",
        tried.join("; ")
    ))
}

/// The Python interpreter that has `zmq` with PGM support.
pub fn zmq_python() -> io::Result<PathBuf> {
    PYTHON
        .get_or_init(find_python)
        .clone()
        .map_err(io::Error::other)
}

/// Whether `CI` is set (to anything but the empty string).
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// True when the machine has everything in `needs`. Otherwise prints a loud `SKIPPED` notice
/// naming `test`, what is missing and the `apt-get` line, and returns false so the test can
/// return early — or, under CI ([`in_ci`]), panics with the same text.
///
/// ```no_run
/// use netns_tests::deps::{require, Need};
///
/// if !require("my_test", &[Need::Root, Need::Lan, Need::Tshark]) {
///     return;
/// }
/// ```
pub fn require(test: &str, needs: &[Need]) -> bool {
    let missing: Vec<(Need, String)> = needs
        .iter()
        .filter_map(|&n| n.missing().map(|why| (n, why)))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let mut text = format!("SKIPPED: {test} needs:\n");
    for (_, why) in &missing {
        let _ = writeln!(text, "  - {why}");
    }
    let packages: Vec<&str> = missing
        .iter()
        .map(|(n, _)| n.packages())
        .filter(|p| !p.is_empty())
        .collect();
    if !packages.is_empty() {
        let _ = writeln!(text, "  apt-get install {}", packages.join(" "));
    }
    let bar = "=".repeat(70);
    assert!(
        !in_ci(),
        "CI is set, so a missing dependency fails the test:\n{text}"
    );
    // Straight to the process's stderr: libtest's capture would hide an eprintln! of a test
    // that passes.
    let _ = std::io::stderr().write_all(format!("\n{bar}\n{text}{bar}\n\n").as_bytes());
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_named_with_its_package() {
        assert_eq!(
            Need::Tshark.missing().is_some(),
            !have_program("tshark"),
            "{:?}",
            Need::Tshark.missing()
        );
        assert!(Need::Lan.packages().contains("nftables"));
        assert!(Need::OpenPgm.packages().contains("libpgm-dev"));
    }

    #[test]
    fn nothing_needed_is_always_there() {
        assert!(require("nothing_needed_is_always_there", &[]));
    }
}
