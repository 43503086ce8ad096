//! End to end: a generated capture scanned by one worker's pipeline, in packets per
//! second.
//!
//! `linkward_synth` writes a 200,000-packet capture of the example network (with the
//! sessions that break `examples/fabrikam.toml`) into a temporary file once, whole and
//! cut at a 96-byte snap length; `CaptureFile::open` maps it, and each iteration runs a
//! fresh `Pipeline` over all of it — walk, decode, track flows and DNS, batch, evaluate,
//! report — then `finish`es it. Measured:
//!
//! - `native`: the policy evaluated natively (`NativeBackend`), findings counted;
//! - `sandbox`: the policy module in wasmtime (`SandboxBackend`), findings counted;
//! - `sandbox_eve`: as `sandbox`, with findings written as EVE JSON lines into a sink
//!   that discards them, which is what `linkward scan --format eve` does.
//!
//! Before timing, every variant must report exactly the findings the generator says a
//! correct scan reports, so a faster but wrong pipeline cannot show a better figure.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use linkward_capture::CaptureFile;
use linkward_host::evaluation::{Backend, FindingSink, NativeBackend, Report, SandboxBackend};
use linkward_host::pipeline::{Pipeline, ScanOptions};
use linkward_host::report::eve::EveSink;
use linkward_host::sandbox::{Limits, PolicyEngine};
use linkward_host::subject::Subject;
use linkward_synth::{GenConfig, generate};
use std::hint::black_box;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const PACKETS: u64 = 200_000;

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

/// Scans the capture once with a fresh pipeline; returns the packets read.
fn scan(file: &CaptureFile, backend: &mut dyn Backend, sink: &mut dyn FindingSink) -> u64 {
    let mut pipeline =
        Pipeline::new(&ScanOptions::default()).unwrap_or_else(|e| panic!("pipeline: {e}"));
    if let Err(e) = pipeline.scan_file(file, 0, backend, sink, &mut |_| {}) {
        panic!("scan: {e}");
    }
    if let Err(e) = pipeline.finish(0, backend, sink) {
        panic!("finish: {e}");
    }
    pipeline.packet_stats().packets_read
}

fn scan_benches(c: &mut Criterion) {
    let policy_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fabrikam.toml");
    let text = std::fs::read_to_string(&policy_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", policy_path.display()));
    let compiled = linkward_policy::compile::compile_source("fabrikam.toml", &text, None)
        .unwrap_or_else(|e| panic!("fabrikam.toml: {e}"));
    // Under valgrind the pooling allocator cannot reserve its address space: the
    // native variant alone is then measured, which is what a callgrind profile of the
    // host wants anyway.
    let mut sandbox = match PolicyEngine::new(Limits::default()) {
        Ok(engine) => {
            let module = engine
                .load(&compiled.wasm)
                .unwrap_or_else(|e| panic!("module: {e}"));
            Some(SandboxBackend::new(&module))
        }
        Err(e) => {
            eprintln!("scan bench: no sandbox ({e}); measuring the native backend only");
            None
        }
    };
    let mut native = NativeBackend::new(Arc::new(linkward_guest::Evaluator::new(compiled.image)));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));

    let mut group = c.benchmark_group("scan");
    for (label, snaplen) in [("full", 262_144), ("snap96", 96)] {
        let path = dir.path().join(format!("{label}.pcap"));
        let config = GenConfig {
            packets: PACKETS,
            flows: 1_000,
            snaplen,
            ..GenConfig::default()
        };
        let out = std::fs::File::create(&path).unwrap_or_else(|e| panic!("create: {e}"));
        let summary = generate(&config, out).unwrap_or_else(|e| panic!("generate: {e}"));
        let file = CaptureFile::open(&path).unwrap_or_else(|e| panic!("open: {e}"));

        let expected = summary.expected.total();
        let mut backends: Vec<(&str, &mut dyn Backend)> = vec![("native", &mut native)];
        if let Some(sandbox) = sandbox.as_mut() {
            backends.push(("sandbox", sandbox));
        }
        for (name, backend) in backends {
            let mut sink = CountingSink::default();
            let read = scan(&file, backend, &mut sink);
            assert_eq!(read, summary.packets, "{name} {label}: packets read");
            assert_eq!(sink.reports, expected, "{name} {label}: findings");
        }
        eprintln!(
            "scan bench ({label}): {} packets, {} bytes, {} flows, {expected} findings per scan",
            summary.packets, summary.bytes_captured, summary.flows
        );

        group.throughput(Throughput::Elements(summary.packets));
        group.bench_function(BenchmarkId::new("native", label), |b| {
            b.iter(|| black_box(scan(&file, &mut native, &mut CountingSink::default())))
        });
        let Some(sandbox) = sandbox.as_mut() else {
            continue;
        };
        group.bench_function(BenchmarkId::new("sandbox", label), |b| {
            b.iter(|| black_box(scan(&file, sandbox, &mut CountingSink::default())))
        });
        group.bench_function(BenchmarkId::new("sandbox_eve", label), |b| {
            b.iter(|| {
                let mut eve = EveSink::new(io::sink(), vec![path.display().to_string()]);
                black_box(scan(&file, sandbox, &mut eve))
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = scan_benches
}
criterion_main!(benches);
