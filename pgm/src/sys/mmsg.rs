//! `sendmmsg`/`recvmmsg` for IPv4 and IPv6 sockets: many datagrams per syscall, with the
//! control messages the transports need (IP_PKTINFO / IPV6_PKTINFO in, IP_TTL /
//! IPV6_HOPLIMIT and UDP_SEGMENT out).
//!
//! Used by the raw transport, the `epgm` crate's UDP transport and `udp-perf`. The message
//! headers are kept between calls (no allocation per call) and rewritten before every call, so
//! they never point at anything outside the call.

use std::{
    io, mem,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::RawFd,
};

/// Packets moved per `sendmmsg`/`recvmmsg` call at most. 64 amortises the syscall to a few
/// percent of the per-packet kernel cost; more only grows the buffers.
pub const BATCH: usize = 64;

/// One packet to send: where to, and the bytes (a buffer the caller reuses).
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The multicast group, or a unicast address.
    pub dst: IpAddr,
    /// The payload (for UDP the whole datagram payload, for raw IP everything after the IP
    /// header).
    pub buf: Vec<u8>,
    /// An IP TTL instead of the socket's (`pgm::Transmit::ttl`).
    pub ttl: Option<u8>,
}

impl Default for Outgoing {
    fn default() -> Self {
        Outgoing {
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            buf: Vec::new(),
            ttl: None,
        }
    }
}

/// Room for a `sockaddr_in` or a `sockaddr_in6`.
type SockAddr = libc::sockaddr_in6;

fn zeroed_sockaddr() -> SockAddr {
    // SAFETY: sockaddr_in6 is plain data; all-zero is a valid value.
    unsafe { mem::zeroed() }
}

/// Writes `ip:port` into `sa` (`scope`: the interface index an IPv6 link-local address needs);
/// returns the length to pass with it.
fn write_sockaddr(sa: &mut SockAddr, ip: IpAddr, port: u16, scope: u32) -> libc::socklen_t {
    match ip {
        IpAddr::V4(ip) => {
            // SAFETY: sockaddr_in is plain data; all-zero is a valid value.
            let mut sin: libc::sockaddr_in = unsafe { mem::zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = port.to_be();
            sin.sin_addr.s_addr = u32::from(ip).to_be();
            // SAFETY: a sockaddr_in (16 bytes) fits in the sockaddr_in6 (28 bytes) it starts.
            unsafe { std::ptr::write_unaligned((&raw mut *sa).cast::<libc::sockaddr_in>(), sin) };
            mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        IpAddr::V6(ip) => {
            *sa = zeroed_sockaddr();
            sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sa.sin6_port = port.to_be();
            sa.sin6_addr.s6_addr = ip.octets();
            if needs_scope(ip) {
                sa.sin6_scope_id = scope;
            }
            mem::size_of::<SockAddr>() as libc::socklen_t
        }
    }
}

/// The address in `sa` as the kernel wrote it (`len` bytes), if it is IPv4 or IPv6.
fn read_sockaddr(sa: &SockAddr, len: usize) -> Option<IpAddr> {
    match i32::from(sa.sin6_family) {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family is AF_INET and the kernel wrote a whole sockaddr_in.
            let sin =
                unsafe { std::ptr::read_unaligned((&raw const *sa).cast::<libc::sockaddr_in>()) };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 if len >= mem::size_of::<SockAddr>() => {
            Some(IpAddr::V6(Ipv6Addr::from(sa.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

/// True for IPv6 addresses that mean nothing without an interface: link-local unicast
/// (fe80::/10) and interface- or link-local multicast (ffx1::/16, ffx2::/16).
pub fn needs_scope(ip: Ipv6Addr) -> bool {
    let s = ip.segments()[0];
    (s & 0xffc0) == 0xfe80 || (ip.is_multicast() && matches!(s & 0x000f, 1 | 2))
}

/// Most datagrams one UDP GSO send may carry (the kernel's `UDP_MAX_SEGMENTS` has been 64
/// or more since GSO came in, Linux 4.18).
pub const GSO_MAX_SEGMENTS: usize = 64;
/// Most UDP payload bytes one GSO send may carry. The whole run, with its UDP, IP (v6: 40 B)
/// and link-layer headers, must stay below the device's `gso_max_size` (65 536 on veth and
/// most NICs): a larger one the kernel cuts into datagrams in software before the device
/// (`validate_xmit_skb`), which made 1400 B EPGM 5× slower than runs that fit. 64 000 leaves
/// room for every header.
const GSO_MAX_BYTES: usize = 64_000;

/// How many of the packets with lengths and TTL overrides `pkts` (at least one) go in the
/// first GSO run: all of one size and TTL, the last possibly shorter, at most
/// [`GSO_MAX_SEGMENTS`] and [`GSO_MAX_BYTES`].
fn gso_run(mut pkts: impl Iterator<Item = (usize, Option<u8>)>) -> usize {
    let Some((seg, ttl)) = pkts.next() else {
        return 0;
    };
    let (mut n, mut bytes) = (1, seg);
    for (len, t) in pkts {
        if n == GSO_MAX_SEGMENTS || len > seg || len == 0 || t != ttl || bytes + len > GSO_MAX_BYTES
        {
            break;
        }
        n += 1;
        bytes += len;
        if len < seg {
            // A shorter packet ends the run.
            break;
        }
    }
    n
}

/// Control buffer of one message: room for UDP_SEGMENT (`CMSG_SPACE(2)` = 24 on 64-bit) and
/// IP_TTL or IPV6_HOPLIMIT (`CMSG_SPACE(4)` = 24). u64 elements keep it aligned for `cmsghdr`.
type TxControl = [u64; 8];

/// Points `h` at `control` filled with a UDP_SEGMENT message (`seg`, for a GSO run) and an
/// IP_TTL (IPV6_HOPLIMIT when `v6`) message (`ttl`), or at no control data when both are
/// `None`.
fn set_control(
    h: &mut libc::msghdr,
    control: &mut TxControl,
    seg: Option<u16>,
    ttl: Option<u8>,
    v6: bool,
) {
    if seg.is_none() && ttl.is_none() {
        h.msg_control = std::ptr::null_mut();
        h.msg_controllen = 0;
        return;
    }
    *control = [0; 8];
    h.msg_control = control.as_mut_ptr().cast();
    h.msg_controllen = mem::size_of::<TxControl>();
    let mut used = 0;
    // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR walk `control` (64 bytes, zeroed, aligned) within
    // msg_controllen; the two messages take CMSG_SPACE(2) + CMSG_SPACE(4) = 48 bytes.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const *h);
        if let Some(seg) = seg {
            (*cmsg).cmsg_level = libc::SOL_UDP;
            (*cmsg).cmsg_type = libc::UDP_SEGMENT;
            (*cmsg).cmsg_len = libc::CMSG_LEN(mem::size_of::<u16>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), seg);
            used += libc::CMSG_SPACE(mem::size_of::<u16>() as u32) as usize;
            cmsg = libc::CMSG_NXTHDR(&raw const *h, cmsg);
        }
        if let Some(ttl) = ttl {
            (*cmsg).cmsg_level = if v6 {
                libc::IPPROTO_IPV6
            } else {
                libc::IPPROTO_IP
            };
            (*cmsg).cmsg_type = if v6 {
                libc::IPV6_HOPLIMIT
            } else {
                libc::IP_TTL
            };
            (*cmsg).cmsg_len = libc::CMSG_LEN(mem::size_of::<libc::c_int>() as u32) as usize;
            std::ptr::write_unaligned(
                libc::CMSG_DATA(cmsg).cast::<libc::c_int>(),
                libc::c_int::from(ttl),
            );
            used += libc::CMSG_SPACE(mem::size_of::<libc::c_int>() as u32) as usize;
        }
    }
    h.msg_controllen = used;
}

/// Sends batches with one `sendmmsg` each.
pub struct MmsgSender {
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    addrs: Vec<SockAddr>,
    /// Packets per header of the last call.
    group_len: Vec<usize>,
    controls: Vec<TxControl>,
    /// Interface index given to IPv6 link-local destinations.
    scope: u32,
}

// SAFETY: the raw pointers inside the headers are written right before each `sendmmsg` and
// only point at this struct's own arrays and the caller's buffers for the duration of the
// call; nothing reads them afterwards, so moving the struct to another thread is sound.
unsafe impl Send for MmsgSender {}

impl std::fmt::Debug for MmsgSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmsgSender").finish_non_exhaustive()
    }
}

impl Default for MmsgSender {
    fn default() -> Self {
        Self::new()
    }
}

impl MmsgSender {
    /// Headers for [`BATCH`] packets.
    pub fn new() -> Self {
        // SAFETY: mmsghdr, iovec and sockaddr_in are plain data; all-zero is valid.
        let zeroed = || unsafe { mem::zeroed() };
        MmsgSender {
            hdrs: (0..BATCH).map(|_| zeroed()).collect(),
            iovs: (0..BATCH)
                .map(|_| libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
            addrs: (0..BATCH).map(|_| zeroed_sockaddr()).collect(),
            group_len: vec![0; BATCH],
            controls: vec![[0; 8]; BATCH],
            scope: 0,
        }
    }

    /// IPv6 link-local destinations go out on interface `index` (their scope).
    #[must_use]
    pub fn with_scope(mut self, index: u32) -> Self {
        self.scope = index;
        self
    }

    /// Like [`MmsgSender::send_connected`] on a UDP socket with generic segmentation offload
    /// (GSO): each run of packets of one size (the last of a run may be shorter) goes down the
    /// stack as one datagram with a UDP_SEGMENT control message, and is cut into the same
    /// datagrams as ever at the device (or by the NIC). The wire is unchanged; the IP and UDP
    /// layers run once per run instead of once per packet. Returns how many packets went out.
    ///
    /// Errors are about the first run. EIO, EINVAL or ENOPROTOOPT on a run of several packets
    /// mean the path cannot segment: send without GSO ([`is_gso_refusal`]).
    pub fn send_connected_gso(&mut self, fd: RawFd, pkts: &[Outgoing]) -> io::Result<usize> {
        self.send_runs(fd, pkts, None, true)
    }

    /// Sends up to [`BATCH`] of `pkts`, each to `dst:port` (the port is ignored by raw
    /// sockets), with one `sendmmsg`. Returns how many went out: fewer than asked when the
    /// socket buffer filled or a later packet failed (retrying from the first unsent one
    /// reports its error). Every destination must be of the socket's address family.
    pub fn send(&mut self, fd: RawFd, pkts: &[Outgoing], port: u16) -> io::Result<usize> {
        self.send_runs(fd, pkts, Some(port), false)
    }

    /// Like [`MmsgSender::send`] on a connected socket: no destination addresses (the kernel
    /// reuses the route it cached at `connect`, saving a route lookup per packet). Every
    /// packet goes to the connected address whatever its `dst` says.
    pub fn send_connected(&mut self, fd: RawFd, pkts: &[Outgoing]) -> io::Result<usize> {
        self.send_runs(fd, pkts, None, false)
    }

    /// One `sendmmsg` of up to [`BATCH`] packets: one message header per GSO run (`gso`), or
    /// per packet; to `dst:port` when a port is given, else to the connected address. Returns
    /// how many packets went out.
    fn send_runs(
        &mut self,
        fd: RawFd,
        pkts: &[Outgoing],
        port: Option<u16>,
        gso: bool,
    ) -> io::Result<usize> {
        let pkts = &pkts[..pkts.len().min(BATCH)];
        let addrs = self.addrs.as_mut_ptr();
        let iovs = self.iovs.as_mut_ptr();
        let mut groups = 0;
        let mut i = 0;
        while i < pkts.len() {
            let ip = pkts[i].dst;
            let (seg, ttl) = (pkts[i].buf.len(), pkts[i].ttl);
            let n = if gso {
                gso_run(pkts[i..].iter().map(|p| (p.buf.len(), p.ttl)))
            } else {
                1
            };
            for (k, p) in pkts[i..i + n].iter().enumerate() {
                self.iovs[i + k] = libc::iovec {
                    iov_base: p.buf.as_ptr().cast_mut().cast(),
                    iov_len: p.buf.len(),
                };
            }
            let h = &mut self.hdrs[groups];
            if let Some(port) = port {
                let len = write_sockaddr(&mut self.addrs[groups], ip, port, self.scope);
                // SAFETY: `groups < BATCH`, the length of `addrs`.
                h.msg_hdr.msg_name = unsafe { addrs.add(groups) }.cast();
                h.msg_hdr.msg_namelen = len;
            } else {
                h.msg_hdr.msg_name = std::ptr::null_mut();
                h.msg_hdr.msg_namelen = 0;
            }
            // SAFETY: `i < BATCH`, the length of `iovs`.
            h.msg_hdr.msg_iov = unsafe { iovs.add(i) };
            h.msg_hdr.msg_iovlen = n;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
            let run = (n > 1).then_some(seg as u16);
            set_control(
                &mut h.msg_hdr,
                &mut self.controls[groups],
                run,
                ttl,
                ip.is_ipv6(),
            );
            self.group_len[groups] = n;
            groups += 1;
            i += n;
        }
        if groups == 0 {
            return Ok(0);
        }
        // SAFETY: the first `groups` headers point at live addresses, iovecs, control buffers
        // and packet buffers (the kernel only reads the packets; `cast_mut` above is for the C
        // signature).
        let rc = unsafe { libc::sendmmsg(fd, self.hdrs.as_mut_ptr(), groups as libc::c_uint, 0) };
        let sent = usize::try_from(rc).map_err(|_| io::Error::last_os_error())?;
        Ok(self.group_len[..sent].iter().sum())
    }
}

/// True when a [`MmsgSender::send_connected_gso`] error means the path cannot segment (the
/// device or the kernel refuses UDP GSO), as opposed to an error about the packets.
pub fn is_gso_refusal(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
    )
}

/// What `recvmmsg` said about one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvInfo {
    /// Bytes written into the slot.
    pub len: usize,
    /// The datagram was longer than the slot (MSG_TRUNC): the rest is lost.
    pub truncated: bool,
    /// The source address, when the kernel gave one.
    pub src: Option<IpAddr>,
    /// The header destination from IP_PKTINFO or IPV6_PKTINFO, when asked for and present.
    pub dst: Option<IpAddr>,
    /// With UDP_GRO ([`MmsgReceiver::with_gro`]): the slot holds several datagrams of the
    /// same flow back to back, each this many bytes (the last may be shorter).
    pub segment: Option<usize>,
}

/// Control buffer per message: room for one IP_PKTINFO (`CMSG_SPACE(12)` = 32 on 64-bit) or
/// IPV6_PKTINFO (`CMSG_SPACE(20)` = 40), and a UDP_GRO (`CMSG_SPACE(4)` = 24) besides. u64 elements keep it aligned for `cmsghdr`.
type Control = [u64; 8];

/// Receives batches with one `recvmmsg` each.
pub struct MmsgReceiver {
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    names: Vec<SockAddr>,
    control: Vec<Control>,
    infos: Vec<RecvInfo>,
    pktinfo: bool,
    /// Read UDP_GRO control messages.
    gro: bool,
    /// The buffer (address, slot length) and header count the headers point at now.
    prepared: ((usize, usize), usize),
    /// Headers the kernel wrote to in the last call.
    written: usize,
}

// SAFETY: as for `MmsgSender`: the header pointers are rewritten before each `recvmmsg` and
// only used during it.
unsafe impl Send for MmsgReceiver {}

impl std::fmt::Debug for MmsgReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmsgReceiver")
            .field("pktinfo", &self.pktinfo)
            .field("gro", &self.gro)
            .finish_non_exhaustive()
    }
}

impl MmsgReceiver {
    /// Headers for [`BATCH`] datagrams; `pktinfo` reads the IP_PKTINFO / IPV6_PKTINFO control
    /// message (the socket must have it set: [`crate::sys::net::set_pktinfo`]).
    pub fn new(pktinfo: bool) -> Self {
        // SAFETY: mmsghdr, iovec and sockaddr_in are plain data; all-zero is valid.
        let zeroed = || unsafe { mem::zeroed() };
        MmsgReceiver {
            hdrs: (0..BATCH).map(|_| zeroed()).collect(),
            iovs: (0..BATCH)
                .map(|_| libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
            names: (0..BATCH).map(|_| zeroed_sockaddr()).collect(),
            control: vec![[0; 8]; BATCH],
            infos: Vec::with_capacity(BATCH),
            pktinfo,
            gro: false,
            prepared: ((0, 0), 0),
            written: 0,
        }
    }

    /// These headers, also reading UDP_GRO control messages ([`RecvInfo::segment`]); the
    /// socket must have UDP_GRO on ([`crate::sys::net::set_udp_gro`]), and slots should take
    /// 64 KiB: a coalesced run longer than its slot is cut short.
    #[must_use]
    pub fn with_gro(mut self) -> Self {
        self.gro = true;
        self.prepared = ((0, 0), 0);
        self
    }

    /// Control messages are read.
    fn control(&self) -> bool {
        self.pktinfo || self.gro
    }

    /// Receives up to `max` datagrams (at most [`BATCH`], at most what fits) into `spare`,
    /// one per `slot_len`-byte slot, with one non-blocking `recvmmsg`. An empty socket is
    /// [`io::ErrorKind::WouldBlock`]. Fewer than `max` means the socket was drained.
    pub fn recv(
        &mut self,
        fd: RawFd,
        spare: &mut [u8],
        slot_len: usize,
        max: usize,
    ) -> io::Result<&[RecvInfo]> {
        self.recv_with(fd, spare, slot_len, max, libc::MSG_DONTWAIT)
    }

    /// Like [`MmsgReceiver::recv`], but waits for the first datagram (MSG_WAITFORONE: up to
    /// the socket's receive timeout, if it has one), then takes what else is there.
    pub fn recv_wait(
        &mut self,
        fd: RawFd,
        spare: &mut [u8],
        slot_len: usize,
        max: usize,
    ) -> io::Result<&[RecvInfo]> {
        self.recv_with(fd, spare, slot_len, max, libc::MSG_WAITFORONE)
    }

    fn recv_with(
        &mut self,
        fd: RawFd,
        spare: &mut [u8],
        slot_len: usize,
        max: usize,
        flags: libc::c_int,
    ) -> io::Result<&[RecvInfo]> {
        self.infos.clear();
        let n = max.min(BATCH).min(spare.len() / slot_len.max(1));
        if n == 0 {
            return Ok(&self.infos);
        }
        let base = spare.as_mut_ptr();
        let key = (base as usize, slot_len);
        if self.prepared.0 == key && self.prepared.1 >= n {
            // Same buffers as last time: only the headers the kernel wrote need resetting
            // (a spinning caller mostly gets EAGAIN and rewrites nothing).
            let control = self.control();
            for h in &mut self.hdrs[..self.written] {
                h.msg_hdr.msg_namelen = mem::size_of::<SockAddr>() as libc::socklen_t;
                if control {
                    h.msg_hdr.msg_controllen = mem::size_of::<Control>();
                }
                h.msg_hdr.msg_flags = 0;
                h.msg_len = 0;
            }
        } else {
            self.prepare(base, slot_len, n);
            self.prepared = (key, n);
        }
        self.written = 0;
        // SAFETY: the first `n` headers point at live, writable buffers of the stated sizes.
        let rc = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        let got = usize::try_from(rc).map_err(|_| io::Error::last_os_error())?;
        self.written = got;
        for i in 0..got {
            let h = &self.hdrs[i];
            let src = read_sockaddr(&self.names[i], h.msg_hdr.msg_namelen as usize);
            let (dst, segment) = if self.control() {
                read_control(&h.msg_hdr)
            } else {
                (None, None)
            };
            self.infos.push(RecvInfo {
                len: h.msg_len as usize,
                truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
                src,
                dst,
                segment,
            });
        }
        Ok(&self.infos)
    }

    /// Points the first `n` headers at `n` slots of `slot_len` bytes from `base`.
    fn prepare(&mut self, base: *mut u8, slot_len: usize, n: usize) {
        let names = self.names.as_mut_ptr();
        let iovs = self.iovs.as_mut_ptr();
        let with_control = self.control();
        let control = self.control.as_mut_ptr();
        for i in 0..n {
            self.iovs[i] = libc::iovec {
                // SAFETY: slot `i` lies within the caller's buffer (checked by `n` in `recv`).
                iov_base: unsafe { base.add(i * slot_len) }.cast(),
                iov_len: slot_len,
            };
            let h = &mut self.hdrs[i];
            // SAFETY: `i < n <= BATCH`, the length of every array.
            h.msg_hdr.msg_name = unsafe { names.add(i) }.cast();
            h.msg_hdr.msg_namelen = mem::size_of::<SockAddr>() as libc::socklen_t;
            // SAFETY: as above.
            h.msg_hdr.msg_iov = unsafe { iovs.add(i) };
            h.msg_hdr.msg_iovlen = 1;
            if with_control {
                // SAFETY: as above; `control` has BATCH entries.
                h.msg_hdr.msg_control = unsafe { control.add(i) }.cast();
                h.msg_hdr.msg_controllen = mem::size_of::<Control>();
            } else {
                h.msg_hdr.msg_control = std::ptr::null_mut();
                h.msg_hdr.msg_controllen = 0;
            }
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
    }
}

/// The destination address of an IP_PKTINFO or IPV6_PKTINFO control message in `msg`, and
/// the segment size of a UDP_GRO one (only when it splits the datagram: one segment is none).
fn read_control(msg: &libc::msghdr) -> (Option<IpAddr>, Option<usize>) {
    let mut dst = None;
    let mut segment = None;
    // SAFETY: the CMSG_* walk stays within msg_controllen as the kernel set it, and the
    // control buffer is alive (owned by the receiver).
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::IPPROTO_IP && c.cmsg_type == libc::IP_PKTINFO {
                let info: libc::in_pktinfo =
                    std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in_pktinfo>());
                dst = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    info.ipi_addr.s_addr,
                ))));
            } else if c.cmsg_level == libc::IPPROTO_IPV6 && c.cmsg_type == libc::IPV6_PKTINFO {
                let info: libc::in6_pktinfo =
                    std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in6_pktinfo>());
                dst = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
            } else if c.cmsg_level == libc::SOL_UDP && c.cmsg_type == libc::UDP_GRO {
                let size: libc::c_int =
                    std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                segment = usize::try_from(size).ok().filter(|&s| s > 0);
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    (dst, segment)
}

#[cfg(test)]
mod tests {
    use std::{net::UdpSocket, os::fd::AsRawFd};

    use super::*;

    #[test]
    fn a_batch_goes_out_and_comes_back_in_one_call_each() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let port = rx.local_addr().unwrap().port();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let pkts: Vec<Outgoing> = (0..10u8)
            .map(|i| Outgoing {
                dst: IpAddr::V4(Ipv4Addr::LOCALHOST),
                buf: vec![i; usize::from(i) + 1],
                ttl: None,
            })
            .collect();
        let mut s = MmsgSender::new();
        assert_eq!(s.send(tx.as_raw_fd(), &pkts, port).unwrap(), 10);
        let mut r = MmsgReceiver::new(false);
        let mut spare = vec![0u8; 16 * 16];
        // Only 5 slots of 4 bytes: datagrams 4.. are cut short.
        let infos = r.recv(rx.as_raw_fd(), &mut spare, 4, 5).unwrap().to_vec();
        assert_eq!(infos.len(), 5);
        let from = match tx.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            std::net::SocketAddr::V6(_) => unreachable!(),
        };
        for (i, info) in infos.iter().enumerate() {
            assert_eq!(info.src, Some(IpAddr::V4(*from.ip())));
            assert_eq!(info.truncated, i >= 4, "{i}: {info:?}");
            assert_eq!(info.len, (i + 1).min(4));
            assert_eq!(spare[i * 4], i as u8);
        }
        let rest = r.recv(rx.as_raw_fd(), &mut spare, 16, 64).unwrap().len();
        assert_eq!(rest, 5, "{rest}");
        let e = r.recv(rx.as_raw_fd(), &mut spare, 16, 64).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }

    /// The same over IPv6 (::1), with IPV6_PKTINFO for the destination and a hop limit
    /// override in the control data.
    #[test]
    fn ipv6_batches_carry_addresses_and_pktinfo() {
        let Ok(rx) = UdpSocket::bind("[::1]:0") else {
            eprintln!("SKIPPED ipv6_batches_carry_addresses_and_pktinfo: no IPv6 on lo");
            return;
        };
        rx.set_nonblocking(true).unwrap();
        crate::sys::net::set_pktinfo(rx.as_raw_fd(), true).unwrap();
        let port = rx.local_addr().unwrap().port();
        let tx = UdpSocket::bind("[::1]:0").unwrap();
        let lo: IpAddr = "::1".parse().unwrap();
        let pkts: Vec<Outgoing> = (0..6u8)
            .map(|i| Outgoing {
                dst: lo,
                buf: vec![i; 10],
                ttl: (i % 2 == 1).then_some(7),
            })
            .collect();
        let mut s = MmsgSender::new();
        assert_eq!(s.send(tx.as_raw_fd(), &pkts, port).unwrap(), 6);
        let mut r = MmsgReceiver::new(true);
        let mut spare = vec![0u8; 64 * 8];
        let infos = r.recv(rx.as_raw_fd(), &mut spare, 64, 8).unwrap().to_vec();
        assert_eq!(infos.len(), 6);
        for (i, info) in infos.iter().enumerate() {
            assert_eq!((info.src, info.dst, info.len), (Some(lo), Some(lo), 10));
            assert_eq!(spare[i * 64], i as u8);
        }
    }

    #[test]
    fn gso_runs_are_one_size_with_a_shorter_last() {
        let run = |lens: &[usize]| gso_run(lens.iter().map(|&n| (n, None)));
        assert_eq!(run(&[]), 0);
        assert_eq!(run(&[100]), 1);
        assert_eq!(run(&[100, 100, 100]), 3);
        // A shorter one ends the run; a longer one starts the next.
        assert_eq!(run(&[100, 100, 40, 100]), 3);
        assert_eq!(run(&[100, 100, 200, 100]), 2);
        assert_eq!(run(&[100; 100]), GSO_MAX_SEGMENTS);
        // Never more than the device takes whole: 44 of 1452 fit in 64 000, 45 do not.
        assert_eq!(run(&[1452; 64]), 44);
        assert_eq!(run(&[1424; 64]), 44);
        assert_eq!(run(&[100, 0, 100]), 1);
        // A TTL override of its own ends the run (it needs its own control message).
        let with_ttl = [(100, None), (100, None), (100, Some(1)), (100, Some(1))];
        assert_eq!(gso_run(with_ttl.into_iter()), 2);
        assert_eq!(gso_run(with_ttl[2..].iter().copied()), 2);
    }

    /// Runs of mixed sizes through GSO on a connected loopback socket arrive as the same
    /// datagrams, in order.
    #[test]
    fn gso_sends_the_same_datagrams() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        let lens = [64, 64, 64, 20, 64, 64, 1400, 1400, 1400, 7, 9, 9, 9, 9];
        let pkts: Vec<Outgoing> = lens
            .iter()
            .enumerate()
            .map(|(i, &n)| Outgoing {
                dst: IpAddr::V4(Ipv4Addr::LOCALHOST),
                buf: vec![i as u8; n],
                ttl: None,
            })
            .collect();
        let mut s = MmsgSender::new();
        match s.send_connected_gso(tx.as_raw_fd(), &pkts) {
            Ok(n) => assert_eq!(n, pkts.len()),
            // A kernel without UDP GSO (before 4.18): nothing to check here.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                eprintln!("SKIPPED: this kernel refuses UDP GSO ({e})");
                return;
            }
            Err(e) => panic!("{e}"),
        }
        let mut buf = [0u8; 2048];
        for (i, &n) in lens.iter().enumerate() {
            let got = rx.recv(&mut buf).unwrap();
            assert_eq!(got, n, "datagram {i}");
            assert!(buf[..n].iter().all(|&b| b == i as u8), "datagram {i}");
        }
        assert_eq!(
            rx.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }

    /// The TTL a datagram arrived with (IP_RECVTTL must be on).
    fn recv_ttl(fd: RawFd, buf: &mut [u8]) -> (usize, Option<i32>) {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 8];
        // SAFETY: plain data, all-zero is valid.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = mem::size_of_val(&control);
        // SAFETY: every pointer in `msg` points at live buffers of the stated sizes.
        let n = unsafe { libc::recvmsg(fd, &raw mut msg, libc::MSG_DONTWAIT) };
        let n = usize::try_from(n).unwrap();
        let mut ttl = None;
        // SAFETY: the CMSG walk stays within what the kernel wrote.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&raw const msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::IPPROTO_IP && (*c).cmsg_type == libc::IP_TTL {
                    ttl = Some(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>()));
                }
                c = libc::CMSG_NXTHDR(&raw const msg, c);
            }
        }
        (n, ttl)
    }

    /// RFC 3208 §13.6 needs one packet (the multicast SPMR) at TTL 1 whatever the socket's
    /// TTL: the override reaches the wire, plain and inside GSO runs, and breaks runs.
    #[test]
    fn ttl_override_reaches_the_wire() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let on: libc::c_int = 1;
        // SAFETY: a valid fd and a c_int option.
        let rc = unsafe {
            libc::setsockopt(
                rx.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_RECVTTL,
                (&raw const on).cast(),
                mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.set_ttl(64).unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        let ttls = [None, Some(1), None, None, Some(1), Some(1)];
        let pkts: Vec<Outgoing> = ttls
            .iter()
            .enumerate()
            .map(|(i, &ttl)| Outgoing {
                dst: IpAddr::V4(Ipv4Addr::LOCALHOST),
                buf: vec![i as u8; 50],
                ttl,
            })
            .collect();
        let mut s = MmsgSender::new();
        assert_eq!(s.send_connected(tx.as_raw_fd(), &pkts).unwrap(), pkts.len());
        let gso = match s.send_connected_gso(tx.as_raw_fd(), &pkts) {
            Ok(n) => {
                assert_eq!(n, pkts.len());
                true
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                eprintln!("SKIPPED (GSO part): this kernel refuses UDP GSO ({e})");
                false
            }
            Err(e) => panic!("{e}"),
        };
        let mut buf = [0u8; 256];
        for round in 0..=usize::from(gso) {
            for (i, &ttl) in ttls.iter().enumerate() {
                let (n, got) = recv_ttl(rx.as_raw_fd(), &mut buf);
                assert_eq!((n, buf[0]), (50, i as u8), "round {round}, datagram {i}");
                assert_eq!(
                    got,
                    Some(ttl.map_or(64, i32::from)),
                    "round {round}, datagram {i}"
                );
            }
        }
    }
}
