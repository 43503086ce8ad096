//! Reading and decoding packets, in packets per second: the floor under every scan.
//!
//! A capture of 200,000 packets is generated once in memory by `linkward_synth` (the
//! same traffic `gen-capture` writes: DNS lookups, TLS and HTTP sessions with full-size
//! server segments), once whole and once cut at a 96-byte snap length. Measured:
//!
//! - `walk`: the zero-copy record walk of `CaptureFile::packets`, touching only each
//!   record header: the cost of getting at a packet at all;
//! - `walk_decode`: the walk plus `Decoder::decode` (link, IP, transport), which is
//!   what every packet costs before flow tracking;
//! - `libpcap`: libpcap's offline loop over the same bytes in a file (it copies every
//!   packet), the reader tcpdump uses;
//! - `payload/*`: the three parsers that only run on the packets that name a flow —
//!   a DNS response with a CNAME chain, a TLS ClientHello's SNI, an HTTP Host — per call.
//!
//! The gap between `walk` and `walk_decode` is the decoder; the gap between `walk` and
//! `libpcap` is the copy linkward does not make.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use linkward_capture::{CaptureFile, open_with_libpcap};
use linkward_decode::{Decoder, DecoderConfig, LinkType};
use linkward_synth::{GenConfig, dns_response, generate, http_get, tls_client_hello};
use std::hint::black_box;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

const PACKETS: u64 = 200_000;

/// Generates the benchmark capture with the given snap length.
fn capture(snaplen: u32) -> (Vec<u8>, u64) {
    let config = GenConfig {
        packets: PACKETS,
        flows: 1_000,
        snaplen,
        ..GenConfig::default()
    };
    let mut bytes = Vec::new();
    let summary = generate(&config, &mut bytes).unwrap_or_else(|e| panic!("generate: {e}"));
    (bytes, summary.packets)
}

/// Walks the file, touching only lengths and timestamps.
fn walk(file: &CaptureFile) -> u64 {
    let mut sum = 0u64;
    for record in file.packets() {
        match record {
            Ok(p) => sum = sum.wrapping_add(p.data.len() as u64 ^ p.ts_ns),
            Err(e) => panic!("walk: {e}"),
        }
    }
    sum
}

/// Walks and decodes every packet; returns how many decoded.
fn walk_decode(file: &CaptureFile, decoder: &mut Decoder) -> u64 {
    let mut decoded = 0u64;
    for record in file.packets() {
        let p = match record {
            Ok(p) => p,
            Err(e) => panic!("walk: {e}"),
        };
        if let Ok(packet) = decoder.decode(LinkType::from_linktype(p.link_type), p.data, p.ts_ns) {
            decoded += 1;
            black_box(packet.transport.ports());
        }
    }
    decoded
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (label, snaplen) in [("full", 262_144), ("snap96", 96)] {
        let (bytes, packets) = capture(snaplen);
        let mut temp = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("temp: {e}"));
        temp.write_all(&bytes)
            .and_then(|()| temp.flush())
            .unwrap_or_else(|e| panic!("write the capture: {e}"));
        eprintln!(
            "decode bench ({label}): {packets} packets, {} bytes",
            bytes.len()
        );
        let file =
            CaptureFile::from_bytes("bench.pcap", bytes).unwrap_or_else(|e| panic!("capture: {e}"));
        let mut decoder = Decoder::new(DecoderConfig::default());
        // Every generated packet is well formed: a decoder that refuses some is broken,
        // and its figures would mean nothing.
        let decoded = walk_decode(&file, &mut decoder);
        assert_eq!(decoded, packets, "packets failed to decode");

        group.throughput(Throughput::Elements(packets));
        group.bench_function(BenchmarkId::new("walk", label), |b| {
            b.iter(|| black_box(walk(&file)))
        });
        group.bench_function(BenchmarkId::new("walk_decode", label), |b| {
            b.iter(|| black_box(walk_decode(&file, &mut decoder)))
        });
        group.bench_function(BenchmarkId::new("libpcap", label), |b| {
            b.iter(|| {
                let reader =
                    open_with_libpcap(temp.path()).unwrap_or_else(|e| panic!("libpcap: {e}"));
                let mut sum = 0u64;
                for record in reader {
                    match record {
                        Ok(p) => sum = sum.wrapping_add(p.data.len() as u64 ^ p.ts_ns),
                        Err(e) => panic!("libpcap: {e}"),
                    }
                }
                black_box(sum)
            })
        });
    }
    group.finish();

    let name = "fabrikam-records.fhir.azurehealthcareapis.com";
    let dns = dns_response(
        7,
        name,
        &["fabrikam-records.privatelink.fhir.azurehealthcareapis.com"],
        &[IpAddr::V4(Ipv4Addr::new(10, 1, 2, 5))],
        300,
    )
    .unwrap_or_else(|e| panic!("dns: {e}"));
    let hello = tls_client_hello(Some(name)).unwrap_or_else(|e| panic!("hello: {e}"));
    let http = http_get(
        "fabrikam-imaging.dicom.azurehealthcareapis.com",
        "/v2/studies",
    );
    let mut group = c.benchmark_group("payload");
    group.throughput(Throughput::Elements(1));
    group.bench_function("dns_response", |b| {
        b.iter(
            || match linkward_decode::dns::parse_response(black_box(&dns)) {
                Ok(r) => black_box(r.addresses.len()),
                Err(e) => panic!("dns: {e}"),
            },
        )
    });
    group.bench_function("tls_sni", |b| {
        b.iter(|| black_box(linkward_decode::tls::client_hello_sni(black_box(&hello))))
    });
    group.bench_function("http_host", |b| {
        b.iter(|| black_box(linkward_decode::http::request_host(black_box(&http))))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = decode
}
criterion_main!(benches);
