//! Live capture for `pgm-dump --iface` and `pgm-top --iface`: an `AF_PACKET` socket through
//! pnet's datalink channel ([`LiveCapture`]); `pgm-dump` hands every frame to the same
//! [`Printer`] as the frames of a pcap file.
//!
//! Linux hands each frame over with the interface's link-layer header: Ethernet on Ethernet
//! interfaces and on `lo` (with all-zero MACs, which nothing here looks at), none on tun-like
//! interfaces (raw IP); which one is read from `/sys/class/net/IFACE/type`. The socket takes
//! every protocol (`ETH_P_ALL`): IPv4 and IPv6 frames alike reach the decoder, which tells them
//! apart by Ethernet type or IP version. On `lo` the socket sees every packet twice, going out
//! and coming back in, and pnet drops the packet type that would tell the two apart, so on a
//! loopback interface the second identical copy of a frame within a second is dropped (as
//! tcpdump shows each packet on `lo` once). A UDP GSO send from this host (our EPGM sender's
//! runs) shows here as one unsegmented super-packet, which the [`Printer`] splits into its PGM
//! packets (see [`super::decode`]).
//!
//! The capture ends after `--count` printed packets, after `--duration`, or when the output is
//! closed; reads wake up every [`POLL`] to check.

use std::{
    collections::VecDeque,
    fs,
    io::{self, Write},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use pcap_file::DataLink;
use pnet_datalink::{self as datalink, Channel, Config, DataLinkReceiver};

use super::{
    error::DumpError,
    print::{Output, Printer, Summary},
};

/// How long one read waits before the deadline is looked at again (the most `--duration` can
/// overrun).
pub const POLL: Duration = Duration::from_millis(100);
/// Bytes read per frame: `lo`'s 64 KiB MTU plus a link-layer header.
const SNAPLEN: usize = 65_536 + 64;

/// An open live capture on one interface: the frames of an `AF_PACKET` socket, the second
/// copy of each frame on a loopback interface dropped (see the module docs). Shared by
/// `pgm-dump --iface` ([`capture`]) and `pgm-top --iface`.
pub struct LiveCapture {
    rx: Box<dyn DataLinkReceiver>,
    linktype: DataLink,
    echo: Option<LoopbackEcho>,
    iface: String,
}

impl LiveCapture {
    /// Opens a packet socket on `iface`: fails clearly when there is no such interface, when
    /// its link layer is not one [`super::decode`] reads, or without root / CAP_NET_RAW.
    pub fn open(iface: &str) -> Result<LiveCapture, DumpError> {
        let interfaces = datalink::interfaces();
        let Some(ni) = interfaces.iter().find(|i| i.name == iface) else {
            let names: Vec<&str> = interfaces.iter().map(|i| i.name.as_str()).collect();
            return Err(DumpError::NoSuchInterface {
                name: iface.to_owned(),
                available: names.join(", "),
            });
        };
        let linktype = link_type(iface)?;
        let config = Config {
            read_buffer_size: SNAPLEN,
            read_timeout: Some(POLL),
            ..Config::default()
        };
        let rx = match datalink::channel(ni, config) {
            Ok(Channel::Ethernet(_tx, rx)) => rx,
            Ok(_) => {
                return Err(DumpError::Capture {
                    iface: iface.to_owned(),
                    err: io::Error::other("not a datalink channel"),
                })
            }
            Err(err) if err.kind() == io::ErrorKind::PermissionDenied => {
                return Err(DumpError::NotPermitted {
                    iface: iface.to_owned(),
                    err,
                })
            }
            Err(err) => {
                return Err(DumpError::Capture {
                    iface: iface.to_owned(),
                    err,
                })
            }
        };
        Ok(LiveCapture {
            rx,
            linktype,
            echo: ni.is_loopback().then(LoopbackEcho::default),
            iface: iface.to_owned(),
        })
    }

    /// The framing of the frames [`LiveCapture::next_frame`] returns.
    pub fn linktype(&self) -> DataLink {
        self.linktype
    }

    /// The interface captured on.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// The next frame with its wall-clock timestamp (seconds since the epoch), or `None` when
    /// none came within [`POLL`] (the caller looks at its deadline and calls again).
    pub fn next_frame(&mut self) -> Result<Option<(f64, &[u8])>, DumpError> {
        match self.rx.next() {
            Ok(frame) => {
                if self
                    .echo
                    .as_mut()
                    .is_some_and(|e| e.is_echo(frame, monotonic()))
                {
                    return Ok(None);
                }
                Ok(Some((wall_clock(), frame)))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                ) =>
            {
                Ok(None)
            }
            Err(err) => Err(DumpError::Capture {
                iface: self.iface.clone(),
                err,
            }),
        }
    }
}

/// Captures on `iface` until `duration` has passed (if given), `opts.count` packets are printed
/// or the output is closed, printing to `out`; calls `on_ready(iface)` once the socket is open.
pub fn capture(
    iface: &str,
    duration: Option<Duration>,
    opts: &Output,
    out: &mut dyn Write,
    on_ready: &mut dyn FnMut(&str),
) -> Result<Summary, DumpError> {
    let mut cap = LiveCapture::open(iface)?;
    let deadline = duration.map(|d| monotonic() + d);
    let linktype = cap.linktype();
    let mut printer = Printer::new(opts, out);
    on_ready(iface);
    while !printer.done() && deadline.is_none_or(|d| monotonic() < d) {
        if let Some((time, frame)) = cap.next_frame()? {
            printer.frame(linktype, time, frame)?;
        }
    }
    printer.finish()
}

/// The monotonic clock, for the deadline and the loopback echo window.
#[expect(
    clippy::disallowed_methods,
    reason = "a capture tool is an IO driver: it may read the clock"
)]
pub(crate) fn monotonic() -> Instant {
    Instant::now()
}

/// Seconds since the epoch, the timestamp of a frame read now.
pub(crate) fn wall_clock() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The framing of `iface`'s packets on an `AF_PACKET` raw socket, from its `ARPHRD_*` type.
fn link_type(iface: &str) -> Result<DataLink, DumpError> {
    let path = format!("/sys/class/net/{iface}/type");
    let Some(arphrd) = fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<u16>().ok())
    else {
        // No sysfs: assume Ethernet, as pnet does.
        return Ok(DataLink::ETHERNET);
    };
    link_type_of(arphrd).ok_or(DumpError::InterfaceLinkType {
        iface: iface.to_owned(),
        arphrd,
    })
}

/// `ARPHRD_ETHER` and `ARPHRD_LOOPBACK` carry Ethernet headers; `ARPHRD_NONE` (tun, WireGuard),
/// `ARPHRD_TUNNEL` (ipip), `ARPHRD_TUNNEL6` (ip6tnl) and `ARPHRD_SIT` carry bare IP packets.
fn link_type_of(arphrd: u16) -> Option<DataLink> {
    match arphrd {
        1 | 772 => Some(DataLink::ETHERNET),
        768 | 769 | 776 | 65534 => Some(DataLink::RAW),
        _ => None,
    }
}

/// Drops the second copy of each frame on a loopback interface (see the module docs).
#[derive(Debug, Default)]
struct LoopbackEcho {
    /// Frames seen once, waiting for their echo, oldest first.
    pending: VecDeque<(Instant, Vec<u8>)>,
}

impl LoopbackEcho {
    /// How long a frame waits for its echo.
    const WINDOW: Duration = Duration::from_secs(1);
    /// Most frames waiting (bounds memory whatever the traffic).
    const MAX: usize = 64;

    /// True if `frame` is the echo of a frame seen within [`Self::WINDOW`] (which is then
    /// forgotten, so a real duplicate sent later shows again).
    fn is_echo(&mut self, frame: &[u8], now: Instant) -> bool {
        while self
            .pending
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) >= Self::WINDOW)
        {
            self.pending.pop_front();
        }
        if let Some(i) = self.pending.iter().position(|(_, f)| f == frame) {
            self.pending.remove(i);
            return true;
        }
        if self.pending.len() >= Self::MAX {
            self.pending.pop_front();
        }
        self.pending.push_back((now, frame.to_vec()));
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_echo_drops_second_copies_only() {
        let mut e = LoopbackEcho::default();
        let t = monotonic();
        let (a, b) = (vec![1u8, 2, 3], vec![4u8, 5]);
        // Out a, out b, in a, in b: both echoes dropped, whatever the interleaving.
        assert!(!e.is_echo(&a, t));
        assert!(!e.is_echo(&b, t));
        assert!(e.is_echo(&a, t));
        assert!(e.is_echo(&b, t));
        // The same packet sent twice shows twice.
        assert!(!e.is_echo(&a, t));
        assert!(e.is_echo(&a, t));
        assert!(!e.is_echo(&a, t));
        assert!(e.is_echo(&a, t));
        // An echo that never came is forgotten after the window.
        assert!(!e.is_echo(&b, t));
        assert!(!e.is_echo(&b, t + LoopbackEcho::WINDOW));
        // Bounded.
        for i in 0..1000u32 {
            let _ = e.is_echo(&i.to_be_bytes(), t + LoopbackEcho::WINDOW);
        }
        assert!(e.pending.len() <= LoopbackEcho::MAX);
    }

    #[test]
    fn link_types() {
        assert_eq!(link_type_of(1), Some(DataLink::ETHERNET));
        assert_eq!(link_type_of(772), Some(DataLink::ETHERNET));
        assert_eq!(link_type_of(65534), Some(DataLink::RAW));
        assert_eq!(link_type_of(769), Some(DataLink::RAW));
        assert_eq!(link_type_of(824), None);
        assert_eq!(link_type("lo").unwrap(), DataLink::ETHERNET);
    }

    #[test]
    fn unknown_interface_is_a_clear_error() {
        let e = capture(
            "pgm-no-such-if0",
            Some(Duration::ZERO),
            &Output::default(),
            &mut Vec::new(),
            &mut |_| {},
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("no interface pgm-no-such-if0") && msg.contains("lo"),
            "{msg}"
        );
    }
}
