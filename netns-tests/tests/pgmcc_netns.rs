//! PGMCC on the namespace LAN (issue 16): `pgm-send` → 2 × `pgm-recv --verify`, the bridge port
//! towards receiver 2 limited to 20 Mbit/s (tbf, 50-packet queue, tail drop), the sender
//! without `--rate`. With `--congestion pgmcc` on all three both receivers verify everything
//! and the bottlenecked one loses little at the tbf; the same run without congestion control
//! is recorded next to it (its drops and NAKs), to show what PGMCC saves.
//!
//! Needs root (namespaces, tc, nftables); prints SKIPPED and passes otherwise.

use std::time::Duration;

use netns_tests::lan::Lan;
use netns_tests::named_tests;
use netns_tests::tools::{
    assert_no_problems, begin_test, complete_problems, run_tools, Encap, Finished, RecvOpts,
    SendOpts,
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
    elapsed_s: f64,
}

fn run(lan: &Lan, encap: Encap, pgmcc: bool) -> Outcome {
    let before = lan.port_drops(2).unwrap_or(0);
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
    let tbf_drops = lan.port_drops(2).unwrap_or(0).saturating_sub(before);
    let mut problems = Vec::new();
    for r in &run.receivers {
        problems.extend(
            complete_problems(r, COUNT)
                .into_iter()
                .map(|p| format!("{}: {p}", r.name)),
        );
    }
    problems.extend(run.sender.crash_problems());
    let naks = run.receivers.get(1).map_or(0, |r| r.u("naks_sent"));
    let elapsed_s = run.elapsed.as_secs_f64();
    let mut procs = vec![run.sender];
    procs.extend(run.receivers);
    Outcome {
        problems,
        procs,
        tbf_drops,
        naks,
        elapsed_s,
    }
}

fn pgmcc(name: &str, encap: Encap) {
    let Some(_serial) = begin_test(name) else {
        return;
    };
    let lan = Lan::new(3).expect("building the LAN");
    lan.set_port_rate(2, BOTTLENECK, 50 * 1_100)
        .expect("tbf on the bridge port to receiver 2");
    let with = run(&lan, encap, true);
    let without = run(&lan, encap, false);
    let offered = (COUNT * SIZE as u64 * 8) as f64;
    eprintln!(
        "{name}: {COUNT} × {SIZE} B through a {} Mbit/s bottleneck to receiver 2\n  \
         PGMCC:   {:.2} s ({:.1} Mbit/s), tbf drops {}, its NAKs {}\n  \
         without: {:.2} s ({:.1} Mbit/s), tbf drops {}, its NAKs {}, complete: {}",
        BOTTLENECK / 1_000_000,
        with.elapsed_s,
        offered / with.elapsed_s / 1e6,
        with.tbf_drops,
        with.naks,
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

named_tests! {
    raw_pgmcc_follows_a_20_mbit_bottleneck => pgmcc(Encap::Raw);
    epgm_pgmcc_follows_a_20_mbit_bottleneck => pgmcc(Encap::Udp);
}
