//! How a capture walk uses the shared file mapping (`linkward-mapfile`).

pub(crate) use linkward_mapfile::{
    HUGE_PAGE, Mmap, PAGE, RELEASE_STEP, map_read_only, prefetch, release, release_end,
};
