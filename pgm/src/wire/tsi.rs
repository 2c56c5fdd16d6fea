//! Transport session identifiers: GSI (6 bytes) + data-source port.

use std::fmt;

/// Global Source ID (RFC 3208 §8): 6 bytes, constant for a session.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Gsi(pub [u8; 6]);

impl Gsi {
    /// The 12 lowercase hex digits of the GSI.
    pub fn to_hex(&self) -> String {
        use fmt::Write;
        self.0.iter().fold(String::with_capacity(12), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }
}

impl fmt::Debug for Gsi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Gsi {
    /// Dotted decimal, as OpenPGM prints it (`tsi.c`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.0;
        write!(f, "{}.{}.{}.{}.{}.{}", g[0], g[1], g[2], g[3], g[4], g[5])
    }
}

/// Transport Session Identifier: GSI plus the source's data-source port (RFC 3208 §8).
///
/// Peers must be keyed by the whole TSI: libzmq processes share one GSI (docs/wire-compatibility.md §3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Tsi {
    /// Global source ID.
    pub gsi: Gsi,
    /// Data-source port.
    pub sport: u16,
}

impl Tsi {
    /// A TSI from its parts.
    pub const fn new(gsi: Gsi, sport: u16) -> Self {
        Tsi { gsi, sport }
    }
}

impl fmt::Debug for Tsi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Tsi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.gsi, self.sport)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_openpgm() {
        let tsi = Tsi::new(Gsi([0xb7, 0xc6, 0xd1, 0xbc, 0x03, 0x8a]), 62405);
        assert_eq!(tsi.to_string(), "183.198.209.188.3.138.62405");
        assert_eq!(tsi.gsi.to_hex(), "b7c6d1bc038a");
    }
}
