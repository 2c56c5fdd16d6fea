//! The sockets' readiness descriptors (`AsFd`) on the loopback: level-triggered, readable
//! while a receiver has events queued, writable while a sender's next message fits.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::{
    os::fd::{AsRawFd, RawFd},
    time::Duration,
};

use epgm::{open_receiver, open_sender, Options};
use pgm::{
    socket::{Clock, RecvError, SendError, SocketOptions},
    Event,
};

fn endpoint(tag: u8) -> String {
    let pid = std::process::id();
    let port = 18_000 + (pid % 1_900) as u16 + u16::from(tag);
    format!(
        "epgm://127.0.0.1;239.194.{}.{}:{port}",
        (pid >> 8) as u8,
        tag
    )
}

fn opts() -> Options {
    Options::from(SocketOptions::default().with_linger(Duration::from_millis(20)))
}

/// Whether `fd` shows `events` within `wait`.
fn shows(fd: RawFd, events: libc::c_short, wait: Duration) -> bool {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms = i32::try_from(wait.as_millis()).unwrap();
    // SAFETY: one live pollfd.
    let n = unsafe { libc::poll(&raw mut p, 1, ms) };
    n == 1 && p.revents & events != 0
}

fn readable(fd: RawFd, wait: Duration) -> bool {
    shows(fd, libc::POLLIN, wait)
}

fn writable(fd: RawFd, wait: Duration) -> bool {
    shows(fd, libc::POLLOUT, wait)
}

const NOW: Duration = Duration::ZERO;
const SOON: Duration = Duration::from_secs(5);

/// Receives data events with `try_recv` until the queue is empty; returns their payloads.
fn drain(rx: &pgm::socket::RecvSocket) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(Event::Data { apdu, .. }) => got.push(apdu.to_vec()),
            Ok(_) => {}
            Err(RecvError::Empty) => return got,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn receiver_descriptor_is_level_triggered() {
    let ep = endpoint(1);
    let rx = open_receiver(&ep, &opts()).unwrap();
    let fd = rx.as_raw_fd();
    let tx = open_sender(&ep, &opts()).unwrap();
    assert!(!readable(fd, Duration::from_millis(50)), "nothing sent yet");

    // An event loop: wait, then take everything; the descriptor wakes it for each batch.
    let mut got = Vec::new();
    for round in 0..5u32 {
        for i in 0..100u32 {
            tx.send(&(round * 100 + i).to_be_bytes()).unwrap();
        }
        tx.flush().unwrap();
        let clock = Clock::new();
        while got.len() < ((round + 1) * 100) as usize {
            assert!(readable(fd, SOON), "round {round}: {} received", got.len());
            got.extend(drain(&rx));
            assert!(clock.elapsed() < SOON, "round {round} stalled");
        }
        assert!(!readable(fd, NOW), "queue drained: not readable");
    }
    let want: Vec<Vec<u8>> = (0..500u32).map(|i| i.to_be_bytes().to_vec()).collect();
    assert_eq!(got, want);

    // Level-triggered: taking one event of many leaves it readable.
    for i in 0..50u32 {
        tx.send(&i.to_be_bytes()).unwrap();
    }
    tx.flush().unwrap();
    let clock = Clock::new();
    let mut left = 50;
    while left > 0 {
        assert!(readable(fd, SOON));
        if let Ok(Event::Data { .. }) = rx.try_recv() {
            left -= 1;
            if left > 0 && readable(fd, NOW) {
                continue;
            }
        }
        assert!(clock.elapsed() < SOON, "{left} left");
    }
    assert!(!readable(fd, NOW));
}

#[test]
fn blocking_receives_keep_the_descriptor_exact() {
    let ep = endpoint(2);
    let rx = open_receiver(&ep, &opts()).unwrap();
    let fd = rx.as_raw_fd();
    let tx = open_sender(&ep, &opts()).unwrap();
    for i in 0..20u32 {
        tx.send(&i.to_be_bytes()).unwrap();
    }
    tx.flush().unwrap();
    let mut n = 0;
    while n < 20 {
        if let Event::Data { .. } = rx.recv_timeout(SOON).unwrap() {
            n += 1;
        }
    }
    // Whatever else is queued (a new-peer event at most), take it the blocking way too.
    while readable(fd, NOW) {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Event::Data { .. }) => panic!("only 20 were sent"),
            Ok(_) => {}
            Err(RecvError::Timeout) => panic!("readable, but recv found nothing"),
            Err(e) => panic!("{e}"),
        }
    }
    assert!(matches!(rx.try_recv(), Err(RecvError::Empty)));
    assert!(!readable(fd, NOW));
}

#[test]
fn closed_receiver_is_readable_and_says_why() {
    let rx = open_receiver(&endpoint(3), &opts()).unwrap();
    let fd = rx.as_raw_fd();
    assert!(!readable(fd, NOW));
    rx.close();
    assert!(readable(fd, NOW));
    assert!(matches!(rx.try_recv(), Err(RecvError::Closed)));
}

/// Fills the send queue with `msg` until it refuses one, then offers `next`: true when `next`
/// was refused too and the descriptor, looked at right then, was not writable. The IO thread
/// may free room at any moment, so a single look can race it; callers retry.
fn refused_and_unwritable(
    tx: &pgm::socket::SendSocket,
    fd: RawFd,
    msg: &[u8],
    next: &[u8],
) -> bool {
    while tx.try_send(msg).is_ok() {}
    tx.try_send(next) == Err(SendError::WouldBlock) && !writable(fd, NOW)
}

#[test]
fn sender_descriptor_is_writable_while_the_next_message_fits() {
    let ep = endpoint(4);
    // 1 Mbit/s and a 16 KiB queue: once the engine's own buffer is full, room comes back one
    // 1 KiB message per ~8 ms.
    let mut so = SocketOptions::default()
        .with_linger(Duration::from_millis(20))
        .with_rate(Some(1_000_000));
    so.driver.send_queue = 16 << 10;
    let tx = open_sender(&ep, &Options::from(so)).unwrap();
    let fd = tx.as_raw_fd();
    assert!(writable(fd, NOW));
    let msg = [7u8; 1000];
    // Fill the engine's buffer behind the queue (blocking sends wait for room).
    for _ in 0..300 {
        tx.send(&msg).unwrap();
    }
    // A refused message leaves the descriptor unwritable (seen at least once in a few tries:
    // an always-writable descriptor fails every one).
    assert!(
        (0..20).any(|_| refused_and_unwritable(&tx, fd, &msg, &msg)),
        "refused a message, yet writable"
    );
    // It turns writable when room comes back, and then the message fits.
    let t = Clock::new();
    assert!(writable(fd, SOON), "never writable again");
    assert!(t.elapsed() < Duration::from_secs(3));
    tx.try_send(&msg).unwrap();
    // A message larger than the room left keeps it unwritable until *that* one fits: once
    // writable, the big message is taken (no wake-up for room it cannot use).
    let big = vec![1u8; 12_000];
    assert!(
        (0..20).any(|_| refused_and_unwritable(&tx, fd, &msg, &big)),
        "refused the big message, yet writable"
    );
    assert!(writable(fd, SOON), "the big message never fit");
    tx.try_send(&big).unwrap();
}
