//! Options of a [`crate::Publisher`] or [`crate::Subscriber`], and the errors of opening one.

use std::time::Duration;

use pgm::{
    socket::{OpenError, SocketOptions},
    Mtu,
};

use crate::{
    decoder::DEFAULT_MAX_MESSAGE_SIZE,
    encoder::DEFAULT_LINGER,
    join::Join,
    shard::{Shard, ShardError},
    slow_consumer::SlowConsumer,
};

/// Options of both sides; each side reads the fields it needs. Build with
/// [`Options::default`] and the `with_*` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The transport's options: the socket's (rate, TPDU, hops, NAK timing, buffers, GSI…)
    /// and the encapsulation's (EPGM's UDP GSO).
    pub transport: epgm::Options,
    /// Publisher: how long a part-filled APDU waits for more messages; zero sends every
    /// message as its own APDU(s) at once.
    pub batch_linger: Duration,
    /// Publisher: largest APDU, offset field included. `None` takes libzmq's `PGM_MSS` for the
    /// TPDU and scheme (1428 for epgm, 1436 for pgm at 1500). At most the transport's
    /// unfragmented TSDU, so an APDU is never fragmented.
    pub max_payload: Option<usize>,
    /// Subscriber: largest message (all frames) delivered; longer ones are decode errors.
    pub max_message_size: usize,
    /// Topic prefix → multicast group (docs/sharding.md), read by
    /// [`crate::ShardedPublisher`] and [`crate::ShardedSubscriber`]; a plain
    /// [`crate::Publisher`] or [`crate::Subscriber`] refuses a non-empty list.
    pub shards: Vec<Shard>,
    /// Sharded publisher: announce the map on the endpoint's group at once and then every
    /// this often (at least 10 ms), for subscribers that discover it
    /// ([`crate::ShardedSubscriber::discover`]). `None` (default): no announcement.
    pub announce_shards: Option<Duration>,
    /// Subscriber: what happens when the application reads slower than the feed
    /// (docs/slow-consumers.md).
    pub slow_consumer: SlowConsumer,
    /// Subscriber: what it gets of what was published before it joined (docs/late-join.md).
    /// Other than [`Join::Live`] it overrides the transport's join policy.
    pub join: Join,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            transport: epgm::Options::default(),
            batch_linger: DEFAULT_LINGER,
            max_payload: None,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            shards: Vec::new(),
            announce_shards: None,
            slow_consumer: SlowConsumer::Block,
            join: Join::Live,
        }
    }
}

impl Options {
    /// Sets the socket part of [`Options::transport`].
    #[must_use]
    pub fn with_socket(mut self, socket: SocketOptions) -> Self {
        self.transport.socket = socket;
        self
    }

    /// Sets [`Options::transport`].
    #[must_use]
    pub fn with_transport(mut self, transport: epgm::Options) -> Self {
        self.transport = transport;
        self
    }

    /// Sets [`Options::batch_linger`].
    #[must_use]
    pub fn with_batch_linger(mut self, linger: Duration) -> Self {
        self.batch_linger = linger;
        self
    }

    /// Sets [`Options::max_payload`].
    #[must_use]
    pub fn with_max_payload(mut self, max_payload: usize) -> Self {
        self.max_payload = Some(max_payload);
        self
    }

    /// Sets [`Options::max_message_size`].
    #[must_use]
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`Options::shards`].
    #[must_use]
    pub fn with_shards(mut self, shards: Vec<Shard>) -> Self {
        self.shards = shards;
        self
    }

    /// Sets [`Options::announce_shards`].
    #[must_use]
    pub fn with_announce_shards(mut self, every: Duration) -> Self {
        self.announce_shards = Some(every);
        self
    }

    /// Fails when [`Options::shards`] or [`Options::announce_shards`] is set: a one-group
    /// publisher or subscriber would silently ignore them.
    pub(crate) fn check_unsharded(&self) -> Result<(), ConnectError> {
        if self.shards.is_empty() && self.announce_shards.is_none() {
            Ok(())
        } else {
            Err(ConnectError::Sharded)
        }
    }

    /// Sets [`Options::slow_consumer`].
    #[must_use]
    pub fn with_slow_consumer(mut self, policy: SlowConsumer) -> Self {
        self.slow_consumer = policy;
        self
    }

    /// Sets [`Options::join`].
    #[must_use]
    pub fn with_join(mut self, join: Join) -> Self {
        self.join = join;
        self
    }

    /// The transport options of a subscriber: [`Options::transport`] with the join policy
    /// [`Options::join`] needs.
    pub(crate) fn subscriber_transport(&self) -> epgm::Options {
        let mut t = self.transport.clone();
        if self.join != Join::Live {
            t.socket.engine.join = self.join.policy();
        }
        t
    }

    /// The APDU size a publisher uses over a transport with `ip_overhead` header bytes.
    pub(crate) fn payload_for(&self, ip_overhead: usize) -> Result<usize, ConnectError> {
        let mtu = Mtu {
            mtu: self.transport.socket.engine.tpdu,
            ip_overhead,
        };
        let limit = mtu.max_tsdu();
        let want = self.max_payload.unwrap_or_else(|| mtu.max_fragment_tsdu());
        if want > limit || want < crate::encoder::MIN_PAYLOAD {
            return Err(ConnectError::MaxPayload {
                max_payload: want,
                limit,
            });
        }
        Ok(want)
    }
}

/// Why a publisher or subscriber could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The endpoint, the transport options, or the OS refused.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// [`Options::max_payload`] does not fit one unfragmented packet.
    #[error("max_payload {max_payload} outside 3..={limit} (one unfragmented packet)")]
    MaxPayload {
        /// What was asked for (or derived from the TPDU).
        max_payload: usize,
        /// The transport's largest unfragmented TSDU.
        limit: usize,
    },
    /// [`Options::shards`] does not fit the endpoint.
    #[error(transparent)]
    Shard(#[from] ShardError),
    /// [`Options::shards`] given to a one-group publisher or subscriber.
    #[error(
        "options name shards or their announcement: open a ShardedPublisher or ShardedSubscriber"
    )]
    Sharded,
    /// [`Options::slow_consumer`] other than `Block` given to a [`crate::ShardedSubscriber`].
    #[error(
        "a ShardedSubscriber takes only SlowConsumer::Block (the drop-oldest and conflate \
         buffers drain one session)"
    )]
    ShardedSlowConsumer,
    /// A second path (`SocketOptions::second_path`, docs/dual-path.md) given to a
    /// [`crate::ShardedPublisher`] or [`crate::ShardedSubscriber`].
    #[error(
        "a sharded publisher or subscriber takes no second path (each shard is its own \
         session; an A/B session has one group per path)"
    )]
    ShardedSecondPath,
}

/// Sharded publishers and subscribers take no second path.
pub(crate) fn check_no_second_path(options: &Options) -> Result<(), ConnectError> {
    if options.transport.socket.multicast.second_path.is_some() {
        return Err(ConnectError::ShardedSecondPath);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_payload_is_libzmq_pgm_mss() {
        let o = Options::default();
        assert_eq!(o.payload_for(28).unwrap(), 1428);
        assert_eq!(o.payload_for(20).unwrap(), 1436);
        assert_eq!(
            o.clone().with_max_payload(1448).payload_for(28).unwrap(),
            1448
        );
        assert!(matches!(
            o.clone().with_max_payload(1449).payload_for(28),
            Err(ConnectError::MaxPayload { limit: 1448, .. })
        ));
        assert!(o.with_max_payload(2).payload_for(28).is_err());
    }

    #[test]
    fn sharded_sockets_refuse_a_second_path() {
        let path = pgm::socket::Endpoint::parse("lo;239.192.9.3:7500").unwrap();
        let mut o = Options::default();
        o.transport.socket = o.transport.socket.with_second_path(path);
        let e = crate::ShardedPublisher::connect("epgm://lo;239.192.9.2:7500", &o).unwrap_err();
        assert!(matches!(e, ConnectError::ShardedSecondPath), "{e}");
        let e = crate::ShardedSubscriber::connect("epgm://lo;239.192.9.2:7500", &o).unwrap_err();
        assert!(matches!(e, ConnectError::ShardedSecondPath), "{e}");
    }
}
