//! `linkward scan` on flow logs, end to end: the real binary reads Azure VNet flow logs,
//! NSG flow logs (versions 1 and 2) and JSON-lines flow records, and its EVE output is
//! compared finding by finding (kind, rule, addresses, ports, the NSG's denial) and
//! counter by counter with what the policy must say about each flow.
//!
//! Most logs are built here, next to the findings they must produce; the broken ones
//! live in `tests/data/flowlogs/crafted/`, the Azure documentation samples in
//! `tests/data/flowlogs/`. Addresses are RFC 1918 and documentation ranges, with
//! 20.37.0.0/16 standing for the AzureHealthcareAPIs service tag.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The policy the crafted logs are checked against. The workspace VNet is 10.1.0.0/16
/// and the only allowed origin; FHIR `records` also answers on 203.0.113.50.
const POLICY: &str = r#"
[policy]
name = "flowlog-tests"
version = "1.0.0"
default-action = "allow"

[workspace]
name = "contoso"
public-network-access = "disabled"

[[workspace.services]]
kind = "fhir"
name = "records"
private-ip = "10.1.2.5"
public-ips = ["203.0.113.50"]

[[workspace.services]]
kind = "dicom"
name = "imaging"
private-ip = "10.1.2.6"

[private-endpoint]
vnet = "10.1.0.0/16"
subnet = "10.1.2.0/24"
allowed-origins = ["10.1.0.0/16"]

[[dns-zones]]
zone = "privatelink.fhir.azurehealthcareapis.com"
linked-vnets = ["hub"]

[service-tags]
AzureHealthcareAPIs = ["20.37.0.0/16"]

[[trusted-outbound]]
service = "records"
feature = "export"
targets = ["contosoexport.blob.core.windows.net"]
target-ranges = ["198.51.100.0/24"]

[[rules]]
id = "no-smb"
action = "deny"
protocol = "tcp"
src = ["10.1.0.0/16"]
dst-ports = [445]
severity = "high"

[[rules]]
id = "tag-to-apps"
action = "allow"
src = ["tag:AzureHealthcareAPIs", "192.0.2.0/24"]
dst = ["10.1.0.0/16"]
dst-ports = [443]
"#;

/// A policy for the Azure documentation samples, whose addresses are fixed: the
/// samples' clients are allowed origins, two of the public addresses they reach are
/// declared as the FHIR service's own, and administrative ports raise an alert (only
/// denied flows reach them, so only `--include-denied` shows those).
const SAMPLES_POLICY: &str = r#"
[policy]
name = "docs-samples"
version = "1.0.0"

[workspace]
name = "contoso"
public-network-access = "disabled"

[[workspace.services]]
kind = "fhir"
name = "records"
private-ip = "10.9.9.5"
public-ips = ["40.74.146.17", "203.0.113.117"]

[private-endpoint]
vnet = "10.0.0.0/8"
subnet = "10.9.9.0/24"
allowed-origins = ["10.0.0.0/24", "10.5.16.0/24"]

[service-tags]
AzureHealthcareAPIs = ["20.37.0.0/16"]

[[rules]]
id = "admin-ports"
action = "alert"
protocol = "tcp"
dst-ports = [22, 8088]
"#;

/// A finding reduced to what these tests compare.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    kind: String,
    rule: String,
    src: String,
    src_port: u64,
    dst: String,
    dst_port: u64,
    denied: bool,
}

fn seen(kind: &str, rule: &str, src: &str, src_port: u64, dst: &str, dst_port: u64) -> Seen {
    Seen {
        kind: kind.to_owned(),
        rule: rule.to_owned(),
        src: src.to_owned(),
        src_port,
        dst: dst.to_owned(),
        dst_port,
        denied: false,
    }
}

fn denied(mut s: Seen) -> Seen {
    s.denied = true;
    s
}

/// The flow-record counters of a run's `stats` line.
#[derive(Debug, PartialEq, Eq)]
struct Counts {
    tuples: u64,
    malformed: u64,
    flows: u64,
    denied_skipped: u64,
    evaluated: u64,
}

/// What one run of `linkward scan` produced.
struct Scan {
    code: Option<i32>,
    alerts: Vec<Value>,
    stats: Value,
    stderr: String,
}

impl Scan {
    fn findings(&self) -> Vec<Seen> {
        self.alerts
            .iter()
            .map(|a| Seen {
                kind: text(&a["linkward"]["finding"]),
                rule: text(&a["linkward"]["rule"]),
                src: text(&a["src_ip"]),
                src_port: a["src_port"].as_u64().expect("src_port is a number"),
                dst: text(&a["dest_ip"]),
                dst_port: a["dest_port"].as_u64().expect("dest_port is a number"),
                denied: a["linkward"]["denied_by_nsg"].as_bool().unwrap_or(false),
            })
            .collect()
    }

    /// The alert about the flow from `src_port` (every crafted flow has its own).
    fn alert(&self, src_port: u64) -> &Value {
        let found: Vec<&Value> = self
            .alerts
            .iter()
            .filter(|a| a["src_port"].as_u64() == Some(src_port))
            .collect();
        assert_eq!(found.len(), 1, "alerts from port {src_port}: {found:#?}");
        found[0]
    }

    fn stat(&self, name: &str) -> u64 {
        self.stats[name]
            .as_u64()
            .unwrap_or_else(|| panic!("stats.{name} is not a number: {}", self.stats))
    }

    fn counts(&self) -> Counts {
        Counts {
            tuples: self.stat("flow_record_tuples"),
            malformed: self.stat("flow_record_malformed"),
            flows: self.stat("flow_records_flows"),
            denied_skipped: self.stat("flow_records_denied_skipped"),
            evaluated: self.stat("flows_evaluated"),
        }
    }

    fn finding_counts(&self) -> BTreeMap<String, u64> {
        self.stats["findings"]
            .as_object()
            .expect("stats.findings is an object")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().expect("a finding count")))
            .collect()
    }

    fn input_errors(&self) -> Vec<String> {
        self.stats["input_errors"]
            .as_array()
            .expect("stats.input_errors is an array")
            .iter()
            .map(text)
            .collect()
    }
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, found {v}"))
        .to_owned()
}

fn kinds(list: &[(&str, u64)]) -> BTreeMap<String, u64> {
    list.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
}

/// A scratch directory holding the policies, the logs of one test and the output.
struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    fn new() -> Workdir {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let w = Workdir { dir };
        w.write("policy.toml", POLICY);
        w.write("samples-policy.toml", SAMPLES_POLICY);
        w
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the log's folders");
        }
        std::fs::write(&path, text).expect("write the log");
        path
    }

    /// Runs `linkward scan --policy POLICY --format eve -o OUT --quiet EXTRA... INPUTS...`.
    fn scan(&self, policy: &str, extra: &[&str], inputs: &[&Path]) -> Scan {
        let out = self.path("findings.eve.json");
        let output = Command::new(env!("CARGO_BIN_EXE_linkward"))
            .arg("scan")
            .arg("--policy")
            .arg(self.path(policy))
            .args(["--format", "eve", "--quiet", "-o"])
            .arg(&out)
            .args(extra)
            .args(inputs)
            .output()
            .expect("run linkward");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let eve = std::fs::read_to_string(&out)
            .unwrap_or_else(|e| panic!("no findings file ({e}); stderr:\n{stderr}"));
        let mut events: Vec<Value> = eve
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("bad EVE line {line}: {e}"))
            })
            .collect();
        let last = events
            .pop()
            .unwrap_or_else(|| panic!("empty EVE output; stderr:\n{stderr}"));
        assert_eq!(
            last["event_type"], "stats",
            "the last line is the stats line"
        );
        assert!(
            events.iter().all(|e| e["event_type"] == "alert"),
            "only alerts before the stats line: {eve}"
        );
        Scan {
            code: output.status.code(),
            alerts: events,
            stats: last["linkward"]["stats"].clone(),
            stderr,
        }
    }
}

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/flowlogs")
        .join(name)
}

fn crafted(name: &str) -> PathBuf {
    sample("crafted").join(name)
}

fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|t| serde_json::to_string(t).expect("a JSON string"))
        .collect::<Vec<_>>()
        .join(",\n")
}

/// A VNet flow log with one record and one ACL entry holding a flow group per
/// `(rule, tuples)`, members in the order Azure writes them.
fn vnet_log(groups: &[(&str, &[&str])]) -> String {
    let groups = groups
        .iter()
        .map(|(rule, tuples)| {
            format!(
                "{{\"rule\":{},\"flowTuples\":[\n{}]}}",
                quoted(&[rule]),
                quoted(tuples)
            )
        })
        .collect::<Vec<_>>()
        .join(",\n");
    format!(
        r#"{{"records":[{{"time":"2024-05-01T10:01:00.0000000Z","flowLogVersion":4,"macAddress":"00224871C205","category":"FlowLogFlowEvent","targetResourceID":"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/apps","operationName":"FlowLogFlowEvent","flowRecords":{{"flows":[{{"aclID":"00000000-0000-0000-0000-000000000001","flowGroups":[
{groups}]}}]}}}}]}}"#
    )
}

/// An NSG flow log of `version` with one record holding a rule entry per
/// `(rule, tuples)`, all on one interface.
fn nsg_log(version: u32, rules: &[(&str, &[&str])]) -> String {
    let rules = rules
        .iter()
        .map(|(rule, tuples)| {
            format!(
                "{{\"rule\":{},\"flows\":[{{\"mac\":\"000D3A000001\",\"flowTuples\":[\n{}]}}]}}",
                quoted(&[rule]),
                quoted(tuples)
            )
        })
        .collect::<Vec<_>>()
        .join(",\n");
    format!(
        r#"{{"records":[{{"time":"2024-05-01T10:01:00.0000000Z","systemId":"00000000-0000-0000-0000-000000000002","category":"NetworkSecurityGroupFlowEvent","resourceId":"/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/APPS-NSG","operationName":"NetworkSecurityGroupFlowEvents","properties":{{"Version":{version},"flows":[
{rules}]}}}}]}}"#
    )
}

// ---------------------------------------------------------------------------------------
// The Azure documentation samples
// ---------------------------------------------------------------------------------------

#[test]
fn vnet_docs_sample_counts_tuples_flows_and_denied_flows() {
    let w = Workdir::new();
    let log = sample("azure-docs__vnet-flow-logs-overview.sample.json");
    let bypass = |port| {
        seen(
            "pe-bypass",
            "pe-bypass",
            "10.0.0.6",
            port,
            "40.74.146.17",
            443,
        )
    };

    let scan = w.scan("samples-policy.toml", &[], &[&log]);
    assert_eq!(scan.code, Some(0), "stderr:\n{}", scan.stderr);
    // 10 allowed tuples are B/E pairs of 5 flows; the 9 denied tuples are 9 flows.
    assert_eq!(
        scan.counts(),
        Counts {
            tuples: 19,
            malformed: 0,
            flows: 14,
            denied_skipped: 9,
            evaluated: 5,
        }
    );
    assert_eq!(
        scan.findings(),
        [bypass(22730), bypass(22732), bypass(22734)]
    );
    assert_eq!(scan.finding_counts(), kinds(&[("pe-bypass", 3)]));
    assert!(scan.input_errors().is_empty());
    let stamps: Vec<String> = scan.alerts.iter().map(|a| text(&a["timestamp"])).collect();
    assert_eq!(
        stamps,
        [
            "2022-09-14T09:00:03.637000+0000",
            "2022-09-14T09:00:04.251000+0000",
            "2022-09-14T09:00:04.622000+0000",
        ]
    );
    for alert in &scan.alerts {
        assert_eq!(alert["linkward"]["source"], "flow-log");
        assert_eq!(
            alert["linkward"]["log_rule"],
            "DefaultRule_AllowInternetOutBound"
        );
        assert_eq!(
            alert["linkward"]["reason"],
            format!(
                "10.0.0.6 reached 40.74.146.17 (public address of \
                 contoso-records.fhir.azurehealthcareapis.com), inferred from the address: \
                 flow logs carry no names"
            )
        );
    }

    let scan = w.scan("samples-policy.toml", &["--include-denied"], &[&log]);
    assert_eq!(scan.code, Some(0), "stderr:\n{}", scan.stderr);
    assert_eq!(
        scan.counts(),
        Counts {
            tuples: 19,
            malformed: 0,
            flows: 14,
            denied_skipped: 0,
            evaluated: 14,
        }
    );
    assert_eq!(
        scan.findings(),
        [
            bypass(22730),
            bypass(22732),
            bypass(22734),
            denied(seen(
                "rule",
                "admin-ports",
                "101.33.218.153",
                55188,
                "10.0.0.6",
                22
            )),
        ]
    );
    assert_eq!(
        scan.finding_counts(),
        kinds(&[("pe-bypass", 3), ("rule", 1)])
    );
    let ssh = scan.alert(55188);
    assert_eq!(ssh["timestamp"], "2022-09-14T08:59:58.065000+0000");
    assert_eq!(
        ssh["linkward"]["log_rule"],
        "BlockHighRiskTCPPortsFromInternet"
    );
    assert_eq!(ssh["linkward"]["source"], "flow-log");
}

#[test]
fn nsg_v2_docs_sample_counts_tuples_flows_and_denied_flows() {
    let w = Workdir::new();
    let log = sample("azure-docs__nsg-flow-logs-overview.v2-sample.json");
    let bypass = seen(
        "pe-bypass",
        "pe-bypass",
        "10.5.16.4",
        59932,
        "203.0.113.117",
        443,
    );

    let scan = w.scan("samples-policy.toml", &[], &[&log]);
    assert_eq!(scan.code, Some(0), "stderr:\n{}", scan.stderr);
    assert_eq!(
        scan.counts(),
        Counts {
            tuples: 11,
            malformed: 0,
            flows: 11,
            denied_skipped: 7,
            evaluated: 4,
        }
    );
    assert_eq!(scan.findings(), std::slice::from_ref(&bypass));
    assert_eq!(scan.finding_counts(), kinds(&[("pe-bypass", 1)]));
    let alert = scan.alert(59932);
    assert_eq!(alert["timestamp"], "2018-11-13T11:59:39.000000+0000");
    assert_eq!(
        alert["linkward"]["log_rule"],
        "DefaultRule_AllowInternetOutBound"
    );

    let scan = w.scan("samples-policy.toml", &["--include-denied"], &[&log]);
    assert_eq!(scan.code, Some(0), "stderr:\n{}", scan.stderr);
    assert_eq!(
        scan.counts(),
        Counts {
            tuples: 11,
            malformed: 0,
            flows: 11,
            denied_skipped: 0,
            evaluated: 11,
        }
    );
    let admin = |src, port| denied(seen("rule", "admin-ports", src, port, "10.5.16.4", 8088));
    assert_eq!(
        scan.findings(),
        [
            admin("198.51.100.8", 48495),
            bypass,
            admin("80.211.72.221", 37433),
            admin("46.101.199.124", 60577),
        ]
    );
    assert_eq!(
        scan.finding_counts(),
        kinds(&[("pe-bypass", 1), ("rule", 3)])
    );
    for port in [48495, 37433, 60577] {
        assert_eq!(
            scan.alert(port)["linkward"]["log_rule"],
            "DefaultRule_DenyAllInBound"
        );
    }
    assert_eq!(
        scan.alert(37433)["timestamp"],
        "2018-11-13T12:01:15.000000+0000"
    );
}

// ---------------------------------------------------------------------------------------
// Every finding that applies to flow logs, each with a twin that yields nothing
// ---------------------------------------------------------------------------------------

/// One crafted flow: logged as a `B` and an `E` tuple from its own source port.
struct Case {
    what: &'static str,
    src: &'static str,
    src_port: u64,
    dst: &'static str,
    dst_port: u64,
    /// `(finding kind, rule)`, or `None` for a good-path twin.
    expect: Option<(&'static str, &'static str)>,
}

const CASES: &[Case] = &[
    Case {
        what: "allowed client to the AzureHealthcareAPIs range: pe-bypass by the tag",
        src: "10.1.0.4",
        src_port: 50000,
        dst: "20.37.1.10",
        dst_port: 443,
        expect: Some(("pe-bypass", "pe-bypass")),
    },
    Case {
        what: "the same client through the private endpoint",
        src: "10.1.0.4",
        src_port: 50001,
        dst: "10.1.2.5",
        dst_port: 443,
        expect: None,
    },
    Case {
        what: "allowed client to a service's public-ips: pe-bypass by the address",
        src: "10.1.0.4",
        src_port: 50002,
        dst: "203.0.113.50",
        dst_port: 443,
        expect: Some(("pe-bypass", "pe-bypass")),
    },
    Case {
        what: "allowed client to another public address",
        src: "10.1.0.4",
        src_port: 50003,
        dst: "203.0.113.51",
        dst_port: 443,
        expect: None,
    },
    Case {
        what: "outsider to the AzureHealthcareAPIs range: public-access",
        src: "198.51.100.7",
        src_port: 50004,
        dst: "20.37.1.10",
        dst_port: 443,
        expect: Some(("public-access", "public-access")),
    },
    Case {
        what: "outsider to a service's public-ips: public-access",
        src: "198.51.100.7",
        src_port: 50005,
        dst: "203.0.113.50",
        dst_port: 443,
        expect: Some(("public-access", "public-access")),
    },
    Case {
        what: "outsider to another public address",
        src: "198.51.100.7",
        src_port: 50006,
        dst: "203.0.113.51",
        dst_port: 443,
        expect: None,
    },
    Case {
        what: "outside origin to a private endpoint: origin-not-allowed",
        src: "10.9.0.4",
        src_port: 50007,
        dst: "10.1.2.5",
        dst_port: 443,
        expect: Some(("origin-not-allowed", "origin-not-allowed")),
    },
    Case {
        what: "outside origin into the private-endpoint subnet: origin-not-allowed",
        src: "10.9.0.4",
        src_port: 50008,
        dst: "10.1.2.77",
        dst_port: 443,
        expect: Some(("origin-not-allowed", "origin-not-allowed")),
    },
    Case {
        what: "allowed origin to a private endpoint",
        src: "10.1.3.4",
        src_port: 50009,
        dst: "10.1.2.6",
        dst_port: 443,
        expect: None,
    },
    Case {
        what: "service egress to an address no trusted-outbound names: untrusted-outbound",
        src: "20.37.1.10",
        src_port: 50010,
        dst: "192.0.2.80",
        dst_port: 443,
        expect: Some(("untrusted-outbound", "untrusted-outbound")),
    },
    Case {
        what: "service egress inside a trusted-outbound target-ranges entry",
        src: "20.37.1.10",
        src_port: 50011,
        dst: "198.51.100.20",
        dst_port: 443,
        expect: None,
    },
    Case {
        what: "SMB from the VNet: rule no-smb",
        src: "10.1.0.4",
        src_port: 50012,
        dst: "10.1.7.7",
        dst_port: 445,
        expect: Some(("rule", "no-smb")),
    },
    Case {
        what: "HTTPS between the same hosts",
        src: "10.1.0.4",
        src_port: 50013,
        dst: "10.1.7.7",
        dst_port: 443,
        expect: None,
    },
    Case {
        what: "allowed only through the tag clause of tag-to-apps: service-tag-reliance",
        src: "20.37.1.10",
        src_port: 50014,
        dst: "10.1.7.7",
        dst_port: 443,
        expect: Some(("service-tag-reliance", "tag-to-apps")),
    },
    Case {
        what: "allowed by the literal clause of the same rule",
        src: "192.0.2.10",
        src_port: 50015,
        dst: "10.1.7.7",
        dst_port: 443,
        expect: None,
    },
];

#[test]
fn every_flow_log_finding_and_its_good_twin() {
    let w = Workdir::new();
    let mut tuples = Vec::new();
    for (i, c) in CASES.iter().enumerate() {
        let begin = 1_714_557_600_000 + i as u64 * 1000;
        for (time, state, counters) in [(begin, "B", "0,0,0,0"), (begin + 500, "E", "4,400,4,800")]
        {
            tuples.push(format!(
                "{time},{},{},{},{},6,O,{state},NX,{counters}",
                c.src, c.dst, c.src_port, c.dst_port
            ));
        }
    }
    let tuples: Vec<&str> = tuples.iter().map(String::as_str).collect();
    let log = w.write("cases.json", &vnet_log(&[("AllowVnetOutBound", &tuples)]));

    let scan = w.scan("policy.toml", &[], &[&log]);
    assert_eq!(scan.code, Some(0), "stderr:\n{}", scan.stderr);
    let expected: Vec<Seen> = CASES
        .iter()
        .filter_map(|c| {
            let (kind, rule) = c.expect?;
            Some(seen(kind, rule, c.src, c.src_port, c.dst, c.dst_port))
        })
        .collect();
    for c in CASES {
        let got: Vec<Seen> = scan
            .findings()
            .into_iter()
            .filter(|f| f.src_port == c.src_port)
            .collect();
        let want: Vec<Seen> = c
            .expect
            .map(|(kind, rule)| seen(kind, rule, c.src, c.src_port, c.dst, c.dst_port))
            .into_iter()
            .collect();
        assert_eq!(got, want, "{}", c.what);
    }
    assert_eq!(scan.findings(), expected);
    assert_eq!(
        scan.counts(),
        Counts {
            tuples: 32,
            malformed: 0,
            flows: 16,
            denied_skipped: 0,
            evaluated: 16,
        }
    );
    assert_eq!(
        scan.finding_counts(),
        kinds(&[
            ("origin-not-allowed", 2),
            ("pe-bypass", 2),
            ("public-access", 2),
            ("rule", 1),
            ("service-tag-reliance", 1),
            ("untrusted-outbound", 1),
        ])
    );
    for alert in &scan.alerts {
        assert_eq!(alert["linkward"]["source"], "flow-log");
        assert_eq!(alert["linkward"]["log_rule"], "AllowVnetOutBound");
        assert_eq!(alert["pcap_filename"], log.display().to_string());
    }
    let reason = |port| text(&scan.alert(port)["linkward"]["reason"]);
    assert_eq!(
        reason(50000),
        "10.1.0.4 reached 20.37.1.10 (AzureHealthcareAPIs range), inferred from the address: \
         flow logs carry no names"
    );
    assert_eq!(
        reason(50002),
        "10.1.0.4 reached 203.0.113.50 (public address of \
         contoso-records.fhir.azurehealthcareapis.com), inferred from the address: flow logs \
         carry no names"
    );
    assert!(
        reason(50004).contains("the AzureHealthcareAPIs range, inferred from the address"),
        "{}",
        reason(50004)
    );
    assert!(
        reason(50005).contains("contoso-records.fhir.azurehealthcareapis.com (its public address)"),
        "{}",
        reason(50005)
    );
    assert_eq!(
        reason(50008),
        "10.9.0.4 is outside the allowed origins but reached the private-endpoint subnet at \
         10.1.2.77"
    );
    assert_eq!(scan.alert(50012)["alert"]["action"], "blocked");
}

#[test]
fn a_flow_logged_as_begin_continue_continue_end_is_evaluated_once() {
    let w = Workdir::new();
    let log = w.write(
        "long-flow.json",
        &vnet_log(&[(
            "AllowVnetOutBound",
            &[
                "1714557600000,10.1.0.4,20.37.1.10,51000,443,6,O,B,NX,0,0,0,0",
                "1714557660000,10.1.0.4,20.37.1.10,51000,443,6,O,C,NX,40,4000,38,90000",
                "1714557720000,10.1.0.4,20.37.1.10,51000,443,6,O,C,NX,12,1200,10,30000",
                "1714557780000,10.1.0.4,20.37.1.10,51000,443,6,O,E,NX,2,120,2,120",
            ],
        )]),
    );
    let scan = w.scan("policy.toml", &[], &[&log]);
    assert_eq!(scan.code, Some(0), "stderr:\n{}", scan.stderr);
    assert_eq!(
        scan.counts(),
        Counts {
            tuples: 4,
            malformed: 0,
            flows: 1,
            denied_skipped: 0,
            evaluated: 1,
        }
    );
    assert_eq!(
        scan.findings(),
        [seen(
            "pe-bypass",
            "pe-bypass",
            "10.1.0.4",
            51000,
            "20.37.1.10",
            443
        )]
    );
    assert_eq!(
        scan.alert(51000)["timestamp"],
        "2024-05-01T10:00:00.000000+0000"
    );
}

#[test]
fn vnet_times_in_seconds_and_milliseconds_give_the_same_timestamps() {
    let w = Workdir::new();
    let tuple =
        |time: &str, port: u32| format!("{time},10.1.0.4,20.37.1.10,{port},443,6,O,B,NX,0,0,0,0");
    let seconds = tuple("1714557600", 51100);
    let millis = tuple("1714557600000", 51101);
    let fraction = tuple("1714557600250", 51102);
    let a = w.write("seconds.json", &vnet_log(&[("AllowOut", &[&seconds])]));
    let b = w.write("millis.json", &vnet_log(&[("AllowOut", &[&millis])]));
    let c = w.write("fraction.json", &vnet_log(&[("AllowOut", &[&fraction])]));

    let scan = w.scan("policy.toml", &[], &[&a, &b, &c]);
    assert_eq!(scan.code, Some(0), "stderr:\n{}", scan.stderr);
    let stamps: Vec<String> = [51100, 51101, 51102]
        .iter()
        .map(|port| text(&scan.alert(*port)["timestamp"]))
        .collect();
    assert_eq!(
        stamps,
        [
            "2024-05-01T10:00:00.000000+0000",
            "2024-05-01T10:00:00.000000+0000",
            "2024-05-01T10:00:00.250000+0000",
        ]
    );
    assert_eq!(scan.finding_counts(), kinds(&[("pe-bypass", 3)]));
}

// ---------------------------------------------------------------------------------------
// NSG flow logs and JSON lines
// ---------------------------------------------------------------------------------------

#[test]
fn nsg_version_1_log() {
    let w = Workdir::new();
    let log = w.write(
        "nsg-v1.json",
        &nsg_log(
            1,
            &[
                (
                    "DefaultRule_AllowVnetOutBound",
                    &[
                        "1714557600,10.1.0.4,20.37.1.10,51200,443,T,O,A",
                        // Version 1 has no flow states: the same flow a minute later.
                        "1714557660,10.1.0.4,20.37.1.10,51200,443,T,O,A",
                        "1714557600,10.1.0.4,10.1.2.5,51201,443,T,O,A",
                        "1714557600,10.1.0.4,10.1.7.7,51202,445,T,O,A",
                        "1714557600,10.1.0.4,20.37.1.11,51203,1433,U,O,A",
                    ],
                ),
                (
                    "UserRule_DenyInternetInBound",
                    &["1714557630,198.51.100.7,10.1.2.5,51204,443,T,I,D"],
                ),
            ],
        ),
    );
    let expected = [
        seen(
            "pe-bypass",
            "pe-bypass",
            "10.1.0.4",
            51200,
            "20.37.1.10",
            443,
        ),
        seen("rule", "no-smb", "10.1.0.4", 51202, "10.1.7.7", 445),
        seen(
            "pe-bypass",
            "pe-bypass",
            "10.1.0.4",
            51203,
            "20.37.1.11",
            1433,
        ),
    ];

    let scan = w.scan("policy.toml", &[], &[&log]);
    assert_eq!(scan.code, Some(0), "stderr:\n{}", scan.stderr);
    assert_eq!(
        scan.counts(),
        Counts {
            tuples: 6,
            malformed: 0,
            flows: 5,
            denied_skipped: 1,
            evaluated: 4,
        }
    );
    assert_eq!(scan.findings(), expected);
    assert_eq!(scan.alert(51203)["proto"], "UDP");
    assert_eq!(scan.alert(51200)["proto"], "TCP");
    assert_eq!(
        scan.alert(51200)["linkward"]["log_rule"],
        "DefaultRule_AllowVnetOutBound"
    );

    let scan = w.scan("policy.toml", &["--include-denied"], &[&log]);
    assert_eq!(scan.code, Some(0), "stderr:\n{}", scan.stderr);
    assert_eq!(
        scan.counts(),
        Counts {
            tuples: 6,
            malformed: 0,
            flows: 5,
            denied_skipped: 0,
            evaluated: 5,
        }
    );
    let mut with_denied = expected.to_vec();
    with_denied.push(denied(seen(
        "origin-not-allowed",
        "origin-not-allowed",
        "198.51.100.7",
        51204,
        "10.1.2.5",
        443,
    )));
    assert_eq!(scan.findings(), with_denied);
    let outsider = scan.alert(51204);
    assert_eq!(
        outsider["linkward"]["log_rule"],
        "UserRule_DenyInternetInBound"
    );
    assert_eq!(outsider["linkward"]["denied_by_nsg"], true);
    assert_eq!(outsider["timestamp"], "2024-05-01T10:00:30.000000+0000");
}

#[test]
fn nsg_version_2_log() {
    let w = Workdir::new();
    let log = w.write(
        "nsg-v2.json",
        &nsg_log(
            2,
            &[
                (
                    "DefaultRule_AllowVnetOutBound",
                    &[
                        "1714557600,10.1.0.4,20.37.1.10,51300,443,T,O,A,B,,,,",
                        "1714557660,10.1.0.4,20.37.1.10,51300,443,T,O,A,C,10,1500,8,9000",
                        "1714557720,10.1.0.4,20.37.1.10,51300,443,T,O,A,E,2,120,2,120",
                        "1714557600,10.1.0.4,10.1.2.5,51301,443,T,O,A,B,,,,",
                    ],
                ),
                (
                    "DefaultRule_DenyAllInBound",
                    &["1714557630,198.51.100.7,10.1.2.5,51302,443,T,I,D,B,,,,"],
                ),
            ],
        ),
    );
    let scan = w.scan("policy.toml", &[], &[&log]);
    assert_eq!(scan.code, Some(0), "stderr:\n{}", scan.stderr);
    assert_eq!(
        scan.counts(),
        Counts {
            tuples: 5,
            malformed: 0,
            flows: 3,
            denied_skipped: 1,
            evaluated: 2,
        }
    );
    assert_eq!(
        scan.findings(),
        [seen(
            "pe-bypass",
            "pe-bypass",
            "10.1.0.4",
            51300,
            "20.37.1.10",
            443
        )]
    );
    let alert = scan.alert(51300);
    assert_eq!(alert["timestamp"], "2024-05-01T10:00:00.000000+0000");
    assert_eq!(
        alert["linkward"]["log_rule"],
        "DefaultRule_AllowVnetOutBound"
    );
    assert_eq!(alert["linkward"]["source"], "flow-log");
}

#[test]
fn json_lines_records_with_and_without_names() {
    let w = Workdir::new();
    let lines = [
        // No name: judged by its address, like an Azure tuple.
        r#"{"src":"10.1.0.4","dst":"20.37.1.10","src_port":51400,"dst_port":443,"protocol":"tcp","start":"2024-05-01T10:00:00Z","end":"2024-05-01T10:00:03Z","packets":12,"bytes":5120,"packets_received":10,"bytes_received":64000}"#,
        // The service's name in the SNI, at an address that is not its endpoint.
        r#"{"src":"10.1.0.4","dst":"20.37.1.11","src_port":51401,"dst_port":443,"protocol":6,"start":1714557600250,"sni":"contoso-records.fhir.azurehealthcareapis.com"}"#,
        // The same name at the private endpoint.
        r#"{"src":"10.1.0.4","dst":"10.1.2.5","src_port":51402,"dst_port":443,"protocol":"TCP","start":"2024-05-01T12:00:01+02:00","sni":"contoso-records.fhir.azurehealthcareapis.com"}"#,
        // Known by another name: nothing is inferred from the tag range any more.
        r#"{"src":"10.1.0.4","dst":"20.37.1.12","src_port":51403,"dst_port":443,"protocol":"tcp","start":1714557602,"sni":"www.example.org"}"#,
        r#"{"src":"198.51.100.7","dst":"10.1.2.5","src_port":51404,"dst_port":443,"protocol":"tcp","start":1714557603,"denied":true,"rule":"DenyInternet"}"#,
        "",
        r#"{"src":"10.1.0.4","dst":"10.1.7.7","src_port":51405,"dst_port":445,"protocol":"tcp","start":1714557604,"name":"files.contoso.example","rule":"AllowAll"}"#,
    ];
    let log = w.write("records.jsonl", &(lines.join("\n") + "\n"));

    let scan = w.scan("policy.toml", &[], &[&log]);
    assert_eq!(scan.code, Some(0), "stderr:\n{}", scan.stderr);
    assert_eq!(
        scan.counts(),
        Counts {
            tuples: 6,
            malformed: 0,
            flows: 6,
            denied_skipped: 1,
            evaluated: 5,
        }
    );
    assert_eq!(
        scan.findings(),
        [
            seen(
                "pe-bypass",
                "pe-bypass",
                "10.1.0.4",
                51400,
                "20.37.1.10",
                443
            ),
            seen(
                "pe-bypass",
                "pe-bypass",
                "10.1.0.4",
                51401,
                "20.37.1.11",
                443
            ),
            seen("rule", "no-smb", "10.1.0.4", 51405, "10.1.7.7", 445),
        ]
    );

    let unnamed = scan.alert(51400);
    assert_eq!(unnamed["linkward"]["source"], "flow-log");
    assert_eq!(unnamed["timestamp"], "2024-05-01T10:00:00.000000+0000");
    assert_eq!(unnamed["linkward"]["packets"], 22);
    assert_eq!(unnamed["linkward"]["bytes"], 69120);
    assert!(unnamed["linkward"].get("sni").is_none());

    let by_sni = scan.alert(51401);
    assert_eq!(by_sni["linkward"]["source"], "packets");
    assert_eq!(by_sni["app_proto"], "tls");
    assert_eq!(
        by_sni["linkward"]["sni"],
        "contoso-records.fhir.azurehealthcareapis.com"
    );
    assert_eq!(by_sni["timestamp"], "2024-05-01T10:00:00.250000+0000");
    assert_eq!(
        by_sni["linkward"]["reason"],
        "10.1.0.4 reached contoso-records.fhir.azurehealthcareapis.com (by TLS SNI) at \
         20.37.1.11, not at its private endpoint (10.1.2.5)"
    );

    let smb = scan.alert(51405);
    assert_eq!(smb["linkward"]["source"], "packets");
    assert_eq!(smb["linkward"]["name"], "files.contoso.example");
    assert_eq!(smb["linkward"]["log_rule"], "AllowAll");
}

// ---------------------------------------------------------------------------------------
// Blob directories
// ---------------------------------------------------------------------------------------

const BLOB_ROOT: &str = "insights-logs-flowlogflowevent/flowLogResourceID=/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/NETWORKWATCHERRG/PROVIDERS/MICROSOFT.NETWORK/NETWORKWATCHERS/NETWORKWATCHER_WESTEUROPE/FLOWLOGS/APPS";

#[test]
fn a_blob_directory_is_walked_in_time_order() {
    let w = Workdir::new();
    // Written newest first, so neither creation order nor listing order helps.
    let blobs = [
        (
            "y=2024/m=05/d=01/h=01/m=00/macAddress=00224871C205",
            1_714_525_260,
            51503,
        ),
        (
            "y=2024/m=05/d=01/h=00/m=00/macAddress=00224871C206",
            1_714_523_400,
            51502,
        ),
        (
            "y=2024/m=05/d=01/h=00/m=00/macAddress=00224871C205",
            1_714_522_200,
            51501,
        ),
        (
            "y=2024/m=04/d=30/h=23/m=00/macAddress=00224871C205",
            1_714_521_540,
            51500,
        ),
    ];
    for (folder, time, port) in blobs {
        let tuple = format!("{time}000,10.1.0.4,20.37.1.10,{port},443,6,O,B,NX,0,0,0,0");
        w.write(
            &format!("{BLOB_ROOT}/{folder}/PT1H.json"),
            &vnet_log(&[("AllowOut", &[&tuple])]),
        );
    }
    w.write(&format!("{BLOB_ROOT}/y=2024/m=05/notes.txt"), "not a blob");
    let root = w.path("insights-logs-flowlogflowevent");

    let scan = w.scan("policy.toml", &[], &[&root]);
    assert_eq!(scan.code, Some(0), "stderr:\n{}", scan.stderr);
    let order: Vec<(u64, String)> = scan
        .alerts
        .iter()
        .map(|a| {
            let file = text(&a["pcap_filename"]);
            let folder = file
                .strip_prefix(&w.path(BLOB_ROOT).display().to_string())
                .and_then(|rest| rest.strip_suffix("/PT1H.json"))
                .unwrap_or_else(|| panic!("unexpected file {file}"))
                .trim_start_matches('/')
                .to_owned();
            (a["src_port"].as_u64().expect("a port"), folder)
        })
        .collect();
    let expected: Vec<(u64, String)> = blobs
        .iter()
        .rev()
        .map(|(folder, _, port)| (*port, (*folder).to_owned()))
        .collect();
    assert_eq!(order, expected);
    assert_eq!(
        scan.counts(),
        Counts {
            tuples: 4,
            malformed: 0,
            flows: 4,
            denied_skipped: 0,
            evaluated: 4,
        }
    );
}

#[test]
fn a_flow_across_an_hour_boundary_is_evaluated_once() {
    let w = Workdir::new();
    let first = "y=2024/m=05/d=01/h=10/m=00/macAddress=00224871C205/PT1H.json";
    let second = "y=2024/m=05/d=01/h=11/m=00/macAddress=00224871C205/PT1H.json";
    w.write(
        &format!("{BLOB_ROOT}/{first}"),
        &vnet_log(&[(
            "AllowOut",
            &["1714561140000,10.1.0.4,20.37.1.10,51600,443,6,O,B,NX,0,0,0,0"],
        )]),
    );
    w.write(
        &format!("{BLOB_ROOT}/{second}"),
        &vnet_log(&[(
            "AllowOut",
            &[
                "1714561260000,10.1.0.4,20.37.1.10,51600,443,6,O,C,NX,3,300,3,300",
                "1714561320000,10.1.0.4,20.37.1.10,51600,443,6,O,E,NX,1,60,1,60",
            ],
        )]),
    );
    let scan = w.scan(
        "policy.toml",
        &[],
        &[&w.path("insights-logs-flowlogflowevent")],
    );
    assert_eq!(scan.code, Some(0), "stderr:\n{}", scan.stderr);
    assert_eq!(
        scan.counts(),
        Counts {
            tuples: 3,
            malformed: 0,
            flows: 1,
            denied_skipped: 0,
            evaluated: 1,
        }
    );
    assert_eq!(
        scan.findings(),
        [seen(
            "pe-bypass",
            "pe-bypass",
            "10.1.0.4",
            51600,
            "20.37.1.10",
            443
        )]
    );
}

// ---------------------------------------------------------------------------------------
// Broken input
// ---------------------------------------------------------------------------------------

#[test]
fn truncated_log_stops_that_file_only_and_keeps_what_came_before() {
    let w = Workdir::new();
    let truncated = crafted("truncated.vnet.json");
    let good = w.write(
        "after.jsonl",
        r#"{"src":"10.1.0.4","dst":"20.37.1.10","src_port":51700,"dst_port":443,"protocol":"tcp","start":1714557700}"#,
    );
    let scan = w.scan("policy.toml", &[], &[&truncated, &good]);
    assert_eq!(scan.code, Some(2), "stderr:\n{}", scan.stderr);
    let message = format!(
        "linkward: error: {}: record 0, flow 0, group 0, tuple 2, in \
         `records[].flowRecords.flows[].flowGroups[].flowTuples`, line 18, column 49: input is \
         truncated: EOF while parsing a string (everything before it was evaluated)",
        truncated.display()
    );
    assert!(scan.stderr.contains(&message), "stderr:\n{}", scan.stderr);
    assert_eq!(
        scan.findings(),
        [
            seen(
                "pe-bypass",
                "pe-bypass",
                "10.1.0.4",
                50100,
                "20.37.1.10",
                443
            ),
            seen(
                "pe-bypass",
                "pe-bypass",
                "10.1.0.5",
                50101,
                "203.0.113.50",
                443
            ),
            seen(
                "pe-bypass",
                "pe-bypass",
                "10.1.0.4",
                51700,
                "20.37.1.10",
                443
            ),
        ]
    );
    assert_eq!(
        scan.counts(),
        Counts {
            tuples: 3,
            malformed: 0,
            flows: 3,
            denied_skipped: 0,
            evaluated: 3,
        }
    );
    let errors = scan.input_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!(
            "{}: record 0, flow 0, group 0, tuple 2",
            truncated.display()
        )),
        "{errors:?}"
    );
}

#[test]
fn a_wrong_type_stops_the_file_with_its_place() {
    let w = Workdir::new();
    let log = crafted("wrong-type.vnet.json");
    let scan = w.scan("policy.toml", &[], &[&log]);
    assert_eq!(scan.code, Some(2), "stderr:\n{}", scan.stderr);
    let message = format!(
        "linkward: error: {}: record 0, flow 0, group 1, in \
         `records[].flowRecords.flows[].flowGroups[].flowTuples`",
        log.display()
    );
    assert!(scan.stderr.contains(&message), "stderr:\n{}", scan.stderr);
    assert!(
        scan.stderr.contains(
            "unexpected structure: invalid type: string \
             \"1714557601000,10.1.0.5,20.37.1.10,50201,443,6,O,B,NX,0,0,0,0\", expected an \
             array of flow tuple strings"
        ),
        "stderr:\n{}",
        scan.stderr
    );
    assert_eq!(
        scan.findings(),
        [seen(
            "pe-bypass",
            "pe-bypass",
            "10.1.0.4",
            50200,
            "20.37.1.10",
            443
        )]
    );
    assert_eq!(scan.input_errors().len(), 1);
}

#[test]
fn a_tuple_with_missing_fields_is_counted_and_skipped() {
    let w = Workdir::new();
    let log = crafted("missing-fields.vnet.json");
    let scan = w.scan("policy.toml", &[], &[&log]);
    assert_eq!(scan.code, Some(0), "stderr:\n{}", scan.stderr);
    let warning = format!(
        "linkward: warning: malformed tuple: {}: record 0, flow 0, group 0, tuple 1: expected \
         13 comma-separated fields, found 12",
        log.display()
    );
    assert!(scan.stderr.contains(&warning), "stderr:\n{}", scan.stderr);
    assert_eq!(
        scan.counts(),
        Counts {
            tuples: 2,
            malformed: 1,
            flows: 2,
            denied_skipped: 0,
            evaluated: 2,
        }
    );
    assert_eq!(
        scan.findings(),
        [
            seen(
                "pe-bypass",
                "pe-bypass",
                "10.1.0.4",
                50300,
                "20.37.1.10",
                443
            ),
            seen(
                "pe-bypass",
                "pe-bypass",
                "10.1.0.6",
                50302,
                "20.37.1.10",
                443
            ),
        ]
    );
    assert!(scan.input_errors().is_empty());
}

#[test]
fn an_unknown_nsg_version_is_refused() {
    let w = Workdir::new();
    let log = crafted("nsg-version-3.json");
    let scan = w.scan("policy.toml", &[], &[&log]);
    assert_eq!(scan.code, Some(2), "stderr:\n{}", scan.stderr);
    let message = format!(
        "linkward: error: {}: record 0, in `records[].properties.Version`, line 7, column 21: \
         NSG flow log version 3 is not supported (versions 1 and 2 are)",
        log.display()
    );
    assert!(scan.stderr.contains(&message), "stderr:\n{}", scan.stderr);
    assert!(scan.findings().is_empty());
    assert_eq!(
        scan.counts(),
        Counts {
            tuples: 0,
            malformed: 0,
            flows: 0,
            denied_skipped: 0,
            evaluated: 0,
        }
    );
}

#[test]
fn json_that_is_not_a_flow_log_is_refused() {
    let w = Workdir::new();
    let log = w.write("array.json", "[1, 2, 3]\n");
    let scan = w.scan("policy.toml", &[], &[&log]);
    assert_eq!(scan.code, Some(2), "stderr:\n{}", scan.stderr);
    let message = format!(
        "linkward: error: {}: not a flow log: expected a JSON object, found \"[1, 2, 3]\\n\"",
        log.display()
    );
    assert!(scan.stderr.contains(&message), "stderr:\n{}", scan.stderr);
    assert!(scan.findings().is_empty());
}

#[test]
fn a_flow_log_after_long_leading_whitespace_is_still_a_flow_log() {
    let w = Workdir::new();
    let tuple = "1714557600000,10.1.0.4,20.37.1.10,51800,443,6,O,B,NX,0,0,0,0";
    let log = w.write(
        "indented.json",
        &format!("{:100}{}", "", vnet_log(&[("AllowOut", &[tuple])])),
    );
    let scan = w.scan("policy.toml", &[], &[&log]);
    assert_eq!(scan.code, Some(0), "stderr:\n{}", scan.stderr);
    assert_eq!(
        scan.findings(),
        [seen(
            "pe-bypass",
            "pe-bypass",
            "10.1.0.4",
            51800,
            "20.37.1.10",
            443
        )]
    );
}
