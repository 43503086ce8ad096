//! Flow and DNS state: the flow table, the DNS tracker, and the whole tracking stage.
//!
//! - `flow_table/hit`: looking up flows that are already in a table of 6,800 (the
//!   common case: every packet after a flow's first), updating their counters;
//! - `flow_table/insert_evict`: new flows into a table bounded at 4,096, so that every
//!   insert past the bound evicts the oldest flow (a scan with `--max-flows` under load);
//! - `dns_tracker/record` and `dns_tracker/lookup`: remembering which name each client
//!   resolved to each address, and asking for it when a flow is evaluated;
//! - `tracker/*`: a generated capture of 200,000 packets walked, decoded and tracked
//!   (flows, DNS answers, SNI, HTTP Host), without evaluation — once as the only worker
//!   and once as worker 0 of 2, which still decodes every packet and learns every DNS
//!   answer but tracks only its half of the flows.
//!
//! Figures are per operation or per packet; compare `tracker/one_worker` with
//! `decode/walk_decode/full` to see what tracking adds to decoding.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use linkward_capture::CaptureFile;
use linkward_decode::{Decoder, DecoderConfig, LinkType};
use linkward_host::track::dns::DnsTracker;
use linkward_host::track::flows::{FlowEntry, FlowKey, FlowTable, FlowTableConfig};
use linkward_host::track::{Tracker, TrackerConfig};
use linkward_synth::{GenConfig, generate};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

/// Flows in the lookup table: about what a 1,000,000-packet generated capture holds.
const TABLE_FLOWS: u32 = 6_800;
/// Operations per measured iteration of the micro-benchmarks.
const OPS: u32 = 100_000;

/// Client `i`: spread over two /16s like the generated traffic.
fn client(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        10,
        1 + (i % 2) as u8,
        (i >> 8) as u8,
        i as u8,
    ))
}

/// Server `i`: a small set of popular addresses, as in real traffic.
fn server(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, 2, 5 + (i % 40) as u8))
}

fn key(i: u32) -> FlowKey {
    FlowKey::new(client(i), 40_000 + (i % 20_000) as u16, server(i), 443, 6)
}

fn entry(i: u32) -> FlowEntry {
    FlowEntry::new(
        (client(i), 40_000 + (i % 20_000) as u16),
        (server(i), 443),
        6,
        u64::from(i),
    )
}

/// A multiplicative walk over 0..n that visits flows in a scattered order, the way
/// packets of interleaved flows arrive.
fn scattered(step: u32, n: u32) -> u32 {
    step.wrapping_mul(2_654_435_761) % n
}

fn flow_table(c: &mut Criterion) {
    let mut group = c.benchmark_group("flow_table");
    group.throughput(Throughput::Elements(u64::from(OPS)));

    let mut table = FlowTable::new(FlowTableConfig::default());
    let keys: Vec<FlowKey> = (0..TABLE_FLOWS).map(key).collect();
    for (i, k) in keys.iter().enumerate() {
        table.insert(*k, entry(i as u32), &mut |_, _| {});
    }
    assert_eq!(table.len(), TABLE_FLOWS as usize);
    let order: Vec<FlowKey> = (0..OPS)
        .filter_map(|s| keys.get(scattered(s, TABLE_FLOWS) as usize).copied())
        .collect();
    group.bench_function("hit", |b| {
        b.iter(|| {
            let mut found = 0u64;
            for k in &order {
                if let Some(e) = table.get_mut(k) {
                    e.packets += 1;
                    found += 1;
                }
            }
            assert_eq!(found, u64::from(OPS));
            black_box(found)
        })
    });

    let new_keys: Vec<(FlowKey, FlowEntry)> = (0..OPS).map(|i| (key(i), entry(i))).collect();
    group.bench_function("insert_evict", |b| {
        b.iter(|| {
            let mut table = FlowTable::new(FlowTableConfig {
                max_flows: 4_096,
                ..FlowTableConfig::default()
            });
            let mut evicted = 0u64;
            for (k, e) in &new_keys {
                table.insert(*k, e.clone(), &mut |_, _| evicted += 1);
            }
            assert_eq!(evicted, u64::from(OPS) - 4_096);
            black_box(evicted)
        })
    });
    group.finish();
}

fn dns_tracker(c: &mut Criterion) {
    let mut group = c.benchmark_group("dns_tracker");
    group.throughput(Throughput::Elements(u64::from(OPS)));
    let name: Arc<str> = Arc::from("fabrikam-records.fhir.azurehealthcareapis.com");
    let chain: Arc<[Box<str>]> = Arc::from(vec![Box::<str>::from(
        "fabrikam-records.privatelink.fhir.azurehealthcareapis.com",
    )]);
    let answers: Vec<(IpAddr, [IpAddr; 1])> = (0..OPS).map(|i| (client(i), [server(i)])).collect();
    group.bench_function("record", |b| {
        b.iter(|| {
            let mut dns = DnsTracker::new(1 << 20, 60);
            for (i, (c, addrs)) in answers.iter().enumerate() {
                dns.record(*c, &name, &chain, addrs, 300, i as u64);
            }
            black_box(dns.len())
        })
    });

    let mut dns = DnsTracker::new(1 << 20, 60);
    for (i, (c, addrs)) in answers.iter().enumerate() {
        dns.record(*c, &name, &chain, addrs, 300, i as u64);
    }
    let lookups: Vec<(IpAddr, IpAddr)> = (0..OPS)
        .map(|s| {
            let i = scattered(s, OPS);
            (client(i), server(i))
        })
        .collect();
    group.bench_function("lookup", |b| {
        b.iter(|| {
            let mut hits = 0u64;
            for (c, a) in &lookups {
                hits += u64::from(dns.lookup(*c, *a, 1_000).is_some());
            }
            assert_eq!(hits, u64::from(OPS));
            black_box(hits)
        })
    });
    group.finish();
}

/// Walks, decodes and tracks the whole capture; returns the records made ready.
fn track(file: &CaptureFile, shard: Option<(u64, u64)>) -> u64 {
    let mut decoder = Decoder::new(DecoderConfig::default());
    let mut tracker = Tracker::new(TrackerConfig {
        shard,
        ..TrackerConfig::default()
    });
    let mut ready = 0u64;
    for record in file.packets() {
        let p = match record {
            Ok(p) => p,
            Err(e) => panic!("walk: {e}"),
        };
        if let Ok(packet) = decoder.decode(LinkType::from_linktype(p.link_type), p.data, p.ts_ns) {
            tracker.on_packet(&packet, p.ts_ns, 0);
        }
        if tracker.has_ready() {
            ready += tracker.drain_ready().count() as u64;
        }
    }
    tracker.finish(0);
    ready + tracker.drain_ready().count() as u64
}

fn tracker(c: &mut Criterion) {
    let config = GenConfig {
        packets: 200_000,
        flows: 1_000,
        ..GenConfig::default()
    };
    let mut bytes = Vec::new();
    let summary = generate(&config, &mut bytes).unwrap_or_else(|e| panic!("generate: {e}"));
    let file =
        CaptureFile::from_bytes("bench.pcap", bytes).unwrap_or_else(|e| panic!("capture: {e}"));
    let all = track(&file, None);
    let half = track(&file, Some((0, 2))) + track(&file, Some((1, 2)));
    // Two shards together make exactly the records one tracker makes.
    assert_eq!(all, half, "sharded tracking lost or duplicated records");
    eprintln!(
        "tracking bench: {} packets, {} flows, {} DNS answers, {all} records",
        summary.packets, summary.flows, summary.dns_answers
    );

    let mut group = c.benchmark_group("tracker");
    group.throughput(Throughput::Elements(summary.packets));
    group.bench_function(BenchmarkId::new("one_worker", "full"), |b| {
        b.iter(|| black_box(track(&file, None)))
    });
    group.bench_function(BenchmarkId::new("shard_0_of_2", "full"), |b| {
        b.iter(|| black_box(track(&file, Some((0, 2)))))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = flow_table, dns_tracker, tracker
}
criterion_main!(benches);
