//! The systematic Reed-Solomon erasure code of RFC 3208 Appendix A as OpenPGM builds it
//! (`reed_solomon.c`, after Rizzo's "vdm" code): a Vandermonde matrix on the evaluation points
//! 0, α^0, α^1, … made systematic by multiplying with the inverse of its top k×k block.
//!
//! Block position ("row") r < k is data packet r; row k + h is parity packet h. A row's
//! coefficients depend only on k and r, so any h up to [`ReedSolomon::max_parity`] is usable.

use super::{gf256, FecError};

/// Rows of the code: the 256 distinct evaluation points of GF(2^8) (0 and the 255 powers of α).
pub const MAX_BLOCK: usize = 256;

/// One received symbol handed to [`ReedSolomon::decode`]: its block row and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Symbol<'a> {
    /// Block row: `0..k` for data, `k + h` for parity packet h.
    pub row: usize,
    /// The symbol; all symbols of one decode have the same length.
    pub data: &'a [u8],
}

/// The code for one group size k: its parity rows, computed once.
#[derive(Debug, Clone)]
pub struct ReedSolomon {
    k: usize,
    /// `(MAX_BLOCK - k) × k`, row-major: parity row h at `h*k..(h+1)*k`.
    parity: Vec<u8>,
}

impl ReedSolomon {
    /// The code for groups of `k` data packets, 1 ≤ k < [`MAX_BLOCK`].
    pub fn new(k: usize) -> Result<Self, FecError> {
        if k == 0 || k >= MAX_BLOCK {
            return Err(FecError::GroupSize(k));
        }
        // Top k×k block of the Vandermonde matrix, inverted.
        let mut top = vec![0u8; k * k];
        for r in 0..k {
            top[r * k..(r + 1) * k].copy_from_slice(&vandermonde_row(r, k));
        }
        let top_inv = invert(&top, k).ok_or(FecError::Singular)?;
        let rows = MAX_BLOCK - k;
        let mut parity = vec![0u8; rows * k];
        for h in 0..rows {
            let v = vandermonde_row(k + h, k);
            let out = &mut parity[h * k..(h + 1) * k];
            for (i, &vi) in v.iter().enumerate() {
                for (o, &t) in out.iter_mut().zip(&top_inv[i * k..(i + 1) * k]) {
                    *o ^= gf256::mul(vi, t);
                }
            }
        }
        Ok(Self { k, parity })
    }

    /// k, the number of data packets in a group.
    pub fn k(&self) -> usize {
        self.k
    }

    /// How many distinct parity packets a group has: `MAX_BLOCK - k`.
    pub fn max_parity(&self) -> usize {
        MAX_BLOCK - self.k
    }

    /// The generator coefficients of parity packet `h` (`G[k+h]`), if `h` is in range.
    pub fn parity_row(&self, h: usize) -> Option<&[u8]> {
        (h < self.max_parity()).then(|| &self.parity[h * self.k..(h + 1) * self.k])
    }

    /// Writes parity packet `h` of the k equal-length symbols `data` into `out` (same length).
    pub fn encode(&self, data: &[&[u8]], h: usize, out: &mut [u8]) -> Result<(), FecError> {
        let row = self.parity_row(h).ok_or(FecError::ParityIndex(h))?;
        if data.len() != self.k {
            return Err(FecError::SymbolCount {
                got: data.len(),
                want: self.k,
            });
        }
        if data.iter().any(|d| d.len() != out.len()) {
            return Err(FecError::SymbolLength);
        }
        out.fill(0);
        for (&c, src) in row.iter().zip(data) {
            gf256::mul_add_slice(c, src, out);
        }
        Ok(())
    }

    /// Rebuilds the missing data symbols from k received symbols of distinct rows (data and
    /// parity in any mix; extra symbols beyond the first k distinct rows are ignored).
    ///
    /// Returns the recovered `(data row, bytes)` pairs in row order; rows that were received
    /// are not returned.
    pub fn decode(&self, symbols: &[Symbol<'_>]) -> Result<Vec<(usize, Vec<u8>)>, FecError> {
        let k = self.k;
        let mut used: Vec<Symbol<'_>> = Vec::with_capacity(k);
        let mut seen = [false; MAX_BLOCK];
        // Data first: each received data row saves work.
        for s in symbols
            .iter()
            .filter(|s| s.row < k)
            .chain(symbols.iter().filter(|s| s.row >= k))
        {
            if used.len() == k {
                break;
            }
            if s.row >= MAX_BLOCK {
                return Err(FecError::ParityIndex(s.row - k));
            }
            if !std::mem::replace(&mut seen[s.row], true) {
                used.push(*s);
            }
        }
        if used.len() < k {
            return Err(FecError::SymbolCount {
                got: used.len(),
                want: k,
            });
        }
        let len = used[0].data.len();
        if used.iter().any(|s| s.data.len() != len) {
            return Err(FecError::SymbolLength);
        }
        let missing: Vec<usize> = (0..k).filter(|&r| !seen[r]).collect();
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        // Recovery matrix: unit rows for data, generator rows for parity.
        let mut m = vec![0u8; k * k];
        for (i, s) in used.iter().enumerate() {
            let row = &mut m[i * k..(i + 1) * k];
            if s.row < k {
                row[s.row] = 1;
            } else {
                row.copy_from_slice(&self.parity[(s.row - k) * k..(s.row - k + 1) * k]);
            }
        }
        let inv = invert(&m, k).ok_or(FecError::Singular)?;
        let mut out = Vec::with_capacity(missing.len());
        for r in missing {
            let mut buf = vec![0u8; len];
            for (&c, s) in inv[r * k..(r + 1) * k].iter().zip(&used) {
                gf256::mul_add_slice(c, s.data, &mut buf);
            }
            out.push((r, buf));
        }
        Ok(out)
    }
}

/// Row `r` of the Vandermonde matrix: point 0 for r = 0 (0^0 = 1), else α^(r-1), to the powers
/// 0..k.
fn vandermonde_row(r: usize, k: usize) -> Vec<u8> {
    if r == 0 {
        let mut v = vec![0u8; k];
        v[0] = 1;
        return v;
    }
    (0..k).map(|c| gf256::pow_alpha((r - 1) * c)).collect()
}

/// Inverts the row-major n×n matrix `m` by Gauss-Jordan elimination; `None` if singular.
#[expect(
    clippy::many_single_char_names,
    reason = "matrix maths: a, n, r, c, f, p as in the textbook"
)]
fn invert(m: &[u8], n: usize) -> Option<Vec<u8>> {
    let mut a = m.to_vec();
    let mut inv = vec![0u8; n * n];
    for i in 0..n {
        inv[i * n + i] = 1;
    }
    for col in 0..n {
        let pivot = (col..n).find(|&r| a[r * n + col] != 0)?;
        if pivot != col {
            for c in 0..n {
                a.swap(pivot * n + c, col * n + c);
                inv.swap(pivot * n + c, col * n + c);
            }
        }
        let p = gf256::inv(a[col * n + col])?;
        for c in 0..n {
            a[col * n + c] = gf256::mul(a[col * n + c], p);
            inv[col * n + c] = gf256::mul(inv[col * n + c], p);
        }
        for r in 0..n {
            let f = a[r * n + col];
            if r == col || f == 0 {
                continue;
            }
            for c in 0..n {
                a[r * n + c] ^= gf256::mul(f, a[col * n + c]);
                inv[r * n + c] ^= gf256::mul(f, inv[col * n + c]);
            }
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generator rows the wire brief (fec-pgmcc-ipv6-notes.md §1.2) reproduced from
    /// OpenPGM 5.3.128 captures.
    #[test]
    fn openpgm_generator_rows() {
        let cases: [(usize, &[u8], &[u8]); 3] = [
            (2, &[3, 2], &[5, 4]),
            (4, &[119, 64, 56, 14], &[199, 167, 13, 108]),
            (
                8,
                &[137, 24, 208, 125, 146, 164, 245, 254],
                &[54, 248, 208, 206, 37, 25, 251, 22],
            ),
        ];
        for (k, p0, p1) in cases {
            let rs = ReedSolomon::new(k).expect("k in range");
            assert_eq!(rs.parity_row(0), Some(p0), "k={k} parity 0");
            assert_eq!(rs.parity_row(1), Some(p1), "k={k} parity 1");
        }
    }

    /// The brief's worked example: k = 4, sources 01 10, 02 20, 03 30, 04 40.
    #[test]
    fn openpgm_parity_payloads() {
        let rs = ReedSolomon::new(4).expect("k in range");
        let src: [&[u8]; 4] = [&[0x01, 0x10], &[0x02, 0x20], &[0x03, 0x30], &[0x04, 0x40]];
        let mut out = [0u8; 2];
        for (h, want) in [[0x87, 0x98], [0x2e, 0xda], [0x1a, 0xbd]]
            .iter()
            .enumerate()
        {
            rs.encode(&src, h, &mut out).expect("encode");
            assert_eq!(&out, want, "parity {h}");
        }
    }

    #[test]
    fn systematic_top_is_identity() {
        // Decoding from data rows only returns nothing, and every k-subset of rows decodes.
        let rs = ReedSolomon::new(2).expect("k");
        let a = [1u8, 2, 3];
        let b = [4u8, 5, 6];
        let mut p = [[0u8; 3]; 3];
        for (h, out) in p.iter_mut().enumerate() {
            rs.encode(&[&a, &b], h, out).expect("encode");
        }
        for i in 0..3 {
            for j in i + 1..3 {
                let got = rs
                    .decode(&[
                        Symbol {
                            row: 2 + i,
                            data: &p[i],
                        },
                        Symbol {
                            row: 2 + j,
                            data: &p[j],
                        },
                    ])
                    .expect("decode");
                assert_eq!(got, vec![(0, a.to_vec()), (1, b.to_vec())]);
            }
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(ReedSolomon::new(0).is_err());
        assert!(ReedSolomon::new(256).is_err());
        let rs = ReedSolomon::new(4).expect("k");
        assert_eq!(rs.max_parity(), 252);
        assert!(rs.parity_row(252).is_none());
        let d: &[u8] = &[0u8; 4];
        let mut out = [0u8; 4];
        assert!(rs.encode(&[d; 4], 252, &mut out).is_err());
        assert!(rs.encode(&[d; 3], 0, &mut out).is_err());
        assert!(rs.encode(&[&d[..3], d, d, d], 0, &mut out).is_err());
        assert!(rs.decode(&[Symbol { row: 0, data: d }; 4]).is_err());
        assert!(rs.decode(&[Symbol { row: 300, data: d }; 4]).is_err());
    }
}
