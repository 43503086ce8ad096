//! `linkward scan` end to end: captures built here, the real binary, its EVE output.
//!
//! Every finding kind has a case and a good-path twin that differs in the one fact the
//! check turns on; the cases run over every link layer the decoder knows, in pcap and
//! pcapng, in IPv4 and IPv6, and findings are compared exactly.

mod common;

use common::{Finding, Scan, fabrikam_policy, scan, sorted};
use linkward_synth::{
    Close, Conversation, DICOM_NAME, FHIR_NAME, FHIR_PRIVATELINK, Frame, FrameBuilder, Link,
    demo_pcap, dns_exchange, http_get, pcap_bytes, pcapng_bytes, tls_client_hello,
};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

const T0: u64 = 1_740_992_400 * SEC;
const SEC: u64 = 1_000_000_000;
const DICOM_PRIVATELINK: &str = "fabrikam-imaging.privatelink.dicom.azurehealthcareapis.com";

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A TLS connection with a ClientHello naming `sni`, a short reply and a client reset.
fn tls(link: Link, client: &str, server: &str, sni: Option<&str>, t: u64) -> Vec<Frame> {
    tcp(link, client, server, &tls_client_hello(sni).unwrap(), t)
}

/// An HTTP request with Host `host`.
fn http(link: Link, client: &str, server: &str, host: &str, t: u64) -> Vec<Frame> {
    tcp(link, client, server, &http_get(host, "/metadata"), t)
}

/// A TCP connection carrying `payload` from the client, a reply, a client reset.
fn tcp(link: Link, client: &str, server: &str, payload: &[u8], t: u64) -> Vec<Frame> {
    Conversation::new(link, sa(client), sa(server))
        .request(payload)
        .reply(&[0x17; 600])
        .close(Close::Reset)
        .start_ns(t)
        .frames()
        .unwrap()
}

fn udp(link: Link, client: &str, server: &str, payload: &[u8], t: u64) -> Vec<Frame> {
    let data = FrameBuilder::new(link)
        .udp(sa(client), sa(server), payload)
        .unwrap();
    vec![Frame {
        ts_ns: t,
        link,
        data,
    }]
}

/// A lookup by `client` answered through `chain` with `addrs`, from the VNet's resolver.
fn dns(
    link: Link,
    client: &str,
    query: &str,
    chain: &[&str],
    addrs: &[&str],
    ttl: u32,
    t: u64,
) -> Vec<Frame> {
    let client = sa(client);
    let resolver = if client.is_ipv4() {
        sa("10.1.0.4:53")
    } else {
        sa("[fd00:1::53]:53")
    };
    let addrs: Vec<IpAddr> = addrs.iter().map(|a| a.parse().unwrap()).collect();
    dns_exchange(link, client, resolver, query, chain, &addrs, ttl, t).unwrap()
}

fn concat(parts: Vec<Vec<Frame>>) -> Vec<Frame> {
    let mut frames: Vec<Frame> = parts.into_iter().flatten().collect();
    frames.sort_by_key(|f| f.ts_ns);
    frames
}

/// One finding kind (or one way to it): traffic that must raise exactly `expect`, and
/// its twin that must raise nothing.
struct Pair {
    what: &'static str,
    bad: fn(Link, u64) -> Vec<Frame>,
    good: fn(Link, u64) -> Vec<Frame>,
    expect: fn() -> Vec<Finding>,
}

fn pairs() -> Vec<Pair> {
    vec![
        Pair {
            what: "pe-bypass, named by SNI",
            bad: |l, t| tls(l, "10.1.5.21:50021", "20.37.1.10:443", Some(FHIR_NAME), t),
            good: |l, t| tls(l, "10.1.5.21:50022", "10.1.2.5:443", Some(FHIR_NAME), t),
            expect: || {
                vec![Finding::new("pe-bypass", "10.1.5.21:50021", "20.37.1.10:443").sni(FHIR_NAME)]
            },
        },
        Pair {
            what: "pe-bypass, named by HTTP Host",
            bad: |l, t| http(l, "10.2.0.7:50023", "20.37.5.5:80", DICOM_NAME, t),
            good: |l, t| http(l, "10.2.0.7:50024", "10.1.2.6:80", DICOM_NAME, t),
            expect: || {
                vec![
                    Finding::new("pe-bypass", "10.2.0.7:50023", "20.37.5.5:80")
                        .http_host(DICOM_NAME),
                ]
            },
        },
        Pair {
            what: "pe-bypass, named by the DNS answer the client got",
            bad: |l, t| {
                concat(vec![
                    dns(
                        l,
                        "10.1.5.22:40022",
                        FHIR_NAME,
                        &[],
                        &["20.37.1.10"],
                        300,
                        t,
                    ),
                    tcp(
                        l,
                        "10.1.5.22:50025",
                        "20.37.1.10:443",
                        b"\x00\x01opaque",
                        t + SEC / 10,
                    ),
                ])
            },
            good: |l, t| {
                concat(vec![
                    dns(
                        l,
                        "10.1.5.23:40023",
                        FHIR_NAME,
                        &[FHIR_PRIVATELINK],
                        &["10.1.2.5"],
                        300,
                        t,
                    ),
                    tcp(
                        l,
                        "10.1.5.23:50026",
                        "10.1.2.5:443",
                        b"\x00\x01opaque",
                        t + SEC / 10,
                    ),
                ])
            },
            expect: || {
                vec![
                    Finding::new("dns-public-resolution", "10.1.5.22:40022", "10.1.0.4:53")
                        .name(FHIR_NAME),
                    Finding::new("pe-bypass", "10.1.5.22:50025", "20.37.1.10:443").name(FHIR_NAME),
                ]
            },
        },
        Pair {
            what: "dns-public-resolution through the privatelink CNAME",
            bad: |l, t| {
                dns(
                    l,
                    "10.2.0.8:40024",
                    DICOM_NAME,
                    &[DICOM_PRIVATELINK],
                    &["20.37.5.5"],
                    60,
                    t,
                )
            },
            good: |l, t| {
                dns(
                    l,
                    "10.2.0.8:40025",
                    DICOM_NAME,
                    &[DICOM_PRIVATELINK],
                    &["10.1.2.6"],
                    60,
                    t,
                )
            },
            expect: || {
                vec![
                    Finding::new("dns-public-resolution", "10.2.0.8:40024", "10.1.0.4:53")
                        .name(DICOM_NAME)
                        .chain(&[DICOM_PRIVATELINK]),
                ]
            },
        },
        Pair {
            what: "dns-conflict",
            bad: |l, t| {
                dns(
                    l,
                    "10.1.5.24:40026",
                    FHIR_NAME,
                    &[FHIR_PRIVATELINK],
                    &["10.1.2.77"],
                    10,
                    t,
                )
            },
            good: |l, t| {
                dns(
                    l,
                    "10.1.5.24:40027",
                    FHIR_NAME,
                    &[FHIR_PRIVATELINK],
                    &["10.1.2.5"],
                    10,
                    t,
                )
            },
            expect: || {
                vec![
                    Finding::new("dns-conflict", "10.1.5.24:40026", "10.1.0.4:53")
                        .name(FHIR_NAME)
                        .chain(&[FHIR_PRIVATELINK]),
                ]
            },
        },
        Pair {
            what: "origin-not-allowed",
            bad: |l, t| http(l, "192.168.7.7:50002", "10.1.2.6:80", DICOM_NAME, t),
            good: |l, t| http(l, "10.2.3.4:50002", "10.1.2.6:80", DICOM_NAME, t),
            expect: || {
                vec![
                    Finding::new("origin-not-allowed", "192.168.7.7:50002", "10.1.2.6:80")
                        .http_host(DICOM_NAME),
                ]
            },
        },
        Pair {
            what: "public-access",
            bad: |l, t| {
                tls(
                    l,
                    "203.0.113.50:40000",
                    "20.37.1.10:443",
                    Some(FHIR_NAME),
                    t,
                )
            },
            good: |l, t| {
                tls(
                    l,
                    "203.0.113.50:40001",
                    "93.184.216.34:443",
                    Some("www.example.com"),
                    t,
                )
            },
            expect: || {
                vec![
                    Finding::new("public-access", "203.0.113.50:40000", "20.37.1.10:443")
                        .sni(FHIR_NAME),
                ]
            },
        },
        Pair {
            what: "untrusted-outbound",
            bad: |l, t| {
                tls(
                    l,
                    "20.37.5.5:50004",
                    "198.51.100.66:443",
                    Some("evil.example.net"),
                    t,
                )
            },
            good: |l, t| {
                tls(
                    l,
                    "20.37.10.1:50014",
                    "52.239.1.1:443",
                    Some("fabrikamexport.blob.core.windows.net"),
                    t,
                )
            },
            expect: || {
                vec![
                    Finding::new("untrusted-outbound", "20.37.5.5:50004", "198.51.100.66:443")
                        .sni("evil.example.net"),
                ]
            },
        },
        Pair {
            what: "service-tag-reliance",
            bad: |l, t| {
                tls(
                    l,
                    "20.37.5.5:50005",
                    "10.1.3.3:443",
                    Some("app.fabrikam.example"),
                    t,
                )
            },
            good: |l, t| {
                tls(
                    l,
                    "20.37.5.5:50015",
                    "10.1.3.3:8443",
                    Some("app.fabrikam.example"),
                    t,
                )
            },
            expect: || {
                vec![
                    Finding::new("service-tag-reliance", "20.37.5.5:50005", "10.1.3.3:443")
                        .sni("app.fabrikam.example"),
                ]
            },
        },
        Pair {
            what: "rule no-smb",
            bad: |l, t| tcp(l, "10.1.4.4:50003", "10.1.9.9:445", &smb_negotiate(), t),
            good: |l, t| udp(l, "10.1.4.4:50013", "10.1.9.9:445", &smb_negotiate(), t),
            expect: || vec![Finding::new("rule", "10.1.4.4:50003", "10.1.9.9:445")],
        },
    ]
}

fn smb_negotiate() -> Vec<u8> {
    let mut smb = vec![0x00, 0x00, 0x00, 0x44, 0xfe, b'S', b'M', b'B', 0x40, 0x00];
    smb.resize(0x48, 0);
    smb
}

/// Every case and twin in one capture, a second apart.
fn all_cases(link: Link) -> (Vec<Frame>, Vec<Finding>) {
    let mut parts = Vec::new();
    let mut expect = Vec::new();
    for (i, p) in pairs().iter().enumerate() {
        let t = T0 + i as u64 * SEC;
        parts.push((p.bad)(link, t));
        parts.push((p.good)(link, t + SEC / 2));
        expect.extend((p.expect)());
    }
    (concat(parts), sorted(expect))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn assert_balanced(s: &Scan) {
    assert_eq!(
        s.stat("packets.packets_read"),
        s.stat("packets.decoded")
            + s.stat("packets.filtered")
            + s.stat_sum("packets.skipped")
            + s.stat_sum("packets.malformed"),
        "{:#}",
        s.stats
    );
}

#[test]
fn every_kind_and_its_twin() {
    // One input file per case and per twin, all in one run: findings name their file.
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = Vec::new();
    for (i, p) in pairs().iter().enumerate() {
        let t = T0 + i as u64 * 1000 * SEC;
        let bad = pcap_bytes(Link::Ethernet, &(p.bad)(Link::Ethernet, t)).unwrap();
        let good = pcap_bytes(Link::Ethernet, &(p.good)(Link::Ethernet, t + 500 * SEC)).unwrap();
        inputs.push(write(dir.path(), &format!("case{i}-bad.pcap"), &bad));
        inputs.push(write(dir.path(), &format!("case{i}-good.pcap"), &good));
    }
    let paths: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    let s = scan(&fabrikam_policy(), &paths, &[]);
    assert_eq!(s.code, 0, "{}", s.stderr);
    for (i, p) in pairs().iter().enumerate() {
        for (file, expect) in [
            (&inputs[2 * i], sorted((p.expect)())),
            (&inputs[2 * i + 1], Vec::new()),
        ] {
            let name = file.display().to_string();
            let mut got: Vec<Finding> = s
                .alerts
                .iter()
                .filter(|a| a["pcap_filename"] == name.as_str())
                .map(Finding::from_alert)
                .collect();
            got.sort();
            assert_eq!(got, expect, "{}: {name}", p.what);
        }
    }
    assert_eq!(
        s.findings.len(),
        pairs().iter().map(|p| (p.expect)().len()).sum::<usize>()
    );
    assert_balanced(&s);
}

#[test]
fn all_cases_on_every_link_in_pcap_and_pcapng() {
    let links = [
        Link::Ethernet,
        Link::Vlan(120),
        Link::QinQ(100, 200),
        Link::LinuxSll,
        Link::LinuxSll2,
        Link::RawIp,
        Link::Null,
    ];
    let dir = tempfile::tempdir().unwrap();
    for link in links {
        let (frames, expect) = all_cases(link);
        for (ext, bytes) in [
            ("pcap", pcap_bytes(link, &frames).unwrap()),
            ("pcapng", pcapng_bytes(&frames).unwrap()),
        ] {
            let path = write(
                dir.path(),
                &format!("cases-{}.{ext}", link.linktype()),
                &bytes,
            );
            let s = scan(&fabrikam_policy(), &[&path], &[]);
            assert_eq!(s.code, 0, "{link:?} {ext}: {}", s.stderr);
            assert_eq!(s.findings, expect, "{link:?} {ext}");
            assert_eq!(
                s.stat("packets.packets_read"),
                frames.len() as u64,
                "{link:?} {ext}"
            );
            assert_eq!(
                s.stat("packets.decoded"),
                frames.len() as u64,
                "{link:?} {ext}"
            );
        }
    }
}

#[test]
fn one_pcapng_with_several_link_types() {
    // Each case on its own interface and link type, in one file.
    let links = [
        Link::Ethernet,
        Link::Vlan(7),
        Link::LinuxSll2,
        Link::RawIp,
        Link::QinQ(1, 2),
    ];
    let mut parts = Vec::new();
    let mut expect = Vec::new();
    for (i, p) in pairs().iter().enumerate() {
        let link = links[i % links.len()];
        let t = T0 + i as u64 * SEC;
        parts.push((p.bad)(link, t));
        parts.push((p.good)(link, t + SEC / 2));
        expect.extend((p.expect)());
    }
    let frames = concat(parts);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "mixed.pcapng", &pcapng_bytes(&frames).unwrap());
    let s = scan(&fabrikam_policy(), &[&path], &[]);
    assert_eq!(s.code, 0, "{}", s.stderr);
    assert_eq!(s.findings, sorted(expect));
}

const IPV6_POLICY: &str = r#"
[policy]
name = "fabrikam-v6"
version = "2.0.1"

[workspace]
name = "fabrikam"
public-network-access = "disabled"

[[workspace.services]]
kind = "fhir"
name = "records"
private-ip = "fd00:1:0:2::5"

[private-endpoint]
vnet = "fd00:1::/48"
subnet = "fd00:1:0:2::/64"
allowed-origins = ["fd00:1::/48"]

[service-tags]
AzureHealthcareAPIs = ["2603:1030::/40"]

[[rules]]
id = "no-smb"
action = "deny"
protocol = "tcp"
src = ["fd00:1::/48"]
dst-ports = [445]
severity = "high"
"#;

#[test]
fn ipv6_cases_and_twins() {
    let build = |link: Link| {
        concat(vec![
            // Public AAAA answer, then a connection there: two findings.
            dns(
                link,
                "[fd00:1:0:5::9]:40000",
                FHIR_NAME,
                &[],
                &["2603:1030::10"],
                300,
                T0,
            ),
            tls(
                link,
                "[fd00:1:0:5::9]:50000",
                "[2603:1030::10]:443",
                Some(FHIR_NAME),
                T0 + SEC / 10,
            ),
            // Twin: the private answer and the private endpoint.
            dns(
                link,
                "[fd00:1:0:5::a]:40000",
                FHIR_NAME,
                &[FHIR_PRIVATELINK],
                &["fd00:1:0:2::5"],
                300,
                T0 + SEC,
            ),
            tls(
                link,
                "[fd00:1:0:5::a]:50000",
                "[fd00:1:0:2::5]:443",
                Some(FHIR_NAME),
                T0 + SEC + SEC / 10,
            ),
            // Outside the allowed origins, and its twin inside.
            tls(
                link,
                "[fd99::7]:50001",
                "[fd00:1:0:2::5]:443",
                Some(FHIR_NAME),
                T0 + 2 * SEC,
            ),
            tls(
                link,
                "[fd00:1:0:7::7]:50001",
                "[fd00:1:0:2::5]:443",
                Some(FHIR_NAME),
                T0 + 2 * SEC + SEC / 2,
            ),
            // SMB, and its UDP twin.
            tcp(
                link,
                "[fd00:1:0:4::4]:50003",
                "[fd00:1:0:9::9]:445",
                &smb_negotiate(),
                T0 + 3 * SEC,
            ),
            udp(
                link,
                "[fd00:1:0:4::4]:50013",
                "[fd00:1:0:9::9]:445",
                &smb_negotiate(),
                T0 + 3 * SEC,
            ),
        ])
    };
    let expect = sorted(vec![
        Finding::new(
            "dns-public-resolution",
            "[fd00:1:0:5::9]:40000",
            "[fd00:1::53]:53",
        )
        .name(FHIR_NAME)
        .version("2.0.1"),
        Finding::new("pe-bypass", "[fd00:1:0:5::9]:50000", "[2603:1030::10]:443")
            .name(FHIR_NAME)
            .sni(FHIR_NAME)
            .version("2.0.1"),
        Finding::new(
            "origin-not-allowed",
            "[fd99::7]:50001",
            "[fd00:1:0:2::5]:443",
        )
        .sni(FHIR_NAME)
        .version("2.0.1"),
        Finding::new("rule", "[fd00:1:0:4::4]:50003", "[fd00:1:0:9::9]:445").version("2.0.1"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let policy = write(dir.path(), "v6.toml", IPV6_POLICY.as_bytes());
    for (name, bytes) in [
        ("v6-raw.pcapng", pcapng_bytes(&build(Link::RawIp)).unwrap()),
        (
            "v6-eth.pcap",
            pcap_bytes(Link::Ethernet, &build(Link::Ethernet)).unwrap(),
        ),
        (
            "v6-sll.pcap",
            pcap_bytes(Link::LinuxSll, &build(Link::LinuxSll)).unwrap(),
        ),
        (
            "v6-null.pcap",
            pcap_bytes(Link::Null, &build(Link::Null)).unwrap(),
        ),
    ] {
        let path = write(dir.path(), name, &bytes);
        let s = scan(&policy, &[&path], &[]);
        assert_eq!(s.code, 0, "{name}: {}", s.stderr);
        assert_eq!(s.findings, expect, "{name}");
    }
}

#[test]
fn statistics_account_for_every_packet() {
    let (mut frames, expect) = all_cases(Link::Ethernet);
    let eth = Link::Ethernet;
    let t = T0 + 100 * SEC;
    // ARP: not IP, skipped.
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp.resize(60, 0);
    // 802.3 with an LLC header (spanning tree): skipped.
    let mut llc = vec![
        0x01, 0x80, 0xc2, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0, 38, 0x42, 0x42, 3,
    ];
    llc.resize(60, 0);
    // An IPv4 header length of 16 bytes: malformed.
    let mut bad_ihl = FrameBuilder::new(eth)
        .udp(sa("10.1.5.9:1"), sa("10.1.0.4:2"), b"x")
        .unwrap();
    bad_ihl[14] = 0x44;
    // A TCP header cut after 10 bytes with lengths that say so: malformed.
    let mut cut_tcp = FrameBuilder::new(eth)
        .tcp(sa("10.1.5.9:1"), sa("10.1.0.4:2"), 0, 0, 0x10, &[])
        .unwrap();
    cut_tcp.truncate(14 + 20 + 10);
    cut_tcp[17] = 30;
    for (i, data) in [arp, llc, bad_ihl, cut_tcp].into_iter().enumerate() {
        frames.push(Frame {
            ts_ns: t + i as u64,
            link: eth,
            data,
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "stats.pcap", &pcap_bytes(eth, &frames).unwrap());
    let s = scan(&fabrikam_policy(), &[&path], &[]);
    assert_eq!(s.code, 0, "{}", s.stderr);
    assert_eq!(s.findings, expect);
    assert_balanced(&s);
    let n = frames.len() as u64;
    assert_eq!(s.stat("packets.packets_read"), n);
    assert_eq!(s.stat("packets.decoded"), n - 4);
    assert_eq!(
        s.stats["packets"]["skipped"],
        serde_json::json!({"llc": 1, "not-ip": 1})
    );
    assert_eq!(
        s.stats["packets"]["malformed"],
        serde_json::json!({"bad-ip-header-length": 1, "truncated-tcp": 1})
    );
    // 15 TCP connections, 1 UDP datagram, 6 lookups.
    assert_eq!((s.stat("flows"), s.stat("flows_evaluated")), (22, 22));
    assert_eq!((s.stat("dns_answers"), s.stat("dns_evaluated")), (6, 6));
    assert_eq!(s.stat("module_errors"), 0);
    let mut kinds = std::collections::BTreeMap::new();
    for f in &expect {
        *kinds.entry(f.kind.clone()).or_insert(0u64) += 1;
    }
    assert_eq!(s.stats["findings"], serde_json::to_value(kinds).unwrap());
}

#[test]
fn fail_on_high_exits_1_only_when_a_high_finding_exists() {
    let dir = tempfile::tempdir().unwrap();
    // pe-bypass is high.
    let high = write(
        dir.path(),
        "high.pcap",
        &pcap_bytes(
            Link::Ethernet,
            &tls(
                Link::Ethernet,
                "10.1.5.21:50021",
                "20.37.1.10:443",
                Some(FHIR_NAME),
                T0,
            ),
        )
        .unwrap(),
    );
    // dns-public-resolution is medium, service-tag-reliance low.
    let lower = concat(vec![
        dns(
            Link::Ethernet,
            "10.2.0.8:40024",
            DICOM_NAME,
            &[DICOM_PRIVATELINK],
            &["20.37.5.5"],
            60,
            T0,
        ),
        tls(
            Link::Ethernet,
            "20.37.5.5:50005",
            "10.1.3.3:443",
            None,
            T0 + SEC,
        ),
    ]);
    let lower = write(
        dir.path(),
        "lower.pcap",
        &pcap_bytes(Link::Ethernet, &lower).unwrap(),
    );

    let s = scan(&fabrikam_policy(), &[&high], &["--fail-on", "high"]);
    assert_eq!((s.code, s.findings.len()), (1, 1), "{}", s.stderr);
    let s = scan(&fabrikam_policy(), &[&lower], &["--fail-on", "high"]);
    assert_eq!(s.code, 0, "{}", s.stderr);
    let mut severities: Vec<&str> = s
        .alerts
        .iter()
        .map(|a| a["linkward"]["severity"].as_str().unwrap())
        .collect();
    severities.sort();
    assert_eq!(severities, ["low", "medium"]);
    let s = scan(&fabrikam_policy(), &[&lower], &["--fail-on", "medium"]);
    assert_eq!(s.code, 1, "{}", s.stderr);
    let s = scan(&fabrikam_policy(), &[&high], &[]);
    assert_eq!(s.code, 0, "{}", s.stderr);
}

#[test]
fn unreadable_inputs_exit_2_and_keep_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pcap");
    let s = scan(&fabrikam_policy(), &[&missing], &[]);
    assert_eq!(s.code, 2);
    assert!(
        s.stderr.contains("linkward: error:") && s.stderr.contains("missing.pcap: cannot open"),
        "{}",
        s.stderr
    );

    let text = write(
        dir.path(),
        "notes.pcap",
        b"these are notes, not a capture\n",
    );
    let s = scan(&fabrikam_policy(), &[&text], &[]);
    assert_eq!(s.code, 2);
    assert!(
        s.stderr.contains("linkward: error:")
            && s.stderr.contains("notes.pcap")
            && s.stderr.contains("not a pcap or pcapng capture"),
        "{}",
        s.stderr
    );
    assert!(s.findings.is_empty());

    // SMB, then public access, then the file is cut inside the last packet: both flows
    // had their payload before the cut.
    let frames = concat(vec![
        tcp(
            Link::Ethernet,
            "10.1.4.4:50003",
            "10.1.9.9:445",
            &smb_negotiate(),
            T0,
        ),
        tls(
            Link::Ethernet,
            "203.0.113.50:40000",
            "20.37.1.10:443",
            Some(FHIR_NAME),
            T0 + SEC,
        ),
    ]);
    let bytes = pcap_bytes(Link::Ethernet, &frames).unwrap();
    let cut = write(dir.path(), "cut.pcap", &bytes[..bytes.len() - 20]);
    let s = scan(&fabrikam_policy(), &[&cut], &[]);
    assert_eq!(s.code, 2);
    assert!(
        s.stderr.contains("linkward: error:") && s.stderr.contains("cut.pcap"),
        "{}",
        s.stderr
    );
    assert!(
        s.stderr.contains("the file ends after") && s.stderr.contains("stopped there"),
        "{}",
        s.stderr
    );
    assert_eq!(
        s.findings,
        sorted(vec![
            Finding::new("rule", "10.1.4.4:50003", "10.1.9.9:445"),
            Finding::new("public-access", "203.0.113.50:40000", "20.37.1.10:443").sni(FHIR_NAME),
        ])
    );
    assert_eq!(s.stat("packets.packets_read"), frames.len() as u64 - 1);
    assert_eq!(s.stats["input_errors"].as_array().map(Vec::len), Some(1));

    // A good file after a missing one is still scanned.
    let good = write(dir.path(), "good.pcap", &bytes);
    let s = scan(&fabrikam_policy(), &[&missing, &good], &[]);
    assert_eq!((s.code, s.findings.len()), (2, 2), "{}", s.stderr);
}

#[test]
fn bpf_filters_packets_before_decoding() {
    let (frames, _) = all_cases(Link::Ethernet);
    // Ethernet + IPv4 without options: protocol at 23, ports at 34 and 36.
    let matches = |f: &Frame| {
        let port = |at: usize| u16::from_be_bytes([f.data[at], f.data[at + 1]]);
        f.data[23] == 6 && (port(34) == 443 || port(36) == 443)
    };
    let kept = frames.iter().filter(|f| matches(f)).count() as u64;
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "bpf.pcap",
        &pcap_bytes(Link::Ethernet, &frames).unwrap(),
    );
    let s = scan(&fabrikam_policy(), &[&path], &["--bpf", "tcp port 443"]);
    assert_eq!(s.code, 0, "{}", s.stderr);
    assert_eq!(s.stat("packets.filtered"), frames.len() as u64 - kept);
    assert_eq!(s.stat("packets.decoded"), kept);
    assert_balanced(&s);
    assert_eq!(s.stat("dns_answers"), 0);
    // Without DNS the third case's flow has no name; everything on 443 with one stays.
    assert_eq!(
        s.findings,
        sorted(vec![
            Finding::new("pe-bypass", "10.1.5.21:50021", "20.37.1.10:443").sni(FHIR_NAME),
            Finding::new("public-access", "203.0.113.50:40000", "20.37.1.10:443").sni(FHIR_NAME),
            Finding::new("untrusted-outbound", "20.37.5.5:50004", "198.51.100.66:443")
                .sni("evil.example.net"),
            Finding::new("service-tag-reliance", "20.37.5.5:50005", "10.1.3.3:443")
                .sni("app.fabrikam.example"),
        ])
    );
}

#[test]
fn client_hello_split_over_two_segments_still_names_the_flow() {
    let hello = tls_client_hello(Some(FHIR_NAME)).unwrap();
    let sni_at = hello
        .windows(FHIR_NAME.len())
        .position(|w| w == FHIR_NAME.as_bytes())
        .unwrap();
    // Cut inside the name itself.
    let (a, b) = hello.split_at(sni_at + 10);
    let frames = Conversation::new(Link::LinuxSll, sa("10.1.5.21:50021"), sa("20.37.1.10:443"))
        .request_segments(vec![a.to_vec(), b.to_vec()])
        .reply(&[0x17; 600])
        .close(Close::Reset)
        .start_ns(T0)
        .frames()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "split.pcapng", &pcapng_bytes(&frames).unwrap());
    let s = scan(&fabrikam_policy(), &[&path], &[]);
    assert_eq!(s.code, 0, "{}", s.stderr);
    assert_eq!(
        s.findings,
        [Finding::new("pe-bypass", "10.1.5.21:50021", "20.37.1.10:443").sni(FHIR_NAME)]
    );
    assert_eq!(s.stat("sni_seen"), 1);
}

#[test]
fn a_dns_answer_names_flows_until_ttl_plus_grace() {
    // TTL 10 s plus 60 s of grace: the answer at T0 + 2 ms is good until T0 + 70.002 s.
    let frames = concat(vec![
        dns(
            Link::Ethernet,
            "10.1.5.40:40040",
            FHIR_NAME,
            &[],
            &["20.37.1.10"],
            10,
            T0,
        ),
        // Payload (and evaluation) at +69.003 s: named by the answer.
        tcp(
            Link::Ethernet,
            "10.1.5.40:50040",
            "20.37.1.10:443",
            b"\x00opaque",
            T0 + 69 * SEC,
        ),
        // Payload at +71.003 s: the answer has expired; nothing names the flow.
        tcp(
            Link::Ethernet,
            "10.1.5.40:50041",
            "20.37.1.10:443",
            b"\x00opaque",
            T0 + 71 * SEC,
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "ttl.pcap",
        &pcap_bytes(Link::Ethernet, &frames).unwrap(),
    );
    let s = scan(&fabrikam_policy(), &[&path], &[]);
    assert_eq!(s.code, 0, "{}", s.stderr);
    assert_eq!(
        s.findings,
        sorted(vec![
            Finding::new("dns-public-resolution", "10.1.5.40:40040", "10.1.0.4:53").name(FHIR_NAME),
            Finding::new("pe-bypass", "10.1.5.40:50040", "20.37.1.10:443").name(FHIR_NAME),
        ])
    );
    assert_eq!(s.stat("flows_evaluated"), 3);
}

#[test]
fn a_full_flow_table_evicts_and_still_evaluates_every_flow() {
    // Five SMB connections whose packets interleave: all five are open at once.
    let sessions: Vec<Vec<Frame>> = (0..5u64)
        .map(|i| {
            tcp(
                Link::Ethernet,
                &format!("10.1.4.{}:5000{i}", 10 + i),
                "10.1.9.9:445",
                &smb_negotiate(),
                T0 + i * 1_000,
            )
        })
        .collect();
    let frames = concat(sessions);
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "evict.pcap",
        &pcap_bytes(Link::Ethernet, &frames).unwrap(),
    );
    let s = scan(&fabrikam_policy(), &[&path], &["--max-flows", "2"]);
    assert_eq!(s.code, 0, "{}", s.stderr);
    let clients: std::collections::BTreeSet<(String, u64)> = s
        .findings
        .iter()
        .map(|f| (f.src.clone(), f.src_port))
        .collect();
    let want: std::collections::BTreeSet<(String, u64)> = (0..5u64)
        .map(|i| (format!("10.1.4.{}", 10 + i), 50000 + i))
        .collect();
    assert_eq!(clients, want);
    // Round robin over five flows with room for two: at least three of them must leave
    // the table while open (counted as evictions) and be evaluated as they leave; how
    // often a flow that returns after eviction is started again depends on the table's
    // policy, so only the lower bounds are fixed here.
    assert!(
        s.findings
            .iter()
            .all(|f| f.kind == "rule" && f.dst == "10.1.9.9" && f.dst_port == 445)
    );
    assert!(s.stat("flows_evicted") >= 3, "{:#}", s.stats);
    assert!(s.stat("flows") >= 5, "{:#}", s.stats);
    assert_eq!(s.stat("flows_evaluated"), s.stat("flows"));
}

#[test]
fn demo_capture_shows_one_finding_of_each_kind_it_is_meant_to() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fabrikam-demo.pcap");
    // The shipped file is exactly what its generator writes now.
    let dir = tempfile::tempdir().unwrap();
    let fresh = write(dir.path(), "demo.pcap", &demo_pcap().unwrap());
    assert!(
        std::fs::read(&shipped).unwrap() == std::fs::read(&fresh).unwrap(),
        "examples/fabrikam-demo.pcap differs from linkward_synth::demo_pcap(); regenerate it with \
         `cargo run --example gen-capture -- --demo -o examples/fabrikam-demo.pcap`"
    );
    let s = scan(&fabrikam_policy(), &[&shipped], &[]);
    assert_eq!(s.code, 0, "{}", s.stderr);
    assert_eq!(
        s.findings,
        sorted(vec![
            Finding::new("dns-public-resolution", "10.1.5.20:40002", "10.1.0.4:53").name(FHIR_NAME),
            Finding::new("pe-bypass", "10.1.5.20:50001", "20.37.1.10:443")
                .name(FHIR_NAME)
                .sni(FHIR_NAME),
            Finding::new("origin-not-allowed", "192.168.7.7:50002", "10.1.2.6:80")
                .http_host(DICOM_NAME),
            Finding::new("rule", "10.1.4.4:50003", "10.1.9.9:445"),
            Finding::new("untrusted-outbound", "20.37.5.5:50004", "198.51.100.66:443")
                .sni("evil.example.net"),
            Finding::new("service-tag-reliance", "20.37.5.5:50005", "10.1.3.3:443")
                .sni("app.fabrikam.example"),
        ])
    );
    for a in &s.alerts {
        assert_eq!(a["pcap_filename"], shipped.display().to_string().as_str());
        assert_eq!(a["linkward"]["policy"], "fabrikam-ahds");
    }
    assert_eq!(s.stat("flows"), 8);
}

#[test]
fn the_final_ack_of_a_fin_close_belongs_to_the_same_flow() {
    // A connection closed the usual way: FIN, FIN, ACK. The last ACK comes after both
    // FINs and must not start a flow of its own (nor a second finding).
    let frames = Conversation::new(Link::Ethernet, sa("10.1.4.4:50003"), sa("10.1.9.9:445"))
        .request(&smb_negotiate())
        .close(Close::Fin)
        .start_ns(T0)
        .frames()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "fin.pcap",
        &pcap_bytes(Link::Ethernet, &frames).unwrap(),
    );
    let s = scan(&fabrikam_policy(), &[&path], &[]);
    assert_eq!(s.code, 0, "{}", s.stderr);
    assert_eq!(
        s.findings,
        [Finding::new("rule", "10.1.4.4:50003", "10.1.9.9:445")]
    );
    assert_eq!(s.stat("flows"), 1);
}

#[test]
fn generated_capture_yields_exactly_the_findings_its_summary_expects() {
    let dir = tempfile::tempdir().unwrap();
    for snaplen in [262_144, 96] {
        let config = linkward_synth::GenConfig {
            packets: 20_000,
            flows: 800,
            snaplen,
            seed: 11,
            ..linkward_synth::GenConfig::default()
        };
        let path = dir.path().join(format!("gen-{snaplen}.pcap"));
        let summary =
            linkward_synth::generate(&config, std::fs::File::create(&path).unwrap()).unwrap();
        let s = scan(&fabrikam_policy(), &[&path], &[]);
        assert_eq!(s.code, 0, "{}", s.stderr);
        let expected: serde_json::Map<String, serde_json::Value> =
            serde_json::to_value(&summary.expected)
                .unwrap()
                .as_object()
                .unwrap()
                .iter()
                .filter(|(_, n)| n.as_u64() != Some(0))
                .map(|(k, n)| (k.clone(), n.clone()))
                .collect();
        assert_eq!(
            s.stats["findings"],
            serde_json::Value::Object(expected),
            "snaplen {snaplen}"
        );
        assert_eq!(s.stat("packets.packets_read"), summary.packets);
        assert_eq!(s.stat("packets.decoded"), summary.packets);
        assert_eq!(s.stat("flows"), summary.flows, "snaplen {snaplen}");
        assert_eq!(s.stat("dns_answers"), summary.dns_answers);
        assert_eq!(s.stat("dns_malformed"), summary.dns_answers_cut);
        assert_eq!(s.stat("sni_seen"), summary.tls_client_hellos);
        assert_eq!(s.stat("http_hosts_seen"), summary.http_requests);
    }
}
