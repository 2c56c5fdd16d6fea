//! `pgm-async-bench`: the async-vs-blocking subscriber benchmark (see
//! `netns_tests::async_bench`); run it through `scripts/bench-async`, as root.
//!
//! ```text
//! pgm-async-bench [--smoke] [--out DIR]
//! ```
//!
//! Writes (or replaces) the `## Async vs blocking subscriber` section of `BENCHMARKS.md` in
//! `--out` (default: the workspace root) and `BENCHMARKS-async.json` next to it. `--smoke` is
//! the harness check (100 000 messages, one round), written into `--out` (default: a fresh
//! temporary directory), never the workspace's `BENCHMARKS.md`.
//!
//! Exit status: 0 when every CPU run delivered everything, 1 otherwise, 2 for usage errors, 3 when
//! the run could not be set up or was interrupted.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use netns_tests::async_bench::{run, Config, Kind, RunResult};
use netns_tests::bench::install_signal_handlers;

const USAGE: &str = "usage: pgm-async-bench [--smoke] [--out DIR]";

fn main() -> ExitCode {
    let mut smoke = false;
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--smoke" => smoke = true,
            "--out" => {
                let Some(d) = args.next() else {
                    eprintln!("pgm-async-bench: --out needs a directory\n{USAGE}");
                    return ExitCode::from(2);
                };
                out = Some(PathBuf::from(d));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("pgm-async-bench: unknown argument {a}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if !netns_tests::is_root() {
        eprintln!("pgm-async-bench: needs root (network namespaces); try sudo -E");
        return ExitCode::from(2);
    }
    install_signal_handlers();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let workspace = workspace.canonicalize().unwrap_or(workspace);
    let mut cfg = if smoke {
        Config::smoke(out.unwrap_or_else(|| {
            std::env::temp_dir().join(format!("pgm-async-bench-smoke-{}", std::process::id()))
        }))
    } else {
        Config::full(out.unwrap_or(workspace))
    };
    cfg.command = std::env::var("PGM_BENCH_COMMAND").unwrap_or_else(|_| {
        let args: Vec<String> = std::env::args().skip(1).collect();
        format!(
            "cargo run --release -p netns-tests --bin pgm-async-bench -- {}",
            args.join(" ")
        )
        .trim_end()
        .to_owned()
    });
    match run(&cfg) {
        // Ladder steps are expected to fail at the top; the CPU runs must not.
        Ok(runs)
            if runs
                .iter()
                .filter(|r| r.kind == Kind::Cpu)
                .all(RunResult::complete) =>
        {
            ExitCode::SUCCESS
        }
        Ok(_) => {
            eprintln!("pgm-async-bench: a CPU run did not deliver everything (see the report)");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("pgm-async-bench: {e}");
            ExitCode::from(3)
        }
    }
}
