//! Prometheus metrics: what a long-running host has done, for the monitoring an
//! appliance already has.
//!
//! The evaluating loop owns the counters and publishes a [`MetricsSnapshot`] into a
//! [`SharedMetrics`] after each batch or clock tick; a [`MetricsServer`] thread renders
//! the latest snapshot in the Prometheus text exposition format (version 0.0.4) for
//! every `GET /metrics`. Scrapes never touch the hot path: they only take the snapshot's
//! lock for as long as rendering takes.
//!
//! The server is deliberately tiny (HTTP/1.0, one request per connection, one
//! connection at a time, bounded request size and time) and binds where it is told;
//! [`parse_listen_addr`] turns a bare port into a loopback address, so exposing the
//! endpoint beyond the machine is always an explicit choice.
//!
//! ```no_run
//! use linkward_host::metrics::{MetricsServer, MetricsSnapshot, SharedMetrics, parse_listen_addr};
//! use std::sync::{Arc, Mutex};
//!
//! let shared: SharedMetrics = Arc::new(Mutex::new(MetricsSnapshot::default()));
//! let server = MetricsServer::start(parse_listen_addr("9184")?, shared.clone())?;
//! println!("metrics on http://{}/metrics", server.local_addr());
//! if let Ok(mut m) = shared.lock() {
//!     m.packets = 42;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::evaluation::Backend;
use crate::report::stats::RunStats;
use linkward_guest::record::Finding;
use linkward_guest::vocab::FindingKind;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thiserror::Error;

/// The snapshot shared between the evaluating loop and the server.
pub type SharedMetrics = Arc<Mutex<MetricsSnapshot>>;

/// Upper bounds (seconds) of the batch latency histogram: from a small batch of a
/// simple policy (tens of microseconds) to a batch near the default call timeout.
pub const BATCH_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];

/// Largest request the server reads; a scrape needs a few hundred bytes.
const MAX_REQUEST: usize = 8 * 1024;
/// How long one client may take to send its request or read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the accept loop looks at its stop flag while idle.
const IDLE_POLL: Duration = Duration::from_millis(20);

/// A cumulative histogram of durations, in seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    bounds: Vec<f64>,
    /// Observations per bucket (not cumulative); the last slot is `+Inf`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram::new(&BATCH_BUCKETS)
    }
}

impl Histogram {
    /// A histogram with these upper bounds (sorted here; NaN bounds are dropped).
    pub fn new(bounds: &[f64]) -> Histogram {
        let mut bounds: Vec<f64> = bounds.iter().copied().filter(|b| !b.is_nan()).collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        Histogram {
            counts: vec![0; bounds.len() + 1],
            bounds,
            sum: 0.0,
            count: 0,
        }
    }

    /// Records one duration.
    pub fn observe(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        let slot = self.bounds.partition_point(|&b| b < secs);
        if let Some(c) = self.counts.get_mut(slot) {
            *c += 1;
        }
        self.sum += secs;
        self.count += 1;
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of all observations, in seconds.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// `(upper bound, cumulative count)` per bucket, ending with `(+Inf, count)`.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        self.bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(&self.counts)
            .map(|(bound, c)| {
                total += c;
                (bound, total)
            })
            .collect()
    }
}

/// Everything the endpoint reports. Counters only grow for the life of the process.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsSnapshot {
    /// Packets read from the capture.
    pub packets: u64,
    /// Packets the kernel dropped because the capture buffer was full.
    pub dropped_kernel: u64,
    /// Packets the interface or its driver dropped.
    pub dropped_interface: u64,
    /// Flows tracked.
    pub flows: u64,
    /// Flow records evaluated.
    pub flows_evaluated: u64,
    /// DNS answers evaluated.
    pub dns_evaluated: u64,
    /// Reports by kind id (finding kinds and `evaluation-error`).
    pub findings: BTreeMap<String, u64>,
    /// Batches the module failed on.
    pub module_errors: u64,
    /// The policy the current module holds.
    pub policy: String,
    /// Its version.
    pub version: String,
    /// Modules swapped in since start.
    pub swaps: u64,
    /// Modules refused (bad signature, failed checks) since start.
    pub refusals: u64,
    /// How long each call into the module took.
    pub batch_seconds: Histogram,
}

impl Default for MetricsSnapshot {
    fn default() -> MetricsSnapshot {
        // Every kind is present from the start, so a dashboard sees zeros, not gaps.
        let findings = FindingKind::ALL
            .iter()
            .map(|k| k.id())
            .chain(std::iter::once("evaluation-error"))
            .map(|id| (id.to_string(), 0))
            .collect();
        MetricsSnapshot {
            packets: 0,
            dropped_kernel: 0,
            dropped_interface: 0,
            flows: 0,
            flows_evaluated: 0,
            dns_evaluated: 0,
            findings,
            module_errors: 0,
            policy: String::new(),
            version: String::new(),
            swaps: 0,
            refusals: 0,
            batch_seconds: Histogram::default(),
        }
    }
}

impl MetricsSnapshot {
    /// Copies the counters of a run's statistics (packets, flows, evaluations,
    /// findings, module errors, swaps).
    pub fn update_from_stats(&mut self, stats: &RunStats) {
        self.packets = stats.packets.packets_read;
        self.flows = stats.flows + stats.flow_records_flows;
        self.flows_evaluated = stats.flows_evaluated;
        self.dns_evaluated = stats.dns_evaluated;
        self.module_errors = stats.module_errors;
        self.swaps = stats.module_swaps;
        for (kind, n) in &stats.findings {
            self.findings.insert((*kind).to_string(), *n);
        }
    }

    /// The Prometheus text exposition (format version 0.0.4).
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(2048);
        let counter = |s: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(s, "# HELP {name} {help}");
            let _ = writeln!(s, "# TYPE {name} counter");
            let _ = writeln!(s, "{name} {value}");
        };
        counter(
            &mut s,
            "linkward_packets_total",
            "Packets read from the input.",
            self.packets,
        );
        let _ = writeln!(
            s,
            "# HELP linkward_packets_dropped_total Packets lost before linkward saw them, by where they were dropped."
        );
        let _ = writeln!(s, "# TYPE linkward_packets_dropped_total counter");
        let _ = writeln!(
            s,
            "linkward_packets_dropped_total{{where=\"kernel\"}} {}",
            self.dropped_kernel
        );
        let _ = writeln!(
            s,
            "linkward_packets_dropped_total{{where=\"interface\"}} {}",
            self.dropped_interface
        );
        counter(&mut s, "linkward_flows_total", "Flows tracked.", self.flows);
        let _ = writeln!(
            s,
            "# HELP linkward_evaluations_total Records evaluated by the policy module, by kind."
        );
        let _ = writeln!(s, "# TYPE linkward_evaluations_total counter");
        let _ = writeln!(
            s,
            "linkward_evaluations_total{{kind=\"flow\"}} {}",
            self.flows_evaluated
        );
        let _ = writeln!(
            s,
            "linkward_evaluations_total{{kind=\"dns\"}} {}",
            self.dns_evaluated
        );
        let _ = writeln!(
            s,
            "# HELP linkward_findings_total Findings reported, by kind."
        );
        let _ = writeln!(s, "# TYPE linkward_findings_total counter");
        for (kind, n) in &self.findings {
            let _ = writeln!(
                s,
                "linkward_findings_total{{kind=\"{}\"}} {n}",
                escape(kind)
            );
        }
        counter(
            &mut s,
            "linkward_module_errors_total",
            "Batches the policy module failed on.",
            self.module_errors,
        );
        let _ = writeln!(
            s,
            "# HELP linkward_module_info The policy module evaluating now."
        );
        let _ = writeln!(s, "# TYPE linkward_module_info gauge");
        let _ = writeln!(
            s,
            "linkward_module_info{{policy=\"{}\",version=\"{}\"}} 1",
            escape(&self.policy),
            escape(&self.version)
        );
        counter(
            &mut s,
            "linkward_module_swaps_total",
            "Policy modules swapped in while running.",
            self.swaps,
        );
        counter(
            &mut s,
            "linkward_module_refusals_total",
            "Policy modules refused (failed checks or signature).",
            self.refusals,
        );
        let name = "linkward_batch_seconds";
        let _ = writeln!(s, "# HELP {name} Time of one call into the policy module.");
        let _ = writeln!(s, "# TYPE {name} histogram");
        for (bound, n) in self.batch_seconds.cumulative() {
            if bound.is_infinite() {
                let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {n}");
            } else {
                let _ = writeln!(s, "{name}_bucket{{le=\"{bound}\"}} {n}");
            }
        }
        let _ = writeln!(s, "{name}_sum {}", self.batch_seconds.sum());
        let _ = writeln!(s, "{name}_count {}", self.batch_seconds.count());
        s
    }
}

/// Escapes a label value: backslash, double quote and line feed.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A [`Backend`] that times every call into the backend it wraps, for the batch
/// latency histogram.
pub struct TimedBackend<B> {
    inner: B,
    histogram: Histogram,
    last: Option<Duration>,
}

impl<B: Backend> TimedBackend<B> {
    pub fn new(inner: B) -> TimedBackend<B> {
        TimedBackend {
            inner,
            histogram: Histogram::default(),
            last: None,
        }
    }

    /// Every call so far.
    pub fn histogram(&self) -> &Histogram {
        &self.histogram
    }

    /// The duration of the latest call.
    pub fn last(&self) -> Option<Duration> {
        self.last
    }

    pub fn inner(&self) -> &B {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }

    fn timed<R>(&mut self, call: impl FnOnce(&mut B) -> R) -> R {
        let started = Instant::now();
        let result = call(&mut self.inner);
        let took = started.elapsed();
        self.histogram.observe(took);
        self.last = Some(took);
        result
    }
}

impl<B: Backend> Backend for TimedBackend<B> {
    fn evaluate_flows(&mut self, batch: &[u8], records: usize) -> Result<Vec<Finding>, String> {
        self.timed(|b| b.evaluate_flows(batch, records))
    }

    fn evaluate_dns(&mut self, batch: &[u8], records: usize) -> Result<Vec<Finding>, String> {
        self.timed(|b| b.evaluate_dns(batch, records))
    }

    fn policy(&self) -> (Arc<str>, Arc<str>) {
        self.inner.policy()
    }
}

/// Why a metrics address could not be used.
#[derive(Debug, Error)]
pub enum MetricsError {
    #[error("invalid metrics address `{addr}`: {why}")]
    Address { addr: String, why: String },
}

/// Reads a listen address: `PORT` or `:PORT` listen on loopback (127.0.0.1),
/// `HOST:PORT` (or `[V6]:PORT`) where it says.
pub fn parse_listen_addr(text: &str) -> Result<SocketAddr, MetricsError> {
    let text = text.trim();
    let bad = |why: String| MetricsError::Address {
        addr: text.to_string(),
        why,
    };
    let port_only = text.strip_prefix(':').unwrap_or(text);
    if !port_only.is_empty() && port_only.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = port_only
            .parse()
            .map_err(|_| bad("the port must be at most 65535".into()))?;
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("the host name has no address".into()))
}

/// The HTTP endpoint: a thread answering `GET /metrics` until dropped.
pub struct MetricsServer {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl MetricsServer {
    /// Binds `addr` and starts serving `metrics`.
    pub fn start(addr: SocketAddr, metrics: SharedMetrics) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        // Non-blocking accept lets the thread notice the stop flag on an idle port.
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("linkward-metrics".into())
                .spawn(move || serve(&listener, &metrics, &stop))?
        };
        Ok(MetricsServer {
            local,
            stop,
            thread: Some(thread),
        })
    }

    /// Where the server listens (the port the system chose, for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: &TcpListener, metrics: &SharedMetrics, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            // A client that misbehaves costs its own connection, nothing more.
            Ok((stream, _)) => {
                let _ = answer(stream, metrics);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(IDLE_POLL),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Out of descriptors and the like: wait rather than spin.
            Err(_) => std::thread::sleep(IDLE_POLL),
        }
    }
}

fn answer(mut stream: TcpStream, metrics: &SharedMetrics) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let request = read_head(&mut stream)?;
    let (status, body, send_body) = match request.as_deref().map(route) {
        Some(Route::Metrics { head_only }) => {
            let text = match metrics.lock() {
                Ok(m) => m.render(),
                Err(poisoned) => poisoned.into_inner().render(),
            };
            ("200 OK", text, !head_only)
        }
        Some(Route::NotFound) => (
            "404 Not Found",
            "not found; metrics are at /metrics\n".to_string(),
            true,
        ),
        None => ("400 Bad Request", "bad request\n".to_string(), true),
    };
    let content_type = if status.starts_with("200") {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    write!(
        stream,
        "HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if send_body {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()?;
    // Closing a socket with unread input makes the kernel reset the connection, and a
    // client can lose the answer to that; read what is left for a moment first.
    stream.shutdown(Shutdown::Write)?;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    let until = Instant::now() + Duration::from_millis(500);
    while drained < 16 * MAX_REQUEST && Instant::now() < until {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    Ok(())
}

/// Reads the request head (up to the blank line); `None` when it is too long, not
/// text, or the client stopped sending before the end of it.
fn read_head(stream: &mut TcpStream) -> io::Result<Option<String>> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        head.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if head.len() > MAX_REQUEST {
            return Ok(None);
        }
    }
    Ok(String::from_utf8(head).ok().filter(|h| !h.is_empty()))
}

enum Route {
    Metrics { head_only: bool },
    NotFound,
}

fn route(head: &str) -> Route {
    let mut parts = head
        .lines()
        .next()
        .unwrap_or_default()
        .split_ascii_whitespace();
    let (method, target) = (parts.next(), parts.next());
    let path = target.map(|t| t.split('?').next().unwrap_or_default());
    match (method, path) {
        (Some("GET"), Some("/metrics")) => Route::Metrics { head_only: false },
        (Some("HEAD"), Some("/metrics")) => Route::Metrics { head_only: true },
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(request).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::new(&[0.001, 0.01]);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_secs(1));
        assert_eq!(
            h.cumulative(),
            vec![(0.001, 2), (0.01, 3), (f64::INFINITY, 4)]
        );
        assert_eq!(h.count(), 4);
        assert!((h.sum() - 1.0065).abs() < 1e-9);
    }

    #[test]
    fn rendering_names_every_family_and_escapes_labels() {
        let mut m = MetricsSnapshot {
            packets: 10,
            dropped_kernel: 2,
            dropped_interface: 1,
            policy: "a\"b\\c\nd".into(),
            version: "1.0.0".into(),
            ..MetricsSnapshot::default()
        };
        m.findings.insert("pe-bypass".into(), 3);
        let text = m.render();
        assert!(text.contains("linkward_packets_total 10\n"), "{text}");
        assert!(text.contains("linkward_packets_dropped_total{where=\"kernel\"} 2\n"));
        assert!(text.contains("linkward_packets_dropped_total{where=\"interface\"} 1\n"));
        assert!(text.contains("linkward_findings_total{kind=\"pe-bypass\"} 3\n"));
        assert!(text.contains("linkward_findings_total{kind=\"evaluation-error\"} 0\n"));
        assert!(
            text.contains("linkward_module_info{policy=\"a\\\"b\\\\c\\nd\",version=\"1.0.0\"} 1\n")
        );
        assert!(text.contains("linkward_batch_seconds_bucket{le=\"+Inf\"} 0\n"));
        assert!(text.contains("# TYPE linkward_batch_seconds histogram\n"));
    }

    #[test]
    fn the_server_answers_metrics_and_404_and_survives_garbage() {
        let shared: SharedMetrics = Arc::new(Mutex::new(MetricsSnapshot::default()));
        if let Ok(mut m) = shared.lock() {
            m.swaps = 7;
        }
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), shared.clone()).unwrap();
        let addr = server.local_addr();
        let ok = get(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.0 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
        assert!(ok.contains("\r\n\r\n# HELP linkward_packets_total"));
        assert!(ok.contains("linkward_module_swaps_total 7\n"));
        let missing = get(addr, b"GET / HTTP/1.0\r\n\r\n");
        assert!(
            missing.starts_with("HTTP/1.0 404 Not Found\r\n"),
            "{missing}"
        );
        let post = get(addr, b"POST /metrics HTTP/1.0\r\n\r\n");
        assert!(post.starts_with("HTTP/1.0 404"), "{post}");
        let huge = vec![b'A'; MAX_REQUEST + 2048];
        let bad = get(addr, &huge);
        assert!(bad.starts_with("HTTP/1.0 400 Bad Request\r\n"), "{bad}");
        let binary = get(addr, b"\xff\xfe\r\n\r\n");
        assert!(binary.starts_with("HTTP/1.0 400"), "{binary}");
        let head = get(addr, b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n");
        assert!(head.starts_with("HTTP/1.0 200 OK\r\n"));
        assert!(head.ends_with("\r\nConnection: close\r\n\r\n"), "{head}");
        assert!(!head.contains("# HELP"), "{head}");
        // Still serving after all that.
        assert!(get(addr, b"GET /metrics HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 200"));
    }

    #[test]
    fn listen_addresses_default_to_loopback() {
        assert_eq!(
            parse_listen_addr("9184").unwrap(),
            "127.0.0.1:9184".parse().unwrap()
        );
        assert_eq!(
            parse_listen_addr(":0").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert_eq!(
            parse_listen_addr("[::1]:80").unwrap(),
            "[::1]:80".parse().unwrap()
        );
        assert_eq!(
            parse_listen_addr("99999").unwrap_err().to_string(),
            "invalid metrics address `99999`: the port must be at most 65535"
        );
    }
}
