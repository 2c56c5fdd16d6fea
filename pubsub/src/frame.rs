//! libzmq v1 frames, the unit of the byte stream inside `pgm://`/`epgm://` APDUs.
//!
//! ```text
//! short form (size < 255):  [u8 size][u8 flags][body]
//! long form:                [0xFF][u64 BE size][u8 flags][body]
//! ```
//!
//! `size` counts the body plus the flags byte, so it is never 0 on the wire; a 0 is a protocol
//! error (libzmq `v1_decoder.cpp`, EPROTO). `flags` bit 0 is MORE (another frame of the same
//! message follows); every other bit is masked off on decode (docs/wire-compatibility.md §10). The encoder
//! always emits the canonical (shortest) form; the decoder also accepts a long form carrying a
//! small size, as libzmq does.
//!
//! Everything here is pure and allocation-free except [`encode_frame`], which appends to a
//! caller's buffer.

use bytes::BufMut;

/// Flags bit: another frame of the same message follows.
pub const MORE: u8 = 0x01;

/// The first byte of a long-form header.
pub const LONG_MARKER: u8 = 0xFF;

/// Largest body that fits the short form: `size = body + 1` must stay below 255.
pub const MAX_SHORT_BODY: usize = 253;

/// Bytes of a short-form header: size and flags.
pub const SHORT_HEADER_LEN: usize = 2;

/// Bytes of a long-form header: marker, u64 size and flags. No header is longer.
pub const LONG_HEADER_LEN: usize = 10;

/// Why a frame header was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The size field is 0: not even the flags byte is counted (libzmq: EPROTO).
    #[error("frame size 0")]
    ZeroSize,
}

/// A decoded frame header: how long the body is and whether more frames follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Body bytes after the header (`size - 1`). A `u64`: an untrusted long form may announce
    /// more than this host could ever hold; callers bound it before allocating.
    pub body_len: u64,
    /// Flags bit 0: another frame of the same message follows.
    pub more: bool,
}

impl FrameHeader {
    /// A header for a body of `body_len` bytes.
    pub const fn new(body_len: u64, more: bool) -> Self {
        FrameHeader { body_len, more }
    }

    /// Bytes this header takes in canonical form (2 or 10).
    pub const fn encoded_len(&self) -> usize {
        if self.body_len <= MAX_SHORT_BODY as u64 {
            SHORT_HEADER_LEN
        } else {
            LONG_HEADER_LEN
        }
    }

    /// Writes the canonical header into `out` and returns how many bytes were written.
    pub fn emit(&self, out: &mut [u8; LONG_HEADER_LEN]) -> usize {
        let flags = if self.more { MORE } else { 0 };
        if self.body_len <= MAX_SHORT_BODY as u64 {
            // body_len ≤ 253, so size ≤ 254 fits a byte and is never the long marker.
            out[0] = (self.body_len + 1) as u8;
            out[1] = flags;
            SHORT_HEADER_LEN
        } else {
            out[0] = LONG_MARKER;
            // A body of u64::MAX bytes cannot exist in memory; saturate rather than wrap.
            out[1..9].copy_from_slice(&self.body_len.saturating_add(1).to_be_bytes());
            out[9] = flags;
            LONG_HEADER_LEN
        }
    }

    /// Bytes a header starting with `first` needs in total: 10 after the long marker, else 2.
    pub const fn needed(first: u8) -> usize {
        if first == LONG_MARKER {
            LONG_HEADER_LEN
        } else {
            SHORT_HEADER_LEN
        }
    }

    /// Parses a header at the start of `buf`.
    ///
    /// `Ok(None)` when `buf` ends inside the header (the rest is in the next APDU);
    /// `Ok(Some((header, used)))` otherwise. Never reads past `buf` and never panics.
    pub fn parse(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, FrameError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let need = Self::needed(first);
        let Some(hdr) = buf.get(..need) else {
            return Ok(None);
        };
        let (size, flags) = if first == LONG_MARKER {
            let mut be = [0u8; 8];
            be.copy_from_slice(&hdr[1..9]);
            (u64::from_be_bytes(be), hdr[9])
        } else {
            (u64::from(first), hdr[1])
        };
        if size == 0 {
            return Err(FrameError::ZeroSize);
        }
        Ok(Some((
            FrameHeader {
                body_len: size - 1,
                more: flags & MORE != 0,
            },
            need,
        )))
    }
}

/// Bytes a frame with a `body_len`-byte body takes on the wire (canonical header + body).
pub const fn encoded_len(body_len: usize) -> usize {
    FrameHeader::new(body_len as u64, false).encoded_len() + body_len
}

/// Appends one canonical frame to `out`.
pub fn encode_frame(body: &[u8], more: bool, out: &mut impl BufMut) {
    let mut hdr = [0u8; LONG_HEADER_LEN];
    let n = FrameHeader::new(body.len() as u64, more).emit(&mut hdr);
    out.put_slice(&hdr[..n]);
    out.put_slice(body);
}

/// Appends a whole message (1+ frames; MORE on all but the last) to `out`.
pub fn encode_message<B: AsRef<[u8]>>(frames: &[B], out: &mut impl BufMut) {
    let last = frames.len().saturating_sub(1);
    for (i, f) in frames.iter().enumerate() {
        encode_frame(f.as_ref(), i != last, out);
    }
}

/// A frame borrowed from a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef<'a> {
    /// The body.
    pub body: &'a [u8],
    /// Another frame of the same message follows.
    pub more: bool,
}

/// Decodes one whole frame at the start of `buf`: `Ok(None)` when `buf` ends inside it,
/// otherwise the frame and the bytes it used. For buffers that hold complete frames (tests,
/// tools); the stream decoder handles frames cut across APDUs itself.
pub fn decode_frame(buf: &[u8]) -> Result<Option<(FrameRef<'_>, usize)>, FrameError> {
    let Some((hdr, used)) = FrameHeader::parse(buf)? else {
        return Ok(None);
    };
    let rest = &buf[used..];
    match usize::try_from(hdr.body_len) {
        Ok(len) if len <= rest.len() => Ok(Some((
            FrameRef {
                body: &rest[..len],
                more: hdr.more,
            },
            used + len,
        ))),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn enc(body: &[u8], more: bool) -> Vec<u8> {
        let mut v = Vec::new();
        encode_frame(body, more, &mut v);
        v
    }

    #[test]
    fn captured_short_frames() {
        // From the libzmq ODATA at sqn 0 (docs/wire-compatibility.md §1).
        assert_eq!(enc(b"hello", false), b"\x06\x00hello");
        assert_eq!(enc(b"topic", true), b"\x06\x01topic");
        assert_eq!(enc(b"payload", false), b"\x08\x00payload");
    }

    #[test]
    fn captured_long_frame_header() {
        let v = enc(&[0x42; 300], false);
        assert_eq!(&v[..10], &[0xff, 0, 0, 0, 0, 0, 0, 0x01, 0x2d, 0x00]);
        assert_eq!(v.len(), 310);
    }

    #[test]
    fn short_long_boundary() {
        // body 253 → size 254: short. body 254 → size 255 would collide with the marker: long.
        assert_eq!(enc(&[7; 253], false)[..2], [254, 0]);
        assert_eq!(encoded_len(253), 255);
        let v = enc(&[7; 254], true);
        assert_eq!(v[..10], [0xff, 0, 0, 0, 0, 0, 0, 0, 255, 1]);
        assert_eq!(encoded_len(254), 264);
        assert_eq!(enc(b"", false), [1, 0]);
    }

    #[test]
    fn zero_size_is_rejected_in_both_forms() {
        assert_eq!(FrameHeader::parse(&[0, 0]), Err(FrameError::ZeroSize));
        assert_eq!(
            FrameHeader::parse(&[0xff, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            Err(FrameError::ZeroSize)
        );
    }

    #[test]
    fn other_flag_bits_are_masked() {
        let (h, used) = FrameHeader::parse(&[3, 0xfe]).unwrap().unwrap();
        assert_eq!((h, used), (FrameHeader::new(2, false), 2));
        let (h, _) = FrameHeader::parse(&[3, 0xff]).unwrap().unwrap();
        assert!(h.more);
    }

    #[test]
    fn non_canonical_long_form_is_accepted() {
        let (h, used) = FrameHeader::parse(&[0xff, 0, 0, 0, 0, 0, 0, 0, 6, 0])
            .unwrap()
            .unwrap();
        assert_eq!((h.body_len, h.more, used), (5, false, 10));
    }

    #[test]
    fn huge_long_form_is_parsed_not_trusted() {
        let (h, _) = FrameHeader::parse(&[0xff; 10]).unwrap().unwrap();
        assert_eq!(h.body_len, u64::MAX - 1);
        // decode_frame cannot find such a body, so it waits for more bytes without panicking.
        assert_eq!(decode_frame(&[0xff; 64]), Ok(None));
    }

    #[test]
    fn incomplete_headers() {
        assert_eq!(FrameHeader::parse(&[]), Ok(None));
        assert_eq!(FrameHeader::parse(&[5]), Ok(None));
        for n in 1..10 {
            assert_eq!(FrameHeader::parse(&[0xff; 10][..n]), Ok(None));
        }
        assert_eq!(decode_frame(b"\x06\x00hell"), Ok(None));
    }

    #[test]
    fn emit_saturates_at_u64_max() {
        let mut out = [0u8; LONG_HEADER_LEN];
        assert_eq!(FrameHeader::new(u64::MAX, false).emit(&mut out), 10);
        assert_eq!(out[1..9], [0xff; 8]);
    }

    #[test]
    fn message_sets_more_on_all_but_last() {
        let mut v = Vec::new();
        encode_message(&[&b"a"[..], b"b", b"c"], &mut v);
        assert_eq!(v, b"\x02\x01a\x02\x01b\x02\x00c");
    }

    proptest! {
        #[test]
        fn round_trip(body in proptest::collection::vec(any::<u8>(), 0..700), more: bool,
                      tail in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut v = enc(&body, more);
            prop_assert_eq!(v.len(), encoded_len(body.len()));
            v.extend_from_slice(&tail);
            let (f, used) = decode_frame(&v).unwrap().unwrap();
            prop_assert_eq!(f.body, &body[..]);
            prop_assert_eq!(f.more, more);
            prop_assert_eq!(used, encoded_len(body.len()));
            // Every strict prefix is "incomplete", never an error.
            for cut in 0..used {
                prop_assert_eq!(decode_frame(&v[..cut]), Ok(None));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(Some((h, used))) = FrameHeader::parse(&buf) {
                prop_assert!(used == 2 || used == 10);
                prop_assert!(h.body_len < u64::MAX);
            }
            let _ = decode_frame(&buf);
        }
    }
}
