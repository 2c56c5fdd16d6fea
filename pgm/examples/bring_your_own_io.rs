//! Bring your own IO: the sans-IO engine driven over the application's own UDP sockets.
//!
//! A `Source` and a `Receiver` each get a plain `std::net::UdpSocket` on the loopback and a
//! clock, and the loop below is the whole driver: packets in (`handle_packet`), timers
//! (`poll_timeout`/`handle_timeout`), packets out (`poll_transmit`), data up (`poll_event`).
//! PGM inside UDP is EPGM's wire format; the source "multicasts" to the receiver's unicast
//! address here so that the example needs no multicast set-up. Run it with
//! `cargo run -p pgm --example bring_your_own_io [COUNT]`.

use std::{
    error::Error,
    io::ErrorKind,
    net::{Ipv4Addr, UdpSocket},
    time::{Duration, Instant as OsInstant},
};

use pgm::{
    source::SendError,
    time::Instant,
    wire::{Gsi, Tsi},
    Event, Node, Receiver, ReceiverConfig, Source, SourceConfig,
};

/// One turn of an engine on its non-blocking socket, which is bound to the session's port (in
/// EPGM every packet goes to that port): everything received, due timers, everything to send.
fn turn(node: &mut impl Node, sock: &UdpSocket, now: Instant) -> std::io::Result<()> {
    let (mut packet, mut buf, local) = ([0u8; 1500], Vec::new(), sock.local_addr()?);
    loop {
        match sock.recv_from(&mut packet) {
            Ok((n, from)) => node.handle_packet(now, from.ip(), local.ip(), &packet[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    if node.poll_timeout().is_some_and(|t| t <= now) {
        node.handle_timeout(now);
    }
    while let Some(t) = node.poll_transmit(now, &mut buf) {
        // A full socket buffer drops the packet, as a network would: PGM repairs it.
        match sock.send_to(&buf[..t.len], (t.dst, local.port())) {
            Err(e) if e.kind() != ErrorKind::WouldBlock => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let count: usize = std::env::args().nth(1).map_or(Ok(1000), |s| s.parse())?;
    // Two loopback addresses on one port (the receiver's pick), as two hosts would have.
    let (receiver_ip, source_ip) = (Ipv4Addr::LOCALHOST, Ipv4Addr::new(127, 0, 0, 2));
    let rx_sock = UdpSocket::bind((receiver_ip, 0))?;
    let port = rx_sock.local_addr()?.port();
    let tx_sock = UdpSocket::bind((source_ip, port))?;
    rx_sock.set_nonblocking(true)?;
    tx_sock.set_nonblocking(true)?;

    // The clock is the driver's business: microseconds since start.
    #[expect(
        clippy::disallowed_methods,
        reason = "this is the IO driver: it reads the clock"
    )]
    let start = OsInstant::now();
    let now = || Instant::from_micros(u64::try_from(start.elapsed().as_micros()).unwrap_or(0));

    let tsi = Tsi::new(Gsi([0x62, 0x79, 0x6f, 0x69, 0x6f, 0x21]), 4000);
    let mut cfg = SourceConfig::new(tsi, port, receiver_ip.into(), source_ip.into());
    cfg.rate = Some(2_000_000); // bytes/s: faster fills the sockets' buffers, then the window
    let mut source = Source::new(cfg);
    let mut receiver = Receiver::new(ReceiverConfig::new(port));

    let (mut sent, mut delivered, mut lost) = (0, 0, 0);
    while delivered + lost < count && start.elapsed() < Duration::from_secs(10) {
        // Send until the engine pushes back (its send buffer is full), then let it transmit.
        while sent < count {
            match source.send(now(), format!("message {sent}").as_bytes()) {
                Ok(()) => sent += 1,
                Err(SendError::WouldBlock) => break,
                Err(e) => return Err(e.into()),
            }
        }
        if sent == count {
            source.close(now()); // idempotent; OPT_FIN goes out with the next SPMs
        }
        turn(&mut source, &tx_sock, now())?;
        turn(&mut receiver, &rx_sock, now())?;
        while let Some(event) = receiver.poll_event() {
            match event {
                Event::Data { apdu, .. }
                    if apdu == format!("message {}", delivered + lost).as_bytes() =>
                {
                    delivered += 1;
                }
                Event::Data { apdu, .. } => return Err(format!("out of order: {apdu:?}").into()),
                Event::Loss { count, .. } => lost += count as usize,
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    println!("delivered {delivered} of {count} in order, {lost} lost");
    if delivered < count {
        return Err("not everything arrived".into());
    }
    Ok(())
}
