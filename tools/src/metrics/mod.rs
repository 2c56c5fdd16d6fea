//! `--metrics ADDR:PORT`: Prometheus text exposition of a tool's socket on `GET /metrics`,
//! served from threads of its own (see [`http`]) while the tool runs, and for
//! `--metrics-linger` seconds after it is done. The metrics are listed in docs/metrics.md.
//!
//! A scrape reads the socket's monitor ([`pgm::socket::SendMonitor`],
//! [`pgm::socket::RecvMonitor`]): counters the IO thread publishes anyway, and a per-sender
//! snapshot it hands over at the end of its current turn. The data path never waits for a
//! scrape.

mod collect;
pub mod http;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{Arc, PoisonError},
    time::Duration,
};

use pgm::socket::{RecvMonitor, SendMonitor};
use prometheus_client::{encoding::prometheus_text, registry::Registry};

pub use self::collect::AppCounters;
use self::{
    collect::{Socket, ToolCollector},
    http::{Handler, Response, Server},
};
use crate::cli::{parse_secs, ToolError};

/// The metrics options every PGM tool takes.
#[derive(Debug, Clone, clap::Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics on http://ADDR:PORT/metrics (`:PORT` or `PORT` alone bind
    /// 127.0.0.1; port 0 picks a free one, printed on stderr). See docs/metrics.md.
    #[arg(long, value_parser = parse_metrics_addr, value_name = "ADDR:PORT")]
    pub metrics: Option<SocketAddr>,
    /// With --metrics: keep serving this many seconds after the run is over (its final
    /// numbers, `pgm_app_finished` 1), so the last scrape sees them.
    #[arg(long, value_parser = parse_secs, default_value = "0", value_name = "SECS")]
    pub metrics_linger: Duration,
}

/// Parses `ADDR:PORT`, `[V6]:PORT`, `:PORT` or `PORT` (the last two on 127.0.0.1).
pub fn parse_metrics_addr(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    let port_only = t.strip_prefix(':').unwrap_or(t);
    if !port_only.is_empty() && port_only.chars().all(|c| c.is_ascii_digit()) {
        return port_only
            .parse::<u16>()
            .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p))
            .map_err(|_| format!("bad port in {s:?}: expected 0..=65535"));
    }
    t.parse::<SocketAddr>().map_err(|_| {
        format!("bad metrics address {s:?}: expected ADDR:PORT with an IP address (127.0.0.1:9100, [::1]:9100), :PORT or PORT")
    })
}

/// What the tool is, for the labels every series carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `pgm-send`, `pgm-pub`.
    Sender,
    /// `pgm-recv`, `pgm-sub`.
    Receiver,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Sender => "sender",
            Role::Receiver => "receiver",
        }
    }
}

/// A tool's metrics: serving when `--metrics` was given, else only counting (cheaply).
#[derive(Debug)]
pub struct Metrics {
    collector: Arc<ToolCollector>,
    server: Option<Server>,
    linger: Duration,
}

impl Metrics {
    /// Starts serving if `args` asks for it. The address is bound here, before the run, so a
    /// port in use fails the tool at once.
    pub fn start(
        args: &MetricsArgs,
        tool: &str,
        role: Role,
        endpoint: &str,
    ) -> Result<Metrics, ToolError> {
        let collector = Arc::new(ToolCollector::default());
        let server = match args.metrics {
            None => None,
            Some(addr) => {
                let labels = [
                    ("role", role.as_str().to_owned()),
                    ("tool", tool.to_owned()),
                    ("endpoint", endpoint.to_owned()),
                ]
                .map(|(k, v)| (k.into(), v.into()));
                let mut registry = Registry::with_prefix_and_labels("pgm", labels.into_iter());
                registry.register_collector(Box::new(Arc::clone(&collector)));
                let handler = Arc::new(Exposition { registry });
                let server = Server::start(addr, handler).map_err(|e| {
                    ToolError::Usage(format!("--metrics {addr}: cannot listen: {e}"))
                })?;
                eprintln!("{tool}: metrics on http://{}/metrics", server.local_addr());
                Some(server)
            }
        };
        Ok(Metrics {
            collector,
            server,
            linger: args.metrics_linger,
        })
    }

    /// Metrics that serve nothing (tests, tools run as a library).
    pub fn off() -> Metrics {
        Metrics {
            collector: Arc::default(),
            server: None,
            linger: Duration::ZERO,
        }
    }

    /// The address served, if any.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(Server::local_addr)
    }

    /// The tool's own counts (set them at progress ticks and at the end).
    pub fn app(&self) -> &AppCounters {
        &self.collector.app
    }

    /// Exposes a sender's socket.
    pub fn attach_sender(&self, m: SendMonitor) {
        self.attach(Socket::Send(m));
    }

    /// Exposes a receiver's socket, with a series per sender it tracks.
    pub fn attach_receiver(&self, m: RecvMonitor) {
        self.attach(Socket::Recv(m));
    }

    fn attach(&self, s: Socket) {
        *self
            .collector
            .socket
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(s);
    }

    /// The run is over (its summary printed): marks the numbers final and, when serving,
    /// keeps serving for the linger time.
    pub fn finish(self) {
        self.collector.app.finish();
        if self.server.is_some() && !self.linger.is_zero() {
            std::thread::sleep(self.linger);
        }
    }
}

/// `GET /metrics` → the registry in Prometheus text format 0.0.4.
#[derive(Debug)]
struct Exposition {
    registry: Registry,
}

impl Handler for Exposition {
    fn respond(&self, method: &str, path: &str) -> Response {
        if path != "/metrics" {
            return (
                404,
                "text/plain; charset=utf-8",
                "not found: try /metrics\n".into(),
            );
        }
        if method != "GET" {
            return (
                405,
                "text/plain; charset=utf-8",
                "method not allowed\n".into(),
            );
        }
        let mut body = String::with_capacity(16 * 1024);
        match prometheus_text::encode(&mut body, &self.registry) {
            Ok(()) => (200, prometheus_text::CONTENT_TYPE, body),
            Err(_) => (500, "text/plain; charset=utf-8", "encoding failed\n".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_addresses() {
        let local = |p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p);
        assert_eq!(parse_metrics_addr("9100"), Ok(local(9100)));
        assert_eq!(parse_metrics_addr(":9100"), Ok(local(9100)));
        assert_eq!(parse_metrics_addr(":0"), Ok(local(0)));
        assert_eq!(
            parse_metrics_addr("0.0.0.0:9100"),
            Ok("0.0.0.0:9100".parse().unwrap())
        );
        assert_eq!(
            parse_metrics_addr("[::1]:9100"),
            Ok("[::1]:9100".parse().unwrap())
        );
        for bad in [
            "",
            ":",
            "99999",
            ":65536",
            "localhost:9100",
            "1.2.3.4",
            "1.2.3.4:x",
            "[::1]",
        ] {
            assert!(parse_metrics_addr(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_metric_is_documented() {
        let doc = include_str!("../../../docs/metrics.md");
        for name in collect::all_names() {
            assert!(
                doc.contains(&format!("`{name}`")),
                "{name} is not in docs/metrics.md"
            );
        }
    }

    #[test]
    fn exposition_without_a_socket_has_the_app_counters() {
        let args = MetricsArgs {
            metrics: Some("127.0.0.1:0".parse().unwrap()),
            metrics_linger: Duration::ZERO,
        };
        let m =
            Metrics::start(&args, "pgm-test", Role::Sender, "epgm://lo;239.1.2.3:7500").unwrap();
        m.app().set(3, 30);
        let e = Exposition {
            registry: {
                let mut r = Registry::with_prefix("pgm");
                r.register_collector(Box::new(Arc::clone(&m.collector)));
                r
            },
        };
        let (status, _, body) = e.respond("GET", "/metrics");
        assert_eq!(status, 200);
        assert!(body.contains("pgm_app_messages_total 3\n"), "{body}");
        assert!(body.contains("pgm_app_finished 0\n"), "{body}");
        assert_eq!(e.respond("GET", "/").0, 404);
        assert_eq!(e.respond("POST", "/metrics").0, 405);
    }
}
