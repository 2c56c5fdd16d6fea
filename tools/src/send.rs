//! `pgm-send`: send stdin lines, or numbered test messages, to a PGM/EPGM endpoint.
//!
//! Also home to what all the tools share: the test message format, option value parsers
//! (rates, window sizes, NAK profile), the error type with its exit codes and the report
//! helpers; and to what the sending tools (`pgm-send`, `pgm-pub`) share.

use std::{
    io::{self, BufRead, Write},
    process::ExitCode,
    time::Duration,
};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use pgm::{
    socket::{Clock, NakProfile, OpenError, SendError, SendSocket, SocketOptions},
    ReceiverLimits, RepairBudget,
};

/// Bytes before the filler of a test message: sequence number (8) and CRC-32 (4).
pub const TEST_HEADER: usize = 12;

/// Writes test message `seq` into `buf` (its whole length): bytes 0..8 the sequence number (u64
/// big-endian), 8..12 the CRC-32 (IEEE) of bytes 12.. (u32 big-endian), then filler that
/// depends on `seq`, so a message delivered under another number fails its CRC.
///
/// # Panics
/// When `buf` is shorter than [`TEST_HEADER`].
pub fn fill_test_message(seq: u64, buf: &mut [u8]) {
    assert!(
        buf.len() >= TEST_HEADER,
        "test messages are at least 12 bytes"
    );
    buf[..8].copy_from_slice(&seq.to_be_bytes());
    let start = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes()[0];
    for (i, b) in buf[TEST_HEADER..].iter_mut().enumerate() {
        *b = start.wrapping_add(i as u8);
    }
    let crc = crc32fast::hash(&buf[TEST_HEADER..]);
    buf[8..12].copy_from_slice(&crc.to_be_bytes());
}

/// Why a message is not a valid test message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TestMessageError {
    /// Shorter than the 12-byte header.
    #[error("test message of {0} bytes is shorter than 12")]
    TooShort(usize),
    /// The CRC does not match the filler.
    #[error("CRC mismatch")]
    BadCrc,
}

/// Checks a test message; its sequence number if it is intact.
pub fn check_test_message(msg: &[u8]) -> Result<u64, TestMessageError> {
    if msg.len() < TEST_HEADER {
        return Err(TestMessageError::TooShort(msg.len()));
    }
    let mut seq = [0; 8];
    seq.copy_from_slice(&msg[..8]);
    let mut crc = [0; 4];
    crc.copy_from_slice(&msg[8..12]);
    if crc32fast::hash(&msg[TEST_HEADER..]) != u32::from_be_bytes(crc) {
        return Err(TestMessageError::BadCrc);
    }
    Ok(u64::from_be_bytes(seq))
}

/// Parses a rate in bits/s: a number with an optional k, M or G suffix (decimal: 100M = 10^8),
/// and an optional `bit/s`/`bps`; `0` or `unlimited` for no limit.
#[expect(clippy::cast_sign_loss, reason = "negative values are rejected first")]
pub fn parse_rate(s: &str) -> Result<Option<u64>, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    let t = t
        .trim_end_matches("bit/s")
        .trim_end_matches("bps")
        .trim_end_matches("b/s");
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('M') => (&t[..t.len() - 1], 1e6),
        Some('G') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad rate {s:?}: expected bits/s like 100M, 1.5G or 64000"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("bad rate {s:?}"));
    }
    let bits = (v * mult).round();
    if bits >= u64::MAX as f64 {
        return Err(format!("rate {s:?} is too large"));
    }
    let bits = bits as u64;
    Ok((bits > 0).then_some(bits))
}

/// Parses a message rate: messages per second, with an optional k or M suffix.
pub fn parse_msg_rate(s: &str) -> Result<f64, String> {
    match parse_rate(s) {
        Ok(Some(n)) => Ok(n as f64),
        _ => Err(format!(
            "bad message rate {s:?}: expected messages/s like 10k"
        )),
    }
}

/// [`parse_rate`] for clap: 0 means unlimited.
pub fn parse_rate_arg(s: &str) -> Result<u64, String> {
    parse_rate(s).map(|r| r.unwrap_or(0))
}

/// A window size: sequence numbers, or payload bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// TXW_SQNS / RXW_SQNS.
    Sqns(u32),
    /// Bytes of payload.
    Bytes(usize),
}

/// Parses a window: a plain number is sequence numbers (packets); a number with a byte unit
/// is bytes: `B`, `k`/`kB` (10^3), `KiB` (2^10), `M`/`MB`, `MiB`, `G`/`GB`, `GiB`.
#[expect(clippy::cast_sign_loss, reason = "the range is checked first")]
pub fn parse_window(s: &str) -> Result<Window, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("bad window {s:?}: expected sqns (like 10000) or bytes (like 16MiB)");
    let mult: f64 = match unit.trim() {
        "" => {
            let sqns: u32 = num.parse().map_err(|_| bad())?;
            if sqns == 0 || sqns >= 1 << 31 {
                return Err(format!("window of {sqns} sqns is out of range 1..2^31"));
            }
            return Ok(Window::Sqns(sqns));
        }
        "B" => 1.0,
        "k" | "kB" | "KB" => 1e3,
        "KiB" | "Ki" => 1024.0,
        "M" | "MB" => 1e6,
        "MiB" | "Mi" => 1_048_576.0,
        "G" | "GB" => 1e9,
        "GiB" | "Gi" => 1_073_741_824.0,
        _ => return Err(bad()),
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    let bytes = (v * mult).round();
    if !(1.0..=(1u64 << 40) as f64).contains(&bytes) {
        return Err(format!("window {s:?} is out of range"));
    }
    Ok(Window::Bytes(bytes as usize))
}

/// Parses a byte size: a number with an optional unit, `B`, `k`/`kB` (10^3), `KiB` (2^10),
/// `M`/`MB`, `MiB`, `G`/`GB`, `GiB`.
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let t = s.trim();
    if t.chars().all(|c| c.is_ascii_digit()) {
        return t
            .parse()
            .map_err(|_| format!("bad size {s:?}: expected bytes like 64MiB"));
    }
    match parse_window(t) {
        Ok(Window::Bytes(b)) => Ok(b),
        _ => Err(format!(
            "bad size {s:?}: expected bytes like 64MiB or 100MB"
        )),
    }
}

/// Parses a share in `[0.01, 0.9]`.
pub fn parse_share(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("bad share {s:?}: expected a fraction like 0.4"))?;
    if !(0.01..=0.9).contains(&v) {
        return Err(format!("share {v} out of range 0.01..=0.9"));
    }
    Ok(v)
}

/// Parses seconds (fractions allowed), at most a day.
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("bad duration {s:?}: expected seconds like 2.5"))?;
    if !(0.0..=86_400.0).contains(&v) {
        return Err(format!("{v} s out of range 0..=86400"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// `--nak-profile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NakProfileArg {
    /// Millisecond NAK back-off and repeats, millisecond heartbeat SPMs (default).
    Lan,
    /// OpenPGM/libzmq timing: 50 ms back-off, 200 ms repeats; OpenPGM's SPM schedule.
    Openpgm,
}

impl From<NakProfileArg> for NakProfile {
    fn from(p: NakProfileArg) -> Self {
        match p {
            NakProfileArg::Lan => NakProfile::Lan,
            NakProfileArg::Openpgm => NakProfile::OpenPgm,
        }
    }
}

/// Options both tools take.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Largest IP datagram (max TPDU / MTU), IP header included.
    #[arg(long, default_value_t = 1500, value_name = "BYTES")]
    pub tpdu: usize,
    /// Window: sequence numbers (e.g. 20000), or bytes with a unit (e.g. 16MiB, 32MB).
    #[arg(long, value_parser = parse_window, value_name = "SQNS|SIZE")]
    pub window: Option<Window>,
    /// NAK timing profile.
    #[arg(long, value_enum, default_value_t = NakProfileArg::Lan)]
    pub nak_profile: NakProfileArg,
    /// Multicast TTL (IP_MULTICAST_TTL).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=255))]
    pub hops: u32,
    /// Loop multicast back to this host (always on for a loopback interface).
    #[arg(long = "loop")]
    pub multicast_loop: bool,
    /// IP_TOS byte (e.g. 184 = 0xB8, DSCP EF, as OpenPGM sets it).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=255))]
    pub tos: u32,
    /// EPGM: send each packet with its own syscall instead of runs of packets as one UDP GSO
    /// send (`UDP_SEGMENT`; the datagrams on the wire are the same either way).
    #[arg(long)]
    pub no_gso: bool,
    /// Sender: share of the wire repairs (NCF + RDATA) may take while new data waits, and of
    /// the rate limit [default: 0.4].
    #[arg(long, value_parser = parse_share, value_name = "FRACTION")]
    pub repair_share: Option<f64>,
    /// Sender: cap on repairs in bits/s [default: repair share × --rate, or 100M unpaced].
    #[arg(long, value_parser = parse_rate_arg, value_name = "BITS")]
    pub repair_rate: Option<u64>,
    /// Sender: sqns per second one NAKer (by IP address) gets repaired [default: 20000].
    #[arg(long, value_name = "SQNS", value_parser = clap::value_parser!(u32).range(1..))]
    pub repair_per_naker: Option<u32>,
    /// Receiver: most sessions tracked at once [default: 1024].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_peers: Option<u32>,
    /// Receiver: memory budget over all sessions' windows, e.g. 256MiB [default: 256MiB].
    #[arg(long, value_parser = parse_bytes, value_name = "SIZE")]
    pub memory: Option<usize>,
    /// Receiver: seconds a missing message may stay in recovery before it is reported lost
    /// [default: 30 (lan), 60 (openpgm)].
    #[arg(long, value_parser = parse_secs, value_name = "SECS")]
    pub max_recovery: Option<Duration>,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

impl CommonArgs {
    /// The socket and transport options these arguments ask for.
    pub fn transport_options(&self) -> epgm::Options {
        epgm::Options::from(self.socket_options()).with_udp_gso(!self.no_gso)
    }

    /// The socket options these arguments ask for.
    pub fn socket_options(&self) -> SocketOptions {
        let mut o = SocketOptions::default()
            .with_tpdu(self.tpdu)
            .with_nak(self.nak_profile.into())
            .with_hops(self.hops)
            .with_multicast_loop(self.multicast_loop)
            .with_tos(self.tos);
        match self.window {
            Some(Window::Sqns(n)) => o = o.with_window_sqns(n),
            Some(Window::Bytes(b)) => o = o.with_window_bytes(b),
            None => {}
        }
        let mut repair = RepairBudget::default();
        if let Some(share) = self.repair_share {
            repair.share = share;
        }
        repair.rate = self.repair_rate.filter(|&r| r > 0).map(|bits| bits / 8);
        if let Some(n) = self.repair_per_naker {
            repair.per_naker_rate = n;
        }
        let mut limits = ReceiverLimits::default();
        if let Some(n) = self.max_peers {
            limits.max_peers = n as usize;
        }
        if let Some(b) = self.memory {
            limits.max_total_bytes = b;
        }
        o = o.with_repair(repair).with_receiver_limits(limits);
        if let Some(m) = self.max_recovery {
            o = o.with_max_recovery(m);
        }
        o
    }
}

/// Why a tool stopped; [`ToolError::exit_code`] is 2 for usage errors, 1 otherwise.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// A bad argument combination.
    #[error("{0}")]
    Usage(String),
    /// The socket could not be opened.
    #[error("{0}")]
    Open(#[from] OpenError),
    /// Sending failed.
    #[error("send: {0}")]
    Send(#[from] SendError),
    /// Reading stdin or writing stdout failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl ToolError {
    /// 2 for what the user must change (arguments, endpoint, privilege), else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            ToolError::Usage(_) => 2,
            ToolError::Open(e) if e.is_usage() => 2,
            _ => 1,
        }
    }
}

/// Prints `tool: error` to stderr and gives the exit code.
pub fn report_error(tool: &str, e: &ToolError) -> ExitCode {
    eprintln!("{tool}: error: {e}");
    ExitCode::from(e.exit_code())
}

/// `pgm-send` arguments.
#[derive(Debug, Parser)]
#[command(
    name = "pgm-send",
    version,
    about = "Send stdin lines, or numbered test messages, to a PGM or EPGM endpoint",
    after_help = "ENDPOINT is pgm://IFACE;GROUP:PORT (raw IP, needs root or CAP_NET_RAW) or \
                  epgm://IFACE;GROUP:PORT (UDP port PORT), e.g. 'epgm://eth0;239.192.0.1:7500'.\n\
                  Without --count each stdin line is one message. With --count, message i holds \
                  i (u64 BE), a CRC-32 of bytes 12.. (u32 BE) and filler; pgm-recv --verify \
                  checks them.\nPrints one JSON line on stdout at the end: sent, bytes, \
                  elapsed_s (first to last original send, linger excluded), msgs_per_s, \
                  naks_received, ncf_sent, rdata_sent."
)]
pub struct SendArgs {
    /// pgm://IFACE;GROUP:PORT or epgm://IFACE;GROUP:PORT.
    pub endpoint: String,
    /// Send N generated test messages instead of stdin lines.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Size of each test message in bytes (at least 12).
    #[arg(long, default_value_t = 64, value_name = "BYTES")]
    pub size: usize,
    /// Rate limit in bits/s over everything sent, headers included (k/M/G suffixes, e.g.
    /// 100M); unlimited by default.
    #[arg(long, value_parser = parse_rate_arg, default_value = "unlimited", value_name = "BITS")]
    pub rate: u64,
    /// Pace generated test messages at this many per second (k/M suffixes), independently of
    /// the PGM rate limit; as fast as the socket takes them by default.
    #[arg(long, value_parser = parse_msg_rate, value_name = "MSGS")]
    pub msg_rate: Option<f64>,
    /// Seconds to keep answering NAKs after the last message.
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    pub linger: f64,
    /// Busy-poll: waits for queue space spin instead of blocking (lower latency, one core
    /// at 100 % while waiting; see SocketOptions::busy_poll).
    #[arg(long)]
    pub spin: bool,
    /// Options shared with pgm-recv.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// What `pgm-send` reports at the end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SendReport {
    /// Messages sent.
    pub sent: u64,
    /// Payload bytes sent.
    pub bytes: u64,
    /// Seconds from the first send until the last message was on the wire.
    pub elapsed_s: f64,
    /// NAKs received.
    pub naks_received: u64,
    /// NCFs sent.
    pub ncf_sent: u64,
    /// RDATA sent.
    pub rdata_sent: u64,
    /// CLOCK_MONOTONIC (ns) when the last message was on the wire (benchmark repair tails).
    pub last_mono_ns: u64,
}

impl SendReport {
    /// The one JSON line.
    pub fn to_json(&self) -> String {
        let mut fields = sender_fields(
            self.sent,
            self.bytes,
            self.elapsed_s,
            [self.naks_received, self.ncf_sent, self.rdata_sent],
        );
        fields.push(("last_mono_ns", self.last_mono_ns.into()));
        json_line(&fields)
    }
}

/// The summary keys every sending tool (`pgm-send`, `pgm-pub`) reports, in order: `sent`,
/// `bytes`, `elapsed_s`, `msgs_per_s`, then `[naks_received, ncf_sent, rdata_sent]`.
pub fn sender_fields(
    sent: u64,
    bytes: u64,
    elapsed_s: f64,
    [naks_received, ncf_sent, rdata_sent]: [u64; 3],
) -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("sent", sent.into()),
        ("bytes", bytes.into()),
        ("elapsed_s", round3(elapsed_s).into()),
        ("msgs_per_s", msgs_per_s(sent, elapsed_s).into()),
        ("naks_received", naks_received.into()),
        ("ncf_sent", ncf_sent.into()),
        ("rdata_sent", rdata_sent.into()),
    ]
}

/// One JSON object on one line, keys in the given order (serde_json's `Map` would sort them).
pub fn json_line(fields: &[(&str, serde_json::Value)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", serde_json::Value::from(*k)))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// Rounds to milliseconds for reports.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The `msgs_per_s` of every tool's report: `count` messages over `elapsed_s` seconds, rounded
/// to a whole number (0 when no time passed).
pub fn msgs_per_s(count: u64, elapsed_s: f64) -> f64 {
    if elapsed_s > 0.0 {
        (count as f64 / elapsed_s).round()
    } else {
        0.0
    }
}

/// A once-a-second progress line on stderr.
#[derive(Debug)]
pub struct Progress {
    clock: Clock,
    next: Duration,
    last_msgs: u64,
    last_bytes: u64,
    enabled: bool,
}

impl Progress {
    /// Starts the first second now.
    pub fn new(clock: Clock, enabled: bool) -> Self {
        Progress {
            next: clock.elapsed() + Duration::from_secs(1),
            clock,
            last_msgs: 0,
            last_bytes: 0,
            enabled,
        }
    }

    /// Time until the next line is due.
    pub fn until_next(&self) -> Duration {
        self.next.saturating_sub(self.clock.elapsed())
    }

    /// Prints a line if a second has passed: `tool: N msgs/s, X Mbit/s, <extra>`.
    pub fn tick(&mut self, tool: &str, msgs: u64, bytes: u64, extra: impl FnOnce() -> String) {
        let now = self.clock.elapsed();
        if now < self.next {
            return;
        }
        // The last line was due one second before `next`.
        let secs = (now + Duration::from_secs(1))
            .saturating_sub(self.next)
            .as_secs_f64();
        self.next = now + Duration::from_secs(1);
        if self.enabled {
            let m = (msgs - self.last_msgs) as f64 / secs;
            let mbit = (bytes - self.last_bytes) as f64 * 8.0 / secs / 1e6;
            eprintln!(
                "{tool}: {m:.0} msgs/s, {mbit:.1} Mbit/s, {msgs} total, {}",
                extra()
            );
        }
        self.last_msgs = msgs;
        self.last_bytes = bytes;
    }
}

/// Generated test messages handed to the socket per call.
const SEND_BATCH: usize = 32;

/// Runs `pgm-send`; returns the report after the linger time.
pub fn run_send(args: &SendArgs) -> Result<SendReport, ToolError> {
    if args.count.is_some() && args.size < TEST_HEADER {
        return Err(ToolError::Usage(format!(
            "--size {} is too small: test messages are at least {TEST_HEADER} bytes \
             (8-byte sequence number + 4-byte CRC)",
            args.size
        )));
    }
    if !(0.0..=3600.0).contains(&args.linger) {
        return Err(ToolError::Usage(format!(
            "--linger {} out of range 0..3600",
            args.linger
        )));
    }
    let mut opts = args.common.transport_options();
    opts.socket = opts
        .socket
        .with_rate((args.rate > 0).then_some(args.rate))
        .with_linger(Duration::from_secs_f64(args.linger))
        .with_busy_poll(args.spin);
    let sock = epgm::open_sender(&args.endpoint, &opts)?;
    if args.count.is_some() && args.size > sock.max_message() {
        return Err(ToolError::Usage(format!(
            "--size {} is larger than the largest message ({} bytes with this tpdu and window)",
            args.size,
            sock.max_message()
        )));
    }
    if !args.common.quiet {
        eprintln!("pgm-send: sending on {} as {}", args.endpoint, sock.tsi());
    }
    let clock = Clock::new();
    let mut progress = Progress::new(clock, !args.common.quiet);
    let mut report = SendReport::default();
    let mut started = None;
    let extra = |s: &SendSocket| {
        let st = s.stats();
        format!(
            "naks {}, rdata {}",
            st.engine.naks_received, st.engine.rdata_sent
        )
    };
    if let Some(count) = args.count {
        // Generated messages are all ready at once: hand them over a batch at a time, so the
        // socket sends them in one `sendmmsg` (one GSO send for EPGM) instead of one syscall
        // each. Each is still its own APDU and packet.
        let mut buf = vec![0u8; args.size];
        let mut batch = Vec::with_capacity(SEND_BATCH);
        let start = clock.elapsed();
        started = Some(start);
        for seq in 0..count {
            fill_test_message(seq, &mut buf);
            batch.push(Bytes::copy_from_slice(&buf));
            // Paced: hand over what is due, then wait for the next message's time.
            let due = args
                .msg_rate
                .map(|r| start + Duration::from_secs_f64((seq + 1) as f64 / r));
            let early = due.is_some_and(|d| d > clock.elapsed());
            if batch.len() == SEND_BATCH || seq + 1 == count || early {
                report.sent += batch.len() as u64;
                report.bytes += (batch.len() * buf.len()) as u64;
                sock.send_many(batch.drain(..))?;
            }
            if seq.is_multiple_of(256) {
                progress.tick("pgm-send", report.sent, report.bytes, || extra(&sock));
            }
            if let Some(d) = due {
                std::thread::sleep(d.saturating_sub(clock.elapsed()));
            }
        }
    } else {
        let stdin = io::stdin();
        let mut line = Vec::new();
        let mut input = stdin.lock();
        while read_line(&mut input, &mut line)? {
            started.get_or_insert_with(|| clock.elapsed());
            sock.send(&line)?;
            report.sent += 1;
            report.bytes += line.len() as u64;
            progress.tick("pgm-send", report.sent, report.bytes, || extra(&sock));
        }
    }
    sock.flush()?;
    report.last_mono_ns = crate::udp_perf::mono_ns();
    report.elapsed_s = started.map_or(0.0, |t| clock.elapsed().saturating_sub(t).as_secs_f64());
    sock.close()?;
    let st = sock.stats();
    report.naks_received = st.engine.naks_received;
    report.ncf_sent = st.engine.ncf_sent;
    report.rdata_sent = st.engine.rdata_sent;
    if let Some(e) = &st.last_send_error {
        if !args.common.quiet {
            eprintln!("pgm-send: {} send errors, last: {e}", st.io.send_errors);
        }
    }
    Ok(report)
}

/// Reads the next line of `input` into `line`, without its `\n` or `\r\n`; false at the end of
/// the input. The stdin mode of the sending tools (`pgm-send`, `pgm-pub`).
pub fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<bool> {
    line.clear();
    if input.read_until(b'\n', line)? == 0 {
        return Ok(false);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    Ok(true)
}

/// The main of a sending tool (`pgm-send`, `pgm-pub`): runs `run`, prints the JSON line it
/// returns, maps errors to exit codes.
pub fn sender_main(tool: &str, run: impl FnOnce() -> Result<String, ToolError>) -> ExitCode {
    match run() {
        Ok(json) => {
            let mut out = io::stdout().lock();
            if writeln!(out, "{json}").is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => report_error(tool, &e),
    }
}

/// `pgm-send`'s main: runs, prints the JSON line, maps errors to exit codes.
pub fn send_main(args: &SendArgs) -> ExitCode {
    sender_main("pgm-send", || run_send(args).map(|r| r.to_json()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_messages_round_trip() {
        for size in [12, 13, 64, 1400, 20 * 1024] {
            let mut buf = vec![0; size];
            fill_test_message(77, &mut buf);
            assert_eq!(check_test_message(&buf), Ok(77));
            assert_eq!(&buf[..8], &77u64.to_be_bytes());
            if size > 12 {
                buf[size - 1] ^= 1;
                assert_eq!(check_test_message(&buf), Err(TestMessageError::BadCrc));
            }
        }
        assert_eq!(
            check_test_message(&[0; 11]),
            Err(TestMessageError::TooShort(11))
        );
        // The filler depends on the sequence number: a swapped header fails.
        let (mut a, mut b) = (vec![0; 40], vec![0; 40]);
        fill_test_message(1, &mut a);
        fill_test_message(2, &mut b);
        a[..12].copy_from_slice(&b[..12]);
        assert_eq!(check_test_message(&a), Err(TestMessageError::BadCrc));
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("100M"), Ok(Some(100_000_000)));
        assert_eq!(parse_rate("1.5G"), Ok(Some(1_500_000_000)));
        assert_eq!(parse_rate("64k"), Ok(Some(64_000)));
        assert_eq!(parse_rate("64000"), Ok(Some(64_000)));
        assert_eq!(parse_rate("10Mbit/s"), Ok(Some(10_000_000)));
        assert_eq!(parse_rate("0"), Ok(None));
        assert_eq!(parse_rate("unlimited"), Ok(None));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("-5M").is_err());
    }

    #[test]
    fn windows() {
        assert_eq!(parse_window("10000"), Ok(Window::Sqns(10_000)));
        assert_eq!(parse_window("16MiB"), Ok(Window::Bytes(16 << 20)));
        assert_eq!(parse_window("32MB"), Ok(Window::Bytes(32_000_000)));
        assert_eq!(parse_window("64KiB"), Ok(Window::Bytes(65_536)));
        assert_eq!(parse_window("1500B"), Ok(Window::Bytes(1500)));
        assert!(parse_window("0").is_err());
        assert!(parse_window("16 parsecs").is_err());
        assert!(parse_window("MiB").is_err());
    }

    #[test]
    fn report_json_has_the_agreed_keys() {
        let r = SendReport {
            sent: 10,
            bytes: 640,
            elapsed_s: 0.5,
            naks_received: 1,
            ncf_sent: 1,
            rdata_sent: 2,
            ..SendReport::default()
        };
        let line = r.to_json();
        assert!(
            line.starts_with(r#"{"sent":10,"bytes":640,"elapsed_s":0.5,"#),
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["sent"], 10);
        assert_eq!(v["msgs_per_s"], 20.0);
        for k in [
            "bytes",
            "elapsed_s",
            "naks_received",
            "ncf_sent",
            "rdata_sent",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
    }

    #[test]
    fn usage_errors_exit_2() {
        let e = ToolError::Open(OpenError::Option("x".into()));
        assert_eq!(e.exit_code(), 2);
        assert_eq!(ToolError::Usage("x".into()).exit_code(), 2);
        assert_eq!(ToolError::Send(SendError::Closed).exit_code(), 1);
    }
}
