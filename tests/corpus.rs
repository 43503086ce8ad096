//! Real captures through the built `linkward` binary, with tshark as the oracle.
//!
//! The captures under `tests/data/pcaps/` come from zeek, tcpdump and pcap-parser (see
//! the NOTICE there). Nobody on this project wrote them, which is the point: they show
//! what real tools produced and what real fuzzers found.
//!
//! Two properties are checked:
//!
//! - **Robustness**, for every capture (well-formed or malformed) and a few synthesized
//!   edge cases: `linkward scan` and `linkward records` finish within a hard timeout,
//!   exit with 0 or 2 only, never panic, name the file when they report an input error,
//!   and account for every packet read (read = decoded + filtered + skipped + malformed).
//! - **Agreement with tshark**, for the well-formed captures: the TLS SNIs, DNS answers,
//!   CNAME chains, HTTP Hosts and TCP/UDP conversations linkward rebuilds are the ones
//!   tshark dissects. Where the two legitimately differ (a link type or tunnel linkward
//!   does not decode, a name only visible after a proxy handshake) the difference is
//!   listed in [`ALLOWED`] with its reason; everywhere else the comparison is exact.
//!
//! tshark is not a build dependency: when it is missing the comparison prints why it is
//! skipped and passes, while the robustness checks still run.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A run taking longer than this is a hang: every capture here is at most a few hundred
/// packets, which linkward reads in milliseconds.
const HARD_TIMEOUT: Duration = Duration::from_secs(30);

/// Inputs that must end with an input error (exit 2), by file name. Every other capture
/// must be read to the end with exit 0: malformed packets are counted, not fatal.
const EXPECTED_INPUT_ERRORS: &[&str] = &[
    // 136 bytes that are neither pcap nor pcapng.
    "pcap-parser__err-eof.bin",
    // Synthesized below.
    "empty.pcap",
    "not-a-capture.txt",
];

/// A difference between tshark's view and linkward's that is expected, with why.
struct Allowed {
    file: &'static str,
    check: Check,
    /// Items tshark reports that linkward does not.
    only_tshark: &'static [&'static str],
    /// Items linkward reports that tshark does not.
    only_linkward: &'static [&'static str],
    /// Printed when the allowance no longer matches.
    reason: &'static str,
}

/// Every allowed difference. An entry that no longer matches (because linkward learned
/// to decode something) fails the test too, so the table cannot go stale.
const ALLOWED: &[Allowed] = &[
    Allowed {
        file: "zeek__nflog-http.pcap",
        check: Check::TcpFlows,
        only_tshark: &["10.0.2.15:49762 <-> 93.184.216.34:80"],
        only_linkward: &[],
        reason: "link type NFLOG (239) is not decoded by linkward; its packets count as skipped",
    },
    Allowed {
        file: "zeek__nflog-http.pcap",
        check: Check::HttpConnections,
        only_tshark: &["10.0.2.15:49762 <-> 93.184.216.34:80 www.example.net"],
        only_linkward: &[],
        reason: "link type NFLOG (239) is not decoded by linkward",
    },
    Allowed {
        file: "zeek__vxlan-encapsulated-http.pcap",
        check: Check::TcpFlows,
        only_tshark: &["54.86.237.188:80 <-> 172.16.11.201:40354"],
        only_linkward: &[],
        reason: "linkward does not follow VXLAN; tshark counts the inner TCP conversation",
    },
    Allowed {
        file: "zeek__vxlan-encapsulated-http.pcap",
        check: Check::HttpConnections,
        only_tshark: &["54.86.237.188:80 <-> 172.16.11.201:40354 eu.httpbin.org"],
        only_linkward: &[],
        reason: "linkward does not follow VXLAN; the request is inside the tunnel",
    },
    Allowed {
        file: "zeek__socks-with-ssl.pcap",
        check: Check::TlsSni,
        only_tshark: &["www.google.com"],
        only_linkward: &[],
        reason: "the ClientHello follows a SOCKS handshake; linkward identifies a flow by its \
                 first client payload only, which here is the SOCKS request",
    },
];

/// The comparisons made for each well-formed capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    TlsSni,
    DnsAnswered,
    DnsResponses,
    DnsAddressAnswers,
    DnsCnames,
    HttpHosts,
    HttpConnections,
    TcpFlows,
    UdpFlows,
}

/// How the two sets of a check must relate.
#[derive(Clone, Copy)]
enum Relation {
    /// The same items on both sides.
    Equal,
    /// Every item linkward reports, tshark reports too.
    LinkwardWithin,
    /// Every item tshark reports, linkward reports too.
    TsharkWithin,
}

fn pcaps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pcaps")
}

fn policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fabrikam.toml")
}

fn captures(subdir: &str) -> Vec<PathBuf> {
    let dir = pcaps_dir().join(subdir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no captures in {}", dir.display());
    files
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What a finished child process left behind.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Gives each run its own output files in the scratch directory.
static RUN_ID: AtomicUsize = AtomicUsize::new(0);

/// Runs `command` with its output in files (so a large output cannot block it on a full
/// pipe while we wait), killing it after [`HARD_TIMEOUT`].
fn run(mut command: Command, scratch: &Path) -> Result<Finished, String> {
    let id = RUN_ID.fetch_add(1, Ordering::Relaxed);
    let out_path = scratch.join(format!("run-{id}.stdout"));
    let err_path = scratch.join(format!("run-{id}.stderr"));
    let describe = format!("{command:?}");
    let out = std::fs::File::create(&out_path).map_err(|e| format!("{describe}: {e}"))?;
    let err = std::fs::File::create(&err_path).map_err(|e| format!("{describe}: {e}"))?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("{describe}: cannot start: {e}"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= HARD_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "hang: {describe} was still running after {} s and was killed",
                    HARD_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("{describe}: cannot wait: {e}")),
        }
    };
    let read = |path: &Path| {
        std::fs::read(path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .map_err(|e| format!("{describe}: cannot read {}: {e}", path.display()))
    };
    Ok(Finished {
        status,
        stdout: read(&out_path)?,
        stderr: read(&err_path)?,
    })
}

/// Applies `f` to every item on a few threads, keeping the order of `items`.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let next = AtomicUsize::new(0);
    let done = Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else { break };
                    let result = f(item);
                    done.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((index, result));
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|p| p.into_inner());
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

fn linkward() -> Command {
    Command::new(env!("CARGO_BIN_EXE_linkward"))
}

fn scratch_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a scratch directory can be created")
}

/// The problems found with one run of linkward on one input.
fn check_exit(
    what: &str,
    input: &Path,
    finished: &Finished,
    failures: &mut Vec<String>,
) -> Option<i32> {
    let name = input.display().to_string();
    if finished.stderr.contains("panicked") {
        failures.push(format!("{name}: `{what}` panicked:\n{}", finished.stderr));
    }
    let code = finished.status.code();
    let expected = if EXPECTED_INPUT_ERRORS.contains(&file_name(input).as_str()) {
        2
    } else {
        0
    };
    if code != Some(expected) {
        failures.push(format!(
            "{name}: `{what}` exited with {:?}, expected {expected}; stderr:\n{}",
            finished.status, finished.stderr
        ));
    }
    if code == Some(2) && !finished.stderr.contains(&name) {
        failures.push(format!(
            "{name}: `{what}` exited with 2 but its stderr does not name the file:\n{}",
            finished.stderr
        ));
    }
    code
}

/// The packet counters of an EVE stats line, and the problems with them.
fn check_stats(input: &Path, eve: &str, failures: &mut Vec<String>) -> Option<Value> {
    let name = input.display().to_string();
    let mut last = None;
    for (n, line) in eve.lines().enumerate() {
        match serde_json::from_str::<Value>(line) {
            Ok(v) => last = Some(v),
            Err(e) => failures.push(format!("{name}: EVE line {} is not JSON: {e}", n + 1)),
        }
    }
    let Some(last) = last else {
        failures.push(format!("{name}: `scan` wrote no EVE output"));
        return None;
    };
    if last["event_type"] != "stats" {
        failures.push(format!(
            "{name}: the last EVE line is not the stats line: {last}"
        ));
        return None;
    }
    let stats = &last["linkward"]["stats"];
    let packets = &stats["packets"];
    // u128, so that absurd counters are reported rather than overflowing.
    let number = |v: &Value| v.as_u64().map(u128::from);
    let sum = |v: &Value| {
        v.as_object().and_then(|m| {
            m.values()
                .map(|x| x.as_u64().map(u128::from))
                .sum::<Option<u128>>()
        })
    };
    match (
        number(&packets["packets_read"]),
        number(&packets["decoded"]),
        number(&packets["filtered"]),
        sum(&packets["skipped"]),
        sum(&packets["malformed"]),
    ) {
        (Some(read), Some(decoded), Some(filtered), Some(skipped), Some(malformed)) => {
            if decoded + filtered + skipped + malformed != read {
                failures.push(format!(
                    "{name}: packets do not add up: read {read} != decoded {decoded} + \
                     filtered {filtered} + skipped {skipped} + malformed {malformed} \
                     ({packets})"
                ));
            }
        }
        _ => failures.push(format!("{name}: incomplete packet counters: {packets}")),
    }
    Some(stats.clone())
}

/// Runs `scan` and `records` on one input and returns every problem found.
fn robustness(input: &Path, scratch: &Path) -> Vec<String> {
    let mut failures = Vec::new();
    let name = input.display().to_string();
    let eve_path = scratch.join(format!(
        "eve-{}-{}.json",
        RUN_ID.fetch_add(1, Ordering::Relaxed),
        file_name(input)
    ));

    let mut scan = linkward();
    scan.arg("scan")
        .arg("--policy")
        .arg(policy())
        .args(["--format", "eve", "-o"])
        .arg(&eve_path)
        .arg("--quiet")
        .arg(input);
    let mut scan_stats = None;
    match run(scan, scratch) {
        Err(e) => failures.push(format!("{name}: {e}")),
        Ok(finished) => {
            let code = check_exit("scan", input, &finished, &mut failures);
            match std::fs::read_to_string(&eve_path) {
                Ok(eve) => scan_stats = check_stats(input, &eve, &mut failures),
                Err(e) => failures.push(format!("{name}: no EVE output from `scan`: {e}")),
            }
            if let Some(stats) = &scan_stats {
                let errors = stats["input_errors"].as_array().map_or(0, Vec::len);
                if (code == Some(2)) != (errors > 0) {
                    failures.push(format!(
                        "{name}: `scan` exited with {code:?} but its stats list {errors} \
                         input errors: {}",
                        stats["input_errors"]
                    ));
                }
            }
        }
    }

    let mut records = linkward();
    records.arg("records").arg(input);
    match run(records, scratch) {
        Err(e) => failures.push(format!("{name}: {e}")),
        Ok(finished) => {
            check_exit("records", input, &finished, &mut failures);
            let mut flows = 0u64;
            let mut answers = 0u64;
            for (n, line) in finished.stdout.lines().enumerate() {
                match serde_json::from_str::<Value>(line) {
                    Ok(v) if v["type"] == "flow" => flows += 1,
                    Ok(v) if v["type"] == "dns" => answers += 1,
                    Ok(v) => failures.push(format!(
                        "{name}: `records` line {} has no known type: {v}",
                        n + 1
                    )),
                    Err(e) => {
                        failures.push(format!("{name}: `records` line {} is not JSON: {e}", n + 1))
                    }
                }
            }
            // `records` prints what `scan` hands to the policy module, so both must
            // have rebuilt the same number of flows and DNS answers.
            if let Some(stats) = &scan_stats {
                let evaluated = (
                    stats["flows_evaluated"].as_u64(),
                    stats["dns_evaluated"].as_u64(),
                );
                if evaluated != (Some(flows), Some(answers)) {
                    failures.push(format!(
                        "{name}: `records` printed {flows} flows and {answers} DNS answers, \
                         `scan` evaluated {:?} flows and {:?} DNS answers",
                        evaluated.0, evaluated.1
                    ));
                }
            }
        }
    }
    failures
}

/// Inputs no corpus provides: an empty file, a pcap with a header and no packet, and a
/// text file.
fn synthesized(dir: &Path) -> Vec<PathBuf> {
    // Little-endian microsecond pcap, version 2.4, snaplen 65535, link type Ethernet.
    let header_only: [u8; 24] = [
        0xd4, 0xc3, 0xb2, 0xa1, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0xff, 0xff, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    ];
    let inputs: [(&str, &[u8]); 3] = [
        ("empty.pcap", b""),
        ("header-only.pcap", &header_only),
        (
            "not-a-capture.txt",
            b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\nnot a capture file\n",
        ),
    ];
    inputs
        .iter()
        .map(|(name, bytes)| {
            let path = dir.join(name);
            std::fs::write(&path, bytes)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            path
        })
        .collect()
}

#[test]
fn every_capture_is_read_without_panic_or_hang_and_every_packet_is_counted() {
    let scratch = scratch_dir();
    let edge_dir = scratch.path().join("synthesized");
    std::fs::create_dir(&edge_dir).expect("scratch subdirectory");
    let mut inputs = captures("wellformed");
    inputs.extend(captures("malformed"));
    inputs.extend(synthesized(&edge_dir));

    let failures: Vec<String> = par_map(&inputs, |input| robustness(input, scratch.path()))
        .into_iter()
        .flatten()
        .collect();
    assert!(
        failures.is_empty(),
        "{} problems over {} inputs:\n{}",
        failures.len(),
        inputs.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// tshark as the oracle

/// tshark's path, or None (with the reason printed) when it cannot run.
fn tshark() -> Option<PathBuf> {
    let path = PathBuf::from("tshark");
    match Command::new(&path)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => Some(path),
        Ok(status) => {
            eprintln!("skipping the tshark comparison: `tshark --version` exited with {status}");
            None
        }
        Err(e) => {
            eprintln!(
                "skipping the tshark comparison: tshark cannot be run ({e}); install it \
                 (Debian/Ubuntu: apt-get install tshark) to compare linkward with it"
            );
            None
        }
    }
}

/// An endpoint as both sides print it: IPv6 in brackets.
fn endpoint(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// A direction-free 5-tuple without the protocol, as linkward keys flows:
/// `lower endpoint <-> higher endpoint`.
fn conversation(a: (IpAddr, u16), b: (IpAddr, u16)) -> String {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    format!(
        "{} <-> {}",
        endpoint(low.0, low.1),
        endpoint(high.0, high.1)
    )
}

/// Parses tshark's `addr:port` (IPv6 unbracketed: the port follows the last colon).
fn parse_tshark_endpoint(text: &str) -> Option<(IpAddr, u16)> {
    let (ip, port) = text.rsplit_once(':')?;
    Some((ip.parse().ok()?, port.parse().ok()?))
}

/// What `linkward records` rebuilt from one capture.
#[derive(Default)]
struct LinkwardView {
    sni: BTreeSet<String>,
    http_hosts: BTreeSet<String>,
    /// `conversation host` for every flow with an HTTP Host.
    http_connections: BTreeSet<String>,
    /// Flow records per conversation, by protocol number.
    flows: BTreeMap<u8, BTreeMap<String, usize>>,
    dns_queries: BTreeSet<String>,
    /// Queries whose record holds an address or a CNAME chain.
    dns_address_queries: BTreeSet<String>,
    /// `query: chain name` for every name of every chain.
    dns_chain_names: BTreeSet<(String, String)>,
}

fn linkward_view(file: &str, stdout: &str) -> Result<LinkwardView, String> {
    let mut view = LinkwardView::default();
    for (n, line) in stdout.lines().enumerate() {
        let v: Value = serde_json::from_str(line)
            .map_err(|e| format!("{file}: `records` line {} is not JSON: {e}", n + 1))?;
        let text = |key: &str| v[key].as_str().map(str::to_ascii_lowercase);
        if v["type"] == "flow" {
            let side = |ip: &str, port: &str| -> Option<(IpAddr, u16)> {
                Some((
                    v[ip].as_str()?.parse().ok()?,
                    u16::try_from(v[port].as_u64()?).ok()?,
                ))
            };
            let (Some(src), Some(dst), Some(proto)) = (
                side("src_ip", "src_port"),
                side("dest_ip", "dest_port"),
                v["proto"].as_u64().and_then(|p| u8::try_from(p).ok()),
            ) else {
                return Err(format!(
                    "{file}: `records` line {} lacks a 5-tuple: {v}",
                    n + 1
                ));
            };
            let conv = conversation(src, dst);
            if let Some(sni) = text("sni") {
                view.sni.insert(sni);
            }
            if let Some(host) = text("http_host") {
                view.http_connections.insert(format!("{conv} {host}"));
                view.http_hosts.insert(host);
            }
            *view
                .flows
                .entry(proto)
                .or_default()
                .entry(conv)
                .or_default() += 1;
        } else if v["type"] == "dns" {
            let Some(query) = text("query") else {
                return Err(format!(
                    "{file}: `records` line {} has no query: {v}",
                    n + 1
                ));
            };
            let chain: Vec<String> = v["dns_chain"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(str::to_ascii_lowercase))
                        .collect()
                })
                .unwrap_or_default();
            let has_addresses = v["addresses"].as_array().is_some_and(|a| !a.is_empty());
            if has_addresses || !chain.is_empty() {
                view.dns_address_queries.insert(query.clone());
            }
            for name in chain {
                view.dns_chain_names.insert((query.clone(), name));
            }
            view.dns_queries.insert(query);
        }
    }
    Ok(view)
}

/// The fields tshark prints per frame, in this order. One pass over a capture prints them
/// all, and the filters of the single-purpose commands (`-Y tls.handshake.type==1`,
/// `-Y "dns.flags.response==1 && dns.count.answers>0"`, `-Y http.request`) are applied
/// here instead, per DNS message rather than per frame: two tshark runs per capture
/// instead of five keep the whole comparison within seconds.
const FIELDS: &[&str] = &[
    "frame.protocols",
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "tcp.stream",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.port",
    "udp.port",
    "tls.handshake.type",
    "tls.handshake.extensions_server_name",
    "dns.flags.response",
    "dns.qry.name",
    "dns.count.queries",
    "dns.count.answers",
    "dns.count.auth_rr",
    "dns.count.add_rr",
    "dns.resp.type",
    "dns.cname",
    "http.request",
    "http.host",
];

/// DNS resource record types that give linkward an address or a chain link.
const RR_A: &str = "1";
const RR_CNAME: &str = "5";
const RR_AAAA: &str = "28";

/// What tshark dissects in one capture.
#[derive(Default)]
struct TsharkView {
    sni: BTreeSet<String>,
    http_hosts: BTreeSet<String>,
    /// `conversation host` with the Host of the first request of each TCP stream.
    http_connections: BTreeSet<String>,
    /// Conversations per protocol number, with how many rows tshark gives each.
    flows: BTreeMap<u8, BTreeMap<String, usize>>,
    /// Query names of port-53 responses.
    dns_responses: BTreeSet<String>,
    /// Query names of port-53 responses with at least one answer.
    dns_answered: BTreeSet<String>,
    /// Query names of port-53 responses whose answers hold an A, AAAA or CNAME record.
    dns_address_answers: BTreeSet<String>,
    /// Query names of responses seen only on the mDNS port.
    mdns_responses: BTreeSet<String>,
    /// Every `dns.cname` of a port-53 response.
    cnames: BTreeSet<String>,
}

/// One tab-separated line of [`FIELDS`]; a repeated field is comma-separated.
struct Frame<'a> {
    fields: Vec<&'a str>,
}

impl<'a> Frame<'a> {
    fn get(&self, field: &str) -> &'a str {
        FIELDS
            .iter()
            .position(|f| *f == field)
            .and_then(|i| self.fields.get(i).copied())
            .unwrap_or("")
    }

    fn list(&self, field: &str) -> Vec<&'a str> {
        let value = self.get(field);
        if value.is_empty() {
            Vec::new()
        } else {
            value.split(',').collect()
        }
    }

    fn numbers(&self, field: &str) -> Vec<usize> {
        self.list(field)
            .iter()
            .map(|n| n.parse().unwrap_or(0))
            .collect()
    }

    /// The innermost IP conversation of the frame: the family of the last `ip`/`ipv6` in
    /// `frame.protocols`, the last address of that family (tshark prints repeated
    /// fields outermost first).
    fn inner_addresses(&self) -> Option<(IpAddr, IpAddr)> {
        let v6 = self
            .get("frame.protocols")
            .split(':')
            .rev()
            .find_map(|p| match p {
                "ip" => Some(false),
                "ipv6" => Some(true),
                _ => None,
            })?;
        let (src, dst) = if v6 {
            ("ipv6.src", "ipv6.dst")
        } else {
            ("ip.src", "ip.dst")
        };
        Some((
            self.list(src).last()?.parse().ok()?,
            self.list(dst).last()?.parse().ok()?,
        ))
    }
}

/// Strips the port from an HTTP Host (`host:port`, `[v6]:port`).
fn host_without_port(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_owned();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name.to_owned()
        }
        _ => host,
    }
}

fn tshark_view(file: &str, fields: &str, conversations: &str) -> Result<TsharkView, String> {
    let mut view = TsharkView::default();
    // tcp.stream -> "conversation host" of the stream's first request.
    let mut first_request: BTreeMap<String, String> = BTreeMap::new();
    for line in fields.lines() {
        let frame = Frame {
            fields: line.split('\t').collect(),
        };

        // TLS: the SNI of every ClientHello (handshake type 1). With Encrypted Client
        // Hello, tshark shows the outer hello's public name; linkward must report the
        // same, since that is the only name visible on the network.
        if frame.list("tls.handshake.type").contains(&"1") {
            for sni in frame.list("tls.handshake.extensions_server_name") {
                view.sni.insert(sni.to_ascii_lowercase());
            }
        }

        // DNS. linkward reads DNS responses sent from port 53 or 5353. tshark also
        // dissects LLMNR (5355) and mDNS; the comparison is made on port 53, where
        // both read the same messages. Names seen only in mDNS responses are kept apart
        // so that linkward's mDNS records can be set aside (its records carry no port).
        let port53 =
            frame.list("udp.port").contains(&"53") || frame.list("tcp.port").contains(&"53");
        let port5353 = frame.list("udp.port").contains(&"5353");
        if port53 || port5353 {
            dns_messages(&frame, port53, &mut view);
        }

        // HTTP: the Host of each request, and the first one of each TCP stream.
        if !frame.get("http.request").is_empty() {
            let hosts = frame.list("http.host");
            for host in &hosts {
                view.http_hosts.insert(host_without_port(host));
            }
            let stream = frame.get("tcp.stream").to_owned();
            if let (Some(host), Some((src, dst)), Some(sport), Some(dport)) = (
                hosts.first(),
                frame.inner_addresses(),
                frame
                    .list("tcp.srcport")
                    .last()
                    .and_then(|p| p.parse().ok()),
                frame
                    .list("tcp.dstport")
                    .last()
                    .and_then(|p| p.parse().ok()),
            ) {
                first_request.entry(stream).or_insert_with(|| {
                    format!(
                        "{} {}",
                        conversation((src, sport), (dst, dport)),
                        host_without_port(host)
                    )
                });
            }
        }
    }
    view.http_connections = first_request.into_values().collect();

    // `-z conv,tcp -z conv,udp`: a section per protocol, one row per conversation.
    let mut protocol = None;
    for line in conversations.lines() {
        if line.starts_with("TCP Conversations") {
            protocol = Some(6u8);
        } else if line.starts_with("UDP Conversations") {
            protocol = Some(17u8);
        }
        let mut words = line.split_whitespace();
        if let (Some(proto), Some(a), Some("<->"), Some(b)) =
            (protocol, words.next(), words.next(), words.next())
        {
            let (Some(a), Some(b)) = (parse_tshark_endpoint(a), parse_tshark_endpoint(b)) else {
                return Err(format!(
                    "{file}: cannot read tshark conversation row: {line}"
                ));
            };
            *view
                .flows
                .entry(proto)
                .or_default()
                .entry(conversation(a, b))
                .or_default() += 1;
        }
    }
    Ok(view)
}

/// Walks the DNS messages of one frame (a TCP segment may carry several). Repeated fields
/// come message after message; `dns.resp.type` lists every record of every section, so
/// the answers of message i are the first `answers[i]` types after those of the
/// messages before it.
fn dns_messages(frame: &Frame<'_>, port53: bool, view: &mut TsharkView) {
    let responses = frame.list("dns.flags.response");
    let names = frame.list("dns.qry.name");
    let queries = frame.numbers("dns.count.queries");
    let answers = frame.numbers("dns.count.answers");
    let authority = frame.numbers("dns.count.auth_rr");
    let additional = frame.numbers("dns.count.add_rr");
    let types = frame.list("dns.resp.type");
    let mut next_name = 0;
    let mut next_type = 0;
    for (i, response) in responses.iter().enumerate() {
        let count = |v: &[usize]| v.get(i).copied().unwrap_or(0);
        let message_names = names.get(next_name..).unwrap_or_default();
        let first_name = message_names.first().map(|n| n.to_ascii_lowercase());
        next_name += count(&queries);
        let answer_types = types
            .get(next_type..)
            .unwrap_or_default()
            .iter()
            .take(count(&answers));
        let has_address = answer_types
            .clone()
            .any(|t| [RR_A, RR_CNAME, RR_AAAA].contains(t));
        next_type += count(&answers) + count(&authority) + count(&additional);
        let (true, Some(name)) = (*response == "1" || *response == "True", first_name) else {
            continue;
        };
        if count(&queries) == 0 {
            continue;
        }
        if !port53 {
            view.mdns_responses.insert(name);
            continue;
        }
        if count(&answers) > 0 {
            view.dns_answered.insert(name.clone());
        }
        if has_address {
            view.dns_address_answers.insert(name.clone());
        }
        view.dns_responses.insert(name);
    }
    if port53 {
        for cname in frame.list("dns.cname") {
            view.cnames.insert(cname.to_ascii_lowercase());
        }
    }
}

/// Compares one check of one file, allowing exactly the listed differences.
fn compare(
    file: &str,
    check: Check,
    relation: Relation,
    tshark: &BTreeSet<String>,
    linkward: &BTreeSet<String>,
    failures: &mut Vec<String>,
) {
    let only_tshark: BTreeSet<&str> = match relation {
        Relation::Equal | Relation::TsharkWithin => {
            tshark.difference(linkward).map(String::as_str).collect()
        }
        Relation::LinkwardWithin => BTreeSet::new(),
    };
    let only_linkward: BTreeSet<&str> = match relation {
        Relation::Equal | Relation::LinkwardWithin => {
            linkward.difference(tshark).map(String::as_str).collect()
        }
        Relation::TsharkWithin => BTreeSet::new(),
    };
    let allowed = ALLOWED.iter().find(|a| a.file == file && a.check == check);
    let allowed_tshark: BTreeSet<&str> =
        allowed.map_or_else(BTreeSet::new, |a| a.only_tshark.iter().copied().collect());
    let allowed_linkward: BTreeSet<&str> =
        allowed.map_or_else(BTreeSet::new, |a| a.only_linkward.iter().copied().collect());
    if only_tshark != allowed_tshark || only_linkward != allowed_linkward {
        let reason = allowed.map_or("", |a| a.reason);
        failures.push(format!(
            "{file}: {check:?}: tshark {} vs linkward {}; only in tshark {only_tshark:?} \
             (allowed {allowed_tshark:?}); only in linkward {only_linkward:?} \
             (allowed {allowed_linkward:?}) {reason}",
            tshark.len(),
            linkward.len(),
        ));
    }
}

/// Both views of one well-formed capture.
struct Views {
    file: String,
    tshark: TsharkView,
    linkward: LinkwardView,
}

fn views(tshark_path: &Path, input: &Path, scratch: &Path) -> Result<Views, String> {
    let file = file_name(input);
    let mut records = linkward();
    records.arg("records").arg(input);
    let records = run(records, scratch)?;
    if !records.status.success() {
        return Err(format!(
            "{file}: `records` exited with {}: {}",
            records.status, records.stderr
        ));
    }

    // -n: no name resolution, so addresses print as addresses.
    let mut fields = Command::new(tshark_path);
    fields.arg("-n").arg("-r").arg(input).args(["-T", "fields"]);
    for field in FIELDS {
        fields.args(["-e", field]);
    }
    let fields = run(fields, scratch)?;
    let mut conv = Command::new(tshark_path);
    conv.arg("-n")
        .arg("-r")
        .arg(input)
        .args(["-q", "-z", "conv,tcp", "-z", "conv,udp"]);
    let conv = run(conv, scratch)?;
    for (what, finished) in [("fields", &fields), ("conversations", &conv)] {
        if !finished.status.success() {
            return Err(format!(
                "{file}: tshark ({what}) exited with {}: {}",
                finished.status, finished.stderr
            ));
        }
    }
    Ok(Views {
        tshark: tshark_view(&file, &fields.stdout, &conv.stdout)?,
        linkward: linkward_view(&file, &records.stdout)?,
        file,
    })
}

/// The keys of a conversation count map.
fn keys(map: Option<&BTreeMap<String, usize>>) -> BTreeSet<String> {
    map.map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

fn agreement(v: &Views) -> Vec<String> {
    let mut failures = Vec::new();
    let (file, t, l) = (v.file.as_str(), &v.tshark, &v.linkward);

    compare(
        file,
        Check::TlsSni,
        Relation::Equal,
        &t.sni,
        &l.sni,
        &mut failures,
    );

    // DNS. linkward writes a record for every response with a question, answered or
    // not (NXDOMAIN too), so "responses with answers" is checked three ways:
    // - every port-53 response with answers gave a record;
    // - every record is the query of a response tshark saw (mDNS ones set aside);
    // - the queries whose record holds an address or a chain are exactly those whose
    //   answer section holds an A, AAAA or CNAME record (NS, TXT, PTR or HTTPS answers
    //   give linkward nothing to track).
    let linkward_queries: BTreeSet<String> = l
        .dns_queries
        .iter()
        .filter(|q| t.dns_responses.contains(*q) || !t.mdns_responses.contains(*q))
        .cloned()
        .collect();
    compare(
        file,
        Check::DnsAnswered,
        Relation::TsharkWithin,
        &t.dns_answered,
        &linkward_queries,
        &mut failures,
    );
    compare(
        file,
        Check::DnsResponses,
        Relation::LinkwardWithin,
        &t.dns_responses,
        &linkward_queries,
        &mut failures,
    );
    let linkward_address_queries: BTreeSet<String> = l
        .dns_address_queries
        .intersection(&linkward_queries)
        .cloned()
        .collect();
    compare(
        file,
        Check::DnsAddressAnswers,
        Relation::Equal,
        &t.dns_address_answers,
        &linkward_address_queries,
        &mut failures,
    );
    // Every name of every chain linkward followed is a CNAME tshark saw.
    let chain_names: BTreeSet<String> = l
        .dns_chain_names
        .iter()
        .map(|(_, name)| name.clone())
        .collect();
    compare(
        file,
        Check::DnsCnames,
        Relation::LinkwardWithin,
        &t.cnames,
        &chain_names,
        &mut failures,
    );

    // HTTP. linkward reads the Host of the first request of a connection only, so its
    // hosts are a subset of tshark's; and each connection in which tshark sees a
    // request has exactly one flow in linkward, carrying the first request's Host.
    compare(
        file,
        Check::HttpHosts,
        Relation::LinkwardWithin,
        &t.http_hosts,
        &l.http_hosts,
        &mut failures,
    );
    compare(
        file,
        Check::HttpConnections,
        Relation::Equal,
        &t.http_connections,
        &l.http_connections,
        &mut failures,
    );

    // Conversations: tshark's conversation tables against the distinct direction-free
    // tuples of linkward's TCP and UDP flow records (ICMP and other protocols are in
    // neither table). Distinct tuples, because linkward may write several records for
    // one connection: see `each_tcp_connection_is_one_flow_record`.
    for (proto, check) in [(6u8, Check::TcpFlows), (17u8, Check::UdpFlows)] {
        compare(
            file,
            check,
            Relation::Equal,
            &keys(t.flows.get(&proto)),
            &keys(l.flows.get(&proto)),
            &mut failures,
        );
    }
    failures
}

/// Collects the views of every well-formed capture, or None without tshark.
fn all_views() -> Option<(Vec<Views>, Vec<String>)> {
    let tshark_path = tshark()?;
    let scratch = scratch_dir();
    let inputs = captures("wellformed");
    let mut errors = Vec::new();
    let mut all = Vec::new();
    for result in par_map(&inputs, |input| views(&tshark_path, input, scratch.path())) {
        match result {
            Ok(v) => all.push(v),
            Err(e) => errors.push(e),
        }
    }
    Some((all, errors))
}

#[test]
fn wellformed_captures_agree_with_tshark() {
    let Some((all, mut failures)) = all_views() else {
        return;
    };
    for v in &all {
        failures.extend(agreement(v));
    }
    for allowed in ALLOWED {
        if !all.iter().any(|v| v.file == allowed.file) {
            failures.push(format!(
                "ALLOWED names {}, which is not a well-formed capture",
                allowed.file
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements with tshark over {} captures:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

/// A TCP connection is one flow: tshark's conversation table and linkward's flow records
/// must count the same number per tuple.
#[test]
fn each_tcp_connection_is_one_flow_record() {
    let Some((all, mut failures)) = all_views() else {
        return;
    };
    for v in &all {
        let empty = BTreeMap::new();
        let tshark = v.tshark.flows.get(&6).unwrap_or(&empty);
        let linkward = v.linkward.flows.get(&6).unwrap_or(&empty);
        for (conv, records) in linkward {
            // Conversations tshark does not have at all are the TcpFlows check's business.
            if let Some(rows) = tshark.get(conv)
                && rows != records
            {
                failures.push(format!(
                    "{}: {conv}: tshark {rows} conversation(s), linkward {records} flow records",
                    v.file
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} connections split into several flow records:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
