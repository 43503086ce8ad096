//! Running `linkward scan` as a user would and reading its EVE output back.

#![allow(dead_code)]

use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The example policy every scan test uses unless it writes its own.
pub fn fabrikam_policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fabrikam.toml")
}

/// One finding, reduced to the fields the tests compare.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub kind: String,
    pub src: String,
    pub src_port: u64,
    pub dst: String,
    pub dst_port: u64,
    pub name: Option<String>,
    pub sni: Option<String>,
    pub http_host: Option<String>,
    pub dns_chain: Vec<String>,
    pub policy_version: String,
}

impl Finding {
    /// A finding of `kind` from `src` to `dst` (socket addresses), made by policy
    /// version 1.4.0, with no names.
    pub fn new(kind: &str, src: &str, dst: &str) -> Finding {
        let src: SocketAddr = src.parse().expect("test address");
        let dst: SocketAddr = dst.parse().expect("test address");
        Finding {
            kind: kind.to_string(),
            src: src.ip().to_string(),
            src_port: u64::from(src.port()),
            dst: dst.ip().to_string(),
            dst_port: u64::from(dst.port()),
            name: None,
            sni: None,
            http_host: None,
            dns_chain: Vec::new(),
            policy_version: "1.4.0".to_string(),
        }
    }

    pub fn name(mut self, name: &str) -> Finding {
        self.name = Some(name.to_string());
        self
    }

    pub fn sni(mut self, sni: &str) -> Finding {
        self.sni = Some(sni.to_string());
        self
    }

    pub fn http_host(mut self, host: &str) -> Finding {
        self.http_host = Some(host.to_string());
        self
    }

    pub fn chain(mut self, chain: &[&str]) -> Finding {
        self.dns_chain = chain.iter().map(|c| c.to_string()).collect();
        self
    }

    pub fn version(mut self, v: &str) -> Finding {
        self.policy_version = v.to_string();
        self
    }

    /// The finding an EVE alert line reports.
    pub fn from_alert(v: &Value) -> Finding {
        let s = |v: &Value| v.as_str().map(str::to_string);
        let lw = &v["linkward"];
        Finding {
            kind: s(&lw["finding"]).expect("finding kind"),
            src: s(&v["src_ip"]).expect("src_ip"),
            src_port: v["src_port"].as_u64().expect("src_port"),
            dst: s(&v["dest_ip"]).expect("dest_ip"),
            dst_port: v["dest_port"].as_u64().expect("dest_port"),
            name: s(&lw["name"]),
            sni: s(&lw["sni"]),
            http_host: s(&lw["http_host"]),
            dns_chain: lw["dns_chain"]
                .as_array()
                .map(|a| a.iter().filter_map(s).collect())
                .unwrap_or_default(),
            policy_version: s(&lw["policy_version"]).expect("policy_version"),
        }
    }
}

/// What a run of `linkward scan` produced.
#[derive(Debug)]
pub struct Scan {
    pub code: i32,
    pub stderr: String,
    /// Findings, sorted.
    pub findings: Vec<Finding>,
    /// The alert lines as printed, in order.
    pub alerts: Vec<Value>,
    /// `linkward.stats` of the last line.
    pub stats: Value,
    /// `linkward.split` of the last line: how two workers joined the halves of a file.
    pub split: Value,
}

impl Scan {
    pub fn stat(&self, path: &str) -> u64 {
        let mut v = &self.stats;
        for part in path.split('.') {
            v = &v[part];
        }
        v.as_u64().unwrap_or(0)
    }

    /// Sum of the values of a `{reason: n}` map of the stats.
    pub fn stat_sum(&self, path: &str) -> u64 {
        let mut v = &self.stats;
        for part in path.split('.') {
            v = &v[part];
        }
        v.as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0)
    }
}

/// Runs `linkward scan --policy POLICY --format eve -o OUT --quiet EXTRA... INPUTS...`.
pub fn scan(policy: &Path, inputs: &[&Path], extra: &[&str]) -> Scan {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("findings.eve.json");
    let output = Command::new(env!("CARGO_BIN_EXE_linkward"))
        .arg("scan")
        .arg("--policy")
        .arg(policy)
        .args(["--format", "eve", "--quiet", "-o"])
        .arg(&out)
        .args(extra)
        .args(inputs)
        .output()
        .expect("run linkward");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let mut alerts = Vec::new();
    let mut stats = Value::Null;
    let mut split = Value::Null;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\nstderr: {stderr}"));
        match v["event_type"].as_str() {
            Some("alert") => alerts.push(v),
            Some("stats") => {
                stats = v["linkward"]["stats"].clone();
                split = v["linkward"]["split"].clone();
            }
            other => panic!("unexpected event type {other:?}: {line}"),
        }
    }
    let mut findings: Vec<Finding> = alerts.iter().map(Finding::from_alert).collect();
    findings.sort();
    Scan {
        code: output.status.code().unwrap_or(-1),
        stderr,
        findings,
        alerts,
        stats,
        split,
    }
}

/// Sorts expected findings the way [`Scan::findings`] is sorted.
pub fn sorted(mut v: Vec<Finding>) -> Vec<Finding> {
    v.sort();
    v
}
