//! The small shared vocabulary of policies, modules and hosts: finding kinds, severities,
//! actions. Each name here is also a WIT enum case, in the same order.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a finding is about. See DESIGN.md for when each is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FindingKind {
    PeBypass,
    DnsPublicResolution,
    DnsConflict,
    OriginNotAllowed,
    PublicAccess,
    UntrustedOutbound,
    ServiceTagReliance,
    Rule,
}

impl FindingKind {
    pub const ALL: [FindingKind; 8] = [
        FindingKind::PeBypass,
        FindingKind::DnsPublicResolution,
        FindingKind::DnsConflict,
        FindingKind::OriginNotAllowed,
        FindingKind::PublicAccess,
        FindingKind::UntrustedOutbound,
        FindingKind::ServiceTagReliance,
        FindingKind::Rule,
    ];

    /// The id used in output and in test cases, e.g. `pe-bypass`.
    pub fn id(self) -> &'static str {
        match self {
            FindingKind::PeBypass => "pe-bypass",
            FindingKind::DnsPublicResolution => "dns-public-resolution",
            FindingKind::DnsConflict => "dns-conflict",
            FindingKind::OriginNotAllowed => "origin-not-allowed",
            FindingKind::PublicAccess => "public-access",
            FindingKind::UntrustedOutbound => "untrusted-outbound",
            FindingKind::ServiceTagReliance => "service-tag-reliance",
            FindingKind::Rule => "rule",
        }
    }

    pub fn from_id(id: &str) -> Option<FindingKind> {
        FindingKind::ALL.into_iter().find(|k| k.id() == id)
    }

    /// Stable numeric id, used as the EVE `signature_id` offset.
    pub fn number(self) -> u32 {
        self as u32
    }

    pub fn from_number(n: u32) -> Option<FindingKind> {
        FindingKind::ALL.get(n as usize).copied()
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn from_id(id: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.id() == id)
    }

    pub fn from_number(n: u32) -> Option<Severity> {
        Severity::ALL.get(n as usize).copied()
    }

    /// Suricata's scale: 1 is the most severe.
    pub fn eve_number(self) -> u8 {
        match self {
            Severity::Critical => 1,
            Severity::High => 1,
            Severity::Medium => 2,
            Severity::Low => 3,
            Severity::Info => 4,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    Allow,
    Alert,
    Deny,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Allow, Action::Alert, Action::Deny];

    pub fn id(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Alert => "alert",
            Action::Deny => "deny",
        }
    }

    pub fn from_id(id: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.id() == id)
    }

    pub fn from_number(n: u32) -> Option<Action> {
        Action::ALL.get(n as usize).copied()
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// The AHDS service kinds a workspace can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServiceKind {
    Fhir,
    Dicom,
    Medtech,
}

impl ServiceKind {
    pub fn id(self) -> &'static str {
        match self {
            ServiceKind::Fhir => "fhir",
            ServiceKind::Dicom => "dicom",
            ServiceKind::Medtech => "medtech",
        }
    }

    /// The DNS zone a service of this kind is published under, if it has an endpoint.
    /// MedTech services have no endpoint of their own: they ingest from Event Hubs.
    pub fn public_zone(self) -> Option<&'static str> {
        match self {
            ServiceKind::Fhir => Some("fhir.azurehealthcareapis.com"),
            ServiceKind::Dicom => Some("dicom.azurehealthcareapis.com"),
            ServiceKind::Medtech => None,
        }
    }
}

/// Trusted-service features: outbound connections a service makes on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Feature {
    Export,
    Import,
    Convert,
    Events,
    CustomerManagedKeys,
    Deidentify,
    Analytics,
}

impl Feature {
    pub const ALL: [Feature; 7] = [
        Feature::Export,
        Feature::Import,
        Feature::Convert,
        Feature::Events,
        Feature::CustomerManagedKeys,
        Feature::Deidentify,
        Feature::Analytics,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Feature::Export => "export",
            Feature::Import => "import",
            Feature::Convert => "convert",
            Feature::Events => "events",
            Feature::CustomerManagedKeys => "customer-managed-keys",
            Feature::Deidentify => "deidentify",
            Feature::Analytics => "analytics",
        }
    }

    pub fn from_id(id: &str) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.id() == id)
    }
}
