//! BPF filters: compiled per link type, compared with tcpdump on a real
//! capture.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use linkward_capture::{BpfFilter, BpfFilterSet, CaptureFile, ErrorKind, PcapNgWriter};

const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_RAW: u32 = 101;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// An IPv4/UDP packet from 10.0.0.1 to 10.0.0.2 with the given ports.
fn ipv4_udp(src_port: u16, dst_port: u16) -> Vec<u8> {
    let mut ip = vec![
        0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    ip.extend_from_slice(&src_port.to_be_bytes());
    ip.extend_from_slice(&dst_port.to_be_bytes());
    ip.extend_from_slice(&[0, 8, 0, 0]);
    ip
}

fn ethernet(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    frame.extend_from_slice(payload);
    frame
}

fn count_matches(path: &Path, expr: &str) -> u64 {
    let mut filter = BpfFilterSet::new(expr).unwrap();
    let file = CaptureFile::open(path).unwrap();
    let mut count = 0;
    for packet in file.packets() {
        let packet = packet.unwrap();
        if filter.matches(packet.link_type, packet.data).unwrap() {
            count += 1;
        }
    }
    count
}

#[test]
fn single_filter_matches_by_link_type() {
    let dns = BpfFilter::new("udp port 53", LINKTYPE_ETHERNET).unwrap();
    assert_eq!(dns.expr(), "udp port 53");
    assert_eq!(dns.link_type(), LINKTYPE_ETHERNET);
    assert!(dns.matches(&ethernet(&ipv4_udp(40000, 53))));
    assert!(dns.matches(&ethernet(&ipv4_udp(53, 40000))));
    assert!(!dns.matches(&ethernet(&ipv4_udp(40000, 443))));
    assert!(!dns.matches(&[]));
    // The same bytes without a link header do not look like UDP to an
    // Ethernet program, but do to a raw IP one.
    assert!(!dns.matches(&ipv4_udp(40000, 53)));
    let raw = BpfFilter::new("udp port 53", LINKTYPE_RAW).unwrap();
    assert!(raw.matches(&ipv4_udp(40000, 53)));
}

#[test]
fn filter_set_compiles_for_each_link_type_of_a_pcapng() {
    let mut writer = PcapNgWriter::new(Vec::new()).unwrap();
    writer.add_interface(LINKTYPE_ETHERNET, 65535).unwrap();
    writer.add_interface(LINKTYPE_RAW, 65535).unwrap();
    writer
        .write_packet(0, 1, &ethernet(&ipv4_udp(1000, 53)), 42)
        .unwrap();
    writer.write_packet(1, 2, &ipv4_udp(1000, 53), 28).unwrap();
    writer.write_packet(1, 3, &ipv4_udp(1000, 80), 28).unwrap();
    writer
        .write_packet(0, 4, &ethernet(&ipv4_udp(53, 1000)), 42)
        .unwrap();
    let file = CaptureFile::from_bytes("mixed.pcapng", writer.finish().unwrap()).unwrap();

    let mut dns = BpfFilterSet::new("udp port 53").unwrap();
    assert_eq!(dns.expr(), "udp port 53");
    let matched: Vec<u64> = file
        .packets()
        .map(Result::unwrap)
        .filter(|p| dns.matches(p.link_type, p.data).unwrap())
        .map(|p| p.number)
        .collect();
    assert_eq!(matched, vec![1, 2, 4]);
}

#[test]
fn expressions_that_do_not_compile_are_named_in_the_error() {
    let err = BpfFilterSet::new("udp prot 53").unwrap_err();
    match err.kind() {
        ErrorKind::Bpf {
            expr,
            link_type,
            message,
        } => {
            assert_eq!(expr, "udp prot 53");
            assert_eq!(*link_type, LINKTYPE_ETHERNET);
            assert!(!message.is_empty());
        }
        other => panic!("unexpected {other}"),
    }
    assert!(
        err.to_string()
            .starts_with("filter \"udp prot 53\" does not compile for link type 1: "),
        "{err}"
    );

    // Valid on Ethernet, meaningless on raw IP: the error comes when a raw
    // IP packet arrives, and again on the next one.
    let mut set = BpfFilterSet::new("ether host 02:00:00:00:00:01").unwrap();
    assert!(
        set.matches(LINKTYPE_ETHERNET, &ethernet(&ipv4_udp(1, 2)))
            .unwrap()
    );
    for _ in 0..2 {
        let err = set.matches(LINKTYPE_RAW, &ipv4_udp(1, 2)).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::Bpf {
                    link_type: LINKTYPE_RAW,
                    ..
                }
            ),
            "{err}"
        );
    }
    assert!(
        set.matches(LINKTYPE_ETHERNET, &ethernet(&ipv4_udp(1, 2)))
            .unwrap()
    );
}

#[test]
fn dns_count_matches_tcpdump() {
    let path = data("zeek__dns-edns-ecs.pcap");
    let ours = count_matches(&path, "udp port 53");
    // What `tcpdump -r zeek__dns-edns-ecs.pcap -nn 'udp port 53'` prints.
    assert_eq!(ours, 76);
    match Command::new("tcpdump")
        .arg("-r")
        .arg(&path)
        .args(["-nn", "udp port 53"])
        .output()
    {
        Ok(output) if output.status.success() => {
            let lines = output.stdout.iter().filter(|&&b| b == b'\n').count() as u64;
            assert_eq!(ours, lines, "tcpdump disagrees");
        }
        _ => eprintln!("tcpdump not available: compared with the recorded count only"),
    }
}

#[test]
fn tcp_count_matches_tcpdump_on_the_corpus_when_present() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus/pcaps/wellformed/pcap-parser__wireshark_samples-test.pcapng");
    let path = path.as_path();
    if !path.exists() {
        eprintln!("skipped: {} is absent", path.display());
        return;
    }
    for expr in ["udp port 53", "tcp", "ip6 and udp", "arp"] {
        let ours = count_matches(path, expr);
        let Ok(output) = Command::new("tcpdump")
            .arg("-r")
            .arg(path)
            .args(["-nn", expr])
            .output()
        else {
            eprintln!("skipped: tcpdump not available");
            return;
        };
        assert!(output.status.success());
        let lines = output.stdout.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(ours, lines, "{expr}");
    }
}
