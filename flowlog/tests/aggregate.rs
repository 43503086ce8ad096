//! Flow aggregation: one evaluation per flow, then its end.

use std::path::PathBuf;

use linkward_flowlog::{
    AggregatedFlow, AggregatorStats, CloseReason, Direction, FlowAggregator, FlowEvent, FlowTuple,
    TupleEvent, read_flow_log_file, read_flow_log_slice,
};

fn tuples(input: &str) -> Vec<FlowTuple> {
    let mut tuples = Vec::new();
    read_flow_log_slice(input.as_bytes(), "crafted", |event| match event {
        TupleEvent::Tuple(tuple) => tuples.push(tuple),
        TupleEvent::Malformed(bad) => panic!("unexpected malformed tuple: {bad}"),
    })
    .expect("reads");
    tuples
}

fn vnet(lines: &[&str]) -> Vec<FlowTuple> {
    let quoted: Vec<String> = lines.iter().map(|t| format!("\"{t}\"")).collect();
    tuples(&format!(
        r#"{{"records":[{{"flowLogVersion":4,"macAddress":"M","targetResourceID":"/vnet",
        "flowRecords":{{"flows":[{{"aclID":"a","flowGroups":[{{"rule":"r","flowTuples":[{}]}}]}}]}}}}]}}"#,
        quoted.join(",")
    ))
}

/// Events in a compact form: `open <id> <src port> denied=<bool>` or
/// `close <id> <src port> <reason>`.
fn run(aggregator: &mut FlowAggregator, tuples: &[FlowTuple]) -> Vec<FlowEvent> {
    let mut events = Vec::new();
    for tuple in tuples {
        aggregator.push(tuple, |event| events.push(event));
    }
    events
}

fn describe(events: &[FlowEvent]) -> Vec<String> {
    events
        .iter()
        .map(|event| match event {
            FlowEvent::Opened(flow) => format!(
                "open {} {} denied={}",
                flow.id, flow.key.src_port, flow.denied
            ),
            FlowEvent::Closed { flow, reason } => {
                format!("close {} {} {reason:?}", flow.id, flow.key.src_port)
            }
        })
        .collect()
}

fn closed(event: &FlowEvent) -> &AggregatedFlow {
    match event {
        FlowEvent::Closed { flow, .. } => flow,
        FlowEvent::Opened(_) => panic!("expected a closed flow, got {event:?}"),
    }
}

#[test]
fn flow_spread_over_begin_continuing_end_is_opened_once() {
    let input = vnet(&[
        "1714557600000,10.1.0.4,10.1.2.5,50000,443,6,O,B,NX,0,0,0,0",
        "1714557600100,10.1.0.4,10.1.2.6,50001,443,6,O,B,NX,0,0,0,0",
        "1714557660000,10.1.0.4,10.1.2.5,50000,443,6,O,C,NX,10,1000,8,8000",
        "1714557720000,10.1.0.4,10.1.2.5,50000,443,6,O,C,NX,5,500,4,4000",
        "1714557780000,10.1.0.4,10.1.2.5,50000,443,6,O,E,NX,1,60,1,40",
    ]);
    let mut aggregator = FlowAggregator::new(100);
    let events = run(&mut aggregator, &input);
    assert_eq!(
        describe(&events),
        [
            "open 0 50000 denied=false",
            "open 1 50001 denied=false",
            "close 0 50000 Ended"
        ]
    );
    match &events[0] {
        FlowEvent::Opened(flow) => {
            assert_eq!(flow.tuples, 1);
            assert!(flow.begin_seen);
            assert_eq!(flow.bytes_sent, 0);
            assert_eq!(flow.rule.as_deref(), Some("r"));
        }
        other => panic!("unexpected {other:?}"),
    }
    let ended = closed(&events[2]);
    assert_eq!(ended.tuples, 4);
    assert_eq!(
        (
            ended.packets_sent,
            ended.bytes_sent,
            ended.packets_received,
            ended.bytes_received
        ),
        (16, 1560, 13, 12040)
    );
    assert_eq!(ended.first_time_ns, 1_714_557_600_000_000_000);
    assert_eq!(ended.last_time_ns, 1_714_557_780_000_000_000);
    assert!(ended.begin_seen && ended.end_seen && !ended.denied);
    assert_eq!(aggregator.len(), 1);
    assert_eq!(
        aggregator.stats(),
        &AggregatorStats {
            tuples: 5,
            opened: 2,
            ended: 1,
            ..AggregatorStats::default()
        }
    );
}

#[test]
fn flow_whose_begin_was_not_logged_opens_at_its_first_tuple() {
    let input = vnet(&[
        "1714557660000,10.1.0.4,10.1.2.5,50000,443,6,O,C,NX,10,1000,8,8000",
        "1714557720000,10.1.0.4,10.1.2.5,50000,443,6,O,C,NX,5,500,4,4000",
        "1714557780000,10.1.0.4,10.1.2.5,50000,443,6,O,E,NX,1,60,1,40",
        "1714557790000,10.1.0.4,10.1.2.5,50009,443,6,O,E,NX,1,1,1,1",
    ]);
    let mut aggregator = FlowAggregator::new(100);
    let events = run(&mut aggregator, &input);
    assert_eq!(
        describe(&events),
        [
            "open 0 50000 denied=false",
            "close 0 50000 Ended",
            "open 1 50009 denied=false",
            "close 1 50009 Ended"
        ]
    );
    match &events[0] {
        FlowEvent::Opened(flow) => {
            assert!(!flow.begin_seen);
            assert_eq!(flow.bytes_sent, 1000);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(closed(&events[1]).bytes_sent, 1560);
    assert!(aggregator.is_empty());
}

#[test]
fn denied_flows_are_emitted_marked_denied_once() {
    let mut input = vnet(&[
        "1714557600000,203.0.113.9,10.1.2.5,40000,22,6,I,D,NX,0,0,0,0",
        "1714557601000,203.0.113.9,10.1.2.5,40000,22,6,I,D,NX,0,0,0,0",
        "1714557602000,203.0.113.9,10.1.2.5,40000,22,6,I,D,NX,0,0,0,0",
    ]);
    input.extend(tuples(
        r#"{"records":[{"resourceId":"/nsg","properties":{"Version":2,"flows":[{"rule":"DenyAll","flows":[{"mac":"M","flowTuples":[
        "1714557600,198.51.100.7,10.1.2.5,41000,8080,T,I,D,B,,,,"]}]}]}}]}"#,
    ));
    let mut aggregator = FlowAggregator::new(100);
    let events = run(&mut aggregator, &input);
    assert_eq!(
        describe(&events),
        ["open 0 40000 denied=true", "open 1 41000 denied=true"]
    );
    let mut rest = Vec::new();
    aggregator.finish(|event| rest.push(event));
    assert_eq!(
        describe(&rest),
        ["close 0 40000 Flushed", "close 1 41000 Flushed"]
    );
    assert_eq!(closed(&rest[0]).tuples, 3);
    assert_eq!(closed(&rest[1]).rule.as_deref(), Some("DenyAll"));
    assert_eq!(aggregator.stats().flushed, 2);
}

#[test]
fn a_new_begin_or_a_denial_replaces_the_open_flow() {
    let input = vnet(&[
        "1714557600000,10.1.0.4,10.1.2.5,50000,443,6,O,B,NX,0,0,0,0",
        "1714557660000,10.1.0.4,10.1.2.5,50000,443,6,O,C,NX,1,100,1,100",
        "1714557700000,10.1.0.4,10.1.2.5,50000,443,6,O,B,NX,0,0,0,0",
        "1714557710000,10.1.0.4,10.1.2.5,50000,443,6,O,D,NX,0,0,0,0",
        "1714557720000,10.1.0.4,10.1.2.5,50000,443,6,O,D,NX,0,0,0,0",
    ]);
    let mut aggregator = FlowAggregator::new(100);
    let events = run(&mut aggregator, &input);
    assert_eq!(
        describe(&events),
        [
            "open 0 50000 denied=false",
            "close 0 50000 Replaced",
            "open 1 50000 denied=false",
            "close 1 50000 Replaced",
            "open 2 50000 denied=true",
        ]
    );
    assert_eq!(closed(&events[1]).bytes_sent, 100);
    assert!(!closed(&events[1]).end_seen);
    assert_eq!(aggregator.stats().replaced, 2);
}

#[test]
fn direction_is_part_of_the_key() {
    let input = vnet(&[
        "1714557600000,10.1.0.4,10.1.2.5,50000,443,6,O,B,NX,0,0,0,0",
        "1714557600000,10.1.0.4,10.1.2.5,50000,443,6,I,B,NX,0,0,0,0",
        "1714557660000,10.1.0.4,10.1.2.5,50000,443,6,I,E,NX,1,100,1,100",
    ]);
    let mut aggregator = FlowAggregator::new(100);
    let events = run(&mut aggregator, &input);
    assert_eq!(
        describe(&events),
        [
            "open 0 50000 denied=false",
            "open 1 50000 denied=false",
            "close 1 50000 Ended"
        ]
    );
    assert_eq!(closed(&events[2]).key.direction, Direction::Inbound);
    assert_eq!(aggregator.len(), 1);
}

#[test]
fn full_table_evicts_the_least_recently_updated_flow() {
    let input = vnet(&[
        "1714557600000,10.1.0.4,10.1.2.5,50001,443,6,O,B,NX,0,0,0,0",
        "1714557600000,10.1.0.4,10.1.2.5,50002,443,6,O,B,NX,0,0,0,0",
        // Updating 50001 makes 50002 the oldest.
        "1714557660000,10.1.0.4,10.1.2.5,50001,443,6,O,C,NX,1,10,1,10",
        "1714557660000,10.1.0.4,10.1.2.5,50003,443,6,O,B,NX,0,0,0,0",
        "1714557670000,10.1.0.4,10.1.2.5,50004,443,6,O,B,NX,0,0,0,0",
    ]);
    let mut aggregator = FlowAggregator::new(2);
    let events = run(&mut aggregator, &input);
    assert_eq!(
        describe(&events),
        [
            "open 0 50001 denied=false",
            "open 1 50002 denied=false",
            "close 1 50002 Evicted",
            "open 2 50003 denied=false",
            "close 0 50001 Evicted",
            "open 3 50004 denied=false",
        ]
    );
    assert_eq!(closed(&events[4]).bytes_sent, 10);
    assert_eq!(aggregator.stats().evicted, 2);
    assert_eq!(aggregator.len(), 2);
}

#[test]
fn idle_flows_expire() {
    let input = tuples(
        r#"{"records":[{"resourceId":"/nsg","properties":{"Version":1,"flows":[{"rule":"r","flows":[{"mac":"M","flowTuples":[
        "1714557600,10.1.0.4,10.1.2.5,50001,443,T,O,A",
        "1714557650,10.1.0.4,10.1.2.5,50002,443,T,O,A",
        "1714557700,10.1.0.4,10.1.2.5,50001,443,T,O,A"]}]}]}}]}"#,
    );
    let mut aggregator = FlowAggregator::new(100);
    let events = run(&mut aggregator, &input);
    assert_eq!(
        describe(&events),
        ["open 0 50001 denied=false", "open 1 50002 denied=false"]
    );
    let mut expired = Vec::new();
    let now = 1_714_557_800_000_000_000;
    aggregator.expire_idle(now, 120_000_000_000, |event| expired.push(event));
    assert_eq!(describe(&expired), ["close 1 50002 Idle"]);
    aggregator.expire_idle(now, 60_000_000_000, |event| expired.push(event));
    assert_eq!(
        describe(&expired),
        ["close 1 50002 Idle", "close 0 50001 Idle"]
    );
    assert_eq!(closed(&expired[1]).tuples, 2);
    assert_eq!(aggregator.stats().expired, 2);
    assert!(aggregator.is_empty());
}

#[test]
fn vnet_docs_sample_aggregates_to_fourteen_flows() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/flowlogs/azure-docs__vnet-flow-logs-overview.sample.json");
    let mut aggregator = FlowAggregator::new(1000);
    let mut events = Vec::new();
    read_flow_log_file(path, |event| {
        if let TupleEvent::Tuple(tuple) = event {
            aggregator.push(&tuple, |flow_event| events.push(flow_event));
        }
    })
    .expect("sample reads");
    aggregator.finish(|flow_event| events.push(flow_event));
    let opened: Vec<&AggregatedFlow> = events
        .iter()
        .filter_map(|event| match event {
            FlowEvent::Opened(flow) => Some(flow),
            FlowEvent::Closed { .. } => None,
        })
        .collect();
    assert_eq!(opened.len(), 14);
    assert_eq!(opened.iter().filter(|flow| flow.denied).count(), 9);
    let ended: Vec<&AggregatedFlow> = events
        .iter()
        .filter_map(|event| match event {
            FlowEvent::Closed {
                flow,
                reason: CloseReason::Ended,
            } => Some(flow),
            _ => None,
        })
        .collect();
    assert_eq!(ended.len(), 5);
    assert_eq!(ended[4].key.dst_port, 443);
    assert_eq!(
        (ended[4].bytes_sent, ended[4].bytes_received),
        (2217, 32466)
    );
    assert_eq!(
        aggregator.stats(),
        &AggregatorStats {
            tuples: 19,
            opened: 14,
            ended: 5,
            flushed: 9,
            ..AggregatorStats::default()
        }
    );
}

/// `push_lent` reports what `push` reports, in the same order, with the opened flows
/// lent instead of copied: replacements, evictions, ends and flows opened and ended by
/// one tuple, in a table of three.
#[test]
fn lent_events_are_the_copied_events() {
    // (seconds after the start, source port, state, bytes each way)
    let steps = [
        (0, 1, 'B', 0),
        (0, 2, 'B', 0),
        (60, 1, 'C', 10),
        (60, 3, 'B', 0),
        (70, 4, 'B', 0),
        (80, 3, 'B', 0),
        (90, 4, 'D', 0),
        (100, 5, 'E', 20),
        (110, 3, 'E', 30),
        (120, 1, 'C', 40),
    ];
    let lines: Vec<String> = steps
        .iter()
        .map(|(secs, port, state, bytes)| {
            format!(
                "{},10.1.0.4,10.1.2.5,{},443,6,O,{state},NX,1,{bytes},1,{bytes}",
                1_714_557_600_000u64 + secs * 1000,
                50_000 + port
            )
        })
        .collect();
    let input = vnet(&lines.iter().map(String::as_str).collect::<Vec<_>>());
    let mut copied = FlowAggregator::new(3);
    let mut expected = run(&mut copied, &input);
    copied.finish(|event| expected.push(event));
    let mut lent = FlowAggregator::new(3);
    let mut events = Vec::new();
    for tuple in &input {
        lent.push_lent(tuple, |change| events.push(change.into_event()));
    }
    lent.finish(|event| events.push(event));
    assert_eq!(events, expected);
    assert_eq!(lent.stats(), copied.stats());
    assert!(expected.len() > input.len());
}
