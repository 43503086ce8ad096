//! A capture scanned in two halves, the second before the first is done, then joined
//! (`SplitFile`), evaluates exactly the records one pipeline scanning the whole file
//! evaluates, field for field, and counts exactly what it counts: whatever record the
//! cut falls on, with flows, DNS answers, idle timeouts, reopened connections and
//! ClientHellos across it, and when the two halves together would overflow the flow
//! table (then the second half is scanned again).

mod common;

use linkward_capture::CaptureFile;
use linkward_guest::record::Finding;
use linkward_host::evaluation::{Backend, CollectSink};
use linkward_host::pipeline::{Joined, Pipeline, ScanOptions, ScanProgress, SplitFile};
use linkward_host::track::TrackerConfig;
use linkward_host::track::flows::FlowTableConfig;
use linkward_synth::{Close, Conversation, Frame, Link, dns_exchange, tls_client_hello};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Reports every record it is given, so the sink sees every record evaluated.
struct EveryRecord;

impl Backend for EveryRecord {
    fn evaluate_flows(&mut self, _batch: &[u8], records: usize) -> Result<Vec<Finding>, String> {
        Ok(common::finding_for_each(records))
    }
    fn evaluate_dns(&mut self, _batch: &[u8], records: usize) -> Result<Vec<Finding>, String> {
        Ok(common::finding_for_each(records))
    }
    fn policy(&self) -> (Arc<str>, Arc<str>) {
        ("every-record".into(), "1".into())
    }
}

/// What a scan evaluated (each record as JSON, sorted) and counted (timing left out).
#[derive(Debug, PartialEq)]
struct Outcome {
    records: Vec<String>,
    stats: serde_json::Value,
}

fn outcome(sinks: Vec<CollectSink>, pipeline: &Pipeline) -> Outcome {
    let mut records: Vec<String> = sinks
        .into_iter()
        .flat_map(|s| s.reports)
        .map(|(subject, _)| subject.to_json().to_string())
        .collect();
    records.sort();
    let mut stats = serde_json::to_value(pipeline.stats()).unwrap();
    for timing in ["elapsed_secs", "packets_per_sec", "batches"] {
        stats.as_object_mut().unwrap().remove(timing);
    }
    Outcome { records, stats }
}

fn options(max_flows: usize) -> ScanOptions {
    ScanOptions {
        batch_size: 7,
        tracker: TrackerConfig {
            flows: FlowTableConfig {
                max_flows,
                ..FlowTableConfig::default()
            },
            ..TrackerConfig::default()
        },
        ..ScanOptions::default()
    }
}

fn whole(file: &CaptureFile, options: &ScanOptions) -> Outcome {
    let mut pipeline = Pipeline::new(options).unwrap();
    let mut sink = CollectSink::default();
    pipeline
        .scan_file(file, 0, &mut EveryRecord, &mut sink, &mut |_| {})
        .unwrap();
    pipeline.finish(0, &mut EveryRecord, &mut sink).unwrap();
    outcome(vec![sink], &pipeline)
}

fn halves(file: &CaptureFile, cut: u64, options: &ScanOptions) -> (Outcome, Joined) {
    let split = SplitFile::at(file, cut).unwrap();
    let mut first = Pipeline::new(options).unwrap();
    let mut sink = CollectSink::default();
    let mut later_sink = CollectSink::default();
    let walked = first
        .scan_first_half(&split, 0, &mut EveryRecord, &mut sink, &mut |_| {})
        .unwrap();
    let second = Pipeline::scan_second_half(options, &split, 0, &mut EveryRecord, &mut later_sink);
    let joined = first
        .join_second_half(
            &split,
            &walked,
            second,
            0,
            &mut EveryRecord,
            &mut sink,
            &mut |_| {},
        )
        .unwrap();
    first.finish(0, &mut EveryRecord, &mut sink).unwrap();
    let sinks = match joined {
        Joined::Stitched => vec![sink, later_sink],
        Joined::Rescanned { .. } => vec![sink],
    };
    (outcome(sinks, &first), joined)
}

const SECOND: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * SECOND;

fn at(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Flows and answers laid out so that any cut splits some of them: long TLS and HTTP
/// sessions, a ClientHello in two segments, a connection without client payload
/// (evaluated after eight packets), a closed connection whose ports are reused, a UDP
/// flow that goes idle past its timeout and comes back, a connection quiet for long
/// stretches, names resolved before and
/// again after the middle, a flow to an address nobody resolved, and flows after
/// every earlier flow has timed out, and a keepalive that never goes idle for long.
fn crossing_frames() -> Vec<Frame> {
    crossing_frames_with(&[])
}

fn crossing_frames_with(extra: &[Frame]) -> Vec<Frame> {
    let link = Link::Ethernet;
    let resolver = at("10.0.0.53:53");
    let mut frames = Vec::new();
    let hello = tls_client_hello(Some("records.fhir.example")).unwrap();
    let mut add = |f: Vec<Frame>| frames.extend(f);
    add(dns_exchange(
        link,
        at("10.1.0.1:5301"),
        resolver,
        "records.fhir.example",
        &["records.privatelink.fhir.example"],
        &[ip("10.5.0.4")],
        600,
        T0,
    )
    .unwrap());
    add(
        Conversation::new(link, at("10.1.0.1:40001"), at("10.5.0.4:443"))
            .request(&hello)
            .reply(&[7; 6000])
            .start_ns(T0 + SECOND)
            .step_ns(3 * SECOND)
            .frames()
            .unwrap(),
    );
    let (a, b) = hello.split_at(hello.len() / 2);
    add(
        Conversation::new(link, at("10.1.0.2:40002"), at("20.60.1.9:443"))
            .request_segments(vec![a.to_vec(), b.to_vec()])
            .reply(&[9; 3000])
            .start_ns(T0 + 2 * SECOND)
            .step_ns(7 * SECOND)
            .close(Close::Reset)
            .frames()
            .unwrap(),
    );
    add(
        Conversation::new(link, at("10.1.0.3:40003"), at("20.60.1.10:8443"))
            .reply(&[1; 20000])
            .start_ns(T0 + 3 * SECOND)
            .step_ns(4 * SECOND)
            .close(Close::Open)
            .frames()
            .unwrap(),
    );
    for (i, start) in [5u64, 60, 130].into_iter().enumerate() {
        add(
            Conversation::new(link, at("10.1.0.4:40004"), at("10.5.0.8:80"))
                .request(format!("GET /{i} HTTP/1.1\r\nHost: dicom.example\r\n\r\n").as_bytes())
                .reply(&[3; 2000])
                .start_ns(T0 + start * SECOND)
                .step_ns(4 * SECOND)
                .frames()
                .unwrap(),
        );
    }
    add(dns_exchange(
        link,
        at("10.1.0.1:5302"),
        resolver,
        "records.fhir.example",
        &[],
        &[ip("20.60.1.20")],
        30,
        T0 + 100 * SECOND,
    )
    .unwrap());
    add(
        Conversation::new(link, at("10.1.0.1:40005"), at("20.60.1.20:443"))
            .request(&hello)
            .reply(&[5; 4000])
            .start_ns(T0 + 101 * SECOND)
            .step_ns(2 * SECOND)
            .frames()
            .unwrap(),
    );
    // A slow connection: quiet for longer than the rest of the traffic, never for
    // longer than TCP's idle timeout.
    add(
        Conversation::new(link, at("10.1.0.6:40006"), at("10.5.0.9:443"))
            .request(&hello)
            .reply(&[4; 3000])
            .start_ns(T0 + 10 * SECOND)
            .step_ns(45 * SECOND)
            .frames()
            .unwrap(),
    );
    // The client of the connection without payload learns its server's name while it
    // is open, before it is evaluated.
    add(dns_exchange(
        link,
        at("10.1.0.3:5303"),
        resolver,
        "late.fhir.example",
        &[],
        &[ip("20.60.1.10")],
        300,
        T0 + 20 * SECOND,
    )
    .unwrap());
    let builder = linkward_synth::FrameBuilder::new(link);
    for t in (0..90).step_by(9).chain([170, 175, 200]) {
        frames.push(Frame {
            ts_ns: T0 + t * SECOND + 500_000,
            link,
            data: builder
                .udp(at("10.1.0.5:5000"), at("10.6.0.1:9000"), &[t as u8; 40])
                .unwrap(),
        });
    }
    // Long after the longest idle time: the second half's window closes before these.
    add_late(&mut frames, link, &hello);
    // The connection without payload, quiet for minutes but not for TCP's idle
    // timeout, goes on.
    frames.push(Frame {
        ts_ns: T0 + 372 * SECOND,
        link,
        data: builder
            .tcp(
                at("20.60.1.10:8443"),
                at("10.1.0.3:40003"),
                1,
                1,
                linkward_synth::tcp_flags::ACK,
                &[6; 100],
            )
            .unwrap(),
    });
    // A keepalive that outlives the capture: no idle sweep may drop it.
    for t in (0..=720).step_by(30) {
        frames.push(Frame {
            ts_ns: T0 + t * SECOND + 700_000,
            link,
            data: builder
                .udp(at("10.1.0.7:6000"), at("10.6.0.2:6000"), &[1; 24])
                .unwrap(),
        });
    }
    frames.extend_from_slice(extra);
    frames.sort_by_key(|f| f.ts_ns);
    frames
}

fn add_late(frames: &mut Vec<Frame>, link: Link, hello: &[u8]) {
    for (port, start) in [(41001, 420u64), (41002, 700)] {
        frames.extend(
            Conversation::new(link, at(&format!("10.1.0.1:{port}")), at("10.5.0.4:443"))
                .request(hello)
                .reply(&[2; 3000])
                .start_ns(T0 + start * SECOND)
                .step_ns(SECOND)
                .frames()
                .unwrap(),
        );
    }
}

fn capture(frames: &[Frame]) -> CaptureFile {
    let bytes = linkward_synth::pcap_bytes(Link::Ethernet, frames).unwrap();
    CaptureFile::from_bytes("crossing.pcap", bytes).unwrap()
}

fn record_offsets(file: &CaptureFile) -> Vec<u64> {
    file.packets().map(|p| p.unwrap().offset).collect()
}

#[test]
fn any_cut_evaluates_and_counts_what_one_pipeline_does() {
    let file = capture(&crossing_frames());
    let options = options(1 << 20);
    let expected = whole(&file, &options);
    assert!(expected.records.len() > 10, "{}", expected.records.len());
    let mut stitched = 0;
    let offsets = record_offsets(&file);
    for &cut in &offsets[1..] {
        let (got, joined) = halves(&file, cut, &options);
        assert_eq!(got, expected, "cut at {cut}: {joined:?}");
        stitched += usize::from(joined == Joined::Stitched);
    }
    // Rescans (a DNS answer replaced while a replayed flow was open) must stay rare,
    // or the split would buy nothing.
    assert!(
        stitched * 10 >= (offsets.len() - 1) * 9,
        "{stitched} of {} cuts stitched",
        offsets.len() - 1
    );
}

#[test]
fn a_cut_inside_a_record_is_scanned_again() {
    let file = capture(&crossing_frames());
    let options = options(1 << 20);
    let offsets = record_offsets(&file);
    let (got, joined) = halves(&file, offsets[offsets.len() / 2] + 3, &options);
    assert_eq!(got, whole(&file, &options));
    assert!(matches!(joined, Joined::Rescanned { reason } if reason.contains("record boundary")));
}

#[test]
fn halves_that_overflow_the_flow_table_together_are_scanned_again() {
    let file = capture(&crossing_frames());
    let options = options(4);
    let expected = whole(&file, &options);
    assert!(expected.stats["flows_evicted"].as_u64().unwrap() > 0);
    let offsets = record_offsets(&file);
    let mut rescanned = 0;
    for &cut in &offsets[1..] {
        let (got, joined) = halves(&file, cut, &options);
        assert_eq!(got, expected, "cut at {cut}: {joined:?}");
        rescanned += usize::from(joined != Joined::Stitched);
    }
    assert!(rescanned > 0);
}

#[test]
fn a_generated_capture_splits_exactly_wherever_it_is_cut() {
    let config = linkward_synth::GenConfig {
        packets: 6_000,
        flows: 300,
        seed: 11,
        ..linkward_synth::GenConfig::default()
    };
    let mut bytes = Vec::new();
    linkward_synth::generate(&config, &mut bytes).unwrap();
    let file = CaptureFile::from_bytes("generated.pcap", bytes).unwrap();
    let options = options(1 << 20);
    let expected = whole(&file, &options);
    let offsets = record_offsets(&file);
    let mut stitched = 0;
    let cuts: Vec<u64> = offsets.iter().skip(1).step_by(97).copied().collect();
    for &cut in &cuts {
        let (got, joined) = halves(&file, cut, &options);
        assert_eq!(got, expected, "cut at {cut}: {joined:?}");
        stitched += usize::from(joined == Joined::Stitched);
    }
    assert!(
        stitched * 10 >= cuts.len() * 9,
        "{stitched} of {}",
        cuts.len()
    );
}

#[test]
fn a_name_that_changes_while_a_flow_across_the_cut_waits_is_scanned_again() {
    // A second answer for the same pair after that flow is evaluated: which of the two
    // answers was current when the replayed flow was evaluated is not in the second
    // half's notes.
    let again = dns_exchange(
        Link::Ethernet,
        at("10.1.0.3:5304"),
        at("10.0.0.53:53"),
        "later.fhir.example",
        &[],
        &[ip("20.60.1.10")],
        300,
        T0 + 40 * SECOND,
    )
    .unwrap();
    let file = capture(&crossing_frames_with(&again));
    let options = options(1 << 20);
    let expected = whole(&file, &options);
    let mut reasons = Vec::new();
    for &cut in &record_offsets(&file)[1..] {
        let (got, joined) = halves(&file, cut, &options);
        assert_eq!(got, expected, "cut at {cut}: {joined:?}");
        if let Joined::Rescanned { reason } = joined {
            reasons.push(reason);
        }
    }
    assert!(
        reasons.iter().any(|r| r.contains("DNS answer changed")),
        "{reasons:?}"
    );
}

#[test]
fn progress_reports_the_records_read_and_the_offset_reached() {
    let file = capture(&crossing_frames());
    let options = options(1 << 20);
    let offsets = record_offsets(&file);
    let mut reports = Vec::new();
    let mut pipeline = Pipeline::new(&options).unwrap();
    pipeline
        .scan_file(
            &file,
            0,
            &mut EveryRecord,
            &mut CollectSink::default(),
            &mut |at| reports.push(at),
        )
        .unwrap();
    assert_eq!(
        reports.last(),
        Some(&ScanProgress {
            records: offsets.len() as u64,
            offset: file.len_bytes(),
        })
    );

    // The first half ends at the cut; scanning the rest again goes on to the end.
    let cut = offsets[offsets.len() / 2];
    let split = SplitFile::at(&file, cut).unwrap();
    let mut first = Pipeline::new(&options).unwrap();
    let mut sink = CollectSink::default();
    let mut reports = Vec::new();
    let walked = first
        .scan_first_half(&split, 0, &mut EveryRecord, &mut sink, &mut |at| {
            reports.push(at)
        })
        .unwrap();
    assert_eq!(reports.last().map(|at| at.offset), Some(cut));
    let unusable = Err(linkward_host::pipeline::ScanError::WorkerStopped);
    let joined = first
        .join_second_half(
            &split,
            &walked,
            unusable,
            0,
            &mut EveryRecord,
            &mut sink,
            &mut |at| reports.push(at),
        )
        .unwrap();
    assert!(matches!(joined, Joined::Rescanned { .. }), "{joined:?}");
    assert_eq!(
        reports.last(),
        Some(&ScanProgress {
            records: offsets.len() as u64,
            offset: file.len_bytes(),
        })
    );
}
