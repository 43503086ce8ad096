//! Frames into capture files: classic pcap for one link type, pcapng for several.

use crate::error::SynthError;
use crate::frame::{Frame, Link};
use linkward_capture::{PcapNgWriter, PcapWriter, TsResolution};
use std::io::Write;
use std::path::Path;

/// The snaplen written into file headers: frames are never cut.
pub const SNAPLEN: u32 = 262_144;

fn orig_len(frame: &Frame) -> u32 {
    u32::try_from(frame.data.len()).unwrap_or(u32::MAX)
}

/// Writes `frames` as a classic pcap (microsecond timestamps, readable by every tool)
/// of `link`'s link type to `out`. Every frame must have that link type: a frame of
/// another is [`SynthError::MixedLinks`].
pub fn write_pcap_to<W: Write>(out: W, link: Link, frames: &[Frame]) -> Result<W, SynthError> {
    write_pcap_inner(out, None, link, frames)
}

fn write_pcap_inner<W: Write>(
    out: W,
    path: Option<&Path>,
    link: Link,
    frames: &[Frame],
) -> Result<W, SynthError> {
    let expected = link.linktype();
    if let Some((index, f)) = frames
        .iter()
        .enumerate()
        .find(|(_, f)| f.link.linktype() != expected)
    {
        return Err(SynthError::MixedLinks {
            index,
            expected,
            found: f.link.linktype(),
        });
    }
    let err = |e| SynthError::capture(path, e);
    let mut w = PcapWriter::new(out, expected, SNAPLEN, TsResolution::Micro).map_err(err)?;
    for f in frames {
        w.write_packet(f.ts_ns, &f.data, orig_len(f)).map_err(err)?;
    }
    w.finish().map_err(err)
}

/// Writes `frames` as a pcapng to `out`: one interface per link type, in the order the
/// link types first appear, nanosecond timestamps.
pub fn write_pcapng_to<W: Write>(out: W, frames: &[Frame]) -> Result<W, SynthError> {
    write_pcapng_inner(out, None, frames)
}

fn write_pcapng_inner<W: Write>(
    out: W,
    path: Option<&Path>,
    frames: &[Frame],
) -> Result<W, SynthError> {
    let err = |e| SynthError::capture(path, e);
    let mut w = PcapNgWriter::new(out).map_err(err)?;
    let mut interfaces: Vec<(u32, u32)> = Vec::new();
    for f in frames {
        let linktype = f.link.linktype();
        let id = match interfaces.iter().find(|(l, _)| *l == linktype) {
            Some(&(_, id)) => id,
            None => {
                let id = w.add_interface(linktype, SNAPLEN).map_err(err)?;
                interfaces.push((linktype, id));
                id
            }
        };
        w.write_packet(id, f.ts_ns, &f.data, orig_len(f))
            .map_err(err)?;
    }
    w.finish().map_err(err)
}

/// Writes `frames` as a classic pcap file of `link`'s link type at `path`.
pub fn write_pcap(path: &Path, link: Link, frames: &[Frame]) -> Result<(), SynthError> {
    let file = create(path)?;
    write_pcap_inner(file, Some(path), link, frames)?;
    Ok(())
}

/// Writes `frames` as a pcapng file at `path` (one interface per link type).
pub fn write_pcapng(path: &Path, frames: &[Frame]) -> Result<(), SynthError> {
    let file = create(path)?;
    write_pcapng_inner(file, Some(path), frames)?;
    Ok(())
}

fn create(path: &Path) -> Result<std::fs::File, SynthError> {
    std::fs::File::create(path).map_err(|source| SynthError::Create {
        path: path.to_path_buf(),
        source,
    })
}

/// The bytes of a classic pcap of `frames` (see [`write_pcap_to`]).
pub fn pcap_bytes(link: Link, frames: &[Frame]) -> Result<Vec<u8>, SynthError> {
    write_pcap_to(Vec::new(), link, frames)
}

/// The bytes of a pcapng of `frames` (see [`write_pcapng_to`]).
pub fn pcapng_bytes(frames: &[Frame]) -> Result<Vec<u8>, SynthError> {
    write_pcapng_to(Vec::new(), frames)
}
