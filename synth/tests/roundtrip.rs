//! Everything this crate builds is read back by the decoder and the capture reader, and
//! the checksums are verified by smoltcp, an encoder that shares no code with ours.

use linkward_capture::CaptureFile;
use linkward_decode::dns::parse_response;
use linkward_decode::http::request_host;
use linkward_decode::tls::{SniResult, client_hello_sni};
use linkward_decode::{Decoder, DecoderConfig, LinkType, Packet, TcpFlags, Transport};
use linkward_synth::*;
use smoltcp::wire::{IpAddress, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket};
use std::net::{IpAddr, SocketAddr};

const LINKS: [Link; 7] = [
    Link::Ethernet,
    Link::Vlan(120),
    Link::QinQ(100, 200),
    Link::LinuxSll,
    Link::LinuxSll2,
    Link::RawIp,
    Link::Null,
];

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn decode<'a>(d: &'a mut Decoder, link: Link, frame: &'a [u8]) -> Packet<'a> {
    d.decode(LinkType::from_linktype(link.linktype()), frame, 0)
        .unwrap_or_else(|e| panic!("{link:?}: {}", e.label()))
}

fn outer_vlan(link: Link) -> Option<u16> {
    match link {
        Link::Vlan(id) | Link::QinQ(id, _) => Some(id),
        _ => None,
    }
}

/// Verifies the IP and transport checksums of `frame` with smoltcp.
fn checksums_ok(link: Link, frame: &[u8]) -> bool {
    let ip = &frame[link.header_len()..];
    if ip[0] >> 4 == 4 {
        let p = Ipv4Packet::new_checked(ip).unwrap();
        let (src, dst) = (IpAddress::Ipv4(p.src_addr()), IpAddress::Ipv4(p.dst_addr()));
        let body = p.payload();
        p.verify_checksum()
            && match p.next_header() {
                smoltcp::wire::IpProtocol::Tcp => TcpPacket::new_checked(body)
                    .unwrap()
                    .verify_checksum(&src, &dst),
                _ => UdpPacket::new_checked(body)
                    .unwrap()
                    .verify_checksum(&src, &dst),
            }
    } else {
        let p = Ipv6Packet::new_checked(ip).unwrap();
        let (src, dst) = (IpAddress::Ipv6(p.src_addr()), IpAddress::Ipv6(p.dst_addr()));
        let body = p.payload();
        match p.next_header() {
            smoltcp::wire::IpProtocol::Tcp => TcpPacket::new_checked(body)
                .unwrap()
                .verify_checksum(&src, &dst),
            _ => UdpPacket::new_checked(body)
                .unwrap()
                .verify_checksum(&src, &dst),
        }
    }
}

#[test]
fn tcp_and_udp_frames_decode_on_every_link_in_both_ip_versions() {
    let pairs = [
        (sa("10.1.5.9:50000"), sa("10.1.2.5:443")),
        (sa("[fd00:1::9]:50000"), sa("[fd00:2::5]:443")),
    ];
    let mut d = Decoder::new(DecoderConfig::default());
    for link in LINKS {
        let b = FrameBuilder::new(link);
        for (src, dst) in pairs {
            let payload = b"payload of odd length";
            let flags = tcp_flags::PSH | tcp_flags::ACK;
            let frame = b.tcp(src, dst, 1000, 2000, flags, payload).unwrap();
            assert!(checksums_ok(link, &frame), "{link:?} {src} tcp");
            let p = decode(&mut d, link, &frame);
            assert_eq!(
                (p.src, p.dst, p.protocol, p.vlan),
                (src.ip(), dst.ip(), 6, outer_vlan(link))
            );
            let header = if src.is_ipv4() { 20 } else { 40 };
            assert_eq!(p.ip_len, header + 20 + payload.len());
            assert_eq!(
                p.transport,
                Transport::Tcp {
                    src_port: 50000,
                    dst_port: 443,
                    seq: 1000,
                    flags: TcpFlags::PSH | TcpFlags::ACK,
                    payload,
                }
            );

            let frame = b.udp(dst, src, b"x").unwrap();
            assert!(checksums_ok(link, &frame), "{link:?} {src} udp");
            let p = decode(&mut d, link, &frame);
            assert_eq!((p.src, p.dst, p.protocol), (dst.ip(), src.ip(), 17));
            assert_eq!(
                p.transport,
                Transport::Udp {
                    src_port: 443,
                    dst_port: 50000,
                    payload: b"x"
                }
            );
        }
    }
}

#[test]
fn link_headers_have_their_documented_lengths_and_numbers() {
    let b = |link| {
        FrameBuilder::new(link)
            .udp(sa("10.0.0.1:1"), sa("10.0.0.2:2"), &[])
            .unwrap()
    };
    let numbers: Vec<(u32, usize)> = LINKS.iter().map(|&l| (l.linktype(), b(l).len())).collect();
    assert_eq!(
        numbers,
        [
            (1, 42),
            (1, 46),
            (1, 50),
            (113, 44),
            (276, 48),
            (101, 28),
            (0, 32)
        ]
    );
    // QinQ: service tag 0x88a8 outside, customer tag 0x8100 inside.
    assert_eq!(
        &b(Link::QinQ(100, 200))[12..22],
        &[0x88, 0xa8, 0, 100, 0x81, 0, 0, 200, 8, 0]
    );
    // BSD loopback: the family in little-endian order (2 = IPv4, 30 = Darwin IPv6).
    assert_eq!(&b(Link::Null)[..4], &[2, 0, 0, 0]);
    let v6 = FrameBuilder::new(Link::Null)
        .udp(sa("[::1]:1"), sa("[::1]:2"), &[])
        .unwrap();
    assert_eq!(&v6[..4], &[30, 0, 0, 0]);
}

#[test]
fn syn_carries_an_mss_option() {
    let f = FrameBuilder::new(Link::RawIp)
        .tcp(
            sa("10.0.0.1:1000"),
            sa("10.0.0.2:80"),
            7,
            0,
            tcp_flags::SYN,
            &[],
        )
        .unwrap();
    assert_eq!(f.len(), 20 + 24);
    assert_eq!(f[32], 0x60);
    assert_eq!(&f[40..44], &[2, 4, 0x05, 0xb4]);
    assert!(checksums_ok(Link::RawIp, &f));
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let b = FrameBuilder::new(Link::Ethernet);
    let e = b.udp(sa("10.0.0.1:1"), sa("[::1]:2"), &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "source 10.0.0.1 and destination ::1 are not of the same IP version"
    );
    let e = b
        .udp(sa("10.0.0.1:1"), sa("10.0.0.2:2"), &vec![0; 70_000])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "UDP payload is 70000 bytes, more than the 65527 that the UDP length field can hold"
    );
    let e = b
        .tcp(
            sa("10.0.0.1:1"),
            sa("10.0.0.2:2"),
            0,
            0,
            0,
            &vec![0; 65_500],
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "IPv4 payload is 65520 bytes, more than the 65515 that the IPv4 total length field can hold"
    );
    let e = FrameBuilder::new(Link::Vlan(5000))
        .udp(sa("10.0.0.1:1"), sa("10.0.0.2:2"), &[])
        .unwrap_err();
    assert_eq!(e.to_string(), "VLAN id 5000 is out of range (0 to 4095)");
    let long = "a".repeat(64);
    let e = dns_query(1, &format!("{long}.example"), TYPE_A).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("DNS name `{long}.example`: a label is longer than 63 bytes")
    );
    let e = dns_query(1, "a..b", TYPE_A).unwrap_err();
    assert_eq!(e.to_string(), "DNS name `a..b`: it has an empty label");
    let e = dns_response(1, "", &[], &[], 1).unwrap_err();
    assert_eq!(e.to_string(), "DNS name ``: the name is empty");
    let huge = vec!["b".repeat(60); 5].join(".");
    let e = dns_query(1, &huge, TYPE_A).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("DNS name `{huge}`: it is longer than 255 bytes on the wire")
    );
    assert!(tls_client_hello(Some(&"c".repeat(20_000))).is_err());
}

#[test]
fn dns_response_reads_back_with_chain_addresses_and_ttl() {
    let chain = [
        "fabrikam-records.privatelink.fhir.azurehealthcareapis.com",
        "fabrikam-records.westeurope.cloudapp.example",
    ];
    let addrs: [IpAddr; 2] = ["10.1.2.5".parse().unwrap(), "10.1.2.7".parse().unwrap()];
    let msg = dns_response(0xbeef, FHIR_NAME, &chain, &addrs, 120).unwrap();
    let r = parse_response(&msg).unwrap();
    assert_eq!(r.id, 0xbeef);
    assert_eq!(r.rcode, 0);
    assert_eq!(r.qtype, TYPE_A);
    assert_eq!(r.query.as_str(), FHIR_NAME);
    let got: Vec<&str> = r.cname_chain.iter().map(|n| n.as_str()).collect();
    assert_eq!(got, chain);
    assert_eq!(r.addresses, addrs);
    assert_eq!(r.min_ttl, 120);
    // Compression: the question's name is written once in full; every later name
    // reuses it or its suffix "fhir.azurehealthcareapis.com" by pointer.
    assert_eq!(
        msg.windows(19)
            .filter(|w| *w == b"azurehealthcareapis")
            .count(),
        1
    );
    // Header, question, the first CNAME (owner by pointer, target's two new labels then
    // a pointer to "fhir.azurehealthcareapis.com"), the second CNAME (nothing to reuse),
    // two A records owned by a pointer.
    assert_eq!(
        msg.len(),
        12 + (47 + 4) + (2 + 10 + 17 + 12 + 2) + (2 + 10 + 46) + 2 * (2 + 10 + 4)
    );

    let v6: [IpAddr; 1] = ["fd00:2::5".parse().unwrap()];
    let r = parse_response(&dns_response(7, "a.example.", &[], &v6, 5).unwrap()).unwrap();
    assert_eq!(
        (r.qtype, r.addresses, r.min_ttl),
        (TYPE_AAAA, v6.to_vec(), 5)
    );
}

#[test]
fn dns_query_golden_bytes() {
    let q = dns_query(0x1234, "a.io", TYPE_A).unwrap();
    assert_eq!(
        q,
        [
            0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 2, b'i', b'o', 0, 0, 1, 0, 1
        ]
    );
}

#[test]
fn tls_client_hello_carries_the_sni_even_when_split() {
    let hello = tls_client_hello(Some(FHIR_NAME)).unwrap();
    assert_eq!(client_hello_sni(&hello), SniResult::Found(FHIR_NAME));
    assert_eq!(&hello[..3], &[0x16, 3, 1]);
    assert_eq!(
        usize::from(u16::from_be_bytes([hello[3], hello[4]])) + 5,
        hello.len()
    );
    // The name is whole from `sni_end` on; before that the decoder asks for the rest.
    let at = hello
        .windows(FHIR_NAME.len())
        .position(|w| w == FHIR_NAME.as_bytes())
        .unwrap();
    let sni_end = at + FHIR_NAME.len();
    for cut in 1..hello.len() {
        let got = client_hello_sni(&hello[..cut]);
        if cut < 5 {
            assert_eq!(got, SniResult::Incomplete { needed: 5 }, "cut at {cut}");
        } else if cut < sni_end {
            assert_eq!(
                got,
                SniResult::Incomplete {
                    needed: hello.len()
                },
                "cut at {cut}"
            );
        } else {
            assert_eq!(got, SniResult::Found(FHIR_NAME), "cut at {cut}");
        }
    }
    assert_eq!(
        client_hello_sni(&tls_client_hello(None).unwrap()),
        SniResult::NoSni
    );
    assert_eq!(
        tls_client_hello(Some("a.io")).unwrap(),
        tls_client_hello(Some("a.io")).unwrap()
    );
    assert_ne!(
        tls_client_hello(Some("a.io")).unwrap()[11..43],
        tls_client_hello(Some("b.io")).unwrap()[11..43]
    );
}

#[test]
fn http_get_carries_the_host() {
    let req = http_get(DICOM_NAME, "/v1/studies");
    assert_eq!(request_host(&req), Some(DICOM_NAME));
    assert!(req.starts_with(b"GET /v1/studies HTTP/1.1\r\nHost: "));
}

#[test]
fn conversation_runs_handshake_request_reply_and_close() {
    let c = sa("10.1.5.9:50000");
    let s = sa("10.1.2.5:443");
    let hello = tls_client_hello(Some(FHIR_NAME)).unwrap();
    let (a, b) = hello.split_at(100);
    let frames = Conversation::new(Link::LinuxSll2, c, s)
        .request_segments(vec![a.to_vec(), b.to_vec()])
        .reply(&[7; 3000])
        .start_ns(5_000)
        .step_ns(10)
        .frames()
        .unwrap();
    let mut d = Decoder::new(DecoderConfig::default());
    let mut seen = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.ts_ns, 5_000 + 10 * i as u64);
        assert!(checksums_ok(f.link, &f.data));
        let p = d.decode(LinkType::LinuxSll2, &f.data, f.ts_ns).unwrap();
        let Transport::Tcp {
            seq,
            flags,
            payload,
            src_port,
            ..
        } = p.transport
        else {
            panic!("not tcp")
        };
        seen.push((src_port == 50000, format!("{flags:?}"), seq, payload.len()));
    }
    let (ci, si) = (0x1000_0000u32, 0x7000_0000u32);
    let expected: Vec<(bool, String, u32, usize)> = vec![
        (true, "SYN".into(), ci, 0),
        (false, "SYN|ACK".into(), si, 0),
        (true, "ACK".into(), ci + 1, 0),
        (true, "PSH|ACK".into(), ci + 1, 100),
        (true, "PSH|ACK".into(), ci + 101, hello.len() - 100),
        (false, "ACK".into(), si + 1, 0),
        (false, "ACK".into(), si + 1, 1460),
        (false, "ACK".into(), si + 1461, 1460),
        (false, "PSH|ACK".into(), si + 2921, 80),
        (true, "ACK".into(), ci + 1 + hello.len() as u32, 0),
        (true, "FIN|ACK".into(), ci + 1 + hello.len() as u32, 0),
        (false, "FIN|ACK".into(), si + 3001, 0),
        (true, "ACK".into(), ci + 2 + hello.len() as u32, 0),
    ];
    assert_eq!(seen, expected);

    let reset = Conversation::new(Link::RawIp, c, s)
        .close(Close::Reset)
        .frames()
        .unwrap();
    assert_eq!(reset.len(), 4);
    assert_eq!(
        Conversation::new(Link::RawIp, c, s)
            .close(Close::Open)
            .frames()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        tcp_session(Link::Ethernet, c, s, b"hi", 0).unwrap().len(),
        3 + 2 + 2 + 1 + 3
    );
}

#[test]
fn dns_exchange_is_a_query_and_its_answer() {
    let frames = dns_exchange(
        Link::RawIp,
        sa("[fd00:1::9]:40000"),
        sa("[fd00:1::53]:53"),
        "svc.example",
        &[],
        &["fd00:2::5".parse().unwrap()],
        30,
        1_000,
    )
    .unwrap();
    assert_eq!(
        frames.iter().map(|f| f.ts_ns).collect::<Vec<_>>(),
        [1_000, 2_001_000]
    );
    let (mut d1, mut d2) = (
        Decoder::new(DecoderConfig::default()),
        Decoder::new(DecoderConfig::default()),
    );
    let q = d1.decode(LinkType::Raw, &frames[0].data, 0).unwrap();
    assert_eq!(q.transport.ports(), Some((40000, 53)));
    let a = d2.decode(LinkType::Raw, &frames[1].data, 0).unwrap();
    assert_eq!(a.transport.ports(), Some((53, 40000)));
    let r = parse_response(a.transport.payload()).unwrap();
    assert_eq!(r.qtype, TYPE_AAAA);
    assert_eq!(r.addresses, ["fd00:2::5".parse::<IpAddr>().unwrap()]);
    // The query asks the same question with the same id.
    let question = q.transport.payload();
    assert_eq!(&question[..2], &r.id.to_be_bytes());
    assert_eq!(&question[12..], &a.transport.payload()[12..question.len()]);
}

#[test]
fn capture_files_read_back_frame_for_frame() {
    let mut frames = tcp_session(
        Link::Vlan(7),
        sa("10.0.0.1:1000"),
        sa("10.0.0.2:80"),
        b"GET",
        1_500,
    )
    .unwrap();
    let pcap = pcap_bytes(Link::Vlan(7), &frames).unwrap();
    let file = CaptureFile::from_bytes("t.pcap", pcap).unwrap();
    let read: Vec<(u64, u32, Vec<u8>)> = file
        .packets()
        .map(|p| p.map(|p| (p.ts_ns, p.link_type, p.data.to_vec())).unwrap())
        .collect();
    // Classic pcap keeps microseconds.
    let want: Vec<(u64, u32, Vec<u8>)> = frames
        .iter()
        .map(|f| (f.ts_ns / 1_000 * 1_000, 1, f.data.clone()))
        .collect();
    assert_eq!(read, want);

    frames.extend(
        dns_exchange(
            Link::LinuxSll,
            sa("10.0.0.1:999"),
            sa("10.0.0.9:53"),
            "x.example",
            &[],
            &[],
            1,
            7,
        )
        .unwrap(),
    );
    let e = pcap_bytes(Link::Vlan(7), &frames).unwrap_err();
    assert_eq!(
        e.to_string(),
        "frame 11: link type 113 cannot go into a classic pcap file of link type 1; write pcapng instead"
    );
    let ng = pcapng_bytes(&frames).unwrap();
    let file = CaptureFile::from_bytes("t.pcapng", ng).unwrap();
    let read: Vec<(u64, u32, Vec<u8>)> = file
        .packets()
        .map(|p| p.map(|p| (p.ts_ns, p.link_type, p.data.to_vec())).unwrap())
        .collect();
    let want: Vec<(u64, u32, Vec<u8>)> = frames
        .iter()
        .map(|f| (f.ts_ns, f.link.linktype(), f.data.clone()))
        .collect();
    assert_eq!(read, want);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.pcapng");
    write_pcapng(&path, &frames).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        pcapng_bytes(&frames).unwrap()
    );
    let missing = dir.path().join("no/such/dir/a.pcap");
    let e = write_pcap(&missing, Link::Ethernet, &[]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("cannot create {}: ", missing.display())),
        "{e}"
    );
}

#[test]
fn demo_capture_is_small_and_decodes() {
    let bytes = demo_pcap().unwrap();
    assert!(bytes.len() < 20 * 1024, "{} bytes", bytes.len());
    let file = CaptureFile::from_bytes("demo.pcap", bytes).unwrap();
    let mut d = Decoder::new(DecoderConfig::default());
    let mut n = 0;
    for p in file.packets() {
        let p = p.unwrap();
        d.decode(LinkType::Ethernet, p.data, p.ts_ns).unwrap();
        n += 1;
    }
    assert_eq!(n, demo_frames().unwrap().len());
}
