//! The wire feed of a [`TopTable`]: captured frames (from a capture file or a live interface)
//! decoded by `pgm-dump`'s decoder ([`decode_frame`]), filtered by its [`Filter`], parsed by
//! `pgm::wire` and turned into [`Observation`]s. Bad packets are counted, never fatal.

use pcap_file::DataLink;
use pgm::wire::{Body, Error as WireError, PacketRepr};

use super::{
    session::{Observation, Origin},
    table::TopTable,
};
use crate::dump::{decode_frame, Filter, Record, What};

/// Turns captured frames into observations of a table.
#[derive(Debug, Clone, Default)]
pub struct PacketFeed {
    /// UDP ports carrying encapsulated PGM.
    pub udp_ports: Vec<u16>,
    /// Which packets count.
    pub filter: Filter,
}

impl PacketFeed {
    /// Decodes one captured frame (`linktype` framing, `time` in seconds) into `table`.
    pub fn frame(&self, table: &mut TopTable, linktype: DataLink, time: f64, frame: &[u8]) {
        let counters = table.counters_mut();
        counters.frames += 1;
        let frame_no = counters.frames;
        for rec in decode_frame(linktype, frame_no, time, frame, &self.udp_ports) {
            self.record(table, &rec);
        }
    }

    /// Counts one decoded record into `table`.
    pub fn record(&self, table: &mut TopTable, rec: &Record) {
        if !self.filter.matches(rec) {
            table.counters_mut().filtered += 1;
            return;
        }
        let (encap, data) = match &rec.what {
            What::Pgm { encap, data } => (*encap, data),
            What::Malformed { .. } => {
                table.counters_mut().malformed += 1;
                return;
            }
            What::Unsupported(_) => {
                table.counters_mut().unsupported += 1;
                return;
            }
        };
        let repr = match PacketRepr::parse_verified(data) {
            Ok(r) => r,
            Err(WireError::BadChecksum | WireError::MissingChecksum) => {
                table.counters_mut().bad_checksum += 1;
                return;
            }
            Err(_) => {
                table.counters_mut().malformed += 1;
                return;
            }
        };
        table.counters_mut().pgm += 1;
        let listed = |r: &PacketRepr<'_>| {
            1 + r
                .options
                .nak_list
                .map_or(0, |l| u32::try_from(l.len()).unwrap_or(u32::MAX))
        };
        let obs = match repr.body {
            Body::Odata(d) => Observation::Odata {
                sqn: d.sqn,
                tsdu: repr.payload.len(),
            },
            Body::Rdata(d) => Observation::Rdata {
                sqn: d.sqn,
                tsdu: repr.payload.len(),
            },
            Body::Nak(_) => Observation::Nak {
                sqns: listed(&repr),
                receiver: rec.src,
            },
            Body::Nnak(_) => Observation::Nnak,
            Body::Ncf(_) => Observation::Ncf {
                sqns: listed(&repr),
            },
            Body::Spm(_) => Observation::Spm,
            Body::Poll(_) | Body::Polr(_) | Body::Spmr | Body::Ack(_) | Body::Unknown(_) => {
                Observation::Other
            }
        };
        // Downstream packets come from the source itself (or a DLR speaking for it).
        let origin = (!repr.packet_type().is_upstream()
            && matches!(repr.body, Body::Odata(_) | Body::Rdata(_) | Body::Spm(_)))
        .then_some(Origin {
            source: rec.src,
            group: rec.dst,
            encap,
        });
        table.observe(rec.time, repr.tsi(), origin, obs);
    }
}
