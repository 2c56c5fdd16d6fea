//! Drawing the terminal view (ratatui) and what the keys do; no terminal IO here, so the view
//! is tested on ratatui's in-memory backend.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::{
    layout::{Constraint, Layout},
    style::{Modifier, Style, Stylize},
    text::{Line, Span},
    widgets::{Cell, Paragraph, Row as TableRow, Table},
    Frame,
};

use super::{
    columns::{Column, Sort},
    session::Row,
    table::Counters,
};

/// Everything one screen shows.
#[derive(Debug, Clone)]
pub struct View<'a> {
    /// What is captured: `"lo"`, `"capture.pcap"`, with the filter.
    pub input: &'a str,
    /// The rows, sorted.
    pub rows: &'a [Row],
    /// The sort order.
    pub sort: Sort,
    /// Packet counts outside sessions.
    pub counters: Counters,
    /// Sessions tracked and the bound.
    pub tracked: (usize, usize),
    /// The rate window in seconds.
    pub window: f64,
}

/// Draws `view` on the whole frame: a title line, the table, a status line.
pub fn draw(frame: &mut Frame<'_>, view: &View<'_>) {
    let [title, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());

    let arrow = if view.sort.reverse { "▲" } else { "▼" };
    let title_line = Line::from(vec![
        Span::styled("pgm-top", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!(
            "  {}  sessions {}/{}  window {}s  sort {} {arrow}",
            view.input,
            view.tracked.0,
            view.tracked.1,
            view.window,
            view.sort.column.title(),
        )),
    ]);
    frame.render_widget(Paragraph::new(title_line), title);

    let header = TableRow::new(Column::ALL.iter().map(|c| {
        let cell = aligned(*c, c.title());
        if *c == view.sort.column {
            cell.add_modifier(Modifier::REVERSED)
        } else {
            cell
        }
    }))
    .bold();
    let rows = view
        .rows
        .iter()
        .map(|r| TableRow::new(Column::ALL.iter().map(|c| aligned(*c, &c.cell(r)))));
    let widths = Column::ALL.iter().map(|c| Constraint::Length(c.width()));
    frame.render_widget(Table::new(rows, widths).header(header), body);

    let c = view.counters;
    let status_line = Line::from(format!(
        "frames {}  pgm {}  malformed {}  bad-checksum {}  unsupported {}  filtered {}  \
         evicted {}   ←/→ sort  r reverse  q quit",
        c.frames, c.pgm, c.malformed, c.bad_checksum, c.unsupported, c.filtered, c.evicted
    ))
    .dim();
    frame.render_widget(Paragraph::new(status_line), status);
}

/// A cell with `text` aligned as column `c` wants (numbers right, text left).
fn aligned(c: Column, text: &str) -> Cell<'static> {
    let line = Line::from(text.to_owned());
    Cell::from(if c.is_text() {
        line.left_aligned()
    } else {
        line.right_aligned()
    })
}

/// What a key press asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Leave.
    Quit,
    /// Sort by another column or order.
    Sort(Sort),
}

/// The action of key `key` with the table sorted by `sort`, if any: `q`, Esc or Ctrl-C quit;
/// ←/→ (or `<`/`>`) move the sort column; `r` reverses the order.
pub fn key_action(key: KeyEvent, sort: Sort) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    match key.code {
        KeyCode::Char('q') | KeyCode::Esc => Some(Action::Quit),
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => Some(Action::Quit),
        KeyCode::Right | KeyCode::Char('>' | '.') => Some(Action::Sort(sort.next())),
        KeyCode::Left | KeyCode::Char('<' | ',') => Some(Action::Sort(sort.prev())),
        KeyCode::Char('r') => Some(Action::Sort(sort.reversed())),
        _ => None,
    }
}
