//! A transport wrapper that loses received packets at random: loss for demos and tests that
//! cannot use nftables (no root).

use std::{io, net::IpAddr, os::fd::RawFd};

use rand::{rngs::SmallRng, Rng, SeedableRng};

use super::{Outgoing, RecvBatch, Transport, TransportStats};

/// Drops each received packet with probability `p` (seeded, so runs repeat).
pub struct Lossy {
    inner: Box<dyn Transport>,
    p: f64,
    rng: SmallRng,
    dropped: u64,
}

impl std::fmt::Debug for Lossy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lossy")
            .field("p", &self.p)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

impl Lossy {
    /// Wraps `inner`; `p` is clamped to `[0, 1]`.
    pub fn new(inner: Box<dyn Transport>, p: f64, seed: u64) -> Self {
        Lossy {
            inner,
            p: p.clamp(0.0, 1.0),
            rng: SmallRng::seed_from_u64(seed),
            dropped: 0,
        }
    }
}

impl Transport for Lossy {
    fn send_batch(&mut self, pkts: &[Outgoing]) -> io::Result<usize> {
        self.inner.send_batch(pkts)
    }

    fn recv_batch(&mut self, batch: &mut RecvBatch) -> io::Result<()> {
        let before = batch.len();
        self.inner.recv_batch(batch)?;
        let (rng, p, dropped) = (&mut self.rng, self.p, &mut self.dropped);
        let mut i = 0;
        batch.retain(|_, _| {
            // Only the datagrams this call added are candidates.
            i += 1;
            if i <= before || !rng.gen_bool(p) {
                return true;
            }
            *dropped += 1;
            false
        });
        Ok(())
    }

    fn fds(&self) -> Vec<RawFd> {
        self.inner.fds()
    }

    fn local_nla(&self) -> IpAddr {
        self.inner.local_nla()
    }

    fn ip_overhead(&self) -> usize {
        self.inner.ip_overhead()
    }

    fn stats(&self) -> TransportStats {
        let mut s = self.inner.stats();
        s.simulated_loss += self.dropped;
        s
    }
}
