//! A deterministic, seeded, in-process network simulator with a virtual clock.
//!
//! Scenario tests put sans-IO endpoints ([`Node`]s) on a simulated network and drive them with
//! virtual time, in the spirit of neqo's `test-fixture` and str0m's `netem`. Every node has an
//! egress and an ingress link ([`LinkConfig`]): a packet crosses its sender's egress once, so an
//! impairment there hits every receiver alike (the shared upstream link), and then each
//! receiver's ingress independently.
//!
//! All randomness comes from one RNG seeded by [`Sim::new`], so a run is a pure function of the
//! seed and the inputs. Tests take the seed from [`seed_from_env`] (the `PGM_SIM_SEED` variable
//! replays a run) and hold a [`SeedGuard`], which prints the seed if the test fails.
//!
//! ```
//! use std::{net::IpAddr, time::Duration};
//! use pgm::{sim::{Dir, Node, SeedGuard, Sim}, time::Instant, Transmit};
//!
//! /// Multicasts one packet when poked, and counts what it hears.
//! #[derive(Default)]
//! struct Toy { out: Option<IpAddr>, heard: usize }
//! impl Node for Toy {
//!     fn handle_packet(&mut self, _: Instant, _: IpAddr, _: IpAddr, _: &[u8]) { self.heard += 1 }
//!     fn handle_timeout(&mut self, _: Instant) {}
//!     fn poll_transmit(&mut self, _: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
//!         buf.clear();
//!         buf.extend_from_slice(b"hello");
//!         self.out.take().map(|dst| Transmit::new(dst, buf.len()))
//!     }
//!     fn poll_timeout(&self) -> Option<Instant> { None }
//! }
//!
//! let guard = SeedGuard::from_env(1);
//! let mut sim = Sim::new(guard.seed());
//! let group: IpAddr = "239.1.1.1".parse().unwrap();
//! let a = sim.add_node("10.0.0.1".parse().unwrap(), Toy::default());
//! let b = sim.add_node("10.0.0.2".parse().unwrap(), Toy::default());
//! sim.join(b, group);
//! sim.link_mut(b, Dir::Ingress).delay = Duration::from_millis(5);
//! sim.with_node_mut(a, |toy: &mut Toy, _now| toy.out = Some(group));
//! sim.run_until_idle(Instant::from_millis(100)).unwrap();
//! assert_eq!(sim.node::<Toy>(b).heard, 1);
//! assert_eq!(sim.now(), Instant::from_millis(5));
//! ```

mod link;
mod queue;
#[cfg(test)]
mod tests;

use std::{any::Any, collections::HashMap, fmt, net::IpAddr, ops::Range, rc::Rc, time::Duration};

use bytes::Bytes;
use rand::{rngs::SmallRng, SeedableRng};

pub use self::link::{Filter, GilbertElliott, LinkConfig};
use self::{link::Link, queue::EventQueue};
pub use crate::node::Node;
use crate::time::Instant;

/// The environment variable that overrides the seed given to [`seed_from_env`].
pub const SEED_ENV: &str = "PGM_SIM_SEED";

/// Default cap on the events one `run_*` call may process before it reports a livelock.
pub const DEFAULT_EVENT_LIMIT: u64 = 50_000_000;

/// A node polled more often than this in one go is assumed never to stop transmitting.
const MAX_TRANSMITS_PER_POLL: usize = 1_000_000;

/// Far enough in the future to mean "no limit".
const NEVER: Instant = Instant::from_micros(u64::MAX);

/// A [`Node`] that can be downcast back to its concrete type for assertions.
trait AnyNode: Node + Any {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Node + Any> AnyNode for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Handle to a node of a [`Sim`], in the order nodes were added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(usize);

impl NodeId {
    /// Position of the node in the order of [`Sim::add_node`] calls.
    pub fn index(self) -> usize {
        self.0
    }
}

/// Which of a node's two links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Packets the node sends; crossed once per packet whatever the number of receivers.
    Egress,
    /// Packets addressed to the node; crossed independently by each receiver.
    Ingress,
}

/// Why the network dropped a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// A filter installed with [`Sim::set_filter`] asked for it.
    Filter,
    /// The link was down (see [`Sim::link_down`]).
    LinkDown,
    /// Random loss, independent or Gilbert–Elliott.
    Loss,
    /// The rate-limited link's queue was full (tail drop).
    Queue,
    /// A unicast destination that is no node of the simulation (other than the sender).
    NoRoute,
}

/// Packets dropped on one link, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropStats {
    /// Dropped by a content filter.
    pub filter: u64,
    /// Dropped while the link was down.
    pub link_down: u64,
    /// Lost at random.
    pub loss: u64,
    /// Tail-dropped by a full queue.
    pub queue: u64,
    /// Unicast to an unknown address (egress only).
    pub no_route: u64,
}

impl DropStats {
    /// All drops, whatever the reason.
    pub fn total(&self) -> u64 {
        self.filter + self.link_down + self.loss + self.queue + self.no_route
    }

    fn count(&mut self, reason: DropReason) {
        *match reason {
            DropReason::Filter => &mut self.filter,
            DropReason::LinkDown => &mut self.link_down,
            DropReason::Loss => &mut self.loss,
            DropReason::Queue => &mut self.queue,
            DropReason::NoRoute => &mut self.no_route,
        } += 1;
    }
}

/// Per-node traffic counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Packets the node transmitted (before its egress link).
    pub sent_packets: u64,
    /// Bytes the node transmitted.
    pub sent_bytes: u64,
    /// Packets handed to the node's `handle_packet` (duplicates count twice).
    pub delivered_packets: u64,
    /// Bytes handed to the node's `handle_packet`.
    pub delivered_bytes: u64,
    /// The node's packets dropped on its egress link (once per packet, not per receiver).
    pub egress_drops: DropStats,
    /// Packets to the node dropped on its ingress link.
    pub ingress_drops: DropStats,
    /// Calls to the node's `handle_timeout`.
    pub timeouts: u64,
}

/// What happened to a packet, as reported to the tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TapKind {
    /// A node transmitted it (reported before its egress link, so also for packets it drops).
    Sent,
    /// It reached `to_node`'s `handle_packet`.
    Delivered,
    /// A link dropped it: the sender's egress if `to_node` is `None`, else that node's ingress.
    Dropped(DropReason),
}

/// One observation of a packet, passed to the closure installed with [`Sim::set_tap`].
#[derive(Debug, Clone, Copy)]
pub struct TapEvent<'a> {
    /// Virtual time of the observation.
    pub time: Instant,
    /// What happened.
    pub kind: TapKind,
    /// The sending node.
    pub from: NodeId,
    /// The sender's address.
    pub src: IpAddr,
    /// The destination the sender gave (multicast group or unicast address).
    pub dst: IpAddr,
    /// The receiving node, once the packet has been fanned out to receivers.
    pub to_node: Option<NodeId>,
    /// The packet, shared by every receiver (clone it cheaply to keep it).
    pub bytes: &'a Bytes,
}

/// The closure installed with [`Sim::set_tap`].
pub type Tap = Box<dyn FnMut(&TapEvent<'_>)>;

/// A `run_*` call that did not reach its goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The per-call event budget ([`Sim::set_event_limit`]) ran out: most likely a livelock.
    #[error("event limit of {limit} reached at {now:?} (livelock?)")]
    EventLimit {
        /// The budget that ran out.
        limit: u64,
        /// Virtual time when it ran out.
        now: Instant,
    },
    /// Nothing left to do before the deadline, yet the goal was not reached.
    #[error("deadline {deadline:?} reached before the goal")]
    Deadline {
        /// The `max_time` given to the call.
        deadline: Instant,
    },
}

/// Reads the seed from the `PGM_SIM_SEED` environment variable (decimal or `0x` hex), falling
/// back to `default`.
///
/// # Panics
/// If the variable is set but is not a `u64`: silently ignoring it would "replay" the wrong run.
pub fn seed_from_env(default: u64) -> u64 {
    let Ok(value) = std::env::var(SEED_ENV) else {
        return default;
    };
    let value = value.trim();
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    };
    parsed.unwrap_or_else(|| panic!("{SEED_ENV}={value:?} is not a u64"))
}

/// Prints the seed if dropped during a panic, so a failed scenario can be replayed.
///
/// Keep it alive for the whole test: `let guard = SeedGuard::from_env(7);`.
#[derive(Debug)]
pub struct SeedGuard {
    seed: u64,
}

impl SeedGuard {
    /// Guards `seed`.
    pub fn new(seed: u64) -> Self {
        SeedGuard { seed }
    }

    /// Guards [`seed_from_env`]`(default)`.
    pub fn from_env(default: u64) -> Self {
        SeedGuard::new(seed_from_env(default))
    }

    /// The guarded seed, to pass to [`Sim::new`].
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("seed={} (replay with {SEED_ENV}={})", self.seed, self.seed);
        }
    }
}

/// A packet on the wire, shared by every receiver and by the tap.
struct Packet {
    from: NodeId,
    src: IpAddr,
    dst: IpAddr,
    data: Bytes,
}

enum Event {
    /// Node timer; stale unless `generation` matches the node's current one.
    Timer { node: NodeId, generation: u64 },
    /// The packet leaves the sender's egress link and fans out to receivers' ingress links.
    Transit(Rc<Packet>),
    /// The packet leaves `to`'s ingress link.
    Deliver { to: NodeId, packet: Rc<Packet> },
}

/// The node's entry in the event queue. The queue holds at most one live timer event per node;
/// older ones are skipped when popped (lazy deletion) rather than searched for and removed.
#[derive(Default)]
struct TimerState {
    /// Generation of the live timer event, bumped on each push.
    generation: u64,
    /// Time of the live timer event. It may be earlier than the node's deadline: when a deadline
    /// moves later we keep the queued event (it just re-arms when it pops), so a receiver that
    /// pushes its expiry back on every packet does not flood the heap with stale entries.
    queued: Option<Instant>,
    /// When `handle_timeout` last ran: the next one is at least 1 µs later, so a node whose
    /// deadline stays in the past cannot livelock the clock.
    last_fired: Option<Instant>,
}

struct Slot {
    addr: IpAddr,
    node: Box<dyn AnyNode>,
    egress: Link,
    ingress: Link,
    stats: NodeStats,
    timer: TimerState,
    /// Touched through [`Sim::node_mut`]: flush and re-arm before the next event.
    dirty: bool,
}

/// The simulated network, its nodes and the virtual clock.
pub struct Sim {
    now: Instant,
    seed: u64,
    rng: SmallRng,
    slots: Vec<Slot>,
    by_addr: HashMap<IpAddr, NodeId>,
    /// Members of each group, in join order (which fixes the fan-out order, hence determinism).
    groups: HashMap<IpAddr, Vec<NodeId>>,
    queue: EventQueue<Event>,
    /// `Transit` and `Deliver` events in the queue: zero means the network is quiet.
    packets_in_flight: usize,
    dirty: Vec<NodeId>,
    tap: Option<Tap>,
    event_limit: u64,
    events: u64,
    /// Reused `poll_transmit` buffer.
    buf: Vec<u8>,
    /// Reused fan-out list.
    targets: Vec<NodeId>,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.now)
            .field("seed", &self.seed)
            .field("nodes", &self.slots.len())
            .field("packets_in_flight", &self.packets_in_flight)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// An empty network at time zero, all randomness drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        Sim {
            now: Instant::ZERO,
            seed,
            rng: SmallRng::seed_from_u64(seed),
            slots: Vec::new(),
            by_addr: HashMap::new(),
            groups: HashMap::new(),
            queue: EventQueue::new(),
            packets_in_flight: 0,
            dirty: Vec::new(),
            tap: None,
            event_limit: DEFAULT_EVENT_LIMIT,
            events: 0,
            buf: Vec::with_capacity(2048),
            targets: Vec::new(),
        }
    }

    /// The seed the simulation was created with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Events processed so far (packet hops and timer firings).
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Caps the events a single `run_*` call may process (default [`DEFAULT_EVENT_LIMIT`]).
    pub fn set_event_limit(&mut self, limit: u64) {
        self.event_limit = limit;
    }

    /// Adds `node` at unicast address `addr`, with ideal links. Its initial transmits and timer
    /// are picked up before the next event.
    ///
    /// # Panics
    /// If `addr` is multicast or already taken.
    pub fn add_node<N: Node + 'static>(&mut self, addr: IpAddr, node: N) -> NodeId {
        assert!(!addr.is_multicast(), "node address {addr} is multicast");
        let id = NodeId(self.slots.len());
        let previous = self.by_addr.insert(addr, id);
        assert!(previous.is_none(), "node address {addr} is already taken");
        self.slots.push(Slot {
            addr,
            node: Box::new(node),
            egress: Link::new(),
            ingress: Link::new(),
            stats: NodeStats::default(),
            timer: TimerState::default(),
            dirty: false,
        });
        self.mark_dirty(id);
        id
    }

    /// Subscribes the node to multicast `group`.
    ///
    /// # Panics
    /// If `group` is not a multicast address.
    pub fn join(&mut self, id: NodeId, group: IpAddr) {
        assert!(group.is_multicast(), "{group} is not a multicast group");
        let members = self.groups.entry(group).or_default();
        if !members.contains(&id) {
            members.push(id);
        }
    }

    /// Unsubscribes the node from `group`; packets already past its ingress still arrive.
    pub fn leave(&mut self, id: NodeId, group: IpAddr) {
        if let Some(members) = self.groups.get_mut(&group) {
            members.retain(|&m| m != id);
        }
    }

    /// The node's unicast address.
    pub fn addr(&self, id: NodeId) -> IpAddr {
        self.slots[id.0].addr
    }

    /// The node at `addr`, if any.
    pub fn node_id(&self, addr: IpAddr) -> Option<NodeId> {
        self.by_addr.get(&addr).copied()
    }

    /// Configuration of one of the node's links, to change it at any time. Queue and
    /// Gilbert–Elliott state carry over.
    pub fn link_mut(&mut self, id: NodeId, dir: Dir) -> &mut LinkConfig {
        &mut self.link(id, dir).config
    }

    /// Replaces both links' configurations.
    pub fn set_links(&mut self, id: NodeId, egress: LinkConfig, ingress: LinkConfig) {
        *self.link_mut(id, Dir::Egress) = egress;
        *self.link_mut(id, Dir::Ingress) = ingress;
    }

    /// Cuts one of the node's links for `during` (a packet entering the link then is dropped).
    pub fn link_down(&mut self, id: NodeId, dir: Dir, during: Range<Instant>) {
        self.link_mut(id, dir).down.push(during);
    }

    /// Installs a content filter on one of the node's links; it returns `true` to drop a packet.
    /// It sees packets before any other impairment, so it may keep state to script loss exactly
    /// ("drop the first ODATA with sqn 5"). Replaces any previous filter.
    pub fn set_filter(
        &mut self,
        id: NodeId,
        dir: Dir,
        filter: impl FnMut(&[u8]) -> bool + 'static,
    ) {
        self.link(id, dir).filter = Some(Box::new(filter));
    }

    /// Removes the link's content filter.
    pub fn clear_filter(&mut self, id: NodeId, dir: Dir) {
        self.link(id, dir).filter = None;
    }

    /// Installs a closure called for every packet sent, delivered or dropped.
    pub fn set_tap(&mut self, tap: impl FnMut(&TapEvent<'_>) + 'static) {
        self.tap = Some(Box::new(tap));
    }

    /// The node's traffic counters.
    pub fn stats(&self, id: NodeId) -> &NodeStats {
        &self.slots[id.0].stats
    }

    /// The node, downcast to its concrete type.
    ///
    /// # Panics
    /// If the node is not a `T`.
    pub fn node<T: Node + 'static>(&self, id: NodeId) -> &T {
        // Deref the box explicitly: `Box<dyn AnyNode>` is itself a `Node + Any`, and calling
        // `as_any` on it would downcast the box instead of the node.
        (*self.slots[id.0].node)
            .as_any()
            .downcast_ref()
            .unwrap_or_else(|| wrong_type::<T>(id))
    }

    /// The node, downcast to its concrete type, for calls such as `poll_event`. Anything it
    /// queues to send, or a changed timer, is picked up before the next event; to act at the
    /// current time and flush at once, use [`Sim::with_node_mut`].
    ///
    /// # Panics
    /// If the node is not a `T`.
    pub fn node_mut<T: Node + 'static>(&mut self, id: NodeId) -> &mut T {
        self.mark_dirty(id);
        (*self.slots[id.0].node)
            .as_any_mut()
            .downcast_mut()
            .unwrap_or_else(|| wrong_type::<T>(id))
    }

    /// Runs `f` on the node at the current time (application input such as `send`), then puts
    /// whatever the node wants to transmit on the wire and re-arms its timer.
    ///
    /// # Panics
    /// If the node is not a `T`.
    pub fn with_node_mut<T: Node + 'static, R>(
        &mut self,
        id: NodeId,
        f: impl FnOnce(&mut T, Instant) -> R,
    ) -> R {
        let now = self.now;
        let result = f(self.node_mut(id), now);
        self.flush_dirty();
        result
    }

    /// Processes the next event (a packet hop or a node timer), advancing the clock to it.
    /// Returns `false` if there is nothing left to do.
    pub fn step(&mut self) -> bool {
        self.step_before(NEVER)
    }

    /// Processes every event up to and including `t`, then sets the clock to `t`.
    pub fn run_until(&mut self, t: Instant) -> Result<(), SimError> {
        let mut budget = self.budget();
        while self.step_before(t) {
            budget.spend(self.now)?;
        }
        self.now = self.now.max(t);
        Ok(())
    }

    /// [`Sim::run_until`] `now + d`.
    pub fn run_for(&mut self, d: Duration) -> Result<(), SimError> {
        self.run_until(self.now + d)
    }

    /// Runs until no packet is in flight and no timer is due at or before `max_time`, and
    /// returns the time then. Nodes with perpetual timers (a source's ambient SPMs) are never
    /// idle; this then runs up to their last timer before `max_time`.
    ///
    /// Fails with [`SimError::Deadline`] if packets are still in flight past `max_time`.
    pub fn run_until_idle(&mut self, max_time: Instant) -> Result<Instant, SimError> {
        let mut budget = self.budget();
        loop {
            self.flush_dirty();
            let due = self.peek_live().filter(|&t| t <= max_time);
            if self.packets_in_flight == 0 && due.is_none() {
                return Ok(self.now);
            }
            if !self.step_before(max_time) {
                return Err(SimError::Deadline { deadline: max_time });
            }
            budget.spend(self.now)?;
        }
    }

    /// Runs while `cond` holds (checked before every event) and returns the time it stopped
    /// holding. `cond` gets the simulation, so it can inspect nodes.
    ///
    /// Fails with [`SimError::Deadline`], the clock set to `max_time`, if there is no event left
    /// at or before `max_time` while `cond` still holds.
    pub fn run_while(
        &mut self,
        mut cond: impl FnMut(&mut Sim) -> bool,
        max_time: Instant,
    ) -> Result<Instant, SimError> {
        let mut budget = self.budget();
        loop {
            if !cond(self) {
                return Ok(self.now);
            }
            if !self.step_before(max_time) {
                self.now = self.now.max(max_time);
                return Err(SimError::Deadline { deadline: max_time });
            }
            budget.spend(self.now)?;
        }
    }

    fn budget(&self) -> Budget {
        Budget {
            left: self.event_limit,
            limit: self.event_limit,
        }
    }

    fn link(&mut self, id: NodeId, dir: Dir) -> &mut Link {
        let slot = &mut self.slots[id.0];
        match dir {
            Dir::Egress => &mut slot.egress,
            Dir::Ingress => &mut slot.ingress,
        }
    }

    fn mark_dirty(&mut self, id: NodeId) {
        let slot = &mut self.slots[id.0];
        if !slot.dirty {
            slot.dirty = true;
            self.dirty.push(id);
        }
    }

    /// Flushes and re-arms nodes touched from outside, in the order they were touched.
    fn flush_dirty(&mut self) {
        for i in 0..self.dirty.len() {
            let id = self.dirty[i];
            self.slots[id.0].dirty = false;
            self.flush(id);
            self.arm(id);
        }
        self.dirty.clear();
    }

    /// Pops superseded timer events off the top of the queue and returns the next live time.
    fn peek_live(&mut self) -> Option<Instant> {
        loop {
            let (at, event) = self.queue.peek()?;
            match event {
                Event::Timer { node, generation }
                    if self.slots[node.0].timer.generation != *generation =>
                {
                    self.queue.pop();
                }
                _ => return Some(at),
            }
        }
    }

    /// Processes the next live event if it is due at or before `limit`.
    fn step_before(&mut self, limit: Instant) -> bool {
        self.flush_dirty();
        match self.peek_live() {
            Some(at) if at <= limit => {}
            _ => return false,
        }
        let Some((at, event)) = self.queue.pop() else {
            return false;
        };
        // Events are never scheduled in the past, but keep the clock monotonic regardless.
        self.now = self.now.max(at);
        self.events += 1;
        match event {
            Event::Timer { node, .. } => {
                self.slots[node.0].timer.queued = None;
                self.fire_timer(node);
            }
            Event::Transit(packet) => {
                self.packets_in_flight -= 1;
                self.fan_out(&packet);
            }
            Event::Deliver { to, packet } => {
                self.packets_in_flight -= 1;
                self.deliver(to, &packet);
            }
        }
        true
    }

    /// Calls `handle_timeout` if the node's deadline has really passed (the queued event may be
    /// early if the deadline moved later), then re-arms.
    fn fire_timer(&mut self, id: NodeId) {
        let now = self.now;
        let slot = &mut self.slots[id.0];
        if slot
            .node
            .poll_timeout()
            .is_some_and(|deadline| deadline <= now)
        {
            slot.node.handle_timeout(now);
            slot.stats.timeouts += 1;
            slot.timer.last_fired = Some(now);
            self.flush(id);
        }
        self.arm(id);
    }

    /// Makes sure a live timer event is queued at or before the node's deadline. Called after
    /// every input to the node, since any input may change it.
    fn arm(&mut self, id: NodeId) {
        let now = self.now;
        let slot = &mut self.slots[id.0];
        // With no deadline, a queued event is left to pop and find nothing to do.
        let Some(deadline) = slot.node.poll_timeout() else {
            return;
        };
        let mut at = deadline.max(now);
        if let Some(fired) = slot.timer.last_fired.filter(|&fired| at <= fired) {
            at = fired + Duration::from_micros(1);
        }
        if slot.timer.queued.is_some_and(|queued| queued <= at) {
            return;
        }
        slot.timer.generation += 1;
        slot.timer.queued = Some(at);
        let generation = slot.timer.generation;
        self.queue.push(
            at,
            Event::Timer {
                node: id,
                generation,
            },
        );
    }

    /// Drains the node's `poll_transmit` onto its egress link.
    fn flush(&mut self, id: NodeId) {
        let now = self.now;
        let mut buf = std::mem::take(&mut self.buf);
        for polls in 0.. {
            buf.clear();
            let Some(transmit) = self.slots[id.0].node.poll_transmit(now, &mut buf) else {
                break;
            };
            assert!(
                polls < MAX_TRANSMITS_PER_POLL,
                "node {id:?} transmitted {MAX_TRANSMITS_PER_POLL} packets at {now:?} without \
                 pausing: livelock?"
            );
            let Some(bytes) = buf.get(..transmit.len) else {
                panic!(
                    "node {id:?} returned Transmit.len {} with only {} bytes in the buffer",
                    transmit.len,
                    buf.len()
                );
            };
            // The one copy of the packet: receivers and the tap share it from here on.
            self.send(id, transmit.dst, Bytes::copy_from_slice(bytes));
        }
        self.buf = buf;
    }

    /// Puts a packet on the sender's egress link.
    fn send(&mut self, from: NodeId, dst: IpAddr, data: Bytes) {
        let now = self.now;
        let slot = &mut self.slots[from.0];
        slot.stats.sent_packets += 1;
        slot.stats.sent_bytes += data.len() as u64;
        let packet = Rc::new(Packet {
            from,
            src: slot.addr,
            dst,
            data,
        });
        let outcome = slot.egress.transit(now, &packet.data, &mut self.rng);
        if let Err(reason) = outcome {
            slot.stats.egress_drops.count(reason);
        }
        self.tap(TapKind::Sent, &packet, None);
        match outcome {
            Err(reason) => self.tap(TapKind::Dropped(reason), &packet, None),
            Ok((first, copy)) => {
                for at in std::iter::once(first).chain(copy) {
                    self.packets_in_flight += 1;
                    self.queue.push(at, Event::Transit(Rc::clone(&packet)));
                }
            }
        }
    }

    /// The packet has crossed the sender's egress: send it into each receiver's ingress.
    fn fan_out(&mut self, packet: &Rc<Packet>) {
        let mut targets = std::mem::take(&mut self.targets);
        targets.clear();
        if packet.dst.is_multicast() {
            if let Some(members) = self.groups.get(&packet.dst) {
                targets.extend(members.iter().filter(|&&m| m != packet.from));
            }
        } else {
            match self.by_addr.get(&packet.dst) {
                Some(&to) if to != packet.from => targets.push(to),
                _ => {
                    self.slots[packet.from.0]
                        .stats
                        .egress_drops
                        .count(DropReason::NoRoute);
                    self.tap(TapKind::Dropped(DropReason::NoRoute), packet, None);
                }
            }
        }
        let now = self.now;
        for &to in &targets {
            let slot = &mut self.slots[to.0];
            match slot.ingress.transit(now, &packet.data, &mut self.rng) {
                Err(reason) => {
                    slot.stats.ingress_drops.count(reason);
                    self.tap(TapKind::Dropped(reason), packet, Some(to));
                }
                Ok((first, copy)) => {
                    for at in std::iter::once(first).chain(copy) {
                        self.packets_in_flight += 1;
                        let packet = Rc::clone(packet);
                        self.queue.push(at, Event::Deliver { to, packet });
                    }
                }
            }
        }
        self.targets = targets;
    }

    /// Hands the packet to the node, then sends what it answers and re-arms its timer.
    fn deliver(&mut self, to: NodeId, packet: &Packet) {
        let now = self.now;
        self.tap(TapKind::Delivered, packet, Some(to));
        let slot = &mut self.slots[to.0];
        slot.stats.delivered_packets += 1;
        slot.stats.delivered_bytes += packet.data.len() as u64;
        slot.node
            .handle_packet(now, packet.src, packet.dst, &packet.data);
        self.flush(to);
        self.arm(to);
    }

    fn tap(&mut self, kind: TapKind, packet: &Packet, to_node: Option<NodeId>) {
        if let Some(tap) = &mut self.tap {
            tap(&TapEvent {
                time: self.now,
                kind,
                from: packet.from,
                src: packet.src,
                dst: packet.dst,
                to_node,
                bytes: &packet.data,
            });
        }
    }
}

/// Events left to one `run_*` call.
struct Budget {
    left: u64,
    limit: u64,
}

impl Budget {
    fn spend(&mut self, now: Instant) -> Result<(), SimError> {
        if self.left == 0 {
            return Err(SimError::EventLimit {
                limit: self.limit,
                now,
            });
        }
        self.left -= 1;
        Ok(())
    }
}

fn wrong_type<T>(id: NodeId) -> ! {
    panic!("node {id:?} is not a {}", std::any::type_name::<T>())
}
