//! Splitting a classic pcap file into segments: walking the segments one after the
//! other, each from where the previous walk stopped, yields exactly the packets of a
//! walk from the start, whatever the packet sizes and the segment size.

use linkward_capture::{CaptureFile, PcapNgWriter, PcapWriter, RawPacket, TsResolution};

/// A pcap of `count` packets whose sizes vary, some of whose bytes look like record
/// headers (to tempt the boundary guess).
fn pcap(count: usize) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), 1, 65535, TsResolution::Micro).unwrap();
    for i in 0..count {
        let len = 20 + (i * 7919) % 1500;
        let mut frame: Vec<u8> = (0..len).map(|b| (b * 31 + i) as u8).collect();
        // A fake record header inside the data: plausible time, small lengths.
        if len > 40 {
            frame[20..24].copy_from_slice(&1_700_000_000u32.to_le_bytes());
            frame[24..28].copy_from_slice(&5u32.to_le_bytes());
            frame[28..32].copy_from_slice(&8u32.to_le_bytes());
            frame[32..36].copy_from_slice(&8u32.to_le_bytes());
        }
        w.write_packet(
            1_700_000_000_000_000_000 + i as u64 * 1_000,
            &frame,
            len as u32,
        )
        .unwrap();
    }
    w.finish().unwrap()
}

/// What identifies a packet of a walk: number, offset, time and length.
type Key = (u64, u64, u64, usize);

fn key(p: &RawPacket<'_>) -> Key {
    (p.number, p.offset, p.ts_ns, p.data.len())
}

/// Walks every segment from where the walk before it stopped, as a caller must.
fn walk_segments(file: &CaptureFile, target: u64) -> (Vec<Key>, usize, usize) {
    let segments = file.segments(target).expect("classic pcap splits");
    let (mut out, mut resumed) = (Vec::new(), 0);
    let mut at = segments[0].start;
    for segment in &segments {
        if segment.start != at {
            resumed += 1;
        }
        let mut packets = file.packets_in(at, segment.end, out.len() as u64 + 1);
        for p in packets.by_ref() {
            out.push(key(&p.unwrap()));
        }
        at = packets.position();
    }
    (out, segments.len(), resumed)
}

#[test]
fn segments_walked_in_turn_give_the_whole_file() {
    let bytes = pcap(3_000);
    let file = CaptureFile::from_bytes("split.pcap", bytes.clone()).unwrap();
    let whole: Vec<_> = file.packets().map(|p| key(&p.unwrap())).collect();
    assert_eq!(whole.len(), 3_000);
    for target in [1 << 16, 100_000, 1 << 20, 1 << 30] {
        let (split, count, resumed) = walk_segments(&file, target);
        assert_eq!(split, whole, "segments of {target} bytes");
        let expected = (bytes.len() as u64 - 24).div_ceil(target).max(1) as usize;
        assert!(
            count.abs_diff(expected) <= 1,
            "{count} segments of {target}"
        );
        // The decoy headers in the data never survive the chain check.
        assert_eq!(resumed, 0);
    }
}

#[test]
fn segment_starts_are_record_boundaries() {
    let file = CaptureFile::from_bytes("split.pcap", pcap(2_000)).unwrap();
    let offsets: Vec<u64> = file.packets().map(|p| p.unwrap().offset).collect();
    let segments = file.segments(1 << 16).unwrap();
    assert!(segments.len() > 10);
    for pair in segments.windows(2) {
        assert_eq!(pair[0].end, pair[1].start);
        assert!(offsets.binary_search(&pair[1].start).is_ok());
    }
    assert_eq!(segments.last().unwrap().end, file.len_bytes());
}

#[test]
fn a_truncated_last_segment_ends_with_the_same_error_as_a_whole_walk() {
    let mut bytes = pcap(1_500);
    bytes.truncate(bytes.len() - 100);
    let file = CaptureFile::from_bytes("cut.pcap", bytes).unwrap();
    let whole_error = file
        .packets()
        .find_map(Result::err)
        .expect("the cut is reported")
        .to_string();
    let segments = file.segments(1 << 16).unwrap();
    let mut at = segments[0].start;
    let mut number = 1;
    let mut errors = Vec::new();
    for segment in &segments {
        let mut packets = file.packets_in(at, segment.end, number);
        for p in packets.by_ref() {
            match p {
                Ok(_) => number += 1,
                Err(e) => errors.push(e.to_string()),
            }
        }
        at = packets.position();
    }
    assert_eq!(errors, vec![whole_error]);
    assert_eq!(number, 1_500);
}

#[test]
fn pcapng_is_not_split() {
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    let interface = w.add_interface(1, 65535).unwrap();
    w.write_packet(interface, 1, &[0; 60], 60).unwrap();
    let file = CaptureFile::from_bytes("one.pcapng", w.finish().unwrap()).unwrap();
    assert!(file.segments(1 << 16).is_none());
}

/// A packet whose data is nothing but well-formed fake records: any boundary guessed
/// inside it is wrong, and the walk of the segment before shows it.
#[test]
fn a_wrong_boundary_guess_costs_a_resumed_walk_not_a_packet() {
    let mut w = PcapWriter::new(Vec::new(), 1, 262_144, TsResolution::Micro).unwrap();
    let mut decoys = Vec::new();
    for _ in 0..10_000 {
        for field in [1_700_000_000u32, 5, 8, 8] {
            decoys.extend_from_slice(&field.to_le_bytes());
        }
        decoys.extend_from_slice(&[0x45; 8]);
    }
    for i in 0..200u64 {
        let frame: &[u8] = if i % 50 == 10 { &decoys } else { &[0x11; 300] };
        w.write_packet(1_700_000_000_000_000_000 + i, frame, frame.len() as u32)
            .unwrap();
    }
    let file = CaptureFile::from_bytes("decoys.pcap", w.finish().unwrap()).unwrap();
    let whole: Vec<_> = file.packets().map(|p| key(&p.unwrap())).collect();
    let (split, count, resumed) = walk_segments(&file, 1 << 16);
    assert_eq!(split, whole);
    assert!(count > 5);
    assert!(resumed > 0, "some boundary fell among the decoys");
}
