/*!
Streaming readers for the flow logs Azure writes to storage, and for a plain
JSON-lines flow record form, turning each into a stream of [`FlowTuple`]s.

Many operators of Azure Health Data Services workspaces have no packet
capture, only flow logs. This crate reads those logs so that linkward can
check the flows in them against a policy just as it checks captured packets.

# Example

```
use linkward_flowlog::{read_flow_log, TupleEvent};

let log = br#"{"records":[{"time":"2022-09-14T09:00:52Z","flowLogVersion":4,
  "macAddress":"00224871C205","targetResourceID":"/subscriptions/s/virtualNetworks/v",
  "flowRecords":{"flows":[{"aclID":"00000000-1234-abcd-ef00-c1c2c3c4c5c6",
  "flowGroups":[{"rule":"DefaultRule_AllowInternetOutBound","flowTuples":[
    "1663146003599,10.0.0.6,52.239.184.180,23956,443,6,O,B,NX,0,0,0,0",
    "1663146003606,10.0.0.6,52.239.184.180,23956,443,6,O,E,NX,3,767,2,1580",
    "not a tuple"]}]}]}}]}"#;

let mut bytes = 0;
let mut bad = Vec::new();
let summary = read_flow_log(&log[..], "PT1H.json", |event| match event {
    TupleEvent::Tuple(tuple) => bytes += tuple.bytes_sent.unwrap_or(0),
    TupleEvent::Malformed(problem) => bad.push(problem.to_string()),
})?;
assert_eq!(bytes, 767);
assert_eq!(bad, ["record 0, flow 0, group 0, tuple 2: expected 13 comma-separated fields, found 1"]);
assert_eq!((summary.tuples, summary.malformed), (2, 1));
# Ok::<(), linkward_flowlog::FlowLogError>(())
```

# Formats

The format is detected from the content, never from the file name: an input
whose first JSON member is `"records"` is an Azure flow log document, an input
starting with any other JSON object is JSON lines. A UTF-8 byte order mark
and leading whitespace are skipped. Anything else is an
[`ErrorKind::UnknownFormat`] error; an empty input is zero tuples.

## VNet flow logs

A document `{"records": [...]}` whose records hold
`flowRecords.flows[].flowGroups[].flowTuples[]`. Each `flows[]` entry has an
`aclID`, each flow group a `rule`; the record has `flowLogVersion`,
`macAddress` and `targetResourceID`. A tuple is a string of 13 fields:

```text
time,src,dst,sport,dport,protocol,direction,state,encryption,ps,bs,pr,br
1663146003606,10.0.0.6,52.239.184.180,23956,443,6,O,E,NX,3,767,2,1580
```

| field | meaning |
|---|---|
| `time` | epoch seconds or milliseconds: values from 10^11 up are milliseconds |
| `protocol` | IANA protocol number (6 TCP, 17 UDP) |
| `direction` | `I` inbound, `O` outbound |
| `state` | `B` begin, `C` continuing, `E` end, `D` denied |
| `encryption` | `X`, `NX`, `NX_HW_NOT_SUPPORTED`, ... (see [`Encryption`]) |
| `ps,bs,pr,br` | packets and bytes source→destination, then destination→source, since the previous tuple of the flow |

A `D` tuple has [`Decision::Denied`]; every other tuple is allowed. The
tuple carries the group's rule, the entry's ACL id, the record's MAC address,
`targetResourceID` (as [`FlowTuple::resource_id`]) and `flowLogVersion`.

## NSG flow logs, versions 1 and 2

A document whose records hold `properties.Version` and
`properties.flows[].flows[].flowTuples[]`; each outer `flows[]` entry has the
NSG `rule`, each inner one the interface's `mac`. Version 1 tuples have 8
fields, version 2 tuples 13:

```text
time,src,dst,sport,dport,protocol,direction,decision[,state,ps,bs,pr,br]
1542110379,10.5.16.4,203.0.113.117,59932,443,T,O,A,E,1,66,1,66
```

`protocol` is `T` (TCP) or `U` (UDP), `decision` `A` or `D`, the version 2
`state` `B`, `C` or `E`, and the counters are empty in `B` tuples. The tuple
carries the rule, the MAC address, the record's `resourceId` and the version.
Any `Version` other than 1 or 2 stops reading with
[`ErrorKind::UnsupportedVersion`]: the tuple layout would be guessed.

## JSON lines

One JSON object per line, for sources other than Azure: see `FORMAT.md` in
this crate for the full description.

```text
{"src":"10.1.0.4","dst":"20.37.1.10","src_port":50000,"dst_port":443,"protocol":"tcp","start":"2024-05-01T10:00:00Z","bytes":5120,"sni":"ws-fhir1.fhir.azurehealthcareapis.com"}
```

Required: `src`, `dst`, `protocol` (name or number), `start` (epoch seconds
or milliseconds, or RFC 3339), and `src_port`/`dst_port` for TCP, UDP and
SCTP. Optional: `end`, `packets`, `bytes`, `packets_received`,
`bytes_received`, `name`, `sni`, `http_host`, `denied` (default `false`),
`direction` (`"inbound"`/`"outbound"`, default outbound), `rule`,
`resource_id`. Unknown members are ignored; `null` counts as absent; a member
given twice makes the line malformed.

# Streaming and memory

Azure writes a blob per hour that can be hundreds of megabytes in a single
JSON document. [`read_flow_log`] never builds the document: the JSON parser
drives a visitor per level of the tree, and every tuple string is parsed
where it lies in the parser's buffer and handed to the callback at once.
Memory does not grow with the number of tuples. Values shared by many tuples
(rule, resource id, MAC address, ACL id) are allocated once per group and
shared through [`Arc`](std::sync::Arc), so a tuple costs no allocation.
[`read_flow_log_slice`] does the same over a byte slice and is several times
faster: the JSON parser's reader interface costs a call per byte, a slice
costs nothing and lends tuple strings where they lie. [`read_flow_log_file`]
therefore memory-maps a regular file and reads it as a slice, releasing the
pages behind the parser every 16 MiB so that the resident set stays flat;
pipes and other inputs that cannot be mapped go through the read buffer.
[`read_flow_log_file_lent`] lends each tuple to the callback instead of
handing it over, which also saves counting the shared values' references for
every tuple: that is the reader for callers that only look at each tuple.

Azure writes the members a record's tuples depend on (version, resource id,
rule, MAC address) before the tuples. When a tool has reordered them (sorting
keys, say), the tuples member is kept as raw JSON text until the end of its
object and read then; that costs memory for one record, never more.

# Errors

Two kinds of trouble are kept apart:

* A **malformed tuple** (missing field, port that is not a number, bad
  address, unknown protocol letter, a tuple that is not a string, a JSON line
  that does not parse) is handed to the callback as
  [`TupleEvent::Malformed`], with its [`Position`] and a [`TupleProblem`],
  counted in [`ReadSummary::malformed`], and reading goes on.
* A **structural error** (truncated or invalid JSON, a wrong type where an
  object or array must be, an unsupported NSG version, a failed read) leaves
  the rest of the input unreadable. It is returned as a [`FlowLogError`]
  naming the input, the record, flow, group and tuple indexes reached, the
  member being read, the line and column, and what was wrong. Everything
  read before it was already delivered, and [`FlowLogError::summary`] counts
  it.

Nothing in any input makes the reader panic.

# Flows instead of tuples

A long flow appears in a log as a `B` tuple, `C` tuples every interval and an
`E` tuple. [`FlowAggregator`] turns those into one [`FlowEvent::Opened`] when
the flow is first seen (so a policy evaluates it once) and one
[`FlowEvent::Closed`] with summed counters when it ends, in bounded memory.

# Blob directories

Azure stores flow logs as
`resourceId=/.../y=YYYY/m=MM/d=DD/h=HH/m=00/macAddress=.../PT1H.json`.
[`walk_blob_dir`] lists the `*.json` files under a downloaded tree in time
order, so that flows spanning an hour boundary are read in order.

# When not to use this crate

It reads flow records; it does not fetch blobs from Azure Storage, and it
does not read Traffic Analytics output or the IPFIX/NetFlow protocols.
*/

// The file mapping's `unsafe` lives in `linkward-mapfile`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod aggregate;
mod azure;
mod error;
mod fields;
mod jsonl;
mod map;
mod read;
mod tuple;
mod walk;

pub use aggregate::{
    AggregatedFlow, AggregatorStats, CloseReason, FlowAggregator, FlowChange, FlowEvent, FlowKey,
};
pub use error::{ErrorKind, ErrorLocation, FlowLogError, WalkError};
pub use jsonl::MAX_LINE;
pub use read::{
    InputKind, ReadSummary, read_flow_log, read_flow_log_file, read_flow_log_file_lent,
    read_flow_log_slice,
};
pub use tuple::{
    Decision, Direction, Encryption, FlowState, FlowTuple, MalformedTuple, Position, SourceFormat,
    TupleEvent, TupleEventRef, TupleProblem,
};
pub use walk::walk_blob_dir;
