//! What the sending tools (`pgm-send`, `pgm-pub`) share: the stdin mode and the main.

use std::{
    io::{self, BufRead, Write},
    process::ExitCode,
};

use super::error::{report_error, ToolError};

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

/// The main of a sending tool (`pgm-send`, `pgm-pub`): runs `run`, prints the JSON line it
/// returns, maps errors to exit codes.
pub fn sender_main(tool: &str, run: impl FnOnce() -> Result<String, ToolError>) -> ExitCode {
    match run() {
        Ok(json) => {
            let mut out = io::stdout().lock();
            if writeln!(out, "{json}").is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => report_error(tool, &e),
    }
}
