//! Reading capture files through libpcap's own offline reader.
//!
//! This path copies every packet out of libpcap's buffer, so it is slower
//! than [`CaptureFile`](crate::CaptureFile). It exists to cross-check the
//! zero-copy reader against the reference implementation and as a fallback
//! for inputs the zero-copy reader refuses. libpcap reads pcapng files only
//! when all their interfaces share one link type.

use std::iter::FusedIterator;
use std::path::Path;
use std::sync::Arc;

use crate::error::{CaptureError, ErrorKind, libpcap_kind};

/// A packet read through libpcap, owning a copy of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedPacket {
    /// 1-based position of the packet in the file.
    pub number: u64,
    /// Capture time in nanoseconds since the Unix epoch (saturating).
    pub ts_ns: u64,
    /// The `LINKTYPE_` number of the file (libpcap has one per file).
    pub link_type: u32,
    /// The captured bytes.
    pub data: Vec<u8>,
    /// The packet's length on the wire.
    pub orig_len: u32,
}

/// Opens a capture file with libpcap (`pcap_open_offline`), asking for
/// nanosecond timestamps.
pub fn open_with_libpcap(path: &Path) -> Result<LibpcapPackets, CaptureError> {
    let shared: Arc<Path> = Arc::from(path);
    let capture = pcap::Capture::from_file_with_precision(path, pcap::Precision::Nano)
        .map_err(|e| CaptureError::file(&shared, libpcap_kind(&e)))?;
    let link_type = crate::linktype::from_dlt(capture.get_datalink().0);
    Ok(LibpcapPackets {
        path: shared,
        capture,
        link_type,
        number: 0,
        done: false,
    })
}

/// Packets of a file read by libpcap; see [`open_with_libpcap`].
///
/// Ends after the first error: libpcap's reader cannot resume.
pub struct LibpcapPackets {
    path: Arc<Path>,
    capture: pcap::Capture<pcap::Offline>,
    link_type: u32,
    number: u64,
    done: bool,
}

impl std::fmt::Debug for LibpcapPackets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LibpcapPackets")
            .field("path", &self.path)
            .field("link_type", &self.link_type)
            .field("number", &self.number)
            .finish_non_exhaustive()
    }
}

impl LibpcapPackets {
    /// The link type libpcap reports for the file.
    pub fn link_type(&self) -> u32 {
        self.link_type
    }
}

impl Iterator for LibpcapPackets {
    type Item = Result<OwnedPacket, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let number = self.number.saturating_add(1);
        match self.capture.next_packet() {
            Ok(packet) => {
                self.number = number;
                let header = packet.header;
                // Asked for nanosecond precision, libpcap puts nanoseconds in
                // the microsecond field.
                #[allow(clippy::useless_conversion, reason = "time_t is i32 on some targets")]
                let ts_ns =
                    timeval_ns(i64::from(header.ts.tv_sec), i64::from(header.ts.tv_usec), 1);
                Some(Ok(OwnedPacket {
                    number,
                    ts_ns,
                    link_type: self.link_type,
                    data: packet.data.to_vec(),
                    orig_len: header.len,
                }))
            }
            Err(pcap::Error::NoMorePackets) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                let kind = match libpcap_kind(&e) {
                    ErrorKind::Libpcap { message } => ErrorKind::Libpcap {
                        message: format!("{message} (after {} packets)", self.number),
                    },
                    other => other,
                };
                Some(Err(CaptureError::file(&self.path, kind).at_packet(number)))
            }
        }
    }
}

impl FusedIterator for LibpcapPackets {}

/// Nanoseconds from a `timeval`-like pair whose fraction is in units of
/// `unit_ns`, clamped to `0..=u64::MAX`.
pub(crate) fn timeval_ns(sec: i64, fraction: i64, unit_ns: i64) -> u64 {
    let total = i128::from(sec) * 1_000_000_000 + i128::from(fraction) * i128::from(unit_ns);
    u64::try_from(total.max(0)).unwrap_or(u64::MAX)
}
