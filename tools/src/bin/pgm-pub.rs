//! `pgm-pub`: see `pgm-pub --help` and [`tools::publish`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tools::publish::pub_main(&tools::publish::PubArgs::parse())
}
