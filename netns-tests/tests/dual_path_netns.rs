//! Dual-path (A/B) sessions on the namespace LAN (issue 17 §2, docs/dual-path.md): `pgm-send
//! --second-path` on h0 sends the session on group A and group B; on h1 `pgm-recv
//! --second-path` merges both; on h2 a single-path `pgm-recv` of group A is the control.
//! Loss is nftables per group on each receiver's ingress, drawn for each group independently.
//!
//! - 5 % loss on each path: both receivers get everything; h1 NAKs only about what both paths
//!   lost (≈ 0.25 %), h2 about 5 %; h1 discards the second copies as duplicates and delivers
//!   each message once. The skew between the paths is measured from a capture on h1. Once
//!   more with path B over its own interface (a veth pair from h0 to h1).
//! - Path A cut for 10 s mid-run: h1 gets everything with no pause in delivery beyond the NAK
//!   back-off.
//! - Interop (with `python3-zmq`): `pgm-pub --second-path` on h0; a libzmq SUB on h1 connected
//!   to group B alone, with 5 % loss, is repaired (its NAKs name group B); `pgm-sub
//!   --second-path` on h2 gets everything too.
//!
//! Needs root (namespaces, raw sockets, nftables, tcpdump); prints SKIPPED and passes otherwise.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr},
    process::Command,
    thread,
    time::Duration,
};

use netns_tests::{
    deps::{require, Need},
    lan::{Host, Lan, Loss, GROUP},
    named_tests, now,
    tools::{
        assert_no_problems, begin_test, capture_path, complete_problems, finish_run,
        spawn_recv_joined, spawn_send, tools_dir, Encap, Iface, RecvOpts, SendOpts,
    },
    zmq::{
        expected_topics, spawn_pub, spawn_sub_joined, topic_problems, topics, zmq_python, PubOpts,
        SubOpts, ZmqSubOpts,
    },
};

const PORT: u16 = 7650;
const GROUP_B: Ipv4Addr = Ipv4Addr::new(239, 192, 2, 1);
/// 20 000 × 200 B at 20 Mbit/s: about 2 s.
const COUNT: u64 = 20_000;

/// `--second-path` on the hosts' `eth0` (both paths through the one bridge).
fn second_path() -> Vec<String> {
    second_path_on("eth0")
}

fn second_path_on(iface: &str) -> Vec<String> {
    vec!["--second-path".into(), format!("{iface};{GROUP_B}:{PORT}")]
}

/// The B line of the two-interface runs: a veth pair straight from h0 to h1 (inside their
/// namespaces, so it goes with them), 10.77.0.1 on h0 and 10.77.0.2 on h1.
const LINE_B: [&str; 2] = ["10.77.0.1", "10.77.0.2"];

fn add_line_b(lan: &Lan) {
    let (h0, h1) = (lan.host(0), lan.host(1));
    h0.run(
        "ip",
        &[
            "link",
            "add",
            "lineb",
            "type",
            "veth",
            "peer",
            "name",
            "lineb",
            "netns",
            h1.ns(),
        ],
    )
    .expect("creating the B line");
    for (h, addr) in [(h0, LINE_B[0]), (h1, LINE_B[1])] {
        h.run(
            "ip",
            &["addr", "add", &format!("{addr}/24"), "dev", "lineb"],
        )
        .expect("addressing the B line");
        h.run("ip", &["link", "set", "lineb", "up"])
            .expect("raising the B line");
    }
}

fn groups(a: Loss, b: Loss) -> Vec<(IpAddr, Loss)> {
    vec![(IpAddr::V4(GROUP), a), (IpAddr::V4(GROUP_B), b)]
}

/// 5 % independent loss on each path; with `two_lines` path B runs over its own interface
/// (a veth pair from h0 to h1) instead of the bridge.
fn independent_loss(name: &str, encap: Encap, two_lines: bool) {
    let Some(_serial) = begin_test(name) else {
        return;
    };
    let lan = Lan::new(3).expect("building the LAN");
    if two_lines {
        add_line_b(&lan);
    }
    let (tx_b, rx_b) = if two_lines {
        (second_path_on(LINE_B[0]), second_path_on(LINE_B[1]))
    } else {
        (second_path(), second_path())
    };
    let five = Loss::Random(50);
    lan.set_group_loss(1, &groups(five, five)).expect("loss");
    lan.set_group_loss(2, &groups(five, Loss::None))
        .expect("loss");
    let pcap = capture_path(name).expect("capture path");
    let filter = match encap {
        Encap::Raw => "ip proto 113".to_owned(),
        Encap::Udp => format!("udp port {PORT}"),
    };
    let mut cap = lan.capture_on(1, &pcap, &filter).expect("tcpdump on h1");
    let mut send = SendOpts::new(COUNT, 200, "20M");
    send.extra = tx_b;
    let mut dual = RecvOpts::new(Some(COUNT), 10.0);
    dual.extra = rx_b;
    let single = RecvOpts::new(Some(COUNT), 10.0);
    let start = now();
    let receivers = vec![
        spawn_recv_joined(lan.host(1), encap, Iface::Addr, PORT, &dual).expect("pgm-recv h1"),
        spawn_recv_joined(lan.host(2), encap, Iface::Addr, PORT, &single).expect("pgm-recv h2"),
    ];
    let sender = spawn_send(lan.host(0), encap, Iface::Addr, PORT, &send).expect("pgm-send");
    let run = finish_run(
        sender,
        receivers,
        start + Duration::from_mins(1),
        Duration::from_secs(1),
    );
    cap.stop().expect("stopping tcpdump");
    let drops = lan.group_dropped(1, 2).expect("counters");
    let (h1, h2) = (&run.receivers[0], &run.receivers[1]);
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
    let (dual_naks, single_naks) = (h1.u("nak_sqns_sent"), h2.u("nak_sqns_sent"));
    let skew = skew_us(&pcap, encap);
    let skew_text = if two_lines {
        "skew not captured (B has its own interface)".to_owned()
    } else {
        format!(
            "skew B − A over {} ODATA: median {} µs, p99 {} µs, max |skew| {} µs",
            skew.count, skew.median, skew.p99, skew.max_abs
        )
    };
    eprintln!(
        "{name}: h1 (A+B, {} + {} dropped) NAKed {dual_naks} sqns in {} NAKs, {} duplicates \
         discarded, {} + {} packets on A + B; h2 (A only) NAKed {single_naks} sqns; {skew_text}",
        drops[0],
        drops[1],
        h1.u("naks_sent"),
        h1.u("duplicates_discarded"),
        h1.u("first_path_received"),
        h1.u("second_path_received"),
    );
    // Expected: 0.25 % of COUNT = 50 sqns lost on both paths (a NAK lost on the way
    // back, or an RDATA lost on both paths, asks for one again).
    if dual_naks > COUNT / 100 {
        problems.push(format!("h1 NAKed {dual_naks} sqns, more than 1 %"));
    }
    if single_naks < COUNT * 3 / 100 || single_naks < 5 * dual_naks {
        problems.push(format!(
            "h2 (one path) NAKed {single_naks} sqns, h1 (two) {dual_naks}: no reduction"
        ));
    }
    if h1.u("duplicates_discarded") < COUNT * 8 / 10 || h1.u("duplicates") != 0 {
        problems.push("h1: the second copies were not discarded as duplicates".into());
    }
    if h1.u("second_path_received") < COUNT * 8 / 10 || h2.u("second_path_received") != 0 {
        problems.push("the second path did not reach h1 alone".into());
    }
    // The capture is of h1's eth0: it sees path B only when B shares the bridge.
    if !two_lines && skew.count < COUNT / 2 {
        problems.push(format!("only {} ODATA seen on both paths", skew.count));
    }
    assert_no_problems(name, &problems, &run.all());
    let _ = std::fs::remove_file(&pcap);
}

/// Path A cut (everything to group A dropped at h1) for 10 s in the middle of a 14 s run;
/// h2, another two-path receiver whose paths stay up, shows the pauses the machine makes
/// anyway.
fn path_cut(name: &str, encap: Encap) {
    let Some(_serial) = begin_test(name) else {
        return;
    };
    let lan = Lan::new(3).expect("building the LAN");
    // 28 000 × 200 B at 4 Mbit/s: about 14 s.
    let count = 28_000;
    let mut send = SendOpts::new(count, 200, "4M");
    send.extra = second_path();
    let mut recv = RecvOpts::new(Some(count), 10.0);
    recv.extra = second_path();
    let start = now();
    let receivers = (1..=2)
        .map(|h| spawn_recv_joined(lan.host(h), encap, Iface::Addr, PORT, &recv).expect("pgm-recv"))
        .collect();
    let sender = spawn_send(lan.host(0), encap, Iface::Addr, PORT, &send).expect("pgm-send");
    thread::sleep(Duration::from_secs(2));
    lan.set_group_loss(1, &groups(Loss::Random(1000), Loss::None))
        .expect("cutting path A");
    thread::sleep(Duration::from_secs(10));
    let cut = lan.group_dropped(1, 2).expect("counters")[0];
    lan.set_group_loss(1, &[]).expect("restoring path A");
    let run = finish_run(
        sender,
        receivers,
        start + Duration::from_mins(1),
        Duration::from_secs(1),
    );
    let mut problems = Vec::new();
    for r in &run.receivers {
        problems.extend(
            complete_problems(r, count)
                .into_iter()
                .map(|p| format!("{}: {p}", r.name)),
        );
    }
    problems.extend(run.sender.crash_problems());
    problems.extend(run.sender.sent_problem("sender", count));
    let gap = |i: usize| {
        run.receivers[i]
            .json
            .get("max_gap_ms")
            .and_then(serde_json::Value::as_f64)
    };
    let (r, gap, calm) = (&run.receivers[0], gap(0), gap(1));
    eprintln!(
        "{name}: path A cut for 10 s ({cut} packets dropped): {} NAKs, {} duplicates \
         discarded, {} + {} packets on A + B, longest pause in delivery {gap:?} ms (h2, both \
         paths up: {calm:?} ms)",
        r.u("naks_sent"),
        r.u("duplicates_discarded"),
        r.u("first_path_received"),
        r.u("second_path_received"),
    );
    if cut < 10_000 {
        problems.push(format!("the cut dropped only {cut} packets"));
    }
    // At 2000 messages/s a message is due every 0.5 ms; the LAN NAK back-off is 2.5 ms. The
    // bound leaves room for the pauses a loaded 2-core machine makes anyway (h2's).
    let bound = calm.map_or(50.0, |c| (c + 25.0).max(50.0));
    match gap {
        Some(ms) if ms <= bound => {}
        other => problems.push(format!(
            "longest pause in delivery {other:?} ms, more than {bound} ms"
        )),
    }
    assert_no_problems(name, &problems, &run.all());
}

/// A libzmq SUB of path B alone, with 5 % loss, next to a two-path `pgm-sub`.
fn libzmq_on_one_path(name: &str) {
    let Some(_serial) = begin_test(name) else {
        return;
    };
    if !require(name, &[Need::Zmq]) {
        return;
    }
    let count = 10_000;
    let encap = Encap::Udp;
    let lan = Lan::new(3).expect("building the LAN");
    let five = Loss::Random(50);
    lan.set_group_loss(1, &groups(Loss::None, five))
        .expect("loss");
    lan.set_group_loss(2, &groups(five, five)).expect("loss");
    let topics = topics(20);
    let want = expected_topics(&topics, count, &[""]);
    let start = now();
    let python = zmq_python().expect("libzmq with PGM");
    let h1 = lan.host(1);
    let zmq_ep = format!("epgm://{};{GROUP_B}:{PORT}", h1.addr());
    let mut zmq = h1
        .spawn(&python, &ZmqSubOpts::new(count, &[""]).args(&zmq_ep))
        .expect("spawning a libzmq SUB");
    zmq.wait_ready(Duration::from_secs(10))
        .expect("libzmq SUB ready");
    wait_for_group(h1, GROUP_B);
    let mut sub = SubOpts::new(count, &[""]);
    sub.extra = second_path();
    let ours = spawn_sub_joined(lan.host(2), encap, PORT, &sub).expect("pgm-sub");
    let mut opts = PubOpts::new(count, &topics, "100", "10M");
    opts.extra = second_path();
    let publisher = spawn_pub(lan.host(0), encap, PORT, &opts).expect("pgm-pub");
    let done = finish_run(
        publisher,
        vec![zmq, ours],
        start + Duration::from_mins(1),
        Duration::from_secs(3),
    );
    let mut problems = done.sender.crash_problems();
    problems.extend(done.sender.sent_problem("pgm-pub", count));
    for r in &done.receivers {
        for p in topic_problems(r, &want) {
            problems.push(format!("{}: {p}", r.name));
        }
    }
    let dropped = lan.group_dropped(1, 2).expect("counters")[1];
    eprintln!(
        "{name}: libzmq SUB on path B lost {dropped} packets to nftables and got every message; \
         pgm-pub received {} NAKs",
        done.sender.u("naks_received")
    );
    if dropped == 0 || done.sender.u("naks_received") == 0 {
        problems.push("no loss on path B, or no NAK answered".into());
    }
    assert_no_problems(name, &problems, &done.all());
}

/// Waits (10 s at most) until `group` is joined on `host`, then a little longer.
fn wait_for_group(host: &Host, group: Ipv4Addr) {
    let o = group.octets();
    let hex = format!("{:02X}{:02X}{:02X}{:02X}", o[3], o[2], o[1], o[0]);
    let deadline = now() + Duration::from_secs(10);
    while !host
        .run("cat", &["/proc/net/igmp"])
        .is_ok_and(|t| t.contains(&hex))
    {
        assert!(now() < deadline, "{group} not joined on {}", host.ns());
        thread::sleep(Duration::from_millis(25));
    }
    thread::sleep(Duration::from_millis(300));
}

/// The skew between the paths at the receiver: for each ODATA sqn seen on both groups, its
/// arrival on B minus its arrival on A.
#[derive(Debug, Default)]
struct Skew {
    count: u64,
    median: i64,
    p99: i64,
    max_abs: i64,
}

/// Reads the capture with `pgm-dump --json` and measures [`Skew`].
fn skew_us(pcap: &std::path::Path, encap: Encap) -> Skew {
    let dump = tools_dir().expect("tools").join("pgm-dump");
    let mut cmd = Command::new(dump);
    cmd.arg("--json").arg("--pcap").arg(pcap);
    if encap == Encap::Udp {
        cmd.args(["--udp-port", &PORT.to_string()]);
    }
    let out = cmd.output().expect("running pgm-dump");
    let (group_a, group_b) = (GROUP.to_string(), GROUP_B.to_string());
    let mut first: HashMap<u64, (Option<f64>, Option<f64>)> = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(rec) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if rec.get("type").and_then(|t| t.as_str()) != Some("ODATA") {
            continue;
        }
        let (Some(t), Some(sqn), Some(dst)) = (
            rec.get("time").and_then(serde_json::Value::as_f64),
            rec.get("sqn").and_then(serde_json::Value::as_u64),
            rec.get("dst").and_then(serde_json::Value::as_str),
        ) else {
            continue;
        };
        let e = first.entry(sqn).or_default();
        if dst == group_a {
            e.0.get_or_insert(t);
        } else if dst == group_b {
            e.1.get_or_insert(t);
        }
    }
    #[expect(clippy::cast_possible_truncation, reason = "µs of a LAN skew")]
    let mut d: Vec<i64> = first
        .values()
        .filter_map(|&(on_a, on_b)| Some(((on_b? - on_a?) * 1e6).round() as i64))
        .collect();
    if d.is_empty() {
        return Skew::default();
    }
    d.sort_unstable();
    Skew {
        count: d.len() as u64,
        median: d[d.len() / 2],
        p99: d[d.len() * 99 / 100],
        max_abs: d.iter().map(|x| x.abs()).max().unwrap_or(0),
    }
}

named_tests! {
    raw_five_percent_on_each_path_naks_only_what_both_lost =>
        independent_loss(Encap::Raw, false);
    epgm_five_percent_on_each_path_naks_only_what_both_lost =>
        independent_loss(Encap::Udp, false);
    epgm_second_path_over_its_own_interface => independent_loss(Encap::Udp, true);
    epgm_path_cut_for_ten_seconds_costs_no_pause => path_cut(Encap::Udp);
    libzmq_sub_on_one_path_is_repaired => libzmq_on_one_path();
}
