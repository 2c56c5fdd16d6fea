//! A LAN of Linux network namespaces: one namespace holding a bridge, N host namespaces each
//! with a veth into the bridge.
//!
//! Layout of `Lan::new(n)` (names carry the PID and a per-process counter, e.g. `pgmt-4242-0`):
//!
//! - `pgmt-PID-K-br`: bridge `br0` (`mcast_snooping 0`, so multicast floods without an IGMP
//!   querier, STP off) with ports `vh1..vhN`.
//! - `pgmt-PID-K-hI` for I in 1..=N: interface `eth0` (the veth peer of `vhI`) with address
//!   `10.A.B.I/24` (A and B derived from PID and K), `lo` up, a `224.0.0.0/4` route on `eth0`,
//!   IPv6 disabled (keeps captures free of ND/MLD noise).
//!
//! No interface, address or route is created in the root namespace: the veth pair is created
//! inside the bridge namespace with its peer moved straight into the host namespace.
//!
//! **Loss** (`set_loss`, `set_loss_pattern`) uses nftables in the host's namespace: a table
//! `inet pgmt_PID_K_hI` with an `input` and an `output` filter chain. Only PGM (IP protocol
//! 113) and UDP packets are dropped, so ARP (never seen by `inet` tables), ICMP and IGMP keep
//! working and loss never breaks address resolution; EPGM is UDP. Drops are counted in the
//! named counters `ingress_drops` / `egress_drops` ([`Lan::dropped`]).
//!
//! **Segmentation**: a UDP sender may hand the kernel a GSO super-packet (EPGM does, see
//! `SocketOptions::udp_gso`); veth and bridge carry it whole unless a device on the way
//! cannot. [`Segmentation`] says where it is cut into the datagrams a real network carries:
//! at the sending host's `eth0` (default: a NIC without UDP segmentation offload; every
//! capture, loss rule and receiver sees single datagrams), or at the bridge's ports (a NIC
//! with offload: the sender's IP stack and veth run once per run of packets, receivers and
//! their loss rules still see single datagrams, but a capture on `br0` sees super-packets),
//! or nowhere (`Plain`: a bridge and veths on the kernel's defaults, as a user would build
//! it; the receiving hosts' UDP stacks cut super-packets in software).
//!
//! **Rate** (`set_rate`) puts a `tbf` qdisc on the host's `eth0` (egress). There is no netem in
//! this kernel, so no delay or reordering.
//!
//! **Teardown**: dropping the [`Lan`] (also while unwinding from a panic) kills every process
//! left in its namespaces and deletes them, which also removes veths, the bridge, nftables
//! tables and qdiscs. The first `Lan::new` of a process also removes namespaces of earlier runs
//! whose PID no longer exists (a run killed with SIGKILL cannot clean up after itself).

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;
use std::thread;
use std::time::Duration;

use crate::now;
use crate::proc::Proc;

/// Prefix of every namespace this crate creates.
pub const NS_PREFIX: &str = "pgmt-";

/// The multicast group the tests use (each LAN is isolated, so one constant suffices).
pub const GROUP: Ipv4Addr = Ipv4Addr::new(239, 192, 1, 1);

/// The IPv6 test group (organisation-local scope, so no interface scope is needed).
pub const GROUP6: Ipv6Addr = Ipv6Addr::new(0xff18, 0, 0, 0, 0, 0, 0x7067, 1);

static LAN_COUNTER: AtomicU32 = AtomicU32::new(0);
static STALE_CLEANUP: Once = Once::new();

/// Where UDP GSO super-packets are cut into datagrams (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Segmentation {
    /// At each host's `eth0` (`gso_max_segs 1`): single datagrams everywhere on the LAN.
    #[default]
    Host,
    /// At the bridge ports (`gso_max_segs 1` on `vhN`): the sending host offloads it.
    Switch,
    /// Nowhere on the LAN (no device limits GSO, the kernel's defaults): super-packets reach
    /// the receiving hosts whole; each receiving socket reads them whole (UDP_GRO) or has its
    /// UDP stack cut them in software.
    Plain,
}

/// A packet-loss pattern for one direction of a host's interface (PGM and UDP only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// No loss.
    None,
    /// Each packet is dropped independently with probability `permille / 1000`.
    Random(u32),
    /// Deterministic bursts: of every `every` matching packets, the first `len` are dropped
    /// (nftables `numgen inc mod every < len`).
    Burst {
        /// Period, in packets.
        every: u32,
        /// Consecutive drops at the start of each period.
        len: u32,
    },
}

impl Loss {
    fn rule(self, counter: &str) -> Option<String> {
        let cond = match self {
            Loss::None | Loss::Random(0) | Loss::Burst { len: 0, .. } => return None,
            // nftables rejects "< 1000" after "mod 1000" (range 0-999): 100 % is unconditional.
            Loss::Random(p) if p >= 1000 => String::new(),
            Loss::Burst { every, len } if len >= every => String::new(),
            Loss::Random(p) => format!("numgen random mod 1000 < {p} "),
            Loss::Burst { every, len } => format!("numgen inc mod {every} < {len} "),
        };
        Some(format!(
            "meta l4proto {{ 17, 113 }} {cond}counter name \"{counter}\" drop"
        ))
    }
}

/// Runs a command, returning stdout; fails with stderr in the message on non-zero exit.
fn run_cmd(program: &str, args: &[&str], stdin: Option<&str>) -> io::Result<String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("running {program} {args:?}: {e}")))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{program} {} failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            stdin.map(|s| format!("\ninput:\n{s}")).unwrap_or_default()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ip(args: &[&str]) -> io::Result<String> {
    run_cmd("ip", args, None)
}

/// Runs `program args` inside namespace `ns`.
fn ns_run(ns: &str, program: &str, args: &[&str], stdin: Option<&str>) -> io::Result<String> {
    let mut full = vec!["netns", "exec", ns, program];
    full.extend_from_slice(args);
    run_cmd("ip", &full, stdin)
}

/// PIDs of the processes in namespace `ns`.
fn ns_pids(ns: &str) -> Vec<i32> {
    ip(&["netns", "pids", ns])
        .map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills every process in `ns` and deletes it. Errors are reported on stderr, not returned.
fn destroy_ns(ns: &str) {
    for pid in ns_pids(ns) {
        // SAFETY: kill(2) with a pid read from `ip netns pids`.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    if let Err(e) = ip(&["netns", "del", ns]) {
        eprintln!("netns-tests: removing namespace {ns}: {e}");
    }
}

/// The PID encoded in one of our namespace names (`pgmt-PID-...`).
fn pid_of_ns(name: &str) -> Option<u32> {
    name.strip_prefix(NS_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// Removes namespaces (and the processes, veths, bridges and nftables tables in them) left by
/// earlier runs whose process no longer exists. Runs once per process from [`Lan::new`].
pub fn cleanup_stale() {
    let Ok(list) = ip(&["netns", "list"]) else {
        return;
    };
    let me = std::process::id();
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = pid_of_ns(name) else {
            continue;
        };
        if pid == me || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        eprintln!("netns-tests: removing stale namespace {name} (pid {pid} is gone)");
        destroy_ns(name);
    }
}

/// One host of a [`Lan`].
#[derive(Debug, Clone)]
pub struct Host {
    index: usize,
    ns: String,
    addr: Ipv4Addr,
    /// The IPv6 unique-local address, once [`Lan::enable_ipv6`] gave one.
    addr6: Option<Ipv6Addr>,
    table: String,
}

impl Host {
    /// Zero-based index of the host in its LAN.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The host's namespace name.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// The host's IPv4 address on `eth0`.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The host's IPv6 unique-local address on `eth0`; panics unless [`Lan::enable_ipv6`]
    /// ran.
    pub fn addr6(&self) -> Ipv6Addr {
        self.addr6.expect("Lan::enable_ipv6 first")
    }

    /// The name of the host's LAN interface.
    pub fn ifname(&self) -> &'static str {
        "eth0"
    }

    /// OpenPGM network string for this host and the test group: `"ADDR;GROUP"`.
    pub fn pgm_network(&self) -> String {
        format!("{};{}", self.addr, GROUP)
    }

    /// OpenPGM network string for this host's IPv6 address and [`GROUP6`] (OpenPGM needs
    /// address literals: `"ADDR6;GROUP6"`).
    pub fn pgm_network6(&self) -> String {
        format!("{};{}", self.addr6(), GROUP6)
    }

    /// A `Command` that runs `program args` inside this host's namespace (`ip netns exec`).
    pub fn command<S: AsRef<std::ffi::OsStr>>(
        &self,
        program: impl AsRef<std::ffi::OsStr>,
        args: &[S],
    ) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns])
            .arg(program)
            .args(args);
        cmd
    }

    /// Spawns `program args` inside this host's namespace; the returned [`Proc`] kills the
    /// process when dropped.
    pub fn spawn<S: AsRef<std::ffi::OsStr>>(
        &self,
        program: impl AsRef<std::ffi::OsStr>,
        args: &[S],
    ) -> io::Result<Proc> {
        let program = program.as_ref();
        let name = format!(
            "{} on h{}",
            Path::new(program)
                .file_name()
                .unwrap_or(program)
                .to_string_lossy(),
            self.index + 1
        );
        Proc::spawn(&name, self.command(program, args))
    }

    /// Runs `program args` to completion inside this host's namespace and returns its stdout.
    pub fn run(&self, program: &str, args: &[&str]) -> io::Result<String> {
        ns_run(&self.ns, program, args, None)
    }
}

/// A tcpdump capture; stopped cleanly (SIGINT, pcap flushed) on [`Capture::stop`] or drop.
#[derive(Debug)]
pub struct Capture {
    proc: Option<Proc>,
    path: PathBuf,
}

impl Capture {
    /// Starts tcpdump on `ifname` in namespace `ns`, writing full packets to `path`.
    /// `filter` is a pcap filter expression ("" for everything).
    fn start(ns: &str, ifname: &str, path: &Path, filter: &str) -> io::Result<Capture> {
        if !crate::have_program("tcpdump") {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "tcpdump is not installed",
            ));
        }
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()?.join(path)
        };
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns", "exec", ns, "tcpdump", "-i", ifname, "-n", "-s", "0", "-U",
        ])
        .args(["--immediate-mode", "-Z", "root", "-w"])
        .arg(&path);
        cmd.args(filter.split_whitespace());
        let mut proc = Proc::spawn(&format!("tcpdump on {ns}/{ifname}"), cmd)?;
        proc.wait_for_stderr("listening on", Duration::from_secs(10))?;
        Ok(Capture {
            proc: Some(proc),
            path,
        })
    }

    /// The pcap file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops tcpdump (SIGINT, so it flushes and closes the file) and returns its stderr
    /// summary ("N packets captured ...").
    pub fn stop(&mut self) -> io::Result<String> {
        let Some(mut proc) = self.proc.take() else {
            return Ok(String::new());
        };
        // Let the last packets reach the capture before stopping it.
        thread::sleep(Duration::from_millis(200));
        proc.signal(libc::SIGINT);
        let out = proc.wait_timeout(Duration::from_secs(5))?;
        Ok(out.stderr)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("netns-tests: stopping capture: {e}");
        }
    }
}

/// A LAN of network namespaces. See the module documentation.
#[derive(Debug)]
pub struct Lan {
    id: String,
    bridge_ns: String,
    hosts: Vec<Host>,
    /// Namespaces created so far (torn down on drop, even after a failed `new`).
    created: Vec<String>,
}

impl Lan {
    /// Builds a bridge namespace and `n_hosts` host namespaces (1..=250), segmenting at the
    /// hosts. Needs root.
    pub fn new(n_hosts: usize) -> io::Result<Lan> {
        Lan::with_segmentation(n_hosts, Segmentation::Host)
    }

    /// [`Lan::new`] with GSO super-packets cut where `seg` says.
    pub fn with_segmentation(n_hosts: usize, seg: Segmentation) -> io::Result<Lan> {
        if !(1..=250).contains(&n_hosts) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "1..=250 hosts"));
        }
        STALE_CLEANUP.call_once(cleanup_stale);
        let pid = std::process::id();
        let k = LAN_COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = format!("{NS_PREFIX}{pid}-{k}");
        // 10.A.B.0/24, A in 16..=215 and B in 1..=250: private, varies per run and LAN.
        let a = 16 + (pid % 200) as u8;
        let b = 1 + (k % 250) as u8;
        let mut lan = Lan {
            bridge_ns: format!("{id}-br"),
            id,
            hosts: Vec::new(),
            created: Vec::new(),
        };
        lan.build(n_hosts, a, b, seg)?;
        Ok(lan)
    }

    fn add_ns(&mut self, ns: &str) -> io::Result<()> {
        ip(&["netns", "add", ns])?;
        self.created.push(ns.to_owned());
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        // No IPv6: keeps router/neighbour solicitations and MLD reports out of captures.
        for key in [
            "net.ipv6.conf.all.disable_ipv6",
            "net.ipv6.conf.default.disable_ipv6",
        ] {
            let _ = ns_run(ns, "sysctl", &["-qw", &format!("{key}=1")], None);
        }
        Ok(())
    }

    fn build(&mut self, n_hosts: usize, a: u8, b: u8, seg: Segmentation) -> io::Result<()> {
        let br = self.bridge_ns.clone();
        self.add_ns(&br)?;
        ip(&[
            "-n",
            &br,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
            "stp_state",
            "0",
        ])?;
        ip(&["-n", &br, "link", "set", "br0", "up"])?;
        for i in 0..n_hosts {
            let num = i + 1;
            let ns = format!("{}-h{num}", self.id);
            self.add_ns(&ns)?;
            let port = format!("vh{num}");
            ip(&[
                "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ])?;
            ip(&["-n", &br, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &br, "link", "set", &port, "up"])?;
            let cut_at = match seg {
                Segmentation::Host => Some((&ns, "eth0")),
                Segmentation::Switch => Some((&br, port.as_str())),
                Segmentation::Plain => None,
            };
            if let Some((seg_ns, seg_dev)) = cut_at {
                ip(&[
                    "-n",
                    seg_ns,
                    "link",
                    "set",
                    "dev",
                    seg_dev,
                    "gso_max_segs",
                    "1",
                ])?;
            }
            let addr = Ipv4Addr::new(10, a, b, num as u8);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "route", "add", "224.0.0.0/4", "dev", "eth0"])?;
            self.hosts.push(Host {
                index: i,
                ns,
                addr,
                addr6: None,
                table: format!("{}_h{num}", self.id.replace('-', "_")),
            });
        }
        self.wait_links_up()
    }

    /// Turns IPv6 on in every host and gives each `eth0` a unique-local address
    /// `fdA:B::N/64` (A, B as in the IPv4 subnet; no duplicate address detection, so it is
    /// usable at once). The bridge gets a link-local address too: its MLD querier needs one
    /// when [`Lan::set_igmp_snooping`] (which covers MLDv2 too) is on.
    pub fn enable_ipv6(&mut self) -> io::Result<()> {
        let [_, a, b, _] = self.hosts.first().map_or([0; 4], |h| h.addr.octets());
        for key in [
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.br0.accept_dad=0",
            "net.ipv6.conf.all.disable_ipv6=0",
            "net.ipv6.conf.br0.disable_ipv6=0",
        ] {
            ns_run(&self.bridge_ns, "sysctl", &["-qw", key], None)?;
        }
        for h in &mut self.hosts {
            for key in [
                "net.ipv6.conf.all.disable_ipv6",
                "net.ipv6.conf.default.disable_ipv6",
                "net.ipv6.conf.eth0.disable_ipv6",
                "net.ipv6.conf.lo.disable_ipv6",
            ] {
                ns_run(&h.ns, "sysctl", &["-qw", &format!("{key}=0")], None)?;
            }
            let num = h.addr.octets()[3];
            let addr6 = Ipv6Addr::new(
                0xfd00 | u16::from(a),
                u16::from(b),
                0,
                0,
                0,
                0,
                0,
                num.into(),
            );
            ip(&[
                "-n",
                &h.ns,
                "-6",
                "addr",
                "add",
                &format!("{addr6}/64"),
                "dev",
                "eth0",
                "nodad",
            ])?;
            h.addr6 = Some(addr6);
        }
        Ok(())
    }

    fn wait_links_up(&self) -> io::Result<()> {
        let deadline = now() + Duration::from_secs(5);
        for h in &self.hosts {
            loop {
                let state = ip(&["-n", &h.ns, "-o", "link", "show", "eth0"])?;
                if state.contains("state UP") || state.contains("LOWER_UP") {
                    break;
                }
                if now() > deadline {
                    return Err(io::Error::other(format!(
                        "{}: eth0 did not come up: {state}",
                        h.ns
                    )));
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// The unique id of this LAN (`pgmt-PID-K`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The namespace holding the bridge `br0`.
    pub fn bridge_ns(&self) -> &str {
        &self.bridge_ns
    }

    /// All hosts.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Host `i` (zero-based). Panics when out of range.
    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    /// Random loss on host `host`: each PGM/UDP packet arriving (`ingress_permille`) or leaving
    /// (`egress_permille`) is dropped with that probability per mille. 0/0 removes the loss.
    pub fn set_loss(
        &self,
        host: usize,
        ingress_permille: u32,
        egress_permille: u32,
    ) -> io::Result<()> {
        self.set_loss_pattern(
            host,
            Loss::Random(ingress_permille),
            Loss::Random(egress_permille),
        )
    }

    /// Sets the loss patterns of both directions of host `host` (replacing earlier ones).
    pub fn set_loss_pattern(&self, host: usize, ingress: Loss, egress: Loss) -> io::Result<()> {
        let h = &self.hosts[host];
        let mut script = String::new();
        let t = &h.table;
        // "add table; delete table; add table {...}" is idempotent within one transaction.
        let _ = writeln!(
            script,
            "table inet {t} {{}}\ndelete table inet {t}\ntable inet {t} {{"
        );
        let _ = writeln!(
            script,
            "  counter ingress_drops {{}}\n  counter egress_drops {{}}"
        );
        for (chain, hook, loss, counter) in [
            ("ingress", "input", ingress, "ingress_drops"),
            ("egress", "output", egress, "egress_drops"),
        ] {
            let _ = writeln!(
                script,
                "  chain {chain} {{\n    type filter hook {hook} priority -150; policy accept;"
            );
            if let Some(rule) = loss.rule(counter) {
                let _ = writeln!(script, "    {rule}");
            }
            let _ = writeln!(script, "  }}");
        }
        script.push_str("}\n");
        ns_run(&h.ns, "nft", &["-f", "/dev/stdin"], Some(&script)).map(drop)
    }

    /// Loss per multicast group on host `host`'s ingress: PGM/UDP packets to each group of
    /// `groups` are dropped as its pattern says, drawn for each group independently (two
    /// paths of an A/B session). Replaces the earlier group rules; an empty list removes them.
    /// Independent of [`Lan::set_loss`].
    pub fn set_group_loss(&self, host: usize, groups: &[(IpAddr, Loss)]) -> io::Result<()> {
        let h = &self.hosts[host];
        let t = format!("{}_grp", h.table);
        let mut script = String::new();
        let _ = writeln!(
            script,
            "table inet {t} {{}}\ndelete table inet {t}\ntable inet {t} {{"
        );
        for i in 0..groups.len() {
            let _ = writeln!(script, "  counter g{i} {{}}");
        }
        let _ = writeln!(
            script,
            "  chain ingress {{\n    type filter hook input priority -160; policy accept;"
        );
        for (i, (group, loss)) in groups.iter().enumerate() {
            let family = if group.is_ipv6() { "ip6" } else { "ip" };
            if let Some(rule) = loss.rule(&format!("g{i}")) {
                let _ = writeln!(script, "    {family} daddr {group} {rule}");
            }
        }
        script.push_str("  }\n}\n");
        ns_run(&h.ns, "nft", &["-f", "/dev/stdin"], Some(&script)).map(drop)
    }

    /// Packets dropped so far by the group rules of host `host` ([`Lan::set_group_loss`]), in
    /// the order of the groups given; 0 for each of `n` groups without rules.
    pub fn group_dropped(&self, host: usize, n: usize) -> io::Result<Vec<u64>> {
        let h = &self.hosts[host];
        let t = format!("{}_grp", h.table);
        Ok((0..n)
            .map(|i| {
                ns_run(
                    &h.ns,
                    "nft",
                    &["list", "counter", "inet", &t, &format!("g{i}")],
                    None,
                )
                .ok()
                .and_then(|text| {
                    text.split_whitespace()
                        .skip_while(|w| *w != "packets")
                        .nth(1)
                        .and_then(|n| n.parse().ok())
                })
                .unwrap_or(0)
            })
            .collect())
    }

    /// Packets dropped so far by the loss rules of host `host`: (ingress, egress).
    pub fn dropped(&self, host: usize) -> io::Result<(u64, u64)> {
        let h = &self.hosts[host];
        let read = |name: &str| -> io::Result<u64> {
            match ns_run(
                &h.ns,
                "nft",
                &["list", "counter", "inet", &h.table, name],
                None,
            ) {
                Ok(text) => Ok(text
                    .split_whitespace()
                    .skip_while(|w| *w != "packets")
                    .nth(1)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)),
                Err(_) => Ok(0), // no loss table yet
            }
        };
        Ok((read("ingress_drops")?, read("egress_drops")?))
    }

    /// Limits host `host`'s egress to `bits_per_sec` with a `tbf` qdisc on its `eth0`.
    pub fn set_rate(&self, host: usize, bits_per_sec: u64) -> io::Result<()> {
        let h = &self.hosts[host];
        // Burst: 20 ms worth, but at least a few full frames.
        let burst = (bits_per_sec / 8 / 50).max(4 * 1514);
        h.run(
            "tc",
            &[
                "qdisc",
                "replace",
                "dev",
                "eth0",
                "root",
                "tbf",
                "rate",
                &format!("{bits_per_sec}bit"),
                "burst",
                &burst.to_string(),
                "latency",
                "100ms",
            ],
        )
        .map(drop)
    }

    /// Limits what the bridge forwards *to* host `host` (tbf on its bridge port: a slow link
    /// to that receiver, with a queue of `queue_bytes`, tail drop).
    pub fn set_port_rate(
        &self,
        host: usize,
        bits_per_sec: u64,
        queue_bytes: usize,
    ) -> io::Result<()> {
        let port = format!("vh{}", host + 1);
        let burst = (bits_per_sec / 8 / 250).max(4 * 1514);
        ns_run(
            &self.bridge_ns,
            "tc",
            &[
                "qdisc",
                "replace",
                "dev",
                &port,
                "root",
                "tbf",
                "rate",
                &format!("{bits_per_sec}bit"),
                "burst",
                &burst.to_string(),
                "limit",
                &queue_bytes.to_string(),
            ],
            None,
        )
        .map(drop)
    }

    /// Packets the tbf of [`Lan::set_port_rate`] dropped so far towards host `host`.
    pub fn port_drops(&self, host: usize) -> io::Result<u64> {
        let port = format!("vh{}", host + 1);
        let out = ns_run(
            &self.bridge_ns,
            "tc",
            &["-s", "qdisc", "show", "dev", &port],
            None,
        )?;
        // "Sent N bytes M pkt (dropped D, overlimits O requeues R)"
        out.split("dropped ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .and_then(|d| d.trim().parse().ok())
            .ok_or_else(|| io::Error::other(format!("no drop count in: {out}")))
    }

    /// Removes a rate limit set with [`Lan::set_rate`].
    pub fn clear_rate(&self, host: usize) -> io::Result<()> {
        self.hosts[host]
            .run("tc", &["qdisc", "del", "dev", "eth0", "root"])
            .map(drop)
    }

    /// Captures everything crossing the bridge (tcpdump on `br0` in the bridge namespace, which
    /// is put in promiscuous mode so unicast between hosts is seen too) into the pcap `path`.
    /// `filter` is a pcap filter expression, e.g. `"ip proto 113 or udp port 7500"`.
    pub fn capture(&self, path: impl AsRef<Path>, filter: &str) -> io::Result<Capture> {
        Capture::start(&self.bridge_ns, "br0", path.as_ref(), filter)
    }

    /// Turns IGMP snooping on the bridge on (with an IGMPv3 querier, so that it learns which
    /// ports want which (S, G) and (*, G)) or off again (multicast floods to every port).
    /// The bridge still floods for about a second after it is turned on (its querier's first
    /// response interval, shortened here from 10 s).
    pub fn set_igmp_snooping(&self, on: bool) -> io::Result<()> {
        let flag = if on { "1" } else { "0" };
        let set = |args: &[&str]| {
            let mut all = vec![
                "-n",
                &self.bridge_ns,
                "link",
                "set",
                "br0",
                "type",
                "bridge",
            ];
            all.extend_from_slice(args);
            ip(&all).map(drop)
        };
        // First the timing (the querier reads it when it starts): the bridge floods everything
        // until its querier's first response interval is over, 10 s by default; 1 s here.
        set(&[
            "mcast_igmp_version",
            "3",
            "mcast_mld_version",
            "2",
            "mcast_query_response_interval",
            "100",
        ])?;
        set(&["mcast_querier", flag, "mcast_snooping", flag])
    }

    /// Captures on host `host`'s `eth0` (what that host sends and what reaches it, before its
    /// ingress loss rules).
    pub fn capture_on(
        &self,
        host: usize,
        path: impl AsRef<Path>,
        filter: &str,
    ) -> io::Result<Capture> {
        Capture::start(&self.hosts[host].ns, "eth0", path.as_ref(), filter)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Hosts first, the bridge last (reverse creation order).
        for ns in self.created.iter().rev() {
            destroy_ns(ns);
        }
    }
}
