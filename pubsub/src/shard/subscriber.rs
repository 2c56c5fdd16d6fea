//! [`ShardedSubscriber`]: one [`Subscriber`] per group that the subscriptions can need, joined
//! and left as they change, received from in turn.
//!
//! # Waiting on several sessions
//!
//! Each group's [`Subscriber`] has its own transport (sockets and IO thread) and decoder. With
//! one group joined, a receive simply waits in that subscriber. With several, it takes what
//! each has ready in turn (round-robin, so a busy group cannot starve a quiet one), and when
//! none has anything it waits in one `poll(2)` on their readiness descriptors, which are
//! level-triggered and readable while a transport has events queued
//! ([`pgm::socket::RecvSocket`]'s `AsFd`): no thread per group, no wake-up lost.

use std::{net::IpAddr, os::fd::AsRawFd, time::Duration};

use epgm::Url;
use pgm::{
    socket::{self, Clock, RecvError},
    sys::event::poll_readable,
};

use super::{
    announce::{self, AnnounceError, MAP_TOPIC},
    publisher::url_for,
    ShardMap,
};
use crate::{
    decoder::RecvEvent,
    filter::Filter,
    options::{ConnectError, Options},
    slow_consumer::SlowConsumer,
    subscriber::{Subscriber, SubscriberStats},
};

/// The counters of one joined group.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SubscriberShardStats {
    /// The group.
    pub group: IpAddr,
    /// The shard prefixes routed to it.
    pub prefixes: Vec<Vec<u8>>,
    /// Its subscriber's counters (since it joined).
    pub stats: SubscriberStats,
}

/// A subscriber of a sharded publisher's topics (docs/sharding.md): it knows the publisher's
/// map from [`Options::shards`](crate::Options::shards) and joins exactly the groups its
/// subscriptions can match ([`ShardMap::groups_for`]), one [`Subscriber`] each; a group is left
/// (its transport closed, which drops the membership) once no subscription needs it.
///
/// Subscriptions work as on a [`Subscriber`]: reference-counted byte prefixes, the empty one
/// for everything, none for nothing (and then no group is joined at all).
#[derive(Debug)]
pub struct ShardedSubscriber {
    url: Url,
    options: Options,
    map: ShardMap,
    /// Every subscription with its references: the source of the groups needed.
    filter: Filter,
    /// Joined groups (index into `map.groups()`) and their subscribers, in index order.
    joined: Vec<(usize, Subscriber)>,
    /// Where the next round-robin pass starts.
    next: usize,
    clock: Clock,
}

/// Why [`ShardedSubscriber::discover`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoverError {
    /// The endpoint or the options were refused, or a socket could not be opened.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// No valid announcement arrived in time.
    #[error("no shard map announced on the endpoint's group within {waited:?}{}",
        .refused.as_ref().map(|e| format!(" (last one refused: {e})")).unwrap_or_default())]
    NoMap {
        /// How long it waited.
        waited: Duration,
        /// Why the last announcement heard was refused, if one was.
        refused: Option<AnnounceError>,
    },
    /// The endpoint's transport failed while waiting.
    #[error("waiting for the shard map: {0}")]
    Recv(RecvError),
}

/// How long a receive may wait.
#[derive(Clone, Copy)]
enum Wait {
    Forever,
    For(Duration),
    No,
}

impl ShardedSubscriber {
    /// Checks the map of [`Options::shards`](crate::Options::shards) against `endpoint`
    /// (`pgm://` or `epgm://IFACE;GROUP:PORT`); joins nothing until the first
    /// [`ShardedSubscriber::subscribe`].
    pub fn connect(endpoint: &str, options: &Options) -> Result<Self, ConnectError> {
        Self::check_policy(options)?;
        let url = Url::parse(endpoint).map_err(socket::OpenError::from)?;
        let map = ShardMap::new(url.endpoint.group, &options.shards)?;
        Ok(Self::with_map(url, map, options))
    }

    /// Learns the map from the publisher's announcement on the endpoint's group
    /// ([`Options::announce_shards`](crate::Options::announce_shards); [`Options::shards`](
    /// crate::Options::shards) is ignored), waiting at most `timeout` for one that is valid
    /// for this endpoint ([`announce::decode`]). The first valid one counts; later ones are
    /// not followed. Joins nothing until the first [`ShardedSubscriber::subscribe`].
    pub fn discover(
        endpoint: &str,
        options: &Options,
        timeout: Duration,
    ) -> Result<Self, DiscoverError> {
        Self::check_policy(options)?;
        let url =
            Url::parse(endpoint).map_err(|e| ConnectError::from(socket::OpenError::from(e)))?;
        let mut probe = Subscriber::connect(endpoint, &Self::single(options))?;
        probe.subscribe(MAP_TOPIC);
        let clock = Clock::new();
        let mut refused = None;
        let map = loop {
            let left = timeout.saturating_sub(clock.elapsed());
            let no_map = |refused| DiscoverError::NoMap {
                waited: timeout,
                refused,
            };
            if left.is_zero() {
                return Err(no_map(refused));
            }
            match probe.recv_timeout(left) {
                Ok(RecvEvent::Message(m)) if m.topic()[..] == *MAP_TOPIC => {
                    match m
                        .body()
                        .first()
                        .map(|f| announce::decode(f, url.endpoint.group))
                    {
                        Some(Ok(map)) if m.body().len() == 1 => break map,
                        Some(Err(e)) => refused = Some(e),
                        _ => refused = Some(AnnounceError::Malformed("not two frames")),
                    }
                }
                Ok(_) => {}
                Err(RecvError::Timeout) => return Err(no_map(refused)),
                Err(e) => return Err(DiscoverError::Recv(e)),
            }
        };
        probe.close();
        Ok(Self::with_map(url, map, options))
    }

    /// `options` for the one-group subscribers.
    /// Only [`SlowConsumer::Block`]: the drain thread of the other policies serves one session.
    /// And no second path.
    fn check_policy(options: &Options) -> Result<(), ConnectError> {
        crate::options::check_no_second_path(options)?;
        match options.slow_consumer {
            SlowConsumer::Block => Ok(()),
            _ => Err(ConnectError::ShardedSlowConsumer),
        }
    }

    fn single(options: &Options) -> Options {
        Options {
            shards: Vec::new(),
            announce_shards: None,
            ..options.clone()
        }
    }

    fn with_map(url: Url, map: ShardMap, options: &Options) -> Self {
        ShardedSubscriber {
            url,
            options: Self::single(options),
            map,
            filter: Filter::new(),
            joined: Vec::new(),
            next: 0,
            clock: Clock::new(),
        }
    }

    /// The map in use.
    pub fn map(&self) -> &ShardMap {
        &self.map
    }

    /// The groups joined now, in [`ShardMap::groups`] order.
    pub fn joined_groups(&self) -> Vec<IpAddr> {
        self.joined
            .iter()
            .map(|&(g, _)| self.map.groups()[g])
            .collect()
    }

    /// Adds a subscription (see [`Subscriber::subscribe`]) and joins the groups it needs that
    /// are not joined yet. On an error nothing changed.
    pub fn subscribe(&mut self, prefix: impl AsRef<[u8]>) -> Result<(), ConnectError> {
        let prefix = prefix.as_ref();
        if !self.filter.subscribe(prefix) {
            return Ok(());
        }
        let mut opened = Vec::new();
        for g in self.map.groups_for(prefix) {
            if self.position(g).is_err() {
                match self.open(g) {
                    Ok(sub) => opened.push((g, sub)),
                    Err(e) => {
                        self.filter.unsubscribe(prefix);
                        return Err(e);
                    }
                }
            }
        }
        for (_, sub) in &mut self.joined {
            sub.subscribe(prefix);
        }
        for (g, sub) in opened {
            let at = self.position(g).unwrap_or_else(|at| at);
            self.joined.insert(at, (g, sub));
        }
        Ok(())
    }

    /// Drops one reference to a subscription (false when it was not subscribed); leaves the
    /// groups no remaining subscription needs.
    pub fn unsubscribe(&mut self, prefix: impl AsRef<[u8]>) -> bool {
        let prefix = prefix.as_ref();
        if !self.filter.unsubscribe(prefix) {
            return false;
        }
        if self.filter.subscriptions().any(|(p, _)| p == prefix) {
            return true;
        }
        let needed = self
            .map
            .groups_for_all(self.filter.subscriptions().map(|(p, _)| p));
        self.joined.retain_mut(|(g, sub)| {
            if needed.contains(g) {
                sub.unsubscribe(prefix);
                true
            } else {
                sub.close();
                false
            }
        });
        true
    }

    /// A subscriber of group `g` with every current subscription.
    fn open(&self, g: usize) -> Result<Subscriber, ConnectError> {
        let endpoint = url_for(&self.url, self.map.groups()[g]);
        let mut sub = Subscriber::connect(&endpoint, &self.options)?;
        for (p, _) in self.filter.subscriptions() {
            sub.subscribe(p);
        }
        Ok(sub)
    }

    /// Where group `g` is (or would be) in `joined`.
    fn position(&self, g: usize) -> Result<usize, usize> {
        self.joined.binary_search_by_key(&g, |&(i, _)| i)
    }

    /// The next message or gap from any joined group, waiting as long as it takes.
    pub fn recv(&mut self) -> Result<RecvEvent, RecvError> {
        self.next_event(Wait::Forever)
    }

    /// The next message or gap, or [`RecvError::Timeout`] after `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<RecvEvent, RecvError> {
        self.next_event(Wait::For(timeout))
    }

    /// The next message or gap if one is ready, else [`RecvError::Empty`].
    pub fn try_recv(&mut self) -> Result<RecvEvent, RecvError> {
        self.next_event(Wait::No)
    }

    /// The next event but the map's announcements (they are for [`ShardedSubscriber::discover`],
    /// not for the application).
    fn next_event(&mut self, wait: Wait) -> Result<RecvEvent, RecvError> {
        let mut deadline = None;
        loop {
            match self.next_any(wait, &mut deadline) {
                Ok(RecvEvent::Message(m)) if m.topic()[..] == *MAP_TOPIC => {}
                r => return r,
            }
        }
    }

    /// The next event of any joined group; `deadline` is set by the first call of a receive
    /// that has to wait.
    fn next_any(
        &mut self,
        wait: Wait,
        deadline: &mut Option<Duration>,
    ) -> Result<RecvEvent, RecvError> {
        loop {
            let n = self.joined.len();
            for k in 0..n {
                let i = (self.next + k) % n;
                match self.joined[i].1.try_recv() {
                    Err(RecvError::Empty) => {}
                    r => {
                        self.next = i + 1;
                        return r;
                    }
                }
            }
            let left = match wait {
                Wait::No => return Err(RecvError::Empty),
                Wait::Forever => None,
                Wait::For(t) => {
                    let now = self.clock.elapsed();
                    let d = *deadline.get_or_insert(now + t);
                    match d.checked_sub(now) {
                        Some(left) if !left.is_zero() => Some(left),
                        _ => return Err(RecvError::Timeout),
                    }
                }
            };
            match self.joined.as_mut_slice() {
                // One group: its own wait (no readiness descriptor needed).
                [(_, sub)] => {
                    return match left {
                        None => sub.recv(),
                        Some(left) => sub.recv_timeout(left),
                    }
                }
                // Nothing joined, nothing to come: wait out the time.
                [] => match left {
                    Some(left) => std::thread::sleep(left),
                    None => std::thread::sleep(Duration::from_hours(1)),
                },
                subs => {
                    let fds: Vec<_> = subs.iter().map(|(_, s)| s.as_raw_fd()).collect();
                    poll_readable(&fds, left).map_err(|e| RecvError::Failed(e.to_string()))?;
                }
            }
        }
    }

    /// Each joined group's counters, in [`ShardMap::groups`] order.
    pub fn shard_stats(&self) -> Vec<SubscriberShardStats> {
        self.joined
            .iter()
            .map(|(g, sub)| SubscriberShardStats {
                group: self.map.groups()[*g],
                prefixes: self.map.prefixes_of(*g).map(<[u8]>::to_vec).collect(),
                stats: sub.stats(),
            })
            .collect()
    }

    /// The joined groups' subscribers, in [`ShardMap::groups`] order (for their monitors
    /// and counters).
    pub fn subscribers(&self) -> impl Iterator<Item = (IpAddr, &Subscriber)> {
        self.joined.iter().map(|(g, s)| (self.map.groups()[*g], s))
    }

    /// Stops every joined group's transport (queued data is dropped); the groups stay in the
    /// list, so their counters stay readable. Calling it again does nothing.
    pub fn close(&mut self) {
        for (_, sub) in &mut self.joined {
            sub.close();
        }
    }
}
