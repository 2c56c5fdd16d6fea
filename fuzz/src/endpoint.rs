//! The checks behind the `endpoint` fuzz target: the endpoint strings of the transports
//! (`epgm::Url`, and `pgm::socket::EndpointSpec` / `Endpoint` for what follows the scheme) and
//! of `udp-perf` (`tools::cli::UdpEndpoint::parse`), shared with the corpus replay test
//! (`tools/tests/fuzz_corpus.rs`, which includes this file by path).
//!
//! The input is the endpoint text (invalid UTF-8 replaced), tried as given and with each scheme
//! in front of what follows its `://`.
//!
//! - `Url::parse_syntax` accepts exactly `SCHEME://IFACE;GROUP:PORT` (scheme `pgm` or `epgm`)
//!   with a non-empty interface, an IPv4 multicast group and a port in 1..=65535; what it
//!   accepts displays (`EndpointSpec` after the scheme) to a string that parses back to the same
//!   value and displays the same again (canonical). What it refuses, the error message quotes
//!   verbatim.
//! - `Url::parse` (and `str::parse`) succeeds only where the syntax does, with the same scheme,
//!   group and port, and an interface that has an IPv4 address; its display parses back to a
//!   URL on the same interface, group and port.
//! - `UdpEndpoint::parse` takes `udp://`, `epgm://` or `pgm://` and succeeds exactly where
//!   `Url::parse` does on the same text with `epgm://`, giving that endpoint's interface
//!   address, group and port.

use std::net::IpAddr;

use epgm::Url;
use pgm::socket::{EndpointError, EndpointSpec};
use tools::cli::UdpEndpoint;

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

/// `spec` (an endpoint's interface text) names `iface`: by name, index, address, or
/// address with a zone.
fn names(spec: &str, iface: &pgm::transport::Interface) -> bool {
    let (addr, zone) = spec.split_once('%').unwrap_or((spec, ""));
    iface.name == spec
        || spec.trim_start_matches('%').parse() == Ok(iface.index)
        || (addr.parse() == Ok(iface.addr)
            && (zone.is_empty() || zone == iface.name || zone.parse() == Ok(iface.index)))
}

fn one(s: &str) {
    let spec = Url::parse_syntax(s);
    match &spec {
        Ok((scheme, e)) => {
            let prefix = format!("{}://", scheme.as_str());
            assert!(s.starts_with(&prefix), "{s:?} parsed as {e:?}");
            assert!(!e.iface.is_empty() && !e.iface.contains(';'), "{e:?}");
            assert!(e.group.is_multicast(), "{e:?}");
            assert!(e.port > 0);
            let shown = format!("{prefix}{e}");
            let again = Url::parse_syntax(&shown)
                .unwrap_or_else(|err| panic!("{s:?} displays as {shown:?}, refused: {err}"));
            assert_eq!(
                &again,
                &(*scheme, e.clone()),
                "{s:?} -> {shown:?} parses differently"
            );
            assert_eq!(
                format!("{prefix}{}", again.1),
                shown,
                "display is not canonical"
            );
            assert_eq!(EndpointSpec::parse(&e.to_string()).ok().as_ref(), Some(e));
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

    let resolved = Url::parse(s);
    let from_str: Result<Url, _> = s.parse();
    assert_eq!(
        resolved.as_ref().ok(),
        from_str.as_ref().ok(),
        "FromStr and parse disagree"
    );
    match (&spec, &resolved) {
        (Ok((scheme, sp)), Ok(u)) => {
            let e = &u.endpoint;
            assert_eq!((u.scheme, e.group, e.port), (*scheme, sp.group, sp.port));
            assert_eq!(e.interface.addr.is_ipv4(), e.group.is_ipv4(), "{e:?}");
            assert!(names(&sp.iface, &e.interface), "{sp:?} resolved to {e:?}");
            let shown = u.to_string();
            let again = Url::parse(&shown)
                .unwrap_or_else(|err| panic!("{s:?} displays as {shown:?}, refused: {err}"));
            assert_eq!(
                (
                    &again.endpoint.interface.name,
                    again.scheme,
                    again.endpoint.group,
                    again.endpoint.port
                ),
                (&e.interface.name, u.scheme, e.group, e.port),
                "{shown:?}"
            );
        }
        (
            Ok(_),
            Err(
                EndpointError::UnknownInterface { .. }
                | EndpointError::FamilyMismatch { .. }
                | EndpointError::NoAddressOfFamily { .. }
                | EndpointError::ScopeMissing { .. }
                | EndpointError::Io(_),
            ),
        )
        | (Err(_), Err(_)) => {}
        (Ok(sp), Err(err)) => panic!("{sp:?} resolves to error {err:?}"),
        (Err(_), Ok(u)) => panic!("bad syntax {s:?} resolved to {u:?}"),
    }

    let udp = UdpEndpoint::parse(s);
    let rest = s
        .strip_prefix("udp://")
        .or_else(|| s.strip_prefix("epgm://"))
        .or_else(|| s.strip_prefix("pgm://"));
    match (rest, &udp) {
        (None, Ok(u)) => panic!("{s:?} has no udp/epgm/pgm scheme but gave {u:?}"),
        (None, Err(_)) => {}
        (Some(rest), _) => match (&Url::parse(&format!("epgm://{rest}")), &udp) {
            (Ok(e), Ok(u)) => assert_eq!(
                (IpAddr::V4(u.iface), IpAddr::V4(u.group), u.port),
                (e.endpoint.interface.addr, e.endpoint.group, e.endpoint.port)
            ),
            // udp-perf (the plain UDP baseline) is IPv4 only.
            (Err(_), Err(_)) => {}
            (Ok(e), Err(_)) if e.endpoint.group.is_ipv6() => {}
            (e, u) => panic!("{s:?}: UdpEndpoint {u:?} but Url {e:?}"),
        },
    }
}
