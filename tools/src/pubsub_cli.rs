//! `pgm-pub` and `pgm-sub`: the PUB/SUB layer (`pubsub` crate, libzmq framing) on the command
//! line.
//!
//! - `pgm-pub` publishes two-frame messages `[topic][payload]`: numbered test messages
//!   round-robin over `--topic`s (the payload in `pgm-send`'s test-message format, numbered
//!   **per topic** from 0), or stdin lines `TOPIC text`.
//! - `pgm-sub` subscribes to topic prefixes and prints `topic payload` lines, or with
//!   `--verify` checks every (publisher TSI, topic) sequence and the CRCs and prints one JSON
//!   summary line with per-topic counts.
//!
//! Subscriptions follow ZeroMQ: no `--subscribe` delivers **nothing**, `--subscribe ''`
//! delivers everything, and a prefix matches topics that start with its bytes.

use std::{
    collections::{BTreeMap, HashMap},
    io::{self, Write},
    process::ExitCode,
    time::Duration,
};

use clap::Parser;
use pgm::{
    socket::{Clock, RecvError, SendError as SockSendError},
    wire::Tsi,
};
use pubsub::{ConnectError, Message, Options, Publisher, RecvEvent, Subscriber};

use crate::recv::{idle_timeout, next_wait, receiver_main, Activity, RunEnd};
use crate::send::{
    check_test_message, fill_test_message, json_line, msgs_per_s, parse_rate_arg, read_line,
    round3, sender_fields, sender_main, CommonArgs, Progress, ToolError, TEST_HEADER,
};
use crate::senders::Senders;

/// The topic of `pgm-pub --count` when no `--topic` is given.
pub const DEFAULT_TOPIC: &str = "test";

/// Idle timeout of `pgm-sub` when `--count` or `--verify` is given and `--timeout` is not
/// (`pgm-recv`'s).
pub const DEFAULT_TIMEOUT: Duration = crate::recv::DEFAULT_TIMEOUT;

/// The largest `--size`: the default message limit of a subscriber (16 MiB) less room for the
/// topic.
pub const MAX_SIZE: usize = pubsub::decoder::DEFAULT_MAX_MESSAGE_SIZE - 64 * 1024;

/// `--size`: one payload size, or a range `MIN-MAX` that messages spread over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeRange {
    /// Smallest payload.
    pub min: usize,
    /// Largest payload.
    pub max: usize,
}

/// Parses `--size`: `N` or `MIN-MAX` (also `MIN..MAX`) in bytes; each bound may carry `k`/`KiB`
/// (2^10) or `M`/`MiB` (2^20).
pub fn parse_size_range(s: &str) -> Result<SizeRange, String> {
    let one = |t: &str| -> Result<usize, String> {
        let t = t.trim();
        let (num, mult) = if let Some(n) = t.strip_suffix("KiB").or_else(|| t.strip_suffix('k')) {
            (n, 1024)
        } else if let Some(n) = t.strip_suffix("MiB").or_else(|| t.strip_suffix('M')) {
            (n, 1024 * 1024)
        } else {
            (t.strip_suffix('B').unwrap_or(t), 1)
        };
        num.trim()
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_mul(mult))
            .ok_or_else(|| {
                format!("bad size {s:?}: expected BYTES or MIN-MAX, like 64 or 12-100KiB")
            })
    };
    let (min, max) = if let Some((a, b)) = s.split_once("..").or_else(|| s.split_once('-')) {
        (one(a)?, one(b)?)
    } else {
        let n = one(s)?;
        (n, n)
    };
    if min > max {
        return Err(format!("bad size {s:?}: MIN is larger than MAX"));
    }
    Ok(SizeRange { min, max })
}

impl SizeRange {
    /// The payload size of message `i`: fixed, or spread log-uniformly over the range by a hash
    /// of `i` (so small and large sizes are equally common per decade), with the bounds
    /// themselves every 16 messages.
    pub fn size_of(&self, i: u64) -> usize {
        if self.min == self.max {
            return self.min;
        }
        match i % 16 {
            0 => return self.min,
            1 => return self.max,
            _ => {}
        }
        // splitmix64 of the index: a deterministic spread.
        let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let u = (z >> 11) as f64 / (1u64 << 53) as f64;
        let (lo, hi) = ((self.min.max(1) as f64).ln(), (self.max as f64).ln());
        let size = (lo + u * (hi - lo)).exp().round();
        #[allow(clippy::cast_sign_loss)] // exp() is positive
        let size = size as usize;
        size.clamp(self.min, self.max)
    }
}

fn connect_error(e: ConnectError) -> ToolError {
    match e {
        ConnectError::Open(e) => ToolError::Open(e),
        other => ToolError::Usage(other.to_string()),
    }
}

fn send_error(e: pubsub::SendError) -> ToolError {
    ToolError::Send(match e {
        pubsub::SendError::WouldBlock => SockSendError::WouldBlock,
        pubsub::SendError::Closed => SockSendError::Closed,
        other => SockSendError::Failed(other.to_string()),
    })
}

/// `pgm-pub` arguments.
#[derive(Debug, Parser)]
#[command(
    name = "pgm-pub",
    version,
    about = "Publish two-frame [topic][payload] messages (libzmq framing) to a PGM or EPGM endpoint",
    after_help = "ENDPOINT is pgm://IFACE;GROUP:PORT (raw IP, needs root or CAP_NET_RAW) or \
                  epgm://IFACE;GROUP:PORT (UDP port PORT); IFACE is an interface name or \
                  address. libzmq SUBs read it (ZMQ_SUBSCRIBE filters on the topic frame).\n\
                  With --count, message i goes to topic i mod T (the --topic list, default \
                  'test'); its payload is a test message numbered per topic from 0 (u64 BE), \
                  a CRC-32 of bytes 12.. (u32 BE) and filler: pgm-sub --verify checks them.\n\
                  Without --count each stdin line 'TOPIC text' is one message [TOPIC][text] \
                  (a line without a space is [line][]).\n\
                  APDUs are never fragmented and hold at least 3 bytes (what libzmq accepts).\n\
                  Prints one JSON line on stdout at the end: sent, bytes (topic + payload), \
                  elapsed_s (first send until the last APDU was on the wire), msgs_per_s, \
                  naks_received, ncf_sent, rdata_sent, apdus, max_payload."
)]
pub struct PubArgs {
    /// pgm://IFACE;GROUP:PORT or epgm://IFACE;GROUP:PORT.
    pub endpoint: String,
    /// A topic for --count messages (repeatable: round-robin).
    #[arg(long = "topic", value_name = "TOPIC")]
    pub topics: Vec<String>,
    /// Publish N numbered test messages instead of stdin lines.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Payload bytes of each test message (at least 12), or a range MIN-MAX (e.g. 12-100KiB)
    /// that sizes spread over log-uniformly.
    #[arg(long, default_value = "64", value_parser = parse_size_range, value_name = "BYTES|MIN-MAX")]
    pub size: SizeRange,
    /// Rate limit in bits/s over everything sent, headers included (k/M/G suffixes);
    /// unlimited by default.
    #[arg(long, value_parser = parse_rate_arg, default_value = "unlimited", value_name = "BITS")]
    pub rate: u64,
    /// Seconds to keep answering NAKs after the last message.
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    pub linger: f64,
    /// How long a part-filled APDU waits for more messages, in µs (0: every message leaves
    /// at once).
    #[arg(long, default_value_t = 500, value_name = "MICROS")]
    pub batch_linger_us: u64,
    /// Largest APDU in bytes (offset field included); default libzmq's PGM_MSS for the TPDU
    /// (1428 epgm, 1436 pgm at 1500).
    #[arg(long, value_name = "BYTES")]
    pub max_payload: Option<usize>,
    /// Transport options shared with pgm-send and pgm-recv.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// What `pgm-pub` reports at the end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PubReport {
    /// Messages published.
    pub sent: u64,
    /// Frame bytes published (topic + payload).
    pub bytes: u64,
    /// Seconds from the first send until the last APDU was on the wire.
    pub elapsed_s: f64,
    /// NAKs received.
    pub naks_received: u64,
    /// NCFs sent.
    pub ncf_sent: u64,
    /// RDATA sent.
    pub rdata_sent: u64,
    /// APDUs (ODATA packets) the encoder produced.
    pub apdus: u64,
    /// The APDU size limit in use.
    pub max_payload: usize,
}

impl PubReport {
    /// The one JSON line.
    pub fn to_json(&self) -> String {
        let mut fields = sender_fields(
            self.sent,
            self.bytes,
            self.elapsed_s,
            [self.naks_received, self.ncf_sent, self.rdata_sent],
        );
        fields.push(("apdus", self.apdus.into()));
        fields.push(("max_payload", self.max_payload.into()));
        json_line(&fields)
    }
}

impl PubArgs {
    /// The pubsub options these arguments ask for.
    pub fn options(&self) -> Result<Options, ToolError> {
        if !(0.0..=3600.0).contains(&self.linger) {
            return Err(ToolError::Usage(format!(
                "--linger {} out of range 0..3600",
                self.linger
            )));
        }
        if self.batch_linger_us > 10_000_000 {
            return Err(ToolError::Usage(format!(
                "--batch-linger-us {} out of range 0..=10000000",
                self.batch_linger_us
            )));
        }
        let mut transport = self.common.transport_options();
        transport.socket = transport
            .socket
            .with_rate((self.rate > 0).then_some(self.rate))
            .with_linger(Duration::from_secs_f64(self.linger));
        let mut o = Options::default()
            .with_transport(transport)
            .with_batch_linger(Duration::from_micros(self.batch_linger_us));
        if let Some(p) = self.max_payload {
            o = o.with_max_payload(p);
        }
        Ok(o)
    }

    fn check(&self) -> Result<(), ToolError> {
        if self.count.is_some() {
            if self.size.min < TEST_HEADER {
                return Err(ToolError::Usage(format!(
                    "--size {} is too small: test messages are at least {TEST_HEADER} bytes \
                     (8-byte sequence number + 4-byte CRC)",
                    self.size.min
                )));
            }
            if self.size.max > MAX_SIZE {
                return Err(ToolError::Usage(format!(
                    "--size {} is larger than {MAX_SIZE} (subscribers' message limit)",
                    self.size.max
                )));
            }
        } else if !self.topics.is_empty() {
            return Err(ToolError::Usage(
                "--topic needs --count (stdin lines carry their own topic)".into(),
            ));
        }
        Ok(())
    }
}

/// Runs `pgm-pub`; returns the report after the linger time.
pub fn run_pub(args: &PubArgs) -> Result<PubReport, ToolError> {
    args.check()?;
    let opts = args.options()?;
    let mut publisher = Publisher::connect(&args.endpoint, &opts).map_err(connect_error)?;
    let max_payload = publisher.max_payload();
    let quiet = args.common.quiet;
    if !quiet {
        eprintln!(
            "pgm-pub: publishing on {} as {} (APDUs of at most {max_payload} bytes)",
            args.endpoint,
            publisher.tsi()
        );
    }
    let clock = Clock::new();
    let mut progress = Progress::new(clock, !quiet);
    let mut report = PubReport {
        max_payload,
        ..PubReport::default()
    };
    let extra = |p: &Publisher| {
        let st = p.stats();
        format!(
            "apdus {}, naks {}, rdata {}",
            st.encoder.apdus, st.transport.engine.naks_received, st.transport.engine.rdata_sent
        )
    };
    let mut started = None;
    if let Some(count) = args.count {
        let topics: Vec<&str> = if args.topics.is_empty() {
            vec![DEFAULT_TOPIC]
        } else {
            args.topics.iter().map(String::as_str).collect()
        };
        // A topic listed twice gets twice the messages, numbered in one sequence.
        let mut unique: HashMap<&str, usize> = HashMap::new();
        let slot: Vec<usize> = topics
            .iter()
            .map(|t| {
                let n = unique.len();
                *unique.entry(t).or_insert(n)
            })
            .collect();
        let mut seqs = vec![0u64; unique.len()];
        let mut buf = vec![0u8; args.size.max];
        started = Some(clock.elapsed());
        for i in 0..count {
            let k = (i % topics.len() as u64) as usize;
            let topic = topics[k].as_bytes();
            let len = args.size.size_of(i);
            let seq = &mut seqs[slot[k]];
            fill_test_message(*seq, &mut buf[..len]);
            *seq += 1;
            publisher.send(topic, &buf[..len]).map_err(send_error)?;
            report.sent += 1;
            report.bytes += (topic.len() + len) as u64;
            if i.is_multiple_of(256) {
                progress.tick("pgm-pub", report.sent, report.bytes, || extra(&publisher));
            }
        }
    } else {
        let stdin = io::stdin();
        let mut input = stdin.lock();
        let mut line = Vec::new();
        while read_line(&mut input, &mut line)? {
            let (topic, text) = match line.iter().position(|&b| b == b' ') {
                Some(sp) => (&line[..sp], &line[sp + 1..]),
                None => (&line[..], &[][..]),
            };
            started.get_or_insert_with(|| clock.elapsed());
            publisher.send(topic, text).map_err(send_error)?;
            report.sent += 1;
            report.bytes += (topic.len() + text.len()) as u64;
            progress.tick("pgm-pub", report.sent, report.bytes, || extra(&publisher));
        }
    }
    publisher.flush().map_err(send_error)?;
    report.elapsed_s = started.map_or(0.0, |t| clock.elapsed().saturating_sub(t).as_secs_f64());
    publisher.close().map_err(send_error)?;
    let st = publisher.stats();
    report.apdus = st.encoder.apdus;
    report.naks_received = st.transport.engine.naks_received;
    report.ncf_sent = st.transport.engine.ncf_sent;
    report.rdata_sent = st.transport.engine.rdata_sent;
    if let Some(e) = &st.transport.last_send_error {
        if !quiet {
            eprintln!(
                "pgm-pub: {} send errors, last: {e}",
                st.transport.io.send_errors
            );
        }
    }
    Ok(report)
}

/// `pgm-pub`'s main: runs, prints the JSON line, maps errors to exit codes.
pub fn pub_main(args: &PubArgs) -> ExitCode {
    sender_main("pgm-pub", || run_pub(args).map(|r| r.to_json()))
}

/// `pgm-sub` arguments.
#[derive(Debug, Parser)]
#[command(
    name = "pgm-sub",
    version,
    about = "Subscribe to topic prefixes on a PGM or EPGM endpoint: print messages, or verify \
             pgm-pub test messages",
    after_help = "ENDPOINT is pgm://IFACE;GROUP:PORT (raw IP, needs root or CAP_NET_RAW) or \
                  epgm://IFACE;GROUP:PORT (UDP port PORT). Reads pgm-pub and libzmq PUBs.\n\
                  Subscriptions work as in ZeroMQ: a message is delivered when its first frame \
                  starts with some --subscribe prefix; --subscribe '' takes everything and NO \
                  --subscribe DELIVERS NOTHING.\n\
                  Prints each message as one line: the frames, lossy UTF-8, separated by \
                  spaces ('topic payload').\n\
                  Timeout: with --count or --verify, pgm-sub exits after 10 s without data \
                  unless --timeout says otherwise; otherwise it waits forever unless --timeout \
                  is given. --timeout 0 means forever.\n\
                  --verify expects [topic][test message] and checks the per-topic sequence of \
                  each publisher (TSI; a restarted publisher starts again at 0) and the CRC; \
                  it prints one JSON line at the end: received, topics {topic: count}, gaps, \
                  duplicates, corrupt (bad CRC, short, or not 2 frames), unrecoverable \
                  (sequence numbers the transport reported lost), filtered_out, elapsed_s, \
                  msgs_per_s, gap_events, naks_sent, repaired, senders, decode_errors; it exits 1 when \
                  gaps, corrupt or unrecoverable are not 0. Any mode exits 1 with fewer than \
                  --count messages."
)]
pub struct SubArgs {
    /// pgm://IFACE;GROUP:PORT or epgm://IFACE;GROUP:PORT.
    pub endpoint: String,
    /// Deliver topics starting with PREFIX (repeatable; '' = everything; none = nothing).
    #[arg(long = "subscribe", value_name = "PREFIX")]
    pub subscribe: Vec<String>,
    /// Exit after N delivered messages.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Exit after this many seconds without data (see below for the default).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Check pgm-pub test messages instead of printing them.
    #[arg(long)]
    pub verify: bool,
    /// Largest message (all frames) accepted; longer ones are decode errors.
    #[arg(long, default_value_t = pubsub::decoder::DEFAULT_MAX_MESSAGE_SIZE, value_name = "BYTES")]
    pub max_message_size: usize,
    /// Transport options shared with pgm-send and pgm-recv.
    #[command(flatten)]
    pub common: CommonArgs,
}

impl SubArgs {
    /// The idle timeout in force; `None` waits forever.
    pub fn idle_timeout(&self) -> Result<Option<Duration>, ToolError> {
        idle_timeout(self.timeout, self.count.is_some() || self.verify)
    }
}

/// Checks `[topic][test message]` messages: per publisher (TSI) and topic, the sequence must
/// go up by one; every payload must pass its CRC.
///
/// A (TSI, topic) stream first heard mid-way starts wherever it is heard (late join is not a
/// gap); a restarted publisher has a new TSI and starts over at 0. Publishers none of whose
/// messages passed the check (forged sessions, garbage) are counted apart ([`Senders`]) and do
/// not fail verification.
#[derive(Debug, Default, Clone)]
pub struct TopicVerifier {
    /// The next expected sequence number per publisher and topic.
    next: HashMap<Tsi, HashMap<Vec<u8>, u64>>,
    /// Per-publisher counts: verified publishers and the others.
    pub senders: Senders,
    /// Messages delivered per topic (valid messages when verifying, all when printing).
    pub topics: BTreeMap<Vec<u8>, u64>,
    /// Messages delivered: of verified publishers when verifying (what `--count` counts), all
    /// of them when printing.
    pub received: u64,
    /// Test sequence numbers skipped.
    pub gaps: u64,
    /// Messages at or below a number already seen in their stream.
    pub duplicates: u64,
}

impl TopicVerifier {
    /// A verifier that has seen nothing.
    pub fn new() -> Self {
        TopicVerifier::default()
    }

    /// Checks one delivered message.
    pub fn on_message(&mut self, m: &Message) {
        let topic: &[u8] = m.topic();
        let checked = match m.frames.as_slice() {
            [_, payload] => check_test_message(payload).ok(),
            _ => None,
        };
        self.senders.message(m.tsi, checked.is_some());
        self.received = self.senders.verified_messages;
        let Some(seq) = checked else {
            return;
        };
        count_topic(&mut self.topics, topic);
        let streams = self.next.entry(m.tsi).or_default();
        let next = match streams.get_mut(topic) {
            Some(n) => n,
            None => streams.entry(topic.to_vec()).or_insert(seq),
        };
        if seq < *next {
            self.duplicates += 1;
            return;
        }
        self.gaps += seq - *next;
        *next = seq + 1;
    }

    /// Counts a loss notice of `lost` sequence numbers from `tsi`.
    pub fn on_gap(&mut self, tsi: Tsi, lost: u32) {
        self.senders.loss(tsi, lost);
    }

    /// True when nothing of a verified publisher was missing or corrupt.
    pub fn is_clean(&self) -> bool {
        let (v, _) = self.senders.verified();
        self.gaps == 0 && v.corrupt == 0 && v.unrecoverable == 0
    }

    /// The per-topic counts as a JSON object (topics as lossy UTF-8).
    pub fn topics_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (t, n) in &self.topics {
            let key = String::from_utf8_lossy(t).into_owned();
            let prev = map
                .get(&key)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            map.insert(key, (prev + n).into());
        }
        serde_json::Value::Object(map)
    }
}

/// Adds one to `topic`'s count, allocating only for a new topic.
fn count_topic(topics: &mut BTreeMap<Vec<u8>, u64>, topic: &[u8]) {
    match topics.get_mut(topic) {
        Some(n) => *n += 1,
        None => {
            topics.insert(topic.to_vec(), 1);
        }
    }
}

/// How a `pgm-sub` run ended.
#[derive(Debug, Clone)]
pub struct SubOutcome {
    /// The verifier's counts (in print mode only `received`, `topics` and the loss counts).
    pub verifier: TopicVerifier,
    /// Seconds from the first to the last delivered message.
    pub elapsed_s: f64,
    /// Messages the filter skipped.
    pub filtered_out: u64,
    /// NAK packets sent.
    pub naks_sent: u64,
    /// Sequence numbers repaired (RDATA that filled a gap).
    pub repaired: u64,
    /// Framing errors (each one drops a partial message and resyncs).
    pub decode_errors: u64,
    /// `--count` was given and not reached.
    pub short: bool,
}

impl SubOutcome {
    /// 0 when all is well; 1 when messages are missing or corrupt (verify) or fewer than
    /// `--count` arrived.
    pub fn exit_code(&self, verify: bool) -> u8 {
        u8::from(self.short || (verify && !self.verifier.is_clean()))
    }

    /// The `--verify` JSON line.
    pub fn to_json(&self) -> String {
        let v = &self.verifier;
        let (ok, senders) = v.senders.verified();
        let (o, others) = v.senders.others();
        json_line(&[
            ("received", v.received.into()),
            ("topics", v.topics_json()),
            ("gaps", v.gaps.into()),
            ("duplicates", v.duplicates.into()),
            ("corrupt", ok.corrupt.into()),
            ("unrecoverable", ok.unrecoverable.into()),
            ("filtered_out", self.filtered_out.into()),
            ("elapsed_s", round3(self.elapsed_s).into()),
            ("msgs_per_s", msgs_per_s(v.received, self.elapsed_s).into()),
            ("gap_events", ok.loss_events.into()),
            ("naks_sent", self.naks_sent.into()),
            ("repaired", self.repaired.into()),
            ("senders", senders.into()),
            ("others", o.to_json(others)),
            ("decode_errors", self.decode_errors.into()),
        ])
    }
}

/// Writes a message as one line: its frames, lossy UTF-8, separated by spaces.
fn print_message(out: &mut dyn Write, m: &Message) -> io::Result<()> {
    for (i, f) in m.frames.iter().enumerate() {
        if i > 0 {
            out.write_all(b" ")?;
        }
        out.write_all(String::from_utf8_lossy(f).as_bytes())?;
    }
    out.write_all(b"\n")
}

/// Opens the subscriber of `args`, subscribes, and says so on stderr.
fn open_sub(args: &SubArgs) -> Result<Subscriber, ToolError> {
    let opts = Options::default()
        .with_transport(args.common.transport_options())
        .with_max_message_size(args.max_message_size);
    let mut sub = Subscriber::connect(&args.endpoint, &opts).map_err(connect_error)?;
    for p in &args.subscribe {
        sub.subscribe(p.as_bytes());
    }
    if !args.common.quiet {
        if args.subscribe.is_empty() {
            eprintln!(
                "pgm-sub: warning: no --subscribe given, so nothing will be delivered (as in \
                 ZeroMQ); use --subscribe '' for everything"
            );
        }
        eprintln!(
            "pgm-sub: listening on {}, subscribed to {:?}",
            args.endpoint, args.subscribe
        );
    }
    Ok(sub)
}

/// The progress line of `pgm-sub`, if one is due.
fn sub_tick(progress: &mut Progress, sub: &Subscriber, v: &TopicVerifier, bytes: u64) {
    progress.tick("pgm-sub", v.received, bytes, || {
        let s = sub.stats();
        format!(
            "filtered {}, naks {}, repaired {}, lost {}",
            s.decoder.filtered_out,
            s.transport.engine.naks_sent,
            s.transport.engine.repaired,
            s.transport.engine.lost_sqns
        )
    });
}

/// Runs `pgm-sub`, printing messages to `out` (unless verifying).
pub fn run_sub(args: &SubArgs, out: &mut dyn Write) -> Result<SubOutcome, ToolError> {
    let idle = args.idle_timeout()?;
    let mut sub = open_sub(args)?;
    let quiet = args.common.quiet;
    let clock = Clock::new();
    let mut progress = Progress::new(clock, !quiet);
    let mut v = TopicVerifier::new();
    let mut bytes = 0u64;
    let mut activity = Activity::new(clock.elapsed());
    let mut apdus_seen = 0u64;
    let wanted = args.count.unwrap_or(u64::MAX);
    while v.received < wanted {
        let ev = match sub.try_recv() {
            Ok(ev) => ev,
            Err(RecvError::Empty) => {
                out.flush()?;
                let now = clock.elapsed();
                activity.settle(now);
                // Data that the filter skipped is activity too.
                let apdus = sub.stats().decoder.apdus;
                if apdus != apdus_seen {
                    apdus_seen = apdus;
                    activity.idle_since = now;
                }
                let waited = now.saturating_sub(activity.idle_since);
                let Some(wait) = next_wait(idle, waited, &progress) else {
                    break;
                };
                match sub
                    .recv_timeout(wait.clamp(Duration::from_millis(1), Duration::from_millis(250)))
                {
                    Ok(ev) => ev,
                    Err(RecvError::Timeout) => {
                        sub_tick(&mut progress, &sub, &v, bytes);
                        continue;
                    }
                    Err(e) => return Err(ToolError::Io(io::Error::other(e))),
                }
            }
            Err(e) => return Err(ToolError::Io(io::Error::other(e))),
        };
        match ev {
            RecvEvent::Message(m) => {
                activity.delivered(&clock);
                bytes += m.frames.iter().map(|f| f.len() as u64).sum::<u64>();
                if args.verify {
                    v.on_message(&m);
                } else {
                    v.received += 1;
                    count_topic(&mut v.topics, m.topic());
                    print_message(out, &m)?;
                }
            }
            RecvEvent::Gap { tsi, lost } => {
                v.on_gap(tsi, lost);
                if !quiet {
                    eprintln!("pgm-sub: {tsi}: {lost} packets lost; resyncing at the next message");
                }
            }
            _ => {}
        }
        if v.received.is_multiple_of(256) {
            sub_tick(&mut progress, &sub, &v, bytes);
        }
    }
    activity.settle(clock.elapsed());
    out.flush()?;
    let stats = sub.stats();
    sub.close();
    Ok(SubOutcome {
        short: args.count.is_some_and(|c| v.received < c),
        elapsed_s: activity.elapsed_s(),
        filtered_out: stats.decoder.filtered_out,
        naks_sent: stats.transport.engine.naks_sent,
        repaired: stats.transport.engine.repaired,
        decode_errors: stats.decoder.decode_errors,
        verifier: v,
    })
}

/// `pgm-sub`'s main: runs, prints the JSON line when verifying, maps errors to exit codes.
pub fn sub_main(args: &SubArgs) -> ExitCode {
    receiver_main("pgm-sub", args.common.quiet, args.count, |out| {
        let o = run_sub(args, out)?;
        Ok(RunEnd {
            json: args.verify.then(|| o.to_json()),
            received: o.verifier.received,
            short: o.short,
            exit_code: o.exit_code(args.verify),
        })
    })
}

#[cfg(test)]
mod tests {
    use pgm::wire::Gsi;

    use super::*;

    fn tsi(n: u16) -> Tsi {
        Tsi::new(Gsi([1, 2, 3, 4, 5, 6]), n)
    }

    fn msg(tsi: Tsi, topic: &str, seq: u64, size: usize) -> Message {
        let mut b = vec![0; size];
        fill_test_message(seq, &mut b);
        Message {
            tsi,
            frames: vec![topic.as_bytes().to_vec().into(), b.into()],
        }
    }

    #[test]
    fn sizes_parse_and_spread() {
        assert_eq!(parse_size_range("64"), Ok(SizeRange { min: 64, max: 64 }));
        assert_eq!(
            parse_size_range("12-100KiB"),
            Ok(SizeRange {
                min: 12,
                max: 102_400
            })
        );
        assert_eq!(
            parse_size_range("2..3k"),
            Ok(SizeRange { min: 2, max: 3072 })
        );
        assert!(parse_size_range("9-3").is_err());
        assert!(parse_size_range("big").is_err());
        let r = SizeRange {
            min: 12,
            max: 102_400,
        };
        let sizes: Vec<usize> = (0..10_000).map(|i| r.size_of(i)).collect();
        assert!(sizes.iter().all(|&s| (12..=102_400).contains(&s)));
        assert!(sizes.contains(&12) && sizes.contains(&102_400));
        // Log-uniform: every decade is represented.
        for (lo, hi) in [(12, 100), (100, 1000), (1000, 10_000), (10_000, 102_400)] {
            let n = sizes.iter().filter(|&&s| s >= lo && s < hi).count();
            assert!(n > 1000, "{lo}..{hi}: {n}");
        }
        assert_eq!(SizeRange { min: 7, max: 7 }.size_of(3), 7);
    }

    #[test]
    fn per_topic_sequences_are_independent() {
        let mut v = TopicVerifier::new();
        for i in 0..10 {
            v.on_message(&msg(tsi(1), "a", i, 20));
            v.on_message(&msg(tsi(1), "b", i, 20));
        }
        assert!(v.is_clean(), "{v:?}");
        assert_eq!(v.received, 20);
        assert_eq!(v.topics[&b"a".to_vec()], 10);
        assert_eq!(v.duplicates, 0);
        // A restarted publisher (new TSI) starts again at 0.
        v.on_message(&msg(tsi(2), "a", 0, 20));
        assert!(v.is_clean());
        assert_eq!(v.senders.verified().1, 2);
    }

    #[test]
    fn gaps_duplicates_corruption() {
        let mut v = TopicVerifier::new();
        v.on_message(&msg(tsi(1), "a", 0, 20));
        v.on_message(&msg(tsi(1), "a", 3, 20));
        v.on_message(&msg(tsi(1), "a", 3, 20));
        let mut bad = msg(tsi(1), "a", 4, 20);
        bad.frames[1] = vec![0u8; 20].into();
        v.on_message(&bad);
        v.on_message(&Message {
            tsi: tsi(1),
            frames: vec![b"a".to_vec().into()],
        });
        v.on_gap(tsi(1), 5);
        let (ok, _) = v.senders.verified();
        assert_eq!((v.gaps, v.duplicates, ok.corrupt), (2, 1, 2));
        assert_eq!((ok.unrecoverable, ok.loss_events), (5, 1));
        assert!(!v.is_clean());
        // A publisher that never sent one valid message is counted apart.
        v.on_message(&Message {
            tsi: tsi(7),
            frames: vec![b"a".to_vec().into(), vec![0u8; 20].into()],
        });
        v.on_gap(tsi(7), 1 << 30);
        let (o, others) = v.senders.others();
        assert_eq!((others, o.messages, o.unrecoverable), (1, 1, 1 << 30));
        assert_eq!(v.senders.verified().0.unrecoverable, 5);
    }

    #[test]
    fn json_has_the_agreed_keys() {
        let mut v = TopicVerifier::new();
        v.on_message(&msg(tsi(1), "md.A", 0, 12));
        v.on_message(&msg(tsi(1), "md.B", 0, 12));
        v.on_message(&msg(tsi(1), "md.B", 1, 12));
        let o = SubOutcome {
            verifier: v,
            elapsed_s: 0.5,
            filtered_out: 7,
            naks_sent: 0,
            repaired: 0,
            decode_errors: 0,
            short: false,
        };
        let j: serde_json::Value = serde_json::from_str(&o.to_json()).unwrap();
        assert_eq!(j["received"], 3);
        assert_eq!(j["topics"]["md.B"], 2);
        assert_eq!(j["filtered_out"], 7);
        assert_eq!(j["msgs_per_s"], 6.0);
        for k in [
            "gaps",
            "duplicates",
            "corrupt",
            "unrecoverable",
            "elapsed_s",
            "senders",
        ] {
            assert!(j.get(k).is_some(), "{k}");
        }
        assert_eq!(o.exit_code(true), 0);
    }

    #[test]
    fn pub_report_json() {
        let r = PubReport {
            sent: 4,
            apdus: 1,
            elapsed_s: 2.0,
            ..PubReport::default()
        };
        let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(j["sent"], 4);
        assert_eq!(j["apdus"], 1);
        assert_eq!(j["msgs_per_s"], 2.0);
    }

    #[test]
    fn argument_checks() {
        let a = PubArgs::parse_from(["pgm-pub", "--count", "1", "--size", "11", "x"]);
        assert!(a.check().is_err());
        let a = PubArgs::parse_from(["pgm-pub", "--topic", "a", "x"]);
        assert!(a.check().is_err());
        let s = SubArgs::parse_from(["pgm-sub", "--verify", "x"]);
        assert_eq!(s.idle_timeout().unwrap(), Some(DEFAULT_TIMEOUT));
        let s = SubArgs::parse_from(["pgm-sub", "x"]);
        assert_eq!(s.idle_timeout().unwrap(), None);
    }
}
