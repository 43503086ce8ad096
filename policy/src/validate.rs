//! Checking a policy source and building the validated [`Policy`] from it.
//!
//! [`check_source`] reads the TOML, checks every table, key and value, checks the
//! relations between them (services inside the endpoint subnet, rules naming declared
//! service tags, trusted-outbound naming real services, …) and, when nothing is wrong,
//! runs the lints. It reports every problem it can find in one pass, so an author fixes a
//! file in one round instead of one error at a time. It never panics, whatever the input.
//!
//! ```
//! use linkward_policy::validate::check_source;
//!
//! let checked = check_source("p.toml", "[policy]\nname = \"p\"\n", None);
//! assert!(checked.policy.is_none());
//! assert_eq!(checked.diagnostics[0].to_string(), "p.toml:1:1: error[missing-key]: [policy] has no `version`");
//! ```
//!
//! The language itself is described in `docs/policy-language.md`.

use crate::cases;
use crate::diagnostic::Diagnostic;
use crate::lint;
use crate::model::{
    AddressSpec, CheckSetting, DnsZone, Location, Policy, PortRange, PrivateEndpoint, Rule,
    Service, ServiceTag, TrustedOutbound, Workspace,
};
use crate::parse::{self, Reader, Table};
use crate::servicetags;
use ipnet::IpNet;
use linkward_guest::vocab::{Action, Feature, FindingKind, ServiceKind, Severity};
use serde_spanned::Spanned;
use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;
use toml::de::DeValue;

/// The outcome of checking one policy source.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    /// The validated policy; `None` when any diagnostic is an error.
    pub policy: Option<Policy>,
    /// Errors and lint warnings, sorted by location.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks the policy `text`, naming it `file` in diagnostics.
///
/// `base_dir` is the directory relative paths inside the policy (`[service-tags] file`)
/// are resolved against, normally the policy file's directory; without it they are used
/// as written, that is relative to the working directory.
pub fn check_source(file: &str, text: &str, base_dir: Option<&Path>) -> Checked {
    let mut reader = Reader::new(file, text);
    let policy = match parse::parse_document(&mut reader, text) {
        Some(document) => {
            let root = Table::new(&document, 0..0, "the policy".to_owned());
            read_policy(&mut reader, &root, base_dir)
        }
        None => None,
    };
    let policy = if reader.has_errors() { None } else { policy };
    let mut diagnostics = reader.into_diagnostics();
    if let Some(policy) = &policy {
        diagnostics.extend(lint::lint(policy, file));
    }
    diagnostics.sort_by_key(|d| d.location);
    Checked {
        policy,
        diagnostics,
    }
}

/// Reads and checks the policy file at `path`. Only reading the file can fail; problems in
/// its content are diagnostics. Returns the source text too, for [`Diagnostic::render`].
pub fn check_file(path: &Path) -> Result<(String, Checked), std::io::Error> {
    let text = std::fs::read_to_string(path)?;
    let base_dir = path.parent();
    let checked = check_source(&path.display().to_string(), &text, base_dir);
    Ok((text, checked))
}

const ROOT_KEYS: &[&str] = &[
    "policy",
    "workspace",
    "private-endpoint",
    "dns-zones",
    "service-tags",
    "trusted-outbound",
    "rules",
    "checks",
    "self-test",
];
const POLICY_KEYS: &[&str] = &["name", "version", "default-action"];
const WORKSPACE_KEYS: &[&str] = &["name", "public-network-access", "services"];
const SERVICE_KEYS: &[&str] = &["kind", "name", "private-ip", "public-ips"];
const ENDPOINT_KEYS: &[&str] = &["vnet", "subnet", "allowed-origins", "service-endpoints"];
const ZONE_KEYS: &[&str] = &["zone", "linked-vnets"];
const TRUSTED_KEYS: &[&str] = &["service", "feature", "targets", "target-ranges"];
const RULE_KEYS: &[&str] = &[
    "id",
    "action",
    "protocol",
    "src",
    "dst",
    "src-ports",
    "dst-ports",
    "names",
    "severity",
    "description",
];
const CHECK_KEYS: &[&str] = &["enabled", "severity", "action"];
const ACTIONS: &[&str] = &["allow", "alert", "deny"];
const SEVERITIES: &[&str] = &["info", "low", "medium", "high", "critical"];
const SERVICE_KINDS: &[&str] = &["fhir", "dicom", "medtech"];
const ACCESS: &[&str] = &["enabled", "disabled"];

fn read_policy(
    reader: &mut Reader<'_>,
    root: &Table<'_, '_>,
    base_dir: Option<&Path>,
) -> Option<Policy> {
    root.check_keys(reader, ROOT_KEYS);
    let header = required_table(reader, root, "policy").and_then(|t| read_header(reader, &t));
    let workspace = required_table(reader, root, "workspace").map(|t| read_workspace(reader, &t));
    // `None`: not a table (reported); `Some(None)`: no endpoint declared.
    let endpoint = match root.get("private-endpoint") {
        Some(_) => root
            .table(reader, "private-endpoint")
            .map(|t| Some(read_private_endpoint(reader, &t))),
        None => Some(None),
    };
    let dns_zones = read_dns_zones(reader, root);
    let tags = read_service_tags(reader, root, base_dir);
    let service_names: &[String] = workspace.as_ref().map_or(&[], |w| &w.service_names);
    let trusted_outbound = read_trusted_outbound(reader, root, service_names, &tags);
    let rules = read_rules(reader, root, &tags);
    let checks = read_checks(reader, root);
    let self_test_tables = root.tables(reader, "self-test");
    let self_tests = cases::read_cases(reader, &self_test_tables);

    // Relations between sections.
    let subnet = endpoint.as_ref().and_then(|e| e.as_ref()?.subnet);
    if let (Some(workspace), Some(subnet)) = (&workspace, subnet) {
        for (ip, span, service) in &workspace.private_ips {
            if !subnet.contains(ip) {
                reader.error_expected(
                    "ip-outside-subnet",
                    span,
                    format!(
                        "private IP {ip} of service `{service}` is outside the endpoint subnet {subnet}"
                    ),
                    format!("an address inside {subnet}"),
                );
            }
        }
    }

    let (name, version, default_action, default_action_at) = header?;
    let workspace = workspace?;
    let private_endpoint = match endpoint? {
        None => None,
        Some(part) => Some(part.endpoint?),
    };
    Some(Policy {
        name,
        version,
        default_action,
        default_action_at,
        workspace: Workspace {
            name: workspace.name?,
            public_network_access_disabled: workspace.access?,
            public_network_access_at: workspace.access_at,
            services: workspace.services?,
            at: workspace.at,
        },
        private_endpoint,
        dns_zones: dns_zones?,
        service_tags: tags.declared?,
        trusted_outbound: trusted_outbound?,
        rules: rules?,
        checks: checks?,
        self_tests,
    })
}

fn required_table<'t, 'i>(
    reader: &mut Reader<'_>,
    root: &Table<'t, 'i>,
    key: &str,
) -> Option<Table<'t, 'i>> {
    if root.get(key).is_none() {
        reader.error_expected(
            "missing-table",
            &(0..0),
            format!("the policy has no [{key}] table"),
            format!("a [{key}] table"),
        );
        return None;
    }
    root.table(reader, key)
}

/// A key's value location, or the table's when the key is absent (for defaults).
fn value_or_table_at(reader: &Reader<'_>, table: &Table<'_, '_>, key: &str) -> Location {
    match table.get(key) {
        Some((_, value)) => reader.location(&value.span()),
        None => reader.location(table.span()),
    }
}

fn read_header(
    reader: &mut Reader<'_>,
    table: &Table<'_, '_>,
) -> Option<(String, String, Action, Location)> {
    table.check_keys(reader, POLICY_KEYS);
    let name = table.required_string(reader, "name", "\"my-policy\"");
    let version = table
        .required_string(reader, "version", "\"1.0.0\"")
        .and_then(|v| {
            if is_version(v.get_ref()) {
                Some(v.into_inner().to_owned())
            } else {
                reader.error_expected(
                    "bad-version",
                    &v.span(),
                    format!("version `{}` is not a version number", v.get_ref()),
                    "MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD], such as \"1.4.0\"",
                );
                None
            }
        });
    let default_action = optional_enum(reader, table, "default-action", ACTIONS, Action::from_id)
        .map(|a| a.unwrap_or(Action::Allow));
    let at = value_or_table_at(reader, table, "default-action");
    Some((
        name?.into_inner().trim().to_owned(),
        version?,
        default_action?,
        at,
    ))
}

/// `1`, `1.4`, `1.4.0`, optionally followed by `-pre.release` and/or `+build`.
fn is_version(text: &str) -> bool {
    let (core, _) = text.split_once('+').unwrap_or((text, ""));
    let (core, pre) = core.split_once('-').unwrap_or((core, ""));
    let numbers: Vec<&str> = core.split('.').collect();
    let word_ok = |s: &str| {
        s.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    };
    (1..=3).contains(&numbers.len())
        && numbers
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && (pre.is_empty() || word_ok(pre))
        && text.split_once('+').is_none_or(|(_, build)| word_ok(build))
}

/// An optional enumerated value: `Some(None)` when absent, `None` when rejected.
fn optional_enum<T>(
    reader: &mut Reader<'_>,
    table: &Table<'_, '_>,
    key: &str,
    accepted: &[&str],
    from_id: impl Fn(&str) -> Option<T>,
) -> Option<Option<T>> {
    match table.get(key) {
        None => Some(None),
        Some(_) => {
            let text = table.string(reader, key)?;
            parse::enum_value(reader, key, &text, accepted, from_id).map(Some)
        }
    }
}

/// Azure's rule for workspace and service names: 3 to 24 lower-case letters and digits.
/// They become part of DNS names, which is why nothing else is allowed.
fn check_azure_name(reader: &mut Reader<'_>, what: &str, value: &Spanned<&str>) -> Option<String> {
    let text = *value.get_ref();
    let len = text.chars().count();
    let problem = if !(3..=24).contains(&len) {
        Some(format!("it has {len} characters"))
    } else if !text
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        Some("it has characters other than lower-case letters and digits".to_owned())
    } else {
        None
    };
    match problem {
        None => Some(text.to_owned()),
        Some(problem) => {
            reader.error_expected(
                "bad-name",
                &value.span(),
                format!("{what} name `{text}` is not valid: {problem}"),
                "3 to 24 lower-case letters and digits (Azure's naming rule)",
            );
            None
        }
    }
}

struct WorkspacePart {
    name: Option<String>,
    access: Option<bool>,
    access_at: Location,
    services: Option<Vec<Service>>,
    /// Every valid service name, even of services with other problems: cross-references
    /// are checked against these so that one typo does not cascade into more errors.
    service_names: Vec<String>,
    /// Every valid private IP with its span and service name, for the subnet check.
    private_ips: Vec<(IpAddr, Range<usize>, String)>,
    at: Location,
}

fn read_workspace(reader: &mut Reader<'_>, table: &Table<'_, '_>) -> WorkspacePart {
    table.check_keys(reader, WORKSPACE_KEYS);
    let name = table
        .required_string(reader, "name", "\"fabrikam\"")
        .and_then(|n| check_azure_name(reader, "workspace", &n));
    let access = optional_enum(
        reader,
        table,
        "public-network-access",
        ACCESS,
        |s| match s {
            "enabled" => Some(false),
            "disabled" => Some(true),
            _ => None,
        },
    )
    .map(|d| d.unwrap_or(false));
    let access_at = value_or_table_at(reader, table, "public-network-access");
    let mut services = Some(Vec::new());
    let mut service_names = Vec::new();
    let mut private_ips = Vec::new();
    let mut seen: HashMap<String, Location> = HashMap::new();
    for service_table in table.tables(reader, "services") {
        let part = read_service(reader, &service_table);
        if let (Some(name), Some((_, value))) = (&part.name, service_table.get("name")) {
            if let Some(first) = seen.get(name) {
                reader.error(
                    "duplicate-service",
                    &value.span(),
                    format!(
                        "duplicate service name `{name}`: first declared on line {}",
                        first.line
                    ),
                );
                services = None;
                continue;
            }
            seen.insert(name.clone(), reader.location(service_table.span()));
            service_names.push(name.clone());
        }
        if let (Some((ip, span)), Some(name)) = (part.private_ip, &part.name) {
            private_ips.push((ip, span, name.clone()));
        }
        match (&mut services, part.service) {
            (Some(list), Some(service)) => list.push(service),
            _ => services = None,
        }
    }
    WorkspacePart {
        name,
        access,
        access_at,
        services,
        service_names,
        private_ips,
        at: reader.location(table.span()),
    }
}

struct ServicePart {
    name: Option<String>,
    private_ip: Option<(IpAddr, Range<usize>)>,
    /// The whole service, when every field of it is valid.
    service: Option<Service>,
}

fn read_service(reader: &mut Reader<'_>, table: &Table<'_, '_>) -> ServicePart {
    table.check_keys(reader, SERVICE_KEYS);
    let kind = table
        .required_string(reader, "kind", &parse::one_of(SERVICE_KINDS))
        .and_then(|k| {
            parse::enum_value(reader, "service kind", &k, SERVICE_KINDS, |s| match s {
                "fhir" => Some(ServiceKind::Fhir),
                "dicom" => Some(ServiceKind::Dicom),
                "medtech" => Some(ServiceKind::Medtech),
                _ => None,
            })
        });
    let name = table
        .required_string(reader, "name", "\"records\"")
        .and_then(|n| check_azure_name(reader, "service", &n));
    let mut located_ip = None;
    let private_ip = match table.string(reader, "private-ip") {
        Some(text) => {
            let ip = parse::ip_addr(reader, "private-ip", &text);
            if let Some(ip) = ip {
                located_ip = Some((ip, text.span()));
            }
            if kind == Some(ServiceKind::Medtech) {
                reader.error(
                    "medtech-private-ip",
                    &text.span(),
                    "a MedTech service has no endpoint of its own, so it has no private IP"
                        .to_owned(),
                );
            }
            ip.map(Some)
        }
        None if table.get("private-ip").is_some() => None,
        None => Some(None),
    };
    let public_ips = ip_list(reader, table, "public-ips");
    let service = (|| {
        Some(Service {
            kind: kind?,
            name: name.clone()?,
            private_ip: private_ip?,
            public_ips: public_ips?,
            at: reader.location(table.span()),
        })
    })();
    ServicePart {
        name,
        private_ip: located_ip,
        service,
    }
}

fn ip_list(reader: &mut Reader<'_>, table: &Table<'_, '_>, key: &str) -> Option<Vec<IpAddr>> {
    match table.string_array(reader, key) {
        Some((_, items)) => {
            let parsed: Vec<Option<IpAddr>> = items
                .iter()
                .map(|item| parse::ip_addr(reader, key, item))
                .collect();
            parsed.into_iter().collect()
        }
        None if table.get(key).is_some() => None,
        None => Some(Vec::new()),
    }
}

/// A list of CIDRs: `Some(None)` when absent.
fn net_list(
    reader: &mut Reader<'_>,
    table: &Table<'_, '_>,
    key: &str,
) -> Option<Option<(Range<usize>, Vec<IpNet>)>> {
    match table.string_array(reader, key) {
        Some((span, items)) => {
            let parsed: Vec<Option<IpNet>> = items
                .iter()
                .map(|item| parse::ip_net(reader, key, item))
                .collect();
            parsed
                .into_iter()
                .collect::<Option<Vec<_>>>()
                .map(|nets| Some((span, nets)))
        }
        None if table.get(key).is_some() => None,
        None => Some(None),
    }
}

struct EndpointPart {
    /// The whole endpoint, when every field of it is valid.
    endpoint: Option<PrivateEndpoint>,
    /// The subnet alone, for checking service addresses even when other fields are wrong.
    subnet: Option<IpNet>,
}

fn read_private_endpoint(reader: &mut Reader<'_>, table: &Table<'_, '_>) -> EndpointPart {
    table.check_keys(reader, ENDPOINT_KEYS);
    let vnet = table
        .required_string(reader, "vnet", "\"10.1.0.0/16\"")
        .and_then(|v| parse::ip_net(reader, "vnet", &v));
    let subnet_text = table.required_string(reader, "subnet", "\"10.1.2.0/24\"");
    let subnet = subnet_text
        .as_ref()
        .and_then(|s| parse::ip_net(reader, "subnet", s));
    if let (Some(vnet), Some(subnet), Some(text)) = (vnet, subnet, &subnet_text)
        && !vnet.contains(&subnet)
    {
        reader.error_expected(
            "subnet-outside-vnet",
            &text.span(),
            format!("endpoint subnet {subnet} is not inside the VNet {vnet}"),
            format!("a subnet of {vnet}"),
        );
    }
    let origins = net_list(reader, table, "allowed-origins");
    if let Some(Some((span, nets))) = &origins
        && nets.is_empty()
    {
        reader.error_expected(
            "empty-value",
            span,
            "`allowed-origins` is empty: no client could use the endpoint".to_owned(),
            "address ranges, or leave the key out to allow the VNet",
        );
    }
    let service_endpoints = match table.string_array(reader, "service-endpoints") {
        Some((_, items)) => {
            let mut names = Vec::new();
            for item in items {
                if item.get_ref().trim().is_empty() {
                    reader.error_expected(
                        "empty-value",
                        &item.span(),
                        "empty service endpoint name".to_owned(),
                        "a service name such as \"Microsoft.Storage\"",
                    );
                } else {
                    names.push(item.get_ref().trim().to_owned());
                }
            }
            Some(names)
        }
        None if table.get("service-endpoints").is_some() => None,
        None => Some(Vec::new()),
    };
    let allowed_origins_at = value_or_table_at(reader, table, "allowed-origins");
    let service_endpoints_at = value_or_table_at(reader, table, "service-endpoints");
    let at = reader.location(table.span());
    let build = || {
        let vnet = vnet?;
        Some(PrivateEndpoint {
            vnet,
            subnet: subnet?,
            allowed_origins: origins?.map_or_else(|| vec![vnet], |(_, nets)| nets),
            allowed_origins_at,
            service_endpoints: service_endpoints?,
            service_endpoints_at,
            at,
        })
    };
    EndpointPart {
        endpoint: build(),
        subnet,
    }
}

fn read_dns_zones(reader: &mut Reader<'_>, root: &Table<'_, '_>) -> Option<Vec<DnsZone>> {
    let mut zones: Vec<DnsZone> = Vec::new();
    let mut ok = true;
    for table in root.tables(reader, "dns-zones") {
        table.check_keys(reader, ZONE_KEYS);
        let zone_text = table.required_string(
            reader,
            "zone",
            "\"privatelink.fhir.azurehealthcareapis.com\"",
        );
        let zone = zone_text
            .as_ref()
            .and_then(|z| parse::host_name(reader, "zone", z, false));
        let linked = match table.string_array(reader, "linked-vnets") {
            Some((_, items)) => {
                let mut names = Vec::new();
                for item in items {
                    if item.get_ref().trim().is_empty() {
                        reader.error_expected(
                            "empty-value",
                            &item.span(),
                            "empty VNet name in `linked-vnets`".to_owned(),
                            "the name of a linked VNet",
                        );
                    } else {
                        names.push(item.get_ref().trim().to_owned());
                    }
                }
                Some(names)
            }
            None if table.get("linked-vnets").is_some() => None,
            None => Some(Vec::new()),
        };
        match (zone, linked, zone_text) {
            (Some(zone), Some(linked_vnets), Some(text)) => {
                if let Some(first) = zones.iter().find(|z| z.zone == zone) {
                    reader.error(
                        "duplicate-zone",
                        &text.span(),
                        format!(
                            "DNS zone `{zone}` is declared twice: first on line {}",
                            first.at.line
                        ),
                    );
                    ok = false;
                    continue;
                }
                zones.push(DnsZone {
                    zone,
                    linked_vnets,
                    at: reader.location(table.span()),
                });
            }
            _ => ok = false,
        }
    }
    ok.then_some(zones)
}

/// The declared service tags, and whether the declaration could be read completely.
/// When it could not (an unreadable tag file), references to unknown tags are not
/// reported: the file error already explains them.
struct Tags {
    declared: Option<Vec<ServiceTag>>,
    complete: bool,
}

impl Tags {
    fn ranges(&self, name: &str) -> Option<&[IpNet]> {
        self.declared
            .as_deref()?
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.ranges.as_slice())
    }

    fn names(&self) -> Vec<&str> {
        self.declared
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|t| t.name.as_str())
            .collect()
    }
}

fn is_tag_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn read_service_tags(
    reader: &mut Reader<'_>,
    root: &Table<'_, '_>,
    base_dir: Option<&Path>,
) -> Tags {
    let Some(table) = root
        .get("service-tags")
        .and(root.table(reader, "service-tags"))
    else {
        let complete = root.get("service-tags").is_none();
        return Tags {
            declared: complete.then(Vec::new),
            complete,
        };
    };
    let mut tags: Vec<ServiceTag> = Vec::new();
    let mut ok = true;
    let mut complete = true;
    if let Some(path) = table.string(reader, "file") {
        let relative = Path::new(path.get_ref().trim());
        let full = match base_dir {
            Some(dir) if relative.is_relative() => dir.join(relative),
            _ => relative.to_owned(),
        };
        match servicetags::load(&full) {
            Ok(loaded) => {
                let at = reader.location(&path.span());
                tags.extend(loaded.into_iter().map(|t| ServiceTag {
                    name: t.name,
                    ranges: t.ranges,
                    at,
                }));
            }
            Err(error) => {
                reader.error_expected(
                    "service-tags-file",
                    &path.span(),
                    format!("cannot use service tag file `{}`: {error}", path.get_ref()),
                    "a readable Azure ServiceTags_Public JSON file, relative to the policy file",
                );
                ok = false;
                complete = false;
            }
        }
    } else if table.get("file").is_some() {
        ok = false;
        complete = false;
    }
    for (key, value) in table.entries_in_order() {
        let name: &str = key.get_ref();
        if name == "file" {
            continue;
        }
        if !is_tag_name(name) {
            reader.error_expected(
                "bad-tag-name",
                &key.span(),
                format!("`{name}` is not a service tag name"),
                "letters, digits, `.`, `_` and `-`, such as AzureHealthcareAPIs or Storage.EastUS",
            );
            ok = false;
            continue;
        }
        let Some(items) = parse::as_array(reader, name, value) else {
            ok = false;
            continue;
        };
        if items.is_empty() {
            reader.error_expected(
                "empty-value",
                &value.span(),
                format!("service tag `{name}` has no address ranges"),
                "the tag's address ranges, such as [\"20.37.0.0/16\"]",
            );
            ok = false;
            continue;
        }
        let mut ranges = Vec::new();
        for item in items {
            match parse::as_string(reader, name, item).and_then(|s| parse::ip_net(reader, name, &s))
            {
                Some(net) => ranges.push(net),
                None => ok = false,
            }
        }
        let tag = ServiceTag {
            name: name.to_owned(),
            ranges,
            at: reader.location(&key.span()),
        };
        // Inline ranges override the file's.
        match tags.iter_mut().find(|t| t.name == tag.name) {
            Some(existing) => *existing = tag,
            None => tags.push(tag),
        }
    }
    Tags {
        declared: ok.then_some(tags),
        complete,
    }
}

/// Parses `tag:Name`, a CIDR or an address. `Some(None)` is a tag reference that cannot
/// be checked because the tag declaration is incomplete (already reported).
fn address_spec(
    reader: &mut Reader<'_>,
    key: &str,
    value: &Spanned<&str>,
    tags: &Tags,
) -> Option<AddressSpec> {
    let text = value.get_ref().trim();
    let Some(name) = text.strip_prefix("tag:") else {
        return parse::ip_net(reader, key, value).map(AddressSpec::Net);
    };
    let name = name.trim();
    if tags.ranges(name).is_some() {
        return Some(AddressSpec::Tag(name.to_owned()));
    }
    if tags.complete && tags.declared.is_some() {
        let names = tags.names();
        let mut message =
            format!("`{key}`: service tag `{name}` is not declared in [service-tags]");
        if let Some(close) = parse::closest(name, names.iter().copied()) {
            message.push_str(&format!("; did you mean `tag:{close}`?"));
        }
        let expected = if names.is_empty() {
            "a tag declared in [service-tags]".to_owned()
        } else {
            format!("a declared tag: {}", names.join(", "))
        };
        reader.error_expected("undeclared-tag", &value.span(), message, expected);
    }
    None
}

/// A list of address specs; `Some(None)` when absent. An empty list is refused: it reads
/// as "nothing" to some and "anything" to others, and leaving the key out says "anything".
fn address_list(
    reader: &mut Reader<'_>,
    table: &Table<'_, '_>,
    key: &str,
    tags: &Tags,
) -> Option<Option<Vec<AddressSpec>>> {
    let Some((span, items)) = table.string_array(reader, key) else {
        return if table.get(key).is_some() {
            None
        } else {
            Some(None)
        };
    };
    if items.is_empty() {
        reader.error_expected(
            "empty-value",
            &span,
            format!("`{key}` is empty"),
            "address ranges or `tag:Name`; leave the key out to match any address",
        );
        return None;
    }
    let parsed: Vec<Option<AddressSpec>> = items
        .iter()
        .map(|item| address_spec(reader, key, item, tags))
        .collect();
    parsed.into_iter().collect::<Option<Vec<_>>>().map(Some)
}

fn host_list(
    reader: &mut Reader<'_>,
    table: &Table<'_, '_>,
    key: &str,
    allow_empty: bool,
) -> Option<Vec<String>> {
    let Some((span, items)) = table.string_array(reader, key) else {
        return if table.get(key).is_some() {
            None
        } else {
            Some(Vec::new())
        };
    };
    if items.is_empty() && !allow_empty {
        reader.error_expected(
            "empty-value",
            &span,
            format!("`{key}` is empty"),
            "host names; leave the key out to match any name",
        );
        return None;
    }
    let parsed: Vec<Option<String>> = items
        .iter()
        .map(|item| parse::host_name(reader, key, item, true))
        .collect();
    parsed.into_iter().collect()
}

fn read_trusted_outbound(
    reader: &mut Reader<'_>,
    root: &Table<'_, '_>,
    service_names: &[String],
    tags: &Tags,
) -> Option<Vec<TrustedOutbound>> {
    let features: Vec<&str> = Feature::ALL.iter().map(|f| f.id()).collect();
    let service_names: Vec<&str> = service_names.iter().map(String::as_str).collect();
    let mut entries = Vec::new();
    let mut ok = true;
    for table in root.tables(reader, "trusted-outbound") {
        table.check_keys(reader, TRUSTED_KEYS);
        let service = table
            .required_string(reader, "service", "the name of a workspace service")
            .and_then(|s| {
                let name = s.get_ref().trim();
                if service_names.contains(&name) {
                    return Some(name.to_owned());
                }
                let mut message = format!(
                    "trusted-outbound names service `{name}`, which the workspace does not declare"
                );
                if let Some(close) = parse::closest(name, service_names.iter().copied()) {
                    message.push_str(&format!("; did you mean `{close}`?"));
                }
                let expected = if service_names.is_empty() {
                    "a service declared in [[workspace.services]]".to_owned()
                } else {
                    parse::one_of(&service_names)
                };
                reader.error_expected("unknown-service", &s.span(), message, expected);
                None
            });
        let feature = table
            .required_string(reader, "feature", &parse::one_of(&features))
            .and_then(|f| parse::enum_value(reader, "feature", &f, &features, Feature::from_id));
        let targets = host_list(reader, &table, "targets", true);
        let ranges = match table.string_array(reader, "target-ranges") {
            Some((_, items)) => {
                let mut nets = Vec::new();
                let mut all = true;
                for item in &items {
                    match address_spec(reader, "target-ranges", item, tags) {
                        Some(AddressSpec::Net(net)) => nets.push(net),
                        Some(AddressSpec::Tag(name)) => {
                            nets.extend(tags.ranges(&name).unwrap_or(&[]).iter().copied());
                        }
                        None => all = false,
                    }
                }
                all.then_some(nets)
            }
            None if table.get("target-ranges").is_some() => None,
            None => Some(Vec::new()),
        };
        if let (Some(targets), Some(ranges)) = (&targets, &ranges)
            && targets.is_empty()
            && ranges.is_empty()
        {
            reader.error_expected(
                "empty-value",
                table.span(),
                "[[trusted-outbound]] allows no target".to_owned(),
                "`targets = [\"host.example.com\"]` and/or `target-ranges = [\"…/…\"]`",
            );
            ok = false;
            continue;
        }
        match (service, feature, targets, ranges) {
            (Some(service), Some(feature), Some(targets), Some(target_ranges)) => {
                entries.push(TrustedOutbound {
                    service,
                    feature,
                    targets,
                    target_ranges,
                    at: reader.location(table.span()),
                })
            }
            _ => ok = false,
        }
    }
    ok.then_some(entries)
}

fn is_rule_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn read_rules(reader: &mut Reader<'_>, root: &Table<'_, '_>, tags: &Tags) -> Option<Vec<Rule>> {
    let mut rules: Vec<Rule> = Vec::new();
    let mut seen: HashMap<String, Location> = HashMap::new();
    let mut ok = true;
    for table in root.tables(reader, "rules") {
        table.check_keys(reader, RULE_KEYS);
        let id = table
            .required_string(reader, "id", "\"no-smb\"")
            .and_then(|id| {
                let text = id.get_ref().trim();
                if !is_rule_id(text) {
                    reader.error_expected(
                        "bad-rule-id",
                        &id.span(),
                        format!("rule id `{text}` is not valid"),
                        "up to 64 letters, digits, `-`, `_`, `.` and `:`",
                    );
                    return None;
                }
                let at = reader.location(&id.span());
                if let Some(first) = seen.get(text) {
                    reader.error(
                        "duplicate-rule-id",
                        &id.span(),
                        format!(
                            "duplicate rule id `{text}`: first used on line {}",
                            first.line
                        ),
                    );
                    return None;
                }
                seen.insert(text.to_owned(), at);
                Some(text.to_owned())
            });
        let action = table
            .required_string(reader, "action", &parse::one_of(ACTIONS))
            .and_then(|a| parse::enum_value(reader, "action", &a, ACTIONS, Action::from_id));
        let protocol = match table.get("protocol") {
            Some((_, value)) => parse::protocol(reader, "protocol", value, true),
            None => Some(None),
        };
        let src = address_list(reader, &table, "src", tags);
        let dst = address_list(reader, &table, "dst", tags);
        let src_ports = port_list(reader, &table, "src-ports");
        let dst_ports = port_list(reader, &table, "dst-ports");
        let names = host_list(reader, &table, "names", false);
        let severity = optional_enum(reader, &table, "severity", SEVERITIES, Severity::from_id)
            .map(|s| s.unwrap_or(Severity::Medium));
        let description = match table.string(reader, "description") {
            Some(d) => Some(Some(d.into_inner().to_owned())),
            None if table.get("description").is_some() => None,
            None => Some(None),
        };
        let rule = (|| {
            Some(Rule {
                id: id?,
                action: action?,
                protocol: protocol?,
                src: src?.unwrap_or_default(),
                dst: dst?.unwrap_or_default(),
                src_ports: src_ports?,
                dst_ports: dst_ports?,
                names: names?,
                severity: severity?,
                description: description?,
                at: reader.location(table.span()),
            })
        })();
        match rule {
            Some(rule) => rules.push(rule),
            None => ok = false,
        }
    }
    ok.then_some(rules)
}

fn port_list(reader: &mut Reader<'_>, table: &Table<'_, '_>, key: &str) -> Option<Vec<PortRange>> {
    let Some((span, items)) = table.array(reader, key) else {
        return if table.get(key).is_some() {
            None
        } else {
            Some(Vec::new())
        };
    };
    if items.is_empty() {
        reader.error_expected(
            "empty-value",
            &span,
            format!("`{key}` is empty"),
            "ports or ranges; leave the key out to match any port",
        );
        return None;
    }
    let parsed: Vec<Option<PortRange>> = items
        .iter()
        .map(|item| parse::port_range(reader, key, item))
        .collect();
    parsed.into_iter().collect()
}

fn read_checks(reader: &mut Reader<'_>, root: &Table<'_, '_>) -> Option<Vec<CheckSetting>> {
    if root.get("checks").is_none() {
        return Some(Vec::new());
    }
    let table = root.table(reader, "checks")?;
    let kinds: Vec<&str> = FindingKind::ALL.iter().map(|k| k.id()).collect();
    let mut settings = Vec::new();
    let mut ok = true;
    for (key, value) in table.entries_in_order() {
        let id = Spanned::new(key.span(), key.get_ref().as_ref());
        let kind = parse::enum_value(reader, "finding kind", &id, &kinds, FindingKind::from_id);
        let check = match value.get_ref() {
            DeValue::Table(entries) => {
                let check = Table::new(entries, value.span(), format!("[checks.{}]", id.get_ref()));
                check.check_keys(reader, CHECK_KEYS);
                let enabled = match check.get("enabled") {
                    Some(_) => check.boolean(reader, "enabled").map(Spanned::into_inner),
                    None => Some(true),
                };
                let severity =
                    optional_enum(reader, &check, "severity", SEVERITIES, Severity::from_id);
                let action = optional_enum(reader, &check, "action", ACTIONS, Action::from_id);
                Some((enabled, severity, action))
            }
            other => {
                parse::wrong_type(
                    reader,
                    id.get_ref(),
                    value,
                    other,
                    "a table",
                    "`{ enabled = false }` or a [checks.<kind>] table",
                );
                None
            }
        };
        match (kind, check) {
            (Some(kind), Some((Some(enabled), Some(severity), Some(action)))) => {
                settings.push(CheckSetting {
                    kind,
                    enabled,
                    severity,
                    action,
                    at: reader.location(&key.span()),
                })
            }
            _ => ok = false,
        }
    }
    ok.then_some(settings)
}
