//! Option value parsers (rates, window and byte sizes, shares, seconds) and the transport
//! options every PGM tool takes ([`CommonArgs`]).

use std::time::Duration;

use clap::ValueEnum;
use pgm::{
    socket::{Endpoint, NakProfile, SocketOptions},
    Congestion, FecConfig, History, JoinPolicy, NakTiming, PgmccConfig, ReceiverLimits,
    RepairBudget,
};

/// Parses a rate in bits/s: a number with an optional k, M or G suffix (decimal: 100M = 10^8),
/// and an optional `bit/s`/`bps`; `0` or `unlimited` for no limit.
#[expect(clippy::cast_sign_loss, reason = "negative values are rejected first")]
pub fn parse_rate(s: &str) -> Result<Option<u64>, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    let t = t
        .trim_end_matches("bit/s")
        .trim_end_matches("bps")
        .trim_end_matches("b/s");
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('M') => (&t[..t.len() - 1], 1e6),
        Some('G') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad rate {s:?}: expected bits/s like 100M, 1.5G or 64000"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("bad rate {s:?}"));
    }
    let bits = (v * mult).round();
    if bits >= u64::MAX as f64 {
        return Err(format!("rate {s:?} is too large"));
    }
    let bits = bits as u64;
    Ok((bits > 0).then_some(bits))
}

/// Parses a message rate: messages per second, with an optional k or M suffix.
pub fn parse_msg_rate(s: &str) -> Result<f64, String> {
    match parse_rate(s) {
        Ok(Some(n)) => Ok(n as f64),
        _ => Err(format!(
            "bad message rate {s:?}: expected messages/s like 10k"
        )),
    }
}

/// [`parse_rate`] for clap: 0 means unlimited.
pub fn parse_rate_arg(s: &str) -> Result<u64, String> {
    parse_rate(s).map(|r| r.unwrap_or(0))
}

/// A window size: sequence numbers, or payload bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// TXW_SQNS / RXW_SQNS.
    Sqns(u32),
    /// Bytes of payload.
    Bytes(usize),
}

/// Parses a window: a plain number is sequence numbers (packets); a number with a byte unit
/// is bytes: `B`, `k`/`kB` (10^3), `KiB` (2^10), `M`/`MB`, `MiB`, `G`/`GB`, `GiB`.
#[expect(clippy::cast_sign_loss, reason = "the range is checked first")]
pub fn parse_window(s: &str) -> Result<Window, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("bad window {s:?}: expected sqns (like 10000) or bytes (like 16MiB)");
    let mult: f64 = match unit.trim() {
        "" => {
            let sqns: u32 = num.parse().map_err(|_| bad())?;
            if sqns == 0 || sqns >= 1 << 31 {
                return Err(format!("window of {sqns} sqns is out of range 1..2^31"));
            }
            return Ok(Window::Sqns(sqns));
        }
        "B" => 1.0,
        "k" | "kB" | "KB" => 1e3,
        "KiB" | "Ki" => 1024.0,
        "M" | "MB" => 1e6,
        "MiB" | "Mi" => 1_048_576.0,
        "G" | "GB" => 1e9,
        "GiB" | "Gi" => 1_073_741_824.0,
        _ => return Err(bad()),
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    let bytes = (v * mult).round();
    if !(1.0..=(1u64 << 40) as f64).contains(&bytes) {
        return Err(format!("window {s:?} is out of range"));
    }
    Ok(Window::Bytes(bytes as usize))
}

/// Parses a byte size: a number with an optional unit, `B`, `k`/`kB` (10^3), `KiB` (2^10),
/// `M`/`MB`, `MiB`, `G`/`GB`, `GiB`.
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let t = s.trim();
    if t.chars().all(|c| c.is_ascii_digit()) {
        return t
            .parse()
            .map_err(|_| format!("bad size {s:?}: expected bytes like 64MiB"));
    }
    match parse_window(t) {
        Ok(Window::Bytes(b)) => Ok(b),
        _ => Err(format!(
            "bad size {s:?}: expected bytes like 64MiB or 100MB"
        )),
    }
}

/// Parses `--fec K[,H]`: groups of K (a power of two in 2..=128) with H pro-active parity
/// packets each; H = 0 (or absent) means parity on demand only.
pub(super) fn parse_fec(s: &str) -> Result<FecConfig, String> {
    let (k, h) = s.split_once(',').unwrap_or((s, "0"));
    let k: u8 = k
        .trim()
        .parse()
        .map_err(|_| format!("--fec {s}: K must be a power of two in 2..=128"))?;
    let h: u8 = h
        .trim()
        .parse()
        .map_err(|_| format!("--fec {s}: H must be a number of parity packets 0..=K"))?;
    if h == 0 {
        FecConfig::on_demand(k)
    } else {
        FecConfig::proactive(k, h)
    }
}

/// Parses a share in `[0.01, 0.9]`.
pub fn parse_share(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("bad share {s:?}: expected a fraction like 0.4"))?;
    if !(0.01..=0.9).contains(&v) {
        return Err(format!("share {v} out of range 0.01..=0.9"));
    }
    Ok(v)
}

/// Parses seconds (fractions allowed), at most a day.
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("bad duration {s:?}: expected seconds like 2.5"))?;
    if !(0.0..=86_400.0).contains(&v) {
        return Err(format!("{v} s out of range 0..=86400"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// Parses milliseconds (fractions allowed), more than 0 and at most a minute.
pub(crate) fn parse_millis(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .trim_end_matches("ms")
        .parse()
        .map_err(|_| format!("bad interval {s:?}: expected milliseconds like 2.5"))?;
    if !(v > 0.0 && v <= 60_000.0) {
        return Err(format!("{v} ms out of range (0, 60000]"));
    }
    Ok(Duration::from_secs_f64(v / 1000.0))
}

/// One `--history` bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryBound {
    /// What was sent within this long.
    Age(Duration),
    /// At most this many payload bytes.
    Bytes(usize),
}

/// Parses `--history`: an age (`500ms`, `5s`, `2m`, `1h`) or a size with a byte unit
/// (`16MiB`, `100MB`).
pub fn parse_history(s: &str) -> Result<HistoryBound, String> {
    let t = s.trim();
    let bad = || format!("bad --history {s:?}: expected an age like 5s or a size like 16MiB");
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let secs = match unit {
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "" => return Err(bad()),
        _ => {
            return match parse_window(t) {
                Ok(Window::Bytes(b)) => Ok(HistoryBound::Bytes(b)),
                _ => Err(bad()),
            }
        }
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    let age = v * secs;
    if !(0.001..=86_400.0).contains(&age) {
        return Err(format!("--history {s:?}: an age must be within 1ms..=24h"));
    }
    Ok(HistoryBound::Age(Duration::from_secs_f64(age)))
}

/// `--join`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JoinArg {
    /// Start at the first sqn heard, asking for nothing older (OpenPGM's behaviour; default).
    FirstSeen,
    /// Start at the trail the source advertises: ask for everything it still holds.
    AdvertisedTrail,
}

impl From<JoinArg> for JoinPolicy {
    fn from(j: JoinArg) -> Self {
        match j {
            JoinArg::FirstSeen => JoinPolicy::FirstSeen,
            JoinArg::AdvertisedTrail => JoinPolicy::AdvertisedTrail,
        }
    }
}

/// `--congestion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CongestionArg {
    /// No congestion control: the sender sends at its rate limit (default).
    None,
    /// PGMCC (docs/congestion.md): the sender's rate follows the slowest receiver's ACKs
    /// (the rate limit stays a cap); receivers report loss and ACK when elected. Ours-only
    /// for now: not tested against OpenPGM.
    Pgmcc,
}

impl From<CongestionArg> for Congestion {
    fn from(c: CongestionArg) -> Self {
        match c {
            CongestionArg::None => Congestion::None,
            CongestionArg::Pgmcc => Congestion::Pgmcc(PgmccConfig::default()),
        }
    }
}

/// `--nak-profile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NakProfileArg {
    /// Millisecond NAK back-off and repeats, millisecond heartbeat SPMs (default).
    Lan,
    /// OpenPGM/libzmq timing: 50 ms back-off, 200 ms repeats; OpenPGM's SPM schedule.
    Openpgm,
}

impl From<NakProfileArg> for NakProfile {
    fn from(p: NakProfileArg) -> Self {
        match p {
            NakProfileArg::Lan => NakProfile::Lan,
            NakProfileArg::Openpgm => NakProfile::OpenPgm,
        }
    }
}

/// Options both tools take.
#[derive(Debug, Clone, clap::Args)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent command-line switches, one field each"
)]
pub struct CommonArgs {
    /// Largest IP datagram (max TPDU / MTU), IP header included.
    #[arg(long, default_value_t = 1500, value_name = "BYTES")]
    pub tpdu: usize,
    /// Window: sequence numbers (e.g. 20000), or bytes with a unit (e.g. 16MiB, 32MB).
    #[arg(long, value_parser = parse_window, value_name = "SQNS|SIZE")]
    pub window: Option<Window>,
    /// NAK timing profile.
    #[arg(long, value_enum, default_value_t = NakProfileArg::Lan)]
    pub nak_profile: NakProfileArg,
    /// Multicast TTL (IP_MULTICAST_TTL).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=255))]
    pub hops: u32,
    /// Loop multicast back to this host (always on for a loopback interface).
    #[arg(long = "loop")]
    pub multicast_loop: bool,
    /// IP_TOS byte (e.g. 184 = 0xB8, DSCP EF, as OpenPGM sets it).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=255))]
    pub tos: u32,
    /// EPGM: send each packet with its own syscall instead of runs of packets as one UDP GSO
    /// send (`UDP_SEGMENT`; the datagrams on the wire are the same either way).
    #[arg(long)]
    pub no_gso: bool,
    /// Sender: FEC (Reed-Solomon parity, docs/fec.md; ours-only, never with OpenPGM
    /// receivers): transmission groups of K packets (a power of two, 2..128) with H
    /// pro-active parity packets after each; `K` or `K,0` sends parity only on demand.
    #[arg(long, value_parser = parse_fec, value_name = "K[,H]")]
    pub fec: Option<FecConfig>,
    /// Sender: also answer parity NAKs with fresh parity (with --fec K,H).
    #[arg(long, requires = "fec")]
    pub fec_ondemand: bool,
    /// Sender and receiver: congestion control (docs/congestion.md). Senders and receivers
    /// of a session should agree: PGMCC receivers report loss and ACK, a PGMCC sender waits
    /// for their ACKs.
    #[arg(long, value_enum, default_value_t = CongestionArg::None)]
    pub congestion: CongestionArg,
    /// Sender: keep a history for late joiners and offer it (OPT_JOIN; docs/late-join.md):
    /// what was sent within an age (like 5s) and/or at most a size (like 16MiB); give it
    /// twice for both. The --window sqn bound still applies. A late joiner's repairs are
    /// capped like any NAKer's (--repair-per-naker, --repair-rate).
    #[arg(long, value_parser = parse_history, value_name = "AGE|SIZE")]
    pub history: Vec<HistoryBound>,
    /// Receiver: source-specific multicast: join (ADDR, GROUP) instead of (*, GROUP); packets
    /// from any other source are dropped (repeatable: one join per source). ADDR is the
    /// sender's IPv4 address.
    #[arg(long = "source", value_name = "ADDR")]
    pub sources: Vec<std::net::IpAddr>,
    /// Receiver: use the parity a source advertises: rebuild lost packets from it, and ask
    /// for it with parity NAKs when the source offers it on demand.
    #[arg(long)]
    pub fec_receive: bool,
    /// Sender: share of the wire repairs (NCF + RDATA) may take while new data waits, and of
    /// the rate limit [default: 0.4].
    #[arg(long, value_parser = parse_share, value_name = "FRACTION")]
    pub repair_share: Option<f64>,
    /// Sender: cap on repairs in bits/s [default: repair share × --rate; unpaced, repair share
    /// × the recent sending rate, at least 100M].
    #[arg(long, value_parser = parse_rate_arg, value_name = "BITS")]
    pub repair_rate: Option<u64>,
    /// Sender: sqns per second one NAKer (by IP address) gets repaired [default: 20000].
    #[arg(long, value_name = "SQNS", value_parser = clap::value_parser!(u32).range(1..))]
    pub repair_per_naker: Option<u32>,
    /// Receiver: most sessions tracked at once [default: 1024].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_peers: Option<u32>,
    /// Receiver: memory budget over all sessions' windows, e.g. 256MiB [default: 256MiB].
    #[arg(long, value_parser = parse_bytes, value_name = "SIZE")]
    pub memory: Option<usize>,
    /// Receiver: seconds a missing message may stay in recovery before it is reported lost
    /// [default: 30 (lan), 60 (openpgm)].
    #[arg(long, value_parser = parse_secs, value_name = "SECS")]
    pub max_recovery: Option<Duration>,
    /// Receiver: where a newly heard session starts.
    #[arg(long, value_enum, default_value_t = JoinArg::FirstSeen)]
    pub join: JoinArg,
    /// Receiver: seconds of silence after which a session is forgotten [default: 300].
    #[arg(long, value_parser = parse_secs, value_name = "SECS")]
    pub peer_expiry: Option<Duration>,
    /// Receiver: NAK_BO_IVL, the longest random back-off before a NAK, in ms
    /// [default: 2.5 (lan), 50 (openpgm)].
    #[arg(long, value_parser = parse_millis, value_name = "MS")]
    pub nak_bo_ivl: Option<Duration>,
    /// Receiver: NAK_RPT_IVL, the wait for an NCF before NAKing again, in ms
    /// [default: 4 (lan), 200 (openpgm)].
    #[arg(long, value_parser = parse_millis, value_name = "MS")]
    pub nak_rpt_ivl: Option<Duration>,
    /// Receiver: NAK_RDATA_IVL, the wait for RDATA after an NCF before NAKing again, in ms
    /// [default: 4 (lan), 200 (openpgm)].
    #[arg(long, value_parser = parse_millis, value_name = "MS")]
    pub nak_rdata_ivl: Option<Duration>,
    /// Receiver: the longest either wait grows to as repeats back off (there is no retry
    /// count: a sqn is asked for until --max-recovery or until the source no longer has it),
    /// in ms [default: 250 (lan), 2000 (openpgm)].
    #[arg(long, value_parser = parse_millis, value_name = "MS")]
    pub nak_max_ivl: Option<Duration>,
    /// A/B session (docs/dual-path.md): the session also on this second path, another group
    /// (and possibly interface; the same port) of the endpoint's scheme. A sender sends
    /// everything on both; a receiver joins both, merges them by sequence number and NAKs
    /// only what both lost.
    #[arg(long, value_parser = parse_second_path, value_name = "IFACE;GROUP:PORT")]
    pub second_path: Option<Endpoint>,
    /// Receiver with --second-path: how much later one path delivers than the other, in
    /// ms; a gap waits this long before its NAK back-off starts, so that the other path can
    /// fill it [default: 0; the LAN back-off covers a few hundred µs by itself].
    #[arg(long, value_parser = parse_millis, value_name = "MS", requires = "second_path")]
    pub path_skew: Option<Duration>,
    /// Drop this percentage of received packets at random before the engine sees them
    /// (seeded by the process id; with --second-path on each path independently): loss for
    /// tests and demos without root or nftables.
    #[arg(long, value_parser = parse_loss_percent, value_name = "PERCENT")]
    pub simulated_loss: Option<f64>,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Parses `--second-path IFACE;GROUP:PORT` (the scheme is the endpoint's).
pub(super) fn parse_second_path(s: &str) -> Result<Endpoint, String> {
    if s.contains("://") {
        return Err(format!(
            "second path {s:?}: give it without a scheme, as IFACE;GROUP:PORT (it uses the \
             endpoint's)"
        ));
    }
    Endpoint::parse(s).map_err(|e| format!("second path: {e}"))
}

/// Parses a loss percentage in `[0, 100)`.
pub fn parse_loss_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("bad percentage {s:?}: expected a number like 5"))?;
    if !(0.0..100.0).contains(&v) {
        return Err(format!("loss {v} % out of range 0..100"));
    }
    Ok(v)
}

impl CommonArgs {
    /// The socket and transport options these arguments ask for.
    pub fn transport_options(&self) -> epgm::Options {
        let o = epgm::Options::from(self.socket_options()).with_udp_gso(!self.no_gso);
        match self.simulated_loss {
            Some(p) if p > 0.0 => {
                o.with_simulated_recv_loss(p / 100.0, u64::from(std::process::id()))
            }
            _ => o,
        }
    }

    /// The socket options these arguments ask for.
    pub fn socket_options(&self) -> SocketOptions {
        let fec = self.fec.map(|f| {
            if self.fec_ondemand {
                f.with_on_demand()
            } else {
                f
            }
        });
        let mut o = SocketOptions::default()
            .with_fec(fec)
            .with_fec_receive(self.fec_receive)
            .with_congestion(self.congestion.into())
            .with_sources(self.sources.clone())
            .with_tpdu(self.tpdu)
            .with_nak(self.nak_profile())
            .with_join(self.join.into())
            .with_history(self.history())
            .with_hops(self.hops)
            .with_multicast_loop(self.multicast_loop)
            .with_tos(self.tos);
        match self.window {
            Some(Window::Sqns(n)) => o = o.with_window_sqns(n),
            Some(Window::Bytes(b)) => o = o.with_window_bytes(b),
            None => {}
        }
        let mut repair = RepairBudget::default();
        if let Some(share) = self.repair_share {
            repair.share = share;
        }
        repair.rate = self.repair_rate.filter(|&r| r > 0).map(|bits| bits / 8);
        if let Some(n) = self.repair_per_naker {
            repair.per_naker_rate = n;
        }
        let mut limits = ReceiverLimits::default();
        if let Some(n) = self.max_peers {
            limits.max_peers = n as usize;
        }
        if let Some(b) = self.memory {
            limits.max_total_bytes = b;
        }
        o = o.with_repair(repair).with_receiver_limits(limits);
        if let Some(m) = self.max_recovery {
            o = o.with_max_recovery(m);
        }
        if let Some(e) = self.peer_expiry {
            o = o.with_peer_expiry(e);
        }
        if let Some(p) = &self.second_path {
            o = o.with_second_path(p.clone());
        }
        if let Some(skew) = self.path_skew {
            o = o.with_path_skew(skew);
        }
        o
    }

    /// The history of `--history` (the last age and the last size given).
    fn history(&self) -> Option<History> {
        if self.history.is_empty() {
            return None;
        }
        let mut h = History::default();
        for b in &self.history {
            match *b {
                HistoryBound::Age(a) => h.age = Some(a),
                HistoryBound::Bytes(n) => h.bytes = Some(n),
            }
        }
        Some(h)
    }

    /// The `--nak-profile`, with the `--nak-*-ivl` flags given on top of its NAK timing
    /// (then a custom profile: a sender's SPM schedule is the LAN one).
    fn nak_profile(&self) -> NakProfile {
        let overrides = [
            self.nak_bo_ivl,
            self.nak_rpt_ivl,
            self.nak_rdata_ivl,
            self.nak_max_ivl,
        ];
        if overrides.iter().all(Option::is_none) {
            return self.nak_profile.into();
        }
        let base = match self.nak_profile {
            NakProfileArg::Lan => NakTiming::LAN,
            NakProfileArg::Openpgm => NakTiming::OPENPGM,
        };
        NakProfile::Custom(NakTiming {
            bo_ivl: self.nak_bo_ivl.unwrap_or(base.bo_ivl),
            rpt_ivl: self.nak_rpt_ivl.unwrap_or(base.rpt_ivl),
            rdata_ivl: self.nak_rdata_ivl.unwrap_or(base.rdata_ivl),
            max_ivl: self.nak_max_ivl.unwrap_or(base.max_ivl),
            ..base
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("100M"), Ok(Some(100_000_000)));
        assert_eq!(parse_rate("1.5G"), Ok(Some(1_500_000_000)));
        assert_eq!(parse_rate("64k"), Ok(Some(64_000)));
        assert_eq!(parse_rate("64000"), Ok(Some(64_000)));
        assert_eq!(parse_rate("10Mbit/s"), Ok(Some(10_000_000)));
        assert_eq!(parse_rate("0"), Ok(None));
        assert_eq!(parse_rate("unlimited"), Ok(None));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("-5M").is_err());
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }

    fn options(args: &[&str]) -> Result<SocketOptions, clap::Error> {
        use clap::Parser as _;
        let argv = std::iter::once("tool").chain(args.iter().copied());
        Cli::try_parse_from(argv).map(|c| c.common.socket_options())
    }

    #[test]
    fn second_path_flag() {
        assert!(options(&[]).unwrap().multicast.second_path.is_none());
        let o = options(&["--second-path", "lo;239.192.9.2:7500"]).unwrap();
        let p = o.multicast.second_path.unwrap();
        assert_eq!((p.interface.name.as_str(), p.port), ("lo", 7500));
        let o = options(&["--second-path", "lo;239.192.9.2:7500", "--path-skew", "5"]).unwrap();
        assert_eq!(o.engine.path_skew, Duration::from_millis(5));
        assert!(
            options(&["--path-skew", "5"]).is_err(),
            "needs --second-path"
        );
        for (bad, says) in [
            ("epgm://lo;239.192.9.2:7500", "without a scheme"),
            ("lo;10.0.0.1:7500", "not a multicast group"),
            ("nosuchif9;239.1.1.1:5", "unknown interface"),
        ] {
            let e = options(&["--second-path", bad]).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn fec_flags() {
        let d = options(&[]).unwrap();
        assert_eq!((d.engine.fec, d.engine.fec_receive), (None, false));
        let o = options(&["--fec", "16,2", "--fec-ondemand", "--fec-receive"]).unwrap();
        let f = o.engine.fec.unwrap();
        assert_eq!((f.group_size(), f.proactive_count()), (16, 2));
        assert!(f.is_on_demand() && o.engine.fec_receive);
        let f = options(&["--fec", "8"]).unwrap().engine.fec.unwrap();
        assert_eq!(
            (f.group_size(), f.proactive_count(), f.is_on_demand()),
            (8, 0, true)
        );
        let f = options(&["--fec", "8,1"]).unwrap().engine.fec.unwrap();
        assert!(!f.is_on_demand());
        for bad in ["12,1", "256", "8,9", "x", "8,y", "1"] {
            let e = options(&["--fec", bad]).unwrap_err().to_string();
            assert!(e.contains("--fec"), "{bad}: {e}");
        }
        assert!(options(&["--fec-ondemand"]).is_err(), "needs --fec");
    }

    #[test]
    fn congestion_flag() {
        assert_eq!(options(&[]).unwrap().engine.congestion, Congestion::None);
        let o = options(&["--congestion", "pgmcc"]).unwrap();
        assert_eq!(
            o.engine.congestion,
            Congestion::Pgmcc(PgmccConfig::default())
        );
        assert!(options(&["--congestion", "tcp"]).is_err());
    }

    #[test]
    fn source_flags() {
        assert!(options(&[]).unwrap().multicast.sources.is_empty());
        let o = options(&["--source", "10.0.0.1", "--source", "10.0.0.2"]).unwrap();
        assert_eq!(
            o.multicast.sources,
            [
                "10.0.0.1".parse::<std::net::IpAddr>().unwrap(),
                "10.0.0.2".parse().unwrap()
            ]
        );
        let e = options(&["--source", "host.example"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--source"), "{e}");
    }

    #[test]
    fn engine_settings_reach_the_socket_options() {
        let d = options(&[]).unwrap();
        assert_eq!(d.engine.nak, NakProfile::Lan);
        assert_eq!(d.engine.join, JoinPolicy::FirstSeen);
        assert_eq!(d.engine.peer_expiry, Duration::from_mins(5));

        let o = options(&[
            "--join",
            "advertised-trail",
            "--peer-expiry",
            "30",
            "--nak-profile",
            "openpgm",
            "--nak-bo-ivl",
            "10",
            "--nak-rdata-ivl",
            "0.5ms",
            "--repair-rate",
            "8M",
        ])
        .unwrap();
        assert_eq!(o.engine.join, JoinPolicy::AdvertisedTrail);
        assert_eq!(o.engine.peer_expiry, Duration::from_secs(30));
        assert_eq!(o.engine.repair.rate, Some(1_000_000));
        let NakProfile::Custom(t) = o.engine.nak else {
            panic!("{:?}", o.engine.nak);
        };
        assert_eq!(t.bo_ivl, Duration::from_millis(10));
        assert_eq!(t.rdata_ivl, Duration::from_micros(500));
        assert_eq!(t.rpt_ivl, NakTiming::OPENPGM.rpt_ivl);
        assert_eq!(t.max_ivl, NakTiming::OPENPGM.max_ivl);

        for bad in [
            &["--nak-bo-ivl", "0"][..],
            &["--nak-rpt-ivl", "fast"],
            &["--nak-max-ivl", "120000"],
            &["--join", "whenever"],
            &["--peer-expiry", "-1"],
        ] {
            assert!(options(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn history_flags() {
        assert!(options(&[]).unwrap().engine.history.is_none());
        let h = options(&["--history", "5s"])
            .unwrap()
            .engine
            .history
            .unwrap();
        assert_eq!((h.age, h.bytes), (Some(Duration::from_secs(5)), None));
        let h = options(&["--history", "16MiB", "--history", "500ms"])
            .unwrap()
            .engine
            .history
            .unwrap();
        assert_eq!(
            (h.age, h.bytes),
            (Some(Duration::from_millis(500)), Some(16 << 20))
        );
        assert_eq!(
            parse_history("2m"),
            Ok(HistoryBound::Age(Duration::from_mins(2)))
        );
        for bad in ["5", "5 parsecs", "0s", "25h", "s", "-1s"] {
            let e = parse_history(bad).unwrap_err();
            assert!(e.contains("--history"), "{bad}: {e}");
        }
    }

    #[test]
    fn windows() {
        assert_eq!(parse_window("10000"), Ok(Window::Sqns(10_000)));
        assert_eq!(parse_window("16MiB"), Ok(Window::Bytes(16 << 20)));
        assert_eq!(parse_window("32MB"), Ok(Window::Bytes(32_000_000)));
        assert_eq!(parse_window("64KiB"), Ok(Window::Bytes(65_536)));
        assert_eq!(parse_window("1500B"), Ok(Window::Bytes(1500)));
        assert!(parse_window("0").is_err());
        assert!(parse_window("16 parsecs").is_err());
        assert!(parse_window("MiB").is_err());
    }
}
