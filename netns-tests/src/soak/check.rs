//! The soak's verdicts, as pure functions of what the run recorded: per-session delivery checks
//! of each subscriber incarnation, and the RSS statistics (least-squares slopes).
//!
//! Topic names carry the session: publisher incarnation `k` publishes on `{base}.s{k:03}` for
//! each base topic (`a0`..`b9`), so `pgm-sub`'s per-topic counts are per-session counts.

use std::collections::BTreeMap;

use crate::zmq::expected_topics;

/// The topic of base topic `base` in session `k`.
pub fn session_topic(base: &str, k: usize) -> String {
    format!("{base}.s{k:03}")
}

/// Splits a session topic back into (base, session).
pub fn parse_session_topic(topic: &str) -> Option<(&str, usize)> {
    let (base, k) = topic.rsplit_once(".s")?;
    Some((base, k.parse().ok()?))
}

/// Per-session counts from a `"topics"` object: session → base topic → count. Topics that are
/// not session topics are returned apart.
pub fn by_session(
    topics: &BTreeMap<String, u64>,
) -> (BTreeMap<usize, BTreeMap<String, u64>>, Vec<String>) {
    let mut m: BTreeMap<usize, BTreeMap<String, u64>> = BTreeMap::new();
    let mut strays = Vec::new();
    for (t, &n) in topics {
        match parse_session_topic(t) {
            Some((base, k)) => {
                *m.entry(k).or_default().entry(base.to_owned()).or_default() += n;
            }
            None => strays.push(t.clone()),
        }
    }
    (m, strays)
}

/// The base topics a subscriber of `prefixes` takes, in round-robin order with their index.
pub fn subscribed<'a>(base: &'a [String], prefixes: &[&str]) -> Vec<(usize, &'a str)> {
    base.iter()
        .enumerate()
        .filter(|(_, t)| prefixes.iter().any(|p| t.starts_with(p)))
        .map(|(i, t)| (i, t.as_str()))
        .collect()
}

/// How many of the messages `start..start + len` of a round-robin over `n_topics` topics go to
/// topic `t`.
pub fn in_window(start: u64, len: u64, n_topics: u64, t: u64) -> u64 {
    let offset = (t + n_topics - start % n_topics) % n_topics;
    if len <= offset {
        0
    } else {
        (len - offset - 1) / n_topics + 1
    }
}

/// Whether per-topic counts `got` (base topic → count; absent = 0) of the subscribed topics
/// `subs` are what one contiguous run `start..start + len` of the publisher's round-robin over
/// `n_topics` topics delivers, for some `start` and `len`. Returns the run length found.
///
/// Together with "no gaps, no duplicates" inside each topic (the subscriber's own check) this
/// says that the subscriber got one unbroken stretch of the session: it may have joined late or
/// left early, but it did not miss anything in between.
pub fn contiguous_run(
    got: &BTreeMap<String, u64>,
    subs: &[(usize, &str)],
    n_topics: usize,
) -> Option<u64> {
    let n = n_topics as u64;
    let counts: Vec<(u64, u64)> = subs
        .iter()
        .map(|&(i, t)| (i as u64, got.get(t).copied().unwrap_or(0)))
        .collect();
    let max = counts.iter().map(|c| c.1).max().unwrap_or(0);
    if max == 0 {
        return Some(0);
    }
    let lo = (max - 1) * n;
    let hi = (max + 1) * n;
    (0..n).find_map(|start| {
        (lo..=hi).find(|&len| {
            counts
                .iter()
                .all(|&(t, c)| in_window(start, len, n, t) == c)
        })
    })
}

/// How a subscriber incarnation relates to one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Subscribed before the session's first message and stayed until its last one.
    Full,
    /// Joined late or left early (or both).
    Partial,
}

/// The verdict on one session as one subscriber incarnation saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionVerdict {
    /// The session (publisher incarnation).
    pub session: usize,
    /// How the subscriber was present.
    pub presence: Presence,
    /// Whether the publisher finished sending before it was killed.
    pub complete: bool,
    /// Messages of this session delivered.
    pub received: u64,
    /// Messages a full, complete session must deliver to this subscriber (`None` otherwise).
    pub expected: Option<u64>,
    /// Passed.
    pub ok: bool,
    /// What was checked, or what is wrong.
    pub note: String,
}

/// Checks the counts `got` (base → count) of session `session` at a subscriber of `prefixes`.
///
/// - full presence, complete session: `got` must equal exactly what `count` messages
///   round-robin over `base` give the prefixes (every topic, every message: with the
///   subscriber's "no gaps, no duplicates" this is sequence 0..n of every topic);
/// - otherwise: `got` must be one contiguous run of the round-robin ([`contiguous_run`]).
///
/// Topics outside the prefixes are always an error.
#[expect(
    clippy::too_many_arguments,
    reason = "one flat call per session reads better than a parameter struct"
)]
pub fn check_session(
    session: usize,
    presence: Presence,
    complete: bool,
    got: &BTreeMap<String, u64>,
    base: &[String],
    count: u64,
    prefixes: &[&str],
    subs: &[(usize, &str)],
) -> SessionVerdict {
    let received = got.values().sum();
    let strays: Vec<&String> = got
        .keys()
        .filter(|t| !subs.iter().any(|(_, s)| s == t))
        .collect();
    let mut v = SessionVerdict {
        session,
        presence,
        complete,
        received,
        expected: None,
        ok: true,
        note: String::new(),
    };
    if !strays.is_empty() {
        v.ok = false;
        v.note = format!("topics outside the subscription: {strays:?}");
        return v;
    }
    if presence == Presence::Full && complete {
        let want = expected_topics(base, count, prefixes);
        v.expected = Some(want.values().sum());
        if &want == got {
            v.note = format!("exact: {} topics, {received} messages", want.len());
        } else {
            v.ok = false;
            let diff: Vec<String> = want
                .iter()
                .filter(|(t, w)| got.get(*t) != Some(w))
                .take(6)
                .map(|(t, w)| format!("{t}: got {:?} want {w}", got.get(t)))
                .collect();
            v.note = format!("not exact: {}", diff.join(", "));
        }
    } else if let Some(len) = contiguous_run(got, subs, base.len()) {
        v.note = format!("one contiguous run of {len} published messages");
    } else {
        v.ok = false;
        v.note = format!("per-topic counts are not one contiguous run: {got:?}");
    }
    v
}

/// Least-squares slope of `points` (x, y), in y per unit of x; `None` with fewer than two
/// distinct x.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// `(tsi, lost)` of each loss notice `pgm-sub: TSI: N packets lost; …` in a subscriber's
/// stderr.
pub fn loss_notices(stderr: &str) -> Vec<(String, u64)> {
    stderr
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("pgm-sub: ")?;
            let (tsi, rest) = rest.split_once(": ")?;
            let (n, _) = rest.split_once(" packets lost")?;
            Some((tsi.to_owned(), n.trim().parse().ok()?))
        })
        .collect()
}

/// The lines of a tool's stderr other than its once-a-second progress lines (`…, N total, …`),
/// at most `max`, each prefixed with `[~Ns]`: the number of progress lines before it, which is
/// about the seconds since the tool started (for placing a loss notice in time).
pub fn notable_lines(stderr: &str, max: usize) -> Vec<String> {
    let mut seconds = 0u64;
    let mut out = Vec::new();
    for l in stderr.lines() {
        if l.contains(" msgs/s, ") && l.contains(" total") {
            seconds += 1;
        } else if out.len() < max {
            out.push(format!("[~{seconds}s] {l}"));
        }
    }
    out
}

/// The last `N total` of a tool's progress lines (`…, N total, …`).
pub fn last_progress_total(stderr: &str) -> Option<u64> {
    stderr.lines().rev().find_map(|l| {
        let (before, _) = l.split_once(" total")?;
        before.rsplit(' ').next()?.parse().ok()
    })
}

/// The TSI `pgm-pub` announces: `pgm-pub: publishing on ENDPOINT as TSI (…)`.
pub fn announced_tsi(stderr: &str) -> Option<String> {
    stderr.lines().find_map(|l| {
        let rest = l.strip_prefix("pgm-pub: publishing on ")?;
        let (_, tsi) = rest.split_once(" as ")?;
        Some(tsi.split_whitespace().next()?.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zmq::topics;

    #[test]
    fn session_topics_round_trip() {
        assert_eq!(session_topic("a3", 7), "a3.s007");
        assert_eq!(parse_session_topic("a3.s007"), Some(("a3", 7)));
        assert_eq!(parse_session_topic("a3.s1234"), Some(("a3", 1234)));
        assert_eq!(parse_session_topic("a3"), None);
        let mut t = BTreeMap::new();
        t.insert("a3.s001".to_owned(), 5);
        t.insert("b0.s001".to_owned(), 4);
        t.insert("a3.s002".to_owned(), 1);
        t.insert("junk".to_owned(), 1);
        let (m, strays) = by_session(&t);
        assert_eq!(m[&1]["a3"], 5);
        assert_eq!(m[&2].len(), 1);
        assert_eq!(strays, ["junk"]);
    }

    #[test]
    fn windows_of_the_round_robin() {
        // 0..25 over 20 topics: topics 0..4 twice, the rest once.
        assert_eq!(in_window(0, 25, 20, 0), 2);
        assert_eq!(in_window(0, 25, 20, 4), 2);
        assert_eq!(in_window(0, 25, 20, 5), 1);
        // 18..23: topics 18, 19, 0, 1, 2.
        assert_eq!(in_window(18, 5, 20, 19), 1);
        assert_eq!(in_window(18, 5, 20, 2), 1);
        assert_eq!(in_window(18, 5, 20, 3), 0);
        assert_eq!(in_window(7, 0, 20, 7), 0);
    }

    fn counts(base: &[String], start: u64, len: u64, prefixes: &[&str]) -> BTreeMap<String, u64> {
        subscribed(base, prefixes)
            .into_iter()
            .map(|(i, t)| (t.to_owned(), in_window(start, len, 20, i as u64)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    #[test]
    fn contiguous_runs_are_recognised_and_holes_are_not() {
        let base = topics(20);
        let prefixes = ["b", "a0"];
        let subs = subscribed(&base, &prefixes);
        assert_eq!(subs.len(), 11);
        for (start, len) in [(0, 0), (0, 1), (3, 100), (17, 1234), (5, 21), (19, 40)] {
            let got = counts(&base, start, len, &prefixes);
            assert!(
                contiguous_run(&got, &subs, 20).is_some(),
                "{start}+{len}: {got:?}"
            );
        }
        // A whole round missing from one topic in the middle: not one run.
        let mut got = counts(&base, 0, 400, &prefixes);
        *got.get_mut("b3").unwrap() -= 1;
        *got.get_mut("b7").unwrap() -= 2;
        assert_eq!(contiguous_run(&got, &subs, 20), None);
    }

    #[test]
    fn exact_and_partial_session_checks() {
        let base = topics(20);
        let prefixes = ["a", "b5"];
        let subs = subscribed(&base, &prefixes);
        let full = expected_topics(&base, 1005, &prefixes);
        let v = check_session(
            3,
            Presence::Full,
            true,
            &full,
            &base,
            1005,
            &prefixes,
            &subs,
        );
        assert!(v.ok, "{v:?}");
        assert_eq!(v.expected, Some(v.received));
        let mut short = full.clone();
        *short.get_mut("a7").unwrap() -= 1;
        let v = check_session(
            3,
            Presence::Full,
            true,
            &short,
            &base,
            1005,
            &prefixes,
            &subs,
        );
        assert!(!v.ok && v.note.contains("a7"), "{v:?}");
        // The same counts from a late joiner: one contiguous run? a7 has two fewer than a4 and
        // one fewer than a6 and a8: no.
        let v = check_session(
            3,
            Presence::Partial,
            true,
            &short,
            &base,
            1005,
            &prefixes,
            &subs,
        );
        assert!(!v.ok, "{v:?}");
        let late = counts(&base, 333, 500, &prefixes);
        let v = check_session(
            3,
            Presence::Partial,
            true,
            &late,
            &base,
            1005,
            &prefixes,
            &subs,
        );
        assert!(v.ok, "{v:?}");
        let mut stray = late;
        stray.insert("b0".to_owned(), 1);
        let v = check_session(
            3,
            Presence::Partial,
            true,
            &stray,
            &base,
            1005,
            &prefixes,
            &subs,
        );
        assert!(!v.ok && v.note.contains("outside"), "{v:?}");
    }

    #[test]
    fn slopes() {
        let pts: Vec<(f64, f64)> = (0..100)
            .map(|i| (f64::from(i), 5.0 + 2.0 * f64::from(i)))
            .collect();
        assert!((slope(&pts).unwrap() - 2.0).abs() < 1e-9);
        assert_eq!(slope(&pts[..1]), None);
        assert_eq!(slope(&[(1.0, 1.0), (1.0, 2.0)]), None);
    }

    #[test]
    fn stderr_parsing() {
        let sub = "pgm-sub: listening on x\n\
                   pgm-sub: 7600 msgs/s, 4.8 Mbit/s, 15200 total, filtered 1, naks 2\n\
                   pgm-sub: 1.2.3.4.5.6.777: 3 packets lost; resyncing at the next message\n\
                   pgm-sub: 0 msgs/s, 0.0 Mbit/s, 15300 total, filtered 1, naks 2\n";
        assert_eq!(loss_notices(sub), [("1.2.3.4.5.6.777".to_owned(), 3)]);
        assert_eq!(last_progress_total(sub), Some(15300));
        assert_eq!(
            notable_lines(sub, 5),
            [
                "[~0s] pgm-sub: listening on x",
                "[~1s] pgm-sub: 1.2.3.4.5.6.777: 3 packets lost; resyncing at the next message"
            ]
        );
        let publ = "pgm-pub: publishing on epgm://10.1.1.1;239.192.1.1:7900 as 9.8.7.6.5.4.3210 \
                    (APDUs of at most 1428 bytes)\n";
        assert_eq!(announced_tsi(publ).as_deref(), Some("9.8.7.6.5.4.3210"));
    }
}
