//! The memory mapping of a flow-log file, the one place this crate needs `unsafe`.
//!
//! Reading a file through `serde_json`'s `io::Read` path costs a call and a line and
//! column update per byte; parsing a byte slice does neither and borrows tuple strings
//! where they lie instead of copying them. A file is therefore mapped and parsed as a
//! slice, and the pages behind the parser are released as it goes, so the resident set
//! stays flat however large the file is.
//!
//! Mapping a file is `unsafe` in Rust because another process could change or truncate
//! the file while it is mapped, and the type system cannot see that. Confining the call
//! here keeps the rest of the crate under `deny(unsafe_code)`.

#![allow(unsafe_code)]

use std::fs::File;

use memmap2::Mmap;

/// How far the parser moves between two releases of the pages behind it.
pub(crate) const RELEASE_STEP: usize = 16 << 20;

const PAGE: usize = 4096;

/// Maps `file` read-only for a sequential read, or `None` when it is not a regular
/// file, is empty, or cannot be mapped (the caller then reads it through a buffer).
pub(crate) fn map_file(file: &File) -> Option<Mmap> {
    let metadata = file.metadata().ok()?;
    if !metadata.is_file() || metadata.len() == 0 {
        return None;
    }
    // SAFETY: the mapping is read-only and private to this process, and its bytes are
    // only read through `&[u8]` with bounds checks, so no value can hold an invalid
    // state. The remaining hazard, another process truncating the file while it is
    // mapped, raises SIGBUS instead of reading stale memory; `read_flow_log_file`
    // documents it and `read_flow_log` reads files that may change.
    let map = unsafe { Mmap::map(file) }.ok()?;
    #[cfg(unix)]
    {
        // Only a hint: a kernel that ignores it still reads correctly.
        let _ = map.advise(memmap2::Advice::Sequential);
    }
    Some(map)
}

/// Tells the kernel this process no longer needs the pages of `map[from..to]`, so
/// reading a log larger than memory keeps the resident set flat (the pages stay in
/// the page cache for other readers). Returns where the next release starts: `to`
/// rounded down to a page, since the page holding `to` is still being read.
pub(crate) fn release(map: &Mmap, from: usize, to: usize) -> usize {
    let start = from.div_ceil(PAGE) * PAGE;
    let end = (to.min(map.len()) / PAGE) * PAGE;
    if end <= start {
        return from;
    }
    #[cfg(unix)]
    {
        // SAFETY: the mapping is read-only and file-backed, so dropping its pages
        // discards nothing: any later access (an error message computing its line
        // and column from the start, say) faults the same bytes back in from the
        // file. The range is inside the mapping (checked by memmap2) and
        // page-aligned.
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
        };
    }
    end
}
