//! PGM over UDP (EPGM): the sockets it opens, and how runs of packets go out with UDP GSO.
//!
//! # Sockets (docs/wire-compatibility.md)
//!
//! - **Sending**: one UDP socket bound to `interface-address:0`, with IP_MULTICAST_IF = the
//!   interface address, IP_MULTICAST_TTL, IP_MULTICAST_LOOP, IP_TOS and a large SO_SNDBUF, for
//!   unicast (NAKs, SPMRs) to `nla:port`; and one connected to `group:port` for multicast
//!   (ODATA, RDATA, NCF, SPM, SPMR copies), where `port` is the endpoint port. A connected
//!   socket keeps its route: no route lookup per packet.
//! - **Receiving** uses the same `port`, with SO_REUSEADDR + SO_REUSEPORT, IP_MULTICAST_ALL = 0
//!   and a large SO_RCVBUF:
//!   - a receiver binds `group:port` and joins the group on the interface;
//!   - a sender binds `interface-address:port` for the NAKs and SPMRs unicast to its NLA.
//!
//!   Receive sockets ask for UDP_GRO (where the kernel has it): a GSO run that reaches the
//!   host uncut (a plain veth or bridge LAN, loopback) is queued and read as one datagram
//!   and cut into packets here, not in the kernel's softirq, one socket buffer per packet.
//!
//!   A socket bound to an address receives only datagrams sent to that address, so the
//!   address it is bound to is each packet's destination: no IP_PKTINFO. (With it the kernel
//!   computed the destination by a route lookup per datagram and socket, in the softirq that
//!   delivers it: on a veth LAN the sender's CPU, 5 % of its time at 300 k packets/s.)
//!
//!   Binding these specific addresses rather than `INADDR_ANY:port` matters when senders and
//!   receivers share a host: Linux load-balances *unicast* datagrams among SO_REUSEPORT sockets
//!   bound to the same address, so a receiver bound to the wildcard would take a share of the
//!   NAKs meant for a co-located sender, always the same NAKs (the choice hashes the 4-tuple).
//!   A socket bound to the exact destination address wins over wildcard ones, and a
//!   group-bound socket never sees unicast.
//!
//! # UDP GSO
//!
//! Runs of multicast packets of one size go down the stack as one send with UDP_SEGMENT
//! ([`pgm::sys::mmsg::MmsgSender::send_connected_gso`]): the datagrams on the wire are the
//! same, the sender's IP and UDP layers run once per run. Where the path refuses, the socket
//! falls back to plain sends for good ([`TransportStats::gso_refused`]).

use std::{
    io,
    net::IpAddr,
    os::fd::{AsRawFd, RawFd},
};

use pgm::{
    sys::{
        mmsg::{is_gso_refusal, MmsgReceiver, MmsgSender},
        net::set_udp_gro,
    },
    transport::{
        Datagram, Outgoing, RecvBatch, Transport, TransportConfig, TransportError, TransportStats,
    },
};
use socket2::{Protocol, Type};

/// Bytes in front of each PGM packet: IPv4 header (20) + UDP header (8).
pub const UDP_IPV4_OVERHEAD: usize = 28;

/// Bytes in front of each PGM packet over IPv6: IPv6 header (40) + UDP header (8).
pub const UDP_IPV6_OVERHEAD: usize = 48;

/// One receiving socket and the address it is bound to: the destination of all it receives.
#[derive(Debug)]
struct RecvSock {
    sock: socket2::Socket,
    bound: IpAddr,
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
    stats: TransportStats,
    /// `sendmmsg` headers, reused.
    tx: MmsgSender,
    /// Multicast runs go out with UDP GSO (cleared when the path refuses it).
    gso: bool,
    /// `recvmmsg` headers, reused.
    rx: MmsgReceiver,
    v6: bool,
}

fn io_err(what: String) -> impl FnOnce(io::Error) -> TransportError {
    move |e| TransportError::io(what, e)
}

impl UdpTransport {
    /// Opens the sockets for `cfg` (see the crate docs); `gso`: send runs of multicast
    /// packets with UDP GSO while the path takes it.
    pub fn open(cfg: &TransportConfig, gso: bool) -> Result<Self, TransportError> {
        let v6 = cfg.is_v6()?;
        let (addr, group) = (cfg.iface.addr, cfg.group);
        let send = Self::socket(cfg)?;
        let local = cfg.sockaddr(addr, 0);
        send.bind(&local.into())
            .map_err(io_err(format!("bind {local}")))?;
        cfg.apply_send_options(&send)?;
        let mcast = Self::socket(cfg)?;
        mcast
            .bind(&local.into())
            .map_err(io_err(format!("bind {local}")))?;
        cfg.apply_send_options(&mcast)?;
        let to = cfg.sockaddr(group, cfg.port);
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
            stats: TransportStats::default(),
            tx: MmsgSender::new().with_scope(cfg.iface.index),
            gso,
            rx: MmsgReceiver::new(false).with_gro(),
            v6,
        })
    }

    fn socket(cfg: &TransportConfig) -> Result<socket2::Socket, TransportError> {
        socket2::Socket::new(cfg.domain()?, Type::DGRAM, Some(Protocol::UDP))
            .map_err(io_err("socket(SOCK_DGRAM)".into()))
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
                Err(e) if is_gso_refusal(&e) => {
                    self.gso = false;
                    self.stats.gso_refused += 1;
                }
                r => return r,
            }
        }
        self.tx.send_connected(fd, pkts)
    }

    fn recv_socket(cfg: &TransportConfig, bind: IpAddr) -> Result<RecvSock, TransportError> {
        let sock = Self::socket(cfg)?;
        sock.set_reuse_address(true)
            .map_err(io_err("SO_REUSEADDR".into()))?;
        sock.set_reuse_port(true)
            .map_err(io_err("SO_REUSEPORT".into()))?;
        cfg.apply_recv_options(&sock)?;
        // Without it (kernels before 5.0) the kernel cuts GSO runs and nothing else changes.
        let _ = set_udp_gro(sock.as_raw_fd());
        let at = cfg.sockaddr(bind, cfg.port);
        sock.bind(&at.into())
            .map_err(io_err(format!("bind {at}")))?;
        Ok(RecvSock { sock, bound: bind })
    }
}

impl Transport for UdpTransport {
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
                if !self.cfg.accepts_source(src) {
                    self.stats.source_filtered += 1;
                    batch.skip(1);
                    continue;
                }
                let d = Datagram {
                    src,
                    dst: rs.bound,
                    pgm: 0..info.len,
                };
                match info.segment {
                    Some(segment) => {
                        // More segments than the kernel coalesces: not a real run.
                        if !batch.push_segments(d, segment) {
                            self.stats.malformed += 1;
                        }
                    }
                    None => batch.push(d),
                }
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
        if self.v6 {
            UDP_IPV6_OVERHEAD
        } else {
            UDP_IPV4_OVERHEAD
        }
    }

    fn stats(&self) -> TransportStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pgm::{
        socket::{Endpoint, Role, SocketOptions},
        sys::net::set_udp_no_check,
    };

    use super::*;

    /// An interface address of the other family than the group is refused at open, before
    /// any socket is made; so is an SSM source of the other family.
    #[test]
    fn family_mismatches_are_clear_errors() {
        let v4 = Endpoint::parse("127.0.0.1;239.192.9.9:7777").unwrap();
        let mut ep = v4.clone();
        ep.group = "ff18::7067:9".parse().unwrap();
        let opts = SocketOptions::default();
        let err = UdpTransport::open(&opts.transport_config(&ep, Role::Receiver), true)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "interface address 127.0.0.1 and group ff18::7067:9 are of different address families"
        );
        let opts = SocketOptions::default().with_sources(vec!["::1".parse().unwrap()]);
        let err = UdpTransport::open(&opts.transport_config(&v4, Role::Receiver), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("different address families"), "{err}");
    }

    /// A receiver and a sender on the loopback, on group 239.192.x.`octet` and a port of this
    /// process's.
    fn loopback_pair(octet: u8) -> (Endpoint, UdpTransport, UdpTransport) {
        let pid = std::process::id();
        let ep = Endpoint::parse(&format!(
            "127.0.0.1;239.192.{}.{octet}:{}",
            (pid >> 8) as u8,
            12_006 + (pid % 1_900) as u16
        ))
        .unwrap();
        let opts = SocketOptions::default();
        let rx = UdpTransport::open(&opts.transport_config(&ep, Role::Receiver), true).unwrap();
        let tx = UdpTransport::open(&opts.transport_config(&ep, Role::Sender), true).unwrap();
        (ep, rx, tx)
    }

    /// A path that refuses GSO (here: UDP checksums off, which GSO needs) turns it off for the
    /// socket and the same packets go out one by one: nothing is lost.
    #[test]
    fn refused_gso_falls_back_without_loss() {
        let (ep, mut rx, mut tx) = loopback_pair(6);
        set_udp_no_check(tx.mcast.as_raw_fd()).unwrap();
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
        let mut batch = RecvBatch::new(8, 2048);
        for _ in 0..200 {
            batch.clear();
            rx.recv_batch(&mut batch).unwrap();
            got.extend(batch.iter().map(|(_, pkt)| pkt[0]));
            if got.len() == pkts.len() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(got, [0, 1, 2, 3, 4]);
    }

    /// Sends packets of `sizes` through `loopback_pair(octet)`, each filled with its index,
    /// and checks they come back the same. Returns whether GSO stayed on, the packets as
    /// (first byte, length), and how many datagrams the receiver read.
    fn gso_round_trip(octet: u8, sizes: &[usize]) -> (bool, Vec<(u8, usize)>, usize) {
        let (ep, mut rx, mut tx) = loopback_pair(octet);
        let pkts: Vec<Outgoing> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| Outgoing {
                dst: ep.group,
                buf: vec![i as u8; n],
                ttl: None,
            })
            .collect();
        let mut sent = 0;
        while sent < pkts.len() {
            sent += tx.send_batch(&pkts[sent..]).unwrap();
        }
        let mut got = Vec::new();
        let mut slots = 0;
        let mut batch = RecvBatch::new(8, pgm::transport::MAX_DATAGRAM);
        for _ in 0..200 {
            batch.clear();
            rx.recv_batch(&mut batch).unwrap();
            slots += batch.used_slots();
            got.extend(batch.iter().map(|(_, pkt)| (pkt[0], pkt.len())));
            if got.len() >= pkts.len() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let want: Vec<(u8, usize)> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (i as u8, n))
            .collect();
        assert_eq!(got, want);
        (tx.gso, got, slots)
    }

    /// A GSO run reaches a receiver on the same host uncut; with UDP_GRO it is read as one
    /// datagram and cut here into the same packets, the last of a run possibly shorter.
    #[test]
    fn gso_runs_are_read_whole_and_cut_into_their_packets() {
        let (gso, got, slots) = gso_round_trip(7, &[100, 100, 100, 100, 40, 7]);
        // Runs of one size: the four 100 B packets and the 40 B one end a GSO run, the 7 B
        // one goes alone; read as at most two datagrams and one.
        assert!(
            gso && slots <= 3,
            "{slots} datagrams read for {}",
            got.len()
        );
    }

    /// Full-size packets (a 1400 B message's ODATA) go in runs the device takes whole: a run
    /// past its `gso_max_size` is cut into datagrams in software before it (what made 1400 B
    /// EPGM 5× slower), and would be read here as 64 datagrams.
    #[test]
    fn full_size_runs_stay_whole() {
        let (gso, got, slots) = gso_round_trip(8, &[1424; 64]);
        assert!(
            gso && slots <= 4,
            "{slots} datagrams read for {}",
            got.len()
        );
    }
}
