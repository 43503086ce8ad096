//! The price of the sandbox: the example policy evaluated natively and in wasmtime, by
//! batch size.
//!
//! The policy is `examples/fabrikam.toml`, compiled once into its rule image (for the
//! native evaluator) and its WebAssembly module (for the sandbox, with the default
//! limits: memory bound, epoch deadline, fresh instance after a trap). The flows look
//! like a hospital network's: one in eight reaches the FHIR service through its private
//! endpoint by SNI, a few resolve it to its public address (`pe-bypass`), some use SMB
//! inside the VNet (rule `no-smb`), and most go to unrelated public sites, with or
//! without a server name.
//!
//! For each batch size (1, 16, 64, 256, 1024), per flow:
//!
//! - `native`: `Evaluator::evaluate_flow` over borrowed flows, no batch at all;
//! - `native_packed`: reading the packed batch and evaluating it natively, names
//!   looked up once per batch (`Evaluator::evaluate_flow_batch`), which is what
//!   `NativeBackend` does inside a scan and the module does inside the sandbox;
//! - `sandbox_packed`: one `evaluate-flows-packed` call into the module with the packed
//!   batch, which is what a scan does;
//! - `sandbox_records`: one `evaluate-flows` call with the `list<record>` form, where
//!   wasmtime lowers each record field by field;
//! - `pack`: building the packed batch on the host, paid by both backends in a scan.
//!
//! Once, for 256 flows of the mix with the policy's health-data tag read from the
//! published service-tag file (`published_tags_native`, `published_tags_sandbox_packed`):
//! a tag of hundreds of prefixes, looked up on every flow.
//!
//! And once, for 256 flows of the same mix that raise no finding (`quiet_native`,
//! `quiet_native_packed`, `quiet_sandbox_packed`): the price of the sandbox on the
//! evaluation alone, apart from bringing findings out of it. The difference between
//! the two runs of each backend is what its findings cost.
//!
//! And what loading the module costs a run (`module_load`): `compiled` from its bytes,
//! as a first run does, and `cached`, mapped from the compiled-module cache an earlier
//! run left, as every later run does. Both include the checks and self-tests.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use linkward_guest::packed::FlowBatchWriter;
use linkward_guest::record::{Finding, OwnedFlow, protocol};
use linkward_guest::{Evaluator, Flow};
use linkward_host::sandbox::{CodeSource, Limits, PolicyEngine, Sandbox};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

const SIZES: [usize; 5] = [1, 16, 64, 256, 1024];
const FHIR: &str = "fabrikam-records.fhir.azurehealthcareapis.com";
const FHIR_PRIVATELINK: &str = "fabrikam-records.privatelink.fhir.azurehealthcareapis.com";
const DICOM: &str = "fabrikam-imaging.dicom.azurehealthcareapis.com";
const OTHER_NAMES: [&str; 4] = [
    "login.microsoftonline.com",
    "www.example.org",
    "updates.contoso.net",
    "api.github.com",
];

fn v4(a: u8, b: u8, c: u8, d: u8) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
}

/// Flow `i` of the benchmark's traffic mix.
fn flow(i: usize) -> OwnedFlow {
    let (hi, lo) = ((i >> 8) as u8, i as u8);
    let mut f = OwnedFlow {
        src: v4(10, 1, 3 + hi % 100, lo),
        src_port: 40_000 + (i % 20_000) as u16,
        dst_port: 443,
        protocol: protocol::TCP,
        packets: 20 + (i % 50) as u64,
        bytes: 12_000 + (i % 7_000) as u64 * 100,
        first_seen_ns: 1_714_557_600_000_000_000 + i as u64 * 1_000_000,
        ..OwnedFlow::default()
    };
    f.last_seen_ns = f.first_seen_ns + 2_000_000_000;
    match i % 16 {
        // Through the private endpoint, the right way.
        0 | 8 => {
            f.dst = v4(10, 1, 2, 5);
            f.sni = Some(FHIR.into());
            f.resolved_name = Some(FHIR.into());
            f.cname_chain = vec![FHIR_PRIVATELINK.into()];
        }
        // DICOM over HTTP from the peered VNet.
        4 => {
            f.src = v4(10, 2, 7, lo);
            f.dst = v4(10, 1, 2, 6);
            f.dst_port = 80;
            f.http_host = Some(DICOM.into());
        }
        // Resolved to the public address: pe-bypass.
        5 => {
            f.dst = v4(20, 37, 1, 9);
            f.sni = Some(FHIR.into());
            f.resolved_name = Some(FHIR.into());
        }
        // SMB inside the VNet: rule no-smb.
        11 => {
            f.dst = v4(10, 1, 9, lo);
            f.dst_port = 445;
        }
        // Syslog over UDP to a collector.
        12 => {
            f.dst = v4(10, 1, 0, 20);
            f.dst_port = 514;
            f.protocol = protocol::UDP;
        }
        // Everything else: public sites, most with a server name.
        n => {
            f.dst = v4(203, 0, 113, lo);
            if n % 3 != 0 {
                f.sni = OTHER_NAMES
                    .get(i % OTHER_NAMES.len())
                    .map(|s| s.to_string());
            }
        }
    }
    f
}

fn pack(writer: &mut FlowBatchWriter, flows: &[OwnedFlow]) {
    writer.clear();
    for f in flows {
        let chain: Vec<&str> = f.cname_chain.iter().map(String::as_str).collect();
        writer.push(&f.view(), &chain);
    }
}

fn native(evaluator: &Evaluator, views: &[Flow<'_>], out: &mut Vec<Finding>) -> usize {
    out.clear();
    for (i, f) in views.iter().enumerate() {
        evaluator.evaluate_flow(i as u32, f, out);
    }
    out.len()
}

fn native_packed(evaluator: &Evaluator, batch: &[u8], out: &mut Vec<Finding>) -> usize {
    out.clear();
    if let Err(e) = evaluator.evaluate_flow_batch(batch, out) {
        panic!("packed batch: {e}");
    }
    out.len()
}

/// One `evaluate-flows-packed` call; a failed call fails the bench.
fn sandbox_findings(sandbox: &mut Sandbox, batch: &[u8], flows: usize) -> Vec<Finding> {
    sandbox
        .evaluate_flows_packed(batch, flows)
        .unwrap_or_else(|e| panic!("sandbox: {e}"))
}

fn sandbox_packed(sandbox: &mut Sandbox, batch: &[u8], flows: usize) -> usize {
    sandbox_findings(sandbox, batch, flows).len()
}

fn kinds(findings: &[Finding]) -> Vec<(u32, &'static str)> {
    let mut v: Vec<(u32, &'static str)> = findings.iter().map(|f| (f.index, f.kind.id())).collect();
    v.sort();
    v
}

/// The example policy's source, and the folder its relative paths start from.
fn example_policy() -> (String, std::path::PathBuf) {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let path = examples.join("fabrikam.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    (text, examples)
}

/// `text` compiled, as the native evaluator and as a sandbox over its module.
fn evaluators(engine: &PolicyEngine, text: &str, base_dir: &Path) -> (Evaluator, Sandbox) {
    let compiled = linkward_policy::compile::compile_source("fabrikam.toml", text, Some(base_dir))
        .unwrap_or_else(|e| panic!("fabrikam.toml: {e}"));
    let module = engine
        .load(&compiled.wasm)
        .unwrap_or_else(|e| panic!("module: {e}"));
    (Evaluator::new(compiled.image), module.sandbox())
}

fn guest_batch(c: &mut Criterion) {
    let (text, examples) = example_policy();
    let engine = PolicyEngine::new(Limits::default()).unwrap_or_else(|e| panic!("engine: {e}"));
    let (evaluator, mut sandbox) = evaluators(&engine, &text, &examples);

    let max = SIZES.iter().copied().max().unwrap_or(1);
    let flows: Vec<OwnedFlow> = (0..max).map(flow).collect();
    let views: Vec<Flow<'_>> = flows.iter().map(OwnedFlow::view).collect();
    let mut writer = FlowBatchWriter::new();
    let mut out = Vec::new();

    // All four ways must report the same findings before any is worth timing.
    pack(&mut writer, &flows);
    native(&evaluator, &views, &mut out);
    let expected = kinds(&out);
    native_packed(&evaluator, writer.bytes(), &mut out);
    assert_eq!(kinds(&out), expected, "native packed disagrees");
    let packed = sandbox_findings(&mut sandbox, writer.bytes(), flows.len());
    assert_eq!(kinds(&packed), expected, "sandbox packed disagrees");
    let records = sandbox
        .evaluate_flow_records(&flows)
        .unwrap_or_else(|e| panic!("sandbox: {e}"));
    assert_eq!(kinds(&records), expected, "sandbox records disagree");
    let count = |id: &str| expected.iter().filter(|(_, k)| *k == id).count();
    assert_eq!(count("pe-bypass"), max / 16, "pe-bypass findings");
    assert_eq!(count("rule"), max / 16, "rule findings");
    eprintln!(
        "guest_batch bench: {} flows, {} findings ({} bytes packed)",
        flows.len(),
        expected.len(),
        writer.bytes().len()
    );

    let mut group = c.benchmark_group("guest_batch");
    quiet_batch(&mut group, &evaluator, &mut sandbox);
    published_tags_batch(&mut group, &engine, (&text, &examples), &flows);
    for n in SIZES {
        let (Some(batch_flows), Some(batch_views)) = (flows.get(..n), views.get(..n)) else {
            continue;
        };
        let mut batch = FlowBatchWriter::new();
        pack(&mut batch, batch_flows);
        let bytes = batch.bytes().to_vec();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("native", n), &n, |b, _| {
            b.iter(|| black_box(native(&evaluator, batch_views, &mut out)))
        });
        group.bench_with_input(BenchmarkId::new("native_packed", n), &n, |b, _| {
            b.iter(|| black_box(native_packed(&evaluator, &bytes, &mut out)))
        });
        group.bench_with_input(BenchmarkId::new("sandbox_packed", n), &n, |b, _| {
            b.iter(|| black_box(sandbox_packed(&mut sandbox, black_box(&bytes), n)))
        });
        group.bench_with_input(BenchmarkId::new("sandbox_records", n), &n, |b, _| {
            b.iter(
                || match sandbox.evaluate_flow_records(black_box(batch_flows)) {
                    Ok(found) => black_box(found.len()),
                    Err(e) => panic!("sandbox: {e}"),
                },
            )
        });
        group.bench_with_input(BenchmarkId::new("pack", n), &n, |b, _| {
            b.iter(|| {
                pack(&mut writer, batch_flows);
                black_box(writer.bytes().len())
            })
        });
    }
    group.finish();
}

/// The flows of the mix that raise no finding, evaluated by each backend.
fn quiet_batch(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    evaluator: &Evaluator,
    sandbox: &mut Sandbox,
) {
    const QUIET: usize = 256;
    let mut out = Vec::new();
    let quiet: Vec<OwnedFlow> = (0..16 * QUIET)
        .map(flow)
        .filter(|f| {
            out.clear();
            evaluator.evaluate_flow(0, &f.view(), &mut out);
            out.is_empty()
        })
        .take(QUIET)
        .collect();
    assert_eq!(quiet.len(), QUIET, "the mix has {QUIET} quiet flows");
    let views: Vec<Flow<'_>> = quiet.iter().map(OwnedFlow::view).collect();
    let mut writer = FlowBatchWriter::new();
    pack(&mut writer, &quiet);
    let bytes = writer.bytes().to_vec();
    assert_eq!(
        sandbox_packed(sandbox, &bytes, QUIET),
        0,
        "the sandbox finds what native does not"
    );
    group.throughput(Throughput::Elements(QUIET as u64));
    group.bench_with_input(BenchmarkId::new("quiet_native", QUIET), &QUIET, |b, _| {
        b.iter(|| black_box(native(evaluator, &views, &mut out)))
    });
    group.bench_with_input(
        BenchmarkId::new("quiet_native_packed", QUIET),
        &QUIET,
        |b, _| b.iter(|| black_box(native_packed(evaluator, &bytes, &mut out))),
    );
    group.bench_with_input(
        BenchmarkId::new("quiet_sandbox_packed", QUIET),
        &QUIET,
        |b, _| b.iter(|| black_box(sandbox_packed(sandbox, black_box(&bytes), QUIET))),
    );
}

/// The mix's first 256 flows under the example policy with its health-data tag taken
/// from the published service-tag file (`examples/ServiceTags_Public.subset.json`, 273
/// prefixes) instead of the one inline range: what a policy that follows Microsoft's
/// file looks up on every flow.
fn published_tags_batch(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    engine: &PolicyEngine,
    (text, examples): (&str, &Path),
    flows: &[OwnedFlow],
) {
    const N: usize = 256;
    let inline = "AzureHealthcareAPIs = [\"20.37.0.0/16\"]";
    assert!(
        text.contains(inline),
        "the example policy names its tag inline"
    );
    let text = text.replacen(inline, "file = \"ServiceTags_Public.subset.json\"", 1);
    let (evaluator, mut sandbox) = evaluators(engine, &text, examples);
    let flows = flows.get(..N).unwrap_or(flows);
    let views: Vec<Flow<'_>> = flows.iter().map(OwnedFlow::view).collect();
    let mut writer = FlowBatchWriter::new();
    pack(&mut writer, flows);
    let bytes = writer.bytes().to_vec();
    let mut out = Vec::new();
    native(&evaluator, &views, &mut out);
    let expected = kinds(&out);
    let found = sandbox_findings(&mut sandbox, &bytes, flows.len());
    assert_eq!(
        kinds(&found),
        expected,
        "sandbox disagrees with published tags"
    );
    group.throughput(Throughput::Elements(flows.len() as u64));
    group.bench_with_input(BenchmarkId::new("published_tags_native", N), &N, |b, _| {
        b.iter(|| black_box(native(&evaluator, &views, &mut out)))
    });
    group.bench_with_input(
        BenchmarkId::new("published_tags_sandbox_packed", N),
        &N,
        |b, _| b.iter(|| black_box(sandbox_packed(&mut sandbox, black_box(&bytes), N))),
    );
}

fn module_load(c: &mut Criterion) {
    let (text, examples) = example_policy();
    let wasm = linkward_policy::compile::compile_source("fabrikam.toml", &text, Some(&examples))
        .unwrap_or_else(|e| panic!("fabrikam.toml: {e}"))
        .wasm;
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("cache directory: {e}"));
    let cached = PolicyEngine::new(Limits {
        cache_dir: Some(cache.path().to_path_buf()),
        ..Limits::default()
    })
    .unwrap_or_else(|e| panic!("engine: {e}"));
    let uncached = PolicyEngine::new(Limits {
        cache_dir: None,
        ..Limits::default()
    })
    .unwrap_or_else(|e| panic!("engine: {e}"));
    let load = |engine: &PolicyEngine| {
        engine
            .load(black_box(&wasm))
            .unwrap_or_else(|e| panic!("module: {e}"))
            .code_source()
    };
    // The first load fills the cache; the ones timed below must take the path named.
    assert_eq!(load(&cached), CodeSource::Compiled);
    assert_eq!(load(&cached), CodeSource::Cached);
    assert_eq!(load(&uncached), CodeSource::Compiled);
    let mut group = c.benchmark_group("module_load");
    group.bench_function("cached", |b| b.iter(|| load(&cached)));
    group.bench_function("compiled", |b| b.iter(|| load(&uncached)));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = guest_batch, module_load
}
criterion_main!(benches);
