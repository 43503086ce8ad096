//! Runs the decoder and the payload parsers over every capture of the shared corpus
//! (well-formed and malformed), which must never panic, and checks what a few known
//! captures contain.
//!
//! The corpus lives beside the repository (`shared/corpus/pcaps`, or the folder named by
//! `LINKWARD_CORPUS`); the test is skipped when it is absent. The capture walker here is
//! the least that reaches the frames: classic pcap and pcapng enhanced/simple packet
//! blocks, with every length checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use linkward_decode::tls::SniResult;
use linkward_decode::{Decoder, DecoderConfig, LinkType, Transport, dns, http, tls};

struct Frame<'a> {
    link: u32,
    ts_ns: u64,
    data: &'a [u8],
}

fn u32_at(d: &[u8], at: usize, be: bool) -> Option<u32> {
    let b = *d.get(at..)?.first_chunk::<4>()?;
    Some(if be {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

fn u16_at(d: &[u8], at: usize, be: bool) -> Option<u16> {
    let b = *d.get(at..)?.first_chunk::<2>()?;
    Some(if be {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    })
}

/// Frames of a classic pcap file; stops at the first inconsistent record.
fn pcap_frames(file: &[u8]) -> Option<Vec<Frame<'_>>> {
    let magic = u32_at(file, 0, false)?;
    let (be, nanos) = match magic {
        0xa1b2_c3d4 => (false, false),
        0xd4c3_b2a1 => (true, false),
        0xa1b2_3c4d => (false, true),
        0x4d3c_b2a1 => (true, true),
        _ => return None,
    };
    let link = u32_at(file, 20, be)? & 0x0fff_ffff;
    let mut frames = Vec::new();
    let mut at = 24;
    while let (Some(sec), Some(frac), Some(incl)) = (
        u32_at(file, at, be),
        u32_at(file, at + 4, be),
        u32_at(file, at + 8, be),
    ) {
        let start = at + 16;
        let Some(data) = file.get(start..start + incl as usize) else {
            break;
        };
        let frac_ns = if nanos {
            u64::from(frac)
        } else {
            u64::from(frac) * 1000
        };
        frames.push(Frame {
            link,
            ts_ns: u64::from(sec) * 1_000_000_000 + frac_ns,
            data,
        });
        at = start + incl as usize;
    }
    Some(frames)
}

/// Frames of a pcapng file: section headers for byte order, interface descriptions for
/// link types, enhanced and simple packet blocks for frames. Timestamps are taken as
/// microseconds (the default resolution).
fn pcapng_frames(file: &[u8]) -> Option<Vec<Frame<'_>>> {
    if u32_at(file, 0, false)? != 0x0a0d_0d0a {
        return None;
    }
    let mut frames = Vec::new();
    let mut links: Vec<u32> = Vec::new();
    let mut be = false;
    let mut at = 0;
    while let Some(kind) = u32_at(file, at, be) {
        if kind == 0x0a0d_0d0a {
            be = match u32_at(file, at + 8, false)? {
                0x1a2b_3c4d => false,
                0x4d3c_2b1a => true,
                _ => return Some(frames),
            };
            links.clear();
        }
        let Some(len) = u32_at(file, at + 4, be).map(|l| l as usize) else {
            break;
        };
        if len < 12 || len % 4 != 0 {
            break;
        }
        let Some(body) = file.get(at + 8..at + len - 4) else {
            break;
        };
        match kind {
            1 => links.push(u32::from(u16_at(body, 0, be).unwrap_or(u16::MAX))),
            6 => {
                let (Some(iface), Some(hi), Some(lo), Some(cap)) = (
                    u32_at(body, 0, be),
                    u32_at(body, 4, be),
                    u32_at(body, 8, be),
                    u32_at(body, 12, be),
                ) else {
                    break;
                };
                let Some(data) = body.get(20..20 + cap as usize) else {
                    break;
                };
                let link = links.get(iface as usize).copied().unwrap_or(u32::MAX);
                let ts = (u64::from(hi) << 32 | u64::from(lo)).saturating_mul(1000);
                frames.push(Frame {
                    link,
                    ts_ns: ts,
                    data,
                });
            }
            3 => {
                let Some(orig) = u32_at(body, 0, be) else {
                    break;
                };
                let data = body.get(4..).unwrap_or(&[]);
                let data = data.get(..(orig as usize).min(data.len())).unwrap_or(&[]);
                let link = links.first().copied().unwrap_or(u32::MAX);
                frames.push(Frame {
                    link,
                    ts_ns: 0,
                    data,
                });
            }
            _ => {}
        }
        at += len;
    }
    Some(frames)
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Summary {
    frames: usize,
    packets: usize,
    tcp: usize,
    udp: usize,
    vlan: usize,
    skips: BTreeMap<&'static str, usize>,
    dns_responses: usize,
    dns_errors: usize,
    dns_names: Vec<String>,
    dns_addresses: usize,
    snis: Vec<String>,
    hosts: Vec<String>,
    reassembled: u64,
}

fn run(frames: &[Frame<'_>]) -> Summary {
    let mut s = Summary::default();
    let mut d = Decoder::new(DecoderConfig::default());
    for f in frames {
        s.frames += 1;
        let packet = match d.decode(LinkType::from_linktype(f.link), f.data, f.ts_ns) {
            Ok(p) => p,
            Err(skip) => {
                // Every skip renders and labels without panicking.
                assert!(!skip.to_string().is_empty());
                *s.skips.entry(skip.label()).or_default() += 1;
                continue;
            }
        };
        s.packets += 1;
        s.vlan += usize::from(packet.vlan.is_some());
        match packet.transport {
            Transport::Tcp {
                src_port,
                dst_port,
                payload,
                ..
            } => {
                s.tcp += 1;
                if let SniResult::Found(name) = tls::client_hello_sni(payload) {
                    s.snis.push(name.to_owned());
                }
                if let Some(host) = http::request_host(payload) {
                    s.hosts.push(host.to_owned());
                }
                if (src_port == 53 || dst_port == 53)
                    && let Some(msg) = dns::parse_tcp_stream_message(payload)
                {
                    let _ = dns::parse_response(msg);
                }
            }
            Transport::Udp {
                src_port,
                dst_port,
                payload,
            } => {
                s.udp += 1;
                // Every UDP payload goes through the DNS parser: it must reject junk
                // without panicking, not only real DNS.
                let dns_port = src_port == 53 || dst_port == 53;
                match dns::parse_response(payload) {
                    Ok(r) if dns_port => {
                        s.dns_responses += 1;
                        s.dns_names.push(r.query.as_str().to_owned());
                        s.dns_addresses += r.addresses.len();
                    }
                    Ok(_) => {}
                    Err(e) => {
                        assert!(!e.to_string().is_empty());
                        // Queries are not errors worth counting.
                        let query = e.kind() == dns::DnsErrorKind::NotResponse;
                        s.dns_errors += usize::from(dns_port && !query);
                    }
                }
                let _ = tls::client_hello_sni(payload);
                let _ = http::request_host(payload);
            }
            Transport::Other => {}
        }
    }
    s.reassembled = d.fragment_stats().completed;
    s
}

fn corpus_dir() -> PathBuf {
    std::env::var_os("LINKWARD_CORPUS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/pcaps"),
        PathBuf::from,
    )
}

fn summaries() -> Option<BTreeMap<String, Summary>> {
    let root = corpus_dir();
    let mut out = BTreeMap::new();
    for sub in ["wellformed", "malformed"] {
        let Ok(entries) = std::fs::read_dir(root.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let frames = pcap_frames(&bytes)
                .or_else(|| pcapng_frames(&bytes))
                .unwrap_or_default();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            out.insert(format!("{sub}/{}", name.unwrap_or_default()), run(&frames));
        }
    }
    (!out.is_empty()).then_some(out)
}

#[test]
fn corpus_never_panics_and_known_captures_decode() {
    let Some(all) = summaries() else {
        eprintln!("corpus not found at {}: skipped", corpus_dir().display());
        return;
    };
    if std::env::var_os("LINKWARD_CORPUS_REPORT").is_some() {
        for (name, s) in &all {
            eprintln!("{name}: {s:?}");
        }
    }
    let get = |name: &str| all.get(name);
    let counts = |name: &str| get(name).map(|s| (s.frames, s.packets, s.tcp, s.udp, s.vlan));
    let skips =
        |name: &str| get(name).map(|s| s.skips.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>());
    let strings = |name: &str, f: fn(&Summary) -> &Vec<String>| {
        get(name).map(|s| {
            f(s).iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
    };

    assert!(all.len() >= 70, "only {} captures read", all.len());

    // Frame, IP, TCP and UDP counts agree with Wireshark's for these captures.
    let w = "wellformed/";
    assert_eq!(
        counts(&format!("{w}pcap-parser__wireshark_samples-test.pcapng")),
        Some((5898, 4088, 15, 3921, 0))
    );
    assert_eq!(
        counts(&format!("{w}zeek__wikipedia.pcap")),
        Some((136, 126, 78, 48, 0))
    );
    assert_eq!(
        counts(&format!("{w}zeek__var-services-std-ports.pcap")),
        Some((263, 259, 184, 75, 0))
    );
    // ARP and spanning tree are skipped, not malformed.
    assert_eq!(
        skips(&format!("{w}zeek__raw_packets.pcap")),
        Some(vec![("llc", 4), ("not-ip", 3)])
    );
    // Linux cooked v2: two pings (IPv4, IPv6), then ARP and RARP.
    assert_eq!(
        counts(&format!("{w}zeek__linux_dlt_sll2.pcap")),
        Some((6, 4, 0, 0, 0))
    );
    // Every frame of the QinQ and VLAN captures is tagged.
    assert_eq!(
        counts(&format!("{w}zeek__http-qinq-0.pcap")),
        Some((14, 14, 14, 0, 14))
    );
    assert_eq!(
        counts(&format!("{w}zeek__http-vlan-0.pcap")),
        Some((14, 14, 14, 0, 14))
    );
    assert_eq!(
        strings(&format!("{w}zeek__http-qinq-0.pcap"), |s| &s.hosts),
        Some("bro.org".to_owned())
    );
    // IPv6 fragments: a lone last fragment stays pending, a three-fragment response
    // is reassembled and parses as DNS.
    let v6frag = get(&format!("{w}zeek__ipv6-fragmented-dns.pcap"));
    assert_eq!(
        v6frag.map(|s| (s.packets, s.reassembled, s.dns_responses)),
        Some((5, 1, 2))
    );
    // IPv4 fragments of large DNSSEC responses.
    let v4frag = get(&format!("{w}zeek__dns-edns-ecs.pcap"));
    assert_eq!(v4frag.map(|s| (s.reassembled, s.dns_errors)), Some((4, 0)));
    // Five fragments of a datagram whose last fragment was never captured.
    assert_eq!(
        skips(&format!("{w}zeek__fragmented-3.pcap")),
        Some(vec![("fragment-pending", 5)])
    );
    // Server names and hosts.
    assert_eq!(
        strings(
            &format!("{w}zeek__chrome-1250-tls-x25519-kyber.pcap"),
            |s| &s.snis
        ),
        Some("lh3.google.com".to_owned())
    );
    assert_eq!(
        strings(&format!("{w}zeek__tls13-ech.pcap"), |s| &s.snis),
        Some("cloudflare-ech.com,cloudflare-ech.com".to_owned())
    );
    assert_eq!(
        strings(&format!("{w}tcpdump__dns_udp.pcap"), |s| &s.dns_names),
        Some("www.tcpdump.org".to_owned())
    );

    // Malformed captures: the reason each is skipped for.
    let m = "malformed/";
    for (name, label) in [
        ("tcpdump__LINKTYPE_IPV4_invalid.pcap", "bad-ip-version"),
        ("tcpdump__ipv6_39_byte_header.pcap", "truncated-ip"),
        (
            "tcpdump__ipv6-next-header-oobr-1.pcap",
            "truncated-ipv6-ext",
        ),
        ("tcpdump__tcp_header_heapoverflow.pcap", "truncated-tcp"),
        ("tcpdump__udp-length-heapoverflow.pcap", "truncated-udp"),
        ("zeek__ip6-ext-trunc.pcap", "truncated-ipv6-ext"),
        ("zeek__trunc-hdr.pcap", "truncated-link"),
    ] {
        assert_eq!(
            skips(&format!("{m}{name}")),
            Some(vec![(label, 1)]),
            "{name}"
        );
    }
    // A zero total length (segmentation offload) is decoded from the captured bytes.
    assert_eq!(
        counts(&format!("{m}zeek__ip-bogus-header-len.pcap")),
        Some((1, 1, 0, 0, 0))
    );
    // Crafted DNS names are rejected, a deep but backwards pointer chain is read.
    assert_eq!(
        get(&format!("{m}tcpdump__dns_fwdptr.pcap")).map(|s| s.dns_errors),
        Some(1)
    );
    assert_eq!(
        get(&format!("{m}tcpdump__dns-badlabel.pcap")).map(|s| s.dns_errors),
        Some(1)
    );
    assert_eq!(
        get(&format!("{m}zeek__max-compression-depth.pcap")).map(|s| s.dns_addresses),
        Some(7)
    );
}
