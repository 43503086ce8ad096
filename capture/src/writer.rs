//! Writing captures: classic pcap and pcapng.
//!
//! The writers serve tests, examples and the capture generator, so they
//! write what they are given: a packet longer than the snaplen, or an
//! original length shorter than the data, goes out as is, which is how
//! malformed test inputs are made. Output goes through a 256 KiB buffer, so
//! millions of small packets cost millions of copies into memory, not
//! millions of system calls.

use std::io::{BufWriter, Write};

use crate::error::{CaptureError, ErrorKind, Subject};

const BUFFER_BYTES: usize = 256 * 1024;
const NS_PER_S: u64 = 1_000_000_000;

/// Timestamp resolution of a classic pcap file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TsResolution {
    /// Microseconds (magic `a1b2c3d4`), readable by every tool.
    Micro,
    /// Nanoseconds (magic `a1b23c4d`).
    Nano,
}

/// Writes a classic pcap file, little-endian.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: BufWriter<W>,
    resolution: TsResolution,
    packets: u64,
}

fn write_error(what: &'static str, packet: u64, err: std::io::Error) -> CaptureError {
    let error = CaptureError::new(Subject::Writer(what), ErrorKind::Write(err));
    if packet == 0 {
        error
    } else {
        error.at_packet(packet)
    }
}

fn too_long(what: &'static str, packet: u64, len: usize) -> CaptureError {
    CaptureError::new(
        Subject::Writer(what),
        ErrorKind::OutOfRange {
            what: "packet length",
            value: u64::try_from(len).unwrap_or(u64::MAX),
            range: "at most 4294967283 bytes",
        },
    )
    .at_packet(packet)
}

const PCAP: &str = "pcap writer";
const PCAPNG: &str = "pcapng writer";

impl<W: Write> PcapWriter<W> {
    /// Writes the file header for packets of `link_type` (a `LINKTYPE_`
    /// number) cut at `snaplen` bytes.
    pub fn new(
        inner: W,
        link_type: u32,
        snaplen: u32,
        resolution: TsResolution,
    ) -> Result<PcapWriter<W>, CaptureError> {
        let magic: u32 = match resolution {
            TsResolution::Micro => 0xa1b2_c3d4,
            TsResolution::Nano => 0xa1b2_3c4d,
        };
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&magic.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay 0, as every current tool writes them.
        header[16..20].copy_from_slice(&snaplen.to_le_bytes());
        header[20..24].copy_from_slice(&link_type.to_le_bytes());
        let mut out = BufWriter::with_capacity(BUFFER_BYTES, inner);
        out.write_all(&header)
            .map_err(|e| write_error(PCAP, 0, e))?;
        Ok(PcapWriter {
            out,
            resolution,
            packets: 0,
        })
    }

    /// Appends one packet captured at `ts_ns` (nanoseconds since the Unix
    /// epoch; cut to microseconds for a microsecond file) whose wire length
    /// was `orig_len`.
    ///
    /// Fails if the time is past what 32-bit seconds hold (2106-02-07) or
    /// the data is longer than a 32-bit length.
    pub fn write_packet(
        &mut self,
        ts_ns: u64,
        data: &[u8],
        orig_len: u32,
    ) -> Result<(), CaptureError> {
        let number = self.packets.saturating_add(1);
        let secs = u32::try_from(ts_ns / NS_PER_S).map_err(|_| {
            CaptureError::new(
                Subject::Writer(PCAP),
                ErrorKind::OutOfRange {
                    what: "timestamp (ns)",
                    value: ts_ns,
                    range: "before 2106-02-07T06:28:16Z",
                },
            )
            .at_packet(number)
        })?;
        let ns = ts_ns % NS_PER_S;
        let fraction = match self.resolution {
            TsResolution::Micro => ns / 1_000,
            TsResolution::Nano => ns,
        };
        let fraction = u32::try_from(fraction).unwrap_or(0);
        let caplen = u32::try_from(data.len()).map_err(|_| too_long(PCAP, number, data.len()))?;
        let mut header = [0u8; 16];
        header[0..4].copy_from_slice(&secs.to_le_bytes());
        header[4..8].copy_from_slice(&fraction.to_le_bytes());
        header[8..12].copy_from_slice(&caplen.to_le_bytes());
        header[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.out
            .write_all(&header)
            .and_then(|()| self.out.write_all(data))
            .map_err(|e| write_error(PCAP, number, e))?;
        self.packets = number;
        Ok(())
    }

    /// Packets written so far.
    pub fn packets_written(&self) -> u64 {
        self.packets
    }

    /// Flushes the buffer and hands back the underlying writer.
    pub fn finish(self) -> Result<W, CaptureError> {
        let packets = self.packets;
        self.out
            .into_inner()
            .map_err(|e| write_error(PCAP, packets, e.into_error()))
    }
}

/// Writes a pcapng file, little-endian: one section header, one interface
/// description per [`add_interface`](PcapNgWriter::add_interface) (with
/// `if_tsresol` = 9, nanoseconds) and an enhanced packet block per packet.
#[derive(Debug)]
pub struct PcapNgWriter<W: Write> {
    out: BufWriter<W>,
    interfaces: u32,
    packets: u64,
}

impl<W: Write> PcapNgWriter<W> {
    /// Writes the section header block.
    pub fn new(inner: W) -> Result<PcapNgWriter<W>, CaptureError> {
        let mut shb = [0u8; 28];
        shb[0..4].copy_from_slice(&0x0A0D_0D0Au32.to_le_bytes());
        shb[4..8].copy_from_slice(&28u32.to_le_bytes());
        shb[8..12].copy_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        shb[12..14].copy_from_slice(&1u16.to_le_bytes());
        shb[14..16].copy_from_slice(&0u16.to_le_bytes());
        // Section length unknown: the writer streams.
        shb[16..24].copy_from_slice(&(-1i64).to_le_bytes());
        shb[24..28].copy_from_slice(&28u32.to_le_bytes());
        let mut out = BufWriter::with_capacity(BUFFER_BYTES, inner);
        out.write_all(&shb).map_err(|e| write_error(PCAPNG, 0, e))?;
        Ok(PcapNgWriter {
            out,
            interfaces: 0,
            packets: 0,
        })
    }

    /// Declares an interface with its `LINKTYPE_` number (at most 65535, the
    /// width pcapng gives it) and snaplen, and returns its id for
    /// [`write_packet`](PcapNgWriter::write_packet). Ids count from 0.
    pub fn add_interface(&mut self, link_type: u32, snaplen: u32) -> Result<u32, CaptureError> {
        let link = u16::try_from(link_type).map_err(|_| {
            CaptureError::new(
                Subject::Writer(PCAPNG),
                ErrorKind::OutOfRange {
                    what: "link type",
                    value: u64::from(link_type),
                    range: "0 to 65535 in pcapng",
                },
            )
        })?;
        let mut idb = [0u8; 32];
        idb[0..4].copy_from_slice(&1u32.to_le_bytes());
        idb[4..8].copy_from_slice(&32u32.to_le_bytes());
        idb[8..10].copy_from_slice(&link.to_le_bytes());
        idb[12..16].copy_from_slice(&snaplen.to_le_bytes());
        // if_tsresol (code 9, length 1) = 9: nanoseconds; padded to 4 bytes.
        idb[16..18].copy_from_slice(&9u16.to_le_bytes());
        idb[18..20].copy_from_slice(&1u16.to_le_bytes());
        idb[20] = 9;
        // opt_endofopt is bytes 24..28, all zero.
        idb[28..32].copy_from_slice(&32u32.to_le_bytes());
        self.out
            .write_all(&idb)
            .map_err(|e| write_error(PCAPNG, self.packets, e))?;
        let id = self.interfaces;
        self.interfaces = self.interfaces.saturating_add(1);
        Ok(id)
    }

    /// Appends one packet seen on `interface` at `ts_ns` (nanoseconds since
    /// the Unix epoch) whose wire length was `orig_len`.
    pub fn write_packet(
        &mut self,
        interface: u32,
        ts_ns: u64,
        data: &[u8],
        orig_len: u32,
    ) -> Result<(), CaptureError> {
        let number = self.packets.saturating_add(1);
        if interface >= self.interfaces {
            return Err(CaptureError::new(
                Subject::Writer(PCAPNG),
                ErrorKind::UnknownOutputInterface {
                    interface,
                    count: self.interfaces,
                },
            )
            .at_packet(number));
        }
        let padding = (4 - data.len() % 4) % 4;
        let block_len = data
            .len()
            .checked_add(32 + padding)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| too_long(PCAPNG, number, data.len()))?;
        let caplen = u32::try_from(data.len()).map_err(|_| too_long(PCAPNG, number, data.len()))?;
        let mut header = [0u8; 28];
        header[0..4].copy_from_slice(&6u32.to_le_bytes());
        header[4..8].copy_from_slice(&block_len.to_le_bytes());
        header[8..12].copy_from_slice(&interface.to_le_bytes());
        // The 64-bit timestamp is split high word first, each word in the
        // section's byte order.
        let high = u32::try_from(ts_ns >> 32).unwrap_or(u32::MAX);
        let low = u32::try_from(ts_ns & 0xFFFF_FFFF).unwrap_or(u32::MAX);
        header[12..16].copy_from_slice(&high.to_le_bytes());
        header[16..20].copy_from_slice(&low.to_le_bytes());
        header[20..24].copy_from_slice(&caplen.to_le_bytes());
        header[24..28].copy_from_slice(&orig_len.to_le_bytes());
        let pad = [0u8; 3];
        self.out
            .write_all(&header)
            .and_then(|()| self.out.write_all(data))
            .and_then(|()| self.out.write_all(pad.get(..padding).unwrap_or_default()))
            .and_then(|()| self.out.write_all(&block_len.to_le_bytes()))
            .map_err(|e| write_error(PCAPNG, number, e))?;
        self.packets = number;
        Ok(())
    }

    /// Interfaces declared so far.
    pub fn interfaces(&self) -> u32 {
        self.interfaces
    }

    /// Packets written so far.
    pub fn packets_written(&self) -> u64 {
        self.packets
    }

    /// Flushes the buffer and hands back the underlying writer.
    pub fn finish(self) -> Result<W, CaptureError> {
        let packets = self.packets;
        self.out
            .into_inner()
            .map_err(|e| write_error(PCAPNG, packets, e.into_error()))
    }
}
