//! What a packet shows of itself: [`PacketRepr::fields`] names each field of the body and of the
//! options once, for a human (the one-line text of `Display`, in the spirit of tcpdump and
//! OpenPGM's pgmdump) and for a machine (the keys of `pgm-dump --json`). Both renderings walk
//! that one list, so this is the only place that matches on packet bodies for output.

use std::{fmt, net::IpAddr};

use super::{Body, Fragment, PacketRepr};

/// One field of a packet's body or options, as [`PacketRepr::fields`] describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Its name in the one-line text; `None`: machine output only.
    pub label: Option<&'static str>,
    /// Its machine-readable name (a JSON key); `None`: text only.
    pub key: Option<&'static str>,
    /// Its value.
    pub value: FieldValue,
}

/// The value of a [`Field`]; its [`Display`](fmt::Display) is the text rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// A count, sequence number, port or round: decimal.
    Num(u64),
    /// A type byte: `0x0f`.
    Byte(u8),
    /// A 32-bit bitmap: `0x0000000f`.
    Bits(u32),
    /// A back-off interval in microseconds: `100000us`.
    Micros(u32),
    /// A network-layer address.
    Addr(IpAddr),
    /// A flag: the text shows the label alone when it is set, nothing when not.
    Flag(bool),
    /// Sequence numbers: `[1,2]`, right after the label.
    Sqns(Vec<u32>),
    /// OPT_FRAGMENT: `(first 3 off 0 len 3000)`, right after the label.
    Fragment(Fragment),
    /// Option names: `JOIN,SYN`.
    Names(Vec<&'static str>),
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Num(n) => write!(f, "{n}"),
            FieldValue::Byte(b) => write!(f, "{b:#04x}"),
            FieldValue::Bits(b) => write!(f, "{b:#010x}"),
            FieldValue::Micros(us) => write!(f, "{us}us"),
            FieldValue::Addr(a) => write!(f, "{a}"),
            FieldValue::Flag(_) => Ok(()),
            FieldValue::Sqns(s) => {
                let s: Vec<String> = s.iter().map(u32::to_string).collect();
                write!(f, "[{}]", s.join(","))
            }
            FieldValue::Fragment(fr) => write!(
                f,
                "(first {} off {} len {})",
                fr.first_sqn, fr.offset, fr.apdu_len
            ),
            FieldValue::Names(n) => write!(f, "{}", n.join(",")),
        }
    }
}

impl Field {
    /// Shown in text and machine output under two names.
    fn both(label: &'static str, key: &'static str, value: FieldValue) -> Self {
        Field {
            label: Some(label),
            key: Some(key),
            value,
        }
    }

    /// Shown in the text only.
    fn text(label: &'static str, value: FieldValue) -> Self {
        Field {
            label: Some(label),
            key: None,
            value,
        }
    }

    /// Shown in machine output only.
    fn machine(key: &'static str, value: FieldValue) -> Self {
        Field {
            label: None,
            key: Some(key),
            value,
        }
    }

    /// Writes ` label value` (` label` for a set flag, nothing for a clear one or a
    /// machine-only field).
    fn write_text(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(label) = self.label else {
            return Ok(());
        };
        match &self.value {
            FieldValue::Flag(false) => Ok(()),
            FieldValue::Flag(true) => write!(f, " {label}"),
            v @ (FieldValue::Sqns(_) | FieldValue::Fragment(_)) => write!(f, " {label}{v}"),
            v => write!(f, " {label} {v}"),
        }
    }
}

/// The options the text line shows by their own fields; the others are listed by name.
const SHOWN_ON_THEIR_OWN: [&str; 6] = [
    "OPT_LENGTH",
    "OPT_FRAGMENT",
    "OPT_NAK_LIST",
    "OPT_FIN",
    "OPT_SYN",
    "OPT_RST",
];

impl PacketRepr<'_> {
    /// The fields after the common header (type, ports, GSI): the body's, then the options',
    /// in text order.
    pub fn fields(&self) -> Vec<Field> {
        use FieldValue::{Addr, Num};
        let sqn = |s: super::SeqNo| Num(s.0.into());
        let tsdu = Num(self.payload.len() as u64);
        let mut v = match &self.body {
            Body::Spm(s) => vec![
                Field::both("spm_sqn", "sqn", sqn(s.spm_sqn)),
                Field::both("trail", "trail", sqn(s.trail)),
                Field::both("lead", "lead", sqn(s.lead)),
                Field::both("nla", "nla", Addr(s.path)),
            ],
            Body::Poll(p) => vec![
                Field::both("sqn", "sqn", sqn(p.sqn)),
                Field::both("round", "round", Num(p.round.into())),
                Field::text("type", Num(p.s_type.into())),
                Field::both("nla", "nla", Addr(p.path)),
                Field::text("bo_ivl", FieldValue::Micros(p.bo_ivl_us)),
            ],
            Body::Polr(p) => vec![
                Field::both("sqn", "sqn", sqn(p.sqn)),
                Field::both("round", "round", Num(p.round.into())),
            ],
            Body::Odata(d) | Body::Rdata(d) => vec![
                Field::both("sqn", "sqn", sqn(d.sqn)),
                Field::both("trail", "trail", sqn(d.trail)),
                Field::text("tsdu", tsdu),
            ],
            Body::Nak(n) | Body::Nnak(n) | Body::Ncf(n) => vec![
                Field::both("sqn", "sqn", sqn(n.sqn)),
                Field::both("src", "nla", Addr(n.src_nla)),
                Field::both("grp", "group", Addr(n.grp_nla)),
            ],
            Body::Ack(a) => vec![
                Field::both("rx_max", "rx_max", sqn(a.rx_max)),
                Field::both("bitmap", "bitmap", FieldValue::Bits(a.bitmap)),
            ],
            Body::Spmr => Vec::new(),
            Body::Unknown(t) => vec![
                Field::both("type", "type_byte", FieldValue::Byte(*t)),
                Field::text("len", tsdu),
            ],
        };
        // The options of an unknown type are not parsed: machine output does not claim there
        // are none.
        let parsed = !matches!(self.body, Body::Unknown(_));
        let key = |k| parsed.then_some(k);
        let o = &self.options;
        if let Some(fr) = o.fragment {
            v.push(Field {
                label: Some("frag"),
                key: key("fragment"),
                value: FieldValue::Fragment(fr),
            });
        }
        if let Some(l) = o.nak_list {
            let sqns = l.as_slice().iter().map(|s| s.0).collect();
            v.push(Field {
                label: Some("list"),
                key: key("nak_list"),
                value: FieldValue::Sqns(sqns),
            });
        }
        v.push(Field {
            label: Some("FIN"),
            key: key("fin"),
            value: FieldValue::Flag(o.fin),
        });
        // The header's option bits (RFC 3208 §8, §11): a parity packet, NAK or NCF (FEC), and
        // a parity packet of a group with packets of different lengths.
        v.push(Field {
            label: Some("PARITY"),
            key: key("parity"),
            value: FieldValue::Flag(self.parity),
        });
        v.push(Field::text("VAR_PKTLEN", FieldValue::Flag(self.var_pktlen)));
        v.push(Field::text("SYN", FieldValue::Flag(o.syn)));
        v.push(Field::text("RST", FieldValue::Flag(o.rst.is_some())));
        let names = o.names();
        let rest: Vec<_> = names
            .iter()
            .filter(|n| !SHOWN_ON_THEIR_OWN.contains(n))
            .map(|n| n.trim_start_matches("OPT_"))
            .collect();
        if !rest.is_empty() {
            v.push(Field::text("opts", FieldValue::Names(rest)));
        }
        if parsed {
            v.push(Field::machine("options", FieldValue::Names(names)));
        }
        v
    }
}

impl fmt::Display for PacketRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}>{} gsi {}",
            self.packet_type().name(),
            self.sport,
            self.dport,
            self.gsi.to_hex()
        )?;
        self.fields()
            .iter()
            .try_for_each(|field| field.write_text(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Gsi, Nak, NakList, Options, SeqNo};

    #[test]
    fn text_and_machine_names_come_from_one_list() {
        let (src, grp) = ([10, 0, 0, 1].into(), [239, 192, 1, 1].into());
        let p = PacketRepr {
            sport: 7500,
            dport: 1000,
            gsi: Gsi([1, 2, 3, 4, 5, 6]),
            parity: false,
            var_pktlen: false,
            body: Body::Nak(Nak {
                sqn: SeqNo(5),
                src_nla: src,
                grp_nla: grp,
            }),
            options: Options {
                nak_list: Some(NakList::from_slice(&[SeqNo(6), SeqNo(8)])),
                ..Options::default()
            },
            payload: &[],
        };
        let fields = p.fields();
        let keyed: Vec<_> = fields.iter().filter_map(|f| f.key).collect();
        assert_eq!(
            keyed,
            ["sqn", "nla", "group", "nak_list", "fin", "parity", "options"]
        );
        assert_eq!(fields[1], Field::both("src", "nla", FieldValue::Addr(src)));
        assert_eq!(
            p.to_string(),
            "NAK 7500>1000 gsi 010203040506 sqn 5 src 10.0.0.1 grp 239.192.1.1 list[6,8]"
        );
        // A parity NAK says so in both renderings.
        let parity = PacketRepr { parity: true, ..p };
        assert!(parity.to_string().ends_with("list[6,8] PARITY"), "{parity}");
        assert!(parity
            .fields()
            .contains(&Field::both("PARITY", "parity", FieldValue::Flag(true))));
        // An unknown type shows its type byte to both, its options to neither.
        let u = PacketRepr {
            body: Body::Unknown(0x0f),
            options: Options::default(),
            payload: b"abc",
            ..p
        };
        let keyed: Vec<_> = u.fields().iter().filter_map(|f| f.key).collect();
        assert_eq!(keyed, ["type_byte"]);
        assert_eq!(
            u.to_string(),
            "UNKNOWN 7500>1000 gsi 010203040506 type 0x0f len 3"
        );
    }
}
