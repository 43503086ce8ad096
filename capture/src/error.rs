//! The one error type of this crate.
//!
//! A [`CaptureError`] always says *where* (the file, interface or writer, the
//! packet number and the byte offset when they are known) and *what* (an
//! [`ErrorKind`]). It is a boxed struct so that `Result<RawPacket, CaptureError>`
//! stays small on the hot path, where errors are rare.
//!
//! [`RawPacket`]: crate::RawPacket

use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// An error from reading, filtering, capturing or writing packets.
///
/// The [`Display`](fmt::Display) form is a complete one-line message, for
/// example `cap.pcap: packet 4 at byte offset 312: captured length 1514 is
/// larger than the 200 bytes left in the file (the file ends after 3 packets)`.
/// Use [`kind`](CaptureError::kind) to act on the cause and the other
/// accessors to find the place.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CaptureError(Box<Repr>);

#[derive(Debug)]
struct Repr {
    subject: Subject,
    packet: Option<u64>,
    offset: Option<u64>,
    recoverable: bool,
    kind: ErrorKind,
}

/// What an error is about: a file, a live interface, a writer or a filter.
#[derive(Debug, Clone)]
pub(crate) enum Subject {
    File(Arc<Path>),
    Interface(String),
    Writer(&'static str),
    None,
}

impl CaptureError {
    pub(crate) fn new(subject: Subject, kind: ErrorKind) -> CaptureError {
        CaptureError(Box::new(Repr {
            subject,
            packet: None,
            offset: None,
            recoverable: false,
            kind,
        }))
    }

    pub(crate) fn file(path: &Arc<Path>, kind: ErrorKind) -> CaptureError {
        CaptureError::new(Subject::File(Arc::clone(path)), kind)
    }

    pub(crate) fn at_packet(mut self, number: u64) -> CaptureError {
        self.0.packet = Some(number);
        self
    }

    pub(crate) fn at_offset(mut self, offset: u64) -> CaptureError {
        self.0.offset = Some(offset);
        self
    }

    pub(crate) fn recoverable(mut self) -> CaptureError {
        self.0.recoverable = true;
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// The capture file the error is about, if it is about a file.
    pub fn path(&self) -> Option<&Path> {
        match &self.0.subject {
            Subject::File(path) => Some(path),
            _ => None,
        }
    }

    /// The live interface the error is about, if it is about one.
    pub fn interface_name(&self) -> Option<&str> {
        match &self.0.subject {
            Subject::Interface(name) => Some(name),
            _ => None,
        }
    }

    /// The 1-based number of the packet the error is about, if any.
    ///
    /// Numbers count every packet record of the file in order, including
    /// records that produced an error, so they match the record's position.
    pub fn packet(&self) -> Option<u64> {
        self.0.packet
    }

    /// The byte offset in the file of the record or block the error is about.
    pub fn offset(&self) -> Option<u64> {
        self.0.offset
    }

    /// Whether a packet iterator goes on after this error.
    ///
    /// True for problems confined to one record whose boundaries are still
    /// known (a pcapng packet on an undeclared interface, an unknown block
    /// type, a malformed packet block); the next call to `next` continues
    /// with the following record. False when the rest of the file cannot be
    /// trusted: the iterator then returns `None`.
    pub fn is_recoverable(&self) -> bool {
        self.0.recoverable
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut located = true;
        match &self.subject {
            Subject::File(path) => write!(f, "{}", path.display())?,
            Subject::Interface(name) => write!(f, "interface {name}")?,
            Subject::Writer(what) => write!(f, "{what}")?,
            Subject::None => located = false,
        }
        match (self.packet, self.offset) {
            (Some(n), Some(o)) => write!(f, ": packet {n} at byte offset {o}")?,
            (Some(n), None) => write!(f, ": packet {n}")?,
            (None, Some(o)) => write!(f, " at byte offset {o}")?,
            (None, None) => {}
        }
        if located {
            f.write_str(": ")?;
        }
        write!(f, "{}", self.kind)
    }
}

/// The cause of a [`CaptureError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be opened or its size read.
    #[error("cannot open: {0}")]
    Open(std::io::Error),
    /// The file could not be memory-mapped.
    #[error("cannot memory-map: {0}")]
    Map(std::io::Error),
    /// Writing a capture failed.
    #[error("cannot write: {0}")]
    Write(std::io::Error),
    /// The file has no bytes at all. Like tshark, an empty file is not
    /// taken for a capture, because nothing says which format it is.
    #[error("empty file (0 bytes): not a capture")]
    EmptyFile,
    /// The file starts with neither a pcap nor a pcapng magic number.
    #[error("not a pcap or pcapng capture: {}", FirstBytes(first_bytes))]
    NotACapture {
        /// Up to the first 16 bytes of the file.
        first_bytes: Vec<u8>,
    },
    /// A capture variant this crate recognises but does not read.
    #[error("unsupported capture format: {what}")]
    Unsupported {
        /// Which variant.
        what: &'static str,
    },
    /// A format version this crate does not read.
    #[error("unsupported {format} version {major}.{minor}")]
    UnsupportedVersion {
        /// `"pcap"` or `"pcapng"`.
        format: &'static str,
        /// The major version found.
        major: u16,
        /// The minor version found.
        minor: u16,
    },
    /// The pcap file header is cut short.
    #[error("truncated pcap file header: {available} of {needed} bytes present")]
    TruncatedFileHeader {
        /// Bytes a header takes.
        needed: u64,
        /// Bytes the file holds.
        available: u64,
    },
    /// The file ends inside a pcap record header.
    #[error(
        "truncated record header: {available} of {needed} bytes present \
         (the file ends after {packets_read} packets)"
    )]
    TruncatedRecordHeader {
        /// Bytes a record header takes.
        needed: u64,
        /// Bytes left in the file.
        available: u64,
        /// Packets read completely before the cut.
        packets_read: u64,
    },
    /// A pcap record claims more bytes than the file has left.
    #[error(
        "captured length {caplen} is larger than the {available} bytes left in the file \
         (the file ends after {packets_read} packets)"
    )]
    TruncatedRecordData {
        /// The record's captured length.
        caplen: u32,
        /// Bytes left in the file after the record header.
        available: u64,
        /// Packets read completely before the cut.
        packets_read: u64,
    },
    /// A pcap record's captured length is beyond anything a capture tool
    /// writes, so the record header is taken for garbage and the rest of the
    /// file is not trusted.
    #[error(
        "captured length {caplen} is larger than the {max}-byte maximum \
         (file snaplen {snaplen}): corrupt record header"
    )]
    CaplenTooLarge {
        /// The record's captured length.
        caplen: u32,
        /// The snaplen of the file header.
        snaplen: u32,
        /// The largest captured length accepted, [`MAX_CAPLEN`](crate::MAX_CAPLEN).
        max: u32,
    },
    /// The file ends inside a pcapng block.
    #[error(
        "truncated {}: {available} of {block_len} bytes present \
         (the file ends after {packets_read} packets)",
        BlockName(*block_type)
    )]
    TruncatedBlock {
        /// The block type, or 0 when not even the type could be read.
        block_type: u32,
        /// The block's total length (12 when unknown: the smallest block).
        block_len: u32,
        /// Bytes left in the file.
        available: u64,
        /// Packets read completely before the cut.
        packets_read: u64,
    },
    /// A pcapng block length that no valid block has.
    #[error(
        "{} has an invalid length {block_len} (a block length is a multiple of 4, at least 12)",
        BlockName(*block_type)
    )]
    BadBlockLength {
        /// The block type.
        block_type: u32,
        /// The length found.
        block_len: u32,
    },
    /// The two length fields of a pcapng block differ.
    #[error(
        "{} length fields differ: {leading} at the start, {trailing} at the end",
        BlockName(*block_type)
    )]
    BlockLengthMismatch {
        /// The block type.
        block_type: u32,
        /// The length at the start of the block.
        leading: u32,
        /// The length at the end of the block.
        trailing: u32,
    },
    /// A section header block whose byte-order magic is neither order.
    #[error(
        "section header byte-order magic is {value:#010x}, not 0x1a2b3c4d in either byte order"
    )]
    BadByteOrderMagic {
        /// The four bytes read as little-endian.
        value: u32,
    },
    /// A pcapng block whose fields do not fit its length.
    #[error("malformed {}: {detail}", BlockName(*block_type))]
    MalformedBlock {
        /// The block type.
        block_type: u32,
        /// What is wrong.
        detail: String,
    },
    /// A pcapng block type that is neither defined nor reserved by the
    /// pcapng specification.
    #[error("unknown block type {block_type:#010x}")]
    UnknownBlock {
        /// The block type.
        block_type: u32,
    },
    /// A pcapng packet names an interface its section has not described.
    #[error(
        "packet refers to interface {interface}, but its section declares {declared} interfaces"
    )]
    UndeclaredInterface {
        /// The interface id in the packet.
        interface: u32,
        /// Interfaces declared so far in the section.
        declared: u32,
    },
    /// An interface's `if_tsresol` names a resolution no integer can hold.
    #[error("interface {interface} has an unusable if_tsresol {tsresol:#04x}")]
    BadTimestampResolution {
        /// The interface id in its section.
        interface: u32,
        /// The option value.
        tsresol: u8,
    },
    /// A BPF expression libpcap would not compile.
    #[error("filter {expr:?} does not compile for link type {link_type}: {message}")]
    Bpf {
        /// The expression as given.
        expr: String,
        /// The LINKTYPE_ number it was compiled for.
        link_type: u32,
        /// libpcap's message.
        message: String,
    },
    /// A numeric setting outside what the format or libpcap can hold.
    #[error("{what} {value} is out of range ({range})")]
    OutOfRange {
        /// The setting.
        what: &'static str,
        /// The value given.
        value: u64,
        /// What is accepted.
        range: &'static str,
    },
    /// libpcap refused to open or read.
    #[error("libpcap: {message}")]
    Libpcap {
        /// libpcap's message.
        message: String,
    },
    /// The process may not capture on the interface (it lacks `CAP_NET_RAW`
    /// or root).
    #[error("permission denied: {message}")]
    PermissionDenied {
        /// libpcap's message.
        message: String,
    },
    /// A writer was given a packet on an interface it has not added.
    #[error("interface {interface} was not added (the writer has {count} interfaces)")]
    UnknownOutputInterface {
        /// The interface id given.
        interface: u32,
        /// Interfaces added so far.
        count: u32,
    },
}

/// Prints the opening bytes of a file in hex and as text.
struct FirstBytes<'a>(&'a [u8]);

impl fmt::Display for FirstBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the first {} bytes are", self.0.len())?;
        for b in self.0 {
            write!(f, " {b:02x}")?;
        }
        f.write_str(" (\"")?;
        for &b in self.0 {
            let c = if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            };
            write!(f, "{c}")?;
        }
        f.write_str("\")")
    }
}

/// Names a pcapng block type the way the specification does.
pub(crate) struct BlockName(pub(crate) u32);

impl fmt::Display for BlockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            0x0A0D_0D0A => "section header block",
            0x0000_0001 => "interface description block",
            0x0000_0002 => "packet block",
            0x0000_0003 => "simple packet block",
            0x0000_0004 => "name resolution block",
            0x0000_0005 => "interface statistics block",
            0x0000_0006 => "enhanced packet block",
            _ => "block",
        };
        write!(f, "{name} (type {:#010x})", self.0)
    }
}

/// Turns a pcap crate error into a kind, telling permission problems apart
/// so that callers (and tests) can say what to fix.
pub(crate) fn libpcap_kind(err: &pcap::Error) -> ErrorKind {
    let message = err.to_string();
    let lower = message.to_ascii_lowercase();
    if lower.contains("permission") || lower.contains("operation not permitted") {
        ErrorKind::PermissionDenied { message }
    } else {
        ErrorKind::Libpcap { message }
    }
}
