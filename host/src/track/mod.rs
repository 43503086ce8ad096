//! Flow and DNS state: turns decoded packets into the records the evaluator sees.
//!
//! A flow is evaluated once, when its identity is known: at the client's first payload
//! (TLS SNI or HTTP Host, waiting for the rest of a ClientHello that spans segments), at
//! once for UDP and other protocols, after a few packets without client payload, or when
//! it ends. Packets of a flow already evaluated only update counters. DNS responses
//! update the tracker and are evaluated themselves.

pub mod dns;
pub mod flows;
pub(crate) mod split;

use crate::subject::{DnsSubject, FlowSubject, Subject};
use dns::{DnsTracker, Resolution};
use flows::{Departure, FlowEntry, FlowKey, FlowTable, FlowTableConfig};
use linkward_decode::dns as dns_wire;
use linkward_decode::tls::{SniResult, client_hello_sni};
use linkward_decode::{Packet, Transport};
use split::{NOT_IN_WINDOW, Speculation, Stitching};
use std::net::IpAddr;
use std::sync::Arc;

/// Largest ClientHello the tracker buffers across segments.
const MAX_HELLO: usize = 16 * 1024;
/// TCP packets after which a flow without client payload is evaluated anyway.
const PACKETS_BEFORE_EVALUATION: u64 = 8;

#[derive(Clone, Debug)]
pub struct TrackerConfig {
    pub flows: FlowTableConfig,
    /// `(index, count)`: this tracker owns the flows whose direction-free hash modulo
    /// `count` is `index` (several workers over one input).
    pub shard: Option<(u64, u64)>,
    pub dns_max_entries: usize,
    pub dns_grace_secs: u64,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            flows: FlowTableConfig::default(),
            shard: None,
            dns_max_entries: 1 << 20,
            dns_grace_secs: 60,
        }
    }
}

/// Counters of the tracking stage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackStats {
    pub flows: u64,
    pub flows_evicted: u64,
    pub flows_timed_out: u64,
    pub dns_answers: u64,
    pub dns_malformed: u64,
    pub sni_seen: u64,
    pub http_hosts_seen: u64,
}

pub struct Tracker {
    mode: Mode,
    shard: Option<(u64, u64)>,
    flows: FlowTable,
    dns: DnsTracker,
    /// Records ready for evaluation, in the order they became ready.
    ready: Vec<Subject>,
    dns_answers: u64,
    dns_malformed: u64,
    sni_seen: u64,
    http_hosts_seen: u64,
}

/// Whether the tracker works alone, or on one half of a file split by time (see
/// [`split`]).
enum Mode {
    Alone,
    /// Scans a second half before the first is done.
    Speculating(Box<Speculation>),
    /// Replays a second half's window flows on the first half's state.
    Stitching(Box<Stitching>),
}

impl Tracker {
    pub fn new(config: TrackerConfig) -> Tracker {
        Tracker {
            mode: Mode::Alone,
            shard: config
                .shard
                .filter(|&(index, count)| count > 1 && index < count),
            flows: FlowTable::new(config.flows),
            dns: DnsTracker::new(config.dns_max_entries, config.dns_grace_secs),
            ready: Vec::new(),
            dns_answers: 0,
            dns_malformed: 0,
            sni_seen: 0,
            http_hosts_seen: 0,
        }
    }

    pub fn stats(&self) -> TrackStats {
        TrackStats {
            flows: self.flows.created,
            flows_evicted: self.flows.evicted,
            flows_timed_out: self.flows.timed_out,
            dns_answers: self.dns_answers,
            dns_malformed: self.dns_malformed,
            sni_seen: self.sni_seen,
            http_hosts_seen: self.http_hosts_seen,
        }
    }

    /// Takes the records that became ready since the last call.
    pub fn drain_ready(&mut self) -> std::vec::Drain<'_, Subject> {
        self.ready.drain(..)
    }

    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Processes one decoded packet captured at `now_ns` from input number `input`.
    /// Returns false when the packet belongs to another worker's shard: it then only
    /// taught this tracker its DNS answer, if it carried one.
    pub fn on_packet(&mut self, packet: &Packet<'_>, now_ns: u64, input: u32) -> bool {
        let (key, ports) = flow_key(packet);
        let owned = self
            .shard
            .is_none_or(|(index, count)| key.shard(count) == index);
        self.track(packet, key, ports, owned, now_ns, input)
    }

    /// [`Tracker::on_packet`] for a packet whose owner the caller already knows: a
    /// worker of a shared file gets frames already sorted by owner, so hashing the flow
    /// again for every one of them would be work done twice.
    pub(crate) fn on_sorted_packet(
        &mut self,
        packet: &Packet<'_>,
        owned: bool,
        now_ns: u64,
        input: u32,
    ) -> bool {
        let (key, ports) = flow_key(packet);
        self.track(packet, key, ports, owned, now_ns, input)
    }

    fn track(
        &mut self,
        packet: &Packet<'_>,
        key: FlowKey,
        (src_port, dst_port): (u16, u16),
        owned: bool,
        now_ns: u64,
        input: u32,
    ) -> bool {
        let replaying = matches!(self.mode, Mode::Stitching(_));
        // A replayed packet's answer was learnt (and reported) by the second half.
        if carries_dns_answer(packet) && !replaying {
            self.on_dns(packet, now_ns, input, owned);
        }
        if !owned {
            return false;
        }
        if let Mode::Speculating(s) = &mut self.mode {
            s.first_ns.get_or_insert(now_ns);
        }
        let mut departed = Vec::new();
        // A closed connection lingers so its last ACKs and RSTs stay with it; a new SYN
        // on the same ports is a new connection.
        let reopened = matches!(packet.transport, Transport::Tcp { flags, .. }
            if flags.syn() && !flags.contains(linkward_decode::TcpFlags::ACK))
            && self.flows.get_mut(&key).is_some_and(|e| e.finished());
        if reopened && let Some(mut e) = self.flows.remove(&key) {
            // Its quiet packets came before this one.
            if let Mode::Speculating(s) = &mut self.mode {
                s.log_quiet(&mut e);
            }
            departed.push((e, Departure::Finished));
        }
        let entry = match self.flows.get_mut(&key) {
            Some(e) => e,
            None => {
                let (client, server) = match packet.transport {
                    // A SYN-ACK seen first: the sender is the server.
                    Transport::Tcp { flags, .. }
                        if flags.syn() && flags.contains(linkward_decode::TcpFlags::ACK) =>
                    {
                        ((packet.dst, dst_port), (packet.src, src_port))
                    }
                    _ => ((packet.src, src_port), (packet.dst, dst_port)),
                };
                let mut entry = FlowEntry::new(client, server, packet.protocol, now_ns);
                if let Mode::Speculating(s) = &mut self.mode {
                    entry.window = s.window_id_for(key, packet);
                    if let Some(w) = s.window_flow(entry.window) {
                        w.created += 1;
                        if w.created == 1 {
                            entry.quiet = split::Quiet::NonePending;
                        }
                    }
                }
                self.flows
                    .insert(key, entry, &mut |e, why| departed.push((e, why)))
            }
        };
        if entry.window != NOT_IN_WINDOW
            && let Mode::Speculating(s) = &mut self.mode
        {
            s.log_packet(entry, packet, now_ns);
        }
        entry.last_ns = now_ns.max(entry.last_ns);
        entry.packets += 1;
        entry.bytes += packet.ip_len as u64;
        let from_client = packet.src == entry.client && src_port == entry.client_port;
        let mut ready = false;
        match packet.transport {
            Transport::Tcp { flags, payload, .. } => {
                if flags.contains(linkward_decode::TcpFlags::RST) {
                    entry.reset = true;
                }
                if flags.contains(linkward_decode::TcpFlags::FIN) {
                    if from_client {
                        entry.client_fin = true;
                    } else {
                        entry.server_fin = true;
                    }
                }
                if !entry.evaluated {
                    if from_client && !payload.is_empty() {
                        let seen = (self.sni_seen, self.http_hosts_seen);
                        ready = identify(
                            entry,
                            payload,
                            &mut self.sni_seen,
                            &mut self.http_hosts_seen,
                        );
                        if let Mode::Speculating(s) = &mut self.mode
                            && let Some(w) = s.window_flow(entry.window)
                        {
                            w.sni_seen += self.sni_seen - seen.0;
                            w.http_hosts_seen += self.http_hosts_seen - seen.1;
                        }
                    }
                    ready |= entry.packets >= PACKETS_BEFORE_EVALUATION || entry.finished();
                }
            }
            _ => ready = !entry.evaluated,
        }
        if ready {
            entry.evaluated = true;
            entry.hello_buffer = None;
            emit(&self.dns, &mut self.mode, &mut self.ready, entry, input);
        }
        // A replay sweeps where the second half swept (see `Tracker::stitch`).
        if self.flows.sweep_due(now_ns) && !replaying {
            if let Mode::Speculating(s) = &mut self.mode {
                s.log_quiet_packets(&mut self.flows);
                s.note_sweep(now_ns, self.flows.longest_idle_ns());
            }
            self.flows
                .sweep(now_ns, &mut |e, why| departed.push((e, why)));
        }
        for (e, why) in departed {
            if why == Departure::IdleTimeout
                && let Mode::Speculating(s) = &mut self.mode
                && let Some(w) = s.window_flow(e.window)
            {
                w.timed_out += 1;
            }
            self.depart(e, input);
        }
        if let Mode::Speculating(s) = &mut self.mode {
            s.position += 1;
        }
        true
    }

    /// Expires idle flows on the wall clock (live capture on a quiet link, where no
    /// packet arrives to advance capture time).
    pub fn tick(&mut self, now_ns: u64, input: u32) {
        let mut departed = Vec::new();
        self.flows.sweep(now_ns, &mut |e, _| departed.push(e));
        for e in departed {
            self.depart(e, input);
        }
    }

    /// Evaluates every flow still waiting (end of input).
    pub fn finish(&mut self, input: u32) {
        if let Mode::Speculating(s) = &mut self.mode {
            s.log_quiet_packets(&mut self.flows);
        }
        let mut departed = Vec::new();
        self.flows.drain(&mut |e, _| departed.push(e));
        for e in departed {
            self.depart(e, input);
        }
    }

    fn depart(&mut self, mut e: FlowEntry, input: u32) {
        if let Mode::Speculating(s) = &mut self.mode {
            s.log_quiet(&mut e);
        }
        if !e.evaluated {
            emit(&self.dns, &mut self.mode, &mut self.ready, &e, input);
        }
        // A window flow's entry is kept for the stitch: moved, not copied with its names.
        if let Mode::Speculating(s) = &mut self.mode
            && let Some(w) = s.window_flow(e.window)
        {
            w.departed = Some(e);
        }
    }

    /// Every worker learns every DNS answer (its clients' later flows may be in any
    /// shard); only the owner of the DNS flow counts it and has it evaluated.
    fn on_dns(&mut self, packet: &Packet<'_>, now_ns: u64, input: u32, owned: bool) {
        let (message, protocol) = match packet.transport {
            Transport::Udp { payload, .. } => (Some(payload), 17),
            Transport::Tcp { payload, .. } => (dns_wire::parse_tcp_stream_message(payload), 6),
            Transport::Other => (None, 0),
        };
        let Some(message) = message.filter(|m| !m.is_empty()) else {
            return;
        };
        let response = match dns_wire::parse_response(message) {
            Ok(r) => r,
            Err(_) => {
                // Queries (QR=0) are not errors; only count responses we could not read.
                if owned && message.get(2).is_some_and(|b| b & 0x80 != 0) {
                    self.dns_malformed += 1;
                }
                return;
            }
        };
        if response.query.is_empty() {
            return;
        }
        if owned {
            self.dns_answers += 1;
        }
        let (server_port, client_port) = packet.transport.ports().unwrap_or((53, 0));
        let query: Arc<str> = response.query.as_str().into();
        let chain: Arc<[Box<str>]> = response
            .cname_chain
            .iter()
            .map(|n| Box::<str>::from(n.as_str()))
            .collect();
        if !response.addresses.is_empty() {
            if let Mode::Speculating(s) = &mut self.mode {
                s.note_answer(packet.dst, &response.addresses);
            }
            self.dns.record(
                packet.dst,
                &query,
                &chain,
                &response.addresses,
                response.min_ttl,
                now_ns,
            );
        }
        if !owned {
            return;
        }
        self.ready.push(Subject::Dns(DnsSubject {
            client: packet.dst,
            server: packet.src,
            client_port,
            server_port,
            protocol,
            query,
            cname_chain: chain,
            addresses: response.addresses,
            ttl: response.min_ttl,
            timestamp_ns: now_ns,
            input,
        }));
    }

    /// The name `client` resolved to `addr`, for library users.
    pub fn resolved(&self, client: IpAddr, addr: IpAddr, now_ns: u64) -> Option<&str> {
        self.dns.lookup(client, addr, now_ns).map(|r| &*r.name)
    }
}

/// Which of `count` workers owns the flow of `packet` (the same for both directions).
pub fn shard_of(packet: &Packet<'_>, count: u64) -> u64 {
    flow_key(packet).0.shard(count.max(1))
}

/// The key of `packet`'s flow, and its (source, destination) ports (0 for protocols
/// without ports).
#[inline]
fn flow_key(packet: &Packet<'_>) -> (FlowKey, (u16, u16)) {
    let (src_port, dst_port) = packet.transport.ports().unwrap_or((0, 0));
    let key = FlowKey::new(packet.src, src_port, packet.dst, dst_port, packet.protocol);
    (key, (src_port, dst_port))
}

/// Whether `packet` may carry a DNS answer, which every worker must learn.
pub fn carries_dns_answer(packet: &Packet<'_>) -> bool {
    match packet.transport {
        Transport::Udp { src_port, .. } | Transport::Tcp { src_port, .. } => {
            src_port == 53 || src_port == 5353
        }
        Transport::Other => false,
    }
}

/// Makes the record of flow `e` ready for evaluation, with the name its client
/// resolved its server to, if any; a tracker on half a file may hold it instead (see
/// [`split`]).
fn emit(dns: &DnsTracker, mode: &mut Mode, ready: &mut Vec<Subject>, e: &FlowEntry, input: u32) {
    let subject = match mode {
        Mode::Alone => flow_subject(dns.lookup(e.client, e.server, e.last_ns), e, input),
        Mode::Speculating(s) => {
            let subject = flow_subject(dns.lookup(e.client, e.server, e.last_ns), e, input);
            let Some(subject) = s.hold(e.window, !dns.knows(e.client, e.server), subject) else {
                return;
            };
            subject
        }
        Mode::Stitching(s) => flow_subject(s.resolve(dns, e), e, input),
    };
    ready.push(Subject::Flow(subject));
}

fn flow_subject(resolution: Option<&Resolution>, e: &FlowEntry, input: u32) -> FlowSubject {
    FlowSubject {
        src: e.client,
        dst: e.server,
        src_port: e.client_port,
        dst_port: e.server_port,
        protocol: e.protocol,
        first_seen_ns: e.first_ns,
        last_seen_ns: e.last_ns,
        packets: e.packets,
        bytes: e.bytes,
        resolved_name: resolution.map(|r| r.name.clone()),
        cname_chain: resolution.map_or_else(crate::subject::empty_chain, |r| r.chain.clone()),
        sni: e.sni.clone(),
        http_host: e.http_host.clone(),
        from_flow_log: false,
        denied_by_nsg: false,
        log_rule: None,
        input,
    }
}

/// Looks for the flow's identity in a client payload. Returns true when the flow can be
/// evaluated now (identity found, or the payload is neither TLS nor HTTP).
fn identify(
    entry: &mut FlowEntry,
    payload: &[u8],
    sni_seen: &mut u64,
    hosts_seen: &mut u64,
) -> bool {
    let mut buffered = entry.hello_buffer.take();
    let data: &[u8] = match buffered.as_mut() {
        Some(buf) => {
            let room = MAX_HELLO.saturating_sub(buf.len());
            buf.extend_from_slice(&payload[..payload.len().min(room)]);
            buf
        }
        None => payload,
    };
    match client_hello_sni(data) {
        SniResult::Found(name) => {
            entry.sni = Some(name.to_ascii_lowercase().into());
            *sni_seen += 1;
            true
        }
        SniResult::Incomplete { needed } if needed <= MAX_HELLO && data.len() < MAX_HELLO => {
            entry.hello_buffer = Some(buffered.unwrap_or_else(|| payload.to_vec()));
            false
        }
        SniResult::Incomplete { .. } | SniResult::NoSni => true,
        SniResult::NotClientHello => {
            if let Some(host) = linkward_decode::http::request_host(data) {
                entry.http_host = Some(host.to_ascii_lowercase().into());
                *hosts_seen += 1;
            }
            true
        }
    }
}
