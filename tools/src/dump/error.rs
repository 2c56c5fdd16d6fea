//! Why a dump could not run or finish.

use std::{io, path::PathBuf};

use pcap_file::DataLink;

/// Why a dump could not run or finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DumpError {
    /// `--iface` names no interface of this host.
    #[error("no interface {name} (interfaces here: {available})")]
    NoSuchInterface {
        /// The name given.
        name: String,
        /// The interfaces that exist, comma-separated.
        available: String,
    },
    /// Opening the packet socket was refused.
    #[error("cannot capture on {iface}: live capture needs root or CAP_NET_RAW ({err})")]
    NotPermitted {
        /// The interface.
        iface: String,
        /// The OS error.
        err: io::Error,
    },
    /// The interface's link layer is not one `pgm-dump` decodes.
    #[error("cannot capture on {iface}: link type {arphrd} (ARPHRD_*) is not supported")]
    InterfaceLinkType {
        /// The interface.
        iface: String,
        /// Its `ARPHRD_*` type (`/sys/class/net/IFACE/type`).
        arphrd: u16,
    },
    /// Live capture failed (opening the interface or reading from it).
    #[error("capture on {iface} failed: {err}")]
    Capture {
        /// The interface.
        iface: String,
        /// The OS error.
        err: io::Error,
    },
    /// Neither `--pcap` nor `--iface`.
    #[error("no input: give --pcap FILE or --iface IFACE")]
    NoInput,
    /// The capture file cannot be opened or read.
    #[error("cannot read {path}: {err}")]
    Io {
        /// The capture file.
        path: PathBuf,
        /// The OS error.
        err: io::Error,
    },
    /// The file is not a capture this tool reads, or is damaged.
    #[error("{path}: not a readable pcap/pcapng capture: {reason}")]
    Format {
        /// The capture file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The capture's link layer is not one `pgm-dump` decodes.
    #[error(
        "{path}: link type {linktype:?} is not supported (use Ethernet, Linux cooked SLL/SLL2 \
         or raw IPv4 captures, e.g. `tcpdump -i eth0 -w FILE`)"
    )]
    LinkType {
        /// The capture file.
        path: PathBuf,
        /// Its link type.
        linktype: DataLink,
    },
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(io::Error),
}
