//! The test message format of `pgm-send --count`, `pgm-recv --verify`, `pgm-pub --count` and
//! `pgm-sub --verify`.

/// Bytes before the filler of a test message: sequence number (8) and CRC-32 (4).
pub const TEST_HEADER: usize = 12;

/// Writes test message `seq` into `buf` (its whole length): bytes 0..8 the sequence number (u64
/// big-endian), 8..12 the CRC-32 (IEEE) of bytes 12.. (u32 big-endian), then filler that
/// depends on `seq`, so a message delivered under another number fails its CRC.
///
/// # Panics
/// When `buf` is shorter than [`TEST_HEADER`].
pub fn fill_test_message(seq: u64, buf: &mut [u8]) {
    assert!(
        buf.len() >= TEST_HEADER,
        "test messages are at least 12 bytes"
    );
    buf[..8].copy_from_slice(&seq.to_be_bytes());
    let start = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes()[0];
    for (i, b) in buf[TEST_HEADER..].iter_mut().enumerate() {
        *b = start.wrapping_add(i as u8);
    }
    let crc = crc32fast::hash(&buf[TEST_HEADER..]);
    buf[8..12].copy_from_slice(&crc.to_be_bytes());
}

/// Why a message is not a valid test message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TestMessageError {
    /// Shorter than the 12-byte header.
    #[error("test message of {0} bytes is shorter than 12")]
    TooShort(usize),
    /// The CRC does not match the filler.
    #[error("CRC mismatch")]
    BadCrc,
}

/// Checks a test message; its sequence number if it is intact.
pub fn check_test_message(msg: &[u8]) -> Result<u64, TestMessageError> {
    if msg.len() < TEST_HEADER {
        return Err(TestMessageError::TooShort(msg.len()));
    }
    let mut seq = [0; 8];
    seq.copy_from_slice(&msg[..8]);
    let mut crc = [0; 4];
    crc.copy_from_slice(&msg[8..12]);
    if crc32fast::hash(&msg[TEST_HEADER..]) != u32::from_be_bytes(crc) {
        return Err(TestMessageError::BadCrc);
    }
    Ok(u64::from_be_bytes(seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_messages_round_trip() {
        for size in [12, 13, 64, 1400, 20 * 1024] {
            let mut buf = vec![0; size];
            fill_test_message(77, &mut buf);
            assert_eq!(check_test_message(&buf), Ok(77));
            assert_eq!(&buf[..8], &77u64.to_be_bytes());
            if size > 12 {
                buf[size - 1] ^= 1;
                assert_eq!(check_test_message(&buf), Err(TestMessageError::BadCrc));
            }
        }
        assert_eq!(
            check_test_message(&[0; 11]),
            Err(TestMessageError::TooShort(11))
        );
        // The filler depends on the sequence number: a swapped header fails.
        let (mut a, mut b) = (vec![0; 40], vec![0; 40]);
        fill_test_message(1, &mut a);
        fill_test_message(2, &mut b);
        a[..12].copy_from_slice(&b[..12]);
        assert_eq!(check_test_message(&a), Err(TestMessageError::BadCrc));
    }
}
