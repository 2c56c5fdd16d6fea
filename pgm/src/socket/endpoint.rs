//! Where a session lives: `IFACE;GROUP:PORT`, the part of a ZeroMQ-style endpoint after its
//! scheme (docs/wire-compatibility.md). An IPv6 group may be written in brackets
//! (`eth0;[ff08::1]:7500`, as in URLs) or bare (`eth0;ff08::1:7500`, as libzmq takes it: the
//! port is split off at the last `:`). The `epgm` crate parses the scheme (`pgm://` raw IP,
//! `epgm://` UDP) and hands the rest to [`EndpointSpec::parse_within`].

use std::{fmt, io, net::IpAddr, str::FromStr};

use crate::{
    sys::mmsg::needs_scope,
    transport::{find_interface_for, interfaces, Interface},
};

/// Why an endpoint string was rejected. Each message quotes the endpoint and names the part
/// that is wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The scheme (`pgm://`, `epgm://`, …) is not one the opener knows.
    #[error("endpoint {endpoint:?}: unknown scheme, expected {expected}")]
    Scheme {
        /// The whole endpoint.
        endpoint: String,
        /// What the opener accepts, e.g. "pgm://IFACE;GROUP:PORT or epgm://IFACE;GROUP:PORT".
        expected: &'static str,
    },
    /// No `;` between the interface and the group.
    #[error("endpoint {0:?}: missing ';' between interface and group, expected IFACE;GROUP:PORT")]
    MissingSemicolon(String),
    /// Nothing before the `;`.
    #[error("endpoint {0:?}: missing interface before ';' (an interface name like lo or eth0, its index, or one of its addresses)")]
    MissingInterface(String),
    /// No `:PORT` at the end.
    #[error("endpoint {0:?}: missing ':PORT' after the group")]
    MissingPort(String),
    /// The port is not a number in 1..=65535.
    #[error("endpoint {endpoint:?}: bad port {port:?}, expected 1..65535")]
    BadPort {
        /// The whole endpoint.
        endpoint: String,
        /// The port text.
        port: String,
    },
    /// The group is not an IP address.
    #[error("endpoint {endpoint:?}: group {group:?} is not an IP address")]
    BadGroup {
        /// The whole endpoint.
        endpoint: String,
        /// The group text.
        group: String,
    },
    /// The group is an address but not a multicast one.
    #[error(
        "endpoint {endpoint:?}: {group} is not a multicast group (IPv4 224.0.0.0/4, IPv6 ff00::/8)"
    )]
    NotMulticast {
        /// The whole endpoint.
        endpoint: String,
        /// The address given.
        group: IpAddr,
    },
    /// The interface is given by an address of the other family than the group's.
    #[error("endpoint {endpoint:?}: interface address {iface} and group {group} are of different address families")]
    FamilyMismatch {
        /// The whole endpoint.
        endpoint: String,
        /// The interface address given.
        iface: IpAddr,
        /// The group.
        group: IpAddr,
    },
    /// The interface named has no address of the group's family.
    #[error("endpoint {endpoint:?}: interface {iface:?} has no {family} address (the group is {family})")]
    NoAddressOfFamily {
        /// The whole endpoint.
        endpoint: String,
        /// The interface text.
        iface: String,
        /// "IPv4" or "IPv6".
        family: &'static str,
    },
    /// A link-local interface address that several interfaces have, without a zone.
    #[error("endpoint {endpoint:?}: link-local address {iface} is on several interfaces; give its scope, e.g. {iface}%eth0, or the interface name")]
    ScopeMissing {
        /// The whole endpoint.
        endpoint: String,
        /// The address given.
        iface: IpAddr,
    },
    /// No local interface has that name, index or address.
    #[error("endpoint {endpoint:?}: unknown interface {iface:?} (no local interface has that name, index or address)")]
    UnknownInterface {
        /// The whole endpoint.
        endpoint: String,
        /// The interface text.
        iface: String,
    },
    /// Listing the interfaces failed.
    #[error("listing network interfaces: {0}")]
    Io(#[from] io::Error),
}

/// The parts of an endpoint string, before the interface is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    /// The interface text (a name or an address).
    pub iface: String,
    /// The multicast group.
    pub group: IpAddr,
    /// The port: PGM data-destination port and, for EPGM, the UDP port.
    pub port: u16,
}

impl EndpointSpec {
    /// Checks the syntax of `IFACE;GROUP:PORT` only (no interface lookup).
    pub fn parse(s: &str) -> Result<Self, EndpointError> {
        Self::parse_within(s, s)
    }

    /// [`EndpointSpec::parse`] of `rest`, the part of `whole` after its scheme: errors quote
    /// `whole`.
    pub fn parse_within(rest: &str, whole: &str) -> Result<Self, EndpointError> {
        let s = whole;
        let Some((iface, group_port)) = rest.split_once(';') else {
            return Err(EndpointError::MissingSemicolon(s.to_owned()));
        };
        if iface.is_empty() {
            return Err(EndpointError::MissingInterface(s.to_owned()));
        }
        // The port is split off at the last ':' (libzmq `init_address`); a bracketed IPv6
        // group with nothing after it has no port.
        let Some((group, port)) = group_port.rsplit_once(':') else {
            return Err(EndpointError::MissingPort(s.to_owned()));
        };
        if group_port.starts_with('[') && group_port.ends_with(']') {
            return Err(EndpointError::MissingPort(s.to_owned()));
        }
        let port = match port.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => {
                return Err(EndpointError::BadPort {
                    endpoint: s.to_owned(),
                    port: port.to_owned(),
                })
            }
        };
        let group_text = group.trim_start_matches('[').trim_end_matches(']');
        let group: IpAddr = group_text.parse().map_err(|_| EndpointError::BadGroup {
            endpoint: s.to_owned(),
            group: group.to_owned(),
        })?;
        if !group.is_multicast() {
            return Err(EndpointError::NotMulticast {
                endpoint: s.to_owned(),
                group,
            });
        }
        Ok(EndpointSpec {
            iface: iface.to_owned(),
            group,
            port,
        })
    }

    /// Looks the interface up: by address (`fe80::1%eth0` for a link-local one on several
    /// interfaces), or by name or index, taking its first address of the group's family
    /// ([`find_interface_for`]).
    pub fn resolve(self) -> Result<Endpoint, EndpointError> {
        let endpoint = self.to_string();
        let v6 = self.group.is_ipv6();
        let family = if v6 { "IPv6" } else { "IPv4" };
        if let Ok(addr) = self.iface.parse::<IpAddr>() {
            if addr.is_ipv6() != v6 {
                return Err(EndpointError::FamilyMismatch {
                    endpoint,
                    iface: addr,
                    group: self.group,
                });
            }
            let holders = interfaces()?.into_iter().filter(|i| i.addr == addr).count();
            if holders > 1 && matches!(addr, IpAddr::V6(a) if needs_scope(a)) {
                return Err(EndpointError::ScopeMissing {
                    endpoint,
                    iface: addr,
                });
            }
        }
        let Some(interface) = find_interface_for(&self.iface, v6)? else {
            let named = find_interface_for(&self.iface, !v6)?.is_some();
            return Err(if named {
                EndpointError::NoAddressOfFamily {
                    endpoint,
                    iface: self.iface,
                    family,
                }
            } else {
                EndpointError::UnknownInterface {
                    endpoint,
                    iface: self.iface,
                }
            });
        };
        Ok(Endpoint {
            interface,
            group: self.group,
            port: self.port,
        })
    }
}

impl fmt::Display for EndpointSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{};{}:{}", self.iface, Bracketed(self.group), self.port)
    }
}

/// An IPv6 address in brackets, an IPv4 one as it is.
struct Bracketed(IpAddr);

impl fmt::Display for Bracketed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}"),
            IpAddr::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// A parsed endpoint with its interface looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The interface: multicast goes out and is joined here; its address is our NLA.
    pub interface: Interface,
    /// The multicast group.
    pub group: IpAddr,
    /// PGM data-destination port and, for EPGM, the UDP port of all traffic.
    pub port: u16,
}

impl Endpoint {
    /// Parses `IFACE;GROUP:PORT`. IFACE is an interface name (`lo`, `eth0`), index, or one
    /// of this host's addresses; GROUP an IPv4 or IPv6 multicast group (IPv6 in brackets or
    /// bare); PORT 1..65535.
    ///
    /// ```
    /// use pgm::socket::Endpoint;
    /// let e = Endpoint::parse("127.0.0.1;239.192.0.1:7500").unwrap();
    /// assert_eq!(e.interface.name, "lo");
    /// assert_eq!(e.port, 7500);
    /// assert!(Endpoint::parse("lo;10.0.0.1:7500").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, EndpointError> {
        EndpointSpec::parse(s)?.resolve()
    }

    /// [`Endpoint::parse`] of `rest`, the part of `whole` after its scheme: errors quote
    /// `whole`.
    pub fn parse_within(rest: &str, whole: &str) -> Result<Self, EndpointError> {
        EndpointSpec::parse_within(rest, whole)?.resolve()
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Endpoint::parse(s)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{};{}:{}",
            self.interface.name,
            Bracketed(self.group),
            self.port
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        EndpointSpec::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn good_syntax() {
        let e = EndpointSpec::parse("eth0;239.192.1.1:5555").unwrap();
        assert_eq!(e.iface, "eth0");
        assert_eq!(e.group, "239.192.1.1".parse::<IpAddr>().unwrap());
        assert_eq!(e.port, 5555);
        assert_eq!(e.to_string(), "eth0;239.192.1.1:5555");
        let e = EndpointSpec::parse("10.0.0.1;224.0.0.251:65535").unwrap();
        assert_eq!(e.port, 65535);
    }

    #[test]
    fn bad_syntax_names_the_problem() {
        assert!(err("lo:239.1.1.1:5").contains("missing ';'"));
        assert!(err(";239.1.1.1:5").contains("missing interface"));
        assert!(err("lo;239.1.1.1").contains("missing ':PORT'"));
        assert!(err("lo;239.1.1.1:0").contains("bad port \"0\""));
        assert!(err("lo;239.1.1.1:65536").contains("bad port"));
        assert!(err("lo;239.1.1.1:x").contains("bad port"));
        assert!(err("lo;239.1.1:5").contains("not an IP address"));
        assert!(err("lo;10.1.1.1:5").contains("not a multicast group"));
        assert!(err("lo;[fe80::1]:5").contains("not a multicast group"));
        assert!(err("lo;[ff08::1]").contains("missing ':PORT'"));
        let whole = EndpointSpec::parse_within("lo;1.2.3.4:5", "epgm://lo;1.2.3.4:5");
        assert!(whole
            .unwrap_err()
            .to_string()
            .contains("\"epgm://lo;1.2.3.4:5\""));
    }

    #[test]
    fn ipv6_groups_bracketed_or_bare() {
        let g: IpAddr = "ff08::1".parse().unwrap();
        for text in ["eth0;[ff08::1]:7500", "eth0;ff08::1:7500"] {
            let e = EndpointSpec::parse(text).unwrap();
            assert_eq!((e.iface.as_str(), e.group, e.port), ("eth0", g, 7500));
            assert_eq!(e.to_string(), "eth0;[ff08::1]:7500");
        }
        let e = EndpointSpec::parse("fd00::1;ff3e::8000:1:5555").unwrap();
        assert_eq!(e.iface, "fd00::1");
        assert_eq!(e.group, "ff3e::8000:1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn ipv6_interface_errors_say_what_is_wrong() {
        let msg = Endpoint::parse("127.0.0.1;[ff08::1]:5")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("different address families"), "{msg}");
        let msg = Endpoint::parse("::1;239.1.1.1:5").unwrap_err().to_string();
        assert!(msg.contains("different address families"), "{msg}");
        // lo has ::1 on most hosts; where it has no IPv6 address at all the error says so.
        match Endpoint::parse("lo;[ff08::1]:5") {
            Ok(e) => assert_eq!(e.interface.addr, "::1".parse::<IpAddr>().unwrap()),
            Err(e) => assert!(e.to_string().contains("has no IPv6 address"), "{e}"),
        }
    }

    #[test]
    fn interfaces_are_resolved() {
        let e = Endpoint::parse("lo;239.192.7.7:7500").unwrap();
        assert!(e.interface.loopback);
        assert_eq!(e.interface.addr, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(e.to_string(), "lo;239.192.7.7:7500");
        let msg = Endpoint::parse("nosuchif9;239.1.1.1:5")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("unknown interface \"nosuchif9\""), "{msg}");
        let msg = Endpoint::parse("203.0.113.9;239.1.1.1:5")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("unknown interface"), "{msg}");
    }
}
