//! PGM directly over IP (IPv4 protocol / IPv6 next header 113), as OpenPGM's `IPPROTO_PGM`
//! sockets and libzmq's `pgm://` send it.
//!
//! One raw socket does everything: the kernel adds the IP header on send. On receive, an IPv4
//! raw socket hands the header back, which is where the destination address comes from
//! (docs/wire-compatibility.md §8); an IPv6 one never does (RFC 3542 §3), so the destination
//! comes from IPV6_PKTINFO and the source from the socket address. Every raw socket of
//! protocol 113 on the host sees every PGM packet addressed to the host, so several sources on
//! one host all hear all NAKs and each keeps its own (the engine filters by TSI); an IPv6 one
//! also sees source-specific groups' other sources, which [`TransportConfig::accepts_source`]
//! drops. Opening one needs root or CAP_NET_RAW.

use std::{
    io,
    net::{IpAddr, Ipv4Addr},
    os::fd::{AsRawFd, RawFd},
};

use socket2::{Protocol, Socket, Type};

use super::{
    Datagram, Outgoing, RecvBatch, Transport, TransportConfig, TransportError, TransportStats,
};
use crate::sys::{
    mmsg::{MmsgReceiver, MmsgSender},
    net::set_pktinfo,
};

/// The IANA protocol number of PGM.
pub const IPPROTO_PGM: i32 = 113;

/// Bytes of an IPv4 header without options: what the engine subtracts from the MTU.
pub const IPV4_HEADER: usize = 20;

/// Bytes of an IPv6 header without extension headers.
pub const IPV6_HEADER: usize = 40;

/// Raw PGM over IPv4 or IPv6. See the module docs.
#[derive(Debug)]
pub struct RawTransport {
    sock: Socket,
    cfg: TransportConfig,
    v6: bool,
    stats: TransportStats,
    tx: MmsgSender,
    rx: MmsgReceiver,
}

impl RawTransport {
    /// Opens the raw socket, sets the multicast options and joins the group if asked.
    pub fn open(cfg: &TransportConfig) -> Result<Self, TransportError> {
        let v6 = cfg.is_v6()?;
        let sock = Socket::new(cfg.domain()?, Type::RAW, Some(Protocol::from(IPPROTO_PGM)))
            .map_err(|e| match e.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => TransportError::RawNeedsPrivilege,
                _ if v6 => TransportError::io("socket(AF_INET6, SOCK_RAW, 113)", e),
                _ => TransportError::io("socket(AF_INET, SOCK_RAW, 113)", e),
            })?;
        cfg.apply_send_options(&sock)?;
        cfg.apply_recv_options(&sock)?;
        if v6 {
            set_pktinfo(sock.as_raw_fd(), true)
                .map_err(|e| TransportError::io("IPV6_RECVPKTINFO", e))?;
        }
        if cfg.join_group {
            cfg.join(&sock)?;
        }
        Ok(RawTransport {
            sock,
            cfg: cfg.clone(),
            v6,
            stats: TransportStats::default(),
            tx: MmsgSender::new().with_scope(cfg.iface.index),
            rx: MmsgReceiver::new(v6),
        })
    }
}

/// Source, destination and PGM byte range of an IPv4 packet as a raw socket returns it: the
/// bytes after the header (IHL, options included) up to the IP total length, cut at the end of
/// `pkt`. `None` for anything but IPv4 with a header that fits. Public for the `raw_ipv4` fuzz
/// target.
pub fn parse_ipv4(pkt: &[u8]) -> Option<Datagram> {
    if pkt.len() < IPV4_HEADER || pkt[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    // Linux keeps ip_len in network order for raw sockets; never trust it past what arrived.
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]])).min(pkt.len());
    if ihl < IPV4_HEADER || ihl > total {
        return None;
    }
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
    Some(Datagram {
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        pgm: ihl..total,
    })
}

impl Transport for RawTransport {
    fn send_batch(&mut self, pkts: &[Outgoing]) -> io::Result<usize> {
        // The port of a raw socket address is ignored.
        self.tx.send(self.sock.as_raw_fd(), pkts, 0)
    }

    fn recv_batch(&mut self, batch: &mut RecvBatch) -> io::Result<()> {
        while batch.spare_slots() > 0 {
            let slot_len = batch.slot_len();
            let want = batch.spare_slots();
            let infos = match self
                .rx
                .recv(self.sock.as_raw_fd(), batch.spare_mut(), slot_len, want)
            {
                Ok(i) => i,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    batch.set_drained();
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if batch.is_empty() => return Err(e),
                Err(_) => return Ok(()),
            };
            let got = infos.len();
            for info in infos {
                // Parsed in place: the slot about to be pushed or skipped is the first spare.
                let slot = &batch.spare_mut()[..info.len.min(slot_len)];
                if info.truncated {
                    self.stats.truncated += 1;
                    batch.skip(1);
                    continue;
                }
                let parsed = if self.v6 {
                    // No header: the whole slot is PGM.
                    info.src.zip(info.dst).map(|(src, dst)| Datagram {
                        src,
                        dst,
                        pgm: 0..slot.len(),
                    })
                } else {
                    parse_ipv4(slot)
                };
                let Some(d) = parsed else {
                    self.stats.malformed += 1;
                    batch.skip(1);
                    continue;
                };
                if !self.cfg.accepts_source(d.src) {
                    self.stats.source_filtered += 1;
                    batch.skip(1);
                } else if self.cfg.wants(d.dst) {
                    batch.push(d);
                } else {
                    self.stats.filtered += 1;
                    batch.skip(1);
                }
            }
            if got < want {
                // recvmmsg stops early only when the socket has nothing more.
                batch.set_drained();
                return Ok(());
            }
        }
        Ok(())
    }

    fn fds(&self) -> Vec<RawFd> {
        vec![self.sock.as_raw_fd()]
    }

    fn local_nla(&self) -> IpAddr {
        self.cfg.iface.addr
    }

    fn ip_overhead(&self) -> usize {
        if self.v6 {
            IPV6_HEADER
        } else {
            IPV4_HEADER
        }
    }

    fn stats(&self) -> TransportStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_is_stripped() {
        let mut pkt = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 1, 113, 0, 0];
        pkt.extend_from_slice(&[10, 0, 0, 1, 239, 192, 0, 1]);
        pkt.extend_from_slice(&[0xaa; 16]);
        let len = pkt.len() as u16;
        pkt[2..4].copy_from_slice(&len.to_be_bytes());
        let d = parse_ipv4(&pkt).unwrap();
        assert_eq!(d.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(d.dst, IpAddr::V4(Ipv4Addr::new(239, 192, 0, 1)));
        assert_eq!(d.pgm, 20..36);
        // Options in the IP header (IHL 6) move the start.
        pkt[0] = 0x46;
        assert_eq!(parse_ipv4(&pkt).unwrap().pgm, 24..36);
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(parse_ipv4(&[]).is_none());
        assert!(parse_ipv4(&[0x65; 40]).is_none());
        let mut short_ihl = vec![0x41; 40];
        short_ihl[2] = 0;
        short_ihl[3] = 40;
        assert!(parse_ipv4(&short_ihl).is_none());
        // A length field that claims less than the header.
        let mut pkt = vec![0x45; 40];
        pkt[2] = 0;
        pkt[3] = 10;
        assert!(parse_ipv4(&pkt).is_none());
    }
}
