//! The pause a worker sees when the module is swapped under load.
//!
//! A worker thread feeds TLS flows through a [`Pipeline`] as fast as it can, evaluating
//! through a [`SlotBackend`]; the main thread installs a new module (alternately two
//! loaded modules, so loading cost stays out of the measurement: it is paid off the hot
//! path by whoever loads) every few milliseconds. Reported, as p50 / p99 / max over
//! every swap:
//!
//! - **switch**: the time the worker spends taking the new module from the slot
//!   (`SlotBackend::switch_times`);
//! - **first batch**: the whole first batch after a switch, which also pays for
//!   instantiating the new module;
//! - **pause**: the first batch's extra time over the median of ordinary batches: what a
//!   swap costs the worker;
//! - ordinary batches, for comparison.
//!
//! `cargo bench --bench swap [-- --swaps N]` (default 250 swaps, a few seconds).

use linkward_guest::record::Finding;
use linkward_host::evaluation::{Backend, CollectSink};
use linkward_host::pipeline::{Pipeline, ScanOptions};
use linkward_host::sandbox::{Limits, PolicyEngine};
use linkward_host::swap::{ModuleSlot, SlotBackend};
use linkward_host::watch::load_module;
use linkward_synth::{Close, Conversation, FHIR_NAME, Frame, Link, tls_client_hello};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Wraps the slot backend and times every batch, noting whether it switched modules.
struct Probe {
    inner: SlotBackend,
    ordinary: Vec<Duration>,
    first_after_switch: Vec<Duration>,
}

impl Probe {
    fn timed(
        &mut self,
        call: impl FnOnce(&mut SlotBackend) -> Result<Vec<Finding>, String>,
    ) -> Result<Vec<Finding>, String> {
        let generation = self.inner.generation();
        let started = Instant::now();
        let result = call(&mut self.inner);
        let took = started.elapsed();
        if self.inner.generation() == generation {
            self.ordinary.push(took);
        } else {
            self.first_after_switch.push(took);
        }
        result
    }
}

impl Backend for Probe {
    fn evaluate_flows(&mut self, batch: &[u8], records: usize) -> Result<Vec<Finding>, String> {
        self.timed(|b| b.evaluate_flows(batch, records))
    }

    fn evaluate_dns(&mut self, batch: &[u8], records: usize) -> Result<Vec<Finding>, String> {
        self.timed(|b| b.evaluate_dns(batch, records))
    }

    fn policy(&self) -> (Arc<str>, Arc<str>) {
        self.inner.policy()
    }
}

fn frames(flows: u16) -> Vec<Frame> {
    let hello = tls_client_hello(Some(FHIR_NAME)).expect("ClientHello");
    let mut out = Vec::new();
    for i in 0..flows {
        let client = SocketAddr::from(([10, 1, 5, (i % 200) as u8 + 1], 20_000 + i));
        let server: SocketAddr = if i % 4 == 0 {
            "20.37.1.10:443".parse().expect("address")
        } else {
            "10.1.2.5:443".parse().expect("address")
        };
        out.extend(
            Conversation::new(Link::Ethernet, client, server)
                .request(&hello)
                .reply(&[0x17; 200])
                .close(Close::Reset)
                .start_ns(u64::from(i) * 100_000)
                .frames()
                .expect("frames"),
        );
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    println!(
        "{name:<22} n={:<7} p50 {:>9.1} µs  p99 {:>9.1} µs  max {:>9.1} µs",
        v.len(),
        percentile(&v, 0.5).as_secs_f64() * 1e6,
        percentile(&v, 0.99).as_secs_f64() * 1e6,
        v.last().copied().unwrap_or_default().as_secs_f64() * 1e6
    );
}

fn main() {
    let mut swaps = 250usize;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--swaps")
        && let Some(n) = args.get(i + 1).and_then(|n| n.parse().ok())
    {
        swaps = n;
    }
    let engine = PolicyEngine::new(Limits::default()).expect("engine");
    let source = include_str!("../examples/fabrikam.toml");
    let module = |version: &str| {
        let wasm = linkward_policy::compile::compile_source(
            "fabrikam.toml",
            &source.replace("1.4.0", version),
            None,
        )
        .expect("policy compiles")
        .wasm;
        load_module(&engine, &wasm, None).expect("module loads")
    };
    let modules = [module("1.0.0"), module("2.0.0")];
    let slot = ModuleSlot::new(modules[0].clone());
    let traffic = frames(4000);
    let stop = Arc::new(AtomicBool::new(false));

    let worker = {
        let (slot, stop) = (slot.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut pipeline = Pipeline::new(&ScanOptions::default()).expect("pipeline");
            let mut probe = Probe {
                inner: SlotBackend::new(slot),
                ordinary: Vec::new(),
                first_after_switch: Vec::new(),
            };
            let mut sink = CollectSink::default();
            let mut round = 0u64;
            let mut packets = 0u64;
            let started = Instant::now();
            while !stop.load(Ordering::Acquire) {
                // Each round replays the flows later in time, as new connections.
                let offset = round * 1_000_000_000_000;
                for f in &traffic {
                    let link = f.link.linktype();
                    pipeline
                        .feed(link, &f.data, f.ts_ns + offset, 0, &mut probe, &mut sink)
                        .expect("feed");
                }
                packets += traffic.len() as u64;
                sink.reports.clear();
                round += 1;
            }
            pipeline.finish(0, &mut probe, &mut sink).expect("finish");
            let rate = packets as f64 / started.elapsed().as_secs_f64();
            (probe, rate)
        })
    };

    let interval = Duration::from_millis(10);
    std::thread::sleep(interval * 10);
    for i in 0..swaps {
        slot.install(modules[(i + 1) % 2].clone());
        std::thread::sleep(interval);
    }
    stop.store(true, Ordering::Release);
    let (probe, rate) = worker.join().expect("worker");

    let mut ordinary = probe.ordinary.clone();
    ordinary.sort();
    let typical = percentile(&ordinary, 0.5);
    let pauses: Vec<Duration> = probe
        .first_after_switch
        .iter()
        .map(|d| d.saturating_sub(typical))
        .collect();
    println!(
        "swap pause under load: {swaps} swaps installed, {} seen by the worker, {:.0} packets/s",
        probe.inner.switch_times.len(),
        rate
    );
    report("switch", probe.inner.switch_times.clone());
    report("first batch", probe.first_after_switch.clone());
    report("pause (extra time)", pauses);
    report("ordinary batch", probe.ordinary);
    assert!(
        probe.inner.switch_times.len() >= swaps.min(200),
        "the worker saw too few swaps"
    );
}
