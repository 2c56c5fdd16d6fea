//! The rate search: the highest offered rate that a system delivers gap-free.
//!
//! Exponential steps up from a start rate until a probe fails (or the sender cannot go faster,
//! or the cap is reached), then bisection (geometric) between the last success and the first
//! failure until they are within `tolerance` of each other. When the first probe already
//! fails, the search steps down instead. The number of probes is bounded.

/// The outcome of one probe: a bounded run at one requested rate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probe {
    /// Rate asked for, messages/s (`None`: unlimited).
    pub requested: Option<f64>,
    /// Rate the sender achieved, messages/s.
    pub offered: f64,
    /// Rate delivered to the worse receiver, messages/s (offered × its delivered fraction).
    pub delivered: f64,
    /// Messages in the probe.
    pub count: u64,
    /// Every receiver got everything, in order, intact.
    pub ok: bool,
    /// Why not, when `!ok` (first problem only).
    pub note: String,
    /// Peak RSS of the sender, KiB.
    pub sender_rss_kib: u64,
    /// Largest peak RSS of the receivers, KiB.
    pub receiver_rss_kib: u64,
    /// CPU seconds of the sending processes from first send to last (`cpu_s` of `pgm-send`'s
    /// JSON, summed over the senders; 0 when the sender does not report it).
    pub sender_cpu_s: f64,
}

impl Probe {
    /// The senders' CPU time per message, µs, when they reported it.
    pub fn cpu_us_per_msg(&self) -> Option<f64> {
        (self.sender_cpu_s > 0.0 && self.count > 0)
            .then(|| self.sender_cpu_s * 1e6 / self.count as f64)
    }
}

/// Search parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchParams {
    /// First rate tried, messages/s.
    pub start: f64,
    /// Never ask for more than this.
    pub cap: f64,
    /// Never ask for less than this.
    pub floor: f64,
    /// Step of the exponential phase (> 1).
    pub factor: f64,
    /// Stop bisecting when failure / success ≤ this (> 1).
    pub tolerance: f64,
    /// Most probes in all.
    pub max_probes: usize,
    /// A successful probe whose offered rate stays below this fraction of the requested one,
    /// and within 5 % of the best so far, means the sender is the bottleneck: the search
    /// stops going up. (A sender that merely undershoots its setting, as OpenPGM's does, still
    /// gets more when asked for more, and the search goes on.)
    pub saturation: f64,
}

/// The probes of a search, in the order run, and the best one.
#[derive(Debug, Clone, Default)]
pub struct SearchOutcome {
    /// Every probe run.
    pub probes: Vec<Probe>,
}

impl SearchOutcome {
    /// The successful probe with the highest offered rate.
    pub fn best(&self) -> Option<&Probe> {
        self.probes
            .iter()
            .filter(|p| p.ok)
            .max_by(|a, b| a.offered.total_cmp(&b.offered))
    }

    /// The best offered rate, 0 when no probe succeeded.
    pub fn rate(&self) -> f64 {
        self.best().map_or(0.0, |p| p.offered)
    }
}

/// Runs `probe(rate)`; when it succeeded but the sender managed less than 80 % of the best
/// rate already achieved (another process took the CPU: noise, not a limit), it is recorded
/// and run once more, budget permitting.
fn probe_twice(
    out: &mut SearchOutcome,
    p: &SearchParams,
    rate: f64,
    probe: &mut impl FnMut(f64) -> Probe,
) -> Probe {
    let r = probe(rate);
    let before = out.rate();
    if r.ok && r.offered < 0.8 * before && out.probes.len() + 2 < p.max_probes {
        out.probes.push(r);
        return probe(rate);
    }
    r
}

/// Runs the search, calling `probe(rate)` for each step.
pub fn search(p: &SearchParams, mut probe: impl FnMut(f64) -> Probe) -> SearchOutcome {
    let mut out = SearchOutcome::default();
    let mut lo: Option<f64> = None;
    let mut hi: Option<f64> = None;
    let mut rate = p.start.clamp(p.floor, p.cap);
    // Saturated: asked for more than the sender achieved, and no more than before.
    let saturated = |out: &SearchOutcome, r: &Probe, rate: f64| {
        let before = out.rate();
        r.ok && r.offered < p.saturation * rate && before > 0.0 && r.offered < 1.05 * before
    };
    // Exponential phase (up, or down while nothing succeeded).
    while out.probes.len() < p.max_probes {
        let r = probe_twice(&mut out, p, rate, &mut probe);
        let ok = r.ok;
        let saturated = saturated(&out, &r, rate);
        out.probes.push(r);
        if ok {
            lo = Some(rate);
            if saturated || rate >= p.cap {
                return out;
            }
            if hi.is_some() {
                break;
            }
            rate = (rate * p.factor).min(p.cap);
        } else {
            hi = Some(rate);
            if lo.is_some() {
                break;
            }
            if rate <= p.floor {
                return out;
            }
            rate = (rate / p.factor).max(p.floor);
        }
    }
    // Bisection.
    while out.probes.len() < p.max_probes {
        let (Some(l), Some(h)) = (lo, hi) else {
            break;
        };
        if h / l <= p.tolerance {
            break;
        }
        let mid = (l * h).sqrt();
        let r = probe_twice(&mut out, p, mid, &mut probe);
        let ok = r.ok;
        let saturated = saturated(&out, &r, mid);
        out.probes.push(r);
        if ok {
            lo = Some(mid);
            if saturated {
                break;
            }
        } else {
            hi = Some(mid);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> SearchParams {
        SearchParams {
            start: 10_000.0,
            cap: 10_000_000.0,
            floor: 1_000.0,
            factor: 2.0,
            tolerance: 1.1,
            max_probes: 12,
            saturation: 0.8,
        }
    }

    /// A system that delivers everything up to `limit` msgs/s and whose sender tops out at
    /// `sender_max`.
    fn system(limit: f64, sender_max: f64) -> impl FnMut(f64) -> Probe {
        move |rate| {
            let offered = rate.min(sender_max);
            Probe {
                requested: Some(rate),
                offered,
                delivered: offered.min(limit),
                ok: offered <= limit,
                ..Probe::default()
            }
        }
    }

    #[test]
    fn finds_the_limit_within_tolerance() {
        let out = search(&params(), system(93_000.0, 1e9));
        let best = out.rate();
        assert!(best <= 93_000.0 && best > 93_000.0 / 1.1, "{best}");
        assert!(out.probes.len() <= 12);
        // Exponential: 10k, 20k, 40k, 80k, 160k (fail), then bisection.
        assert!(out.probes[4].requested.unwrap() > 150_000.0);
        assert!(!out.probes[4].ok);
    }

    #[test]
    fn stops_when_the_sender_saturates() {
        let out = search(&params(), system(1e9, 50_000.0));
        // 10k, 20k, 40k ok; 80k offers only 50k (more than before), 160k 50k again: stop.
        assert_eq!(out.probes.len(), 5);
        assert!((out.rate() - 50_000.0).abs() < 1e-9);
    }

    #[test]
    fn an_undershooting_sender_is_not_saturated() {
        // Achieves 74 % of what it is asked for, delivers up to 90k.
        let out = search(&params(), |rate| {
            let offered = 0.74 * rate;
            Probe {
                requested: Some(rate),
                offered,
                delivered: offered,
                ok: offered <= 90_000.0,
                ..Probe::default()
            }
        });
        assert!(
            out.rate() > 90_000.0 / 1.1 && out.rate() <= 90_000.0,
            "{}",
            out.rate()
        );
    }

    #[test]
    fn a_slow_outlier_is_probed_again() {
        let mut calls = 0;
        let out = search(&params(), |rate| {
            calls += 1;
            // The 4th probe (80k) runs while something else hogs the CPU.
            let offered = if calls == 4 { 12_000.0 } else { rate };
            Probe {
                requested: Some(rate),
                offered,
                delivered: offered,
                ok: offered <= 93_000.0,
                ..Probe::default()
            }
        });
        assert!(!out.probes[3].ok || out.probes[3].offered < 13_000.0);
        assert!((out.probes[4].requested.unwrap() - 80_000.0).abs() < 1e-9);
        assert!(out.rate() > 93_000.0 / 1.1, "{}", out.rate());
    }

    #[test]
    fn steps_down_when_the_start_fails() {
        let out = search(&params(), system(3_000.0, 1e9));
        let best = out.rate();
        assert!(best <= 3_000.0 && best > 3_000.0 / 1.1, "{best}");
    }

    #[test]
    fn gives_up_at_the_floor_and_the_probe_budget() {
        let out = search(&params(), system(10.0, 1e9));
        assert!(out.best().is_none());
        assert!(out.rate().abs() < 1e-9);
        assert!(out.probes.len() <= 5, "{}", out.probes.len());
        let p = SearchParams {
            max_probes: 2,
            ..params()
        };
        assert_eq!(search(&p, system(93_000.0, 1e9)).probes.len(), 2);
    }

    #[test]
    fn the_cap_ends_the_climb() {
        let p = SearchParams {
            cap: 50_000.0,
            ..params()
        };
        let out = search(&p, system(1e9, 1e9));
        assert!((out.rate() - 50_000.0).abs() < 1e-9);
        assert_eq!(out.probes.len(), 4);
    }
}
