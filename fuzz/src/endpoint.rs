//! The checks behind the `endpoint` fuzz target: the endpoint strings of the transports
//! (`pgm::socket::EndpointSpec::parse`, `Endpoint::parse` and `FromStr`) and of `udp-perf`
//! (`tools::udp_perf::UdpEndpoint::parse`), shared with the corpus replay test
//! (`tools/tests/fuzz_corpus.rs`, which includes this file by path).
//!
//! The input is the endpoint text (invalid UTF-8 replaced), tried as given and with each scheme
//! in front of what follows its `://`.
//!
//! - `EndpointSpec::parse` accepts exactly `SCHEME://IFACE;GROUP:PORT` with a non-empty
//!   interface, an IPv4 multicast group and a port in 1..=65535; what it accepts displays to a
//!   string that parses back to the same value and displays the same again (canonical). What it
//!   refuses, the error message quotes verbatim.
//! - `Endpoint::parse` (and `str::parse`) succeeds only where the syntax does, with the same
//!   scheme, group and port, and an interface that has an IPv4 address; its display parses back
//!   to an endpoint on the same interface, group and port.
//! - `UdpEndpoint::parse` takes `udp://`, `epgm://` or `pgm://` and succeeds exactly where
//!   `Endpoint::parse` does on the same text with `epgm://`, giving that endpoint's interface
//!   address, group and port.

use std::net::IpAddr;

use pgm::socket::{Endpoint, EndpointError, EndpointSpec, Scheme};
use tools::udp_perf::UdpEndpoint;

/// Runs every check on `data`; panics (a fuzz finding) when one fails.
pub(crate) fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let s = text.as_ref();
    one(s);
    let rest = s.split_once("://").map_or(s, |(_, r)| r);
    for scheme in ["pgm", "epgm", "udp"] {
        one(&format!("{scheme}://{rest}"));
    }
}

fn one(s: &str) {
    let spec = EndpointSpec::parse(s);
    match &spec {
        Ok(e) => {
            let prefix = format!("{}://", e.scheme.as_str());
            assert!(s.starts_with(&prefix), "{s:?} parsed as {e:?}");
            assert!(!e.iface.is_empty() && !e.iface.contains(';'), "{e:?}");
            assert!(
                matches!(e.group, IpAddr::V4(g) if g.is_multicast()),
                "{e:?}"
            );
            assert!(e.port > 0);
            let shown = e.to_string();
            let again = EndpointSpec::parse(&shown)
                .unwrap_or_else(|err| panic!("{s:?} displays as {shown:?}, refused: {err}"));
            assert_eq!(&again, e, "{s:?} -> {shown:?} parses differently");
            assert_eq!(again.to_string(), shown, "display is not canonical");
        }
        Err(err) => {
            assert!(
                !matches!(
                    err,
                    EndpointError::Io(_) | EndpointError::UnknownInterface { .. }
                ),
                "syntax check did an interface lookup: {err:?}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("{s:?}")),
                "error {msg:?} does not quote the endpoint {s:?}"
            );
        }
    }

    let resolved = Endpoint::parse(s);
    let from_str: Result<Endpoint, _> = s.parse();
    assert_eq!(
        resolved.as_ref().ok(),
        from_str.as_ref().ok(),
        "FromStr and parse disagree"
    );
    match (&spec, &resolved) {
        (Ok(sp), Ok(e)) => {
            assert_eq!((e.scheme, e.group, e.port), (sp.scheme, sp.group, sp.port));
            assert!(e.interface.addr.is_ipv4(), "{e:?}");
            assert!(
                e.interface.name == sp.iface || sp.iface.parse() == Ok(e.interface.addr),
                "{sp:?} resolved to {e:?}"
            );
            let shown = e.to_string();
            let again = Endpoint::parse(&shown)
                .unwrap_or_else(|err| panic!("{s:?} displays as {shown:?}, refused: {err}"));
            assert_eq!(
                (&again.interface.name, again.scheme, again.group, again.port),
                (&e.interface.name, e.scheme, e.group, e.port),
                "{shown:?}"
            );
        }
        (
            Ok(_),
            Err(
                EndpointError::UnknownInterface { .. }
                | EndpointError::Ipv6NotSupported { .. }
                | EndpointError::Io(_),
            ),
        )
        | (Err(_), Err(_)) => {}
        (Ok(sp), Err(err)) => panic!("{sp:?} resolves to error {err:?}"),
        (Err(_), Ok(e)) => panic!("bad syntax {s:?} resolved to {e:?}"),
    }

    let udp = UdpEndpoint::parse(s);
    let rest = s
        .strip_prefix("udp://")
        .or_else(|| s.strip_prefix("epgm://"))
        .or_else(|| s.strip_prefix("pgm://"));
    match (rest, &udp) {
        (None, Ok(u)) => panic!("{s:?} has no udp/epgm/pgm scheme but gave {u:?}"),
        (None, Err(_)) => {}
        (Some(rest), _) => {
            let e = Endpoint::parse(&format!("epgm://{rest}"));
            match (&e, &udp) {
                (Ok(e), Ok(u)) => {
                    assert_eq!(e.scheme, Scheme::Epgm);
                    assert_eq!(
                        (IpAddr::V4(u.iface), IpAddr::V4(u.group), u.port),
                        (e.interface.addr, e.group, e.port)
                    );
                }
                (Err(_), Err(_)) => {}
                (e, u) => panic!("{s:?}: UdpEndpoint {u:?} but Endpoint {e:?}"),
            }
        }
    }
}
