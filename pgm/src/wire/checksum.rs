//! The PGM checksum (RFC 3208 §8, docs/wire-compatibility.md §2).
//!
//! The 16-bit one's-complement Internet checksum (RFC 1071) over the whole PGM packet (header,
//! body, options and payload) with the checksum field taken as zero, and **no** pseudo-header. A
//! computed 0 is sent as 0xFFFF; a 0 on the wire means "no checksum", which receivers reject on
//! ODATA/RDATA.

/// Offset of the checksum field in the PGM header.
const FIELD: usize = 6;

/// One's-complement sum of `data`, folded to 16 bits, in network byte order.
///
/// The sum is byte-order independent (RFC 1071 §2(B)), so it adds native-endian 64-bit words with
/// end-around carry — eight bytes per addition — and swaps once at the end.
pub fn ones_complement_sum(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut carry: u64 = 0;
    let mut chunks = data.chunks_exact(32);
    for c in &mut chunks {
        // Four independent adds per iteration keep the carry chain short.
        for w in c.chunks_exact(8) {
            let v = u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            let (s, o) = acc.overflowing_add(v);
            acc = s;
            carry += u64::from(o);
        }
    }
    let mut rest = chunks.remainder();
    while rest.len() >= 8 {
        let v = u64::from_ne_bytes([
            rest[0], rest[1], rest[2], rest[3], rest[4], rest[5], rest[6], rest[7],
        ]);
        let (s, o) = acc.overflowing_add(v);
        acc = s;
        carry += u64::from(o);
        rest = &rest[8..];
    }
    let mut tail = [0u8; 8];
    tail[..rest.len()].copy_from_slice(rest);
    let (s, o) = acc.overflowing_add(u64::from_ne_bytes(tail));
    acc = s;
    carry += u64::from(o);
    // Fold 64 → 16 bits with end-around carries.
    let mut sum = u128::from(acc) + u128::from(carry);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let folded = sum as u16;
    if cfg!(target_endian = "little") {
        folded.swap_bytes()
    } else {
        folded
    }
}

/// Adds two folded one's-complement sums.
pub fn add(a: u16, b: u16) -> u16 {
    let s = u32::from(a) + u32::from(b);
    ((s & 0xffff) + (s >> 16)) as u16
}

/// The checksum to put in `packet`'s header (its current checksum field is ignored).
///
/// Returns 0xFFFF for a computed 0, never 0. A PGM packet is at least 16 bytes; a shorter
/// `packet` does not panic, the bytes it has are summed as if the rest were zero.
pub fn compute(packet: &[u8]) -> u16 {
    // FIELD is even, so both halves start on a 16-bit boundary of the packet.
    let head = packet.get(..FIELD).unwrap_or(packet);
    let tail = packet.get(FIELD + 2..).unwrap_or(&[]);
    finish(add(ones_complement_sum(head), ones_complement_sum(tail)))
}

/// The checksum field for a packet whose whole sum (checksum field as 0) is `sum`: its
/// complement, with 0 sent as 0xFFFF.
pub fn finish(sum: u16) -> u16 {
    match !sum {
        0 => 0xffff,
        c => c,
    }
}

/// Writes the checksum into bytes 6..8 of `packet`; does nothing to a buffer too short to have
/// a checksum field.
pub fn fill(packet: &mut [u8]) {
    let c = compute(packet);
    if let Some(field) = packet.get_mut(FIELD..FIELD + 2) {
        field.copy_from_slice(&c.to_be_bytes());
    }
}

/// Outcome of checking a received packet's checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The field matches the packet.
    Good,
    /// The field is 0: the sender computed none.
    Absent,
    /// The field does not match.
    Bad,
}

/// Checks the checksum of a received packet. A buffer too short to hold the checksum field is
/// [`Verdict::Bad`].
pub fn verify(packet: &[u8]) -> Verdict {
    let Some(&[hi, lo]) = packet.get(FIELD..FIELD + 2) else {
        return Verdict::Bad;
    };
    let field = u16::from_be_bytes([hi, lo]);
    if field == 0 {
        Verdict::Absent
    } else if cfg!(fuzzing) || compute(packet) == field {
        Verdict::Good
    } else {
        Verdict::Bad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward RFC 1071 reference: big-endian 16-bit words, 32-bit accumulator.
    fn reference(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for pair in data.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            let lo = pair.get(1).copied().map_or(0, u32::from);
            sum += hi | lo;
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    #[test]
    fn matches_reference_for_all_lengths() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 13) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(
                ones_complement_sum(&data[..len]),
                reference(&data[..len]),
                "len {len}"
            );
        }
        let ones = vec![0xffu8; 1500];
        assert_eq!(ones_complement_sum(&ones), reference(&ones));
    }

    #[test]
    fn libzmq_captured_spm_verifies() {
        // docs/wire-compatibility.md §1: SPM (epgm, first of 3 at connect) from libzmq 4.3.4 + libpgm.
        let spm: [u8; 36] = [
            0xf3, 0xc5, 0x15, 0xb3, 0x00, 0x00, 0xea, 0x76, 0xb7, 0xc6, 0xd1, 0xbc, 0x03, 0x8a,
            0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x00, 0x01, 0x00, 0x00,
            0x7f, 0x00, 0x00, 0x01,
        ];
        assert_eq!(compute(&spm), 0xea76);
        assert_eq!(verify(&spm), Verdict::Good);
        let mut bad = spm;
        bad[20] ^= 1;
        assert_eq!(verify(&bad), Verdict::Bad);
        bad[6] = 0;
        bad[7] = 0;
        assert_eq!(verify(&bad), Verdict::Absent);
    }

    #[test]
    fn short_buffers_do_not_panic() {
        for len in 0..8 {
            let mut p = vec![0xa5u8; len];
            let _ = compute(&p);
            fill(&mut p);
            assert_eq!(p, vec![0xa5u8; len]);
            assert_eq!(verify(&p), Verdict::Bad);
        }
    }

    #[test]
    fn zero_is_sent_as_all_ones() {
        // A packet whose sum is 0xFFFF computes to checksum 0, which must go out as 0xFFFF.
        let mut p = [0u8; 10];
        p[0] = 0xff;
        p[1] = 0xff;
        assert_eq!(compute(&p), 0xffff);
        fill(&mut p);
        assert_eq!(verify(&p), Verdict::Good);
    }
}
