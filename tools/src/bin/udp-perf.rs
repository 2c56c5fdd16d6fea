//! `udp-perf`: see `udp-perf --help` and [`tools::udp_perf`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tools::udp_perf::udp_perf_main(&tools::udp_perf::UdpPerfArgs::parse())
}
