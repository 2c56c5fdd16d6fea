//! A/B sessions (docs/dual-path.md): one session on two paths, each its own multicast group
//! (and possibly interface), for receivers that merge them.
//!
//! The engines see one transport. Sending, every packet addressed to the first group goes
//! out on the first path and a copy on the second, addressed to the second group
//! ([`second_path_copy`]); unicast (NAKs, SPMRs) goes on the first path only. Receiving, both
//! paths feed the one engine, which merges them by sqn: the copy that arrives second is a
//! duplicate, counted and never delivered.
//!
//! The second path does not hold the first back: copies its socket will not take yet wait
//! in a bounded backlog, sent before anything newer; beyond the bound the oldest is dropped
//! (and counted), as a congested path would.

use std::{collections::VecDeque, io, net::IpAddr, os::fd::RawFd};

use super::{Outgoing, RecvBatch, Transport, TransportStats};
use crate::dual::second_path_copy;

/// Copies waiting for the second path's socket, at most: about 6 MiB of full-size packets,
/// more than the socket buffer it waits for.
const BACKLOG: usize = 4096;

/// Two transports of one session: see the module docs.
pub struct DualPath {
    first: Box<dyn Transport>,
    second: Box<dyn Transport>,
    first_group: IpAddr,
    second_group: IpAddr,
    /// Copies for the second path not sent yet, oldest first.
    backlog: VecDeque<Outgoing>,
    /// Buffers of sent copies, reused.
    spare: Vec<Outgoing>,
    /// Read the second path first on the next call (the paths take turns, so that neither
    /// starves the other).
    second_first: bool,
    received_second: u64,
    sent_second: u64,
    dropped_second: u64,
}

impl std::fmt::Debug for DualPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DualPath")
            .field("first_group", &self.first_group)
            .field("second_group", &self.second_group)
            .field("backlog", &self.backlog.len())
            .finish_non_exhaustive()
    }
}

impl DualPath {
    /// Joins `first` (the session's endpoint, `first_group`) and `second` (opened on
    /// `second_group`).
    pub fn new(
        first: Box<dyn Transport>,
        first_group: IpAddr,
        second: Box<dyn Transport>,
        second_group: IpAddr,
    ) -> Self {
        DualPath {
            first,
            second,
            first_group,
            second_group,
            backlog: VecDeque::new(),
            spare: Vec::new(),
            second_first: false,
            received_second: 0,
            sent_second: 0,
            dropped_second: 0,
        }
    }

    /// Queues the second path's copies of `pkts` (those for the first group) and sends what
    /// the second path takes.
    fn mirror(&mut self, pkts: &[Outgoing]) {
        for p in pkts.iter().filter(|p| p.dst == self.first_group) {
            let mut copy = self.spare.pop().unwrap_or_default();
            copy.dst = self.second_group;
            copy.ttl = p.ttl;
            second_path_copy(&p.buf, self.first_group, self.second_group, &mut copy.buf);
            if self.backlog.len() == BACKLOG {
                self.backlog.pop_front();
                self.dropped_second += 1;
            }
            self.backlog.push_back(copy);
        }
        self.flush_second();
    }

    /// Sends backlogged copies until the second path would block.
    fn flush_second(&mut self) {
        while !self.backlog.is_empty() {
            let pending = self.backlog.make_contiguous();
            let len = pending.len();
            let (sent, failed) = match self.second.send_batch(pending) {
                Ok(0) => return,
                Ok(n) => (n.min(len), 0),
                Err(e) if is_would_block(&e) => return,
                // That copy alone failed (its path is unreachable, say): it is dropped.
                Err(_) => (0, 1),
            };
            self.sent_second += sent as u64;
            self.dropped_second += failed;
            for copy in self.backlog.drain(..sent + failed as usize) {
                if self.spare.len() < crate::transport::BATCH {
                    self.spare.push(copy);
                }
            }
        }
    }

    /// Reads `path` into `batch`; true when it was found empty. Unicast arriving on the
    /// second path is dropped: the first path's transport receives it too.
    fn read(&mut self, second: bool, batch: &mut RecvBatch) -> io::Result<bool> {
        let before = batch.len();
        let transport = if second {
            &mut self.second
        } else {
            &mut self.first
        };
        // A transport marks the batch drained when it found its sockets empty; the mark is
        // for both paths together (set by the caller), so it is taken off after each path.
        transport.recv_batch(batch)?;
        let empty = batch.is_drained();
        batch.reset_drained();
        if second {
            let group = self.second_group;
            let mut i = 0;
            batch.retain(|d, _| {
                i += 1;
                i <= before || d.dst == group
            });
            self.received_second += (batch.len() - before) as u64;
        }
        Ok(empty)
    }
}

impl Transport for DualPath {
    fn send_batch(&mut self, pkts: &[Outgoing]) -> io::Result<usize> {
        // A packet the engine addressed to the second group (a receiver echoing the group
        // an SPM came on) goes on the second path alone.
        if pkts.first().is_some_and(|p| p.dst == self.second_group) {
            let n = self.second.send_batch(&pkts[..1])?;
            return Ok(n);
        }
        let run = pkts
            .iter()
            .take_while(|p| p.dst != self.second_group)
            .count();
        match self.first.send_batch(&pkts[..run]) {
            Ok(n) => {
                self.mirror(&pkts[..n]);
                Ok(n)
            }
            Err(e) if is_would_block(&e) => {
                // The first path is full; the second still gets what waits for it.
                self.flush_second();
                Err(e)
            }
            Err(e) => {
                // The driver drops this packet for the first path; the second still gets it.
                self.mirror(&pkts[..1]);
                Err(e)
            }
        }
    }

    fn recv_batch(&mut self, batch: &mut RecvBatch) -> io::Result<()> {
        let order = if self.second_first {
            [true, false]
        } else {
            [false, true]
        };
        self.second_first = !self.second_first;
        let mut empty = 0;
        let mut error = None;
        for second in order {
            if batch.spare_slots() == 0 {
                break;
            }
            match self.read(second, batch) {
                Ok(was_empty) => empty += usize::from(was_empty),
                // One path's error must not keep the other's packets from the engine.
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
        if empty == 2 {
            batch.set_drained();
        }
        // Copies that waited for the second path's socket go out when it is next polled.
        if !self.backlog.is_empty() {
            self.flush_second();
        }
        match error {
            Some(e) if batch.is_empty() => Err(e),
            _ => Ok(()),
        }
    }

    fn fds(&self) -> Vec<RawFd> {
        let mut fds = self.first.fds();
        fds.extend(self.second.fds());
        fds
    }

    fn local_nla(&self) -> IpAddr {
        self.first.local_nla()
    }

    fn ip_overhead(&self) -> usize {
        self.first.ip_overhead().max(self.second.ip_overhead())
    }

    fn stats(&self) -> TransportStats {
        let (a, b) = (self.first.stats(), self.second.stats());
        TransportStats {
            filtered: a.filtered + b.filtered,
            truncated: a.truncated + b.truncated,
            malformed: a.malformed + b.malformed,
            simulated_loss: a.simulated_loss + b.simulated_loss,
            gso_refused: a.gso_refused + b.gso_refused,
            source_filtered: a.source_filtered + b.source_filtered,
            second_path_received: self.received_second,
            second_path_sent: self.sent_second,
            second_path_dropped: self.dropped_second,
        }
    }
}

fn is_would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS)
}
