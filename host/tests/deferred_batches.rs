//! A batcher whose backend is not ready yet (its module still loading) keeps
//! collecting records instead of waiting, up to a bound, and then evaluates every
//! record it held, once, in the order it got them.

use linkward_guest::record::Finding;
use linkward_guest::vocab::{Action, FindingKind, Severity};
use linkward_host::evaluation::{Backend, Batcher, CollectSink, DEFERRED_BATCHES};
use linkward_host::subject::{FlowSubject, Subject, empty_chain};
use std::sync::Arc;

/// Reports every record; not ready until `ready` is set. Remembers its batch sizes.
struct LoadsLater {
    ready: bool,
    batches: Vec<usize>,
}

impl Backend for LoadsLater {
    fn evaluate_flows(&mut self, _batch: &[u8], records: usize) -> Result<Vec<Finding>, String> {
        self.batches.push(records);
        Ok((0..records as u32)
            .map(|index| Finding {
                index,
                kind: FindingKind::Rule,
                rule: "every-record".into(),
                severity: Severity::Info,
                action: Action::Alert,
                line: 1,
                reason: String::new(),
            })
            .collect())
    }
    fn evaluate_dns(&mut self, _batch: &[u8], _records: usize) -> Result<Vec<Finding>, String> {
        Ok(Vec::new())
    }
    fn policy(&self) -> (Arc<str>, Arc<str>) {
        ("loads-later".into(), "1".into())
    }
    fn ready(&mut self) -> bool {
        self.ready
    }
}

fn flow(n: u16) -> FlowSubject {
    FlowSubject {
        src: "10.0.0.1".parse().unwrap(),
        dst: "10.1.0.1".parse().unwrap(),
        src_port: n,
        dst_port: 443,
        protocol: 6,
        first_seen_ns: u64::from(n),
        last_seen_ns: u64::from(n),
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

fn ports(sink: &CollectSink) -> Vec<u16> {
    sink.reports
        .iter()
        .map(|(subject, _)| match subject {
            Subject::Flow(f) => f.src_port,
            Subject::Dns(_) => 0,
        })
        .collect()
}

#[test]
fn records_wait_for_a_backend_that_becomes_ready_and_are_evaluated_in_order() {
    let batch = 4;
    let mut backend = LoadsLater {
        ready: false,
        batches: Vec::new(),
    };
    let mut batcher = Batcher::new(batch, false);
    let mut sink = CollectSink::default();
    for n in 0..10 {
        batcher.push_flow(flow(n), &mut backend, &mut sink).unwrap();
    }
    assert!(backend.batches.is_empty(), "evaluated while not ready");
    assert_eq!(batcher.pending(), 10);
    backend.ready = true;
    for n in 10..12 {
        batcher.push_flow(flow(n), &mut backend, &mut sink).unwrap();
    }
    // The first record after the backend is ready evaluates all that waited.
    assert_eq!(backend.batches, vec![11]);
    batcher.flush(&mut backend, &mut sink).unwrap();
    assert_eq!(backend.batches, vec![11, 1]);
    assert_eq!(ports(&sink), (0..12).collect::<Vec<_>>());
    assert_eq!(batcher.stats.flows_evaluated, 12);
}

#[test]
fn a_backend_that_stays_unready_is_waited_for_once_enough_batches_are_held() {
    let batch = 3;
    let mut backend = LoadsLater {
        ready: false,
        batches: Vec::new(),
    };
    let mut batcher = Batcher::new(batch, false);
    let mut sink = CollectSink::default();
    let bound = batch * DEFERRED_BATCHES;
    for n in 0..bound as u16 - 1 {
        batcher.push_flow(flow(n), &mut backend, &mut sink).unwrap();
    }
    assert!(backend.batches.is_empty());
    batcher
        .push_flow(flow(bound as u16 - 1), &mut backend, &mut sink)
        .unwrap();
    assert_eq!(backend.batches, vec![bound]);
    assert_eq!(batcher.pending(), 0);
    assert_eq!(ports(&sink), (0..bound as u16).collect::<Vec<_>>());
}
