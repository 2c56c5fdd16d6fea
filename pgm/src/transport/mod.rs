//! Moving PGM packets between the engine and the OS: the [`Transport`] trait, interface lookup,
//! the socket options every multicast transport sets, and raw IPv4 PGM ([`raw`]).
//!
//! A transport owns its OS sockets. The driver in [`crate::socket`] registers the descriptors
//! from [`Transport::fds`] with its mio loop (edge-triggered), then calls
//! [`Transport::recv_batch`] until a batch comes back [drained](RecvBatch::is_drained), and
//! [`Transport::send_batch`] with up to [`BATCH`] packets the engine wrote straight into
//! reusable [`Outgoing`] buffers; each is one `recvmmsg`/`sendmmsg`
//! ([`crate::sys::mmsg`]). The UDP encapsulation (EPGM) lives in the `epgm` crate and
//! implements the same trait, so one driver serves both.
//!
//! Addresses are [`IpAddr`] throughout: every transport runs over IPv4 or IPv6, as the group
//! says (the interface address must be of the same family).

mod batch;
mod dual;
mod lossy;
pub mod raw;

pub use batch::{RecvBatch, MAX_DATAGRAM, MAX_GRO_SEGMENTS};
pub use dual::DualPath;
pub use lossy::Lossy;

pub use crate::sys::{
    mmsg::{Outgoing, BATCH},
    net::{interfaces, Interface},
};

use crate::sys::net::join_source_group;

use std::{
    io,
    net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6},
    ops::Range,
    os::fd::{AsRawFd, RawFd},
};

use socket2::Socket;

/// One received PGM packet: where it came from, where it was addressed, and where the PGM bytes
/// sit in the caller's buffer (after the IPv4 header for raw sockets, the whole datagram for UDP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// The IP source address.
    pub src: IpAddr,
    /// The IP destination address: the multicast group, or our unicast address.
    pub dst: IpAddr,
    /// The PGM packet within the receive buffer.
    pub pgm: Range<usize>,
}

/// Counters a transport keeps about packets it dropped before the engine saw them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportStats {
    /// Packets addressed to neither our group nor our unicast address (raw PGM: another
    /// session's; a UDP socket gets only what is sent to the address it is bound to).
    pub filtered: u64,
    /// Packets larger than the receive buffer (cut short, so dropped).
    pub truncated: u64,
    /// Packets whose IP header or ancillary data could not be read.
    pub malformed: u64,
    /// Packets dropped on purpose by [`Lossy`].
    pub simulated_loss: u64,
    /// Times the path refused segmentation offload (UDP GSO, EPGM): it is then off for the
    /// socket.
    pub gso_refused: u64,
    /// Packets from a source outside the source-specific joins
    /// ([`TransportConfig::sources`]) that the kernel let through.
    pub source_filtered: u64,
    /// A/B sessions ([`DualPath`]): packets received on the second path (the rest of the
    /// received packets came on the first).
    pub second_path_received: u64,
    /// A/B sessions: copies sent on the second path.
    pub second_path_sent: u64,
    /// A/B sessions: copies the second path did not take (its backlog overflowed, or the
    /// send failed).
    pub second_path_dropped: u64,
}

/// A way to send and receive PGM packets in batches; implemented by [`raw::RawTransport`], by
/// the `epgm` crate's UDP transport, and by [`Lossy`] around either.
///
/// All sockets are non-blocking.
pub trait Transport: Send + 'static {
    /// Sends `pkts` in order, as many as the socket takes; returns how many went out.
    ///
    /// `Ok(n)` with `n < pkts.len()` means packet `n` was not sent: call again from there to
    /// learn why. An error means `pkts[0]` was not sent; [`io::ErrorKind::WouldBlock`] (or
    /// ENOBUFS) means retry once a descriptor is writable, any other error is about that
    /// packet alone.
    fn send_batch(&mut self, pkts: &[Outgoing]) -> io::Result<usize>;

    /// Fills the spare slots of `batch` with packets for this session (skipping packets
    /// addressed elsewhere) and marks it [drained](RecvBatch::set_drained) when every socket
    /// would block. An error with nothing received is returned; after a partial batch it is
    /// left for the next call.
    fn recv_batch(&mut self, batch: &mut RecvBatch) -> io::Result<()>;

    /// The descriptors to poll for readability and writability. The transport keeps ownership.
    fn fds(&self) -> Vec<RawFd>;

    /// Our unicast address: the source NLA advertised in SPMs, where NAKs arrive.
    fn local_nla(&self) -> IpAddr;

    /// Bytes in front of each PGM packet on the wire (20 for raw IPv4, 28 for UDP over IPv4);
    /// the engine subtracts it from the MTU.
    fn ip_overhead(&self) -> usize;

    /// Drop counters.
    fn stats(&self) -> TransportStats;
}

/// Why a transport could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// Opening a raw IP socket was refused (EPERM/EACCES).
    #[error("raw PGM needs root or CAP_NET_RAW; use epgm:// instead")]
    RawNeedsPrivilege,
    /// The interface address and the group are of different address families.
    #[error("interface address {0} and group {1} are of different address families")]
    Family(IpAddr, IpAddr),
    /// A source-specific join names a source that is not a unicast address.
    #[error("source {0} is not a unicast address (source-specific multicast needs the sender's address)")]
    BadSource(IpAddr),
    /// A source-specific join names a source of the other address family than the group.
    #[error("source {0} and group {1} are of different address families")]
    SourceFamily(IpAddr, IpAddr),
    /// A socket call failed.
    #[error("{what}: {source}")]
    Io {
        /// The call that failed, e.g. "bind 239.192.0.1:7500".
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl TransportError {
    /// Wraps an OS error with the call that produced it.
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        TransportError::Io {
            what: what.into(),
            source,
        }
    }
}

/// Finds an interface by name (its first IPv4 address) or by one of its addresses.
/// `Ok(None)` when no interface matches.
pub fn find_interface(spec: &str) -> io::Result<Option<Interface>> {
    find_interface_for(spec, false)
}

/// Finds an interface by one of its addresses, by name or by index (`%3` or `3`), with an
/// address of the family of the group (`v6`). By name or index, an IPv6 interface's NLA is
/// its first global or unique-local address, else its link-local one (which then needs the
/// interface as its scope, as every link-local address does). `Ok(None)` when no interface
/// matches.
pub fn find_interface_for(spec: &str, v6: bool) -> io::Result<Option<Interface>> {
    let all = interfaces()?;
    if let Ok(addr) = spec.parse::<IpAddr>() {
        return Ok(all.into_iter().find(|i| i.addr == addr));
    }
    // An IPv6 literal with a zone (`fe80::1%eth0`): the address on that interface.
    if let Some((addr, zone)) = spec.split_once('%') {
        if let Ok(addr) = addr.parse::<IpAddr>() {
            return Ok(all
                .into_iter()
                .find(|i| i.addr == addr && (i.name == zone || i.index.to_string() == zone)));
        }
    }
    let index = spec.trim_start_matches('%').parse::<u32>().ok();
    let named = all
        .into_iter()
        .filter(|i| i.name == spec || Some(i.index) == index)
        .filter(|i| i.addr.is_ipv6() == v6);
    if !v6 {
        return Ok(named.into_iter().next());
    }
    let mut named: Vec<Interface> = named.collect();
    // Global or unique-local first: a link-local NLA is reachable only from the link.
    named.sort_by_key(|i| match i.addr {
        IpAddr::V6(a) => crate::sys::mmsg::needs_scope(a),
        IpAddr::V4(_) => true,
    });
    Ok(named.into_iter().next())
}

/// What a multicast transport is asked to open; shared by raw PGM and EPGM.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// The interface multicast is sent and received on; its address is our NLA.
    pub iface: Interface,
    /// The multicast group.
    pub group: IpAddr,
    /// The endpoint port: for EPGM the UDP port of both unicast and multicast traffic.
    pub port: u16,
    /// Receive multicast for the group (a receiver). A sender leaves it off: everything it
    /// must hear (NAKs, SPMR copies) is unicast to its NLA.
    pub join_group: bool,
    /// Receive unicast at our NLA (a sender: NAKs and SPMRs).
    pub receive_unicast: bool,
    /// IP_MULTICAST_TTL.
    pub hops: u32,
    /// IP_MULTICAST_LOOP (forced on for a loopback interface).
    pub multicast_loop: bool,
    /// IP_TOS.
    pub tos: u32,
    /// SO_RCVBUF asked for (the kernel caps it at `net.core.rmem_max`).
    pub rcvbuf: usize,
    /// SO_SNDBUF asked for (capped at `net.core.wmem_max`).
    pub sndbuf: usize,
    /// Source-specific multicast: a receiver joins (S, G) for each of these sources instead
    /// of (*, G), and drops packets from any other source (the kernel filters them too, but
    /// not everywhere). Empty: any source.
    pub sources: Vec<IpAddr>,
}

impl TransportConfig {
    /// True for an IPv6 session; an error when the interface address and the group are of
    /// different families.
    pub fn is_v6(&self) -> Result<bool, TransportError> {
        match (self.iface.addr, self.group) {
            (IpAddr::V4(_), IpAddr::V4(_)) => Ok(false),
            (IpAddr::V6(_), IpAddr::V6(_)) => Ok(true),
            (a, g) => Err(TransportError::Family(a, g)),
        }
    }

    /// The socket domain of the session.
    pub fn domain(&self) -> Result<socket2::Domain, TransportError> {
        Ok(if self.is_v6()? {
            socket2::Domain::IPV6
        } else {
            socket2::Domain::IPV4
        })
    }

    /// `ip:port` as a socket address, with the interface as the scope of an IPv6 link-local
    /// address.
    pub fn sockaddr(&self, ip: IpAddr, port: u16) -> SocketAddr {
        match ip {
            IpAddr::V4(a) => SocketAddrV4::new(a, port).into(),
            IpAddr::V6(a) => {
                let scope = if crate::sys::mmsg::needs_scope(a) {
                    self.iface.index
                } else {
                    0
                };
                SocketAddrV6::new(a, port, 0, scope).into()
            }
        }
    }

    /// IP_MULTICAST_LOOP as applied: on for a loopback interface whatever was asked.
    pub fn effective_loop(&self) -> bool {
        self.multicast_loop || self.iface.loopback
    }

    /// Sets the options of a socket that sends multicast: IP_MULTICAST_IF = the interface
    /// address, IP_MULTICAST_TTL, IP_MULTICAST_LOOP, IP_TOS and SO_SNDBUF (IPv6:
    /// IPV6_MULTICAST_IF = the interface index, IPV6_MULTICAST_HOPS, IPV6_MULTICAST_LOOP,
    /// IPV6_TCLASS); non-blocking.
    pub fn apply_send_options(&self, sock: &Socket) -> Result<(), TransportError> {
        if let IpAddr::V4(addr) = self.iface.addr {
            sock.set_multicast_if_v4(&addr)
                .map_err(|e| TransportError::io(format!("IP_MULTICAST_IF {addr}"), e))?;
            sock.set_multicast_ttl_v4(self.hops)
                .map_err(|e| TransportError::io(format!("IP_MULTICAST_TTL {}", self.hops), e))?;
            sock.set_multicast_loop_v4(self.effective_loop())
                .map_err(|e| TransportError::io("IP_MULTICAST_LOOP", e))?;
            if self.tos != 0 {
                sock.set_tos(self.tos)
                    .map_err(|e| TransportError::io(format!("IP_TOS {:#x}", self.tos), e))?;
            }
        } else {
            let index = self.iface.index;
            sock.set_multicast_if_v6(index)
                .map_err(|e| TransportError::io(format!("IPV6_MULTICAST_IF {index}"), e))?;
            sock.set_multicast_hops_v6(self.hops)
                .map_err(|e| TransportError::io(format!("IPV6_MULTICAST_HOPS {}", self.hops), e))?;
            sock.set_multicast_loop_v6(self.effective_loop())
                .map_err(|e| TransportError::io("IPV6_MULTICAST_LOOP", e))?;
            if self.tos != 0 {
                sock.set_tclass_v6(self.tos)
                    .map_err(|e| TransportError::io(format!("IPV6_TCLASS {:#x}", self.tos), e))?;
            }
        }
        // Best effort: the kernel silently caps the size; a failure here is not fatal.
        let _ = sock.set_send_buffer_size(self.sndbuf);
        sock.set_nonblocking(true)
            .map_err(|e| TransportError::io("O_NONBLOCK", e))
    }

    /// Sets the options of a socket that receives: SO_RCVBUF, IP_MULTICAST_ALL = 0 (only groups
    /// this socket joined), non-blocking.
    pub fn apply_recv_options(&self, sock: &Socket) -> Result<(), TransportError> {
        let _ = sock.set_recv_buffer_size(self.rcvbuf);
        // Linux delivers every group any socket on the host joined unless this is off
        // (libzmq #2056).
        if self.is_v6()? {
            // Linux 4.20+; before that, packets of other groups are filtered by destination.
            let _ = sock.set_multicast_all_v6(false);
        } else {
            sock.set_multicast_all_v4(false)
                .map_err(|e| TransportError::io("IP_MULTICAST_ALL", e))?;
        }
        sock.set_nonblocking(true)
            .map_err(|e| TransportError::io("O_NONBLOCK", e))
    }

    /// Joins the group on the interface (IPv4: by its address; IPv6: by its index), or
    /// (S, G) for each of [`TransportConfig::sources`].
    pub fn join(&self, sock: &Socket) -> Result<(), TransportError> {
        self.is_v6()?;
        let (group, iface) = (self.group, &self.iface);
        for &source in &self.sources {
            if source.is_ipv6() != group.is_ipv6() {
                return Err(TransportError::SourceFamily(source, group));
            }
            if !is_unicast(source) {
                return Err(TransportError::BadSource(source));
            }
        }
        if self.sources.is_empty() {
            let joined = match (group, iface.addr) {
                (IpAddr::V4(g), IpAddr::V4(a)) => sock.join_multicast_v4(&g, &a),
                (IpAddr::V6(g), _) => sock.join_multicast_v6(&g, iface.index),
                (IpAddr::V4(_), IpAddr::V6(_)) => {
                    return Err(TransportError::Family(iface.addr, group))
                }
            };
            return joined
                .map_err(|e| TransportError::io(format!("join {group} on {}", iface.name), e));
        }
        for &s in &self.sources {
            let joined = match (s, group, iface.addr) {
                (IpAddr::V4(s), IpAddr::V4(g), IpAddr::V4(a)) => sock.join_ssm_v4(&s, &g, &a),
                _ => join_source_group(sock.as_raw_fd(), iface.index, s, group),
            };
            joined.map_err(|e| {
                TransportError::io(format!("join ({s}, {group}) on {}", iface.name), e)
            })?;
        }
        Ok(())
    }

    /// True when a packet addressed to `dst` belongs to this session: our group, or our NLA.
    pub fn wants(&self, dst: IpAddr) -> bool {
        dst == self.group || dst == self.iface.addr
    }

    /// True when a packet from `src` may reach the engine: any source, or one of the
    /// source-specific joins.
    pub fn accepts_source(&self, src: IpAddr) -> bool {
        self.sources.is_empty() || self.sources.contains(&src)
    }
}

/// A unicast address a sender can have (not multicast, broadcast or unspecified).
fn is_unicast(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => !(a.is_multicast() || a.is_broadcast() || a.is_unspecified()),
        IpAddr::V6(a) => !(a.is_multicast() || a.is_unspecified()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_found_by_name_and_address() {
        let by_name = find_interface("lo").unwrap().expect("lo exists");
        assert!(by_name.loopback);
        assert_eq!(by_name.addr, IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        assert!(by_name.index > 0);
        let by_addr = find_interface("127.0.0.1")
            .unwrap()
            .expect("127.0.0.1 exists");
        assert_eq!(by_addr.name, "lo");
        assert!(find_interface("no-such-if0").unwrap().is_none());
        assert!(find_interface("203.0.113.77").unwrap().is_none());
    }
}
