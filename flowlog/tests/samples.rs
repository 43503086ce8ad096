//! The two samples from the Azure documentation, read through the public
//! interface.

use std::net::IpAddr;
use std::path::PathBuf;

use linkward_flowlog::{
    Decision, Direction, Encryption, FlowState, FlowTuple, InputKind, Position, SourceFormat,
    TupleEvent, read_flow_log_file, read_flow_log_slice,
};

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/flowlogs")
        .join(name)
}

fn tuples_of(name: &str) -> (Vec<FlowTuple>, linkward_flowlog::ReadSummary) {
    let mut tuples = Vec::new();
    let summary = read_flow_log_file(sample(name), |event| match event {
        TupleEvent::Tuple(tuple) => tuples.push(tuple),
        TupleEvent::Malformed(bad) => panic!("unexpected malformed tuple: {bad}"),
    })
    .expect("sample reads");
    (tuples, summary)
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

#[test]
fn vnet_sample() {
    let (tuples, summary) = tuples_of("azure-docs__vnet-flow-logs-overview.sample.json");
    assert_eq!(summary.input, Some(InputKind::AzureFlowLog));
    assert_eq!(summary.records, 1);
    assert_eq!(summary.vnet_records, 1);
    assert_eq!(summary.nsg_records, 0);
    assert_eq!(summary.tuples, 19);
    assert_eq!(summary.malformed, 0);
    assert_eq!(tuples.len(), 19);

    let first = &tuples[0];
    assert_eq!(first.source, SourceFormat::VnetFlowLog);
    assert_eq!(first.flow_log_version, Some(4));
    assert_eq!(first.time_ns, 1_663_146_003_599_000_000);
    assert_eq!(first.src, ip("10.0.0.6"));
    assert_eq!(first.dst, ip("52.239.184.180"));
    assert_eq!(
        (first.src_port, first.dst_port, first.protocol),
        (23956, 443, 6)
    );
    assert_eq!(first.direction, Direction::Outbound);
    assert_eq!(first.state, Some(FlowState::Begin));
    assert_eq!(first.decision, Decision::Allowed);
    assert_eq!(first.encryption, Some(Encryption::NotEncrypted));
    assert_eq!(first.packets_sent, Some(0));
    assert_eq!(
        first.rule.as_deref(),
        Some("DefaultRule_AllowInternetOutBound")
    );
    assert_eq!(
        first.acl_id.as_deref(),
        Some("00000000-1234-abcd-ef00-c1c2c3c4c5c6")
    );
    assert_eq!(first.mac.as_deref(), Some("00224871C205"));
    assert_eq!(
        first.resource_id.as_deref(),
        Some(
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/myResourceGroup/providers/Microsoft.Network/virtualNetworks/myVNet"
        )
    );

    let end = &tuples[9];
    assert_eq!(end.state, Some(FlowState::End));
    assert_eq!(end.dst, ip("104.16.218.84"));
    assert_eq!(
        (
            end.packets_sent,
            end.bytes_sent,
            end.packets_received,
            end.bytes_received
        ),
        (Some(22), Some(2217), Some(33), Some(32466))
    );
    assert_eq!(
        end.position,
        Position {
            record: 0,
            flow: 0,
            group: 0,
            tuple: 9
        }
    );

    let denied = &tuples[10];
    assert_eq!(denied.src, ip("101.33.218.153"));
    assert_eq!(denied.dst_port, 22);
    assert_eq!(denied.direction, Direction::Inbound);
    assert_eq!(denied.state, Some(FlowState::Denied));
    assert_eq!(denied.decision, Decision::Denied);
    assert_eq!(
        denied.rule.as_deref(),
        Some("BlockHighRiskTCPPortsFromInternet")
    );
    assert_eq!(
        denied.acl_id.as_deref(),
        Some("01020304-abcd-ef00-1234-102030405060")
    );
    assert_eq!(
        denied.position,
        Position {
            record: 0,
            flow: 1,
            group: 0,
            tuple: 0
        }
    );

    let last = &tuples[18];
    assert_eq!(last.rule.as_deref(), Some("Internet"));
    assert_eq!(last.time_ns, 1_663_146_015_545_000_000);
    assert_eq!(last.dst_port, 31244);
    assert_eq!(
        last.position,
        Position {
            record: 0,
            flow: 1,
            group: 1,
            tuple: 6
        }
    );

    assert_eq!(
        tuples
            .iter()
            .filter(|t| t.decision == Decision::Denied)
            .count(),
        9
    );
    // The rule name is shared, not copied, between the tuples of a group.
    assert!(std::sync::Arc::ptr_eq(
        first.rule.as_ref().expect("rule"),
        end.rule.as_ref().expect("rule")
    ));
}

#[test]
fn nsg_v2_sample() {
    let (tuples, summary) = tuples_of("azure-docs__nsg-flow-logs-overview.v2-sample.json");
    assert_eq!(summary.input, Some(InputKind::AzureFlowLog));
    assert_eq!(summary.records, 2);
    assert_eq!(summary.nsg_records, 2);
    assert_eq!(summary.tuples, 11);
    assert_eq!(summary.malformed, 0);

    let first = &tuples[0];
    assert_eq!(first.source, SourceFormat::NsgFlowLog);
    assert_eq!(first.flow_log_version, Some(2));
    assert_eq!(first.time_ns, 1_542_110_402_000_000_000);
    assert_eq!(first.src, ip("192.0.2.190"));
    assert_eq!(first.dst, ip("10.5.16.4"));
    assert_eq!(
        (first.src_port, first.dst_port, first.protocol),
        (28746, 443, 17)
    );
    assert_eq!(first.direction, Direction::Inbound);
    assert_eq!(first.decision, Decision::Denied);
    assert_eq!(first.state, Some(FlowState::Begin));
    assert_eq!(first.packets_sent, None);
    assert_eq!(first.bytes_received, None);
    assert_eq!(first.encryption, None);
    assert_eq!(first.rule.as_deref(), Some("DefaultRule_DenyAllInBound"));
    assert_eq!(first.mac.as_deref(), Some("000D3AF87856"));
    assert_eq!(
        first.resource_id.as_deref(),
        Some(
            "/SUBSCRIPTIONS/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/RESOURCEGROUPS/FABRIKAMRG/PROVIDERS/MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/FABRIAKMVM1-NSG"
        )
    );

    let continuing = &tuples[5];
    assert_eq!(continuing.dst, ip("203.0.113.115"));
    assert_eq!(continuing.protocol, 6);
    assert_eq!(continuing.direction, Direction::Outbound);
    assert_eq!(continuing.decision, Decision::Allowed);
    assert_eq!(continuing.state, Some(FlowState::Continuing));
    assert_eq!(
        (
            continuing.packets_sent,
            continuing.bytes_sent,
            continuing.packets_received,
            continuing.bytes_received
        ),
        (Some(30), Some(16978), Some(24), Some(14008))
    );
    assert_eq!(
        continuing.rule.as_deref(),
        Some("DefaultRule_AllowInternetOutBound")
    );
    assert_eq!(
        continuing.position,
        Position {
            record: 0,
            flow: 1,
            group: 0,
            tuple: 2
        }
    );

    let last = &tuples[10];
    assert_eq!(last.src, ip("176.119.4.30"));
    assert_eq!(last.dst_port, 52801);
    assert_eq!(
        last.position,
        Position {
            record: 1,
            flow: 0,
            group: 0,
            tuple: 3
        }
    );
}

#[test]
fn slice_and_reader_agree_on_samples() {
    for name in [
        "azure-docs__vnet-flow-logs-overview.sample.json",
        "azure-docs__nsg-flow-logs-overview.v2-sample.json",
    ] {
        let bytes = std::fs::read(sample(name)).expect("sample exists");
        let mut from_slice = Vec::new();
        let slice_summary = read_flow_log_slice(&bytes, name, |event| from_slice.push(event))
            .expect("sample reads");
        let (from_reader, reader_summary) = tuples_of(name);
        assert_eq!(slice_summary, reader_summary);
        let from_slice: Vec<FlowTuple> = from_slice
            .into_iter()
            .filter_map(|event| match event {
                TupleEvent::Tuple(tuple) => Some(tuple),
                TupleEvent::Malformed(_) => None,
            })
            .collect();
        assert_eq!(from_slice, from_reader);
    }
}
