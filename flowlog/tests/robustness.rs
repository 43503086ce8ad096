//! Every prefix and many single-byte corruptions of the sample logs are read
//! without a panic, and both readers agree on them.

use std::path::PathBuf;

use linkward_flowlog::{TupleEvent, read_flow_log, read_flow_log_file, read_flow_log_slice};

fn samples() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/flowlogs");
    let jsonl = br#"{"src":"10.1.0.4","dst":"20.37.1.10","src_port":50000,"dst_port":443,"protocol":"tcp","start":"2024-05-01T10:00:00Z","end":1714557660500,"bytes":5120,"sni":"ws-fhir1.fhir.azurehealthcareapis.com"}
{"src":"fd00::4","dst":"fd00::5","protocol":58,"start":1714557600.5,"denied":true}
"#;
    vec![
        std::fs::read(dir.join("azure-docs__vnet-flow-logs-overview.sample.json")).expect("sample"),
        std::fs::read(dir.join("azure-docs__nsg-flow-logs-overview.v2-sample.json"))
            .expect("sample"),
        jsonl.to_vec(),
    ]
}

/// Reads `input` both ways; returns the number of events and whether the
/// read succeeded, after checking that the two readers agree.
fn both(input: &[u8]) -> (usize, bool) {
    let mut from_slice: Vec<TupleEvent> = Vec::new();
    let slice = read_flow_log_slice(input, "fuzz", |event| from_slice.push(event));
    let mut from_reader: Vec<TupleEvent> = Vec::new();
    let reader = read_flow_log(input, "fuzz", |event| from_reader.push(event));
    assert_eq!(from_slice, from_reader);
    assert_eq!(slice.is_ok(), reader.is_ok());
    if let (Err(a), Err(b)) = (&slice, &reader) {
        assert_eq!(a.summary(), b.summary());
        assert_eq!(a.kind().to_string(), b.kind().to_string());
    }
    (from_slice.len(), slice.is_ok())
}

#[test]
fn every_prefix() {
    for sample in samples() {
        let (full, ok) = both(&sample);
        assert!(ok);
        // Before the `records` member is complete, a prefix of an Azure
        // document is (broken) JSON lines; from there on, a longer prefix
        // never yields fewer tuples.
        let settled = sample
            .windows(9)
            .position(|w| w == b"\"records\"")
            .map_or(0, |at| at + 9);
        let mut last = 0;
        for cut in 0..sample.len() {
            let (events, _) = both(&sample[..cut]);
            if cut >= settled {
                assert!(events >= last, "cut {cut}: {events} < {last}");
                assert!(events <= full, "cut {cut}: {events} > {full}");
                last = events;
            }
        }
    }
}

#[test]
fn single_byte_corruptions() {
    let replacements = [b'"', b',', b'{', b']', b'9', b'x', 0xFF, b'\\', b'\n'];
    for sample in samples() {
        for at in (0..sample.len()).step_by(3) {
            for &byte in &replacements {
                let mut input = sample.clone();
                input[at] = byte;
                both(&input);
            }
        }
    }
}

/// A file is memory-mapped and parsed as a slice; its tuples and its errors, with
/// their line and column, are those of the buffered reader.
#[test]
fn files_read_like_the_buffered_reader() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("log.json");
    let name = path.display().to_string();
    let replacements = [b'"', b'9', b'x', b'}'];
    for sample in samples() {
        for at in (0..sample.len()).step_by(29) {
            for &byte in &replacements {
                let mut input = sample.clone();
                input[at] = byte;
                std::fs::write(&path, &input).expect("write");
                let mut from_file: Vec<TupleEvent> = Vec::new();
                let file = read_flow_log_file(&path, |event| from_file.push(event));
                let mut from_reader: Vec<TupleEvent> = Vec::new();
                let reader = read_flow_log(&input[..], &name, |event| from_reader.push(event));
                assert!(
                    from_file == from_reader,
                    "byte {at} = {byte}: tuples differ"
                );
                match (file, reader) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b),
                    (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                    (a, b) => panic!("byte {at} = {byte}: {a:?} vs {b:?}"),
                }
            }
        }
    }
}
