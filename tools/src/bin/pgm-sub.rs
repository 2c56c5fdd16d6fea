//! `pgm-sub`: see `pgm-sub --help` and [`tools::pubsub_cli`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tools::pubsub_cli::sub_main(&tools::pubsub_cli::SubArgs::parse())
}
