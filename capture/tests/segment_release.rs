//! Cutting a mapped capture into segments leaves nothing of it resident, and never
//! holds much of it on the way.
//!
//! The boundary search reads a little at every boundary, and each read maps what the
//! kernel maps at a fault: sixteen 4 KiB pages, or a whole 2 MiB folio when the file is
//! cached in large folios. Without a release, a large capture cut for two workers was
//! half resident before any walk began. This test is alone in its binary so that no
//! other test's mappings move the process's resident set while it measures.

#![cfg(target_os = "linux")]

use linkward_capture::{CaptureFile, PcapWriter, TsResolution};
use std::io::BufWriter;

/// A figure of `/proc/self/status`, in KiB: `RssFile` and `RssShmem` (resident
/// file-backed memory now) or `VmHWM` (the peak of all resident memory so far).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

#[test]
fn cutting_a_capture_into_segments_leaves_it_unmapped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.pcap");
    let out = BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut w = PcapWriter::new(out, 1, 65535, TsResolution::Micro).unwrap();
    let frame = vec![0x5a_u8; 1_500];
    // 48,000 full-size records: 73 MB, about 280 segments of 256 KiB.
    for i in 0..48_000u64 {
        w.write_packet(1_700_000_000_000_000_000 + i * 1_000, &frame, 1_500)
            .unwrap();
    }
    w.finish().unwrap();

    // The search once over a small copy in memory first, so that the pages of this
    // program's own code that it runs are resident before the measurement.
    let mut small = PcapWriter::new(Vec::new(), 1, 65535, TsResolution::Micro).unwrap();
    for i in 0..2_000u64 {
        small.write_packet(i * 1_000, &frame, 1_500).unwrap();
    }
    let small = CaptureFile::from_bytes("small.pcap", small.finish().unwrap()).unwrap();
    assert!(small.segments(256 << 10).is_some_and(|s| s.len() > 1));

    let file = CaptureFile::open(&path).unwrap();
    // File pages count as RssShmem where the temporary directory is a tmpfs.
    let mapped = || status_kib("RssFile") + status_kib("RssShmem");
    let (before, peak_before) = (mapped(), status_kib("VmHWM"));
    let segments = file.segments(256 << 10).expect("classic pcap splits");
    let grown = mapped().saturating_sub(before);
    let peak_grown = status_kib("VmHWM").saturating_sub(peak_before);
    assert!(segments.len() > 250, "{} segments", segments.len());
    // Each boundary's read maps at least 64 KiB (18 MB over all of them) unless it is
    // released; what may stay is the last boundary's pages.
    assert!(
        grown < 4 << 10,
        "cutting {} segments left {grown} KiB of the file resident",
        segments.len()
    );
    // Released as the search goes, not only at its end: the peak stays low too.
    assert!(
        peak_grown < 8 << 10,
        "cutting {} segments raised the peak resident set by {peak_grown} KiB",
        segments.len()
    );
    // The file still reads in full after the release.
    assert_eq!(file.packets().filter(Result::is_ok).count(), 48_000);
}
