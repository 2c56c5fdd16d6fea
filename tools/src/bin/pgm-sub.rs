//! `pgm-sub`: see `pgm-sub --help` and [`tools::subscribe`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tools::subscribe::sub_main(&tools::subscribe::SubArgs::parse())
}
