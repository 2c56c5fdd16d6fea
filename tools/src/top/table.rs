//! [`TopTable`]: the sans-IO heart of `pgm-top`. It is fed [`Observation`]s with their
//! timestamps and answers with [`Row`]s; it never reads a clock or a socket, so the same table
//! serves a live capture, a capture file and the unit tests (and could serve another data
//! source, such as the tools' metrics endpoints).
//!
//! State is bounded: at most `max_sessions` sessions are kept, and a new one evicts the
//! session seen least recently, so forged traffic with ever new TSIs costs a fixed amount of
//! memory (under 2 KiB per session plus at most [`super::session::MAX_NAKERS`] addresses).

use std::collections::{BTreeMap, HashMap};

use pgm::wire::Tsi;

use super::{
    columns::Sort,
    session::{Observation, Origin, Row, Session},
};

/// Default bound on the sessions tracked.
pub const DEFAULT_MAX_SESSIONS: usize = 4096;

/// Counts of what fed the table that belongs to no session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Frames read from the capture.
    pub frames: u64,
    /// PGM packets that passed the filter.
    pub pgm: u64,
    /// Of the frames, PGM packets left out by `--group`/`--port`.
    pub filtered: u64,
    /// PGM packets that did not parse (truncated, bad lengths or options).
    pub malformed: u64,
    /// PGM packets with a wrong checksum, or ODATA/RDATA without one (receivers drop both).
    pub bad_checksum: u64,
    /// Packets that look like PGM but are not decoded (IP fragments).
    pub unsupported: u64,
    /// Sessions dropped to make room for new ones.
    pub evicted: u64,
}

/// One session and its place in the least-recently-seen order.
#[derive(Debug)]
struct Entry {
    session: Session,
    tick: u64,
}

/// Per-TSI statistics of PGM traffic (see the module docs).
#[derive(Debug)]
pub struct TopTable {
    window: f64,
    max_sessions: usize,
    sessions: HashMap<Tsi, Entry>,
    /// Tick of each session's last observation → its TSI: the first entry is the session to
    /// evict.
    recency: BTreeMap<u64, Tsi>,
    tick: u64,
    counters: Counters,
    latest: Option<f64>,
}

impl TopTable {
    /// A table with rates over `window` seconds keeping at most `max_sessions` (at least 1).
    pub fn new(window: f64, max_sessions: usize) -> TopTable {
        TopTable {
            window,
            max_sessions: max_sessions.max(1),
            sessions: HashMap::new(),
            recency: BTreeMap::new(),
            tick: 0,
            counters: Counters::default(),
            latest: None,
        }
    }

    /// Records `obs` for session `tsi` at `time` (seconds, any epoch); `origin` is given for
    /// packets the source itself sent.
    pub fn observe(&mut self, time: f64, tsi: Tsi, origin: Option<Origin>, obs: Observation) {
        if time.is_finite() {
            self.latest = Some(self.latest.map_or(time, |l| l.max(time)));
        }
        self.tick += 1;
        let tick = self.tick;
        if let Some(e) = self.sessions.get_mut(&tsi) {
            self.recency.remove(&e.tick);
            e.tick = tick;
        } else {
            if self.sessions.len() >= self.max_sessions {
                if let Some((_, old)) = self.recency.pop_first() {
                    self.sessions.remove(&old);
                    self.counters.evicted += 1;
                }
            }
            self.sessions.insert(
                tsi,
                Entry {
                    session: Session::new(tsi, time, self.window),
                    tick,
                },
            );
        }
        self.recency.insert(tick, tsi);
        if let Some(e) = self.sessions.get_mut(&tsi) {
            e.session.observe(time, origin, obs);
        }
    }

    /// The counters that belong to no session, for the feed to update.
    pub fn counters_mut(&mut self) -> &mut Counters {
        &mut self.counters
    }

    /// The counters that belong to no session.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Sessions tracked.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when no session is tracked.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// The rate window in seconds.
    pub fn window(&self) -> f64 {
        self.window
    }

    /// The latest timestamp observed: "now" for a capture file read to its end.
    pub fn latest(&self) -> Option<f64> {
        self.latest
    }

    /// Every session's row as of `now`, in `sort` order.
    pub fn rows(&self, now: f64, sort: Sort) -> Vec<Row> {
        let mut rows: Vec<Row> = self.sessions.values().map(|e| e.session.row(now)).collect();
        sort.apply(&mut rows);
        rows
    }

    /// One session's row as of `now`.
    pub fn row(&self, tsi: &Tsi, now: f64) -> Option<Row> {
        self.sessions.get(tsi).map(|e| e.session.row(now))
    }

    /// When session `tsi` was last seen.
    pub fn last_seen(&self, tsi: &Tsi) -> Option<f64> {
        self.sessions.get(tsi).map(|e| e.session.last_seen())
    }
}
