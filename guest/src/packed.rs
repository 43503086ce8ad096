//! The packed batch layouts of the WIT contract (`evaluate-flows-packed`,
//! `evaluate-dns-packed`): a writer for hosts and a validating reader for modules.
//!
//! A batch is one byte list, so crossing into the sandbox is a single copy instead of
//! lowering a record, an option and a string per field. The reader borrows names from the
//! batch and checks every length and index before it reads, so a malformed batch is an
//! error, never a panic or an out-of-bounds read.
//!
//! Flow batches carry their names in a table (layout `LWF2`): most flows of a batch share a
//! few names (a service's FQDN, the same SNI again and again), so each distinct name is
//! sent, checked as UTF-8 and looked up once per batch, and flows refer to it by index.
//! The reader still accepts the first layout (`LWF1`, names inline in every flow), which
//! hosts built before the table may send; [`FlowBatchWriter`] writes only `LWF2`.

use crate::record::{DnsAnswer, Flow};
use rustc_hash::{FxBuildHasher, FxHashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The flow layout [`FlowBatchWriter`] writes: a name table and references to it.
pub const FLOW_MAGIC: &[u8; 4] = b"LWF2";
/// The first flow layout, names inline in every flow: still read, no longer written.
pub const FLOW_MAGIC_V1: &[u8; 4] = b"LWF1";
pub const DNS_MAGIC: &[u8; 4] = b"LWD1";

const FLAG_FLOW_LOG: u8 = 1;
const FLAG_DENIED: u8 = 2;

/// Longest string a packed batch can carry; longer names are cut at a character boundary.
pub const MAX_STR: usize = u16::MAX as usize;
/// Most CNAMEs or addresses one record can carry.
pub const MAX_LIST: usize = u8::MAX as usize;

/// Bytes of an `LWF2` header: magic, flow count, offset of the name table.
const FLOW_HEADER: usize = 12;

/// Builds a packed flow batch (layout `LWF2`). Reuse one writer across batches: `clear`
/// keeps the buffers.
///
/// Flows are appended as they come; their names go to a separate table, each distinct
/// name once, which [`FlowBatchWriter::bytes`] appends after the flows (the table is only
/// complete once the last flow is in, and copying it is cheaper than copying the flows).
#[derive(Clone, Debug)]
pub struct FlowBatchWriter {
    /// Header and flows, followed by the table after `bytes`.
    buf: Vec<u8>,
    /// Where the flows end in `buf`.
    flows_end: usize,
    count: u32,
    /// The table's entries (`len:u16 bytes`), in reference order.
    names: Vec<u8>,
    /// Where each entry starts in `names`; its reference is its position plus one.
    entries: Vec<u32>,
    /// Hash of a name → its reference, to find a name already in the table without
    /// keeping a copy of it: a hit is confirmed against the table's bytes, and a name
    /// whose hash belongs to another only costs a second entry.
    index: FxHashMap<u64, u32>,
}

impl Default for FlowBatchWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl FlowBatchWriter {
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(64 * 1024);
        buf.extend_from_slice(FLOW_MAGIC);
        buf.extend_from_slice(&0u32.to_le_bytes());
        buf.extend_from_slice(&(FLOW_HEADER as u32).to_le_bytes());
        FlowBatchWriter {
            buf,
            flows_end: FLOW_HEADER,
            count: 0,
            names: Vec::with_capacity(4 * 1024),
            entries: Vec::new(),
            index: FxHashMap::default(),
        }
    }

    pub fn clear(&mut self) {
        self.buf.truncate(FLOW_HEADER);
        self.flows_end = FLOW_HEADER;
        self.count = 0;
        self.names.clear();
        self.entries.clear();
        self.index.clear();
        self.patch(4, 0);
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends one flow; `cname_chain` is carried for module authors who want it.
    pub fn push(&mut self, flow: &Flow<'_>, cname_chain: &[&str]) {
        // A table appended by `bytes` comes off again: flows go before it.
        self.buf.truncate(self.flows_end);
        let refs = [
            self.intern(flow.resolved_name),
            self.intern(flow.sni),
            self.intern(flow.http_host),
        ];
        let b = &mut self.buf;
        b.push(family(flow.src));
        b.push(flow.protocol);
        let mut flags = 0;
        if flow.from_flow_log {
            flags |= FLAG_FLOW_LOG;
        }
        if flow.denied_by_nsg {
            flags |= FLAG_DENIED;
        }
        b.push(flags);
        b.push(family(flow.dst));
        b.extend_from_slice(&flow.src_port.to_le_bytes());
        b.extend_from_slice(&flow.dst_port.to_le_bytes());
        put_addr(b, flow.src);
        put_addr(b, flow.dst);
        for n in [
            flow.packets,
            flow.bytes,
            flow.first_seen_ns,
            flow.last_seen_ns,
        ] {
            b.extend_from_slice(&n.to_le_bytes());
        }
        for r in refs {
            b.extend_from_slice(&r.to_le_bytes());
        }
        let chain = &cname_chain[..cname_chain.len().min(MAX_LIST)];
        b.push(chain.len() as u8);
        for c in chain {
            let r = self.intern(Some(c));
            self.buf.extend_from_slice(&r.to_le_bytes());
        }
        self.flows_end = self.buf.len();
        self.count += 1;
        self.patch(4, self.count);
    }

    /// The reference of `name` in the table, adding it if it is new; 0 for no name (or
    /// an empty one, which the layout cannot carry either).
    fn intern(&mut self, name: Option<&str>) -> u32 {
        let name = cut(name.unwrap_or(""));
        if name.is_empty() {
            return 0;
        }
        let hash = FxBuildHasher.hash_one(name.as_bytes());
        if let Some(&r) = self.index.get(&hash)
            && self.entry(r) == Some(name.as_bytes())
        {
            return r;
        }
        // References are u32; a table of four billion names would not fit in a sandbox's
        // memory, so running out of them is not a case to handle beyond not wrapping.
        let (Ok(at), Ok(r)) = (
            u32::try_from(self.names.len()),
            u32::try_from(self.entries.len() + 1),
        ) else {
            return 0;
        };
        self.entries.push(at);
        self.names
            .extend_from_slice(&(name.len() as u16).to_le_bytes());
        self.names.extend_from_slice(name.as_bytes());
        self.index.entry(hash).or_insert(r);
        r
    }

    /// The bytes of the table entry with reference `r`.
    fn entry(&self, r: u32) -> Option<&[u8]> {
        let at = *self.entries.get((r as usize).checked_sub(1)?)? as usize;
        let len = u16::from_le_bytes(*self.names.get(at..)?.first_chunk::<2>()?) as usize;
        self.names.get(at + 2..at + 2 + len)
    }

    fn patch(&mut self, at: usize, value: u32) {
        if let Some(slot) = self.buf.get_mut(at..at + 4) {
            slot.copy_from_slice(&value.to_le_bytes());
        }
    }

    /// The batch: header, flows, and the name table appended after them. Pushing again
    /// afterwards is fine; the table moves behind the new flow.
    pub fn bytes(&mut self) -> &[u8] {
        self.buf.truncate(self.flows_end);
        let table_at = u32::try_from(self.flows_end).unwrap_or(u32::MAX);
        self.patch(8, table_at);
        let name_count = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&name_count.to_le_bytes());
        self.buf.extend_from_slice(&self.names);
        &self.buf
    }
}

/// Builds a packed DNS batch.
#[derive(Clone, Debug)]
pub struct DnsBatchWriter {
    buf: Vec<u8>,
    count: u32,
}

impl Default for DnsBatchWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl DnsBatchWriter {
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(16 * 1024);
        buf.extend_from_slice(DNS_MAGIC);
        buf.extend_from_slice(&0u32.to_le_bytes());
        DnsBatchWriter { buf, count: 0 }
    }

    pub fn clear(&mut self) {
        self.buf.truncate(8);
        self.count = 0;
        if let Some(slot) = self.buf.get_mut(4..8) {
            slot.copy_from_slice(&0u32.to_le_bytes());
        }
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn push(&mut self, answer: &DnsAnswer<'_>) {
        let b = &mut self.buf;
        b.push(family(answer.client));
        b.push(family(answer.server));
        b.extend_from_slice(&[0, 0]);
        put_addr(b, answer.client);
        put_addr(b, answer.server);
        b.extend_from_slice(&answer.ttl.to_le_bytes());
        b.extend_from_slice(&answer.timestamp_ns.to_le_bytes());
        put_str(b, Some(answer.query));
        let chain = &answer.cname_chain[..answer.cname_chain.len().min(MAX_LIST)];
        b.push(chain.len() as u8);
        for c in chain {
            put_str(b, Some(c));
        }
        let addrs = &answer.addresses[..answer.addresses.len().min(MAX_LIST)];
        b.push(addrs.len() as u8);
        for a in addrs {
            b.push(family(*a));
            put_addr(b, *a);
        }
        self.count += 1;
        if let Some(slot) = self.buf.get_mut(4..8) {
            slot.copy_from_slice(&self.count.to_le_bytes());
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

fn family(a: IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 6,
    }
}

fn put_addr(b: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(v4) => {
            b.extend_from_slice(&v4.octets());
            b.extend_from_slice(&[0; 12]);
        }
        IpAddr::V6(v6) => b.extend_from_slice(&v6.octets()),
    }
}

fn put_str(b: &mut Vec<u8>, s: Option<&str>) {
    let s = cut(s.unwrap_or(""));
    b.extend_from_slice(&(s.len() as u16).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
}

/// `s` cut to at most [`MAX_STR`] bytes, at a character boundary.
fn cut(s: &str) -> &str {
    let mut end = s.len().min(MAX_STR);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// Why a packed batch could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedError {
    pub offset: usize,
    pub what: &'static str,
}

impl fmt::Display for PackedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "packed batch invalid at byte {}: {}",
            self.offset, self.what
        )
    }
}

impl std::error::Error for PackedError {}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], PackedError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let out = &self.bytes[self.at..end];
                self.at = end;
                Ok(out)
            }
            None => Err(PackedError {
                offset: self.at,
                what,
            }),
        }
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, PackedError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, PackedError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, PackedError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, PackedError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn addr(&mut self, family: u8, what: &'static str) -> Result<IpAddr, PackedError> {
        let at = self.at;
        let b = self.take(16, what)?;
        let mut o = [0u8; 16];
        o.copy_from_slice(b);
        match family {
            4 => Ok(IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3]))),
            6 => Ok(IpAddr::V6(Ipv6Addr::from(o))),
            _ => Err(PackedError {
                offset: at,
                what: "address family is neither 4 nor 6",
            }),
        }
    }

    fn str(&mut self, what: &'static str) -> Result<Option<&'a str>, PackedError> {
        let len = self.u16(what)? as usize;
        let at = self.at;
        let b = self.take(len, what)?;
        if b.is_empty() {
            return Ok(None);
        }
        std::str::from_utf8(b).map(Some).map_err(|_| PackedError {
            offset: at,
            what: "string is not UTF-8",
        })
    }

    /// Ok when every byte of the batch was read.
    fn finish(&self) -> Result<(), PackedError> {
        if self.at != self.bytes.len() {
            return Err(PackedError {
                offset: self.at,
                what: "bytes after the last record",
            });
        }
        Ok(())
    }

    fn header(&mut self, magic: &[u8; 4]) -> Result<u32, PackedError> {
        if self.take(4, "missing batch magic")? != magic {
            return Err(PackedError {
                offset: 0,
                what: "wrong batch magic",
            });
        }
        self.u32("missing record count")
    }
}

/// Bytes of a packed flow before its strings: families, protocol, flags, ports, both
/// addresses, counters and timestamps.
const FLOW_FIXED: usize = 72;

/// `N` bytes of `b` from `at`; zeros where `b` is shorter (never, for the constant
/// offsets into a [`FLOW_FIXED`] array in [`read_flows`], where the compiler drops the
/// check).
#[inline(always)]
fn bytes_at<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    b.get(at..)
        .and_then(|rest| rest.first_chunk::<N>())
        .copied()
        .unwrap_or([0; N])
}

fn addr_from(family: u8, octets: [u8; 16], offset: usize) -> Result<IpAddr, PackedError> {
    match family {
        4 => {
            let [a, b, c, d, ..] = octets;
            Ok(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
        }
        6 => Ok(IpAddr::V6(Ipv6Addr::from(octets))),
        _ => Err(PackedError {
            offset,
            what: "address family is neither 4 nor 6",
        }),
    }
}

/// The fixed part of a flow (the first [`FLOW_FIXED`] bytes of `h`, read from batch
/// offset `start`), the same in both layouts; the names are left for the caller.
#[inline(always)]
fn fixed_flow<'a>(h: &[u8], start: usize) -> Result<Flow<'a>, PackedError> {
    let [src_family, protocol, flags, dst_family] = bytes_at::<4>(h, 0);
    let dst_family = match dst_family {
        0 => src_family,
        f => f,
    };
    Ok(Flow {
        src: addr_from(src_family, bytes_at(h, 8), start + 8)?,
        dst: addr_from(dst_family, bytes_at(h, 24), start + 24)?,
        src_port: u16::from_le_bytes(bytes_at(h, 4)),
        dst_port: u16::from_le_bytes(bytes_at(h, 6)),
        protocol,
        from_flow_log: flags & FLAG_FLOW_LOG != 0,
        denied_by_nsg: flags & FLAG_DENIED != 0,
        resolved_name: None,
        sni: None,
        http_host: None,
        packets: u64::from_le_bytes(bytes_at(h, 40)),
        bytes: u64::from_le_bytes(bytes_at(h, 48)),
        first_seen_ns: u64::from_le_bytes(bytes_at(h, 56)),
        last_seen_ns: u64::from_le_bytes(bytes_at(h, 64)),
    })
}

/// The names of a flow after its fixed part: resolved name, SNI, HTTP Host; the CNAME
/// chain that follows is checked and skipped (the evaluator does not use it).
type Names<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);

#[inline(always)]
fn read_names<'a>(c: &mut Cursor<'a>) -> Result<Names<'a>, PackedError> {
    let resolved_name = c.str("truncated resolved name")?;
    let sni = c.str("truncated SNI")?;
    let http_host = c.str("truncated HTTP host")?;
    let chain = c.u8("truncated CNAME count")?;
    for _ in 0..chain {
        c.str("truncated CNAME")?;
    }
    Ok((resolved_name, sni, http_host))
}

/// Why a record too short for its fixed part is invalid, found by reading it field by
/// field so the error names the missing field as it always has.
#[cold]
fn truncated_flow(c: &mut Cursor<'_>) -> PackedError {
    match read_flow_fields(c) {
        Err(e) => e,
        Ok(_) => PackedError {
            offset: c.at,
            what: "truncated flow",
        },
    }
}

fn read_flow_fields<'a>(c: &mut Cursor<'a>) -> Result<Flow<'a>, PackedError> {
    let src_family = c.u8("truncated flow")?;
    let protocol = c.u8("truncated flow")?;
    let flags = c.u8("truncated flow")?;
    let dst_family = match c.u8("truncated flow")? {
        0 => src_family,
        f => f,
    };
    let src_port = c.u16("truncated flow")?;
    let dst_port = c.u16("truncated flow")?;
    let src = c.addr(src_family, "truncated source address")?;
    let dst = c.addr(dst_family, "truncated destination address")?;
    Ok(Flow {
        src,
        dst,
        src_port,
        dst_port,
        protocol,
        from_flow_log: flags & FLAG_FLOW_LOG != 0,
        denied_by_nsg: flags & FLAG_DENIED != 0,
        resolved_name: None,
        sni: None,
        http_host: None,
        packets: c.u64("truncated counters")?,
        bytes: c.u64("truncated counters")?,
        first_seen_ns: c.u64("truncated timestamps")?,
        last_seen_ns: c.u64("truncated timestamps")?,
    })
}

/// Bytes of an `LWF2` flow before its CNAME references: the [`FLOW_FIXED`] part, the
/// three name references and the CNAME count.
const FLOW_FIXED_V2: usize = FLOW_FIXED + 13;

/// A flow's name references into its batch's table, as 0-based positions in
/// [`FlowBatch::names`]; `None` for a name the flow does not have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NameRefs {
    pub resolved_name: Option<u32>,
    pub sni: Option<u32>,
    pub http_host: Option<u32>,
}

/// A packed flow batch whose header and name table were checked, ready to be walked.
#[derive(Clone, Debug)]
pub struct FlowBatch<'a> {
    /// The batch up to the name table (`LWF1`: all of it).
    flows: &'a [u8],
    count: u32,
    /// The name table (empty for `LWF1`, whose names are inline).
    names: Vec<&'a str>,
    with_table: bool,
}

impl<'a> FlowBatch<'a> {
    /// Checks the header and, for `LWF2`, reads the whole name table: every name is
    /// checked as UTF-8 here, once, however many flows refer to it.
    pub fn parse(batch: &'a [u8]) -> Result<FlowBatch<'a>, PackedError> {
        let mut c = Cursor {
            bytes: batch,
            at: 0,
        };
        let magic = c.take(4, "missing batch magic")?;
        if magic == FLOW_MAGIC_V1 {
            let count = c.u32("missing record count")?;
            return Ok(FlowBatch {
                flows: batch,
                count,
                names: Vec::new(),
                with_table: false,
            });
        }
        if magic != FLOW_MAGIC {
            return Err(PackedError {
                offset: 0,
                what: "wrong batch magic",
            });
        }
        let count = c.u32("missing record count")?;
        let table_at = c.u32("missing name table offset")? as usize;
        if table_at < FLOW_HEADER || table_at > batch.len() {
            return Err(PackedError {
                offset: 8,
                what: "name table offset outside the batch",
            });
        }
        let (flows, table) = batch.split_at(table_at);
        let mut t = Cursor {
            bytes: batch,
            at: table_at,
        };
        let name_count = t.u32("truncated name count")?;
        // Every name takes at least three bytes: a count larger than that allows is a lie,
        // and must not size an allocation.
        let room = table.len().saturating_sub(4) / 3;
        let mut names = Vec::with_capacity((name_count as usize).min(room));
        for _ in 0..name_count {
            let len = t.u16("truncated name")? as usize;
            let at = t.at;
            if len == 0 {
                return Err(PackedError {
                    offset: at - 2,
                    what: "empty name in the name table",
                });
            }
            let b = t.take(len, "truncated name")?;
            let name = std::str::from_utf8(b).map_err(|_| PackedError {
                offset: at,
                what: "string is not UTF-8",
            })?;
            names.push(name);
        }
        if t.at != batch.len() {
            return Err(PackedError {
                offset: t.at,
                what: "bytes after the name table",
            });
        }
        Ok(FlowBatch {
            flows,
            count,
            names,
            with_table: true,
        })
    }

    /// How many flows the header announces.
    pub fn len(&self) -> u32 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The batch's distinct names, in table order (none for an `LWF1` batch).
    pub fn names(&self) -> &[&'a str] {
        &self.names
    }

    /// Reads every flow, calling `each(index, flow, refs)`; `refs` are the flow's
    /// positions in [`FlowBatch::names`], `None` for an `LWF1` batch. Stops at the first
    /// malformed flow; flows before it have been passed to `each`.
    pub fn for_each(
        &self,
        mut each: impl FnMut(u32, &Flow<'a>, Option<NameRefs>),
    ) -> Result<(), PackedError> {
        if !self.with_table {
            return read_flows_v1(self.flows, self.count, |i, f| each(i, f, None));
        }
        let mut c = Cursor {
            bytes: self.flows,
            at: FLOW_HEADER,
        };
        let names = self.names.as_slice();
        for index in 0..self.count {
            // As in the first layout, the fixed part (here with the references and the
            // CNAME count) comes from one bounds-checked array.
            let start = c.at;
            let Some(h) = c
                .bytes
                .get(start..)
                .and_then(|rest| rest.first_chunk::<FLOW_FIXED_V2>())
            else {
                return Err(truncated_flow_v2(&mut c));
            };
            c.at = start + FLOW_FIXED_V2;
            let mut flow = fixed_flow(h, start)?;
            let name_ref = |at: usize| -> Result<Option<u32>, PackedError> {
                resolve_ref(u32::from_le_bytes(bytes_at(h, at)), names.len(), start + at)
            };
            let refs = NameRefs {
                resolved_name: name_ref(FLOW_FIXED)?,
                sni: name_ref(FLOW_FIXED + 4)?,
                http_host: name_ref(FLOW_FIXED + 8)?,
            };
            let chain = bytes_at::<1>(h, FLOW_FIXED + 12)[0] as usize;
            let chain_at = c.at;
            let chain_refs = c.take(chain * 4, "truncated CNAME reference")?;
            for (i, r) in chain_refs.chunks_exact(4).enumerate() {
                resolve_ref(
                    u32::from_le_bytes(bytes_at(r, 0)),
                    names.len(),
                    chain_at + 4 * i,
                )?;
            }
            let name = |r: Option<u32>| r.and_then(|r| names.get(r as usize)).copied();
            flow.resolved_name = name(refs.resolved_name);
            flow.sni = name(refs.sni);
            flow.http_host = name(refs.http_host);
            each(index, &flow, Some(refs));
        }
        if c.at != self.flows.len() {
            return Err(PackedError {
                offset: c.at,
                what: "bytes between the last record and the name table",
            });
        }
        Ok(())
    }
}

/// A name reference checked against a table of `names` entries: 0 is no name, `n` the
/// `n`-th entry (returned as its 0-based position).
#[inline(always)]
fn resolve_ref(r: u32, names: usize, offset: usize) -> Result<Option<u32>, PackedError> {
    match r {
        0 => Ok(None),
        r if r as usize <= names => Ok(Some(r - 1)),
        _ => Err(PackedError {
            offset,
            what: "name reference beyond the name table",
        }),
    }
}

/// Why an `LWF2` flow too short for its fixed part is invalid, named after the first
/// field that is cut.
#[cold]
fn truncated_flow_v2(c: &mut Cursor<'_>) -> PackedError {
    if let Err(e) = read_flow_fields(c) {
        return e;
    }
    PackedError {
        offset: c.at,
        what: if c.bytes.len().saturating_sub(c.at) < 12 {
            "truncated name reference"
        } else {
            "truncated CNAME count"
        },
    }
}

/// Reads a packed flow batch of either layout, calling `each(index, flow)` per flow.
pub fn read_flows<'a>(
    batch: &'a [u8],
    mut each: impl FnMut(u32, &Flow<'a>),
) -> Result<(), PackedError> {
    FlowBatch::parse(batch)?.for_each(|i, f, _| each(i, f))
}

/// The flows of an `LWF1` batch (`batch` whole, header included), `count` of them.
fn read_flows_v1<'a>(
    batch: &'a [u8],
    count: u32,
    mut each: impl FnMut(u32, &Flow<'a>),
) -> Result<(), PackedError> {
    let mut c = Cursor {
        bytes: batch,
        at: 8,
    };
    for index in 0..count {
        // The fixed part comes from one bounds-checked 72-byte array instead of twelve
        // checked reads (inside the sandbox each check is a compare and branch the
        // optimizer cannot merge).
        let start = c.at;
        let Some(h) = c
            .bytes
            .get(start..)
            .and_then(|rest| rest.first_chunk::<FLOW_FIXED>())
        else {
            return Err(truncated_flow(&mut c));
        };
        c.at = start + FLOW_FIXED;
        let mut flow = fixed_flow(h, start)?;
        (flow.resolved_name, flow.sni, flow.http_host) = read_names(&mut c)?;
        each(index, &flow);
    }
    c.finish()
}

/// The `LWF1` flow reader before the fixed-part fast path, kept to check that both agree.
#[cfg(test)]
fn read_flows_by_field<'a>(
    batch: &'a [u8],
    mut each: impl FnMut(u32, &Flow<'a>),
) -> Result<(), PackedError> {
    let mut c = Cursor {
        bytes: batch,
        at: 0,
    };
    let count = c.header(FLOW_MAGIC_V1)?;
    for index in 0..count {
        let mut flow = read_flow_fields(&mut c)?;
        (flow.resolved_name, flow.sni, flow.http_host) = read_names(&mut c)?;
        each(index, &flow);
    }
    c.finish()
}

/// Reads a packed DNS batch, calling `each(index, answer)` per answer.
pub fn read_dns<'a>(
    batch: &'a [u8],
    mut each: impl FnMut(u32, &DnsAnswer<'a>),
) -> Result<(), PackedError> {
    let mut c = Cursor {
        bytes: batch,
        at: 0,
    };
    let count = c.header(DNS_MAGIC)?;
    for index in 0..count {
        let client_family = c.u8("truncated answer")?;
        let server_family = c.u8("truncated answer")?;
        c.take(2, "truncated answer")?;
        let client = c.addr(client_family, "truncated client address")?;
        let server = c.addr(server_family, "truncated server address")?;
        let ttl = c.u32("truncated TTL")?;
        let timestamp_ns = c.u64("truncated timestamp")?;
        let query = c.str("truncated query")?.unwrap_or("");
        let chain_len = c.u8("truncated CNAME count")?;
        let mut cname_chain = Vec::with_capacity(chain_len as usize);
        for _ in 0..chain_len {
            if let Some(name) = c.str("truncated CNAME")? {
                cname_chain.push(name);
            }
        }
        let addr_len = c.u8("truncated address count")?;
        let mut addresses = Vec::with_capacity(addr_len as usize);
        for _ in 0..addr_len {
            let family = c.u8("truncated address")?;
            addresses.push(c.addr(family, "truncated address")?);
        }
        let answer = DnsAnswer {
            client,
            server,
            query,
            cname_chain,
            addresses,
            ttl,
            timestamp_ns,
        };
        each(index, &answer);
    }
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow() -> Flow<'static> {
        Flow {
            src: "10.1.5.9".parse().unwrap(),
            dst: "2001:db8::7".parse().unwrap(),
            src_port: 50000,
            dst_port: 443,
            protocol: 6,
            from_flow_log: true,
            denied_by_nsg: false,
            resolved_name: Some("fabrikam-records.fhir.azurehealthcareapis.com"),
            sni: None,
            http_host: Some("h"),
            packets: 3,
            bytes: 400,
            first_seen_ns: 1,
            last_seen_ns: 2,
        }
    }

    /// A flow batch in the first layout, as hosts before the name table wrote it.
    fn v1_batch(flows: &[(Flow<'_>, &[&str])]) -> Vec<u8> {
        let mut b = FLOW_MAGIC_V1.to_vec();
        b.extend_from_slice(&(flows.len() as u32).to_le_bytes());
        for (flow, chain) in flows {
            b.extend_from_slice(&[
                family(flow.src),
                flow.protocol,
                u8::from(flow.from_flow_log) | u8::from(flow.denied_by_nsg) << 1,
                family(flow.dst),
            ]);
            b.extend_from_slice(&flow.src_port.to_le_bytes());
            b.extend_from_slice(&flow.dst_port.to_le_bytes());
            put_addr(&mut b, flow.src);
            put_addr(&mut b, flow.dst);
            for n in [
                flow.packets,
                flow.bytes,
                flow.first_seen_ns,
                flow.last_seen_ns,
            ] {
                b.extend_from_slice(&n.to_le_bytes());
            }
            put_str(&mut b, flow.resolved_name);
            put_str(&mut b, flow.sni);
            put_str(&mut b, flow.http_host);
            b.push(chain.len() as u8);
            for c in *chain {
                put_str(&mut b, Some(c));
            }
        }
        b
    }

    fn read_all(batch: &[u8]) -> Result<Vec<(u32, Flow<'_>)>, PackedError> {
        let mut seen = Vec::new();
        read_flows(batch, |i, f| seen.push((i, f.clone())))?;
        Ok(seen)
    }

    fn other() -> Flow<'static> {
        Flow {
            src: "10.1.5.10".parse().unwrap(),
            dst: "20.37.1.9".parse().unwrap(),
            resolved_name: Some("h"),
            sni: Some("fabrikam-records.fhir.azurehealthcareapis.com"),
            http_host: None,
            from_flow_log: false,
            denied_by_nsg: true,
            ..flow()
        }
    }

    /// Two flows sharing names, with CNAME chains that repeat them.
    fn writer() -> FlowBatchWriter {
        let mut w = FlowBatchWriter::new();
        w.push(&flow(), &["a.example", "h"]);
        w.push(&other(), &[]);
        w.push(&flow(), &["a.example"]);
        w
    }

    #[test]
    fn flows_round_trip_through_the_name_table() {
        let mut w = writer();
        assert_eq!(w.len(), 3);
        let bytes = w.bytes().to_vec();
        assert_eq!(&bytes[..4], FLOW_MAGIC);
        assert_eq!(
            read_all(&bytes).unwrap(),
            vec![(0, flow()), (1, other()), (2, flow())]
        );
        let batch = FlowBatch::parse(&bytes).unwrap();
        assert_eq!(batch.len(), 3);
        // Each distinct name once, in order of first use.
        assert_eq!(
            batch.names(),
            [
                "fabrikam-records.fhir.azurehealthcareapis.com",
                "h",
                "a.example"
            ]
        );
        let mut refs = Vec::new();
        batch.for_each(|_, _, r| refs.push(r)).unwrap();
        let full = NameRefs {
            resolved_name: Some(0),
            sni: None,
            http_host: Some(1),
        };
        let swapped = NameRefs {
            resolved_name: Some(1),
            sni: Some(0),
            http_host: None,
        };
        assert_eq!(refs, vec![Some(full), Some(swapped), Some(full)]);

        // Pushing after `bytes` moves the table behind the new flow.
        w.push(&other(), &["b.example"]);
        let more = w.bytes().to_vec();
        assert_eq!(read_all(&more).unwrap().len(), 4);
        assert_eq!(FlowBatch::parse(&more).unwrap().names().len(), 4);

        w.clear();
        assert!(w.is_empty());
        read_flows(w.bytes(), |_, _| panic!("no flows")).unwrap();
        assert!(FlowBatch::parse(w.bytes()).unwrap().names().is_empty());
    }

    #[test]
    fn names_too_long_are_cut_and_empty_ones_are_absent() {
        let long = "é".repeat(MAX_STR);
        let mut f = flow();
        f.resolved_name = Some(&long);
        f.sni = Some("");
        let mut w = FlowBatchWriter::new();
        w.push(&f, &[""]);
        let seen = read_all(w.bytes()).unwrap();
        let name = seen[0].1.resolved_name.unwrap();
        assert!(name.len() <= MAX_STR && long.starts_with(name));
        assert_eq!(seen[0].1.sni, None);
    }

    /// `batch` with its flows cut to `cut` bytes (header included) and the name table
    /// moved up behind them, so the table stays valid and only the flows are short.
    fn flows_cut(batch: &[u8], cut: usize) -> Vec<u8> {
        let table_at = u32::from_le_bytes(batch[8..12].try_into().unwrap()) as usize;
        let mut b = batch[..cut].to_vec();
        b[8..12].copy_from_slice(&(cut as u32).to_le_bytes());
        b.extend_from_slice(&batch[table_at..]);
        b
    }

    #[test]
    fn every_truncation_of_a_flow_batch_is_an_error() {
        let mut w = writer();
        let bytes = w.bytes().to_vec();
        let table_at = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        for cut in 0..bytes.len() {
            assert!(read_all(&bytes[..cut]).is_err(), "cut {cut}");
        }
        // Flows cut anywhere, the table intact: named after what is missing.
        let mut whats = std::collections::BTreeSet::new();
        for cut in FLOW_HEADER..table_at {
            let err = read_all(&flows_cut(&bytes, cut)).unwrap_err();
            whats.insert(err.what);
        }
        for what in [
            "truncated flow",
            "truncated source address",
            "truncated destination address",
            "truncated counters",
            "truncated timestamps",
            "truncated name reference",
            "truncated CNAME count",
            "truncated CNAME reference",
        ] {
            assert!(whats.contains(what), "{what}: {whats:?}");
        }
        assert_eq!(read_all(&flows_cut(&bytes, table_at)).unwrap().len(), 3);
    }

    #[test]
    fn bad_references_names_and_offsets_are_errors() {
        let mut w = writer();
        let bytes = w.bytes().to_vec();
        let table_at = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        let first_ref = FLOW_HEADER + FLOW_FIXED;
        let err = |b: &[u8]| read_all(b).unwrap_err();

        // A reference one past the table, in each name slot and in a CNAME chain.
        for at in [first_ref, first_ref + 4, first_ref + 8, first_ref + 13] {
            let mut bad = bytes.clone();
            bad[at..at + 4].copy_from_slice(&4u32.to_le_bytes());
            let e = err(&bad);
            assert_eq!(
                (e.offset, e.what),
                (at, "name reference beyond the name table")
            );
            bad[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
            assert!(read_all(&bad).is_err());
        }
        // The last name's bytes are not UTF-8.
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] = 0xff;
        assert_eq!(err(&bad).what, "string is not UTF-8");
        // An empty name, a table entry no writer makes.
        let mut bad = bytes[..table_at].to_vec();
        bad.extend_from_slice(&[1, 0, 0, 0, 0, 0]);
        assert_eq!(err(&bad).what, "empty name in the name table");
        // Bytes after the table, and between the flows and the table.
        let mut bad = bytes.clone();
        bad.push(0);
        assert_eq!(err(&bad).what, "bytes after the name table");
        let mut bad = bytes[..table_at].to_vec();
        bad.push(0);
        bad[8..12].copy_from_slice(&(table_at as u32 + 1).to_le_bytes());
        bad.extend_from_slice(&bytes[table_at..]);
        assert_eq!(
            err(&bad).what,
            "bytes between the last record and the name table"
        );
        // Table offsets inside the header or past the end.
        for at in [0u32, 11, bytes.len() as u32 + 1, u32::MAX] {
            let mut bad = bytes.clone();
            bad[8..12].copy_from_slice(&at.to_le_bytes());
            assert!(read_all(&bad).is_err(), "{at}");
        }
        // A name count far beyond what the bytes hold: an error, not a huge allocation.
        let mut bad = bytes[..table_at].to_vec();
        bad.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(err(&bad).what, "truncated name");
        // More flows announced than written.
        let mut bad = bytes.clone();
        bad[4..8].copy_from_slice(&4u32.to_le_bytes());
        assert_eq!(err(&bad).what, "truncated flow");
        // Fewer announced than written.
        bad[4..8].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(
            err(&bad).what,
            "bytes between the last record and the name table"
        );
        let mut bad = bytes.clone();
        bad[..4].copy_from_slice(b"LWF3");
        assert_eq!(err(&bad).what, "wrong batch magic");
    }

    #[test]
    fn no_byte_value_anywhere_makes_the_reader_panic() {
        let mut w = writer();
        let bytes = w.bytes().to_vec();
        for at in 0..bytes.len() {
            for v in [0u8, 1, 3, 4, 6, 0x7f, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[at] = v;
                let _ = read_all(&b);
            }
        }
    }

    #[test]
    fn the_first_layout_is_still_read() {
        let v1 = v1_batch(&[(flow(), &["a.example", "b.example"]), (flow(), &[])]);
        assert_eq!(read_all(&v1).unwrap(), vec![(0, flow()), (1, flow())]);
        let batch = FlowBatch::parse(&v1).unwrap();
        assert!(batch.names().is_empty());
        batch.for_each(|_, _, refs| assert_eq!(refs, None)).unwrap();
        for cut in 0..v1.len() {
            assert!(read_flows(&v1[..cut], |_, _| {}).is_err(), "cut {cut}");
            // Same error, same offset, whichever path read the fixed part.
            assert_eq!(
                read_flows(&v1[..cut], |_, _| {}),
                read_flows_by_field(&v1[..cut], |_, _| {}),
                "cut {cut}"
            );
        }
        for (at, family) in [(8, 5u8), (11, 9u8)] {
            let mut bad = v1.clone();
            bad[at] = family;
            assert_eq!(
                read_flows(&bad, |_, _| {}),
                read_flows_by_field(&bad, |_, _| {})
            );
            assert!(read_flows(&bad, |_, _| {}).is_err());
        }
    }

    #[test]
    fn dns_round_trips() {
        let answer = DnsAnswer {
            client: "10.1.5.9".parse().unwrap(),
            server: "10.1.0.2".parse().unwrap(),
            query: "fabrikam-records.fhir.azurehealthcareapis.com",
            cname_chain: vec!["fabrikam-records.privatelink.fhir.azurehealthcareapis.com"],
            addresses: vec!["10.1.2.5".parse().unwrap(), "fd00::5".parse().unwrap()],
            ttl: 30,
            timestamp_ns: 99,
        };
        let mut w = DnsBatchWriter::new();
        w.push(&answer);
        let mut seen = Vec::new();
        read_dns(w.bytes(), |_, a| seen.push(a.clone())).unwrap();
        assert_eq!(seen, vec![answer]);
        let mut bad = w.bytes().to_vec();
        bad.push(0);
        assert_eq!(
            read_dns(&bad, |_, _| {}).unwrap_err().what,
            "bytes after the last record"
        );
    }
}
