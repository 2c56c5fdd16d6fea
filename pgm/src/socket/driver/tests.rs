//! The driver on an in-memory transport: the hand-off both ways, backpressure from a full
//! socket and from a full receive queue, timers, linger and the IO thread's wake-ups. Turns
//! are run by hand (as the IO thread or an application thread would), so every step is
//! observable; the clock is the real one, with deadlines of a few milliseconds.

use std::{
    collections::VecDeque,
    io,
    net::{IpAddr, Ipv4Addr},
    os::fd::RawFd,
    sync::{Arc, Mutex},
    thread::sleep,
    time::Duration,
};

use bytes::Bytes;
use mio::Events;

use super::{
    io_loop::{ALARM, WAKER},
    lock, new,
    turn::BLOCKED_RETRY,
    Core, IoLoop, RecvQueue, Role, SendQueue, Shared, Turn, Who,
};
use crate::{
    config::{ReceiverConfig, SourceConfig},
    event::Event,
    socket::{Clock, DriverOptions},
    transport::{Datagram, Outgoing, RecvBatch, Transport, TransportStats},
    wire::{Gsi, PacketRepr, PacketType, Tsi},
    Receiver, Source,
};

const PORT: u16 = 7500;
const NLA: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const GROUP: IpAddr = IpAddr::V4(Ipv4Addr::new(239, 192, 0, 1));
const AMBIENT: Duration = Duration::from_millis(20);

/// What the in-memory network holds: packets to be read, packets sent, and how many more
/// packets the "socket" takes before it reports `WouldBlock`.
#[derive(Debug)]
struct Wire {
    inbound: VecDeque<(IpAddr, IpAddr, Vec<u8>)>,
    sent: Vec<(IpAddr, Vec<u8>)>,
    room: usize,
}

type Net = Arc<Mutex<Wire>>;

fn net() -> Net {
    Arc::new(Mutex::new(Wire {
        inbound: VecDeque::new(),
        sent: Vec::new(),
        room: usize::MAX,
    }))
}

/// A [`Transport`] over a [`Wire`].
struct Memory(Net);

impl Transport for Memory {
    fn send_batch(&mut self, pkts: &[Outgoing]) -> io::Result<usize> {
        let mut w = lock(&self.0);
        if w.room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = pkts.len().min(w.room);
        w.room -= n;
        w.sent
            .extend(pkts[..n].iter().map(|p| (p.dst, p.buf.clone())));
        Ok(n)
    }

    fn recv_batch(&mut self, batch: &mut RecvBatch) -> io::Result<()> {
        let mut w = lock(&self.0);
        while batch.spare_slots() > 0 {
            let Some((src, dst, pkt)) = w.inbound.pop_front() else {
                batch.set_drained();
                break;
            };
            batch.spare_mut()[..pkt.len()].copy_from_slice(&pkt);
            batch.push(Datagram {
                src,
                dst,
                pgm: 0..pkt.len(),
            });
        }
        Ok(())
    }

    fn fds(&self) -> Vec<RawFd> {
        Vec::new()
    }

    fn local_nla(&self) -> IpAddr {
        NLA
    }

    fn ip_overhead(&self) -> usize {
        28
    }

    fn stats(&self) -> TransportStats {
        TransportStats::default()
    }
}

struct Driver<R: Role> {
    io_loop: IoLoop<R>,
    core: Arc<Mutex<Core<R>>>,
    shared: Arc<Shared<R::Queue>>,
    net: Net,
}

impl<R: Role> Driver<R> {
    fn new(engine: R, opts: &DriverOptions) -> Self {
        let net = net();
        let transport = Box::new(Memory(Arc::clone(&net)));
        let (io_loop, core, shared) = new(engine, transport, Clock::new(), opts).unwrap();
        Driver {
            io_loop,
            core,
            shared,
            net,
        }
    }

    fn turn(&self, who: Who) -> Turn {
        lock(&self.core).turn(&self.shared, who, false)
    }

    /// A turn of the IO thread (which may park) after a readiness event.
    fn io_turn(&self) -> Turn {
        lock(&self.core).turn(&self.shared, Who::Io { max_sleep: None }, true)
    }

    /// The IO thread's `epoll_wait`: the tokens that fire within `timeout`.
    fn io_wakes(&mut self, timeout: Duration) -> Vec<mio::Token> {
        let mut events = Events::with_capacity(8);
        self.io_loop.poll.poll(&mut events, Some(timeout)).unwrap();
        events.iter().map(mio::event::Event::token).collect()
    }

    /// Types of the packets sent so far (taken off the wire).
    fn take_sent(&self) -> Vec<(PacketType, Vec<u8>)> {
        std::mem::take(&mut lock(&self.net).sent)
            .into_iter()
            .map(|(_, p)| (PacketType::from(p[4] & 0x0f), p))
            .collect()
    }

    fn close(&self) {
        self.shared.lock().close_requested = true;
        self.shared.bump_in();
    }
}

/// Ambient SPMs every [`AMBIENT`], heartbeats from 1 ms after data.
fn source() -> Source {
    let tsi = Tsi::new(Gsi([1, 2, 3, 4, 5, 6]), 1000);
    let mut cfg = SourceConfig::new(tsi, PORT, GROUP, NLA);
    cfg.spm_ambient = AMBIENT;
    Source::new(cfg)
}

fn receiver() -> Receiver {
    Receiver::new(ReceiverConfig::new(PORT))
}

/// Queues `msgs` as the application's `send` does.
fn queue(shared: &Shared<SendQueue>, msgs: &[&'static [u8]]) {
    let mut st = shared.lock();
    for m in msgs {
        st.queue.msgs.push_back(Bytes::from_static(m));
        st.queue.bytes += m.len();
        st.queue.count += 1;
    }
    drop(st);
    shared.bump_in();
}

fn count(sent: &[(PacketType, Vec<u8>)], ty: PacketType) -> usize {
    sent.iter().filter(|(t, _)| *t == ty).count()
}

/// Data packets a source sent for `msgs`, to feed a receiver: its SPMs and ODATA.
fn session(msgs: &[&'static [u8]]) -> Vec<Vec<u8>> {
    let d = Driver::new(source(), &DriverOptions::default());
    queue(&d.shared, msgs);
    d.turn(Who::App);
    d.take_sent().into_iter().map(|(_, p)| p).collect()
}

fn deliver(d: &Driver<Receiver>, pkts: &[Vec<u8>]) {
    let mut w = lock(&d.net);
    w.inbound
        .extend(pkts.iter().map(|p| (NLA, GROUP, p.clone())));
}

fn data(q: &RecvQueue) -> Vec<Vec<u8>> {
    q.events
        .iter()
        .filter_map(|e| match e {
            Event::Data { apdu, .. } => Some(apdu.to_vec()),
            _ => None,
        })
        .collect()
}

#[test]
fn sender_hands_messages_to_the_wire_and_gives_room_back() {
    let d = Driver::new(source(), &DriverOptions::default());
    let published = d.shared.out_seq();
    queue(&d.shared, &[b"one", b"two", b"three"]);
    let turn = d.turn(Who::App);
    assert!(!turn.stop);
    let sent = d.take_sent();
    assert_eq!(count(&sent, PacketType::Odata), 3, "{sent:?}");
    let st = d.shared.lock();
    assert!(st.queue.msgs.is_empty());
    assert_eq!((st.queue.count, st.queue.bytes), (0, 0));
    assert_eq!(st.queue.engine_queued, 0);
    assert!(
        d.shared.out_seq() > published,
        "room given back is published"
    );
}

#[test]
fn receiver_hands_events_to_the_application() {
    let pkts = session(&[b"alpha", b"beta"]);
    let d = Driver::new(receiver(), &DriverOptions::default());
    deliver(&d, &pkts);
    d.io_turn();
    let st = d.shared.lock();
    assert_eq!(data(&st.queue), [b"alpha".to_vec(), b"beta".to_vec()]);
    assert!(st.queue.held_bytes > 0);
    assert!(st.queue.stats.io.packets_received >= 3);
}

#[test]
fn a_full_socket_holds_packets_and_retries_soon() {
    let d = Driver::new(source(), &DriverOptions::default());
    lock(&d.net).room = 2;
    queue(&d.shared, &[b"1", b"2", b"3", b"4", b"5"]);
    let turn = d.turn(Who::App);
    let first = d.take_sent();
    assert_eq!(count(&first, PacketType::Spm), 2, "{first:?}");
    assert_eq!(turn.timeout, Some(BLOCKED_RETRY));
    assert!(lock(&d.core).send_blocked());
    // Still full: nothing moves, nothing is lost.
    d.turn(Who::App);
    assert!(d.take_sent().is_empty());
    lock(&d.net).room = usize::MAX;
    d.turn(Who::App);
    assert!(!lock(&d.core).send_blocked());
    // The rest: the third announcement SPM and the 5 ODATA.
    let sent = d.take_sent();
    assert_eq!(sent.len(), 6, "{sent:?}");
    assert_eq!(count(&sent, PacketType::Odata), 5, "{sent:?}");
}

#[test]
fn a_full_receive_queue_pauses_reading_until_the_application_frees_it() {
    let pkts = session(&[b"first", b"second", b"third"]);
    let opts = DriverOptions {
        recv_queue: 1,
        ..DriverOptions::default()
    };
    let d = Driver::new(receiver(), &opts);
    // The SPMs and the first ODATA: the queue fills with one event.
    let (head, rest) = pkts.split_at(pkts.len() - 2);
    deliver(&d, head);
    d.io_turn();
    assert!(d.shared.lock().queue.paused);
    deliver(&d, rest);
    d.io_turn();
    assert_eq!(lock(&d.net).inbound.len(), 2, "reading is paused");
    // The application takes everything and frees the queue, as `recv` does.
    {
        let mut st = d.shared.lock();
        assert_eq!(data(&st.queue), [b"first".to_vec()]);
        st.queue.events.clear();
        st.queue.held_bytes = 0;
        st.queue.queued_bytes = 0;
        st.queue.paused = false;
    }
    d.shared.bump_in();
    d.io_turn();
    assert!(lock(&d.net).inbound.is_empty());
    assert_eq!(
        data(&d.shared.lock().queue),
        [b"second".to_vec(), b"third".to_vec()]
    );
}

#[test]
fn timers_run_when_due() {
    let d = Driver::new(source(), &DriverOptions::default());
    let turn = d.turn(Who::App);
    assert_eq!(count(&d.take_sent(), PacketType::Spm), 3, "announcement");
    // Then the ambient SPM: the turn says how long to sleep, and a turn after that sends it.
    let wait = turn.timeout.expect("a source always has a deadline");
    assert!(wait <= AMBIENT, "{wait:?}");
    sleep(wait);
    let mut spms = 0;
    for _ in 0..100 {
        d.turn(Who::App);
        spms = count(&d.take_sent(), PacketType::Spm);
        if spms > 0 {
            break;
        }
        // The clock has a microsecond grain: a turn a hair early sleeps again.
        sleep(Duration::from_millis(1));
    }
    assert_eq!(spms, 1, "one ambient SPM when its timer is due");
}

#[test]
fn a_parked_io_thread_wakes_on_its_alarm() {
    let mut d = Driver::new(source(), &DriverOptions::default());
    queue(&d.shared, &[b"x"]);
    let turn = d.io_turn();
    assert_eq!(turn.timeout, None, "parked: the alarm keeps its deadline");
    assert!(d.shared.lock().io_deadline.is_some(), "alarm set");
    d.take_sent();
    let wakes = d.io_wakes(Duration::from_secs(10));
    assert_eq!(wakes, [ALARM]);
    // The IO thread's next turn handles the due heartbeat SPM.
    d.io_turn();
    assert_eq!(count(&d.take_sent(), PacketType::Spm), 1);
}

#[test]
fn an_application_turn_wakes_the_parked_io_thread_only_when_it_leaves_work() {
    let mut d = Driver::new(source(), &DriverOptions::default());
    d.io_turn();
    d.take_sent();
    assert!(d.shared.lock().io_parked);
    // Nothing new: no wake-up.
    d.turn(Who::App);
    assert!(!d.io_wakes(Duration::from_millis(5)).contains(&WAKER));
    // A send the full socket holds back: the IO thread must retry it.
    lock(&d.net).room = 0;
    queue(&d.shared, &[b"held"]);
    d.turn(Who::App);
    assert!(lock(&d.core).send_blocked());
    assert!(d.io_wakes(Duration::from_millis(100)).contains(&WAKER));
}

#[test]
fn a_closed_sender_sends_fin_and_lingers() {
    let linger = Duration::from_millis(30);
    let d = Driver::new(
        source(),
        &DriverOptions {
            linger,
            ..DriverOptions::default()
        },
    );
    queue(&d.shared, &[b"last"]);
    d.turn(Who::App);
    d.close();
    let start = Clock::new();
    let mut turns = 0;
    loop {
        let turn = d.turn(Who::App);
        if turn.stop {
            break;
        }
        turns += 1;
        assert!(turns < 10_000 && start.elapsed() < Duration::from_secs(10));
        sleep(turn.timeout.unwrap_or(linger).min(Duration::from_millis(5)));
    }
    assert!(start.elapsed() >= linger, "stopped before the linger time");
    let sent = d.take_sent();
    let fins = sent
        .iter()
        .filter(|(_, p)| PacketRepr::parse(p).is_ok_and(|r| r.options.fin))
        .count();
    assert!(
        fins >= 3,
        "the 3 FIN SPMs (heartbeats after close carry OPT_FIN too): {sent:?}"
    );
}

#[test]
fn a_closed_receiver_stops_at_once() {
    let d = Driver::new(receiver(), &DriverOptions::default());
    d.io_turn();
    d.close();
    assert!(d.turn(Who::App).stop);
}

#[test]
fn a_peer_snapshot_request_is_served_by_the_next_turn() {
    let pkts = session(&[b"alpha", b"beta"]);
    let d = Driver::new(receiver(), &DriverOptions::default());
    deliver(&d, &pkts);
    d.io_turn();
    let seq = {
        let mut st = d.shared.lock();
        assert!(st.queue.peers.is_empty(), "no snapshot unless asked for");
        st.queue.peers_wanted = true;
        st.queue.peers_seq
    };
    d.shared.bump_in();
    let published = d.shared.out_seq();
    // A turn with nothing else to do still serves it, and tells waiters.
    d.turn(Who::App);
    let st = d.shared.lock();
    assert_eq!(st.queue.peers_seq, seq + 1);
    assert!(!st.queue.peers_wanted);
    assert!(d.shared.out_seq() > published, "the snapshot is published");
    let [(tsi, p)] = st.queue.peers.as_slice() else {
        panic!("one peer: {:?}", st.queue.peers);
    };
    assert_eq!(*tsi, Tsi::new(Gsi([1, 2, 3, 4, 5, 6]), 1000));
    assert_eq!(p.odata_received, 2);
    assert_eq!(p.data_bytes, 9);
    assert_eq!(p.apdus_delivered, 2);
    assert_eq!(p.window_lead.map(|s| s.0), Some(1));
}
