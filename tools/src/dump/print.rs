//! The one path from a captured frame to an output line, shared by a capture file and a live
//! capture: [`decode_frame`], the [`Filter`], the text or JSON line, `--count`.

use std::{
    io::{self, Write},
    net::IpAddr,
};

use pcap_file::DataLink;
use pgm::wire::Packet;

use super::{
    decode::{decode_frame, Encap, Record, What},
    error::DumpError,
};

/// Counts of what a dump saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Frames read from the capture.
    pub frames: u64,
    /// PGM packets reported (malformed ones included).
    pub pgm: u64,
    /// Of which malformed.
    pub malformed: u64,
    /// Unsupported-packet notes.
    pub unsupported: u64,
    /// PGM packets and notes left out by `--group`/`--port`.
    pub filtered: u64,
}

/// `--group`/`--port`: which packets to print. The default passes everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter {
    /// The IP source or destination must be this address.
    pub group: Option<IpAddr>,
    /// The PGM source or destination port, or the UDP source or destination port, must be this.
    pub port: Option<u16>,
}

impl Filter {
    /// True if `rec` passes. A packet whose PGM header is unreadable matches `--port` only by
    /// its UDP ports.
    pub fn matches(&self, rec: &Record) -> bool {
        if let Some(g) = self.group {
            if rec.src != g && rec.dst != g {
                return false;
            }
        }
        let Some(port) = self.port else {
            return true;
        };
        let (encap, data) = match &rec.what {
            What::Pgm { encap, data } => (*encap, Some(data)),
            What::Malformed { encap, .. } => (*encap, None),
            What::Unsupported(_) => return false,
        };
        if let Encap::Udp { sport, dport } = encap {
            if sport == port || dport == port {
                return true;
            }
        }
        data.and_then(|d| Packet::new_checked(&d[..]).ok())
            .is_some_and(|h| h.sport() == port || h.dport() == port)
    }
}

/// What to print and when to stop, for a pcap file and a live capture alike.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// UDP ports carrying encapsulated PGM.
    pub udp_ports: Vec<u16>,
    /// JSON lines instead of text.
    pub json: bool,
    /// Stop after this many PGM packets printed.
    pub count: Option<u64>,
    /// Which packets to print.
    pub filter: Filter,
    /// Flush after every line (live capture: lines appear as packets arrive).
    pub flush_each: bool,
}

/// The one path from a captured frame to an output line: [`decode_frame`], the [`Filter`], the
/// text or JSON line, `--count`. Used by [`super::dump`] and by [`super::live::capture`].
pub struct Printer<'a> {
    opts: &'a Output,
    out: &'a mut dyn Write,
    summary: Summary,
    /// The reader of the output went away (e.g. `| head`): stop quietly.
    closed: bool,
}

impl<'a> Printer<'a> {
    /// A printer writing to `out`.
    pub fn new(opts: &'a Output, out: &'a mut dyn Write) -> Self {
        Printer {
            opts,
            out,
            summary: Summary::default(),
            closed: false,
        }
    }

    /// True once `--count` packets are printed or the output is closed: read no more frames.
    pub fn done(&self) -> bool {
        self.closed || matches!(self.opts.count, Some(c) if self.summary.pgm >= c)
    }

    /// Counts so far.
    pub fn summary(&self) -> Summary {
        self.summary
    }

    /// Decodes, filters and prints one captured frame (`linktype` framing, `time` in seconds
    /// since the epoch). Frames are numbered from 1 in the order they are given. A UDP GSO
    /// super-packet prints one line per PGM packet (`--count` may stop inside it).
    pub fn frame(&mut self, linktype: DataLink, time: f64, frame: &[u8]) -> Result<(), DumpError> {
        if self.done() {
            return Ok(());
        }
        self.summary.frames += 1;
        let records = decode_frame(
            linktype,
            self.summary.frames,
            time,
            frame,
            &self.opts.udp_ports,
        );
        for rec in &records {
            if self.done() {
                break;
            }
            self.record(rec)?;
        }
        Ok(())
    }

    /// Filters, counts and prints one record.
    fn record(&mut self, rec: &Record) -> Result<(), DumpError> {
        let s = &mut self.summary;
        if !self.opts.filter.matches(rec) {
            s.filtered += 1;
            return Ok(());
        }
        if rec.is_pgm() {
            s.pgm += 1;
            let bad = match rec.parse() {
                Some(r) => r.is_err(),
                None => true,
            };
            s.malformed += u64::from(bad);
        } else {
            s.unsupported += 1;
        }
        let line = if self.opts.json {
            rec.to_json().to_string()
        } else {
            rec.to_text()
        };
        let res = writeln!(self.out, "{line}").and_then(|()| {
            if self.opts.flush_each {
                self.out.flush()
            } else {
                Ok(())
            }
        });
        self.output_result(res)
    }

    /// Flushes the output and returns the counts.
    pub fn finish(mut self) -> Result<Summary, DumpError> {
        let res = self.out.flush();
        self.output_result(res)?;
        Ok(self.summary)
    }

    /// A closed pipe ends the dump quietly; other write errors are errors.
    fn output_result(&mut self, res: io::Result<()>) -> Result<(), DumpError> {
        match res {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other.map_err(DumpError::Output),
        }
    }
}
