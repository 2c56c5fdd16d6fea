//! The JSON with every probe: each LAN's run under `lans`, every measurement in flat lists
//! tagged with its `lan`.

use serde_json::{json, Value};

use super::{date, lan_label, machine, targets};
use crate::bench::search::Probe;
use crate::bench::{Bench, Config};

fn probe_json(p: &Probe) -> Value {
    json!({
        "requested": p.requested, "offered": p.offered, "delivered": p.delivered,
        "count": p.count, "ok": p.ok, "note": p.note,
        "sender_rss_kib": p.sender_rss_kib, "receiver_rss_kib": p.receiver_rss_kib,
        "sender_cpu_s": p.sender_cpu_s,
    })
}

/// Everything measured, as JSON: each LAN's run (parts, load, targets, errors) under `lans`,
/// and every measurement in the flat lists, each tagged with its `lan`.
pub fn to_json(cfg: &Config, bench: &Bench) -> Value {
    let mut searches = Vec::new();
    let mut blasts = Vec::new();
    let mut loss = Vec::new();
    let mut latency = Vec::new();
    let mut slow = Vec::new();
    let mut scale = Vec::new();
    let mut lans = Vec::new();
    for res in &bench.lans {
        let lan = lan_label(res.lan);
        lans.push(json!({
            "lan": lan, "parts": res.parts, "wall_s": res.wall_s,
            "loadavg": [res.load.0, res.load.1], "foreign_netns": res.foreign_netns,
            "targets": targets(res).iter().map(|t| json!({
                "what": t.what, "measured": t.measured, "holds": t.holds,
            })).collect::<Vec<_>>(),
            "errors": res.errors,
        }));
        searches.extend(res.searches.iter().map(|s| {
            json!({
                "lan": lan, "system": s.system.label(), "size": s.size, "best": s.outcome.rate(),
                "probes": s.outcome.probes.iter().map(probe_json).collect::<Vec<_>>(),
            })
        }));
        blasts.extend(res.blasts.iter().map(|(size, p)| {
            json!({
                "lan": lan, "size": size, "probe": probe_json(p),
            })
        }));
        loss.extend(res.loss.iter().map(|l| {
            json!({
                "lan": lan, "system": l.system.label(), "size": l.size, "clean_rate": l.clean_rate,
                "rate": l.rate, "count": l.count, "tail_p50_ms": l.tail_p50(),
                "max_rate": l.max_rate(),
                "search": l.search.probes.iter().map(probe_json).collect::<Vec<_>>(),
                "tail_max_ms": l.tail_max(), "goodput": l.goodput(),
                "runs": l.runs.iter().map(|r| json!({
                    "delivered_frac": r.delivered_frac, "tail_ms": r.tail_ms, "send_s": r.send_s,
                    "ok": r.ok, "note": r.note, "dropped": r.dropped,
                    "receivers": r.receivers,
                })).collect::<Vec<_>>(),
            })
        }));
        latency.extend(res.latency.iter().chain(&res.openpgm_latency).map(|l| {
            json!({
                "lan": lan, "system": l.system.label(), "spin": l.spin,
                "busy_poll": l.busy_poll.as_str(), "count": l.count, "lost": l.lost,
                "min_us": l.min, "p50_us": l.p50, "p90_us": l.p90, "p99_us": l.p99,
                "p999_us": l.p999, "max_us": l.max,
            })
        }));
        slow.extend(res.slow.as_ref().map(|s| {
            json!({
                "lan": lan, "count": s.count, "size": s.size, "rate": s.rate,
                "window_bytes": s.window_bytes, "recv_queue_bytes": s.recv_queue_bytes,
                "peak_kib": s.peak_kib, "fast_ok": s.fast_ok, "fast_rss_kib": s.fast_rss_kib,
            })
        }));
        scale.extend(res.scale.iter().map(|s| {
            json!({
                "lan": lan, "senders": s.senders, "receivers": s.receivers, "best": s.rate(),
                "cpu_us_per_msg": s.cpu_us_per_msg(),
                "probes": s.outcome.probes.iter().map(probe_json).collect::<Vec<_>>(),
            })
        }));
    }
    json!({
        "date": date(),
        "machine": machine(),
        "command": cfg.command,
        "smoke": cfg.smoke,
        "wall_s": bench.wall_s,
        "lans": lans,
        "searches": searches,
        "blasts": blasts,
        "loss": loss,
        "latency": latency,
        "slow_receiver": slow,
        "scale": scale,
        "errors": bench.errors,
    })
}
