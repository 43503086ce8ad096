//! Compiled policy modules kept between runs, as files wasmtime maps straight into
//! memory.
//!
//! Compiling a policy module costs a few hundred milliseconds, more than scanning a
//! million packets, so every run after the first takes the machine code from here. The
//! files are wasmtime's own serialization, uncompressed: loading one is a `mmap` and a
//! few checks, where wasmtime's built-in cache hashed the module, read a compressed
//! file and decompressed it (2.5–3.4 ms a run, most of a small capture's scan; see
//! benches/README.md, "Loading a module from the cache").
//!
//! An entry's name is the SHA-256 of what its code depends on: this host's version,
//! the engine's configuration (wasmtime's compatibility hash) and the module's bytes.
//! A module whose signature was checked is therefore only ever run as the code compiled
//! from those very bytes. Entries are written to a temporary file and renamed into
//! place, so a reader never sees half of one, and the least recently used go once
//! there are more than [`MAX_ENTRIES`]. Anything that goes wrong here (a read-only
//! home, a full disk, a damaged entry) costs a compilation, never a run.

use sha2::{Digest, Sha256};
use std::fs;
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiled modules kept at most: policy authors who hot-swap compile a new version at
/// each change, and each entry is a few hundred KB to a few MB.
pub const MAX_ENTRIES: usize = 32;

/// What an entry's file name ends with.
const EXTENSION: &str = "cwasm";

/// A temporary file older than this was left by a process that stopped mid-write.
const STALE_TEMPORARY: Duration = Duration::from_secs(3600);

/// Where a loaded module's machine code came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeSource {
    /// Compiled by this process (and stored in the cache, when there is one).
    Compiled,
    /// Mapped from the cache, as an earlier run compiled it.
    Cached,
}

/// The cache directory of one engine.
#[derive(Clone, Debug)]
pub(super) struct CompiledCache {
    dir: PathBuf,
    /// SHA-256 state after the host's version and the engine's configuration: each
    /// module's key goes on from here.
    engine_key: Sha256,
}

impl CompiledCache {
    /// The cache under `base` (in its `compiled` directory, made private to the user),
    /// or `None` when that directory cannot be made or others may write to it.
    pub(super) fn open(base: &Path, engine: &Engine) -> Option<CompiledCache> {
        let dir = base.join("compiled");
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).ok()?;
        // A directory others may write to could be handed entries this process did
        // not write.
        if !private(&fs::metadata(&dir).ok()?) {
            return None;
        }
        let mut engine_key = Sha256::new();
        engine_key.update(b"linkward compiled module\0");
        engine_key.update(env!("CARGO_PKG_VERSION").as_bytes());
        engine_key.update(b"\0");
        engine
            .precompile_compatibility_hash()
            .hash(&mut HashInto(&mut engine_key));
        Some(CompiledCache { dir, engine_key })
    }

    /// The component compiled from `wasm`: mapped from the cache when an entry for it
    /// is there, else compiled and stored.
    pub(super) fn component(
        &self,
        engine: &Engine,
        wasm: &[u8],
    ) -> wasmtime::Result<(Component, CodeSource)> {
        let path = self.entry_path(wasm);
        if let Some(component) = self.mapped(engine, &path) {
            return Ok((component, CodeSource::Cached));
        }
        let component = Component::new(engine, wasm)?;
        if let Ok(bytes) = component.serialize() {
            self.store(&path, &bytes);
        }
        Ok((component, CodeSource::Compiled))
    }

    fn entry_path(&self, wasm: &[u8]) -> PathBuf {
        let mut key = self.engine_key.clone();
        key.update(wasm);
        let name: String = key
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        self.dir.join(format!("{name}.{EXTENSION}"))
    }

    /// The entry at `path` mapped as a component, if it is there, trusted and loads.
    fn mapped(&self, engine: &Engine, path: &Path) -> Option<Component> {
        let meta = fs::metadata(path).ok()?;
        if !meta.is_file() || !private(&meta) {
            return None;
        }
        // SAFETY: wasmtime requires that the file hold code it serialized itself, for
        // an engine configured like this one, and that it not change while mapped.
        // Entries are only written by `store`, from `Component::serialize`, and reach
        // their name by an atomic rename, so they are never seen half-written and are
        // replaced rather than changed; the name covers wasmtime's compatibility hash
        // and the host's version, and wasmtime checks its own version and settings in
        // the file again. The file (checked here) and the directory (checked when the
        // cache was opened) are writable by their owner alone; whoever can write to
        // them could as well change what the user runs, the trust wasmtime's built-in
        // cache places in its directory.
        let component = unsafe { Component::deserialize_file(engine, path) }.ok()?;
        // Recently used entries are the last to go (see `evict`).
        if let Ok(file) = fs::File::open(path) {
            let _ = file.set_modified(SystemTime::now());
        }
        Some(component)
    }

    /// Writes an entry, then keeps the directory within [`MAX_ENTRIES`]. Failures are
    /// ignored: the next run compiles again.
    fn store(&self, path: &Path, bytes: &[u8]) {
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let temporary = self.dir.join(format!(
            ".{}-{}.tmp",
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        ));
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(&temporary).and_then(|mut file| {
            use std::io::Write;
            file.write_all(bytes)?;
            // The kernel stamps writes with a clock that moves in steps of
            // milliseconds; `evict` orders entries by this precise time instead.
            file.set_modified(SystemTime::now())?;
            file.sync_all()
        });
        if written.is_err() || fs::rename(&temporary, path).is_err() {
            let _ = fs::remove_file(&temporary);
            return;
        }
        self.evict();
    }

    /// Removes the least recently used entries beyond [`MAX_ENTRIES`], and temporary
    /// files left by processes that stopped while writing one.
    fn evict(&self) {
        let Ok(listing) = fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        let mut entries = Vec::new();
        for item in listing.flatten() {
            let path = item.path();
            let Ok(meta) = item.metadata() else {
                continue;
            };
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            if path.extension().is_some_and(|e| e == EXTENSION) {
                entries.push((modified, path));
            } else if path.extension().is_some_and(|e| e == "tmp")
                && now.duration_since(modified).unwrap_or_default() > STALE_TEMPORARY
            {
                let _ = fs::remove_file(&path);
            }
        }
        if entries.len() <= MAX_ENTRIES {
            return;
        }
        entries.sort();
        let excess = entries.len() - MAX_ENTRIES;
        for (_, path) in entries.into_iter().take(excess) {
            let _ = fs::remove_file(path);
        }
    }
}

/// Whether only the owner may write the file (always true off Unix).
fn private(meta: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o022 == 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        true
    }
}

/// Feeds a `Hash` value (wasmtime's compatibility hash) into SHA-256, so that the key
/// does not depend on a hasher whose output may change between Rust versions.
struct HashInto<'a>(&'a mut Sha256);

impl std::hash::Hasher for HashInto<'_> {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        0
    }
}
