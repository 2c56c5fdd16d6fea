//! `pgm-ping`: see `pgm-ping --help` and [`tools::ping`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tools::ping::ping_main(&tools::ping::PingArgs::parse())
}
