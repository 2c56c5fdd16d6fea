//! PGMCC on the namespace LAN (issue 16): `pgm-send` → two `pgm-recv --verify`, the bridge
//! port towards the first receiver limited to 20 Mbit/s (tbf, 50-packet queue, tail drop), the
//! other not limited, the sender without `--rate`. With `--congestion pgmcc` on all of them
//! both receivers verify everything and the bottlenecked one loses little at the tbf and sends
//! few NAKs; the same run without congestion control is recorded next to it (its drops and
//! NAKs), to show what PGMCC saves.
//!
//! Whichever receiver reports first is the first ACKer. When it is the fast one, its ACKs see
//! nothing of the bottleneck's queue: pacing at one window per 15 ms floor bounds how far its
//! window opens before the bottlenecked receiver's first loss report takes over, and every
//! receiver reports once at the start, so that this first report is not held back by an ARP
//! reply lost in the congested queue (docs/congestion.md, "the first ACKer").
//!
//! TCP-friendliness: one bulk TCP flow (`peers/tcp_flow.py`) and one PGMCC session through the
//! same 20 Mbit/s bottleneck to one receiver; over the PGMCC transfer each gets at least a
//! third of the bottleneck.
//!
//! Needs root (namespaces, tc, nftables); prints SKIPPED and passes otherwise.

use std::time::Duration;

use netns_tests::lan::Lan;
use netns_tests::named_tests;
use netns_tests::tools::{
    assert_no_problems, begin_test, complete_problems, run_tools, spawn_recv_joined, spawn_send,
    stop, wait_one, Encap, Finished, Iface, RecvOpts, SendOpts,
};

const PORT: u16 = 7640;
const COUNT: u64 = 5_000;
const SIZE: usize = 1_000;
const BOTTLENECK: u64 = 20_000_000;

struct Outcome {
    problems: Vec<String>,
    procs: Vec<Finished>,
    tbf_drops: u64,
    naks: u64,
    switches: u64,
    elapsed_s: f64,
}

fn run(lan: &Lan, encap: Encap, pgmcc: bool) -> Outcome {
    let before = lan.port_drops(1).unwrap_or(0);
    let mut send = SendOpts::new(COUNT, SIZE, "1G");
    send.rate = None;
    let mut recv = RecvOpts::new(Some(COUNT), 20.0);
    if pgmcc {
        send.extra = vec!["--congestion".into(), "pgmcc".into()];
        recv.extra = vec!["--congestion".into(), "pgmcc".into()];
    }
    let run = run_tools(
        lan,
        0,
        &[1, 2],
        encap,
        PORT,
        &send,
        &recv,
        Duration::from_mins(1),
    )
    .expect("running pgm-send / pgm-recv");
    let tbf_drops = lan.port_drops(1).unwrap_or(0).saturating_sub(before);
    let mut problems = Vec::new();
    for r in &run.receivers {
        problems.extend(
            complete_problems(r, COUNT)
                .into_iter()
                .map(|p| format!("{}: {p}", r.name)),
        );
    }
    problems.extend(run.sender.crash_problems());
    // The bottlenecked receiver is the first.
    let naks = run.receivers.first().map_or(0, |r| r.u("naks_sent"));
    let switches = run.sender.u("pgmcc_acker_switches");
    let elapsed_s = run.elapsed.as_secs_f64();
    let mut procs = vec![run.sender];
    procs.extend(run.receivers);
    Outcome {
        problems,
        procs,
        tbf_drops,
        naks,
        switches,
        elapsed_s,
    }
}

fn pgmcc(name: &str, encap: Encap) {
    let Some(_serial) = begin_test(name) else {
        return;
    };
    let lan = Lan::new(3).expect("building the LAN");
    lan.set_port_rate(1, BOTTLENECK, 50 * 1_100)
        .expect("tbf on the bridge port to the receiver");
    let with = run(&lan, encap, true);
    let without = run(&lan, encap, false);
    let offered = (COUNT * SIZE as u64 * 8) as f64;
    eprintln!(
        "{name}: {COUNT} × {SIZE} B to receiver 2 through a {} Mbit/s bottleneck and to \
         receiver 3\n  \
         PGMCC:   {:.2} s ({:.1} Mbit/s), tbf drops {}, its NAKs {}, ACKer elections {}\n  \
         without: {:.2} s ({:.1} Mbit/s), tbf drops {}, its NAKs {}, complete: {}",
        BOTTLENECK / 1_000_000,
        with.elapsed_s,
        offered / with.elapsed_s / 1e6,
        with.tbf_drops,
        with.naks,
        with.switches,
        without.elapsed_s,
        offered / without.elapsed_s / 1e6,
        without.tbf_drops,
        without.naks,
        without.problems.is_empty()
    );
    let mut problems = with.problems;
    // Under 1 % of the ODATA lost at the bottleneck, and few NAKs for it.
    if with.tbf_drops * 100 > COUNT {
        problems.push(format!("PGMCC: {} drops at the bottleneck", with.tbf_drops));
    }
    if with.naks * 50 > COUNT {
        problems.push(format!(
            "PGMCC: the bottlenecked receiver sent {} NAKs",
            with.naks
        ));
    }
    let all: Vec<&Finished> = with.procs.iter().chain(&without.procs).collect();
    assert_no_problems(name, &problems, &all);
}

/// The TCP sink's "T BYTES" lines: bytes received by CLOCK_MONOTONIC second `t`.
fn tcp_bytes_at(lines: &str, t: f64) -> Option<f64> {
    lines
        .lines()
        .filter_map(|l| {
            let (a, b) = l.split_once(' ')?;
            Some((a.parse::<f64>().ok()?, b.parse::<f64>().ok()?))
        })
        .take_while(|&(at, _)| at <= t)
        .last()
        .map(|(_, bytes)| bytes)
}

fn tcp_friendly(name: &str, encap: Encap) {
    let Some(_serial) = begin_test(name) else {
        return;
    };
    let lan = Lan::new(2).expect("building the LAN");
    lan.set_port_rate(1, BOTTLENECK, 50 * 1_100)
        .expect("tbf on the bridge port to the receiver");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/tcp_flow.py");
    let rx_addr = lan.host(1).addr().to_string();
    let mut sink = lan
        .host(1)
        .spawn("python3", &[script, "sink", &rx_addr, "5201", "60"])
        .expect("TCP sink");
    sink.wait_for_stderr("READY", Duration::from_secs(10))
        .expect("TCP sink ready");
    let count = 10_000;
    let mut recv = RecvOpts::new(Some(count), 20.0);
    recv.extra = vec!["--congestion".into(), "pgmcc".into()];
    let rx = spawn_recv_joined(lan.host(1), encap, Iface::Addr, PORT, &recv).expect("pgm-recv");
    let tcp = lan
        .host(0)
        .spawn("python3", &[script, "source", &rx_addr, "5201", "40"])
        .expect("TCP source");
    // TCP first, so PGMCC meets a queue TCP already keeps full.
    std::thread::sleep(Duration::from_secs(1));
    let mut send = SendOpts::new(count, SIZE, "1G");
    send.rate = None;
    send.extra = vec!["--congestion".into(), "pgmcc".into()];
    let tx = spawn_send(lan.host(0), encap, Iface::Addr, PORT, &send).expect("pgm-send");
    let rx = wait_one(rx, netns_tests::now() + Duration::from_mins(1));
    let tx = stop(tx, Duration::from_secs(3));
    let tcp = stop(tcp, Duration::from_secs(1));
    let sink = stop(sink, Duration::from_secs(3));
    let mut problems = complete_problems(&rx, count);
    // The PGMCC transfer's span in CLOCK_MONOTONIC seconds, from the receiver's report.
    let end = rx.u("last_mono_ns") as f64 / 1e9;
    let span = rx.json["elapsed_s"].as_f64().unwrap_or(0.0);
    let pgm_mbit = (count * SIZE as u64 * 8) as f64 / span.max(1e-3) / 1e6;
    let tcp_bytes = tcp_bytes_at(&sink.out.stdout, end)
        .zip(tcp_bytes_at(&sink.out.stdout, end - span))
        .map_or(0.0, |(b, a)| b - a);
    let tcp_mbit = tcp_bytes * 8.0 / span.max(1e-3) / 1e6;
    eprintln!(
        "{name}: over the {span:.2} s of the PGMCC transfer through {} Mbit/s: PGMCC {pgm_mbit:.1} \
         Mbit/s, TCP {tcp_mbit:.1} Mbit/s",
        BOTTLENECK / 1_000_000
    );
    let third = BOTTLENECK as f64 / 3.0 / 1e6;
    if pgm_mbit < third || tcp_mbit < third {
        problems.push(format!(
            "unfair share: PGMCC {pgm_mbit:.1}, TCP {tcp_mbit:.1} Mbit/s (each ≥ {third:.1} wanted)"
        ));
    }
    assert_no_problems(name, &problems, &[&tx, &rx, &tcp, &sink]);
}

named_tests! {
    epgm_pgmcc_shares_a_bottleneck_with_tcp => tcp_friendly(Encap::Udp);
    raw_pgmcc_follows_a_20_mbit_bottleneck => pgmcc(Encap::Raw);
    epgm_pgmcc_follows_a_20_mbit_bottleneck => pgmcc(Encap::Udp);
}
