//! DNS responses: the question, the CNAME chain from it, and the addresses it ends at.
//!
//! A monitor needs to know which name a client looked up and every name on the way to
//! the address it got, because a private-endpoint lookup is recognised by its chain
//! (`service → service.privatelink.… → private address`). Only the question and answer
//! sections are read; authority and additional records are ignored.
//!
//! Names are read with compression pointers (RFC 1035 §4.1.4), hardened against the ways
//! crafted messages break parsers: a pointer must point before the label it continues
//! (so a chain of pointers always moves backwards and ends), at most [`MAX_POINTER_HOPS`]
//! pointers are followed per name, label lengths with the reserved 0b01 / 0b10 prefixes are
//! rejected, and a name may not exceed 255 bytes on the wire.
//!
//! ```
//! use linkward_decode::dns;
//!
//! // Response to "example.com A": one answer pointing back at the question's name.
//! let msg = [
//!     0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0,
//!     7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0, 0, 1, 0, 1,
//!     0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 93, 184, 216, 34,
//! ];
//! let response = dns::parse_response(&msg)?;
//! assert_eq!(response.query.as_str(), "example.com");
//! assert_eq!(response.addresses, ["93.184.216.34".parse::<std::net::IpAddr>()?]);
//! assert_eq!(response.min_ttl, 3600);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::bytes::{be16, be32, u8_at};

/// Compression pointers followed in one name before the name is rejected.
pub const MAX_POINTER_HOPS: usize = 32;

/// The longest name in presentation form: 255 wire bytes give at most 253 characters, and
/// escaped bytes take four characters each.
const NAME_CAPACITY: usize = 255;
const MAX_WIRE_NAME: usize = 255;
const HEADER_LEN: usize = 12;

const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

/// A domain name in presentation form: lower-case ASCII labels joined by `.`, without
/// the trailing dot; the root is the empty string.
///
/// Bytes that are not printable ASCII, and `.` or `\` inside a label, are written as
/// `\DDD` (decimal, as in zone files), so distinct wire names stay distinct strings.
/// The text lives in an inline buffer: a `Name` never allocates.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name {
    buf: [u8; NAME_CAPACITY],
    len: u8,
}

impl Name {
    /// The root name (the empty string).
    pub const fn root() -> Name {
        Name {
            buf: [0; NAME_CAPACITY],
            len: 0,
        }
    }

    /// A name from its presentation form: lower-cased, a trailing dot dropped. Returns
    /// `None` when the text is longer than 253 characters, has an empty label, a label over
    /// 63 characters, or a character outside printable ASCII.
    pub fn new(text: &str) -> Option<Name> {
        let text = text.strip_suffix('.').unwrap_or(text);
        if text.len() > 253 {
            return None;
        }
        let mut name = Name::root();
        if text.is_empty() {
            return Some(name);
        }
        for label in text.split('.') {
            if label.is_empty() || label.len() > 63 {
                return None;
            }
            if !name.is_empty() && !name.push(b'.') {
                return None;
            }
            for b in label.bytes() {
                if !(0x21..=0x7e).contains(&b) || !name.push(b.to_ascii_lowercase()) {
                    return None;
                }
            }
        }
        Some(name)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        // Only printable ASCII is ever pushed, so this cannot fail.
        self.buf
            .get(..usize::from(self.len))
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    /// Length of the text in bytes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True for the root name.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push(&mut self, b: u8) -> bool {
        match self.buf.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = b;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// Appends one wire byte of a label, lower-cased or escaped.
    fn push_label_byte(&mut self, b: u8) -> bool {
        if (0x21..=0x7e).contains(&b) && b != b'.' && b != b'\\' {
            self.push(b.to_ascii_lowercase())
        } else {
            self.push(b'\\')
                && self.push(b'0' + b / 100)
                && self.push(b'0' + b / 10 % 10)
                && self.push(b'0' + b % 10)
        }
    }
}

impl Default for Name {
    fn default() -> Self {
        Name::root()
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What a DNS response says about its first question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Transaction id.
    pub id: u16,
    /// Response code (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN...), the low four bits.
    pub rcode: u8,
    /// The name of the first question.
    pub query: Name,
    /// The type of the first question (1 A, 28 AAAA, 5 CNAME, 65 HTTPS...).
    pub qtype: u16,
    /// CNAME targets in chain order, starting from the query name (which is not
    /// included), whatever order the records came in.
    pub cname_chain: Vec<Name>,
    /// A and AAAA addresses of the chain's final name, in answer order; when no address
    /// record is owned by that name, every A and AAAA address of the answer section.
    pub addresses: Vec<IpAddr>,
    /// The smallest TTL of the CNAME and address records used above; 0 when none.
    pub min_ttl: u32,
}

/// Which part of the message an error is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The 12-byte header.
    Header,
    /// The question with this index.
    Question(u16),
    /// The answer record with this index.
    Answer(u16),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Header => f.write_str("header"),
            Place::Question(i) => write!(f, "question {i}"),
            Place::Answer(i) => write!(f, "answer {i}"),
        }
    }
}

/// What is wrong in a DNS message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsErrorKind {
    /// The message ends inside a field.
    #[error("message ends inside the {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// The QR bit is 0: a query, not a response.
    #[error("not a response (QR bit is 0)")]
    NotResponse,
    /// The question count is 0, so there is no name the answers are for.
    #[error("no question")]
    NoQuestion,
    /// A label length byte starts with the reserved bits 01 or 10.
    #[error("label type {byte:#04x} is reserved")]
    BadLabelType {
        /// The length byte.
        byte: u8,
    },
    /// A compression pointer does not point before the label it continues.
    #[error("compression pointer to {target} does not point backwards")]
    PointerNotBackwards {
        /// The pointer's target offset.
        target: usize,
    },
    /// More than [`MAX_POINTER_HOPS`] compression pointers in one name.
    #[error("more than {MAX_POINTER_HOPS} compression pointers in one name")]
    TooManyPointers,
    /// A name longer than 255 bytes on the wire (or than its text form can hold).
    #[error("name longer than 255 bytes")]
    NameTooLong,
    /// An A or AAAA record whose data length is not 4 or 16.
    #[error("record data length {rdlength} where {expected} was expected")]
    BadRdLength {
        /// The RDLENGTH field.
        rdlength: u16,
        /// The length the type requires.
        expected: u16,
    },
    /// A CNAME whose target name does not end where its data length says.
    #[error("CNAME target ends at {end}, record data ends at {rdata_end}")]
    RdataMismatch {
        /// Where the name ended.
        end: usize,
        /// Where the record data ends.
        rdata_end: usize,
    },
}

/// Why a DNS message could not be read: what is wrong, where in the message, and in
/// which section and record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("DNS message byte {offset}, {place}: {kind}")]
pub struct DnsError {
    offset: usize,
    place: Place,
    kind: DnsErrorKind,
}

impl DnsError {
    /// Byte offset in the message where the problem was found.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The section and record.
    pub fn place(&self) -> Place {
        self.place
    }

    /// What is wrong.
    pub fn kind(&self) -> DnsErrorKind {
        self.kind
    }
}

/// A name-reading failure before its place is known.
type NameError = (usize, DnsErrorKind);

/// Reads the name at `start`; returns it and the offset just past it in the record (past
/// the first pointer, if any).
fn read_name(msg: &[u8], start: usize) -> Result<(Name, usize), NameError> {
    let mut name = Name::root();
    let mut at = start;
    // Where the record continues after this name: set at the first pointer.
    let mut resume = None;
    // Every pointer must point before this; it moves back with each pointer followed.
    let mut limit = start;
    let mut hops = 0;
    let mut wire_len = 1;
    loop {
        let truncated = (at, DnsErrorKind::Truncated { field: "name" });
        let len = u8_at(msg, at).ok_or(truncated)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                return Ok((name, resume.unwrap_or(at + 1)));
            }
            0x00 => {
                let len = usize::from(len);
                wire_len += len + 1;
                if wire_len > MAX_WIRE_NAME {
                    return Err((at, DnsErrorKind::NameTooLong));
                }
                let label = msg.get(at + 1..at + 1 + len).ok_or(truncated)?;
                if !name.is_empty() && !name.push(b'.') {
                    return Err((at, DnsErrorKind::NameTooLong));
                }
                for &b in label {
                    if !name.push_label_byte(b) {
                        return Err((at, DnsErrorKind::NameTooLong));
                    }
                }
                at += 1 + len;
            }
            0xc0 => {
                let pointer = be16(msg, at).ok_or(truncated)?;
                let target = usize::from(pointer & 0x3fff);
                if target >= limit {
                    return Err((at, DnsErrorKind::PointerNotBackwards { target }));
                }
                hops += 1;
                if hops > MAX_POINTER_HOPS {
                    return Err((at, DnsErrorKind::TooManyPointers));
                }
                resume.get_or_insert(at + 2);
                limit = target;
                at = target;
            }
            _ => return Err((at, DnsErrorKind::BadLabelType { byte: len })),
        }
    }
}

/// One answer record the chain logic needs.
// Boxing the larger variant would cost an allocation per CNAME record to save stack
// space in a short-lived vector.
#[allow(clippy::large_enum_variant)]
enum Answer {
    Cname { owner: Name, target: Name, ttl: u32 },
    Addr { owner: Name, addr: IpAddr, ttl: u32 },
}

/// Parses a DNS response carried over UDP, or over TCP once the 2-byte length prefix is
/// removed (see [`parse_tcp_stream_message`]).
///
/// Records of types other than A, AAAA and CNAME, and records of classes other than IN,
/// are skipped. Any inconsistency (a short message, a record count beyond the bytes, a
/// bad name) is an error rather than a partial result, since a partial chain would be
/// reported as a complete one.
pub fn parse_response(msg: &[u8]) -> Result<Response, DnsError> {
    let err = |offset, place, kind| DnsError {
        offset,
        place,
        kind,
    };
    if msg.len() < HEADER_LEN {
        return Err(err(
            msg.len(),
            Place::Header,
            DnsErrorKind::Truncated { field: "header" },
        ));
    }
    let header = |at| be16(msg, at).unwrap_or(0);
    let id = header(0);
    let flags = header(2);
    let (qdcount, ancount) = (header(4), header(6));
    if flags & 0x8000 == 0 {
        return Err(err(2, Place::Header, DnsErrorKind::NotResponse));
    }
    if qdcount == 0 {
        return Err(err(4, Place::Header, DnsErrorKind::NoQuestion));
    }

    let mut at = HEADER_LEN;
    let mut first = None;
    for q in 0..qdcount {
        let place = Place::Question(q);
        let (name, next) = read_name(msg, at).map_err(|(o, k)| err(o, place, k))?;
        let qtype = be16(msg, next).ok_or_else(|| {
            err(
                next,
                place,
                DnsErrorKind::Truncated {
                    field: "question type",
                },
            )
        })?;
        be16(msg, next + 2).ok_or_else(|| {
            err(
                next + 2,
                place,
                DnsErrorKind::Truncated {
                    field: "question class",
                },
            )
        })?;
        first.get_or_insert((name, qtype));
        at = next + 4;
    }
    let Some((query, qtype)) = first else {
        return Err(err(4, Place::Header, DnsErrorKind::NoQuestion));
    };

    let mut answers = Vec::new();
    for a in 0..ancount {
        let place = Place::Answer(a);
        let (owner, next) = read_name(msg, at).map_err(|(o, k)| err(o, place, k))?;
        let fixed = |off: usize, field| {
            be16(msg, next + off)
                .ok_or_else(|| err(next + off, place, DnsErrorKind::Truncated { field }))
        };
        let rtype = fixed(0, "record type")?;
        let class = fixed(2, "record class")? & 0x7fff;
        let ttl = be32(msg, next + 4).ok_or_else(|| {
            err(
                next + 4,
                place,
                DnsErrorKind::Truncated {
                    field: "record TTL",
                },
            )
        })?;
        let rdlength = fixed(8, "record data length")?;
        let rdata_start = next + 10;
        let rdata_end = rdata_start + usize::from(rdlength);
        let rdata = msg.get(rdata_start..rdata_end).ok_or_else(|| {
            err(
                rdata_start,
                place,
                DnsErrorKind::Truncated {
                    field: "record data",
                },
            )
        })?;
        at = rdata_end;
        if class != CLASS_IN {
            continue;
        }
        let bad_len = |expected| {
            err(
                next + 8,
                place,
                DnsErrorKind::BadRdLength { rdlength, expected },
            )
        };
        match rtype {
            TYPE_A => {
                let octets: [u8; 4] = rdata.try_into().map_err(|_| bad_len(4))?;
                answers.push(Answer::Addr {
                    owner,
                    addr: IpAddr::V4(Ipv4Addr::from(octets)),
                    ttl,
                });
            }
            TYPE_AAAA => {
                let octets: [u8; 16] = rdata.try_into().map_err(|_| bad_len(16))?;
                answers.push(Answer::Addr {
                    owner,
                    addr: IpAddr::V6(Ipv6Addr::from(octets)),
                    ttl,
                });
            }
            TYPE_CNAME => {
                let (target, end) =
                    read_name(msg, rdata_start).map_err(|(o, k)| err(o, place, k))?;
                if end != rdata_end {
                    return Err(err(
                        rdata_start,
                        place,
                        DnsErrorKind::RdataMismatch { end, rdata_end },
                    ));
                }
                answers.push(Answer::Cname { owner, target, ttl });
            }
            _ => {}
        }
    }

    let (cname_chain, addresses, min_ttl) = follow_chain(&query, &answers);
    Ok(Response {
        id,
        rcode: (flags & 0x000f) as u8,
        query,
        qtype,
        cname_chain,
        addresses,
        min_ttl,
    })
}

/// Follows CNAMEs from `query`, each record used at most once (so a CNAME loop ends),
/// then collects the addresses of the final name.
fn follow_chain(query: &Name, answers: &[Answer]) -> (Vec<Name>, Vec<IpAddr>, u32) {
    let mut used = vec![false; answers.len()];
    let mut chain = Vec::new();
    let mut min_ttl = None::<u32>;
    let mut current = *query;
    loop {
        let next = answers
            .iter()
            .zip(used.iter_mut())
            .find_map(|(a, used)| match a {
                Answer::Cname { owner, target, ttl } if !*used && *owner == current => {
                    *used = true;
                    Some((*target, *ttl))
                }
                _ => None,
            });
        let Some((target, ttl)) = next else { break };
        chain.push(target);
        min_ttl = Some(min_ttl.map_or(ttl, |m| m.min(ttl)));
        current = target;
    }

    let mut addresses = Vec::new();
    let mut any_owner = false;
    for answer in answers {
        if let Answer::Addr { owner, addr, ttl } = answer
            && *owner == current
        {
            any_owner = true;
            addresses.push(*addr);
            min_ttl = Some(min_ttl.map_or(*ttl, |m| m.min(*ttl)));
        }
    }
    if !any_owner {
        for answer in answers {
            if let Answer::Addr { addr, ttl, .. } = answer {
                addresses.push(*addr);
                min_ttl = Some(min_ttl.map_or(*ttl, |m| m.min(*ttl)));
            }
        }
    }
    (chain, addresses, min_ttl.unwrap_or(0))
}

/// The first DNS message of a TCP stream's bytes: the message after the 2-byte length
/// prefix (RFC 1035 §4.2.2), or `None` until the whole message is in `payload`.
pub fn parse_tcp_stream_message(payload: &[u8]) -> Option<&[u8]> {
    let len = usize::from(be16(payload, 0)?);
    payload.get(2..2 + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header of a response with the given counts: id 0xbeef, QR=1 RD RA, rcode 0.
    fn header(qd: u16, an: u16) -> Vec<u8> {
        let mut m = vec![0xbe, 0xef, 0x81, 0x80];
        for c in [qd, an, 0, 0] {
            m.extend_from_slice(&c.to_be_bytes());
        }
        m
    }

    fn rr(m: &mut Vec<u8>, owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) {
        m.extend_from_slice(owner);
        m.extend_from_slice(&rtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m.extend_from_slice(&ttl.to_be_bytes());
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(rdata);
    }

    /// A three-level chain, answers out of order, with compression pointers everywhere:
    /// `ws-fhir.fhir.azurehealthcareapis.com` → `ws-fhir.privatelink.fhir.azurehealthcareapis.com`
    /// → `pe.example.net` → 10.1.2.3.
    fn chain_message() -> Vec<u8> {
        let mut m = header(1, 4);
        // 12: question name
        m.extend_from_slice(b"\x07ws-fhir\x04fhir\x13azurehealthcareapis\x03com\x00");
        m.extend_from_slice(&[0, 1, 0, 1]);
        // Answer 0 (A for the final name) first, to check order independence; its owner
        // is written later, so it is spelt out here: pe.example.net at 54.
        let a_owner_at = m.len();
        assert_eq!(a_owner_at, 54);
        rr(
            &mut m,
            b"\x02pe\x07example\x03net\x00",
            1,
            60,
            &[10, 1, 2, 3],
        );
        // Answer 1: CNAME query -> ws-fhir.privatelink.<fhir.azure...> (pointer to 20).
        rr(
            &mut m,
            &[0xc0, 12],
            5,
            300,
            b"\x07ws-fhir\x0bprivatelink\xc0\x14",
        );
        let privatelink_at = m.len() - 22;
        assert_eq!(privatelink_at, 96);
        // Answer 2: CNAME privatelink name -> pe.example.net (pointer to 54).
        rr(&mut m, &[0xc0, 96], 5, 120, &[0xc0, 54]);
        // Answer 3: other.example.net A, unrelated: must not be collected.
        rr(&mut m, b"\x05other\xc0\x39", 1, 5, &[192, 0, 2, 1]);
        m
    }

    #[test]
    fn three_level_chain_out_of_order() {
        let r = parse_response(&chain_message());
        let expected = Response {
            id: 0xbeef,
            rcode: 0,
            query: Name::new("ws-fhir.fhir.azurehealthcareapis.com").unwrap_or_default(),
            qtype: 1,
            cname_chain: vec![
                Name::new("ws-fhir.privatelink.fhir.azurehealthcareapis.com").unwrap_or_default(),
                Name::new("pe.example.net").unwrap_or_default(),
            ],
            addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))],
            min_ttl: 60,
        };
        assert_eq!(r, Ok(expected));
    }

    #[test]
    fn addresses_fall_back_to_all_when_chain_end_has_none() {
        let mut m = header(1, 2);
        m.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
        rr(&mut m, b"\x01b\x00", 1, 7, &[1, 1, 1, 1]);
        rr(
            &mut m,
            b"\x01c\x00",
            28,
            9,
            &[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        );
        let r = parse_response(&m).map(|r| (r.cname_chain.len(), r.addresses, r.min_ttl));
        assert_eq!(
            r,
            Ok((
                0,
                vec![
                    IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)),
                    "2001:db8::1"
                        .parse()
                        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                ],
                7
            ))
        );
    }

    #[test]
    fn cname_loop_terminates() {
        let mut m = header(1, 2);
        m.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
        rr(&mut m, &[0xc0, 12], 5, 10, b"\x01b\x00");
        rr(&mut m, b"\x01b\x00", 5, 10, &[0xc0, 12]);
        let r = parse_response(&m).map(|r| {
            r.cname_chain
                .iter()
                .map(|n| n.as_str().to_owned())
                .collect::<Vec<_>>()
        });
        assert_eq!(r, Ok(vec!["b".to_owned(), "a".to_owned()]));
    }

    #[test]
    fn compression_loop_is_rejected() {
        // The question's name is a pointer to itself.
        let mut m = header(1, 0);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(
            parse_response(&m),
            Err(DnsError {
                offset: 12,
                place: Place::Question(0),
                kind: DnsErrorKind::PointerNotBackwards { target: 12 },
            })
        );
        // Two pointers that bounce between each other: the second points forward of the
        // first one's target.
        let mut m = header(1, 1);
        m.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
        // Answer owner at 19: label "x" then pointer to 19 (itself, via a label).
        m.extend_from_slice(&[1, b'x', 0xc0, 19]);
        let r = parse_response(&m).map_err(|e| (e.offset(), e.place(), e.kind()));
        assert_eq!(
            r,
            Err((
                21,
                Place::Answer(0),
                DnsErrorKind::PointerNotBackwards { target: 19 }
            ))
        );
    }

    #[test]
    fn bad_label_and_truncation() {
        let mut m = header(1, 0);
        m.extend_from_slice(&[0x41, b'a', 0, 0, 1, 0, 1]);
        assert_eq!(
            parse_response(&m).map_err(|e| e.kind()),
            Err(DnsErrorKind::BadLabelType { byte: 0x41 })
        );
        let mut m = header(1, 0);
        m.extend_from_slice(&[5, b'a', b'b']);
        assert_eq!(
            parse_response(&m).map_err(|e| e.to_string()),
            Err("DNS message byte 12, question 0: message ends inside the name".to_owned())
        );
        let m = chain_message();
        assert_eq!(
            parse_response(&m[..m.len() - 1]).map_err(|e| (e.place(), e.kind())),
            Err((
                Place::Answer(3),
                DnsErrorKind::Truncated {
                    field: "record data"
                }
            ))
        );
    }

    #[test]
    fn query_and_long_names() {
        let mut m = header(1, 0);
        m[2] = 0x01;
        m.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
        assert_eq!(
            parse_response(&m).map_err(|e| e.kind()),
            Err(DnsErrorKind::NotResponse)
        );
        // 5 labels of 63 bytes: 320 wire bytes.
        let mut m = header(1, 0);
        for _ in 0..5 {
            m.push(63);
            m.extend_from_slice(&[b'a'; 63]);
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(
            parse_response(&m).map_err(|e| (e.offset(), e.kind())),
            Err((204, DnsErrorKind::NameTooLong))
        );
    }

    #[test]
    fn names_escape_and_lowercase() {
        let mut m = header(1, 0);
        m.extend_from_slice(b"\x04A.b\xff\x03COM\x00\x00\x01\x00\x01");
        let r = parse_response(&m).map(|r| r.query.as_str().to_owned());
        assert_eq!(r, Ok("a\\046b\\255.com".to_owned()));
        assert_eq!(Name::new("Example.COM."), Name::new("example.com"));
        assert_eq!(Name::new("a..b"), None);
        assert_eq!(Name::new("").map(|n| n.is_empty()), Some(true));
    }

    #[test]
    fn tcp_prefix() {
        assert_eq!(
            parse_tcp_stream_message(&[0, 3, 1, 2, 3, 4]),
            Some(&[1, 2, 3][..])
        );
        assert_eq!(parse_tcp_stream_message(&[0, 3, 1, 2]), None);
        assert_eq!(parse_tcp_stream_message(&[0]), None);
    }
}
