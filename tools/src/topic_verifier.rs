//! `pgm-sub --verify`: the check of `pgm-pub`'s per-topic test message sequences.

use std::collections::{BTreeMap, HashMap};

use foldhash::HashMap as FastMap;

use pgm::wire::Tsi;
use pubsub::Message;

use crate::cli::{check_test_message, Senders};

/// (publisher, topic) streams whose sequence is tracked; messages of further streams are
/// counted (`untracked`), not checked. Valid test messages are easy to forge, so a forger
/// could otherwise grow the verifier without end.
pub const MAX_STREAMS: usize = 262_144;
/// Topics with a count of their own (`topics`, `first_seq`, `last_seq`); messages of further
/// topics are counted under [`OTHER_TOPICS`].
pub const MAX_TOPICS: usize = 262_144;
/// The `topics` key that counts the topics past [`MAX_TOPICS`].
pub const OTHER_TOPICS: &str = "(other topics)";

/// Checks `[topic][test message]` messages: per publisher (TSI) and topic, the sequence must
/// go up by one; every payload must pass its CRC.
///
/// A (TSI, topic) stream first heard mid-way starts wherever it is heard (a live or
/// current-state join is not a gap; [`TopicVerifier::from_zero`], for a history join, makes
/// every stream start at 0); a restarted publisher has a new TSI and starts over at 0. Publishers none of whose
/// messages passed the check (forged sessions, garbage) are counted apart ([`Senders`]) and do
/// not fail verification.
///
/// Under a slow-consumer policy ([`Allow`]) some skips are expected: with drop-oldest, skips
/// covered by the publisher's announced drops ([`TopicVerifier::on_dropped`]); with conflate,
/// any forward skip (the sequence per stream must still go up).
#[derive(Debug, Default, Clone)]
pub struct TopicVerifier {
    /// What skips are expected.
    allow: Allow,
    /// The next expected sequence number per publisher and topic.
    next: FastMap<Tsi, FastMap<Vec<u8>, u64>>,
    /// Drop-oldest: announced drops not yet matched by a skip, per publisher.
    announced: HashMap<Option<Tsi>, u64>,
    /// Under a policy: the highest sequence number delivered per topic (all publishers).
    pub last_seq: BTreeMap<Vec<u8>, u64>,
    /// Messages announced dropped by the slow-consumer policy.
    pub policy_dropped: u64,
    /// Sequence numbers skipped as announced (drop-oldest) or conflated (conflate).
    pub policy_skipped: u64,
    /// Per-publisher counts: verified publishers and the others.
    pub senders: Senders,
    /// Messages delivered per topic (valid messages when verifying, all when printing), for
    /// the first [`MAX_TOPICS`] topics.
    pub topics: FastMap<Vec<u8>, u64>,
    /// Messages of topics past [`MAX_TOPICS`].
    pub other_topics: u64,
    /// (Publisher, topic) streams tracked in `next`.
    streams: usize,
    /// Valid messages of streams past [`MAX_STREAMS`]: counted, their sequence not checked.
    pub untracked: u64,
    /// Messages delivered: of verified publishers when verifying (what `--count` counts), all
    /// of them when printing.
    pub received: u64,
    /// Test sequence numbers skipped.
    pub gaps: u64,
    /// Messages at or below a number already seen in their stream.
    pub duplicates: u64,
    /// Every stream must start at sequence 0 (a history join): a later start counts its
    /// skip as gaps.
    from_zero: bool,
    /// The sequence number each topic's first stream started at.
    pub first_seq: BTreeMap<Vec<u8>, u64>,
    /// Publishers whose history was delivered (`RecvEvent::CaughtUp`).
    pub caught_up: u64,
    /// When the last of them was (seconds into the run).
    pub caught_up_s: Option<f64>,
}

impl TopicVerifier {
    /// Print mode: counts a delivered message without checking it.
    pub fn count_unchecked(&mut self, topic: &[u8]) {
        self.received += 1;
        self.count_topic(topic);
    }

    /// A verifier that has seen nothing.
    pub fn new() -> Self {
        TopicVerifier::default()
    }

    /// A verifier that expects the skips `allow` says.
    pub fn allowing(allow: Allow) -> Self {
        TopicVerifier {
            allow,
            ..TopicVerifier::default()
        }
    }

    /// This verifier, requiring every stream to start at 0 (a history join).
    #[must_use]
    pub fn from_zero(mut self) -> Self {
        self.from_zero = true;
        self
    }

    /// A slow-consumer policy is in force: some skips are expected.
    pub fn allows_skips(&self) -> bool {
        self.allow != Allow::Nothing
    }

    /// Counts the slow-consumer policy's notice of `messages` dropped from `tsi` (`None`:
    /// from publishers beyond the notice bound).
    pub fn on_dropped(&mut self, tsi: Option<Tsi>, messages: u64) {
        self.policy_dropped += messages;
        *self.announced.entry(tsi).or_default() += messages;
    }

    /// How much of a skip of `skip` in `tsi`'s stream is expected; takes it from the
    /// announcements.
    fn expected_skip(&mut self, tsi: Tsi, skip: u64) -> u64 {
        match self.allow {
            Allow::Nothing => 0,
            Allow::Conflated => skip,
            Allow::Announced => {
                let mut left = skip;
                for key in [Some(tsi), None] {
                    if let Some(a) = self.announced.get_mut(&key) {
                        let take = left.min(*a);
                        *a -= take;
                        left -= take;
                    }
                }
                skip - left
            }
        }
    }

    /// Checks one delivered message.
    pub fn on_message(&mut self, m: &Message) {
        let topic: &[u8] = m.topic();
        let checked = match m.frames.as_slice() {
            [_, payload] => check_test_message(payload).ok(),
            _ => None,
        };
        self.senders.message(m.tsi, checked.is_some());
        self.received = self.senders.verified_messages;
        let Some(seq) = checked else {
            return;
        };
        let known = self.count_topic(topic);
        let streams = self.next.entry(m.tsi).or_default();
        // One lookup per message once the stream is known (this runs at millions a second).
        let next = if let Some(next) = streams.get_mut(topic) {
            next
        } else if self.streams >= MAX_STREAMS {
            self.untracked += 1;
            // Nor a map per forged publisher: `next` holds only tracked streams.
            if streams.is_empty() {
                self.next.remove(&m.tsi);
            }
            return;
        } else {
            if known && !self.first_seq.contains_key(topic) {
                self.first_seq.insert(topic.to_vec(), seq);
            }
            self.streams += 1;
            let start = if self.from_zero { 0 } else { seq };
            streams.entry(topic.to_vec()).or_insert(start)
        };
        if seq < *next {
            self.duplicates += 1;
            return;
        }
        let skip = seq - *next;
        *next = seq + 1;
        if skip > 0 {
            let expected = self.expected_skip(m.tsi, skip);
            self.policy_skipped += expected;
            self.gaps += skip - expected;
        }
        if self.allows_skips() {
            match self.last_seq.get_mut(topic) {
                Some(l) => *l = (*l).max(seq),
                None if known => {
                    self.last_seq.insert(topic.to_vec(), seq);
                }
                None => {}
            }
        }
    }

    /// `tsi`'s session is over: its per-topic sequence state goes (its counts stay), so a
    /// long run with restarting publishers keeps only the live ones' state.
    pub fn on_publisher_gone(&mut self, tsi: Tsi) {
        if let Some(gone) = self.next.remove(&tsi) {
            self.streams -= gone.len();
        }
    }

    /// Counts a publisher's `CaughtUp`, `at_s` seconds into the run.
    pub fn on_caught_up(&mut self, at_s: f64) {
        self.caught_up += 1;
        self.caught_up_s = Some(at_s);
    }

    /// Counts a loss notice of `lost` sequence numbers from `tsi`.
    pub fn on_gap(&mut self, tsi: Tsi, lost: u32) {
        self.senders.loss(tsi, lost);
    }

    /// Adds one to `topic`'s count, allocating only for a new topic; past [`MAX_TOPICS`]
    /// topics, to `other_topics`. Returns whether `topic` has a count of its own.
    fn count_topic(&mut self, topic: &[u8]) -> bool {
        if let Some(n) = self.topics.get_mut(topic) {
            *n += 1;
        } else if self.topics.len() < MAX_TOPICS {
            self.topics.insert(topic.to_vec(), 1);
        } else {
            self.other_topics += 1;
            return false;
        }
        true
    }

    /// True when nothing of a verified publisher was missing or corrupt.
    pub fn is_clean(&self) -> bool {
        let (v, _) = self.senders.verified();
        self.gaps == 0 && v.corrupt == 0 && v.unrecoverable == 0
    }

    /// The per-topic counts as a JSON object (topics as lossy UTF-8).
    pub fn topics_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (t, n) in &self.topics {
            let key = String::from_utf8_lossy(t).into_owned();
            let prev = map
                .get(&key)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            map.insert(key, (prev + n).into());
        }
        if self.other_topics > 0 {
            map.insert(OTHER_TOPICS.into(), self.other_topics.into());
        }
        serde_json::Value::Object(map)
    }
}

/// Which sequence skips a [`TopicVerifier`] expects.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Allow {
    /// None: every skip is a gap.
    #[default]
    Nothing,
    /// Drop-oldest: skips covered by announced drops of the publisher.
    Announced,
    /// Conflate: any forward skip.
    Conflated,
}

#[cfg(test)]
pub(crate) mod tests {
    use pgm::wire::Gsi;

    use super::*;
    use crate::cli::fill_test_message;

    pub(crate) fn tsi(n: u16) -> Tsi {
        Tsi::new(Gsi([1, 2, 3, 4, 5, 6]), n)
    }

    /// A `[topic][test message]` message of `size` bytes with sequence number `seq`.
    pub(crate) fn msg(tsi: Tsi, topic: &str, seq: u64, size: usize) -> Message {
        let mut b = vec![0; size];
        fill_test_message(seq, &mut b);
        Message {
            tsi,
            frames: [topic.as_bytes().to_vec().into(), b.into()].into(),
        }
    }

    #[test]
    fn per_topic_sequences_are_independent() {
        let mut v = TopicVerifier::new();
        for i in 0..10 {
            v.on_message(&msg(tsi(1), "a", i, 20));
            v.on_message(&msg(tsi(1), "b", i, 20));
        }
        assert!(v.is_clean(), "{v:?}");
        assert_eq!(v.received, 20);
        assert_eq!(v.topics[&b"a".to_vec()], 10);
        assert_eq!(v.duplicates, 0);
        // A restarted publisher (new TSI) starts again at 0.
        v.on_message(&msg(tsi(2), "a", 0, 20));
        assert!(v.is_clean());
        assert_eq!(v.senders.verified().1, 2);
    }

    #[test]
    fn gaps_duplicates_corruption() {
        let mut v = TopicVerifier::new();
        v.on_message(&msg(tsi(1), "a", 0, 20));
        v.on_message(&msg(tsi(1), "a", 3, 20));
        v.on_message(&msg(tsi(1), "a", 3, 20));
        let mut bad = msg(tsi(1), "a", 4, 20);
        bad.frames[1] = vec![0u8; 20].into();
        v.on_message(&bad);
        v.on_message(&Message {
            tsi: tsi(1),
            frames: [b"a".to_vec().into()].into_iter().collect(),
        });
        v.on_gap(tsi(1), 5);
        let (ok, _) = v.senders.verified();
        assert_eq!((v.gaps, v.duplicates, ok.corrupt), (2, 1, 2));
        assert_eq!((ok.unrecoverable, ok.loss_events), (5, 1));
        assert!(!v.is_clean());
        // A publisher that never sent one valid message is counted apart.
        v.on_message(&Message {
            tsi: tsi(7),
            frames: [b"a".to_vec().into(), vec![0u8; 20].into()].into(),
        });
        v.on_gap(tsi(7), 1 << 30);
        let (o, others) = v.senders.others();
        assert_eq!((others, o.messages, o.unrecoverable), (1, 1, 1 << 30));
        assert_eq!(v.senders.verified().0.unrecoverable, 5);
    }

    #[test]
    fn announced_drops_cover_skips_exactly() {
        let mut v = TopicVerifier::allowing(Allow::Announced);
        v.on_message(&msg(tsi(1), "a", 0, 20));
        v.on_message(&msg(tsi(1), "b", 0, 20));
        v.on_dropped(Some(tsi(1)), 3);
        // Two skipped in "a", one in "b": announced.
        v.on_message(&msg(tsi(1), "a", 3, 20));
        v.on_message(&msg(tsi(1), "b", 2, 20));
        assert!(v.is_clean(), "{v:?}");
        assert_eq!((v.policy_dropped, v.policy_skipped), (3, 3));
        // Announcements are per publisher: another one's do not cover tsi 1's skip.
        v.on_dropped(Some(tsi(2)), 5);
        v.on_message(&msg(tsi(1), "a", 5, 20));
        assert_eq!(v.gaps, 1);
        assert_eq!(v.last_seq[&b"a".to_vec()], 5);
        // The notice of publishers beyond the bound covers anyone's.
        v.on_dropped(None, 1);
        v.on_message(&msg(tsi(1), "b", 4, 20));
        assert_eq!((v.gaps, v.policy_skipped), (1, 4));
    }

    #[test]
    fn conflation_allows_forward_skips_only() {
        let mut v = TopicVerifier::allowing(Allow::Conflated);
        v.on_message(&msg(tsi(1), "a", 0, 20));
        v.on_message(&msg(tsi(1), "a", 9, 20));
        assert!(v.is_clean(), "{v:?}");
        assert_eq!(v.policy_skipped, 8);
        v.on_message(&msg(tsi(1), "a", 4, 20));
        assert_eq!(v.duplicates, 1);
        assert_eq!(v.last_seq[&b"a".to_vec()], 9);
    }

    #[test]
    fn a_history_join_must_start_every_stream_at_zero() {
        let mut v = TopicVerifier::new().from_zero();
        v.on_message(&msg(tsi(1), "a", 0, 20));
        v.on_message(&msg(tsi(1), "a", 1, 20));
        v.on_message(&msg(tsi(1), "b", 3, 20));
        assert_eq!(v.gaps, 3);
        assert_eq!(v.first_seq[&b"b".to_vec()], 3);
        // A live join starts anywhere.
        let mut v = TopicVerifier::new();
        v.on_message(&msg(tsi(1), "b", 3, 20));
        v.on_message(&msg(tsi(1), "b", 4, 20));
        assert!(v.is_clean());
    }

    #[test]
    fn forged_streams_and_topics_are_bounded() {
        let mut v = TopicVerifier::allowing(Allow::Conflated);
        // One topic per message from many forged publishers: past the bounds, counted only.
        let n = MAX_STREAMS.max(MAX_TOPICS) + 1000;
        for k in 0..n {
            v.on_message(&msg(tsi((k % 60_000) as u16), &format!("t{k}"), 5, 20));
        }
        assert_eq!(v.received, n as u64);
        assert_eq!(v.topics.len(), MAX_TOPICS);
        assert_eq!(v.other_topics, (n - MAX_TOPICS) as u64);
        assert_eq!(v.streams, MAX_STREAMS);
        assert_eq!(v.untracked, (n - MAX_STREAMS) as u64);
        assert!(v.last_seq.len() <= MAX_TOPICS && v.first_seq.len() <= MAX_TOPICS);
        assert_eq!(v.topics_json()[OTHER_TOPICS], (n - MAX_TOPICS) as u64);
        // Publishers first heard past the bound leave no state either.
        v.on_message(&msg(tsi(60_001), "late", 0, 20));
        assert!(!v.next.contains_key(&tsi(60_001)));
        assert_eq!(v.untracked, (n - MAX_STREAMS + 1) as u64);
        // A tracked stream is still checked; a gone publisher frees its streams for new ones.
        v.on_message(&msg(tsi(0), "t0", 4, 20));
        assert_eq!(v.duplicates, 1);
        v.on_publisher_gone(tsi(0));
        assert!(v.streams < MAX_STREAMS);
        v.on_message(&msg(tsi(0), "new", 0, 20));
        assert_eq!(v.untracked, (n - MAX_STREAMS + 1) as u64);
        assert!(v.is_clean(), "{:?}", (v.gaps, v.duplicates));
    }

    #[test]
    fn a_gone_publisher_leaves_its_counts_and_frees_its_streams() {
        let mut v = TopicVerifier::new();
        for k in 0..50 {
            v.on_message(&msg(tsi(1), &format!("t{k}"), 0, 20));
        }
        assert_eq!(v.next[&tsi(1)].len(), 50);
        v.on_publisher_gone(tsi(1));
        assert!(v.next.is_empty());
        assert_eq!((v.received, v.topics.len()), (50, 50));
        assert!(v.senders.is_verified(tsi(1)));
        // Heard again (the same TSI after its expiry): a new stream, not a gap.
        v.on_message(&msg(tsi(1), "t3", 7, 20));
        assert!(v.is_clean(), "{v:?}");
    }
}
