//! Captures written by this crate's writers, or built by hand for the
//! variants the writers do not produce, read back field by field.

mod common;

use common::*;
use linkward_capture::{
    CaptureFile, ErrorKind, Format, PcapNgWriter, PcapWriter, RawPacket, TsResolution,
};

const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_RAW: u32 = 101;
const LINKTYPE_LINUX_SLL: u32 = 113;

fn all_ok(file: &CaptureFile) -> Vec<RawPacket<'_>> {
    file.packets()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn pcap_microseconds_round_trip() {
    let mut writer =
        PcapWriter::new(Vec::new(), LINKTYPE_ETHERNET, 96, TsResolution::Micro).unwrap();
    let a = payload(1, 60);
    let b = payload(2, 96);
    writer
        .write_packet(1_700_000_000_123_456_789, &a, 60)
        .unwrap();
    writer
        .write_packet(1_700_000_001_000_000_999, &b, 1514)
        .unwrap();
    assert_eq!(writer.packets_written(), 2);
    let bytes = writer.finish().unwrap();
    assert_eq!(bytes.len(), 24 + 16 + 60 + 16 + 96);

    let file = CaptureFile::from_bytes("micro.pcap", bytes).unwrap();
    assert_eq!(
        file.format(),
        Format::Pcap {
            nanos: false,
            big_endian: false
        }
    );
    assert_eq!(file.len_bytes(), 212);
    let packets = all_ok(&file);
    assert_eq!(
        packets,
        vec![
            RawPacket {
                number: 1,
                ts_ns: 1_700_000_000_123_456_000,
                link_type: LINKTYPE_ETHERNET,
                interface: 0,
                data: &a,
                orig_len: 60,
                offset: 24,
            },
            RawPacket {
                number: 2,
                ts_ns: 1_700_000_001_000_000_000,
                link_type: LINKTYPE_ETHERNET,
                interface: 0,
                data: &b,
                orig_len: 1514,
                offset: 100,
            },
        ]
    );
}

#[test]
fn pcap_nanoseconds_round_trip_through_a_file_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nano.cap");
    let out = std::fs::File::create(&path).unwrap();
    let mut writer = PcapWriter::new(out, LINKTYPE_LINUX_SLL, 65535, TsResolution::Nano).unwrap();
    let data: Vec<Vec<u8>> = (0..100).map(|i| payload(i as u8, 40 + i)).collect();
    for (i, d) in data.iter().enumerate() {
        writer
            .write_packet(1_000_000_000 * i as u64 + 7, d, d.len() as u32)
            .unwrap();
    }
    writer.finish().unwrap();

    let file = CaptureFile::open(&path).unwrap();
    assert_eq!(file.path(), path.as_path());
    assert_eq!(
        file.format(),
        Format::Pcap {
            nanos: true,
            big_endian: false
        }
    );
    let packets = all_ok(&file);
    assert_eq!(packets.len(), 100);
    let mut offset = 24;
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(p.number, i as u64 + 1);
        assert_eq!(p.ts_ns, 1_000_000_000 * i as u64 + 7);
        assert_eq!(p.link_type, LINKTYPE_LINUX_SLL);
        assert_eq!(p.data, &data[i][..]);
        assert_eq!(p.orig_len, data[i].len() as u32);
        assert_eq!(p.offset, offset);
        offset += 16 + data[i].len() as u64;
    }
}

#[test]
fn big_endian_pcap_in_both_resolutions() {
    for nanos in [false, true] {
        let mut bytes = pcap_header(nanos, true, 65535, LINKTYPE_RAW);
        pcap_record(
            &mut bytes,
            true,
            1_600_000_000,
            999_999,
            &payload(9, 20),
            20,
        );
        pcap_record(&mut bytes, true, 1_600_000_001, 5, &payload(7, 33), 40);
        let file = CaptureFile::from_bytes("be.pcap", bytes).unwrap();
        assert_eq!(
            file.format(),
            Format::Pcap {
                nanos,
                big_endian: true
            }
        );
        let packets = all_ok(&file);
        let unit = if nanos { 1 } else { 1_000 };
        assert_eq!(packets.len(), 2);
        assert_eq!(packets[0].ts_ns, 1_600_000_000_000_000_000 + 999_999 * unit);
        assert_eq!(packets[1].ts_ns, 1_600_000_001_000_000_000 + 5 * unit);
        assert_eq!(packets[0].link_type, LINKTYPE_RAW);
        assert_eq!(packets[0].data, &payload(9, 20)[..]);
        assert_eq!(packets[1].data, &payload(7, 33)[..]);
        assert_eq!(packets[1].orig_len, 40);
        assert_eq!(packets[1].offset, 24 + 16 + 20);
    }
}

#[test]
fn pcapng_two_interfaces_with_different_link_types() {
    let mut writer = PcapNgWriter::new(Vec::new()).unwrap();
    assert_eq!(writer.add_interface(LINKTYPE_ETHERNET, 65535).unwrap(), 0);
    assert_eq!(writer.add_interface(LINKTYPE_RAW, 128).unwrap(), 1);
    assert_eq!(writer.interfaces(), 2);
    let eth = payload(0x10, 61);
    let raw = payload(0x20, 28);
    writer
        .write_packet(0, 1_712_000_000_000_000_001, &eth, 61)
        .unwrap();
    writer
        .write_packet(1, 1_712_000_000_500_000_000, &raw, 1500)
        .unwrap();
    writer.write_packet(0, u64::MAX, &[], 0).unwrap();
    let bytes = writer.finish().unwrap();

    let file = CaptureFile::from_bytes("two.pcapng", bytes).unwrap();
    assert_eq!(file.format(), Format::PcapNg);
    let packets = all_ok(&file);
    let first_epb = 28 + 32 + 32;
    assert_eq!(
        packets,
        vec![
            RawPacket {
                number: 1,
                ts_ns: 1_712_000_000_000_000_001,
                link_type: LINKTYPE_ETHERNET,
                interface: 0,
                data: &eth,
                orig_len: 61,
                offset: first_epb,
            },
            RawPacket {
                number: 2,
                ts_ns: 1_712_000_000_500_000_000,
                link_type: LINKTYPE_RAW,
                interface: 1,
                data: &raw,
                orig_len: 1500,
                offset: first_epb + 32 + 64,
            },
            RawPacket {
                number: 3,
                ts_ns: u64::MAX,
                link_type: LINKTYPE_ETHERNET,
                interface: 0,
                data: &[],
                orig_len: 0,
                offset: first_epb + 32 + 64 + 32 + 28,
            },
        ]
    );
}

#[test]
fn writer_refuses_what_the_format_cannot_hold() {
    let mut pcap = PcapWriter::new(Vec::new(), 1, 65535, TsResolution::Micro).unwrap();
    let err = pcap
        .write_packet(4_294_967_296 * 1_000_000_000, &[1], 1)
        .unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::OutOfRange {
            what: "timestamp (ns)",
            ..
        }
    ));
    assert_eq!(err.packet(), Some(1));
    assert_eq!(
        err.to_string(),
        "pcap writer: packet 1: timestamp (ns) 4294967296000000000 is out of range \
         (before 2106-02-07T06:28:16Z)"
    );

    let mut ng = PcapNgWriter::new(Vec::new()).unwrap();
    let err = ng.add_interface(70_000, 65535).unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::OutOfRange {
            what: "link type",
            value: 70_000,
            ..
        }
    ));
    let err = ng.write_packet(0, 0, &[1, 2], 2).unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::UnknownOutputInterface {
            interface: 0,
            count: 0
        }
    ));
    assert_eq!(
        err.to_string(),
        "pcapng writer: packet 1: interface 0 was not added (the writer has 0 interfaces)"
    );
}

#[test]
fn pcapng_sections_with_their_own_byte_order_and_interfaces() {
    // Section 1, big-endian: microsecond interface (default resolution).
    let mut bytes = shb(true);
    bytes.extend(idb(LINKTYPE_ETHERNET as u16, 0, None, None, true));
    bytes.extend(epb(0, 1_500_000_000_250_000, &payload(1, 14), 14, true));
    // Section 2, little-endian: interface 0 is now raw IP with binary
    // resolution 2^-10 s and a -100 s offset; interface 1 uses 10^-3 s.
    let second_section = bytes.len() as u64;
    bytes.extend(shb(false));
    bytes.extend(idb(
        LINKTYPE_RAW as u16,
        0,
        Some(0x80 | 10),
        Some(-100),
        false,
    ));
    bytes.extend(idb(LINKTYPE_LINUX_SLL as u16, 0, Some(3), None, false));
    bytes.extend(epb(0, 1024 * 1_000 + 512, &payload(2, 20), 20, false));
    bytes.extend(epb(1, 1_234, &payload(3, 16), 16, false));
    // A timestamp 2^40 seconds in 2^-10 units: past u64 nanoseconds.
    bytes.extend(epb(0, 1u64 << 50, &payload(4, 4), 4, false));

    let file = CaptureFile::from_bytes("sections.pcapng", bytes).unwrap();
    let packets = all_ok(&file);
    assert_eq!(packets.len(), 4);
    assert_eq!(packets[0].ts_ns, 1_500_000_000_250_000_000);
    assert_eq!(packets[0].link_type, LINKTYPE_ETHERNET);
    assert_eq!(packets[0].data, &payload(1, 14)[..]);
    assert_eq!(packets[0].offset, 28 + 20);
    // 1000.5 s - 100 s.
    assert_eq!(packets[1].ts_ns, 900_500_000_000);
    assert_eq!(packets[1].link_type, LINKTYPE_RAW);
    assert_eq!(packets[1].offset, second_section + 28 + 44 + 32);
    assert_eq!(packets[2].ts_ns, 1_234_000_000);
    assert_eq!(packets[2].link_type, LINKTYPE_LINUX_SLL);
    assert_eq!(packets[2].interface, 1);
    assert_eq!(packets[3].ts_ns, u64::MAX);
    assert_eq!(packets[3].number, 4);
}

#[test]
fn pcapng_obsolete_and_simple_packet_blocks_and_skipped_blocks() {
    let mut bytes = shb(false);
    bytes.extend(idb(LINKTYPE_ETHERNET as u16, 50, Some(9), None, false));
    // Name resolution and custom blocks carry no packets.
    bytes.extend(ng_block(4, &[0, 0, 0, 0], false));
    bytes.extend(ng_block(0xBAD, &[1, 2, 3, 4, 5, 6, 7, 8], false));
    bytes.extend(opb(0, 3, 42, &payload(5, 30), 31, false));
    // 70 bytes on the wire, the interface keeps 50, the block holds 52.
    bytes.extend(spb(&payload(6, 52), 70, false));
    // 10 bytes on the wire, padded to 12 in the block.
    bytes.extend(spb(&payload(7, 12), 10, false));

    let file = CaptureFile::from_bytes("blocks.pcapng", bytes).unwrap();
    let packets = all_ok(&file);
    assert_eq!(packets.len(), 3);
    assert_eq!(packets[0].ts_ns, 42);
    assert_eq!(packets[0].data, &payload(5, 30)[..]);
    assert_eq!(packets[0].orig_len, 31);
    assert_eq!(packets[1].ts_ns, 0);
    assert_eq!(packets[1].data, &payload(6, 50)[..]);
    assert_eq!(packets[1].orig_len, 70);
    assert_eq!(packets[2].data, &payload(7, 10)[..]);
    assert_eq!(packets[2].number, 3);
}

#[test]
fn header_only_captures_hold_zero_packets() {
    let pcap = PcapWriter::new(Vec::new(), 1, 65535, TsResolution::Micro)
        .unwrap()
        .finish()
        .unwrap();
    let file = CaptureFile::from_bytes("empty.pcap", pcap).unwrap();
    assert_eq!(file.packets().count(), 0);

    let mut ng = PcapNgWriter::new(Vec::new()).unwrap();
    ng.add_interface(1, 0).unwrap();
    let file = CaptureFile::from_bytes("empty.pcapng", ng.finish().unwrap()).unwrap();
    assert_eq!(file.packets().count(), 0);
}

#[test]
fn walks_are_independent_and_report_their_position() {
    let mut writer = PcapWriter::new(Vec::new(), 1, 65535, TsResolution::Nano).unwrap();
    writer.write_packet(1, &[1; 10], 10).unwrap();
    writer.write_packet(2, &[2; 10], 10).unwrap();
    let file = CaptureFile::from_bytes("two.pcap", writer.finish().unwrap()).unwrap();
    let mut first = file.packets();
    assert_eq!(first.position(), 24);
    assert_eq!(first.next().unwrap().unwrap().number, 1);
    assert_eq!(first.position(), 50);
    let mut second = file.packets();
    assert_eq!(second.next().unwrap().unwrap().number, 1);
    assert_eq!(first.next().unwrap().unwrap().number, 2);
    assert_eq!(first.position(), 76);
    assert!(first.next().is_none());
    assert!(first.next().is_none());
}
