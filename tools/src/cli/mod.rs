//! What several tools share: the test message format, option value parsers and the transport
//! options ([`CommonArgs`]), the error type with its exit codes, the reports, the mains of the
//! sending and of the receiving tools, Ctrl-C, per-sender counts, the
//! `--shard` flag and the plain UDP endpoint.

mod error;
pub mod interrupt;
mod options;
mod receiver;
mod report;
mod sender;
mod senders;
mod shard;
mod test_message;
mod udp;

pub use self::{
    error::{connect_error, report_error, ToolError},
    options::{
        parse_bytes, parse_history, parse_loss_percent, parse_msg_rate, parse_rate, parse_rate_arg,
        parse_secs, parse_share, parse_window, CommonArgs, HistoryBound, NakProfileArg, Window,
    },
    receiver::{idle_timeout, next_wait, receiver_main, Activity, RunEnd, DEFAULT_TIMEOUT},
    report::{cpu_s, json_line, max_rss_kb, mono_ns, msgs_per_s, round3, sender_fields, Progress},
    sender::{read_line, say_interrupted, sender_main},
    senders::{SenderCounts, Senders, MAX_SENDERS},
    shard::{parse_shard, shard_json},
    test_message::{check_test_message, fill_test_message, TestMessageError, TEST_HEADER},
    udp::{UdpEndpoint, SOCKET_BUFFER},
};
