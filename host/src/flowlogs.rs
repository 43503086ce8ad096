//! Flow logs as input: Azure VNet and NSG flow logs and JSON-lines flow records, streamed
//! from disk, aggregated so that a long flow (begin, continue…, end tuples) is evaluated
//! once, and evaluated through the same pipeline as packet flows.

use crate::evaluation::{Backend, FindingSink};
use crate::pipeline::{Pipeline, ScanError};
use crate::subject::FlowSubject;
use linkward_flowlog::{
    FlowAggregator, FlowEvent, FlowLogError, MalformedTuple, TupleEvent, read_flow_log_file,
};
use std::path::Path;
use std::sync::Arc;

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

/// True when the file looks like a flow log (JSON) rather than a capture.
pub fn looks_like_flow_log(head: &[u8]) -> bool {
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    text.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{' || *b == b'[')
}

fn describe(name: &str, m: &MalformedTuple) -> String {
    format!("{name}: {m}")
}

/// Reads one flow-log file and evaluates its flows through `pipeline`.
pub fn scan_flow_log(
    pipeline: &mut Pipeline,
    path: &Path,
    input: u32,
    options: &FlowLogOptions,
    backend: &mut dyn Backend,
    sink: &mut dyn FindingSink,
) -> Result<FlowLogOutcome, ScanError> {
    let name = path.display().to_string();
    let mut aggregator = FlowAggregator::new(options.max_flows.max(1));
    let mut outcome = FlowLogOutcome::default();
    let mut opened = Vec::new();
    let mut failure: Option<ScanError> = None;
    let mut evaluate = |pipeline: &mut Pipeline,
                        opened: &mut Vec<linkward_flowlog::AggregatedFlow>,
                        failure: &mut Option<ScanError>| {
        for flow in opened.drain(..) {
            let stats = pipeline.flow_record_stats_mut();
            stats.flows += 1;
            if flow.denied && !options.include_denied {
                stats.denied_skipped += 1;
                continue;
            }
            let subject = subject_of(&flow, input);
            if let Err(e) = pipeline.submit_flow(subject, backend, sink) {
                failure.get_or_insert(e);
            }
        }
    };
    let result = read_flow_log_file(path, |event| match event {
        TupleEvent::Tuple(tuple) => {
            pipeline.flow_record_stats_mut().tuples += 1;
            aggregator.push(&tuple, |e| {
                if let FlowEvent::Opened(flow) = e {
                    opened.push(flow);
                }
            });
            if !opened.is_empty() {
                evaluate(pipeline, &mut opened, &mut failure);
            }
        }
        TupleEvent::Malformed(m) => {
            pipeline.flow_record_stats_mut().malformed += 1;
            if outcome.malformed.len() < options.max_reported_malformed {
                outcome.malformed.push(describe(&name, &m));
            }
        }
    });
    aggregator.finish(|e| {
        if let FlowEvent::Opened(flow) = e {
            opened.push(flow);
        }
    });
    evaluate(pipeline, &mut opened, &mut failure);
    if let Some(e) = failure {
        return Err(e);
    }
    if let Err(e) = result {
        outcome.error = Some(e);
    }
    Ok(outcome)
}

fn subject_of(flow: &linkward_flowlog::AggregatedFlow, input: u32) -> FlowSubject {
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
        cname_chain: Arc::from(Vec::new()),
        sni: flow
            .sni
            .as_deref()
            .map(|s| s.to_ascii_lowercase().into_boxed_str()),
        http_host: flow
            .http_host
            .as_deref()
            .map(|s| s.to_ascii_lowercase().into_boxed_str()),
        // JSON-lines records with names are as good as packets for the checks.
        from_flow_log: flow.name.is_none() && flow.sni.is_none() && flow.http_host.is_none(),
        denied_by_nsg: flow.denied,
        log_rule: flow.rule.clone(),
        input,
    }
}
