//! `linkward scan`: captures in, findings out.

use super::Format;
use super::live_cmd::{load_checked, watch_module};
use super::sign_cmd::read_trust_key;
use anyhow::Context;
use clap::Args;
use linkward_capture::CaptureFile;
use linkward_guest::record::Finding;
use linkward_guest::vocab::Severity;
use linkward_host::evaluation::{Backend, FindingSink, Report, TeeSink};
use linkward_host::flowlogs::{FlowLogOptions, FlowLogReader, is_flow_log_file};
use linkward_host::pipeline::{
    Joined, Pipeline, ScanError, ScanOptions, ScanProgress, SharedFile, SplitFile,
};
use linkward_host::report::eve::EveSink;
use linkward_host::report::stats::RunStats;
use linkward_host::report::table::TableSink;
use linkward_host::sandbox::{Limits, LoadedModule, PolicyEngine};
use linkward_host::signing::PublicKey;
use linkward_host::subject::Subject;
use linkward_host::swap::{ModuleSlot, SlotBackend};
use linkward_host::track::TrackerConfig;
use linkward_host::track::flows::FlowTableConfig;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, mpsc};
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
    /// Worker threads, each with its own module instance. Two workers scanning one pcap
    /// file take a half each and join them afterwards; otherwise workers take turns
    /// reading each pcap file (pcapng files, and files of short records, are read whole
    /// by every worker) and split flows between them by a hash of addresses and ports.
    /// Findings are the same for any number of workers (their order may differ).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Refuse modules not signed by this ed25519 public key (64 hex digits, or a file
    /// holding them); also applies to modules swapped in while scanning.
    #[arg(long)]
    trust_key: Option<String>,
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
            (done_bytes as f64 * 100.0 / self.total_bytes as f64).min(100.0)
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
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            match linkward_flowlog::walk_blob_dir(path) {
                Ok(found) => out.extend(found.into_iter().map(Input::FlowLog)),
                Err(e) => errors.push(e.to_string()),
            }
            continue;
        }
        match is_flow_log_file(path) {
            Ok(true) => out.push(Input::FlowLog(path.clone())),
            // Captures (and everything else: the capture reader says what is wrong).
            Ok(false) => out.push(Input::Capture(path.clone())),
            Err(e) => errors.push(format!("{}: cannot open: {e}", path.display())),
        }
    }
    out
}

/// Worker buffers flushed into the shared output at the end of each batch, so lines of
/// different workers never interleave.
struct SharedOutput {
    local: Vec<u8>,
    shared: Arc<Mutex<BufWriter<Box<dyn Write + Send>>>>,
}

impl Write for SharedOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.local.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.local.is_empty() {
            return Ok(());
        }
        let mut shared = self
            .shared
            .lock()
            .map_err(|_| io::Error::other("output lock poisoned"))?;
        shared.write_all(&self.local)?;
        self.local.clear();
        Ok(())
    }
}

/// One opened input.
enum Opened {
    Capture(CaptureFile),
    FlowLog(PathBuf),
}

/// What one worker found.
struct WorkerResult {
    stats: RunStats,
    table: TableSink,
    highest: Option<Severity>,
    errors: Vec<String>,
    last_module_error: Option<String>,
    /// How a file split in two was joined (two workers on one pcap file).
    split: Option<serde_json::Value>,
}

struct WorkerSetup<'a, 'f> {
    index: u64,
    count: u64,
    inputs: &'a [(u32, Opened)],
    /// Per input, the capture file cut into segments the workers take turns at.
    shared_files: &'a [Option<SharedFile<'f>>],
    names: &'a [String],
    options: &'a ScanOptions,
    flow_log_options: &'a FlowLogOptions,
    slot: &'a Arc<ModuleSlot>,
    format: Format,
    shared: &'a Arc<Mutex<BufWriter<Box<dyn Write + Send>>>>,
}

impl WorkerSetup<'_, '_> {
    /// EVE output into the shared output, a batch at a time.
    fn shared_eve(&self) -> EveSink<SharedOutput> {
        EveSink::new(
            SharedOutput {
                local: Vec::with_capacity(1 << 16),
                shared: self.shared.clone(),
            },
            self.names.to_vec(),
        )
        .flush_each_batch(true)
    }
}

fn run_worker(
    setup: WorkerSetup<'_, '_>,
    mut progress: Option<Progress>,
) -> anyhow::Result<WorkerResult> {
    let mut options = setup.options.clone();
    options.tracker.shard = (setup.count > 1).then_some((setup.index, setup.count));
    let mut pipeline = Pipeline::new(&options)?;
    let mut backend = SlotBackend::new(setup.slot.clone());
    let mut eve = setup.shared_eve();
    let mut table = TableSink::new();
    let mut watch = SeverityWatch::default();
    let mut errors = Vec::new();
    let mut done_bytes = 0;
    let mut last_input = 0;
    // One reader for all flow logs, so a flow spanning hourly blobs is evaluated once.
    let mut flow_logs = FlowLogReader::new(setup.flow_log_options.clone());
    {
        let mut sink = worker_sink(setup.format, &mut eve, &mut table, &mut watch);
        for ((input, opened), shared_file) in setup.inputs.iter().zip(setup.shared_files) {
            last_input = *input;
            match opened {
                // Flow logs carry no DNS state shared with packets: the first worker
                // reads them alone.
                Opened::FlowLog(path) if setup.index == 0 => {
                    let outcome = flow_logs.read_file(
                        &mut pipeline,
                        path,
                        *input,
                        &mut backend,
                        &mut sink,
                    )?;
                    for m in &outcome.malformed {
                        eprintln!("linkward: warning: malformed tuple: {m}");
                    }
                    if let Some(e) = outcome.error {
                        errors.push(format!("{e} (everything before it was evaluated)"));
                    }
                }
                Opened::FlowLog(_) => {}
                Opened::Capture(file) => {
                    let name = file.path().display().to_string();
                    let size = file.len_bytes();
                    let mut show = |at: ScanProgress| {
                        if let Some(p) = progress.as_mut() {
                            p.show(&name, done_bytes + at.offset, at.records);
                        }
                    };
                    let result = match shared_file {
                        Some(shared) => {
                            pipeline.scan_shared(shared, *input, &mut backend, &mut sink, &mut show)
                        }
                        None => {
                            pipeline.scan_file(file, *input, &mut backend, &mut sink, &mut show)
                        }
                    };
                    done_bytes += size;
                    match result {
                        Ok(()) => {}
                        // The worker that stopped the others reports why.
                        Err(ScanError::WorkerStopped) => {}
                        // Every worker meets the same damage in a file; the first reports.
                        Err(ScanError::Capture(_)) if setup.index != 0 => {}
                        Err(e) => errors.push(format!(
                            "{e} (stopped there; the packets before it were evaluated)"
                        )),
                    }
                }
            }
        }
        flow_logs.finish(&mut pipeline, last_input, &mut backend, &mut sink)?;
        pipeline.finish(last_input, &mut backend, &mut sink)?;
    }
    eve.get_mut().flush()?;
    Ok(worker_result(
        &pipeline, &progress, table, watch, errors, None,
    ))
}

/// Where a worker reports in `format`: EVE or the table, and the severity watch.
fn worker_sink<'a>(
    format: Format,
    eve: &'a mut dyn FindingSink,
    table: &'a mut TableSink,
    watch: &'a mut SeverityWatch,
) -> TeeSink<'a> {
    TeeSink(match format {
        Format::Eve => vec![eve, watch],
        Format::Table => vec![table, watch],
    })
}

/// What a worker hands back once its pipeline is finished and its output flushed.
fn worker_result(
    pipeline: &Pipeline,
    progress: &Option<Progress>,
    table: TableSink,
    watch: SeverityWatch,
    errors: Vec<String>,
    split: Option<serde_json::Value>,
) -> WorkerResult {
    if let Some(p) = progress {
        p.done();
    }
    WorkerResult {
        stats: pipeline.stats(),
        table,
        highest: watch.highest,
        errors,
        last_module_error: pipeline.last_module_error().map(str::to_string),
        split,
    }
}

/// The second half of a file split in two, scanned on its own thread, with what it
/// reported held back until the first half's worker has joined it.
struct HeldHalf {
    second: Result<linkward_host::pipeline::SecondHalf, ScanError>,
    eve: Vec<u8>,
    table: TableSink,
    highest: Option<Severity>,
}

/// What a half of a split scan needs; it starts while the module is still being
/// loaded, and receives it through `module`.
struct HeldSetup<'a> {
    options: &'a ScanOptions,
    names: &'a [String],
    format: Format,
    module: mpsc::Receiver<Arc<ModuleSlot>>,
}

fn scan_held_half(setup: HeldSetup<'_>, split: &SplitFile<'_>, input: u32) -> HeldHalf {
    let mut backend = LateBackend::new(setup.module);
    let mut eve = EveSink::new(Vec::new(), setup.names.to_vec());
    let mut table = TableSink::new();
    let mut watch = SeverityWatch::default();
    let second = {
        let mut sink = worker_sink(setup.format, &mut eve, &mut table, &mut watch);
        Pipeline::scan_second_half(setup.options, split, input, &mut backend, &mut sink)
    };
    HeldHalf {
        second,
        eve: eve.into_inner(),
        table,
        highest: watch.highest,
    }
}

/// The backend of a worker that starts before the module is loaded. Tracking needs no
/// module, so the worker goes on collecting batches (see [`Backend::ready`]) and waits
/// for the module only when too many are held back.
struct LateBackend {
    module: Option<mpsc::Receiver<Arc<ModuleSlot>>>,
    backend: Option<SlotBackend>,
}

impl LateBackend {
    fn new(module: mpsc::Receiver<Arc<ModuleSlot>>) -> LateBackend {
        LateBackend {
            module: Some(module),
            backend: None,
        }
    }

    /// The module's backend, waiting for it if it is still loading.
    fn loaded(&mut self) -> Result<&mut SlotBackend, String> {
        if self.backend.is_none()
            && let Some(module) = self.module.take()
            && let Ok(slot) = module.recv()
        {
            self.backend = Some(SlotBackend::new(slot));
        }
        self.backend
            .as_mut()
            .ok_or_else(|| "the policy module could not be loaded".to_string())
    }
}

impl Backend for LateBackend {
    fn evaluate_flows(&mut self, batch: &[u8], records: usize) -> Result<Vec<Finding>, String> {
        self.loaded()?.evaluate_flows(batch, records)
    }

    fn evaluate_dns(&mut self, batch: &[u8], records: usize) -> Result<Vec<Finding>, String> {
        self.loaded()?.evaluate_dns(batch, records)
    }

    /// Ready once the module has arrived, or once it is known that it never will
    /// (evaluation then reports the failed load).
    fn ready(&mut self) -> bool {
        if self.backend.is_none()
            && let Some(module) = &self.module
        {
            match module.try_recv() {
                Ok(slot) => {
                    self.backend = Some(SlotBackend::new(slot));
                    self.module = None;
                }
                Err(mpsc::TryRecvError::Empty) => return false,
                Err(mpsc::TryRecvError::Disconnected) => self.module = None,
            }
        }
        true
    }

    fn policy(&self) -> (Arc<str>, Arc<str>) {
        self.backend
            .as_ref()
            .map_or_else(|| ("".into(), "".into()), Backend::policy)
    }
}

/// Two workers on one pcap file: this thread scans the first half while `held`
/// scans the second, then joins it (see `SplitFile`): the same findings and
/// statistics as one worker, without handing frames between them. Both halves start
/// while the module is still loading, so both hold what they report until the output
/// is open; returns this worker's result and the EVE output of the whole file.
fn run_split<'s>(
    setup: HeldSetup<'_>,
    split: &SplitFile<'_>,
    input: u32,
    held: std::thread::ScopedJoinHandle<'s, HeldHalf>,
    mut progress: Option<Progress>,
) -> anyhow::Result<(WorkerResult, Vec<u8>)> {
    let mut pipeline = Pipeline::new(setup.options)?;
    let mut backend = LateBackend::new(setup.module);
    let mut eve = EveSink::new(Vec::new(), setup.names.to_vec());
    let mut table = TableSink::new();
    let mut watch = SeverityWatch::default();
    let mut errors = Vec::new();
    let name = split.file().path().display().to_string();
    let (cut, size) = (split.cut(), split.file().len_bytes());
    let mut show = |at: ScanProgress| {
        // The halves go at about the same pace, so the first half's share done is
        // the whole file's; past the cut (scanning the second half again) the offset
        // is.
        let done = if at.offset < cut {
            let scaled = u128::from(at.offset) * u128::from(size) / u128::from(cut);
            u64::try_from(scaled).unwrap_or(size)
        } else {
            at.offset
        };
        if let Some(p) = progress.as_mut() {
            p.show(&name, done, at.records);
        }
    };
    let mut sink = worker_sink(setup.format, &mut eve, &mut table, &mut watch);
    let first = pipeline.scan_first_half(split, input, &mut backend, &mut sink, &mut show);
    let held = held.join().unwrap_or_else(|_| HeldHalf {
        second: Err(ScanError::WorkerStopped),
        eve: Vec::new(),
        table: TableSink::new(),
        highest: None,
    });
    let joined = first.and_then(|first| {
        pipeline.join_second_half(
            split,
            &first,
            held.second,
            input,
            &mut backend,
            &mut sink,
            &mut show,
        )
    });
    drop(sink);
    let outcome = match &joined {
        Ok(Joined::Stitched) => {
            serde_json::json!({"cut": split.cut(), "joined": "stitched"})
        }
        Ok(Joined::Rescanned { reason }) => {
            serde_json::json!({"cut": split.cut(), "joined": "rescanned", "reason": reason})
        }
        Err(_) => serde_json::json!({"cut": split.cut(), "joined": "stopped"}),
    };
    match joined {
        Ok(Joined::Stitched) => {
            // Whole lines, after every batch of the first half's.
            eve.get_mut().extend_from_slice(&held.eve);
            table.merge(held.table);
            watch.highest = watch.highest.max(held.highest);
        }
        Ok(Joined::Rescanned { .. }) => {}
        Err(e) => errors.push(format!(
            "{e} (stopped there; the packets before it were evaluated)"
        )),
    }
    let mut sink = worker_sink(setup.format, &mut eve, &mut table, &mut watch);
    pipeline.finish(input, &mut backend, &mut sink)?;
    drop(sink);
    let result = worker_result(&pipeline, &progress, table, watch, errors, Some(outcome));
    Ok((result, eve.into_inner()))
}

/// The policy of a scan: the engine, the trust key and the checked module (with its
/// bytes when it was read from a module file, for the hot-swap watcher).
struct Policy {
    engine: PolicyEngine,
    trusted: Option<PublicKey>,
    module: LoadedModule,
    module_bytes: Option<Vec<u8>>,
}

fn load_policy(args: &ScanArgs) -> anyhow::Result<Policy> {
    let engine = PolicyEngine::new(Limits {
        call_timeout: Duration::from_millis(args.module_timeout_ms.max(1)),
        memory_bytes: args.module_memory_mib.max(1) << 20,
        ..Limits::default()
    })?;
    let trusted = args.trust_key.as_deref().map(read_trust_key).transpose()?;
    let (module, module_bytes) = load_checked(&engine, &args.policy, trusted.as_ref())?;
    Ok(Policy {
        engine,
        trusted,
        module,
        module_bytes,
    })
}

pub fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut errors = Vec::new();
    let mut progress = Progress {
        enabled: io::stderr().is_terminal() && !args.quiet,
        total_bytes: 0,
        last: Instant::now(),
    };
    let inputs = expand_inputs(&args.inputs, &mut errors);
    let names: Vec<String> = inputs
        .iter()
        .map(|i| i.path().display().to_string())
        .collect();
    let mut opened = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        match input {
            Input::Capture(path) => match CaptureFile::open(path) {
                Ok(f) => {
                    progress.total_bytes += f.len_bytes();
                    opened.push((i as u32, Opened::Capture(f)));
                }
                Err(e) => errors.push(e.to_string()),
            },
            Input::FlowLog(path) => opened.push((i as u32, Opened::FlowLog(path.clone()))),
        }
    }
    let workers = args.workers.max(1) as u64;
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
    // Fail early on a bad filter expression, before any worker starts.
    Pipeline::new(&options)?;
    let stdout_is_terminal = io::stdout().is_terminal();
    let format = args
        .format
        .unwrap_or(if args.output.is_some() || !stdout_is_terminal {
            Format::Eve
        } else {
            Format::Table
        });
    let flow_log_options = FlowLogOptions {
        include_denied: args.include_denied,
        max_flows: args.max_flows.max(1),
        ..FlowLogOptions::default()
    };
    // Two workers on one pcap file take a half each (one boundary search).
    let split = match opened.as_slice() {
        [(input, Opened::Capture(file))] if workers == 2 => {
            SplitFile::new(file).map(|split| (*input, split))
        }
        _ => None,
    };
    let (first_tx, first_rx) = mpsc::channel();
    let (second_tx, second_rx) = mpsc::channel();
    std::thread::scope(|scope| -> anyhow::Result<ExitCode> {
        // The module loads (compilation or cache, checks and self-tests) on its own
        // thread, while large captures are cut into segments, or while both halves of a
        // split file are scanned: they track without it and wait for it only when too
        // many batches are held back.
        let loader = scope.spawn(|| -> anyhow::Result<_> {
            // Owned here: a module that fails to load ends the halves' wait for it.
            let senders = [first_tx, second_tx];
            let Policy {
                engine,
                trusted,
                module,
                module_bytes,
            } = load_policy(&args)?;
            let slot = ModuleSlot::new(module);
            for tx in &senders {
                let _ = tx.send(slot.clone());
            }
            // A long scan takes a replaced module file between batches, as `live` does.
            let watcher = match &module_bytes {
                Some(bytes) => Some(watch_module(&args.policy, bytes, &engine, &slot, trusted)?),
                None => None,
            };
            Ok((slot, watcher))
        });
        let mut progress = Some(progress);
        let halves = split.as_ref().map(|(input, split)| {
            let second = HeldSetup {
                options: &options,
                names: &names,
                format,
                module: second_rx,
            };
            let held = scope.spawn(move || scan_held_half(second, split, *input));
            let first = HeldSetup {
                options: &options,
                names: &names,
                format,
                module: first_rx,
            };
            run_split(first, split, *input, held, progress.take())
        });
        // A failed cut leaves every worker reading the whole file: slower, same findings.
        let shared_files = opened
            .iter()
            .map(|(_, o)| match o {
                Opened::Capture(file) if split.is_none() => SharedFile::new(file, workers),
                _ => None,
            })
            .collect::<Vec<_>>();
        let (slot, _watcher) = loader
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("loading the policy panicked")))?;

        let out: Box<dyn Write + Send> = match &args.output {
            Some(path) => Box::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            ),
            None => Box::new(io::stdout()),
        };
        let shared = Arc::new(Mutex::new(BufWriter::with_capacity(1 << 16, out)));
        let results: Vec<anyhow::Result<WorkerResult>> = match halves {
            Some(halves) => {
                let (result, eve) = halves?;
                shared
                    .lock()
                    .map_err(|_| anyhow::anyhow!("output lock poisoned"))?
                    .write_all(&eve)?;
                vec![Ok(result)]
            }
            None => std::thread::scope(|scope| {
                let handles: Vec<_> = (0..workers)
                    .map(|index| {
                        let setup = WorkerSetup {
                            index,
                            count: workers,
                            inputs: &opened,
                            shared_files: &shared_files,
                            names: &names,
                            options: &options,
                            flow_log_options: &flow_log_options,
                            slot: &slot,
                            format,
                            shared: &shared,
                        };
                        let progress = progress.take();
                        scope.spawn(move || run_worker(setup, progress))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(anyhow::anyhow!("a scan worker panicked")))
                    })
                    .collect()
            }),
        };

        let mut stats = RunStats::default();
        let mut table = TableSink::new();
        let mut highest = None;
        let mut last_module_error = None;
        let mut split_outcome = None;
        for result in results {
            let r = result?;
            split_outcome = split_outcome.or(r.split);
            stats.merge(&r.stats);
            table.merge(r.table);
            highest = highest.max(r.highest);
            errors.extend(r.errors);
            last_module_error = last_module_error.or(r.last_module_error);
        }
        stats.input_errors = errors.clone();
        stats.module_swaps = slot.swaps();
        stats.set_elapsed(started.elapsed());
        let current = slot.current();
        let mut w = shared
            .lock()
            .map_err(|_| anyhow::anyhow!("output lock poisoned"))?;
        match format {
            Format::Eve => {
                let line = serde_json::json!({
                    "timestamp": linkward_host::report::eve_timestamp(
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_nanos() as u64)),
                    "event_type": "stats",
                    "linkward": {
                        "policy": current.policy_name(),
                        "policy_version": current.version(),
                        "workers": workers,
                        "split": split_outcome,
                        "stats": &stats,
                    }
                });
                serde_json::to_writer(&mut *w, &line)?;
                w.write_all(b"\n")?;
            }
            Format::Table => {
                writeln!(
                    w,
                    "linkward scan: policy {} {}",
                    current.policy_name(),
                    current.version()
                )?;
                write!(w, "{}", table.render())?;
            }
        }
        w.flush()?;
        drop(w);
        if !args.quiet {
            eprint!("{}", stats.render());
            if let Some(e) = last_module_error {
                eprintln!("  last module error: {e}");
            }
        }
        for e in &errors {
            eprintln!("linkward: error: {e}");
        }
        if !errors.is_empty() {
            return Ok(ExitCode::from(2));
        }
        if let (Some(threshold), Some(highest)) = (args.fail_on, highest)
            && highest >= threshold
        {
            return Ok(ExitCode::from(1));
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn records(inputs: &[PathBuf], bpf: Option<String>) -> anyhow::Result<ExitCode> {
    use linkward_host::evaluation::{CollectSink, NullBackend};
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
