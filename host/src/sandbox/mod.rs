//! The wasmtime embedding: policy modules run here, isolated from the host.
//!
//! - One [`PolicyEngine`] per process: a wasmtime `Engine` with the component model, the
//!   pooling allocator (a fresh instance costs microseconds), and epoch interruption driven
//!   by a ticker thread, so a module that loops is stopped at its deadline.
//! - A [`LoadedModule`] is a compiled, checked module: it exports the `linkward:policy`
//!   world of this host's major version, imports nothing, and passed its own embedded
//!   self-tests. It is cheap to clone and to instantiate.
//! - A [`Sandbox`] is one instance with its own store and limits, used by one worker. A
//!   trap, a timeout, memory exhaustion or a malformed answer costs only the batch being
//!   evaluated: the error is returned and the next call gets a fresh instance.

#[allow(unsafe_code)]
mod cache;

pub use cache::{CodeSource, MAX_ENTRIES as MAX_CACHED_MODULES};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "policy-module",
    });
}

use bindings::exports::linkward::policy::evaluator as wit;
use bindings::{PolicyModule, PolicyModulePre};
use linkward_guest::record::{self, Finding, OwnedDnsAnswer, OwnedFlow, TestCase, TestInput};
use linkward_guest::vocab::{Action, FindingKind, Severity};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use wasmtime::component::{Component, Linker, types::ComponentItem};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder,
};

/// The contract major version this host speaks (package `linkward:policy@2.x`).
pub const CONTRACT_MAJOR: u32 = 2;
const EXPORT_PREFIX: &str = "linkward:policy/evaluator@";

/// Resource bounds for every call into a module.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest linear memory a module may grow to.
    pub memory_bytes: usize,
    /// Wall-clock budget of one call (one batch), enforced by epoch interruption.
    pub call_timeout: Duration,
    /// Findings one record may produce; more means the module misbehaves.
    pub max_findings_per_record: usize,
    /// How many instances may exist at once (workers plus swaps in flight).
    pub max_instances: u32,
    /// Where compiled modules are cached between runs (compiling costs a few hundred
    /// milliseconds, more than scanning a million packets); `None` compiles every time.
    pub cache_dir: Option<std::path::PathBuf>,
}

/// The default compilation cache: `$LINKWARD_CACHE_DIR`, else `$XDG_CACHE_HOME/linkward`,
/// else `$HOME/.cache/linkward`; none when `LINKWARD_NO_CACHE` is set or no home is known.
pub fn default_cache_dir() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    if std::env::var_os("LINKWARD_NO_CACHE").is_some() {
        return None;
    }
    if let Some(dir) = std::env::var_os("LINKWARD_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|base| base.join("linkward"))
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            call_timeout: Duration::from_secs(2),
            max_findings_per_record: FindingKind::ALL.len(),
            max_instances: 64,
            cache_dir: default_cache_dir(),
        }
    }
}

/// Why a module was refused or a call failed.
#[derive(Debug, Error)]
pub enum SandboxError {
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    #[error("not a valid WebAssembly component: {0}")]
    Compile(String),
    #[error("not a linkward policy module: it does not export `{EXPORT_PREFIX}{CONTRACT_MAJOR}.x`")]
    NotAPolicyModule,
    #[error(
        "the module was built for contract linkward:policy@{found}, this host speaks {CONTRACT_MAJOR}.x"
    )]
    ContractVersion { found: String },
    #[error("policy modules must import nothing, but this one imports `{0}`")]
    HasImports(String),
    #[error("cannot instantiate the module: {0}")]
    Instantiate(String),
    #[error("the module trapped or ran out of its limits: {0}")]
    Trap(String),
    #[error("the module rejected the batch: {0}")]
    Rejected(String),
    #[error("the module returned {findings} findings for {records} records")]
    TooManyFindings { findings: usize, records: usize },
    #[error("the module returned a finding for record {index} of a batch of {records}")]
    BadIndex { index: u32, records: usize },
    #[error("self-test `{name}` failed: expected [{expected}], got [{got}]")]
    SelfTest {
        name: String,
        expected: String,
        got: String,
    },
}

/// What a module says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleInfo {
    pub policy_name: String,
    pub policy_version: String,
    pub source_hash: String,
    pub compiler_version: String,
    pub contract_version: String,
    pub lints: Vec<String>,
    pub services: u32,
    pub rules: u32,
    pub prefixes: u32,
    pub names: u32,
    pub self_tests: usize,
}

struct HostState {
    limits: StoreLimits,
}

/// The process-wide engine. Clone it freely.
#[derive(Clone)]
pub struct PolicyEngine {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    limits: Limits,
    cache: Option<cache::CompiledCache>,
}

/// Set (to anything) in the environment to have the engine describe compiled module
/// code to `perf` (see benches/README.md, "Profiles").
pub const PERFMAP_VARIABLE: &str = "LINKWARD_PERFMAP";

/// Epoch ticks per second: the resolution of call deadlines.
const TICKS_PER_SECOND: u64 = 100;

impl PolicyEngine {
    pub fn new(limits: Limits) -> Result<PolicyEngine, SandboxError> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(limits.max_instances)
            .total_core_instances(limits.max_instances)
            .total_memories(limits.max_instances)
            .total_tables(limits.max_instances)
            .max_memory_size(limits.memory_bytes);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .cranelift_opt_level(wasmtime::OptLevel::Speed);
        // For profiling only: wasmtime then writes /tmp/perf-PID.map, so that `perf
        // report` names the module's functions instead of showing bare addresses.
        if std::env::var_os(PERFMAP_VARIABLE).is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        // A cache that cannot be set up (read-only home, odd permissions) only costs
        // compile time, so it is skipped rather than fatal.
        let cache = limits
            .cache_dir
            .as_deref()
            .and_then(|dir| cache::CompiledCache::open(dir, &engine));
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("linkward-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(Duration::from_millis(1000 / TICKS_PER_SECOND));
                }
            })
            .map_err(|e| SandboxError::Engine(e.to_string()))?;
        let linker = Linker::new(&engine);
        Ok(PolicyEngine {
            engine,
            linker: Arc::new(linker),
            limits,
            cache,
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Compiles and checks a module: contract version, no imports, and its self-tests.
    pub fn load(&self, wasm: &[u8]) -> Result<LoadedModule, SandboxError> {
        let (component, code_source) = match &self.cache {
            Some(cache) => cache.component(&self.engine, wasm),
            None => Component::new(&self.engine, wasm).map(|c| (c, CodeSource::Compiled)),
        }
        .map_err(|e| SandboxError::Compile(format!("{e:#}")))?;
        let ty = component.component_type();
        if let Some((name, _)) = ty.imports(&self.engine).next() {
            return Err(SandboxError::HasImports(name.to_string()));
        }
        let mut found = None;
        for (name, item) in ty.exports(&self.engine) {
            if let Some(version) = name.strip_prefix(EXPORT_PREFIX)
                && matches!(item.ty, ComponentItem::ComponentInstance(_))
            {
                found = Some(version.to_string());
            }
        }
        let version = found.ok_or(SandboxError::NotAPolicyModule)?;
        let major = version
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok());
        if major != Some(CONTRACT_MAJOR) {
            return Err(SandboxError::ContractVersion { found: version });
        }
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| SandboxError::Instantiate(format!("{e:#}")))?;
        let pre = PolicyModulePre::new(instance_pre)
            .map_err(|e| SandboxError::Instantiate(format!("{e:#}")))?;
        let mut module = LoadedModule {
            inner: Arc::new(ModuleInner {
                pre,
                engine: self.clone(),
                info: None,
                code_source,
            }),
        };
        let mut sandbox = module.sandbox();
        let mut info = sandbox.metadata()?;
        let cases = sandbox.self_test_cases()?;
        info.self_tests = cases.len();
        run_self_tests(&mut sandbox, &cases)?;
        drop(sandbox);
        // The first Arc is ours alone until now.
        if let Some(inner) = Arc::get_mut(&mut module.inner) {
            inner.info = Some(info);
        }
        Ok(module)
    }
}

fn run_self_tests(sandbox: &mut Sandbox, cases: &[TestCase]) -> Result<(), SandboxError> {
    for case in cases {
        let findings = match &case.input {
            TestInput::Flow(f) => sandbox.evaluate_flow_records(std::slice::from_ref(f))?,
            TestInput::Dns(d) => sandbox.evaluate_dns_records(std::slice::from_ref(d))?,
        };
        let mut got: Vec<FindingKind> = findings.iter().map(|f| f.kind).collect();
        let mut expected = case.expect.clone();
        got.sort();
        expected.sort();
        if got != expected {
            let list = |v: &[FindingKind]| v.iter().map(|k| k.id()).collect::<Vec<_>>().join(", ");
            return Err(SandboxError::SelfTest {
                name: case.name.clone(),
                expected: list(&expected),
                got: list(&got),
            });
        }
    }
    Ok(())
}

struct ModuleInner {
    pre: PolicyModulePre<HostState>,
    engine: PolicyEngine,
    info: Option<ModuleInfo>,
    code_source: CodeSource,
}

/// A compiled and checked policy module. Clone it to share it between workers.
#[derive(Clone)]
pub struct LoadedModule {
    inner: Arc<ModuleInner>,
}

impl LoadedModule {
    /// What the module said about itself when it was loaded.
    pub fn info(&self) -> Option<&ModuleInfo> {
        self.inner.info.as_ref()
    }

    /// The policy version, or "unknown" for a module that did not say.
    pub fn version(&self) -> &str {
        self.info().map_or("unknown", |i| i.policy_version.as_str())
    }

    /// Whether its machine code was compiled by this process or mapped from the cache.
    pub fn code_source(&self) -> CodeSource {
        self.inner.code_source
    }

    pub fn policy_name(&self) -> &str {
        self.info().map_or("unknown", |i| i.policy_name.as_str())
    }

    /// A sandbox of its own for one worker; instantiated lazily.
    pub fn sandbox(&self) -> Sandbox {
        Sandbox {
            module: self.clone(),
            live: None,
            instantiations: 0,
        }
    }
}

/// One instance of a module with its store. Not shared between threads.
pub struct Sandbox {
    module: LoadedModule,
    live: Option<(Store<HostState>, PolicyModule)>,
    instantiations: u64,
}

impl Sandbox {
    pub fn module(&self) -> &LoadedModule {
        &self.module
    }

    /// How many instances this sandbox has created (1 plus one per failure).
    pub fn instantiations(&self) -> u64 {
        self.instantiations
    }

    fn instance(&mut self) -> Result<&mut (Store<HostState>, PolicyModule), SandboxError> {
        if self.live.is_none() {
            let inner = &self.module.inner;
            let limits = &inner.engine.limits;
            let mut store = Store::new(
                &inner.engine.engine,
                HostState {
                    limits: StoreLimitsBuilder::new()
                        .memory_size(limits.memory_bytes)
                        .instances(4)
                        .trap_on_grow_failure(true)
                        .build(),
                },
            );
            store.limiter(|s| &mut s.limits);
            store.set_epoch_deadline(u64::MAX / 2);
            let instance = inner
                .pre
                .instantiate(&mut store)
                .map_err(|e| SandboxError::Instantiate(format!("{e:#}")))?;
            self.instantiations += 1;
            self.live = Some((store, instance));
        }
        self.live
            .as_mut()
            .ok_or_else(|| SandboxError::Instantiate("no instance".into()))
    }

    /// Runs `call` with the deadline armed; any failure retires the instance.
    fn call<R>(
        &mut self,
        call: impl FnOnce(&mut Store<HostState>, &PolicyModule) -> wasmtime::Result<R>,
    ) -> Result<R, SandboxError> {
        let timeout = self.module.inner.engine.limits.call_timeout;
        let ticks = (timeout.as_millis() as u64 * TICKS_PER_SECOND / 1000).max(1) + 1;
        let (store, instance) = self.instance()?;
        store.set_epoch_deadline(ticks);
        match call(store, instance) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.live = None;
                Err(SandboxError::Trap(format!("{e:#}")))
            }
        }
    }

    pub fn metadata(&mut self) -> Result<ModuleInfo, SandboxError> {
        let m = self.call(|s, i| i.linkward_policy_evaluator().call_metadata(s))?;
        Ok(ModuleInfo {
            policy_name: m.policy_name,
            policy_version: m.policy_version,
            source_hash: m.source_hash,
            compiler_version: m.compiler_version,
            contract_version: m.contract_version,
            lints: m.lints,
            services: m.services,
            rules: m.rules,
            prefixes: m.prefixes,
            names: m.names,
            self_tests: 0,
        })
    }

    pub fn self_test_cases(&mut self) -> Result<Vec<TestCase>, SandboxError> {
        let cases = self.call(|s, i| i.linkward_policy_evaluator().call_self_test_cases(s))?;
        Ok(cases
            .into_iter()
            .map(|c| TestCase {
                name: c.name,
                input: match c.input {
                    wit::TestInput::Flow(f) => TestInput::Flow(flow_from_wit(&f)),
                    wit::TestInput::Dns(d) => TestInput::Dns(dns_from_wit(&d)),
                },
                expect: c.expect.into_iter().map(kind_from_wit).collect(),
            })
            .collect())
    }

    /// Evaluates a packed flow batch (see `linkward_guest::packed`).
    pub fn evaluate_flows_packed(
        &mut self,
        batch: &[u8],
        records: usize,
    ) -> Result<Vec<Finding>, SandboxError> {
        let result = self.call(|s, i| {
            i.linkward_policy_evaluator()
                .call_evaluate_flows_packed(s, batch)
        })?;
        self.check(result.map_err(SandboxError::Rejected)?, records)
    }

    /// Evaluates a packed DNS batch.
    pub fn evaluate_dns_packed(
        &mut self,
        batch: &[u8],
        records: usize,
    ) -> Result<Vec<Finding>, SandboxError> {
        let result = self.call(|s, i| {
            i.linkward_policy_evaluator()
                .call_evaluate_dns_packed(s, batch)
        })?;
        self.check(result.map_err(SandboxError::Rejected)?, records)
    }

    /// Evaluates flows through the record form of the contract.
    pub fn evaluate_flow_records(
        &mut self,
        flows: &[OwnedFlow],
    ) -> Result<Vec<Finding>, SandboxError> {
        let batch: Vec<wit::Flow> = flows.iter().map(flow_to_wit).collect();
        let found =
            self.call(|s, i| i.linkward_policy_evaluator().call_evaluate_flows(s, &batch))?;
        self.check(found, flows.len())
    }

    /// Evaluates DNS answers through the record form of the contract.
    pub fn evaluate_dns_records(
        &mut self,
        answers: &[OwnedDnsAnswer],
    ) -> Result<Vec<Finding>, SandboxError> {
        let batch: Vec<wit::DnsAnswer> = answers.iter().map(dns_to_wit).collect();
        let found = self.call(|s, i| i.linkward_policy_evaluator().call_evaluate_dns(s, &batch))?;
        self.check(found, answers.len())
    }

    /// Refuses answers no honest module gives: too many findings, or findings about
    /// records that were not in the batch.
    fn check(
        &mut self,
        found: Vec<wit::Finding>,
        records: usize,
    ) -> Result<Vec<Finding>, SandboxError> {
        let limit = records.saturating_mul(self.module.inner.engine.limits.max_findings_per_record);
        if found.len() > limit {
            self.live = None;
            return Err(SandboxError::TooManyFindings {
                findings: found.len(),
                records,
            });
        }
        if let Some(f) = found.iter().find(|f| f.index as usize >= records) {
            let index = f.index;
            self.live = None;
            return Err(SandboxError::BadIndex { index, records });
        }
        // Checked first and converted in one pass, which can reuse the list's allocation.
        Ok(found.into_iter().map(finding_from_wit).collect())
    }
}

fn addr_to_wit(a: IpAddr) -> wit::IpAddress {
    match a {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            wit::IpAddress::Ipv4((a, b, c, d))
        }
        IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.segments();
            wit::IpAddress::Ipv6((a, b, c, d, e, f, g, h))
        }
    }
}

fn addr_from_wit(a: wit::IpAddress) -> IpAddr {
    match a {
        wit::IpAddress::Ipv4((a, b, c, d)) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        wit::IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
        }
    }
}

const UNSPECIFIED: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

fn flow_to_wit(f: &OwnedFlow) -> wit::Flow {
    wit::Flow {
        src: addr_to_wit(f.src.unwrap_or(UNSPECIFIED)),
        dst: addr_to_wit(f.dst.unwrap_or(UNSPECIFIED)),
        src_port: f.src_port,
        dst_port: f.dst_port,
        protocol: f.protocol,
        source: if f.from_flow_log {
            wit::FlowSource::FlowLog
        } else {
            wit::FlowSource::Packets
        },
        resolved_name: f.resolved_name.clone(),
        cname_chain: f.cname_chain.clone(),
        sni: f.sni.clone(),
        http_host: f.http_host.clone(),
        denied_by_nsg: f.denied_by_nsg,
        packets: f.packets,
        bytes: f.bytes,
        first_seen_ns: f.first_seen_ns,
        last_seen_ns: f.last_seen_ns,
    }
}

fn flow_from_wit(f: &wit::Flow) -> OwnedFlow {
    OwnedFlow {
        src: Some(addr_from_wit(f.src)),
        dst: Some(addr_from_wit(f.dst)),
        src_port: f.src_port,
        dst_port: f.dst_port,
        protocol: f.protocol,
        from_flow_log: matches!(f.source, wit::FlowSource::FlowLog),
        denied_by_nsg: f.denied_by_nsg,
        resolved_name: f.resolved_name.clone(),
        cname_chain: f.cname_chain.clone(),
        sni: f.sni.clone(),
        http_host: f.http_host.clone(),
        packets: f.packets,
        bytes: f.bytes,
        first_seen_ns: f.first_seen_ns,
        last_seen_ns: f.last_seen_ns,
    }
}

fn dns_to_wit(d: &OwnedDnsAnswer) -> wit::DnsAnswer {
    wit::DnsAnswer {
        client: addr_to_wit(d.client.unwrap_or(UNSPECIFIED)),
        server: addr_to_wit(d.server.unwrap_or(UNSPECIFIED)),
        query: d.query.clone(),
        cname_chain: d.cname_chain.clone(),
        addresses: d.addresses.iter().map(|a| addr_to_wit(*a)).collect(),
        ttl: d.ttl,
        timestamp_ns: d.timestamp_ns,
    }
}

fn dns_from_wit(d: &wit::DnsAnswer) -> OwnedDnsAnswer {
    OwnedDnsAnswer {
        client: Some(addr_from_wit(d.client)),
        server: Some(addr_from_wit(d.server)),
        query: d.query.clone(),
        cname_chain: d.cname_chain.clone(),
        addresses: d.addresses.iter().map(|a| addr_from_wit(*a)).collect(),
        ttl: d.ttl,
        timestamp_ns: d.timestamp_ns,
    }
}

fn kind_from_wit(k: wit::FindingKind) -> FindingKind {
    match k {
        wit::FindingKind::PeBypass => FindingKind::PeBypass,
        wit::FindingKind::DnsPublicResolution => FindingKind::DnsPublicResolution,
        wit::FindingKind::DnsConflict => FindingKind::DnsConflict,
        wit::FindingKind::OriginNotAllowed => FindingKind::OriginNotAllowed,
        wit::FindingKind::PublicAccess => FindingKind::PublicAccess,
        wit::FindingKind::UntrustedOutbound => FindingKind::UntrustedOutbound,
        wit::FindingKind::ServiceTagReliance => FindingKind::ServiceTagReliance,
        wit::FindingKind::Rule => FindingKind::Rule,
    }
}

fn finding_from_wit(f: wit::Finding) -> record::Finding {
    record::Finding {
        index: f.index,
        kind: kind_from_wit(f.kind),
        rule: f.rule,
        severity: match f.severity {
            wit::Severity::Info => Severity::Info,
            wit::Severity::Low => Severity::Low,
            wit::Severity::Medium => Severity::Medium,
            wit::Severity::High => Severity::High,
            wit::Severity::Critical => Severity::Critical,
        },
        action: match f.action {
            wit::Action::Allow => Action::Allow,
            wit::Action::Alert => Action::Alert,
            wit::Action::Deny => Action::Deny,
        },
        line: f.line,
        reason: f.reason,
    }
}
