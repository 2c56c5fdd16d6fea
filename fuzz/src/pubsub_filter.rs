//! The checks behind the `pubsub_filter` fuzz target, shared with the corpus replay test
//! (`pubsub/tests/fuzz_corpus.rs`, which includes this file by path).
//!
//! The input is a program of subscribes, unsubscribes and topic matches run against a
//! [`Filter`] and a model (a list of prefixes with reference counts, matched by a linear scan).
//! Prefixes come from a four-letter alphabet (so they share paths in the trie) or are raw bytes.
//! After every step the filter must agree with the model: the return values of `subscribe` and
//! `unsubscribe`, `len`, `is_empty`, `max_prefix_len`, `subscriptions` (order and counts), and
//! `matches` on the fuzz topic and on topics around every subscribed prefix (the prefix, one
//! byte more, one byte less); the leading `decision_len` bytes of a topic must decide it
//! exactly as the whole topic does.

use pubsub::Filter;

use crate::input::Input;

/// Most steps interpreted.
const MAX_STEPS: usize = 2000;

/// A list of prefixes with reference counts.
#[derive(Default)]
struct Model {
    subs: Vec<(Vec<u8>, usize)>,
}

impl Model {
    fn find(&self, p: &[u8]) -> Option<usize> {
        self.subs.iter().position(|(q, _)| q == p)
    }

    fn subscribe(&mut self, p: &[u8]) -> bool {
        if let Some(i) = self.find(p) {
            self.subs[i].1 += 1;
            return false;
        }
        self.subs.push((p.to_vec(), 1));
        true
    }

    fn unsubscribe(&mut self, p: &[u8]) -> bool {
        let Some(i) = self.find(p) else {
            return false;
        };
        self.subs[i].1 -= 1;
        if self.subs[i].1 == 0 {
            self.subs.swap_remove(i);
        }
        true
    }

    fn matches(&self, topic: &[u8]) -> bool {
        self.subs.iter().any(|(p, _)| topic.starts_with(p))
    }
}

/// A prefix or topic: mostly over a tiny alphabet, sometimes raw bytes.
fn bytes(inp: &mut Input<'_>) -> Vec<u8> {
    let b = inp.u8();
    if b & 0xc0 == 0xc0 {
        inp.blob(40).to_vec()
    } else {
        (0..b % 6)
            .map(|_| inp.pick(&[b'a', b'b', 0, 255]))
            .collect()
    }
}

/// Runs the program `data`; panics (a fuzz finding) when the filter and the model disagree.
pub(crate) fn check(data: &[u8]) {
    let mut inp = Input::new(data);
    let mut f = Filter::new();
    let mut m = Model::default();
    agree(&f, &m, &[]);
    let mut steps = 0;
    while !inp.is_empty() && steps < MAX_STEPS {
        steps += 1;
        let topic = match inp.u8() % 8 {
            0..=2 => {
                let p = bytes(&mut inp);
                assert_eq!(f.subscribe(&p), m.subscribe(&p), "subscribe {p:?}");
                p
            }
            3 | 4 => {
                // A prefix subscribed now (by index), or any.
                let p = match m.subs.len() {
                    n if n > 0 && inp.bool() => m.subs[usize::from(inp.u8()) % n].0.clone(),
                    _ => bytes(&mut inp),
                };
                assert_eq!(f.unsubscribe(&p), m.unsubscribe(&p), "unsubscribe {p:?}");
                p
            }
            5 => {
                // A copy must behave the same from here on.
                f = f.clone();
                Vec::new()
            }
            _ => bytes(&mut inp),
        };
        agree(&f, &m, &topic);
    }
}

fn agree(f: &Filter, m: &Model, topic: &[u8]) {
    assert_eq!(f.len(), m.subs.len(), "len");
    assert_eq!(f.is_empty(), m.subs.is_empty(), "is_empty");
    let longest = m.subs.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
    assert_eq!(f.max_prefix_len(), longest, "max_prefix_len");
    let mut want: Vec<(&[u8], usize)> = m.subs.iter().map(|(p, n)| (&p[..], *n)).collect();
    want.sort_unstable();
    let got: Vec<(&[u8], usize)> = f.subscriptions().collect();
    assert_eq!(got, want, "subscriptions");
    probe(f, m, topic);
    for (p, _) in m.subs.iter().take(16) {
        probe(f, m, p);
        probe(f, m, &p[..p.len().saturating_sub(1)]);
        for b in [0, b'a', b'b', 255] {
            let mut t = p.clone();
            t.push(b);
            probe(f, m, &t);
        }
    }
}

fn probe(f: &Filter, m: &Model, topic: &[u8]) {
    let want = m.matches(topic);
    assert_eq!(f.matches(topic), want, "matches({topic:?})");
    let k = f.decision_len(topic.len() as u64);
    assert!(k <= topic.len(), "decision_len {k} > topic {}", topic.len());
    assert!(
        k <= f.max_prefix_len(),
        "decision_len past the longest prefix"
    );
    assert_eq!(
        f.matches(&topic[..k]),
        want,
        "decided on {k} bytes of {topic:?}"
    );
    if m.subs.is_empty() || m.find(&[]).is_some() {
        assert_eq!(k, 0, "the answer does not depend on the topic");
    } else {
        // A frame announced longer than any host holds decides on the longest prefix.
        assert_eq!(f.decision_len(u64::MAX), f.max_prefix_len());
    }
}
