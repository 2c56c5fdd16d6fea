//! `pgm-recv`: see `pgm-recv --help` and [`tools::recv`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tools::recv::recv_main(&tools::recv::RecvArgs::parse())
}
