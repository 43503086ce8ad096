//! `linkward scan --workers N` on one file: two workers scan a half each and join them,
//! more take turns walking it and each tracks its own flows, and the run reports
//! exactly what one worker reports, findings and statistics alike, whatever the file
//! holds (fragments, frames that are not IP, malformed ones, a filter, a cut at the
//! end).

mod common;

use common::{Scan, fabrikam_policy, scan};
use linkward_capture::{CaptureFile, PcapWriter, TsResolution};
use linkward_synth::{FrameBuilder, Link};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The statistics that must not depend on the number of workers.
fn comparable(s: &Scan) -> serde_json::Value {
    let mut stats = s.stats.clone();
    if let Some(map) = stats.as_object_mut() {
        for timing in ["elapsed_secs", "packets_per_sec", "batches"] {
            map.remove(timing);
        }
    }
    stats
}

/// Checks 2 and 3 workers against one; returns one worker's scan and how the two
/// workers joined their halves.
fn assert_same_as_one_worker(capture: &Path, extra: &[&str]) -> (Scan, serde_json::Value) {
    let one = scan(&fabrikam_policy(), &[capture], extra);
    assert!(one.code == 0 || one.code == 2, "{}", one.stderr);
    assert!(!one.findings.is_empty());
    assert!(one.split.is_null());
    let mut split = serde_json::Value::Null;
    for workers in ["2", "3"] {
        let mut args = extra.to_vec();
        args.extend(["--workers", workers]);
        let many = scan(&fabrikam_policy(), &[capture], &args);
        let context = format!("{} with {workers} workers {extra:?}", capture.display());
        assert_eq!(many.code, one.code, "{context}: {}", many.stderr);
        assert_eq!(many.findings, one.findings, "{context}");
        assert_eq!(comparable(&many), comparable(&one), "{context}");
        assert_eq!(many.stderr, one.stderr, "{context}");
        if workers == "2" {
            split = many.split;
        } else {
            assert!(many.split.is_null(), "{context}");
        }
    }
    (one, split)
}

fn generated(dir: &Path, snaplen: u32) -> PathBuf {
    let config = linkward_synth::GenConfig {
        packets: 20_000,
        flows: 800,
        snaplen,
        seed: 5,
        ..linkward_synth::GenConfig::default()
    };
    let path = dir.join(format!("gen-{snaplen}.pcap"));
    linkward_synth::generate(&config, std::fs::File::create(&path).unwrap()).unwrap();
    path
}

/// An Ethernet frame of a UDP datagram cut into two IPv4 fragments.
fn fragments(n: u16) -> [Vec<u8>; 2] {
    let src: SocketAddr = format!("10.9.{}.{}:7000", n >> 8, n & 0xff)
        .parse()
        .unwrap();
    let dst: SocketAddr = "10.9.255.1:9000".parse().unwrap();
    let whole = FrameBuilder::new(Link::Ethernet)
        .udp(src, dst, &[0x5a; 64])
        .unwrap();
    let (link, ip) = whole.split_at(14);
    let (header, payload) = ip.split_at(20);
    let piece = |data: &[u8], offset: usize, more: bool| {
        let mut h = header.to_vec();
        h[2..4].copy_from_slice(&((20 + data.len()) as u16).to_be_bytes());
        h[4..6].copy_from_slice(&n.to_be_bytes());
        let flags = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
        h[6..8].copy_from_slice(&flags.to_be_bytes());
        [link, &h, data].concat()
    };
    [
        piece(&payload[..40], 0, true),
        piece(&payload[40..], 40, false),
    ]
}

/// A UDP frame whose payload is a run of well-formed fake pcap record headers: a
/// segment boundary guessed inside it is wrong, and the workers must notice.
fn decoys() -> Vec<u8> {
    let mut payload = Vec::new();
    while payload.len() < 60_000 {
        for field in [1_740_992_400u32, 5, 8, 8] {
            payload.extend_from_slice(&field.to_le_bytes());
        }
        payload.extend_from_slice(&[0x45; 8]);
    }
    FrameBuilder::new(Link::Ethernet)
        .udp(
            "10.9.254.1:7001".parse().unwrap(),
            "10.9.254.2:9001".parse().unwrap(),
            &payload,
        )
        .unwrap()
}

/// The generated capture with, every 500 packets, an ARP frame, a frame cut inside its
/// IP header, a fragmented datagram (work for worker 0 and for every worker), and every
/// 100 packets a frame full of fake record headers.
fn mixed(dir: &Path, from: &Path) -> PathBuf {
    let file = CaptureFile::open(from).unwrap();
    let mut w = PcapWriter::new(Vec::new(), 1, 262_144, TsResolution::Nano).unwrap();
    let arp = [vec![0xff; 6], vec![2; 6], vec![0x08, 0x06], vec![0; 28]].concat();
    let decoys = decoys();
    for (i, p) in file.packets().enumerate() {
        let p = p.unwrap();
        w.write_packet(p.ts_ns, p.data, p.orig_len).unwrap();
        if i % 100 == 50 {
            w.write_packet(p.ts_ns, &decoys, decoys.len() as u32)
                .unwrap();
        }
        if i % 500 == 250 {
            w.write_packet(p.ts_ns, &arp, 42).unwrap();
            w.write_packet(p.ts_ns, &p.data[..24], p.orig_len).unwrap();
            for f in fragments(i as u16) {
                w.write_packet(p.ts_ns, &f, f.len() as u32).unwrap();
            }
        }
    }
    let path = dir.join("mixed.pcap");
    std::fs::write(&path, w.finish().unwrap()).unwrap();
    path
}

#[test]
fn workers_sharing_a_file_report_what_one_worker_reports() {
    let dir = tempfile::tempdir().unwrap();
    let full = generated(dir.path(), 262_144);
    let snap = generated(dir.path(), 96);
    // Nothing in a generated capture keeps the halves from being stitched.
    for capture in [&full, &snap] {
        let (_, split) = assert_same_as_one_worker(capture, &[]);
        assert_eq!(
            split["joined"],
            "stitched",
            "{}: {split}",
            capture.display()
        );
    }

    let mixed = mixed(dir.path(), &full);
    let (s, split) = assert_same_as_one_worker(&mixed, &[]);
    assert!(split["joined"].is_string(), "{split}");
    assert_eq!(s.stat("packets.skipped.not-ip"), 40);
    assert_eq!(s.stat("packets.malformed.truncated-ip"), 40);
    assert_eq!(s.stat("packets.skipped.fragment-pending"), 40);
    assert_eq!(s.stat("packets.packets_read"), 20_000 + 4 * 40 + 200);
    let (filtered, _) = assert_same_as_one_worker(&mixed, &["--bpf", "not udp port 9000"]);
    assert!(filtered.stat("packets.filtered") > 0);
}

#[test]
fn workers_sharing_a_cut_file_stop_where_one_worker_stops() {
    let dir = tempfile::tempdir().unwrap();
    let full = generated(dir.path(), 262_144);
    let bytes = std::fs::read(&full).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() * 7 / 10 + 3]).unwrap();
    let (s, split) = assert_same_as_one_worker(&cut, &[]);
    // The end is in the second half: its worker's notes are dropped, and the first
    // half's worker reads on to the damage, numbering packets from the start.
    assert_eq!(split["joined"], "stopped", "{split}");
    assert_eq!(s.code, 2);
    assert!(s.stderr.contains("cut.pcap: packet "), "{}", s.stderr);

    // Damage in the first half ends the scan there, whatever the second half held: a
    // record 30 % into the file claims more bytes than any record may hold.
    let offsets: Vec<u64> = CaptureFile::open(&full)
        .unwrap()
        .packets()
        .map(|p| p.unwrap().offset)
        .collect();
    let at = offsets[offsets.len() * 3 / 10] as usize;
    let mut damaged = bytes.clone();
    damaged[at + 8..at + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let broken = dir.path().join("broken.pcap");
    std::fs::write(&broken, &damaged).unwrap();
    let (s, split) = assert_same_as_one_worker(&broken, &[]);
    assert_eq!(split["joined"], "stopped", "{split}");
    assert_eq!(s.code, 2);
}

#[test]
fn two_workers_stop_when_the_policy_does_not_load() {
    // The second half starts before the module is loaded and waits for it at its first
    // batch: a module that never comes must end that wait, not hang the scan.
    let dir = tempfile::tempdir().unwrap();
    let full = generated(dir.path(), 262_144);
    // A DNS answer at the end, which the second half evaluates, so it needs the module.
    let file = CaptureFile::open(&full).unwrap();
    let mut w = PcapWriter::new(Vec::new(), 1, 262_144, TsResolution::Nano).unwrap();
    let mut last_ns = 0;
    for p in file.packets() {
        let p = p.unwrap();
        w.write_packet(p.ts_ns, p.data, p.orig_len).unwrap();
        last_ns = p.ts_ns;
    }
    let answer = linkward_synth::dns_exchange(
        Link::Ethernet,
        "10.1.0.1:5300".parse().unwrap(),
        "10.0.0.53:53".parse().unwrap(),
        "late.example",
        &[],
        &["20.60.1.1".parse().unwrap()],
        60,
        last_ns + 1_000_000,
    )
    .unwrap();
    for f in answer {
        w.write_packet(f.ts_ns, &f.data, f.data.len() as u32)
            .unwrap();
    }
    let capture = dir.path().join("answer-at-end.pcap");
    std::fs::write(&capture, w.finish().unwrap()).unwrap();
    let policy = dir.path().join("broken.toml");
    std::fs::write(&policy, "not a policy").unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_linkward"))
        .args(["scan", "--quiet", "--workers", "2", "-o"])
        .arg(dir.path().join("out.eve.json"))
        .arg("--policy")
        .arg(&policy)
        .arg(&capture)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the scan did not end");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(2));
}
