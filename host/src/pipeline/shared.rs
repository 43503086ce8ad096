//! One capture file scanned by several workers at once.
//!
//! Walking a large capture costs more than anything done with its packets: every
//! record header is a cache miss, every page a fault. If each worker walked the whole
//! file and kept only its own flows, a second worker could not make a scan much
//! faster. So the file is cut into segments ([`CaptureFile::segments`]) and the
//! workers take turns: worker `w` walks segments `w`, `w + n`, `w + 2n`…, decodes
//! their frames (without state, [`decode_stateless`]) and sorts them into one list
//! per worker by flow hash; then every worker tracks its own list of every segment,
//! in file order. Frames every worker needs go to every list: DNS answers (any
//! worker's clients may use them) and IP fragments (whose reassembly is state kept by
//! each worker's own decoder). Frames that never reach a flow are counted by
//! worker 0.
//!
//! Segment boundaries after the first are guesses. Every worker knows where the walk
//! of the previous segment really stopped; a segment whose walk started anywhere else
//! is walked again from there, so a wrong guess costs time, never a packet. A file
//! that ends in an error ends every worker at the same segment, after the frames
//! before the error, as a walk from the start would.

use super::{Pipeline, ScanError, ScanProgress, count_decoded, count_filtered, count_skipped};
use crate::evaluation::{Backend, FindingSink};
use crate::track::{carries_dns_answer, shard_of};
use linkward_capture::{CaptureFile, Segment};
use linkward_decode::{LinkType, Packet, Skip, decode_stateless};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Segments per worker a file is cut into, at least: enough for the workers to keep
/// each other busy to the end.
const SEGMENTS_PER_WORKER: u64 = 16;
/// Smallest segment worth a turn.
const MIN_SEGMENT: u64 = 256 << 10;
/// Largest segment: what one worker walks before the others can track it, and about
/// what stays resident per worker.
const MAX_SEGMENT: u64 = 4 << 20;
/// Average record size below which sharing a file does not pay: walking short records
/// costs less than handing them from one worker to another (measured on a capture cut
/// at 96 bytes: two workers taking turns took 1.2 times as long as one). Workers then
/// each walk the whole file and track their own flows of it.
const MIN_AVERAGE_RECORD: u64 = 384;

/// A capture file shared by the workers of one scan: the segments and the board on
/// which walked segments wait until every worker has tracked its part.
pub struct SharedFile<'f> {
    file: &'f CaptureFile,
    segments: Vec<Segment>,
    workers: u64,
    board: Mutex<Board<'f>>,
    changed: Condvar,
}

struct Board<'f> {
    /// The walk of each segment, from when it is published until every worker is done.
    walked: Vec<Option<Arc<Walked<'f>>>>,
    /// Workers done with each segment.
    done: Vec<u64>,
    /// A worker failed or panicked: the others stop instead of waiting for it.
    stopped: bool,
    /// Segments before this one are done by every worker.
    done_before: usize,
    /// Where the pages released so far end.
    released_to: u64,
}

/// One segment, walked and sorted.
struct Walked<'f> {
    /// Where the walk started and stopped.
    start: u64,
    end: u64,
    /// Records read, errors included.
    records: u64,
    /// The walk ended at an error that ends the file.
    fatal: bool,
    /// Per worker, its frames of this segment in file order.
    lists: Vec<Vec<Entry<'f>>>,
}

/// A frame on its way to the worker that tracks it.
enum Entry<'f> {
    /// Decoded, for the owner of its flow (or for all, a DNS answer).
    Decoded {
        packet: Packet<'f>,
        ts_ns: u64,
        frame_len: usize,
    },
    /// An IP fragment, for every worker's own decoder.
    Fragment {
        link_type: u32,
        frame: &'f [u8],
        ts_ns: u64,
    },
    /// Skipped by the decoder.
    Skipped { skip: Skip, frame_len: usize },
    /// Dropped by the filter, or on a link the filter cannot be compiled for.
    Filtered {
        frame_len: usize,
        matched_link: bool,
    },
    /// A record the capture reader could not deliver.
    Unreadable,
}

/// How far a worker has tracked the file.
struct Place {
    /// The next segment to track.
    next: usize,
    /// Where the walk of the segment before `next` stopped: where `next` really starts.
    resume_at: u64,
    /// Records before `next`.
    records_before: u64,
}

/// Another worker stopped the scan (its own error says why).
#[derive(Debug)]
struct Stopped;

impl<'f> SharedFile<'f> {
    /// Prepares `file` for `workers` workers. `None` when there is nothing to share:
    /// one worker, a pcapng file (which cannot be entered in the middle), a file too
    /// small for more than one segment, or one of short records (see
    /// `MIN_AVERAGE_RECORD`). Each worker then reads the whole file with
    /// [`Pipeline::scan_file`].
    pub fn new(file: &'f CaptureFile, workers: u64) -> Option<SharedFile<'f>> {
        if workers < 2 {
            return None;
        }
        let target =
            (file.len_bytes() / (workers * SEGMENTS_PER_WORKER)).clamp(MIN_SEGMENT, MAX_SEGMENT);
        let segments = file.segments(target).filter(|s| s.len() > 1)?;
        // The average record size, from a segment in the middle (the start of a
        // capture is often all handshakes). A wrong boundary guess only skews it.
        let middle = segments.get(segments.len() / 2)?;
        let records = file
            .packets_in(middle.start, middle.end, 1)
            .filter(Result::is_ok)
            .count() as u64;
        if records == 0 || (middle.end - middle.start) / records < MIN_AVERAGE_RECORD {
            return None;
        }
        let count = segments.len();
        Some(SharedFile {
            file,
            segments,
            workers,
            board: Mutex::new(Board {
                walked: (0..count).map(|_| None).collect(),
                done: vec![0; count],
                stopped: false,
                done_before: 0,
                released_to: 0,
            }),
            changed: Condvar::new(),
        })
    }

    /// How many segments the file was cut into.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    fn board(&self) -> MutexGuard<'_, Board<'f>> {
        // A worker that panicked while holding the lock left the board consistent
        // (every change is one assignment), and `stopped` tells the others.
        self.board.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, segment: usize, walked: Walked<'f>) {
        let mut board = self.board();
        if let Some(slot) = board.walked.get_mut(segment) {
            *slot = Some(Arc::new(walked));
        }
        drop(board);
        self.changed.notify_all();
    }

    fn wait(&self, segment: usize) -> Result<Arc<Walked<'f>>, Stopped> {
        let mut board = self.board();
        loop {
            if board.stopped {
                return Err(Stopped);
            }
            if let Some(walked) = board.walked.get(segment).and_then(Option::as_ref) {
                return Ok(walked.clone());
            }
            board = self.changed.wait(board).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// One worker is done with `segment`; the last one frees its walk.
    fn finished(&self, segment: usize) {
        let mut board = self.board();
        let Some(done) = board.done.get_mut(segment) else {
            return;
        };
        *done += 1;
        if *done >= self.workers
            && let Some(slot) = board.walked.get_mut(segment)
        {
            *slot = None;
        }
    }

    /// Releases the pages of the segments every worker is done with, once they add up
    /// to a release step from the last release (or reach the end of the file). Each
    /// worker calls this before its walks, so the work falls on both in turn.
    ///
    /// In steps, not segment by segment: a release from a process with several threads
    /// running makes the kernel interrupt every other core to flush its TLB, and at a
    /// release per 4 MiB segment those interrupts were 7 % of a two-worker run.
    fn release_done(&self) {
        let mut board = self.board();
        let workers = self.workers;
        let mut next = board.done_before;
        while board.done.get(next).is_some_and(|&done| done >= workers) {
            next += 1;
        }
        board.done_before = next;
        let at_end = next >= self.segments.len();
        // Where the release will really stop, so that the next one starts there.
        let done_to = self.file.release_end(
            self.segments
                .get(next)
                .map_or(self.file.len_bytes(), |s| s.start),
        );
        let step = u64::try_from(linkward_capture::RELEASE_STEP).unwrap_or(u64::MAX);
        if done_to.saturating_sub(board.released_to) < step && !at_end {
            return;
        }
        let from = std::mem::replace(&mut board.released_to, done_to);
        drop(board);
        if done_to > from {
            self.file.release(from, done_to);
        }
    }

    fn stop(&self) {
        self.board().stopped = true;
        self.changed.notify_all();
    }
}

/// Stops the other workers if this one leaves early (an error or a panic).
struct StopUnlessDone<'a, 'f> {
    shared: &'a SharedFile<'f>,
    done: bool,
}

impl Drop for StopUnlessDone<'_, '_> {
    fn drop(&mut self) {
        if !self.done {
            self.shared.stop();
        }
    }
}

impl Pipeline {
    /// This worker's part of a scan of a file shared by several workers: it walks its
    /// turns of the file and tracks its own flows of all of it. Every worker of the
    /// scan calls this on its own thread, each with a pipeline made with its own
    /// `shard` (see [`TrackerConfig`](crate::track::TrackerConfig)) and the same
    /// `shared`. Findings, statistics and errors are those of
    /// [`scan_file`](Pipeline::scan_file) with that shard; the file's error, if it has
    /// one, is returned by worker 0 alone.
    pub fn scan_shared(
        &mut self,
        shared: &SharedFile<'_>,
        input: u32,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
        progress: &mut dyn FnMut(ScanProgress),
    ) -> Result<(), ScanError> {
        let (worker, workers) = self.shard;
        if workers != shared.workers {
            return Err(ScanError::ShardMismatch {
                pipeline: workers,
                file: shared.workers,
            });
        }
        let mut guard = StopUnlessDone {
            shared,
            done: false,
        };
        let result = self.take_turns(shared, worker, input, backend, sink, progress);
        // A file error is the same for every worker: each stops at it on its own.
        guard.done = !matches!(result, Err(ScanError::Output(_) | ScanError::WorkerStopped));
        result
    }

    fn take_turns(
        &mut self,
        shared: &SharedFile<'_>,
        worker: u64,
        input: u32,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
        progress: &mut dyn FnMut(ScanProgress),
    ) -> Result<(), ScanError> {
        let count = shared.segments.len();
        let workers = usize::try_from(shared.workers).unwrap_or(usize::MAX);
        let first = usize::try_from(worker).unwrap_or(usize::MAX);
        let mut place = Place {
            next: 0,
            resume_at: shared.segments.first().map_or(0, |s| s.start),
            records_before: 0,
        };
        // Walk a turn, then track up to the turn before it: the others never wait
        // for a walk that waits for them, and each worker keeps one walked turn in
        // hand, so a worker briefly slower than the others does not stall them.
        let mut turns = (first..count).step_by(workers.max(1)).peekable();
        while place.next < count {
            shared.release_done();
            let track_to = match turns.next() {
                Some(turn) => {
                    let segment = shared.segments[turn];
                    let walked =
                        self.walk_segment(shared.file, segment.start, segment.end, workers);
                    shared.publish(turn, walked);
                    turns
                        .peek()
                        .map_or(count, |_| turn.saturating_sub(workers - 1))
                }
                None => count,
            };
            while place.next < track_to {
                if !self.track_segment(shared, &mut place, worker, input, backend, sink)? {
                    return Ok(());
                }
                if worker == 0 {
                    progress(ScanProgress {
                        records: place.records_before,
                        offset: place.resume_at,
                    });
                }
            }
        }
        shared.release_done();
        Ok(())
    }

    /// Tracks this worker's frames of segment `place.next`; false when the file ends
    /// there in an error (returned by worker 0).
    fn track_segment(
        &mut self,
        shared: &SharedFile<'_>,
        place: &mut Place,
        worker: u64,
        input: u32,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
    ) -> Result<bool, ScanError> {
        let index = place.next;
        let mut walked = shared
            .wait(index)
            .map_err(|Stopped| ScanError::WorkerStopped)?;
        let segment = shared.segments[index];
        if walked.start != place.resume_at {
            // The guessed boundary was not a record: walk again from the real one.
            let workers = usize::try_from(shared.workers).unwrap_or(usize::MAX);
            walked =
                Arc::new(self.walk_segment(shared.file, place.resume_at, segment.end, workers));
        }
        let own = usize::try_from(worker).unwrap_or(usize::MAX);
        for entry in walked.lists.get(own).into_iter().flatten() {
            self.take(entry, input, backend, sink)?;
        }
        shared.finished(index);
        if walked.fatal {
            if worker == 0 {
                return Err(self.file_error(shared.file, &walked, segment, place.records_before));
            }
            return Ok(false);
        }
        place.resume_at = walked.end;
        place.records_before += walked.records;
        place.next += 1;
        Ok(true)
    }

    /// Walks the records from `start` to the first at or beyond `end` and sorts them
    /// into one list per worker.
    fn walk_segment<'f>(
        &mut self,
        file: &'f CaptureFile,
        start: u64,
        end: u64,
        workers: usize,
    ) -> Walked<'f> {
        // Sized for a fair share of the segment's records (as many as the last walk
        // saw), so the lists rarely grow.
        let expected = self.records_per_segment / workers.max(1) as u64 + 64;
        let mut lists: Vec<Vec<Entry<'f>>> = (0..workers)
            .map(|_| Vec::with_capacity(usize::try_from(expected).unwrap_or(64)))
            .collect();
        let mut records = 0;
        let mut fatal = false;
        let mut packets = file.packets_in(start, end, 1);
        for record in packets.by_ref() {
            let packet = match record {
                Ok(p) => p,
                Err(e) if e.is_recoverable() => {
                    records += 1;
                    lists[0].push(Entry::Unreadable);
                    continue;
                }
                Err(_) => {
                    fatal = true;
                    break;
                }
            };
            records += 1;
            let frame_len = packet.data.len();
            if let Some(matched_link) = self.filtered_out(packet.link_type, packet.data) {
                lists[0].push(Entry::Filtered {
                    frame_len,
                    matched_link,
                });
                continue;
            }
            let ts_ns = packet.ts_ns;
            match decode_stateless(LinkType::from_linktype(packet.link_type), packet.data) {
                Some(Ok(decoded)) => {
                    let entry = || Entry::Decoded {
                        packet: decoded,
                        ts_ns,
                        frame_len,
                    };
                    if carries_dns_answer(&decoded) {
                        lists.iter_mut().for_each(|l| l.push(entry()));
                    } else {
                        let owner = shard_of(&decoded, workers as u64) as usize;
                        if let Some(list) = lists.get_mut(owner) {
                            list.push(entry());
                        }
                    }
                }
                Some(Err(skip)) => lists[0].push(Entry::Skipped { skip, frame_len }),
                None => lists.iter_mut().for_each(|l| {
                    l.push(Entry::Fragment {
                        link_type: packet.link_type,
                        frame: packet.data,
                        ts_ns,
                    })
                }),
            }
        }
        self.records_per_segment = records;
        Walked {
            start,
            end: packets.position(),
            records,
            fatal,
            lists,
        }
    }

    /// Tracks one frame of this worker's list.
    fn take(
        &mut self,
        entry: &Entry<'_>,
        input: u32,
        backend: &mut dyn Backend,
        sink: &mut dyn FindingSink,
    ) -> Result<(), ScanError> {
        match entry {
            Entry::Decoded {
                packet,
                ts_ns,
                frame_len,
            } => {
                // Sorted by the walker: a frame in this list is this worker's, except a
                // DNS answer, which every worker gets.
                let (worker, workers) = self.shard;
                let owned = !carries_dns_answer(packet) || shard_of(packet, workers) == worker;
                if self.tracker.on_sorted_packet(packet, owned, *ts_ns, input) {
                    count_decoded(&mut self.packets, *frame_len);
                }
            }
            Entry::Fragment {
                link_type,
                frame,
                ts_ns,
            } => self.decode_and_track(*link_type, frame, *ts_ns, input),
            Entry::Skipped { skip, frame_len } => {
                count_skipped(&mut self.packets, *frame_len, skip)
            }
            Entry::Filtered {
                frame_len,
                matched_link,
            } => count_filtered(&mut self.packets, *frame_len, *matched_link),
            Entry::Unreadable => self.count_unreadable_record(),
        }
        if self.tracker.has_ready() {
            self.evaluate_ready(backend, sink)?;
        }
        Ok(())
    }

    /// The error that ended the file, numbered from the file's first packet: walked
    /// again, since the walk that found it did not know how many came before.
    fn file_error(
        &self,
        file: &CaptureFile,
        walked: &Walked<'_>,
        segment: Segment,
        records_before: u64,
    ) -> ScanError {
        file.packets_in(
            walked.start,
            segment.end.max(walked.end.saturating_add(1)),
            records_before + 1,
        )
        .find_map(|r| r.err().filter(|e| !e.is_recoverable()))
        .map_or(ScanError::WorkerStopped, ScanError::Capture)
    }
}
