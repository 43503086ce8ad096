//! Hot swap without a network: the library's pipeline with a real module watcher over
//! several captures, the slot switching between batches, and module signatures from
//! `keygen` and `sign` through `inspect` and `scan --trust-key`.

mod common;

use linkward_capture::CaptureFile;
use linkward_host::evaluation::{ChannelSink, Report};
use linkward_host::pipeline::{Pipeline, ScanOptions};
use linkward_host::sandbox::{Limits, PolicyEngine};
use linkward_host::signing::{self, SecretKey};
use linkward_host::subject::Subject;
use linkward_host::swap::{ModuleSlot, SlotBackend};
use linkward_host::watch::{ModuleWatcher, WatchEvent, WatchOptions, load_module};
use linkward_synth::{Close, Conversation, FHIR_NAME, Frame, Link, pcap_bytes, tls_client_hello};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

const LINKWARD: &str = env!("CARGO_BIN_EXE_linkward");

fn policy_source(version: &str) -> String {
    std::fs::read_to_string(common::fabrikam_policy())
        .unwrap()
        .replace("version = \"1.4.0\"", &format!("version = \"{version}\""))
}

fn compile(source: &str) -> Vec<u8> {
    linkward_policy::compile::compile_source("policy.toml", source, None)
        .unwrap()
        .wasm
}

/// A module whose embedded self-test claims a bypass is fine.
fn liar() -> Vec<u8> {
    compile(&format!(
        "{}\n[[self-test]]\nname = \"claims a bypass is fine\"\nflow = {{ src = \"10.1.5.9\", dst = \"20.37.1.10\", src-port = 50000, dst-port = 443, protocol = \"tcp\", sni = \"{FHIR_NAME}\" }}\nexpect = []\n",
        policy_source("9.9.9")
    ))
}

/// `count` TLS flows from client ports `first_port..`; even ones bypass the endpoint.
fn capture(name: &str, first_port: u16, count: u16) -> CaptureFile {
    let mut frames: Vec<Frame> = Vec::new();
    for i in 0..count {
        let client = SocketAddr::from(([10, 1, 5, 9], first_port + i));
        let server: SocketAddr = if i % 2 == 0 {
            "20.37.1.10:443".parse().unwrap()
        } else {
            "10.1.2.5:443".parse().unwrap()
        };
        frames.extend(
            Conversation::new(Link::Ethernet, client, server)
                .request(&tls_client_hello(Some(FHIR_NAME)).unwrap())
                .reply(&[0x17; 300])
                .close(Close::Fin)
                .start_ns(1_740_992_400_000_000_000 + u64::from(i) * 1_000_000)
                .frames()
                .unwrap(),
        );
    }
    CaptureFile::from_bytes(name, pcap_bytes(Link::Ethernet, &frames).unwrap()).unwrap()
}

fn replace(path: &Path, bytes: &[u8]) {
    let temp = path.with_extension("incoming");
    std::fs::write(&temp, bytes).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

fn next_event(events: &Receiver<String>) -> String {
    events
        .recv_timeout(Duration::from_secs(30))
        .expect("the watcher reports within 30 s")
}

/// (client port, version) of every report, in order.
fn reports(rx: &Receiver<(Subject, Report)>) -> Vec<(u16, String, String)> {
    rx.try_iter()
        .map(|(subject, report)| {
            let port = match &subject {
                Subject::Flow(f) => f.src_port,
                Subject::Dns(d) => d.client_port,
            };
            (
                port,
                report.kind.id().to_string(),
                report.policy_version.to_string(),
            )
        })
        .collect()
}

fn bypasses(first_port: u16, count: u16, version: &str) -> Vec<(u16, String, String)> {
    (0..count)
        .step_by(2)
        .map(|i| (first_port + i, "pe-bypass".to_string(), version.to_string()))
        .collect()
}

/// A long scan through the library: module files replaced between captures are checked
/// by the watcher and swapped in at the next batch; nothing is lost or evaluated twice.
#[test]
fn a_watched_module_is_swapped_between_captures_and_broken_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.wasm");
    let v1 = compile(&policy_source("1.0.0"));
    std::fs::write(&path, &v1).unwrap();
    let engine = PolicyEngine::new(Limits::default()).unwrap();
    let slot = ModuleSlot::new(load_module(&engine, &v1, None).unwrap());
    let (event_tx, events) = channel();
    let watcher = ModuleWatcher::spawn(
        &path,
        &v1,
        engine.clone(),
        slot.clone(),
        WatchOptions {
            interval: Duration::from_millis(50),
            ..WatchOptions::default()
        },
        move |e: &WatchEvent| {
            let _ = event_tx.send(e.to_string());
        },
    )
    .unwrap();

    let mut pipeline = Pipeline::new(&ScanOptions {
        batch_size: 8,
        ..ScanOptions::default()
    })
    .unwrap();
    let mut backend = SlotBackend::new(slot.clone());
    let (tx, rx) = channel();
    let mut sink = ChannelSink(tx);

    let files = [
        capture("one.pcap", 1000, 20),
        capture("two.pcap", 2000, 20),
        capture("three.pcap", 3000, 20),
    ];
    pipeline
        .scan_file(&files[0], 0, &mut backend, &mut sink, &mut |_| {})
        .unwrap();
    pipeline.flush(&mut backend, &mut sink).unwrap();
    assert_eq!(reports(&rx), bypasses(1000, 20, "1.0.0"));

    replace(&path, &compile(&policy_source("2.0.0")));
    let swapped = next_event(&events);
    assert!(
        swapped
            .starts_with("swapped policy fabrikam-ahds 1.0.0 -> 2.0.0 (generation 2, load took ")
            && swapped.ends_with(" ms)"),
        "{swapped}"
    );
    pipeline
        .scan_file(&files[1], 1, &mut backend, &mut sink, &mut |_| {})
        .unwrap();
    pipeline.flush(&mut backend, &mut sink).unwrap();
    assert_eq!(reports(&rx), bypasses(2000, 20, "2.0.0"));
    assert_eq!(backend.switch_times.len(), 1);

    replace(&path, b"definitely not a module");
    let refused = next_event(&events);
    assert_eq!(
        refused,
        format!(
            "refused module {}: not a valid WebAssembly component: {}; keeping 2.0.0",
            path.display(),
            refused
                .split("not a valid WebAssembly component: ")
                .nth(1)
                .and_then(|r| r.strip_suffix("; keeping 2.0.0"))
                .unwrap_or("<missing>")
        )
    );
    replace(&path, &liar());
    let refused = next_event(&events);
    assert_eq!(
        refused,
        format!(
            "refused module {}: self-test `claims a bypass is fine` failed: expected [], got [pe-bypass]; keeping 2.0.0",
            path.display()
        )
    );
    // Asking again (SIGHUP does the same) re-reads the file and refuses it again.
    watcher.request_check();
    assert!(next_event(&events).contains("self-test `claims a bypass is fine` failed"));
    assert_eq!(watcher.refusals(), 3);

    pipeline
        .scan_file(&files[2], 2, &mut backend, &mut sink, &mut |_| {})
        .unwrap();
    pipeline.finish(2, &mut backend, &mut sink).unwrap();
    assert_eq!(reports(&rx), bypasses(3000, 20, "2.0.0"));

    let stats = pipeline.stats();
    assert_eq!(stats.flows_evaluated, 60);
    assert_eq!(stats.flows, 60);
    assert_eq!(stats.findings.get("pe-bypass"), Some(&30));
    assert_eq!(slot.swaps(), 1);
    assert_eq!(slot.current().version(), "2.0.0");

    // Touching the file with the same bytes is not a swap; an explicit check says so.
    replace(&path, &compile(&policy_source("2.0.0")));
    watcher.request_check();
    assert_eq!(
        next_event(&events),
        format!("module {} unchanged; keeping 2.0.0", path.display())
    );
    assert_eq!(slot.swaps(), 1);
}

/// A module installed while records wait in a partial batch evaluates that whole batch:
/// each batch is evaluated by exactly one module.
#[test]
fn the_slot_switches_at_batch_boundaries() {
    let engine = PolicyEngine::new(Limits::default()).unwrap();
    let v1 = load_module(&engine, &compile(&policy_source("1.0.0")), None).unwrap();
    let v2 = load_module(&engine, &compile(&policy_source("2.0.0")), None).unwrap();
    let slot = ModuleSlot::new(v1);
    let mut pipeline = Pipeline::new(&ScanOptions {
        batch_size: 10,
        ..ScanOptions::default()
    })
    .unwrap();
    let mut backend = SlotBackend::new(slot.clone());
    let (tx, rx) = channel();
    let mut sink = ChannelSink(tx);
    // 14 flows: one full batch (evaluated by 1.0.0) and 4 pending.
    let first = capture("a.pcap", 5000, 14);
    pipeline
        .scan_file(&first, 0, &mut backend, &mut sink, &mut |_| {})
        .unwrap();
    assert_eq!(pipeline.pending(), 4);
    let record = slot.install(v2);
    assert_eq!(record.generation, 2);
    assert_eq!(
        (record.old_version.as_str(), record.new_version.as_str()),
        ("1.0.0", "2.0.0")
    );
    pipeline.finish(0, &mut backend, &mut sink).unwrap();
    let mut expected = bypasses(5000, 10, "1.0.0");
    expected.extend(bypasses(5010, 4, "2.0.0"));
    assert_eq!(reports(&rx), expected);
    assert_eq!(pipeline.stats().flows_evaluated, 14);
    assert_eq!(backend.generation(), 2);
    assert_eq!(backend.switch_times.len(), 1);
}

/// With a trusted key, the watcher refuses unsigned modules and takes signed ones.
#[test]
fn a_watcher_with_a_trusted_key_takes_only_signed_modules() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.wasm");
    let key = SecretKey::from_seed([42; 32]);
    let v1 = signing::sign(&compile(&policy_source("1.0.0")), &key).unwrap();
    std::fs::write(&path, &v1).unwrap();
    let engine = PolicyEngine::new(Limits::default()).unwrap();
    let trusted = key.public_key();
    let slot = ModuleSlot::new(load_module(&engine, &v1, Some(&trusted)).unwrap());
    let (event_tx, events) = channel();
    let _watcher = ModuleWatcher::spawn(
        &path,
        &v1,
        engine,
        slot.clone(),
        WatchOptions {
            interval: Duration::from_millis(50),
            trusted_key: Some(trusted),
            reload_on_sighup: false,
        },
        move |e: &WatchEvent| {
            let _ = event_tx.send(e.to_string());
        },
    )
    .unwrap();
    let v2 = compile(&policy_source("2.0.0"));
    replace(&path, &v2);
    assert_eq!(
        next_event(&events),
        format!(
            "refused module {}: signature check failed: the module is not signed: it has no `linkward-signature` section; keeping 1.0.0",
            path.display()
        )
    );
    let other = SecretKey::from_seed([43; 32]);
    replace(&path, &signing::sign(&v2, &other).unwrap());
    assert_eq!(
        next_event(&events),
        format!(
            "refused module {}: signature check failed: the module is signed by key {}, not by the trusted key {}; keeping 1.0.0",
            path.display(),
            other.public_key(),
            key.public_key()
        )
    );
    replace(&path, &signing::sign(&v2, &key).unwrap());
    assert!(next_event(&events).starts_with("swapped policy fabrikam-ahds 1.0.0 -> 2.0.0"));
    assert_eq!(slot.current().version(), "2.0.0");
}

fn linkward(args: &[&str]) -> Output {
    Command::new(LINKWARD).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// keygen → sign → inspect → scan --trust-key, and every way to be refused.
#[test]
fn signed_modules_through_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| -> PathBuf { dir.path().join(name) };
    let s = |path: &Path| path.to_str().unwrap().to_string();
    let key = p("signing.key");
    let out = linkward(&["keygen", "-o", &s(&key)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let public = text(&out.stdout).trim().to_string();
    assert_eq!(public.len(), 64);
    let secret = SecretKey::from_hex(&std::fs::read_to_string(&key).unwrap()).unwrap();
    assert_eq!(secret.public_key().to_hex(), public);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A second keygen does not overwrite the key.
    assert_eq!(linkward(&["keygen", "-o", &s(&key)]).status.code(), Some(2));

    let module = p("policy.wasm");
    std::fs::write(&module, compile(&policy_source("1.0.0"))).unwrap();
    let signed = p("signed.wasm");
    let out = linkward(&["sign", "--key", &s(&key), &s(&module), "-o", &s(&signed)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!(
            "signed {} (policy fabrikam-ahds 1.0.0) with key {public}\n",
            signed.display()
        )
    );

    let out = linkward(&["inspect", &s(&signed)]);
    assert!(text(&out.stdout).contains(&format!("\nsignature       valid for key {public}\n")));
    let out = linkward(&["inspect", "--trust-key", &public, &s(&signed)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!(
        "\nsignature       valid for key {public} (trusted)\n"
    )));
    let out = linkward(&["inspect", &s(&module)]);
    assert!(text(&out.stdout).contains("\nsignature       none\n"));
    let out = linkward(&["inspect", "--json", &s(&signed)]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["signature"]["status"], "valid");
    assert_eq!(json["signature"]["key"], public.as_str());

    // The trusted key may also be given as a file.
    let key_file = p("trusted.pub");
    std::fs::write(&key_file, format!("{public}\n")).unwrap();
    let capture_path = p("one.pcap");
    let frames = Conversation::new(
        Link::Ethernet,
        "10.1.5.9:40000".parse().unwrap(),
        "20.37.1.10:443".parse().unwrap(),
    )
    .request(&tls_client_hello(Some(FHIR_NAME)).unwrap())
    .frames()
    .unwrap();
    std::fs::write(&capture_path, pcap_bytes(Link::Ethernet, &frames).unwrap()).unwrap();
    let scan = common::scan(&signed, &[&capture_path], &["--trust-key", &s(&key_file)]);
    assert_eq!(scan.code, 0, "{}", scan.stderr);
    assert_eq!(scan.findings.len(), 1);
    assert_eq!(scan.findings[0].kind, "pe-bypass");
    assert_eq!(scan.findings[0].policy_version, "1.0.0");

    // Unsigned, signed by another key, changed after signing: all refused.
    let other = p("other.key");
    let other_public = text(&linkward(&["keygen", "-o", &s(&other)]).stdout)
        .trim()
        .to_string();
    let scan_refusal = |module: &Path, trusted: &str| -> String {
        let out = linkward(&[
            "scan",
            "--policy",
            &s(module),
            "--trust-key",
            trusted,
            "--quiet",
            &s(&capture_path),
        ]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    assert_eq!(
        scan_refusal(&module, &public),
        format!(
            "linkward: error: module {} refused: signature check failed: the module is not signed: it has no `linkward-signature` section\n",
            module.display()
        )
    );
    assert_eq!(
        scan_refusal(&signed, &other_public),
        format!(
            "linkward: error: module {} refused: signature check failed: the module is signed by key {public}, not by the trusted key {other_public}\n",
            signed.display()
        )
    );
    // Another module's bytes under this module's signature: changed after signing.
    let bytes = std::fs::read(&signed).unwrap();
    let body = signing::unsigned_body(&bytes).unwrap().len();
    let mut changed = compile(&policy_source("6.6.6"));
    changed.extend_from_slice(&bytes[body..]);
    let tampered = p("tampered.wasm");
    std::fs::write(&tampered, &changed).unwrap();
    assert_eq!(
        scan_refusal(&tampered, &public),
        format!(
            "linkward: error: module {} refused: signature check failed: the signature by key {public} does not match the module's bytes (the module was changed after it was signed)\n",
            tampered.display()
        )
    );
    let out = linkward(&["inspect", &s(&tampered)]);
    assert!(
        text(&out.stdout).contains(&format!(
            "\nsignature       INVALID: made by key {public}, but the module changed after signing\n"
        )),
        "{}",
        text(&out.stdout)
    );
    let out = linkward(&["inspect", "--trust-key", &public, &s(&tampered)]);
    assert_eq!(out.status.code(), Some(2));
    // Policy source cannot be trusted.
    let out = linkward(&[
        "scan",
        "--policy",
        common::fabrikam_policy().to_str().unwrap(),
        "--trust-key",
        &public,
        &s(&capture_path),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains("is policy source; a trusted key needs a signed compiled module")
    );
    // Re-signing in place with another key replaces the signature.
    let out = linkward(&["sign", "--key", &s(&other), &s(&signed)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = linkward(&["inspect", "--trust-key", &other_public, &s(&signed)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
