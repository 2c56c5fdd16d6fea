//! RFC 3208 wire format: zero-copy views and owned `Repr` types for every PGM packet type.
//!
//! Parsing never panics and never reads past a checked length (the contract of smoltcp's
//! `wire`): [`Packet::new_checked`] gives a header view whose accessors cannot fail, and
//! [`PacketRepr::parse`] decodes the type body, the option chain and the payload of exactly the
//! type in the header. Emission appends to a `Vec` and fills in the checksum.

pub mod checksum;
mod cursor;
pub mod options;
mod packet;
mod pretty;
mod seq;
mod tsi;

pub use options::{Fragment, NakList, Options};
pub use packet::{
    flags, Ack, Body, Data, Nak, Packet, PacketRepr, PacketType, Poll, Polr, Spm, HEADER_LEN,
};
pub use pretty::{Field, FieldValue};
pub use seq::SeqNo;
pub use tsi::{Gsi, Tsi};

/// Why a packet was rejected. Callers drop the packet and count the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The packet ends inside the named structure.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// The TSDU length field disagrees with the bytes after header, body and options.
    #[error("TSDU length {declared} but {actual} bytes follow")]
    TsduLength {
        /// The header's TSDU length.
        declared: u16,
        /// The bytes actually present.
        actual: usize,
    },
    /// The checksum does not match.
    #[error("bad checksum")]
    BadChecksum,
    /// ODATA/RDATA without a checksum (RFC 3208 §8: "mandatory on data packets").
    #[error("data packet without checksum")]
    MissingChecksum,
    /// An NLA with an address family other than IPv4 (1) or IPv6 (2).
    #[error("unknown NLA address family {0}")]
    BadAfi(u16),
    /// A malformed option chain or option.
    #[error("bad option: {0}")]
    BadOption(&'static str),
    /// An OPT_FRAGMENT that cannot describe this packet.
    #[error("bad OPT_FRAGMENT: {0}")]
    BadFragment(&'static str),
    /// A malformed OPT_NAK_LIST.
    #[error("bad OPT_NAK_LIST: {0}")]
    BadNakList(&'static str),
}
