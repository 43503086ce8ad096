//! The evaluator's view of its inputs and outputs, borrowed where it can be: a flow decoded
//! from a packed batch points into the batch bytes.

use crate::vocab::{Action, FindingKind, Severity};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// IANA protocol numbers the policy language names.
pub mod protocol {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
}

/// One connection from its initiator (`src`) to its responder (`dst`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    /// True for flow-log tuples, which carry no names.
    pub from_flow_log: bool,
    pub denied_by_nsg: bool,
    pub resolved_name: Option<&'a str>,
    pub sni: Option<&'a str>,
    pub http_host: Option<&'a str>,
    pub packets: u64,
    pub bytes: u64,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
}

impl<'a> Flow<'a> {
    /// The names the host knew the flow by, in the order in which they identify its
    /// service: the name its destination was resolved from, the TLS SNI, the HTTP Host.
    #[inline]
    pub fn names(&self) -> [Option<&'a str>; 3] {
        [self.resolved_name, self.sni, self.http_host]
    }
}

/// One DNS response: the question, the CNAME chain and the final addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsAnswer<'a> {
    pub client: IpAddr,
    pub server: IpAddr,
    pub query: &'a str,
    pub cname_chain: Vec<&'a str>,
    pub addresses: Vec<IpAddr>,
    pub ttl: u32,
    pub timestamp_ns: u64,
}

/// What the evaluator reports about record `index` of a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub index: u32,
    pub kind: FindingKind,
    pub rule: String,
    pub severity: Severity,
    pub action: Action,
    pub line: u32,
    pub reason: String,
}

/// An owned flow, for self-test cases stored in a module image and for tools.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedFlow {
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    pub from_flow_log: bool,
    pub denied_by_nsg: bool,
    pub resolved_name: Option<String>,
    pub cname_chain: Vec<String>,
    pub sni: Option<String>,
    pub http_host: Option<String>,
    pub packets: u64,
    pub bytes: u64,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
}

const UNSPECIFIED: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

impl OwnedFlow {
    pub fn view(&self) -> Flow<'_> {
        Flow {
            src: self.src.unwrap_or(UNSPECIFIED),
            dst: self.dst.unwrap_or(UNSPECIFIED),
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

/// An owned DNS answer, for self-test cases and tools.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedDnsAnswer {
    pub client: Option<IpAddr>,
    pub server: Option<IpAddr>,
    pub query: String,
    pub cname_chain: Vec<String>,
    pub addresses: Vec<IpAddr>,
    pub ttl: u32,
    pub timestamp_ns: u64,
}

impl OwnedDnsAnswer {
    pub fn view(&self) -> DnsAnswer<'_> {
        DnsAnswer {
            client: self.client.unwrap_or(UNSPECIFIED),
            server: self.server.unwrap_or(UNSPECIFIED),
            query: &self.query,
            cname_chain: self.cname_chain.iter().map(String::as_str).collect(),
            addresses: self.addresses.clone(),
            ttl: self.ttl,
            timestamp_ns: self.timestamp_ns,
        }
    }
}

/// The input of a test case: one flow or one DNS answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TestInput {
    Flow(OwnedFlow),
    Dns(OwnedDnsAnswer),
}

/// A table-driven case: an input and the finding kinds it must produce, no more, no less.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCase {
    pub name: String,
    pub input: TestInput,
    pub expect: Vec<FindingKind>,
}
