//! EVE JSON lines: one object per finding, with the Suricata `alert` fields that SIEM
//! pipelines already parse, plus a `linkward` object with the policy's own words.

use super::{community_id, eve_timestamp, flow_id, proto_name};
use crate::evaluation::{FindingSink, Report, ReportKind};
use crate::subject::Subject;
use linkward_guest::vocab::Action;
use serde::Serialize;
use std::io::{self, Write};

/// Signature ids start here; each finding kind gets `BASE + kind number`, evaluation
/// errors `BASE + 99`.
pub const SIGNATURE_BASE: u32 = 9_900_000;

#[derive(Serialize)]
struct Alert<'a> {
    action: &'static str,
    gid: u32,
    signature_id: u32,
    rev: u32,
    signature: String,
    category: &'static str,
    severity: u8,
    metadata: AlertMetadata<'a>,
}

#[derive(Serialize)]
struct AlertMetadata<'a> {
    policy: [&'a str; 1],
    rule: [&'a str; 1],
}

#[derive(Serialize)]
struct Linkward<'a> {
    finding: &'static str,
    rule: &'a str,
    severity: &'static str,
    policy: &'a str,
    policy_version: &'a str,
    policy_line: u32,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sni: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_host: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    dns_chain: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dns_addresses: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    packets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    denied_by_nsg: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_rule: Option<&'a str>,
}

#[derive(Serialize)]
struct Event<'a> {
    timestamp: String,
    flow_id: u64,
    event_type: &'static str,
    src_ip: String,
    src_port: u16,
    dest_ip: String,
    dest_port: u16,
    proto: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pcap_filename: Option<&'a str>,
    community_id: String,
    alert: Alert<'a>,
    linkward: Linkward<'a>,
}

fn category(kind: ReportKind) -> &'static str {
    use linkward_guest::vocab::FindingKind as K;
    match kind {
        ReportKind::Finding(K::PeBypass) => "Private endpoint bypass",
        ReportKind::Finding(K::DnsPublicResolution) => "Private DNS misconfiguration",
        ReportKind::Finding(K::DnsConflict) => "Private DNS conflict",
        ReportKind::Finding(K::OriginNotAllowed) => "Origin not allowed",
        ReportKind::Finding(K::PublicAccess) => "Public access while disabled",
        ReportKind::Finding(K::UntrustedOutbound) => "Untrusted outbound connection",
        ReportKind::Finding(K::ServiceTagReliance) => "Service tag reliance",
        ReportKind::Finding(K::Rule) => "Policy rule",
        ReportKind::EvaluationError => "Policy evaluation error",
    }
}

/// Writes one JSON object per line. `inputs` names the run's inputs by index, for
/// `pcap_filename`.
pub struct EveSink<W: Write> {
    out: W,
    inputs: Vec<String>,
    flush_each_batch: bool,
}

impl<W: Write> EveSink<W> {
    pub fn new(out: W, inputs: Vec<String>) -> EveSink<W> {
        EveSink {
            out,
            inputs,
            flush_each_batch: false,
        }
    }

    /// Flush after every batch (live use: findings should not wait in a buffer).
    pub fn flush_each_batch(mut self, yes: bool) -> Self {
        self.flush_each_batch = yes;
        self
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    pub fn set_inputs(&mut self, inputs: Vec<String>) {
        self.inputs = inputs;
    }
}

impl<W: Write> FindingSink for EveSink<W> {
    fn report(&mut self, subject: &Subject, report: &Report) -> io::Result<()> {
        let (src, sport, dst, dport, proto, ts) = subject.endpoints();
        let kind_number = match report.kind {
            ReportKind::Finding(k) => k.number(),
            ReportKind::EvaluationError => 99,
        };
        let mut linkward = Linkward {
            finding: report.kind.id(),
            rule: &report.rule,
            severity: report.severity.id(),
            policy: &report.policy,
            policy_version: &report.policy_version,
            policy_line: report.line,
            reason: &report.reason,
            name: None,
            sni: None,
            http_host: None,
            dns_chain: Vec::new(),
            dns_addresses: Vec::new(),
            packets: None,
            bytes: None,
            source: None,
            denied_by_nsg: false,
            log_rule: None,
        };
        let app_proto = match subject {
            Subject::Flow(f) => {
                linkward.name = f.resolved_name.as_deref();
                linkward.sni = f.sni.as_deref();
                linkward.http_host = f.http_host.as_deref();
                linkward.dns_chain = f.cname_chain.iter().map(|c| &**c).collect();
                linkward.packets = Some(f.packets);
                linkward.bytes = Some(f.bytes);
                linkward.denied_by_nsg = f.denied_by_nsg;
                linkward.log_rule = f.log_rule.as_deref();
                linkward.source = Some(if f.from_flow_log {
                    "flow-log"
                } else {
                    "packets"
                });
                if f.sni.is_some() {
                    Some("tls")
                } else if f.http_host.is_some() {
                    Some("http")
                } else {
                    None
                }
            }
            Subject::Dns(d) => {
                linkward.name = Some(&d.query);
                linkward.dns_chain = d.cname_chain.iter().map(|c| &**c).collect();
                linkward.dns_addresses = d.addresses.iter().map(ToString::to_string).collect();
                Some("dns")
            }
        };
        let event = Event {
            timestamp: eve_timestamp(ts),
            flow_id: flow_id(src, sport, dst, dport, proto),
            event_type: "alert",
            src_ip: src.to_string(),
            src_port: sport,
            dest_ip: dst.to_string(),
            dest_port: dport,
            proto: proto_name(proto),
            app_proto,
            pcap_filename: self
                .inputs
                .get(subject.input() as usize)
                .map(String::as_str),
            community_id: community_id(src, sport, dst, dport, proto),
            alert: Alert {
                action: if report.action == Action::Deny {
                    "blocked"
                } else {
                    "allowed"
                },
                gid: 1,
                signature_id: SIGNATURE_BASE + kind_number,
                rev: 1,
                signature: format!("LINKWARD {} {}", report.kind.id(), report.rule),
                category: category(report.kind),
                severity: report.severity.eve_number(),
                metadata: AlertMetadata {
                    policy: [&report.policy],
                    rule: [&report.rule],
                },
            },
            linkward,
        };
        serde_json::to_writer(&mut self.out, &event)?;
        self.out.write_all(b"\n")
    }

    fn batch_done(&mut self) -> io::Result<()> {
        if self.flush_each_batch {
            self.out.flush()?;
        }
        Ok(())
    }
}
