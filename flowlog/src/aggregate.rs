//! Turning tuples into flows that are evaluated once.
//!
//! Azure logs a long flow as a `B` tuple, a `C` tuple every interval and an
//! `E` tuple at the end. A policy should judge the flow once, when it first
//! appears, and see its totals when it ends; the aggregator tells the two
//! moments apart.

use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::tuple::{Decision, Direction, FlowState, FlowTuple, Position, SourceFormat};

/// What identifies a flow: the 5-tuple and the direction.
///
/// The direction is part of the key because a flow between two interfaces
/// that are both logged appears once as outbound (at the sender) and once as
/// inbound (at the receiver); they are two observations, each with its own
/// rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// IANA protocol number.
    pub protocol: u8,
    /// Direction relative to the logging interface.
    pub direction: Direction,
}

impl FlowKey {
    /// The key of the flow a tuple belongs to.
    pub fn of(tuple: &FlowTuple) -> FlowKey {
        FlowKey {
            src: tuple.src,
            dst: tuple.dst,
            src_port: tuple.src_port,
            dst_port: tuple.dst_port,
            protocol: tuple.protocol,
            direction: tuple.direction,
        }
    }
}

/// A flow assembled from its tuples.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregatedFlow {
    /// Number given by the aggregator, unique for its lifetime, to pair a
    /// [`FlowEvent::Opened`] with its [`FlowEvent::Closed`].
    pub id: u64,
    /// The flow's key.
    pub key: FlowKey,
    /// The format of the first tuple.
    pub source: SourceFormat,
    /// Time of the first tuple, in nanoseconds since the Unix epoch.
    pub first_time_ns: u64,
    /// Latest time among its tuples (JSON lines: including `end`).
    pub last_time_ns: u64,
    /// Packets from source to destination, summed over the tuples.
    pub packets_sent: u64,
    /// Bytes from source to destination, summed over the tuples.
    pub bytes_sent: u64,
    /// Packets from destination to source, summed over the tuples.
    pub packets_received: u64,
    /// Bytes from destination to source, summed over the tuples.
    pub bytes_received: u64,
    /// How many tuples made the flow so far.
    pub tuples: u64,
    /// Whether the flow was denied (VNet state `D`, NSG decision `D`,
    /// JSON lines `"denied": true`).
    pub denied: bool,
    /// Whether its `B` tuple was seen; `false` when the log starts in the
    /// middle of the flow.
    pub begin_seen: bool,
    /// Whether its `E` tuple was seen.
    pub end_seen: bool,
    /// The rule of the first tuple.
    pub rule: Option<Arc<str>>,
    /// The logged resource.
    pub resource_id: Option<Arc<str>>,
    /// The interface's MAC address.
    pub mac: Option<Arc<str>>,
    /// The name the client resolved (JSON lines).
    pub name: Option<Arc<str>>,
    /// The TLS server name (JSON lines).
    pub sni: Option<Arc<str>>,
    /// The HTTP host (JSON lines).
    pub http_host: Option<Arc<str>>,
    /// Where the first tuple was found.
    pub first_position: Position,
}

impl AggregatedFlow {
    fn start(id: u64, key: FlowKey, tuple: &FlowTuple) -> AggregatedFlow {
        let mut flow = AggregatedFlow {
            id,
            key,
            source: tuple.source,
            first_time_ns: tuple.time_ns,
            last_time_ns: tuple.time_ns,
            packets_sent: 0,
            bytes_sent: 0,
            packets_received: 0,
            bytes_received: 0,
            tuples: 0,
            denied: false,
            begin_seen: tuple.state == Some(FlowState::Begin),
            end_seen: false,
            rule: tuple.rule.clone(),
            resource_id: tuple.resource_id.clone(),
            mac: tuple.mac.clone(),
            name: tuple.name.clone(),
            sni: tuple.sni.clone(),
            http_host: tuple.http_host.clone(),
            first_position: tuple.position,
        };
        flow.add(tuple);
        flow
    }

    fn add(&mut self, tuple: &FlowTuple) {
        let sum = |total: &mut u64, value: Option<u64>| {
            *total = total.saturating_add(value.unwrap_or(0));
        };
        sum(&mut self.packets_sent, tuple.packets_sent);
        sum(&mut self.bytes_sent, tuple.bytes_sent);
        sum(&mut self.packets_received, tuple.packets_received);
        sum(&mut self.bytes_received, tuple.bytes_received);
        self.tuples += 1;
        self.last_time_ns = self
            .last_time_ns
            .max(tuple.time_ns)
            .max(tuple.end_time_ns.unwrap_or(0));
        self.denied |= is_denied(tuple);
        self.end_seen |= tuple.state == Some(FlowState::End);
        let fill = |slot: &mut Option<Arc<str>>, value: &Option<Arc<str>>| {
            if slot.is_none() {
                slot.clone_from(value);
            }
        };
        fill(&mut self.name, &tuple.name);
        fill(&mut self.sni, &tuple.sni);
        fill(&mut self.http_host, &tuple.http_host);
    }
}

fn is_denied(tuple: &FlowTuple) -> bool {
    tuple.decision == Decision::Denied || tuple.state == Some(FlowState::Denied)
}

/// Why a flow left the aggregator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// Its `E` tuple arrived.
    Ended,
    /// A tuple started a new flow with the same key: a `B` tuple, or a denied
    /// tuple after allowed ones. The old flow's end was not logged.
    Replaced,
    /// The table was full and this flow was the least recently updated.
    Evicted,
    /// [`FlowAggregator::expire_idle`] found it idle.
    Idle,
    /// [`FlowAggregator::finish`] closed it at the end of the input.
    Flushed,
}

/// What the aggregator reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowEvent {
    /// A flow seen for the first time: evaluate it. Later tuples of the same
    /// flow only update its counters and produce no event until it closes.
    Opened(AggregatedFlow),
    /// A flow left the table, with its final counters. Every opened flow is
    /// closed exactly once (if [`FlowAggregator::finish`] is called).
    Closed {
        /// The flow as it ended.
        flow: AggregatedFlow,
        /// Why it was closed.
        reason: CloseReason,
    },
}

/// What [`FlowAggregator::push_lent`] reports: a [`FlowEvent`] whose opened flow is
/// lent rather than copied.
#[derive(Debug)]
// A closed flow goes straight to the callback; boxing it would cost an allocation per
// flow to save a move.
#[allow(clippy::large_enum_variant)]
pub enum FlowChange<'a> {
    /// A flow seen for the first time, as it is in the table.
    Opened(&'a AggregatedFlow),
    /// A flow left the table, with its final counters.
    Closed {
        /// The flow as it ended.
        flow: AggregatedFlow,
        /// Why it was closed.
        reason: CloseReason,
    },
}

impl FlowChange<'_> {
    /// The event [`FlowAggregator::push`] reports for this change.
    pub fn into_event(self) -> FlowEvent {
        match self {
            FlowChange::Opened(flow) => FlowEvent::Opened(flow.clone()),
            FlowChange::Closed { flow, reason } => FlowEvent::Closed { flow, reason },
        }
    }
}

/// Counters of what the aggregator did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AggregatorStats {
    /// Tuples pushed.
    pub tuples: u64,
    /// Flows opened.
    pub opened: u64,
    /// Flows closed by their `E` tuple.
    pub ended: u64,
    /// Flows closed because a new flow took their key.
    pub replaced: u64,
    /// Flows evicted because the table was full.
    pub evicted: u64,
    /// Flows closed as idle.
    pub expired: u64,
    /// Flows closed by [`FlowAggregator::finish`].
    pub flushed: u64,
}

/// The table's key: a [`FlowKey`] as three integers, so that hashing and comparing it
/// is a few word operations instead of walking two `IpAddr` enums. IPv4 addresses are
/// mapped into IPv6; the families are kept apart in `rest`, so `::ffff:10.0.0.1` and
/// `10.0.0.1` stay two flows as they are two keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct PackedKey {
    src: u128,
    dst: u128,
    /// Ports, protocol, direction and the two address families.
    rest: u64,
}

impl PackedKey {
    fn of(key: &FlowKey) -> PackedKey {
        let (src, src_v4) = address_bits(key.src);
        let (dst, dst_v4) = address_bits(key.dst);
        let rest = u64::from(key.src_port)
            | u64::from(key.dst_port) << 16
            | u64::from(key.protocol) << 32
            | u64::from(key.direction == Direction::Inbound) << 40
            | u64::from(src_v4) << 41
            | u64::from(dst_v4) << 42;
        PackedKey { src, dst, rest }
    }
}

fn address_bits(address: IpAddr) -> (u128, bool) {
    match address {
        IpAddr::V4(v4) => (u128::from(v4.to_ipv6_mapped()), true),
        IpAddr::V6(v6) => (u128::from(v6), false),
    }
}

/// No slot: the end of the recency list.
const NONE: usize = usize::MAX;

/// A flow in the table, linked into the recency list.
struct Node {
    flow: AggregatedFlow,
    /// The node updated just before this one (towards the oldest).
    older: usize,
    /// The node updated just after this one (towards the newest).
    newer: usize,
}

/// Groups tuples into flows in bounded memory.
///
/// Each tuple is keyed by [`FlowKey`]. The first tuple of a flow (its `B`,
/// or whatever tuple comes first when the log starts mid-flow) opens it:
/// [`FlowEvent::Opened`] is emitted once, and the entry remembers that, so
/// later `C` tuples only add to its counters. Its `E` tuple closes it with
/// the totals. Sources without states (NSG version 1, JSON lines) never
/// close a flow by themselves: it closes when evicted, expired with
/// [`FlowAggregator::expire_idle`], or flushed with
/// [`FlowAggregator::finish`].
///
/// The table holds at most `max_entries` flows; opening one more evicts the
/// least recently updated one (reported as closed, and counted).
///
/// ```
/// use linkward_flowlog::{read_flow_log, FlowAggregator, FlowEvent, TupleEvent};
///
/// let log = br#"{"records":[{"flowLogVersion":4,"macAddress":"00224871C205",
///   "targetResourceID":"/vnet","flowRecords":{"flows":[{"aclID":"a",
///   "flowGroups":[{"rule":"AllowOut","flowTuples":[
///     "1663146003599,10.0.0.6,52.239.184.180,23956,443,6,O,B,NX,0,0,0,0",
///     "1663146063599,10.0.0.6,52.239.184.180,23956,443,6,O,C,NX,3,767,2,1580",
///     "1663146123599,10.0.0.6,52.239.184.180,23956,443,6,O,E,NX,1,60,1,60"]}]}]}}]}"#;
/// let mut aggregator = FlowAggregator::new(10_000);
/// let mut events = Vec::new();
/// read_flow_log(&log[..], "example", |event| {
///     if let TupleEvent::Tuple(tuple) = event {
///         aggregator.push(&tuple, |flow_event| events.push(flow_event));
///     }
/// })?;
/// assert_eq!(events.len(), 2);
/// assert!(matches!(&events[0], FlowEvent::Opened(flow) if flow.tuples == 1));
/// assert!(matches!(&events[1], FlowEvent::Closed { flow, .. } if flow.bytes_sent == 827));
/// # Ok::<(), linkward_flowlog::FlowLogError>(())
/// ```
pub struct FlowAggregator {
    max_entries: usize,
    /// Where each open flow's node is in `nodes`.
    table: FxHashMap<PackedKey, usize>,
    /// The open flows; `None` for free slots, whose indexes wait in `free`. A slab
    /// with a doubly linked recency list through it makes an update, a removal and
    /// finding the least recently updated flow O(1), with no per-update allocation
    /// and nothing to compact.
    nodes: Vec<Option<Node>>,
    free: Vec<usize>,
    /// Least recently updated node, or [`NONE`].
    oldest: usize,
    /// Most recently updated node, or [`NONE`].
    newest: usize,
    next_id: u64,
    stats: AggregatorStats,
}

impl FlowAggregator {
    /// An aggregator that holds at most `max_entries` flows (at least one).
    pub fn new(max_entries: usize) -> FlowAggregator {
        FlowAggregator {
            max_entries: max_entries.max(1),
            table: FxHashMap::default(),
            nodes: Vec::new(),
            free: Vec::new(),
            oldest: NONE,
            newest: NONE,
            next_id: 0,
            stats: AggregatorStats::default(),
        }
    }

    /// Adds one tuple, reporting what it caused to `on_event`: a closed flow
    /// whose key it took over or that it evicted, then the flow it opened,
    /// then its end if it was an `E` tuple.
    pub fn push(&mut self, tuple: &FlowTuple, mut on_event: impl FnMut(FlowEvent)) {
        self.push_lent(tuple, |change| on_event(change.into_event()));
    }

    /// Like [`FlowAggregator::push`], but lends the opened flow instead of handing
    /// over a copy: a caller that only reads it (to evaluate it) saves copying the
    /// flow and its shared strings once per flow.
    pub fn push_lent(&mut self, tuple: &FlowTuple, mut on_event: impl FnMut(FlowChange<'_>)) {
        self.stats.tuples += 1;
        let key = FlowKey::of(tuple);
        let packed = PackedKey::of(&key);
        let ends = tuple.state == Some(FlowState::End);
        let found = self.table.get(&packed).copied();
        if let Some(index) = found {
            let continues = match self.nodes.get_mut(index) {
                Some(Some(node)) => {
                    let starts_new = tuple.state == Some(FlowState::Begin)
                        || (is_denied(tuple) && !node.flow.denied);
                    if !starts_new {
                        node.flow.add(tuple);
                    }
                    !starts_new
                }
                // The table only names live nodes; treat a dangling index as a new flow.
                _ => false,
            };
            if continues {
                if ends {
                    self.table.remove(&packed);
                    if let Some(flow) = self.unlink(index) {
                        self.stats.ended += 1;
                        on_event(FlowChange::Closed {
                            flow,
                            reason: CloseReason::Ended,
                        });
                    }
                } else {
                    self.touch(index);
                }
                return;
            }
            self.table.remove(&packed);
            if let Some(old) = self.unlink(index) {
                self.stats.replaced += 1;
                on_event(FlowChange::Closed {
                    flow: old,
                    reason: CloseReason::Replaced,
                });
            }
        }
        while self.table.len() >= self.max_entries {
            let Some(oldest) = self.remove_oldest() else {
                break;
            };
            self.stats.evicted += 1;
            on_event(FlowChange::Closed {
                flow: oldest,
                reason: CloseReason::Evicted,
            });
        }
        let flow = AggregatedFlow::start(self.next_id, key, tuple);
        self.next_id += 1;
        self.stats.opened += 1;
        if ends {
            // Opened and ended by the same tuple: it never needs a place in the table.
            on_event(FlowChange::Opened(&flow));
            self.stats.ended += 1;
            on_event(FlowChange::Closed {
                flow,
                reason: CloseReason::Ended,
            });
        } else {
            let index = self.insert(flow);
            self.table.insert(packed, index);
            if let Some(Some(node)) = self.nodes.get(index) {
                on_event(FlowChange::Opened(&node.flow));
            }
        }
    }

    /// Closes every flow whose latest tuple is more than `idle_ns`
    /// nanoseconds older than `now_ns` (both on the log's clock), oldest
    /// update first. Meant for long inputs of sources that do not log flow
    /// ends; it scans the whole table, so call it now and then, not per
    /// tuple.
    pub fn expire_idle(&mut self, now_ns: u64, idle_ns: u64, mut on_event: impl FnMut(FlowEvent)) {
        let mut idle = Vec::new();
        let mut at = self.oldest;
        while let Some(Some(node)) = self.nodes.get(at) {
            if node.flow.last_time_ns.saturating_add(idle_ns) < now_ns {
                idle.push(at);
            }
            at = node.newer;
        }
        for index in idle {
            if let Some(flow) = self.unlink(index) {
                self.table.remove(&PackedKey::of(&flow.key));
                self.stats.expired += 1;
                on_event(FlowEvent::Closed {
                    flow,
                    reason: CloseReason::Idle,
                });
            }
        }
    }

    /// Closes every remaining flow, least recently updated first; call it at
    /// the end of the input.
    pub fn finish(&mut self, mut on_event: impl FnMut(FlowEvent)) {
        while let Some(flow) = self.remove_oldest() {
            self.stats.flushed += 1;
            on_event(FlowEvent::Closed {
                flow,
                reason: CloseReason::Flushed,
            });
        }
    }

    /// Number of open flows.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no flow is open.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// What the aggregator did so far.
    pub fn stats(&self) -> &AggregatorStats {
        &self.stats
    }

    /// Puts `flow` in a free slot as the most recently updated node.
    fn insert(&mut self, flow: AggregatedFlow) -> usize {
        let node = Node {
            flow,
            older: self.newest,
            newer: NONE,
        };
        let index = match self.free.pop() {
            Some(index) if index < self.nodes.len() => {
                if let Some(slot) = self.nodes.get_mut(index) {
                    *slot = Some(node);
                }
                index
            }
            _ => {
                self.nodes.push(Some(node));
                self.nodes.len() - 1
            }
        };
        self.link_newest(index);
        index
    }

    /// Makes the node at `index` the most recently updated one.
    fn touch(&mut self, index: usize) {
        if self.newest == index {
            return;
        }
        self.detach(index);
        if let Some(Some(node)) = self.nodes.get_mut(index) {
            node.older = self.newest;
            node.newer = NONE;
        }
        self.link_newest(index);
    }

    /// Links the node at `index`, whose `older` is already `self.newest`, at the new end.
    fn link_newest(&mut self, index: usize) {
        match self.nodes.get_mut(self.newest) {
            Some(Some(previous)) => previous.newer = index,
            _ => self.oldest = index,
        }
        self.newest = index;
    }

    /// Takes the node at `index` out of the recency list, leaving it in its slot.
    fn detach(&mut self, index: usize) {
        let Some(Some(node)) = self.nodes.get(index) else {
            return;
        };
        let (older, newer) = (node.older, node.newer);
        match self.nodes.get_mut(older) {
            Some(Some(o)) => o.newer = newer,
            _ => self.oldest = newer,
        }
        match self.nodes.get_mut(newer) {
            Some(Some(n)) => n.older = older,
            _ => self.newest = older,
        }
    }

    /// Takes the node at `index` out of the list and frees its slot; the caller removes
    /// its key from the table.
    fn unlink(&mut self, index: usize) -> Option<AggregatedFlow> {
        self.detach(index);
        let node = self.nodes.get_mut(index)?.take()?;
        self.free.push(index);
        Some(node.flow)
    }

    fn remove_oldest(&mut self) -> Option<AggregatedFlow> {
        let flow = self.unlink(self.oldest)?;
        self.table.remove(&PackedKey::of(&flow.key));
        Some(flow)
    }
}
