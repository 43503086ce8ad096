//! Truncated, corrupt and garbage inputs: never a panic, every complete
//! packet before the damage, and an error that says where and what.

mod common;

use common::*;
use linkward_capture::{
    CaptureError, CaptureFile, ErrorKind, MAX_CAPLEN, PcapNgWriter, PcapWriter, TsResolution,
};

/// Reads everything, returning the good packet count and the errors.
fn read_all(file: &CaptureFile) -> (u64, Vec<CaptureError>) {
    let mut good = 0;
    let mut errors = Vec::new();
    let mut items = 0;
    for item in file.packets() {
        items += 1;
        assert!(items < 1_000_000, "iterator does not end");
        match item {
            Ok(_) => good += 1,
            Err(e) => errors.push(e),
        }
    }
    (good, errors)
}

fn small_pcap() -> (Vec<u8>, Vec<usize>) {
    let mut writer = PcapWriter::new(Vec::new(), 1, 65535, TsResolution::Micro).unwrap();
    let mut ends = Vec::new();
    let mut end = 24;
    for (i, len) in [30usize, 1, 0, 45].into_iter().enumerate() {
        writer
            .write_packet(i as u64 * 1_000, &payload(i as u8, len), len as u32)
            .unwrap();
        end += 16 + len;
        ends.push(end);
    }
    (writer.finish().unwrap(), ends)
}

fn small_pcapng() -> (Vec<u8>, Vec<usize>) {
    let mut writer = PcapNgWriter::new(Vec::new()).unwrap();
    writer.add_interface(1, 65535).unwrap();
    writer.add_interface(101, 65535).unwrap();
    let mut ends = Vec::new();
    let mut end = 28 + 32 + 32;
    for (i, len) in [30usize, 1, 0, 45].into_iter().enumerate() {
        writer
            .write_packet(i as u32 % 2, i as u64, &payload(i as u8, len), len as u32)
            .unwrap();
        end += 32 + len.div_ceil(4) * 4;
        ends.push(end);
    }
    (writer.finish().unwrap(), ends)
}

#[test]
fn pcap_cut_at_every_byte() {
    let (bytes, ends) = small_pcap();
    assert_eq!(*ends.last().unwrap(), bytes.len());
    for cut in 0..=bytes.len() {
        let opened = CaptureFile::from_bytes("cut.pcap", bytes[..cut].to_vec());
        if cut < 24 {
            let err = opened.unwrap_err();
            let expected = match cut {
                0 => matches!(err.kind(), ErrorKind::EmptyFile),
                1..=3 => matches!(err.kind(), ErrorKind::NotACapture { .. }),
                _ => matches!(
                    err.kind(),
                    ErrorKind::TruncatedFileHeader { needed: 24, available } if *available == cut as u64
                ),
            };
            assert!(expected, "cut {cut}: {err}");
            continue;
        }
        let file = opened.unwrap();
        let (good, errors) = read_all(&file);
        let complete = ends.iter().filter(|&&end| end <= cut).count() as u64;
        assert_eq!(good, complete, "cut {cut}");
        let boundary = cut == 24 || ends.contains(&cut);
        if boundary {
            assert!(errors.is_empty(), "cut {cut}: {errors:?}");
            continue;
        }
        assert_eq!(errors.len(), 1, "cut {cut}");
        let err = &errors[0];
        assert!(!err.is_recoverable());
        assert_eq!(err.packet(), Some(complete + 1), "cut {cut}");
        let record_start = if complete == 0 {
            24
        } else {
            ends[complete as usize - 1]
        };
        assert_eq!(err.offset(), Some(record_start as u64), "cut {cut}");
        let left = (cut - record_start) as u64;
        match err.kind() {
            ErrorKind::TruncatedRecordHeader {
                needed: 16,
                available,
                packets_read,
            } => {
                assert_eq!(*available, left, "cut {cut}");
                assert_eq!(*packets_read, complete);
            }
            ErrorKind::TruncatedRecordData {
                available,
                packets_read,
                ..
            } => {
                assert_eq!(*available, left - 16, "cut {cut}");
                assert_eq!(*packets_read, complete);
            }
            other => panic!("cut {cut}: unexpected {other}"),
        }
    }
}

#[test]
fn truncation_message_says_how_far_reading_got() {
    let (bytes, ends) = small_pcap();
    let cut = ends[1] + 10;
    let file = CaptureFile::from_bytes("cut.pcap", bytes[..cut].to_vec()).unwrap();
    let err = file.packets().find_map(Result::err).unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "cut.pcap: packet 3 at byte offset {}: truncated record header: 10 of 16 bytes \
             present (the file ends after 2 packets)",
            ends[1]
        )
    );
    let cut = ends[2] + 16 + 20;
    let file = CaptureFile::from_bytes("cut.pcap", bytes[..cut].to_vec()).unwrap();
    let err = file.packets().find_map(Result::err).unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "cut.pcap: packet 4 at byte offset {}: captured length 45 is larger than the 20 \
             bytes left in the file (the file ends after 3 packets)",
            ends[2]
        )
    );
}

#[test]
fn pcapng_cut_at_every_byte() {
    let (bytes, ends) = small_pcapng();
    assert_eq!(*ends.last().unwrap(), bytes.len());
    let block_starts = [0usize, 28, 60, 92];
    for cut in 0..=bytes.len() {
        let opened = CaptureFile::from_bytes("cut.pcapng", bytes[..cut].to_vec());
        if cut < 28 {
            let err = opened.unwrap_err();
            let expected = match cut {
                0 => matches!(err.kind(), ErrorKind::EmptyFile),
                1..=3 => matches!(err.kind(), ErrorKind::NotACapture { .. }),
                _ => matches!(
                    err.kind(),
                    ErrorKind::TruncatedBlock {
                        block_type: 0x0A0D_0D0A,
                        ..
                    }
                ),
            };
            assert!(expected, "cut {cut}: {err}");
            continue;
        }
        let file = opened.unwrap();
        let (good, errors) = read_all(&file);
        let complete = ends.iter().filter(|&&end| end <= cut).count() as u64;
        assert_eq!(good, complete, "cut {cut}");
        if block_starts.contains(&cut) || ends.contains(&cut) {
            assert!(errors.is_empty(), "cut {cut}: {errors:?}");
            continue;
        }
        assert_eq!(errors.len(), 1, "cut {cut}");
        let err = &errors[0];
        assert!(!err.is_recoverable());
        let block_start = block_starts
            .iter()
            .chain(&ends)
            .copied()
            .filter(|&start| start <= cut)
            .max()
            .unwrap();
        assert_eq!(err.offset(), Some(block_start as u64), "cut {cut}");
        match err.kind() {
            ErrorKind::TruncatedBlock {
                available,
                packets_read,
                ..
            } => {
                assert_eq!(*available, (cut - block_start) as u64, "cut {cut}");
                assert_eq!(*packets_read, complete, "cut {cut}");
            }
            other => panic!("cut {cut}: unexpected {other}"),
        }
    }
}

#[test]
fn garbage_is_not_a_capture_and_says_what_it_saw() {
    let err = CaptureFile::from_bytes("page.pcap", b"<html><body>not found</body></html>".to_vec())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "page.pcap at byte offset 0: not a pcap or pcapng capture: the first 16 bytes are \
         3c 68 74 6d 6c 3e 3c 62 6f 64 79 3e 6e 6f 74 20 (\"<html><body>not \")"
    );
    match err.kind() {
        ErrorKind::NotACapture { first_bytes } => assert_eq!(first_bytes, b"<html><body>not "),
        other => panic!("unexpected {other}"),
    }

    let err = CaptureFile::from_bytes("short", vec![0xd4, 0xc3]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "short at byte offset 0: not a pcap or pcapng capture: the first 2 bytes are d4 c3 (\"..\")"
    );

    let mut rng = Lcg(7);
    for len in 1..300 {
        let mut bytes = rng.bytes(len);
        if bytes.len() >= 4 && bytes[0] == 0x0a {
            bytes[0] = 0;
        }
        let err = CaptureFile::from_bytes("noise", bytes).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::NotACapture { .. }), "{err}");
    }
}

#[test]
fn garbage_after_a_valid_header_ends_cleanly() {
    let mut rng = Lcg(99);
    for round in 0..200 {
        let noise = rng.bytes(round * 7 + 1);
        let mut pcap = pcap_header(round % 2 == 0, round % 3 == 0, 65535, 1);
        pcap.extend_from_slice(&noise);
        let file = CaptureFile::from_bytes("noise.pcap", pcap).unwrap();
        let (_, errors) = read_all(&file);
        assert!(errors.len() <= 1);

        let mut ng = shb(round % 2 == 0);
        ng.extend_from_slice(&noise);
        let file = CaptureFile::from_bytes("noise.pcapng", ng).unwrap();
        let _ = read_all(&file);
    }
}

#[test]
fn every_single_byte_corruption_of_a_pcapng_is_survived() {
    let (bytes, _) = small_pcapng();
    for at in 0..bytes.len() {
        for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[at] = value;
            if let Ok(file) = CaptureFile::from_bytes("flip.pcapng", damaged) {
                let (good, _) = read_all(&file);
                assert!(good <= 4);
            }
        }
    }
    let (bytes, _) = small_pcap();
    for at in 0..bytes.len() {
        for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[at] = value;
            if let Ok(file) = CaptureFile::from_bytes("flip.pcap", damaged) {
                let _ = read_all(&file);
            }
        }
    }
}

#[test]
fn caplen_above_snaplen_is_delivered_but_an_absurd_one_stops_reading() {
    let mut bytes = pcap_header(false, false, 64, 1);
    pcap_record(&mut bytes, false, 1, 0, &payload(1, 100), 100);
    let absurd_at = bytes.len() as u64;
    // A header claiming 300 000 bytes, followed by enough bytes to hold them.
    let mut record = Vec::new();
    put_u32(&mut record, 2, false);
    put_u32(&mut record, 0, false);
    put_u32(&mut record, 300_000, false);
    put_u32(&mut record, 300_000, false);
    bytes.extend(record);
    bytes.resize(bytes.len() + 300_000, 0xAA);
    let file = CaptureFile::from_bytes("big.pcap", bytes).unwrap();
    let items: Vec<_> = file.packets().collect();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_ref().unwrap().data.len(), 100);
    let err = items[1].as_ref().unwrap_err();
    assert!(!err.is_recoverable());
    assert_eq!(err.offset(), Some(absurd_at));
    assert!(matches!(
        err.kind(),
        ErrorKind::CaplenTooLarge {
            caplen: 300_000,
            snaplen: 64,
            max: MAX_CAPLEN
        }
    ));
    assert_eq!(
        err.to_string(),
        "big.pcap: packet 2 at byte offset 140: captured length 300000 is larger than the \
         262144-byte maximum (file snaplen 64): corrupt record header"
    );
}

#[test]
fn pcapng_record_problems_are_reported_and_reading_goes_on() {
    let mut bytes = shb(false);
    bytes.extend(idb(1, 0, Some(9), None, false));
    bytes.extend(epb(0, 1, &payload(1, 10), 10, false));
    let undeclared_at = bytes.len() as u64;
    bytes.extend(epb(3, 2, &payload(2, 10), 10, false));
    let unknown_at = bytes.len() as u64;
    bytes.extend(ng_block(0x0000_0042, &[9; 8], false));
    // An enhanced packet block whose caplen is larger than the block.
    let mut bad = epb(0, 3, &payload(3, 8), 8, false);
    bad[20..24].copy_from_slice(&100u32.to_le_bytes());
    let bad_at = bytes.len() as u64;
    bytes.extend(bad);
    bytes.extend(epb(0, 4, &payload(4, 10), 10, false));

    let file = CaptureFile::from_bytes("mixed.pcapng", bytes).unwrap();
    let items: Vec<_> = file.packets().collect();
    assert_eq!(items.len(), 5);
    assert_eq!(items[0].as_ref().unwrap().number, 1);

    let err = items[1].as_ref().unwrap_err();
    assert!(err.is_recoverable());
    assert_eq!(err.packet(), Some(2));
    assert_eq!(err.offset(), Some(undeclared_at));
    assert!(matches!(
        err.kind(),
        ErrorKind::UndeclaredInterface {
            interface: 3,
            declared: 1
        }
    ));
    assert_eq!(
        err.to_string(),
        format!(
            "mixed.pcapng: packet 2 at byte offset {undeclared_at}: packet refers to interface 3, \
             but its section declares 1 interfaces"
        )
    );

    let err = items[2].as_ref().unwrap_err();
    assert!(err.is_recoverable());
    assert_eq!(err.packet(), None);
    assert_eq!(err.offset(), Some(unknown_at));
    assert!(matches!(
        err.kind(),
        ErrorKind::UnknownBlock { block_type: 0x42 }
    ));

    let err = items[3].as_ref().unwrap_err();
    assert!(err.is_recoverable());
    assert_eq!(err.packet(), Some(3));
    assert_eq!(err.offset(), Some(bad_at));
    assert_eq!(
        err.to_string(),
        format!(
            "mixed.pcapng: packet 3 at byte offset {bad_at}: malformed enhanced packet block \
             (type 0x00000006): captured length 100 does not fit in the 40-byte block"
        )
    );

    let last = items[4].as_ref().unwrap();
    assert_eq!(last.number, 4);
    assert_eq!(last.ts_ns, 4);
}

#[test]
fn pcapng_framing_errors_stop_reading() {
    // Trailing length differs from the leading one.
    let mut bytes = shb(false);
    bytes.extend(idb(1, 0, None, None, false));
    let at = bytes.len();
    let mut block = epb(0, 1, &payload(1, 8), 8, false);
    let n = block.len();
    block[n - 4..].copy_from_slice(&44u32.to_le_bytes());
    bytes.extend(block);
    bytes.extend(epb(0, 2, &payload(2, 8), 8, false));
    let file = CaptureFile::from_bytes("mismatch.pcapng", bytes).unwrap();
    let items: Vec<_> = file.packets().collect();
    assert_eq!(items.len(), 1);
    let err = items[0].as_ref().unwrap_err();
    assert!(!err.is_recoverable());
    assert_eq!(err.offset(), Some(at as u64));
    assert!(matches!(
        err.kind(),
        ErrorKind::BlockLengthMismatch {
            block_type: 6,
            leading: 40,
            trailing: 44
        }
    ));

    // A length that is not a multiple of 4.
    let mut bytes = shb(false);
    let mut block = epb(0, 1, &payload(1, 8), 8, false);
    block[4..8].copy_from_slice(&41u32.to_le_bytes());
    bytes.extend(block);
    let file = CaptureFile::from_bytes("odd.pcapng", bytes).unwrap();
    let err = file.packets().next().unwrap().unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::BadBlockLength {
            block_type: 6,
            block_len: 41
        }
    ));
    assert_eq!(
        err.to_string(),
        "odd.pcapng at byte offset 28: enhanced packet block (type 0x00000006) has an invalid \
         length 41 (a block length is a multiple of 4, at least 12)"
    );
}

#[test]
fn unusable_timestamp_resolution_is_an_error() {
    let mut bytes = shb(false);
    bytes.extend(idb(1, 0, Some(20), None, false));
    bytes.extend(epb(0, 1, &payload(1, 8), 8, false));
    let file = CaptureFile::from_bytes("resol.pcapng", bytes).unwrap();
    let items: Vec<_> = file.packets().collect();
    assert_eq!(items.len(), 1);
    let err = items[0].as_ref().unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::BadTimestampResolution {
            interface: 0,
            tsresol: 20
        }
    ));
}

#[test]
fn invalid_timestamp_fields_saturate_instead_of_panicking() {
    let mut bytes = pcap_header(false, false, 65535, 1);
    pcap_record(&mut bytes, false, u32::MAX, u32::MAX, &[1], 1);
    let file = CaptureFile::from_bytes("ts.pcap", bytes).unwrap();
    let packet = file.packets().next().unwrap().unwrap();
    assert_eq!(
        packet.ts_ns,
        u64::from(u32::MAX) * 1_000_000_000 + u64::from(u32::MAX) * 1_000
    );

    let mut bytes = shb(false);
    bytes.extend(idb(1, 0, Some(0), None, false));
    bytes.extend(epb(0, u64::MAX, &[1], 1, false));
    bytes.extend(idb(1, 0, Some(9), Some(-5), false));
    bytes.extend(epb(1, 1, &[2], 1, false));
    let file = CaptureFile::from_bytes("ts.pcapng", bytes).unwrap();
    let packets: Vec<_> = file.packets().map(Result::unwrap).collect();
    assert_eq!(packets[0].ts_ns, u64::MAX);
    assert_eq!(packets[1].ts_ns, 0);
}

#[test]
fn files_on_disk_that_are_not_captures() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let err = CaptureFile::open(&empty).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::EmptyFile));
    assert_eq!(err.path(), Some(empty.as_path()));
    assert_eq!(
        err.to_string(),
        format!("{}: empty file (0 bytes): not a capture", empty.display())
    );

    let missing = dir.path().join("missing.pcap");
    let err = CaptureFile::open(&missing).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Open(e) if e.kind() == std::io::ErrorKind::NotFound));
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot open: ", missing.display()))
    );

    let old = dir.path().join("old.pcap");
    let mut header = pcap_header(false, false, 65535, 1);
    header[4] = 1;
    std::fs::write(&old, header).unwrap();
    let err = CaptureFile::open(&old).unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::UnsupportedVersion {
            format: "pcap",
            major: 1,
            minor: 4
        }
    ));

    let swapped = dir.path().join("modified-be.pcap");
    std::fs::write(&swapped, [0xa1, 0xb2, 0xcd, 0x34, 0, 2, 0, 4]).unwrap();
    let err = CaptureFile::open(&swapped).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Unsupported { .. }));
}
