//! Capture files through the pcap-file crate: reading classic pcap and pcapng (told apart by
//! their magic number) frame by frame, and writing classic pcap (for tests and fixtures).

use std::{
    fs::File,
    io::{BufRead, BufReader, Read, Write},
    path::Path,
    time::Duration,
};

use pcap_file::{
    pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter},
    pcapng::{blocks::interface_description::InterfaceDescriptionOption, Block, PcapNgReader},
    DataLink, PcapError,
};

use super::{
    decode::{decode_frame, supported_link, Record},
    error::DumpError,
};

/// A frame as read from the capture.
pub struct Captured<'a> {
    /// The framing of `data`.
    pub linktype: DataLink,
    /// Capture timestamp, seconds since the epoch.
    pub time: f64,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// Reads the capture at `path` and hands every frame to `on_frame` until it returns false.
pub fn for_each_frame(
    path: &Path,
    on_frame: impl FnMut(Captured<'_>) -> Result<bool, DumpError>,
) -> Result<(), DumpError> {
    let file = File::open(path).map_err(|err| DumpError::Io {
        path: path.to_path_buf(),
        err,
    })?;
    for_each_frame_in(path, file, on_frame)
}

/// [`for_each_frame`] on a capture read from `reader` (`path` names it in errors).
pub fn for_each_frame_in(
    path: &Path,
    reader: impl Read,
    mut on_frame: impl FnMut(Captured<'_>) -> Result<bool, DumpError>,
) -> Result<(), DumpError> {
    let io_err = |err| DumpError::Io {
        path: path.to_path_buf(),
        err,
    };
    let format = |reason: String| DumpError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let mut r = BufReader::new(reader);
    let magic = r.fill_buf().map_err(io_err)?;
    if magic.len() < 4 {
        return Err(format("file too short for a capture header".into()));
    }
    let head = [magic[0], magic[1], magic[2], magic[3]];
    let pcap_magics = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
    ];
    if head != [0x0a, 0x0d, 0x0d, 0x0a] && !pcap_magics.contains(&head) {
        return Err(format(format!(
            "unknown magic number {:#010x} (expected pcap or pcapng)",
            u32::from_be_bytes(head)
        )));
    }
    if head == [0x0a, 0x0d, 0x0d, 0x0a] {
        let mut ng = PcapNgReader::new(r).map_err(|e| format(e.to_string()))?;
        // (link type, timestamp units per second, timestamp offset) of each interface of the
        // current section.
        let mut ifaces: Vec<(DataLink, f64, u64)> = Vec::new();
        let mut n = 0u64;
        while let Some(block) = ng.next_block() {
            let block = block.map_err(|e| format(format!("after frame {n}: {e}")))?;
            let (iface, raw_ts, data) = match &block {
                Block::SectionHeader(_) => {
                    ifaces.clear();
                    continue;
                }
                Block::InterfaceDescription(idb) => {
                    let (resol, offset) = ts_params(&idb.options);
                    ifaces.push((idb.linktype, resol, offset));
                    continue;
                }
                Block::EnhancedPacket(p) => (p.interface_id, p.timestamp.as_nanos(), &p.data),
                Block::SimplePacket(p) => (0, 0, &p.data),
                Block::Packet(p) => (u32::from(p.interface_id), u128::from(p.timestamp), &p.data),
                _ => continue,
            };
            n += 1;
            let &(linktype, resol, offset) = ifaces
                .get(iface as usize)
                .ok_or_else(|| format(format!("frame {n} names unknown interface {iface}")))?;
            if !supported_link(linktype) {
                return Err(DumpError::LinkType {
                    path: path.to_path_buf(),
                    linktype,
                });
            }
            // pcap-file hands back the raw timestamp units as "nanoseconds"; scale them by the
            // interface's if_tsresol (default: microseconds).
            let time = raw_ts as f64 / resol + offset as f64;
            if !on_frame(Captured {
                linktype,
                time,
                data,
            })? {
                break;
            }
        }
    } else {
        let mut pr = PcapReader::new(r).map_err(|e| format(e.to_string()))?;
        let linktype = pr.header().datalink;
        if !supported_link(linktype) {
            return Err(DumpError::LinkType {
                path: path.to_path_buf(),
                linktype,
            });
        }
        let mut n = 0u64;
        while let Some(pkt) = pr.next_packet() {
            let pkt = pkt.map_err(|e| format(format!("after frame {n}: {e}")))?;
            n += 1;
            let go = on_frame(Captured {
                linktype,
                time: pkt.timestamp.as_secs_f64(),
                data: &pkt.data,
            })?;
            if !go {
                break;
            }
        }
    }
    Ok(())
}

/// Units per second and offset (seconds) of a pcapng interface's timestamps.
fn ts_params(options: &[InterfaceDescriptionOption<'_>]) -> (f64, u64) {
    let mut resol = 1e6;
    let mut offset = 0;
    for o in options {
        match o {
            InterfaceDescriptionOption::IfTsResol(r) => {
                let exp = i32::from(r & 0x7f);
                resol = if r & 0x80 == 0 {
                    10f64.powi(exp)
                } else {
                    2f64.powi(exp)
                };
            }
            InterfaceDescriptionOption::IfTsOffset(s) => offset = *s,
            _ => {}
        }
    }
    (resol, offset)
}

/// Every record of the capture at `path` (PGM, malformed PGM, unsupported notes; one per PGM
/// packet of a UDP GSO super-packet).
pub fn read_records(path: &Path, udp_ports: &[u16]) -> Result<Vec<Record>, DumpError> {
    let mut out = Vec::new();
    let mut n = 0;
    for_each_frame(path, |c| {
        n += 1;
        out.extend(decode_frame(c.linktype, n, c.time, c.data, udp_ports));
        Ok(true)
    })?;
    Ok(out)
}

/// Decodes a classic pcap from any reader (e.g. bytes in memory) into records, like
/// [`read_records`] does for a file.
pub fn records_from_pcap_reader<R: Read>(
    reader: R,
    udp_ports: &[u16],
) -> Result<Vec<Record>, pcap_file::PcapError> {
    let mut pr = PcapReader::new(reader)?;
    let linktype = pr.header().datalink;
    let mut out = Vec::new();
    let mut n = 0;
    while let Some(pkt) = pr.next_packet() {
        let pkt = pkt?;
        n += 1;
        out.extend(decode_frame(
            linktype,
            n,
            pkt.timestamp.as_secs_f64(),
            &pkt.data,
            udp_ports,
        ));
    }
    Ok(out)
}

/// Writes `frames` (timestamp, bytes) as a classic microsecond pcap with link type `link`.
pub fn write_pcap<W: Write>(
    out: W,
    link: DataLink,
    frames: &[(Duration, Vec<u8>)],
) -> Result<W, PcapError> {
    let header = PcapHeader {
        datalink: link,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(out, header)?;
    for (t, f) in frames {
        let len = u32::try_from(f.len()).unwrap_or(u32::MAX);
        w.write_packet(&PcapPacket::new(*t, len, f))?;
    }
    Ok(w.into_writer())
}
