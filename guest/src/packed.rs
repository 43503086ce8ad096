//! The packed batch layouts of the WIT contract (`evaluate-flows-packed`,
//! `evaluate-dns-packed`): a writer for hosts and a validating reader for modules.
//!
//! A batch is one byte list, so crossing into the sandbox is a single copy instead of
//! lowering a record, an option and a string per field. The reader borrows names from the
//! batch and checks every length before it reads, so a malformed batch is an error, never
//! a panic or an out-of-bounds read.

use crate::record::{DnsAnswer, Flow};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const FLOW_MAGIC: &[u8; 4] = b"LWF1";
pub const DNS_MAGIC: &[u8; 4] = b"LWD1";

const FLAG_FLOW_LOG: u8 = 1;
const FLAG_DENIED: u8 = 2;

/// Longest string a packed batch can carry; longer names are cut at a character boundary.
pub const MAX_STR: usize = u16::MAX as usize;
/// Most CNAMEs or addresses one record can carry.
pub const MAX_LIST: usize = u8::MAX as usize;

/// Builds a packed flow batch. Reuse one writer across batches: `clear` keeps the buffer.
#[derive(Clone, Debug)]
pub struct FlowBatchWriter {
    buf: Vec<u8>,
    count: u32,
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
        FlowBatchWriter { buf, count: 0 }
    }

    pub fn clear(&mut self) {
        self.buf.truncate(8);
        self.count = 0;
        self.patch_count();
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends one flow; `cname_chain` is carried for module authors who want it.
    pub fn push(&mut self, flow: &Flow<'_>, cname_chain: &[&str]) {
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
        put_str(b, flow.resolved_name);
        put_str(b, flow.sni);
        put_str(b, flow.http_host);
        let chain = &cname_chain[..cname_chain.len().min(MAX_LIST)];
        b.push(chain.len() as u8);
        for c in chain {
            put_str(b, Some(c));
        }
        self.count += 1;
        self.patch_count();
    }

    fn patch_count(&mut self) {
        if let Some(slot) = self.buf.get_mut(4..8) {
            slot.copy_from_slice(&self.count.to_le_bytes());
        }
    }

    pub fn bytes(&self) -> &[u8] {
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
    let s = s.unwrap_or("");
    let mut end = s.len().min(MAX_STR);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    b.extend_from_slice(&(end as u16).to_le_bytes());
    b.extend_from_slice(&s.as_bytes()[..end]);
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

/// Reads a packed flow batch, calling `each(index, flow)` per flow.
pub fn read_flows<'a>(
    batch: &'a [u8],
    mut each: impl FnMut(u32, &Flow<'a>),
) -> Result<(), PackedError> {
    let mut c = Cursor {
        bytes: batch,
        at: 0,
    };
    let count = c.header(FLOW_MAGIC)?;
    for index in 0..count {
        // The fixed part comes from one bounds-checked 72-byte array instead of twelve
        // checked reads (inside the sandbox each check is a compare and branch the
        // optimizer cannot merge), and the flow is built once, in place, from scalars:
        // building it in pieces and moving it costs more than reading it.
        let start = c.at;
        let Some(h) = c
            .bytes
            .get(start..)
            .and_then(|rest| rest.first_chunk::<FLOW_FIXED>())
        else {
            return Err(truncated_flow(&mut c));
        };
        c.at = start + FLOW_FIXED;
        let [src_family, protocol, flags, dst_family] = bytes_at::<4>(h, 0);
        let dst_family = match dst_family {
            0 => src_family,
            f => f,
        };
        let src = addr_from(src_family, bytes_at(h, 8), start + 8)?;
        let dst = addr_from(dst_family, bytes_at(h, 24), start + 24)?;
        let (resolved_name, sni, http_host) = read_names(&mut c)?;
        let flow = Flow {
            src,
            dst,
            src_port: u16::from_le_bytes(bytes_at(h, 4)),
            dst_port: u16::from_le_bytes(bytes_at(h, 6)),
            protocol,
            from_flow_log: flags & FLAG_FLOW_LOG != 0,
            denied_by_nsg: flags & FLAG_DENIED != 0,
            resolved_name,
            sni,
            http_host,
            packets: u64::from_le_bytes(bytes_at(h, 40)),
            bytes: u64::from_le_bytes(bytes_at(h, 48)),
            first_seen_ns: u64::from_le_bytes(bytes_at(h, 56)),
            last_seen_ns: u64::from_le_bytes(bytes_at(h, 64)),
        };
        each(index, &flow);
    }
    c.finish()
}

/// The flow reader before the fixed-part fast path, kept to check that both agree.
#[cfg(test)]
fn read_flows_by_field<'a>(
    batch: &'a [u8],
    mut each: impl FnMut(u32, &Flow<'a>),
) -> Result<(), PackedError> {
    let mut c = Cursor {
        bytes: batch,
        at: 0,
    };
    let count = c.header(FLOW_MAGIC)?;
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

    #[test]
    fn flows_round_trip_and_every_truncation_is_an_error() {
        let mut w = FlowBatchWriter::new();
        w.push(&flow(), &["a.example", "b.example"]);
        w.push(&flow(), &[]);
        let mut seen = Vec::new();
        read_flows(w.bytes(), |i, f| seen.push((i, f.clone()))).unwrap();
        assert_eq!(seen, vec![(0, flow()), (1, flow())]);
        for cut in 0..w.bytes().len() {
            assert!(
                read_flows(&w.bytes()[..cut], |_, _| {}).is_err(),
                "cut {cut}"
            );
            // Same error, same offset, whichever path read the fixed part.
            assert_eq!(
                read_flows(&w.bytes()[..cut], |_, _| {}),
                read_flows_by_field(&w.bytes()[..cut], |_, _| {}),
                "cut {cut}"
            );
        }
        for (at, family) in [(8, 5u8), (11, 9u8)] {
            let mut bad = w.bytes().to_vec();
            bad[at] = family;
            assert_eq!(
                read_flows(&bad, |_, _| {}),
                read_flows_by_field(&bad, |_, _| {})
            );
            assert!(read_flows(&bad, |_, _| {}).is_err());
        }
        w.clear();
        assert!(w.is_empty());
        read_flows(w.bytes(), |_, _| panic!("no flows")).unwrap();
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
