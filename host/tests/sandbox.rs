//! The sandbox through its public interface: real modules compiled from policy source,
//! and hostile modules written as WAT.

mod common;

use linkward_guest::packed::FlowBatchWriter;
use linkward_guest::record::{OwnedDnsAnswer, OwnedFlow};
use linkward_guest::vocab::FindingKind;
use linkward_host::sandbox::{CodeSource, Limits, MAX_CACHED_MODULES, PolicyEngine, SandboxError};
use std::time::{Duration, Instant};

const POLICY: &str = r#"
[policy]
name = "sandbox-test"
version = "2.0.1"

[workspace]
name = "fabrikam"
public-network-access = "disabled"

[[workspace.services]]
kind = "fhir"
name = "records"
private-ip = "10.1.2.5"

[private-endpoint]
vnet = "10.1.0.0/16"
subnet = "10.1.2.0/24"
allowed-origins = ["10.1.0.0/16"]

[[rules]]
id = "no-smb"
action = "deny"
protocol = "tcp"
dst-ports = [445]
severity = "high"
"#;

fn engine() -> PolicyEngine {
    PolicyEngine::new(Limits {
        call_timeout: Duration::from_millis(300),
        memory_bytes: 16 << 20,
        ..Limits::default()
    })
    .unwrap()
}

fn module_bytes() -> Vec<u8> {
    linkward_policy::compile::compile_source("sandbox-test.toml", POLICY, None)
        .unwrap()
        .wasm
}

fn bypass_flow() -> OwnedFlow {
    OwnedFlow {
        src: Some("10.1.5.9".parse().unwrap()),
        dst: Some("20.37.1.10".parse().unwrap()),
        src_port: 50000,
        dst_port: 443,
        protocol: 6,
        sni: Some("fabrikam-records.fhir.azurehealthcareapis.com".into()),
        ..OwnedFlow::default()
    }
}

#[test]
fn compiled_module_loads_reports_metadata_and_evaluates_both_forms() {
    let module = engine().load(&module_bytes()).unwrap();
    let info = module.info().unwrap();
    assert_eq!(info.policy_name, "sandbox-test");
    assert_eq!(info.policy_version, "2.0.1");
    assert_eq!(info.contract_version, "2.0.0");
    assert_eq!((info.services, info.rules), (1, 1));

    let mut sandbox = module.sandbox();
    let good = OwnedFlow {
        dst: Some("10.1.2.5".parse().unwrap()),
        ..bypass_flow()
    };
    let records = sandbox
        .evaluate_flow_records(&[good.clone(), bypass_flow()])
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].index, records[0].kind),
        (1, FindingKind::PeBypass)
    );

    let mut batch = FlowBatchWriter::new();
    batch.push(&good.view(), &[]);
    batch.push(&bypass_flow().view(), &[]);
    let packed = sandbox.evaluate_flows_packed(batch.bytes(), 2).unwrap();
    assert_eq!(packed, records);

    let dns = OwnedDnsAnswer {
        client: Some("10.1.5.9".parse().unwrap()),
        query: "fabrikam-records.fhir.azurehealthcareapis.com".into(),
        addresses: vec!["20.37.1.10".parse().unwrap()],
        ..OwnedDnsAnswer::default()
    };
    let found = sandbox.evaluate_dns_records(&[dns]).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kind, FindingKind::DnsPublicResolution);
}

#[test]
fn malformed_packed_batch_is_rejected_not_trapped() {
    let module = engine().load(&module_bytes()).unwrap();
    let mut sandbox = module.sandbox();
    let err = sandbox
        .evaluate_flows_packed(b"LWF1\x05\0\0\0", 5)
        .unwrap_err();
    assert!(
        matches!(err, SandboxError::Rejected(ref m) if m.contains("truncated")),
        "{err}"
    );
    // The name-table layout, its table cut off.
    let err = sandbox
        .evaluate_flows_packed(b"LWF2\x05\0\0\0\x0c\0\0\0", 5)
        .unwrap_err();
    assert!(
        matches!(err, SandboxError::Rejected(ref m) if m.contains("truncated name count")),
        "{err}"
    );
    assert_eq!(sandbox.instantiations(), 1);
}

/// A policy module written by hand in WAT: a core module that implements the contract
/// trivially (empty metadata, no self-tests, no findings) except for
/// `evaluate-flows-packed`, whose body is given, wrapped as a component by wit-component.
fn hostile(evaluate_body: &str) -> Vec<u8> {
    const P: &str = "linkward:policy/evaluator@2.0.0#";
    let wat = format!(
        r#"(module
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 4096))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get 3)))
    (local.get $p))
  ;; 1024.. is zeroed: an all-empty metadata record, an empty list, ok(empty list).
  (func (export "{P}metadata") (result i32) (i32.const 1024))
  (func (export "{P}self-test-cases") (result i32) (i32.const 1024))
  (func (export "{P}evaluate-flows") (param i32 i32) (result i32) (i32.const 1024))
  (func (export "{P}evaluate-dns") (param i32 i32) (result i32) (i32.const 1024))
  (func (export "{P}evaluate-dns-packed") (param i32 i32) (result i32) (i32.const 1024))
  (func (export "{P}evaluate-flows-packed") (param i32 i32) (result i32)
    {evaluate_body})
)"#
    );
    let mut core = wat::parse_str(wat).unwrap();
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve
        .push_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit"))
        .unwrap();
    let world = resolve.select_world(&[pkg], Some("policy-module")).unwrap();
    wit_component::embed_component_metadata(
        &mut core,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .module(&core)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
}

fn one_flow_batch() -> Vec<u8> {
    let mut batch = FlowBatchWriter::new();
    batch.push(&bypass_flow().view(), &[]);
    batch.bytes().to_vec()
}

#[test]
fn endless_loop_is_stopped_at_the_deadline_and_the_next_call_gets_a_fresh_instance() {
    let module = engine()
        .load(&hostile("(loop (br 0)) (i32.const 1024)"))
        .unwrap();
    let mut sandbox = module.sandbox();
    let started = Instant::now();
    let err = sandbox
        .evaluate_flows_packed(&one_flow_batch(), 1)
        .unwrap_err();
    assert!(matches!(err, SandboxError::Trap(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
    // The instance is retired; metadata still answers from a fresh one.
    assert_eq!(sandbox.metadata().unwrap().policy_name, "");
    assert_eq!(sandbox.instantiations(), 2);
}

#[test]
fn memory_growth_is_capped() {
    let body = "(loop (drop (memory.grow (i32.const 16))) (br 0)) (i32.const 1024)";
    let module = engine().load(&hostile(body)).unwrap();
    let mut sandbox = module.sandbox();
    let err = sandbox
        .evaluate_flows_packed(&one_flow_batch(), 1)
        .unwrap_err();
    assert!(matches!(err, SandboxError::Trap(_)), "{err}");
    assert!(err.to_string().contains("memory"), "{err}");
}

#[test]
fn a_trap_costs_only_the_batch() {
    let module = engine().load(&hostile("unreachable")).unwrap();
    let mut sandbox = module.sandbox();
    let err = sandbox
        .evaluate_flows_packed(&one_flow_batch(), 1)
        .unwrap_err();
    assert!(err.to_string().contains("unreachable"), "{err}");
    let err = sandbox
        .evaluate_flows_packed(&one_flow_batch(), 1)
        .unwrap_err();
    assert!(matches!(err, SandboxError::Trap(_)));
    assert_eq!(sandbox.instantiations(), 2);
}

#[test]
fn huge_results_are_refused() {
    // ok(list) of 100,000 zeroed findings in freshly grown memory.
    let body = "(drop (memory.grow (i32.const 60)))
      (i32.store (i32.const 2048) (i32.const 0))
      (i32.store (i32.const 2052) (i32.const 131072))
      (i32.store (i32.const 2056) (i32.const 100000))
      (i32.const 2048)";
    let module = engine().load(&hostile(body)).unwrap();
    let mut sandbox = module.sandbox();
    let err = sandbox
        .evaluate_flows_packed(&one_flow_batch(), 1)
        .unwrap_err();
    assert!(
        matches!(
            err,
            SandboxError::TooManyFindings {
                findings: 100_000,
                records: 1
            }
        ),
        "{err}"
    );
    // A list that points outside memory is a trap, not a host crash.
    let body = "(i32.store (i32.const 2048) (i32.const 0))
      (i32.store (i32.const 2052) (i32.const 0x7fff0000))
      (i32.store (i32.const 2056) (i32.const 0x0fffffff))
      (i32.const 2048)";
    let module = engine().load(&hostile(body)).unwrap();
    let err = module
        .sandbox()
        .evaluate_flows_packed(&one_flow_batch(), 1)
        .unwrap_err();
    assert!(matches!(err, SandboxError::Trap(_)), "{err}");
}

#[test]
fn foreign_contract_versions_and_imports_are_refused() {
    // A module of the previous contract, whose flow batches were packed differently.
    let v1 = r#"(component
  (core module $m (func (export "f")))
  (core instance $i (instantiate $m))
  (func $f (canon lift (core func $i "f")))
  (instance $ev (export "metadata" (func $f)))
  (export "linkward:policy/evaluator@1.0.0" (instance $ev)))"#;
    let err = engine().load(&wat::parse_str(v1).unwrap()).err().unwrap();
    assert!(
        err.to_string()
            .contains("linkward:policy@1.0.0, this host speaks 2.x"),
        "{err}"
    );
    let with_import = r#"(component (import "wasi:clocks/wall-clock@0.2.0" (instance)))"#;
    let err = engine()
        .load(&wat::parse_str(with_import).unwrap())
        .err()
        .unwrap();
    assert!(matches!(err, SandboxError::HasImports(ref n) if n == "wasi:clocks/wall-clock@0.2.0"));
    let err = engine().load(b"\0asm\x01\0\0\0").err().unwrap();
    assert!(matches!(err, SandboxError::Compile(_)), "{err}");
}

/// A module that fails costs its batch: fail-closed reports every record of it as an
/// `evaluation-error`, fail-open only counts the failure; the next batch is evaluated
/// by a fresh instance either way.
#[test]
fn failed_batches_are_reported_fail_closed_or_counted_fail_open() {
    use linkward_host::evaluation::{Batcher, CollectSink, ReportKind, SandboxBackend};

    let module = engine().load(&hostile("unreachable")).unwrap();
    let subject = |port: u16| common::tcp_flow("10.1.5.9", "20.37.1.10", port);
    for fail_open in [false, true] {
        let mut backend = SandboxBackend::new(&module);
        let mut sink = CollectSink::default();
        let mut batcher = Batcher::new(2, fail_open);
        for port in 1..=5 {
            batcher
                .push_flow(subject(port), &mut backend, &mut sink)
                .unwrap();
        }
        batcher.flush(&mut backend, &mut sink).unwrap();
        assert_eq!(batcher.stats.module_errors, 3, "fail_open={fail_open}");
        assert_eq!(batcher.stats.flows_evaluated, 5);
        if fail_open {
            assert!(sink.reports.is_empty());
        } else {
            let ports: Vec<u16> = sink
                .reports
                .iter()
                .map(|(s, r)| {
                    assert_eq!(r.kind, ReportKind::EvaluationError);
                    assert!(r.reason.contains("unreachable"), "{}", r.reason);
                    s.endpoints().1
                })
                .collect();
            assert_eq!(ports, vec![1, 2, 3, 4, 5]);
        }
    }
}

/// An engine whose compiled modules are kept in `dir`, as the next run's would be.
fn engine_caching_in(dir: &std::path::Path) -> PolicyEngine {
    PolicyEngine::new(Limits {
        cache_dir: Some(dir.to_path_buf()),
        ..Limits::default()
    })
    .unwrap()
}

fn cache_entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(dir.join("compiled"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    entries.sort();
    entries
}

fn bypass_findings(module: &linkward_host::sandbox::LoadedModule) -> Vec<FindingKind> {
    let found = module
        .sandbox()
        .evaluate_flow_records(&[bypass_flow()])
        .unwrap();
    found.iter().map(|f| f.kind).collect()
}

#[test]
fn a_module_is_compiled_once_and_then_mapped_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = module_bytes();
    let first = engine_caching_in(dir.path()).load(&bytes).unwrap();
    assert_eq!(first.code_source(), CodeSource::Compiled);
    let entries = cache_entries(dir.path());
    assert_eq!(entries.len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode();
        assert_eq!(mode(&entries[0]) & 0o777, 0o600);
        assert_eq!(mode(&dir.path().join("compiled")) & 0o777, 0o700);
    }

    // The next run (a new engine) maps what the first compiled, and it evaluates alike.
    let again = engine_caching_in(dir.path()).load(&bytes).unwrap();
    assert_eq!(again.code_source(), CodeSource::Cached);
    assert_eq!(again.info(), first.info());
    assert_eq!(bypass_findings(&again), bypass_findings(&first));
    assert!(!bypass_findings(&again).is_empty());

    // Another module is another entry; no cache directory, no entry.
    let other = hostile("(i32.const 1024)");
    let engine = engine_caching_in(dir.path());
    assert_eq!(
        engine.load(&other).unwrap().code_source(),
        CodeSource::Compiled
    );
    assert_eq!(cache_entries(dir.path()).len(), 2);
    let uncached = PolicyEngine::new(Limits {
        cache_dir: None,
        ..Limits::default()
    })
    .unwrap();
    assert_eq!(
        uncached.load(&bytes).unwrap().code_source(),
        CodeSource::Compiled
    );
}

#[test]
fn a_damaged_or_writable_entry_is_compiled_again_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = hostile("(i32.const 1024)");
    let load = || engine_caching_in(dir.path()).load(&bytes).unwrap();
    assert_eq!(load().code_source(), CodeSource::Compiled);
    let entry = cache_entries(dir.path()).remove(0);

    // Cut short, then garbage: compiled again, and the entry written anew.
    let whole = std::fs::read(&entry).unwrap();
    std::fs::write(&entry, &whole[..whole.len() / 2]).unwrap();
    assert_eq!(load().code_source(), CodeSource::Compiled);
    assert_eq!(load().code_source(), CodeSource::Cached);
    std::fs::write(&entry, b"\x7fELF but not wasmtime's").unwrap();
    assert_eq!(load().code_source(), CodeSource::Compiled);
    assert_eq!(std::fs::read(&entry).unwrap(), whole);

    // An entry others may write to is not trusted.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(load().code_source(), CodeSource::Compiled);
        assert_eq!(load().code_source(), CodeSource::Cached);
        let dir_mode = std::fs::Permissions::from_mode(0o777);
        std::fs::set_permissions(dir.path().join("compiled"), dir_mode).unwrap();
        assert_eq!(load().code_source(), CodeSource::Compiled);
    }
}

#[test]
fn the_cache_drops_the_least_recently_used_entries() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_caching_in(dir.path());
    let modules: Vec<Vec<u8>> = (0..=MAX_CACHED_MODULES)
        .map(|i| hostile(&format!("(drop (i32.const {i})) (i32.const 1024)")))
        .collect();
    let load = |i: usize| engine.load(&modules[i]).unwrap().code_source();
    for i in 0..MAX_CACHED_MODULES {
        assert_eq!(load(i), CodeSource::Compiled, "module {i}");
    }
    assert_eq!(cache_entries(dir.path()).len(), MAX_CACHED_MODULES);
    // Module 0 is used again, so module 1 is now the least recently used.
    assert_eq!(load(0), CodeSource::Cached);
    assert_eq!(load(MAX_CACHED_MODULES), CodeSource::Compiled);
    assert_eq!(cache_entries(dir.path()).len(), MAX_CACHED_MODULES);
    assert_eq!(load(0), CodeSource::Cached);
    assert_eq!(load(2), CodeSource::Cached);
    assert_eq!(load(1), CodeSource::Compiled);
}
