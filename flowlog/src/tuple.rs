//! The flow tuple every input format is turned into, and the events a reader
//! hands to its caller.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// Which kind of input a tuple came from.
///
/// The host reports findings differently depending on how much the source
/// could see (an NSG version 1 log has no counters, a JSON-lines record may
/// carry names), so the origin travels with every tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    /// An Azure virtual network flow log (`flowRecords.flows[].flowGroups[]`).
    VnetFlowLog,
    /// An Azure network security group flow log, version 1 or 2.
    NsgFlowLog,
    /// The plain JSON-lines flow record form described in `FORMAT.md`.
    JsonLines,
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceFormat::VnetFlowLog => "VNet flow log",
            SourceFormat::NsgFlowLog => "NSG flow log",
            SourceFormat::JsonLines => "JSON-lines flow records",
        })
    }
}

/// The direction of a flow as seen by the interface that logged it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// `I`: the flow entered the interface (the source is remote).
    Inbound,
    /// `O`: the flow left the interface (the source is local).
    Outbound,
}

/// Where in its life a flow was when the tuple was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowState {
    /// `B`: the flow was created. Counters are zero or empty.
    Begin,
    /// `C`: the flow is ongoing; counters cover the interval since the last
    /// tuple of the flow.
    Continuing,
    /// `E`: the flow ended; counters cover the last interval.
    End,
    /// `D` (VNet flow logs only): the flow was denied.
    Denied,
}

/// Whether the traffic was let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Allowed by the rule named in the tuple.
    Allowed,
    /// Denied by the rule named in the tuple.
    Denied,
}

/// Virtual network encryption status of a VNet flow log tuple.
///
/// Values Azure may add later are kept as [`Encryption::Other`] rather than
/// rejecting the tuple: the encryption field does not change what the flow
/// is, only how it travelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encryption {
    /// `X`: encrypted.
    Encrypted,
    /// `NX`: not encrypted.
    NotEncrypted,
    /// `NX_HW_NOT_SUPPORTED`: the hardware does not support encryption.
    HardwareNotSupported,
    /// `NX_SW_NOT_READY`: the software is not ready.
    SoftwareNotReady,
    /// `NX_NOT_ACCEPTED`: dropped because it could not be encrypted.
    NotAccepted,
    /// `NX_NOT_SUPPORTED`: discovery is not supported.
    NotSupported,
    /// `NX_LOCAL_DST`: the destination is on the same host.
    LocalDestination,
    /// `NX_FALLBACK`: fell back to no encryption.
    Fallback,
    /// Any other value.
    Other,
}

impl Encryption {
    /// Maps the text of the encryption field. Never fails: unknown values are
    /// [`Encryption::Other`].
    pub fn from_field(text: &str) -> Encryption {
        match text {
            "X" => Encryption::Encrypted,
            "NX" => Encryption::NotEncrypted,
            "NX_HW_NOT_SUPPORTED" => Encryption::HardwareNotSupported,
            "NX_SW_NOT_READY" => Encryption::SoftwareNotReady,
            "NX_NOT_ACCEPTED" => Encryption::NotAccepted,
            "NX_NOT_SUPPORTED" => Encryption::NotSupported,
            "NX_LOCAL_DST" => Encryption::LocalDestination,
            "NX_FALLBACK" => Encryption::Fallback,
            _ => Encryption::Other,
        }
    }
}

/// Where a tuple sits in its input, so a finding can be traced back to the
/// exact line of a log.
///
/// All indexes count from zero.
///
/// * VNet flow log: `record` indexes `records[]`, `flow` indexes
///   `flowRecords.flows[]` (one entry per ACL), `group` indexes
///   `flowGroups[]` (one per rule) and `tuple` indexes `flowTuples[]`.
/// * NSG flow log: `record` indexes `records[]`, `flow` indexes
///   `properties.flows[]` (one per rule), `group` indexes the inner
///   `flows[]` (one per MAC address) and `tuple` indexes `flowTuples[]`.
/// * JSON lines: `record` is the line number minus one; the other indexes
///   are zero.
///
/// When several documents are concatenated in one input, `record` keeps
/// counting across them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Position {
    /// Index of the record (or line).
    pub record: usize,
    /// Index of the flow entry within the record.
    pub flow: usize,
    /// Index of the group within the flow entry.
    pub group: usize,
    /// Index of the tuple within the group.
    pub tuple: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record {}, flow {}, group {}, tuple {}",
            self.record, self.flow, self.group, self.tuple
        )
    }
}

/// One flow observation, whatever format it was read from.
///
/// Values shared by many tuples (rule name, resource id, MAC address, ACL id)
/// are reference counted: they are allocated once per group or record while
/// reading, and each tuple only bumps a counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowTuple {
    /// The format the tuple was read from.
    pub source: SourceFormat,
    /// `flowLogVersion` of a VNet record, `Version` of an NSG record; `None`
    /// for JSON lines.
    pub flow_log_version: Option<u32>,
    /// When the tuple was written (JSON lines: when the flow started), in
    /// nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// When the flow ended (JSON lines `end`); `None` for the Azure formats,
    /// whose end is a separate `E` tuple.
    pub end_time_ns: Option<u64>,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (0 for protocols without ports).
    pub src_port: u16,
    /// Destination port (0 for protocols without ports).
    pub dst_port: u16,
    /// IANA protocol number (6 TCP, 17 UDP, ...).
    pub protocol: u8,
    /// Direction relative to the logging interface.
    pub direction: Direction,
    /// Flow state; `None` for NSG version 1 and JSON lines.
    pub state: Option<FlowState>,
    /// Whether the traffic was allowed.
    pub decision: Decision,
    /// VNet encryption status; `None` for the other formats.
    pub encryption: Option<Encryption>,
    /// Packets from source to destination.
    pub packets_sent: Option<u64>,
    /// Bytes from source to destination.
    pub bytes_sent: Option<u64>,
    /// Packets from destination to source.
    pub packets_received: Option<u64>,
    /// Bytes from destination to source.
    pub bytes_received: Option<u64>,
    /// Name of the rule that allowed or denied the flow.
    pub rule: Option<Arc<str>>,
    /// `aclID` of the VNet flow entry.
    pub acl_id: Option<Arc<str>>,
    /// MAC address of the interface (NSG `mac`, VNet record `macAddress`),
    /// as written in the log.
    pub mac: Option<Arc<str>>,
    /// The logged resource: VNet `targetResourceID`, NSG `resourceId`,
    /// JSON-lines `resource_id`.
    pub resource_id: Option<Arc<str>>,
    /// JSON lines: the service name the client asked for (from DNS).
    pub name: Option<Arc<str>>,
    /// JSON lines: the TLS server name indication.
    pub sni: Option<Arc<str>>,
    /// JSON lines: the HTTP `Host` header.
    pub http_host: Option<Arc<str>>,
    /// Where the tuple was found.
    pub position: Position,
}

/// What was wrong with a tuple that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TupleProblem {
    /// The tuple string had the wrong number of comma-separated fields.
    #[error("expected {expected} comma-separated fields, found {found}")]
    FieldCount {
        /// How many fields the format has.
        expected: usize,
        /// How many the tuple had.
        found: usize,
    },
    /// A required field was absent or empty.
    #[error("field `{field}` is missing")]
    Missing {
        /// The field's name.
        field: &'static str,
    },
    /// A field held a value that is not valid for it.
    #[error("field `{field}` has invalid value {value:?}: {why}")]
    Invalid {
        /// The field's name.
        field: &'static str,
        /// The offending text (cut to a few dozen characters).
        value: String,
        /// What was expected.
        why: &'static str,
    },
    /// A `flowTuples[]` element was not a string.
    #[error("flow tuple is a JSON {found}, not a string")]
    NotAString {
        /// The JSON type found instead.
        found: &'static str,
    },
    /// A JSON-lines line was not a valid JSON object.
    #[error("not a JSON flow record: {message}")]
    Json {
        /// What the JSON parser said.
        message: String,
    },
    /// A JSON-lines line was longer than the reader accepts.
    #[error("line longer than {limit} bytes")]
    LineTooLong {
        /// The limit in bytes.
        limit: usize,
    },
}

/// A tuple that was skipped because it could not be read.
///
/// Reading continues after a malformed tuple: one bad line in a log of
/// millions should be reported, not hide the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedTuple {
    /// The format being read.
    pub source: SourceFormat,
    /// Where the tuple was found.
    pub position: Position,
    /// What was wrong.
    pub problem: TupleProblem,
    /// The tuple text (for JSON lines, the line), cut to at most
    /// [`MalformedTuple::MAX_TEXT`] bytes.
    pub text: String,
}

impl MalformedTuple {
    /// Longest tuple text kept in a report, in bytes.
    pub const MAX_TEXT: usize = 256;
}

impl fmt::Display for MalformedTuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source {
            SourceFormat::JsonLines => write!(f, "line {}", self.position.record + 1)?,
            _ => write!(f, "{}", self.position)?,
        }
        write!(f, ": {}", self.problem)
    }
}

/// What a reader hands its callback for each tuple.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TupleEvent {
    /// A tuple that was read.
    Tuple(FlowTuple),
    /// A tuple that was skipped, with the reason.
    Malformed(MalformedTuple),
}

impl TupleEvent {
    /// The event as [`read_flow_log_file_lent`](crate::read_flow_log_file_lent) hands
    /// it over.
    pub fn as_lent(&self) -> TupleEventRef<'_> {
        match self {
            TupleEvent::Tuple(tuple) => TupleEventRef::Tuple(tuple),
            TupleEvent::Malformed(bad) => TupleEventRef::Malformed(bad),
        }
    }
}

/// A [`TupleEvent`] lent to the callback instead of handed over.
///
/// The reader keeps one tuple and rewrites it in place for the next tuple of the same
/// group, so its shared strings (rule, resource id, MAC address, ACL id) are not
/// reference-counted again for every tuple. A caller that only looks at each tuple,
/// as flow aggregation does, saves that cost; [`TupleEventRef::to_event`] makes an
/// owned copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TupleEventRef<'a> {
    /// A tuple that was read.
    Tuple(&'a FlowTuple),
    /// A tuple that was skipped, with the reason.
    Malformed(&'a MalformedTuple),
}

impl TupleEventRef<'_> {
    /// An owned copy of the event.
    pub fn to_event(self) -> TupleEvent {
        match self {
            TupleEventRef::Tuple(tuple) => TupleEvent::Tuple(tuple.clone()),
            TupleEventRef::Malformed(bad) => TupleEvent::Malformed(bad.clone()),
        }
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default().to_owned()
}
