//! Child processes that are killed when dropped, with their output collected in the background.

use std::io::{self, BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::now;

/// A running child process. Dropping it kills the process (SIGKILL) and reaps it.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Option<Child>,
    status: Option<ExitStatus>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    stderr_lines: Receiver<String>,
    readers: Vec<JoinHandle<()>>,
}

/// What a finished process left behind.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

impl Output {
    /// The last line of stdout that parses as a JSON object.
    pub fn json(&self) -> Option<serde_json::Value> {
        last_json_line(&self.stdout)
    }
}

/// The last line of `text` that parses as a JSON object.
pub fn last_json_line(text: &str) -> Option<serde_json::Value> {
    text.lines()
        .rev()
        .filter(|l| l.trim_start().starts_with('{'))
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
}

fn pump<R: Read + Send + 'static>(
    reader: R,
    sink: Arc<Mutex<String>>,
    lines: Option<mpsc::Sender<String>>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if let Ok(mut s) = sink.lock() {
                        s.push_str(&line);
                    }
                    if let Some(tx) = &lines {
                        let _ = tx.send(line.trim_end().to_owned());
                    }
                }
            }
        }
    })
}

impl Proc {
    /// Spawns `cmd` with stdout and stderr captured (stdin closed). `name` is used in messages.
    pub fn spawn(name: &str, mut cmd: Command) -> io::Result<Proc> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("spawning {name} ({cmd:?}): {e}")))?;
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(pump(out, Arc::clone(&stdout), None));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(pump(err, Arc::clone(&stderr), Some(tx)));
        }
        Ok(Proc {
            name: name.to_owned(),
            child: Some(child),
            status: None,
            stdout,
            stderr,
            stderr_lines: rx,
            readers,
        })
    }

    /// The process id (while it runs).
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The name given at spawn time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits until a stderr line contains `marker`, or fails after `timeout` or if the
    /// process exits first.
    pub fn wait_for_stderr(&mut self, marker: &str, timeout: Duration) -> io::Result<()> {
        let deadline = now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{}: no \"{marker}\" on stderr within {timeout:?}; stderr so far:\n{}",
                        self.name,
                        self.stderr_text()
                    ),
                ));
            }
            match self
                .stderr_lines
                .recv_timeout(left.min(Duration::from_millis(50)))
            {
                Ok(line) if line.contains(marker) => return Ok(()),
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    // stderr closed: the process is gone (or closed it); give it a moment.
                    let _ = self.wait_timeout(Duration::from_millis(500));
                    return Err(io::Error::other(format!(
                        "{}: exited before printing \"{marker}\"; stderr:\n{}",
                        self.name,
                        self.stderr_text()
                    )));
                }
            }
        }
    }

    /// Waits for the line "READY" on stderr (printed by the OpenPGM peer once connected).
    pub fn wait_ready(&mut self, timeout: Duration) -> io::Result<()> {
        self.wait_for_stderr("READY", timeout)
    }

    /// Non-blocking check: has the process exited?
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(st) = self.status {
            return Ok(Some(st));
        }
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        let st = child.try_wait()?;
        if st.is_some() {
            self.status = st;
        }
        Ok(st)
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the process if it is still running.
    pub fn signal(&mut self, signal: i32) {
        if self.try_wait().ok().flatten().is_some() {
            return;
        }
        if let Some(pid) = self.id().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: plain kill(2) on our own child, which has not been reaped yet.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }

    /// Waits up to `timeout` for the process to exit; on timeout it is killed and an error of
    /// kind `TimedOut` is returned (with the output so far).
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Output> {
        let deadline = now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(self.finish(status));
            }
            if now() >= deadline {
                self.kill();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{}: still running after {timeout:?}, killed; stdout:\n{}\nstderr:\n{}",
                        self.name,
                        self.stdout_text(),
                        self.stderr_text()
                    ),
                ));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM, then waits up to `grace` before killing. Returns the output.
    pub fn terminate(&mut self, grace: Duration) -> io::Result<Output> {
        self.signal(libc::SIGTERM);
        self.wait_timeout(grace)
    }

    /// Kills (SIGKILL) and reaps the process.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if self.status.is_none() {
                let _ = child.kill();
                if let Ok(st) = child.wait() {
                    self.status = Some(st);
                }
            }
        }
    }

    fn finish(&mut self, status: ExitStatus) -> Output {
        // The pipes close when the process exits (unless it left children holding them).
        for h in self.readers.drain(..) {
            let t0 = now();
            while !h.is_finished() && now().duration_since(t0) < Duration::from_secs(2) {
                thread::sleep(Duration::from_millis(5));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
        Output {
            status,
            stdout: self.stdout_text(),
            stderr: self.stderr_text(),
        }
    }

    /// Stdout collected so far.
    pub fn stdout_text(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Stderr collected so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}
