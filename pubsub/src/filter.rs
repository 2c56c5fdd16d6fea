//! Topic filtering: a reference-counted set of byte prefixes matched against a message's first
//! frame, as a ZeroMQ SUB does (`xsub.cpp:match`, docs/wire-compatibility.md §12).
//!
//! Subscriptions are local: nothing here ever reaches the wire (docs/wire-compatibility.md §12).
//!
//! - The empty prefix matches every message. No subscription at all matches nothing.
//! - Subscribing the same prefix twice needs two unsubscribes to remove it (ZMQ's trie counts).
//! - Matching walks a byte trie, so it costs at most one node step per topic byte up to the
//!   longest prefix, whatever the number of subscriptions. A node's children sit in a sorted byte
//!   array (binary search), the root's in a 256-entry table.
//!
//! Only the first `min(longest prefix, frame length)` bytes of a topic can change the answer
//! ([`Filter::decision_len`]), which lets the decoder reject a message before the rest of its
//! first frame has even arrived.

use std::collections::BTreeMap;

/// Index of a trie node; `NONE` marks an absent child in the root table.
type NodeId = u32;
const NONE: NodeId = NodeId::MAX;

#[derive(Debug, Clone, Default)]
struct Node {
    /// A subscribed prefix ends here.
    terminal: bool,
    /// Child edge bytes, sorted; `kids[i]` is the child for `keys[i]`.
    keys: Vec<u8>,
    kids: Vec<NodeId>,
}

/// A set of subscribed topic prefixes; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Filter {
    /// Every subscribed prefix with its reference count (always ≥ 1). The source of truth; the
    /// trie is rebuilt from it when a prefix goes away.
    subs: BTreeMap<Vec<u8>, usize>,
    /// `nodes[0]` is the root, whose children are also indexed by `root` for a one-load first
    /// step. Nodes hold no dead branches: removals rebuild.
    nodes: Vec<Node>,
    root: Box<[NodeId; 256]>,
    /// Length of the longest subscribed prefix.
    max_len: usize,
}

impl Default for Filter {
    fn default() -> Self {
        Filter::new()
    }
}

impl Filter {
    /// A filter with no subscriptions: it matches nothing.
    pub fn new() -> Self {
        Filter {
            subs: BTreeMap::new(),
            nodes: vec![Node::default()],
            root: Box::new([NONE; 256]),
            max_len: 0,
        }
    }

    /// Adds one reference to `prefix`. True when the prefix was not subscribed before.
    pub fn subscribe(&mut self, prefix: impl AsRef<[u8]>) -> bool {
        let prefix = prefix.as_ref();
        if let Some(n) = self.subs.get_mut(prefix) {
            *n += 1;
            return false;
        }
        self.subs.insert(prefix.to_vec(), 1);
        self.insert(prefix);
        self.max_len = self.max_len.max(prefix.len());
        true
    }

    /// Drops one reference to `prefix`. True when a subscription was dropped; false when
    /// `prefix` was not subscribed (a no-op, as in ZMQ).
    pub fn unsubscribe(&mut self, prefix: impl AsRef<[u8]>) -> bool {
        let prefix = prefix.as_ref();
        let Some(n) = self.subs.get_mut(prefix) else {
            return false;
        };
        *n -= 1;
        if *n == 0 {
            self.subs.remove(prefix);
            self.rebuild();
        }
        true
    }

    /// True when some subscribed prefix is a prefix of `topic`.
    pub fn matches(&self, topic: &[u8]) -> bool {
        if self.nodes[0].terminal {
            return true;
        }
        let mut bytes = topic.iter();
        let Some(&b0) = bytes.next() else {
            return false;
        };
        let mut id = self.root[usize::from(b0)];
        if id == NONE {
            return false;
        }
        loop {
            let node = &self.nodes[id as usize];
            if node.terminal {
                return true;
            }
            let Some(b) = bytes.next() else {
                return false;
            };
            match node.keys.binary_search(b) {
                Ok(i) => id = node.kids[i],
                Err(_) => return false,
            }
        }
    }

    /// How many leading bytes of a first frame of `frame_len` bytes decide [`Filter::matches`]:
    /// 0 when the answer does not depend on the topic (nothing, or everything, subscribed).
    pub fn decision_len(&self, frame_len: u64) -> usize {
        if self.nodes[0].terminal || self.subs.is_empty() {
            return 0;
        }
        usize::try_from(frame_len).map_or(self.max_len, |l| l.min(self.max_len))
    }

    /// Length of the longest subscribed prefix.
    pub fn max_prefix_len(&self) -> usize {
        self.max_len
    }

    /// Distinct subscribed prefixes.
    pub fn len(&self) -> usize {
        self.subs.len()
    }

    /// True when nothing is subscribed (every message is filtered out).
    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// Every subscribed prefix with its reference count, in byte order.
    pub fn subscriptions(&self) -> impl Iterator<Item = (&[u8], usize)> {
        self.subs.iter().map(|(k, &n)| (k.as_slice(), n))
    }

    fn insert(&mut self, prefix: &[u8]) {
        let mut id: NodeId = 0;
        for (depth, &b) in prefix.iter().enumerate() {
            let next = if depth == 0 {
                self.root[usize::from(b)]
            } else {
                let node = &self.nodes[id as usize];
                node.keys.binary_search(&b).map_or(NONE, |i| node.kids[i])
            };
            id = if next == NONE {
                let new = NodeId::try_from(self.nodes.len()).unwrap_or(NONE - 1);
                self.nodes.push(Node::default());
                let parent = &mut self.nodes[id as usize];
                let at = parent.keys.binary_search(&b).unwrap_or_else(|i| i);
                parent.keys.insert(at, b);
                parent.kids.insert(at, new);
                if depth == 0 {
                    self.root[usize::from(b)] = new;
                }
                new
            } else {
                next
            };
        }
        self.nodes[id as usize].terminal = true;
    }

    fn rebuild(&mut self) {
        self.nodes.clear();
        self.nodes.push(Node::default());
        *self.root = [NONE; 256];
        self.max_len = 0;
        let keys: Vec<Vec<u8>> = self.subs.keys().cloned().collect();
        for k in &keys {
            self.insert(k);
            self.max_len = self.max_len.max(k.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn naive(subs: &BTreeMap<Vec<u8>, usize>, topic: &[u8]) -> bool {
        subs.keys().any(|p| topic.starts_with(p))
    }

    #[test]
    fn nothing_subscribed_matches_nothing() {
        let f = Filter::new();
        assert!(!f.matches(b""));
        assert!(!f.matches(b"abc"));
        assert!(f.is_empty());
        assert_eq!(f.decision_len(100), 0);
    }

    #[test]
    fn empty_prefix_matches_everything() {
        let mut f = Filter::new();
        f.subscribe(b"");
        assert!(f.matches(b""));
        assert!(f.matches(b"\x00anything"));
        assert_eq!(f.decision_len(100), 0);
    }

    #[test]
    fn byte_wise_prefix() {
        let mut f = Filter::new();
        f.subscribe(b"md.AAPL");
        f.subscribe(b"md.MS");
        assert!(f.matches(b"md.AAPL"));
        assert!(f.matches(b"md.AAPL.trade"));
        assert!(f.matches(b"md.MSFT"));
        assert!(!f.matches(b"md.AAP"));
        assert!(!f.matches(b"md.M"));
        assert!(!f.matches(b"MD.AAPL"));
        assert!(!f.matches(b""));
        assert_eq!(f.max_prefix_len(), 7);
        assert_eq!(f.decision_len(3), 3);
        assert_eq!(f.decision_len(100), 7);
        assert_eq!(f.decision_len(u64::MAX), 7);
    }

    #[test]
    fn binary_prefixes() {
        let mut f = Filter::new();
        f.subscribe([0u8, 255]);
        f.subscribe([255u8]);
        assert!(f.matches(&[0, 255, 1]));
        assert!(f.matches(&[255]));
        assert!(!f.matches(&[0, 254]));
    }

    #[test]
    fn reference_counts() {
        let mut f = Filter::new();
        assert!(f.subscribe(b"a"));
        assert!(!f.subscribe(b"a"));
        assert!(f.subscribe(b"abc"));
        assert!(f.unsubscribe(b"a"));
        assert!(f.matches(b"ax"), "one reference left");
        assert!(f.unsubscribe(b"a"));
        assert!(!f.matches(b"ax"));
        assert!(f.matches(b"abcd"));
        assert!(!f.unsubscribe(b"a"), "unknown prefix is a no-op");
        assert!(!f.unsubscribe(b"ab"));
        assert_eq!(f.subscriptions().collect::<Vec<_>>(), [(&b"abc"[..], 1)]);
        assert!(f.unsubscribe(b"abc"));
        assert!(f.is_empty());
        assert_eq!(f.max_prefix_len(), 0);
        assert!(!f.matches(b"abcd"));
    }

    #[test]
    fn many_prefixes_sharing_a_first_byte() {
        let mut f = Filter::new();
        for i in 0..1000 {
            f.subscribe(format!("md.{i:04}"));
        }
        assert_eq!(f.len(), 1000);
        assert!(f.matches(b"md.0999.bid"));
        assert!(f.matches(b"md.0000"));
        assert!(!f.matches(b"md.1000"));
        assert!(!f.matches(b"md.099"));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Sub(Vec<u8>),
        Unsub(Vec<u8>),
    }

    fn small_bytes() -> impl Strategy<Value = Vec<u8>> {
        // A tiny alphabet so prefixes overlap and topics hit them often.
        proptest::collection::vec(
            prop_oneof![Just(b'a'), Just(b'b'), Just(0u8), Just(255u8)],
            0..5,
        )
    }

    proptest! {
        #[test]
        fn trie_agrees_with_linear_scan(
            ops in proptest::collection::vec(
                prop_oneof![small_bytes().prop_map(Op::Sub), small_bytes().prop_map(Op::Unsub)],
                0..40),
            topics in proptest::collection::vec(small_bytes(), 1..20),
        ) {
            let mut f = Filter::new();
            let mut model: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Sub(p) => {
                        let new = !model.contains_key(&p);
                        *model.entry(p.clone()).or_default() += 1;
                        prop_assert_eq!(f.subscribe(&p), new);
                    }
                    Op::Unsub(p) => {
                        let known = model.contains_key(&p);
                        if let Some(n) = model.get_mut(&p) {
                            *n -= 1;
                            if *n == 0 {
                                model.remove(&p);
                            }
                        }
                        prop_assert_eq!(f.unsubscribe(&p), known);
                    }
                }
                for t in &topics {
                    prop_assert_eq!(f.matches(t), naive(&model, t));
                    // Deciding on the leading decision_len bytes gives the same answer.
                    let k = f.decision_len(t.len() as u64);
                    prop_assert_eq!(f.matches(&t[..k]), naive(&model, t));
                }
            }
            prop_assert_eq!(f.len(), model.len());
        }
    }
}
