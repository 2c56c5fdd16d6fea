//! `md-demo`: a market-data fan-out on the loopback — one publisher of quotes for a few hundred
//! symbols, three subscribers with different topic prefixes (one of them losing packets on
//! purpose), a live table, and a verification that every subscriber got exactly the messages
//! of its prefixes.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    thread,
    time::Duration,
};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use pgm::socket::{Clock, SocketOptions};
use pubsub::{Options, Publisher, RecvEvent, Subscriber};
use rand::{rngs::SmallRng, Rng, SeedableRng};

/// Which transport the demo runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// PGM in UDP: no privileges needed.
    Epgm,
    /// Raw PGM (IP protocol 113): needs root or CAP_NET_RAW.
    Pgm,
}

/// Command line of `md-demo`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "md-demo",
    about = "Market-data fan-out over PGM/EPGM on the loopback, verified end to end"
)]
pub struct DemoArgs {
    /// How long the publisher runs, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Quotes per second the publisher sends.
    #[arg(long, default_value_t = 100_000)]
    pub rate: u64,
    /// Number of symbols (each listed on one of three exchanges).
    #[arg(long, default_value_t = 300)]
    pub symbols: usize,
    /// Receive loss simulated on the third subscriber, percent.
    #[arg(long, default_value_t = 5.0)]
    pub loss: f64,
    /// Transport.
    #[arg(long, value_enum, default_value_t = Transport::Epgm)]
    pub transport: Transport,
    /// Multicast group.
    #[arg(long, default_value = "239.192.77.1")]
    pub group: String,
    /// Port (PGM data-destination port and, for EPGM, the UDP port).
    #[arg(long, default_value_t = 7557)]
    pub port: u16,
    /// Random seed for symbols and prices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print only the final summary.
    #[arg(long)]
    pub quiet: bool,
}

const EXCHANGES: [&str; 3] = ["NYSE", "NSDQ", "ARCA"];

/// A subscriber of the demo and what it asks for.
struct Plan {
    name: &'static str,
    prefixes: &'static [&'static str],
    lossy: bool,
}

const PLANS: [Plan; 3] = [
    Plan {
        name: "nyse-desk",
        prefixes: &["MD.NYSE."],
        lossy: false,
    },
    Plan {
        name: "tech-a-to-m",
        prefixes: &["MD.NSDQ.A", "MD.NSDQ.B", "MD.NSDQ.M", "MD.ARCA.Q"],
        lossy: false,
    },
    Plan {
        name: "all-quotes",
        prefixes: &["MD."],
        lossy: true,
    },
];

/// Quote payload, in the test-message format of `pgm-send` so it can be verified exactly:
/// `[seq u64][crc32 of the rest][ts_ns u64][bid i64][ask i64][bid size u32][ask size u32]`.
const QUOTE_LEN: usize = 12 + 32;

fn quote(seq: u64, ts_ns: u64, bid: i64, ask: i64, bid_sz: u32, ask_sz: u32) -> [u8; QUOTE_LEN] {
    let mut q = [0u8; QUOTE_LEN];
    q[..8].copy_from_slice(&seq.to_be_bytes());
    q[12..20].copy_from_slice(&ts_ns.to_be_bytes());
    q[20..28].copy_from_slice(&bid.to_be_bytes());
    q[28..36].copy_from_slice(&ask.to_be_bytes());
    q[36..40].copy_from_slice(&bid_sz.to_be_bytes());
    q[40..44].copy_from_slice(&ask_sz.to_be_bytes());
    let crc = crc32fast::hash(&q[12..]);
    q[8..12].copy_from_slice(&crc.to_be_bytes());
    q
}

/// The sequence number of a quote, if its CRC is right.
fn check_quote(p: &[u8]) -> Option<u64> {
    if p.len() != QUOTE_LEN {
        return None;
    }
    let crc = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
    (crc32fast::hash(&p[12..]) == crc)
        .then(|| u64::from_be_bytes(p[..8].try_into().unwrap_or_default()))
}

fn symbols(n: usize, rng: &mut SmallRng) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    while out.len() < n {
        let len = rng.gen_range(2..=4);
        let s: String = (0..len)
            .map(|_| char::from(rng.gen_range(b'A'..=b'Z')))
            .collect();
        let ex = EXCHANGES[out.len() % EXCHANGES.len()];
        out.insert(format!("MD.{ex}.{s}"));
    }
    out.into_iter().collect()
}

/// Live counters of one subscriber.
#[derive(Default)]
struct SubState {
    received: AtomicU64,
    gaps: AtomicU64,
    lost: AtomicU64,
    corrupt: AtomicU64,
    duplicates: AtomicU64,
    foreign: AtomicU64,
    repairs: AtomicU64,
    topics: Mutex<BTreeMap<String, u64>>,
}

fn matches(plan: &Plan, topic: &str) -> bool {
    plan.prefixes.iter().any(|p| topic.starts_with(p))
}

fn endpoint(args: &DemoArgs) -> String {
    let scheme = match args.transport {
        Transport::Epgm => "epgm",
        Transport::Pgm => "pgm",
    };
    // Interface 127.0.0.1: IP_MULTICAST_IF on the loopback, so nothing leaves the host.
    format!("{scheme}://127.0.0.1;{}:{}", args.group, args.port)
}

fn transport_options(loss: f64, seed: u64) -> epgm::Options {
    let o = epgm::Options::from(
        SocketOptions::default()
            .with_multicast_loop(true)
            .with_hops(1),
    );
    if loss > 0.0 {
        o.with_simulated_recv_loss(loss / 100.0, seed)
    } else {
        o
    }
}

/// Runs the demo; returns whether verification passed.
pub fn run(args: &DemoArgs) -> Result<bool> {
    if !(0.0..50.0).contains(&args.loss) {
        bail!("--loss must be a percentage in [0, 50)");
    }
    if args.symbols == 0 || args.rate == 0 || args.duration <= 0.0 {
        bail!("--symbols, --rate and --duration must be positive");
    }
    let ep = endpoint(args);
    let mut rng = SmallRng::seed_from_u64(args.seed);
    let topics = symbols(args.symbols, &mut rng);
    let stop = Arc::new(AtomicBool::new(false));
    let states: Vec<Arc<SubState>> = PLANS
        .iter()
        .map(|_| Arc::new(SubState::default()))
        .collect();

    let mut subs = Vec::new();
    for (k, plan) in PLANS.iter().enumerate() {
        let loss = if plan.lossy { args.loss } else { 0.0 };
        let opts = Options::default().with_transport(transport_options(loss, args.seed + k as u64));
        let mut sub = Subscriber::connect(&ep, &opts)
            .with_context(|| format!("subscriber {} on {ep}", plan.name))?;
        for p in plan.prefixes {
            sub.subscribe(p.as_bytes());
        }
        let (state, stop) = (states[k].clone(), stop.clone());
        subs.push(thread::spawn(move || {
            subscribe_loop(&mut sub, &state, &stop);
        }));
    }
    // Let the subscribers join the group before the first quote.
    thread::sleep(Duration::from_millis(200));
    let opts = Options::default().with_transport(transport_options(0.0, 0));
    let publisher = Publisher::connect(&ep, &opts).with_context(|| format!("publisher on {ep}"))?;
    if !args.quiet {
        println!(
            "md-demo: {} symbols, {} quotes/s for {} s over {ep}",
            topics.len(),
            args.rate,
            args.duration
        );
        println!(
            "subscriber 3 ({}) drops {}% of what it receives; PGM repairs it",
            PLANS[2].name, args.loss
        );
    }
    let sent = publish(args, &publisher, &topics, &states, &mut rng)?;
    publisher.flush().context("flush")?;
    let pub_stats = publisher.stats();
    // Give repairs time to finish, then close (FIN) and stop the subscribers.
    let expected: Vec<u64> = PLANS
        .iter()
        .map(|p| {
            sent.iter()
                .filter(|(t, _)| matches(p, t))
                .map(|(_, n)| n)
                .sum()
        })
        .collect();
    let clock = Clock::new();
    while clock.elapsed() < Duration::from_secs(10)
        && states
            .iter()
            .zip(&expected)
            .any(|(s, &e)| s.received.load(Ordering::Relaxed) < e)
    {
        thread::sleep(Duration::from_millis(50));
    }
    publisher.close().context("close")?;
    stop.store(true, Ordering::Relaxed);
    for s in subs {
        let _ = s.join();
    }
    Ok(summary(
        &sent,
        &states,
        &expected,
        &pub_stats.transport.engine,
    ))
}

fn publish(
    args: &DemoArgs,
    publisher: &Publisher,
    topics: &[String],
    states: &[Arc<SubState>],
    rng: &mut SmallRng,
) -> Result<BTreeMap<String, u64>> {
    let clock = Clock::new();
    let quotes_by = |t: Duration| (u128::from(args.rate) * t.as_micros() / 1_000_000) as u64;
    let total = quotes_by(Duration::from_secs_f64(args.duration));
    let mut seqs = vec![0u64; topics.len()];
    let mut mid: Vec<i64> = topics
        .iter()
        .map(|_| rng.gen_range(10_0000..500_0000))
        .collect();
    let mut next_tick = Duration::from_secs(1);
    let mut last = (0u64, vec![0u64; states.len()]);
    let mut sent = 0u64;
    while sent < total {
        let now = clock.elapsed();
        let due = quotes_by(now);
        let burst = due.min(total).saturating_sub(sent);
        if burst == 0 {
            thread::sleep(Duration::from_micros(200));
        }
        for _ in 0..burst {
            // A few symbols trade much more than the rest, as in real markets.
            let i = if rng.gen_bool(0.5) {
                rng.gen_range(0..topics.len().min(10))
            } else {
                rng.gen_range(0..topics.len())
            };
            mid[i] = (mid[i] + rng.gen_range(-50..=50)).max(1000);
            let spread = rng.gen_range(1..20);
            let ts = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX);
            let q = quote(
                seqs[i],
                ts,
                mid[i] - spread,
                mid[i] + spread,
                rng.gen_range(1..50) * 100,
                rng.gen_range(1..50) * 100,
            );
            seqs[i] += 1;
            publisher.send(topics[i].as_bytes(), &q).context("send")?;
            sent += 1;
        }
        if now >= next_tick && !args.quiet {
            next_tick += Duration::from_secs(1);
            print_table(now.as_secs_f64(), sent, &mut last, states);
        }
    }
    Ok(topics.iter().cloned().zip(seqs).collect())
}

fn print_table(t: f64, sent: u64, last: &mut (u64, Vec<u64>), states: &[Arc<SubState>]) {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "t={t:>4.1}s  publisher sent {sent:>10} ({:>8} msg/s)",
        sent - last.0
    );
    let _ = writeln!(
        out,
        "  {:<12} {:>10} {:>10} {:>7} {:>8} {:>5}",
        "subscriber", "msg/s", "received", "topics", "repairs", "gaps"
    );
    for (k, s) in states.iter().enumerate() {
        let r = s.received.load(Ordering::Relaxed);
        let topics = s.topics.lock().map_or(0, |t| t.len());
        let _ = writeln!(
            out,
            "  {:<12} {:>10} {:>10} {:>7} {:>8} {:>5}",
            PLANS[k].name,
            r - last.1[k],
            r,
            topics,
            s.repairs.load(Ordering::Relaxed),
            s.gaps.load(Ordering::Relaxed)
        );
        last.1[k] = r;
    }
    last.0 = sent;
    print!("{out}");
}

fn subscribe_loop(sub: &mut Subscriber, state: &SubState, stop: &AtomicBool) {
    let mut next: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    let mut local: BTreeMap<String, u64> = BTreeMap::new();
    let clock = Clock::new();
    let mut flushed = Duration::ZERO;
    loop {
        match sub.recv_timeout(Duration::from_millis(50)) {
            Ok(RecvEvent::Message(m)) => {
                let (Some(topic), Some(payload)) = (m.frames.first(), m.frames.get(1)) else {
                    state.corrupt.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                match check_quote(payload) {
                    None => {
                        state.corrupt.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(seq) => {
                        let want = next.entry(topic.to_vec()).or_insert(0);
                        if seq < *want {
                            state.duplicates.fetch_add(1, Ordering::Relaxed);
                        } else {
                            if seq > *want {
                                state.gaps.fetch_add(seq - *want, Ordering::Relaxed);
                            }
                            *want = seq + 1;
                            *local
                                .entry(String::from_utf8_lossy(topic).into_owned())
                                .or_insert(0) += 1;
                            state.received.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            Ok(RecvEvent::Gap { lost, .. }) => {
                state.lost.fetch_add(u64::from(lost), Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(_) => {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            }
        }
        if clock.elapsed() > flushed + Duration::from_millis(200) {
            flushed = clock.elapsed();
            publish_state(sub, state, &local);
        }
    }
    publish_state(sub, state, &local);
}

fn publish_state(sub: &Subscriber, state: &SubState, local: &BTreeMap<String, u64>) {
    let st = sub.stats();
    state
        .repairs
        .store(st.transport.engine.repaired, Ordering::Relaxed);
    state
        .foreign
        .store(st.decoder.filtered_out, Ordering::Relaxed);
    if let Ok(mut t) = state.topics.lock() {
        t.clone_from(local);
    }
}

fn summary(
    sent: &BTreeMap<String, u64>,
    states: &[Arc<SubState>],
    expected: &[u64],
    src: &pgm::SourceStats,
) -> bool {
    let total: u64 = sent.values().sum();
    println!(
        "\nverification ({total} quotes on {} topics; source: {} NAKs, {} RDATA)",
        sent.len(),
        src.naks_received,
        src.rdata_sent
    );
    let mut all_ok = true;
    for (k, plan) in PLANS.iter().enumerate() {
        let s = &states[k];
        let topics = s.topics.lock().map(|t| t.clone()).unwrap_or_default();
        // Exactly its topics, each with every quote sent on it.
        let wrong_topics = topics.keys().filter(|t| !matches(plan, t)).count();
        let short_topics = sent
            .iter()
            .filter(|(t, &n)| matches(plan, t) && topics.get(*t).copied().unwrap_or(0) != n)
            .count();
        let received = s.received.load(Ordering::Relaxed);
        let gaps = s.gaps.load(Ordering::Relaxed) + s.lost.load(Ordering::Relaxed);
        let corrupt = s.corrupt.load(Ordering::Relaxed) + s.duplicates.load(Ordering::Relaxed);
        let ok = received == expected[k]
            && wrong_topics == 0
            && short_topics == 0
            && gaps == 0
            && corrupt == 0;
        all_ok &= ok;
        println!(
            "  {:<12} {} {received}/{} quotes, {} topics, {} repaired, {gaps} lost, {corrupt} corrupt/duplicate, {} filtered out  [{}]",
            plan.name,
            if ok { "PASS" } else { "FAIL" },
            expected[k],
            topics.len(),
            s.repairs.load(Ordering::Relaxed),
            s.foreign.load(Ordering::Relaxed),
            plan.prefixes.join(" ")
        );
    }
    println!(
        "{}",
        if all_ok {
            "PASS: every subscriber got exactly the quotes of its prefixes"
        } else {
            "FAIL"
        }
    );
    all_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_verify_and_detect_corruption() {
        let mut q = quote(7, 1, 100, 101, 5, 6);
        assert_eq!(check_quote(&q), Some(7));
        q[30] ^= 1;
        assert_eq!(check_quote(&q), None);
        assert_eq!(check_quote(&q[..10]), None);
    }

    #[test]
    fn symbols_are_unique_and_spread_over_exchanges() {
        let mut rng = SmallRng::seed_from_u64(1);
        let s = symbols(300, &mut rng);
        assert_eq!(s.len(), 300);
        for ex in EXCHANGES {
            assert!(
                s.iter()
                    .filter(|t| t.starts_with(&format!("MD.{ex}.")))
                    .count()
                    > 50
            );
        }
        assert!(s.iter().all(|t| matches(&PLANS[2], t)));
    }
}
