//! A receiver's side of PGMCC (PGMCC draft §4): per session, the loss rate it reports, the
//! timestamp it echoes, the ACK bitmap, and the budget of ACKs the session may make it send.

use std::{net::IpAddr, time::Duration};

use crate::{
    config::PgmccConfig,
    rate::TokenBucket,
    time::Instant,
    wire::{options::PgmccFeedback, Ack, SeqNo},
};

/// A jump of the highest sqn further than this is not believed as loss (a leap, or forged):
/// the filter restarts from the new sqn.
const MAX_GAP: u32 = 4096;

/// PGMCC state of one session at a receiver.
#[derive(Debug)]
pub(crate) struct Reporter {
    /// §2.6: EWMA of x_i (1 = sqn i lost), 0..=1.
    loss: f64,
    /// RX_MAX: the highest sqn received (§2.1.2).
    rx_max: Option<SeqNo>,
    /// Bit i: RX_MAX − i received.
    bitmap: u32,
    /// The latest OPT_PGMCC_DATA timestamp and when it arrived (§2.5.1).
    tstamp: Option<(u32, Instant)>,
    /// The ACKer the latest ODATA named (unspecified: an election). RDATA is judged by it:
    /// OpenPGM's RDATA repeats the option of the original ODATA, ACKer included.
    pub(crate) acker: Option<IpAddr>,
    /// An election report is due then (§2.3.1).
    pub(crate) report_due: Option<Instant>,
    /// When the last election report was scheduled: one per election back-off interval.
    last_report: Option<Instant>,
    /// A report of ours (ACK, or NAK with feedback) went to the source. Until then we report
    /// whoever is ACKer: the first unicast packet to the source must not be a NAK sent under
    /// congestion (docs/congestion.md, "the first ACKer": address resolution).
    pub(crate) introduced: bool,
    acks: TokenBucket,
}

impl Reporter {
    pub(crate) fn new(cfg: &PgmccConfig, now: Instant) -> Self {
        Reporter {
            loss: 0.0,
            rx_max: None,
            bitmap: 0,
            tstamp: None,
            acker: None,
            report_due: None,
            last_report: None,
            introduced: false,
            acks: TokenBucket::new(
                u64::from(cfg.ack_rate.max(1)),
                cfg.ack_burst.max(1) as usize,
                now,
            ),
        }
    }

    /// A data packet `sqn` (ODATA or RDATA) carrying timestamp `tstamp` arrived; `odata`:
    /// it is new data, which drives the loss filter (§2.6: a repair does not undo a loss).
    pub(crate) fn on_data(&mut self, now: Instant, sqn: SeqNo, tstamp: u32, odata: bool, w: f64) {
        self.tstamp = Some((tstamp, now));
        let Some(max) = self.rx_max else {
            self.rx_max = Some(sqn);
            self.bitmap = 1;
            return;
        };
        let d = sqn.diff(max);
        if d > 0 {
            let ahead = d.unsigned_abs();
            if ahead > MAX_GAP {
                self.rx_max = Some(sqn);
                self.bitmap = 1;
                return;
            }
            if odata {
                // §2.6: p = (1 − w)·p + w·x per sqn; `ahead − 1` losses then one arrival.
                // `ahead` ≤ MAX_GAP, so the exponent fits.
                let keep = (1.0 - w).powi(i32::try_from(ahead - 1).unwrap_or(i32::MAX));
                self.loss = self.loss * keep + (1.0 - keep);
                self.loss *= 1.0 - w;
            }
            self.bitmap = self.bitmap.checked_shl(ahead).unwrap_or(0) | 1;
            self.rx_max = Some(sqn);
        } else if d.unsigned_abs() < u32::BITS {
            self.bitmap |= 1 << d.unsigned_abs();
        }
    }

    /// The loss rate in OPT_PGMCC_FEEDBACK's fixed point.
    #[expect(
        clippy::cast_sign_loss,
        clippy::cast_possible_truncation,
        reason = "clamped to 0..=1 first: the product is within 0..=u16::MAX"
    )]
    pub(crate) fn loss_rate(&self) -> u16 {
        (self.loss.clamp(0.0, 1.0) * f64::from(u16::MAX)).round() as u16
    }

    /// OPT_PGMCC_FEEDBACK as of now: the timestamp plus the time it waited here (§2.5.1).
    pub(crate) fn feedback(&self, now: Instant, nla: IpAddr) -> Option<PgmccFeedback> {
        let (ts, at) = self.tstamp?;
        let held = now.saturating_duration_since(at).as_millis();
        Some(PgmccFeedback {
            tstamp: ts.wrapping_add(u32::try_from(held).unwrap_or(u32::MAX)),
            loss_rate: self.loss_rate(),
            nla,
        })
    }

    /// The ACK body (§2.1.2).
    pub(crate) fn ack(&self) -> Option<Ack> {
        Some(Ack {
            rx_max: self.rx_max?,
            bitmap: self.bitmap,
        })
    }

    /// One ACK from the session's budget, if it has one left.
    pub(crate) fn take_ack(&mut self, now: Instant) -> bool {
        self.acks.take(now, 1) == 1
    }

    /// The source asks for an ACKer: report once, after a random wait drawn by the caller,
    /// unless a report is pending or was scheduled less than `ivl` ago.
    pub(crate) fn election(&mut self, now: Instant, ivl: Duration, wait: Duration) {
        let recent = self
            .last_report
            .is_some_and(|t| now.saturating_duration_since(t) < ivl);
        if self.report_due.is_none() && !recent {
            self.report_due = Some(now + wait);
            self.last_report = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reporter() -> Reporter {
        Reporter::new(&PgmccConfig::default(), Instant::ZERO)
    }

    #[test]
    fn loss_filter_follows_the_loss_fraction() {
        let mut r = reporter();
        let w = 500.0 / 65536.0;
        // Every 10th sqn lost, for long enough that the filter settles.
        for i in 0..20_000u32 {
            if i % 10 != 9 {
                r.on_data(Instant::ZERO, SeqNo(i), 0, true, w);
            }
        }
        let p = f64::from(r.loss_rate()) / 65535.0;
        assert!((p - 0.1).abs() < 0.03, "{p}");
        // Repairs fill the bitmap but do not undo the loss.
        r.on_data(Instant::ZERO, SeqNo(19_989), 0, false, w);
        let ack = r.ack().unwrap();
        assert_eq!(ack.rx_max, SeqNo(19_998));
        assert_eq!(ack.bitmap & 0b11_1111_1111, 0b11_1111_1111);
    }

    #[test]
    fn timestamp_echo_adds_the_wait() {
        let mut r = reporter();
        let nla: IpAddr = "10.0.0.9".parse().unwrap();
        assert!(r.feedback(Instant::ZERO, nla).is_none());
        r.on_data(Instant::from_millis(5), SeqNo(1), 1000, true, 0.01);
        let fb = r.feedback(Instant::from_millis(12), nla).unwrap();
        assert_eq!((fb.tstamp, fb.nla, fb.loss_rate), (1007, nla, 0));
    }

    #[test]
    fn a_leap_is_not_loss() {
        let mut r = reporter();
        r.on_data(Instant::ZERO, SeqNo(0), 0, true, 0.01);
        r.on_data(Instant::ZERO, SeqNo(1_000_000), 0, true, 0.01);
        assert_eq!(r.loss_rate(), 0);
        assert_eq!(r.ack().unwrap().bitmap, 1);
    }

    #[test]
    fn ack_budget() {
        let mut r = reporter();
        let sent = (0..10_000).filter(|_| r.take_ack(Instant::ZERO)).count();
        assert_eq!(sent, PgmccConfig::default().ack_burst as usize);
    }
}
