//! ZeroMQ-style endpoint URLs: `pgm://IFACE;GROUP:PORT` (raw IP) and `epgm://IFACE;GROUP:PORT`
//! (UDP), as libzmq spells them (docs/wire-compatibility.md).

use std::{fmt, str::FromStr};

use pgm::socket::{Endpoint, EndpointError, EndpointSpec};

/// How PGM packets travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `pgm://`: PGM directly over IP (protocol 113); needs root or CAP_NET_RAW.
    Pgm,
    /// `epgm://`: PGM in UDP datagrams, one UDP port for unicast and multicast.
    Epgm,
}

impl Scheme {
    /// `"pgm"` or `"epgm"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Pgm => "pgm",
            Scheme::Epgm => "epgm",
        }
    }
}

const EXPECTED: &str = "pgm://IFACE;GROUP:PORT or epgm://IFACE;GROUP:PORT";

/// An endpoint URL, its interface looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Raw PGM or UDP encapsulation.
    pub scheme: Scheme,
    /// Interface, group and port.
    pub endpoint: Endpoint,
}

impl Url {
    /// Parses `pgm://IFACE;GROUP:PORT` or `epgm://IFACE;GROUP:PORT`. IFACE is an interface
    /// name (`lo`, `eth0`) or one of this host's IPv4 addresses; GROUP an IPv4 multicast group;
    /// PORT 1..65535.
    ///
    /// ```
    /// use epgm::{Scheme, Url};
    /// let u = Url::parse("epgm://127.0.0.1;239.192.0.1:7500").unwrap();
    /// assert_eq!(u.scheme, Scheme::Epgm);
    /// assert_eq!(u.endpoint.interface.name, "lo");
    /// assert_eq!(u.endpoint.port, 7500);
    /// assert!(Url::parse("epgm://lo;10.0.0.1:7500").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, EndpointError> {
        let (scheme, spec) = Self::parse_syntax(s)?;
        Ok(Url {
            scheme,
            endpoint: spec.resolve()?,
        })
    }

    /// Checks the syntax only (no interface lookup).
    pub fn parse_syntax(s: &str) -> Result<(Scheme, EndpointSpec), EndpointError> {
        let (scheme, rest) = if let Some(rest) = s.strip_prefix("epgm://") {
            (Scheme::Epgm, rest)
        } else if let Some(rest) = s.strip_prefix("pgm://") {
            (Scheme::Pgm, rest)
        } else {
            return Err(EndpointError::Scheme {
                endpoint: s.to_owned(),
                expected: EXPECTED,
            });
        };
        Ok((scheme, EndpointSpec::parse_within(rest, s)?))
    }
}

impl FromStr for Url {
    type Err = EndpointError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Url::parse(s)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        Url::parse_syntax(s).unwrap_err().to_string()
    }

    #[test]
    fn schemes() {
        let (scheme, spec) = Url::parse_syntax("pgm://eth0;239.192.1.1:5555").unwrap();
        assert_eq!((scheme, spec.port), (Scheme::Pgm, 5555));
        let (scheme, _) = Url::parse_syntax("epgm://10.0.0.1;224.0.0.251:65535").unwrap();
        assert_eq!(scheme, Scheme::Epgm);
        assert!(err("udp://lo;239.1.1.1:5").contains("unknown scheme"));
        assert!(err("lo;239.1.1.1:5").contains("unknown scheme"));
        // Errors after the scheme quote the whole URL.
        assert!(err("epgm://lo:239.1.1.1:5").contains("\"epgm://lo:239.1.1.1:5\": missing ';'"));
        let u = Url::parse("epgm://lo;239.192.7.7:7500").unwrap();
        assert_eq!(u.to_string(), "epgm://lo;239.192.7.7:7500");
    }
}
