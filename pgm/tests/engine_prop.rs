//! Random packet sequences into `Receiver` and `Source`: no panic, memory bounded.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use pgm::{
    time::Instant,
    wire::{Body, Data, Fragment, Gsi, Nak, NakList, Options, PacketRepr, SeqNo, Spm, Tsi},
    Event, Receiver, ReceiverConfig, Source, SourceConfig,
};
use proptest::prelude::*;

const GROUP: IpAddr = IpAddr::V4(Ipv4Addr::new(239, 1, 1, 1));
const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const DPORT: u16 = 7500;

/// One step of a hostile or confused network.
#[derive(Debug, Clone)]
enum Step {
    Odata {
        tsi: u8,
        sqn: u32,
        trail: u32,
        len: u16,
        frag: Option<(u32, u32, u32)>,
    },
    Spm {
        tsi: u8,
        spm_sqn: u32,
        trail: u32,
        lead: u32,
        fin: bool,
    },
    Ncf {
        tsi: u8,
        sqn: u32,
        list: Vec<u32>,
    },
    Nak {
        sqn: u32,
        list: Vec<u32>,
        ours: bool,
    },
    Spmr,
    Garbage(Vec<u8>),
    Wait(u32),
}

fn near() -> impl Strategy<Value = u32> {
    prop_oneof![
        0u32..64,
        0u32..5000,
        any::<u32>(),
        (u32::MAX - 64)..=u32::MAX
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..3, near(), near(), 0u16..3000, proptest::option::of((near(), 0u32..70000, 0u32..70000)))
            .prop_map(|(tsi, sqn, trail, len, frag)| Step::Odata { tsi, sqn, trail, len, frag }),
        2 => (0u8..3, near(), near(), near(), any::<bool>())
            .prop_map(|(tsi, spm_sqn, trail, lead, fin)| Step::Spm { tsi, spm_sqn, trail, lead, fin }),
        1 => (0u8..3, near(), proptest::collection::vec(near(), 0..62)).prop_map(|(tsi, sqn, list)| Step::Ncf { tsi, sqn, list }),
        2 => (near(), proptest::collection::vec(near(), 0..62), any::<bool>()).prop_map(|(sqn, list, ours)| Step::Nak { sqn, list, ours }),
        1 => Just(Step::Spmr),
        1 => proptest::collection::vec(any::<u8>(), 0..200).prop_map(Step::Garbage),
        2 => (0u32..500_000).prop_map(Step::Wait),
    ]
}

fn tsi(k: u8) -> Tsi {
    Tsi {
        gsi: Gsi([1, 2, 3, 4, 5, k]),
        sport: 1000 + u16::from(k),
    }
}

fn repr(
    sport: u16,
    dport: u16,
    gsi: Gsi,
    body: Body,
    options: &Options,
    payload: &[u8],
) -> Vec<u8> {
    PacketRepr {
        sport,
        dport,
        gsi,
        parity: false,
        var_pktlen: false,
        body,
        options: *options,
        payload,
    }
    .to_vec()
}

#[allow(clippy::too_many_lines, reason = "one arm per kind of step")]
fn packet(s: &Step, payload: &[u8]) -> Option<(IpAddr, Vec<u8>)> {
    Some(match s {
        Step::Odata {
            tsi: k,
            sqn,
            trail,
            len,
            frag,
        } => {
            let t = tsi(*k);
            let mut options = Options::default();
            if let Some((first, offset, apdu_len)) = frag {
                options.fragment = Some(Fragment {
                    first_sqn: SeqNo(*first),
                    offset: *offset,
                    apdu_len: *apdu_len,
                });
            }
            let body = Body::Odata(Data {
                sqn: SeqNo(*sqn),
                trail: SeqNo(*trail),
            });
            (
                GROUP,
                repr(
                    t.sport,
                    DPORT,
                    t.gsi,
                    body,
                    &options,
                    &payload[..usize::from(*len)],
                ),
            )
        }
        Step::Spm {
            tsi: k,
            spm_sqn,
            trail,
            lead,
            fin,
        } => {
            let t = tsi(*k);
            let body = Body::Spm(Spm {
                spm_sqn: SeqNo(*spm_sqn),
                trail: SeqNo(*trail),
                lead: SeqNo(*lead),
                path: SRC,
            });
            (
                GROUP,
                repr(
                    t.sport,
                    DPORT,
                    t.gsi,
                    body,
                    &Options {
                        fin: *fin,
                        ..Options::default()
                    },
                    &[],
                ),
            )
        }
        Step::Ncf { tsi: k, sqn, list } => {
            let t = tsi(*k);
            let list: Vec<SeqNo> = list.iter().map(|&s| SeqNo(s)).collect();
            let options = Options {
                nak_list: (!list.is_empty()).then(|| NakList::from_slice(&list)),
                ..Options::default()
            };
            let body = Body::Ncf(Nak {
                sqn: SeqNo(*sqn),
                src_nla: SRC,
                grp_nla: GROUP,
            });
            (GROUP, repr(t.sport, DPORT, t.gsi, body, &options, &[]))
        }
        Step::Nak { sqn, list, ours } => {
            let t = tsi(0);
            let list: Vec<SeqNo> = list.iter().map(|&s| SeqNo(s)).collect();
            let options = Options {
                nak_list: (!list.is_empty()).then(|| NakList::from_slice(&list)),
                ..Options::default()
            };
            let src_nla = if *ours { SRC } else { GROUP };
            let body = Body::Nak(Nak {
                sqn: SeqNo(*sqn),
                src_nla,
                grp_nla: GROUP,
            });
            (SRC, repr(DPORT, t.sport, t.gsi, body, &options, &[]))
        }
        Step::Spmr => {
            let t = tsi(0);
            (
                GROUP,
                repr(DPORT, t.sport, t.gsi, Body::Spmr, &Options::default(), &[]),
            )
        }
        Step::Garbage(b) => (GROUP, b.clone()),
        Step::Wait(_) => return None,
    })
}

fn drain_receiver(r: &mut Receiver, now: Instant, buf: &mut Vec<u8>) {
    r.handle_timeout(now);
    // The timer index agrees with a brute-force walk over the peers.
    r.check_invariants();
    while r.poll_transmit(now, buf).is_some() {}
    while let Some(ev) = r.poll_event() {
        if let Event::Data { apdu, .. } = ev {
            assert!(apdu.len() <= 65535);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn receiver_survives_any_sequence(steps in proptest::collection::vec(step(), 1..300)) {
        let mut cfg = ReceiverConfig::new(DPORT);
        cfg.rxw_sqns = 2048;
        cfg.rxw_max_bytes = 256 * 1024;
        cfg.limits.max_peers = 2;
        let mut rx = Receiver::new(cfg);
        let payload = vec![0xabu8; 3000];
        let mut now = Instant::from_millis(1);
        let mut buf = Vec::new();
        for s in &steps {
            if let Step::Wait(us) = s {
                now += Duration::from_micros(u64::from(*us));
            } else if let Some((dst, p)) = packet(s, &payload) {
                rx.handle_packet(now, SRC, dst, &p);
                rx.check_invariants();
            }
            drain_receiver(&mut rx, now, &mut buf);
            let st = rx.stats();
            prop_assert!(st.peers <= 2);
            // Bounded: the byte limit plus one packet in flight per peer.
            prop_assert!(st.window_bytes <= 2 * (256 * 1024 + 3000), "{st:?}");
            prop_assert!(st.missing_now <= 2 * 2048, "{st:?}");
        }
        // Time runs out every NAK cycle and the session expiry: nothing is left behind.
        for _ in 0..200 {
            now += Duration::from_secs(2);
            drain_receiver(&mut rx, now, &mut buf);
        }
        prop_assert_eq!(rx.stats().missing_now, 0);
    }

    /// Many confirmed sessions, each with a gap or none, woken only at `poll_timeout` as a
    /// driver would: every gap is NAKed and in the end reported lost, the driver never spins (after
    /// `handle_timeout` the next deadline is later), and the timer index agrees with the peers
    /// throughout.
    #[test]
    fn receiver_timers_serve_every_peer(
        peers in proptest::collection::vec((0u32..4, 0u32..3000), 1..120),
    ) {
        let mut rx = Receiver::new(ReceiverConfig::new(DPORT));
        let mut now = Instant::from_millis(1);
        let mut buf = Vec::new();
        let mut lossy = std::collections::BTreeSet::new();
        let mut gaps = 0;
        for (k, &(gap, delay_us)) in peers.iter().enumerate() {
            now += Duration::from_micros(u64::from(delay_us));
            let k = u16::try_from(k).unwrap();
            let [hi, lo] = k.to_be_bytes();
            let t = Tsi { gsi: Gsi([7, 7, 7, 7, hi, lo]), sport: 2000 + k };
            // Two in order confirm the session (so its losses are reported), then the gap.
            for sqn in [0, 1, 2 + gap] {
                let body = Body::Odata(Data { sqn: SeqNo(sqn), trail: SeqNo(0) });
                let p = repr(t.sport, DPORT, t.gsi, body, &Options::default(), &[1; 10]);
                rx.handle_packet(now, SRC, GROUP, &p);
            }
            if gap > 0 {
                lossy.insert(t.sport);
                gaps += u64::from(gap);
            }
        }
        rx.check_invariants();
        let mut naked = std::collections::BTreeSet::new();
        let mut wakeups = 0;
        loop {
            while rx.poll_transmit(now, &mut buf).is_some() {
                let p = PacketRepr::parse_verified(&buf).unwrap();
                if matches!(p.body, Body::Nak(_)) {
                    naked.insert(p.dport);
                }
            }
            while rx.poll_event().is_some() {}
            let Some(t) = rx.poll_timeout() else { break };
            prop_assert!(t > now || wakeups == 0, "poll_timeout {t:?} not after {now:?}");
            wakeups += 1;
            prop_assert!(wakeups < 100_000);
            now = now.max(t);
            rx.handle_timeout(now);
            rx.check_invariants();
        }
        prop_assert_eq!(naked, lossy);
        let st = rx.stats();
        prop_assert_eq!((st.peers, st.peers_expired, st.lost_sqns), (0, peers.len() as u64, gaps));
    }

    #[test]
    fn source_survives_any_sequence(steps in proptest::collection::vec(step(), 1..300)) {
        let mut cfg = SourceConfig::new(tsi(0), DPORT, GROUP, SRC);
        cfg.txw_sqns = 512;
        cfg.txw_max_bytes = 256 * 1024;
        cfg.rate = Some(1_000_000);
        cfg.repair.rate = Some(200_000);
        let mut src = Source::new(cfg);
        let payload = vec![0x5au8; 3000];
        let mut now = Instant::from_millis(1);
        let mut buf = Vec::new();
        for (i, s) in steps.iter().enumerate() {
            if let Step::Wait(us) = s {
                now += Duration::from_micros(u64::from(*us));
            } else if let Some((dst, p)) = packet(s, &payload) {
                src.handle_packet(now, GROUP, dst, &p);
            }
            let _ = src.send(now, &payload[..i % 3000]);
            src.handle_timeout(now);
            let mut n = 0;
            while src.poll_transmit(now, &mut buf).is_some() {
                n += 1;
                prop_assert!(n < 100_000, "poll_transmit never ends");
            }
            let st = src.stats();
            prop_assert!(st.txw_packets <= 512 && st.txw_bytes <= 256 * 1024, "{st:?}");
        }
    }
}
