//! Source-specific multicast on the loopback (issue 14): a receiver joined to (S, G) gets the
//! session of a sender at S and nothing of one elsewhere; bad sources are clear errors.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::{net::IpAddr, time::Duration};

use epgm::{open_receiver, open_sender, Options};
use pgm::{
    socket::{RecvError, SocketOptions},
    Event,
};

fn endpoint(tag: u8) -> String {
    let pid = std::process::id();
    let port = 14_000 + (pid % 1_900) as u16 + u16::from(tag);
    format!("epgm://127.0.0.1;232.1.{}.{}:{port}", (pid >> 8) as u8, tag)
}

fn opts(sources: &[&str]) -> Options {
    Options::from(
        SocketOptions::default()
            .with_linger(Duration::from_millis(20))
            .with_sources(
                sources
                    .iter()
                    .map(|s| s.parse::<IpAddr>().unwrap())
                    .collect(),
            ),
    )
}

/// Data events until `timeout` passes without one.
fn data_events(rx: &pgm::socket::RecvSocket, timeout: Duration) -> usize {
    let mut n = 0;
    loop {
        match rx.recv_timeout(timeout) {
            Ok(Event::Data { .. }) => n += 1,
            Ok(_) => {}
            Err(RecvError::Timeout) => return n,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn only_the_joined_source_gets_through() {
    let ep = endpoint(1);
    let joined = open_receiver(&ep, &opts(&["127.0.0.1"])).unwrap();
    let other = open_receiver(&ep, &opts(&["127.0.0.2"])).unwrap();
    let tx = open_sender(&ep, &opts(&[])).unwrap();
    for i in 0..200u32 {
        tx.send(&i.to_be_bytes()).unwrap();
    }
    tx.flush().unwrap();
    assert_eq!(data_events(&joined, Duration::from_millis(500)), 200);
    assert_eq!(data_events(&other, Duration::from_millis(200)), 0);
    assert_eq!(other.stats().engine.odata_received, 0);
}

#[test]
fn bad_sources_are_clear_errors() {
    let ep = endpoint(2);
    let e = open_receiver(&ep, &opts(&["239.1.1.1"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a unicast address"), "{e}");
    let e = open_receiver(&ep, &opts(&["::1"])).unwrap_err().to_string();
    assert!(e.contains("different address families"), "{e}");
    // A sender ignores sources (it joins nothing).
    assert!(open_sender(&ep, &opts(&["239.1.1.1"])).is_ok());
}
