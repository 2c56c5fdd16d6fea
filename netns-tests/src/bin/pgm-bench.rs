//! `pgm-bench`: the benchmark harness (see `netns_tests::bench`); run it through
//! `scripts/bench`, as root.
//!
//! ```text
//! pgm-bench [--smoke] [--out DIR] [--json FILE] [--only PART,...] [--lan both|switch|plain]
//! ```
//!
//! `--only` runs some parts: `limit` (plain UDP), `pgm` (one message per packet, OpenPGM and
//! ours), `ipv6` (ours over IPv6; with `pgm` for the comparison), `pubsub`, `loss` (needs
//! `pgm` for the clean rates), `latency`, `memory`, `scale` (1–8 receivers, 1–16 publishers).
//!
//! `--lan` (default `both`): one run measures on the `switch` LAN, whose bridge ports cut UDP
//! GSO runs into datagrams (a NIC with segmentation offload), then on the `plain` LAN, where
//! no device limits GSO and the receiving hosts cut them in software (see
//! `netns_tests::lan::Segmentation`); without `--only` the plain LAN runs `limit`, `pgm` and
//! `pubsub` only. `--lan switch` or `--lan plain` measures on that LAN alone (every part).
//!
//! The full run writes `BENCHMARKS.md` and `BENCHMARKS-rate.svg` into `--out` (default: the
//! workspace root) and every probe as JSON into `--json` (default:
//! `<target>/bench/bench-results.json`). `--smoke` is the ~1-minute harness check with tiny
//! counts; it writes into `--out` (default: a fresh temporary directory), never the
//! workspace's `BENCHMARKS.md`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use netns_tests::bench::{install_signal_handlers, run, Config, PARTS};
use netns_tests::lan::Segmentation;

const USAGE: &str = "usage: pgm-bench [--smoke] [--out DIR] [--json FILE] [--only PART,...] \
                     [--lan both|switch|plain]\n\
                     PARTs: limit, pgm, ipv6, pubsub, loss (needs pgm), latency, memory, scale\n\
                     --lan: where UDP GSO runs are cut into datagrams: at the bridge ports \
                     (switch) or by the receiving hosts (plain); both (the default) measures \
                     switch, then plain (limit, pgm and pubsub only unless --only is given)";

fn main() -> ExitCode {
    let mut smoke = false;
    let mut out: Option<PathBuf> = None;
    let mut json: Option<PathBuf> = None;
    let mut only: Vec<String> = Vec::new();
    let mut lans = vec![Segmentation::Switch, Segmentation::Plain];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--smoke" => smoke = true,
            "--out" => out = args.next().map(PathBuf::from),
            "--json" => json = args.next().map(PathBuf::from),
            "--lan" => match args.next().as_deref() {
                Some("both") => lans = vec![Segmentation::Switch, Segmentation::Plain],
                Some("switch") => lans = vec![Segmentation::Switch],
                Some("plain") => lans = vec![Segmentation::Plain],
                other => {
                    eprintln!(
                        "pgm-bench: --lan takes both, switch or plain, not {other:?}\n{USAGE}"
                    );
                    return ExitCode::from(2);
                }
            },
            "--only" => {
                only.extend(
                    args.next()
                        .unwrap_or_default()
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned),
                );
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("pgm-bench: unknown argument {a}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if let Some(bad) = only.iter().find(|p| !PARTS.contains(&p.as_str())) {
        eprintln!("pgm-bench: unknown part {bad:?}\n{USAGE}");
        return ExitCode::from(2);
    }
    if !netns_tests::is_root() {
        eprintln!("pgm-bench: needs root (network namespaces, nftables); try sudo -E");
        return ExitCode::from(2);
    }
    install_signal_handlers();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let workspace = workspace.canonicalize().unwrap_or(workspace);
    let mut cfg = if smoke {
        let dir = out.unwrap_or_else(|| {
            std::env::temp_dir().join(format!("pgm-bench-smoke-{}", std::process::id()))
        });
        Config::smoke(dir)
    } else {
        let mut c = Config::full(out.unwrap_or_else(|| workspace.clone()));
        c.json =
            Some(json.clone().unwrap_or_else(|| {
                netns_tests::peer::target_dir().join("bench/bench-results.json")
            }));
        c
    };
    if json.is_some() {
        cfg.json = json;
    }
    cfg.only = only;
    cfg.lan = lans[0];
    cfg.lans = lans;
    cfg.command = std::env::var("PGM_BENCH_COMMAND").unwrap_or_else(|_| {
        let args: Vec<String> = std::env::args().skip(1).collect();
        format!(
            "cargo run --release -p netns-tests --bin pgm-bench -- {}",
            args.join(" ")
        )
        .trim_end()
        .to_owned()
    });
    match run(&cfg) {
        Ok(res) => {
            for e in &res.all_errors() {
                eprintln!("pgm-bench: {e}");
            }
            eprintln!(
                "pgm-bench: done in {:.1} min: {}",
                res.wall_s / 60.0,
                cfg.out_dir.join(&cfg.report_name).display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pgm-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
