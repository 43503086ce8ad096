//! `linkward live`: capture from an interface, evaluate continuously, swap modules while
//! running.
//!
//! The loop is the library's [`Pipeline`] fed from a [`LiveCapture`]; a quiet link still
//! gets its batches evaluated, because the capture returns on a short read timeout and
//! every `--max-delay` the loop advances the flow clock and flushes. Modules are checked
//! and installed by a [`ModuleWatcher`] thread; this loop only notices, at its next
//! batch, that a newer module is in the slot.

use super::policy_cmds::load_policy;
use super::sign_cmd::read_trust_key;
use anyhow::{Context, bail};
use clap::Args;
use linkward_capture::{LiveCapture, LiveOptions, LiveStats};
use linkward_host::evaluation::Backend;
use linkward_host::metrics::{
    MetricsServer, MetricsSnapshot, SharedMetrics, TimedBackend, parse_listen_addr,
};
use linkward_host::pipeline::{Pipeline, ScanOptions};
use linkward_host::report::eve::EveSink;
use linkward_host::report::stats::RunStats;
use linkward_host::sandbox::{Limits, LoadedModule, PolicyEngine};
use linkward_host::signing::PublicKey;
use linkward_host::swap::{ModuleSlot, SlotBackend};
use linkward_host::track::TrackerConfig;
use linkward_host::track::flows::FlowTableConfig;
use linkward_host::watch::{self, ModuleWatcher, WatchOptions};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Args, Debug)]
pub struct LiveArgs {
    /// The policy: a compiled module (.wasm, watched and hot-swapped) or policy source
    /// (.toml, compiled once).
    #[arg(short, long)]
    policy: PathBuf,
    /// The interface to capture on (for example eth0, or `any`).
    #[arg(short, long)]
    interface: String,
    /// Only packets matching this libpcap filter expression are captured (filtered in
    /// the kernel).
    #[arg(long)]
    bpf: Option<String>,
    /// Put the interface in promiscuous mode (a mirror or tap port).
    #[arg(long)]
    promisc: bool,
    /// Bytes kept of each packet. 65535 keeps whole DNS answers and ClientHellos even
    /// in offloaded (merged) packets; less saves memory on fast links.
    #[arg(long, default_value_t = 65_535)]
    snaplen: u32,
    /// Kernel capture buffer, in MiB; packets are dropped (and counted) when it fills.
    #[arg(long, default_value_t = 32)]
    buffer_mib: u32,
    /// Append findings (EVE JSON lines) to this file instead of standard output; it is
    /// reopened on SIGHUP, for log rotation.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Longest time a finding waits in a partial batch (e.g. 200ms, 1s).
    #[arg(long, value_parser = parse_duration, default_value = "200ms")]
    max_delay: Duration,
    /// Serve Prometheus metrics at http://ADDR/metrics (a bare PORT means 127.0.0.1:PORT).
    #[arg(long)]
    metrics: Option<String>,
    /// Refuse modules not signed by this ed25519 public key (64 hex digits, or a file
    /// holding them).
    #[arg(long)]
    trust_key: Option<String>,
    /// Do not watch the module file for changes (SIGHUP still reopens the output).
    #[arg(long)]
    no_watch: bool,
    /// On a policy-module failure, only count it instead of reporting the affected
    /// records as `evaluation-error` findings.
    #[arg(long)]
    fail_open: bool,
    /// Records per call into the policy module.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Most flows tracked at once; the oldest are evaluated and evicted beyond it.
    #[arg(long, default_value_t = 1 << 20)]
    max_flows: usize,
    /// Seconds after which an idle TCP flow is forgotten.
    #[arg(long, default_value_t = 300)]
    tcp_idle_secs: u64,
    /// Seconds after which an idle UDP flow is forgotten.
    #[arg(long, default_value_t = 60)]
    udp_idle_secs: u64,
    /// Wall-clock budget of one call into the policy module, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    module_timeout_ms: u64,
    /// Largest memory the policy module may use, in MiB.
    #[arg(long, default_value_t = 64)]
    module_memory_mib: usize,
    /// Do not print the statistics summary on standard error at exit.
    #[arg(short, long)]
    quiet: bool,
}

/// Reads `250ms`, `2s`, `1.5s` or a bare number of milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix("us").or_else(|| t.strip_suffix("µs")) {
        (n, 1e-6)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        (t, 1e-3)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write e.g. 200ms or 1s"))?;
    let secs = value * scale;
    if !secs.is_finite() || secs <= 0.0 || secs > 3600.0 {
        return Err(format!(
            "`{text}`: the duration must be above 0 and at most 1 hour"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Loads the policy; for a compiled module, also returns the bytes it was loaded from
/// (so a watcher can tell when the file holds something else). With a trusted key only
/// a signed compiled module is accepted.
pub fn load_checked(
    engine: &PolicyEngine,
    path: &Path,
    trusted: Option<&PublicKey>,
) -> anyhow::Result<(LoadedModule, Option<Vec<u8>>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !bytes.starts_with(b"\0asm") {
        if trusted.is_some() {
            bail!(
                "{} is policy source; a trusted key needs a signed compiled module \
                 (linkward compile, then linkward sign)",
                path.display()
            );
        }
        return Ok((load_policy(engine, path, true)?, None));
    }
    let module = watch::load_module(engine, &bytes, trusted)
        .with_context(|| format!("module {} refused", path.display()))?;
    Ok((module, Some(bytes)))
}

/// Watches a compiled module file, logging every swap and refusal on standard error.
pub fn watch_module(
    path: &Path,
    running: &[u8],
    engine: &PolicyEngine,
    slot: &Arc<ModuleSlot>,
    trusted: Option<PublicKey>,
) -> anyhow::Result<ModuleWatcher> {
    let options = WatchOptions {
        trusted_key: trusted,
        ..WatchOptions::default()
    };
    ModuleWatcher::spawn(
        path,
        running,
        engine.clone(),
        slot.clone(),
        options,
        |event| eprintln!("linkward: {event}"),
    )
    .with_context(|| format!("cannot watch {}", path.display()))
}

/// Standard output or the `-o` file, which SIGHUP reopens.
enum Output {
    Stdout(io::Stdout),
    File(File),
}

impl Output {
    fn open(path: Option<&Path>) -> anyhow::Result<Output> {
        Ok(match path {
            None => Output::Stdout(io::stdout()),
            Some(p) => Output::File(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("cannot open {} for appending", p.display()))?,
            ),
        })
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(s) => s.write(buf),
            Output::File(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(s) => s.flush(),
            Output::File(f) => f.flush(),
        }
    }
}

/// libpcap's drop counters are 32-bit and wrap; these keep 64-bit totals.
#[derive(Default)]
struct Drops {
    last: LiveStats,
    kernel: u64,
    interface: u64,
}

impl Drops {
    fn update(&mut self, now: LiveStats) {
        self.kernel += u64::from(now.dropped.wrapping_sub(self.last.dropped));
        self.interface += u64::from(now.if_dropped.wrapping_sub(self.last.if_dropped));
        self.last = now;
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Registers SIGINT and SIGTERM (stop) and SIGHUP (reopen the output). A second SIGINT
/// or SIGTERM while stopping ends the process at once.
fn signal_flags() -> anyhow::Result<(Arc<AtomicBool>, Arc<AtomicBool>)> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::flag;
    let stop = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        flag::register_conditional_shutdown(signal, 1, stop.clone())
            .context("cannot install a signal handler")?;
        flag::register(signal, stop.clone()).context("cannot install a signal handler")?;
    }
    flag::register(SIGHUP, hup.clone()).context("cannot install a signal handler")?;
    Ok((stop, hup))
}

/// Everything one iteration of the loop works with.
struct Live {
    pipeline: Pipeline,
    backend: TimedBackend<SlotBackend>,
    eve: EveSink<BufWriter<Output>>,
    slot: Arc<ModuleSlot>,
    metrics: SharedMetrics,
    drops: Drops,
    switches_logged: usize,
}

impl Live {
    /// Advances the flow clock, evaluates what is pending, and publishes the counters.
    fn tick(
        &mut self,
        capture: &mut LiveCapture,
        watcher: Option<&ModuleWatcher>,
    ) -> anyhow::Result<()> {
        self.pipeline
            .tick(now_ns(), 0, &mut self.backend, &mut self.eve)?;
        self.pipeline.flush(&mut self.backend, &mut self.eve)?;
        self.eve.get_mut().flush()?;
        self.log_switches();
        if let Ok(s) = capture.stats() {
            self.drops.update(s);
        }
        self.publish(watcher);
        Ok(())
    }

    /// Says when this loop started evaluating with a newly installed module, and how
    /// long the switch held evaluation up.
    fn log_switches(&mut self) {
        let inner = self.backend.inner();
        for pause in inner.switch_times.iter().skip(self.switches_logged) {
            let (name, version) = inner.policy();
            eprintln!(
                "linkward: now evaluating with policy {name} {version} (generation {}; the switch paused evaluation for {} µs)",
                inner.generation(),
                pause.as_micros()
            );
        }
        self.switches_logged = inner.switch_times.len();
    }

    fn stats(&self) -> RunStats {
        let mut stats = self.pipeline.stats();
        stats.module_swaps = self.slot.swaps();
        stats
    }

    fn publish(&self, watcher: Option<&ModuleWatcher>) {
        let stats = self.stats();
        let (policy, version) = self.backend.policy();
        let mut m = match self.metrics.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        m.update_from_stats(&stats);
        m.dropped_kernel = self.drops.kernel;
        m.dropped_interface = self.drops.interface;
        m.policy = policy.to_string();
        m.version = version.to_string();
        m.refusals = watcher.map_or(0, ModuleWatcher::refusals);
        m.batch_seconds = self.backend.histogram().clone();
    }

    /// Reopens the output file (after log rotation moved it away).
    fn reopen(&mut self, path: &Path) -> anyhow::Result<()> {
        self.eve.get_mut().flush()?;
        *self.eve.get_mut() = BufWriter::with_capacity(1 << 16, Output::open(Some(path))?);
        eprintln!("linkward: reopened {}", path.display());
        Ok(())
    }
}

pub fn live(args: LiveArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let trusted = args.trust_key.as_deref().map(read_trust_key).transpose()?;
    let engine = PolicyEngine::new(Limits {
        call_timeout: Duration::from_millis(args.module_timeout_ms.max(1)),
        memory_bytes: args.module_memory_mib.max(1) << 20,
        ..Limits::default()
    })?;
    let (module, bytes) = load_checked(&engine, &args.policy, trusted.as_ref())?;
    let slot = ModuleSlot::new(module.clone());
    let (stop, hup) = signal_flags()?;

    let metrics: SharedMetrics = Arc::new(Mutex::new(MetricsSnapshot {
        policy: module.policy_name().to_string(),
        version: module.version().to_string(),
        ..MetricsSnapshot::default()
    }));
    let _server = match &args.metrics {
        Some(addr) => {
            let addr = parse_listen_addr(addr)?;
            let server = MetricsServer::start(addr, metrics.clone())
                .with_context(|| format!("cannot serve metrics on {addr}"))?;
            eprintln!(
                "linkward: metrics on http://{}/metrics",
                server.local_addr()
            );
            Some(server)
        }
        None => None,
    };
    let watcher = match &bytes {
        Some(b) if !args.no_watch => Some(watch_module(&args.policy, b, &engine, &slot, trusted)?),
        _ => None,
    };

    // The read timeout bounds how late a tick can be on a quiet link.
    let timeout_ms = args.max_delay.as_millis().clamp(1, 50) as u32;
    let mut capture = LiveCapture::open(
        &args.interface,
        LiveOptions {
            snaplen: args.snaplen.max(64),
            promisc: args.promisc,
            immediate: true,
            buffer_size: args.buffer_mib.clamp(1, 2047) << 20,
            timeout_ms,
            bpf: args.bpf.clone(),
        },
    )?;
    eprintln!(
        "linkward: capturing on {} (link type {}) with policy {} {}",
        capture.interface(),
        capture.link_type(),
        module.policy_name(),
        module.version()
    );

    let options = ScanOptions {
        batch_size: args.batch_size,
        fail_open: args.fail_open,
        bpf: None,
        tracker: TrackerConfig {
            flows: FlowTableConfig {
                max_flows: args.max_flows.max(1),
                tcp_idle_secs: args.tcp_idle_secs.max(1),
                udp_idle_secs: args.udp_idle_secs.max(1),
            },
            ..TrackerConfig::default()
        },
        ..ScanOptions::default()
    };
    let out = BufWriter::with_capacity(1 << 16, Output::open(args.output.as_deref())?);
    let mut live = Live {
        pipeline: Pipeline::new(&options)?,
        backend: TimedBackend::new(SlotBackend::new(slot.clone())),
        eve: EveSink::new(out, Vec::new()).flush_each_batch(true),
        slot: slot.clone(),
        metrics,
        drops: Drops::default(),
        switches_logged: 0,
    };

    let mut failure: Option<anyhow::Error> = None;
    let mut last_tick = Instant::now();
    while !stop.load(Ordering::Acquire) {
        match capture.next_packet() {
            Ok(Some(p)) => {
                if let Err(e) = live.pipeline.feed(
                    p.link_type,
                    p.data,
                    p.ts_ns,
                    0,
                    &mut live.backend,
                    &mut live.eve,
                ) {
                    failure = Some(e.into());
                    break;
                }
            }
            Ok(None) => {}
            Err(e) => {
                failure = Some(e.into());
                break;
            }
        }
        if hup.swap(false, Ordering::AcqRel)
            && let Some(path) = &args.output
            && let Err(e) = live.reopen(path)
        {
            failure = Some(e);
            break;
        }
        if last_tick.elapsed() >= args.max_delay {
            last_tick = Instant::now();
            if let Err(e) = live.tick(&mut capture, watcher.as_ref()) {
                failure = Some(e);
                break;
            }
        }
    }

    // Stopping: what was captured is evaluated and written before the statistics.
    let finished = live
        .pipeline
        .finish(0, &mut live.backend, &mut live.eve)
        .map_err(anyhow::Error::from)
        .and_then(|()| live.tick(&mut capture, watcher.as_ref()));
    if let (Err(e), None) = (finished, &failure) {
        failure = Some(e);
    }
    drop(watcher);
    let mut stats = live.stats();
    stats.set_elapsed(started.elapsed());
    let (policy, version) = live.backend.policy();
    let line = serde_json::json!({
        "timestamp": linkward_host::report::eve_timestamp(now_ns()),
        "event_type": "stats",
        "linkward": {
            "policy": &*policy,
            "policy_version": &*version,
            "interface": capture.interface(),
            "capture": {
                "dropped_kernel": live.drops.kernel,
                "dropped_interface": live.drops.interface,
            },
            "stats": &stats,
        }
    });
    let w = live.eve.get_mut();
    serde_json::to_writer(&mut *w, &line)?;
    w.write_all(b"\n")?;
    w.flush()?;
    if !args.quiet {
        eprint!("{}", stats.render());
        eprintln!(
            "  capture drops      {:>12}  (kernel {}, interface {})",
            live.drops.kernel + live.drops.interface,
            live.drops.kernel,
            live.drops.interface
        );
        if let Some(e) = live.pipeline.last_module_error() {
            eprintln!("  last module error: {e}");
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("150"), Ok(Duration::from_millis(150)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(
            parse_duration("0ms"),
            Err("`0ms`: the duration must be above 0 and at most 1 hour".to_string())
        );
        assert_eq!(
            parse_duration("soon"),
            Err("`soon` is not a duration; write e.g. 200ms or 1s".to_string())
        );
    }
}
