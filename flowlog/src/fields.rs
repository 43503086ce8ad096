//! Parsing of the comma-separated tuple strings of the Azure formats and of
//! the single values they (and JSON lines) are made of.
//!
//! Everything here works on borrowed text and allocates only when a tuple is
//! malformed, so a well-formed tuple costs no allocation beyond reference
//! count bumps.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::tuple::{
    Decision, Direction, Encryption, FlowState, FlowTuple, Position, SourceFormat, TupleProblem,
};

/// Epoch values at or above this are milliseconds, below it seconds.
///
/// 10^11 seconds is in the year 5138, 10^11 milliseconds is in March 1973:
/// no log of either kind is near the boundary.
pub(crate) const MILLIS_THRESHOLD: u64 = 100_000_000_000;

/// What the tuples of one group share: taken from the enclosing objects once,
/// cloned (reference counts only) into every tuple.
#[derive(Clone, Debug, Default)]
pub(crate) struct GroupContext {
    pub version: Option<u32>,
    pub rule: Option<Arc<str>>,
    pub acl_id: Option<Arc<str>>,
    pub mac: Option<Arc<str>>,
    pub resource_id: Option<Arc<str>>,
}

/// Longest value quoted back in a [`TupleProblem::Invalid`].
const MAX_QUOTED: usize = 48;

pub(crate) fn invalid(field: &'static str, value: &str, why: &'static str) -> TupleProblem {
    TupleProblem::Invalid {
        field,
        value: crate::tuple::clip(value, MAX_QUOTED),
        why,
    }
}

/// Splits `text` into exactly `N` comma-separated fields.
///
/// Scans bytes rather than using `str::split(',')`, whose general pattern search
/// costs a comparison call per field; a comma is ASCII, so every cut is on a character
/// boundary.
fn split_exact<const N: usize>(text: &str) -> Result<[&str; N], TupleProblem> {
    let mut fields = [""; N];
    let mut found = 0;
    let mut start = 0;
    for (at, &byte) in text.as_bytes().iter().enumerate() {
        if byte == b',' {
            if let Some(place) = fields.get_mut(found) {
                *place = text.get(start..at).unwrap_or_default();
            }
            found += 1;
            start = at + 1;
        }
    }
    if let Some(place) = fields.get_mut(found) {
        *place = text.get(start..).unwrap_or_default();
    }
    found += 1;
    if found == N {
        Ok(fields)
    } else {
        Err(TupleProblem::FieldCount { expected: N, found })
    }
}

fn required<'t>(field: &'static str, text: &'t str) -> Result<&'t str, TupleProblem> {
    if text.is_empty() {
        Err(TupleProblem::Missing { field })
    } else {
        Ok(text)
    }
}

/// Converts an epoch value in seconds or milliseconds (decided by
/// magnitude) to nanoseconds; `None` when it does not fit in 64 bits.
pub(crate) fn epoch_to_ns(value: u64) -> Option<u64> {
    if value >= MILLIS_THRESHOLD {
        value.checked_mul(1_000_000)
    } else {
        value.checked_mul(1_000_000_000)
    }
}

fn parse_time(text: &str) -> Result<u64, TupleProblem> {
    let text = required("time", text)?;
    let value: u64 = text
        .parse()
        .map_err(|_| invalid("time", text, "an epoch time in seconds or milliseconds"))?;
    epoch_to_ns(value).ok_or_else(|| invalid("time", text, "a time before the year 2554"))
}

fn parse_ip(field: &'static str, text: &str) -> Result<IpAddr, TupleProblem> {
    let text = required(field, text)?;
    text.parse()
        .map_err(|_| invalid(field, text, "an IPv4 or IPv6 address"))
}

fn parse_port(field: &'static str, text: &str) -> Result<u16, TupleProblem> {
    let text = required(field, text)?;
    text.parse()
        .map_err(|_| invalid(field, text, "a port number from 0 to 65535"))
}

fn parse_counter(field: &'static str, text: &str) -> Result<Option<u64>, TupleProblem> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| invalid(field, text, "a non-negative integer"))
}

fn parse_direction(text: &str) -> Result<Direction, TupleProblem> {
    match required("direction", text)? {
        "I" => Ok(Direction::Inbound),
        "O" => Ok(Direction::Outbound),
        other => Err(invalid("direction", other, "I or O")),
    }
}

/// The four counters shared by VNet tuples and NSG version 2 tuples.
fn parse_counters(fields: [&str; 4]) -> Result<[Option<u64>; 4], TupleProblem> {
    let [ps, bs, pr, br] = fields;
    Ok([
        parse_counter("packets_sent", ps)?,
        parse_counter("bytes_sent", bs)?,
        parse_counter("packets_received", pr)?,
        parse_counter("bytes_received", br)?,
    ])
}

/// Parses a VNet flow log tuple:
/// `time,src,dst,sport,dport,protocol,direction,state,encryption,ps,bs,pr,br`.
///
/// A well-formed tuple is read in one pass by [`fast_vnet_tuple`]; anything it does not
/// take (a malformed tuple, or a form it leaves to the standard parsers) goes through
/// the field-by-field path, which says exactly what is wrong.
#[cfg(test)]
pub(crate) fn parse_vnet_tuple(
    text: &str,
    ctx: &GroupContext,
    position: Position,
) -> Result<FlowTuple, TupleProblem> {
    parse_vnet_values(text).map(|values| values.into_tuple(ctx, position))
}

/// The values of a VNet tuple (see [`parse_vnet_tuple`]), to be written into a tuple.
pub(crate) fn parse_vnet_values(text: &str) -> Result<VnetValues, TupleProblem> {
    match fast_vnet_values(text) {
        Some(values) => Ok(values),
        None => checked_vnet_values(text),
    }
}

/// A cursor over the bytes of a tuple for [`fast_vnet_tuple`]. Every method returns
/// `None` for anything but the plain form of its field, leaving the verdict to the
/// field-by-field parser.
struct Cursor<'t> {
    text: &'t str,
    at: usize,
}

impl<'t> Cursor<'t> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    /// Consumes the comma that ends a field.
    fn comma(&mut self) -> Option<()> {
        (self.peek()? == b',').then(|| self.at += 1)
    }

    /// Decimal digits up to the next comma (or the end), at most `max`.
    fn number(&mut self, max: u64) -> Option<u64> {
        let start = self.at;
        let mut value = 0u64;
        while let Some(byte) = self.peek().filter(|&b| b != b',') {
            let digit = byte.wrapping_sub(b'0');
            if digit > 9 {
                return None;
            }
            value = value.checked_mul(10)?.checked_add(u64::from(digit))?;
            self.at += 1;
        }
        (self.at > start && value <= max).then_some(value)
    }

    /// A counter: empty, or a number.
    fn counter(&mut self) -> Option<Option<u64>> {
        match self.peek() {
            None | Some(b',') => Some(None),
            Some(_) => self.number(u64::MAX).map(Some),
        }
    }

    /// The text up to the next comma (or the end).
    fn field(&mut self) -> Option<&'t str> {
        let rest = self.text.get(self.at..)?;
        let len = rest.bytes().position(|b| b == b',').unwrap_or(rest.len());
        self.at += len;
        rest.get(..len)
    }

    /// One byte followed by a comma.
    fn letter(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        self.comma()?;
        Some(byte)
    }

    /// A dotted-quad IPv4 address without leading zeros, or else any address the
    /// standard parser takes (IPv6).
    fn address(&mut self) -> Option<IpAddr> {
        let start = self.at;
        if let Some(v4) = self.ipv4() {
            return Some(IpAddr::V4(v4));
        }
        self.at = start;
        self.field()?.parse().ok()
    }

    fn ipv4(&mut self) -> Option<Ipv4Addr> {
        let mut octets = [0u8; 4];
        for (index, octet) in octets.iter_mut().enumerate() {
            if index > 0 {
                (self.peek()? == b'.').then_some(())?;
                self.at += 1;
            }
            let start = self.at;
            let mut value = 0u32;
            while let Some(digit) = self
                .peek()
                .map(|b| b.wrapping_sub(b'0'))
                .filter(|&d| d <= 9)
            {
                value = value * 10 + u32::from(digit);
                self.at += 1;
                if self.at - start > 3 {
                    return None;
                }
            }
            let len = self.at - start;
            let leading_zero = len > 1 && self.text.as_bytes().get(start) == Some(&b'0');
            if len == 0 || leading_zero {
                return None;
            }
            *octet = u8::try_from(value).ok()?;
        }
        (matches!(self.peek(), Some(b','))).then_some(Ipv4Addr::from(octets))
    }
}

/// Reads a well-formed VNet tuple in one pass over its bytes, without splitting it
/// into fields first: that and the separate parse of each field were most of the cost
/// of reading a flow log. Returns `None` for anything it does not take, so that
/// [`checked_vnet_tuple`] decides; what it returns is exactly what that would.
fn fast_vnet_values(text: &str) -> Option<VnetValues> {
    let mut c = Cursor { text, at: 0 };
    let time_ns = epoch_to_ns(c.number(u64::MAX)?)?;
    c.comma()?;
    let src = c.address()?;
    c.comma()?;
    let dst = c.address()?;
    c.comma()?;
    let src_port = u16::try_from(c.number(u64::from(u16::MAX))?).ok()?;
    c.comma()?;
    let dst_port = u16::try_from(c.number(u64::from(u16::MAX))?).ok()?;
    c.comma()?;
    let protocol = u8::try_from(c.number(u64::from(u8::MAX))?).ok()?;
    c.comma()?;
    let direction = match c.letter()? {
        b'I' => Direction::Inbound,
        b'O' => Direction::Outbound,
        _ => return None,
    };
    let state = match c.letter()? {
        b'B' => FlowState::Begin,
        b'C' => FlowState::Continuing,
        b'E' => FlowState::End,
        b'D' => FlowState::Denied,
        _ => return None,
    };
    let encryption = c.field().filter(|e| !e.is_empty())?;
    c.comma()?;
    let packets_sent = c.counter()?;
    c.comma()?;
    let bytes_sent = c.counter()?;
    c.comma()?;
    let packets_received = c.counter()?;
    c.comma()?;
    let bytes_received = c.counter()?;
    if c.at != text.len() {
        return None;
    }
    Some(VnetValues {
        time_ns,
        src,
        dst,
        src_port,
        dst_port,
        protocol,
        direction,
        state,
        encryption: Encryption::from_field(encryption),
        counters: [packets_sent, bytes_sent, packets_received, bytes_received],
    })
}

/// The values of a VNet tuple, however they were read.
pub(crate) struct VnetValues {
    time_ns: u64,
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    protocol: u8,
    direction: Direction,
    state: FlowState,
    encryption: Encryption,
    /// Packets and bytes sent, then packets and bytes received.
    counters: [Option<u64>; 4],
}

impl VnetValues {
    /// Makes `tuple` (the previous tuple lent to the reader's caller) this tuple. The
    /// shared strings are cloned only when the group changed, not for every tuple.
    pub(crate) fn write_into(self, tuple: &mut FlowTuple, ctx: &GroupContext, position: Position) {
        fn share(slot: &mut Option<Arc<str>>, value: &Option<Arc<str>>) {
            let same = match (&*slot, value) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if !same {
                slot.clone_from(value);
            }
        }
        let [packets_sent, bytes_sent, packets_received, bytes_received] = self.counters;
        tuple.source = SourceFormat::VnetFlowLog;
        tuple.flow_log_version = ctx.version;
        tuple.time_ns = self.time_ns;
        tuple.end_time_ns = None;
        tuple.src = self.src;
        tuple.dst = self.dst;
        tuple.src_port = self.src_port;
        tuple.dst_port = self.dst_port;
        tuple.protocol = self.protocol;
        tuple.direction = self.direction;
        tuple.state = Some(self.state);
        tuple.decision = self.decision();
        tuple.encryption = Some(self.encryption);
        tuple.packets_sent = packets_sent;
        tuple.bytes_sent = bytes_sent;
        tuple.packets_received = packets_received;
        tuple.bytes_received = bytes_received;
        share(&mut tuple.rule, &ctx.rule);
        share(&mut tuple.acl_id, &ctx.acl_id);
        share(&mut tuple.mac, &ctx.mac);
        share(&mut tuple.resource_id, &ctx.resource_id);
        tuple.name = None;
        tuple.sni = None;
        tuple.http_host = None;
        tuple.position = position;
    }

    fn decision(&self) -> Decision {
        if self.state == FlowState::Denied {
            Decision::Denied
        } else {
            Decision::Allowed
        }
    }

    pub(crate) fn into_tuple(self, ctx: &GroupContext, position: Position) -> FlowTuple {
        let decision = self.decision();
        let [packets_sent, bytes_sent, packets_received, bytes_received] = self.counters;
        FlowTuple {
            source: SourceFormat::VnetFlowLog,
            flow_log_version: ctx.version,
            time_ns: self.time_ns,
            end_time_ns: None,
            src: self.src,
            dst: self.dst,
            src_port: self.src_port,
            dst_port: self.dst_port,
            protocol: self.protocol,
            direction: self.direction,
            state: Some(self.state),
            decision,
            encryption: Some(self.encryption),
            packets_sent,
            bytes_sent,
            packets_received,
            bytes_received,
            rule: ctx.rule.clone(),
            acl_id: ctx.acl_id.clone(),
            mac: ctx.mac.clone(),
            resource_id: ctx.resource_id.clone(),
            name: None,
            sni: None,
            http_host: None,
            position,
        }
    }
}

/// Parses a VNet tuple field by field, naming the first field that is wrong.
fn checked_vnet_values(text: &str) -> Result<VnetValues, TupleProblem> {
    let [
        time,
        src,
        dst,
        sport,
        dport,
        proto,
        dir,
        state,
        enc,
        ps,
        bs,
        pr,
        br,
    ] = split_exact::<13>(text)?;
    let protocol = {
        let proto = required("protocol", proto)?;
        proto
            .parse::<u8>()
            .map_err(|_| invalid("protocol", proto, "an IANA protocol number from 0 to 255"))?
    };
    let state = match required("state", state)? {
        "B" => FlowState::Begin,
        "C" => FlowState::Continuing,
        "E" => FlowState::End,
        "D" => FlowState::Denied,
        other => return Err(invalid("state", other, "B, C, E or D")),
    };
    let encryption = Encryption::from_field(required("encryption", enc)?);
    let counters = parse_counters([ps, bs, pr, br])?;
    // Fields are checked in this order, so the first wrong one is the one named.
    Ok(VnetValues {
        time_ns: parse_time(time)?,
        src: parse_ip("src", src)?,
        dst: parse_ip("dst", dst)?,
        src_port: parse_port("src_port", sport)?,
        dst_port: parse_port("dst_port", dport)?,
        protocol,
        direction: parse_direction(dir)?,
        state,
        encryption,
        counters,
    })
}

/// Parses an NSG flow log tuple of the given version (1 or 2):
/// `time,src,dst,sport,dport,T|U,I|O,A|D` and, in version 2,
/// `,B|C|E,ps,bs,pr,br`.
pub(crate) fn parse_nsg_tuple(
    text: &str,
    ctx: &GroupContext,
    position: Position,
) -> Result<FlowTuple, TupleProblem> {
    let (head, tail) = if ctx.version == Some(1) {
        let head = split_exact::<8>(text)?;
        (head, None)
    } else {
        let [a, b, c, d, e, f, g, h, state, ps, bs, pr, br] = split_exact::<13>(text)?;
        ([a, b, c, d, e, f, g, h], Some((state, [ps, bs, pr, br])))
    };
    let [time, src, dst, sport, dport, proto, dir, decision] = head;
    let protocol = match required("protocol", proto)? {
        "T" => 6,
        "U" => 17,
        other => return Err(invalid("protocol", other, "T or U")),
    };
    let decision = match required("decision", decision)? {
        "A" => Decision::Allowed,
        "D" => Decision::Denied,
        other => return Err(invalid("decision", other, "A or D")),
    };
    let (state, counters) = match tail {
        None => (None, [None; 4]),
        Some((state, counters)) => {
            let state = match required("state", state)? {
                "B" => FlowState::Begin,
                "C" => FlowState::Continuing,
                "E" => FlowState::End,
                other => return Err(invalid("state", other, "B, C or E")),
            };
            (Some(state), parse_counters(counters)?)
        }
    };
    let [packets_sent, bytes_sent, packets_received, bytes_received] = counters;
    Ok(FlowTuple {
        source: SourceFormat::NsgFlowLog,
        flow_log_version: ctx.version,
        time_ns: parse_time(time)?,
        end_time_ns: None,
        src: parse_ip("src", src)?,
        dst: parse_ip("dst", dst)?,
        src_port: parse_port("src_port", sport)?,
        dst_port: parse_port("dst_port", dport)?,
        protocol,
        direction: parse_direction(dir)?,
        state,
        decision,
        encryption: None,
        packets_sent,
        bytes_sent,
        packets_received,
        bytes_received,
        rule: ctx.rule.clone(),
        acl_id: None,
        mac: ctx.mac.clone(),
        resource_id: ctx.resource_id.clone(),
        name: None,
        sni: None,
        http_host: None,
        position,
    })
}

/// Maps a protocol name (case-insensitive) to its IANA number.
pub(crate) fn protocol_by_name(name: &str) -> Option<u8> {
    const NAMES: &[(&str, u8)] = &[
        ("icmp", 1),
        ("igmp", 2),
        ("tcp", 6),
        ("udp", 17),
        ("gre", 47),
        ("esp", 50),
        ("ah", 51),
        ("icmpv6", 58),
        ("ipv6-icmp", 58),
        ("sctp", 132),
    ];
    NAMES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|&(_, number)| number)
}

/// Parses an RFC 3339 timestamp (`2024-05-01T10:00:00.5Z`,
/// `2024-05-01T12:00:00+02:00`) to nanoseconds since the Unix epoch.
///
/// Times before 1970 do not fit the tuple's unsigned time and are refused.
pub(crate) fn parse_rfc3339(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<u64> {
        let digits = bytes.get(from..from + len)?;
        digits.iter().try_fold(0u64, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
        })
    };
    let sep = |at: usize, allowed: &[u8]| bytes.get(at).is_some_and(|b| allowed.contains(b));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0u64;
    if sep(at, b".") {
        at += 1;
        let start = at;
        let mut scale = 100_000_000u64;
        while let Some(&b) = bytes.get(at).filter(|b| b.is_ascii_digit()) {
            nanos += u64::from(b - b'0') * scale;
            scale /= 10;
            at += 1;
        }
        if at == start {
            return None;
        }
    }
    let offset_secs: i64 = match bytes.get(at..)? {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), ..] if bytes.len() == at + 6 && sep(at + 3, b":") => {
            let hours = num(at + 1, 2)?;
            let minutes = num(at + 4, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let value = i64::try_from(hours * 3600 + minutes * 60).ok()?;
            if *sign == b'-' { -value } else { value }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::try_from(year).ok()?, month, day);
    let local = days * 86_400 + i64::try_from(hour * 3600 + minute * 60 + second).ok()?;
    let utc = u64::try_from(local - offset_secs).ok()?;
    utc.checked_mul(1_000_000_000)?.checked_add(nanos)
}

fn is_leap(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month and day
/// already validated), by the usual era arithmetic.
fn days_from_civil(year: i64, month: u64, day: u64) -> i64 {
    let month = i64::try_from(month).unwrap_or(1);
    let day = i64::try_from(day).unwrap_or(1);
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass reader takes only what the field-by-field parser takes, and reads
    /// it the same; for everything else it steps aside.
    #[test]
    fn fast_vnet_tuples_agree_with_the_checked_parser() {
        let good = "1663146003606,10.0.0.6,52.239.184.180,23956,443,6,O,E,NX,3,767,2,1580";
        let mut cases: Vec<String> = vec![
            good.into(),
            "1663146003,10.0.0.6,fd00::5,1,2,17,I,D,X,,,,".into(),
            "1663146003606,::ffff:10.0.0.6,0.0.0.0,0,65535,255,O,B,NX_HW_NOT_SUPPORTED,0,0,0,0"
                .into(),
            "+1663146003606,10.0.0.6,52.239.184.180,+23956,0443,6,O,C,NX,+3,767,2,1580".into(),
            "1663146003606,010.0.0.6,52.239.184.180,23956,443,6,O,E,NX,3,767,2,1580".into(),
            "1663146003606,10.0.0.256,52.239.184.180,23956,443,6,O,E,NX,3,767,2,1580".into(),
            "1663146003606,10.0.0.6.1,52.239.184.180,23956,443,6,O,E,NX,3,767,2,1580".into(),
            "1663146003606,10.0.0.6,52.239.184.180,65536,443,6,O,E,NX,3,767,2,1580".into(),
            "1663146003606,10.0.0.6,52.239.184.180,23956,443,256,O,E,NX,3,767,2,1580".into(),
            "99999999999999999999,10.0.0.6,52.239.184.180,23956,443,6,O,E,NX,3,767,2,1580".into(),
            "18446744073709551615,10.0.0.6,52.239.184.180,23956,443,6,O,E,NX,3,767,2,1580".into(),
            "1663146003606,10.0.0.6,52.239.184.180,23956,443,6,OO,E,NX,3,767,2,1580".into(),
            "1663146003606,10.0.0.6,52.239.184.180,23956,443,6,O,E,,3,767,2,1580".into(),
            "1663146003606,10.0.0.6,52.239.184.180,23956,443,6,O,E,NX,3,767,2,1580,".into(),
            "1663146003606,10.0.0.6,52.239.184.180,23956,443,6,O,E,NX,3,767,2".into(),
            "1663146003606,10.0.0.6,52.239.184.180,23956,443,6,O,E,NX,3,767,2,18446744073709551616"
                .into(),
            String::new(),
            ",,,,,,,,,,,,".into(),
        ];
        // Every prefix and every single-byte change of the good tuple.
        for cut in 0..good.len() {
            cases.push(good[..cut].to_string());
        }
        for at in 0..good.len() {
            for byte in [b'0', b'9', b',', b'.', b':', b'x', b' '] {
                let mut bytes = good.as_bytes().to_vec();
                bytes[at] = byte;
                cases.push(String::from_utf8(bytes).expect("ASCII"));
            }
        }
        // Two groups, so that rewriting the lent tuple in place also changes groups.
        let contexts = [
            GroupContext::default(),
            GroupContext {
                version: Some(4),
                rule: Some(Arc::from("AllowVnetOutBound")),
                acl_id: Some(Arc::from("acl")),
                mac: Some(Arc::from("00224871C205")),
                resource_id: Some(Arc::from("/vnet")),
            },
        ];
        let mut fast_taken = 0;
        let mut lent: Option<FlowTuple> = None;
        for (index, case) in cases.iter().enumerate() {
            let ctx = &contexts[index / 3 % 2];
            let position = Position {
                tuple: index,
                ..Position::default()
            };
            let checked = checked_vnet_values(case).map(|v| v.into_tuple(ctx, position));
            if let Some(fast) = fast_vnet_values(case) {
                fast_taken += 1;
                assert_eq!(
                    checked.as_ref(),
                    Ok(&fast.into_tuple(ctx, position)),
                    "{case}"
                );
            }
            let parsed = parse_vnet_tuple(case, ctx, position);
            assert_eq!(parsed, checked, "{case}");
            if let (Ok(values), Ok(expected)) = (parse_vnet_values(case), &parsed) {
                let tuple = lent.get_or_insert_with(|| expected.clone());
                values.write_into(tuple, ctx, position);
                assert_eq!(tuple, expected, "{case}");
            }
        }
        assert!(
            fast_taken > 100,
            "the fast path took only {fast_taken} cases"
        );
    }

    #[test]
    fn rfc3339_values() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2022-09-14T09:00:52.5625085Z"),
            Some(1_663_146_052_562_508_500)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00+02:00"),
            Some(1_709_200_800_000_000_000)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29t10:00:00-00:30"),
            Some(1_709_202_600_000_000_000)
        );
        assert_eq!(parse_rfc3339("2023-02-29T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), None);
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00"), None);
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00.Z"), None);
        assert_eq!(parse_rfc3339("2024-01-01T24:00:00Z"), None);
        assert_eq!(parse_rfc3339("2024-1-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339(""), None);
    }

    #[test]
    fn epoch_by_magnitude() {
        assert_eq!(epoch_to_ns(1_663_146_003), Some(1_663_146_003_000_000_000));
        assert_eq!(
            epoch_to_ns(1_663_146_003_599),
            Some(1_663_146_003_599_000_000)
        );
        assert_eq!(epoch_to_ns(u64::MAX), None);
    }

    #[test]
    fn split_counts_fields() {
        assert_eq!(split_exact::<3>("a,b,c"), Ok(["a", "b", "c"]));
        assert_eq!(
            split_exact::<3>("a,b"),
            Err(TupleProblem::FieldCount {
                expected: 3,
                found: 2
            })
        );
        assert_eq!(
            split_exact::<3>("a,b,c,d"),
            Err(TupleProblem::FieldCount {
                expected: 3,
                found: 4
            })
        );
    }
}
