//! ACKer selection (PGMCC draft §2.3) by the TCP throughput equation (§2.4).

/// M² of PGMCC draft §2.4, M = 1/T = RTT · sqrt(p) · (1 + 9p(1 + 32p²)): the inverse
/// throughput a TCP flow would get to this receiver, squared (no sqrt needed), constants
/// omitted: it is only ever compared. `rtt_ms` below 1 ms counts as 1 ms (the timestamp's
/// resolution), `p` in 0..=1.
pub fn inverse_throughput_sq(rtt_ms: f64, p: f64) -> f64 {
    let rtt = rtt_ms.max(1.0);
    let p = p.clamp(0.0, 1.0);
    let f = 1.0 + 9.0 * p * (1.0 + 32.0 * p * p);
    rtt * rtt * p * f * f
}

/// The loss rate a receiver that reports none counts with. The draft's M is 0 for every
/// lossless receiver, so the first to answer an election stays ACKer whatever its RTT; a
/// fast one then clocks the window far above what a slower receiver's bottleneck takes until
/// that receiver's losses come back through its queue. With this floor lossless receivers
/// compare by RTT (the slower one wins an election), and any real loss still dominates: one
/// loss in the filter (p ≈ 0.0076) outweighs an RTT 80 times longer.
pub const LOSS_FLOOR: f64 = 1e-6;

/// PGMCC draft §2.3: node i replaces the ACKer when T_i < C · T_acker, that is
/// M_i > M_acker / C, or in squares M_i² · C² > M_acker². With no loss anywhere (M = 0 for
/// all) nobody replaces the ACKer.
pub fn replaces_acker(candidate_m2: f64, acker_m2: f64, c: f64) -> bool {
    candidate_m2 * c * c > acker_m2
}

/// A loss rate in OPT_PGMCC_FEEDBACK's 16-bit fixed point (§2.1.3: 0xffff = 100 %) as 0..=1.
pub fn loss_fraction(loss_rate: u16) -> f64 {
    f64::from(loss_rate) / f64::from(u16::MAX)
}

#[cfg(test)]
#[allow(
    clippy::float_cmp,
    reason = "the values compared are exact in binary floating point"
)]
mod tests {
    use super::*;

    #[test]
    fn throughput_falls_with_rtt_and_loss() {
        let base = inverse_throughput_sq(10.0, 0.01);
        assert!(inverse_throughput_sq(20.0, 0.01) > base);
        assert!(inverse_throughput_sq(10.0, 0.02) > base);
        // Square of RTT·sqrt(p)·(1 + 9p(1 + 32p²)) at 10 ms, 1 %.
        let m = 10.0 * 0.1 * (1.0 + 0.09 * (1.0 + 32.0 * 1e-4));
        assert!((base - m * m).abs() < 1e-9);
        assert_eq!(inverse_throughput_sq(10.0, 0.0), 0.0);
        assert_eq!(
            inverse_throughput_sq(0.0, 0.01),
            inverse_throughput_sq(1.0, 0.01)
        );
    }

    #[test]
    fn switch_needs_the_bias() {
        let acker = inverse_throughput_sq(10.0, 0.01);
        // Equal or slightly worse receivers do not take over (C = 0.75) ...
        assert!(!replaces_acker(acker, acker, 0.75));
        assert!(!replaces_acker(
            inverse_throughput_sq(12.0, 0.01),
            acker,
            0.75
        ));
        // ... clearly worse ones do: T_i < 0.75 · T_acker means RTT_i > 13.3 ms here.
        assert!(replaces_acker(
            inverse_throughput_sq(14.0, 0.01),
            acker,
            0.75
        ));
        assert!(replaces_acker(inverse_throughput_sq(1.0, 0.01), 0.0, 0.75));
        assert!(!replaces_acker(0.0, 0.0, 0.75));
    }

    #[test]
    fn lossless_receivers_compare_by_rtt() {
        let m2 = |rtt: f64, p: f64| inverse_throughput_sq(rtt, p.max(LOSS_FLOOR));
        assert!(replaces_acker(m2(5.0, 0.0), m2(2.0, 0.0), 0.75));
        assert!(!replaces_acker(m2(2.5, 0.0), m2(2.0, 0.0), 0.75));
        assert!(!replaces_acker(m2(100.0, 0.0), m2(1.0, 0.0076), 0.75));
    }

    #[test]
    fn fixed_point_loss() {
        assert_eq!(loss_fraction(0), 0.0);
        assert_eq!(loss_fraction(u16::MAX), 1.0);
    }
}
