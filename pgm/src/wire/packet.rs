//! The PGM header view and the packet `Repr` (RFC 3208 §8).

use std::net::IpAddr;

use super::{
    checksum,
    cursor::{nla_len, Reader, Writer},
    options::Options,
    Error, Gsi, SeqNo, Tsi,
};

/// Length of the common PGM header.
pub const HEADER_LEN: usize = 16;

/// Header option bits (RFC 3208 §8, "Options").
pub mod flags {
    /// One or more option extensions follow.
    pub const OPT_PRESENT: u8 = 0x01;
    /// One or more options are network-significant.
    pub const OPT_NETWORK: u8 = 0x02;
    /// Parity packet of variable-sized packets.
    pub const OPT_VAR_PKTLEN: u8 = 0x40;
    /// Parity packet.
    pub const OPT_PARITY: u8 = 0x80;
}

mod field {
    use std::ops::Range;
    pub(super) const SPORT: Range<usize> = 0..2;
    pub(super) const DPORT: Range<usize> = 2..4;
    pub(super) const TYPE: usize = 4;
    pub(super) const OPTIONS: usize = 5;
    pub(super) const CHECKSUM: Range<usize> = 6..8;
    pub(super) const GSI: Range<usize> = 8..14;
    pub(super) const TSDU_LENGTH: Range<usize> = 14..16;
}

/// PGM packet types (the type byte; RFC 3208 §8, PGMCC draft for ACK).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// Source Path Message, 0x00.
    Spm,
    /// Poll request, 0x01.
    Poll,
    /// Poll response, 0x02.
    Polr,
    /// Original data, 0x04.
    Odata,
    /// Repair data, 0x05.
    Rdata,
    /// Negative acknowledgement, 0x08.
    Nak,
    /// Null NAK, 0x09.
    Nnak,
    /// NAK confirmation, 0x0a.
    Ncf,
    /// SPM request, 0x0c.
    Spmr,
    /// PGMCC acknowledgement, 0x0d.
    Ack,
    /// Any other type byte.
    Unknown(u8),
}

impl From<u8> for PacketType {
    fn from(b: u8) -> Self {
        match b {
            0x00 => PacketType::Spm,
            0x01 => PacketType::Poll,
            0x02 => PacketType::Polr,
            0x04 => PacketType::Odata,
            0x05 => PacketType::Rdata,
            0x08 => PacketType::Nak,
            0x09 => PacketType::Nnak,
            0x0a => PacketType::Ncf,
            0x0c => PacketType::Spmr,
            0x0d => PacketType::Ack,
            other => PacketType::Unknown(other),
        }
    }
}

impl From<PacketType> for u8 {
    fn from(t: PacketType) -> u8 {
        match t {
            PacketType::Spm => 0x00,
            PacketType::Poll => 0x01,
            PacketType::Polr => 0x02,
            PacketType::Odata => 0x04,
            PacketType::Rdata => 0x05,
            PacketType::Nak => 0x08,
            PacketType::Nnak => 0x09,
            PacketType::Ncf => 0x0a,
            PacketType::Spmr => 0x0c,
            PacketType::Ack => 0x0d,
            PacketType::Unknown(b) => b,
        }
    }
}

impl PacketType {
    /// The RFC name: "SPM", "ODATA", … or "UNKNOWN".
    pub fn name(self) -> &'static str {
        match self {
            PacketType::Spm => "SPM",
            PacketType::Poll => "POLL",
            PacketType::Polr => "POLR",
            PacketType::Odata => "ODATA",
            PacketType::Rdata => "RDATA",
            PacketType::Nak => "NAK",
            PacketType::Nnak => "NNAK",
            PacketType::Ncf => "NCF",
            PacketType::Spmr => "SPMR",
            PacketType::Ack => "ACK",
            PacketType::Unknown(_) => "UNKNOWN",
        }
    }

    /// True for packets that travel from receivers to the source (sport/dport swapped).
    pub fn is_upstream(self) -> bool {
        matches!(
            self,
            PacketType::Nak
                | PacketType::Nnak
                | PacketType::Spmr
                | PacketType::Polr
                | PacketType::Ack
        )
    }
}

/// A zero-copy view of a PGM packet's common header over any byte buffer.
///
/// After [`Packet::new_checked`] succeeds no accessor panics.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` after checking it holds a whole header.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated("header"));
        }
        Ok(Packet { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u16_at(&self, r: std::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[r];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Source port.
    pub fn sport(&self) -> u16 {
        self.u16_at(field::SPORT)
    }

    /// Destination port.
    pub fn dport(&self) -> u16 {
        self.u16_at(field::DPORT)
    }

    /// Packet type.
    pub fn packet_type(&self) -> PacketType {
        PacketType::from(self.buffer.as_ref()[field::TYPE])
    }

    /// Header option bits ([`flags`]).
    pub fn options(&self) -> u8 {
        self.buffer.as_ref()[field::OPTIONS]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// Global source ID.
    pub fn gsi(&self) -> Gsi {
        let mut g = [0u8; 6];
        g.copy_from_slice(&self.buffer.as_ref()[field::GSI]);
        Gsi(g)
    }

    /// TSDU length field.
    pub fn tsdu_length(&self) -> u16 {
        self.u16_at(field::TSDU_LENGTH)
    }

    /// The session this packet belongs to: for downstream packets (sport, GSI), for upstream
    /// ones the source's port is the dport (RFC 3208 §8.3).
    pub fn tsi(&self) -> Tsi {
        let port = if self.packet_type().is_upstream() {
            self.dport()
        } else {
            self.sport()
        };
        Tsi::new(self.gsi(), port)
    }

    /// Everything after the common header.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// Checks the checksum ([`checksum::verify`]).
    pub fn verify_checksum(&self) -> checksum::Verdict {
        checksum::verify(self.buffer.as_ref())
    }

    /// The length of this PGM packet as its own fields declare it: the common header, the body
    /// of the header's type, the option block (OPT_LENGTH's total, when OPT_PRESENT is set) and
    /// the TSDU length.
    ///
    /// The buffer may hold more than that (several packets back to back, as in a UDP GSO
    /// super-packet captured on the sending host) or less (the TSDU is not required to be
    /// there). `None` when the body or the option block cannot be read from the buffer, or for
    /// an unknown type (whose body length is unknown). For every packet that
    /// [`PacketRepr::parse`] accepts, this is the buffer's length.
    pub fn packet_len(&self) -> Option<usize> {
        let t = self.packet_type();
        if let PacketType::Unknown(_) = t {
            return None;
        }
        let after_header = self.body();
        let mut r = Reader::new(after_header);
        Body::parse(t, &mut r).ok()?;
        let body_len = after_header.len() - r.remaining();
        let options_len = if self.options() & flags::OPT_PRESENT != 0 {
            Options::parse(r.rest()).ok()?.1
        } else {
            0
        };
        Some(HEADER_LEN + body_len + options_len + usize::from(self.tsdu_length()))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port.
    pub fn set_sport(&mut self, v: u16) {
        self.buffer.as_mut()[field::SPORT].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the destination port.
    pub fn set_dport(&mut self, v: u16) {
        self.buffer.as_mut()[field::DPORT].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the type byte.
    pub fn set_packet_type(&mut self, t: PacketType) {
        self.buffer.as_mut()[field::TYPE] = t.into();
    }

    /// Recomputes and stores the checksum.
    pub fn fill_checksum(&mut self) {
        checksum::fill(self.buffer.as_mut());
    }
}

/// SPM body (RFC 3208 §8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spm {
    /// SPM's own sequence number.
    pub spm_sqn: SeqNo,
    /// Transmit window trailing edge.
    pub trail: SeqNo,
    /// Transmit window leading edge.
    pub lead: SeqNo,
    /// Path NLA: where NAKs go.
    pub path: IpAddr,
}

/// POLL body (RFC 3208 §14.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poll {
    /// Poll sequence number.
    pub sqn: SeqNo,
    /// Poll round.
    pub round: u16,
    /// Poll sub-type.
    pub s_type: u16,
    /// Path NLA of the poller.
    pub path: IpAddr,
    /// Back-off interval, µs.
    pub bo_ivl_us: u32,
    /// Random string.
    pub rand: [u8; 4],
    /// Matching bit-mask.
    pub mask: u32,
}

/// POLR body (RFC 3208 §14.7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polr {
    /// Sequence number of the POLL answered.
    pub sqn: SeqNo,
    /// Round of the POLL answered.
    pub round: u16,
}

/// ODATA/RDATA body (RFC 3208 §8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Data {
    /// Data packet sequence number.
    pub sqn: SeqNo,
    /// Transmit window trailing edge at send time.
    pub trail: SeqNo,
}

/// NAK/NNAK/NCF body (RFC 3208 §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nak {
    /// Requested sequence number.
    pub sqn: SeqNo,
    /// Unicast NLA of the source.
    pub src_nla: IpAddr,
    /// Multicast group NLA.
    pub grp_nla: IpAddr,
}

/// PGMCC ACK body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// Highest sqn received.
    pub rx_max: SeqNo,
    /// Receive status of the 32 sqns up to `rx_max`.
    pub bitmap: u32,
}

/// The type-specific part of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// SPM.
    Spm(Spm),
    /// POLL.
    Poll(Poll),
    /// POLR.
    Polr(Polr),
    /// ODATA.
    Odata(Data),
    /// RDATA.
    Rdata(Data),
    /// NAK.
    Nak(Nak),
    /// NNAK.
    Nnak(Nak),
    /// NCF.
    Ncf(Nak),
    /// SPMR (no body).
    Spmr,
    /// ACK.
    Ack(Ack),
    /// A type this crate does not know; its body is left in `payload`.
    Unknown(u8),
}

impl Body {
    /// The packet type this body belongs to.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Body::Spm(_) => PacketType::Spm,
            Body::Poll(_) => PacketType::Poll,
            Body::Polr(_) => PacketType::Polr,
            Body::Odata(_) => PacketType::Odata,
            Body::Rdata(_) => PacketType::Rdata,
            Body::Nak(_) => PacketType::Nak,
            Body::Nnak(_) => PacketType::Nnak,
            Body::Ncf(_) => PacketType::Ncf,
            Body::Spmr => PacketType::Spmr,
            Body::Ack(_) => PacketType::Ack,
            Body::Unknown(b) => PacketType::Unknown(*b),
        }
    }

    fn buffer_len(&self) -> usize {
        match self {
            Body::Spm(s) => 12 + nla_len(s.path),
            Body::Poll(p) => 8 + nla_len(p.path) + 12,
            Body::Polr(_) | Body::Odata(_) | Body::Rdata(_) | Body::Ack(_) => 8,
            Body::Nak(n) | Body::Nnak(n) | Body::Ncf(n) => {
                4 + nla_len(n.src_nla) + nla_len(n.grp_nla)
            }
            Body::Spmr | Body::Unknown(_) => 0,
        }
    }

    fn emit(&self, out: &mut Vec<u8>) {
        match self {
            Body::Spm(s) => {
                out.put_u32(s.spm_sqn.0);
                out.put_u32(s.trail.0);
                out.put_u32(s.lead.0);
                out.put_nla(s.path);
            }
            Body::Poll(p) => {
                out.put_u32(p.sqn.0);
                out.put_u16(p.round);
                out.put_u16(p.s_type);
                out.put_nla(p.path);
                out.put_u32(p.bo_ivl_us);
                out.extend_from_slice(&p.rand);
                out.put_u32(p.mask);
            }
            Body::Polr(p) => {
                out.put_u32(p.sqn.0);
                out.put_u16(p.round);
                out.put_u16(0);
            }
            Body::Odata(d) | Body::Rdata(d) => {
                out.put_u32(d.sqn.0);
                out.put_u32(d.trail.0);
            }
            Body::Nak(n) | Body::Nnak(n) | Body::Ncf(n) => {
                out.put_u32(n.sqn.0);
                out.put_nla(n.src_nla);
                out.put_nla(n.grp_nla);
            }
            Body::Ack(a) => {
                out.put_u32(a.rx_max.0);
                out.put_u32(a.bitmap);
            }
            Body::Spmr | Body::Unknown(_) => {}
        }
    }

    fn parse(t: PacketType, r: &mut Reader<'_>) -> Result<Body, Error> {
        Ok(match t {
            PacketType::Spm => Body::Spm(Spm {
                spm_sqn: SeqNo(r.u32("SPM body")?),
                trail: SeqNo(r.u32("SPM body")?),
                lead: SeqNo(r.u32("SPM body")?),
                path: r.nla("SPM path NLA")?,
            }),
            PacketType::Poll => Body::Poll(Poll {
                sqn: SeqNo(r.u32("POLL body")?),
                round: r.u16("POLL body")?,
                s_type: r.u16("POLL body")?,
                path: r.nla("POLL path NLA")?,
                bo_ivl_us: r.u32("POLL body")?,
                rand: {
                    let b = r.bytes(4, "POLL body")?;
                    [b[0], b[1], b[2], b[3]]
                },
                mask: r.u32("POLL body")?,
            }),
            PacketType::Polr => {
                let sqn = SeqNo(r.u32("POLR body")?);
                let round = r.u16("POLR body")?;
                r.u16("POLR body")?;
                Body::Polr(Polr { sqn, round })
            }
            PacketType::Odata | PacketType::Rdata => {
                let d = Data {
                    sqn: SeqNo(r.u32("data body")?),
                    trail: SeqNo(r.u32("data body")?),
                };
                if t == PacketType::Odata {
                    Body::Odata(d)
                } else {
                    Body::Rdata(d)
                }
            }
            PacketType::Nak | PacketType::Nnak | PacketType::Ncf => {
                let n = Nak {
                    sqn: SeqNo(r.u32("NAK body")?),
                    src_nla: r.nla("NAK source NLA")?,
                    grp_nla: r.nla("NAK group NLA")?,
                };
                match t {
                    PacketType::Nak => Body::Nak(n),
                    PacketType::Nnak => Body::Nnak(n),
                    _ => Body::Ncf(n),
                }
            }
            PacketType::Spmr => Body::Spmr,
            PacketType::Ack => Body::Ack(Ack {
                rx_max: SeqNo(r.u32("ACK body")?),
                bitmap: r.u32("ACK body")?,
            }),
            PacketType::Unknown(b) => Body::Unknown(b),
        })
    }
}

/// A parsed PGM packet, or one to emit. Borrows its payload from the packet bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketRepr<'a> {
    /// Source port (the data-source port downstream, the data-destination port upstream).
    pub sport: u16,
    /// Destination port (the data-destination port downstream, the data-source port upstream).
    pub dport: u16,
    /// The source's GSI (also in upstream packets).
    pub gsi: Gsi,
    /// Header bit OPT_PARITY.
    pub parity: bool,
    /// Header bit OPT_VAR_PKTLEN.
    pub var_pktlen: bool,
    /// The type-specific body.
    pub body: Body,
    /// Option extensions.
    pub options: Options,
    /// The TSDU (ODATA/RDATA), or the unparsed rest of an unknown type.
    pub payload: &'a [u8],
}

impl<'a> PacketRepr<'a> {
    /// The packet type.
    pub fn packet_type(&self) -> PacketType {
        self.body.packet_type()
    }

    /// The session: see [`Packet::tsi`].
    pub fn tsi(&self) -> Tsi {
        let port = if self.packet_type().is_upstream() {
            self.dport
        } else {
            self.sport
        };
        Tsi::new(self.gsi, port)
    }

    /// Parses a packet without looking at its checksum (see [`PacketRepr::parse_verified`]).
    ///
    /// Checks every length before use: the body of the header's type (never another type's),
    /// the option chain, and that the TSDU length equals exactly the bytes that follow.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let p = Packet::new_checked(bytes)?;
        let t = p.packet_type();
        let hdr_opts = p.options();
        let mut r = Reader::new(&bytes[HEADER_LEN..]);
        let body = Body::parse(t, &mut r)?;
        if let Body::Unknown(_) = body {
            // Unknown types keep everything after the header, options unparsed.
            return Ok(PacketRepr {
                sport: p.sport(),
                dport: p.dport(),
                gsi: p.gsi(),
                parity: hdr_opts & flags::OPT_PARITY != 0,
                var_pktlen: hdr_opts & flags::OPT_VAR_PKTLEN != 0,
                body,
                options: Options::default(),
                payload: r.rest(),
            });
        }
        let mut rest = r.rest();
        let mut options = Options::default();
        if hdr_opts & flags::OPT_PRESENT != 0 {
            let (o, used) = Options::parse(rest)?;
            options = o;
            rest = &rest[used..];
        }
        let declared = p.tsdu_length();
        if usize::from(declared) != rest.len() {
            return Err(Error::TsduLength {
                declared,
                actual: rest.len(),
            });
        }
        let repr = PacketRepr {
            sport: p.sport(),
            dport: p.dport(),
            gsi: p.gsi(),
            parity: hdr_opts & flags::OPT_PARITY != 0,
            var_pktlen: hdr_opts & flags::OPT_VAR_PKTLEN != 0,
            body,
            options,
            payload: rest,
        };
        repr.check_options()?;
        Ok(repr)
    }

    /// Parses a received packet and checks its checksum the way OpenPGM does: a mismatch is an
    /// error, and so is an absent (zero) checksum on ODATA/RDATA.
    pub fn parse_verified(bytes: &'a [u8]) -> Result<Self, Error> {
        let p = Packet::new_checked(bytes)?;
        match p.verify_checksum() {
            checksum::Verdict::Good => {}
            checksum::Verdict::Bad => return Err(Error::BadChecksum),
            checksum::Verdict::Absent => {
                if matches!(p.packet_type(), PacketType::Odata | PacketType::Rdata) {
                    return Err(Error::MissingChecksum);
                }
            }
        }
        Self::parse(bytes)
    }

    /// Type-dependent option checks: fragments only on data, never longer than their APDU and
    /// never before their first sqn; NAK lists only on NAK/NNAK/NCF.
    ///
    /// The OPT_FRAGMENT `offset` is deliberately not checked against `apdu_len`: OpenPGM 5.3
    /// sends a running byte offset across successive fragmented APDUs (`data_bytes_offset` is
    /// not reset; the second 4000-byte APDU's fragments carry offsets 4000, 5436, 6872, captured
    /// in `pgm/tests/fixtures/openpgm.pcap`), and its receivers ignore the field (order comes
    /// from sqns; docs/wire-compatibility.md §6). Reassembly must not use it either.
    fn check_options(&self) -> Result<(), Error> {
        if let Some(f) = self.options.fragment {
            let (Body::Odata(d) | Body::Rdata(d)) = self.body else {
                return Err(Error::BadFragment("on a packet that is not ODATA/RDATA"));
            };
            if self.parity {
                // A parity packet's OPT_FRAGMENT is the parity of its group's OPT_FRAGMENTs
                // (RFC 3208 Appendix A): its values are not positions in this packet.
                return self.check_nak_list();
            }
            let len = self.payload.len() as u64;
            if len == 0 {
                return Err(Error::BadFragment("empty fragment"));
            }
            if len > u64::from(f.apdu_len) {
                return Err(Error::BadFragment("fragment longer than its APDU"));
            }
            if d.sqn.diff(f.first_sqn) < 0 {
                return Err(Error::BadFragment("first sqn after this packet's sqn"));
            }
        }
        self.check_nak_list()
    }

    /// OPT_NAK_LIST only on NAK/NNAK/NCF.
    fn check_nak_list(&self) -> Result<(), Error> {
        if self.options.nak_list.is_some()
            && !matches!(self.body, Body::Nak(_) | Body::Nnak(_) | Body::Ncf(_))
        {
            return Err(Error::BadNakList("on a packet that is not NAK/NNAK/NCF"));
        }
        Ok(())
    }

    /// Bytes the packet takes on the wire.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.body.buffer_len() + self.options_len() + self.payload.len()
    }

    /// Bytes the option block takes on the wire: none for an unknown type, whose options (if
    /// any) are part of the opaque `payload`.
    fn options_len(&self) -> usize {
        if let Body::Unknown(_) = self.body {
            0
        } else {
            self.options.buffer_len()
        }
    }

    /// Appends the packet, checksum filled in, to `out`.
    ///
    /// The header's OPT_PRESENT and OPT_NETWORK bits are derived from `options`. The caller
    /// keeps the TSDU within 65535 bytes (the TSDU length field is 16 bits).
    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        self.emit_head(out);
        out.extend_from_slice(self.payload);
        checksum::fill(&mut out[start..]);
    }

    /// Like [`PacketRepr::emit`], for a payload whose one's-complement sum
    /// ([`checksum::ones_complement_sum`]) the caller already knows: a source keeps that sum
    /// with each stored packet, so neither ODATA nor RDATA re-reads its payload to checksum it.
    pub fn emit_presummed(&self, out: &mut Vec<u8>, payload_sum: u16) {
        let start = out.len();
        self.emit_head(out);
        // Header, body and options are a multiple of 4 bytes, so the payload starts on an even
        // offset and the two sums add directly (RFC 1071 §2(C), incremental update).
        let head = checksum::ones_complement_sum(&out[start..]);
        out.extend_from_slice(self.payload);
        let c = checksum::finish(checksum::add(head, payload_sum));
        out[start + 6..start + 8].copy_from_slice(&c.to_be_bytes());
    }

    /// Header (checksum 0), body and options.
    fn emit_head(&self, out: &mut Vec<u8>) {
        out.reserve(self.buffer_len());
        out.put_u16(self.sport);
        out.put_u16(self.dport);
        out.put_u8(self.packet_type().into());
        let opt_len = self.options_len();
        let mut bits = 0;
        if opt_len > 0 {
            bits |= flags::OPT_PRESENT;
            if self.options.is_network_significant() {
                bits |= flags::OPT_NETWORK;
            }
        }
        if self.parity {
            bits |= flags::OPT_PARITY;
        }
        if self.var_pktlen {
            bits |= flags::OPT_VAR_PKTLEN;
        }
        out.put_u8(bits);
        out.put_u16(0);
        out.extend_from_slice(&self.gsi.0);
        let tsdu = if let Body::Unknown(_) = self.body {
            0
        } else {
            self.payload.len() as u16
        };
        out.put_u16(tsdu);
        self.body.emit(out);
        if opt_len > 0 {
            self.options.emit(out);
        }
    }

    /// The packet as a new `Vec`.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.buffer_len());
        self.emit(&mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::wire::{Fragment, NakList};

    fn repr(body: Body, options: &Options, payload: &[u8]) -> Vec<u8> {
        PacketRepr {
            sport: 1000,
            dport: 7500,
            gsi: Gsi([1, 2, 3, 4, 5, 6]),
            parity: false,
            var_pktlen: false,
            body,
            options: *options,
            payload,
        }
        .to_vec()
    }

    fn len_of(bytes: &[u8]) -> Option<usize> {
        Packet::new_checked(bytes).ok()?.packet_len()
    }

    #[test]
    fn packet_len_reads_header_body_options_and_tsdu() {
        let v4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let data = Data {
            sqn: SeqNo(3),
            trail: SeqNo(1),
        };
        let packets = [
            repr(
                Body::Spm(Spm {
                    spm_sqn: SeqNo(7),
                    trail: SeqNo(1),
                    lead: SeqNo(9),
                    path: v6,
                }),
                &Options {
                    fin: true,
                    ..Options::default()
                },
                &[],
            ),
            repr(Body::Odata(data), &Options::default(), b"hello"),
            repr(
                Body::Rdata(data),
                &Options {
                    fragment: Some(Fragment {
                        first_sqn: SeqNo(2),
                        offset: 100,
                        apdu_len: 300,
                    }),
                    ..Options::default()
                },
                &[0x42; 100],
            ),
            repr(
                Body::Nak(Nak {
                    sqn: SeqNo(5),
                    src_nla: v4,
                    grp_nla: v6,
                }),
                &Options {
                    nak_list: Some(NakList::from_slice(&[SeqNo(6), SeqNo(8)])),
                    ..Options::default()
                },
                &[],
            ),
            repr(Body::Spmr, &Options::default(), &[]),
        ];
        for p in &packets {
            assert!(PacketRepr::parse(p).is_ok());
            assert_eq!(len_of(p), Some(p.len()), "{p:02x?}");
            // Bytes after the packet are not part of it.
            let mut two = p.clone();
            two.extend_from_slice(p);
            two.extend_from_slice(&[0xee; 7]);
            assert_eq!(len_of(&two), Some(p.len()));
        }
        // The TSDU need not be there: the declared length counts.
        let odata = &packets[1];
        assert_eq!(len_of(&odata[..odata.len() - 3]), Some(odata.len()));
        // The body and the option block must be.
        let rdata = &packets[2];
        assert_eq!(len_of(&rdata[..HEADER_LEN + 4]), None);
        assert_eq!(len_of(&rdata[..HEADER_LEN + 8 + 6]), None);
        // A broken option chain, an unknown type: no length.
        let mut bad = rdata.clone();
        bad[HEADER_LEN + 8] = 0x55;
        assert_eq!(len_of(&bad), None);
        let mut unknown = odata.clone();
        unknown[4] = 0x3f;
        assert_eq!(len_of(&unknown), None);
        // No panic on any prefix or single-byte corruption.
        for p in &packets {
            for n in 0..=p.len() {
                let _ = len_of(&p[..n]);
            }
            for i in 0..p.len() {
                let mut q = p.clone();
                q[i] ^= 0xff;
                let _ = len_of(&q);
            }
        }
    }
}
