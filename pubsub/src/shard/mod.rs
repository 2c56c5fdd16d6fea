//! Topic → group sharding (docs/sharding.md): a publisher spreads its topics over several
//! multicast groups, one PGM session per group, so that a switch with IGMP snooping forwards
//! to a subscriber's port only the groups its subscriptions can match.
//!
//! This module is the pure part: [`Shard`] (`PREFIX=GROUP`), and [`ShardMap`], which checks a
//! set of shards against the endpoint's group, routes a topic to its group (longest prefix
//! wins; no match → the endpoint's group) and says which groups a subscription can need
//! ([`ShardMap::groups_for`]). [`announce`] encodes and checks the map a publisher may announce
//! on the endpoint's group. [`ShardedPublisher`] and [`ShardedSubscriber`] are the thin
//! wrappers that open one [`crate::Publisher`] / [`crate::Subscriber`] per group.

pub mod announce;
mod publisher;
mod subscriber;

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    net::IpAddr,
    str::FromStr,
};

pub use publisher::{PublisherShardStats, ShardedPublisher};
pub use subscriber::{DiscoverError, ShardedSubscriber, SubscriberShardStats};

/// Most groups a map may name, the endpoint's included: one session (sockets and an IO
/// thread) each, and at most this many readiness descriptors a subscriber waits on
/// (`pgm::sys::event::MAX_POLL_FDS`).
pub const MAX_GROUPS: usize = pgm::sys::event::MAX_POLL_FDS;

/// Longest shard prefix, in bytes (a topic is a short name, not a payload).
pub const MAX_PREFIX_LEN: usize = 255;

/// One `PREFIX=GROUP`: topics starting with `prefix` go to `group` (unless a longer prefix
/// also matches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// The topic prefix (bytes, matched like a subscription).
    pub prefix: Vec<u8>,
    /// The multicast group of its session.
    pub group: IpAddr,
}

impl Shard {
    /// `prefix` → `group`.
    pub fn new(prefix: impl Into<Vec<u8>>, group: IpAddr) -> Self {
        Shard {
            prefix: prefix.into(),
            group,
        }
    }

    /// Parses `PREFIX=GROUP` (split at the last `=`, so a prefix may hold one; an IPv6 group
    /// may be in brackets). Only the syntax is checked here; [`ShardMap::new`] checks the
    /// group against the endpoint.
    pub fn parse(s: &str) -> Result<Self, ShardError> {
        let Some((prefix, group)) = s.rsplit_once('=') else {
            return Err(ShardError::Syntax(s.to_owned()));
        };
        let bare = group
            .strip_prefix('[')
            .and_then(|g| g.strip_suffix(']'))
            .unwrap_or(group);
        let group = bare
            .parse()
            .map_err(|_| ShardError::BadGroup(s.to_owned()))?;
        Ok(Shard::new(prefix.as_bytes(), group))
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Shard::parse(s)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = String::from_utf8_lossy(&self.prefix);
        match self.group {
            IpAddr::V4(g) => write!(f, "{p}={g}"),
            IpAddr::V6(g) => write!(f, "{p}=[{g}]"),
        }
    }
}

/// Why a shard or a map of them is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShardError {
    /// No `=` in the text.
    #[error("bad shard {0:?}: expected PREFIX=GROUP, like md.A=239.192.1.2")]
    Syntax(String),
    /// The text after the last `=` is not an IP address.
    #[error("bad shard {0:?}: GROUP is not an IP address")]
    BadGroup(String),
    /// An empty prefix would take every topic from the endpoint's group.
    #[error(
        "bad shard {0}: empty prefix (topics no prefix matches already go to the endpoint's group)"
    )]
    EmptyPrefix(Shard),
    /// A prefix over [`MAX_PREFIX_LEN`] bytes.
    #[error("bad shard {0}: prefix longer than {MAX_PREFIX_LEN} bytes")]
    LongPrefix(Shard),
    /// The group is not a multicast address.
    #[error("bad shard {0}: {g} is not a multicast group", g = .0.group)]
    NotMulticast(Shard),
    /// The group's family differs from the endpoint's group.
    #[error("bad shard {shard}: the endpoint's group {endpoint} is of the other IP family")]
    Family {
        /// The shard.
        shard: Shard,
        /// The endpoint's group.
        endpoint: IpAddr,
    },
    /// The same prefix twice (whatever the groups).
    #[error("bad shard {0}: prefix given twice")]
    Duplicate(Shard),
    /// More than [`MAX_GROUPS`] groups.
    #[error("too many shard groups: {0} with the endpoint's (at most {MAX_GROUPS})")]
    TooManyGroups(usize),
}

/// Shards checked against the endpoint's group: group 0 is the endpoint's, the others follow
/// in order of first mention (several prefixes may share one group; a shard may name the
/// endpoint's group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardMap {
    groups: Vec<IpAddr>,
    /// Every shard prefix → its group's index, in byte order (so the prefixes that extend a
    /// given one are a contiguous range).
    prefixes: BTreeMap<Vec<u8>, usize>,
    /// The distinct prefix lengths, longest first: routing tries only these.
    lens: Vec<usize>,
}

impl ShardMap {
    /// Checks `shards` against the endpoint's `group`: non-empty prefixes of at most
    /// [`MAX_PREFIX_LEN`] bytes, each given once; multicast groups of the endpoint's family;
    /// at most [`MAX_GROUPS`] groups.
    pub fn new(group: IpAddr, shards: &[Shard]) -> Result<Self, ShardError> {
        let mut map = ShardMap {
            groups: vec![group],
            prefixes: BTreeMap::new(),
            lens: Vec::new(),
        };
        for s in shards {
            if s.prefix.is_empty() {
                return Err(ShardError::EmptyPrefix(s.clone()));
            }
            if s.prefix.len() > MAX_PREFIX_LEN {
                return Err(ShardError::LongPrefix(s.clone()));
            }
            if !s.group.is_multicast() {
                return Err(ShardError::NotMulticast(s.clone()));
            }
            if s.group.is_ipv4() != group.is_ipv4() {
                return Err(ShardError::Family {
                    shard: s.clone(),
                    endpoint: group,
                });
            }
            let g = if let Some(g) = map.groups.iter().position(|&g| g == s.group) {
                g
            } else {
                map.groups.push(s.group);
                map.groups.len() - 1
            };
            if map.groups.len() > MAX_GROUPS {
                return Err(ShardError::TooManyGroups(map.groups.len()));
            }
            if map.prefixes.insert(s.prefix.clone(), g).is_some() {
                return Err(ShardError::Duplicate(s.clone()));
            }
        }
        map.lens = map.prefixes.keys().map(Vec::len).collect();
        map.lens.sort_unstable_by(|a, b| b.cmp(a));
        map.lens.dedup();
        Ok(map)
    }

    /// The groups, the endpoint's first; a group's index is its session's.
    pub fn groups(&self) -> &[IpAddr] {
        &self.groups
    }

    /// The shard prefixes of group `g`, in byte order.
    pub fn prefixes_of(&self, g: usize) -> impl Iterator<Item = &[u8]> {
        self.prefixes
            .iter()
            .filter(move |&(_, &i)| i == g)
            .map(|(p, _)| p.as_slice())
    }

    /// Every shard, by group (in [`ShardMap::groups`] order), then prefix: listed in this
    /// order, they make the same map again.
    pub fn shards(&self) -> Vec<Shard> {
        let mut v: Vec<(usize, &Vec<u8>)> = self.prefixes.iter().map(|(p, &g)| (g, p)).collect();
        v.sort();
        v.into_iter()
            .map(|(g, p)| Shard::new(p.clone(), self.groups[g]))
            .collect()
    }

    /// True when there are no shards: one group, one session.
    pub fn is_single(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// The group (index) of `topic`: that of the longest shard prefix it starts with, else
    /// the endpoint's (0).
    pub fn route(&self, topic: &[u8]) -> usize {
        self.lens
            .iter()
            .filter(|&&l| l <= topic.len())
            .find_map(|&l| self.prefixes.get(&topic[..l]).copied())
            .unwrap_or(0)
    }

    /// The groups that topics starting with subscription prefix `prefix` can be routed to:
    /// exactly those a subscriber of `prefix` must join.
    ///
    /// A topic `t` that starts with `prefix` either starts with some shard prefix longer than
    /// `prefix` (then the longest such one routes it), or it does not, and then its route is
    /// that of `prefix` itself (the longest shard prefix of `prefix`, or the endpoint's
    /// group). Both kinds occur: `t` = that shard prefix, and `t` = `prefix` (a topic may
    /// be any byte string). So the answer is `route(prefix)` plus the groups of every shard
    /// prefix that strictly extends `prefix`: in particular the route of `prefix` is always
    /// needed, however densely longer shards cover the space after it.
    pub fn groups_for(&self, prefix: &[u8]) -> BTreeSet<usize> {
        let mut out = BTreeSet::from([self.route(prefix)]);
        out.extend(
            self.prefixes
                .range::<[u8], _>((
                    std::ops::Bound::Excluded(prefix),
                    std::ops::Bound::Unbounded,
                ))
                .take_while(|(p, _)| p.starts_with(prefix))
                .map(|(_, &g)| g),
        );
        out
    }

    /// The groups a set of subscription prefixes needs: the union of [`ShardMap::groups_for`].
    pub fn groups_for_all<'a>(
        &self,
        prefixes: impl IntoIterator<Item = &'a [u8]>,
    ) -> BTreeSet<usize> {
        let mut out = BTreeSet::new();
        for p in prefixes {
            out.extend(self.groups_for(p));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;

    fn g(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(239, 192, 1, last))
    }

    fn map(shards: &[(&str, u8)]) -> ShardMap {
        let s: Vec<Shard> = shards.iter().map(|&(p, n)| Shard::new(p, g(n))).collect();
        ShardMap::new(g(1), &s).unwrap()
    }

    #[test]
    fn parse_and_display() {
        let s = Shard::parse("md.A=239.192.1.2").unwrap();
        assert_eq!(s, Shard::new("md.A", g(2)));
        assert_eq!(s.to_string(), "md.A=239.192.1.2");
        // The last '=' splits: a prefix may hold one.
        assert_eq!(Shard::parse("a=b=239.192.1.2").unwrap().prefix, b"a=b");
        let v6 = Shard::parse("x=[ff18::7067:2]").unwrap();
        assert_eq!(v6.group, "ff18::7067:2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(v6.to_string(), "x=[ff18::7067:2]");
        assert!(Shard::parse("x=ff18::1").is_ok());
        assert!(matches!(Shard::parse("md.A"), Err(ShardError::Syntax(_))));
        assert!(matches!(
            Shard::parse("md.A=eth0"),
            Err(ShardError::BadGroup(_))
        ));
        let e = Shard::parse("md.A").unwrap_err().to_string();
        assert!(e.contains("expected PREFIX=GROUP"), "{e}");
    }

    #[test]
    fn bad_maps_are_refused_clearly() {
        let bad = |s: &[Shard]| ShardMap::new(g(1), s).unwrap_err();
        assert!(matches!(
            bad(&[Shard::new("", g(2))]),
            ShardError::EmptyPrefix(_)
        ));
        assert!(matches!(
            bad(&[Shard::new("a", "10.0.0.1".parse().unwrap())]),
            ShardError::NotMulticast(_)
        ));
        let e = bad(&[Shard::new("a", "ff18::1".parse().unwrap())]);
        assert!(matches!(e, ShardError::Family { .. }));
        assert!(e.to_string().contains("other IP family"), "{e}");
        let e = bad(&[Shard::new("a", g(2)), Shard::new("a", g(3))]);
        assert_eq!(e.to_string(), "bad shard a=239.192.1.3: prefix given twice");
        assert!(matches!(
            bad(&[Shard::new(vec![b'x'; 256], g(2))]),
            ShardError::LongPrefix(_)
        ));
        let many: Vec<Shard> = (0..MAX_GROUPS as u8)
            .map(|i| Shard::new([i], g(10 + i)))
            .collect();
        assert!(matches!(bad(&many), ShardError::TooManyGroups(n) if n == MAX_GROUPS + 1));
        assert!(ShardMap::new(g(1), &many[1..]).is_ok());
    }

    #[test]
    fn groups_are_numbered_in_order_and_shared() {
        let m = map(&[("b", 3), ("a", 2), ("c", 3), ("d", 1)]);
        assert_eq!(ShardMap::new(g(1), &m.shards()).unwrap(), m);
        assert_eq!(m.groups(), [g(1), g(3), g(2)]);
        assert_eq!(m.prefixes_of(1).collect::<Vec<_>>(), [b"b", b"c"]);
        assert_eq!(m.prefixes_of(0).collect::<Vec<_>>(), [b"d"]);
        assert!(!m.is_single());
        assert!(ShardMap::new(g(1), &[]).unwrap().is_single());
    }

    #[test]
    fn longest_prefix_wins() {
        let m = map(&[("md.", 2), ("md.A", 3), ("md.AAPL", 4)]);
        assert_eq!(m.route(b"md.AAPL.trade"), 3);
        assert_eq!(m.route(b"md.AAPL"), 3);
        assert_eq!(m.route(b"md.AAP"), 2);
        assert_eq!(m.route(b"md.B"), 1);
        assert_eq!(m.route(b"md."), 1);
        assert_eq!(m.route(b"md"), 0);
        assert_eq!(m.route(b""), 0);
        assert_eq!(m.route(b"news"), 0);
    }

    #[test]
    fn groups_a_subscription_needs() {
        let m = map(&[("s0", 2), ("s1", 3), ("s1.x", 4)]);
        let set = |v: &[usize]| v.iter().copied().collect::<BTreeSet<_>>();
        // One shard's prefix (or longer): that shard's group alone.
        assert_eq!(m.groups_for(b"s0"), set(&[1]));
        assert_eq!(m.groups_for(b"s0.abc"), set(&[1]));
        // A shorter prefix: every shard under it, and the endpoint's group for "s" itself,
        // "s2", …
        assert_eq!(m.groups_for(b"s"), set(&[0, 1, 2, 3]));
        assert_eq!(m.groups_for(b""), set(&[0, 1, 2, 3]));
        // "s1" takes "s1" itself and "s1.y" (group of s1) and "s1.x…" (group of s1.x).
        assert_eq!(m.groups_for(b"s1"), set(&[2, 3]));
        assert_eq!(m.groups_for(b"s1.x"), set(&[3]));
        assert_eq!(m.groups_for(b"t"), set(&[0]));
        assert_eq!(m.groups_for_all([&b"s0"[..], b"s1.x"]), set(&[1, 3]));
        assert!(m.groups_for_all([]).is_empty());
    }

    /// Every topic over `alphabet` of at most `len` bytes that starts with `prefix`.
    fn topics_under(prefix: &[u8], alphabet: &[u8], len: usize) -> Vec<Vec<u8>> {
        let mut out = vec![prefix.to_vec()];
        let mut frontier = vec![prefix.to_vec()];
        while let Some(t) = frontier.pop() {
            if t.len() >= len {
                continue;
            }
            for &b in alphabet {
                let mut n = t.clone();
                n.push(b);
                out.push(n.clone());
                frontier.push(n);
            }
        }
        out
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c')], 0..=max)
    }

    proptest! {
        /// groups_for is exactly the set of routes of the topics under the prefix: enumerate
        /// them (the bytes of the prefixes plus one other, up to one byte past the longest
        /// prefix, beyond which routing cannot change).
        #[test]
        fn groups_for_is_the_set_of_routes_under_the_prefix(
            shards in proptest::collection::vec((bytes(3), 2u8..6), 0..8),
            sub in bytes(4),
        ) {
            let mut seen = BTreeSet::new();
            let shards: Vec<Shard> = shards
                .into_iter()
                .filter(|(p, _)| !p.is_empty() && seen.insert(p.clone()))
                .map(|(p, n)| Shard::new(p, g(n)))
                .collect();
            let m = ShardMap::new(g(1), &shards).unwrap();
            let longest = shards.iter().map(|s| s.prefix.len()).max().unwrap_or(0);
            let want: BTreeSet<usize> = topics_under(&sub, b"abcz", longest.max(sub.len()) + 1)
                .iter()
                .map(|t| m.route(t))
                .collect();
            prop_assert_eq!(m.groups_for(&sub), want);
            // Routing agrees with a linear longest-prefix scan.
            for t in topics_under(b"", b"abz", 4) {
                let naive = shards
                    .iter()
                    .filter(|s| t.starts_with(&s.prefix))
                    .max_by_key(|s| s.prefix.len())
                    .map_or(0, |s| m.groups().iter().position(|&x| x == s.group).unwrap());
                prop_assert_eq!(m.route(&t), naive);
            }
        }
    }
}
