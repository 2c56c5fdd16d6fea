//! A plain UDP multicast endpoint (`udp://IFACE;GROUP:PORT`) and its sockets: the transport
//! of `udp-perf` and of `pgm-ping --udp`.

use std::{io, net::Ipv4Addr, net::SocketAddrV4};

use pgm::socket::Endpoint;
use socket2::{Domain, Protocol, Socket, Type};

/// Socket buffer size asked for (the kernel caps it at `rmem_max` / `wmem_max`).
pub const SOCKET_BUFFER: usize = 4 << 20;

/// A plain UDP multicast endpoint: interface address, group and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpEndpoint {
    /// The interface's IPv4 address (multicast goes out and is joined there).
    pub iface: Ipv4Addr,
    /// The IPv4 multicast group.
    pub group: Ipv4Addr,
    /// The UDP port.
    pub port: u16,
}

impl UdpEndpoint {
    /// Parses `udp://IFACE;GROUP:PORT` (also `epgm://` and `pgm://`, read as plain UDP).
    pub fn parse(s: &str) -> Result<Self, String> {
        let rest = s
            .strip_prefix("udp://")
            .or_else(|| s.strip_prefix("epgm://"))
            .or_else(|| s.strip_prefix("pgm://"))
            .ok_or_else(|| format!("bad endpoint {s:?}: expected udp://IFACE;GROUP:PORT"))?;
        let ep = Endpoint::parse_within(rest, s).map_err(|e| e.to_string())?;
        let (std::net::IpAddr::V4(iface), std::net::IpAddr::V4(group)) =
            (ep.interface.addr, ep.group)
        else {
            return Err(format!("{s}: IPv4 only"));
        };
        Ok(UdpEndpoint {
            iface,
            group,
            port: ep.port,
        })
    }

    /// A socket that sends to the group out of the interface (TTL `hops`, no loopback),
    /// connected to `group:port`.
    pub fn sender(&self, hops: u32) -> io::Result<Socket> {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        s.bind(&SocketAddrV4::new(self.iface, 0).into())?;
        s.set_multicast_if_v4(&self.iface)?;
        s.set_multicast_ttl_v4(hops)?;
        s.set_multicast_loop_v4(false)?;
        s.set_send_buffer_size(SOCKET_BUFFER)?;
        s.connect(&SocketAddrV4::new(self.group, self.port).into())?;
        Ok(s)
    }

    /// A socket bound to `group:port` that joined the group on the interface.
    pub fn receiver(&self) -> io::Result<Socket> {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        s.set_recv_buffer_size(SOCKET_BUFFER)?;
        s.set_multicast_all_v4(false)?;
        s.bind(&SocketAddrV4::new(self.group, self.port).into())?;
        s.join_multicast_v4(&self.group, &self.iface)?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = UdpEndpoint::parse("udp://127.0.0.1;239.192.9.9:7000").unwrap();
        assert_eq!(e.iface, Ipv4Addr::LOCALHOST);
        assert_eq!(e.group, Ipv4Addr::new(239, 192, 9, 9));
        assert_eq!(e.port, 7000);
        assert_eq!(
            UdpEndpoint::parse("epgm://127.0.0.1;239.192.9.9:7000").unwrap(),
            e
        );
        assert!(UdpEndpoint::parse("tcp://127.0.0.1;239.1.1.1:1").is_err());
    }
}
