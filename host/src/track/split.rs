//! What a tracker keeps when it scans the second half of a file before the first half
//! is done ([`Speculation`]), and what the first half's tracker checks when it takes
//! the second half over ([`Stitching`]).
//!
//! The second half starts with an empty tracker; one worker would have started it
//! with the first half's flows and DNS answers. The two differ only where the second
//! half's work touches that state, so the speculating tracker notes every such place:
//!
//! - a flow it creates while a flow of the first half could still be alive (within
//!   the longest idle time of its first packet) may be that flow going on. Those are
//!   *window flows*: their packets are logged (what the tracker reads of each, without
//!   the payload; after the eighth, those that only add to counters are added up per
//!   sweep) and their records are held. The stitch takes over the ones the first half
//!   still had: from counts alone where nothing but counts can differ, by replaying
//!   the log through the first half's tracker otherwise. The second half's records of
//!   them are dropped;
//! - a flow record whose DNS lookup found nothing may have found an answer of the
//!   first half: it is held and looked up again in the first half's answers;
//! - the idle sweeps it ran (where, and at what time), which also run on the first
//!   half's flows in the replay.
//!
//! Everything else the second half does is what one worker would have done.

use super::dns::{DnsTracker, Resolution};
use super::flows::{FlowEntry, FlowKey, FlowTable};
use crate::subject::FlowSubject;
use linkward_decode::{Packet, TcpFlags, Transport};
use rustc_hash::FxHashMap;
use std::net::IpAddr;

/// Marks a flow entry that is not a window flow.
pub(crate) const NOT_IN_WINDOW: u32 = u32::MAX;

/// Log entries (packets of window flows) kept at most, 48 bytes each; a second half
/// that needs more gives up (its work is then redone by the first half's worker).
const MAX_LOGGED_PACKETS: usize = 1 << 21;

/// Whether a flow entry counts the quiet packets of its window flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Quiet {
    /// Not the first entry of a window flow: each of its packets is logged.
    Never,
    /// The first entry of a window flow, with no quiet packet since it was logged.
    NonePending,
    /// Quiet packets counted since its window flow was last logged.
    Pending,
}

/// What the replay of a window flow goes through, in the second half's order.
#[derive(Clone, Copy, Debug)]
pub enum Logged {
    Packet(LoggedPacket),
    /// Packets that changed nothing but the flow's counters, added up (see
    /// [`Speculation::log_packet`]).
    Quiet(QuietPackets),
}

/// Packets of a window flow that carried no SYN, FIN or RST and came after its eighth
/// packet in the second half, with no sweep and no other logged packet of the flow
/// between them. Once a flow is evaluated (which eight packets ensure) such packets
/// only add to its counters, so they are logged as one.
#[derive(Clone, Copy, Debug)]
pub struct QuietPackets {
    /// Where they were logged, as packets the second half had tracked: at the next
    /// sweep, the flow's next logged packet or its entry's departure, whichever came
    /// first.
    pub position: u64,
    pub flow: u32,
    pub packets: u64,
    pub bytes: u64,
    pub last_ns: u64,
}

impl Logged {
    pub fn position(&self) -> u64 {
        match self {
            Logged::Packet(p) => p.position,
            Logged::Quiet(q) => q.position,
        }
    }

    pub fn flow(&self) -> u32 {
        match self {
            Logged::Packet(p) => p.flow,
            Logged::Quiet(q) => q.flow,
        }
    }
}

/// One packet of a window flow: what the tracker reads of it, except the payload,
/// which the replay reads again from the file in the rare case it looks at it.
#[derive(Clone, Copy, Debug)]
pub struct LoggedPacket {
    /// Packets the second half had tracked before this one.
    pub position: u64,
    /// The offset of its record in the file.
    pub offset: u64,
    pub ts_ns: u64,
    pub ip_len: u32,
    /// Its window flow.
    pub flow: u32,
    /// TCP flags (0 for other protocols).
    pub tcp_flags: u8,
    /// What the decoder made of its transport layer (see [`LoggedPacket::TCP`]).
    pub transport: u8,
    /// Sent by the end that sent the flow's first packet in the second half.
    pub forward: bool,
    pub has_payload: bool,
}

/// Per window flow, its ends and what its packets added to the tracker's counters, to
/// be taken back if the flow turns out to be one the first half had.
#[derive(Clone, Debug)]
pub struct WindowFlow {
    pub key: FlowKey,
    /// The sender of its first packet in the second half, and the receiver.
    pub first_src: (IpAddr, u16),
    pub first_dst: (IpAddr, u16),
    pub protocol: u8,
    pub created: u64,
    pub timed_out: u64,
    pub sni_seen: u64,
    pub http_hosts_seen: u64,
    /// Its entry as it last left the table (at the end of the input, at the latest).
    pub departed: Option<FlowEntry>,
    /// Its entry's packets and bytes before its quiet packets not logged yet.
    pub quiet_from: (u64, u64),
}

/// A flow record the second half could not settle alone.
#[derive(Clone, Debug)]
pub struct HeldRecord {
    /// The window flow it belongs to, or [`NOT_IN_WINDOW`].
    pub flow: u32,
    /// Its DNS lookup found nothing in the second half's answers.
    pub needs_dns: bool,
    pub subject: FlowSubject,
}

/// Where a second half's DNS answers for one (client, address) pair were recorded.
#[derive(Clone, Copy, Debug)]
pub struct AnswerSpan {
    pub first: u64,
    pub last: u64,
}

/// The notes of a tracker that scans a second half.
#[derive(Debug, Default)]
pub struct Speculation {
    /// Packets tracked so far.
    pub position: u64,
    /// The file offset of the record being tracked.
    pub offset: u64,
    /// The capture time of the first packet tracked.
    pub first_ns: Option<u64>,
    /// The sweep at which the window closed (its time), if it has.
    pub window_closed_ns: Option<u64>,
    pub window_ids: FxHashMap<FlowKey, u32>,
    pub window_flows: Vec<WindowFlow>,
    pub logged: Vec<Logged>,
    /// Window flows with quiet packets not logged yet.
    pub quiet_flows: Vec<u32>,
    /// (position, time) of every sweep run; a sweep runs after its packet.
    pub sweeps: Vec<(u64, u64)>,
    pub held: Vec<HeldRecord>,
    pub answers: FxHashMap<(IpAddr, IpAddr), AnswerSpan>,
    /// Why the second half cannot be used, if it cannot.
    pub gave_up: Option<&'static str>,
    /// Held records, and window flows, allowed at most.
    pub max_held: usize,
    /// (client, address) pairs of DNS answers noted at most.
    pub max_answers: usize,
}

impl Speculation {
    pub fn new(max_held: usize, max_answers: usize) -> Speculation {
        Speculation {
            max_held,
            max_answers,
            ..Speculation::default()
        }
    }

    /// The window flow id for a flow about to be created, if it is one: its key was a
    /// window flow before, or the window is still open.
    pub fn window_id_for(&mut self, key: FlowKey, packet: &Packet<'_>) -> u32 {
        if let Some(&id) = self.window_ids.get(&key) {
            return id;
        }
        if self.window_closed_ns.is_some() {
            return NOT_IN_WINDOW;
        }
        let id = match u32::try_from(self.window_flows.len()) {
            Ok(id) if (id as usize) < self.max_held => id,
            _ => {
                self.give_up("too many flows may span the cut");
                return NOT_IN_WINDOW;
            }
        };
        self.window_ids.insert(key, id);
        let (src_port, dst_port) = packet.transport.ports().unwrap_or((0, 0));
        self.window_flows.push(WindowFlow {
            key,
            first_src: (packet.src, src_port),
            first_dst: (packet.dst, dst_port),
            protocol: packet.protocol,
            created: 0,
            timed_out: 0,
            sni_seen: 0,
            http_hosts_seen: 0,
            departed: None,
            quiet_from: (0, 0),
        });
        id
    }

    pub fn window_flow(&mut self, id: u32) -> Option<&mut WindowFlow> {
        self.window_flows.get_mut(id as usize)
    }

    /// Logs a packet of `entry`'s window flow, before the packet is added to it.
    ///
    /// A quiet packet is only counted, in the entry the tracker already holds: this
    /// runs for every packet of every window flow, and a second look-up of the window
    /// flow per packet measurably slows the second half down.
    #[inline]
    pub fn log_packet(&mut self, entry: &mut FlowEntry, packet: &Packet<'_>, ts_ns: u64) {
        let closing = matches!(packet.transport, Transport::Tcp { flags, .. }
            if flags.syn() || flags.contains(TcpFlags::FIN) || flags.contains(TcpFlags::RST));
        // Only in the flow's first entry: a replay checks that its own entry is there
        // and evaluated, which it is unless the two halves' entries parted ways.
        if !closing
            && entry.quiet != Quiet::Never
            && entry.packets >= super::PACKETS_BEFORE_EVALUATION
        {
            if entry.quiet == Quiet::NonePending {
                self.start_quiet(entry);
            }
            return;
        }
        self.log_quiet(entry);
        let Some(w) = self.window_flows.get(entry.window as usize) else {
            return;
        };
        let src_port = packet.transport.ports().map_or(0, |(src, _)| src);
        let (transport, tcp_flags, has_payload) = match packet.transport {
            Transport::Tcp { flags, payload, .. } => {
                (LoggedPacket::TCP, flags.bits(), !payload.is_empty())
            }
            Transport::Udp { payload, .. } => (LoggedPacket::UDP, 0, !payload.is_empty()),
            Transport::Other => (LoggedPacket::OTHER, 0, false),
        };
        let logged = LoggedPacket {
            position: self.position,
            offset: self.offset,
            ts_ns,
            ip_len: u32::try_from(packet.ip_len).unwrap_or(u32::MAX),
            flow: entry.window,
            tcp_flags,
            transport,
            forward: (packet.src, src_port) == w.first_src,
            has_payload,
        };
        self.push(Logged::Packet(logged));
    }

    /// The first quiet packet of `entry` since its window flow was last logged.
    #[cold]
    fn start_quiet(&mut self, entry: &mut FlowEntry) {
        if let Some(w) = self.window_flows.get_mut(entry.window as usize) {
            w.quiet_from = (entry.packets, entry.bytes);
            entry.quiet = Quiet::Pending;
            self.quiet_flows.push(entry.window);
        }
    }

    /// Logs the quiet packets counted in `entry`, if any, as one.
    pub fn log_quiet(&mut self, entry: &mut FlowEntry) {
        if entry.quiet != Quiet::Pending {
            return;
        }
        entry.quiet = Quiet::NonePending;
        let Some(w) = self.window_flows.get(entry.window as usize) else {
            return;
        };
        let quiet = QuietPackets {
            position: self.position,
            flow: entry.window,
            packets: entry.packets.wrapping_sub(w.quiet_from.0),
            bytes: entry.bytes.wrapping_sub(w.quiet_from.1),
            // The entry's latest time: the latest of its quiet packets and of its
            // packets logged before them. The replay has already seen those, so the
            // latest time it keeps comes out as if it had seen each quiet packet.
            last_ns: entry.last_ns,
        };
        self.push(Logged::Quiet(quiet));
    }

    fn push(&mut self, logged: Logged) {
        if self.logged.len() >= MAX_LOGGED_PACKETS {
            self.give_up("too many packets of flows that may span the cut");
        } else {
            self.logged.push(logged);
        }
    }

    /// Logs the quiet packets of every window flow not logged yet: before a sweep, or
    /// at the end of the input.
    pub fn log_quiet_packets(&mut self, flows: &mut FlowTable) {
        for flow in std::mem::take(&mut self.quiet_flows) {
            let entry = self
                .window_flows
                .get(flow as usize)
                .and_then(|w| flows.get_mut(&w.key));
            if let Some(entry) = entry {
                self.log_quiet(entry);
            }
        }
    }

    /// Notes a sweep at `now_ns`; the window closes at the first sweep past the
    /// longest idle time after the first packet, when no flow of the first half can
    /// be left (the stitch checks the first half's last packet time against it).
    pub fn note_sweep(&mut self, now_ns: u64, longest_idle_ns: u64) {
        self.sweeps.push((self.position, now_ns));
        if self.window_closed_ns.is_none()
            && let Some(first) = self.first_ns
            && now_ns > first.saturating_add(longest_idle_ns)
        {
            self.window_closed_ns = Some(now_ns);
        }
    }

    pub fn note_answer(&mut self, client: IpAddr, addresses: &[IpAddr]) {
        if self.answers.len() >= self.max_answers {
            self.give_up("too many DNS answers for the stitch to check");
            return;
        }
        let at = self.position;
        for addr in addresses {
            self.answers
                .entry((client, *addr))
                .and_modify(|span| span.last = at)
                .or_insert(AnswerSpan {
                    first: at,
                    last: at,
                });
        }
    }

    /// Holds `subject` of `entry` (in window flow `flow`, or [`NOT_IN_WINDOW`]) when
    /// it cannot be settled now; gives it back otherwise.
    pub fn hold(
        &mut self,
        flow: u32,
        needs_dns: bool,
        subject: FlowSubject,
    ) -> Option<FlowSubject> {
        if flow == NOT_IN_WINDOW && !needs_dns {
            return Some(subject);
        }
        if self.held.len() >= self.max_held {
            self.give_up("too many flow records wait for the first half");
            return Some(subject);
        }
        self.held.push(HeldRecord {
            flow,
            needs_dns,
            subject,
        });
        None
    }

    pub fn give_up(&mut self, why: &'static str) {
        self.gave_up.get_or_insert(why);
    }
}

/// Whether window flow `flow` is marked in `flags` (one per window flow).
fn marked(flags: &[bool], flow: u32) -> bool {
    flags.get(flow as usize).copied().unwrap_or(false)
}

impl LoggedPacket {
    const OTHER: u8 = 0;
    const TCP: u8 = 1;
    const UDP: u8 = 2;
}

impl WindowFlow {
    /// A logged packet of this flow, without its payload.
    fn packet(&self, logged: &LoggedPacket) -> Packet<'static> {
        let ((src, src_port), (dst, dst_port)) = if logged.forward {
            (self.first_src, self.first_dst)
        } else {
            (self.first_dst, self.first_src)
        };
        let transport = match logged.transport {
            LoggedPacket::TCP => Transport::Tcp {
                src_port,
                dst_port,
                seq: 0,
                flags: TcpFlags::from_bits(logged.tcp_flags),
                payload: &[],
            },
            LoggedPacket::UDP => Transport::Udp {
                src_port,
                dst_port,
                payload: &[],
            },
            _ => Transport::Other,
        };
        Packet {
            src,
            dst,
            protocol: self.protocol,
            vlan: None,
            ip_len: logged.ip_len as usize,
            transport,
        }
    }
}

/// What the first half's tracker needs while it replays window flows of the second.
pub struct Stitching {
    /// The second half's DNS answers and where they were recorded.
    pub later_dns: DnsTracker,
    pub later_answers: FxHashMap<(IpAddr, IpAddr), AnswerSpan>,
    /// The second half's position being replayed.
    pub position: u64,
    /// Why the replay cannot be trusted, if it cannot.
    pub conflict: Option<&'static str>,
}

impl Stitching {
    /// The answer one worker would have found for `e` at the replay's position: the
    /// first half's, unless the second half recorded one for the pair by then.
    pub fn resolve<'a>(&'a mut self, dns: &'a DnsTracker, e: &FlowEntry) -> Option<&'a Resolution> {
        match self.later_answers.get(&(e.client, e.server)) {
            Some(span) if span.first <= self.position => {
                if span.last > self.position {
                    // Which of the second half's answers was current then is not known.
                    self.conflict
                        .get_or_insert("a DNS answer changed while a replayed flow was open");
                }
                self.later_dns.lookup(e.client, e.server, e.last_ns)
            }
            _ => dns.lookup(e.client, e.server, e.last_ns),
        }
    }
}

impl super::Tracker {
    /// Makes this (new) tracker one that scans a second half; its notes hold at most
    /// as many flows and flow records as its flow table, and as many answers as its
    /// DNS table.
    pub(crate) fn speculate(&mut self) {
        let notes = Speculation::new(self.flows.max_flows(), self.dns.max_entries());
        self.mode = super::Mode::Speculating(Box::new(notes));
    }

    /// The file offset of the record whose packet is tracked next (second halves).
    #[inline]
    pub(crate) fn note_offset(&mut self, offset: u64) {
        if let super::Mode::Speculating(s) = &mut self.mode {
            s.offset = offset;
        }
    }

    /// Why this second half's work cannot be used, if it cannot.
    pub(crate) fn gave_up(&self) -> Option<&'static str> {
        match &self.mode {
            super::Mode::Speculating(s) => s.gave_up,
            _ => None,
        }
    }

    /// Takes over `later`, the tracker that scanned (and finished) the rest of the
    /// file while this one scanned the part before it, so that this tracker ends where
    /// one tracker scanning the whole file would have, and its ready records are the
    /// ones that tracker would have made after the cut but that `later` did not
    /// report. `reread` reads the packet of a record at a file offset again, with its
    /// capture time.
    ///
    /// Fails, changing nothing, where `later`'s notes cannot prove that: the caller
    /// then scans the rest of the file with this tracker instead.
    pub(crate) fn stitch<'f>(
        &mut self,
        later: super::Tracker,
        input: u32,
        mut reread: impl FnMut(u64) -> Option<(linkward_decode::Packet<'f>, u64)>,
    ) -> Result<(), &'static str> {
        if !matches!(self.mode, super::Mode::Alone) {
            return Err("the first half is not a tracker of its own");
        }
        let super::Mode::Speculating(mut notes) = later.mode else {
            return Err("the second half did not keep notes");
        };
        if let Some(why) = notes.gave_up {
            return Err(why);
        }
        // Sweeps fall on a grid of seconds: the second half's fall where one tracker's
        // would unless the first half already swept in a later second than the second
        // half's first packet (time going backwards across the cut).
        if let Some(first) = notes.first_ns
            && self.flows.last_sweep_ns() / 1_000_000_000 > first / 1_000_000_000
        {
            return Err("the first half ends later in time than the second begins");
        }
        if let Some(closed) = notes.window_closed_ns
            && closed
                <= self
                    .flows
                    .latest_packet_ns()
                    .saturating_add(self.flows.longest_idle_ns())
        {
            return Err("a flow of the first half outlives the second half's window");
        }
        if later.flows.evicted > 0 || self.flows.len() + later.flows.peak() > self.flows.max_flows()
        {
            return Err("the two halves' flows together exceed the flow table");
        }
        if !self.dns.can_take(&later.dns) {
            return Err("the two halves' DNS answers together exceed the DNS table");
        }

        // The replay runs on this tracker itself, its flow table journaled: a replay
        // that fails puts back what it changed, leaving the tracker as it was at the cut
        // for the caller's rescan, without a copy of the whole table made up front
        // (1.0-1.5 ms of a two-worker scan of the benchmark capture). The DNS answers
        // stay as they are during a replay; the records it makes go after those this
        // tracker already had ready.
        let ready_before = std::mem::take(&mut self.ready);
        let names_seen_before = (self.sni_seen, self.http_hosts_seen);
        self.flows.begin_journal();
        self.mode = super::Mode::Stitching(Box::new(Stitching {
            later_dns: later.dns,
            later_answers: std::mem::take(&mut notes.answers),
            position: 0,
            conflict: None,
        }));
        let replayed = self.replay_window_flows(&notes, input, &mut reread);
        let stitched = match std::mem::replace(&mut self.mode, super::Mode::Alone) {
            super::Mode::Stitching(stitching) => match stitching.conflict {
                Some(why) => Err(why),
                None => replayed.map(|spanning| (spanning, stitching)),
            },
            _ => Err("the replay lost its notes"),
        };
        let (spanning, stitching) = match stitched {
            Ok(stitched) => stitched,
            Err(why) => {
                self.flows.roll_back();
                self.ready = ready_before;
                (self.sni_seen, self.http_hosts_seen) = names_seen_before;
                return Err(why);
            }
        };
        self.flows.commit();

        // The replay stands: take over the second half's counts and records, less
        // those of the flows it replayed, after the records this tracker had ready.
        let mut ready = ready_before;
        ready.append(&mut self.ready);
        for held in notes.held {
            if held.flow != NOT_IN_WINDOW && marked(&spanning, held.flow) {
                continue;
            }
            let mut subject = held.subject;
            if held.needs_dns
                && let Some(r) = self
                    .dns
                    .lookup(subject.src, subject.dst, subject.last_seen_ns)
            {
                subject.resolved_name = Some(r.name.clone());
                subject.cname_chain = r.chain.clone();
            }
            ready.push(crate::subject::Subject::Flow(subject));
        }
        let (mut created, mut timed_out, mut sni, mut hosts) = (
            later.flows.created,
            later.flows.timed_out,
            later.sni_seen,
            later.http_hosts_seen,
        );
        for (w, _) in notes
            .window_flows
            .iter()
            .zip(&spanning)
            .filter(|(_, spans)| **spans)
        {
            created -= w.created;
            timed_out -= w.timed_out;
            sni -= w.sni_seen;
            hosts -= w.http_hosts_seen;
        }
        self.flows.created += created;
        self.flows.timed_out += timed_out;
        self.sni_seen += sni;
        self.http_hosts_seen += hosts;
        self.dns_answers += later.dns_answers;
        self.dns_malformed += later.dns_malformed;
        self.dns.take_later(stitching.later_dns);
        self.ready = ready;
        Ok(())
    }

    /// Replays the window flows the first half still had at the cut (one tracker
    /// would have gone on with them) on this tracker, and runs the second half's
    /// sweeps where they fell. Returns which window flows span the cut.
    fn replay_window_flows<'f>(
        &mut self,
        notes: &Speculation,
        input: u32,
        reread: &mut impl FnMut(u64) -> Option<(linkward_decode::Packet<'f>, u64)>,
    ) -> Result<Vec<bool>, &'static str> {
        let spanning: Vec<bool> = notes
            .window_flows
            .iter()
            .map(|w| self.flows.contains(&w.key))
            .collect();
        let evicted_before = self.flows.evicted;
        let merged = self.merge_quiet_flows(notes, &spanning);
        let mut sweeps = notes.sweeps.iter().peekable();
        let replayed = |flow: u32| marked(&spanning, flow) && !marked(&merged, flow);
        for logged in notes.logged.iter().filter(|l| replayed(l.flow())) {
            while let Some(&&(at, now_ns)) = sweeps.peek() {
                if at >= logged.position() {
                    break;
                }
                self.sweep_at(at, now_ns, input);
                sweeps.next();
            }
            let Some(flow) = notes.window_flows.get(logged.flow() as usize) else {
                return Err("a logged packet names no flow");
            };
            let logged = match logged {
                Logged::Packet(p) => p,
                Logged::Quiet(quiet) => {
                    match self.flows.get_mut(&flow.key) {
                        Some(e) if e.evaluated => {
                            e.packets += quiet.packets;
                            e.bytes += quiet.bytes;
                            e.last_ns = e.last_ns.max(quiet.last_ns);
                        }
                        _ => return Err("quiet packets reached a flow that was not evaluated"),
                    }
                    continue;
                }
            };
            let mut packet = flow.packet(logged);
            if self.may_read_payload(flow.key, &packet, logged.has_payload) {
                match reread(logged.offset) {
                    Some((again, _)) => packet = again,
                    None => return Err("a logged packet could not be read again"),
                }
            }
            self.replay_at(logged.position);
            self.on_packet(&packet, logged.ts_ns, input);
        }
        for &(at, now_ns) in sweeps {
            self.sweep_at(at, now_ns, input);
        }
        if self.flows.evicted != evicted_before {
            return Err("the replay evicted a flow");
        }
        Ok(spanning)
    }

    /// Takes over, without replaying their packets, the spanning flows whose second
    /// half changes nothing but counters: the first half had evaluated them and seen
    /// no FIN or RST, neither half's entry would have timed out before the second
    /// half's first packet of them, and the second half kept one entry for each from
    /// its first packet to the end. One tracker would have added those packets to the
    /// first half's entry, so the entry takes the second half's counts and closing
    /// flags. Returns which window flows it took over.
    fn merge_quiet_flows(&mut self, notes: &Speculation, spanning: &[bool]) -> Vec<bool> {
        let mut first_position = vec![u64::MAX; notes.window_flows.len()];
        for logged in notes.logged.iter().rev() {
            if let Some(p) = first_position.get_mut(logged.flow() as usize) {
                *p = logged.position();
            }
        }
        // The latest sweep time up to each sweep, to find the latest before a position.
        let mut latest = 0;
        let latest_sweep: Vec<(u64, u64)> = notes
            .sweeps
            .iter()
            .map(|&(at, now_ns)| {
                latest = latest.max(now_ns);
                (at, latest)
            })
            .collect();
        let mut merged = vec![false; notes.window_flows.len()];
        for (i, w) in notes.window_flows.iter().enumerate() {
            let Some(later) = w.departed.as_ref() else {
                continue;
            };
            if !spanning.get(i).copied().unwrap_or(false) || w.created != 1 || w.timed_out != 0 {
                continue;
            }
            let before = latest_sweep.partition_point(|&(at, _)| at < first_position[i]);
            let swept_ns = before
                .checked_sub(1)
                .and_then(|j| latest_sweep.get(j))
                .map(|&(_, t)| t);
            let Some(e) = self.flows.get(&w.key) else {
                continue;
            };
            let quiet = e.evaluated
                && !e.client_fin
                && !e.server_fin
                && !e.reset
                && e.last_ns <= later.first_ns
                && swept_ns.is_none_or(|t| !self.flows.expires_before(e, t));
            if !quiet {
                continue;
            }
            let Some(e) = self.flows.get_mut_counts(&w.key) else {
                continue;
            };
            let same_way = (later.client, later.client_port) == (e.client, e.client_port);
            e.packets += later.packets;
            e.bytes += later.bytes;
            e.last_ns = e.last_ns.max(later.last_ns);
            e.reset = later.reset;
            (e.client_fin, e.server_fin) = if same_way {
                (later.client_fin, later.server_fin)
            } else {
                (later.server_fin, later.client_fin)
            };
            merged[i] = true;
        }
        merged
    }

    /// Whether tracking `packet` (a replayed TCP packet, payload left out) now could
    /// look at its payload. `Tracker::track` reads a payload only for a flow not
    /// evaluated yet; an evaluated flow that is not closed goes on without it, and
    /// anything else is read again from the file, which is always right.
    fn may_read_payload(&self, key: FlowKey, packet: &Packet<'_>, has_payload: bool) -> bool {
        has_payload
            && matches!(packet.transport, Transport::Tcp { .. })
            && self
                .flows
                .get(&key)
                .is_none_or(|e| !e.evaluated || e.finished())
    }

    /// Where in the second half the replay is: what its DNS lookups may see.
    fn replay_at(&mut self, position: u64) {
        if let super::Mode::Stitching(s) = &mut self.mode {
            s.position = position;
        }
    }

    /// A sweep the second half ran after its packet `at`, run again in a replay.
    fn sweep_at(&mut self, at: u64, now_ns: u64, input: u32) {
        self.replay_at(at);
        self.tick(now_ns, input);
    }
}
