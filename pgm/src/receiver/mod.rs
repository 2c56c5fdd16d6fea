//! The PGM receiver (RFC 3208 §6): per-TSI peers, receive windows, the NAK state machine with
//! suppression, reassembly, loss and expiry.
//!
//! Sans-IO: [`Receiver::handle_packet`] takes every packet seen on the port (data, SPMs, NCFs,
//! other receivers' NAKs and SPMRs), [`Receiver::handle_timeout`] runs NAK and SPMR timers,
//! [`Receiver::poll_transmit`] hands out NAKs and SPMRs, [`Receiver::poll_event`] the data.
//!
//! # Hostile networks
//!
//! Everything the network can make a receiver hold or send is bounded, per session and in
//! total ([`ReceiverLimits`](crate::ReceiverLimits), docs/reliability.md): sessions (evicting those on probation
//! first, then the least recently heard), memory over all windows, NAKs per packet heard from
//! a session and per second overall, and the packets waiting to be sent. A packet is
//! validated against the session before it changes anything; how much of what it claims is
//! believed is in docs/reliability.md. Repairs do not count out: a missing sqn is asked for again
//! with back-off for as long as the source keeps it (see [`NakTiming`]).

mod fec;
mod peer;
mod window;

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    net::IpAddr,
    time::Duration,
};

use bytes::Bytes;
use rand::{rngs::SmallRng, Rng, SeedableRng};

pub use self::peer::{PeerState, PeerStats};
use self::{
    peer::{Leap, Peer, NEVER},
    window::{Delivered, Insert, Phase, Window},
};
use crate::{
    cc::receiver::Reporter,
    config::{JoinPolicy, NakTiming, ReceiverConfig},
    event::Event,
    rate::TokenBucket,
    time::Instant,
    wire::{
        options::{PgmccData, MAX_NAK_LIST},
        Body, Data, Error, Fragment, Nak, NakList, Options, PacketRepr, SeqNo, Spm, Tsi,
    },
    Transmit,
};

/// An SPM this far behind the last one is a reordered duplicate; further behind, the sqn
/// space restarted (or a forged SPM had leapt it ahead) and it is taken as new.
const SPM_REORDER: i32 = 256;

/// Most sqns one SPM reveals beyond the data seen: an SPM alone is cheap to forge, and real
/// tail losses before a pause are short.
const MAX_SPM_REVEAL: u32 = 256;

/// How soon NAKs held back by a full out-queue are tried again.
const OUT_QUEUE_RETRY: Duration = Duration::from_millis(1);

/// Parity NAKs a missing sqn takes part in before it is NAKed selectively (RFC 3208 §11.5:
/// parity that does not come, or does not decode, must not hold the repair up for long).
const PARITY_NAK_ROUNDS: u32 = 2;

/// Counters of a receiver (all peers together).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceiverStats {
    /// Packets handed to `handle_packet`.
    pub packets: u64,
    /// Bytes handed to `handle_packet`.
    pub bytes: u64,
    /// ODATA packets accepted.
    pub odata_received: u64,
    /// RDATA packets accepted.
    pub rdata_received: u64,
    /// Gaps filled by RDATA or late ODATA.
    pub repaired: u64,
    /// Data packets already held, delivered or given up on (within a window of the trail;
    /// with an A/B session, the copy that arrived second), and reordered SPMs.
    pub duplicates: u64,
    /// Data packets from before the session was joined, or more than a window behind it.
    pub too_old: u64,
    /// Parity packets (FEC) dropped: FEC is off, or the session advertised no usable
    /// OPT_PARITY_PRM; with FEC off, parity NAKs and NCFs too.
    pub parity_dropped: u64,
    /// Parity NAK packets sent (FEC on demand: one entry per transmission group).
    pub parity_naks_sent: u64,
    /// Missing sqns asked for through parity NAKs (the sum of their counts).
    pub parity_nak_sqns_sent: u64,
    /// Parity packets kept for decoding (`ReceiverConfig::fec`).
    pub parity_received: u64,
    /// Data packets rebuilt from parity (each counted once, whether or not it was still needed).
    pub fec_recovered: u64,
    /// SPMs accepted.
    pub spm_received: u64,
    /// SPMs whose window edges lay more than a window away, not acted on.
    pub spm_leaps_ignored: u64,
    /// SPMs that announced more sqns beyond the data than one SPM may (only the first
    /// `MAX_SPM_REVEAL` were believed).
    pub spm_reveals_capped: u64,
    /// Data packets more than a window away from their session's window, held aside.
    pub data_leaps_ignored: u64,
    /// Windows that moved to a new position after enough data confirmed it.
    pub leaps_followed: u64,
    /// NCFs received for known peers.
    pub ncf_received: u64,
    /// NAK packets sent.
    pub naks_sent: u64,
    /// Sqns requested in NAKs sent.
    pub nak_sqns_sent: u64,
    /// Sqns whose NAK was suppressed in back-off by an NCF or another receiver's NAK.
    pub naks_suppressed: u64,
    /// Times a session's NAKs waited: for its NAK credit, the global NAK rate or out-queue room.
    pub naks_deferred: u64,
    /// Other receivers' NAKs seen (multicast).
    pub peer_naks_seen: u64,
    /// SPMRs sent.
    pub spmrs_sent: u64,
    /// PGMCC ACKs sent: for data that named us ACKer, and election reports.
    pub pgmcc_acks_sent: u64,
    /// PGMCC ACKs not sent: their session's ACK budget or the out-queue was full.
    pub pgmcc_acks_over_budget: u64,
    /// Packets not queued because the out-queue was full.
    pub out_queue_drops: u64,
    /// APDUs delivered.
    pub apdus_delivered: u64,
    /// Sqns declared lost (of confirmed sessions: what `Loss` events report).
    pub lost_sqns: u64,
    /// Loss events reported.
    pub loss_events: u64,
    /// Of the lost sqns, those given up after `NakTiming::max_recovery`.
    pub recovery_expired: u64,
    /// Sqns given up to keep all windows within `ReceiverLimits::max_total_bytes`.
    pub memory_trimmed: u64,
    /// Sqns lost by sessions still on probation (not reported as loss).
    pub unconfirmed_lost_sqns: u64,
    /// Packets that failed the checksum.
    pub checksum_errors: u64,
    /// Packets that failed to parse.
    pub parse_errors: u64,
    /// Packets for another port, of an ignored type, or inconsistent with the session.
    pub ignored: u64,
    /// Sessions forgotten to make room for a new one, or to keep within the memory budget.
    pub peers_evicted: u64,
    /// Sessions first seen (on probation until confirmed).
    pub peers_created: u64,
    /// Sessions announced (`PeerJoined`: their first APDU was delivered).
    pub peers_joined: u64,
    /// Announced sessions that expired (`PeerExpired`).
    pub peers_expired: u64,
    /// Sessions tracked now.
    pub peers: u64,
    /// Of those, sessions still on probation.
    pub peers_on_probation: u64,
    /// Sqns currently missing (NAK state machines running) over all peers.
    pub missing_now: u64,
    /// Payload bytes buffered now over all peers.
    pub window_bytes: u64,
    /// Memory held now over all windows (payload plus per-sqn bookkeeping), against
    /// `ReceiverLimits::max_total_bytes`.
    pub footprint: u64,
}

/// Why a session's NAKs had to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NakLimit {
    /// Its NAK credit is spent.
    Credit,
    /// The NAK rate over all sessions.
    Global,
    /// The out-queue is full.
    Queue,
}

/// A PGM receiver. See the module docs.
#[derive(Debug)]
pub struct Receiver {
    cfg: ReceiverConfig,
    peers: BTreeMap<Tsi, Peer>,
    /// Timer index: exactly one `(peer.deadline, tsi)` per peer, so the first entry is the next
    /// timer of all, and `handle_timeout` visits only the peers that are due (a subscriber may
    /// hear hundreds of sources). Kept in step by `refresh_deadline` after every per-peer
    /// operation, and by `drop_peer`.
    deadlines: BTreeSet<(Instant, Tsi)>,
    /// Sessions in the order they were first seen: the eviction order of those still on
    /// probation. Entries of sessions since confirmed or gone are skipped lazily.
    probation: VecDeque<Tsi>,
    /// Sum of the peers' footprints (`ReceiverLimits::max_total_bytes`).
    footprint: usize,
    /// NAK packets per second over all sessions (made at the first NAK).
    nak_bucket: Option<TokenBucket>,
    rng: SmallRng,
    events: VecDeque<Event>,
    /// Packets to send: destination, bytes, TTL override. At most `limits.out_queue`.
    out: VecDeque<(IpAddr, Vec<u8>, Option<u8>)>,
    stats: ReceiverStats,
    delivered: Vec<Delivered>,
    /// One Reed-Solomon code per group size in use (at most 7: 2..=128).
    codes: Vec<crate::fec::ReedSolomon>,
}

impl Receiver {
    /// A receiver with no peers yet.
    pub fn new(cfg: ReceiverConfig) -> Self {
        Receiver {
            rng: SmallRng::seed_from_u64(cfg.rng_seed),
            cfg,
            peers: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            probation: VecDeque::new(),
            footprint: 0,
            nak_bucket: None,
            events: VecDeque::new(),
            out: VecDeque::new(),
            stats: ReceiverStats::default(),
            delivered: Vec::new(),
            codes: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ReceiverConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> ReceiverStats {
        let mut s = self.stats.clone();
        s.peers = self.peers.len() as u64;
        s.footprint = self.footprint as u64;
        for p in self.peers.values() {
            s.peers_on_probation += u64::from(!p.confirmed);
            if let Some(w) = &p.window {
                s.missing_now += w.missing_count() as u64;
                s.window_bytes += w.bytes as u64;
            }
        }
        s
    }

    /// The sessions currently tracked.
    pub fn peers(&self) -> impl Iterator<Item = Tsi> + '_ {
        self.peers.keys().copied()
    }

    /// Counters of one session, if it is tracked.
    pub fn peer_stats(&self, tsi: Tsi) -> Option<PeerStats> {
        self.peers.get(&tsi).map(Peer::stats)
    }

    /// Counters of every session tracked, in TSI order: at most `ReceiverLimits::max_peers`
    /// entries, so a snapshot is bounded whatever the network sends.
    pub fn all_peer_stats(&self) -> impl Iterator<Item = (Tsi, PeerStats)> + '_ {
        self.peers.iter().map(|(&tsi, p)| (tsi, p.stats()))
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Writes the next NAK or SPMR into `buf` (cleared first).
    pub fn poll_transmit(&mut self, _now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        buf.clear();
        let (dst, pkt, ttl) = self.out.pop_front()?;
        buf.extend_from_slice(&pkt);
        Some(Transmit {
            dst,
            len: buf.len(),
            ttl,
        })
    }

    /// When to call [`Receiver::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.out.is_empty() {
            return Some(Instant::ZERO);
        }
        self.deadlines.first().map(|&(t, _)| t)
    }

    /// Re-indexes `tsi`'s next timer. Called once at the end of each operation on a peer (a
    /// packet, or its timeout) rather than at each change, so that no path through the
    /// handlers can skip it: a missed update is a NAK never sent.
    fn refresh_deadline(&mut self, tsi: Tsi) {
        let Some(peer) = self.peers.get_mut(&tsi) else {
            return;
        };
        let next = peer.earliest(self.cfg.nak.max_recovery);
        if next != peer.deadline {
            self.deadlines.remove(&(peer.deadline, tsi));
            self.deadlines.insert((next, tsi));
            peer.deadline = next;
        }
    }

    /// Checks the timer index against the peers' timers (one entry per peer, each peer's
    /// cached deadline equal to its earliest timer, the first entry the brute-force minimum)
    /// and the memory accounting. Run after every call in debug builds; tests and fuzz
    /// targets call it too.
    ///
    /// # Panics
    ///
    /// If the index or the accounting is out of step (a bug: a NAK or SPMR could go unsent,
    /// or the memory budget be wrong).
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        let max_recovery = self.cfg.nak.max_recovery;
        assert_eq!(
            self.deadlines.len(),
            self.peers.len(),
            "one index entry per peer"
        );
        for (tsi, p) in &self.peers {
            assert_eq!(
                p.deadline,
                p.earliest(max_recovery),
                "cached deadline of {tsi}"
            );
            assert!(
                self.deadlines.contains(&(p.deadline, *tsi)),
                "deadline of {tsi} not indexed"
            );
        }
        let brute = self.peers.values().map(|p| p.earliest(max_recovery)).min();
        assert_eq!(self.deadlines.first().map(|&(t, _)| t), brute);
        for (tsi, p) in &self.peers {
            assert_eq!(p.accounted, p.footprint(), "memory accounted for {tsi}");
        }
        let total: usize = self.peers.values().map(|p| p.accounted).sum();
        assert_eq!(self.footprint, total, "memory accounting");
        assert!(self.peers.len() <= self.cfg.limits.max_peers.max(1));
        assert!(self.out.len() <= self.cfg.limits.out_queue.max(2));
    }

    /// Feeds one received packet. `src` is its IP source, `dst` its IP destination.
    pub fn handle_packet(&mut self, now: Instant, src: IpAddr, dst: IpAddr, packet: &[u8]) {
        self.stats.packets += 1;
        self.stats.bytes += packet.len() as u64;
        let repr = match PacketRepr::parse_verified(packet) {
            Ok(r) => r,
            Err(Error::BadChecksum) => {
                self.stats.checksum_errors += 1;
                return;
            }
            Err(_) => {
                self.stats.parse_errors += 1;
                return;
            }
        };
        let upstream = repr.packet_type().is_upstream();
        // Downstream packets are for our dport; upstream ones (other receivers' NAKs and
        // SPMRs, heard for suppression) come from it.
        let port = if upstream { repr.sport } else { repr.dport };
        if port != self.cfg.dport {
            self.stats.ignored += 1;
            return;
        }
        let tsi = repr.tsi();
        match repr.body {
            // Parity (RFC 3208 §11) is never data: decoded with FEC on, else counted and dropped.
            // Parity of a second parity group (OPT_PARITY_GRP ≠ 0, index ≥ k) comes from no
            // source we know (ours stays below k, OpenPGM never sends the option): dropped
            // rather than mistaken for the first group's index.
            Body::Odata(d) | Body::Rdata(d)
                if repr.parity
                    && self.cfg.fec
                    && repr.options.parity_grp.is_none_or(|g| g == 0) =>
            {
                self.on_parity(now, tsi, d, &repr);
            }
            Body::Ncf(ncf) if repr.parity && self.cfg.fec => {
                self.on_parity_ncf(now, tsi, &ncf, &repr.options, true);
            }
            Body::Nak(nak) if repr.parity && self.cfg.fec && dst.is_multicast() => {
                self.on_parity_ncf(now, tsi, &nak, &repr.options, false);
            }
            Body::Odata(_) | Body::Rdata(_) | Body::Ncf(_) | Body::Nak(_) if repr.parity => {
                self.stats.parity_dropped += 1;
            }
            Body::Odata(d) | Body::Rdata(d) => {
                let rdata = matches!(repr.body, Body::Rdata(_));
                let too_big = repr
                    .options
                    .fragment
                    .is_some_and(|f| f.apdu_len as usize > self.cfg.max_apdu);
                if too_big {
                    self.stats.ignored += 1;
                } else if self.peer_for(now, tsi, src, dst) {
                    if rdata {
                        self.stats.rdata_received += 1;
                    } else {
                        self.stats.odata_received += 1;
                    }
                    if let Some(p) = self.peers.get_mut(&tsi) {
                        let ps = &mut p.stats;
                        if rdata {
                            ps.rdata_received += 1;
                        } else {
                            ps.odata_received += 1;
                        }
                        ps.data_bytes += repr.payload.len() as u64;
                    }
                    if let Some(min) = repr.options.join {
                        self.on_join(tsi, min);
                    }
                    self.on_data(now, tsi, d, repr.options.fragment, repr.payload);
                    if self.cfg.fec {
                        self.fec_data(now, tsi, d, repr.options.fragment, repr.payload);
                    }
                    if let Some(pd) = repr.options.pgmcc_data {
                        self.on_pgmcc_data(now, tsi, d.sqn, !rdata, pd);
                    }
                }
            }
            // A FIN SPM never starts a session (it may outlive the one it ended).
            Body::Spm(_) if repr.options.fin && !self.peers.contains_key(&tsi) => {
                self.stats.ignored += 1;
            }
            Body::Spm(spm) => {
                if self.peer_for(now, tsi, src, dst) {
                    self.on_spm(now, tsi, dst, &spm, &repr.options);
                }
            }
            Body::Ncf(ncf) => self.on_ncf(now, tsi, &ncf, &repr.options),
            Body::Nak(nak) if dst.is_multicast() => self.on_peer_nak(now, tsi, &nak, &repr.options),
            Body::Spmr if dst.is_multicast() => {
                // RFC 3208 §13.3.2: another receiver asked; ours would be redundant.
                if let Some(p) = self.peers.get_mut(&tsi) {
                    p.spmr_due = None;
                }
            }
            _ => self.stats.ignored += 1,
        }
        // Every arm above touches at most this one peer.
        self.drain(tsi);
        self.account(tsi);
        self.enforce_memory(tsi);
        self.refresh_deadline(tsi);
        #[cfg(debug_assertions)]
        self.check_invariants();
    }

    /// Finds or creates the peer for a downstream packet and records that it was heard.
    /// A new peer starts on probation; when `max_peers` are tracked the least useful one
    /// makes room. False only when no peer can be tracked at all.
    fn peer_for(&mut self, now: Instant, tsi: Tsi, src: IpAddr, dst: IpAddr) -> bool {
        if !self.peers.contains_key(&tsi) {
            while self.peers.len() >= self.cfg.limits.max_peers.max(1) {
                let Some(victim) = self.victim(tsi) else {
                    self.stats.ignored += 1;
                    return false;
                };
                self.evict(victim);
            }
            let mut peer = Peer::new(now, src, dst, now + self.cfg.peer_expiry);
            peer.spmr_due = Some(now + self.cfg.spmr_expiry);
            peer.deadline = peer.earliest(self.cfg.nak.max_recovery);
            self.deadlines.insert((peer.deadline, tsi));
            self.peers.insert(tsi, peer);
            self.probation.push_back(tsi);
            if self.probation.len() > 2 * self.cfg.limits.max_peers + 16 {
                let peers = &self.peers;
                self.probation
                    .retain(|t| peers.get(t).is_some_and(|p| !p.confirmed));
            }
            self.stats.peers_created += 1;
        }
        let limits = self.cfg.limits;
        let expiry = now + self.cfg.peer_expiry;
        let Some(peer) = self.peers.get_mut(&tsi) else {
            return false;
        };
        peer.hear(now, &limits);
        if dst.is_multicast() {
            peer.ip_src = src;
        }
        if peer.fin.is_none() {
            peer.expiry = expiry;
        }
        true
    }

    /// The least useful session other than `keep`: the oldest still on probation, else the
    /// one heard from least recently.
    fn victim(&mut self, keep: Tsi) -> Option<Tsi> {
        self.probation_victim(keep).or_else(|| {
            self.peers
                .iter()
                .filter(|(t, _)| **t != keep)
                .min_by_key(|(_, p)| p.heard)
                .map(|(t, _)| *t)
        })
    }

    /// The oldest session still on probation other than `keep`, taken out of the queue.
    fn probation_victim(&mut self, keep: Tsi) -> Option<Tsi> {
        let peers = &self.peers;
        let live = |t: &Tsi| peers.get(t).is_some_and(|p| !p.confirmed);
        // Entries of sessions since confirmed or gone are dropped on the way.
        while self.probation.front().is_some_and(|t| !live(t)) {
            self.probation.pop_front();
        }
        let at = self.probation.iter().position(|t| *t != keep && live(t))?;
        self.probation.remove(at)
    }

    /// Forgets a session to make room (its losses are reported if it was confirmed).
    fn evict(&mut self, tsi: Tsi) {
        if self.drop_peer(tsi) {
            self.stats.peers_evicted += 1;
        }
    }

    /// Forgets a session and its timers: whatever is still missing is given up, and an
    /// announced session is reported expired. False if it was not tracked.
    fn drop_peer(&mut self, tsi: Tsi) -> bool {
        let Some(mut peer) = self.peers.remove(&tsi) else {
            return false;
        };
        self.deadlines.remove(&(peer.deadline, tsi));
        self.footprint -= peer.accounted;
        if let Some(w) = peer.window.as_mut() {
            w.abandon(&mut self.delivered);
        }
        drain_into(
            &mut self.delivered,
            &mut self.events,
            &mut self.stats,
            tsi,
            &mut peer,
        );
        if peer.announced {
            self.stats.peers_expired += 1;
            self.events.push_back(Event::PeerExpired { tsi });
        }
        true
    }

    /// Brings `tsi`'s share of the memory total up to date after its window changed.
    fn account(&mut self, tsi: Tsi) {
        if let Some(p) = self.peers.get_mut(&tsi) {
            let now = p.footprint();
            self.footprint = self.footprint - p.accounted + now;
            p.accounted = now;
        }
    }

    /// Keeps all windows within `max_total_bytes`: sessions on probation go first (oldest
    /// first), then the sessions heard from least recently give up their oldest data.
    fn enforce_memory(&mut self, current: Tsi) {
        let budget = self.cfg.limits.max_total_bytes;
        while self.footprint > budget {
            if let Some(t) = self.probation_victim(current) {
                self.evict(t);
                continue;
            }
            let victim = self
                .peers
                .iter()
                .filter(|(_, p)| p.footprint() > 0)
                .min_by_key(|(t, p)| (**t == current, p.heard))
                .map(|(t, _)| *t);
            let Some(t) = victim else { break };
            self.trim(t, budget);
        }
    }

    /// Gives up `tsi`'s oldest data until the total is within `budget` or its window is empty.
    fn trim(&mut self, tsi: Tsi, budget: usize) {
        if let Some(p) = self.peers.get_mut(&tsi) {
            // Data held aside for a leap and FEC groups go first.
            p.leap = None;
            if let Some(g) = p.fec.as_mut() {
                g.clear();
            }
            let others = self.footprint - p.accounted;
            if let Some(w) = p.window.as_mut() {
                self.stats.memory_trimmed +=
                    w.shed(&mut self.delivered, |w| others + w.footprint() > budget);
            }
        }
        self.drain(tsi);
        self.account(tsi);
        self.refresh_deadline(tsi);
    }

    /// The Reed-Solomon code for groups of `k` (built once per k: ~ms for k = 128).
    fn code(&mut self, k: usize) -> Option<usize> {
        if let Some(i) = self.codes.iter().position(|c| c.k() == k) {
            return Some(i);
        }
        self.codes.push(crate::fec::ReedSolomon::new(k).ok()?);
        Some(self.codes.len() - 1)
    }

    /// A data packet of a session with FEC: remembered in its group, which may now decode.
    fn fec_data(
        &mut self,
        now: Instant,
        tsi: Tsi,
        d: Data,
        fragment: Option<Fragment>,
        payload: &[u8],
    ) {
        let Some(k) = self
            .peers
            .get(&tsi)
            .and_then(|p| p.fec.as_ref())
            .map(fec::Groups::k)
        else {
            return;
        };
        let Some(c) = self.code(k) else { return };
        let Some(groups) = self.peers.get_mut(&tsi).and_then(|p| p.fec.as_mut()) else {
            return;
        };
        let rebuilt = groups.data(&self.codes[c], d.sqn, payload, fragment);
        self.fec_deliver(now, tsi, d.trail, rebuilt);
    }

    /// RFC 3208 §11: a parity packet, for a session whose SPM gave its group size.
    fn on_parity(&mut self, now: Instant, tsi: Tsi, d: Data, repr: &PacketRepr<'_>) {
        let Some(k) = self
            .peers
            .get(&tsi)
            .and_then(|p| p.fec.as_ref())
            .map(fec::Groups::k)
        else {
            self.stats.parity_dropped += 1;
            return;
        };
        let Some(c) = self.code(k) else { return };
        let Some(peer) = self.peers.get_mut(&tsi) else {
            return;
        };
        let limits = self.cfg.limits;
        peer.hear(now, &limits);
        // Only parity near the window: older groups are done, far ones not believed.
        let span = peer.span(self.cfg.rxw_sqns.max(1), &limits);
        let Some(w) = peer.window.as_ref() else {
            self.stats.parity_dropped += 1;
            return;
        };
        if w.is_far(d.sqn, span) || d.sqn.diff(w.trail) < -i32::from(k as u8) {
            self.stats.parity_dropped += 1;
            return;
        }
        let Some(groups) = peer.fec.as_mut() else {
            return;
        };
        self.stats.parity_received += 1;
        let rebuilt = groups.parity(
            &self.codes[c],
            d.sqn,
            repr.payload,
            repr.var_pktlen,
            repr.options.fragment_encoded,
            repr.options.curr_tgsize,
        );
        self.fec_deliver(now, tsi, d.trail, rebuilt);
    }

    /// Rebuilt data goes the way received data goes.
    fn fec_deliver(&mut self, now: Instant, tsi: Tsi, trail: SeqNo, rebuilt: Vec<fec::Rebuilt>) {
        for (sqn, tsdu, fragment) in rebuilt {
            if fragment.is_some_and(|f| f.apdu_len as usize > self.cfg.max_apdu) {
                self.stats.ignored += 1;
                continue;
            }
            self.stats.fec_recovered += 1;
            self.on_data(now, tsi, Data { sqn, trail }, fragment, &tsdu);
        }
    }

    /// RFC 3208 §6.1/§6.3: store data, detect gaps from its sqn, honour the source's trail.
    fn on_data(
        &mut self,
        now: Instant,
        tsi: Tsi,
        d: Data,
        fragment: Option<Fragment>,
        payload: &[u8],
    ) {
        let limits = self.cfg.limits;
        let rxw_sqns = self.cfg.rxw_sqns.max(1);
        let Some(peer) = self.peers.get_mut(&tsi) else {
            return;
        };
        // RFC 3208 §9.7: a real source sends nothing after its FIN; data beyond it proves the
        // FIN false.
        if peer.fin.is_some_and(|lead| d.sqn.diff(lead) > 0) {
            peer.fin = None;
            peer.expiry = now + self.cfg.peer_expiry;
        }
        let span = peer.span(rxw_sqns, &limits);
        let reach = peer.reach();
        let w = peer.window.get_or_insert_with(|| Window::new(d.sqn));
        // More than a window away from the window, or a gap larger than the session's NAKs
        // could ask for: believed only once more data confirms it.
        let gap = u32::try_from(d.sqn.diff(w.lead()).saturating_sub(1)).unwrap_or(0);
        if w.is_far(d.sqn, span) || gap > reach {
            let leap = peer.leap.get_or_insert_with(Leap::default);
            if leap.observe(d.sqn, payload, fragment, span) {
                self.follow_leap(now, tsi);
            } else {
                self.stats.data_leaps_ignored += 1;
            }
            return;
        }
        peer.leap = None;
        if d.sqn.diff(w.trail) < 0 {
            // Delivered or given up on already: a copy (the second path's of an A/B session,
            // docs/dual-path.md, or RDATA another receiver asked for).
            if w.passed(d.sqn, span) {
                self.stats.duplicates += 1;
                peer.stats.duplicates += 1;
            } else {
                self.stats.too_old += 1;
            }
            return;
        }
        // Keep the window within its span: the oldest data is given up.
        if d.sqn.distance_from(w.trail) >= span {
            w.jump(d.sqn.sub(span - 1), &mut self.delivered);
        }
        let payload = Bytes::copy_from_slice(payload);
        if d.sqn.diff(w.lead()) > 0 {
            // A gap: every sqn in it backs off until the same random deadline, so one NAK
            // (with OPT_NAK_LIST) asks for the whole burst. (Drawn only for gaps: the draw
            // costs more than the rest of in-order delivery.)
            if d.sqn.diff(w.lead()) > 1 {
                let deadline = backoff(&mut self.rng, &self.cfg.nak, now + self.cfg.path_skew);
                w.extend_missing(d.sqn.sub(1), now, deadline);
            }
            w.push(payload, fragment);
        } else {
            match w.insert(d.sqn, payload, fragment) {
                Insert::New { repaired } => {
                    self.stats.repaired += u64::from(repaired);
                    peer.stats.repaired += u64::from(repaired);
                }
                Insert::Duplicate => {
                    self.stats.duplicates += 1;
                    peer.stats.duplicates += 1;
                }
                Insert::TooOld => self.stats.too_old += 1,
            }
        }
        w.saw_data(d.sqn);
        // The first data follows the lead an SPM announced before it: they agree (a session
        // whose first sqn was lost delivers nothing in order until the repair, and while data
        // flows the source sends no SPM to agree with).
        if let Some(lead) = peer.spm_lead_before_data.take() {
            let ahead = d.sqn.diff(lead);
            if ahead >= 1 && u32::try_from(ahead).is_ok_and(|a| a <= limits.probation_sqns) {
                peer.spm_agreements += 1;
            }
        }
        if let Some(trail) = peer.agreed_trail(d.trail) {
            if let Some(w) = peer.window.as_mut() {
                w.source_trail(trail);
            }
        }
        self.settle(now, tsi);
    }

    /// After a window changed: delivers what it can, keeps it within its byte bound, and
    /// confirms a session on probation that has two sqns in order (or one and an SPM that
    /// agrees). With [`JoinPolicy::AdvertisedTrail`] a session delivers nothing while on
    /// probation and while its window still reaches back to the advertised history (see
    /// [`Receiver::reach_back`]); once it delivered up to the data it joined at, `CaughtUp`.
    fn settle(&mut self, now: Instant, tsi: Tsi) {
        let max_bytes = self.cfg.rxw_max_bytes;
        let catch_up = self.cfg.join == JoinPolicy::AdvertisedTrail;
        if catch_up && self.peers.get(&tsi).is_some_and(|p| p.reaching_back) {
            self.reach_back(now, tsi);
        }
        self.deliver(tsi);
        let Some(peer) = self.peers.get_mut(&tsi) else {
            return;
        };
        let Some(w) = peer.window.as_mut() else {
            return;
        };
        w.shed(&mut self.delivered, |w| w.bytes > max_bytes);
        let in_order = w.delivered_sqns + w.leading_data();
        // An SPM agreed with data seen (see `on_spm`). Nothing need be deliverable yet: a
        // session whose first sqn was lost delivers nothing until it is repaired, and kept on
        // probation meanwhile it gave that sqn up once the probation span filled (16 ms at
        // 62 500 packets/s) if the first repair was slower.
        let agreed = peer.spm_agreements >= 1;
        if !peer.confirmed && (in_order >= 2 || agreed) {
            self.confirm(tsi);
            if catch_up {
                self.settle(now, tsi);
            }
        }
    }

    /// Delivers what `tsi`'s window can, unless it is held (see [`Receiver::settle`]); reports
    /// `CaughtUp` once a catching-up session delivered up to the sqn it joined at.
    fn deliver(&mut self, tsi: Tsi) {
        let catch_up = self.cfg.join == JoinPolicy::AdvertisedTrail;
        let Some(peer) = self.peers.get_mut(&tsi) else {
            return;
        };
        if catch_up && (!peer.confirmed || peer.reaching_back) {
            return;
        }
        let Some(w) = peer.window.as_mut() else {
            return;
        };
        w.deliver(&mut self.delivered);
        if let Some(lead) = peer.catch_up_lead {
            if w.trail.diff(lead) > 0 {
                peer.catch_up_lead = None;
                self.delivered.push(Delivered::CaughtUp);
            }
        }
    }

    /// Takes a session off probation. With [`JoinPolicy::AdvertisedTrail`] (and nothing
    /// delivered yet) it starts catching up: its window reaches back to the history the
    /// source advertises.
    fn confirm(&mut self, tsi: Tsi) {
        let Some(peer) = self.peers.get_mut(&tsi) else {
            return;
        };
        peer.confirmed = true;
        if self.cfg.join != JoinPolicy::AdvertisedTrail {
            return;
        }
        if let Some(w) = peer.window.as_ref().filter(|w| w.delivered_sqns == 0) {
            peer.reaching_back = true;
            peer.catch_up_lead = Some(w.data_lead.unwrap_or(w.lead()));
        }
    }

    /// Grows a catching-up session's window backwards towards the oldest sqn the source
    /// offers: its advertised trail, or OPT_JOIN's minimum when that is later (RFC 3208 §9.4:
    /// RXW_TRAIL_INIT). Never wider than the receive window, and never more missing sqns at
    /// once than the session's NAK credit reaches ([`Peer::reach`]): a forged SPM with an old
    /// trail buys as much as the packets heard pay for, like a gap. The credit of the repairs
    /// heard pays for the next stretch, so the history comes at the pace the source repairs it.
    fn reach_back(&mut self, now: Instant, tsi: Tsi) {
        let rxw_sqns = self.cfg.rxw_sqns.max(1);
        let Some(peer) = self.peers.get_mut(&tsi) else {
            return;
        };
        let reach = peer.reach();
        let (Some(trail), Some(w)) = (peer.advertised_trail, peer.window.as_mut()) else {
            peer.reaching_back = false;
            return;
        };
        let offered = peer.join_min.map_or(trail, |j| j.max_serial(trail));
        let target = offered.max_serial(w.lead().sub(rxw_sqns - 1));
        if target.diff(w.trail) >= 0 || w.delivered_sqns != 0 {
            peer.reaching_back = false;
            return;
        }
        let budget = reach.saturating_sub(u32::try_from(w.missing_count()).unwrap_or(u32::MAX));
        if budget == 0 {
            return;
        }
        let to = target.max_serial(w.trail.sub(budget));
        let deadline = backoff(&mut self.rng, &self.cfg.nak, now + self.cfg.path_skew);
        w.extend_back(to, now, deadline);
        peer.reaching_back = to != target;
    }

    /// Moves a window to the position [`LEAP_CONFIRM`] packets agree on. A confirmed
    /// session that leapt ahead gives up what lies between and asks for the window's worth
    /// before the new data (the source may still hold it); otherwise the window starts
    /// afresh at the new data.
    fn follow_leap(&mut self, now: Instant, tsi: Tsi) {
        let rxw_sqns = self.cfg.rxw_sqns.max(1);
        let fits = |trail: SeqNo, sqn: SeqNo| {
            (0..i64::from(rxw_sqns)).contains(&i64::from(sqn.diff(trail)))
        };
        let Some(peer) = self.peers.get_mut(&tsi) else {
            return;
        };
        let Some(mut leap) = peer.leap.take() else {
            return;
        };
        let reach = peer.reach();
        let Some(w) = peer.window.as_mut() else {
            return;
        };
        self.stats.leaps_followed += 1;
        // Serial order: the held sqns lie within a span of each other.
        leap.held.sort_by(|a, b| a.0.diff(b.0).cmp(&0));
        let first = leap.held[0].0;
        let last = leap.held[leap.held.len() - 1].0;
        if peer.confirmed && first.diff(w.lead()) > 0 {
            // The window spans back from the new data as far as it and the session's NAK
            // credit reach.
            let trail = last
                .sub(rxw_sqns - 1)
                .max_serial(first.sub(reach))
                .max_serial(w.trail);
            w.jump(trail, &mut self.delivered);
            if first.diff(w.lead()) > 1 && fits(w.trail, first) {
                let deadline = backoff(&mut self.rng, &self.cfg.nak, now + self.cfg.path_skew);
                w.extend_missing(first.sub(1), now, deadline);
            }
        } else {
            w.abandon(&mut self.delivered);
            *w = Window::new(first);
        }
        for (sqn, payload, fragment) in leap.held {
            // Never a window wider than the receive window, whatever serial arithmetic the
            // positions above led to (a fuzzer found one that grew it to gigabytes).
            if !fits(w.trail, sqn) {
                self.stats.ignored += 1;
                continue;
            }
            if sqn.diff(w.lead()) > 0 {
                if sqn.diff(w.lead()) > 1 {
                    let deadline = backoff(&mut self.rng, &self.cfg.nak, now + self.cfg.path_skew);
                    w.extend_missing(sqn.sub(1), now, deadline);
                }
                w.push(payload, fragment);
            } else {
                w.insert(sqn, payload, fragment);
            }
            w.saw_data(sqn);
        }
        self.settle(now, tsi);
    }

    /// RFC 3208 §9.4: data bearing OPT_JOIN names the oldest sqn a late joiner may ask for.
    fn on_join(&mut self, tsi: Tsi, min: SeqNo) {
        if let Some(peer) = self.peers.get_mut(&tsi) {
            peer.join_min = Some(min);
        }
    }

    /// RFC 3208 §6.1: an SPM names the NAK target and the window edges. Validated against
    /// the session before it changes anything.
    fn on_spm(&mut self, now: Instant, tsi: Tsi, dst: IpAddr, spm: &Spm, options: &Options) {
        let limits = self.cfg.limits;
        let rxw_sqns = self.cfg.rxw_sqns.max(1);
        let Some(peer) = self.peers.get_mut(&tsi) else {
            return;
        };
        if let Some(last) = peer.last_spm_sqn {
            let d = spm.spm_sqn.diff(last);
            if d <= 0 && d > -SPM_REORDER {
                self.stats.duplicates += 1;
                return;
            }
        }
        // RFC 3208 §8.1: trail 0 with lead 0x80000000 carries no window information.
        let no_window = spm.trail == SeqNo(0) && spm.lead == SeqNo(0x8000_0000);
        let span = peer.span(rxw_sqns, &limits);
        if let (Some(w), false) = (&peer.window, no_window) {
            // Edges more than a window away are not believed: only data may move a window
            // that far (an SPM is small and easy to forge).
            if w.is_far(spm.lead, span) || w.is_far(spm.trail, span) {
                self.stats.spm_leaps_ignored += 1;
                return;
            }
        }
        self.stats.spm_received += 1;
        peer.last_spm_sqn = Some(spm.spm_sqn);
        if let Some(prm) = options.parity_prm.filter(|_| self.cfg.fec) {
            // Either flag bit (the RFC's or OpenPGM's meaning): only TGS matters for decoding.
            let k = prm.tgs as usize;
            let usable =
                (prm.proactive || prm.on_demand) && (2..=128).contains(&k) && k.is_power_of_two();
            if !usable {
                peer.fec = None;
            } else if peer
                .fec
                .as_ref()
                .is_none_or(|g| g.k() != k || g.on_demand() != prm.on_demand)
            {
                peer.fec = Some(fec::Groups::new(k, prm.on_demand));
            }
        }
        if let Some(min) = options.join {
            peer.join_min = Some(min);
        }
        peer.spm_nla(spm.path);
        if dst.is_multicast() {
            peer.group = dst;
        }
        peer.spmr_due = None;
        if options.fin && peer.fin.is_none() {
            // RFC 3208 §9.7: the session is over. Keep it long enough to repair what is still
            // missing up to the FIN's lead, then forget it.
            peer.fin = Some(spm.lead);
            peer.expiry = peer.expiry.min(now + self.cfg.fin_linger);
        }
        if no_window {
            return;
        }
        // An SPM that agrees with the data seen is half of what confirms a session; one heard
        // before any data is checked against the first data (see `on_data`).
        match peer.window.as_ref().and_then(|w| w.data_lead) {
            Some(dl) => {
                let ahead = spm.lead.diff(dl);
                let near = u32::try_from(ahead).is_ok_and(|a| a < limits.probation_sqns);
                if near && spm.trail.diff(dl) <= 1 {
                    peer.spm_agreements += 1;
                }
            }
            None if spm.trail.diff(spm.lead) <= 1 => peer.spm_lead_before_data = Some(spm.lead),
            None => {}
        }
        let trail = peer.agreed_trail(spm.trail);
        // Nothing is requested from before the SPM's lead (what the source held before is
        // asked for, with JoinPolicy::AdvertisedTrail, once the session is confirmed).
        let w = peer
            .window
            .get_or_insert_with(|| Window::new(spm.lead.next()));
        if spm.lead.diff(w.lead()) > 0 {
            // The lead reveals sqns we never saw (the last packets before a pause), as many
            // as one SPM may and the span holds.
            let seen = w.data_lead.unwrap_or(w.lead());
            let to = spm
                .lead
                .min_serial(seen.add(MAX_SPM_REVEAL))
                .min_serial(w.trail.add(span - 1));
            if to != spm.lead {
                self.stats.spm_reveals_capped += 1;
            }
            if to.diff(w.lead()) > 0 {
                let deadline = backoff(&mut self.rng, &self.cfg.nak, now + self.cfg.path_skew);
                w.extend_missing(to, now, deadline);
            }
        } else {
            // The source's lead is behind sqns only an SPM announced: they were not real.
            w.retract(spm.lead);
        }
        if let Some(t) = trail {
            w.source_trail(t);
        }
        self.settle(now, tsi);
    }

    /// RFC 3208 §6.3: an NCF moves a sqn to WAIT_DATA (suppressing our NAK in back-off).
    fn on_ncf(&mut self, now: Instant, tsi: Tsi, ncf: &Nak, options: &Options) {
        let limits = self.cfg.limits;
        let nak = self.cfg.nak;
        let Some(peer) = self.peers.get_mut(&tsi) else {
            self.stats.ignored += 1;
            return;
        };
        // docs/wire-compatibility.md: only NCFs for our group count.
        if ncf.grp_nla != peer.group {
            self.stats.ignored += 1;
            return;
        }
        self.stats.ncf_received += 1;
        peer.stats.ncf_received += 1;
        peer.hear(now, &limits);
        let Some(w) = peer.window.as_mut() else {
            return;
        };
        let list = options.nak_list.unwrap_or_default();
        for &sqn in std::iter::once(&ncf.sqn).chain(list.as_slice()) {
            if let Some(m) = w.missing_mut(sqn) {
                if m.phase == Phase::BackOff {
                    self.stats.naks_suppressed += 1;
                    peer.stats.naks_suppressed += 1;
                }
                let wait = nak.repeat_ivl(nak.rdata_ivl, m.rounds);
                w.reschedule(sqn, Phase::WaitData, now + wait);
            }
        }
    }

    /// RFC 3208 §11.5: a parity NCF (`ncf`) or another receiver's multicast parity NAK, each
    /// entry `tg | (count − 1)`, confirms or suppresses our NAKs for the missing sqns of group
    /// `tg` when it asks for at least as many parity packets as we miss there.
    fn on_parity_ncf(&mut self, now: Instant, tsi: Tsi, pkt: &Nak, options: &Options, ncf: bool) {
        let timing = self.cfg.nak;
        let limits = self.cfg.limits;
        let Some(peer) = self.peers.get_mut(&tsi) else {
            self.stats.ignored += 1;
            return;
        };
        if peer.fec.is_none() || peer.window.is_none() {
            self.stats.parity_dropped += 1;
            return;
        }
        if pkt.grp_nla != peer.group {
            self.stats.ignored += 1;
            return;
        }
        if ncf {
            self.stats.ncf_received += 1;
            peer.stats.ncf_received += 1;
            peer.hear(now, &limits);
        } else {
            self.stats.peer_naks_seen += 1;
        }
        let (Some(groups), Some(w)) = (peer.fec.as_ref(), peer.window.as_mut()) else {
            return;
        };
        let k = groups.k() as u32;
        let list = options.nak_list.unwrap_or_default();
        for &entry in std::iter::once(&pkt.sqn).chain(list.as_slice()) {
            let tg = groups.group_of(entry);
            let count = (entry.0 & (k - 1)) + 1;
            let missing: Vec<SeqNo> = (0..k)
                .map(|i| tg.add(i))
                .filter(|&s| w.missing_mut(s).is_some())
                .collect();
            if missing.is_empty() || missing.len() as u32 > count {
                continue;
            }
            for sqn in missing {
                let Some(m) = w.missing_mut(sqn) else {
                    continue;
                };
                if m.phase == Phase::BackOff {
                    self.stats.naks_suppressed += 1;
                    peer.stats.naks_suppressed += 1;
                }
                let wait = timing.repeat_ivl(timing.rdata_ivl, m.rounds);
                w.reschedule(sqn, Phase::WaitData, now + wait);
            }
        }
    }

    /// RFC 3208 §6.3 "NAK suppression": another receiver's multicast NAK for a sqn we are
    /// about to NAK makes ours redundant.
    fn on_peer_nak(&mut self, now: Instant, tsi: Tsi, nak: &Nak, options: &Options) {
        let timing = self.cfg.nak;
        let Some(peer) = self.peers.get_mut(&tsi) else {
            self.stats.ignored += 1;
            return;
        };
        let Some(w) = peer.window.as_mut() else {
            self.stats.ignored += 1;
            return;
        };
        self.stats.peer_naks_seen += 1;
        let list = options.nak_list.unwrap_or_default();
        for &sqn in std::iter::once(&nak.sqn).chain(list.as_slice()) {
            let Some(m) = w.missing_mut(sqn) else {
                continue;
            };
            let (phase, base) = match m.phase {
                Phase::BackOff => {
                    self.stats.naks_suppressed += 1;
                    peer.stats.naks_suppressed += 1;
                    (Phase::WaitData, timing.rdata_ivl)
                }
                Phase::WaitNcf => (Phase::WaitNcf, timing.rpt_ivl),
                Phase::WaitData => (Phase::WaitData, timing.rdata_ivl),
            };
            let wait = timing.repeat_ivl(base, m.rounds);
            w.reschedule(sqn, phase, now + wait);
        }
    }

    /// Runs NAK, SPMR and expiry timers. Calling it early or late is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Only the peers that are due. `peer_timeout` leaves every timer of a peer it keeps
        // after `now`, so each is visited once and the loop ends.
        while let Some(&(deadline, tsi)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.peer_timeout(now, tsi);
            self.drain(tsi);
            self.account(tsi);
            self.refresh_deadline(tsi);
            debug_assert!(
                self.peers.get(&tsi).is_none_or(|p| p.deadline > now),
                "{tsi} still due after its timeout"
            );
        }
        #[cfg(debug_assertions)]
        self.check_invariants();
    }

    fn peer_timeout(&mut self, now: Instant, tsi: Tsi) {
        let Some(peer) = self.peers.get_mut(&tsi) else {
            return;
        };
        if peer.expiry <= now {
            // Whatever is still missing will never come: report it, then forget the session.
            self.drop_peer(tsi);
            return;
        }
        if peer.spmr_due.is_some_and(|t| t <= now) {
            self.send_spmr(tsi);
        }
        let report = self
            .peers
            .get_mut(&tsi)
            .and_then(|p| p.cc.as_mut())
            .filter(|c| c.report_due.is_some_and(|t| t <= now));
        if let Some(c) = report {
            c.report_due = None;
            self.send_ack(now, tsi);
        }
        self.expire_recovery(now, tsi);
        self.run_nak_timers(now, tsi);
        self.deliver(tsi);
    }

    /// Gives up sqns that have been in recovery for `max_recovery` (the application's
    /// deadline), however often NCFs restarted their timers.
    fn expire_recovery(&mut self, now: Instant, tsi: Tsi) {
        let max = self.cfg.nak.max_recovery;
        let Some(w) = self.peers.get_mut(&tsi).and_then(|p| p.window.as_mut()) else {
            return;
        };
        if w.oldest_missing().is_some_and(|since| since + max <= now) {
            self.stats.recovery_expired += w.expire_recovery(now - max);
        }
    }

    /// RFC 3208 §6.3: the NAK state machine of one peer's due sqns. NAKs go out as long as
    /// the peer's credit, the global NAK rate and the out-queue allow; the rest wait.
    fn run_nak_timers(&mut self, now: Instant, tsi: Tsi) {
        let limits = self.cfg.limits;
        let timing = self.cfg.nak;
        let room = limits.out_queue.saturating_sub(self.out.len()) as u64;
        let global = self
            .nak_bucket
            .get_or_insert_with(|| {
                TokenBucket::new(u64::from(limits.nak_rate), limits.nak_burst as usize, now)
            })
            .available(now);
        let Some(peer) = self.peers.get_mut(&tsi) else {
            return;
        };
        if peer.naks_blocked.is_some_and(|t| t > now) {
            return;
        }
        let credit = u64::from(peer.credit);
        let packets = credit.min(global).min(room);
        let limit = if packets == credit {
            NakLimit::Credit
        } else if packets == global {
            NakLimit::Global
        } else {
            NakLimit::Queue
        };
        let max_sqns = packets as usize * (MAX_NAK_LIST + 1);
        let Some(w) = peer.window.as_mut() else {
            return;
        };
        let mut nak = Vec::new();
        let mut retry_at = None;
        let mut blocked = false;
        while let Some(&(deadline, raw)) = w.timers.first() {
            if deadline > now {
                break;
            }
            let sqn = SeqNo(raw);
            let Some(m) = w.missing_mut(sqn).copied() else {
                w.timers.remove(&(deadline, raw));
                continue;
            };
            match m.phase {
                Phase::BackOff => {
                    if nak.len() >= max_sqns {
                        blocked = true;
                        break;
                    }
                    nak.push(sqn);
                    let rounds = m.rounds + 1;
                    if let Some(m) = w.missing_mut(sqn) {
                        m.rounds = rounds;
                    }
                    let wait = timing.repeat_ivl(timing.rpt_ivl, rounds);
                    w.reschedule(sqn, Phase::WaitNcf, now + wait);
                }
                Phase::WaitNcf | Phase::WaitData => {
                    // No NCF, or no data after one: back off and ask again. One draw serves
                    // every sqn of this visit, so they go out together in one NAK list.
                    let at = *retry_at.get_or_insert_with(|| backoff(&mut self.rng, &timing, now));
                    w.reschedule(sqn, Phase::BackOff, at);
                }
            }
        }
        if !nak.is_empty() {
            self.send_naks(now, tsi, &mut nak);
        }
        let until = blocked.then(|| {
            self.stats.naks_deferred += 1;
            match limit {
                NakLimit::Credit => NEVER,
                NakLimit::Global => self
                    .nak_bucket
                    .as_ref()
                    .map_or(now, |b| b.ready_for(1))
                    .max(now + Duration::from_micros(1)),
                NakLimit::Queue => now + OUT_QUEUE_RETRY,
            }
        });
        if let Some(p) = self.peers.get_mut(&tsi) {
            p.naks_blocked = until;
        }
    }

    /// RFC 3208 §6.3 "Transmitting a NAK": unicast to the source NLA, oldest first, up to 63
    /// sqns per packet (§9.3). Header per docs/wire-compatibility.md: sport = our dport,
    /// dport = the source's sport, GSI = the source's. With parity on demand, the sqns of full
    /// transmission groups go as parity NAKs instead (see [`Receiver::parity_entries`]). The
    /// caller checked the budgets.
    fn send_naks(&mut self, now: Instant, tsi: Tsi, sqns: &mut Vec<SeqNo>) {
        let parity = self.parity_entries(now, tsi, sqns);
        let Some(peer) = self.peers.get_mut(&tsi) else {
            return;
        };
        let target = peer.nla.unwrap_or(peer.ip_src);
        // PGMCC draft §2.1.2: NAKs carry our report for the ACKer election.
        let feedback = self
            .cfg
            .nla
            .filter(|_| self.cfg.congestion.pgmcc().is_some())
            .and_then(|me| peer.cc.as_ref()?.feedback(now, me));
        let trail = peer.window.as_ref().map_or(SeqNo(0), |w| w.trail);
        sqns.sort_by_key(|s| s.distance_from(trail));
        let mut packets = 0u32;
        for (entries, is_parity) in [(&parity, true), (&*sqns, false)] {
            for chunk in entries.chunks(MAX_NAK_LIST + 1) {
                let mut options = Options {
                    pgmcc_feedback: feedback,
                    ..Options::default()
                };
                if chunk.len() > 1 {
                    options.nak_list = Some(NakList::from_slice(&chunk[1..]));
                }
                let repr = PacketRepr {
                    sport: self.cfg.dport,
                    dport: tsi.sport,
                    gsi: tsi.gsi,
                    parity: is_parity,
                    var_pktlen: false,
                    body: Body::Nak(Nak {
                        sqn: chunk[0],
                        src_nla: target,
                        grp_nla: peer.group,
                    }),
                    options,
                    payload: &[],
                };
                self.out.push_back((target, repr.to_vec(), None));
                packets += 1;
                if is_parity {
                    self.stats.parity_naks_sent += 1;
                } else {
                    self.stats.nak_sqns_sent += chunk.len() as u64;
                    peer.stats.nak_sqns_sent += chunk.len() as u64;
                }
            }
        }
        peer.credit = peer.credit.saturating_sub(packets);
        if let (Some(c), true) = (peer.cc.as_mut(), feedback.is_some() && packets > 0) {
            c.introduced = true;
        }
        peer.stats.naks_sent += u64::from(packets);
        self.stats.naks_sent += u64::from(packets);
        if let Some(b) = &mut self.nak_bucket {
            b.take(now, u64::from(packets));
        }
    }

    /// RFC 3208 §11.5: for a peer that sends parity on demand, takes out of `sqns` those of
    /// full transmission groups (the window has seen the group's last sqn: loss detection at
    /// group boundaries) and returns one parity NAK entry per such group, `tg | (count − 1)`,
    /// count = the group's missing sqns minus the parity already held for it. A sqn of the
    /// leading partial group waits (back in back-off, the round not counted) for its group to
    /// fill, for up to NAK_RPT_IVL + NAK_BO_IVL after its loss was detected; then it is asked
    /// for with a parity NAK all the same (the source answers with parity of the group's
    /// prefix, OPT_CURR_TGSIZE). After [`PARITY_NAK_ROUNDS`] parity NAKs, or at once when its
    /// group's parity did not decode, it is NAKed selectively. Before its first parity NAK a full group's loss waits once more,
    /// a back-off draw divided by the count (RFC 3208 §11.5: NAK_BO_IVL biased inversely to
    /// NAK_PKT_CNT): receivers missing more of a group ask first, and the parity NCF for their
    /// larger count suppresses the NAKs of those missing less.
    fn parity_entries(&mut self, now: Instant, tsi: Tsi, sqns: &mut Vec<SeqNo>) -> Vec<SeqNo> {
        let timing = self.cfg.nak;
        let rng = &mut self.rng;
        let Some(peer) = self.peers.get_mut(&tsi) else {
            return Vec::new();
        };
        let (Some(groups), Some(w)) = (peer.fec.as_ref(), peer.window.as_mut()) else {
            return Vec::new();
        };
        if !groups.on_demand() {
            return Vec::new();
        }
        let k = groups.k() as u32;
        let lead = w.lead();
        let patience = timing.rpt_ivl + timing.bo_ivl;
        let mut entries: Vec<SeqNo> = Vec::new();
        let mut deferred = Vec::new();
        // Groups held for the biased back-off, and until when.
        let mut held_groups: Vec<(SeqNo, Instant)> = Vec::new();
        let mut asked = 0u64;
        sqns.retain(|&sqn| {
            let tg = groups.group_of(sqn);
            let Some(held) = groups.parity_held(tg) else {
                return true;
            };
            let Some(m) = w.missing_mut(sqn) else {
                return true;
            };
            // The group's packets sent so far, as far as we know.
            let sent = u32::try_from(lead.diff(tg) + 1).unwrap_or(0).min(k);
            if sent < k && now.saturating_duration_since(m.since) < patience {
                m.rounds = m.rounds.saturating_sub(1);
                deferred.push(sqn);
                return false;
            }
            // A group still partial after that: our source answers with parity of the prefix
            // it has sent (OPT_CURR_TGSIZE), so its losses are asked for with parity too.
            if m.rounds > PARITY_NAK_ROUNDS {
                return true;
            }
            let (biased, rounds) = (m.biased, m.rounds);
            let missing = (0..sent)
                .filter(|&i| w.missing_mut(tg.add(i)).is_some())
                .count();
            let count = missing.saturating_sub(held).max(1) as u32;
            if !biased && rounds <= 1 {
                let at = if let Some(&(_, at)) = held_groups.iter().find(|g| g.0 == tg) {
                    at
                } else {
                    let draw = backoff(rng, &timing, now).saturating_duration_since(now);
                    let at = now + draw / count;
                    held_groups.push((tg, at));
                    at
                };
                if let Some(m) = w.missing_mut(sqn) {
                    m.biased = true;
                    m.rounds = m.rounds.saturating_sub(1);
                }
                w.reschedule(sqn, Phase::BackOff, at);
                return false;
            }
            if !entries.iter().any(|e| e.0 & !(k - 1) == tg.0) {
                asked += u64::from(count);
                entries.push(tg.add(count - 1));
            }
            false
        });
        if !deferred.is_empty() {
            let at = backoff(rng, &timing, now).max(now + timing.bo_ivl / 8);
            for sqn in deferred {
                w.reschedule(sqn, Phase::BackOff, at);
            }
        }
        self.stats.parity_nak_sqns_sent += asked;
        entries
    }

    /// PGMCC draft §4 "on DATA packet reception": the loss rate and the timestamp follow
    /// every data packet with OPT_PGMCC_DATA; data that names us ACKer is ACKed at once, data
    /// that names nobody (the source elects) gets one report after a random wait (§2.3.1),
    /// cancelled by data that names an ACKer once we have reported. Data of a session we have
    /// not reported to yet gets that report too, whoever is ACKer (see
    /// [`Reporter::introduced`]). Without PGMCC or our NLA: ignored.
    fn on_pgmcc_data(&mut self, now: Instant, tsi: Tsi, sqn: SeqNo, odata: bool, pd: PgmccData) {
        let (Some(cc), Some(me)) = (self.cfg.congestion.pgmcc().copied(), self.cfg.nla) else {
            return;
        };
        let Some(peer) = self.peers.get_mut(&tsi) else {
            return;
        };
        let r = peer.cc.get_or_insert_with(|| Reporter::new(&cc, now));
        r.on_data(
            now,
            sqn,
            pd.tstamp,
            odata,
            f64::from(cc.loss_weight) / 65536.0,
        );
        // The ACKer is who the latest ODATA names; a repair repeats what its original said
        // (OpenPGM), which is stale: the ACKer ACKs repairs too, so that the source gets
        // its tokens back for them.
        let acker = if odata {
            r.acker = Some(pd.acker);
            pd.acker
        } else {
            r.acker.unwrap_or(pd.acker)
        };
        if acker == me {
            r.report_due = None;
            self.send_ack(now, tsi);
        } else if acker.is_unspecified() || !r.introduced {
            // An election (§2.3.1), or we have not reported yet: once per session every
            // receiver reports, whoever is ACKer, so that its path to the source is resolved
            // (ARP/ND) before a loss needs it, and the source knows its RTT.
            let wait_us = u64::try_from(cc.election_bo_ivl.as_micros()).unwrap_or(u64::MAX);
            let wait = Duration::from_micros(self.rng.gen_range(0..=wait_us));
            r.election(now, cc.election_bo_ivl, wait);
        } else {
            r.report_due = None;
        }
    }

    /// PGMCC ACK (type 0x0d; docs/congestion.md, OpenPGM's layout): RX_MAX, the bitmap and
    /// OPT_PGMCC_FEEDBACK, unicast to the source NLA like a NAK. Within the session's ACK
    /// budget and the out-queue: a forged session that names us ACKer buys no more.
    fn send_ack(&mut self, now: Instant, tsi: Tsi) {
        let Some(me) = self.cfg.nla else {
            return;
        };
        let Some(peer) = self.peers.get_mut(&tsi) else {
            return;
        };
        let Some(r) = peer.cc.as_mut() else {
            return;
        };
        let (Some(ack), Some(fb)) = (r.ack(), r.feedback(now, me)) else {
            return;
        };
        if self.out.len() >= self.cfg.limits.out_queue || !r.take_ack(now) {
            self.stats.pgmcc_acks_over_budget += 1;
            return;
        }
        let target = peer.nla.unwrap_or(peer.ip_src);
        let repr = PacketRepr {
            sport: self.cfg.dport,
            dport: tsi.sport,
            gsi: tsi.gsi,
            parity: false,
            var_pktlen: false,
            body: Body::Ack(ack),
            options: Options {
                pgmcc_feedback: Some(fb),
                ..Options::default()
            },
            payload: &[],
        };
        self.out.push_back((target, repr.to_vec(), None));
        r.introduced = true;
        self.stats.pgmcc_acks_sent += 1;
    }

    /// SPMR multicast (for suppression) and unicast to the data's sender
    /// (docs/wire-compatibility.md). RFC 3208 §13.6: the multicast copy with a TTL of 1.
    fn send_spmr(&mut self, tsi: Tsi) {
        let Some(peer) = self.peers.get_mut(&tsi) else {
            return;
        };
        peer.spmr_due = None;
        if self.out.len() + 2 > self.cfg.limits.out_queue {
            self.stats.out_queue_drops += 1;
            return;
        }
        let repr = PacketRepr {
            sport: self.cfg.dport,
            dport: tsi.sport,
            gsi: tsi.gsi,
            parity: false,
            var_pktlen: false,
            body: Body::Spmr,
            options: Options::default(),
            payload: &[],
        };
        let bytes = repr.to_vec();
        self.out.push_back((peer.group, bytes.clone(), Some(1)));
        self.out.push_back((peer.ip_src, bytes, None));
        self.stats.spmrs_sent += 1;
    }

    /// Turns what `tsi`'s window delivered into events.
    fn drain(&mut self, tsi: Tsi) {
        match self.peers.get_mut(&tsi) {
            Some(peer) => drain_into(
                &mut self.delivered,
                &mut self.events,
                &mut self.stats,
                tsi,
                peer,
            ),
            None => self.delivered.clear(),
        }
    }
}

/// Turns what a window delivered into events: `PeerJoined` before a session's first APDU,
/// `Loss` only for confirmed sessions (a session on probation has no losses to report: it may
/// never have existed).
fn drain_into(
    delivered: &mut Vec<Delivered>,
    events: &mut VecDeque<Event>,
    stats: &mut ReceiverStats,
    tsi: Tsi,
    peer: &mut Peer,
) {
    for d in delivered.drain(..) {
        match d {
            Delivered::Apdu(apdu) => {
                if !peer.announced {
                    peer.announced = true;
                    stats.peers_joined += 1;
                    events.push_back(Event::PeerJoined { tsi });
                }
                stats.apdus_delivered += 1;
                peer.stats.apdus_delivered += 1;
                events.push_back(Event::Data { tsi, apdu });
            }
            Delivered::Lost { first, count } if peer.confirmed => {
                if !peer.announced {
                    peer.announced = true;
                    stats.peers_joined += 1;
                    events.push_back(Event::PeerJoined { tsi });
                }
                stats.lost_sqns += u64::from(count);
                stats.loss_events += 1;
                peer.stats.lost_sqns += u64::from(count);
                events.push_back(Event::Loss { tsi, first, count });
            }
            Delivered::Lost { count, .. } => stats.unconfirmed_lost_sqns += u64::from(count),
            Delivered::CaughtUp => events.push_back(Event::CaughtUp { tsi }),
        }
    }
}

/// RFC 3208 §6.3: NAK_RB_IVL, drawn at random over `[0, NAK_BO_IVL]`.
///
/// With `nak.bo_bias` λ > 0 the draw follows a truncated exponential density ∝ e^(λt/T)
/// (Nonnenmacher & Biersack, "Scalable feedback for large groups"): few receivers fire early,
/// so the first NAK's NCF reaches the rest before their timers expire. λ = 0 is the uniform
/// draw OpenPGM uses.
fn backoff(rng: &mut SmallRng, nak: &NakTiming, now: Instant) -> Instant {
    let t = nak.bo_ivl.as_secs_f64();
    let lambda = nak.bo_bias;
    let u: f64 = rng.gen();
    let x = if lambda > 0.0 {
        (u * lambda.exp_m1()).ln_1p() / lambda
    } else {
        u
    };
    now + Duration::from_secs_f64(t * x)
}
