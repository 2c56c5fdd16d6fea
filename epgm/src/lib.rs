//! EPGM: PGM packets carried in UDP datagrams (no extra header), as OpenPGM and libzmq's
//! `epgm://` do; and the constructors that open a socket from an endpoint URL of either
//! scheme (`pgm://` raw IP through [`pgm::transport::raw`], `epgm://` UDP through [`udp`]).
//!
//! ```no_run
//! use pgm::Event;
//!
//! let opts = epgm::Options::default();
//! let tx = epgm::open_sender("epgm://eth0;239.192.0.1:7500", &opts)?;
//! tx.send(b"hello")?;
//! let rx = epgm::open_receiver("epgm://eth0;239.192.0.1:7500", &opts)?;
//! if let Event::Data { tsi, apdu } = rx.recv()? {
//!     println!("{tsi}: {apdu:?}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The dependency runs one way: this crate builds on `pgm` (engine, driver, raw transport,
//! system calls); `pgm` knows nothing of UDP.

pub mod udp;
mod url;

use pgm::{
    socket::{OpenError, RecvSocket, Role, SendSocket, SocketOptions},
    transport::{raw::RawTransport, DualPath, Lossy, Transport, TransportConfig},
};

pub use udp::{UdpTransport, UDP_IPV4_OVERHEAD};
pub use url::{Scheme, Url};

/// Options of a socket opened from a URL: the socket's own, and those of the encapsulation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Engine, multicast and driver options.
    pub socket: SocketOptions,
    /// EPGM: hand the kernel each run of multicast packets of one size as one UDP GSO send
    /// (`UDP_SEGMENT`). The datagrams on the wire are the same; the sender's IP and UDP
    /// layers run once per run instead of once per packet, which on a veth LAN more than
    /// doubles the packets per second a core sends. Turned off by itself if the path cannot
    /// segment. No effect on raw PGM (raw sockets have no GSO).
    pub udp_gso: bool,
    /// Drop this fraction of received packets at random (seeded), before the engine sees them:
    /// loss for demos and tests where nftables is not available (no root).
    pub simulated_recv_loss: Option<(f64, u64)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            socket: SocketOptions::default(),
            udp_gso: true,
            simulated_recv_loss: None,
        }
    }
}

impl From<SocketOptions> for Options {
    fn from(socket: SocketOptions) -> Self {
        Options {
            socket,
            ..Options::default()
        }
    }
}

impl Options {
    /// Sets [`Options::socket`].
    #[must_use]
    pub fn with_socket(mut self, socket: SocketOptions) -> Self {
        self.socket = socket;
        self
    }
    /// Sets [`Options::udp_gso`].
    #[must_use]
    pub fn with_udp_gso(mut self, on: bool) -> Self {
        self.udp_gso = on;
        self
    }
    /// Sets [`Options::simulated_recv_loss`]: lose `fraction` of received packets, seeded.
    #[must_use]
    pub fn with_simulated_recv_loss(mut self, fraction: f64, seed: u64) -> Self {
        self.simulated_recv_loss = Some((fraction, seed));
        self
    }
}

/// Opens the transport a URL's scheme names: UDP for `epgm://`, raw IP for `pgm://`. With a
/// second path ([`SocketOptions::with_second_path`]) it is both paths' transports, of the
/// same scheme, as one ([`DualPath`]); simulated loss then hits each path independently.
pub fn open_transport(
    url: &Url,
    opts: &Options,
    role: Role,
) -> Result<Box<dyn Transport>, OpenError> {
    let second = opts.socket.second_path(&url.endpoint)?;
    let cfg = opts.socket.transport_config(&url.endpoint, role);
    let first = open_path(url.scheme, &cfg, opts, 0)?;
    let Some(second) = second else {
        return Ok(first);
    };
    let cfg2 = opts.socket.second_transport_config(second, role);
    let second_transport = open_path(url.scheme, &cfg2, opts, 1)?;
    Ok(Box::new(DualPath::new(
        first,
        url.endpoint.group,
        second_transport,
        second.group,
    )))
}

/// One path's transport, with simulated loss if asked (`path` varies the seed).
fn open_path(
    scheme: Scheme,
    cfg: &TransportConfig,
    opts: &Options,
    path: u64,
) -> Result<Box<dyn Transport>, OpenError> {
    let transport: Box<dyn Transport> = match scheme {
        Scheme::Epgm => Box::new(UdpTransport::open(cfg, opts.udp_gso)?),
        Scheme::Pgm => Box::new(RawTransport::open(cfg)?),
    };
    Ok(match opts.simulated_recv_loss {
        Some((p, seed)) => Box::new(Lossy::new(
            transport,
            p,
            seed ^ path.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        )),
        None => transport,
    })
}

/// Opens a sender on `url` (`pgm://IFACE;GROUP:PORT` or `epgm://IFACE;GROUP:PORT`).
pub fn open_sender(url: &str, opts: &Options) -> Result<SendSocket, OpenError> {
    let url = Url::parse(url)?;
    let transport = open_transport(&url, opts, Role::Sender)?;
    SendSocket::open(&url.endpoint, &opts.socket, transport)
}

/// Opens a receiver on `url` (`pgm://IFACE;GROUP:PORT` or `epgm://IFACE;GROUP:PORT`).
pub fn open_receiver(url: &str, opts: &Options) -> Result<RecvSocket, OpenError> {
    let url = Url::parse(url)?;
    let transport = open_transport(&url, opts, Role::Receiver)?;
    RecvSocket::open(&url.endpoint, &opts.socket, transport)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pgm::Event;

    use super::*;

    /// A group and port unlikely to clash with parallel test runs; the port is below the kernel's
    /// ephemeral range (32768+), so no socket bound to port 0 can be holding it.
    fn endpoint(tag: u8) -> String {
        let pid = std::process::id();
        let port = 10_000 + (pid % 1_900) as u16 + u16::from(tag);
        format!(
            "epgm://127.0.0.1;239.192.{}.{}:{port}",
            (pid >> 8) as u8,
            tag
        )
    }

    #[test]
    fn sender_to_receiver_over_loopback() {
        let ep = endpoint(1);
        let opts = Options::from(SocketOptions::default().with_linger(Duration::from_millis(50)));
        let rx = open_receiver(&ep, &opts).unwrap();
        let tx = open_sender(&ep, &opts).unwrap();
        for i in 0..100u32 {
            tx.send(&i.to_be_bytes()).unwrap();
        }
        // A fragmented one too.
        tx.send(&vec![7u8; 10_000]).unwrap();
        tx.flush().unwrap();
        let mut got = Vec::new();
        while got.len() < 101 {
            match rx.recv_timeout(Duration::from_secs(5)).unwrap() {
                Event::Data { tsi, apdu: data } => {
                    assert_eq!(tsi, tx.tsi());
                    got.push(data);
                }
                Event::Loss { .. } => panic!("loss on loopback"),
                _ => {}
            }
        }
        for (i, d) in got[..100].iter().enumerate() {
            assert_eq!(&d[..], &(i as u32).to_be_bytes());
        }
        assert_eq!(got[100].len(), 10_000);
        tx.close().unwrap();
        let s = tx.stats();
        assert_eq!(s.engine.apdus_sent, 101);
        assert!(s.engine.spm_sent >= 6, "3 at start and 3 FIN: {s:?}");
        assert_eq!(s.io.send_errors, 0);
        assert!(rx.stats().engine.odata_received >= 108);
    }

    /// A paced stream driven by the application threads (sends inline, a thread in `recv`)
    /// must not wake the IO threads once per heartbeat interval (1 ms) or standby tick
    /// (2 ms): the application's turns move their alarms.
    #[test]
    fn application_driven_stream_leaves_the_io_threads_asleep() {
        const N: u32 = 3000;
        let ep = endpoint(5);
        let opts = Options::from(SocketOptions::default().with_linger(Duration::from_millis(20)));
        let rx = open_receiver(&ep, &opts).unwrap();
        let tx = open_sender(&ep, &opts).unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = 0;
            while got < N {
                if let Event::Data { .. } = rx.recv_timeout(Duration::from_secs(5)).unwrap() {
                    got += 1;
                }
            }
            rx.stats().io
        });
        let clock = pgm::socket::Clock::new();
        let start = tx.stats().io.io_turns;
        for i in 0..N {
            tx.send(&i.to_be_bytes()).unwrap();
            std::thread::sleep(Duration::from_micros(100));
        }
        let ms = clock.elapsed().as_millis() as u64;
        let sent = tx.stats().io;
        let recv = reader.join().unwrap();
        eprintln!(
            "IO wake-ups in {ms} ms: sender {}, receiver {}",
            sent.io_turns - start,
            recv.io_turns
        );
        // Without the alarm hand-off: about one wake-up per millisecond each.
        let woke = sent.io_turns - start;
        assert!(
            woke * 4 < ms,
            "sender IO thread woke {woke} times in {ms} ms: {sent:?}"
        );
        assert!(
            recv.io_turns * 4 < ms,
            "receiver IO thread woke {} times in {ms} ms: {recv:?}",
            recv.io_turns
        );
        tx.close().unwrap();
    }

    #[test]
    fn multicast_to_another_group_on_the_port_is_filtered() {
        let ep = endpoint(2);
        let other = ep.replace(".2:", ".3:");
        let opts = Options::from(SocketOptions::default().with_linger(Duration::ZERO));
        let rx = open_receiver(&ep, &opts).unwrap();
        // Same port, other group: a second receiver joins it so the host accepts the group.
        let _rx2 = open_receiver(&other, &opts).unwrap();
        let tx = open_sender(&other, &opts).unwrap();
        tx.send(b"not for you").unwrap();
        tx.close().unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(300)),
            Err(pgm::socket::RecvError::Timeout)
        );
    }

    #[test]
    fn raw_needs_privilege_or_works() {
        let opts = Options::from(SocketOptions::default().with_linger(Duration::ZERO));
        match open_sender("pgm://lo;239.192.9.9:7500", &opts) {
            Ok(_) => {}
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains("raw PGM needs root or CAP_NET_RAW"), "{msg}");
                assert!(e.is_usage());
            }
        }
    }

    #[test]
    fn send_errors_are_typed() {
        let ep = endpoint(4);
        let opts = Options::from(SocketOptions::default().with_linger(Duration::ZERO));
        let tx = open_sender(&ep, &opts).unwrap();
        let max = tx.max_message();
        assert!(max >= 16 * 1428, "{max}");
        assert!(matches!(
            tx.send(&vec![0; max + 1]),
            Err(pgm::socket::SendError::TooLarge { .. })
        ));
        tx.close().unwrap();
        assert_eq!(tx.send(b"x"), Err(pgm::socket::SendError::Closed));
        assert!(matches!(
            open_sender("epgm://lo;10.0.0.1:5", &opts),
            Err(OpenError::Endpoint(_))
        ));
    }
}
