//! `pgm-send`: send stdin lines, or numbered test messages, to a PGM/EPGM endpoint.

use std::{io, process::ExitCode, time::Duration};

use bytes::BytesMut;
use clap::Parser;
use pgm::socket::{Clock, SendSocket};

use crate::{
    cli::{
        cpu_s, fill_test_message, interrupt, json_line, mono_ns, parse_msg_rate, parse_rate_arg,
        read_line, report_error, say_interrupted, sender_fields, sender_main, CommonArgs, Progress,
        ToolError, TEST_HEADER,
    },
    metrics::{Metrics, MetricsArgs, Role},
};

/// `pgm-send` arguments.
#[derive(Debug, Parser)]
#[command(
    name = "pgm-send",
    version,
    about = "Send stdin lines, or numbered test messages, to a PGM or EPGM endpoint",
    after_help = "ENDPOINT is pgm://IFACE;GROUP:PORT (raw IP, needs root or CAP_NET_RAW) or \
                  epgm://IFACE;GROUP:PORT (UDP port PORT), e.g. 'epgm://eth0;239.192.0.1:7500'.\n\
                  Without --count each stdin line is one message. With --count, message i holds \
                  i (u64 BE), a CRC-32 of bytes 12.. (u32 BE) and filler; pgm-recv --verify \
                  checks them.\nCtrl-C or SIGTERM stops sending (stdin: at the next line) and closes as usual: \
                  FIN, --linger for repairs, the JSON line; exit status 1 if --count was not \
                  reached. A second one quits at once (status 130).\n\
                  Prints one JSON line on stdout at the end: sent, bytes, \
                  elapsed_s (first to last original send, linger excluded), msgs_per_s, \
                  naks_received, ncf_sent, rdata_sent, parity_sent, gso_refused, cpu_s (CPU \
                  seconds of all threads over the same span as elapsed_s); with \
                  --second-path also second_path_sent and second_path_dropped."
)]
pub struct SendArgs {
    /// pgm://IFACE;GROUP:PORT or epgm://IFACE;GROUP:PORT.
    pub endpoint: String,
    /// Send N generated test messages instead of stdin lines.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Size of each test message in bytes (at least 12).
    #[arg(long, default_value_t = 64, value_name = "BYTES")]
    pub size: usize,
    /// Rate limit in bits/s over everything sent, headers included (k/M/G suffixes, e.g.
    /// 100M); unlimited by default.
    #[arg(long, value_parser = parse_rate_arg, default_value = "unlimited", value_name = "BITS")]
    pub rate: u64,
    /// Pace generated test messages at this many per second (k/M suffixes), independently of
    /// the PGM rate limit; as fast as the socket takes them by default.
    #[arg(long, value_parser = parse_msg_rate, value_name = "MSGS")]
    pub msg_rate: Option<f64>,
    /// Seconds to keep answering NAKs after the last message.
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    pub linger: f64,
    /// Busy-poll: waits for queue space spin instead of blocking (lower latency, one core
    /// at 100 % while waiting; see SocketOptions::busy_poll).
    #[arg(long)]
    pub spin: bool,
    /// Options shared with pgm-recv.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Prometheus metrics.
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// What `pgm-send` reports at the end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SendReport {
    /// Messages sent.
    pub sent: u64,
    /// Interrupted before `--count` was reached (exit status 1; not in the JSON, which says
    /// `sent`).
    pub short: bool,
    /// Payload bytes sent.
    pub bytes: u64,
    /// Seconds from the first send until the last message was on the wire.
    pub elapsed_s: f64,
    /// NAKs received.
    pub naks_received: u64,
    /// NCFs sent.
    pub ncf_sent: u64,
    /// RDATA sent (on-demand parity not included).
    pub rdata_sent: u64,
    /// FEC parity packets sent, pro-active and on demand.
    pub parity_sent: u64,
    /// Times the path refused UDP GSO (EPGM; then it is off for the socket).
    pub gso_refused: u64,
    /// `--second-path`: (copies sent on the second path, copies it did not take).
    pub second_path: Option<(u64, u64)>,
    /// PGMCC (`--congestion pgmcc`), once an ACK arrived.
    pub pgmcc: Option<PgmccReport>,
    /// CLOCK_MONOTONIC (ns) when the last message was on the wire (benchmark repair tails).
    pub last_mono_ns: u64,
    /// CPU seconds of the process (all threads, user + system) from the first send until the
    /// last message was on the wire: what sending cost (the benchmark's CPU per message).
    pub cpu_s: f64,
}

/// PGMCC counters of a [`SendReport`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PgmccReport {
    /// ACKs that reached the congestion controller.
    pub acks_received: u64,
    /// ACKer changes (the first election included).
    pub acker_switches: u64,
    /// Losses the ACKs reported (window halvings).
    pub loss_events: u64,
    /// ACK timeouts (window reset).
    pub timeouts: u64,
}

impl SendReport {
    /// The socket's counters that go into the report.
    fn add_counters(&mut self, st: &pgm::socket::SendStats) {
        self.naks_received = st.engine.naks_received;
        self.ncf_sent = st.engine.ncf_sent;
        self.rdata_sent = st.engine.rdata_sent;
        self.parity_sent = st.engine.parity_sent + st.engine.on_demand_parity_sent;
        self.gso_refused = st.io.transport.gso_refused;
        let t = &st.io.transport;
        self.second_path = (t.second_path_sent + t.second_path_dropped > 0)
            .then_some((t.second_path_sent, t.second_path_dropped));
        let cc = &st.engine.pgmcc;
        self.pgmcc = (cc.acks_received + cc.acker_switches > 0).then_some(PgmccReport {
            acks_received: cc.acks_received,
            acker_switches: cc.acker_switches,
            loss_events: cc.loss_events,
            timeouts: cc.timeouts,
        });
    }

    /// The one JSON line.
    pub fn to_json(&self) -> String {
        let mut fields = sender_fields(
            self.sent,
            self.bytes,
            self.elapsed_s,
            [self.naks_received, self.ncf_sent, self.rdata_sent],
        );
        fields.push(("parity_sent", self.parity_sent.into()));
        fields.push(("gso_refused", self.gso_refused.into()));
        if let Some((sent, dropped)) = self.second_path {
            fields.push(("second_path_sent", sent.into()));
            fields.push(("second_path_dropped", dropped.into()));
        }
        if let Some(cc) = &self.pgmcc {
            fields.push(("pgmcc_acks_received", cc.acks_received.into()));
            fields.push(("pgmcc_acker_switches", cc.acker_switches.into()));
            fields.push(("pgmcc_loss_events", cc.loss_events.into()));
            fields.push(("pgmcc_timeouts", cc.timeouts.into()));
        }
        fields.push(("cpu_s", ((self.cpu_s * 1e6).round() / 1e6).into()));
        fields.push(("last_mono_ns", self.last_mono_ns.into()));
        json_line(&fields)
    }
}

impl SendArgs {
    /// Rejects what no socket needs to be opened to see is wrong.
    fn check(&self) -> Result<(), ToolError> {
        if self.count.is_some() && self.size < TEST_HEADER {
            return Err(ToolError::Usage(format!(
                "--size {} is too small: test messages are at least {TEST_HEADER} bytes \
                 (8-byte sequence number + 4-byte CRC)",
                self.size
            )));
        }
        if !(0.0..=3600.0).contains(&self.linger) {
            return Err(ToolError::Usage(format!(
                "--linger {} out of range 0..3600",
                self.linger
            )));
        }
        Ok(())
    }
}

/// Generated test messages handed to the socket per call.
const SEND_BATCH: usize = 32;
const CHUNK: usize = 64 * 1024;

/// Runs `pgm-send`; returns the report after the linger time. The socket's counters and the
/// messages sent so far go to `metrics`.
pub fn run_send(args: &SendArgs, metrics: &Metrics) -> Result<SendReport, ToolError> {
    args.check()?;
    let mut opts = args.common.transport_options();
    opts.socket = opts
        .socket
        .with_rate((args.rate > 0).then_some(args.rate))
        .with_linger(Duration::from_secs_f64(args.linger))
        .with_busy_poll(args.spin);
    let sock = epgm::open_sender(&args.endpoint, &opts)?;
    metrics.attach_sender(sock.monitor());
    if args.count.is_some() && args.size > sock.max_message() {
        return Err(ToolError::Usage(format!(
            "--size {} is larger than the largest message ({} bytes with this tpdu and window)",
            args.size,
            sock.max_message()
        )));
    }
    if !args.common.quiet {
        eprintln!("pgm-send: sending on {} as {}", args.endpoint, sock.tsi());
    }
    let clock = Clock::new();
    let mut progress = Progress::new(clock, !args.common.quiet);
    let mut report = SendReport::default();
    let mut started = None;
    let cpu_before = cpu_s();
    let extra = |s: &SendSocket| {
        let st = s.stats();
        format!(
            "naks {}, rdata {}",
            st.engine.naks_received, st.engine.rdata_sent
        )
    };
    if let Some(count) = args.count {
        // Generated messages are all ready at once: hand them over a batch at a time, so the
        // socket sends them in one `sendmmsg` (one GSO send for EPGM) instead of one syscall
        // each. Each is still its own APDU and packet.
        let mut buf = vec![0u8; args.size];
        let mut batch = Vec::with_capacity(SEND_BATCH);
        let mut chunk = BytesMut::new();
        let start = clock.elapsed();
        started = Some(start);
        for seq in 0..count {
            if interrupt::requested() {
                break;
            }
            fill_test_message(seq, &mut buf);
            if chunk.capacity() < buf.len() {
                chunk = BytesMut::with_capacity(CHUNK.max(buf.len()));
            }
            chunk.extend_from_slice(&buf);
            batch.push(chunk.split().freeze());
            // Paced: hand over what is due, then wait for the next message's time.
            let due = args
                .msg_rate
                .map(|r| start + Duration::from_secs_f64((seq + 1) as f64 / r));
            let early = due.is_some_and(|d| d > clock.elapsed());
            if batch.len() == SEND_BATCH || seq + 1 == count || early {
                report.sent += batch.len() as u64;
                report.bytes += (batch.len() * buf.len()) as u64;
                sock.send_many(batch.drain(..))?;
            }
            if seq.is_multiple_of(256) {
                metrics.app().set(report.sent, report.bytes);
                progress.tick("pgm-send", report.sent, report.bytes, || extra(&sock));
            }
            if let Some(d) = due {
                std::thread::sleep(d.saturating_sub(clock.elapsed()));
            }
        }
        // Interrupted between two hand-overs: what was generated goes out too.
        if !batch.is_empty() {
            report.sent += batch.len() as u64;
            report.bytes += (batch.len() * buf.len()) as u64;
            sock.send_many(batch.drain(..))?;
        }
    } else {
        let stdin = io::stdin();
        let mut line = Vec::new();
        let mut input = stdin.lock();
        while !interrupt::requested() && read_line(&mut input, &mut line)? {
            started.get_or_insert_with(|| clock.elapsed());
            sock.send(&line)?;
            report.sent += 1;
            report.bytes += line.len() as u64;
            metrics.app().set(report.sent, report.bytes);
            progress.tick("pgm-send", report.sent, report.bytes, || extra(&sock));
        }
    }
    if interrupt::requested() && !args.common.quiet {
        say_interrupted("pgm-send", report.sent, args.linger);
    }
    report.short = args.count.is_some_and(|c| report.sent < c);
    sock.flush()?;
    metrics.app().set(report.sent, report.bytes);
    report.last_mono_ns = mono_ns();
    report.cpu_s = cpu_s() - cpu_before;
    report.elapsed_s = started.map_or(0.0, |t| clock.elapsed().saturating_sub(t).as_secs_f64());
    sock.close()?;
    let st = sock.stats();
    report.add_counters(&st);
    if let Some(e) = &st.last_send_error {
        if !args.common.quiet {
            eprintln!("pgm-send: {} send errors, last: {e}", st.io.send_errors);
        }
    }
    Ok(report)
}

/// `pgm-send`'s main: runs, prints the JSON line, maps errors to exit codes.
pub fn send_main(args: &SendArgs) -> ExitCode {
    let metrics = match Metrics::start(&args.metrics, "pgm-send", Role::Sender, &args.endpoint) {
        Ok(m) => m,
        Err(e) => return report_error("pgm-send", &e),
    };
    let code = sender_main("pgm-send", || {
        run_send(args, &metrics).map(|r| (r.to_json(), r.short))
    });
    metrics.finish();
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_json_has_the_agreed_keys() {
        let r = SendReport {
            sent: 10,
            bytes: 640,
            elapsed_s: 0.5,
            naks_received: 1,
            ncf_sent: 1,
            rdata_sent: 2,
            ..SendReport::default()
        };
        let line = r.to_json();
        assert!(
            line.starts_with(r#"{"sent":10,"bytes":640,"elapsed_s":0.5,"#),
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["sent"], 10);
        assert_eq!(v["msgs_per_s"], 20.0);
        for k in [
            "bytes",
            "elapsed_s",
            "naks_received",
            "ncf_sent",
            "rdata_sent",
            "cpu_s",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
    }
}
