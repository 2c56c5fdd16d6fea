//! `pgm-spray`: sends garbage and forged PGM packets at a session (see `netns_tests::spray`).
//!
//! ```text
//! pgm-spray --session raw|udp --local ADDR --source ADDR [--receivers A,B]
//!           [--group G] [--port P] --kinds random,truncated,badsum,badopts,nak,spm-foreign,…
//!           [--pps N] [--duration SECS] [--seed N] [--own-jump AT_SQN:JUMP]
//! ```
//!
//! Prints "READY" on stderr once its sockets are open, and one JSON summary line on stdout when
//! the duration is over or on SIGTERM/SIGINT.

use std::process::ExitCode;

use netns_tests::spray::{install_signal_handlers, parse_args, Sprayer};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match parse_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pgm-spray: {e}");
            return ExitCode::from(2);
        }
    };
    install_signal_handlers();
    let mut sprayer = match Sprayer::new(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pgm-spray: opening sockets: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("READY");
    let summary = sprayer.run();
    println!("{summary}");
    ExitCode::SUCCESS
}
