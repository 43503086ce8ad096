//! The compiled rule image: everything the evaluator knows about one policy, produced by
//! `linkward-policy` and embedded in the module. It is serialized with postcard behind a
//! magic number and a format version, and [`Image::from_bytes`] checks both before use.

use crate::record::TestCase;
use crate::vocab::{Action, Feature, FindingKind, ServiceKind, Severity};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

const MAGIC: &[u8; 4] = b"LWRI";
/// Bumped whenever the layout of [`Image`] changes.
pub const FORMAT_VERSION: u16 = 1;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Image {
    pub meta: Meta,
    pub workspace: String,
    pub public_network_access_disabled: bool,
    pub public_network_access_line: u32,
    pub services: Vec<Service>,
    pub allowed_origins: Vec<IpNet>,
    pub allowed_origins_line: u32,
    pub endpoint_subnet: Option<IpNet>,
    pub endpoint_line: u32,
    pub service_tags: Vec<ServiceTag>,
    pub trusted_outbound: Vec<TrustedOutbound>,
    pub rules: Vec<Rule>,
    pub default_action: Option<Action>,
    pub default_action_line: u32,
    /// Per-check overrides (severity, action, off) from the policy's `[checks]` table.
    pub checks: Vec<CheckSetting>,
    pub self_tests: Vec<TestCase>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub policy_name: String,
    pub policy_version: String,
    pub source_hash: String,
    pub compiler_version: String,
    pub lints: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub kind: ServiceKind,
    pub name: String,
    /// `{workspace}-{name}.{kind}.azurehealthcareapis.com`, lower case.
    pub fqdn: String,
    /// `{workspace}-{name}.privatelink.{kind}.azurehealthcareapis.com`, lower case.
    pub privatelink_fqdn: String,
    pub private_ip: Option<IpAddr>,
    /// Public addresses the service is known to answer on (used for flow logs).
    pub public_ips: Vec<IpAddr>,
    pub line: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTag {
    pub name: String,
    pub ranges: Vec<IpNet>,
    pub line: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedOutbound {
    /// Index into [`Image::services`].
    pub service: u32,
    pub feature: Feature,
    /// Host names; an entry `*.example.net` names every host under `example.net`.
    pub names: Vec<String>,
    /// Address ranges, for inputs without names (flow logs).
    pub ranges: Vec<IpNet>,
    pub line: u32,
}

/// A source or destination clause of a rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AddressMatch {
    Net(IpNet),
    /// Index into [`Image::service_tags`].
    Tag(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub action: Action,
    /// IANA protocol number; `None` matches any.
    pub protocol: Option<u8>,
    /// Empty means any.
    pub src: Vec<AddressMatch>,
    pub dst: Vec<AddressMatch>,
    pub src_ports: Vec<PortRange>,
    pub dst_ports: Vec<PortRange>,
    /// Host names (exact or `*.suffix`) matched against the resolved name, SNI or Host.
    pub names: Vec<String>,
    pub severity: Severity,
    pub description: Option<String>,
    pub line: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSetting {
    pub kind: FindingKind,
    pub enabled: bool,
    pub severity: Option<Severity>,
    pub action: Option<Action>,
    pub line: u32,
}

/// Why an image could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageError {
    BadMagic,
    UnsupportedVersion(u16),
    Corrupt(String),
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::BadMagic => f.write_str("not a linkward rule image (bad magic number)"),
            ImageError::UnsupportedVersion(v) => write!(
                f,
                "rule image format {v} is not supported (this build reads {FORMAT_VERSION})"
            ),
            ImageError::Corrupt(why) => write!(f, "rule image is corrupt: {why}"),
        }
    }
}

impl std::error::Error for ImageError {}

impl Image {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        // Serializing plain owned data into a Vec cannot fail.
        let body = postcard::to_allocvec(self).unwrap_or_default();
        out.extend_from_slice(&body);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Image, ImageError> {
        let (magic, rest) = bytes.split_at_checked(4).ok_or(ImageError::BadMagic)?;
        if magic != MAGIC {
            return Err(ImageError::BadMagic);
        }
        let (version, body) = rest
            .split_at_checked(2)
            .ok_or_else(|| ImageError::Corrupt("missing format version".into()))?;
        let version = u16::from_le_bytes([version[0], version[1]]);
        if version != FORMAT_VERSION {
            return Err(ImageError::UnsupportedVersion(version));
        }
        postcard::from_bytes(body).map_err(|e| ImageError::Corrupt(e.to_string()))
    }

    /// Number of distinct address prefixes the image matches against.
    pub fn prefix_count(&self) -> usize {
        let rule_nets = self
            .rules
            .iter()
            .flat_map(|r| r.src.iter().chain(r.dst.iter()))
            .filter(|m| matches!(m, AddressMatch::Net(_)))
            .count();
        self.allowed_origins.len()
            + usize::from(self.endpoint_subnet.is_some())
            + self
                .service_tags
                .iter()
                .map(|t| t.ranges.len())
                .sum::<usize>()
            + self
                .trusted_outbound
                .iter()
                .map(|t| t.ranges.len())
                .sum::<usize>()
            + rule_nets
    }

    /// Number of host names the image matches against.
    pub fn name_count(&self) -> usize {
        self.services.len() * 2
            + self
                .trusted_outbound
                .iter()
                .map(|t| t.names.len())
                .sum::<usize>()
            + self.rules.iter().map(|r| r.names.len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_foreign_bytes() {
        let image = Image {
            workspace: "fabrikam".into(),
            allowed_origins: vec!["10.1.0.0/16".parse().unwrap()],
            ..Image::default()
        };
        let bytes = image.to_bytes();
        assert_eq!(Image::from_bytes(&bytes).unwrap(), image);
        assert_eq!(Image::from_bytes(b"nope"), Err(ImageError::BadMagic));
        let mut future = bytes.clone();
        future[4] = 9;
        assert_eq!(
            Image::from_bytes(&future),
            Err(ImageError::UnsupportedVersion(9))
        );
        assert!(matches!(
            Image::from_bytes(&bytes[..bytes.len() - 3]),
            Err(ImageError::Corrupt(_))
        ));
    }
}
