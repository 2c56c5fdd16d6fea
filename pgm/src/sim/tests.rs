//! Simulator tests with toy nodes: a pinger that numbers and timestamps its packets, an echo, a
//! counting sink and timer probes.

use std::{cell::RefCell, collections::VecDeque, rc::Rc};

use super::*;
use crate::Transmit;

const PING: u8 = 0;
const ECHO: u8 = 1;
/// kind (1) + seq (4) + sent-at micros (8).
const HEADER: usize = 13;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn group() -> IpAddr {
    ip("239.192.0.1")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

/// (kind, seq, sent at) of a toy packet.
fn parse(p: &[u8]) -> (u8, u32, Instant) {
    let seq = u32::from_be_bytes(p[1..5].try_into().unwrap());
    let sent = u64::from_be_bytes(p[5..13].try_into().unwrap());
    (p[0], seq, Instant::from_micros(sent))
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Heard {
    at: Instant,
    src: IpAddr,
    dst: IpAddr,
    kind: u8,
    seq: u32,
    sent: Instant,
}

/// Sends `count` numbered pings to `dst`, one every `interval` from time zero; optionally echoes
/// every ping it hears back to its sender by unicast; records everything it hears.
struct Ping {
    dst: IpAddr,
    interval: Duration,
    size: usize,
    left: u32,
    next_at: Option<Instant>,
    next_seq: u32,
    echo: bool,
    out: VecDeque<(IpAddr, u8, u32, Instant)>,
    heard: Vec<Heard>,
}

impl Ping {
    fn new(dst: IpAddr, interval: Duration, count: u32) -> Self {
        Ping {
            dst,
            interval,
            size: HEADER,
            left: count,
            next_at: (count > 0).then_some(Instant::ZERO),
            next_seq: 0,
            echo: false,
            out: VecDeque::new(),
            heard: Vec::new(),
        }
    }

    fn echo() -> Self {
        Ping {
            echo: true,
            ..Ping::new(group(), ms(1), 0)
        }
    }

    fn sized(self, size: usize) -> Self {
        Ping { size, ..self }
    }

    fn queue_ping(&mut self, now: Instant) {
        self.out.push_back((self.dst, PING, self.next_seq, now));
        self.next_seq += 1;
    }

    fn seqs(&self) -> Vec<u32> {
        self.heard.iter().map(|h| h.seq).collect()
    }
}

impl Node for Ping {
    fn handle_packet(&mut self, now: Instant, src: IpAddr, dst: IpAddr, packet: &[u8]) {
        let (kind, seq, sent) = parse(packet);
        self.heard.push(Heard {
            at: now,
            src,
            dst,
            kind,
            seq,
            sent,
        });
        if self.echo && kind == PING {
            self.out.push_back((src, ECHO, seq, now));
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        // Catch up if called late; ignore spurious early calls.
        while let Some(at) = self.next_at.filter(|&at| at <= now) {
            self.queue_ping(now);
            self.left -= 1;
            self.next_at = (self.left > 0).then(|| at + self.interval);
        }
    }

    fn poll_transmit(&mut self, _now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        let (dst, kind, seq, sent) = self.out.pop_front()?;
        buf.clear();
        buf.push(kind);
        buf.extend_from_slice(&seq.to_be_bytes());
        buf.extend_from_slice(&sent.as_micros().to_be_bytes());
        buf.resize(self.size.max(HEADER), 0);
        Some(Transmit::new(dst, buf.len()))
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.next_at
    }
}

/// Counts what it hears, nothing more (for the large runs).
#[derive(Default)]
struct Sink {
    packets: u64,
    bytes: u64,
}

impl Node for Sink {
    fn handle_packet(&mut self, _: Instant, _: IpAddr, _: IpAddr, packet: &[u8]) {
        self.packets += 1;
        self.bytes += packet.len() as u64;
    }
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_transmit(&mut self, _: Instant, _: &mut Vec<u8>) -> Option<Transmit> {
        None
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}

/// Expires 10 ms after the last packet it heard, like a receiver's peer-expiry timer, which
/// moves later on every packet.
#[derive(Default)]
struct Expiry {
    deadline: Option<Instant>,
    fired: Vec<Instant>,
}

impl Node for Expiry {
    fn handle_packet(&mut self, now: Instant, _: IpAddr, _: IpAddr, _: &[u8]) {
        self.deadline = Some(now + ms(10));
    }
    fn handle_timeout(&mut self, now: Instant) {
        let deadline = self.deadline.take().expect("timeout without a deadline");
        assert!(deadline <= now, "fired at {now:?} before {deadline:?}");
        self.fired.push(now);
    }
    fn poll_transmit(&mut self, _: Instant, _: &mut Vec<u8>) -> Option<Transmit> {
        None
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }
}

/// Always overdue: its deadline stays at zero whatever happens.
#[derive(Default)]
struct Stuck {
    fired: Vec<Instant>,
}

impl Node for Stuck {
    fn handle_packet(&mut self, _: Instant, _: IpAddr, _: IpAddr, _: &[u8]) {}
    fn handle_timeout(&mut self, now: Instant) {
        self.fired.push(now);
    }
    fn poll_transmit(&mut self, _: Instant, _: &mut Vec<u8>) -> Option<Transmit> {
        None
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Some(Instant::ZERO)
    }
}

/// A pinger at 10.0.0.1 multicasting `count` pings, and `receivers` joined `Ping` listeners at
/// 10.0.1.x.
fn star(seed: u64, receivers: usize, count: u32, interval: Duration) -> (Sim, NodeId, Vec<NodeId>) {
    let mut sim = Sim::new(seed);
    let source = sim.add_node(ip("10.0.0.1"), Ping::new(group(), interval, count));
    let receivers = (0..receivers)
        .map(|i| {
            let id = sim.add_node(
                ip(&format!("10.0.1.{}", i + 1)),
                Ping::new(group(), ms(1), 0),
            );
            sim.join(id, group());
            id
        })
        .collect();
    (sim, source, receivers)
}

fn ratio(part: u64, whole: u64) -> f64 {
    part as f64 / whole as f64
}

type Trace = Vec<(u64, TapKind, usize, Option<usize>, u32)>;

/// Three pingers all joined to the group, on links with every impairment.
fn trace(seed: u64) -> Trace {
    let mut sim = Sim::new(seed);
    let nodes: Vec<NodeId> = (1..=3)
        .map(|i| {
            let id = sim.add_node(ip(&format!("10.0.0.{i}")), Ping::new(group(), ms(1), 500));
            sim.join(id, group());
            let egress = LinkConfig {
                delay: ms(5),
                jitter: ms(3),
                duplicate: 0.05,
                reorder: 0.05,
                reorder_delay: ms(4),
                burst_loss: Some(GilbertElliott {
                    p_good_to_bad: 0.02,
                    p_bad_to_good: 0.3,
                    loss_in_bad: 0.7,
                }),
                rate: Some(10_000),
                queue_limit: Some(200),
                ..LinkConfig::default()
            };
            let ingress = LinkConfig {
                loss: 0.1,
                jitter: ms(1),
                ..LinkConfig::default()
            };
            sim.set_links(id, egress, ingress);
            id
        })
        .collect();
    assert_eq!(nodes.len(), 3);
    let log = Rc::new(RefCell::new(Trace::new()));
    let sink = Rc::clone(&log);
    sim.set_tap(move |e| {
        sink.borrow_mut().push((
            e.time.as_micros(),
            e.kind,
            e.from.index(),
            e.to_node.map(NodeId::index),
            parse(e.bytes).1,
        ));
    });
    sim.run_until(Instant::from_millis(600)).unwrap();
    drop(sim);
    Rc::try_unwrap(log).unwrap().into_inner()
}

#[test]
fn same_seed_same_trace_other_seed_other_trace() {
    let a = trace(7);
    assert!(
        a.len() > 3000,
        "trace too short to mean anything: {}",
        a.len()
    );
    for kind in [
        TapKind::Dropped(DropReason::Loss),
        TapKind::Dropped(DropReason::Queue),
        TapKind::Delivered,
    ] {
        assert!(a.iter().any(|e| e.1 == kind), "no {kind:?} in the trace");
    }
    assert_eq!(a, trace(7));
    assert_ne!(a, trace(8));
}

#[test]
fn independent_loss_rate() {
    let (mut sim, source, rx) = star(1, 1, 100_000, us(100));
    sim.link_mut(rx[0], Dir::Ingress).loss = 0.1;
    sim.run_until_idle(Instant::from_millis(20_000)).unwrap();
    let sent = sim.stats(source).sent_packets;
    assert_eq!(sent, 100_000);
    let lost = ratio(sim.stats(rx[0]).ingress_drops.loss, sent);
    assert!((lost - 0.1).abs() < 0.005, "loss {lost}");
    let heard = sim.node::<Ping>(rx[0]).heard.len() as u64;
    assert_eq!(heard + sim.stats(rx[0]).ingress_drops.loss, sent);
}

#[test]
fn gilbert_elliott_mean_loss_and_bursts() {
    let ge = GilbertElliott {
        p_good_to_bad: 0.01,
        p_bad_to_good: 0.1,
        loss_in_bad: 0.8,
    };
    let (mut sim, _, rx) = star(2, 1, 100_000, us(100));
    sim.link_mut(rx[0], Dir::Ingress).burst_loss = Some(ge);
    sim.run_until_idle(Instant::from_millis(20_000)).unwrap();
    let mut lost = vec![true; 100_000];
    for seq in sim.node::<Ping>(rx[0]).seqs() {
        lost[seq as usize] = false;
    }
    let losses = lost.iter().filter(|&&l| l).count();
    let mean = losses as f64 / lost.len() as f64;
    assert!(
        (mean - ge.mean_loss()).abs() < 0.01,
        "mean loss {mean} vs {}",
        ge.mean_loss()
    );
    // Bursty: a loss is far more likely right after a loss than on average.
    let after_loss = lost.windows(2).filter(|w| w[0]).count();
    let loss_after_loss = lost.windows(2).filter(|w| w[0] && w[1]).count();
    let conditional = loss_after_loss as f64 / after_loss as f64;
    assert!(
        conditional > 5.0 * mean,
        "P(loss|loss) {conditional} vs mean {mean}"
    );
}

#[test]
fn delay_and_jitter_bounds() {
    let (mut sim, source, rx) = star(3, 1, 10_000, ms(1));
    sim.link_mut(source, Dir::Egress).delay = ms(10);
    sim.link_mut(rx[0], Dir::Ingress).jitter = ms(5);
    sim.run_until_idle(Instant::from_millis(20_000)).unwrap();
    let latencies: Vec<Duration> = sim
        .node::<Ping>(rx[0])
        .heard
        .iter()
        .map(|h| h.at - h.sent)
        .collect();
    assert_eq!(latencies.len(), 10_000);
    let min = *latencies.iter().min().unwrap();
    let max = *latencies.iter().max().unwrap();
    assert!(min >= ms(10) && min < us(10_050), "min {min:?}");
    assert!(max <= ms(15) && max > us(14_950), "max {max:?}");
}

/// Packets that arrive after a higher-numbered one.
fn late(seqs: &[u32]) -> usize {
    let mut highest = None;
    seqs.iter()
        .filter(|&&s| {
            let late = highest.is_some_and(|h| s < h);
            highest = highest.max(Some(s));
            late
        })
        .count()
}

#[test]
fn jitter_beyond_spacing_reorders() {
    let (mut sim, _, rx) = star(4, 2, 1000, ms(1));
    sim.link_mut(rx[0], Dir::Ingress).jitter = ms(5);
    sim.link_mut(rx[1], Dir::Ingress).jitter = us(900);
    sim.run_until_idle(Instant::from_millis(5000)).unwrap();
    assert!(late(&sim.node::<Ping>(rx[0]).seqs()) > 100);
    // Jitter below the spacing delays but never reorders.
    assert_eq!(late(&sim.node::<Ping>(rx[1]).seqs()), 0);
}

#[test]
fn explicit_reordering_rate() {
    let (mut sim, _, rx) = star(5, 1, 20_000, ms(1));
    let link = sim.link_mut(rx[0], Dir::Ingress);
    link.reorder = 0.1;
    link.reorder_delay = us(2500);
    sim.run_until_idle(Instant::from_millis(30_000)).unwrap();
    let seqs = sim.node::<Ping>(rx[0]).seqs();
    assert_eq!(seqs.len(), 20_000);
    let share = late(&seqs) as f64 / 20_000.0;
    // A held-back packet arrives late unless both of its successors were held back too.
    assert!((share - 0.1 * 0.99).abs() < 0.01, "late share {share}");
}

#[test]
fn duplication_rate() {
    let (mut sim, source, rx) = star(6, 1, 20_000, ms(1));
    sim.link_mut(rx[0], Dir::Ingress).duplicate = 0.2;
    sim.run_until_idle(Instant::from_millis(30_000)).unwrap();
    let delivered = sim.stats(rx[0]).delivered_packets;
    let dup = ratio(delivered, sim.stats(source).sent_packets) - 1.0;
    assert!((dup - 0.2).abs() < 0.01, "duplicated {dup}");
    let mut times = vec![0_u32; 20_000];
    for seq in sim.node::<Ping>(rx[0]).seqs() {
        times[seq as usize] += 1;
    }
    assert!(times.iter().all(|&n| n == 1 || n == 2));
}

#[test]
fn rate_limit_throughput_and_tail_drop() {
    // Offer 2 MB/s of 1000-byte packets to a 1 MB/s link with a 20-packet queue for 10 s.
    let (mut sim, source, rx) = star(7, 1, 20_000, us(500));
    sim.node_mut::<Ping>(source).size = 1000;
    let link = sim.link_mut(source, Dir::Egress);
    link.rate = Some(1_000_000);
    link.queue_limit = Some(20_000);
    sim.run_until(Instant::from_millis(10_000)).unwrap();
    let bytes = sim.stats(rx[0]).delivered_bytes as f64;
    assert!(
        (bytes / 10e6 - 1.0).abs() < 0.02,
        "throughput {bytes} B in 10 s"
    );
    let queue_drops = sim.stats(source).egress_drops.queue;
    assert!(
        (9_900..=10_100).contains(&queue_drops),
        "queue drops {queue_drops}"
    );
    // Latency is the serialization time plus the queueing delay, bounded by the queue size.
    let worst = sim
        .node::<Ping>(rx[0])
        .heard
        .iter()
        .map(|h| h.at - h.sent)
        .max()
        .unwrap();
    assert!(worst <= ms(21), "worst latency {worst:?}");

    // A lone packet just takes len / rate: 1400 B at 100 kB/s.
    let (mut sim, source, rx) = star(7, 1, 1, ms(1));
    sim.node_mut::<Ping>(source).size = 1400;
    sim.link_mut(source, Dir::Egress).rate = Some(100_000);
    sim.run_until_idle(Instant::from_millis(1000)).unwrap();
    assert_eq!(
        sim.node::<Ping>(rx[0]).heard[0].at,
        Instant::from_millis(14)
    );
}

#[test]
fn small_packets_on_a_fast_link_keep_the_rate() {
    // 100-byte packets at 3 MB/s take 33.3 µs each: rounding to whole µs would be off by 1 %.
    let (mut sim, source, rx) = star(8, 1, 400_000, us(25));
    sim.node_mut::<Ping>(source).size = 100;
    sim.link_mut(source, Dir::Egress).rate = Some(3_000_000);
    sim.link_mut(source, Dir::Egress).queue_limit = Some(10_000);
    sim.run_until(Instant::from_millis(10_000)).unwrap();
    let bytes = sim.stats(rx[0]).delivered_bytes as f64;
    assert!(
        (bytes / 30e6 - 1.0).abs() < 0.001,
        "throughput {bytes} B in 10 s"
    );
}

#[test]
fn link_down_intervals() {
    let (mut sim, source, rx) = star(9, 2, 1000, ms(1));
    sim.link_down(
        source,
        Dir::Egress,
        Instant::from_millis(100)..Instant::from_millis(200),
    );
    sim.link_down(
        rx[1],
        Dir::Ingress,
        Instant::from_millis(500)..Instant::from_millis(550),
    );
    sim.run_until_idle(Instant::from_millis(5000)).unwrap();
    assert_eq!(sim.stats(source).egress_drops.link_down, 100);
    assert_eq!(sim.stats(rx[1]).ingress_drops.link_down, 50);
    let missing = |id| {
        let heard = sim.node::<Ping>(id).seqs();
        (0..1000)
            .filter(|s| !heard.contains(s))
            .collect::<Vec<u32>>()
    };
    assert_eq!(missing(rx[0]), (100..200).collect::<Vec<_>>());
    assert_eq!(
        missing(rx[1]),
        (100..200).chain(500..550).collect::<Vec<_>>()
    );
}

#[test]
fn unicast_and_multicast_delivery() {
    let mut sim = Sim::new(10);
    let a = sim.add_node(ip("10.0.0.1"), Ping::new(group(), ms(1), 10));
    let b = sim.add_node(ip("10.0.0.2"), Ping::echo());
    let c = sim.add_node(ip("10.0.0.3"), Ping::echo());
    let d = sim.add_node(ip("10.0.0.4"), Ping::echo());
    for id in [a, b, c] {
        sim.join(id, group());
    }
    sim.run_until_idle(Instant::from_millis(1000)).unwrap();
    // b and c hear the multicast; a, the sender, does not hear itself; d never joined.
    for id in [b, c] {
        let heard = &sim.node::<Ping>(id).heard;
        assert_eq!(heard.len(), 10);
        assert!(heard
            .iter()
            .all(|h| h.kind == PING && h.dst == group() && h.src == ip("10.0.0.1")));
    }
    assert!(sim.node::<Ping>(d).heard.is_empty());
    // a hears only the unicast echoes, addressed to it, from b and c.
    let heard = &sim.node::<Ping>(a).heard;
    assert_eq!(heard.len(), 20);
    assert!(heard
        .iter()
        .all(|h| h.kind == ECHO && h.dst == ip("10.0.0.1")));
    assert_eq!(heard.iter().filter(|h| h.src == ip("10.0.0.2")).count(), 10);

    // A unicast to nobody is counted, not delivered.
    let lost = sim.add_node(ip("10.0.0.9"), Ping::new(ip("10.9.9.9"), ms(1), 3));
    sim.run_until_idle(Instant::from_millis(2000)).unwrap();
    assert_eq!(sim.stats(lost).egress_drops.no_route, 3);
}

#[test]
fn egress_loss_is_correlated_ingress_loss_is_not() {
    let (mut sim, source, rx) = star(11, 5, 2000, ms(1));
    sim.link_mut(source, Dir::Egress).loss = 0.3;
    sim.run_until_idle(Instant::from_millis(5000)).unwrap();
    let first = sim.node::<Ping>(rx[0]).seqs();
    let share = first.len() as f64 / 2000.0;
    assert!((share - 0.7).abs() < 0.04, "delivered {share}");
    for &id in &rx[1..] {
        assert_eq!(sim.node::<Ping>(id).seqs(), first);
    }
    assert_eq!(
        sim.stats(source).egress_drops.loss,
        2000 - first.len() as u64
    );

    let (mut sim, _, rx) = star(11, 5, 2000, ms(1));
    for &id in &rx {
        sim.link_mut(id, Dir::Ingress).loss = 0.3;
    }
    sim.run_until_idle(Instant::from_millis(5000)).unwrap();
    let first = sim.node::<Ping>(rx[0]).seqs();
    assert!(rx[1..]
        .iter()
        .all(|&id| sim.node::<Ping>(id).seqs() != first));
}

#[test]
fn filters_script_loss_exactly() {
    let (mut sim, source, rx) = star(12, 2, 10, ms(1));
    let mut dropped_once = false;
    // Drop ping 5 once, upstream of everyone.
    sim.set_filter(source, Dir::Egress, move |p| {
        let hit = parse(p).1 == 5 && !dropped_once;
        dropped_once |= hit;
        hit
    });
    // And ping 7 towards the second receiver only.
    sim.set_filter(rx[1], Dir::Ingress, |p| parse(p).1 == 7);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = Rc::clone(&seen);
    sim.set_tap(move |e| {
        if let TapKind::Dropped(reason) = e.kind {
            log.borrow_mut().push((parse(e.bytes).1, e.to_node, reason));
        }
    });
    sim.run_until_idle(Instant::from_millis(1000)).unwrap();
    assert_eq!(sim.node::<Ping>(rx[0]).seqs(), [0, 1, 2, 3, 4, 6, 7, 8, 9]);
    assert_eq!(sim.node::<Ping>(rx[1]).seqs(), [0, 1, 2, 3, 4, 6, 8, 9]);
    assert_eq!(
        *seen.borrow(),
        [
            (5, None, DropReason::Filter),
            (7, Some(rx[1]), DropReason::Filter)
        ]
    );
    // Once removed, the filter drops nothing.
    sim.clear_filter(rx[1], Dir::Ingress);
    sim.with_node_mut(source, |ping: &mut Ping, now| ping.queue_ping(now));
    sim.run_until_idle(Instant::from_millis(2000)).unwrap();
    assert_eq!(sim.node::<Ping>(rx[1]).seqs().last(), Some(&10));
}

#[test]
fn timers_fire_at_the_deadline_even_as_it_moves() {
    let mut sim = Sim::new(13);
    sim.add_node(ip("10.0.0.1"), Ping::new(group(), ms(1), 100));
    let rx = sim.add_node(ip("10.0.0.2"), Expiry::default());
    sim.join(rx, group());
    sim.link_mut(rx, Dir::Ingress).jitter = us(300);
    sim.run_until_idle(Instant::from_millis(1000)).unwrap();
    // Pushed back by every ping, it fires once, exactly 10 ms after the last one.
    let last = Instant::from_millis(99);
    let fired = &sim.node::<Expiry>(rx).fired;
    assert_eq!(fired.len(), 1);
    assert!(fired[0] >= last + ms(10) && fired[0] <= last + us(10_300));
    assert_eq!(sim.now(), fired[0]);
    assert_eq!(sim.stats(rx).timeouts, 1);
}

#[test]
fn overdue_timer_advances_the_clock_and_livelock_is_reported() {
    let mut sim = Sim::new(14);
    let stuck = sim.add_node(ip("10.0.0.1"), Stuck::default());
    sim.run_until(Instant::from_millis(10)).unwrap();
    let fired = &sim.node::<Stuck>(stuck).fired;
    assert_eq!(fired.len(), 10_001);
    assert!(fired.windows(2).all(|w| w[1] == w[0] + us(1)));

    sim.set_event_limit(100);
    let err = sim.run_until(Instant::from_millis(20)).unwrap_err();
    assert!(
        matches!(err, SimError::EventLimit { limit: 100, .. }),
        "{err}"
    );
    let err = sim.run_until_idle(Instant::from_millis(30)).unwrap_err();
    assert!(matches!(err, SimError::EventLimit { .. }), "{err}");
}

#[test]
fn application_input_is_flushed_at_the_current_time() {
    let (mut sim, source, rx) = star(15, 1, 0, ms(1));
    sim.link_mut(rx[0], Dir::Ingress).delay = ms(2);
    sim.run_until(Instant::from_millis(5)).unwrap();
    sim.with_node_mut(source, |ping: &mut Ping, now| ping.queue_ping(now));
    // Through node_mut the packet leaves at the next step instead, still at the current time.
    sim.node_mut::<Ping>(source)
        .queue_ping(Instant::from_millis(5));
    sim.run_until_idle(Instant::from_millis(100)).unwrap();
    let heard = &sim.node::<Ping>(rx[0]).heard;
    assert_eq!(heard.len(), 2);
    assert!(heard.iter().all(|h| h.at == Instant::from_millis(7)));
    assert_eq!(sim.now(), Instant::from_millis(7));
}

#[test]
fn run_while_and_run_until_idle_stop_where_expected() {
    let (mut sim, _, rx) = star(16, 1, 10, ms(1));
    sim.link_mut(rx[0], Dir::Ingress).delay = ms(5);
    let r = rx[0];
    let at = sim.run_while(
        |sim| sim.node::<Ping>(r).heard.len() < 5,
        Instant::from_millis(100),
    );
    assert_eq!(at, Ok(Instant::from_millis(9)));
    let err = sim.run_while(
        |sim| sim.node::<Ping>(r).heard.len() < 50,
        Instant::from_millis(100),
    );
    assert_eq!(
        err,
        Err(SimError::Deadline {
            deadline: Instant::from_millis(100)
        })
    );
    assert_eq!(sim.now(), Instant::from_millis(100));

    let (mut sim, _, rx) = star(16, 1, 10, ms(1));
    sim.link_mut(rx[0], Dir::Ingress).delay = ms(5);
    // Packets still in flight at the deadline.
    let err = sim.run_until_idle(Instant::from_millis(12));
    assert_eq!(
        err,
        Err(SimError::Deadline {
            deadline: Instant::from_millis(12)
        })
    );
    assert_eq!(
        sim.run_until_idle(Instant::from_millis(100)),
        Ok(Instant::from_millis(14))
    );
    assert!(!sim.step());
}

#[test]
fn seed_guard_and_env_parsing() {
    // The variable may be set by whoever runs the tests; only check the fallback when it is not.
    if std::env::var(SEED_ENV).is_err() {
        assert_eq!(seed_from_env(42), 42);
        assert_eq!(SeedGuard::from_env(42).seed(), 42);
    }
    let caught = std::panic::catch_unwind(|| {
        let _guard = SeedGuard::new(5);
        panic!("scenario failed");
    });
    assert!(caught.is_err());
}

#[test]
fn fifty_receivers_twenty_thousand_packets() {
    let mut sim = Sim::new(17);
    let source = sim.add_node(
        ip("10.0.0.1"),
        Ping::new(group(), us(200), 20_000).sized(1000),
    );
    sim.link_mut(source, Dir::Egress).jitter = ms(1);
    let sinks: Vec<NodeId> = (0..50)
        .map(|i| {
            let id = sim.add_node(ip(&format!("10.0.1.{}", i + 1)), Sink::default());
            sim.join(id, group());
            sim.link_mut(id, Dir::Ingress).loss = 0.01;
            sim.link_mut(id, Dir::Ingress).delay = ms(10);
            id
        })
        .collect();
    sim.run_until_idle(Instant::from_millis(60_000)).unwrap();
    let delivered: u64 = sinks.iter().map(|&id| sim.node::<Sink>(id).packets).sum();
    let expected = 50.0 * 20_000.0 * 0.99;
    assert!(
        (delivered as f64 / expected - 1.0).abs() < 0.005,
        "{delivered}"
    );
    assert_eq!(
        sim.node::<Sink>(sinks[0]).bytes,
        1000 * sim.node::<Sink>(sinks[0]).packets
    );
}
