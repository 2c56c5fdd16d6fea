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
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NakTiming {
    /// NAK_BO_IVL: the random back-off before a NAK is drawn from `[0, NAK_BO_IVL]`.
    pub bo_ivl: Duration,
    /// Bias λ of the back-off draw towards the end of NAK_BO_IVL (0 = uniform); see
    /// `Receiver` docs. Suppresses duplicate NAKs when many receivers lose the same packet.
    pub bo_bias: f64,
    /// NAK_RPT_IVL: how long to wait for an NCF after sending a NAK.
    pub rpt_ivl: Duration,
    /// NAK_RDATA_IVL: how long to wait for RDATA after an NCF.
    pub rdata_ivl: Duration,
    /// NAK_NCF_RETRIES: NAKs sent without an NCF before the sqn is declared lost.
    pub ncf_retries: u32,
    /// NAK_DATA_RETRIES: NCF'd NAK rounds without data before the sqn is declared lost.
    pub data_retries: u32,
}

impl NakTiming {
    /// Repairs in milliseconds on a LAN: 2 ms back-off, 4 ms repeat and RDATA intervals.
    ///
    /// On a LAN the round trip is well under a millisecond, so what bounds repair latency is
    /// how long a receiver waits before giving up on a lost NAK or RDATA and asking again.
    pub const LAN: NakTiming = NakTiming {
        bo_ivl: Duration::from_millis(2),
        bo_bias: 4.0,
        rpt_ivl: Duration::from_millis(4),
        rdata_ivl: Duration::from_millis(4),
        ncf_retries: 50,
        data_retries: 50,
    };

    /// OpenPGM as libzmq configures it (interop-notes §3): 50/200/200 ms, 50 retries.
    pub const OPENPGM: NakTiming = NakTiming {
        bo_ivl: Duration::from_millis(50),
        bo_bias: 0.0,
        rpt_ivl: Duration::from_millis(200),
        rdata_ivl: Duration::from_millis(200),
        ncf_retries: 50,
        data_retries: 50,
    };
}

/// Where a receiver starts a newly seen session (RFC 3208 §9.4; interop-notes §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinPolicy {
    /// At the first sqn seen, like OpenPGM: nothing older is requested.
    FirstSeen,
    /// At the trail advertised by the first SPM (or the first data's trail): the receiver
    /// requests everything the source still holds.
    AdvertisedTrail,
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
    /// Our unicast NLA, advertised in SPMs; NAKs must name it (interop-notes §1.5).
    pub nla: IpAddr,
    /// Packet sizes.
    pub mtu: Mtu,
    /// Largest APDU `send` accepts (≤ 65535, OpenPGM's `PGM_MAX_APDU`).
    pub max_apdu: usize,
    /// TXW_SQNS: most packets kept for repair.
    pub txw_sqns: u32,
    /// Most payload bytes kept for repair.
    pub txw_max_bytes: usize,
    /// Total rate in bytes/s over ODATA, RDATA, NCF and SPM, IP headers included; `None` for
    /// unpaced.
    pub rate: Option<u64>,
    /// Cap on RDATA+NCF bytes/s within `rate`, so repairs cannot starve ODATA; `None` for no cap.
    pub rdata_rate: Option<u64>,
    /// Bucket depth: how far above the rate a burst may go, in bytes.
    pub rate_burst: usize,
    /// Bytes `send` may queue ahead of the rate before it reports `WouldBlock`.
    pub send_buffer: usize,
    /// Ambient SPM interval (RFC 3208 §6.1).
    pub spm_ambient: Duration,
    /// Heartbeat SPM intervals after data (interop-notes §3: each fires after the previous).
    pub spm_heartbeat: Vec<Duration>,
    /// Least time between two SPMs sent in answer to SPMRs.
    pub spmr_min_ivl: Duration,
    /// A sqn is repaired at most once per this interval, however many NAKs ask for it.
    pub nak_elimination_ivl: Duration,
    /// Seed of the engine's random generator (none is needed by the source today; kept so that
    /// every engine is reproducible from its config).
    pub rng_seed: u64,
}

impl SourceConfig {
    /// Defaults for a LAN: unpaced, 64 Ki-sqn / 32 MiB window, millisecond heartbeats.
    pub fn new(tsi: Tsi, dport: u16, group: IpAddr, nla: IpAddr) -> Self {
        SourceConfig {
            tsi,
            dport,
            group,
            nla,
            mtu: Mtu::UDP_1500,
            max_apdu: MAX_APDU as usize,
            txw_sqns: 64 * 1024,
            txw_max_bytes: 32 << 20,
            rate: None,
            rdata_rate: None,
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
        }
    }

    /// Heartbeat and ambient SPMs as OpenPGM/libzmq send them (interop-notes §3).
    #[must_use]
    pub fn with_openpgm_spm(mut self) -> Self {
        self.spm_ambient = Duration::from_secs(30);
        self.spm_heartbeat = [100, 100, 100, 100, 1300, 7000, 16000, 25000, 30000]
            .iter()
            .map(|&ms| Duration::from_millis(ms))
            .collect();
        self
    }
}

/// Configuration of a [`crate::Receiver`].
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// Data-destination port of the sessions to accept.
    pub dport: u16,
    /// NAK timing.
    pub nak: NakTiming,
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
    /// Most peers (TSIs) tracked at once.
    pub max_peers: usize,
    /// Largest APDU reassembled.
    pub max_apdu: usize,
    /// Where a new peer's window starts.
    pub join: JoinPolicy,
    /// Seed of the NAK back-off generator.
    pub rng_seed: u64,
}

impl ReceiverConfig {
    /// Defaults for a LAN ([`NakTiming::LAN`]).
    pub fn new(dport: u16) -> Self {
        ReceiverConfig {
            dport,
            nak: NakTiming::LAN,
            spmr_expiry: Duration::from_millis(5),
            peer_expiry: Duration::from_mins(5),
            fin_linger: Duration::from_secs(2),
            rxw_sqns: 64 * 1024,
            rxw_max_bytes: 32 << 20,
            max_peers: 1024,
            max_apdu: MAX_APDU as usize,
            join: JoinPolicy::FirstSeen,
            rng_seed: 0,
        }
    }
}
