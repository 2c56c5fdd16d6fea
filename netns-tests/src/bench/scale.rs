//! Part `scale`: how the source's cost grows with the work. Ours over EPGM, 64 B, one message
//! per packet ([`Ctx::scale_probe`]):
//!
//! - **receivers**: one sender to 1, 2, 4 and 8 receivers ([`Config::scale_receivers`]), each
//!   count on a LAN of its own with exactly 1 + n hosts (the bridge floods every port, so idle
//!   hosts would cost the sender too);
//! - **publishers**: 1, 4 and 16 `pgm-send` processes ([`Config::scale_publishers`]) on host 1,
//!   one TSI each, on one group to the 2 receivers of the main LAN; the rate is the aggregate.
//!   They share host 1's address and UDP port (`SO_REUSEPORT`), so a receiver's unicast NAKs
//!   reach only one of them: a lost packet of another fails the probe, and the rate found is
//!   the rate without loss.
//!
//! Each point is a rate search like the other parts' (at most [`Config::scale_probes`]
//! probes, each bounded in messages and time); its source CPU per message is the senders'
//! CPU time over the best gap-free probe divided by its messages.

use std::io;

use super::runs::{Bins, Ctx};
use super::search::{SearchOutcome, SearchParams};
use super::{capped, check_interrupted, Config, Results, System};
use crate::lan::Lan;

/// One point of the scale part: a rate search with `senders` publishers and `receivers`
/// receivers.
#[derive(Debug, Clone)]
pub struct ScaleResult {
    /// Receivers.
    pub receivers: usize,
    /// Publishers (`pgm-send` processes, one TSI each).
    pub senders: usize,
    /// The probes.
    pub outcome: SearchOutcome,
}

impl ScaleResult {
    /// The best gap-free aggregate rate, if any probe succeeded.
    pub fn rate(&self) -> Option<f64> {
        Some(self.outcome.rate()).filter(|r| *r > 0.0)
    }

    /// Source CPU per message at the best gap-free probe, µs.
    pub fn cpu_us_per_msg(&self) -> Option<f64> {
        self.outcome
            .best()
            .and_then(super::search::Probe::cpu_us_per_msg)
    }
}

/// The search parameters of a scale point: from half the EPGM 64 B rate this LAN already
/// measured to 2 receivers (or the configured start), at most `scale_probes` probes.
fn params(cfg: &Config, res: &Results) -> SearchParams {
    let start = res
        .rate(System::OursEpgm, 64)
        .map_or(cfg.start_rate, |r| r / 2.0);
    SearchParams {
        max_probes: cfg.scale_probes,
        ..cfg.params(start)
    }
}

/// One scale point on `ctx`'s LAN; counts are rounded up to a multiple of `senders`.
fn point(ctx: &Ctx<'_>, p: &SearchParams, receivers: usize, senders: usize) -> ScaleResult {
    let n = senders as u64;
    let outcome = capped(ctx, p, |rate, count| {
        ctx.scale_probe(receivers, senders, rate, count.div_ceil(n) * n)
    });
    ScaleResult {
        receivers,
        senders,
        outcome,
    }
}

/// The receivers series: one sender, each receiver count on a fresh LAN of 1 + n hosts that
/// segments as `cfg.lan` says. Two receivers is the publishers series' first point (the main
/// LAN is the same LAN of three hosts), so it is not searched twice.
pub fn receivers_part(cfg: &Config, bins: &Bins, res: &mut Results) -> io::Result<()> {
    if !cfg.wants("scale") {
        return Ok(());
    }
    let p = params(cfg, res);
    for &n in &cfg.scale_receivers {
        check_interrupted()?;
        if res.scale.iter().any(|s| s.receivers == n && s.senders == 1) {
            continue;
        }
        let lan = match Lan::with_segmentation(n + 1, cfg.lan) {
            Ok(l) => l,
            Err(e) => {
                res.errors
                    .push(format!("scale: LAN of {} hosts: {e}", n + 1));
                continue;
            }
        };
        let ctx = Ctx::new(&lan, cfg, bins.clone());
        res.scale.push(point(&ctx, &p, n, 1));
    }
    Ok(())
}

/// The publishers series on the main LAN: n `pgm-send`s on host 1 to hosts 2 and 3.
pub fn publishers_part(ctx: &Ctx<'_>, cfg: &Config, res: &mut Results) -> io::Result<()> {
    if !cfg.wants("scale") {
        return Ok(());
    }
    let p = params(cfg, res);
    for &n in &cfg.scale_publishers {
        check_interrupted()?;
        res.scale.push(point(ctx, &p, 2, n));
    }
    Ok(())
}
