//! A/B sessions over loopback (docs/dual-path.md): a sender on two groups, receivers that
//! merge both paths, and one that hears only the second. Loss is simulated per path
//! (`Options::with_simulated_recv_loss`, seeded, independent on each path), so the test needs
//! no root. Ports: this file's window is 2000..2900 (tools/tests/dual_path_loopback.rs has
//! 2900..3800).

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::{collections::HashSet, time::Duration};

use epgm::Options;
use pgm::{
    socket::{Clock, Endpoint, OpenError, RecvSocket, SendSocket, SocketOptions},
    Event,
};

/// The first and second path of session `tag`: two groups on lo, one port.
fn paths(tag: u16) -> (String, Endpoint) {
    let pid = std::process::id();
    let port = 2_000 + (pid % 890) as u16 + tag;
    let hi = (pid >> 8) as u8;
    let first = format!("epgm://127.0.0.1;239.193.{hi}.{tag}:{port}");
    let second = Endpoint::parse(&format!("127.0.0.1;239.194.{hi}.{tag}:{port}")).unwrap();
    (first, second)
}

fn socket_options(second: Option<&Endpoint>) -> SocketOptions {
    let o = SocketOptions::default().with_linger(Duration::from_millis(300));
    match second {
        Some(s) => o.with_second_path(s.clone()),
        None => o,
    }
}

/// Receives `n` numbered messages, checking each arrives once and in order; panics on loss.
fn receive_all(rx: &RecvSocket, tx: &SendSocket, n: u32) {
    let clock = Clock::new();
    let mut next = 0u32;
    while next < n {
        assert!(
            clock.elapsed() < Duration::from_secs(20),
            "only {next} of {n} messages"
        );
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Event::Data { tsi, apdu }) => {
                assert_eq!(tsi, tx.tsi());
                let i = u32::from_be_bytes(apdu[..4].try_into().unwrap());
                assert_eq!(i, next, "out of order or delivered twice");
                next += 1;
            }
            Ok(Event::Loss { count, .. }) => panic!("{count} lost after {next} messages"),
            Ok(_) => {}
            Err(e) => panic!("after {next} messages: {e}"),
        }
    }
}

fn send_all(tx: &SendSocket, n: u32) {
    let mut msg = vec![0u8; 200];
    for i in 0..n {
        msg[..4].copy_from_slice(&i.to_be_bytes());
        tx.send(&msg).unwrap();
        if i % 64 == 0 {
            // Paced a little, so that the loopback socket buffers never overflow.
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    tx.flush().unwrap();
}

/// 5 % independent loss on each path: every message arrives once; the copies that arrive
/// second are counted as duplicates; NAKs are only for what both paths lost (≈ 0.25 %), far
/// fewer than a single path with the same loss needs.
#[test]
fn merged_paths_deliver_once_and_nak_only_what_both_lost() {
    const N: u32 = 4000;
    let (first, second) = paths(1);
    let lossy = |o: SocketOptions, seed| Options::from(o).with_simulated_recv_loss(0.05, seed);
    let dual = epgm::open_receiver(&first, &lossy(socket_options(Some(&second)), 11)).unwrap();
    let single = epgm::open_receiver(&first, &lossy(socket_options(None), 12)).unwrap();
    let tx = epgm::open_sender(&first, &Options::from(socket_options(Some(&second)))).unwrap();
    let reader = {
        let tx_tsi = tx.tsi();
        std::thread::spawn(move || {
            let mut got = HashSet::new();
            while got.len() < N as usize {
                match single.recv_timeout(Duration::from_secs(10)) {
                    Ok(Event::Data { tsi, apdu }) if tsi == tx_tsi => {
                        got.insert(u32::from_be_bytes(apdu[..4].try_into().unwrap()));
                    }
                    Ok(Event::Loss { count, .. }) => panic!("single path lost {count}"),
                    Ok(_) => {}
                    Err(e) => panic!("single path after {}: {e}", got.len()),
                }
            }
            single.stats()
        })
    };
    send_all(&tx, N);
    receive_all(&dual, &tx, N);
    let single = reader.join().unwrap();
    let d = dual.stats();
    eprintln!(
        "dual: {} NAKed sqns in {} NAKs, {} duplicates, {} packets on the second path, {} \
         dropped by simulated loss; single: {} NAKed sqns, {} dropped",
        d.engine.nak_sqns_sent,
        d.engine.naks_sent,
        d.engine.duplicates,
        d.io.transport.second_path_received,
        d.io.transport.simulated_loss,
        single.engine.nak_sqns_sent,
        single.io.transport.simulated_loss,
    );
    assert_eq!(d.engine.apdus_delivered, u64::from(N));
    assert_eq!(d.engine.lost_sqns, 0);
    // Both copies of most ODATA arrive: one is data, the other a duplicate.
    assert!(d.engine.duplicates > u64::from(N) * 8 / 10, "{d:?}");
    let second_share = d.io.transport.second_path_received * 100 / d.io.packets_received;
    assert!(
        (35..=65).contains(&second_share),
        "{second_share} % on path B"
    );
    // Expected 0.25 % of N = 10 both-lost sqns; a single path NAKs about 5 % = 200.
    assert!(d.engine.nak_sqns_sent <= 40, "{d:?}");
    assert!(single.engine.nak_sqns_sent >= 100, "{single:?}");
    assert!(d.engine.nak_sqns_sent * 5 < single.engine.nak_sqns_sent);
    let s = tx.stats();
    assert_eq!(s.io.transport.second_path_dropped, 0);
    assert!(s.io.transport.second_path_sent >= u64::from(N), "{s:?}");
    tx.close().unwrap();
}

/// Each path is an ordinary PGM session on its group: a receiver of the second group alone
/// (no second path configured) gets everything, and its NAKs (naming the second group) are
/// answered, with NCFs that name its group.
#[test]
fn a_receiver_of_the_second_group_alone_is_repaired() {
    const N: u32 = 2000;
    let (first, second) = paths(2);
    let b_url = format!("epgm://{second}");
    let opts = Options::from(socket_options(None)).with_simulated_recv_loss(0.05, 21);
    let rx = epgm::open_receiver(&b_url, &opts).unwrap();
    let tx = epgm::open_sender(&first, &Options::from(socket_options(Some(&second)))).unwrap();
    send_all(&tx, N);
    receive_all(&rx, &tx, N);
    let r = rx.stats();
    assert!(r.engine.naks_sent > 0 && r.engine.ncf_received > 0, "{r:?}");
    assert_eq!(r.engine.duplicates, 0, "{r:?}");
    let s = tx.stats();
    assert_eq!(s.engine.naks_bad_nla, 0, "{s:?}");
    assert!(s.engine.naks_received > 0, "{s:?}");
    tx.close().unwrap();
}

#[test]
fn a_bad_second_path_is_refused_with_a_clear_error() {
    let (first, _) = paths(3);
    let same = Endpoint::parse(first.trim_start_matches("epgm://")).unwrap();
    let msg = |r: Result<SendSocket, OpenError>| {
        let e = r.unwrap_err();
        assert!(e.is_usage(), "{e}");
        e.to_string()
    };
    let o = Options::from(socket_options(Some(&same)));
    let m = msg(epgm::open_sender(&first, &o));
    assert!(m.contains("same group as the first path"), "{m}");
    let port = first.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let other = Endpoint::parse(&format!("127.0.0.1;239.195.0.3:{}", port + 1)).unwrap();
    let m = msg(epgm::open_sender(
        &first,
        &Options::from(socket_options(Some(&other))),
    ));
    assert!(m.contains("differs from the first path's"), "{m}");
    if let Ok(v6) = Endpoint::parse(&format!("lo;[ff15::7]:{port}")) {
        let m = msg(epgm::open_sender(
            &first,
            &Options::from(socket_options(Some(&v6))),
        ));
        assert!(m.contains("address family"), "{m}");
    }
}
