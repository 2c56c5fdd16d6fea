//! The source's pro-active FEC (`SourceConfig::fec`): SPMs advertise OPT_PARITY_PRM with the
//! RFC's P bit, each full group is followed by its parity packets (ODATA, OPT_PARITY, checksum
//! good, sqn `tg | h`), and those parity packets rebuild lost data of the group with
//! `pgm::fec`, equal and unequal lengths alike. With FEC off nothing of it is on the wire.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use pgm::{
    fec::{decode_group, ParityRef, ReedSolomon},
    time::Instant,
    wire::{Body, Gsi, Nak, NakList, Options, PacketRepr, SeqNo, Tsi},
    FecConfig, Source, SourceConfig,
};

fn config(fec: Option<FecConfig>) -> SourceConfig {
    let mut cfg = SourceConfig::new(
        Tsi::new(Gsi([1, 2, 3, 4, 5, 6]), 1000),
        7500,
        IpAddr::V4(Ipv4Addr::new(239, 1, 1, 1)),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
    );
    cfg.fec = fec;
    cfg
}

/// Sends `apdus`, then drains every packet the source emits, as owned bytes.
fn run(fec: Option<FecConfig>, apdus: &[Vec<u8>]) -> (Vec<Vec<u8>>, pgm::SourceStats) {
    let mut s = Source::new(config(fec));
    let now = Instant::ZERO;
    for a in apdus {
        s.send(now, a).unwrap();
    }
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for _ in 0..10_000 {
        match s.poll_transmit(now, &mut buf) {
            Some(_) => out.push(buf.clone()),
            None => break,
        }
    }
    (out, s.stats())
}

#[test]
fn proactive_parity_rebuilds_lost_data() {
    let k = 4usize;
    for equal in [true, false] {
        let apdus: Vec<Vec<u8>> = (0..8u8)
            .map(|i| {
                let len = if equal { 100 } else { 20 + 13 * usize::from(i) };
                (0..len).map(|j| i.wrapping_mul(31) ^ j as u8).collect()
            })
            .collect();
        let (packets, stats) = run(Some(FecConfig::proactive(4, 2).unwrap()), &apdus);
        assert_eq!(stats.parity_sent, 4, "two groups, two parity each");
        let mut saw_prm = false;
        let mut data = Vec::new();
        let mut parity = Vec::new();
        for bytes in &packets {
            let p = PacketRepr::parse_verified(bytes).unwrap();
            match p.body {
                Body::Spm(_) => {
                    let prm = p.options.parity_prm.unwrap();
                    assert!(prm.proactive && !prm.on_demand && prm.tgs == 4);
                    saw_prm = true;
                }
                Body::Odata(d) if p.parity => {
                    // Parity follows the last packet of its group.
                    assert_eq!(d.sqn.0 & !3, data.len() as u32 - 4);
                    assert_eq!(p.var_pktlen, !equal);
                    parity.push((d.sqn.0, p.payload.to_vec(), p.var_pktlen));
                }
                Body::Odata(d) => {
                    assert_eq!(d.sqn.0 as usize, data.len());
                    data.push(p.payload.to_vec());
                }
                _ => {}
            }
        }
        assert!(saw_prm);
        assert_eq!(data, apdus);
        let rs = ReedSolomon::new(k).unwrap();
        // Lose packets 1 and 3 of the second group; its two parity packets bring them back.
        let recv: Vec<Option<&[u8]>> = (4..8)
            .map(|i| (i % 2 == 0).then_some(data[i].as_slice()))
            .collect();
        let prefs: Vec<ParityRef<'_>> = parity
            .iter()
            .filter(|(sqn, _, _)| sqn & !3 == 4)
            .map(|(sqn, b, v)| ParityRef {
                index: (sqn & 3) as usize,
                bytes: b,
                var_pktlen: *v,
            })
            .collect();
        let got = decode_group(&rs, &recv, &prefs).unwrap();
        assert_eq!(got, vec![(1, apdus[5].clone()), (3, apdus[7].clone())]);
    }
}

#[test]
fn fec_off_sends_no_parity_and_no_parity_prm() {
    let apdus: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 50]).collect();
    let (packets, stats) = run(None, &apdus);
    assert_eq!(stats.parity_sent, 0);
    for bytes in &packets {
        let p = PacketRepr::parse_verified(bytes).unwrap();
        assert!(!p.parity && p.options.parity_prm.is_none());
    }
}

#[test]
fn partial_groups_get_no_parity_fragmented_ones_do() {
    // 3 packets of a k = 4 group: no parity (partial groups are not implemented).
    let (_, stats) = run(
        Some(FecConfig::proactive(4, 1).unwrap()),
        &[vec![1; 10], vec![2; 10], vec![3; 10]],
    );
    assert_eq!((stats.parity_sent, stats.parity_skipped), (0, 0));
    // One APDU in 4 fragments: its parity carries the encoded OPT_FRAGMENTs, and fits the MTU.
    let fec = FecConfig::proactive(4, 1).unwrap();
    let (packets, stats) = run(Some(fec), &[vec![7; 5000]]);
    assert_eq!((stats.parity_sent, stats.parity_skipped), (1, 0));
    let parity: Vec<_> = packets
        .iter()
        .filter(|b| PacketRepr::parse_verified(b).is_ok_and(|p| p.parity))
        .collect();
    assert_eq!(parity.len(), 1);
    let p = PacketRepr::parse_verified(parity[0]).unwrap();
    assert!(p.options.fragment_encoded.is_some() && p.options.fragment.is_none());
    let mtu = config(Some(fec)).mtu;
    assert!(
        parity[0].len() <= mtu.mtu - mtu.ip_overhead,
        "parity TPDU {} over the MTU",
        parity[0].len()
    );
    // The worst group: a largest unfragmented packet, a tiny one and fragments (unequal
    // lengths: the 2-byte trailer, and the encoded OPT_FRAGMENT): its parity still fits.
    let max = config(Some(fec)).max_tsdu();
    let (packets, stats) = run(Some(fec), &[vec![1; max], vec![2; 3], vec![3; 3000]]);
    assert_eq!(stats.parity_sent, 1);
    for b in &packets {
        let p = PacketRepr::parse_verified(b).unwrap();
        assert!(
            b.len() <= mtu.mtu - mtu.ip_overhead,
            "{} over the MTU",
            b.len()
        );
        if p.parity {
            assert!(p.var_pktlen && p.options.fragment_encoded.is_some());
        }
    }
    assert!(FecConfig::proactive(3, 1).is_err());
    assert!(FecConfig::proactive(4, 0).is_err());
    assert!(FecConfig::proactive(4, 5).is_err());
    assert!(FecConfig::proactive(255, 1).is_err());
}

/// A receiver with `ReceiverConfig::fec` fed a source's packets by hand: a lost data packet is
/// rebuilt from parity and delivered byte-exact; parity that fails the checksum, or that passes
/// it but does not fit its group (one byte short), rebuilds nothing and delivers nothing wrong.
#[test]
fn receiver_decodes_good_parity_and_refuses_corrupt_parity() {
    use pgm::{wire::Body as B, Event, Receiver, ReceiverConfig};
    let apdus: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i.wrapping_mul(37); 300]).collect();
    let (packets, _) = run(Some(FecConfig::proactive(4, 1).unwrap()), &apdus);
    let src = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let grp = IpAddr::V4(Ipv4Addr::new(239, 1, 1, 1));
    let is_sqn = |bytes: &[u8], sqn: u32, parity: bool| {
        let p = PacketRepr::parse(bytes).unwrap();
        matches!(p.body, B::Odata(d) if d.sqn.0 == sqn) && p.parity == parity
    };
    // Parity of group 4..8 with one payload byte flipped (checksum now wrong), and re-emitted
    // one byte short with a good checksum.
    let good = packets.iter().find(|b| is_sqn(b, 4, true)).unwrap().clone();
    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 0x55;
    let short = {
        let p = PacketRepr::parse(&good).unwrap();
        let mut out = Vec::new();
        PacketRepr {
            payload: &p.payload[..p.payload.len() - 1],
            ..p
        }
        .emit(&mut out);
        out
    };
    for (bad, want_checksum_errors) in [(Some(&flipped), 1), (Some(&short), 0), (None, 0)] {
        let mut cfg = ReceiverConfig::new(7500);
        cfg.fec = true;
        let mut rx = Receiver::new(cfg);
        let now = Instant::ZERO;
        for b in &packets {
            // Lose data sqn 6; swap in the corrupt parity where given.
            if is_sqn(b, 6, false) {
                continue;
            }
            let b = if is_sqn(b, 4, true) {
                bad.unwrap_or(b)
            } else {
                b
            };
            rx.handle_packet(now, src, grp, b);
        }
        let mut got = Vec::new();
        while let Some(e) = rx.poll_event() {
            if let Event::Data { apdu, .. } = e {
                got.push(apdu.to_vec());
            }
        }
        let stats = rx.stats();
        assert_eq!(stats.checksum_errors, want_checksum_errors);
        if bad.is_some() {
            assert_eq!(stats.fec_recovered, 0);
            // Everything before the hole, nothing wrong.
            assert_eq!(got, apdus[..6].to_vec());
        } else {
            assert_eq!(stats.fec_recovered, 1);
            assert_eq!(got, apdus);
        }
    }
}

/// A parity NAK (header OPT_PARITY) from `from` for the entries `tg | (count − 1)`.
fn parity_nak(cfg: &SourceConfig, entries: &[u32]) -> Vec<u8> {
    let options = Options {
        nak_list: (entries.len() > 1).then(|| {
            NakList::from_slice(&entries[1..].iter().map(|&e| SeqNo(e)).collect::<Vec<_>>())
        }),
        ..Options::default()
    };
    PacketRepr {
        sport: cfg.dport,
        dport: cfg.tsi.sport,
        gsi: cfg.tsi.gsi,
        parity: true,
        var_pktlen: false,
        body: Body::Nak(Nak {
            sqn: SeqNo(entries[0]),
            src_nla: cfg.nla,
            grp_nla: cfg.group,
        }),
        options,
        payload: &[],
    }
    .to_vec()
}

fn drain(s: &mut Source, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while s.poll_transmit(now, &mut buf).is_some() {
        out.push(buf.clone());
    }
    out
}

/// RFC 3208 §11.4 on demand: a parity NAK for a full group gets a parity NCF and as many
/// fresh parity packets (RDATA, OPT_PARITY, indices after the pro-active ones) as it asks; a
/// second NAK within the elimination interval buys only what the first did not cover; a NAK
/// for the leading partial group buys parity of the prefix sent so far (OPT_CURR_TGSIZE); a
/// group holding fragments gets parity with its OPT_FRAGMENTs encoded; and the parity rebuilds
/// the group's lost data.
#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one scenario, step by step: each request and what it bought"
)]
fn parity_naks_get_a_parity_ncf_and_fresh_parity() {
    let fec = FecConfig::proactive(4, 1).unwrap().with_on_demand();
    let cfg = config(Some(fec));
    let mut s = Source::new(cfg.clone());
    let t0 = Instant::ZERO;
    let apdus: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 50 + usize::from(i)]).collect();
    for a in &apdus {
        s.send(t0, a).unwrap();
    }
    s.send(t0, &vec![9u8; 5000]).unwrap(); // fragments: sqns 10.., group 8..12 holds them
    let first = drain(&mut s, t0);
    let spm = PacketRepr::parse_verified(&first[0]).unwrap();
    let prm = spm.options.parity_prm.unwrap();
    assert!(prm.proactive && prm.on_demand && prm.tgs == 4);
    let proactive = s.stats().parity_sent;
    assert_eq!(
        proactive, 3,
        "groups 0, 4 and 8, one pro-active parity each"
    );

    let src = cfg.nla;
    let t1 = t0 + Duration::from_millis(10);
    // Group 4 (sqns 4..8): 3 packets missing somewhere; group 8 (holding fragments): 1;
    // group 12: partial.
    s.handle_packet(t1, src, cfg.nla, &parity_nak(&cfg, &[4 + 2, 8, 12]));
    let out = drain(&mut s, t1);
    let mut parity = Vec::new();
    let mut fragment_group = Vec::new();
    let mut partial_group = Vec::new();
    let mut ncf = None;
    for bytes in &out {
        let p = PacketRepr::parse_verified(bytes).unwrap();
        match p.body {
            Body::Ncf(n) => {
                assert!(p.parity, "a parity NCF");
                ncf = Some((n.sqn.0, p.options.nak_list.map(|l| l.as_slice().len())));
            }
            Body::Rdata(d) if d.sqn.0 & !3 == 8 => {
                assert!(p.parity && p.options.fragment_encoded.is_some());
                assert_eq!(p.options.curr_tgsize, None);
                fragment_group.push(d.sqn.0 & 3);
            }
            Body::Rdata(d) if d.sqn.0 & !3 == 12 => {
                assert!(p.parity && p.options.fragment_encoded.is_some());
                partial_group.push((d.sqn.0 & 3, p.options.curr_tgsize));
            }
            Body::Rdata(d) => {
                assert!(p.parity && p.options.fragment_encoded.is_none());
                assert_eq!(d.sqn.0 & !3, 4);
                parity.push((d.sqn.0 as usize & 3, p.payload.to_vec(), p.var_pktlen));
            }
            Body::Spm(_) => {} // heartbeat
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        ncf,
        Some((6, Some(2))),
        "the NCF echoes the entries (6, 8 and 12)"
    );
    assert_eq!(
        partial_group,
        [(1, Some(2))],
        "the leading group's prefix (sqns 12, 13): an on-demand index (after the pro-active \
         one), OPT_CURR_TGSIZE 2"
    );
    assert_eq!(
        fragment_group,
        [1],
        "one fresh parity for the group with fragments"
    );
    let indices: Vec<usize> = parity.iter().map(|p| p.0).collect();
    assert_eq!(
        indices,
        [1, 2, 3],
        "fresh indices after the pro-active one (0)"
    );
    let st = s.stats();
    assert_eq!(
        (st.parity_naks_received, st.parity_nak_groups_refused),
        (1, 0)
    );
    assert_eq!(st.on_demand_parity_sent, 5);

    // Another receiver asks for 2 of the same group at once: covered, nothing more.
    s.handle_packet(t1, src, cfg.nla, &parity_nak(&cfg, &[4 + 1]));
    let more = drain(&mut s, t1);
    assert!(
        more.iter()
            .all(|b| matches!(PacketRepr::parse(b).unwrap().body, Body::Spm(_))),
        "no NCF and no parity for a covered request"
    );
    assert_eq!(s.stats().parity_eliminated, 2);

    // The three parity packets rebuild three lost packets of the group.
    let rs = ReedSolomon::new(4).unwrap();
    let data: Vec<Option<&[u8]>> = vec![Some(&apdus[4][..]), None, None, None];
    let refs: Vec<ParityRef<'_>> = parity
        .iter()
        .map(|(index, bytes, var)| ParityRef {
            index: *index,
            bytes,
            var_pktlen: *var,
        })
        .collect();
    let rebuilt = decode_group(&rs, &data, &refs).unwrap();
    for (i, tsdu) in rebuilt {
        assert_eq!(tsdu, apdus[4 + i]);
    }
}

/// Without on-demand FEC, parity NAKs are counted and ignored: no NCF, no parity.
#[test]
fn parity_naks_are_ignored_without_on_demand() {
    let cfg = config(Some(FecConfig::proactive(4, 1).unwrap()));
    let mut s = Source::new(cfg.clone());
    for i in 0..8u8 {
        s.send(Instant::ZERO, &[i; 20]).unwrap();
    }
    drain(&mut s, Instant::ZERO);
    s.handle_packet(Instant::ZERO, cfg.nla, cfg.nla, &parity_nak(&cfg, &[1]));
    assert!(drain(&mut s, Instant::ZERO).is_empty());
    assert_eq!(s.stats().parity_naks_ignored, 1);
}
