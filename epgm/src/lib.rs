//! EPGM: PGM packets carried in UDP datagrams (no extra header), as OpenPGM and libzmq's
//! `epgm://` do, plus the constructors that open a socket from any endpoint.
//!
//! ```no_run
//! use pgm::socket::{RecvEvent, SocketOptions};
//!
//! let opts = SocketOptions::default().with_hops(16);
//! let tx = epgm::open_sender("epgm://eth0;239.192.0.1:7500", &opts)?;
//! tx.send(b"hello")?;
//! let rx = epgm::open_receiver("epgm://eth0;239.192.0.1:7500", &opts)?;
//! if let RecvEvent::Data { tsi, data } = rx.recv()? {
//!     println!("{tsi}: {data:?}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Sockets of the UDP transport (interop-notes §2)
//!
//! - **Sending**: one UDP socket bound to `interface-address:0`, with IP_MULTICAST_IF = the
//!   interface address, IP_MULTICAST_TTL, IP_MULTICAST_LOOP, IP_TOS and a large SO_SNDBUF.
//!   Multicast (ODATA, RDATA, NCF, SPM, SPMR copies) goes to `group:port`, unicast (NAKs,
//!   SPMRs) to `nla:port`, where `port` is the endpoint port.
//! - **Receiving** uses the same `port`, with SO_REUSEADDR + SO_REUSEPORT, IP_MULTICAST_ALL = 0,
//!   IP_PKTINFO (the packet's real destination is passed to the engine) and a large SO_RCVBUF:
//!   - a receiver binds `group:port` and joins the group on the interface;
//!   - a sender binds `interface-address:port` for the NAKs and SPMRs unicast to its NLA.
//!
//!   Binding these specific addresses rather than `INADDR_ANY:port` matters when senders and
//!   receivers share a host: Linux load-balances *unicast* datagrams among SO_REUSEPORT sockets
//!   bound to the same address, so a receiver bound to the wildcard would take a share of the
//!   NAKs meant for a co-located sender, always the same NAKs (the choice hashes the 4-tuple).
//!   A socket bound to the exact destination address wins over wildcard ones, and a
//!   group-bound socket never sees unicast. Packets for other groups on the port are filtered
//!   by destination all the same.

use std::{
    io,
    mem::{self, MaybeUninit},
    net::{IpAddr, Ipv4Addr, SocketAddrV4},
    os::fd::{AsRawFd, RawFd},
};

pub use pgm::socket::{
    Endpoint, OpenError, RecvEvent, RecvSocket, Role, SendSocket, Socket, SocketOptions,
};
use pgm::{
    socket::Scheme,
    transport::{
        mmsg::{MmsgReceiver, MmsgSender},
        raw::RawTransport,
        Datagram, Outgoing, RecvBatch, Transport, TransportConfig, TransportError, TransportStats,
    },
};
use socket2::{Domain, Protocol, SockAddr, Type};

/// Bytes in front of each PGM packet: IPv4 header (20) + UDP header (8).
pub const UDP_IPV4_OVERHEAD: usize = 28;

/// One receiving socket and the address it is bound to (the destination when PKTINFO is
/// missing).
#[derive(Debug)]
struct RecvSock {
    sock: socket2::Socket,
    bound: Ipv4Addr,
}

/// PGM over UDP. See the crate docs for the sockets it opens.
#[derive(Debug)]
pub struct UdpTransport {
    cfg: TransportConfig,
    port: u16,
    send: socket2::Socket,
    /// A second sending socket connected to `group:port`, for everything multicast: a
    /// connected UDP socket keeps its route, so no route lookup per packet.
    mcast: socket2::Socket,
    recv: Vec<RecvSock>,
    /// The receive socket to try first.
    cur: usize,
    /// Receive sockets found empty since the last `None`.
    empty: usize,
    stats: TransportStats,
    /// `sendmmsg` headers, reused.
    tx: MmsgSender,
    /// Multicast runs go out with UDP GSO (cleared when the path refuses it).
    gso: bool,
    /// `recvmmsg` headers (with IP_PKTINFO), reused.
    rx: MmsgReceiver,
}

fn io_err(what: String) -> impl FnOnce(io::Error) -> TransportError {
    move |e| TransportError::io(what, e)
}

impl UdpTransport {
    /// Opens the sockets for `cfg` (see the crate docs).
    pub fn open(cfg: &TransportConfig) -> Result<Self, TransportError> {
        let (addr, group) = cfg.v4()?;
        let send = socket2::Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
            .map_err(io_err("socket(AF_INET, SOCK_DGRAM)".into()))?;
        send.bind(&SocketAddrV4::new(addr, 0).into())
            .map_err(io_err(format!("bind {addr}:0")))?;
        cfg.apply_send_options(&send)?;
        let mcast = socket2::Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
            .map_err(io_err("socket(AF_INET, SOCK_DGRAM)".into()))?;
        mcast
            .bind(&SocketAddrV4::new(addr, 0).into())
            .map_err(io_err(format!("bind {addr}:0")))?;
        cfg.apply_send_options(&mcast)?;
        let to = SocketAddrV4::new(group, cfg.port);
        mcast
            .connect(&to.into())
            .map_err(io_err(format!("connect {to}")))?;
        let mut recv = Vec::new();
        if cfg.join_group {
            let r = Self::recv_socket(cfg, group)?;
            cfg.join(&r.sock)?;
            recv.push(r);
        }
        if cfg.receive_unicast {
            recv.push(Self::recv_socket(cfg, addr)?);
        }
        Ok(UdpTransport {
            cfg: cfg.clone(),
            port: cfg.port,
            send,
            mcast,
            recv,
            cur: 0,
            empty: 0,
            stats: TransportStats::default(),
            tx: MmsgSender::new(),
            gso: cfg.udp_gso,
            rx: MmsgReceiver::new(true),
        })
    }

    /// Sends a run of packets for the group through the connected socket, with GSO while the
    /// path takes it.
    fn send_group(&mut self, pkts: &[Outgoing]) -> io::Result<usize> {
        let fd = self.mcast.as_raw_fd();
        if self.gso {
            match self.tx.send_connected_gso(fd, pkts) {
                // Refused (the device cannot segment, or an old kernel): never again on this
                // socket, and this batch goes out the plain way (which reports any error
                // that was not about GSO).
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
                    ) =>
                {
                    self.gso = false;
                    self.stats.gso_refused += 1;
                }
                r => return r,
            }
        }
        self.tx.send_connected(fd, pkts)
    }

    fn recv_socket(cfg: &TransportConfig, bind: Ipv4Addr) -> Result<RecvSock, TransportError> {
        let sock = socket2::Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
            .map_err(io_err("socket(AF_INET, SOCK_DGRAM)".into()))?;
        sock.set_reuse_address(true)
            .map_err(io_err("SO_REUSEADDR".into()))?;
        sock.set_reuse_port(true)
            .map_err(io_err("SO_REUSEPORT".into()))?;
        cfg.apply_recv_options(&sock)?;
        set_pktinfo(&sock).map_err(io_err("IP_PKTINFO".into()))?;
        let at = SocketAddrV4::new(bind, cfg.port);
        sock.bind(&at.into())
            .map_err(io_err(format!("bind {at}")))?;
        Ok(RecvSock { sock, bound: bind })
    }
}

fn set_pktinfo(sock: &socket2::Socket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid fd and a c_int option value of the right size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            (&raw const on).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What `recvmsg` returned: length (the full datagram length, even if cut), truncation, the
/// IPv4 source, and the header destination from IP_PKTINFO.
struct Received {
    len: usize,
    truncated: bool,
    src: Option<Ipv4Addr>,
    dst: Option<Ipv4Addr>,
}

fn recv_pktinfo(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut name = MaybeUninit::<libc::sockaddr_in>::zeroed();
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 16];
    // SAFETY: msghdr is plain data; all-zero is a valid (empty) value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = name.as_mut_ptr().cast();
    msg.msg_namelen = mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = mem::size_of_val(&control);
    // SAFETY: every pointer in `msg` points at live buffers of the stated sizes.
    let n = unsafe { libc::recvmsg(fd, &raw mut msg, libc::MSG_DONTWAIT) };
    let Ok(len) = usize::try_from(n) else {
        return Err(io::Error::last_os_error());
    };
    let src = if msg.msg_namelen as usize >= mem::size_of::<libc::sockaddr_in>() {
        // SAFETY: the kernel filled a sockaddr_in (this is an AF_INET socket).
        let sin = unsafe { name.assume_init() };
        (i32::from(sin.sin_family) == libc::AF_INET)
            .then(|| Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
    } else {
        None
    };
    let mut dst = None;
    // SAFETY: the CMSG_* walk stays within msg_controllen as the kernel set it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::IPPROTO_IP && c.cmsg_type == libc::IP_PKTINFO {
                let info: libc::in_pktinfo =
                    std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in_pktinfo>());
                dst = Some(Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr)));
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
    }
    Ok(Received {
        len,
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        src,
        dst,
    })
}

impl Transport for UdpTransport {
    fn send_to(&mut self, dst: IpAddr, pkt: &[u8]) -> io::Result<()> {
        if dst == self.cfg.group {
            return self.mcast.send(pkt).map(drop);
        }
        let IpAddr::V4(dst) = dst else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "IPv6 is not supported yet",
            ));
        };
        // One port for everything: multicast to group:port, NAKs/SPMRs to nla:port.
        let to = SockAddr::from(SocketAddrV4::new(dst, self.port));
        self.send.send_to(pkt, &to).map(drop)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<Datagram>> {
        let n = self.recv.len();
        while self.empty < n {
            let rs = &self.recv[self.cur % n];
            let r = match recv_pktinfo(rs.sock.as_raw_fd(), buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.empty += 1;
                    self.cur = (self.cur + 1) % n;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if r.truncated || r.len > buf.len() {
                self.stats.truncated += 1;
                continue;
            }
            let Some(src) = r.src else {
                self.stats.malformed += 1;
                continue;
            };
            let dst = IpAddr::V4(r.dst.unwrap_or(rs.bound));
            if !self.cfg.wants(dst) {
                self.stats.filtered += 1;
                continue;
            }
            return Ok(Some(Datagram {
                src: IpAddr::V4(src),
                dst,
                pgm: 0..r.len,
            }));
        }
        self.empty = 0;
        Ok(None)
    }

    fn send_batch(&mut self, pkts: &[Outgoing]) -> io::Result<usize> {
        // One port for everything: multicast to group:port, NAKs/SPMRs to nla:port. A run of
        // packets for the group goes through the connected socket, the rest through the
        // other one; the caller calls again for what follows a change of destination.
        let group = self.cfg.group;
        let to_group = pkts.iter().take_while(|p| p.dst == group).count();
        if to_group > 0 {
            return self.send_group(&pkts[..to_group]);
        }
        let others = pkts.iter().take_while(|p| p.dst != group).count().max(1);
        self.tx.send(
            self.send.as_raw_fd(),
            &pkts[..others.min(pkts.len())],
            self.port,
        )
    }

    fn recv_batch(&mut self, batch: &mut RecvBatch) -> io::Result<()> {
        let n = self.recv.len();
        // Each socket in turn, starting where the last call left off, until every one has
        // been found empty in this call or the batch is full.
        let mut empty = 0;
        while empty < n && batch.spare_slots() > 0 {
            let rs = &self.recv[self.cur % n];
            let slot_len = batch.slot_len();
            let want = batch.spare_slots();
            let infos = match self
                .rx
                .recv(rs.sock.as_raw_fd(), batch.spare_mut(), slot_len, want)
            {
                Ok(i) => i,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    empty += 1;
                    self.cur = (self.cur + 1) % n;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if batch.is_empty() => return Err(e),
                Err(_) => return Ok(()),
            };
            let got = infos.len();
            for info in infos {
                if info.truncated || info.len > slot_len {
                    self.stats.truncated += 1;
                    batch.skip(1);
                    continue;
                }
                let Some(src) = info.src else {
                    self.stats.malformed += 1;
                    batch.skip(1);
                    continue;
                };
                let dst = IpAddr::V4(info.dst.unwrap_or(rs.bound));
                if !self.cfg.wants(dst) {
                    self.stats.filtered += 1;
                    batch.skip(1);
                    continue;
                }
                batch.push(Datagram {
                    src: IpAddr::V4(src),
                    dst,
                    pgm: 0..info.len,
                });
            }
            if got < want {
                // recvmmsg stops early only when this socket has nothing more: on to the next.
                empty += 1;
                self.cur = (self.cur + 1) % n;
            }
        }
        if empty >= n {
            batch.set_drained();
        }
        Ok(())
    }

    fn fds(&self) -> Vec<RawFd> {
        self.recv
            .iter()
            .map(|r| r.sock.as_raw_fd())
            .chain([self.send.as_raw_fd(), self.mcast.as_raw_fd()])
            .collect()
    }

    fn local_nla(&self) -> IpAddr {
        self.cfg.iface.addr
    }

    fn ip_overhead(&self) -> usize {
        UDP_IPV4_OVERHEAD
    }

    fn stats(&self) -> TransportStats {
        self.stats
    }
}

/// Opens the transport an endpoint's scheme names: UDP for `epgm://`, raw IP for `pgm://`.
pub fn open_transport(
    endpoint: &Endpoint,
    opts: &SocketOptions,
    role: Role,
) -> Result<Box<dyn Transport>, OpenError> {
    let cfg = opts.transport_config(endpoint, role);
    let transport: Box<dyn Transport> = match endpoint.scheme {
        Scheme::Epgm => Box::new(UdpTransport::open(&cfg)?),
        Scheme::Pgm => Box::new(RawTransport::open(&cfg)?),
    };
    Ok(match opts.simulated_recv_loss {
        Some((p, seed)) => Box::new(pgm::transport::Lossy::new(transport, p, seed)),
        None => transport,
    })
}

/// Opens a sender on `endpoint` (`pgm://IFACE;GROUP:PORT` or `epgm://IFACE;GROUP:PORT`).
pub fn open_sender(endpoint: &str, opts: &SocketOptions) -> Result<SendSocket, OpenError> {
    let endpoint = Endpoint::parse(endpoint)?;
    let transport = open_transport(&endpoint, opts, Role::Sender)?;
    SendSocket::open(&endpoint, opts, transport)
}

/// Opens a receiver on `endpoint` (`pgm://IFACE;GROUP:PORT` or `epgm://IFACE;GROUP:PORT`).
pub fn open_receiver(endpoint: &str, opts: &SocketOptions) -> Result<RecvSocket, OpenError> {
    let endpoint = Endpoint::parse(endpoint)?;
    let transport = open_transport(&endpoint, opts, Role::Receiver)?;
    RecvSocket::open(&endpoint, opts, transport)
}

/// Opens a sender or a receiver, as `opts.role` says.
pub fn open(endpoint: &str, opts: &SocketOptions) -> Result<Socket, OpenError> {
    let endpoint = Endpoint::parse(endpoint)?;
    let transport = open_transport(&endpoint, opts, opts.role)?;
    Socket::open(&endpoint, opts, transport)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A group and port unlikely to clash with a parallel test run.
    fn endpoint(tag: u8) -> String {
        let pid = std::process::id();
        let port = 20_000 + (pid % 20_000) as u16 + u16::from(tag);
        format!(
            "epgm://127.0.0.1;239.192.{}.{}:{port}",
            (pid >> 8) as u8,
            tag
        )
    }

    #[test]
    fn sender_to_receiver_over_loopback() {
        let ep = endpoint(1);
        let opts = SocketOptions::default().with_linger(Duration::from_millis(50));
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
                RecvEvent::Data { tsi, data } => {
                    assert_eq!(tsi, tx.tsi());
                    got.push(data);
                }
                RecvEvent::Loss { .. } => panic!("loss on loopback"),
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
        let opts = SocketOptions::default().with_linger(Duration::from_millis(20));
        let rx = open_receiver(&ep, &opts).unwrap();
        let tx = open_sender(&ep, &opts).unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = 0;
            while got < N {
                if let RecvEvent::Data { .. } = rx.recv_timeout(Duration::from_secs(5)).unwrap() {
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

    /// A path that refuses GSO (here: UDP checksums off, which GSO needs) turns it off for the
    /// socket and the same packets go out one by one: nothing is lost.
    #[test]
    fn refused_gso_falls_back_without_loss() {
        let ep = Endpoint::parse(&endpoint(6)).unwrap();
        let opts = SocketOptions::default();
        let mut rx = UdpTransport::open(&opts.transport_config(&ep, Role::Receiver)).unwrap();
        let mut tx = UdpTransport::open(&opts.transport_config(&ep, Role::Sender)).unwrap();
        let on: libc::c_int = 1;
        // SAFETY: a valid fd and a c_int option.
        let rc = unsafe {
            libc::setsockopt(
                tx.mcast.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_NO_CHECK,
                (&raw const on).cast(),
                mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
        let pkts: Vec<Outgoing> = (0..5u8)
            .map(|i| Outgoing {
                dst: ep.group,
                buf: vec![i; 100],
                ttl: None,
            })
            .collect();
        let mut sent = 0;
        while sent < pkts.len() {
            sent += tx.send_batch(&pkts[sent..]).unwrap();
        }
        assert!(!tx.gso, "GSO must be off after the refusal");
        assert_eq!(tx.stats().gso_refused, 1);
        let mut got = Vec::new();
        let mut buf = vec![0u8; 2048];
        for _ in 0..200 {
            match rx.recv(&mut buf).unwrap() {
                Some(d) => got.push(buf[d.pgm][0]),
                None if got.len() == pkts.len() => break,
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        assert_eq!(got, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn multicast_to_another_group_on_the_port_is_filtered() {
        let ep = endpoint(2);
        let other = ep.replace(".2:", ".3:");
        let opts = SocketOptions::default().with_linger(Duration::ZERO);
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
        let opts = SocketOptions::default().with_linger(Duration::ZERO);
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
        let opts = SocketOptions::default().with_linger(Duration::ZERO);
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
