//! The benchmark generator: a large, realistic, deterministic capture, streamed.
//!
//! [`generate`] writes a classic pcap of Ethernet frames for a made-up Fabrikam network
//! that uses the example policy's workspace: clients resolve the FHIR service through its
//! privatelink CNAME and reach it with TLS, peered-VNet clients fetch DICOM studies over
//! HTTP, others browse public sites, look up unrelated names and send syslog, and
//! servers answer with full-size data segments. With `violations`, a few sessions break
//! the policy in the ways [`ExpectedFindings`] counts.
//!
//! Sessions are planned one after another from a seeded xorshift generator and run
//! interleaved, a bounded number at a time, so memory stays constant however many
//! packets are asked for. The same configuration always gives the same bytes.

use crate::demo::{DICOM_NAME, FHIR_NAME, FHIR_PRIVATELINK};
use crate::error::SynthError;
use crate::frame::{FrameBuilder, Link, tcp_flags};
use crate::payload::{TYPE_A, dns_query, dns_response, http_get, tls_client_hello};
use linkward_capture::{PcapWriter, TsResolution};
use serde::Serialize;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenConfig {
    /// Packets to write. Exact unless the sessions' fixed packets (handshakes, DNS,
    /// closes) of even one session do not fit, or no TCP session carries the rest.
    pub packets: u64,
    /// Flows (distinct 5-tuples, a DNS lookup counting as one) to spread them over.
    pub flows: u32,
    /// Bytes kept of each frame, as a capture's snap length (at least 64).
    pub snaplen: u32,
    /// Seed of the generator: the same seed gives the same file.
    pub seed: u64,
    /// TCP payload of each server data segment; 1460 makes 1500-byte IP packets.
    pub payload_size: usize,
    /// Whether some sessions break the example policy.
    pub violations: bool,
    /// Sessions in progress at once (interleaved); bounds the generator's memory.
    pub concurrent_flows: u32,
    /// Time of the first packet, nanoseconds since the Unix epoch.
    pub start_ns: u64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            packets: 100_000,
            flows: 1_000,
            snaplen: 262_144,
            seed: 1,
            payload_size: 1460,
            violations: true,
            concurrent_flows: 4096,
            start_ns: crate::demo::DEMO_START_NS,
        }
    }
}

/// Findings a correct scan of the generated capture against `examples/fabrikam.toml`
/// reports, by kind. Kinds the generator never provokes are absent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExpectedFindings {
    /// Clients that resolved the FHIR service to its public address and connected
    /// there (named by DNS or SNI, whichever the snap length kept).
    #[serde(rename = "pe-bypass")]
    pub pe_bypass: u64,
    /// The public DNS answers behind them (only those the snap length kept whole).
    #[serde(rename = "dns-public-resolution")]
    pub dns_public_resolution: u64,
    /// On-premises clients (192.168.0.0/16) reaching the FHIR private endpoint.
    #[serde(rename = "origin-not-allowed")]
    pub origin_not_allowed: u64,
    /// SMB sessions inside the VNet, denied by rule `no-smb`.
    pub rule: u64,
}

impl ExpectedFindings {
    /// All findings.
    pub fn total(&self) -> u64 {
        self.pe_bypass + self.dns_public_resolution + self.origin_not_allowed + self.rule
    }
}

/// What [`generate`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GenSummary {
    /// Packets written.
    pub packets: u64,
    /// Bytes of packet data written (after the snap length).
    pub bytes_captured: u64,
    /// Bytes the packets had on the wire.
    pub bytes_on_wire: u64,
    /// Flows (distinct 5-tuples).
    pub flows: u64,
    /// Sessions (a DNS lookup and the connection that follows it are one session).
    pub sessions: u64,
    /// DNS responses written whole.
    pub dns_answers: u64,
    /// DNS responses the snap length cut (unreadable to a scanner).
    pub dns_answers_cut: u64,
    /// TLS ClientHellos written whole.
    pub tls_client_hellos: u64,
    /// HTTP requests written whole.
    pub http_requests: u64,
    /// Time of the first packet (ns since the Unix epoch).
    pub first_ns: u64,
    /// Time of the last packet.
    pub last_ns: u64,
    /// Findings a scan against `examples/fabrikam.toml` reports.
    pub expected: ExpectedFindings,
}

/// A xorshift64* generator: small, fast and the same everywhere.
#[derive(Clone, Debug)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        let s = seed ^ 0x9e37_79b9_7f4a_7c15;
        XorShift(if s == 0 { 0x2545_f491_4f6c_dd1d } else { s })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (`n` > 0; 0 gives 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next().checked_rem(n).unwrap_or(0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// DNS through the privatelink CNAME, then TLS to the private endpoint.
    PrivateFhir,
    /// TLS to a public web site.
    PublicWeb,
    /// HTTP from a peered VNet to the DICOM private endpoint.
    PrivateDicom,
    /// One syslog datagram.
    Syslog,
    /// A DNS lookup of an unrelated name.
    Lookup,
    /// DNS answered publicly, then TLS to the public address: two findings.
    PeBypass,
    /// SMB inside the VNet: rule `no-smb`.
    Smb,
    /// An on-premises client reaching the FHIR private endpoint.
    Origin,
}

/// Fixed packets of a TCP session: handshake, request, and the FIN, FIN, ACK close.
const TCP_FIXED: u64 = 7;

impl Kind {
    fn flows(self) -> u32 {
        match self {
            Kind::PrivateFhir | Kind::PeBypass => 2,
            _ => 1,
        }
    }

    fn has_dns(self) -> bool {
        matches!(self, Kind::PrivateFhir | Kind::PeBypass | Kind::Lookup)
    }

    fn is_tcp(self) -> bool {
        !matches!(self, Kind::Syslog | Kind::Lookup)
    }

    fn fixed_packets(self) -> u64 {
        let dns = if self.has_dns() { 2 } else { 0 };
        let rest = match self {
            Kind::Syslog => 1,
            Kind::Lookup => 0,
            _ => TCP_FIXED,
        };
        dns + rest
    }
}

/// Chooses the sessions, in order; run twice with the same state, it gives the same
/// sessions (once to count, once to write).
#[derive(Clone, Debug)]
struct Planner {
    rng: XorShift,
    violations: bool,
    max_flows: u64,
    max_packets: u64,
    flows: u64,
    fixed: u64,
    sessions: u64,
    tcp_sessions: u64,
}

impl Planner {
    fn next_kind(&mut self) -> Option<Kind> {
        let left = self.max_flows.saturating_sub(self.flows);
        if left == 0 {
            return None;
        }
        let roll = self.rng.below(100);
        let mut kind = if self.sessions == 0 {
            // Start as most real captures do: a lookup and a connection that is fine.
            Kind::PrivateFhir
        } else {
            match roll {
                0..3 if self.violations => Kind::PeBypass,
                3..5 if self.violations => Kind::Smb,
                5..7 if self.violations => Kind::Origin,
                0..40 => Kind::PrivateFhir,
                40..55 => Kind::PrivateDicom,
                55..75 => Kind::PublicWeb,
                75..88 => Kind::Syslog,
                _ => Kind::Lookup,
            }
        };
        if u64::from(kind.flows()) > left {
            kind = Kind::PrivateDicom;
        }
        let fixed = self.fixed.checked_add(kind.fixed_packets())?;
        if fixed > self.max_packets {
            return None;
        }
        self.fixed = fixed;
        self.flows += u64::from(kind.flows());
        self.sessions += 1;
        if kind.is_tcp() {
            self.tcp_sessions += 1;
        }
        Some(kind)
    }
}

/// One session in progress.
struct Session {
    kind: Kind,
    /// Its number, from which its addresses come.
    n: u64,
    /// Packets written so far.
    step: u64,
    /// Server data segments it carries.
    data: u64,
    dns_client: SocketAddr,
    client: SocketAddr,
    server: SocketAddr,
    c_seq: u32,
    s_seq: u32,
    resolved: bool,
}

const RESOLVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 4)), 53);
const SYSLOG: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 20)), 514);
const FHIR_PRIVATE: Ipv4Addr = Ipv4Addr::new(10, 1, 2, 5);
const FHIR_PUBLIC: Ipv4Addr = Ipv4Addr::new(20, 37, 1, 10);
const DICOM_PRIVATE: Ipv4Addr = Ipv4Addr::new(10, 1, 2, 6);
const WEB_NAME: &str = "portal.fabrikam.example";
const LOOKUP_NAME: &str = "login.microsoftonline.com";
const LOOKUP_CHAIN: [&str; 2] = ["login.mso.msidentity.com", "ak.privatelink.msidentity.com"];

fn v4(a: u8, b: u8, c: u64, d: u64) -> Ipv4Addr {
    // c and d are reduced below 256 by the callers.
    Ipv4Addr::new(a, b, (c % 256) as u8, (d % 256) as u8)
}

impl Session {
    fn new(kind: Kind, n: u64, data: u64) -> Session {
        // 50,000 client addresses, each with 20,000 port pairs: a (client, port) is not
        // reused before a billion sessions.
        let host = n % 50_000;
        let base = 20_000 + 2 * ((n / 50_000) % 20_000) as u16;
        let inside = v4(10, 1, 10 + (host / 250) % 200, 1 + host % 250);
        let (client_ip, server) = match kind {
            Kind::PrivateFhir => (inside, SocketAddr::new(FHIR_PRIVATE.into(), 443)),
            Kind::PeBypass => (inside, SocketAddr::new(FHIR_PUBLIC.into(), 443)),
            Kind::PublicWeb => (
                inside,
                SocketAddr::new(v4(13, 107, 6, 1 + n % 50).into(), 443),
            ),
            Kind::PrivateDicom => (
                v4(10, 2, (host / 250) % 250, 1 + host % 250),
                SocketAddr::new(DICOM_PRIVATE.into(), 80),
            ),
            Kind::Syslog => (inside, SYSLOG),
            Kind::Lookup => (inside, RESOLVER),
            Kind::Smb => (
                inside,
                SocketAddr::new(v4(10, 1, 9, 1 + n % 250).into(), 445),
            ),
            Kind::Origin => (
                v4(192, 168, (host / 250) % 250, 1 + host % 250),
                SocketAddr::new(FHIR_PRIVATE.into(), 443),
            ),
        };
        Session {
            kind,
            n,
            step: 0,
            data: if kind.is_tcp() { data } else { 0 },
            dns_client: SocketAddr::new(client_ip.into(), base),
            client: SocketAddr::new(client_ip.into(), base + 1),
            server,
            c_seq: (n as u32).wrapping_mul(2_654_435_761),
            s_seq: (n as u32).wrapping_mul(40_503).wrapping_add(0x3000_0000),
            resolved: false,
        }
    }

    fn total_packets(&self) -> u64 {
        self.kind.fixed_packets() + self.data
    }
}

/// Payloads built once and reused by every session.
struct Payloads {
    hello_fhir: Vec<u8>,
    hello_web: Vec<u8>,
    http_dicom: Vec<u8>,
    smb: Vec<u8>,
    syslog: Vec<u8>,
    data: Vec<u8>,
}

/// What one step of a session writes.
enum Packet<'a> {
    Tcp {
        from_client: bool,
        flags: u8,
        payload: &'a [u8],
    },
    Udp {
        from_client: bool,
        payload: &'a [u8],
    },
}

/// What a written packet was, for the summary.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Plain,
    DnsAnswer,
    Request,
}

/// Writes the capture described by `config` to `writer` as a classic pcap (Ethernet,
/// nanosecond timestamps, `config.snaplen`) and says what it holds.
///
/// ```
/// use linkward_synth::{GenConfig, generate};
///
/// let config = GenConfig { packets: 2_000, flows: 50, ..GenConfig::default() };
/// let summary = generate(&config, Vec::new())?;
/// assert_eq!(summary.packets, 2_000);
/// assert_eq!(summary.flows, 50);
/// # Ok::<(), linkward_synth::SynthError>(())
/// ```
pub fn generate<W: Write>(config: &GenConfig, writer: W) -> Result<GenSummary, SynthError> {
    if config.snaplen < 64 {
        return Err(SynthError::BadConfig {
            setting: "snaplen",
            value: u64::from(config.snaplen),
            problem: "at least 64 bytes are needed to keep the headers",
        });
    }
    if config.payload_size > 65_495 {
        return Err(SynthError::BadConfig {
            setting: "payload_size",
            value: config.payload_size as u64,
            problem: "a TCP segment in IPv4 holds at most 65495 bytes",
        });
    }
    let planner = Planner {
        rng: XorShift::new(config.seed),
        violations: config.violations,
        max_flows: u64::from(config.flows),
        max_packets: config.packets,
        flows: 0,
        fixed: 0,
        sessions: 0,
        tcp_sessions: 0,
    };
    let mut count = planner.clone();
    while count.next_kind().is_some() {}
    let data_total = config.packets.saturating_sub(count.fixed);
    let (per_tcp, extra) = match count.tcp_sessions {
        0 => (0, 0),
        t => (data_total / t, data_total % t),
    };

    let mut smb = vec![0x00, 0x00, 0x00, 0x44, 0xfe, b'S', b'M', b'B', 0x40, 0x00];
    smb.resize(0x48, 0);
    let payloads = Payloads {
        hello_fhir: tls_client_hello(Some(FHIR_NAME))?,
        hello_web: tls_client_hello(Some(WEB_NAME))?,
        http_dicom: http_get(DICOM_NAME, "/v1/studies?StudyDate=20250303"),
        smb,
        syslog: b"<134>1 2025-03-03T09:00:00Z app01 orders 4242 - - order accepted".to_vec(),
        data: (0..config.payload_size)
            .map(|i| (i * 31 + 7) as u8)
            .collect(),
    };

    let mut out = PcapWriter::new(
        writer,
        Link::Ethernet.linktype(),
        config.snaplen,
        TsResolution::Nano,
    )
    .map_err(|e| SynthError::capture(None, e))?;
    let builder = FrameBuilder::new(Link::Ethernet);
    let mut summary = GenSummary {
        first_ns: config.start_ns,
        last_ns: config.start_ns,
        ..GenSummary::default()
    };
    let mut plan = planner;
    let mut rng = XorShift::new(config.seed.rotate_left(32) ^ 0x5851_f42d_4c95_7f2d);
    let mut active: Vec<Session> = Vec::new();
    let concurrent = config.concurrent_flows.max(1) as usize;
    let mut tcp_index = 0u64;
    let mut buf = Vec::with_capacity(2048);
    let mut t = config.start_ns;
    let snaplen = config.snaplen as usize;
    loop {
        while active.len() < concurrent {
            let Some(kind) = plan.next_kind() else { break };
            let data = if kind.is_tcp() {
                let d = per_tcp + u64::from(tcp_index < extra);
                tcp_index += 1;
                d
            } else {
                0
            };
            active.push(Session::new(kind, plan.sessions - 1, data));
        }
        if active.is_empty() {
            break;
        }
        let pick = rng.below(active.len() as u64) as usize;
        let Some(session) = active.get_mut(pick) else {
            break;
        };
        let role = emit(session, &payloads, &builder, &mut buf)?;
        let fits = buf.len() <= snaplen;
        account(session, role, fits, &mut summary);
        let wire = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let kept = buf.get(..snaplen.min(buf.len())).unwrap_or(&buf);
        out.write_packet(t, kept, wire)
            .map_err(|e| SynthError::capture(None, e))?;
        summary.packets += 1;
        summary.bytes_captured += kept.len() as u64;
        summary.bytes_on_wire += u64::from(wire);
        summary.last_ns = t;
        t = t.saturating_add(1_000 + rng.below(2_000));
        session.step += 1;
        if session.step >= session.total_packets() {
            active.swap_remove(pick);
        }
    }
    out.finish().map_err(|e| SynthError::capture(None, e))?;
    summary.flows = plan.flows;
    summary.sessions = plan.sessions;
    Ok(summary)
}

/// Counts what the packet just built means for a scanner.
fn account(session: &mut Session, role: Role, fits: bool, summary: &mut GenSummary) {
    let e = &mut summary.expected;
    match role {
        Role::Plain => {}
        Role::DnsAnswer if fits => {
            summary.dns_answers += 1;
            if session.kind == Kind::PeBypass {
                e.dns_public_resolution += 1;
                session.resolved = true;
            }
        }
        Role::DnsAnswer => summary.dns_answers_cut += 1,
        Role::Request => {
            match session.kind {
                Kind::PrivateDicom if fits => summary.http_requests += 1,
                Kind::PrivateFhir | Kind::PublicWeb | Kind::PeBypass | Kind::Origin if fits => {
                    summary.tls_client_hellos += 1
                }
                _ => {}
            }
            match session.kind {
                Kind::PeBypass if fits || session.resolved => e.pe_bypass += 1,
                Kind::Origin => e.origin_not_allowed += 1,
                Kind::Smb => e.rule += 1,
                _ => {}
            }
        }
    }
}

/// Builds the session's next packet into `buf`.
fn emit(
    s: &mut Session,
    p: &Payloads,
    b: &FrameBuilder,
    buf: &mut Vec<u8>,
) -> Result<Role, SynthError> {
    use tcp_flags::{ACK, FIN, PSH, SYN};
    let dns_steps = if s.kind.has_dns() { 2 } else { 0 };
    let id = (s.n as u16).wrapping_mul(0x9e37);
    if s.step < dns_steps {
        let (query, chain, addrs): (&str, &[&str], Vec<IpAddr>) = match s.kind {
            Kind::PrivateFhir => (FHIR_NAME, &[FHIR_PRIVATELINK], vec![FHIR_PRIVATE.into()]),
            Kind::PeBypass => (FHIR_NAME, &[], vec![FHIR_PUBLIC.into()]),
            _ => (
                LOOKUP_NAME,
                &LOOKUP_CHAIN,
                vec![v4(20, 190, 151, 7).into(), v4(40, 126, 23, 1).into()],
            ),
        };
        return if s.step == 0 {
            let q = dns_query(id, query, TYPE_A)?;
            b.udp_into(buf, s.dns_client, RESOLVER, &q)?;
            Ok(Role::Plain)
        } else {
            let r = dns_response(id, query, chain, &addrs, 300)?;
            b.udp_into(buf, RESOLVER, s.dns_client, &r)?;
            Ok(Role::DnsAnswer)
        };
    }
    let step = s.step - dns_steps;
    let request: &[u8] = match s.kind {
        Kind::PrivateFhir | Kind::PeBypass | Kind::Origin => &p.hello_fhir,
        Kind::PublicWeb => &p.hello_web,
        Kind::PrivateDicom => &p.http_dicom,
        Kind::Smb => &p.smb,
        Kind::Syslog => &p.syslog,
        Kind::Lookup => &[],
    };
    let packet = if s.kind == Kind::Syslog {
        Packet::Udp {
            from_client: true,
            payload: request,
        }
    } else {
        match step {
            0 => Packet::Tcp {
                from_client: true,
                flags: SYN,
                payload: &[],
            },
            1 => Packet::Tcp {
                from_client: false,
                flags: SYN | ACK,
                payload: &[],
            },
            2 => Packet::Tcp {
                from_client: true,
                flags: ACK,
                payload: &[],
            },
            3 => Packet::Tcp {
                from_client: true,
                flags: PSH | ACK,
                payload: request,
            },
            n if n < 4 + s.data => Packet::Tcp {
                from_client: false,
                flags: ACK,
                payload: &p.data,
            },
            n if n == 4 + s.data => Packet::Tcp {
                from_client: true,
                flags: FIN | ACK,
                payload: &[],
            },
            n if n == 5 + s.data => Packet::Tcp {
                from_client: false,
                flags: FIN | ACK,
                payload: &[],
            },
            _ => Packet::Tcp {
                from_client: true,
                flags: ACK,
                payload: &[],
            },
        }
    };
    let role = if step == 0 && s.kind == Kind::Syslog || step == 3 && s.kind != Kind::Syslog {
        Role::Request
    } else {
        Role::Plain
    };
    match packet {
        Packet::Udp {
            from_client,
            payload,
        } => {
            let (src, dst) = if from_client {
                (s.client, s.server)
            } else {
                (s.server, s.client)
            };
            b.udp_into(buf, src, dst, payload)?;
        }
        Packet::Tcp {
            from_client,
            flags,
            payload,
        } => {
            // SYN and FIN each take one sequence number.
            let len = payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0);
            if from_client {
                b.tcp_into(buf, s.client, s.server, s.c_seq, s.s_seq, flags, payload)?;
                s.c_seq = s.c_seq.wrapping_add(len);
            } else {
                b.tcp_into(buf, s.server, s.client, s.s_seq, s.c_seq, flags, payload)?;
                s.s_seq = s.s_seq.wrapping_add(len);
            }
        }
    }
    Ok(role)
}
