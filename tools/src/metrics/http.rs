//! A small HTTP/1.1 server for `GET /metrics`, on its own threads, that no client can make
//! wait: every connection has a deadline for its whole request and for its response, and
//! at most [`MAX_CONNECTIONS`] are served at once (more are answered 503 at once and closed).
//! Requests are parsed with `httparse`; each response closes its connection.

use std::{
    io::{self, Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

use pgm::socket::Clock;

/// Connections served at once; a stalled client holds one for at most [`REQUEST_DEADLINE`]
/// plus [`RESPONSE_DEADLINE`].
pub const MAX_CONNECTIONS: usize = 8;
/// The longest a client may take to send its request head, however it trickles in.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// The longest writing a response may take.
pub const RESPONSE_DEADLINE: Duration = Duration::from_secs(2);
/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;

/// What a request gets: status, content type, body.
pub type Response = (u16, &'static str, String);

/// Answers a parsed request: `(method, path)` → response.
pub trait Handler: Send + Sync + 'static {
    /// The response to `method` on `path` (query string removed).
    fn respond(&self, method: &str, path: &str) -> Response;
}

/// A running server; stops (and joins its accept thread) on drop.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` and serves `handler` on a new thread.
    pub fn start(addr: SocketAddr, handler: Arc<dyn Handler>) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || accept_loop(&listener, &handler, &flag))?;
        Ok(Server {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on (with the port chosen when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the blocking accept; whatever happens, the flag stops the loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(100));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, handler: &Arc<dyn Handler>, stop: &AtomicBool) {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let Ok(stream) = conn else {
            // EMFILE and the like: back off rather than spin.
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        if active.load(Ordering::Acquire) >= MAX_CONNECTIONS {
            busy(stream);
            continue;
        }
        active.fetch_add(1, Ordering::AcqRel);
        let (handler, count) = (Arc::clone(handler), Arc::clone(&active));
        let spawned = thread::Builder::new()
            .name("metrics-conn".into())
            .spawn(move || {
                serve(stream, handler.as_ref());
                count.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Over the connection bound: 503 without reading the request.
fn busy(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let _ = write_response(&mut stream, (503, "text/plain", "busy\n".into()), false);
    let _ = stream.shutdown(Shutdown::Both);
}

fn serve(mut stream: TcpStream, handler: &dyn Handler) {
    let response = match read_request(&mut stream) {
        Ok(Some((method, path))) => {
            let head_only = method == "HEAD";
            let r = handler.respond(if head_only { "GET" } else { &method }, &path);
            Some((r, head_only))
        }
        Ok(None) => Some(((400, "text/plain", "bad request\n".into()), false)),
        // Timed out or gone: nothing to answer.
        Err(_) => None,
    };
    if let Some((r, head_only)) = response {
        let _ = stream.set_write_timeout(Some(RESPONSE_DEADLINE));
        let _ = write_response(&mut stream, r, head_only);
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// Reads a request head within [`REQUEST_DEADLINE`]: `Some((method, path))`, `None` when it
/// is not HTTP or too large, an error when the client is too slow or gone.
fn read_request(stream: &mut TcpStream) -> io::Result<Option<(String, String)>> {
    let clock = Clock::new();
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let left = REQUEST_DEADLINE.saturating_sub(clock.elapsed());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let method = req.method.unwrap_or_default().to_owned();
                let path = req.path.unwrap_or_default();
                let path = path.split('?').next().unwrap_or_default().to_owned();
                return Ok(Some((method, path)));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) | Err(_) => return Ok(None),
        }
    }
}

fn write_response(
    stream: &mut TcpStream,
    (status, ctype, body): Response,
    head_only: bool,
) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let allow = if status == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    impl Handler for Echo {
        fn respond(&self, method: &str, path: &str) -> Response {
            (200, "text/plain", format!("{method} {path}"))
        }
    }

    fn get(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(request).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn answers_and_closes() {
        let srv = Server::start("127.0.0.1:0".parse().unwrap(), Arc::new(Echo)).unwrap();
        let r = get(
            srv.local_addr(),
            b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
        );
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.ends_with("\r\n\r\nGET /metrics"), "{r}");
        let r = get(srv.local_addr(), b"HEAD /metrics HTTP/1.0\r\n\r\n");
        assert!(
            r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\n"),
            "{r}"
        );
        let r = get(srv.local_addr(), b"\x16\x03\x01garbage\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 400 "), "{r}");
    }

    #[test]
    fn stalled_clients_neither_block_scrapes_nor_pile_up() {
        let srv = Server::start("127.0.0.1:0".parse().unwrap(), Arc::new(Echo)).unwrap();
        let addr = srv.local_addr();
        // More silent clients than the bound: the rest are turned away, not queued.
        let stalled: Vec<TcpStream> = (0..MAX_CONNECTIONS + 2)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        let clock = Clock::new();
        let mut answered = false;
        while clock.elapsed() < REQUEST_DEADLINE * 3 {
            let r = get(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
            if r.starts_with("HTTP/1.1 200") {
                answered = true;
                break;
            }
            assert!(r.starts_with("HTTP/1.1 503"), "{r}");
            thread::sleep(Duration::from_millis(50));
        }
        assert!(
            answered,
            "a scrape got through once the stalled clients timed out"
        );
        assert!(
            clock.elapsed() < REQUEST_DEADLINE * 2,
            "stalled clients are cut off at the deadline: {:?}",
            clock.elapsed()
        );
        drop(stalled);
    }
}
