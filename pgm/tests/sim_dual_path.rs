//! A/B sessions in the simulator (docs/dual-path.md): a source whose every packet for group A
//! also goes to group B ([`pgm::dual::second_path_copy`], as the socket driver's `DualPath`
//! does), the copy `skew` later; a receiver joined to both with 5 % loss on its link, drawn
//! for each copy independently. Which sqns each path lost and which the receiver NAKed are
//! read off the simulator's tap, so "NAKs only for what both paths lost" is checked exactly.

mod support;

use std::{
    cell::RefCell,
    collections::{BTreeSet, VecDeque},
    net::{IpAddr, Ipv4Addr},
    rc::Rc,
    time::Duration,
};

use pgm::{
    dual::second_path_copy,
    sim::{DropReason, LinkConfig, Node, NodeId, SeedGuard, Sim, TapKind},
    time::Instant,
    wire::{Body, PacketRepr},
    Receiver, ReceiverConfig, Source, SourceConfig, Transmit,
};
use support::{apdu, Checker, DPORT, GROUP, SRC_ADDR, TSI};

const GROUP_B: IpAddr = IpAddr::V4(Ipv4Addr::new(239, 192, 0, 2));
const RX_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1));
const SIZE: usize = 200;

/// The source with its second path: each packet for [`GROUP`] is followed, `skew` later, by
/// its copy for [`GROUP_B`].
struct DualSource {
    inner: Source,
    skew: Duration,
    /// Copies due on the second path, in order.
    held: VecDeque<(Instant, Vec<u8>)>,
    dual: bool,
}

impl Node for DualSource {
    fn handle_packet(&mut self, now: Instant, src: IpAddr, dst: IpAddr, packet: &[u8]) {
        self.inner.handle_packet(now, src, dst, packet);
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        if self.held.front().is_some_and(|(due, _)| *due <= now) {
            let (_, copy) = self.held.pop_front()?;
            buf.clear();
            buf.extend_from_slice(&copy);
            return Some(Transmit::new(GROUP_B, buf.len()));
        }
        let t = self.inner.poll_transmit(now, buf)?;
        if self.dual && t.dst == GROUP {
            let mut copy = Vec::new();
            second_path_copy(&buf[..t.len], GROUP, GROUP_B, &mut copy);
            self.held.push_back((now + self.skew, copy));
        }
        Some(t)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        let held = self.held.front().map(|(due, _)| *due);
        match (self.inner.poll_timeout(), held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// What one run saw.
#[derive(Debug, Default)]
struct Outcome {
    /// ODATA sqns lost on the way to the receiver, per path.
    lost_a: BTreeSet<u32>,
    lost_b: BTreeSet<u32>,
    /// Sqns the receiver NAKed (each once, however often).
    naked: BTreeSet<u32>,
    nak_sqns_sent: u64,
    duplicates: u64,
    delivered: u64,
}

impl Outcome {
    fn both_lost(&self) -> BTreeSet<u32> {
        self.lost_a.intersection(&self.lost_b).copied().collect()
    }
}

/// Sends `n` APDUs, one every 100 µs, to a receiver with 5 % ingress loss that hears group A
/// (and group B if `dual`, the copies `skew` after A's), configured for a skew of
/// `path_skew`.
fn run(guard: &SeedGuard, n: u64, dual: bool, skew: Duration, path_skew: Duration) -> Outcome {
    let mut sim = Sim::new(guard.seed());
    let mut cfg = SourceConfig::new(TSI, DPORT, GROUP, SRC_ADDR);
    cfg.rng_seed = guard.seed();
    cfg.second_group = dual.then_some(GROUP_B);
    let src = sim.add_node(
        SRC_ADDR,
        DualSource {
            inner: Source::new(cfg),
            skew,
            held: VecDeque::new(),
            dual,
        },
    );
    let mut rc = ReceiverConfig::new(DPORT);
    rc.rng_seed = guard.seed().wrapping_add(1);
    rc.path_skew = path_skew;
    let rx = sim.add_node(RX_ADDR, Receiver::new(rc));
    sim.join(rx, GROUP);
    if dual {
        sim.join(rx, GROUP_B);
    }
    let link = LinkConfig {
        delay: Duration::from_micros(50),
        ..LinkConfig::default()
    };
    sim.set_links(rx, link.clone(), LinkConfig { loss: 0.05, ..link });
    let seen = Rc::new(RefCell::new(Outcome::default()));
    tap(&mut sim, rx, &seen);
    let mut checker = Checker::default();
    let sizes = |_| SIZE;
    sim.run_for(Duration::from_millis(5)).expect("sim");
    for i in 0..n {
        let data = apdu(i, SIZE);
        sim.with_node_mut(src, |s: &mut DualSource, now| s.inner.send(now, &data))
            .expect("paced below any limit");
        sim.run_for(Duration::from_micros(100)).expect("sim");
        drain(&mut sim, rx, &mut checker, &sizes);
    }
    let deadline = sim.now() + Duration::from_secs(5);
    while checker.next < n && sim.now() < deadline {
        sim.run_for(Duration::from_millis(1)).expect("sim");
        drain(&mut sim, rx, &mut checker, &sizes);
    }
    assert!(checker.errors.is_empty(), "{:?}", checker.errors);
    assert_eq!(
        (checker.next, checker.loss_sqns),
        (n, 0),
        "every APDU, none lost"
    );
    let stats = sim.node::<Receiver>(rx).stats();
    let mut out = seen.take();
    out.nak_sqns_sent = stats.nak_sqns_sent;
    out.duplicates = stats.duplicates;
    out.delivered = stats.apdus_delivered;
    out
}

fn drain(sim: &mut Sim, rx: NodeId, c: &mut Checker, sizes: &dyn Fn(u64) -> usize) {
    let now = sim.now();
    let r = sim.node_mut::<Receiver>(rx);
    while let Some(ev) = r.poll_event() {
        c.check(ev, sizes, now);
    }
}

/// Records the ODATA each path lost on the receiver's link, and the sqns its NAKs ask for.
fn tap(sim: &mut Sim, rx: NodeId, seen: &Rc<RefCell<Outcome>>) {
    let seen = Rc::clone(seen);
    sim.set_tap(move |ev| {
        let Ok(p) = PacketRepr::parse(ev.bytes) else {
            return;
        };
        let mut s = seen.borrow_mut();
        match (ev.kind, p.body) {
            (TapKind::Dropped(DropReason::Loss), Body::Odata(d)) if ev.to_node == Some(rx) => {
                if ev.dst == GROUP {
                    s.lost_a.insert(d.sqn.0);
                } else {
                    s.lost_b.insert(d.sqn.0);
                }
            }
            (TapKind::Sent, Body::Nak(nak)) if ev.from == rx => {
                let list = p.options.nak_list.unwrap_or_default();
                s.naked.insert(nak.sqn.0);
                s.naked.extend(list.as_slice().iter().map(|q| q.0));
            }
            _ => {}
        }
    });
}

/// 5 % independent loss on each path, path B 200 µs behind A (well within the LAN NAK
/// back-off of 2.5 ms): every APDU once; the receiver NAKs every sqn both paths lost
/// (about 0.25 %) and next to nothing else, against about 5 % on a single path.
#[test]
fn independent_loss_on_two_paths_naks_only_what_both_lost() {
    let guard = SeedGuard::from_env(0xAB01);
    let n = 20_000;
    let skew = Duration::from_micros(200);
    let dual = run(&guard, n, true, skew, Duration::ZERO);
    let single = run(&guard, n, false, skew, Duration::ZERO);
    let both = dual.both_lost();
    let extra: BTreeSet<u32> = dual.naked.difference(&both).copied().collect();
    println!(
        "dual: lost A {} B {} both {}, NAKed {} sqns ({} beyond both-lost), {} NAK sqns sent, \
         {} duplicates; single: lost {}, NAKed {} sqns",
        dual.lost_a.len(),
        dual.lost_b.len(),
        both.len(),
        dual.naked.len(),
        extra.len(),
        dual.nak_sqns_sent,
        dual.duplicates,
        single.lost_a.len(),
        single.naked.len(),
    );
    // Each path loses about 5 %; both about 0.25 % (50 of 20 000).
    for lost in [&dual.lost_a, &dual.lost_b] {
        assert!((800..1200).contains(&lost.len()), "{}", lost.len());
    }
    assert!((20..100).contains(&both.len()), "{}", both.len());
    // What both lost can only come back by NAK; anything else NAKed is a skew miss.
    assert!(
        both.is_subset(&dual.naked),
        "unNAKed: {:?}",
        both.difference(&dual.naked)
    );
    assert!(extra.len() <= 5, "NAKed beyond what both lost: {extra:?}");
    // The second copy of every sqn that came twice is a duplicate, never delivered.
    let twice = n - (dual.lost_a.len() + dual.lost_b.len() - both.len()) as u64;
    assert!(dual.duplicates >= twice, "{} < {twice}", dual.duplicates);
    assert_eq!(dual.delivered, n);
    // A single path NAKs everything it lost.
    assert!(single.naked.len() * 10 >= single.lost_a.len() * 9);
    assert!(single.naked.len() > 10 * dual.naked.len());
}

/// The wait before a NAK must cover the skew between the paths. Path B 5 ms behind A: with
/// the LAN back-off alone (at most 2.5 ms) the receiver NAKs nearly everything A alone lost,
/// before B's copy arrives; told the skew (`ReceiverConfig::path_skew`), it waits for B and
/// NAKs only what both lost again. (The back-off is biased late, so a skew of a tenth of it,
/// the LAN's 200 µs of the test above, needs no setting.)
#[test]
fn the_nak_wait_must_cover_the_skew() {
    let guard = SeedGuard::from_env(0xAB02);
    let n = 10_000;
    let skew = Duration::from_millis(5);
    let blind = run(&guard, n, true, skew, Duration::ZERO);
    let told = run(&guard, n, true, skew, skew);
    let a_only = |o: &Outcome| o.lost_a.difference(&o.lost_b).count();
    println!(
        "B 5 ms behind: path_skew 0 NAKed {} sqns (A alone lost {}, both {}); path_skew 5 ms \
         NAKed {} (both lost {})",
        blind.naked.len(),
        a_only(&blind),
        blind.both_lost().len(),
        told.naked.len(),
        told.both_lost().len()
    );
    assert!(blind.naked.len() * 10 >= a_only(&blind) * 9);
    let both = told.both_lost();
    assert!(both.is_subset(&told.naked));
    assert!(told.naked.difference(&both).count() <= 3);
}
