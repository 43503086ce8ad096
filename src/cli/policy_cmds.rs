//! `check`, `compile`, `inspect` and `test`.

use anyhow::{Context, bail};
use linkward_guest::record::{TestCase, TestInput};
use linkward_guest::vocab::FindingKind;
use linkward_host::sandbox::{Limits, LoadedModule, PolicyEngine};
use linkward_host::signing::{self, PublicKey, SignatureStatus};
use linkward_policy::compile::{CompileError, compile_source};
use linkward_policy::diagnostic::Level;
use std::path::Path;
use std::process::ExitCode;

fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn display_name(path: &Path) -> String {
    path.display().to_string()
}

pub fn check(path: &Path, deny_warnings: bool) -> anyhow::Result<ExitCode> {
    let text = read_text(path)?;
    let checked =
        linkward_policy::validate::check_source(&display_name(path), &text, path.parent());
    let errors = checked
        .diagnostics
        .iter()
        .filter(|d| d.level == Level::Error)
        .count();
    let warnings = checked.diagnostics.len() - errors;
    for d in &checked.diagnostics {
        eprintln!("{}", d.render(&text));
    }
    eprintln!(
        "{}: {errors} error(s), {warnings} warning(s)",
        display_name(path)
    );
    Ok(if errors > 0 || (deny_warnings && warnings > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Compiles a policy file, printing its diagnostics; `Ok(None)` when it has errors.
pub fn compile_file(path: &Path, quiet: bool) -> anyhow::Result<Option<Vec<u8>>> {
    let text = read_text(path)?;
    match compile_source(&display_name(path), &text, path.parent()) {
        Ok(compiled) => {
            if !quiet {
                for w in &compiled.warnings {
                    eprintln!("{}", w.render(&text));
                }
            }
            Ok(Some(compiled.wasm))
        }
        Err(CompileError::Invalid(diagnostics)) => {
            for d in &diagnostics {
                eprintln!("{}", d.render(&text));
            }
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

pub fn compile(path: &Path, output: &Path) -> anyhow::Result<ExitCode> {
    let Some(wasm) = compile_file(path, false)? else {
        return Ok(ExitCode::from(1));
    };
    std::fs::write(output, &wasm).with_context(|| format!("cannot write {}", output.display()))?;
    eprintln!("wrote {} ({} bytes)", output.display(), wasm.len());
    Ok(ExitCode::SUCCESS)
}

/// Loads a policy given as a compiled module (`.wasm`, or any file starting with the
/// WebAssembly magic) or as policy source (compiled on the fly).
pub fn load_policy(
    engine: &PolicyEngine,
    path: &Path,
    quiet: bool,
) -> anyhow::Result<LoadedModule> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let wasm = if bytes.starts_with(b"\0asm") {
        bytes
    } else {
        match compile_file(path, quiet)? {
            Some(wasm) => wasm,
            None => bail!("{} has errors; see above", path.display()),
        }
    };
    engine
        .load(&wasm)
        .with_context(|| format!("module {} refused", path.display()))
}

pub fn inspect(path: &Path, json: bool, trust_key: Option<&str>) -> anyhow::Result<ExitCode> {
    let trusted = trust_key.map(super::sign_cmd::read_trust_key).transpose()?;
    let signature = signature_report(path, trusted.as_ref())?;
    let engine = PolicyEngine::new(Limits::default())?;
    let module = load_policy(&engine, path, true)?;
    let info = module
        .info()
        .context("the module did not describe itself")?;
    if json {
        let value = serde_json::json!({
            "policy": info.policy_name,
            "version": info.policy_version,
            "source_hash": info.source_hash,
            "compiler": info.compiler_version,
            "contract": info.contract_version,
            "services": info.services,
            "rules": info.rules,
            "prefixes": info.prefixes,
            "names": info.names,
            "self_tests": info.self_tests,
            "lints": info.lints,
            "signature": signature.as_ref().map(|(json, _)| json),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!(
            "policy          {} {}",
            info.policy_name, info.policy_version
        );
        println!("source hash     sha256:{}", info.source_hash);
        println!("compiler        {}", info.compiler_version);
        println!("contract        linkward:policy@{}", info.contract_version);
        println!(
            "contents        {} services, {} rules, {} prefixes, {} names",
            info.services, info.rules, info.prefixes, info.names
        );
        println!("self-tests      {} (all passed)", info.self_tests);
        if let Some((_, line)) = &signature {
            println!("signature       {line}");
        }
        println!("lints           {}", info.lints.len());
        for l in &info.lints {
            println!("  {l}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The signature of a compiled module, as JSON and as a line of text; `None` for policy
/// source. With a trusted key, anything but a valid signature by that key is an error.
fn signature_report(
    path: &Path,
    trusted: Option<&PublicKey>,
) -> anyhow::Result<Option<(serde_json::Value, String)>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !bytes.starts_with(b"\0asm") {
        if trusted.is_some() {
            bail!("{} is policy source, not a signed module", path.display());
        }
        return Ok(None);
    }
    if let Some(key) = trusted {
        signing::verify(&bytes, key)
            .with_context(|| format!("module {} refused", path.display()))?;
    }
    let trusted_note = if trusted.is_some() { " (trusted)" } else { "" };
    Ok(Some(match signing::signature_status(&bytes) {
        Ok(SignatureStatus::Unsigned) => (serde_json::json!({"status": "none"}), "none".into()),
        Ok(SignatureStatus::Valid { key }) => (
            serde_json::json!({"status": "valid", "key": key.to_hex(), "trusted": trusted.is_some()}),
            format!("valid for key {key}{trusted_note}"),
        ),
        Ok(SignatureStatus::Invalid { key }) => (
            serde_json::json!({"status": "invalid", "key": key.to_hex()}),
            format!("INVALID: made by key {key}, but the module changed after signing"),
        ),
        Err(e) => (
            serde_json::json!({"status": "malformed", "error": e.to_string()}),
            format!("unreadable: {e}"),
        ),
    }))
}

fn kinds(list: &[FindingKind]) -> String {
    if list.is_empty() {
        "(none)".into()
    } else {
        list.iter().map(|k| k.id()).collect::<Vec<_>>().join(", ")
    }
}

pub fn test(policy: &Path, cases_path: &Path) -> anyhow::Result<ExitCode> {
    let engine = PolicyEngine::new(Limits::default())?;
    let module = load_policy(&engine, policy, true)?;
    let text = read_text(cases_path)?;
    let cases: Vec<TestCase> =
        match linkward_policy::cases::parse_cases(&display_name(cases_path), &text) {
            Ok(c) => c,
            Err(diagnostics) => {
                for d in &diagnostics {
                    eprintln!("{}", d.render(&text));
                }
                return Ok(ExitCode::from(2));
            }
        };
    let mut sandbox = module.sandbox();
    let mut failed = 0;
    let width = cases.iter().map(|c| c.name.len()).max().unwrap_or(4).max(4);
    println!("{:<width$}  {:<40}  {:<40}", "case", "expected", "got");
    for case in &cases {
        let findings = match &case.input {
            TestInput::Flow(f) => sandbox.evaluate_flow_records(std::slice::from_ref(f))?,
            TestInput::Dns(d) => sandbox.evaluate_dns_records(std::slice::from_ref(d))?,
        };
        let mut got: Vec<FindingKind> = findings.iter().map(|f| f.kind).collect();
        let mut expected = case.expect.clone();
        got.sort();
        expected.sort();
        let ok = got == expected;
        if !ok {
            failed += 1;
        }
        println!(
            "{:<width$}  {:<40}  {:<40}  {}",
            case.name,
            kinds(&expected),
            kinds(&got),
            if ok { "ok" } else { "FAIL" }
        );
        if !ok {
            for f in &findings {
                println!("{:<width$}    {}: {}", "", f.kind, f.reason);
            }
        }
    }
    println!(
        "\n{} cases, {} passed, {failed} failed",
        cases.len(),
        cases.len() - failed
    );
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
