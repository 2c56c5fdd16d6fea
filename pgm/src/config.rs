//! Engine configuration: every interval, size and limit is a value here, nothing is hard-coded.

use std::{net::IpAddr, time::Duration};

use crate::wire::{options::MAX_APDU, Tsi};

/// Bytes of PGM header + data body (RFC 3208 §8.2): 16 + 8.
const DATA_HEADER: usize = 24;
/// Data header plus OPT_LENGTH (4) and OPT_FRAGMENT (16), as OpenPGM sizes fragments.
const FRAGMENT_HEADER: usize = 44;

/// Sizes of the packets on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mtu {
    /// Largest IP datagram (OpenPGM's `PGM_MTU` / max TPDU), IP header included.
    pub mtu: usize,
    /// Bytes in front of the PGM packet: 20 for raw IPv4, 28 for UDP over IPv4, 40/48 for IPv6.
    pub ip_overhead: usize,
}

impl Mtu {
    /// Raw PGM over IPv4 with a 1500-byte MTU.
    pub const RAW_1500: Mtu = Mtu {
        mtu: 1500,
        ip_overhead: 20,
    };
    /// EPGM (UDP) over IPv4 with a 1500-byte MTU.
    pub const UDP_1500: Mtu = Mtu {
        mtu: 1500,
        ip_overhead: 28,
    };

    /// Largest TSDU of an unfragmented ODATA (OpenPGM `max_tsdu`: 1456 raw, 1448 UDP).
    pub fn max_tsdu(self) -> usize {
        self.mtu.saturating_sub(self.ip_overhead + DATA_HEADER)
    }

    /// Largest TSDU of one fragment (OpenPGM `max_tsdu_fragment`: 1436 raw, 1428 UDP).
    pub fn max_fragment_tsdu(self) -> usize {
        self.mtu.saturating_sub(self.ip_overhead + FRAGMENT_HEADER)
    }
}

/// The NAK timing of a receiver (RFC 3208 §6.3).
///
/// Repeats do not count out: a sqn is asked for again, with the waits doubling from the second
/// repeat up to [`NakTiming::max_ivl`], for as long as the source still advertises it. It is
/// declared lost only when the source's trail passes it, the session ends, or it has been in
/// recovery for [`NakTiming::max_recovery`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NakTiming {
    /// NAK_BO_IVL: the random back-off before a NAK is drawn from `[0, NAK_BO_IVL]`.
    pub bo_ivl: Duration,
    /// Bias λ of the back-off draw towards the end of NAK_BO_IVL (0 = uniform); see
    /// `Receiver` docs. Suppresses duplicate NAKs when many receivers lose the same packet.
    pub bo_bias: f64,
    /// NAK_RPT_IVL: how long to wait for an NCF after the first NAK.
    pub rpt_ivl: Duration,
    /// NAK_RDATA_IVL: how long to wait for RDATA after the first NCF.
    pub rdata_ivl: Duration,
    /// The longest either wait grows to as repeats back off (the `n`-th NAK for a sqn waits
    /// the base interval × 2^(n−2), from the third NAK on).
    pub max_ivl: Duration,
    /// The application's deadline: a sqn still missing this long after its loss was detected
    /// is declared lost, however often NCFs restarted its timers (bounds how long one missing
    /// sqn can hold back the data behind it).
    pub max_recovery: Duration,
}

impl NakTiming {
    /// Repairs in milliseconds on a LAN: 2.5 ms back-off, 4 ms repeat and RDATA intervals.
    ///
    /// On a LAN the round trip is well under a millisecond, so what bounds repair latency is
    /// how long a receiver waits before giving up on a lost NAK or RDATA and asking again.
    /// The back-off is long and biased late enough (λ = 5) that with a thousand receivers
    /// losing the same packet, the first NAK's NCF silences nearly all the others
    /// (`pgm/tests/sim_scale.rs`: about 1.2 NAKed sqns per lost sqn).
    pub const LAN: NakTiming = NakTiming {
        bo_ivl: Duration::from_micros(2500),
        bo_bias: 5.0,
        rpt_ivl: Duration::from_millis(4),
        rdata_ivl: Duration::from_millis(4),
        max_ivl: Duration::from_millis(250),
        max_recovery: Duration::from_secs(30),
    };

    /// OpenPGM as libzmq configures it (docs/wire-compatibility.md): 50/200/200 ms.
    pub const OPENPGM: NakTiming = NakTiming {
        bo_ivl: Duration::from_millis(50),
        bo_bias: 0.0,
        rpt_ivl: Duration::from_millis(200),
        rdata_ivl: Duration::from_millis(200),
        max_ivl: Duration::from_secs(2),
        max_recovery: Duration::from_mins(1),
    };

    /// The wait after the `round`-th NAK for a sqn (1 = the first): `base` for the first two,
    /// then doubling, never more than [`NakTiming::max_ivl`] (nor less than `base`).
    pub fn repeat_ivl(&self, base: Duration, round: u32) -> Duration {
        let doublings = round.saturating_sub(2).min(16);
        base.saturating_mul(1 << doublings)
            .min(self.max_ivl.max(base))
    }
}

/// Where a receiver starts a newly seen session (RFC 3208 §9.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinPolicy {
    /// At the first sqn seen, like OpenPGM: nothing older is requested.
    FirstSeen,
    /// At the trail advertised by the first SPM (or the first data's trail): the receiver
    /// requests everything the source still holds.
    AdvertisedTrail,
}

/// The history a source keeps for late joiners (docs/late-join.md): its transmit window,
/// bounded by age and/or bytes, and offered with OPT_JOIN (RFC 3208 §9.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct History {
    /// Keep what was sent within this long (TXW_SECS).
    pub age: Option<Duration>,
    /// Keep at most this many payload bytes (the window's byte bound).
    pub bytes: Option<usize>,
}

/// The repair budget of a source: what NAKs can make it send.
///
/// NAKs are cheap to forge (anyone who sees one multicast packet can), so what they buy is
/// bounded: NCF+RDATA bytes per second ([`RepairBudget::rate`]); the share of the wire repairs
/// may take while new data waits ([`RepairBudget::share`], so a NAK storm never takes ODATA
/// below `1 − share` of what the source sends); and sqns per NAK and per NAKer and second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RepairBudget {
    /// While ODATA waits, repairs get at most this share of the bytes that go out; and when
    /// the source is rate-limited (and [`RepairBudget::rate`] is `None`) this share of the
    /// rate. Clamped to `[0.01, 0.9]`.
    pub share: f64,
    /// Cap on NCF+RDATA bytes/s, IP headers included. `None`: `share` × the rate limit; when
    /// the source is not rate-limited, `share` × the highest rate its ODATA reached lately
    /// (over 100 ms, within the last second), but at least [`RepairBudget::UNPACED_RATE`].
    pub rate: Option<u64>,
    /// Most sqns one NAK packet gets repaired (its header sqn and OPT_NAK_LIST: up to 63).
    pub per_nak: u32,
    /// Sqns per second one NAKer (by the NAK's IP source) gets repaired, in bursts of up to
    /// [`RepairBudget::per_naker_burst`].
    pub per_naker_rate: u32,
    /// Burst of [`RepairBudget::per_naker_rate`], in sqns; also the most sqns one NAKer may
    /// have waiting for RDATA.
    pub per_naker_burst: u32,
}

impl RepairBudget {
    /// The least repair cap of a source without a rate limit: 100 Mbit/s. A fixed cap this
    /// low left an unpaced source sending 2 Gbit/s unable to repair a receiver that had
    /// lost a few percent: the window moved past the losses first.
    pub const UNPACED_RATE: u64 = 12_500_000;

    /// [`RepairBudget::share`] within its bounds.
    pub fn clamped_share(&self) -> f64 {
        self.share.clamp(0.01, 0.9)
    }

    /// The repair cap in bytes/s of a source paced at `rate` bytes/s (`None`: unpaced).
    #[expect(
        clippy::cast_sign_loss,
        reason = "rate and share are positive; the product saturates at u64::MAX"
    )]
    pub fn cap(&self, rate: Option<u64>) -> u64 {
        let share = self.clamped_share();
        self.rate
            .unwrap_or_else(|| rate.map_or(Self::UNPACED_RATE, |r| (r as f64 * share) as u64))
            .max(1)
    }

    /// The repair cap in bytes/s of an unpaced source whose ODATA lately went at
    /// `odata_rate` bytes/s (`None` when [`RepairBudget::rate`] fixes it).
    #[expect(
        clippy::cast_sign_loss,
        reason = "rate and share are positive; the product saturates at u64::MAX"
    )]
    pub fn unpaced_cap(&self, odata_rate: u64) -> Option<u64> {
        let share = self.clamped_share();
        self.rate
            .is_none()
            .then(|| ((odata_rate as f64 * share) as u64).max(Self::UNPACED_RATE))
    }
}

impl Default for RepairBudget {
    fn default() -> Self {
        RepairBudget {
            share: 0.4,
            rate: None,
            per_nak: 63,
            per_naker_rate: 20_000,
            per_naker_burst: 4096,
        }
    }
}

/// Bounds on what the network can make a [`crate::Receiver`] hold and send, whatever it sends
/// (docs/reliability.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverLimits {
    /// Most sessions (TSIs) tracked at once. A new one evicts the least useful: a session
    /// still on probation (oldest first), else the one heard from least recently.
    pub max_peers: usize,
    /// Memory budget over all sessions: payload bytes held plus [`SLOT_COST`] per tracked sqn.
    /// Over it, sessions on probation are dropped first, then the sessions heard from least
    /// recently give up their oldest data.
    pub max_total_bytes: usize,
    /// A new session's window spans at most this many sqns (so it NAKs only within them) until
    /// it is confirmed: two sqns delivered in order, or data and an SPM that agree.
    pub probation_sqns: u32,
    /// NAK packets each packet heard from a session pays for: a session is never sent more
    /// NAKs than this many per packet it sent.
    pub nak_credit_per_packet: u32,
    /// The most NAK credit a session accumulates.
    pub nak_credit_max: u32,
    /// NAK packets per second over all sessions.
    pub nak_rate: u32,
    /// Burst of [`ReceiverLimits::nak_rate`], in packets.
    pub nak_burst: u32,
    /// Most packets (NAKs, SPMRs) waiting for `poll_transmit`.
    pub out_queue: usize,
}

/// Bytes a tracked sqn costs besides its payload (slot and timer entry), counted against
/// [`ReceiverLimits::max_total_bytes`].
pub const SLOT_COST: usize = 64;

impl Default for ReceiverLimits {
    fn default() -> Self {
        ReceiverLimits {
            max_peers: 1024,
            max_total_bytes: 256 << 20,
            probation_sqns: 1024,
            nak_credit_per_packet: 4,
            nak_credit_max: 4096,
            nak_rate: 20_000,
            nak_burst: 2048,
            out_queue: 4096,
        }
    }
}

/// Configuration of a [`crate::Source`].
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Our TSI: GSI and data-source port.
    pub tsi: Tsi,
    /// Data-destination port.
    pub dport: u16,
    /// Multicast group the session is sent to.
    pub group: IpAddr,
    /// A/B sessions (docs/dual-path.md): the group of the second path, to which the driver
    /// sends a copy of everything sent to `group`. NAKs naming it count as well: a receiver
    /// echoes the group the last SPM came on.
    pub second_group: Option<IpAddr>,
    /// Our unicast NLA, advertised in SPMs; NAKs must name it (docs/wire-compatibility.md §4).
    pub nla: IpAddr,
    /// Packet sizes.
    pub mtu: Mtu,
    /// Largest APDU `send` accepts (≤ 65535, OpenPGM's `PGM_MAX_APDU`).
    pub max_apdu: usize,
    /// TXW_SQNS: most packets kept for repair.
    pub txw_sqns: u32,
    /// Most payload bytes kept for repair.
    pub txw_max_bytes: usize,
    /// TXW_SECS (RFC 3208 Appendix F): packets sent longer ago than this leave the window
    /// (besides the sqn and byte bounds); `None`: no time bound.
    pub txw_secs: Option<Duration>,
    /// Offer the window to late joiners as history: every SPM carries OPT_JOIN (RFC 3208
    /// §9.4) with TXW_TRAIL as its minimum sqn (docs/late-join.md).
    pub offer_join: bool,
    /// Total rate in bytes/s over ODATA, RDATA, NCF and SPM, IP headers included; `None` for
    /// unpaced.
    pub rate: Option<u64>,
    /// How much of the wire repairs (NCF + RDATA) may take, and per-NAK bounds.
    pub repair: RepairBudget,
    /// Bucket depth: how far above the rate a burst may go, in bytes. The rate bucket holds
    /// at least 2 ms of `rate` whatever this says, so a driver woken late keeps the rate.
    pub rate_burst: usize,
    /// Bytes `send` may queue ahead of the rate before it reports `WouldBlock`.
    pub send_buffer: usize,
    /// Ambient SPM interval (RFC 3208 §6.1).
    pub spm_ambient: Duration,
    /// Heartbeat SPM intervals after data (docs/wire-compatibility.md §9: each fires after the previous).
    pub spm_heartbeat: Vec<Duration>,
    /// Least time between two SPMs sent in answer to SPMRs.
    pub spmr_min_ivl: Duration,
    /// A sqn is repaired at most once per this interval, however many NAKs ask for it.
    pub nak_elimination_ivl: Duration,
    /// Seed of the engine's random generator (none is needed by the source today; kept so that
    /// every engine is reproducible from its config).
    pub rng_seed: u64,
    /// Forward error correction (RFC 3208 §11, docs/fec.md): `None`, the default, sends no
    /// parity and no OPT_PARITY_PRM.
    pub fec: Option<FecConfig>,
    /// Congestion control (docs/congestion.md): [`Congestion::None`], the default, sends at
    /// the configured rate; with PGMCC the rate stays a cap.
    pub congestion: Congestion,
}

/// Congestion control of a session (docs/congestion.md).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Congestion {
    /// None: the source sends as fast as its rate limit lets it; receivers send no ACKs.
    #[default]
    None,
    /// PGMCC (draft-ietf-rmt-bb-pgmcc-03): a TCP-like window clocked by ACKs from the
    /// receiver with the lowest TCP-equivalent throughput, the ACKer.
    Pgmcc(PgmccConfig),
}

impl Congestion {
    /// The PGMCC settings, when PGMCC is on.
    pub fn pgmcc(&self) -> Option<&PgmccConfig> {
        match self {
            Congestion::None => None,
            Congestion::Pgmcc(c) => Some(c),
        }
    }
}

/// PGMCC settings, source and receiver side (PGMCC draft §2.2, §2.3, §2.6, §2.7).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PgmccConfig {
    /// Source: window and tokens, in packets, at start and after a timeout (like TCP's IW:
    /// data goes out at once, before any ACKer is elected).
    pub initial_window: u32,
    /// Source: SSTHRESH, fixed as the draft recommends (§2.2: 4 packets).
    pub ssthresh: u32,
    /// Source: the largest window, in packets: ACKs (forged ones too) never open it further.
    pub max_window: u32,
    /// Source: the ACK timeout before any RTT sample (§2.7).
    pub initial_timeout: Duration,
    /// Source: bounds of the ACK timeout, SRTT + 4·RTTVAR of the ACKer.
    pub min_timeout: Duration,
    /// Source: see [`PgmccConfig::min_timeout`].
    pub max_timeout: Duration,
    /// Source: new data goes at most at one window per max(ACKer's SRTT, this floor) (where
    /// the SRTT is longer, the ACKs clock it and the pacer runs at twice their pace). An ACKer
    /// on a sub-millisecond path then opens the window by one packet per floor, as a TCP flow
    /// with this round trip would, and a receiver behind a bottleneck that ACKer cannot see
    /// loses little before its loss report takes over (docs/congestion.md, "the first
    /// ACKer"). Zero: no floor (pacing at the SRTT only).
    pub pace_floor: Duration,
    /// Source: successive timeouts after which the ACKer is dropped and a new one elected
    /// (§2.7 recommends 2).
    pub retry_max: u32,
    /// Source: C of §2.3: a receiver replaces the ACKer when its throughput is below C times
    /// the ACKer's (hysteresis against flapping; 0.75).
    pub switch_factor: f64,
    /// Receiver: weight of a new sample in the loss-rate filter, in 1/65536 (§2.6: 500).
    pub loss_weight: u16,
    /// Receiver: while the source elects an ACKer, a receiver reports after a random wait in
    /// `[0, election_bo_ivl]` (§2.3.1), at most once per interval.
    pub election_bo_ivl: Duration,
    /// Receiver: ACKs per second one session may make it send (a forged session naming it
    /// ACKer gets no more), in bursts of [`PgmccConfig::ack_burst`].
    pub ack_rate: u32,
    /// Receiver: see [`PgmccConfig::ack_rate`].
    pub ack_burst: u32,
}

impl Default for PgmccConfig {
    fn default() -> Self {
        PgmccConfig {
            initial_window: 4,
            ssthresh: 4,
            max_window: 1024,
            initial_timeout: Duration::from_millis(100),
            min_timeout: Duration::from_millis(20),
            max_timeout: Duration::from_secs(1),
            pace_floor: Duration::from_millis(15),
            retry_max: 2,
            switch_factor: 0.75,
            loss_weight: 500,
            election_bo_ivl: Duration::from_millis(2),
            ack_rate: 100_000,
            ack_burst: 1024,
        }
    }
}

/// FEC at the source (RFC 3208 §11, docs/fec.md): transmission groups of `group_size` ODATA;
/// after each full group `proactive` Reed-Solomon parity packets (any `proactive` of the
/// group's packets lost at a receiver are rebuilt without a NAK), and with `on_demand` fresh
/// parity in answer to parity NAKs (one parity packet repairs different losses at different
/// receivers). Ours-only: OpenPGM receivers abort or stall on parity (docs/fec.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FecConfig {
    group_size: u8,
    proactive: u8,
    on_demand: bool,
}

impl FecConfig {
    /// k = `group_size`, a power of two in 2..=128, and 1..=k parity packets per group.
    pub fn proactive(group_size: u8, proactive: u8) -> Result<Self, String> {
        check_group_size(group_size)?;
        if !(1..=group_size).contains(&proactive) {
            return Err(format!(
                "{proactive} pro-active parity packets per group: must be 1..={group_size}"
            ));
        }
        Ok(FecConfig {
            group_size,
            proactive,
            on_demand: false,
        })
    }

    /// k = `group_size` (a power of two in 2..=128), parity on demand only.
    pub fn on_demand(group_size: u8) -> Result<Self, String> {
        check_group_size(group_size)?;
        Ok(FecConfig {
            group_size,
            proactive: 0,
            on_demand: true,
        })
    }

    /// This configuration, also answering parity NAKs.
    #[must_use]
    pub fn with_on_demand(mut self) -> Self {
        self.on_demand = true;
        self
    }

    /// k, data packets per transmission group.
    pub fn group_size(&self) -> u8 {
        self.group_size
    }

    /// Parity packets sent after each full group.
    pub fn proactive_count(&self) -> u8 {
        self.proactive
    }

    /// Parity NAKs are answered with fresh parity.
    pub fn is_on_demand(&self) -> bool {
        self.on_demand
    }
}

fn check_group_size(group_size: u8) -> Result<(), String> {
    if !(2..=128).contains(&group_size) || !group_size.is_power_of_two() {
        return Err(format!(
            "FEC group size {group_size} is not a power of two in 2..=128"
        ));
    }
    Ok(())
}

impl SourceConfig {
    /// Defaults for a LAN: unpaced, 64 Ki-sqn / 32 MiB window, millisecond heartbeats.
    pub fn new(tsi: Tsi, dport: u16, group: IpAddr, nla: IpAddr) -> Self {
        SourceConfig {
            tsi,
            dport,
            group,
            second_group: None,
            nla,
            mtu: Mtu::UDP_1500,
            max_apdu: MAX_APDU as usize,
            txw_sqns: 64 * 1024,
            txw_max_bytes: 32 << 20,
            txw_secs: None,
            offer_join: false,
            rate: None,
            repair: RepairBudget::default(),
            rate_burst: 64 * 1024,
            send_buffer: 256 * 1024,
            spm_ambient: Duration::from_secs(1),
            spm_heartbeat: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
                .iter()
                .map(|&ms| Duration::from_millis(ms))
                .collect(),
            spmr_min_ivl: Duration::from_millis(1),
            nak_elimination_ivl: Duration::from_millis(1),
            rng_seed: 0,
            fec: None,
            congestion: Congestion::None,
        }
    }

    /// Bytes OPT_PGMCC_DATA adds to a data packet with PGMCC on (OPT_LENGTH included when it
    /// is the only option): 20 over IPv4, 32 over IPv6, as OpenPGM reserves.
    fn congestion_overhead(&self, fragment: bool) -> usize {
        if self.congestion.pgmcc().is_none() {
            return 0;
        }
        let option = if self.nla.is_ipv4() { 16 } else { 28 };
        if fragment {
            option
        } else {
            option + 4
        }
    }

    /// Heartbeat and ambient SPMs as OpenPGM/libzmq send them (docs/wire-compatibility.md §9).
    #[must_use]
    pub fn with_openpgm_spm(mut self) -> Self {
        self.spm_ambient = Duration::from_secs(30);
        self.spm_heartbeat = [100, 100, 100, 100, 1300, 7000, 16000, 25000, 30000]
            .iter()
            .map(|&ms| Duration::from_millis(ms))
            .collect();
        self
    }

    /// Largest TSDU of an unfragmented ODATA: [`Mtu::max_tsdu`] less room for the congestion
    /// option; with FEC the fragment size ([`SourceConfig::max_fragment_tsdu`]), so that every
    /// parity packet fits the MTU (it may carry an encoded OPT_FRAGMENT and OPT_VAR_PKTLEN's
    /// 2-byte trailer whatever its group holds).
    pub fn max_tsdu(&self) -> usize {
        if self.fec.is_some() {
            self.max_fragment_tsdu()
        } else {
            self.mtu
                .max_tsdu()
                .saturating_sub(self.congestion_overhead(false))
        }
    }

    /// Largest TSDU of one fragment: [`Mtu::max_fragment_tsdu`] less room for the congestion
    /// option, and less the length trailer with FEC (see [`SourceConfig::max_tsdu`]).
    pub fn max_fragment_tsdu(&self) -> usize {
        let trailer = if self.fec.is_some() {
            crate::fec::TRAILER_LEN
        } else {
            0
        };
        self.mtu
            .max_fragment_tsdu()
            .saturating_sub(self.congestion_overhead(true) + trailer)
    }
}

/// Configuration of a [`crate::Receiver`].
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// Data-destination port of the sessions to accept.
    pub dport: u16,
    /// NAK timing.
    pub nak: NakTiming,
    /// A/B sessions (docs/dual-path.md): how much later the second path can deliver a packet
    /// than the first. A gap waits this long before its NAK back-off starts, so that the
    /// other path's copy can fill it first; 0 (the default) for one path.
    pub path_skew: Duration,
    /// How long after data from an unknown source to ask for an SPM (SPMR; libzmq: 25 ms).
    pub spmr_expiry: Duration,
    /// A peer silent this long is forgotten (OpenPGM: 300 s).
    pub peer_expiry: Duration,
    /// How long a session that sent OPT_FIN is kept to finish its repairs.
    pub fin_linger: Duration,
    /// RXW_SQNS: most sqns tracked per peer (bounds memory whatever the network sends).
    pub rxw_sqns: u32,
    /// Most payload bytes buffered per peer.
    pub rxw_max_bytes: usize,
    /// Bounds on sessions, memory and NAKs.
    pub limits: ReceiverLimits,
    /// Largest APDU reassembled.
    pub max_apdu: usize,
    /// Where a new peer's window starts.
    pub join: JoinPolicy,
    /// Seed of the NAK back-off generator.
    pub rng_seed: u64,
    /// Decode pro-active FEC parity (docs/fec.md): off, the default, counts parity and drops it.
    pub fec: bool,
    /// Congestion control: with PGMCC the receiver reports its loss rate in NAKs and ACKs
    /// the data that names it ACKer (docs/congestion.md). Off by default.
    pub congestion: Congestion,
    /// Our unicast NLA: how a PGMCC receiver recognises itself as the ACKer named in data,
    /// and what it reports in OPT_PGMCC_FEEDBACK. Without it a receiver takes no part in
    /// PGMCC.
    pub nla: Option<IpAddr>,
}

impl ReceiverConfig {
    /// Defaults for a LAN ([`NakTiming::LAN`]).
    pub fn new(dport: u16) -> Self {
        ReceiverConfig {
            dport,
            nak: NakTiming::LAN,
            path_skew: Duration::ZERO,
            spmr_expiry: Duration::from_millis(5),
            peer_expiry: Duration::from_mins(5),
            fin_linger: Duration::from_secs(2),
            rxw_sqns: 64 * 1024,
            rxw_max_bytes: 32 << 20,
            limits: ReceiverLimits::default(),
            max_apdu: MAX_APDU as usize,
            join: JoinPolicy::FirstSeen,
            rng_seed: 0,
            fec: false,
            congestion: Congestion::None,
            nla: None,
        }
    }
}
