//! The decoder: link layer, IP, transport, and the fragment reassembler that outlives a
//! single frame.

use crate::Skip;
use crate::ip;
use crate::link::{self, LinkType, Net};
use crate::packet::Packet;
use crate::reassembly::Reassembler;

/// Limits of a [`Decoder`]. They bound the memory and the work fragments can cost, since
/// fragments are the one input that makes the decoder keep state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderConfig {
    /// How many datagrams may be under reassembly at once. Each may hold up to 64 KiB.
    /// Zero turns reassembly off: first fragments are then decoded on their own and the
    /// others skipped.
    pub max_fragment_sets: usize,
    /// How many fragments one datagram may have before it is dropped.
    pub max_fragments_per_set: usize,
    /// How long, in capture time, a datagram may wait for its missing fragments.
    pub fragment_timeout_ns: u64,
}

impl Default for DecoderConfig {
    /// 256 datagrams, 128 fragments each (a 64 KiB datagram over a 576-byte path needs
    /// 117), 30 seconds (Linux's default `ipfrag_time`).
    fn default() -> Self {
        DecoderConfig {
            max_fragment_sets: 256,
            max_fragments_per_set: 128,
            fragment_timeout_ns: 30_000_000_000,
        }
    }
}

/// Counters of the fragment reassembler, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FragmentStats {
    /// Datagrams waiting for fragments now.
    pub pending: usize,
    /// Datagrams reassembled.
    pub completed: u64,
    /// Datagrams given up after the timeout.
    pub expired: u64,
    /// Datagrams dropped because of a malformed or contradicting fragment or a limit.
    pub dropped: u64,
}

/// Decodes captured frames into [`Packet`]s.
///
/// A decoder is cheap to create and holds only the fragment reassembler; use one per
/// capture (or per worker thread), since fragments of one datagram must reach the same
/// decoder.
#[derive(Debug)]
pub struct Decoder {
    reasm: Reassembler,
}

impl Decoder {
    /// A decoder with the given limits.
    pub fn new(config: DecoderConfig) -> Self {
        Decoder {
            reasm: Reassembler::new(
                config.max_fragment_sets,
                config.max_fragments_per_set,
                config.fragment_timeout_ns,
            ),
        }
    }

    /// Decodes one frame as captured (possibly cut by a snap length) on a link of type
    /// `link`.
    ///
    /// `ts_ns` is the frame's capture time in nanoseconds; it only drives reassembly
    /// timeouts, so any monotonic clock will do.
    ///
    /// The returned packet borrows `frame`, or, for a datagram completed by this frame,
    /// the decoder's own reassembly buffer; that is why the decoder is borrowed mutably
    /// for as long as the packet lives.
    #[inline]
    pub fn decode<'a>(
        &'a mut self,
        link: LinkType,
        frame: &'a [u8],
        ts_ns: u64,
    ) -> Result<Packet<'a>, Skip> {
        decode_with(link, frame, ts_ns, Some(&mut self.reasm))
    }

    /// The reassembler's counters.
    pub fn fragment_stats(&self) -> FragmentStats {
        FragmentStats {
            pending: self.reasm.pending(),
            completed: self.reasm.completed,
            expired: self.reasm.expired,
            dropped: self.reasm.dropped,
        }
    }
}

/// Decodes a frame that needs no state: everything but IP fragments, for which it
/// returns `None`.
///
/// The result is what [`Decoder::decode`] returns for the same frame, and decoding
/// this way leaves no trace in any decoder. That lets one thread decode frames and
/// route them to the workers that own their flows, while the fragments, whose
/// reassembly is stateful, go to every worker's own [`Decoder`].
#[inline]
pub fn decode_stateless(link: LinkType, frame: &[u8]) -> Option<Result<Packet<'_>, Skip>> {
    match decode_with(link, frame, 0, None) {
        Err(Skip::FragmentPending) => None,
        decoded => Some(decoded),
    }
}

#[inline]
fn decode_with<'a>(
    link: LinkType,
    frame: &'a [u8],
    ts_ns: u64,
    reasm: Option<&'a mut Reassembler>,
) -> Result<Packet<'a>, Skip> {
    let l3 = link::locate(link, frame)?;
    let ip = frame.get(l3.offset..).unwrap_or(&[]);
    let net = match l3.net {
        Net::Either => match ip::version(ip)? {
            4 => Net::V4,
            6 => Net::V6,
            version => {
                return Err(Skip::BadIpVersion {
                    version,
                    expected: 0,
                });
            }
        },
        net => net,
    };
    match net {
        Net::V6 => ip::ipv6(ip, l3.vlan, ts_ns, reasm),
        _ => ip::ipv4(ip, l3.vlan, ts_ns, reasm),
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DecoderConfig::default())
    }
}
