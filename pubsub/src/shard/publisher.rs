//! [`ShardedPublisher`]: one [`Publisher`] per group of a [`ShardMap`], each message sent on
//! its topic's group.

use std::{
    net::IpAddr,
    sync::{Arc, Condvar, Mutex, PoisonError},
    thread::{self, JoinHandle},
    time::Duration,
};

use epgm::Url;
use pgm::{socket, wire::Tsi};

use super::{
    announce::{self, MAP_TOPIC, MIN_ANNOUNCE_INTERVAL},
    ShardMap,
};
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
/// (docs/sharding.md). With [`Options::announce_shards`](crate::Options::announce_shards) it
/// also announces the map on the endpoint's group ([`super::announce`]). Each group's wire is that of a plain publisher, so a libzmq SUB
/// connected to any one group reads that group's topics.
///
/// Messages of one topic keep their order (one topic, one session); messages of different
/// groups are not ordered against each other. Dropping it closes it like
/// [`ShardedPublisher::close`].
#[derive(Debug)]
pub struct ShardedPublisher {
    map: ShardMap,
    /// `sessions[i]` sends to `map.groups()[i]`.
    sessions: Vec<Arc<Publisher>>,
    /// With [`Options::announce_shards`]: the thread that announces the map; taken by the
    /// first close.
    announcer: Mutex<Option<Announcer>>,
}

/// Sends the map on the endpoint's session every interval until stopped (the first one is
/// sent by `connect`, ahead of any data; docs/sharding.md). It waits for queue room like
/// any send: skipping a round when the queue is full would starve it while the application
/// keeps the session saturated.
#[derive(Debug)]
struct Announcer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: JoinHandle<()>,
}

impl Announcer {
    fn start(session: Arc<Publisher>, frame: Vec<u8>, every: Duration) -> std::io::Result<Self> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = Arc::clone(&stop);
        let every = every.max(MIN_ANNOUNCE_INTERVAL);
        let thread = thread::Builder::new()
            .name("pubsub-announce".into())
            .spawn(move || {
                let (lock, cond) = &*flag;
                loop {
                    let stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
                    let (stopped, _) = cond
                        .wait_timeout_while(stopped, every, |s| !*s)
                        .unwrap_or_else(PoisonError::into_inner);
                    if *stopped {
                        return;
                    }
                    drop(stopped);
                    if session.send(MAP_TOPIC, &frame).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Announcer { stop, thread })
    }

    fn stop(self) {
        let (lock, cond) = &*self.stop;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cond.notify_one();
        let _ = self.thread.join();
    }
}

impl ShardedPublisher {
    /// Opens one session per group: the endpoint's (`pgm://` or `epgm://IFACE;GROUP:PORT`)
    /// and each of [`Options::shards`](crate::Options::shards)' groups, on the same
    /// interface and port. With no shards it is a plain [`Publisher`] on the endpoint.
    pub fn connect(endpoint: &str, options: &Options) -> Result<Self, ConnectError> {
        crate::options::check_no_second_path(options)?;
        let url = Url::parse(endpoint).map_err(socket::OpenError::from)?;
        let map = ShardMap::new(url.endpoint.group, &options.shards)?;
        let single = Options {
            shards: Vec::new(),
            announce_shards: None,
            ..options.clone()
        };
        let sessions: Vec<Arc<Publisher>> = map
            .groups()
            .iter()
            .map(|&g| Publisher::connect(&url_for(&url, g), &single).map(Arc::new))
            .collect::<Result<_, _>>()?;
        let announcer = match options.announce_shards {
            Some(every) => {
                let frame = announce::encode(&map);
                sessions[0]
                    .send(MAP_TOPIC, &frame)
                    .map_err(|e| socket::OpenError::from(std::io::Error::other(e)))?;
                let a = Announcer::start(Arc::clone(&sessions[0]), frame, every)
                    .map_err(socket::OpenError::from)?;
                Some(a)
            }
            None => None,
        };
        Ok(ShardedPublisher {
            map,
            sessions,
            announcer: Mutex::new(announcer),
        })
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
        self.sessions.iter().try_for_each(|p| p.flush())
    }

    /// Closes every session at once (each lingers for NAKs, then sends FIN), so closing
    /// takes one linger time, not one per group. The first error is returned.
    pub fn close(&self) -> Result<(), SendError> {
        let announcer = self
            .announcer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(a) = announcer {
            a.stop();
        }
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
    pub fn sessions(&self) -> &[Arc<Publisher>] {
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
