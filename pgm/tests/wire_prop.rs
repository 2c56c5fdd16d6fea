//! Property tests: every well-formed `PacketRepr` (all bodies, IPv4/IPv6 NLAs, any valid set of
//! at most 16 options) survives emit → parse unchanged, and no byte string — random or a mutated
//! valid packet — makes the parser, the option walker or `Display` panic.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

#[path = "../../fuzz/src/invariants.rs"]
mod invariants;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pgm::wire::{
    options::{
        Cr, CrFlags, NakBoIvl, NakBoRng, ParityPrm, PgmccData, PgmccFeedback, Rst, MAX_NAK_LIST,
        MAX_OPTIONS,
    },
    Ack, Body, Data, Fragment, Gsi, Nak, NakList, Options, PacketRepr, Poll, Polr, SeqNo, Spm,
};
use proptest::{collection::vec, option::weighted, prelude::*};

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        any::<[u8; 16]>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ]
}

fn sqn() -> impl Strategy<Value = SeqNo> {
    prop_oneof![
        any::<u32>().prop_map(SeqNo),
        // The edges of serial arithmetic.
        prop_oneof![
            Just(0u32),
            Just(u32::MAX),
            Just(0x7fff_ffff),
            Just(0x8000_0000)
        ]
        .prop_map(SeqNo),
    ]
}

fn nak() -> impl Strategy<Value = Nak> {
    (sqn(), ip(), ip()).prop_map(|(sqn, src_nla, grp_nla)| Nak {
        sqn,
        src_nla,
        grp_nla,
    })
}

fn data() -> impl Strategy<Value = Data> {
    (sqn(), sqn()).prop_map(|(sqn, trail)| Data { sqn, trail })
}

/// Every known body.
fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (sqn(), sqn(), sqn(), ip()).prop_map(|(spm_sqn, trail, lead, path)| Body::Spm(Spm {
            spm_sqn,
            trail,
            lead,
            path
        })),
        (
            sqn(),
            any::<u16>(),
            any::<u16>(),
            ip(),
            any::<u32>(),
            any::<[u8; 4]>(),
            any::<u32>()
        )
            .prop_map(|(sqn, round, s_type, path, bo_ivl_us, rand, mask)| {
                Body::Poll(Poll {
                    sqn,
                    round,
                    s_type,
                    path,
                    bo_ivl_us,
                    rand,
                    mask,
                })
            }),
        (sqn(), any::<u16>()).prop_map(|(sqn, round)| Body::Polr(Polr { sqn, round })),
        data().prop_map(Body::Odata),
        data().prop_map(Body::Rdata),
        nak().prop_map(Body::Nak),
        nak().prop_map(Body::Nnak),
        nak().prop_map(Body::Ncf),
        Just(Body::Spmr),
        (sqn(), any::<u32>()).prop_map(|(rx_max, bitmap)| Body::Ack(Ack { rx_max, bitmap })),
    ]
}

fn cr_flags() -> impl Strategy<Value = CrFlags> {
    any::<[bool; 3]>().prop_map(|[ne_wl, ne_wp, rx_wp]| CrFlags {
        ne_wl,
        ne_wp,
        rx_wp,
    })
}

/// The options that may ride on any packet type (everything but OPT_FRAGMENT and OPT_NAK_LIST),
/// each present with probability 1/4.
#[allow(clippy::type_complexity, reason = "a tuple of option strategies")]
fn generic_options() -> impl Strategy<Value = Options> {
    const P: f64 = 0.25;
    let a = (
        weighted(P, sqn()),
        weighted(
            P,
            (any::<u32>(), sqn()).prop_map(|(ivl_us, sqn)| NakBoIvl { ivl_us, sqn }),
        ),
        weighted(
            P,
            (any::<u32>(), any::<u32>()).prop_map(|(max_us, min_us)| NakBoRng { max_us, min_us }),
        ),
        weighted(P, ip()),
        weighted(
            P,
            (any::<bool>(), any::<bool>(), any::<u32>()).prop_map(|(proactive, on_demand, tgs)| {
                ParityPrm {
                    proactive,
                    on_demand,
                    tgs,
                }
            }),
        ),
        weighted(P, any::<u32>()),
        weighted(P, any::<u32>()),
        any::<[bool; 3]>(),
    );
    let b = (
        weighted(P, ip()),
        weighted(
            P,
            (any::<bool>(), 0u8..64).prop_map(|(no_naks, code)| Rst { no_naks, code }),
        ),
        weighted(
            P,
            (
                cr_flags(),
                sqn(),
                any::<u16>(),
                any::<u16>(),
                any::<u16>(),
                ip(),
            )
                .prop_map(|(flags, lead, ne_wl, ne_wp, rx_wp, rcvr)| Cr {
                    flags,
                    lead,
                    ne_wl,
                    ne_wp,
                    rx_wp,
                    rcvr,
                }),
        ),
        weighted(P, cr_flags()),
        weighted(
            P,
            (any::<u32>(), ip()).prop_map(|(tstamp, acker)| PgmccData { tstamp, acker }),
        ),
        weighted(
            P,
            (any::<u32>(), any::<u16>(), ip()).prop_map(|(tstamp, loss_rate, nla)| PgmccFeedback {
                tstamp,
                loss_rate,
                nla,
            }),
        ),
    );
    (a, b).prop_map(
        |(
            (join, nak_bo_ivl, nak_bo_rng, redirect, parity_prm, parity_grp, curr_tgsize, bits),
            (path_nla, rst, cr, crqst, pgmcc_data, pgmcc_feedback),
        )| {
            let [nbr_unreach, syn, fin] = bits;
            Options {
                join,
                nak_bo_ivl,
                nak_bo_rng,
                redirect,
                parity_prm,
                parity_grp,
                curr_tgsize,
                nbr_unreach,
                path_nla,
                syn,
                fin,
                rst,
                cr,
                crqst,
                pgmcc_data,
                pgmcc_feedback,
                ..Options::default()
            }
        },
    )
}

/// Options present, OPT_LENGTH not counted.
fn count(o: &Options) -> usize {
    o.names().len().saturating_sub(1)
}

/// A consistent OPT_FRAGMENT for a packet with sqn `sqn` and a `len`-byte payload (len ≥ 1).
fn fragment(sqn: SeqNo, len: usize) -> impl Strategy<Value = Fragment> {
    let len = len as u32;
    (0u32..16, 0u32..=65_535, 0u32..=65_535).prop_map(move |(k, off, extra)| {
        let first_sqn = sqn.sub(k);
        // Offset 0 exactly on the first fragment.
        let offset = if k == 0 {
            0
        } else {
            1 + off % (65_535 - len).max(1)
        };
        let apdu_len = (offset + len + extra % (65_536 - offset - len)).min(65_535);
        Fragment {
            first_sqn,
            offset,
            apdu_len,
        }
    })
}

prop_compose! {
    fn header()(sport in any::<u16>(), dport in any::<u16>(), gsi in any::<[u8; 6]>(),
                parity in any::<bool>(), var_pktlen in any::<bool>())
        -> (u16, u16, Gsi, bool, bool) {
        (sport, dport, Gsi(gsi), parity, var_pktlen)
    }
}

/// An owned packet description (proptest values must be `'static`; `PacketRepr` borrows).
#[derive(Debug, Clone)]
struct Pkt {
    head: (u16, u16, Gsi, bool, bool),
    body: Body,
    options: Options,
    payload: Vec<u8>,
}

impl Pkt {
    fn repr(&self) -> PacketRepr<'_> {
        let (sport, dport, gsi, parity, var_pktlen) = self.head;
        PacketRepr {
            sport,
            dport,
            gsi,
            parity,
            var_pktlen,
            body: self.body,
            options: self.options,
            payload: &self.payload,
        }
    }
}

fn known_packet() -> impl Strategy<Value = Pkt> {
    (header(), body(), generic_options())
        .prop_flat_map(|(head, body, options)| {
            let is_data = matches!(body, Body::Odata(_) | Body::Rdata(_));
            let is_nak = matches!(body, Body::Nak(_) | Body::Nnak(_) | Body::Ncf(_));
            let payload = if is_data {
                vec(any::<u8>(), 0..300).boxed()
            } else {
                Just(Vec::new()).boxed()
            };
            let list = if is_nak {
                weighted(0.5, vec(sqn(), 1..=MAX_NAK_LIST)).boxed()
            } else {
                Just(None).boxed()
            };
            (Just(head), Just(body), Just(options), payload, list)
        })
        .prop_flat_map(|(head, body, mut options, payload, list)| {
            options.nak_list = list.map(|l| NakList::from_slice(&l));
            let frag = match body {
                Body::Odata(d) | Body::Rdata(d) if !payload.is_empty() => {
                    weighted(0.5, fragment(d.sqn, payload.len())).boxed()
                }
                _ => Just(None).boxed(),
            };
            (Just(head), Just(body), Just(options), Just(payload), frag)
        })
        .prop_map(|(head, body, mut options, payload, frag)| {
            options.fragment = frag;
            Pkt {
                head,
                body,
                options,
                payload,
            }
        })
        .prop_filter("at most 16 options", |p| count(&p.options) <= MAX_OPTIONS)
}

fn unknown_packet() -> impl Strategy<Value = Pkt> {
    (
        header(),
        any::<u8>().prop_filter(
            "unknown type",
            |t| !matches!(t, 0x00..=0x02 | 0x04 | 0x05 | 0x08..=0x0a | 0x0c | 0x0d),
        ),
        vec(any::<u8>(), 0..100),
    )
        .prop_map(|(head, t, payload)| Pkt {
            head,
            body: Body::Unknown(t),
            options: Options::default(),
            payload,
        })
}

fn packet() -> impl Strategy<Value = Pkt> {
    prop_oneof![9 => known_packet(), 1 => unknown_packet()]
}

/// A byte-level edit of a valid packet.
#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), vec(any::<u8>(), 1..8)).prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 1usize..8).prop_map(|(i, n)| Mutation::Remove(i, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let at = |i: usize| i % bytes.len();
    match m {
        Mutation::Set(i, v) => {
            let i = at(*i);
            bytes[i] = *v;
        }
        Mutation::Flip(i, b) => {
            let i = at(*i);
            bytes[i] ^= 1 << b;
        }
        Mutation::Truncate(n) => bytes.truncate(n % (bytes.len() + 1)),
        Mutation::Insert(i, v) => {
            let i = at(*i);
            bytes.splice(i..i, v.iter().copied());
        }
        Mutation::Remove(i, n) => {
            let i = at(*i);
            let end = (i + n).min(bytes.len());
            bytes.drain(i..end);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn emit_then_parse_is_identity(p in packet()) {
        let repr = p.repr();
        let bytes = repr.to_vec();
        prop_assert_eq!(bytes.len(), repr.buffer_len());
        prop_assert_eq!(PacketRepr::parse(&bytes), Ok(repr));
        prop_assert_eq!(PacketRepr::parse_verified(&bytes), Ok(repr));
        // Emission appends: what was in the buffer stays, and the packet is the same.
        let mut v = vec![0x55; 5];
        repr.emit(&mut v);
        prop_assert_eq!(&v[5..], &bytes[..]);
        let _ = repr.to_string();
        invariants::check(&bytes);
    }

    #[test]
    fn parsed_options_round_trip_alone(p in known_packet()) {
        let repr = p.repr();
        let bytes = repr.to_vec();
        let start = bytes.len() - p.payload.len() - p.options.buffer_len();
        if p.options.buffer_len() > 0 {
            let (o, used) = Options::parse(&bytes[start..]).unwrap();
            prop_assert_eq!(o, p.options);
            prop_assert_eq!(used, p.options.buffer_len());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..200)) {
        invariants::check(&bytes);
    }

    #[test]
    fn arbitrary_bytes_behind_a_valid_header_never_panic(
        t in prop_oneof![0u8..=0x0f, any::<u8>()],
        bits in any::<u8>(),
        tail in vec(any::<u8>(), 0..160),
    ) {
        // A plausible header makes the body and option parsers run on the random tail; the
        // TSDU length is set to match a guess at the option block so more inputs get deep.
        let mut b = vec![0x03, 0xe8, 0x1d, 0x4c, t, bits, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0];
        b.extend_from_slice(&tail);
        for tsdu in [0u16, tail.len() as u16, tail.len().saturating_sub(8) as u16] {
            b[14..16].copy_from_slice(&tsdu.to_be_bytes());
            invariants::check(&b);
        }
    }

    #[test]
    fn mutated_valid_packets_never_panic(p in packet(), ms in vec(mutation(), 1..4)) {
        let mut bytes = p.repr().to_vec();
        for m in &ms {
            apply(&mut bytes, m);
        }
        invariants::check(&bytes);
        // And with the checksum refreshed, so parse_verified gets past it.
        pgm::wire::checksum::fill(&mut bytes);
        invariants::check(&bytes);
    }

    #[test]
    fn mutated_option_blocks_never_panic(p in known_packet(), ms in vec(mutation(), 1..4)) {
        let bytes = p.repr().to_vec();
        let start = bytes.len() - p.payload.len() - p.options.buffer_len();
        let mut block = bytes[start..].to_vec();
        for m in &ms {
            apply(&mut block, m);
        }
        if let Ok((_, used)) = Options::parse(&block) {
            prop_assert!(used <= block.len());
        }
    }
}
