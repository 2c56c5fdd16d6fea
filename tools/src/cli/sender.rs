//! What the sending tools (`pgm-send`, `pgm-pub`) share: the stdin mode and the main.

use std::{
    io::{self, BufRead, Write},
    process::ExitCode,
};

use super::{
    error::{report_error, ToolError},
    interrupt,
};

/// Reads the next line of `input` into `line`, without its `\n` or `\r\n`; false at the end of
/// the input. The stdin mode of the sending tools (`pgm-send`, `pgm-pub`).
pub fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<bool> {
    line.clear();
    if input.read_until(b'\n', line)? == 0 {
        return Ok(false);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    Ok(true)
}

/// The main of a sending tool (`pgm-send`, `pgm-pub`): installs the Ctrl-C/SIGTERM handlers
/// ([`interrupt`]: the tool stops sending, closes as usual and reports), runs `run`, prints the
/// JSON line it returns, maps errors to exit codes. `run` also says whether the run fell
/// short of its `--count` (interrupted): exit status 1.
pub fn sender_main(
    tool: &str,
    run: impl FnOnce() -> Result<(String, bool), ToolError>,
) -> ExitCode {
    if let Err(e) = interrupt::install() {
        eprintln!("{tool}: cannot handle Ctrl-C ({e}): it ends the run without a summary");
    }
    match run() {
        Ok((json, short)) => {
            let mut out = io::stdout().lock();
            if writeln!(out, "{json}").is_err() {
                return ExitCode::FAILURE;
            }
            if short {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => report_error(tool, &e),
    }
}

/// Says on stderr that `tool` stopped sending on a signal, and what closing still does.
pub fn say_interrupted(tool: &str, sent: u64, linger: f64) {
    eprintln!(
        "{tool}: interrupted after {sent} messages; closing: FIN, then up to {linger} s of \
         repairs (Ctrl-C again quits now)"
    );
}
