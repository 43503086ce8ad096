//! The flow table: one entry per connection (both directions), bounded in size.
//!
//! Entries are keyed by the direction-free 5-tuple. When the table is full the oldest
//! flow is evicted (first created, first out, tracked by a queue with lazy deletion), and
//! idle flows time out on capture time. Whatever leaves the table is handed back to the
//! caller so that a flow not yet evaluated is evaluated then: nothing is lost.

use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;

/// Direction-free flow key: the lower (address, port) end first. Addresses are kept
/// as 128-bit numbers (IPv4 mapped into IPv6), which compare and hash in a few
/// instructions where `IpAddr`'s enum costs a branch per step; the whole key is five
/// words (40 bytes), so a table probe compares and hashes one cache line's worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    /// The lower end's address (high half, low half), then the higher end's.
    addresses: [u64; 4],
    /// The lower end's port, the higher end's port and the protocol, packed.
    ports_protocol: u64,
}

#[inline]
fn wide(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Hashes the five words one by one: the derived `Hash` of an array would go through
/// the hasher's byte-slice path, several times slower for Fx.
impl std::hash::Hash for FlowKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for word in self.addresses {
            state.write_u64(word);
        }
        state.write_u64(self.ports_protocol);
    }
}

impl FlowKey {
    #[inline]
    pub fn new(src: IpAddr, src_port: u16, dst: IpAddr, dst_port: u16, protocol: u8) -> FlowKey {
        let (a, b) = ((wide(src), src_port), (wide(dst), dst_port));
        let ((lo, lo_port), (hi, hi_port)) = if a <= b { (a, b) } else { (b, a) };
        FlowKey {
            addresses: [(lo >> 64) as u64, lo as u64, (hi >> 64) as u64, hi as u64],
            ports_protocol: u64::from(lo_port) << 32
                | u64::from(hi_port) << 16
                | u64::from(protocol),
        }
    }

    /// A hash that is the same for both directions, for splitting work over workers.
    pub fn shard_hash(&self) -> u64 {
        use std::hash::BuildHasher;
        rustc_hash::FxBuildHasher.hash_one(self)
    }

    /// Which of `count` workers owns this flow: the hash scaled into `0..count` by a
    /// multiplication, which costs a fraction of a division on every packet.
    pub fn shard(&self, count: u64) -> u64 {
        ((u128::from(self.shard_hash()) * u128::from(count)) >> 64) as u64
    }
}

/// What the host knows about one connection.
///
/// Laid out in declaration order (`repr(C)`): what every packet reads or updates comes
/// first, next to the key in the table's slot, so that tracking a packet touches two
/// cache lines of its flow rather than the three or four the compiler's own order
/// spread it over.
#[derive(Clone, Debug)]
#[repr(C)]
pub struct FlowEntry {
    pub last_ns: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Its window flow, on a tracker that scans a second half (see `track::split`).
    pub(crate) window: u32,
    pub client_port: u16,
    pub evaluated: bool,
    pub client_fin: bool,
    pub server_fin: bool,
    pub reset: bool,
    /// Whether it counts quiet packets of its window flow.
    pub(crate) quiet: crate::track::split::Quiet,
    pub protocol: u8,
    pub client: IpAddr,
    pub server: IpAddr,
    pub server_port: u16,
    pub first_ns: u64,
    seq: u64,
    pub sni: Option<Arc<str>>,
    pub http_host: Option<Arc<str>>,
    /// A ClientHello that spans segments, kept until it is complete (bounded).
    pub hello_buffer: Option<Vec<u8>>,
}

impl FlowEntry {
    pub fn new(
        client: (IpAddr, u16),
        server: (IpAddr, u16),
        protocol: u8,
        now_ns: u64,
    ) -> FlowEntry {
        FlowEntry {
            client: client.0,
            client_port: client.1,
            server: server.0,
            server_port: server.1,
            protocol,
            first_ns: now_ns,
            last_ns: now_ns,
            packets: 0,
            bytes: 0,
            sni: None,
            http_host: None,
            hello_buffer: None,
            evaluated: false,
            client_fin: false,
            server_fin: false,
            reset: false,
            seq: 0,
            window: crate::track::split::NOT_IN_WINDOW,
            quiet: crate::track::split::Quiet::Never,
        }
    }

    /// TCP is over: both sides closed, or a reset.
    pub fn finished(&self) -> bool {
        self.reset || (self.client_fin && self.server_fin)
    }
}

/// How long a closed TCP connection stays in the table to absorb its last ACKs and
/// resets, so they are not taken for a new flow: 60 s of quiet, like TCP's TIME_WAIT.
const CLOSED_LINGER_NS: u64 = 60_000_000_000;

/// Sweeps for idle flows fall at most once per this much capture time.
const SWEEP_NS: u64 = 1_000_000_000;

/// Why a flow left the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Departure {
    Finished,
    IdleTimeout,
    Evicted,
    EndOfInput,
}

#[derive(Clone, Debug)]
pub struct FlowTableConfig {
    pub max_flows: usize,
    pub tcp_idle_secs: u64,
    pub udp_idle_secs: u64,
}

impl Default for FlowTableConfig {
    fn default() -> Self {
        FlowTableConfig {
            max_flows: 1 << 20,
            tcp_idle_secs: 300,
            udp_idle_secs: 60,
        }
    }
}

#[derive(Clone)]
pub struct FlowTable {
    map: FxHashMap<FlowKey, FlowEntry>,
    /// While a change may still be taken back (see [`FlowTable::begin_journal`]).
    journal: Option<Box<Journal>>,
    order: VecDeque<(FlowKey, u64)>,
    next_seq: u64,
    config: FlowTableConfig,
    last_sweep_ns: u64,
    /// The first time at which a sweep is due: the second after `last_sweep_ns`'s.
    next_sweep_ns: u64,
    /// The most flows the table has held at once.
    peak: usize,
    pub created: u64,
    pub evicted: u64,
    pub timed_out: u64,
}

/// What a journaled table was before its change: each entry as it was when the change
/// first touched it (`None`: it was not there), and the rest of the table's state.
#[derive(Clone)]
struct Journal {
    saved: FxHashMap<FlowKey, Option<FlowEntry>>,
    /// Entries of which only the counters and closing flags changed, with those as they
    /// were (see [`FlowTable::get_mut_counts`]), in the order saved.
    counts: Vec<(FlowKey, Counts)>,
    /// The table without its entries: its queue, counters and clocks.
    rest: FlowTable,
}

/// What [`FlowTable::get_mut_counts`] may change of an entry.
#[derive(Clone, Copy)]
struct Counts {
    last_ns: u64,
    packets: u64,
    bytes: u64,
    client_fin: bool,
    server_fin: bool,
    reset: bool,
}

impl Counts {
    fn of(e: &FlowEntry) -> Counts {
        Counts {
            last_ns: e.last_ns,
            packets: e.packets,
            bytes: e.bytes,
            client_fin: e.client_fin,
            server_fin: e.server_fin,
            reset: e.reset,
        }
    }

    fn restore(self, e: &mut FlowEntry) {
        e.last_ns = self.last_ns;
        e.packets = self.packets;
        e.bytes = self.bytes;
        e.client_fin = self.client_fin;
        e.server_fin = self.server_fin;
        e.reset = self.reset;
    }
}

impl FlowTable {
    pub fn new(config: FlowTableConfig) -> FlowTable {
        FlowTable {
            map: FxHashMap::default(),
            journal: None,
            order: VecDeque::new(),
            next_seq: 0,
            config,
            last_sweep_ns: 0,
            next_sweep_ns: SWEEP_NS,
            peak: 0,
            created: 0,
            evicted: 0,
            timed_out: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    #[inline]
    pub fn get_mut(&mut self, key: &FlowKey) -> Option<&mut FlowEntry> {
        if self.journal.is_some() {
            self.save(key);
        }
        self.map.get_mut(key)
    }

    /// Starts a change that [`roll_back`](FlowTable::roll_back) can take back: from
    /// now on, the first time an entry is looked up to be changed, inserted or removed,
    /// the journal keeps it as it was. What a change touches costs a copy; the rest of
    /// the table costs nothing, where copying the table up front costs every entry.
    pub(crate) fn begin_journal(&mut self) {
        self.journal = Some(Box::new(Journal {
            saved: FxHashMap::default(),
            counts: Vec::new(),
            rest: FlowTable {
                map: FxHashMap::default(),
                journal: None,
                order: self.order.clone(),
                config: self.config.clone(),
                ..*self
            },
        }));
    }

    /// Keeps the change made since [`begin_journal`](FlowTable::begin_journal).
    pub(crate) fn commit(&mut self) {
        self.journal = None;
    }

    /// Puts the table back as it was at [`begin_journal`](FlowTable::begin_journal).
    pub(crate) fn roll_back(&mut self) {
        let Some(journal) = self.journal.take() else {
            return;
        };
        let Journal {
            saved,
            counts,
            rest,
        } = *journal;
        *self = FlowTable {
            map: std::mem::take(&mut self.map),
            ..rest
        };
        // Whole entries first: one saved whole after its counts changed holds those
        // changed counts, which the counts saved before put back.
        for (key, entry) in saved {
            match entry {
                Some(entry) => {
                    self.map.insert(key, entry);
                }
                None => {
                    self.map.remove(&key);
                }
            }
        }
        for (key, counts) in counts.into_iter().rev() {
            if let Some(e) = self.map.get_mut(&key) {
                counts.restore(e);
            }
        }
    }

    /// [`get_mut`](FlowTable::get_mut) for a change of the entry's counters, latest
    /// time and closing flags only, which is all a journal then keeps of it: a copy of
    /// the whole entry reads its names, a cache miss each on a table the change
    /// otherwise leaves alone.
    pub(crate) fn get_mut_counts(&mut self, key: &FlowKey) -> Option<&mut FlowEntry> {
        let e = self.map.get_mut(key)?;
        if let Some(journal) = &mut self.journal
            && !journal.saved.contains_key(key)
        {
            journal.counts.push((*key, Counts::of(e)));
        }
        Some(e)
    }

    /// Keeps `key`'s entry as it is now in the journal, unless it already has it.
    #[cold]
    #[inline(never)]
    fn save(&mut self, key: &FlowKey) {
        if let Some(journal) = &mut self.journal {
            let map = &self.map;
            journal
                .saved
                .entry(*key)
                .or_insert_with(|| map.get(key).cloned());
        }
    }

    pub fn get(&self, key: &FlowKey) -> Option<&FlowEntry> {
        self.map.get(key)
    }

    pub fn contains(&self, key: &FlowKey) -> bool {
        self.map.contains_key(key)
    }

    /// The most flows the table has held at once.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// The latest packet time of any flow in the table (0 when empty).
    pub fn latest_packet_ns(&self) -> u64 {
        self.map.values().map(|e| e.last_ns).max().unwrap_or(0)
    }

    /// When the table last looked for idle flows.
    pub fn last_sweep_ns(&self) -> u64 {
        self.last_sweep_ns
    }

    /// The longest a flow can stay idle in the table before a sweep removes it.
    pub fn longest_idle_ns(&self) -> u64 {
        self.config
            .tcp_idle_secs
            .max(self.config.udp_idle_secs)
            .saturating_mul(1_000_000_000)
            .max(CLOSED_LINGER_NS)
    }

    /// Whether a sweep at `now_ns` removes `e`: it has been idle for longer than its
    /// kind of flow may be.
    pub fn expires_before(&self, e: &FlowEntry, now_ns: u64) -> bool {
        let idle_secs = if e.finished() {
            return now_ns > e.last_ns.saturating_add(CLOSED_LINGER_NS);
        } else if e.protocol == 6 {
            self.config.tcp_idle_secs
        } else {
            self.config.udp_idle_secs
        };
        now_ns
            > e.last_ns
                .saturating_add(idle_secs.saturating_mul(1_000_000_000))
    }

    /// The flow bound the table was made with.
    pub fn max_flows(&self) -> usize {
        self.config.max_flows.max(1)
    }

    /// Inserts a new flow; when the table is full, the oldest flow leaves first and is
    /// passed to `departed`.
    pub fn insert(
        &mut self,
        key: FlowKey,
        mut entry: FlowEntry,
        departed: &mut impl FnMut(FlowEntry, Departure),
    ) -> &mut FlowEntry {
        while self.map.len() >= self.config.max_flows.max(1) {
            let Some((old, seq)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&old).is_some_and(|e| e.seq == seq)
                && let Some(e) = self.remove(&old)
            {
                self.evicted += 1;
                departed(e, Departure::Evicted);
            }
        }
        if self.journal.is_some() {
            self.save(&key);
        }
        entry.seq = self.next_seq;
        self.next_seq += 1;
        self.created += 1;
        self.order.push_back((key, entry.seq));
        self.compact_order();
        self.peak = self.peak.max(self.map.len() + 1);
        self.map.entry(key).insert_entry(entry).into_mut()
    }

    pub fn remove(&mut self, key: &FlowKey) -> Option<FlowEntry> {
        if self.journal.is_some() {
            self.save(key);
        }
        self.map.remove(key)
    }

    /// The queue holds stale keys of flows that already left; rebuild it when they
    /// dominate so it stays proportional to the table.
    fn compact_order(&mut self) {
        if self.order.len() > 2 * self.map.len() + 1024 {
            let map = &self.map;
            self.order
                .retain(|(k, seq)| map.get(k).is_some_and(|e| e.seq == *seq));
        }
    }

    /// True when [`FlowTable::sweep`] would do anything at `now_ns`: callers on the
    /// per-packet path check this first and skip the call.
    ///
    /// Sweeps fall on the first packet of each new second of capture time, a grid
    /// rather than a second after the last sweep: where the sweeps of a stretch of
    /// the capture fall then depends on that stretch alone (after its first second),
    /// not on where the sweeps before it fell, which is what lets two workers scan
    /// the two halves of a file and agree afterwards on what one would have done
    /// (see `pipeline::split`).
    #[inline]
    pub fn sweep_due(&self, now_ns: u64) -> bool {
        now_ns >= self.next_sweep_ns
    }

    /// Expires idle flows, at most once per second of capture time.
    pub fn sweep(&mut self, now_ns: u64, departed: &mut impl FnMut(FlowEntry, Departure)) {
        if !self.sweep_due(now_ns) {
            return;
        }
        self.last_sweep_ns = now_ns;
        // The start of the next second, computed once here rather than on every packet.
        self.next_sweep_ns = (now_ns / SWEEP_NS)
            .saturating_add(1)
            .saturating_mul(SWEEP_NS);
        let expired: Vec<FlowKey> = self
            .map
            .iter()
            .filter(|(_, e)| self.expires_before(e, now_ns))
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            if let Some(e) = self.remove(&key) {
                self.timed_out += 1;
                departed(e, Departure::IdleTimeout);
            }
        }
    }

    /// Empties the table in creation order (end of input).
    pub fn drain(&mut self, departed: &mut impl FnMut(FlowEntry, Departure)) {
        while let Some((key, seq)) = self.order.pop_front() {
            if self.map.get(&key).is_some_and(|e| e.seq == seq)
                && let Some(e) = self.remove(&key)
            {
                departed(e, Departure::EndOfInput);
            }
        }
        let rest: Vec<FlowKey> = self.map.keys().copied().collect();
        for key in rest {
            if let Some(e) = self.remove(&key) {
                departed(e, Departure::EndOfInput);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn both_directions_share_a_key() {
        let a = FlowKey::new(ip("10.0.0.1"), 5000, ip("10.0.0.2"), 443, 6);
        let b = FlowKey::new(ip("10.0.0.2"), 443, ip("10.0.0.1"), 5000, 6);
        assert_eq!(a, b);
        assert_eq!(a.shard_hash(), b.shard_hash());
        assert_ne!(
            a,
            FlowKey::new(ip("10.0.0.1"), 5000, ip("10.0.0.2"), 443, 17)
        );
    }

    #[test]
    fn oldest_flows_are_evicted_first_and_idle_ones_time_out() {
        let mut table = FlowTable::new(FlowTableConfig {
            max_flows: 2,
            tcp_idle_secs: 10,
            udp_idle_secs: 10,
        });
        let mut gone = Vec::new();
        let mut departed = |e: FlowEntry, why| gone.push((e.client_port, why));
        for port in 1..=3u16 {
            let key = FlowKey::new(ip("10.0.0.1"), port, ip("10.0.0.2"), 80, 6);
            let entry = FlowEntry::new((ip("10.0.0.1"), port), (ip("10.0.0.2"), 80), 6, 0);
            table.insert(key, entry, &mut departed);
        }
        table.sweep(5_000_000_000, &mut departed);
        table.sweep(20_000_000_000, &mut departed);
        assert_eq!(gone[0], (1, Departure::Evicted));
        let mut rest = gone[1..].to_vec();
        rest.sort_by_key(|g| g.0);
        assert_eq!(
            rest,
            vec![(2, Departure::IdleTimeout), (3, Departure::IdleTimeout)]
        );
        assert_eq!((table.evicted, table.timed_out, table.len()), (1, 2, 0));
    }

    /// Every way a table changes, taken back: the table is then the one it was, down
    /// to which flow is evicted next.
    #[test]
    fn a_rolled_back_change_leaves_the_table_as_it_was() {
        let config = FlowTableConfig {
            max_flows: 3,
            tcp_idle_secs: 10,
            udp_idle_secs: 10,
        };
        let key = |port| FlowKey::new(ip("10.0.0.1"), port, ip("10.0.0.2"), 80, 6);
        let entry = |port, ns| FlowEntry::new((ip("10.0.0.1"), port), (ip("10.0.0.2"), 80), 6, ns);
        let mut table = FlowTable::new(config);
        let mut gone = Vec::new();
        for port in 1..=2u16 {
            table.insert(key(port), entry(port, 0), &mut |e, why| {
                gone.push((e.client_port, why))
            });
        }
        table.get_mut(&key(1)).unwrap().packets = 7;
        let before = table.clone();
        let contents = |t: &FlowTable| {
            let mut v: Vec<_> = t
                .map
                .values()
                .map(|e| (e.client_port, e.packets, e.last_ns, e.reset, e.client_fin))
                .collect();
            v.sort();
            (
                v,
                t.created,
                t.evicted,
                t.timed_out,
                t.peak,
                t.last_sweep_ns,
            )
        };

        table.begin_journal();
        // Counts changed, then the whole entry, or the entry removed.
        for port in 1..=2u16 {
            let e = table.get_mut_counts(&key(port)).unwrap();
            (e.packets, e.last_ns, e.reset, e.client_fin) = (50, 9, true, true);
        }
        table.get_mut(&key(1)).unwrap().packets = 99;
        table.remove(&key(2));
        for port in 3..=6u16 {
            table.insert(key(port), entry(port, 1), &mut |e, why| {
                gone.push((e.client_port, why))
            });
        }
        table.sweep(30_000_000_000, &mut |e, why| {
            gone.push((e.client_port, why))
        });
        assert!(table.is_empty() && table.evicted > 0 && table.timed_out > 0);
        table.roll_back();
        assert_eq!(contents(&table), contents(&before));

        // Both evict in the same order from here on.
        let mut a = Vec::new();
        let mut b = Vec::new();
        let mut before = before;
        for port in 10..=12u16 {
            table.insert(key(port), entry(port, 2), &mut |e, _| a.push(e.client_port));
            before.insert(key(port), entry(port, 2), &mut |e, _| b.push(e.client_port));
        }
        assert_eq!(a, b);
        assert_eq!(a, vec![1, 2]);

        // A kept change stays.
        table.begin_journal();
        table.get_mut(&key(12)).unwrap().packets = 5;
        table.commit();
        table.roll_back();
        assert_eq!(table.get(&key(12)).unwrap().packets, 5);

        // Counts alone, changed twice, come back as they were.
        table.begin_journal();
        for packets in [1000, 2000] {
            let e = table.get_mut_counts(&key(12)).unwrap();
            (e.packets, e.client_fin) = (packets, true);
        }
        table.roll_back();
        let e = table.get(&key(12)).unwrap();
        assert_eq!((e.packets, e.client_fin), (5, false));
    }
}
