//! Read-only file mappings for inputs read front to back (captures, flow logs), and
//! the release of the pages a reader has left behind.
//!
//! Parsing a file as one byte slice borrows from it instead of copying, and lets the
//! kernel map pages in bulk; releasing the pages behind the reader keeps the resident
//! set flat however large the file is (the pages stay in the page cache for other
//! readers).
//!
//! This is the one place the workspace needs `unsafe` for files (and for the one CPU
//! hint a walk over them gives, [`prefetch`]): mapping a file is `unsafe` in Rust
//! because another process could change or truncate it while it is mapped, which the
//! type system cannot see. Truncation raises SIGBUS rather than reading stale memory;
//! callers document it and offer a copying reader for files that may change.

use std::fs::File;
use std::io;

pub use memmap2::Mmap;

/// The page size releases are aligned to.
pub const PAGE: usize = 4096;

/// How far a reader moves between two releases of the pages behind it: large enough
/// that the calls (and the TLB flushes they cause) are rare, small enough that what
/// stays resident is a few tens of MiB.
pub const RELEASE_STEP: usize = 16 << 20;

/// Maps `file` read-only and tells the kernel it will be read in order, so that
/// read-ahead keeps the reader from waiting on page faults.
///
/// How much the kernel then spends mapping the file depends on how the page cache
/// holds it, which the reader does not choose: a file read from disk by anyone (on
/// Linux with large folios in the page cache, as ext4 and XFS have now) is cached in
/// folios of up to 2 MiB, and each fault maps up to 2 MiB; a file still cached from
/// being written is in 4 KiB pages, mapped sixteen at a fault. For a capture read
/// front to back that is most of the system time of a run (see benches/README.md).
pub fn map_read_only(file: &File) -> io::Result<Mmap> {
    // SAFETY: the mapping is read-only and private to this process, and its bytes are
    // only read through `&[u8]` with bounds checks, so no value can hold an invalid
    // state. The remaining hazard, another process truncating the file, is the one the
    // crate documentation names.
    let map = unsafe { Mmap::map(file)? };
    #[cfg(unix)]
    {
        // Only a hint: a kernel that ignores it still reads correctly.
        let _ = map.advise(memmap2::Advice::Sequential);
    }
    Ok(map)
}

/// The largest unit a fault maps: a file cached in large folios (see [`map_read_only`])
/// is mapped up to 2 MiB at a time, with one page-table entry for an aligned 2 MiB.
pub const HUGE_PAGE: usize = 2 << 20;

/// Tells the kernel this process no longer needs the pages of `map[from..to]`, for a
/// reader that has moved on to `to`. Returns where the next release should start.
///
/// The range ends at a [`HUGE_PAGE`] boundary below `to` (or at the end of the map when
/// `to` reaches it), so what is still ahead of the reader stays mapped and the release
/// never cuts a 2 MiB mapping in two. A cut costs the kernel a split of that mapping
/// and, in a process whose other threads are running, a TLB flush on every other core
/// besides the one the release itself needs: with the cuts, TLB-flush interrupts were
/// 5 % of a two-worker scan's samples, without them 2.5 %. The range starts at the
/// first whole page at or after `from`; the returned place is `from` when nothing
/// could be released.
pub fn release(map: &Mmap, from: usize, to: usize) -> usize {
    let start = from.div_ceil(PAGE) * PAGE;
    let end = release_end(map.len(), to);
    if end <= start {
        return from;
    }
    #[cfg(unix)]
    {
        // SAFETY: the mapping is read-only and file-backed, so dropping its pages
        // discards nothing: any later access, through slices handed out earlier,
        // faults the same bytes back in from the file. The range is inside the
        // mapping (checked by memmap2) and page-aligned.
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
        };
    }
    end
}

/// Where a [`release`] towards `to` of a mapping `len` bytes long ends: the
/// [`HUGE_PAGE`] boundary at or below `to`, or the last whole page when `to` reaches
/// the end. For a caller that must know where the next release will start before it
/// makes this one.
pub fn release_end(len: usize, to: usize) -> usize {
    if to >= len {
        (len / PAGE) * PAGE
    } else {
        (to / HUGE_PAGE) * HUGE_PAGE
    }
}

/// Asks the CPU to start loading the cache line holding `bytes[at]`; a no-op past the
/// end or on targets without a prefetch instruction. A reader that walks a mapped file
/// in order but reads only a little of each record (the headers of full-size packets)
/// calls this some records ahead of itself: that stride defeats the hardware
/// prefetcher, so each record would otherwise be a wait on memory.
///
/// The hint is for data used once (non-temporal): the line comes close to the core
/// without settling in the larger caches, so a stream of 1.5 GB of records does not
/// push out what is used again and again, the flow table above all (a scan's user
/// time measured 5-7 % lower than with the plain hint on full-size packets; the same
/// on 96-byte ones).
#[inline(always)]
pub fn prefetch(bytes: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(byte) = bytes.get(at) {
        // SAFETY: `_mm_prefetch` only hints the cache and never faults or reads into
        // the program, and SSE is part of the x86_64 baseline; the address is inside
        // `bytes` besides.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_NTA }>(
                std::ptr::from_ref(byte).cast(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, at);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn released_pages_read_back_the_same_bytes() {
        let mut file = tempfile::tempfile().unwrap();
        let bytes: Vec<u8> = (0..5 * PAGE + 100).map(|i| (i % 251) as u8).collect();
        file.write_all(&bytes).unwrap();
        let map = map_read_only(&file).unwrap();
        assert_eq!(release(&map, 0, 10), 0, "no whole huge page before byte 10");
        assert_eq!(
            release(&map, 1, 3 * PAGE + 7),
            1,
            "the reader is in the first huge page"
        );
        assert_eq!(release(&map, 1, 5 * PAGE + 100), 5 * PAGE, "to the end");
        assert_eq!(release(&map, 0, usize::MAX), 5 * PAGE);
        assert_eq!(&map[..], &bytes[..]);
    }

    #[test]
    fn releases_behind_a_reader_stop_at_a_huge_page() {
        let mut file = tempfile::tempfile().unwrap();
        let bytes: Vec<u8> = (0..3 * HUGE_PAGE + 10).map(|i| (i % 253) as u8).collect();
        file.write_all(&bytes).unwrap();
        let map = map_read_only(&file).unwrap();
        assert_eq!(release(&map, 0, HUGE_PAGE + 5 * PAGE), HUGE_PAGE);
        assert_eq!(release(&map, HUGE_PAGE, 2 * HUGE_PAGE - 1), HUGE_PAGE);
        assert_eq!(release(&map, HUGE_PAGE, 2 * HUGE_PAGE), 2 * HUGE_PAGE);
        assert_eq!(release(&map, 2 * HUGE_PAGE, map.len()), 3 * HUGE_PAGE);
        assert_eq!(release_end(map.len(), 2 * HUGE_PAGE - 1), HUGE_PAGE);
        assert_eq!(release_end(map.len(), usize::MAX), 3 * HUGE_PAGE);
        assert_eq!(&map[..], &bytes[..]);
    }

    #[test]
    fn prefetch_anywhere_is_harmless() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&[7; 3 * PAGE]).unwrap();
        let map = map_read_only(&file).unwrap();
        for at in [0, PAGE + 1, 3 * PAGE - 1, 3 * PAGE, usize::MAX] {
            prefetch(&map, at);
        }
        prefetch(&[], 0);
        assert_eq!(&map[..], &[7; 3 * PAGE][..]);
    }
}
