//! `linkward live` on a real interface, with modules swapped while traffic flows.
//!
//! The test makes its own network namespace holding one end of a veth pair; the other
//! end stays in this namespace, where `linkward live` captures. Traffic built with
//! `linkward_synth` is replayed into the namespace's end (tcpreplay), or, where tcpreplay
//! is missing, injected on the captured end through libpcap. Phases:
//!
//! 1. module 1.0.0: a few flows and a DNS answer; findings must carry 1.0.0;
//! 2. a stream of flows, with module 2.0.0 renamed into place while it flows (chunks
//!    keep coming until the swap is logged): findings switch from 1.0.0 to 2.0.0 once
//!    and never back;
//! 3. module 2.0.0 confirmed: findings carry 2.0.0;
//! 4. a garbage file and a module whose self-test fails are refused, with 2.0.0 kept:
//!    findings still carry 2.0.0.
//!
//! Throughout, every finding of a phase must equal what `linkward scan` finds in the
//! same capture; at the end the metrics endpoint is scraped and parsed, SIGTERM stops
//! the process, and the final statistics must count exactly the flows and packets sent.
//!
//! Making namespaces needs root; where the system refuses, the test says SKIP and
//! passes.

mod common;

use common::Finding;
use linkward_synth::{
    Close, Conversation, FHIR_NAME, Frame, Link, dns_exchange, tls_client_hello, write_pcap,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

const LINKWARD: &str = env!("CARGO_BIN_EXE_linkward");
const PUBLIC_FHIR: &str = "20.37.1.10:443";
const PRIVATE_FHIR: &str = "10.1.2.5:443";

/// Deletes the namespace (and with it both ends of the veth pair) however the test ends.
struct Namespace(String);

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Kills `linkward live` if the test fails before stopping it properly.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A TLS connection naming the FHIR service, from `client` to `server`.
fn tls_flow(client: SocketAddr, server: &str) -> Vec<Frame> {
    Conversation::new(Link::Ethernet, client, sa(server))
        .request(&tls_client_hello(Some(FHIR_NAME)).unwrap())
        .reply(&[0x17; 600])
        .close(Close::Reset)
        .frames()
        .unwrap()
}

/// `count` flows from client ports `first_port..`: every third one reaches the public
/// address (a private-endpoint bypass), the others the private endpoint.
fn phase_frames(first_port: u16, count: u16) -> Vec<Frame> {
    let mut frames = Vec::new();
    for i in 0..count {
        let client = SocketAddr::from(([10, 1, 5, 9], first_port + i));
        let server = if i % 3 == 0 {
            PUBLIC_FHIR
        } else {
            PRIVATE_FHIR
        };
        frames.extend(tls_flow(client, server));
    }
    frames
}

/// A traffic generator: tcpreplay inside the namespace, or libpcap on the captured end.
enum Sender {
    Tcpreplay {
        namespace: String,
        interface: String,
    },
    Pcap {
        interface: String,
    },
}

impl Sender {
    /// Sends the capture at `path` (holding `frames`), at most `pps` packets a second
    /// (0: as fast as possible). Returns when everything is sent.
    fn send(&self, path: &Path, frames: &[Frame], pps: u32) -> Result<(), String> {
        match self {
            Sender::Tcpreplay {
                namespace,
                interface,
            } => {
                let rate = if pps == 0 {
                    "--topspeed".to_string()
                } else {
                    format!("--pps={pps}")
                };
                run(
                    "ip",
                    &[
                        "netns",
                        "exec",
                        namespace,
                        "tcpreplay",
                        "-q",
                        &rate,
                        "-i",
                        interface,
                        path.to_str().unwrap(),
                    ],
                )
            }
            Sender::Pcap { interface } => {
                let mut cap = pcap::Capture::from_device(interface.as_str())
                    .and_then(|c| c.open())
                    .map_err(|e| format!("cannot open {interface} to send: {e}"))?;
                for f in frames {
                    cap.sendpacket(f.data.as_slice())
                        .map_err(|e| format!("cannot send on {interface}: {e}"))?;
                    if pps > 0 {
                        std::thread::sleep(Duration::from_secs(1) / pps);
                    }
                }
                Ok(())
            }
        }
    }
}

/// Lines of `linkward live`'s standard error, as they come.
struct Stderr {
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Stderr {
    /// Waits for a line containing `needle`; panics with everything seen on timeout.
    fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => panic!(
                    "no line containing {needle:?} on linkward's stderr within {timeout:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// A line containing `needle` seen so far, without waiting.
    fn poll_for(&mut self, needle: &str) -> Option<String> {
        self.seen.extend(self.lines.try_iter());
        self.seen.iter().find(|l| l.contains(needle)).cloned()
    }

    fn drain(&mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }
}

/// Scrapes the metrics endpoint and parses every line: `# HELP`/`# TYPE` comments or
/// `name{labels} value` samples (labels kept in the key).
fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let mut s = TcpStream::connect(addr).expect("connect to the metrics endpoint");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let mut samples = BTreeMap::new();
    for line in body.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(
                comment.starts_with("HELP linkward_") || comment.starts_with("TYPE linkward_"),
                "bad comment line: {line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in: {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels in: {line}");
            for pair in series[name_end + 1..series.len() - 1].split("\",") {
                let (label, quoted) = pair.split_once('=').expect("label=value");
                assert!(
                    !label.is_empty() && quoted.starts_with('"'),
                    "bad label in: {line}"
                );
            }
        }
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in: {line}"));
        samples.insert(series.to_string(), value);
    }
    samples
}

/// Waits until the endpoint reports at least `flows` flow evaluations.
fn wait_for_evaluations(
    addr: SocketAddr,
    flows: u64,
    stderr: &mut Stderr,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = scrape(addr);
        let done = m
            .get("linkward_evaluations_total{kind=\"flow\"}")
            .copied()
            .unwrap_or(0.0);
        if done >= flows as f64 {
            return m;
        }
        if Instant::now() > deadline {
            panic!(
                "{done} flows evaluated, expected {flows}; stderr:\n{}",
                stderr.drain(Duration::from_millis(100))
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The alerts written so far, in order.
fn alerts(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("EVE line"))
        .filter(|v| v["event_type"] == "alert")
        .collect()
}

/// Findings of alerts whose client port is in `ports`, sorted, versions set to `v`
/// (the version is checked separately).
fn phase_findings(all: &[Value], ports: std::ops::Range<u64>) -> Vec<Finding> {
    let mut f: Vec<Finding> = all
        .iter()
        .map(Finding::from_alert)
        .filter(|f| ports.contains(&f.src_port))
        .collect();
    f.sort();
    f
}

/// What `linkward scan` finds in the same capture, with the version set to `version`.
fn scan_oracle(policy: &Path, capture: &Path, version: &str) -> Vec<Finding> {
    let scan = common::scan(policy, &[capture], &[]);
    assert_eq!(scan.code, 0, "{}", scan.stderr);
    scan.findings
        .into_iter()
        .map(|f| f.version(version))
        .collect()
}

fn compile(source: &str, name: &str, dir: &Path) -> PathBuf {
    let toml = dir.join(format!("{name}.toml"));
    std::fs::write(&toml, source).unwrap();
    let wasm = dir.join(format!("{name}.wasm"));
    let out = Command::new(LINKWARD)
        .arg("compile")
        .arg(&toml)
        .arg("-o")
        .arg(&wasm)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wasm
}

/// Renames `from` (copied first) over `to`, the way a deployment replaces a module.
fn replace(from: &Path, to: &Path) {
    let temp = to.with_extension("incoming");
    std::fs::copy(from, &temp).unwrap();
    std::fs::rename(&temp, to).unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

#[test]
fn live_capture_swaps_modules_without_losing_or_repeating_flows() {
    let pid = std::process::id();
    let ns_name = format!("lw-test-{pid}");
    if let Err(e) = run("ip", &["netns", "add", &ns_name]) {
        eprintln!(
            "SKIP live_netns: this system does not let the test make a network namespace ({e})"
        );
        return;
    }
    let namespace = Namespace(ns_name.clone());
    let captured = format!("lwa{pid}");
    let peer = format!("lwb{pid}");
    run(
        "ip",
        &[
            "link", "add", &captured, "type", "veth", "peer", "name", &peer, "netns", &ns_name,
        ],
    )
    .unwrap();
    // No IPv6 autoconfiguration chatter on either end.
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv6/conf/{captured}/disable_ipv6"),
        "1",
    );
    let _ = run(
        "ip",
        &[
            "netns",
            "exec",
            &ns_name,
            "sh",
            "-c",
            &format!("echo 1 > /proc/sys/net/ipv6/conf/{peer}/disable_ipv6"),
        ],
    );
    run("ip", &["link", "set", &captured, "up"]).unwrap();
    run(
        "ip",
        &["netns", "exec", &ns_name, "ip", "link", "set", &peer, "up"],
    )
    .unwrap();
    // LINKWARD_TEST_INJECT=pcap tries the fallback where tcpreplay is installed.
    let force_pcap = std::env::var("LINKWARD_TEST_INJECT").is_ok_and(|v| v == "pcap");
    let sender = if !force_pcap
        && run("ip", &["netns", "exec", &ns_name, "tcpreplay", "--version"]).is_ok()
    {
        Sender::Tcpreplay {
            namespace: ns_name.clone(),
            interface: peer.clone(),
        }
    } else {
        eprintln!("injecting on {captured} through libpcap (tcpreplay not used)");
        Sender::Pcap {
            interface: captured.clone(),
        }
    };

    let dir = tempfile::tempdir().unwrap();
    let source = std::fs::read_to_string(common::fabrikam_policy()).unwrap();
    let v1 = compile(
        &source.replace("version = \"1.4.0\"", "version = \"1.0.0\""),
        "v1",
        dir.path(),
    );
    let v2 = compile(
        &source.replace("version = \"1.4.0\"", "version = \"2.0.0\""),
        "v2",
        dir.path(),
    );
    let liar = compile(
        &format!(
            "{}\n[[self-test]]\nname = \"claims a bypass is fine\"\nflow = {{ src = \"10.1.5.9\", dst = \"20.37.1.10\", src-port = 50000, dst-port = 443, protocol = \"tcp\", sni = \"{FHIR_NAME}\" }}\nexpect = []\n",
            source.replace("version = \"1.4.0\"", "version = \"3.0.0\"")
        ),
        "liar",
        dir.path(),
    );
    let garbage = dir.path().join("garbage.bin");
    std::fs::write(&garbage, b"\0asm\x0d\x00\x01\x00this is not a component").unwrap();
    let policy = dir.path().join("policy.wasm");
    std::fs::copy(&v1, &policy).unwrap();

    // The captures of each phase, and what a scan of each finds.
    let mut phase1 = phase_frames(41000, 6);
    phase1.extend(
        dns_exchange(
            Link::Ethernet,
            sa("10.1.5.77:53000"),
            sa("10.1.0.4:53"),
            FHIR_NAME,
            &[],
            &["20.37.1.10".parse().unwrap()],
            300,
            0,
        )
        .unwrap(),
    );
    let phase3 = phase_frames(43000, 6);
    let phase4 = phase_frames(44000, 6);
    let mut captures = Vec::new();
    for (name, frames) in [
        ("phase1", &phase1),
        ("phase3", &phase3),
        ("phase4", &phase4),
    ] {
        let path = dir.path().join(format!("{name}.pcap"));
        write_pcap(&path, Link::Ethernet, frames).unwrap();
        captures.push(path);
    }
    let mut flows_sent = 7 + 6 + 6;
    let mut packets_sent = (phase1.len() + phase3.len() + phase4.len()) as u64;

    let port = free_port();
    let metrics: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port));
    let out = dir.path().join("findings.json");
    let mut child = Command::new(LINKWARD)
        .arg("live")
        .arg("--policy")
        .arg(&policy)
        .args([
            "--interface",
            &captured,
            "--bpf",
            "ip",
            "--promisc",
            "--max-delay",
            "100ms",
        ])
        .args(["--metrics", &metrics.to_string(), "-o"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start linkward live");
    let stderr_pipe = child.stderr.take().unwrap();
    let mut live = Running(child);
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stderr = Stderr {
        lines: rx,
        seen: Vec::new(),
    };
    stderr.wait_for("linkward: capturing on", Duration::from_secs(30));
    stderr.wait_for("metrics on http://", Duration::from_secs(5));

    // Phase 1: module 1.0.0.
    sender.send(&captures[0], &phase1, 0).unwrap();
    let m = wait_for_evaluations(metrics, 7, &mut stderr);
    assert_eq!(m["linkward_evaluations_total{kind=\"dns\"}"], 1.0);
    let found = phase_findings(&alerts(&out), 0..65536);
    assert_eq!(found, scan_oracle(&v1, &captures[0], "1.0.0"));
    let kinds: Vec<&str> = found.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, ["dns-public-resolution", "pe-bypass", "pe-bypass"]);

    // Phase 2: a stream of flows in chunks of 30 (10 bypasses each), paced; module
    // 2.0.0 is renamed into place after the first chunk was evaluated, and chunks keep
    // coming until the swap is logged, then one more.
    let mut chunk_paths = Vec::new();
    let mut swapped = None;
    for chunk in 0..60u16 {
        let frames = phase_frames(42000 + chunk * 30, 30);
        let path = dir.path().join(format!("stream{chunk}.pcap"));
        write_pcap(&path, Link::Ethernet, &frames).unwrap();
        sender.send(&path, &frames, 1000).unwrap();
        chunk_paths.push(path);
        flows_sent += 30;
        packets_sent += frames.len() as u64;
        if chunk == 0 {
            wait_for_evaluations(metrics, 7 + 30, &mut stderr);
            replace(&v2, &policy);
        } else if swapped.is_some() {
            break;
        } else {
            swapped = stderr.poll_for("swapped policy");
        }
    }
    let line = swapped.expect("the module was swapped while the stream was sent");
    assert!(
        line.contains("swapped policy fabrikam-ahds 1.0.0 -> 2.0.0 (generation 2, load took "),
        "{line}"
    );
    let chunks = chunk_paths.len() as u64;
    wait_for_evaluations(metrics, 7 + 30 * chunks, &mut stderr);
    let switched = stderr.wait_for(
        "now evaluating with policy fabrikam-ahds 2.0.0",
        Duration::from_secs(10),
    );
    assert!(
        switched.contains("the switch paused evaluation for "),
        "{switched}"
    );
    let all = alerts(&out);
    let stream_end = 42000 + 30 * chunks;
    let stream_alerts: Vec<&Value> = all
        .iter()
        .filter(|a| (42000..stream_end).contains(&a["src_port"].as_u64().unwrap_or(0)))
        .collect();
    let versions: Vec<&str> = stream_alerts
        .iter()
        .map(|a| a["linkward"]["policy_version"].as_str().unwrap())
        .collect();
    let first_new = versions
        .iter()
        .position(|v| *v == "2.0.0")
        .unwrap_or(versions.len());
    assert!(
        versions[..first_new].iter().all(|v| *v == "1.0.0")
            && versions[first_new..].iter().all(|v| *v == "2.0.0"),
        "versions must switch once, between batches: {versions:?}"
    );
    // The first chunk was evaluated before the swap, the last one sent after it.
    assert!(first_new >= 10, "{versions:?}");
    assert!(versions.len() - first_new >= 10, "{versions:?}");
    let mut found: Vec<Finding> = stream_alerts
        .iter()
        .map(|a| Finding::from_alert(a).version("any"))
        .collect();
    found.sort();
    let paths: Vec<&Path> = chunk_paths.iter().map(PathBuf::as_path).collect();
    let oracle = common::scan(&v1, &paths, &[]);
    let expected: Vec<Finding> = oracle
        .findings
        .into_iter()
        .map(|f| f.version("any"))
        .collect();
    assert_eq!(found, expected);
    assert_eq!(found.len() as u64, 10 * chunks);

    // Phase 3: 2.0.0 everywhere.
    sender.send(&captures[1], &phase3, 0).unwrap();
    wait_for_evaluations(metrics, 7 + 30 * chunks + 6, &mut stderr);
    assert_eq!(
        phase_findings(&alerts(&out), 43000..43100),
        scan_oracle(&v2, &captures[1], "2.0.0")
    );

    // Phase 4: broken modules are refused; 2.0.0 keeps working.
    replace(&garbage, &policy);
    let refused = stderr.wait_for("refused module", Duration::from_secs(20));
    assert!(
        refused.contains(&format!(
            "refused module {}: not a valid WebAssembly component",
            policy.display()
        )) && refused.ends_with("; keeping 2.0.0"),
        "{refused}"
    );
    replace(&liar, &policy);
    let refused = stderr.wait_for("got [pe-bypass]", Duration::from_secs(20));
    assert!(
        refused.contains("self-test `claims a bypass is fine` failed: expected [], got [pe-bypass]; keeping 2.0.0"),
        "{refused}"
    );
    sender.send(&captures[2], &phase4, 0).unwrap();
    let m = wait_for_evaluations(metrics, flows_sent, &mut stderr);
    assert_eq!(
        phase_findings(&alerts(&out), 44000..44100),
        scan_oracle(&v2, &captures[2], "2.0.0")
    );

    // The metrics agree with the output.
    let all = alerts(&out);
    let bypasses = all
        .iter()
        .filter(|a| a["linkward"]["finding"] == "pe-bypass")
        .count();
    assert_eq!(
        m["linkward_evaluations_total{kind=\"flow\"}"],
        flows_sent as f64
    );
    assert_eq!(m["linkward_evaluations_total{kind=\"dns\"}"], 1.0);
    assert_eq!(
        m["linkward_findings_total{kind=\"pe-bypass\"}"],
        bypasses as f64
    );
    assert_eq!(
        m["linkward_findings_total{kind=\"dns-public-resolution\"}"],
        1.0
    );
    assert_eq!(m["linkward_module_swaps_total"], 1.0);
    assert_eq!(m["linkward_module_refusals_total"], 2.0);
    assert_eq!(m["linkward_module_errors_total"], 0.0);
    assert_eq!(
        m["linkward_module_info{policy=\"fabrikam-ahds\",version=\"2.0.0\"}"],
        1.0
    );
    assert_eq!(m["linkward_flows_total"], flows_sent as f64);
    assert_eq!(m["linkward_packets_total"], packets_sent as f64);
    assert_eq!(m["linkward_packets_dropped_total{where=\"kernel\"}"], 0.0);
    assert!(m["linkward_batch_seconds_count"] >= 5.0);
    assert_eq!(
        m["linkward_batch_seconds_bucket{le=\"+Inf\"}"],
        m["linkward_batch_seconds_count"]
    );

    // SIGHUP: log rotation moved the output away; it is reopened, and the module file
    // (holding the running module again) is looked at without a swap.
    let pid = live.0.id().to_string();
    replace(&v2, &policy);
    let rotated = dir.path().join("findings.json.1");
    std::fs::rename(&out, &rotated).unwrap();
    run("kill", &["-HUP", &pid]).unwrap();
    stderr.wait_for("linkward: reopened", Duration::from_secs(10));
    stderr.wait_for(
        &format!("module {} unchanged; keeping 2.0.0", policy.display()),
        Duration::from_secs(10),
    );
    assert_eq!(alerts(&rotated).len(), all.len());

    // SIGTERM: stop, evaluate what is pending, write the statistics.
    run("kill", &["-TERM", &pid]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = live.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "linkward live did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = stderr.drain(Duration::from_secs(2));
    assert!(status.success(), "{status:?}\n{text}");
    assert!(text.contains("\nstatistics\n"), "{text}");
    assert!(
        text.contains("  module swaps                  1\n"),
        "{text}"
    );
    assert!(
        text.contains("  capture drops                 0  (kernel 0, interface 0)"),
        "{text}"
    );
    // After the rotation, the new file holds only the final statistics.
    let reopened = std::fs::read_to_string(&out).unwrap();
    assert_eq!(reopened.lines().count(), 1, "{reopened}");
    let last: Value = serde_json::from_str(reopened.trim()).unwrap();
    assert_eq!(last["event_type"], "stats");
    let stats = &last["linkward"]["stats"];
    assert_eq!(stats["flows_evaluated"], flows_sent);
    assert_eq!(stats["dns_evaluated"], 1);
    assert_eq!(stats["flows"], flows_sent);
    assert_eq!(stats["module_swaps"], 1);
    assert_eq!(stats["packets"]["packets_read"], packets_sent);
    assert_eq!(stats["packets"]["decoded"], packets_sent);
    assert_eq!(last["linkward"]["policy_version"], "2.0.0");
    assert_eq!(last["linkward"]["capture"]["dropped_kernel"], 0);
    drop(namespace);
}
