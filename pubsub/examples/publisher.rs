//! A publisher: quotes on two topics over EPGM.
//!
//! ```text
//! cargo run -p pubsub --example publisher -- 'epgm://lo;239.192.77.1:7701' 1000
//! ```
//!
//! Start the subscriber example first: a subscriber joins a session where it finds it (as
//! OpenPGM and libzmq do), so what was sent before it listened is not delivered.

use std::error::Error;

use pubsub::{Options, Publisher};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let endpoint = args
        .next()
        .unwrap_or_else(|| "epgm://lo;239.192.77.1:7701".to_owned());
    let count: u64 = args.next().map_or(Ok(1000), |s| s.parse())?;

    let publisher = Publisher::connect(&endpoint, &Options::default())?;
    for i in 0..count {
        let (topic, price) = if i % 2 == 0 {
            ("md.AAPL", 187.0 + (i % 100) as f64 / 100.0)
        } else {
            ("md.MSFT", 415.0 + (i % 100) as f64 / 100.0)
        };
        // Blocks while the send queue is full (the rate limit, if one is set, holds it).
        publisher.send(topic.as_bytes(), format!("{i} {price:.2}").as_bytes())?;
    }
    // Flushes what is batched, then lingers answering NAKs before the session ends.
    publisher.close()?;
    println!("published {count} messages as {}", publisher.tsi());
    Ok(())
}
