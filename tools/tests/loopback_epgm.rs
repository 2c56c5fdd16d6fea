//! pgm-send → pgm-recv over EPGM on the loopback interface of the root namespace (no root
//! needed). Every endpoint is `epgm://127.0.0.1;239.192.x.y:PORT` with a random group and port
//! per test: IP_MULTICAST_IF is 127.0.0.1 and loop is on, so nothing leaves through a real
//! interface. Every child process is killed when its guard drops, and every wait is bounded.

use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hasher},
    io::{BufRead, BufReader, Read, Write},
    process::{Child, ChildStderr, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use pgm::socket::Clock;

const SEND: &str = env!("CARGO_BIN_EXE_pgm-send");
const RECV: &str = env!("CARGO_BIN_EXE_pgm-recv");
/// No test step may take longer than this.
const STEP_LIMIT: Duration = Duration::from_mins(1);

/// A random loopback endpoint: group 239.192.x.y, port 20000..60000.
fn endpoint() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let r = h.finish();
    let port = 20_000 + (r % 40_000) as u16;
    let (x, y) = ((r >> 16) as u8, ((r >> 24) as u8).max(1));
    format!("epgm://127.0.0.1;239.192.{x}.{y}:{port}")
}

/// A child process killed on drop; its stderr is collected by a thread.
struct Proc {
    name: &'static str,
    child: Child,
    stderr: mpsc::Receiver<String>,
    stderr_seen: Vec<String>,
}

impl Proc {
    fn spawn(name: &'static str, cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stderr: ChildStderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            name,
            child,
            stderr: rx,
            stderr_seen: Vec::new(),
        }
    }

    /// Waits for a stderr line containing `needle`.
    fn wait_for_stderr(&mut self, needle: &str) {
        let clock = Clock::new();
        let limit = Duration::from_secs(10);
        loop {
            let left = limit.saturating_sub(clock.elapsed());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    self.stderr_seen.push(line);
                    if hit {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {
                    panic!(
                        "{}: no {needle:?} on stderr within 10 s; saw {:?}",
                        self.name, self.stderr_seen
                    )
                }
            }
        }
    }

    /// Waits for exit (bounded), returning status, stdout and stderr.
    fn finish(mut self) -> (ExitStatus, String, String) {
        let mut stdout = self.child.stdout.take().expect("stdout is piped");
        let reader = thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let clock = Clock::new();
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                break st;
            }
            assert!(
                clock.elapsed() < STEP_LIMIT,
                "{} did not exit within {STEP_LIMIT:?}",
                self.name
            );
            thread::sleep(Duration::from_millis(10));
        };
        let out = reader.join().expect("stdout reader");
        let mut err = self.stderr_seen.join("\n");
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(200)) {
            err.push('\n');
            err.push_str(&line);
        }
        (status, out, err)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn recv_verify(ep: &str, count: u64) -> Proc {
    let mut p = Proc::spawn(
        "pgm-recv",
        Command::new(RECV).args([
            "--verify",
            "--count",
            &count.to_string(),
            "--timeout",
            "10",
            ep,
        ]),
    );
    p.wait_for_stderr("listening on");
    p
}

fn json(out: &str) -> serde_json::Value {
    let line = out.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

/// Two verifying receivers, one sender of `count` test messages of `size` bytes.
fn transfer(count: u64, size: usize, rate: &str) {
    let ep = endpoint();
    let receivers = [recv_verify(&ep, count), recv_verify(&ep, count)];
    let sender = Proc::spawn(
        "pgm-send",
        Command::new(SEND).args([
            "--count",
            &count.to_string(),
            "--size",
            &size.to_string(),
            "--rate",
            rate,
            "--linger",
            "1",
            &ep,
        ]),
    );
    let (status, out, err) = sender.finish();
    assert!(status.success(), "pgm-send failed: {status}\n{err}");
    let s = json(&out);
    assert_eq!(s["sent"], count, "{out}");
    assert_eq!(s["bytes"], count * size as u64, "{out}");
    for r in receivers {
        let (status, out, err) = r.finish();
        let v = json(&out);
        assert!(status.success(), "pgm-recv failed: {status}\n{out}\n{err}");
        assert_eq!(v["received"], count, "{out}");
        assert_eq!(v["gaps"], 0, "{out}");
        assert_eq!(v["duplicates"], 0, "{out}");
        assert_eq!(v["corrupt"], 0, "{out}");
        assert_eq!(v["unrecoverable"], 0, "{out}");
        assert_eq!(v["first_seq"], 0, "{out}");
        assert_eq!(v["last_seq"], count - 1, "{out}");
        assert_eq!(v["senders"], 1, "{out}");
    }
}

#[test]
fn small_messages_reach_two_receivers_complete() {
    transfer(20_000, 200, "200M");
}

#[test]
fn fragmented_messages_reach_two_receivers_complete() {
    transfer(200, 20 * 1024, "200M");
}

#[test]
fn unlimited_rate_small_messages_are_complete() {
    // Unpaced: the sender is the bottleneck for small messages, and any kernel drop at the
    // receivers must be repaired.
    transfer(20_000, 200, "unlimited");
}

#[test]
fn stdin_lines_are_printed_by_the_receiver() {
    let ep = endpoint();
    let mut r = Proc::spawn(
        "pgm-recv",
        Command::new(RECV).args(["--count", "3", "--timeout", "10", &ep]),
    );
    r.wait_for_stderr("listening on");
    let mut s = Proc::spawn(
        "pgm-send",
        Command::new(SEND)
            .args(["--linger", "0.5", &ep])
            .stdin(Stdio::piped()),
    );
    {
        let mut stdin = s.child.stdin.take().unwrap();
        stdin
            .write_all("hello\nwörld\r\n\nlast line\n".as_bytes())
            .unwrap();
    }
    let (status, out, err) = s.finish();
    assert!(status.success(), "{err}");
    assert_eq!(json(&out)["sent"], 4);
    let (status, out, err) = r.finish();
    assert!(status.success(), "{err}");
    assert_eq!(out, "hello\nwörld\n\n");
}

#[test]
fn a_restarted_sender_is_a_new_session_not_duplicates() {
    let ep = endpoint();
    let r = recv_verify(&ep, 2000);
    for _ in 0..2 {
        let s = Proc::spawn(
            "pgm-send",
            Command::new(SEND).args(["--count", "1000", "--size", "100", "--linger", "0.2", &ep]),
        );
        let (status, _, err) = s.finish();
        assert!(status.success(), "{err}");
    }
    let (status, out, err) = r.finish();
    assert!(status.success(), "{out}\n{err}");
    let v = json(&out);
    assert_eq!(v["received"], 2000, "{out}");
    assert_eq!(v["duplicates"], 0, "{out}");
    assert_eq!(v["gaps"], 0, "{out}");
    assert_eq!(v["senders"], 2, "{out}");
}

#[test]
fn receiver_times_out_short_with_status_1() {
    let ep = endpoint();
    let r = Proc::spawn(
        "pgm-recv",
        Command::new(RECV).args(["--verify", "--count", "5", "--timeout", "0.3", &ep]),
    );
    let (status, out, _) = r.finish();
    assert_eq!(status.code(), Some(1));
    assert_eq!(json(&out)["received"], 0);
}

/// Runs a tool that should fail at once; returns exit code and stderr.
fn fails(bin: &str, args: &[&str]) -> (Option<i32>, String) {
    let p = Proc::spawn("tool", Command::new(bin).args(args).stdin(Stdio::null()));
    let (status, _, err) = p.finish();
    (status.code(), err)
}

#[test]
fn usage_errors_exit_2_and_name_the_problem() {
    let cases: &[(&str, &[&str], &str)] = &[
        (SEND, &["udp://lo;239.1.1.1:5"], "unknown scheme"),
        (RECV, &["epgm://lo:239.1.1.1:5"], "missing ';'"),
        (SEND, &["epgm://lo;239.1.1.1:99999"], "bad port"),
        (RECV, &["epgm://lo;10.1.1.1:5000"], "not a multicast group"),
        (
            SEND,
            &["epgm://nosuchif0;239.1.1.1:5000"],
            "unknown interface",
        ),
        (SEND, &["--bogus", "epgm://lo;239.1.1.1:5000"], "--bogus"),
        (
            RECV,
            &["--window", "7 parsecs", "epgm://lo;239.1.1.1:5000"],
            "bad window",
        ),
        (
            SEND,
            &["--rate", "fast", "epgm://lo;239.1.1.1:5000"],
            "bad rate",
        ),
        (
            SEND,
            &["--count", "1", "--size", "11", "epgm://lo;239.1.1.1:5000"],
            "at least 12 bytes",
        ),
        (SEND, &[], "ENDPOINT"),
    ];
    for (bin, args, needle) in cases {
        let (code, err) = fails(bin, args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err:?}");
    }
}

/// Raw PGM without CAP_NET_RAW: as root, drop the capability with setpriv; otherwise run as is.
#[test]
fn raw_pgm_without_privilege_says_so() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    let ep = endpoint().replacen("epgm://", "pgm://", 1);
    let (code, err) = if root {
        if Command::new("setpriv").arg("--version").output().is_err() {
            eprintln!("setpriv not installed; skipping");
            return;
        }
        fails(
            "setpriv",
            &[
                "--bounding-set",
                "-net_raw",
                "--inh-caps",
                "-net_raw",
                SEND,
                "--linger",
                "0",
                &ep,
            ],
        )
    } else {
        fails(SEND, &["--linger", "0", &ep])
    };
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("raw PGM needs root or CAP_NET_RAW; use epgm:// instead"),
        "{err}"
    );
}
