//! Hot swap: replace the policy module while evaluation goes on.
//!
//! A [`ModuleSlot`] holds the current module and a generation number. Whoever loads a
//! new module (a file watcher, a signal handler, an appliance's control plane) checks it
//! fully off the hot path — [`PolicyEngine::load`](crate::sandbox::PolicyEngine::load)
//! refuses a wrong contract version, imports, or failing self-tests — and only then
//! installs it. Evaluating threads look at the generation (one atomic load) when they
//! start a batch and switch there, so every batch is evaluated by exactly one module:
//! nothing is lost or evaluated twice, and every finding names the version that made it.

use crate::evaluation::Backend;
use crate::sandbox::{LoadedModule, Sandbox};
use linkward_guest::record::Finding;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// What a swap did, for logs and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwapRecord {
    pub generation: u64,
    pub old_version: String,
    pub new_version: String,
    pub policy: String,
}

/// The current module, shared by every worker.
pub struct ModuleSlot {
    current: RwLock<LoadedModule>,
    generation: AtomicU64,
    swaps: AtomicU64,
}

impl ModuleSlot {
    pub fn new(module: LoadedModule) -> Arc<ModuleSlot> {
        Arc::new(ModuleSlot {
            current: RwLock::new(module),
            generation: AtomicU64::new(1),
            swaps: AtomicU64::new(0),
        })
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Completed swaps.
    pub fn swaps(&self) -> u64 {
        self.swaps.load(Ordering::Relaxed)
    }

    /// The module installed now.
    pub fn current(&self) -> LoadedModule {
        match self.current.read() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Installs a module that has already been loaded and checked.
    pub fn install(&self, module: LoadedModule) -> SwapRecord {
        let mut guard = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let old_version = guard.version().to_string();
        let record = SwapRecord {
            generation: 0,
            old_version,
            new_version: module.version().to_string(),
            policy: module.policy_name().to_string(),
        };
        *guard = module;
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.swaps.fetch_add(1, Ordering::Relaxed);
        SwapRecord {
            generation,
            ..record
        }
    }
}

/// A backend that follows a [`ModuleSlot`]: one sandbox of the current module, replaced
/// at the start of the first batch after a swap.
pub struct SlotBackend {
    slot: Arc<ModuleSlot>,
    generation: u64,
    sandbox: Sandbox,
    name: Arc<str>,
    version: Arc<str>,
    /// How long each switch to a new module took on this worker (for the pause metric).
    pub switch_times: Vec<Duration>,
}

impl SlotBackend {
    pub fn new(slot: Arc<ModuleSlot>) -> SlotBackend {
        let generation = slot.generation();
        let module = slot.current();
        SlotBackend {
            name: module.policy_name().into(),
            version: module.version().into(),
            sandbox: module.sandbox(),
            generation,
            slot,
            switch_times: Vec::new(),
        }
    }

    /// The generation this worker evaluates with.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn follow(&mut self) {
        let now = self.slot.generation();
        if now != self.generation {
            let started = Instant::now();
            let module = self.slot.current();
            self.name = module.policy_name().into();
            self.version = module.version().into();
            self.sandbox = module.sandbox();
            self.generation = now;
            self.switch_times.push(started.elapsed());
        }
    }
}

impl Backend for SlotBackend {
    fn evaluate_flows(&mut self, batch: &[u8], records: usize) -> Result<Vec<Finding>, String> {
        self.follow();
        self.sandbox
            .evaluate_flows_packed(batch, records)
            .map_err(|e| e.to_string())
    }

    fn evaluate_dns(&mut self, batch: &[u8], records: usize) -> Result<Vec<Finding>, String> {
        self.follow();
        self.sandbox
            .evaluate_dns_packed(batch, records)
            .map_err(|e| e.to_string())
    }

    fn policy(&self) -> (Arc<str>, Arc<str>) {
        (self.name.clone(), self.version.clone())
    }
}
