//! The generator: exact counts, determinism, and a summary that matches what a decoder
//! finds in the file.

use linkward_capture::CaptureFile;
use linkward_decode::dns::parse_response;
use linkward_decode::tls::{SniResult, client_hello_sni};
use linkward_decode::{Decoder, DecoderConfig, LinkType};
use linkward_synth::{ExpectedFindings, GenConfig, generate};
use std::collections::HashSet;
use std::net::IpAddr;

/// What a decoder sees in a generated capture.
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    packets: u64,
    flows: u64,
    dns_answers: u64,
    hellos: u64,
    max_caplen: usize,
    smb_flows: u64,
    on_premises_flows: u64,
}

fn scan(bytes: Vec<u8>) -> Seen {
    let file = CaptureFile::from_bytes("gen.pcap", bytes).unwrap();
    let mut d = Decoder::new(DecoderConfig::default());
    let mut flows = HashSet::new();
    let mut seen = Seen::default();
    for p in file.packets() {
        let p = p.unwrap();
        seen.packets += 1;
        seen.max_caplen = seen.max_caplen.max(p.data.len());
        let Ok(packet) = d.decode(LinkType::Ethernet, p.data, p.ts_ns) else {
            panic!("packet {} does not decode", p.number)
        };
        let (sp, dp) = packet.transport.ports().unwrap();
        let key = if (packet.src, sp) < (packet.dst, dp) {
            (packet.src, sp, packet.dst, dp, packet.protocol)
        } else {
            (packet.dst, dp, packet.src, sp, packet.protocol)
        };
        if flows.insert(key) {
            if dp == 445 {
                seen.smb_flows += 1;
            }
            if matches!(packet.src, IpAddr::V4(a) if a.octets()[..2] == [192, 168]) {
                seen.on_premises_flows += 1;
            }
        }
        let payload = packet.transport.payload();
        if sp == 53 && parse_response(payload).is_ok() {
            seen.dns_answers += 1;
        }
        if let SniResult::Found(_) = client_hello_sni(payload) {
            seen.hellos += 1;
        }
    }
    seen.flows = flows.len() as u64;
    seen
}

#[test]
fn summary_matches_the_file() {
    let config = GenConfig {
        packets: 20_000,
        flows: 600,
        seed: 7,
        ..GenConfig::default()
    };
    let mut bytes = Vec::new();
    let summary = generate(&config, &mut bytes).unwrap();
    assert_eq!(summary.packets, 20_000);
    assert_eq!(summary.flows, 600);
    let seen = scan(bytes.clone());
    assert_eq!(seen.packets, 20_000);
    assert_eq!(seen.flows, 600);
    assert_eq!(seen.dns_answers, summary.dns_answers);
    assert_eq!(seen.hellos, summary.tls_client_hellos);
    assert_eq!(seen.smb_flows, summary.expected.rule);
    assert_eq!(seen.on_premises_flows, summary.expected.origin_not_allowed);
    assert_eq!(seen.max_caplen, 14 + 20 + 20 + 1460);
    assert_eq!(summary.bytes_captured, summary.bytes_on_wire);
    assert_eq!(
        bytes.len() as u64,
        24 + 16 * 20_000 + summary.bytes_captured
    );
    let e = &summary.expected;
    assert_eq!(e.pe_bypass, e.dns_public_resolution);
    assert!(
        e.pe_bypass > 0 && e.rule > 0 && e.origin_not_allowed > 0,
        "{e:?}"
    );
    assert_eq!(e.total(), 2 * e.pe_bypass + e.rule + e.origin_not_allowed);
    // About 2 microseconds a packet.
    let span = summary.last_ns - summary.first_ns;
    assert!((20_000_000..60_000_000).contains(&span), "{span}");

    // The same configuration gives the same bytes; another seed does not.
    let mut again = Vec::new();
    assert_eq!(generate(&config, &mut again).unwrap(), summary);
    assert_eq!(again, bytes);
    let mut other = Vec::new();
    generate(&GenConfig { seed: 8, ..config }, &mut other).unwrap();
    assert_ne!(other, bytes);
}

#[test]
fn a_short_snaplen_cuts_names_out_of_the_expectations() {
    let config = GenConfig {
        packets: 5_000,
        flows: 300,
        snaplen: 96,
        seed: 3,
        ..GenConfig::default()
    };
    let mut bytes = Vec::new();
    let summary = generate(&config, &mut bytes).unwrap();
    let full = generate(
        &GenConfig {
            snaplen: 262_144,
            ..config.clone()
        },
        Vec::new(),
    )
    .unwrap();
    let seen = scan(bytes);
    assert_eq!(seen.max_caplen, 96);
    assert_eq!(
        (
            seen.dns_answers,
            summary.dns_answers,
            summary.tls_client_hellos
        ),
        (0, 0, 0)
    );
    assert_eq!(summary.dns_answers_cut, full.dns_answers);
    assert_eq!(summary.bytes_on_wire, full.bytes_on_wire);
    assert_eq!(
        summary.expected,
        ExpectedFindings {
            pe_bypass: 0,
            dns_public_resolution: 0,
            ..full.expected.clone()
        }
    );
}

#[test]
fn without_violations_nothing_is_expected() {
    let config = GenConfig {
        packets: 3_000,
        flows: 200,
        violations: false,
        ..GenConfig::default()
    };
    let summary = generate(&config, Vec::new()).unwrap();
    assert_eq!(summary.expected, ExpectedFindings::default());
    assert_eq!(summary.packets, 3_000);
}

#[test]
fn budgets_too_small_for_the_flows_give_fewer_flows() {
    // The first session (a lookup and a TLS connection) needs 9 packets.
    let summary = generate(
        &GenConfig {
            packets: 9,
            flows: 100,
            ..GenConfig::default()
        },
        Vec::new(),
    )
    .unwrap();
    assert_eq!(
        (summary.packets, summary.flows, summary.sessions),
        (9, 2, 1)
    );
    let summary = generate(
        &GenConfig {
            packets: 5,
            flows: 100,
            ..GenConfig::default()
        },
        Vec::new(),
    )
    .unwrap();
    assert_eq!((summary.packets, summary.flows), (0, 0));
    let summary = generate(
        &GenConfig {
            packets: 100,
            flows: 0,
            ..GenConfig::default()
        },
        Vec::new(),
    )
    .unwrap();
    assert_eq!(summary.packets, 0);
}

#[test]
fn settings_out_of_range_are_refused() {
    let e = generate(
        &GenConfig {
            snaplen: 40,
            ..GenConfig::default()
        },
        Vec::new(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "generator setting `snaplen` = 40: at least 64 bytes are needed to keep the headers"
    );
    let e = generate(
        &GenConfig {
            payload_size: 70_000,
            ..GenConfig::default()
        },
        Vec::new(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "generator setting `payload_size` = 70000: a TCP segment in IPv4 holds at most 65495 bytes"
    );
}
