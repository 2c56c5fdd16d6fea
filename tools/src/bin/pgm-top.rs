//! `pgm-top`: a live per-session view of PGM/EPGM traffic (see `tools::top`).

use std::{io, process::ExitCode};

use clap::Parser;
use tools::top::{run_once, run_tui, Args, TopError};

fn main() -> ExitCode {
    let args = Args::parse();
    let res = if args.once {
        let stdout = io::stdout();
        run_once(&args, &mut stdout.lock(), &mut |iface| {
            eprintln!("pgm-top: capturing on {iface} for {:?}", args.interval);
        })
        .map(drop)
    } else {
        run_tui(&args)
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pgm-top: {e}");
            ExitCode::from(match e {
                TopError::NoInput => 2,
                _ => 1,
            })
        }
    }
}
