//! `pgm-pub`: see `pgm-pub --help` and [`tools::pubsub_cli`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tools::pubsub_cli::pub_main(&tools::pubsub_cli::PubArgs::parse())
}
