//! A test LAN built from Linux network namespaces, for end-to-end tests of the tools.
//!
//! - [`lan`]: a bridge namespace plus N host namespaces, per-host random or burst loss with
//!   nftables, rate limits with `tbf`, processes spawned inside a host ([`proc::Proc`]) and
//!   tcpdump captures ([`lan::Capture`]). Everything is torn down on drop, also on panic, and
//!   leftovers of dead runs are removed when the first [`lan::Lan`] of a process is built.
//! - [`peer`]: builds the OpenPGM interop peer (`peers/openpgm_peer.c`) against Debian's
//!   `libpgm-dev` and caches the binary under the cargo target directory.
//! - [`pair`]: one OpenPGM sender and one receiver on a LAN, with their JSON summaries.
//! - [`tshark`]: PGM packet-type counts of a pcap (checks the capture fixture) and the capture
//!   checks of the end-to-end tests (checksums, malformed packets, expert info).
//! - [`tools`]: builds and runs our `pgm-send` / `pgm-recv` on a LAN, and the checks and
//!   assertions the end-to-end tests share.
//! - [`soak`]: the soak test behind the `pgm-soak` binary (`scripts/soak`): publisher and
//!   subscriber churn for N minutes, exact delivery per session, flat RSS.
//! - [`spray`]: the garbage sprayer behind the `pgm-spray` binary (hardening tests).
//! - [`deps`]: what a test needs from the machine (root, the LAN's programs, OpenPGM, libzmq,
//!   tshark); a missing need skips the test loudly, or fails it when `CI` is set.
//!
//! Traffic only ever flows inside namespaces created here.

pub mod async_bench;
pub mod bench;
pub mod deps;
pub mod lan;
pub mod pair;
pub mod peer;
pub mod proc;
pub mod report_md;
pub mod soak;
pub mod spray;
pub mod tools;
pub mod tshark;
pub mod zmq;

use std::time::Instant;

/// The monotonic clock, for timeouts of the test harness (not of any protocol engine).
#[expect(
    clippy::disallowed_methods,
    reason = "the harness is an IO driver: it may read the clock"
)]
pub fn now() -> Instant {
    Instant::now()
}

/// True when running as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Declares one `#[test]` per entry, each running a shared test body with its own name first:
/// `name => body(args…);` becomes `#[test] fn name() { body("name", args…); }`.
///
/// ```no_run
/// use netns_tests::tools::Encap;
///
/// fn garbage(name: &str, encap: Encap) {
///     // …
/// }
///
/// netns_tests::named_tests! {
///     garbage_raw => garbage(Encap::Raw);
///     garbage_epgm => garbage(Encap::Udp);
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! named_tests {
    ($($name:ident => $body:ident($($arg:expr),* $(,)?);)+) => {
        $(
            #[test]
            fn $name() {
                $body(stringify!($name), $($arg),*);
            }
        )+
    };
}

/// True when `program` can be found in `PATH`.
pub fn have_program(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let candidate = dir.join(program);
            candidate.is_file()
        })
    })
}
