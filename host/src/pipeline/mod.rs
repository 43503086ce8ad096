//! The packet pipeline of one worker: decode → track → batch → evaluate → sinks.
//!
//! [`Pipeline`] takes raw frames (with their link type and timestamp) from any
//! source — capture files, a live interface, an appliance's own capture path — and keeps
//! the counts that prove every packet was accounted for.

use crate::evaluation::{Backend, Batcher, FindingSink};
use crate::report::stats::{PacketStats, RunStats};
use crate::subject::{FlowSubject, Subject};
use crate::track::{Tracker, TrackerConfig};
use linkward_capture::{BpfFilterSet, CaptureError, CaptureFile, Packets};
use linkward_decode::{Decoder, DecoderConfig, LinkType, Skip};
use std::io;

mod shared;
mod split;
pub use shared::SharedFile;
pub use split::{FirstHalf, Joined, SecondHalf, SplitFile};

/// Settings of a packet pipeline.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Records per call into the evaluator.
    pub batch_size: usize,
    /// On a module failure, only count it (true) instead of reporting every record of the
    /// batch as an `evaluation-error` (false, the default: fail closed).
    pub fail_open: bool,
    /// A libpcap filter expression applied to every packet before decoding.
    pub bpf: Option<String>,
    pub tracker: TrackerConfig,
    pub decoder: DecoderConfig,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            batch_size: 256,
            fail_open: false,
            bpf: None,
            tracker: TrackerConfig::default(),
            decoder: DecoderConfig::default(),
        }
    }
}

/// How far a scan of a capture file has come, for a progress display.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanProgress {
    /// Records read so far.
    pub records: u64,
    /// The file offset reached.
    pub offset: u64,
}

/// Sees every record on its way to the evaluator.
pub type RecordObserver = Box<dyn FnMut(&Subject) + Send>;

/// Counters of flow-record input (flow logs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowRecordStats {
    /// Tuples read.
    pub tuples: u64,
    /// Tuples that could not be read (each also reported with its position).
    pub malformed: u64,
    /// Flows the tuples made up (a long flow logs many tuples).
    pub flows: u64,
    /// Flows denied by a network security group and not evaluated
    /// (see `include_denied`).
    pub denied_skipped: u64,
}

/// Why a scan could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{0}")]
    Capture(#[from] CaptureError),
    #[error("cannot write findings: {0}")]
    Output(#[from] io::Error),
    #[error("a pipeline made for {pipeline} workers cannot share a file split for {file}")]
    ShardMismatch { pipeline: u64, file: u64 },
    #[error("another worker stopped the scan")]
    WorkerStopped,
}

/// Counts a packet the filter dropped (`matched_link`) or could not be compiled for.
fn count_filtered(stats: &mut PacketStats, frame_len: usize, matched_link: bool) {
    stats.packets_read += 1;
    stats.bytes_read += frame_len as u64;
    if matched_link {
        stats.filtered += 1;
    } else {
        *stats.skipped.entry("bpf-unsupported-link").or_default() += 1;
    }
}

/// Counts a packet that reached the tracker.
fn count_decoded(stats: &mut PacketStats, frame_len: usize) {
    stats.packets_read += 1;
    stats.bytes_read += frame_len as u64;
    stats.decoded += 1;
}

/// Counts a packet the decoder skipped, under its reason.
fn count_skipped(stats: &mut PacketStats, frame_len: usize, skip: &Skip) {
    stats.packets_read += 1;
    stats.bytes_read += frame_len as u64;
    let counts = if skip.is_malformed() {
        &mut stats.malformed
    } else {
        &mut stats.skipped
    };
    *counts.entry(skip.label()).or_default() += 1;
}

/// One worker's pipeline.
pub struct Pipeline {
    decoder: Decoder,
    tracker: Tracker,
    batcher: Batcher,
    bpf: Option<BpfFilterSet>,
    packets: PacketStats,
    flow_records: FlowRecordStats,
    /// `(index, count)` of this worker among the workers of a scan.
    shard: (u64, u64),
    /// Records in the last segment this worker walked of a shared file.
    records_per_segment: u64,
    observer: Option<RecordObserver>,
    /// The counts of a second half this pipeline joined (see [`SplitFile`]).
    joined: Option<RunStats>,
}

impl Pipeline {
    pub fn new(options: &ScanOptions) -> Result<Pipeline, ScanError> {
        let bpf = match &options.bpf {
            Some(expr) => Some(BpfFilterSet::new(expr)?),
            None => None,
        };
        Ok(Pipeline {
            decoder: Decoder::new(options.decoder),
            tracker: Tracker::new(options.tracker.clone()),
            batcher: Batcher::new(options.batch_size, options.fail_open),
            bpf,
            packets: PacketStats::default(),
            flow_records: FlowRecordStats::default(),
            shard: options
                .tracker
                .shard
                .filter(|&(index, count)| count > 1 && index < count)
                .unwrap_or((0, 1)),
            records_per_segment: 0,
            observer: None,
            joined: None,
        })
    }

    /// Feeds one captured frame.
    pub fn feed(
        &mut self,
        link_type: u32,
        frame: &[u8],
        ts_ns: u64,
        input: u32,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
    ) -> Result<(), ScanError> {
        // With several workers, each packet is counted by exactly one of them: its flow's
        // owner, or the first worker for packets that never reach a flow.
        let first_worker = self.shard.0 == 0;
        if let Some(matched_link) = self.filtered_out(link_type, frame) {
            if first_worker {
                count_filtered(&mut self.packets, frame.len(), matched_link);
            }
            return Ok(());
        }
        self.decode_and_track(link_type, frame, ts_ns, input);
        if self.tracker.has_ready() {
            self.evaluate_ready(backend, sink)?;
        }
        Ok(())
    }

    /// `Some` when the filter drops the frame: `true` if the filter rejected it, `false`
    /// if it cannot be compiled for the frame's link type (counted as skipped).
    #[inline]
    fn filtered_out(&mut self, link_type: u32, frame: &[u8]) -> Option<bool> {
        let verdict = self.bpf.as_mut()?.matches(link_type, frame);
        (!matches!(verdict, Ok(true))).then_some(verdict.is_ok())
    }

    /// Decodes a frame that passed the filter with this worker's decoder and tracks it.
    #[inline]
    fn decode_and_track(&mut self, link_type: u32, frame: &[u8], ts_ns: u64, input: u32) {
        // Matched by reference: moving the packet out of the result copies it, and
        // the copy can stall on the decoder's stores still in flight.
        match &self
            .decoder
            .decode(LinkType::from_linktype(link_type), frame, ts_ns)
        {
            Ok(packet) => {
                if self.tracker.on_packet(packet, ts_ns, input) {
                    count_decoded(&mut self.packets, frame.len());
                }
            }
            Err(skip) => {
                if self.shard.0 == 0 {
                    count_skipped(&mut self.packets, frame.len(), skip);
                }
            }
        }
    }

    /// Sees every record as it goes to the evaluator (for record dumps and debugging).
    pub fn set_observer(&mut self, observer: RecordObserver) {
        self.observer = Some(observer);
    }

    /// Submits a flow record that did not come from packets (flow logs, an appliance's
    /// own flow table). It is evaluated in the next batch, like a packet flow.
    pub fn submit_flow(
        &mut self,
        flow: FlowSubject,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
    ) -> Result<(), ScanError> {
        let subject = Subject::Flow(flow);
        if let Some(observe) = &mut self.observer {
            observe(&subject);
        }
        Ok(self.batcher.push(subject, backend, sink)?)
    }

    /// Counters of flow-record input, kept by whoever reads the records.
    pub fn flow_record_stats_mut(&mut self) -> &mut FlowRecordStats {
        &mut self.flow_records
    }

    /// Counts a record the input layer could not deliver as a packet.
    pub fn count_unreadable_record(&mut self) {
        if self.shard.0 != 0 {
            return;
        }
        self.packets.packets_read += 1;
        *self.packets.malformed.entry("capture-record").or_default() += 1;
    }

    fn evaluate_ready(
        &mut self,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
    ) -> Result<(), ScanError> {
        for subject in self.tracker.drain_ready() {
            if let Some(observe) = &mut self.observer {
                observe(&subject);
            }
            self.batcher.push(subject, backend, sink)?;
        }
        Ok(())
    }

    /// Reads a whole capture file. On an error that ends the file early, everything
    /// before it has been processed and the error says how far the file was read.
    pub fn scan_file(
        &mut self,
        file: &CaptureFile,
        input: u32,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
        progress: &mut dyn FnMut(ScanProgress),
    ) -> Result<(), ScanError> {
        self.scan_records(&mut file.packets(), 0, input, backend, sink, progress)?;
        Ok(())
    }

    /// Feeds the records of a walk until it ends; `progress` gets the records read,
    /// counted on from `before` (the count is also returned), and the offset reached.
    fn scan_records(
        &mut self,
        records: &mut Packets<'_>,
        before: u64,
        input: u32,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
        progress: &mut dyn FnMut(ScanProgress),
    ) -> Result<u64, ScanError> {
        let mut n = before;
        // Not a `for` loop: the progress report reads the walk's offset.
        while let Some(record) = records.next() {
            match record {
                Ok(p) => self.feed(p.link_type, p.data, p.ts_ns, input, backend, sink)?,
                Err(e) if e.is_recoverable() => self.count_unreadable_record(),
                Err(e) => return Err(e.into()),
            }
            n += 1;
            if n & 0xffff == 0 {
                progress(ScanProgress {
                    records: n,
                    offset: Packets::position(records),
                });
            }
        }
        progress(ScanProgress {
            records: n,
            offset: Packets::position(records),
        });
        Ok(n)
    }

    /// Evaluates every flow still open and everything batched (end of input).
    pub fn finish(
        &mut self,
        input: u32,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
    ) -> Result<(), ScanError> {
        self.tracker.finish(input);
        self.evaluate_ready(backend, sink)?;
        self.flush(backend, sink)
    }

    /// Advances the clock without a packet: idle flows time out and are evaluated.
    pub fn tick(
        &mut self,
        now_ns: u64,
        input: u32,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
    ) -> Result<(), ScanError> {
        self.tracker.tick(now_ns, input);
        self.evaluate_ready(backend, sink)
    }

    /// Evaluates what is batched now (a quiet live link, or before a module swap).
    pub fn flush(
        &mut self,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
    ) -> Result<(), ScanError> {
        self.evaluate_ready(backend, sink)?;
        self.batcher.flush(backend, sink)?;
        Ok(())
    }

    pub fn pending(&self) -> usize {
        self.batcher.pending()
    }

    pub fn packet_stats(&self) -> &PacketStats {
        &self.packets
    }

    /// This worker's share of the run statistics.
    pub fn stats(&self) -> RunStats {
        let mut s = RunStats {
            packets: self.packets.clone(),
            flow_record_tuples: self.flow_records.tuples,
            flow_record_malformed: self.flow_records.malformed,
            flow_records_denied_skipped: self.flow_records.denied_skipped,
            flow_records_flows: self.flow_records.flows,
            ..RunStats::default()
        };
        s.add_tracking(&self.tracker.stats());
        s.add_evaluation(&self.batcher.stats);
        if let Some(joined) = &self.joined {
            s.merge(joined);
        }
        s
    }

    pub fn last_module_error(&self) -> Option<&str> {
        self.batcher.stats.last_error.as_deref()
    }
}
