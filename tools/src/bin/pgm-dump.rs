//! `pgm-dump`: print the PGM/EPGM packets of a pcap/pcapng capture or of a live interface (see
//! `tools::dump`).

use std::io::{self, BufWriter};

use clap::Parser;
use tools::dump::{run_with, Args};

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let summary = run_with(&args, &mut out, &mut |iface| {
        eprintln!("pgm-dump: listening on {iface}");
    })?;
    if let Some(iface) = &args.iface {
        eprintln!(
            "pgm-dump: {} PGM packets printed, {} filtered out, {} frames on {iface}",
            summary.pgm, summary.filtered, summary.frames
        );
    }
    Ok(())
}
