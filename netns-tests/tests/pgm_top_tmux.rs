//! `pgm-top` in a real terminal: it runs in a detached tmux session (its own tmux server,
//! socket `pgmtop-PID`) inside the bridge namespace of a two-host LAN, capturing on `br0`,
//! while `pgm-send` on h1 sends to `pgm-recv --verify` on h2, which loses 3 % of what arrives
//! (nftables in h2's namespace, so the bridge still sees every packet and h2 NAKs). The
//! screen, read with `tmux capture-pane -p`, must show the sender's row (its source address,
//! a TSI ending in a port) with non-zero ODATA/s, ODATA and NAK columns, one NAKer and no loss
//! upstream of the bridge. Then → must move the sort column and q must end it with status 0.
//!
//! Set `PGM_TOP_SCREEN=FILE` to save the screen (how `docs/pgm-top.txt` was made).
//!
//! Needs root (namespaces, capture) and tmux: prints SKIPPED and passes without them, unless
//! `CI` is set, where it fails.

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use netns_tests::lan::Lan;
use netns_tests::tools::{
    begin_test, pgm_top, spawn_recv_joined, spawn_send, wait_all, wait_one, Encap, Iface, RecvOpts,
    SendOpts,
};
use netns_tests::{have_program, is_root, named_tests, now};

const PORT: u16 = 7930;
/// 12 000 × 500 B at 8 Mbit/s: about 6 s of data, enough for several refreshes.
const COUNT: u64 = 12_000;
const LIMIT: Duration = Duration::from_mins(1);
/// How long the screen is read after the sender's row first qualifies.
const STEADY: Duration = Duration::from_millis(2500);

/// A tmux server of its own, killed on drop (also when the test panics).
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts a server in namespace `ns` with one detached 132×10 session running `command`
    /// (through `sh -c`, so the pane keeps an exit message if the program fails).
    fn start(ns: &str, command: &str) -> Tmux {
        let socket = format!("pgmtop-{}", std::process::id());
        let shell = format!("{command}; echo \"pgm-top exited with status $?\"; sleep 60");
        let status = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "tmux",
                "-L",
                &socket,
                "-f",
                "/dev/null",
            ])
            .args([
                "new-session",
                "-d",
                "-x",
                "132",
                "-y",
                "10",
                "sh",
                "-c",
                &shell,
            ])
            .env("TERM", "xterm-256color")
            .status()
            .expect("running tmux");
        assert!(status.success(), "tmux new-session failed: {status}");
        Tmux { socket }
    }

    /// Types `key` (a tmux key name, e.g. `Right`, `q`) into the pane.
    fn send_key(&self, key: &str) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", key])
            .status()
            .expect("running tmux send-keys");
        assert!(status.success(), "tmux send-keys {key}: {status}");
    }

    /// Waits up to 5 s for the pane to show `text`; the last screen either way.
    fn wait_for(&self, text: &str) -> (bool, String) {
        let start = now();
        loop {
            let screen = self.screen();
            if screen.contains(text) || start.elapsed() > Duration::from_secs(5) {
                return (screen.contains(text), screen);
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The pane's text now.
    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p"])
            .output()
            .expect("running tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// The numbers of one table row: TSI SOURCE ODATA/s Mbit/s ODATA RDATA NAK NCF LOST NAKERS
/// SPM LAST.
#[derive(Debug)]
struct ScreenRow {
    tsi: String,
    rate: f64,
    odata: u64,
    naks: u64,
    lost: u64,
    nakers: u64,
}

/// The row whose SOURCE is `source`, if the screen has one.
fn row_of(screen: &str, source: &str) -> Option<ScreenRow> {
    screen.lines().find_map(|l| {
        let c: Vec<&str> = l.split_whitespace().collect();
        if c.len() != 12 || c[1] != source {
            return None;
        }
        Some(ScreenRow {
            tsi: c[0].to_owned(),
            rate: c[2].parse().ok()?,
            odata: c[4].parse().ok()?,
            naks: c[6].parse().ok()?,
            lost: c[8].parse().ok()?,
            nakers: c[9].parse().ok()?,
        })
    })
}

/// Loud skip without root or tmux, a failure instead under CI.
fn can_run(name: &str) -> bool {
    let ci = std::env::var_os("CI").is_some();
    if ci {
        assert!(is_root(), "{name} needs root and CI is set");
    }
    if !have_program("tmux") {
        assert!(
            !ci,
            "{name} needs tmux and CI is set (apt-get install tmux)"
        );
        eprintln!(
            "\n==================================================================\n\
             SKIPPED: {name} needs tmux (apt-get install tmux)\n\
             ==================================================================\n"
        );
        return false;
    }
    true
}

fn top_in_tmux(name: &str, encap: Encap) {
    if !can_run(name) {
        return;
    }
    let Some(_serial) = begin_test(name) else {
        return;
    };
    let lan = Lan::new(2).expect("building the LAN");
    lan.set_loss(1, 30, 0).expect("loss");
    let top = pgm_top().expect("pgm-top built");
    let command = format!("{} --iface br0 --port {PORT} --interval 1", top.display());
    let tmux = Tmux::start(lan.bridge_ns(), &command);
    let start = now();
    let mut screen = tmux.screen();
    while !screen.contains("ODATA/s") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "pgm-top did not draw its table:\n{screen}"
        );
        thread::sleep(Duration::from_millis(100));
        screen = tmux.screen();
    }

    let rx = spawn_recv_joined(
        lan.host(1),
        encap,
        Iface::Name,
        PORT,
        &RecvOpts::new(Some(COUNT), 5.0),
    )
    .expect("starting pgm-recv");
    let mut tx = spawn_send(
        lan.host(0),
        encap,
        Iface::Name,
        PORT,
        &SendOpts::new(COUNT, 500, "8M"),
    )
    .expect("starting pgm-send");

    // Read the screen while the sender runs, until its row shows data and NAKs, then for
    // [`STEADY`] more (a full rate window into the run: the screen saved for the docs).
    let source = lan.host(0).addr().to_string();
    let mut found: Option<(ScreenRow, String)> = None;
    let mut found_at = None;
    while start.elapsed() < LIMIT {
        thread::sleep(Duration::from_millis(300));
        let now_screen = tmux.screen();
        if let Some(r) = row_of(&now_screen, &source) {
            if r.rate > 0.0 && r.odata > 0 && r.naks > 0 {
                found_at.get_or_insert_with(now);
                found = Some((r, now_screen.clone()));
            }
        }
        screen = now_screen;
        let sender_done = tx.try_wait().ok().flatten().is_some();
        if sender_done || found_at.is_some_and(|t| t.elapsed() >= STEADY) {
            break;
        }
    }
    let tx = wait_one(tx, now() + LIMIT);
    let rx = wait_all(vec![rx], now() + LIMIT).pop().expect("receiver");
    eprintln!(
        "{name}: screen:\n{screen}\nsender: {}\nreceiver: {}\ndropped at h2: {:?}",
        tx.json,
        rx.json,
        lan.dropped(1)
    );
    let (row, screen) = found.unwrap_or_else(|| {
        panic!("no row for the sender {source} with ODATA/s, ODATA and NAK > 0:\n{screen}")
    });
    if let Some(path) = std::env::var_os("PGM_TOP_SCREEN") {
        std::fs::write(Path::new(&path), &screen).expect("writing PGM_TOP_SCREEN");
    }
    // A TSI: six GSI bytes and the data-source port, dotted.
    let parts: Vec<&str> = row.tsi.split('.').collect();
    assert!(
        parts.len() == 7 && parts.iter().all(|p| p.parse::<u16>().is_ok()),
        "{row:?}"
    );
    // One receiver NAKs, and the bridge saw every ODATA (the loss is at h2's input).
    assert_eq!((row.nakers, row.lost), (1, 0), "{row:?}\n{screen}");
    assert!(tx.crash_problems().is_empty(), "{}", tx.describe());

    // The keys: → sorts by the next column (Mbit/s), q quits cleanly.
    tmux.send_key("Right");
    let (sorted, screen) = tmux.wait_for("sort Mbit/s");
    assert!(sorted, "→ did not change the sort column:\n{screen}");
    tmux.send_key("q");
    let (quit, screen) = tmux.wait_for("pgm-top exited with status 0");
    assert!(quit, "q did not end pgm-top cleanly:\n{screen}");
}

named_tests! {
    pgm_top_in_tmux_raw => top_in_tmux(Encap::Raw);
    pgm_top_in_tmux_epgm => top_in_tmux(Encap::Udp);
}
