//! Moving PGM packets between the engine and the OS: the [`Transport`] trait, interface lookup,
//! the socket options every multicast transport sets, and raw IPv4 PGM ([`raw`]).
//!
//! A transport owns its OS sockets. The driver in [`crate::socket`] registers the descriptors
//! from [`Transport::fds`] with its mio loop (edge-triggered), then calls
//! [`Transport::recv_batch`] until a batch comes back [drained](RecvBatch::is_drained), and
//! [`Transport::send_batch`] with up to [`BATCH`] packets the engine wrote straight into
//! reusable [`Outgoing`] buffers. Both transports here implement the batch calls with one
//! `recvmmsg`/`sendmmsg` per batch ([`mmsg`]); a transport that only implements the
//! one-packet calls ([`Transport::recv`], [`Transport::send_to`]) gets batch calls that loop
//! over them. The UDP encapsulation (EPGM) lives in the `epgm` crate and implements the same
//! trait, so one driver serves both.
//!
//! Addresses are [`IpAddr`] throughout; the transports in this workspace support IPv4 only
//! today and report IPv6 as [`TransportError::Ipv6NotSupported`].

mod batch;
mod lossy;
pub mod mmsg;
pub mod raw;

pub use batch::{Outgoing, RecvBatch, BATCH, MAX_DATAGRAM};
pub use lossy::Lossy;

use std::{
    ffi::CStr,
    io,
    net::{IpAddr, Ipv4Addr},
    ops::Range,
    os::fd::RawFd,
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
    /// Packets addressed to neither our group nor our unicast address (another session
    /// sharing the port or protocol).
    pub filtered: u64,
    /// Packets larger than the receive buffer (cut short, so dropped).
    pub truncated: u64,
    /// Packets whose IP header or ancillary data could not be read.
    pub malformed: u64,
    /// Packets dropped on purpose by [`Lossy`].
    pub simulated_loss: u64,
    /// Times the path refused UDP GSO (it is then off for the socket).
    pub gso_refused: u64,
}

/// A way to send and receive PGM packets; implemented by [`raw::RawTransport`] and by the
/// `epgm` crate's UDP transport.
///
/// All sockets are non-blocking. Implementations may batch: the driver calls
/// [`Transport::flush`] after each burst of [`Transport::send_to`] calls.
pub trait Transport: Send + 'static {
    /// Sends one PGM packet to `dst` (the group, or a unicast NLA). An error of kind
    /// [`io::ErrorKind::WouldBlock`] means it was not sent and should be retried once a
    /// descriptor becomes writable.
    fn send_to(&mut self, dst: IpAddr, pkt: &[u8]) -> io::Result<()>;

    /// Pushes out anything a batching implementation still holds. The default does nothing.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Sends `pkts` in order, as many as the socket takes; returns how many went out.
    ///
    /// `Ok(n)` with `n < pkts.len()` means packet `n` was not sent: call again from there to
    /// learn why. An error means `pkts[0]` was not sent; [`io::ErrorKind::WouldBlock`] (or
    /// ENOBUFS) means retry once a descriptor is writable, any other error is about that
    /// packet alone. The default calls [`Transport::send_to`] for each.
    fn send_batch(&mut self, pkts: &[Outgoing]) -> io::Result<usize> {
        for (i, p) in pkts.iter().enumerate() {
            if let Err(e) = self.send_to(p.dst, &p.buf) {
                return if i == 0 { Err(e) } else { Ok(i) };
            }
        }
        Ok(pkts.len())
    }

    /// Receives the next packet for this session into `buf`, skipping packets addressed
    /// elsewhere; `Ok(None)` when every socket is drained (would block).
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<Datagram>>;

    /// Fills the spare slots of `batch` with packets for this session (skipping packets
    /// addressed elsewhere) and marks it [drained](RecvBatch::set_drained) when every socket
    /// would block. An error with nothing received is returned; after a partial batch it is
    /// left for the next call. The default calls [`Transport::recv`] once per slot.
    fn recv_batch(&mut self, batch: &mut RecvBatch) -> io::Result<()> {
        while batch.spare_slots() > 0 {
            let slot_len = batch.slot_len();
            let got = self.recv(&mut batch.spare_mut()[..slot_len]);
            match got {
                Ok(Some(d)) => batch.push(d),
                Ok(None) => {
                    batch.set_drained();
                    return Ok(());
                }
                Err(e) if batch.is_empty() => return Err(e),
                Err(_) => return Ok(()),
            }
        }
        Ok(())
    }

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
    /// The group or interface is IPv6.
    #[error("IPv6 is not supported yet ({0})")]
    Ipv6NotSupported(IpAddr),
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

/// A local network interface with an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The interface name (`lo`, `eth0`).
    pub name: String,
    /// The interface index (`if_nametoindex`).
    pub index: u32,
    /// Its address (the first IPv4 address when looked up by name).
    pub addr: IpAddr,
    /// `IFF_LOOPBACK` is set: multicast sent through it must loop back to be seen at all.
    pub loopback: bool,
}

/// Every (interface, address) pair of this host, from `getifaddrs`.
pub fn interfaces() -> io::Result<Vec<Interface>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&raw mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, valid until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_addr points to a sockaddr whose family says how long it is.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        let addr = match family {
            libc::AF_INET => {
                // SAFETY: the family is AF_INET, so this is a sockaddr_in.
                let sin: libc::sockaddr_in =
                    unsafe { std::ptr::read_unaligned(ifa.ifa_addr.cast()) };
                IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
            }
            libc::AF_INET6 => {
                // SAFETY: the family is AF_INET6, so this is a sockaddr_in6.
                let sin6: libc::sockaddr_in6 =
                    unsafe { std::ptr::read_unaligned(ifa.ifa_addr.cast()) };
                IpAddr::V6(sin6.sin6_addr.s6_addr.into())
            }
            _ => continue,
        };
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let cname = unsafe { CStr::from_ptr(ifa.ifa_name) };
        // SAFETY: if_nametoindex only reads the NUL-terminated name.
        let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        out.push(Interface {
            name: cname.to_string_lossy().into_owned(),
            index,
            addr,
            loopback: ifa.ifa_flags & (libc::IFF_LOOPBACK as libc::c_uint) != 0,
        });
    }
    // SAFETY: `head` came from getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// Finds an interface by name (its first IPv4 address) or by one of its IPv4 addresses.
/// `Ok(None)` when no interface matches.
pub fn find_interface(spec: &str) -> io::Result<Option<Interface>> {
    let all = interfaces()?;
    if let Ok(addr) = spec.parse::<IpAddr>() {
        return Ok(all.into_iter().find(|i| i.addr == addr));
    }
    Ok(all.into_iter().find(|i| i.name == spec && i.addr.is_ipv4()))
}

/// What a multicast transport is asked to open; shared by raw PGM and EPGM.
#[derive(Debug, Clone)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent socket options, not a state machine"
)]
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
    /// UDP transports: send runs of multicast packets with UDP GSO (see
    /// [`mmsg::MmsgSender::send_connected_gso`]); falls back by itself where the path cannot.
    pub udp_gso: bool,
}

impl TransportConfig {
    /// The interface address and group as IPv4, or the IPv6 one that is not supported yet.
    pub fn v4(&self) -> Result<(Ipv4Addr, Ipv4Addr), TransportError> {
        match (self.iface.addr, self.group) {
            (IpAddr::V4(a), IpAddr::V4(g)) => Ok((a, g)),
            (IpAddr::V6(_), _) => Err(TransportError::Ipv6NotSupported(self.iface.addr)),
            (_, IpAddr::V6(_)) => Err(TransportError::Ipv6NotSupported(self.group)),
        }
    }

    /// IP_MULTICAST_LOOP as applied: on for a loopback interface whatever was asked.
    pub fn effective_loop(&self) -> bool {
        self.multicast_loop || self.iface.loopback
    }

    /// Sets the options of a socket that sends multicast: IP_MULTICAST_IF = the interface
    /// address, IP_MULTICAST_TTL, IP_MULTICAST_LOOP, IP_TOS and SO_SNDBUF; non-blocking.
    pub fn apply_send_options(&self, sock: &Socket) -> Result<(), TransportError> {
        let (addr, _) = self.v4()?;
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
        // (interop-notes §2, libzmq #2056).
        sock.set_multicast_all_v4(false)
            .map_err(|e| TransportError::io("IP_MULTICAST_ALL", e))?;
        sock.set_nonblocking(true)
            .map_err(|e| TransportError::io("O_NONBLOCK", e))
    }

    /// Joins the group on the interface (by its address).
    pub fn join(&self, sock: &Socket) -> Result<(), TransportError> {
        let (addr, group) = self.v4()?;
        sock.join_multicast_v4(&group, &addr)
            .map_err(|e| TransportError::io(format!("join {group} on {addr}"), e))
    }

    /// True when a packet addressed to `dst` belongs to this session: our group, or our NLA.
    pub fn wants(&self, dst: IpAddr) -> bool {
        dst == self.group || dst == self.iface.addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_found_by_name_and_address() {
        let by_name = find_interface("lo").unwrap().expect("lo exists");
        assert!(by_name.loopback);
        assert_eq!(by_name.addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(by_name.index > 0);
        let by_addr = find_interface("127.0.0.1")
            .unwrap()
            .expect("127.0.0.1 exists");
        assert_eq!(by_addr.name, "lo");
        assert!(find_interface("no-such-if0").unwrap().is_none());
        assert!(find_interface("203.0.113.77").unwrap().is_none());
    }
}
