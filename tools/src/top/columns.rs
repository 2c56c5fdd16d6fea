//! The columns of the table: titles, widths, cell text and sort order, shared by the
//! terminal view and the `--once` text report.

use std::cmp::Ordering;

use clap::ValueEnum;

use super::session::Row;

/// A column of the table (`--sort` takes the lowercase names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Column {
    /// Source GSI (dotted) and data-source port.
    Tsi,
    /// IP address the source sends from.
    Source,
    /// ODATA packets per second over the window.
    Rate,
    /// ODATA TSDU Mbit/s over the window.
    Mbps,
    /// ODATA packets.
    Odata,
    /// RDATA packets.
    Rdata,
    /// NAK packets for the session.
    Nak,
    /// NCF packets.
    Ncf,
    /// Sqns lost upstream of the capture point.
    Lost,
    /// Distinct receivers NAKing.
    Nakers,
    /// SPM packets.
    Spm,
    /// Time since the last packet.
    Last,
}

impl Column {
    /// Every column, left to right.
    pub const ALL: [Column; 12] = [
        Column::Tsi,
        Column::Source,
        Column::Rate,
        Column::Mbps,
        Column::Odata,
        Column::Rdata,
        Column::Nak,
        Column::Ncf,
        Column::Lost,
        Column::Nakers,
        Column::Spm,
        Column::Last,
    ];

    /// The header text.
    pub fn title(self) -> &'static str {
        match self {
            Column::Tsi => "TSI",
            Column::Source => "SOURCE",
            Column::Rate => "ODATA/s",
            Column::Mbps => "Mbit/s",
            Column::Odata => "ODATA",
            Column::Rdata => "RDATA",
            Column::Nak => "NAK",
            Column::Ncf => "NCF",
            Column::Lost => "LOST",
            Column::Nakers => "NAKERS",
            Column::Spm => "SPM",
            Column::Last => "LAST",
        }
    }

    /// The `--sort` name.
    pub fn name(self) -> &'static str {
        match self {
            Column::Tsi => "tsi",
            Column::Source => "source",
            Column::Rate => "rate",
            Column::Mbps => "mbps",
            Column::Odata => "odata",
            Column::Rdata => "rdata",
            Column::Nak => "nak",
            Column::Ncf => "ncf",
            Column::Lost => "lost",
            Column::Nakers => "nakers",
            Column::Spm => "spm",
            Column::Last => "last",
        }
    }

    /// Display width in characters (the TSI of a six-byte GSI in dotted decimal and a port
    /// takes up to 29).
    pub fn width(self) -> u16 {
        match self {
            Column::Tsi => 29,
            Column::Source => 15,
            Column::Rate | Column::Odata => 9,
            Column::Mbps | Column::Rdata | Column::Nak | Column::Ncf | Column::Lost => 7,
            Column::Nakers | Column::Last => 6,
            Column::Spm => 5,
        }
    }

    /// True for text columns (left-aligned, sorted ascending by default).
    pub fn is_text(self) -> bool {
        matches!(self, Column::Tsi | Column::Source)
    }

    /// The cell text of `row`.
    pub fn cell(self, row: &Row) -> String {
        match self {
            Column::Tsi => row.tsi.to_string(),
            Column::Source => row.source.map_or_else(|| "-".to_owned(), |a| a.to_string()),
            Column::Rate => format!("{:.0}", row.odata_per_s),
            Column::Mbps => format!("{:.2}", row.mbit_per_s),
            Column::Odata => row.odata.to_string(),
            Column::Rdata => row.rdata.to_string(),
            Column::Nak => row.naks.to_string(),
            Column::Ncf => row.ncfs.to_string(),
            Column::Lost => row.lost.to_string(),
            Column::Nakers => {
                if row.nakers_capped {
                    format!("{}+", row.nakers)
                } else {
                    row.nakers.to_string()
                }
            }
            Column::Spm => row.spms.to_string(),
            Column::Last => idle(row.idle_s),
        }
    }

    /// The default order of this column: text A→Z, numbers largest first, LAST most recent
    /// first.
    fn compare(self, a: &Row, b: &Row) -> Ordering {
        let num = |x: f64, y: f64| y.total_cmp(&x);
        match self {
            Column::Tsi => a.tsi.cmp(&b.tsi),
            Column::Source => a.source.cmp(&b.source),
            Column::Rate => num(a.odata_per_s, b.odata_per_s),
            Column::Mbps => num(a.mbit_per_s, b.mbit_per_s),
            Column::Odata => b.odata.cmp(&a.odata),
            Column::Rdata => b.rdata.cmp(&a.rdata),
            Column::Nak => b.naks.cmp(&a.naks),
            Column::Ncf => b.ncfs.cmp(&a.ncfs),
            Column::Lost => b.lost.cmp(&a.lost),
            Column::Nakers => b.nakers.cmp(&a.nakers),
            Column::Spm => b.spms.cmp(&a.spms),
            Column::Last => a.idle_s.total_cmp(&b.idle_s),
        }
    }
}

/// Seconds since the last packet, short: `0.3s`, `12s`, `5m`, `2h`.
fn idle(secs: f64) -> String {
    if secs < 10.0 {
        format!("{secs:.1}s")
    } else if secs < 600.0 {
        format!("{secs:.0}s")
    } else if secs < 36_000.0 {
        format!("{:.0}m", secs / 60.0)
    } else {
        format!("{:.0}h", secs / 3600.0)
    }
}

/// The sort order of the table: a column and whether its default order is reversed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// The column sorted by.
    pub column: Column,
    /// Reverse the column's default order.
    pub reverse: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            column: Column::Rate,
            reverse: false,
        }
    }
}

impl Sort {
    /// Sorts `rows`; ties are broken by TSI so the order is stable from one refresh to the
    /// next.
    pub fn apply(self, rows: &mut [Row]) {
        rows.sort_by(|a, b| {
            let o = self.column.compare(a, b);
            let o = if self.reverse { o.reverse() } else { o };
            o.then_with(|| a.tsi.cmp(&b.tsi))
        });
    }

    /// The next column to the right (wrapping).
    #[must_use]
    pub fn next(self) -> Sort {
        self.step(1)
    }

    /// The next column to the left (wrapping).
    #[must_use]
    pub fn prev(self) -> Sort {
        self.step(Column::ALL.len() - 1)
    }

    fn step(self, by: usize) -> Sort {
        let i = Column::ALL
            .iter()
            .position(|c| *c == self.column)
            .unwrap_or(0);
        Sort {
            column: Column::ALL[(i + by) % Column::ALL.len()],
            reverse: self.reverse,
        }
    }

    /// The same column in the other order.
    #[must_use]
    pub fn reversed(self) -> Sort {
        Sort {
            reverse: !self.reverse,
            ..self
        }
    }
}

/// `rows` as a plain text table with a header line (the `--once` report without `--json`).
pub fn text_table(rows: &[Row]) -> String {
    let mut out = String::new();
    let line = |cells: Vec<(Column, String)>| -> String {
        let parts: Vec<String> = cells
            .into_iter()
            .map(|(c, s)| {
                let w = usize::from(c.width());
                if c.is_text() {
                    format!("{s:<w$}")
                } else {
                    format!("{s:>w$}")
                }
            })
            .collect();
        parts.join(" ").trim_end().to_owned()
    };
    out.push_str(&line(
        Column::ALL
            .iter()
            .map(|c| (*c, c.title().to_owned()))
            .collect(),
    ));
    out.push('\n');
    for r in rows {
        out.push_str(&line(Column::ALL.iter().map(|c| (*c, c.cell(r))).collect()));
        out.push('\n');
    }
    out
}
