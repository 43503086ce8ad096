//! Batching records into the evaluator, and what comes back.
//!
//! Records are appended to packed batches (one for flows, one for DNS answers); a batch
//! crosses into the evaluator when it is full or when the caller flushes, so the guest is
//! called per batch, never per packet. A failed batch is reported per record as an
//! `evaluation-error` (fail-closed, the default) or only counted (fail-open).

use crate::sandbox::{LoadedModule, Sandbox};
use crate::subject::{DnsSubject, FlowSubject, Subject};
use linkward_guest::Evaluator;
use linkward_guest::packed::{self, DnsBatchWriter, FlowBatchWriter};
use linkward_guest::record::Finding;
use linkward_guest::vocab::{Action, FindingKind, Severity};
use std::io;
use std::sync::Arc;

/// What a report is: a finding of the policy, or the host's own note that a record
/// could not be evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReportKind {
    Finding(FindingKind),
    EvaluationError,
}

impl ReportKind {
    pub fn id(self) -> &'static str {
        match self {
            ReportKind::Finding(k) => k.id(),
            ReportKind::EvaluationError => "evaluation-error",
        }
    }
}

/// One finding about one subject, with the policy that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub kind: ReportKind,
    pub rule: String,
    pub severity: Severity,
    pub action: Action,
    pub line: u32,
    pub reason: String,
    pub policy: Arc<str>,
    pub policy_version: Arc<str>,
}

/// Where reports go. Sinks see every report in evaluation order.
pub trait FindingSink {
    fn report(&mut self, subject: &Subject, report: &Report) -> io::Result<()>;
    /// Called after every batch: a good moment to flush buffered output.
    fn batch_done(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Collects reports in memory (tests, library users).
#[derive(Default, Debug)]
pub struct CollectSink {
    pub reports: Vec<(Subject, Report)>,
}

impl FindingSink for CollectSink {
    fn report(&mut self, subject: &Subject, report: &Report) -> io::Result<()> {
        self.reports.push((subject.clone(), report.clone()));
        Ok(())
    }
}

/// Calls a closure for every report (library users).
pub struct FnSink<F: FnMut(&Subject, &Report)>(pub F);

impl<F: FnMut(&Subject, &Report)> FindingSink for FnSink<F> {
    fn report(&mut self, subject: &Subject, report: &Report) -> io::Result<()> {
        (self.0)(subject, report);
        Ok(())
    }
}

/// Sends every report over a channel, to be consumed on another thread. A closed
/// receiver is an error, so a pipeline whose consumer went away stops.
pub struct ChannelSink(pub std::sync::mpsc::Sender<(Subject, Report)>);

impl FindingSink for ChannelSink {
    fn report(&mut self, subject: &Subject, report: &Report) -> io::Result<()> {
        self.0
            .send((subject.clone(), report.clone()))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "finding receiver is gone"))
    }
}

/// Sends every report to each of several sinks.
pub struct TeeSink<'a>(pub Vec<&'a mut dyn FindingSink>);

impl FindingSink for TeeSink<'_> {
    fn report(&mut self, subject: &Subject, report: &Report) -> io::Result<()> {
        for s in &mut self.0 {
            s.report(subject, report)?;
        }
        Ok(())
    }

    fn batch_done(&mut self) -> io::Result<()> {
        for s in &mut self.0 {
            s.batch_done()?;
        }
        Ok(())
    }
}

/// Something that evaluates packed batches: a sandboxed module or the native evaluator.
pub trait Backend {
    fn evaluate_flows(&mut self, batch: &[u8], records: usize) -> Result<Vec<Finding>, String>;
    fn evaluate_dns(&mut self, batch: &[u8], records: usize) -> Result<Vec<Finding>, String>;
    /// (policy name, policy version) stamped on every report.
    fn policy(&self) -> (Arc<str>, Arc<str>);
    /// Whether a batch can be evaluated now without waiting. A backend whose module is
    /// still loading says no; the batcher then keeps collecting, up to
    /// [`DEFERRED_BATCHES`] batches, so that tracking goes on meanwhile.
    fn ready(&mut self) -> bool {
        true
    }
}

/// Batches a batcher collects at most while its backend is not ready; beyond that it
/// evaluates (and waits), which bounds the memory of records held back.
pub const DEFERRED_BATCHES: usize = 16;

/// The sandboxed backend: a module instance in wasmtime.
pub struct SandboxBackend {
    sandbox: Sandbox,
    name: Arc<str>,
    version: Arc<str>,
}

impl SandboxBackend {
    pub fn new(module: &LoadedModule) -> SandboxBackend {
        SandboxBackend {
            sandbox: module.sandbox(),
            name: module.policy_name().into(),
            version: module.version().into(),
        }
    }

    pub fn module(&self) -> &LoadedModule {
        self.sandbox.module()
    }
}

impl Backend for SandboxBackend {
    fn evaluate_flows(&mut self, batch: &[u8], records: usize) -> Result<Vec<Finding>, String> {
        self.sandbox
            .evaluate_flows_packed(batch, records)
            .map_err(|e| e.to_string())
    }

    fn evaluate_dns(&mut self, batch: &[u8], records: usize) -> Result<Vec<Finding>, String> {
        self.sandbox
            .evaluate_dns_packed(batch, records)
            .map_err(|e| e.to_string())
    }

    fn policy(&self) -> (Arc<str>, Arc<str>) {
        (self.name.clone(), self.version.clone())
    }
}

/// The same evaluator compiled natively: no sandbox, for embedding and comparison.
pub struct NativeBackend {
    evaluator: Arc<Evaluator>,
    name: Arc<str>,
    version: Arc<str>,
}

impl NativeBackend {
    pub fn new(evaluator: Arc<Evaluator>) -> NativeBackend {
        let meta = &evaluator.image().meta;
        NativeBackend {
            name: meta.policy_name.as_str().into(),
            version: meta.policy_version.as_str().into(),
            evaluator,
        }
    }
}

impl Backend for NativeBackend {
    fn evaluate_flows(&mut self, batch: &[u8], _records: usize) -> Result<Vec<Finding>, String> {
        let mut out = Vec::new();
        let e = &self.evaluator;
        e.evaluate_flow_batch(batch, &mut out)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    fn evaluate_dns(&mut self, batch: &[u8], _records: usize) -> Result<Vec<Finding>, String> {
        let mut out = Vec::new();
        let e = &self.evaluator;
        packed::read_dns(batch, |i, d| e.evaluate_dns(i, d, &mut out))
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    fn policy(&self) -> (Arc<str>, Arc<str>) {
        (self.name.clone(), self.version.clone())
    }
}

/// Counters of the evaluation stage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EvalStats {
    pub flows_evaluated: u64,
    pub dns_evaluated: u64,
    pub batches: u64,
    pub module_errors: u64,
    /// Reports by kind id, in a fixed order for output.
    pub reports: std::collections::BTreeMap<&'static str, u64>,
    /// The last module error, for the summary.
    pub last_error: Option<String>,
}

/// Accumulates records into packed batches and evaluates them.
pub struct Batcher {
    batch_size: usize,
    fail_open: bool,
    flows: Vec<Subject>,
    flow_batch: FlowBatchWriter,
    dns: Vec<Subject>,
    dns_batch: DnsBatchWriter,
    pub stats: EvalStats,
}

impl Batcher {
    pub fn new(batch_size: usize, fail_open: bool) -> Batcher {
        Batcher {
            batch_size: batch_size.max(1),
            fail_open,
            flows: Vec::with_capacity(batch_size),
            flow_batch: FlowBatchWriter::new(),
            dns: Vec::new(),
            dns_batch: DnsBatchWriter::new(),
            stats: EvalStats::default(),
        }
    }

    pub fn pending(&self) -> usize {
        self.flows.len() + self.dns.len()
    }

    /// Adds a record of either kind.
    pub fn push(
        &mut self,
        subject: Subject,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
    ) -> io::Result<()> {
        match subject {
            Subject::Flow(f) => self.push_flow(f, backend, sink),
            Subject::Dns(d) => self.push_dns(d, backend, sink),
        }
    }

    pub fn push_flow(
        &mut self,
        flow: FlowSubject,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
    ) -> io::Result<()> {
        let chain: Vec<&str> = flow.cname_chain.iter().map(|c| &**c).collect();
        self.flow_batch.push(&flow.view(), &chain);
        self.flows.push(Subject::Flow(flow));
        if self.due(self.flows.len(), backend) {
            self.flush_flows(backend, sink)?;
        }
        Ok(())
    }

    pub fn push_dns(
        &mut self,
        answer: DnsSubject,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
    ) -> io::Result<()> {
        self.dns_batch.push(&answer.view());
        self.dns.push(Subject::Dns(answer));
        if self.due(self.dns.len(), backend) {
            self.flush_dns(backend, sink)?;
        }
        Ok(())
    }

    /// Whether `pending` records of one kind are evaluated now: a full batch, unless
    /// the backend is not ready and fewer than [`DEFERRED_BATCHES`] are waiting.
    fn due(&self, pending: usize, backend: &mut dyn Backend) -> bool {
        pending >= self.batch_size
            && (pending >= self.batch_size.saturating_mul(DEFERRED_BATCHES) || backend.ready())
    }

    /// Evaluates everything pending. DNS answers go first: they are older than the flows
    /// that use their names.
    pub fn flush(
        &mut self,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
    ) -> io::Result<()> {
        self.flush_dns(backend, sink)?;
        self.flush_flows(backend, sink)
    }

    fn flush_flows(
        &mut self,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
    ) -> io::Result<()> {
        if self.flows.is_empty() {
            return Ok(());
        }
        let result = backend.evaluate_flows(self.flow_batch.bytes(), self.flows.len());
        self.stats.flows_evaluated += self.flows.len() as u64;
        let subjects = std::mem::take(&mut self.flows);
        self.deliver(result, &subjects, backend, sink)?;
        self.flows = subjects;
        self.flows.clear();
        self.flow_batch.clear();
        Ok(())
    }

    fn flush_dns(
        &mut self,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
    ) -> io::Result<()> {
        if self.dns.is_empty() {
            return Ok(());
        }
        let result = backend.evaluate_dns(self.dns_batch.bytes(), self.dns.len());
        self.stats.dns_evaluated += self.dns.len() as u64;
        let subjects = std::mem::take(&mut self.dns);
        self.deliver(result, &subjects, backend, sink)?;
        self.dns = subjects;
        self.dns.clear();
        self.dns_batch.clear();
        Ok(())
    }

    fn deliver(
        &mut self,
        result: Result<Vec<Finding>, String>,
        subjects: &[Subject],
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
    ) -> io::Result<()> {
        self.stats.batches += 1;
        let (policy, policy_version) = backend.policy();
        match result {
            Ok(findings) => {
                for f in findings {
                    let Some(subject) = subjects.get(f.index as usize) else {
                        continue;
                    };
                    let kind = ReportKind::Finding(f.kind);
                    *self.stats.reports.entry(kind.id()).or_default() += 1;
                    let report = Report {
                        kind,
                        rule: f.rule,
                        severity: f.severity,
                        action: f.action,
                        line: f.line,
                        reason: f.reason,
                        policy: policy.clone(),
                        policy_version: policy_version.clone(),
                    };
                    sink.report(subject, &report)?;
                }
            }
            Err(why) => {
                self.stats.module_errors += 1;
                if !self.fail_open {
                    let reason = format!("the policy module failed on this batch: {why}");
                    for subject in subjects {
                        *self.stats.reports.entry("evaluation-error").or_default() += 1;
                        let report = Report {
                            kind: ReportKind::EvaluationError,
                            rule: "evaluation-error".into(),
                            severity: Severity::High,
                            action: Action::Deny,
                            line: 0,
                            reason: reason.clone(),
                            policy: policy.clone(),
                            policy_version: policy_version.clone(),
                        };
                        sink.report(subject, &report)?;
                    }
                }
                self.stats.last_error = Some(why);
            }
        }
        sink.batch_done()
    }
}

/// A backend that finds nothing: for record dumps, where no policy is involved.
pub struct NullBackend;

impl Backend for NullBackend {
    fn evaluate_flows(&mut self, _batch: &[u8], _records: usize) -> Result<Vec<Finding>, String> {
        Ok(Vec::new())
    }

    fn evaluate_dns(&mut self, _batch: &[u8], _records: usize) -> Result<Vec<Finding>, String> {
        Ok(Vec::new())
    }

    fn policy(&self) -> (Arc<str>, Arc<str>) {
        ("none".into(), "none".into())
    }
}
