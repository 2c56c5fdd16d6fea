//! `pgm-send`: see `pgm-send --help` and [`tools::send`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tools::send::send_main(&tools::send::SendArgs::parse())
}
