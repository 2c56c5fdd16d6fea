//! PGM (RFC 3208): wire format, sans-IO protocol engine, network simulator and raw-IP transport.
//!
//! The core has no sockets and no clock:
//!
//! - [`wire`]: zero-copy packet views and owned `Repr` types for every RFC 3208 packet type,
//!   options and the checksum.
//! - [`Source`] and [`Receiver`]: the protocol engine, driven through the [`Node`] verbs with
//!   time passed in ([`time::Instant`]); configured by [`SourceConfig`] / [`ReceiverConfig`].
//!
//! Features:
//!
//! - `io` (default): [`socket`] (sockets with an IO thread, the OS clock) and [`transport`]
//!   (raw IPv4 PGM, and the [`transport::Transport`] trait the `epgm` crate's UDP transport
//!   implements). Without it the crate needs neither mio, socket2 nor libc.
//! - `sim`: the seeded in-process network simulator (module `sim`) the scenario tests, benches
//!   and fuzz targets drive the engine in.

pub mod cc;
pub mod config;
pub mod dual;
pub mod event;
pub mod fec;
pub mod node;
pub mod rate;
pub mod receiver;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(feature = "io")]
pub mod socket;
pub mod source;
#[cfg(feature = "io")]
pub mod sys;
pub mod time;
pub mod transmit;
#[cfg(feature = "io")]
pub mod transport;
pub mod wire;

pub use config::{
    Congestion, FecConfig, History, JoinPolicy, Mtu, NakTiming, PgmccConfig, ReceiverConfig,
    ReceiverLimits, RepairBudget, SourceConfig,
};
pub use event::Event;
pub use node::Node;
pub use receiver::{PeerState, PeerStats, Receiver, ReceiverStats};
pub use source::{Source, SourceStats};
pub use transmit::Transmit;
