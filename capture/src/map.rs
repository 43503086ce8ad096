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
