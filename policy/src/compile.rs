//! Stage 4 and 5: a validated [`Policy`] becomes a rule [`Image`], and the image becomes a
//! policy module.

use crate::diagnostic::{Diagnostic, Level};
use crate::model::{AddressSpec, Policy};
use crate::module::{self, ModuleError};
use linkward_guest::image::{self, Image, Meta};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The version of this compiler, recorded in every module.
pub const COMPILER_VERSION: &str = concat!("linkward-policy ", env!("CARGO_PKG_VERSION"));

/// A compiled policy: the module bytes, the image inside it and the lint warnings.
#[derive(Debug)]
pub struct Compiled {
    pub wasm: Vec<u8>,
    pub image: Image,
    pub warnings: Vec<Diagnostic>,
}

/// Why a policy did not compile.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The policy has errors; every diagnostic (errors and warnings) is here.
    #[error("the policy has {} error(s)", .0.iter().filter(|d| d.level == Level::Error).count())]
    Invalid(Vec<Diagnostic>),
    #[error(transparent)]
    Module(#[from] ModuleError),
}

/// Checks, lints and compiles policy source text. `file` is used in diagnostics;
/// `base_dir` resolves relative paths inside the policy (service-tag files).
pub fn compile_source(
    file: &str,
    text: &str,
    base_dir: Option<&Path>,
) -> Result<Compiled, CompileError> {
    let checked = crate::validate::check_source(file, text, base_dir);
    let Some(policy) = checked.policy else {
        return Err(CompileError::Invalid(checked.diagnostics));
    };
    let warnings: Vec<Diagnostic> = checked
        .diagnostics
        .into_iter()
        .filter(|d| d.level == Level::Warning)
        .collect();
    let image = to_image(&policy, text, &warnings);
    let wasm = module::build_component(&image.to_bytes())?;
    Ok(Compiled {
        wasm,
        image,
        warnings,
    })
}

/// Hex SHA-256 of the policy source.
pub fn source_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Lowers a validated policy to the evaluator's rule image.
pub fn to_image(policy: &Policy, source: &str, warnings: &[Diagnostic]) -> Image {
    let ws = policy.workspace.name.to_ascii_lowercase();
    let services = policy
        .workspace
        .services
        .iter()
        .map(|s| {
            let name = s.name.to_ascii_lowercase();
            // MedTech has no endpoint of its own; its names never match a flow.
            let zone = s
                .kind
                .public_zone()
                .unwrap_or("medtech.azurehealthcareapis.com");
            let (base, zone_rest) = zone.split_once('.').unwrap_or((zone, ""));
            image::Service {
                kind: s.kind,
                name: s.name.clone(),
                fqdn: format!("{ws}-{name}.{zone}"),
                privatelink_fqdn: format!("{ws}-{name}.privatelink.{base}.{zone_rest}"),
                private_ip: s.private_ip,
                public_ips: s.public_ips.clone(),
                line: s.at.line,
            }
        })
        .collect::<Vec<_>>();
    let tag_index = |name: &str| {
        policy
            .service_tags
            .iter()
            .position(|t| t.name == name)
            .map(|i| i as u32)
    };
    let address = |spec: &AddressSpec| match spec {
        AddressSpec::Net(n) => Some(image::AddressMatch::Net(*n)),
        AddressSpec::Tag(t) => tag_index(t).map(image::AddressMatch::Tag),
    };
    let ports = |ranges: &[crate::model::PortRange]| {
        ranges
            .iter()
            .map(|r| image::PortRange {
                first: r.first,
                last: r.last,
            })
            .collect::<Vec<_>>()
    };
    let pe = policy.private_endpoint.as_ref();
    Image {
        meta: Meta {
            policy_name: policy.name.clone(),
            policy_version: policy.version.clone(),
            source_hash: source_hash(source),
            compiler_version: COMPILER_VERSION.to_string(),
            lints: warnings
                .iter()
                .map(|w| format!("{}:{}: {}", w.location.line, w.location.column, w.message))
                .collect(),
        },
        workspace: ws,
        public_network_access_disabled: policy.workspace.public_network_access_disabled,
        public_network_access_line: policy.workspace.public_network_access_at.line,
        allowed_origins: pe.map(|p| p.allowed_origins.clone()).unwrap_or_default(),
        allowed_origins_line: pe.map_or(0, |p| p.allowed_origins_at.line),
        endpoint_subnet: pe.map(|p| p.subnet),
        endpoint_line: pe.map_or(0, |p| p.at.line),
        service_tags: policy
            .service_tags
            .iter()
            .map(|t| image::ServiceTag {
                name: t.name.clone(),
                ranges: t.ranges.clone(),
                line: t.at.line,
            })
            .collect(),
        trusted_outbound: policy
            .trusted_outbound
            .iter()
            .filter_map(|t| {
                let service = policy
                    .workspace
                    .services
                    .iter()
                    .position(|s| s.name == t.service)?;
                Some(image::TrustedOutbound {
                    service: service as u32,
                    feature: t.feature,
                    names: t.targets.iter().map(|n| n.to_ascii_lowercase()).collect(),
                    ranges: t.target_ranges.clone(),
                    line: t.at.line,
                })
            })
            .collect(),
        rules: policy
            .rules
            .iter()
            .map(|r| image::Rule {
                id: r.id.clone(),
                action: r.action,
                protocol: r.protocol,
                src: r.src.iter().filter_map(address).collect(),
                dst: r.dst.iter().filter_map(address).collect(),
                src_ports: ports(&r.src_ports),
                dst_ports: ports(&r.dst_ports),
                names: r.names.iter().map(|n| n.to_ascii_lowercase()).collect(),
                severity: r.severity,
                description: r.description.clone(),
                line: r.at.line,
            })
            .collect(),
        default_action: Some(policy.default_action),
        default_action_line: policy.default_action_at.line,
        checks: policy
            .checks
            .iter()
            .map(|c| image::CheckSetting {
                kind: c.kind,
                enabled: c.enabled,
                severity: c.severity,
                action: c.action,
                line: c.at.line,
            })
            .collect(),
        self_tests: policy.self_tests.clone(),
        services,
    }
}
