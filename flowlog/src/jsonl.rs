//! The JSON-lines flow record form: one JSON object per line (see
//! `FORMAT.md`).
//!
//! Every line stands alone, so a line that is not valid JSON is one malformed
//! tuple, not the end of the input.

use std::borrow::Cow;
use std::fmt;
use std::io::{BufRead, Read as _};
use std::net::IpAddr;
use std::sync::Arc;

use serde::de::{self, Deserialize, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::azure::{Key, State};
use crate::error::{ErrorKind, ErrorLocation, FlowLogError};
use crate::fields::{MILLIS_THRESHOLD, epoch_to_ns, invalid, parse_rfc3339, protocol_by_name};
use crate::tuple::{
    Decision, Direction, FlowTuple, MalformedTuple, Position, SourceFormat, TupleEvent,
    TupleProblem, clip,
};

/// Longest line accepted, in bytes. A longer line is reported as malformed
/// and skipped without being held in memory.
pub const MAX_LINE: usize = 1 << 20;

const KEYS: &[&str] = &[
    "src",
    "dst",
    "src_port",
    "dst_port",
    "protocol",
    "start",
    "end",
    "packets",
    "bytes",
    "packets_received",
    "bytes_received",
    "name",
    "sni",
    "http_host",
    "denied",
    "direction",
    "rule",
    "resource_id",
];

const SRC: usize = 0;
const DST: usize = 1;
const SRC_PORT: usize = 2;
const DST_PORT: usize = 3;
const PROTOCOL: usize = 4;
const START: usize = 5;
const END: usize = 6;
const PACKETS: usize = 7;
const BYTES: usize = 8;
const PACKETS_RECEIVED: usize = 9;
const BYTES_RECEIVED: usize = 10;
const NAME: usize = 11;
const SNI: usize = 12;
const HTTP_HOST: usize = 13;
const DENIED: usize = 14;
const DIRECTION: usize = 15;
const RULE: usize = 16;
const RESOURCE_ID: usize = 17;

/// Any JSON value of a record member, kept as found so that conversion can
/// say exactly which member was wrong and why.
#[derive(Debug)]
enum Scalar<'a> {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Bool(bool),
    Composite(&'static str),
}

impl Scalar<'_> {
    fn text(&self) -> String {
        match self {
            Scalar::Unsigned(v) => v.to_string(),
            Scalar::Signed(v) => v.to_string(),
            Scalar::Float(v) => v.to_string(),
            Scalar::Str(v) => v.to_string(),
            Scalar::Bool(v) => v.to_string(),
            Scalar::Composite(kind) => (*kind).to_owned(),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Signed(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Unsigned(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(v))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Composite("array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Composite("object"))
    }
}

/// The members of one line; `null` members count as absent.
struct LineRecord<'a> {
    members: [Option<Scalar<'a>>; KEYS.len()],
}

impl<'de> Deserialize<'de> for LineRecord<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(LineVisitor)
    }
}

struct LineVisitor;

impl<'de> Visitor<'de> for LineVisitor {
    type Value = LineRecord<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON flow record object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members: [Option<Scalar<'de>>; KEYS.len()] = Default::default();
        while let Some(key) = map.next_key_seed(Key(KEYS))? {
            let Some(index) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let value: Option<Scalar<'de>> = map.next_value()?;
            let Some(slot) = members.get_mut(index) else {
                continue;
            };
            if slot.is_some() {
                return Err(de::Error::duplicate_field(
                    KEYS.get(index).copied().unwrap_or("?"),
                ));
            }
            *slot = value;
        }
        Ok(LineRecord { members })
    }
}

impl<'a> LineRecord<'a> {
    fn take(&mut self, index: usize) -> Option<Scalar<'a>> {
        self.members.get_mut(index).and_then(Option::take)
    }

    fn field(index: usize) -> &'static str {
        KEYS.get(index).copied().unwrap_or("?")
    }

    fn ip(&mut self, index: usize) -> Result<IpAddr, TupleProblem> {
        let field = Self::field(index);
        match self.take(index) {
            None => Err(TupleProblem::Missing { field }),
            Some(Scalar::Str(text)) => text
                .parse()
                .map_err(|_| invalid(field, &text, "an IPv4 or IPv6 address")),
            Some(other) => Err(invalid(field, &other.text(), "an IP address string")),
        }
    }

    fn port(&mut self, index: usize, required: bool) -> Result<u16, TupleProblem> {
        let field = Self::field(index);
        match self.take(index) {
            None if required => Err(TupleProblem::Missing { field }),
            None => Ok(0),
            Some(Scalar::Unsigned(v)) => u16::try_from(v)
                .map_err(|_| invalid(field, &v.to_string(), "a port number from 0 to 65535")),
            Some(other) => Err(invalid(
                field,
                &other.text(),
                "a port number from 0 to 65535",
            )),
        }
    }

    fn protocol(&mut self) -> Result<u8, TupleProblem> {
        let field = Self::field(PROTOCOL);
        const WHY: &str = "a protocol name (tcp, udp, icmp, ...) or number from 0 to 255";
        match self.take(PROTOCOL) {
            None => Err(TupleProblem::Missing { field }),
            Some(Scalar::Unsigned(v)) => {
                u8::try_from(v).map_err(|_| invalid(field, &v.to_string(), WHY))
            }
            Some(Scalar::Str(name)) => protocol_by_name(&name)
                .or_else(|| name.parse().ok())
                .ok_or_else(|| invalid(field, &name, WHY)),
            Some(other) => Err(invalid(field, &other.text(), WHY)),
        }
    }

    fn time(&mut self, index: usize) -> Result<Option<u64>, TupleProblem> {
        let field = Self::field(index);
        const WHY: &str = "epoch seconds or milliseconds, or an RFC 3339 time after 1970";
        match self.take(index) {
            None => Ok(None),
            Some(Scalar::Unsigned(v)) => epoch_to_ns(v)
                .map(Some)
                .ok_or_else(|| invalid(field, &v.to_string(), WHY)),
            Some(Scalar::Float(v)) => float_epoch_to_ns(v)
                .map(Some)
                .ok_or_else(|| invalid(field, &v.to_string(), WHY)),
            Some(Scalar::Str(text)) => parse_rfc3339(&text)
                .map(Some)
                .ok_or_else(|| invalid(field, &text, WHY)),
            Some(other) => Err(invalid(field, &other.text(), WHY)),
        }
    }

    fn counter(&mut self, index: usize) -> Result<Option<u64>, TupleProblem> {
        match self.take(index) {
            None => Ok(None),
            Some(Scalar::Unsigned(v)) => Ok(Some(v)),
            Some(other) => Err(invalid(
                Self::field(index),
                &other.text(),
                "a non-negative integer",
            )),
        }
    }

    fn text(&mut self, index: usize) -> Result<Option<Arc<str>>, TupleProblem> {
        match self.take(index) {
            None => Ok(None),
            Some(Scalar::Str(text)) if text.is_empty() => Ok(None),
            Some(Scalar::Str(text)) => Ok(Some(Arc::from(text.as_ref()))),
            Some(other) => Err(invalid(Self::field(index), &other.text(), "a string")),
        }
    }

    fn denied(&mut self) -> Result<bool, TupleProblem> {
        match self.take(DENIED) {
            None => Ok(false),
            Some(Scalar::Bool(v)) => Ok(v),
            Some(other) => Err(invalid(Self::field(DENIED), &other.text(), "true or false")),
        }
    }

    fn direction(&mut self) -> Result<Direction, TupleProblem> {
        const WHY: &str = "\"inbound\" or \"outbound\" (or I, O)";
        match self.take(DIRECTION) {
            None => Ok(Direction::Outbound),
            Some(Scalar::Str(text)) => {
                if text.eq_ignore_ascii_case("inbound") || text.eq_ignore_ascii_case("i") {
                    Ok(Direction::Inbound)
                } else if text.eq_ignore_ascii_case("outbound") || text.eq_ignore_ascii_case("o") {
                    Ok(Direction::Outbound)
                } else {
                    Err(invalid(Self::field(DIRECTION), &text, WHY))
                }
            }
            Some(other) => Err(invalid(Self::field(DIRECTION), &other.text(), WHY)),
        }
    }

    fn into_tuple(mut self, position: Position) -> Result<FlowTuple, TupleProblem> {
        let src = self.ip(SRC)?;
        let dst = self.ip(DST)?;
        let protocol = self.protocol()?;
        // Ports are meaningful, and so required, only for port-based protocols.
        let ported = matches!(protocol, 6 | 17 | 132);
        let src_port = self.port(SRC_PORT, ported)?;
        let dst_port = self.port(DST_PORT, ported)?;
        let time_ns = self.time(START)?.ok_or(TupleProblem::Missing {
            field: Self::field(START),
        })?;
        let end_time_ns = self.time(END)?;
        let decision = if self.denied()? {
            Decision::Denied
        } else {
            Decision::Allowed
        };
        Ok(FlowTuple {
            source: SourceFormat::JsonLines,
            flow_log_version: None,
            time_ns,
            end_time_ns,
            src,
            dst,
            src_port,
            dst_port,
            protocol,
            direction: self.direction()?,
            state: None,
            decision,
            encryption: None,
            packets_sent: self.counter(PACKETS)?,
            bytes_sent: self.counter(BYTES)?,
            packets_received: self.counter(PACKETS_RECEIVED)?,
            bytes_received: self.counter(BYTES_RECEIVED)?,
            rule: self.text(RULE)?,
            acl_id: None,
            mac: None,
            resource_id: self.text(RESOURCE_ID)?,
            name: self.text(NAME)?,
            sni: self.text(SNI)?,
            http_host: self.text(HTTP_HOST)?,
            position,
        })
    }
}

/// A fractional epoch time, seconds or milliseconds by magnitude.
fn float_epoch_to_ns(value: f64) -> Option<u64> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    // The threshold is far below 2^53, so the conversion is exact.
    let threshold = MILLIS_THRESHOLD as f64;
    let ns = if value >= threshold {
        value * 1e6
    } else {
        value * 1e9
    };
    // `u64::MAX as f64` rounds up to 2^64, so `<` keeps the cast in range.
    if ns < u64::MAX as f64 {
        Some(ns as u64)
    } else {
        None
    }
}

/// Handles one line (without its line end); blank lines are skipped.
fn line(st: &mut State<'_>, index: usize, raw: &[u8]) {
    let trimmed = raw.trim_ascii();
    if trimmed.is_empty() {
        return;
    }
    st.summary.records += 1;
    let position = Position {
        record: index,
        ..Position::default()
    };
    let event = if trimmed.len() > MAX_LINE {
        malformed(
            position,
            TupleProblem::LineTooLong { limit: MAX_LINE },
            trimmed,
        )
    } else {
        match serde_json::from_slice::<LineRecord<'_>>(trimmed) {
            Ok(record) => match record.into_tuple(position) {
                Ok(tuple) => TupleEvent::Tuple(tuple),
                Err(problem) => malformed(position, problem, trimmed),
            },
            Err(err) => {
                let message = match crate::azure::kind_of(err) {
                    ErrorKind::Truncated { message }
                    | ErrorKind::Syntax { message }
                    | ErrorKind::Structure { message } => message,
                    other => other.to_string(),
                };
                malformed(position, TupleProblem::Json { message }, trimmed)
            }
        }
    };
    st.deliver(event.as_lent());
}

fn malformed(position: Position, problem: TupleProblem, raw: &[u8]) -> TupleEvent {
    let cut = raw.get(..MalformedTuple::MAX_TEXT).unwrap_or(raw);
    TupleEvent::Malformed(MalformedTuple {
        source: SourceFormat::JsonLines,
        position,
        problem,
        text: clip(&String::from_utf8_lossy(cut), MalformedTuple::MAX_TEXT),
    })
}

/// Reads JSON lines from an in-memory input.
pub(crate) fn read_slice(st: &mut State<'_>, bytes: &[u8]) {
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        st.reached(raw.as_ptr() as usize);
        line(st, index, raw);
    }
}

/// Reads JSON lines from a buffered reader, holding at most one line (up to
/// [`MAX_LINE`] bytes) at a time.
pub(crate) fn read_buffered<R: BufRead>(
    st: &mut State<'_>,
    mut reader: R,
    source_name: &str,
) -> Result<(), FlowLogError> {
    let mut buf = Vec::with_capacity(4096);
    let mut index = 0;
    loop {
        buf.clear();
        let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 1;
        let read = (&mut reader)
            .take(limit)
            .read_until(b'\n', &mut buf)
            .map_err(|err| io_failure(st, source_name, index, err))?;
        if read == 0 {
            return Ok(());
        }
        if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
            skip_rest_of_line(&mut reader)
                .map_err(|err| io_failure(st, source_name, index, err))?;
        }
        let content = buf.strip_suffix(b"\n").unwrap_or(&buf);
        line(st, index, content);
        index += 1;
    }
}

fn skip_rest_of_line<R: BufRead>(reader: &mut R) -> std::io::Result<()> {
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(());
        }
        match available.iter().position(|&b| b == b'\n') {
            Some(end) => {
                reader.consume(end + 1);
                return Ok(());
            }
            None => {
                let len = available.len();
                reader.consume(len);
            }
        }
    }
}

fn io_failure(
    st: &State<'_>,
    source_name: &str,
    index: usize,
    err: std::io::Error,
) -> FlowLogError {
    let location = ErrorLocation {
        record: Some(index),
        line: Some(index + 1),
        ..ErrorLocation::default()
    };
    FlowLogError::new(
        source_name,
        location,
        ErrorKind::Io(err),
        st.summary.clone(),
    )
}
