//! Flow-log throughput, in tuples per second (criterion's `elements/s`, directly
//! comparable with the target of 1,000,000 tuples a second on one core).
//!
//! A VNet flow log of about 200,000 tuples is generated once in memory: flows from the
//! fabrikam VNet to the AzureHealthcareAPIs range (pe-bypass findings), to its private
//! endpoints, to SMB (a rule finding) and to the Internet, each logged as `B`, `C` and
//! `E` tuples a minute apart and spread over consecutive records the way Azure writes
//! long flows, plus denied inbound attempts (`D`). Each stage adds one step to the
//! previous one, so their differences are the cost of each step:
//!
//! - `read_slice`: `linkward_flowlog::read_flow_log_slice` over the bytes in memory,
//!   the parsing floor;
//! - `read_reader`: `linkward_flowlog::read_flow_log` over an open file, the buffered
//!   reader used for pipes and other inputs that cannot be mapped;
//! - `read_file`: `linkward_flowlog::read_flow_log_file_lent`, the reader `linkward
//!   scan` uses (the file memory-mapped, from the page cache, each tuple lent to the
//!   callback): **parse**;
//! - `read_file_owned`: `linkward_flowlog::read_flow_log_file`, the same handing each
//!   tuple over (a copy of its shared strings' references per tuple);
//! - `aggregate`: `read_file` lending every tuple to `FlowAggregator::push_lent`, as
//!   the host does: the difference from `read_file` is **aggregate**;
//! - `scan/native`: reading, aggregating and evaluating every flow with the policy
//!   evaluator compiled natively, through the host's flow-log reader and pipeline;
//! - `scan/sandbox`: the same through the policy module in wasmtime, as `linkward
//!   scan` runs it: **end to end**, the figure the target is about. The difference
//!   from `aggregate` is **evaluate** (building subjects, batching, the module call
//!   and the findings).

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use linkward_flowlog::{
    FlowAggregator, FlowChange, FlowLogError, ReadSummary, TupleEvent, TupleEventRef,
    read_flow_log, read_flow_log_file, read_flow_log_file_lent, read_flow_log_slice,
};
use linkward_host::evaluation::{Backend, FindingSink, NativeBackend, Report, SandboxBackend};
use linkward_host::flowlogs::{FlowLogOptions, scan_flow_log};
use linkward_host::pipeline::{Pipeline, ScanOptions};
use linkward_host::sandbox::{Limits, PolicyEngine};
use linkward_host::subject::Subject;
use std::hint::black_box;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// About how many tuples the generated log holds.
const TARGET_TUPLES: usize = 200_000;
/// Flows that begin in one record; their `C` and `E` tuples follow in the next two.
const FLOWS_PER_RECORD: usize = 1_000;
/// 2024-05-01T10:00:00Z, in milliseconds.
const START_MS: u64 = 1_714_557_600_000;

/// What flow `i` of the log is: its tuple fields except time and state.
fn flow_fields(i: usize) -> (String, bool) {
    let a = (i >> 8) % 200;
    let b = i % 250 + 1;
    let src_port = 1024 + i % 60_000;
    let client = format!("10.{}.{}.{b}", 1 + (i / 10) % 2, 3 + a);
    let (src, dst, dst_port, denied) = match i % 10 {
        0 | 1 => (client, format!("20.37.{a}.{b}"), 443, false),
        2..=4 => (client, format!("10.1.2.{}", 5 + i % 2), 443, false),
        5 => (client, format!("10.1.{}.{b}", 3 + a), 445, false),
        6..=8 => (client, format!("203.0.113.{b}"), 443, false),
        _ => (format!("198.51.100.{b}"), "10.1.2.5".to_string(), 443, true),
    };
    let direction = if denied { 'I' } else { 'O' };
    (
        format!("{src},{dst},{src_port},{dst_port},6,{direction}"),
        denied,
    )
}

/// Appends one record holding an allowed and a denied flow group.
fn push_record(doc: &mut String, index: usize, allowed: &[String], denied: &[String]) {
    if index > 0 {
        doc.push_str(",\n");
    }
    let group = |rule: &str, tuples: &[String]| {
        let quoted: Vec<String> = tuples.iter().map(|t| format!("\"{t}\"")).collect();
        format!(
            "{{\"rule\":\"{rule}\",\"flowTuples\":[{}]}}",
            quoted.join(",")
        )
    };
    doc.push_str(&format!(
        "{{\"time\":\"2024-05-01T10:{:02}:00.0000000Z\",\"flowLogVersion\":4,\
         \"macAddress\":\"00224871C205\",\"category\":\"FlowLogFlowEvent\",\
         \"targetResourceID\":\"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/fabrikam/providers/Microsoft.Network/virtualNetworks/fabrikam\",\
         \"operationName\":\"FlowLogFlowEvent\",\"flowRecords\":{{\"flows\":[{{\
         \"aclID\":\"00000000-0000-0000-0000-000000000001\",\"flowGroups\":[{},{}]}}]}}}}",
        index % 60,
        group("AllowVnetOutBound", allowed),
        group("DenyInternetInBound", denied),
    ));
}

/// Generates the log; returns it with its exact tuple count.
fn generate(target: usize) -> (Vec<u8>, u64) {
    let mut doc = String::from("{\"records\":[\n");
    let mut tuples = 0usize;
    let mut record = 0usize;
    // (flow index, next state) of flows still to be continued or ended.
    let mut pending: Vec<(usize, char)> = Vec::new();
    let mut next_flow = 0usize;
    while tuples < target || !pending.is_empty() {
        let mut allowed = Vec::new();
        let mut denied = Vec::new();
        let time = START_MS + record as u64 * 60_000;
        let mut still_pending = Vec::new();
        for (i, state) in pending.drain(..) {
            let (fields, _) = flow_fields(i);
            let offset = (i % FLOWS_PER_RECORD) as u64 * 37;
            let counters = if state == 'C' {
                "40,4000,38,90000"
            } else {
                "2,120,2,120"
            };
            allowed.push(format!("{},{fields},{state},NX,{counters}", time + offset));
            if state == 'C' {
                still_pending.push((i, 'E'));
            }
        }
        if tuples + allowed.len() < target {
            for i in next_flow..next_flow + FLOWS_PER_RECORD {
                let (fields, is_denied) = flow_fields(i);
                let t = time + (i % FLOWS_PER_RECORD) as u64 * 37;
                if is_denied {
                    denied.push(format!("{t},{fields},D,NX,0,0,0,0"));
                } else {
                    allowed.push(format!("{t},{fields},B,NX,0,0,0,0"));
                    still_pending.push((i, 'C'));
                }
            }
            next_flow += FLOWS_PER_RECORD;
        }
        pending = still_pending;
        tuples += allowed.len() + denied.len();
        push_record(&mut doc, record, &allowed, &denied);
        record += 1;
    }
    doc.push_str("\n]}\n");
    (doc.into_bytes(), tuples as u64)
}

/// Reads the log with `read`, using every tuple (its destination port is summed) so
/// that nothing is optimized away; returns the tuple count and the sum.
fn read_all(
    read: impl FnOnce(&mut dyn FnMut(TupleEvent)) -> Result<ReadSummary, FlowLogError>,
) -> (u64, u64) {
    let mut seen = 0u64;
    let mut on_tuple = |event: TupleEvent| {
        if let TupleEvent::Tuple(tuple) = event {
            seen += u64::from(tuple.dst_port);
        }
    };
    match read(&mut on_tuple) {
        Ok(summary) => black_box((summary.tuples, seen)),
        Err(e) => panic!("read: {e}"),
    }
}

/// Counts reports instead of keeping them, so the sink costs nothing measurable.
#[derive(Default)]
struct CountingSink {
    reports: u64,
}

impl FindingSink for CountingSink {
    fn report(&mut self, _subject: &Subject, _report: &Report) -> io::Result<()> {
        self.reports += 1;
        Ok(())
    }
}

/// Reads, aggregates and evaluates the log file once; returns the number of findings.
fn scan(path: &Path, backend: &mut dyn Backend) -> u64 {
    let mut pipeline = match Pipeline::new(&ScanOptions::default()) {
        Ok(p) => p,
        Err(e) => panic!("pipeline: {e}"),
    };
    let mut sink = CountingSink::default();
    let outcome = scan_flow_log(
        &mut pipeline,
        path,
        0,
        &FlowLogOptions::default(),
        backend,
        &mut sink,
    );
    match outcome {
        Ok(o) if o.error.is_none() && o.malformed.is_empty() => {}
        Ok(o) => panic!("the generated log is broken: {o:?}"),
        Err(e) => panic!("scan: {e}"),
    }
    if let Err(e) = pipeline.finish(0, backend, &mut sink) {
        panic!("finish: {e}");
    }
    sink.reports
}

fn flowlog(c: &mut Criterion) {
    let (log, tuples) = generate(TARGET_TUPLES);

    let policy_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fabrikam.toml");
    let text = std::fs::read_to_string(&policy_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", policy_path.display()));
    let compiled = linkward_policy::compile::compile_source("fabrikam.toml", &text, None)
        .unwrap_or_else(|e| panic!("fabrikam.toml: {e}"));
    let engine = PolicyEngine::new(Limits::default()).unwrap_or_else(|e| panic!("engine: {e}"));
    let module = engine
        .load(&compiled.wasm)
        .unwrap_or_else(|e| panic!("module: {e}"));
    let mut native = NativeBackend::new(Arc::new(linkward_guest::Evaluator::new(compiled.image)));
    let mut sandbox = SandboxBackend::new(&module);

    let mut file = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("temp file: {e}"));
    file.write_all(&log)
        .and_then(|()| file.flush())
        .unwrap_or_else(|e| panic!("write the log: {e}"));

    // Both backends must agree before either is worth timing.
    let native_findings = scan(file.path(), &mut native);
    let sandbox_findings = scan(file.path(), &mut sandbox);
    assert_eq!(
        native_findings, sandbox_findings,
        "native and sandbox disagree"
    );
    assert!(native_findings > 0, "the log should produce findings");
    eprintln!(
        "flowlog bench: {tuples} tuples, {} bytes, {native_findings} findings per scan",
        log.len()
    );

    let mut group = c.benchmark_group("flowlog");
    group.throughput(Throughput::Elements(tuples));
    // Each iteration takes tens to hundreds of milliseconds: the same number of
    // iterations per sample keeps the run short.
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("read_slice", |b| {
        b.iter(|| read_all(|f| read_flow_log_slice(black_box(&log), "bench", f)))
    });
    group.bench_function("read_file", |b| {
        b.iter(|| {
            let mut seen = 0u64;
            let summary = read_flow_log_file_lent(file.path(), |event| {
                if let TupleEventRef::Tuple(tuple) = event {
                    seen += u64::from(tuple.dst_port);
                }
            });
            match summary {
                Ok(s) => black_box((s.tuples, seen)),
                Err(e) => panic!("read: {e}"),
            }
        })
    });
    group.bench_function("read_file_owned", |b| {
        b.iter(|| read_all(|f| read_flow_log_file(file.path(), f)))
    });
    group.bench_function("read_reader", |b| {
        b.iter(|| {
            let input = std::fs::File::open(file.path()).unwrap_or_else(|e| panic!("open: {e}"));
            read_all(|f| read_flow_log(input, "bench", f))
        })
    });
    group.bench_function("aggregate", |b| {
        b.iter(|| {
            let mut aggregator = FlowAggregator::new(FlowLogOptions::default().max_flows);
            let mut opened = 0u64;
            let summary = read_flow_log_file_lent(file.path(), |event| {
                if let TupleEventRef::Tuple(tuple) = event {
                    aggregator.push_lent(tuple, |e| {
                        if let FlowChange::Opened(flow) = e {
                            opened += flow.id & 1;
                        }
                    });
                }
            });
            aggregator.finish(|e| {
                black_box(e);
            });
            match summary {
                Ok(s) => black_box((s.tuples, opened)),
                Err(e) => panic!("read: {e}"),
            }
        })
    });
    group.bench_function("scan/native", |b| {
        b.iter(|| black_box(scan(file.path(), &mut native)))
    });
    group.bench_function("scan/sandbox", |b| {
        b.iter(|| black_box(scan(file.path(), &mut sandbox)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    targets = flowlog
}
criterion_main!(benches);
