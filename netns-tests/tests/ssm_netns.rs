//! Source-specific multicast over IPv4 and IPv6 (issue 14), raw PGM and EPGM, on a 4-host namespace
//! LAN: hosts 1 and 2 send two sessions on the same group and port; host 3 receives with
//! `--source <host 1>` (an (S1, G) join), host 4 with an any-source join. Host 3 must deliver
//! exactly host 1's session (one verified sender, nothing from host 2 reaching the engine),
//! host 4 both. Run twice: with the bridge flooding multicast (the host's kernel and our
//! transport filter), then with IGMPv3 / MLDv2 snooping on the bridge, where host 2's packets
//! must not even reach host 3's link (a capture on its `eth0`). Over IPv6 the kernel does not
//! filter raw sockets by source at all: there our transport's filter is what keeps host 2's
//! session out (its `source_filtered` counter).
//!
//! Needs root (namespaces, raw sockets, tcpdump); prints SKIPPED and passes otherwise.

use std::time::Duration;

use netns_tests::lan::Lan;
use netns_tests::named_tests;
use netns_tests::tools::{
    assert_no_problems, begin_test, capture_path, complete_problems, spawn_recv_joined, spawn_send,
    wait_all, Encap, Finished, Iface, RecvOpts, SendOpts,
};

const PORT: u16 = 7620;
const COUNT: u64 = 5_000;

/// One run: both senders, the SSM and the ASM receiver; problems found.
fn run(
    lan: &Lan,
    (encap, iface): (Encap, Iface),
    name: &str,
    snooping: bool,
) -> (Vec<String>, Vec<Finished>) {
    let s1 = iface.host_addr(lan.host(0)).to_string();
    let mut ssm = RecvOpts::new(Some(COUNT), 10.0);
    ssm.extra = vec!["--source".into(), s1];
    let asm = RecvOpts::new(Some(2 * COUNT), 10.0);
    let rx_ssm = spawn_recv_joined(lan.host(2), encap, iface, PORT, &ssm).expect("ssm rx");
    let rx_asm = spawn_recv_joined(lan.host(3), encap, iface, PORT, &asm).expect("asm rx");
    // What of host 2's traffic reaches host 3's link.
    let s2 = iface.host_addr(lan.host(1));
    let filter = match (encap, s2.is_ipv6()) {
        (Encap::Raw, false) => format!("ip proto 113 and src host {s2}"),
        (Encap::Raw, true) => format!("ip6 proto 113 and src host {s2}"),
        (Encap::Udp, _) => format!("udp port {PORT} and src host {s2}"),
    };
    let mut cap = snooping.then(|| {
        let path = capture_path(&format!("{name}-snooping")).expect("capture path");
        lan.capture_on(2, path, &filter).expect("tcpdump on host 3")
    });
    let send = SendOpts::new(COUNT, 200, "10M");
    let tx1 = spawn_send(lan.host(0), encap, iface, PORT, &send).expect("sender 1");
    let tx2 = spawn_send(lan.host(1), encap, iface, PORT, &send).expect("sender 2");
    let done = wait_all(
        vec![rx_ssm, rx_asm, tx1, tx2],
        netns_tests::now() + Duration::from_secs(40),
    );
    let mut problems = Vec::new();
    let (ssm, asm) = (&done[0], &done[1]);
    problems.extend(complete_problems(ssm, COUNT));
    // Two sessions, each numbered from 0: only the totals and the checks apply.
    for k in ["gaps", "corrupt", "unrecoverable", "duplicates"] {
        if asm.get(k) != Some(0) {
            problems.push(format!("ASM receiver: {k} = {:?}", asm.get(k)));
        }
    }
    if asm.u("received") != 2 * COUNT || !asm.exited_normally() {
        problems.push(format!(
            "ASM receiver got {} of {}",
            asm.u("received"),
            2 * COUNT
        ));
    }
    if ssm.u("senders") != 1 {
        problems.push(format!(
            "SSM receiver verified {} senders",
            ssm.u("senders")
        ));
    }
    if asm.u("senders") != 2 {
        problems.push(format!(
            "ASM receiver verified {} senders",
            asm.u("senders")
        ));
    }
    // Raw IPv6 sockets get every source of the group from the kernel (see the module docs):
    // with the bridge flooding, host 2's packets reach the SSM receiver's transport, which
    // must drop them itself.
    if encap == Encap::Raw && iface == Iface::Addr6 && !snooping && ssm.u("source_filtered") == 0 {
        problems.push(
            "raw IPv6 SSM receiver: source_filtered = 0, yet the kernel does not filter".into(),
        );
    }
    let others = &ssm.json["others"];
    if others["senders"] != 0 || others["messages"] != 0 {
        problems.push(format!("SSM receiver heard other sessions: {others}"));
    }
    for tx in &done[2..] {
        problems.extend(tx.crash_problems());
        problems.extend(tx.sent_problem(&tx.name, COUNT));
    }
    if let Some(c) = cap.as_mut() {
        let summary = c.stop().unwrap_or_else(|e| e.to_string());
        // tcpdump's "N packets captured" line.
        let n: u64 = summary
            .lines()
            .find(|l| l.contains("packets captured"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|w| w.parse().ok())
            .unwrap_or(u64::MAX);
        eprintln!("{name}: host 2's packets on host 3's link with snooping: {summary}");
        if n != 0 {
            problems.push(format!(
                "with IGMPv3/MLDv2 snooping, {n} of host 2's packets reached host 3's link"
            ));
        } else {
            let _ = std::fs::remove_file(c.path());
        }
    }
    (problems, done)
}

fn ssm(name: &str, encap: Encap, iface: Iface) {
    let Some(_serial) = begin_test(name) else {
        return;
    };
    let mut lan = Lan::new(4).expect("building the LAN");
    if iface == Iface::Addr6 {
        lan.enable_ipv6().expect("IPv6 on the hosts");
    }
    let (mut problems, mut done) = run(&lan, (encap, iface), name, false);
    lan.set_igmp_snooping(true)
        .expect("IGMP snooping on the bridge");
    // The bridge floods until its querier's first response interval (1 s) is over; margin
    // for a busy machine.
    std::thread::sleep(Duration::from_millis(2500));
    let (p2, d2) = run(&lan, (encap, iface), name, true);
    problems.extend(p2);
    done.extend(d2);
    assert_no_problems(name, &problems, &done.iter().collect::<Vec<_>>());
}

named_tests! {
    raw_ssm_delivers_only_the_joined_source => ssm(Encap::Raw, Iface::Addr);
    epgm_ssm_delivers_only_the_joined_source => ssm(Encap::Udp, Iface::Addr);
    raw_ipv6_ssm_delivers_only_the_joined_source => ssm(Encap::Raw, Iface::Addr6);
    epgm_ipv6_ssm_delivers_only_the_joined_source => ssm(Encap::Udp, Iface::Addr6);
}
