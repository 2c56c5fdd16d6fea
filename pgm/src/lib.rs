//! PGM (RFC 3208): wire format, sans-IO protocol engine, network simulator and raw-IP transport.
//!
//! - [`wire`]: zero-copy packet views and owned `Repr` types for every RFC 3208 packet type,
//!   options and the checksum.
//! - [`time`]: the [`time::Instant`] the engine is driven with (it never reads a clock).

pub mod config;
pub mod event;
pub mod rate;
pub mod receiver;
pub mod sim;
pub mod socket;
pub mod source;
pub mod time;
pub mod transmit;
pub mod transport;
pub mod wire;

pub use config::{
    JoinPolicy, Mtu, NakTiming, ReceiverConfig, ReceiverLimits, RepairBudget, SourceConfig,
};
pub use event::Event;
pub use receiver::{PeerStats, Receiver, ReceiverStats};
pub use socket::{Endpoint, RecvEvent, RecvSocket, SendSocket, SocketOptions};
pub use source::{SendError, Source, SourceStats};
pub use transmit::Transmit;
pub use transport::Transport;
