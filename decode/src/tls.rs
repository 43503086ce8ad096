//! The server name (SNI) of a TLS ClientHello.
//!
//! The SNI names the service a client means to reach even when the address it connects
//! to belongs to someone else, which is how a connection that bypasses a private endpoint
//! is recognised. Only the first handshake record is read: a ClientHello continued in a
//! second TLS record (over 16 KiB, unseen in practice) is read as far as the first record
//! goes.
//!
//! ```
//! use linkward_decode::tls::{client_hello_sni, SniResult};
//!
//! // A 74-byte ClientHello record for "a.io", split over two TCP segments.
//! let hello: [u8; 74] = [
//!     0x16, 0x03, 0x01, 0x00, 0x45, 0x01, 0x00, 0x00, 0x41, 0x03, 0x03,
//!     1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
//!     17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
//!     0x00, 0x00, 0x02, 0x13, 0x01, 0x01, 0x00, 0x00, 0x16,
//!     0x00, 0x00, 0x00, 0x09, 0x00, 0x07, 0x00, 0x00, 0x04, b'a', b'.', b'i', b'o',
//!     0x00, 0x10, 0x00, 0x05, 0x00, 0x03, 0x02, b'h', b'2',
//! ];
//! let (first, second) = hello.split_at(40);
//! assert_eq!(client_hello_sni(first), SniResult::Incomplete { needed: 74 });
//! let mut buffered = first.to_vec();
//! buffered.extend_from_slice(second);
//! assert_eq!(client_hello_sni(&buffered), SniResult::Found("a.io"));
//! ```

use crate::bytes::{be16, u8_at};

/// What [`client_hello_sni`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SniResult<'a> {
    /// The host name of the server_name extension, as sent (case preserved).
    Found(&'a str),
    /// A complete ClientHello without a server name.
    NoSni,
    /// Not a well-formed TLS ClientHello (another record type, another handshake message,
    /// SSLv2, lengths that contradict each other, or a name that is not UTF-8).
    NotClientHello,
    /// The bytes start a ClientHello but end before the server name could be read: the
    /// caller may buffer and retry with the next segment appended.
    Incomplete {
        /// Bytes the whole first record needs (5-byte header included); when even the
        /// header is incomplete, the header's 5 bytes.
        needed: usize,
    },
}

const RECORD_HEADER: usize = 5;
const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const NAME_TYPE_HOST: u8 = 0;
/// RFC 8446 §5.1: a record's length may not exceed 2^14 + 256 (2^14 + 2048 for TLS 1.2
/// ciphertext); anything larger is not TLS.
const MAX_RECORD: usize = (1 << 14) + 2048;

/// The server name of the ClientHello at the start of `payload` (the first bytes a
/// client sends on a TLS connection).
pub fn client_hello_sni(payload: &[u8]) -> SniResult<'_> {
    // Record header: type, version major 3, any minor, length.
    match (u8_at(payload, 0), u8_at(payload, 1)) {
        (Some(CONTENT_HANDSHAKE), Some(3)) | (Some(CONTENT_HANDSHAKE), None) => {}
        _ => return SniResult::NotClientHello,
    }
    let Some(record_len) = be16(payload, 3) else {
        return SniResult::Incomplete {
            needed: RECORD_HEADER,
        };
    };
    let record_len = usize::from(record_len);
    if record_len == 0 || record_len > MAX_RECORD {
        return SniResult::NotClientHello;
    }
    let needed = RECORD_HEADER + record_len;
    let record_end = needed.min(payload.len());
    let body = payload.get(RECORD_HEADER..record_end).unwrap_or(&[]);
    match hello(body, record_len) {
        Scan::Found(name) => SniResult::Found(name),
        Scan::NoSni => SniResult::NoSni,
        Scan::Bad => SniResult::NotClientHello,
        Scan::Short if payload.len() < needed => SniResult::Incomplete { needed },
        // The whole record is here but the message continues in a next record.
        Scan::Short => SniResult::NoSni,
    }
}

enum Scan<'a> {
    Found(&'a str),
    NoSni,
    Bad,
    /// The bytes ran out.
    Short,
}

/// A cursor over the captured bytes of the handshake message; running past them is
/// merely short, not malformed.
struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

enum Read<T> {
    Ok(T),
    Short,
}

impl<'a> Cursor<'a> {
    fn u8(&mut self) -> Read<u8> {
        match u8_at(self.data, self.at) {
            Some(v) => {
                self.at += 1;
                Read::Ok(v)
            }
            None => Read::Short,
        }
    }

    fn u16(&mut self) -> Read<u16> {
        match be16(self.data, self.at) {
            Some(v) => {
                self.at += 2;
                Read::Ok(v)
            }
            None => Read::Short,
        }
    }

    fn bytes(&mut self, n: usize) -> Read<&'a [u8]> {
        match self.data.get(self.at..self.at + n) {
            Some(v) => {
                self.at += n;
                Read::Ok(v)
            }
            None => Read::Short,
        }
    }
}

macro_rules! read {
    ($e:expr) => {
        match $e {
            Read::Ok(v) => v,
            Read::Short => return Scan::Short,
        }
    };
}

/// Scans the handshake bytes of the first record. `record_len` is the record's declared
/// length: lengths inside the message that exceed it are malformed, not short.
fn hello(body: &[u8], record_len: usize) -> Scan<'_> {
    let mut c = Cursor { data: body, at: 0 };
    if read!(c.u8()) != HANDSHAKE_CLIENT_HELLO {
        return Scan::Bad;
    }
    let hi = usize::from(read!(c.u8()));
    let lo = usize::from(read!(c.u16()));
    let message_len = hi << 16 | lo;
    // The message may continue in later records; inside this record it ends here.
    let end = (4 + message_len).min(record_len);
    let within = |c: &Cursor<'_>, n: usize| c.at + n <= end;

    // legacy_version (2), random (32)
    if read!(c.u8()) != 3 {
        return Scan::Bad;
    }
    read!(c.bytes(1 + 32));
    let session_id = usize::from(read!(c.u8()));
    if session_id > 32 || !within(&c, session_id) {
        return Scan::Bad;
    }
    read!(c.bytes(session_id));
    let suites = usize::from(read!(c.u16()));
    if suites < 2 || suites % 2 != 0 || !within(&c, suites) {
        return Scan::Bad;
    }
    read!(c.bytes(suites));
    let compression = usize::from(read!(c.u8()));
    if compression < 1 || !within(&c, compression) {
        return Scan::Bad;
    }
    read!(c.bytes(compression));
    if c.at == 4 + message_len {
        // No extensions at all.
        return Scan::NoSni;
    }
    let extensions = usize::from(read!(c.u16()));
    let ext_end = c.at + extensions;
    if ext_end > 4 + message_len {
        return Scan::Bad;
    }
    let ext_end = ext_end.min(end);
    while c.at + 4 <= ext_end {
        let ext_type = read!(c.u16());
        let ext_len = usize::from(read!(c.u16()));
        if c.at + ext_len > 4 + message_len {
            return Scan::Bad;
        }
        if ext_type != EXT_SERVER_NAME {
            read!(c.bytes(ext_len));
            continue;
        }
        let ext = read!(c.bytes(ext_len));
        return server_name(ext);
    }
    if c.at == ext_end {
        Scan::NoSni
    } else if ext_end > end {
        // The extensions continue past this record.
        Scan::Short
    } else {
        // Stray bytes shorter than an extension header.
        Scan::Bad
    }
}

/// Reads the server_name extension body (RFC 6066 §3).
fn server_name(ext: &[u8]) -> Scan<'_> {
    let Some(list_len) = be16(ext, 0) else {
        return Scan::Bad;
    };
    let Some(list) = ext.get(2..2 + usize::from(list_len)) else {
        return Scan::Bad;
    };
    let mut at = 0;
    while at < list.len() {
        let (Some(kind), Some(len)) = (u8_at(list, at), be16(list, at + 1)) else {
            return Scan::Bad;
        };
        let Some(name) = list.get(at + 3..at + 3 + usize::from(len)) else {
            return Scan::Bad;
        };
        if kind == NAME_TYPE_HOST {
            return match std::str::from_utf8(name) {
                Ok("") => Scan::NoSni,
                Ok(name) => Scan::Found(name),
                Err(_) => Scan::Bad,
            };
        }
        at += 3 + usize::from(len);
    }
    Scan::NoSni
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TLS 1.2 ClientHello for "a.io": record 22/3.1, one suite, SNI then ALPN "h2".
    const HELLO: [u8; 74] = [
        0x16, 0x03, 0x01, 0x00, 0x45, // record, 69 bytes
        0x01, 0x00, 0x00, 0x41, // ClientHello, 65 bytes
        0x03, 0x03, // version
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
        26, 27, 28, 29, 30, 31, 32,   // random
        0x00, // session id
        0x00, 0x02, 0x13, 0x01, // suites
        0x01, 0x00, // compression
        0x00, 0x16, // extensions, 22 bytes
        0x00, 0x00, 0x00, 0x09, 0x00, 0x07, 0x00, 0x00, 0x04, b'a', b'.', b'i', b'o', // SNI
        0x00, 0x10, 0x00, 0x05, 0x00, 0x03, 0x02, b'h', b'2', // ALPN
    ];

    #[test]
    fn golden_hello() {
        assert_eq!(client_hello_sni(&HELLO), SniResult::Found("a.io"));
    }

    #[test]
    fn every_prefix_is_incomplete_until_the_name() {
        // The name ends at byte 65; every shorter prefix asks for the 74-byte record.
        for cut in 1..65 {
            let needed = if cut < 5 { 5 } else { 74 };
            assert_eq!(
                client_hello_sni(&HELLO[..cut]),
                SniResult::Incomplete { needed },
                "prefix {cut}"
            );
        }
        for cut in 65..=74 {
            assert_eq!(client_hello_sni(&HELLO[..cut]), SniResult::Found("a.io"));
        }
        assert_eq!(client_hello_sni(&[]), SniResult::NotClientHello);
    }

    #[test]
    fn no_sni_and_not_hello() {
        let mut h = HELLO;
        h[53] = 0x2b; // server_name becomes supported_versions (43)
        assert_eq!(client_hello_sni(&h), SniResult::NoSni);
        let mut h = HELLO;
        h[5] = 2; // ServerHello
        assert_eq!(client_hello_sni(&h), SniResult::NotClientHello);
        assert_eq!(
            client_hello_sni(b"GET / HTTP/1.1\r\n"),
            SniResult::NotClientHello
        );
        let mut h = HELLO;
        h[60] = 0x40; // name length beyond the extension
        assert_eq!(client_hello_sni(&h), SniResult::NotClientHello);
    }
}
