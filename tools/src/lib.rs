//! Library code behind the command-line tools (`pgm-dump`, `pgm-send`, `pgm-recv`), kept here so
//! it can be tested; the binaries in `src/bin/` are thin.

pub mod dump;
pub mod frames;
pub mod md_demo;
pub mod ping;
pub mod pubsub_cli;
pub mod recv;
pub mod send;
pub mod senders;
pub mod udp_perf;
