//! What findings are about: owned copies of the flow or DNS answer that was evaluated,
//! kept by the host (never sent back from the sandbox) so that reports can name the
//! addresses, ports, names and file of every finding.

use linkward_guest::record::{DnsAnswer, Flow};
use std::net::IpAddr;
use std::sync::Arc;

/// The CNAME chain of a flow nobody resolved: one shared empty list, so flows without
/// names cost no allocation for it.
pub fn empty_chain() -> Arc<[Box<str>]> {
    static EMPTY: std::sync::LazyLock<Arc<[Box<str>]>> =
        std::sync::LazyLock::new(|| Arc::from(Vec::new()));
    EMPTY.clone()
}

/// A flow as it was handed to the evaluator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowSubject {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    pub packets: u64,
    pub bytes: u64,
    /// The name the client resolved for `dst`, and its CNAME chain.
    pub resolved_name: Option<Arc<str>>,
    pub cname_chain: Arc<[Box<str>]>,
    pub sni: Option<Arc<str>>,
    pub http_host: Option<Arc<str>>,
    pub from_flow_log: bool,
    pub denied_by_nsg: bool,
    /// For flow-log input: the NSG or VNet rule that logged the flow.
    pub log_rule: Option<Arc<str>>,
    /// Which input this came from (index into the run's input list).
    pub input: u32,
}

impl FlowSubject {
    pub fn view(&self) -> Flow<'_> {
        Flow {
            src: self.src,
            dst: self.dst,
            src_port: self.src_port,
            dst_port: self.dst_port,
            protocol: self.protocol,
            from_flow_log: self.from_flow_log,
            denied_by_nsg: self.denied_by_nsg,
            resolved_name: self.resolved_name.as_deref(),
            sni: self.sni.as_deref(),
            http_host: self.http_host.as_deref(),
            packets: self.packets,
            bytes: self.bytes,
            first_seen_ns: self.first_seen_ns,
            last_seen_ns: self.last_seen_ns,
        }
    }
}

/// A DNS response as it was handed to the evaluator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsSubject {
    pub client: IpAddr,
    pub server: IpAddr,
    pub client_port: u16,
    pub server_port: u16,
    pub protocol: u8,
    pub query: Arc<str>,
    pub cname_chain: Arc<[Box<str>]>,
    pub addresses: Vec<IpAddr>,
    pub ttl: u32,
    pub timestamp_ns: u64,
    pub input: u32,
}

impl DnsSubject {
    pub fn view(&self) -> DnsAnswer<'_> {
        DnsAnswer {
            client: self.client,
            server: self.server,
            query: &self.query,
            cname_chain: self.cname_chain.iter().map(|c| &**c).collect(),
            addresses: self.addresses.clone(),
            ttl: self.ttl,
            timestamp_ns: self.timestamp_ns,
        }
    }
}

/// Either kind of evaluated record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    Flow(FlowSubject),
    Dns(DnsSubject),
}

impl Subject {
    /// (client, client port, server, server port, protocol, time) for reports.
    pub fn endpoints(&self) -> (IpAddr, u16, IpAddr, u16, u8, u64) {
        match self {
            Subject::Flow(f) => (
                f.src,
                f.src_port,
                f.dst,
                f.dst_port,
                f.protocol,
                f.first_seen_ns,
            ),
            Subject::Dns(d) => (
                d.client,
                d.client_port,
                d.server,
                d.server_port,
                d.protocol,
                d.timestamp_ns,
            ),
        }
    }

    pub fn input(&self) -> u32 {
        match self {
            Subject::Flow(f) => f.input,
            Subject::Dns(d) => d.input,
        }
    }

    /// The best name known for the server side: DNS name, then SNI, then Host; for a
    /// DNS answer, the query.
    pub fn server_name(&self) -> Option<&str> {
        match self {
            Subject::Flow(f) => f
                .resolved_name
                .as_deref()
                .or(f.sni.as_deref())
                .or(f.http_host.as_deref()),
            Subject::Dns(d) => Some(&d.query),
        }
    }
}

impl Subject {
    /// The record as one JSON object, for `linkward records`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Subject::Flow(f) => serde_json::json!({
                "type": "flow",
                "src_ip": f.src.to_string(),
                "src_port": f.src_port,
                "dest_ip": f.dst.to_string(),
                "dest_port": f.dst_port,
                "proto": f.protocol,
                "first_seen_ns": f.first_seen_ns,
                "last_seen_ns": f.last_seen_ns,
                "packets": f.packets,
                "bytes": f.bytes,
                "name": f.resolved_name.as_deref(),
                "dns_chain": f.cname_chain.iter().map(|c| &**c).collect::<Vec<_>>(),
                "sni": f.sni.as_deref(),
                "http_host": f.http_host.as_deref(),
            }),
            Subject::Dns(d) => serde_json::json!({
                "type": "dns",
                "client": d.client.to_string(),
                "server": d.server.to_string(),
                "proto": d.protocol,
                "query": &*d.query,
                "dns_chain": d.cname_chain.iter().map(|c| &**c).collect::<Vec<_>>(),
                "addresses": d.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "ttl": d.ttl,
                "timestamp_ns": d.timestamp_ns,
            }),
        }
    }
}
