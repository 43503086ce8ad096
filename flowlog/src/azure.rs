//! Streaming reader for Azure flow log documents (`{"records": [...]}`),
//! VNet and NSG alike.
//!
//! The document is never materialized. Each level of the JSON tree has a
//! `DeserializeSeed` that carries the values shared by the tuples below it
//! (resource id, version, rule, ACL id, MAC address) and the reader state; the
//! tuple strings themselves are parsed straight from the JSON parser's buffer
//! and handed to the callback one by one. Memory use is that of one record's
//! metadata plus the parser's buffer, whatever the number of tuples.
//!
//! A member that depends on a sibling written after it (Azure writes the
//! version and names first, but a tool that sorts keys does not) is kept as
//! raw JSON text until the end of its object and then read. That buffer holds
//! at most one record.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::{ErrorKind, ErrorLocation, FlowLogError};
use crate::fields::{GroupContext, parse_nsg_tuple, parse_vnet_values};
use crate::map::RELEASE_STEP;
use crate::read::ReadSummary;
use crate::tuple::{
    FlowTuple, MalformedTuple, Position, SourceFormat, TupleEventRef, TupleProblem, clip,
};

/// How deep in the tree the reader is; indexes of deeper levels are cleared
/// when a shallower one moves on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Flow,
    Group,
    Tuple,
}

/// Where the reader is, kept up to date while parsing so that an error
/// raised anywhere below can say where it happened.
#[derive(Clone, Copy, Debug, Default)]
struct Cursor {
    record: Option<usize>,
    flow: Option<usize>,
    group: Option<usize>,
    tuple: Option<usize>,
    member: Option<&'static str>,
}

impl Cursor {
    fn set(&mut self, level: Level, index: Option<usize>) {
        match level {
            Level::Flow => {
                self.flow = index;
                self.group = None;
                self.tuple = None;
            }
            Level::Group => {
                self.group = index;
                self.tuple = None;
            }
            Level::Tuple => self.tuple = index,
        }
    }

    fn position(&self) -> Position {
        Position {
            record: self.record.unwrap_or(0),
            flow: self.flow.unwrap_or(0),
            group: self.group.unwrap_or(0),
            tuple: self.tuple.unwrap_or(0),
        }
    }
}

/// Everything the seeds share while one input is read.
pub(crate) struct State<'f> {
    on_tuple: &'f mut dyn FnMut(TupleEventRef<'_>),
    pub(crate) summary: ReadSummary,
    cursor: Cursor,
    /// A typed error raised below a visitor; serde only carries text upward,
    /// so the kind waits here until the top turns it into a `FlowLogError`.
    pending: Option<ErrorKind>,
    next_record: usize,
    /// The tuple lent to the callback, rewritten in place for each VNet tuple.
    scratch: Option<FlowTuple>,
    /// The mapped input being parsed, when there is one, so that the pages behind the
    /// parser can be released.
    walk: Option<Walk<'f>>,
}

/// Where the parser is in a memory-mapped input, known from the addresses of the
/// strings it borrows from it (tuples and member names, which make up nearly all of a
/// flow log), and what to call every [`RELEASE_STEP`] bytes.
pub(crate) struct Walk<'f> {
    /// Address of the first byte of the input.
    pub(crate) base: usize,
    /// Length of the input.
    pub(crate) len: usize,
    /// Offset from which the next release is due.
    pub(crate) next: usize,
    /// Called with an offset everything before which was parsed.
    pub(crate) release: &'f mut dyn FnMut(usize),
}

impl<'f> State<'f> {
    pub(crate) fn new(
        on_tuple: &'f mut dyn FnMut(TupleEventRef<'_>),
        summary: ReadSummary,
    ) -> Self {
        State {
            on_tuple,
            summary,
            cursor: Cursor::default(),
            pending: None,
            next_record: 0,
            scratch: None,
            walk: None,
        }
    }

    /// Lets the parse release the pages of a mapped input behind it.
    pub(crate) fn with_walk(mut self, walk: Option<Walk<'f>>) -> Self {
        self.walk = walk;
        self
    }

    /// Notes that the parser reached the byte at address `addr`: when that is in the
    /// mapped input and a step past the last release, everything before it is
    /// released. Addresses outside the input (text copied out of it) are ignored.
    #[inline]
    pub(crate) fn reached(&mut self, addr: usize) {
        if let Some(walk) = &mut self.walk {
            let offset = addr.wrapping_sub(walk.base);
            if offset < walk.len && offset >= walk.next {
                walk.next = offset.saturating_add(RELEASE_STEP);
                (walk.release)(offset);
            }
        }
    }

    pub(crate) fn deliver(&mut self, event: TupleEventRef<'_>) {
        match event {
            TupleEventRef::Tuple(_) => self.summary.tuples += 1,
            TupleEventRef::Malformed(_) => self.summary.malformed += 1,
        }
        (self.on_tuple)(event);
    }

    fn malformed(&mut self, source: SourceFormat, problem: TupleProblem, text: &str) {
        let position = self.cursor.position();
        self.deliver(TupleEventRef::Malformed(&MalformedTuple {
            source,
            position,
            problem,
            text: clip(text, MalformedTuple::MAX_TEXT),
        }));
    }

    fn tuple_text(&mut self, ctx: &GroupContext, source: SourceFormat, text: &str) {
        let position = self.cursor.position();
        let parsed = match source {
            SourceFormat::VnetFlowLog => {
                parse_vnet_values(text).map(|values| match &mut self.scratch {
                    Some(tuple) => values.write_into(tuple, ctx, position),
                    None => self.scratch = Some(values.into_tuple(ctx, position)),
                })
            }
            _ => parse_nsg_tuple(text, ctx, position).map(|tuple| self.scratch = Some(tuple)),
        };
        match (parsed, &self.scratch) {
            (Ok(()), Some(tuple)) => {
                self.summary.tuples += 1;
                (self.on_tuple)(TupleEventRef::Tuple(tuple));
            }
            (Ok(()), None) => {}
            (Err(problem), _) => self.malformed(source, problem, text),
        }
    }

    /// Records a typed error and returns the serde error that unwinds the
    /// parse.
    fn raise<E: de::Error>(&mut self, kind: ErrorKind) -> E {
        let text = kind.to_string();
        self.pending = Some(kind);
        E::custom(text)
    }

    /// Turns the error that ended the parse into the public error.
    pub(crate) fn fail(&mut self, source_name: &str, err: serde_json::Error) -> FlowLogError {
        let location = ErrorLocation {
            record: self.cursor.record,
            flow: self.cursor.flow,
            group: self.cursor.group,
            tuple: self.cursor.tuple,
            member: self.cursor.member,
            line: (err.line() > 0).then_some(err.line()),
            column: (err.line() > 0).then_some(err.column()),
        };
        let kind = match self.pending.take() {
            Some(kind) => kind,
            None => kind_of(err),
        };
        FlowLogError::new(source_name, location, kind, self.summary.clone())
    }
}

/// Classifies a JSON parser error, keeping its message without the position
/// (which the location reports separately).
pub(crate) fn kind_of(err: serde_json::Error) -> ErrorKind {
    use serde_json::error::Category;
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    let message = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
    match err.classify() {
        Category::Io => ErrorKind::Io(err.into()),
        Category::Eof => ErrorKind::Truncated { message },
        Category::Syntax => ErrorKind::Syntax { message },
        Category::Data => ErrorKind::Structure { message },
    }
}

/// Reads a member that was buffered as raw JSON, with `read` doing what the
/// streaming path would have done.
fn replay<'f, E: de::Error>(
    st: &mut State<'f>,
    raw: &RawValue,
    read: impl for<'r> FnOnce(
        &mut State<'f>,
        &mut serde_json::Deserializer<serde_json::de::StrRead<'r>>,
    ) -> serde_json::Result<()>,
) -> Result<(), E> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    match read(st, &mut de) {
        Ok(()) => Ok(()),
        Err(err) => {
            let kind = match st.pending.take() {
                Some(kind) => kind,
                None => kind_of(err),
            };
            Err(st.raise(kind))
        }
    }
}

/// Runs `next` for every element of a JSON array, keeping the cursor's index
/// for `level` current.
fn for_each<'de, 'f, A: SeqAccess<'de>>(
    st: &mut State<'f>,
    level: Level,
    mut seq: A,
    mut next: impl FnMut(&mut State<'f>, &mut A) -> Result<Option<()>, A::Error>,
) -> Result<(), A::Error> {
    let mut index = 0;
    loop {
        st.cursor.set(level, Some(index));
        if next(st, &mut seq)?.is_none() {
            break;
        }
        index += 1;
    }
    st.cursor.set(level, None);
    Ok(())
}

/// A member name, looked up in a fixed table without allocating.
pub(crate) struct Key(pub(crate) &'static [&'static str]);

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|known| *known == v))
    }
}

/// A member name like [`Key`], with the address of its text when the parser borrowed
/// it from the input (0 when it was copied), for [`State::reached`].
struct KeyAt(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeyAt {
    type Value = (Option<usize>, usize);

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for KeyAt {
    type Value = (Option<usize>, usize);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok((
            self.0.iter().position(|known| *known == v),
            v.as_ptr() as usize,
        ))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((self.0.iter().position(|known| *known == v), 0))
    }
}

fn shared_str<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Arc<str>, A::Error> {
    Ok(Arc::from(map.next_value::<String>()?))
}

/// The whole document: `{"records": [...]}`; other members are skipped.
pub(crate) struct DocumentSeed<'s, 'f> {
    pub(crate) st: &'s mut State<'f>,
}

impl<'de> DeserializeSeed<'de> for DocumentSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DocumentSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a flow log document (an object with a `records` array)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let st = self.st;
        let mut seen = false;
        while let Some(key) = map.next_key_seed(Key(&["records"]))? {
            if key.is_some() {
                seen = true;
                st.cursor.member = Some("records");
                map.next_value_seed(RecordListSeed { st: &mut *st })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        st.cursor.member = None;
        if seen {
            Ok(())
        } else {
            Err(st.raise(ErrorKind::MissingMember { member: "records" }))
        }
    }
}

struct RecordListSeed<'s, 'f> {
    st: &'s mut State<'f>,
}

impl<'de> DeserializeSeed<'de> for RecordListSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordListSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of flow log records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let st = self.st;
        loop {
            st.cursor = Cursor {
                record: Some(st.next_record),
                member: Some("records[]"),
                ..Cursor::default()
            };
            if seq
                .next_element_seed(RecordSeed { st: &mut *st })?
                .is_none()
            {
                break;
            }
            st.next_record += 1;
            st.summary.records += 1;
        }
        st.cursor = Cursor::default();
        Ok(())
    }
}

/// Which Azure format a record is, known from the member holding its flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RecordKind {
    Vnet,
    Nsg,
}

/// Record members, in the order of [`RECORD_KEYS`].
const RECORD_KEYS: &[&str] = &[
    "flowRecords",
    "properties",
    "targetResourceID",
    "resourceId",
    "flowLogVersion",
    "macAddress",
];

/// The paths of [`RECORD_KEYS`], for error locations.
const RECORD_PATHS: &[&str] = &[
    "records[].flowRecords",
    "records[].properties",
    "records[].targetResourceID",
    "records[].resourceId",
    "records[].flowLogVersion",
    "records[].macAddress",
];

struct RecordSeed<'s, 'f> {
    st: &'s mut State<'f>,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

#[derive(Default)]
struct RecordMeta {
    target_resource_id: Option<Arc<str>>,
    resource_id: Option<Arc<str>>,
    version: Option<u32>,
    mac: Option<Arc<str>>,
}

impl RecordMeta {
    fn context(&self, kind: RecordKind) -> GroupContext {
        match kind {
            RecordKind::Vnet => GroupContext {
                version: self.version,
                mac: self.mac.clone(),
                resource_id: self.target_resource_id.clone(),
                ..GroupContext::default()
            },
            RecordKind::Nsg => GroupContext {
                resource_id: self.resource_id.clone(),
                ..GroupContext::default()
            },
        }
    }

    /// Whether every member the flows of `kind` take values from was seen.
    fn complete(&self, kind: RecordKind) -> bool {
        match kind {
            RecordKind::Vnet => {
                self.target_resource_id.is_some() && self.version.is_some() && self.mac.is_some()
            }
            RecordKind::Nsg => self.resource_id.is_some(),
        }
    }
}

fn object_for(kind: RecordKind) -> Object {
    match kind {
        RecordKind::Vnet => Object::VnetFlowRecords,
        RecordKind::Nsg => Object::NsgProperties,
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a flow log record (an object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let st = self.st;
        let mut meta = RecordMeta::default();
        let mut kind = None;
        let mut deferred: Vec<(RecordKind, Box<RawValue>)> = Vec::new();
        while let Some((key, at)) = map.next_key_seed(KeyAt(RECORD_KEYS))? {
            st.reached(at);
            let Some(index) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            st.cursor.member = RECORD_PATHS.get(index).copied();
            match index {
                0 | 1 => {
                    let this = if index == 0 {
                        RecordKind::Vnet
                    } else {
                        RecordKind::Nsg
                    };
                    kind = Some(this);
                    if meta.complete(this) {
                        let ctx = meta.context(this);
                        map.next_value_seed(ObjectSeed {
                            st: &mut *st,
                            ctx: &ctx,
                            object: object_for(this),
                        })?;
                    } else {
                        deferred.push((this, map.next_value()?));
                    }
                }
                2 => meta.target_resource_id = Some(shared_str(&mut map)?),
                3 => meta.resource_id = Some(shared_str(&mut map)?),
                4 => meta.version = Some(map.next_value()?),
                _ => meta.mac = Some(shared_str(&mut map)?),
            }
            st.cursor.member = Some("records[]");
        }
        for (this, raw) in deferred {
            st.cursor.member = Some(match this {
                RecordKind::Vnet => "records[].flowRecords",
                RecordKind::Nsg => "records[].properties",
            });
            let ctx = meta.context(this);
            replay(st, &raw, |st, de| {
                ObjectSeed {
                    st,
                    ctx: &ctx,
                    object: object_for(this),
                }
                .deserialize(de)
            })?;
        }
        match kind {
            Some(RecordKind::Vnet) => st.summary.vnet_records += 1,
            Some(RecordKind::Nsg) => st.summary.nsg_records += 1,
            None => st.summary.other_records += 1,
        }
        Ok(())
    }
}

/// The objects below a record. Each has at most one member that sets a
/// value shared by the tuples below (`meta`) and one array (`list`) whose
/// elements are read with that value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Object {
    VnetFlowRecords,
    VnetFlow,
    VnetGroup,
    NsgProperties,
    NsgRule,
    NsgMac,
}

/// The elements of the arrays below a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Element {
    Object(Object),
    Tuple(SourceFormat),
}

struct ObjectSpec {
    /// Member names: the meta member first when there is one, then the list.
    keys: &'static [&'static str],
    has_meta: bool,
    path: &'static str,
    meta_path: &'static str,
    list_path: &'static str,
    element: Element,
    expecting: &'static str,
}

impl Object {
    fn spec(self) -> ObjectSpec {
        match self {
            Object::VnetFlowRecords => ObjectSpec {
                keys: &["flows"],
                has_meta: false,
                path: "records[].flowRecords",
                meta_path: "records[].flowRecords",
                list_path: "records[].flowRecords.flows",
                element: Element::Object(Object::VnetFlow),
                expecting: "the `flowRecords` object",
            },
            Object::VnetFlow => ObjectSpec {
                keys: &["aclID", "flowGroups"],
                has_meta: true,
                path: "records[].flowRecords.flows[]",
                meta_path: "records[].flowRecords.flows[].aclID",
                list_path: "records[].flowRecords.flows[].flowGroups",
                element: Element::Object(Object::VnetGroup),
                expecting: "a flow entry (an object with `aclID` and `flowGroups`)",
            },
            Object::VnetGroup => ObjectSpec {
                keys: &["rule", "flowTuples"],
                has_meta: true,
                path: "records[].flowRecords.flows[].flowGroups[]",
                meta_path: "records[].flowRecords.flows[].flowGroups[].rule",
                list_path: "records[].flowRecords.flows[].flowGroups[].flowTuples",
                element: Element::Tuple(SourceFormat::VnetFlowLog),
                expecting: "a flow group (an object with `rule` and `flowTuples`)",
            },
            Object::NsgProperties => ObjectSpec {
                keys: &["Version", "flows"],
                has_meta: true,
                path: "records[].properties",
                meta_path: "records[].properties.Version",
                list_path: "records[].properties.flows",
                element: Element::Object(Object::NsgRule),
                expecting: "the `properties` object (with `Version` and `flows`)",
            },
            Object::NsgRule => ObjectSpec {
                keys: &["rule", "flows"],
                has_meta: true,
                path: "records[].properties.flows[]",
                meta_path: "records[].properties.flows[].rule",
                list_path: "records[].properties.flows[].flows",
                element: Element::Object(Object::NsgMac),
                expecting: "a rule entry (an object with `rule` and `flows`)",
            },
            Object::NsgMac => ObjectSpec {
                keys: &["mac", "flowTuples"],
                has_meta: true,
                path: "records[].properties.flows[].flows[]",
                meta_path: "records[].properties.flows[].flows[].mac",
                list_path: "records[].properties.flows[].flows[].flowTuples",
                element: Element::Tuple(SourceFormat::NsgFlowLog),
                expecting: "a MAC entry (an object with `mac` and `flowTuples`)",
            },
        }
    }
}

struct ObjectSeed<'s, 'f, 'c> {
    st: &'s mut State<'f>,
    ctx: &'c GroupContext,
    object: Object,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.object.spec().expecting)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let st = self.st;
        let spec = self.object.spec();
        let list_index = usize::from(spec.has_meta);
        let mut ctx = self.ctx.clone();
        let mut meta_seen = !spec.has_meta;
        let mut deferred: Vec<Box<RawValue>> = Vec::new();
        while let Some((key, at)) = map.next_key_seed(KeyAt(spec.keys))? {
            st.reached(at);
            match key {
                Some(index) if index == list_index => {
                    st.cursor.member = Some(spec.list_path);
                    if meta_seen {
                        map.next_value_seed(ListSeed {
                            st: &mut *st,
                            ctx: &ctx,
                            element: spec.element,
                        })?;
                    } else {
                        deferred.push(map.next_value()?);
                    }
                }
                Some(_) => {
                    st.cursor.member = Some(spec.meta_path);
                    read_meta(st, self.object, &mut ctx, &mut map)?;
                    meta_seen = true;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            st.cursor.member = Some(spec.path);
        }
        if !deferred.is_empty() && self.object == Object::NsgProperties && ctx.version.is_none() {
            return Err(st.raise(ErrorKind::MissingMember {
                member: "properties.Version",
            }));
        }
        for raw in deferred {
            st.cursor.member = Some(spec.list_path);
            replay(st, &raw, |st, de| {
                ListSeed {
                    st,
                    ctx: &ctx,
                    element: spec.element,
                }
                .deserialize(de)
            })?;
            st.cursor.member = Some(spec.path);
        }
        Ok(())
    }
}

/// Reads the value of an object's meta member into the shared context.
fn read_meta<'de, A: MapAccess<'de>>(
    st: &mut State<'_>,
    object: Object,
    ctx: &mut GroupContext,
    map: &mut A,
) -> Result<(), A::Error> {
    match object {
        Object::NsgProperties => {
            let version: u64 = map.next_value()?;
            match u32::try_from(version) {
                Ok(known @ (1 | 2)) => ctx.version = Some(known),
                _ => return Err(st.raise(ErrorKind::UnsupportedVersion { version })),
            }
        }
        Object::VnetFlow => ctx.acl_id = Some(shared_str(map)?),
        Object::VnetGroup | Object::NsgRule => ctx.rule = Some(shared_str(map)?),
        Object::NsgMac => ctx.mac = Some(shared_str(map)?),
        Object::VnetFlowRecords => {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(())
}

struct ListSeed<'s, 'f, 'c> {
    st: &'s mut State<'f>,
    ctx: &'c GroupContext,
    element: Element,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.element {
            Element::Tuple(_) => "an array of flow tuple strings",
            Element::Object(_) => "an array of objects",
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let ctx = self.ctx;
        match self.element {
            Element::Tuple(source) => for_each(self.st, Level::Tuple, seq, |st, seq| {
                seq.next_element_seed(TupleSeed { st, ctx, source })
            }),
            Element::Object(object) => {
                let level = match object {
                    Object::VnetFlow | Object::NsgRule => Level::Flow,
                    _ => Level::Group,
                };
                for_each(self.st, level, seq, |st, seq| {
                    seq.next_element_seed(ObjectSeed { st, ctx, object })
                })
            }
        }
    }
}

struct TupleSeed<'s, 'f, 'c> {
    st: &'s mut State<'f>,
    ctx: &'c GroupContext,
    source: SourceFormat,
}

impl<'de> DeserializeSeed<'de> for TupleSeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl TupleSeed<'_, '_, '_> {
    fn not_a_string(self, found: &'static str, text: &str) {
        self.st
            .malformed(self.source, TupleProblem::NotAString { found }, text);
    }
}

/// A tuple of another JSON type is reported as malformed rather than ending
/// the read: it is one bad tuple, not a broken document.
impl<'de> Visitor<'de> for TupleSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a flow tuple string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        self.st.reached(v.as_ptr() as usize);
        self.st.tuple_text(self.ctx, self.source, v);
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.st.tuple_text(self.ctx, self.source, v);
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.not_a_string("boolean", if v { "true" } else { "false" });
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.not_a_string("number", &v.to_string());
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.not_a_string("number", &v.to_string());
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.not_a_string("number", &v.to_string());
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.not_a_string("null", "null");
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.not_a_string("array", "[...]");
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        self.not_a_string("object", "{...}");
        Ok(())
    }
}
