//! What a scrape shows: the socket's counters, read through its monitor at scrape time, and the
//! tool's own counts, as Prometheus metric families.
//!
//! Every metric is one row of a table here (name, help, how to read it), so the list in
//! docs/metrics.md can be checked against the code (see the tests). Names are given without
//! the `pgm_` prefix, which the registry adds, and without `_total`, which the encoder adds to
//! counters.

use std::{
    fmt,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Mutex, PoisonError,
    },
};

use pgm::{
    socket::{IoStats, PeerReport, RecvMonitor, RecvStats, SendMonitor, SendStats},
    PeerState,
};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder},
    metrics::{counter::ConstCounter, gauge::ConstGauge, MetricType},
};

/// A counter or gauge read from a snapshot of type `S`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row<S> {
    /// The name after `pgm_`, without `_total`.
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) kind: Kind,
    pub(crate) read: fn(&S) -> f64,
}

/// Whether a row only grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
}

const fn counter<S>(name: &'static str, help: &'static str, read: fn(&S) -> f64) -> Row<S> {
    Row {
        name,
        help,
        kind: Kind::Counter,
        read,
    }
}

const fn gauge<S>(name: &'static str, help: &'static str, read: fn(&S) -> f64) -> Row<S> {
    Row {
        name,
        help,
        kind: Kind::Gauge,
        read,
    }
}

/// The IO layer, both roles.
pub(crate) const IO: &[Row<IoStats>] = &[
    counter("io_packets_sent", "Packets handed to the transport.", |s| {
        s.packets_sent as f64
    }),
    counter(
        "io_bytes_sent",
        "PGM bytes of the packets sent (no IP/UDP headers).",
        |s| s.bytes_sent as f64,
    ),
    counter(
        "io_send_errors",
        "Sends that failed (the packet was dropped).",
        |s| s.send_errors as f64,
    ),
    counter(
        "io_send_would_block",
        "Sends that found the socket buffer full (retried).",
        |s| s.send_would_block as f64,
    ),
    counter(
        "io_packets_received",
        "Packets received and handed to the engine.",
        |s| s.packets_received as f64,
    ),
    counter(
        "io_bytes_received",
        "PGM bytes of the packets received.",
        |s| s.bytes_received as f64,
    ),
    counter("io_recv_errors", "Receive calls that failed.", |s| {
        s.recv_errors as f64
    }),
    counter("io_loop_turns", "Turns of the socket's event loop.", |s| {
        s.loop_turns as f64
    }),
    counter(
        "transport_filtered",
        "Packets the transport dropped: addressed to another group or port.",
        |s| s.transport.filtered as f64,
    ),
    counter(
        "transport_truncated",
        "Packets the transport dropped: larger than the receive buffer.",
        |s| s.transport.truncated as f64,
    ),
    counter(
        "transport_malformed",
        "Packets the transport dropped: unreadable IP header or ancillary data.",
        |s| s.transport.malformed as f64,
    ),
    counter(
        "transport_simulated_loss",
        "Packets dropped on purpose (--simulated-loss).",
        |s| s.transport.simulated_loss as f64,
    ),
    counter(
        "transport_source_filtered",
        "Packets the transport dropped: from a source outside the --source joins.",
        |s| s.transport.source_filtered as f64,
    ),
    counter(
        "transport_second_path_received",
        "Packets received on the second path (--second-path); the rest came on the first.",
        |s| s.transport.second_path_received as f64,
    ),
    counter(
        "transport_second_path_sent",
        "Copies sent on the second path (--second-path).",
        |s| s.transport.second_path_sent as f64,
    ),
    counter(
        "transport_second_path_dropped",
        "Copies the second path did not take (its backlog overflowed, or the send failed).",
        |s| s.transport.second_path_dropped as f64,
    ),
];

/// A sender.
pub(crate) const SOURCE: &[Row<SendStats>] = &[
    counter(
        "source_apdus",
        "Messages (APDUs) the engine accepted.",
        |s| s.engine.apdus_sent as f64,
    ),
    counter("source_odata_packets", "ODATA packets sent.", |s| {
        s.engine.odata_sent as f64
    }),
    counter("source_odata_bytes", "ODATA payload bytes sent.", |s| {
        s.engine.odata_bytes as f64
    }),
    counter(
        "source_rdata_packets",
        "RDATA (repair) packets sent.",
        |s| s.engine.rdata_sent as f64,
    ),
    counter("source_rdata_bytes", "RDATA payload bytes sent.", |s| {
        s.engine.rdata_bytes as f64
    }),
    counter("source_ncf_sent", "NCF packets sent.", |s| {
        s.engine.ncf_sent as f64
    }),
    counter("source_spm_sent", "SPM packets sent.", |s| {
        s.engine.spm_sent as f64
    }),
    counter(
        "source_wire_bytes",
        "Bytes of every packet sent, IP/UDP headers included.",
        |s| s.engine.wire_bytes as f64,
    ),
    counter(
        "source_naks_received",
        "NAK packets for this session accepted.",
        |s| s.engine.naks_received as f64,
    ),
    counter(
        "source_nak_sqns_received",
        "Sqns those NAKs asked for.",
        |s| s.engine.nak_sqns_received as f64,
    ),
    counter(
        "source_nak_sqns_eliminated",
        "Sqns not repaired again: repaired within the NAK elimination interval.",
        |s| s.engine.nak_sqns_eliminated as f64,
    ),
    counter(
        "source_nak_sqns_outside_window",
        "Sqns asked for that are no longer (or not yet) in the transmit window.",
        |s| s.engine.nak_sqns_outside_window as f64,
    ),
    counter(
        "source_nak_sqns_over_budget",
        "Sqns refused: the NAK asked for too many, or its NAKer's repair budget was spent.",
        |s| s.engine.nak_sqns_over_budget as f64,
    ),
    counter(
        "source_naks_bad_nla",
        "NAKs dropped: source or group NLA not ours.",
        |s| s.engine.naks_bad_nla as f64,
    ),
    counter(
        "source_parity_naks_ignored",
        "Parity NAKs ignored (no FEC on demand).",
        |s| s.engine.parity_naks_ignored as f64,
    ),
    counter(
        "source_parity_naks_received",
        "Parity NAKs accepted (FEC on demand).",
        |s| s.engine.parity_naks_received as f64,
    ),
    counter(
        "source_parity_sent",
        "Pro-active parity packets sent (FEC).",
        |s| s.engine.parity_sent as f64,
    ),
    counter(
        "source_on_demand_parity_sent",
        "Parity packets sent on demand (RDATA with OPT_PARITY).",
        |s| s.engine.on_demand_parity_sent as f64,
    ),
    counter(
        "source_parity_eliminated",
        "Parity asked for that parity sent within the elimination interval covered.",
        |s| s.engine.parity_eliminated as f64,
    ),
    counter("source_nnaks_received", "NNAKs received.", |s| {
        s.engine.nnaks_received as f64
    }),
    counter("source_spmrs_received", "SPMRs received.", |s| {
        s.engine.spmrs_received as f64
    }),
    gauge(
        "source_pgmcc_window",
        "PGMCC window now, packets (0 with congestion control off).",
        |s| s.engine.pgmcc.window as f64,
    ),
    gauge(
        "source_pgmcc_acker_elected",
        "1 while PGMCC has an ACKer, 0 while it elects one (or is off).",
        |s| f64::from(u8::from(s.engine.pgmcc.acker.is_some())),
    ),
    gauge(
        "source_pgmcc_rtt_seconds",
        "Smoothed RTT to the PGMCC ACKer now.",
        |s| s.engine.pgmcc.rtt.as_secs_f64(),
    ),
    gauge(
        "source_pgmcc_loss_rate",
        "Loss rate the PGMCC ACKer reports now, 0..1.",
        |s| f64::from(s.engine.pgmcc.loss_rate) / 65535.0,
    ),
    counter(
        "source_pgmcc_acker_switches",
        "PGMCC ACKers elected or replaced.",
        |s| s.engine.pgmcc.acker_switches as f64,
    ),
    counter("source_pgmcc_acks_received", "PGMCC ACKs received.", |s| {
        s.engine.pgmcc.acks_received as f64
    }),
    counter(
        "source_pgmcc_acks_ignored",
        "PGMCC ACKs that did not drive the window (invalid, or not from the ACKer).",
        |s| s.engine.pgmcc.acks_ignored as f64,
    ),
    counter(
        "source_pgmcc_loss_events",
        "Losses the ACKer's ACKs showed (each halved the window).",
        |s| s.engine.pgmcc.loss_events as f64,
    ),
    counter(
        "source_pgmcc_timeouts",
        "PGMCC ACK timeouts (each reset the window).",
        |s| s.engine.pgmcc.timeouts as f64,
    ),
    counter(
        "source_checksum_errors",
        "Packets that failed the checksum.",
        |s| s.engine.checksum_errors as f64,
    ),
    counter(
        "source_parse_errors",
        "Packets that failed to parse.",
        |s| s.engine.parse_errors as f64,
    ),
    counter(
        "source_ignored",
        "Packets for other sessions, or of types a source ignores.",
        |s| s.engine.ignored as f64,
    ),
    gauge(
        "source_txw_packets",
        "Packets in the transmit window now.",
        |s| s.engine.txw_packets as f64,
    ),
    gauge(
        "source_txw_bytes",
        "Payload bytes in the transmit window now.",
        |s| s.engine.txw_bytes as f64,
    ),
    gauge("source_txw_lead", "TXW_LEAD now: the last sqn sent.", |s| {
        f64::from(s.engine.txw_lead.0)
    }),
    gauge(
        "source_txw_trail",
        "TXW_TRAIL now: the oldest sqn held for repair.",
        |s| f64::from(s.engine.txw_trail.0),
    ),
    gauge(
        "source_repair_queue",
        "Repairs queued now (one per NAKer and sqn).",
        |s| s.engine.repairs_queued as f64,
    ),
    gauge(
        "source_parity_queue",
        "On-demand parity packets queued now.",
        |s| s.engine.parity_queued as f64,
    ),
    gauge(
        "source_engine_queue_packets",
        "Packets accepted and not yet transmitted now (held by the rate limit).",
        |s| s.engine.queued_packets as f64,
    ),
    gauge("source_engine_queue_bytes", "Their payload bytes.", |s| {
        s.engine.queued_bytes as f64
    }),
    gauge(
        "source_app_queue_messages",
        "Messages the application queued that the engine has not taken yet, now.",
        |s| s.app_queued_messages as f64,
    ),
    gauge(
        "source_app_queue_bytes",
        "Their bytes (against the send queue limit).",
        |s| s.app_queued_bytes as f64,
    ),
];

/// A receiver, all senders together.
pub(crate) const RECEIVER: &[Row<RecvStats>] = &[
    counter("receiver_packets", "Packets handed to the engine.", |s| {
        s.engine.packets as f64
    }),
    counter("receiver_bytes", "Bytes handed to the engine.", |s| {
        s.engine.bytes as f64
    }),
    counter("receiver_odata_packets", "ODATA packets accepted.", |s| {
        s.engine.odata_received as f64
    }),
    counter("receiver_rdata_packets", "RDATA packets accepted.", |s| {
        s.engine.rdata_received as f64
    }),
    counter(
        "receiver_repaired",
        "Gaps filled by RDATA or late ODATA.",
        |s| s.engine.repaired as f64,
    ),
    counter(
        "receiver_duplicates",
        "Data already held or given up on; reordered SPMs.",
        |s| s.engine.duplicates as f64,
    ),
    counter(
        "receiver_too_old",
        "Data packets before the window trail.",
        |s| s.engine.too_old as f64,
    ),
    counter(
        "receiver_parity_dropped",
        "Parity (FEC) packets dropped.",
        |s| s.engine.parity_dropped as f64,
    ),
    counter(
        "receiver_parity_received",
        "Parity (FEC) packets kept for decoding.",
        |s| s.engine.parity_received as f64,
    ),
    counter(
        "receiver_fec_recovered",
        "Data packets rebuilt from parity.",
        |s| s.engine.fec_recovered as f64,
    ),
    counter(
        "receiver_parity_naks_sent",
        "Parity NAK packets sent (FEC on demand).",
        |s| s.engine.parity_naks_sent as f64,
    ),
    counter("receiver_spm_received", "SPMs accepted.", |s| {
        s.engine.spm_received as f64
    }),
    counter(
        "receiver_ncf_received",
        "NCFs received for known senders.",
        |s| s.engine.ncf_received as f64,
    ),
    counter("receiver_naks_sent", "NAK packets sent.", |s| {
        s.engine.naks_sent as f64
    }),
    counter(
        "receiver_nak_sqns_sent",
        "Sqns requested in the NAKs sent.",
        |s| s.engine.nak_sqns_sent as f64,
    ),
    counter(
        "receiver_naks_suppressed",
        "Sqns whose NAK was suppressed in back-off by an NCF or another receiver's NAK.",
        |s| s.engine.naks_suppressed as f64,
    ),
    counter(
        "receiver_naks_deferred",
        "Times a sender's NAKs waited for NAK credit, the global NAK rate or queue room.",
        |s| s.engine.naks_deferred as f64,
    ),
    counter(
        "receiver_peer_naks_seen",
        "Other receivers' multicast NAKs seen.",
        |s| s.engine.peer_naks_seen as f64,
    ),
    counter("receiver_spmrs_sent", "SPMRs sent.", |s| {
        s.engine.spmrs_sent as f64
    }),
    counter(
        "receiver_pgmcc_acks_sent",
        "PGMCC ACKs sent (as ACKer, and election reports).",
        |s| s.engine.pgmcc_acks_sent as f64,
    ),
    counter(
        "receiver_pgmcc_acks_over_budget",
        "PGMCC ACKs not sent: the session's ACK budget or the out-queue was full.",
        |s| s.engine.pgmcc_acks_over_budget as f64,
    ),
    counter(
        "receiver_out_queue_drops",
        "NAKs/SPMRs dropped: the out-queue was full.",
        |s| s.engine.out_queue_drops as f64,
    ),
    counter(
        "receiver_apdus_delivered",
        "Messages (APDUs) delivered to the application.",
        |s| s.engine.apdus_delivered as f64,
    ),
    counter(
        "receiver_lost_sqns",
        "Sqns declared lost (unrecoverable) of confirmed senders.",
        |s| s.engine.lost_sqns as f64,
    ),
    counter("receiver_loss_events", "Loss events reported.", |s| {
        s.engine.loss_events as f64
    }),
    counter(
        "receiver_recovery_expired",
        "Of the lost sqns, those given up after the maximum recovery time.",
        |s| s.engine.recovery_expired as f64,
    ),
    counter(
        "receiver_memory_trimmed",
        "Sqns given up to keep all windows within the memory budget.",
        |s| s.engine.memory_trimmed as f64,
    ),
    counter(
        "receiver_unconfirmed_lost_sqns",
        "Sqns lost by senders still on probation (not reported as loss).",
        |s| s.engine.unconfirmed_lost_sqns as f64,
    ),
    counter(
        "receiver_checksum_errors",
        "Packets that failed the checksum.",
        |s| s.engine.checksum_errors as f64,
    ),
    counter(
        "receiver_parse_errors",
        "Packets that failed to parse.",
        |s| s.engine.parse_errors as f64,
    ),
    counter(
        "receiver_ignored",
        "Packets for another port, of an ignored type, or inconsistent with the session.",
        |s| s.engine.ignored as f64,
    ),
    counter("receiver_peers_created", "Senders first seen.", |s| {
        s.engine.peers_created as f64
    }),
    counter(
        "receiver_peers_joined",
        "Senders announced (first message delivered).",
        |s| s.engine.peers_joined as f64,
    ),
    counter(
        "receiver_peers_expired",
        "Announced senders that expired.",
        |s| s.engine.peers_expired as f64,
    ),
    counter(
        "receiver_peers_evicted",
        "Senders forgotten to make room or memory.",
        |s| s.engine.peers_evicted as f64,
    ),
    gauge(
        "receiver_peers",
        "Senders tracked now (at most --max-peers).",
        |s| s.engine.peers as f64,
    ),
    gauge(
        "receiver_peers_on_probation",
        "Of those, senders on probation now.",
        |s| s.engine.peers_on_probation as f64,
    ),
    gauge(
        "receiver_missing_sqns",
        "Sqns missing now over all senders.",
        |s| s.engine.missing_now as f64,
    ),
    gauge(
        "receiver_window_bytes",
        "Payload bytes buffered now over all senders.",
        |s| s.engine.window_bytes as f64,
    ),
    gauge(
        "receiver_footprint_bytes",
        "Memory held now by all windows (against --memory).",
        |s| s.engine.footprint as f64,
    ),
    gauge(
        "receiver_app_queue_events",
        "Events published to the application and not taken yet, now.",
        |s| s.app_queued_events as f64,
    ),
    gauge(
        "receiver_app_queue_bytes",
        "Bytes held for the application now (against the receive queue limit).",
        |s| s.app_queued_bytes as f64,
    ),
    gauge(
        "receiver_reading_paused",
        "1 while reading is paused because the application's queue is full.",
        |s| f64::from(u8::from(s.reading_paused)),
    ),
];

/// One sender (TSI) as a receiver sees it: label `tsi`.
pub(crate) const PEER: &[Row<PeerReport>] = &[
    counter("peer_packets", "Packets heard from the sender.", |p| {
        p.stats.packets as f64
    }),
    counter("peer_odata_packets", "ODATA packets accepted.", |p| {
        p.stats.odata_received as f64
    }),
    counter("peer_rdata_packets", "RDATA packets accepted.", |p| {
        p.stats.rdata_received as f64
    }),
    counter(
        "peer_data_bytes",
        "Payload bytes of the ODATA and RDATA accepted.",
        |p| p.stats.data_bytes as f64,
    ),
    counter(
        "peer_repaired",
        "Gaps filled by RDATA or late ODATA.",
        |p| p.stats.repaired as f64,
    ),
    counter(
        "peer_duplicates",
        "Data packets already held or given up on.",
        |p| p.stats.duplicates as f64,
    ),
    counter("peer_apdus_delivered", "Messages delivered.", |p| {
        p.stats.apdus_delivered as f64
    }),
    counter(
        "peer_lost_sqns",
        "Sqns reported lost (unrecoverable).",
        |p| p.stats.lost_sqns as f64,
    ),
    counter("peer_naks_sent", "NAK packets sent to the sender.", |p| {
        p.stats.naks_sent as f64
    }),
    counter("peer_nak_sqns_sent", "Sqns requested in those NAKs.", |p| {
        p.stats.nak_sqns_sent as f64
    }),
    counter(
        "peer_naks_suppressed",
        "Sqns whose NAK was suppressed in back-off by an NCF or another receiver's NAK.",
        |p| p.stats.naks_suppressed as f64,
    ),
    counter("peer_ncf_received", "NCFs received from the sender.", |p| {
        p.stats.ncf_received as f64
    }),
    gauge(
        "peer_missing_sqns",
        "Sqns missing now (in recovery).",
        |p| p.stats.missing_now as f64,
    ),
    gauge(
        "peer_window_sqns",
        "Sqns the receive window spans now.",
        |p| p.stats.window_sqns as f64,
    ),
    gauge("peer_window_bytes", "Payload bytes held now.", |p| {
        p.stats.window_bytes as f64
    }),
    gauge(
        "peer_window_lead",
        "RXW_LEAD now: the newest sqn seen (-1 before data).",
        |p| p.stats.window_lead.map_or(-1.0, |s| f64::from(s.0)),
    ),
    gauge(
        "peer_window_trail",
        "RXW_TRAIL now: the oldest sqn held (-1 before data).",
        |p| p.stats.window_trail.map_or(-1.0, |s| f64::from(s.0)),
    ),
    gauge(
        "peer_nak_credit",
        "NAK packets the sender's traffic has paid for, unsent.",
        |p| f64::from(p.stats.nak_credit),
    ),
    gauge(
        "peer_pgmcc_loss_rate",
        "Loss rate reported to the sender with PGMCC, 0..1.",
        |p| f64::from(p.stats.pgmcc_loss_rate) / 65535.0,
    ),
    gauge(
        "peer_idle_seconds",
        "Seconds since a packet was last heard from the sender.",
        |p| p.idle.as_secs_f64(),
    ),
];

/// The state set of a sender: `pgm_peer_state{tsi, state}` is 1 for its state, 0 for the others.
pub(crate) const PEER_STATE: (&str, &str) = (
    "peer_state",
    "The sender's state: probation (not yet confirmed), active, or ending (FIN seen).",
);

/// The tool's own counts.
pub(crate) const APP: &[Row<AppCounts>] = &[
    counter(
        "app_messages",
        "Messages the tool sent (senders) or received (receivers; verified ones with --verify).",
        |a| a.messages as f64,
    ),
    counter("app_bytes", "Bytes of those messages.", |a| a.bytes as f64),
    counter(
        "app_policy_dropped",
        "Messages the slow-consumer policy dropped, announced to the application (pgm-sub).",
        |a| a.policy_dropped as f64,
    ),
    counter(
        "app_conflated",
        "Messages the conflate policy replaced by a newer one of the same topic (pgm-sub).",
        |a| a.conflated as f64,
    ),
    gauge(
        "app_finished",
        "1 once the run is over and every number here is final (see --metrics-linger).",
        |a| f64::from(u8::from(a.finished)),
    ),
];

/// The tool's counts as one snapshot.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AppCounts {
    pub(crate) messages: u64,
    pub(crate) bytes: u64,
    pub(crate) policy_dropped: u64,
    pub(crate) conflated: u64,
    pub(crate) finished: bool,
}

/// The tool's counts, set by its main loop now and then and at the end (never per message).
#[derive(Debug, Default)]
pub struct AppCounters {
    messages: AtomicU64,
    bytes: AtomicU64,
    policy_dropped: AtomicU64,
    conflated: AtomicU64,
    finished: AtomicBool,
}

impl AppCounters {
    /// Sets the totals so far.
    pub fn set(&self, messages: u64, bytes: u64) {
        self.messages.store(messages, Ordering::Relaxed);
        self.bytes.store(bytes, Ordering::Relaxed);
    }

    /// Sets the slow-consumer policy's totals so far.
    pub fn set_policy(&self, dropped: u64, conflated: u64) {
        self.policy_dropped.store(dropped, Ordering::Relaxed);
        self.conflated.store(conflated, Ordering::Relaxed);
    }

    /// The run is over: the numbers are final.
    pub(crate) fn finish(&self) {
        self.finished.store(true, Ordering::Release);
    }

    fn snapshot(&self) -> AppCounts {
        AppCounts {
            finished: self.finished.load(Ordering::Acquire),
            messages: self.messages.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            policy_dropped: self.policy_dropped.load(Ordering::Relaxed),
            conflated: self.conflated.load(Ordering::Relaxed),
        }
    }
}

/// The socket a tool exposes, once it is open.
#[derive(Debug, Clone)]
pub(crate) enum Socket {
    Send(SendMonitor),
    Recv(RecvMonitor),
}

/// The collector behind `/metrics`: reads the socket's monitor and the tool's counts at each
/// scrape (on the HTTP thread; the socket's IO thread only hands over a snapshot).
#[derive(Debug, Default)]
pub(crate) struct ToolCollector {
    pub(crate) socket: Mutex<Option<Socket>>,
    pub(crate) app: std::sync::Arc<AppCounters>,
}

impl Collector for ToolCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), fmt::Error> {
        let socket = self
            .socket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let app = self.app.snapshot();
        encode_rows(&mut enc, APP, &app)?;
        match socket {
            None => Ok(()),
            Some(Socket::Send(m)) => {
                let s = m.stats();
                encode_rows(&mut enc, IO, &s.io)?;
                encode_rows(&mut enc, SOURCE, &s)
            }
            Some(Socket::Recv(m)) => {
                let s = m.stats();
                let peers = m.peers();
                encode_rows(&mut enc, IO, &s.io)?;
                encode_rows(&mut enc, RECEIVER, &s)?;
                encode_peers(&mut enc, &peers)
            }
        }
    }
}

fn metric_type(kind: Kind) -> MetricType {
    match kind {
        Kind::Counter => MetricType::Counter,
        Kind::Gauge => MetricType::Gauge,
    }
}

/// Encodes one sample of `v` into `enc` as the row's kind: whole numbers as integers (exact
/// up to 2^53, far beyond any run).
fn encode_value(kind: Kind, v: f64, enc: MetricEncoder<'_>) -> Result<(), fmt::Error> {
    match kind {
        Kind::Counter if v.fract() == 0.0 && v >= 0.0 =>
        {
            #[expect(clippy::cast_sign_loss, reason = "checked non-negative and whole")]
            ConstCounter::new(v as u64).encode(enc)
        }
        Kind::Counter => ConstCounter::new(v).encode(enc),
        #[expect(
            clippy::cast_possible_truncation,
            reason = "checked whole and within i64"
        )]
        Kind::Gauge if v.fract() == 0.0 && v.abs() < 9.0e15 => {
            ConstGauge::new(v as i64).encode(enc)
        }
        Kind::Gauge => ConstGauge::new(v).encode(enc),
    }
}

fn encode_rows<S>(enc: &mut DescriptorEncoder, rows: &[Row<S>], s: &S) -> Result<(), fmt::Error> {
    for row in rows {
        let m = enc.encode_descriptor(row.name, row.help, None, metric_type(row.kind))?;
        encode_value(row.kind, (row.read)(s), m)?;
    }
    Ok(())
}

/// The per-sender families: one series per tracked TSI (bounded by the peer table).
fn encode_peers(enc: &mut DescriptorEncoder, peers: &[PeerReport]) -> Result<(), fmt::Error> {
    let labels: Vec<[(&str, String); 1]> =
        peers.iter().map(|p| [("tsi", p.tsi.to_string())]).collect();
    for row in PEER {
        let mut m = enc.encode_descriptor(row.name, row.help, None, metric_type(row.kind))?;
        for (p, l) in peers.iter().zip(&labels) {
            encode_value(row.kind, (row.read)(p), m.encode_family(l)?)?;
        }
    }
    let (name, help) = PEER_STATE;
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (p, [tsi]) in peers.iter().zip(&labels) {
        for state in PeerState::ALL {
            let l = [tsi.clone(), ("state", state.as_str().to_owned())];
            let on = i64::from(p.stats.state == state);
            ConstGauge::new(on).encode(m.encode_family(&l)?)?;
        }
    }
    Ok(())
}

#[cfg(test)]
/// Every metric name this module can emit, with `pgm_` and (for counters) `_total`: for the
/// docs check.
pub(crate) fn all_names() -> Vec<String> {
    fn names<S>(rows: &[Row<S>], out: &mut Vec<String>) {
        for r in rows {
            let suffix = if r.kind == Kind::Counter {
                "_total"
            } else {
                ""
            };
            out.push(format!("pgm_{}{suffix}", r.name));
        }
    }
    let mut out = Vec::new();
    names(APP, &mut out);
    names(IO, &mut out);
    names(SOURCE, &mut out);
    names(RECEIVER, &mut out);
    names(PEER, &mut out);
    out.push(format!("pgm_{}", PEER_STATE.0));
    out
}
