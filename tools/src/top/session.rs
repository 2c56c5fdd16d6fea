//! The statistics of one transport session (one TSI), fed [`Observation`]s.

use std::net::IpAddr;

use pgm::wire::{SeqNo, Tsi};

use super::{
    loss::{GapTracker, Loss},
    rate::{Rate, RateWindow},
};
use crate::dump::Encap;

/// Most distinct NAK sources remembered per session; more show as "at least this many".
pub const MAX_NAKERS: usize = 256;

/// What a data source saw of a session at one instant. The wire feed
/// ([`super::feed::PacketFeed`]) makes one per PGM packet; another source (e.g. a tool's
/// metrics) would make them from its counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// Original data from the source.
    Odata {
        /// Its sequence number.
        sqn: SeqNo,
        /// TSDU bytes.
        tsdu: usize,
    },
    /// Repair data from the source (or a DLR).
    Rdata {
        /// Its sequence number.
        sqn: SeqNo,
        /// TSDU bytes.
        tsdu: usize,
    },
    /// A NAK for the session from `receiver` (the NAK's IP source) asking for `sqns` sqns
    /// (1 + the length of its OPT_NAK_LIST).
    Nak {
        /// Sqns asked for.
        sqns: u32,
        /// Who sent it.
        receiver: IpAddr,
    },
    /// A null NAK (from a DLR).
    Nnak,
    /// A NAK confirmation for `sqns` sqns.
    Ncf {
        /// Sqns confirmed.
        sqns: u32,
    },
    /// A source path message.
    Spm,
    /// SPMR, POLL, POLR, ACK or a type this tool does not know.
    Other,
}

/// Where the source of a session was seen: from its downstream packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// IP source of the source's packets.
    pub source: IpAddr,
    /// IP destination of its packets (the group).
    pub group: IpAddr,
    /// How it was carried.
    pub encap: Encap,
}

/// The state of one session.
#[derive(Debug, Clone)]
pub struct Session {
    tsi: Tsi,
    origin: Option<Origin>,
    first_seen: f64,
    last_seen: f64,
    odata: u64,
    odata_bytes: u64,
    rdata: u64,
    rdata_bytes: u64,
    naks: u64,
    nak_sqns: u64,
    nnaks: u64,
    ncfs: u64,
    spms: u64,
    other: u64,
    odata_rate: RateWindow,
    nak_rate: RateWindow,
    gaps: GapTracker,
    nakers: Vec<IpAddr>,
    nakers_capped: bool,
}

impl Session {
    /// A session first seen at `time`, rates over `window` seconds.
    pub fn new(tsi: Tsi, time: f64, window: f64) -> Session {
        Session {
            tsi,
            origin: None,
            first_seen: time,
            last_seen: time,
            odata: 0,
            odata_bytes: 0,
            rdata: 0,
            rdata_bytes: 0,
            naks: 0,
            nak_sqns: 0,
            nnaks: 0,
            ncfs: 0,
            spms: 0,
            other: 0,
            odata_rate: RateWindow::new(window),
            nak_rate: RateWindow::new(window),
            gaps: GapTracker::default(),
            nakers: Vec::new(),
            nakers_capped: false,
        }
    }

    /// Records `obs` seen at `time`; `origin` is set for packets the source sent.
    pub fn observe(&mut self, time: f64, origin: Option<Origin>, obs: Observation) {
        if time.is_finite() {
            self.last_seen = self.last_seen.max(time);
            self.first_seen = self.first_seen.min(time);
        }
        if origin.is_some() {
            self.origin = origin;
        }
        match obs {
            Observation::Odata { sqn, tsdu } => {
                self.odata += 1;
                self.odata_bytes += tsdu as u64;
                self.odata_rate.add(time, 1, tsdu as u64);
                self.gaps.odata(sqn);
            }
            Observation::Rdata { sqn, tsdu } => {
                self.rdata += 1;
                self.rdata_bytes += tsdu as u64;
                self.gaps.rdata(sqn);
            }
            Observation::Nak { sqns, receiver } => {
                self.naks += 1;
                self.nak_sqns += u64::from(sqns);
                self.nak_rate.add(time, 1, 0);
                if !self.nakers.contains(&receiver) {
                    if self.nakers.len() < MAX_NAKERS {
                        self.nakers.push(receiver);
                    } else {
                        self.nakers_capped = true;
                    }
                }
            }
            Observation::Nnak => self.nnaks += 1,
            Observation::Ncf { sqns: _ } => self.ncfs += 1,
            Observation::Spm => self.spms += 1,
            Observation::Other => self.other += 1,
        }
    }

    /// The row of this session as of `now`.
    pub fn row(&self, now: f64) -> Row {
        let odata = self.odata_rate.rate(now);
        let Rate { events: naks, .. } = self.nak_rate.rate(now);
        let Loss {
            lead,
            gaps,
            repaired,
            lost,
            resets,
        } = self.gaps.loss();
        Row {
            tsi: self.tsi,
            source: self.origin.map(|o| o.source),
            group: self.origin.map(|o| o.group),
            encap: self.origin.map(|o| o.encap.name()),
            odata_per_s: odata.events,
            mbit_per_s: odata.bytes * 8.0 / 1e6,
            naks_per_s: naks,
            odata: self.odata,
            odata_bytes: self.odata_bytes,
            rdata: self.rdata,
            rdata_bytes: self.rdata_bytes,
            naks: self.naks,
            nak_sqns: self.nak_sqns,
            nnaks: self.nnaks,
            ncfs: self.ncfs,
            spms: self.spms,
            other: self.other,
            lead_sqn: lead.map(|s| s.0),
            gaps,
            repaired,
            lost,
            resets,
            nakers: self.nakers.len() as u64,
            nakers_capped: self.nakers_capped,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            idle_s: (now - self.last_seen).max(0.0),
        }
    }

    /// When a packet of the session was last seen.
    pub fn last_seen(&self) -> f64 {
        self.last_seen
    }
}

/// One session's numbers at one instant: a row of the table and of the JSON report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Row {
    /// The session: source GSI and data-source port.
    #[serde(serialize_with = "as_string")]
    pub tsi: Tsi,
    /// IP source of the source's packets (none if only NAKs for it were seen).
    pub source: Option<IpAddr>,
    /// IP destination of the source's packets (the group).
    pub group: Option<IpAddr>,
    /// `"raw"` or `"udp"`, from the source's packets.
    pub encap: Option<&'static str>,
    /// ODATA packets per second over the window.
    pub odata_per_s: f64,
    /// ODATA TSDU megabits per second over the window.
    pub mbit_per_s: f64,
    /// NAK packets per second over the window.
    pub naks_per_s: f64,
    /// ODATA packets seen.
    pub odata: u64,
    /// Their TSDU bytes.
    pub odata_bytes: u64,
    /// RDATA packets seen.
    pub rdata: u64,
    /// Their TSDU bytes.
    pub rdata_bytes: u64,
    /// NAK packets addressed to the session.
    pub naks: u64,
    /// Sqns those NAKs asked for.
    pub nak_sqns: u64,
    /// Null NAKs.
    pub nnaks: u64,
    /// NCF packets.
    pub ncfs: u64,
    /// SPM packets.
    pub spms: u64,
    /// SPMR, POLL, POLR, ACK and unknown types.
    pub other: u64,
    /// Highest ODATA sqn seen.
    pub lead_sqn: Option<u32>,
    /// Sqns skipped by ODATA (see [`super::loss`]).
    pub gaps: u64,
    /// Of those, seen since in RDATA or late ODATA.
    pub repaired: u64,
    /// Skipped and not seen since.
    pub lost: u64,
    /// Sequence jumps too long to count as loss.
    pub resets: u64,
    /// Distinct IP sources of NAKs.
    pub nakers: u64,
    /// True when more NAK sources were seen than [`MAX_NAKERS`].
    pub nakers_capped: bool,
    /// Time of the first packet (seconds since the epoch).
    pub first_seen: f64,
    /// Time of the last packet.
    pub last_seen: f64,
    /// Seconds since the last packet.
    pub idle_s: f64,
}

fn as_string<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}
