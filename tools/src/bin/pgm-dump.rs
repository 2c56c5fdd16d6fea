//! `pgm-dump`: print the PGM/EPGM packets of a pcap/pcapng capture (see `tools::dump`).

use std::io::{self, BufWriter};

use clap::Parser;
use tools::dump::{run, Args};

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    run(&args, &mut out)?;
    Ok(())
}
