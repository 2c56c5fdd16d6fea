//! The PGMCC window (PGMCC draft §2.2): a window W and a token count T, both in packets and
//! fractional. Sending takes a token; ACKs give tokens back and open the window.
//!
//! Bounded whatever the ACKs say: 1 ≤ W ≤ the cap, −W ≤ T ≤ W.

/// W and T of PGMCC draft §2.2.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    w: f64,
    t: f64,
    ssthresh: f64,
    cap: f64,
}

impl Window {
    /// W = T = `initial` (at most `cap`), with a fixed SSTHRESH.
    pub fn new(initial: u32, ssthresh: u32, cap: u32) -> Self {
        let cap = f64::from(cap.max(1));
        let iw = f64::from(initial.max(1)).min(cap);
        Window {
            w: iw,
            t: iw,
            ssthresh: f64::from(ssthresh),
            cap,
        }
    }

    /// W, packets.
    pub fn size(&self) -> f64 {
        self.w
    }

    /// T, packets.
    pub fn tokens(&self) -> f64 {
        self.t
    }

    /// A packet may go: T ≥ 1.
    pub fn can_send(&self) -> bool {
        self.t >= 1.0
    }

    /// PGMCC draft §2.2 "PACKET TRANSMISSION": T = T − 1.
    pub fn on_send(&mut self) {
        self.t -= 1.0;
        self.clamp();
    }

    /// PGMCC draft §2.2 "ACK RECEPTION, NO LOSS DETECTED", `n` newly acknowledged packets:
    /// exponential opening below SSTHRESH, then one packet per window's worth of ACKs.
    pub fn on_acked(&mut self, n: u32) {
        let mut n = f64::from(n);
        if self.w < self.ssthresh {
            let d = n.min(self.ssthresh - self.w);
            n -= d;
            self.t += 2.0 * d;
            self.w += d;
        }
        self.t += n * (1.0 + 1.0 / self.w);
        self.w += n / self.w;
        self.clamp();
    }

    /// `n` packets left the network while the window is frozen after a loss: their tokens
    /// come back, the window does not grow.
    pub fn grant(&mut self, n: u32) {
        self.t += f64::from(n);
        self.clamp();
    }

    /// PGMCC draft §2.2 "ACK RECEPTION, LOSS DETECTED": T = T − W/2, W = W/2.
    pub fn on_loss(&mut self) {
        let half = self.w / 2.0;
        self.t -= half;
        self.w = half;
        self.clamp();
    }

    /// Nothing is in flight: whatever T says, one packet may go (else nothing would ever
    /// bring an ACK back).
    pub fn pipe_empty(&mut self) {
        self.t = self.t.max(1.0);
        self.clamp();
    }

    /// A new ACKer whose path carries `factor` (< 1) times the old one's throughput: the
    /// window shrinks with it, to no less than `initial` (unused tokens too), so that the
    /// window a fast ACKer opened does not flood the slow one's path.
    pub fn scale(&mut self, factor: f64, initial: u32) {
        let w = (self.w * factor.clamp(0.0, 1.0)).max(f64::from(initial.max(1)));
        if w < self.w {
            self.w = w;
            self.t = self.t.min(w);
            self.clamp();
        }
    }

    /// PGMCC draft §2.7 / §3 "on timeout expiration": W = T = `initial`.
    pub fn reset(&mut self, initial: u32) {
        self.w = f64::from(initial.max(1));
        self.t = self.w;
        self.clamp();
    }

    fn clamp(&mut self) {
        self.w = self.w.clamp(1.0, self.cap);
        self.t = self.t.clamp(-self.w, self.w);
    }
}

#[cfg(test)]
#[allow(
    clippy::float_cmp,
    reason = "the values compared are exact in binary floating point"
)]
mod tests {
    use super::*;

    #[test]
    fn slow_start_then_linear() {
        let mut w = Window::new(1, 4, 100);
        w.on_send();
        w.on_acked(1);
        // Exponential: one ACK gives two tokens and one packet of window.
        assert_eq!((w.size(), w.tokens()), (2.0, 2.0));
        w.on_acked(2);
        assert_eq!((w.size(), w.tokens()), (4.0, 4.0));
        // Linear: a window's worth of ACKs opens it by one packet.
        for _ in 0..4 {
            w.on_send();
        }
        for _ in 0..4 {
            w.on_acked(1);
        }
        assert!((w.size() - 4.9).abs() < 0.1, "{}", w.size());
        assert!(w.tokens() <= w.size());
    }

    #[test]
    fn a_slower_acker_scales_the_window_down() {
        let mut w = Window::new(4, 4, 1024);
        for _ in 0..4000 {
            w.on_acked(1);
        }
        let big = w.size();
        w.scale(0.5, 4);
        assert!((w.size() - big / 2.0).abs() < 1e-9 && w.tokens() <= w.size());
        w.scale(1e-6, 4);
        assert_eq!(w.size(), 4.0);
        w.scale(2.0, 4);
        assert_eq!(w.size(), 4.0, "never grows");
    }

    #[test]
    fn slow_start_splits_at_ssthresh() {
        let mut w = Window::new(3, 4, 100);
        w.on_acked(3);
        // One ACK exponential (3 → 4), two linear (+2/4).
        assert!((w.size() - 4.5).abs() < 1e-9, "{}", w.size());
    }

    #[test]
    fn loss_halves_and_timeout_resets() {
        let mut w = Window::new(4, 4, 100);
        for _ in 0..40 {
            w.on_acked(1);
        }
        let before = w.size();
        w.on_loss();
        assert!((w.size() - before / 2.0).abs() < 1e-9);
        w.reset(4);
        assert_eq!((w.size(), w.tokens()), (4.0, 4.0));
    }

    #[test]
    fn bounded_whatever_the_acks() {
        let mut w = Window::new(4, 4, 64);
        for _ in 0..100_000 {
            w.on_acked(32);
        }
        assert_eq!((w.size(), w.tokens()), (64.0, 64.0));
        for _ in 0..100 {
            w.on_loss();
            w.on_send();
        }
        assert_eq!(w.size(), 1.0);
        assert!(w.tokens() >= -1.0);
        w.pipe_empty();
        assert!(w.can_send());
    }
}
