//! The `--once` report: one JSON document (`--json`) or a plain text table.

use std::net::IpAddr;

use super::{
    columns::{text_table, Sort},
    session::Row,
    table::{Counters, TopTable},
};

/// The JSON document `pgm-top --once --json` prints.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// `"pgm-top"`.
    pub tool: &'static str,
    /// The interface captured on, if live.
    pub iface: Option<String>,
    /// The capture file read, if any.
    pub read: Option<String>,
    /// `--group`, if given.
    pub group: Option<IpAddr>,
    /// `--port`, if given.
    pub port: Option<u16>,
    /// UDP ports decoded as EPGM.
    pub udp_ports: Vec<u16>,
    /// The rate window in seconds.
    pub window_s: f64,
    /// The instant the rates are computed at (seconds since the epoch): the end of the live
    /// capture, or the last packet of the file.
    pub time: f64,
    /// The `--sort` column of `sessions`.
    pub sort: &'static str,
    /// True if the sort order is reversed.
    pub reverse: bool,
    /// Packet counts outside sessions.
    pub counters: Counters,
    /// Sessions tracked (at most `max_sessions`).
    pub tracked: usize,
    /// The bound on sessions tracked.
    pub max_sessions: usize,
    /// One row per session.
    pub sessions: Vec<Row>,
}

impl Report {
    /// The report of `table` as of `now`; the caller fills in the input fields.
    pub fn new(table: &TopTable, now: f64, sort: Sort, max_sessions: usize) -> Report {
        Report {
            tool: "pgm-top",
            iface: None,
            read: None,
            group: None,
            port: None,
            udp_ports: Vec::new(),
            window_s: table.window(),
            time: now,
            sort: sort.column.name(),
            reverse: sort.reverse,
            counters: table.counters(),
            tracked: table.len(),
            max_sessions,
            sessions: table.rows(now, sort),
        }
    }

    /// The JSON document, one line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The text table with a one-line summary under it.
    pub fn to_text(&self) -> String {
        let c = self.counters;
        format!(
            "{}{} sessions; frames {}, pgm {}, malformed {}, bad checksum {}, unsupported {}, \
             filtered {}, evicted {}\n",
            text_table(&self.sessions),
            self.tracked,
            c.frames,
            c.pgm,
            c.malformed,
            c.bad_checksum,
            c.unsupported,
            c.filtered,
            c.evicted
        )
    }
}
