//! Application payloads: DNS messages, a TLS ClientHello and an HTTP request.
//!
//! They look like what real clients and resolvers send (name compression in DNS, the
//! extensions a TLS 1.3 browser offers, the headers of an HTTP/1.1 client), because a
//! decoder that only ever saw minimal messages proves little.

use crate::error::SynthError;
use std::collections::HashMap;
use std::net::IpAddr;

/// DNS record type A.
pub const TYPE_A: u16 = 1;
/// DNS record type CNAME.
pub const TYPE_CNAME: u16 = 5;
/// DNS record type AAAA.
pub const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
const MAX_NAME_WIRE: usize = 255;
const MAX_LABEL: usize = 63;
/// Compression pointers hold 14 bits of offset.
const MAX_POINTER_TARGET: usize = 0x3fff;

/// A DNS query for `query` of type `qtype` ([`TYPE_A`], [`TYPE_AAAA`]...), with
/// recursion desired.
pub fn dns_query(id: u16, query: &str, qtype: u16) -> Result<Vec<u8>, SynthError> {
    let mut w = NameWriter::default();
    w.out.extend_from_slice(&id.to_be_bytes());
    w.out.extend_from_slice(&0x0100u16.to_be_bytes());
    w.out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    w.name(query)?;
    w.out.extend_from_slice(&qtype.to_be_bytes());
    w.out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(w.out)
}

/// A recursive resolver's answer to `query`: one CNAME record per name of
/// `cname_chain` (query → chain\[0\] → chain\[1\] ...), then one A or AAAA record per
/// address owned by the last name, every record with `ttl` seconds. Names are
/// compressed as resolvers do: each name, or its longest suffix already in the message,
/// is a pointer to where it first appeared.
///
/// The question asks for AAAA when every address is IPv6, A otherwise.
pub fn dns_response(
    id: u16,
    query: &str,
    cname_chain: &[&str],
    addresses: &[IpAddr],
    ttl: u32,
) -> Result<Vec<u8>, SynthError> {
    let answers = cname_chain.len() + addresses.len();
    let ancount = u16::try_from(answers).map_err(|_| SynthError::TooLong {
        what: "answer section",
        field: "the DNS answer count",
        len: answers,
        max: usize::from(u16::MAX),
    })?;
    let qtype = if !addresses.is_empty() && addresses.iter().all(IpAddr::is_ipv6) {
        TYPE_AAAA
    } else {
        TYPE_A
    };
    let mut w = NameWriter::default();
    w.out.extend_from_slice(&id.to_be_bytes());
    // QR, RD, RA; rcode 0.
    w.out.extend_from_slice(&0x8180u16.to_be_bytes());
    w.out.extend_from_slice(&1u16.to_be_bytes());
    w.out.extend_from_slice(&ancount.to_be_bytes());
    w.out.extend_from_slice(&[0, 0, 0, 0]);
    w.name(query)?;
    w.out.extend_from_slice(&qtype.to_be_bytes());
    w.out.extend_from_slice(&CLASS_IN.to_be_bytes());

    let mut owner = query;
    for &target in cname_chain {
        w.name(owner)?;
        w.out.extend_from_slice(&TYPE_CNAME.to_be_bytes());
        w.out.extend_from_slice(&CLASS_IN.to_be_bytes());
        w.out.extend_from_slice(&ttl.to_be_bytes());
        let rdlength_at = w.out.len();
        w.out.extend_from_slice(&[0, 0]);
        let start = w.out.len();
        w.name(target)?;
        // A compressed name is at most 255 bytes, so it fits the 16-bit field.
        let rdlength = u16::try_from(w.out.len() - start).unwrap_or(u16::MAX);
        if let Some(slot) = w.out.get_mut(rdlength_at..rdlength_at + 2) {
            slot.copy_from_slice(&rdlength.to_be_bytes());
        }
        owner = target;
    }
    for addr in addresses {
        w.name(owner)?;
        let (rtype, rdata): (u16, Vec<u8>) = match addr {
            IpAddr::V4(a) => (TYPE_A, a.octets().to_vec()),
            IpAddr::V6(a) => (TYPE_AAAA, a.octets().to_vec()),
        };
        w.out.extend_from_slice(&rtype.to_be_bytes());
        w.out.extend_from_slice(&CLASS_IN.to_be_bytes());
        w.out.extend_from_slice(&ttl.to_be_bytes());
        w.out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        w.out.extend_from_slice(&rdata);
    }
    Ok(w.out)
}

/// Writes names with compression: remembers where each suffix was first written.
#[derive(Default)]
struct NameWriter {
    out: Vec<u8>,
    /// Lower-cased suffix → offset of its first label.
    suffixes: HashMap<String, usize>,
}

impl NameWriter {
    fn name(&mut self, name: &str) -> Result<(), SynthError> {
        let bad = |problem| SynthError::BadName {
            name: name.to_string(),
            problem,
        };
        let trimmed = name.strip_suffix('.').unwrap_or(name);
        if trimmed.is_empty() {
            return Err(bad("the name is empty"));
        }
        let labels: Vec<&str> = trimmed.split('.').collect();
        let mut wire = 1;
        for label in &labels {
            if label.is_empty() {
                return Err(bad("it has an empty label"));
            }
            if label.len() > MAX_LABEL {
                return Err(bad("a label is longer than 63 bytes"));
            }
            wire += label.len() + 1;
        }
        if wire > MAX_NAME_WIRE {
            return Err(bad("it is longer than 255 bytes on the wire"));
        }
        for (i, label) in labels.iter().enumerate() {
            let suffix = labels
                .get(i..)
                .unwrap_or(&[])
                .join(".")
                .to_ascii_lowercase();
            if let Some(&at) = self.suffixes.get(&suffix) {
                // at <= 0x3fff was checked when it was remembered.
                let pointer = 0xc000 | (at as u16);
                self.out.extend_from_slice(&pointer.to_be_bytes());
                return Ok(());
            }
            let at = self.out.len();
            if at <= MAX_POINTER_TARGET {
                self.suffixes.insert(suffix, at);
            }
            // Checked above: at most 63.
            self.out.push(label.len() as u8);
            self.out.extend_from_slice(label.as_bytes());
        }
        self.out.push(0);
        Ok(())
    }
}

/// A TLS 1.3 ClientHello record as a current browser sends it (legacy version 1.2,
/// 32-byte session id, the TLS 1.3 and ECDHE suites, supported_versions, key_share for
/// X25519, ALPN h2 and http/1.1...), with `sni` in a server_name extension, or none.
///
/// The random, session id and key share are derived from the name, so the bytes are
/// the same on every run and differ between names.
pub fn tls_client_hello(sni: Option<&str>) -> Result<Vec<u8>, SynthError> {
    // The whole record must stay within one TLS record of 2^14 bytes.
    const MAX_SNI: usize = 16_000;
    if let Some(name) = sni
        && name.len() > MAX_SNI
    {
        return Err(SynthError::TooLong {
            what: "server name",
            field: "one TLS record",
            len: name.len(),
            max: MAX_SNI,
        });
    }
    let mut seed = 0x243f_6a88_85a3_08d3u64;
    for b in sni.unwrap_or("").bytes() {
        seed = (seed ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut bytes = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect()
    };
    let random = bytes(32);
    let session_id = bytes(32);
    let key_share = bytes(32);

    let mut ext = Vec::new();
    let mut extension = |ty: u16, body: &[u8]| {
        ext.extend_from_slice(&ty.to_be_bytes());
        ext.extend_from_slice(&(body.len() as u16).to_be_bytes());
        ext.extend_from_slice(body);
    };
    if let Some(name) = sni {
        let n = name.len() as u16;
        let mut body = Vec::with_capacity(name.len() + 5);
        body.extend_from_slice(&(n + 3).to_be_bytes());
        body.push(0);
        body.extend_from_slice(&n.to_be_bytes());
        body.extend_from_slice(name.as_bytes());
        extension(0x0000, &body);
    }
    // extended_master_secret, renegotiation_info, supported_groups, ec_point_formats,
    // session_ticket, ALPN, status_request, signature_algorithms, key_share,
    // psk_key_exchange_modes, supported_versions.
    extension(0x0017, &[]);
    extension(0xff01, &[0]);
    extension(0x000a, &[0, 6, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18]);
    extension(0x000b, &[1, 0]);
    extension(0x0023, &[]);
    extension(
        0x0010,
        &[
            0, 12, 2, b'h', b'2', 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1',
        ],
    );
    extension(0x0005, &[1, 0, 0, 0, 0]);
    extension(
        0x000d,
        &[0, 16, 4, 3, 8, 4, 4, 1, 5, 3, 8, 5, 5, 1, 8, 6, 6, 1],
    );
    let mut share = vec![0, 36, 0x00, 0x1d, 0, 32];
    share.extend_from_slice(&key_share);
    extension(0x0033, &share);
    extension(0x002d, &[1, 1]);
    extension(0x002b, &[4, 3, 4, 3, 3]);

    let suites: [u16; 9] = [
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
    ];
    let mut hello = Vec::with_capacity(ext.len() + 128);
    hello.extend_from_slice(&[0x03, 0x03]);
    hello.extend_from_slice(&random);
    hello.push(32);
    hello.extend_from_slice(&session_id);
    hello.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        hello.extend_from_slice(&s.to_be_bytes());
    }
    hello.extend_from_slice(&[1, 0]);
    hello.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    hello.extend_from_slice(&ext);

    let body_len = hello.len() as u32;
    let mut record = Vec::with_capacity(hello.len() + 9);
    record.extend_from_slice(&[0x16, 0x03, 0x01]);
    record.extend_from_slice(&((body_len + 4) as u16).to_be_bytes());
    record.push(1);
    record.extend_from_slice(&body_len.to_be_bytes()[1..]);
    record.extend_from_slice(&hello);
    Ok(record)
}

/// An HTTP/1.1 GET of `path` on `host`, with the headers a REST client sends. The
/// values go out as given, so a test can also build a malformed request.
pub fn http_get(host: &str, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: linkward-synth/1.0\r\nAccept: application/json\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n"
    )
    .into_bytes()
}
