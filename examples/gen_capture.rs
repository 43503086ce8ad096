//! Writes a synthetic capture for benchmarks and demonstrations.
//!
//! ```text
//! cargo run --release --example gen-capture -- --packets 1000000 --flows 4000 -o big.pcap
//! cargo run --example gen-capture -- --demo -o examples/fabrikam-demo.pcap
//! ```
//!
//! The generated traffic is described in `linkward_synth::generate`; the summary printed
//! on standard output (JSON) says how many packets and flows were written and which
//! findings a scan against `examples/fabrikam.toml` must report.

use anyhow::Context;
use clap::Parser;
use linkward_synth::{GenConfig, demo_frames, demo_pcap, generate};
use std::fs::File;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(about = "Writes a deterministic synthetic capture (classic pcap, Ethernet)")]
struct Args {
    /// Packets to write.
    #[arg(long, default_value_t = 1_000_000)]
    packets: u64,
    /// Flows to spread them over.
    #[arg(long, default_value_t = 4_000)]
    flows: u32,
    /// Bytes kept of each packet.
    #[arg(long, default_value_t = 262_144)]
    snaplen: u32,
    /// Seed: the same seed writes the same file.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// TCP payload of each server data segment (1460: 1500-byte IP packets).
    #[arg(long, default_value_t = 1460)]
    payload_size: usize,
    /// Leave out the sessions that break the example policy.
    #[arg(long)]
    no_violations: bool,
    /// Sessions in progress at once.
    #[arg(long, default_value_t = 4096)]
    concurrent: u32,
    /// Write the small demonstration capture instead (the other settings are ignored).
    #[arg(long)]
    demo: bool,
    /// The capture file to write.
    #[arg(short, long)]
    output: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.demo {
        let bytes = demo_pcap()?;
        std::fs::write(&args.output, &bytes)
            .with_context(|| format!("cannot write {}", args.output.display()))?;
        let summary = serde_json::json!({
            "packets": demo_frames()?.len(),
            "bytes": bytes.len(),
            "expected": {
                "dns-public-resolution": 1,
                "pe-bypass": 1,
                "origin-not-allowed": 1,
                "rule": 1,
                "untrusted-outbound": 1,
                "service-tag-reliance": 1,
            }
        });
        println!("{summary}");
        return Ok(());
    }
    let config = GenConfig {
        packets: args.packets,
        flows: args.flows,
        snaplen: args.snaplen,
        seed: args.seed,
        payload_size: args.payload_size,
        violations: !args.no_violations,
        concurrent_flows: args.concurrent,
        ..GenConfig::default()
    };
    let file = File::create(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    // The capture writer buffers its output itself.
    let summary = generate(&config, file)?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}
