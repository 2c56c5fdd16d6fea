//! PGM over IPv6 (issue 14), raw (next header 113) and EPGM (UDP/IPv6), on a 3-host namespace
//! LAN with unique-local addresses: our `pgm-send` → 2 × `pgm-recv --verify`, one receiver
//! losing 5 % and the other 10 % of what arrives (nftables, random). 200 B × 20 000 and
//! 20 KiB × 300 (each APDU in 15 fragments): everything delivered, exact, in order. The
//! interface is named by its IPv6 address with the group in brackets for raw PGM, and by name
//! with the bare group (libzmq's form) for EPGM. The sender's SPMs and the receivers' NAKs
//! carry IPv6 NLAs (AFI 2). A bridge capture is checked with tshark when it is installed, and
//! `pgm-dump` must count the same packets of each type in it.
//!
//! Needs root (namespaces, raw sockets, nftables); prints SKIPPED and passes otherwise.

use std::time::Duration;

use netns_tests::lan::Lan;
use netns_tests::named_tests;
use netns_tests::tools::{
    assert_no_problems, begin_test, capture_for_tshark, complete_problems, run_tools_with, Encap,
    Finished, Iface, RecvOpts, SendOpts,
};
use netns_tests::tshark::capture_and_dump_problems;

const PORT: u16 = 7630;
const LIMIT: Duration = Duration::from_mins(1);

fn ipv6(name: &str, encap: Encap, iface: Iface) {
    let Some(_serial) = begin_test(name) else {
        return;
    };
    let mut lan = Lan::new(3).expect("building the LAN");
    lan.enable_ipv6().expect("IPv6 on the hosts");
    lan.set_loss(1, 50, 0).expect("5 % loss");
    lan.set_loss(2, 100, 0).expect("10 % loss");
    let mut cap = capture_for_tshark(
        &lan,
        name,
        &format!("ip6 and (ip6 proto 113 or udp port {PORT})"),
    );
    let mut problems = Vec::new();
    let mut all: Vec<Finished> = Vec::new();
    for (count, size, rate) in [(20_000u64, 200usize, "20M"), (300, 20 * 1024, "20M")] {
        let send = SendOpts::new(count, size, rate);
        let recv = RecvOpts::new(Some(count), 15.0);
        let run = run_tools_with(&lan, 0, &[1, 2], (encap, iface), PORT, &send, &recv, LIMIT)
            .expect("running pgm-send / pgm-recv");
        for r in &run.receivers {
            problems.extend(
                complete_problems(r, count)
                    .into_iter()
                    .map(|p| format!("{size} B: {}: {p}", r.name)),
            );
            if r.u("naks_sent") == 0 {
                problems.push(format!("{size} B: {} sent no NAKs under loss", r.name));
            }
        }
        problems.extend(run.sender.crash_problems());
        problems.extend(run.sender.sent_problem("sender", count));
        if run.sender.u("rdata_sent") == 0 {
            problems.push(format!("{size} B: the sender repaired nothing"));
        }
        // UDP GSO works over IPv6 as over IPv4 (the bridge ports segment nothing here: the
        // hosts' veths cut the runs).
        if run.sender.get("gso_refused") != Some(0) {
            problems.push(format!(
                "{size} B: gso_refused {:?}",
                run.sender.get("gso_refused")
            ));
        }
        eprintln!(
            "{name}: {count} × {size} B in {:.2} s; RDATA {}; dropped at the receivers {:?} {:?}",
            run.elapsed.as_secs_f64(),
            run.sender.u("rdata_sent"),
            lan.dropped(1).ok(),
            lan.dropped(2).ok(),
        );
        all.push(run.sender);
        all.extend(run.receivers);
    }
    if let Some(c) = cap.as_mut() {
        let ok = problems.is_empty();
        problems.extend(capture_and_dump_problems(c, name, PORT, true, ok));
    }
    assert_no_problems(name, &problems, &all.iter().collect::<Vec<_>>());
}

named_tests! {
    raw_ipv6_with_loss_is_complete => ipv6(Encap::Raw, Iface::Addr6);
    epgm_ipv6_with_loss_is_complete => ipv6(Encap::Udp, Iface::Name6);
}
