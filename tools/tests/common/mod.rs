//! What the loopback tests of the tools share: a random EPGM endpoint on the loopback, a child
//! process killed when its guard drops (every wait bounded), and the JSON summary line.

use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hasher},
    io::{BufRead, BufReader, Read, Write},
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc::{self, RecvTimeoutError},
    thread,
    time::Duration,
};

use pgm::socket::Clock;

/// No test step may take longer than this.
pub(crate) const STEP_LIMIT: Duration = Duration::from_mins(1);

/// A random loopback endpoint: group 239.192.x.y, port 28000..32000 (below the kernel's ephemeral
/// range, so no socket bound to port 0 can be holding it).
#[allow(dead_code, reason = "not every test binary uses this port window")]
pub(crate) fn endpoint() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let r = h.finish();
    let port = 28_000 + (r % 4_000) as u16;
    let (x, y) = ((r >> 16) as u8, ((r >> 24) as u8).max(1));
    format!("epgm://127.0.0.1;239.192.{x}.{y}:{port}")
}

/// A child process killed on drop; its stderr is collected by a thread.
pub(crate) struct Proc {
    /// The name used in messages.
    pub(crate) name: String,
    child: Child,
    stderr: mpsc::Receiver<String>,
    stderr_seen: Vec<String>,
}

impl Proc {
    /// Spawns `cmd` with stdout and stderr piped; `name` is used in messages.
    pub(crate) fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            name: name.to_owned(),
            child,
            stderr: rx,
            stderr_seen: Vec::new(),
        }
    }

    /// The child's process id.
    #[allow(
        dead_code,
        reason = "not every test binary looks at its children's memory"
    )]
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends signal `sig` to the child.
    #[allow(dead_code, reason = "not every test binary signals its children")]
    pub(crate) fn signal(&self, sig: i32) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) with a child's pid (not yet reaped: `self.child` is not waited for).
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(
            rc,
            0,
            "{}: kill: {}",
            self.name,
            std::io::Error::last_os_error()
        );
    }

    /// Spawns a receiving tool ([`Proc::spawn`]) and waits until it says it is listening.
    #[allow(dead_code, reason = "not every test binary starts a receiver this way")]
    pub(crate) fn spawn_listening(name: &str, cmd: &mut Command) -> Proc {
        let mut p = Proc::spawn(name, cmd);
        p.wait_for_stderr("listening on");
        p
    }

    /// Waits (at most 10 s) for a stderr line containing `needle`; returns it.
    pub(crate) fn wait_for_stderr(&mut self, needle: &str) -> String {
        let clock = Clock::new();
        loop {
            let left = Duration::from_secs(10).saturating_sub(clock.elapsed());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    self.stderr_seen.push(line.clone());
                    if hit {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => panic!(
                    "{}: no {needle:?} on stderr within 10 s; saw {:?}",
                    self.name, self.stderr_seen
                ),
            }
        }
    }

    /// Reads stdout line by line on a thread from now on, for a test that reads a tool's
    /// output while it still runs (then wait with [`Proc::wait`], not [`Proc::finish`]).
    #[allow(
        dead_code,
        reason = "not every test binary reads stdout while the tool runs"
    )]
    pub(crate) fn stdout_lines(&mut self) -> mpsc::Receiver<String> {
        let stdout = self
            .child
            .stdout
            .take()
            .expect("stdout is piped and not yet taken");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    }

    /// Waits for exit (bounded), after [`Proc::stdout_lines`]; returns the status and stderr.
    #[allow(
        dead_code,
        reason = "not every test binary reads stdout while the tool runs"
    )]
    pub(crate) fn wait(mut self) -> (ExitStatus, String) {
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
        let mut err = self.stderr_seen.join("\n");
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(200)) {
            err.push('\n');
            err.push_str(&line);
        }
        (status, err)
    }

    /// Waits for exit (bounded), returning status, stdout and stderr.
    pub(crate) fn finish(mut self) -> (ExitStatus, String, String) {
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

/// Lets a sending tool run `--count` far beyond what it can send in half a second, then sends
/// it `sig`: it must stop sending, still close and report, and exit 1 (`--count` not
/// reached), saying so on stderr. Returns the `sent` of its JSON line.
#[allow(dead_code, reason = "not every test binary interrupts a sender")]
pub(crate) fn interrupt_sender(sender: Proc, sig: i32) -> u64 {
    let tool = sender.name.clone();
    thread::sleep(Duration::from_millis(500));
    sender.signal(sig);
    let (status, out, err) = sender.finish();
    assert_eq!(status.code(), Some(1), "{status}\n{out}\n{err}");
    assert!(
        err.contains(&format!("{tool}: interrupted after ")),
        "{err}"
    );
    let sent = json(&out)["sent"].as_u64().unwrap_or(0);
    assert!((1..100_000_000).contains(&sent), "{out}");
    sent
}

/// Checks a verifying receiver's summary after [`interrupt_sender`]: exactly `sent` messages,
/// gap-free and intact, exit status 0.
#[allow(dead_code, reason = "not every test binary interrupts a sender")]
pub(crate) fn assert_received_whole(receiver: Proc, sent: u64) {
    let name = receiver.name.clone();
    let (status, out, err) = receiver.finish();
    assert!(status.success(), "{name}: {status}\n{err}");
    let v = json(&out);
    assert_eq!(v["received"], sent, "{out}\n{err}");
    for k in ["gaps", "corrupt", "unrecoverable"] {
        assert_eq!(v[k], 0, "{k}: {out}");
    }
}

/// Runs a sending tool with `input` on its stdin (closed after it) until it exits; returns
/// status, stdout and stderr.
#[allow(dead_code, reason = "not every test binary feeds a tool's stdin")]
pub(crate) fn run_with_stdin(
    name: &str,
    cmd: &mut Command,
    input: &str,
) -> (ExitStatus, String, String) {
    let mut p = Proc::spawn(name, cmd.stdin(Stdio::piped()));
    p.child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("writing stdin");
    p.finish()
}

/// Runs a tool that should fail at once (stdin closed); returns exit code and stderr.
#[allow(dead_code, reason = "not every test binary uses it")]
pub(crate) fn fails(bin: &str, args: &[&str]) -> (Option<i32>, String) {
    let p = Proc::spawn("tool", Command::new(bin).args(args).stdin(Stdio::null()));
    let (status, _, err) = p.finish();
    (status.code(), err)
}

/// The last line of a tool's stdout: its JSON summary.
pub(crate) fn json(out: &str) -> serde_json::Value {
    let line = out.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

/// Waits for a `pgm-sub --verify` and checks that it succeeded and its `topics` counts are
/// exactly `want`; returns its summary and stdout for further checks.
#[allow(dead_code, reason = "not every test binary runs pgm-sub")]
pub(crate) fn sub_topics_exact(
    p: Proc,
    want: &std::collections::BTreeMap<String, u64>,
) -> (serde_json::Value, String) {
    let name = p.name.clone();
    let (status, out, err) = p.finish();
    assert!(status.success(), "{name} failed: {status}\n{out}\n{err}");
    let v = json(&out);
    let got: std::collections::BTreeMap<String, u64> = v["topics"]
        .as_object()
        .unwrap_or_else(|| panic!("{name}: no topics: {out}"))
        .iter()
        .map(|(k, n)| {
            let n = n
                .as_u64()
                .unwrap_or_else(|| panic!("{name}: count of {k}: {out}"));
            (k.clone(), n)
        })
        .collect();
    assert_eq!(&got, want, "{name}: {out}");
    (v, out)
}
