//! Forward error correction (RFC 3208 §11 and Appendix A): the Reed-Solomon erasure code over
//! GF(2^8), bit-compatible with OpenPGM 5.3.128's encoder, and the per-group parity of
//! variable-length packets.
//!
//! - [`gf256`]: the field (polynomial 0x11d, α = 2) and bulk multiply-accumulate.
//! - [`ReedSolomon`]: the systematic code for one group size k: [`ReedSolomon::encode`] any
//!   parity index, [`ReedSolomon::decode`] from any k of the k + h symbols.
//! - [`encode_parity`] / [`decode_group`]: whole TSDUs, padding and the length trailer.
//! - [`on_demand::OnDemand`]: a source's accounting of parity sent on demand per group.
//!
//! Sans-IO and allocation-light; see `docs/fec.md` for the design and the interop status.

mod code;
pub mod gf256;
mod group;
pub mod on_demand;

pub use code::{ReedSolomon, Symbol, MAX_BLOCK};
pub use group::{
    decode_fragments, decode_group, encode_fragments, encode_parity, fragment_symbol,
    EncodedFragment, ParityPayload, ParityRef, TRAILER_LEN,
};

/// Why an encode or decode was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FecError {
    /// A group size outside 1..256.
    #[error("transmission group size {0} is not in 1..256")]
    GroupSize(usize),
    /// A parity index at or beyond `256 - k`.
    #[error("parity index {0} is out of range for this group size")]
    ParityIndex(usize),
    /// Too few (or, for encode, not exactly k) symbols.
    #[error("{got} symbols where {want} are needed")]
    SymbolCount {
        /// Symbols given.
        got: usize,
        /// Symbols needed.
        want: usize,
    },
    /// Symbols of different lengths, or a length the TSDU field cannot carry.
    #[error("symbol lengths differ or exceed a TSDU")]
    SymbolLength,
    /// The recovery matrix has no inverse (cannot happen with distinct rows of this code).
    #[error("recovery matrix is singular")]
    Singular,
    /// Parity that cannot belong to this group: lengths, flags or trailer disagree.
    #[error("inconsistent parity: {0}")]
    Inconsistent(&'static str),
}
