//! The async sockets (`pgm::socket::tokio`) over EPGM on the loopback.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::time::Duration;

use epgm::{open_receiver, open_sender, Options};
use pgm::{
    socket::{
        tokio::{AsyncRecvSocket, AsyncSendSocket},
        RecvError, SocketOptions,
    },
    Event,
};

fn endpoint(tag: u8) -> String {
    let pid = std::process::id();
    let port = 16_000 + (pid % 1_900) as u16 + u16::from(tag);
    format!(
        "epgm://127.0.0.1;239.195.{}.{}:{port}",
        (pid >> 8) as u8,
        tag
    )
}

fn opts(rate: Option<u64>) -> Options {
    Options::from(
        SocketOptions::default()
            .with_linger(Duration::from_millis(20))
            .with_rate(rate),
    )
}

/// Payloads of the next `n` data events.
async fn recv_n(rx: &AsyncRecvSocket, n: usize) -> Vec<u32> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Ok(Event::Data { apdu, .. })) => {
                got.push(u32::from_be_bytes(apdu[..4].try_into().unwrap()));
            }
            Ok(Ok(Event::Loss { .. })) => panic!("loss on the loopback"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("{e}"),
            Err(elapsed) => panic!("stalled after {} of {n}: {elapsed}", got.len()),
        }
    }
    got
}

#[tokio::test(flavor = "current_thread")]
async fn async_sender_to_async_receiver_with_backpressure() {
    const N: u32 = 20_000;
    let ep = endpoint(1);
    let rx = AsyncRecvSocket::new(open_receiver(&ep, &opts(None)).unwrap()).unwrap();
    // 40 Mbit/s and a 64 KiB queue: the sender has to wait for room many times, on one
    // thread shared with the receiver.
    let mut so = opts(Some(40_000_000));
    so.socket.driver.send_queue = 64 << 10;
    let tx = AsyncSendSocket::new(open_sender(&ep, &so).unwrap()).unwrap();
    let send = async {
        for i in 0..N {
            let mut msg = [0u8; 200];
            msg[..4].copy_from_slice(&i.to_be_bytes());
            tx.send(&msg).await.unwrap();
        }
        tx.flush().await.unwrap();
    };
    let (got, ()) = tokio::join!(recv_n(&rx, N as usize), send);
    assert_eq!(got, (0..N).collect::<Vec<_>>());
    let s = tx.stats();
    assert_eq!(s.engine.apdus_sent, u64::from(N));
    tx.close().await.unwrap();
}

/// A `recv` cancelled by `select!` (a timeout tick that keeps winning) never takes an event
/// it does not return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_receives_lose_nothing() {
    const N: u32 = 5_000;
    let ep = endpoint(2);
    let rx = AsyncRecvSocket::new(open_receiver(&ep, &opts(None)).unwrap()).unwrap();
    let tx = AsyncSendSocket::new(open_sender(&ep, &opts(Some(8_000_000))).unwrap()).unwrap();
    let sender = tokio::spawn(async move {
        for i in 0..N {
            tx.send(&i.to_be_bytes()).await.unwrap();
            if i % 500 == 0 {
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        }
        tx.close().await.unwrap();
    });
    let mut got = Vec::new();
    let mut cancelled = 0u32;
    let mut tick = tokio::time::interval(Duration::from_micros(200));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while got.len() < N as usize {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stalled at {}",
            got.len()
        );
        tokio::select! {
            ev = rx.recv() => match ev.unwrap() {
                Event::Data { apdu, .. } => got.push(u32::from_be_bytes(apdu[..4].try_into().unwrap())),
                Event::Loss { .. } => panic!("loss on the loopback"),
                _ => {}
            },
            _ = tick.tick() => cancelled += 1,
        }
    }
    sender.await.unwrap();
    assert_eq!(got, (0..N).collect::<Vec<_>>());
    assert!(cancelled > 10, "the race was never run: {cancelled}");
}

#[tokio::test(flavor = "current_thread")]
async fn recv_many_takes_batches() {
    let ep = endpoint(3);
    let rx = AsyncRecvSocket::new(open_receiver(&ep, &opts(None)).unwrap()).unwrap();
    let tx = AsyncSendSocket::new(open_sender(&ep, &opts(None)).unwrap()).unwrap();
    for i in 0..1000u32 {
        tx.send(&i.to_be_bytes()).await.unwrap();
    }
    tx.flush().await.unwrap();
    let mut events = Vec::new();
    let mut data = 0;
    while data < 1000 {
        tokio::time::timeout(Duration::from_secs(10), rx.recv_many(&mut events))
            .await
            .unwrap()
            .unwrap();
        data = events
            .iter()
            .filter(|e| matches!(e, Event::Data { .. }))
            .count();
    }
    assert_eq!(rx.try_recv(), Err(RecvError::Empty));
    let rx = rx.into_inner();
    rx.close();
    assert_eq!(rx.try_recv(), Err(RecvError::Closed));
}

#[test]
fn outside_a_runtime_is_a_clear_error() {
    let rx = open_receiver(&endpoint(4), &opts(None)).unwrap();
    let e = AsyncRecvSocket::new(rx).unwrap_err();
    assert!(e.to_string().contains("tokio runtime"), "{e}");
}
