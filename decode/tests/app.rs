//! Application-layer parsers fed from decoded packets, the way a monitor uses them.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::*;
use linkward_decode::dns::{self, DnsErrorKind, Place};
use linkward_decode::tls::{self, SniResult};
use linkward_decode::{Decoder, LinkType, http};
use smoltcp::wire::TcpControl;

/// A response for `ws-dicom.dicom.azurehealthcareapis.com` AAAA through a 2-level chain,
/// answers out of order, names compressed wherever they can be.
fn dicom_response() -> Vec<u8> {
    let mut m = vec![0x0a, 0x0b, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0];
    // 12: ws-dicom, 21: dicom, 27: azurehealthcareapis, 47: com.
    m.extend_from_slice(b"\x08ws-dicom\x05dicom\x13azurehealthcareapis\x03com\x00");
    m.extend_from_slice(&[0, 28, 0, 1]);
    assert_eq!(m.len(), 56);
    // Answer 0: query CNAME ws-dicom.privatelink.<dicom...> (rdata at 68).
    m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 200, 0, 23]);
    m.extend_from_slice(b"\x08ws-dicom\x0bprivatelink\xc0\x15");
    assert_eq!(m.len(), 91);
    // Answer 1: pe-host.internal AAAA fd00::5 (owner at 91).
    m.extend_from_slice(b"\x07pe-host\x08internal\x00");
    m.extend_from_slice(&[0, 28, 0, 1, 0, 0, 0, 30, 0, 16]);
    m.extend_from_slice(&Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 5).octets());
    // Answer 2: the privatelink name (at 68) CNAME pe-host.internal (at 91).
    m.extend_from_slice(&[0xc0, 68, 0, 5, 0, 1, 0, 0, 0, 100, 0, 2, 0xc0, 91]);
    m
}

#[test]
fn dns_response_over_udp_with_chain() {
    let msg = dicom_response();
    let frame = ethernet(0x0800, &[(0x8100, 42)], &udp4(53, 40000, &msg));
    let mut d = Decoder::default();
    let packet = d.decode(LinkType::Ethernet, &frame, 0);
    let payload = packet.map(|p| p.transport.payload());
    assert_eq!(payload, Ok(&msg[..]));
    let r = dns::parse_response(&msg);
    let summary = r.map(|r| {
        (
            r.id,
            r.rcode,
            r.query.as_str().to_owned(),
            r.qtype,
            r.cname_chain
                .iter()
                .map(|n| n.as_str().to_owned())
                .collect::<Vec<_>>(),
            r.addresses,
            r.min_ttl,
        )
    });
    assert_eq!(
        summary,
        Ok((
            0x0a0b,
            0,
            "ws-dicom.dicom.azurehealthcareapis.com".to_owned(),
            28,
            vec![
                "ws-dicom.privatelink.dicom.azurehealthcareapis.com".to_owned(),
                "pe-host.internal".to_owned()
            ],
            vec![IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 5))],
            30,
        ))
    );
}

#[test]
fn dns_over_tcp_prefix() {
    let msg = dicom_response();
    let mut stream = (msg.len() as u16).to_be_bytes().to_vec();
    stream.extend_from_slice(&msg);
    let frame = tcp4(53, 40000, 1, TcpControl::Psh, &stream);
    let mut d = Decoder::default();
    let payload = d
        .decode(LinkType::Raw, &frame, 0)
        .map(|p| p.transport.payload());
    let inner = payload.ok().and_then(dns::parse_tcp_stream_message);
    assert_eq!(inner, Some(&msg[..]));
    assert_eq!(
        dns::parse_tcp_stream_message(&stream[..stream.len() - 1]),
        None
    );
}

#[test]
fn dns_compression_loop_in_answer() {
    let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
    m.extend_from_slice(b"\x01q\x00\x00\x01\x00\x01");
    // Answer owner at 19 points to 21, which points back to 19.
    m.extend_from_slice(&[0xc0, 21, 0xc0, 19]);
    let e = dns::parse_response(&m)
        .map(|_| ())
        .map_err(|e| (e.offset(), e.place(), e.kind()));
    assert_eq!(
        e,
        Err((
            19,
            Place::Answer(0),
            DnsErrorKind::PointerNotBackwards { target: 21 }
        ))
    );
    // 40 pointers, each pointing at the one before, hidden in an unknown record's data;
    // a second answer's owner enters the chain at its end.
    let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
    m.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
    m.extend_from_slice(&[0xc0, 12, 0, 99, 0, 1, 0, 0, 0, 0, 0, 80]);
    assert_eq!(m.len(), 31);
    for i in 0..40u8 {
        let target = if i == 0 { 12 } else { 31 + 2 * (i - 1) };
        m.extend_from_slice(&[0xc0, target]);
    }
    m.extend_from_slice(&[0xc0, 109, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4]);
    let e = dns::parse_response(&m)
        .map(|_| ())
        .map_err(|e| (e.offset(), e.place(), e.kind()));
    assert_eq!(
        e,
        Err((47, Place::Answer(1), DnsErrorKind::TooManyPointers))
    );
}

#[test]
fn dns_a_record_with_bad_length() {
    let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
    m.extend_from_slice(b"\x01q\x00\x00\x01\x00\x01");
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 5, 1, 2, 3, 4, 5]);
    assert_eq!(
        dns::parse_response(&m).map_err(|e| e.kind()),
        Err(DnsErrorKind::BadRdLength {
            rdlength: 5,
            expected: 4
        })
    );
    m[30] = 4;
    m.pop();
    assert_eq!(
        dns::parse_response(&m).map(|r| r.addresses),
        Ok(vec![IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4))])
    );
}

#[test]
fn tls_client_hello_split_over_two_segments() {
    let host = "ws-fhir.fhir.azurehealthcareapis.com";
    let hello = client_hello(host);
    let (first, second) = hello.split_at(60);
    let seg1 = tcp4(50000, 443, 1000, TcpControl::Psh, first);
    let seg2 = tcp4(50000, 443, 1060, TcpControl::Psh, second);
    let mut d = Decoder::default();

    let mut buffered = Vec::new();
    let p1 = d
        .decode(LinkType::Raw, &seg1, 0)
        .map(|p| p.transport.payload().to_vec());
    buffered.extend_from_slice(&p1.unwrap_or_default());
    assert_eq!(
        tls::client_hello_sni(&buffered),
        SniResult::Incomplete {
            needed: hello.len()
        }
    );
    let p2 = d
        .decode(LinkType::Raw, &seg2, 0)
        .map(|p| p.transport.payload().to_vec());
    buffered.extend_from_slice(&p2.unwrap_or_default());
    assert_eq!(tls::client_hello_sni(&buffered), SniResult::Found(host));

    // The whole hello in one segment.
    let seg = tcp4(50000, 443, 1000, TcpControl::Psh, &hello);
    let sni = d
        .decode(LinkType::Raw, &seg, 0)
        .map(|p| tls::client_hello_sni(p.transport.payload()));
    assert_eq!(sni, Ok(SniResult::Found(host)));
}

#[test]
fn http_host_with_port() {
    let request = b"GET /health/check HTTP/1.1\r\nUser-Agent: t\r\nHost: ws-dicom.dicom.azurehealthcareapis.com:8443\r\n\r\n";
    let seg = tcp4(50000, 80, 1, TcpControl::Psh, request);
    let mut d = Decoder::default();
    let host = d
        .decode(LinkType::Raw, &seg, 0)
        .map(|p| http::request_host(p.transport.payload()));
    assert_eq!(host, Ok(Some("ws-dicom.dicom.azurehealthcareapis.com")));
}
