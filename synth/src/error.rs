//! The one error type of this crate.

use std::net::IpAddr;
use std::path::PathBuf;

/// Why a frame, payload or capture could not be built.
///
/// Every variant says which value was wrong and, where there is one, which frame or
/// file it belongs to, so a test that builds a bad input learns exactly what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// A packet's source and destination are of different IP versions.
    #[error("source {src} and destination {dst} are not of the same IP version")]
    MixedFamilies {
        /// The source address.
        src: IpAddr,
        /// The destination address.
        dst: IpAddr,
    },
    /// A value is too long for the length field that must hold it.
    #[error("{what} is {len} bytes, more than the {max} that {field} can hold")]
    TooLong {
        /// What was too long (a payload, a DNS name, a server name...).
        what: &'static str,
        /// The field or limit it had to fit.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The largest length the field allows.
        max: usize,
    },
    /// A VLAN id above 4095 (the TCI holds 12 bits of id).
    #[error("VLAN id {id} is out of range (0 to 4095)")]
    VlanId {
        /// The id given.
        id: u16,
    },
    /// A DNS name that cannot be written on the wire.
    #[error("DNS name `{name}`: {problem}")]
    BadName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A classic pcap file holds one link type; frame `index` has another.
    #[error(
        "frame {index}: link type {found} cannot go into a classic pcap file of link type {expected}; write pcapng instead"
    )]
    MixedLinks {
        /// The position of the frame (from 0).
        index: usize,
        /// The file's link type.
        expected: u32,
        /// The frame's link type.
        found: u32,
    },
    /// A generator setting out of range.
    #[error("generator setting `{setting}` = {value}: {problem}")]
    BadConfig {
        /// The setting's name.
        setting: &'static str,
        /// Its value.
        value: u64,
        /// The allowed range.
        problem: &'static str,
    },
    /// The capture writer failed (the message names the packet).
    #[error("{}{source}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Capture {
        /// The file being written, when writing to a file.
        path: Option<PathBuf>,
        /// The writer's error.
        source: linkward_capture::CaptureError,
    },
    /// A capture file could not be created.
    #[error("cannot create {}: {source}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl SynthError {
    pub(crate) fn capture(
        path: Option<&std::path::Path>,
        source: linkward_capture::CaptureError,
    ) -> SynthError {
        SynthError::Capture {
            path: path.map(std::path::Path::to_path_buf),
            source,
        }
    }
}
