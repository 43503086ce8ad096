//! What the host's tests build alike: flow records, and a backend's answer that
//! reports every record.

// Each test file uses its own part of this.
#![allow(dead_code)]

use linkward_guest::record::Finding;
use linkward_guest::vocab::{Action, FindingKind, Severity};
use linkward_host::subject::{FlowSubject, empty_chain};

/// One finding for each of `records` records, so a sink sees every record evaluated.
pub fn finding_for_each(records: usize) -> Vec<Finding> {
    (0..records as u32)
        .map(|index| Finding {
            index,
            kind: FindingKind::Rule,
            rule: "every-record".into(),
            severity: Severity::Info,
            action: Action::Alert,
            line: 1,
            reason: String::new(),
        })
        .collect()
}

/// A one-packet TCP flow from `src` port `src_port` to `dst` port 443.
pub fn tcp_flow(src: &str, dst: &str, src_port: u16) -> FlowSubject {
    FlowSubject {
        src: src.parse().expect("a test address"),
        dst: dst.parse().expect("a test address"),
        src_port,
        dst_port: 443,
        protocol: 6,
        first_seen_ns: 0,
        last_seen_ns: 0,
        packets: 1,
        bytes: 60,
        resolved_name: None,
        cname_chain: empty_chain(),
        sni: None,
        http_host: None,
        from_flow_log: false,
        denied_by_nsg: false,
        log_rule: None,
        input: 0,
    }
}
