//! One direction of a node's attachment to the network: its impairments and their state.

use std::{ops::Range, time::Duration};

use rand::{rngs::SmallRng, Rng};

use super::DropReason;
use crate::time::Instant;

/// Impairments of one link direction (a node's egress or ingress).
///
/// The default is an ideal link: no delay, no loss, infinitely fast. A packet crosses the stages
/// in this order: filter, link down, rate-limited tail-drop queue, random loss, then delay
/// (plus jitter and reordering) and duplication. Loss comes after the queue because a packet lost
/// on the wire has still used the link's capacity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkConfig {
    /// Fixed propagation delay added to every packet.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `0..=jitter`, independently per packet. When it exceeds
    /// the gap between two packets, they can arrive out of order.
    pub jitter: Duration,
    /// Probability that a packet is lost, independently of every other packet.
    pub loss: f64,
    /// Bursty loss, on top of `loss`.
    pub burst_loss: Option<GilbertElliott>,
    /// Probability that a packet is delivered twice. The copy gets its own jitter.
    pub duplicate: f64,
    /// Probability that a packet is held back by `reorder_delay`, so that later ones overtake it.
    pub reorder: f64,
    /// How long a reordered packet is held back.
    pub reorder_delay: Duration,
    /// Serialization rate in bytes per second: a packet occupies the link for `len / rate`, and
    /// packets queue behind it. `None` is infinitely fast; `Some(0)` carries nothing.
    pub rate: Option<u64>,
    /// Tail-drop limit, in bytes, of the queue in front of a rate-limited link, counting the
    /// packet being serialized. `None` is unbounded. Ignored without `rate`.
    pub queue_limit: Option<usize>,
    /// Intervals during which the link drops everything entering it.
    pub down: Vec<Range<Instant>>,
}

/// The Gilbert–Elliott two-state loss model, stepped once per packet.
///
/// In the good state only [`LinkConfig::loss`] applies; in the bad state a packet is additionally
/// lost with probability `loss_in_bad`. Mean burst length is `1 / p_bad_to_good` packets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GilbertElliott {
    /// Per-packet probability of moving from the good to the bad state.
    pub p_good_to_bad: f64,
    /// Per-packet probability of moving from the bad to the good state.
    pub p_bad_to_good: f64,
    /// Loss probability while in the bad state.
    pub loss_in_bad: f64,
}

impl GilbertElliott {
    /// Long-run loss rate of this model alone (the stationary bad-state share times its loss).
    pub fn mean_loss(&self) -> f64 {
        let transitions = self.p_good_to_bad + self.p_bad_to_good;
        if transitions <= 0.0 {
            return 0.0;
        }
        self.p_good_to_bad / transitions * self.loss_in_bad
    }
}

/// A content filter: returns `true` to drop the packet.
pub type Filter = Box<dyn FnMut(&[u8]) -> bool>;

/// When a packet that survived a link comes out of it: once, or twice if duplicated.
pub(super) type Arrivals = (Instant, Option<Instant>);

/// A link direction: its configuration plus the state the impairments carry between packets.
pub(super) struct Link {
    pub(super) config: LinkConfig,
    pub(super) filter: Option<Filter>,
    /// Gilbert–Elliott state; links start good.
    bad: bool,
    /// When the last queued byte finishes serializing, in nanoseconds: microseconds would round
    /// every packet and skew the throughput of small packets on fast links by several percent.
    busy_until_ns: u64,
}

impl Link {
    pub(super) fn new() -> Self {
        Link {
            config: LinkConfig::default(),
            filter: None,
            bad: false,
            busy_until_ns: 0,
        }
    }

    /// Sends `packet` into the link at `now`: when it comes out, or why it was dropped.
    ///
    /// Randomness is drawn only for impairments that are configured, so an ideal link consumes
    /// none and does not perturb the draws of the others.
    pub(super) fn transit(
        &mut self,
        now: Instant,
        packet: &[u8],
        rng: &mut SmallRng,
    ) -> Result<Arrivals, DropReason> {
        if self.filter.as_mut().is_some_and(|drop| drop(packet)) {
            return Err(DropReason::Filter);
        }
        if self.config.down.iter().any(|down| down.contains(&now)) {
            return Err(DropReason::LinkDown);
        }
        let departure = match self.config.rate {
            None => now,
            Some(rate) => self.serialize(now, packet.len(), rate)?,
        };
        if let Some(ge) = self.config.burst_loss {
            let flip = if self.bad {
                ge.p_bad_to_good
            } else {
                ge.p_good_to_bad
            };
            if chance(rng, flip) {
                self.bad = !self.bad;
            }
            if self.bad && chance(rng, ge.loss_in_bad) {
                return Err(DropReason::Loss);
            }
        }
        if chance(rng, self.config.loss) {
            return Err(DropReason::Loss);
        }
        let first = self.propagate(departure, rng);
        let copy = chance(rng, self.config.duplicate).then(|| self.propagate(departure, rng));
        Ok((first, copy))
    }

    /// Queues a packet behind those still serializing and returns when its last byte leaves.
    fn serialize(&mut self, now: Instant, len: usize, rate: u64) -> Result<Instant, DropReason> {
        if rate == 0 {
            return Err(DropReason::Queue);
        }
        let now_ns = now.as_micros().saturating_mul(1000);
        let backlog_ns = self.busy_until_ns.saturating_sub(now_ns);
        if let Some(limit) = self.config.queue_limit {
            // Bytes not yet on the wire, i.e. the queue occupancy including the packet in flight.
            let backlog = u128::from(backlog_ns) * u128::from(rate) / 1_000_000_000;
            if backlog + len as u128 > limit as u128 {
                return Err(DropReason::Queue);
            }
        }
        let serialization = (len as u128 * 1_000_000_000).div_ceil(u128::from(rate));
        let done = u128::from(now_ns.max(self.busy_until_ns)) + serialization;
        self.busy_until_ns = u64::try_from(done).unwrap_or(u64::MAX);
        Ok(Instant::from_micros(self.busy_until_ns.div_ceil(1000)))
    }

    /// Adds delay, jitter and (maybe) the reordering hold-back to a departure time.
    fn propagate(&self, departure: Instant, rng: &mut SmallRng) -> Instant {
        let config = &self.config;
        let mut at = departure + config.delay;
        let jitter = micros(config.jitter);
        if jitter > 0 {
            at += Duration::from_micros(rng.gen_range(0..=jitter));
        }
        if chance(rng, config.reorder) {
            at += config.reorder_delay;
        }
        at
    }
}

/// A Bernoulli draw that consumes no randomness when `p` is zero (or negative) and accepts any
/// `p` (unlike `Rng::gen_bool`, which panics outside `0..=1`).
fn chance(rng: &mut SmallRng, p: f64) -> bool {
    p > 0.0 && rng.gen::<f64>() < p
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
