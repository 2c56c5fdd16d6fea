//! FEC on demand on the namespace LAN (issue 15): our `pgm-send` → 2 × `pgm-recv --verify`,
//! raw PGM and EPGM, 10 % independent random ingress loss on each receiver, run twice on the
//! same LAN: with selective repair only, then with `pgm-send --fec 16` (parity on demand) and
//! `pgm-recv --fec-receive`. Both runs must deliver everything; the parity run must rebuild
//! most losses from parity and spend fewer repair packets per lost packet than the selective
//! run. The parity run is captured on the bridge and checked with tshark (when installed):
//! our parity NAKs, parity NCFs and parity RDATA are well-formed, checksums good.
//!
//! Needs root (namespaces, raw sockets, nftables); prints SKIPPED and passes otherwise.

use std::time::Duration;

use netns_tests::lan::Lan;
use netns_tests::named_tests;
use netns_tests::tools::{
    assert_no_problems, begin_test, capture_for_tshark, complete_problems, run_tools, Encap,
    RecvOpts, SendOpts, ToolsRun,
};
use netns_tests::tshark::capture_problems;

const PORT: u16 = 7610;
const LIMIT: Duration = Duration::from_mins(1);
/// 20 000 × 200 B at 20 Mbit/s: about 2 s.
const COUNT: u64 = 20_000;

/// One run on `lan`; its problems, and (repair packets sent, packets dropped at the receivers,
/// packets rebuilt from parity).
fn run(lan: &Lan, encap: Encap, fec: bool) -> (ToolsRun, Vec<String>, (u64, u64, u64)) {
    let before: u64 = (1..=2).map(|h| lan.dropped(h).map_or(0, |d| d.0)).sum();
    let mut send = SendOpts::new(COUNT, 200, "20M");
    let mut recv = RecvOpts::new(Some(COUNT), 10.0);
    if fec {
        send.extra = vec!["--fec".into(), "16".into()];
        recv.extra = vec!["--fec-receive".into()];
    }
    let run = run_tools(lan, 0, &[1, 2], encap, PORT, &send, &recv, LIMIT)
        .expect("running pgm-send / pgm-recv");
    let dropped = (1..=2)
        .map(|h| lan.dropped(h).map_or(0, |d| d.0))
        .sum::<u64>()
        - before;
    let mut problems = Vec::new();
    for r in &run.receivers {
        problems.extend(
            complete_problems(r, COUNT)
                .into_iter()
                .map(|p| format!("{}: {p}", r.name)),
        );
    }
    problems.extend(run.sender.crash_problems());
    problems.extend(run.sender.sent_problem("sender", COUNT));
    let s = &run.sender;
    let repairs = s.u("rdata_sent") + s.u("parity_sent");
    let rebuilt = run.receivers.iter().map(|r| r.u("fec_recovered")).sum();
    (run, problems, (repairs, dropped, rebuilt))
}

fn on_demand_vs_selective(name: &str, encap: Encap) {
    let Some(_serial) = begin_test(name) else {
        return;
    };
    let lan = Lan::new(3).expect("building the LAN");
    for h in 1..=2 {
        lan.set_loss(h, 100, 0).expect("setting loss");
    }
    let (sel_run, mut problems, (sel_repairs, sel_lost, _)) = run(&lan, encap, false);
    let mut cap = capture_for_tshark(&lan, name, &format!("ip proto 113 or udp port {PORT}"));
    let (fec_run, fec_problems, (fec_repairs, fec_lost, rebuilt)) = run(&lan, encap, true);
    problems.extend(fec_problems);
    if let Some(c) = cap.as_mut() {
        let ok = problems.is_empty();
        problems.extend(capture_problems(c, name, PORT, true, ok));
    }
    let per = |repairs: u64, lost: u64| repairs as f64 / lost.max(1) as f64;
    let (sel, fec) = (per(sel_repairs, sel_lost), per(fec_repairs, fec_lost));
    eprintln!(
        "{name}: selective {sel_repairs} repairs for {sel_lost} dropped ({sel:.3}/dropped); \
         on-demand parity {fec_repairs} repairs ({} parity) for {fec_lost} dropped \
         ({fec:.3}/dropped), {rebuilt} rebuilt",
        fec_run.sender.u("parity_sent")
    );
    if fec_run.sender.u("parity_sent") == 0 {
        problems.push("no parity was sent on demand".into());
    }
    if rebuilt * 2 < fec_lost {
        problems.push(format!(
            "only {rebuilt} of {fec_lost} dropped packets rebuilt"
        ));
    }
    if fec >= sel {
        problems.push(format!(
            "parity spent {fec:.3} repair packets per dropped packet, selective {sel:.3}"
        ));
    }
    let mut all = sel_run.all();
    all.extend(fec_run.all());
    assert_no_problems(name, &problems, &all);
}

named_tests! {
    raw_on_demand_parity_beats_selective_repair => on_demand_vs_selective(Encap::Raw);
    epgm_on_demand_parity_beats_selective_repair => on_demand_vs_selective(Encap::Udp);
}
