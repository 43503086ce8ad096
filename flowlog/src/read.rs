//! Entry points: detect the format of an input and stream its tuples.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use serde::de::DeserializeSeed;

use crate::azure::{DocumentSeed, State, Walk};
use crate::error::{ErrorKind, ErrorLocation, FlowLogError};
use crate::jsonl;
use crate::map;
use crate::tuple::{TupleEvent, TupleEventRef};

/// The two kinds of input, told apart by content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// An Azure flow log document, `{"records": [...]}`; its records may be
    /// VNet or NSG flow log records.
    AzureFlowLog,
    /// JSON lines: one flow record object per line.
    JsonLines,
}

/// What a reader saw, returned at the end or carried by the error that
/// stopped it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadSummary {
    /// The detected kind of input; `None` for an empty input.
    pub input: Option<InputKind>,
    /// Records read completely (Azure), or non-blank lines (JSON lines).
    pub records: u64,
    /// Of `records`, VNet flow log records.
    pub vnet_records: u64,
    /// Of `records`, NSG flow log records.
    pub nsg_records: u64,
    /// Of `records`, Azure records with neither `flowRecords` nor
    /// `properties`, which hold no tuples.
    pub other_records: u64,
    /// Tuples handed to the callback as [`TupleEvent::Tuple`].
    pub tuples: u64,
    /// Tuples handed to the callback as [`TupleEvent::Malformed`].
    pub malformed: u64,
}

/// Size of the internal read buffer.
const BUFFER: usize = 1 << 16;
/// How much of the input may be read before its format must be known (only
/// leading whitespace can make the decision take longer than a few bytes).
const SNIFF_LIMIT: usize = 1 << 20;
const BOM: &[u8] = b"\xEF\xBB\xBF";
/// How many bytes of an input that is not JSON are quoted in the error.
const NOT_JSON_QUOTE: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sniff {
    Decided(InputKind),
    Empty,
    NeedMore,
    NotJson,
}

fn skip_ws(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// Decides the format from the start of the input: an object whose first
/// member is `records` is an Azure document, any other object starts JSON
/// lines.
fn sniff(bytes: &[u8], eof: bool) -> Sniff {
    let more = |fallback| if eof { fallback } else { Sniff::NeedMore };
    let Some((&first, rest)) = skip_ws(bytes).split_first() else {
        return more(Sniff::Empty);
    };
    if first != b'{' {
        return Sniff::NotJson;
    }
    let Some((&quote, rest)) = skip_ws(rest).split_first() else {
        return more(Sniff::Decided(InputKind::JsonLines));
    };
    if quote != b'"' {
        return Sniff::Decided(InputKind::JsonLines);
    }
    const KEY: &[u8] = b"records\"";
    let seen = rest.len().min(KEY.len());
    if rest.get(..seen) != KEY.get(..seen) {
        return Sniff::Decided(InputKind::JsonLines);
    }
    if seen < KEY.len() {
        return more(Sniff::Decided(InputKind::JsonLines));
    }
    Sniff::Decided(InputKind::AzureFlowLog)
}

fn not_json(source_name: &str, bytes: &[u8]) -> FlowLogError {
    let start = skip_ws(bytes);
    let shown = start.get(..NOT_JSON_QUOTE).unwrap_or(start);
    let found = format!(
        "expected a JSON object, found {:?}",
        String::from_utf8_lossy(shown)
    );
    FlowLogError::new(
        source_name,
        ErrorLocation::default(),
        ErrorKind::UnknownFormat { found },
        ReadSummary::default(),
    )
}

/// Reads a flow log from `reader`, streaming: each tuple is handed to
/// `on_tuple` as soon as it is parsed and nothing of it is kept.
///
/// The format (Azure VNet/NSG flow log document or JSON lines) is detected
/// from the content. `source_name` names the input in errors. The reader is
/// buffered internally.
///
/// Malformed tuples are handed to `on_tuple` too, and reading goes on. An
/// error that makes the rest of the input unreadable (invalid or truncated
/// JSON, a wrong type where an object or array belongs, an unsupported NSG
/// version, a failed read) stops reading and is returned; the tuples before
/// it were already delivered.
///
/// ```
/// use linkward_flowlog::{read_flow_log, TupleEvent};
///
/// let log = br#"{"records":[{"resourceId":"/nsg","properties":{"Version":1,
///     "flows":[{"rule":"AllowVnet","flows":[{"mac":"000D3A000001",
///     "flowTuples":["1700000000,10.0.0.4,10.0.1.5,50000,443,T,O,A"]}]}]}}]}"#;
/// let mut ports = Vec::new();
/// let summary = read_flow_log(&log[..], "example", |event| {
///     if let TupleEvent::Tuple(tuple) = event {
///         ports.push(tuple.dst_port);
///     }
/// })?;
/// assert_eq!(ports, [443]);
/// assert_eq!(summary.tuples, 1);
/// # Ok::<(), linkward_flowlog::FlowLogError>(())
/// ```
pub fn read_flow_log<R: Read>(
    reader: R,
    source_name: &str,
    mut on_tuple: impl FnMut(TupleEvent),
) -> Result<ReadSummary, FlowLogError> {
    read_buffered(reader, source_name, &mut |event| on_tuple(event.to_event()))
}

/// [`read_flow_log`], lending each event.
fn read_buffered<R: Read>(
    mut reader: R,
    source_name: &str,
    on_tuple: &mut dyn FnMut(TupleEventRef<'_>),
) -> Result<ReadSummary, FlowLogError> {
    let mut prefix = Vec::with_capacity(4096);
    let mut eof = false;
    let kind = loop {
        let start = prefix.strip_prefix(BOM).unwrap_or(&prefix);
        match sniff(start, eof) {
            Sniff::Decided(kind) => break kind,
            Sniff::Empty => return Ok(ReadSummary::default()),
            // Read a little more first, to quote the same bytes as the slice
            // reader does.
            Sniff::NotJson if !eof && skip_ws(start).len() < NOT_JSON_QUOTE => {}
            Sniff::NotJson => return Err(not_json(source_name, start)),
            Sniff::NeedMore if prefix.len() >= SNIFF_LIMIT => {
                return Err(not_json(source_name, start));
            }
            Sniff::NeedMore => {}
        }
        let mut chunk = [0u8; 4096];
        match reader.read(&mut chunk) {
            Ok(0) => eof = true,
            Ok(n) => prefix.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                return Err(FlowLogError::new(
                    source_name,
                    ErrorLocation::default(),
                    ErrorKind::Io(err),
                    ReadSummary::default(),
                ));
            }
        }
    };
    if prefix.starts_with(BOM) {
        prefix.drain(..BOM.len());
    }
    let input = BufReader::with_capacity(BUFFER, Cursor::new(prefix).chain(reader));
    let mut st = State::new(
        on_tuple,
        ReadSummary {
            input: Some(kind),
            ..ReadSummary::default()
        },
    );
    match kind {
        InputKind::AzureFlowLog => read_azure(
            &mut st,
            serde_json::Deserializer::from_reader(input),
            source_name,
        )?,
        InputKind::JsonLines => jsonl::read_buffered(&mut st, input, source_name)?,
    }
    Ok(st.summary)
}

/// Reads a flow log held in memory (or memory-mapped), like
/// [`read_flow_log`] but without copying through a read buffer, which makes
/// it faster for large inputs.
pub fn read_flow_log_slice(
    bytes: &[u8],
    source_name: &str,
    mut on_tuple: impl FnMut(TupleEvent),
) -> Result<ReadSummary, FlowLogError> {
    read_slice(
        bytes,
        source_name,
        &mut |event| on_tuple(event.to_event()),
        None,
    )
}

/// The slice reader, with the walk that releases the pages of a mapped input.
fn read_slice<'f>(
    bytes: &[u8],
    source_name: &str,
    on_tuple: &'f mut dyn FnMut(TupleEventRef<'_>),
    walk: Option<Walk<'f>>,
) -> Result<ReadSummary, FlowLogError> {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let kind = match sniff(bytes, true) {
        Sniff::Decided(kind) => kind,
        Sniff::Empty => return Ok(ReadSummary::default()),
        Sniff::NotJson | Sniff::NeedMore => return Err(not_json(source_name, bytes)),
    };
    let mut st = State::new(
        on_tuple,
        ReadSummary {
            input: Some(kind),
            ..ReadSummary::default()
        },
    )
    .with_walk(walk);
    match kind {
        InputKind::AzureFlowLog => read_azure(
            &mut st,
            serde_json::Deserializer::from_slice(bytes),
            source_name,
        )?,
        InputKind::JsonLines => jsonl::read_slice(&mut st, bytes),
    }
    Ok(st.summary)
}

/// Opens and reads a flow log file; errors name the file by its path.
///
/// A regular file is memory-mapped and parsed in place, as
/// [`read_flow_log_slice`] does, which is several times faster than reading it
/// through a buffer; the pages behind the parser are released every few
/// megabytes, so memory stays flat for a file of any size. Anything else (a
/// pipe, an empty file, a file that cannot be mapped) is read with
/// [`read_flow_log`]. The results are the same either way.
///
/// A mapped file must not be truncated while it is read: the process would
/// get `SIGBUS`. Read a file another process may still be writing with
/// [`read_flow_log`] and a [`File`].
pub fn read_flow_log_file(
    path: impl AsRef<Path>,
    mut on_tuple: impl FnMut(TupleEvent),
) -> Result<ReadSummary, FlowLogError> {
    read_flow_log_file_lent(path, |event| on_tuple(event.to_event()))
}

/// [`read_flow_log_file`], lending each tuple to `on_tuple` instead of handing it
/// over: the reader rewrites one tuple in place, so the strings the tuples of a group
/// share are not reference-counted again for each of them. For callers that only look
/// at each tuple, as [`FlowAggregator::push`](crate::FlowAggregator::push) does.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("PT1H.json");
/// # std::fs::write(&path, br#"{"records":[{"flowLogVersion":4,"macAddress":"M",
/// #   "targetResourceID":"/vnet","flowRecords":{"flows":[{"aclID":"a","flowGroups":[
/// #   {"rule":"r","flowTuples":["1663146003599,10.0.0.6,52.239.184.180,23956,443,6,O,B,NX,0,0,0,0"]}]}]}}]}"#)?;
/// use linkward_flowlog::{read_flow_log_file_lent, FlowAggregator, TupleEventRef};
///
/// let mut aggregator = FlowAggregator::new(1 << 16);
/// let mut opened = 0;
/// read_flow_log_file_lent(&path, |event| {
///     if let TupleEventRef::Tuple(tuple) = event {
///         aggregator.push(tuple, |_| opened += 1);
///     }
/// })?;
/// assert_eq!(opened, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_flow_log_file_lent(
    path: impl AsRef<Path>,
    mut on_tuple: impl FnMut(TupleEventRef<'_>),
) -> Result<ReadSummary, FlowLogError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let file = File::open(path).map_err(|err| {
        FlowLogError::new(
            &name,
            ErrorLocation::default(),
            ErrorKind::Io(err),
            ReadSummary::default(),
        )
    })?;
    let Some(mapped) = map::map_file(&file) else {
        return read_buffered(file, &name, &mut on_tuple);
    };
    let mut released = 0;
    let mut release = |offset: usize| released = map::release(&mapped, released, offset);
    let walk = Walk {
        base: mapped.as_ptr() as usize,
        len: mapped.len(),
        next: map::RELEASE_STEP,
        release: &mut release,
    };
    let result = read_slice(&mapped, &name, &mut on_tuple, Some(walk));
    let Err(err) = result else {
        return result;
    };
    // The slice parser found the line and column of the error by counting lines from
    // the start of the file, which brought its pages back in; let them go again.
    map::release(&mapped, 0, mapped.len());
    drop(mapped);
    Err(relocate(err, file, &name))
}

/// Gives an error found in a mapped file the line and column the buffered reader
/// reports for it.
///
/// The two parsers agree on every tuple, on the kind of error and on the indexes of
/// where it happened, but not always on the column: after a value that needed a
/// look-ahead (a number, say) the buffered parser has counted the byte it looked at
/// and the slice parser has not. So that a file reports the same place however it
/// was read, the file is read again through the buffered reader up to the error,
/// delivering nothing, and its line and column are kept when it stops with the same
/// error. That costs a second pass over the part before the error, only when there
/// is one.
fn relocate(mut err: FlowLogError, mut file: File, name: &str) -> FlowLogError {
    if err.location().line.is_none() || file.seek(SeekFrom::Start(0)).is_err() {
        return err;
    }
    if let Err(again) = read_flow_log(file, name, |_| {})
        && again.summary() == err.summary()
        && again.kind().to_string() == err.kind().to_string()
    {
        err.set_line_column(again.location().line, again.location().column);
    }
    err
}

/// Reads one or more concatenated Azure documents.
fn read_azure<'de, R: serde_json::de::Read<'de>>(
    st: &mut State<'_>,
    mut de: serde_json::Deserializer<R>,
    source_name: &str,
) -> Result<(), FlowLogError> {
    loop {
        DocumentSeed { st: &mut *st }
            .deserialize(&mut de)
            .map_err(|err| st.fail(source_name, err))?;
        match de.end() {
            Ok(()) => return Ok(()),
            Err(err) if err.classify() == serde_json::error::Category::Io => {
                return Err(st.fail(source_name, err));
            }
            // Something other than whitespace follows: another document.
            Err(_) => {}
        }
    }
}
