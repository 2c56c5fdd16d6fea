//! A subscriber: prints the messages whose topic starts with a prefix.
//!
//! ```text
//! cargo run -p pubsub --example subscriber -- 'epgm://lo;239.192.77.1:7701' md.AAPL 500
//! ```
//!
//! It prints `subscribed` once it listens, then one line per message, and stops after COUNT
//! messages or 10 s without one.

use std::{error::Error, io::Write, time::Duration};

use pubsub::{Options, RecvError, RecvEvent, Subscriber};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let endpoint = args
        .next()
        .unwrap_or_else(|| "epgm://lo;239.192.77.1:7701".to_owned());
    let prefix = args.next().unwrap_or_default();
    let count: u64 = args.next().map_or(Ok(u64::MAX), |s| s.parse())?;

    let mut subscriber = Subscriber::connect(&endpoint, &Options::default())?;
    subscriber.subscribe(&prefix); // "" subscribes to everything
    let mut out = std::io::stdout().lock();
    writeln!(out, "subscribed")?;
    out.flush()?;

    let mut received = 0;
    while received < count {
        match subscriber.recv_timeout(Duration::from_secs(10)) {
            Ok(RecvEvent::Message(m)) => {
                let payload = m.frames.get(1).map_or(&b""[..], |f| &f[..]);
                writeln!(
                    out,
                    "{} {} {}",
                    m.tsi,
                    String::from_utf8_lossy(m.topic()),
                    String::from_utf8_lossy(payload)
                )?;
                received += 1;
            }
            // Data the publisher no longer holds: say so, and go on with what comes next.
            Ok(RecvEvent::Gap { tsi, lost }) => eprintln!("{tsi}: {lost} packets lost"),
            Ok(_) => {} // kinds of event added later
            Err(RecvError::Timeout) => break,
            Err(e) => return Err(e.into()),
        }
    }
    writeln!(out, "received {received}")?;
    Ok(())
}
