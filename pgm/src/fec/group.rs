//! One transmission group's parity, with packets of unequal length handled the way OpenPGM
//! does it (wire brief §1.6): when the k TSDUs differ in length, each source symbol is the TSDU,
//! zeros up to the longest length P, then a 2-byte **little-endian** length trailer, and the
//! parity TSDU is P + 2 bytes with the OPT_VAR_PKTLEN header bit. Equal lengths need neither.
//!
//! The RFC appends the trailer to received data packets as well before decoding; OpenPGM's
//! receiver does not (and so mis-decodes); we do.
//!
//! Everything here treats parity as untrusted: lengths that disagree, a trailer longer than its
//! symbol, or a parity index out of range are errors, never panics or out-of-bounds lengths.

use super::code::{ReedSolomon, Symbol};
use super::FecError;
use crate::wire::{
    options::{ENCODED_FRAGMENT_LEN, MAX_APDU, OP_ENCODED_NULL},
    Fragment, SeqNo,
};

/// An encoded OPT_FRAGMENT: option bytes 3..15.
pub type EncodedFragment = [u8; ENCODED_FRAGMENT_LEN];

/// Bytes of the length trailer.
pub const TRAILER_LEN: usize = 2;

/// The TSDU of one parity packet of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParityPayload {
    /// The parity TSDU: P bytes, or P + 2 with the length trailer.
    pub bytes: Vec<u8>,
    /// Whether the group's lengths differed (header bit OPT_VAR_PKTLEN; the trailer is present).
    pub var_pktlen: bool,
}

/// A received parity packet of a group, as [`decode_group`] takes it.
#[derive(Debug, Clone, Copy)]
pub struct ParityRef<'a> {
    /// Parity index h (block row k + h).
    pub index: usize,
    /// Its TSDU.
    pub bytes: &'a [u8],
    /// Its OPT_VAR_PKTLEN header bit.
    pub var_pktlen: bool,
}

/// Computes parity packet `h` of the group whose k data TSDUs are `tsdus`.
pub fn encode_parity(
    rs: &ReedSolomon,
    tsdus: &[&[u8]],
    h: usize,
) -> Result<ParityPayload, FecError> {
    let p = tsdus.iter().map(|t| t.len()).max().unwrap_or(0);
    let var = tsdus.iter().any(|t| t.len() != p);
    if !var {
        let mut bytes = vec![0u8; p];
        rs.encode(tsdus, h, &mut bytes)?;
        return Ok(ParityPayload {
            bytes,
            var_pktlen: false,
        });
    }
    if p + TRAILER_LEN > usize::from(u16::MAX) {
        return Err(FecError::SymbolLength);
    }
    let symbols: Vec<Vec<u8>> = tsdus.iter().map(|t| pad(t, p)).collect();
    let refs: Vec<&[u8]> = symbols.iter().map(Vec::as_slice).collect();
    let mut bytes = vec![0u8; p + TRAILER_LEN];
    rs.encode(&refs, h, &mut bytes)?;
    Ok(ParityPayload {
        bytes,
        var_pktlen: true,
    })
}

/// Rebuilds the missing data TSDUs of a group from the received ones (`data[i]` is data packet
/// i, `None` if missing; `data.len()` must be k) and the received parity packets.
///
/// Returns the recovered `(index, TSDU)` pairs, or an error when there are fewer than k
/// packets or the parity is inconsistent or corrupt: the caller then falls back to selective
/// repair. All parity packets must agree in length and OPT_VAR_PKTLEN, and every received data
/// TSDU must fit the parity's symbol.
pub fn decode_group(
    rs: &ReedSolomon,
    data: &[Option<&[u8]>],
    parity: &[ParityRef<'_>],
) -> Result<Vec<(usize, Vec<u8>)>, FecError> {
    let k = rs.k();
    if data.len() != k {
        return Err(FecError::SymbolCount {
            got: data.len(),
            want: k,
        });
    }
    let have = data.iter().filter(|d| d.is_some()).count();
    if have == k {
        return Ok(Vec::new());
    }
    let Some(first) = parity.first() else {
        return Err(FecError::SymbolCount { got: have, want: k });
    };
    let len = first.bytes.len();
    let var = first.var_pktlen;
    if parity
        .iter()
        .any(|p| p.bytes.len() != len || p.var_pktlen != var)
    {
        return Err(FecError::Inconsistent(
            "parity packets of one group differ in length",
        ));
    }
    if let Some(p) = parity.iter().find(|p| p.index >= rs.max_parity()) {
        return Err(FecError::ParityIndex(p.index));
    }
    let body = if var {
        len.checked_sub(TRAILER_LEN).ok_or(FecError::Inconsistent(
            "variable-length parity shorter than its trailer",
        ))?
    } else {
        len
    };
    // Received data as symbols: as-is when lengths are equal, padded with trailer otherwise.
    let mut padded: Vec<(usize, Vec<u8>)> = Vec::new();
    for (i, d) in data.iter().enumerate() {
        let Some(d) = d else { continue };
        if var {
            if d.len() > body {
                return Err(FecError::Inconsistent(
                    "data packet longer than its group's parity",
                ));
            }
            padded.push((i, pad(d, body)));
        } else if d.len() != len {
            return Err(FecError::Inconsistent("data and parity lengths differ"));
        }
    }
    let mut symbols: Vec<Symbol<'_>> = Vec::with_capacity(k);
    if var {
        symbols.extend(padded.iter().map(|(i, s)| Symbol { row: *i, data: s }));
    } else {
        symbols.extend(
            data.iter()
                .enumerate()
                .filter_map(|(i, d)| d.map(|d| Symbol { row: i, data: d })),
        );
    }
    symbols.extend(parity.iter().map(|p| Symbol {
        row: k + p.index,
        data: p.bytes,
    }));
    let mut out = rs.decode(&symbols)?;
    if var {
        for (_, sym) in &mut out {
            let t = [sym[body], sym[body + 1]];
            let n = usize::from(u16::from_le_bytes(t));
            if n > body {
                return Err(FecError::Inconsistent("length trailer beyond its symbol"));
            }
            sym.truncate(n);
        }
    }
    Ok(out)
}

/// The symbol a data packet's OPT_FRAGMENT contributes to its group's encoded OPT_FRAGMENT
/// (RFC 3208 §11.2): option bytes 3..15, or zeros with OP_ENCODED_NULL when it has none.
pub fn fragment_symbol(f: Option<Fragment>) -> EncodedFragment {
    let mut s = [0u8; ENCODED_FRAGMENT_LEN];
    match f {
        Some(f) => {
            s[1..5].copy_from_slice(&f.first_sqn.0.to_be_bytes());
            s[5..9].copy_from_slice(&f.offset.to_be_bytes());
            s[9..13].copy_from_slice(&f.apdu_len.to_be_bytes());
        }
        None => s[0] = OP_ENCODED_NULL,
    }
    s
}

/// The OPT_FRAGMENT a decoded symbol stands for: `Ok(None)` when OP_ENCODED_NULL says the
/// packet had none; an error when it cannot be a real one.
fn symbol_fragment(s: &[u8]) -> Result<Option<Fragment>, FecError> {
    let bad = FecError::Inconsistent("decoded OPT_FRAGMENT is not a fragment");
    let word = |i: usize| {
        s.get(i..i + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
    };
    match (s.first(), word(1), word(5), word(9)) {
        (Some(&u), ..) if u & OP_ENCODED_NULL != 0 => Ok(None),
        (Some(_), Some(first), Some(offset), Some(apdu_len)) if apdu_len <= MAX_APDU => {
            Ok(Some(Fragment {
                first_sqn: SeqNo(first),
                offset,
                apdu_len,
            }))
        }
        _ => Err(bad),
    }
}

/// Parity packet `h`'s encoded OPT_FRAGMENT for a group whose packets carry `frags`; `None`
/// when none of them is a fragment (the parity then carries no OPT_FRAGMENT at all).
pub fn encode_fragments(
    rs: &ReedSolomon,
    frags: &[Option<Fragment>],
    h: usize,
) -> Result<Option<EncodedFragment>, FecError> {
    if frags.iter().all(Option::is_none) {
        return Ok(None);
    }
    let symbols: Vec<EncodedFragment> = frags.iter().map(|&f| fragment_symbol(f)).collect();
    let refs: Vec<&[u8]> = symbols.iter().map(|s| &s[..]).collect();
    let mut out = [0u8; ENCODED_FRAGMENT_LEN];
    rs.encode(&refs, h, &mut out)?;
    Ok(Some(out))
}

/// The OPT_FRAGMENTs of a group's missing packets, rebuilt like their payloads: `data[i]` is
/// `None` for a missing packet, else the OPT_FRAGMENT it carried; `parity` the parity packets
/// used to decode the payloads, by index, with their encoded OPT_FRAGMENT. Parity without one
/// means no packet of the group had one; if it disagrees with the data, or the parity packets
/// disagree among themselves, the group is inconsistent.
pub fn decode_fragments(
    rs: &ReedSolomon,
    data: &[Option<Option<Fragment>>],
    parity: &[(usize, Option<EncodedFragment>)],
) -> Result<Vec<(usize, Option<Fragment>)>, FecError> {
    let missing = data.iter().enumerate().filter(|(_, d)| d.is_none());
    let encoded = parity.iter().filter(|p| p.1.is_some()).count();
    if encoded == 0 {
        if data.iter().flatten().any(Option::is_some) {
            return Err(FecError::Inconsistent(
                "a fragment in the group but no encoded OPT_FRAGMENT in its parity",
            ));
        }
        return Ok(missing.map(|(i, _)| (i, None)).collect());
    }
    if encoded != parity.len() {
        return Err(FecError::Inconsistent(
            "parity packets of one group disagree on OPT_FRAGMENT",
        ));
    }
    let symbols_of_data: Vec<(usize, EncodedFragment)> = data
        .iter()
        .enumerate()
        .filter_map(|(i, d)| d.map(|f| (i, fragment_symbol(f))))
        .collect();
    let mut symbols: Vec<Symbol<'_>> = symbols_of_data
        .iter()
        .map(|(i, s)| Symbol { row: *i, data: s })
        .collect();
    symbols.extend(parity.iter().filter_map(|(h, e)| {
        e.as_ref().map(|e| Symbol {
            row: rs.k() + h,
            data: e,
        })
    }));
    rs.decode(&symbols)?
        .into_iter()
        .map(|(i, s)| symbol_fragment(&s).map(|f| (i, f)))
        .collect()
}

/// `t`, zeros up to `p` bytes, then `t.len()` as a little-endian u16 (callers keep `p` within
/// the TSDU length range, so `t.len()` fits).
fn pad(t: &[u8], p: usize) -> Vec<u8> {
    let mut s = Vec::with_capacity(p + TRAILER_LEN);
    s.extend_from_slice(t);
    s.resize(p, 0);
    s.extend_from_slice(&(t.len() as u16).to_le_bytes());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_lengths_have_no_trailer() {
        let rs = ReedSolomon::new(4).expect("k");
        let src: [&[u8]; 4] = [&[0x01, 0x10], &[0x02, 0x20], &[0x03, 0x30], &[0x04, 0x40]];
        let p = encode_parity(&rs, &src, 0).expect("encode");
        assert_eq!(
            p,
            ParityPayload {
                bytes: vec![0x87, 0x98],
                var_pktlen: false
            }
        );
    }

    #[test]
    fn unequal_lengths_pad_with_little_endian_trailer() {
        let rs = ReedSolomon::new(2).expect("k");
        let a: &[u8] = b"abc";
        let b: &[u8] = b"x";
        let p = encode_parity(&rs, &[a, b], 0).expect("encode");
        assert!(p.var_pktlen);
        assert_eq!(p.bytes.len(), 5);
        // Parity 0 of k=2 has coefficients 3, 2 over the padded symbols.
        let sa = [b'a', b'b', b'c', 3, 0];
        let sb = [b'x', 0, 0, 1, 0];
        let want: Vec<u8> = sa
            .iter()
            .zip(&sb)
            .map(|(&x, &y)| crate::fec::gf256::mul(3, x) ^ crate::fec::gf256::mul(2, y))
            .collect();
        assert_eq!(p.bytes, want);
        let got = decode_group(
            &rs,
            &[None, Some(b)],
            &[ParityRef {
                index: 0,
                bytes: &p.bytes,
                var_pktlen: true,
            }],
        )
        .expect("decode");
        assert_eq!(got, vec![(0, a.to_vec())]);
    }

    #[test]
    fn fragments_are_rebuilt_with_their_payloads() {
        let rs = ReedSolomon::new(4).expect("k");
        let f = |first: u32, offset: u32| Fragment {
            first_sqn: SeqNo(first),
            offset,
            apdu_len: 3000,
        };
        // An APDU in packets 1..3 of the group; packet 0 is a message of its own.
        let frags = [None, Some(f(1, 0)), Some(f(1, 1000)), Some(f(1, 2000))];
        let p0 = encode_fragments(&rs, &frags, 0)
            .expect("encode")
            .expect("some");
        let p1 = encode_fragments(&rs, &frags, 1)
            .expect("encode")
            .expect("some");
        assert_eq!(encode_fragments(&rs, &[None; 4], 0), Ok(None));
        // Packets 0 and 2 lost.
        let data = [None, Some(frags[1]), None, Some(frags[3])];
        let got = decode_fragments(&rs, &data, &[(0, Some(p0)), (1, Some(p1))]).expect("decode");
        assert_eq!(got, vec![(0, None), (2, frags[2])]);
        // Parity without the encoded option, though a fragment arrived: inconsistent.
        assert!(decode_fragments(&rs, &data, &[(0, None), (1, None)]).is_err());
        assert!(decode_fragments(&rs, &data, &[(0, Some(p0)), (1, None)]).is_err());
        // No fragments anywhere: nothing to decode, the rebuilt packets have none.
        let plain = [None, Some(None), None, Some(None)];
        assert_eq!(
            decode_fragments(&rs, &plain, &[(0, None), (1, None)]),
            Ok(vec![(0, None), (2, None)])
        );
        // Corrupt encoded bytes may decode to an APDU length no fragment has: an error.
        let mut bad = p0;
        bad[9] ^= 0xff;
        assert!(decode_fragments(&rs, &data, &[(0, Some(bad)), (1, Some(p1))]).is_err());
    }

    #[test]
    fn corrupt_parity_is_an_error_not_a_panic() {
        let rs = ReedSolomon::new(2).expect("k");
        let b: &[u8] = b"x";
        let pr = |bytes: &'static [u8], var| ParityRef {
            index: 0,
            bytes,
            var_pktlen: var,
        };
        // Too short for its trailer.
        assert!(decode_group(&rs, &[None, Some(b)], &[pr(&[7], true)]).is_err());
        // Data longer than the parity's symbol.
        assert!(decode_group(&rs, &[None, Some(b"long")], &[pr(&[0, 0, 0], true)]).is_err());
        // A trailer claiming more bytes than the symbol holds.
        let corrupt = [0xff_u8, 0xff, 0xff];
        let bad: &'static [u8] = Box::leak(Box::new(corrupt));
        assert!(decode_group(&rs, &[None, Some(b"")], &[pr(bad, true)]).is_err());
        // Equal-length parity whose length disagrees with the data.
        assert!(decode_group(&rs, &[None, Some(b)], &[pr(&[1, 2], false)]).is_err());
        // Two parity packets that disagree.
        let two = [
            pr(&[1, 2], false),
            ParityRef {
                index: 1,
                ..pr(&[1], false)
            },
        ];
        assert!(decode_group(&rs, &[None, None], &two).is_err());
        // Not enough packets, and an index out of range.
        assert!(decode_group(&rs, &[None, None], &[pr(&[1], false)]).is_err());
        let far = ParityRef {
            index: 254,
            ..pr(&[1], false)
        };
        assert!(decode_group(&rs, &[None, Some(b)], &[far]).is_err());
    }
}
