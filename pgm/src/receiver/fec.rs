//! Parity at a receiver (RFC 3208 §11, docs/fec.md): the recent incomplete transmission groups
//! of one peer, their data and parity, decoded as soon as a group holds k packets and still
//! misses data, OPT_FRAGMENTs included (RFC 3208 §11.2). Bounded: at most [`max_groups`]
//! groups per peer, each at most k data and k parity packets; a group whose data is all there
//! is dropped at once.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::{
    fec::{decode_fragments, decode_group, EncodedFragment, ParityRef, ReedSolomon},
    wire::{Fragment, SeqNo},
};

/// A packet a group rebuilt: its sqn, TSDU and OPT_FRAGMENT.
pub(crate) type Rebuilt = (SeqNo, Vec<u8>, Option<Fragment>);

/// Incomplete groups kept per peer for pro-active parity (it follows its group at once).
pub(crate) const MAX_GROUPS: usize = 4;

/// Data packets of incomplete groups kept per peer when parity comes on demand: a group with
/// a loss waits a NAK round trip for its parity.
pub(crate) const MAX_ON_DEMAND_PACKETS: usize = 4096;

/// Incomplete groups of `k` kept per peer.
pub(crate) fn max_groups(k: usize, on_demand: bool) -> usize {
    if on_demand {
        (MAX_ON_DEMAND_PACKETS / k).max(MAX_GROUPS)
    } else {
        MAX_GROUPS
    }
}

#[derive(Debug)]
struct Group {
    tg: SeqNo,
    /// (TSDU, OPT_FRAGMENT) of each data packet received.
    data: Vec<Option<(Bytes, Option<Fragment>)>>,
    parity: Vec<ParityPacket>,
}

/// A parity packet of a group.
#[derive(Debug)]
struct ParityPacket {
    /// Packets of the group it covers: k, or with OPT_CURR_TGSIZE the first j (the rest
    /// count as empty).
    size: usize,
    index: usize,
    tsdu: Bytes,
    var_pktlen: bool,
    /// Its encoded OPT_FRAGMENT (RFC 3208 §11.2), when the group holds fragments.
    fragment: Option<EncodedFragment>,
}

/// One peer's groups.
#[derive(Debug)]
pub(crate) struct Groups {
    k: usize,
    /// The source answers parity NAKs (OPT_PARITY_PRM O bit).
    on_demand: bool,
    max: usize,
    pending: VecDeque<Group>,
    /// Groups recently whole or decoded: their late parity (pro-active parity follows a whole
    /// group) must not open a new entry and push out one that still waits.
    done: VecDeque<SeqNo>,
}

impl Groups {
    /// Groups of `k` (a power of two in 2..=128); `on_demand`: the source answers parity
    /// NAKs.
    pub(crate) fn new(k: usize, on_demand: bool) -> Self {
        Groups {
            k,
            on_demand,
            max: max_groups(k, on_demand),
            pending: VecDeque::new(),
            done: VecDeque::new(),
        }
    }

    pub(crate) fn k(&self) -> usize {
        self.k
    }

    pub(crate) fn on_demand(&self) -> bool {
        self.on_demand
    }

    /// The first sqn of `sqn`'s group.
    pub(crate) fn group_of(&self, sqn: SeqNo) -> SeqNo {
        self.tg(sqn)
    }

    /// Parity packets held for group `tg`; `None` when parity cannot help the group: it is
    /// done (decoded, or its parity did not decode).
    pub(crate) fn parity_held(&self, tg: SeqNo) -> Option<usize> {
        if self.done.contains(&tg) {
            return None;
        }
        Some(
            self.pending
                .iter()
                .find(|g| g.tg == tg)
                .map_or(0, |g| g.parity.len()),
        )
    }

    /// Payload bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.pending
            .iter()
            .map(|g| {
                g.data.iter().flatten().map(|d| d.0.len()).sum::<usize>()
                    + g.parity.iter().map(|p| p.tsdu.len()).sum::<usize>()
            })
            .sum()
    }

    pub(crate) fn clear(&mut self) {
        self.pending.clear();
        self.done.clear();
    }

    fn tg(&self, sqn: SeqNo) -> SeqNo {
        SeqNo(sqn.0 & !(self.k as u32 - 1))
    }

    fn is_done(&self, sqn: SeqNo) -> bool {
        self.done.contains(&self.tg(sqn))
    }

    fn finish(&mut self, pos: usize) {
        if let Some(g) = self.pending.remove(pos) {
            if self.done.len() >= 2 * self.max {
                self.done.pop_front();
            }
            self.done.push_back(g.tg);
        }
    }

    fn group(&mut self, sqn: SeqNo) -> &mut Group {
        let tg = SeqNo(sqn.0 & !(self.k as u32 - 1));
        if let Some(i) = self.pending.iter().position(|g| g.tg == tg) {
            return &mut self.pending[i];
        }
        if self.pending.len() >= self.max {
            self.pending.pop_front();
        }
        self.pending.push_back(Group {
            tg,
            data: vec![None; self.k],
            parity: Vec::new(),
        });
        let last = self.pending.len() - 1;
        &mut self.pending[last]
    }

    /// Records data `sqn`; returns what its group now decodes to.
    pub(crate) fn data(
        &mut self,
        rs: &ReedSolomon,
        sqn: SeqNo,
        payload: &[u8],
        fragment: Option<Fragment>,
    ) -> Vec<Rebuilt> {
        let k = self.k;
        if self.is_done(sqn) {
            return Vec::new();
        }
        let g = self.group(sqn);
        let i = (sqn.0 as usize) & (k - 1);
        if g.data[i].is_none() {
            g.data[i] = Some((Bytes::copy_from_slice(payload), fragment));
        }
        self.settle(rs, sqn)
    }

    /// Records parity packet `sqn` (`tg | index`); returns what its group now decodes to.
    pub(crate) fn parity(
        &mut self,
        rs: &ReedSolomon,
        sqn: SeqNo,
        payload: &[u8],
        var_pktlen: bool,
        fragment: Option<EncodedFragment>,
        curr_tgsize: Option<u32>,
    ) -> Vec<Rebuilt> {
        let k = self.k;
        if self.is_done(sqn) {
            return Vec::new();
        }
        let size = curr_tgsize
            .and_then(|j| usize::try_from(j).ok())
            .filter(|j| (1..k).contains(j))
            .unwrap_or(k);
        let g = self.group(sqn);
        let index = (sqn.0 as usize) & (k - 1);
        let dup = g.parity.iter().any(|p| p.index == index && p.size == size);
        if g.parity.len() < k && !dup {
            g.parity.push(ParityPacket {
                size,
                index,
                tsdu: Bytes::copy_from_slice(payload),
                var_pktlen,
                fragment,
            });
        }
        self.settle(rs, sqn)
    }

    /// Decodes `sqn`'s group if it can; drops it once whole (or rebuilt). Parity of a partial
    /// group (OPT_CURR_TGSIZE j) rebuilds the first j packets; the group then waits for the
    /// rest.
    fn settle(&mut self, rs: &ReedSolomon, sqn: SeqNo) -> Vec<Rebuilt> {
        let k = self.k;
        let tg = SeqNo(sqn.0 & !(k as u32 - 1));
        let Some(pos) = self.pending.iter().position(|g| g.tg == tg) else {
            return Vec::new();
        };
        let mut sizes: Vec<usize> = self.pending[pos].parity.iter().map(|p| p.size).collect();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        sizes.dedup();
        let mut out = Vec::new();
        for size in sizes {
            let g = &mut self.pending[pos];
            let missing = g.data[..size].iter().filter(|d| d.is_none()).count();
            let parity = g.parity.iter().filter(|p| p.size == size).count();
            if missing == 0 || missing > parity {
                continue;
            }
            match decode(rs, g, size) {
                Ok(rebuilt) => {
                    for (sqn, tsdu, frag) in &rebuilt {
                        let i = (sqn.0 as usize) & (k - 1);
                        g.data[i] = Some((Bytes::copy_from_slice(tsdu), *frag));
                    }
                    out.extend(rebuilt);
                }
                // Bad full-group parity: the group is done, selective NAKs take over.
                Err(_) if size == k => {
                    self.finish(pos);
                    return out;
                }
                Err(_) => g.parity.retain(|p| p.size != size),
            }
        }
        if self.pending[pos].data.iter().all(Option::is_some) {
            self.finish(pos);
        }
        out
    }
}

/// Rebuilds what group `g` misses among its first `size` packets from its parity covering
/// them (the packets from `size` on count as empty, as the source encoded them).
fn decode(rs: &ReedSolomon, g: &Group, size: usize) -> Result<Vec<Rebuilt>, crate::fec::FecError> {
    let tail = |i: usize| i >= size;
    let data: Vec<Option<&[u8]>> = g
        .data
        .iter()
        .enumerate()
        .map(|(i, d)| {
            if tail(i) {
                Some(&[][..])
            } else {
                d.as_ref().map(|d| &d.0[..])
            }
        })
        .collect();
    let frags: Vec<Option<Option<Fragment>>> = g
        .data
        .iter()
        .enumerate()
        .map(|(i, d)| {
            if tail(i) {
                Some(None)
            } else {
                d.as_ref().map(|d| d.1)
            }
        })
        .collect();
    let mine = || g.parity.iter().filter(|p| p.size == size);
    let parity: Vec<ParityRef<'_>> = mine()
        .map(|p| ParityRef {
            index: p.index,
            bytes: &p.tsdu,
            var_pktlen: p.var_pktlen,
        })
        .collect();
    let encoded: Vec<(usize, Option<EncodedFragment>)> =
        mine().map(|p| (p.index, p.fragment)).collect();
    let tsdus = decode_group(rs, &data, &parity)?;
    let frags = decode_fragments(rs, &frags, &encoded)?;
    Ok(tsdus
        .into_iter()
        .map(|(i, t)| {
            let f = frags.iter().find(|f| f.0 == i).and_then(|f| f.1);
            (g.tg.add(i as u32), t, f)
        })
        .collect())
}
