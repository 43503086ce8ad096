//! Every prefix and many deterministic random mutations of golden frames go through the
//! decoder and the payload parsers; nothing may panic and the reassembler must stay
//! within its limits.

mod common;

use common::*;
use linkward_decode::{Decoder, DecoderConfig, LinkType, dns, http, tls};
use smoltcp::wire::{IpProtocol, TcpControl};

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Rounds per random test: `LINKWARD_FUZZ_ROUNDS` for longer local runs.
fn rounds(default: usize) -> usize {
    std::env::var("LINKWARD_FUZZ_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(default)
}

fn dns_message() -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
    m.extend_from_slice(b"\x02ws\x04fhir\x03com\x00\x00\x01\x00\x01");
    m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 16]);
    m.extend_from_slice(b"\x02ws\x0bprivatelink\xc0\x0f");
    m.extend_from_slice(&[0xc0, 41, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 0, 0, 7]);
    m
}

fn golden() -> Vec<(LinkType, Vec<u8>)> {
    let dns = udp4(53, 40000, &dns_message());
    let hello = tcp4(
        50000,
        443,
        1,
        TcpControl::Psh,
        &client_hello("ws-fhir.fhir.example"),
    );
    let get = tcp4(
        50000,
        80,
        1,
        TcpControl::Psh,
        b"GET / HTTP/1.1\r\nHost: a.example:80\r\n\r\n",
    );
    let upper6 = udp(A6.into(), B6.into(), 53, 40000, &dns_message());
    let mut chain6 = ext8(43);
    chain6.extend_from_slice(&ext8(60));
    chain6.extend_from_slice(&ext8(17));
    chain6.extend_from_slice(&upper6);
    let v6 = ipv6(0, &chain6);
    let mut frag6_first = frag6(17, 0, true, 5);
    frag6_first.extend_from_slice(&upper6[..24]);
    let mut frag6_last = frag6(17, 24, false, 5);
    frag6_last.extend_from_slice(&upper6[24..]);
    let udp_bytes = udp(A4.into(), B4.into(), 53, 40000, &dns_message());
    let frags4 = ipv4_fragments(IpProtocol::Udp, 9, &udp_bytes, &[16, 32]);

    let mut null = 2u32.to_le_bytes().to_vec();
    null.extend_from_slice(&dns);
    let mut frames = vec![
        (LinkType::Ethernet, ethernet(0x0800, &[], &dns)),
        (
            LinkType::Ethernet,
            ethernet(0x0800, &[(0x88a8, 1), (0x8100, 2)], &hello),
        ),
        (LinkType::Ethernet, ethernet(0x86dd, &[(0x8100, 3)], &v6)),
        (LinkType::LinuxSll, sll(0x0800, &get)),
        (LinkType::LinuxSll2, sll2(0x86dd, &v6)),
        (LinkType::Null, null),
        (LinkType::Raw, ipv6(44, &frag6_first)),
        (LinkType::Raw, ipv6(44, &frag6_last)),
    ];
    for f in frags4 {
        frames.push((LinkType::Ethernet, ethernet(0x0800, &[], &f)));
    }
    frames
}

/// Decodes a frame and runs every payload parser on what comes out.
fn exercise(d: &mut Decoder, link: LinkType, frame: &[u8], ts: u64) {
    if let Ok(p) = d.decode(link, frame, ts) {
        let payload = p.transport.payload();
        let _ = dns::parse_response(payload);
        let _ = dns::parse_tcp_stream_message(payload).map(dns::parse_response);
        let _ = tls::client_hello_sni(payload);
        let _ = http::request_host(payload);
        assert!(p.ip_len <= 65535 + 40 || p.ip_len <= frame.len());
    }
    // The parsers also see raw, undecoded bytes.
    let _ = dns::parse_response(frame);
    let _ = tls::client_hello_sni(frame);
    let _ = http::request_host(frame);
}

#[test]
fn every_prefix_of_golden_frames() {
    let mut d = Decoder::default();
    for (link, frame) in golden() {
        for end in 0..=frame.len() {
            exercise(&mut d, link, &frame[..end], 0);
        }
    }
    // Whole and in order, the six unfragmented frames and the two datagrams decode.
    let mut d = Decoder::default();
    let decoded = golden()
        .iter()
        .filter(|(link, frame)| d.decode(*link, frame, 0).is_ok())
        .count();
    assert_eq!(decoded, 8);
}

#[test]
fn random_mutations_of_golden_frames() {
    let config = DecoderConfig {
        max_fragment_sets: 8,
        max_fragments_per_set: 8,
        fragment_timeout_ns: 1_000_000,
    };
    let mut d = Decoder::new(config);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let frames = golden();
    let links = [
        LinkType::Ethernet,
        LinkType::Raw,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::Null,
        LinkType::Loop,
        LinkType::Ipv4,
        LinkType::Ipv6,
    ];
    let mut ts = 0u64;
    for round in 0..rounds(30_000) {
        let (mut link, frame) = frames[round % frames.len()].clone();
        let mut frame = frame;
        let edits = 1 + rng.below(4);
        for _ in 0..edits {
            if frame.is_empty() {
                frame.push(rng.next() as u8);
            }
            match rng.below(6) {
                0 => {
                    let i = rng.below(frame.len());
                    frame[i] ^= 1 << rng.below(8);
                }
                1 | 2 => {
                    // Header bytes matter most: bias towards the first 80.
                    let i = rng.below(frame.len().min(80));
                    frame[i] = rng.next() as u8;
                }
                3 => frame.truncate(rng.below(frame.len() + 1)),
                4 => frame.extend((0..rng.below(64)).map(|_| rng.next() as u8)),
                _ => link = links[rng.below(links.len())],
            }
        }
        ts += rng.below(50_000) as u64;
        exercise(&mut d, link, &frame, ts);
        assert!(d.fragment_stats().pending <= config.max_fragment_sets);
    }
}

#[test]
fn random_bytes_as_every_link_type() {
    let mut d = Decoder::default();
    let mut rng = Rng(42);
    for round in 0..rounds(20_000) as u64 {
        let len = rng.below(120);
        let mut frame: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Make IP likely enough to get past the first checks.
        if let Some(b) = frame.first_mut() {
            *b = if round % 2 == 0 { 0x45 } else { 0x60 };
        }
        let link = LinkType::from_linktype([0, 1, 101, 108, 113, 228, 229, 276][rng.below(8)]);
        exercise(&mut d, link, &frame, round);
    }
}

/// `decode_stateless` is what a fresh decoder says about the same frame, except that it
/// declines fragments (which a fresh decoder would hold for reassembly or, for a first
/// fragment it cannot keep, decode alone) so the caller can send them to a stateful one.
#[test]
fn stateless_decode_agrees_with_a_fresh_decoder() {
    let mut rng = Rng(7);
    let frames = golden();
    let (mut declined, mut agreed) = (0, 0);
    for round in 0..rounds(20_000) {
        let (link, mut frame) = frames[round % frames.len()].clone();
        if round >= frames.len() {
            let i = rng.below(frame.len().min(80));
            frame[i] = rng.next() as u8;
            frame.truncate(frame.len() - rng.below(8).min(frame.len()));
        }
        let mut fresh = Decoder::default();
        let expected = fresh.decode(link, &frame, 0);
        match linkward_decode::decode_stateless(link, &frame) {
            Some(got) => {
                assert_eq!(got, expected, "round {round}");
                agreed += 1;
            }
            None => {
                // A lone fragment: held by the reassembler, or refused by it.
                assert!(
                    matches!(&expected, Err(s) if s.label().starts_with("fragment-")),
                    "round {round}: declined a frame that is no fragment: {expected:?}"
                );
                declined += 1;
            }
        }
    }
    // The golden frames hold four fragments; mutations keep some of them fragments.
    assert!(declined >= 4, "declined {declined}");
    assert!(agreed > declined);
}
