//! `md-demo`: market-data fan-out over EPGM on the loopback, verified end to end.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let args = tools::md_demo::DemoArgs::parse();
    if !tools::md_demo::run(&args)? {
        std::process::exit(1);
    }
    Ok(())
}
