//! The PGM source (RFC 3208 §5): transmit window, SPMs, NAK → NCF/RDATA, rate control.
//!
//! Sans-IO: [`Source::send`] queues application data, [`Source::handle_packet`] takes NAKs and
//! SPMRs, [`Source::poll_transmit`] hands out the next packet the rate allows, and
//! [`Source::poll_timeout`] says when to call again.

use std::{collections::VecDeque, net::IpAddr, time::Duration};

use bytes::Bytes;

use crate::{
    cc::{source::Controller, PgmccStats},
    config::SourceConfig,
    fec::{encode_fragments, encode_parity, on_demand::OnDemand, ReedSolomon},
    rate::{PeakRate, TokenBucket},
    time::Instant,
    wire::{
        checksum::ones_complement_sum,
        options::{ParityPrm, MAX_NAK_LIST},
        Body, Data, Error, Fragment, Nak, NakList, Options, PacketRepr, SeqNo, Spm,
    },
    Transmit,
};

/// Why [`Source::send`] refused an APDU. Nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The send buffer is full: the rate limit is holding data back. Try again at
    /// [`Source::poll_timeout`] (after draining [`Source::poll_transmit`]).
    #[error("send buffer full; the rate limit holds data back")]
    WouldBlock,
    /// The APDU is larger than `max_apdu`, or needs more fragments than the window holds.
    #[error("APDU of {0} bytes is too large")]
    TooLarge(usize),
    /// [`Source::close`] was called.
    #[error("source is closed")]
    Closed,
}

/// Counters of a source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceStats {
    /// APDUs accepted by `send`.
    pub apdus_sent: u64,
    /// ODATA packets sent.
    pub odata_sent: u64,
    /// ODATA payload bytes sent.
    pub odata_bytes: u64,
    /// RDATA packets sent.
    pub rdata_sent: u64,
    /// RDATA payload bytes sent.
    pub rdata_bytes: u64,
    /// NCF packets sent.
    pub ncf_sent: u64,
    /// SPMs sent.
    pub spm_sent: u64,
    /// Bytes of every packet sent, IP overhead included (what the rate limit counts).
    pub wire_bytes: u64,
    /// NAK packets for this session received and accepted.
    pub naks_received: u64,
    /// Sqns requested by accepted NAKs (header sqn plus OPT_NAK_LIST).
    pub nak_sqns_received: u64,
    /// Sqns not repaired because they were repaired within the elimination interval.
    pub nak_sqns_eliminated: u64,
    /// Sqns requested that are no longer (or not yet) in the transmit window.
    pub nak_sqns_outside_window: u64,
    /// Sqns not repaired because their NAK asked for more than the per-NAK bound, or its
    /// NAKer had used up its budget.
    pub nak_sqns_over_budget: u64,
    /// Parity NAKs ignored: FEC on demand is off.
    pub parity_naks_ignored: u64,
    /// Parity NAKs (packets) accepted (FEC on demand, docs/fec.md).
    pub parity_naks_received: u64,
    /// Groups named by parity NAKs that are not whole in the transmit window (not sent in
    /// full yet, or gone): nothing sent.
    pub parity_nak_groups_refused: u64,
    /// Parity packets asked for that parity sent within the elimination interval (for
    /// another receiver's NAK) already covered.
    pub parity_eliminated: u64,
    /// Parity packets sent on demand (RDATA with OPT_PARITY).
    pub on_demand_parity_sent: u64,
    /// NAKs dropped because their source or group NLA is not ours.
    pub naks_bad_nla: u64,
    /// NNAKs received.
    pub nnaks_received: u64,
    /// SPMRs received.
    pub spmrs_received: u64,
    /// Packets that failed the checksum.
    pub checksum_errors: u64,
    /// Packets that failed to parse.
    pub parse_errors: u64,
    /// Packets for other sessions or of types a source ignores.
    pub ignored: u64,
    /// Packets in the transmit window now.
    pub txw_packets: u64,
    /// Payload bytes in the transmit window now.
    pub txw_bytes: u64,
    /// Entries in the repair queue: a sqn several NAKers asked for is queued once for each
    /// (and sent once).
    pub repairs_queued: u64,
    /// On-demand parity packets queued now (at most one per-NAKer burst per NAKer slot).
    pub parity_queued: u64,
    /// TXW_LEAD now: the last sqn sent.
    pub txw_lead: SeqNo,
    /// TXW_TRAIL now: the oldest sqn held for repair.
    pub txw_trail: SeqNo,
    /// Packets accepted by `send` and not yet transmitted, now (held back by the rate limit).
    pub queued_packets: u64,
    /// Their payload bytes.
    pub queued_bytes: u64,
    /// Pro-active parity packets sent (FEC, docs/fec.md).
    pub parity_sent: u64,
    /// Parity payload bytes sent.
    pub parity_bytes: u64,
    /// Parity packets not sent because their group had left the window.
    pub parity_skipped: u64,
    /// Congestion control (PGMCC, docs/congestion.md): all zero when it is off.
    pub pgmcc: PgmccStats,
}

/// One TPDU the source has built: kept in the send queue, then in the transmit window.
#[derive(Debug, Clone)]
struct TxPacket {
    sqn: SeqNo,
    fragment: Option<Fragment>,
    payload: Bytes,
    /// One's-complement sum of `payload`, so emitting never re-reads it for the checksum.
    payload_sum: u16,
    /// The NAKer slots whose repair queue holds this sqn, RDATA not yet sent (bit `i`: slot
    /// `i`, see [`naker_slot`]).
    queued_for: u64,
    /// In the list of the next NCF.
    ncf_pending: bool,
    last_rdata: Option<Instant>,
    /// When its ODATA went out (TXW_SECS counts from then).
    sent_at: Instant,
}

/// Sent packets retained for repair, oldest (the trail) first. Bounded by sqns and bytes.
#[derive(Debug, Default)]
struct TxWindow {
    packets: VecDeque<TxPacket>,
    bytes: usize,
}

impl TxWindow {
    /// Drops the trail packet.
    fn pop_trail(&mut self) {
        if let Some(old) = self.packets.pop_front() {
            self.bytes -= old.payload.len();
        }
    }

    fn get_mut(&mut self, sqn: SeqNo) -> Option<&mut TxPacket> {
        let trail = self.packets.front()?.sqn;
        let i = sqn.distance_from(trail) as usize;
        self.packets.get_mut(i)
    }
}

/// SPM heartbeat state (docs/wire-compatibility.md §9): after data, SPMs at each interval in turn.
#[derive(Debug, Clone, Copy)]
struct Heartbeat {
    index: usize,
    due: Instant,
}

/// A PGM source. See the module docs.
#[derive(Debug)]
pub struct Source {
    cfg: SourceConfig,
    /// Accepted by `send`, not yet transmitted; sqns already assigned.
    queue: VecDeque<TxPacket>,
    queue_bytes: usize,
    txw: TxWindow,
    /// Next sqn `send` assigns.
    next_sqn: SeqNo,
    /// Sqns owed RDATA, by NAKer, served in turn.
    repairs: RepairQueue,
    /// Sqns to confirm in the next NCF.
    ncf: Vec<SeqNo>,
    spm_sqn: SeqNo,
    spms_owed: u32,
    fins_owed: u32,
    next_ambient: Option<Instant>,
    heartbeat: Option<Heartbeat>,
    last_spmr_answer: Option<Instant>,
    closing: bool,
    bucket: Option<TokenBucket>,
    repair_bucket: Option<TokenBucket>,
    /// Unpaced source: its ODATA rate, which sets the repair cap
    /// ([`crate::config::RepairBudget::unpaced_cap`]).
    odata_rate: Option<PeakRate>,
    /// Bytes repairs may still send while ODATA waits: each ODATA adds its share (see
    /// [`crate::config::RepairBudget::share`]), each repair sent while ODATA waits spends it.
    repair_credit: i64,
    /// Sqns each NAKer may still have repaired, by a hash of its IP address (a fixed table:
    /// forged addresses cannot grow it; two NAKers that collide share a budget).
    nakers: Box<[Option<TokenBucket>; NAKER_BUCKETS]>,
    /// The Reed-Solomon code for the configured group size (FEC on).
    rs: Option<ReedSolomon>,
    /// Pro-active parity owed: (first sqn of the group, parity index), served before ODATA.
    parity_owed: VecDeque<(SeqNo, u8)>,
    /// On-demand parity: which indices each group used (FEC on demand).
    on_demand: Option<OnDemand>,
    /// On-demand parity owed, served as repairs: (group, index).
    parity_repairs: RepairQueue<(SeqNo, u8)>,
    /// Parity NCFs to send: `tg | (count − 1)` as the parity NAKs asked.
    parity_ncf: Vec<SeqNo>,
    /// PGMCC (`SourceConfig::congestion`): the window ODATA waits for.
    cc: Option<Controller>,
    stats: SourceStats,
}

/// An unpaced source's ODATA rate is measured over this long...
const ODATA_RATE_INTERVAL: Duration = Duration::from_millis(100);
/// ...and its repair cap follows the highest such rate of this long.
const ODATA_RATE_HOLD: Duration = Duration::from_secs(1);

/// Per-NAKer repair budgets and queues kept (see [`Source::nakers`]): one bit each in
/// [`TxPacket::queued_for`].
const NAKER_BUCKETS: usize = 64;
const _: () = assert!(NAKER_BUCKETS <= u64::BITS as usize);

impl Source {
    /// A source that will announce itself with 3 SPMs (RFC 3208 §6.1; OpenPGM's `pgm_connect`).
    pub fn new(cfg: SourceConfig) -> Self {
        Source {
            queue: VecDeque::new(),
            queue_bytes: 0,
            txw: TxWindow::default(),
            next_sqn: SeqNo(0),
            repairs: RepairQueue::default(),
            ncf: Vec::new(),
            spm_sqn: SeqNo(0),
            spms_owed: 3,
            fins_owed: 0,
            next_ambient: None,
            heartbeat: None,
            last_spmr_answer: None,
            closing: false,
            bucket: None,
            repair_bucket: None,
            odata_rate: (cfg.rate.is_none() && cfg.repair.rate.is_none())
                .then(|| PeakRate::new(ODATA_RATE_INTERVAL, ODATA_RATE_HOLD)),
            repair_credit: 0,
            nakers: Box::new([const { None }; NAKER_BUCKETS]),
            rs: cfg
                .fec
                .and_then(|f| ReedSolomon::new(usize::from(f.group_size())).ok()),
            parity_owed: VecDeque::new(),
            on_demand: cfg
                .fec
                .filter(crate::config::FecConfig::is_on_demand)
                .map(|f| OnDemand::new(f.group_size(), f.proactive_count())),
            parity_repairs: RepairQueue::default(),
            parity_ncf: Vec::new(),
            cc: cfg.congestion.pgmcc().map(|c| Controller::new(*c, cfg.nla)),
            stats: SourceStats::default(),
            cfg,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SourceConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> SourceStats {
        let mut s = self.stats.clone();
        s.txw_packets = self.txw.packets.len() as u64;
        s.txw_bytes = self.txw.bytes as u64;
        s.repairs_queued = self.repairs.len() as u64;
        s.parity_queued = self.parity_repairs.len() as u64;
        s.txw_lead = self.txw_lead();
        s.txw_trail = self.txw_trail();
        s.queued_packets = self.queue.len() as u64;
        s.queued_bytes = self.queue_bytes as u64;
        s.pgmcc = self.cc.as_ref().map(Controller::stats).unwrap_or_default();
        s
    }

    /// TXW_TRAIL: the oldest sqn still held for repair (the next to send if none is held).
    pub fn txw_trail(&self) -> SeqNo {
        self.txw
            .packets
            .front()
            .map_or(self.first_unsent(), |p| p.sqn)
    }

    /// TXW_LEAD: the last sqn sent (trail − 1 before any).
    pub fn txw_lead(&self) -> SeqNo {
        self.first_unsent().sub(1)
    }

    fn first_unsent(&self) -> SeqNo {
        self.queue.front().map_or(self.next_sqn, |p| p.sqn)
    }

    /// Bytes accepted by `send` and not yet transmitted.
    pub fn queued_bytes(&self) -> usize {
        self.queue_bytes
    }

    /// True when every APDU has been transmitted and, after [`Source::close`], the FIN SPMs
    /// are out. Pending repairs do not count: NAKs (forged ones too) can keep asking for as
    /// long as they like, so a closing source answers them for its linger time, not until
    /// they stop.
    pub fn is_flushed(&self) -> bool {
        self.queue.is_empty()
            && self.parity_owed.is_empty()
            && self.spms_owed == 0
            && self.fins_owed == 0
    }

    /// Queues one APDU; it goes out as one ODATA, or as OPT_FRAGMENT fragments when larger than
    /// one TPDU (RFC 3208 §9.2, sized like OpenPGM: docs/wire-compatibility.md §6).
    pub fn send(&mut self, now: Instant, apdu: &[u8]) -> Result<(), SendError> {
        self.send_bytes(now, Bytes::copy_from_slice(apdu))
    }

    /// Like [`Source::send`], without copying `apdu`: fragments are slices of it.
    pub fn send_bytes(&mut self, _now: Instant, apdu: Bytes) -> Result<(), SendError> {
        if self.closing {
            return Err(SendError::Closed);
        }
        let len = apdu.len();
        let max_tsdu = self.cfg.max_tsdu().max(1);
        let frag_tsdu = self.cfg.max_fragment_tsdu().max(1);
        let count = if len <= max_tsdu {
            1
        } else {
            len.div_ceil(frag_tsdu)
        };
        if len > self.cfg.max_apdu
            || len > usize::from(u16::MAX)
            || count > self.cfg.txw_sqns as usize
        {
            return Err(SendError::TooLarge(len));
        }
        if self.queue_bytes > 0 && self.queue_bytes + len > self.cfg.send_buffer {
            return Err(SendError::WouldBlock);
        }
        let first = self.next_sqn;
        if count == 1 {
            self.enqueue(apdu, None);
        } else {
            for i in 0..count {
                let off = i * frag_tsdu;
                let part = apdu.slice(off..len.min(off + frag_tsdu));
                let fragment = Fragment {
                    first_sqn: first,
                    offset: off as u32,
                    apdu_len: len as u32,
                };
                self.enqueue(part, Some(fragment));
            }
        }
        self.stats.apdus_sent += 1;
        Ok(())
    }

    fn enqueue(&mut self, payload: Bytes, fragment: Option<Fragment>) {
        self.queue_bytes += payload.len();
        self.queue.push_back(TxPacket {
            sqn: self.next_sqn,
            fragment,
            payload_sum: ones_complement_sum(&payload),
            payload,
            queued_for: 0,
            ncf_pending: false,
            last_rdata: None,
            sent_at: Instant::ZERO,
        });
        self.next_sqn = self.next_sqn.next();
    }

    /// Ends the session: queued data still goes out, then 3 SPMs with OPT_FIN (RFC 3208 §9.7).
    /// NAKs keep being answered for as long as the driver keeps calling in.
    pub fn close(&mut self, _now: Instant) {
        if !self.closing {
            self.closing = true;
            self.fins_owed = 3;
        }
    }

    /// Feeds a packet received on the session's port: NAKs, NNAKs, SPMRs and (PGMCC) ACKs
    /// for this TSI.
    pub fn handle_packet(&mut self, now: Instant, src: IpAddr, _dst: IpAddr, packet: &[u8]) {
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
        // Upstream packets name our TSI as (GSI, dport) and come from our dport (§8.3).
        let ours = repr.gsi == self.cfg.tsi.gsi
            && repr.dport == self.cfg.tsi.sport
            && repr.sport == self.cfg.dport;
        match repr.body {
            Body::Nak(nak) if ours && repr.parity && self.on_demand.is_some() => {
                self.on_parity_nak(now, src, &nak, &repr.options);
            }
            Body::Nak(_) if ours && repr.parity => self.stats.parity_naks_ignored += 1,
            Body::Nak(nak) if ours => self.on_nak(now, src, &nak, &repr.options),
            Body::Nnak(_) if ours => self.stats.nnaks_received += 1,
            // PGMCC draft §3: ACKs clock the window; ACKs from others only vote.
            Body::Ack(ack) if ours && self.cc.is_some() => {
                if let Some(cc) = &mut self.cc {
                    cc.on_ack(now, src, ack, repr.options.pgmcc_feedback.as_ref());
                }
            }
            Body::Spmr if ours => {
                self.stats.spmrs_received += 1;
                // RFC 3208 §13.3.1: answer with an SPM, at most once per spmr_min_ivl.
                let recent = self
                    .last_spmr_answer
                    .is_some_and(|t| now.saturating_duration_since(t) < self.cfg.spmr_min_ivl);
                if !recent {
                    self.last_spmr_answer = Some(now);
                    self.spms_owed = self.spms_owed.max(1);
                }
            }
            _ => self.stats.ignored += 1,
        }
    }

    /// docs/wire-compatibility.md: like OpenPGM, only NAKs naming our NLA and one of our
    /// groups count.
    fn names_us(&self, nak: &Nak) -> bool {
        let group = nak.grp_nla == self.cfg.group || Some(nak.grp_nla) == self.cfg.second_group;
        nak.src_nla == self.cfg.nla && group
    }

    /// RFC 3208 §5.3: confirm with a multicast NCF, then repair from the window.
    fn on_nak(&mut self, now: Instant, src: IpAddr, nak: &Nak, options: &Options) {
        if !self.names_us(nak) {
            self.stats.naks_bad_nla += 1;
            return;
        }
        self.stats.naks_received += 1;
        // PGMCC draft §2.3: NAKs carry receivers' reports for the ACKer election.
        if let (Some(cc), Some(fb)) = (&mut self.cc, &options.pgmcc_feedback) {
            cc.on_nak_feedback(now, src, fb);
        }
        let list = options.nak_list.unwrap_or_default();
        let asked = 1 + list.as_slice().len() as u64;
        self.stats.nak_sqns_received += asked;
        // What this NAK may buy: the per-NAK bound, the room in its NAKer's repair queue (one
        // burst), then what its NAKer has left. Only sqns that get queued are charged: a
        // receiver that asks again for what is already on its way (its RDATA waits behind a
        // backlog) spends nothing, so its budget goes to the losses it still has.
        let budget = self.cfg.repair;
        let slot = naker_slot(src);
        let room = (budget.per_naker_burst as usize).saturating_sub(self.repairs.slot_len(slot));
        let naker = self.nakers[slot].get_or_insert_with(|| {
            TokenBucket::new(
                u64::from(budget.per_naker_rate),
                budget.per_naker_burst as usize,
                now,
            )
        });
        let mut left = naker.available(now).min(room as u64);
        let considered = asked.min(u64::from(budget.per_nak));
        self.stats.nak_sqns_over_budget += asked - considered;
        let mut queued = 0;
        let sqns = std::iter::once(&nak.sqn).chain(list.as_slice());
        for &sqn in sqns.take(considered as usize) {
            if !self.repair_wanted(now, slot, sqn) {
                continue;
            }
            if left == 0 {
                self.stats.nak_sqns_over_budget += 1;
                continue;
            }
            left -= 1;
            queued += 1;
            self.queue_repair(slot, sqn);
        }
        if let Some(naker) = &mut self.nakers[slot] {
            naker.take(now, queued);
        }
    }

    /// RFC 3208 §11.4: a parity NAK asks, per transmission group (`tg | (count − 1)`, in the
    /// header and OPT_NAK_LIST), for `count` parity packets. Each group that is whole in the
    /// window gets a parity NCF and as many fresh parity packets (RDATA with OPT_PARITY) as
    /// the parity sent for it within the elimination interval does not cover already. A
    /// parity packet costs its NAKer one sqn of its repair budget, as a selective repair does.
    fn on_parity_nak(&mut self, now: Instant, src: IpAddr, nak: &Nak, options: &Options) {
        if !self.names_us(nak) {
            self.stats.naks_bad_nla += 1;
            return;
        }
        let Some(k) = self.rs.as_ref().map(ReedSolomon::k) else {
            return;
        };
        self.stats.parity_naks_received += 1;
        let trail = self.txw_trail();
        let budget = self.cfg.repair;
        let slot = naker_slot(src);
        let list = options.nak_list.unwrap_or_default();
        let mask = k as u32 - 1;
        for &sqn in std::iter::once(&nak.sqn).chain(list.as_slice()) {
            let tg = SeqNo(sqn.0 & !mask);
            let count = (sqn.0 & mask) as u8 + 1;
            if !self.group_answerable(tg) {
                self.stats.parity_nak_groups_refused += 1;
                continue;
            }
            let naker = self.nakers[slot].get_or_insert_with(|| {
                TokenBucket::new(
                    u64::from(budget.per_naker_rate),
                    budget.per_naker_burst as usize,
                    now,
                )
            });
            // As for selective repairs: no more than one burst waits for a NAKer's slot.
            let room = (budget.per_naker_burst as usize)
                .saturating_sub(self.parity_repairs.slot_len(slot))
                .min(usize::from(count)) as u64;
            let granted = naker.take(now, room) as u8;
            self.stats.nak_sqns_over_budget += u64::from(count - granted);
            if granted == 0 {
                continue;
            }
            let Some(od) = self.on_demand.as_mut() else {
                return;
            };
            od.forget_before(trail);
            let indices = od.request(now, self.cfg.nak_elimination_ivl, tg, granted);
            self.stats.parity_eliminated += u64::from(granted) - indices.len() as u64;
            if indices.is_empty() {
                continue;
            }
            self.parity_ncf.push(sqn);
            for h in indices {
                self.parity_repairs.push(slot, (tg, h));
            }
        }
    }

    /// Parity can be sent for the group starting at `tg`: it is all in the transmit window
    /// and sent, or it is the leading group and its first packets are (a partial group: the
    /// parity covers that prefix, OPT_CURR_TGSIZE).
    fn group_answerable(&self, tg: SeqNo) -> bool {
        let lead = self.txw_lead();
        self.group_whole(tg)
            || (!self.txw.packets.is_empty()
                && lead.diff(tg) >= 0
                && self.group_of(lead) == tg
                && tg.diff(self.txw_trail()) >= 0)
    }

    /// The first sqn of `sqn`'s transmission group.
    fn group_of(&self, sqn: SeqNo) -> SeqNo {
        let k = self.rs.as_ref().map_or(1, ReedSolomon::k) as u32;
        SeqNo(sqn.0 & !(k - 1))
    }

    /// The group starting at `tg` is all in the transmit window and sent.
    fn group_whole(&self, tg: SeqNo) -> bool {
        let Some(k) = self.rs.as_ref().map(ReedSolomon::k) else {
            return false;
        };
        let Ok(start) = usize::try_from(tg.diff(self.txw_trail())) else {
            return false;
        };
        let mut group = self.txw.packets.range(start.min(self.txw.packets.len())..);
        group.len() >= k && (0..k).all(|i| group.next().is_some_and(|p| p.sqn == tg.add(i as u32)))
    }

    /// Whether `naker` asking for `sqn` calls for RDATA: it is in the window, not in that
    /// NAKer's repair queue already, and not repaired within the elimination interval (each
    /// refusal counted). However many NAKs ask, a sqn costs one NCF and one RDATA; it is
    /// queued for each NAKer that asks, so it goes out at the first of their turns: a NAKer
    /// with a long backlog (a NAK storm) cannot hold back a sqn that someone else needs.
    fn repair_wanted(&mut self, now: Instant, naker: usize, sqn: SeqNo) -> bool {
        let elim = self.cfg.nak_elimination_ivl;
        let Some(p) = self.txw.get_mut(sqn) else {
            // Outside the window: no NCF, so the receiver learns from the trail that it is gone.
            self.stats.nak_sqns_outside_window += 1;
            return false;
        };
        let recent = p
            .last_rdata
            .is_some_and(|t| now.saturating_duration_since(t) < elim);
        if p.queued_for & (1 << naker) != 0 || recent {
            self.stats.nak_sqns_eliminated += 1;
            return false;
        }
        true
    }

    /// Queues `sqn` (in the window, see [`Source::repair_wanted`]) for `naker`; the first
    /// NAKer to ask also gets it an NCF.
    fn queue_repair(&mut self, naker: usize, sqn: SeqNo) {
        let Some(p) = self.txw.get_mut(sqn) else {
            return;
        };
        let confirmed = p.queued_for != 0;
        p.queued_for |= 1 << naker;
        self.repairs.push(naker, sqn);
        if !confirmed && !p.ncf_pending {
            p.ncf_pending = true;
            self.ncf.push(sqn);
        }
    }

    /// Advances SPM timers (and the PGMCC ACK timeout). Calling it early or late is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(cc) = &mut self.cc {
            cc.handle_timeout(now);
        }
        self.expire_by_age(now);
        let ambient = *self.next_ambient.get_or_insert(now + self.cfg.spm_ambient);
        if ambient <= now {
            self.spms_owed = self.spms_owed.max(1);
            self.next_ambient = Some(now + self.cfg.spm_ambient);
        }
        if let Some(hb) = self.heartbeat {
            if hb.due <= now {
                self.spms_owed = self.spms_owed.max(1);
                let index = hb.index + 1;
                self.heartbeat = self.cfg.spm_heartbeat.get(index).map(|&ivl| Heartbeat {
                    index,
                    due: now + ivl,
                });
            }
        }
    }

    /// RFC 3208 Appendix F: with TXW_SECS, the trail advances past what was sent longer ago
    /// than that, with or without new data (a late joiner is offered no older history).
    fn expire_by_age(&mut self, now: Instant) {
        let Some(age) = self.cfg.txw_secs else {
            return;
        };
        while self
            .txw
            .packets
            .front()
            .is_some_and(|p| now.saturating_duration_since(p.sent_at) > age)
        {
            self.txw.pop_trail();
        }
    }

    /// When to call [`Source::handle_timeout`] / [`Source::poll_transmit`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.next_ambient;
        let mut at = |x: Instant| t = Some(t.map_or(x, |t: Instant| t.min(x)));
        if let Some(hb) = self.heartbeat {
            at(hb.due);
        }
        let bucket_ready = self
            .bucket
            .as_ref()
            .map_or(Instant::ZERO, TokenBucket::ready_at);
        if self.spms_owed > 0 || (self.fins_owed > 0 && self.queue.is_empty()) {
            at(Instant::ZERO);
        }
        // NCFs and RDATA wait for both buckets (see poll_transmit), so they are due when both
        // allow: returning "now" while the buckets hold them back would make drivers spin.
        // While they wait for ODATA to earn them credit, ODATA's own deadline stands.
        let repairs_owed = !self.repairs.is_empty()
            || !self.ncf.is_empty()
            || !self.parity_ncf.is_empty()
            || !self.parity_repairs.is_empty();
        if repairs_owed && self.repair_has_credit() {
            let repair_ready = self
                .repair_bucket
                .as_ref()
                .map_or(Instant::ZERO, TokenBucket::ready_at);
            at(bucket_ready.max(repair_ready));
        }
        // New data waits for the congestion window too; ACKs (a packet) or the ACK timeout
        // open it.
        let window_at = self
            .cc
            .as_ref()
            .map_or(Some(Instant::ZERO), Controller::send_at);
        if let Some(window_at) = window_at {
            if !self.queue.is_empty() || !self.parity_owed.is_empty() {
                at(bucket_ready.max(window_at));
            }
        }
        if let Some(deadline) = self.cc.as_ref().and_then(Controller::poll_timeout) {
            at(deadline);
        }
        // The trail's expiry, so that the window (and the trail SPMs advertise) keeps to
        // TXW_SECS while no data is sent.
        if let (Some(age), Some(p)) = (self.cfg.txw_secs, self.txw.packets.front()) {
            at(p.sent_at + age + Duration::from_millis(1));
        }
        t
    }

    /// Writes the next packet into `buf` (cleared first), or returns `None` when nothing may go
    /// now. Order: SPMs, NCFs, RDATA (within its cap), ODATA, FIN SPMs. With PGMCC, parity
    /// and ODATA also wait for the congestion window; repairs do not (they go first, within
    /// the repair budget: PGMCC must not starve them, docs/congestion.md).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        buf.clear();
        self.handle_timeout(now);
        if self.bucket.is_none() {
            if let Some(rate) = self.cfg.rate {
                self.bucket = Some(TokenBucket::new(rate, rate_depth(&self.cfg, rate), now));
            }
        }
        if self.repair_bucket.is_none() {
            let cap = self.cfg.repair.cap(self.cfg.rate);
            self.repair_bucket = Some(TokenBucket::new(cap, self.cfg.rate_burst, now));
        }
        if self.spms_owed > 0 {
            self.spms_owed -= 1;
            // RFC 3208 §9.7: every SPM after the last ODATA of a closed session carries FIN.
            let fin = self.closing && self.queue.is_empty();
            return Some(self.emit_spm(now, buf, fin));
        }
        // NCFs and RDATA share the repair cap, so a NAK storm cannot take more than it.
        if !self.ncf.is_empty() && self.repair_may_send(now) {
            return Some(self.emit_ncf(now, buf, false));
        }
        if !self.parity_ncf.is_empty() && self.repair_may_send(now) {
            return Some(self.emit_ncf(now, buf, true));
        }
        if let Some(t) = self.poll_rdata(now, buf) {
            return Some(t);
        }
        // RFC 3208 §11.4: on-demand parity only after the group's pro-active parity.
        while self.parity_owed.is_empty() {
            let Some((_, (tg, h))) = self.parity_repairs.peek() else {
                break;
            };
            if !self.repair_may_send(now) {
                break;
            }
            self.parity_repairs.pop();
            if let Some(t) = self.emit_parity(now, buf, tg, h, true) {
                return Some(t);
            }
        }
        while let Some(&(tg, h)) = self.parity_owed.front() {
            if !self.bucket.as_mut().is_none_or(|b| b.can_send(now)) || !self.window_open(now) {
                return None;
            }
            self.parity_owed.pop_front();
            if let Some(t) = self.emit_parity(now, buf, tg, h, false) {
                return Some(t);
            }
        }
        if !self.queue.is_empty() {
            if !self.bucket.as_mut().is_none_or(|b| b.can_send(now)) || !self.window_open(now) {
                return None;
            }
            return Some(self.emit_odata(now, buf));
        }
        if self.fins_owed > 0 {
            self.fins_owed -= 1;
            return Some(self.emit_spm(now, buf, true));
        }
        None
    }

    /// PGMCC lets new data go now (always true without congestion control).
    fn window_open(&self, now: Instant) -> bool {
        self.cc.as_ref().is_none_or(|cc| cc.may_send(now))
    }

    /// Whether an NCF or RDATA may go now: the rate limit and the repair cap allow it, and
    /// if ODATA waits, repairs have credit left.
    fn repair_may_send(&mut self, now: Instant) -> bool {
        self.repair_has_credit()
            && self.bucket.as_mut().is_none_or(|b| b.can_send(now))
            && self.repair_bucket.as_mut().is_none_or(|b| b.can_send(now))
    }

    /// Repairs go ahead of ODATA only while they have credit (see [`Source::repair_credit`]).
    fn repair_has_credit(&self) -> bool {
        self.queue.is_empty() || self.repair_credit > 0
    }

    /// Charges a packet of `len` PGM bytes to the rate limit, the repair cap and the repair
    /// credit.
    fn charge(&mut self, now: Instant, len: usize, repair: bool) {
        let wire = len + self.cfg.mtu.ip_overhead;
        self.stats.wire_bytes += wire as u64;
        if let Some(b) = &mut self.bucket {
            b.charge(now, wire);
        }
        if repair {
            if let Some(b) = &mut self.repair_bucket {
                b.charge(now, wire);
            }
            if !self.queue.is_empty() {
                self.repair_credit -= i64::try_from(wire).unwrap_or(i64::MAX);
            }
        } else {
            if let Some(peak) = self.odata_rate.as_mut().and_then(|m| m.add(now, wire)) {
                if let (Some(cap), Some(b)) =
                    (self.cfg.repair.unpaced_cap(peak), &mut self.repair_bucket)
                {
                    b.set_rate(now, cap);
                }
            }
            // ODATA earns repairs share / (1 − share) of its bytes, up to a burst's worth.
            let share = self.cfg.repair.clamped_share();
            let earned = (wire as f64 * share / (1.0 - share)) as i64;
            let depth =
                i64::try_from(self.cfg.rate_burst.max(2 * self.cfg.mtu.mtu)).unwrap_or(i64::MAX);
            self.repair_credit = (self.repair_credit + earned).min(depth);
        }
    }

    fn header(&self, body: Body, options: &Options) -> PacketRepr<'static> {
        PacketRepr {
            sport: self.cfg.tsi.sport,
            dport: self.cfg.dport,
            gsi: self.cfg.tsi.gsi,
            parity: false,
            var_pktlen: false,
            body,
            options: *options,
            payload: &[],
        }
    }

    /// RFC 3208 §8.1: SPM with the window edges and our NLA; OPT_FIN once closed (§9.7).
    fn emit_spm(&mut self, now: Instant, buf: &mut Vec<u8>, fin: bool) -> Transmit {
        let spm = Spm {
            spm_sqn: self.spm_sqn,
            trail: self.txw_trail(),
            lead: self.txw_lead(),
            path: self.cfg.nla,
        };
        let options = Options {
            fin,
            // RFC 3208 §9.4: late joiners may ask for repairs back to the trail.
            join: self.cfg.offer_join.then(|| self.txw_trail()),
            // RFC 3208 §11.8.1 bits (P = 0x02): docs/fec.md.
            parity_prm: self.cfg.fec.map(|f| ParityPrm {
                proactive: f.proactive_count() > 0,
                on_demand: f.is_on_demand(),
                tgs: u32::from(f.group_size()),
            }),
            ..Options::default()
        };
        self.header(Body::Spm(spm), &options).emit(buf);
        self.spm_sqn = self.spm_sqn.next();
        self.stats.spm_sent += 1;
        self.charge(now, buf.len(), false);
        Transmit::new(self.cfg.group, buf.len())
    }

    /// RFC 3208 §5.3: NCF multicast to the group, up to 63 sqns (§9.3); `parity`: a parity
    /// NCF (§11.3.2) confirming parity NAKs' `tg | (count − 1)` entries.
    fn emit_ncf(&mut self, now: Instant, buf: &mut Vec<u8>, parity: bool) -> Transmit {
        let queue = if parity {
            &mut self.parity_ncf
        } else {
            &mut self.ncf
        };
        let n = queue.len().min(MAX_NAK_LIST + 1);
        let sqns: Vec<SeqNo> = queue.drain(..n).collect();
        if !parity {
            for &sqn in &sqns {
                if let Some(p) = self.txw.get_mut(sqn) {
                    p.ncf_pending = false;
                }
            }
        }
        let mut options = Options::default();
        if sqns.len() > 1 {
            options.nak_list = Some(NakList::from_slice(&sqns[1..]));
        }
        let body = Body::Ncf(Nak {
            sqn: sqns[0],
            src_nla: self.cfg.nla,
            grp_nla: self.cfg.group,
        });
        PacketRepr {
            parity,
            ..self.header(body, &options)
        }
        .emit(buf);
        self.stats.ncf_sent += 1;
        self.charge(now, buf.len(), true);
        Transmit::new(self.cfg.group, buf.len())
    }

    fn poll_rdata(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        while let Some((slot, sqn)) = self.repairs.peek() {
            let owed = self
                .txw
                .get_mut(sqn)
                .is_some_and(|p| p.queued_for & (1 << slot) != 0);
            if !owed {
                // Fell off the trail while queued, or went out at another NAKer's turn.
                self.repairs.pop();
                continue;
            }
            if !self.repair_may_send(now) {
                return None;
            }
            self.repairs.pop();
            let trail = self.txw_trail();
            let p = self.txw.get_mut(sqn)?;
            p.queued_for = 0;
            p.last_rdata = Some(now);
            let p = p.clone();
            // RFC 3208 §5.3: RDATA carries the current trail (docs/wire-compatibility.md §6).
            self.emit_data(now, buf, Body::Rdata(Data { sqn, trail }), &p);
            self.stats.rdata_sent += 1;
            if let Some(cc) = self.cc.as_mut() {
                cc.on_repair_sent(now);
            }
            self.stats.rdata_bytes += p.payload.len() as u64;
            self.charge(now, buf.len(), true);
            self.reset_heartbeat(now);
            return Some(Transmit::new(self.cfg.group, buf.len()));
        }
        None
    }

    fn emit_odata(&mut self, now: Instant, buf: &mut Vec<u8>) -> Transmit {
        let Some(p) = self.queue.pop_front() else {
            return Transmit::new(self.cfg.group, 0);
        };
        self.queue_bytes -= p.payload.len();
        // Make room first so the trail we advertise is the one after this packet is stored.
        while !self.txw.packets.is_empty()
            && (self.txw.packets.len() >= self.cfg.txw_sqns as usize
                || self.txw.bytes + p.payload.len() > self.cfg.txw_max_bytes)
        {
            self.txw.pop_trail();
        }
        self.expire_by_age(now);
        let mut p = p;
        p.sent_at = now;
        let trail = self.txw.packets.front().map_or(p.sqn, |q| q.sqn);
        self.emit_data(now, buf, Body::Odata(Data { sqn: p.sqn, trail }), &p);
        if let Some(cc) = &mut self.cc {
            cc.on_odata_sent(now, Some(p.sqn));
        }
        self.stats.odata_sent += 1;
        self.stats.odata_bytes += p.payload.len() as u64;
        self.txw.bytes += p.payload.len();
        let sqn = p.sqn;
        self.txw.packets.push_back(p);
        self.charge(now, buf.len(), false);
        self.reset_heartbeat(now);
        if let Some(f) = self.cfg.fec {
            // The group is complete: its parity follows before the next ODATA.
            let k = u32::from(f.group_size());
            if sqn.0 & (k - 1) == k - 1 {
                let tg = SeqNo(sqn.0 & !(k - 1));
                self.parity_owed
                    .extend((0..f.proactive_count()).map(|h| (tg, h)));
            }
        }
        Transmit::new(self.cfg.group, buf.len())
    }

    /// RFC 3208 §11.4: parity packet `h` of the group starting at `tg`, with OPT_PARITY
    /// (OPT_VAR_PKTLEN when lengths differ), sqn `tg | h`: pro-active as ODATA, on demand
    /// (`repair`) as RDATA charged like one. `None` (counted) when the group is no longer
    /// whole in the window.
    fn emit_parity(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
        tg: SeqNo,
        h: u8,
        repair: bool,
    ) -> Option<Transmit> {
        let rs = self.rs.as_ref()?;
        let k = rs.k();
        let trail = self.txw_trail();
        let start = tg.diff(trail);
        let group: Vec<&TxPacket> = match usize::try_from(start) {
            Ok(i) if i < self.txw.packets.len() => self.txw.packets.range(i..).take(k).collect(),
            _ => Vec::new(),
        };
        // The group's packets, contiguous from `tg`: all k, or (on demand) the prefix of the
        // leading group sent so far.
        let j = group
            .iter()
            .enumerate()
            .take_while(|(i, p)| p.sqn == tg.add(*i as u32))
            .count();
        if j == 0 || (j < k && (!repair || self.group_of(self.txw_lead()) != tg)) {
            self.stats.parity_skipped += 1;
            return None;
        }
        // RFC 3208 §11.2: a partial group's parity treats its missing tail as empty packets;
        // OPT_CURR_TGSIZE says how many it covers.
        let mut tsdus: Vec<&[u8]> = group[..j].iter().map(|p| &p.payload[..]).collect();
        let mut frags: Vec<Option<Fragment>> = group[..j].iter().map(|p| p.fragment).collect();
        tsdus.resize(k, &[]);
        frags.resize(k, None);
        let (Ok(parity), Ok(fragment_encoded)) = (
            encode_parity(rs, &tsdus, usize::from(h)),
            encode_fragments(rs, &frags, usize::from(h)),
        ) else {
            self.stats.parity_skipped += 1;
            return None;
        };
        let data = Data {
            sqn: tg.add(u32::from(h)),
            trail,
        };
        let body = if repair {
            Body::Rdata(data)
        } else {
            Body::Odata(data)
        };
        // RFC 3208 §11.2: the group's OPT_FRAGMENTs travel encoded with its parity.
        let options = Options {
            fragment_encoded,
            curr_tgsize: (j < k).then_some(j as u32),
            ..Options::default()
        };
        let repr = PacketRepr {
            parity: true,
            var_pktlen: parity.var_pktlen,
            payload: &parity.bytes,
            ..self.header(body, &options)
        };
        repr.emit(buf);
        if let (Some(cc), false) = (&mut self.cc, repair) {
            // Parity sqns repeat the group's: a token, no new sqn sent.
            cc.on_odata_sent(now, None);
        }
        if repair {
            self.stats.on_demand_parity_sent += 1;
            if let Some(cc) = self.cc.as_mut() {
                cc.on_repair_sent(now);
            }
        } else {
            self.stats.parity_sent += 1;
        }
        self.stats.parity_bytes += parity.bytes.len() as u64;
        self.charge(now, buf.len(), repair);
        Some(Transmit::new(self.cfg.group, buf.len()))
    }

    /// ODATA or RDATA of `p`; with PGMCC, OPT_PGMCC_DATA with the time of sending (a repair
    /// too: its RTT sample is fresh, unlike OpenPGM's stored option) and the ACKer.
    fn emit_data(&self, now: Instant, buf: &mut Vec<u8>, body: Body, p: &TxPacket) {
        let options = Options {
            fragment: p.fragment,
            pgmcc_data: self.cc.as_ref().map(|cc| cc.data_option(now)),
            ..Options::default()
        };
        let repr = PacketRepr {
            payload: &p.payload,
            ..self.header(body, &options)
        };
        repr.emit_presummed(buf, p.payload_sum);
    }

    /// docs/wire-compatibility.md: every ODATA/RDATA restarts the heartbeat schedule.
    fn reset_heartbeat(&mut self, now: Instant) {
        self.heartbeat = self.cfg.spm_heartbeat.first().map(|&ivl| Heartbeat {
            index: 0,
            due: now + ivl,
        });
    }
}

/// Repairs owed (sqns for RDATA, or `(tg, index)` parity packets), one queue per NAKer slot
/// (see [`naker_slot`]), served round-robin: a NAKer that asks for a lot waits behind its own
/// requests, not in front of everyone else's.
#[derive(Debug)]
struct RepairQueue<T = SeqNo> {
    slots: Vec<VecDeque<T>>,
    /// The slot served next.
    turn: usize,
    len: usize,
}

impl<T> Default for RepairQueue<T> {
    fn default() -> Self {
        RepairQueue {
            slots: (0..NAKER_BUCKETS).map(|_| VecDeque::new()).collect(),
            turn: 0,
            len: 0,
        }
    }
}

impl<T: Copy> RepairQueue<T> {
    fn push(&mut self, slot: usize, item: T) {
        self.slots[slot % NAKER_BUCKETS].push_back(item);
        self.len += 1;
    }

    /// The slot served next and its first item (moving the turn to the next slot that has one).
    fn peek(&mut self) -> Option<(usize, T)> {
        if self.len == 0 {
            return None;
        }
        while self.slots[self.turn].is_empty() {
            self.turn = (self.turn + 1) % NAKER_BUCKETS;
        }
        self.slots[self.turn].front().map(|&item| (self.turn, item))
    }

    /// Takes the item [`RepairQueue::peek`] showed; the next turn goes to the next slot.
    fn pop(&mut self) -> Option<T> {
        let (_, item) = self.peek()?;
        self.slots[self.turn].pop_front();
        self.len -= 1;
        self.turn = (self.turn + 1) % NAKER_BUCKETS;
        Some(item)
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn len(&self) -> usize {
        self.len
    }

    fn slot_len(&self, slot: usize) -> usize {
        self.slots[slot].len()
    }
}

/// Which per-NAKer budget an address uses (FNV-1a over its bytes).
fn naker_slot(ip: IpAddr) -> usize {
    let bytes = match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let h = bytes.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    h as usize % NAKER_BUCKETS
}

/// How long a driver may be late waking for the rate bucket before the rate suffers.
const RATE_SLACK: Duration = Duration::from_millis(2);

/// The rate bucket's depth: `rate_burst`, or [`RATE_SLACK`]'s worth of the rate when that is
/// more. A paced sender sleeps until the bucket holds a run's worth (`RESUME_US`); woken
/// later than the depth allows, it loses the tokens in between. 64 KiB at 1.5 Gbit/s is
/// 350 µs, which left 175 µs of slack, less than a loaded 2-CPU machine's wake-up delay:
/// 1400 B raw PGM asked for 129 k msg/s reached 63–111 k from run to run (91–118 k with
/// this depth).
fn rate_depth(cfg: &SourceConfig, rate: u64) -> usize {
    let slack = u128::from(rate) * RATE_SLACK.as_micros() / 1_000_000;
    cfg.rate_burst
        .max(usize::try_from(slack).unwrap_or(usize::MAX))
}
