//! The validated policy: what `validate` produces from the TOML and `compile` consumes.
//! Every object remembers where it was written (1-based line and column) so findings and
//! lints can point back at the source.

use ipnet::IpNet;
use linkward_guest::record::TestCase;
use linkward_guest::vocab::{Action, Feature, FindingKind, ServiceKind, Severity};
use std::net::IpAddr;

/// A 1-based position in the policy source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub line: u32,
    pub column: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub name: String,
    pub version: String,
    pub default_action: Action,
    pub default_action_at: Location,
    pub workspace: Workspace,
    pub private_endpoint: Option<PrivateEndpoint>,
    pub dns_zones: Vec<DnsZone>,
    pub service_tags: Vec<ServiceTag>,
    pub trusted_outbound: Vec<TrustedOutbound>,
    pub rules: Vec<Rule>,
    pub checks: Vec<CheckSetting>,
    pub self_tests: Vec<TestCase>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Workspace {
    pub name: String,
    pub public_network_access_disabled: bool,
    pub public_network_access_at: Location,
    pub services: Vec<Service>,
    pub at: Location,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    pub kind: ServiceKind,
    pub name: String,
    pub private_ip: Option<IpAddr>,
    /// Optional extension: public addresses the service answers on, so flow logs (which
    /// carry no names) can still be attributed to it.
    pub public_ips: Vec<IpAddr>,
    pub at: Location,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PrivateEndpoint {
    pub vnet: IpNet,
    pub subnet: IpNet,
    pub allowed_origins: Vec<IpNet>,
    pub allowed_origins_at: Location,
    pub service_endpoints: Vec<String>,
    pub service_endpoints_at: Location,
    pub at: Location,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DnsZone {
    pub zone: String,
    pub linked_vnets: Vec<String>,
    pub at: Location,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServiceTag {
    pub name: String,
    pub ranges: Vec<IpNet>,
    pub at: Location,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TrustedOutbound {
    /// Name of a service of the workspace (checked to exist).
    pub service: String,
    pub feature: Feature,
    /// Host names, exact or `*.suffix`, lower case.
    pub targets: Vec<String>,
    /// Optional extension: address ranges (or `tag:Name` expanded), for flow logs.
    pub target_ranges: Vec<IpNet>,
    pub at: Location,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressSpec {
    Net(IpNet),
    /// `tag:Name`: the ranges of a service tag declared in `[service-tags]`.
    Tag(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub id: String,
    pub action: Action,
    /// IANA protocol number, `None` = any.
    pub protocol: Option<u8>,
    pub src: Vec<AddressSpec>,
    pub dst: Vec<AddressSpec>,
    pub src_ports: Vec<PortRange>,
    pub dst_ports: Vec<PortRange>,
    /// Optional extension: host names (exact or `*.suffix`) the flow must be known by.
    pub names: Vec<String>,
    pub severity: Severity,
    pub description: Option<String>,
    pub at: Location,
}

/// `[checks.<finding-kind>]`: turn a built-in check off or change its severity/action.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckSetting {
    pub kind: FindingKind,
    pub enabled: bool,
    pub severity: Option<Severity>,
    pub action: Option<Action>,
    pub at: Location,
}
