//! Subscriber-side framing: APDUs of each publisher (TSI) → filtered, complete messages.
//!
//! Each TSI gets a [`StreamDecoder`] that follows libzmq's receiver
//! (`src/pgm_receiver.cpp:in_event`, docs/wire-compatibility.md §11):
//!
//! - **Unjoined** (a new peer, or after a loss or a decode error): APDUs whose offset is
//!   [`NO_OFFSET`] are skipped. Otherwise the offset must be ≤ the stream bytes in the APDU
//!   (libzmq asserts; here a bad one is dropped and counted) and decoding starts there.
//! - **Joined**: every stream byte after the offset field is decoded; the offset is ignored.
//! - **Decode error** (frame size 0, a message over the size limit): the rest of the APDU is
//!   dropped, the partial message too, and the stream is unjoined.
//! - **Loss** reported by the transport ([`Decoder::handle_loss`]): the partial message is
//!   dropped, the stream unjoined, and a [`RecvEvent::Gap`] tells the application (libzmq
//!   tells it nothing), so e.g. a market-data client knows to resync its book.
//!
//! Frames and messages may span APDUs. The [`Filter`] is applied to a message's first frame as
//! soon as the bytes that decide it have arrived ([`Filter::decision_len`]); a rejected message
//! is skipped without buffering anything more. A frame body that lies inside one APDU is handed
//! out as a [`Bytes`] slice of that APDU (no copy); only bodies cut across APDUs are assembled.
//! A message longer than [`DecoderConfig::max_message_size`], or of more than [`MAX_FRAMES`]
//! frames, is a decode error, so neither a hostile length nor an endless run of empty frames
//! can make the decoder allocate without bound.

use std::collections::{HashMap, VecDeque};

use bytes::{Bytes, BytesMut};
use pgm::wire::Tsi;

use crate::{
    encoder::{NO_OFFSET, OFFSET_LEN},
    filter::Filter,
    frame::{FrameError, FrameHeader, LONG_HEADER_LEN},
    join::Join,
    slow_consumer::{Bound, PolicyBuffer},
};

/// Default [`DecoderConfig::max_message_size`]: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 << 20;

/// Most frames a message may have; one more is a decode error. Empty frames cost no body
/// bytes, so without this a publisher could make a message in progress hold any number of
/// them (a `Bytes` each) within [`DecoderConfig::max_message_size`].
pub const MAX_FRAMES: usize = 1 << 16;

/// The most a spanning frame pre-allocates; larger bodies grow as their bytes arrive, so a
/// header alone never costs more than this.
const PREALLOC_LIMIT: usize = 64 << 10;

/// Limits of a [`Decoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Most body bytes (all frames together) a delivered message may have; a longer one is a
    /// decode error (libzmq's ZMQ_MAXMSGSIZE, which it applies per frame). Messages the filter
    /// rejects are skipped whatever their size.
    pub max_message_size: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}

/// The frames of a [`Message`]: a vector that holds up to two inline (derefs to `[Bytes]`).
pub type Frames = smallvec::SmallVec<[Bytes; 2]>;

/// A complete message from one publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The publisher's session.
    pub tsi: Tsi,
    /// The frames, topic first; never empty. Up to two (a topic and a body, the common shape)
    /// are held inline, so a message costs no allocation of its own.
    pub frames: Frames,
}

impl Message {
    /// The first frame: the topic the filter matched.
    pub fn topic(&self) -> &Bytes {
        &self.frames[0]
    }

    /// The frames after the topic.
    pub fn body(&self) -> &[Bytes] {
        &self.frames[1..]
    }
}

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvEvent {
    /// A complete message that passed the filter.
    Message(Message),
    /// Data from `tsi` was lost for good: `lost` sequence numbers (APDUs) could not be
    /// repaired. Any message in progress from that publisher was dropped, and messages resume
    /// at the next message start it sends.
    Gap {
        /// The publisher.
        tsi: Tsi,
        /// Sequence numbers lost.
        lost: u32,
    },
    /// The subscriber's slow-consumer policy ([`crate::SlowConsumer`]) evicted `messages`
    /// complete messages of publisher `tsi` that the application had not read: they were
    /// received, not lost by the transport. Comes before anything newer from that publisher;
    /// `tsi` is `None` for the drops of publishers beyond
    /// [`MAX_DROP_NOTICES`](crate::slow_consumer::MAX_DROP_NOTICES) with drops pending at once.
    Dropped {
        /// The publisher.
        tsi: Option<Tsi>,
        /// Messages dropped.
        messages: u64,
    },
    /// Publisher `tsi`'s session is over: it ended (OPT_FIN) or went silent for the peer
    /// expiry. Its state is freed; should the same TSI send again, it starts a new stream
    /// (joined at its next message start). Only publishers that sent data are reported.
    PublisherGone {
        /// The publisher.
        tsi: Tsi,
    },
    /// The history of publisher `tsi` that a late joiner asked for
    /// ([`crate::Join::History`] or
    /// [`crate::Join::CurrentState`], docs/late-join.md) is delivered:
    /// what follows is live.
    CaughtUp {
        /// The publisher.
        tsi: Tsi,
    },
}

/// Why decoding a stream failed; the stream unjoins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A bad frame header.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The message would exceed [`DecoderConfig::max_message_size`].
    #[error("message longer than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The message would have more than [`MAX_FRAMES`] frames.
    #[error("message of more than {limit} frames")]
    TooManyFrames {
        /// The limit.
        limit: usize,
    },
}

/// Counters of a [`Decoder`] (all publishers together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecoderStats {
    /// APDUs handed in.
    pub apdus: u64,
    /// Messages delivered.
    pub received: u64,
    /// Messages skipped by the filter.
    pub filtered_out: u64,
    /// Loss notices (each one is a [`RecvEvent::Gap`]).
    pub gaps: u64,
    /// Sequence numbers reported lost in those notices.
    pub lost_sqns: u64,
    /// Decode errors (each unjoins the stream): bad frames, oversize messages, messages of too
    /// many frames.
    pub decode_errors: u64,
    /// APDUs dropped because the offset pointed past their end.
    pub bad_offsets: u64,
    /// APDUs too short to hold the offset field (0 or 1 byte).
    pub short_apdus: u64,
    /// APDUs skipped while unjoined because no message started in them.
    pub skipped_unjoined: u64,
    /// Times a stream (re)joined at an offset.
    pub joins: u64,
}

/// A frame body still arriving.
#[derive(Debug)]
struct Body {
    /// Body bytes still to come.
    remaining: u64,
    /// The frame's MORE flag.
    more: bool,
    /// The bytes so far; stays empty while the message is skipped.
    buf: BytesMut,
    /// First frame only: the filter decides once `buf` holds this many bytes.
    undecided: Option<usize>,
}

/// The decoding state of one publisher's stream; see the [module docs](self).
#[derive(Debug, Default)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent states of one stream, one field each"
)]
pub struct StreamDecoder {
    joined: bool,
    /// A frame header cut by the end of an APDU: its bytes so far.
    hdr: [u8; LONG_HEADER_LEN],
    hdr_len: usize,
    /// Inside a frame body cut by the end of an APDU.
    body: Option<Body>,
    /// Complete frames of the message in progress.
    frames: Frames,
    /// Body bytes of the message in progress, for the size limit.
    msg_len: u64,
    /// The last frame had MORE: the next frame belongs to the same message.
    continuing: bool,
    /// The message in progress was rejected by the filter.
    skipping: bool,
    /// Under [`Join::CurrentState`], the transport reported the history delivered: messages
    /// go out as they come instead of into the snapshot.
    live: bool,
}

/// Where one APDU's bytes go.
struct Sink<'a> {
    tsi: Tsi,
    filter: &'a Filter,
    limit: usize,
    stats: &'a mut DecoderStats,
    events: &'a mut VecDeque<RecvEvent>,
}

impl StreamDecoder {
    /// An unjoined stream.
    pub fn new() -> Self {
        StreamDecoder::default()
    }

    /// True once decoding started at a message boundary and no loss or error happened since.
    pub fn is_joined(&self) -> bool {
        self.joined
    }

    /// Bytes held for the message in progress: its complete frames, the part of a frame body
    /// cut by the end of an APDU, and a cut frame header. At most
    /// `max(DecoderConfig::max_message_size, Filter::max_prefix_len()) + 9`: a hostile length
    /// field cannot make a stream buffer more.
    pub fn buffered_bytes(&self) -> usize {
        let frames: usize = self.frames.iter().map(Bytes::len).sum();
        frames + self.body.as_ref().map_or(0, |b| b.buf.len()) + self.hdr_len
    }

    /// Complete frames held for the message in progress: at most [`MAX_FRAMES`].
    pub fn buffered_frames(&self) -> usize {
        self.frames.len()
    }

    /// Forgets any partial message and header and waits for the next APDU with an offset.
    pub fn unjoin(&mut self) {
        self.joined = false;
        self.hdr_len = 0;
        self.body = None;
        self.frames.clear();
        self.msg_len = 0;
        self.continuing = false;
        self.skipping = false;
    }

    /// Handles one APDU (offset field included).
    fn handle_apdu(&mut self, apdu: &Bytes, sink: &mut Sink<'_>) {
        let Some(&[hi, lo]) = apdu.get(..OFFSET_LEN) else {
            // libzmq aborts on this; a stream byte may be missing, so resync.
            sink.stats.short_apdus += 1;
            self.unjoin();
            return;
        };
        let start = if self.joined {
            OFFSET_LEN
        } else {
            let offset = u16::from_be_bytes([hi, lo]);
            if offset == NO_OFFSET {
                sink.stats.skipped_unjoined += 1;
                return;
            }
            let at = OFFSET_LEN + usize::from(offset);
            if at > apdu.len() {
                sink.stats.bad_offsets += 1;
                return;
            }
            self.joined = true;
            sink.stats.joins += 1;
            at
        };
        if self.feed(apdu, start, sink).is_err() {
            sink.stats.decode_errors += 1;
            self.unjoin();
        }
    }

    /// Decodes `data[pos..]`, which continues the stream exactly where the last call stopped.
    fn feed(
        &mut self,
        data: &Bytes,
        mut pos: usize,
        sink: &mut Sink<'_>,
    ) -> Result<(), DecodeError> {
        while pos < data.len() {
            if let Some(body) = &mut self.body {
                // Continue a body cut by the previous APDU.
                let avail = (data.len() - pos) as u64;
                let n = body.remaining.min(avail) as usize;
                if !self.skipping {
                    body.buf.extend_from_slice(&data[pos..pos + n]);
                }
                pos += n;
                body.remaining -= n as u64;
                if let Some(k) = body.undecided {
                    if body.buf.len() >= k {
                        body.undecided = None;
                        if !sink.filter.matches(&body.buf[..k]) {
                            self.skipping = true;
                            sink.stats.filtered_out += 1;
                            body.buf = BytesMut::new();
                        } else if self.msg_len > sink.limit as u64 {
                            return Err(DecodeError::TooLarge { limit: sink.limit });
                        } else {
                            body.buf.reserve(prealloc(body.remaining));
                        }
                    }
                }
                if body.remaining == 0 {
                    let more = body.more;
                    let buf = std::mem::take(&mut body.buf);
                    self.body = None;
                    self.end_frame(buf.freeze(), more, sink);
                }
                continue;
            }

            // A frame header, possibly completing one cut by the previous APDU.
            let hdr = if self.hdr_len == 0 {
                let Some((hdr, used)) = FrameHeader::parse(&data[pos..])? else {
                    let rest = &data[pos..];
                    self.hdr[..rest.len()].copy_from_slice(rest);
                    self.hdr_len = rest.len();
                    return Ok(());
                };
                pos += used;
                hdr
            } else {
                let need = FrameHeader::needed(self.hdr[0]);
                let n = (need - self.hdr_len).min(data.len() - pos);
                self.hdr[self.hdr_len..self.hdr_len + n].copy_from_slice(&data[pos..pos + n]);
                self.hdr_len += n;
                pos += n;
                if self.hdr_len < need {
                    return Ok(());
                }
                self.hdr_len = 0;
                match FrameHeader::parse(&self.hdr[..need])? {
                    Some((hdr, _)) => hdr,
                    // `need` bytes always parse; treat the impossible as a bad stream.
                    None => return Err(FrameError::ZeroSize.into()),
                }
            };
            pos = self.start_frame(hdr, data, pos, sink)?;
        }
        Ok(())
    }

    /// Starts a frame whose header ended at `pos`; returns the position after what it consumed.
    fn start_frame(
        &mut self,
        hdr: FrameHeader,
        data: &Bytes,
        pos: usize,
        sink: &mut Sink<'_>,
    ) -> Result<usize, DecodeError> {
        let first = !self.continuing;
        self.msg_len = self.msg_len.saturating_add(hdr.body_len);
        let avail = data.len() - pos;
        // Bytes of this frame that decide the filter (first frame only).
        let mut undecided = None;
        if first {
            let k = sink.filter.decision_len(hdr.body_len);
            if k <= avail {
                if !sink.filter.matches(&data[pos..pos + k]) {
                    self.skipping = true;
                    sink.stats.filtered_out += 1;
                }
            } else {
                undecided = Some(k);
            }
        }
        // A skipped message may be any size: nothing of it is kept.
        if !self.skipping && undecided.is_none() && self.msg_len > sink.limit as u64 {
            return Err(DecodeError::TooLarge { limit: sink.limit });
        }
        if !self.skipping && self.frames.len() >= MAX_FRAMES {
            return Err(DecodeError::TooManyFrames { limit: MAX_FRAMES });
        }
        if hdr.body_len <= avail as u64 {
            let end = pos + hdr.body_len as usize;
            // Zero copy: the body is a view of the APDU.
            let body = if self.skipping {
                Bytes::new()
            } else {
                data.slice(pos..end)
            };
            self.end_frame(body, hdr.more, sink);
            return Ok(end);
        }
        let mut buf = BytesMut::new();
        if !self.skipping {
            let hint = undecided.map_or(hdr.body_len, |k| k as u64);
            buf.reserve(prealloc(hint));
            buf.extend_from_slice(&data[pos..]);
        }
        self.body = Some(Body {
            remaining: hdr.body_len - avail as u64,
            more: hdr.more,
            buf,
            undecided,
        });
        Ok(data.len())
    }

    fn end_frame(&mut self, body: Bytes, more: bool, sink: &mut Sink<'_>) {
        if !self.skipping {
            self.frames.push(body);
        }
        if more {
            self.continuing = true;
            return;
        }
        if !self.skipping {
            sink.stats.received += 1;
            sink.events.push_back(RecvEvent::Message(Message {
                tsi: sink.tsi,
                frames: std::mem::take(&mut self.frames),
            }));
        }
        self.frames.clear();
        self.continuing = false;
        self.skipping = false;
        self.msg_len = 0;
    }
}

/// Capacity to reserve up front for `len` body bytes.
fn prealloc(len: u64) -> usize {
    usize::try_from(len).map_or(PREALLOC_LIMIT, |l| l.min(PREALLOC_LIMIT))
}

/// Decodes the APDU streams of every publisher and filters them; sans-IO.
///
/// Feed it the transport's events ([`Decoder::handle_data`], [`Decoder::handle_loss`],
/// [`Decoder::handle_peer_gone`]) and drain [`Decoder::poll_event`].
#[derive(Debug, Default)]
pub struct Decoder {
    config: DecoderConfig,
    filter: Filter,
    streams: HashMap<Tsi, StreamDecoder>,
    events: VecDeque<RecvEvent>,
    stats: DecoderStats,
    /// [`Join::CurrentState`]'s bound per publisher.
    snapshot: Option<Bound>,
    /// Under [`Join::CurrentState`], each publisher still catching up: its messages
    /// conflated to the newest per topic, and its loss notices, until
    /// [`Decoder::handle_caught_up`]. One per stream at most, so bounded like the streams.
    catching_up: HashMap<Tsi, PolicyBuffer>,
}

impl Decoder {
    /// A decoder with no subscriptions (it delivers nothing until [`Decoder::filter_mut`]
    /// subscribes something).
    pub fn new(config: DecoderConfig) -> Self {
        Decoder {
            config,
            ..Decoder::default()
        }
    }

    /// This decoder under a late-join mode: with [`Join::CurrentState`] each publisher's
    /// messages are conflated to the newest per topic until the transport reports its
    /// history delivered ([`Decoder::handle_caught_up`]), then handed out (docs/late-join.md).
    #[must_use]
    pub fn with_join(mut self, join: Join) -> Self {
        self.snapshot = match join {
            Join::CurrentState(b) => Some(b),
            _ => None,
        };
        self
    }

    /// The subscriptions.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// The subscriptions, to change them. A change applies from the next message start on.
    pub fn filter_mut(&mut self) -> &mut Filter {
        &mut self.filter
    }

    /// Handles one APDU (an ODATA/RDATA payload, offset field included) from `tsi`.
    pub fn handle_data(&mut self, tsi: Tsi, apdu: &Bytes) {
        self.stats.apdus += 1;
        let before = self.events.len();
        let stream = self.streams.entry(tsi).or_default();
        let mut sink = Sink {
            tsi,
            filter: &self.filter,
            limit: self.config.max_message_size,
            stats: &mut self.stats,
            events: &mut self.events,
        };
        stream.handle_apdu(apdu, &mut sink);
        if !stream.live {
            self.hold_back(tsi, before);
        }
    }

    /// Under [`Join::CurrentState`], moves `tsi`'s events from `from` on into its snapshot.
    fn hold_back(&mut self, tsi: Tsi, from: usize) {
        let Some(bound) = self.snapshot else {
            return;
        };
        if from >= self.events.len() {
            return;
        }
        let buf = self
            .catching_up
            .entry(tsi)
            .or_insert_with(|| PolicyBuffer::conflating(bound));
        for ev in self.events.drain(from..) {
            buf.push(ev);
        }
    }

    /// Handles the transport's notice that `tsi`'s history is delivered
    /// (`pgm::Event::CaughtUp`): under [`Join::CurrentState`] its snapshot goes out, and its
    /// messages from now on as they come; then [`RecvEvent::CaughtUp`].
    pub fn handle_caught_up(&mut self, tsi: Tsi) {
        self.streams.entry(tsi).or_default().live = true;
        self.release(tsi);
        self.events.push_back(RecvEvent::CaughtUp { tsi });
    }

    /// Hands out what `tsi`'s snapshot holds.
    fn release(&mut self, tsi: Tsi) {
        if let Some(mut buf) = self.catching_up.remove(&tsi) {
            while let Some(ev) = buf.pop() {
                self.events.push_back(ev);
            }
        }
    }

    /// Handles the transport's notice that `lost` sequence numbers from `tsi` will never
    /// arrive: drops the partial message, unjoins, and queues a [`RecvEvent::Gap`].
    pub fn handle_loss(&mut self, tsi: Tsi, lost: u32) {
        if let Some(s) = self.streams.get_mut(&tsi) {
            s.unjoin();
        }
        self.stats.gaps += 1;
        self.stats.lost_sqns += u64::from(lost);
        let before = self.events.len();
        self.events.push_back(RecvEvent::Gap { tsi, lost });
        if self.streams.get(&tsi).is_none_or(|s| !s.live) {
            self.hold_back(tsi, before);
        }
    }

    /// Forgets a publisher that went away (its partial message, if any, is dropped).
    pub fn handle_peer_gone(&mut self, tsi: Tsi) {
        self.release(tsi);
        if self.streams.remove(&tsi).is_some() {
            self.events.push_back(RecvEvent::PublisherGone { tsi });
        }
    }

    /// The next message or gap, in arrival order.
    pub fn poll_event(&mut self) -> Option<RecvEvent> {
        self.events.pop_front()
    }

    /// Events waiting in [`Decoder::poll_event`].
    pub fn pending(&self) -> usize {
        self.events.len()
    }

    /// True when `tsi`'s stream is joined.
    pub fn is_joined(&self, tsi: &Tsi) -> bool {
        self.streams.get(tsi).is_some_and(StreamDecoder::is_joined)
    }

    /// [`StreamDecoder::buffered_bytes`] of every publisher together.
    pub fn buffered_bytes(&self) -> usize {
        self.streams
            .values()
            .map(StreamDecoder::buffered_bytes)
            .sum()
    }

    /// [`StreamDecoder::buffered_frames`] of every publisher together.
    pub fn buffered_frames(&self) -> usize {
        self.streams
            .values()
            .map(StreamDecoder::buffered_frames)
            .sum()
    }

    /// Publishers with decoding state.
    pub fn peers(&self) -> usize {
        self.streams.len()
    }

    /// Counters.
    pub fn stats(&self) -> DecoderStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use pgm::wire::Gsi;

    use super::*;

    const TSI: Tsi = Tsi::new(Gsi([0xb7, 0xc6, 0xd1, 0xbc, 0x03, 0x8a]), 0xf3c5);

    fn all() -> Decoder {
        let mut d = Decoder::new(DecoderConfig::default());
        d.filter_mut().subscribe(b"");
        d
    }

    fn events(d: &mut Decoder) -> Vec<RecvEvent> {
        std::iter::from_fn(|| d.poll_event()).collect()
    }

    fn msgs(d: &mut Decoder) -> Vec<Vec<Vec<u8>>> {
        events(d)
            .into_iter()
            .map(|e| match e {
                RecvEvent::Message(m) => m.frames.iter().map(|f| f.to_vec()).collect(),
                e => panic!("unexpected {e:?}"),
            })
            .collect()
    }

    fn apdu(bytes: &[u8]) -> Bytes {
        Bytes::copy_from_slice(bytes)
    }

    #[test]
    fn single_apdu_is_zero_copy() {
        let mut d = all();
        let a = apdu(b"\x00\x00\x06\x01topic\x08\x00payload");
        d.handle_data(TSI, &a);
        let Some(RecvEvent::Message(m)) = d.poll_event() else {
            panic!("no message")
        };
        assert_eq!(m.tsi, TSI);
        assert_eq!(m.topic(), &b"topic"[..]);
        assert_eq!(m.body(), [Bytes::from_static(b"payload")]);
        // Both frames point into the APDU's buffer.
        let range = a.as_ptr() as usize..a.as_ptr() as usize + a.len();
        for f in &m.frames {
            assert!(range.contains(&(f.as_ptr() as usize)));
        }
    }

    #[test]
    fn current_state_conflates_the_history_until_caught_up() {
        let mut d = all().with_join(Join::CurrentState(Bound::default()));
        // topic A body 1, B 1, A 2, C 1, B 2: the history.
        for m in [b"A1", b"B1", b"A2", b"C1", b"B2"] {
            let mut a = b"\x00\x00\x02\x01".to_vec();
            a.push(m[0]);
            a.extend_from_slice(b"\x02\x00");
            a.push(m[1]);
            d.handle_data(TSI, &apdu(&a));
        }
        d.handle_loss(TSI, 3);
        assert!(
            events(&mut d).is_empty(),
            "nothing before the history is in"
        );
        d.handle_caught_up(TSI);
        d.handle_data(TSI, &apdu(b"\x00\x00\x02\x01A\x02\x003"));
        let got: Vec<String> = events(&mut d)
            .into_iter()
            .map(|e| match e {
                RecvEvent::Message(m) => {
                    String::from_utf8_lossy(&[&m.frames[0][..], &m.frames[1][..]].concat())
                        .into_owned()
                }
                RecvEvent::Gap { lost, .. } => format!("gap {lost}"),
                RecvEvent::CaughtUp { .. } => "caught up".into(),
                e => panic!("unexpected {e:?}"),
            })
            .collect();
        // The newest per topic in first-arrival order, the loss notice in place, then live.
        assert_eq!(got, ["A2", "B2", "C1", "gap 3", "caught up", "A3"]);
    }

    #[test]
    fn unjoined_skips_ffff_then_joins_at_offset() {
        let mut d = all();
        d.handle_data(TSI, &apdu(b"\xff\xff\x02\x00a"));
        assert!(!d.is_joined(&TSI));
        // Offset 3 skips the tail "\x02\x00b" of a message we never saw the start of.
        d.handle_data(TSI, &apdu(b"\x00\x03\x02\x00b\x02\x00c"));
        assert!(d.is_joined(&TSI));
        assert_eq!(msgs(&mut d), [[b"c".to_vec()]]);
        let s = d.stats();
        assert_eq!((s.skipped_unjoined, s.joins, s.received), (1, 1, 1));
    }

    #[test]
    fn offset_equal_to_payload_len_joins_at_the_end() {
        // libzmq writes this when an APDU ends with a message tail and nothing else is queued.
        let mut d = all();
        d.handle_data(TSI, &apdu(b"\x00\x03xyz"));
        assert!(d.is_joined(&TSI));
        d.handle_data(TSI, &apdu(b"\x00\x00\x02\x00q"));
        assert_eq!(msgs(&mut d), [[b"q".to_vec()]]);
    }

    #[test]
    fn offset_beyond_payload_is_dropped_and_counted() {
        let mut d = all();
        d.handle_data(TSI, &apdu(b"\x00\x04xyz"));
        d.handle_data(TSI, &apdu(b"\xff\xfe\x02\x00a"));
        assert!(!d.is_joined(&TSI));
        assert_eq!(d.stats().bad_offsets, 2);
        assert!(events(&mut d).is_empty());
    }

    #[test]
    fn short_apdus_are_counted_and_unjoin() {
        let mut d = all();
        d.handle_data(TSI, &apdu(b"\x00\x00\x02\x01a"));
        d.handle_data(TSI, &apdu(b""));
        d.handle_data(TSI, &apdu(b"\x00"));
        assert_eq!(d.stats().short_apdus, 2);
        assert!(!d.is_joined(&TSI));
        assert!(events(&mut d).is_empty());
    }

    #[test]
    fn zero_size_frame_is_a_decode_error_then_resync() {
        let mut d = all();
        d.handle_data(TSI, &apdu(b"\x00\x00\x02\x00a\x00\x00\x02\x00b"));
        assert_eq!(
            msgs(&mut d),
            [[b"a".to_vec()]],
            "b after the error is dropped"
        );
        assert_eq!(d.stats().decode_errors, 1);
        assert!(!d.is_joined(&TSI));
        d.handle_data(TSI, &apdu(b"\xff\xff\x02\x00z"));
        d.handle_data(TSI, &apdu(b"\x00\x00\x02\x00c"));
        assert_eq!(msgs(&mut d), [[b"c".to_vec()]]);
    }

    #[test]
    fn huge_long_length_is_refused_without_allocating() {
        let mut d = all();
        d.handle_data(
            TSI,
            &apdu(b"\x00\x00\xff\x7f\xff\xff\xff\xff\xff\xff\xff\x00abc"),
        );
        d.handle_data(
            TSI,
            &apdu(b"\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00"),
        );
        assert_eq!(d.stats().decode_errors, 2);
        assert!(events(&mut d).is_empty());
    }

    #[test]
    fn huge_length_split_across_apdus_is_refused() {
        let mut d = all();
        d.handle_data(TSI, &apdu(b"\x00\x00\xff\x7f\xff"));
        assert_eq!(d.stats().decode_errors, 0);
        d.handle_data(TSI, &apdu(b"\xff\xff\xff\xff\xff\xff\xff\x00abc"));
        assert_eq!(d.stats().decode_errors, 1);
    }

    #[test]
    fn endless_empty_frames_are_a_decode_error() {
        let mut d = all();
        // Empty frames with MORE cost no body bytes; 32 767 of them per APDU.
        let mut a = vec![0, 0];
        a.extend([1u8, 1].repeat(32_767));
        d.handle_data(TSI, &Bytes::from(a));
        assert_eq!(d.buffered_frames(), 32_767);
        let mut more = vec![0xff, 0xff];
        more.extend([1u8, 1].repeat(32_767));
        let more = Bytes::from(more);
        d.handle_data(TSI, &more);
        assert_eq!(d.stats().decode_errors, 0);
        d.handle_data(TSI, &more);
        assert_eq!(d.stats().decode_errors, 1);
        assert_eq!((d.buffered_frames(), d.buffered_bytes()), (0, 0));
        assert!(!d.is_joined(&TSI));
        // A message of exactly MAX_FRAMES frames is fine.
        let mut m = vec![0, 0];
        m.extend([1u8, 1].repeat(MAX_FRAMES - 1));
        m.extend_from_slice(&[1, 0]);
        d.handle_data(TSI, &Bytes::from(m));
        let Some(RecvEvent::Message(msg)) = d.poll_event() else {
            panic!("no message")
        };
        assert_eq!(msg.frames.len(), MAX_FRAMES);
    }

    #[test]
    fn buffered_bytes_count_a_message_in_progress() {
        let mut d = all();
        d.handle_data(TSI, &apdu(b"\x00\x00\x03\x01ab\x05\x00cd"));
        // "ab" complete, 2 of 4 bytes of the second frame.
        assert_eq!((d.buffered_bytes(), d.buffered_frames()), (4, 1));
        d.handle_data(TSI, &apdu(b"\xff\xffef\xff\x00\x00"));
        // Message delivered; 3 bytes of a long header held.
        assert_eq!((d.buffered_bytes(), d.buffered_frames()), (3, 0));
        assert_eq!(msgs(&mut d), [[b"ab".to_vec(), b"cdef".to_vec()]]);
    }

    #[test]
    fn size_limit_counts_all_frames_of_a_message() {
        let mut d = Decoder::new(DecoderConfig {
            max_message_size: 4,
        });
        d.filter_mut().subscribe(b"");
        d.handle_data(TSI, &apdu(b"\x00\x00\x03\x01ab\x03\x00cd"));
        assert_eq!(msgs(&mut d).len(), 1, "exactly at the limit");
        d.handle_data(TSI, &apdu(b"\x00\x00\x03\x01ab\x04\x00cde"));
        assert!(events(&mut d).is_empty());
        assert_eq!(d.stats().decode_errors, 1);
    }

    #[test]
    fn oversize_message_rejected_by_filter_is_just_skipped() {
        let mut d = Decoder::new(DecoderConfig {
            max_message_size: 4,
        });
        d.filter_mut().subscribe(b"b");
        d.handle_data(TSI, &apdu(b"\x00\x00\x0b\x00aaaaaaaaaa\x02\x00b"));
        assert_eq!(msgs(&mut d), [[b"b".to_vec()]]);
        let s = d.stats();
        assert_eq!((s.decode_errors, s.filtered_out), (0, 1));
    }

    #[test]
    fn oversize_message_split_topic_decided_late() {
        let mut d = Decoder::new(DecoderConfig {
            max_message_size: 4,
        });
        d.filter_mut().subscribe(b"abc");
        // A 9-byte first frame whose topic bytes arrive one APDU at a time.
        d.handle_data(TSI, &apdu(b"\x00\x00\x0a\x00a"));
        d.handle_data(TSI, &apdu(b"\xff\xffb"));
        assert_eq!(d.stats().decode_errors, 0);
        d.handle_data(TSI, &apdu(b"\xff\xffc"));
        assert_eq!(d.stats().decode_errors, 1);
    }

    #[test]
    fn filter_rejects_whole_multipart_message() {
        let mut d = Decoder::new(DecoderConfig::default());
        d.filter_mut().subscribe(b"md.A");
        d.handle_data(
            TSI,
            &apdu(b"\x00\x00\x05\x01md.B\x02\x01x\x02\x00y\x05\x01md.A\x02\x00z"),
        );
        assert_eq!(msgs(&mut d), [[b"md.A".to_vec(), b"z".to_vec()]]);
        assert_eq!(d.stats().filtered_out, 1);
    }

    #[test]
    fn nothing_subscribed_delivers_nothing() {
        let mut d = Decoder::new(DecoderConfig::default());
        d.handle_data(TSI, &apdu(b"\x00\x00\x02\x00a\x02\x00b"));
        assert!(events(&mut d).is_empty());
        assert_eq!(d.stats().filtered_out, 2);
    }

    #[test]
    fn filter_decides_on_a_topic_cut_across_apdus() {
        let mut d = Decoder::new(DecoderConfig::default());
        d.filter_mut().subscribe(b"abcd");
        // Topic "abcdef" arrives as "ab" | "cdef"; then a rejected topic "abXdef" likewise.
        d.handle_data(TSI, &apdu(b"\x00\x00\x07\x00ab"));
        d.handle_data(TSI, &apdu(b"\xff\xffcdef\x07\x00ab"));
        d.handle_data(TSI, &apdu(b"\xff\xffXdef"));
        assert_eq!(msgs(&mut d), [[b"abcdef".to_vec()]]);
        assert_eq!(d.stats().filtered_out, 1);
    }

    #[test]
    fn frames_and_headers_span_apdus() {
        let mut d = all();
        let mut stream = Vec::new();
        crate::frame::encode_message(&[vec![1u8; 300], vec![2u8; 3]], &mut stream);
        // Cut inside the long header, then inside the body, then inside the second header.
        let cuts = [0usize, 4, 150, 311, stream.len()];
        for w in cuts.windows(2) {
            let mut a = if w[0] == 0 {
                vec![0, 0]
            } else {
                vec![0xff, 0xff]
            };
            a.extend_from_slice(&stream[w[0]..w[1]]);
            d.handle_data(TSI, &Bytes::from(a));
        }
        assert_eq!(msgs(&mut d), [[vec![1u8; 300], vec![2u8; 3]]]);
    }

    #[test]
    fn loss_drops_partial_message_and_reports_gap() {
        let mut d = all();
        d.handle_data(TSI, &apdu(b"\x00\x00\x02\x00a\x05\x00ab"));
        d.handle_loss(TSI, 3);
        d.handle_data(TSI, &apdu(b"\xff\xff\x02\x00c"));
        d.handle_data(TSI, &apdu(b"\x00\x01d\x02\x00e"));
        assert_eq!(
            events(&mut d),
            [
                RecvEvent::Message(Message {
                    tsi: TSI,
                    frames: vec![Bytes::from_static(b"a")].into()
                }),
                RecvEvent::Gap { tsi: TSI, lost: 3 },
                RecvEvent::Message(Message {
                    tsi: TSI,
                    frames: vec![Bytes::from_static(b"e")].into()
                }),
            ]
        );
        let s = d.stats();
        assert_eq!((s.gaps, s.lost_sqns, s.joins), (1, 3, 2));
    }

    #[test]
    fn streams_are_per_tsi() {
        let other = Tsi::new(TSI.gsi, 1);
        let mut d = all();
        d.handle_data(TSI, &apdu(b"\x00\x00\x04\x00ab"));
        d.handle_data(other, &apdu(b"\x00\x00\x02\x00x"));
        d.handle_loss(other, 1);
        d.handle_data(TSI, &apdu(b"\xff\xffc"));
        let ev = events(&mut d);
        assert_eq!(ev.len(), 3);
        assert!(
            matches!(&ev[2], RecvEvent::Message(m) if m.tsi == TSI && m.frames[0] == b"abc"[..])
        );
        d.handle_peer_gone(other);
        assert_eq!(d.peers(), 1);
        assert_eq!(
            events(&mut d),
            vec![RecvEvent::PublisherGone { tsi: other }]
        );
        // A publisher never heard from is not reported.
        d.handle_peer_gone(Tsi::new(TSI.gsi, 2));
        assert!(events(&mut d).is_empty());
    }
}
