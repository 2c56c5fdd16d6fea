//! `pgm-sub`: subscribe to topic prefixes and print `topic payload` lines, or with `--verify`
//! check every (publisher TSI, topic) sequence and the CRCs ([`TopicVerifier`]) and print one
//! JSON summary line with per-topic counts.
//!
//! Subscriptions follow ZeroMQ: no `--subscribe` delivers **nothing**, `--subscribe ''`
//! delivers everything, and a prefix matches topics that start with its bytes.

use std::{
    io::{self, Write},
    process::ExitCode,
    time::Duration,
};

use clap::{Parser, ValueEnum};
use pgm::socket::{Clock, RecvError, RecvMonitor};
use pubsub::{
    shard::DiscoverError, tokio::AsyncSubscriber, Bound, Join, Message, Options, PolicyStats,
    RecvEvent, Shard, ShardedSubscriber, SlowConsumer, Subscriber, SubscriberStats,
};
use tokio::runtime::Runtime;

use crate::{
    cli::{
        self, connect_error, idle_timeout, interrupt, json_line, msgs_per_s, next_wait, parse_secs,
        parse_shard, receiver_main, report_error, round3, shard_json, Activity, CommonArgs,
        Progress, RunEnd, ToolError,
    },
    metrics::{Metrics, MetricsArgs, Role},
    topic_verifier::{Allow, TopicVerifier},
};

/// Idle timeout of `pgm-sub` when `--count` or `--verify` is given and `--timeout` is not
/// (`pgm-recv`'s).
pub const DEFAULT_TIMEOUT: Duration = cli::DEFAULT_TIMEOUT;

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
                  is given. --timeout 0 means forever. Ctrl-C or SIGTERM ends the run the same \
                  way (a second one quits at once, status 130).\n\
                  --verify expects [topic][test message] and checks the per-topic sequence of \
                  each publisher (TSI; a restarted publisher starts again at 0) and the CRC; \
                  it prints one JSON line at the end: received, topics {topic: count; past \
                  262 144 topics the rest count under \"(other topics)\"}, gaps, duplicates, \
                  untracked (messages of (publisher, topic) streams past the first 262 144, \
                  not sequence-checked), corrupt (bad CRC, short, or not 2 frames), unrecoverable \
                  (sequence numbers the transport reported lost), filtered_out, elapsed_s, \
                  msgs_per_s, gap_events, naks_sent, repaired, cpu_s (CPU seconds, all threads), senders, decode_errors, \
                  policy_dropped, conflated, drop_events, policy_skipped, held_max, \
                  held_max_bytes (and last_seq {topic: highest sequence delivered} under \
                  drop-oldest or conflate); it exits 1 when \
                  gaps, corrupt or unrecoverable are not 0. Any mode exits 1 with fewer than \
                  --count messages.\n\
                  --shard PREFIX=GROUP: the publisher's shard map (pgm-pub --shard, the same \
                  flags): pgm-sub joins only the groups its --subscribe prefixes can match, \
                  one session each, and the JSON line gets shards: [{group, prefixes, \
                  received, filtered_out, naks_sent, repaired}] of the joined groups \
                  (docs/sharding.md). --discover-shards SECS learns the map from the \
                  publisher's announcement (pgm-pub --announce-shards) instead.\n\
                  Slow consumers (docs/slow-consumers.md): --slow-consumer drop-oldest keeps \
                  the newest --recv-bound messages and announces the dropped ones (--verify \
                  accepts exactly the announced skips); conflate keeps the newest message per \
                  publisher and topic (--verify accepts forward skips)."
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
    /// Receive through the tokio API (`pubsub::tokio::AsyncSubscriber` on a current-thread
    /// runtime) instead of blocking calls.
    #[arg(long)]
    pub tokio: bool,
    /// Largest message (all frames) accepted; longer ones are decode errors.
    #[arg(long, default_value_t = pubsub::decoder::DEFAULT_MAX_MESSAGE_SIZE, value_name = "BYTES")]
    pub max_message_size: usize,
    /// The publisher's shards: topics starting with PREFIX are on multicast group GROUP
    /// (repeatable; the same flags as pgm-pub's). Not with --second-path.
    #[arg(long = "shard", value_parser = parse_shard, value_name = "PREFIX=GROUP",
          conflicts_with = "second_path")]
    pub shards: Vec<Shard>,
    /// Learn the shard map from the publisher's announcement (pgm-pub --announce-shards),
    /// waiting at most SECS for it, instead of --shard flags.
    #[arg(long, value_parser = parse_secs, value_name = "SECS",
          conflicts_with_all = ["shards", "second_path"])]
    pub discover_shards: Option<Duration>,
    /// What happens when this subscriber reads slower than the feed: block (the transport
    /// stops reading, the kernel drops, NAKs repair), drop-oldest or conflate (a thread keeps
    /// the transport drained into a buffer bounded by --recv-bound).
    #[arg(long, value_enum, default_value_t = PolicyArg::Block, value_name = "POLICY")]
    pub slow_consumer: PolicyArg,
    /// Bound of the drop-oldest/conflate buffer: messages (like 10000) or bytes with a unit
    /// (like 16MiB); give it twice to set both [default: 10000 and 16MiB].
    #[arg(long, value_name = "N|SIZE", value_parser = parse_recv_bound)]
    pub recv_bound: Vec<RecvBound>,
    /// What to get of what was published before joining (docs/late-join.md): live (from
    /// the first data heard), history (every message the publisher's --history still holds,
    /// in order, then live; --verify then requires every topic from sequence 0) or current
    /// (the newest message per publisher and topic of that history, then live).
    #[arg(long, value_enum, default_value_t = LateJoinArg::Live, value_name = "MODE")]
    pub late_join: LateJoinArg,
    /// Testing and demos only: sleep this many microseconds after each delivered message, to
    /// play a slow consumer.
    #[arg(long, value_name = "MICROS", default_value_t = 0)]
    pub read_delay_us: u64,
    /// Transport options shared with pgm-send and pgm-recv.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Prometheus metrics.
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// `--slow-consumer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// The transport's back-pressure (today's behaviour).
    Block,
    /// Keep the newest messages, announce the dropped ones.
    DropOldest,
    /// Keep the newest message per publisher and topic.
    Conflate,
}

/// `--late-join`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LateJoinArg {
    /// From the first data heard.
    Live,
    /// The publisher's history, every message, then live.
    History,
    /// The newest message per topic of the history, then live.
    Current,
}

/// One `--recv-bound`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvBound {
    /// Messages held.
    Messages(usize),
    /// Bytes held.
    Bytes(usize),
}

/// Parses `--recv-bound`: a plain number is messages, a number with a byte unit is bytes.
fn parse_recv_bound(s: &str) -> Result<RecvBound, String> {
    let bound = match cli::parse_window(s) {
        Ok(cli::Window::Sqns(n)) => RecvBound::Messages(n as usize),
        Ok(cli::Window::Bytes(b)) => RecvBound::Bytes(b),
        Err(_) => {
            return Err(format!(
                "bad --recv-bound {s:?}: expected messages (like 10000) or bytes (like 16MiB)"
            ))
        }
    };
    Ok(bound)
}

impl SubArgs {
    /// The slow-consumer policy of `--slow-consumer` and `--recv-bound`.
    pub fn slow_consumer(&self) -> Result<SlowConsumer, ToolError> {
        let mut bound = Bound::default();
        for b in &self.recv_bound {
            match *b {
                RecvBound::Messages(n) => bound.messages = n,
                RecvBound::Bytes(n) => bound.bytes = n,
            }
        }
        Ok(match self.slow_consumer {
            PolicyArg::Block if !self.recv_bound.is_empty() => {
                return Err(ToolError::Usage(
                    "--recv-bound needs --slow-consumer drop-oldest or conflate".into(),
                ))
            }
            PolicyArg::Block => SlowConsumer::Block,
            PolicyArg::DropOldest => SlowConsumer::DropOldest(bound),
            PolicyArg::Conflate => SlowConsumer::Conflate(bound),
        })
    }

    /// The pubsub join mode of `--late-join` (the current state bounded like the
    /// slow-consumer buffer, by --recv-bound's defaults).
    fn join(&self) -> Join {
        match self.late_join {
            LateJoinArg::Live => Join::Live,
            LateJoinArg::History => Join::History,
            LateJoinArg::Current => Join::CurrentState(Bound::default()),
        }
    }

    /// The skips `--verify` expects under the policy.
    fn allow(&self) -> Allow {
        match self.slow_consumer {
            PolicyArg::Block => Allow::Nothing,
            PolicyArg::DropOldest => Allow::Announced,
            PolicyArg::Conflate => Allow::Conflated,
        }
    }

    /// The idle timeout in force; `None` waits forever.
    pub fn idle_timeout(&self) -> Result<Option<Duration>, ToolError> {
        idle_timeout(self.timeout, self.count.is_some() || self.verify)
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
    /// CPU seconds the process used (all threads), up to the end of the run.
    pub cpu_s: f64,
    /// The slow-consumer policy's counters; `None` with `block`.
    pub policy: Option<PolicyStats>,
    /// `--count` was given and not reached.
    pub short: bool,
    /// With `--shard`: one entry per joined group.
    pub shards: Vec<serde_json::Value>,
    /// CLOCK_MONOTONIC (ns) of the last delivery, 0 if none (repair tails).
    pub last_mono_ns: u64,
    /// With `--late-join history|current`: seconds from opening the subscriber to the last
    /// publisher's `CaughtUp` (`None` inside: none caught up).
    pub late_join: Option<Option<f64>>,
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
        let mut fields = vec![
            ("received", v.received.into()),
            ("topics", v.topics_json()),
            ("gaps", v.gaps.into()),
            ("duplicates", v.duplicates.into()),
            ("untracked", v.untracked.into()),
            ("corrupt", ok.corrupt.into()),
            ("unrecoverable", ok.unrecoverable.into()),
            ("filtered_out", self.filtered_out.into()),
            ("elapsed_s", round3(self.elapsed_s).into()),
            ("msgs_per_s", msgs_per_s(v.received, self.elapsed_s).into()),
            ("gap_events", ok.loss_events.into()),
            ("naks_sent", self.naks_sent.into()),
            ("repaired", self.repaired.into()),
            ("cpu_s", round3(self.cpu_s).into()),
            ("last_mono_ns", self.last_mono_ns.into()),
            ("senders", senders.into()),
            ("others", o.to_json(others)),
            ("decode_errors", self.decode_errors.into()),
            ("policy_dropped", v.policy_dropped.into()),
            ("conflated", self.policy.map_or(0, |p| p.conflated).into()),
            (
                "drop_events",
                self.policy.map_or(0, |p| p.drop_events).into(),
            ),
            ("policy_skipped", v.policy_skipped.into()),
            ("held_max", self.policy.map_or(0, |p| p.max_held).into()),
            (
                "held_max_bytes",
                self.policy.map_or(0, |p| p.max_held_bytes).into(),
            ),
        ];
        if !self.shards.is_empty() {
            fields.push(("shards", self.shards.clone().into()));
        }
        if let Some(caught_up_s) = self.late_join {
            let first: serde_json::Map<_, _> = v
                .first_seq
                .iter()
                .map(|(t, n)| (String::from_utf8_lossy(t).into_owned(), (*n).into()))
                .collect();
            fields.push(("caught_up", v.caught_up.into()));
            fields.push(("caught_up_s", caught_up_s.map(round3).into()));
            fields.push(("first_seq", first.into()));
        }
        if self.policy.is_some() {
            let last: serde_json::Map<_, _> = v
                .last_seq
                .iter()
                .map(|(t, n)| (String::from_utf8_lossy(t).into_owned(), (*n).into()))
                .collect();
            fields.push(("last_seq", last.into()));
        }
        json_line(&fields)
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

/// `pgm-sub`'s subscriber: blocking calls, the tokio API (`--tokio`), or one session per
/// joined group (`--shard`).
enum Sub {
    Blocking(Subscriber),
    Tokio(Runtime, AsyncSubscriber),
    Sharded(Box<ShardedSubscriber>),
}

/// The counters `pgm-sub` reports, over all sessions.
#[derive(Debug, Default)]
struct Counts {
    apdus: u64,
    filtered_out: u64,
    naks_sent: u64,
    repaired: u64,
    lost: u64,
    decode_errors: u64,
    /// The slow-consumer policy's counters (zero when sharded: blocking only).
    policy: PolicyStats,
}

impl Counts {
    fn of(stats: &[SubscriberStats]) -> Counts {
        let mut c = Counts::default();
        for s in stats {
            let e = &s.transport.engine;
            c.apdus += s.decoder.apdus;
            c.filtered_out += s.decoder.filtered_out;
            c.naks_sent += e.naks_sent;
            c.repaired += e.repaired;
            c.lost += e.lost_sqns;
            c.decode_errors += s.decoder.decode_errors;
            c.policy = s.policy;
        }
        c
    }
}

impl Sub {
    fn try_recv(&mut self) -> Result<RecvEvent, RecvError> {
        match self {
            Sub::Blocking(s) => s.try_recv(),
            Sub::Tokio(_, s) => s.try_recv(),
            Sub::Sharded(s) => s.try_recv(),
        }
    }

    /// Waits up to `wait` for the next message (tokio: `recv().await` under a timeout, which
    /// cancels the pending receive when it fires).
    fn recv_timeout(&mut self, wait: Duration) -> Result<RecvEvent, RecvError> {
        match self {
            Sub::Blocking(s) => s.recv_timeout(wait),
            Sub::Tokio(rt, sub) => rt
                .block_on(async { tokio::time::timeout(wait, sub.recv()).await })
                .unwrap_or(Err(RecvError::Timeout)),
            Sub::Sharded(s) => s.recv_timeout(wait),
        }
    }

    fn counts(&self) -> Counts {
        match self {
            Sub::Blocking(s) => Counts::of(&[s.stats()]),
            Sub::Tokio(_, s) => Counts::of(&[s.stats()]),
            Sub::Sharded(s) => Counts::of(
                &s.shard_stats()
                    .into_iter()
                    .map(|s| s.stats)
                    .collect::<Vec<_>>(),
            ),
        }
    }

    /// The transport counters metrics report: the first joined group's when sharded (none
    /// when nothing is subscribed).
    fn monitor(&self) -> Option<RecvMonitor> {
        match self {
            Sub::Blocking(s) => Some(s.monitor()),
            Sub::Tokio(_, s) => Some(s.monitor()),
            Sub::Sharded(s) => s.subscribers().next().map(|(_, s)| s.monitor()),
        }
    }

    /// With `--shard`: each joined group's JSON entry.
    fn shard_report(&self) -> Vec<serde_json::Value> {
        let Sub::Sharded(s) = self else {
            return Vec::new();
        };
        s.shard_stats()
            .iter()
            .map(|g| {
                let e = &g.stats.transport.engine;
                shard_json(
                    g.group,
                    &g.prefixes,
                    &[
                        ("received", g.stats.decoder.received.into()),
                        ("filtered_out", g.stats.decoder.filtered_out.into()),
                        ("naks_sent", e.naks_sent.into()),
                        ("repaired", e.repaired.into()),
                    ],
                )
            })
            .collect()
    }

    fn close(&mut self) {
        match self {
            Sub::Blocking(s) => s.close(),
            Sub::Tokio(_, s) => s.close(),
            Sub::Sharded(s) => s.close(),
        }
    }
}

/// Opens the subscriber of `args`, subscribes, and says so on stderr.
fn open_sub(args: &SubArgs) -> Result<Sub, ToolError> {
    let opts = Options::default()
        .with_transport(args.common.transport_options())
        .with_max_message_size(args.max_message_size)
        .with_shards(args.shards.clone())
        .with_slow_consumer(args.slow_consumer()?)
        .with_join(args.join());
    if !args.shards.is_empty() || args.discover_shards.is_some() {
        if args.tokio || args.slow_consumer != PolicyArg::Block {
            return Err(ToolError::Usage(
                "--tokio and --slow-consumer drop-oldest|conflate do not take --shard or \
                 --discover-shards (a sharded subscriber is blocking only)"
                    .into(),
            ));
        }
        let mut sub = match args.discover_shards {
            None => ShardedSubscriber::connect(&args.endpoint, &opts).map_err(connect_error)?,
            Some(wait) => match ShardedSubscriber::discover(&args.endpoint, &opts, wait) {
                Ok(s) => s,
                Err(DiscoverError::Connect(e)) => return Err(connect_error(e)),
                Err(e) => return Err(ToolError::Io(io::Error::other(e))),
            },
        };
        for p in &args.subscribe {
            sub.subscribe(p.as_bytes()).map_err(connect_error)?;
        }
        if !args.common.quiet {
            eprintln!(
                "pgm-sub: listening on {}, subscribed to {:?}, joined {:?}",
                args.endpoint,
                args.subscribe,
                sub.joined_groups()
            );
        }
        return Ok(Sub::Sharded(Box::new(sub)));
    }
    let mut sub = Subscriber::connect(&args.endpoint, &opts).map_err(connect_error)?;
    for p in &args.subscribe {
        sub.subscribe(p.as_bytes());
    }
    let sub = if args.tokio {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let sub = {
            let _in_runtime = rt.enter();
            AsyncSubscriber::new(sub)?
        };
        Sub::Tokio(rt, sub)
    } else {
        Sub::Blocking(sub)
    };
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
fn sub_tick(progress: &mut Progress, sub: &Sub, v: &TopicVerifier, bytes: u64) {
    progress.tick("pgm-sub", v.received, bytes, || {
        let c = sub.counts();
        format!(
            "filtered {}, naks {}, repaired {}, lost {}, policy dropped {}, conflated {}",
            c.filtered_out, c.naks_sent, c.repaired, c.lost, c.policy.dropped, c.policy.conflated
        )
    });
}

/// Copies the subscriber's counts into the metrics (the policy's only with a policy: the
/// transport's snapshot that comes with them is not free).
fn set_app_metrics(metrics: &Metrics, sub: &Sub, v: &TopicVerifier, bytes: u64) {
    metrics.app().set(v.received, bytes);
    if v.allows_skips() {
        let p = sub.counts().policy;
        metrics.app().set_policy(p.dropped, p.conflated);
    }
}

/// Counts (and unless `quiet`, reports) a notice: anything but a message.
fn on_notice(ev: &RecvEvent, v: &mut TopicVerifier, clock: &Clock, quiet: bool, verify: bool) {
    match *ev {
        RecvEvent::CaughtUp { tsi } => {
            v.on_caught_up(clock.elapsed().as_secs_f64());
            if !quiet {
                eprintln!("pgm-sub: {tsi}: caught up on its history, now live");
            }
        }
        RecvEvent::Dropped { tsi, messages } => {
            v.on_dropped(tsi, messages);
            if !quiet && !verify {
                let from = tsi.map_or_else(|| "other publishers".to_owned(), |t| t.to_string());
                eprintln!("pgm-sub: {from}: {messages} messages dropped (slow consumer)");
            }
        }
        RecvEvent::PublisherGone { tsi } => v.on_publisher_gone(tsi),
        RecvEvent::Gap { tsi, lost } => {
            v.on_gap(tsi, lost);
            if !quiet {
                eprintln!("pgm-sub: {tsi}: {lost} packets lost; resyncing at the next message");
            }
        }
        _ => {}
    }
}

/// Runs `pgm-sub`, printing messages to `out` (unless verifying). The transport's counters,
/// its publishers and the messages delivered so far go to `metrics`.
pub fn run_sub(
    args: &SubArgs,
    out: &mut dyn Write,
    metrics: &Metrics,
) -> Result<SubOutcome, ToolError> {
    let idle = args.idle_timeout()?;
    let mut sub = open_sub(args)?;
    if let Some(m) = sub.monitor() {
        metrics.attach_receiver(m);
    }
    let quiet = args.common.quiet;
    let mono_base = cli::mono_ns();
    let clock = Clock::new();
    let mut progress = Progress::new(clock, !quiet);
    let mut v = TopicVerifier::allowing(args.allow());
    if args.late_join == LateJoinArg::History {
        v = v.from_zero();
    }
    let mut bytes = 0u64;
    let read_delay = Duration::from_micros(args.read_delay_us);
    let mut activity = Activity::new(clock.elapsed());
    let mut apdus_seen = 0u64;
    let wanted = args.count.unwrap_or(u64::MAX);
    while v.received < wanted && !interrupt::requested() {
        let ev = match sub.try_recv() {
            Ok(ev) => ev,
            Err(RecvError::Empty) => {
                out.flush()?;
                let now = clock.elapsed();
                activity.settle(now);
                // Data that the filter skipped is activity too.
                let apdus = sub.counts().apdus;
                if apdus != apdus_seen {
                    apdus_seen = apdus;
                    activity.idle_since = now;
                }
                let waited = now.saturating_sub(activity.idle_since);
                let Some(wait) = next_wait(idle, waited, &progress) else {
                    break;
                };
                match sub.recv_timeout(wait.clamp(Duration::from_millis(1), interrupt::POLL)) {
                    Ok(ev) => ev,
                    Err(RecvError::Timeout) => {
                        set_app_metrics(metrics, &sub, &v, bytes);
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
                    v.count_unchecked(m.topic());
                    print_message(out, &m)?;
                }
                if !read_delay.is_zero() {
                    std::thread::sleep(read_delay);
                }
            }
            ev => on_notice(&ev, &mut v, &clock, quiet, args.verify),
        }
        if v.received.is_multiple_of(256) {
            set_app_metrics(metrics, &sub, &v, bytes);
            sub_tick(&mut progress, &sub, &v, bytes);
        }
    }
    activity.settle(clock.elapsed());
    out.flush()?;
    // Closed first: the counters are then final, the same as a later scrape reads.
    sub.close();
    let c = sub.counts();
    set_app_metrics(metrics, &sub, &v, bytes);
    Ok(SubOutcome {
        short: args.count.is_some_and(|c| v.received < c),
        elapsed_s: activity.elapsed_s(),
        filtered_out: c.filtered_out,
        naks_sent: c.naks_sent,
        repaired: c.repaired,
        decode_errors: c.decode_errors,
        cpu_s: cli::cpu_s(),
        shards: sub.shard_report(),
        policy: (args.slow_consumer != PolicyArg::Block).then_some(c.policy),
        late_join: (args.late_join != LateJoinArg::Live).then_some(v.caught_up_s),
        #[expect(
            clippy::cast_possible_truncation,
            reason = "nanoseconds of a run fit u64"
        )]
        last_mono_ns: activity
            .first
            .map_or(0, |_| mono_base + activity.last.as_nanos() as u64),
        verifier: v,
    })
}

/// `pgm-sub`'s main: runs, prints the JSON line when verifying, maps errors to exit codes.
pub fn sub_main(args: &SubArgs) -> ExitCode {
    let metrics = match Metrics::start(&args.metrics, "pgm-sub", Role::Receiver, &args.endpoint) {
        Ok(m) => m,
        Err(e) => return report_error("pgm-sub", &e),
    };
    let code = receiver_main("pgm-sub", args.common.quiet, args.count, |out| {
        let o = run_sub(args, out, &metrics)?;
        Ok(RunEnd {
            json: args.verify.then(|| o.to_json()),
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
    use super::*;
    use crate::topic_verifier::tests::{msg, tsi};

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
            cpu_s: 0.25,
            policy: None,
            short: false,
            shards: Vec::new(),
            late_join: None,
            last_mono_ns: 0,
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
            "cpu_s",
            "senders",
        ] {
            assert!(j.get(k).is_some(), "{k}");
        }
        assert_eq!(o.exit_code(true), 0);
        assert!(j.get("shards").is_none());
    }

    #[test]
    fn shard_flags() {
        assert!(SubArgs::try_parse_from(["pgm-sub", "--shard", "a", "x"]).is_err());
        let s = SubArgs::parse_from(["pgm-sub", "--tokio", "--shard", "a=239.1.1.2", "x"]);
        assert!(matches!(open_sub(&s), Err(ToolError::Usage(_))));
        let s = SubArgs::parse_from([
            "pgm-sub",
            "--slow-consumer",
            "drop-oldest",
            "--shard",
            "a=239.1.1.2",
            "x",
        ]);
        assert!(matches!(open_sub(&s), Err(ToolError::Usage(_))));
        // Checked against the endpoint when opening: a unicast group is a usage error.
        let s = SubArgs::parse_from([
            "pgm-sub",
            "--shard",
            "a=10.1.1.2",
            "epgm://lo;239.1.1.1:7500",
        ]);
        let Err(ToolError::Usage(e)) = open_sub(&s) else {
            panic!("a unicast shard group was accepted");
        };
        assert!(e.contains("not a multicast group"), "{e}");
    }

    #[test]
    fn slow_consumer_flags() {
        let s = SubArgs::parse_from([
            "pgm-sub",
            "--slow-consumer",
            "drop-oldest",
            "--recv-bound",
            "500",
            "--recv-bound",
            "1MiB",
            "x",
        ]);
        assert_eq!(
            s.slow_consumer().unwrap(),
            SlowConsumer::DropOldest(Bound {
                messages: 500,
                bytes: 1 << 20
            })
        );
        let s = SubArgs::parse_from(["pgm-sub", "--slow-consumer", "conflate", "x"]);
        assert_eq!(
            s.slow_consumer().unwrap(),
            SlowConsumer::Conflate(Bound::default())
        );
        let s = SubArgs::parse_from(["pgm-sub", "--recv-bound", "5", "x"]);
        assert!(s.slow_consumer().is_err());
        assert!(SubArgs::try_parse_from(["pgm-sub", "--recv-bound", "0", "x"]).is_err());
        assert!(SubArgs::try_parse_from(["pgm-sub", "--recv-bound", "lots", "x"]).is_err());
        assert!(SubArgs::try_parse_from(["pgm-sub", "--slow-consumer", "nap", "x"]).is_err());
    }

    #[test]
    fn idle_timeouts() {
        let s = SubArgs::parse_from(["pgm-sub", "--verify", "x"]);
        assert_eq!(s.idle_timeout().unwrap(), Some(DEFAULT_TIMEOUT));
        let s = SubArgs::parse_from(["pgm-sub", "x"]);
        assert_eq!(s.idle_timeout().unwrap(), None);
    }
}
