//! `pgm-sub --verify`: the check of `pgm-pub`'s per-topic test message sequences.

use std::collections::{BTreeMap, HashMap};

use pgm::wire::Tsi;
use pubsub::Message;

use crate::cli::{check_test_message, Senders};

/// Checks `[topic][test message]` messages: per publisher (TSI) and topic, the sequence must
/// go up by one; every payload must pass its CRC.
///
/// A (TSI, topic) stream first heard mid-way starts wherever it is heard (late join is not a
/// gap); a restarted publisher has a new TSI and starts over at 0. Publishers none of whose
/// messages passed the check (forged sessions, garbage) are counted apart ([`Senders`]) and do
/// not fail verification.
#[derive(Debug, Default, Clone)]
pub struct TopicVerifier {
    /// The next expected sequence number per publisher and topic.
    next: HashMap<Tsi, HashMap<Vec<u8>, u64>>,
    /// Per-publisher counts: verified publishers and the others.
    pub senders: Senders,
    /// Messages delivered per topic (valid messages when verifying, all when printing).
    pub topics: BTreeMap<Vec<u8>, u64>,
    /// Messages delivered: of verified publishers when verifying (what `--count` counts), all
    /// of them when printing.
    pub received: u64,
    /// Test sequence numbers skipped.
    pub gaps: u64,
    /// Messages at or below a number already seen in their stream.
    pub duplicates: u64,
}

impl TopicVerifier {
    /// Print mode: counts a delivered message without checking it.
    pub fn count_unchecked(&mut self, topic: &[u8]) {
        self.received += 1;
        count_topic(&mut self.topics, topic);
    }

    /// A verifier that has seen nothing.
    pub fn new() -> Self {
        TopicVerifier::default()
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
        count_topic(&mut self.topics, topic);
        let streams = self.next.entry(m.tsi).or_default();
        let next = match streams.get_mut(topic) {
            Some(n) => n,
            None => streams.entry(topic.to_vec()).or_insert(seq),
        };
        if seq < *next {
            self.duplicates += 1;
            return;
        }
        self.gaps += seq - *next;
        *next = seq + 1;
    }

    /// `tsi`'s session is over: its per-topic sequence state goes (its counts stay), so a
    /// long run with restarting publishers keeps only the live ones' state.
    pub fn on_publisher_gone(&mut self, tsi: Tsi) {
        self.next.remove(&tsi);
    }

    /// Counts a loss notice of `lost` sequence numbers from `tsi`.
    pub fn on_gap(&mut self, tsi: Tsi, lost: u32) {
        self.senders.loss(tsi, lost);
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
        serde_json::Value::Object(map)
    }
}

/// Adds one to `topic`'s count, allocating only for a new topic.
fn count_topic(topics: &mut BTreeMap<Vec<u8>, u64>, topic: &[u8]) {
    match topics.get_mut(topic) {
        Some(n) => *n += 1,
        None => {
            topics.insert(topic.to_vec(), 1);
        }
    }
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
            frames: vec![topic.as_bytes().to_vec().into(), b.into()],
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
            frames: vec![b"a".to_vec().into()],
        });
        v.on_gap(tsi(1), 5);
        let (ok, _) = v.senders.verified();
        assert_eq!((v.gaps, v.duplicates, ok.corrupt), (2, 1, 2));
        assert_eq!((ok.unrecoverable, ok.loss_events), (5, 1));
        assert!(!v.is_clean());
        // A publisher that never sent one valid message is counted apart.
        v.on_message(&Message {
            tsi: tsi(7),
            frames: vec![b"a".to_vec().into(), vec![0u8; 20].into()],
        });
        v.on_gap(tsi(7), 1 << 30);
        let (o, others) = v.senders.others();
        assert_eq!((others, o.messages, o.unrecoverable), (1, 1, 1 << 30));
        assert_eq!(v.senders.verified().0.unrecoverable, 5);
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
