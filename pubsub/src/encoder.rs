//! Publisher-side framing: messages → one continuous v1 frame stream → APDUs, libzmq style.
//!
//! Every APDU the [`Encoder`] emits is
//!
//! ```text
//! [u16 BE offset][stream bytes …]       2 < len ≤ max_payload
//! ```
//!
//! where the stream bytes are the next slice of the v1 frame stream of every message pushed so
//! far ([`crate::frame`]), cut wherever the APDU is full: frame headers and bodies may straddle
//! APDUs. `offset` is the position, counted after the 2 offset bytes, of the first frame of the
//! first *message* that starts in this APDU, or [`NO_OFFSET`] when only continuation bytes are in
//! it (`src/pgm_sender.cpp:out_event`, docs/wire-compatibility.md §10). A late joiner or a receiver resyncing
//! after loss starts decoding at that offset.
//!
//! One deliberate difference from libzmq: when libzmq's out buffer ends exactly where a message
//! ends and nothing else is queued, it records the end of the payload as the offset (pointing at
//! no frame). This encoder writes [`NO_OFFSET`] there. Both are accepted by a libzmq SUB (it
//! asserts only `offset ≤ payload`) and by [`crate::decoder`].
//!
//! The encoder is sans-IO. Small messages are batched: an APDU is closed when it is full, on
//! [`Encoder::flush`], or once it has been open for the linger time (the caller drives
//! [`Encoder::handle_timeout`] at [`Encoder::poll_timeout`]). Closed APDUs keep the deadline
//! of the oldest one ([`Encoder::ready_due`]), so a caller may hold full APDUs to hand them to
//! the transport several at a time and still send every message within the linger. With a zero linger every push ends
//! with a flush, so a message that fits is exactly one APDU. Every APDU is at most
//! `max_payload` bytes, so the transport never fragments it (fragmented APDUs abort a libzmq
//! SUB, docs/wire-compatibility.md §14), and it always carries at least one stream byte, so it is never the
//! 0- or 1-byte ODATA a libzmq SUB aborts on.

use std::{collections::VecDeque, time::Duration};

use bytes::{BufMut, Bytes, BytesMut};
use pgm::time::{sooner, Instant};

use crate::frame::{FrameHeader, LONG_HEADER_LEN};

/// Bytes of the offset field at the start of every APDU.
pub const OFFSET_LEN: usize = 2;

/// Offset value meaning "no message starts in this APDU".
pub const NO_OFFSET: u16 = 0xFFFF;

/// Smallest `max_payload`: the offset plus one stream byte.
pub const MIN_PAYLOAD: usize = OFFSET_LEN + 1;

/// Largest `max_payload`: a PGM TSDU length is 16 bits (and 0xFFFF stays free as an offset).
pub const MAX_PAYLOAD: usize = 0xFFFF;

/// `max_payload` for EPGM at a 1500-byte MTU: libzmq's `PGM_MSS` (docs/wire-compatibility.md §10).
pub const EPGM_1500_PAYLOAD: usize = 1428;

/// `max_payload` for raw PGM at a 1500-byte MTU.
pub const PGM_1500_PAYLOAD: usize = 1436;

/// Default linger: how long a part-filled APDU waits for more messages.
pub const DEFAULT_LINGER: Duration = Duration::from_micros(500);

/// How an [`Encoder`] cuts the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderConfig {
    /// Largest APDU, offset bytes included: the transport's TSDU for one unfragmented ODATA
    /// (see [`EPGM_1500_PAYLOAD`], [`PGM_1500_PAYLOAD`]).
    pub max_payload: usize,
    /// How long a part-filled APDU waits for more messages before it is sent; zero disables
    /// batching.
    pub linger: Duration,
}

impl Default for EncoderConfig {
    /// EPGM at MTU 1500, [`DEFAULT_LINGER`].
    fn default() -> Self {
        EncoderConfig {
            max_payload: EPGM_1500_PAYLOAD,
            linger: DEFAULT_LINGER,
        }
    }
}

/// Why an [`EncoderConfig`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_payload` is outside [`MIN_PAYLOAD`]..=[`MAX_PAYLOAD`].
    #[error("max_payload {0} outside {MIN_PAYLOAD}..={MAX_PAYLOAD}")]
    MaxPayload(usize),
}

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A message needs at least one frame (the topic).
    #[error("a message needs at least one frame")]
    EmptyMessage,
}

/// Counters of an [`Encoder`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncoderStats {
    /// Messages pushed.
    pub messages: u64,
    /// APDUs emitted.
    pub apdus: u64,
    /// APDU bytes emitted, offset fields included.
    pub bytes: u64,
    /// APDUs closed because they were full.
    pub full: u64,
    /// APDUs closed by the linger timer.
    pub lingered: u64,
    /// APDUs closed by an explicit flush (or by a zero linger).
    pub flushed: u64,
}

/// Turns messages into APDUs; see the [module docs](self).
#[derive(Debug)]
pub struct Encoder {
    config: EncoderConfig,
    /// The APDU being filled: the offset field then stream bytes. Empty when none is open;
    /// once open it always holds at least one stream byte before control returns to the caller.
    open: BytesMut,
    /// A message start has been recorded in `open`'s offset field.
    has_start: bool,
    /// When `open` must be sent at the latest; `Some` exactly when an APDU is open.
    deadline: Option<Instant>,
    /// Closed APDUs, oldest first.
    ready: VecDeque<Bytes>,
    /// The deadline of the oldest APDU in `ready` (`Some` exactly when `ready` is not empty).
    ready_deadline: Option<Instant>,
    stats: EncoderStats,
}

impl Encoder {
    /// An encoder with nothing buffered.
    pub fn new(config: EncoderConfig) -> Result<Self, ConfigError> {
        if !(MIN_PAYLOAD..=MAX_PAYLOAD).contains(&config.max_payload) {
            return Err(ConfigError::MaxPayload(config.max_payload));
        }
        Ok(Encoder {
            config,
            open: BytesMut::new(),
            has_start: false,
            deadline: None,
            ready: VecDeque::new(),
            ready_deadline: None,
            stats: EncoderStats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> EncoderConfig {
        self.config
    }

    /// Appends one message (frame 0 is the topic; MORE is set on all frames but the last).
    ///
    /// Closes an APDU whose linger expired first, so `now` never extends an overdue batch. Any
    /// number of APDUs may be ready afterwards (a large message spans many); drain them with
    /// [`Encoder::poll_apdu`].
    pub fn push<B: AsRef<[u8]>>(&mut self, now: Instant, frames: &[B]) -> Result<(), EncodeError> {
        if frames.is_empty() {
            return Err(EncodeError::EmptyMessage);
        }
        self.handle_timeout(now);
        let last = frames.len() - 1;
        let mut hdr = [0u8; LONG_HEADER_LEN];
        for (i, frame) in frames.iter().enumerate() {
            let body = frame.as_ref();
            let n = FrameHeader::new(body.len() as u64, i != last).emit(&mut hdr);
            if i == 0 {
                self.mark_message_start(now);
            }
            self.write(now, &hdr[..n]);
            self.write(now, body);
        }
        self.stats.messages += 1;
        if self.config.linger.is_zero() {
            self.close(false);
        }
        Ok(())
    }

    /// Closes the open APDU now, if any.
    pub fn flush(&mut self) {
        self.close(false);
    }

    /// Closes the open APDU if its linger expired at `now`. Spurious calls are no-ops.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| d <= now) {
            self.close(true);
        }
    }

    /// When something is due next: the open APDU's deadline, or the oldest closed one's
    /// (see [`Encoder::ready_due`]).
    pub fn poll_timeout(&self) -> Option<Instant> {
        sooner(self.deadline, self.ready_deadline)
    }

    /// Whether the closed APDUs must go now: the oldest one's linger (counted from when it
    /// opened) is over.
    pub fn ready_due(&self, now: Instant) -> bool {
        self.ready_deadline.is_some_and(|d| d <= now)
    }

    /// The next APDU to send, oldest first.
    pub fn poll_apdu(&mut self) -> Option<Bytes> {
        let apdu = self.ready.pop_front();
        if self.ready.is_empty() {
            self.ready_deadline = None;
        }
        apdu
    }

    /// Puts back an APDU the transport could not take, so it goes out first (and is due at
    /// once) next time.
    pub fn unpoll_apdu(&mut self, apdu: Bytes) {
        self.ready.push_front(apdu);
        self.ready_deadline = Some(Instant::ZERO);
    }

    /// Moves every closed APDU, oldest first, to the back of `out`.
    pub fn take_ready_into(&mut self, out: &mut VecDeque<Bytes>) {
        out.append(&mut self.ready);
        self.ready_deadline = None;
    }

    /// Puts back the APDUs in `rest` (oldest first) that the transport could not take: they go
    /// out before anything closed since, and are due at once. Leaves `rest` empty.
    pub fn unpoll_all(&mut self, rest: &mut VecDeque<Bytes>) {
        if rest.is_empty() {
            return;
        }
        rest.append(&mut self.ready);
        std::mem::swap(&mut self.ready, rest);
        self.ready_deadline = Some(Instant::ZERO);
    }

    /// APDUs closed and waiting for [`Encoder::poll_apdu`].
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// Stream bytes in the open APDU (0 when none is open).
    pub fn open_len(&self) -> usize {
        self.open.len().saturating_sub(OFFSET_LEN)
    }

    /// Counters.
    pub fn stats(&self) -> EncoderStats {
        self.stats
    }

    /// Records that a message starts at the current stream position.
    fn mark_message_start(&mut self, now: Instant) {
        // `open` is never left full (write() closes it), so the message's first byte lands in
        // the APDU opened or continued here.
        self.ensure_open(now);
        if !self.has_start {
            // open.len() - 2 < max_payload - 2 ≤ 0xFFFD: never collides with NO_OFFSET.
            let pos = (self.open.len() - OFFSET_LEN) as u16;
            self.open[..OFFSET_LEN].copy_from_slice(&pos.to_be_bytes());
            self.has_start = true;
        }
    }

    /// Appends stream bytes, closing each APDU as it fills.
    fn write(&mut self, now: Instant, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            self.ensure_open(now);
            let room = self.config.max_payload - self.open.len();
            let n = room.min(bytes.len());
            self.open.put_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.open.len() == self.config.max_payload {
                self.stats.full += 1;
                self.emit();
            }
        }
    }

    fn ensure_open(&mut self, now: Instant) {
        if self.open.is_empty() {
            self.open.reserve(self.config.max_payload);
            self.open.put_u16(NO_OFFSET);
            self.has_start = false;
            self.deadline = Some(now + self.config.linger);
        }
    }

    fn close(&mut self, by_timer: bool) {
        if self.open.len() > OFFSET_LEN {
            if by_timer {
                self.stats.lingered += 1;
            } else {
                self.stats.flushed += 1;
            }
            self.emit();
        }
    }

    fn emit(&mut self) {
        let apdu = self.open.split().freeze();
        self.stats.apdus += 1;
        self.stats.bytes += apdu.len() as u64;
        self.ready.push_back(apdu);
        if self.ready_deadline.is_none() {
            self.ready_deadline = self.deadline;
        }
        self.deadline = None;
        self.has_start = false;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::frame::encode_message;

    const T0: Instant = Instant::ZERO;

    fn enc(max_payload: usize, linger_us: u64) -> Encoder {
        Encoder::new(EncoderConfig {
            max_payload,
            linger: Duration::from_micros(linger_us),
        })
        .unwrap()
    }

    fn drain(e: &mut Encoder) -> Vec<Bytes> {
        std::iter::from_fn(|| e.poll_apdu()).collect()
    }

    fn offset(apdu: &[u8]) -> u16 {
        u16::from_be_bytes([apdu[0], apdu[1]])
    }

    #[test]
    fn config_bounds() {
        for bad in [0, 1, 2, 65536] {
            assert_eq!(
                Encoder::new(EncoderConfig {
                    max_payload: bad,
                    linger: Duration::ZERO
                })
                .unwrap_err(),
                ConfigError::MaxPayload(bad)
            );
        }
        assert!(Encoder::new(EncoderConfig::default()).is_ok());
        assert_eq!(EncoderConfig::default().max_payload, 1428);
    }

    #[test]
    fn empty_message_is_refused() {
        let mut e = enc(100, 0);
        assert_eq!(
            e.push::<&[u8]>(T0, &[]).unwrap_err(),
            EncodeError::EmptyMessage
        );
        assert!(e.poll_apdu().is_none());
    }

    #[test]
    fn zero_linger_sends_each_message_as_one_apdu() {
        let mut e = enc(1428, 0);
        e.push(T0, &[b"hello"]).unwrap();
        e.push(T0, &[&b"topic"[..], b"payload"]).unwrap();
        let a = drain(&mut e);
        assert_eq!(a.len(), 2);
        assert_eq!(&a[0][..], b"\x00\x00\x06\x00hello");
        assert_eq!(&a[1][..], b"\x00\x00\x06\x01topic\x08\x00payload");
        assert_eq!(e.poll_timeout(), None);
    }

    #[test]
    fn batching_waits_for_linger_then_sends_one_apdu() {
        let mut e = enc(1428, 1000);
        e.push(T0, &[b"a"]).unwrap();
        let t1 = T0 + Duration::from_micros(300);
        e.push(t1, &[b"b"]).unwrap();
        assert_eq!(e.poll_apdu(), None);
        // The deadline is set by the first byte, not pushed back by later ones.
        assert_eq!(e.poll_timeout(), Some(T0 + Duration::from_millis(1)));
        e.handle_timeout(T0 + Duration::from_micros(999));
        assert_eq!(e.poll_apdu(), None);
        e.handle_timeout(T0 + Duration::from_millis(1));
        assert_eq!(
            drain(&mut e),
            [Bytes::from_static(b"\x00\x00\x02\x00a\x02\x00b")]
        );
        assert_eq!(e.poll_timeout(), None);
        assert_eq!(e.stats().lingered, 1);
        // Spurious timeouts are no-ops.
        e.handle_timeout(T0 + Duration::from_secs(5));
        assert_eq!(e.poll_apdu(), None);
    }

    #[test]
    fn push_after_deadline_closes_the_overdue_batch_first() {
        let mut e = enc(1428, 1000);
        e.push(T0, &[b"a"]).unwrap();
        e.push(T0 + Duration::from_millis(2), &[b"b"]).unwrap();
        assert_eq!(drain(&mut e), [Bytes::from_static(b"\x00\x00\x02\x00a")]);
        assert_eq!(
            e.poll_timeout(),
            Some(T0 + Duration::from_millis(2) + Duration::from_millis(1))
        );
    }

    #[test]
    fn explicit_flush() {
        let mut e = enc(1428, 1_000_000);
        e.flush();
        assert_eq!(e.poll_apdu(), None);
        e.push(T0, &[b"x"]).unwrap();
        assert_eq!(e.open_len(), 3);
        e.flush();
        assert_eq!(e.ready_len(), 1);
        assert_eq!(e.open_len(), 0);
        e.flush();
        assert_eq!(e.ready_len(), 1);
    }

    #[test]
    fn big_message_spans_with_ffff_continuations() {
        let mut e = enc(100, 0);
        let body = vec![0x48; 300];
        e.push(T0, &[&body]).unwrap();
        let a = drain(&mut e);
        // 310 stream bytes in 98-byte slices: 98, 98, 98, 16.
        assert_eq!(
            a.iter().map(Bytes::len).collect::<Vec<_>>(),
            [100, 100, 100, 18]
        );
        assert_eq!(offset(&a[0]), 0);
        for x in &a[1..] {
            assert_eq!(offset(x), NO_OFFSET);
        }
        let stream: Vec<u8> = a.iter().flat_map(|x| x[2..].to_vec()).collect();
        let mut want = Vec::new();
        encode_message(&[&body], &mut want);
        assert_eq!(stream, want);
    }

    #[test]
    fn offset_points_past_a_tail_to_the_next_message() {
        let mut e = enc(20, 1000);
        e.push(T0, &[&[1u8; 20][..]]).unwrap(); // 22 stream bytes: 18 + 4
        e.push(T0, &[b"hi"]).unwrap();
        e.flush();
        let a = drain(&mut e);
        assert_eq!(a.len(), 2);
        assert_eq!(offset(&a[1]), 4);
        assert_eq!(&a[1][6..], b"\x03\x00hi");
    }

    #[test]
    fn multipart_offset_never_points_inside_a_message() {
        // The second frame of a message starting in APDU 0 begins APDU 1: offset stays 0xFFFF
        // there, because libzmq records offsets only for a message's first frame.
        let mut e = enc(9, 0);
        e.push(T0, &[&b"abcde"[..], b"xy"]).unwrap(); // 7 + 4 bytes: APDU 0 = 7, APDU 1 = 4
        let a = drain(&mut e);
        assert_eq!(a.len(), 2);
        assert_eq!(offset(&a[0]), 0);
        assert_eq!(offset(&a[1]), NO_OFFSET);
    }

    #[test]
    fn header_split_across_apdus() {
        // A long header (10 bytes) cut after 3 bytes.
        let mut e = enc(5, 0);
        e.push(T0, &[&[9u8; 254][..]]).unwrap();
        let a = drain(&mut e);
        assert!(a.iter().all(|x| x.len() >= MIN_PAYLOAD && x.len() <= 5));
        assert_eq!(&a[0][2..], &[0xff, 0, 0]);
    }

    #[test]
    fn smallest_payload_carries_one_stream_byte() {
        let mut e = enc(MIN_PAYLOAD, 0);
        e.push(T0, &[b"ab"]).unwrap();
        let a = drain(&mut e);
        assert_eq!(a.len(), 4);
        assert_eq!(&a[0][..], b"\x00\x00\x03");
        assert_eq!(&a[1][..], b"\xff\xff\x00");
        assert_eq!(&a[3][..], b"\xff\xffb");
    }

    #[test]
    fn apdu_closed_when_exactly_full_next_message_gets_offset_zero() {
        let mut e = enc(9, 1000);
        e.push(T0, &[b"abcde"]).unwrap(); // exactly 7 stream bytes
        assert_eq!(e.ready_len(), 1);
        // No APDU open: the only deadline is the closed one's.
        assert_eq!(e.poll_timeout(), Some(T0 + Duration::from_millis(1)));
        e.push(T0, &[b"z"]).unwrap();
        e.flush();
        let a = drain(&mut e);
        assert_eq!(offset(&a[1]), 0);
    }

    #[test]
    fn closed_apdus_keep_the_oldest_deadline_until_handed_over() {
        let linger = Duration::from_millis(1);
        let mut e = enc(9, 1000);
        e.push(T0, &[b"abcde"]).unwrap(); // full: closed, opened at T0
        let t1 = T0 + Duration::from_micros(400);
        e.push(t1, &[b"abcde"]).unwrap(); // a second one, opened later
        assert_eq!(e.ready_len(), 2);
        assert!(!e.ready_due(t1));
        assert_eq!(e.poll_timeout(), Some(T0 + linger));
        assert!(e.ready_due(T0 + linger));
        let mut out = VecDeque::new();
        e.take_ready_into(&mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(e.poll_timeout(), None);
        assert!(!e.ready_due(T0 + linger * 10));
        // What the transport refused goes back in front of anything newer, due at once.
        let refused = out.pop_back().unwrap();
        e.push(t1, &[b"xyz"]).unwrap();
        e.flush();
        let mut back = VecDeque::from([refused.clone()]);
        e.unpoll_all(&mut back);
        assert!(back.is_empty());
        assert!(e.ready_due(T0));
        assert_eq!(e.poll_apdu(), Some(refused));
        assert_eq!(e.ready_len(), 1);
    }

    /// Splits each APDU into (offset, stream bytes) and checks the invariants every APDU
    /// must meet for a libzmq SUB, then checks the offsets against the true message starts.
    fn check_apdus(max_payload: usize, msgs: &[Vec<Vec<u8>>], apdus: &[Bytes]) {
        let mut want_stream = Vec::new();
        let mut starts = Vec::new();
        for m in msgs {
            starts.push(want_stream.len());
            encode_message(m, &mut want_stream);
        }
        let mut stream = Vec::new();
        for a in apdus {
            assert!(
                a.len() >= MIN_PAYLOAD && a.len() <= max_payload,
                "len {}",
                a.len()
            );
            let base = stream.len();
            stream.extend_from_slice(&a[OFFSET_LEN..]);
            let first_start = starts
                .iter()
                .find(|&&s| s >= base && s < stream.len())
                .map(|s| (s - base) as u16);
            assert_eq!(Some(offset(a)).filter(|&o| o != NO_OFFSET), first_start);
        }
        assert_eq!(stream, want_stream);
    }

    fn msgs_strategy() -> impl Strategy<Value = Vec<Vec<Vec<u8>>>> {
        let frame = prop_oneof![
            4 => proptest::collection::vec(any::<u8>(), 0..20),
            2 => proptest::collection::vec(any::<u8>(), 240..270),
            1 => proptest::collection::vec(any::<u8>(), 0..3000),
        ];
        proptest::collection::vec(proptest::collection::vec(frame, 1..4), 0..30)
    }

    proptest! {
        #[test]
        fn stream_and_offsets_are_exact(
            max_payload in MIN_PAYLOAD..1500usize,
            linger_us in prop_oneof![Just(0u64), 1..5000u64],
            msgs in msgs_strategy(),
            gaps in proptest::collection::vec(0..3000u64, 30),
            flushes in proptest::collection::vec(any::<bool>(), 30),
        ) {
            let mut e = enc(max_payload, linger_us);
            let mut now = T0;
            let mut apdus = Vec::new();
            for (i, m) in msgs.iter().enumerate() {
                now += Duration::from_micros(gaps[i]);
                if let Some(t) = e.poll_timeout() {
                    if t <= now {
                        e.handle_timeout(t);
                    }
                }
                e.push(now, m).unwrap();
                if flushes[i] {
                    e.flush();
                }
                apdus.extend(drain(&mut e));
                // An open APDU always has a deadline, and never a full payload.
                prop_assert_eq!(e.poll_timeout().is_some(), e.open_len() > 0);
                prop_assert!(e.open_len() + OFFSET_LEN < max_payload);
            }
            e.flush();
            apdus.extend(drain(&mut e));
            check_apdus(max_payload, &msgs, &apdus);
            prop_assert_eq!(e.stats().apdus, apdus.len() as u64);
        }
    }
}
