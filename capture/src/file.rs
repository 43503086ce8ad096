//! The zero-copy capture file reader: [`CaptureFile`] and its [`Packets`].
//!
//! The file is memory-mapped once and never copied: every [`RawPacket`]
//! borrows its bytes from the mapping. The format is told by the magic
//! number at the start of the file, never by the file name, because captures
//! are routinely renamed (`.cap`, `.dmp`, no extension at all).

use std::fs::File;
use std::iter::FusedIterator;
use std::path::Path;
use std::sync::Arc;

use crate::error::{CaptureError, ErrorKind};
use crate::{classic, map, pcapng};

/// The largest captured length accepted for a classic pcap record whose
/// length is also above the file's snaplen: 256 KiB, the limit libpcap and
/// Wireshark apply to ordinary link types.
///
/// A classic pcap record has no framing but its own length field, so a
/// length beyond this marks a corrupt record header and the rest of the file
/// cannot be found; reading stops there.
pub const MAX_CAPLEN: u32 = 262_144;

/// The container format of a capture file, found from its magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// Classic libpcap format.
    Pcap {
        /// Nanosecond timestamps (magic `a1b23c4d`) rather than microseconds.
        nanos: bool,
        /// Fields are big-endian (the file was written on a big-endian host).
        big_endian: bool,
    },
    /// The "modified" libpcap format (magic `a1b2cd34`, little-endian,
    /// microseconds) whose record headers carry 8 more bytes (interface
    /// index, protocol, packet type) that this reader skips.
    PcapModified,
    /// pcapng: one or more sections, each with its own byte order and
    /// interfaces.
    PcapNg,
}

/// One packet record of a capture file, borrowed from the file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawPacket<'a> {
    /// 1-based position of the packet record in the file, like tshark's
    /// `frame.number`.
    pub number: u64,
    /// Capture time in nanoseconds since the Unix epoch. Saturates at 0 and
    /// `u64::MAX` (the year 2554) instead of wrapping; a fraction field that
    /// is out of range (microseconds ≥ 1 000 000) simply carries into the
    /// seconds. pcapng simple packet blocks have no timestamp and read as 0.
    pub ts_ns: u64,
    /// The `LINKTYPE_` number of the packet's interface (1 is Ethernet).
    pub link_type: u32,
    /// The interface id within its pcapng section; 0 for classic pcap.
    pub interface: u32,
    /// The captured bytes (caplen of them), borrowed from the file.
    pub data: &'a [u8],
    /// The packet's length on the wire; more than `data.len()` when the
    /// capture cut it at the snaplen.
    pub orig_len: u32,
    /// Byte offset of the packet's record (pcap) or block (pcapng) in the file.
    pub offset: u64,
}

/// A stretch of a classic pcap file between two record boundaries, so several threads
/// can walk one file at once (see [`CaptureFile::segments`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Offset of the segment's first record, as guessed when the file was split.
    pub start: u64,
    /// Offset where the next segment starts (the file's length for the last one): a
    /// walk of this segment stops at the first record at or beyond it.
    pub end: u64,
}

/// A capture file (pcap or pcapng) opened for zero-copy reading.
///
/// Open it once, then walk it with [`packets`](CaptureFile::packets) as
/// many times as needed; walks are independent and can run on several
/// threads at once.
///
/// The mapping is read-only. A file that another process truncates while it
/// is mapped makes reads past the new end fault (`SIGBUS`); for a capture
/// that is still being written, read it with
/// [`from_bytes`](CaptureFile::from_bytes) or
/// [`open_with_libpcap`](crate::open_with_libpcap) instead.
#[derive(Debug)]
pub struct CaptureFile {
    path: Arc<Path>,
    bytes: Bytes,
    format: Format,
    start: Start,
}

#[derive(Debug)]
enum Bytes {
    Mapped(map::Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(map) => map,
            Bytes::Owned(vec) => vec,
        }
    }
}

/// What a walk starts from, decided once when the file is opened.
#[derive(Debug, Clone, Copy)]
enum Start {
    Classic(classic::FileHeader),
    Ng,
}

impl CaptureFile {
    /// Opens and memory-maps a capture file and checks its header.
    ///
    /// Fails if the file cannot be read, is empty (0 bytes), does not start
    /// with a pcap or pcapng magic number (the error shows the first bytes),
    /// or has a truncated or unsupported header. A file with a valid header
    /// and no packets opens fine and yields no packets.
    pub fn open(path: &Path) -> Result<CaptureFile, CaptureError> {
        let path: Arc<Path> = Arc::from(path);
        let file = File::open(&path).map_err(|e| CaptureError::file(&path, ErrorKind::Open(e)))?;
        let len = file
            .metadata()
            .map_err(|e| CaptureError::file(&path, ErrorKind::Open(e)))?
            .len();
        if len == 0 {
            return Err(CaptureError::file(&path, ErrorKind::EmptyFile));
        }
        let mapped =
            map::map_read_only(&file).map_err(|e| CaptureError::file(&path, ErrorKind::Map(e)))?;
        CaptureFile::from_parts(path, Bytes::Mapped(mapped))
    }

    /// Reads a capture held in memory, for input that is not a regular file
    /// (standard input, a pipe, a file still growing) and for tests.
    ///
    /// `name` is only used in error messages. Checks the header as
    /// [`open`](CaptureFile::open) does.
    pub fn from_bytes(name: impl AsRef<Path>, bytes: Vec<u8>) -> Result<CaptureFile, CaptureError> {
        let path: Arc<Path> = Arc::from(name.as_ref());
        if bytes.is_empty() {
            return Err(CaptureError::file(&path, ErrorKind::EmptyFile));
        }
        CaptureFile::from_parts(path, Bytes::Owned(bytes))
    }

    fn from_parts(path: Arc<Path>, bytes: Bytes) -> Result<CaptureFile, CaptureError> {
        let data = bytes.as_slice();
        let magic: [u8; 4] = match data.get(..4).and_then(|m| <[u8; 4]>::try_from(m).ok()) {
            Some(magic) => magic,
            None => {
                let first_bytes = data.to_vec();
                return Err(
                    CaptureError::file(&path, ErrorKind::NotACapture { first_bytes }).at_offset(0),
                );
            }
        };
        let (format, start) = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0xc3, 0xd4]
            | [0xa1, 0xb2, 0x3c, 0x4d]
            | [0x34, 0xcd, 0xb2, 0xa1] => {
                let header = classic::parse_file_header(data, &path)?;
                (header.format(), Start::Classic(header))
            }
            [0xa1, 0xb2, 0xcd, 0x34] => {
                let what = "big-endian modified (Kuznetzov) pcap";
                return Err(CaptureError::file(&path, ErrorKind::Unsupported { what }).at_offset(0));
            }
            [0x0a, 0x0d, 0x0d, 0x0a] => {
                pcapng::check_first_section(data, &path)?;
                (Format::PcapNg, Start::Ng)
            }
            _ => {
                let first_bytes = data.iter().take(16).copied().collect();
                return Err(
                    CaptureError::file(&path, ErrorKind::NotACapture { first_bytes }).at_offset(0),
                );
            }
        };
        Ok(CaptureFile {
            path,
            bytes,
            format,
            start,
        })
    }

    /// The path the file was opened from (or the name given to
    /// [`from_bytes`](CaptureFile::from_bytes)).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The container format, found from the magic number.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The size of the file in bytes, to report progress against
    /// [`Packets::position`].
    pub fn len_bytes(&self) -> u64 {
        usize_to_u64(self.bytes.as_slice().len())
    }

    /// Walks the packet records from the start of the file.
    pub fn packets(&self) -> Packets<'_> {
        let (state, pos) = match self.start {
            Start::Classic(header) => (State::Classic(header), classic::FILE_HEADER_LEN),
            Start::Ng => (State::Ng(pcapng::Section::default()), 0),
        };
        Packets {
            cursor: Cursor {
                bytes: self.bytes.as_slice(),
                path: &self.path,
                pos,
                number: 0,
            },
            state,
            done: false,
            stop_at: usize::MAX,
            mapping: match &self.bytes {
                Bytes::Mapped(map) => Some(map),
                Bytes::Owned(_) => None,
            },
            released: 0,
            stride: 0,
        }
    }

    /// Splits a classic pcap file into segments of about `target_bytes` each, whose
    /// starts are guessed record boundaries, so that threads can walk different parts
    /// of one file at the same time.
    ///
    /// `None` for pcapng, whose packet blocks can only be read with the interfaces
    /// declared before them, that is after a walk from the start. Segments are in file
    /// order, cover everything after the file header, and the first starts at the
    /// first record.
    ///
    /// Boundaries after the first are guesses (a classic record has no marker to find
    /// it by): they are right when the walk of the segment before stops exactly at
    /// them ([`Packets::position`] after [`packets_in`](CaptureFile::packets_in)
    /// ends). A caller that finds otherwise walks on from where that walk stopped.
    ///
    /// The search reads a little at every boundary and releases it at once (see
    /// [`release`](CaptureFile::release)). A page is small, but a file cached in 2 MiB
    /// folios is mapped 2 MiB at a touch: hundreds of boundaries would otherwise hold
    /// half a large capture in memory before any walk begins.
    pub fn segments(&self, target_bytes: u64) -> Option<Vec<Segment>> {
        let Start::Classic(header) = self.start else {
            return None;
        };
        let bytes = self.bytes.as_slice();
        let len = bytes.len();
        let step = usize::try_from(target_bytes.max(1 << 16)).unwrap_or(usize::MAX);
        let mut starts = vec![classic::FILE_HEADER_LEN.min(len)];
        let mut nominal = starts[0].saturating_add(step);
        while nominal < len {
            let limit = nominal.saturating_add(step);
            // Whole huge pages, since a touch maps the whole folio around it (and
            // nobody reads this part of the file yet).
            let searched_from = nominal - nominal % map::HUGE_PAGE;
            match classic::find_record(&header, bytes, nominal, limit) {
                Some(at) => {
                    starts.push(at);
                    nominal = at.saturating_add(step);
                }
                None => nominal = limit,
            }
            let searched_to = limit
                .saturating_add(map::PAGE)
                .div_ceil(map::HUGE_PAGE)
                .saturating_mul(map::HUGE_PAGE);
            self.release(usize_to_u64(searched_from), usize_to_u64(searched_to));
        }
        // Once more over everything searched: a fault maps a whole folio, up to 2 MiB
        // around the byte read, so a search maps again pages an earlier search's
        // release had let go.
        let first_searched = starts[0].saturating_add(step);
        let first_page = first_searched - first_searched % map::HUGE_PAGE;
        self.release(usize_to_u64(first_page), usize_to_u64(len));
        let ends = starts.iter().skip(1).copied().chain([len]);
        Some(
            starts
                .iter()
                .zip(ends)
                .map(|(&start, end)| Segment {
                    start: usize_to_u64(start),
                    end: usize_to_u64(end),
                })
                .collect(),
        )
    }

    /// Walks the records of a classic pcap file from `start` (an offset believed to
    /// begin a record) until the first record at or beyond `end`, numbering them from
    /// `first_number`. Pages are not released behind this walk: whoever splits the
    /// work calls [`release`](CaptureFile::release) once every reader is done.
    ///
    /// For pcapng, which cannot be entered in the middle, it walks the whole file.
    pub fn packets_in(&self, start: u64, end: u64, first_number: u64) -> Packets<'_> {
        let mut packets = self.packets();
        packets.mapping = None;
        if let State::Classic(_) = packets.state {
            packets.cursor.pos = offset_in(start, self.bytes.as_slice().len());
            packets.cursor.number = first_number.saturating_sub(1);
            packets.stop_at = usize::try_from(end).unwrap_or(usize::MAX);
        }
        packets
    }

    /// [`packets_in`](CaptureFile::packets_in) for a walker that has its stretch of the
    /// file to itself: like [`packets`](CaptureFile::packets), it releases the pages
    /// behind it as it goes, so resident memory stays flat whatever the stretch's size.
    pub fn packets_releasing(&self, start: u64, end: u64, first_number: u64) -> Packets<'_> {
        let mut packets = self.packets_in(start, end, first_number);
        if let Bytes::Mapped(map) = &self.bytes {
            packets.mapping = Some(map);
            packets.released = packets.cursor.pos;
        }
        packets
    }

    /// Drops the pages of `start..end` from this process's memory (they stay in the
    /// page cache): for callers of [`packets_in`](CaptureFile::packets_in) that are done
    /// with a segment. Reading those bytes again later still works; it faults them in.
    ///
    /// Like [`linkward_mapfile::release`], it stops at the huge page boundary below
    /// `end` (unless `end` is the end of the file) and returns where it stopped, which
    /// is where the next release should start.
    pub fn release(&self, start: u64, end: u64) -> u64 {
        match &self.bytes {
            Bytes::Mapped(map) => usize_to_u64(map::release(
                map,
                offset_in(start, map.len()),
                offset_in(end, map.len()),
            )),
            _ => end,
        }
    }

    /// Where [`release`](CaptureFile::release)`(_, end)` stops, without releasing
    /// anything: for callers that hand out release ranges to several threads and must
    /// start each where the one before really stopped.
    pub fn release_end(&self, end: u64) -> u64 {
        match &self.bytes {
            Bytes::Mapped(map) => {
                usize_to_u64(map::release_end(map.len(), offset_in(end, map.len())))
            }
            _ => end,
        }
    }
}

/// The position of a walk in the file, shared by the format readers.
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) path: &'a Arc<Path>,
    /// Offset of the next record; never beyond `bytes.len()`.
    pub(crate) pos: usize,
    /// Packet records seen so far.
    pub(crate) number: u64,
}

impl<'a> Cursor<'a> {
    /// The bytes from the next record to the end of the file.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    /// An error about the record at the current position.
    pub(crate) fn error(&self, kind: ErrorKind) -> CaptureError {
        CaptureError::file(self.path, kind).at_offset(usize_to_u64(self.pos))
    }
}

#[derive(Debug)]
enum State {
    Classic(classic::FileHeader),
    Ng(pcapng::Section),
}

/// An iterator over the packets of a [`CaptureFile`], in file order.
///
/// Yields `Err` for a record it cannot read. After an error that is not
/// [recoverable](CaptureError::is_recoverable) (a truncated file, a corrupt
/// record header) it returns `None`; after a recoverable one it goes on with
/// the next record. A truncated file thus yields every complete packet and
/// then one error saying how many packets were read and where the file ends.
#[derive(Debug)]
pub struct Packets<'a> {
    cursor: Cursor<'a>,
    state: State,
    done: bool,
    /// The walk ends at the first record at or beyond this offset.
    stop_at: usize,
    /// The mapping walked, whose pages behind the cursor are released as the walk
    /// goes on (resident memory stays flat whatever the file size).
    mapping: Option<&'a map::Mmap>,
    released: usize,
    /// The length of the last record read, header included: where the walk guesses
    /// the records ahead of it start (see [`RECORDS_AHEAD`]).
    stride: usize,
}

impl Packets<'_> {
    /// Byte offset of the next record to read, for progress reporting.
    pub fn position(&self) -> u64 {
        usize_to_u64(self.cursor.pos)
    }
}

/// How far ahead of the cursor [`Packets`] asks for bytes: a few full-size records,
/// inside the window the kernel maps around each page fault (64 KiB by default) most of
/// the time, since a prefetch of an unmapped page is dropped.
const PREFETCH_AHEAD: usize = 8 << 10;

/// How many records ahead [`Packets`] asks for the first two cache lines of a record
/// (its header and the packet headers the decoder reads), guessing that the records
/// between are as long as the last one. Captures repeat a few record sizes, full-size
/// packets above all, so the guess mostly lands on a record's start; a wrong guess
/// costs two hints and nothing else. Four records ahead is far enough to hide a wait on
/// memory behind the work on the records between (two is not, eight is no better).
const RECORDS_AHEAD: usize = 4;

impl<'a> Iterator for Packets<'a> {
    type Item = Result<RawPacket<'a>, CaptureError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.cursor.pos >= self.stop_at {
            self.done = true;
            return None;
        }
        // Keep one step mapped behind the cursor: the packet handed out last (and a
        // caller that looks back a little) stays resident.
        if let Some(mapping) = self.mapping
            && self.cursor.pos >= self.released + 2 * map::RELEASE_STEP
        {
            let to = self.cursor.pos - map::RELEASE_STEP;
            self.released = map::release(mapping, self.released, to);
        }
        // A walk of full-size packets reads only the first bytes of records 1.5 KB
        // apart, a stride the hardware prefetcher does not follow from page to page, so
        // each header would be a wait on memory. Two kinds of hint overlap those waits
        // with the work on the records before. The first, a fixed distance ahead, has
        // the pages ahead translated early (about a tenth of a run on 1,500-byte
        // packets), but lands wherever that distance falls, mostly inside a payload.
        // The second asks for the very lines the record a few ahead will be read from;
        // without it a walk of full-size packets takes up to 30 % longer
        // (benches/README.md, "Record headers fetched ahead").
        map::prefetch(self.cursor.bytes, self.cursor.pos + PREFETCH_AHEAD);
        let guess = self
            .cursor
            .pos
            .saturating_add(RECORDS_AHEAD.saturating_mul(self.stride));
        map::prefetch(self.cursor.bytes, guess);
        map::prefetch(self.cursor.bytes, guess.saturating_add(64));
        let before = self.cursor.pos;
        let item = match &mut self.state {
            State::Classic(header) => classic::next(header, &mut self.cursor),
            State::Ng(section) => pcapng::next(section, &mut self.cursor),
        };
        self.stride = self.cursor.pos.saturating_sub(before);
        match &item {
            None => self.done = true,
            Some(Err(err)) if !err.is_recoverable() => self.done = true,
            Some(_) => {}
        }
        item
    }
}

impl FusedIterator for Packets<'_> {}

/// A file offset as an index into its `len` bytes, at most `len`.
fn offset_in(offset: u64, len: usize) -> usize {
    usize::try_from(offset).map_or(len, |o| o.min(len))
}

/// Widens a length; `usize` is at most 64 bits on every supported target.
pub(crate) fn usize_to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Reads a `u32` at `at` in the given byte order, `None` past the end.
#[inline]
pub(crate) fn u32_at(bytes: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(raw)
    } else {
        u32::from_le_bytes(raw)
    })
}

/// Reads a `u16` at `at` in the given byte order, `None` past the end.
#[inline]
pub(crate) fn u16_at(bytes: &[u8], at: usize, big_endian: bool) -> Option<u16> {
    let raw: [u8; 2] = bytes.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(if big_endian {
        u16::from_be_bytes(raw)
    } else {
        u16::from_le_bytes(raw)
    })
}
