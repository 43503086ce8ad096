//! Reads every capture of the shared corpus of third-party files: none may
//! panic, and the packet counts of the well-formed ones must equal tshark's.
//! The packets must also equal what libpcap's own reader returns.
//!
//! Skipped (with a message) when the corpus or tshark is not installed; the
//! files this crate's other tests depend on are copied into `tests/data`.

use std::path::{Path, PathBuf};
use std::process::Command;

use linkward_capture::{CaptureFile, open_with_libpcap};

/// The shared corpus beside the repository (`../shared/corpus`), when it is there.
fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus")
}

fn corpus_files() -> Option<Vec<PathBuf>> {
    let root = corpus_root();
    let root = root.as_path();
    if !root.is_dir() {
        eprintln!("skipped: corpus {} is absent", root.display());
        return None;
    }
    let mut files = Vec::new();
    let mut dirs = vec![root.join("pcaps"), root.join("ipfix")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Some(files)
}

fn is_wellformed(path: &Path) -> bool {
    let text = path.to_string_lossy();
    text.contains("/wellformed/") || text.contains("/ipfix/")
}

/// Packets tshark reports, or `None` when tshark is missing or refuses the
/// file.
fn tshark_count(path: &Path) -> Option<u64> {
    let output = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-T", "fields", "-e", "frame.number"])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(output.stdout.iter().filter(|&&b| b == b'\n').count() as u64)
}

struct Walk {
    good: u64,
    errors: Vec<String>,
}

fn walk(file: &CaptureFile) -> Walk {
    let mut good = 0;
    let mut errors = Vec::new();
    for item in file.packets() {
        match item {
            Ok(_) => good += 1,
            Err(e) => errors.push(e.to_string()),
        }
    }
    Walk { good, errors }
}

#[test]
fn every_corpus_file_reads_without_panic_and_wellformed_counts_match_tshark() {
    let Some(files) = corpus_files() else {
        return;
    };
    let have_tshark = Command::new("tshark").arg("--version").output().is_ok();
    if !have_tshark {
        eprintln!("tshark not found: packet counts are not compared");
    }
    assert!(
        files.len() > 50,
        "corpus looks incomplete: {} files",
        files.len()
    );
    let mut compared = 0;
    for path in &files {
        let opened = CaptureFile::open(path);
        let tshark = if have_tshark {
            tshark_count(path)
        } else {
            None
        };
        match opened {
            Ok(file) => {
                let walk = walk(&file);
                if is_wellformed(path) {
                    assert!(
                        walk.errors.is_empty(),
                        "{}: {:?}",
                        path.display(),
                        walk.errors
                    );
                }
                if let Some(expected) = tshark {
                    assert_eq!(walk.good, expected, "{}: packets vs tshark", path.display());
                    compared += 1;
                }
            }
            Err(e) => {
                assert!(!is_wellformed(path), "{}: {e}", path.display());
                assert_eq!(
                    tshark,
                    None,
                    "{}: tshark reads it but we refuse: {e}",
                    path.display()
                );
            }
        }
    }
    if have_tshark {
        assert!(compared > 50, "only {compared} files compared with tshark");
    }
}

#[test]
fn corpus_packets_equal_libpcap_packets() {
    let Some(files) = corpus_files() else {
        return;
    };
    let mut compared = 0;
    let mut cut = 0;
    for path in &files {
        let (Ok(file), Ok(reference)) = (CaptureFile::open(path), open_with_libpcap(path)) else {
            continue;
        };
        let ours: Vec<_> = file.packets().map_while(Result::ok).collect();
        let theirs: Vec<_> = reference.map_while(Result::ok).collect();
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{}: packet count vs libpcap",
            path.display()
        );
        for (a, b) in ours.iter().zip(&theirs) {
            let at = format!("{} packet {}", path.display(), a.number);
            assert_eq!(a.number, b.number, "{at}");
            if a.data.len() == b.data.len() {
                assert_eq!(a.data, &b.data[..], "{at}: data");
            } else {
                // libpcap cuts a record longer than the file's snaplen down
                // to the snaplen; this reader delivers all its bytes.
                assert!(
                    a.data.starts_with(&b.data),
                    "{at}: libpcap data is not a prefix"
                );
                cut += 1;
            }
            assert_eq!(a.orig_len, b.orig_len, "{at}: orig_len");
            assert_eq!(a.link_type, b.link_type, "{at}: link type");
            // Fraction fields of a billion and more are invalid; libpcap
            // reads them as signed, this reader as the unsigned fields the
            // format defines.
            if !path.to_string_lossy().contains("timestamp_invalid") {
                assert_eq!(a.ts_ns, b.ts_ns, "{at}: timestamp");
            }
        }
        compared += 1;
    }
    assert!(compared > 50, "only {compared} files compared with libpcap");
    // The corpus records whose caplen exceeds the file snaplen: three in
    // tcpdump__icmp-icmp_print-oobr-2, one each in tcpdump__mptcp-dss-oobr
    // and zeek__trunc-hdr.
    assert_eq!(cut, 5, "records cut by libpcap");
}
