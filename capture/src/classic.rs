//! Classic libpcap files: a 24-byte file header, then records of a 16-byte
//! header (24 in the "modified" variant) and the captured bytes.
//!
//! Classic records have no framing beyond their own length field, so a
//! record header that cannot be right (the file ends inside it or it claims
//! an impossible length) ends the walk: nothing after it can be located.

use std::path::Path;
use std::sync::Arc;

use crate::error::{CaptureError, ErrorKind};
use crate::file::{Cursor, Format, MAX_CAPLEN, RawPacket, u32_at, usize_to_u64};

/// Length of the classic file header.
pub(crate) const FILE_HEADER_LEN: usize = 24;

/// libpcap keeps the link type in the low 26 bits; the top bits may carry
/// the FCS length of the link.
const LINKTYPE_MASK: u32 = 0x03FF_FFFF;

/// What every record of a classic file shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileHeader {
    big_endian: bool,
    nanos: bool,
    modified: bool,
    snaplen: u32,
    link_type: u32,
}

impl FileHeader {
    pub(crate) fn format(&self) -> Format {
        if self.modified {
            Format::PcapModified
        } else {
            Format::Pcap {
                nanos: self.nanos,
                big_endian: self.big_endian,
            }
        }
    }

    fn record_header_len(&self) -> usize {
        if self.modified { 24 } else { 16 }
    }
}

/// Parses and checks the file header; the caller has matched the magic.
pub(crate) fn parse_file_header(
    bytes: &[u8],
    path: &Arc<Path>,
) -> Result<FileHeader, CaptureError> {
    let at_start = |kind| CaptureError::file(path, kind).at_offset(0);
    if bytes.len() < FILE_HEADER_LEN {
        return Err(at_start(ErrorKind::TruncatedFileHeader {
            needed: usize_to_u64(FILE_HEADER_LEN),
            available: usize_to_u64(bytes.len()),
        }));
    }
    let header = match pcap_parser::parse_pcap_header(bytes) {
        Ok((_, header)) => header,
        // The magic was matched and 24 bytes are present, so this cannot
        // happen with the parser as it is; it is still an error, not a panic.
        Err(_) => {
            let first_bytes = bytes.iter().take(16).copied().collect();
            return Err(at_start(ErrorKind::NotACapture { first_bytes }));
        }
    };
    if header.version_major != 2 {
        return Err(at_start(ErrorKind::UnsupportedVersion {
            format: "pcap",
            major: header.version_major,
            minor: header.version_minor,
        }));
    }
    let link_type = u32::from_ne_bytes(header.network.0.to_ne_bytes()) & LINKTYPE_MASK;
    Ok(FileHeader {
        big_endian: header.is_bigendian(),
        nanos: header.is_nanosecond_precision(),
        modified: header.is_modified_format(),
        snaplen: header.snaplen,
        link_type,
    })
}

/// Reads the record at the cursor.
#[inline]
pub(crate) fn next<'a>(
    header: &FileHeader,
    cursor: &mut Cursor<'a>,
) -> Option<Result<RawPacket<'a>, CaptureError>> {
    let rest = cursor.rest();
    if rest.is_empty() {
        return None;
    }
    let number = cursor.number.saturating_add(1);
    let offset = usize_to_u64(cursor.pos);
    let header_len = header.record_header_len();
    let fail = |kind| Some(Err(cursor.error(kind).at_packet(number)));
    // The record header's fields in the file's byte order, read in place (this runs
    // once per packet); the modified format only adds fields after them.
    let field = |at| u32_at(rest, at, header.big_endian);
    let (true, Some(ts_sec), Some(ts_fraction), Some(caplen), Some(orig_len)) = (
        rest.len() >= header_len,
        field(0),
        field(4),
        field(8),
        field(12),
    ) else {
        return fail(ErrorKind::TruncatedRecordHeader {
            needed: usize_to_u64(header_len),
            available: usize_to_u64(rest.len()),
            packets_read: cursor.number,
        });
    };
    if caplen > MAX_CAPLEN && caplen > header.snaplen {
        return fail(ErrorKind::CaplenTooLarge {
            caplen,
            snaplen: header.snaplen,
            max: MAX_CAPLEN,
        });
    }
    let end = usize::try_from(caplen)
        .ok()
        .and_then(|caplen| header_len.checked_add(caplen));
    let Some(data) = end.and_then(|end| rest.get(header_len..end)) else {
        return fail(ErrorKind::TruncatedRecordData {
            caplen,
            available: usize_to_u64(rest.len().saturating_sub(header_len)),
            packets_read: cursor.number,
        });
    };
    cursor.pos = cursor
        .pos
        .saturating_add(header_len)
        .saturating_add(data.len());
    cursor.number = number;
    let fraction_ns = if header.nanos {
        u64::from(ts_fraction)
    } else {
        u64::from(ts_fraction).saturating_mul(1_000)
    };
    let ts_ns = u64::from(ts_sec)
        .saturating_mul(1_000_000_000)
        .saturating_add(fraction_ns);
    Some(Ok(RawPacket {
        number,
        ts_ns,
        link_type: header.link_type,
        interface: 0,
        data,
        orig_len,
        offset,
    }))
}

/// Record headers that must chain up, one after the other, before an offset found by
/// [`find_record`] is taken for the start of a record.
const SYNC_CHAIN: usize = 4;

/// The first offset in `from..limit` where a chain of plausible record headers starts
/// (or runs exactly to the end of the file), for splitting a file between threads.
///
/// Classic records carry no marker, so this is a guess from the fields: a captured
/// length no larger than the file allows and no larger than the length on the wire, a
/// sub-second field in range, and timestamps of consecutive records less than a day
/// apart. A guess is only ever used after a walk from the real start of the file
/// arrives at exactly that offset; a wrong one costs time, never a packet.
pub(crate) fn find_record(
    header: &FileHeader,
    bytes: &[u8],
    from: usize,
    limit: usize,
) -> Option<usize> {
    (from..limit.min(bytes.len())).find(|&at| plausible_chain(header, bytes, at))
}

fn plausible_chain(header: &FileHeader, bytes: &[u8], mut at: usize) -> bool {
    let header_len = header.record_header_len();
    let max_caplen = MAX_CAPLEN.max(header.snaplen);
    let max_fraction = if header.nanos {
        1_000_000_000
    } else {
        1_000_000
    };
    let mut previous_secs: Option<u32> = None;
    for _ in 0..SYNC_CHAIN {
        if at == bytes.len() {
            return previous_secs.is_some();
        }
        let field = |offset: usize| u32_at(bytes, at.saturating_add(offset), header.big_endian);
        // Cheapest and most selective first: most offsets inside packet data fail on
        // the captured length alone.
        let Some(caplen) = field(8).filter(|&c| c <= max_caplen) else {
            return false;
        };
        let plausible = field(12).is_some_and(|origlen| caplen <= origlen)
            && field(4).is_some_and(|fraction| fraction < max_fraction);
        let Some(secs) = field(0).filter(|_| plausible) else {
            return false;
        };
        if previous_secs.is_some_and(|p| p.abs_diff(secs) >= 86_400) {
            return false;
        }
        let Some(next) = at
            .checked_add(header_len)
            .and_then(|a| a.checked_add(caplen as usize))
            .filter(|&next| next <= bytes.len())
        else {
            return false;
        };
        previous_secs = Some(secs);
        at = next;
    }
    true
}
