//! The checks behind the `pubsub_frames` fuzz target (libzmq v1 frames, `pubsub::frame`),
//! shared with the corpus replay test (`pubsub/tests/fuzz_corpus.rs`, which includes this file
//! by path).
//!
//! For any bytes:
//!
//! - `FrameHeader::parse` never claims more bytes than exist: `Ok(Some)` uses exactly
//!   `needed(first byte)` bytes (2 or 10) and reports the size field minus one and the MORE bit;
//!   `Ok(None)` only when fewer bytes than that are there; `ZeroSize` only for a size field of 0.
//!   Every strict prefix of a header is incomplete, never an error. The header re-emits in
//!   canonical form to bytes that parse back to it (the same bytes, for a canonical input).
//! - The input walked as a stream of frames with `decode_frame`: each frame's body is exactly
//!   the bytes after its header, a frame cut short is incomplete, and a canonical frame
//!   re-encodes with `encode_frame` to the very bytes it came from. The frames grouped into
//!   messages (by MORE) re-encode with `encode_message` to a stream of `encoded_len` bytes that
//!   decodes back to the same frames.
//! - A body of a fuzz-chosen length around the short/long boundary round-trips.

use pubsub::frame::{
    decode_frame, encode_frame, encode_message, encoded_len, FrameError, FrameHeader,
    LONG_HEADER_LEN, LONG_MARKER, MAX_SHORT_BODY, MORE,
};

/// Runs every check on `data`; panics (a fuzz finding) when one fails.
pub(crate) fn check(data: &[u8]) {
    header(data);
    let frames = walk(data);
    reencode(&frames);
    boundary(data);
}

/// The size field and flags byte of a header at the start of `buf`, read by hand.
fn fields(buf: &[u8]) -> Option<(u64, u8, usize)> {
    let first = *buf.first()?;
    if first == LONG_MARKER {
        let h = buf.get(..LONG_HEADER_LEN)?;
        let mut be = [0u8; 8];
        be.copy_from_slice(&h[1..9]);
        Some((u64::from_be_bytes(be), h[9], LONG_HEADER_LEN))
    } else {
        Some((u64::from(first), *buf.get(1)?, 2))
    }
}

fn header(data: &[u8]) {
    let parsed = FrameHeader::parse(data);
    match (parsed, fields(data)) {
        (Ok(None), None) | (Err(FrameError::ZeroSize), Some((0, _, _))) => {}
        (Ok(Some((h, used))), Some((size, flags, need))) => {
            assert_eq!(used, need, "header length");
            assert_eq!(used, FrameHeader::needed(data[0]));
            assert!(used <= data.len(), "header claims more bytes than exist");
            assert_eq!(h.body_len + 1, size, "body_len is the size field minus one");
            assert_eq!(h.more, flags & MORE != 0, "MORE");
            let mut out = [0u8; LONG_HEADER_LEN];
            let n = h.emit(&mut out);
            assert_eq!(n, h.encoded_len(), "emit length");
            assert_eq!(
                FrameHeader::parse(&out[..n]),
                Ok(Some((h, n))),
                "re-emitted header"
            );
            let canonical =
                flags & !MORE == 0 && (need == 2) == (h.body_len <= MAX_SHORT_BODY as u64);
            if canonical {
                assert_eq!(
                    &out[..n],
                    &data[..n],
                    "canonical header re-emits differently"
                );
            }
            for cut in 0..used {
                assert_eq!(
                    FrameHeader::parse(&data[..cut]),
                    Ok(None),
                    "a cut header must be incomplete"
                );
            }
        }
        (p, f) => panic!("FrameHeader::parse gave {p:?} for header fields {f:?}"),
    }
}

/// Decodes `data` as a stream of whole frames; returns (body, more) of each.
fn walk(data: &[u8]) -> Vec<(&[u8], bool)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let rest = &data[pos..];
        let Ok(Some((f, used))) = decode_frame(rest) else {
            // Incomplete or bad: the header parser says the same.
            if let Ok(Some((h, hl))) = FrameHeader::parse(rest) {
                assert!(
                    h.body_len > (rest.len() - hl) as u64,
                    "decode_frame gave up on a complete frame"
                );
            }
            break;
        };
        assert!(used <= rest.len(), "frame claims more bytes than exist");
        let (h, hl) = FrameHeader::parse(rest).unwrap().unwrap();
        assert_eq!(
            f.body,
            &rest[hl..used],
            "body is the bytes after the header"
        );
        assert_eq!(f.body.len() as u64, h.body_len);
        assert_eq!(f.more, h.more);
        assert_eq!(
            decode_frame(&rest[..used - 1]),
            Ok(None),
            "a frame cut short must be incomplete"
        );
        if hl == h.encoded_len() && rest[hl - 1] & !MORE == 0 {
            let mut v = Vec::new();
            encode_frame(f.body, f.more, &mut v);
            assert_eq!(v, &rest[..used], "canonical frame re-encodes differently");
        }
        out.push((f.body, f.more));
        pos += used;
    }
    out
}

/// Re-encodes the frames as messages and decodes them again.
fn reencode(frames: &[(&[u8], bool)]) {
    let mut stream = Vec::new();
    let mut msg: Vec<&[u8]> = Vec::new();
    let mut want = Vec::new();
    for &(body, more) in frames {
        msg.push(body);
        if !more {
            encode_message(&msg, &mut stream);
            for (i, b) in msg.iter().enumerate() {
                want.push((*b, i + 1 < msg.len()));
            }
            msg.clear();
        }
    }
    let len: usize = want.iter().map(|(b, _)| encoded_len(b.len())).sum();
    assert_eq!(stream.len(), len, "encoded_len");
    let mut pos = 0;
    for &(body, more) in &want {
        let (f, used) = decode_frame(&stream[pos..]).unwrap().unwrap();
        assert_eq!((f.body, f.more), (body, more), "re-encoded frame");
        pos += used;
    }
    assert_eq!(pos, stream.len());
}

/// A body of 250..=260 or a fuzz-chosen length up to 70 000 bytes round-trips.
fn boundary(data: &[u8]) {
    let [mode, lo, hi, ..] = *data else {
        return;
    };
    let len = if mode & 1 == 0 {
        250 + usize::from(lo % 11)
    } else {
        usize::from(u16::from_le_bytes([lo, hi])) + usize::from(hi % 8) * 600
    };
    let body = vec![hi; len];
    let more = mode & 2 != 0;
    let mut out = Vec::new();
    encode_frame(&body, more, &mut out);
    assert_eq!(out.len(), encoded_len(len));
    let (frame, used) = decode_frame(&out).unwrap().unwrap();
    assert_eq!((frame.body, frame.more, used), (&body[..], more, out.len()));
}
