//! Watching a module file: policy authors replace the module while the host runs.
//!
//! A [`ModuleWatcher`] thread looks at the module file's metadata (device, inode, size,
//! modification time) every [`WatchOptions::interval`] and, on Unix, also takes `SIGHUP`
//! as "look now". Polling metadata needs no platform notification API and sees every way
//! a file gets replaced: created, written in place, or renamed into place (the atomic way,
//! which changes the inode). A change is acted on once the metadata has stayed the same
//! for one more interval, so a module still being written is not read half-way.
//!
//! Then, all off the hot path: the file is read, compared with the bytes of the running
//! module (a touch is not a swap), its signature checked when a trusted key is set (see
//! [`signing`]), and the module loaded with [`PolicyEngine::load`], which checks the
//! contract version, imports and the module's own self-tests under the engine's limits.
//! Only a module that passed everything is installed in the [`ModuleSlot`]; workers
//! switch at their next batch. A refused module changes nothing: the old one keeps
//! running.
//!
//! What happened is told as a [`WatchEvent`] to a callback, so the caller decides where
//! log lines go; each event's `Display` is the log line.
//!
//! ```no_run
//! use linkward_host::sandbox::{Limits, PolicyEngine};
//! use linkward_host::swap::ModuleSlot;
//! use linkward_host::watch::{ModuleWatcher, WatchOptions, load_module};
//! use std::path::Path;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = PolicyEngine::new(Limits::default())?;
//! let path = Path::new("policy.wasm");
//! let bytes = std::fs::read(path)?;
//! let slot = ModuleSlot::new(load_module(&engine, &bytes, None)?);
//! let _watcher = ModuleWatcher::spawn(
//!     path, &bytes, engine, slot.clone(), WatchOptions::default(),
//!     |event| eprintln!("linkward: {event}"),
//! )?;
//! // ... evaluate through `SlotBackend::new(slot.clone())` ...
//! # Ok(()) }
//! ```

use crate::sandbox::{LoadedModule, PolicyEngine, SandboxError};
use crate::signing::{self, PublicKey, SigningError};
use crate::swap::{ModuleSlot, SwapRecord};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};
use thiserror::Error;

/// Why a module was not loaded. The message includes the cause (there is no separate
/// `source`), so a log line or an error chain says it once.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("cannot read the file: {0}")]
    Read(io::Error),
    #[error("signature check failed: {0}")]
    Signature(SigningError),
    #[error("{0}")]
    Module(SandboxError),
}

/// Checks and loads module bytes: the signature first when `trusted` is set (cheap, and
/// an untrusted module is never even compiled), then everything
/// [`PolicyEngine::load`] checks.
pub fn load_module(
    engine: &PolicyEngine,
    bytes: &[u8],
    trusted: Option<&PublicKey>,
) -> Result<LoadedModule, LoadError> {
    if let Some(key) = trusted {
        signing::verify(bytes, key).map_err(LoadError::Signature)?;
    }
    engine.load(bytes).map_err(LoadError::Module)
}

/// Settings of a [`ModuleWatcher`].
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// How often the file's metadata is looked at.
    pub interval: Duration,
    /// Refuse modules not signed by this key.
    pub trusted_key: Option<PublicKey>,
    /// Look at the file when the process gets `SIGHUP` (Unix only).
    pub reload_on_sighup: bool,
}

impl Default for WatchOptions {
    /// Every 200 ms, no signature required, `SIGHUP` honoured.
    fn default() -> WatchOptions {
        WatchOptions {
            interval: Duration::from_millis(200),
            trusted_key: None,
            reload_on_sighup: true,
        }
    }
}

/// What the watcher did.
#[derive(Debug)]
pub enum WatchEvent {
    /// A new module was installed.
    Swapped {
        path: PathBuf,
        record: SwapRecord,
        /// Reading, checking and compiling the new module (off the hot path).
        load_time: Duration,
    },
    /// A module was refused; `keeping` is the version that goes on running.
    Refused {
        path: PathBuf,
        error: LoadError,
        keeping: String,
    },
    /// A reload was asked for (`SIGHUP`) but the file holds the running module.
    Unchanged { path: PathBuf, version: String },
}

impl fmt::Display for WatchEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchEvent::Swapped {
                record, load_time, ..
            } => write!(
                f,
                "swapped policy {} {} -> {} (generation {}, load took {:.1} ms)",
                record.policy,
                record.old_version,
                record.new_version,
                record.generation,
                load_time.as_secs_f64() * 1000.0
            ),
            WatchEvent::Refused {
                path,
                error,
                keeping,
            } => write!(
                f,
                "refused module {}: {error}; keeping {keeping}",
                path.display()
            ),
            WatchEvent::Unchanged { path, version } => {
                write!(f, "module {} unchanged; keeping {version}", path.display())
            }
        }
    }
}

/// What identifies one version of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fingerprint {
    device: u64,
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

fn fingerprint(path: &Path) -> Option<Fingerprint> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let (device, inode) = {
        use std::os::unix::fs::MetadataExt;
        (meta.dev(), meta.ino())
    };
    #[cfg(not(unix))]
    let (device, inode) = (0, 0);
    Some(Fingerprint {
        device,
        inode,
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

/// A thread that watches one module file and swaps what it holds into a slot. Dropping
/// it stops the thread.
pub struct ModuleWatcher {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    check: Arc<AtomicBool>,
    refusals: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
    #[cfg(unix)]
    signal: Option<signal_hook::SigId>,
}

impl fmt::Debug for ModuleWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModuleWatcher")
            .field("path", &self.path)
            .field("refusals", &self.refusals())
            .finish_non_exhaustive()
    }
}

/// The watcher thread's state.
struct Watch {
    path: PathBuf,
    engine: PolicyEngine,
    slot: Arc<ModuleSlot>,
    options: WatchOptions,
    /// The bytes the running module was loaded from.
    running: Vec<u8>,
    refusals: Arc<AtomicU64>,
    on_event: Box<dyn FnMut(&WatchEvent) + Send>,
}

impl ModuleWatcher {
    /// Starts watching `path`. `running` are the bytes the slot's current module was
    /// loaded from: if the file already holds something else (it changed between that
    /// load and now), the first look swaps it in.
    pub fn spawn(
        path: &Path,
        running: &[u8],
        engine: PolicyEngine,
        slot: Arc<ModuleSlot>,
        options: WatchOptions,
        on_event: impl FnMut(&WatchEvent) + Send + 'static,
    ) -> io::Result<ModuleWatcher> {
        let stop = Arc::new(AtomicBool::new(false));
        let check = Arc::new(AtomicBool::new(false));
        let refusals = Arc::new(AtomicU64::new(0));
        #[cfg(unix)]
        let signal = if options.reload_on_sighup {
            Some(signal_hook::flag::register(
                signal_hook::consts::SIGHUP,
                check.clone(),
            )?)
        } else {
            None
        };
        let state = Watch {
            path: path.to_path_buf(),
            engine,
            slot,
            options,
            running: running.to_vec(),
            refusals: refusals.clone(),
            on_event: Box::new(on_event),
        };
        let thread = {
            let (stop, check) = (stop.clone(), check.clone());
            std::thread::Builder::new()
                .name("linkward-watch".into())
                .spawn(move || state.run(&stop, &check))?
        };
        Ok(ModuleWatcher {
            path: path.to_path_buf(),
            stop,
            check,
            refusals,
            thread: Some(thread),
            #[cfg(unix)]
            signal,
        })
    }

    /// Looks at the file now, as `SIGHUP` does: reloads it even if its metadata did not
    /// change, and reports an unchanged file.
    pub fn request_check(&self) {
        self.check.store(true, Ordering::Release);
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }

    /// Modules refused so far.
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }

    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ModuleWatcher {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(id) = self.signal.take() {
            signal_hook::low_level::unregister(id);
        }
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            // Woken rather than left to notice the flag: a scan's exit waits on this.
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// How long the watcher sleeps between looks at its flags, unless woken: stopping and
/// [`ModuleWatcher::request_check`] wake it, a SIGHUP (which can only set a flag) is
/// seen within this.
const FLAG_POLL: Duration = Duration::from_millis(10);

impl Watch {
    fn run(mut self, stop: &AtomicBool, check: &AtomicBool) {
        let mut seen = fingerprint(&self.path);
        let mut settling: Option<Option<Fingerprint>> = None;
        // The file may have changed between the caller's load and now.
        self.reload(false);
        loop {
            let woke = Instant::now();
            while woke.elapsed() < self.options.interval {
                if stop.load(Ordering::Acquire) || check.load(Ordering::Acquire) {
                    break;
                }
                std::thread::park_timeout(FLAG_POLL);
            }
            if stop.load(Ordering::Acquire) {
                return;
            }
            let now = fingerprint(&self.path);
            if check.swap(false, Ordering::AcqRel) {
                seen = now;
                settling = None;
                self.reload(true);
                continue;
            }
            if now == seen {
                settling = None;
            } else if settling == Some(now) {
                // Unchanged for a whole interval: the writer is done.
                seen = now;
                settling = None;
                if now.is_some() {
                    self.reload(false);
                }
            } else {
                settling = Some(now);
            }
        }
    }

    fn reload(&mut self, asked: bool) {
        let started = Instant::now();
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) => return self.refuse(LoadError::Read(e)),
        };
        if bytes == self.running {
            if asked {
                let event = WatchEvent::Unchanged {
                    path: self.path.clone(),
                    version: self.slot.current().version().to_string(),
                };
                (self.on_event)(&event);
            }
            return;
        }
        match load_module(&self.engine, &bytes, self.options.trusted_key.as_ref()) {
            Ok(module) => {
                let load_time = started.elapsed();
                let record = self.slot.install(module);
                self.running = bytes;
                let event = WatchEvent::Swapped {
                    path: self.path.clone(),
                    record,
                    load_time,
                };
                (self.on_event)(&event);
            }
            Err(e) => self.refuse(e),
        }
    }

    fn refuse(&mut self, error: LoadError) {
        self.refusals.fetch_add(1, Ordering::Relaxed);
        let event = WatchEvent::Refused {
            path: self.path.clone(),
            error,
            keeping: self.slot.current().version().to_string(),
        };
        (self.on_event)(&event);
    }
}
