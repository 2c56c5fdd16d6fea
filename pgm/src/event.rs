//! What a receiver reports to its application.

use bytes::Bytes;

use crate::wire::{SeqNo, Tsi};

/// An event from [`crate::Receiver::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A whole APDU, delivered in order per TSI.
    Data {
        /// The session it came from.
        tsi: Tsi,
        /// The application data unit (fragments reassembled).
        apdu: Bytes,
    },
    /// Data that will never be delivered: `count` sqns from `first` on were lost (or belonged
    /// to an APDU that could not be completed). Delivery continues after them.
    Loss {
        /// The session.
        tsi: Tsi,
        /// First lost sqn.
        first: SeqNo,
        /// Number of consecutive sqns lost.
        count: u32,
    },
    /// A new session was seen.
    PeerJoined {
        /// The session.
        tsi: Tsi,
    },
    /// A session joined with [`crate::JoinPolicy::AdvertisedTrail`] delivered everything up
    /// to the data it found on joining: the history it caught up on (docs/late-join.md).
    /// What follows is live.
    CaughtUp {
        /// The session.
        tsi: Tsi,
    },
    /// A session went silent for the peer expiry time (or finished) and was forgotten.
    PeerExpired {
        /// The session.
        tsi: Tsi,
    },
}
