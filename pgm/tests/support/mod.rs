//! Shared scaffolding for the simulator scenario tests: a LAN of one source and N receivers,
//! deterministic APDUs, and per-receiver in-order checkers.

#![allow(
    dead_code,
    reason = "each scenario test binary uses a different subset"
)]

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use pgm::{
    sim::{LinkConfig, NodeId, SeedGuard, Sim},
    source::SendError,
    time::Instant,
    wire::{Body, Options, PacketRepr},
    wire::{Gsi, SeqNo, Tsi},
    Event, Receiver, ReceiverConfig, Source, SourceConfig,
};

pub(crate) const GROUP: IpAddr = IpAddr::V4(Ipv4Addr::new(239, 192, 0, 1));
pub(crate) const SRC_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
pub(crate) const DPORT: u16 = 7500;
pub(crate) const TSI: Tsi = Tsi {
    gsi: Gsi([1, 2, 3, 4, 5, 6]),
    sport: 4242,
};

pub(crate) fn rx_addr(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        10,
        0,
        1 + (i / 250) as u8,
        1 + (i % 250) as u8,
    ))
}

/// APDU `i` of `len` bytes: its index then a pattern, so a checker can rebuild it.
pub(crate) fn apdu(i: u64, len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len)
        .map(|k| (k as u64).wrapping_mul(31).wrapping_add(i) as u8)
        .collect();
    for (k, b) in i.to_be_bytes().iter().enumerate().take(len) {
        v[k] = *b;
    }
    v
}

/// Deterministic mixed sizes in `1..=max`, skewed towards small.
pub(crate) fn size_of(i: u64, max: usize) -> usize {
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    match h % 4 {
        0 => 1 + (h >> 8) as usize % 64,
        1 => 1 + (h >> 8) as usize % 1400,
        _ => 1 + (h >> 8) as usize % max,
    }
}

/// Checks one receiver's events: every APDU once, in order, byte-exact.
#[derive(Debug, Default)]
pub(crate) struct Checker {
    pub(crate) next: u64,
    pub(crate) loss_sqns: u64,
    pub(crate) loss_events: Vec<(SeqNo, u32)>,
    pub(crate) errors: Vec<String>,
    /// Arrival times of APDUs, for latency measurements.
    pub(crate) arrivals: Vec<Instant>,
    /// Every APDU is one packet, so a loss of `count` sqns skips `count` APDUs.
    pub(crate) skip_on_loss: bool,
    /// APDUs of other sessions than [`TSI`] (forged ones, in the hostile scenarios).
    pub(crate) other_data: u64,
    /// Loss events of other sessions than [`TSI`].
    pub(crate) other_losses: u64,
}

impl Checker {
    pub(crate) fn check(&mut self, ev: Event, sizes: &dyn Fn(u64) -> usize, now: Instant) {
        match ev {
            Event::Data { tsi, .. } if tsi != TSI => self.other_data += 1,
            Event::Loss { tsi, .. } if tsi != TSI => self.other_losses += 1,
            Event::Data { apdu: data, .. } => {
                let want = apdu(self.next, sizes(self.next));
                if data[..] != want[..] && self.errors.len() < 5 {
                    self.errors.push(format!(
                        "APDU {} differs (len {} vs {})",
                        self.next,
                        data.len(),
                        want.len()
                    ));
                }
                self.next += 1;
                self.arrivals.push(now);
            }
            Event::Loss { first, count, .. } => {
                self.loss_sqns += u64::from(count);
                self.loss_events.push((first, count));
                if self.skip_on_loss {
                    self.next += u64::from(count);
                    self.arrivals
                        .extend((0..count).map(|_| Instant::from_micros(u64::MAX)));
                }
            }
            _ => {}
        }
    }
}

pub(crate) struct Lan {
    pub(crate) guard: SeedGuard,
    pub(crate) sim: Sim,
    pub(crate) src: NodeId,
    pub(crate) rx: Vec<NodeId>,
    pub(crate) checkers: Vec<Checker>,
    /// How often receivers' events are drained (their arrival time resolution).
    pub(crate) drain_every: Duration,
}

impl Lan {
    pub(crate) fn new(
        default_seed: u64,
        receivers: usize,
        src_cfg: impl FnOnce(&mut SourceConfig),
        rx_cfg: impl Fn(&mut ReceiverConfig),
    ) -> Lan {
        let guard = SeedGuard::from_env(default_seed);
        let mut sim = Sim::new(guard.seed());
        let mut cfg = SourceConfig::new(TSI, DPORT, GROUP, SRC_ADDR);
        cfg.rng_seed = guard.seed();
        src_cfg(&mut cfg);
        let src = sim.add_node(SRC_ADDR, Source::new(cfg));
        let rx = (0..receivers)
            .map(|i| {
                let mut c = ReceiverConfig::new(DPORT);
                c.rng_seed = guard.seed().wrapping_add(i as u64 + 1);
                // What a PGMCC receiver names itself by (unused with congestion control off).
                c.nla = Some(rx_addr(i));
                rx_cfg(&mut c);
                let id = sim.add_node(rx_addr(i), Receiver::new(c));
                sim.join(id, GROUP);
                id
            })
            .collect();
        Lan {
            guard,
            sim,
            src,
            rx,
            checkers: (0..receivers).map(|_| Checker::default()).collect(),
            drain_every: Duration::from_millis(1),
        }
    }

    /// Sets every receiver's links.
    pub(crate) fn receiver_links(&mut self, egress: &LinkConfig, ingress: &LinkConfig) {
        for &r in &self.rx {
            self.sim.set_links(r, egress.clone(), ingress.clone());
        }
    }

    pub(crate) fn drain(&mut self, sizes: &dyn Fn(u64) -> usize) {
        let now = self.sim.now();
        for (k, &r) in self.rx.iter().enumerate() {
            let rx = self.sim.node_mut::<Receiver>(r);
            while let Some(ev) = rx.poll_event() {
                self.checkers[k].check(ev, sizes, now);
            }
        }
    }

    /// Sends APDUs `0..count`, pacing by the source's backpressure, draining receivers as it
    /// goes; `sent_at` records each APDU's send time.
    pub(crate) fn send_all(
        &mut self,
        count: u64,
        sizes: &dyn Fn(u64) -> usize,
        sent_at: &mut Vec<Instant>,
    ) {
        let src = self.src;
        let mut i = 0;
        while i < count {
            let data = apdu(i, sizes(i));
            let r = self
                .sim
                .with_node_mut(src, |s: &mut Source, now| s.send(now, &data));
            match r {
                Ok(()) => {
                    sent_at.push(self.sim.now());
                    i += 1;
                }
                Err(SendError::WouldBlock) => {
                    let limit = self.sim.node::<Source>(src).config().send_buffer / 2;
                    while self.sim.node::<Source>(src).queued_bytes() > limit {
                        self.sim.run_for(self.drain_every).expect("sim");
                        self.drain(sizes);
                    }
                }
                Err(e) => panic!("send {i}: {e}"),
            }
        }
    }

    /// Lets the source's first SPMs reach everyone (with jitter, data sent at once could
    /// overtake them, and a receiver would join at the first data it sees), then sends
    /// APDUs `0..count` of `size` bytes, one every 100 µs (10 000/s), draining the receivers
    /// every 8.
    #[allow(dead_code, reason = "not every scenario file paces its sends")]
    pub(crate) fn send_paced(&mut self, count: u64, size: usize) {
        let sizes = |_| size;
        self.sim.run_for(Duration::from_millis(5)).expect("sim");
        for i in 0..count {
            let data = apdu(i, size);
            self.sim
                .with_node_mut(self.src, |s: &mut Source, now| s.send(now, &data))
                .expect("paced below the rate limit");
            self.sim.run_for(Duration::from_micros(100)).expect("sim");
            if i % 8 == 0 {
                self.drain(&sizes);
            }
        }
    }

    /// Runs until every checker reached `count` APDUs or `max` passes.
    pub(crate) fn finish(&mut self, count: u64, sizes: &dyn Fn(u64) -> usize, max: Duration) {
        let deadline = self.sim.now() + max;
        while self.sim.now() < deadline && self.checkers.iter().any(|c| c.next < count) {
            let _ = self.sim.run_for(self.drain_every);
            self.drain(sizes);
        }
    }
}

/// A downstream packet (ODATA, RDATA, SPM, NCF…) of session `tsi` to [`DPORT`].
pub(crate) fn downstream(tsi: Tsi, body: Body, options: &Options, payload: &[u8]) -> Vec<u8> {
    PacketRepr {
        sport: tsi.sport,
        dport: DPORT,
        gsi: tsi.gsi,
        parity: false,
        var_pktlen: false,
        body,
        options: *options,
        payload,
    }
    .to_vec()
}

/// A link filter that drops `percent` % of ODATA (xorshift from `seed`, so a run is
/// reproducible) and lets everything else through.
pub(crate) fn drop_odata(percent: u64, seed: u64) -> impl FnMut(&[u8]) -> bool + 'static {
    let mut state = seed | 1;
    move |p: &[u8]| {
        if !PacketRepr::parse(p).is_ok_and(|r| matches!(r.body, Body::Odata(_))) {
            return false;
        }
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % 100 < percent
    }
}
