//! Crafted Azure flow logs: both formats, every version, and the ways a log
//! can be broken.

use std::io::{self, Read};
use std::net::IpAddr;

use linkward_flowlog::{
    Decision, Direction, ErrorKind, FlowLogError, FlowState, FlowTuple, MalformedTuple, Position,
    ReadSummary, TupleEvent, TupleProblem, read_flow_log, read_flow_log_slice,
};

struct Outcome {
    tuples: Vec<FlowTuple>,
    malformed: Vec<MalformedTuple>,
    result: Result<ReadSummary, FlowLogError>,
}

/// Reads `input` through the slice reader and through the streaming reader
/// (fed a few bytes at a time), checks that both saw the same, and returns
/// the streaming reader's outcome.
fn read(input: &str) -> Outcome {
    let mut slice_events = Vec::new();
    let slice_result = read_flow_log_slice(input.as_bytes(), "crafted.json", |event| {
        slice_events.push(event)
    });
    let mut events = Vec::new();
    let result = read_flow_log(
        Trickle {
            data: input.as_bytes(),
            step: 7,
        },
        "crafted.json",
        |event| events.push(event),
    );
    assert_eq!(slice_events, events, "slice and stream readers differ");
    match (&slice_result, &result) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => {
            assert_eq!(a.summary(), b.summary());
            assert_eq!(a.location().record, b.location().record);
            assert_eq!(a.location().tuple, b.location().tuple);
            assert_eq!(a.kind().to_string(), b.kind().to_string());
        }
        _ => panic!("slice reader gave {slice_result:?}, stream reader {result:?}"),
    }
    let mut outcome = Outcome {
        tuples: Vec::new(),
        malformed: Vec::new(),
        result,
    };
    for event in events {
        match event {
            TupleEvent::Tuple(tuple) => outcome.tuples.push(tuple),
            TupleEvent::Malformed(bad) => outcome.malformed.push(bad),
        }
    }
    outcome
}

/// A reader that returns at most `step` bytes per call, so that format
/// detection and parsing see the input in small pieces.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

fn vnet_log(tuples: &[&str]) -> String {
    let quoted: Vec<String> = tuples.iter().map(|t| format!("\"{t}\"")).collect();
    format!(
        r#"{{"records":[{{"time":"2024-05-01T10:01:00Z","flowLogVersion":4,"macAddress":"6045BD000001",
        "category":"FlowLogFlowEvent","targetResourceID":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/ahds-vnet",
        "flowRecords":{{"flows":[{{"aclID":"acl-1","flowGroups":[{{"rule":"AllowPrivateEndpoint","flowTuples":[{}]}}]}}]}}}}]}}"#,
        quoted.join(",")
    )
}

fn nsg_log(version: &str, tuples: &[&str]) -> String {
    let quoted: Vec<String> = tuples.iter().map(|t| format!("\"{t}\"")).collect();
    format!(
        r#"{{"records":[{{"time":"2024-05-01T10:01:00Z","category":"NetworkSecurityGroupFlowEvent",
        "resourceId":"/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/PE-NSG",
        "properties":{{"Version":{version},"flows":[{{"rule":"UserRule_AllowFhir","flows":[{{"mac":"000D3AF87856","flowTuples":[{}]}}]}}]}}}}]}}"#,
        quoted.join(",")
    )
}

#[test]
fn vnet_epoch_milliseconds_and_seconds() {
    let out = read(&vnet_log(&[
        "1714557660123,10.1.0.4,10.1.2.5,50000,443,6,O,B,NX,0,0,0,0",
        "1714557660,10.1.0.4,10.1.2.5,50001,443,6,O,C,X,10,1200,8,9000",
        "1714557661999,fd00::4,fd00::2:5,50002,443,17,I,E,NX_LOCAL_DST,1,2,3,4",
    ]));
    let summary = out.result.expect("reads");
    assert_eq!(
        (summary.tuples, summary.malformed, summary.vnet_records),
        (3, 0, 1)
    );
    assert_eq!(out.tuples[0].time_ns, 1_714_557_660_123_000_000);
    assert_eq!(out.tuples[1].time_ns, 1_714_557_660_000_000_000);
    assert_eq!(out.tuples[2].time_ns, 1_714_557_661_999_000_000);
    assert_eq!(
        out.tuples[1].encryption,
        Some(linkward_flowlog::Encryption::Encrypted)
    );
    assert_eq!(out.tuples[1].bytes_received, Some(9000));
    assert_eq!(out.tuples[2].src, ip("fd00::4"));
    assert_eq!(out.tuples[2].protocol, 17);
    assert_eq!(out.tuples[2].direction, Direction::Inbound);
    assert_eq!(out.tuples[2].state, Some(FlowState::End));
    assert_eq!(
        out.tuples[2].encryption,
        Some(linkward_flowlog::Encryption::LocalDestination)
    );
    assert_eq!(out.tuples[0].mac.as_deref(), Some("6045BD000001"));
    assert_eq!(out.tuples[0].rule.as_deref(), Some("AllowPrivateEndpoint"));
    assert_eq!(out.tuples[0].acl_id.as_deref(), Some("acl-1"));
}

#[test]
fn nsg_version_1() {
    let out = read(&nsg_log(
        "1",
        &[
            "1714557660,10.1.0.4,10.1.2.5,50000,443,T,O,A",
            "1714557661,203.0.113.9,10.1.2.5,40000,53,U,I,D",
        ],
    ));
    let summary = out.result.expect("reads");
    assert_eq!(
        (summary.tuples, summary.malformed, summary.nsg_records),
        (2, 0, 1)
    );
    let first = &out.tuples[0];
    assert_eq!(first.flow_log_version, Some(1));
    assert_eq!(first.state, None);
    assert_eq!(first.decision, Decision::Allowed);
    assert_eq!(first.protocol, 6);
    assert_eq!(first.packets_sent, None);
    assert_eq!(first.mac.as_deref(), Some("000D3AF87856"));
    assert_eq!(first.rule.as_deref(), Some("UserRule_AllowFhir"));
    let second = &out.tuples[1];
    assert_eq!(second.protocol, 17);
    assert_eq!(second.decision, Decision::Denied);
    assert_eq!(second.direction, Direction::Inbound);
    assert_eq!(
        second.position,
        Position {
            record: 0,
            flow: 0,
            group: 0,
            tuple: 1
        }
    );
}

#[test]
fn nsg_version_2() {
    let out = read(&nsg_log(
        "2",
        &[
            "1714557660,10.1.0.4,10.1.2.5,50000,443,T,O,A,B,,,,",
            "1714557720,10.1.0.4,10.1.2.5,50000,443,T,O,A,C,12,3400,10,56000",
            "1714557780,10.1.0.4,10.1.2.5,50000,443,T,O,A,E,2,120,1,60",
        ],
    ));
    let summary = out.result.expect("reads");
    assert_eq!(summary.tuples, 3);
    assert_eq!(out.tuples[0].state, Some(FlowState::Begin));
    assert_eq!(out.tuples[0].bytes_sent, None);
    assert_eq!(out.tuples[1].state, Some(FlowState::Continuing));
    assert_eq!(
        (
            out.tuples[1].packets_sent,
            out.tuples[1].bytes_sent,
            out.tuples[1].packets_received,
            out.tuples[1].bytes_received
        ),
        (Some(12), Some(3400), Some(10), Some(56000))
    );
    assert_eq!(out.tuples[2].state, Some(FlowState::End));
}

#[test]
fn version_1_tuple_in_version_2_record_is_malformed() {
    let out = read(&nsg_log(
        "2",
        &["1714557660,10.1.0.4,10.1.2.5,50000,443,T,O,A"],
    ));
    assert_eq!(out.result.expect("reads").malformed, 1);
    assert_eq!(
        out.malformed[0].problem,
        TupleProblem::FieldCount {
            expected: 13,
            found: 8
        }
    );
}

#[test]
fn malformed_tuples_are_reported_and_reading_goes_on() {
    let out = read(&vnet_log(&[
        "1714557660123,10.1.0.4,10.1.2.5,50000,443,6,O,B,NX,0,0,0,0",
        "1714557660123,10.1.0.4,10.1.2.5,50000",
        "1714557660123,10.1.0.4,10.1.2.999,50000,443,6,O,B,NX,0,0,0,0",
        "1714557660123,10.1.0.4,10.1.2.5,http,443,6,O,B,NX,0,0,0,0",
        "1714557660123,10.1.0.4,10.1.2.5,50000,443,6,X,B,NX,0,0,0,0",
        ",10.1.0.4,10.1.2.5,50000,443,6,O,B,NX,0,0,0,0",
        "1714557660123,10.1.0.4,10.1.2.5,50000,443,300,O,B,NX,0,0,0,0",
        "1714557660123,10.1.0.4,10.1.2.5,50000,443,6,O,Q,NX,0,0,0,0",
        "1714557660123,10.1.0.4,10.1.2.5,50000,443,6,O,E,NX,1,-5,0,0",
        "1714557660124,10.1.0.4,10.1.2.5,50001,443,6,O,E,NX,1,2,3,4",
    ]));
    let summary = out.result.expect("reads");
    assert_eq!((summary.tuples, summary.malformed), (2, 8));
    assert_eq!(out.tuples[1].src_port, 50001);
    assert_eq!(out.tuples[1].position.tuple, 9);
    let problems: Vec<String> = out.malformed.iter().map(|bad| bad.to_string()).collect();
    assert_eq!(
        problems,
        [
            "record 0, flow 0, group 0, tuple 1: expected 13 comma-separated fields, found 4",
            "record 0, flow 0, group 0, tuple 2: field `dst` has invalid value \"10.1.2.999\": an IPv4 or IPv6 address",
            "record 0, flow 0, group 0, tuple 3: field `src_port` has invalid value \"http\": a port number from 0 to 65535",
            "record 0, flow 0, group 0, tuple 4: field `direction` has invalid value \"X\": I or O",
            "record 0, flow 0, group 0, tuple 5: field `time` is missing",
            "record 0, flow 0, group 0, tuple 6: field `protocol` has invalid value \"300\": an IANA protocol number from 0 to 255",
            "record 0, flow 0, group 0, tuple 7: field `state` has invalid value \"Q\": B, C, E or D",
            "record 0, flow 0, group 0, tuple 8: field `bytes_sent` has invalid value \"-5\": a non-negative integer",
        ]
    );
    assert_eq!(
        out.malformed[0].text,
        "1714557660123,10.1.0.4,10.1.2.5,50000"
    );
}

#[test]
fn nsg_unknown_protocol_letter_is_malformed() {
    let out = read(&nsg_log(
        "2",
        &[
            "1714557660,10.1.0.4,10.1.2.5,50000,443,I,O,A,B,,,,",
            "1714557660,10.1.0.4,10.1.2.5,50000,443,T,O,Z,B,,,,",
            "1714557660,10.1.0.4,10.1.2.5,50000,443,T,O,A,B,,,,",
        ],
    ));
    assert_eq!(out.result.expect("reads").tuples, 1);
    assert_eq!(
        out.malformed[0].problem,
        TupleProblem::Invalid {
            field: "protocol",
            value: "I".to_owned(),
            why: "T or U"
        }
    );
    assert_eq!(
        out.malformed[1].problem,
        TupleProblem::Invalid {
            field: "decision",
            value: "Z".to_owned(),
            why: "A or D"
        }
    );
}

#[test]
fn a_tuple_that_is_not_a_string_is_malformed() {
    let input = vnet_log(&["1714557660123,10.1.0.4,10.1.2.5,50000,443,6,O,B,NX,0,0,0,0"])
        .replace("[\"1714", "[42, {\"a\": [1]}, null, \"1714");
    let out = read(&input);
    let summary = out.result.expect("reads");
    assert_eq!((summary.tuples, summary.malformed), (1, 3));
    assert_eq!(
        out.malformed[0].problem,
        TupleProblem::NotAString { found: "number" }
    );
    assert_eq!(
        out.malformed[1].problem,
        TupleProblem::NotAString { found: "object" }
    );
    assert_eq!(
        out.malformed[2].problem,
        TupleProblem::NotAString { found: "null" }
    );
    assert_eq!(out.tuples[0].position.tuple, 3);
}

/// Two records; the second is cut off inside its tuples.
fn two_records_truncated() -> String {
    let full = String::from(
        r#"{"records":[
{"resourceId":"/nsg/a","properties":{"Version":2,"flows":[{"rule":"r1","flows":[{"mac":"M1","flowTuples":[
"1714557660,10.1.0.4,10.1.2.5,50000,443,T,O,A,B,,,,",
"1714557661,10.1.0.4,10.1.2.5,50001,443,T,O,A,B,,,,"]}]}]}},
{"resourceId":"/nsg/b","properties":{"Version":2,"flows":[{"rule":"r2","flows":[{"mac":"M2","flowTuples":[
"1714557662,10.1.0.4,10.1.2.5,50002,443,T,O,A,B,,,,",
"1714557663,10.1.0.4,10.1.2.5,50003,443,T,O,A,B,,,,",
"1714557664,10.1.0.4,10.1.2.5,50004,443,T,O,A,B,,,,"]}]}]}}]}"#,
    );
    let cut = full.find("\"1714557664").expect("marker") + 20;
    full[..cut].to_owned()
}

#[test]
fn truncated_json_names_file_record_and_what() {
    let out = read(&two_records_truncated());
    let err = out.result.expect_err("truncated input fails");
    assert!(matches!(err.kind(), ErrorKind::Truncated { .. }), "{err}");
    assert_eq!(err.source_name(), "crafted.json");
    assert_eq!(err.location().record, Some(1));
    assert_eq!(err.location().flow, Some(0));
    assert_eq!(err.location().group, Some(0));
    assert_eq!(err.location().tuple, Some(2));
    assert_eq!(
        err.location().member,
        Some("records[].properties.flows[].flows[].flowTuples")
    );
    assert_eq!(err.location().line, Some(8));
    assert_eq!(
        err.to_string(),
        "crafted.json: record 1, flow 0, group 0, tuple 2, in `records[].properties.flows[].flows[].flowTuples`, \
         line 8, column 20: input is truncated: EOF while parsing a string"
    );
    // The four complete tuples before the cut were delivered and counted.
    assert_eq!(out.tuples.len(), 4);
    assert_eq!(out.tuples[3].src_port, 50003);
    assert_eq!(out.tuples[3].resource_id.as_deref(), Some("/nsg/b"));
    assert_eq!(err.summary().tuples, 4);
    assert_eq!(err.summary().records, 1);
}

#[test]
fn truncated_between_records() {
    let input = nsg_log("2", &["1714557660,10.1.0.4,10.1.2.5,50000,443,T,O,A,B,,,,"]);
    let cut = &input[..input.len() - 2];
    let out = read(cut);
    let err = out.result.expect_err("truncated input fails");
    assert!(matches!(err.kind(), ErrorKind::Truncated { .. }), "{err}");
    assert_eq!(err.location().record, Some(1));
    assert_eq!(err.location().tuple, None);
    assert_eq!(err.summary().tuples, 1);
    assert_eq!(err.summary().records, 1);
}

#[test]
fn wrong_type_where_an_array_belongs() {
    let input = r#"{"records":[{"resourceId":"/nsg","properties":{"Version":2,"flows":[{"rule":"r","flows":[{"mac":"M","flowTuples":"1714557660,10.1.0.4,10.1.2.5,50000,443,T,O,A,B,,,,"}]}]}}]}"#;
    let out = read(input);
    let err = out.result.expect_err("wrong type fails");
    match err.kind() {
        ErrorKind::Structure { message } => assert_eq!(
            message,
            "invalid type: string \"1714557660,10.1.0.4,10.1.2.5,50000,443,T,O,A,B,,,,\", expected an array of flow tuple strings"
        ),
        other => panic!("unexpected error kind {other:?}"),
    }
    assert_eq!(err.location().record, Some(0));
    assert_eq!(err.location().flow, Some(0));
    assert_eq!(err.location().group, Some(0));
    assert_eq!(
        err.location().member,
        Some("records[].properties.flows[].flows[].flowTuples")
    );
}

#[test]
fn wrong_type_for_records() {
    let out = read(r#"{"records": {"flowRecords": []}}"#);
    let err = out.result.expect_err("wrong type fails");
    assert_eq!(
        err.to_string(),
        "crafted.json: in `records`, line 1, column 13: unexpected structure: \
         invalid type: map, expected an array of flow log records"
    );
}

#[test]
fn unknown_nsg_version_stops_at_that_record() {
    let first = nsg_log("2", &["1714557660,10.1.0.4,10.1.2.5,50000,443,T,O,A,B,,,,"]);
    let second = nsg_log("3", &["1714557660,10.1.0.4,10.1.2.5,50001,443,T,O,A,B,,,,"]);
    // Two records in one document: splice the second record into the first.
    let second_record = &second[second.find("{\"time\"").expect("record")..second.len() - 2];
    let input = format!("{},{}]}}", &first[..first.len() - 2], second_record);
    let out = read(&input);
    let err = out.result.expect_err("unknown version fails");
    assert!(
        matches!(err.kind(), ErrorKind::UnsupportedVersion { version: 3 }),
        "{err}"
    );
    assert_eq!(err.location().record, Some(1));
    assert_eq!(err.location().member, Some("records[].properties.Version"));
    assert!(
        err.to_string()
            .ends_with("NSG flow log version 3 is not supported (versions 1 and 2 are)"),
        "{err}"
    );
    assert_eq!(out.tuples.len(), 1);
    assert_eq!(err.summary().tuples, 1);
}

#[test]
fn missing_version_with_flows_is_an_error() {
    let input = r#"{"records":[{"resourceId":"/nsg","properties":{"flows":[{"rule":"r","flows":[{"mac":"M","flowTuples":["1714557660,10.1.0.4,10.1.2.5,50000,443,T,O,A"]}]}]}}]}"#;
    let err = read(input).result.expect_err("missing version fails");
    assert!(
        matches!(
            err.kind(),
            ErrorKind::MissingMember {
                member: "properties.Version"
            }
        ),
        "{err}"
    );
    assert_eq!(err.location().record, Some(0));
}

#[test]
fn members_in_any_order() {
    // Keys sorted alphabetically, as `jq -S` writes them: the tuples come
    // before the version, the rule, the MAC address and the resource id.
    let input = r#"{"records":[
      {"properties":{"Version":1,"flows":[{"flows":[{"flowTuples":["1714557660,10.1.0.4,10.1.2.5,50000,443,T,O,A"],"mac":"M1"}],"rule":"r-nsg"}]},"resourceId":"/nsg"},
      {"flowLogVersion":4,"flowRecords":{"flows":[{"aclID":"acl","flowGroups":[{"flowTuples":["1714557660123,10.1.0.4,10.1.2.5,50000,443,6,O,B,NX,0,0,0,0"],"rule":"r-vnet"}]}]},"macAddress":"M2","targetResourceID":"/vnet"},
      {"resourceId":"/nsg2","properties":{"flows":[{"rule":"late-version","flows":[{"mac":"M3","flowTuples":["1714557660,10.1.0.4,10.1.2.5,50000,443,T,O,A,B,,,,"]}]}],"Version":2}}
    ]}"#;
    let out = read(input);
    let summary = out.result.expect("reads");
    assert_eq!((summary.tuples, summary.malformed), (3, 0));
    assert_eq!((summary.nsg_records, summary.vnet_records), (2, 1));
    let nsg = &out.tuples[0];
    assert_eq!(nsg.rule.as_deref(), Some("r-nsg"));
    assert_eq!(nsg.mac.as_deref(), Some("M1"));
    assert_eq!(nsg.resource_id.as_deref(), Some("/nsg"));
    assert_eq!(nsg.flow_log_version, Some(1));
    let vnet = &out.tuples[1];
    assert_eq!(vnet.rule.as_deref(), Some("r-vnet"));
    assert_eq!(vnet.acl_id.as_deref(), Some("acl"));
    assert_eq!(vnet.mac.as_deref(), Some("M2"));
    assert_eq!(vnet.resource_id.as_deref(), Some("/vnet"));
    assert_eq!(vnet.flow_log_version, Some(4));
    assert_eq!(
        vnet.position,
        Position {
            record: 1,
            flow: 0,
            group: 0,
            tuple: 0
        }
    );
    let late = &out.tuples[2];
    assert_eq!(late.flow_log_version, Some(2));
    assert_eq!(late.state, Some(FlowState::Begin));
    assert_eq!(late.position.record, 2);
}

#[test]
fn bad_tuple_inside_a_reordered_member_keeps_its_position() {
    let input = r#"{"records":[{"properties":{"flows":[{"flows":[{"flowTuples":["ok?","1714557660,10.1.0.4,10.1.2.5,50000,443,T,O,A"],"mac":"M"}],"rule":"r"}],"Version":1},"resourceId":"/nsg"}]}"#;
    let out = read(input);
    assert_eq!(out.result.expect("reads").malformed, 1);
    assert_eq!(
        out.malformed[0].position,
        Position {
            record: 0,
            flow: 0,
            group: 0,
            tuple: 0
        }
    );
    assert_eq!(out.tuples[0].position.tuple, 1);
}

#[test]
fn concatenated_documents_bom_and_whitespace() {
    let one = nsg_log("1", &["1714557660,10.1.0.4,10.1.2.5,50000,443,T,O,A"]);
    let two = vnet_log(&["1714557660123,10.1.0.4,10.1.2.5,50000,443,6,O,B,NX,0,0,0,0"]);
    let input = format!("\u{feff}\n \t{one}\r\n{two}\n\n");
    let out = read(&input);
    let summary = out.result.expect("reads");
    assert_eq!((summary.records, summary.tuples), (2, 2));
    assert_eq!(out.tuples[1].position.record, 1);
}

#[test]
fn records_without_flows_are_counted() {
    let out = read(r#"{"records":[{"category":"SomethingElse"},{"properties":{}}]}"#);
    let summary = out.result.expect("reads");
    assert_eq!(
        (summary.records, summary.other_records, summary.nsg_records),
        (2, 1, 1)
    );
}

#[test]
fn second_document_without_records_is_an_error() {
    let one = nsg_log("1", &["1714557660,10.1.0.4,10.1.2.5,50000,443,T,O,A"]);
    let out = read(&format!("{one}\n{{\"other\": 1}}"));
    let err = out.result.expect_err("fails");
    assert!(
        matches!(err.kind(), ErrorKind::MissingMember { member: "records" }),
        "{err}"
    );
    assert_eq!(err.summary().tuples, 1);
}

#[test]
fn garbage_after_the_document_is_a_syntax_error() {
    let one = nsg_log("1", &["1714557660,10.1.0.4,10.1.2.5,50000,443,T,O,A"]);
    let err = read(&format!("{one} trailing")).result.expect_err("fails");
    assert!(matches!(err.kind(), ErrorKind::Syntax { .. }), "{err}");
}

#[test]
fn not_a_flow_log() {
    let err = read("PK\u{3}\u{4} zip").result.expect_err("fails");
    assert_eq!(
        err.to_string(),
        "crafted.json: not a flow log: expected a JSON object, found \"PK\\u{3}\\u{4} zip\""
    );
    let err = read("[1, 2]").result.expect_err("fails");
    assert!(matches!(err.kind(), ErrorKind::UnknownFormat { .. }));
}

#[test]
fn empty_input_has_no_tuples() {
    for input in ["", "  \n\t", "\u{feff}"] {
        let out = read(input);
        assert_eq!(out.result.expect("reads"), ReadSummary::default());
    }
}

#[test]
fn read_failure_is_an_io_error_after_the_delivered_tuples() {
    struct Failing<'a> {
        data: &'a [u8],
    }
    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.data.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "blob read reset",
                ));
            }
            let n = buf.len().min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }
    let input = two_records_truncated();
    let mut seen = 0;
    let err = read_flow_log(
        Failing {
            data: input.as_bytes(),
        },
        "blob",
        |_| seen += 1,
    )
    .expect_err("fails");
    match err.kind() {
        ErrorKind::Io(io) => assert_eq!(io.kind(), io::ErrorKind::ConnectionReset),
        other => panic!("unexpected error kind {other:?}"),
    }
    assert_eq!(seen, 4);
    assert_eq!(err.summary().tuples, 4);
    assert_eq!(err.location().record, Some(1));
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("absent.json");
    let err = linkward_flowlog::read_flow_log_file(&path, |_| {}).expect_err("fails");
    assert_eq!(err.source_name(), path.display().to_string());
    assert!(matches!(err.kind(), ErrorKind::Io(io) if io.kind() == io::ErrorKind::NotFound));
}

#[test]
fn deeply_nested_input_does_not_overflow() {
    let input = format!("{{\"records\":{}", "[".repeat(100_000));
    let err = read(&input).result.expect_err("fails");
    assert!(matches!(err.kind(), ErrorKind::Structure { .. }), "{err}");
    let input = format!("{{\"records\":[{{\"x\":{}}}]}}", "[".repeat(100_000));
    let err = read(&input).result.expect_err("fails");
    assert!(matches!(err.kind(), ErrorKind::Syntax { .. }), "{err}");
}
