//! Host facts and socket options that std and socket2 do not offer: the interfaces
//! (`getifaddrs`), PKTINFO, source-specific joins, UDP checksums, the host name.

use std::{
    ffi::CStr,
    io, mem,
    net::{IpAddr, Ipv4Addr},
    os::fd::RawFd,
};

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

/// Sets a socket option whose value is a C int.
fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: a c_int option value of the right size; an invalid fd is an error, not UB.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Turns on IP_PKTINFO (IPV6_RECVPKTINFO on an IPv6 socket, `v6`): each datagram received
/// comes with its header destination (the group, or our unicast address), which the engine
/// needs and a socket bound to a port cannot tell.
pub fn set_pktinfo(fd: RawFd, v6: bool) -> io::Result<()> {
    if v6 {
        set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
    } else {
        set_int_option(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)
    }
}

/// Turns UDP_GRO on: the kernel may hand over a run of same-size datagrams of one flow as one
/// (a GSO run that was never cut, or one coalesced on receive), with its segment size in a
/// control message; no per-datagram socket queueing.
pub fn set_udp_gro(fd: RawFd) -> io::Result<()> {
    set_int_option(fd, libc::SOL_UDP, libc::UDP_GRO, 1)
}

/// Joins the source-specific group (`source`, `group`) on interface `index`
/// (MCAST_JOIN_SOURCE_GROUP, RFC 3678 §5.1: the protocol-independent form, which IPv6 needs).
pub fn join_source_group(fd: RawFd, index: u32, source: IpAddr, group: IpAddr) -> io::Result<()> {
    // SAFETY: group_source_req is plain data; all-zero is a valid value.
    let mut req: libc::group_source_req = unsafe { mem::zeroed() };
    req.gsr_interface = index;
    write_storage(&mut req.gsr_group, group);
    write_storage(&mut req.gsr_source, source);
    let level = if group.is_ipv6() {
        libc::IPPROTO_IPV6
    } else {
        libc::IPPROTO_IP
    };
    // SAFETY: `req` is a complete group_source_req of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            libc::MCAST_JOIN_SOURCE_GROUP,
            (&raw const req).cast(),
            mem::size_of::<libc::group_source_req>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Writes `ip` (port 0) into a `sockaddr_storage`.
fn write_storage(ss: &mut libc::sockaddr_storage, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => {
            // SAFETY: sockaddr_in is plain data; all-zero is a valid value.
            let mut sin: libc::sockaddr_in = unsafe { mem::zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from(a).to_be();
            // SAFETY: a sockaddr_storage has room and alignment for any sockaddr.
            unsafe { std::ptr::write((&raw mut *ss).cast::<libc::sockaddr_in>(), sin) };
        }
        IpAddr::V6(a) => {
            // SAFETY: sockaddr_in6 is plain data; all-zero is a valid value.
            let mut sin6: libc::sockaddr_in6 = unsafe { mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = a.octets();
            // SAFETY: as above.
            unsafe { std::ptr::write((&raw mut *ss).cast::<libc::sockaddr_in6>(), sin6) };
        }
    }
}

/// Turns off UDP checksums on a sending socket (SO_NO_CHECK). UDP GSO needs checksums, so a
/// socket with this set refuses it: what tests use to see the fallback.
pub fn set_udp_no_check(fd: RawFd) -> io::Result<()> {
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_NO_CHECK, 1)
}

/// This host's name (empty if it cannot be read).
pub fn hostname() -> Vec<u8> {
    let mut name = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer.
    let rc = unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) };
    if rc != 0 {
        return Vec::new();
    }
    let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    name[..len].to_vec()
}
