//! A panic-free reader over untrusted bytes, and the matching writer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Error;

/// Address family indicators (RFC 1700 "Address Family Numbers", as RFC 3208 §8 uses them).
pub(crate) const AFI_IP: u16 = 1;
pub(crate) const AFI_IP6: u16 = 2;

/// Reads big-endian fields; every read checks the remaining length first.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Error> {
        if self.buf.len() < n {
            return Err(Error::Truncated(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, Error> {
        Ok(self.bytes(1, what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, Error> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, Error> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An NLA: AFI (u16), reserved (u16), then 4 or 16 address bytes.
    pub(crate) fn nla(&mut self, what: &'static str) -> Result<IpAddr, Error> {
        let afi = self.u16(what)?;
        self.u16(what)?;
        self.addr(afi, what)
    }

    /// The address bytes of an NLA whose AFI was already read.
    pub(crate) fn addr(&mut self, afi: u16, what: &'static str) -> Result<IpAddr, Error> {
        match afi {
            AFI_IP => {
                let b = self.bytes(4, what)?;
                Ok(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))
            }
            AFI_IP6 => {
                let b = self.bytes(16, what)?;
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                Ok(IpAddr::V6(Ipv6Addr::from(a)))
            }
            other => Err(Error::BadAfi(other)),
        }
    }
}

/// Appends big-endian fields to a `Vec`.
pub(crate) trait Writer {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    /// AFI, reserved 0, address.
    fn put_nla(&mut self, a: IpAddr);
    /// AFI only (for layouts that put another field between AFI and address).
    fn put_afi(&mut self, a: IpAddr);
    fn put_addr(&mut self, a: IpAddr);
}

impl Writer for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_nla(&mut self, a: IpAddr) {
        self.put_afi(a);
        self.put_u16(0);
        self.put_addr(a);
    }
    fn put_afi(&mut self, a: IpAddr) {
        self.put_u16(if a.is_ipv4() { AFI_IP } else { AFI_IP6 });
    }
    fn put_addr(&mut self, a: IpAddr) {
        match a {
            IpAddr::V4(v4) => self.extend_from_slice(&v4.octets()),
            IpAddr::V6(v6) => self.extend_from_slice(&v6.octets()),
        }
    }
}

/// Bytes an NLA takes on the wire, AFI and reserved field included.
pub(crate) fn nla_len(a: IpAddr) -> usize {
    if a.is_ipv4() {
        8
    } else {
        20
    }
}
