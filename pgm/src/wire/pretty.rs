//! One-line human rendering of packets, in the spirit of tcpdump and OpenPGM's pgmdump.

use std::fmt;

use super::{Body, PacketRepr};

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
        match &self.body {
            Body::Spm(s) => write!(
                f,
                " spm_sqn {} trail {} lead {} nla {}",
                s.spm_sqn, s.trail, s.lead, s.path
            )?,
            Body::Poll(p) => write!(
                f,
                " sqn {} round {} type {} nla {} bo_ivl {}us",
                p.sqn, p.round, p.s_type, p.path, p.bo_ivl_us
            )?,
            Body::Polr(p) => write!(f, " sqn {} round {}", p.sqn, p.round)?,
            Body::Odata(d) | Body::Rdata(d) => write!(
                f,
                " sqn {} trail {} tsdu {}",
                d.sqn,
                d.trail,
                self.payload.len()
            )?,
            Body::Nak(n) | Body::Nnak(n) | Body::Ncf(n) => {
                write!(f, " sqn {} src {} grp {}", n.sqn, n.src_nla, n.grp_nla)?;
            }
            Body::Ack(a) => write!(f, " rx_max {} bitmap {:#010x}", a.rx_max, a.bitmap)?,
            Body::Spmr => {}
            Body::Unknown(t) => write!(f, " type {t:#04x} len {}", self.payload.len())?,
        }
        let o = &self.options;
        if let Some(fr) = o.fragment {
            write!(
                f,
                " frag(first {} off {} len {})",
                fr.first_sqn, fr.offset, fr.apdu_len
            )?;
        }
        if let Some(l) = o.nak_list {
            write!(f, " list[")?;
            for (i, s) in l.as_slice().iter().enumerate() {
                write!(f, "{}{s}", if i == 0 { "" } else { "," })?;
            }
            write!(f, "]")?;
        }
        if o.fin {
            write!(f, " FIN")?;
        }
        if o.syn {
            write!(f, " SYN")?;
        }
        if o.rst.is_some() {
            write!(f, " RST")?;
        }
        let names = o.names();
        let rest: Vec<_> = names
            .iter()
            .filter(|n| {
                !matches!(
                    **n,
                    "OPT_LENGTH"
                        | "OPT_FRAGMENT"
                        | "OPT_NAK_LIST"
                        | "OPT_FIN"
                        | "OPT_SYN"
                        | "OPT_RST"
                )
            })
            .collect();
        if !rest.is_empty() {
            write!(
                f,
                " opts {}",
                rest.iter()
                    .map(|s| s.trim_start_matches("OPT_"))
                    .collect::<Vec<_>>()
                    .join(",")
            )?;
        }
        Ok(())
    }
}
