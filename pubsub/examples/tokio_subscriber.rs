//! The subscriber example on tokio: `recv().await` on an `AsyncSubscriber`, raced against an
//! idle timer with `select!` (cancelling a pending receive loses nothing).
//!
//! ```text
//! cargo run -p pubsub --features tokio --example tokio_subscriber -- 'epgm://lo;239.192.77.1:7701' md.AAPL 500
//! ```
//!
//! It prints `subscribed` once it listens, then one line per message, and stops after COUNT
//! messages or 10 s without one.

use std::{error::Error, time::Duration};

use pubsub::{tokio::AsyncSubscriber, Options, RecvEvent};
use tokio::io::{stdout, AsyncWriteExt};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let endpoint = args
        .next()
        .unwrap_or_else(|| "epgm://lo;239.192.77.1:7701".to_owned());
    let prefix = args.next().unwrap_or_default();
    let count: u64 = args.next().map_or(Ok(u64::MAX), |s| s.parse())?;

    let mut subscriber = AsyncSubscriber::connect(&endpoint, &Options::default())?;
    subscriber.subscribe(&prefix); // "" subscribes to everything
    let mut out = stdout();
    out.write_all(b"subscribed\n").await?;
    out.flush().await?;

    let mut received = 0;
    while received < count {
        let event = tokio::select! {
            event = subscriber.recv() => event?,
            () = tokio::time::sleep(Duration::from_secs(10)) => break,
        };
        match event {
            RecvEvent::Message(m) => {
                let payload = m.frames.get(1).map_or(&b""[..], |f| &f[..]);
                let line = format!(
                    "{} {} {}\n",
                    m.tsi,
                    String::from_utf8_lossy(m.topic()),
                    String::from_utf8_lossy(payload)
                );
                out.write_all(line.as_bytes()).await?;
                received += 1;
            }
            // Data the publisher no longer holds: say so, and go on with what comes next.
            RecvEvent::Gap { tsi, lost } => eprintln!("{tsi}: {lost} packets lost"),
            _ => {} // kinds of event added later
        }
    }
    out.write_all(format!("received {received}\n").as_bytes())
        .await?;
    out.flush().await?;
    Ok(())
}
