//! `pgm-soak`: the soak test (see `netns_tests::soak`); run it through `scripts/soak`, as root.
//!
//! ```text
//! pgm-soak [--minutes N] [--smoke] [--out DIR] [--json FILE]
//! ```
//!
//! `--minutes N` (default 60; a whole number of 60 s publisher periods) of `pgm-pub` → 3 ×
//! `pgm-sub` on a namespace LAN, the publisher killed and restarted every minute, one
//! subscriber leaving and rejoining every 30 s, 5 % loss on another. Writes (or replaces) the
//! `## Soak` section of `BENCHMARKS.md` in `--out` (default: the workspace root) and the JSON
//! with every sample to `--json` (default: `BENCHMARKS-soak.json` next to it).
//!
//! `--smoke` is the harness check: 20 s publisher periods and 10 s churn cycles, 2 minutes
//! unless `--minutes` says otherwise, written into `--out` (default: a fresh temporary
//! directory), never the workspace's `BENCHMARKS.md`.
//!
//! Exit status: 0 when the verdict is PASS, 1 on FAIL, 2 for usage errors, 3 when the run could
//! not be set up or was interrupted.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use netns_tests::bench::install_signal_handlers;
use netns_tests::soak::{run, Config};

const USAGE: &str = "usage: pgm-soak [--minutes N] [--smoke] [--out DIR] [--json FILE]";

fn main() -> ExitCode {
    let mut smoke = false;
    let mut minutes: Option<u64> = None;
    let mut out: Option<PathBuf> = None;
    let mut json: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--smoke" => smoke = true,
            "--minutes" => match args.next().and_then(|m| m.parse().ok()) {
                Some(m) if (1..=24 * 60).contains(&m) => minutes = Some(m),
                _ => {
                    eprintln!("pgm-soak: --minutes takes a whole number 1..=1440\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--out" => out = args.next().map(PathBuf::from),
            "--json" => json = args.next().map(PathBuf::from),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("pgm-soak: unknown argument {a}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if !netns_tests::is_root() {
        eprintln!("pgm-soak: needs root (network namespaces, nftables); try sudo -E");
        return ExitCode::from(2);
    }
    install_signal_handlers();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let workspace = workspace.canonicalize().unwrap_or(workspace);
    let mut cfg = if smoke {
        let dir = out.unwrap_or_else(|| {
            std::env::temp_dir().join(format!("pgm-soak-smoke-{}", std::process::id()))
        });
        Config::smoke(minutes.unwrap_or(2), dir)
    } else {
        Config::full(minutes.unwrap_or(60), out.unwrap_or(workspace))
    };
    cfg.json = json;
    cfg.command = std::env::var("PGM_SOAK_COMMAND").unwrap_or_else(|_| {
        let args: Vec<String> = std::env::args().skip(1).collect();
        format!(
            "cargo run --release -p netns-tests --bin pgm-soak -- {}",
            args.join(" ")
        )
        .trim_end()
        .to_owned()
    });
    eprintln!(
        "pgm-soak: {} min, {} sessions of {} messages, publisher killed every {} s, churn every {} s",
        cfg.run_secs / 60,
        cfg.sessions(),
        cfg.count,
        cfg.pub_period,
        cfg.churn_period
    );
    match run(&cfg) {
        Ok(res) => {
            for p in &res.problems {
                eprintln!("pgm-soak: {}", p.replace('\n', "\n    "));
            }
            eprintln!(
                "pgm-soak: {} in {:.1} min ({} problems)",
                if res.passed() { "PASS" } else { "FAIL" },
                res.wall_s / 60.0,
                res.problems.len()
            );
            if res.interrupted || res.aborted.is_some() {
                ExitCode::from(3)
            } else if res.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("pgm-soak: {e}");
            ExitCode::from(3)
        }
    }
}
