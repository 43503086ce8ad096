//! The front end through its public interface: checking, the validated model, rendering,
//! lints, case files and service tag files.

use ipnet::IpNet;
use linkward_guest::record::{OwnedDnsAnswer, OwnedFlow, TestInput};
use linkward_guest::vocab::{Action, Feature, FindingKind, ServiceKind, Severity};
use linkward_policy::cases::parse_cases;
use linkward_policy::diagnostic::{Diagnostic, Level};
use linkward_policy::lint::lint;
use linkward_policy::model::{AddressSpec, Location, PortRange};
use linkward_policy::servicetags::{self, ServiceTagsError};
use linkward_policy::validate::{check_file, check_source};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn net(text: &str) -> IpNet {
    text.parse().expect("test CIDR")
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

fn at(line: u32, column: u32) -> Location {
    Location { line, column }
}

const MINIMAL: &str = r#"[policy]
name = "p"
version = "1.0.0"

[workspace]
name = "fabrikam"

[[workspace.services]]
kind = "fhir"
name = "records"
private-ip = "10.1.2.5"
"#;

#[test]
fn fabrikam_builds_the_expected_model() {
    let (_, checked) = check_file(&examples().join("fabrikam.toml")).expect("example is readable");
    let policy = checked.policy.expect("fabrikam is valid");
    assert_eq!(policy.name, "fabrikam-ahds");
    assert_eq!(policy.version, "1.4.0");
    assert_eq!(policy.default_action, Action::Allow);
    assert_eq!(policy.default_action_at, at(4, 18));
    assert_eq!(policy.workspace.name, "fabrikam");
    assert!(policy.workspace.public_network_access_disabled);
    assert_eq!(policy.workspace.public_network_access_at, at(8, 25));
    assert_eq!(policy.workspace.at, at(6, 1));
    let services: Vec<(ServiceKind, &str, Option<IpAddr>, Location)> = policy
        .workspace
        .services
        .iter()
        .map(|s| (s.kind, s.name.as_str(), s.private_ip, s.at))
        .collect();
    assert_eq!(
        services,
        vec![
            (
                ServiceKind::Fhir,
                "records",
                Some(ip("10.1.2.5")),
                at(10, 1)
            ),
            (
                ServiceKind::Dicom,
                "imaging",
                Some(ip("10.1.2.6")),
                at(15, 1)
            ),
        ]
    );
    let endpoint = policy.private_endpoint.expect("endpoint declared");
    assert_eq!(endpoint.vnet, net("10.1.0.0/16"));
    assert_eq!(endpoint.subnet, net("10.1.2.0/24"));
    assert_eq!(
        endpoint.allowed_origins,
        vec![net("10.1.0.0/16"), net("10.2.0.0/16")]
    );
    assert_eq!(endpoint.allowed_origins_at, at(23, 19));
    assert!(endpoint.service_endpoints.is_empty());
    assert_eq!(endpoint.at, at(20, 1));
    assert_eq!(policy.dns_zones.len(), 1);
    assert_eq!(
        policy.dns_zones[0].zone,
        "privatelink.fhir.azurehealthcareapis.com"
    );
    assert_eq!(policy.dns_zones[0].linked_vnets, vec!["hub".to_owned()]);
    assert_eq!(policy.service_tags.len(), 1);
    assert_eq!(policy.service_tags[0].name, "AzureHealthcareAPIs");
    assert_eq!(policy.service_tags[0].ranges, vec![net("20.37.0.0/16")]);
    assert_eq!(policy.service_tags[0].at, at(31, 1));
    assert_eq!(policy.trusted_outbound.len(), 1);
    assert_eq!(policy.trusted_outbound[0].service, "records");
    assert_eq!(policy.trusted_outbound[0].feature, Feature::Export);
    assert_eq!(
        policy.trusted_outbound[0].targets,
        vec!["fabrikamexport.blob.core.windows.net".to_owned()]
    );
    let rules = &policy.rules;
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].id, "no-smb");
    assert_eq!(rules[0].action, Action::Deny);
    assert_eq!(rules[0].protocol, Some(6));
    assert_eq!(rules[0].src, vec![AddressSpec::Net(net("10.1.0.0/16"))]);
    assert!(rules[0].dst.is_empty());
    assert_eq!(
        rules[0].dst_ports,
        vec![PortRange {
            first: 445,
            last: 445
        }]
    );
    assert_eq!(rules[0].severity, Severity::High);
    assert_eq!(rules[0].at, at(38, 1));
    assert_eq!(rules[1].id, "tag-to-apps");
    assert_eq!(rules[1].protocol, None);
    assert_eq!(
        rules[1].src,
        vec![AddressSpec::Tag("AzureHealthcareAPIs".to_owned())]
    );
    assert_eq!(rules[1].severity, Severity::Medium);
    assert!(policy.checks.is_empty());
    assert!(policy.self_tests.is_empty());

    let codes: Vec<(&str, Location)> = checked
        .diagnostics
        .iter()
        .map(|d| (d.code, d.location))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("service-tag-reliance", at(31, 1)),
            ("service-tag-reliance", at(46, 1))
        ]
    );
}

#[test]
fn contoso_loads_tags_from_the_published_file() {
    let (_, checked) =
        check_file(&examples().join("contoso-servicetags.toml")).expect("example is readable");
    let policy = checked.policy.expect("contoso is valid");
    let names: Vec<&str> = policy
        .service_tags
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(
        names,
        vec![
            "AzureHealthcareAPIs",
            "AzureContainerRegistry",
            "EventHub",
            "AzureKeyVault",
            "Storage",
            "Storage.EastUS"
        ]
    );
    assert_eq!(policy.service_tags[0].ranges.len(), 273);
    assert_eq!(policy.service_tags[0].ranges[0], net("4.232.28.160/27"));
    assert_eq!(policy.workspace.services.len(), 3);
    assert_eq!(
        policy.workspace.services[2].public_ips,
        vec![ip("20.37.196.20")]
    );
    assert_eq!(
        policy.rules[2].names,
        vec!["contoso-radiology.dicom.azurehealthcareapis.com".to_owned()]
    );
    assert_eq!(policy.default_action, Action::Alert);
    let checks: Vec<(FindingKind, bool, Option<Severity>, Option<Action>)> = policy
        .checks
        .iter()
        .map(|c| (c.kind, c.enabled, c.severity, c.action))
        .collect();
    assert_eq!(
        checks,
        vec![
            (FindingKind::ServiceTagReliance, false, None, None),
            (
                FindingKind::DnsConflict,
                true,
                Some(Severity::Critical),
                Some(Action::Deny)
            ),
        ]
    );
    assert_eq!(policy.self_tests.len(), 4);
    assert_eq!(policy.self_tests[2].expect, vec![FindingKind::PeBypass]);
    let warnings: Vec<String> = checked
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].ends_with(
        "warning[service-tag-reliance]: service tag `AzureHealthcareAPIs` declared: the \
         AzureHealthcareAPIs service tag is shared by all customers: it gives no isolation \
         between customers, workspaces or services"
    ));
}

#[test]
fn inline_tags_override_the_file() {
    let source = format!(
        "{MINIMAL}\n[service-tags]\nfile = \"ServiceTags_Public.subset.json\"\nStorage = [\"52.239.0.0/16\"]\n"
    );
    let checked = check_source("p.toml", &source, Some(&examples()));
    let policy = checked.policy.expect("valid");
    let storage = policy
        .service_tags
        .iter()
        .find(|t| t.name == "Storage")
        .expect("Storage");
    assert_eq!(storage.ranges, vec![net("52.239.0.0/16")]);
    assert_eq!(storage.at, at(15, 1));
    assert_eq!(policy.service_tags.len(), 6);
}

#[test]
fn render_points_at_the_token_with_character_columns() {
    let source = "[policy]\nname = \"…\" # …\nversion = \"1.0\"\ndefault-action = \"block\"\n";
    let checked = check_source("p.toml", source, None);
    let diagnostic = checked
        .diagnostics
        .iter()
        .find(|d| d.code == "unknown-value")
        .expect("unknown default-action");
    assert_eq!(diagnostic.location, at(4, 18));
    assert_eq!(
        diagnostic.render(source),
        "p.toml:4:18: error[unknown-value]: unknown default-action `block`\n  |\n4 | default-action = \"block\"\n  |                  ^^^^^^^\n  = expected one of: allow, alert, deny"
    );

    let source = "[policy]\nname = \"…\"\nversion = \"1.0\"\nbogus = 1\n";
    let checked = check_source("p.toml", source, None);
    let unknown = checked
        .diagnostics
        .iter()
        .find(|d| d.code == "unknown-key")
        .expect("unknown key");
    assert_eq!(unknown.location, at(4, 1));

    // Columns count characters: the `…` before the error is one column, not three.
    let source = "[policy]\nname = \"…\"; version = 1\n";
    let checked = check_source("p.toml", source, None);
    assert_eq!(checked.diagnostics[0].code, "toml-syntax");
    assert_eq!(checked.diagnostics[0].location, at(2, 11));
}

#[test]
fn render_without_a_matching_source_line_keeps_the_headline() {
    let diagnostic =
        Diagnostic::error("bad-cidr", "p.toml", at(40, 3), "no such line").with_expected("a CIDR");
    assert_eq!(
        diagnostic.render("one line\n"),
        "p.toml:40:3: error[bad-cidr]: no such line\n   = expected a CIDR"
    );
    assert_eq!(diagnostic.level, Level::Error);
}

#[test]
fn every_problem_is_reported_in_one_pass() {
    let source = r#"[policy]
name = "p"
version = "1.0.0"
default-action = "block"

[workspace]
name = "Fabrikam"

[[workspace.services]]
kind = "fhr"
name = "records"
private-ip = "10.1.9.5"

[private-endpoint]
vnet = "10.1.0.0/16"
subnet = "10.1.2.0/24"

[[rules]]
id = "r"
action = "deny"
dst-ports = [70000]
"#;
    let checked = check_source("p.toml", source, None);
    assert!(checked.policy.is_none());
    let found: Vec<(&str, Location)> = checked
        .diagnostics
        .iter()
        .map(|d| (d.code, d.location))
        .collect();
    assert_eq!(
        found,
        vec![
            ("unknown-value", at(4, 18)),
            ("bad-name", at(7, 8)),
            ("unknown-value", at(10, 8)),
            ("ip-outside-subnet", at(12, 14)),
            ("bad-port", at(21, 14)),
        ]
    );
}

#[test]
fn hostile_input_never_panics() {
    let inputs = [
        "",
        "\u{0}",
        "[[[",
        "a = \"\\u{D800}\"",
        "[policy]\nname = 1e400\nversion = -9999999999999999999999\n",
        "[workspace]\nservices = [1, \"x\", [], {}]\n",
        "[[rules]]\ndst-ports = [0x7fffffffffffffff, \"99999999999999999999-1\", \"-\", \"1-\"]\nprotocol = -1\n",
        "[checks]\npe-bypass = 3\n[service-tags]\n\"\" = [\"::/0\"]\nfile = 5\n",
        "[private-endpoint]\nvnet = \"::/129\"\nsubnet = \"10.0.0.0/8\"\nallowed-origins = \"x\"\n",
        "[[self-test]]\nflow = { src = \"x\" }\ndns = 3\nexpect = [1]\n",
    ];
    for input in inputs {
        let checked = check_source("p.toml", input, None);
        assert!(checked.policy.is_none(), "{input:?}");
        assert!(checked.has_errors());
        for d in &checked.diagnostics {
            let _ = d.render(input);
        }
        let _ = parse_cases("c.toml", input);
    }
}

#[test]
fn lint_runs_on_a_model_alone() {
    let source = format!(
        "{MINIMAL}\n[[dns-zones]]\nzone = \"privatelink.fhir.azurehealthcareapis.com\"\nlinked-vnets = [\"hub\", \"spoke\"]\n"
    );
    let policy = check_source("p.toml", &source, None).policy.expect("valid");
    let warnings = lint(&policy, "other-name.toml");
    assert_eq!(warnings.len(), 1);
    assert_eq!(
        warnings[0].to_string(),
        "other-name.toml:13:1: warning[dns-zone-multiple-vnets]: DNS zone \
         `privatelink.fhir.azurehealthcareapis.com` is linked to 2 VNets (hub, spoke): \
         resolution can conflict between them and clients get 403 from the service"
    );
    assert_eq!(warnings[0].level, Level::Warning);
}

#[test]
fn case_files_parse_into_test_cases() {
    let text = r#"
[[case]]
name = "bypass"
flow = { src = "10.1.5.9", dst = "20.37.1.10", src-port = 50000, dst-port = 443, protocol = "udp", sni = "Fabrikam-Records.fhir.azurehealthcareapis.com.", source = "flow-log", denied-by-nsg = true, cname-chain = ["a.example.com"] }
expect = ["pe-bypass", "rule"]

[[case]]
name = "dns"
dns = { client = "10.1.5.9", server = "168.63.129.16", query = "fabrikam-records.fhir.azurehealthcareapis.com", cname-chain = [], addresses = ["20.37.1.10", "2001:db8::1"], ttl = 30 }
expect = []
"#;
    let cases = parse_cases("c.toml", text).expect("valid case file");
    assert_eq!(cases.len(), 2);
    assert_eq!(cases[0].name, "bypass");
    assert_eq!(
        cases[0].input,
        TestInput::Flow(OwnedFlow {
            src: Some(ip("10.1.5.9")),
            dst: Some(ip("20.37.1.10")),
            src_port: 50000,
            dst_port: 443,
            protocol: 17,
            from_flow_log: true,
            denied_by_nsg: true,
            resolved_name: None,
            cname_chain: vec!["a.example.com".to_owned()],
            sni: Some("fabrikam-records.fhir.azurehealthcareapis.com".to_owned()),
            http_host: None,
            ..OwnedFlow::default()
        })
    );
    assert_eq!(
        cases[0].expect,
        vec![FindingKind::PeBypass, FindingKind::Rule]
    );
    assert_eq!(
        cases[1].input,
        TestInput::Dns(OwnedDnsAnswer {
            client: Some(ip("10.1.5.9")),
            server: Some(ip("168.63.129.16")),
            query: "fabrikam-records.fhir.azurehealthcareapis.com".to_owned(),
            cname_chain: Vec::new(),
            addresses: vec![ip("20.37.1.10"), ip("2001:db8::1")],
            ttl: 30,
            timestamp_ns: 0,
        })
    );
    assert!(cases[1].expect.is_empty());
}

#[test]
fn case_file_errors_are_all_reported() {
    let text = "[[case]]\nname = \"a\"\nflow = { src = \"10.1.5.9\", dst = \"10.1.2.5\", dst-port = \"443\" }\nexpect = [\"pe-bypas\"]\n\n[[case]]\nname = \"a\"\ndns = { client = \"10.1.5.9\", query = \"x.example.com\" }\nexpect = []\n\n[[cases]]\n";
    let diagnostics = parse_cases("c.toml", text).expect_err("broken case file");
    let found: Vec<(&str, Location)> = diagnostics.iter().map(|d| (d.code, d.location)).collect();
    assert_eq!(
        found,
        vec![
            ("wrong-type", at(3, 57)),
            ("unknown-value", at(4, 11)),
            ("duplicate-case", at(7, 8)),
            ("unknown-key", at(11, 3)),
        ]
    );
    assert_eq!(
        diagnostics[1].message,
        "unknown finding kind `pe-bypas`; did you mean `pe-bypass`?"
    );
}

#[test]
fn service_tag_files_are_checked() {
    let path = Path::new("tags.json");
    let tags = servicetags::parse(
        path,
        r#"{"values": [{"name": "A", "properties": {"addressPrefixes": ["10.0.0.1/8", "2001:db8::/32"]}}]}"#,
    )
    .expect("valid file");
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0].name, "A");
    assert_eq!(
        tags[0].ranges,
        vec![net("10.0.0.0/8"), net("2001:db8::/32")]
    );

    let error = servicetags::parse(
        path,
        r#"{"values": [{"name": "A", "properties": {"addressPrefixes": ["x"]}}]}"#,
    )
    .expect_err("bad prefix");
    assert!(matches!(
        error,
        ServiceTagsError::BadPrefix {
            value_index: 0,
            prefix_index: 0,
            ..
        }
    ));
    assert_eq!(
        error.to_string(),
        "tags.json: values[0] (`A`): addressPrefixes[0] `x` is not a CIDR"
    );

    let error = servicetags::parse(path, "{\n  \"values\": 3\n}").expect_err("bad shape");
    assert_eq!(
        error.to_string(),
        "tags.json:2:13: not an Azure service tag file: invalid type: integer `3`, expected a sequence"
    );

    let error = servicetags::load(Path::new("/nonexistent/tags.json")).expect_err("missing");
    assert!(matches!(error, ServiceTagsError::Read { .. }));
}

#[test]
fn diagnostics_come_sorted_by_location() {
    let source = "[workspace]\nname = \"x\"\n[policy]\nversion = \"?\"\n";
    let checked = check_source("p.toml", source, None);
    let locations: Vec<Location> = checked.diagnostics.iter().map(|d| d.location).collect();
    let mut sorted = locations.clone();
    sorted.sort();
    assert_eq!(locations, sorted);
    assert_eq!(locations.len(), 3);
}
