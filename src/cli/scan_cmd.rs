//! `linkward scan`: captures in, findings out.

use super::Format;
use super::policy_cmds::load_policy;
use anyhow::Context;
use clap::Args;
use linkward_capture::CaptureFile;
use linkward_guest::vocab::Severity;
use linkward_host::evaluation::{FindingSink, Report, TeeSink};
use linkward_host::swap::{ModuleSlot, SlotBackend};
use linkward_host::report::eve::EveSink;
use linkward_host::report::stats::RunStats;
use linkward_host::report::table::TableSink;
use linkward_host::sandbox::{Limits, PolicyEngine};
use linkward_host::flowlogs::{FlowLogOptions, looks_like_flow_log, scan_flow_log};
use linkward_host::pipeline::{Pipeline, ScanOptions};
use linkward_host::subject::Subject;
use linkward_host::track::TrackerConfig;
use linkward_host::track::flows::FlowTableConfig;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// The policy: a compiled module (.wasm) or policy source (.toml, compiled on the fly).
    #[arg(short, long)]
    policy: PathBuf,
    /// Capture files (pcap, pcapng) and flow logs (Azure VNet or NSG flow-log JSON, or
    /// JSON-lines flow records), told apart by content; a directory is walked for flow
    /// logs in the time order of Azure's blob layout.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Evaluate flows a network security group denied (reported with that fact).
    #[arg(long)]
    include_denied: bool,
    /// Output format; EVE when writing to a file or a pipe, a table on a terminal.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Write findings to this file instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Only packets matching this libpcap filter expression are evaluated.
    #[arg(long)]
    bpf: Option<String>,
    /// Exit with status 1 when a finding at or above this severity exists.
    #[arg(long, value_parser = parse_severity)]
    fail_on: Option<Severity>,
    /// On a policy-module failure, only count it instead of reporting the affected
    /// records as `evaluation-error` findings.
    #[arg(long)]
    fail_open: bool,
    /// Most flows tracked at once; the oldest are evaluated and evicted beyond it.
    #[arg(long, default_value_t = 1 << 20)]
    max_flows: usize,
    /// Records per call into the policy module.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Wall-clock budget of one call into the policy module, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    module_timeout_ms: u64,
    /// Largest memory the policy module may use, in MiB.
    #[arg(long, default_value_t = 64)]
    module_memory_mib: usize,
    /// Do not print the statistics summary on standard error.
    #[arg(short, long)]
    quiet: bool,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    Severity::from_id(s).ok_or_else(|| {
        format!("unknown severity `{s}`; expected one of info, low, medium, high, critical")
    })
}

/// Remembers the highest severity seen, for `--fail-on`.
#[derive(Default)]
struct SeverityWatch {
    highest: Option<Severity>,
}

impl FindingSink for SeverityWatch {
    fn report(&mut self, _subject: &Subject, report: &Report) -> io::Result<()> {
        self.highest = self.highest.max(Some(report.severity));
        Ok(())
    }
}

/// A one-line progress indicator on a terminal's standard error.
struct Progress {
    enabled: bool,
    total_bytes: u64,
    last: Instant,
}

impl Progress {
    fn show(&mut self, file: &str, done_bytes: u64, packets: u64) {
        if !self.enabled || self.last.elapsed() < Duration::from_millis(200) {
            return;
        }
        self.last = Instant::now();
        let pct = if self.total_bytes > 0 {
            done_bytes as f64 * 100.0 / self.total_bytes as f64
        } else {
            0.0
        };
        eprint!("\r{file}: {packets} packets, {pct:5.1}%   ");
    }

    fn done(&self) {
        if self.enabled {
            eprint!("\r\x1b[K");
        }
    }
}

/// One input of a scan, by what its content turned out to be.
enum Input {
    Capture(PathBuf),
    FlowLog(PathBuf),
}

impl Input {
    fn path(&self) -> &std::path::Path {
        match self {
            Input::Capture(p) | Input::FlowLog(p) => p,
        }
    }
}

/// Tells captures from flow logs by their first bytes and expands directories of flow
/// logs; problems (missing files) are collected in `errors`.
fn expand_inputs(paths: &[PathBuf], errors: &mut Vec<String>) -> Vec<Input> {
    use std::io::Read;
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            match linkward_flowlog::walk_blob_dir(path) {
                Ok(found) => out.extend(found.into_iter().map(Input::FlowLog)),
                Err(e) => errors.push(e.to_string()),
            }
            continue;
        }
        let mut head = [0u8; 64];
        let read = std::fs::File::open(path).and_then(|mut f| f.read(&mut head));
        match read {
            Ok(n) if looks_like_flow_log(&head[..n]) => out.push(Input::FlowLog(path.clone())),
            // Captures (and everything else: the capture reader says what is wrong).
            Ok(_) => out.push(Input::Capture(path.clone())),
            Err(e) => errors.push(format!("{}: cannot open: {e}", path.display())),
        }
    }
    out
}

pub fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let engine = PolicyEngine::new(Limits {
        call_timeout: Duration::from_millis(args.module_timeout_ms.max(1)),
        memory_bytes: args.module_memory_mib.max(1) << 20,
        ..Limits::default()
    })?;
    let module = load_policy(&engine, &args.policy, true)?;
    let options = ScanOptions {
        batch_size: args.batch_size,
        fail_open: args.fail_open,
        bpf: args.bpf.clone(),
        tracker: TrackerConfig {
            flows: FlowTableConfig {
                max_flows: args.max_flows.max(1),
                ..FlowTableConfig::default()
            },
            ..TrackerConfig::default()
        },
        ..ScanOptions::default()
    };
    let mut scanner = Pipeline::new(&options)?;
    let slot = ModuleSlot::new(module.clone());
    let mut backend = SlotBackend::new(slot.clone());

    let stdout_is_terminal = io::stdout().is_terminal();
    let format = args.format.unwrap_or(if args.output.is_some() || !stdout_is_terminal {
        Format::Eve
    } else {
        Format::Table
    });
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(io::stdout().lock()),
    };
    let mut eve = EveSink::new(BufWriter::with_capacity(1 << 16, out), Vec::new());
    let mut table = TableSink::new();
    let mut watch = SeverityWatch::default();

    let mut errors = Vec::new();
    let mut progress = Progress {
        enabled: io::stderr().is_terminal() && !args.quiet,
        total_bytes: 0,
        last: Instant::now(),
    };
    let inputs = expand_inputs(&args.inputs, &mut errors);
    let names: Vec<String> = inputs.iter().map(|i| i.path().display().to_string()).collect();
    eve.set_inputs(names);
    let mut files = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        match input {
            Input::Capture(path) => match CaptureFile::open(path) {
                Ok(f) => {
                    progress.total_bytes += f.len_bytes();
                    files.push((i as u32, Some(f), path.clone()));
                }
                Err(e) => errors.push(e.to_string()),
            },
            Input::FlowLog(path) => files.push((i as u32, None, path.clone())),
        }
    }
    let flow_log_options = FlowLogOptions {
        include_denied: args.include_denied,
        max_flows: args.max_flows.max(1),
        ..FlowLogOptions::default()
    };
    let mut done_bytes = 0;
    let mut last_input = 0;
    {
        let mut sink = TeeSink(match format {
            Format::Eve => vec![&mut eve, &mut watch],
            Format::Table => vec![&mut table, &mut watch],
        });
        for (input, file, path) in &files {
            last_input = *input;
            let Some(file) = file else {
                let outcome = scan_flow_log(
                    &mut scanner,
                    path,
                    *input,
                    &flow_log_options,
                    &mut backend,
                    &mut sink,
                )?;
                for m in &outcome.malformed {
                    eprintln!("linkward: warning: malformed tuple: {m}");
                }
                if let Some(e) = outcome.error {
                    errors.push(format!("{e} (everything before it was evaluated)"));
                }
                continue;
            };
            let name = file.path().display().to_string();
            let size = file.len_bytes();
            let result = scanner.scan_file(file, *input, &mut backend, &mut sink, &mut |n| {
                progress.show(&name, done_bytes, n)
            });
            done_bytes += size;
            if let Err(e) = result {
                let read = scanner.packet_stats().packets_read;
                errors.push(format!("{e} (stopped there; {read} packets read in all so far)"));
            }
        }
        scanner.finish(last_input, &mut backend, &mut sink)?;
    }
    progress.done();

    let mut stats: RunStats = scanner.stats();
    stats.input_errors = errors.clone();
    stats.set_elapsed(started.elapsed());
    match format {
        Format::Eve => {
            let line = serde_json::json!({
                "timestamp": linkward_host::report::eve_timestamp(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos() as u64)),
                "event_type": "stats",
                "linkward": {
                    "policy": module.policy_name(),
                    "policy_version": module.version(),
                    "stats": &stats,
                }
            });
            let w = eve.get_mut();
            serde_json::to_writer(&mut *w, &line)?;
            w.write_all(b"\n")?;
            w.flush()?;
        }
        Format::Table => {
            let mut w = eve.into_inner();
            writeln!(
                w,
                "linkward scan: policy {} {}",
                module.policy_name(),
                module.version()
            )?;
            write!(w, "{}", table.render())?;
            w.flush()?;
        }
    }
    if !args.quiet {
        eprint!("{}", stats.render());
        if let Some(e) = scanner.last_module_error() {
            eprintln!("  last module error: {e}");
        }
    }
    for e in &errors {
        eprintln!("linkward: error: {e}");
    }
    if !errors.is_empty() {
        return Ok(ExitCode::from(2));
    }
    if let (Some(threshold), Some(highest)) = (args.fail_on, watch.highest)
        && highest >= threshold
    {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn records(inputs: &[PathBuf], bpf: Option<String>) -> anyhow::Result<ExitCode> {
    use linkward_host::evaluation::{CollectSink, NullBackend};
    use std::sync::{Arc, Mutex};
    let options = ScanOptions {
        bpf,
        ..ScanOptions::default()
    };
    let mut scanner = Pipeline::new(&options)?;
    let out = Arc::new(Mutex::new(BufWriter::new(io::stdout())));
    let failed = Arc::new(Mutex::new(None::<io::Error>));
    {
        let out = out.clone();
        let failed = failed.clone();
        scanner.set_observer(Box::new(move |subject| {
            let Ok(mut w) = out.lock() else { return };
            let written = serde_json::to_writer(&mut *w, &subject.to_json())
                .map_err(io::Error::from)
                .and_then(|()| w.write_all(b"\n"));
            if let (Err(e), Ok(mut slot)) = (written, failed.lock()) {
                slot.get_or_insert(e);
            }
        }));
    }
    let mut backend = NullBackend;
    let mut sink = CollectSink::default();
    let mut errors = Vec::new();
    let mut last = 0;
    for (i, path) in inputs.iter().enumerate() {
        last = i as u32;
        let result = CaptureFile::open(path)
            .map_err(Into::into)
            .and_then(|f| scanner.scan_file(&f, i as u32, &mut backend, &mut sink, &mut |_| {}));
        if let Err(e) = result {
            errors.push(e.to_string());
        }
    }
    scanner.finish(last, &mut backend, &mut sink)?;
    if let Ok(mut w) = out.lock() {
        w.flush()?;
    }
    if let Ok(mut slot) = failed.lock()
        && let Some(e) = slot.take()
    {
        return Err(e.into());
    }
    eprint!("{}", scanner.stats().render());
    for e in &errors {
        eprintln!("linkward: error: {e}");
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
