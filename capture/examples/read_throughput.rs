//! Measures how fast the readers walk a capture: writes a pcap and a pcapng
//! file of generated packets to a temporary directory, then times the
//! zero-copy reader and libpcap's copying reader over them.
//!
//! Run with `cargo run --release -p linkward-capture --example read_throughput [packets]`.

use std::error::Error;
use std::fs::File;
use std::path::Path;
use std::time::Instant;

use linkward_capture::{CaptureFile, PcapNgWriter, PcapWriter, TsResolution, open_with_libpcap};

/// Packet sizes cycling between small (ACKs, DNS) and full frames.
const SIZES: [usize; 4] = [64, 128, 590, 1514];

fn main() -> Result<(), Box<dyn Error>> {
    let packets: u64 = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 2_000_000,
    };
    let dir = std::env::temp_dir().join(format!(
        "linkward-capture-throughput-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)?;
    let frame = vec![0x5au8; 1514];

    let pcap_path = dir.join("bench.pcap");
    let mut pcap = PcapWriter::new(File::create(&pcap_path)?, 1, 65535, TsResolution::Nano)?;
    let ng_path = dir.join("bench.pcapng");
    let mut ng = PcapNgWriter::new(File::create(&ng_path)?)?;
    ng.add_interface(1, 65535)?;
    let started = Instant::now();
    for i in 0..packets {
        let len = SIZES[(i % 4) as usize];
        pcap.write_packet(i * 1_000, &frame[..len], len as u32)?;
        ng.write_packet(0, i * 1_000, &frame[..len], len as u32)?;
    }
    pcap.finish()?;
    ng.finish()?;
    report("write pcap+pcapng", 2 * packets, started);

    for path in [&pcap_path, &ng_path] {
        // A first walk brings the file into the page cache.
        walk(path)?;
        let started = Instant::now();
        let (count, bytes) = walk(path)?;
        report(
            &format!("zero-copy {} ({} MB)", name(path), bytes >> 20),
            count,
            started,
        );

        let started = Instant::now();
        let mut count = 0u64;
        for packet in open_with_libpcap(path)? {
            std::hint::black_box(packet?.data.len());
            count += 1;
        }
        report(&format!("libpcap   {}", name(path)), count, started);
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn walk(path: &Path) -> Result<(u64, u64), Box<dyn Error>> {
    let file = CaptureFile::open(path)?;
    let mut count = 0u64;
    let mut bytes = 0u64;
    for packet in file.packets() {
        let packet = packet?;
        // Touch the first byte, as a decoder would.
        bytes +=
            packet.data.len() as u64 + u64::from(packet.data.first().copied().unwrap_or(0) & 1);
        count += 1;
    }
    Ok((count, bytes))
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn report(what: &str, count: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{what:<40} {count:>9} packets in {secs:>6.3} s = {:>6.2} M packets/s",
        count as f64 / secs / 1e6
    );
}
