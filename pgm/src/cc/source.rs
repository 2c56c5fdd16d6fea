//! The source's side of PGMCC (PGMCC draft §3): who the ACKer is, the window its ACKs clock,
//! and the timeout that keeps a silent ACKer from stalling the session.

use std::{net::IpAddr, time::Duration};

use super::{
    acks::AckTracker,
    election::{inverse_throughput_sq, loss_fraction, replaces_acker, LOSS_FLOOR},
    tstamp,
    window::Window,
};
use crate::{
    config::PgmccConfig,
    time::Instant,
    wire::{options::PgmccData, options::PgmccFeedback, Ack, SeqNo},
};

/// An echoed timestamp older than this is forged or from another epoch: no RTT sample.
const MAX_RTT_MS: u32 = 60_000;

/// Where the ACKer's round trip is longer than the pacing floor, pacing sends at this many
/// windows per round trip: ACKs, not the pacer, clock the session.
const PACE_GAIN: f64 = 2.0;

/// A driver that wakes late may catch up this much of the pace at once.
const PACE_SLACK: Duration = Duration::from_millis(1);

/// PGMCC counters and state of a source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgmccStats {
    /// W now, whole packets.
    pub window: u64,
    /// The ACKer now (`None` while electing one).
    pub acker: Option<IpAddr>,
    /// The ACKer's smoothed RTT now (zero before a sample).
    pub rtt: Duration,
    /// The ACKer's loss rate now, as it reported it (0xffff = 100 %).
    pub loss_rate: u16,
    /// ACKers elected or replaced (the first election counts).
    pub acker_switches: u64,
    /// ACK packets for this session received.
    pub acks_received: u64,
    /// ACKs that did not drive the window: invalid (no feedback, RX_MAX not a sqn sent, the
    /// reporter not their sender) or not from the ACKer (their feedback still counts for the
    /// election).
    pub acks_ignored: u64,
    /// Losses the ACKer's ACKs showed (each halved the window).
    pub loss_events: u64,
    /// ACK timeouts (each reset the window).
    pub timeouts: u64,
}

#[derive(Debug, Clone, Copy)]
struct Acker {
    nla: IpAddr,
    /// M² of its last report (see [`inverse_throughput_sq`]).
    m2: f64,
    loss_rate: u16,
    /// SRTT and RTTVAR (RFC 6298 style) from its ACKs; restarted with each ACKer (§2.7).
    srtt: Option<(Duration, Duration)>,
}

/// The PGMCC state of a source.
#[derive(Debug)]
pub(crate) struct Controller {
    cfg: PgmccConfig,
    window: Window,
    acker: Option<Acker>,
    /// The current ACKer's ACK state, from its first ACK.
    tracker: Option<AckTracker>,
    /// After a loss the window is frozen until an ACK reaches this sqn (§2.2: one RTT).
    recover: Option<SeqNo>,
    /// Successive timeouts (§2.7: RETRY).
    retries: u32,
    timeout_at: Option<Instant>,
    /// The first and last sqn sent: an ACK's RX_MAX must lie between them.
    sent: Option<(SeqNo, SeqNo)>,
    /// New data may not go before this (pacing, [`PgmccConfig::pace_floor`]).
    pace_at: Instant,
    /// "No ACKer" in OPT_PGMCC_DATA: the unspecified address of our family.
    nobody: IpAddr,
    stats: PgmccStats,
}

impl Controller {
    pub(crate) fn new(cfg: PgmccConfig, nla: IpAddr) -> Self {
        Controller {
            window: Window::new(cfg.initial_window, cfg.ssthresh, cfg.max_window),
            cfg,
            acker: None,
            tracker: None,
            recover: None,
            retries: 0,
            timeout_at: None,
            sent: None,
            pace_at: Instant::ZERO,
            nobody: match nla {
                IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            },
            stats: PgmccStats::default(),
        }
    }

    /// OPT_PGMCC_DATA for a data packet sent now: our timestamp and the ACKer, or "nobody",
    /// which asks receivers to elect one (§2.1.1).
    pub(crate) fn data_option(&self, now: Instant) -> PgmccData {
        PgmccData {
            tstamp: tstamp(now),
            acker: self.acker.map_or(self.nobody, |a| a.nla),
        }
    }

    /// New data may go: T ≥ 1. Repairs never ask (they are bounded by the repair budget).
    /// When new data may go: `None` while the window is closed (an ACK or the timeout opens
    /// it), else the pacer's time.
    pub(crate) fn send_at(&self) -> Option<Instant> {
        self.window.can_send().then_some(self.pace_at)
    }

    pub(crate) fn may_send(&self, now: Instant) -> bool {
        self.send_at().is_some_and(|t| t <= now)
    }

    /// A repair (RDATA, on-demand parity) went out. Never held back by the window (the repair
    /// budget bounds repairs, and they must not starve: OpenPGM's trap), but it takes a token
    /// all the same, T going below zero if need be: what the ACKer's path carries stays within
    /// the window, and repairs are paid for with new data, as TCP's retransmissions are.
    pub(crate) fn on_repair_sent(&mut self, now: Instant) {
        self.window.on_send();
        self.arm(now);
    }

    /// ODATA `sqn` (or pro-active parity: `None`) went out: it takes a token and starts the
    /// ACK timeout (§2.7).
    pub(crate) fn on_odata_sent(&mut self, now: Instant, sqn: Option<SeqNo>) {
        self.window.on_send();
        self.pace_at = self.pace_at.max(now - PACE_SLACK) + self.pace_interval();
        if let Some(sqn) = sqn {
            self.sent = Some(self.sent.map_or((sqn, sqn), |(first, _)| (first, sqn)));
        }
        self.arm(now);
    }

    /// Starts the ACK timeout (§2.7) unless it runs: a packet went that the ACKer's ACKs must
    /// account for. Repairs too: when they take the last tokens and no ODATA is in flight, no
    /// ACK would ever reopen the window without it.
    fn arm(&mut self, now: Instant) {
        if self.timeout_at.is_none() {
            self.timeout_at = Some(now + self.rto());
        }
    }

    /// OPT_PGMCC_FEEDBACK on a NAK (already checked to be for this session): for the
    /// election only (§2.3).
    pub(crate) fn on_nak_feedback(&mut self, now: Instant, src: IpAddr, fb: &PgmccFeedback) {
        self.feedback(now, src, fb);
    }

    /// An ACK for this session (§3 "on ACK/NAK reception"). Validated before it changes
    /// anything: feedback present and naming its sender, RX_MAX a sqn we sent.
    pub(crate) fn on_ack(
        &mut self,
        now: Instant,
        src: IpAddr,
        ack: Ack,
        fb: Option<&PgmccFeedback>,
    ) {
        self.stats.acks_received += 1;
        let in_range = self
            .sent
            .is_some_and(|(first, last)| ack.rx_max.diff(first) >= 0 && ack.rx_max.diff(last) <= 0);
        let (Some(fb), true) = (fb, in_range) else {
            self.stats.acks_ignored += 1;
            return;
        };
        if self.feedback(now, src, fb) != Some(true) {
            self.stats.acks_ignored += 1;
            return;
        }
        self.retries = 0;
        if let Some(rtt) = rtt_ms(now, fb.tstamp) {
            self.rtt_sample(Duration::from_millis(u64::from(rtt)));
        }
        let Some(tracker) = self.tracker.as_mut() else {
            self.tracker = Some(AckTracker::new(ack.rx_max));
            self.rearm(now, ack.rx_max);
            return;
        };
        let Some(u) = tracker.update(ack.rx_max, ack.bitmap) else {
            return;
        };
        let lead = tracker.lead();
        let frozen = self.recover.is_some_and(|r| lead.diff(r) < 0);
        if !frozen {
            self.recover = None;
        }
        if frozen {
            self.window.grant(u.new);
        } else if u.loss {
            self.window.grant(u.new);
            self.window.on_loss();
            self.stats.loss_events += 1;
            // Frozen until the ACKs reach what is sent from now on.
            self.recover = self.sent.map(|(_, last)| last.next());
        } else {
            self.window.on_acked(u.new);
        }
        self.rearm(now, lead);
    }

    /// After an ACK from the ACKer up to `lead`: the timeout runs while packets are in
    /// flight; with none, one packet may go whatever T says.
    fn rearm(&mut self, now: Instant, lead: SeqNo) {
        let in_flight = self.sent.is_some_and(|(_, last)| last.diff(lead) > 0);
        if in_flight {
            self.timeout_at = Some(now + self.rto());
        } else {
            self.timeout_at = None;
            self.window.pipe_empty();
        }
    }

    /// A receiver's report (from an ACK or a NAK): elects, updates or replaces the ACKer
    /// (§2.3, §3). `Some(true)` when it comes from the ACKer (as it stands after the
    /// report), `Some(false)` from another receiver, `None` when it is not believed.
    fn feedback(&mut self, now: Instant, src: IpAddr, fb: &PgmccFeedback) -> Option<bool> {
        // The reporter must be who sent it, and an address one can send ACKs from.
        if fb.nla != src || fb.nla.is_unspecified() || fb.nla.is_multicast() {
            return None;
        }
        let rtt = rtt_ms(now, fb.tstamp)?;
        let p = loss_fraction(fb.loss_rate).max(LOSS_FLOOR);
        let m2 = inverse_throughput_sq(f64::from(rtt), p);
        match &mut self.acker {
            Some(a) if a.nla == fb.nla => {
                a.m2 = m2;
                a.loss_rate = fb.loss_rate;
                Some(true)
            }
            Some(a) if !replaces_acker(m2, a.m2, self.cfg.switch_factor) => Some(false),
            acker => {
                // §3: with no ACKer the first reporter is elected and earns a token.
                match acker {
                    None => self.window.grant(1),
                    // A worse receiver takes over: the window shrinks with the throughput
                    // ratio (M ∝ 1 / throughput), or a window opened by a fast ACKer's ACKs
                    // floods the slow path for several of its RTTs.
                    Some(old) => self
                        .window
                        .scale((old.m2 / m2).sqrt(), self.cfg.initial_window),
                }
                *acker = Some(Acker {
                    nla: fb.nla,
                    m2,
                    loss_rate: fb.loss_rate,
                    srtt: None,
                });
                self.tracker = None;
                self.recover = None;
                self.retries = 0;
                self.stats.acker_switches += 1;
                Some(true)
            }
        }
    }

    fn rtt_sample(&mut self, rtt: Duration) {
        let Some(a) = self.acker.as_mut() else {
            return;
        };
        a.srtt = Some(match a.srtt {
            None => (rtt, rtt / 2),
            Some((srtt, var)) => {
                let delta = srtt.abs_diff(rtt);
                (srtt * 7 / 8 + rtt / 8, var * 3 / 4 + delta / 4)
            }
        });
    }

    /// The pacer's gap between packets of new data. Where the ACKer's SRTT is at least the
    /// floor, its ACKs clock the window and the pacer only smooths bursts: SRTT / (gain × W).
    /// Below the floor the pacer is the clock: W per floor, so the session is a TCP flow whose
    /// round trip is the floor, and the window opens by one packet per floor (a window's worth
    /// of ACKs) rather than per sub-millisecond round trip. Both give W per max(SRTT, floor).
    fn pace_interval(&self) -> Duration {
        let srtt = self
            .acker
            .and_then(|a| a.srtt)
            .map_or(Duration::ZERO, |(s, _)| s);
        let floor = self.cfg.pace_floor;
        let (rtt, gain) = if srtt >= floor {
            (srtt, PACE_GAIN)
        } else {
            (floor, 1.0)
        };
        rtt.div_f64(gain * self.window.size())
    }

    /// The ACK timeout (§2.7): SRTT + 4·RTTVAR of the ACKer within the configured bounds.
    fn rto(&self) -> Duration {
        match self.acker.and_then(|a| a.srtt) {
            Some((srtt, var)) => (srtt + var * 4).clamp(self.cfg.min_timeout, self.cfg.max_timeout),
            None => self.cfg.initial_timeout,
        }
    }

    /// §3 "on timeout expiration": W = T = IW; after `retry_max` in a row the ACKer is
    /// dropped and the next data asks for a new one.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.timeout_at.is_none_or(|t| t > now) {
            return;
        }
        self.timeout_at = None;
        self.stats.timeouts += 1;
        self.window.reset(self.cfg.initial_window);
        self.recover = None;
        self.retries += 1;
        if self.retries >= self.cfg.retry_max && self.acker.is_some() {
            self.acker = None;
            self.tracker = None;
            self.retries = 0;
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.timeout_at
    }

    #[expect(
        clippy::cast_sign_loss,
        clippy::cast_possible_truncation,
        reason = "W is within 1..=max_window"
    )]
    pub(crate) fn stats(&self) -> PgmccStats {
        let mut s = self.stats.clone();
        s.window = self.window.size() as u64;
        s.acker = self.acker.map(|a| a.nla);
        s.rtt = self
            .acker
            .and_then(|a| a.srtt)
            .map_or(Duration::ZERO, |(s, _)| s);
        s.loss_rate = self.acker.map_or(0, |a| a.loss_rate);
        s
    }
}

/// The RTT an echoed timestamp gives (§2.5.1), if it is believable.
fn rtt_ms(now: Instant, echoed: u32) -> Option<u32> {
    let rtt = tstamp(now).wrapping_sub(echoed);
    (rtt <= MAX_RTT_MS).then_some(rtt)
}
