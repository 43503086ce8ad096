//! Third-party captures shipped in `tests/data` (see its NOTICE), read with
//! the values tshark shows for them.

use std::path::{Path, PathBuf};

use linkward_capture::{CaptureFile, Format, open_with_libpcap};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// (number, ts_ns, caplen, orig_len, interface) of a packet.
type Row = (u64, u64, usize, u32, u32);

fn summary(name: &str) -> (Format, Vec<Row>) {
    let file = CaptureFile::open(&data(name)).unwrap();
    let packets = file
        .packets()
        .map(|p| {
            let p = p.unwrap();
            (p.number, p.ts_ns, p.data.len(), p.orig_len, p.interface)
        })
        .collect();
    (file.format(), packets)
}

#[test]
fn little_endian_microsecond_pcap() {
    let (format, packets) = summary("tcpdump__dns_udp.pcap");
    assert_eq!(
        format,
        Format::Pcap {
            nanos: false,
            big_endian: false
        }
    );
    assert_eq!(
        packets,
        vec![
            (1, 1_591_780_794_740_079_000, 98, 98, 0),
            (2, 1_591_780_794_870_361_000, 266, 266, 0)
        ]
    );
}

#[test]
fn nanosecond_pcap() {
    let (format, packets) = summary("tcpdump__tcp-handshake-nano.pcap");
    assert_eq!(
        format,
        Format::Pcap {
            nanos: true,
            big_endian: false
        }
    );
    assert_eq!(
        packets,
        vec![
            (1, 1_418_145_369_924_505_488, 76, 76, 0),
            (2, 1_418_145_370_052_027_262, 76, 76, 0),
            (3, 1_418_145_370_052_115_157, 68, 68, 0),
        ]
    );
    let file = CaptureFile::open(&data("tcpdump__tcp-handshake-nano.pcap")).unwrap();
    // LINKTYPE_LINUX_SLL.
    assert!(file.packets().all(|p| p.unwrap().link_type == 113));
}

#[test]
fn modified_pcap() {
    let (format, packets) = summary("pcap-parser__modified-format.pcap");
    assert_eq!(format, Format::PcapModified);
    assert_eq!(packets, vec![(1, 1_712_763_541_734_807_000, 98, 98, 0)]);
}

#[test]
fn big_endian_pcapng() {
    let (format, packets) = summary("pcap-parser__test001-be.pcapng");
    assert_eq!(format, Format::PcapNg);
    assert_eq!(
        packets,
        vec![
            (1, 0, 314, 314, 0),
            (2, 0, 342, 342, 0),
            (3, 0, 314, 314, 0),
            (4, 0, 342, 342, 0)
        ]
    );
}

#[test]
fn pcapng_mixing_simple_and_enhanced_packets_and_name_resolution() {
    let (_, packets) = summary("pcap-parser__test016-le.pcapng");
    // The simple packet blocks (1 and 3) carry no timestamp.
    assert_eq!(
        packets,
        vec![
            (1, 0, 314, 314, 0),
            (2, 1_340_954_905_298_858_000, 342, 342, 0),
            (3, 0, 314, 314, 0),
            (4, 1_340_954_905_300_858_000, 342, 342, 0),
        ]
    );
}

#[test]
fn pcapng_interfaces_with_different_resolutions() {
    let (_, packets) = summary("zeek__pcapng-multi-interface.pcapng");
    assert_eq!(
        packets,
        vec![
            (1, 1_767_663_089_500_330_493, 96, 96, 0),
            (2, 1_767_663_089_514_291_940, 214, 214, 0),
            (3, 1_767_663_437_111_897_000, 70, 70, 1),
            (4, 1_767_663_437_126_460_000, 166, 166, 1),
            (5, 1_767_663_437_128_303_000, 70, 70, 1),
            (6, 1_767_663_437_140_942_000, 182, 182, 1),
        ]
    );
}

#[test]
fn pcapng_without_packets() {
    let (format, packets) = summary("tcpdump__empty.pcapng");
    assert_eq!(format, Format::PcapNg);
    assert!(packets.is_empty());
}

#[test]
fn libpcap_reader_agrees_on_a_larger_file() {
    let path = data("zeek__dns-edns-ecs.pcap");
    let file = CaptureFile::open(&path).unwrap();
    let ours: Vec<_> = file.packets().map(Result::unwrap).collect();
    let theirs: Vec<_> = open_with_libpcap(&path)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ours.len(), 89);
    assert_eq!(theirs.len(), 89);
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(
            (a.number, a.ts_ns, a.data, a.orig_len),
            (b.number, b.ts_ns, &b.data[..], b.orig_len)
        );
    }
    assert_eq!(ours[2].ts_ns, 1_463_559_982_617_614_000);
    assert_eq!(ours[2].data.len(), 862);
}

#[test]
fn libpcap_reader_reports_its_errors_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file at all").unwrap();
    let err = open_with_libpcap(&junk).unwrap_err();
    assert_eq!(err.path(), Some(junk.as_path()));
    assert!(
        err.to_string()
            .starts_with(&format!("{}: libpcap: ", junk.display())),
        "{err}"
    );

    // A file cut inside its second record: one packet, then an error.
    let bytes = std::fs::read(data("tcpdump__dns_udp.pcap")).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let items: Vec<_> = open_with_libpcap(&cut).unwrap().collect();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_ref().unwrap().data.len(), 98);
    let err = items[1].as_ref().unwrap_err();
    assert_eq!(err.packet(), Some(2));
    assert!(err.to_string().contains("(after 1 packets)"), "{err}");
}
