//! The memory mapping, the one place this crate needs `unsafe`.
//!
//! Mapping a file is `unsafe` in Rust because another process could change
//! or truncate the file while it is mapped, and the type system cannot see
//! that. Confining the call here keeps the rest of the crate under
//! `deny(unsafe_code)`.

#![allow(unsafe_code)]

use std::fs::File;
use std::io;

use memmap2::Mmap;

/// Maps `file` read-only and tells the kernel it will be read in order, so
/// that read-ahead keeps the walk from waiting on page faults.
pub(crate) fn map_read_only(file: &File) -> io::Result<Mmap> {
    // SAFETY: the mapping is read-only and private to this process, and the
    // bytes are only ever read through `&[u8]` with bounds checks, so no
    // value can hold an invalid state. The remaining hazard, another process
    // truncating the file while it is mapped, raises SIGBUS rather than
    // reading stale memory; `CaptureFile` documents it and offers
    // `from_bytes` for files that may change.
    let map = unsafe { Mmap::map(file)? };
    #[cfg(unix)]
    {
        // Only a hint: a kernel that ignores it still reads correctly.
        let _ = map.advise(memmap2::Advice::Sequential);
    }
    Ok(map)
}

/// How much of a walk stays mapped behind the reader before it is released.
pub(crate) const RELEASE_STEP: usize = 16 << 20;

/// Tells the kernel this process no longer needs `map[from..to]` resident, so walking
/// a capture larger than memory keeps the resident set flat: pages already read are
/// dropped from this process (they stay in the page cache for other readers).
pub(crate) fn release(map: &Mmap, from: usize, to: usize) {
    #[cfg(unix)]
    {
        const PAGE: usize = 4096;
        let start = from.div_ceil(PAGE) * PAGE;
        let end = (to / PAGE) * PAGE;
        if end > start {
            // SAFETY: the mapping is read-only and file-backed, so dropping its pages
            // discards nothing: any later access, through slices handed out earlier,
            // faults the same bytes back in from the file. The range is inside the
            // mapping (checked by memmap2) and page-aligned.
            let _ = unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
            };
        }
    }
    #[cfg(not(unix))]
    let _ = (map, from, to);
}
