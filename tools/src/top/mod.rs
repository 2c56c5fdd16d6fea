//! `pgm-top`: a live terminal view of the PGM sessions on a network, one row per TSI, from a
//! passive capture on an interface (root or CAP_NET_RAW, like `pgm-dump --iface`) or from a
//! capture file; `--once` prints one report (text or `--json`) for scripts instead.
//!
//! - [`table`]: [`TopTable`], the sans-IO statistics fed [`Observation`]s with timestamps,
//!   bounded in the sessions it keeps; [`session`], [`rate`] and [`loss`] are its parts.
//! - [`feed`]: captured frames to observations, through `pgm-dump`'s decoder
//!   ([`crate::dump::decode`]) and filter. Another data source would be a second feed.
//! - [`columns`]: titles, cells and sort orders of the columns; [`report`]: the `--once`
//!   output; [`ui`]: the ratatui view and the keys; [`app`]: the loops that read the capture
//!   and drive the terminal.
//!
//! What the columns mean is in `docs/pgm-top.md`.

pub mod app;
pub mod columns;
pub mod feed;
pub mod loss;
pub mod rate;
pub mod report;
pub mod session;
pub mod table;
#[cfg(test)]
mod tests;
pub mod ui;

use std::{fmt::Write as _, io, net::IpAddr, path::PathBuf, time::Duration};

use clap::Parser;

pub use self::{
    app::{run_once, run_tui},
    columns::{Column, Sort},
    feed::PacketFeed,
    report::Report,
    session::{Observation, Origin, Row},
    table::{Counters, TopTable, DEFAULT_MAX_SESSIONS},
};
use crate::dump::{DumpError, Filter, DEFAULT_UDP_PORT};

/// Command line of `pgm-top`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "pgm-top",
    version,
    about = "Live per-session view of PGM/EPGM traffic: rates, repairs, NAKs, loss",
    long_about = "Watch the PGM sessions on a network: one row per transport session (TSI: the \
                  source's GSI and data-source port) with its ODATA rate, RDATA, the NAKs and \
                  NCFs for it, the distinct receivers NAKing, sqns lost before the capture \
                  point, SPMs and when it was last seen.\n\n\
                  Captures passively on an interface (--iface; needs root or CAP_NET_RAW) or \
                  reads a pcap/pcapng capture (--read). Raw PGM (IP protocol 113) is always \
                  decoded, EPGM (PGM in UDP) on the --udp-port ports and on --port. IPv4 \
                  only.\n\n\
                  Keys: left/right (or < >) change the sort column, r reverses it, q (or Esc, \
                  Ctrl-C) quits.\n\n\
                  With --once, captures for --interval seconds (or reads the whole file), \
                  prints one report (a text table, or one JSON document with --json) and \
                  exits.",
    after_help = "Examples:\n  \
                  sudo pgm-top --iface eth0\n  \
                  sudo pgm-top --iface eth0 --group 239.192.1.1 --port 7500 --sort nak\n  \
                  pgm-top --read capture.pcap --udp-port 7500\n  \
                  sudo pgm-top --iface eth0 --once --json --interval 5 | jq '.sessions[]'"
)]
pub struct Args {
    /// Capture live on this interface (e.g. eth0, lo; needs root or CAP_NET_RAW).
    #[arg(long, short = 'i', value_name = "IFACE", conflicts_with = "read")]
    pub iface: Option<String>,
    /// Read a pcap or pcapng capture instead (e.g. from `tcpdump -w FILE`).
    #[arg(long, short = 'r', value_name = "FILE")]
    pub read: Option<PathBuf>,
    /// Only packets to or from this IP address (the group, or a host).
    #[arg(long, value_name = "ADDR")]
    pub group: Option<IpAddr>,
    /// Only packets with this PGM source or destination port (or UDP port); EPGM on this UDP
    /// port is decoded too.
    #[arg(long, value_name = "P")]
    pub port: Option<u16>,
    /// UDP port carrying EPGM (repeatable; source or destination port).
    #[arg(long = "udp-port", value_name = "PORT", default_values_t = [DEFAULT_UDP_PORT])]
    pub udp_ports: Vec<u16>,
    /// Rate window in seconds, and how long --once captures live.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = parse_interval)]
    pub interval: Duration,
    /// Sort by this column (numbers largest first, text A to Z, last most recent first).
    #[arg(long, value_enum, value_name = "COLUMN", default_value = "rate")]
    pub sort: Column,
    /// Reverse the sort order.
    #[arg(long)]
    pub reverse: bool,
    /// Most sessions tracked; a new one evicts the one seen least recently.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_SESSIONS,
          value_parser = parse_max_sessions)]
    pub max_sessions: usize,
    /// Print one report and exit instead of the live view.
    #[arg(long)]
    pub once: bool,
    /// With --once: the report as one JSON document.
    #[arg(long, requires = "once")]
    pub json: bool,
}

impl Args {
    /// The feed of this command line: filter and UDP ports (`--port` included).
    pub fn feed(&self) -> PacketFeed {
        let mut udp_ports = self.udp_ports.clone();
        if let Some(p) = self.port {
            if !udp_ports.contains(&p) {
                udp_ports.push(p);
            }
        }
        PacketFeed {
            udp_ports,
            filter: Filter {
                group: self.group,
                port: self.port,
            },
        }
    }

    /// The sort order asked for.
    pub fn sort(&self) -> Sort {
        Sort {
            column: self.sort,
            reverse: self.reverse,
        }
    }

    /// An empty table for this command line.
    pub fn table(&self) -> TopTable {
        TopTable::new(self.interval.as_secs_f64(), self.max_sessions)
    }

    /// What is watched, for the title line: `eth0`, `file.pcap`, with the filter.
    pub fn describe_input(&self) -> String {
        let mut s = match (&self.iface, &self.read) {
            (Some(i), _) => i.clone(),
            (None, Some(p)) => p.display().to_string(),
            (None, None) => String::new(),
        };
        if let Some(g) = self.group {
            let _ = write!(s, " group {g}");
        }
        if let Some(p) = self.port {
            let _ = write!(s, " port {p}");
        }
        s
    }
}

/// `--interval`: seconds, fractions allowed, from 10 ms to an hour.
fn parse_interval(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|e| format!("not a number of seconds: {e}"))?;
    if !(0.01..=3600.0).contains(&secs) {
        return Err(format!("{secs} s is out of range (0.01 to 3600)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `--max-sessions`: 1 to a million.
fn parse_max_sessions(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("not a count: {e}"))?;
    if !(1..=1_000_000).contains(&n) {
        return Err(format!("{n} is out of range (1 to 1000000)"));
    }
    Ok(n)
}

/// Why `pgm-top` could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopError {
    /// Neither `--iface` nor `--read`.
    #[error(
        "nothing to watch: give --iface IFACE to capture live (needs root or CAP_NET_RAW) \
         or --read FILE to read a pcap/pcapng capture (see pgm-top --help)"
    )]
    NoInput,
    /// Opening the packet socket was refused.
    #[error(
        "cannot capture on {iface}: {err}. Live capture needs root or CAP_NET_RAW: run \
         pgm-top as root (sudo pgm-top ...), or give it the capability \
         (sudo setcap cap_net_raw+ep \"$(command -v pgm-top)\"), or read a capture file with \
         --read FILE"
    )]
    NotPermitted {
        /// The interface.
        iface: String,
        /// The OS error.
        err: io::Error,
    },
    /// The capture could not be opened or read (no such interface, unreadable file…).
    #[error(transparent)]
    Capture(DumpError),
    /// The live view needs a terminal.
    #[error(
        "the live view needs a terminal on stdout; use --once (with --json for JSON) to \
         print one report instead"
    )]
    NotATerminal,
    /// Drawing on the terminal or writing the report failed.
    #[error("terminal: {0}")]
    Terminal(io::Error),
}

impl From<DumpError> for TopError {
    fn from(e: DumpError) -> Self {
        match e {
            DumpError::NotPermitted { iface, err } => TopError::NotPermitted { iface, err },
            other => TopError::Capture(other),
        }
    }
}
