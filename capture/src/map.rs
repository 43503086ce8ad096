//! How a capture walk uses the shared file mapping (`linkward-mapfile`).

pub(crate) use linkward_mapfile::{Mmap, map_read_only, prefetch, release};

/// How much of a walk stays mapped behind the reader before it is released.
pub(crate) const RELEASE_STEP: usize = 16 << 20;
