//! `pgm-recv`: print messages from a PGM/EPGM endpoint, or verify numbered test messages.

use std::{
    io::{self, Write},
    process::ExitCode,
    time::Duration,
};

use clap::Parser;
use pgm::{
    socket::{Clock, RecvError, RecvSocket, RecvStats},
    wire::Tsi,
    Event,
};

use crate::{
    cli::{
        check_test_message, cpu_s, idle_timeout, interrupt, json_line, mono_ns, msgs_per_s,
        next_wait, receiver_main, report_error, round3, Activity, CommonArgs, Progress, RunEnd,
        Senders, ToolError, MAX_SENDERS,
    },
    metrics::{Metrics, MetricsArgs, Role},
};

/// `pgm-recv` arguments.
#[derive(Debug, Parser)]
#[command(
    name = "pgm-recv",
    version,
    about = "Receive from a PGM or EPGM endpoint: print each message as a line, or verify test messages",
    after_help = "ENDPOINT is pgm://IFACE;GROUP:PORT (raw IP, needs root or CAP_NET_RAW) or \
                  epgm://IFACE;GROUP:PORT (UDP port PORT).\n\
                  Timeout: with --count or --verify, pgm-recv exits after 10 s without data \
                  unless --timeout says otherwise; without either it waits forever unless \
                  --timeout is given. --timeout 0 means forever. Ctrl-C or SIGTERM ends the run the same \
                  way (a second one quits at once, status 130).\n\
                  --verify prints one JSON line at the end: received, gaps, duplicates, untracked \
                  (messages of senders past the first 65 536, not order-checked), corrupt, \
                  unrecoverable, elapsed_s, msgs_per_s, cpu_s (CPU seconds, all threads), naks_sent, nak_sqns_sent, \
                  duplicates_discarded, first_path_received, second_path_received, max_gap_ms, \
                  fec_recovered, parity_naks_sent, pgmcc_acks_sent, first_seq, last_seq, \
                  senders, parse_errors, checksum_errors, source_filtered; \
                  it exits 1 when gaps, corrupt or unrecoverable are not 0 or fewer than --count \
                  messages arrived."
)]
pub struct RecvArgs {
    /// pgm://IFACE;GROUP:PORT or epgm://IFACE;GROUP:PORT.
    pub endpoint: String,
    /// Exit after N messages.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Exit after this many seconds without data (see below for the default).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Check test messages (from pgm-send --count) instead of printing them.
    #[arg(long)]
    pub verify: bool,
    /// Busy-poll: receive by polling the socket in a loop instead of sleeping (lower
    /// latency, one core at 100 % for as long as it runs; see SocketOptions::busy_poll).
    #[arg(long)]
    pub spin: bool,
    /// Options shared with pgm-send.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Prometheus metrics.
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

impl RecvArgs {
    /// The idle timeout in force; `None` waits forever.
    pub fn idle_timeout(&self) -> Result<Option<Duration>, ToolError> {
        idle_timeout(self.timeout, self.count.is_some() || self.verify)
    }
}

/// Per-sender state of the verifier.
#[derive(Debug, Clone, Copy)]
struct Session {
    /// The sequence number expected next.
    next: u64,
}

/// Checks test messages per sender (TSI): order, gaps, duplicates and CRC.
///
/// Data from one TSI arrives in order, so a number below the expected one is a duplicate and a
/// number above it leaves a gap. A sender first heard mid-stream starts wherever it is heard;
/// a restarted sender has a new TSI and starts over at 0 without counting anything. Senders
/// none of whose messages passed the check (forged sessions, garbage) are counted apart
/// ([`Senders`]) and do not fail verification.
#[derive(Debug, Default, Clone)]
pub struct Verifier {
    /// At most [`MAX_SENDERS`].
    sessions: foldhash::HashMap<Tsi, Session>,
    /// Valid messages of senders past [`MAX_SENDERS`]: counted, their order not checked.
    pub untracked: u64,
    /// Per-sender counts: verified senders and the others.
    pub senders: Senders,
    /// Messages delivered: of verified senders when verifying (what `--count` counts), all
    /// of them when printing.
    pub received: u64,
    /// Test sequence numbers skipped.
    pub gaps: u64,
    /// Messages at or below a number already seen.
    pub duplicates: u64,
    /// The first test sequence number seen.
    pub first_seq: Option<u64>,
    /// The last test sequence number seen.
    pub last_seq: Option<u64>,
}

impl Verifier {
    /// A verifier that has seen nothing.
    pub fn new() -> Self {
        Verifier::default()
    }

    /// Checks one message from `tsi`.
    pub fn on_data(&mut self, tsi: Tsi, msg: &[u8]) {
        let checked = check_test_message(msg);
        self.senders.message(tsi, checked.is_ok());
        self.received = self.senders.verified_messages;
        let Ok(seq) = checked else {
            return;
        };
        self.first_seq.get_or_insert(seq);
        self.last_seq = Some(seq);
        // One lookup per message (this runs at millions a second).
        let s = if let Some(s) = self.sessions.get_mut(&tsi) {
            s
        } else if self.sessions.len() < MAX_SENDERS {
            self.sessions.entry(tsi).or_insert(Session { next: seq })
        } else {
            self.untracked += 1;
            return;
        };
        if seq < s.next {
            self.duplicates += 1;
            return;
        }
        self.gaps += seq - s.next;
        s.next = seq + 1;
    }

    /// Counts `count` sequence numbers the engine gave up on for `tsi`.
    pub fn on_loss(&mut self, tsi: Tsi, count: u32) {
        self.senders.loss(tsi, count);
    }

    /// Messages of verified senders that failed their CRC or were too short.
    pub fn corrupt(&self) -> u64 {
        self.senders.verified().0.corrupt
    }

    /// Sequence numbers verified senders lost for good.
    pub fn unrecoverable(&self) -> u64 {
        self.senders.verified().0.unrecoverable
    }

    /// True when nothing of a verified sender was missing or corrupt.
    pub fn is_clean(&self) -> bool {
        let (v, _) = self.senders.verified();
        self.gaps == 0 && v.corrupt == 0 && v.unrecoverable == 0
    }

    /// The one JSON line.
    pub fn to_json(&self, elapsed_s: f64, engine: &EngineCounts) -> String {
        let (v, senders) = self.senders.verified();
        let (o, others) = self.senders.others();
        json_line(&[
            ("received", self.received.into()),
            ("gaps", self.gaps.into()),
            ("duplicates", self.duplicates.into()),
            ("untracked", self.untracked.into()),
            ("corrupt", v.corrupt.into()),
            ("unrecoverable", v.unrecoverable.into()),
            ("elapsed_s", round3(elapsed_s).into()),
            ("msgs_per_s", msgs_per_s(self.received, elapsed_s).into()),
            ("cpu_s", round3(engine.cpu_s).into()),
            ("naks_sent", engine.naks_sent.into()),
            ("nak_sqns_sent", engine.nak_sqns_sent.into()),
            ("duplicates_discarded", engine.duplicates_discarded.into()),
            ("first_path_received", engine.first_path_received.into()),
            ("second_path_received", engine.second_path_received.into()),
            ("max_gap_ms", round3(engine.max_gap_ms).into()),
            ("fec_recovered", engine.fec_recovered.into()),
            ("parity_naks_sent", engine.parity_naks_sent.into()),
            ("pgmcc_acks_sent", engine.pgmcc_acks_sent.into()),
            ("first_seq", self.first_seq.into()),
            ("last_seq", self.last_seq.into()),
            ("senders", senders.into()),
            ("others", o.to_json(others)),
            ("parse_errors", engine.parse_errors.into()),
            ("checksum_errors", engine.checksum_errors.into()),
            ("source_filtered", engine.source_filtered.into()),
            ("last_mono_ns", engine.last_mono_ns.into()),
        ])
    }
}

/// Receiver engine counters that go into the report.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EngineCounts {
    /// NAK packets sent.
    pub naks_sent: u64,
    /// Sqns asked for in them.
    pub nak_sqns_sent: u64,
    /// Data packets the engine discarded as copies of what it had (with a second path, the
    /// copy that arrived second).
    pub duplicates_discarded: u64,
    /// Packets received on the first path (the endpoint's).
    pub first_path_received: u64,
    /// Packets received on the second path (`--second-path`; 0 without).
    pub second_path_received: u64,
    /// The longest pause between two deliveries, in ms ([`Activity::max_gap`]).
    pub max_gap_ms: f64,
    /// Data packets rebuilt from FEC parity.
    pub fec_recovered: u64,
    /// Packets that failed to parse.
    pub parse_errors: u64,
    /// Packets that failed the checksum.
    pub checksum_errors: u64,
    /// CLOCK_MONOTONIC (ns) of the last delivery, 0 if none (benchmark repair tails).
    pub last_mono_ns: u64,
    /// Packets the transport dropped because their source is outside the `--source` joins.
    pub source_filtered: u64,
    /// Parity NAK packets sent (FEC on demand).
    pub parity_naks_sent: u64,
    /// PGMCC ACKs sent (as the source's ACKer, or in its elections).
    pub pgmcc_acks_sent: u64,
    /// CPU seconds the process used while receiving, all threads.
    pub cpu_s: f64,
}

impl EngineCounts {
    /// The counts of a closed socket's `stats`; `mono_base` is CLOCK_MONOTONIC at the start,
    /// `cpu_s` the CPU time the run took.
    fn of(stats: &RecvStats, activity: &Activity, mono_base: u64, cpu_s: f64) -> Self {
        EngineCounts {
            cpu_s,
            naks_sent: stats.engine.naks_sent,
            nak_sqns_sent: stats.engine.nak_sqns_sent,
            duplicates_discarded: stats.engine.duplicates,
            first_path_received: stats
                .io
                .packets_received
                .saturating_sub(stats.io.transport.second_path_received),
            second_path_received: stats.io.transport.second_path_received,
            max_gap_ms: activity.max_gap.as_secs_f64() * 1e3,
            fec_recovered: stats.engine.fec_recovered,
            parse_errors: stats.engine.parse_errors,
            checksum_errors: stats.engine.checksum_errors,
            source_filtered: stats.io.transport.source_filtered,
            parity_naks_sent: stats.engine.parity_naks_sent,
            pgmcc_acks_sent: stats.engine.pgmcc_acks_sent,
            last_mono_ns: activity
                .first
                .map_or(0, |_| mono_base + activity.last.as_nanos() as u64),
        }
    }
}

/// How a `pgm-recv` run ended.
#[derive(Debug, Clone)]
pub struct RecvOutcome {
    /// The verifier's counts (in print mode only `received` and `unrecoverable`).
    pub verifier: Verifier,
    /// Seconds from the first to the last message.
    pub elapsed_s: f64,
    /// Engine counters.
    pub engine: EngineCounts,
    /// `--count` was given and not reached.
    pub short: bool,
}

impl RecvOutcome {
    /// 0 when all is well; 1 when messages are missing, corrupt or fewer than `--count`.
    pub fn exit_code(&self, verify: bool) -> u8 {
        let bad = self.short || (verify && !self.verifier.is_clean());
        u8::from(bad)
    }
}

/// Runs `pgm-recv`, printing messages to `out` (unless verifying). The socket's counters, its
/// senders and the messages received so far go to `metrics`.
pub fn run_recv(
    args: &RecvArgs,
    out: &mut dyn Write,
    metrics: &Metrics,
) -> Result<RecvOutcome, ToolError> {
    let idle = args.idle_timeout()?;
    let mut opts = args.common.transport_options();
    opts.socket = opts.socket.with_busy_poll(args.spin);
    let sock = epgm::open_receiver(&args.endpoint, &opts)?;
    metrics.attach_receiver(sock.monitor());
    if !args.common.quiet {
        eprintln!("pgm-recv: listening on {}", args.endpoint);
    }
    let mono_base = mono_ns();
    let clock = Clock::new();
    let mut progress = Progress::new(clock, !args.common.quiet);
    let mut v = Verifier::new();
    let mut bytes = 0u64;
    let mut activity = Activity::new(clock.elapsed());
    let wanted = args.count.unwrap_or(u64::MAX);
    let cpu_before = cpu_s();
    let mut ready = Ready::default();
    while v.received < wanted && !interrupt::requested() {
        let ev = match ready.next(&sock, out) {
            Ok(ev) => ev,
            Err(RecvError::Empty) => {
                let now = clock.elapsed();
                activity.settle(now);
                let waited = now.saturating_sub(activity.idle_since);
                let Some(wait) = next_wait(idle, waited, &progress) else {
                    break;
                };
                match sock.recv_timeout(wait.clamp(Duration::from_millis(1), interrupt::POLL)) {
                    Ok(ev) => {
                        activity.resumed(clock.elapsed());
                        ev
                    }
                    Err(RecvError::Timeout) => {
                        metrics.app().set(v.received, bytes);
                        tick(&mut progress, &sock, &v, bytes);
                        continue;
                    }
                    Err(e) => return Err(ToolError::Io(io::Error::other(e))),
                }
            }
            Err(e) => return Err(ToolError::Io(io::Error::other(e))),
        };
        match ev {
            Event::Data { tsi, apdu: data } => {
                activity.delivered(&clock);
                bytes += data.len() as u64;
                if args.verify {
                    v.on_data(tsi, &data);
                } else {
                    v.received += 1;
                    out.write_all(&String::from_utf8_lossy(&data).into_owned().into_bytes())?;
                    out.write_all(b"\n")?;
                }
            }
            Event::Loss { tsi, count, first } => {
                v.on_loss(tsi, count);
                if !args.common.quiet {
                    eprintln!("pgm-recv: {tsi}: {count} packets lost from sqn {}", first.0);
                }
            }
            Event::PeerJoined { tsi } if !args.common.quiet => {
                eprintln!("pgm-recv: sender {tsi} joined");
            }
            Event::CaughtUp { tsi } if !args.common.quiet => {
                eprintln!("pgm-recv: sender {tsi}: caught up on its history, now live");
            }
            Event::PeerExpired { tsi } if !args.common.quiet => {
                eprintln!("pgm-recv: sender {tsi} left");
            }
            _ => {}
        }
        if v.received.is_multiple_of(256) {
            metrics.app().set(v.received, bytes);
            tick(&mut progress, &sock, &v, bytes);
        }
    }
    activity.settle(clock.elapsed());
    out.flush()?;
    let elapsed_s = activity.elapsed_s();
    // Closed first: the counters are then final, the same as a later scrape reads.
    sock.close();
    let stats = sock.stats();
    metrics.app().set(v.received, bytes);
    Ok(RecvOutcome {
        short: args.count.is_some_and(|c| v.received < c),
        verifier: v,
        elapsed_s,
        engine: EngineCounts::of(&stats, &activity, mono_base, cpu_s() - cpu_before),
    })
}

/// Events taken from the socket a batch at a time (`try_recv_many`: one lock and one
/// bookkeeping step per batch, not per message), served one by one.
#[derive(Default)]
struct Ready {
    /// In reverse order: the next event is the last.
    events: Vec<Event>,
}

impl Ready {
    /// The next queued event; flushes `out` before reporting that none is queued, so printed
    /// lines appear as soon as the stream pauses.
    fn next(&mut self, sock: &RecvSocket, out: &mut dyn Write) -> Result<Event, RecvError> {
        if self.events.is_empty() && sock.try_recv_many(&mut self.events)? > 0 {
            self.events.reverse();
        }
        if let Some(ev) = self.events.pop() {
            return Ok(ev);
        }
        out.flush().map_err(|e| RecvError::Failed(e.to_string()))?;
        Err(RecvError::Empty)
    }
}

fn tick(progress: &mut Progress, sock: &RecvSocket, v: &Verifier, bytes: u64) {
    progress.tick("pgm-recv", v.received, bytes, || {
        let s = sock.stats();
        format!(
            "naks {}, repaired {}, lost {}",
            s.engine.naks_sent, s.engine.repaired, s.engine.lost_sqns
        )
    });
}

/// `pgm-recv`'s main: runs, prints the JSON line when verifying, maps errors to exit codes.
pub fn recv_main(args: &RecvArgs) -> ExitCode {
    let metrics = match Metrics::start(&args.metrics, "pgm-recv", Role::Receiver, &args.endpoint) {
        Ok(m) => m,
        Err(e) => return report_error("pgm-recv", &e),
    };
    let code = receiver_main("pgm-recv", args.common.quiet, args.count, |out| {
        let o = run_recv(args, out, &metrics)?;
        Ok(RunEnd {
            json: args
                .verify
                .then(|| o.verifier.to_json(o.elapsed_s, &o.engine)),
            received: o.verifier.received,
            short: o.short,
            exit_code: o.exit_code(args.verify),
        })
    });
    metrics.finish();
    code
}

#[cfg(test)]
mod tests {
    use pgm::wire::Gsi;

    use super::*;
    use crate::cli::{fill_test_message, DEFAULT_TIMEOUT};

    fn msg(seq: u64) -> Vec<u8> {
        let mut b = vec![0; 32];
        fill_test_message(seq, &mut b);
        b
    }

    fn tsi(n: u16) -> Tsi {
        Tsi::new(Gsi([1, 2, 3, 4, 5, 6]), n)
    }

    #[test]
    fn forged_senders_are_bounded() {
        let mut v = Verifier::new();
        let gsi = |k: usize| {
            Gsi([
                9,
                9,
                (k >> 24) as u8,
                (k >> 16) as u8,
                (k >> 8) as u8,
                k as u8,
            ])
        };
        for k in 0..MAX_SENDERS + 100 {
            v.on_data(Tsi::new(gsi(k), 1), &msg(5));
        }
        assert_eq!(v.sessions.len(), MAX_SENDERS);
        assert_eq!(v.untracked, 100);
        // A tracked sender is still checked.
        v.on_data(Tsi::new(gsi(0), 1), &msg(7));
        assert_eq!(v.gaps, 1);
    }

    #[test]
    fn in_order_is_clean() {
        let mut v = Verifier::new();
        for i in 0..100 {
            v.on_data(tsi(1), &msg(i));
        }
        assert!(v.is_clean());
        assert_eq!((v.received, v.duplicates), (100, 0));
        assert_eq!((v.first_seq, v.last_seq), (Some(0), Some(99)));
    }

    #[test]
    fn late_start_is_not_a_gap_but_holes_are() {
        let mut v = Verifier::new();
        for i in [500, 501, 505, 506] {
            v.on_data(tsi(1), &msg(i));
        }
        assert_eq!(v.gaps, 3);
        assert_eq!(v.first_seq, Some(500));
        assert!(!v.is_clean());
    }

    #[test]
    fn duplicates_and_corruption_are_counted() {
        let mut v = Verifier::new();
        v.on_data(tsi(1), &msg(0));
        v.on_data(tsi(1), &msg(1));
        v.on_data(tsi(1), &msg(1));
        v.on_data(tsi(1), &msg(0));
        let mut bad = msg(2);
        bad[20] ^= 0xff;
        v.on_data(tsi(1), &bad);
        v.on_data(tsi(1), b"short");
        assert_eq!((v.duplicates, v.corrupt(), v.gaps), (2, 2, 0));
        assert_eq!(v.received, 6);
        assert!(!v.is_clean());
    }

    #[test]
    fn senders_are_checked_separately() {
        let mut v = Verifier::new();
        // Two interleaved senders, then the first restarts (new TSI, from 0 again).
        for i in 0..10 {
            v.on_data(tsi(1), &msg(i));
            v.on_data(tsi(2), &msg(1000 + i));
        }
        for i in 0..10 {
            v.on_data(tsi(3), &msg(i));
        }
        assert!(v.is_clean(), "{v:?}");
        assert_eq!(v.duplicates, 0);
        assert_eq!(v.senders.verified().1, 3);
    }

    #[test]
    fn losses_are_unrecoverable() {
        let mut v = Verifier::new();
        v.on_data(tsi(1), &msg(0));
        v.on_loss(tsi(1), 3);
        assert_eq!(v.unrecoverable(), 3);
        assert!(!v.is_clean());
        let counts = EngineCounts {
            naks_sent: 4,
            ..EngineCounts::default()
        };
        let line = v.to_json(1.0, &counts);
        assert!(line.starts_with(r#"{"received":1,"gaps":0,"#), "{line}");
        let j: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(j["unrecoverable"], 3);
        assert_eq!(j["naks_sent"], 4);
        assert_eq!(j["first_seq"], 0);
        assert_eq!(j["others"]["senders"], 0);
        for k in [
            "received",
            "gaps",
            "duplicates",
            "corrupt",
            "elapsed_s",
            "msgs_per_s",
            "cpu_s",
            "last_seq",
            "senders",
            "parse_errors",
            "checksum_errors",
            "nak_sqns_sent",
            "duplicates_discarded",
            "first_path_received",
            "second_path_received",
            "max_gap_ms",
        ] {
            assert!(j.get(k).is_some(), "{k}");
        }
    }

    #[test]
    fn senders_that_never_verify_are_others() {
        let mut v = Verifier::new();
        for i in 0..5 {
            v.on_data(tsi(1), &msg(i));
        }
        // A forged session: garbage data and a huge loss report.
        v.on_data(tsi(9), &[0xee; 100]);
        v.on_loss(tsi(9), 1 << 30);
        assert!(v.is_clean(), "{v:?}");
        assert_eq!(v.received, 5);
        let j: serde_json::Value =
            serde_json::from_str(&v.to_json(1.0, &EngineCounts::default())).unwrap();
        assert_eq!(
            (j["unrecoverable"].as_u64(), j["corrupt"].as_u64()),
            (Some(0), Some(0))
        );
        assert_eq!(j["others"]["unrecoverable"], 1u64 << 30);
        assert_eq!(j["others"]["messages"], 1);
        assert_eq!(j["senders"], 1);
    }

    #[test]
    fn timeout_defaults() {
        let mut a = RecvArgs::parse_from(["pgm-recv", "epgm://lo;239.1.1.1:5"]);
        assert_eq!(a.idle_timeout().unwrap(), None);
        a.count = Some(5);
        assert_eq!(a.idle_timeout().unwrap(), Some(DEFAULT_TIMEOUT));
        a.timeout = Some(0.0);
        assert_eq!(a.idle_timeout().unwrap(), None);
        a.timeout = Some(-1.0);
        assert!(a.idle_timeout().is_err());
        let v = RecvArgs::parse_from(["pgm-recv", "--verify", "--timeout", "2.5", "x"]);
        assert_eq!(v.idle_timeout().unwrap(), Some(Duration::from_millis(2500)));
    }
}
