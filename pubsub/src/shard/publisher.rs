//! [`ShardedPublisher`]: one [`Publisher`] per group of a [`ShardMap`], each message sent on
//! its topic's group.

use std::{net::IpAddr, thread};

use epgm::Url;
use pgm::{socket, wire::Tsi};

use super::ShardMap;
use crate::{
    options::{ConnectError, Options},
    publisher::{Publisher, PublisherStats, SendError},
};

/// The counters of one group's session.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PublisherShardStats {
    /// The session's group.
    pub group: IpAddr,
    /// The shard prefixes routed to it (none for the endpoint's group unless a shard names it).
    pub prefixes: Vec<Vec<u8>>,
    /// The session's identifier.
    pub tsi: Tsi,
    /// Its counters.
    pub stats: PublisherStats,
}

/// A publisher whose topics are spread over several multicast groups by
/// [`Options::shards`](crate::Options::shards): one PGM session per group, each a
/// [`Publisher`] (own TSI, own transmit window, own flusher), every message on the group of
/// its topic's longest shard prefix, topics no prefix matches on the endpoint's group
/// (docs/sharding.md). Each group's wire is that of a plain publisher, so a libzmq SUB
/// connected to any one group reads that group's topics.
///
/// Messages of one topic keep their order (one topic, one session); messages of different
/// groups are not ordered against each other. Dropping it closes it like
/// [`ShardedPublisher::close`].
#[derive(Debug)]
pub struct ShardedPublisher {
    map: ShardMap,
    /// `sessions[i]` sends to `map.groups()[i]`.
    sessions: Vec<Publisher>,
}

impl ShardedPublisher {
    /// Opens one session per group: the endpoint's (`pgm://` or `epgm://IFACE;GROUP:PORT`)
    /// and each of [`Options::shards`](crate::Options::shards)' groups, on the same
    /// interface and port. With no shards it is a plain [`Publisher`] on the endpoint.
    pub fn connect(endpoint: &str, options: &Options) -> Result<Self, ConnectError> {
        let url = Url::parse(endpoint).map_err(socket::OpenError::from)?;
        let map = ShardMap::new(url.endpoint.group, &options.shards)?;
        let single = Options {
            shards: Vec::new(),
            ..options.clone()
        };
        let sessions = map
            .groups()
            .iter()
            .map(|&g| Publisher::connect(&url_for(&url, g), &single))
            .collect::<Result<_, _>>()?;
        Ok(ShardedPublisher { map, sessions })
    }

    /// The map in use.
    pub fn map(&self) -> &ShardMap {
        &self.map
    }

    /// Sends a two-frame message, `topic` then `payload`, on `topic`'s group. Blocks while
    /// that session's queue is full.
    pub fn send(&self, topic: &[u8], payload: &[u8]) -> Result<(), SendError> {
        self.session(topic).send(topic, payload)
    }

    /// Sends a message of one or more frames on the group of its first frame (the topic).
    pub fn send_multipart<B: AsRef<[u8]>>(&self, frames: &[B]) -> Result<(), SendError> {
        let topic = frames.first().ok_or(SendError::EmptyMessage)?;
        self.session(topic.as_ref()).send_multipart(frames)
    }

    /// Like [`ShardedPublisher::send`], but fails with [`SendError::WouldBlock`] instead of
    /// waiting (see [`Publisher::try_send_multipart`]).
    pub fn try_send(&self, topic: &[u8], payload: &[u8]) -> Result<(), SendError> {
        self.session(topic).try_send(topic, payload)
    }

    /// Like [`ShardedPublisher::send_multipart`], but fails with [`SendError::WouldBlock`]
    /// instead of waiting.
    pub fn try_send_multipart<B: AsRef<[u8]>>(&self, frames: &[B]) -> Result<(), SendError> {
        let topic = frames.first().ok_or(SendError::EmptyMessage)?;
        self.session(topic.as_ref()).try_send_multipart(frames)
    }

    /// The session of `topic`'s group.
    fn session(&self, topic: &[u8]) -> &Publisher {
        &self.sessions[self.map.route(topic)]
    }

    /// Sends every session's open batch now and waits until all of it is on the wire.
    pub fn flush(&self) -> Result<(), SendError> {
        self.sessions.iter().try_for_each(Publisher::flush)
    }

    /// Closes every session at once (each lingers for NAKs, then sends FIN), so closing
    /// takes one linger time, not one per group. The first error is returned.
    pub fn close(&self) -> Result<(), SendError> {
        thread::scope(|s| {
            let closing: Vec<_> = self
                .sessions
                .iter()
                .map(|p| s.spawn(move || p.close()))
                .collect();
            closing
                .into_iter()
                .map(|h| h.join().unwrap_or(Err(SendError::Closed)))
                .collect::<Vec<_>>()
        })
        .into_iter()
        .collect()
    }

    /// The endpoint group's session identifier (each group's is in
    /// [`ShardedPublisher::shard_stats`]).
    pub fn tsi(&self) -> Tsi {
        self.sessions[0].tsi()
    }

    /// The APDU size in use (the same in every session).
    pub fn max_payload(&self) -> usize {
        self.sessions[0].max_payload()
    }

    /// The sessions: the endpoint group's first, then in [`ShardMap::groups`] order.
    pub fn sessions(&self) -> &[Publisher] {
        &self.sessions
    }

    /// Each group's counters, in [`ShardMap::groups`] order.
    pub fn shard_stats(&self) -> Vec<PublisherShardStats> {
        self.sessions
            .iter()
            .zip(self.map.groups())
            .enumerate()
            .map(|(i, (p, &group))| PublisherShardStats {
                group,
                prefixes: self.map.prefixes_of(i).map(<[u8]>::to_vec).collect(),
                tsi: p.tsi(),
                stats: p.stats(),
            })
            .collect()
    }
}

/// `url` with its group replaced by `group`, as text for [`Publisher::connect`] and
/// [`crate::Subscriber::connect`].
pub(super) fn url_for(url: &Url, group: IpAddr) -> String {
    let mut u = url.clone();
    u.endpoint.group = group;
    u.to_string()
}

/// Closes every session at once, like [`ShardedPublisher::close`] (dropping the sessions one
/// by one would linger once per group).
impl Drop for ShardedPublisher {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
