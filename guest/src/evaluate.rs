//! The evaluator: a rule image turned into match tables once, then applied to flows and
//! DNS answers. It keeps no state between records, so a batch can be split anywhere and
//! evaluated by any number of instances with the same result.

use crate::image::{AddressMatch, Image, PortRange, Rule, ServiceTag};
use crate::matching::{AddrIndex, AddrKey, NameIndex, NameSet, PrefixSet, is_private, normalize};
use crate::packed::{FlowBatch, NameRefs, PackedError};
use crate::record::{DnsAnswer, Finding, Flow};
use crate::text::{Either, Piece, text};
use crate::vocab::{Action, FindingKind, Severity};

/// The tag whose ranges are the services' own egress and public front ends.
pub const HEALTH_TAG: &str = "AzureHealthcareAPIs";

/// How a built-in check reports, after the policy's `[checks]` overrides.
#[derive(Clone, Copy, Debug)]
struct CheckConf {
    enabled: bool,
    severity: Severity,
    action: Action,
}

fn default_check(kind: FindingKind) -> CheckConf {
    let severity = match kind {
        FindingKind::DnsPublicResolution => Severity::Medium,
        FindingKind::ServiceTagReliance => Severity::Low,
        FindingKind::Rule => Severity::Medium,
        _ => Severity::High,
    };
    let action = match kind {
        FindingKind::ServiceTagReliance => Action::Allow,
        _ => Action::Alert,
    };
    CheckConf {
        enabled: true,
        severity,
        action,
    }
}

struct CompiledRule {
    protocol: Option<u8>,
    src: Clause,
    dst: Clause,
    src_ports: Vec<PortRange>,
    dst_ports: Vec<PortRange>,
    names: Option<NameSet>,
}

/// One side (source or destination) of a rule: literal prefixes and service-tag prefixes
/// kept apart, so the evaluator can tell a flow matched only through a tag.
struct Clause {
    any: bool,
    nets: PrefixSet,
    tags: PrefixSet,
}

/// How a clause matched an address.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClauseMatch {
    No,
    Literal,
    TagOnly,
}

impl Clause {
    fn new(specs: &[AddressMatch], tags: &[ServiceTag]) -> Clause {
        let mut nets = Vec::new();
        let mut tag_nets = Vec::new();
        for spec in specs {
            match spec {
                AddressMatch::Net(n) => nets.push(*n),
                AddressMatch::Tag(t) => {
                    tag_nets.extend(tags.get(*t as usize).into_iter().flat_map(|t| &t.ranges))
                }
            }
        }
        Clause {
            any: specs.is_empty(),
            nets: PrefixSet::new(&nets),
            tags: PrefixSet::new(tag_nets),
        }
    }

    /// Inlined: called twice per rule and flow, and a call costs more in the sandbox
    /// than the few compares of a small clause.
    #[inline(always)]
    fn matches(&self, addr: AddrKey) -> ClauseMatch {
        if self.any || self.nets.contains_key(addr) {
            ClauseMatch::Literal
        } else if self.tags.contains_key(addr) {
            ClauseMatch::TagOnly
        } else {
            ClauseMatch::No
        }
    }
}

/// Whether any of a flow's names (resolved name, SNI, HTTP Host) is in `names`.
#[inline(never)]
fn names_known(names: &NameSet, flow: &Flow<'_>) -> bool {
    flow.names()
        .into_iter()
        .flatten()
        .any(|n| names.contains(normalize(n).as_ref()))
}

fn ports_match(ranges: &[PortRange], port: u16) -> bool {
    ranges.is_empty() || ranges.iter().any(|r| r.first <= port && port <= r.last)
}

/// A flow's `src:port -> dst:port`, as rule findings print it.
struct Endpoints<'f, 'a>(&'f Flow<'a>);

impl Piece for Endpoints<'_, '_> {
    fn put(&self, out: &mut String) {
        let f = self.0;
        f.src.put(out);
        out.push(':');
        f.src_port.put(out);
        out.push_str(" -> ");
        f.dst.put(out);
        out.push(':');
        f.dst_port.put(out);
    }
}

/// A service name a flow was known by, and how the host learned it.
struct NamedService<'a> {
    service: usize,
    name: &'a str,
    how: &'static str,
}

/// The first of a flow's names (resolved name, SNI, HTTP Host: the order in which they
/// identify a flow's service) for which `service` finds a service, as
/// `(service index, name)`. One place for the order, whether the names come from the
/// flow itself or from a batch's name table.
#[inline(always)]
fn first_named<'a, T>(
    names: [Option<T>; 3],
    mut service: impl FnMut(T) -> Option<(usize, &'a str)>,
) -> Option<NamedService<'a>> {
    names
        .into_iter()
        .zip(["DNS name", "TLS SNI", "HTTP Host"])
        .find_map(|(name, how)| {
            let (service, name) = service(name?)?;
            Some(NamedService { service, name, how })
        })
}

pub struct Evaluator {
    image: Image,
    origins: PrefixSet,
    endpoint_subnet: PrefixSet,
    /// Service FQDNs and privatelink FQDNs → service index.
    service_names: NameIndex,
    private_ips: AddrIndex,
    public_ips: AddrIndex,
    health_tag: PrefixSet,
    trusted_names: NameSet,
    trusted_ranges: PrefixSet,
    rules: Vec<CompiledRule>,
    checks: [CheckConf; 8],
    untrusted_line: u32,
    health_tag_line: u32,
}

impl Evaluator {
    pub fn new(image: Image) -> Evaluator {
        let tag_sets: Vec<PrefixSet> = image
            .service_tags
            .iter()
            .map(|t| PrefixSet::new(&t.ranges))
            .collect();
        let health = image
            .service_tags
            .iter()
            .position(|t| t.name.eq_ignore_ascii_case(HEALTH_TAG));
        let services = image.services.iter().enumerate();
        let service_names = NameIndex::new(
            services
                .clone()
                .flat_map(|(i, s)| [(s.fqdn.clone(), i), (s.privatelink_fqdn.clone(), i)]),
        );
        let private_ips = AddrIndex::new(
            services
                .clone()
                .filter_map(|(i, s)| s.private_ip.map(|ip| (ip, i))),
        );
        let public_ips =
            AddrIndex::new(services.flat_map(|(i, s)| s.public_ips.iter().map(move |ip| (*ip, i))));
        let mut checks = FindingKind::ALL.map(default_check);
        for c in &image.checks {
            if let Some(slot) = checks.get_mut(c.kind as usize) {
                slot.enabled = c.enabled;
                if let Some(s) = c.severity {
                    slot.severity = s;
                }
                if let Some(a) = c.action {
                    slot.action = a;
                }
            }
        }
        let rules = image
            .rules
            .iter()
            .map(|r: &Rule| CompiledRule {
                protocol: r.protocol,
                src: Clause::new(&r.src, &image.service_tags),
                dst: Clause::new(&r.dst, &image.service_tags),
                src_ports: r.src_ports.clone(),
                dst_ports: r.dst_ports.clone(),
                names: (!r.names.is_empty()).then(|| NameSet::new(&r.names)),
            })
            .collect();
        Evaluator {
            origins: PrefixSet::new(&image.allowed_origins),
            endpoint_subnet: PrefixSet::new(image.endpoint_subnet.iter()),
            service_names,
            private_ips,
            public_ips,
            health_tag: health
                .and_then(|i| tag_sets.get(i).cloned())
                .unwrap_or_default(),
            health_tag_line: health
                .and_then(|i| image.service_tags.get(i))
                .map_or(0, |t| t.line),
            trusted_names: NameSet::new(image.trusted_outbound.iter().flat_map(|t| &t.names)),
            trusted_ranges: PrefixSet::new(image.trusted_outbound.iter().flat_map(|t| &t.ranges)),
            untrusted_line: image.trusted_outbound.first().map_or(0, |t| t.line),
            rules,
            checks,
            image,
        }
    }

    pub fn image(&self) -> &Image {
        &self.image
    }

    fn emit(
        &self,
        out: &mut Vec<Finding>,
        index: u32,
        kind: FindingKind,
        rule: &str,
        line: u32,
        reason: String,
    ) {
        let conf = self.checks[kind as usize];
        if conf.enabled {
            out.push(Finding {
                index,
                kind,
                rule: rule.to_string(),
                severity: conf.severity,
                action: conf.action,
                line,
                reason,
            });
        }
    }

    fn service_by_name<'a>(&self, flow: &Flow<'a>) -> Option<NamedService<'a>> {
        first_named(flow.names(), |name| {
            Some((self.service_names.get(name)?, name))
        })
    }

    /// [`Evaluator::service_by_name`] for a flow of a batch with a name table, from the
    /// services its names were found to be once per batch (`services`, by table position).
    fn service_by_ref<'a>(
        refs: NameRefs,
        names: &[&'a str],
        services: &[Option<usize>],
    ) -> Option<NamedService<'a>> {
        first_named([refs.resolved_name, refs.sni, refs.http_host], |r| {
            let r = r as usize;
            Some(((*services.get(r)?)?, *names.get(r)?))
        })
    }

    /// Evaluates a packed flow batch (see [`crate::packed`]), appending what
    /// [`Evaluator::evaluate_flow`] would for each flow. With a name table, each distinct
    /// name is matched against the services once for the batch instead of once per flow
    /// that carries it. A malformed batch is an error; findings of the flows read before
    /// the fault are left in `out`.
    pub fn evaluate_flow_batch(
        &self,
        batch: &[u8],
        out: &mut Vec<Finding>,
    ) -> Result<(), PackedError> {
        let bytes = batch.len();
        let batch = FlowBatch::parse(batch)?;
        // Room for a finding per eight flows without growing (most batches have fewer);
        // the announced count is the batch's word, so it is bounded by its size (a flow
        // takes more than 64 bytes in either layout).
        out.reserve((batch.len() as usize).min(bytes / 64) / 8);
        let names = batch.names();
        let services: Vec<Option<usize>> =
            names.iter().map(|n| self.service_names.get(n)).collect();
        batch.for_each(|index, flow, refs| {
            let named = match refs {
                Some(refs) => Self::service_by_ref(refs, names, &services),
                None => self.service_by_name(flow),
            };
            self.evaluate_named_flow(index, flow, named, out);
        })
    }

    /// Evaluates one flow; appends at most one finding per kind to `out`.
    pub fn evaluate_flow(&self, index: u32, flow: &Flow<'_>, out: &mut Vec<Finding>) {
        self.evaluate_named_flow(index, flow, self.service_by_name(flow), out);
    }

    /// [`Evaluator::evaluate_flow`] with the service the flow's names identify already
    /// found.
    #[inline(always)]
    fn evaluate_named_flow<'a>(
        &self,
        index: u32,
        flow: &Flow<'a>,
        named: Option<NamedService<'a>>,
        out: &mut Vec<Finding>,
    ) {
        let before = out.len();
        // Both addresses as integers once; every prefix test below reuses them.
        let (src, dst) = (AddrKey::of(flow.src), AddrKey::of(flow.dst));
        let src_allowed = self.origins.contains_key(src);
        let dst_public = !dst.is_private();
        let by_public_ip = self.public_ips.get(flow.dst);
        // Flow logs carry no names: an address in the health tag's ranges stands in.
        let inferred_by_tag = flow.from_flow_log
            && named.is_none()
            && dst_public
            && self.health_tag.contains_key(dst);

        // pe-bypass: an allowed client reaches a service somewhere other than its endpoint.
        if src_allowed {
            if let Some(n) = &named
                && let Some(svc) = self.image.services.get(n.service)
                && svc.private_ip != Some(flow.dst)
            {
                let endpoint = match svc.private_ip {
                    Some(ip) => Either::Left(ip),
                    None => Either::Right("none is configured"),
                };
                self.emit(
                    out,
                    index,
                    FindingKind::PeBypass,
                    "pe-bypass",
                    svc.line,
                    text!(
                        flow.src,
                        " reached ",
                        n.name,
                        " (by ",
                        n.how,
                        ") at ",
                        flow.dst,
                        ", not at its private endpoint (",
                        endpoint,
                        ")"
                    ),
                );
            } else if named.is_none() && (by_public_ip.is_some() || inferred_by_tag) {
                let (what, line) = match by_public_ip.and_then(|i| self.image.services.get(i)) {
                    Some(svc) => (
                        Either::Left(("public address of ", svc.fqdn.as_str())),
                        svc.line,
                    ),
                    None => (Either::Right((HEALTH_TAG, " range")), self.health_tag_line),
                };
                self.emit(
                    out,
                    index,
                    FindingKind::PeBypass,
                    "pe-bypass",
                    line,
                    text!(
                        flow.src,
                        " reached ",
                        flow.dst,
                        " (",
                        what,
                        "), inferred from the address: flow logs carry no names"
                    ),
                );
            }
        }

        // public-access: outsiders reach a service's public front end although public
        // network access is disabled.
        if !src_allowed && self.image.public_network_access_disabled && dst_public {
            let target = named
                .as_ref()
                .map(|n| Either::Left((n.name, " (by ", n.how, ")")))
                .or_else(|| {
                    by_public_ip
                        .and_then(|i| self.image.services.get(i))
                        .map(|s| {
                            Either::Right(Either::Left((s.fqdn.as_str(), " (its public address)")))
                        })
                })
                .or_else(|| {
                    (inferred_by_tag && !self.health_tag.contains_key(src)).then_some(
                        Either::Right(Either::Right((
                            "the ",
                            HEALTH_TAG,
                            " range, inferred from the address",
                        ))),
                    )
                });
            if let Some(target) = target {
                self.emit(
                    out,
                    index,
                    FindingKind::PublicAccess,
                    "public-access",
                    self.image.public_network_access_line,
                    text!(
                        flow.src,
                        " from outside the allowed origins reached ",
                        target,
                        " at public address ",
                        flow.dst,
                        " while public network access is disabled"
                    ),
                );
            }
        }

        // origin-not-allowed: the private endpoint is reached from elsewhere.
        if !src_allowed {
            let service = self
                .private_ips
                .get(flow.dst)
                .and_then(|i| self.image.services.get(i));
            if service.is_some() || self.endpoint_subnet.contains_key(dst) {
                let what = match service {
                    Some(s) => Either::Left(("the private endpoint of ", s.fqdn.as_str())),
                    None => Either::Right("the private-endpoint subnet"),
                };
                self.emit(
                    out,
                    index,
                    FindingKind::OriginNotAllowed,
                    "origin-not-allowed",
                    self.image.allowed_origins_line,
                    text!(
                        flow.src,
                        " is outside the allowed origins but reached ",
                        what,
                        " at ",
                        flow.dst
                    ),
                );
            }
        }

        // untrusted-outbound: the services' own egress to a target nobody allowed.
        if dst_public && self.health_tag.contains_key(src) && !self.health_tag.contains_key(dst) {
            let trusted =
                names_known(&self.trusted_names, flow) || self.trusted_ranges.contains_key(dst);
            if !trusted {
                let target = match flow.names().into_iter().flatten().next() {
                    Some(n) => Either::Left((n, " (", flow.dst, ")")),
                    None => Either::Right(flow.dst),
                };
                self.emit(
                    out,
                    index,
                    FindingKind::UntrustedOutbound,
                    "untrusted-outbound",
                    if self.untrusted_line != 0 {
                        self.untrusted_line
                    } else {
                        self.health_tag_line
                    },
                    text!(
                        "service egress from ",
                        flow.src,
                        " to ",
                        target,
                        " is not a trusted-outbound target"
                    ),
                );
            }
        }

        self.evaluate_rules(index, flow, (src, dst), named.as_ref(), out, before);
    }

    fn evaluate_rules(
        &self,
        index: u32,
        flow: &Flow<'_>,
        keys: (AddrKey, AddrKey),
        named: Option<&NamedService<'_>>,
        out: &mut Vec<Finding>,
        before: usize,
    ) {
        match self.first_matching_rule(flow, keys) {
            Some((rule, src, dst)) => self.rule_spoke(rule, (src, dst), index, flow, named, out),
            None => self.default_action(index, flow, out, before),
        }
    }

    /// The first rule that matches `flow`, with how its two clauses matched.
    ///
    /// Kept apart from what the rule then says, so that this loop holds only the few
    /// values it compares. With the findings' text in the same function, the compiled
    /// module loaded about twenty of the flow's fields into stack slots on every call
    /// and read them back on every rule; the rule scan cost three times its native time,
    /// and a batch in the sandbox takes 7 % less time with the scan on its own
    /// (`guest_batch`, `sandbox_packed/256`).
    #[inline(never)]
    fn first_matching_rule(
        &self,
        flow: &Flow<'_>,
        (src_key, dst_key): (AddrKey, AddrKey),
    ) -> Option<(usize, ClauseMatch, ClauseMatch)> {
        for (i, compiled) in self.rules.iter().enumerate() {
            if compiled.protocol.is_some_and(|p| p != flow.protocol)
                || !ports_match(&compiled.dst_ports, flow.dst_port)
                || !ports_match(&compiled.src_ports, flow.src_port)
            {
                continue;
            }
            let src = compiled.src.matches(src_key);
            if src == ClauseMatch::No {
                continue;
            }
            let dst = compiled.dst.matches(dst_key);
            if dst == ClauseMatch::No {
                continue;
            }
            if let Some(names) = &compiled.names
                && !names_known(names, flow)
            {
                continue;
            }
            return Some((i, src, dst));
        }
        None
    }

    /// What rule `rule`, the first to match `flow`, says about it.
    #[inline(never)]
    fn rule_spoke(
        &self,
        rule: usize,
        (src, dst): (ClauseMatch, ClauseMatch),
        index: u32,
        flow: &Flow<'_>,
        named: Option<&NamedService<'_>>,
        out: &mut Vec<Finding>,
    ) {
        let Some(rule) = self.image.rules.get(rule) else {
            return;
        };
        match rule.action {
            Action::Allow => {
                if src == ClauseMatch::TagOnly || dst == ClauseMatch::TagOnly {
                    self.emit(
                        out,
                        index,
                        FindingKind::ServiceTagReliance,
                        &rule.id,
                        rule.line,
                        text!(
                            "allowed by rule ",
                            rule.id,
                            " only through a service tag, which gives no isolation between customers, workspaces or services"
                        ),
                    );
                }
            }
            Action::Alert | Action::Deny => {
                let conf = self.checks[FindingKind::Rule as usize];
                if conf.enabled {
                    let reason = rule.description.clone().unwrap_or_else(|| {
                        let service = named
                            .and_then(|n| self.image.services.get(n.service))
                            .map(|s| (" (", s.fqdn.as_str(), ")"));
                        text!(
                            "rule ",
                            rule.id,
                            " (",
                            rule.action.id(),
                            ") matched ",
                            Endpoints(flow),
                            service
                        )
                    });
                    out.push(Finding {
                        index,
                        kind: FindingKind::Rule,
                        rule: rule.id.clone(),
                        severity: rule.severity,
                        action: rule.action,
                        line: rule.line,
                        reason,
                    });
                }
            }
        }
    }

    /// No rule spoke: the default action applies to traffic no check spoke of either.
    fn default_action(&self, index: u32, flow: &Flow<'_>, out: &mut Vec<Finding>, before: usize) {
        if let Some(action @ (Action::Alert | Action::Deny)) = self.image.default_action
            && out.len() == before
        {
            self.default_action_finding(action, index, flow, out);
        }
    }

    #[inline(never)]
    fn default_action_finding(
        &self,
        action: Action,
        index: u32,
        flow: &Flow<'_>,
        out: &mut Vec<Finding>,
    ) {
        self.emit(
            out,
            index,
            FindingKind::Rule,
            "default-action",
            self.image.default_action_line,
            text!(
                "no rule matched ",
                Endpoints(flow),
                "; the default action is ",
                action.id()
            ),
        );
        if let Some(last) = out.last_mut() {
            last.action = action;
        }
    }

    /// Evaluates one DNS answer; appends at most one finding per kind to `out`.
    pub fn evaluate_dns(&self, index: u32, answer: &DnsAnswer<'_>, out: &mut Vec<Finding>) {
        let query = normalize(answer.query);
        let Some(svc) = self
            .service_names
            .get(&query)
            .and_then(|i| self.image.services.get(i))
        else {
            return;
        };
        if answer.addresses.is_empty() {
            return;
        }
        let through_privatelink = query == svc.privatelink_fqdn
            || answer
                .cname_chain
                .iter()
                .any(|c| normalize(c) == svc.privatelink_fqdn.as_str());
        let public: Vec<String> = answer
            .addresses
            .iter()
            .filter(|a| !is_private(**a))
            .map(ToString::to_string)
            .collect();
        if !through_privatelink || !public.is_empty() {
            let how = match (through_privatelink, public.is_empty()) {
                (false, false) => format!(
                    "resolved to public address {} without the {} CNAME",
                    public.join(", "),
                    svc.privatelink_fqdn
                ),
                (false, true) => format!("resolved without the {} CNAME", svc.privatelink_fqdn),
                _ => format!("resolved to public address {}", public.join(", ")),
            };
            self.emit(
                out,
                index,
                FindingKind::DnsPublicResolution,
                "dns-public-resolution",
                svc.line,
                format!("{} asked for {}: {how}", answer.client, svc.fqdn),
            );
        }
        let conflicting: Vec<String> = answer
            .addresses
            .iter()
            .filter(|a| is_private(**a) && Some(**a) != svc.private_ip)
            .map(ToString::to_string)
            .collect();
        if !conflicting.is_empty() {
            let expected = svc
                .private_ip
                .map_or_else(|| "no private address".to_string(), |ip| ip.to_string());
            self.emit(
                out,
                index,
                FindingKind::DnsConflict,
                "dns-conflict",
                svc.line,
                format!(
                    "{} resolved {} to private address {}, but its private endpoint is {expected}",
                    answer.client,
                    svc.fqdn,
                    conflicting.join(", ")
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{Service, ServiceTag, TrustedOutbound};
    use crate::record::{DnsAnswer, Flow};
    use crate::vocab::{Feature, ServiceKind};
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn image() -> Image {
        Image {
            workspace: "fabrikam".into(),
            public_network_access_disabled: true,
            public_network_access_line: 8,
            services: vec![Service {
                kind: ServiceKind::Fhir,
                name: "records".into(),
                fqdn: "fabrikam-records.fhir.azurehealthcareapis.com".into(),
                privatelink_fqdn: "fabrikam-records.privatelink.fhir.azurehealthcareapis.com"
                    .into(),
                private_ip: Some(ip("10.1.2.5")),
                public_ips: vec![],
                line: 11,
            }],
            allowed_origins: vec!["10.1.0.0/16".parse().unwrap()],
            allowed_origins_line: 24,
            endpoint_subnet: Some("10.1.2.0/24".parse().unwrap()),
            service_tags: vec![ServiceTag {
                name: HEALTH_TAG.into(),
                ranges: vec!["20.37.0.0/16".parse().unwrap()],
                line: 31,
            }],
            trusted_outbound: vec![TrustedOutbound {
                service: 0,
                feature: Feature::Export,
                names: vec!["*.blob.core.windows.net".into()],
                ranges: vec![],
                line: 33,
            }],
            rules: vec![
                Rule {
                    id: "no-smb".into(),
                    action: Action::Deny,
                    protocol: Some(6),
                    src: vec![],
                    dst: vec![],
                    src_ports: vec![],
                    dst_ports: vec![PortRange {
                        first: 445,
                        last: 445,
                    }],
                    names: vec![],
                    severity: Severity::High,
                    description: None,
                    line: 38,
                },
                Rule {
                    id: "tag-to-apps".into(),
                    action: Action::Allow,
                    protocol: None,
                    src: vec![AddressMatch::Tag(0)],
                    dst: vec![AddressMatch::Net("10.1.0.0/16".parse().unwrap())],
                    src_ports: vec![],
                    dst_ports: vec![],
                    names: vec![],
                    severity: Severity::Medium,
                    description: None,
                    line: 46,
                },
            ],
            default_action: Some(Action::Allow),
            ..Image::default()
        }
    }

    fn flow(src: &str, dst: &str, port: u16) -> Flow<'static> {
        Flow {
            src: ip(src),
            dst: ip(dst),
            src_port: 50000,
            dst_port: port,
            protocol: 6,
            from_flow_log: false,
            denied_by_nsg: false,
            resolved_name: None,
            sni: None,
            http_host: None,
            packets: 1,
            bytes: 60,
            first_seen_ns: 0,
            last_seen_ns: 0,
        }
    }

    fn kinds(e: &Evaluator, f: &Flow<'_>) -> Vec<FindingKind> {
        let mut out = Vec::new();
        e.evaluate_flow(7, f, &mut out);
        assert!(out.iter().all(|x| x.index == 7));
        out.iter().map(|x| x.kind).collect()
    }

    #[test]
    fn names_in_any_case_identify_the_service() {
        let e = Evaluator::new(image());
        let mut f = flow("10.1.5.9", "20.37.1.10", 443);
        f.sni = Some("Fabrikam-Records.FHIR.azurehealthcareapis.com.");
        assert_eq!(kinds(&e, &f), vec![FindingKind::PeBypass]);
        f.dst = ip("10.1.2.5");
        assert_eq!(kinds(&e, &f), vec![]);
    }

    #[test]
    fn one_finding_per_kind_and_the_first_rule_decides() {
        let e = Evaluator::new(image());
        let mut f = flow("10.1.5.9", "20.37.1.10", 445);
        f.http_host = Some("fabrikam-records.fhir.azurehealthcareapis.com");
        let mut out = Vec::new();
        e.evaluate_flow(0, &f, &mut out);
        let found: Vec<_> = out
            .iter()
            .map(|x| (x.kind, x.rule.as_str(), x.line))
            .collect();
        assert_eq!(
            found,
            vec![
                (FindingKind::PeBypass, "pe-bypass", 11),
                (FindingKind::Rule, "no-smb", 38)
            ]
        );
        assert_eq!(out[1].action, Action::Deny);
    }

    #[test]
    fn tag_only_allow_warns_and_trusted_targets_are_quiet() {
        let e = Evaluator::new(image());
        assert_eq!(
            kinds(&e, &flow("20.37.4.4", "10.1.3.3", 443)),
            vec![FindingKind::ServiceTagReliance]
        );
        let mut out = flow("20.37.4.4", "52.1.1.1", 443);
        assert_eq!(kinds(&e, &out), vec![FindingKind::UntrustedOutbound]);
        out.sni = Some("fabrikamexport.blob.core.windows.net");
        assert_eq!(kinds(&e, &out), vec![]);
    }

    #[test]
    fn origins_and_public_access() {
        let e = Evaluator::new(image());
        assert_eq!(
            kinds(&e, &flow("192.168.1.1", "10.1.2.5", 443)),
            vec![FindingKind::OriginNotAllowed]
        );
        let mut f = flow("198.51.100.7", "20.37.1.10", 443);
        f.resolved_name = Some("fabrikam-records.fhir.azurehealthcareapis.com");
        assert_eq!(kinds(&e, &f), vec![FindingKind::PublicAccess]);
        let mut inferred = flow("10.1.5.9", "20.37.1.10", 443);
        inferred.from_flow_log = true;
        assert_eq!(kinds(&e, &inferred), vec![FindingKind::PeBypass]);
    }

    #[test]
    fn dns_answers() {
        let e = Evaluator::new(image());
        let check = |chain: Vec<&'static str>, addrs: &[&str]| {
            let a = DnsAnswer {
                client: ip("10.1.5.9"),
                server: ip("10.1.0.4"),
                query: "fabrikam-records.fhir.azurehealthcareapis.com",
                cname_chain: chain,
                addresses: addrs.iter().map(|s| ip(s)).collect(),
                ttl: 10,
                timestamp_ns: 0,
            };
            let mut out = Vec::new();
            e.evaluate_dns(0, &a, &mut out);
            out.iter().map(|x| x.kind).collect::<Vec<_>>()
        };
        let pl = "fabrikam-records.privatelink.fhir.azurehealthcareapis.com";
        assert_eq!(check(vec![pl], &["10.1.2.5"]), vec![]);
        assert_eq!(
            check(vec![], &["20.37.1.10"]),
            vec![FindingKind::DnsPublicResolution]
        );
        assert_eq!(
            check(vec![pl], &["10.9.9.9"]),
            vec![FindingKind::DnsConflict]
        );
        assert_eq!(check(vec![], &[]), vec![]);
    }

    #[test]
    fn a_packed_batch_finds_what_each_flow_finds() {
        use crate::packed::FlowBatchWriter;
        let e = Evaluator::new(image());
        let fhir = "fabrikam-records.fhir.azurehealthcareapis.com";
        let mut flows = Vec::new();
        for (i, (src, dst, port)) in [
            ("10.1.5.9", "20.37.1.10", 443),
            ("10.1.5.9", "10.1.2.5", 443),
            ("198.51.100.7", "20.37.1.10", 443),
            ("192.168.1.1", "10.1.2.5", 445),
            ("20.37.4.4", "52.1.1.1", 443),
            ("20.37.4.4", "10.1.3.3", 443),
        ]
        .into_iter()
        .enumerate()
        {
            // The same names in several spellings, and in different slots.
            for name in [
                Some(fhir),
                Some("Fabrikam-Records.FHIR.azurehealthcareapis.com."),
                None,
            ] {
                let mut f = flow(src, dst, port);
                match i % 3 {
                    0 => f.sni = name,
                    1 => f.http_host = name,
                    _ => (f.resolved_name, f.sni) = (Some("other.example"), name),
                }
                flows.push(f);
            }
        }
        let mut expected = Vec::new();
        for (i, f) in flows.iter().enumerate() {
            e.evaluate_flow(i as u32, f, &mut expected);
        }
        assert!(expected.len() > flows.len() / 2, "{expected:?}");
        let mut w = FlowBatchWriter::new();
        for f in &flows {
            w.push(f, &[fhir]);
        }
        let mut got = Vec::new();
        e.evaluate_flow_batch(w.bytes(), &mut got).unwrap();
        assert_eq!(got, expected);

        let mut bad = w.bytes().to_vec();
        bad.truncate(bad.len() - 1);
        assert!(e.evaluate_flow_batch(&bad, &mut Vec::new()).is_err());
    }

    #[test]
    fn checks_can_be_turned_off_or_rated() {
        let mut img = image();
        img.checks = vec![
            crate::image::CheckSetting {
                kind: FindingKind::OriginNotAllowed,
                enabled: false,
                severity: None,
                action: None,
                line: 50,
            },
            crate::image::CheckSetting {
                kind: FindingKind::UntrustedOutbound,
                enabled: true,
                severity: Some(Severity::Critical),
                action: Some(Action::Deny),
                line: 52,
            },
        ];
        let e = Evaluator::new(img);
        assert_eq!(kinds(&e, &flow("192.168.1.1", "10.1.2.5", 443)), vec![]);
        let mut out = Vec::new();
        e.evaluate_flow(0, &flow("20.37.4.4", "52.1.1.1", 443), &mut out);
        assert_eq!(
            (out[0].severity, out[0].action),
            (Severity::Critical, Action::Deny)
        );
    }
}
