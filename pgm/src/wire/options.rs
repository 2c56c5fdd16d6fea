//! PGM option extensions (RFC 3208 §9, Appendices A–C, E; PGMCC draft).
//!
//! On the wire every option is `[E|type][length][reserved|F|OPX][U|option-specific] value…`
//! (OpenPGM reads the fourth byte as `opt_reserved`), preceded by OPT_LENGTH, which carries the
//! total length of all options. [`Options`] holds the parsed values; options this crate does not
//! know are skipped by their length and remembered in [`Options::unknown`].

use std::net::IpAddr;

use super::{
    cursor::{nla_len, Reader, Writer, AFI_IP, AFI_IP6},
    Error, SeqNo,
};

/// Option type codes (RFC 3208 §9 and appendices; PGMCC draft).
#[allow(missing_docs, reason = "the names are the RFC's")]
pub mod kind {
    pub const LENGTH: u8 = 0x00;
    pub const FRAGMENT: u8 = 0x01;
    pub const NAK_LIST: u8 = 0x02;
    pub const JOIN: u8 = 0x03;
    pub const NAK_BO_IVL: u8 = 0x04;
    pub const NAK_BO_RNG: u8 = 0x05;
    pub const REDIRECT: u8 = 0x07;
    pub const PARITY_PRM: u8 = 0x08;
    pub const PARITY_GRP: u8 = 0x09;
    pub const CURR_TGSIZE: u8 = 0x0a;
    pub const NBR_UNREACH: u8 = 0x0b;
    pub const PATH_NLA: u8 = 0x0c;
    pub const SYN: u8 = 0x0d;
    pub const FIN: u8 = 0x0e;
    pub const RST: u8 = 0x0f;
    pub const CR: u8 = 0x10;
    pub const CRQST: u8 = 0x11;
    pub const PGMCC_DATA: u8 = 0x12;
    pub const PGMCC_FEEDBACK: u8 = 0x13;
    pub const INVALID: u8 = 0x7f;
}

/// The OPT_END bit of an option's type byte.
const OPT_END: u8 = 0x80;
/// RFC 3208 §9: "There is a limit of 16 options per packet" (counted after OPT_LENGTH).
pub const MAX_OPTIONS: usize = 16;
/// RFC 3208 §9.3: up to 62 sequence numbers besides the one in the NAK body.
pub const MAX_NAK_LIST: usize = 62;
/// OP_ENCODED (the F bit) in an option's third byte (RFC 3208 §9.1).
pub const OP_ENCODED: u8 = 0x04;
/// OpenPGM's OP_ENCODED bit (`PGM_OP_ENCODED`, 0x08: the wire brief §1.6), accepted on input.
const OPENPGM_OP_ENCODED: u8 = 0x08;
/// OP_ENCODED_NULL (the U bit) in an option's fourth byte: in an encoded option's decoded
/// bytes, the packet had no such option (RFC 3208 §11.2).
pub const OP_ENCODED_NULL: u8 = 0x80;
/// Bytes of an encoded OPT_FRAGMENT: the option without its first three bytes.
pub const ENCODED_FRAGMENT_LEN: usize = 13;

/// Largest APDU OPT_FRAGMENT can describe in practice (OpenPGM's `PGM_MAX_APDU`).
pub const MAX_APDU: u32 = 65535;

/// The RFC name of an option type, `"OPT_UNKNOWN"` for others.
pub fn name(kind: u8) -> &'static str {
    match kind {
        kind::LENGTH => "OPT_LENGTH",
        kind::FRAGMENT => "OPT_FRAGMENT",
        kind::NAK_LIST => "OPT_NAK_LIST",
        kind::JOIN => "OPT_JOIN",
        kind::NAK_BO_IVL => "OPT_NAK_BO_IVL",
        kind::NAK_BO_RNG => "OPT_NAK_BO_RNG",
        kind::REDIRECT => "OPT_REDIRECT",
        kind::PARITY_PRM => "OPT_PARITY_PRM",
        kind::PARITY_GRP => "OPT_PARITY_GRP",
        kind::CURR_TGSIZE => "OPT_CURR_TGSIZE",
        kind::NBR_UNREACH => "OPT_NBR_UNREACH",
        kind::PATH_NLA => "OPT_PATH_NLA",
        kind::SYN => "OPT_SYN",
        kind::FIN => "OPT_FIN",
        kind::RST => "OPT_RST",
        kind::CR => "OPT_CR",
        kind::CRQST => "OPT_CRQST",
        kind::PGMCC_DATA => "OPT_PGMCC_DATA",
        kind::PGMCC_FEEDBACK => "OPT_PGMCC_FEEDBACK",
        kind::INVALID => "OPT_INVALID",
        _ => "OPT_UNKNOWN",
    }
}

/// OPT_FRAGMENT (RFC 3208 §9.2): where this TPDU sits in its APDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Sqn of the packet carrying the APDU's first fragment.
    pub first_sqn: SeqNo,
    /// Byte offset of this fragment in the APDU.
    pub offset: u32,
    /// Length of the whole APDU.
    pub apdu_len: u32,
}

/// OPT_NAK_LIST (RFC 3208 §9.3): 1 to 62 further sqns a NAK or NCF covers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NakList {
    len: u8,
    sqns: [SeqNo; MAX_NAK_LIST],
}

impl NakList {
    /// An empty list (emitted only once it holds a sqn).
    pub const fn new() -> Self {
        NakList {
            len: 0,
            sqns: [SeqNo(0); MAX_NAK_LIST],
        }
    }

    /// The first `MAX_NAK_LIST` sqns of `sqns`.
    pub fn from_slice(sqns: &[SeqNo]) -> Self {
        let mut l = NakList::new();
        for &s in sqns.iter().take(MAX_NAK_LIST) {
            l.push(s);
        }
        l
    }

    /// Appends a sqn; returns false (and drops it) when the list is full.
    pub fn push(&mut self, sqn: SeqNo) -> bool {
        let i = usize::from(self.len);
        if i == MAX_NAK_LIST {
            return false;
        }
        self.sqns[i] = sqn;
        self.len += 1;
        true
    }

    /// The sqns.
    pub fn as_slice(&self) -> &[SeqNo] {
        &self.sqns[..usize::from(self.len)]
    }

    /// Number of sqns.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True when it holds no sqn.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for NakList {
    fn default() -> Self {
        NakList::new()
    }
}

impl std::fmt::Debug for NakList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// OPT_NAK_BO_IVL (RFC 3208 Appendix E §15.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NakBoIvl {
    /// NAK back-off interval, µs.
    pub ivl_us: u32,
    /// POLL sqn the interval was computed for.
    pub sqn: SeqNo,
}

/// OPT_NAK_BO_RNG (RFC 3208 Appendix E §15.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NakBoRng {
    /// Maximum NAK back-off interval, µs.
    pub max_us: u32,
    /// Minimum NAK back-off interval, µs.
    pub min_us: u32,
}

/// OPT_PARITY_PRM (RFC 3208 Appendix A §11.8.1), with the RFC's bits: P (pro-active) is 0x02
/// and O (on-demand) 0x01 of the option's fourth byte. OpenPGM 5.3 swaps them (0x01 is its
/// pro-active, 0x02 its on-demand: docs/fec.md), so from an OpenPGM source `proactive` means
/// its on-demand and the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParityPrm {
    /// P bit: the source sends proactive parity.
    pub proactive: bool,
    /// O bit: the source sends parity on demand.
    pub on_demand: bool,
    /// Transmission group size.
    pub tgs: u32,
}

/// OPT_RST (RFC 3208 §9.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rst {
    /// N bit: NAKs for earlier ODATA will go unanswered.
    pub no_naks: bool,
    /// 6-bit application error code.
    pub code: u8,
}

/// Which worst-case figures an OPT_CR reports or an OPT_CRQST asks for (L, P, R bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CrFlags {
    /// L: network element worst link.
    pub ne_wl: bool,
    /// P: network element worst path.
    pub ne_wp: bool,
    /// R: receiver worst path.
    pub rx_wp: bool,
}

impl CrFlags {
    fn from_bits(b: u8) -> Self {
        CrFlags {
            ne_wl: b & 4 != 0,
            ne_wp: b & 2 != 0,
            rx_wp: b & 1 != 0,
        }
    }
    fn bits(self) -> u8 {
        (u8::from(self.ne_wl) << 2) | (u8::from(self.ne_wp) << 1) | u8::from(self.rx_wp)
    }
}

/// OPT_CR, a congestion report (RFC 3208 Appendix B §12.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cr {
    /// Which of the figures below are reported.
    pub flags: CrFlags,
    /// Congestion report reference sqn.
    pub lead: SeqNo,
    /// Network element worst link.
    pub ne_wl: u16,
    /// Network element worst path.
    pub ne_wp: u16,
    /// Receiver worst path.
    pub rx_wp: u16,
    /// Worst receiver's NLA.
    pub rcvr: IpAddr,
}

/// OPT_PGMCC_DATA: the source names its ACKer (PGMCC draft; OpenPGM layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgmccData {
    /// Source timestamp.
    pub tstamp: u32,
    /// The current ACKer.
    pub acker: IpAddr,
}

/// OPT_PGMCC_FEEDBACK: a receiver's report (PGMCC draft; OpenPGM layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgmccFeedback {
    /// Echoed source timestamp.
    pub tstamp: u32,
    /// Loss rate, fixed point.
    pub loss_rate: u16,
    /// The reporting receiver.
    pub nla: IpAddr,
}

/// Option types seen on parse that this crate does not interpret, in wire order.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct UnknownOptions {
    len: u8,
    kinds: [u8; MAX_OPTIONS],
}

impl UnknownOptions {
    /// The type codes.
    pub fn as_slice(&self) -> &[u8] {
        &self.kinds[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for UnknownOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// Every option a packet carries. `Options::default()` means none (OPT_PRESENT clear).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "SYN, FIN and NBR_UNREACH are flag options"
)]
pub struct Options {
    /// OPT_FRAGMENT.
    pub fragment: Option<Fragment>,
    /// OPT_FRAGMENT with OP_ENCODED set, in a parity packet: option bytes 3..15 (the U byte,
    /// then first sqn, offset and APDU length) FEC-encoded over the group's packets (RFC 3208
    /// §11.2, "Payload-specific options"). Not a fragment of this packet.
    pub fragment_encoded: Option<[u8; ENCODED_FRAGMENT_LEN]>,
    /// OPT_NAK_LIST (never empty when parsed).
    pub nak_list: Option<NakList>,
    /// OPT_JOIN: minimum sqn a late joiner may request.
    pub join: Option<SeqNo>,
    /// OPT_NAK_BO_IVL.
    pub nak_bo_ivl: Option<NakBoIvl>,
    /// OPT_NAK_BO_RNG.
    pub nak_bo_rng: Option<NakBoRng>,
    /// OPT_REDIRECT: a DLR's NLA.
    pub redirect: Option<IpAddr>,
    /// OPT_PARITY_PRM.
    pub parity_prm: Option<ParityPrm>,
    /// OPT_PARITY_GRP: parity group number.
    pub parity_grp: Option<u32>,
    /// OPT_CURR_TGSIZE: actual transmission group size.
    pub curr_tgsize: Option<u32>,
    /// OPT_NBR_UNREACH.
    pub nbr_unreach: bool,
    /// OPT_PATH_NLA.
    pub path_nla: Option<IpAddr>,
    /// OPT_SYN.
    pub syn: bool,
    /// OPT_FIN.
    pub fin: bool,
    /// OPT_RST.
    pub rst: Option<Rst>,
    /// OPT_CR.
    pub cr: Option<Cr>,
    /// OPT_CRQST.
    pub crqst: Option<CrFlags>,
    /// OPT_PGMCC_DATA.
    pub pgmcc_data: Option<PgmccData>,
    /// OPT_PGMCC_FEEDBACK.
    pub pgmcc_feedback: Option<PgmccFeedback>,
    /// Unknown option types that were skipped (not emitted).
    pub unknown: UnknownOptions,
}

impl Options {
    /// True when no option is set (unknown ones included).
    pub fn is_empty(&self) -> bool {
        *self == Options::default()
    }

    /// True when a network-significant option is present (RFC 3208 §8, header bit 1).
    pub fn is_network_significant(&self) -> bool {
        self.has_nak_list()
            || self.nak_bo_ivl.is_some()
            || self.nak_bo_rng.is_some()
            || self.redirect.is_some()
            || self.parity_prm.is_some()
            || self.curr_tgsize.is_some()
            || self.nbr_unreach
            || self.path_nla.is_some()
            || self.cr.is_some()
            || self.crqst.is_some()
    }

    /// True when an OPT_NAK_LIST with at least one sqn is present (an empty one is not emitted).
    fn has_nak_list(&self) -> bool {
        self.nak_list.is_some_and(|l| !l.is_empty())
    }

    /// Names of the options present, OPT_LENGTH first, in emission order, unknown ones last.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = vec![name(kind::LENGTH)];
        v.extend(self.known_kinds().map(name));
        if v.len() == 1 && self.unknown.as_slice().is_empty() {
            return Vec::new();
        }
        v.extend(self.unknown.as_slice().iter().map(|&k| name(k)));
        v
    }

    /// The known option types present, network-significant ones first (RFC 3208 §9.1: "All
    /// network-significant options MUST be appended before any exclusively receiver-significant
    /// options").
    fn known_kinds(&self) -> impl Iterator<Item = u8> + '_ {
        [
            (kind::NAK_LIST, self.has_nak_list()),
            (kind::NAK_BO_IVL, self.nak_bo_ivl.is_some()),
            (kind::NAK_BO_RNG, self.nak_bo_rng.is_some()),
            (kind::REDIRECT, self.redirect.is_some()),
            (kind::PARITY_PRM, self.parity_prm.is_some()),
            (kind::CURR_TGSIZE, self.curr_tgsize.is_some()),
            (kind::NBR_UNREACH, self.nbr_unreach),
            (kind::PATH_NLA, self.path_nla.is_some()),
            (kind::CR, self.cr.is_some()),
            (kind::CRQST, self.crqst.is_some()),
            (
                kind::FRAGMENT,
                self.fragment.is_some() || self.fragment_encoded.is_some(),
            ),
            (kind::JOIN, self.join.is_some()),
            (kind::PARITY_GRP, self.parity_grp.is_some()),
            (kind::SYN, self.syn),
            (kind::FIN, self.fin),
            (kind::RST, self.rst.is_some()),
            (kind::PGMCC_DATA, self.pgmcc_data.is_some()),
            (kind::PGMCC_FEEDBACK, self.pgmcc_feedback.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, present)| present.then_some(k))
    }

    /// Bytes the options take on the wire, OPT_LENGTH included; 0 when there are none.
    pub fn buffer_len(&self) -> usize {
        let body: usize = self.known_kinds().map(|k| self.option_len(k)).sum();
        if body == 0 {
            0
        } else {
            4 + body
        }
    }

    fn option_len(&self, k: u8) -> usize {
        match k {
            kind::FRAGMENT => 16,
            kind::NAK_LIST => 4 + 4 * self.nak_list.map_or(0, |l| l.len()),
            kind::JOIN | kind::PARITY_PRM | kind::PARITY_GRP | kind::CURR_TGSIZE => 8,
            kind::NAK_BO_IVL | kind::NAK_BO_RNG => 12,
            kind::REDIRECT => 4 + self.redirect.map_or(0, nla_len),
            kind::PATH_NLA => 4 + self.path_nla.map_or(0, |a| nla_len(a) - 4),
            kind::CR => 16 + self.cr.map_or(0, |c| nla_len(c.rcvr)),
            kind::PGMCC_DATA => 8 + self.pgmcc_data.map_or(0, |d| nla_len(d.acker)),
            kind::PGMCC_FEEDBACK => 8 + self.pgmcc_feedback.map_or(0, |d| nla_len(d.nla)),
            _ => 4, // NBR_UNREACH, SYN, FIN, RST, CRQST
        }
    }

    /// Appends OPT_LENGTH and every known option to `out`; nothing when there are none.
    ///
    /// An empty `nak_list` is not emitted. Unknown options are not emitted.
    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        let total = self.buffer_len();
        if total == 0 {
            return;
        }
        out.put_u8(kind::LENGTH);
        out.put_u8(4);
        out.put_u16(total as u16);
        let mut last = 0;
        for k in self.known_kinds() {
            last = out.len();
            out.put_u8(k);
            out.put_u8(self.option_len(k) as u8);
            // reserved | F (OP_ENCODED) | OPX
            let encoded = k == kind::FRAGMENT && self.fragment.is_none();
            out.put_u8(if encoded { OP_ENCODED } else { 0 });
            self.emit_value(k, out);
        }
        out[last] |= OPT_END;
    }

    /// Writes the fourth header byte (U | option-specific) and the value of option `k`.
    #[allow(
        clippy::too_many_lines,
        reason = "one arm per option type, each a few lines"
    )]
    fn emit_value(&self, k: u8, out: &mut Vec<u8>) {
        match k {
            kind::FRAGMENT => {
                if let Some(f) = self.fragment {
                    out.put_u8(0);
                    out.put_u32(f.first_sqn.0);
                    out.put_u32(f.offset);
                    out.put_u32(f.apdu_len);
                } else if let Some(e) = self.fragment_encoded {
                    out.extend_from_slice(&e);
                }
            }
            kind::NAK_LIST => {
                out.put_u8(0);
                for s in self.nak_list.iter().flat_map(NakList::as_slice) {
                    out.put_u32(s.0);
                }
            }
            kind::JOIN => {
                out.put_u8(0);
                out.put_u32(self.join.unwrap_or_default().0);
            }
            kind::NAK_BO_IVL => {
                let v = self.nak_bo_ivl.unwrap_or(NakBoIvl {
                    ivl_us: 0,
                    sqn: SeqNo(0),
                });
                out.put_u8(0);
                out.put_u32(v.ivl_us);
                out.put_u32(v.sqn.0);
            }
            kind::NAK_BO_RNG => {
                let v = self.nak_bo_rng.unwrap_or(NakBoRng {
                    max_us: 0,
                    min_us: 0,
                });
                out.put_u8(0);
                out.put_u32(v.max_us);
                out.put_u32(v.min_us);
            }
            kind::REDIRECT => {
                out.put_u8(0);
                if let Some(a) = self.redirect {
                    out.put_nla(a);
                }
            }
            kind::PARITY_PRM => {
                let p = self.parity_prm.unwrap_or(ParityPrm {
                    proactive: false,
                    on_demand: false,
                    tgs: 0,
                });
                out.put_u8((u8::from(p.proactive) << 1) | u8::from(p.on_demand));
                out.put_u32(p.tgs);
            }
            kind::PARITY_GRP => {
                out.put_u8(0);
                out.put_u32(self.parity_grp.unwrap_or(0));
            }
            kind::CURR_TGSIZE => {
                out.put_u8(0);
                out.put_u32(self.curr_tgsize.unwrap_or(0));
            }
            kind::PATH_NLA => {
                out.put_u8(0);
                if let Some(a) = self.path_nla {
                    out.put_addr(a);
                }
            }
            kind::RST => {
                let r = self.rst.unwrap_or(Rst {
                    no_naks: false,
                    code: 0,
                });
                out.put_u8((u8::from(r.no_naks) << 6) | (r.code & 0x3f));
            }
            kind::CR => {
                if let Some(c) = self.cr {
                    out.put_u8(c.flags.bits());
                    out.put_u32(c.lead.0);
                    out.put_u16(c.ne_wl);
                    out.put_u16(c.ne_wp);
                    out.put_u16(c.rx_wp);
                    out.put_u16(0);
                    out.put_nla(c.rcvr);
                }
            }
            kind::CRQST => out.put_u8(self.crqst.unwrap_or_default().bits()),
            kind::PGMCC_DATA => {
                if let Some(d) = self.pgmcc_data {
                    out.put_u8(0);
                    out.put_u32(d.tstamp);
                    out.put_nla(d.acker);
                }
            }
            kind::PGMCC_FEEDBACK => {
                if let Some(d) = self.pgmcc_feedback {
                    out.put_u8(0);
                    out.put_u32(d.tstamp);
                    out.put_afi(d.nla);
                    out.put_u16(d.loss_rate);
                    out.put_addr(d.nla);
                }
            }
            _ => out.put_u8(0), // NBR_UNREACH, SYN, FIN
        }
    }

    /// Parses the option block at the start of `buf` (it begins with OPT_LENGTH) and returns the
    /// options and the number of bytes they take.
    ///
    /// Hardened against the classic PGM option bugs: every option must be at least 4 bytes (so
    /// the walk always advances), must end inside the block that OPT_LENGTH declares, the block
    /// must end exactly at an option carrying OPT_END, and no more than 16 options are accepted.
    pub fn parse(buf: &[u8]) -> Result<(Options, usize), Error> {
        let mut r = Reader::new(buf);
        let t = r.u8("OPT_LENGTH")?;
        let l = r.u8("OPT_LENGTH")?;
        let total = usize::from(r.u16("OPT_LENGTH")?);
        if t != kind::LENGTH || l != 4 {
            return Err(Error::BadOption(
                "first option is not OPT_LENGTH of length 4",
            ));
        }
        if total < 8 {
            return Err(Error::BadOption(
                "OPT_LENGTH total too short for any option",
            ));
        }
        let block = buf.get(4..total).ok_or(Error::Truncated("options"))?;
        let mut opts = Options::default();
        let mut rest = block;
        let mut count = 0;
        loop {
            if count == MAX_OPTIONS {
                return Err(Error::BadOption("more than 16 options"));
            }
            count += 1;
            let mut r = Reader::new(rest);
            let t = r.u8("option header")?;
            let len = usize::from(r.u8("option header")?);
            if len < 4 {
                return Err(Error::BadOption("option length below 4"));
            }
            let opt = rest
                .get(..len)
                .ok_or(Error::BadOption("option runs past OPT_LENGTH total"))?;
            opts.parse_one(t & !OPT_END, opt)?;
            rest = &rest[len..];
            if t & OPT_END != 0 {
                break;
            }
            if rest.is_empty() {
                return Err(Error::BadOption("no option carries OPT_END"));
            }
        }
        if !rest.is_empty() {
            return Err(Error::BadOption(
                "bytes after OPT_END inside OPT_LENGTH total",
            ));
        }
        Ok((opts, total))
    }

    /// Parses one option `opt` (its whole TLV, header included) of type `k`.
    #[allow(
        clippy::too_many_lines,
        reason = "one arm per option type, each a few lines"
    )]
    fn parse_one(&mut self, k: u8, opt: &[u8]) -> Result<(), Error> {
        let spec = opt[3];
        let mut r = Reader::new(&opt[4..]);
        let fixed = |want: usize, what: &'static str| -> Result<(), Error> {
            if opt.len() == want {
                Ok(())
            } else {
                Err(Error::BadOption(what))
            }
        };
        match k {
            kind::LENGTH => return Err(Error::BadOption("OPT_LENGTH after the first option")),
            kind::FRAGMENT if opt[2] & (OP_ENCODED | OPENPGM_OP_ENCODED) != 0 => {
                // Encoded (in a parity packet): FEC bytes, meaningless until decoded.
                fixed(16, "OPT_FRAGMENT length is not 16")?;
                let mut e = [0u8; ENCODED_FRAGMENT_LEN];
                e.copy_from_slice(&opt[3..16]);
                if self.fragment.is_some() {
                    return Err(Error::BadOption("duplicate option"));
                }
                set(&mut self.fragment_encoded, e)?;
            }
            kind::FRAGMENT => {
                fixed(16, "OPT_FRAGMENT length is not 16")?;
                if self.fragment_encoded.is_some() {
                    return Err(Error::BadOption("duplicate option"));
                }
                let f = Fragment {
                    first_sqn: SeqNo(r.u32("OPT_FRAGMENT")?),
                    offset: r.u32("OPT_FRAGMENT")?,
                    apdu_len: r.u32("OPT_FRAGMENT")?,
                };
                if f.apdu_len > MAX_APDU {
                    return Err(Error::BadFragment("APDU length above 65535"));
                }
                set(&mut self.fragment, f)?;
            }
            kind::NAK_LIST => {
                let n = opt.len() - 4;
                if !n.is_multiple_of(4) {
                    return Err(Error::BadNakList("length is not 4 + 4n"));
                }
                if n == 0 {
                    return Err(Error::BadNakList("empty"));
                }
                if n / 4 > MAX_NAK_LIST {
                    return Err(Error::BadNakList("more than 62 sequence numbers"));
                }
                let mut l = NakList::new();
                for _ in 0..n / 4 {
                    l.push(SeqNo(r.u32("OPT_NAK_LIST")?));
                }
                set(&mut self.nak_list, l)?;
            }
            kind::JOIN => {
                fixed(8, "OPT_JOIN length is not 8")?;
                set(&mut self.join, SeqNo(r.u32("OPT_JOIN")?))?;
            }
            kind::NAK_BO_IVL => {
                fixed(12, "OPT_NAK_BO_IVL length is not 12")?;
                let v = NakBoIvl {
                    ivl_us: r.u32("OPT_NAK_BO_IVL")?,
                    sqn: SeqNo(r.u32("OPT_NAK_BO_IVL")?),
                };
                set(&mut self.nak_bo_ivl, v)?;
            }
            kind::NAK_BO_RNG => {
                fixed(12, "OPT_NAK_BO_RNG length is not 12")?;
                let v = NakBoRng {
                    max_us: r.u32("OPT_NAK_BO_RNG")?,
                    min_us: r.u32("OPT_NAK_BO_RNG")?,
                };
                set(&mut self.nak_bo_rng, v)?;
            }
            kind::REDIRECT => {
                let a = r.nla("OPT_REDIRECT")?;
                if r.remaining() != 0 {
                    return Err(Error::BadOption(
                        "OPT_REDIRECT length does not match its NLA",
                    ));
                }
                set(&mut self.redirect, a)?;
            }
            kind::PARITY_PRM => {
                fixed(8, "OPT_PARITY_PRM length is not 8")?;
                let p = ParityPrm {
                    proactive: spec & 2 != 0,
                    on_demand: spec & 1 != 0,
                    tgs: r.u32("OPT_PARITY_PRM")?,
                };
                set(&mut self.parity_prm, p)?;
            }
            kind::PARITY_GRP => {
                fixed(8, "OPT_PARITY_GRP length is not 8")?;
                set(&mut self.parity_grp, r.u32("OPT_PARITY_GRP")?)?;
            }
            kind::CURR_TGSIZE => {
                fixed(8, "OPT_CURR_TGSIZE length is not 8")?;
                set(&mut self.curr_tgsize, r.u32("OPT_CURR_TGSIZE")?)?;
            }
            kind::NBR_UNREACH => {
                fixed(4, "OPT_NBR_UNREACH length is not 4")?;
                flag(&mut self.nbr_unreach)?;
            }
            kind::PATH_NLA => {
                let afi = match opt.len() {
                    8 => AFI_IP,
                    20 => AFI_IP6,
                    _ => return Err(Error::BadOption("OPT_PATH_NLA length is not 8 or 20")),
                };
                set(&mut self.path_nla, r.addr(afi, "OPT_PATH_NLA")?)?;
            }
            kind::SYN => {
                fixed(4, "OPT_SYN length is not 4")?;
                flag(&mut self.syn)?;
            }
            kind::FIN => {
                fixed(4, "OPT_FIN length is not 4")?;
                flag(&mut self.fin)?;
            }
            kind::RST => {
                fixed(4, "OPT_RST length is not 4")?;
                set(
                    &mut self.rst,
                    Rst {
                        no_naks: spec & 0x40 != 0,
                        code: spec & 0x3f,
                    },
                )?;
            }
            kind::CR => {
                let lead = SeqNo(r.u32("OPT_CR")?);
                let ne_wl = r.u16("OPT_CR")?;
                let ne_wp = r.u16("OPT_CR")?;
                let rx_wp = r.u16("OPT_CR")?;
                r.u16("OPT_CR")?;
                let rcvr = r.nla("OPT_CR")?;
                if r.remaining() != 0 {
                    return Err(Error::BadOption("OPT_CR length does not match its NLA"));
                }
                let c = Cr {
                    flags: CrFlags::from_bits(spec),
                    lead,
                    ne_wl,
                    ne_wp,
                    rx_wp,
                    rcvr,
                };
                set(&mut self.cr, c)?;
            }
            kind::CRQST => {
                fixed(4, "OPT_CRQST length is not 4")?;
                set(&mut self.crqst, CrFlags::from_bits(spec))?;
            }
            kind::PGMCC_DATA => {
                let tstamp = r.u32("OPT_PGMCC_DATA")?;
                let acker = r.nla("OPT_PGMCC_DATA")?;
                if r.remaining() != 0 {
                    return Err(Error::BadOption(
                        "OPT_PGMCC_DATA length does not match its NLA",
                    ));
                }
                set(&mut self.pgmcc_data, PgmccData { tstamp, acker })?;
            }
            kind::PGMCC_FEEDBACK => {
                let tstamp = r.u32("OPT_PGMCC_FEEDBACK")?;
                let afi = r.u16("OPT_PGMCC_FEEDBACK")?;
                let loss_rate = r.u16("OPT_PGMCC_FEEDBACK")?;
                let nla = r.addr(afi, "OPT_PGMCC_FEEDBACK")?;
                if r.remaining() != 0 {
                    return Err(Error::BadOption(
                        "OPT_PGMCC_FEEDBACK length does not match its NLA",
                    ));
                }
                set(
                    &mut self.pgmcc_feedback,
                    PgmccFeedback {
                        tstamp,
                        loss_rate,
                        nla,
                    },
                )?;
            }
            other => {
                // Unknown (or OPT_INVALID): skipped by its length, remembered for diagnostics.
                let u = &mut self.unknown;
                let i = usize::from(u.len);
                if i < MAX_OPTIONS {
                    u.kinds[i] = other;
                    u.len += 1;
                }
            }
        }
        Ok(())
    }
}

/// Stores a parsed option, rejecting a second one of the same type.
fn set<T>(slot: &mut Option<T>, v: T) -> Result<(), Error> {
    if slot.is_some() {
        return Err(Error::BadOption("duplicate option"));
    }
    *slot = Some(v);
    Ok(())
}

/// Sets a flag option, rejecting a second one of the same type.
fn flag(slot: &mut bool) -> Result<(), Error> {
    if *slot {
        return Err(Error::BadOption("duplicate option"));
    }
    *slot = true;
    Ok(())
}
