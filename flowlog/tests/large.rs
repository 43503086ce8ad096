//! A generated log of 200 000 tuples streams through in one pass.

use std::fs::File;
use std::io::{BufWriter, Write};

use linkward_flowlog::read_flow_log;
use std::time::Instant;

use linkward_flowlog::{FlowAggregator, TupleEvent, read_flow_log_file, read_flow_log_slice};

const RECORDS: usize = 40;
const GROUPS: usize = 5;
const PER_GROUP: usize = 1000;
const TUPLES: u64 = (RECORDS * GROUPS * PER_GROUP) as u64;

/// Writes a compact VNet flow log (as Azure writes it: one JSON document,
/// no indentation) where each flow is a B tuple followed by an E tuple.
fn write_log(out: &mut impl Write) -> std::io::Result<()> {
    write_records(out, RECORDS)
}

/// Writes a log like [`write_log`] with `records` records.
fn write_records(out: &mut impl Write, records: usize) -> std::io::Result<()> {
    write!(out, "{{\"records\":[")?;
    for record in 0..records {
        if record > 0 {
            write!(out, ",")?;
        }
        write!(
            out,
            "{{\"time\":\"2024-05-01T10:00:00Z\",\"flowLogVersion\":4,\"macAddress\":\"6045BD{record:06X}\",\
             \"category\":\"FlowLogFlowEvent\",\"targetResourceID\":\"/subscriptions/s/vnet{record}\",\
             \"flowRecords\":{{\"flows\":[{{\"aclID\":\"acl-{record}\",\"flowGroups\":["
        )?;
        for group in 0..GROUPS {
            if group > 0 {
                write!(out, ",")?;
            }
            write!(out, "{{\"rule\":\"rule-{group}\",\"flowTuples\":[")?;
            for tuple in 0..PER_GROUP {
                if tuple > 0 {
                    write!(out, ",")?;
                }
                let port = 1024 + (group * PER_GROUP + tuple) / 2;
                let (state, counters) = if tuple % 2 == 0 {
                    ("B", "0,0,0,0")
                } else {
                    ("E", "3,767,2,1580")
                };
                write!(
                    out,
                    "\"{},10.{}.0.4,10.250.0.{},{port},443,6,O,{state},NX,{counters}\"",
                    1_714_557_600_000u64 + tuple as u64,
                    record,
                    group + 1
                )?;
            }
            write!(out, "]}}")?;
        }
        write!(out, "]}}]}}}}")?;
    }
    write!(out, "]}}")?;
    Ok(())
}

#[test]
fn two_hundred_thousand_tuples_stream_through() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("PT1H.json");
    {
        let mut out = BufWriter::new(File::create(&path).expect("create"));
        write_log(&mut out).expect("write");
        out.flush().expect("flush");
    }

    // Only counters are kept: the callback sees each tuple once and drops it.
    let mut count = 0u64;
    let mut bytes = 0u64;
    let mut aggregator = FlowAggregator::new(64);
    let mut opened = 0u64;
    let started = Instant::now();
    let summary = read_flow_log_file(&path, |event| match event {
        TupleEvent::Tuple(tuple) => {
            count += 1;
            bytes += tuple.bytes_sent.unwrap_or(0);
            aggregator.push(&tuple, |event| {
                if matches!(event, linkward_flowlog::FlowEvent::Opened(_)) {
                    opened += 1;
                }
            });
        }
        TupleEvent::Malformed(bad) => panic!("unexpected malformed tuple: {bad}"),
    })
    .expect("reads");
    let elapsed = started.elapsed();
    eprintln!(
        "streamed {count} tuples in {elapsed:?} ({:.0} tuples/s)",
        count as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(count, TUPLES);
    assert_eq!(summary.tuples, TUPLES);
    assert_eq!(summary.records, RECORDS as u64);
    assert_eq!(summary.malformed, 0);
    assert_eq!(bytes, TUPLES / 2 * 767);
    assert_eq!(opened, TUPLES / 2);
    assert_eq!(aggregator.stats().ended, TUPLES / 2);
    assert!(aggregator.is_empty());

    let data = std::fs::read(&path).expect("read back");
    let mut slice_count = 0u64;
    let started = Instant::now();
    let slice_summary =
        read_flow_log_slice(&data, "PT1H.json", |_| slice_count += 1).expect("reads");
    let elapsed = started.elapsed();
    eprintln!(
        "slice: {slice_count} tuples in {elapsed:?} ({:.0} tuples/s)",
        slice_count as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(slice_summary, summary);
}

/// A file larger than the step at which the mapped reader releases the pages behind it
/// (16 MiB), cut short near its end: the mapped reader and the buffered reader deliver
/// the same tuples and report the same error, at the same line and column.
#[test]
fn a_mapped_file_past_several_release_steps_reads_like_the_buffered_reader() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("PT1H.json");
    let mut data = Vec::new();
    write_records(&mut data, 70).expect("write");
    assert!(data.len() > 17 << 20, "the log should span a release step");
    data.truncate(data.len() - 100);
    std::fs::write(&path, &data).expect("write the log");

    let mut mapped = Vec::new();
    let mapped_error =
        read_flow_log_file(&path, |event| mapped.push(event)).expect_err("the log is truncated");
    let mut buffered = Vec::new();
    let file = File::open(&path).expect("open");
    let buffered_error = read_flow_log(file, &path.display().to_string(), |event| {
        buffered.push(event)
    })
    .expect_err("the log is truncated");
    assert_eq!(mapped.len(), buffered.len());
    assert!(
        mapped == buffered,
        "the two readers delivered different tuples"
    );
    assert_eq!(mapped_error.to_string(), buffered_error.to_string());
    assert_eq!(mapped_error.summary(), buffered_error.summary());
    assert!(mapped_error.location().line.is_some());
}
