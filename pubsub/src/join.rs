//! What a subscriber gets of what was published before it joined (docs/late-join.md).
//!
//! A publisher that keeps a history (`pgm::History`: its transmit window bounded by age or
//! bytes, offered with OPT_JOIN, RFC 3208 §9.4) repairs it to a late joiner whose transport
//! starts at the advertised trail (`pgm::JoinPolicy::AdvertisedTrail`). The transport
//! delivers that history in order, then reports `pgm::Event::CaughtUp`; what comes after is
//! live. On top of it a subscriber asks for one of:
//!
//! - [`Join::Live`]: nothing older than the data it first hears (libzmq's behaviour).
//! - [`Join::History`]: every message still held, in order, then live.
//! - [`Join::CurrentState`]: a last-value view: the history conflated to the newest message
//!   per publisher and topic, delivered at [`RecvEvent::CaughtUp`](crate::RecvEvent::CaughtUp),
//!   then live, so each topic's sequence continues from its newest value without a gap.

use crate::slow_consumer::Bound;

/// A subscriber's late-join mode; see the [module docs](self).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Join {
    /// Start with the first data heard (default).
    #[default]
    Live,
    /// Catch up on the publisher's history, every message in order, then live.
    History,
    /// Catch up on the history, conflated to the newest message per publisher and topic
    /// (at most the bound's topics and bytes per publisher; evictions are announced by
    /// [`RecvEvent::Dropped`](crate::RecvEvent::Dropped)), then live.
    CurrentState(Bound),
}

impl Join {
    /// The transport's join policy for this mode.
    pub fn policy(self) -> pgm::JoinPolicy {
        match self {
            Join::Live => pgm::JoinPolicy::FirstSeen,
            Join::History | Join::CurrentState(_) => pgm::JoinPolicy::AdvertisedTrail,
        }
    }
}
