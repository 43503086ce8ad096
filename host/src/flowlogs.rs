//! Flow logs as input: Azure VNet and NSG flow logs and JSON-lines flow records, streamed
//! from disk, aggregated so that a long flow (begin, continue…, end tuples) is evaluated
//! once, and evaluated through the same pipeline as packet flows.

use crate::evaluation::{Backend, FindingSink};
use crate::pipeline::{Pipeline, ScanError};
use crate::subject::FlowSubject;
use linkward_flowlog::{
    AggregatedFlow, FlowAggregator, FlowChange, FlowLogError, MalformedTuple, TupleEventRef,
    read_flow_log_file_lent,
};
use std::path::Path;

/// Settings of flow-log input.
#[derive(Clone, Debug)]
pub struct FlowLogOptions {
    /// Evaluate flows a network security group denied (they are reported with that
    /// fact); by default they are counted and left out, since they never reached
    /// anything.
    pub include_denied: bool,
    /// Most flows the aggregator remembers at once.
    pub max_flows: usize,
    /// Malformed tuples whose description is kept for the report (all are counted).
    pub max_reported_malformed: usize,
}

impl Default for FlowLogOptions {
    fn default() -> Self {
        FlowLogOptions {
            include_denied: false,
            max_flows: 1 << 20,
            max_reported_malformed: 20,
        }
    }
}

/// What reading one flow-log file produced besides findings.
#[derive(Debug, Default)]
pub struct FlowLogOutcome {
    /// Descriptions of malformed tuples ("file: record R, …, tuple T: what"), at most
    /// `max_reported_malformed`.
    pub malformed: Vec<String>,
    /// The error that stopped reading the file early, if any; everything before it was
    /// evaluated.
    pub error: Option<FlowLogError>,
}

/// True when the bytes look like a flow log (JSON) rather than a capture: after a
/// byte-order mark and any whitespace, the first byte opens a JSON object or array.
/// `None` when `head` is only whitespace so far (read more to decide).
pub fn looks_like_flow_log(head: &[u8]) -> Option<bool> {
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    text.iter()
        .find(|b| !b.is_ascii_whitespace())
        .map(|b| *b == b'{' || *b == b'[')
}

/// Decides whether the file at `path` is a flow log, reading past any amount of
/// leading whitespace (up to 1 MiB).
pub fn is_flow_log_file(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 8192];
    while head.len() < (1 << 20) {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            return Ok(false);
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(answer) = looks_like_flow_log(&head) {
            return Ok(answer);
        }
    }
    Ok(false)
}

fn describe(name: &str, m: &MalformedTuple) -> String {
    format!("{name}: {m}")
}

/// Reads flow-log files one after the other and evaluates their flows through a
/// pipeline. One aggregator spans all files, so a flow that continues from one hourly
/// blob into the next is evaluated once; [`FlowLogReader::finish`] closes the flows
/// still open at the end.
pub struct FlowLogReader {
    aggregator: FlowAggregator,
    options: FlowLogOptions,
}

impl FlowLogReader {
    pub fn new(options: FlowLogOptions) -> FlowLogReader {
        FlowLogReader {
            aggregator: FlowAggregator::new(options.max_flows.max(1)),
            options,
        }
    }

    /// Reads one file; each flow is evaluated as soon as its first tuple arrives,
    /// straight from the aggregator's event (no queue in between).
    pub fn read_file(
        &mut self,
        pipeline: &mut Pipeline,
        path: &Path,
        input: u32,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
    ) -> Result<FlowLogOutcome, ScanError> {
        let name = path.display().to_string();
        let mut outcome = FlowLogOutcome::default();
        let mut failure: Option<ScanError> = None;
        let aggregator = &mut self.aggregator;
        let options = &self.options;
        let result = read_flow_log_file_lent(path, |event| match event {
            TupleEventRef::Tuple(tuple) => {
                pipeline.flow_record_stats_mut().tuples += 1;
                aggregator.push_lent(tuple, |e| {
                    if let FlowChange::Opened(flow) = e
                        && let Err(e) = evaluate(options, flow, pipeline, input, backend, sink)
                    {
                        failure.get_or_insert(e);
                    }
                });
            }
            TupleEventRef::Malformed(m) => {
                pipeline.flow_record_stats_mut().malformed += 1;
                if outcome.malformed.len() < options.max_reported_malformed {
                    outcome.malformed.push(describe(&name, m));
                }
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        if let Err(e) = result {
            outcome.error = Some(e);
        }
        Ok(outcome)
    }

    /// Ends the input: flows still open are closed. They were evaluated when they
    /// opened and closing a flow evaluates nothing, so this cannot fail today; the
    /// signature keeps room for closing evaluations.
    pub fn finish(
        &mut self,
        _pipeline: &mut Pipeline,
        _input: u32,
        _backend: &mut dyn Backend,
        _sink: &mut dyn FindingSink,
    ) -> Result<(), ScanError> {
        self.aggregator.finish(|_| {});
        Ok(())
    }
}

/// Counts a newly opened flow and hands it to the pipeline, unless it was denied and
/// denied flows are left out.
fn evaluate(
    options: &FlowLogOptions,
    flow: &AggregatedFlow,
    pipeline: &mut Pipeline,
    input: u32,
    backend: &mut dyn Backend,
    sink: &mut dyn FindingSink,
) -> Result<(), ScanError> {
    let stats = pipeline.flow_record_stats_mut();
    stats.flows += 1;
    if flow.denied && !options.include_denied {
        stats.denied_skipped += 1;
        return Ok(());
    }
    pipeline.submit_flow(subject_of(flow, input), backend, sink)
}

/// Reads one flow-log file on its own (its open flows are closed at its end) and
/// evaluates its flows through `pipeline`.
pub fn scan_flow_log(
    pipeline: &mut Pipeline,
    path: &Path,
    input: u32,
    options: &FlowLogOptions,
    backend: &mut dyn Backend,
    sink: &mut dyn FindingSink,
) -> Result<FlowLogOutcome, ScanError> {
    let mut reader = FlowLogReader::new(options.clone());
    let outcome = reader.read_file(pipeline, path, input, backend, sink)?;
    reader.finish(pipeline, input, backend, sink)?;
    Ok(outcome)
}

fn subject_of(flow: &AggregatedFlow, input: u32) -> FlowSubject {
    let k = &flow.key;
    FlowSubject {
        src: k.src,
        dst: k.dst,
        src_port: k.src_port,
        dst_port: k.dst_port,
        protocol: k.protocol,
        first_seen_ns: flow.first_time_ns,
        last_seen_ns: flow.last_time_ns,
        packets: flow.packets_sent + flow.packets_received,
        bytes: flow.bytes_sent + flow.bytes_received,
        resolved_name: flow.name.clone(),
        cname_chain: crate::subject::empty_chain(),
        sni: flow.sni.as_deref().map(|s| s.to_ascii_lowercase().into()),
        http_host: flow
            .http_host
            .as_deref()
            .map(|s| s.to_ascii_lowercase().into()),
        // JSON-lines records with names are as good as packets for the checks.
        from_flow_log: flow.name.is_none() && flow.sni.is_none() && flow.http_host.is_none(),
        denied_by_nsg: flow.denied,
        log_rule: flow.rule.clone(),
        input,
    }
}
