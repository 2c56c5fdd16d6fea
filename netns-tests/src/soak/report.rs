//! The soak's outputs: the `## Soak` section of `BENCHMARKS.md` (spliced in, the rest of the
//! file untouched) and the JSON file with every session, subscriber incarnation, check and RSS
//! sample.

use std::fmt::Write as _;
use std::io;

use serde_json::{json, Value};

use super::check::Presence;
use super::{Config, Leave, Outcome, Role, SubRun};
use crate::report_md::{commit, splice_section};

/// The heading of the section this module owns.
pub const HEADING: &str = crate::report_md::SOAK_HEADING;

fn mib(kib: f64) -> String {
    format!("{:.1}", kib / 1024.0)
}

fn opt_slope(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |s| format!("{s:+.1}"))
}

fn prefixes(role: Role) -> String {
    role.prefixes()
        .iter()
        .map(|p| format!("`'{p}'`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn json_u(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// One row of the delivery table: a role's incarnations and what their checks found.
fn delivery_row(role: Role, runs: &[&SubRun]) -> Vec<String> {
    let verified: Vec<&&SubRun> = runs.iter().filter(|r| !r.json.is_null()).collect();
    let killed = runs
        .iter()
        .filter(|r| r.leave == Leave::Kill && r.json.is_null())
        .count();
    let exact = runs
        .iter()
        .flat_map(|r| &r.sessions)
        .filter(|v| v.ok && v.presence == Presence::Full && v.complete)
        .count();
    let partial = runs
        .iter()
        .flat_map(|r| &r.sessions)
        .filter(|v| v.ok && (v.presence == Presence::Partial || !v.complete))
        .count();
    let failed = runs
        .iter()
        .flat_map(|r| &r.sessions)
        .filter(|v| !v.ok)
        .count();
    let msgs: u64 = verified.iter().map(|r| json_u(&r.json, "received")).sum();
    let naks: u64 = verified.iter().map(|r| json_u(&r.json, "naks_sent")).sum();
    let repaired: u64 = verified.iter().map(|r| json_u(&r.json, "repaired")).sum();
    let problems: usize = runs.iter().map(|r| r.problems.len()).sum();
    let incarnations = if killed > 0 {
        format!(
            "{} ({} drained and verified, {killed} killed)",
            runs.len(),
            verified.len()
        )
    } else {
        runs.len().to_string()
    };
    vec![
        format!("{} (h{})", role.label(), role.host() + 1),
        prefixes(role),
        incarnations,
        exact.to_string(),
        partial.to_string(),
        failed.to_string(),
        msgs.to_string(),
        format!("{naks} / {repaired}"),
        problems.to_string(),
    ]
}

fn row(m: &mut String, cells: &[String]) {
    let _ = writeln!(m, "| {} |", cells.join(" | "));
}

/// The `## Soak` section.
#[expect(clippy::too_many_lines, reason = "one report, written top to bottom")]
pub fn section(cfg: &Config, out: &Outcome) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "{HEADING}\n");
    let json_name = cfg
        .json_path()
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let _ = writeln!(
        m,
        "Measured {} on {} — `{}` at commit {} (wall time {:.1} min; load average at the start \
         {}, at the end {}). Every sample and check: [{json_name}]({json_name}); RSS plot: \
         [{plot}]({plot}). Harness: `netns-tests/src/soak.rs` (what is checked, precisely, is \
         in its module docs).\n",
        out.date,
        crate::bench::report::machine(),
        cfg.command,
        commit(),
        out.wall_s / 60.0,
        out.load.0,
        out.load.1,
        plot = cfg.plot_name
    );
    let verdict = if out.passed() { "PASS" } else { "FAIL" };
    let _ = writeln!(
        m,
        "**Verdict: {verdict}** ({} problem{}).\n",
        out.problems.len(),
        if out.problems.len() == 1 { "" } else { "s" }
    );
    // Set-up.
    let complete = out.sessions.iter().filter(|s| s.complete).count();
    let data: Vec<f64> = out
        .sessions
        .iter()
        .filter_map(|s| Some(s.data_end_s? - s.start_s))
        .collect();
    let (dmin, dmax) = data
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &d| (a.min(d), b.max(d)));
    let tsis: std::collections::BTreeSet<&String> =
        out.sessions.iter().filter_map(|s| s.tsi.as_ref()).collect();
    let churn: Vec<&SubRun> = out
        .subs
        .iter()
        .filter(|r| r.role == Role::ChurnSub)
        .collect();
    let drains = churn.iter().filter(|r| r.leave == Leave::Drain).count();
    let _ = writeln!(
        m,
        "Set-up: `pgm-pub` on h1 → 3 × `pgm-sub --verify` on h2–h4 over EPGM, on the namespace \
         LAN (one bridge). {} minutes = {} publisher sessions: each incarnation publishes {} \
         messages round-robin over {} topics of its own (`a0.sNNN`..`b9.sNNN`; payloads {} B) \
         at {:.0} Mbit/s, then lingers answering NAKs, and is **SIGKILLed** {} s after its start \
         and replaced by a new one (a new TSI: {} distinct TSIs). Sending took {:.1}–{:.1} s of \
         each {} s period; {complete} of {} sessions were complete (everything sent before the \
         kill). h2 drops {:.0} % of incoming PGM/UDP at random (nftables; {} packets dropped). \
         The churn subscriber on h4 rejoins every {} s, {} s into its cycle: {drains} \
         incarnations left by being cut off and timing out (summary verified), {} were \
         SIGKILLed (no summary to verify).\n",
        cfg.run_secs / 60,
        out.sessions.len(),
        cfg.count,
        cfg.topics,
        cfg.size,
        cfg.rate_bits as f64 / 1e6,
        cfg.pub_period,
        tsis.len(),
        if dmin.is_finite() { dmin } else { 0.0 },
        dmax,
        cfg.pub_period,
        out.sessions.len(),
        f64::from(cfg.loss_permille) / 10.0,
        out.lossy_drops,
        cfg.churn_period,
        cfg.churn_join_delay,
        churn.len() - drains
    );
    // Delivery.
    let _ = writeln!(m, "### Delivery\n");
    row(
        &mut m,
        &[
            "subscriber".into(),
            "prefixes".into(),
            "incarnations".into(),
            "sessions exact".into(),
            "partial runs ok".into(),
            "sessions failed".into(),
            "messages verified".into(),
            "NAKs sent / repaired".into(),
            "problems".into(),
        ],
    );
    row(&mut m, &vec!["---".to_owned(); 9]);
    for role in [Role::LossySub, Role::SteadySub, Role::ChurnSub] {
        let runs: Vec<&SubRun> = out.subs.iter().filter(|r| r.role == role).collect();
        row(&mut m, &delivery_row(role, &runs));
    }
    let _ = writeln!(
        m,
        "\n\"Sessions exact\": the subscriber was there for the whole session and got exactly \
         the messages of its prefixes, every topic's sequence 0..n complete, no gap, duplicate or \
         bad CRC. \"Partial runs ok\": a session it saw only in part (joined late, left early), \
         and what it got was one contiguous stretch of the publisher's sequence, nothing \
         missing or corrupt in between. Its summary's `gaps`, `duplicates`, `corrupt`, \
         `unrecoverable`, `decode_errors` must all be 0.\n"
    );
    // Memory.
    let _ = writeln!(m, "### Memory (VmRSS, sampled every second)\n");
    row(
        &mut m,
        &[
            "role".into(),
            "processes".into(),
            "samples".into(),
            "max MiB".into(),
            "first → last minute KiB".into(),
            "slope KiB/min".into(),
            format!("slope from {:.0} min, KiB/min", cfg.steady_from / 60.0),
            "verdict".into(),
        ],
    );
    row(&mut m, &vec!["---".to_owned(); 8]);
    for role in Role::ALL {
        let Some(s) = out.rss.get(&role) else {
            continue;
        };
        let basis = if role.whole_run() {
            "samples after warm-up"
        } else {
            "per-incarnation peaks"
        };
        row(
            &mut m,
            &[
                format!("{} (h{})", role.label(), role.host() + 1),
                s.processes.to_string(),
                s.samples.to_string(),
                mib(s.max_kib as f64),
                s.first_last_kib
                    .map_or_else(|| "—".to_owned(), |(a, b)| format!("{a:.0} → {b:.0}")),
                format!("{} ({basis})", opt_slope(s.slope_kib_per_min)),
                opt_slope(s.steady_slope),
                match (s.flat, cfg.enforce_rss) {
                    (true, _) => "flat",
                    (false, true) => "**GROWS**",
                    (false, false) => "grows (not enforced: smoke run)",
                }
                .to_owned(),
            ],
        );
    }
    let _ = writeln!(
        m,
        "\nSlopes are least-squares fits of RSS against time. Whole-run subscribers: every \
         sample after the first {:.0} s, and (the verdict, where the run is long enough) every \
         sample from {:.0} min on: until then dead sessions pile up, as the receivers keep a \
         silent session for their 5-minute peer expiry, so RSS may rise in the first minutes. \
         Restarted roles (each process lives at most {} s): the peak of each incarnation \
         against its start time (a slope over their pooled samples would only measure the \
         saw-tooth). Flat = below {} KiB/min.\n",
        cfg.warmup,
        cfg.steady_from / 60.0,
        cfg.pub_period,
        cfg.flat_kib_per_min
    );
    if !out.problems.is_empty() {
        let _ = writeln!(m, "### Problems\n");
        for p in out.problems.iter().take(30) {
            let _ = writeln!(m, "- {}", p.replace('\n', " / "));
        }
        if out.problems.len() > 30 {
            let _ = writeln!(m, "- … {} more in the JSON", out.problems.len() - 30);
        }
        m.push('\n');
    }
    m
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn sub_json(r: &SubRun) -> Value {
    json!({
        "role": r.role.label(),
        "incarnation": r.incarnation,
        "leave": r.leave.label(),
        "pid": r.pid,
        "start_s": (r.start_s * 1000.0).round() / 1000.0,
        "end_s": (r.end_s * 1000.0).round() / 1000.0,
        "cut_s": r.cut_s.map(|c| (c * 1000.0).round() / 1000.0),
        "status": r.status,
        "killed": r.killed,
        "summary": r.json,
        "loss_notices": r.loss_notices,
        "notable_stderr": r.notable_stderr,
        "last_progress_total": r.last_progress_total,
        "sessions": r.sessions.iter().map(|v| json!({
            "session": v.session,
            "presence": format!("{:?}", v.presence).to_lowercase(),
            "complete": v.complete,
            "received": v.received,
            "expected": v.expected,
            "ok": v.ok,
            "note": v.note,
        })).collect::<Vec<_>>(),
        "problems": r.problems,
        "notes": r.notes,
        "stderr_tail": if r.problems.is_empty() { Value::Null } else { r.stderr_tail.clone().into() },
    })
}

/// The JSON file: a summary object, then the samples (one process per line).
pub fn to_json(cfg: &Config, out: &Outcome) -> String {
    let summary = json!({
        "date": out.date,
        "command": cfg.command,
        "commit": commit(),
        "machine": crate::bench::report::machine(),
        "passed": out.passed(),
        "interrupted": out.interrupted,
        "aborted": out.aborted,
        "problems": out.problems,
        "wall_s": out.wall_s,
        "load": [out.load.0, out.load.1],
        "config": {
            "run_secs": cfg.run_secs,
            "smoke": cfg.smoke,
            "pub_period_s": cfg.pub_period,
            "churn_period_s": cfg.churn_period,
            "churn_join_delay_s": cfg.churn_join_delay,
            "drain_idle_s": cfg.drain_idle,
            "drain_lead_s": cfg.drain_lead,
            "sub_idle_s": cfg.sub_idle,
            "rate_bits": cfg.rate_bits,
            "count_per_session": cfg.count,
            "topics": cfg.topics,
            "size": cfg.size,
            "loss_permille": cfg.loss_permille,
            "warmup_s": cfg.warmup,
            "flat_kib_per_min": cfg.flat_kib_per_min,
            "steady_from_s": cfg.steady_from,
            "enforce_rss": cfg.enforce_rss,
            "quiet_pps": cfg.quiet_pps,
            "quiet_before_kill_s": cfg.quiet_before_kill,
            "roles": Role::ALL.iter().map(|r| json!({
                "role": r.label(), "host": r.host() + 1, "prefixes": r.prefixes(),
            })).collect::<Vec<_>>(),
        },
        "lossy_drops": out.lossy_drops,
        "sessions": out.sessions.iter().map(|s| json!({
            "index": s.index,
            "tsi": s.tsi,
            "pid": s.pid,
            "start_s": (s.start_s * 1000.0).round() / 1000.0,
            "end_s": (s.end_s * 1000.0).round() / 1000.0,
            "data_end_s": s.data_end_s,
            "complete": s.complete,
            "last_progress_total": s.last_progress_total,
            "problems": s.problems,
        })).collect::<Vec<_>>(),
        "subscribers": out.subs.iter().map(sub_json).collect::<Vec<_>>(),
        "rss": out.rss.iter().map(|(role, s)| (role.label().to_owned(), json!({
            "processes": s.processes,
            "samples": s.samples,
            "max_kib": s.max_kib,
            "first_last_minute_kib": s.first_last_kib.map(|(a, b)| [a.round(), b.round()]),
            "slope_kib_per_min": s.slope_kib_per_min,
            "steady_slope_kib_per_min": s.steady_slope,
            "flat": s.flat,
        }))).collect::<serde_json::Map<_, _>>(),
    });
    let mut text = String::from("{\n\"summary\": ");
    text.push_str(&serde_json::to_string_pretty(&summary).unwrap_or_default());
    text.push_str(",\n\"pub_tx_packets\": ");
    let tx: Vec<Value> = out
        .pub_tx
        .iter()
        .map(|(t, n)| json!([(t * 10.0).round() / 10.0, n]))
        .collect();
    text.push_str(&compact(&Value::Array(tx)));
    text.push_str(",\n\"rss_samples_kib\": [\n");
    let procs: Vec<String> = out
        .procs
        .iter()
        .map(|p| {
            compact(&json!({
                "role": p.role.label(),
                "incarnation": p.incarnation,
                "pid": p.pid,
                "samples": p.samples.iter()
                    .map(|(t, k)| json!([(t * 10.0).round() / 10.0, k]))
                    .collect::<Vec<_>>(),
            }))
        })
        .collect();
    text.push_str(&procs.join(",\n"));
    text.push_str("\n]\n}\n");
    text
}

/// Writes the JSON and, unless the run was interrupted or stopped early, the `## Soak` section
/// of the report.
pub fn write_all(cfg: &Config, out: &Outcome) -> io::Result<()> {
    let json_path = cfg.json_path();
    if let Some(dir) = json_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&json_path, to_json(cfg, out))?;
    eprintln!("[soak] wrote {}", json_path.display());
    if out.interrupted || out.aborted.is_some() {
        eprintln!("[soak] run incomplete: the report section is not written");
        return Ok(());
    }
    std::fs::create_dir_all(&cfg.out_dir)?;
    let plot = cfg.out_dir.join(&cfg.plot_name);
    super::plot::draw(out, &plot)?;
    eprintln!("[soak] wrote {}", plot.display());
    let md = cfg.out_dir.join(&cfg.report_name);
    let existing = match std::fs::read_to_string(&md) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    std::fs::write(&md, splice_section(&existing, HEADING, &section(cfg, out)))?;
    eprintln!("[soak] wrote the {HEADING} section of {}", md.display());
    Ok(())
}
