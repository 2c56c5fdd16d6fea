//! GF(2^8) with the primitive polynomial x^8+x^4+x^3+x^2+1 (0x11d) and generator α = 2: the
//! field of Rizzo's "vdm" erasure code, and so of OpenPGM's `galois_tables.c`.
//!
//! Addition is XOR. Multiplication of bulk data by a constant goes through a per-constant
//! 256-byte product table ([`mul_add_slice`]); the AVX2 path splits each byte into nibbles and
//! looks both up with one shuffle each, 32 bytes at a time.

/// The field's reduction polynomial (without the x^8 term it is 0x1d).
const POLY: u16 = 0x11d;

/// `EXP[i]` = α^i for i in 0..510, doubled so that `EXP[log a + log b]` needs no `mod 255`.
pub(crate) static EXP: [u8; 510] = exp_table();
/// `LOG[a]` = log_α(a) for a ≠ 0; `LOG[0]` is unused (0 absorbs).
pub(crate) static LOG: [u8; 256] = log_table();
/// `MUL[c][x]` = c·x: 64 KiB, built at compile time.
static MUL: [[u8; 256]; 256] = mul_table();

const fn exp_table() -> [u8; 510] {
    let mut t = [0u8; 510];
    let mut x: u16 = 1;
    let mut i = 0;
    while i < 255 {
        t[i] = x as u8;
        t[i + 255] = x as u8;
        x <<= 1;
        if x & 0x100 != 0 {
            x ^= POLY;
        }
        i += 1;
    }
    t
}

const fn log_table() -> [u8; 256] {
    let exp = exp_table();
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 255 {
        t[exp[i] as usize] = i as u8;
        i += 1;
    }
    t
}

#[expect(
    clippy::large_stack_arrays,
    reason = "evaluated at compile time into a static, never on a stack"
)]
const fn mul_table() -> [[u8; 256]; 256] {
    let exp = exp_table();
    let log = log_table();
    let mut t = [[0u8; 256]; 256];
    let mut a = 1;
    while a < 256 {
        let mut b = 1;
        while b < 256 {
            t[a][b] = exp[log[a] as usize + log[b] as usize];
            b += 1;
        }
        a += 1;
    }
    t
}

/// a·b in GF(2^8).
#[inline]
pub fn mul(a: u8, b: u8) -> u8 {
    MUL[usize::from(a)][usize::from(b)]
}

/// The multiplicative inverse of `a`, or `None` for 0.
pub fn inv(a: u8) -> Option<u8> {
    (a != 0).then(|| EXP[255 - usize::from(LOG[usize::from(a)])])
}

/// α^e (e taken mod 255).
pub fn pow_alpha(e: usize) -> u8 {
    EXP[e % 255]
}

/// `dst[j] ^= c · src[j]` for every j; the two slices must have the same length.
pub fn mul_add_slice(c: u8, src: &[u8], dst: &mut [u8]) {
    assert_eq!(src.len(), dst.len(), "mul_add_slice: length mismatch");
    match c {
        0 => {}
        1 => dst.iter_mut().zip(src).for_each(|(d, s)| *d ^= s),
        _ => {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: AVX2 was just detected on this CPU.
                    unsafe { simd::mul_add_avx2(c, src, dst) };
                    return;
                }
            }
            mul_add_scalar(c, src, dst);
        }
    }
}

/// The portable [`mul_add_slice`]: one table lookup per byte.
fn mul_add_scalar(c: u8, src: &[u8], dst: &mut [u8]) {
    let row = &MUL[usize::from(c)];
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= row[usize::from(*s)];
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    //! Split-nibble multiply: c·x = c·(x & 0x0f) ^ c·(x & 0xf0), each a 16-entry table that
    //! `vpshufb` looks up for 32 bytes at once.
    use std::arch::x86_64::{
        __m256i, _mm256_and_si256, _mm256_broadcastsi128_si256, _mm256_loadu_si256,
        _mm256_set1_epi8, _mm256_shuffle_epi8, _mm256_srli_epi64, _mm256_storeu_si256,
        _mm256_xor_si256, _mm_loadu_si128,
    };

    #[target_feature(enable = "avx2")]
    #[expect(
        clippy::cast_ptr_alignment,
        clippy::many_single_char_names,
        reason = "loadu/storeu take unaligned pointers; l/h/s/d mirror the maths"
    )]
    pub(super) unsafe fn mul_add_avx2(c: u8, src: &[u8], dst: &mut [u8]) {
        let row = &super::MUL[usize::from(c)];
        let mut lo = [0u8; 16];
        let mut hi = [0u8; 16];
        for i in 0..16 {
            lo[i] = row[i];
            hi[i] = row[i << 4];
        }
        let n = src.len() / 32 * 32;
        // SAFETY: every load and store below stays within the first `n` bytes of both slices
        // (equal lengths, checked by the caller); unaligned loads/stores are used throughout.
        unsafe {
            let lo = _mm256_broadcastsi128_si256(_mm_loadu_si128(lo.as_ptr().cast()));
            let hi = _mm256_broadcastsi128_si256(_mm_loadu_si128(hi.as_ptr().cast()));
            let mask = _mm256_set1_epi8(0x0f);
            let mut i = 0;
            while i < n {
                let s = _mm256_loadu_si256(src.as_ptr().add(i).cast::<__m256i>());
                let d = _mm256_loadu_si256(dst.as_ptr().add(i).cast::<__m256i>());
                let l = _mm256_shuffle_epi8(lo, _mm256_and_si256(s, mask));
                let h = _mm256_shuffle_epi8(hi, _mm256_and_si256(_mm256_srli_epi64(s, 4), mask));
                let r = _mm256_xor_si256(d, _mm256_xor_si256(l, h));
                _mm256_storeu_si256(dst.as_mut_ptr().add(i).cast::<__m256i>(), r);
                i += 32;
            }
        }
        super::mul_add_scalar(c, &src[n..], &mut dst[n..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn antilog_starts_like_openpgm() {
        assert_eq!(
            &EXP[..10],
            &[0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1d, 0x3a]
        );
    }

    #[test]
    fn inverse_and_table_agree_with_logs() {
        for a in 1..=255u8 {
            let ai = inv(a).expect("nonzero");
            assert_eq!(mul(a, ai), 1, "a={a}");
            for b in [0u8, 1, 2, 0x53, 0xca, 0xff] {
                let want = if b == 0 {
                    0
                } else {
                    EXP[usize::from(LOG[usize::from(a)]) + usize::from(LOG[usize::from(b)])]
                };
                assert_eq!(mul(a, b), want);
            }
        }
        assert_eq!(inv(0), None);
    }

    #[test]
    fn simd_and_scalar_agree() {
        let src: Vec<u8> = (0..1000u32).map(|i| (i * 37 + 11) as u8).collect();
        for c in [2u8, 3, 0x8e, 0xff] {
            let mut a: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
            let mut b = a.clone();
            mul_add_slice(c, &src, &mut a);
            mul_add_scalar(c, &src, &mut b);
            assert_eq!(a, b, "c={c}");
        }
    }
}
