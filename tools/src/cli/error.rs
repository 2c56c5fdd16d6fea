//! Why a tool stopped, and its exit code.

use std::{io, process::ExitCode};

use pgm::socket::{OpenError, SendError};
use pubsub::ConnectError;

/// Why a tool stopped; [`ToolError::exit_code`] is 2 for usage errors, 1 otherwise.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// A bad argument combination.
    #[error("{0}")]
    Usage(String),
    /// The socket could not be opened.
    #[error("{0}")]
    Open(#[from] OpenError),
    /// Sending failed.
    #[error("send: {0}")]
    Send(#[from] SendError),
    /// Reading stdin or writing stdout failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl ToolError {
    /// 2 for what the user must change (arguments, endpoint, privilege), else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            ToolError::Usage(_) => 2,
            ToolError::Open(e) if e.is_usage() => 2,
            _ => 1,
        }
    }
}

/// Prints `tool: error` to stderr and gives the exit code.
pub fn report_error(tool: &str, e: &ToolError) -> ExitCode {
    eprintln!("{tool}: error: {e}");
    ExitCode::from(e.exit_code())
}

/// A `pubsub` connect error as a [`ToolError`]: a failed open keeps its exit code, anything else
/// is a usage error.
pub fn connect_error(e: ConnectError) -> ToolError {
    match e {
        ConnectError::Open(e) => ToolError::Open(e),
        other => ToolError::Usage(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_exit_2() {
        let e = ToolError::Open(OpenError::Option("x".into()));
        assert_eq!(e.exit_code(), 2);
        assert_eq!(ToolError::Usage("x".into()).exit_code(), 2);
        assert_eq!(ToolError::Send(SendError::Closed).exit_code(), 1);
    }
}
