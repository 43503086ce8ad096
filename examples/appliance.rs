//! An appliance integration through the library, without the command line: raw frames
//! in (link type, timestamp, bytes), findings out on a channel, a module swapped while
//! running, statistics at the end. `cargo run --example appliance`
use linkward_host::evaluation::{ChannelSink, Report};
use linkward_host::pipeline::{Pipeline, ScanOptions};
use linkward_host::sandbox::{Limits, PolicyEngine};
use linkward_host::subject::Subject;
use linkward_host::swap::{ModuleSlot, SlotBackend};
use linkward_host::watch::load_module;
use linkward_policy::compile::compile_source;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One engine per process; each module is checked (contract, self-tests) as it loads.
    let engine = PolicyEngine::new(Limits::default())?;
    let source = include_str!("fabrikam.toml");
    let build = |v: &str| compile_source("fabrikam.toml", &source.replace("1.4.0", v), None);
    let slot = ModuleSlot::new(load_module(&engine, &build("1.4.0")?.wasm, None)?);

    // Findings go to another thread (a SIEM forwarder, say).
    let (tx, rx) = std::sync::mpsc::channel::<(Subject, Report)>();
    let consumer = std::thread::spawn(move || {
        for (subject, report) in rx {
            let (src, sport, dst, dport, ..) = subject.endpoints();
            let (kind, version) = (report.kind.id(), &report.policy_version);
            println!("{kind} {src}:{sport} -> {dst}:{dport} (policy {version})");
        }
    });
    let (mut sink, mut backend) = (ChannelSink(tx), SlotBackend::new(slot.clone()));
    let mut pipeline = Pipeline::new(&ScanOptions::default())?;

    // Frames as the appliance's capture path delivers them; here, synthetic traffic.
    let frames = linkward_synth::demo_frames()?;
    for (i, f) in frames.iter().enumerate() {
        if i == frames.len() / 2 {
            // The control plane pushes a new module: checked here, off the hot path;
            // the pipeline switches to it at its next batch.
            pipeline.flush(&mut backend, &mut sink)?;
            let swap = slot.install(load_module(&engine, &build("1.5.0")?.wasm, None)?);
            let (old, new) = (swap.old_version, swap.new_version);
            eprintln!(
                "swapped {} {old} -> {new} (generation {})",
                swap.policy, swap.generation
            );
        }
        let link = f.link.linktype();
        pipeline.feed(link, &f.data, f.ts_ns, 0, &mut backend, &mut sink)?;
    }
    pipeline.finish(0, &mut backend, &mut sink)?;
    drop(sink);
    consumer
        .join()
        .map_err(|_| "the finding consumer panicked")?;
    eprint!("{}", pipeline.stats().render());
    Ok(())
}
