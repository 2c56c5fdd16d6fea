//! The announced shard map (pure): what a [`super::ShardedPublisher`] with
//! [`Options::announce_shards`](crate::Options::announce_shards) sends on the endpoint's
//! group, so that a subscriber needs only the endpoint ([`super::ShardedSubscriber::discover`]).
//!
//! It is an ordinary two-frame message, `[MAP_TOPIC][map]`, so the wire stays libzmq's: a
//! libzmq SUB drops it unless one of its subscriptions matches the topic (an everything
//! subscriber sees it as one more message). The map frame:
//!
//! ```text
//! version (1) = 1 | count (u16 BE) | count × ( prefix_len (1) | prefix | family (1): 4 or 6 | group (4 or 16) )
//! ```
//!
//! It is network input: decoding checks every length, at most [`MAX_ANNOUNCED_SHARDS`]
//! entries and [`MAX_ANNOUNCE_BYTES`] bytes, and the result goes through [`ShardMap::new`]
//! like the `--shard` flags (multicast, the endpoint's family, no duplicate prefix, at most
//! [`super::MAX_GROUPS`] groups).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use super::{Shard, ShardError, ShardMap};

/// The topic of the announcement: a NUL byte first, so no ordinary prefix subscription (other
/// than the empty one) matches it.
pub const MAP_TOPIC: &[u8] = b"\0pgm-rs/shard-map";

/// The shortest interval between two announcements.
pub const MIN_ANNOUNCE_INTERVAL: Duration = Duration::from_millis(10);

/// Most shards one announcement lists.
pub const MAX_ANNOUNCED_SHARDS: usize = 1024;

/// Longest announcement frame.
pub const MAX_ANNOUNCE_BYTES: usize = 64 << 10;

const VERSION: u8 = 1;

/// Why an announcement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnnounceError {
    /// Not version 1, cut short, bytes left over, an unknown family, or too long.
    #[error("malformed shard-map announcement: {0}")]
    Malformed(&'static str),
    /// More than [`MAX_ANNOUNCED_SHARDS`] entries.
    #[error("shard-map announcement lists {0} shards (at most {MAX_ANNOUNCED_SHARDS})")]
    TooMany(usize),
    /// The entries do not make a valid map for this endpoint.
    #[error("announced {0}")]
    Map(#[from] ShardError),
}

/// The announcement frame of `map` (its shards in [`ShardMap::shards`] order, so that the
/// groups keep their numbers).
pub fn encode(map: &ShardMap) -> Vec<u8> {
    let shards = map.shards();
    let mut out = vec![VERSION];
    out.extend_from_slice(&(shards.len() as u16).to_be_bytes());
    for s in &shards {
        out.push(s.prefix.len() as u8);
        out.extend_from_slice(&s.prefix);
        match s.group {
            IpAddr::V4(g) => {
                out.push(4);
                out.extend_from_slice(&g.octets());
            }
            IpAddr::V6(g) => {
                out.push(6);
                out.extend_from_slice(&g.octets());
            }
        }
    }
    out
}

/// The map an announcement frame describes, checked against the endpoint's `group`.
pub fn decode(frame: &[u8], group: IpAddr) -> Result<ShardMap, AnnounceError> {
    if frame.len() > MAX_ANNOUNCE_BYTES {
        return Err(AnnounceError::Malformed("too long"));
    }
    let mut r = Reader(frame);
    if r.take(1)? != [VERSION] {
        return Err(AnnounceError::Malformed("not version 1"));
    }
    let count = usize::from(u16::from_be_bytes([r.byte()?, r.byte()?]));
    if count > MAX_ANNOUNCED_SHARDS {
        return Err(AnnounceError::TooMany(count));
    }
    let mut shards = Vec::with_capacity(count);
    for _ in 0..count {
        let len = usize::from(r.byte()?);
        let prefix = r.take(len)?.to_vec();
        let group = match r.byte()? {
            4 => IpAddr::V4(Ipv4Addr::from(
                <[u8; 4]>::try_from(r.take(4)?).unwrap_or_default(),
            )),
            6 => IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(r.take(16)?).unwrap_or_default(),
            )),
            _ => return Err(AnnounceError::Malformed("unknown address family")),
        };
        shards.push(Shard { prefix, group });
    }
    if !r.0.is_empty() {
        return Err(AnnounceError::Malformed("bytes after the last entry"));
    }
    Ok(ShardMap::new(group, &shards)?)
}

/// Reads a frame front to back; running out is an error.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], AnnounceError> {
        if self.0.len() < n {
            return Err(AnnounceError::Malformed("cut short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, AnnounceError> {
        Ok(self.take(1)?[0])
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn g(last: u8) -> IpAddr {
        IpAddr::from([239, 192, 3, last])
    }

    #[test]
    fn round_trip_and_refusals() {
        let shards = [
            Shard::new("md.A", g(2)),
            Shard::new([0u8, 255, b'='], g(3)),
            Shard::new("md.B", g(2)),
        ];
        let map = ShardMap::new(g(1), &shards).unwrap();
        let frame = encode(&map);
        assert_eq!(decode(&frame, g(1)), Ok(map));
        // Another endpoint family, trailing or missing bytes, another version.
        let v6: IpAddr = "ff18::1".parse().unwrap();
        assert!(matches!(
            decode(&frame, v6),
            Err(AnnounceError::Map(ShardError::Family { .. }))
        ));
        let mut long = frame.clone();
        long.push(0);
        assert!(matches!(
            decode(&long, g(1)),
            Err(AnnounceError::Malformed(_))
        ));
        assert!(matches!(
            decode(&frame[..frame.len() - 1], g(1)),
            Err(AnnounceError::Malformed(_))
        ));
        assert!(matches!(
            decode(&[2, 0, 0], g(1)),
            Err(AnnounceError::Malformed(_))
        ));
        assert!(matches!(
            decode(&[], g(1)),
            Err(AnnounceError::Malformed(_))
        ));
        assert!(matches!(
            decode(&[1, 0xff, 0xff], g(1)),
            Err(AnnounceError::TooMany(65535))
        ));
        // An empty map is valid: everything on the endpoint's group.
        assert!(decode(&[1, 0, 0], g(1)).unwrap().is_single());
        // A unicast group or a duplicate prefix is refused as from the flags.
        let mut uni = vec![1, 0, 1, 1, b'a', 4];
        uni.extend_from_slice(&[10, 0, 0, 1]);
        assert!(matches!(
            decode(&uni, g(1)),
            Err(AnnounceError::Map(ShardError::NotMulticast(_)))
        ));
        let mut dup = vec![1, 0, 2];
        for _ in 0..2 {
            dup.extend_from_slice(&[1, b'a', 4, 239, 192, 3, 9]);
        }
        assert!(matches!(
            decode(&dup, g(1)),
            Err(AnnounceError::Map(ShardError::Duplicate(_)))
        ));
        assert_eq!(MAP_TOPIC[0], 0);
    }

    proptest! {
        /// Arbitrary bytes never panic the decoder, and whatever it accepts survives a round
        /// trip.
        #[test]
        fn arbitrary_frames_decode_or_are_refused(frame in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(map) = decode(&frame, g(1)) {
                prop_assert_eq!(decode(&encode(&map), g(1)), Ok(map));
            }
        }

        /// Every valid map survives the round trip.
        #[test]
        fn valid_maps_round_trip(shards in proptest::collection::btree_map(
            proptest::collection::vec(any::<u8>(), 1..8), 2u8..9, 0..20)
        ) {
            let shards: Vec<Shard> = shards.into_iter().map(|(p, n)| Shard::new(p, g(n))).collect();
            let map = ShardMap::new(g(1), &shards).unwrap();
            prop_assert_eq!(decode(&encode(&map), g(1)), Ok(map));
        }
    }
}
