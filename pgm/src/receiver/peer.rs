//! One source session as a receiver sees it, and how much of what the network says about it
//! the receiver believes.
//!
//! PGM has no authentication: anyone who sees one packet of a session can forge more of it.
//! What a peer keeps is therefore bounded by evidence (docs/reliability.md):
//!
//! - **Probation.** A new session spans at most `probation_sqns` and is not announced, nor its
//!   losses reported, until it is *confirmed*: two sqns delivered in order, or data and an SPM
//!   that agree.
//! - **NAK credit.** Every packet heard from the session pays for a few NAK packets; a session
//!   that goes quiet gets no more NAKs, so forged packets buy a bounded number of NAKs each.
//! - **Two agree.** A trail advertised by the source (ODATA, RDATA, SPM) only ends recovery of
//!   the sqns before it once the previous advertisement agrees (the earlier of the two
//!   applies), so one forged packet cannot declare a window lost.
//! - **Leaps.** Data more than a window away from the window, or opening a gap larger than
//!   the session's NAK credit could ask for (its *reach*), is held aside; only
//!   [`LEAP_CONFIRM`] packets of one new position, with nothing of the old one in between,
//!   move the window there, and then only as far back as the reach.

use std::net::IpAddr;

use bytes::Bytes;

use super::window::Window;
use crate::{
    config::ReceiverLimits,
    time::Instant,
    wire::{Fragment, SeqNo},
};

/// Data packets of one new position (none of the old position in between) that make a
/// window follow a leap.
pub(crate) const LEAP_CONFIRM: usize = 3;

/// How close to each other the packets of a new position must be.
const LEAP_NEAR: u32 = 1024;

/// Far enough in the future to mean "never".
pub(crate) const NEVER: Instant = Instant::from_micros(u64::MAX);

/// Where a session stands, as a receiver sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerState {
    /// On probation: not announced, its losses not reported (see the module docs of
    /// `pgm::receiver`).
    #[default]
    Probation,
    /// Confirmed: data is delivered and losses reported.
    Active,
    /// Its source sent an SPM with OPT_FIN: the session ends once what is missing is
    /// repaired or given up.
    Ending,
}

impl PeerState {
    /// Every state, in order (for reports that list each one).
    pub const ALL: [PeerState; 3] = [PeerState::Probation, PeerState::Active, PeerState::Ending];

    /// A lower-case name: `probation`, `active`, `ending`.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Probation => "probation",
            PeerState::Active => "active",
            PeerState::Ending => "ending",
        }
    }
}

/// Counters of one session. Counters only grow while the session is tracked; the fields marked
/// "now" are its current fill. Cheap to take: plain numbers, no allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerStats {
    /// Out of probation (see the module docs of `pgm::receiver`).
    pub confirmed: bool,
    /// Probation, active or ending.
    pub state: PeerState,
    /// Packets heard from the session.
    pub packets: u64,
    /// ODATA packets accepted.
    pub odata_received: u64,
    /// RDATA packets accepted.
    pub rdata_received: u64,
    /// Payload bytes of the ODATA and RDATA accepted.
    pub data_bytes: u64,
    /// Gaps filled by RDATA or late ODATA.
    pub repaired: u64,
    /// Data packets already held, delivered or given up on (with an A/B session, the copy
    /// that arrived second).
    pub duplicates: u64,
    /// APDUs delivered.
    pub apdus_delivered: u64,
    /// Sqns reported lost (unrecoverable).
    pub lost_sqns: u64,
    /// NAK packets sent to the session's source.
    pub naks_sent: u64,
    /// Sqns requested in those NAKs.
    pub nak_sqns_sent: u64,
    /// Sqns whose NAK was suppressed in back-off by an NCF or another receiver's NAK.
    pub naks_suppressed: u64,
    /// NCFs received from the session's source.
    pub ncf_received: u64,
    /// Sqns missing now.
    pub missing_now: u64,
    /// Sqns the receive window spans now.
    pub window_sqns: u64,
    /// Payload bytes held now.
    pub window_bytes: u64,
    /// RXW_LEAD now: the newest sqn seen (`None` before any data).
    pub window_lead: Option<SeqNo>,
    /// RXW_TRAIL now: the oldest sqn still held or awaited (`None` before any data).
    pub window_trail: Option<SeqNo>,
    /// NAK packets the session's traffic has paid for and that were not sent yet.
    pub nak_credit: u32,
    /// The loss rate we report to its source with PGMCC (0xffff = 100 %).
    pub pgmcc_loss_rate: u16,
    /// When a packet was last heard from the session (engine time).
    pub last_heard: Instant,
}

/// Data held aside while the receiver finds out whether a session really leapt.
#[derive(Debug, Default)]
pub(crate) struct Leap {
    /// The packets of the new position, distinct sqns, at most [`LEAP_CONFIRM`].
    pub(crate) held: Vec<(SeqNo, Bytes, Option<Fragment>)>,
}

impl Leap {
    /// Adds a packet of a far position; true once [`LEAP_CONFIRM`] distinct sqns within `span`
    /// of each other were seen. A packet far from the ones held starts the count again.
    pub(crate) fn observe(
        &mut self,
        sqn: SeqNo,
        payload: &[u8],
        fragment: Option<Fragment>,
        span: u32,
    ) -> bool {
        let near = |s: SeqNo| sqn.diff(s).unsigned_abs() < span.min(LEAP_NEAR);
        if !self.held.iter().all(|&(s, ..)| near(s)) {
            self.held.clear();
        }
        if !self.held.iter().any(|&(s, ..)| s == sqn) {
            self.held
                .push((sqn, Bytes::copy_from_slice(payload), fragment));
        }
        self.held.len() >= LEAP_CONFIRM
    }
}

/// One source session as seen by this receiver.
#[derive(Debug)]
pub(crate) struct Peer {
    /// Source path NLA from the SPMs: where NAKs go (docs/wire-compatibility.md).
    pub(crate) nla: Option<IpAddr>,
    /// An NLA named by the last SPM that differs from `nla`: adopted when the next SPM names
    /// it too, so one forged SPM cannot redirect the NAKs.
    pub(crate) nla_candidate: Option<IpAddr>,
    /// IP source of the last packet: where NAKs go while no SPM has named an NLA, and where
    /// the unicast SPMR copy goes.
    pub(crate) ip_src: IpAddr,
    /// Destination (group) of the last multicast packet: echoed in NAKs.
    pub(crate) group: IpAddr,
    pub(crate) last_spm_sqn: Option<SeqNo>,
    pub(crate) spmr_due: Option<Instant>,
    pub(crate) expiry: Instant,
    /// An SPM with OPT_FIN ended the session at `fin_lead` (data beyond it proves it false).
    pub(crate) fin: Option<SeqNo>,
    pub(crate) window: Option<Window>,
    /// [`Peer::earliest`] as last indexed in `Receiver::deadlines`: the key to remove when
    /// it changes. Equal to `earliest()` whenever the receiver is between calls.
    pub(crate) deadline: Instant,
    /// [`Peer::footprint`] as last counted in the receiver's memory total.
    pub(crate) accounted: usize,
    /// Out of probation.
    pub(crate) confirmed: bool,
    /// SPMs that agreed with the data seen (half of what confirms a session).
    pub(crate) spm_agreements: u32,
    /// The lead of an SPM heard before any data (the source's announcement at its start):
    /// the first data agrees with it when it follows closely.
    pub(crate) spm_lead_before_data: Option<SeqNo>,
    /// `PeerJoined` was reported (at its first delivered APDU).
    pub(crate) announced: bool,
    /// When a packet was last heard from the session.
    pub(crate) heard: Instant,
    /// NAK packets its traffic paid for, not yet sent.
    pub(crate) credit: u32,
    /// NAK timers wait until then: [`NEVER`] while the credit is spent (the next packet
    /// heard lifts it), or when the global NAK rate or the out-queue allow again.
    pub(crate) naks_blocked: Option<Instant>,
    /// The trail the source advertised last (see "two agree" in the module docs).
    pub(crate) advertised_trail: Option<SeqNo>,
    /// OPT_JOIN's minimum sqn (RFC 3208 §9.4), the latest heard: a late joiner asks for
    /// nothing older.
    pub(crate) join_min: Option<SeqNo>,
    /// Catching up ([`crate::JoinPolicy::AdvertisedTrail`]): the window still reaches back
    /// towards the advertised history, and delivers nothing until it got there.
    pub(crate) reaching_back: bool,
    /// Catching up: the last sqn seen when the session was confirmed; once everything up to
    /// it is delivered (or lost), `CaughtUp` is reported.
    pub(crate) catch_up_lead: Option<SeqNo>,
    pub(crate) leap: Option<Leap>,
    /// Its FEC transmission groups, once an SPM gave a usable OPT_PARITY_PRM (FEC on).
    pub(crate) fec: Option<super::fec::Groups>,
    /// PGMCC state, once its data carried OPT_PGMCC_DATA (PGMCC on).
    pub(crate) cc: Option<crate::cc::receiver::Reporter>,
    pub(crate) stats: PeerStats,
}

impl Peer {
    pub(crate) fn new(now: Instant, src: IpAddr, dst: IpAddr, expiry: Instant) -> Self {
        Peer {
            nla: None,
            nla_candidate: None,
            ip_src: src,
            group: dst,
            last_spm_sqn: None,
            spmr_due: None,
            expiry,
            fin: None,
            window: None,
            deadline: Instant::ZERO,
            accounted: 0,
            confirmed: false,
            spm_agreements: 0,
            spm_lead_before_data: None,
            announced: false,
            heard: now,
            credit: 0,
            naks_blocked: None,
            advertised_trail: None,
            join_min: None,
            reaching_back: false,
            catch_up_lead: None,
            leap: None,
            fec: None,
            cc: None,
            stats: PeerStats::default(),
        }
    }

    /// A packet of the session arrived: it pays for NAKs and lifts a credit block.
    pub(crate) fn hear(&mut self, now: Instant, limits: &ReceiverLimits) {
        self.heard = now;
        self.stats.packets += 1;
        self.credit = self
            .credit
            .saturating_add(limits.nak_credit_per_packet)
            .min(limits.nak_credit_max);
        if self.naks_blocked == Some(NEVER) {
            self.naks_blocked = None;
        }
    }

    /// How many missing sqns the session's NAK credit could ask for: the largest gap one
    /// packet may open (a gap costs work and memory per sqn, so it must be paid for by the
    /// traffic heard, like the NAKs that repair it).
    pub(crate) fn reach(&self) -> u32 {
        self.credit
            .saturating_mul(crate::wire::options::MAX_NAK_LIST as u32 + 1)
    }

    /// How many sqns the window may span: the receive window once confirmed, the probation
    /// window before.
    pub(crate) fn span(&self, rxw_sqns: u32, limits: &ReceiverLimits) -> u32 {
        if self.confirmed {
            rxw_sqns.max(1)
        } else {
            limits.probation_sqns.clamp(1, rxw_sqns.max(1))
        }
    }

    /// The trail to act on when the source advertises `trail`: the earlier of it and the one
    /// advertised before (nothing for the first).
    pub(crate) fn agreed_trail(&mut self, trail: SeqNo) -> Option<SeqNo> {
        self.advertised_trail
            .replace(trail)
            .map(|prev| prev.min_serial(trail))
    }

    /// An SPM names `nla`: adopted at once if none is known, else when two SPMs in a row name it.
    pub(crate) fn spm_nla(&mut self, nla: IpAddr) {
        match self.nla {
            None => self.nla = Some(nla),
            Some(known) if known == nla => self.nla_candidate = None,
            Some(_) if self.nla_candidate == Some(nla) => {
                self.nla = Some(nla);
                self.nla_candidate = None;
            }
            Some(_) => self.nla_candidate = Some(nla),
        }
    }

    /// Memory the window and the data held aside for a leap hold (see
    /// `ReceiverLimits::max_total_bytes`).
    pub(crate) fn footprint(&self) -> usize {
        let held = self.leap.as_ref().map_or(0, |l| {
            l.held
                .iter()
                .map(|(_, p, _)| p.len() + crate::config::SLOT_COST)
                .sum()
        });
        let fec = self.fec.as_ref().map_or(0, super::fec::Groups::bytes);
        self.window.as_ref().map_or(0, Window::footprint) + held + fec
    }

    /// The peer's next timer: its earliest NAK deadline (RFC 3208 §6.3) unless NAKs are
    /// blocked, the end of its oldest recovery, SPMR (§13.3.2) or expiry, whichever comes first.
    pub(crate) fn earliest(&self, max_recovery: std::time::Duration) -> Instant {
        let mut t = self.expiry;
        if let Some(s) = self.spmr_due {
            t = t.min(s);
        }
        if let Some(r) = self.cc.as_ref().and_then(|c| c.report_due) {
            t = t.min(r);
        }
        if let Some(w) = &self.window {
            if let Some(nak) = w.next_deadline() {
                t = t.min(self.naks_blocked.map_or(nak, |b| nak.max(b)));
            }
            if let Some(since) = w.oldest_missing() {
                t = t.min(since + max_recovery);
            }
        }
        t
    }

    /// Counters, with the window's current fill.
    pub(crate) fn stats(&self) -> PeerStats {
        let mut s = self.stats.clone();
        s.confirmed = self.confirmed;
        s.state = if !self.confirmed {
            PeerState::Probation
        } else if self.fin.is_some() {
            PeerState::Ending
        } else {
            PeerState::Active
        };
        s.nak_credit = self.credit;
        s.pgmcc_loss_rate = self
            .cc
            .as_ref()
            .map_or(0, crate::cc::receiver::Reporter::loss_rate);
        s.last_heard = self.heard;
        if let Some(w) = &self.window {
            s.missing_now = w.missing_count() as u64;
            s.window_sqns = w.slots.len() as u64;
            s.window_bytes = w.bytes as u64;
            s.window_lead = Some(w.lead());
            s.window_trail = Some(w.trail);
        }
        s
    }
}
