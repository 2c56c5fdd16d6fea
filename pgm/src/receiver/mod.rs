//! The PGM receiver (RFC 3208 §6): per-TSI peers, receive windows, the NAK state machine with
//! suppression, reassembly, loss and expiry.
//!
//! Sans-IO: [`Receiver::handle_packet`] takes every packet seen on the port (data, SPMs, NCFs,
//! other receivers' NAKs and SPMRs), [`Receiver::handle_timeout`] runs NAK and SPMR timers,
//! [`Receiver::poll_transmit`] hands out NAKs and SPMRs, [`Receiver::poll_event`] the data.

mod window;

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    net::IpAddr,
    time::Duration,
};

use bytes::Bytes;
use rand::{rngs::SmallRng, Rng, SeedableRng};

use crate::{
    config::{JoinPolicy, NakTiming, ReceiverConfig},
    event::Event,
    time::Instant,
    wire::{
        options::MAX_NAK_LIST, Body, Data, Error, Fragment, Nak, NakList, Options, PacketRepr,
        SeqNo, Spm, Tsi,
    },
    Transmit,
};

use window::{Delivered, Insert, Phase, Window};

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
    /// Data packets already held (or already given up on).
    pub duplicates: u64,
    /// Data packets before the window trail.
    pub too_old: u64,
    /// SPMs accepted.
    pub spm_received: u64,
    /// SPMs whose window edges leapt further than a whole receive window, not acted on.
    pub spm_leaps_ignored: u64,
    /// NCFs received for known peers.
    pub ncf_received: u64,
    /// NAK packets sent.
    pub naks_sent: u64,
    /// Sqns requested in NAKs sent.
    pub nak_sqns_sent: u64,
    /// Sqns whose NAK was suppressed in back-off by an NCF or another receiver's NAK.
    pub naks_suppressed: u64,
    /// Other receivers' NAKs seen (multicast).
    pub peer_naks_seen: u64,
    /// SPMRs sent.
    pub spmrs_sent: u64,
    /// APDUs delivered.
    pub apdus_delivered: u64,
    /// Sqns declared lost.
    pub lost_sqns: u64,
    /// Loss events reported.
    pub loss_events: u64,
    /// Packets that failed the checksum.
    pub checksum_errors: u64,
    /// Packets that failed to parse.
    pub parse_errors: u64,
    /// Packets for another port, of an ignored type, or inconsistent with the session.
    pub ignored: u64,
    /// Packets dropped because `max_peers` sessions are already tracked.
    pub peers_rejected: u64,
    /// Sessions seen.
    pub peers_joined: u64,
    /// Sessions expired.
    pub peers_expired: u64,
    /// Sessions tracked now.
    pub peers: u64,
    /// Sqns currently missing (NAK state machines running) over all peers.
    pub missing_now: u64,
    /// Payload bytes buffered now over all peers.
    pub window_bytes: u64,
}

/// One source session as seen by this receiver.
#[derive(Debug)]
struct Peer {
    /// Source path NLA from the last SPM: where NAKs go (interop-notes §0.7).
    nla: Option<IpAddr>,
    /// IP source of the last packet: where NAKs go while no SPM has named an NLA, and where
    /// the unicast SPMR copy goes.
    ip_src: IpAddr,
    /// Destination (group) of the last downstream packet: echoed in NAKs.
    group: IpAddr,
    last_spm_sqn: Option<SeqNo>,
    spmr_due: Option<Instant>,
    expiry: Instant,
    fin: bool,
    window: Option<Window>,
    /// [`Peer::earliest`] as last indexed in [`Receiver::deadlines`]: the key to remove when
    /// it changes. Equal to `earliest()` whenever the receiver is between calls.
    deadline: Instant,
}

impl Peer {
    /// The peer's next timer: its earliest NAK deadline (RFC 3208 §6.3), SPMR (§13.3.2) or
    /// expiry, whichever comes first.
    fn earliest(&self) -> Instant {
        let nak = self.window.as_ref().and_then(Window::next_deadline);
        [nak, self.spmr_due]
            .into_iter()
            .flatten()
            .fold(self.expiry, Instant::min)
    }
}

/// A PGM receiver. See the module docs.
#[derive(Debug)]
pub struct Receiver {
    cfg: ReceiverConfig,
    peers: BTreeMap<Tsi, Peer>,
    /// Timer index: exactly one `(peer.deadline, tsi)` per peer, so the first entry is the next
    /// timer of all, and `handle_timeout` visits only the peers that are due (a subscriber may
    /// hear hundreds of sources). Kept in step by `refresh_deadline` after every per-peer
    /// operation, and by `remove_peer`.
    deadlines: BTreeSet<(Instant, Tsi)>,
    rng: SmallRng,
    events: VecDeque<Event>,
    /// Packets to send: destination, bytes, TTL override.
    out: VecDeque<(IpAddr, Vec<u8>, Option<u8>)>,
    stats: ReceiverStats,
    delivered: Vec<Delivered>,
}

impl Receiver {
    /// A receiver with no peers yet.
    pub fn new(cfg: ReceiverConfig) -> Self {
        Receiver {
            rng: SmallRng::seed_from_u64(cfg.rng_seed),
            cfg,
            peers: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            events: VecDeque::new(),
            out: VecDeque::new(),
            stats: ReceiverStats::default(),
            delivered: Vec::new(),
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
        let windows = self.peers.values().filter_map(|p| p.window.as_ref());
        for w in windows {
            s.missing_now += w.missing_count() as u64;
            s.window_bytes += w.bytes as u64;
        }
        s
    }

    /// The sessions currently tracked.
    pub fn peers(&self) -> impl Iterator<Item = Tsi> + '_ {
        self.peers.keys().copied()
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
        let next = peer.earliest();
        if next != peer.deadline {
            self.deadlines.remove(&(peer.deadline, tsi));
            self.deadlines.insert((next, tsi));
            peer.deadline = next;
        }
    }

    /// Forgets a session and its timers.
    fn remove_peer(&mut self, tsi: Tsi) -> Option<Peer> {
        let peer = self.peers.remove(&tsi)?;
        self.deadlines.remove(&(peer.deadline, tsi));
        Some(peer)
    }

    /// Checks the timer index against the peers' timers: one entry per peer, each peer's
    /// cached deadline equal to its earliest timer, and the first entry the brute-force
    /// minimum. Run after every call in debug builds; tests and fuzz targets call it too.
    ///
    /// # Panics
    ///
    /// If the index is out of step (a bug: a NAK or SPMR could go unsent).
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        assert_eq!(
            self.deadlines.len(),
            self.peers.len(),
            "one index entry per peer"
        );
        for (tsi, p) in &self.peers {
            assert_eq!(p.deadline, p.earliest(), "cached deadline of {tsi}");
            assert!(
                self.deadlines.contains(&(p.deadline, *tsi)),
                "deadline of {tsi} not indexed"
            );
        }
        let brute = self.peers.values().map(Peer::earliest).min();
        assert_eq!(self.deadlines.first().map(|&(t, _)| t), brute);
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
            Body::Odata(d) | Body::Rdata(d) => {
                let rdata = matches!(repr.body, Body::Rdata(_));
                if let Some(peer) = self.peer_for(now, tsi, src, dst) {
                    peer.ip_src = src;
                    if rdata {
                        self.stats.rdata_received += 1;
                    } else {
                        self.stats.odata_received += 1;
                    }
                    self.on_data(now, tsi, d, repr.options.fragment, repr.payload);
                }
            }
            // A FIN SPM never starts a session (it may outlive the one it ended).
            Body::Spm(_) if repr.options.fin && !self.peers.contains_key(&tsi) => {
                self.stats.ignored += 1;
            }
            Body::Spm(spm) => {
                if self.peer_for(now, tsi, src, dst).is_some() {
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
        self.drain(tsi);
        // Every arm above touches at most this one peer.
        self.refresh_deadline(tsi);
        #[cfg(debug_assertions)]
        self.check_invariants();
    }

    /// Finds or creates the peer for a downstream packet; `None` if `max_peers` is reached.
    fn peer_for(&mut self, now: Instant, tsi: Tsi, src: IpAddr, dst: IpAddr) -> Option<&mut Peer> {
        if !self.peers.contains_key(&tsi) {
            if self.peers.len() >= self.cfg.max_peers {
                self.stats.peers_rejected += 1;
                return None;
            }
            let mut peer = Peer {
                nla: None,
                ip_src: src,
                group: dst,
                last_spm_sqn: None,
                spmr_due: Some(now + self.cfg.spmr_expiry),
                expiry: now + self.cfg.peer_expiry,
                fin: false,
                window: None,
                deadline: Instant::ZERO,
            };
            peer.deadline = peer.earliest();
            self.deadlines.insert((peer.deadline, tsi));
            self.peers.insert(tsi, peer);
            self.stats.peers_joined += 1;
            self.events.push_back(Event::PeerJoined { tsi });
        }
        let peer = self.peers.get_mut(&tsi)?;
        if !peer.fin {
            peer.expiry = now + self.cfg.peer_expiry;
        }
        Some(peer)
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
        let rxw_sqns = self.cfg.rxw_sqns.max(1);
        let join = self.cfg.join;
        let Some(peer) = self.peers.get_mut(&tsi) else {
            return;
        };
        if fragment.is_some_and(|f| f.apdu_len as usize > self.cfg.max_apdu) {
            self.stats.ignored += 1;
            return;
        }
        let w = peer.window.get_or_insert_with(|| {
            // interop-notes §1.10/§5: the window starts at the first packet seen, or (by
            // choice) at the trail it advertises, if that is within reach.
            let start = match join {
                JoinPolicy::AdvertisedTrail
                    if d.sqn.diff(d.trail) >= 0 && d.sqn.distance_from(d.trail) < rxw_sqns =>
                {
                    d.trail
                }
                _ => d.sqn,
            };
            Window::new(start)
        });
        let ahead = d.sqn.diff(w.trail);
        if ahead < 0 {
            self.stats.too_old += 1;
            return;
        }
        // Keep the window within RXW_SQNS whatever sqn arrives: older data is given up.
        if ahead.unsigned_abs() >= rxw_sqns {
            w.jump(d.sqn.sub(rxw_sqns - 1), &mut self.delivered);
        }
        if d.sqn.diff(w.lead()) > 0 {
            // A gap: every sqn in it backs off until the same random deadline, so one NAK
            // (with OPT_NAK_LIST) asks for the whole burst. (Drawn only for gaps: the draw
            // costs more than the rest of in-order delivery.)
            if d.sqn.diff(w.lead()) > 1 {
                let deadline = backoff(&mut self.rng, &self.cfg.nak, now);
                w.extend_missing(d.sqn.sub(1), deadline, Phase::BackOff);
            }
            w.push(Bytes::copy_from_slice(payload), fragment);
        } else {
            match w.insert(d.sqn, Bytes::copy_from_slice(payload), fragment) {
                Insert::New { repaired } => self.stats.repaired += u64::from(repaired),
                Insert::Duplicate => self.stats.duplicates += 1,
                Insert::TooOld => self.stats.too_old += 1,
            }
        }
        w.source_trail(d.trail);
        let max_bytes = self.cfg.rxw_max_bytes;
        w.deliver(&mut self.delivered);
        while w.bytes > max_bytes && !w.slots.is_empty() {
            w.evict_front(&mut self.delivered);
            w.deliver(&mut self.delivered);
        }
    }

    /// RFC 3208 §6.1: an SPM names the NAK target and the window edges.
    fn on_spm(&mut self, now: Instant, tsi: Tsi, dst: IpAddr, spm: &Spm, options: &Options) {
        let rxw_sqns = self.cfg.rxw_sqns.max(1);
        let join = self.cfg.join;
        let Some(peer) = self.peers.get_mut(&tsi) else {
            return;
        };
        // interop-notes §1.3: SPMs older than the last one are duplicates.
        if peer
            .last_spm_sqn
            .is_some_and(|last| spm.spm_sqn.diff(last) <= 0)
        {
            self.stats.duplicates += 1;
            return;
        }
        self.stats.spm_received += 1;
        peer.last_spm_sqn = Some(spm.spm_sqn);
        peer.nla = Some(spm.path);
        peer.group = dst;
        peer.spmr_due = None;
        if options.fin && !peer.fin {
            // RFC 3208 §9.7: the session is over. Keep it long enough to repair what is still
            // missing up to the FIN's lead, then forget it.
            peer.fin = true;
            peer.expiry = peer.expiry.min(now + self.cfg.fin_linger);
        }
        // RFC 3208 §8.1: trail 0 with lead 0x80000000 carries no window information.
        if spm.trail == SeqNo(0) && spm.lead == SeqNo(0x8000_0000) {
            return;
        }
        let w = peer.window.get_or_insert_with(|| match join {
            // Nothing is requested from before the SPM's lead...
            JoinPolicy::FirstSeen => Window::new(spm.lead.next()),
            // ...or everything the source still holds.
            JoinPolicy::AdvertisedTrail => {
                let span = spm.lead.next().distance_from(spm.trail).min(rxw_sqns);
                Window::new(spm.lead.next().sub(span))
            }
        });
        // An SPM that moves the window by more than its whole size is not believed: only data
        // may do that (an SPM is small and easy to forge; data at least has to be sent at the
        // rate the real session runs). A real jump shows up with the next ODATA.
        let leap = |to: SeqNo| to.diff(w.lead()) > 0 && to.distance_from(w.lead()) > rxw_sqns;
        if leap(spm.lead) || leap(spm.trail) {
            self.stats.spm_leaps_ignored += 1;
            return;
        }
        // The lead reveals sqns we never saw (the last packets before a pause).
        if spm.lead.diff(w.lead()) > 0 {
            let ahead = spm.lead.distance_from(w.trail);
            if ahead >= rxw_sqns {
                w.jump(spm.lead.sub(rxw_sqns - 1), &mut self.delivered);
            }
            let deadline = backoff(&mut self.rng, &self.cfg.nak, now);
            w.extend_missing(spm.lead, deadline, Phase::BackOff);
        }
        w.source_trail(spm.trail);
        // Sqns the source dropped before we even learned of them are lost too.
        if spm.trail.diff(w.trail) > 0
            && w.slots
                .iter()
                .all(|s| !matches!(s, window::Slot::Missing(_)))
        {
            w.deliver(&mut self.delivered);
            if w.slots.is_empty() && spm.trail.diff(w.trail) > 0 {
                w.jump(spm.trail, &mut self.delivered);
            }
        }
        w.deliver(&mut self.delivered);
    }

    /// RFC 3208 §6.3: an NCF moves a sqn to WAIT_DATA (suppressing our NAK in back-off).
    fn on_ncf(&mut self, now: Instant, tsi: Tsi, ncf: &Nak, options: &Options) {
        let rdata_ivl = self.cfg.nak.rdata_ivl;
        let Some(peer) = self.peers.get_mut(&tsi) else {
            self.stats.ignored += 1;
            return;
        };
        // interop-notes §1.5: only NCFs for our group count.
        if ncf.grp_nla != peer.group {
            self.stats.ignored += 1;
            return;
        }
        self.stats.ncf_received += 1;
        let Some(w) = peer.window.as_mut() else {
            return;
        };
        let list = options.nak_list.unwrap_or_default();
        for &sqn in std::iter::once(&ncf.sqn).chain(list.as_slice()) {
            if let Some(m) = w.missing_mut(sqn) {
                if m.phase == Phase::BackOff {
                    self.stats.naks_suppressed += 1;
                }
                w.reschedule(sqn, Phase::WaitData, now + rdata_ivl);
            }
        }
    }

    /// RFC 3208 §6.3 "NAK suppression": another receiver's multicast NAK for a sqn we are
    /// about to NAK makes ours redundant.
    fn on_peer_nak(&mut self, now: Instant, tsi: Tsi, nak: &Nak, options: &Options) {
        let nak_ivl = self.cfg.nak;
        let Some(w) = self.peers.get_mut(&tsi).and_then(|p| p.window.as_mut()) else {
            self.stats.ignored += 1;
            return;
        };
        self.stats.peer_naks_seen += 1;
        let list = options.nak_list.unwrap_or_default();
        for &sqn in std::iter::once(&nak.sqn).chain(list.as_slice()) {
            let Some(m) = w.missing_mut(sqn) else {
                continue;
            };
            match m.phase {
                Phase::BackOff => {
                    self.stats.naks_suppressed += 1;
                    w.reschedule(sqn, Phase::WaitData, now + nak_ivl.rdata_ivl);
                }
                Phase::WaitNcf => w.reschedule(sqn, Phase::WaitNcf, now + nak_ivl.rpt_ivl),
                Phase::WaitData => w.reschedule(sqn, Phase::WaitData, now + nak_ivl.rdata_ivl),
            }
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
            if let Some(w) = peer.window.as_mut() {
                w.abandon(&mut self.delivered);
            }
            self.remove_peer(tsi);
            self.drain(tsi);
            self.stats.peers_expired += 1;
            self.events.push_back(Event::PeerExpired { tsi });
            return;
        }
        if peer.spmr_due.is_some_and(|t| t <= now) {
            self.send_spmr(tsi);
        }
        let mut nak = Vec::new();
        let cfg = self.cfg.nak;
        loop {
            let Some(w) = self.peers.get_mut(&tsi).and_then(|p| p.window.as_mut()) else {
                return;
            };
            let Some(&(deadline, raw)) = w.timers.first() else {
                break;
            };
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
                    nak.push(sqn);
                    w.reschedule(sqn, Phase::WaitNcf, now + cfg.rpt_ivl);
                }
                Phase::WaitNcf | Phase::WaitData => {
                    let (ncf_retries, data_retries) = if m.phase == Phase::WaitNcf {
                        (m.ncf_retries + 1, m.data_retries)
                    } else {
                        (m.ncf_retries, m.data_retries + 1)
                    };
                    if ncf_retries > cfg.ncf_retries || data_retries > cfg.data_retries {
                        // Retries exhausted: cancellation, the sqn is lost.
                        w.mark_lost(sqn);
                    } else {
                        if let Some(m) = w.missing_mut(sqn) {
                            m.ncf_retries = ncf_retries;
                            m.data_retries = data_retries;
                        }
                        // NAK_RB_IVL is drawn only here, when a retry needs it (a draw per
                        // visit would cost more than the visit).
                        let deadline = backoff(&mut self.rng, &cfg, now);
                        w.reschedule(sqn, Phase::BackOff, deadline);
                    }
                }
            }
        }
        if !nak.is_empty() {
            self.send_naks(tsi, &mut nak);
        }
        if let Some(w) = self.peers.get_mut(&tsi).and_then(|p| p.window.as_mut()) {
            w.deliver(&mut self.delivered);
        }
    }

    /// RFC 3208 §6.3 "Transmitting a NAK": unicast to the source NLA, oldest first, up to 63
    /// sqns per packet (§9.3). Header per interop-notes §1.5: sport = our dport, dport = the
    /// source's sport, GSI = the source's.
    fn send_naks(&mut self, tsi: Tsi, sqns: &mut [SeqNo]) {
        let Some(peer) = self.peers.get(&tsi) else {
            return;
        };
        let target = peer.nla.unwrap_or(peer.ip_src);
        let trail = peer.window.as_ref().map_or(SeqNo(0), |w| w.trail);
        sqns.sort_by_key(|s| s.distance_from(trail));
        for chunk in sqns.chunks(MAX_NAK_LIST + 1) {
            let mut options = Options::default();
            if chunk.len() > 1 {
                options.nak_list = Some(NakList::from_slice(&chunk[1..]));
            }
            let repr = PacketRepr {
                sport: self.cfg.dport,
                dport: tsi.sport,
                gsi: tsi.gsi,
                parity: false,
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
            self.stats.naks_sent += 1;
            self.stats.nak_sqns_sent += chunk.len() as u64;
        }
    }

    /// interop-notes §1.6: SPMR multicast (for suppression) and unicast to the data's sender.
    /// RFC 3208 §13.6: the multicast copy with a TTL of 1.
    fn send_spmr(&mut self, tsi: Tsi) {
        let Some(peer) = self.peers.get_mut(&tsi) else {
            return;
        };
        peer.spmr_due = None;
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

    /// Turns what the windows delivered into events.
    fn drain(&mut self, tsi: Tsi) {
        for d in self.delivered.drain(..) {
            match d {
                Delivered::Apdu(apdu) => {
                    self.stats.apdus_delivered += 1;
                    self.events.push_back(Event::Data { tsi, apdu });
                }
                Delivered::Lost { first, count } => {
                    self.stats.lost_sqns += u64::from(count);
                    self.stats.loss_events += 1;
                    self.events.push_back(Event::Loss { tsi, first, count });
                }
            }
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
