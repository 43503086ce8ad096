//! `check`, `compile`, `inspect` and `test` driven as a user would, through the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn linkward(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_linkward"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run linkward")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn compile(policy: &str, dir: &Path) -> PathBuf {
    let out = dir.join("policy.wasm");
    let o = linkward(&["compile", policy, "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    out
}

#[test]
fn check_reports_warnings_with_locations_and_exit_codes() {
    let o = linkward(&["check", "examples/fabrikam.toml"]);
    assert_eq!(o.status.code(), Some(0));
    let err = text(&o.stderr);
    assert!(
        err.contains("examples/fabrikam.toml:31:1: warning[service-tag-reliance]"),
        "{err}"
    );
    assert!(
        err.contains("no isolation between customers, workspaces or services"),
        "{err}"
    );
    assert!(err.contains("0 error(s), 2 warning(s)"), "{err}");

    let o = linkward(&["check", "--deny-warnings", "examples/fabrikam.toml"]);
    assert_eq!(o.status.code(), Some(1));

    let o = linkward(&["check", "tests/policies/broken/09-bad-cidr-prefix.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("error["), "{}", text(&o.stderr));

    let o = linkward(&["check", "no/such/policy.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("cannot read no/such/policy.toml"));
}

/// The compiled module is one component that imports nothing and exports the world.
#[test]
fn compile_produces_a_valid_component_with_zero_imports() {
    let dir = tmp();
    for policy in [
        "examples/fabrikam.toml",
        "examples/contoso-servicetags.toml",
    ] {
        let wasm = std::fs::read(compile(policy, dir.path())).unwrap();
        let mut validator =
            wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
        validator.validate_all(&wasm).unwrap();
        let mut depth = 0;
        let mut imports = 0;
        let mut exports = Vec::new();
        let mut is_component = false;
        for payload in wasmparser::Parser::new(0).parse_all(&wasm) {
            match payload.unwrap() {
                wasmparser::Payload::Version { encoding, .. } => {
                    if depth == 0 {
                        is_component = encoding == wasmparser::Encoding::Component;
                    }
                    depth += 1;
                }
                wasmparser::Payload::End(_) => depth -= 1,
                wasmparser::Payload::ComponentImportSection(r) if depth == 1 => {
                    imports += r.count()
                }
                wasmparser::Payload::ComponentExportSection(r) if depth == 1 => {
                    for e in r {
                        exports.push(e.unwrap().name.0.to_string());
                    }
                }
                _ => {}
            }
        }
        assert!(is_component, "{policy}");
        assert_eq!(imports, 0, "{policy}");
        assert_eq!(exports, vec!["linkward:policy/evaluator@2.0.0".to_string()]);
    }
}

#[test]
fn compile_refuses_a_broken_policy() {
    let dir = tmp();
    let out = dir.path().join("x.wasm");
    let o = linkward(&[
        "compile",
        "tests/policies/broken/09-bad-cidr-prefix.toml",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!out.exists());
}

#[test]
fn inspect_prints_what_the_module_says_about_itself() {
    let dir = tmp();
    let wasm = compile("examples/contoso-servicetags.toml", dir.path());
    let o = linkward(&["inspect", "--json", wasm.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["policy"], "contoso-ahds");
    assert_eq!(v["version"], "2.0.1");
    assert_eq!(v["contract"], "2.0.0");
    assert_eq!(v["services"], 3);
    assert_eq!(v["self_tests"], 4);
    let source = std::fs::read("examples/contoso-servicetags.toml").unwrap();
    assert_eq!(
        v["source_hash"],
        linkward_policy::compile::source_hash(&String::from_utf8(source).unwrap())
    );
    assert!(
        v["lints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("shared by all customers"))
    );

    let o = linkward(&["inspect", wasm.to_str().unwrap()]);
    let out = text(&o.stdout);
    assert!(out.contains("policy          contoso-ahds 2.0.1"), "{out}");
    assert!(
        out.contains("contract        linkward:policy@2.0.0"),
        "{out}"
    );

    let not_wasm = dir.path().join("junk.wasm");
    std::fs::write(&not_wasm, b"\0asm\x0d\0\x01\0garbage").unwrap();
    let o = linkward(&["inspect", not_wasm.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("not a valid WebAssembly component"));
}

#[test]
fn test_runs_cases_through_the_module_and_shows_failures_side_by_side() {
    let o = linkward(&[
        "test",
        "examples/fabrikam.toml",
        "tests/policies/fabrikam-cases.toml",
    ]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains("26 cases, 26 passed, 0 failed"), "{out}");

    let dir = tmp();
    let cases = dir.path().join("cases.toml");
    std::fs::write(
        &cases,
        r#"
[[case]]
name = "wrongly expects nothing"
flow = { src = "10.1.5.9", dst = "20.37.1.10", src-port = 50000, dst-port = 443, protocol = "tcp", sni = "fabrikam-records.fhir.azurehealthcareapis.com" }
expect = []
"#,
    )
    .unwrap();
    let wasm = compile("examples/fabrikam.toml", dir.path());
    let o = linkward(&["test", wasm.to_str().unwrap(), cases.to_str().unwrap()]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("wrongly expects nothing"), "{out}");
    assert!(out.contains("(none)"), "{out}");
    assert!(out.contains("pe-bypass"), "{out}");
    assert!(out.contains("FAIL"), "{out}");
    assert!(out.contains("1 cases, 0 passed, 1 failed"), "{out}");
}

/// A module whose embedded self-tests fail is refused before it evaluates anything.
#[test]
fn a_module_whose_self_tests_fail_is_refused() {
    let dir = tmp();
    let policy = dir.path().join("liar.toml");
    let mut source = std::fs::read_to_string("examples/fabrikam.toml").unwrap();
    source.push_str(
        r#"
[[self-test]]
name = "claims a bypass is fine"
flow = { src = "10.1.5.9", dst = "20.37.1.10", src-port = 50000, dst-port = 443, protocol = "tcp", sni = "fabrikam-records.fhir.azurehealthcareapis.com" }
expect = []
"#,
    );
    std::fs::write(&policy, source).unwrap();
    let wasm = compile(policy.to_str().unwrap(), dir.path());
    let o = linkward(&["inspect", wasm.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("self-test `claims a bypass is fine` failed: expected [], got [pe-bypass]"),
        "{err}"
    );
}

/// A policy with 10,000 rules compiles, and its last rule still works.
#[test]
fn ten_thousand_rules_compile_and_evaluate() {
    let mut source = String::from(
        "[policy]\nname = \"big\"\nversion = \"1.0.0\"\n\n[workspace]\nname = \"big\"\n\n",
    );
    for i in 0..10_000u32 {
        source.push_str(&format!(
            "[[rules]]\nid = \"r{i}\"\naction = \"alert\"\nprotocol = \"tcp\"\nsrc = [\"10.{}.{}.0/24\"]\ndst-ports = [{}]\n\n",
            i / 256,
            i % 256,
            1000 + i
        ));
    }
    let compiled = linkward_policy::compile::compile_source("big.toml", &source, None).unwrap();
    assert_eq!(compiled.image.rules.len(), 10_000);
    let engine = linkward_host::sandbox::PolicyEngine::new(Default::default()).unwrap();
    let module = engine.load(&compiled.wasm).unwrap();
    let flow = linkward_guest::record::OwnedFlow {
        src: Some("10.39.15.7".parse().unwrap()),
        dst: Some("10.200.0.1".parse().unwrap()),
        src_port: 40000,
        dst_port: 1000 + 9999,
        protocol: 6,
        ..Default::default()
    };
    let found = module.sandbox().evaluate_flow_records(&[flow]).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].rule, "r9999");
}
