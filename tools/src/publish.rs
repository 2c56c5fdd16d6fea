//! `pgm-pub`: publish two-frame messages `[topic][payload]` (the PUB/SUB layer of the `pubsub`
//! crate, libzmq framing): numbered test messages round-robin over `--topic`s (the payload in
//! `pgm-send`'s test-message format, numbered **per topic** from 0), or stdin lines `TOPIC text`.

use std::{collections::HashMap, io, process::ExitCode, time::Duration};

use clap::Parser;
use pgm::socket::{Clock, SendError as SockSendError};
use pgm::{socket::SendMonitor, wire::Tsi};
use pubsub::{tokio::AsyncPublisher, Options, Publisher, PublisherStats, Shard, ShardedPublisher};
use tokio::runtime::Runtime;

use crate::{
    cli::{
        connect_error, fill_test_message, interrupt, json_line, mono_ns, parse_msg_rate,
        parse_rate_arg, parse_secs, parse_shard, read_line, report_error, say_interrupted,
        sender_fields, sender_main, shard_json, CommonArgs, Progress, ToolError, TEST_HEADER,
    },
    metrics::{Metrics, MetricsArgs, Role},
};

/// The topic of `pgm-pub --count` when no `--topic` is given.
pub const DEFAULT_TOPIC: &str = "test";

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
        #[expect(clippy::cast_sign_loss, reason = "exp() is positive")]
        let size = size as usize;
        size.clamp(self.min, self.max)
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
                  Ctrl-C or SIGTERM stops sending (stdin: at the next line) and closes as usual: \
                  FIN, --linger for repairs, the JSON line; exit status 1 if --count was not \
                  reached. A second one quits at once (status 130).\n\
                  APDUs are never fragmented and hold at least 3 bytes (what libzmq accepts).\n\
                  Prints one JSON line on stdout at the end: sent, bytes (topic + payload), \
                  elapsed_s (first send until the last APDU was on the wire), msgs_per_s, \
                  naks_received, ncf_sent, rdata_sent, apdus, max_payload; with --shard also \
                  shards: [{group, prefixes, tsi, sent, apdus, naks_received, rdata_sent, \
                  spm_sent, wire_bytes (IP headers included)}], \
                  the endpoint's group first.\n\
                  --shard PREFIX=GROUP sends topics starting with PREFIX to GROUP (same \
                  interface and port; longest prefix wins; other topics go to the endpoint's \
                  group): one PGM session per group, so that switches with IGMP snooping \
                  deliver each group only where it is joined. Subscribers need the same \
                  --shard flags, or --announce-shards SECS on the publisher and \
                  --discover-shards on the subscribers (docs/sharding.md)."
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
    /// Pace --count messages at this many per second (k/M suffixes), independently of the
    /// PGM rate limit; as fast as the publisher takes them by default.
    #[arg(long, value_parser = parse_msg_rate, value_name = "MSGS", requires = "count")]
    pub msg_rate: Option<f64>,
    /// Seconds to keep answering NAKs after the last message.
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    pub linger: f64,
    /// How long a part-filled APDU waits for more messages, in µs (0: every message leaves
    /// at once).
    #[arg(long, default_value_t = 500, value_name = "MICROS")]
    pub batch_linger_us: u64,
    /// Send through the tokio API (`pubsub::tokio::AsyncPublisher` on a current-thread
    /// runtime: a full queue is an `.await`) instead of blocking calls.
    #[arg(long)]
    pub tokio: bool,
    /// Largest APDU in bytes (offset field included); default libzmq's PGM_MSS for the TPDU
    /// (1428 epgm, 1436 pgm at 1500).
    #[arg(long, value_name = "BYTES")]
    pub max_payload: Option<usize>,
    /// Send topics starting with PREFIX on multicast group GROUP (repeatable; longest prefix
    /// wins; other topics stay on the endpoint's group). Not with --second-path.
    #[arg(long = "shard", value_parser = parse_shard, value_name = "PREFIX=GROUP",
          conflicts_with = "second_path")]
    pub shards: Vec<Shard>,
    /// Announce the shard map on the endpoint's group every SECS (at least 0.01), for
    /// `pgm-sub --discover-shards`.
    #[arg(long, value_parser = parse_secs, value_name = "SECS")]
    pub announce_shards: Option<Duration>,
    /// Transport options shared with pgm-send and pgm-recv.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Prometheus metrics.
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// What `pgm-pub` reports at the end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PubReport {
    /// Messages published.
    pub sent: u64,
    /// Interrupted before `--count` was reached (exit status 1; not in the JSON, which says
    /// `sent`).
    pub short: bool,
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
    /// With `--shard`: one entry per group (the endpoint's first).
    pub shards: Vec<serde_json::Value>,
    /// CLOCK_MONOTONIC (ns) when the last APDU was on the wire (repair tails).
    pub last_mono_ns: u64,
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
        fields.push(("last_mono_ns", self.last_mono_ns.into()));
        if !self.shards.is_empty() {
            fields.push(("shards", self.shards.clone().into()));
        }
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
            .with_batch_linger(Duration::from_micros(self.batch_linger_us))
            .with_shards(self.shards.clone());
        o.announce_shards = self.announce_shards;
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
        }
        if self
            .announce_shards
            .is_some_and(|a| a < pubsub::shard::announce::MIN_ANNOUNCE_INTERVAL)
        {
            return Err(ToolError::Usage(
                "--announce-shards is at least 0.01 s".into(),
            ));
        }
        if self.tokio && (!self.shards.is_empty() || self.announce_shards.is_some()) {
            return Err(ToolError::Usage(
                "--tokio does not take --shard (a sharded publisher is blocking only)".into(),
            ));
        }
        if self.count.is_none() && !self.topics.is_empty() {
            return Err(ToolError::Usage(
                "--topic needs --count (stdin lines carry their own topic)".into(),
            ));
        }
        Ok(())
    }
}

/// `pgm-pub`'s publisher: blocking calls, the tokio API (`--tokio`), or one session per
/// group (`--shard`).
enum Pub {
    Blocking(Publisher),
    Tokio(Runtime, AsyncPublisher),
    Sharded(ShardedPublisher),
}

impl Pub {
    fn open(args: &PubArgs, opts: &Options) -> Result<Pub, ToolError> {
        if !args.shards.is_empty() || args.announce_shards.is_some() {
            let p = ShardedPublisher::connect(&args.endpoint, opts).map_err(connect_error)?;
            return Ok(Pub::Sharded(p));
        }
        let publisher = Publisher::connect(&args.endpoint, opts).map_err(connect_error)?;
        if !args.tokio {
            return Ok(Pub::Blocking(publisher));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let publisher = {
            let _in_runtime = rt.enter();
            AsyncPublisher::new(publisher)?
        };
        Ok(Pub::Tokio(rt, publisher))
    }

    fn send(&self, topic: &[u8], payload: &[u8]) -> Result<(), pubsub::SendError> {
        match self {
            Pub::Blocking(p) => p.send(topic, payload),
            Pub::Tokio(rt, p) => rt.block_on(p.send(topic, payload)),
            Pub::Sharded(p) => p.send(topic, payload),
        }
    }

    fn flush(&self) -> Result<(), pubsub::SendError> {
        match self {
            Pub::Blocking(p) => p.flush(),
            Pub::Tokio(rt, p) => rt.block_on(p.flush()),
            Pub::Sharded(p) => p.flush(),
        }
    }

    fn close(&self) -> Result<(), pubsub::SendError> {
        match self {
            Pub::Blocking(p) => p.close(),
            Pub::Tokio(rt, p) => rt.block_on(p.close()),
            Pub::Sharded(p) => p.close(),
        }
    }

    /// The counters of each session (one unless sharded).
    fn stats(&self) -> Vec<PublisherStats> {
        match self {
            Pub::Blocking(p) => vec![p.stats()],
            Pub::Tokio(_, p) => vec![p.stats()],
            Pub::Sharded(p) => p.shard_stats().into_iter().map(|s| s.stats).collect(),
        }
    }

    /// The transport counters metrics report: the endpoint group's session when sharded.
    fn monitor(&self) -> SendMonitor {
        match self {
            Pub::Blocking(p) => p.monitor(),
            Pub::Tokio(_, p) => p.monitor(),
            Pub::Sharded(p) => p.sessions()[0].monitor(),
        }
    }

    fn tsi(&self) -> Tsi {
        match self {
            Pub::Blocking(p) => p.tsi(),
            Pub::Tokio(_, p) => p.tsi(),
            Pub::Sharded(p) => p.tsi(),
        }
    }

    fn max_payload(&self) -> usize {
        match self {
            Pub::Blocking(p) => p.max_payload(),
            Pub::Tokio(_, p) => p.max_payload(),
            Pub::Sharded(p) => p.max_payload(),
        }
    }

    /// Says on stderr where it publishes, and as which session(s).
    fn announce(&self, endpoint: &str) {
        eprintln!(
            "pgm-pub: publishing on {endpoint} as {} (APDUs of at most {} bytes)",
            self.tsi(),
            self.max_payload()
        );
        if let Pub::Sharded(p) = self {
            for s in p.shard_stats().iter().skip(1) {
                let prefixes: Vec<_> = s
                    .prefixes
                    .iter()
                    .map(|p| String::from_utf8_lossy(p))
                    .collect();
                eprintln!("pgm-pub: shard {} as {}: {prefixes:?}", s.group, s.tsi);
            }
        }
    }

    /// With `--shard`: each group's JSON entry.
    fn shard_report(&self) -> Vec<serde_json::Value> {
        let Pub::Sharded(p) = self else {
            return Vec::new();
        };
        p.shard_stats()
            .iter()
            .map(|s| {
                let e = &s.stats.transport.engine;
                shard_json(
                    s.group,
                    &s.prefixes,
                    &[
                        ("tsi", s.tsi.to_string().into()),
                        ("sent", s.stats.encoder.messages.into()),
                        ("apdus", s.stats.encoder.apdus.into()),
                        ("naks_received", e.naks_received.into()),
                        ("rdata_sent", e.rdata_sent.into()),
                        ("spm_sent", e.spm_sent.into()),
                        ("wire_bytes", e.wire_bytes.into()),
                    ],
                )
            })
            .collect()
    }
}

/// The topics `--count` messages go round-robin over (`--topic`s, default [`DEFAULT_TOPIC`]),
/// each one's sequence slot, and how many slots: a topic listed twice gets twice the
/// messages, numbered in one sequence.
fn topic_slots(listed: &[String]) -> (Vec<&str>, Vec<usize>, usize) {
    let topics: Vec<&str> = if listed.is_empty() {
        vec![DEFAULT_TOPIC]
    } else {
        listed.iter().map(String::as_str).collect()
    };
    let mut unique: HashMap<&str, usize> = HashMap::new();
    let slot = topics
        .iter()
        .map(|t| {
            let n = unique.len();
            *unique.entry(t).or_insert(n)
        })
        .collect();
    (topics, slot, unique.len())
}

/// Runs `pgm-pub`; returns the report after the linger time. The transport's counters and the
/// messages published so far go to `metrics`.
pub fn run_pub(args: &PubArgs, metrics: &Metrics) -> Result<PubReport, ToolError> {
    args.check()?;
    let opts = args.options()?;
    let publisher = Pub::open(args, &opts)?;
    metrics.attach_sender(publisher.monitor());
    let max_payload = publisher.max_payload();
    let quiet = args.common.quiet;
    if !quiet {
        publisher.announce(&args.endpoint);
    }
    let clock = Clock::new();
    let mut progress = Progress::new(clock, !quiet);
    let mut report = PubReport {
        max_payload,
        ..PubReport::default()
    };
    let extra = |p: &Pub| {
        let [apdus, naks, _, rdata] = totals(&p.stats());
        format!("apdus {apdus}, naks {naks}, rdata {rdata}")
    };
    let mut started = None;
    if let Some(count) = args.count {
        let (topics, slot, streams) = topic_slots(&args.topics);
        let mut seqs = vec![0u64; streams];
        let mut buf = vec![0u8; args.size.max];
        let start = clock.elapsed();
        started = Some(start);
        for i in 0..count {
            if interrupt::requested() {
                break;
            }
            if let Some(r) = args.msg_rate {
                let due = start + Duration::from_secs_f64(i as f64 / r);
                std::thread::sleep(due.saturating_sub(clock.elapsed()));
            }
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
                metrics.app().set(report.sent, report.bytes);
                progress.tick("pgm-pub", report.sent, report.bytes, || extra(&publisher));
            }
        }
    } else {
        let stdin = io::stdin();
        let mut input = stdin.lock();
        let mut line = Vec::new();
        while !interrupt::requested() && read_line(&mut input, &mut line)? {
            let (topic, text) = match line.iter().position(|&b| b == b' ') {
                Some(sp) => (&line[..sp], &line[sp + 1..]),
                None => (&line[..], &[][..]),
            };
            started.get_or_insert_with(|| clock.elapsed());
            publisher.send(topic, text).map_err(send_error)?;
            report.sent += 1;
            report.bytes += (topic.len() + text.len()) as u64;
            metrics.app().set(report.sent, report.bytes);
            progress.tick("pgm-pub", report.sent, report.bytes, || extra(&publisher));
        }
    }
    if interrupt::requested() && !quiet {
        say_interrupted("pgm-pub", report.sent, args.linger);
    }
    report.short = args.count.is_some_and(|c| report.sent < c);
    publisher.flush().map_err(send_error)?;
    metrics.app().set(report.sent, report.bytes);
    report.elapsed_s = started.map_or(0.0, |t| clock.elapsed().saturating_sub(t).as_secs_f64());
    report.last_mono_ns = mono_ns();
    publisher.close().map_err(send_error)?;
    let stats = publisher.stats();
    [
        report.apdus,
        report.naks_received,
        report.ncf_sent,
        report.rdata_sent,
    ] = totals(&stats);
    report.shards = publisher.shard_report();
    for st in &stats {
        if let Some(e) = &st.transport.last_send_error {
            if !quiet {
                eprintln!(
                    "pgm-pub: {} send errors, last: {e}",
                    st.transport.io.send_errors
                );
            }
        }
    }
    Ok(report)
}

/// APDUs, NAKs received, NCFs and RDATA sent, over all sessions.
fn totals(stats: &[PublisherStats]) -> [u64; 4] {
    stats.iter().fold([0; 4], |[a, n, c, r], s| {
        let e = &s.transport.engine;
        [
            a + s.encoder.apdus,
            n + e.naks_received,
            c + e.ncf_sent,
            r + e.rdata_sent,
        ]
    })
}

/// `pgm-pub`'s main: runs, prints the JSON line, maps errors to exit codes.
pub fn pub_main(args: &PubArgs) -> ExitCode {
    let metrics = match Metrics::start(&args.metrics, "pgm-pub", Role::Sender, &args.endpoint) {
        Ok(m) => m,
        Err(e) => return report_error("pgm-pub", &e),
    };
    let code = sender_main("pgm-pub", || {
        run_pub(args, &metrics).map(|r| (r.to_json(), r.short))
    });
    metrics.finish();
    code
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let a = PubArgs::parse_from(["pgm-pub", "--tokio", "--shard", "a=239.1.1.1", "x"]);
        assert!(a.check().is_err());
        assert!(PubArgs::try_parse_from(["pgm-pub", "--shard", "a", "x"]).is_err());
        let a = PubArgs::parse_from([
            "pgm-pub",
            "--shard",
            "a=239.1.1.2",
            "--shard",
            "b=239.1.1.3",
            "x",
        ]);
        assert_eq!(a.options().unwrap().shards.len(), 2);
    }
}
