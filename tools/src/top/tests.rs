//! Tests of the statistics with packets built by `pgm::wire`, of the capture fixture, and of
//! the view on ratatui's in-memory backend.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
};

use clap::Parser;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use pcap_file::DataLink;
use pgm::wire::{Body, Data, Gsi, Nak, NakList, Options, PacketRepr, PacketType, SeqNo, Spm, Tsi};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use ratatui::{backend::TestBackend, Terminal};
use serde_json::Value;

use super::{
    columns::text_table,
    loss::SPAN,
    rate::BUCKETS,
    ui::{draw, key_action, Action, View},
    Args, Column, PacketFeed, Report, Row, Sort, TopError, TopTable,
};
use crate::{
    dump::{decode::IPPROTO_PGM, pcap::for_each_frame, read_records, Encap, Filter, Record, What},
    frames,
};

const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const RX1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const RX2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
const GRP: Ipv4Addr = Ipv4Addr::new(239, 192, 1, 1);
const GSI: Gsi = Gsi([1, 2, 3, 4, 5, 6]);
const SPORT: u16 = 1000;
const DPORT: u16 = 7500;
const T0: f64 = 1_700_000_000.0;
const TSI: Tsi = Tsi::new(GSI, SPORT);

fn packet(body: Body, options: &Options, payload: &[u8]) -> Vec<u8> {
    let upstream = body.packet_type().is_upstream();
    let (sport, dport) = if upstream {
        (DPORT, SPORT)
    } else {
        (SPORT, DPORT)
    };
    PacketRepr {
        sport,
        dport,
        gsi: GSI,
        parity: false,
        var_pktlen: false,
        body,
        options: *options,
        payload,
    }
    .to_vec()
}

fn odata(sqn: u32, len: usize) -> Vec<u8> {
    let d = Data {
        sqn: SeqNo(sqn),
        trail: SeqNo(0),
    };
    packet(Body::Odata(d), &Options::default(), &vec![0x5a; len])
}

fn rdata(sqn: u32, len: usize) -> Vec<u8> {
    let d = Data {
        sqn: SeqNo(sqn),
        trail: SeqNo(0),
    };
    packet(Body::Rdata(d), &Options::default(), &vec![0x5a; len])
}

fn nak_body(sqn: u32) -> Nak {
    Nak {
        sqn: SeqNo(sqn),
        src_nla: SRC.into(),
        grp_nla: GRP.into(),
    }
}

fn nak(sqn: u32, also: &[u32]) -> Vec<u8> {
    let options = if also.is_empty() {
        Options::default()
    } else {
        let list: Vec<SeqNo> = also.iter().map(|s| SeqNo(*s)).collect();
        Options {
            nak_list: Some(NakList::from_slice(&list)),
            ..Options::default()
        }
    };
    packet(Body::Nak(nak_body(sqn)), &options, &[])
}

fn spm() -> Vec<u8> {
    packet(
        Body::Spm(Spm {
            spm_sqn: SeqNo(1),
            trail: SeqNo(0),
            lead: SeqNo(0),
            path: SRC.into(),
        }),
        &Options::default(),
        &[],
    )
}

/// A raw-PGM record from `src` to `dst` at `time`.
fn record(time: f64, src: Ipv4Addr, dst: Ipv4Addr, data: Vec<u8>) -> Record {
    Record {
        frame: 0,
        time,
        src: src.into(),
        dst: dst.into(),
        what: What::Pgm {
            encap: Encap::Raw,
            data,
        },
        gso: None,
    }
}

fn table() -> TopTable {
    TopTable::new(1.0, 4096)
}

fn feed() -> PacketFeed {
    PacketFeed::default()
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../pgm/tests/fixtures/openpgm.pcap")
}

#[test]
fn odata_rate_bytes_and_origin() {
    let (mut t, f) = (table(), feed());
    // 100 ODATA/s of 125 bytes for 2 s: 0.1 Mbit/s of TSDU.
    for i in 0..200u32 {
        let time = T0 + f64::from(i) / 100.0;
        f.record(&mut t, &record(time, SRC, GRP, odata(i, 125)));
    }
    let r = t.row(&TSI, T0 + 2.0).expect("the session has a row");
    assert_eq!((r.odata, r.odata_bytes), (200, 200 * 125));
    assert!((r.odata_per_s - 100.0).abs() < 1.5, "{r:?}");
    assert!((r.mbit_per_s - 0.1).abs() < 0.002, "{r:?}");
    assert_eq!(r.source, Some(IpAddr::from(SRC)));
    assert_eq!(r.group, Some(IpAddr::from(GRP)));
    assert_eq!(r.encap, Some("raw"));
    assert_eq!(r.lead_sqn, Some(199));
    assert_eq!((r.gaps, r.lost), (0, 0));
    // Rates fall to zero a window after the source stops; the totals stay.
    let later = t.row(&TSI, T0 + 4.0).expect("row");
    assert_eq!((later.odata_per_s, later.odata), (0.0, 200));
    assert!((later.idle_s - 2.01).abs() < 1e-6, "{later:?}");
}

#[test]
fn naks_and_ncfs_count_for_the_source_they_address() {
    let (mut t, f) = (table(), feed());
    f.record(&mut t, &record(T0, SRC, GRP, odata(0, 10)));
    f.record(&mut t, &record(T0 + 0.1, RX1, SRC, nak(5, &[6, 7])));
    f.record(&mut t, &record(T0 + 0.2, RX1, SRC, nak(8, &[])));
    f.record(&mut t, &record(T0 + 0.3, RX2, SRC, nak(8, &[])));
    let ncf = packet(Body::Ncf(nak_body(8)), &Options::default(), &[]);
    f.record(&mut t, &record(T0 + 0.4, SRC, GRP, ncf));
    let nnak = packet(Body::Nnak(nak_body(8)), &Options::default(), &[]);
    f.record(&mut t, &record(T0 + 0.5, RX1, SRC, nnak));
    f.record(&mut t, &record(T0 + 0.6, SRC, GRP, spm()));
    let spmr = packet(Body::Spmr, &Options::default(), &[]);
    f.record(&mut t, &record(T0 + 0.7, RX2, SRC, spmr));
    // All of it is one session: the source's TSI (NAKs carry it with the ports swapped).
    assert_eq!(t.len(), 1, "{:?}", t.rows(T0 + 1.0, Sort::default()));
    let r = t.row(&TSI, T0 + 1.0).expect("row");
    assert_eq!((r.naks, r.nak_sqns, r.nakers), (3, 5, 2));
    assert_eq!((r.ncfs, r.nnaks, r.spms, r.other), (1, 1, 1, 1));
    assert!((r.naks_per_s - 3.0).abs() < 1e-9, "{r:?}");
    // The NAKers are not the source: origin comes from the source's own packets only.
    assert_eq!(r.source, Some(IpAddr::from(SRC)));
    assert_eq!(t.counters().pgm, 8);
}

#[test]
fn a_session_seen_only_through_naks_has_a_row_without_source() {
    let (mut t, f) = (table(), feed());
    f.record(&mut t, &record(T0, RX1, SRC, nak(1, &[])));
    let r = t.row(&TSI, T0).expect("row");
    assert_eq!((r.naks, r.nakers, r.odata), (1, 1, 0));
    assert_eq!((r.source, r.encap), (None, None));
    assert_eq!(Column::Source.cell(&r), "-");
}

#[test]
fn loss_is_gaps_not_filled_by_rdata() {
    let (mut t, f) = (table(), feed());
    let seen = [0, 1, 2, 5, 6, 8, 9];
    for (i, s) in seen.iter().enumerate() {
        f.record(
            &mut t,
            &record(T0 + i as f64 * 0.01, SRC, GRP, odata(*s, 10)),
        );
    }
    let r = t.row(&TSI, T0 + 1.0).expect("row");
    assert_eq!((r.gaps, r.repaired, r.lost), (3, 0, 3));
    f.record(&mut t, &record(T0 + 0.5, SRC, GRP, rdata(3, 10)));
    f.record(&mut t, &record(T0 + 0.5, SRC, GRP, rdata(7, 10)));
    // An RDATA for a sqn whose ODATA was seen (a receiver's loss) is no repair here.
    f.record(&mut t, &record(T0 + 0.5, SRC, GRP, rdata(1, 10)));
    let r = t.row(&TSI, T0 + 1.0).expect("row");
    assert_eq!((r.gaps, r.repaired, r.lost, r.rdata), (3, 2, 1, 3));
    assert_eq!(Column::Lost.cell(&r), "1");
}

#[test]
fn sessions_are_bounded_and_the_least_recently_seen_go_first() {
    let mut t = TopTable::new(1.0, 4);
    let f = feed();
    let tsi = |sport: u16| Tsi::new(GSI, sport);
    for sport in 1..=10u16 {
        let mut p = odata(0, 10);
        p[0..2].copy_from_slice(&sport.to_be_bytes());
        // The checksum covers the port: re-emit instead of patching.
        let p = PacketRepr::parse(&p)
            .map(|r| r.to_vec())
            .expect("re-emitted packet");
        f.record(&mut t, &record(T0 + f64::from(sport), SRC, GRP, p));
        if sport == 7 {
            // Session 7 was seen first among 7..10, but it is touched again below.
        }
    }
    assert_eq!((t.len(), t.counters().evicted), (4, 6));
    for sport in 7..=10 {
        assert!(t.row(&tsi(sport), T0).is_some(), "session {sport} kept");
    }
    // Touch 7, then a new session evicts 8 (now the least recently seen), not 7.
    t.observe(T0 + 11.0, tsi(7), None, super::Observation::Spm);
    t.observe(T0 + 12.0, tsi(11), None, super::Observation::Spm);
    assert!(t.row(&tsi(7), T0).is_some());
    assert!(t.row(&tsi(8), T0).is_none());
    assert_eq!(t.counters().evicted, 7);
}

#[test]
fn forged_tsis_cannot_grow_the_table() {
    let mut t = TopTable::new(1.0, 4096);
    let mut rng = SmallRng::seed_from_u64(7);
    for i in 0..50_000u32 {
        let tsi = Tsi::new(Gsi(rng.gen()), rng.gen());
        let obs = super::Observation::Nak {
            sqns: 1,
            receiver: IpAddr::from(rng.gen::<[u8; 4]>()),
        };
        t.observe(T0 + f64::from(i) * 1e-4, tsi, None, obs);
    }
    assert_eq!(t.len(), 4096);
    assert_eq!(t.counters().evicted, 50_000 - 4096);
    assert_eq!(t.rows(T0 + 5.0, Sort::default()).len(), 4096);
}

#[test]
fn nakers_are_bounded_per_session() {
    let mut t = table();
    for i in 0..1000u32 {
        let obs = super::Observation::Nak {
            sqns: 1,
            receiver: IpAddr::from(Ipv4Addr::from(0x0a00_0000 + i)),
        };
        t.observe(T0, TSI, None, obs);
    }
    let r = t.row(&TSI, T0).expect("row");
    assert_eq!((r.naks, r.nakers, r.nakers_capped), (1000, 256, true));
    assert_eq!(Column::Nakers.cell(&r), "256+");
}

#[test]
fn bad_packets_are_counted_and_never_panic() {
    let (mut t, f) = (table(), feed());
    // Truncated header.
    f.record(&mut t, &record(T0, SRC, GRP, vec![0, 1, 2, 3, 4]));
    // A flipped payload byte: bad checksum.
    let mut bad = odata(1, 20);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    f.record(&mut t, &record(T0, SRC, GRP, bad));
    // ODATA without a checksum (receivers drop it too).
    let mut zero = odata(2, 20);
    zero[6..8].copy_from_slice(&[0, 0]);
    f.record(&mut t, &record(T0, SRC, GRP, zero));
    // TSDU length disagreeing with the bytes present (checksum recomputed so it parses that far).
    let mut short = odata(3, 20);
    short.truncate(short.len() - 4);
    let mut p = pgm::wire::Packet::new_checked(&mut short[..]).expect("header");
    p.fill_checksum();
    f.record(&mut t, &record(T0, SRC, GRP, short));
    let c = t.counters();
    assert_eq!((c.malformed, c.bad_checksum, c.pgm), (2, 2, 0), "{c:?}");
    assert!(t.is_empty());

    // Random frames, and random bytes behind valid IPv4/UDP headers: counted, no panic.
    let mut rng = SmallRng::seed_from_u64(3208);
    let f = PacketFeed {
        udp_ports: vec![DPORT],
        filter: Filter::default(),
    };
    for i in 0..20_000 {
        let len = rng.gen_range(0..200);
        let junk: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let frame = match i % 3 {
            0 => junk,
            1 => frames::ipv4(SRC, GRP, IPPROTO_PGM, &junk),
            _ => frames::udp4(SRC, GRP, DPORT, DPORT, &junk),
        };
        f.frame(&mut t, DataLink::RAW, T0, &frame);
    }
    let c = t.counters();
    assert_eq!(c.frames, 20_000);
    assert!(c.malformed + c.bad_checksum > 10_000, "{c:?}");
}

#[test]
fn group_and_port_filter_and_epgm_on_the_port() {
    let args =
        Args::try_parse_from(["pgm-top", "--read", "x.pcap", "--port", "7600"]).expect("args");
    let f = args.feed();
    assert!(f.udp_ports.contains(&7600) && f.udp_ports.contains(&3055));
    let mut t = args.table();
    // EPGM on UDP 7600: decoded and kept.
    let p = odata(0, 10);
    f.frame(
        &mut t,
        DataLink::RAW,
        T0,
        &frames::udp4(SRC, GRP, 7600, 7600, &p),
    );
    // Raw PGM on PGM ports 1000 > 7500: filtered out by --port 7600.
    f.frame(
        &mut t,
        DataLink::RAW,
        T0,
        &frames::ipv4(SRC, GRP, IPPROTO_PGM, &p),
    );
    let c = t.counters();
    assert_eq!((c.pgm, c.filtered), (1, 1), "{c:?}");
    assert_eq!(t.rows(T0, Sort::default())[0].encap, Some("udp"));

    let args =
        Args::try_parse_from(["pgm-top", "--read", "x", "--group", "239.1.1.1"]).expect("args");
    let mut t = args.table();
    args.feed().frame(
        &mut t,
        DataLink::RAW,
        T0,
        &frames::ipv4(SRC, GRP, IPPROTO_PGM, &p),
    );
    assert_eq!((t.counters().filtered, t.len()), (1, 0));
}

/// ODATA/RDATA/NAK/NCF/SPM counts per session of the fixture as pgm-dump's decoder sees them.
fn fixture_counts() -> HashMap<(Tsi, PacketType), u64> {
    let mut counts = HashMap::new();
    for rec in read_records(&fixture(), &[7500]).expect("fixture") {
        if let Some(Ok(r)) = rec.parse() {
            *counts.entry((r.tsi(), r.packet_type())).or_insert(0) += 1;
        }
    }
    counts
}

fn fixture_table(feed: &PacketFeed) -> TopTable {
    let mut t = table();
    for_each_frame(&fixture(), |c| {
        feed.frame(&mut t, c.linktype, c.time, c.data);
        Ok(true)
    })
    .expect("fixture");
    t
}

#[test]
fn fixture_counts_match_the_decoder() {
    let f = PacketFeed {
        udp_ports: vec![7500],
        filter: Filter::default(),
    };
    let t = fixture_table(&f);
    let now = t.latest().expect("packets");
    let rows = t.rows(now, Sort::default());
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let want = fixture_counts();
    let n = |tsi, ty| want.get(&(tsi, ty)).copied().unwrap_or(0);
    let mut encaps: Vec<_> = rows.iter().filter_map(|r| r.encap).collect();
    encaps.sort_unstable();
    assert_eq!(encaps, ["raw", "udp"]);
    for r in &rows {
        assert_eq!(r.odata, n(r.tsi, PacketType::Odata), "{r:?}");
        assert_eq!(r.rdata, n(r.tsi, PacketType::Rdata), "{r:?}");
        assert_eq!(r.naks, n(r.tsi, PacketType::Nak), "{r:?}");
        assert_eq!(r.ncfs, n(r.tsi, PacketType::Ncf), "{r:?}");
        assert_eq!(r.spms, n(r.tsi, PacketType::Spm), "{r:?}");
        assert!(r.odata > 100 && r.naks > 5 && r.rdata > 5, "{r:?}");
        // OpenPGM's receiver (10.99.1.2) NAKs; the capture on the bridge saw every ODATA.
        assert_eq!((r.nakers, r.lost, r.gaps), (1, 0, 0), "{r:?}");
        assert_eq!(r.source, Some(IpAddr::from(Ipv4Addr::new(10, 99, 1, 1))));
        assert_eq!(r.lead_sqn, Some(119));
    }
    let c = t.counters();
    assert_eq!(
        (c.frames, c.malformed, c.bad_checksum),
        (341, 0, 0),
        "{c:?}"
    );
    assert_eq!(c.pgm, want.values().sum::<u64>());
}

#[test]
fn fixture_with_odata_missing_from_the_capture_shows_loss() {
    let f = PacketFeed {
        udp_ports: vec![7500],
        filter: Filter::default(),
    };
    let records = read_records(&fixture(), &[7500]).expect("fixture");
    let data_sqn = |rec: &Record, want_rdata: bool| match (rec.parse(), &rec.what) {
        (Some(Ok(r)), What::Pgm { encap, .. }) => match r.body {
            Body::Odata(d) if !want_rdata => Some((*encap, d.sqn.0)),
            Body::Rdata(d) if want_rdata => Some((*encap, d.sqn.0)),
            _ => None,
        },
        _ => None,
    };
    // A sqn of the UDP session that OpenPGM repaired with RDATA in the capture.
    let repaired = records
        .iter()
        .filter_map(|r| data_sqn(r, true))
        .find(|(e, _)| *e != Encap::Raw)
        .expect("an RDATA in the UDP session")
        .1;
    // Drop the raw session's ODATA 5 and 6 (never repaired in the capture) and the UDP
    // session's ODATA `repaired` before the table sees them.
    let mut t = table();
    for rec in &records {
        let drop = data_sqn(rec, false).is_some_and(|(e, sqn)| {
            if e == Encap::Raw {
                matches!(sqn, 5 | 6)
            } else {
                sqn == repaired
            }
        });
        if !drop {
            f.record(&mut t, rec);
        }
    }
    let now = t.latest().expect("packets");
    let by_encap = |e: &str| {
        t.rows(now, Sort::default())
            .into_iter()
            .find(|r| r.encap == Some(e))
            .expect("row")
    };
    let raw = by_encap("raw");
    assert_eq!((raw.gaps, raw.repaired, raw.lost), (2, 0, 2), "{raw:?}");
    let udp = by_encap("udp");
    assert_eq!((udp.gaps, udp.repaired, udp.lost), (1, 1, 0), "{udp:?}");
}

#[test]
fn sort_orders_and_keys() {
    let mut t = table();
    for (sport, naks) in [(1u16, 5u32), (2, 9), (3, 1)] {
        for _ in 0..naks {
            let obs = super::Observation::Nak {
                sqns: 1,
                receiver: RX1.into(),
            };
            t.observe(T0 + f64::from(sport), Tsi::new(GSI, sport), None, obs);
        }
    }
    let ports = |rows: Vec<Row>| rows.iter().map(|r| r.tsi.sport).collect::<Vec<_>>();
    let by_nak = Sort {
        column: Column::Nak,
        reverse: false,
    };
    assert_eq!(ports(t.rows(T0 + 3.0, by_nak)), [2, 1, 3]);
    assert_eq!(ports(t.rows(T0 + 3.0, by_nak.reversed())), [3, 1, 2]);
    let by_tsi = Sort {
        column: Column::Tsi,
        reverse: false,
    };
    assert_eq!(ports(t.rows(T0 + 3.0, by_tsi)), [1, 2, 3]);
    let by_last = Sort {
        column: Column::Last,
        reverse: false,
    };
    assert_eq!(ports(t.rows(T0 + 3.0, by_last)), [3, 2, 1]);

    let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
    let s = Sort::default();
    assert_eq!(key_action(key(KeyCode::Char('q')), s), Some(Action::Quit));
    assert_eq!(key_action(key(KeyCode::Esc), s), Some(Action::Quit));
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(key_action(ctrl_c, s), Some(Action::Quit));
    assert_eq!(
        key_action(key(KeyCode::Right), s),
        Some(Action::Sort(Sort {
            column: Column::Mbps,
            reverse: false
        }))
    );
    assert_eq!(
        key_action(key(KeyCode::Left), s),
        Some(Action::Sort(Sort {
            column: Column::Source,
            reverse: false
        }))
    );
    assert_eq!(
        key_action(key(KeyCode::Char('r')), s),
        Some(Action::Sort(s.reversed()))
    );
    assert_eq!(key_action(key(KeyCode::Char('z')), s), None);
    // Walking right through every column comes back.
    let mut w = s;
    for _ in Column::ALL {
        w = w.next();
    }
    assert_eq!(w, s);
}

#[test]
fn view_draws_the_rows_on_a_terminal() {
    let (mut t, f) = (table(), feed());
    for i in 0..50u32 {
        f.record(
            &mut t,
            &record(T0 + f64::from(i) * 0.02, SRC, GRP, odata(i, 100)),
        );
    }
    f.record(&mut t, &record(T0 + 0.5, RX1, SRC, nak(3, &[])));
    let rows = t.rows(T0 + 1.0, Sort::default());
    let view = View {
        input: "eth0 port 7500",
        rows: &rows,
        sort: Sort::default(),
        counters: t.counters(),
        tracked: (t.len(), 4096),
        window: 1.0,
    };
    let mut term = Terminal::new(TestBackend::new(140, 6)).expect("terminal");
    term.draw(|fr| draw(fr, &view)).expect("draw");
    let buf = term.backend().buffer();
    let lines: Vec<String> = (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect();
    let screen = lines.join("\n");
    assert!(
        lines[0].contains("pgm-top") && lines[0].contains("eth0 port 7500"),
        "{screen}"
    );
    assert!(
        lines[1].contains("TSI") && lines[1].contains("ODATA/s"),
        "{screen}"
    );
    let row = &lines[2];
    assert!(row.starts_with("1.2.3.4.5.6.1000"), "{screen}");
    let cells: Vec<&str> = row.split_whitespace().collect();
    // TSI SOURCE ODATA/s Mbit/s ODATA RDATA NAK NCF LOST NAKERS SPM LAST
    assert_eq!(cells[1], "10.0.0.1", "{screen}");
    assert_eq!(cells[2], "50", "{screen}");
    assert_eq!(&cells[4..10], ["50", "0", "1", "0", "0", "1"], "{screen}");
    assert!(
        lines[5].contains("pgm 51") && lines[5].contains("q quit"),
        "{screen}"
    );
    // The text report lays out the same cells.
    let text = text_table(&rows);
    let words: Vec<&str> = text
        .lines()
        .nth(1)
        .expect("row")
        .split_whitespace()
        .collect();
    assert_eq!(words, cells, "{text}");
}

#[test]
fn json_report_and_run_once_on_the_fixture() {
    let args = Args::try_parse_from([
        "pgm-top",
        "--read",
        &fixture().display().to_string(),
        "--udp-port",
        "7500",
        "--once",
        "--json",
        "--sort",
        "nak",
    ])
    .expect("args");
    let mut out = Vec::new();
    let report = super::run_once(&args, &mut out, &mut |_| {}).expect("run");
    let doc: Value = serde_json::from_slice(&out).expect("one JSON document");
    assert_eq!(doc["tool"], "pgm-top");
    assert_eq!(doc["sort"], "nak");
    assert_eq!(doc["counters"]["frames"], 341);
    let sessions = doc["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 2);
    // Sorted by NAKs, most first.
    assert!(sessions[0]["naks"].as_u64() >= sessions[1]["naks"].as_u64());
    assert_eq!(sessions[0]["tsi"], report.sessions[0].tsi.to_string());
    let r = Report::new(&TopTable::new(1.0, 1), 0.0, Sort::default(), 1);
    assert_eq!(
        serde_json::from_str::<Value>(&r.to_json()).expect("json")["sessions"],
        serde_json::json!([])
    );
}

#[test]
fn command_line_errors_are_clear() {
    let err = |argv: &[&str]| {
        Args::try_parse_from(argv)
            .expect_err("rejected")
            .to_string()
    };
    assert!(err(&["pgm-top", "--json"]).contains("--once"));
    assert!(err(&["pgm-top", "--read", "f", "--interval", "0"]).contains("out of range"));
    assert!(err(&["pgm-top", "--read", "f", "--sort", "bogus"]).contains("possible values"));
    assert!(err(&["pgm-top", "--read", "f", "--iface", "lo"]).contains("cannot be used"));
    assert!(err(&["pgm-top", "--read", "f", "--max-sessions", "0"]).contains("out of range"));

    let args = Args::try_parse_from(["pgm-top", "--once"]).expect("args");
    let e = super::run_once(&args, &mut Vec::new(), &mut |_| {}).expect_err("no input");
    assert!(matches!(e, TopError::NoInput));
    assert!(e.to_string().contains("--iface IFACE") && e.to_string().contains("--read FILE"));

    let args =
        Args::try_parse_from(["pgm-top", "--once", "--iface", "pgm-no-such-if0"]).expect("args");
    let e = super::run_once(&args, &mut Vec::new(), &mut |_| {}).expect_err("no interface");
    assert!(
        e.to_string().contains("no interface pgm-no-such-if0"),
        "{e}"
    );

    let e = TopError::from(crate::dump::DumpError::NotPermitted {
        iface: "eth0".into(),
        err: std::io::Error::from_raw_os_error(libc::EPERM),
    });
    let msg = e.to_string();
    assert!(
        msg.contains("root") && msg.contains("CAP_NET_RAW") && msg.contains("--read"),
        "{msg}"
    );
}

#[test]
fn rate_window_tracks_the_interval() {
    let args = Args::try_parse_from(["pgm-top", "--read", "f", "--interval", "2.5"]).expect("a");
    let t = args.table();
    assert!((t.window() - 2.5).abs() < 1e-9);
    // A loss SPAN and bucket count worth documenting stay what the docs say.
    assert_eq!((SPAN, BUCKETS), (4096, 10));
}
