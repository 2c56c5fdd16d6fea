//! `pgm-dump`: print the PGM packets of a capture file or of a live interface (`--iface`), one
//! per line, as text or JSON, like a small tshark.
//!
//! - [`decode`]: captured bytes to [`Record`]s (link layer, IP, UDP, UDP GSO super-packets).
//! - [`render`]: a record's text line and JSON object, both from one description of the fields.
//! - [`print`](mod@print): the one path from a frame to an output line (decode, `--group`/`--port`
//!   filter, render, `--count`), for both inputs.
//! - [`pcap`]: reading pcap/pcapng files, writing pcap files.
//! - [`live`]: live capture on an interface.
//!
//! Malformed PGM packets are reported and the dump goes on.

pub mod decode;
pub mod error;
pub mod live;
pub mod pcap;
pub mod print;
pub mod render;
#[cfg(test)]
mod tests;

use std::{
    io::{Read, Write},
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use clap::Parser;

pub use self::{
    decode::{decode_frame, Encap, Gso, Record, What},
    error::DumpError,
    pcap::{read_records, records_from_pcap_reader},
    print::{Filter, Output, Printer, Summary},
};

/// The UDP encapsulation port assumed when none is given (OpenPGM's `udp_encap_ucast_port`).
pub const DEFAULT_UDP_PORT: u16 = 3055;

/// Command line of `pgm-dump`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "pgm-dump",
    version,
    about = "Print the PGM/EPGM packets of a capture, like tcpdump",
    long_about = "Print the PGM packets (raw IP protocol 113, and UDP-encapsulated EPGM on the \
                  --udp-port ports) of a pcap or pcapng capture, or captured live on an \
                  interface (needs root or CAP_NET_RAW), one line per packet, or one JSON \
                  object per packet with --json. IPv4 and IPv6 (IP fragments are noted, not \
                  reassembled).\n\n\
                  A UDP GSO super-packet (a capture on a host sending with UDP_SEGMENT, e.g. on \
                  lo: one UDP datagram holding several PGM packets of one length back to back, \
                  the last possibly shorter) is split and each PGM packet printed on its own, \
                  marked \"[gso I/N]\" in text and \"gso\": {\"index\": I, \"of\": N} in \
                  JSON (I counts from 1). A payload that does not split exactly into complete \
                  PGM packets is reported as one MALFORMED packet."
)]
pub struct Args {
    /// Read packets from this pcap or pcapng file (e.g. from `tcpdump -w FILE`).
    #[arg(long, value_name = "FILE", required_unless_present = "iface")]
    pub pcap: Option<PathBuf>,
    /// Capture live on this interface (e.g. `eth0`, `lo`; needs root or CAP_NET_RAW).
    #[arg(long, value_name = "IFACE", conflicts_with = "pcap")]
    pub iface: Option<String>,
    /// UDP port carrying encapsulated PGM (repeatable; matches source or destination port).
    #[arg(long = "udp-port", value_name = "PORT", default_values_t = [DEFAULT_UDP_PORT])]
    pub udp_ports: Vec<u16>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many PGM packets printed (malformed ones included).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Only packets to or from this IP address (the group, or a host's unicast address).
    #[arg(long, value_name = "ADDR")]
    pub group: Option<IpAddr>,
    /// Only packets with this PGM source or destination port, or UDP port.
    #[arg(long, value_name = "P")]
    pub port: Option<u16>,
    /// Live capture: stop after this many seconds (fractions allowed).
    #[arg(long, value_name = "SECS", conflicts_with = "pcap", value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

impl Args {
    /// The `--group`/`--port` filter.
    pub fn filter(&self) -> Filter {
        Filter {
            group: self.group,
            port: self.port,
        }
    }

    /// What to print and when to stop.
    pub fn output(&self) -> Output {
        Output {
            udp_ports: self.udp_ports.clone(),
            json: self.json,
            count: self.count,
            filter: self.filter(),
            flush_each: self.iface.is_some(),
        }
    }
}

/// `--duration`: non-negative seconds, fractions allowed.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|e| format!("not a number of seconds: {e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("not a duration: {e}"))
}

/// Dumps the capture at `path` to `out` as text or JSON lines; stops after `count` PGM packets.
///
/// A closed output (e.g. piped into `head`) ends the dump quietly.
pub fn dump(
    path: &Path,
    udp_ports: &[u16],
    json: bool,
    count: Option<u64>,
    out: &mut dyn Write,
) -> Result<Summary, DumpError> {
    let opts = Output {
        udp_ports: udp_ports.to_vec(),
        json,
        count,
        ..Output::default()
    };
    dump_with(path, &opts, out)
}

/// Dumps the capture at `path` to `out` with the output options `opts` (filter included).
pub fn dump_with(path: &Path, opts: &Output, out: &mut dyn Write) -> Result<Summary, DumpError> {
    let mut p = Printer::new(opts, out);
    if !p.done() {
        pcap::for_each_frame(path, |c| {
            p.frame(c.linktype, c.time, c.data)?;
            Ok(!p.done())
        })?;
    }
    p.finish()
}

/// [`dump_with`] on a pcap or pcapng capture read from `reader` (`path` names it in errors):
/// the whole path from capture bytes to output lines, which the `dump_capture_file` fuzz target
/// drives with bytes in memory. Lines already written stay written when an error ends the dump.
pub fn dump_reader(
    path: &Path,
    reader: impl Read,
    opts: &Output,
    out: &mut dyn Write,
) -> Result<Summary, DumpError> {
    let mut p = Printer::new(opts, out);
    if !p.done() {
        pcap::for_each_frame_in(path, reader, |c| {
            p.frame(c.linktype, c.time, c.data)?;
            Ok(!p.done())
        })?;
    }
    p.finish()
}

/// Runs `pgm-dump` with parsed `args`, writing to `out`.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<Summary, DumpError> {
    run_with(args, out, &mut |_| {})
}

/// [`run`], calling `on_ready(interface)` once a live capture is listening (the binary says so
/// on stderr, like tcpdump; a test waits for it before sending).
pub fn run_with(
    args: &Args,
    out: &mut dyn Write,
    on_ready: &mut dyn FnMut(&str),
) -> Result<Summary, DumpError> {
    let opts = args.output();
    if let Some(iface) = &args.iface {
        return live::capture(iface, args.duration, &opts, out, on_ready);
    }
    let path = args.pcap.as_deref().ok_or(DumpError::NoInput)?;
    dump_with(path, &opts, out)
}
