//! One capture file scanned by two workers, each on one half, and joined afterwards
//! into exactly what one worker scanning the whole file reports.
//!
//! Sharing a file by flow ([`SharedFile`](super::SharedFile)) hands every decoded
//! frame from the worker that walked it to the one that owns its flow, and that hand-off
//! costs about as much as the tracking saved (benches/README.md). Split by position,
//! each worker walks, decodes and tracks its own half with nothing handed over, but
//! the second half starts without the first half's flows and DNS answers. So the
//! second worker *speculates*: it notes every place where its work could depend on
//! that state and holds back what it cannot settle (see `track::split`). The first
//! worker then *joins* the second half: it replays the few flows that were open across
//! the cut on its own state, settles the held records and takes over the counts. If
//! anything the notes cannot prove comes up (flow or DNS tables that would have
//! overflowed, time going backwards across the cut, a fragment open at the cut, the
//! notes outgrowing their bounds, a read error in the second half), the first worker
//! scans the second half itself, as one worker would have: slower, never different.

use super::{Pipeline, ScanError, ScanOptions, ScanProgress};
use crate::evaluation::{Backend, FindingSink};
use crate::report::stats::RunStats;
use linkward_capture::CaptureFile;
use linkward_decode::{LinkType, decode_stateless};

/// The first half's share of the file, in thousandths. Both halves start at once (the
/// module loads beside them). What each half costs depends on the capture: where its
/// connections start, and how many span the cut (their setups and records fall to the
/// first half). On the benchmark capture, where every session starts in the first
/// half, a cut at 47 % measured about 10 % faster, and would cost a capture whose
/// halves are alike about 3 %. The middle bets on neither shape (benches/README.md,
/// "The join without a copy").
const FIRST_HALF_PERMILLE: u64 = 500;
/// Smallest file worth splitting.
const MIN_SPLIT_BYTES: u64 = 1 << 20;
/// Records between two checks of whether the second half gave up.
const GIVE_UP_CHECK: u64 = 4096;

/// Where a classic pcap file is cut in two.
#[derive(Clone, Copy, Debug)]
pub struct SplitFile<'f> {
    file: &'f CaptureFile,
    /// The first record's offset.
    first: u64,
    /// Where the second half starts: a guessed record boundary.
    cut: u64,
}

/// How the first half's walk ended.
#[derive(Clone, Copy, Debug)]
pub struct FirstHalf {
    /// The offset of the first record at or beyond the cut.
    stopped_at: u64,
    /// Records read.
    records: u64,
}

/// The second half, scanned and finished by its own pipeline, waiting to be joined.
pub struct SecondHalf {
    pipeline: Pipeline,
    /// Why its work cannot be used, if it cannot.
    failed: Option<String>,
}

/// How the second half was joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Joined {
    /// Its findings and counts stand (with those the stitch added): the caller keeps
    /// what the second half's sink received.
    Stitched,
    /// The first half's pipeline scanned it again, for the reason given: the caller
    /// drops what the second half's sink received.
    Rescanned { reason: String },
}

impl<'f> SplitFile<'f> {
    /// Cuts `file` at a record boundary guessed near its middle. `None` for pcapng
    /// (which cannot be entered in the middle) and files too small to be worth it.
    pub fn new(file: &'f CaptureFile) -> Option<SplitFile<'f>> {
        if file.len_bytes() < MIN_SPLIT_BYTES {
            return None;
        }
        let share = file.len_bytes() / 1000 * FIRST_HALF_PERMILLE;
        let segments = file.segments(share)?;
        let first = segments.first()?.start;
        let cut = segments.get(1)?.start;
        Some(SplitFile { file, first, cut })
    }

    /// Cuts `file` at `cut`, which the first half's walk checks is a record boundary.
    /// `None` for pcapng.
    pub fn at(file: &'f CaptureFile, cut: u64) -> Option<SplitFile<'f>> {
        let first = file.segments(u64::MAX)?.first()?.start;
        Some(SplitFile { file, first, cut })
    }

    pub fn cut(&self) -> u64 {
        self.cut
    }

    pub fn file(&self) -> &'f CaptureFile {
        self.file
    }
}

impl Pipeline {
    /// Scans the records before the cut, as [`scan_file`](Pipeline::scan_file) scans a
    /// whole file (an error that ends the file ends the scan, reported as there).
    pub fn scan_first_half(
        &mut self,
        split: &SplitFile<'_>,
        input: u32,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
        progress: &mut dyn FnMut(ScanProgress),
    ) -> Result<FirstHalf, ScanError> {
        let mut packets = split.file.packets_releasing(split.first, split.cut, 1);
        let records = self.scan_records(&mut packets, 0, input, backend, sink, progress)?;
        Ok(FirstHalf {
            stopped_at: packets.position(),
            records,
        })
    }

    /// Scans the records from the cut to the end with a pipeline of its own, which
    /// speculates (see the module's documentation), and finishes it. Its findings go
    /// to `sink` at once; they stand only if [`join_second_half`](Pipeline::join_second_half)
    /// says [`Joined::Stitched`].
    pub fn scan_second_half(
        options: &ScanOptions,
        split: &SplitFile<'_>,
        input: u32,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
    ) -> Result<SecondHalf, ScanError> {
        let mut options = options.clone();
        options.tracker.shard = None;
        let mut pipeline = Pipeline::new(&options)?;
        pipeline.tracker.speculate();
        let mut failed = None;
        let mut records = 0u64;
        for record in split
            .file
            .packets_releasing(split.cut, split.file.len_bytes(), 1)
        {
            match record {
                Ok(p) => {
                    pipeline.tracker.note_offset(p.offset);
                    pipeline.feed(p.link_type, p.data, p.ts_ns, input, backend, sink)?;
                }
                Err(e) if e.is_recoverable() => pipeline.count_unreadable_record(),
                // Its packet number counts from the cut: the first half's pipeline
                // meets it again, numbered from the start.
                Err(e) => {
                    failed = Some(format!("the second half ends in an error: {e}"));
                    break;
                }
            }
            records += 1;
            if records.is_multiple_of(GIVE_UP_CHECK) && pipeline.tracker.gave_up().is_some() {
                break;
            }
        }
        // A half that already cannot be used is not finished: finishing evaluates
        // every flow it still has, for findings that would be thrown away.
        if failed.is_none() && pipeline.tracker.gave_up().is_none() {
            pipeline.finish(input, backend, sink)?;
        }
        if let Some(why) = pipeline.tracker.gave_up() {
            failed.get_or_insert_with(|| why.to_string());
        }
        Ok(SecondHalf { pipeline, failed })
    }

    /// Joins `second` after this pipeline scanned `first` (see the module's
    /// documentation). Either way, this pipeline then stands where one pipeline that
    /// scanned the whole file stands before [`finish`](Pipeline::finish).
    #[allow(clippy::too_many_arguments)]
    pub fn join_second_half(
        &mut self,
        split: &SplitFile<'_>,
        first: &FirstHalf,
        second: Result<SecondHalf, ScanError>,
        input: u32,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
        progress: &mut dyn FnMut(ScanProgress),
    ) -> Result<Joined, ScanError> {
        if self.shard.1 != 1 {
            return Err(ScanError::ShardMismatch {
                pipeline: self.shard.1,
                file: 1,
            });
        }
        let stitched = self.stitch_second_half(split, first, second, input);
        match stitched {
            Ok(later) => {
                match &mut self.joined {
                    Some(joined) => joined.merge(&later),
                    None => self.joined = Some(later),
                }
                self.evaluate_ready(backend, sink)?;
                Ok(Joined::Stitched)
            }
            Err(reason) => {
                let mut rest = split.file.packets_releasing(
                    first.stopped_at,
                    split.file.len_bytes(),
                    first.records + 1,
                );
                self.scan_records(&mut rest, first.records, input, backend, sink, progress)?;
                Ok(Joined::Rescanned { reason })
            }
        }
    }

    /// The second half's counts if its work stands once this pipeline has taken it
    /// over, or why it does not.
    fn stitch_second_half(
        &mut self,
        split: &SplitFile<'_>,
        first: &FirstHalf,
        second: Result<SecondHalf, ScanError>,
        input: u32,
    ) -> Result<RunStats, String> {
        if first.stopped_at != split.cut {
            return Err("the cut was not at a record boundary".to_string());
        }
        let second = second.map_err(|e| format!("the second half failed: {e}"))?;
        if let Some(why) = second.failed {
            return Err(why);
        }
        if self.decoder.fragment_stats().pending > 0 {
            return Err("an IP datagram's fragments span the cut".to_string());
        }
        let mut later = RunStats {
            packets: second.pipeline.packets,
            ..RunStats::default()
        };
        later.add_evaluation(&second.pipeline.batcher.stats);
        let (file, end) = (split.file, split.file.len_bytes());
        self.tracker
            .stitch(second.pipeline.tracker, input, |offset| {
                let record = file.packets_in(offset, end, 1).next()?.ok()?;
                let link = LinkType::from_linktype(record.link_type);
                let packet = decode_stateless(link, record.data)?.ok()?;
                Some((packet, record.ts_ns))
            })
            .map_err(str::to_string)?;
        Ok(later)
    }
}
