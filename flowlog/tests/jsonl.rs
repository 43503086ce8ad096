//! The JSON-lines flow record form.

use std::net::IpAddr;

use linkward_flowlog::{
    Decision, Direction, FlowTuple, InputKind, MAX_LINE, MalformedTuple, Position, ReadSummary,
    SourceFormat, TupleEvent, TupleProblem, read_flow_log, read_flow_log_slice,
};

fn read(input: &str) -> (Vec<FlowTuple>, Vec<MalformedTuple>, ReadSummary) {
    let mut events = Vec::new();
    let summary =
        read_flow_log(input.as_bytes(), "flows.jsonl", |event| events.push(event)).expect("reads");
    let mut slice_events = Vec::new();
    let slice_summary = read_flow_log_slice(input.as_bytes(), "flows.jsonl", |event| {
        slice_events.push(event)
    })
    .expect("reads");
    assert_eq!(events, slice_events);
    assert_eq!(summary, slice_summary);
    let mut tuples = Vec::new();
    let mut malformed = Vec::new();
    for event in events {
        match event {
            TupleEvent::Tuple(tuple) => tuples.push(tuple),
            TupleEvent::Malformed(bad) => malformed.push(bad),
        }
    }
    (tuples, malformed, summary)
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

#[test]
fn full_record() {
    let input = r#"{"src":"10.1.0.4","dst":"20.37.1.10","src_port":50000,"dst_port":443,"protocol":"tcp","start":"2024-05-01T10:00:00.250Z","end":1714557660500,"packets":12,"bytes":5120,"packets_received":10,"bytes_received":64000,"name":"ws-fhir1.fhir.azurehealthcareapis.com","sni":"ws-fhir1.fhir.azurehealthcareapis.com","http_host":"ws-fhir1.fhir.azurehealthcareapis.com","denied":false,"direction":"outbound","rule":"allow-443","resource_id":"/subscriptions/s/vm1","extra":{"ignored":[1,2]}}"#;
    let (tuples, malformed, summary) = read(input);
    assert!(malformed.is_empty(), "{malformed:?}");
    assert_eq!(summary.input, Some(InputKind::JsonLines));
    assert_eq!((summary.records, summary.tuples), (1, 1));
    let t = &tuples[0];
    assert_eq!(t.source, SourceFormat::JsonLines);
    assert_eq!(t.src, ip("10.1.0.4"));
    assert_eq!(t.dst, ip("20.37.1.10"));
    assert_eq!((t.src_port, t.dst_port, t.protocol), (50000, 443, 6));
    assert_eq!(t.time_ns, 1_714_557_600_250_000_000);
    assert_eq!(t.end_time_ns, Some(1_714_557_660_500_000_000));
    assert_eq!(
        (
            t.packets_sent,
            t.bytes_sent,
            t.packets_received,
            t.bytes_received
        ),
        (Some(12), Some(5120), Some(10), Some(64000))
    );
    assert_eq!(
        t.name.as_deref(),
        Some("ws-fhir1.fhir.azurehealthcareapis.com")
    );
    assert_eq!(
        t.sni.as_deref(),
        Some("ws-fhir1.fhir.azurehealthcareapis.com")
    );
    assert_eq!(
        t.http_host.as_deref(),
        Some("ws-fhir1.fhir.azurehealthcareapis.com")
    );
    assert_eq!(t.decision, Decision::Allowed);
    assert_eq!(t.direction, Direction::Outbound);
    assert_eq!(t.state, None);
    assert_eq!(t.rule.as_deref(), Some("allow-443"));
    assert_eq!(t.resource_id.as_deref(), Some("/subscriptions/s/vm1"));
    assert_eq!(t.position, Position::default());
}

#[test]
fn minimal_records_and_defaults() {
    let input = concat!(
        r#"{"src":"10.1.0.4","dst":"10.1.2.5","src_port":1,"dst_port":443,"protocol":6,"start":1714557600}"#,
        "\r\n\n",
        r#"{"dst":"fd00::1","src":"fd00::2","protocol":"ICMPv6","start":1714557600.5,"denied":true,"direction":"I","sni":null}"#,
        "\n",
    );
    let (tuples, malformed, summary) = read(input);
    assert!(malformed.is_empty(), "{malformed:?}");
    assert_eq!(summary.records, 2);
    assert_eq!(tuples[0].time_ns, 1_714_557_600_000_000_000);
    assert_eq!(tuples[0].direction, Direction::Outbound);
    assert_eq!(tuples[0].decision, Decision::Allowed);
    assert_eq!(tuples[0].packets_sent, None);
    assert_eq!(tuples[0].sni, None);
    let icmp = &tuples[1];
    assert_eq!(icmp.protocol, 58);
    assert_eq!((icmp.src_port, icmp.dst_port), (0, 0));
    assert_eq!(icmp.time_ns, 1_714_557_600_500_000_000);
    assert_eq!(icmp.decision, Decision::Denied);
    assert_eq!(icmp.direction, Direction::Inbound);
    assert_eq!(icmp.sni, None);
    // Blank lines count in the line numbering.
    assert_eq!(icmp.position.record, 2);
}

#[test]
fn malformed_lines_are_reported_and_reading_goes_on() {
    let lines = [
        r#"{"dst":"10.1.2.5","src_port":1,"dst_port":443,"protocol":"tcp","start":1714557600}"#,
        r#"{"src":"10.1.0.999","dst":"10.1.2.5","src_port":1,"dst_port":443,"protocol":"tcp","start":1714557600}"#,
        r#"{"src":"10.1.0.4","dst":"10.1.2.5","src_port":1,"dst_port":"https","protocol":"tcp","start":1714557600}"#,
        r#"{"src":"10.1.0.4","dst":"10.1.2.5","src_port":1,"dst_port":443,"protocol":"quic","start":1714557600}"#,
        r#"{"src":"10.1.0.4","dst":"10.1.2.5","dst_port":443,"protocol":"udp","start":1714557600}"#,
        r#"{"src":"10.1.0.4","dst":"10.1.2.5","src_port":1,"dst_port":443,"protocol":"tcp"}"#,
        r#"{"src":"10.1.0.4","dst":"10.1.2.5","src_port":1,"dst_port":443,"protocol":"tcp","start":"yesterday"}"#,
        r#"{"src":"10.1.0.4","dst":"10.1.2.5","src_port":1,"dst_port":443,"protocol":"tcp","start":1,"src":"10.9.9.9"}"#,
        r#"{"src":"10.1.0.4", "dst": "#,
        r#"["not", "an", "object"]"#,
        r#"{"src":"10.1.0.4","dst":"10.1.2.5","src_port":70000,"dst_port":443,"protocol":"tcp","start":1714557600}"#,
        r#"{"src":"10.1.0.4","dst":"10.1.2.5","src_port":1,"dst_port":443,"protocol":"tcp","start":1714557600,"denied":"no"}"#,
        r#"{"src":"10.1.0.4","dst":"10.1.2.5","src_port":1,"dst_port":443,"protocol":"tcp","start":1714557600,"bytes":-1}"#,
        r#"{"src":"10.1.0.4","dst":"10.1.2.5","src_port":2,"dst_port":443,"protocol":"tcp","start":1714557600}"#,
    ];
    let (tuples, malformed, summary) = read(&lines.join("\n"));
    assert_eq!(
        (summary.records, summary.tuples, summary.malformed),
        (14, 1, 13)
    );
    assert_eq!(tuples[0].src_port, 2);
    assert_eq!(tuples[0].position.record, 13);
    let problems: Vec<String> = malformed.iter().map(|bad| bad.to_string()).collect();
    assert_eq!(
        problems,
        [
            "line 1: field `src` is missing",
            "line 2: field `src` has invalid value \"10.1.0.999\": an IPv4 or IPv6 address",
            "line 3: field `dst_port` has invalid value \"https\": a port number from 0 to 65535",
            "line 4: field `protocol` has invalid value \"quic\": a protocol name (tcp, udp, icmp, ...) or number from 0 to 255",
            "line 5: field `src_port` is missing",
            "line 6: field `start` is missing",
            "line 7: field `start` has invalid value \"yesterday\": epoch seconds or milliseconds, or an RFC 3339 time after 1970",
            "line 8: not a JSON flow record: duplicate field `src`",
            "line 9: not a JSON flow record: EOF while parsing a value",
            "line 10: not a JSON flow record: invalid type: sequence, expected a JSON flow record object",
            "line 11: field `src_port` has invalid value \"70000\": a port number from 0 to 65535",
            "line 12: field `denied` has invalid value \"no\": true or false",
            "line 13: field `bytes` has invalid value \"-1\": a non-negative integer",
        ]
    );
    assert_eq!(malformed[8].text, r#"{"src":"10.1.0.4", "dst":"#);
    assert_eq!(malformed[0].problem, TupleProblem::Missing { field: "src" });
}

#[test]
fn overlong_line_is_skipped_without_losing_the_next() {
    let good = r#"{"src":"10.1.0.4","dst":"10.1.2.5","src_port":1,"dst_port":443,"protocol":"tcp","start":1714557600}"#;
    let long = format!("{{\"src\":\"{}\"}}", "a".repeat(MAX_LINE + 10));
    let input = format!("{good}\n{long}\n{good}\n");
    let (tuples, malformed, summary) = read(&input);
    assert_eq!((summary.tuples, summary.malformed), (2, 1));
    assert_eq!(
        malformed[0].problem,
        TupleProblem::LineTooLong { limit: MAX_LINE }
    );
    assert_eq!(malformed[0].position.record, 1);
    assert_eq!(malformed[0].text.len(), MalformedTuple::MAX_TEXT);
    assert_eq!(tuples[1].position.record, 2);
}

#[test]
fn records_first_member_means_azure() {
    // Same bytes but with `records` first: read as an Azure document.
    let (tuples, malformed, summary) = read(r#"{"records":[]}"#);
    assert!(tuples.is_empty() && malformed.is_empty());
    assert_eq!(summary.input, Some(InputKind::AzureFlowLog));
    let (_, malformed, summary) = read(r#"{"recordsX":[]}"#);
    assert_eq!(summary.input, Some(InputKind::JsonLines));
    assert_eq!(malformed.len(), 1);
}
