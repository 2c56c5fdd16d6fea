//! Library code behind the command-line tools, kept here so it can be tested; the binaries in
//! `src/bin/` are thin mains. One module per tool, plus [`cli`] (what several tools share),
//! [`topic_verifier`] (`pgm-sub --verify`) and [`frames`] (test frames for `pgm-dump`).

pub mod cli;
pub mod dump;
pub mod frames;
pub mod md_demo;
pub mod metrics;
pub mod ping;
pub mod publish;
pub mod recv;
pub mod send;
pub mod subscribe;
pub mod top;
pub mod topic_verifier;
pub mod udp_perf;
