//! Lints: things a valid policy says that weaken the isolation it is meant to give.
//!
//! Each lint is a warning [`Diagnostic`] with a stable code:
//!
//! | code | when |
//! |---|---|
//! | `service-tag-reliance` | a service tag is declared, used by a rule, or covered by trusted-outbound target ranges: its ranges are shared by every customer |
//! | `service-endpoints-on-pe-subnet` | service endpoints are enabled on the private-endpoint subnet |
//! | `dns-zone-multiple-vnets` | a private DNS zone is linked to more than one VNet |
//! | `service-without-private-ip` | a FHIR or DICOM service has no private IP |
//! | `shadowed-rule` | an earlier rule matches everything a later rule matches, so the later one never applies |
//! | `overlapping-cidrs` | two ranges of `allowed-origins`, or of one rule's `src` or `dst`, overlap |
//!
//! The shadowing check is conservative: it reports a rule only when one earlier rule alone
//! covers it (each of the later rule's ranges, ports and names inside one of the earlier
//! rule's), so every report is certain, while a rule covered only by several earlier rules
//! together goes unreported.

use crate::diagnostic::Diagnostic;
use crate::model::{AddressSpec, Location, Policy, PortRange, Rule};
use ipnet::IpNet;
use linkward_guest::vocab::ServiceKind;

/// The tag Azure Health Data Services publishes its addresses under.
const AHDS_TAG: &str = "AzureHealthcareAPIs";

/// Runs every lint over a validated policy; `file` names it in the diagnostics.
/// The warnings come in source order.
pub fn lint(policy: &Policy, file: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut warn = |code: &'static str, at: Location, message: String| {
        out.push(Diagnostic::warning(code, file, at, message));
    };
    service_tags(policy, &mut warn);
    if let Some(endpoint) = &policy.private_endpoint {
        if !endpoint.service_endpoints.is_empty() {
            warn(
                "service-endpoints-on-pe-subnet",
                endpoint.service_endpoints_at,
                format!(
                    "service endpoints ({}) are enabled on the private-endpoint subnet {}: \
                     they must not be, traffic to those services then leaves through the \
                     service endpoint instead of the private link",
                    endpoint.service_endpoints.join(", "),
                    endpoint.subnet
                ),
            );
        }
        overlaps(
            &endpoint.allowed_origins,
            "allowed-origins",
            endpoint.allowed_origins_at,
            &mut warn,
        );
    }
    for zone in &policy.dns_zones {
        if zone.linked_vnets.len() > 1 {
            warn(
                "dns-zone-multiple-vnets",
                zone.at,
                format!(
                    "DNS zone `{}` is linked to {} VNets ({}): resolution can conflict between \
                     them and clients get 403 from the service",
                    zone.zone,
                    zone.linked_vnets.len(),
                    zone.linked_vnets.join(", ")
                ),
            );
        }
    }
    for service in &policy.workspace.services {
        if service.private_ip.is_none() && service.kind != ServiceKind::Medtech {
            warn(
                "service-without-private-ip",
                service.at,
                format!(
                    "{} service `{}` has no `private-ip`: bypasses of its private endpoint \
                     and DNS answers pointing elsewhere cannot be recognized",
                    service.kind.id(),
                    service.name
                ),
            );
        }
    }
    for (index, rule) in policy.rules.iter().enumerate() {
        let earlier = policy.rules.get(..index).unwrap_or(&[]);
        if let Some(cover) = earlier.iter().find(|e| covers(policy, e, rule)) {
            warn(
                "shadowed-rule",
                rule.at,
                format!(
                    "rule `{}` is shadowed by rule `{}` (line {}), which matches everything \
                     it matches: it never applies",
                    rule.id, cover.id, cover.at.line
                ),
            );
        }
        for (list, key) in [(&rule.src, "src"), (&rule.dst, "dst")] {
            let nets: Vec<IpNet> = list
                .iter()
                .filter_map(|spec| match spec {
                    AddressSpec::Net(net) => Some(*net),
                    AddressSpec::Tag(_) => None,
                })
                .collect();
            overlaps(
                &nets,
                &format!("`{key}` of rule `{}`", rule.id),
                rule.at,
                &mut warn,
            );
        }
    }
    out.sort_by_key(|d| d.location);
    out
}

fn tag_warning(tag: &str) -> String {
    format!(
        "the {tag} service tag is shared by all customers: it gives no isolation between \
         customers, workspaces or services"
    )
}

fn service_tags(policy: &Policy, warn: &mut impl FnMut(&'static str, Location, String)) {
    // A tag file declares every tag in it; only the ones the policy uses, plus the AHDS
    // tag itself, are worth a warning at the declaration.
    let used = |name: &str| {
        name == AHDS_TAG
            || policy.rules.iter().any(|r| {
                r.src
                    .iter()
                    .chain(&r.dst)
                    .any(|s| matches!(s, AddressSpec::Tag(t) if t == name))
            })
            || policy.trusted_outbound.iter().any(|t| {
                policy
                    .service_tags
                    .iter()
                    .any(|tag| tag.name == name && covers_all(&t.target_ranges, &tag.ranges))
            })
    };
    for tag in &policy.service_tags {
        if used(&tag.name) {
            warn(
                "service-tag-reliance",
                tag.at,
                format!(
                    "service tag `{}` declared: {}",
                    tag.name,
                    tag_warning(&tag.name)
                ),
            );
        }
    }
    for rule in &policy.rules {
        for (list, key) in [(&rule.src, "src"), (&rule.dst, "dst")] {
            for spec in list {
                if let AddressSpec::Tag(name) = spec {
                    warn(
                        "service-tag-reliance",
                        rule.at,
                        format!(
                            "rule `{}` relies on `tag:{name}` in `{key}`: {}",
                            rule.id,
                            tag_warning(name)
                        ),
                    );
                }
            }
        }
    }
    for trusted in &policy.trusted_outbound {
        for tag in &policy.service_tags {
            if covers_all(&trusted.target_ranges, &tag.ranges) {
                warn(
                    "service-tag-reliance",
                    trusted.at,
                    format!(
                        "trusted-outbound for `{}` ({}) allows all of service tag `{}`: {}",
                        trusted.service,
                        trusted.feature.id(),
                        tag.name,
                        tag_warning(&tag.name)
                    ),
                );
            }
        }
    }
}

/// Whether `list` holds every range of a (non-empty) tag: that is what `tag:Name` in
/// `target-ranges` expands to, and writing the same ranges out by hand relies on the tag
/// just as much.
fn covers_all(list: &[IpNet], tag_ranges: &[IpNet]) -> bool {
    !tag_ranges.is_empty()
        && tag_ranges
            .iter()
            .all(|range| list.iter().any(|net| net.contains(range)))
}

fn overlaps(
    nets: &[IpNet],
    what: &str,
    at: Location,
    warn: &mut impl FnMut(&'static str, Location, String),
) {
    for (i, a) in nets.iter().enumerate() {
        for b in nets.iter().skip(i + 1) {
            if a.contains(b) || b.contains(a) {
                let relation = if a == b { "repeats" } else { "overlaps" };
                warn(
                    "overlapping-cidrs",
                    at,
                    format!("in {what}, {b} {relation} {a}"),
                );
            }
        }
    }
}

/// Whether every flow `later` matches is also matched by `earlier`.
fn covers(policy: &Policy, earlier: &Rule, later: &Rule) -> bool {
    let protocol = match (earlier.protocol, later.protocol) {
        (None, _) => true,
        (Some(a), Some(b)) => a == b,
        (Some(_), None) => false,
    };
    protocol
        && addresses_cover(policy, &earlier.src, &later.src)
        && addresses_cover(policy, &earlier.dst, &later.dst)
        && ports_cover(&earlier.src_ports, &later.src_ports)
        && ports_cover(&earlier.dst_ports, &later.dst_ports)
        && names_cover(&earlier.names, &later.names)
}

/// Expands specs to ranges. Empty means "any".
fn expand(policy: &Policy, specs: &[AddressSpec]) -> Vec<IpNet> {
    specs
        .iter()
        .flat_map(|spec| match spec {
            AddressSpec::Net(net) => vec![*net],
            AddressSpec::Tag(name) => policy
                .service_tags
                .iter()
                .find(|t| &t.name == name)
                .map(|t| t.ranges.clone())
                .unwrap_or_default(),
        })
        .collect()
}

fn addresses_cover(policy: &Policy, earlier: &[AddressSpec], later: &[AddressSpec]) -> bool {
    if earlier.is_empty() {
        return true;
    }
    if later.is_empty() {
        return false;
    }
    let outer = expand(policy, earlier);
    expand(policy, later)
        .iter()
        .all(|net| outer.iter().any(|o| o.contains(net)))
}

fn ports_cover(earlier: &[PortRange], later: &[PortRange]) -> bool {
    if earlier.is_empty() {
        return true;
    }
    if later.is_empty() {
        return false;
    }
    later.iter().all(|l| {
        earlier
            .iter()
            .any(|e| e.first <= l.first && l.last <= e.last)
    })
}

fn names_cover(earlier: &[String], later: &[String]) -> bool {
    if earlier.is_empty() {
        return true;
    }
    if later.is_empty() {
        return false;
    }
    later
        .iter()
        .all(|l| earlier.iter().any(|e| name_covers(e, l)))
}

/// Whether pattern `outer` (a name or `*.suffix`) matches every name `inner` matches.
fn name_covers(outer: &str, inner: &str) -> bool {
    match outer.strip_prefix("*.") {
        None => outer == inner,
        Some(_) if outer == inner => true,
        Some(suffix) => {
            let inner_name = inner.strip_prefix("*.").unwrap_or(inner);
            inner_name
                .strip_suffix(suffix)
                .is_some_and(|head| head.ends_with('.'))
        }
    }
}
