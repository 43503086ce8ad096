/*!
Packet input for linkward: capture files, live interfaces, BPF filters and
capture writers.

Everything linkward checks arrives as link-layer frames with a time and a
link type. This crate gets those frames from where they are kept and hands
them on without looking inside them; decoding belongs to the crates after it.

# Reading a capture file

[`CaptureFile`] memory-maps a file and walks its records without copying a
byte: each [`RawPacket`] borrows its data from the mapping. It reads

* classic pcap in both byte orders, with microsecond or nanosecond
  timestamps, and the "modified" (Kuznetzov) variant;
* pcapng with any number of sections, each with its own byte order and
  interfaces, each interface with its own link type, snaplen and timestamp
  resolution (`if_tsresol`, decimal or binary) and offset (`if_tsoffset`);
  packets come from enhanced, simple and obsolete packet blocks, and the
  other blocks are skipped.

The format is told by the file's first bytes, never by its name.

```no_run
use linkward_capture::CaptureFile;
# fn main() -> Result<(), linkward_capture::CaptureError> {
let file = CaptureFile::open("trace.pcapng".as_ref())?;
for packet in file.packets() {
    let packet = packet?;
    println!("#{} t={}ns link={} {} bytes", packet.number, packet.ts_ns,
             packet.link_type, packet.data.len());
}
# Ok(()) }
```

## When a file is damaged

Input is untrusted: nothing in a file makes this crate panic, allocate
without bound or loop. Every problem is a [`CaptureError`] that names the
file, the packet number and the byte offset, and says what is wrong. The
iterator then either stops or goes on, as
[`CaptureError::is_recoverable`] tells:

* A **truncated** file (a download or a capture that was cut) yields every
  complete packet, then one error saying how many packets were read and
  where the file ends. Cutting a file anywhere never loses a packet that is
  wholly before the cut.
* A classic pcap record whose captured length is above the file's snaplen
  but whose bytes are present is delivered: tools write such files. A
  length above both the snaplen and [`MAX_CAPLEN`] (256 KiB) means the
  record header is garbage, and since classic records have no other framing,
  reading stops.
  pcapng blocks frame their packets, so there the limit does not apply.
* In pcapng, every block's framing (length a multiple of 4, both length
  fields equal, block inside the file) is checked first. After that the next
  block's place is known, so a packet on an undeclared interface, a packet
  block whose fields do not fit it, or a block type the specification does
  not know is reported for that record alone and reading goes on.
* An empty (0-byte) file is an error, as with tshark: nothing says it is a
  capture. A file with a header and no packets is a valid capture of zero
  packets.

# Filtering with BPF

[`BpfFilter`] compiles a tcpdump expression with libpcap for one link type
and runs it over packet bytes. [`BpfFilterSet`] holds one expression and
compiles it for each link type it meets, since a pcapng file may mix them:

```no_run
use linkward_capture::{BpfFilterSet, CaptureFile};
# fn main() -> Result<(), linkward_capture::CaptureError> {
let mut dns = BpfFilterSet::new("udp port 53")?;
let file = CaptureFile::open("trace.pcapng".as_ref())?;
let mut count = 0;
for packet in file.packets() {
    let packet = packet?;
    if dns.matches(packet.link_type, packet.data)? {
        count += 1;
    }
}
println!("{count} DNS packets");
# Ok(()) }
```

# Live capture

[`LiveCapture`] opens an interface through libpcap with the settings of
[`LiveOptions`]; [`LiveCapture::next_packet`] returns `Ok(None)` when the
read timeout passes with no packet, so a caller can flush batches on a
clock. The crate waits on the capture descriptor itself for that, since
libpcap's read timeout on Linux only starts once a packet has arrived.
[`LiveCapture::stats`] gives libpcap's received and dropped counters.
Capturing needs root or `CAP_NET_RAW`.

# libpcap's own reader

[`open_with_libpcap`] reads a file through libpcap's offline loop and yields
[`OwnedPacket`]s, copying each one. It is the reference the zero-copy reader
is tested against, and a fallback; on files in the page cache it reads
20–45 % fewer packets per second (the `read_throughput` example measures
both).

# Writing captures

[`PcapWriter`] (classic, micro- or nanosecond) and [`PcapNgWriter`]
(interfaces with nanosecond timestamps, enhanced packet blocks) write
buffered output for tests, examples and generated traffic.

```
use linkward_capture::{CaptureFile, PcapWriter, TsResolution};
# fn main() -> Result<(), linkward_capture::CaptureError> {
let mut writer = PcapWriter::new(Vec::new(), 1, 65535, TsResolution::Nano)?;
writer.write_packet(1_700_000_000_123_456_789, &[0xff; 60], 60)?;
let bytes = writer.finish()?;

let file = CaptureFile::from_bytes("generated.pcap", bytes)?;
let packet = file.packets().next().unwrap()?;
assert_eq!(packet.ts_ns, 1_700_000_000_123_456_789);
assert_eq!(packet.data.len(), 60);
# Ok(()) }
```

# When not to use this crate

It does not decode protocols, reassemble anything or write pcapng options;
it does not read capture formats other than pcap and pcapng (snoop, ERF,
Windows ETL). Files that are being written while read should go through
[`CaptureFile::from_bytes`] or [`open_with_libpcap`], because a file that
shrinks under a memory mapping faults the process.

# Safety

The crate has no `unsafe` code: the file mapping (which is `unsafe` in Rust
whatever the library) lives in `linkward-mapfile`, shared with flow-log input;
BPF and live capture go through the `pcap` crate's safe interface.
*/

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bpf;
mod classic;
mod error;
mod file;
mod libpcap;
mod linktype;
mod live;
mod map;
mod pcapng;
mod writer;

pub use bpf::{BpfFilter, BpfFilterSet};
pub use error::{CaptureError, ErrorKind};
pub use file::{CaptureFile, Format, MAX_CAPLEN, Packets, RawPacket, Segment};
pub use libpcap::{LibpcapPackets, OwnedPacket, open_with_libpcap};
/// How far a reader of a mapped file moves between two releases of the pages behind it.
pub use linkward_mapfile::RELEASE_STEP;
pub use live::{LiveCapture, LiveOptions, LivePacket, LiveStats};
pub use writer::{PcapNgWriter, PcapWriter, TsResolution};
