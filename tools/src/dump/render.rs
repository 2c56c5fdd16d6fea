//! The text line and the JSON object of a [`Record`]. The fields of a PGM packet's body and
//! options come from one description, [`PacketRepr::fields`]: the text line is its `Display`,
//! the JSON object maps each field with a key to a JSON value.

use pgm::wire::{
    checksum::{self, Verdict},
    FieldValue, Packet, PacketRepr,
};
use serde_json::{json, Map, Value};

use super::decode::{Encap, Record, What};

impl Record {
    /// The `--json` object.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("frame".into(), json!(self.frame));
        m.insert("time".into(), json!(self.time));
        m.insert("src".into(), json!(self.src.to_string()));
        m.insert("dst".into(), json!(self.dst.to_string()));
        match &self.what {
            What::Unsupported(reason) => {
                m.insert("type".into(), json!("UNSUPPORTED"));
                m.insert("reason".into(), json!(reason));
            }
            What::Malformed { encap, reason } => {
                insert_encap(&mut m, *encap);
                m.insert("type".into(), json!("MALFORMED"));
                m.insert("reason".into(), json!(reason));
            }
            What::Pgm { encap, data } => {
                insert_encap(&mut m, *encap);
                match PacketRepr::parse(data) {
                    Err(e) => {
                        m.insert("type".into(), json!("MALFORMED"));
                        m.insert("reason".into(), json!(e.to_string()));
                        m.insert("len".into(), json!(data.len()));
                    }
                    Ok(p) => pgm_json(&mut m, &p, data),
                }
            }
        }
        if let Some(g) = self.gso {
            m.insert("gso".into(), json!({"index": g.index, "of": g.of}));
        }
        Value::Object(m)
    }

    /// The text line: `TIME SRC.PORT > DST.PORT PGM …`, ending in `[gso I/N]` for a packet of
    /// a GSO super-packet.
    pub fn to_text(&self) -> String {
        let line = self.text_line();
        match self.gso {
            Some(g) => format!("{line} [gso {}/{}]", g.index, g.of),
            None => line,
        }
    }

    /// [`Record::to_text`] without the GSO note.
    fn text_line(&self) -> String {
        let t = format!("{:.6}", self.time);
        match &self.what {
            What::Unsupported(reason) => {
                format!("{t} {} > {} unsupported: {reason}", self.src, self.dst)
            }
            What::Malformed { encap, reason } => {
                format!(
                    "{t} {} PGM MALFORMED: {reason}",
                    self.endpoints(*encap, None)
                )
            }
            What::Pgm { encap, data } => match PacketRepr::parse(data) {
                Err(e) => format!(
                    "{t} {} PGM MALFORMED: {e} ({} bytes)",
                    self.endpoints(*encap, Packet::new_checked(&data[..]).ok()),
                    data.len()
                ),
                Ok(p) => {
                    let ck = match checksum::verify(data) {
                        Verdict::Good => "",
                        Verdict::Bad => " [bad cksum]",
                        Verdict::Absent => " [no cksum]",
                    };
                    let h = Packet::new_checked(&data[..]).ok();
                    format!("{t} {} PGM {p}{ck}", self.endpoints(*encap, h))
                }
            },
        }
    }

    /// `SRC.PORT > DST.PORT` (PGM ports for raw, UDP ports plus "UDP" for EPGM), in tcpdump's
    /// notation for IPv6 too (`2001:db8::1.7500`).
    fn endpoints(&self, encap: Encap, header: Option<Packet<&[u8]>>) -> String {
        match (encap, header) {
            (Encap::Udp { sport, dport }, _) => {
                format!("{}.{sport} > {}.{dport} UDP", self.src, self.dst)
            }
            (Encap::Raw, Some(h)) => {
                format!("{}.{} > {}.{}", self.src, h.sport(), self.dst, h.dport())
            }
            (Encap::Raw, None) => format!("{} > {}", self.src, self.dst),
        }
    }
}

fn insert_encap(m: &mut Map<String, Value>, encap: Encap) {
    m.insert("encap".into(), json!(encap.name()));
    if let Encap::Udp { sport, dport } = encap {
        m.insert("udp_sport".into(), json!(sport));
        m.insert("udp_dport".into(), json!(dport));
    }
}

/// The keys of a parsed PGM packet: the common header, then every field of
/// [`PacketRepr::fields`] that has a key.
fn pgm_json(m: &mut Map<String, Value>, p: &PacketRepr<'_>, data: &[u8]) {
    m.insert("type".into(), json!(p.packet_type().name()));
    m.insert("sport".into(), json!(p.sport));
    m.insert("dport".into(), json!(p.dport));
    m.insert("gsi".into(), json!(p.gsi.to_hex()));
    let tsdu = Packet::new_checked(data).map_or(0, |h| h.tsdu_length());
    m.insert("tsdu_len".into(), json!(tsdu));
    let verdict = checksum::verify(data);
    m.insert("checksum_ok".into(), json!(verdict == Verdict::Good));
    if verdict == Verdict::Absent {
        m.insert("checksum_absent".into(), json!(true));
    }
    for f in p.fields() {
        if let Some(key) = f.key {
            m.insert(key.into(), field_json(f.value));
        }
    }
}

/// A field's value in JSON: numbers as numbers (whatever base the text uses), addresses as
/// strings.
fn field_json(v: FieldValue) -> Value {
    match v {
        FieldValue::Num(n) => json!(n),
        FieldValue::Byte(b) => json!(b),
        FieldValue::Bits(b) | FieldValue::Micros(b) => json!(b),
        FieldValue::Addr(a) => json!(a.to_string()),
        FieldValue::Flag(f) => json!(f),
        FieldValue::Sqns(s) => json!(s),
        FieldValue::Fragment(f) => {
            json!({"first_sqn": f.first_sqn.0, "offset": f.offset, "apdu_len": f.apdu_len})
        }
        FieldValue::Names(n) => json!(n),
    }
}
