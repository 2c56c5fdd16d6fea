//! Brokerless publish/subscribe over PGM and EPGM, wire-compatible with libzmq 4.3.4's
//! `pgm://` and `epgm://` transports (a libzmq SUB can read a [`Publisher`], a [`Subscriber`]
//! can read a libzmq PUB).
//!
//! ```no_run
//! use std::time::Duration;
//! use pubsub::{Options, Publisher, RecvEvent, Subscriber};
//!
//! let opts = Options::default();
//! let mut sub = Subscriber::connect("epgm://eth0;239.192.1.1:5555", &opts)?;
//! sub.subscribe(b"md.AAPL");
//! let publisher = Publisher::connect("epgm://eth0;239.192.1.1:5555", &opts)?;
//! publisher.send(b"md.AAPL", b"bid 189.20")?;
//! publisher.flush()?;
//! match sub.recv_timeout(Duration::from_secs(1))? {
//!     RecvEvent::Message(m) => println!("{:?} {:?}", m.topic(), m.body()),
//!     RecvEvent::Gap { tsi, lost } => println!("lost {lost} packets from {tsi}: resync"),
//!     _ => {}
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The crate is split the sans-IO way (style brief §9):
//!
//! - [`frame`]: libzmq v1 frames (pure).
//! - [`encoder`]: messages → APDUs with libzmq's offset field, batched with a linger (pure).
//! - [`decoder`]: APDUs per publisher → complete, filtered messages; join, resync and gap
//!   reporting (pure).
//! - [`filter`]: reference-counted topic prefixes (pure).
//! - [`slow_consumer`]: the bounded buffer of the drop-oldest and conflate policies (pure),
//!   which a drain thread of the [`Subscriber`] fills (docs/slow-consumers.md).
//! - [`Publisher`] and [`Subscriber`]: thin wrappers that move APDUs between those and the
//!   transport sockets of the `pgm`/`epgm` crates.
//! - [`join`]: late join, with the publisher's history or its current state
//!   (docs/late-join.md).
//! - [`shard`]: topic prefixes → multicast groups, one session each ([`ShardedPublisher`],
//!   [`ShardedSubscriber`]; docs/sharding.md).
//! - With the `tokio` feature, `tokio::AsyncPublisher` and `tokio::AsyncSubscriber`:
//!   the same over tokio's reactor (docs/async.md).

pub mod decoder;
mod drain;
pub mod encoder;
pub mod filter;
pub mod frame;
pub mod join;
mod options;
mod publisher;
pub mod shard;
pub mod slow_consumer;
mod subscriber;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use decoder::{Decoder, DecoderConfig, DecoderStats, Frames, Message, RecvEvent};
pub use encoder::{Encoder, EncoderConfig, EncoderStats};
pub use filter::Filter;
pub use join::Join;
pub use options::{ConnectError, Options};
pub use pgm::{socket::SocketOptions, wire::Tsi};
pub use publisher::{Publisher, PublisherStats, SendError};
pub use shard::{Shard, ShardMap, ShardedPublisher, ShardedSubscriber};
pub use slow_consumer::{Bound, PolicyStats, SlowConsumer};
pub use subscriber::{RecvError, Subscriber, SubscriberStats};
