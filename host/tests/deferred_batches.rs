//! A batcher whose backend is not ready yet (its module still loading) keeps
//! collecting records instead of waiting, up to a bound, and then evaluates every
//! record it held, once, in the order it got them.

mod common;

use linkward_guest::record::Finding;
use linkward_host::evaluation::{Backend, Batcher, CollectSink, DEFERRED_BATCHES};
use linkward_host::subject::Subject;
use std::sync::Arc;

/// Reports every record; not ready until `ready` is set. Remembers its batch sizes.
struct LoadsLater {
    ready: bool,
    batches: Vec<usize>,
}

impl Backend for LoadsLater {
    fn evaluate_flows(&mut self, _batch: &[u8], records: usize) -> Result<Vec<Finding>, String> {
        self.batches.push(records);
        Ok(common::finding_for_each(records))
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

fn ports(sink: &CollectSink) -> Vec<u16> {
    sink.reports
        .iter()
        .map(|(subject, _)| match subject {
            Subject::Flow(f) => f.src_port,
            Subject::Dns(_) => 0,
        })
        .collect()
}

/// Pushes one flow for each source port in `ports`, in order.
fn push(
    batcher: &mut Batcher,
    backend: &mut LoadsLater,
    sink: &mut CollectSink,
    ports: std::ops::Range<u16>,
) {
    for port in ports {
        let flow = common::tcp_flow("10.0.0.1", "10.1.0.1", port);
        batcher.push_flow(flow, backend, sink).unwrap();
    }
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
    push(&mut batcher, &mut backend, &mut sink, 0..10);
    assert!(backend.batches.is_empty(), "evaluated while not ready");
    assert_eq!(batcher.pending(), 10);
    backend.ready = true;
    push(&mut batcher, &mut backend, &mut sink, 10..12);
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
    push(&mut batcher, &mut backend, &mut sink, 0..bound as u16 - 1);
    assert!(backend.batches.is_empty());
    push(
        &mut batcher,
        &mut backend,
        &mut sink,
        bound as u16 - 1..bound as u16,
    );
    assert_eq!(backend.batches, vec![bound]);
    assert_eq!(batcher.pending(), 0);
    assert_eq!(ports(&sink), (0..bound as u16).collect::<Vec<_>>());
}
