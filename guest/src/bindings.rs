//! The WebAssembly face of the evaluator: the `linkward:policy` world exported through
//! wit-bindgen, and the two hooks through which the policy compiler hands the module its
//! rule image.
//!
//! The generic guest is built once, without any policy. `linkward-policy` then rewrites
//! the bodies of [`linkward_image_len`] and [`linkward_image_copy`] so that they return the
//! length of, and copy out, a passive data segment holding the image. The Rust bodies
//! below are what an unpatched module does: report that it carries no image.

use crate::evaluate::Evaluator;
use crate::image::Image;
use crate::packed;
use crate::record::{self, OwnedDnsAnswer, OwnedFlow, TestInput};
use crate::vocab;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

wit_bindgen::generate!({
    path: "../wit",
    world: "policy-module",
});

use exports::linkward::policy::evaluator as wit;

/// Replaced by the compiler: returns the byte length of the embedded rule image.
// `no_mangle` so the compiler can find the hook by its export name.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn linkward_image_len() -> u32 {
    // Opaque to the optimizer, so callers cannot fold the unpatched answer in.
    core::hint::black_box(0)
}

/// Replaced by the compiler: copies the rule image to `dst`.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn linkward_image_copy(dst: *mut u8) {
    core::hint::black_box(dst);
}

fn load() -> Result<Evaluator, String> {
    let len = linkward_image_len() as usize;
    if len == 0 {
        return Err("this module carries no rule image: build it with `linkward compile`".into());
    }
    let mut bytes = vec![0u8; len];
    linkward_image_copy(core::hint::black_box(bytes.as_mut_ptr()));
    let bytes = core::hint::black_box(bytes);
    Image::from_bytes(&bytes)
        .map(Evaluator::new)
        .map_err(|e| e.to_string())
}

fn evaluator() -> &'static Evaluator {
    static EVALUATOR: OnceLock<Result<Evaluator, String>> = OnceLock::new();
    match EVALUATOR.get_or_init(load) {
        Ok(e) => e,
        // A module without a valid image cannot answer anything: trap with the reason.
        Err(why) => panic!("{why}"),
    }
}

struct Module;

impl wit::Guest for Module {
    fn metadata() -> wit::ModuleMetadata {
        let image = evaluator().image();
        let m = &image.meta;
        wit::ModuleMetadata {
            policy_name: m.policy_name.clone(),
            policy_version: m.policy_version.clone(),
            source_hash: m.source_hash.clone(),
            compiler_version: m.compiler_version.clone(),
            contract_version: crate::CONTRACT_VERSION.to_string(),
            lints: m.lints.clone(),
            services: image.services.len() as u32,
            rules: image.rules.len() as u32,
            prefixes: image.prefix_count() as u32,
            names: image.name_count() as u32,
        }
    }

    fn self_test_cases() -> Vec<wit::TestCase> {
        evaluator()
            .image()
            .self_tests
            .iter()
            .map(|case| wit::TestCase {
                name: case.name.clone(),
                input: match &case.input {
                    TestInput::Flow(f) => wit::TestInput::Flow(flow_to_wit(f)),
                    TestInput::Dns(d) => wit::TestInput::Dns(dns_to_wit(d)),
                },
                expect: case.expect.iter().map(|k| kind_to_wit(*k)).collect(),
            })
            .collect()
    }

    fn evaluate_flows(batch: Vec<wit::Flow>) -> Vec<wit::Finding> {
        let e = evaluator();
        let mut out = Vec::new();
        for (i, f) in batch.iter().enumerate() {
            let flow = record::Flow {
                src: addr_from_wit(f.src),
                dst: addr_from_wit(f.dst),
                src_port: f.src_port,
                dst_port: f.dst_port,
                protocol: f.protocol,
                from_flow_log: matches!(f.source, wit::FlowSource::FlowLog),
                denied_by_nsg: f.denied_by_nsg,
                resolved_name: f.resolved_name.as_deref(),
                sni: f.sni.as_deref(),
                http_host: f.http_host.as_deref(),
                packets: f.packets,
                bytes: f.bytes,
                first_seen_ns: f.first_seen_ns,
                last_seen_ns: f.last_seen_ns,
            };
            e.evaluate_flow(i as u32, &flow, &mut out);
        }
        out.into_iter().map(finding_to_wit).collect()
    }

    fn evaluate_dns(batch: Vec<wit::DnsAnswer>) -> Vec<wit::Finding> {
        let e = evaluator();
        let mut out = Vec::new();
        for (i, d) in batch.iter().enumerate() {
            let answer = record::DnsAnswer {
                client: addr_from_wit(d.client),
                server: addr_from_wit(d.server),
                query: &d.query,
                cname_chain: d.cname_chain.iter().map(String::as_str).collect(),
                addresses: d.addresses.iter().map(|a| addr_from_wit(*a)).collect(),
                ttl: d.ttl,
                timestamp_ns: d.timestamp_ns,
            };
            e.evaluate_dns(i as u32, &answer, &mut out);
        }
        out.into_iter().map(finding_to_wit).collect()
    }

    fn evaluate_flows_packed(batch: Vec<u8>) -> Result<Vec<wit::Finding>, String> {
        let e = evaluator();
        let mut out = Vec::new();
        e.evaluate_flow_batch(&batch, &mut out)
            .map_err(|err| err.to_string())?;
        Ok(out.into_iter().map(finding_to_wit).collect())
    }

    fn evaluate_dns_packed(batch: Vec<u8>) -> Result<Vec<wit::Finding>, String> {
        let e = evaluator();
        let mut out = Vec::new();
        packed::read_dns(&batch, |i, d| e.evaluate_dns(i, d, &mut out))
            .map_err(|err| err.to_string())?;
        Ok(out.into_iter().map(finding_to_wit).collect())
    }
}

export!(Module);

fn addr_from_wit(a: wit::IpAddress) -> IpAddr {
    match a {
        wit::IpAddress::Ipv4((a, b, c, d)) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        wit::IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
        }
    }
}

fn addr_to_wit(a: IpAddr) -> wit::IpAddress {
    match a {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            wit::IpAddress::Ipv4((a, b, c, d))
        }
        IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.segments();
            wit::IpAddress::Ipv6((a, b, c, d, e, f, g, h))
        }
    }
}

const UNSPECIFIED: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

fn flow_to_wit(f: &OwnedFlow) -> wit::Flow {
    wit::Flow {
        src: addr_to_wit(f.src.unwrap_or(UNSPECIFIED)),
        dst: addr_to_wit(f.dst.unwrap_or(UNSPECIFIED)),
        src_port: f.src_port,
        dst_port: f.dst_port,
        protocol: f.protocol,
        source: if f.from_flow_log {
            wit::FlowSource::FlowLog
        } else {
            wit::FlowSource::Packets
        },
        resolved_name: f.resolved_name.clone(),
        cname_chain: f.cname_chain.clone(),
        sni: f.sni.clone(),
        http_host: f.http_host.clone(),
        denied_by_nsg: f.denied_by_nsg,
        packets: f.packets,
        bytes: f.bytes,
        first_seen_ns: f.first_seen_ns,
        last_seen_ns: f.last_seen_ns,
    }
}

fn dns_to_wit(d: &OwnedDnsAnswer) -> wit::DnsAnswer {
    wit::DnsAnswer {
        client: addr_to_wit(d.client.unwrap_or(UNSPECIFIED)),
        server: addr_to_wit(d.server.unwrap_or(UNSPECIFIED)),
        query: d.query.clone(),
        cname_chain: d.cname_chain.clone(),
        addresses: d.addresses.iter().map(|a| addr_to_wit(*a)).collect(),
        ttl: d.ttl,
        timestamp_ns: d.timestamp_ns,
    }
}

fn kind_to_wit(k: vocab::FindingKind) -> wit::FindingKind {
    use vocab::FindingKind as K;
    match k {
        K::PeBypass => wit::FindingKind::PeBypass,
        K::DnsPublicResolution => wit::FindingKind::DnsPublicResolution,
        K::DnsConflict => wit::FindingKind::DnsConflict,
        K::OriginNotAllowed => wit::FindingKind::OriginNotAllowed,
        K::PublicAccess => wit::FindingKind::PublicAccess,
        K::UntrustedOutbound => wit::FindingKind::UntrustedOutbound,
        K::ServiceTagReliance => wit::FindingKind::ServiceTagReliance,
        K::Rule => wit::FindingKind::Rule,
    }
}

fn finding_to_wit(f: record::Finding) -> wit::Finding {
    wit::Finding {
        index: f.index,
        kind: kind_to_wit(f.kind),
        rule: f.rule,
        severity: match f.severity {
            vocab::Severity::Info => wit::Severity::Info,
            vocab::Severity::Low => wit::Severity::Low,
            vocab::Severity::Medium => wit::Severity::Medium,
            vocab::Severity::High => wit::Severity::High,
            vocab::Severity::Critical => wit::Severity::Critical,
        },
        action: match f.action {
            vocab::Action::Allow => wit::Action::Allow,
            vocab::Action::Alert => wit::Action::Alert,
            vocab::Action::Deny => wit::Action::Deny,
        },
        line: f.line,
        reason: f.reason,
    }
}
