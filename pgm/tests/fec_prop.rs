//! Property tests of the Reed-Solomon code (`pgm::fec`): for k in 2..=128 (powers of two), any
//! k of the k + h packets of a group, data and parity mixed, rebuild exactly the missing data,
//! equal or variable lengths; and parity with random bytes, lengths and flags never panics nor
//! yields a TSDU longer than its parity allows.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use pgm::fec::{decode_group, encode_parity, ParityRef, ReedSolomon, TRAILER_LEN};
use proptest::{collection::vec, prelude::*, sample::subsequence};

fn k() -> impl Strategy<Value = usize> {
    (1u32..=7).prop_map(|e| 1usize << e)
}

/// A group: k TSDUs (equal length or not), h parity packets, and which k of the k + h arrive.
fn group() -> impl Strategy<Value = (usize, Vec<Vec<u8>>, usize, Vec<usize>)> {
    (k(), 1usize..=8, any::<bool>(), 0usize..64).prop_flat_map(|(k, h, equal, len)| {
        let tsdu = if equal {
            vec(any::<u8>(), len..=len).boxed()
        } else {
            vec(any::<u8>(), 0..64).boxed()
        };
        (
            Just(k),
            vec(tsdu, k..=k),
            Just(h),
            subsequence((0..k + h).collect::<Vec<_>>(), k),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_k_of_k_plus_h_rebuilds_the_group((k, tsdus, h, arrived) in group()) {
        let rs = ReedSolomon::new(k).unwrap();
        let refs: Vec<&[u8]> = tsdus.iter().map(Vec::as_slice).collect();
        let parity: Vec<_> = (0..h).map(|i| encode_parity(&rs, &refs, i).unwrap()).collect();
        let data: Vec<Option<&[u8]>> =
            (0..k).map(|i| arrived.contains(&i).then_some(refs[i])).collect();
        let prefs: Vec<ParityRef<'_>> = arrived
            .iter()
            .filter(|&&r| r >= k)
            .map(|&r| ParityRef { index: r - k, bytes: &parity[r - k].bytes, var_pktlen: parity[r - k].var_pktlen })
            .collect();
        let got = decode_group(&rs, &data, &prefs).unwrap();
        let missing: Vec<usize> = (0..k).filter(|i| !arrived.contains(i)).collect();
        prop_assert_eq!(got.iter().map(|(i, _)| *i).collect::<Vec<_>>(), missing);
        for (i, t) in got {
            prop_assert_eq!(&t, &tsdus[i]);
        }
    }

    #[test]
    fn corrupt_parity_never_panics_nor_overruns(
        k in k(),
        lens in vec(0usize..40, 1..8),
        lost in 1usize..4,
        junk in vec((any::<u8>(), vec(any::<u8>(), 0..48), any::<bool>()), 1..4),
    ) {
        let rs = ReedSolomon::new(k).unwrap();
        let tsdus: Vec<Vec<u8>> = (0..k).map(|i| vec![i as u8; lens[i % lens.len()]]).collect();
        let data: Vec<Option<&[u8]>> =
            (0..k).map(|i| (i >= lost.min(k)).then_some(tsdus[i].as_slice())).collect();
        let prefs: Vec<ParityRef<'_>> = junk
            .iter()
            .map(|(i, b, v)| ParityRef { index: usize::from(*i), bytes: b, var_pktlen: *v })
            .collect();
        if let Ok(out) = decode_group(&rs, &data, &prefs) {
            let limit = prefs[0].bytes.len() - if prefs[0].var_pktlen { TRAILER_LEN } else { 0 };
            for (i, t) in out {
                prop_assert!(i < k && data[i].is_none());
                prop_assert!(t.len() <= limit);
            }
        }
    }
}
