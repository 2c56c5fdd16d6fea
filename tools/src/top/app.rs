//! The IO of `pgm-top`: reading the capture (live or from a file) into a [`TopTable`], and
//! either printing one report (`--once`) or driving the terminal (ratatui on crossterm).

use std::{
    io::{self, IsTerminal, Write},
    time::Duration,
};

use crossterm::event::{self, Event};
use ratatui::DefaultTerminal;

use super::{
    report::Report,
    table::TopTable,
    ui::{draw, key_action, Action, View},
    Args, TopError,
};
use crate::dump::{
    live::{monotonic, wall_clock, LiveCapture},
    pcap::for_each_frame,
};

/// How often the live view is redrawn (and keys are read).
const REFRESH: Duration = Duration::from_millis(250);

/// Reads the whole capture file `args.read` into a new table.
fn read_file(args: &Args) -> Result<TopTable, TopError> {
    let path = args.read.as_deref().ok_or(TopError::NoInput)?;
    let feed = args.feed();
    let mut table = args.table();
    for_each_frame(path, |c| {
        feed.frame(&mut table, c.linktype, c.time, c.data);
        Ok(true)
    })?;
    Ok(table)
}

/// `--once`: captures for `--interval` (or reads the file), then writes the report (JSON with
/// `--json`, else text) to `out`. `on_ready(iface)` is called once a live capture listens.
pub fn run_once(
    args: &Args,
    out: &mut dyn Write,
    on_ready: &mut dyn FnMut(&str),
) -> Result<Report, TopError> {
    let (table, now) = if let Some(iface) = &args.iface {
        let feed = args.feed();
        let mut table = args.table();
        let mut cap = LiveCapture::open(iface)?;
        let linktype = cap.linktype();
        on_ready(iface);
        let deadline = monotonic() + args.interval;
        while monotonic() < deadline {
            if let Some((time, frame)) = cap.next_frame()? {
                feed.frame(&mut table, linktype, time, frame);
            }
        }
        (table, wall_clock())
    } else {
        let table = read_file(args)?;
        let now = table.latest().unwrap_or(0.0);
        (table, now)
    };
    let mut report = Report::new(&table, now, args.sort(), args.max_sessions);
    report.iface.clone_from(&args.iface);
    report.read = args.read.as_ref().map(|p| p.display().to_string());
    report.group = args.group;
    report.port = args.port;
    report.udp_ports = args.feed().udp_ports;
    let text = if args.json {
        report.to_json() + "\n"
    } else {
        report.to_text()
    };
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(TopError::Terminal)?;
    Ok(report)
}

/// The live view: opens the input first (so errors print on a normal terminal), then shows
/// the table until `q`.
pub fn run_tui(args: &Args) -> Result<(), TopError> {
    if args.iface.is_none() && args.read.is_none() {
        return Err(TopError::NoInput);
    }
    let input = match &args.iface {
        Some(iface) => Input::Live(LiveCapture::open(iface)?, args.table()),
        None => Input::File(read_file(args)?),
    };
    if !io::stdout().is_terminal() {
        return Err(TopError::NotATerminal);
    }
    let mut terminal = ratatui::try_init().map_err(TopError::Terminal)?;
    let res = view_loop(&mut terminal, args, input);
    ratatui::restore();
    res
}

/// Where the table's numbers come from.
enum Input {
    /// A capture still going on, and its table.
    Live(LiveCapture, TopTable),
    /// A file already read: the table is final, "now" is its last packet.
    File(TopTable),
}

fn view_loop(
    terminal: &mut DefaultTerminal,
    args: &Args,
    mut input: Input,
) -> Result<(), TopError> {
    let feed = args.feed();
    let title = args.describe_input();
    let mut sort = args.sort();
    let mut next_draw = monotonic();
    loop {
        if monotonic() >= next_draw {
            let (table, now) = match &input {
                Input::Live(_, t) => (t, wall_clock()),
                Input::File(t) => (t, t.latest().unwrap_or(0.0)),
            };
            let rows = table.rows(now, sort);
            let view = View {
                input: &title,
                rows: &rows,
                sort,
                counters: table.counters(),
                tracked: (table.len(), args.max_sessions),
                window: table.window(),
            };
            terminal
                .draw(|f| draw(f, &view))
                .map_err(TopError::Terminal)?;
            next_draw = monotonic() + REFRESH;
        }
        // Keys: without waiting while capturing (the capture read below waits), else until the
        // next redraw.
        let wait = match input {
            Input::Live(..) => Duration::ZERO,
            Input::File(_) => REFRESH,
        };
        if event::poll(wait).map_err(TopError::Terminal)? {
            if let Event::Key(key) = event::read().map_err(TopError::Terminal)? {
                match key_action(key, sort) {
                    Some(Action::Quit) => return Ok(()),
                    Some(Action::Sort(s)) => {
                        sort = s;
                        next_draw = monotonic();
                    }
                    None => {}
                }
            }
        }
        if let Input::Live(cap, table) = &mut input {
            // Frames until the next redraw; each read waits at most the capture's poll time.
            while monotonic() < next_draw {
                let linktype = cap.linktype();
                match cap.next_frame()? {
                    Some((time, frame)) => feed.frame(table, linktype, time, frame),
                    None => break,
                }
            }
        }
    }
}
