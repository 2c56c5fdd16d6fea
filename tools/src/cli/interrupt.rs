//! Ctrl-C and SIGTERM for the tools that run until done. The first one ends the run as its end
//! would: a receiving tool stops as on its idle timeout, a sending tool stops sending and
//! closes as usual (FIN, linger for repairs); the summary is still printed. A second one ends
//! the process at once, with exit status 130, for a run that does not stop.

use std::{
    io,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, OnceLock,
    },
    time::Duration,
};

use signal_hook::consts::{SIGINT, SIGTERM};

/// The longest a receiving loop waits for the network before it looks at [`requested`] again.
pub const POLL: Duration = Duration::from_millis(250);

static REQUESTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Exit status of a process ended by a second signal (128 + SIGINT, as shells report it).
const SECOND_SIGNAL_EXIT: i32 = 130;

/// Installs the handlers of SIGINT and SIGTERM, once per process.
pub fn install() -> io::Result<()> {
    let mut fresh = false;
    let flag = REQUESTED.get_or_init(|| {
        fresh = true;
        Arc::new(AtomicBool::new(false))
    });
    if fresh {
        for sig in [SIGINT, SIGTERM] {
            // In this order: the shutdown looks at the flag before the second handler sets it,
            // so only a signal that finds it already set ends the process.
            signal_hook::flag::register_conditional_shutdown(
                sig,
                SECOND_SIGNAL_EXIT,
                Arc::clone(flag),
            )?;
            signal_hook::flag::register(sig, Arc::clone(flag))?;
        }
    }
    Ok(())
}

/// True once SIGINT or SIGTERM arrived (never without [`install`]).
pub fn requested() -> bool {
    REQUESTED.get().is_some_and(|f| f.load(Ordering::Relaxed))
}
