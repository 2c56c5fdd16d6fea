//! Sequence numbers with 32-bit serial arithmetic (RFC 1982), as PGM uses for every sqn.

use std::{
    cmp::Ordering,
    fmt,
    ops::{Add, Sub},
};

/// A PGM sequence number (ODATA/RDATA sqn, SPM sqn, window edges).
///
/// Ordering is serial: `a < b` when `b - a` (wrapping) is in `1..2^31`. That relation is not
/// transitive across more than half the space, which is why `SeqNo` implements only
/// [`PartialOrd`]: windows keep every compared value within 2^31 of each other.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNo(pub u32);

impl SeqNo {
    /// The sqn `n` places after this one (wrapping).
    #[must_use]
    pub const fn add(self, n: u32) -> SeqNo {
        SeqNo(self.0.wrapping_add(n))
    }

    /// The sqn `n` places before this one (wrapping).
    #[must_use]
    pub const fn sub(self, n: u32) -> SeqNo {
        SeqNo(self.0.wrapping_sub(n))
    }

    /// The next sqn.
    #[must_use]
    pub const fn next(self) -> SeqNo {
        self.add(1)
    }

    /// How many places `self` lies after `earlier` (wrapping), i.e. `self - earlier` mod 2^32.
    pub const fn distance_from(self, earlier: SeqNo) -> u32 {
        self.0.wrapping_sub(earlier.0)
    }

    /// Signed serial difference `self - other`.
    pub const fn diff(self, other: SeqNo) -> i32 {
        self.0.wrapping_sub(other.0).cast_signed()
    }

    /// The later of the two in serial order.
    #[must_use]
    pub fn max_serial(self, other: SeqNo) -> SeqNo {
        if self.diff(other) >= 0 {
            self
        } else {
            other
        }
    }

    /// The earlier of the two in serial order.
    #[must_use]
    pub fn min_serial(self, other: SeqNo) -> SeqNo {
        if self.diff(other) <= 0 {
            self
        } else {
            other
        }
    }
}

impl PartialOrd for SeqNo {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.diff(*other).cmp(&0))
    }
}

impl Add<u32> for SeqNo {
    type Output = SeqNo;
    fn add(self, rhs: u32) -> SeqNo {
        SeqNo::add(self, rhs)
    }
}

impl Sub<u32> for SeqNo {
    type Output = SeqNo;
    fn sub(self, rhs: u32) -> SeqNo {
        SeqNo::sub(self, rhs)
    }
}

impl From<u32> for SeqNo {
    fn from(v: u32) -> Self {
        SeqNo(v)
    }
}

impl fmt::Debug for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl fmt::Display for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_order_wraps() {
        let a = SeqNo(u32::MAX);
        let b = a.next();
        assert_eq!(b, SeqNo(0));
        assert!(a < b);
        assert!(b > a);
        assert_eq!(b.distance_from(a), 1);
        assert_eq!(a.diff(b), -1);
        assert_eq!(a.max_serial(b), b);
        assert!(SeqNo(5) < SeqNo(5 + (1 << 31) - 1));
        assert!(SeqNo(5) > SeqNo(5u32.wrapping_add(1 << 31).wrapping_add(1)));
    }
}
