//! The memory mapping of a flow-log file (through `linkward-mapfile`).
//!
//! Reading a file through `serde_json`'s `io::Read` path costs a call and a line and
//! column update per byte; parsing a byte slice does neither and borrows tuple strings
//! where they lie instead of copying them. A file is therefore mapped and parsed as a
//! slice, and the pages behind the parser are released as it goes, so the resident set
//! stays flat however large the file is. A file truncated by another process while it
//! is mapped raises SIGBUS: `read_flow_log_file` documents it and `read_flow_log` reads
//! files that may change.

use std::fs::File;

pub(crate) use linkward_mapfile::{Mmap, RELEASE_STEP, release};

/// Maps `file` read-only for a sequential read, or `None` when it is not a regular
/// file, is empty, or cannot be mapped (the caller then reads it through a buffer).
pub(crate) fn map_file(file: &File) -> Option<Mmap> {
    let metadata = file.metadata().ok()?;
    if !metadata.is_file() || metadata.len() == 0 {
        return None;
    }
    linkward_mapfile::map_read_only(file).ok()
}
