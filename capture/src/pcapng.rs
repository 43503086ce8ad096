//! pcapng files: a sequence of blocks, each framed by a type and two copies
//! of its length.
//!
//! Framing is checked here before a block is handed to `pcap-parser`: the
//! length must be a multiple of 4, at least 12, fit in the file and match the
//! trailing copy. Once that holds, the next block's position is known, so a
//! problem inside one packet block is reported for that packet and the walk
//! goes on. A framing problem ends the walk.
//!
//! Each section header starts a new section with its own byte order and an
//! empty interface list; interfaces carry their own link type, snaplen and
//! timestamp resolution (`if_tsresol`) and offset (`if_tsoffset`).

use std::path::Path;
use std::sync::Arc;

use pcap_parser::nom;
use pcap_parser::pcapng::{
    parse_enhancedpacketblock_be, parse_enhancedpacketblock_le, parse_interfacedescriptionblock_be,
    parse_interfacedescriptionblock_le, parse_sectionheaderblock, parse_simplepacketblock_be,
    parse_simplepacketblock_le,
};
use pcap_parser::{OptionCode, PcapError};

use crate::error::{CaptureError, ErrorKind};
use crate::file::{Cursor, RawPacket, u16_at, u32_at, usize_to_u64};

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 0x0000_0001;
/// The obsolete Packet Block, still written by old tools.
const OPB: u32 = 0x0000_0002;
const SPB: u32 = 0x0000_0003;
const EPB: u32 = 0x0000_0006;
/// The byte-order magic of a section header, as read in the section's order.
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// Smallest block: type, length, trailing length.
const MIN_BLOCK_LEN: usize = 12;

/// The state a section carries from block to block.
#[derive(Debug, Default)]
pub(crate) struct Section {
    big_endian: bool,
    interfaces: Vec<Interface>,
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: u32,
    snaplen: u32,
    clock: Clock,
}

/// Turns an interface's raw 64-bit timestamps into nanoseconds.
#[derive(Debug, Clone, Copy)]
struct Clock {
    scale: Scale,
    /// `if_tsoffset`: seconds added to every timestamp.
    offset_s: i64,
}

#[derive(Debug, Clone, Copy)]
enum Scale {
    /// Units coarser than or equal to a nanosecond: multiply.
    Mul(u64),
    /// Decimal units finer than a nanosecond: divide.
    Div(u64),
    /// Binary units, 2^-n seconds.
    Pow2(u8),
}

impl Clock {
    /// Decodes `if_tsresol`: high bit clear means 10^-n seconds, set means
    /// 2^-n. `None` when the unit does not fit in 64 bits.
    fn new(tsresol: u8, offset_s: i64) -> Option<Clock> {
        let exp = tsresol & 0x7f;
        let scale = if tsresol & 0x80 == 0 {
            match exp {
                0..=9 => Scale::Mul(10u64.checked_pow(9 - u32::from(exp))?),
                10..=19 => Scale::Div(10u64.checked_pow(u32::from(exp) - 9)?),
                _ => return None,
            }
        } else if exp <= 63 {
            Scale::Pow2(exp)
        } else {
            return None;
        };
        Some(Clock { scale, offset_s })
    }

    #[inline]
    fn ns(&self, high: u32, low: u32) -> u64 {
        let ticks = (u64::from(high) << 32) | u64::from(low);
        if self.offset_s == 0 {
            return match self.scale {
                Scale::Mul(m) => ticks.saturating_mul(m),
                Scale::Div(d) => ticks / d,
                Scale::Pow2(_) => u64::try_from(self.wide_ns(ticks)).unwrap_or(u64::MAX),
            };
        }
        // Apply the offset before clamping, so that a negative offset on a
        // timestamp past the u64 range still lands where it should.
        let wide = i128::try_from(self.wide_ns(ticks)).unwrap_or(i128::MAX);
        let shifted = wide.saturating_add(i128::from(self.offset_s) * 1_000_000_000);
        u64::try_from(shifted.max(0)).unwrap_or(u64::MAX)
    }

    /// Nanoseconds without the offset, in a type that cannot overflow:
    /// 2^64 ticks times 10^9 is below 2^94.
    fn wide_ns(&self, ticks: u64) -> u128 {
        let ticks = u128::from(ticks);
        match self.scale {
            Scale::Mul(m) => ticks * u128::from(m),
            Scale::Div(d) => ticks / u128::from(d),
            Scale::Pow2(n) => (ticks * 1_000_000_000) >> n,
        }
    }
}

/// A block whose framing has been checked.
struct Block<'a> {
    block_type: u32,
    big_endian: bool,
    /// The whole block, both length fields included.
    bytes: &'a [u8],
}

/// Checks the framing of the block at the start of `rest`.
///
/// `packets_read` only feeds the truncation message.
fn frame(rest: &[u8], section_big_endian: bool, packets_read: u64) -> Result<Block<'_>, ErrorKind> {
    let truncated = |block_type, block_len| ErrorKind::TruncatedBlock {
        block_type,
        block_len,
        available: usize_to_u64(rest.len()),
        packets_read,
    };
    let (Some(raw_type), Some(bom)) = (u32_at(rest, 0, false), u32_at(rest, 8, false)) else {
        let block_type = u32_at(rest, 0, section_big_endian).unwrap_or(0);
        return Err(truncated(block_type, 12));
    };
    // A section header's type reads the same in both orders; its byte-order
    // magic says which order the whole section uses.
    let big_endian = if raw_type == SHB {
        if bom == BYTE_ORDER_MAGIC {
            false
        } else if bom == BYTE_ORDER_MAGIC.swap_bytes() {
            true
        } else {
            return Err(ErrorKind::BadByteOrderMagic { value: bom });
        }
    } else {
        section_big_endian
    };
    let block_type = if big_endian {
        raw_type.swap_bytes()
    } else {
        raw_type
    };
    let block_len = u32_at(rest, 4, big_endian).unwrap_or(0);
    let len = usize::try_from(block_len).unwrap_or(usize::MAX);
    if len < MIN_BLOCK_LEN || len % 4 != 0 {
        return Err(ErrorKind::BadBlockLength {
            block_type,
            block_len,
        });
    }
    let Some(bytes) = rest.get(..len) else {
        return Err(truncated(block_type, block_len));
    };
    let trailing = u32_at(bytes, len - 4, big_endian).unwrap_or(0);
    if trailing != block_len {
        return Err(ErrorKind::BlockLengthMismatch {
            block_type,
            leading: block_len,
            trailing,
        });
    }
    Ok(Block {
        block_type,
        big_endian,
        bytes,
    })
}

/// Validates the first section header when the file is opened, so that a
/// file that only looks like pcapng for 4 bytes is refused at once.
pub(crate) fn check_first_section(bytes: &[u8], path: &Arc<Path>) -> Result<(), CaptureError> {
    let at_start = |kind| CaptureError::file(path, kind).at_offset(0);
    let block = frame(bytes, false, 0).map_err(at_start)?;
    section_header(&block).map(|_| ()).map_err(at_start)
}

/// Parses a section header block and checks its version.
fn section_header(block: &Block<'_>) -> Result<(), ErrorKind> {
    let shb = match parse_sectionheaderblock(block.bytes) {
        Ok((_, shb)) => shb,
        Err(err) => return Err(malformed(SHB, &err)),
    };
    if shb.major_version != 1 {
        return Err(ErrorKind::UnsupportedVersion {
            format: "pcapng",
            major: shb.major_version,
            minor: shb.minor_version,
        });
    }
    Ok(())
}

/// Parses an interface description block.
fn interface(block: &Block<'_>, index: usize) -> Result<Interface, ErrorKind> {
    let parsed = if block.big_endian {
        parse_interfacedescriptionblock_be(block.bytes)
    } else {
        parse_interfacedescriptionblock_le(block.bytes)
    };
    let idb = match parsed {
        Ok((_, idb)) => idb,
        Err(err) => return Err(malformed(IDB, &err)),
    };
    // The defaults of the pcapng specification: microseconds, no offset.
    let mut tsresol = 6u8;
    let mut offset_s = 0i64;
    for option in &idb.options {
        let value = option.value();
        if option.code == OptionCode::IfTsresol
            && let Some(&v) = value.first()
        {
            tsresol = v;
        } else if option.code == OptionCode::IfTsoffset
            && let Some(raw) = value.get(..8).and_then(|v| <[u8; 8]>::try_from(v).ok())
        {
            offset_s = if block.big_endian {
                i64::from_be_bytes(raw)
            } else {
                i64::from_le_bytes(raw)
            };
        }
    }
    let interface = u32::try_from(index).unwrap_or(u32::MAX);
    let clock = Clock::new(tsresol, offset_s)
        .ok_or(ErrorKind::BadTimestampResolution { interface, tsresol })?;
    Ok(Interface {
        link_type: u32::try_from(idb.linktype.0).unwrap_or(0),
        snaplen: idb.snaplen,
        clock,
    })
}

/// Describes a `pcap-parser` failure without dumping the block's bytes.
fn malformed(block_type: u32, err: &nom::Err<PcapError<&[u8]>>) -> ErrorKind {
    let detail = match err {
        nom::Err::Incomplete(_) => "its fields run past its end".to_string(),
        nom::Err::Error(e) | nom::Err::Failure(e) => match e {
            PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
                format!("field check failed ({})", kind.description())
            }
            other => other.to_string(),
        },
    };
    ErrorKind::MalformedBlock { block_type, detail }
}

/// Block types the pcapng specification defines or reserves that carry no
/// packets: name resolution, interface statistics, IRIG timestamp, ARINC
/// 429, systemd journal, decryption secrets, the Hone and Sysdig ranges,
/// custom blocks, and the local-use range (high bit set).
fn is_skipped(block_type: u32) -> bool {
    matches!(
        block_type,
        0x4..=0xA | 0x101..=0x10F | 0x201..=0x20F | 0xBAD | 0x4000_0BAD | 0x8000_0000..
    )
}

/// Reads blocks from the cursor until one yields a packet or an error.
pub(crate) fn next<'a>(
    section: &mut Section,
    cursor: &mut Cursor<'a>,
) -> Option<Result<RawPacket<'a>, CaptureError>> {
    loop {
        let rest = cursor.rest();
        if rest.is_empty() {
            return None;
        }
        let block = match frame(rest, section.big_endian, cursor.number) {
            Ok(block) => block,
            Err(kind) => return Some(Err(cursor.error(kind))),
        };
        let offset = cursor.pos;
        // The framing is sound: whatever the block holds, the next one starts
        // right after it.
        cursor.pos = cursor.pos.saturating_add(block.bytes.len());
        let at_block = |kind| CaptureError::file(cursor.path, kind).at_offset(usize_to_u64(offset));
        match block.block_type {
            SHB => {
                if let Err(kind) = section_header(&block) {
                    return Some(Err(at_block(kind)));
                }
                section.big_endian = block.big_endian;
                section.interfaces.clear();
            }
            IDB => match interface(&block, section.interfaces.len()) {
                Ok(interface) => section.interfaces.push(interface),
                Err(kind) => return Some(Err(at_block(kind))),
            },
            EPB | SPB | OPB => {
                cursor.number = cursor.number.saturating_add(1);
                let number = cursor.number;
                let packet = match block.block_type {
                    EPB => enhanced(section, &block),
                    SPB => simple(section, &block),
                    _ => obsolete(section, &block),
                };
                return Some(match packet {
                    Ok(mut packet) => {
                        packet.number = number;
                        packet.offset = usize_to_u64(offset);
                        Ok(packet)
                    }
                    Err(kind) => Err(at_block(kind).at_packet(number).recoverable()),
                });
            }
            other if is_skipped(other) => {}
            other => {
                return Some(Err(
                    at_block(ErrorKind::UnknownBlock { block_type: other }).recoverable()
                ));
            }
        }
    }
}

fn lookup(section: &Section, interface: u32) -> Result<&Interface, ErrorKind> {
    usize::try_from(interface)
        .ok()
        .and_then(|i| section.interfaces.get(i))
        .ok_or(ErrorKind::UndeclaredInterface {
            interface,
            declared: u32::try_from(section.interfaces.len()).unwrap_or(u32::MAX),
        })
}

/// Checks that a packet block's captured length fits in the block, so that
/// the message names the real problem rather than a parser internal.
fn check_caplen(block: &Block<'_>, caplen_at: usize, header_len: usize) -> Result<(), ErrorKind> {
    let room = block.bytes.len().saturating_sub(header_len + 4);
    let caplen = u32_at(block.bytes, caplen_at, block.big_endian);
    match caplen {
        Some(caplen) if usize::try_from(caplen).is_ok_and(|c| c <= room) => Ok(()),
        Some(caplen) => Err(ErrorKind::MalformedBlock {
            block_type: block.block_type,
            detail: format!(
                "captured length {caplen} does not fit in the {}-byte block",
                block.bytes.len()
            ),
        }),
        None => Err(ErrorKind::MalformedBlock {
            block_type: block.block_type,
            detail: format!("{} bytes are too few for its header", block.bytes.len()),
        }),
    }
}

/// Number and offset are filled in by the caller.
fn enhanced<'a>(section: &Section, block: &Block<'a>) -> Result<RawPacket<'a>, ErrorKind> {
    check_caplen(block, 20, 28)?;
    let parsed = if block.big_endian {
        parse_enhancedpacketblock_be(block.bytes)
    } else {
        parse_enhancedpacketblock_le(block.bytes)
    };
    let epb = match parsed {
        Ok((_, epb)) => epb,
        Err(err) => return Err(malformed(EPB, &err)),
    };
    let interface = lookup(section, epb.if_id)?;
    // `data` includes the padding to 4 bytes; the caplen check above makes
    // the cut always in range.
    let padded: &'a [u8] = epb.data;
    let data = usize::try_from(epb.caplen)
        .ok()
        .and_then(|caplen| padded.get(..caplen))
        .unwrap_or(padded);
    Ok(RawPacket {
        number: 0,
        ts_ns: interface.clock.ns(epb.ts_high, epb.ts_low),
        link_type: interface.link_type,
        interface: epb.if_id,
        data,
        orig_len: epb.origlen,
        offset: 0,
    })
}

/// A simple packet block belongs to interface 0 and has no timestamp; its
/// captured length is the smallest of the original length, the interface's
/// snaplen and the room in the block.
fn simple<'a>(section: &Section, block: &Block<'a>) -> Result<RawPacket<'a>, ErrorKind> {
    let parsed = if block.big_endian {
        parse_simplepacketblock_be(block.bytes)
    } else {
        parse_simplepacketblock_le(block.bytes)
    };
    let spb = match parsed {
        Ok((_, spb)) => spb,
        Err(err) => return Err(malformed(SPB, &err)),
    };
    let interface = lookup(section, 0)?;
    // A snaplen of 0 means no limit; an original length of 0 is an empty
    // packet.
    let mut caplen = spb
        .data
        .len()
        .min(usize::try_from(spb.origlen).unwrap_or(usize::MAX));
    if interface.snaplen != 0 {
        caplen = caplen.min(usize::try_from(interface.snaplen).unwrap_or(usize::MAX));
    }
    Ok(RawPacket {
        number: 0,
        ts_ns: 0,
        link_type: interface.link_type,
        interface: 0,
        data: spb.data.get(..caplen).unwrap_or_default(),
        orig_len: spb.origlen,
        offset: 0,
    })
}

/// The obsolete Packet Block: like an enhanced packet block with a 16-bit
/// interface id and a drop count. `pcap-parser` does not know it, so its
/// fixed fields are read here.
fn obsolete<'a>(section: &Section, block: &Block<'a>) -> Result<RawPacket<'a>, ErrorKind> {
    check_caplen(block, 20, 28)?;
    let be = block.big_endian;
    let bytes = block.bytes;
    let short = || ErrorKind::MalformedBlock {
        block_type: OPB,
        detail: format!("{} bytes are too few for its header", bytes.len()),
    };
    let if_id = u16_at(bytes, 8, be).ok_or_else(short)?;
    let ts_high = u32_at(bytes, 12, be).ok_or_else(short)?;
    let ts_low = u32_at(bytes, 16, be).ok_or_else(short)?;
    let caplen = u32_at(bytes, 20, be).ok_or_else(short)?;
    let orig_len = u32_at(bytes, 24, be).ok_or_else(short)?;
    let data = usize::try_from(caplen)
        .ok()
        .and_then(|caplen| bytes.get(28..28usize.checked_add(caplen)?))
        .ok_or_else(short)?;
    let interface = lookup(section, u32::from(if_id))?;
    Ok(RawPacket {
        number: 0,
        ts_ns: interface.clock.ns(ts_high, ts_low),
        link_type: interface.link_type,
        interface: u32::from(if_id),
        data,
        orig_len,
        offset: 0,
    })
}
